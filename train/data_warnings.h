/* data_warnings.h: warnings (not errors) about the vocabulary and the
 * tokenizer a run trains with, printed once at set-up: signs that the
 * shards, the tokenizer and the model do not belong together. The hard
 * cases are errors elsewhere: ids beyond the embedding (trainer.c), shards
 * of another tokenizer than data.tokenizer (the loader). */
#ifndef HUG_TRAIN_DATA_WARNINGS_H
#define HUG_TRAIN_DATA_WARNINGS_H

#include <stdio.h>

#include "../data/shard.h"
#include "recipe.h"

/* Writes to `out` a "hug train: warning: ..." line for each of:
 * - the shards' vocabulary `m` (data.train's) under half of the model's
 *   vocab_size: most embedding rows would never see a token, the mark of
 *   shards made with another tokenizer than the model's;
 * - data.tokenizer (which checkpoints carry as their tokenizer.json; the
 *   shards hold its hash) differing from the tokenizer.json of the
 *   model.from_pretrained directory, compared by tokenizer_hash (a SHA-256
 *   of the vocabulary, merges and added tokens).
 * Returns the number of warnings. */
int data_warnings(const struct recipe *r, const struct shard_meta *m, FILE *out);

#endif
