/* test_tokenizer.c: hug's byte-level BPE against Hugging Face tokenizers.
 * tests/fixtures/tokenizer/ holds tokenizer.json files trained by the
 * tokenizers library and the ids its encode() gives on multilingual texts
 * (tools/ref/make_tokenizer_fixtures.py); hug must give the same ids,
 * decode them back to the same bytes, and refuse what it does not
 * implement with messages that name the JSON path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/json.h"
#include "../base/sha256.h"
#include "../data/tokenizer.h"
#include "../data/tokenizer_impl.h"
#include "../data/utf8.h"
#include "harness.h"

#define FIX "tests/fixtures/tokenizer/"

static cJSON *load_expected(const char *name)
{
	hug_json_init();
	char *text = test_read_file(name, NULL);
	if (!text)
		return NULL;
	cJSON *j = cJSON_Parse(text);
	hug_free(text);
	return j;
}

/* Encodes every text with the fixture `name` (through a caching encoder
 * and the plain call) and compares with HF's ids; returns the mismatches. */
static int check_fixture(const char *name, const cJSON *texts, const cJSON *ids)
{
	char path[256];
	struct tokenizer *tok;
	struct hug_error err = { 0 };
	snprintf(path, sizeof(path), FIX "%s.json", name);
	if (tokenizer_load(path, &tok, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return 1;
	}
	struct tok_encoder *enc = tok_encoder_new(tok);
	int bad = 0, n = cJSON_GetArraySize(ids);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			size_t len;
			char *s = test_unhex(cJSON_GetArrayItem(texts, i)->valuestring, &len);
			const cJSON *want = cJSON_GetArrayItem(ids, i);
			struct tok_ids got = { 0 };
			if (pass)
				tok_encoder_encode(enc, s, len, &got);
			else
				tokenizer_encode(tok, s, len, &got);
			bool same = got.n == cJSON_GetArraySize(want);
			for (int64_t k = 0; same && k < got.n; k++)
				same = got.v[k] == cJSON_GetArrayItem(want, (int)k)->valueint;
			if (!same) {
				bad++;
				test_fail_at(__FILE__, __LINE__, "%s: text %d (%zu bytes): %lld ids, "
					     "HF has %d", name, i, len, (long long)got.n,
					     cJSON_GetArraySize(want));
			}
			tok_ids_free(&got);
			hug_free(s);
		}
	}
	tok_encoder_free(enc);
	tokenizer_free(tok);
	return bad;
}

TEST(tokenizer_matches_hf_on_multilingual_text)
{
	cJSON *exp = load_expected(FIX "expected.json");
	REQUIRE(exp);
	const cJSON *texts = cJSON_GetObjectItem(exp, "texts");
	const cJSON *all = cJSON_GetObjectItem(exp, "ids"), *e;
	int n_fixtures = 0;
	cJSON_ArrayForEach(e, all) {
		CHECK(check_fixture(e->string, texts, e) == 0);
		n_fixtures++;
	}
	CHECK(n_fixtures == 6);
	cJSON_Delete(exp);
}

/* decode(encode(x)) == x for the texts and for random byte strings. */
/* String::from_utf8_lossy's (and Python's errors="replace") U+FFFD per
 * maximal ill-formed subpart, on the cases that tell the rules apart. */
TEST(utf8_lossy_replaces_maximal_subparts)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "\xe2\x82", "\xef\xbf\xbd" },                       /* cut 3-byte */
		{ "\xf0\x9f\x98" "a", "\xef\xbf\xbd" "a" },              /* cut 4-byte */
		{ "\xe0\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* overlong */
		{ "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* surrogate */
		{ "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xf1\x80\x80\xe1", "\xef\xbf\xbd\xef\xbf\xbd" },
		{ "ok\xe2\x82\xacx\x80", "ok\xe2\x82\xacx\xef\xbf\xbd" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = { 0 };
		utf8_append_lossy(&b, (const uint8_t *)cases[i].in, strlen(cases[i].in));
		if (b.n != strlen(cases[i].out) || memcmp(b.p, cases[i].out, b.n))
			test_fail_at(__FILE__, __LINE__, "case %zu: %zu bytes out", i, b.n);
		buf_free(&b);
	}
}

TEST(tokenizer_decode_inverts_encode)
{
	static const char *const names[] = { FIX "gpt2.json", FIX "bloom.json",
					     FIX "gpt2_ignore_merges.json" };
	cJSON *exp = load_expected(FIX "expected.json");
	REQUIRE(exp);
	const cJSON *texts = cJSON_GetObjectItem(exp, "texts"), *t;
	unsigned seed = 7;
	for (int k = 0; k < 3; k++) {
		struct tokenizer *tok;
		struct hug_error err = { 0 };
		REQUIRE(tokenizer_load(names[k], &tok, &err) == 0);
		struct tok_ids ids = { 0 };
		struct buf back = { 0 };
		cJSON_ArrayForEach(t, texts) {
			size_t len;
			char *s = test_unhex(t->valuestring, &len);
			ids.n = 0;
			tokenizer_encode(tok, s, len, &ids);
			CHECK(tokenizer_decode(tok, ids.v, ids.n, false, &back, &err) == 0);
			/* <mask> strips the spaces around it (lstrip/rstrip);
			 * invalid UTF-8 comes back as U+FFFD */
			struct buf want = { 0 };
			utf8_append_lossy(&want, (const uint8_t *)s, len);
			CHECK((back.n == want.n && !memcmp(back.p, want.p, want.n)) ||
			      strstr(s, "<mask>"));
			buf_free(&want);
			hug_free(s);
		}
		for (int r = 0; r < 300; r++) {
			char s[200];
			size_t len = (size_t)(rand_r(&seed) % 200);
			for (size_t i = 0; i < len; i++) {
				int v = rand_r(&seed);
				/* mostly text-like bytes, some anything */
				s[i] = (char)(v % 5 ? " ae'\n\t1.<\xc3\xa9\xe4\xb8\xad"[v % 15] : v >> 8);
			}
			ids.n = 0;
			tokenizer_encode(tok, s, len, &ids);
			CHECK(tokenizer_decode(tok, ids.v, ids.n, false, &back, &err) == 0);
			/* valid UTF-8 comes back as it was; invalid bytes as the
			 * library writes them (U+FFFD per maximal subpart) */
			struct buf want = { 0 };
			utf8_append_lossy(&want, (const uint8_t *)s, len);
			CHECK(back.n == want.n && !memcmp(back.p, want.p, want.n));
			CHECK(utf8_find_invalid((const uint8_t *)s, len) >= 0 ||
			      (back.n == len && !memcmp(back.p, s, len)));
			buf_free(&want);
		}
		tok_ids_free(&ids);
		buf_free(&back);
		tokenizer_free(tok);
	}
	cJSON_Delete(exp);
}

TEST(tokenizer_special_ids_and_hash)
{
	struct tokenizer *g, *s, *b;
	struct hug_error err = { 0 };
	REQUIRE(tokenizer_load(FIX "gpt2.json", &g, &err) == 0);
	REQUIRE(tokenizer_load(FIX "gpt2_strmerges.json", &s, &err) == 0);
	REQUIRE(tokenizer_load(FIX "bloom.json", &b, &err) == 0);
	CHECK(tokenizer_eos_id(g) == tokenizer_token_id(g, "<|endoftext|>"));
	CHECK(tokenizer_eos_id(g) == 0);
	CHECK(tokenizer_token_id(b, "<unk>") == 0 && tokenizer_token_id(b, "<s>") == 1);
	CHECK(tokenizer_eos_id(b) == 2 && tokenizer_token_id(b, "<pad>") == 3);
	CHECK(tokenizer_token_id(b, "no such token") == -1);
	CHECK(tokenizer_vocab_size(b) == 600);
	CHECK(tokenizer_vocab_size(g) == 602); /* 600 + <mask> + [NOTE] */
	/* the two merge notations are one tokenizer */
	CHECK(!strcmp(tokenizer_hash(g), tokenizer_hash(s)));
	CHECK(strcmp(tokenizer_hash(g), tokenizer_hash(b)) != 0);
	CHECK(!strncmp(tokenizer_hash(g), "sha256:", 7) && strlen(tokenizer_hash(g)) == 71);
	CHECK(tokenizer_n_merges(g) == tokenizer_n_merges(s) && tokenizer_n_merges(g) > 300);
	/* special tokens can be skipped when decoding; bad ids are errors */
	struct tok_ids ids = { 0 };
	struct buf out = { 0 };
	tokenizer_encode(b, "<s>hi</s>", 9, &ids);
	CHECK(ids.n >= 3 && ids.v[0] == 1 && ids.v[ids.n - 1] == 2);
	CHECK(tokenizer_decode(b, ids.v, ids.n, true, &out, &err) == 0 && !strcmp(out.p, "hi"));
	int32_t badid[] = { 5, 600 };
	CHECK(tokenizer_decode(b, badid, 2, false, &out, &err) == -1);
	CHECK(strstr(err.msg, "token 1: id 600") != NULL);
	tok_ids_free(&ids);
	buf_free(&out);
	tokenizer_free(g);
	tokenizer_free(s);
	tokenizer_free(b);
}

/* The heap merge (long words) and the rank scan (short ones) agree. */
TEST(tokenizer_heap_and_scan_merges_agree)
{
	struct tokenizer *tok;
	struct hug_error err = { 0 };
	REQUIRE(tokenizer_load(FIX "gpt2.json", &tok, &err) == 0);
	unsigned seed = 11;
	const char *alpha = "the quick brown fox é中аб12 ";
	for (int r = 0; r < 500; r++) {
		int32_t a[80], b[80];
		int n = 1 + rand_r(&seed) % 80;
		for (int i = 0; i < n; i++)
			a[i] = b[i] = tok->byte_id[(uint8_t)alpha[rand_r(&seed) % strlen(alpha)]];
		int na = tok_bpe_scan(tok, a, n), nb = tok_bpe_heap(tok, b, n);
		CHECK(na == nb && !memcmp(a, b, (size_t)na * sizeof(int32_t)));
	}
	tokenizer_free(tok);
}

/* A minimal valid tokenizer.json with `pre`, `model_extra` and `merges`
 * spliced in. */
static int load_variant(const char *pre, const char *model_type, const char *merges,
			const char *extra, struct hug_error *err)
{
	char json[4096];
	struct tokenizer *tok = NULL;
	snprintf(json, sizeof(json),
		 "{\"version\": \"1.0\", %s\n\"pre_tokenizer\": %s,\n"
		 "\"model\": {\"type\": \"%s\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, "
		 "\"\\u0120\": 3}, \"merges\": %s}}",
		 extra, pre, model_type, merges);
	hug_error_clear(err);
	int rc = tokenizer_load_json(json, strlen(json), "t.json", &tok, err);
	tokenizer_free(tok);
	return rc;
}

#define BL "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}"

TEST(tokenizer_refuses_unsupported_features_by_path)
{
	struct hug_error err = { 0 };
	CHECK(load_variant(BL, "BPE", "[\"a b\"]", "", &err) == 0);
	CHECK(load_variant(BL, "BPE", "[[\"a\", \"b\"]]", "", &err) == 0);
	CHECK(load_variant(BL, "WordPiece", "[]", "", &err) == -1);
	CHECK(strstr(err.msg, "t.json: model.type") && strstr(err.msg, "WordPiece"));
	CHECK(load_variant(BL, "Unigram", "[]", "", &err) == -1);
	CHECK(strstr(err.msg, "t.json: model.type") && strstr(err.msg, "Unigram"));
	CHECK(load_variant("{\"type\": \"BertPreTokenizer\"}", "BPE", "[]", "", &err) == -1);
	CHECK(strstr(err.msg, "t.json: pre_tokenizer.type") && strstr(err.msg, "BertPreTokenizer"));
	CHECK(load_variant("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
			   "\"CharDelimiterSplit\"}, " BL "]}", "BPE", "[]", "", &err) == -1);
	CHECK(strstr(err.msg, "pre_tokenizer.pretokenizers[0].type") &&
	      strstr(err.msg, "CharDelimiterSplit"));
	/* a regex Oniguruma cannot compile: the path and Oniguruma's reason */
	CHECK(load_variant("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
			   "\"pattern\": {\"Regex\": \"(a\"}, \"behavior\": \"Isolated\"}, "
			   BL "]}", "BPE", "[]", "", &err) == -1);
	CHECK(strstr(err.msg, "pre_tokenizer.pretokenizers[0].pattern.Regex") &&
	      strstr(err.msg, "\"(a\""));
	CHECK(load_variant("{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, "
			   "\"behavior\": \"Sideways\"}", "BPE", "[]", "", &err) == -1);
	CHECK(strstr(err.msg, "pre_tokenizer.behavior") != NULL);
	CHECK(load_variant("{\"type\": \"Sequence\", \"pretokenizers\": [" BL ", {\"type\": "
			   "\"Digits\"}]}", "BPE", "[]", "", &err) == -1);
	CHECK(strstr(err.msg, "ByteLevel step must be the last") != NULL);
	CHECK(load_variant(BL, "BPE", "[]", "\"normalizer\": {\"type\": \"BertNormalizer\"},",
			   &err) == -1);
	CHECK(strstr(err.msg, "t.json: normalizer.type") && strstr(err.msg, "BertNormalizer"));
	CHECK(load_variant(BL, "BPE", "[]", "\"normalizer\": {\"type\": \"Sequence\", "
			   "\"normalizers\": [{\"type\": \"NFC\"}, {\"type\": \"Precompiled\"}]},",
			   &err) == -1);
	CHECK(strstr(err.msg, "normalizer.normalizers[1].type") && strstr(err.msg, "Precompiled"));
	CHECK(load_variant(BL, "BPE", "[]", "\"decoder\": {\"type\": \"WordPiece\"},", &err) == -1);
	CHECK(strstr(err.msg, "decoder.type") && strstr(err.msg, "WordPiece"));
	CHECK(load_variant(BL, "BPE", "[]", "\"post_processor\": {\"type\": \"RobertaProcessing\"},",
			   &err) == -1);
	CHECK(strstr(err.msg, "post_processor.type") && strstr(err.msg, "RobertaProcessing"));
	CHECK(load_variant(BL, "BPE", "[], \"continuing_subword_prefix\": \"##\"", "", &err) == -1);
	CHECK(strstr(err.msg, "model.continuing_subword_prefix") != NULL);
	CHECK(load_variant(BL, "BPE", "[], \"dropout\": 0.1", "", &err) == -1);
	CHECK(strstr(err.msg, "model.dropout") != NULL);
	CHECK(load_variant(BL, "BPE", "[], \"unk_token\": \"<unk>\"", "", &err) == -1);
	CHECK(strstr(err.msg, "model.unk_token: \"<unk>\" is not in model.vocab") != NULL);
	/* now supported */
	CHECK(load_variant("null", "BPE", "[]", "\"normalizer\": {\"type\": \"NFKC\"},", &err) == 0);
	CHECK(load_variant("{\"type\": \"Metaspace\", \"replacement\": \"_\", "
			   "\"prepend_scheme\": \"first\", \"split\": false}", "BPE", "[]",
			   "\"decoder\": {\"type\": \"Metaspace\"},", &err) == 0);
	CHECK(load_variant(BL, "BPE", "[]", "\"added_tokens\": [{\"id\": 5, \"content\": \"x\", "
			   "\"single_word\": true}],", &err) == 0);
}

TEST(tokenizer_malformed_json_names_the_path)
{
	struct hug_error err = { 0 };
	struct tokenizer *tok = NULL;
	CHECK(load_variant(BL, "BPE", "[\"a b\", 7]", "", &err) == -1);
	CHECK(strstr(err.msg, "t.json: model.merges[1]: expected \"a b\" or [\"a\", \"b\"]"));
	CHECK(load_variant(BL, "BPE", "[\"a  b\"]", "", &err) == -1);
	CHECK(strstr(err.msg, "model.merges[0]") != NULL);
	CHECK(load_variant(BL, "BPE", "[[\"a\", \"zz\"]]", "", &err) == -1);
	CHECK(strstr(err.msg, "model.merges[0]: \"zz\" is not in model.vocab") != NULL);
	CHECK(load_variant(BL, "BPE", "[[\"b\", \"a\"]]", "", &err) == -1);
	CHECK(strstr(err.msg, "\"ba\" is not in model.vocab") != NULL);
	CHECK(load_variant(BL, "BPE", "{}", "", &err) == -1);
	CHECK(strstr(err.msg, "model.merges: expected an array") != NULL);
	CHECK(load_variant(BL, "BPE", "[]", "\"added_tokens\": [{\"id\": -1, \"content\": \"x\"}],",
			   &err) == -1);
	CHECK(strstr(err.msg, "added_tokens[0].id") != NULL);
	CHECK(load_variant(BL, "BPE", "[]", "\"added_tokens\": [{\"id\": 0, \"content\": \"x\"}],",
			   &err) == -1);
	CHECK(strstr(err.msg, "added_tokens[0]: id 0 is \"a\"") != NULL);
	const char *bad_vocab = "{\"pre_tokenizer\": " BL ", \"model\": {\"type\": \"BPE\", "
				"\"vocab\": {\"a\": \"zero\"}, \"merges\": []}}";
	hug_error_clear(&err);
	CHECK(tokenizer_load_json(bad_vocab, strlen(bad_vocab), "v.json", &tok, &err) == -1);
	CHECK(strstr(err.msg, "v.json: model.vocab[\"a\"]: expected an integer id") != NULL);
	hug_error_clear(&err);
	const char *cut = "{\"model\": {\n  \"type\": \"BPE\",\n  \"vocab\": {\"a\": 0,";
	CHECK(tokenizer_load_json(cut, strlen(cut), "cut.json", &tok, &err) == -1);
	CHECK(strstr(err.msg, "cut.json:3:") && strstr(err.msg, "malformed JSON"));
	hug_error_clear(&err);
	CHECK(tokenizer_load("/nonexistent/t.json", &tok, &err) == -1);
	CHECK(strstr(err.msg, "/nonexistent/t.json: cannot open") != NULL);
	CHECK(tok == NULL);
}

/* Known SHA-256 vectors (FIPS 180-4 examples). */
TEST(sha256_known_answers)
{
	static const struct { const char *in, *hex; } v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	for (int i = 0; i < 3; i++) {
		struct sha256 s;
		uint8_t d[32];
		char hex[65];
		sha256_init(&s);
		sha256_update(&s, v[i].in, strlen(v[i].in));
		sha256_final(&s, d);
		sha256_hex(d, hex);
		CHECK(!strcmp(hex, v[i].hex));
	}
	/* a million 'a's fed unevenly */
	struct sha256 s;
	uint8_t d[32];
	char hex[65], buf[777];
	memset(buf, 'a', sizeof(buf));
	sha256_init(&s);
	for (size_t left = 1000000; left > 0;) {
		size_t k = left < sizeof(buf) ? left : sizeof(buf);
		sha256_update(&s, buf, k);
		left -= k;
	}
	sha256_final(&s, d);
	sha256_hex(d, hex);
	CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}

/* The SHA-NI path gives the portable path's digests, for every length
 * around the block boundaries and fed in uneven pieces, and both pass the
 * known answers above (rerun with each forced). */
TEST(sha256_cpu_extensions_match_portable)
{
	static uint8_t buf[4099];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 7));
	bool has = sha256_use_cpu_extensions(true);
	if (!has)
		printf("(no SHA extensions on this CPU: portable only) ");
	int differ = 0;
	for (size_t len = 0; len < sizeof(buf); len += len < 200 ? 1 : 61) {
		uint8_t d[2][32];
		for (int mode = 0; mode < 2; mode++) {
			sha256_use_cpu_extensions(mode == 1);
			struct sha256 s;
			sha256_init(&s);
			for (size_t at = 0; at < len;) {
				size_t k = (at * 7 + 13) % 150 + 1;
				k = k < len - at ? k : len - at;
				sha256_update(&s, buf + at, k);
				at += k;
			}
			sha256_final(&s, d[mode]);
		}
		differ += memcmp(d[0], d[1], 32) != 0;
	}
	CHECK(differ == 0);
	sha256_use_cpu_extensions(false);
	test_sha256_known_answers();
	sha256_use_cpu_extensions(true);
	test_sha256_known_answers();
}

/* Words that encode to no ids (bytes outside the vocabulary with no unk),
 * and empty text, into a fresh (NULL) id buffer: nothing is copied and
 * nothing is read past the text (UBSan flagged memcpy onto NULL here). */
TEST(tokenizer_encodes_words_with_no_ids)
{
	static const char json[] =
		"{\"version\": \"1.0\", \"pre_tokenizer\": {\"type\": \"ByteLevel\", "
		"\"add_prefix_space\": false, \"use_regex\": true},\n"
		"\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, "
		"\"\\u0120\": 3}, \"merges\": [\"a b\"]}}";
	struct tokenizer *tok = NULL;
	struct hug_error err = { 0 };
	REQUIRE(tokenizer_load_json(json, strlen(json), "t.json", &tok, &err) == 0);
	const char *texts[] = { "c", "", "cd", "c ab" };
	const int64_t want[] = { 0, 0, 0, 2 };
	for (int k = 0; k < 4; k++) {
		for (int rep = 0; rep < 2; rep++) { /* the second pass hits the word cache */
			struct tok_ids ids = { 0 };
			CHECK(tokenizer_encode(tok, texts[k], strlen(texts[k]), &ids) == want[k]);
			CHECK(ids.n == want[k]);
			tok_ids_free(&ids);
		}
	}
	tokenizer_free(tok);
}
