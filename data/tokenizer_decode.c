/* tokenizer_decode.c: ids back to text through the tokenizer.json decoder,
 * as tokenizers' decode does: each id becomes its token text (special
 * added tokens left out on request), the decoder steps rewrite that list
 * of strings in turn (ByteLevel, Metaspace, ByteFallback, Fuse, Strip,
 * Replace), and the result is their concatenation. Without a decoder the
 * token texts are joined with spaces. Bytes that are not valid UTF-8
 * become U+FFFD as tokenizers writes them: ByteLevel one per maximal
 * ill-formed subpart (String::from_utf8_lossy), ByteFallback one per byte
 * of a run of byte tokens that is not valid as a whole. */
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "tokenizer_impl.h"
#include "utf8.h"

struct strs {
	struct buf *v;
	int64_t n, cap;
};

static struct buf *strs_push(struct strs *l)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = hug_realloc(l->v, (size_t)l->cap * sizeof(*l->v));
	}
	struct buf *b = &l->v[l->n++];
	memset(b, 0, sizeof(*b));
	buf_put(b, "", 0);
	return b;
}

static void strs_free(struct strs *l)
{
	for (int64_t i = 0; i < l->n; i++)
		buf_free(&l->v[i]);
	hug_free(l->v);
	memset(l, 0, sizeof(*l));
}

/* The bytes a token's characters stand for in the ByteLevel alphabet, or
 * the token itself when one is outside it. */
static void bytelevel_token(const struct buf *tk, struct buf *out)
{
	size_t start = out->n;
	const uint8_t *s = (const uint8_t *)tk->p;
	for (size_t i = 0; i < tk->n;) {
		uint32_t cp;
		int len = utf8_decode(s + i, tk->n - i, &cp);
		int b = cp == UTF8_INVALID ? -1 : tok_cp_to_byte(cp);
		if (b < 0) {
			out->n = start;
			buf_put(out, tk->p, tk->n);
			return;
		}
		buf_put(out, (const char[]){ (char)b }, 1);
		i += (size_t)len;
	}
}

/* "<0xNN>": the byte, or -1. */
static int fallback_byte(const struct buf *tk)
{
	static const char hex[] = "0123456789ABCDEF0123456789abcdef";
	if (tk->n != 6 || memcmp(tk->p, "<0x", 3) || tk->p[5] != '>')
		return -1;
	const char *h = strchr(hex, tk->p[3]), *l = strchr(hex, tk->p[4]);
	if (!h || !l || !tk->p[3] || !tk->p[4])
		return -1;
	return (int)((h - hex) % 16 * 16 + (l - hex) % 16);
}

static void flush_bytes(struct strs *out, struct buf *bytes)
{
	if (!bytes->n)
		return;
	if (utf8_find_invalid((const uint8_t *)bytes->p, bytes->n) < 0) {
		buf_put(strs_push(out), bytes->p, bytes->n);
	} else {
		for (size_t i = 0; i < bytes->n; i++)
			buf_put(strs_push(out), "\xef\xbf\xbd", 3);
	}
	bytes->n = 0;
}

/* The number of characters c (repl[0..len)) that s[0..n) starts with, at
 * most `max`, as a byte length. */
static size_t strip_start(const char *s, size_t n, const char *c, int len, int max)
{
	size_t k = 0;
	for (int i = 0; i < max && k + (size_t)len <= n && !memcmp(s + k, c, (size_t)len); i++)
		k += (size_t)len;
	return k;
}

static size_t strip_stop(const char *s, size_t n, const char *c, int len, int max)
{
	size_t k = 0;
	for (int i = 0; i < max && k + (size_t)len <= n && !memcmp(s + n - k - (size_t)len, c,
								  (size_t)len); i++)
		k += (size_t)len;
	return k;
}

/* One decoder step: in -> out. */
static void dec_step(const struct tok_dec *d, struct strs *in, struct strs *out)
{
	struct buf bytes = { 0 };
	switch (d->kind) {
	case DEC_BYTELEVEL: {
		for (int64_t i = 0; i < in->n; i++)
			bytelevel_token(&in->v[i], &bytes);
		utf8_append_lossy(strs_push(out), (const uint8_t *)bytes.p, bytes.n);
		bytes.n = 0;
		break;
	}
	case DEC_FUSE: {
		struct buf *o = strs_push(out);
		for (int64_t i = 0; i < in->n; i++)
			buf_put(o, in->v[i].p, in->v[i].n);
		break;
	}
	case DEC_BYTEFALLBACK:
		for (int64_t i = 0; i < in->n; i++) {
			int b = fallback_byte(&in->v[i]);
			if (b >= 0) {
				buf_put(&bytes, (const char[]){ (char)b }, 1);
				continue;
			}
			flush_bytes(out, &bytes);
			buf_put(strs_push(out), in->v[i].p, in->v[i].n);
		}
		flush_bytes(out, &bytes);
		break;
	case DEC_METASPACE:
		for (int64_t i = 0; i < in->n; i++) {
			struct buf *o = strs_push(out);
			const char *s = in->v[i].p;
			size_t n = in->v[i].n, len = (size_t)d->repl_len;
			for (size_t k = 0; k < n;) {
				if (k + len <= n && !memcmp(s + k, d->repl, len)) {
					if (!(i == 0 && d->prepend))
						buf_put(o, " ", 1);
					k += len;
				} else {
					buf_put(o, s + k, 1);
					k++;
				}
			}
		}
		break;
	case DEC_STRIP:
		for (int64_t i = 0; i < in->n; i++) {
			const char *s = in->v[i].p;
			size_t n = in->v[i].n;
			size_t a = strip_start(s, n, d->repl, d->repl_len, d->start);
			size_t b = strip_stop(s + a, n - a, d->repl, d->repl_len, d->stop);
			buf_put(strs_push(out), s + a, n - a - b);
		}
		break;
	case DEC_REPLACE: {
		struct tok_matches m = { 0 };
		for (int64_t i = 0; i < in->n; i++) {
			struct buf *o = strs_push(out);
			const uint8_t *s = (const uint8_t *)in->v[i].p;
			size_t n = in->v[i].n, prev = 0;
			tok_regex_find(d->re, s, n, &m);
			for (size_t j = 0; j < m.n; j++) {
				buf_put(o, s + prev, m.v[2 * j] - prev);
				buf_put(o, d->content, d->content_len);
				prev = m.v[2 * j + 1];
			}
			buf_put(o, s + prev, n - prev);
		}
		tok_matches_free(&m);
		break;
	}
	}
	buf_free(&bytes);
}

static int check_id(const struct tokenizer *t, int64_t i, int32_t id, struct hug_error *err)
{
	if (id < 0 || id >= t->vocab_size || !t->text[id])
		return hug_error_set(err, "token %lld: id %d is not in the vocabulary (size %lld)",
				     (long long)i, id, (long long)t->vocab_size);
	return 0;
}

int tokenizer_decode(const struct tokenizer *t, const int32_t *ids, int64_t n,
		     bool skip_special, struct buf *out, struct hug_error *err)
{
	out->n = 0;
	buf_put(out, "", 0);
	if (t->n_decs == 1 && t->decs[0].kind == DEC_BYTELEVEL) {
		/* the common case, straight from the per-id bytes */
		for (int64_t i = 0; i < n; i++) {
			if (check_id(t, i, ids[i], err))
				return -1;
			if (!(skip_special && t->special[ids[i]]))
				buf_put(out, t->bytes[ids[i]], t->bytes_len[ids[i]]);
		}
		if (utf8_find_invalid((const uint8_t *)out->p, out->n) >= 0) {
			struct buf raw = *out;
			memset(out, 0, sizeof(*out));
			buf_put(out, "", 0);
			utf8_append_lossy(out, (const uint8_t *)raw.p, raw.n);
			buf_free(&raw);
		}
		return 0;
	}
	struct strs a = { 0 }, b = { 0 };
	for (int64_t i = 0; i < n; i++) {
		if (check_id(t, i, ids[i], err)) {
			strs_free(&a);
			return -1;
		}
		if (!(skip_special && t->special[ids[i]]))
			buf_str(strs_push(&a), t->text[ids[i]]);
	}
	for (int k = 0; k < t->n_decs; k++) {
		for (int64_t i = 0; i < b.n; i++)
			buf_free(&b.v[i]);
		b.n = 0;
		dec_step(&t->decs[k], &a, &b);
		struct strs x = a;
		a = b;
		b = x;
	}
	for (int64_t i = 0; i < a.n; i++) {
		if (!t->has_decoder && i > 0)
			buf_put(out, " ", 1);
		buf_put(out, a.v[i].p, a.v[i].n);
	}
	strs_free(&a);
	strs_free(&b);
	return 0;
}
