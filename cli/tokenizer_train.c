/* tokenizer_train.c: `hug tokenizer train --vocab-size N --out T.json
 * FILES...` trains a byte-level BPE tokenizer on text files and writes a
 * tokenizer.json that Hugging Face tokenizers loads as it is; `hug
 * tokenizer info T.json` describes one. */
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../data/tokenizer.h"
#include "args.h"
#include "cli.h"

#define MAX_SPECIAL 64

/* Splits "a,b,c" in place into list[0..*n); -1 with err on an empty or too
 * long list. */
static int split_special(char *s, const char **list, int *n, struct hug_error *err)
{
	*n = 0;
	if (!*s)
		return 0;
	for (char *p = s;; ) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (*n == MAX_SPECIAL)
			return hug_error_set(err, "--special: more than %d tokens", MAX_SPECIAL);
		list[(*n)++] = p;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* Checks the choices and fills o; -1 with err. */
static int train_opts(char *special, const char *pre, int64_t vocab, int64_t min_freq,
		      const char **list, struct tok_train_opts *o, struct hug_error *err)
{
	if (split_special(special, list, &o->n_special, err))
		return -1;
	if (strcmp(pre, "gpt2") && strcmp(pre, "bloom"))
		return hug_error_set(err, "--pre-tokenizer: expected gpt2 or bloom, got \"%s\"", pre);
	if (vocab < o->n_special + 256)
		return hug_error_set(err, "--vocab-size %lld is smaller than the %d special and "
				     "256 byte tokens", (long long)vocab, o->n_special);
	if (min_freq < 0)
		return hug_error_set(err, "--min-frequency: expected a count >= 0, got %lld",
				     (long long)min_freq);
	o->vocab_size = vocab;
	o->min_frequency = min_freq;
	o->special = list;
	o->pretok = strcmp(pre, "bloom") ? TOK_PRETOK_GPT2 : TOK_PRETOK_BLOOM;
	return 0;
}

static int train(int argc, char **argv)
{
	const char *out = NULL, *special = "<unk>,<s>,</s>,<pad>", *pre = "gpt2";
	int64_t vocab = 0, min_freq = 0;
	bool help = false, quiet = false;
	const struct arg_spec specs[] = {
		{ "vocab-size", ARG_I64, &vocab, "tokens in all: special + 256 bytes + merges" },
		{ "out", ARG_STR, &out, "the tokenizer.json to write" },
		{ "min-frequency", ARG_I64, &min_freq, "stop when the best pair is rarer (0)" },
		{ "special", ARG_STR, &special, "special tokens, ids 0.. (<unk>,<s>,</s>,<pad>)" },
		{ "pre-tokenizer", ARG_STR, &pre, "gpt2 (ByteLevel regex) or bloom (gpt2)" },
		{ "quiet", ARG_SWITCH, &quiet, "no progress lines" },
		{ "help", ARG_SWITCH, &help, "show this help" },
	};
	const int n_specs = (int)(sizeof(specs) / sizeof(specs[0]));
	struct hug_error err = { 0 };
	const char **files = hug_malloc((size_t)argc * sizeof(char *)), *list[MAX_SPECIAL];
	char *special_copy = NULL;
	int n_files = 0, rc = 2;
	struct tok_train_opts o = { .pretok = TOK_PRETOK_GPT2 };
	if (args_parse(argc, argv, specs, n_specs, files, argc, &n_files, &err))
		goto out;
	if (help || !out || !vocab || !n_files) {
		rc = args_show_usage("usage: hug tokenizer train --vocab-size N --out T.json [options] FILES...\n"
				     "Trains byte-level BPE on text files (each line pre-tokenized on its own,\n"
				     "as Hugging Face's trainer does).\n",
				     specs, n_specs, help);
		goto done;
	}
	special_copy = hug_strdup(special);
	if (train_opts(special_copy, pre, vocab, min_freq, list, &o, &err))
		goto out;
	o.verbose = !quiet;
	rc = 1;
	if (tokenizer_train(files, n_files, &o, out, &err))
		goto out;
	if (!quiet)
		fprintf(stderr, "hug tokenizer train: wrote %s\n", out);
	rc = 0;
	goto done;
out:
	fprintf(stderr, "hug tokenizer train: %s\n", err.msg);
done:
	hug_free(special_copy);
	hug_free(files);
	return rc;
}

static int info(int argc, char **argv)
{
	struct tokenizer *tok;
	struct hug_error err = { 0 };
	if (argc != 2) {
		printf("usage: hug tokenizer info T.json\n");
		return 2;
	}
	if (tokenizer_load(argv[1], &tok, &err)) {
		fprintf(stderr, "hug tokenizer info: %s\n", err.msg);
		return 2;
	}
	printf("{\"vocab_size\": %lld, \"merges\": %lld, \"eos_id\": %d, \"hash\": \"%s\"}\n",
	       (long long)tokenizer_vocab_size(tok), (long long)tokenizer_n_merges(tok),
	       tokenizer_eos_id(tok), tokenizer_hash(tok));
	tokenizer_free(tok);
	return 0;
}

int cli_tokenizer(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "train"))
		return train(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "info"))
		return info(argc - 1, argv + 1);
	printf("usage: hug tokenizer train --vocab-size N --out T.json FILES...\n"
	       "       hug tokenizer info T.json\n");
	return argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) ? 0 : 2;
}
