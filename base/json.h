/* json.h: cJSON set up for hug: its allocations go through base/alloc.h
 * (aborting on failure, counted). Every module that parses JSON calls
 * hug_json_init() first. Also the one set of checked member readers (with
 * "file: key: expected ..., got ..." errors) and the JSON text writers. */
#ifndef HUG_BASE_JSON_H
#define HUG_BASE_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "error.h"

/* The largest integer a JSON number (a double) holds exactly: 2^53. */
#define HUG_JSON_INT_MAX 9007199254740992LL

/* Installs hug's allocator as cJSON's, once per process (thread-safe,
 * cheap to call again). */
void hug_json_init(void);

/* "an object", "an array", "a string", "a number", "a boolean", "null" or
 * "invalid JSON": what `item` is, for messages. */
const char *hug_json_kind(const cJSON *item);

/* The JSON text of `item` for messages, shortened with "..." to fit
 * buf[n]; returns buf. */
const char *hug_json_text(const cJSON *item, char *buf, size_t n);

/* The 1-based line and column of byte `off` of text (clamped to len), for
 * messages about where a parse stopped (cJSON's end pointer - text). */
void hug_json_position(const char *text, size_t len, size_t off, int *line, int *col);

/* Reads the file at path (at most max_bytes) and parses it as one JSON
 * object into *root (cJSON_Delete it). Errors name the file: "not valid
 * JSON (error near line L, column C); expected <what>" (or "(text after
 * the value near ...)", "(the file is empty)"), or "expected <what>, got an
 * array" (what NULL: "a JSON object"). 0 or -1. */
int hug_json_read_object(const char *path, size_t max_bytes, const char *what,
			 cJSON **root, struct hug_error *err);

/* Where an object stands, for messages: a member `key` of it is named
 * "<file>: <path>.<key>" (file and path may each be NULL). */
struct json_at {
	const char *file;
	const char *path;
};

/* Sets err to "<at>: <key>: expected <what>, got <the JSON text of got>"
 * ("got nothing" when got is NULL); returns -1. */
int hug_json_expected(const struct json_at *at, const char *key, const char *what,
		      const cJSON *got, struct hug_error *err);

/* Member `key` of obj -> *out (NULL when absent, or when obj is not an
 * object). A key the object gives twice is an error "<at>: <key>: given
 * twice": Python keeps the last of them and cJSON the first, so a file
 * that repeats a key is refused rather than read one way or the other.
 * 0 or -1. */
int hug_json_member(const struct json_at *at, const cJSON *obj, const char *key,
		    const cJSON **out, struct hug_error *err);

/* Whether item is a whole number in [lo, hi] (and |v| <= HUG_JSON_INT_MAX);
 * if so *out gets it. No error set: for callers with their own message. */
bool hug_json_int_in(const cJSON *item, int64_t lo, int64_t hi, int64_t *out);

/* Checked readers of member `key` of obj (looked up by hug_json_member, so
 * a key given twice is an error). A member that is absent or null is an
 * error when `required`, else it leaves *out as it is (0). A member of the
 * wrong type or range is an error naming it (hug_json_expected). 0 or -1. */

/* A number (any finite double cJSON parsed). */
int hug_json_get_number(const struct json_at *at, const cJSON *obj, const char *key,
			bool required, double *out, struct hug_error *err);
/* A whole number in [lo, hi] (|v| <= HUG_JSON_INT_MAX); the message says
 * "an integer >= lo" when hi >= INT32_MAX, else "an integer in [lo, hi]". */
int hug_json_get_int(const struct json_at *at, const cJSON *obj, const char *key,
		     int64_t lo, int64_t hi, bool required, int64_t *out,
		     struct hug_error *err);
/* true or false. */
int hug_json_get_bool(const struct json_at *at, const cJSON *obj, const char *key,
		      bool required, bool *out, struct hug_error *err);
/* A string; *out points into obj. */
int hug_json_get_string(const struct json_at *at, const cJSON *obj, const char *key,
			bool required, const char **out, struct hug_error *err);
/* A decimal string of digits only that fits 64 bits (how hug stores
 * 64-bit seeds and offsets, which a double cannot hold). */
int hug_json_get_u64_string(const struct json_at *at, const cJSON *obj, const char *key,
			    bool required, uint64_t *out, struct hug_error *err);

/* Appends s as a JSON string literal: '"' and '\\' escaped, \b \f \n \r \t
 * by name, other control bytes as \u00XX, everything else (UTF-8
 * included) as it is (what Python's json.dumps(ensure_ascii=False) and
 * serde_json write). */
void hug_json_quote(struct buf *b, const char *s);
/* The same for the n bytes at s (which may hold no NUL). */
void hug_json_quote_n(struct buf *b, const char *s, size_t n);

/* The shortest text that reads back as v, in Python's style (a float
 * always has a '.' or an exponent: 0.0, 1e-05) into buf[n]. v must be
 * finite. */
void hug_json_double(double v, char *buf, size_t n);

/* One member of a flat object for hug_json_flat_object: its key and its
 * value as JSON text. */
struct json_member {
	const char *key;
	const char *value;
};

/* Appends the object {m[0..n)} laid out as Python's json.dumps(indent=2)
 * writes a flat one: "{", then one `  "key": value` a line (values as
 * given, arrays on their line), then "}" and a newline. */
void hug_json_flat_object(struct buf *b, const struct json_member *m, int n);

#endif
