/* load.h: what the commands load from their flags: the model of the
 * inference commands (hug eval, hug generate), a checkpoint directory with
 * its checksums verified and an optional LoRA adapter (--adapter, PEFT's
 * layout) merged into its weights; and a tokenizer (--tokenizer, or the
 * one a model or adapter directory holds), whose absence names every path
 * tried and the flag that supplies one. */
#ifndef HUG_CLI_LOAD_H
#define HUG_CLI_LOAD_H

#include "../base/error.h"
#include "../data/tokenizer.h"
#include "../nn/model.h"

/* Loads `dir` (any family, f32, on the host) into *m after checking the
 * checksums of a directory hug wrote, and, when `adapter` is not NULL,
 * merges the adapter in that directory into the weights (generation and
 * evaluation then run at the base model's speed). 0, or -1 with err and
 * nothing left to free. */
int cli_model_load(const char *dir, const char *adapter, struct model *m, struct hug_error *err);

/* Loads the tokenizer named by --tokenizer (`given`: a tokenizer.json, or
 * a directory holding one) when not NULL; else the first of
 * ADAPTER/tokenizer.json and MODEL/tokenizer.json that exists (`adapter`
 * and `model` may be NULL). When there is none the message lists the
 * paths tried ("no tokenizer: looked for a/tokenizer.json (the --adapter
 * directory), m/tokenizer.json (the --model directory); give one with
 * --tokenizer T.json"); a tokenizer that exists but does not load gives
 * tokenizer_load's message. 0 or -1. */
int cli_tokenizer_find(const char *given, const char *model, const char *adapter,
		       struct tokenizer **tok, struct hug_error *err);

#endif
