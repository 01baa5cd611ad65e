/* model.h: the model interface. A family (BLOOM today; Llama, Qwen, Mistral
 * next) is a table of functions, like an autograd backend: its Hugging Face
 * config.json, its parameters (HF names, tensor-parallel shard specs), its
 * forward (training, and incremental over a KV cache), its parameter count
 * and FLOPs, and its linear layers with their PEFT module names. The
 * trainer, checkpoints, export, eval, generate, info, peft and parallel code
 * hold a `struct model` and a `struct model_config` and call the functions
 * below; none of them names a family. The families are listed in
 * nn/model_families.c (one line each); adding one is described in
 * docs/architecture.md. */
#ifndef HUG_NN_MODEL_H
#define HUG_NN_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../autograd/autograd.h"
#include "../base/error.h"
#include "linear.h"
#include "param.h"

struct model_family;
struct cJSON;

/* One batch of a training or evaluation forward: ids (B, T) i32; mask
 * (B, T) i32 1 keep / 0 padding, or NULL; segments (B, T) i32 document ids
 * of packed sequences (data.packing "document"), or NULL: a token attends
 * only to earlier tokens with its id, and positions (RoPE ids, ALiBi
 * distances) restart at 0 where the id changes, so each document gets the
 * logits it has run alone. */
struct model_batch {
	struct tensor *ids, *mask, *segments;
};
struct model_kv;   /* a family's KV cache (opaque; nn/kv_cache.h: struct kv_cache) */

/* A pipeline stage's share of the forward: blocks [layer_lo, layer_hi),
 * preceded by the embedding when `embed` (the first stage) and followed by
 * the final norm and the lm_head when `head` (the last stage). The whole
 * model is { 0, n_layer, true, true }. */
struct model_stage {
	int layer_lo, layer_hi;
	bool embed, head;
};

/* The model's place in a tensor-parallel group (Megatron): rank `rank` of
 * `size`. size 1: the plain model (coll NULL). With a pipeline `stage`
 * (layer_hi > 0) the model holds only that stage's parameters: its blocks,
 * the embedding on the first stage (and on the last when the head is tied
 * to it), the final norm and head on the last; it runs model_forward_stage
 * of that stage only. layer_hi 0: every parameter. */
struct model_tp {
	int rank, size;
	const struct ag_collective *coll;  /* the group; NULL when size 1 */
	struct model_stage stage;
};

/* The most end-of-sequence ids a config.json may list. */
#define MODEL_MAX_EOS 6

/* What generic code needs to know of any family's configuration. Filled
 * by the family whenever it makes or reads a config; read-only elsewhere. */
struct model_dims {
	int64_t vocab_size;          /* V */
	int64_t hidden_size;         /* C */
	int64_t intermediate_size;   /* the MLP's inner width (BLOOM: 4C) */
	int n_layer;
	int n_head;
	int n_kv_head;               /* key/value heads (n_head without GQA) */
	int64_t head_dim;            /* D */
	int64_t max_positions;       /* longest sequence the positions allow; 0: no limit (ALiBi) */
	bool tie_word_embeddings;    /* lm_head shares the embedding matrix */
	int bos_token_id, eos_token_id, pad_token_id; /* -1: none */
	int eos_more[MODEL_MAX_EOS - 1]; /* further end-of-sequence ids config.json */
	int n_eos_more;                  /* lists after the first (Llama 3.1 Instruct) */
};

/* Key/value heads one of tp tensor-parallel ranks holds: its share, or 1
 * when there are fewer key/value heads than ranks (each rank keeps the one
 * its query heads read, replicated). */
static inline int64_t model_kv_heads_per_rank(const struct model_dims *d, int tp)
{
	return d->n_kv_head >= tp ? d->n_kv_head / tp : 1;
}

/* Bytes a family may keep in a config (its own struct, e.g. bloom_config). */
#define MODEL_CONFIG_PRIV_BYTES 512

/* A configuration of some family: the common dims and the family's own
 * config struct, kept in `priv` (family code casts it). Plain data: copy
 * it by assignment. */
struct model_config {
	const struct model_family *family;  /* NULL: none yet */
	struct model_dims dims;
	union {
		long double align_;
		void *align_p_;
		unsigned char bytes[MODEL_CONFIG_PRIV_BYTES];
	} priv;
};

/* The sizes a recipe gives for a model trained from scratch; the rest of
 * the config takes the family's defaults (transformers' for that class). */
struct model_sizes {
	int64_t vocab_size, hidden_size;
	int n_layer, n_head;
};

/* How tensor parallelism splits a linear layer (Megatron): column-parallel
 * layers hold a slice of the output features (rows of W), row-parallel ones
 * a slice of the input features (columns of W, the sum reduced after). */
enum model_split {
	MODEL_SPLIT_NONE,
	MODEL_SPLIT_COLUMN,
	MODEL_SPLIT_ROW,
};

/* One adaptable linear layer of a block, as the family lists it. */
struct model_linear_kind {
	const char *module;          /* PEFT module name: "query_key_value" */
	const char *path;            /* under a block: "self_attention.query_key_value" */
	enum model_split split;
};

/* One linear layer of one block of a model (or of a config). */
struct model_linear {
	int layer, kind;             /* block, index into family->linears */
	const char *module;          /* PEFT module name */
	char path[PARAM_NAME_MAX];   /* the module's HF name, without ".weight" */
	int64_t in, out;             /* features of the whole layer */
	enum model_split split;
	struct tensor *weight;       /* this rank's (out, in) slice; NULL for a config */
	struct lora_adapter **adapter; /* the hook its forward applies; NULL for a config */
};

/* How the family names its weights in Hugging Face files. */
struct model_hf_names {
	const char *optional_prefix; /* registered names carry it, files may omit it ("transformer.") */
	const char *block_prefix;    /* block i's modules are named block_prefix + "<i>." ("transformer.h.") */
	const char *const *ignored;  /* file tensors that are not parameters (a tied lm_head); NULL-terminated */
};

/* What generic code may touch of a family's model. */
struct model_parts {
	struct param_table *table;   /* every parameter, HF names, shard specs */
	struct arena *params, *grads; /* one block each */
	enum dtype dtype;            /* of the parameters */
	struct model_tp tp;
	enum device device;
};

/* A family: designated initialisers in nn/<family>_family.c. `impl` is the
 * family's model struct (impl_size bytes); `cfg` a model_config of this
 * family. Contracts are those of the model_* functions below. */
struct model_family {
	const char *name;                   /* "bloom": recipe model.arch */
	const char *display;                /* "BLOOM", for messages */
	const char *const *model_types;     /* config.json model_type values; NULL-terminated */
	const char *const *architectures;   /* config.json architectures; NULL-terminated */
	const char *const *presets;         /* hug info --preset names; NULL-terminated */
	const char *const *lora_targets;    /* PEFT's default target_modules for the
					     * family (its LoRA target mapping);
					     * NULL-terminated */
	size_t impl_size;
	const struct model_linear_kind *linears; /* per block, in forward order */
	int n_linear;
	struct model_hf_names hf_names;

	/* configuration */
	void (*config_make)(struct model_config *cfg, const struct model_sizes *s);
	int (*config_set)(struct model_config *cfg, const char *key, double v);
	int (*config_preset)(const char *name, struct model_config *cfg);
	int (*config_validate)(const struct model_config *cfg, const char *what,
			       struct hug_error *err);
	int (*config_from_json)(struct model_config *cfg, const char *file,
				const struct cJSON *root, struct hug_error *err);
	int (*config_write)(const struct model_config *cfg, enum dtype weights_dtype,
			    const char *dir, struct hug_error *err);
	void (*config_print)(const struct model_config *cfg, FILE *out);
	int (*tp_validate)(const struct model_config *cfg, int size, struct hug_error *err);
	int64_t (*param_count)(const struct model_config *cfg);
	double (*flops_per_token)(const struct model_config *cfg, int64_t seq_len);
	void (*linear)(const struct model_config *cfg, void *impl, int layer, int kind,
		       struct model_linear *out);

	/* the model */
	void (*init)(void *impl, const struct model_config *cfg, enum dtype dt, bool trainable,
		     const struct model_tp *tp, const struct arena_allocator *allocator);
	void (*free)(void *impl);
	void (*init_weights)(void *impl, uint64_t seed);
	void (*parts)(const void *impl, struct model_parts *out);
	void (*config_of)(const void *impl, struct model_config *out);
	void (*take_settings)(void *impl, const struct model_config *cfg);
	void (*to_device)(void *dst, const void *src, const struct arena_allocator *allocator,
			  bool trainable);
	void (*copy_weights)(void *dst, const void *src);
	bool (*cast)(struct ag_ctx *ctx, const void *impl, enum dtype dt, void *out);
	struct tensor *(*forward)(struct ag_ctx *ctx, const void *impl,
				  const struct model_batch *b);
	struct tensor *(*loss)(struct ag_ctx *ctx, const void *impl, struct tensor *logits,
			       struct tensor *targets);
	struct tensor *(*forward_stage)(struct ag_ctx *ctx, const void *impl,
					const struct model_stage *stage, struct tensor *ids,
					struct tensor *mask, struct tensor *hidden);
	void (*vocab_slice)(const void *impl, int64_t *offset, int64_t *len);
	struct model_kv *(*kv_new)(const void *impl, int64_t batch, int64_t max_len);
	void (*kv_free)(struct model_kv *kv);
	struct tensor *(*forward_cached)(struct ag_ctx *ctx, const void *impl,
					 struct model_kv *kv, struct tensor *ids,
					 struct tensor *mask);
};

/* ------------------------------------------------------------ families */

/* The families hug knows, NULL-terminated (nn/model_families.c). The first
 * is the default: recipe model.arch absent, config.json without model_type
 * and architectures. */
extern const struct model_family *const model_families[];

/* The family called `name` (recipe model.arch), or NULL. */
const struct model_family *model_family_find(const char *name);

/* The names of every family, "bloom, llama", into buf (for messages). */
const char *model_family_names(char *buf, size_t n);

/* The family of a config.json object: by model_type, else by the first of
 * architectures, else the default. An unknown or disagreeing value is an
 * error naming `file`, the key, and the known values. */
int model_family_of_json(const char *file, const struct cJSON *root,
			 const struct model_family **out, struct hug_error *err);

/* -------------------------------------------------------------- configs */

/* A config of family f with the given sizes and f's defaults elsewhere (not
 * validated). */
void model_config_make(struct model_config *cfg, const struct model_family *f,
		       const struct model_sizes *s);

/* Sets one setting by its config.json key ("layer_norm_epsilon",
 * "initializer_range", "bos_token_id", ...; booleans as 0/1). 0, or -1
 * when the family has no such setting. */
int model_config_set(struct model_config *cfg, const char *key, double v);

/* The preset `name` of any family ("bloom-560m"); 0, or -1 if unknown. */
int model_config_preset(const char *name, struct model_config *cfg);

/* Checks the config (sizes, ratios, probabilities); messages start with
 * `what` (a file name). 0 or -1. */
int model_config_validate(const struct model_config *cfg, const char *what,
			  struct hug_error *err);

/* Reads a Hugging Face config.json (`path` is the file, or a directory
 * holding it): the family from model_type / architectures, then its
 * fields, every error naming the file and the key. Validated. 0 or -1. */
int model_config_read(const char *path, struct model_config *cfg, struct hug_error *err);

/* Writes config.json and generation_config.json into directory `dir` as
 * transformers writes them for the family, each atomically, with dtype
 * from `weights_dtype`. 0 or -1. */
int model_config_write(const struct model_config *cfg, enum dtype weights_dtype,
		       const char *dir, struct hug_error *err);

/* Prints the config's fields (hug info). */
void model_config_print(const struct model_config *cfg, FILE *out);

/* Checks that the config splits over `size` tensor-parallel ranks. */
int model_config_tp_validate(const struct model_config *cfg, int size, struct hug_error *err);

/* Number of parameters, computed without allocating. */
int64_t model_config_param_count(const struct model_config *cfg);

/* Training FLOPs per token at sequence length seq_len: 6 N for the weight
 * matrices plus attention (forward and backward). */
double model_config_flops_per_token(const struct model_config *cfg, int64_t seq_len);

/* Linear layers per block (family->n_linear) and the description of
 * (layer, kind): path, whole in/out features, split; weight and adapter
 * NULL (a config has no tensors). */
int model_config_n_linear(const struct model_config *cfg);
void model_config_linear(const struct model_config *cfg, int layer, int kind,
			 struct model_linear *out);

/* --------------------------------------------------------------- models */

/* A model: a family's model struct behind its table. Either owned (made by
 * model_init, freed with model_free) or a borrowed wrap of a family struct
 * the caller holds (model_wrap). */
struct model {
	const struct model_family *family;
	void *impl;
	bool owned;                  /* impl's memory is ours to free */
};

/* Allocates the parameters of `cfg` (validated, and tp-validated for
 * tp->size; tp NULL: one rank) in dtype dt (f32 or f64) in arenas of
 * `allocator` (NULL: host), contents unspecified, each registered under its
 * HF name; with `trainable` every parameter gets a zeroed gradient. */
void model_init(struct model *m, const struct model_config *cfg, enum dtype dt,
		bool trainable, const struct model_tp *tp,
		const struct arena_allocator *allocator);

/* A borrowed handle on family struct `impl` of family f (already
 * initialised, or to be initialised by model_init_in). model_free on it
 * frees the model's contents but not impl's memory. */
void model_wrap(struct model *m, const struct model_family *f, void *impl);

/* As model_init, into the memory of a model_wrap handle (cfg's family must
 * be m's). */
void model_init_in(struct model *m, const struct model_config *cfg, enum dtype dt,
		   bool trainable, const struct model_tp *tp,
		   const struct arena_allocator *allocator);

/* Frees the parameters (and impl, when owned); the handle becomes empty.
 * Idempotent on an empty (zeroed) handle. */
void model_free(struct model *m);

/* The family's initialisation of every parameter from a counter-based
 * stream of `seed` (independent of threads and of the TP layout). */
void model_init_weights(struct model *m, uint64_t seed);

/* Parameter table, arenas, dtype, TP place and device. */
struct model_parts model_parts(const struct model *m);
struct param_table *model_params(const struct model *m);

/* The model's config (a copy). */
void model_config_of(const struct model *m, struct model_config *out);
struct model_dims model_dims(const struct model *m);

/* Takes cfg's run-time settings (dropout probabilities; cfg of m's family)
 * into m: a recipe fine-tuning a pretrained model may change them. */
void model_take_settings(struct model *m, const struct model_config *cfg);

/* A twin of host model src in arenas of `allocator` (NULL: host): the same
 * config, TP place, names, order and shard specs, src's values; LoRA
 * adapters are not carried over. dst is owned; free with model_free. */
void model_to_device(struct model *dst, const struct model *src,
		     const struct arena_allocator *allocator, bool trainable);

/* Copies every parameter value of src into dst (same family and layout). */
void model_copy_weights(struct model *dst, const struct model *src);

/* A view of m for compute in dtype dt (the master weights keep their
 * dtype and receive the gradients). `view` is an empty handle the first
 * time and is reused after; its storage is freed by model_view_free. The
 * casts live in ctx's step arena: redo after every ag_ctx_reset. False
 * (ctx->err) when a cast failed. */
bool model_cast(struct ag_ctx *ctx, const struct model *m, enum dtype dt, struct model *view);
void model_view_free(struct model *view);

/* ids (B, T) i32, mask (B, T) i32 or NULL -> logits (B, T, V), or this
 * rank's vocabulary slice under tensor parallelism. NULL on error. */
struct tensor *model_forward(struct ag_ctx *ctx, const struct model *m, struct tensor *ids,
			     struct tensor *mask);
/* model_forward over a batch (struct model_batch: packed documents). */
struct tensor *model_forward_batch(struct ag_ctx *ctx, const struct model *m,
				   const struct model_batch *b);

/* One pipeline stage's forward (model_stage): ids (B, T) i32 and mask
 * (B, T) i32 or NULL as model_forward (every stage gets them: the
 * positions come from the mask); hidden (B, T, C) is the previous stage's
 * output, the input of a stage without `embed` (ignored with it). Returns
 * hidden (B, T, C) from a stage without `head`, else logits as
 * model_forward. The whole-model stage gives model_forward's logits. A
 * model built for one stage (model_tp.stage) runs that stage only (and
 * model_forward refuses it). NULL on error (ctx->err). */
struct tensor *model_forward_stage(struct ag_ctx *ctx, const struct model *m,
				   const struct model_stage *stage, struct tensor *ids,
				   struct tensor *mask, struct tensor *hidden);

/* Cross-entropy of logits from model_forward against aligned targets
 * (B, T) i32 (-100 ignored), over the whole vocabulary also under TP. */
struct tensor *model_loss(struct ag_ctx *ctx, const struct model *m, struct tensor *logits,
			  struct tensor *targets);

/* Hugging Face's causal-LM loss: logits (B, T, V) at t predict labels[t+1];
 * the mean over counted tokens (-100 ignored). -> 0-d. */
struct tensor *model_lm_loss(struct ag_ctx *ctx, struct tensor *logits, struct tensor *labels);

/* This rank's vocabulary rows [*offset, *offset + *len). */
void model_vocab_slice(const struct model *m, int64_t *offset, int64_t *len);

/* A KV cache for `batch` sequences of up to max_len positions on m's
 * device; free with model_kv_free. */
struct model_kv *model_kv_new(const struct model *m, int64_t batch, int64_t max_len);
void model_kv_free(const struct model *m, struct model_kv *kv);

/* Forward of the next ids (B, Tn) after everything in the cache, which
 * grows by Tn; grad mode off. NULL on error (ctx->err). */
struct tensor *model_forward_cached(struct ag_ctx *ctx, const struct model *m,
				    struct model_kv *kv, struct tensor *ids, struct tensor *mask);

/* Linear layer (layer, kind) of the model: shapes, this rank's weight and
 * its adapter hook. */
void model_linear(const struct model *m, int layer, int kind, struct model_linear *out);

#endif
