/* tokenizer_normalize.c: the normalizers of tokenizer.json applied to a
 * string: Unicode normal forms (utf8proc), Lowercase (each character's
 * full lowercase mapping, as Rust's char::to_lowercase), Replace (String or
 * Regex, every match), Prepend (to a non-empty string), Strip (White_Space
 * at either end). Bytes that are not valid UTF-8 pass through unchanged. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer_impl.h"
#include "utf8.h"

bool tok_is_space(const uint8_t *s, size_t n, int *len)
{
	enum utf8_class c;
	*len = utf8_next_class(s, n, &c);
	return c == UC_S;
}

bool tok_is_word_cp(uint32_t cp)
{
	switch (utf8proc_category((utf8proc_int32_t)cp)) {
	case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
	case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
	case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
	case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
		return true;
	default:
		return false;
	}
}

static void put_cp(struct buf *out, uint32_t cp)
{
	utf8proc_uint8_t b[4];
	utf8proc_ssize_t k = utf8proc_encode_char((utf8proc_int32_t)cp, b);
	buf_put(out, b, (size_t)k);
}

/* A normal form of each valid stretch of s; invalid bytes copied. */
static void unicode_form(enum tok_norm_kind kind, const uint8_t *s, size_t n, struct buf *out)
{
	static const utf8proc_option_t opts[] = {
		[NORM_NFC] = UTF8PROC_STABLE | UTF8PROC_COMPOSE,
		[NORM_NFD] = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE,
		[NORM_NFKC] = UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT,
		[NORM_NFKD] = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT,
	};
	while (n > 0) {
		int64_t bad = utf8_find_invalid(s, n);
		size_t good = bad < 0 ? n : (size_t)bad;
		if (good > 0) {
			utf8proc_uint8_t *dst = NULL;
			utf8proc_ssize_t k = utf8proc_map(s, (utf8proc_ssize_t)good, &dst, opts[kind]);
			if (k >= 0)
				buf_put(out, dst, (size_t)k);
			else
				buf_put(out, s, good);
			free(dst);
		}
		if (bad < 0)
			break;
		buf_put(out, s + good, 1);
		s += good + 1;
		n -= good + 1;
	}
}

static void lowercase(const uint8_t *s, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		int len = utf8_decode(s + i, n - i, &cp);
		if (cp == UTF8_INVALID)
			buf_put(out, s + i, 1);
		else if (cp < 0x80)
			buf_put(out, (const char[]){ (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp) }, 1);
		else if (cp == 0x130) /* SpecialCasing: I WITH DOT ABOVE -> i + U+0307 */
			buf_put(out, "i\xcc\x87", 3);
		else
			put_cp(out, (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp));
		i += (size_t)len;
	}
}

static void replace(const struct tok_norm *nm, const uint8_t *s, size_t n, struct buf *out)
{
	struct tok_matches m = { 0 };
	size_t prev = 0;
	tok_regex_find(nm->re, s, n, &m);
	for (size_t i = 0; i < m.n; i++) {
		buf_put(out, s + prev, m.v[2 * i] - prev);
		buf_put(out, nm->content, nm->content_len);
		prev = m.v[2 * i + 1];
	}
	buf_put(out, s + prev, n - prev);
	tok_matches_free(&m);
}

static void strip(const struct tok_norm *nm, const uint8_t *s, size_t n, struct buf *out)
{
	size_t a = 0, b = n;
	int len;
	if (nm->left)
		while (a < n && tok_is_space(s + a, n - a, &len))
			a += (size_t)len;
	if (nm->right) {
		/* the end of the last non-space character */
		size_t last = a;
		for (size_t i = a; i < n; i += (size_t)len)
			if (!tok_is_space(s + i, n - i, &len))
				last = i + (size_t)len;
		b = last;
	}
	buf_put(out, s + a, b - a);
}

static void norm_step(const struct tok_norm *nm, const uint8_t *s, size_t n, struct buf *out)
{
	out->n = 0;
	buf_put(out, "", 0);
	switch (nm->kind) {
	case NORM_NFC: case NORM_NFD: case NORM_NFKC: case NORM_NFKD:
		unicode_form(nm->kind, s, n, out);
		break;
	case NORM_LOWERCASE:
		lowercase(s, n, out);
		break;
	case NORM_REPLACE:
		replace(nm, s, n, out);
		break;
	case NORM_PREPEND:
		if (n > 0)
			buf_put(out, nm->content, nm->content_len);
		buf_put(out, s, n);
		break;
	case NORM_STRIP:
		strip(nm, s, n, out);
		break;
	}
}

void tok_normalize(const struct tokenizer *t, const uint8_t *s, size_t n, struct buf *out,
		   struct buf *tmp)
{
	out->n = 0;
	buf_put(out, s, n);
	for (int i = 0; i < t->n_norms; i++) {
		norm_step(&t->norms[i], (const uint8_t *)out->p, out->n, tmp);
		struct buf x = *out;
		*out = *tmp;
		*tmp = x;
	}
}
