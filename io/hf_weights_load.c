/* hf_weights_load.c: loading the weights of a Hugging Face directory by
 * name into a parameter table, with the model family's naming rules (an
 * optional prefix, tensors that are not parameters). Everything (names,
 * duplicates, shapes, dtypes, missing tensors) is checked before a single
 * value is copied, so a failed load leaves the parameters as they were. */
#include "hf_checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "safetensors.h"

/* The registry name of a tensor stored as `name`: with the family's
 * optional prefix. Returns 1 for a tensor the family ignores (a tied
 * lm_head; plan_tensor still loads it when the model has such a
 * parameter), 0 with buf filled, -1 when the name cannot be a parameter (too
 * long). */
static int param_name(const struct model_hf_names *rules, const char *name, char *buf,
		      size_t n)
{
	for (int i = 0; rules && rules->ignored && rules->ignored[i]; i++)
		if (strcmp(name, rules->ignored[i]) == 0)
			return 1;
	const char *prefix = rules && rules->optional_prefix ? rules->optional_prefix : "";
	bool prefixed = strncmp(name, prefix, strlen(prefix)) == 0;
	int len = snprintf(buf, n, "%s%s", prefixed ? "" : prefix, name);
	return len < 0 || (size_t)len >= n ? -1 : 0;
}

/* Where each parameter comes from. */
struct load_plan {
	const struct st_tensor **src; /* per parameter, NULL until found */
	int *src_file;
	const struct model_hf_names *names;
	const char *model;            /* "BLOOM", for messages */
};

static void shape_text(const int64_t *shape, int ndim, char *buf, size_t n)
{
	size_t off = (size_t)snprintf(buf, n, "[");
	for (int d = 0; d < ndim && off < n; d++)
		off += (size_t)snprintf(buf + off, n - off, "%s%" PRId64,
					d ? ", " : "", shape[d]);
	if (off < n)
		snprintf(buf + off, n - off, "]");
}

/* Matches one file tensor to its parameter, checking name, uniqueness,
 * dtype and shape. */
static int plan_tensor(const struct param_table *pt, const char *dir,
		       const struct hf_weight_files *wf, int f,
		       const struct st_tensor *t, struct load_plan *plan,
		       struct hug_error *err)
{
	char name[PARAM_NAME_MAX + 16], a[256], b[256];
	int k = param_name(plan->names, t->name, name, sizeof(name));
	/* an ignored name is loaded when the model has that parameter (an
	 * untied lm_head.weight; a tied model skips the file's copy) */
	if (k == 1 && param_table_find(pt, t->name)) {
		snprintf(name, sizeof(name), "%s", t->name);
		k = 0;
	}
	if (k == 1)
		return 0;
	struct param *p = k == 0 ? param_table_find(pt, name) : NULL;
	if (!p)
		return hug_error_set(err, "%s: unexpected tensor %s (not a parameter of this %s model)",
				     t->path, t->name, plan->model);
	int i = (int)(p - pt->items);
	if (plan->src[i])
		return hug_error_set(err, "%s: tensor %s given twice (as %s in %s and as %s in %s)",
				     dir, p->name, plan->src[i]->name,
				     wf->files[plan->src_file[i]], t->name, wf->files[f]);
	if (!dtype_is_float(t->dtype))
		return hug_error_set(err, "%s: %s: dtype %s, expected a float dtype (F32, F64, BF16 or F16)",
				     t->path, t->name, st_dtype_name(t->dtype));
	bool same = t->ndim == p->t->ndim;
	for (int d = 0; same && d < t->ndim; d++)
		same = t->shape[d] == p->t->shape[d];
	if (!same) {
		shape_text(t->shape, t->ndim, a, sizeof(a));
		shape_text(p->t->shape, p->t->ndim, b, sizeof(b));
		return hug_error_set(err, "%s: %s: shape %s, expected %s", t->path,
				     t->name, a, b);
	}
	plan->src[i] = t;
	plan->src_file[i] = f;
	return 0;
}

/* The index must not claim a tensor for a shard that lacks it. */
static int plan_check_index(const char *dir, const struct hf_weight_files *wf,
			    const struct st_file *sf, struct hug_error *err)
{
	for (int i = 0; i < wf->n_map; i++) {
		if (st_find(&sf[wf->map_file[i]], wf->map_names[i]))
			continue;
		return hug_error_set(err, "%s/%s: weight_map says %s is in %s, but that shard does not hold it",
				     dir, HF_WEIGHTS_INDEX_FILE, wf->map_names[i],
				     wf->files[wf->map_file[i]]);
	}
	return 0;
}

/* "model.safetensors", or the shard list (shortened when long). */
static void looked_in(const struct hf_weight_files *wf, char *buf, size_t n)
{
	if (!wf->sharded || wf->n_files > 3) {
		if (wf->sharded)
			snprintf(buf, n, "the %d shards listed in %s", wf->n_files,
				 HF_WEIGHTS_INDEX_FILE);
		else
			snprintf(buf, n, "%s", wf->files[0]);
		return;
	}
	size_t off = 0;
	buf[0] = '\0';
	for (int f = 0; f < wf->n_files && off < n; f++)
		off += (size_t)snprintf(buf + off, n - off, "%s%s", f ? ", " : "",
					wf->files[f]);
}

int hf_weights_load(struct param_table *pt, const struct model_hf_names *names,
		    const char *model, const char *dir, struct hug_error *err)
{
	struct hf_weight_files wf;
	char where[512];
	int rc = -1, opened = 0;
	if (hf_weights_find(dir, &wf, err))
		return -1;
	struct st_file *sf = hug_calloc((size_t)wf.n_files, sizeof(*sf));
	struct load_plan plan = {
		.src = hug_calloc((size_t)pt->n + 1, sizeof(*plan.src)),
		.src_file = hug_calloc((size_t)pt->n + 1, sizeof(int)),
		.names = names,
		.model = model ? model : "",
	};
	for (; opened < wf.n_files; opened++) {
		if (st_open_in(&sf[opened], dir, wf.files[opened], err))
			goto close_files;
	}
	for (int f = 0; f < wf.n_files; f++)
		for (int k = 0; k < sf[f].n; k++)
			if (plan_tensor(pt, dir, &wf, f, &sf[f].tensors[k], &plan, err))
				goto close_files;
	if (wf.sharded && plan_check_index(dir, &wf, sf, err))
		goto close_files;
	for (int i = 0; i < pt->n; i++) {
		if (plan.src[i])
			continue;
		looked_in(&wf, where, sizeof(where));
		hug_error_set(err, "%s: missing tensor %s (looked in %s)", dir,
			      pt->items[i].name, where);
		goto close_files;
	}
	/* everything checked: now copy, file by file, dropping each tensor's
	 * pages once converted and each file's mapping once done, so the peak
	 * is the parameters plus about one tensor, not the files as well */
	for (int f = 0; f < wf.n_files; f++) {
		for (int i = 0; i < pt->n; i++) {
			if (plan.src_file[i] != f)
				continue;
			if (st_tensor_load(plan.src[i], pt->items[i].t, err))
				goto close_files;
			st_tensor_release(&sf[f], plan.src[i]);
		}
		st_close(&sf[f]);
	}
	rc = 0;
close_files:
	for (int f = 0; f < opened; f++)
		st_close(&sf[f]);
	hug_free(sf);
	hug_free(plan.src);
	hug_free(plan.src_file);
	hf_weight_files_free(&wf);
	return rc;
}
