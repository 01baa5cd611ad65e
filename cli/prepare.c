/* prepare.c: `hug prepare --tokenizer T.json --out DIR FILES...`:
 * tokenizes text files (documents separated by blank lines) and JSONL
 * ({"text"} or {"prompt", "completion"}) into HDF5 token shards, with a
 * progress line on a terminal and a summary at the end (data/prepare.h
 * has the rules). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../data/prepare.h"
#include "../parallel/comm.h"
#include "args.h"
#include "cli.h"
#include "load.h"

static const char usage[] =
	"usage: hug prepare --tokenizer T.json --out DIR [options] FILES...\n"
	"Text files: one document per paragraph (blank lines separate them).\n"
	"JSONL (*.jsonl): {\"text\": ...} or {\"prompt\": ..., \"completion\": ...} per\n"
	"line (the prompt gets loss mask 0), or {\"messages\": [{\"role\", \"content\"},\n"
	"...]} rendered by a chat template (loss mask 1 on assistant turns only).\n"
	"The tokenizer's template tokens (e.g. BOS) start and EOS follows every\n"
	"text/prompt document; shards are DIR/shard-00000.h5, ...; a document is\n"
	"never split across shards.\n";

static int parse_choices(const char *format, const char *on_error, struct prepare_opts *o,
			 struct hug_error *err)
{
	if (!strcmp(format, "auto"))
		o->format = PREPARE_AUTO;
	else if (!strcmp(format, "text"))
		o->format = PREPARE_TEXT;
	else if (!strcmp(format, "jsonl"))
		o->format = PREPARE_JSONL;
	else
		return hug_error_set(err, "--format: expected auto, text or jsonl, got \"%s\"",
				     format);
	if (strcmp(on_error, "skip") && strcmp(on_error, "fail"))
		return hug_error_set(err, "--on-error: expected skip or fail, got \"%s\"", on_error);
	o->fail_on_error = !strcmp(on_error, "fail");
	return 0;
}

static void summary(const struct prepare_stats *st, const char *dir)
{
	int64_t skipped = 0;
	for (int k = 0; k < PREPARE_N_SKIP; k++)
		skipped += k == PREPARE_SKIP_EMPTY ? 0 : st->skipped[k];
	printf("prepared %lld documents, %lld tokens%s into %lld shard%s in %s "
	       "(%.1f MB of input in %.1f s, %.2f MB/s)\n",
	       (long long)st->docs, (long long)st->tokens, st->loss_mask ? " with loss masks" : "",
	       (long long)st->shards, st->shards == 1 ? "" : "s", dir, (double)st->bytes / 1e6,
	       st->seconds, st->seconds > 0 ? (double)st->bytes / 1e6 / st->seconds : 0.0);
	if (skipped) {
		printf("skipped %lld (", (long long)skipped);
		for (int k = 0, first = 1; k < PREPARE_N_SKIP; k++)
			if (k != PREPARE_SKIP_EMPTY && st->skipped[k]) {
				printf("%s%lld %s", first ? "" : ", ", (long long)st->skipped[k],
				       prepare_skip_name((enum prepare_skip)k));
				first = 0;
			}
		printf("), reported above as FILE:LINE\n");
	}
	if (st->skipped[PREPARE_SKIP_EMPTY])
		printf("ignored %lld records with an empty \"text\"\n",
		       (long long)st->skipped[PREPARE_SKIP_EMPTY]);
}

int cli_prepare(int argc, char **argv)
{
	struct prepare_opts o = prepare_opts_default();
	const char *tok_path = NULL, *format = "auto", *on_error = "skip";
	bool help = false, quiet = false;
	const struct arg_spec specs[] = {
		{ "tokenizer", ARG_STR, &tok_path, "tokenizer.json (Hugging Face format)" },
		{ "out", ARG_STR, &o.out_dir, "output directory (created; must hold no shards)" },
		{ "shard-tokens", ARG_I64, &o.shard_tokens, "close a shard at this many tokens (1e8)" },
		{ "threads", ARG_INT, &o.threads, "tokenizing threads (one per CPU)" },
		{ "format", ARG_STR, &format, "auto (by extension), text or jsonl" },
		{ "on-error", ARG_STR, &on_error, "skip (report FILE:LINE, go on) or fail" },
		{ "source", ARG_STR, &o.source, "the shards' source name (the file names)" },
		{ "separator", ARG_STR, &o.separator, "text: a line that ends a document, e.g. % (blank lines)" },
		{ "chat-template", ARG_STR, &o.chat_template, "JSONL \"messages\": chatml, llama3, mistral or gemma (guessed from the tokenizer)" },
		{ "no-special-tokens", ARG_SWITCH, &o.no_special, "leave out the special tokens the tokenizer's post_processor adds (e.g. BOS)" },
		{ "quiet", ARG_SWITCH, &quiet, "no progress line" },
		{ "help", ARG_SWITCH, &help, "show this help" },
	};
	const int n_specs = (int)(sizeof(specs) / sizeof(specs[0]));
	const char **files = hug_malloc((size_t)argc * sizeof(char *));
	struct hug_error err = { 0 };
	struct tokenizer *tok = NULL;
	struct prepare_stats st;
	int n_files = 0, rc = 2;
	if (args_parse(argc, argv, specs, n_specs, files, argc, &n_files, &err) ||
	    parse_choices(format, on_error, &o, &err))
		goto out;
	if (help || !tok_path || !o.out_dir || !n_files) {
		rc = args_show_usage(usage, specs, n_specs, help);
		goto done;
	}
	if (cli_tokenizer_find(tok_path, NULL, NULL, &tok, &err))
		goto out;
	o.progress = !quiet && isatty(STDERR_FILENO) && !parallel_launched();
	if (prepare_run(tok, files, n_files, &o, &st, &err)) {
		rc = 1;
		goto out;
	}
	summary(&st, o.out_dir);
	rc = 0;
	goto done;
out:
	fprintf(stderr, "hug prepare: %s\n", err.msg);
done:
	tokenizer_free(tok);
	hug_free(files);
	return rc;
}
