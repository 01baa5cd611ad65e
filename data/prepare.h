/* prepare.h: tokenizes text into token shards (`hug prepare`).
 *
 * Inputs, by format (auto: *.jsonl, *.ndjson and *.json are JSONL, anything
 * else is text):
 *   text   documents are paragraphs: runs of non-blank lines separated by
 *          one or more blank lines (a blank line holds only spaces, tabs or
 *          \r). A document's text is its lines as they are, joined by their
 *          own newlines, without the final newline (or \r\n). With a
 *          separator, documents end at lines equal to it instead, and
 *          blank lines inside them are kept.
 *   jsonl  one JSON object per line: {"text": "..."} is a document;
 *          {"prompt": "...", "completion": "..."} is a fine-tuning example
 *          whose prompt tokens get loss mask 0 and completion tokens 1
 *          (prompt and completion are encoded separately and concatenated).
 *          Blank lines are ignored.
 * Every document is followed by the tokenizer's EOS id (mask 1). When any
 * JSONL input holds a "prompt" key (found by a byte search of the JSONL
 * inputs before the run), every shard of the run gets a loss mask (all 1
 * for plain text documents); otherwise none does.
 *
 * Output: OUT/shard-00000.h5, shard-00001.h5, ... (data/shard.h). A shard
 * is closed once it holds at least shard_tokens tokens; documents are never
 * split across shards, so a shard may exceed shard_tokens by part of one
 * document. Documents appear in input order whatever the thread count, so
 * the shards are byte-for-byte the same for 1 or N threads.
 *
 * Bad input never crashes: a line with invalid UTF-8 (a text document
 * containing any), a malformed JSON line or one without the expected keys
 * is reported as FILE:LINE and skipped, or, with fail_on_error, ends the
 * run (shards already written by the run are removed). */
#ifndef HUG_DATA_PREPARE_H
#define HUG_DATA_PREPARE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../base/error.h"
#include "tokenizer.h"

enum prepare_format {
	PREPARE_AUTO,
	PREPARE_TEXT,
	PREPARE_JSONL,
};

enum prepare_skip {
	PREPARE_SKIP_UTF8,     /* invalid UTF-8 */
	PREPARE_SKIP_JSON,     /* malformed JSON */
	PREPARE_SKIP_FIELDS,   /* not an object with "text", "prompt"+"completion"
				  or "messages" */
	PREPARE_SKIP_EMPTY,    /* "text" is empty: nothing to train on (not an error) */
	PREPARE_N_SKIP,
};

struct prepare_opts {
	const char *out_dir;      /* created if missing; must hold no shards */
	int64_t shard_tokens;     /* > 0 */
	int threads;              /* tokenizing threads, >= 1 */
	enum prepare_format format;
	bool fail_on_error;       /* the first bad line ends the run */
	bool progress;            /* a \r progress line on stderr */
	FILE *log;                /* FILE:LINE reports of skipped lines; NULL: none */
	int max_reports;          /* reports printed before going quiet (0: 100) */
	const char *source;       /* shards' "source"; NULL: the input file names */
	size_t chunk_bytes;       /* work unit (0: 1 MiB); tests make it tiny */
	const char *chat_template; /* JSONL "messages": the template's name
				     (chat_template.h); NULL: the one the
				     tokenizer's special tokens point to */
	bool no_special;          /* leave out the special tokens the tokenizer's
				     post_processor adds (HF's
				     add_special_tokens=False) */
	const char *separator;    /* text: documents end at a line equal to this
				     (e.g. "%" for fortune files) instead of at
				     blank lines; NULL: blank lines */
};

struct prepare_stats {
	int64_t bytes;            /* input bytes read */
	int64_t docs, tokens, shards;
	int64_t skipped[PREPARE_N_SKIP];
	bool loss_mask;           /* the shards carry a loss mask */
	double seconds;
};

/* Default options: shard_tokens 100,000,000, one thread per CPU (at most
 * 64), auto format, skip bad lines, no progress, reports to stderr. */
struct prepare_opts prepare_opts_default(void);

/* Tokenizes files[0..n_files) with tok into shards under o->out_dir and
 * fills *st. Returns 0; or -1 with err for bad options, an unreadable
 * input, a tokenizer without an EOS token, an output directory that
 * already holds shards, no documents at all, a shard write failure, or
 * (fail_on_error) the first bad line as "FILE:LINE: what". */
int prepare_run(const struct tokenizer *tok, const char *const *files, int n_files,
		const struct prepare_opts *o, struct prepare_stats *st, struct hug_error *err);

/* A short name for a skip reason ("invalid UTF-8", ...). */
const char *prepare_skip_name(enum prepare_skip k);

#endif
