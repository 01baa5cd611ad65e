/* bloom_family.c: BLOOM as a model family: the table that puts
 * nn/bloom.c (parameters, forward, KV cache), nn/bloom_config.c (config,
 * config.json) and nn/bloom_device.c (device copies, mixed precision)
 * behind struct model. */
#include "bloom.h"

#include <string.h>

#include "../base/alloc.h"
#include "../base/panic.h"
#include "bloom_device.h"

_Static_assert(sizeof(struct bloom_config) <= MODEL_CONFIG_PRIV_BYTES,
	       "struct bloom_config must fit model_config.priv");

const struct bloom_config *bloom_config_of(const struct model_config *cfg)
{
	HUG_ASSERT(cfg->family == &bloom_family);
	return (const struct bloom_config *)cfg->priv.bytes;
}

static struct bloom_config *priv(struct model_config *cfg)
{
	return (struct bloom_config *)cfg->priv.bytes;
}

/* The common dims of a BLOOM config. */
static void fill_dims(struct model_config *cfg)
{
	const struct bloom_config *c = priv(cfg);
	cfg->dims = (struct model_dims){
		.vocab_size = c->vocab_size,
		.hidden_size = c->hidden_size,
		.intermediate_size = 4 * c->hidden_size,
		.n_layer = c->n_layer,
		.n_head = c->n_head,
		.n_kv_head = c->n_head,
		.head_dim = c->n_head > 0 ? c->hidden_size / c->n_head : 0,
		.max_positions = 0, /* ALiBi: no learned or rotary positions */
		.tie_word_embeddings = true,
		.bos_token_id = c->bos_token_id,
		.eos_token_id = c->eos_token_id,
		.pad_token_id = c->pad_token_id,
	};
}

void bloom_model_config(struct model_config *out, const struct bloom_config *bc)
{
	memset(out, 0, sizeof(*out));
	out->family = &bloom_family;
	*priv(out) = *bc;
	fill_dims(out);
}

/* ---- configuration ---- */

static void config_make(struct model_config *cfg, const struct model_sizes *s)
{
	struct bloom_config bc = bloom_config_make(s->vocab_size, s->hidden_size, s->n_layer,
						   s->n_head);
	bloom_model_config(cfg, &bc);
}

/* The settings a recipe may give, by their config.json keys. */
static int config_set(struct model_config *cfg, const char *key, double v)
{
	struct bloom_config *c = priv(cfg);
	if (!strcmp(key, "layer_norm_epsilon"))
		c->layer_norm_epsilon = v;
	else if (!strcmp(key, "apply_residual_connection_post_layernorm"))
		c->apply_residual_connection_post_layernorm = v != 0;
	else if (!strcmp(key, "hidden_dropout"))
		c->hidden_dropout = v;
	else if (!strcmp(key, "attention_dropout"))
		c->attention_dropout = v;
	else if (!strcmp(key, "initializer_range"))
		c->initializer_range = v;
	else if (!strcmp(key, "bos_token_id"))
		c->bos_token_id = (int)v;
	else if (!strcmp(key, "eos_token_id"))
		c->eos_token_id = (int)v;
	else if (!strcmp(key, "pad_token_id"))
		c->pad_token_id = (int)v;
	else
		return -1;
	fill_dims(cfg);
	return 0;
}

static int config_preset(const char *name, struct model_config *cfg)
{
	struct bloom_config bc;
	if (bloom_config_preset(name, &bc))
		return -1;
	bloom_model_config(cfg, &bc);
	return 0;
}

static int config_validate(const struct model_config *cfg, const char *what,
			   struct hug_error *err)
{
	return bloom_config_validate(bloom_config_of(cfg), what, err);
}

static int config_from_json(struct model_config *cfg, const char *file,
			    const struct cJSON *root, struct hug_error *err)
{
	struct bloom_config bc;
	if (bloom_config_from_json(file, root, &bc, err))
		return -1;
	bloom_model_config(cfg, &bc);
	return 0;
}

static int config_write(const struct model_config *cfg, enum dtype weights_dtype,
			const char *dir, struct hug_error *err)
{
	return bloom_config_write(bloom_config_of(cfg), weights_dtype, dir, err);
}

static void config_print(const struct model_config *cfg, FILE *out)
{
	bloom_config_print(bloom_config_of(cfg), out);
}

static int tp_validate(const struct model_config *cfg, int size, struct hug_error *err)
{
	return bloom_tp_validate(bloom_config_of(cfg), size, err);
}

static int64_t param_count(const struct model_config *cfg)
{
	return bloom_param_count(bloom_config_of(cfg));
}

static double flops_per_token(const struct model_config *cfg, int64_t seq_len)
{
	return bloom_flops_per_token(bloom_config_of(cfg), seq_len);
}

/* The four linears of a block; Megatron's split: query_key_value and
 * dense_h_to_4h by output rows, dense and dense_4h_to_h by input columns. */
static const struct model_linear_kind linears[BLOOM_N_LINEAR] = {
	[BLOOM_QKV] = { "query_key_value", "self_attention.query_key_value", MODEL_SPLIT_COLUMN },
	[BLOOM_PROJ] = { "dense", "self_attention.dense", MODEL_SPLIT_ROW },
	[BLOOM_FC1] = { "dense_h_to_4h", "mlp.dense_h_to_4h", MODEL_SPLIT_COLUMN },
	[BLOOM_FC2] = { "dense_4h_to_h", "mlp.dense_4h_to_h", MODEL_SPLIT_ROW },
};

static void linear(const struct model_config *cfg, void *impl, int layer, int kind,
		   struct model_linear *out)
{
	const struct bloom_config *c = bloom_config_of(cfg);
	static const int64_t mul[BLOOM_N_LINEAR][2] = { /* (in, out) in units of C */
		[BLOOM_QKV] = { 1, 3 }, [BLOOM_PROJ] = { 1, 1 },
		[BLOOM_FC1] = { 1, 4 }, [BLOOM_FC2] = { 4, 1 },
	};
	HUG_ASSERT(kind >= 0 && kind < BLOOM_N_LINEAR && layer >= 0 && layer < c->n_layer);
	memset(out, 0, sizeof(*out));
	out->layer = layer;
	out->kind = kind;
	out->module = linears[kind].module;
	snprintf(out->path, sizeof(out->path), "%s%d.%s", bloom_family.hf_names.block_prefix, layer,
		 linears[kind].path);
	out->in = mul[kind][0] * c->hidden_size;
	out->out = mul[kind][1] * c->hidden_size;
	out->split = linears[kind].split;
	if (!impl)
		return;
	struct bloom_layer *l = &((struct bloom_model *)impl)->layers[layer];
	struct tensor *w[BLOOM_N_LINEAR] = { l->qkv_w, l->proj_w, l->fc1_w, l->fc2_w };
	out->weight = w[kind];
	out->adapter = &l->lora[kind];
}

/* ---- the model ---- */

static void init(void *impl, const struct model_config *cfg, enum dtype dt, bool trainable,
		 const struct model_tp *tp, const struct arena_allocator *allocator)
{
	struct model_tp one = { .rank = 0, .size = 1 };
	bloom_model_init_on(impl, bloom_config_of(cfg), dt, trainable, tp ? tp : &one,
			    allocator);
}

static void free_model(void *impl)
{
	bloom_model_free(impl);
}

static void init_weights(void *impl, uint64_t seed)
{
	bloom_model_init_weights(impl, seed);
}

static void parts(const void *impl, struct model_parts *out)
{
	struct bloom_model *m = (struct bloom_model *)impl;
	*out = (struct model_parts){
		.table = &m->table, .params = &m->params, .grads = &m->grads,
		.dtype = m->dtype, .tp = m->tp,
		.device = m->slopes ? m->slopes->device : DEV_CPU, /* on every stage */
	};
}

static void config_of(const void *impl, struct model_config *out)
{
	bloom_model_config(out, &((const struct bloom_model *)impl)->cfg);
}

static void take_settings(void *impl, const struct model_config *cfg)
{
	struct bloom_model *m = impl;
	m->cfg.hidden_dropout = bloom_config_of(cfg)->hidden_dropout;
	m->cfg.attention_dropout = bloom_config_of(cfg)->attention_dropout;
}

static void to_device(void *dst, const void *src, const struct arena_allocator *allocator,
		      bool trainable)
{
	bloom_model_to_device(dst, src, allocator, trainable);
}

static void copy_weights(void *dst, const void *src)
{
	bloom_model_copy_weights(dst, src);
}

static bool cast(struct ag_ctx *ctx, const void *impl, enum dtype dt, void *out)
{
	return bloom_model_cast(ctx, impl, dt, out);
}

static struct tensor *forward(struct ag_ctx *ctx, const void *impl,
			      const struct model_batch *b)
{
	return bloom_forward_packed(ctx, impl, b->ids, b->mask, b->segments);
}

static struct tensor *forward_stage(struct ag_ctx *ctx, const void *impl,
				    const struct model_stage *stage, struct tensor *ids,
				    struct tensor *mask, struct tensor *hidden)
{
	return bloom_forward_stage(ctx, impl, stage, ids, mask, hidden);
}

static struct tensor *loss(struct ag_ctx *ctx, const void *impl, struct tensor *logits,
			   struct tensor *targets)
{
	return bloom_loss(ctx, impl, logits, targets);
}

static void vocab_slice(const void *impl, int64_t *offset, int64_t *len)
{
	bloom_vocab_slice(impl, offset, len);
}

/* struct model_kv is BLOOM's struct kv_cache. */
static struct model_kv *kv_new(const void *impl, int64_t batch, int64_t max_len)
{
	struct kv_cache *kv = hug_malloc(sizeof(*kv));
	bloom_kv_cache_init(kv, impl, batch, max_len);
	return (struct model_kv *)kv;
}

static void kv_free(struct model_kv *kv)
{
	kv_cache_free((struct kv_cache *)kv);
	hug_free(kv);
}

static struct tensor *forward_cached(struct ag_ctx *ctx, const void *impl,
				     struct model_kv *kv, struct tensor *ids,
				     struct tensor *mask)
{
	return bloom_forward_cached(ctx, impl, (struct kv_cache *)kv, ids, mask);
}

static const char *const model_types[] = { "bloom", NULL };
static const char *const architectures[] = { "BloomForCausalLM", NULL };
static const char *const presets[] = {
	"bloom-560m", "bloom-1b1", "bloom-1b7", "bloom-3b", "bloom-7b1", "bloom", "bloom-176b", NULL,
};
static const char *const lora_targets[] = { "query_key_value", NULL }; /* PEFT's default */
static const char *const ignored[] = { "lm_head.weight", NULL }; /* tied to word_embeddings */

const struct model_family bloom_family = {
	.name = "bloom",
	.display = "BLOOM",
	.model_types = model_types,
	.architectures = architectures,
	.presets = presets,
	.lora_targets = lora_targets,
	.impl_size = sizeof(struct bloom_model),
	.linears = linears,
	.n_linear = BLOOM_N_LINEAR,
	.hf_names = { .optional_prefix = "transformer.", .block_prefix = "transformer.h.",
		      .ignored = ignored },
	.config_make = config_make,
	.config_set = config_set,
	.config_preset = config_preset,
	.config_validate = config_validate,
	.config_from_json = config_from_json,
	.config_write = config_write,
	.config_print = config_print,
	.tp_validate = tp_validate,
	.param_count = param_count,
	.flops_per_token = flops_per_token,
	.linear = linear,
	.init = init,
	.free = free_model,
	.init_weights = init_weights,
	.parts = parts,
	.config_of = config_of,
	.take_settings = take_settings,
	.to_device = to_device,
	.copy_weights = copy_weights,
	.cast = cast,
	.forward = forward,
	.forward_stage = forward_stage,
	.loss = loss,
	.vocab_slice = vocab_slice,
	.kv_new = kv_new,
	.kv_free = kv_free,
	.forward_cached = forward_cached,
};
