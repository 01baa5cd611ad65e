/* hf_checkpoint.h: Hugging Face model directories for BLOOM: config.json,
 * generation_config.json and the weights (model.safetensors, or shards
 * model-0000k-of-0000N.safetensors with model.safetensors.index.json), read
 * and written so that BloomForCausalLM.from_pretrained loads them as they
 * are. Weight names may carry the "transformer." prefix or not. */
#ifndef HUG_IO_HF_CHECKPOINT_H
#define HUG_IO_HF_CHECKPOINT_H

#include <stddef.h>

#include "../base/error.h"
#include "../nn/bloom.h"

/* Reads a BLOOM config.json (`path` is the file, or a directory holding
 * it). Accepts hidden_size or n_embed, n_layer or num_hidden_layers, n_head
 * or num_attention_heads; other fields default as in transformers. Every
 * error names the file and the key: "cfg/config.json: n_head: expected a
 * positive integer, got \"eight\"". The result is validated. 0 or -1. */
int hf_bloom_config_read(const char *path, struct bloom_config *cfg,
			 struct hug_error *err);

/* Writes config.json (model_type bloom, architectures
 * ["BloomForCausalLM"], torch_dtype from `weights_dtype`) and
 * generation_config.json into directory `dir` (which must exist). */
int hf_bloom_config_write(const struct bloom_config *cfg, enum dtype weights_dtype,
			  const char *dir, struct hug_error *err);

/* Fills every parameter of `pt` from the weights in `dir`, converting dtypes
 * (f32, f64, bf16, f16 on disk). Missing tensors, shape mismatches and
 * tensors that belong to no parameter (other than a lm_head.weight tied to
 * the embeddings) are errors naming the file and the tensor. */
int hf_weights_load(struct param_table *pt, const char *dir, struct hug_error *err);

/* Writes every parameter of `pt` to `dir` as `disk` dtype: one
 * model.safetensors, or, when the total exceeds max_shard_bytes (0: never),
 * shards plus model.safetensors.index.json. Files are written atomically. */
int hf_weights_save(const struct param_table *pt, const char *dir, enum dtype disk,
		    size_t max_shard_bytes, struct hug_error *err);

/* Loads a whole BLOOM directory into `m` (initialised here, dtype dt, with
 * gradients when trainable). On error m is left freed. */
int hf_bloom_load(const char *dir, enum dtype dt, bool trainable,
		  struct bloom_model *m, struct hug_error *err);

/* Saves config, generation config and weights of `m` into `dir`, created if
 * needed; written under "<dir>.tmp" and renamed into place, so a crash never
 * leaves a half-written directory under the final name. */
int hf_bloom_save(const struct bloom_model *m, const char *dir, enum dtype disk,
		  size_t max_shard_bytes, struct hug_error *err);

#endif
