/* chat_template.h: chat conversations ({"messages": [{"role", "content"},
 * ...]}) rendered as the published Jinja chat templates of the major
 * model families render them through transformers' apply_chat_template
 * (without a generation prompt), written out in C: hug has no Jinja
 * engine. Each template marks what is trained on: the content of
 * assistant turns and their end-of-turn token. docs/tokenizers.md lists
 * the templates and how to add one. */
#ifndef HUG_DATA_CHAT_TEMPLATE_H
#define HUG_DATA_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "../base/buf.h"
#include "tokenizer.h"

struct cJSON;

/* A stretch text.p[off .. off+len) of the rendered conversation; `train`:
 * assistant content or its end-of-turn token (loss mask 1). */
struct chat_piece {
	size_t off, len;
	bool train;
};

struct chat_render {
	struct buf text;          /* the whole rendered conversation */
	struct chat_piece *pieces; /* covering text in order */
	int n, cap;
};

/* The template named `name` ("chatml", "llama3", "mistral", "gemma"), or
 * -1. */
int chat_template_find(const char *name);

/* The template names, comma-separated, for messages. */
const char *chat_template_names(void);

/* The template a tokenizer's special tokens point to (<|im_start|>:
 * chatml, <|start_header_id|>: llama3, <start_of_turn>: gemma, [INST]:
 * mistral), or -1. */
int chat_template_guess(const struct tokenizer *tok);

/* Renders `messages` (a JSON array of {"role": "system"|"user"|
 * "assistant", "content": string}) with template `tmpl` into *out
 * (replacing its contents). Returns 0, or -1 with what is wrong (a bad
 * role, a system message the template does not take, turns out of
 * order, ...) in msg. */
int chat_render(int tmpl, const struct cJSON *messages, struct chat_render *out, char *msg,
		size_t msg_cap);

void chat_render_free(struct chat_render *r);

/* Appends the ids of r's whole text to *ids, as HF's tokenizer(text,
 * add_special_tokens=False) gives them, and returns a new array (hug_free
 * it) of one loss-mask byte per appended id: 1 for ids of trained pieces.
 * Where a token spans a boundary between pieces (BPE merged across it),
 * it goes with the later piece: the ids of the text up to each boundary
 * are encoded too, and the boundary falls after their common prefix with
 * the whole. */
uint8_t *chat_encode(struct tok_encoder *enc, const struct chat_render *r, struct tok_ids *ids);

#endif
