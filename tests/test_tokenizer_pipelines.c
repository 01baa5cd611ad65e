/* test_tokenizer_pipelines.c: hug's tokenizer against Hugging Face
 * tokenizers on the pipeline shapes of the major open models (Llama 3,
 * Qwen2, Llama 2/Mistral, Gemma, GPT-2 with specials in the text) and on
 * the other pre-tokenizers, normalizers and decoders it reads. The
 * tokenizer.json files were trained by the tokenizers library and the
 * expected ids and decoded strings are its own
 * (tools/ref/make_tokenizer_fixtures.py --pipelines): ids with and
 * without special tokens, and decode with and without skipping them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/json.h"
#include "../data/tokenizer.h"
#include "harness.h"

#define PIPE "tests/fixtures/tokenizer/pipelines/"

static bool same_ids(const struct tok_ids *got, const cJSON *want)
{
	if (got->n != cJSON_GetArraySize(want))
		return false;
	int i = 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, want)
		if (got->v[i++] != (int32_t)v->valuedouble)
			return false;
	return true;
}

static void print_ids(const char *what, const struct tok_ids *ids)
{
	fprintf(stderr, "      %s:", what);
	for (int64_t i = 0; i < ids->n && i < 40; i++)
		fprintf(stderr, " %d", ids->v[i]);
	fprintf(stderr, "\n");
}

/* Ids from a JSON array. */
static void json_ids(const cJSON *a, struct tok_ids *out)
{
	const cJSON *v;
	out->n = 0;
	cJSON_ArrayForEach(v, a)
		tok_ids_push(out, (int32_t)v->valuedouble);
}

/* Checks one fixture on every text; returns the number of mismatches. */
static int check_pipeline(const char *name, const cJSON *texts, const cJSON *f)
{
	char path[256];
	struct tokenizer *tok;
	struct hug_error err = { 0 };
	snprintf(path, sizeof(path), PIPE "%s.json", name);
	if (tokenizer_load(path, &tok, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return 1;
	}
	const cJSON *ids = cJSON_GetObjectItem(f, "ids");
	const cJSON *ids_sp = cJSON_GetObjectItem(f, "ids_special");
	const cJSON *dec = cJSON_GetObjectItem(f, "decoded");
	const cJSON *dec_skip = cJSON_GetObjectItem(f, "decoded_skip");
	struct tok_encoder *enc = tok_encoder_new(tok);
	int bad = 0, n = cJSON_GetArraySize(ids);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			size_t len;
			char *text = test_unhex(cJSON_GetArrayItem(texts, i)->valuestring, &len);
			struct tok_ids got = { 0 }, want = { 0 };
			if (pass == 0)
				tokenizer_encode(tok, text, len, &got);
			else
				tok_encoder_encode(enc, text, len, &got);
			if (!same_ids(&got, cJSON_GetArrayItem(ids, i))) {
				if (bad++ < 4) {
					fprintf(stderr, "    %s text %d (%.60s): ids differ\n", name, i,
						text);
					json_ids(cJSON_GetArrayItem(ids, i), &want);
					print_ids("hug", &got);
					print_ids("HF ", &want);
				}
			}
			if (i < cJSON_GetArraySize(ids_sp)) {
				got.n = 0;
				if (pass == 0)
					tokenizer_encode_special(tok, text, len, true, &got);
				else
					tok_encoder_encode_special(enc, text, len, true, &got);
				if (!same_ids(&got, cJSON_GetArrayItem(ids_sp, i)) && bad++ < 4)
					fprintf(stderr, "    %s text %d: ids with specials differ\n",
						name, i);
				/* decode the HF ids both ways */
				json_ids(cJSON_GetArrayItem(ids, i), &want);
				for (int skip = 0; skip < 2 && pass == 0; skip++) {
					struct buf out = { 0 };
					size_t wl;
					char *w = test_unhex(cJSON_GetArrayItem(skip ? dec_skip : dec, i)
							->valuestring, &wl);
					if (tokenizer_decode(tok, want.v, want.n, skip, &out, &err) ||
					    out.n != wl || memcmp(out.p, w, wl)) {
						if (bad++ < 4)
							fprintf(stderr, "    %s text %d: decode (skip %d) "
								"gives \"%.80s\", HF \"%.80s\"\n",
								name, i, skip, out.p ? out.p : "", w);
					}
					hug_free(w);
					buf_free(&out);
				}
			}
			tok_ids_free(&got);
			tok_ids_free(&want);
			hug_free(text);
		}
	}
	/* random id sequences: every decoder step on what a model may emit
	 * (byte tokens cut mid-character, specials, invalid UTF-8) */
	const cJSON *rid = cJSON_GetObjectItem(f, "random_ids");
	for (int i = 0; i < cJSON_GetArraySize(rid); i++) {
		struct tok_ids want = { 0 };
		json_ids(cJSON_GetArrayItem(rid, i), &want);
		for (int skip = 0; skip < 2; skip++) {
			const cJSON *d = cJSON_GetObjectItem(f, skip ? "random_decoded_skip"
								     : "random_decoded");
			struct buf out = { 0 };
			size_t wl;
			char *w = test_unhex(cJSON_GetArrayItem(d, i)->valuestring, &wl);
			if (tokenizer_decode(tok, want.v, want.n, skip, &out, &err) || out.n != wl ||
			    memcmp(out.p, w, wl)) {
				if (bad++ < 4) {
					fprintf(stderr, "    %s random %d: decode (skip %d) gives "
						"\"%.80s\", HF \"%.80s\"\n", name, i, skip,
						out.p ? out.p : "", w);
					print_ids("ids", &want);
				}
			}
			hug_free(w);
			buf_free(&out);
		}
		tok_ids_free(&want);
	}
	CHECK(cJSON_GetArraySize(rid) >= 24);
	tok_encoder_free(enc);
	tokenizer_free(tok);
	return bad;
}

TEST(tokenizer_pipelines_match_hf)
{
	hug_json_init();
	char *text = test_read_file(PIPE "EXPECTED.json", NULL);
	REQUIRE(text != NULL);
	cJSON *exp = cJSON_Parse(text);
	hug_free(text);
	REQUIRE(exp != NULL);
	const cJSON *texts = cJSON_GetObjectItem(exp, "texts");
	const cJSON *fix = cJSON_GetObjectItem(exp, "fixtures"), *f;
	int n = 0;
	cJSON_ArrayForEach(f, fix) {
		int bad = check_pipeline(f->string, texts, f);
		if (bad)
			test_fail_at(__FILE__, __LINE__, "%s: %d mismatches", f->string, bad);
		n++;
	}
	CHECK(n >= 13);
	cJSON_Delete(exp);
}

/* `hug tokenize` adds the template's special tokens (Llama 3's
 * <|begin_of_text|>, id 0 in the fixture) unless --no-special-tokens,
 * giving the library's ids either way. */
TEST(cli_tokenize_adds_template_special_tokens)
{
	const char *bin = getenv("HUG_BIN");
	if (!bin) {
		test_skip("HUG_BIN not set");
		return;
	}
	struct tokenizer *tok;
	struct hug_error err = { 0 };
	REQUIRE(tokenizer_load(PIPE "llama3.json", &tok, &err) == 0);
	static const char text[] = "Hello world, it is 12345!";
	for (int special = 0; special < 2; special++) {
		struct tok_ids ids = { 0 };
		struct buf want = { 0 };
		char cmd[512], out[4096];
		tokenizer_encode_special(tok, text, strlen(text), special, &ids);
		CHECK((ids.n > 0 && ids.v[0] == 0) == (special == 1));
		for (int64_t i = 0; i < ids.n; i++)
			buf_printf(&want, "%s%d", i ? "," : "", ids.v[i]);
		buf_put(&want, "\n", 1);
		snprintf(cmd, sizeof(cmd), "%s tokenize --tokenizer " PIPE "llama3.json %s '%s'",
			 bin, special ? "" : "--no-special-tokens", text);
		CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
		CHECK(!strcmp(out, want.p));
		buf_free(&want);
		tok_ids_free(&ids);
	}
	tokenizer_free(tok);
}

/* A model directory loads its tokenizer.json; one without names the file. */
TEST(tokenizer_loads_from_a_model_directory)
{
	struct tokenizer *a, *b;
	struct hug_error err = { 0 };
	REQUIRE(tokenizer_load(PIPE "llama3.json", &a, &err) == 0);
	CHECK(system("rm -rf /tmp/hug-tok-dir && mkdir -p /tmp/hug-tok-dir/empty && "
		     "cp " PIPE "llama3.json /tmp/hug-tok-dir/tokenizer.json") == 0);
	REQUIRE(tokenizer_load("/tmp/hug-tok-dir", &b, &err) == 0);
	CHECK(!strcmp(tokenizer_hash(a), tokenizer_hash(b)));
	tokenizer_free(b);
	REQUIRE(tokenizer_load("/tmp/hug-tok-dir/", &b, &err) == 0);
	tokenizer_free(b);
	CHECK(tokenizer_load("/tmp/hug-tok-dir/empty", &b, &err) == -1);
	CHECK(strstr(err.msg, "/tmp/hug-tok-dir/empty/tokenizer.json") != NULL);
	tokenizer_free(a);
	CHECK(system("rm -rf /tmp/hug-tok-dir") == 0);
}

/* `hug prepare` puts the template's BOS before each document (Llama 3's
 * <|begin_of_text|>) and EOS after, and only EOS with --no-special-tokens;
 * with gpt2_special's "$A <|endoftext|>" template the EOS is not doubled. */
TEST(cli_prepare_adds_template_special_tokens)
{
	const char *bin = getenv("HUG_BIN");
	if (!bin) {
		test_skip("HUG_BIN not set");
		return;
	}
	static const char *const docs[] = { "Hello world, it is 12345!", "Zweites Dokument." };
	static const char *const names[] = { "llama3", "gpt2_special" };
	CHECK(system("rm -rf /tmp/hug-tok-prep && mkdir -p /tmp/hug-tok-prep") == 0);
	test_write_file("/tmp/hug-tok-prep/in.txt", "Hello world, it is 12345!\n\nZweites Dokument.\n");
	for (int t = 0; t < 2; t++) {
		char path[256];
		struct tokenizer *tok;
		struct hug_error err = { 0 };
		snprintf(path, sizeof(path), PIPE "%s.json", names[t]);
		REQUIRE(tokenizer_load(path, &tok, &err) == 0);
		for (int special = 0; special < 2; special++) {
			struct tok_ids ids = { 0 };
			for (int d = 0; d < 2; d++) {
				tokenizer_encode_special(tok, docs[d], strlen(docs[d]), special, &ids);
				if (ids.v[ids.n - 1] != tokenizer_eos_id(tok))
					tok_ids_push(&ids, tokenizer_eos_id(tok));
			}
			char cmd[512], out[4096], want[64];
			snprintf(cmd, sizeof(cmd), "rm -rf /tmp/hug-tok-prep/out && %s prepare "
				 "--tokenizer %s --out /tmp/hug-tok-prep/out --quiet %s "
				 "/tmp/hug-tok-prep/in.txt", bin, path,
				 special ? "" : "--no-special-tokens");
			CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
			snprintf(want, sizeof(want), "prepared 2 documents, %lld tokens",
				 (long long)ids.n);
			if (!strstr(out, want))
				test_fail_at(__FILE__, __LINE__, "%s: expected \"%s\" in %s", names[t],
					     want, out);
			tok_ids_free(&ids);
		}
		tokenizer_free(tok);
	}
	CHECK(system("rm -rf /tmp/hug-tok-prep") == 0);
}
