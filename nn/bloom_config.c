/* bloom_config.c: BLOOM's configuration: transformers' BloomConfig
 * defaults, validation, the parameter count and FLOPs, the released sizes,
 * and config.json / generation_config.json as transformers reads and
 * writes them for BloomForCausalLM. */
#include "bloom.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/json.h"
#include "hf_json.h"

struct bloom_config bloom_config_make(int64_t vocab, int64_t hidden, int n_layer,
				      int n_head)
{
	return (struct bloom_config){
		.vocab_size = vocab,
		.hidden_size = hidden,
		.n_layer = n_layer,
		.n_head = n_head,
		.layer_norm_epsilon = 1e-5,
		.apply_residual_connection_post_layernorm = false,
		.hidden_dropout = 0.0,
		.attention_dropout = 0.0,
		.initializer_range = 0.02,
		.bos_token_id = 1,
		.eos_token_id = 2,
		.pad_token_id = 3,
	};
}

int bloom_config_validate(const struct bloom_config *c, const char *what,
			  struct hug_error *err)
{
	if (c->vocab_size <= 0 || c->vocab_size > INT32_MAX)
		return hug_error_set(err, "%s: vocab_size: expected 1..%d, got %lld",
				     what, INT32_MAX, (long long)c->vocab_size);
	if (c->hidden_size <= 0)
		return hug_error_set(err, "%s: hidden_size: expected > 0, got %lld",
				     what, (long long)c->hidden_size);
	if (c->n_layer <= 0)
		return hug_error_set(err, "%s: n_layer: expected > 0, got %d", what, c->n_layer);
	if (c->n_head <= 0)
		return hug_error_set(err, "%s: n_head: expected > 0, got %d", what, c->n_head);
	if (c->hidden_size % c->n_head)
		return hug_error_set(err, "%s: hidden_size %lld is not divisible by n_head %d",
				     what, (long long)c->hidden_size, c->n_head);
	/* the parameter count (and every tensor size) must fit int64 with
	 * room to spare: counted in double before anything is allocated */
	double h = (double)c->hidden_size;
	double params = (double)c->vocab_size * h + (double)c->n_layer * (12.0 * h * h + 13.0 * h);
	if (params > BLOOM_MAX_PARAMS)
		return hug_error_set(err, "%s: vocab_size %lld, hidden_size %lld, n_layer %d: "
				     "the model would have %.3g parameters (at most %.3g)",
				     what, (long long)c->vocab_size, (long long)c->hidden_size,
				     c->n_layer, params, BLOOM_MAX_PARAMS);
	if (!(c->layer_norm_epsilon > 0))
		return hug_error_set(err, "%s: layer_norm_epsilon: expected > 0, got %g",
				     what, c->layer_norm_epsilon);
	if (!(c->hidden_dropout >= 0 && c->hidden_dropout < 1))
		return hug_error_set(err, "%s: hidden_dropout: expected in [0, 1), got %g",
				     what, c->hidden_dropout);
	if (!(c->attention_dropout >= 0 && c->attention_dropout < 1))
		return hug_error_set(err, "%s: attention_dropout: expected in [0, 1), got %g",
				     what, c->attention_dropout);
	if (!(c->initializer_range >= 0))
		return hug_error_set(err, "%s: initializer_range: expected >= 0, got %g",
				     what, c->initializer_range);
	return 0;
}

int64_t bloom_param_count(const struct bloom_config *c)
{
	int64_t h = c->hidden_size;
	return c->vocab_size * h + 4 * h + (int64_t)c->n_layer * (12 * h * h + 13 * h);
}

static const struct {
	const char *name;
	int64_t hidden;
	int n_layer, n_head;
} presets[] = {
	{ "bloom-560m", 1024, 24, 16 },
	{ "bloom-1b1", 1536, 24, 16 },
	{ "bloom-1b7", 2048, 24, 16 },
	{ "bloom-3b", 2560, 30, 32 },
	{ "bloom-7b1", 4096, 30, 32 },
	{ "bloom", 14336, 70, 112 },
	{ "bloom-176b", 14336, 70, 112 },   /* "bloom" by its size */
};

int bloom_config_preset(const char *name, struct bloom_config *cfg)
{
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (!strcmp(name, presets[i].name)) {
			*cfg = bloom_config_make(250880, presets[i].hidden,
						 presets[i].n_layer, presets[i].n_head);
			return 0;
		}
	return -1;
}


double bloom_flops_per_token(const struct bloom_config *c, int64_t seq_len)
{
	/* 6N for the matrices, plus attention's QK^T and PV (forward 4 L T C,
	 * three times that with the backward) */
	return 6.0 * (double)bloom_param_count(c) +
	       12.0 * c->n_layer * (double)seq_len * (double)c->hidden_size;
}

static void print_token(FILE *out, const char *key, int id)
{
	if (id < 0)
		fprintf(out, "  %-42s none\n", key);
	else
		fprintf(out, "  %-42s %d\n", key, id);
}

void bloom_config_print(const struct bloom_config *c, FILE *out)
{
	fprintf(out, "  %-42s %" PRId64 "\n", "vocab_size", c->vocab_size);
	fprintf(out, "  %-42s %" PRId64 "\n", "hidden_size", c->hidden_size);
	fprintf(out, "  %-42s %d\n", "n_layer", c->n_layer);
	fprintf(out, "  %-42s %d (head_dim %" PRId64 ")\n", "n_head", c->n_head,
		c->hidden_size / c->n_head);
	fprintf(out, "  %-42s %g\n", "layer_norm_epsilon", c->layer_norm_epsilon);
	fprintf(out, "  %-42s %s\n", "apply_residual_connection_post_layernorm",
		c->apply_residual_connection_post_layernorm ? "true" : "false");
	fprintf(out, "  %-42s %g\n", "hidden_dropout", c->hidden_dropout);
	fprintf(out, "  %-42s %g\n", "attention_dropout", c->attention_dropout);
	fprintf(out, "  %-42s %g\n", "initializer_range", c->initializer_range);
	print_token(out, "bos_token_id", c->bos_token_id);
	print_token(out, "eos_token_id", c->eos_token_id);
	print_token(out, "pad_token_id", c->pad_token_id);
}

/* ---- config.json ---- */

int bloom_config_from_json(const char *file, const cJSON *root, struct bloom_config *cfg,
			   struct hug_error *err)
{
	int64_t vocab = 0, hidden = 0, n_layer = 0, n_head = 0;
	bool tied = true;
	const struct json_at at = { file, NULL };
	if (hug_json_get_bool(&at, root, "tie_word_embeddings", false, &tied, err))
		return -1;
	if (!tied)
		return hug_error_set(err, "%s: tie_word_embeddings: false is not supported (hug ties lm_head to the word embeddings)",
				     file);
	if (
	    hf_cfg_size(file, root, "vocab_size", NULL, INT32_MAX, &vocab, err) ||
	    hf_cfg_size(file, root, "hidden_size", "n_embed", INT64_MAX, &hidden, err) ||
	    hf_cfg_size(file, root, "n_layer", "num_hidden_layers", INT32_MAX, &n_layer, err) ||
	    hf_cfg_size(file, root, "n_head", "num_attention_heads", INT32_MAX, &n_head, err))
		return -1;
	/* hidden_size is squared (and times 12) in the parameter count */
	if (hidden > ((int64_t)1 << 28))
		return hug_error_set(err, "%s: hidden_size: %" PRId64 " is too large (at most %d)",
				     file, hidden, 1 << 28);
	*cfg = bloom_config_make(vocab, hidden, (int)n_layer, (int)n_head);
	if (hug_json_get_number(&at, root, "layer_norm_epsilon", false, &cfg->layer_norm_epsilon, err) ||
	    hug_json_get_bool(&at, root, "apply_residual_connection_post_layernorm", false,
		     &cfg->apply_residual_connection_post_layernorm, err) ||
	    hug_json_get_number(&at, root, "hidden_dropout", false, &cfg->hidden_dropout, err) ||
	    hug_json_get_number(&at, root, "attention_dropout", false, &cfg->attention_dropout, err) ||
	    hug_json_get_number(&at, root, "initializer_range", false, &cfg->initializer_range, err) ||
	    hf_cfg_token(file, root, "bos_token_id", &cfg->bos_token_id, err) ||
	    hf_cfg_token(file, root, "eos_token_id", &cfg->eos_token_id, err) ||
	    hf_cfg_token(file, root, "pad_token_id", &cfg->pad_token_id, err))
		return -1;
	return bloom_config_validate(cfg, file, err);
}


int bloom_config_write(const struct bloom_config *cfg, enum dtype weights_dtype,
		       const char *dir, struct hug_error *err)
{
	const char *tdt = hf_torch_dtype_name(weights_dtype);
	struct hf_object o = { 0 };
	char q[64];
	if (!tdt)
		return hug_error_set(err, "%s: %s: weights dtype %s is not a float type",
				     dir, HF_CONFIG_FILE, dtype_name(weights_dtype));
	if (!isfinite(cfg->layer_norm_epsilon) || !isfinite(cfg->hidden_dropout) ||
	    !isfinite(cfg->attention_dropout) || !isfinite(cfg->initializer_range))
		return hug_error_set(err, "%s: %s: the config holds a non-finite number",
				     dir, HF_CONFIG_FILE);
	snprintf(q, sizeof(q), "\"%s\"", tdt);
	hf_object_text(&o, "apply_residual_connection_post_layernorm",
		       cfg->apply_residual_connection_post_layernorm ? "true" : "false");
	hf_object_text(&o, "architectures", "[\n    \"BloomForCausalLM\"\n  ]");
	hf_object_double(&o, "attention_dropout", cfg->attention_dropout);
	hf_object_token(&o, "bos_token_id", cfg->bos_token_id);
	/* transformers 5 writes "dtype"; 4.x reads "torch_dtype" */
	hf_object_text(&o, "dtype", q);
	hf_object_token(&o, "eos_token_id", cfg->eos_token_id);
	hf_object_double(&o, "hidden_dropout", cfg->hidden_dropout);
	hf_object_int(&o, "hidden_size", cfg->hidden_size);
	hf_object_double(&o, "initializer_range", cfg->initializer_range);
	hf_object_double(&o, "layer_norm_epsilon", cfg->layer_norm_epsilon);
	hf_object_text(&o, "model_type", "\"bloom\"");
	hf_object_int(&o, "n_head", cfg->n_head);
	hf_object_int(&o, "n_layer", cfg->n_layer);
	hf_object_token(&o, "pad_token_id", cfg->pad_token_id);
	hf_object_text(&o, "pretraining_tp", "1");
	hf_object_text(&o, "slow_but_exact", "false");
	hf_object_text(&o, "tie_word_embeddings", "true");
	hf_object_text(&o, "torch_dtype", q);
	hf_object_text(&o, "use_cache", "true");
	hf_object_int(&o, "vocab_size", cfg->vocab_size);
	if (hf_object_write_in(&o, dir, HF_CONFIG_FILE, err))
		return -1;
	struct hf_object g = { 0 };
	hf_object_text(&g, "_from_model_config", "true");
	hf_object_token(&g, "bos_token_id", cfg->bos_token_id);
	hf_object_token(&g, "eos_token_id", cfg->eos_token_id);
	hf_object_token(&g, "pad_token_id", cfg->pad_token_id);
	return hf_object_write_in(&g, dir, HF_GENERATION_CONFIG_FILE, err);
}

/* ---- finding the weight files ---- */

