/* llama.c: the parameters, initialisation, forward pass and KV cache of
 * the Llama-style decoder (nn/llama.h) on the autograd ops, matching
 * transformers' LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM and
 * MistralForCausalLM. */
#include "llama.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../autograd/backend.h"
#include "../autograd/checkpoint.h"
#include "../autograd/rng.h"
#include "../autograd/transfer.h"
#include "../base/alloc.h"
#include "../base/panic.h"
#include "param_init.h"

/* ---------------------------------------------------------- parameters */

/* The model and its parameter builder (param_init.h: made twice, measured
 * first so that one block holds them all). */
struct pbuild {
	struct llama_model *m;
	struct param_builder b;
};

int64_t llama_kv_heads_local(const struct llama_model *m)
{
	return model_kv_heads_per_rank(&(struct model_dims){ .n_kv_head = m->cfg.n_kv_head },
				       m->tp.size);
}

void llama_vocab_slice(const struct llama_model *m, int64_t *offset, int64_t *len)
{
	param_split(m->tp.rank, m->tp.size, m->cfg.vocab_size, offset, len);
}

/* Block i, in transformers' parameter order. */
static void layer_params(struct pbuild *pb, int i, struct llama_layer *l)
{
	const struct llama_config *c = &pb->m->cfg;
	int64_t C = c->hidden_size, D = c->head_dim, I = c->intermediate_size;
	int64_t q = c->n_head * D, kv = c->n_kv_head * D;
	bool qkv_b = llama_qkv_bias(c), o_b = llama_o_bias(c), mlp_b = c->mlp_bias;
	memset(l, 0, sizeof(*l));
	static const char *const w_names[LLAMA_N_LINEAR] = {
		"model.layers.%d.self_attn.q_proj.weight", "model.layers.%d.self_attn.k_proj.weight",
		"model.layers.%d.self_attn.v_proj.weight", "model.layers.%d.self_attn.o_proj.weight",
		"model.layers.%d.mlp.gate_proj.weight", "model.layers.%d.mlp.up_proj.weight",
		"model.layers.%d.mlp.down_proj.weight",
	};
	static const char *const b_names[LLAMA_N_LINEAR] = {
		"model.layers.%d.self_attn.q_proj.bias", "model.layers.%d.self_attn.k_proj.bias",
		"model.layers.%d.self_attn.v_proj.bias", "model.layers.%d.self_attn.o_proj.bias",
		"model.layers.%d.mlp.gate_proj.bias", "model.layers.%d.mlp.up_proj.bias",
		"model.layers.%d.mlp.down_proj.bias",
	};
	const int64_t rows[LLAMA_N_LINEAR] = { q, kv, kv, C, I, I, C };
	const int64_t cols[LLAMA_N_LINEAR] = { C, C, C, q, C, C, I };
	const bool column[LLAMA_N_LINEAR] = { true, true, true, false, true, true, false };
	const bool bias[LLAMA_N_LINEAR] = { qkv_b, qkv_b, qkv_b, o_b, mlp_b, mlp_b, mlp_b };
	/* fewer key/value heads than ranks: k and v whole on every rank */
	bool kv_whole = llama_kv_replicated(c, pb->m->tp.size);
	for (int k = 0; k < LLAMA_N_LINEAR; k++) {
		if (k == LLAMA_GATE && llama_qk_norm(c)) {
			l->q_norm = param_builder_new(&pb->b, "model.layers.%d.self_attn.q_norm.weight", i, true,
					      -1, D, 0);
			l->k_norm = param_builder_new(&pb->b, "model.layers.%d.self_attn.k_norm.weight", i, true,
					      -1, D, 0);
		}
		bool whole = kv_whole && (k == LLAMA_K || k == LLAMA_V);
		int wdim = whole ? -1 : column[k] ? 0 : 1;
		l->w[k] = param_builder_new(&pb->b, w_names[k], i, false, wdim, rows[k], cols[k]);
		if (bias[k]) /* a row-parallel layer's bias is added once, replicated */
			l->b[k] = param_builder_new(&pb->b, b_names[k], i, true,
						    column[k] && !whole ? 0 : -1, rows[k], 0);
	}
	l->ln1_w = param_builder_new(&pb->b, "model.layers.%d.input_layernorm.weight", i, true, -1, C, 0);
	l->ln2_w = param_builder_new(&pb->b, "model.layers.%d.post_attention_layernorm.weight", i, true, -1,
			     C, 0);
}

static void llama_params(struct pbuild *pb)
{
	struct llama_model *m = pb->m;
	int64_t V = m->cfg.vocab_size, C = m->cfg.hidden_size;
	struct llama_layer scratch;
	m->embed = param_builder_new(&pb->b, "model.embed_tokens.weight", PARAM_BEFORE_BLOCKS, false, 0, V, C);
	for (int i = 0; i < m->cfg.n_layer; i++)
		layer_params(pb, i, pb->b.measuring ? &scratch : &m->layers[i]);
	m->norm_w = param_builder_new(&pb->b, "model.norm.weight", PARAM_AFTER_BLOCKS, true, -1, C, 0);
	m->lm_head = m->cfg.tie_word_embeddings ? m->embed
						: param_builder_new(&pb->b, "lm_head.weight", PARAM_AFTER_BLOCKS, false, 0, V, C);
}

void llama_model_init_on(struct llama_model *m, const struct llama_config *cfg, enum dtype dt,
			 bool trainable, const struct model_tp *tp,
			 const struct arena_allocator *allocator)
{
	HUG_ASSERT(dt == DT_F32 || dt == DT_F64);
	HUG_ASSERT(llama_tp_validate(cfg, tp->size, NULL) == 0);
	memset(m, 0, sizeof(*m));
	m->cfg = *cfg;
	m->dtype = dt;
	m->tp = *tp;
	if (m->tp.size <= 1)
		m->tp.coll = NULL;
	int64_t half = cfg->head_dim / 2;
	struct pbuild pb = { .m = m, .b = { .params = &m->params, .grads = &m->grads,
		.table = &m->table, .dtype = dt, .tp_rank = tp->rank, .tp_size = tp->size,
		.trainable = trainable, .measuring = true } };
	param_builder_stage(&pb.b, tp, cfg->tie_word_embeddings);
	llama_params(&pb);
	size_t total = pb.b.measure + param_slot_bytes(half, DT_F64);
	arena_init(&m->params, "params", total, allocator);
	arena_init(&m->grads, "grads", total, allocator);
	param_table_init(&m->table);
	m->layers = hug_calloc((size_t)cfg->n_layer, sizeof(*m->layers));
	pb.b.measuring = false;
	llama_params(&pb);

	/* the inverse frequencies, computed on the host */
	double *f = hug_malloc((size_t)half * sizeof(double));
	rope_inv_freq(&cfg->rope, cfg->head_dim, f);
	m->inv_freq = tensor_new(&m->params, DT_F64, TENSOR_SHAPE(half));
	ag_memcpy(m->inv_freq->data, m->inv_freq->device, f, DEV_CPU,
		  (size_t)half * sizeof(double));
	hug_free(f);
	HUG_ASSERT(m->params.n_chunk_allocs == 1);
	HUG_ASSERT(!trainable || m->grads.n_chunk_allocs == 1);
}

void llama_model_free(struct llama_model *m)
{
	param_table_free(&m->table);
	hug_free(m->layers);
	arena_free(&m->params);
	arena_free(&m->grads);
	memset(m, 0, sizeof(*m));
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

void llama_model_init_weights(struct llama_model *m, uint64_t seed)
{
	double std = m->cfg.initializer_range;
	for (int p = 0; p < m->table.n; p++) {
		const struct param *prm = &m->table.items[p];
		struct tensor *t = prm->t;
		HUG_ASSERT(t->device == DEV_CPU);
		if (ends_with(prm->name, ".bias")) {
			tensor_fill(t, 0.0);
			continue;
		}
		if (t->ndim == 1) { /* the RMSNorm weights */
			tensor_fill(t, 1.0);
			continue;
		}
		/* transformers zeroes the padding row of embed_tokens */
		param_fill_normal(prm, rng_u64(seed, (uint64_t)p), std,
				  t == m->embed ? m->cfg.pad_token_id : -1);
	}
}

void llama_model_copy_weights(struct llama_model *dst, const struct llama_model *src)
{
	HUG_ASSERT(dst->table.n == src->table.n);
	for (int i = 0; i < src->table.n; i++) {
		HUG_ASSERT(!strcmp(src->table.items[i].name, dst->table.items[i].name));
		tensor_transfer(dst->table.items[i].t, src->table.items[i].t);
	}
}

bool llama_model_cast(struct ag_ctx *ctx, const struct llama_model *m, enum dtype dt,
		      struct llama_model *out)
{
	HUG_ASSERT(!m->cast_view);
	*out = *m;
	out->dtype = dt;
	out->cast_view = true;
	/* the embedding first; the blocks, the norm and an untied lm_head
	 * are cast where the forward reaches them */
	out->embed = ag_cast(ctx, m->embed, dt);
	if (m->cfg.tie_word_embeddings)
		out->lm_head = out->embed;
	return !ag_failed(ctx);
}

/* ------------------------------------------------------------- forward */

static struct tensor *use_param(struct ag_ctx *ctx, const struct llama_model *m,
				struct tensor *p)
{
	return m->cast_view && p ? ag_cast(ctx, p, m->dtype) : p;
}

static const struct llama_layer *use_layer(struct ag_ctx *ctx, const struct llama_model *m,
					   int li, struct llama_layer *cast)
{
	const struct llama_layer *s = &m->layers[li];
	if (!m->cast_view)
		return s;
	*cast = *s;
	cast->ln1_w = use_param(ctx, m, s->ln1_w);
	cast->ln2_w = use_param(ctx, m, s->ln2_w);
	cast->q_norm = use_param(ctx, m, s->q_norm);
	cast->k_norm = use_param(ctx, m, s->k_norm);
	for (int k = 0; k < LLAMA_N_LINEAR; k++) {
		cast->w[k] = use_param(ctx, m, s->w[k]);
		cast->b[k] = use_param(ctx, m, s->b[k]);
	}
	return cast;
}

/* A column-parallel linear with its adapter: x is this rank's copy of the
 * replicated input. */
static struct tensor *proj(struct ag_ctx *ctx, const struct llama_layer *l, int k,
			   struct tensor *x)
{
	return lora_apply(ctx, x, ag_linear(ctx, x, l->w[k], l->b[k]), l->lora[k]);
}

/* A row-parallel linear: partial products summed over the group, then the
 * replicated bias once. */
static struct tensor *row_parallel(struct ag_ctx *ctx, const struct llama_model *m,
				   const struct llama_layer *l, int k, struct tensor *x)
{
	struct tensor *y;
	if (!m->tp.coll)
		y = ag_linear(ctx, x, l->w[k], l->b[k]);
	else {
		y = ag_tp_reduce(ctx, ag_linear(ctx, x, l->w[k], NULL), m->tp.coll);
		if (l->b[k])
			y = ag_add(ctx, y, l->b[k]);
	}
	return lora_apply(ctx, x, y, l->lora[k]);
}

/* k_proj or v_proj (k) of a rank whose key/value head is replicated over
 * ranks (llama_kv_replicated): the whole weight and bias are on every rank,
 * so the rows of head g = rank / (ranks / n_kv_head) are sliced out behind
 * f (identity forward, all-reduce backward), which sums each head's
 * gradient over the ranks that share it. -> (B, T, D). */
static struct tensor *replicated_kv_proj(struct ag_ctx *ctx, const struct llama_model *m,
					 const struct llama_layer *l, int k, struct tensor *x)
{
	int64_t d = m->cfg.head_dim;
	int64_t g = m->tp.rank / (m->tp.size / m->cfg.n_kv_head);
	const struct ag_collective *tp = m->tp.coll;
	struct tensor *w = ag_slice(ctx, ag_tp_copy(ctx, l->w[k], tp), 0, g * d, d);
	struct tensor *b = l->b[k] ? ag_slice(ctx, ag_tp_copy(ctx, l->b[k], tp), 0, g * d, d)
				   : NULL;
	return ag_linear(ctx, x, w, b);
}

/* (B, T, n D) -> (B, n, T, D) with Qwen3's per-head RMSNorm (norm not
 * NULL) and the rotation at positions pos. */
static struct tensor *heads(struct ag_ctx *ctx, const struct llama_model *m,
			    struct tensor *x, int64_t n, struct tensor *norm,
			    struct tensor *pos, bool rotate)
{
	int64_t b = x->shape[0], t = x->shape[1], d = m->cfg.head_dim;
	const int to_bhtd[] = { 0, 2, 1, 3 };
	x = ag_view(ctx, x, TENSOR_SHAPE(b, t, n, d));
	/* the replicated norm weight sees only this rank's heads: f (identity
	 * forward, all-reduce backward) sums its gradient over the group */
	if (norm)
		x = ag_rmsnorm(ctx, x, ag_tp_copy(ctx, norm, m->tp.coll), m->cfg.rms_norm_eps);
	x = ag_permute(ctx, x, to_bhtd);
	return rotate ? ag_rope(ctx, x, pos, m->inv_freq) : x;
}

/* The MLP after gate_proj and up_proj: SwiGLU, down_proj and its adapter,
 * gate and up (B, T, I / tp) -> (B, T, C); a region under selective
 * recomputation (the activation is not kept). */
struct mlp_out_args {
	const struct llama_model *m;
	struct llama_layer l;
};

static struct tensor *mlp_out(struct ag_ctx *ctx, const void *state, struct tensor *const *in)
{
	const struct mlp_out_args *a = state;
	return row_parallel(ctx, a->m, &a->l, LLAMA_DOWN, ag_swiglu(ctx, in[0], in[1]));
}

static struct tensor *block_forward(struct ag_ctx *ctx, const struct llama_model *m, int li,
				    struct tensor *x, struct tensor *mask, struct tensor *pos,
				    struct tensor *segs, struct kv_cache *kv)
{
	struct llama_layer cast;
	const struct llama_layer *l = use_layer(ctx, m, li, &cast);
	const struct llama_config *c = &m->cfg;
	const struct ag_collective *tp = m->tp.coll;
	if (!x)
		return NULL;
	int64_t b = x->shape[0], t = x->shape[1], d = c->head_dim;
	int64_t hl = c->n_head / m->tp.size, kvl = llama_kv_heads_local(m);
	bool kv_whole = llama_kv_replicated(c, m->tp.size);

	struct tensor *h = ag_tp_copy(ctx, ag_rmsnorm(ctx, x, l->ln1_w, c->rms_norm_eps), tp);
	struct tensor *q = heads(ctx, m, proj(ctx, l, LLAMA_Q, h), hl, l->q_norm, pos, true);
	struct tensor *kp = kv_whole ? replicated_kv_proj(ctx, m, l, LLAMA_K, h)
				     : proj(ctx, l, LLAMA_K, h);
	struct tensor *vp = kv_whole ? replicated_kv_proj(ctx, m, l, LLAMA_V, h)
				     : proj(ctx, l, LLAMA_V, h);
	struct tensor *k = heads(ctx, m, kp, kvl, l->k_norm, pos, true);
	struct tensor *v = heads(ctx, m, vp, kvl, NULL, pos, false);
	if (kv && k && v) { /* append k, v; attend over everything cached */
		kv_cache_append(ctx, kv, li, &k, &v);
	}
	const struct ag_attn_desc ad = {
		.pos_bias = AG_POS_BIAS_NONE, .causal = true, .key_mask = mask,
		.dropout = c->attention_dropout,
		.head_offset = hl * m->tp.rank, .n_head_total = c->n_head,
		.window = c->sliding_window, .segments = segs,
	};
	struct tensor *a = ag_attention_rc(ctx, q, k, v, &ad);      /* (B, Hl, T, D) */
	const int to_bthd[] = { 0, 2, 1, 3 };
	a = ag_reshape(ctx, ag_permute(ctx, a, to_bthd), TENSOR_SHAPE(b, t, hl * d));
	x = ag_add(ctx, x, row_parallel(ctx, m, l, LLAMA_O, a));

	h = ag_tp_copy(ctx, ag_rmsnorm(ctx, x, l->ln2_w, c->rms_norm_eps), tp);
	struct tensor *gate = proj(ctx, l, LLAMA_GATE, h); /* before up_proj, as transformers */
	struct tensor *gu[] = { gate, proj(ctx, l, LLAMA_UP, h) };
	const struct mlp_out_args mo = { m, *l };
	return ag_add(ctx, x, ag_recompute_if(ctx, AG_RECOMPUTE_SELECTIVE, mlp_out, &mo,
					      sizeof(mo), 2, gu));
}

/* block_forward as a region body (recomputed under AG_RECOMPUTE_BLOCK). */
struct block_args {
	const struct llama_model *m;
	int li;
	struct tensor *mask, *pos, *segs;
	struct kv_cache *kv;
};

static struct tensor *block_region(struct ag_ctx *ctx, const void *state,
				   struct tensor *const *in)
{
	const struct block_args *a = state;
	return block_forward(ctx, a->m, a->li, in[0], a->mask, a->pos, a->segs, a->kv);
}

/* Position ids (B, T) i32 in the step arena: cumsum(mask) - 1 clamped at
 * 0 over all n positions of `host_mask` (B rows of stride `ld`; NULL: no
 * padding), of which the last T are returned. With host_segs (B, T)
 * document ids (n == T == ld), the sum restarts where the id changes: each
 * packed document counts from 0. */
static struct tensor *positions(struct ag_ctx *ctx, const int32_t *host_mask, int64_t ld,
				int64_t b, int64_t n, int64_t t, const int32_t *host_segs)
{
	struct tensor *pos = tensor_new(ctx->step, DT_I32, TENSOR_SHAPE(b, t));
	int32_t *p = pos->device == DEV_CPU ? pos->data
					    : arena_alloc_meta(ctx->step, (size_t)(b * t) * 4);
	for (int64_t i = 0; i < b; i++) {
		int64_t cum = 0;
		for (int64_t j = 0; j < n; j++) {
			if (host_segs && j > 0 && host_segs[i * t + j] != host_segs[i * t + j - 1])
				cum = 0;
			cum += host_mask ? host_mask[i * ld + j] != 0 : 1;
			if (j >= n - t)
				p[i * t + j - (n - t)] = (int32_t)(cum > 0 ? cum - 1 : 0);
		}
	}
	if (pos->device != DEV_CPU)
		ag_memcpy(pos->data, pos->device, p, DEV_CPU, (size_t)(b * t) * 4);
	return pos;
}

/* The i32 elements of a (B, T) tensor on the host (its own memory when
 * it is a contiguous host tensor, else a copy in the step arena's host
 * memory). */
static const int32_t *host_i32(struct ag_ctx *ctx, const struct tensor *x)
{
	int64_t b = x->shape[0], t = x->shape[1];
	if (x->device == DEV_CPU && tensor_is_contiguous(x))
		return x->data;
	int32_t *h = arena_alloc_meta(ctx->step, (size_t)(b * t) * 4);
	for (int64_t i = 0; i < b; i++)
		ag_memcpy(h + i * t, DEV_CPU, (const int32_t *)x->data + i * x->stride[0],
			  x->device, (size_t)t * 4);
	return h;
}

/* The embedding, with no gradient into the pad row (transformers'
 * nn.Embedding(padding_idx=pad_token_id)): positions holding the pad id
 * take their rows from a lookup outside the tape. */
static struct tensor *embed(struct ag_ctx *ctx, const struct llama_model *m,
			    struct tensor *ids)
{
	int64_t v0, vl, b = ids->shape[0], t = ids->shape[1];
	int pad = m->cfg.pad_token_id;
	llama_vocab_slice(m, &v0, &vl);
	struct tensor *x = ag_embedding_shard(ctx, ids, m->embed, v0, m->cfg.vocab_size);
	if (!x || pad < 0 || !ctx->grad_enabled || !m->embed->requires_grad)
		return x;
	const int32_t *h = host_i32(ctx, ids);
	bool any = false;
	for (int64_t i = 0; i < b * t && !any; i++)
		any = h[i] == pad;
	if (!any)
		return x;
	bool was = ag_set_grad_enabled(ctx, false);
	struct tensor *x0 = ag_embedding_shard(ctx, ids, m->embed, v0, m->cfg.vocab_size);
	ag_set_grad_enabled(ctx, was);
	struct tensor *keep = tensor_new(ctx->step, DT_F32, TENSOR_SHAPE(b, t, 1));
	struct tensor *drop = tensor_new(ctx->step, DT_F32, TENSOR_SHAPE(b, t, 1));
	float *hk = arena_alloc_meta(ctx->step, (size_t)(2 * b * t) * sizeof(float));
	for (int64_t i = 0; i < b * t; i++) {
		hk[i] = h[i] == pad ? 0.0f : 1.0f;
		hk[b * t + i] = 1.0f - hk[i];
	}
	ag_memcpy(keep->data, keep->device, hk, DEV_CPU, (size_t)(b * t) * sizeof(float));
	ag_memcpy(drop->data, drop->device, hk + b * t, DEV_CPU, (size_t)(b * t) * sizeof(float));
	if (x->dtype != DT_F32) {
		keep = ag_cast(ctx, keep, x->dtype);
		drop = ag_cast(ctx, drop, x->dtype);
	}
	return ag_add(ctx, ag_mul(ctx, x, keep), ag_mul(ctx, x0, drop));
}

/* Stage st of the forward pass (model_stage), over a KV cache when kv is
 * not NULL (then st is the whole model). */
static struct tensor *forward(struct ag_ctx *ctx, const struct llama_model *m,
			      const struct model_stage *st, struct tensor *ids,
			      struct tensor *mask, struct tensor *segs, struct tensor *hidden,
			      struct kv_cache *kv)
{
	char d0[64], d1[64];
	if (ctx->err.set)
		return NULL;
	if (segs && (kv || !ids || !tensor_same_shape(ids, segs) || segs->dtype != DT_I32)) {
		hug_error_set(&ctx->err, "llama: segments must be (B, T) i32 like ids, without a "
			      "KV cache: segments are %s",
			      tensor_describe(segs, d0, sizeof(d0)));
		return NULL;
	}
	if (!ids || ids->ndim != 2 || ids->dtype != DT_I32 ||
	    (mask && (!tensor_same_shape(ids, mask) || mask->dtype != DT_I32))) {
		hug_error_set(&ctx->err, "llama: ids must be (B, T) i32 and mask (B, T) i32 or "
			      "NULL: ids is %s, mask is %s",
			      ids ? tensor_describe(ids, d0, sizeof(d0)) : "NULL",
			      mask ? tensor_describe(mask, d1, sizeof(d1)) : "NULL");
		return NULL;
	}
	int64_t b = ids->shape[0], t = ids->shape[1];
	if (kv) {
		if (ctx->grad_enabled) {
			hug_error_set(&ctx->err, "llama_forward: a KV cache needs grad mode off");
			return NULL;
		}
		if (b != kv->batch || kv->len + t > kv->max_len) {
			hug_error_set(&ctx->err, "llama_forward: ids %s do not fit a cache of "
				      "%lld sequences holding %lld of %lld positions",
				      tensor_describe(ids, d0, sizeof(d0)), (long long)kv->batch,
				      (long long)kv->len, (long long)kv->max_len);
			return NULL;
		}
	}
	struct tensor *pos;
	if (kv) {
		/* the cache's mask (device) and its host mirror grow by t */
		const struct ag_backend *be = ag_backend_get(ctx->step->allocator->device);
		struct tensor *dst = ag_slice(ctx, kv->mask, 1, kv->len, t);
		const int32_t *hm = mask ? host_i32(ctx, mask) : NULL;
		for (int64_t i = 0; i < b; i++)
			for (int64_t j = 0; j < t; j++)
				kv->host_mask[i * kv->max_len + kv->len + j] = hm ? hm[i * t + j] : 1;
		if (mask)
			be->copy(dst, mask);
		else
			be->fill(dst, 1.0);
		mask = ag_slice(ctx, kv->mask, 1, 0, kv->len + t);
		pos = positions(ctx, kv->host_mask, kv->max_len, b, kv->len + t, t, NULL);
	} else {
		pos = positions(ctx, mask ? host_i32(ctx, mask) : NULL, t, b, t, t,
				segs ? host_i32(ctx, segs) : NULL);
	}
	struct tensor *x = hidden;                                    /* (B, T, C) */
	if (st->embed) {
		x = embed(ctx, m, ids);
		x = ag_tp_reduce(ctx, x, m->tp.coll);
	}
	for (int i = st->layer_lo; i < st->layer_hi && x; i++) {
		ag_block_hook(ctx, i);
		x = ag_recompute_if(ctx, AG_RECOMPUTE_BLOCK, block_region,
				    &(struct block_args){ m, i, mask, pos, segs, kv },
				    sizeof(struct block_args), 1, &x);
	}
	if (!st->head)
		return x;
	if (x)
		x = ag_rmsnorm(ctx, x, use_param(ctx, m, m->norm_w), m->cfg.rms_norm_eps);
	if (kv && x)
		kv->len += t;
	x = ag_tp_copy(ctx, x, m->tp.coll);
	struct tensor *head = m->cfg.tie_word_embeddings ? m->embed : use_param(ctx, m, m->lm_head);
	return ag_matmul(ctx, x, head, false, true);                   /* (B, T, V / tp) */
}

struct tensor *llama_forward(struct ag_ctx *ctx, const struct llama_model *m,
			     struct tensor *ids, struct tensor *mask, struct tensor *segs,
			     struct kv_cache *kv)
{
	struct model_stage st = { 0, m->cfg.n_layer, true, true };
	return forward(ctx, m, &st, ids, mask, segs, NULL, kv);
}

struct tensor *llama_forward_stage(struct ag_ctx *ctx, const struct llama_model *m,
				   const struct model_stage *stage, struct tensor *ids,
				   struct tensor *mask, struct tensor *hidden)
{
	return forward(ctx, m, stage, ids, mask, NULL, hidden, NULL);
}

struct tensor *llama_loss(struct ag_ctx *ctx, const struct llama_model *m,
			  struct tensor *logits, struct tensor *targets)
{
	int64_t v0, vl;
	llama_vocab_slice(m, &v0, &vl);
	return ag_cross_entropy_shard(ctx, logits, targets, -100, v0, m->cfg.vocab_size,
				      m->tp.coll);
}

/* ------------------------------------------------------------ KV cache */

void llama_kv_cache_init(struct kv_cache *kv, const struct llama_model *m,
			 int64_t batch, int64_t max_len)
{
	const struct llama_config *c = &m->cfg;
	kv_cache_init(kv, c->n_layer, llama_kv_heads_local(m), c->head_dim, m->dtype,
		      ag_device_allocator(m->embed->device), batch, max_len);
}

