/* data_warnings.c: the set-up warnings of data_warnings.h. */
#include "data_warnings.h"

#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../data/tokenizer.h"

/* The tokenizer.json of r's from_pretrained directory differs from the
 * shards' (data.tokenizer's) hash? 1 when it was warned about. */
static int tokenizer_differs(const struct recipe *r, const struct shard_meta *m, FILE *out)
{
	if (!r->tokenizer || !r->from_pretrained)
		return 0;
	char *own = fs_join(r->from_pretrained, "tokenizer.json");
	struct tokenizer *tok = NULL;
	struct hug_error err = { 0 };
	int warned = 0;
	if (!fs_exists(own)) {
		/* nothing to compare */
	} else if (tokenizer_load(own, &tok, &err)) {
		fprintf(out, "hug train: warning: %s: model.from_pretrained's tokenizer does not load "
			"(%s), so data.tokenizer %s cannot be compared with it\n", r->path, err.msg,
			r->tokenizer);
		warned = 1;
	} else if (strcmp(tokenizer_hash(tok), m->tokenizer_hash)) {
		fprintf(out, "hug train: warning: %s: data.tokenizer %s (%.19s...) is not the model's "
			"own tokenizer %s (%.19s...): the checkpoints will carry data.tokenizer's, and "
			"the model was trained on other token ids\n", r->path, r->tokenizer,
			m->tokenizer_hash, own, tokenizer_hash(tok));
		warned = 1;
	}
	tokenizer_free(tok);
	hug_free(own);
	return warned;
}

int data_warnings(const struct recipe *r, const struct shard_meta *m, FILE *out)
{
	int n = 0;
	int64_t model_vocab = r->model.dims.vocab_size;
	if (m->vocab_size * 2 < model_vocab) {
		fprintf(out, "hug train: warning: %s: the shards' vocabulary (vocab_size %lld) is %.0f%% "
			"of the model's (%s %lld): %lld embedding rows never see a token; were the "
			"shards made with the model's tokenizer?\n", r->path, (long long)m->vocab_size,
			100.0 * (double)m->vocab_size / (double)model_vocab,
			r->from_pretrained ? "model.from_pretrained's vocab_size" : "model.vocab_size",
			(long long)model_vocab, (long long)(model_vocab - m->vocab_size));
		n++;
	}
	n += tokenizer_differs(r, m, out);
	fflush(out);
	return n;
}
