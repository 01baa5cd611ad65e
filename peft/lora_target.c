/* lora_target.c: which linear layers a LoRA config selects (PEFT's
 * matching rules plus fnmatch patterns; a string target_modules as a
 * Python regular expression with re.fullmatch, through Oniguruma's Python
 * syntax), and the check that every target selects something. */
#define ONIG_ESCAPE_REGEX_T_COLLISION
#include <fnmatch.h>
#include <oniguruma.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "lora_config.h"
#include "lora_internal.h"

struct lora_regex {
	OnigRegex re;          /* (?:pattern)\Z: anchored by onig_match at 0 */
};

static void onig_init_once(void)
{
	OnigEncoding enc[1] = { ONIG_ENCODING_UTF8 };
	onig_initialize(enc, 1);
}

static pthread_once_t onig_once = PTHREAD_ONCE_INIT;

/* True when a repetition (*, +, ?, {m,n}) directly repeats another one
 * (Python: "multiple repeat"); one ? or + right after a repetition makes
 * it lazy or possessive and is allowed. */
static bool stacked_repetition(const char *p)
{
	int state = 0; /* 0: not after a repetition; 1: after one; 2: after its modifier */
	for (size_t i = 0; p[i]; i++) {
		char ch = p[i];
		if (ch == '\\' && p[i + 1]) {
			i++;
			state = 0;
		} else if (ch == '[') { /* skip the character class */
			size_t j = i + 1;
			if (p[j] == '^')
				j++;
			if (p[j] == ']')
				j++;
			while (p[j] && p[j] != ']')
				j += p[j] == '\\' && p[j + 1] ? 2 : 1;
			i = p[j] ? j : i;
			state = 0;
		} else if (ch == '*' || ch == '+' || ch == '?' || ch == '{') {
			if (state == 1 && (ch == '?' || ch == '+')) {
				state = 2;
				continue;
			}
			if (state)
				return true;
			if (ch == '{')
				while (p[i + 1] && p[i] != '}')
					i++;
			state = 1;
		} else {
			state = 0;
		}
	}
	return false;
}

/* Compiles pattern[0..n) with Python syntax; 0 or Oniguruma's message. */
static int compile(const char *pattern, size_t n, OnigRegex *re, char *msg, size_t cap)
{
	OnigErrorInfo ei;
	int r = onig_new(re, (const OnigUChar *)pattern, (const OnigUChar *)pattern + n,
			 ONIG_OPTION_NONE, ONIG_ENCODING_UTF8, ONIG_SYNTAX_PYTHON, &ei);
	if (r != ONIG_NORMAL) {
		OnigUChar s[ONIG_MAX_ERROR_MESSAGE_LEN];
		onig_error_code_to_str(s, r, &ei);
		snprintf(msg, cap, "%s", (const char *)s);
		return -1;
	}
	return 0;
}

struct lora_regex *lora_regex_new(const char *pattern, char *msg, size_t msg_cap)
{
	pthread_once(&onig_once, onig_init_once);
	size_t n = strlen(pattern);
	OnigRegex re;
	if (n > 4096) {
		snprintf(msg, msg_cap, "longer than 4096 bytes");
		return NULL;
	}
	if (stacked_repetition(pattern)) {
		snprintf(msg, msg_cap, "multiple repeat (a repetition of a repetition)");
		return NULL;
	}
	/* the pattern alone first, so that "a)|(b" cannot pass once wrapped */
	if (compile(pattern, n, &re, msg, msg_cap))
		return NULL;
	onig_free(re);
	char *full = hug_malloc(n + 9);
	snprintf(full, n + 9, "(?:%s)\\Z", pattern);
	int rc = compile(full, strlen(full), &re, msg, msg_cap);
	if (rc) { /* a verbose-mode (?x) comment ran to the end: end it */
		snprintf(full, n + 9, "(?:%s\n)\\Z", pattern);
		rc = compile(full, strlen(full), &re, msg, msg_cap);
	}
	hug_free(full);
	if (rc)
		return NULL;
	struct lora_regex *x = hug_calloc(1, sizeof(*x));
	x->re = re;
	return x;
}

void lora_regex_free(struct lora_regex *x)
{
	if (!x)
		return;
	onig_free(x->re);
	hug_free(x);
}

bool lora_regex_full_match(const struct lora_regex *x, const char *s)
{
	const OnigUChar *p = (const OnigUChar *)s, *end = p + strlen(s);
	return onig_match(x->re, p, end, p, NULL, ONIG_OPTION_NONE) == end - p;
}

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
	char msg[256];
	struct lora_regex *re = lora_regex_new(pattern, msg, sizeof(msg));
	if (!re)
		return false; /* lora_config_validate reports it */
	bool ok = lora_regex_full_match(re, path);
	lora_regex_free(re);
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

int lora_config_check(const struct lora_config *c, const struct model_config *mc,
		      struct lora_config *resolved, const char *what, struct hug_error *err)
{
	struct lora_config r;
	lora_config_copy(&r, c);
	lora_config_resolve_targets(&r, mc->family);
	int rc = lora_config_validate(&r, what, err) || lora_config_check_targets(&r, mc, what, err)
			 ? -1 : 0;
	if (rc || !resolved)
		lora_config_free(&r);
	else
		*resolved = r;
	return rc;
}
