/* tokenizer_regex.c: the regular expressions of tokenizer.json (Split and
 * Replace patterns), compiled and matched by Oniguruma, the engine Hugging
 * Face tokenizers uses, with its default (Oniguruma/Ruby) syntax over UTF-8.
 * Matches are enumerated as tokenizers' find_iter does: left to right,
 * non-overlapping, an empty match right after the previous match skipped.
 * Text that is not valid UTF-8 is matched with each invalid byte read as
 * U+FFFD (a character of class "other"); offsets refer to the real text. */
#include <oniguruma.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "tokenizer_impl.h"
#include "utf8.h"

static void onig_init_once(void)
{
	OnigEncoding enc[1] = { ONIG_ENCODING_UTF8 };
	onig_initialize(enc, 1);
}

static pthread_once_t onig_once = PTHREAD_ONCE_INIT;

/* Escapes the regex metacharacters of s (as tokenizers escapes a String
 * pattern before compiling it); other characters stand for themselves. */
static char *escape_literal(const char *s, size_t n, size_t *out_n)
{
	char *o = hug_malloc(2 * n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] && strchr("\\^$.|?*+()[]{}#-&~", s[i]))
			o[k++] = '\\';
		o[k++] = s[i];
	}
	o[k] = '\0';
	*out_n = k;
	return o;
}

struct tok_regex *tok_regex_new(const char *pattern, size_t n, bool literal, char *msg,
				size_t msg_cap)
{
	pthread_once(&onig_once, onig_init_once);
	size_t pn = n;
	char *pat = literal ? escape_literal(pattern, n, &pn) : NULL;
	const char *p = pat ? pat : pattern;
	OnigErrorInfo einfo;
	regex_t *re = NULL;
	int r = -1;
	if (utf8_find_invalid((const uint8_t *)p, pn) < 0)
		r = onig_new(&re, (const UChar *)p, (const UChar *)p + pn, ONIG_OPTION_NONE,
			     ONIG_ENCODING_UTF8, ONIG_SYNTAX_ONIGURUMA, &einfo);
	hug_free(pat);
	if (r != ONIG_NORMAL) {
		UChar s[ONIG_MAX_ERROR_MESSAGE_LEN] = "the pattern is not valid UTF-8";
		if (r != -1)
			onig_error_code_to_str(s, r, &einfo);
		snprintf(msg, msg_cap, "%s", (const char *)s);
		return NULL;
	}
	struct tok_regex *x = hug_calloc(1, sizeof(*x));
	x->re = re;
	x->source = hug_malloc(n + 1);
	memcpy(x->source, pattern, n);
	x->source[n] = '\0';
	x->literal = literal;
	return x;
}

void tok_regex_free(struct tok_regex *x)
{
	if (!x)
		return;
	onig_free((regex_t *)x->re);
	hug_free(x->source);
	hug_free(x);
}

/* Pushes (a, b) onto m. */
static void push_match(struct tok_matches *m, size_t a, size_t b)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->v = hug_realloc(m->v, m->cap * 2 * sizeof(size_t));
	}
	m->v[2 * m->n] = a;
	m->v[2 * m->n + 1] = b;
	m->n++;
}

/* find_iter over valid UTF-8 s[0..n). */
static void find_valid(const regex_t *re, const uint8_t *s, size_t n, OnigRegion *region,
		       struct tok_matches *m)
{
	size_t pos = 0;
	long last_end = -1;
	while (pos <= n) {
		onig_region_clear(region);
		int r = onig_search((regex_t *)re, s, s + n, s + pos, s + n, region,
				    ONIG_OPTION_NONE);
		if (r < 0)
			break;
		size_t a = (size_t)region->beg[0], b = (size_t)region->end[0];
		if (a == b && last_end == (long)b) {
			uint32_t cp;
			pos += pos < n ? (size_t)utf8_decode(s + pos, n - pos, &cp) : 1;
			continue;
		}
		pos = b;
		last_end = (long)b;
		push_match(m, a, b);
	}
}

void tok_regex_find(const struct tok_regex *x, const uint8_t *s, size_t n,
		    struct tok_matches *m)
{
	OnigRegion *region = onig_region_new();
	m->n = 0;
	int64_t bad = utf8_find_invalid(s, n);
	if (bad < 0) {
		find_valid(x->re, s, n, region, m);
		onig_region_free(region, 1);
		return;
	}
	/* a sanitized copy with each invalid byte as U+FFFD, and where each of
	 * its offsets lies in s */
	uint8_t *t = hug_malloc(3 * n + 1);
	size_t *at = hug_malloc((3 * n + 1) * sizeof(size_t));
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		int len = utf8_decode(s + i, n - i, &cp);
		if (cp == UTF8_INVALID) {
			for (int j = 0; j < 3; j++)
				at[k + (size_t)j] = i;
			memcpy(t + k, "\xef\xbf\xbd", 3);
			k += 3;
		} else {
			for (int j = 0; j < len; j++)
				at[k + (size_t)j] = i + (size_t)j;
			memcpy(t + k, s + i, (size_t)len);
			k += (size_t)len;
		}
		i += (size_t)len;
	}
	at[k] = n;
	find_valid(x->re, t, k, region, m);
	for (size_t i = 0; i < 2 * m->n; i++)
		m->v[i] = at[m->v[i]];
	onig_region_free(region, 1);
	hug_free(t);
	hug_free(at);
}

void tok_matches_free(struct tok_matches *m)
{
	hug_free(m->v);
	memset(m, 0, sizeof(*m));
}
