/* hf_json.h: JSON as Hugging Face files use it, shared by the families'
 * config.json readers and writers (nn/<family>_config.c) and io/'s weight
 * index: an emitter of flat objects with sorted keys and 2-space indent
 * (transformers' to_json_string), typed readers of optional and required
 * members whose errors name the file and the key, and whole-file parsing.
 * (Candidates for base/json.h once the JSON helpers are consolidated.) */
#ifndef HUG_NN_HF_JSON_H
#define HUG_NN_HF_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../autograd/tensor.h"
#include "../base/error.h"

/* The file names of a Hugging Face model directory. */
#define HF_CONFIG_FILE "config.json"
#define HF_GENERATION_CONFIG_FILE "generation_config.json"

/* A growable text buffer (p NUL-terminated; free p with hug_free). */
struct jbuf {
	char *p;
	size_t len, cap;
};

void jb_put(struct jbuf *b, const char *s, size_t n);
void jb_str(struct jbuf *b, const char *s);
void jb_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal, escaped. */
void jb_quote(struct jbuf *b, const char *s);

/* One "key": value member of a flat object; value is JSON text. */
struct jmember {
	const char *key;
	char value[128];
};

/* Emits an object of `n` members (sorted here by key), 2-space indent,
 * trailing newline. */
void jb_object(struct jbuf *b, struct jmember *m, int n);
/* Members: a token id (negative: null), a finite double in Python's
 * shortest form, literal JSON text. */
void jmember_token(struct jmember *m, const char *key, int id);
void jmember_double(struct jmember *m, const char *key, double v);
void jmember_text(struct jmember *m, const char *key, const char *json);

/* The shortest text that reads back as v, in Python's style (a float
 * always has a '.' or an exponent). v must be finite. */
void json_format_double(double v, char *buf, size_t n);

/* transformers' name of a float dtype ("float32", "bfloat16"), or NULL. */
const char *hf_torch_dtype_name(enum dtype dt);

/* Writes b into dir/name atomically. 0 or -1. */
int hf_json_write_in(const char *dir, const char *name, const struct jbuf *b,
		     struct hug_error *err);

/* The member `key` of `obj`, or NULL; a key given twice is an error. */
int json_member(const char *file, const cJSON *obj, const char *key,
		const cJSON **out, struct hug_error *err);
/* An integral JSON number in [lo, hi] -> *out. */
bool json_int_in(const cJSON *it, int64_t lo, int64_t hi, int64_t *out);

/* config.json members. A required size: a positive integer at most max
 * under `key` or its `alias` (NULL: none); both present must agree. */
int hf_cfg_size(const char *file, const cJSON *root, const char *key, const char *alias,
		int64_t max, int64_t *out, struct hug_error *err);
/* Optional: a finite number, a boolean, a token id (integer >= 0, or null
 * stored as -1). Absent: *out untouched. */
int hf_cfg_number(const char *file, const cJSON *root, const char *key, double *out,
		  struct hug_error *err);
int hf_cfg_bool(const char *file, const cJSON *root, const char *key, bool *out,
		struct hug_error *err);
int hf_cfg_token(const char *file, const cJSON *root, const char *key, int *out,
		 struct hug_error *err);

/* Parses the JSON object in file `path` (errors give line and column).
 * *root must be cJSON_Delete'd. 0 or -1. */
int hf_json_parse_file(const char *path, cJSON **root, struct hug_error *err);

#endif
