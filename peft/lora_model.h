/* lora_model.h: LoRA adapters attached to a model of any family. Every
 * linear layer the family lists (model_linear) that the config selects
 * gets an adapter (A (r, in), B (out, r), shapes from the model's weight)
 * in arenas of its own, registered under PEFT's saved names
 * ("base_model.model." + the module path + ".lora_A.weight"), and the
 * layer's hook (model_linear.adapter) points at it, so the model's forward
 * applies it. The base model is left as it is: load it frozen
 * (trainable = false) and build the optimizer over lora_model.table to
 * train the adapters alone. */
#ifndef HUG_PEFT_LORA_MODEL_H
#define HUG_PEFT_LORA_MODEL_H

#include <stdint.h>
#include <stdio.h>

#include "../nn/model.h"
#include "lora.h"
#include "lora_config.h"

/* One adapted linear layer. */
struct lora_site {
	int layer, kind;          /* block, index into the family's linears */
	struct model_linear lin;  /* the adapted layer: path, weight, hook */
	struct lora_adapter ad;   /* what the layer's hook points at */
};

struct lora_model {
	struct lora_config cfg;        /* a copy */
	struct model base;             /* a borrowed handle: the model must outlive this */
	int n;                         /* adapted linear layers */
	struct lora_site *sites;       /* n, by layer, then in enum order */
	struct arena params;           /* every A and B, one block */
	struct arena grads;            /* their gradients (trainable), one block */
	struct param_table table;      /* PEFT names -> A, B (A first per site) */
};

/* Attaches adapters for cfg (validated here, with its targets checked
 * against the base: messages start with `what`, as in
 * lora_config_validate) to every selected linear layer of base, whose
 * hooks must all be empty. A and B are allocated in base's dtype on base's
 * device (host or GPU), contents
 * unspecified (lora_model_init_weights, or a load, fills them); with
 * `trainable` each gets a zeroed gradient. 0, or -1 with err and nothing
 * attached (lm left zeroed). Free with lora_model_free. */
int lora_model_init(struct lora_model *lm, const struct model *base,
		    const struct lora_config *cfg, bool trainable, const char *what,
		    struct hug_error *err);

/* Detaches the adapters from the base (its weights stay as they are: a
 * merged adapter remains merged) and frees them. Idempotent on a zeroed
 * lm. */
void lora_model_free(struct lora_model *lm);

/* PEFT's initialisation: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming-uniform
 * with a = sqrt(5), as nn.Linear), B = 0, so the adapted model starts as
 * the base. A's values are a pure function of (seed, site, element)
 * through autograd/rng.h. */
void lora_model_init_weights(struct lora_model *lm, uint64_t seed);

/* The base weight (out, in) of linear `kind` in block `layer`. */
struct tensor *lora_base_weight(const struct model *m, int layer, int kind);

/* PEFT's saved name of A (which 'A') or B ('B') of the linear layer at
 * module path `path` (model_linear.path), into buf. */
void lora_param_name(char *buf, size_t n, const char *path, char which);

/* Elements of every A and B. */
int64_t lora_model_numel(const struct lora_model *lm);

/* W += scale B A for every adapter not merged yet (then marked merged, so
 * lora_apply skips it); lora_unmerge subtracts it again. The product is
 * formed in double and added in W's precision, so merge then unmerge
 * gives W back to within rounding. */
void lora_merge(struct lora_model *lm);
void lora_unmerge(struct lora_model *lm);

/* The target_modules list that selects exactly the adapted layers, for
 * adapter_config.json: module names ("query_key_value") when every layer
 * has the same kinds adapted, otherwise the full module paths. *names is
 * hug_malloc'd, each entry too; free with lora_names_free. */
int lora_model_target_names(const struct lora_model *lm, char ***names);
void lora_names_free(char **names, int n);

/* Prints PEFT's print_trainable_parameters() line for the adapted model:
 * "trainable params: 98,304 || all params: 2,664,192 || trainable%: 3.6898"
 * (trainable: the adapters; all: base parameters plus adapters). */
void lora_print_trainable(const struct lora_model *lm, FILE *out);

/* Bytes held for training: parameters, gradients, optimizer state. */
struct lora_memory {
	int64_t params, grads, optim;
};

/* Adapter elements a config selects on a model of config mc, computed
 * without allocating (cfg validated and checked against mc). */
int64_t lora_count_params(const struct lora_config *cfg, const struct model_config *mc);

/* Memory of fine-tuning a model of config mc with elem-byte parameters and
 * an optimizer keeping n_moments tensors per trainable parameter (AdamW 2,
 * SGD with momentum 1): with LoRA config cfg (frozen base, no gradient or
 * state for it) into *lora, and of full fine-tuning into *full. */
void lora_memory_estimate(const struct lora_config *cfg, const struct model_config *mc,
			  int64_t elem, int n_moments, struct lora_memory *lora,
			  struct lora_memory *full);

#endif
