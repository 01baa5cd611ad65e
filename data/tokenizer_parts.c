/* tokenizer_parts.c: reads the normalizer and the decoder of a
 * tokenizer.json into flat lists of steps (a Sequence is flattened),
 * refusing by JSON path what hug does not implement. */
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/json.h"
#include "tokenizer_impl.h"
#include "utf8.h"

static const char *type_of(const cJSON *obj)
{
	const cJSON *ty = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "type") : NULL;
	return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

static int bad(struct tok_pipe *P, const char *path, const char *expected)
{
	return hug_error_set(P->err, "%s: %s: expected %s", P->name, path, expected);
}

/* A string member `key` of o, copied into *out (length *len). */
static int get_string(struct tok_pipe *P, const cJSON *o, const char *path, const char *key,
		      char **out, size_t *len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsString(v)) {
		char p[200];
		snprintf(p, sizeof(p), "%s.%s", path, key);
		return bad(P, p, "a string");
	}
	*len = strlen(v->valuestring);
	*out = hug_strdup(v->valuestring);
	return 0;
}

static int opt_bool(struct tok_pipe *P, const cJSON *o, const char *key, const char *path,
		    bool *out)
{
	return hug_json_get_bool(&(struct json_at){ P->name, path }, o, key, false, out, P->err);
}

/* --- normalizer --- */

static int add_norm(struct tok_pipe *P, const char *path, struct tok_norm n)
{
	if (P->t->n_norms == TOK_MAX_STEPS) {
		tok_regex_free(n.re);
		hug_free(n.content);
		return hug_error_set(P->err, "%s: %s: a normalizer Sequence this long is not "
				     "supported (hug supports 16 steps)", P->name, path);
	}
	P->t->norms[P->t->n_norms++] = n;
	return 0;
}

static int norm_one(struct tok_pipe *P, const cJSON *o, const char *path)
{
	static const char *const unicode[] = { "NFC", "NFD", "NFKC", "NFKD" };
	const char *ty = type_of(o);
	char p[200];
	if (!ty)
		return bad(P, path, "an object with a string \"type\"");
	for (int k = 0; k < 4; k++)
		if (!strcmp(ty, unicode[k]))
			return add_norm(P, path, (struct tok_norm){ .kind = (enum tok_norm_kind)k });
	if (!strcmp(ty, "Lowercase"))
		return add_norm(P, path, (struct tok_norm){ .kind = NORM_LOWERCASE });
	if (!strcmp(ty, "Strip")) {
		struct tok_norm n = { .kind = NORM_STRIP, .left = true, .right = true };
		if (opt_bool(P, o, "strip_left", path, &n.left) ||
		    opt_bool(P, o, "strip_right", path, &n.right))
			return -1;
		return add_norm(P, path, n);
	}
	if (!strcmp(ty, "Prepend")) {
		struct tok_norm n = { .kind = NORM_PREPEND };
		if (get_string(P, o, path, "prepend", &n.content, &n.content_len))
			return -1;
		return add_norm(P, path, n);
	}
	if (!strcmp(ty, "Replace")) {
		struct tok_norm n = { .kind = NORM_REPLACE };
		snprintf(p, sizeof(p), "%s.pattern", path);
		if (get_string(P, o, path, "content", &n.content, &n.content_len))
			return -1;
		if (!(n.re = tok_load_pattern(P, cJSON_GetObjectItemCaseSensitive(o, "pattern"), p))) {
			hug_free(n.content);
			return -1;
		}
		return add_norm(P, path, n);
	}
	if (!strcmp(ty, "Sequence")) {
		const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "normalizers"), *e;
		int i = 0;
		snprintf(p, sizeof(p), "%s.normalizers", path);
		if (!cJSON_IsArray(list))
			return bad(P, p, "an array");
		cJSON_ArrayForEach(e, list) {
			snprintf(p, sizeof(p), "%s.normalizers[%d]", path, i++);
			if (norm_one(P, e, p))
				return -1;
		}
		return 0;
	}
	snprintf(p, sizeof(p), "%s.type", path);
	return hug_error_set(P->err, "%s: %s: normalizer \"%.100s\" is not supported (hug "
			     "supports NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, "
			     "Strip, a Sequence of them, or null)", P->name, p, ty);
}

int tok_load_normalizer(struct tok_pipe *P, const cJSON *root)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
	if (!n || cJSON_IsNull(n))
		return 0;
	return norm_one(P, n, "normalizer");
}

/* --- decoder --- */

static int add_dec(struct tok_pipe *P, const char *path, struct tok_dec d)
{
	if (P->t->n_decs == TOK_MAX_STEPS) {
		tok_regex_free(d.re);
		hug_free(d.content);
		return hug_error_set(P->err, "%s: %s: a decoder Sequence this long is not "
				     "supported (hug supports 16 steps)", P->name, path);
	}
	P->t->decs[P->t->n_decs++] = d;
	return 0;
}

/* Strip's "content": one character. */
static int strip_char(struct tok_pipe *P, const cJSON *o, const char *path, struct tok_dec *d)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "content");
	char p[200];
	uint32_t cp;
	size_t n = cJSON_IsString(c) ? strlen(c->valuestring) : 0;
	snprintf(p, sizeof(p), "%s.content", path);
	if (!n || n > 4 || utf8_decode((const uint8_t *)c->valuestring, n, &cp) != (int)n ||
	    cp == UTF8_INVALID)
		return bad(P, p, "a string of one character");
	memcpy(d->repl, c->valuestring, n + 1);
	d->repl_len = (int)n;
	static const char *const keys[] = { "start", "stop" };
	int *out[] = { &d->start, &d->stop };
	for (int k = 0; k < 2; k++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[k]);
		snprintf(p, sizeof(p), "%s.%s", path, keys[k]);
		if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e6)
			return bad(P, p, "a count of characters");
		*out[k] = (int)v->valuedouble;
	}
	return 0;
}

static int dec_one(struct tok_pipe *P, const cJSON *o, const char *path)
{
	const char *ty = type_of(o);
	char p[200];
	if (!ty)
		return bad(P, path, "an object with a string \"type\"");
	if (!strcmp(ty, "ByteLevel"))
		return add_dec(P, path, (struct tok_dec){ .kind = DEC_BYTELEVEL });
	if (!strcmp(ty, "ByteFallback"))
		return add_dec(P, path, (struct tok_dec){ .kind = DEC_BYTEFALLBACK });
	if (!strcmp(ty, "Fuse"))
		return add_dec(P, path, (struct tok_dec){ .kind = DEC_FUSE });
	if (!strcmp(ty, "Metaspace")) {
		struct tok_dec d = { .kind = DEC_METASPACE };
		enum tok_prepend pre;
		bool split;
		if (tok_metaspace_options(P, o, path, d.repl, &d.repl_len, &pre, &split))
			return -1;
		d.prepend = pre != PREPEND_NEVER;
		return add_dec(P, path, d);
	}
	if (!strcmp(ty, "Strip")) {
		struct tok_dec d = { .kind = DEC_STRIP };
		if (strip_char(P, o, path, &d))
			return -1;
		return add_dec(P, path, d);
	}
	if (!strcmp(ty, "Replace")) {
		struct tok_dec d = { .kind = DEC_REPLACE };
		snprintf(p, sizeof(p), "%s.pattern", path);
		if (get_string(P, o, path, "content", &d.content, &d.content_len))
			return -1;
		if (!(d.re = tok_load_pattern(P, cJSON_GetObjectItemCaseSensitive(o, "pattern"), p))) {
			hug_free(d.content);
			return -1;
		}
		return add_dec(P, path, d);
	}
	if (!strcmp(ty, "Sequence")) {
		const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "decoders"), *e;
		int i = 0;
		snprintf(p, sizeof(p), "%s.decoders", path);
		if (!cJSON_IsArray(list))
			return bad(P, p, "an array");
		cJSON_ArrayForEach(e, list) {
			snprintf(p, sizeof(p), "%s.decoders[%d]", path, i++);
			if (dec_one(P, e, p))
				return -1;
		}
		return 0;
	}
	snprintf(p, sizeof(p), "%s.type", path);
	return hug_error_set(P->err, "%s: %s: decoder \"%.100s\" is not supported (hug "
			     "supports ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, "
			     "a Sequence of them, or null)", P->name, p, ty);
}

int tok_load_decoder(struct tok_pipe *P, const cJSON *root)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "decoder");
	if (!d || cJSON_IsNull(d))
		return 0;
	P->t->has_decoder = true;
	return dec_one(P, d, "decoder");
}
