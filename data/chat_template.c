/* chat_template.c: the chat templates of chat_template.h, each a C
 * transcription of the Jinja template it names:
 *
 *   chatml   <|im_start|>ROLE\nCONTENT<|im_end|>\n per message
 *   llama3   Meta-Llama-3-Instruct: <|begin_of_text|> once, then
 *            <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT|trim<|eot_id|>
 *   mistral  Mistral-7B-Instruct-v0.1: <s>, then [INST] USER [/INST] and
 *            ASSISTANT</s>, strictly alternating from user; no system role
 *   gemma    gemma-it: <bos>, then <start_of_turn>ROLE\nCONTENT|trim
 *            <end_of_turn>\n with assistant as "model"; no system role
 *
 * (|trim is Jinja's trim: Python's str.strip.) */
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/json.h"
#include "chat_template.h"
#include "tokenizer_impl.h"

enum { CHATML, LLAMA3, MISTRAL, GEMMA, N_TEMPLATES };

static const char *const names[N_TEMPLATES] = { "chatml", "llama3", "mistral", "gemma" };

int chat_template_find(const char *name)
{
	for (int i = 0; i < N_TEMPLATES; i++)
		if (!strcmp(name, names[i]))
			return i;
	return -1;
}

const char *chat_template_names(void)
{
	return "chatml, llama3, mistral, gemma";
}

int chat_template_guess(const struct tokenizer *tok)
{
	static const char *const marks[] = { "<|im_start|>", "<|start_header_id|>",
					     "[INST]", "<start_of_turn>" };
	static const int which[] = { CHATML, LLAMA3, MISTRAL, GEMMA };
	for (int i = 0; i < 4; i++)
		if (tokenizer_token_id(tok, marks[i]) >= 0)
			return which[i];
	return -1;
}

static void put(struct chat_render *r, const char *s, size_t n, bool train)
{
	if (n == 0)
		return;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		r->pieces = hug_realloc(r->pieces, (size_t)r->cap * sizeof(*r->pieces));
	}
	r->pieces[r->n++] = (struct chat_piece){ r->text.n, n, train };
	buf_put(&r->text, s, n);
}

static void puts0(struct chat_render *r, const char *s)
{
	put(r, s, strlen(s), false);
}

/* Python's str.strip(): whitespace off both ends. */
static void trimmed(const char *s, const char **a, size_t *n)
{
	size_t len = strlen(s), i = 0, end = 0;
	int k;
	while (i < len && tok_is_space((const uint8_t *)s + i, len - i, &k))
		i += (size_t)k;
	for (size_t j = i; j < len; j += (size_t)k)
		if (!tok_is_space((const uint8_t *)s + j, len - j, &k))
			end = j + (size_t)k;
	*a = s + i;
	*n = end > i ? end - i : 0;
}

/* Message i's role and content, checked. */
static int message(const cJSON *m, int i, const char **role, const char **content, char *msg,
		   size_t cap)
{
	const cJSON *r = cJSON_IsObject(m) ? cJSON_GetObjectItemCaseSensitive(m, "role") : NULL;
	const cJSON *c = cJSON_IsObject(m) ? cJSON_GetObjectItemCaseSensitive(m, "content") : NULL;
	if (!cJSON_IsString(r) || !cJSON_IsString(c)) {
		snprintf(msg, cap, "messages[%d]: expected {\"role\": string, \"content\": string}", i);
		return -1;
	}
	if (strcmp(r->valuestring, "system") && strcmp(r->valuestring, "user") &&
	    strcmp(r->valuestring, "assistant")) {
		snprintf(msg, cap, "messages[%d].role: expected \"system\", \"user\" or "
			 "\"assistant\", got \"%.40s\"", i, r->valuestring);
		return -1;
	}
	*role = r->valuestring;
	*content = c->valuestring;
	return 0;
}

int chat_render(int tmpl, const cJSON *messages, struct chat_render *out, char *msg,
		size_t cap)
{
	out->text.n = 0;
	buf_put(&out->text, "", 0);
	out->n = 0;
	if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0) {
		snprintf(msg, cap, "messages: expected a non-empty array");
		return -1;
	}
	if (tmpl == LLAMA3)
		puts0(out, "<|begin_of_text|>");
	else if (tmpl == MISTRAL)
		puts0(out, "<s>");
	else if (tmpl == GEMMA)
		puts0(out, "<bos>");
	const cJSON *m;
	int i = 0;
	bool any_assistant = false;
	cJSON_ArrayForEach(m, messages) {
		const char *role, *content, *t;
		size_t tn;
		if (message(m, i, &role, &content, msg, cap))
			return -1;
		bool asst = !strcmp(role, "assistant");
		any_assistant |= asst;
		if ((tmpl == MISTRAL || tmpl == GEMMA) && !strcmp(role, "system")) {
			snprintf(msg, cap, "messages[%d]: the %s template has no system role", i,
				 names[tmpl]);
			return -1;
		}
		if (tmpl == MISTRAL && (!strcmp(role, "user") != (i % 2 == 0))) {
			snprintf(msg, cap, "messages[%d]: the mistral template needs turns "
				 "alternating user/assistant from a user turn", i);
			return -1;
		}
		switch (tmpl) {
		case CHATML:
			puts0(out, "<|im_start|>");
			puts0(out, role);
			puts0(out, "\n");
			put(out, content, strlen(content), asst);
			put(out, "<|im_end|>", 10, asst);
			puts0(out, "\n");
			break;
		case LLAMA3:
			puts0(out, "<|start_header_id|>");
			puts0(out, role);
			puts0(out, "<|end_header_id|>\n\n");
			trimmed(content, &t, &tn);
			put(out, t, tn, asst);
			put(out, "<|eot_id|>", 10, asst);
			break;
		case MISTRAL:
			if (asst) {
				put(out, content, strlen(content), true);
				put(out, "</s>", 4, true);
			} else {
				puts0(out, "[INST] ");
				puts0(out, content);
				puts0(out, " [/INST]");
			}
			break;
		case GEMMA:
			puts0(out, "<start_of_turn>");
			puts0(out, asst ? "model" : role);
			puts0(out, "\n");
			trimmed(content, &t, &tn);
			put(out, t, tn, asst);
			put(out, "<end_of_turn>", 13, asst);
			puts0(out, "\n");
			break;
		}
		i++;
	}
	if (!any_assistant) {
		snprintf(msg, cap, "messages: no assistant turn (nothing to train on)");
		return -1;
	}
	return 0;
}

void chat_render_free(struct chat_render *r)
{
	buf_free(&r->text);
	hug_free(r->pieces);
	memset(r, 0, sizeof(*r));
}

uint8_t *chat_encode(struct tok_encoder *enc, const struct chat_render *r, struct tok_ids *ids)
{
	int64_t start = ids->n;
	tok_encoder_encode(enc, r->text.p, r->text.n, ids);
	int64_t n = ids->n - start, k_prev = 0;
	const int32_t *w = ids->v + start;
	uint8_t *mask = hug_malloc((size_t)(n > 0 ? n : 1));
	struct tok_ids tmp = { 0 };
	bool flag = r->n > 0 && r->pieces[0].train;
	for (int i = 1; i < r->n; i++) {
		if (r->pieces[i].train == flag)
			continue;
		tmp.n = 0;
		tok_encoder_encode(enc, r->text.p, r->pieces[i].off, &tmp);
		int64_t k = 0;
		while (k < tmp.n && k < n && tmp.v[k] == w[k])
			k++;
		k = k > k_prev ? k : k_prev;
		memset(mask + k_prev, flag, (size_t)(k - k_prev));
		k_prev = k;
		flag = r->pieces[i].train;
	}
	memset(mask + k_prev, flag, (size_t)(n - k_prev));
	tok_ids_free(&tmp);
	return mask;
}
