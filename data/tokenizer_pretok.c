/* tokenizer_pretok.c: the two regexes of byte-level pre-tokenizers,
 * matched by hand over UTF-8 with the Unicode class tables:
 *
 *   GPT-2:  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   BLOOM:  ` ?[^(\s|[.,!?…。，、।۔،])]+` as a Split with behavior Isolated
 *
 * A byte that is not part of well-formed UTF-8 counts as one character of
 * class "other" (neither letter, number nor whitespace). */
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
