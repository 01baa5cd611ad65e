/* bloom.h: BLOOM (BloomForCausalLM) as Hugging Face computes it:
 * word_embeddings -> word_embeddings_layernorm -> n_layer x block -> ln_f ->
 * lm_head tied to word_embeddings. Block (pre-LN): attention with fused
 * query_key_value (rows [n_head][q,k,v][head_dim]) and ALiBi, then the MLP
 * (dense_h_to_4h, tanh GeLU, dense_4h_to_h); each residual is taken from the
 * block input, or from the LayerNorm output when
 * apply_residual_connection_post_layernorm is set. */
#ifndef HUG_NN_BLOOM_H
#define HUG_NN_BLOOM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "../autograd/autograd.h"
#include "../base/error.h"
#include "kv_cache.h"
#include "linear.h"
#include "model.h"
#include "param.h"

struct bloom_config {
	int64_t vocab_size;          /* V (250880 for the released models) */
	int64_t hidden_size;         /* C, "hidden_size" or "n_embed" */
	int n_layer;                 /* "n_layer" or "num_hidden_layers" */
	int n_head;                  /* "n_head" or "num_attention_heads" */
	double layer_norm_epsilon;   /* 1e-5 */
	bool apply_residual_connection_post_layernorm;
	double hidden_dropout;       /* after attention dense and MLP */
	double attention_dropout;    /* on the attention probabilities */
	double initializer_range;    /* std of the normal init, 0.02 */
	int bos_token_id, eos_token_id, pad_token_id; /* 1, 2, 3 */
};

/* BLOOM as a model family (nn/bloom_family.c): the table behind
 * struct model for model_type "bloom". */
extern const struct model_family bloom_family;

/* A model_config of the BLOOM family holding `bc` (dims filled). */
void bloom_model_config(struct model_config *out, const struct bloom_config *bc);
/* The BLOOM config inside a model_config of the BLOOM family. */
const struct bloom_config *bloom_config_of(const struct model_config *cfg);

/* The defaults of transformers' BloomConfig for the fields it defaults,
 * with the given sizes. */
struct bloom_config bloom_config_make(int64_t vocab, int64_t hidden, int n_layer,
				      int n_head);

/* The most parameters bloom_config_validate accepts (2^45, about 3.5e13). */
#define BLOOM_MAX_PARAMS 35184372088832.0

/* Checks sizes are positive, hidden_size divisible by n_head, the parameter
 * count at most BLOOM_MAX_PARAMS, dropouts in [0, 1), eps > 0. `what` prefixes messages (a file name). 0 or -1. */
int bloom_config_validate(const struct bloom_config *cfg, const char *what,
			  struct hug_error *err);

/* Number of parameters, V*C + 4C + L*(12C^2 + 13C), computed without
 * allocating anything (bloom-560m: 559,214,592). */
int64_t bloom_param_count(const struct bloom_config *cfg);

/* The configs of the released BigScience models, by short name
 * ("bloom-560m", "bloom-1b1", "bloom-1b7", "bloom-3b", "bloom-7b1",
 * "bloom"); 0, or -1 for an unknown name. */
int bloom_config_preset(const char *name, struct bloom_config *cfg);

/* Training FLOPs per token: 6 N plus attention's QK^T and PV (12 L T C). */
double bloom_flops_per_token(const struct bloom_config *cfg, int64_t seq_len);

/* Prints the fields, one "  key value" line each (hug info). */
void bloom_config_print(const struct bloom_config *cfg, FILE *out);

/* Reads the fields of a BLOOM config.json object (model_type already
 * checked by the caller): hidden_size or n_embed, n_layer or
 * num_hidden_layers, n_head or num_attention_heads; these and vocab_size
 * are required, the other fields default as bloom_config_make sets them; a
 * token id of null is stored as -1 (none). tie_word_embeddings, when
 * present, must be true. Keys hug does not use are ignored. Every error
 * names the file and the key. The result is validated. 0 or -1. */
int bloom_config_from_json(const char *file, const cJSON *root, struct bloom_config *cfg,
			   struct hug_error *err);

/* Writes config.json (model_type bloom, architectures
 * ["BloomForCausalLM"], dtype and torch_dtype from `weights_dtype`, keys
 * sorted, 2-space indent as transformers writes it; a negative token id is
 * written as null) and generation_config.json into directory `dir` (which
 * must exist), each atomically (temporary file, fsync, rename). */
int bloom_config_write(const struct bloom_config *cfg, enum dtype weights_dtype,
		       const char *dir, struct hug_error *err);

/* The adaptable linear layers of a block, for LoRA. */
enum bloom_linear {
	BLOOM_QKV,      /* self_attention.query_key_value */
	BLOOM_PROJ,     /* self_attention.dense */
	BLOOM_FC1,      /* mlp.dense_h_to_4h */
	BLOOM_FC2,      /* mlp.dense_4h_to_h */
	BLOOM_N_LINEAR
};

/* Their PEFT module names and paths are in bloom_family.linears. */

struct bloom_layer {
	struct tensor *ln1_w, *ln1_b;       /* input_layernorm (C) */
	struct tensor *qkv_w, *qkv_b;       /* self_attention.query_key_value (3C, C), (3C) */
	struct tensor *proj_w, *proj_b;     /* self_attention.dense (C, C), (C) */
	struct tensor *ln2_w, *ln2_b;       /* post_attention_layernorm (C) */
	struct tensor *fc1_w, *fc1_b;       /* mlp.dense_h_to_4h (4C, C), (4C) */
	struct tensor *fc2_w, *fc2_b;       /* mlp.dense_4h_to_h (C, 4C), (C) */
	struct lora_adapter *lora[BLOOM_N_LINEAR]; /* NULL: none (peft/ sets them) */
};

/* A BLOOM model. Under tensor parallelism (Megatron, tp): rank `rank` of
 * `size` holds heads [rank H/size, (rank + 1) H/size) of query_key_value,
 * the same slice of dense's input columns, a slice of dense_h_to_4h's rows
 * and dense_4h_to_h's columns, and a slice of the vocabulary rows of the
 * embedding (and so of the tied lm_head; bloom_vocab_slice). LayerNorms and the biases
 * of row-parallel layers are replicated. size 1: the plain model. */
struct bloom_model {
	struct bloom_config cfg;
	struct model_tp tp;
	enum dtype dtype;                   /* of the parameters */
	struct arena params;                /* every parameter, one block */
	struct arena grads;                 /* their gradients, one block */
	struct param_table table;           /* HF name -> tensor */
	struct tensor *wte;                 /* word_embeddings (V, C), also lm_head */
	struct tensor *emb_ln_w, *emb_ln_b; /* word_embeddings_layernorm (C) */
	struct bloom_layer *layers;         /* n_layer */
	struct tensor *lnf_w, *lnf_b;       /* ln_f (C) */
	struct tensor *slopes;              /* ALiBi of this rank's heads, not a parameter */
	bool cast_view;                     /* a bloom_model_cast view: layers and ln_f
					     * hold the masters, cast to dtype on the
					     * tape where they are used */
};

/* Allocates the parameters of `cfg` (validated by the caller) in dtype dt
 * (f32 or f64) on the host, contents unspecified, each registered under its
 * HF name ("transformer." prefix; the tied lm_head is not a separate
 * parameter). With `trainable`, every parameter gets a zeroed gradient in
 * m->grads. Free with bloom_model_free. */
void bloom_model_init(struct bloom_model *m, const struct bloom_config *cfg,
		      enum dtype dt, bool trainable);

/* As bloom_model_init, for rank tp->rank of a tensor-parallel group:
 * parameters are this rank's shards (each registered with its shard spec
 * and its HF name), slopes this rank's heads. The config must satisfy
 * bloom_tp_validate. */
void bloom_model_init_tp(struct bloom_model *m, const struct bloom_config *cfg,
			 enum dtype dt, bool trainable, const struct model_tp *tp);

/* As bloom_model_init_tp, with the parameters and gradients in arenas of
 * `allocator` (NULL: host memory; hug_cuda_allocator(): the GPU). The
 * ALiBi slopes are filled in; the weights are left unspecified, to be
 * copied in (bloom_model_to_device) or loaded. */
void bloom_model_init_on(struct bloom_model *m, const struct bloom_config *cfg,
			 enum dtype dt, bool trainable, const struct model_tp *tp,
			 const struct arena_allocator *allocator);

/* Checks that the config splits over `size` ranks: n_head and 4 x
 * hidden_size divisible by it (the vocabulary may split unevenly). 0 or -1
 * with err. */
/* ALiBi slopes for n_head heads as BLOOM defines them (any head count,
 * powers of two or not): writes n_head values into `out`, computed in f32
 * as Hugging Face does (so 2^-0.5 is 0.70710677, not the exact double).
 * The model passes them to ag_attention (AG_POS_BIAS_ALIBI). */
void bloom_alibi_slopes(int n_head, double *out);
int bloom_tp_validate(const struct bloom_config *cfg, int size, struct hug_error *err);
void bloom_model_free(struct bloom_model *m);

/* Hugging Face's initialisation: linear and embedding weights ~ N(0,
 * initializer_range^2) from a counter-based stream of `seed` (so the result
 * does not depend on thread count, and a tensor-parallel shard holds
 * exactly its slice of the unsharded model's values), biases 0, LayerNorm
 * weight 1 bias 0. */
void bloom_model_init_weights(struct bloom_model *m, uint64_t seed);

/* Forward pass: ids (B, T) i32, mask (B, T) i32 (1 token / 0 padding) or
 * NULL -> logits (B, T, V), or (B, T, V / tp.size) of this rank's
 * vocabulary slice under tensor parallelism. Dropout follows ctx->training. NULL on error
 * (ctx->err: e.g. an id outside the vocabulary). */
struct tensor *bloom_forward(struct ag_ctx *ctx, const struct bloom_model *m,
			     struct tensor *ids, struct tensor *mask);
/* As bloom_forward over packed documents: segs (B, T) i32 document ids
 * (NULL: one document per row); a token attends only to earlier tokens of
 * its own document and ALiBi positions restart at each document, so each
 * document's logits are those of the document run alone. */
struct tensor *bloom_forward_packed(struct ag_ctx *ctx, const struct bloom_model *m,
				    struct tensor *ids, struct tensor *mask,
				    struct tensor *segs);

/* One pipeline stage of bloom_forward (model_forward_stage's contract). */
struct tensor *bloom_forward_stage(struct ag_ctx *ctx, const struct bloom_model *m,
				   const struct model_stage *stage, struct tensor *ids,
				   struct tensor *mask, struct tensor *hidden);

/* Keys and values of past positions (nn/kv_cache.h), for generation: one
 * forward per new token instead of one over the whole sequence. Allocates
 * an empty cache for `batch` sequences of up to max_len positions of model
 * m, on m's device; kv_cache_free frees it. */
void bloom_kv_cache_init(struct kv_cache *kv, const struct bloom_model *m,
			 int64_t batch, int64_t max_len);

/* Forward of the next ids (B, Tn) given everything already in the cache,
 * which grows by Tn: logits (B, Tn, V) equal to those of bloom_forward over
 * the whole sequence at the new positions. mask (B, Tn) marks padding of
 * the new positions (NULL: none). Needs grad mode off; fails (NULL, ctx->err)
 * when the cache would overflow. */
struct tensor *bloom_forward_cached(struct ag_ctx *ctx, const struct bloom_model *m,
				    struct kv_cache *kv, struct tensor *ids,
				    struct tensor *mask);

/* This rank's vocabulary rows [*offset, *offset + *len) (all of them
 * without tensor parallelism; the first V % size ranks hold one more). */
void bloom_vocab_slice(const struct bloom_model *m, int64_t *offset, int64_t *len);

/* The loss of logits from bloom_forward against targets (B, T) i32 (-100
 * ignored), aligned with the logits (no shift): cross-entropy over the
 * whole vocabulary, also when the logits hold this rank's vocabulary slice
 * under tensor parallelism. -> 0-d. */
struct tensor *bloom_loss(struct ag_ctx *ctx, const struct bloom_model *m,
			  struct tensor *logits, struct tensor *targets);

/* model_lm_loss (Hugging Face's causal-LM loss), for BLOOM's callers. */
struct tensor *bloom_lm_loss(struct ag_ctx *ctx, struct tensor *logits,
			     struct tensor *labels);

#endif
