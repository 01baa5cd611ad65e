/* mem_plan.c: per-rank memory and FLOPs of a training layout, from a model
 * config. The activation terms count, op by op, the tensors hug's tape
 * leaves in the step arena for one micro-batch (nothing there is freed
 * before the step ends): each op's output, its saved statistics, the CPU
 * attention kernel's scratch, and one gradient buffer per non-leaf tensor
 * that takes part in backward (a slice or permute view gets its own buffer;
 * only AG_OP_VIEW shares its input's): the per-token counts of each family
 * come from nn/act_count.c; tests/test_mem_plan.c checks the plan against
 * the arena's high-water mark and a child process's peak RSS. */
#include "mem_plan.h"

#include <string.h>

#include "../nn/act_count.h"
#include "../peft/lora_config.h"
#include "../peft/lora_model.h"
#include "recipe.h"

void mem_layout_default(struct mem_layout *l)
{
	memset(l, 0, sizeof(*l));
	l->dp = l->tp = l->pp = 1;
	l->attention = ag_attention_default_tiled() ? MEM_ATTN_FLASH : MEM_ATTN_EXACT;
	l->micro_batch = 1;
	l->seq_len = 1024;
	l->accumulation = 1;
	l->n_moments = 2;
}

/* Adapted layers of one block under LoRA config lc: their count and the
 * sums of their in and out features. */
static void lora_widths(const struct recipe *r, struct mem_layout *l)
{
	const struct model_config *mc = &r->model;
	struct lora_config lc;
	struct model_linear lin;
	lora_config_init(&lc);
	lc.r = r->peft.r;
	lora_config_set_targets(&lc, (const char *const *)r->peft.target_modules,
				r->peft.n_targets);
	l->lora_params = lora_count_params(&lc, mc);
	lora_config_resolve_targets(&lc, mc->family);
	for (int k = 0; k < model_config_n_linear(mc); k++) {
		model_config_linear(mc, 0, k, &lin);
		if (lora_config_selects(&lc, &lin, NULL)) {
			l->lora_n++;
			l->lora_out += lin.out;
			l->lora_in += lin.in;
		}
	}
	lora_config_free(&lc);
}

void mem_layout_of_recipe(const struct recipe *r, int world, struct mem_layout *l)
{
	mem_layout_default(l);
	l->tp = r->tensor_parallel;
	l->pp = r->pipeline_parallel > 0 ? r->pipeline_parallel : 1;
	l->dp = world / ((r->tensor_parallel > 0 ? r->tensor_parallel : 1) * l->pp);
	l->recompute = r->recompute == AG_RECOMPUTE_BLOCK ? MEM_RECOMPUTE_BLOCK
		       : r->recompute == AG_RECOMPUTE_SELECTIVE ? MEM_RECOMPUTE_SELECTIVE
							  : MEM_RECOMPUTE_NONE;
	if (l->dp < 1)
		l->dp = 1;
	l->zero = r->zero;
	l->bf16 = r->precision == PRECISION_BF16;
	l->cuda = r->device == DEV_CUDA;
	l->micro_batch = r->micro_batch_size;
	l->seq_len = r->seq_len;
	l->accumulation = r->accumulation;
	l->n_moments = r->optim.kind == OPTIM_ADAMW ? 2 : r->optim.momentum != 0.0;
	if (r->peft.enabled) {
		l->lora_r = r->peft.r;
		l->lora_dropout = r->peft.dropout > 0;
		lora_widths(r, l);
	}
}

int mem_layout_validate(const struct model_config *cfg, const struct mem_layout *l,
			struct hug_error *err)
{
	const struct model_dims *d = &cfg->dims;
	if (l->dp < 1 || l->tp < 1 || l->pp < 1)
		return hug_error_set(err, "parallel degrees must be >= 1: dp %d, tp %d, pp %d",
				     l->dp, l->tp, l->pp);
	if (l->zero < 0 || l->zero > 3)
		return hug_error_set(err, "zero: expected a stage 0, 1, 2 or 3, got %d", l->zero);
	if (l->pp > d->n_layer)
		return hug_error_set(err, "pipeline stages: %d is more than the %d layers",
				     l->pp, d->n_layer);
	if (model_config_tp_validate(cfg, l->tp, err))
		return -1;
	if (l->micro_batch < 1 || l->seq_len < 1 || l->accumulation < 1)
		return hug_error_set(err, "batch %lld, sequence %lld and accumulation %lld must "
				     "be >= 1", (long long)l->micro_batch, (long long)l->seq_len,
				     (long long)l->accumulation);
	return 0;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
	return (a + b - 1) / b;
}

/* Parameters of one block and of the embeddings, this tensor rank's. */
struct param_split {
	int64_t block;               /* one block's, this rank's */
	int64_t embed;               /* the input embedding, this rank's vocabulary rows */
	int64_t head;                /* an untied lm_head, this rank's rows; 0 when tied */
	int64_t final;               /* the norms outside the blocks */
};

static struct param_split split_params(const struct model_config *cfg, int tp)
{
	const struct model_dims *d = &cfg->dims;
	struct param_split s = { 0 };
	int64_t total = model_config_param_count(cfg), lin = 0;
	struct model_linear ml;
	for (int k = 0; k < model_config_n_linear(cfg); k++) {
		model_config_linear(cfg, 0, k, &ml);
		lin += ml.in * ml.out;
	}
	int64_t emb = d->vocab_size * d->hidden_size;
	int64_t heads = d->tie_word_embeddings ? 0 : emb;
	/* what is neither a linear weight nor an embedding: norms and biases,
	 * spread evenly over the blocks (the final norm apart), kept whole on
	 * every tensor rank (a slight overcount for column-parallel biases) */
	s.final = model_config_outer_norm_params(cfg);
	int64_t other = total - (int64_t)d->n_layer * lin - emb - heads - s.final;
	s.block = lin / tp + other / d->n_layer;
	s.embed = ceil_div(emb, tp);
	s.head = ceil_div(heads, tp);
	return s;
}

/* Activation bytes of one micro-batch on a stage of `layers` blocks,
 * without recomputation; the parts in *probs (attention probabilities),
 * *mlp (MLP activation outputs) and *block (one block, everything). */
static int64_t stage_activations(const struct model_config *cfg, const struct mem_layout *l,
				 int64_t layers, bool first, int64_t *probs, int64_t *mlp,
				 int64_t *block)
{
	const struct model_dims *d = &cfg->dims;
	struct model_act_count b;
	model_act_count(cfg, l->tp, l->lora_r > 0, &b);
	int64_t n = l->micro_batch * l->seq_len, t = l->seq_len;
	int64_t hl = d->n_head / l->tp, es = l->bf16 ? 2 : 4;
	if (l->lora_r) { /* per adapted layer: x A^T, its B product, scaled, added */
		int64_t extra = 3 * l->lora_out + l->lora_r * l->lora_n +
				(l->lora_dropout ? l->lora_in : 0);
		b.fwd += extra;
		b.grad += extra - l->lora_out; /* the sum's gradient passes to y */
	}
	int64_t p = 0, scratch = 0, hd = d->head_dim;
	/* cpu_scratch_numel (autograd/cpu/attention.c): ALiBi positions (B, T),
	 * then per (b, h) the exact kernel's (min(T, 64), T) rows or the tiled
	 * kernel's tiles 64 x (D > 128 ? 128 + D : 256) */
	if (l->attention == MEM_ATTN_EXACT) {
		p = l->micro_batch * hl * t * t * es;
		if (!l->cuda)
			scratch = (l->micro_batch * t + l->micro_batch * hl * (t < 64 ? t : 64) * t) * es;
	} else {
		b.stat += hl; /* log-sum-exp per head */
		if (!l->cuda)
			scratch = (l->micro_batch * t +
				   l->micro_batch * hl * 64 * (hd > 128 ? 128 + hd : 256)) * es;
	}
	*probs = p * layers;
	*mlp = b.mlp_act * n * es * layers;
	*block = (b.fwd + b.grad) * n * es + b.stat * n * 4 + p + scratch;
	int64_t outer = 0, outer_stat = 0;
	if (first) {
		outer += b.embed;
		outer_stat += b.embed_stat;
	}
	if (first || l->pp == 1) { /* the last stage (the same rank when pp 1) */
		outer += b.head;
		outer_stat += b.head_stat;
	}
	return *block * layers + outer * n * es + outer_stat * n * 4;
}

static int64_t logits_bytes(const struct model_config *cfg, const struct mem_layout *l)
{
	int64_t es = l->bf16 ? 2 : 4;
	/* (B, T, V / tp) and its gradient */
	return 2 * l->micro_batch * l->seq_len * ceil_div(cfg->dims.vocab_size, l->tp) * es;
}

/* Micro-batches whose activations stage 0 holds at once: 1F1B keeps up to
 * pp in flight. */
static int64_t in_flight(const struct mem_layout *l)
{
	if (l->pp <= 1)
		return 1;
	return l->accumulation < l->pp ? l->accumulation : l->pp;
}

static void weights(const struct model_config *cfg, const struct mem_layout *l,
		    int64_t layers, bool first, bool last, struct mem_plan *p)
{
	struct param_split s = split_params(cfg, l->tp);
	int64_t held = layers * s.block;
	if (first)
		held += s.embed;
	if (last)
		held += (s.head ? s.head : (first ? 0 : s.embed)) + s.final;
	p->params_rank = held;
	int64_t trainable = l->lora_r ? ceil_div(l->lora_params, l->pp) : held;
	int64_t dp = l->dp, frozen = held - (l->lora_r ? 0 : held);
	int64_t master = l->lora_r ? held + trainable : held;
	p->params = (l->zero >= 3 ? ceil_div(trainable, dp) + frozen : master) * 4;
	p->grads = (l->zero >= 2 ? ceil_div(trainable, dp) : trainable) * 4;
	p->optim = (l->zero >= 1 ? ceil_div(trainable, dp) : trainable) * 4 * l->n_moments;
	p->params_cast = p->grads_cast = 0;
	if (l->bf16) {
		/* model_cast: a bf16 copy of every parameter in the step arena
		 * and, for the trained ones, a bf16 gradient of that copy; under
		 * ZeRO-3 only the gathered block and the prefetched next one */
		int64_t work = l->zero >= 3 ? 2 * s.block : master;
		int64_t work_train = l->zero >= 3 ? (l->lora_r ? 0 : 2 * s.block) : trainable;
		p->params_cast = work * 2;
		p->grads_cast = work_train * 2;
	} else if (l->zero >= 3) {
		/* f32 compute: the gathered block and the prefetched next one */
		p->params_cast = 2 * s.block * 4;
	}
	/* communication: gradient reduction over dp (train/dist.c: a flat
	 * copy of the trainable gradients, and the rank's part with ZeRO);
	 * ZeRO-2/3 reduce-scatter in buckets (two of 32 MiB in flight); a
	 * pipeline stage sends and receives one activation tensor */
	p->comm = 0;
	if (l->dp > 1) {
		if (l->zero >= 2)
			p->comm = 2 * ((int64_t)32 << 20);
		else
			p->comm = ceil_div(trainable, dp) * dp * 4 +
				  (l->zero ? ceil_div(trainable, dp) * 4 : 0);
	}
	if (l->pp > 1)
		p->comm += 2 * l->micro_batch * l->seq_len * cfg->dims.hidden_size *
			   (l->bf16 ? 2 : 4);
}

/* Blocks on pipeline stage `stage`: L / pp when pp divides L; else, when
 * pp divides L + 2, the embedding and the head count as one block each on
 * the first and last stages (Megatron-DeepSpeed's partition by
 * "type:transformer|embedding", as BLOOM-176B's 70 layers ran on 12
 * stages); else ceil(L / pp) (an upper bound). */
static int64_t stage_layers(int64_t layers, int pp, int stage)
{
	if (layers % pp == 0)
		return layers / pp;
	if ((layers + 2) % pp == 0) {
		int64_t per = (layers + 2) / pp;
		return stage == 0 || stage == pp - 1 ? per - 1 : per;
	}
	return (layers + pp - 1) / pp;
}

/* The plan of stage `stage` (0 .. pp-1). */
static void plan_stage(const struct model_config *cfg, const struct mem_layout *l, int stage,
		       struct mem_plan *p)
{
	const struct model_dims *d = &cfg->dims;
	bool first = stage == 0, last = stage == l->pp - 1;
	int64_t layers = stage_layers(d->n_layer, l->pp, stage), probs, mlp, block;
	weights(cfg, l, layers, first, last, p);
	int64_t k = first ? in_flight(l) : 1;
	/* stage_activations' outer part treats `first` as holding the
	 * embedding and, when pp is 1, the head too */
	struct mem_layout one = *l;
	int64_t act = stage_activations(cfg, &one, layers, first, &probs, &mlp, &block);
	if (!first && last) { /* the last stage of a pipeline: the head only */
		struct model_act_count c;
		int64_t n = l->micro_batch * l->seq_len, es = l->bf16 ? 2 : 4;
		model_act_count(cfg, l->tp, l->lora_r > 0, &c);
		act += c.head * n * es + c.head_stat * n * 4;
	}
	p->layers = layers;
	p->in_flight = k;
	p->activations_none = act * k;
	p->attn_probs = probs * k;
	int64_t n = l->micro_batch * l->seq_len, es = l->bf16 ? 2 : 4;
	switch (l->recompute) {
	case MEM_RECOMPUTE_NONE:
		p->activations = p->activations_none;
		break;
	case MEM_RECOMPUTE_SELECTIVE:
		/* without the probabilities and MLP activations, but one
		 * block's worth redone in backward */
		p->activations = (act - probs - mlp) * k + (probs + mlp) / layers;
		p->attn_probs = probs / layers;
		break;
	case MEM_RECOMPUTE_BLOCK:
		/* each block's input, plus one block redone in backward */
		p->activations = (act - block * layers + layers * d->hidden_size * n * es) * k +
				 block;
		p->attn_probs = probs / layers;
		break;
	}
	p->logits = last ? logits_bytes(cfg, l) : 0;
	/* train/checkpoint.c: every rank gathers its stage's parameters (not
	 * under LoRA: the adapters are saved as they are) and optimizer state
	 * whole into host copies (tensor slices all-reduced, ZeRO ranges
	 * reduced back), through a scratch tensor as large as the largest
	 * parameter (the embedding); the step memory stays resident meanwhile
	 * (the arena keeps its block) */
	int64_t trainable = l->lora_r ? ceil_div(l->lora_params, l->pp) : p->params_rank;
	int64_t whole = p->params_rank * l->tp;
	p->checkpoint = (l->lora_r ? 0 : whole * 4) + (l->lora_r ? trainable : whole) * 4 *
			l->n_moments + (l->lora_r ? 0 : cfg->dims.vocab_size * cfg->dims.hidden_size * 4);
	/* on a GPU those copies are host memory, not part of the device peak */
	p->peak = p->params + p->params_cast + p->grads + p->grads_cast + p->optim +
		  p->activations + p->logits + p->comm + (l->cuda ? 0 : p->checkpoint);
}

void mem_plan_compute(const struct model_config *cfg, const struct mem_layout *l,
		      struct mem_plan *p)
{
	const struct model_dims *d = &cfg->dims;
	memset(p, 0, sizeof(*p));
	/* the busiest rank: the first stage (embedding, most micro-batches in
	 * flight) or the last (lm_head, logits) */
	struct mem_plan a, b;
	plan_stage(cfg, l, 0, &a);
	*p = a;
	if (l->pp > 1) {
		plan_stage(cfg, l, l->pp - 1, &b);
		if (b.peak > a.peak)
			*p = b;
	}
	p->params_total = model_config_param_count(cfg);
	p->params_trainable = l->lora_r ? l->lora_params : p->params_total;
	/* generation: K and V of every layer for kv_batch x kv_len positions,
	 * in the compute dtype, this rank's heads and layers */
	int64_t kb = l->kv_batch ? l->kv_batch : 1, kt = l->kv_len ? l->kv_len : l->seq_len;
	p->kv_cache = 2 * stage_layers(d->n_layer, l->pp, 0) * kb * kt *
		      model_kv_heads_per_rank(d, l->tp) * d->head_dim * (l->bf16 ? 2 : 4);
	p->tokens_per_step = l->micro_batch * l->seq_len * l->accumulation * l->dp;
	double fpt = model_config_flops_per_token(cfg, l->seq_len);
	if (l->lora_r) /* no weight gradients for the frozen base */
		fpt += -2.0 * (double)p->params_total + 6.0 * (double)l->lora_params;
	if (l->recompute == MEM_RECOMPUTE_BLOCK) /* the forward again */
		fpt += 2.0 * (double)p->params_total +
		       4.0 * d->n_layer * (double)l->seq_len * (double)d->hidden_size;
	else if (l->recompute == MEM_RECOMPUTE_SELECTIVE) /* attention's products again */
		fpt += 4.0 * d->n_layer * (double)l->seq_len * (double)d->hidden_size;
	p->flops_per_step = fpt * (double)p->tokens_per_step;
	p->flops_per_rank = p->flops_per_step / (double)(l->dp * l->tp * l->pp);
}

const char *mem_human(int64_t bytes, char *buf, size_t n)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024.0 && u < 4) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
	return buf;
}

static const char *recompute_name(enum mem_recompute r)
{
	return r == MEM_RECOMPUTE_BLOCK ? "block" : r == MEM_RECOMPUTE_SELECTIVE ? "selective"
										 : "none";
}

static void line(FILE *out, const char *indent, const char *what, int64_t bytes,
		 const char *note)
{
	char b[32];
	fprintf(out, "%s  %-28s %12s%s%s\n", indent, what, mem_human(bytes, b, sizeof(b)),
		note && *note ? "  " : "", note ? note : "");
}

void mem_plan_print(const struct mem_plan *p, const struct mem_layout *l, int64_t overhead,
		    const char *indent, FILE *out)
{
	char n1[96], n2[32];
	fprintf(out, "%smemory per rank (%d x %d x %d = dp x tp x pp, ZeRO-%d, %s, "
		"recompute %s, attention %s, %d layers, %lld micro-batch%s in flight):\n",
		indent, l->dp, l->tp, l->pp, l->zero, l->bf16 ? "bf16 with f32 master" : "f32",
		recompute_name(l->recompute), l->attention == MEM_ATTN_FLASH ? "flash" : "exact",
		(int)p->layers, (long long)p->in_flight, p->in_flight == 1 ? "" : "es");
	snprintf(n1, sizeof(n1), "f32, %lld held%s", (long long)p->params_rank,
		 l->zero >= 3 ? ", sharded over dp" : "");
	line(out, indent, "parameters", p->params, n1);
	if (p->params_cast)
		line(out, indent, l->bf16 ? "parameters (bf16 copy)" : "parameters (gathered)",
		     p->params_cast, l->zero >= 3 ? "two blocks at a time" : "each step");
	line(out, indent, "gradients", p->grads, l->zero >= 2 ? "sharded over dp" : "f32");
	if (p->grads_cast)
		line(out, indent, "gradients (bf16 copy)", p->grads_cast, "");
	snprintf(n1, sizeof(n1), "%d moments%s", l->n_moments,
		 l->zero >= 1 ? ", sharded over dp" : "");
	line(out, indent, "optimizer state", p->optim, n1);
	char probs[128];
	snprintf(probs, sizeof(probs), "incl. T x T probabilities: %s kept",
		 l->attention == MEM_ATTN_EXACT ? mem_human(p->attn_probs, n2, sizeof(n2)) : "none");
	line(out, indent, "activations", p->activations, probs);
	if (l->recompute != MEM_RECOMPUTE_NONE)
		line(out, indent, "activations (no recompute)", p->activations_none, "not in peak");
	line(out, indent, "logits + gradient", p->logits,
	     l->pp > 1 && !p->logits ? "on the last stage, not this one" : "");
	if (p->comm)
		line(out, indent, "communication buffers", p->comm, "");
	snprintf(n1, sizeof(n1), "gathered %s%s", l->lora_r ? "optimizer state" :
		 "parameters and optimizer state", l->cuda ? "; host memory, not in peak" : "");
	line(out, indent, "checkpoint save", p->checkpoint, n1);
	if (overhead)
		line(out, indent, "process overhead", overhead,
		     "measured: resident memory besides the model");
	line(out, indent, "peak (training)", p->peak + overhead, "");
	snprintf(n1, sizeof(n1), "batch %lld x %lld positions, not in peak",
		 (long long)(l->kv_batch ? l->kv_batch : 1),
		 (long long)(l->kv_len ? l->kv_len : l->seq_len));
	line(out, indent, "KV cache (generation)", p->kv_cache, n1);
	fprintf(out, "%s  %-28s %12.3g  %.3g per rank; %lld tokens per step\n", indent,
		"FLOPs per step", p->flops_per_step, p->flops_per_rank,
		(long long)p->tokens_per_step);
}
