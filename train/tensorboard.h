/* tensorboard.h: TensorBoard event files for a run directory, so that
 * `tensorboard --logdir runs/` shows hug's runs as it shows other
 * trainers': scalars (each number of a metrics.jsonl record) and text (the
 * end-of-run samples). The records are TensorBoard's (tfevents: length,
 * masked CRC-32C, a serialized Event) with the messages of
 * train/tensorboard.proto. */
#ifndef HUG_TRAIN_TENSORBOARD_H
#define HUG_TRAIN_TENSORBOARD_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "../base/error.h"

struct tb_writer;

/* Starts a new events file in `dir` (made if missing):
 * dir/events.out.tfevents.<unix seconds>.<host>.<pid>.hug, beginning with
 * the file-version record. resume_step > 0 (a run resumed after step
 * resume_step) adds a session start at resume_step + 1, which makes
 * TensorBoard drop what earlier files logged past the checkpoint (steps a
 * killed run had logged but did not save). `clock` gives the wall time of
 * each record in seconds since the epoch (NULL: the real clock; tests pass
 * a fixed one). 0 with *w set, or -1 with err naming the file. */
int tb_open(struct tb_writer **w, const char *dir, int64_t resume_step,
	    double (*clock)(void), struct hug_error *err);

/* The file's path (valid while w is open). */
const char *tb_path(const struct tb_writer *w);

/* Appends scalar `tag` = value at `step`. 0 or -1 with err. */
int tb_scalar(struct tb_writer *w, const char *tag, int64_t step, double value,
	      struct hug_error *err);

/* Appends text (UTF-8, shown by TensorBoard's text dashboard, which reads
 * it as Markdown) under `tag` at `step`. 0 or -1 with err. */
int tb_text(struct tb_writer *w, const char *tag, int64_t step, const char *text,
	    struct hug_error *err);

/* Appends a metrics.jsonl record ({"step": N, "loss": ..., ...}) as one
 * event of scalars: each number or boolean member but "step" becomes tag
 * "train/<key>", or "valid/<rest>" for a key "valid_<rest>"; booleans are
 * 0 or 1. A record without a numeric "step" is refused. 0 or -1 with err. */
int tb_record(struct tb_writer *w, const cJSON *rec, struct hug_error *err);

/* Writes what is buffered to the file (records are flushed one by one;
 * this adds fsync). 0 or -1 with err. */
int tb_sync(struct tb_writer *w, struct hug_error *err);

/* Closes the file (NULL allowed). */
void tb_close(struct tb_writer *w);

#endif
