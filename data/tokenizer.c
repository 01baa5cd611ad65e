/* tokenizer.c: the tokenizer's lifetime, lookups, identity hash, and the
 * small growable buffers of the public API. Loading lives in
 * tokenizer_load.c, encoding in tokenizer_bpe.c, decoding in
 * tokenizer_decode.c, training in tokenizer_train.c. */
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/sha256.h"
#include "tokenizer_impl.h"

void tokenizer_free(struct tokenizer *t)
{
	if (!t)
		return;
	for (int64_t i = 0; i < t->vocab_size; i++) {
		hug_free(t->text ? t->text[i] : NULL);
		hug_free(t->bytes ? t->bytes[i] : NULL);
	}
	hug_free(t->text);
	hug_free(t->bytes);
	hug_free(t->bytes_len);
	hug_free(t->special);
	for (int i = 0; i < t->n_added; i++) {
		if (t->added[i].match != t->added[i].content)
			hug_free(t->added[i].match);
		hug_free(t->added[i].content);
	}
	tok_free_pipeline(t);
	hug_free(t->added);
	tok_strmap_free(&t->text_map);
	tok_strmap_free(&t->bytes_map);
	tok_pairmap_free(&t->merges);
	hug_free(t);
}

int64_t tokenizer_vocab_size(const struct tokenizer *t)
{
	return t->vocab_size;
}

int64_t tokenizer_n_merges(const struct tokenizer *t)
{
	return t->n_merges;
}

int32_t tokenizer_token_id(const struct tokenizer *t, const char *s)
{
	for (int i = 0; i < t->n_added; i++)
		if (!strcmp(t->added[i].content, s))
			return t->added[i].id;
	return tok_strmap_get(&t->text_map, s, strlen(s));
}

int32_t tokenizer_eos_id(const struct tokenizer *t)
{
	return t->eos_id;
}

const char *tokenizer_hash(const struct tokenizer *t)
{
	return t->hash;
}

static void hash_u32(struct sha256 *s, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	sha256_update(s, b, 4);
}

/* Canonical form: "hug-tokenizer-v1", vocab_size, then per id its text
 * (length, bytes; 0xFFFFFFFF for an unused id) and special flag, then the
 * merge count and each merge's (a, b) in rank order, all u32 little-endian. */
void tok_compute_hash(struct tokenizer *t, const int32_t *merge_pairs)
{
	struct sha256 s;
	uint8_t digest[32];
	char hex[65];
	sha256_init(&s);
	sha256_update(&s, "hug-tokenizer-v1", 16);
	hash_u32(&s, (uint32_t)t->vocab_size);
	for (int64_t id = 0; id < t->vocab_size; id++) {
		if (!t->text[id]) {
			hash_u32(&s, 0xFFFFFFFFu);
			continue;
		}
		size_t n = strlen(t->text[id]);
		hash_u32(&s, (uint32_t)n);
		sha256_update(&s, t->text[id], n);
		hash_u32(&s, t->special[id]);
	}
	hash_u32(&s, (uint32_t)t->n_merges);
	for (int64_t i = 0; i < 2 * t->n_merges; i++)
		hash_u32(&s, (uint32_t)merge_pairs[i]);
	sha256_final(&s, digest);
	sha256_hex(digest, hex);
	snprintf(t->hash, sizeof(t->hash), "sha256:%s", hex);
}

void tok_ids_push(struct tok_ids *ids, int32_t id)
{
	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? 2 * ids->cap : 256;
		ids->v = hug_realloc(ids->v, (size_t)ids->cap * sizeof(int32_t));
	}
	ids->v[ids->n++] = id;
}

void tok_ids_free(struct tok_ids *ids)
{
	hug_free(ids->v);
	memset(ids, 0, sizeof(*ids));
}
