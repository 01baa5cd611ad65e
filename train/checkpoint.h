/* checkpoint.h: training checkpoints. checkpoint-<step>/ holds
 *   config.json, generation_config.json, model.safetensors   (transformers
 *                                     loads the directory as it is)
 *   optimizer.safetensors   "exp_avg.<param>", "exp_avg_sq.<param>" (AdamW)
 *                           or "momentum_buffer.<param>" (SGD), f32
 *   trainer_state.json      step, samples and tokens seen, the data loader
 *                           state, the dropout RNG, the log history
 *   recipe.json             the effective recipe
 *   tokenizer.json          when the recipe names one
 * A LoRA run (recipe peft) writes its adapters in PEFT's layout instead of
 * the model files: adapter_config.json + adapter_model.safetensors (the
 * frozen base stays in model.from_pretrained, named by the config's
 * base_model_name_or_path); optimizer state is the adapters' alone.
 * trainer_state.json also records the SHA-256 and size of every other file
 * ("files", see io/dir_checksums.h), the adapter's included.
 * It is written as checkpoint-<step>.tmp/, every file fsynced, then put in
 * place by fs_replace_dir: a directory named checkpoint-<step> is always
 * complete, even when a step is saved again. */
#ifndef HUG_TRAIN_CHECKPOINT_H
#define HUG_TRAIN_CHECKPOINT_H

#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "trainer.h"

/* Writes the checkpoint of t's current step under t->r->out_dir (created if
 * needed), with `history` (a JSON array of metric records, may be NULL) as
 * the log history, then keeps only the newest keep_last checkpoints. The
 * path written is returned in *path (caller frees; may be NULL). 0 or -1. */
int checkpoint_save(const struct trainer *t, const cJSON *history, char **path,
		    struct hug_error *err);

/* The newest complete checkpoint directory in out_dir (hug_malloc'd), or
 * NULL when there is none. */
char *checkpoint_latest(const char *out_dir);

/* Checks that checkpoint directory `dir` is intact: trainer_state.json
 * parses as an object, the model (or adapter), optimizer and recipe files
 * are present, and every file matches its recorded SHA-256 and size.
 * *verified (may be NULL) is false when the checkpoint has no record
 * (written before records existed): it then passes unverified. 0, or -1
 * with err naming the file at fault (a digest mismatch says expected vs
 * got). */
int checkpoint_verify(const char *dir, bool *verified, struct hug_error *err);

/* The newest checkpoint-<step> in out_dir that passes checkpoint_verify
 * (hug_malloc'd). Each newer one that fails is reported on `report` (may
 * be NULL) as "skipping DIR: why", and one accepted unverified says so.
 * NULL with err unset when out_dir holds no checkpoint; NULL with err
 * listing every checkpoint and why when none is intact. */
char *checkpoint_resume_pick(const char *out_dir, FILE *report, struct hug_error *err);

/* Restores weights, optimizer state, progress, the loader position and the
 * RNG of t (built by trainer_init from the same recipe) from checkpoint
 * directory `dir`; *history receives the log history (caller deletes). */
int checkpoint_load(struct trainer *t, const char *dir, cJSON **history,
		    struct hug_error *err);

#endif
