/* tokenizer_pretok.c: how Split pieces a string under each behavior, and
 * the two regexes of byte-level pre-tokenizers that are common enough to
 * be matched by hand (faster than Oniguruma, and the same pieces) over
 * UTF-8 with the Unicode class tables:
 *
 *   GPT-2:  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   BLOOM:  ` ?[^(\s|[.,!?…。，、।۔،])]+` as a Split with behavior Isolated
 *
 * A byte that is not part of well-formed UTF-8 counts as one character of
 * class "other" (neither letter, number nor whitespace). */
#include "../base/alloc.h"
#include "tokenizer_impl.h"
#include "utf8.h"

/* Length of the contraction ('s 't 're 've 'm 'll 'd) at s, or 0. */
static size_t contraction(const uint8_t *s, size_t n)
{
	if (n < 2 || s[0] != '\'')
		return 0;
	uint8_t c = s[1];
	if (c == 's' || c == 't' || c == 'm' || c == 'd')
		return 2;
	if (n >= 3 && ((c == 'r' && s[2] == 'e') || (c == 'v' && s[2] == 'e') ||
		       (c == 'l' && s[2] == 'l')))
		return 3;
	return 0;
}

/* Length of the run of characters of class `cls` starting at s. */
static size_t class_run(const uint8_t *s, size_t n, enum utf8_class cls)
{
	size_t i = 0;
	while (i < n) {
		enum utf8_class c;
		int len = utf8_next_class(s + i, n - i, &c);
		if (c != cls)
			break;
		i += (size_t)len;
	}
	return i;
}

/* \s+(?!\S)|\s+ at s, which starts with whitespace: the whole run when it
 * reaches the end, else the run less its last character (which then goes
 * with what follows), but at least one character. */
static size_t space_piece(const uint8_t *s, size_t n)
{
	size_t i = 0, last = 0;
	while (i < n) {
		enum utf8_class c;
		int len = utf8_next_class(s + i, n - i, &c);
		if (c != UC_S)
			break;
		last = i;
		i += (size_t)len;
	}
	if (i == n || last == 0)
		return i;
	return last;
}

size_t tok_gpt2_piece(const uint8_t *s, size_t n)
{
	size_t k = contraction(s, n);
	if (k)
		return k;
	enum utf8_class c;
	size_t start = 0;
	utf8_next_class(s, n, &c);
	if (s[0] == ' ' && n > 1) {
		enum utf8_class c1;
		utf8_next_class(s + 1, n - 1, &c1);
		if (c1 != UC_S) {
			start = 1;
			c = c1;
		}
	}
	if (c == UC_S)
		return space_piece(s, n);
	return start + class_run(s + start, n - start, c);
}

/* BLOOM's excluded characters besides whitespace: ( ) | . , ! ? and
 * U+2026 U+3002 U+FF0C U+3001 U+0964 U+06D4 U+060C. */
static bool bloom_excluded(const uint8_t *s, size_t n, int *len)
{
	uint32_t cp;
	*len = utf8_decode(s, n, &cp);
	switch (cp) {
	case '(': case ')': case '|': case '.': case ',': case '!': case '?':
	case 0x2026: case 0x3002: case 0xFF0C: case 0x3001: case 0x0964:
	case 0x06D4: case 0x060C:
		return true;
	default:
		return cp != UTF8_INVALID && utf8_class(cp) == UC_S;
	}
}

void tok_gpt2_pieces(const uint8_t *s, size_t n,
		     void (*fn)(const uint8_t *p, size_t len, void *ctx), void *ctx)
{
	while (n > 0) {
		size_t k = tok_gpt2_piece(s, n);
		fn(s, k, ctx);
		s += k;
		n -= k;
	}
}

void tok_bloom_pieces(const uint8_t *s, size_t n,
		      void (*fn)(const uint8_t *p, size_t len, void *ctx), void *ctx)
{
	size_t gap = 0, i = 0;
	while (i < n) {
		int len;
		size_t start = i;
		bool ex = bloom_excluded(s + i, n - i, &len);
		if (ex && s[i] == ' ' && i + 1 < n) {
			int len1;
			if (!bloom_excluded(s + i + 1, n - i - 1, &len1)) {
				ex = false;
				i += 1;
				len = len1;
			}
		}
		if (ex) {
			i += (size_t)len;
			continue;
		}
		/* a match from start: word characters while not excluded */
		i += (size_t)len;
		while (i < n && !bloom_excluded(s + i, n - i, &len))
			i += (size_t)len;
		if (start > gap)
			fn(s + gap, start - gap, ctx);
		fn(s + start, i - start, ctx);
		gap = i;
	}
	if (n > gap)
		fn(s + gap, n - gap, ctx);
}

/* --- Split behaviors --- */

struct span {
	size_t a, b;
	bool match;
};

static void push_range(struct tok_matches *o, size_t a, size_t b)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? 2 * o->cap : 64;
		o->v = hug_realloc(o->v, o->cap * 2 * sizeof(size_t));
	}
	o->v[2 * o->n] = a;
	o->v[2 * o->n + 1] = b;
	o->n++;
}

void tok_split_ranges(const struct tok_matches *m, size_t n, enum tok_split_behavior beh,
		      bool invert, struct tok_matches *out)
{
	out->n = 0;
	if (n == 0)
		return;
	/* the spans covering [0, n): gaps (not matches) and matches */
	struct span *sp = hug_malloc((2 * m->n + 1) * sizeof(*sp));
	size_t k = 0, prev = 0;
	for (size_t i = 0; i < m->n; i++) {
		size_t a = m->v[2 * i], b = m->v[2 * i + 1];
		if (prev != a)
			sp[k++] = (struct span){ prev, a, invert };
		sp[k++] = (struct span){ a, b, !invert };
		prev = b;
	}
	if (prev != n)
		sp[k++] = (struct span){ prev, n, invert };
	/* fold them as tokenizers' NormalizedString::split does; `removed`
	 * marks spans dropped by Removed */
	struct span *r = hug_malloc((k + 1) * sizeof(*r));
	size_t nr = 0;
	bool prev_match = false;
	switch (beh) {
	case SPLIT_ISOLATED:
		for (size_t i = 0; i < k; i++)
			r[nr++] = (struct span){ sp[i].a, sp[i].b, false };
		break;
	case SPLIT_REMOVED:
		for (size_t i = 0; i < k; i++)
			r[nr++] = sp[i];
		break;
	case SPLIT_CONTIGUOUS:
		for (size_t i = 0; i < k; i++) {
			if (sp[i].match == prev_match && nr > 0)
				r[nr - 1].b = sp[i].b;
			else
				r[nr++] = (struct span){ sp[i].a, sp[i].b, false };
			prev_match = sp[i].match;
		}
		break;
	case SPLIT_MERGED_PREV:
		for (size_t i = 0; i < k; i++) {
			if (sp[i].match && !prev_match && nr > 0)
				r[nr - 1].b = sp[i].b;
			else
				r[nr++] = (struct span){ sp[i].a, sp[i].b, false };
			prev_match = sp[i].match;
		}
		break;
	case SPLIT_MERGED_NEXT:
		/* built from the end, then read back to front */
		for (size_t i = k; i-- > 0;) {
			if (sp[i].match && !prev_match && nr > 0)
				r[nr - 1].a = sp[i].a;
			else
				r[nr++] = (struct span){ sp[i].a, sp[i].b, false };
			prev_match = sp[i].match;
		}
		for (size_t i = 0; i < nr / 2; i++) {
			struct span x = r[i];
			r[i] = r[nr - 1 - i];
			r[nr - 1 - i] = x;
		}
		break;
	}
	for (size_t i = 0; i < nr; i++)
		if (!r[i].match && r[i].b > r[i].a)
			push_range(out, r[i].a, r[i].b);
	hug_free(sp);
	hug_free(r);
}
