/* lora_config.c: LoRA settings: defaults, copies, the scale, validation. */
#include "lora_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "lora_internal.h"

void lora_config_init(struct lora_config *c)
{
	memset(c, 0, sizeof(*c));
	c->r = 8;
	c->alpha = 8.0;
	lora_config_set_targets(c, NULL, 0);
}

static void free_targets(struct lora_config *c)
{
	for (int i = 0; i < c->n_targets; i++)
		hug_free(c->targets[i]);
	hug_free(c->targets);
	hug_free(c->target_regex);
	c->targets = NULL;
	c->n_targets = 0;
	c->target_regex = NULL;
}

void lora_config_free(struct lora_config *c)
{
	free_targets(c);
	hug_free(c->layers);
	hug_free(c->base_model);
	memset(c, 0, sizeof(*c));
}

void lora_config_copy(struct lora_config *dst, const struct lora_config *src)
{
	*dst = *src;
	dst->targets = NULL;
	dst->n_targets = 0;
	dst->target_regex = src->target_regex ? hug_strdup(src->target_regex) : NULL;
	if (src->n_targets) {
		dst->targets = hug_calloc((size_t)src->n_targets, sizeof(char *));
		for (int i = 0; i < src->n_targets; i++)
			dst->targets[i] = hug_strdup(src->targets[i]);
		dst->n_targets = src->n_targets;
	}
	dst->layers = NULL;
	if (src->layers) {
		dst->layers = hug_malloc((size_t)src->n_layers * sizeof(int));
		memcpy(dst->layers, src->layers, (size_t)src->n_layers * sizeof(int));
	}
	dst->base_model = src->base_model ? hug_strdup(src->base_model) : NULL;
}

void lora_config_set_targets(struct lora_config *c, const char *const *targets, int n)
{
	free_targets(c);
	if (n == 0)
		return;
	c->targets = hug_calloc((size_t)n, sizeof(char *));
	for (int i = 0; i < n; i++)
		c->targets[i] = hug_strdup(targets[i]);
	c->n_targets = n;
}

void lora_config_resolve_targets(struct lora_config *c, const struct model_family *f)
{
	int n = 0;
	if (c->n_targets || c->target_regex || !f->lora_targets)
		return;
	while (f->lora_targets[n])
		n++;
	lora_config_set_targets(c, f->lora_targets, n);
}

void lora_config_set_regex(struct lora_config *c, const char *pattern)
{
	free_targets(c);
	c->target_regex = hug_strdup(pattern);
}

void lora_config_set_base(struct lora_config *c, const char *base)
{
	hug_free(c->base_model);
	c->base_model = base ? hug_strdup(base) : NULL;
}

double lora_config_scale(const struct lora_config *c)
{
	return c->rslora ? c->alpha / sqrt((double)c->r) : c->alpha / (double)c->r;
}

static int validate_targets(const struct lora_config *c, const char *what,
			    struct hug_error *err)
{
	if (c->target_regex) {
		char msg[256];
		struct lora_regex *re = lora_regex_new(c->target_regex, msg, sizeof(msg));
		if (!re)
			return hug_error_set(err, "%starget_modules: \"%.300s\" is not a regular "
					     "expression (Python syntax, as PEFT reads it): %s", what, c->target_regex, msg);
		lora_regex_free(re);
		return 0;
	}
	for (int i = 0; i < c->n_targets; i++)
		if (!c->targets[i][0])
			return hug_error_set(err, "%starget_modules[%d]: expected a module name, "
					     "got \"\"", what, i);
	return 0;
}

int lora_config_validate(const struct lora_config *c, const char *what,
			 struct hug_error *err)
{
	if (c->r <= 0)
		return hug_error_set(err, "%sr: expected an integer > 0, got %d", what, c->r);
	if (!isfinite(c->alpha))
		return hug_error_set(err, "%slora_alpha: expected a finite number, got %g", what,
				     c->alpha);
	if (!(c->dropout >= 0.0 && c->dropout < 1.0))
		return hug_error_set(err, "%slora_dropout: expected a number in [0, 1), got %g",
				     what, c->dropout);
	for (int i = 0; i < c->n_layers; i++)
		if (c->layers[i] < 0)
			return hug_error_set(err, "%slayers_to_transform[%d]: expected a layer "
					     "index >= 0, got %d", what, i, c->layers[i]);
	return validate_targets(c, what, err);
}
