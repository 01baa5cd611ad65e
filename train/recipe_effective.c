/* recipe_effective.c: the effective recipe of `hug recipe check`: the
 * recipe's own JSON (overrides applied) with every default of the key
 * table filled in where the recipe leaves a key out. */
#include <string.h>

#include "../base/alloc.h"
#include "../base/json.h"
#include "../base/panic.h"
#include "recipe.h"
#include "recipe_schema.h"

/* The object at a dotted path ("" is the root), or NULL when absent or
 * not an object. */
static cJSON *object_at(cJSON *root, const char *path, size_t len)
{
	cJSON *n = root;
	const char *p = path, *end = path + len;
	while (n && p < end) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		size_t seg = dot ? (size_t)(dot - p) : (size_t)(end - p);
		cJSON *child = NULL;
		for (cJSON *c = n->child; c; c = c->next)
			if (c->string && strlen(c->string) == seg && !strncmp(c->string, p, seg))
				child = c;
		n = child;
		p += seg + (dot ? 1 : 0);
	}
	return n && cJSON_IsObject(n) ? n : NULL;
}

/* Whether the default `def` of model setting `key` ("model.<key>") is one
 * that r's model takes: not with from_pretrained (its config.json gives
 * the settings), and only a setting of r's family. */
static bool model_default_applies(const struct recipe *r, const char *key, const cJSON *def)
{
	if (cJSON_IsNull(def) || !strcmp(key, "max_seq_len"))
		return true; /* null: "the default", taken by every family */
	if (r->from_pretrained)
		return false;
	struct model_config probe = r->model;
	double v = cJSON_IsBool(def) ? (double)cJSON_IsTrue(def) : def->valuedouble;
	return model_config_set(&probe, key, v) == 0;
}

char *recipe_effective_json(const struct recipe *r)
{
	hug_json_init();
	cJSON *root = cJSON_Parse(r->json);
	HUG_ASSERT(root); /* recipe_parse printed it */
	for (int i = 0; i < recipe_n_keys; i++) {
		const struct rkey *k = &recipe_keys[i];
		const char *dot = strrchr(k->path, '.'), *leaf = dot ? dot + 1 : k->path;
		cJSON *parent = object_at(root, k->path, dot ? (size_t)(dot - k->path) : 0);
		if (!parent || cJSON_GetObjectItemCaseSensitive(parent, leaf))
			continue; /* a parent left null (peft, rampup), or given */
		cJSON *def;
		if (!strcmp(k->path, "model.arch"))
			def = cJSON_CreateString(r->model.family->name);
		else if (k->def)
			def = cJSON_Parse(k->def);
		else
			continue; /* required, or no default */
		if (!strncmp(k->path, "model.", 6) && strcmp(k->path, "model.arch") &&
		    !model_default_applies(r, k->path + 6, def)) {
			cJSON_Delete(def);
			continue;
		}
		cJSON_AddItemToObject(parent, leaf, def);
	}
	char *text = cJSON_Print(root), *out = hug_strdup(text);
	cJSON_free(text);
	cJSON_Delete(root);
	return out;
}
