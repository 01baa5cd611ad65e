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
 * It is written as checkpoint-<step>.tmp/, every file fsynced, then renamed:
 * a directory named checkpoint-<step> is always complete. */
#ifndef HUG_TRAIN_CHECKPOINT_H
#define HUG_TRAIN_CHECKPOINT_H

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

/* Restores weights, optimizer state, progress, the loader position and the
 * RNG of t (built by trainer_init from the same recipe) from checkpoint
 * directory `dir`; *history receives the log history (caller deletes). */
int checkpoint_load(struct trainer *t, const char *dir, cJSON **history,
		    struct hug_error *err);

#endif
