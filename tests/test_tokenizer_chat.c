/* test_tokenizer_chat.c: hug's chat templates (data/chat_template.c)
 * against transformers' apply_chat_template with the Jinja templates they
 * transcribe (tools/ref/make_tokenizer_fixtures.py writes them, with the
 * pipeline tokenizers): the rendered text byte for byte, the ids, and the
 * assistant mask (transformers' return_assistant_tokens_mask). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/json.h"
#include "../data/chat_template.h"
#include "../data/tokenizer.h"
#include "harness.h"

#define PIPE "tests/fixtures/tokenizer/pipelines/"

static int check_conv(int tmpl, const char *name, struct tok_encoder *enc, const cJSON *conv)
{
	struct chat_render r = { 0 };
	char msg[256];
	const char *hex = cJSON_GetObjectItem(conv, "text")->valuestring;
	const cJSON *ids = cJSON_GetObjectItem(conv, "ids"), *mask = cJSON_GetObjectItem(conv, "mask");
	int bad = 0;
	if (chat_render(tmpl, cJSON_GetObjectItem(conv, "messages"), &r, msg, sizeof(msg))) {
		test_fail_at(__FILE__, __LINE__, "%s: %s", name, msg);
		return 1;
	}
	size_t n = strlen(hex) / 2;
	char *want = hug_malloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		want[i] = (char)v;
	}
	if (r.text.n != n || memcmp(r.text.p, want, n)) {
		fprintf(stderr, "    %s: renders\n%.*s\n    transformers renders\n%.*s\n", name,
			(int)r.text.n, r.text.p, (int)n, want);
		bad++;
	}
	struct tok_ids got = { 0 };
	uint8_t *m = chat_encode(enc, &r, &got);
	if (got.n != cJSON_GetArraySize(ids)) {
		fprintf(stderr, "    %s: %lld ids, transformers %d\n", name, (long long)got.n,
			cJSON_GetArraySize(ids));
		bad++;
	} else {
		for (int64_t i = 0; i < got.n; i++) {
			int wid = (int)cJSON_GetArrayItem(ids, (int)i)->valuedouble;
			int wm = (int)cJSON_GetArrayItem(mask, (int)i)->valuedouble;
			if (got.v[i] != wid || m[i] != wm) {
				fprintf(stderr, "    %s: token %lld: id %d mask %d, transformers %d %d\n",
					name, (long long)i, got.v[i], m[i], wid, wm);
				bad++;
				break;
			}
		}
	}
	hug_free(m);
	hug_free(want);
	tok_ids_free(&got);
	chat_render_free(&r);
	return bad;
}

TEST(chat_templates_match_transformers)
{
	hug_json_init();
	char *text = test_read_file(PIPE "CHAT.json", NULL);
	REQUIRE(text != NULL);
	cJSON *exp = cJSON_Parse(text);
	hug_free(text);
	REQUIRE(exp != NULL);
	const cJSON *t;
	int n = 0;
	cJSON_ArrayForEach(t, exp) {
		char path[256];
		struct tokenizer *tok;
		struct hug_error err = { 0 };
		int tmpl = chat_template_find(t->string);
		CHECK(tmpl >= 0);
		snprintf(path, sizeof(path), PIPE "%s",
			 cJSON_GetObjectItem(t, "tokenizer")->valuestring);
		REQUIRE(tokenizer_load(path, &tok, &err) == 0);
		CHECK(chat_template_guess(tok) == tmpl || !strcmp(t->string, "mistral"));
		struct tok_encoder *enc = tok_encoder_new(tok);
		const cJSON *conv;
		cJSON_ArrayForEach(conv, cJSON_GetObjectItem(t, "conversations")) {
			if (check_conv(tmpl, t->string, enc, conv))
				test_fail_at(__FILE__, __LINE__, "%s differs", t->string);
			n++;
		}
		tok_encoder_free(enc);
		tokenizer_free(tok);
	}
	CHECK(n >= 12);
	cJSON_Delete(exp);
}

/* What a template cannot render is refused with the message's index. */
TEST(chat_templates_refuse_what_they_cannot_render)
{
	static const char *const cases[][3] = {
		{ "gemma", "[{\"role\": \"system\", \"content\": \"x\"}, {\"role\": \"user\", "
			   "\"content\": \"y\"}]", "messages[0]: the gemma template has no system" },
		{ "mistral", "[{\"role\": \"assistant\", \"content\": \"x\"}]",
		  "messages[0]: the mistral template needs turns alternating" },
		{ "chatml", "[{\"role\": \"tool\", \"content\": \"x\"}]", "messages[0].role" },
		{ "chatml", "[{\"role\": \"user\", \"content\": 3}]", "messages[0]: expected" },
		{ "llama3", "[{\"role\": \"user\", \"content\": \"x\"}]", "no assistant turn" },
		{ "chatml", "[]", "non-empty array" },
	};
	hug_json_init();
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		cJSON *m = cJSON_Parse(cases[k][1]);
		struct chat_render r = { 0 };
		char msg[256] = "";
		CHECK(chat_render(chat_template_find(cases[k][0]), m, &r, msg, sizeof(msg)) == -1);
		if (!strstr(msg, cases[k][2]))
			test_fail_at(__FILE__, __LINE__, "%s: got \"%s\"", cases[k][2], msg);
		chat_render_free(&r);
		cJSON_Delete(m);
	}
	CHECK(chat_template_find("vicuna") == -1);
}

/* `hug prepare` on JSONL conversations: the template guessed from the
 * tokenizer (Qwen2's <|im_start|>: chatml) or named, the ids
 * transformers gives (no EOS added), and a loss mask in the shards. */
TEST(cli_prepare_renders_chat_jsonl)
{
	const char *bin = getenv("HUG_BIN");
	if (!bin) {
		test_skip("HUG_BIN not set");
		return;
	}
	hug_json_init();
	char *text = test_read_file(PIPE "CHAT.json", NULL);
	REQUIRE(text != NULL);
	cJSON *exp = cJSON_Parse(text);
	hug_free(text);
	REQUIRE(exp != NULL);
	const cJSON *convs = cJSON_GetObjectItem(cJSON_GetObjectItem(exp, "chatml"), "conversations");
	const cJSON *conv;
	struct buf jsonl = { 0 };
	long want = 0;
	cJSON_ArrayForEach(conv, convs) {
		char *m = cJSON_PrintUnformatted(cJSON_GetObjectItem(conv, "messages"));
		buf_printf(&jsonl, "{\"messages\": %s}\n", m);
		free(m);
		want += cJSON_GetArraySize(cJSON_GetObjectItem(conv, "ids"));
	}
	buf_printf(&jsonl, "{\"messages\": [{\"role\": \"user\", \"content\": \"no answer\"}]}\n");
	CHECK(system("rm -rf /tmp/hug-chat-prep && mkdir -p /tmp/hug-chat-prep") == 0);
	test_write_file("/tmp/hug-chat-prep/chat.jsonl", jsonl.p);
	for (int named = 0; named < 2; named++) {
		char cmd[512], out[4096], expect[128];
		snprintf(cmd, sizeof(cmd), "rm -rf /tmp/hug-chat-prep/out && %s prepare --tokenizer "
			 PIPE "qwen2.json --out /tmp/hug-chat-prep/out --quiet %s "
			 "/tmp/hug-chat-prep/chat.jsonl", bin, named ? "--chat-template chatml" : "");
		CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
		snprintf(expect, sizeof(expect), "prepared 3 documents, %ld tokens", want);
		if (!strstr(out, expect))
			test_fail_at(__FILE__, __LINE__, "expected \"%s\" in:\n%s", expect, out);
		CHECK(strstr(out, "chat.jsonl:4") && strstr(out, "no assistant turn"));
	}
	char cmd[512], out[4096];
	snprintf(cmd, sizeof(cmd), "%s prepare --tokenizer " PIPE "qwen2.json --out "
		 "/tmp/hug-chat-prep/o2 --chat-template vicuna /tmp/hug-chat-prep/chat.jsonl", bin);
	CHECK(test_run_command(cmd, out, sizeof(out)) != 0);
	CHECK(strstr(out, "--chat-template: \"vicuna\" is not a template hug knows") != NULL);
	CHECK(system("rm -rf /tmp/hug-chat-prep") == 0);
	buf_free(&jsonl);
	cJSON_Delete(exp);
}
