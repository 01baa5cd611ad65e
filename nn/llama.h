/* llama.h: the Llama-style decoder shared by four model families, as
 * transformers computes LlamaForCausalLM, Qwen2ForCausalLM,
 * Qwen3ForCausalLM and MistralForCausalLM: embed_tokens -> n_layer x block
 * -> norm -> lm_head (tied to embed_tokens or its own). Block (pre-norm):
 * RMSNorm, attention (q/k/v/o projections, grouped-query heads, rotary
 * embeddings on q and k at positions that follow padding, Qwen3's RMSNorm
 * of each head's q and k before the rotation, Mistral's sliding window),
 * then RMSNorm and the gated MLP down(silu(gate(x)) * up(x)); residuals
 * from the block input. The families differ only in their config: which
 * biases exist, QK-norm, the window, config.json's keys and defaults. */
#ifndef HUG_NN_LLAMA_H
#define HUG_NN_LLAMA_H

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
#include "rope.h"

/* Which transformers class a config is (config.json's keys and defaults). */
enum llama_variant {
	LLAMA_V_LLAMA,     /* LlamaForCausalLM (also SmolLM2, TinyLlama) */
	LLAMA_V_QWEN2,     /* Qwen2ForCausalLM (Qwen2, Qwen2.5): q/k/v biases */
	LLAMA_V_QWEN3,     /* Qwen3ForCausalLM: q_norm / k_norm */
	LLAMA_V_MISTRAL,   /* MistralForCausalLM: sliding_window */
	LLAMA_V_COUNT
};

struct llama_config {
	enum llama_variant variant;
	int64_t vocab_size;          /* V */
	int64_t hidden_size;         /* C */
	int64_t intermediate_size;   /* the MLP's inner width */
	int n_layer;                 /* num_hidden_layers */
	int n_head;                  /* num_attention_heads */
	int n_kv_head;               /* num_key_value_heads */
	int64_t head_dim;            /* D (hidden_size / n_head unless given) */
	int64_t max_position_embeddings;
	double rms_norm_eps;
	double initializer_range;
	double attention_dropout;    /* on the attention probabilities */
	bool tie_word_embeddings;
	bool attention_bias;         /* q/k/v/o biases (Llama, Qwen3); Qwen2: q/k/v always */
	bool mlp_bias;               /* gate/up/down biases (Llama) */
	struct rope_params rope;
	int64_t sliding_window;      /* Mistral: keys within the last W positions; 0: none */
	int max_window_layers;       /* Qwen2/Qwen3 config.json key, kept for writing */
	int bos_token_id, eos_token_id, pad_token_id; /* -1: none */
	int eos_more[MODEL_MAX_EOS - 1]; /* config.json's eos_token_id list after the first */
	int n_eos_more;
};

/* The four families (nn/llama_family.c). */
extern const struct model_family llama_family, qwen2_family, qwen3_family, mistral_family;

/* The family of a variant, and the config inside a model_config of one
 * of the four families. */
const struct model_family *llama_variant_family(enum llama_variant v);
const struct llama_config *llama_config_of(const struct model_config *cfg);
/* A model_config holding `lc` (dims filled). */
void llama_model_config(struct model_config *out, const struct llama_config *lc);

/* Whether the variant's q/k/v (and o) projections have biases. */
bool llama_qkv_bias(const struct llama_config *c);
bool llama_o_bias(const struct llama_config *c);
bool llama_qk_norm(const struct llama_config *c);

/* transformers' defaults of the variant's config class with the given
 * sizes; head_dim hidden/n_head, n_kv_head n_head, intermediate_size
 * 4 x hidden_size (the classes' defaults are for hidden 4096). */
struct llama_config llama_config_make(enum llama_variant v, int64_t vocab, int64_t hidden,
				      int n_layer, int n_head);

/* The most parameters llama_config_validate accepts (2^45). */
#define LLAMA_MAX_PARAMS 35184372088832.0

/* Sizes positive, n_head a multiple of n_kv_head, head_dim even, the
 * parameter count at most LLAMA_MAX_PARAMS, eps > 0, the rope settings,
 * dropout in [0, 1). `what` prefixes messages. 0 or -1. */
int llama_config_validate(const struct llama_config *c, const char *what,
			  struct hug_error *err);
int64_t llama_param_count(const struct llama_config *c);
/* 6 N (without the embedding lookup) + attention's QK^T and PV: 12 L T H D. */
double llama_flops_per_token(const struct llama_config *c, int64_t seq_len);
void llama_config_print(const struct llama_config *c, FILE *out);
/* The published configs: "llama-3.2-1b", "llama-3.1-8b", "smollm2-135m"
 * (llama), "qwen2.5-0.5b", "qwen2.5-7b" (qwen2), "qwen3-0.6b", "qwen3-8b"
 * (qwen3), "mistral-7b" (Mistral-7B-v0.1). 0, or -1 when `name` is not a
 * preset of variant v. */
int llama_config_preset(enum llama_variant v, const char *name, struct llama_config *out);
/* Settings by config.json key (model_config_set). 0 or -1. */
int llama_config_set(struct llama_config *c, const char *key, double v);
/* config.json of variant v (model_type already matched): every key
 * transformers' class reads that hug computes with, in either rope
 * spelling; hidden_act must be "silu"; what hug does not implement
 * (Qwen's use_sliding_window, other rope types) is refused naming the file
 * and key. Validated. 0 or -1. */
int llama_config_from_json(enum llama_variant v, const char *file, const cJSON *root,
			   struct llama_config *out, struct hug_error *err);
/* config.json and generation_config.json as transformers 5 writes them for
 * the class (rope_parameters; dtype and torch_dtype). 0 or -1. */
int llama_config_write(const struct llama_config *c, enum dtype weights_dtype,
		       const char *dir, struct hug_error *err);
/* Tensor parallelism over `size` ranks needs n_head and intermediate_size
 * divisible by it, and n_kv_head either divisible by it (key/value heads
 * split over the ranks) or dividing it (fewer key/value heads than ranks:
 * each rank keeps the one its query heads read, replicated over
 * size / n_kv_head ranks, as Megatron does). 0 or -1. */
int llama_tp_validate(const struct llama_config *c, int size, struct hug_error *err);
/* Whether tensor parallelism over `size` ranks replicates the key/value
 * heads (n_kv_head < size): k_proj and v_proj (and their biases, and
 * Qwen3's k_norm) are then whole on every rank, and each rank uses the
 * rows of key/value head rank / (size / n_kv_head). */
bool llama_kv_replicated(const struct llama_config *c, int size);

/* The adaptable linear layers of a block, in forward order. */
enum llama_linear {
	LLAMA_Q, LLAMA_K, LLAMA_V, LLAMA_O, LLAMA_GATE, LLAMA_UP, LLAMA_DOWN,
	LLAMA_N_LINEAR
};

struct llama_layer {
	struct tensor *ln1_w;             /* input_layernorm (C) */
	struct tensor *w[LLAMA_N_LINEAR]; /* q (H D, C), k v (Hkv D, C), o (C, H D),
					   * gate up (I, C), down (C, I); this rank's slices */
	struct tensor *b[LLAMA_N_LINEAR]; /* biases or NULL */
	struct tensor *q_norm, *k_norm;   /* (D), Qwen3; else NULL */
	struct tensor *ln2_w;             /* post_attention_layernorm (C) */
	struct lora_adapter *lora[LLAMA_N_LINEAR];
};

/* A model. Under tensor parallelism rank r of size holds query heads
 * [r H/size, (r+1) H/size), the same share of key/value heads (or, with
 * fewer key/value heads than ranks, whole k_proj/v_proj weights of which it
 * uses head r / (size / Hkv)) and of the MLP's inner features, o_proj's and down_proj's matching input columns,
 * and a slice of the vocabulary rows of embed_tokens and lm_head. */
struct llama_model {
	struct llama_config cfg;
	struct model_tp tp;
	enum dtype dtype;
	struct arena params, grads;
	struct param_table table;
	struct tensor *embed;             /* model.embed_tokens (V, C) */
	struct tensor *lm_head;           /* (V, C); == embed when tied */
	struct llama_layer *layers;
	struct tensor *norm_w;            /* model.norm (C) */
	struct tensor *inv_freq;          /* (D/2) f64, not a parameter */
	bool cast_view;                   /* a llama_model_cast view */
};

/* Key/value heads this rank holds: n_kv_head / tp, or 1 when they are
 * replicated. */
int64_t llama_kv_heads_local(const struct llama_model *m);

void llama_model_init_on(struct llama_model *m, const struct llama_config *cfg, enum dtype dt,
			 bool trainable, const struct model_tp *tp,
			 const struct arena_allocator *allocator);
void llama_model_free(struct llama_model *m);
/* transformers' init: weights ~ N(0, initializer_range^2) (the pad row of
 * embed_tokens 0), biases 0, RMSNorm weights 1; counter-based streams of
 * `seed`, independent of threads and of the TP layout. */
void llama_model_init_weights(struct llama_model *m, uint64_t seed);
void llama_model_copy_weights(struct llama_model *dst, const struct llama_model *src);
bool llama_model_cast(struct ag_ctx *ctx, const struct llama_model *m, enum dtype dt,
		      struct llama_model *out);
void llama_vocab_slice(const struct llama_model *m, int64_t *offset, int64_t *len);

/* Keys (after the rotation) and values of past positions: only the
 * key/value heads. */
void llama_kv_cache_init(struct kv_cache *kv, const struct llama_model *m,
			 int64_t batch, int64_t max_len);

/* ids (B, T) i32, mask (B, T) i32 or NULL -> logits (B, T, V) (this rank's
 * vocabulary slice under TP). Positions are cumsum(mask) - 1 clamped at 0
 * (0..T-1 without a mask), as transformers' generate computes them; with
 * kv, the forward of the new ids after the cached ones (grad mode off).
 * segs (B, T) i32 document ids or NULL (no kv): packed documents, each
 * attending only within itself with positions restarting at 0, so each
 * gets the logits of the document run alone. NULL on error (ctx->err). */
struct tensor *llama_forward(struct ag_ctx *ctx, const struct llama_model *m,
			     struct tensor *ids, struct tensor *mask, struct tensor *segs,
			     struct kv_cache *kv);
/* One pipeline stage of llama_forward (model_forward_stage's contract). */
struct tensor *llama_forward_stage(struct ag_ctx *ctx, const struct llama_model *m,
				   const struct model_stage *stage, struct tensor *ids,
				   struct tensor *mask, struct tensor *hidden);
struct tensor *llama_loss(struct ag_ctx *ctx, const struct llama_model *m,
			  struct tensor *logits, struct tensor *targets);

#endif
