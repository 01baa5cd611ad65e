/* lora_target.c: which linear layers a LoRA config selects (PEFT's
 * matching rules plus fnmatch patterns), and the check that every target
 * selects something. */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "lora_config.h"
#include "lora_internal.h"

#define ALL_LINEAR "all-linear"

/* Whether list entry t selects the module at `path`: t matches the whole
 * path, or the part after one of its dots (PEFT: key == t or
 * key.endswith("." + t)), as a name or an fnmatch pattern. */
static bool entry_matches(const char *t, const char *path)
{
	if (!strcmp(t, ALL_LINEAR))
		return true;
	for (const char *p = path; p; p = strchr(p, '.')) {
		if (*p == '.')
			p++;
		if (fnmatch(t, p, 0) == 0)
			return true;
	}
	return false;
}

static bool layer_kept(const struct lora_config *c, int layer)
{
	if (!c->layers)
		return true;
	for (int i = 0; i < c->n_layers; i++)
		if (c->layers[i] == layer)
			return true;
	return false;
}

static bool regex_matches(const char *pattern, const char *path)
{
	if (!strcmp(pattern, ALL_LINEAR))
		return true;
	regex_t re;
	if (lora_regex_compile(pattern, &re))
		return false; /* lora_config_validate reports it */
	bool ok = regexec(&re, path, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

bool lora_config_selects(const struct lora_config *c, const struct model_linear *lin,
			 int *hits)
{
	const char *path = lin->path;
	if (!layer_kept(c, lin->layer))
		return false;
	if (c->target_regex) {
		bool ok = regex_matches(c->target_regex, path);
		if (ok && hits)
			hits[0]++;
		return ok;
	}
	bool any = false;
	for (int i = 0; i < c->n_targets; i++)
		if (entry_matches(c->targets[i], path)) {
			any = true;
			if (hits)
				hits[i]++;
		}
	return any;
}

/* The family's PEFT module names: "query_key_value, dense, ..." */
static void known_names(const struct model_family *f, char *buf, size_t n)
{
	buf[0] = '\0';
	for (int k = 0; k < f->n_linear; k++) {
		size_t used = strlen(buf);
		snprintf(buf + used, n - used, "%s%s", k ? ", " : "", f->linears[k].module);
	}
}

int lora_config_check_targets(const struct lora_config *c, const struct model_config *mc,
			      const char *what, struct hug_error *err)
{
	int n_layer = mc->dims.n_layer, n_linear = model_config_n_linear(mc);
	struct model_linear lin;
	for (int i = 0; i < c->n_layers; i++)
		if (c->layers[i] >= n_layer)
			return hug_error_set(err, "%slayers_to_transform[%d]: layer %d does not "
					     "exist (the model has %d layers)", what, i,
					     c->layers[i], n_layer);
	int n = c->target_regex ? 1 : c->n_targets;
	int *hits = hug_calloc((size_t)n, sizeof(int));
	for (int l = 0; l < n_layer; l++)
		for (int k = 0; k < n_linear; k++) {
			model_config_linear(mc, l, k, &lin);
			lora_config_selects(c, &lin, hits);
		}
	int rc = 0;
	char names[256];
	known_names(mc->family, names, sizeof(names));
	model_config_linear(mc, 0, 0, &lin); /* an example path */
	for (int i = 0; i < n && !rc; i++) {
		if (hits[i])
			continue;
		char key[32] = "";
		if (!c->target_regex)
			snprintf(key, sizeof(key), "[%d]", i);
		rc = hug_error_set(err, "%starget_modules%s: \"%s\" matches no linear layer of "
				   "%s%s (its linear layers: %s; a module path looks like "
				   "%s)", what, key,
				   c->target_regex ? c->target_regex : c->targets[i],
				   mc->family->display, c->layers ? " in layers_to_transform" : "",
				   names, lin.path);
	}
	hug_free(hits);
	return rc;
}
