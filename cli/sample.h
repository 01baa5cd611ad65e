/* sample.h: text in, text out generation shared by `hug generate --prompt`
 * and the samples `hug train` prints at the end of a run. */
#ifndef HUG_CLI_SAMPLE_H
#define HUG_CLI_SAMPLE_H

#include "../data/tokenizer.h"
#include "../nn/generate.h"

/* Encodes `prompt` with tok (with the post-processor's special tokens,
 * e.g. Llama's BOS, when add_special: transformers' tokenizer(prompt)
 * default), generates with m as `o` says and decodes the new tokens into
 * *out (replacing its contents; special tokens left out). 0, or -1 with
 * err. */
int sample_text(const struct model *m, const struct tokenizer *tok,
		const char *prompt, bool add_special, const struct gen_opts *o,
		struct buf *out, struct hug_error *err);

#endif
