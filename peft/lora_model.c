/* lora_model.c: attaching LoRA adapters to a BLOOM model (targeting,
 * arenas, PEFT names, hooks), counting and reporting them. */
#include "lora_model.h"

#include <inttypes.h>
#include <string.h>

#include "../autograd/backend.h"
#include "../base/alloc.h"
#include "../base/panic.h"
#include "lora_internal.h"

struct tensor *lora_base_weight(const struct bloom_model *m, int layer,
				enum bloom_linear kind)
{
	const struct bloom_layer *l = &m->layers[layer];
	switch (kind) {
	case BLOOM_QKV:
		return l->qkv_w;
	case BLOOM_PROJ:
		return l->proj_w;
	case BLOOM_FC1:
		return l->fc1_w;
	case BLOOM_FC2:
		return l->fc2_w;
	default:
		hug_panic("bad linear kind %d", (int)kind);
	}
}

void lora_param_name(char *buf, size_t n, int layer, enum bloom_linear kind, char which)
{
	snprintf(buf, n, "base_model.model.transformer.h.%d.%s.lora_%c.weight", layer,
		 bloom_linear_path(kind), which);
}

/* (in, out) of a linear kind in a model of hidden size c. */
static void linear_dims(enum bloom_linear kind, int64_t c, int64_t *in, int64_t *out)
{
	static const int64_t mul[BLOOM_N_LINEAR][2] = {
		[BLOOM_QKV] = { 1, 3 }, [BLOOM_PROJ] = { 1, 1 },
		[BLOOM_FC1] = { 1, 4 }, [BLOOM_FC2] = { 4, 1 },
	};
	*in = mul[kind][0] * c;
	*out = mul[kind][1] * c;
}

/* Arena bytes of one tensor of numel elements (data and header, each
 * rounded to the alignment), as tensor_new uses them. */
static size_t slot_bytes(int64_t numel, enum dtype dt)
{
	size_t a = ARENA_ALIGN;
	return ((size_t)numel * dtype_size(dt) + a - 1) / a * a +
	       (sizeof(struct tensor) + a - 1) / a * a;
}

/* The selected sites of cfg on base, in order (count in *n). */
static struct lora_site *select_sites(const struct lora_config *cfg, int n_layer, int *n)
{
	struct lora_site *s = hug_calloc((size_t)n_layer * BLOOM_N_LINEAR, sizeof(*s));
	*n = 0;
	for (int l = 0; l < n_layer; l++)
		for (int k = 0; k < BLOOM_N_LINEAR; k++)
			if (lora_config_selects(cfg, l, (enum bloom_linear)k, NULL)) {
				s[*n].layer = l;
				s[(*n)++].kind = (enum bloom_linear)k;
			}
	return s;
}

/* Allocates A and B of every site and registers them. */
static void alloc_adapters(struct lora_model *lm, bool trainable)
{
	const struct bloom_model *m = lm->base;
	size_t total = 0;
	int64_t r = lm->cfg.r;
	for (int i = 0; i < lm->n; i++) {
		const struct tensor *w = lora_base_weight(m, lm->sites[i].layer, lm->sites[i].kind);
		total += slot_bytes(r * w->shape[1], m->dtype) + slot_bytes(w->shape[0] * r, m->dtype);
	}
	/* on the base's device */
	const struct arena_allocator *on = ag_device_allocator(m->wte->device);
	arena_init(&lm->params, "lora", total, on);
	arena_init(&lm->grads, "lora-grads", total, on);
	param_table_init(&lm->table);
	char name[PARAM_NAME_MAX];
	for (int i = 0; i < lm->n; i++) {
		struct lora_site *s = &lm->sites[i];
		const struct tensor *w = lora_base_weight(m, s->layer, s->kind);
		s->ad.a = tensor_new(&lm->params, m->dtype, TENSOR_SHAPE(r, w->shape[1]));
		s->ad.b = tensor_new(&lm->params, m->dtype, TENSOR_SHAPE(w->shape[0], r));
		s->ad.scale = lora_config_scale(&lm->cfg);
		s->ad.dropout = lm->cfg.dropout;
		if (trainable) {
			tensor_set_requires_grad(s->ad.a, &lm->grads);
			tensor_set_requires_grad(s->ad.b, &lm->grads);
		}
		lora_param_name(name, sizeof(name), s->layer, s->kind, 'A');
		param_table_add(&lm->table, name, s->ad.a, false);
		lora_param_name(name, sizeof(name), s->layer, s->kind, 'B');
		param_table_add(&lm->table, name, s->ad.b, false);
	}
	/* the sizes above must have held everything in one block each */
	HUG_ASSERT(lm->params.n_chunk_allocs == 1);
	HUG_ASSERT(!trainable || lm->grads.n_chunk_allocs == 1);
}

int lora_model_init(struct lora_model *lm, struct bloom_model *base,
		    const struct lora_config *cfg, bool trainable, const char *what,
		    struct hug_error *err)
{
	memset(lm, 0, sizeof(*lm));
	if (lora_config_validate(cfg, what, err) ||
	    lora_config_check_targets(cfg, base->cfg.n_layer, what, err))
		return -1;
	for (int l = 0; l < base->cfg.n_layer; l++)
		for (int k = 0; k < BLOOM_N_LINEAR; k++)
			HUG_ASSERT(!base->layers[l].lora[k]); /* one adapter at a time */
	lora_config_copy(&lm->cfg, cfg);
	lm->base = base;
	lm->sites = select_sites(cfg, base->cfg.n_layer, &lm->n);
	alloc_adapters(lm, trainable);
	for (int i = 0; i < lm->n; i++)
		base->layers[lm->sites[i].layer].lora[lm->sites[i].kind] = &lm->sites[i].ad;
	return 0;
}

void lora_model_free(struct lora_model *lm)
{
	for (int i = 0; lm->base && i < lm->n; i++)
		lm->base->layers[lm->sites[i].layer].lora[lm->sites[i].kind] = NULL;
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
	int per_kind[BLOOM_N_LINEAR] = { 0 };
	int n_layer = lm->base->cfg.n_layer;
	for (int i = 0; i < lm->n; i++)
		per_kind[lm->sites[i].kind]++;
	bool uniform = true;
	for (int k = 0; k < BLOOM_N_LINEAR; k++)
		uniform = uniform && (per_kind[k] == 0 || per_kind[k] == n_layer);
	int n = 0;
	*names = hug_calloc((size_t)(lm->n ? lm->n : 1), sizeof(char *));
	char path[96];
	if (uniform) {
		for (int k = 0; k < BLOOM_N_LINEAR; k++)
			if (per_kind[k])
				(*names)[n++] = hug_strdup(bloom_linear_name((enum bloom_linear)k));
		return n;
	}
	for (int i = 0; i < lm->n; i++) {
		lora_module_path(path, sizeof(path), lm->sites[i].layer, lm->sites[i].kind);
		(*names)[n++] = hug_strdup(path);
	}
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
	int64_t all = param_table_numel(&lm->base->table) + trainable;
	char a[32], b[32];
	fprintf(out, "trainable params: %s || all params: %s || trainable%%: %.4f\n",
		commas(trainable, a, sizeof(a)), commas(all, b, sizeof(b)),
		100.0 * (double)trainable / (double)all);
}

int64_t lora_count_params(const struct lora_config *cfg, const struct bloom_config *bc)
{
	int64_t n = 0, in, out;
	for (int l = 0; l < bc->n_layer; l++)
		for (int k = 0; k < BLOOM_N_LINEAR; k++)
			if (lora_config_selects(cfg, l, (enum bloom_linear)k, NULL)) {
				linear_dims((enum bloom_linear)k, bc->hidden_size, &in, &out);
				n += (int64_t)cfg->r * (in + out);
			}
	return n;
}

void lora_memory_estimate(const struct lora_config *cfg, const struct bloom_config *bc,
			  int64_t elem, int n_moments, struct lora_memory *lora,
			  struct lora_memory *full)
{
	int64_t p = bloom_param_count(bc), a = lora_count_params(cfg, bc);
	*full = (struct lora_memory){ p * elem, p * elem, n_moments * p * elem };
	*lora = (struct lora_memory){ (p + a) * elem, a * elem, n_moments * a * elem };
}

/* Bytes as "12.3 MiB" (binary units). */
static char *human(int64_t bytes, char *buf, size_t n)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024.0 && u < 4) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
	return buf;
}

void lora_report(const struct lora_model *lm, const struct lora_memory *used,
		 int n_moments, FILE *out)
{
	struct lora_memory est, full;
	char a[32], b[32], c[32], d[32], e[32];
	lora_memory_estimate(&lm->cfg, &lm->base->cfg, 4, n_moments, &est, &full);
	int64_t u = used->params + used->grads + used->optim;
	int64_t f = full.params + full.grads + full.optim;
	lora_print_trainable(lm, out);
	fprintf(out, "memory for training: parameters %s + gradients %s + optimizer %s = %s; ",
		human(used->params, a, sizeof(a)), human(used->grads, b, sizeof(b)),
		human(used->optim, c, sizeof(c)), human(u, d, sizeof(d)));
	fprintf(out, "full fine-tuning would hold %s (LoRA saves %s, %.1f%%)\n",
		human(f, a, sizeof(a)), human(f - u, e, sizeof(e)),
		f > 0 ? 100.0 * (double)(f - u) / (double)f : 0.0);
}
