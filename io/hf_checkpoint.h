/* hf_checkpoint.h: Hugging Face model directories for BLOOM: config.json,
 * generation_config.json and the weights (model.safetensors, or shards
 * model-0000k-of-0000N.safetensors with model.safetensors.index.json), read
 * and written so that BloomForCausalLM.from_pretrained loads them as they
 * are. Weight names may carry the "transformer." prefix or not. */
#ifndef HUG_IO_HF_CHECKPOINT_H
#define HUG_IO_HF_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"
#include "../nn/bloom.h"

/* Reads a BLOOM config.json (`path` is the file, or a directory holding
 * it). Accepts hidden_size or n_embed, n_layer or num_hidden_layers, n_head
 * or num_attention_heads; these and vocab_size are required, the other
 * fields default as bloom_config_make sets them; a token id of null is
 * stored as -1 (none). model_type, when present, must be "bloom", and
 * tie_word_embeddings, when present, true. Keys hug does not use are
 * ignored. Every error names the file and the key: "cfg/config.json:
 * n_head: expected a positive integer, got \"eight\"". The result is
 * validated. 0 or -1. */
int hf_bloom_config_read(const char *path, struct bloom_config *cfg,
			 struct hug_error *err);

/* Writes config.json (model_type bloom, architectures
 * ["BloomForCausalLM"], dtype and torch_dtype from `weights_dtype`, keys
 * sorted, 2-space indent as transformers writes it; a negative token id is
 * written as null) and generation_config.json into directory `dir` (which
 * must exist), each atomically (temporary file, fsync, rename). */
int hf_bloom_config_write(const struct bloom_config *cfg, enum dtype weights_dtype,
			  const char *dir, struct hug_error *err);

/* Fills every parameter of `pt` from the weights in `dir` (found as
 * hf_weights_find finds them), converting dtypes (f32, f64, bf16, f16 on
 * disk). Missing tensors, shape mismatches, non-float tensors, a parameter
 * given twice (with and without the prefix, or in two shards), an index
 * entry whose shard lacks the tensor and tensors that belong to no
 * parameter (other than a lm_head.weight tied to the embeddings) are errors
 * naming the file and the tensor. Everything is checked before anything is
 * copied, so on error the parameters are unchanged. */
int hf_weights_load(struct param_table *pt, const char *dir, struct hug_error *err);

/* Writes every parameter of `pt` (host, float) to directory `dir` (which
 * must exist) as `disk` dtype (f32, f64, bf16 or f16), under the
 * registered names; no lm_head.weight (transformers ties it). One
 * model.safetensors, or, when the total exceeds max_shard_bytes (0: never),
 * shards model-0000k-of-0000N.safetensors filled greedily in registration
 * order (a tensor larger than the limit gets a shard of its own) plus
 * model.safetensors.index.json ({"metadata": {"total_size": bytes},
 * "weight_map": {name: shard}}, written last). Each file is written
 * atomically; afterwards the weight files of an earlier save that this one
 * did not write (the single file, the index, other shards) are removed.
 * For a directory that is never seen half-replaced, use hf_bloom_save. */
int hf_weights_save(const struct param_table *pt, const char *dir, enum dtype disk,
		    size_t max_shard_bytes, struct hug_error *err);

/* The file names of a Hugging Face model directory. */
#define HF_CONFIG_FILE "config.json"
#define HF_GENERATION_CONFIG_FILE "generation_config.json"
#define HF_WEIGHTS_FILE "model.safetensors"
#define HF_WEIGHTS_INDEX_FILE "model.safetensors.index.json"

/* The weight files of a directory, as hf_weights_find resolves them. */
struct hf_weight_files {
	bool sharded;        /* true: read from HF_WEIGHTS_INDEX_FILE */
	int n_files;
	char **files;        /* names relative to the directory; shards sorted */
	int n_map;           /* sharded: the index's weight_map entries */
	char **map_names;    /* tensor names as written in the index */
	int *map_file;       /* index into files for each entry */
	int64_t total_size;  /* sharded: metadata.total_size, or -1 if absent */
};

/* Finds the weights in `dir`: HF_WEIGHTS_FILE when it exists, else the
 * shards named by HF_WEIGHTS_INDEX_FILE, whose weight_map is validated
 * (an object of strings; shard names without path separators or "..";
 * every shard exists as a regular file). Returns 0 with *wf filled (free
 * with hf_weight_files_free), or -1 with `err` naming the directory or the
 * index and the problem (*wf left empty). */
int hf_weights_find(const char *dir, struct hf_weight_files *wf,
		    struct hug_error *err);
/* Frees what hf_weights_find allocated; idempotent. */
void hf_weight_files_free(struct hf_weight_files *wf);

/* Loads a whole BLOOM directory into `m` (initialised here, dtype dt: f32
 * or f64, with gradients when trainable). On error m is left freed (all
 * zero). */
int hf_bloom_load(const char *dir, enum dtype dt, bool trainable,
		  struct bloom_model *m, struct hug_error *err);

/* Saves config, generation config and weights of `m` into `dir`, created
 * (with its parents) if needed; written under "<dir>.tmp" and renamed into
 * place, so a crash never leaves a half-written directory under the final
 * name. An existing `dir` is swapped out atomically (renameat2
 * RENAME_EXCHANGE; where the file system lacks it, renamed to "<dir>.old"
 * first) and then removed; entries in it that hug does not write (a
 * tokenizer, a README) are moved into the new directory rather than
 * deleted. A stale "<dir>.tmp" (or, on the rename path, "<dir>.old")
 * holding only hug's files is cleared first; one holding anything else is
 * an error, as is a `dir` that is not a directory (or is a symbolic
 * link). */
int hf_bloom_save(const struct bloom_model *m, const char *dir, enum dtype disk,
		  size_t max_shard_bytes, struct hug_error *err);

#endif
