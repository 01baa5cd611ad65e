/* test_tokenizer_train.c: hug's BPE trainer. On the committed corpus it
 * must make exactly the vocabulary and merges of HF's BpeTrainer (same
 * settings; tools/ref/make_tokenizer_fixtures.py), write the same file on
 * every run, and its file must encode in hug as HF encodes it. Also the
 * `hug tokenize` and `hug tokenizer train` commands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/json.h"
#include "../data/tokenizer.h"
#include "harness.h"

#define FIX "tests/fixtures/tokenizer/"

static const char *const SPECIAL[] = { "<unk>", "<s>", "</s>", "<pad>" };

static int train_to(const char *out, enum tok_pretok_kind kind, int64_t vocab,
		    struct hug_error *err)
{
	const char *files[] = { FIX "corpus.txt" };
	struct tok_train_opts o = { .vocab_size = vocab, .special = SPECIAL, .n_special = 4,
				    .pretok = kind };
	return tokenizer_train(files, 1, &o, out, err);
}

static bool same_hash(const char *a, const char *b)
{
	struct tokenizer *ta = NULL, *tb = NULL;
	struct hug_error err = { 0 };
	bool same = !tokenizer_load(a, &ta, &err) && !tokenizer_load(b, &tb, &err) &&
		    !strcmp(tokenizer_hash(ta), tokenizer_hash(tb));
	if (err.set)
		fprintf(stderr, "%s\n", err.msg);
	tokenizer_free(ta);
	tokenizer_free(tb);
	return same;
}

TEST(tokenizer_train_matches_hf_trainer_and_is_deterministic)
{
	char a[] = "/tmp/hug-tt-a-XXXXXX", b[] = "/tmp/hug-tt-b-XXXXXX";
	struct hug_error err = { 0 };
	close(mkstemp(a));
	close(mkstemp(b));
	REQUIRE(train_to(a, TOK_PRETOK_GPT2, 500, &err) == 0);
	REQUIRE(train_to(b, TOK_PRETOK_GPT2, 500, &err) == 0);
	size_t na, nb, nc;
	char *ca = test_read_file(a, &na), *cb = test_read_file(b, &nb), *cc = test_read_file(FIX "hug_trained.json", &nc);
	REQUIRE(ca && cb && cc);
	CHECK(na == nb && !memcmp(ca, cb, na));
	CHECK(na == nc && !memcmp(ca, cc, na));
	/* the same vocabulary, merges and specials as HF's BpeTrainer */
	CHECK(same_hash(a, FIX "hf_trained.json"));
	REQUIRE(train_to(b, TOK_PRETOK_BLOOM, 500, &err) == 0);
	CHECK(same_hash(b, FIX "hf_trained_bloom.json"));
	CHECK(!same_hash(a, b));
	hug_free(ca);
	hug_free(cb);
	hug_free(cc);
	unlink(a);
	unlink(b);
}

/* hug encodes its own trained file exactly as HF does. */
TEST(tokenizer_trained_file_encodes_like_hf)
{
	size_t n;
	char *ex = test_read_file(FIX "expected.json", &n), *ids_text = test_read_file(FIX "hug_trained_expected.json", &n);
	REQUIRE(ex && ids_text);
	hug_json_init();
	cJSON *texts = cJSON_Parse(ex), *ids = cJSON_Parse(ids_text);
	struct tokenizer *tok;
	struct hug_error err = { 0 };
	REQUIRE(tokenizer_load(FIX "hug_trained.json", &tok, &err) == 0);
	CHECK(tokenizer_eos_id(tok) == 2 && tokenizer_token_id(tok, "<pad>") == 3);
	CHECK(tokenizer_vocab_size(tok) == 500);
	const cJSON *tl = cJSON_GetObjectItem(texts, "texts");
	const cJSON *il = cJSON_GetObjectItem(ids, "ids");
	REQUIRE(cJSON_GetArraySize(tl) == cJSON_GetArraySize(il));
	for (int i = 0; i < cJSON_GetArraySize(tl); i++) {
		const char *hex = cJSON_GetArrayItem(tl, i)->valuestring;
		size_t len = strlen(hex) / 2;
		char *s = hug_malloc(len + 1);
		for (size_t k = 0; k < len; k++) {
			unsigned v;
			sscanf(hex + 2 * k, "%2x", &v);
			s[k] = (char)v;
		}
		struct tok_ids got = { 0 };
		tokenizer_encode(tok, s, len, &got);
		const cJSON *want = cJSON_GetArrayItem(il, i);
		bool same = got.n == cJSON_GetArraySize(want);
		for (int64_t k = 0; same && k < got.n; k++)
			same = got.v[k] == cJSON_GetArrayItem(want, (int)k)->valueint;
		if (!same)
			test_fail_at(__FILE__, __LINE__, "text %d differs from HF", i);
		tok_ids_free(&got);
		hug_free(s);
	}
	tokenizer_free(tok);
	cJSON_Delete(texts);
	cJSON_Delete(ids);
	hug_free(ex);
	hug_free(ids_text);
}

TEST(tokenizer_train_rejects_bad_options)
{
	struct hug_error err = { 0 };
	CHECK(train_to("/tmp/hug-never.json", TOK_PRETOK_GPT2, 100, &err) == -1);
	CHECK(strstr(err.msg, "--vocab-size 100 is smaller than the 4 special and 256") != NULL);
	const char *dup[] = { "<s>", "<s>" }, *byte[] = { "a" };
	const char *files[] = { FIX "corpus.txt" };
	struct tok_train_opts o = { .vocab_size = 300, .special = dup, .n_special = 2 };
	hug_error_clear(&err);
	CHECK(tokenizer_train(files, 1, &o, "/tmp/hug-never.json", &err) == -1);
	CHECK(strstr(err.msg, "\"<s>\" is given twice") != NULL);
	o.special = byte;
	o.n_special = 1;
	hug_error_clear(&err);
	CHECK(tokenizer_train(files, 1, &o, "/tmp/hug-never.json", &err) == -1);
	CHECK(strstr(err.msg, "\"a\" is also a byte token") != NULL);
	const char *missing[] = { "/nonexistent/corpus.txt" };
	o.special = SPECIAL;
	o.n_special = 4;
	hug_error_clear(&err);
	CHECK(tokenizer_train(missing, 1, &o, "/tmp/hug-never.json", &err) == -1);
	CHECK(strstr(err.msg, "/nonexistent/corpus.txt: cannot open") != NULL);
	CHECK(access("/tmp/hug-never.json", F_OK) != 0);
}

/* --- the commands --- */

TEST(cli_tokenize_encodes_and_decodes)
{
	const char *hug = getenv("HUG_BIN");
	if (!hug)
		SKIP("HUG_BIN not set (run through make test)");
	char cmd[1024], out[4096], text[] = "/tmp/hug-tok-XXXXXX";
	/* HF: Tokenizer.from_file("bloom.json").encode("Hello, world!").ids */
	const char *ids = "43,72,440,82,15,340,328,79,71,4";
	snprintf(cmd, sizeof(cmd), "%s tokenize --tokenizer " FIX "bloom.json 'Hello, world!'", hug);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	out[strcspn(out, "\n")] = '\0';
	CHECK(!strcmp(out, ids));
	snprintf(cmd, sizeof(cmd), "%s tokenize --tokenizer " FIX "bloom.json --decode %s", hug, ids);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	CHECK(!strcmp(out, "Hello, world!\n"));
	int fd = mkstemp(text);
	REQUIRE(fd >= 0);
	CHECK(write(fd, "Hello, world!", 13) == 13);
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s tokenize --tokenizer " FIX "bloom.json --file %s", hug, text);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	out[strcspn(out, "\n")] = '\0';
	CHECK(!strcmp(out, ids));
	unlink(text);
	snprintf(cmd, sizeof(cmd), "%s tokenize --tokenizer " FIX "bloom.json --decode 1,x", hug);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2 && strstr(out, "--decode: entry 2"));
	snprintf(cmd, sizeof(cmd), "%s tokenize --tokenizer " FIX "bloom.json --decode 99999", hug);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2 && strstr(out, "id 99999"));
	snprintf(cmd, sizeof(cmd), "%s tokenize --tokenizer " FIX "corpus.txt hi", hug);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2 && strstr(out, "corpus.txt:1:"));
}

TEST(cli_tokenizer_train_writes_a_loadable_file)
{
	const char *hug = getenv("HUG_BIN");
	if (!hug)
		SKIP("HUG_BIN not set (run through make test)");
	char cmd[1024], out[4096], dst[] = "/tmp/hug-trained-XXXXXX";
	close(mkstemp(dst));
	snprintf(cmd, sizeof(cmd), "%s tokenizer train --quiet --vocab-size 500 --out %s "
		 FIX "corpus.txt", hug, dst);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	CHECK(same_hash(dst, FIX "hf_trained.json"));
	snprintf(cmd, sizeof(cmd), "%s tokenizer info %s", hug, dst);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	CHECK(strstr(out, "\"vocab_size\": 500") && strstr(out, "\"eos_id\": 2"));
	snprintf(cmd, sizeof(cmd), "%s tokenizer train --vocab-size 500 --out %s "
		 "--pre-tokenizer sentencepiece " FIX "corpus.txt", hug, dst);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2 && strstr(out, "--pre-tokenizer"));
	unlink(dst);
}
