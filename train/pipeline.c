/* pipeline.c: pipeline parallelism in the trainer: stage set-up, the 1F1B
 * step over MPI point-to-point, tied embeddings across the first and last
 * stage, the gradient norm over stages and parameter synchronisation
 * (pipeline.h). */
#include "pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../autograd/backend.h"
#include "../autograd/transfer.h"
#include "../base/alloc.h"
#include "../base/panic.h"
#include "checkpoint_gather.h"
#include "pipeline_schedule.h"
#include "trainer.h"

/* One in-flight micro-batch: its tape and activations. */
struct pipe_slot {
	struct arena mem;             /* on the compute device */
	struct ag_ctx ctx;
	struct tensor *in;            /* (B, T, C) received input (stages after the first) */
	struct tensor *root;          /* the scaled loss (last stage) or the output (B, T, C) */
	void *buf;                    /* host staging of what it sends */
	struct comm_request send;
};

struct pipeline {
	int P, s;
	int *lo;                      /* P + 1 block boundaries */
	struct model_stage stage;
	struct param_table table;     /* this stage's trainable parameters */
	int *owner;                   /* per model parameter: the stage training it */
	int tied;                     /* model table index of the tied embedding, or -1 */
	struct comm embed;            /* first and last stage (tied embeddings) */
	struct pipe_slot *slots;      /* P */
	void *recv;                   /* host staging of what arrives */
	int64_t b, len, c;            /* activation shape (B, T, C) */
	struct pipe_op *ops;
	int64_t ops_cap;
	double wait_s, sched_s;       /* blocked in receives; in the schedule (all steps) */
	int64_t micro_total, steps;   /* micro-batches and steps run */
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int pipeline_owner(const struct pipeline *p, int i)
{
	return p->owner[i];
}

/* The block of parameter `name` (the family's block prefix, with or
 * without its optional prefix), or -1 for the embedding, norms, head. */
static int block_of(const struct model_family *f, const char *name)
{
	const char *bp = f->hf_names.block_prefix;
	size_t n = strlen(bp);
	if (strncmp(name, bp, n))
		return -1;
	char *end;
	long i = strtol(name + n, &end, 10);
	return end != name + n && *end == '.' ? (int)i : -1;
}

/* Owners: blocks to their stage; parameters before the first block (the
 * embedding) to the first stage, those after the blocks to the last. Also
 * sums numel per kind for the balanced split. */
static void classify(const struct model *m, int *block, double *pre, double *per_block,
		     double *post, int n_layer)
{
	const struct param_table *pt = model_params(m);
	bool seen = false;
	double blocks = 0;
	*pre = *post = 0;
	for (int i = 0; i < pt->n; i++) {
		block[i] = block_of(m->family, pt->items[i].name);
		double n = (double)tensor_numel(pt->items[i].t);
		if (block[i] >= 0) {
			seen = true;
			blocks += n;
		} else {
			*(seen ? post : pre) += n;
			block[i] = seen ? -2 : -1; /* -1: before the blocks, -2: after */
		}
	}
	*per_block = blocks / n_layer;
}

/* The stage's table: views of the model's parameters it trains. */
static void make_table(struct pipeline *p, const struct model *m)
{
	const struct param_table *pt = model_params(m);
	param_table_init(&p->table);
	for (int i = 0; i < pt->n; i++) {
		const struct param *src = &pt->items[i];
		if (p->owner[i] != p->s)
			continue;
		struct param *d = param_table_add(&p->table, src->name, src->t, src->no_decay);
		d->shard = src->shard;
		src->t->name = src->name; /* keep the model's copy of the name */
	}
}

/* The model of this stage alone (model_tp.stage), its values copied from
 * the whole model `full` (host; freed here). */
static void keep_stage(struct trainer *t, const struct model_stage *st)
{
	struct model full = t->model;
	struct model_config cfg;
	struct model_tp tp = model_parts(&full).tp;
	model_config_of(&full, &cfg);
	tp.stage = *st;
	model_init(&t->model, &cfg, DT_F32, true, &tp, NULL);
	struct param_table *mine = model_params(&t->model), *whole = model_params(&full);
	for (int i = 0; i < mine->n; i++)
		tensor_transfer(mine->items[i].t, param_table_find(whole, mine->items[i].name)->t);
	model_free(&full);
}

int pipeline_init(struct trainer *t, struct hug_error *err)
{
	const struct recipe *r = t->r;
	const struct parallel *par = t->par;
	if (par->pp != r->pipeline_parallel)
		return hug_error_set(err, "%s: parallel.pipeline: %d, but the processes were laid "
				     "out for %d", r->path, r->pipeline_parallel, par->pp);
	if (t->lora)
		return hug_error_set(err, "%s: peft: LoRA with pipeline parallelism is not "
				     "supported (use parallel.pipeline 1)", r->path);
	if (r->precision != PRECISION_F32)
		return hug_error_set(err, "%s: precision: \"bf16\" with pipeline parallelism is not "
				     "supported yet (use \"f32\" or parallel.pipeline 1)", r->path);
	if (r->pack_documents)
		return hug_error_set(err, "%s: data.packing: \"document\" with pipeline parallelism "
				     "is not supported yet (stages do not carry the document ids; use "
				     "\"none\" or parallel.pipeline 1)", r->path);
	if (r->zero > 1)
		return hug_error_set(err, "%s: parallel.zero: %d with pipeline parallelism is not "
				     "supported yet (use 0 or 1, or parallel.pipeline 1)", r->path,
				     r->zero);
	struct model_dims d = model_dims(&t->model);
	const struct param_table *pt = model_params(&t->model);
	struct pipeline *p = hug_calloc(1, sizeof(*p));
	p->P = par->pp;
	p->s = par->pp_rank;
	p->lo = hug_calloc((size_t)p->P + 1, sizeof(int));
	int *block = hug_calloc((size_t)(pt->n ? pt->n : 1), sizeof(int));
	double pre, per, post;
	classify(&t->model, block, &pre, &per, &post, d.n_layer);
	hug_free(block);
	char what[600];
	snprintf(what, sizeof(what), "%s: parallel.pipeline%s", r->path,
		 r->pipeline_layers ? "_layers" : "");
	if (pipeline_split(d.n_layer, p->P, r->pipeline_layers, per, pre, post, what, p->lo,
			   err)) {
		pipeline_free(p);
		return -1;
	}
	p->stage = (struct model_stage){ p->lo[p->s], p->lo[p->s + 1], p->s == 0,
					 p->s == p->P - 1 };
	keep_stage(t, &p->stage);
	p->tied = d.tie_word_embeddings && (p->stage.embed || p->stage.head) ? 0 : -1;
	comm_group_new(&par->pp_group, p->s == 0 || p->s == p->P - 1, &p->embed);
	p->b = r->micro_batch_size;
	p->len = r->seq_len;
	p->c = d.hidden_size;
	size_t bytes = (size_t)(p->b * p->len * p->c) * sizeof(float);
	p->recv = hug_malloc(bytes);
	p->slots = hug_calloc((size_t)p->P, sizeof(*p->slots));
	for (int i = 0; i < p->P; i++) {
		struct pipe_slot *sl = &p->slots[i];
		arena_init(&sl->mem, "pipeline-slot", 0, ag_device_allocator(t->device));
		ag_ctx_init(&sl->ctx, &sl->mem);
		sl->ctx.seed = r->seed;
		sl->ctx.recompute = r->recompute;
		sl->buf = hug_malloc(bytes);
	}
	param_table_init(&p->table);
	t->pipe = p;
	return 0;
}

struct param_table *pipeline_bind(struct trainer *t)
{
	struct pipeline *p = t->pipe;
	const struct param_table *pt = model_params(&t->model);
	int *block = hug_calloc((size_t)(pt->n ? pt->n : 1), sizeof(int));
	double pre, per, post;
	classify(&t->model, block, &pre, &per, &post, 1);
	hug_free(p->owner);
	p->owner = hug_calloc((size_t)(pt->n ? pt->n : 1), sizeof(int));
	for (int i = 0; i < pt->n; i++) /* a tied embedding's copy on the last stage: 0's */
		p->owner[i] = block[i] >= 0 ? p->s : block[i] == -1 ? 0 : p->P - 1;
	hug_free(block);
	param_table_free(&p->table);
	make_table(p, &t->model);
	return &p->table;
}

void pipeline_free(struct pipeline *p)
{
	if (!p)
		return;
	for (int i = 0; p->slots && i < p->P; i++) {
		comm_wait(&p->slots[i].send);
		ag_ctx_free(&p->slots[i].ctx);
		arena_free(&p->slots[i].mem);
		hug_free(p->slots[i].buf);
	}
	comm_group_free(&p->embed);
	param_table_free(&p->table);
	hug_free(p->slots);
	hug_free(p->recv);
	hug_free(p->lo);
	hug_free(p->owner);
	hug_free(p->ops);
	hug_free(p);
}

/* -------------------------------------------------------------- the step */

static int64_t counted(const int32_t *targets, int64_t n)
{
	int64_t c = 0;
	for (int64_t i = 0; i < n; i++)
		c += targets[i] != LOADER_IGNORE_INDEX;
	return c;
}

/* A (B, T[, C]) tensor in the slot's arena holding host data `src`. */
static struct tensor *from_host(struct pipe_slot *sl, enum dtype dt, int ndim,
				const int64_t *shape, const void *src)
{
	struct tensor *x = tensor_new(&sl->mem, dt, ndim, shape);
	ag_memcpy(x->data, x->device, src, DEV_CPU, tensor_nbytes(x));
	return x;
}

/* Sends contiguous x to stage `to` from the slot's staging buffer. */
static void send_to(const struct trainer *t, struct pipe_slot *sl, const struct tensor *x,
		    int to, int tag)
{
	HUG_ASSERT(tensor_is_contiguous(x) && x->dtype == DT_F32);
	comm_wait(&sl->send);
	ag_memcpy(sl->buf, DEV_CPU, x->data, x->device, tensor_nbytes(x));
	comm_isend(&t->par->pp_group, sl->buf, (int64_t)tensor_nbytes(x), DT_U8, to, tag,
		   &sl->send);
}

/* Receives a (B, T, C) f32 tensor from stage `from` into the slot. */
static struct tensor *recv_from(struct pipeline *p, const struct trainer *t,
				struct pipe_slot *sl, int from, int tag)
{
	int64_t shape[3] = { p->b, p->len, p->c };
	size_t bytes = (size_t)(p->b * p->len * p->c) * sizeof(float);
	double t0 = now();
	comm_recv(&t->par->pp_group, p->recv, (int64_t)bytes, DT_U8, from, tag);
	p->wait_s += now() - t0;
	return from_host(sl, DT_F32, 3, shape, p->recv);
}

enum { TAG_ACT = 0, TAG_GRAD = 1 };

/* Forward of micro-batch i on this stage. */
static int forward(struct trainer *t, int64_t i, double global, double *sum,
		   struct hug_error *err)
{
	struct pipeline *p = t->pipe;
	struct pipe_slot *sl = &p->slots[i % p->P];
	int64_t bt = p->b * p->len, shape[2] = { p->b, p->len };
	const int32_t *in = t->step_batches + i * 2 * bt, *tg = in + bt;
	comm_wait(&sl->send);
	ag_ctx_reset(&sl->ctx);
	sl->ctx.training = true;
	struct tensor *ids = from_host(sl, DT_I32, 2, shape, in);
	sl->in = NULL;
	if (!p->stage.embed) {
		sl->in = recv_from(p, t, sl, p->s - 1, TAG_ACT);
		tensor_set_requires_grad(sl->in, &sl->mem);
	}
	struct tensor *out = model_forward_stage(&sl->ctx, &t->model, &p->stage, ids, NULL,
						 sl->in);
	if (p->stage.head) {
		double n = (double)counted(tg, bt);
		struct tensor *targets = from_host(sl, DT_I32, 2, shape, tg);
		struct tensor *loss = model_loss(&sl->ctx, &t->model, out, targets);
		/* as trainer_step: this micro-batch's token-loss sum / the global
		 * count, times dp for the data-parallel averaging */
		sl->root = ag_scale(&sl->ctx, loss, n * (double)t->world / global);
		if (sl->root)
			*sum += tensor_item(loss) * n;
	} else {
		sl->root = out;
		if (out)
			send_to(t, sl, out, p->s + 1, TAG_ACT);
	}
	if (!sl->root)
		return hug_error_set(err, "step %lld: pipeline stage %d: %s",
				     (long long)t->step + 1, p->s, sl->ctx.err.msg);
	return 0;
}

/* Backward of micro-batch j on this stage (the last of the step with the
 * data-parallel reduction armed). */
static int backward(struct trainer *t, int64_t j, bool last, struct hug_error *err)
{
	struct pipeline *p = t->pipe;
	struct pipe_slot *sl = &p->slots[j % p->P];
	dist_arm(&t->dist, &sl->ctx, last);
	int rc;
	if (p->stage.head) {
		rc = ag_backward(&sl->ctx, sl->root);
	} else {
		struct tensor *dy = recv_from(p, t, sl, p->s + 1, TAG_GRAD);
		rc = ag_backward_from(&sl->ctx, sl->root, dy);
	}
	sl->ctx.on_leaf_grad = NULL;
	sl->ctx.hook_state = NULL;
	if (rc)
		return hug_error_set(err, "step %lld: pipeline stage %d: %s",
				     (long long)t->step + 1, p->s, sl->ctx.err.msg);
	if (!p->stage.embed)
		send_to(t, sl, sl->in->grad, p->s - 1, TAG_GRAD);
	return 0;
}

int pipeline_accumulate(struct trainer *t, int64_t micro, double global, double *sum,
			struct hug_error *err)
{
	struct pipeline *p = t->pipe;
	if (2 * micro > p->ops_cap) {
		p->ops = hug_realloc(p->ops, (size_t)(2 * micro) * sizeof(*p->ops));
		p->ops_cap = 2 * micro;
	}
	pipeline_1f1b(p->P, p->s, (int)micro, p->ops);
	int rc = 0;
	double t0 = now();
	for (int64_t k = 0; k < 2 * micro && !rc; k++) {
		const struct pipe_op *op = &p->ops[k];
		rc = op->backward ? backward(t, op->micro, op->micro == micro - 1, err)
				  : forward(t, op->micro, global, sum, err);
	}
	/* an error on one stage leaves its neighbours waiting: the caller's
	 * error ends the job (hug train aborts on a step error) */
	for (int i = 0; i < p->P; i++) {
		comm_wait(&p->slots[i].send);
		ag_ctx_reset(&p->slots[i].ctx);
	}
	p->sched_s += now() - t0;
	p->micro_total += micro;
	p->steps++;
	return rc;
}

/* In-place collectives on a tensor anywhere, through host memory (the
 * pipeline's groups have no NCCL communicator). */
static void host_allreduce(const struct comm *c, struct tensor *x)
{
	if (c->size <= 1)
		return;
	if (x->device == DEV_CPU) {
		comm_allreduce_tensor(c, x, COMM_SUM);
		return;
	}
	void *h = hug_malloc(tensor_nbytes(x));
	ag_memcpy(h, DEV_CPU, x->data, x->device, tensor_nbytes(x));
	comm_allreduce(c, h, tensor_numel(x), x->dtype, COMM_SUM);
	ag_memcpy(x->data, x->device, h, DEV_CPU, tensor_nbytes(x));
	hug_free(h);
}

static void host_broadcast(const struct comm *c, struct tensor *x, int root)
{
	if (c->size <= 1)
		return;
	size_t bytes = tensor_nbytes(x);
	void *h = x->device == DEV_CPU ? x->data : hug_malloc(bytes);
	if (h != x->data && c->rank == root)
		ag_memcpy(h, DEV_CPU, x->data, x->device, bytes);
	comm_broadcast(c, h, (int64_t)bytes, DT_U8, root);
	if (h != x->data) {
		ag_memcpy(x->data, x->device, h, DEV_CPU, bytes);
		hug_free(h);
	}
}

static struct tensor *tied_weight(const struct trainer *t)
{
	return model_params(&t->model)->items[t->pipe->tied].t;
}

void pipeline_finish_grads(struct trainer *t, double *sum)
{
	struct pipeline *p = t->pipe;
	const struct parallel *par = t->par;
	comm_broadcast(&par->pp_group, sum, 1, DT_F64, p->P - 1);
	if (p->tied < 0 || !(p->stage.embed || p->stage.head))
		return;
	struct tensor *g = tied_weight(t)->grad;
	const struct ag_backend *be = ag_backend_get(g->device);
	if (p->stage.head) { /* average over data-parallel ranks as dist does */
		host_allreduce(&par->dp_group, g);
		be->scale(g, 1.0 / par->dp);
	}
	host_allreduce(&p->embed, g);
	if (p->stage.head) /* the first stage updates; this copy is received after */
		be->fill(g, 0.0);
}

/* Under tensor parallelism replicated parameters count on rank 0 only. */
static bool sharded(const struct param *p)
{
	return p->shard.dim >= 0;
}

double pipeline_grad_norm(struct trainer *t)
{
	const struct parallel *par = t->par;
	double ss = optim_grad_sumsq(&t->opt, par->tp > 1 && par->tp_rank != 0 ? sharded : NULL);
	if (t->dist.zero) { /* ranges disjoint over data-parallel ranks and stages */
		comm_allreduce(&par->world, &ss, 1, DT_F64, COMM_SUM);
	} else {
		comm_allreduce(&par->tp_group, &ss, 1, DT_F64, COMM_SUM);
		comm_allreduce(&par->pp_group, &ss, 1, DT_F64, COMM_SUM);
	}
	return sqrt(ss);
}

void pipeline_after_update(struct trainer *t)
{
	struct pipeline *p = t->pipe;
	if (p->tied >= 0 && (p->stage.embed || p->stage.head))
		host_broadcast(&p->embed, tied_weight(t), 0);
}

void pipeline_bubble(const struct trainer *t, struct pipeline_bubble *out)
{
	const struct pipeline *p = t->pipe;
	memset(out, 0, sizeof(*out));
	if (!p || !p->steps)
		return;
	/* every stage's share of its schedule spent waiting, averaged */
	double v[2] = { p->wait_s / p->sched_s, 0 };
	comm_allreduce(&t->par->pp_group, v, 1, DT_F64, COMM_SUM);
	out->stages = p->P;
	out->micro = (double)p->micro_total / (double)p->steps;
	out->measured = v[0] / p->P;
	out->theory = pipeline_bubble_theory(p->P, (int)(out->micro + 0.5));
}

/* ------------------------------------------------------- checkpoints */

/* What travels ahead of each tensor of a gathered table. */
struct wire_head {
	char name[PARAM_NAME_MAX + 32];
	int32_t ndim, dtype, no_decay, pad_;
	int64_t shape[TENSOR_MAX_DIMS];
};

static void send_blocking(const struct comm *c, const void *buf, int64_t bytes, int to)
{
	struct comm_request r;
	comm_isend(c, buf, bytes, DT_U8, to, 2, &r);
	comm_wait(&r);
}

void pipeline_gather(const struct trainer *t, struct full_table *f, bool params)
{
	const struct pipeline *p = t->pipe;
	const struct parallel *par = t->par;
	if (!p || par->dp_rank != 0 || par->tp_rank != 0)
		return; /* the pipeline of world rank 0 carries everything */
	const struct comm *c = &par->pp_group;
	if (p->s > 0) {
		int64_t n = 0;
		for (int i = 0; i < f->pt.n; i++)
			n += !params || p->owner[i] == p->s;
		send_blocking(c, &n, sizeof(n), 0);
		for (int i = 0; i < f->pt.n; i++) {
			const struct param *e = &f->pt.items[i];
			if (params && p->owner[i] != p->s)
				continue;
			struct wire_head h = { .ndim = e->t->ndim, .dtype = e->t->dtype,
					       .no_decay = e->no_decay };
			snprintf(h.name, sizeof(h.name), "%s", e->name);
			memcpy(h.shape, e->t->shape, sizeof(h.shape));
			send_blocking(c, &h, sizeof(h), 0);
			send_blocking(c, e->t->data, (int64_t)tensor_nbytes(e->t), 0);
		}
		return;
	}
	for (int from = 1; from < p->P; from++) {
		int64_t n;
		comm_recv(c, &n, sizeof(n), DT_U8, from, 2);
		for (int64_t k = 0; k < n; k++) {
			struct wire_head h;
			comm_recv(c, &h, sizeof(h), DT_U8, from, 2);
			struct tensor *x = tensor_new(&f->mem, (enum dtype)h.dtype, h.ndim, h.shape);
			comm_recv(c, x->data, (int64_t)tensor_nbytes(x), DT_U8, from, 2);
			param_table_add(&f->pt, h.name, x, h.no_decay);
		}
	}
}

int pipeline_load_params(struct trainer *t, const char *dir, struct hug_error *err)
{
	/* the whole model (this rank's tensor-parallel shards) on the host,
	 * then this stage's part of it */
	struct model full = { 0 };
	struct model_config cfg;
	struct model_tp tp = model_parts(&t->model).tp;
	model_config_of(&t->model, &cfg);
	tp.stage = (struct model_stage){ 0 };
	model_init(&full, &cfg, DT_F32, false, &tp, NULL);
	enum device dev = t->device;
	t->device = DEV_CPU; /* scatter_params fills host tensors */
	int rc = scatter_params(t, model_params(&full), dir, err);
	t->device = dev;
	struct param_table *mine = model_params(&t->model), *whole = model_params(&full);
	for (int i = 0; !rc && i < mine->n; i++)
		tensor_transfer(mine->items[i].t, param_table_find(whole, mine->items[i].name)->t);
	model_free(&full);
	return rc;
}

/* ------------------------------------------------------------ evaluation */

int pipeline_eval_batch(struct trainer *t, double v[2], struct hug_error *err)
{
	struct pipeline *p = t->pipe;
	struct pipe_slot *sl = &p->slots[0];
	int64_t bt = p->b * p->len, shape[2] = { p->b, p->len };
	double n = (double)counted(t->targets->data, bt), sum = 0;
	if (n == 0) /* the same on every stage: they read the same batch */
		return 0;
	ag_ctx_reset(&sl->ctx);
	bool g = ag_set_grad_enabled(&sl->ctx, false);
	sl->ctx.training = false;
	struct tensor *ids = from_host(sl, DT_I32, 2, shape, t->inputs->data);
	struct tensor *in = p->stage.embed ? NULL : recv_from(p, t, sl, p->s - 1, TAG_ACT);
	struct tensor *out = model_forward_stage(&sl->ctx, &t->model, &p->stage, ids, NULL, in);
	int failed = out == NULL;
	if (out && p->stage.head) {
		struct tensor *tg = from_host(sl, DT_I32, 2, shape, t->targets->data);
		struct tensor *loss = model_loss(&sl->ctx, &t->model, out, tg);
		failed = loss == NULL;
		if (loss)
			sum = tensor_item(loss) * n;
	} else if (out) {
		send_to(t, sl, out, p->s + 1, TAG_ACT);
		comm_wait(&sl->send);
	}
	ag_set_grad_enabled(&sl->ctx, g);
	sl->ctx.training = true;
	if (failed) /* the neighbours are left waiting: the error ends the job */
		return hug_error_set(err, "validation: pipeline stage %d: %s", p->s,
				     sl->ctx.err.msg);
	comm_broadcast(&t->par->pp_group, &sum, 1, DT_F64, p->P - 1);
	ag_ctx_reset(&sl->ctx);
	v[0] += sum;
	v[1] += n;
	return 0;
}
