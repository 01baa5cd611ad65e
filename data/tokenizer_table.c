/* tokenizer_table.c: the tokenizer's hash tables (byte strings -> id, id
 * pairs -> merge) and GPT-2's byte-to-character alphabet. */
#include <string.h>

#include "../base/alloc.h"
#include "tokenizer_impl.h"

uint64_t tok_hash_bytes(const void *p, size_t n)
{
	const uint8_t *s = p;
	uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xFF51AFD7ED558CCDull;
		h ^= h >> 32;
		s += 8;
		n -= 8;
	}
	uint64_t w = 0;
	for (size_t i = 0; i < n; i++)
		w |= (uint64_t)s[i] << (8 * i);
	h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
	h ^= h >> 29;
	h *= 0xFF51AFD7ED558CCDull;
	return h ^ (h >> 32);
}

static void strmap_grow(struct tok_strmap *m)
{
	struct tok_strmap old = *m;
	m->cap = old.cap ? old.cap * 2 : 64;
	m->slots = hug_calloc(m->cap, sizeof(*m->slots));
	m->n = 0;
	for (size_t i = 0; i < old.cap; i++) {
		struct tok_strmap_slot *s = &old.slots[i];
		if (s->key)
			tok_strmap_put(m, s->key, s->len, s->val);
	}
	hug_free(old.slots);
}

void tok_strmap_put(struct tok_strmap *m, const char *key, size_t len, int32_t val)
{
	if ((m->n + 1) * 4 > m->cap * 3)
		strmap_grow(m);
	uint64_t h = tok_hash_bytes(key, len);
	for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct tok_strmap_slot *s = &m->slots[i];
		if (!s->key) {
			*s = (struct tok_strmap_slot){ key, (uint32_t)len, val, h };
			m->n++;
			return;
		}
		if (s->hash == h && s->len == len && !memcmp(s->key, key, len)) {
			s->val = val;
			return;
		}
	}
}

int32_t tok_strmap_get(const struct tok_strmap *m, const char *key, size_t len)
{
	if (!m->cap)
		return -1;
	uint64_t h = tok_hash_bytes(key, len);
	for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		const struct tok_strmap_slot *s = &m->slots[i];
		if (!s->key)
			return -1;
		if (s->hash == h && s->len == len && !memcmp(s->key, key, len))
			return s->val;
	}
}

void tok_strmap_free(struct tok_strmap *m)
{
	hug_free(m->slots);
	memset(m, 0, sizeof(*m));
}

static size_t pair_slot(uint64_t key, size_t cap)
{
	key *= 0x9E3779B97F4A7C15ull;
	return (size_t)(key >> 20) & (cap - 1);
}

static void pairmap_grow(struct tok_pairmap *m)
{
	struct tok_pairmap old = *m;
	m->cap = old.cap ? old.cap * 2 : 64;
	m->slots = hug_malloc(m->cap * sizeof(*m->slots));
	for (size_t i = 0; i < m->cap; i++)
		m->slots[i].key = UINT64_MAX;
	m->n = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].key != UINT64_MAX)
			tok_pairmap_put(m, old.slots[i].key, old.slots[i].rank, old.slots[i].id);
	hug_free(old.slots);
}

bool tok_pairmap_put(struct tok_pairmap *m, uint64_t key, int32_t rank, int32_t id)
{
	if ((m->n + 1) * 4 > m->cap)
		pairmap_grow(m);
	for (size_t i = pair_slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		struct tok_pair_slot *s = &m->slots[i];
		if (s->key == key) {
			s->rank = rank;
			s->id = id;
			return false;
		}
		if (s->key == UINT64_MAX) {
			*s = (struct tok_pair_slot){ key, rank, id };
			m->n++;
			return true;
		}
	}
}

const struct tok_pair_slot *tok_pairmap_get(const struct tok_pairmap *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = pair_slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		const struct tok_pair_slot *s = &m->slots[i];
		if (s->key == key)
			return s;
		if (s->key == UINT64_MAX)
			return NULL;
	}
}

void tok_pairmap_free(struct tok_pairmap *m)
{
	hug_free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* GPT-2's alphabet: printable Latin-1 bytes ('!'..'~', 0xA1..0xAC,
 * 0xAE..0xFF) stand for themselves; the other 68 bytes, in increasing
 * order, for U+0100, U+0101, ... */
static bool byte_prints(int b)
{
	return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* The 68 other bytes are 0x00..0x20 (33), 0x7F..0xA0 (34) and 0xAD. */
uint32_t tok_byte_to_cp(uint8_t b)
{
	if (byte_prints(b))
		return b;
	if (b <= 0x20)
		return 256u + b;
	if (b >= 0x7F && b <= 0xA0)
		return 256u + 33 + (b - 0x7Fu);
	return 256u + 67; /* 0xAD */
}

int tok_cp_to_byte(uint32_t cp)
{
	if (cp < 256)
		return byte_prints((int)cp) ? (int)cp : -1;
	if (cp >= 256 + 68)
		return -1;
	uint32_t k = cp - 256;
	if (k < 33)
		return (int)k;
	if (k < 67)
		return (int)(0x7F + k - 33);
	return 0xAD;
}

int tok_byte_utf8(uint8_t b, char out[4])
{
	uint32_t cp = tok_byte_to_cp(b);
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	out[0] = (char)(0xC0 | (cp >> 6));
	out[1] = (char)(0x80 | (cp & 0x3F));
	return 2;
}
