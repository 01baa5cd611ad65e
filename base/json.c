/* json.c: routes cJSON's allocations through base/alloc.h; checked member
 * readers; JSON string quoting and the flat pretty-printed object. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "fs.h"

static void *json_malloc(size_t size)
{
	return hug_malloc(size);
}

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void hooks_install(void)
{
	cJSON_Hooks hooks = { .malloc_fn = json_malloc, .free_fn = hug_free };
	cJSON_InitHooks(&hooks);
}

void hug_json_init(void)
{
	pthread_once(&hooks_once, hooks_install);
}

const char *hug_json_kind(const cJSON *item)
{
	if (cJSON_IsObject(item))
		return "an object";
	if (cJSON_IsArray(item))
		return "an array";
	if (cJSON_IsString(item))
		return "a string";
	if (cJSON_IsNumber(item))
		return "a number";
	if (cJSON_IsBool(item))
		return "a boolean";
	if (cJSON_IsNull(item))
		return "null";
	return "invalid JSON";
}

const char *hug_json_text(const cJSON *item, char *buf, size_t n)
{
	char *s = cJSON_PrintUnformatted(item);
	if (!s) {
		snprintf(buf, n, "%s", hug_json_kind(item));
		return buf;
	}
	if (strlen(s) >= n && n > 4)
		snprintf(buf, n, "%.*s...", (int)(n - 4), s);
	else
		snprintf(buf, n, "%s", s);
	cJSON_free(s);
	return buf;
}

void hug_json_position(const char *text, size_t len, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

int hug_json_read_object(const char *path, size_t max_bytes, const char *what,
			 cJSON **root, struct hug_error *err)
{
	char *text = NULL;
	size_t len = 0;
	const char *end = NULL;
	int line, col;
	*root = NULL;
	if (!what)
		what = "a JSON object";
	hug_json_init();
	if (fs_read_file(path, max_bytes, &text, &len, err))
		return -1;
	cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);
	size_t off = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
	while (j && off < len && strchr(" \t\r\n", text[off]))
		off++;
	hug_json_position(text, len, off, &line, &col);
	hug_free(text);
	if (len == 0)
		return hug_error_set(err, "%s: not valid JSON (the file is empty); expected %s", path,
				     what);
	if (!j || off < len) {
		cJSON_Delete(j);
		return hug_error_set(err, "%s: not valid JSON (%s near line %d, column %d); "
				     "expected %s", path, j ? "text after the value" : "error",
				     line, col, what);
	}
	if (!cJSON_IsObject(j)) {
		hug_error_set(err, "%s: expected %s, got %s", path, what, hug_json_kind(j));
		cJSON_Delete(j);
		return -1;
	}
	*root = j;
	return 0;
}

/* "<file>: <path>." as hug_json_expected prefixes a key, into buf. */
static const char *at_prefix(const struct json_at *at, char *buf, size_t n)
{
	const char *file = at ? at->file : NULL;
	const char *path = at ? at->path : NULL;
	snprintf(buf, n, "%s%s%s%s", file ? file : "", file ? ": " : "", path ? path : "",
		 path ? "." : "");
	return buf;
}

int hug_json_expected(const struct json_at *at, const char *key, const char *what,
		      const cJSON *got, struct hug_error *err)
{
	char text[96], where[512];
	return hug_error_set(err, "%s%s: expected %s, got %s", at_prefix(at, where, sizeof(where)),
			     key, what, got ? hug_json_text(got, text, sizeof(text)) : "nothing");
}

int hug_json_member(const struct json_at *at, const cJSON *obj, const char *key,
		    const cJSON **out, struct hug_error *err)
{
	const cJSON *found = NULL, *it;
	*out = NULL;
	if (!cJSON_IsObject(obj))
		return 0;
	cJSON_ArrayForEach(it, obj) {
		if (!it->string || strcmp(it->string, key) != 0)
			continue;
		if (found) {
			char where[512];
			return hug_error_set(err, "%s%s: given twice",
					     at_prefix(at, where, sizeof(where)), key);
		}
		found = it;
	}
	*out = found;
	return 0;
}

bool hug_json_int_in(const cJSON *item, int64_t lo, int64_t hi, int64_t *out)
{
	double d = cJSON_IsNumber(item) ? item->valuedouble : NAN;
	if (!(d >= -(double)HUG_JSON_INT_MAX && d <= (double)HUG_JSON_INT_MAX) || d != floor(d) ||
	    d < (double)lo || d > (double)hi)
		return false;
	*out = (int64_t)d;
	return true;
}

/* Looks member `key` of obj up into *v. 1: present (not null) and, when
 * `is` is given, of that type; 0: absent or null and optional (the caller
 * returns 0); -1 with err: absent or null and required, or of another
 * type. */
static int present(const struct json_at *at, const cJSON *obj, const char *key,
		   bool required, const char *what, cJSON_bool (*is)(const cJSON *),
		   const cJSON **v, struct hug_error *err)
{
	if (hug_json_member(at, obj, key, v, err))
		return -1;
	if (!*v || cJSON_IsNull(*v))
		return required ? hug_json_expected(at, key, what, *v, err) : 0;
	if (is && !is(*v))
		return hug_json_expected(at, key, what, *v, err);
	return 1;
}

int hug_json_get_number(const struct json_at *at, const cJSON *obj, const char *key,
			bool required, double *out, struct hug_error *err)
{
	const cJSON *v;
	int rc = present(at, obj, key, required, "a number", cJSON_IsNumber, &v, err);
	if (rc > 0 && !isfinite(v->valuedouble)) /* cJSON reads 1e999 as inf */
		return hug_json_expected(at, key, "a number", v, err);
	if (rc > 0)
		*out = v->valuedouble;
	return rc < 0 ? -1 : 0;
}

int hug_json_get_int(const struct json_at *at, const cJSON *obj, const char *key,
		     int64_t lo, int64_t hi, bool required, int64_t *out,
		     struct hug_error *err)
{
	char what[96];
	if (hi >= INT32_MAX)
		snprintf(what, sizeof(what), lo == 1 ? "an integer > 0" : "an integer >= %lld",
			 (long long)lo);
	else
		snprintf(what, sizeof(what), "an integer in [%lld, %lld]", (long long)lo,
			 (long long)hi);
	const cJSON *v;
	int rc = present(at, obj, key, required, what, NULL, &v, err);
	if (rc <= 0)
		return rc;
	if (!hug_json_int_in(v, lo, hi, out))
		return hug_json_expected(at, key, what, v, err);
	return 0;
}

int hug_json_get_bool(const struct json_at *at, const cJSON *obj, const char *key,
		      bool required, bool *out, struct hug_error *err)
{
	const cJSON *v;
	int rc = present(at, obj, key, required, "true or false", cJSON_IsBool, &v, err);
	if (rc > 0)
		*out = cJSON_IsTrue(v);
	return rc < 0 ? -1 : 0;
}

int hug_json_get_string(const struct json_at *at, const cJSON *obj, const char *key,
			bool required, const char **out, struct hug_error *err)
{
	const cJSON *v;
	int rc = present(at, obj, key, required, "a string", cJSON_IsString, &v, err);
	if (rc > 0)
		*out = v->valuestring;
	return rc < 0 ? -1 : 0;
}

int hug_json_get_u64_string(const struct json_at *at, const cJSON *obj, const char *key,
			    bool required, uint64_t *out, struct hug_error *err)
{
	static const char what[] = "a decimal string (a 64-bit unsigned integer)";
	const cJSON *v;
	int rc = present(at, obj, key, required, what, NULL, &v, err);
	if (rc <= 0)
		return rc;
	const char *s = cJSON_IsString(v) ? v->valuestring : "";
	char *end = NULL;
	errno = 0;
	unsigned long long x = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
	if (!end || errno || *end)
		return hug_json_expected(at, key, what, v, err);
	*out = x;
	return 0;
}

void hug_json_quote(struct buf *b, const char *s)
{
	hug_json_quote_n(b, s, strlen(s));
}

void hug_json_quote_n(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	buf_put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; p < (const unsigned char *)s + n; p++) {
		char esc[7] = { '\\', 0 };
		switch (*p) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			if (*p >= 0x20) {
				buf_put(b, (const char *)p, 1);
				continue;
			}
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
		}
		buf_str(b, esc);
	}
	buf_put(b, "\"", 1);
}

void hug_json_double(double v, char *buf, size_t n)
{
	/* the fewest significant digits that read back as v; then Python's
	 * repr layout: positional for decimal exponents -4..15 (1000000.0),
	 * else scientific (1e-05, 1e+16) */
	int prec = 1;
	for (; prec <= 17; prec++) {
		snprintf(buf, n, "%.*e", prec - 1, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	const char *e = strchr(buf, 'e');
	int exp = e ? atoi(e + 1) : 0;
	if (exp >= -4 && exp < 16) {
		int dec = prec - 1 - exp;
		snprintf(buf, n, "%.*f", dec > 0 ? dec : 0, v);
	}
	if (!strpbrk(buf, ".e"))
		strncat(buf, ".0", n - strlen(buf) - 1);
}

void hug_json_flat_object(struct buf *b, const struct json_member *m, int n)
{
	buf_str(b, "{\n");
	for (int i = 0; i < n; i++) {
		buf_str(b, "  ");
		hug_json_quote(b, m[i].key);
		buf_str(b, ": ");
		buf_str(b, m[i].value);
		buf_str(b, i + 1 < n ? ",\n" : "\n");
	}
	buf_str(b, "}\n");
}
