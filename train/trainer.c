/* trainer.c: model/optimizer/data set-up, the training step with gradient
 * accumulation and the non-finite guard, and validation. */
#include "trainer.h"

#include <math.h>
#include <string.h>

#include "../base/alloc.h"
#include "../data/tokenizer.h"
#include "../io/hf_checkpoint.h"

/* Opens a loader over recipe sources (weights kept; labels name the keys).
 * With a recipe tokenizer, the shards must carry its hash and vocabulary
 * size. */
static int open_loader(struct trainer *t, const struct recipe_source *src, int n,
		       const char *key, double valid_fraction, struct loader **L,
		       struct hug_error *err)
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
		.batch_size = t->r->micro_batch_size, .rank = t->rank, .world = t->world,
		.seed = t->r->seed, .valid_fraction = valid_fraction, .prefetch = 2,
		.expect_vocab_size = vocab, .expect_tokenizer_hash = hash[0] ? hash : NULL,
	};
	int rc = loader_open(&cfg, L, err);
	hug_free(ls);
	hug_free(labels);
	if (rc)
		return -1;
	const struct shard_meta *m = loader_meta(*L);
	if (m->vocab_size > t->model.cfg.vocab_size)
		return hug_error_set(err, "%s: the shards' vocab_size %lld exceeds model.vocab_size %lld",
				     key, (long long)m->vocab_size,
				     (long long)t->model.cfg.vocab_size);
	return 0;
}

static void init_model(struct trainer *t)
{
	const struct recipe *r = t->r;
	bloom_model_init(&t->model, &r->model, DT_F32, true);
	bloom_model_init_weights(&t->model, r->seed);
}

static int init(struct trainer *t, struct recipe *r, struct hug_error *err)
{
	t->r = r;
	t->world = 1;
	if (r->device != DEV_CPU)
		return hug_error_set(err, "%s: device: \"cuda\" is not available in this build of "
				     "hug yet (use \"cpu\")", r->path);
	if (r->precision != PRECISION_F32)
		return hug_error_set(err, "%s: precision: \"bf16\" needs device \"cuda\"", r->path);
	if (r->tensor_parallel != 1 || r->zero)
		return hug_error_set(err, "%s: parallel: tensor parallelism and ZeRO are not "
				     "available yet (use {\"tensor\": 1, \"zero\": 0})", r->path);
	if (r->peft.enabled)
		return hug_error_set(err, "%s: peft: LoRA is not available yet (use null)", r->path);
	if (r->from_pretrained) {
		if (hf_bloom_load(r->from_pretrained, DT_F32, true, &t->model, err))
			return hug_error_wrap(err, "%s: model.from_pretrained", r->path);
		t->model.cfg.hidden_dropout = r->model.hidden_dropout;
		t->model.cfg.attention_dropout = r->model.attention_dropout;
	} else {
		init_model(t);
	}
	optim_init(&t->opt, &r->optim, &t->model.table);
	if (r->no_decay) { /* the recipe's patterns replace the defaults */
		optim_set_decay(&t->opt, "*", true);
		for (int i = 0; i < r->n_no_decay; i++)
			optim_set_decay(&t->opt, r->no_decay[i], false);
	}
	if (open_loader(t, r->train, r->n_train, "data.train",
			r->valid ? 0.0 : r->valid_fraction, &t->train, err))
		return -1;
	if (r->valid) {
		if (open_loader(t, r->valid, r->n_valid, "data.valid", 0.0, &t->valid, err))
			return -1;
		loader_state_save(t->valid, &t->valid_start);
	}
	arena_init(&t->step_mem, "step", 0, NULL);
	arena_init(&t->batch_mem, "batch", 0, NULL);
	ag_ctx_init(&t->ctx, &t->step_mem);
	t->ctx.seed = r->seed;
	int64_t b = r->micro_batch_size, len = r->seq_len;
	t->inputs = tensor_new(&t->batch_mem, DT_I32, TENSOR_SHAPE(b, len));
	t->targets = tensor_new(&t->batch_mem, DT_I32, TENSOR_SHAPE(b, len));
	/* 6N per token for the matrices, plus attention's QK^T and PV
	 * (forward 4 L T C, three times that with the backward) */
	const struct bloom_config *c = &t->model.cfg;
	t->flops_per_token = 6.0 * (double)bloom_param_count(c) +
			     12.0 * c->n_layer * (double)len * (double)c->hidden_size;
	return 0;
}

int trainer_init(struct trainer *t, struct recipe *r, struct hug_error *err)
{
	memset(t, 0, sizeof(*t));
	if (init(t, r, err) == 0)
		return 0;
	trainer_free(t);
	return -1;
}

void trainer_free(struct trainer *t)
{
	loader_close(t->train);
	loader_close(t->valid);
	optim_free(&t->opt);
	bloom_model_free(&t->model);
	arena_free(&t->step_mem);
	arena_free(&t->batch_mem);
	memset(t, 0, sizeof(*t));
}

/* Forward and loss of the batch in t->inputs / t->targets; NULL on error. */
static struct tensor *batch_loss(struct trainer *t)
{
	struct tensor *logits = bloom_forward(&t->ctx, &t->model, t->inputs, NULL);
	return ag_cross_entropy(&t->ctx, logits, t->targets, LOADER_IGNORE_INDEX);
}

static double scalar(const struct tensor *t)
{
	double v;
	tensor_read_f64(t, &v);
	return v;
}

int trainer_step(struct trainer *t, struct step_result *res, struct hug_error *err)
{
	const struct recipe *r = t->r;
	memset(res, 0, sizeof(*res));
	res->batch = batch_at(&r->rampup, t->samples_seen);
	int64_t micro = res->batch / (r->micro_batch_size * t->world);
	double sum = 0;
	t->ctx.training = true;
	for (int64_t i = 0; i < micro; i++) {
		if (loader_next(t->train, t->inputs->data, t->targets->data, err))
			return -1;
		ag_ctx_reset(&t->ctx);
		struct tensor *loss = batch_loss(t);
		struct tensor *scaled = ag_scale(&t->ctx, loss, 1.0 / (double)micro);
		if (!scaled || ag_backward(&t->ctx, scaled))
			return hug_error_set(err, "step %lld: %s", (long long)t->step + 1,
					     t->ctx.err.msg);
		sum += scalar(loss);
	}
	ag_ctx_reset(&t->ctx);
	res->loss = sum / (double)micro;
	res->grad_norm = optim_clip_grad_norm(&t->opt, r->grad_clip);
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
		return 0;
	}
	optim_step(&t->opt, res->lr);
	optim_zero_grad(&t->opt);
	t->step++;
	return 0;
}

/* Validation over a separate loader: replays the same batches each time. */
static int eval_loader(struct trainer *t, double *sum, int64_t *n, struct hug_error *err)
{
	if (loader_state_restore(t->valid, &t->valid_start, err))
		return -1;
	for (int64_t i = 0; i < t->r->eval_batches; i++) {
		if (loader_next(t->valid, t->inputs->data, t->targets->data, err))
			return -1;
		ag_ctx_reset(&t->ctx);
		struct tensor *loss = batch_loss(t);
		if (!loss)
			return hug_error_set(err, "validation: %s", t->ctx.err.msg);
		*sum += scalar(loss);
		(*n)++;
	}
	return 0;
}

/* Validation over the training sources' held-out samples. */
static int eval_heldout(struct trainer *t, double *sum, int64_t *n, struct hug_error *err)
{
	struct loader_valid *v;
	if (loader_valid_open(t->train, &v, err))
		return -1;
	int rc = 0;
	for (int64_t i = 0; i < t->r->eval_batches; i++) {
		int64_t rows = loader_valid_next(v, t->inputs->data, t->targets->data, NULL, err);
		if (rows <= 0) {
			rc = (int)rows;
			break;
		}
		ag_ctx_reset(&t->ctx);
		struct tensor *loss = batch_loss(t);
		if (!loss) {
			rc = hug_error_set(err, "validation: %s", t->ctx.err.msg);
			break;
		}
		*sum += scalar(loss);
		(*n)++;
	}
	loader_valid_close(v);
	return rc;
}

int trainer_eval(struct trainer *t, double *loss, struct hug_error *err)
{
	double sum = 0;
	int64_t n = 0;
	bool g = ag_set_grad_enabled(&t->ctx, false);
	t->ctx.training = false;
	int rc = 0;
	if (t->valid)
		rc = eval_loader(t, &sum, &n, err);
	else if (loader_valid_samples(t->train) > 0)
		rc = eval_heldout(t, &sum, &n, err);
	ag_ctx_reset(&t->ctx);
	ag_set_grad_enabled(&t->ctx, g);
	t->ctx.training = true;
	*loss = n ? sum / (double)n : NAN;
	return rc;
}
