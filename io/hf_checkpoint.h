/* hf_checkpoint.h: Hugging Face model directories of any model family:
 * config.json and generation_config.json (written and read through the
 * family, nn/model.h) and the weights (model.safetensors, or shards
 * model-0000k-of-0000N.safetensors with model.safetensors.index.json), read
 * and written so that transformers' from_pretrained loads them as they are.
 *   hf_weights_find.c  which files hold the weights
 *   hf_weights_load.c  loading them by name into a parameter table
 *   hf_weights_save.c  writing a parameter table (sharded or not)
 *   hf_model_dir.c     whole directories: load a model, save one atomically */
#ifndef HUG_IO_HF_CHECKPOINT_H
#define HUG_IO_HF_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"
#include "../nn/hf_json.h"
#include "../nn/model.h"

/* The weight file names of a Hugging Face model directory (HF_CONFIG_FILE
 * and HF_GENERATION_CONFIG_FILE are in nn/hf_json.h). */
#define HF_WEIGHTS_FILE "model.safetensors"
#define HF_WEIGHTS_INDEX_FILE "model.safetensors.index.json"

/* Fills every parameter of `pt` from the weights in `dir` (found as
 * hf_weights_find finds them), converting dtypes (f32, f64, bf16, f16 on
 * disk). `names` are the family's rules (names->optional_prefix may be
 * missing from file names; names->ignored are tensors that are not
 * parameters, such as a tied lm_head.weight; NULL: neither); `model` names
 * the model in messages ("BLOOM"). Missing tensors, shape mismatches,
 * non-float tensors, a parameter given twice (with and without the prefix,
 * or in two shards), an index entry whose shard lacks the tensor and
 * tensors that belong to no parameter are errors naming the file and the
 * tensor. Everything is checked before anything is copied, so on error the
 * parameters are unchanged. */
int hf_weights_load(struct param_table *pt, const struct model_hf_names *names,
		    const char *model, const char *dir, struct hug_error *err);

/* Writes every parameter of `pt` (host, float) to directory `dir` (which
 * must exist) as `disk` dtype (f32, f64, bf16 or f16), under the
 * registered names. One model.safetensors, or, when the total exceeds
 * max_shard_bytes (0: never), shards model-0000k-of-0000N.safetensors
 * filled greedily in registration order (a tensor larger than the limit
 * gets a shard of its own) plus model.safetensors.index.json
 * ({"metadata": {"total_size": bytes}, "weight_map": {name: shard}},
 * written last). Each file is written atomically; afterwards the weight
 * files of an earlier save that this one did not write (the single file,
 * the index, other shards) are removed. For a directory that is never seen
 * half-replaced, use hf_model_save. */
int hf_weights_save(const struct param_table *pt, const char *dir, enum dtype disk,
		    size_t max_shard_bytes, struct hug_error *err);

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

/* True for "model-00001-of-00003.safetensors": the shard names
 * hf_weights_save writes. */
bool hf_is_shard_name(const char *s);

/* Loads a whole directory into `m`: config.json picks the family
 * (model_config_read), then the model is initialised (dtype dt: f32 or
 * f64, with gradients when trainable) and its weights loaded. An empty
 * handle (zeroed) becomes an owned model; a model_wrap handle is
 * initialised in place and the directory's family must be its own. On
 * error m's contents are freed. */
int hf_model_load(const char *dir, enum dtype dt, bool trainable, struct model *m,
		  struct hug_error *err);

/* The eos_token_id of dir/generation_config.json, which transformers'
 * generate stops on (Qwen2.5 Instruct lists more ids there than in
 * config.json): ids[0..*n), at most max; *n = 0 when the file is missing
 * or the key absent or null. 0, or -1 with err naming the file and key. */
int hf_generation_eos(const char *dir, int *ids, int max, int *n, struct hug_error *err);

/* Saves config, generation config and weights of `m` (host) into `dir`,
 * created (with its parents) if needed; written under "<dir>.tmp" and
 * renamed into place, so a crash never leaves a half-written directory
 * under the final name. An existing `dir` is swapped out atomically
 * (renameat2 RENAME_EXCHANGE; where the file system lacks it, renamed to
 * "<dir>.old" first) and then removed; entries in it that hug does not
 * write (a tokenizer, a README) are moved into the new directory rather
 * than deleted. A stale "<dir>.tmp" (or, on the rename path, "<dir>.old")
 * holding only hug's files is cleared first; one holding anything else is
 * an error, as is a `dir` that is not a directory (or is a symbolic
 * link). */
int hf_model_save(const struct model *m, const char *dir, enum dtype disk,
		  size_t max_shard_bytes, struct hug_error *err);

#endif
