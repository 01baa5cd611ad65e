/* tokenize.c: `hug tokenize --tokenizer T.json TEXT | --file F` prints the
 * token ids of a text (comma-separated, like --prompt-ids takes them; with
 * the post_processor's special tokens unless --no-special-tokens);
 * `hug tokenize --tokenizer T.json --decode 1,2,3` prints the text of ids. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../data/tokenizer.h"
#include "args.h"
#include "cli.h"
#include "load.h"

/* Parses "1,2,3" (spaces allowed) into *ids; -1 with err naming the entry. */
static int parse_ids(const char *s, struct tok_ids *ids, struct hug_error *err)
{
	const char *p = s;
	while (*p) {
		char *end;
		while (*p == ' ')
			p++;
		errno = 0;
		long v = strtol(p, &end, 10);
		while (*end == ' ')
			end++;
		if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ','))
			return hug_error_set(err, "--decode: entry %lld of \"%s\" is not a "
					     "non-negative integer", (long long)ids->n + 1, s);
		tok_ids_push(ids, (int32_t)v);
		p = *end ? end + 1 : end;
	}
	return 0;
}

static int run_encode(const struct tokenizer *tok, const char *text, const char *file,
		      bool add_special, struct hug_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	struct tok_ids ids = { 0 };
	if (file && fs_read_file(file, SIZE_MAX, &buf, &len, err))
		return -1;
	if (file)
		tokenizer_encode_special(tok, buf, len, add_special, &ids);
	else
		tokenizer_encode_special(tok, text, strlen(text), add_special, &ids);
	for (int64_t i = 0; i < ids.n; i++)
		printf("%s%d", i ? "," : "", ids.v[i]);
	printf("\n");
	hug_free(buf);
	tok_ids_free(&ids);
	return 0;
}

static int run_decode(const struct tokenizer *tok, const char *list, bool skip,
		      struct hug_error *err)
{
	struct tok_ids ids = { 0 };
	struct buf out = { 0 };
	int rc = -1;
	if (parse_ids(list, &ids, err) || tokenizer_decode(tok, ids.v, ids.n, skip, &out, err))
		goto done;
	fwrite(out.p, 1, out.n, stdout);
	printf("\n");
	rc = 0;
done:
	tok_ids_free(&ids);
	buf_free(&out);
	return rc;
}

int cli_tokenize(int argc, char **argv)
{
	const char *path = NULL, *file = NULL, *decode = NULL;
	bool help = false, skip = false, no_special = false;
	const struct arg_spec specs[] = {
		{ "tokenizer", ARG_STR, &path, "tokenizer.json (Hugging Face format)" },
		{ "file", ARG_STR, &file, "read the text from this file" },
		{ "decode", ARG_STR, &decode, "print the text of these ids (1,2,3)" },
		{ "skip-special", ARG_SWITCH, &skip, "leave special tokens out when decoding" },
		{ "no-special-tokens", ARG_SWITCH, &no_special, "encode without the special tokens the post_processor adds" },
		{ "help", ARG_SWITCH, &help, "show this help" },
	};
	const int n_specs = (int)(sizeof(specs) / sizeof(specs[0]));
	struct hug_error err = { 0 };
	const char *pos[1];
	int n_pos = 0;
	if (args_parse_cmd("tokenize", argc, argv, specs, n_specs, pos, 1, &n_pos))
		return 2;
	int modes = (n_pos == 1) + (file != NULL) + (decode != NULL);
	if (help || !path || modes != 1)
		return args_show_usage("usage: hug tokenize --tokenizer T.json TEXT\n"
				       "       hug tokenize --tokenizer T.json --file F\n"
				       "       hug tokenize --tokenizer T.json --decode 1,2,3\n"
				       "Prints comma-separated ids (with the special tokens the tokenizer's\n"
				       "post_processor adds, e.g. BOS, unless --no-special-tokens), or the\n"
				       "decoded text followed by a newline. A TEXT that starts with \"--\"\n"
				       "goes after \"--\", which ends the options:\n"
				       "       hug tokenize --tokenizer T.json -- \"--not-a-flag\"\n",
				       specs, n_specs, help);
	struct tokenizer *tok = NULL;
	int rc = 2;
	if (cli_tokenizer_find(path, NULL, NULL, &tok, &err))
		goto out;
	if (decode ? run_decode(tok, decode, skip, &err) : run_encode(tok, pos[0], file, !no_special, &err))
		goto out;
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "hug tokenize: %s\n", err.msg);
	tokenizer_free(tok);
	return rc;
}
