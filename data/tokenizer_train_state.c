/* tokenizer_train_state.c: the BPE trainer's tables (words, tokens, pairs
 * with their word lists), its max-heap, and the tokenizer.json writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "../base/panic.h"
#include "tokenizer_train_impl.h"

void tt_state_init(struct tt_state *S)
{
	memset(S, 0, sizeof(*S));
}

void tt_state_free(struct tt_state *S)
{
	hug_free(S->W.slots);
	hug_free(S->W.w);
	hug_free(S->W.pool);
	hug_free(S->syms);
	for (size_t i = 0; i < S->n_tok; i++)
		hug_free(S->tok[i].text);
	hug_free(S->tok);
	tok_strmap_free(&S->by_text);
	for (size_t i = 0; i < S->n_pairs; i++)
		hug_free(S->pairs[i].words);
	hug_free(S->pairs);
	tok_pairmap_free(&S->pair_ix);
	hug_free(S->heap);
	hug_free(S->fresh);
	hug_free(S->merges);
}

/* Makes room for one more element of `size` bytes in a growable array. */
static void *reserve(void *p, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return p;
	*cap = *cap ? 2 * *cap : 64;
	return hug_realloc(p, *cap * size);
}

void tt_words_grow(struct tt_words *W)
{
	size_t cap = W->cap ? 2 * W->cap : 1 << 16;
	hug_free(W->slots);
	W->slots = hug_calloc(cap, sizeof(uint32_t));
	W->cap = cap;
	for (size_t k = 0; k < W->n; k++) {
		size_t i = W->w[k].hash & (cap - 1);
		while (W->slots[i])
			i = (i + 1) & (cap - 1);
		W->slots[i] = (uint32_t)k + 1;
	}
}

uint32_t tt_words_add(struct tt_words *W, const uint8_t *s, size_t n, uint64_t h)
{
	W->w = reserve(W->w, W->n, &W->w_cap, sizeof(*W->w));
	while (W->pool_n + n > W->pool_cap) {
		W->pool_cap = W->pool_cap ? 2 * W->pool_cap : 1 << 20;
		W->pool = hug_realloc(W->pool, W->pool_cap);
	}
	memcpy(W->pool + W->pool_n, s, n);
	W->w[W->n] = (struct tt_word){ .hash = h, .off = W->pool_n, .len = (uint32_t)n,
				       .count = 1 };
	W->pool_n += n;
	return (uint32_t)++W->n;
}

int32_t tt_token_add(struct tt_state *S, char *s, size_t n)
{
	S->tok = reserve(S->tok, S->n_tok, &S->tok_cap, sizeof(*S->tok));
	S->tok[S->n_tok] = (struct tt_token){ s, n };
	tok_strmap_put(&S->by_text, s, n, (int32_t)S->n_tok);
	return (int32_t)S->n_tok++;
}

int tt_add_base_tokens(struct tt_state *S, const struct tok_train_opts *o,
		       struct hug_error *err)
{
	if (o->vocab_size < o->n_special + 256)
		return hug_error_set(err, "--vocab-size %lld is smaller than the %d special "
				     "and 256 byte tokens", (long long)o->vocab_size,
				     o->n_special);
	for (int i = 0; i < o->n_special; i++) {
		const char *s = o->special[i];
		if (!s[0] || tok_strmap_get(&S->by_text, s, strlen(s)) >= 0)
			return hug_error_set(err, "--special: \"%s\" is %s", s,
					     s[0] ? "given twice" : "empty");
		tt_token_add(S, hug_strdup(s), strlen(s));
	}
	/* bytes ordered by the code point that stands for them */
	int order[256], n = 0;
	for (uint32_t cp = 0; n < 256; cp++)
		if (tok_cp_to_byte(cp) >= 0)
			order[n++] = tok_cp_to_byte(cp);
	for (int k = 0; k < 256; k++) {
		char *s = hug_malloc(4);
		int len = tok_byte_utf8((uint8_t)order[k], s);
		s[len] = '\0';
		if (tok_strmap_get(&S->by_text, s, (size_t)len) >= 0) {
			hug_error_set(err, "--special: \"%s\" is also a byte token", s);
			hug_free(s);
			return -1;
		}
		S->byte_tok[order[k]] = tt_token_add(S, s, (size_t)len);
	}
	return 0;
}

struct tt_pair *tt_pair_get(struct tt_state *S, int32_t a, int32_t b)
{
	const struct tok_pair_slot *s = tok_pairmap_get(&S->pair_ix, tok_pair_key(a, b));
	return s ? &S->pairs[s->id] : NULL;
}

void tt_pair_add(struct tt_state *S, int32_t a, int32_t b, int64_t delta, uint32_t wi)
{
	const struct tok_pair_slot *s = tok_pairmap_get(&S->pair_ix, tok_pair_key(a, b));
	uint32_t pi;
	if (s) {
		pi = (uint32_t)s->id;
	} else {
		S->pairs = reserve(S->pairs, S->n_pairs, &S->pairs_cap, sizeof(*S->pairs));
		pi = (uint32_t)S->n_pairs++;
		S->pairs[pi] = (struct tt_pair){ .a = a, .b = b, .fresh = UINT32_MAX };
		tok_pairmap_put(&S->pair_ix, tok_pair_key(a, b), 0, (int32_t)pi);
	}
	struct tt_pair *p = &S->pairs[pi];
	p->count += delta;
	if (delta <= 0)
		return;
	if (!p->n_words || p->words[p->n_words - 1] != wi) {
		size_t cap = p->cap;
		p->words = reserve(p->words, p->n_words, &cap, sizeof(uint32_t));
		p->cap = (uint32_t)cap;
		p->words[p->n_words++] = wi;
	}
	if (p->fresh != S->stamp) {
		p->fresh = S->stamp;
		S->fresh = reserve(S->fresh, S->n_fresh, &S->fresh_cap, sizeof(uint32_t));
		S->fresh[S->n_fresh++] = pi;
	}
}

void tt_pair_release(struct tt_state *S, uint32_t pi)
{
	struct tt_pair *p = &S->pairs[pi];
	hug_free(p->words);
	p->words = NULL;
	p->n_words = p->cap = 0;
}

void tt_push_new_pairs(struct tt_state *S)
{
	for (size_t i = 0; i < S->n_fresh; i++) {
		struct tt_pair *p = &S->pairs[S->fresh[i]];
		if (p->count > 0)
			tt_heap_push(S, (struct tt_heap_ent){ p->count, p->a, p->b });
	}
	S->n_fresh = 0;
}

void tt_merge_record(struct tt_state *S, int32_t a, int32_t b)
{
	if (S->n_merges == S->merges_cap) {
		S->merges_cap = S->merges_cap ? 2 * S->merges_cap : 1024;
		S->merges = hug_realloc(S->merges, (size_t)S->merges_cap * 2 * sizeof(int32_t));
	}
	S->merges[2 * S->n_merges] = a;
	S->merges[2 * S->n_merges + 1] = b;
	S->n_merges++;
}

/* Heap order: higher count first, then smaller a, then smaller b. */
static bool before(const struct tt_heap_ent *x, const struct tt_heap_ent *y)
{
	if (x->count != y->count)
		return x->count > y->count;
	return x->a != y->a ? x->a < y->a : x->b < y->b;
}

void tt_heap_push(struct tt_state *S, struct tt_heap_ent e)
{
	S->heap = reserve(S->heap, S->n_heap, &S->heap_cap, sizeof(*S->heap));
	size_t i = S->n_heap++;
	while (i > 0 && before(&e, &S->heap[(i - 1) / 2])) {
		S->heap[i] = S->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	S->heap[i] = e;
}

bool tt_heap_pop(struct tt_state *S, struct tt_heap_ent *out)
{
	if (!S->n_heap)
		return false;
	struct tt_heap_ent *h = S->heap, last = h[--S->n_heap];
	size_t i = 0, n = S->n_heap;
	*out = h[0];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && before(&h[c + 1], &h[c]))
			c++;
		if (!before(&h[c], &last))
			break;
		h[i] = h[c];
		i = c;
	}
	if (n)
		h[i] = last;
	return true;
}

void tt_init_pairs(struct tt_state *S)
{
	size_t total = 0;
	for (size_t k = 0; k < S->W.n; k++)
		total += S->W.w[k].len;
	S->syms = hug_malloc((total ? total : 1) * sizeof(int32_t));
	for (size_t k = 0; k < S->W.n; k++) {
		struct tt_word *w = &S->W.w[k];
		const uint8_t *s = S->W.pool + w->off;
		w->sym_off = S->n_syms;
		w->n_syms = w->len;
		for (uint32_t i = 0; i < w->len; i++)
			S->syms[S->n_syms++] = S->byte_tok[s[i]];
	}
	S->stamp = 0;
	for (size_t k = 0; k < S->W.n; k++) {
		struct tt_word *w = &S->W.w[k];
		const int32_t *s = S->syms + w->sym_off;
		for (uint32_t i = 0; i + 1 < w->n_syms; i++)
			tt_pair_add(S, s[i], s[i + 1], w->count, (uint32_t)k);
	}
	tt_push_new_pairs(S);
}

/* --- tokenizer.json --- */

static void write_added(struct buf *f, const struct tt_state *S, int n_special)
{
	buf_printf(f, "  \"added_tokens\": [");
	for (int i = 0; i < n_special; i++) {
		buf_printf(f, "%s\n    {\"id\": %d, \"content\": ", i ? "," : "", i);
		hug_json_quote_n(f, S->tok[i].text, S->tok[i].len);
		buf_printf(f, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
			   "\"normalized\": false, \"special\": true}");
	}
	buf_printf(f, "%s],\n", n_special ? "\n  " : "");
}

static void write_pretok(struct buf *f, enum tok_pretok_kind kind)
{
	if (kind == TOK_PRETOK_GPT2) {
		buf_printf(f, "  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": "
			   "false, \"trim_offsets\": true, \"use_regex\": true},\n");
		return;
	}
	buf_printf(f, "  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [\n"
		   "    {\"type\": \"Split\", \"pattern\": {\"Regex\": ");
	hug_json_quote_n(f, tok_bloom_regex(), strlen(tok_bloom_regex()));
	buf_printf(f, "}, \"behavior\": \"Isolated\", \"invert\": false},\n"
		   "    {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
		   "\"trim_offsets\": true, \"use_regex\": false}]},\n");
}

static void write_model(struct buf *f, const struct tt_state *S, bool unk)
{
	buf_printf(f, "  \"model\": {\n    \"type\": \"BPE\", \"dropout\": null, \"unk_token\": %s, "
		   "\"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, "
		   "\"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": false,\n"
		   "    \"vocab\": {", unk ? "\"<unk>\"" : "null");
	for (size_t i = 0; i < S->n_tok; i++) {
		buf_printf(f, "%s\n      ", i ? "," : "");
		hug_json_quote_n(f, S->tok[i].text, S->tok[i].len);
		buf_printf(f, ": %zu", i);
	}
	buf_printf(f, "\n    },\n    \"merges\": [");
	for (int64_t i = 0; i < S->n_merges; i++) {
		const struct tt_token *a = &S->tok[S->merges[2 * i]], *b = &S->tok[S->merges[2 * i + 1]];
		buf_printf(f, "%s\n      [", i ? "," : "");
		hug_json_quote_n(f, a->text, a->len);
		buf_printf(f, ", ");
		hug_json_quote_n(f, b->text, b->len);
		buf_printf(f, "]");
	}
	buf_printf(f, "\n    ]\n  }\n}\n");
}

int tt_write_json(const struct tt_state *S, const struct tok_train_opts *o,
		  const char *path, struct hug_error *err)
{
	struct buf f = { 0 };
	bool unk = false;
	for (int i = 0; i < o->n_special; i++)
		unk |= !strcmp(o->special[i], "<unk>");
	buf_printf(&f, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n");
	write_added(&f, S, o->n_special);
	buf_printf(&f, "  \"normalizer\": null,\n");
	write_pretok(&f, o->pretok);
	buf_printf(&f, "  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
		   "\"trim_offsets\": false, \"use_regex\": true},\n"
		   "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
		   "\"trim_offsets\": true, \"use_regex\": true},\n");
	write_model(&f, S, unk);
	int rc = fs_write_atomic(path, f.p, f.n, err);
	buf_free(&f);
	return rc;
}
