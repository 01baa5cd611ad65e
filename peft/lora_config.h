/* lora_config.h: the settings of a LoRA adapter as Hugging Face PEFT names
 * them (r, lora_alpha, lora_dropout, use_rslora, target_modules,
 * layers_to_transform, base_model_name_or_path), their validation, which
 * linear layers of a model they select (those its family lists, nn/model.h),
 * and the file that holds them in the PEFT layout (adapter_config.json).
 *
 * Selection (PEFT's rules, plus fnmatch patterns): a module's path is its
 * HF name without ".weight" (model_linear.path, for BLOOM
 * "transformer.h.<i>.self_attention.query_key_value"). A list
 * entry selects the module when it matches the whole path or a part of it
 * that starts after a dot ("query_key_value", "self_attention.dense",
 * "h.0.mlp.dense_h_to_4h"); entries may be fnmatch(3) patterns ("dense*")
 * and "all-linear" selects every linear layer of the blocks. target_modules
 * given as one string (PEFT's form) is a Python regular expression that
 * must match the whole path (re.fullmatch; Oniguruma's Python syntax). layers_to_transform, when
 * set, keeps only the layers it lists. */
#ifndef HUG_PEFT_LORA_CONFIG_H
#define HUG_PEFT_LORA_CONFIG_H

#include <stdbool.h>

#include "../base/error.h"
#include "../nn/model.h"

/* The file names of a PEFT adapter directory. */
#define LORA_CONFIG_FILE "adapter_config.json"
#define LORA_WEIGHTS_FILE "adapter_model.safetensors"

/* No target_modules (an empty list) means the base model family's
 * default, PEFT's mapping (model_family.lora_targets: query_key_value for
 * BLOOM; q_proj and v_proj for Llama, Qwen2, Qwen3 and Mistral), resolved
 * by lora_config_resolve_targets when the base model is known. */

struct lora_config {
	int r;                /* rank, > 0 */
	double alpha;         /* lora_alpha: scale alpha / r */
	double dropout;       /* lora_dropout on the adapter input, [0, 1) */
	bool rslora;          /* use_rslora: scale alpha / sqrt(r) instead */
	char **targets;       /* target_modules as a list: names or patterns */
	int n_targets;
	char *target_regex;   /* target_modules as one string, or NULL */
	int *layers;          /* layers_to_transform; NULL: every layer */
	int n_layers;
	char *base_model;     /* base_model_name_or_path, or NULL */
};

/* PEFT's LoraConfig defaults: r 8, alpha 8, dropout 0, no rslora, no
 * targets (the family's default), every layer, no base model. Free with
 * lora_config_free. */
void lora_config_init(struct lora_config *c);
void lora_config_free(struct lora_config *c);

/* Deep copy of src into dst (dst is overwritten, not freed first). */
void lora_config_copy(struct lora_config *dst, const struct lora_config *src);

/* Replaces the targets by copies of targets[0..n) (n 0: none, the
 * family's default), and drops any regex. */
void lora_config_set_targets(struct lora_config *c, const char *const *targets, int n);

/* When c has no targets (neither list nor regex), sets family f's default
 * (f->lora_targets); else leaves c as it is. */
void lora_config_resolve_targets(struct lora_config *c, const struct model_family *f);

/* Replaces the targets by one regular expression (PEFT's string form of
 * target_modules). */
void lora_config_set_regex(struct lora_config *c, const char *pattern);

/* Replaces base_model by a copy of `base` (NULL: none). */
void lora_config_set_base(struct lora_config *c, const char *base);

/* alpha / r, or alpha / sqrt(r) with rslora. */
double lora_config_scale(const struct lora_config *c);

/* Checks r > 0, alpha finite, dropout in [0, 1), non-empty target names
 * (no targets at all: the family's default), a regex that compiles and
 * layers >= 0. Messages start with `what`
 * ("run.json: peft." or "dir/adapter_config.json: ") followed by the key:
 * "run.json: peft.r: expected an integer > 0, got 0". 0 or -1. */
int lora_config_validate(const struct lora_config *c, const char *what,
			 struct hug_error *err);

/* Whether c selects linear layer `lin` (c validated; lin from
 * model_linear or model_config_linear). When it does and `hits` is not
 * NULL, hits[i] is incremented for every list target i that matches (the
 * regex counts as target 0). */
bool lora_config_selects(const struct lora_config *c, const struct model_linear *lin,
			 int *hits);

/* Checks that every target of c selects at least one linear layer of a
 * model of config mc and that the layers exist, with messages as
 * lora_config_validate's: "...target_modules[1]: \"qkv\" matches no linear
 * layer of BLOOM (its linear layers: query_key_value, dense,
 * dense_h_to_4h, dense_4h_to_h)". 0 or -1. */
int lora_config_check_targets(const struct lora_config *c, const struct model_config *mc,
			      const char *what, struct hug_error *err);

/* The checks lora_model_init makes before attaching adapters to a model of
 * config mc: no targets resolved to the family's default, then
 * lora_config_validate and lora_config_check_targets (messages start with
 * `what`). On success the resolved copy is left in *resolved when it is
 * not NULL (free it with lora_config_free). 0 or -1. */
int lora_config_check(const struct lora_config *c, const struct model_config *mc,
		      struct lora_config *resolved, const char *what, struct hug_error *err);

/* Reads a PEFT adapter_config.json (`path` is the file). Requires
 * peft_type "LORA"; task_type null or "CAUSAL_LM"; r an integer > 0;
 * lora_alpha and lora_dropout numbers; target_modules a string, a list of
 * strings or null (the default); layers_to_transform null, an integer or a
 * list of them. Settings hug does not implement are refused rather than
 * ignored: bias other than "none", fan_in_fan_out, use_dora, lora_bias,
 * non-empty modules_to_save, rank_pattern, alpha_pattern, exclude_modules,
 * target_parameters, layer_replication, trainable_token_indices, and a
 * layers_pattern other than "h". Keys hug does not know are ignored, as
 * PEFT does. Errors name the file and the key. The result is validated.
 * 0, or -1 with c left freed. */
int lora_config_read(const char *path, struct lora_config *c, struct hug_error *err);

/* Writes `path` atomically as PEFT writes adapter_config.json (peft_type
 * "LORA", task_type "CAUSAL_LM", inference_mode true, bias "none", ...),
 * with target_modules = targets[0..n_targets) (the names that select
 * exactly the adapted layers; see lora_model_target_names) and
 * layers_to_transform null. 0 or -1. */
int lora_config_write(const struct lora_config *c, char *const *targets,
		      int n_targets, const char *path, struct hug_error *err);

#endif
