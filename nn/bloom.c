/* bloom.c: BLOOM's parameters and forward pass on the autograd ops,
 * matching Hugging Face's BloomForCausalLM (its config: bloom_config.c). */
#include "bloom.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../autograd/backend.h"
#include "../autograd/checkpoint.h"
#include "../autograd/rng.h"
#include "../base/alloc.h"
#include "../base/panic.h"
#include "param_init.h"

/* ---------------------------------------------------------- parameters */

/* The model and its parameter builder (param_init.h: made twice, measured
 * first so that one block holds them all). */
struct pbuild {
	struct bloom_model *m;
	struct param_builder b;
};

void bloom_vocab_slice(const struct bloom_model *m, int64_t *offset, int64_t *len)
{
	param_split(m->tp.rank, m->tp.size, m->cfg.vocab_size, offset, len);
}

/* The parameters of block i; Megatron's split: query_key_value and
 * dense_h_to_4h by output rows (column-parallel), dense and dense_4h_to_h
 * by input columns (row-parallel, biases replicated). */
static void layer_params(struct pbuild *pb, int i, struct bloom_layer *l)
{
	int64_t c = pb->m->cfg.hidden_size;
	l->ln1_w = param_builder_new(&pb->b, "transformer.h.%d.input_layernorm.weight", i, true, -1, c, 0);
	l->ln1_b = param_builder_new(&pb->b, "transformer.h.%d.input_layernorm.bias", i, true, -1, c, 0);
	l->qkv_w = param_builder_new(&pb->b, "transformer.h.%d.self_attention.query_key_value.weight", i, false, 0, 3 * c, c);
	l->qkv_b = param_builder_new(&pb->b, "transformer.h.%d.self_attention.query_key_value.bias", i, true, 0, 3 * c, 0);
	l->proj_w = param_builder_new(&pb->b, "transformer.h.%d.self_attention.dense.weight", i, false, 1, c, c);
	l->proj_b = param_builder_new(&pb->b, "transformer.h.%d.self_attention.dense.bias", i, true, -1, c, 0);
	l->ln2_w = param_builder_new(&pb->b, "transformer.h.%d.post_attention_layernorm.weight", i, true, -1, c, 0);
	l->ln2_b = param_builder_new(&pb->b, "transformer.h.%d.post_attention_layernorm.bias", i, true, -1, c, 0);
	l->fc1_w = param_builder_new(&pb->b, "transformer.h.%d.mlp.dense_h_to_4h.weight", i, false, 0, 4 * c, c);
	l->fc1_b = param_builder_new(&pb->b, "transformer.h.%d.mlp.dense_h_to_4h.bias", i, true, 0, 4 * c, 0);
	l->fc2_w = param_builder_new(&pb->b, "transformer.h.%d.mlp.dense_4h_to_h.weight", i, false, 1, c, 4 * c);
	l->fc2_b = param_builder_new(&pb->b, "transformer.h.%d.mlp.dense_4h_to_h.bias", i, true, -1, c, 0);
}

static void bloom_params(struct pbuild *pb)
{
	struct bloom_model *m = pb->m;
	int64_t v = m->cfg.vocab_size, c = m->cfg.hidden_size;
	struct bloom_layer scratch;
	m->wte = param_builder_new(&pb->b, "transformer.word_embeddings.weight", PARAM_BEFORE_BLOCKS, false, 0, v, c);
	m->emb_ln_w = param_builder_new(&pb->b, "transformer.word_embeddings_layernorm.weight", PARAM_BEFORE_BLOCKS, true, -1, c, 0);
	m->emb_ln_b = param_builder_new(&pb->b, "transformer.word_embeddings_layernorm.bias", PARAM_BEFORE_BLOCKS, true, -1, c, 0);
	for (int i = 0; i < m->cfg.n_layer; i++)
		layer_params(pb, i, pb->b.measuring ? &scratch : &m->layers[i]);
	m->lnf_w = param_builder_new(&pb->b, "transformer.ln_f.weight", PARAM_AFTER_BLOCKS, true, -1, c, 0);
	m->lnf_b = param_builder_new(&pb->b, "transformer.ln_f.bias", PARAM_AFTER_BLOCKS, true, -1, c, 0);
}

void bloom_alibi_slopes(int n_head, double *out)
{
	int p = 1;
	while (p * 2 <= n_head)
		p *= 2;
	/* The first p heads: (2^(-8/p))^i for i = 1..p; the rest: odd powers
	 * of 2^(-4/p), the slopes of 2p heads that the first p did not take.
	 * Bases and powers are rounded to f32 as Hugging Face computes them. */
	float base = powf(2.0f, -8.0f / (float)p);
	for (int i = 0; i < p; i++)
		out[i] = powf(base, (float)(i + 1));
	float extra = powf(2.0f, -4.0f / (float)p);
	for (int i = 0; i < n_head - p; i++)
		out[p + i] = powf(extra, (float)(2 * i + 1));
}

int bloom_tp_validate(const struct bloom_config *cfg, int size, struct hug_error *err)
{
	if (size < 1 || cfg->n_head % size || (4 * cfg->hidden_size) % size ||
	    cfg->vocab_size < size)
		return hug_error_set(err, "tensor parallelism %d needs n_head (%d) and 4 x "
				     "hidden_size (%lld) divisible by it", size, cfg->n_head,
				     (long long)(4 * cfg->hidden_size));
	return 0;
}

void bloom_model_init_on(struct bloom_model *m, const struct bloom_config *cfg,
			 enum dtype dt, bool trainable, const struct model_tp *tp,
			 const struct arena_allocator *allocator)
{
	HUG_ASSERT(dt == DT_F32 || dt == DT_F64);
	HUG_ASSERT(bloom_tp_validate(cfg, tp->size, NULL) == 0);
	memset(m, 0, sizeof(*m));
	m->cfg = *cfg;
	m->dtype = dt;
	m->tp = *tp;
	if (m->tp.size <= 1)
		m->tp.coll = NULL;
	int h_local = cfg->n_head / tp->size;
	struct pbuild pb = { .m = m, .b = { .params = &m->params, .grads = &m->grads,
		.table = &m->table, .dtype = dt, .tp_rank = tp->rank, .tp_size = tp->size,
		.trainable = trainable, .measuring = true } };
	param_builder_stage(&pb.b, tp, true);
	bloom_params(&pb);
	size_t total = pb.b.measure + param_slot_bytes(h_local, dt);
	/* one block for all parameters (and one for all gradients), so that
	 * a data-parallel all-reduce can treat them as one buffer */
	arena_init(&m->params, "params", total, allocator);
	arena_init(&m->grads, "grads", total, allocator);
	param_table_init(&m->table);
	m->layers = hug_calloc((size_t)cfg->n_layer, sizeof(*m->layers));
	pb.b.measuring = false;
	bloom_params(&pb);

	/* the slopes are computed on the host and copied to the model's device */
	struct arena host;
	arena_init(&host, "slopes", 0, NULL);
	double *slopes = hug_malloc((size_t)cfg->n_head * sizeof(double));
	bloom_alibi_slopes(cfg->n_head, slopes);
	struct tensor *hs = tensor_new(&host, dt, TENSOR_SHAPE(h_local));
	tensor_write_f64(hs, slopes + (int64_t)tp->rank * h_local);
	m->slopes = tensor_new(&m->params, dt, TENSOR_SHAPE(h_local));
	tensor_transfer(m->slopes, hs);
	hug_free(slopes);
	arena_free(&host);
	/* the size measured above must have held everything in one block */
	HUG_ASSERT(m->params.n_chunk_allocs == 1);
	HUG_ASSERT(!trainable || m->grads.n_chunk_allocs == 1);
}

void bloom_model_init_tp(struct bloom_model *m, const struct bloom_config *cfg,
			 enum dtype dt, bool trainable, const struct model_tp *tp)
{
	bloom_model_init_on(m, cfg, dt, trainable, tp, NULL);
}

void bloom_model_init(struct bloom_model *m, const struct bloom_config *cfg,
		      enum dtype dt, bool trainable)
{
	struct model_tp one = { .rank = 0, .size = 1 };
	bloom_model_init_tp(m, cfg, dt, trainable, &one);
}

void bloom_model_free(struct bloom_model *m)
{
	param_table_free(&m->table);
	hug_free(m->layers);
	arena_free(&m->params);
	arena_free(&m->grads);
	memset(m, 0, sizeof(*m));
}

void bloom_model_init_weights(struct bloom_model *m, uint64_t seed)
{
	double std = m->cfg.initializer_range;
	for (int p = 0; p < m->table.n; p++) {
		const struct param *prm = &m->table.items[p];
		struct tensor *t = prm->t;
		const char *name = prm->name;
		bool is_ln = strstr(name, "layernorm") || strstr(name, "ln_f");
		bool is_bias = strstr(name, ".bias") != NULL;
		if (is_bias) {
			tensor_fill(t, 0.0);
		} else if (is_ln) {
			tensor_fill(t, 1.0);
		} else {
			/* each parameter draws from its own stream of `seed`,
			 * element by element of the whole (unsharded) tensor */
			param_fill_normal(prm, rng_u64(seed, (uint64_t)p), std, -1);
		}
	}
}

/* ------------------------------------------------------------- forward */

/* A row-parallel linear: each rank multiplies its slice of the input
 * features, g sums the partial products over the group, then the
 * (replicated) bias is added once. Plain linear without tensor parallelism. */
static struct tensor *row_parallel(struct ag_ctx *ctx, const struct bloom_model *m,
				   struct tensor *x, struct tensor *w, struct tensor *b)
{
	if (!m->tp.coll)
		return ag_linear(ctx, x, w, b);
	struct tensor *y = ag_tp_reduce(ctx, ag_linear(ctx, x, w, NULL), m->tp.coll);
	return ag_add(ctx, y, b);
}

/* Parameter p as the forward uses it: cast to the view's dtype on the tape
 * in a bloom_model_cast view, else p itself. */
static struct tensor *use_param(struct ag_ctx *ctx, const struct bloom_model *m,
				struct tensor *p)
{
	return m->cast_view ? ag_cast(ctx, p, m->dtype) : p;
}

/* The weights of block li as the forward uses them: m's own, or in a cast
 * view, in `cast` (adapters and other fields as they are). */
static const struct bloom_layer *use_layer(struct ag_ctx *ctx, const struct bloom_model *m,
					   int li, struct bloom_layer *cast)
{
	const struct bloom_layer *s = &m->layers[li];
	if (!m->cast_view)
		return s;
	*cast = *s;
	struct tensor **w[] = { &cast->ln1_w, &cast->ln1_b, &cast->qkv_w, &cast->qkv_b,
				&cast->proj_w, &cast->proj_b, &cast->ln2_w, &cast->ln2_b,
				&cast->fc1_w, &cast->fc1_b, &cast->fc2_w, &cast->fc2_b };
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		*w[i] = use_param(ctx, m, *w[i]);
	return cast;
}

/* The MLP after dense_h_to_4h: GeLU, dense_4h_to_h and its adapter, f
 * (B, T, 4C / tp) -> (B, T, C); a region under selective recomputation
 * (the activation is not kept). */
struct mlp_out_args {
	const struct bloom_model *m;
	struct tensor *w, *b;
	const struct lora_adapter *lora;
};

static struct tensor *mlp_out(struct ag_ctx *ctx, const void *state, struct tensor *const *in)
{
	const struct mlp_out_args *a = state;
	struct tensor *f = ag_gelu(ctx, in[0]);
	return lora_apply(ctx, f, row_parallel(ctx, a->m, f, a->w, a->b), a->lora);
}

/* One block: x (B, T, C) -> (B, T, C); NULL on error. Under tensor
 * parallelism the block sees this rank's heads and MLP columns. */
static struct tensor *block_forward(struct ag_ctx *ctx, const struct bloom_model *m,
				    int li, struct tensor *x, struct tensor *mask,
				    struct tensor *segs, struct kv_cache *kv)
{
	struct bloom_layer cast;
	const struct bloom_layer *l = use_layer(ctx, m, li, &cast);
	const struct bloom_config *c = &m->cfg;
	int64_t b = x->shape[0], t = x->shape[1], hl = c->n_head / m->tp.size;
	int64_t d = c->hidden_size / c->n_head;
	bool post = c->apply_residual_connection_post_layernorm;
	const struct ag_collective *tp = m->tp.coll;

	struct tensor *ln1 = ag_layernorm(ctx, x, l->ln1_w, l->ln1_b, c->layer_norm_epsilon);
	struct tensor *in1 = ag_tp_copy(ctx, ln1, tp);                     /* f */
	struct tensor *qkv = ag_linear(ctx, in1, l->qkv_w, l->qkv_b);      /* (B, T, 3 Hl D) */
	qkv = lora_apply(ctx, in1, qkv, l->lora[BLOOM_QKV]);
	qkv = ag_view(ctx, qkv, TENSOR_SHAPE(b, t, hl, 3 * d));            /* [h][q,k,v][d] */
	const int to_bhtd[] = { 0, 2, 1, 3 };
	struct tensor *q = ag_permute(ctx, ag_slice(ctx, qkv, 3, 0, d), to_bhtd);     /* (B, Hl, T, D) */
	struct tensor *k = ag_permute(ctx, ag_slice(ctx, qkv, 3, d, d), to_bhtd);
	struct tensor *v = ag_permute(ctx, ag_slice(ctx, qkv, 3, 2 * d, d), to_bhtd);
	if (kv) { /* append k, v; attend over everything cached */
		kv_cache_append(ctx, kv, li, &k, &v);
	}
	const struct ag_attn_desc ad = {
		.pos_bias = AG_POS_BIAS_ALIBI, .slopes = m->slopes, .causal = true,
		.key_mask = mask, .dropout = c->attention_dropout,
		.head_offset = hl * m->tp.rank, .n_head_total = c->n_head, .segments = segs,
	};
	struct tensor *a = ag_attention_rc(ctx, q, k, v, &ad);     /* (B, Hl, T, D) */
	a = ag_reshape(ctx, ag_permute(ctx, a, to_bhtd), TENSOR_SHAPE(b, t, hl * d));
	a = lora_apply(ctx, a, row_parallel(ctx, m, a, l->proj_w, l->proj_b), l->lora[BLOOM_PROJ]);
	a = ag_dropout(ctx, a, c->hidden_dropout);
	x = ag_add(ctx, post ? ln1 : x, a);

	struct tensor *ln2 = ag_layernorm(ctx, x, l->ln2_w, l->ln2_b, c->layer_norm_epsilon);
	struct tensor *in2 = ag_tp_copy(ctx, ln2, tp);                     /* f */
	struct tensor *f = lora_apply(ctx, in2, ag_linear(ctx, in2, l->fc1_w, l->fc1_b),
				      l->lora[BLOOM_FC1]);
	const struct mlp_out_args mo = { m, l->fc2_w, l->fc2_b, l->lora[BLOOM_FC2] };
	f = ag_recompute_if(ctx, AG_RECOMPUTE_SELECTIVE, mlp_out, &mo, sizeof(mo), 1, &f);
	f = ag_dropout(ctx, f, c->hidden_dropout);
	return ag_add(ctx, post ? ln2 : x, f);
}

/* block_forward as a region body (recomputed under AG_RECOMPUTE_BLOCK). */
struct block_args {
	const struct bloom_model *m;
	int li;
	struct tensor *mask, *segs;
	struct kv_cache *kv;
};

static struct tensor *block_region(struct ag_ctx *ctx, const void *state,
				   struct tensor *const *in)
{
	const struct block_args *a = state;
	return block_forward(ctx, a->m, a->li, in[0], a->mask, a->segs, a->kv);
}

/* Checks ids (B, T) and mask (B, T) or NULL; false with ctx->err. */
static bool check_inputs(struct ag_ctx *ctx, struct tensor *ids, struct tensor *mask)
{
	char d0[64], d1[64];
	if (ctx->err.set)
		return false;
	if (!ids || ids->ndim != 2 || (mask && !tensor_same_shape(ids, mask))) {
		hug_error_set(&ctx->err, "bloom: ids must be (B, T) and mask (B, T) or NULL: "
			      "ids is %s, mask is %s",
			      ids ? tensor_describe(ids, d0, sizeof(d0)) : "NULL",
			      mask ? tensor_describe(mask, d1, sizeof(d1)) : "NULL");
		return false;
	}
	return true;
}

/* Stage st of the forward pass (model_stage), over a KV cache when kv is
 * not NULL (then st is the whole model): hidden (B, T, C) is the input of
 * a stage without the embedding. */
static struct tensor *forward(struct ag_ctx *ctx, const struct bloom_model *m,
			      const struct model_stage *st, struct tensor *ids,
			      struct tensor *mask, struct tensor *segs, struct tensor *hidden,
			      struct kv_cache *kv)
{
	if (!check_inputs(ctx, ids, mask))
		return NULL;
	if (segs && (kv || !tensor_same_shape(ids, segs))) {
		char d0[64];
		hug_error_set(&ctx->err, "bloom: segments must be (B, T) like ids, without a "
			      "KV cache: segments are %s", tensor_describe(segs, d0, sizeof(d0)));
		return NULL;
	}
	const struct bloom_config *c = &m->cfg;
	struct tensor *x = hidden;                                          /* (B, T, C) */
	if (st->embed) {
		int64_t v0, vl;
		bloom_vocab_slice(m, &v0, &vl);
		/* vocab-parallel lookup: each rank fills the rows it holds, g sums */
		x = ag_embedding_shard(ctx, ids, m->wte, v0, c->vocab_size);
		x = ag_tp_reduce(ctx, x, m->tp.coll);
		x = ag_layernorm(ctx, x, m->emb_ln_w, m->emb_ln_b, c->layer_norm_epsilon);
	}
	if (kv && x) {
		struct tensor *dst = ag_slice(ctx, kv->mask, 1, kv->len, ids->shape[1]);
		if (mask)
			ag_backend_get(ctx->step->allocator->device)->copy(dst, mask);
		else
			ag_backend_get(ctx->step->allocator->device)->fill(dst, 1.0);
		mask = ag_slice(ctx, kv->mask, 1, 0, kv->len + ids->shape[1]);
	}
	for (int i = st->layer_lo; i < st->layer_hi && x; i++) {
		ag_block_hook(ctx, i);
		x = ag_recompute_if(ctx, AG_RECOMPUTE_BLOCK, block_region,
				    &(struct block_args){ m, i, mask, segs, kv }, sizeof(struct block_args), 1, &x);
	}
	if (!st->head)
		return x;
	if (x)
		x = ag_layernorm(ctx, x, use_param(ctx, m, m->lnf_w), use_param(ctx, m, m->lnf_b),
				 c->layer_norm_epsilon);
	if (kv && x)
		kv->len += ids->shape[1];
	x = ag_tp_copy(ctx, x, m->tp.coll);                                   /* f */
	return ag_matmul(ctx, x, m->wte, false, true);                        /* (B, T, V / tp) */
}

/* The whole model as one stage. */
static struct model_stage whole(const struct bloom_model *m)
{
	return (struct model_stage){ 0, m->cfg.n_layer, true, true };
}

struct tensor *bloom_loss(struct ag_ctx *ctx, const struct bloom_model *m,
			  struct tensor *logits, struct tensor *targets)
{
	int64_t v0, vl;
	bloom_vocab_slice(m, &v0, &vl);
	return ag_cross_entropy_shard(ctx, logits, targets, -100, v0, m->cfg.vocab_size,
				      m->tp.coll);
}

struct tensor *bloom_forward(struct ag_ctx *ctx, const struct bloom_model *m,
			     struct tensor *ids, struct tensor *mask)
{
	struct model_stage st = whole(m);
	return forward(ctx, m, &st, ids, mask, NULL, NULL, NULL);
}

struct tensor *bloom_forward_packed(struct ag_ctx *ctx, const struct bloom_model *m,
				    struct tensor *ids, struct tensor *mask,
				    struct tensor *segs)
{
	struct model_stage st = whole(m);
	return forward(ctx, m, &st, ids, mask, segs, NULL, NULL);
}

struct tensor *bloom_forward_stage(struct ag_ctx *ctx, const struct bloom_model *m,
				   const struct model_stage *stage, struct tensor *ids,
				   struct tensor *mask, struct tensor *hidden)
{
	return forward(ctx, m, stage, ids, mask, NULL, hidden, NULL);
}

void bloom_kv_cache_init(struct kv_cache *kv, const struct bloom_model *m,
			 int64_t batch, int64_t max_len)
{
	const struct bloom_config *c = &m->cfg;
	kv_cache_init(kv, c->n_layer, c->n_head / m->tp.size, c->hidden_size / c->n_head,
		      m->dtype, ag_device_allocator(m->wte->device), batch, max_len);
}

struct tensor *bloom_forward_cached(struct ag_ctx *ctx, const struct bloom_model *m,
				    struct kv_cache *kv, struct tensor *ids,
				    struct tensor *mask)
{
	char d[64];
	if (ctx->err.set)
		return NULL;
	if (ctx->grad_enabled) {
		hug_error_set(&ctx->err, "bloom_forward_cached: needs grad mode off");
		return NULL;
	}
	if (!ids || ids->ndim != 2 || ids->shape[0] != kv->batch ||
	    kv->len + ids->shape[1] > kv->max_len) {
		hug_error_set(&ctx->err, "bloom_forward_cached: ids %s do not fit a cache of "
			      "%lld sequences holding %lld of %lld positions",
			      ids ? tensor_describe(ids, d, sizeof(d)) : "NULL",
			      (long long)kv->batch, (long long)kv->len, (long long)kv->max_len);
		return NULL;
	}
	struct model_stage st = whole(m);
	return forward(ctx, m, &st, ids, mask, NULL, NULL, kv);
}

struct tensor *bloom_lm_loss(struct ag_ctx *ctx, struct tensor *logits,
			     struct tensor *labels)
{
	return model_lm_loss(ctx, logits, labels);
}
