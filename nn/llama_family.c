/* llama_family.c: the Llama-style decoder (nn/llama.c, nn/llama_config.c)
 * as four model families behind struct model: llama, qwen2, qwen3 and
 * mistral, each with its config.json model_type and architecture, presets,
 * and PEFT's default LoRA targets. */
#include "llama.h"

#include <string.h>

#include "../base/alloc.h"
#include "../base/panic.h"

_Static_assert(sizeof(struct llama_config) <= MODEL_CONFIG_PRIV_BYTES,
	       "struct llama_config must fit model_config.priv");

const struct model_family *llama_variant_family(enum llama_variant v)
{
	static const struct model_family *const f[LLAMA_V_COUNT] = {
		&llama_family, &qwen2_family, &qwen3_family, &mistral_family,
	};
	return f[v];
}

static bool is_llama_family(const struct model_family *f)
{
	return f == &llama_family || f == &qwen2_family || f == &qwen3_family ||
	       f == &mistral_family;
}

const struct llama_config *llama_config_of(const struct model_config *cfg)
{
	HUG_ASSERT(is_llama_family(cfg->family));
	return (const struct llama_config *)cfg->priv.bytes;
}

static struct llama_config *priv(struct model_config *cfg)
{
	return (struct llama_config *)cfg->priv.bytes;
}

static void fill_dims(struct model_config *cfg)
{
	const struct llama_config *c = priv(cfg);
	cfg->dims = (struct model_dims){
		.vocab_size = c->vocab_size,
		.hidden_size = c->hidden_size,
		.intermediate_size = c->intermediate_size,
		.n_layer = c->n_layer,
		.n_head = c->n_head,
		.n_kv_head = c->n_kv_head,
		.head_dim = c->head_dim,
		.max_positions = c->max_position_embeddings,
		.tie_word_embeddings = c->tie_word_embeddings,
		.bos_token_id = c->bos_token_id,
		.eos_token_id = c->eos_token_id,
		.pad_token_id = c->pad_token_id,
		.n_eos_more = c->n_eos_more,
	};
	memcpy(cfg->dims.eos_more, c->eos_more, sizeof(c->eos_more));
}

void llama_model_config(struct model_config *out, const struct llama_config *lc)
{
	memset(out, 0, sizeof(*out));
	out->family = llama_variant_family(lc->variant);
	*priv(out) = *lc;
	fill_dims(out);
}

/* ---- configuration ---- */

#define FAMILY_CONFIG_MAKE(fam, var)                                                     \
	static void config_make_##fam(struct model_config *cfg, const struct model_sizes *s) \
	{                                                                                \
		struct llama_config lc = llama_config_make(var, s->vocab_size, s->hidden_size, \
							   s->n_layer, s->n_head);       \
		llama_model_config(cfg, &lc);                                            \
	}                                                                                \
	static int config_preset_##fam(const char *name, struct model_config *cfg)       \
	{                                                                                \
		struct llama_config lc;                                                  \
		if (llama_config_preset(var, name, &lc))                                 \
			return -1;                                                       \
		llama_model_config(cfg, &lc);                                            \
		return 0;                                                                \
	}                                                                                \
	static int config_from_json_##fam(struct model_config *cfg, const char *file,     \
					  const struct cJSON *root, struct hug_error *err) \
	{                                                                                \
		struct llama_config lc;                                                  \
		if (llama_config_from_json(var, file, root, &lc, err))                   \
			return -1;                                                       \
		llama_model_config(cfg, &lc);                                            \
		return 0;                                                                \
	}

FAMILY_CONFIG_MAKE(llama, LLAMA_V_LLAMA)
FAMILY_CONFIG_MAKE(qwen2, LLAMA_V_QWEN2)
FAMILY_CONFIG_MAKE(qwen3, LLAMA_V_QWEN3)
FAMILY_CONFIG_MAKE(mistral, LLAMA_V_MISTRAL)

static int config_set(struct model_config *cfg, const char *key, double v)
{
	if (llama_config_set(priv(cfg), key, v))
		return -1;
	fill_dims(cfg);
	return 0;
}

static int config_validate(const struct model_config *cfg, const char *what,
			   struct hug_error *err)
{
	return llama_config_validate(llama_config_of(cfg), what, err);
}

static int config_write(const struct model_config *cfg, enum dtype weights_dtype,
			const char *dir, struct hug_error *err)
{
	return llama_config_write(llama_config_of(cfg), weights_dtype, dir, err);
}

static void config_print(const struct model_config *cfg, FILE *out)
{
	llama_config_print(llama_config_of(cfg), out);
}

static int tp_validate(const struct model_config *cfg, int size, struct hug_error *err)
{
	return llama_tp_validate(llama_config_of(cfg), size, err);
}

static int64_t param_count(const struct model_config *cfg)
{
	return llama_param_count(llama_config_of(cfg));
}

static double flops_per_token(const struct model_config *cfg, int64_t seq_len)
{
	return llama_flops_per_token(llama_config_of(cfg), seq_len);
}

/* Megatron's split: q, k, v, gate, up by output rows, o and down by input
 * columns. */
static const struct model_linear_kind linears[LLAMA_N_LINEAR] = {
	[LLAMA_Q] = { "q_proj", "self_attn.q_proj", MODEL_SPLIT_COLUMN },
	[LLAMA_K] = { "k_proj", "self_attn.k_proj", MODEL_SPLIT_COLUMN },
	[LLAMA_V] = { "v_proj", "self_attn.v_proj", MODEL_SPLIT_COLUMN },
	[LLAMA_O] = { "o_proj", "self_attn.o_proj", MODEL_SPLIT_ROW },
	[LLAMA_GATE] = { "gate_proj", "mlp.gate_proj", MODEL_SPLIT_COLUMN },
	[LLAMA_UP] = { "up_proj", "mlp.up_proj", MODEL_SPLIT_COLUMN },
	[LLAMA_DOWN] = { "down_proj", "mlp.down_proj", MODEL_SPLIT_ROW },
};

static void linear(const struct model_config *cfg, void *impl, int layer, int kind,
		   struct model_linear *out)
{
	const struct llama_config *c = llama_config_of(cfg);
	HUG_ASSERT(kind >= 0 && kind < LLAMA_N_LINEAR && layer >= 0 && layer < c->n_layer);
	int64_t C = c->hidden_size, q = (int64_t)c->n_head * c->head_dim;
	int64_t kv = (int64_t)c->n_kv_head * c->head_dim, I = c->intermediate_size;
	const int64_t shape[LLAMA_N_LINEAR][2] = { /* (in, out) */
		[LLAMA_Q] = { C, q }, [LLAMA_K] = { C, kv }, [LLAMA_V] = { C, kv },
		[LLAMA_O] = { q, C }, [LLAMA_GATE] = { C, I }, [LLAMA_UP] = { C, I },
		[LLAMA_DOWN] = { I, C },
	};
	memset(out, 0, sizeof(*out));
	out->layer = layer;
	out->kind = kind;
	out->module = linears[kind].module;
	snprintf(out->path, sizeof(out->path), "model.layers.%d.%s", layer, linears[kind].path);
	out->in = shape[kind][0];
	out->out = shape[kind][1];
	out->split = linears[kind].split;
	if (!impl)
		return;
	struct llama_model *m = impl;
	struct llama_layer *l = &m->layers[layer];
	if ((kind == LLAMA_K || kind == LLAMA_V) && llama_kv_replicated(c, m->tp.size))
		out->split = MODEL_SPLIT_NONE; /* whole on every rank */
	out->weight = l->w[kind];
	out->adapter = &l->lora[kind];
}

/* ---- the model ---- */

static void init(void *impl, const struct model_config *cfg, enum dtype dt, bool trainable,
		 const struct model_tp *tp, const struct arena_allocator *allocator)
{
	struct model_tp one = { .rank = 0, .size = 1 };
	llama_model_init_on(impl, llama_config_of(cfg), dt, trainable, tp ? tp : &one,
			    allocator);
}

static void free_model(void *impl)
{
	llama_model_free(impl);
}

static void init_weights(void *impl, uint64_t seed)
{
	llama_model_init_weights(impl, seed);
}

static void parts(const void *impl, struct model_parts *out)
{
	struct llama_model *m = (struct llama_model *)impl;
	*out = (struct model_parts){
		.table = &m->table, .params = &m->params, .grads = &m->grads,
		.dtype = m->dtype, .tp = m->tp,
		.device = m->inv_freq ? m->inv_freq->device : DEV_CPU, /* on every stage */
	};
}

static void config_of(const void *impl, struct model_config *out)
{
	llama_model_config(out, &((const struct llama_model *)impl)->cfg);
}

static void take_settings(void *impl, const struct model_config *cfg)
{
	struct llama_model *m = impl;
	m->cfg.attention_dropout = llama_config_of(cfg)->attention_dropout;
}

static void to_device(void *dst, const void *src, const struct arena_allocator *allocator,
		      bool trainable)
{
	const struct llama_model *s = src;
	llama_model_init_on(dst, &s->cfg, s->dtype, trainable, &s->tp, allocator);
	llama_model_copy_weights(dst, src);
}

static void copy_weights(void *dst, const void *src)
{
	llama_model_copy_weights(dst, src);
}

static bool cast(struct ag_ctx *ctx, const void *impl, enum dtype dt, void *out)
{
	return llama_model_cast(ctx, impl, dt, out);
}

static struct tensor *forward(struct ag_ctx *ctx, const void *impl,
			      const struct model_batch *b)
{
	return llama_forward(ctx, impl, b->ids, b->mask, b->segments, NULL);
}

static struct tensor *loss(struct ag_ctx *ctx, const void *impl, struct tensor *logits,
			   struct tensor *targets)
{
	return llama_loss(ctx, impl, logits, targets);
}

static void vocab_slice(const void *impl, int64_t *offset, int64_t *len)
{
	llama_vocab_slice(impl, offset, len);
}

static struct model_kv *kv_new(const void *impl, int64_t batch, int64_t max_len)
{
	struct kv_cache *kv = hug_malloc(sizeof(*kv));
	llama_kv_cache_init(kv, impl, batch, max_len);
	return (struct model_kv *)kv;
}

static void kv_free(struct model_kv *kv)
{
	kv_cache_free((struct kv_cache *)kv);
	hug_free(kv);
}

static struct tensor *forward_stage(struct ag_ctx *ctx, const void *impl,
				    const struct model_stage *stage, struct tensor *ids,
				    struct tensor *mask, struct tensor *hidden)
{
	return llama_forward_stage(ctx, impl, stage, ids, mask, hidden);
}

static struct tensor *forward_cached(struct ag_ctx *ctx, const void *impl,
				     struct model_kv *kv, struct tensor *ids,
				     struct tensor *mask)
{
	return llama_forward(ctx, impl, ids, mask, NULL, (struct kv_cache *)kv);
}

/* PEFT's default target_modules for llama, qwen2, qwen3 and mistral */
static const char *const lora_targets[] = { "q_proj", "v_proj", NULL };
/* a tied model's file may still hold lm_head.weight (a copy of the
 * embedding): skipped; an untied model loads it as its parameter */
static const char *const ignored[] = { "lm_head.weight", NULL };

#define FAMILY_COMMON                                                                  \
	.lora_targets = lora_targets,                                                 \
	.impl_size = sizeof(struct llama_model),                                      \
	.linears = linears,                                                           \
	.n_linear = LLAMA_N_LINEAR,                                                   \
	.hf_names = { .optional_prefix = NULL, .block_prefix = "model.layers.",       \
		      .ignored = ignored },                                           \
	.config_set = config_set,                                                     \
	.config_validate = config_validate,                                           \
	.config_write = config_write,                                                 \
	.config_print = config_print,                                                 \
	.tp_validate = tp_validate,                                                   \
	.param_count = param_count,                                                   \
	.flops_per_token = flops_per_token,                                           \
	.linear = linear,                                                             \
	.init = init,                                                                 \
	.free = free_model,                                                           \
	.init_weights = init_weights,                                                 \
	.parts = parts,                                                               \
	.config_of = config_of,                                                       \
	.take_settings = take_settings,                                               \
	.to_device = to_device,                                                       \
	.copy_weights = copy_weights,                                                 \
	.cast = cast,                                                                 \
	.forward = forward,                                                           \
	.forward_stage = forward_stage,                                               \
	.loss = loss,                                                                 \
	.vocab_slice = vocab_slice,                                                   \
	.kv_new = kv_new,                                                             \
	.kv_free = kv_free,                                                           \
	.forward_cached = forward_cached

static const char *const llama_types[] = { "llama", NULL };
static const char *const llama_archs[] = { "LlamaForCausalLM", NULL };
static const char *const llama_presets[] = { "llama-3.2-1b", "llama-3.1-8b", "smollm2-135m",
					     NULL };
static const char *const qwen2_types[] = { "qwen2", NULL };
static const char *const qwen2_archs[] = { "Qwen2ForCausalLM", NULL };
static const char *const qwen2_presets[] = { "qwen2.5-0.5b", "qwen2.5-7b", NULL };
static const char *const qwen3_types[] = { "qwen3", NULL };
static const char *const qwen3_archs[] = { "Qwen3ForCausalLM", NULL };
static const char *const qwen3_presets[] = { "qwen3-0.6b", "qwen3-8b", NULL };
static const char *const mistral_types[] = { "mistral", NULL };
static const char *const mistral_archs[] = { "MistralForCausalLM", NULL };
static const char *const mistral_presets[] = { "mistral-7b", NULL };

const struct model_family llama_family = {
	.name = "llama", .display = "Llama",
	.model_types = llama_types, .architectures = llama_archs, .presets = llama_presets,
	.config_make = config_make_llama, .config_preset = config_preset_llama,
	.config_from_json = config_from_json_llama,
	FAMILY_COMMON,
};

const struct model_family qwen2_family = {
	.name = "qwen2", .display = "Qwen2",
	.model_types = qwen2_types, .architectures = qwen2_archs, .presets = qwen2_presets,
	.config_make = config_make_qwen2, .config_preset = config_preset_qwen2,
	.config_from_json = config_from_json_qwen2,
	FAMILY_COMMON,
};

const struct model_family qwen3_family = {
	.name = "qwen3", .display = "Qwen3",
	.model_types = qwen3_types, .architectures = qwen3_archs, .presets = qwen3_presets,
	.config_make = config_make_qwen3, .config_preset = config_preset_qwen3,
	.config_from_json = config_from_json_qwen3,
	FAMILY_COMMON,
};

const struct model_family mistral_family = {
	.name = "mistral", .display = "Mistral",
	.model_types = mistral_types, .architectures = mistral_archs, .presets = mistral_presets,
	.config_make = config_make_mistral, .config_preset = config_preset_mistral,
	.config_from_json = config_from_json_mistral,
	FAMILY_COMMON,
};
