/* tokenizer_bpe.c: encoding, as tokenizers does it. Added tokens with
 * normalized=false are split off the raw text; each stretch between them
 * is normalized, split again by the added tokens with normalized=true, and
 * the rest goes through the pre-tokenizer steps; each resulting word is
 * cut into symbols (bytes after ByteLevel, else characters, with
 * byte_fallback or unk for characters outside the vocabulary) and merged
 * by BPE, lowest merge rank first and leftmost on ties, through a
 * per-encoder word cache. The post-processor's template ids go around the
 * whole when asked. */
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
	struct tok_matches matches[TOK_MAX_STEPS]; /* per step: pattern matches */
	struct tok_matches ranges[TOK_MAX_STEPS];  /* per step: pieces */
	struct buf scratch[TOK_MAX_STEPS];         /* per step: rewritten piece */
	struct buf norm, norm_tmp;  /* the normalized stretch */
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

/* Appends symbol `id` for one character, flushing a pending unk first. */
static void add_symbol(int32_t *out, int *m, int32_t *unk, int32_t id)
{
	if (*unk >= 0) {
		out[(*m)++] = *unk;
		*unk = -1;
	}
	out[(*m)++] = id;
}

/* A character (its bytes c[0..len)) outside the vocabulary: its bytes'
 * <0xNN> tokens when byte_fallback has them all, else unk (fused into a
 * pending one when fuse_unk), else nothing, as tokenizers' BPE does. */
static void unknown_char(const struct tokenizer *t, const uint8_t *c, int len, int32_t *out,
			 int *m, int32_t *unk)
{
	if (t->byte_fallback) {
		int k = 0;
		while (k < len && t->fallback_id[c[k]] >= 0)
			k++;
		if (k == len) {
			for (k = 0; k < len; k++)
				out[(*m)++] = t->fallback_id[c[k]];
			return;
		}
	}
	if (t->unk_id < 0)
		return;
	if (*unk >= 0 && !t->fuse_unk)
		out[(*m)++] = *unk;
	*unk = t->unk_id;
}

/* The symbols of word s[0..n): one per byte after ByteLevel, else one per
 * character (an invalid byte counts as a character); returns their count
 * (at most n). */
static int word_symbols(const struct tokenizer *t, const uint8_t *s, size_t n, int32_t *out)
{
	int m = 0;
	int32_t unk = -1;
	if (t->byte_level) {
		for (size_t i = 0; i < n; i++) {
			int32_t id = t->byte_id[s[i]];
			if (id >= 0) {
				add_symbol(out, &m, &unk, id);
			} else {
				char c[4];
				int len = tok_byte_utf8(s[i], c);
				unknown_char(t, (const uint8_t *)c, len, out, &m, &unk);
			}
		}
	} else {
		for (size_t i = 0; i < n;) {
			uint32_t cp;
			int len = utf8_decode(s + i, n - i, &cp);
			int32_t id = tok_strmap_get(&t->text_map, (const char *)s + i, (size_t)len);
			if (id >= 0)
				add_symbol(out, &m, &unk, id);
			else
				unknown_char(t, s + i, len, out, &m, &unk);
			i += (size_t)len;
		}
	}
	if (unk >= 0)
		out[m++] = unk;
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
		e->syms_cap = 2 * n + 4;
		e->syms = hug_realloc(e->syms, e->syms_cap * sizeof(int32_t));
	}
	int m;
	int32_t whole = !t->ignore_merges ? -1 :
		t->byte_level ? tok_strmap_get(&t->bytes_map, (const char *)s, n) :
		tok_strmap_get(&t->text_map, (const char *)s, n);
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

static void run_steps(struct tok_encoder *e, int k, const uint8_t *s, size_t n, bool first);

struct step_ctx {
	struct tok_encoder *e;
	int k;
	const uint8_t *base;
	bool first;
};

static void step_piece(const uint8_t *p, size_t len, void *ctx)
{
	struct step_ctx *c = ctx;
	run_steps(c->e, c->k, p, len, c->first && p == c->base);
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

/* Runs the steps from k on the pieces of ranges (offsets into s). */
static void run_ranges(struct tok_encoder *e, int k, const uint8_t *s,
		       const struct tok_matches *r, bool first)
{
	for (size_t i = 0; i < r->n; i++)
		run_steps(e, k + 1, s + r->v[2 * i], r->v[2 * i + 1] - r->v[2 * i],
			  first && r->v[2 * i] == 0);
}

/* Metaspace: spaces become the replacement, which is prepended as the
 * scheme says (first: only to the piece at the start of the text), then
 * the piece is split before each replacement when `split`. */
static void metaspace(struct tok_encoder *e, int k, const struct tok_step *st,
		      const uint8_t *s, size_t n, bool first)
{
	struct buf *b = &e->scratch[k];
	size_t rl = (size_t)st->repl_len;
	b->n = 0;
	buf_put(b, "", 0);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ')
			buf_put(b, st->repl, rl);
		else
			buf_put(b, s + i, 1);
	}
	bool starts = b->n >= rl && !memcmp(b->p, st->repl, rl);
	if (!starts && (st->prepend == PREPEND_ALWAYS || (st->prepend == PREPEND_FIRST && first))) {
		buf_put(b, st->repl, rl); /* grow, then shift */
		memmove(b->p + rl, b->p, b->n - rl);
		memcpy(b->p, st->repl, rl);
	}
	const uint8_t *p = (const uint8_t *)b->p;
	if (!st->split) {
		run_steps(e, k + 1, p, b->n, first);
		return;
	}
	struct tok_matches *m = &e->matches[k];
	m->n = 0;
	for (size_t i = 0; i + rl <= b->n; i++) {
		if (memcmp(p + i, st->repl, rl))
			continue;
		if (m->n == m->cap) {
			m->cap = m->cap ? 2 * m->cap : 64;
			m->v = hug_realloc(m->v, m->cap * 2 * sizeof(size_t));
		}
		m->v[2 * m->n] = i;
		m->v[2 * m->n + 1] = i + rl;
		m->n++;
		i += rl - 1;
	}
	tok_split_ranges(m, b->n, SPLIT_MERGED_NEXT, false, &e->ranges[k]);
	run_ranges(e, k, p, &e->ranges[k], first);
}

/* The pre-tokenizer steps from k on piece s[0..n); `first`: the piece
 * starts the text (Metaspace's prepend_scheme "first"). Past the last
 * step, the piece is a word. */
static void run_steps(struct tok_encoder *e, int k, const uint8_t *s, size_t n, bool first)
{
	if (n == 0)
		return;
	if (k == e->tok->n_steps) {
		emit_word(e, s, n);
		return;
	}
	const struct tok_step *st = &e->tok->steps[k];
	switch (st->kind) {
	case STEP_BYTELEVEL:
		bytelevel(e, st, s, n);
		break;
	case STEP_SPLIT_GPT2:
		for (size_t off = 0; off < n;) {
			size_t len = tok_gpt2_piece(s + off, n - off);
			run_steps(e, k + 1, s + off, len, first && off == 0);
			off += len;
		}
		break;
	case STEP_SPLIT_BLOOM: {
		struct step_ctx c = { e, k + 1, s, first };
		tok_bloom_pieces(s, n, step_piece, &c);
		break;
	}
	case STEP_SPLIT:
		tok_regex_find(st->re, s, n, &e->matches[k]);
		tok_split_ranges(&e->matches[k], n, st->behavior, st->invert, &e->ranges[k]);
		run_ranges(e, k, s, &e->ranges[k], first);
		break;
	case STEP_METASPACE:
		metaspace(e, k, st, s, n, first);
		break;
	}
}

/* --- added tokens --- */

/* The leftmost-longest added token of `pass` (0: normalized false, 1:
 * true) in s[from..n): true with its span [*a, *b) and id. */
static bool find_added(const struct tokenizer *t, int pass, const uint8_t *s, size_t n,
		       size_t from, size_t *a, size_t *b, const struct tok_added **which)
{
	uint8_t bit = (uint8_t)(1 << pass);
	for (size_t i = from; i < n; i++) {
		if (!(t->added_first[s[i]] & bit))
			continue;
		const struct tok_added *best = NULL;
		for (int k = 0; k < t->n_added; k++) {
			const struct tok_added *x = &t->added[k];
			if (x->normalized == pass && x->match_len <= n - i &&
			    (!best || x->match_len > best->match_len) &&
			    !memcmp(s + i, x->match, x->match_len))
				best = x;
		}
		if (best) {
			*a = i;
			*b = i + best->match_len;
			*which = best;
			return true;
		}
	}
	return false;
}

/* Whether the character at s[0..n) is a word character (\w: letters,
 * marks, decimal digits, connector punctuation, joiners). */
static bool is_word_char(const uint8_t *s, size_t n)
{
	uint32_t cp;
	utf8_decode(s, n, &cp);
	if (cp == UTF8_INVALID)
		return false;
	if (cp < 0x80)
		return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
		       (cp >= 'A' && cp <= 'Z') || cp == '_';
	return cp == 0x200C || cp == 0x200D || tok_is_word_cp(cp);
}

/* single_word: the match [a, b) of s[0..n) neither follows nor precedes a
 * word character. */
static bool single_word_ok(const uint8_t *s, size_t n, size_t a, size_t b)
{
	if (a > 0) {
		size_t i = a - 1;
		while (i > 0 && (s[i] & 0xC0) == 0x80 && a - i < 4)
			i--;
		if (is_word_char(s + i, a - i))
			return false;
	}
	return b == n || !is_word_char(s + b, n - b);
}

/* lstrip: the start moves left over whitespace (not before `floor`);
 * rstrip: the end moves right over whitespace. */
static void strip_span(const struct tok_added *x, const uint8_t *s, size_t n, size_t floor,
		       size_t *a, size_t *b)
{
	int len;
	if (x->lstrip) {
		size_t keep = 0;
		for (size_t i = 0; i < *a; i += (size_t)len)
			if (!tok_is_space(s + i, *a - i, &len))
				keep = i + (size_t)len;
		*a = keep > floor ? keep : floor;
	}
	if (x->rstrip)
		while (*b < n && tok_is_space(s + *b, n - *b, &len))
			*b += (size_t)len;
}

static void encode_segment(struct tok_encoder *e, int pass, const uint8_t *s, size_t n,
			   bool first);

/* A stretch between non-normalized added tokens: normalized, then split
 * by the normalized ones. */
static void normalized_segment(struct tok_encoder *e, const uint8_t *s, size_t n, bool first)
{
	const struct tokenizer *t = e->tok;
	if (t->n_norms == 0) {
		encode_segment(e, 1, s, n, first);
		return;
	}
	tok_normalize(t, s, n, &e->norm, &e->norm_tmp);
	encode_segment(e, 1, (const uint8_t *)e->norm.p, e->norm.n, first);
}

/* Splits s[0..n) by the added tokens of `pass` (0: normalized false, 1:
 * true; 2: none left), as tokenizers' AddedVocabulary does. */
static void encode_segment(struct tok_encoder *e, int pass, const uint8_t *s, size_t n,
			   bool first)
{
	const struct tokenizer *t = e->tok;
	size_t a, b, done = 0, pos = 0;
	const struct tok_added *x;
	if (n == 0)
		return;
	if (pass == 2) {
		run_steps(e, 0, s, n, first);
		return;
	}
	while (find_added(t, pass, s, n, pos, &a, &b, &x)) {
		pos = b;
		if (x->single_word && !single_word_ok(s, n, a, b))
			continue;
		strip_span(x, s, n, done, &a, &b);
		if (pass == 0)
			normalized_segment(e, s + done, a - done, first && done == 0);
		else
			encode_segment(e, 2, s + done, a - done, first && done == 0);
		tok_ids_push(e->out, x->id);
		done = pos = b;
	}
	if (pass == 0)
		normalized_segment(e, s + done, n - done, first && done == 0);
	else
		encode_segment(e, 2, s + done, n - done, first && done == 0);
}

/* --- public --- */

static void encoder_scratch_free(struct tok_encoder *e);

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
	encoder_scratch_free(e);
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
	const struct tokenizer *t = e->tok;
	int pass = t->n_added ? 0 : 2;
	if (pass == 2 && t->n_norms > 0)
		normalized_segment(e, (const uint8_t *)text, len, true);
	else
		encode_segment(e, pass, (const uint8_t *)text, len, true);
	e->out = NULL;
	return out->n - before;
}

int64_t tok_encoder_encode_special(struct tok_encoder *e, const char *text, size_t len,
				   bool add_special, struct tok_ids *out)
{
	const struct tokenizer *t = e->tok;
	int64_t before = out->n;
	for (int i = 0; add_special && i < t->n_tmpl_pre; i++)
		tok_ids_push(out, t->tmpl_pre[i]);
	tok_encoder_encode(e, text, len, out);
	for (int i = 0; add_special && i < t->n_tmpl_post; i++)
		tok_ids_push(out, t->tmpl_post[i]);
	return out->n - before;
}

static void encoder_scratch_free(struct tok_encoder *e)
{
	hug_free(e->syms);
	hug_free(e->prefix);
	for (int k = 0; k < TOK_MAX_STEPS; k++) {
		tok_matches_free(&e->matches[k]);
		tok_matches_free(&e->ranges[k]);
		buf_free(&e->scratch[k]);
	}
	buf_free(&e->norm);
	buf_free(&e->norm_tmp);
}

int64_t tokenizer_encode(const struct tokenizer *tok, const char *text, size_t len,
			 struct tok_ids *out)
{
	struct tok_encoder e = { .tok = tok, .use_cache = false };
	int64_t n = tok_encoder_encode(&e, text, len, out);
	encoder_scratch_free(&e);
	return n;
}

int64_t tokenizer_encode_special(const struct tokenizer *tok, const char *text, size_t len,
				 bool add_special, struct tok_ids *out)
{
	struct tok_encoder e = { .tok = tok, .use_cache = false };
	int64_t n = tok_encoder_encode_special(&e, text, len, add_special, out);
	encoder_scratch_free(&e);
	return n;
}

void tokenizer_template(const struct tokenizer *tok, const int32_t **pre, int *n_pre,
			const int32_t **post, int *n_post)
{
	*pre = tok->tmpl_pre;
	*n_pre = tok->n_tmpl_pre;
	*post = tok->tmpl_post;
	*n_post = tok->n_tmpl_post;
}
