/* hf_json.c: the JSON particular to Hugging Face files, on base/json.h:
 * config.json's alias-aware sizes and nullable token ids, flat objects
 * written with sorted keys, torch_dtype names. */
#include "hf_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/panic.h"

static void object_add(struct hf_object *o, const char *key)
{
	HUG_ASSERT(o->n < HF_OBJECT_MAX);
	o->m[o->n] = (struct json_member){ key, o->text[o->n] };
	o->n++;
}

void hf_object_text(struct hf_object *o, const char *key, const char *json)
{
	HUG_ASSERT(strlen(json) < sizeof(o->text[0]));
	snprintf(o->text[o->n], sizeof(o->text[0]), "%s", json);
	object_add(o, key);
}

void hf_object_token(struct hf_object *o, const char *key, int id)
{
	if (id < 0)
		snprintf(o->text[o->n], sizeof(o->text[0]), "null");
	else
		snprintf(o->text[o->n], sizeof(o->text[0]), "%d", id);
	object_add(o, key);
}

void hf_object_tokens(struct hf_object *o, const char *key, int first, const int *more,
		      int n_more)
{
	if (n_more <= 0) {
		hf_object_token(o, key, first);
		return;
	}
	HUG_ASSERT(first >= 0 && n_more < 7); /* 7 ids of 10 digits fit the text */
	char *t = o->text[o->n];
	size_t cap = sizeof(o->text[0]);
	int len = snprintf(t, cap, "[\n    %d", first);
	for (int k = 0; k < n_more; k++)
		len += snprintf(t + len, cap - (size_t)len, ",\n    %d", more[k]);
	snprintf(t + len, cap - (size_t)len, "\n  ]");
	object_add(o, key);
}

void hf_object_double(struct hf_object *o, const char *key, double v)
{
	hug_json_double(v, o->text[o->n], sizeof(o->text[0]));
	object_add(o, key);
}

void hf_object_int(struct hf_object *o, const char *key, int64_t v)
{
	snprintf(o->text[o->n], sizeof(o->text[0]), "%" PRId64, v);
	object_add(o, key);
}

static int by_member_key(const void *a, const void *b)
{
	return strcmp(((const struct json_member *)a)->key, ((const struct json_member *)b)->key);
}

int hf_object_write_in(struct hf_object *o, const char *dir, const char *name,
		       struct hug_error *err)
{
	struct buf b = { 0 };
	qsort(o->m, (size_t)o->n, sizeof(o->m[0]), by_member_key);
	hug_json_flat_object(&b, o->m, o->n);
	int rc = hf_json_write_in(dir, name, &b, err);
	buf_free(&b);
	return rc;
}

int hf_json_write_in(const char *dir, const char *name, const struct buf *b,
		     struct hug_error *err)
{
	char *path = fs_join(dir, name);
	int rc = fs_write_atomic(path, b->p, b->n, err);
	hug_free(path);
	return rc;
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

int hf_cfg_size(const char *file, const cJSON *root, const char *key, const char *alias,
		int64_t max, int64_t *out, struct hug_error *err)
{
	const struct json_at at = { file, NULL };
	const char *names[2] = { key, alias };
	bool have = false;
	const char *have_name = NULL;
	char got[96];
	for (int i = 0; i < 2; i++) {
		const cJSON *it;
		int64_t v;
		if (!names[i])
			continue;
		if (hug_json_member(&at, root, names[i], &it, err))
			return -1;
		if (!it)
			continue;
		if (!hug_json_int_in(it, 1, INT64_MAX, &v))
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

int hf_cfg_tokens(const char *file, const cJSON *root, const char *key, int *ids, int max,
		  int *n, struct hug_error *err)
{
	const struct json_at at = { file, NULL };
	const cJSON *it;
	int64_t v;
	char what[96];
	if (max > 1)
		snprintf(what, sizeof(what), "a token id (an integer >= 0), a list of 1 to %d of "
			 "them, or null", max);
	else
		snprintf(what, sizeof(what), "a token id (an integer >= 0) or null");
	if (hug_json_member(&at, root, key, &it, err))
		return -1;
	if (!it)
		return 0;
	if (cJSON_IsNull(it)) {
		*n = 0;
		return 0;
	}
	bool list = cJSON_IsArray(it);
	int len = list ? cJSON_GetArraySize(it) : 1;
	if (len < 1 || len > max)
		return hug_json_expected(&at, key, what, it, err);
	for (int k = 0; k < len; k++) {
		if (!hug_json_int_in(list ? cJSON_GetArrayItem(it, k) : it, 0, INT32_MAX, &v))
			return hug_json_expected(&at, key, what, it, err);
		ids[k] = (int)v;
	}
	*n = len;
	return 0;
}

int hf_cfg_token(const char *file, const cJSON *root, const char *key, int *out,
		 struct hug_error *err)
{
	int id = -1, n = -1;
	if (hf_cfg_tokens(file, root, key, &id, 1, &n, err))
		return -1;
	if (n >= 0)
		*out = n ? id : -1;
	return 0;
}
