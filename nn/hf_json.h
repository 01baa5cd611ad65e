/* hf_json.h: what is particular to the JSON of Hugging Face files, built on
 * base/json.h: config.json's members as transformers reads them (sizes
 * under an alias, token ids that may be null), flat objects written with
 * sorted keys as transformers' to_json_string does, torch_dtype names and
 * the file names of a model directory. */
#ifndef HUG_NN_HF_JSON_H
#define HUG_NN_HF_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../autograd/tensor.h"
#include "../base/buf.h"
#include "../base/error.h"
#include "../base/json.h"

/* The file names of a Hugging Face model directory. */
#define HF_CONFIG_FILE "config.json"
#define HF_GENERATION_CONFIG_FILE "generation_config.json"

/* JSON files of a model directory bigger than this are refused (a 176B
 * index is ~100 KB). */
#define HF_JSON_FILE_MAX ((size_t)64 << 20)

/* A flat object being built for a Hugging Face file: its members, the text
 * of each value held here. Start from { 0 }. */
#define HF_OBJECT_MAX 32
struct hf_object {
	struct json_member m[HF_OBJECT_MAX];
	char text[HF_OBJECT_MAX][128];
	int n;
};

/* Adds member `key` (a string that outlives o) with the value: JSON text
 * as given (at most 127 bytes); a token id (negative: null); a finite
 * double in Python's shortest form (hug_json_double); an integer. */
void hf_object_text(struct hf_object *o, const char *key, const char *json);
void hf_object_token(struct hf_object *o, const char *key, int id);
/* A token id (first; negative: null), or with n_more > 0 the list of
 * first and more[0..n_more) as transformers writes it (one per line);
 * n_more < 7. */
void hf_object_tokens(struct hf_object *o, const char *key, int first, const int *more,
		      int n_more);
void hf_object_double(struct hf_object *o, const char *key, double v);
void hf_object_int(struct hf_object *o, const char *key, int64_t v);

/* Writes o into dir/name atomically, members sorted by key, laid out by
 * hug_json_flat_object (2-space indent, trailing newline). 0 or -1. */
int hf_object_write_in(struct hf_object *o, const char *dir, const char *name,
		       struct hug_error *err);

/* Writes b into dir/name atomically. 0 or -1. */
int hf_json_write_in(const char *dir, const char *name, const struct buf *b,
		     struct hug_error *err);

/* transformers' name of a float dtype ("float32", "bfloat16"), or NULL. */
const char *hf_torch_dtype_name(enum dtype dt);

/* config.json members (looked up by hug_json_member: a key given twice is
 * an error). A required size: a positive integer at most max under `key`
 * or its `alias` (NULL: none); both present must agree. */
int hf_cfg_size(const char *file, const cJSON *root, const char *key, const char *alias,
		int64_t max, int64_t *out, struct hug_error *err);
/* An optional token id: an integer >= 0 (or a list of one), or null
 * stored as -1. Absent: *out untouched. */
int hf_cfg_token(const char *file, const cJSON *root, const char *key, int *out,
		 struct hug_error *err);
/* An optional token id or list of 1..max of them (Llama 3.1 Instruct lists
 * several eos ids): ids[0..*n) filled, *n = 0 for null; absent: *n
 * untouched. An empty or longer list, or a non-id in it, is an error
 * naming the file and the key. */
int hf_cfg_tokens(const char *file, const cJSON *root, const char *key, int *ids, int max,
		  int *n,
		 struct hug_error *err);

#endif
