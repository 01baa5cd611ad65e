/* sample.c: tokenize a prompt, generate, detokenize. */
#include "sample.h"

#include <string.h>

#include "../base/alloc.h"

int sample_text(const struct model *m, const struct tokenizer *tok,
		const char *prompt, bool add_special, const struct gen_opts *o,
		struct buf *out, struct hug_error *err)
{
	struct tok_ids ids = { 0 };
	tokenizer_encode_special(tok, prompt, strlen(prompt), add_special, &ids);
	if (ids.n == 0) {
		tok_ids_free(&ids);
		return hug_error_set(err, "prompt \"%s\" encodes to no tokens", prompt);
	}
	struct model_config mc;
	model_config_of(m, &mc);
	if (gen_check_size(&mc, (int64_t)ids.n, o->max_new_tokens, o->max_memory, err)) {
		tok_ids_free(&ids);
		return -1;
	}
	int32_t *gen = hug_malloc((size_t)o->max_new_tokens * sizeof(int32_t));
	int n = model_generate(m, ids.v, (int)ids.n, o, gen, err);
	int rc = n < 0 ? -1 : tokenizer_decode(tok, gen, n, true, out, err);
	hug_free(gen);
	tok_ids_free(&ids);
	return rc;
}
