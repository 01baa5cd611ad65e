/* hf_json.c: the JSON of Hugging Face files: a small emitter that writes
 * objects as transformers does (keys sorted, 2-space indent), typed readers
 * of config.json members whose errors name the file and the key, and
 * parsing a whole file as one object. */
#include "hf_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "../base/panic.h"

/* JSON files bigger than this are refused (a 176B index is ~100 KB). */
#define JSON_FILE_MAX (64u << 20)
/* Largest integer a JSON number (a double in cJSON) holds exactly. */
#define JSON_INT_MAX 9007199254740992.0

void jb_put(struct jbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2 + 256;
		b->p = hug_realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void jb_str(struct jbuf *b, const char *s)
{
	jb_put(b, s, strlen(s));
}

void jb_printf(struct jbuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	HUG_ASSERT(n >= 0 && (size_t)n < sizeof(tmp));
	jb_put(b, tmp, (size_t)n);
}

/* A JSON string literal, escaped. */
void jb_quote(struct jbuf *b, const char *s)
{
	jb_put(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			char e[2] = { '\\', (char)*c };
			jb_put(b, e, 2);
		} else if (*c < 0x20) {
			jb_printf(b, "\\u%04x", *c);
		} else {
			jb_put(b, (const char *)c, 1);
		}
	}
	jb_put(b, "\"", 1);
}

/* The shortest text that reads back as v, in Python's style (a float
 * always has a '.' or an exponent). v must be finite. */
void json_format_double(double v, char *buf, size_t n)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	if (!strpbrk(buf, ".e"))
		strncat(buf, ".0", n - strlen(buf) - 1);
}


static int by_member_key(const void *a, const void *b)
{
	return strcmp(((const struct jmember *)a)->key,
		      ((const struct jmember *)b)->key);
}

/* Emits an object of `n` members, keys sorted (as transformers'
 * to_json_string does), 2-space indent, trailing newline. */
void jb_object(struct jbuf *b, struct jmember *m, int n)
{
	qsort(m, (size_t)n, sizeof(*m), by_member_key);
	jb_str(b, "{\n");
	for (int i = 0; i < n; i++) {
		jb_str(b, "  ");
		jb_quote(b, m[i].key);
		jb_str(b, ": ");
		jb_str(b, m[i].value);
		jb_str(b, i + 1 < n ? ",\n" : "\n");
	}
	jb_str(b, "}\n");
}


/* The member `key` of `obj`, or NULL; a key given twice is an error
 * (Python keeps the last one, cJSON the first: refuse to guess). */
int json_member(const char *file, const cJSON *obj, const char *key,
		       const cJSON **out, struct hug_error *err)
{
	const cJSON *found = NULL;
	const cJSON *it;
	cJSON_ArrayForEach(it, obj) {
		if (!it->string || strcmp(it->string, key) != 0)
			continue;
		if (found)
			return hug_error_set(err, "%s: %s: given twice", file, key);
		found = it;
	}
	*out = found;
	return 0;
}

/* An integral JSON number in [lo, hi] -> *out. */
bool json_int_in(const cJSON *it, int64_t lo, int64_t hi, int64_t *out)
{
	if (!cJSON_IsNumber(it))
		return false;
	double v = it->valuedouble;
	if (!(v >= -JSON_INT_MAX && v <= JSON_INT_MAX) || v != floor(v))
		return false;
	if (v < (double)lo || v > (double)hi)
		return false;
	*out = (int64_t)v;
	return true;
}

/* A required size: a positive integer under `key` or its `alias`; when
 * both are present they must agree. */
int hf_cfg_size(const char *file, const cJSON *root, const char *key,
		    const char *alias, int64_t max, int64_t *out,
		    struct hug_error *err)
{
	const char *names[2] = { key, alias };
	bool have = false;
	const char *have_name = NULL;
	char got[96];
	for (int i = 0; i < 2; i++) {
		const cJSON *it;
		int64_t v;
		if (!names[i])
			continue;
		if (json_member(file, root, names[i], &it, err))
			return -1;
		if (!it)
			continue;
		if (!json_int_in(it, 1, INT64_MAX, &v))
			return hug_error_set(err, "%s: %s: expected a positive integer, got %s",
					     file, names[i], hug_json_text(it, got, sizeof(got)));
		if (v > max)
			return hug_error_set(err, "%s: %s: expected a positive integer at most %" PRId64 ", got %s",
					     file, names[i], max, hug_json_text(it, got, sizeof(got)));
		if (have && v != *out)
			return hug_error_set(err, "%s: %s is %" PRId64 " but %s is %" PRId64
					     "; give one of them",
					     file, have_name, *out, names[i], v);
		have = true;
		have_name = names[i];
		*out = v;
	}
	if (!have) {
		if (alias)
			return hug_error_set(err, "%s: %s: missing (also looked for %s)",
					     file, key, alias);
		return hug_error_set(err, "%s: %s: missing", file, key);
	}
	return 0;
}

/* An optional finite number. */
int hf_cfg_number(const char *file, const cJSON *root, const char *key,
		      double *out, struct hug_error *err)
{
	const cJSON *it;
	char got[96];
	if (json_member(file, root, key, &it, err))
		return -1;
	if (!it)
		return 0;
	if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
		return hug_error_set(err, "%s: %s: expected a number, got %s",
				     file, key, hug_json_text(it, got, sizeof(got)));
	*out = it->valuedouble;
	return 0;
}

/* An optional boolean. */
int hf_cfg_bool(const char *file, const cJSON *root, const char *key,
		    bool *out, struct hug_error *err)
{
	const cJSON *it;
	char got[96];
	if (json_member(file, root, key, &it, err))
		return -1;
	if (!it)
		return 0;
	if (!cJSON_IsBool(it))
		return hug_error_set(err, "%s: %s: expected true or false, got %s",
				     file, key, hug_json_text(it, got, sizeof(got)));
	*out = cJSON_IsTrue(it);
	return 0;
}

/* An optional token id: an integer >= 0, or null (stored as -1). */
int hf_cfg_token(const char *file, const cJSON *root, const char *key,
		     int *out, struct hug_error *err)
{
	const cJSON *it;
	int64_t v;
	char got[96];
	if (json_member(file, root, key, &it, err))
		return -1;
	if (!it)
		return 0;
	if (cJSON_IsNull(it)) {
		*out = -1;
		return 0;
	}
	if (!json_int_in(it, 0, INT32_MAX, &v))
		return hug_error_set(err, "%s: %s: expected a token id (an integer >= 0) or null, got %s",
				     file, key, hug_json_text(it, got, sizeof(got)));
	*out = (int)v;
	return 0;
}

/* Line and column of byte `off` in `text`, for parse errors. */
static void text_position(const char *text, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && text[i]; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* Parses the JSON object in file `path`. *root must be cJSON_Delete'd. */
int hf_json_parse_file(const char *path, cJSON **root,
			     struct hug_error *err)
{
	char *text = NULL;
	size_t len = 0;
	const char *end = NULL;
	int line, col;
	*root = NULL;
	hug_json_init();
	if (fs_read_file(path, JSON_FILE_MAX, &text, &len, err))
		return -1;
	cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (!j) {
		size_t off = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
		text_position(text, off, &line, &col);
		hug_free(text);
		if (len == 0)
			return hug_error_set(err, "%s: not valid JSON (the file is empty)", path);
		return hug_error_set(err, "%s: not valid JSON (error near line %d, column %d)",
				     path, line, col);
	}
	size_t off = (size_t)(end - text);
	while (off < len && strchr(" \t\r\n", text[off]))
		off++;
	if (off < len) {
		text_position(text, off, &line, &col);
		hug_free(text);
		cJSON_Delete(j);
		return hug_error_set(err, "%s: not valid JSON (text after the value at line %d, column %d)",
				     path, line, col);
	}
	hug_free(text);
	if (!cJSON_IsObject(j)) {
		hug_error_set(err, "%s: expected a JSON object, got %s", path, hug_json_kind(j));
		cJSON_Delete(j);
		return -1;
	}
	*root = j;
	return 0;
}
const char *hf_torch_dtype_name(enum dtype dt)
{
	switch (dt) {
	case DT_F32:
		return "float32";
	case DT_F64:
		return "float64";
	case DT_BF16:
		return "bfloat16";
	case DT_F16:
		return "float16";
	default:
		return NULL;
	}
}

void jmember_token(struct jmember *m, const char *key, int id)
{
	m->key = key;
	if (id < 0)
		snprintf(m->value, sizeof(m->value), "null");
	else
		snprintf(m->value, sizeof(m->value), "%d", id);
}

void jmember_double(struct jmember *m, const char *key, double v)
{
	m->key = key;
	json_format_double(v, m->value, sizeof(m->value));
}

void jmember_text(struct jmember *m, const char *key, const char *json)
{
	m->key = key;
	snprintf(m->value, sizeof(m->value), "%s", json);
}

int hf_json_write_in(const char *dir, const char *name, const struct jbuf *b,
			 struct hug_error *err)
{
	char *path = fs_join(dir, name);
	int rc = fs_write_atomic(path, b->p, b->len, err);
	hug_free(path);
	return rc;
}

