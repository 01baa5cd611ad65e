/* trainer.c: model/optimizer/data set-up, the training step with gradient
 * accumulation and the non-finite guard, and validation. */
#include "trainer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../autograd/backend.h"
#include "../autograd/profile.h"
#include "../base/alloc.h"
#include "../data/tokenizer.h"
#include "../io/hf_checkpoint.h"
#include "../peft/lora_model.h"
#include "data_warnings.h"
#include "pipeline.h"
#include "update_check.h"
#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"
#include "../parallel/comm_nccl.h"
#endif

/* Opens a loader over recipe sources (weights kept; labels name the keys)
 * for data-parallel rank `rank` of `world`. With a recipe tokenizer, the
 * shards must carry its hash and vocabulary size. */
static int open_loader(struct trainer *t, const struct recipe_source *src, int n,
		       const char *key, double valid_fraction, int rank, int world,
		       struct loader **L, struct hug_error *err)
{
	const struct recipe *r = t->r;
	char hash[TOKENIZER_HASH_LEN] = "";
	int64_t vocab = 0;
	if (r->tokenizer) {
		struct tokenizer *tok;
		if (tokenizer_load(r->tokenizer, &tok, err))
			return hug_error_wrap(err, "%s: data.tokenizer", r->path);
		snprintf(hash, sizeof(hash), "%s", tokenizer_hash(tok));
		vocab = tokenizer_vocab_size(tok);
		tokenizer_free(tok);
	}
	struct loader_source *ls = hug_calloc((size_t)n, sizeof(*ls));
	char (*labels)[64] = hug_calloc((size_t)n, sizeof(*labels));
	for (int i = 0; i < n; i++) {
		snprintf(labels[i], sizeof(labels[i]), "%s[%d].path", key, i);
		ls[i] = (struct loader_source){ src[i].path, src[i].weight, labels[i] };
	}
	struct loader_config cfg = {
		.sources = ls, .n_sources = n, .seq_len = t->r->seq_len,
		.batch_size = t->r->micro_batch_size, .rank = rank, .world = world,
		.seed = t->r->seed, .valid_fraction = valid_fraction, .prefetch = 2,
		.expect_vocab_size = vocab, .expect_tokenizer_hash = hash[0] ? hash : NULL,
	};
	int rc = loader_open(&cfg, L, err);
	hug_free(ls);
	hug_free(labels);
	if (rc)
		return -1;
	const struct shard_meta *m = loader_meta(*L);
	if (m->vocab_size > t->r->model.dims.vocab_size)
		return hug_error_set(err, "%s: the shards' vocab_size %lld exceeds model.vocab_size %lld",
				     key, (long long)m->vocab_size,
				     (long long)t->r->model.dims.vocab_size);
	return 0;
}

/* This rank's tensor-parallel place (size 1 without tensor parallelism). */
static struct model_tp tp_of(const struct trainer *t)
{
	const struct parallel *par = t->par;
	return (struct model_tp){ .rank = par->tp_rank, .size = par->tp,
				  .coll = par->tp > 1 ? comm_collective(&par->tp_group) : NULL };
}

static void init_model(struct trainer *t)
{
	const struct recipe *r = t->r;
	struct model_tp tp = tp_of(t);
	model_init(&t->model, &r->model, DT_F32, true, &tp, NULL);
	model_init_weights(&t->model, r->seed);
}

/* Moves the model built on the host to t->device (with gradients when
 * trainable). */
static void move_to_device(struct trainer *t, bool trainable)
{
	struct model host = t->model;
	model_to_device(&t->model, &host, ag_device_allocator(t->device), trainable);
	model_free(&host);
}

/* from_pretrained under tensor parallelism: the whole model is read, then
 * each rank keeps its shards. */
static int load_pretrained(struct trainer *t, const char *dir, struct hug_error *err)
{
	if (t->par->tp <= 1)
		return hf_model_load(dir, DT_F32, true, &t->model, err);
	struct model full = { 0 };
	struct model_config cfg;
	if (hf_model_load(dir, DT_F32, false, &full, err))
		return -1;
	struct model_tp tp = tp_of(t);
	model_config_of(&full, &cfg);
	model_init(&t->model, &cfg, DT_F32, true, &tp, NULL);
	struct param_table *mine = model_params(&t->model), *whole = model_params(&full);
	for (int i = 0; i < mine->n; i++) {
		struct param *p = &mine->items[i];
		param_slice_from_full(p, param_table_find(whole, p->name)->t, p->t);
	}
	model_free(&full);
	return 0;
}

/* LoRA (recipe peft): the pretrained base frozen, so it has no gradients
 * and no optimizer state, and adapters initialised from the seed. */
static int init_lora(struct trainer *t, struct hug_error *err)
{
	const struct recipe *r = t->r;
	if (!r->from_pretrained)
		return hug_error_set(err, "%s: peft: LoRA adapts a pretrained model: set "
				     "model.from_pretrained", r->path);
	if (hf_model_load(r->from_pretrained, DT_F32, false, &t->model, err))
		return hug_error_wrap(err, "%s: model.from_pretrained", r->path);
	if (t->device != DEV_CPU) /* the adapters follow the base to the GPU */
		move_to_device(t, false);
	model_take_settings(&t->model, &r->model);
	struct lora_config lc;
	char what[600];
	recipe_lora_config(r, &lc);
	snprintf(what, sizeof(what), "%s: peft.", r->path);
	t->lora = hug_calloc(1, sizeof(*t->lora));
	int rc = lora_model_init(t->lora, &t->model, &lc, true, what, err);
	lora_config_free(&lc);
	if (!rc)
		lora_model_init_weights(t->lora, r->seed);
	return rc;
}

/* PEFT's trainable-parameter line (the memory plan follows at start-up:
 * cli/train_startup.c). */
static void report_lora(const struct trainer *t)
{
	lora_print_trainable(t->lora, stdout);
}

/* Device "cuda": picks this process's GPU (NCCL communicators first when
 * there are several processes, so NCCL and the backend agree on it) and
 * starts the CUDA backend. */
static int init_device(struct trainer *t, struct hug_error *err)
{
	const struct recipe *r = t->r;
#ifdef HUG_CUDA
	int dev = t->par->local_rank;
#ifdef HUG_MPI
	if (t->par->world_size > 1 && comm_nccl_init_groups(t->par, &dev, err))
		return hug_error_wrap(err, "%s: device", r->path);
#endif
	if (hug_cuda_init(dev, err))
		return hug_error_wrap(err, "%s: device", r->path);
	t->device = DEV_CUDA;
	return 0;
#else
	return hug_error_set(err, "%s: device: \"cuda\", but this hug was built without "
			     "CUDA (nvcc was not found at build time; use \"cpu\")", r->path);
#endif
}

static int init(struct trainer *t, struct recipe *r, struct hug_error *err)
{
	t->r = r;
	t->rank = t->par->dp_rank;
	t->world = t->par->dp;
	if (t->par->tp != r->tensor_parallel)
		return hug_error_set(err, "%s: parallel.tensor: %d, but the processes were laid out "
				     "for %d", r->path, r->tensor_parallel, t->par->tp);
	if (model_config_tp_validate(&r->model, r->tensor_parallel, err))
		return hug_error_wrap(err, "%s: parallel.tensor", r->path);
	if (r->peft.enabled && r->tensor_parallel > 1)
		return hug_error_set(err, "%s: peft: LoRA with tensor parallelism is not supported "
				     "(use parallel.tensor 1; data parallelism works)", r->path);
	if (r->zero >= 2 && r->recompute != AG_RECOMPUTE_NONE)
		return hug_error_set(err, "%s: train.activation_checkpointing: \"%s\" with "
				     "parallel.zero %d is not supported yet (ZeRO-2/3's gradient "
				     "and parameter rings do not follow a recomputed block; use "
				     "parallel.zero 0 or 1, or \"none\")", r->path,
				     r->recompute == AG_RECOMPUTE_BLOCK ? "block" : "selective", r->zero);
	if (r->zero == 3 && r->precision != PRECISION_F32)
		return hug_error_set(err, "%s: parallel.zero: 3 with precision \"bf16\" is not "
				     "supported (the bf16 copy of the weights is made whole; use "
				     "parallel.zero 2)", r->path);
	if (r->precision != PRECISION_F32 && r->device != DEV_CUDA)
		return hug_error_set(err, "%s: precision: \"bf16\" needs device \"cuda\" (the CPU "
				     "backend computes in f32)", r->path);
	t->device = DEV_CPU;
	if (r->device == DEV_CUDA && init_device(t, err))
		return -1;
	if (r->peft.enabled) {
		if (init_lora(t, err))
			return -1;
	} else if (r->from_pretrained) {
		if (load_pretrained(t, r->from_pretrained, err))
			return hug_error_wrap(err, "%s: model.from_pretrained", r->path);
		model_take_settings(&t->model, &r->model);
	} else {
		init_model(t);
	}
	if ((t->par->pp > 1 || r->pipeline_parallel > 1) && pipeline_init(t, err))
		return -1; /* t->model: this stage's part */
	if (t->device != DEV_CPU && !t->lora)
		move_to_device(t, true);
	struct param_table *trainable = t->lora ? &t->lora->table : model_params(&t->model);
	if (t->pipe)
		trainable = pipeline_bind(t);
	dist_init(&t->dist, t->par, trainable, r->zero, t->model.family->hf_names.block_prefix, 0);
	int64_t lo, hi;
	dist_optim_range(&t->dist, &lo, &hi);
	optim_init_range(&t->opt, &r->optim, trainable, lo, hi);
	dist_retarget(&t->dist, &t->opt);
	if (t->lora && t->rank == 0)
		report_lora(t);
	if (r->no_decay) { /* the recipe's patterns replace the defaults */
		optim_set_decay(&t->opt, "*", true);
		for (int i = 0; i < r->n_no_decay; i++)
			optim_set_decay(&t->opt, r->no_decay[i], false);
	}
	if (open_loader(t, r->train, r->n_train, "data.train",
			r->valid ? 0.0 : r->valid_fraction, t->rank, t->world, &t->train, err))
		return -1;
	if (parallel_is_main(t->par))
		data_warnings(r, loader_meta(t->train), stderr);
	if (r->valid) {
		/* every rank reads the one global sequence of validation batches
		 * and evaluates its share of them (trainer_eval) */
		if (open_loader(t, r->valid, r->n_valid, "data.valid", 0.0, 0, 1, &t->valid, err))
			return -1;
		loader_state_save(t->valid, &t->valid_start);
	}
	const struct arena_allocator *on = ag_device_allocator(t->device);
	arena_init(&t->step_mem, "step", 0, on);
	arena_init(&t->batch_mem, "batch", 0, NULL);
	arena_init(&t->dev_batch_mem, "device-batch", 0, on);
	ag_ctx_init(&t->ctx, &t->step_mem);
	dist_attach(&t->dist, &t->ctx);
	t->ctx.seed = r->seed;
	t->ctx.recompute = r->recompute;
	int64_t b = r->micro_batch_size, len = r->seq_len;
	t->inputs = tensor_new(&t->batch_mem, DT_I32, TENSOR_SHAPE(b, len));
	t->targets = tensor_new(&t->batch_mem, DT_I32, TENSOR_SHAPE(b, len));
	t->step_inputs = t->inputs;
	t->step_targets = t->targets;
	if (t->device != DEV_CPU) {
		t->step_inputs = tensor_new(&t->dev_batch_mem, DT_I32, TENSOR_SHAPE(b, len));
		t->step_targets = tensor_new(&t->dev_batch_mem, DT_I32, TENSOR_SHAPE(b, len));
	}
	t->eos = loader_meta(t->train)->eos_id;
	if (r->pack_documents) { /* data.packing "document" */
		t->segments = t->step_segments =
			tensor_new(&t->batch_mem, DT_I32, TENSOR_SHAPE(b, len));
		if (t->device != DEV_CPU)
			t->step_segments = tensor_new(&t->dev_batch_mem, DT_I32,
						      TENSOR_SHAPE(b, len));
	}
	/* the family's count (6N per token for the matrices, plus attention);
	 * with LoRA the frozen base needs no weight gradients (4N instead of
	 * 6N) and the adapters 6A */
	struct model_config mc;
	model_config_of(&t->model, &mc);
	t->flops_per_token = model_config_flops_per_token(&mc, len);
	if (t->lora)
		t->flops_per_token += -2.0 * (double)model_config_param_count(&mc) +
				      6.0 * (double)lora_model_numel(t->lora);
	return 0;
}

static int init_or_free(struct trainer *t, struct recipe *r, struct hug_error *err)
{
	if (init(t, r, err) == 0)
		return 0;
	trainer_free(t);
	return -1;
}

int trainer_init_parallel(struct trainer *t, struct recipe *r, struct parallel *par,
			  struct hug_error *err)
{
	memset(t, 0, sizeof(*t));
	t->par = par;
	return init_or_free(t, r, err);
}

int trainer_init(struct trainer *t, struct recipe *r, struct hug_error *err)
{
	memset(t, 0, sizeof(*t));
	parallel_single(&t->single);
	t->par = &t->single;
	return init_or_free(t, r, err);
}

void trainer_free(struct trainer *t)
{
	loader_close(t->train);
	loader_close(t->valid);
	optim_free(&t->opt);
	dist_free(&t->dist);
	pipeline_free(t->pipe);
	if (t->lora) { /* detaches from the model: before model_free */
		lora_model_free(t->lora);
		hug_free(t->lora);
	}
	model_free(&t->model);
	model_view_free(&t->cast_view);
	ag_ctx_free(&t->ctx);
	arena_free(&t->step_mem);
	arena_free(&t->batch_mem);
	arena_free(&t->dev_batch_mem);
	hug_free(t->step_batches);
	memset(t, 0, sizeof(*t));
}

/* data.packing "document": the batch's document ids into t->segments and
 * no target across a document boundary (loader_pack_documents); nothing
 * otherwise. */
static void pack_batch(struct trainer *t, const int32_t *in, int32_t *tg)
{
	if (t->segments)
		loader_pack_documents(in, tg, t->segments->shape[0], t->segments->shape[1],
				      t->eos, t->segments->data);
}

/* Forward and loss of the batch the loader put in t->inputs / t->targets
 * (copied to the device first on a GPU run); in bf16 precision the forward
 * runs on the bf16 view of the f32 weights and the loss comes out in f32.
 * NULL on error. */
static struct tensor *batch_loss(struct trainer *t)
{
	if (t->step_inputs != t->inputs) {
		tensor_transfer(t->step_inputs, t->inputs);
		tensor_transfer(t->step_targets, t->targets);
	}
	const struct model *m = &t->model;
	dist_before_forward(&t->dist);
	if (t->r->precision == PRECISION_BF16) {
		if (!model_cast(&t->ctx, &t->model, DT_BF16, &t->cast_view))
			return NULL;
		m = &t->cast_view;
	}
	struct model_batch mb = { .ids = t->step_inputs };
	if (t->segments) { /* the targets were packed when the loader served them */
		pack_batch(t, t->inputs->data, t->targets->data);
		if (t->step_segments != t->segments)
			tensor_transfer(t->step_segments, t->segments);
		mb.segments = t->step_segments;
	}
	struct tensor *logits = model_forward_batch(&t->ctx, m, &mb);
	return model_loss(&t->ctx, m, logits, t->step_targets);
}


/* Counted targets (not LOADER_IGNORE_INDEX) of one (B, T) micro-batch. */
static int64_t count_targets(const int32_t *targets, int64_t n)
{
	int64_t c = 0;
	for (int64_t i = 0; i < n; i++)
		c += targets[i] != LOADER_IGNORE_INDEX;
	return c;
}

/* Reads the step's `micro` micro-batches into t->step_batches (in the
 * loader's order) and returns their counted targets in *count (this
 * rank's). 0 or -1. */
static int load_step(struct trainer *t, int64_t micro, int64_t *count, struct hug_error *err)
{
	int64_t bt = tensor_numel(t->inputs);
	if ((size_t)micro > t->step_batches_cap) {
		t->step_batches = hug_realloc(t->step_batches,
					      (size_t)(micro * 2 * bt) * sizeof(int32_t));
		t->step_batches_cap = (size_t)micro;
	}
	*count = 0;
	double t0 = ag_profile_start(t->device);
	for (int64_t i = 0; i < micro; i++) {
		int32_t *in = t->step_batches + i * 2 * bt, *tg = in + bt;
		if (loader_next(t->train, in, tg, err))
			return -1;
		pack_batch(t, in, tg);
		*count += count_targets(tg, bt);
	}
	ag_profile_stop("data (loader)", t->device, t0);
	return 0;
}

/* Sum over the data-parallel ranks of v[0..n). */
static void dp_sum(struct trainer *t, double *v, int n)
{
	if (t->par->dp > 1)
		comm_allreduce(&t->par->dp_group, v, n, DT_F64, COMM_SUM);
}

int trainer_step(struct trainer *t, struct step_result *res, struct hug_error *err)
{
	const struct recipe *r = t->r;
	memset(res, 0, sizeof(*res));
	res->batch = batch_at(&r->rampup, t->samples_seen);
	int64_t micro = res->batch / (r->micro_batch_size * t->world);
	int64_t bt = tensor_numel(t->inputs), local;
	if (load_step(t, micro, &local, err))
		return -1;
	double global = (double)local;
	dp_sum(t, &global, 1);
	res->target_tokens = (int64_t)global;
	if (global == 0) { /* every target masked: nothing to learn from */
		res->lr = lr_at(&r->schedule, t->step);
		res->skipped = true;
		t->samples_seen += res->batch;
		t->tokens_seen += res->batch * r->seq_len;
		t->step++;
		if (t->par->world_rank == 0)
			fprintf(stderr, "warning: step %lld: every target of the batch is masked "
				"(loss mask 0); skipped without an update\n", (long long)t->step);
		return 0;
	}
	double sum = 0;
	t->ctx.training = true;
	if (t->pipe && pipeline_accumulate(t, micro, global, &sum, err))
		return -1;
	for (int64_t i = 0; !t->pipe && i < micro; i++) {
		const int32_t *in = t->step_batches + i * 2 * bt, *tg = in + bt;
		memcpy(t->inputs->data, in, (size_t)bt * sizeof(int32_t));
		memcpy(t->targets->data, tg, (size_t)bt * sizeof(int32_t));
		double n = (double)count_targets(tg, bt);
		ag_ctx_reset(&t->ctx);
		/* this micro-batch's token-loss sum / the global count; times dp
		 * because the gradient reduction averages over the ranks */
		struct tensor *loss = batch_loss(t);
		struct tensor *scaled = ag_scale(&t->ctx, loss, n * (double)t->world / global);
		/* reduce gradients while the (last) backward runs */
		dist_arm(&t->dist, &t->ctx, i == micro - 1);
		if (!scaled || ag_backward(&t->ctx, scaled))
			return hug_error_set(err, "step %lld: %s", (long long)t->step + 1,
					     t->ctx.err.msg);
		sum += tensor_item(loss) * n;
	}
	double t0 = ag_profile_start(t->device);
	dist_finish_grads(&t->dist, &t->ctx);
	if (t->pipe)
		pipeline_finish_grads(t, &sum);
	ag_ctx_reset(&t->ctx);
	dp_sum(t, &sum, 1);
	res->loss = sum / global;
	ag_profile_stop("gradient reduction", t->device, t0);
	t0 = ag_profile_start(t->device);
	res->grad_norm = t->pipe ? pipeline_grad_norm(t) : dist_grad_norm(&t->dist, &t->opt);
	optim_clip_grads(&t->opt, res->grad_norm, r->grad_clip);
	ag_profile_stop("gradient norm and clip", t->device, t0);
	res->lr = lr_at(&r->schedule, t->step);
	t->samples_seen += res->batch;
	t->tokens_seen += res->batch * r->seq_len;
	if (!isfinite(res->loss) || !isfinite(res->grad_norm)) {
		optim_zero_grad(&t->opt);
		if (!r->skip_nonfinite)
			return hug_error_set(err, "step %lld: loss %g, gradient norm %g: not finite; "
					     "stopping without an update (set train.skip_nonfinite "
					     "to skip such steps)", (long long)t->step + 1,
					     res->loss, res->grad_norm);
		res->skipped = true;
		t->skipped_steps++;
		t->step++;
		if (++t->consecutive_skips >= r->max_skipped_steps)
			return hug_error_set(err, "step %lld: %lld consecutive steps skipped as "
					     "non-finite (train.max_skipped_steps is %lld); stopping",
					     (long long)t->step, (long long)t->consecutive_skips,
					     (long long)r->max_skipped_steps);
		return 0;
	}
	t->consecutive_skips = 0;
	t0 = ag_profile_start(t->device);
	optim_step(&t->opt, res->lr);
	if (trainer_check_update(t, err))
		return -1;
	dist_gather_params(&t->dist);
	if (t->pipe)
		pipeline_after_update(t);
	optim_zero_grad(&t->opt);
	ag_profile_stop("optimizer", t->device, t0);
	t->step++;
	return 0;
}

/* Adds the loss of the batch in t->inputs / t->targets to v: v[0] +=
 * token-loss sum, v[1] += counted targets. 0 or -1. */
static int eval_batch(struct trainer *t, double v[2], struct hug_error *err)
{
	if (t->pipe)
		return pipeline_eval_batch(t, v, err);
	double n = (double)count_targets(t->targets->data, tensor_numel(t->targets));
	if (n == 0)
		return 0;
	ag_ctx_reset(&t->ctx);
	struct tensor *loss = batch_loss(t);
	if (!loss)
		return hug_error_set(err, "validation: %s", t->ctx.err.msg);
	v[0] += tensor_item(loss) * n;
	v[1] += n;
	return 0;
}

/* Validation over a separate loader: replays the same eval_batches
 * batches each time; rank r evaluates batches r, r + dp, ... */
static int eval_loader(struct trainer *t, double v[2], struct hug_error *err)
{
	if (loader_state_restore(t->valid, &t->valid_start, err))
		return -1;
	for (int64_t i = 0; i < t->r->eval_batches; i++) {
		if (loader_next(t->valid, t->inputs->data, t->targets->data, err))
			return -1;
		pack_batch(t, t->inputs->data, t->targets->data);
		if (i % t->world == t->rank && eval_batch(t, v, err))
			return -1;
	}
	return 0;
}

/* Validation over the training sources' held-out samples: the first
 * eval_batches x micro_batch_size of them, which the ranks share (rank r
 * takes samples r, r + dp, ...). */
static int eval_heldout(struct trainer *t, double v[2], struct hug_error *err)
{
	struct loader_valid *pass;
	if (loader_valid_open(t->train, &pass, err))
		return -1;
	loader_valid_limit(pass, t->r->eval_batches * t->r->micro_batch_size);
	int rc = 0;
	for (;;) {
		int64_t rows = loader_valid_next(pass, t->inputs->data, t->targets->data, NULL, err);
		if (rows <= 0) {
			rc = (int)rows;
			break;
		}
		if ((rc = eval_batch(t, v, err)))
			break;
	}
	loader_valid_close(pass);
	return rc;
}

int trainer_eval(struct trainer *t, double *loss, struct hug_error *err)
{
	double v[2] = { 0, 0 }; /* token-loss sum, counted targets */
	bool g = ag_set_grad_enabled(&t->ctx, false);
	t->ctx.training = false;
	int rc = 0;
	if (t->valid)
		rc = eval_loader(t, v, err);
	else if (loader_valid_samples(t->train) > 0)
		rc = eval_heldout(t, v, err);
	ag_ctx_reset(&t->ctx);
	ag_set_grad_enabled(&t->ctx, g);
	t->ctx.training = true;
	dp_sum(t, v, 2); /* every rank takes part, even after an error */
	*loss = v[1] > 0 ? v[0] / v[1] : NAN;
	return rc;
}
