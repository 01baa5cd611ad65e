/* tokenizer_bpe.c: encoding. Added tokens are split off first (two passes,
 * as HF does: tokens with normalized=false, then those with true), the
 * rest goes through the pre-tokenizer steps, and each resulting word is
 * merged by BPE, lowest merge rank first and leftmost on ties, through a
 * per-encoder word cache. */
#include <string.h>

#include "../base/alloc.h"
#include "tokenizer_impl.h"
#include "utf8.h"

#define SCAN_MAX 48            /* words up to this many symbols: rank scan */
#define CACHE_SLOTS (1u << 16)
#define CACHE_MAX_WORD 256
#define CACHE_KEY_POOL (4u << 20)
#define CACHE_ID_POOL (1u << 20)

struct cache_slot {
	uint64_t hash;
	uint32_t key_off, key_len;  /* key_len 0: empty */
	uint32_t ids_off, n_ids;
};

struct tok_encoder {
	const struct tokenizer *tok;
	struct tok_ids *out;
	int32_t *syms;              /* scratch symbols of one word */
	size_t syms_cap;
	char *prefix;               /* " " + piece for add_prefix_space */
	size_t prefix_cap;
	bool use_cache;
	struct cache_slot *slots;   /* (CACHE_SLOTS) or NULL until first use */
	size_t n_cached;
	char *keys;                 /* key bytes of cached words */
	size_t keys_n;
	int32_t *ids;               /* ids of cached words */
	size_t ids_n;
};

static int32_t merge_rank(const struct tokenizer *t, int32_t a, int32_t b, int32_t *id)
{
	const struct tok_pair_slot *s = tok_pairmap_get(&t->merges, tok_pair_key(a, b));
	if (!s)
		return INT32_MAX;
	*id = s->id;
	return s->rank;
}

int tok_bpe_scan(const struct tokenizer *t, int32_t *ids, int m)
{
	int32_t rank_buf[SCAN_MAX], nid_buf[SCAN_MAX];
	int32_t *rank = m <= SCAN_MAX ? rank_buf : hug_malloc((size_t)m * sizeof(int32_t));
	int32_t *nid = m <= SCAN_MAX ? nid_buf : hug_malloc((size_t)m * sizeof(int32_t));
	for (int i = 0; i + 1 < m; i++)
		rank[i] = merge_rank(t, ids[i], ids[i + 1], &nid[i]);
	while (m > 1) {
		int pos = -1;
		int32_t best = INT32_MAX;
		for (int i = 0; i + 1 < m; i++)
			if (rank[i] < best)
				best = rank[i], pos = i;
		if (pos < 0)
			break;
		ids[pos] = nid[pos];
		memmove(ids + pos + 1, ids + pos + 2, (size_t)(m - pos - 2) * sizeof(int32_t));
		memmove(rank + pos + 1, rank + pos + 2, (size_t)(m - pos - 2) * sizeof(int32_t));
		memmove(nid + pos + 1, nid + pos + 2, (size_t)(m - pos - 2) * sizeof(int32_t));
		m--;
		if (pos > 0)
			rank[pos - 1] = merge_rank(t, ids[pos - 1], ids[pos], &nid[pos - 1]);
		if (pos + 1 < m)
			rank[pos] = merge_rank(t, ids[pos], ids[pos + 1], &nid[pos]);
	}
	if (rank != rank_buf) {
		hug_free(rank);
		hug_free(nid);
	}
	return m;
}

struct heap_ent {
	int32_t rank, pos, new_id;
};

static bool ent_less(const struct heap_ent *a, const struct heap_ent *b)
{
	return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct heap_ent *h, int *n, struct heap_ent e)
{
	int i = (*n)++;
	while (i > 0 && ent_less(&e, &h[(i - 1) / 2])) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = e;
}

static struct heap_ent heap_pop(struct heap_ent *h, int *n)
{
	struct heap_ent top = h[0], last = h[--(*n)];
	int i = 0;
	for (;;) {
		int c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && ent_less(&h[c + 1], &h[c]))
			c++;
		if (!ent_less(&h[c], &last))
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n > 0)
		h[i] = last;
	return top;
}

/* Pushes the merge of symbols (pos, next[pos]) if there is one. */
static void push_pair(const struct tokenizer *t, const int32_t *ids, const int32_t *next,
		      int pos, struct heap_ent *h, int *n)
{
	int32_t id;
	if (pos < 0 || next[pos] < 0)
		return;
	int32_t r = merge_rank(t, ids[pos], ids[next[pos]], &id);
	if (r != INT32_MAX)
		heap_push(h, n, (struct heap_ent){ r, pos, id });
}

int tok_bpe_heap(const struct tokenizer *t, int32_t *ids, int m)
{
	int32_t *prev = hug_malloc((size_t)m * sizeof(int32_t));
	int32_t *next = hug_malloc((size_t)m * sizeof(int32_t));
	/* each merge pushes at most two entries */
	struct heap_ent *h = hug_malloc((size_t)(3 * m + 1) * sizeof(*h));
	int n = 0;
	for (int i = 0; i < m; i++) {
		prev[i] = i - 1;
		next[i] = i + 1 < m ? i + 1 : -1;
	}
	for (int i = 0; i + 1 < m; i++)
		push_pair(t, ids, next, i, h, &n);
	while (n > 0) {
		struct heap_ent e = heap_pop(h, &n);
		int32_t id;
		int r = next[e.pos];
		/* stale: the symbol was merged away, or its pair changed */
		if (ids[e.pos] < 0 || r < 0 ||
		    merge_rank(t, ids[e.pos], ids[r], &id) == INT32_MAX || id != e.new_id)
			continue;
		ids[e.pos] = e.new_id;
		ids[r] = -1;
		next[e.pos] = next[r];
		if (next[r] >= 0)
			prev[next[r]] = e.pos;
		push_pair(t, ids, next, prev[e.pos], h, &n);
		push_pair(t, ids, next, e.pos, h, &n);
	}
	int k = 0;
	for (int i = 0; i < m; i++)
		if (ids[i] >= 0)
			ids[k++] = ids[i];
	hug_free(prev);
	hug_free(next);
	hug_free(h);
	return k;
}

/* --- the word cache --- */

static void cache_clear(struct tok_encoder *e)
{
	memset(e->slots, 0, CACHE_SLOTS * sizeof(*e->slots));
	e->n_cached = e->keys_n = e->ids_n = 0;
}

static struct cache_slot *cache_find(struct tok_encoder *e, const uint8_t *s, size_t n,
				     uint64_t h)
{
	for (size_t i = h & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1)) {
		struct cache_slot *c = &e->slots[i];
		if (!c->key_len || (c->hash == h && c->key_len == n &&
				    !memcmp(e->keys + c->key_off, s, n)))
			return c;
	}
}

static void cache_put(struct tok_encoder *e, const uint8_t *s, size_t n, uint64_t h,
		      const int32_t *ids, int m)
{
	if (e->n_cached >= CACHE_SLOTS / 2 || e->keys_n + n > CACHE_KEY_POOL ||
	    e->ids_n + (size_t)m > CACHE_ID_POOL)
		cache_clear(e);
	struct cache_slot *c = cache_find(e, s, n, h);
	memcpy(e->keys + e->keys_n, s, n);
	if (m > 0) /* ids may be NULL when the word gave none */
		memcpy(e->ids + e->ids_n, ids, (size_t)m * sizeof(int32_t));
	*c = (struct cache_slot){ h, (uint32_t)e->keys_n, (uint32_t)n, (uint32_t)e->ids_n,
				  (uint32_t)m };
	e->keys_n += n;
	e->ids_n += (size_t)m;
	e->n_cached++;
}

/* --- words --- */

static void push_ids(struct tok_ids *out, const int32_t *ids, int m)
{
	if (m <= 0)
		return; /* out->v and ids may be NULL: no memcpy onto NULL */
	if (out->n + m > out->cap) {
		out->cap = 2 * (out->n + m) + 256;
		out->v = hug_realloc(out->v, (size_t)out->cap * sizeof(int32_t));
	}
	memcpy(out->v + out->n, ids, (size_t)m * sizeof(int32_t));
	out->n += m;
}

/* The byte symbols of word s[0..n) (unknown bytes become unk, fused if
 * asked, or are dropped when there is no unk); returns their count. */
static int word_symbols(const struct tokenizer *t, const uint8_t *s, size_t n, int32_t *out)
{
	int m = 0;
	for (size_t i = 0; i < n; i++) {
		int32_t id = t->byte_id[s[i]];
		if (id < 0) {
			if (t->unk_id < 0 || (t->fuse_unk && m > 0 && out[m - 1] == t->unk_id))
				continue;
			id = t->unk_id;
		}
		out[m++] = id;
	}
	return m;
}

static void emit_word(struct tok_encoder *e, const uint8_t *s, size_t n)
{
	const struct tokenizer *t = e->tok;
	bool cached = e->use_cache && n <= CACHE_MAX_WORD;
	uint64_t h = 0;
	if (cached) {
		if (!e->slots) {
			e->slots = hug_calloc(CACHE_SLOTS, sizeof(*e->slots));
			e->keys = hug_malloc(CACHE_KEY_POOL);
			e->ids = hug_malloc(CACHE_ID_POOL * sizeof(int32_t));
		}
		h = tok_hash_bytes(s, n);
		struct cache_slot *c = cache_find(e, s, n, h);
		if (c->key_len) {
			push_ids(e->out, e->ids + c->ids_off, (int)c->n_ids);
			return;
		}
	}
	if (n > e->syms_cap) {
		e->syms_cap = 2 * n;
		e->syms = hug_realloc(e->syms, e->syms_cap * sizeof(int32_t));
	}
	int m;
	int32_t whole = t->ignore_merges ? tok_strmap_get(&t->bytes_map, (const char *)s, n) : -1;
	if (whole >= 0) {
		e->syms[0] = whole;
		m = 1;
	} else {
		m = word_symbols(t, s, n, e->syms);
		m = m <= SCAN_MAX ? tok_bpe_scan(t, e->syms, m) : tok_bpe_heap(t, e->syms, m);
	}
	push_ids(e->out, e->syms, m);
	if (cached)
		cache_put(e, s, n, h, e->syms, m);
}

/* --- pre-tokenizer steps --- */

static void run_steps(struct tok_encoder *e, int k, const uint8_t *s, size_t n);

struct step_ctx {
	struct tok_encoder *e;
	int k;
};

static void step_piece(const uint8_t *p, size_t len, void *ctx)
{
	struct step_ctx *c = ctx;
	run_steps(c->e, c->k, p, len);
}

static void emit_piece(const uint8_t *p, size_t len, void *e)
{
	emit_word(e, p, len);
}

static void bytelevel(struct tok_encoder *e, const struct tok_step *st, const uint8_t *s,
		      size_t n)
{
	if (st->add_prefix_space && s[0] != ' ') {
		if (n + 1 > e->prefix_cap) {
			e->prefix_cap = 2 * (n + 1);
			e->prefix = hug_realloc(e->prefix, e->prefix_cap);
		}
		e->prefix[0] = ' ';
		memcpy(e->prefix + 1, s, n);
		s = (const uint8_t *)e->prefix;
		n++;
	}
	if (st->use_regex)
		tok_gpt2_pieces(s, n, emit_piece, e);
	else
		emit_word(e, s, n);
}

static void run_steps(struct tok_encoder *e, int k, const uint8_t *s, size_t n)
{
	const struct tok_step *st = &e->tok->steps[k];
	if (n == 0)
		return;
	if (st->kind == STEP_BYTELEVEL) {
		bytelevel(e, st, s, n);
	} else if (st->kind == STEP_SPLIT_GPT2) {
		while (n > 0) {
			size_t len = tok_gpt2_piece(s, n);
			run_steps(e, k + 1, s, len);
			s += len;
			n -= len;
		}
	} else {
		struct step_ctx c = { e, k + 1 };
		tok_bloom_pieces(s, n, step_piece, &c);
	}
}

/* --- added tokens --- */

/* The leftmost-longest added token of `pass` (0: normalized false, 1:
 * true) in s[0..n): true with its span [*a, *b) and id. */
static bool find_added(const struct tokenizer *t, int pass, const uint8_t *s, size_t n,
		       size_t *a, size_t *b, const struct tok_added **which)
{
	uint8_t bit = (uint8_t)(1 << pass);
	for (size_t i = 0; i < n; i++) {
		if (!(t->added_first[s[i]] & bit))
			continue;
		const struct tok_added *best = NULL;
		for (int k = 0; k < t->n_added; k++) {
			const struct tok_added *x = &t->added[k];
			if (x->normalized == pass && x->len <= n - i &&
			    (!best || x->len > best->len) && !memcmp(s + i, x->content, x->len))
				best = x;
		}
		if (best) {
			*a = i;
			*b = i + best->len;
			*which = best;
			return true;
		}
	}
	return false;
}

static bool is_space_at(const uint8_t *s, size_t n, int *len)
{
	enum utf8_class c;
	*len = utf8_next_class(s, n, &c);
	return c == UC_S;
}

/* lstrip: the start moves left over whitespace (not before s); rstrip: the
 * end moves right over whitespace. */
static void strip_span(const struct tok_added *x, const uint8_t *s, size_t n, size_t *a,
		       size_t *b)
{
	int len;
	if (x->lstrip) {
		size_t keep = 0;
		for (size_t i = 0; i < *a; i += (size_t)len)
			if (!is_space_at(s + i, *a - i, &len))
				keep = i + (size_t)len;
		*a = keep;
	}
	if (x->rstrip)
		while (*b < n && is_space_at(s + *b, n - *b, &len))
			*b += (size_t)len;
}

static void encode_segment(struct tok_encoder *e, int pass, const uint8_t *s, size_t n)
{
	const struct tokenizer *t = e->tok;
	size_t a, b;
	const struct tok_added *x;
	if (n == 0)
		return;
	if (pass == 2) {
		run_steps(e, 0, s, n);
		return;
	}
	while (find_added(t, pass, s, n, &a, &b, &x)) {
		strip_span(x, s, n, &a, &b);
		encode_segment(e, pass + 1, s, a);
		tok_ids_push(e->out, x->id);
		s += b;
		n -= b;
	}
	encode_segment(e, pass + 1, s, n);
}

/* --- public --- */

struct tok_encoder *tok_encoder_new(const struct tokenizer *tok)
{
	struct tok_encoder *e = hug_calloc(1, sizeof(*e));
	e->tok = tok;
	e->use_cache = true;
	return e;
}

void tok_encoder_free(struct tok_encoder *e)
{
	if (!e)
		return;
	hug_free(e->syms);
	hug_free(e->prefix);
	hug_free(e->slots);
	hug_free(e->keys);
	hug_free(e->ids);
	hug_free(e);
}

int64_t tok_encoder_encode(struct tok_encoder *e, const char *text, size_t len,
			   struct tok_ids *out)
{
	int64_t before = out->n;
	e->out = out;
	encode_segment(e, e->tok->n_added ? 0 : 2, (const uint8_t *)text, len);
	e->out = NULL;
	return out->n - before;
}

int64_t tokenizer_encode(const struct tokenizer *tok, const char *text, size_t len,
			 struct tok_ids *out)
{
	struct tok_encoder e = { .tok = tok, .use_cache = false };
	int64_t n = tok_encoder_encode(&e, text, len, out);
	hug_free(e.syms);
	hug_free(e.prefix);
	return n;
}
