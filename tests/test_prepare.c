/* test_prepare.c: `hug prepare` end to end on a small corpus: text
 * paragraphs, JSONL text and prompt/completion records, a malformed line
 * and invalid UTF-8. The shards are read back through data/shard.h and
 * compared with tokenizer_encode of each document plus EOS, the loss mask
 * with 0 on prompts; the output must not depend on the thread count or
 * the chunk size, and bad lines are reported as FILE:LINE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../data/prepare.h"
#include "../data/shard.h"
#include "../data/tokenizer.h"
#include "harness.h"

#define TOK "tests/fixtures/tokenizer/bloom.json"

/* All the shards of a directory, concatenated. */
struct readback {
	struct tok_ids tokens;
	struct buf mask;      /* one byte per token */
	struct tok_ids doc_len;     /* per document */
	int shards;
	int64_t shard_tokens[64];
	bool has_mask;
	struct shard_meta meta;
};

static void readback_free(struct readback *r)
{
	tok_ids_free(&r->tokens);
	buf_free(&r->mask);
	tok_ids_free(&r->doc_len);
}

static int read_shards(const char *dir, struct readback *r)
{
	memset(r, 0, sizeof(*r));
	for (int k = 0;; k++) {
		char path[512];
		struct shard_reader *sr;
		struct hug_error err = { 0 };
		snprintf(path, sizeof(path), "%s/shard-%05d.h5", dir, k);
		if (access(path, F_OK))
			return 0;
		if (shard_reader_open(path, &sr, &err)) {
			test_fail_at(__FILE__, __LINE__, "%s", err.msg);
			return -1;
		}
		int64_t n = shard_reader_tokens(sr), d = shard_reader_docs(sr);
		int32_t *t = hug_malloc((size_t)(n + 1) * sizeof(int32_t));
		uint8_t *m = hug_malloc((size_t)n + 1);
		int64_t *off = hug_malloc((size_t)(d + 1) * sizeof(int64_t));
		int rc = shard_reader_read(sr, 0, n, t, m, &err) ||
			 shard_reader_doc_offsets(sr, 0, d + 1, off, &err);
		if (!rc) {
			for (int64_t i = 0; i < n; i++)
				tok_ids_push(&r->tokens, t[i]);
			buf_put(&r->mask, m, (size_t)n);
			for (int64_t i = 0; i < d; i++)
				tok_ids_push(&r->doc_len, (int32_t)(off[i + 1] - off[i]));
			r->has_mask = shard_reader_has_loss_mask(sr);
			r->meta = *shard_reader_meta(sr);
			r->shard_tokens[r->shards < 64 ? r->shards : 63] = n;
			r->shards++;
		}
		hug_free(t);
		hug_free(m);
		hug_free(off);
		shard_reader_close(sr);
		if (rc)
			return -1;
	}
}

static void write_file(const char *path, const char *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (f) {
		fwrite(data, 1, n, f);
		fclose(f);
	}
}

static char tmpdir[] = "/tmp/hug-prep-XXXXXX";

static const char TEXT[] =
	"First paragraph, line one.\n"
	"Line two of it.\n"
	"\n"
	"  \t\n"
	"Second: \xff broken UTF-8.\n"
	"\n"
	"Third paragraph \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\r\n";
static const char JSONL[] =
	"{\"text\": \"A JSON document.\"}\n"
	"{\"prompt\": \"Q: two plus two?\\nA:\", \"completion\": \" four\"}\n"
	"{\"text\": \"broken\"\n"
	"\n"
	"{\"title\": \"no text\"}\n"
	"{\"text\": \"\"}\n"
	"{\"text\": \"last \\u00e9t\\u00e9\"}\n"
	"{\"text\": \"cJSON would cut this at \\uZZZZ\"}\n";

/* The documents the corpus should give, in order: prompt (or NULL), text. */
static const char *const DOCS[][2] = {
	{ NULL, "First paragraph, line one.\nLine two of it." },
	{ NULL, "Third paragraph \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ NULL, "A JSON document." },
	{ "Q: two plus two?\nA:", " four" },
	{ NULL, "last \xc3\xa9t\xc3\xa9" },
};

static void rm_shards(const char *dir);

static void remove_tmpdir(void)
{
	rm_shards(tmpdir);
}

/* Makes the corpus files (once per process; removed at exit). */
static void setup(char *txt, char *jsonl, size_t cap)
{
	static bool made;
	if (!made && mkdtemp(tmpdir)) {
		made = true;
		atexit(remove_tmpdir);
	}
	if (made) {
		snprintf(txt, cap, "%s/corpus.txt", tmpdir);
		snprintf(jsonl, cap, "%s/data.jsonl", tmpdir);
		write_file(txt, TEXT, sizeof(TEXT) - 1);
		write_file(jsonl, JSONL, sizeof(JSONL) - 1);
	}
}

static int prepare_into(const char *out, const struct tokenizer *tok, int threads,
			size_t chunk, int64_t shard_tokens, bool fail, FILE *log,
			struct prepare_stats *st, struct hug_error *err)
{
	char txt[256], jsonl[256];
	setup(txt, jsonl, sizeof(txt));
	const char *files[] = { txt, jsonl };
	struct prepare_opts o = prepare_opts_default();
	o.out_dir = out;
	o.threads = threads;
	o.chunk_bytes = chunk;
	o.shard_tokens = shard_tokens;
	o.fail_on_error = fail;
	o.log = log;
	o.source = "test corpus";
	return prepare_run(tok, files, 2, &o, st, err);
}

static void rm_shards(const char *dir)
{
	char cmd[1600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
}

TEST(prepare_shards_hold_the_documents_and_masks)
{
	struct tokenizer *tok;
	struct hug_error err = { 0 };
	struct prepare_stats st;
	char out[300], *log_text = NULL;
	size_t log_len = 0;
	REQUIRE(tokenizer_load(TOK, &tok, &err) == 0);
	setup(out, out, sizeof(out));
	snprintf(out, sizeof(out), "%s/out", tmpdir);
	FILE *log = open_memstream(&log_text, &log_len);
	REQUIRE(prepare_into(out, tok, 2, 0, 1000000, false, log, &st, &err) == 0);
	fclose(log);
	CHECK(st.docs == 5 && st.shards == 1 && st.loss_mask);
	CHECK(st.skipped[PREPARE_SKIP_UTF8] == 1 && st.skipped[PREPARE_SKIP_JSON] == 2);
	CHECK(st.skipped[PREPARE_SKIP_FIELDS] == 1 && st.skipped[PREPARE_SKIP_EMPTY] == 1);
	/* FILE:LINE reports */
	CHECK(strstr(log_text, "corpus.txt:5: invalid UTF-8 (byte 0xFF at column 9); "
			       "the document (lines 5-5) is skipped") != NULL);
	CHECK(strstr(log_text, "data.jsonl:3: malformed JSON") != NULL);
	CHECK(strstr(log_text, "data.jsonl:5: expected an object") != NULL);
	CHECK(strstr(log_text, "data.jsonl:6") == NULL);
	CHECK(strstr(log_text, "data.jsonl:8: malformed JSON at column 35") != NULL);
	free(log_text);

	struct readback r;
	REQUIRE(read_shards(out, &r) == 0);
	CHECK(r.shards == 1 && r.has_mask && r.doc_len.n == 5);
	CHECK(r.meta.eos_id == 2 && r.meta.vocab_size == 600);
	CHECK(!strcmp(r.meta.tokenizer_hash, tokenizer_hash(tok)));
	CHECK(!strcmp(r.meta.source, "test corpus"));
	int64_t pos = 0;
	for (int d = 0; d < 5 && d < r.doc_len.n; d++) {
		struct tok_ids want = { 0 };
		int64_t np = DOCS[d][0] ? tokenizer_encode(tok, DOCS[d][0], strlen(DOCS[d][0]), &want) : 0;
		tokenizer_encode(tok, DOCS[d][1], strlen(DOCS[d][1]), &want);
		tok_ids_push(&want, 2);
		CHECK(r.doc_len.v[d] == want.n);
		for (int64_t i = 0; i < want.n && pos + i < r.tokens.n; i++) {
			CHECK(r.tokens.v[pos + i] == want.v[i]);
			CHECK(r.mask.p[pos + i] == (i >= np));
		}
		pos += want.n;
		tok_ids_free(&want);
	}
	CHECK(pos == r.tokens.n && st.tokens == pos);
	readback_free(&r);
	/* the directory now holds shards: a second run is refused */
	hug_error_clear(&err);
	CHECK(prepare_into(out, tok, 1, 0, 1000000, false, NULL, &st, &err) == -1);
	CHECK(strstr(err.msg, "already holds shards") != NULL);
	rm_shards(out);
	tokenizer_free(tok);
}

/* Tiny chunks, several shards: identical output for 1 and 3 threads. */
TEST(prepare_output_independent_of_threads_and_chunks)
{
	struct tokenizer *tok;
	struct hug_error err = { 0 };
	struct prepare_stats st;
	struct readback r[3];
	char out[300];
	static const int threads[] = { 1, 3, 2 };
	static const size_t chunks[] = { 0, 7, 40 };
	REQUIRE(tokenizer_load(TOK, &tok, &err) == 0);
	setup(out, out, sizeof(out));
	for (int k = 0; k < 3; k++) {
		snprintf(out, sizeof(out), "%s/out-%d", tmpdir, k);
		REQUIRE(prepare_into(out, tok, threads[k], chunks[k], 12, false, NULL, &st, &err) == 0);
		CHECK(st.docs == 5 && st.skipped[PREPARE_SKIP_JSON] == 2);
		REQUIRE(read_shards(out, &r[k]) == 0);
		rm_shards(out);
	}
	/* documents are never split: each shard but the last reaches 12 */
	CHECK(r[0].shards >= 3);
	for (int s = 0; s + 1 < r[0].shards && s < 64; s++)
		CHECK(r[0].shard_tokens[s] >= 12);
	for (int k = 1; k < 3; k++) {
		CHECK(r[k].shards == r[0].shards && r[k].tokens.n == r[0].tokens.n);
		CHECK(!memcmp(r[k].tokens.v, r[0].tokens.v, (size_t)r[0].tokens.n * 4));
		CHECK(!memcmp(r[k].mask.p, r[0].mask.p, r[0].mask.n));
		CHECK(r[k].doc_len.n == 5 &&
		      !memcmp(r[k].doc_len.v, r[0].doc_len.v, 5 * sizeof(int32_t)));
	}
	for (int k = 0; k < 3; k++)
		readback_free(&r[k]);
	tokenizer_free(tok);
}

TEST(prepare_fail_mode_stops_and_leaves_no_shards)
{
	struct tokenizer *tok;
	struct hug_error err = { 0 };
	struct prepare_stats st;
	char out[300];
	REQUIRE(tokenizer_load(TOK, &tok, &err) == 0);
	setup(out, out, sizeof(out));
	snprintf(out, sizeof(out), "%s/out-fail", tmpdir);
	/* small shards, so some are finished before the bad document */
	CHECK(prepare_into(out, tok, 2, 7, 5, true, NULL, &st, &err) == -1);
	CHECK(strstr(err.msg, "corpus.txt:5: invalid UTF-8") &&
	      strstr(err.msg, "--on-error fail"));
	struct readback r;
	CHECK(read_shards(out, &r) == 0 && r.shards == 0);
	readback_free(&r);
	rm_shards(out);
	/* no EOS token, no inputs, bad options */
	struct prepare_opts o = prepare_opts_default();
	const char *files[] = { "/nonexistent.txt" };
	o.out_dir = out;
	hug_error_clear(&err);
	CHECK(prepare_run(tok, files, 1, &o, &st, &err) == -1);
	CHECK(strstr(err.msg, "/nonexistent.txt: cannot open") != NULL);
	o.shard_tokens = 0;
	hug_error_clear(&err);
	CHECK(prepare_run(tok, files, 1, &o, &st, &err) == -1);
	CHECK(strstr(err.msg, "--shard-tokens") != NULL);
	tokenizer_free(tok);
	const char *no_eos = "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": "
			     "{\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}";
	REQUIRE(tokenizer_load_json(no_eos, strlen(no_eos), "x.json", &tok, &err) == 0);
	o.shard_tokens = 100;
	hug_error_clear(&err);
	CHECK(prepare_run(tok, files, 1, &o, &st, &err) == -1);
	CHECK(strstr(err.msg, "no end-of-document token") != NULL);
	tokenizer_free(tok);
}

TEST(cli_prepare_reports_and_summarises)
{
	const char *hug = getenv("HUG_BIN");
	if (!hug)
		SKIP("HUG_BIN not set (run through make test)");
	char txt[256], jsonl[256], cmd[1400], out[8192];
	setup(txt, jsonl, sizeof(txt));
	snprintf(cmd, sizeof(cmd), "%s prepare --tokenizer " TOK " --out %s/cli --threads 2 %s %s",
		 hug, tmpdir, txt, jsonl);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	CHECK(strstr(out, "corpus.txt:5: invalid UTF-8") && strstr(out, "data.jsonl:3: malformed"));
	CHECK(strstr(out, "prepared 5 documents") && strstr(out, "with loss masks"));
	CHECK(strstr(out, "into 1 shard in") != NULL);
	CHECK(strstr(out, "skipped 4 (1 invalid UTF-8, 2 malformed JSON, 1 missing fields)"));
	snprintf(cmd, sizeof(cmd), "%s prepare --tokenizer " TOK " --out %s/cli2 --on-error fail "
		 "%s", hug, tmpdir, jsonl);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 1 && strstr(out, "data.jsonl:3: malformed JSON"));
	snprintf(cmd, sizeof(cmd), "%s prepare --tokenizer " TOK " --out %s/cli3 --format csv %s",
		 hug, tmpdir, jsonl);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2 && strstr(out, "--format"));
	snprintf(cmd, sizeof(cmd), "%s/cli", tmpdir);
	rm_shards(cmd);
	snprintf(cmd, sizeof(cmd), "%s/cli2", tmpdir);
	rm_shards(cmd);
}

TEST(prepare_separator_splits_fortune_files)
{
	static const char FORTUNES[] =
		"First fortune,\n\nwith a blank line inside.\n%\n"
		"Second one.\n%\n%\n\nThird, after an empty entry.\n%\n";
	static const char *const want[] = { "First fortune,\n\nwith a blank line inside.",
					    "Second one.", "Third, after an empty entry." };
	struct tokenizer *tok;
	struct hug_error err = { 0 };
	struct prepare_stats st;
	char txt[256], jsonl[256], file[300], out[300];
	REQUIRE(tokenizer_load(TOK, &tok, &err) == 0);
	setup(txt, jsonl, sizeof(txt));
	snprintf(file, sizeof(file), "%s/fortunes.txt", tmpdir);
	snprintf(out, sizeof(out), "%s/out-sep", tmpdir);
	write_file(file, FORTUNES, sizeof(FORTUNES) - 1);
	const char *files[] = { file };
	for (int chunk = 0; chunk < 2; chunk++) {
		struct prepare_opts o = prepare_opts_default();
		o.out_dir = out;
		o.threads = 2;
		o.chunk_bytes = chunk ? 7 : 0; /* tiny chunks cut at separators too */
		o.format = PREPARE_TEXT;
		o.separator = "%";
		o.log = NULL;
		REQUIRE(prepare_run(tok, files, 1, &o, &st, &err) == 0);
		CHECK(st.docs == 3);
		struct readback r;
		REQUIRE(read_shards(out, &r) == 0);
		int64_t pos = 0;
		for (int d = 0; d < 3 && d < r.doc_len.n; d++) {
			struct tok_ids ids = { 0 };
			tokenizer_encode(tok, want[d], strlen(want[d]), &ids);
			CHECK(r.doc_len.v[d] == ids.n + 1); /* + EOS */
			CHECK(memcmp(r.tokens.v + pos, ids.v, (size_t)ids.n * sizeof(int32_t)) == 0);
			pos += r.doc_len.v[d];
			tok_ids_free(&ids);
		}
		readback_free(&r);
		rm_shards(out);
	}
	tokenizer_free(tok);
}
