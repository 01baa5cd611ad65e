/* act_count.c: per-token step-arena counts of each family's training
 * forward and backward (nn/act_count.h). Checked against the arena's
 * high-water mark by tests/test_mem_plan.c and tests/mpi/mpi_plan.c. */
#include "act_count.h"

#include <string.h>

#include "bloom.h"
#include "llama.h"

/* The local widths of a block under tensor parallelism. */
struct widths {
	int64_t c;                   /* hidden (not split) */
	int64_t q, kv;               /* this rank's query / key-value width (heads x D) */
	int64_t f;                   /* this rank's MLP width */
	int64_t rp_attn, rp_mlp;     /* row-parallel outputs of the attention output
					and the MLP's down projection */
	int64_t rpg_attn, rpg_mlp;   /* and their gradient buffers */
	int64_t tpc;                 /* gradient buffers of the two f copies (TP only) */
};

/* row_parallel in nn/bloom.c and nn/llama.c: tp 1, one linear with its
 * bias; else the partial product, its all-reduced copy and, with a bias,
 * the sum. */
static int64_t row_parallel_outputs(int64_t c, int tp, bool bias)
{
	return tp > 1 ? (bias ? 3 : 2) * c : c;
}

/* Their gradient buffers: an add's output gradient passes to a same-shape
 * input (autograd/tape.c, add_pass_through), so the bias sum under TP
 * needs none of its own. */
static int64_t row_parallel_grads(int64_t c, int tp)
{
	return tp > 1 ? 2 * c : c;
}

static struct widths widths_of(const struct model_dims *d, int tp, bool bias_o, bool bias_down)
{
	struct widths w;
	w.c = d->hidden_size;
	w.q = (int64_t)(d->n_head / tp) * d->head_dim;
	w.kv = model_kv_heads_per_rank(d, tp) * d->head_dim;
	w.f = d->intermediate_size / tp;
	w.rp_attn = row_parallel_outputs(w.c, tp, bias_o);
	w.rp_mlp = row_parallel_outputs(w.c, tp, bias_down);
	w.rpg_attn = row_parallel_grads(w.c, tp);
	w.rpg_mlp = row_parallel_grads(w.c, tp);
	w.tpc = tp > 1 ? 2 * w.c : 0;
	return w;
}

/* BLOOM (block_forward in nn/bloom.c): ln1, fused qkv, attention, a
 * permuted copy, dense, residual add, ln2, fc1, GeLU, fc2, residual add.
 * Gradients: ln1 and ln2 outputs (the block input and the middle residual
 * take the residual adds' output buffers, autograd/tape.c's
 * add_pass_through), qkv and the q/k/v permutes (their slices' gradients
 * go straight into qkv's, scatter_to_view_root), the attention output and
 * its copy (likewise without the permute's), dense, fc1, GeLU and fc2
 * outputs. */
static void bloom_like(const struct widths *w, struct model_act_count *a)
{
	a->fwd = 4 * w->c + w->rp_attn + w->rp_mlp + 3 * w->q + 2 * w->q + 2 * w->f;
	a->grad = 2 * w->c + w->rpg_attn + w->rpg_mlp + w->tpc + 8 * w->q + 2 * w->f;
	a->stat = 4;                 /* two LayerNorms: mean and rstd */
	a->mlp_act = w->f;
}

/* Llama-style (block_forward in nn/llama.c): RMSNorm, q/k/v projections,
 * RoPE on q and k, attention, a permuted copy, o, residual add, RMSNorm,
 * gate and up, SwiGLU, down, residual add; Qwen3 adds RMSNorm on q and k.
 * Gradients: q and k through projection, permute and RoPE (three buffers
 * each, four with the QK norm), v through projection and permute, the
 * attention output and its copy (not the permute between them: the copy's
 * gradient goes straight to the output's), o, the norms' outputs, gate,
 * up, SwiGLU and down (the block input and the middle residual take the
 * residual adds' output buffers). */
static void llama_like(const struct widths *w, bool qk_norm, int64_t heads,
		       struct model_act_count *a)
{
	int64_t qk = w->q + w->kv;
	a->fwd = 4 * w->c + w->rp_attn + w->rp_mlp + (w->q + 2 * w->kv) + qk + 2 * w->q + 3 * w->f;
	a->grad = 2 * w->c + w->rpg_attn + w->rpg_mlp + w->tpc + 3 * qk + 2 * w->kv + 2 * w->q +
		  3 * w->f;
	a->stat = 2;                 /* two RMSNorms: 1/rms */
	if (qk_norm) {
		a->fwd += qk;
		a->grad += qk;
		a->stat += heads;    /* per head of q and k */
	}
	a->mlp_act = w->f;
}

void model_act_count(const struct model_config *cfg, int tp, bool frozen,
		     struct model_act_count *out)
{
	const struct model_dims *d = &cfg->dims;
	bool bloom = cfg->family == &bloom_family;
	memset(out, 0, sizeof(*out));
	if (bloom) {
		struct widths w = widths_of(d, tp, true, true);
		bloom_like(&w, out);
	} else {
		const struct llama_config *lc = llama_config_of(cfg);
		struct widths w = widths_of(d, tp, lc->attention_bias, lc->mlp_bias);
		llama_like(&w, llama_qk_norm(lc), d->n_head / tp + model_kv_heads_per_rank(d, tp), out);
	}
	int64_t c = d->hidden_size;
	/* the lookup (and its all-reduced copy under TP), each with a
	 * gradient unless the embedding is frozen; BLOOM's embedding
	 * LayerNorm; frozen, block 0's input and first norm need none */
	out->embed = (tp > 1 ? 2 : 1) * c * (frozen ? 1 : 2) + (bloom ? c : 0) -
		     (frozen ? 2 * c : 0);
	out->embed_stat = bloom ? 2 : 0;
	out->head = 3 * c + (tp > 1 ? c : 0);
	/* the final norm's statistics; the loss's log-sum-exp (and, split
	 * over tensor ranks, the target logit) */
	out->head_stat = (bloom ? 2 : 1) + (tp > 1 ? 2 : 1);
}

int64_t model_config_outer_norm_params(const struct model_config *cfg)
{
	/* BLOOM: two LayerNorms with weight and bias; else one RMSNorm */
	return (cfg->family == &bloom_family ? 4 : 1) * cfg->dims.hidden_size;
}
