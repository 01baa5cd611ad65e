/* lora_config_json.c: adapter_config.json, read and written in PEFT's
 * layout. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "lora_config.h"

#define CONFIG_MAX_BYTES ((size_t)16 << 20)

/* ---- reading ---- */

/* The one message form of base/json.h: "path: key: expected ..., got ...". */
static int bad(const char *path, const char *key, const char *expected,
	       const cJSON *v, struct hug_error *err)
{
	return hug_json_expected(&(struct json_at){ path, NULL }, key, expected, v, err);
}

static const cJSON *member(const cJSON *root, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(root, key);
}

/* Absent and null both mean "not set". */
static bool unset(const cJSON *v)
{
	return !v || cJSON_IsNull(v);
}

static bool is_int(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
	       fabs(v->valuedouble) < 2147483647.0;
}

static int read_rank(const char *path, const cJSON *root, struct lora_config *c,
		     struct hug_error *err)
{
	int64_t r = c->r; /* absent: PEFT's default */
	if (hug_json_get_int(&(struct json_at){ path, NULL }, root, "r", 1, INT32_MAX, false,
			     &r, err))
		return -1;
	c->r = (int)r;
	return 0;
}

static int read_targets(const char *path, const cJSON *root, struct lora_config *c,
			struct hug_error *err)
{
	const cJSON *v = member(root, "target_modules");
	if (unset(v))
		return 0; /* PEFT's default for BLOOM */
	if (cJSON_IsString(v)) {
		lora_config_set_regex(c, v->valuestring);
		return 0;
	}
	int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
	const cJSON *it;
	cJSON_ArrayForEach(it, v)
		if (!cJSON_IsString(it))
			n = -1;
	if (n < 1)
		return bad(path, "target_modules", "a module name, a list of them, or a "
			   "regular expression", v, err);
	const char **names = hug_calloc((size_t)n, sizeof(char *));
	int i = 0;
	cJSON_ArrayForEach(it, v)
		names[i++] = it->valuestring;
	lora_config_set_targets(c, names, n);
	hug_free(names);
	return 0;
}

static int read_layers(const char *path, const cJSON *root, struct lora_config *c,
		       struct hug_error *err)
{
	const cJSON *v = member(root, "layers_to_transform");
	if (unset(v) || (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0))
		return 0;
	int n = is_int(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
	const cJSON *it;
	if (cJSON_IsArray(v))
		cJSON_ArrayForEach(it, v)
			if (!is_int(it) || it->valuedouble < 0)
				n = -1;
	if (n < 1 || (is_int(v) && v->valuedouble < 0))
		return bad(path, "layers_to_transform", "null, a layer index or a list of them",
			   v, err);
	c->layers = hug_malloc((size_t)n * sizeof(int));
	c->n_layers = n;
	if (is_int(v)) {
		c->layers[0] = (int)v->valuedouble;
		return 0;
	}
	int i = 0;
	cJSON_ArrayForEach(it, v)
		c->layers[i++] = (int)it->valuedouble;
	return 0;
}

/* Settings hug does not implement: each must be absent or neutral. */
static int refuse_unsupported(const char *path, const cJSON *root, struct hug_error *err)
{
	static const char *const falsy[] = { "fan_in_fan_out", "use_dora", "lora_bias" };
	static const char *const empty[] = {
		"modules_to_save", "rank_pattern", "alpha_pattern", "exclude_modules",
		"target_parameters", "layer_replication", "trainable_token_indices",
	};
	for (size_t i = 0; i < sizeof(falsy) / sizeof(falsy[0]); i++) {
		const cJSON *v = member(root, falsy[i]);
		if (!unset(v) && !cJSON_IsFalse(v))
			return bad(path, falsy[i], "false (hug does not support it)", v, err);
	}
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		const cJSON *v = member(root, empty[i]);
		bool none = unset(v) || ((cJSON_IsArray(v) || cJSON_IsObject(v)) && !v->child);
		if (!none)
			return bad(path, empty[i], "null or empty (hug does not support it)", v, err);
	}
	const cJSON *v = member(root, "bias");
	if (!unset(v) && !(cJSON_IsString(v) && !strcmp(v->valuestring, "none")))
		return bad(path, "bias", "\"none\" (hug trains no biases in adapters)", v, err);
	v = member(root, "layers_pattern");
	bool h = cJSON_IsString(v) && !strcmp(v->valuestring, "h");
	bool h_list = cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1 &&
		      cJSON_IsString(v->child) && !strcmp(v->child->valuestring, "h");
	bool none = unset(v) || (cJSON_IsArray(v) && !v->child);
	if (!(none || h || h_list))
		return bad(path, "layers_pattern", "null or \"h\" (BLOOM's blocks)", v, err);
	return 0;
}

static int read_kind(const char *path, const cJSON *root, struct hug_error *err)
{
	const cJSON *p = member(root, "peft_type");
	if (!(cJSON_IsString(p) && !strcmp(p->valuestring, "LORA")))
		return bad(path, "peft_type", "\"LORA\" (hug loads LoRA adapters only)", p, err);
	const cJSON *t = member(root, "task_type");
	if (!unset(t) && !(cJSON_IsString(t) && !strcmp(t->valuestring, "CAUSAL_LM")))
		return bad(path, "task_type", "\"CAUSAL_LM\" or null", t, err);
	return 0;
}

/* Python keeps the last of a key given twice, cJSON the first: refuse. */
static int refuse_duplicates(const char *path, const cJSON *root, struct hug_error *err)
{
	for (const cJSON *a = root->child; a; a = a->next)
		for (const cJSON *b = a->next; b; b = b->next)
			if (!strcmp(a->string, b->string))
				return hug_error_set(err, "%s: %s: given twice", path, a->string);
	return 0;
}

static int read_fields(const char *path, const cJSON *root, struct lora_config *c,
		       struct hug_error *err)
{
	const struct json_at at = { path, NULL };
	if (refuse_duplicates(path, root, err) || read_kind(path, root, err) || refuse_unsupported(path, root, err) ||
	    read_rank(path, root, c, err) ||
	    hug_json_get_number(&at, root, "lora_alpha", false, &c->alpha, err) ||
	    hug_json_get_number(&at, root, "lora_dropout", false, &c->dropout, err) ||
	    hug_json_get_bool(&at, root, "use_rslora", false, &c->rslora, err) ||
	    read_targets(path, root, c, err) || read_layers(path, root, c, err))
		return -1;
	const cJSON *b = member(root, "base_model_name_or_path");
	if (cJSON_IsString(b))
		lora_config_set_base(c, b->valuestring);
	else if (!unset(b))
		return bad(path, "base_model_name_or_path", "a string or null", b, err);
	char what[600];
	snprintf(what, sizeof(what), "%s: ", path);
	return lora_config_validate(c, what, err);
}

int lora_config_read(const char *path, struct lora_config *c, struct hug_error *err)
{
	cJSON *root;
	lora_config_init(c);
	if (hug_json_read_object(path, CONFIG_MAX_BYTES, "a JSON object (PEFT's adapter_config.json)",
				 &root, err))
		goto fail;
	int rc = read_fields(path, root, c, err);
	cJSON_Delete(root);
	if (rc == 0)
		return 0;
fail:
	lora_config_free(c);
	return -1;
}

/* ---- writing ---- */

static cJSON *config_json(const struct lora_config *c, char *const *targets, int n)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddObjectToObject(j, "alpha_pattern");
	cJSON_AddNullToObject(j, "auto_mapping");
	if (c->base_model)
		cJSON_AddStringToObject(j, "base_model_name_or_path", c->base_model);
	else
		cJSON_AddNullToObject(j, "base_model_name_or_path");
	cJSON_AddStringToObject(j, "bias", "none");
	cJSON_AddBoolToObject(j, "fan_in_fan_out", false);
	cJSON_AddBoolToObject(j, "inference_mode", true);
	cJSON_AddBoolToObject(j, "init_lora_weights", true);
	cJSON_AddNullToObject(j, "layers_pattern");
	cJSON_AddNullToObject(j, "layers_to_transform");
	cJSON_AddNumberToObject(j, "lora_alpha", c->alpha);
	cJSON_AddNumberToObject(j, "lora_dropout", c->dropout);
	cJSON_AddNullToObject(j, "modules_to_save");
	cJSON_AddStringToObject(j, "peft_type", "LORA");
	cJSON_AddNumberToObject(j, "r", c->r);
	cJSON_AddObjectToObject(j, "rank_pattern");
	cJSON_AddNullToObject(j, "revision");
	cJSON *t = cJSON_AddArrayToObject(j, "target_modules");
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(t, cJSON_CreateString(targets[i]));
	cJSON_AddStringToObject(j, "task_type", "CAUSAL_LM");
	cJSON_AddBoolToObject(j, "use_dora", false);
	cJSON_AddBoolToObject(j, "use_rslora", c->rslora);
	return j;
}

/* Two-space indented, one member a line, as PEFT's json.dumps(indent=2)
 * writes a flat object (arrays stay on their line). */
static void config_text(const cJSON *j, struct buf *out)
{
	int n = cJSON_GetArraySize(j), i = 0;
	struct json_member *m = hug_calloc((size_t)n, sizeof(*m));
	for (const cJSON *it = j->child; it; it = it->next, i++)
		m[i] = (struct json_member){ it->string, cJSON_PrintUnformatted(it) };
	hug_json_flat_object(out, m, n);
	for (i = 0; i < n; i++)
		cJSON_free((char *)m[i].value);
	hug_free(m);
}

int lora_config_write(const struct lora_config *c, char *const *targets,
		      int n_targets, const char *path, struct hug_error *err)
{
	hug_json_init();
	cJSON *j = config_json(c, targets, n_targets);
	struct buf text = { 0 };
	config_text(j, &text);
	cJSON_Delete(j);
	int rc = fs_write_atomic(path, text.p, text.n, err);
	buf_free(&text);
	return rc;
}
