/* lora_model.c: attaching LoRA adapters to a model's linear layers (targeting,
 * arenas, PEFT names, hooks), counting and reporting them. */
#include "lora_model.h"

#include <inttypes.h>
#include <string.h>

#include "../autograd/backend.h"
#include "../base/alloc.h"
#include "../base/panic.h"
#include "lora_internal.h"

struct tensor *lora_base_weight(const struct model *m, int layer, int kind)
{
	struct model_linear lin;
	model_linear(m, layer, kind, &lin);
	return lin.weight;
}

void lora_param_name(char *buf, size_t n, const char *path, char which)
{
	int len = snprintf(buf, n, "base_model.model.%s.lora_%c.weight", path, which);
	HUG_ASSERT(len > 0 && (size_t)len < n); /* names come from the family's code */
}

/* Arena bytes of one tensor of numel elements (data and header, each
 * rounded to the alignment), as tensor_new uses them. */
static size_t slot_bytes(int64_t numel, enum dtype dt)
{
	size_t a = ARENA_ALIGN;
	return ((size_t)numel * dtype_size(dt) + a - 1) / a * a +
	       (sizeof(struct tensor) + a - 1) / a * a;
}

/* The selected sites of cfg on base, by layer then in the family's order
 * (count in *n). */
static struct lora_site *select_sites(const struct lora_config *cfg, const struct model *base,
				      int *n)
{
	int n_layer = model_dims(base).n_layer, n_linear = base->family->n_linear;
	struct lora_site *s = hug_calloc((size_t)n_layer * (size_t)n_linear, sizeof(*s));
	*n = 0;
	for (int l = 0; l < n_layer; l++)
		for (int k = 0; k < n_linear; k++) {
			model_linear(base, l, k, &s[*n].lin);
			if (lora_config_selects(cfg, &s[*n].lin, NULL)) {
				s[*n].layer = l;
				s[(*n)++].kind = k;
			}
		}
	return s;
}

/* Allocates A and B of every site and registers them. */
static void alloc_adapters(struct lora_model *lm, bool trainable)
{
	struct model_parts m = model_parts(&lm->base);
	size_t total = 0;
	int64_t r = lm->cfg.r;
	for (int i = 0; i < lm->n; i++) {
		const struct tensor *w = lm->sites[i].lin.weight;  /* (out, in) */
		total += slot_bytes(r * w->shape[1], m.dtype) + slot_bytes(w->shape[0] * r, m.dtype);
	}
	/* on the base's device */
	const struct arena_allocator *on = ag_device_allocator(m.device);
	arena_init(&lm->params, "lora", total, on);
	arena_init(&lm->grads, "lora-grads", total, on);
	param_table_init(&lm->table);
	char name[PARAM_NAME_MAX];
	for (int i = 0; i < lm->n; i++) {
		struct lora_site *s = &lm->sites[i];
		const struct tensor *w = s->lin.weight;
		s->ad.a = tensor_new(&lm->params, m.dtype, TENSOR_SHAPE(r, w->shape[1]));
		s->ad.b = tensor_new(&lm->params, m.dtype, TENSOR_SHAPE(w->shape[0], r));
		s->ad.scale = lora_config_scale(&lm->cfg);
		s->ad.dropout = lm->cfg.dropout;
		if (trainable) {
			tensor_set_requires_grad(s->ad.a, &lm->grads);
			tensor_set_requires_grad(s->ad.b, &lm->grads);
		}
		lora_param_name(name, sizeof(name), s->lin.path, 'A');
		param_table_add(&lm->table, name, s->ad.a, false);
		lora_param_name(name, sizeof(name), s->lin.path, 'B');
		param_table_add(&lm->table, name, s->ad.b, false);
	}
	/* the sizes above must have held everything in one block each */
	HUG_ASSERT(lm->params.n_chunk_allocs == 1);
	HUG_ASSERT(!trainable || lm->grads.n_chunk_allocs == 1);
}

int lora_model_init(struct lora_model *lm, const struct model *base,
		    const struct lora_config *cfg, bool trainable, const char *what,
		    struct hug_error *err)
{
	struct model_config mc;
	struct model_linear lin;
	struct lora_config resolved;
	memset(lm, 0, sizeof(*lm));
	model_config_of(base, &mc);
	/* no targets: the family's default, PEFT's mapping */
	if (lora_config_check(cfg, &mc, &resolved, what, err))
		return -1;
	cfg = &resolved;
	for (int l = 0; l < mc.dims.n_layer; l++)
		for (int k = 0; k < base->family->n_linear; k++) {
			model_linear(base, l, k, &lin);
			HUG_ASSERT(!*lin.adapter); /* one adapter at a time */
		}
	lora_config_copy(&lm->cfg, cfg);
	lm->base = *base;
	lm->sites = select_sites(cfg, base, &lm->n);
	alloc_adapters(lm, trainable);
	for (int i = 0; i < lm->n; i++)
		*lm->sites[i].lin.adapter = &lm->sites[i].ad;
	lora_config_free(&resolved);
	return 0;
}

void lora_model_free(struct lora_model *lm)
{
	for (int i = 0; lm->base.family && i < lm->n; i++)
		*lm->sites[i].lin.adapter = NULL;
	param_table_free(&lm->table);
	arena_free(&lm->params);
	arena_free(&lm->grads);
	hug_free(lm->sites);
	lora_config_free(&lm->cfg);
	memset(lm, 0, sizeof(*lm));
}

int64_t lora_model_numel(const struct lora_model *lm)
{
	return param_table_numel(&lm->table);
}

void lora_names_free(char **names, int n)
{
	for (int i = 0; i < n; i++)
		hug_free(names[i]);
	hug_free(names);
}

int lora_model_target_names(const struct lora_model *lm, char ***names)
{
	const struct model_family *f = lm->base.family;
	int *per_kind = hug_calloc((size_t)f->n_linear, sizeof(int));
	int n_layer = model_dims(&lm->base).n_layer;
	for (int i = 0; i < lm->n; i++)
		per_kind[lm->sites[i].kind]++;
	bool uniform = true;
	for (int k = 0; k < f->n_linear; k++)
		uniform = uniform && (per_kind[k] == 0 || per_kind[k] == n_layer);
	int n = 0;
	*names = hug_calloc((size_t)(lm->n ? lm->n : 1), sizeof(char *));
	if (uniform) {
		for (int k = 0; k < f->n_linear; k++)
			if (per_kind[k])
				(*names)[n++] = hug_strdup(f->linears[k].module);
	} else {
		for (int i = 0; i < lm->n; i++)
			(*names)[n++] = hug_strdup(lm->sites[i].lin.path);
	}
	hug_free(per_kind);
	return n;
}

/* 1234567 -> "1,234,567" (Python's {:,d}). */
static char *commas(int64_t v, char *buf, size_t n)
{
	char digits[32];
	snprintf(digits, sizeof(digits), "%" PRId64, v < 0 ? -v : v);
	size_t len = strlen(digits), o = 0;
	if (v < 0 && o + 1 < n)
		buf[o++] = '-';
	for (size_t i = 0; i < len && o + 2 < n; i++) {
		if (i && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

void lora_print_trainable(const struct lora_model *lm, FILE *out)
{
	int64_t trainable = lora_model_numel(lm);
	int64_t all = param_table_numel(model_params(&lm->base)) + trainable;
	char a[32], b[32];
	fprintf(out, "trainable params: %s || all params: %s || trainable%%: %.4f\n",
		commas(trainable, a, sizeof(a)), commas(all, b, sizeof(b)),
		100.0 * (double)trainable / (double)all);
}

int64_t lora_count_params(const struct lora_config *cfg, const struct model_config *mc)
{
	int64_t n = 0;
	struct model_linear lin;
	struct lora_config resolved; /* no targets: the family's default */
	lora_config_copy(&resolved, cfg);
	lora_config_resolve_targets(&resolved, mc->family);
	for (int l = 0; l < mc->dims.n_layer; l++)
		for (int k = 0; k < model_config_n_linear(mc); k++) {
			model_config_linear(mc, l, k, &lin);
			if (lora_config_selects(&resolved, &lin, NULL))
				n += (int64_t)cfg->r * (lin.in + lin.out);
		}
	lora_config_free(&resolved);
	return n;
}

void lora_memory_estimate(const struct lora_config *cfg, const struct model_config *mc,
			  int64_t elem, int n_moments, struct lora_memory *lora,
			  struct lora_memory *full)
{
	int64_t p = model_config_param_count(mc), a = lora_count_params(cfg, mc);
	*full = (struct lora_memory){ p * elem, p * elem, n_moments * p * elem };
	*lora = (struct lora_memory){ (p + a) * elem, a * elem, n_moments * a * elem };
}
