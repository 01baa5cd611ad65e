/* llama_config.c: the configuration of the Llama-style families
 * (LlamaConfig, Qwen2Config, Qwen3Config, MistralConfig): transformers'
 * defaults, validation, parameter count and FLOPs, the published sizes,
 * and config.json / generation_config.json as transformers reads and
 * writes them for each class. */
#include "llama.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/buf.h"
#include "../base/json.h"
#include "hf_json.h"

/* The class defaults transformers uses for keys a config.json omits. */
static const struct {
	const char *model_type, *architecture;
	int64_t intermediate, max_pos, head_dim;  /* head_dim 0: hidden / heads */
	int kv_heads;                             /* 0: num_attention_heads */
	int bos, eos;
	int64_t window;
} defaults[LLAMA_V_COUNT] = {
	[LLAMA_V_LLAMA] = { "llama", "LlamaForCausalLM", 11008, 2048, 0, 0, 1, 2, 0 },
	[LLAMA_V_QWEN2] = { "qwen2", "Qwen2ForCausalLM", 22016, 32768, 0, 32, -1, -1, 0 },
	[LLAMA_V_QWEN3] = { "qwen3", "Qwen3ForCausalLM", 22016, 32768, 128, 32, -1, -1, 0 },
	[LLAMA_V_MISTRAL] = { "mistral", "MistralForCausalLM", 14336, 131072, 0, 8, 1, 2, 4096 },
};

bool llama_qkv_bias(const struct llama_config *c)
{
	return c->variant == LLAMA_V_QWEN2 || c->attention_bias;
}

bool llama_o_bias(const struct llama_config *c)
{
	return c->variant != LLAMA_V_QWEN2 && c->attention_bias;
}

bool llama_qk_norm(const struct llama_config *c)
{
	return c->variant == LLAMA_V_QWEN3;
}

struct llama_config llama_config_make(enum llama_variant v, int64_t vocab, int64_t hidden,
				      int n_layer, int n_head)
{
	return (struct llama_config){
		.variant = v,
		.vocab_size = vocab,
		.hidden_size = hidden,
		.intermediate_size = 4 * hidden,
		.n_layer = n_layer,
		.n_head = n_head,
		.n_kv_head = n_head,
		.head_dim = n_head > 0 ? hidden / n_head : 0,
		.max_position_embeddings = defaults[v].max_pos,
		.rms_norm_eps = 1e-6,
		.initializer_range = 0.02,
		.attention_dropout = 0.0,
		.tie_word_embeddings = false,
		.rope = { .type = ROPE_DEFAULT, .theta = 10000.0, .factor = 1.0 },
		.sliding_window = defaults[v].window,
		.max_window_layers = 28,
		.bos_token_id = defaults[v].bos,
		.eos_token_id = defaults[v].eos,
		.pad_token_id = -1,
	};
}

/* Parameters, in double (for the validation of untrusted sizes). */
static double count(const struct llama_config *c)
{
	double C = (double)c->hidden_size, I = (double)c->intermediate_size;
	double q = (double)c->n_head * (double)c->head_dim;
	double kv = (double)c->n_kv_head * (double)c->head_dim;
	double layer = C * q + 2 * C * kv + q * C + 3 * C * I + 2 * C;
	if (llama_qkv_bias(c))
		layer += q + 2 * kv;
	if (llama_o_bias(c))
		layer += C;
	if (c->mlp_bias)
		layer += 2 * I + C;
	if (llama_qk_norm(c))
		layer += 2 * (double)c->head_dim;
	double emb = (double)c->vocab_size * C * (c->tie_word_embeddings ? 1 : 2);
	return emb + C + (double)c->n_layer * layer;
}

int64_t llama_param_count(const struct llama_config *c)
{
	int64_t C = c->hidden_size, I = c->intermediate_size;
	int64_t q = (int64_t)c->n_head * c->head_dim, kv = (int64_t)c->n_kv_head * c->head_dim;
	int64_t layer = C * q + 2 * C * kv + q * C + 3 * C * I + 2 * C;
	if (llama_qkv_bias(c))
		layer += q + 2 * kv;
	if (llama_o_bias(c))
		layer += C;
	if (c->mlp_bias)
		layer += 2 * I + C;
	if (llama_qk_norm(c))
		layer += 2 * c->head_dim;
	return c->vocab_size * C * (c->tie_word_embeddings ? 1 : 2) + C + c->n_layer * layer;
}

double llama_flops_per_token(const struct llama_config *c, int64_t seq_len)
{
	/* 6N for the matrices (the embedding lookup is no product; a tied
	 * lm_head is), plus QK^T and PV: forward 4 L T H D, x3 with backward */
	double n = (double)llama_param_count(c);
	if (!c->tie_word_embeddings)
		n -= (double)c->vocab_size * (double)c->hidden_size;
	return 6.0 * n + 12.0 * c->n_layer * (double)seq_len * (double)c->n_head *
			       (double)c->head_dim;
}

int llama_config_validate(const struct llama_config *c, const char *what,
			  struct hug_error *err)
{
	if (c->vocab_size <= 0 || c->vocab_size > INT32_MAX)
		return hug_error_set(err, "%s: vocab_size: expected 1..%d, got %" PRId64, what,
				     INT32_MAX, c->vocab_size);
	if (c->hidden_size <= 0 || c->hidden_size > ((int64_t)1 << 28))
		return hug_error_set(err, "%s: hidden_size: expected 1..%d, got %" PRId64, what,
				     1 << 28, c->hidden_size);
	if (c->intermediate_size <= 0 || c->intermediate_size > ((int64_t)1 << 30))
		return hug_error_set(err, "%s: intermediate_size: expected 1..%d, got %" PRId64,
				     what, 1 << 30, c->intermediate_size);
	if (c->n_layer <= 0)
		return hug_error_set(err, "%s: num_hidden_layers: expected > 0, got %d", what,
				     c->n_layer);
	if (c->n_head <= 0)
		return hug_error_set(err, "%s: num_attention_heads: expected > 0, got %d", what,
				     c->n_head);
	if (c->n_kv_head <= 0 || c->n_head % c->n_kv_head)
		return hug_error_set(err, "%s: num_key_value_heads: expected a divisor of "
				     "num_attention_heads (%d), got %d", what, c->n_head,
				     c->n_kv_head);
	if (c->head_dim <= 0 || c->head_dim % 2 || c->head_dim > 65536)
		return hug_error_set(err, "%s: head_dim: expected an even number in 2..65536, got %"
				     PRId64 "%s", what, c->head_dim,
				     c->head_dim == c->hidden_size / c->n_head ?
				     " (hidden_size / num_attention_heads)" : "");
	if (c->max_position_embeddings <= 0)
		return hug_error_set(err, "%s: max_position_embeddings: expected > 0, got %" PRId64,
				     what, c->max_position_embeddings);
	double params = count(c);
	if (params > LLAMA_MAX_PARAMS)
		return hug_error_set(err, "%s: the model would have %.3g parameters (at most %.3g)",
				     what, params, LLAMA_MAX_PARAMS);
	if (!(c->rms_norm_eps > 0) || !isfinite(c->rms_norm_eps))
		return hug_error_set(err, "%s: rms_norm_eps: expected > 0, got %g", what,
				     c->rms_norm_eps);
	if (!(c->initializer_range >= 0) || !isfinite(c->initializer_range))
		return hug_error_set(err, "%s: initializer_range: expected >= 0, got %g", what,
				     c->initializer_range);
	if (!(c->attention_dropout >= 0 && c->attention_dropout < 1))
		return hug_error_set(err, "%s: attention_dropout: expected in [0, 1), got %g", what,
				     c->attention_dropout);
	if (c->sliding_window < 0)
		return hug_error_set(err, "%s: sliding_window: expected > 0 or null, got %" PRId64,
				     what, c->sliding_window);
	return rope_params_validate(&c->rope, what, err);
}

int llama_tp_validate(const struct llama_config *c, int size, struct hug_error *err)
{
	bool kv_ok = size >= 1 && (c->n_kv_head % size == 0 || size % c->n_kv_head == 0);
	if (size < 1 || c->n_head % size || !kv_ok || c->intermediate_size % size ||
	    c->vocab_size < size)
		return hug_error_set(err, "tensor parallelism %d needs num_attention_heads (%d) "
				     "and intermediate_size (%" PRId64 ") divisible by it, and "
				     "num_key_value_heads (%d) divisible by it (heads split over "
				     "the ranks) or dividing it (heads replicated)", size,
				     c->n_head, c->intermediate_size, c->n_kv_head);
	return 0;
}

bool llama_kv_replicated(const struct llama_config *c, int size)
{
	return c->n_kv_head < size;
}

/* ---- presets: the published config.json files ---- */

struct preset {
	const char *name;
	enum llama_variant v;
	int64_t vocab, hidden, inter;
	int layers, heads, kv;
	int64_t head_dim, max_pos;
	double eps, theta;
	bool tied;
	struct rope_params scaling;  /* type ROPE_DEFAULT: none */
	int64_t window;
	int max_window_layers;
	int bos, eos;
};

/* llama3 rope scaling with factor F (macros: C11 initialisers must be constant). */
#define LLAMA3_ROPE(F) { ROPE_LLAMA3, 500000.0, F, 1.0, 4.0, 8192 }

static const struct preset presets[] = {
	/* meta-llama/Llama-3.2-1B: 1,235,814,400 parameters */
	{ "llama-3.2-1b", LLAMA_V_LLAMA, 128256, 2048, 8192, 16, 32, 8, 64, 131072, 1e-5,
	  500000.0, true, LLAMA3_ROPE(32.0), 0, 0, 128000, 128001 },
	/* meta-llama/Llama-3.1-8B: 8,030,261,248 */
	{ "llama-3.1-8b", LLAMA_V_LLAMA, 128256, 4096, 14336, 32, 32, 8, 128, 131072, 1e-5,
	  500000.0, false, LLAMA3_ROPE(8.0), 0, 0, 128000, 128001 },
	/* HuggingFaceTB/SmolLM2-135M: 134,515,008 */
	{ "smollm2-135m", LLAMA_V_LLAMA, 49152, 576, 1536, 30, 9, 3, 64, 8192, 1e-5,
	  100000.0, true, { ROPE_DEFAULT, 0, 0, 0, 0, 0 }, 0, 0, 0, 0 },
	/* Qwen/Qwen2.5-0.5B: 494,032,768 */
	{ "qwen2.5-0.5b", LLAMA_V_QWEN2, 151936, 896, 4864, 24, 14, 2, 64, 32768, 1e-6,
	  1000000.0, true, { ROPE_DEFAULT, 0, 0, 0, 0, 0 }, 0, 24, 151643, 151643 },
	/* Qwen/Qwen2.5-7B: 7,615,616,512 */
	{ "qwen2.5-7b", LLAMA_V_QWEN2, 152064, 3584, 18944, 28, 28, 4, 128, 131072, 1e-6,
	  1000000.0, false, { ROPE_DEFAULT, 0, 0, 0, 0, 0 }, 0, 28, 151643, 151643 },
	/* Qwen/Qwen3-0.6B: 596,049,920 */
	{ "qwen3-0.6b", LLAMA_V_QWEN3, 151936, 1024, 3072, 28, 16, 8, 128, 40960, 1e-6,
	  1000000.0, true, { ROPE_DEFAULT, 0, 0, 0, 0, 0 }, 0, 28, 151643, 151645 },
	/* Qwen/Qwen3-8B: 8,190,735,360 */
	{ "qwen3-8b", LLAMA_V_QWEN3, 151936, 4096, 12288, 36, 32, 8, 128, 40960, 1e-6,
	  1000000.0, false, { ROPE_DEFAULT, 0, 0, 0, 0, 0 }, 0, 36, 151643, 151645 },
	/* mistralai/Mistral-7B-v0.1: 7,241,732,096 */
	{ "mistral-7b", LLAMA_V_MISTRAL, 32000, 4096, 14336, 32, 32, 8, 128, 32768, 1e-5,
	  10000.0, false, { ROPE_DEFAULT, 0, 0, 0, 0, 0 }, 4096, 0, 1, 2 },
};

int llama_config_preset(enum llama_variant v, const char *name, struct llama_config *out)
{
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
		const struct preset *p = &presets[i];
		if (p->v != v || strcmp(p->name, name))
			continue;
		struct llama_config c = llama_config_make(v, p->vocab, p->hidden, p->layers,
							  p->heads);
		c.intermediate_size = p->inter;
		c.n_kv_head = p->kv;
		c.head_dim = p->head_dim;
		c.max_position_embeddings = p->max_pos;
		c.rms_norm_eps = p->eps;
		c.tie_word_embeddings = p->tied;
		c.rope = p->scaling;
		c.rope.theta = p->theta;
		if (c.rope.type == ROPE_DEFAULT)
			c.rope.factor = 1.0;
		c.sliding_window = p->window;
		if (p->max_window_layers)
			c.max_window_layers = p->max_window_layers;
		c.bos_token_id = p->bos;
		c.eos_token_id = p->eos;
		*out = c;
		return 0;
	}
	return -1;
}

int llama_config_set(struct llama_config *c, const char *key, double v)
{
	if (!strcmp(key, "rms_norm_eps"))
		c->rms_norm_eps = v;
	else if (!strcmp(key, "initializer_range"))
		c->initializer_range = v;
	else if (!strcmp(key, "attention_dropout"))
		c->attention_dropout = v;
	else if (!strcmp(key, "intermediate_size"))
		c->intermediate_size = (int64_t)v;
	else if (!strcmp(key, "num_key_value_heads"))
		c->n_kv_head = (int)v;
	else if (!strcmp(key, "head_dim"))
		c->head_dim = (int64_t)v;
	else if (!strcmp(key, "max_position_embeddings"))
		c->max_position_embeddings = (int64_t)v;
	else if (!strcmp(key, "rope_theta"))
		c->rope.theta = v;
	else if (!strcmp(key, "tie_word_embeddings"))
		c->tie_word_embeddings = v != 0;
	else if (!strcmp(key, "attention_bias") && c->variant != LLAMA_V_QWEN2 &&
		 c->variant != LLAMA_V_MISTRAL)
		c->attention_bias = v != 0;
	else if (!strcmp(key, "mlp_bias") && c->variant == LLAMA_V_LLAMA)
		c->mlp_bias = v != 0;
	else if (!strcmp(key, "sliding_window") && c->variant == LLAMA_V_MISTRAL)
		c->sliding_window = (int64_t)v;
	else if (!strcmp(key, "bos_token_id"))
		c->bos_token_id = (int)v;
	else if (!strcmp(key, "eos_token_id"))
		c->eos_token_id = (int)v;
	else if (!strcmp(key, "pad_token_id"))
		c->pad_token_id = (int)v;
	else
		return -1;
	return 0;
}

static void print_token(FILE *out, const char *key, int id)
{
	if (id < 0)
		fprintf(out, "  %-42s none\n", key);
	else
		fprintf(out, "  %-42s %d\n", key, id);
}

void llama_config_print(const struct llama_config *c, FILE *out)
{
	fprintf(out, "  %-42s %" PRId64 "\n", "vocab_size", c->vocab_size);
	fprintf(out, "  %-42s %" PRId64 "\n", "hidden_size", c->hidden_size);
	fprintf(out, "  %-42s %" PRId64 "\n", "intermediate_size", c->intermediate_size);
	fprintf(out, "  %-42s %d\n", "num_hidden_layers", c->n_layer);
	fprintf(out, "  %-42s %d\n", "num_attention_heads", c->n_head);
	fprintf(out, "  %-42s %d\n", "num_key_value_heads", c->n_kv_head);
	fprintf(out, "  %-42s %" PRId64 "\n", "head_dim", c->head_dim);
	fprintf(out, "  %-42s %" PRId64 "\n", "max_position_embeddings",
		c->max_position_embeddings);
	fprintf(out, "  %-42s %g\n", "rms_norm_eps", c->rms_norm_eps);
	fprintf(out, "  %-42s %g\n", "rope_theta", c->rope.theta);
	fprintf(out, "  %-42s %s", "rope_type", rope_type_name(c->rope.type));
	if (c->rope.type == ROPE_LINEAR)
		fprintf(out, " (factor %g)", c->rope.factor);
	else if (c->rope.type == ROPE_LLAMA3)
		fprintf(out, " (factor %g, low_freq_factor %g, high_freq_factor %g, "
			"original_max_position_embeddings %" PRId64 ")", c->rope.factor,
			c->rope.low_freq_factor, c->rope.high_freq_factor,
			c->rope.original_max_position_embeddings);
	fprintf(out, "\n");
	fprintf(out, "  %-42s %s\n", "tie_word_embeddings", c->tie_word_embeddings ? "true" : "false");
	if (c->variant == LLAMA_V_LLAMA || c->variant == LLAMA_V_QWEN3)
		fprintf(out, "  %-42s %s\n", "attention_bias", c->attention_bias ? "true" : "false");
	if (c->variant == LLAMA_V_LLAMA)
		fprintf(out, "  %-42s %s\n", "mlp_bias", c->mlp_bias ? "true" : "false");
	if (c->variant == LLAMA_V_MISTRAL) {
		if (c->sliding_window)
			fprintf(out, "  %-42s %" PRId64 "\n", "sliding_window", c->sliding_window);
		else
			fprintf(out, "  %-42s none\n", "sliding_window");
	}
	fprintf(out, "  %-42s %g\n", "attention_dropout", c->attention_dropout);
	fprintf(out, "  %-42s %g\n", "initializer_range", c->initializer_range);
	print_token(out, "bos_token_id", c->bos_token_id);
	print_token(out, "eos_token_id", c->eos_token_id);
	for (int k = 0; k < c->n_eos_more; k++)
		print_token(out, "eos_token_id (also)", c->eos_more[k]);
	print_token(out, "pad_token_id", c->pad_token_id);
}

/* ---- config.json ---- */

/* eos_token_id: an id, a list (the first into c->eos_token_id, the rest
 * into eos_more), or null. Absent: untouched. */
static int read_eos(const char *file, const cJSON *root, struct llama_config *c,
		    struct hug_error *err)
{
	int ids[MODEL_MAX_EOS], n = -1;
	if (hf_cfg_tokens(file, root, "eos_token_id", ids, MODEL_MAX_EOS, &n, err))
		return -1;
	if (n < 0)
		return 0;
	c->eos_token_id = n ? ids[0] : -1;
	c->n_eos_more = n > 1 ? n - 1 : 0;
	for (int k = 1; k < n; k++)
		c->eos_more[k - 1] = ids[k];
	return 0;
}

/* An integer or null (0) under key; absent: untouched. */
static int read_window(const char *file, const cJSON *root, int64_t *out,
		       struct hug_error *err)
{
	const struct json_at at = { file, NULL };
	const cJSON *it;
	if (hug_json_member(&at, root, "sliding_window", &it, err))
		return -1;
	if (!it)
		return 0;
	if (cJSON_IsNull(it)) {
		*out = 0;
		return 0;
	}
	if (!hug_json_int_in(it, 1, INT32_MAX, out))
		return hug_json_expected(&at, "sliding_window", "a positive integer or null", it, err);
	return 0;
}

/* Qwen2/Qwen3: hug computes full attention in every layer. */
static int read_qwen_window(const char *file, const cJSON *root, struct llama_config *c,
			    struct hug_error *err)
{
	const struct json_at at = { file, NULL };
	bool use = false;
	int64_t mwl = c->max_window_layers, window = 0;
	const cJSON *types;
	if (hug_json_get_bool(&at, root, "use_sliding_window", false, &use, err) ||
	    hug_json_get_int(&at, root, "max_window_layers", 0, INT32_MAX, false, &mwl, err) ||
	    read_window(file, root, &window, err) ||
	    hug_json_member(&at, root, "layer_types", &types, err))
		return -1;
	if (use)
		return hug_error_set(err, "%s: use_sliding_window: true is not supported for %s "
				     "(hug computes full attention in every layer; expected false)",
				     file, defaults[c->variant].architecture);
	c->max_window_layers = (int)mwl;
	if (types && !cJSON_IsNull(types)) {
		if (!cJSON_IsArray(types) || cJSON_GetArraySize(types) != c->n_layer)
			return hug_json_expected(&at, "layer_types", "a list of one type per layer",
						 types, err);
		for (int i = 0; i < c->n_layer; i++) {
			const cJSON *t = cJSON_GetArrayItem(types, i);
			if (!cJSON_IsString(t) || strcmp(t->valuestring, "full_attention")) {
				char got[64];
				return hug_error_set(err, "%s: layer_types[%d]: expected "
						     "\"full_attention\" (the only type hug supports "
						     "for %s), got %s", file, i,
						     defaults[c->variant].architecture,
						     hug_json_text(t, got, sizeof(got)));
			}
		}
	}
	return 0;
}

int llama_config_from_json(enum llama_variant v, const char *file, const cJSON *root,
			   struct llama_config *out, struct hug_error *err)
{
	const struct json_at at = { file, NULL };
	int64_t vocab = 0, hidden = 0, n_layer = 0, n_head = 0;
	if (hf_cfg_size(file, root, "vocab_size", NULL, INT32_MAX, &vocab, err) ||
	    hf_cfg_size(file, root, "hidden_size", NULL, (int64_t)1 << 28, &hidden, err) ||
	    hf_cfg_size(file, root, "num_hidden_layers", NULL, 1 << 20, &n_layer, err) ||
	    hf_cfg_size(file, root, "num_attention_heads", NULL, 1 << 20, &n_head, err))
		return -1;
	struct llama_config c = llama_config_make(v, vocab, hidden, (int)n_layer, (int)n_head);
	int64_t kv = defaults[v].kv_heads ? defaults[v].kv_heads : n_head;
	int64_t head_dim = defaults[v].head_dim ? defaults[v].head_dim : hidden / n_head;
	c.intermediate_size = defaults[v].intermediate;
	const char *act = "silu";
	const cJSON *hd;
	if (hug_json_get_int(&at, root, "intermediate_size", 1, (int64_t)1 << 30, false,
			     &c.intermediate_size, err) ||
	    hug_json_get_int(&at, root, "num_key_value_heads", 1, 1 << 20, false, &kv, err) ||
	    hug_json_member(&at, root, "head_dim", &hd, err) ||
	    hug_json_get_int(&at, root, "max_position_embeddings", 1, INT64_MAX / 2, false,
			     &c.max_position_embeddings, err) ||
	    hug_json_get_number(&at, root, "rms_norm_eps", false, &c.rms_norm_eps, err) ||
	    hug_json_get_number(&at, root, "initializer_range", false, &c.initializer_range, err) ||
	    hug_json_get_number(&at, root, "attention_dropout", false, &c.attention_dropout, err) ||
	    hug_json_get_bool(&at, root, "tie_word_embeddings", false, &c.tie_word_embeddings, err) ||
	    hug_json_get_string(&at, root, "hidden_act", false, &act, err) ||
	    hf_cfg_token(file, root, "bos_token_id", &c.bos_token_id, err) ||
	    read_eos(file, root, &c, err) ||
	    hf_cfg_token(file, root, "pad_token_id", &c.pad_token_id, err) ||
	    rope_params_from_json(file, root, 10000.0, &c.rope, err))
		return -1;
	/* head_dim: null or absent means hidden_size / num_attention_heads
	 * (Qwen3's class default is 128) */
	if (hd && !cJSON_IsNull(hd) && !hug_json_int_in(hd, 1, 65536, &head_dim))
		return hug_json_expected(&at, "head_dim", "a positive integer or null", hd, err);
	if (hd && cJSON_IsNull(hd))
		head_dim = hidden / n_head;
	c.n_kv_head = (int)kv;
	c.head_dim = head_dim;
	if (strcmp(act, "silu"))
		return hug_error_set(err, "%s: hidden_act: expected \"silu\" (the gated MLP hug "
				     "implements), got \"%s\"", file, act);
	if (v == LLAMA_V_LLAMA || v == LLAMA_V_QWEN3) {
		if (hug_json_get_bool(&at, root, "attention_bias", false, &c.attention_bias, err))
			return -1;
	}
	if (v == LLAMA_V_LLAMA &&
	    hug_json_get_bool(&at, root, "mlp_bias", false, &c.mlp_bias, err))
		return -1;
	if (v == LLAMA_V_MISTRAL && read_window(file, root, &c.sliding_window, err))
		return -1;
	if ((v == LLAMA_V_QWEN2 || v == LLAMA_V_QWEN3) && read_qwen_window(file, root, &c, err))
		return -1;
	if (llama_config_validate(&c, file, err))
		return -1;
	*out = c;
	return 0;
}

/* Members with texts longer than hf_object's (rope_parameters, layer_types). */
#define MEMBERS_MAX (HF_OBJECT_MAX + 4)

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct json_member *)a)->key, ((const struct json_member *)b)->key);
}

int llama_config_write(const struct llama_config *c, enum dtype weights_dtype,
		       const char *dir, struct hug_error *err)
{
	const char *tdt = hf_torch_dtype_name(weights_dtype);
	enum llama_variant v = c->variant;
	struct hf_object o = { 0 };
	char q[64], rope[512];
	if (!tdt)
		return hug_error_set(err, "%s: %s: weights dtype %s is not a float type", dir,
				     HF_CONFIG_FILE, dtype_name(weights_dtype));
	if (!isfinite(c->rms_norm_eps) || !isfinite(c->initializer_range) ||
	    !isfinite(c->attention_dropout) || !isfinite(c->rope.theta))
		return hug_error_set(err, "%s: %s: the config holds a non-finite number", dir,
				     HF_CONFIG_FILE);
	snprintf(q, sizeof(q), "\"%s\"", tdt);
	char arch[96], type[32];
	snprintf(arch, sizeof(arch), "[\n    \"%s\"\n  ]", defaults[v].architecture);
	snprintf(type, sizeof(type), "\"%s\"", defaults[v].model_type);
	hf_object_text(&o, "architectures", arch);
	hf_object_double(&o, "attention_dropout", c->attention_dropout);
	hf_object_token(&o, "bos_token_id", c->bos_token_id);
	hf_object_text(&o, "dtype", q);
	hf_object_tokens(&o, "eos_token_id", c->eos_token_id, c->eos_more, c->n_eos_more);
	hf_object_text(&o, "hidden_act", "\"silu\"");
	hf_object_int(&o, "hidden_size", c->hidden_size);
	hf_object_double(&o, "initializer_range", c->initializer_range);
	hf_object_int(&o, "intermediate_size", c->intermediate_size);
	hf_object_int(&o, "max_position_embeddings", c->max_position_embeddings);
	hf_object_text(&o, "model_type", type);
	hf_object_int(&o, "num_attention_heads", c->n_head);
	hf_object_int(&o, "num_hidden_layers", c->n_layer);
	hf_object_int(&o, "num_key_value_heads", c->n_kv_head);
	hf_object_token(&o, "pad_token_id", c->pad_token_id);
	hf_object_double(&o, "rms_norm_eps", c->rms_norm_eps);
	hf_object_text(&o, "tie_word_embeddings", c->tie_word_embeddings ? "true" : "false");
	hf_object_text(&o, "torch_dtype", q);
	hf_object_text(&o, "use_cache", "true");
	hf_object_int(&o, "vocab_size", c->vocab_size);
	if (v == LLAMA_V_QWEN2 && c->head_dim != c->hidden_size / c->n_head)
		hf_object_int(&o, "head_dim", c->head_dim);
	if (v != LLAMA_V_QWEN2)
		hf_object_int(&o, "head_dim", c->head_dim);
	if (v == LLAMA_V_LLAMA || v == LLAMA_V_QWEN3)
		hf_object_text(&o, "attention_bias", c->attention_bias ? "true" : "false");
	if (v == LLAMA_V_LLAMA) {
		hf_object_text(&o, "mlp_bias", c->mlp_bias ? "true" : "false");
		hf_object_text(&o, "pretraining_tp", "1");
	}
	if (v == LLAMA_V_MISTRAL) {
		if (c->sliding_window)
			hf_object_int(&o, "sliding_window", c->sliding_window);
		else
			hf_object_text(&o, "sliding_window", "null");
	}
	struct buf types = { 0 };
	if (v == LLAMA_V_QWEN2 || v == LLAMA_V_QWEN3) {
		hf_object_int(&o, "max_window_layers", c->max_window_layers);
		hf_object_text(&o, "sliding_window", "null");
		hf_object_text(&o, "use_sliding_window", "false");
		buf_str(&types, "[\n");
		for (int i = 0; i < c->n_layer; i++)
			buf_str(&types, i + 1 < c->n_layer ? "    \"full_attention\",\n"
							   : "    \"full_attention\"\n");
		buf_str(&types, "  ]");
	}
	rope_params_json(&c->rope, rope, sizeof(rope));
	struct json_member m[MEMBERS_MAX];
	int n = 0;
	for (int i = 0; i < o.n; i++)
		m[n++] = o.m[i];
	m[n++] = (struct json_member){ "rope_parameters", rope };
	if (types.n)
		m[n++] = (struct json_member){ "layer_types", types.p };
	qsort(m, (size_t)n, sizeof(m[0]), by_key);
	struct buf b = { 0 };
	hug_json_flat_object(&b, m, n);
	int rc = hf_json_write_in(dir, HF_CONFIG_FILE, &b, err);
	buf_free(&b);
	buf_free(&types);
	if (rc)
		return -1;
	struct hf_object g = { 0 };
	hf_object_text(&g, "_from_model_config", "true");
	hf_object_token(&g, "bos_token_id", c->bos_token_id);
	hf_object_tokens(&g, "eos_token_id", c->eos_token_id, c->eos_more, c->n_eos_more);
	hf_object_token(&g, "pad_token_id", c->pad_token_id);
	return hf_object_write_in(&g, dir, HF_GENERATION_CONFIG_FILE, err);
}
