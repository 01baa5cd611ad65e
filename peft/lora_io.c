/* lora_io.c: adapter directories in PEFT's layout: saving, loading, and
 * checking an adapter file against the base model it is loaded into. */
#include "lora_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../io/dir_checksums.h"
#include "../io/safetensors.h"

#define PEFT_PREFIX "base_model.model."

bool lora_dir_has_adapter(const char *dir)
{
	return fs_exists_in(dir, LORA_CONFIG_FILE);
}

int lora_save(const struct lora_model *lm, const char *dir, enum dtype disk,
	      struct hug_error *err)
{
	struct st_writer *w = st_writer_new();
	for (int i = 0; i < lm->table.n; i++)
		st_writer_add(w, lm->table.items[i].name, lm->table.items[i].t, disk);
	char *wpath = fs_join(dir, LORA_WEIGHTS_FILE), *cpath = fs_join(dir, LORA_CONFIG_FILE);
	char **names;
	int n = lora_model_target_names(lm, &names);
	/* the config last: a directory with it is complete */
	int rc = st_writer_write(w, wpath, err) ||
		 lora_config_write(&lm->cfg, names, n, cpath, err) ? -1 : 0;
	lora_names_free(names, n);
	st_writer_free(w);
	hug_free(wpath);
	hug_free(cpath);
	return rc;
}

/* The name a file key stands for: as it is, or with the family's optional
 * prefix ("transformer.") restored after PEFT's prefix (adapters of a
 * headless model, such as BloomModel, whose keys start with the blocks). */
static void canonical(const struct model_family *f, const char *key, char *buf, size_t n)
{
	const char *opt = f->hf_names.optional_prefix ? f->hf_names.optional_prefix : "";
	size_t p = strlen(PEFT_PREFIX);
	char block[96];
	/* the headless form of a block's module: PEFT_PREFIX + the block
	 * prefix without the optional prefix ("h.") */
	snprintf(block, sizeof(block), "%s%s", PEFT_PREFIX,
		 f->hf_names.block_prefix + strlen(opt));
	if (*opt && !strncmp(key, block, strlen(block)))
		snprintf(buf, n, "%.*s%s%s", (int)p, key, opt, key + p);
	else
		snprintf(buf, n, "%s", key);
}

/* Why a file tensor belongs to no adapter of lm: an error naming it. */
static int explain_unexpected(const struct lora_model *lm, const char *file,
			      const char *key, const char *name, struct hug_error *err)
{
	const struct model_family *f = lm->base.family;
	char pre[96], known[256] = "";
	snprintf(pre, sizeof(pre), "%s%s", PEFT_PREFIX, f->hf_names.block_prefix);
	int n_layer = model_dims(&lm->base).n_layer;
	if (strncmp(name, pre, strlen(pre)) || !strstr(name, ".lora_"))
		return hug_error_set(err, "%s: %s: not a LoRA tensor of a %s block (keys look "
				     "like %s%s.lora_A.weight)",
				     file, key, f->display, pre, f->linears[0].path);
	char *end;
	long layer = strtol(name + strlen(pre), &end, 10);
	if (*end == '.' && layer >= n_layer)
		return hug_error_set(err, "%s: %s: the base model has no layer %ld (it has %d): "
				     "this adapter was made for another base model", file, key,
				     layer, n_layer);
	for (int k = 0; *end == '.' && k < f->n_linear; k++) {
		const char *path = f->linears[k].path;
		if (!strncmp(end + 1, path, strlen(path)) && end[1 + strlen(path)] == '.')
			return hug_error_set(err, "%s: %s: adapter_config.json's target_modules do "
					     "not select this module (the two files disagree)",
					     file, key);
	}
	for (int k = 0; k < f->n_linear; k++) {
		size_t used = strlen(known);
		snprintf(known + used, sizeof(known) - used, "%s%s", k ? ", " : "",
			 f->linears[k].module);
	}
	return hug_error_set(err, "%s: %s: not an adapter of a linear layer hug knows "
			     "(%s)", file, key, known);
}

/* Maps every tensor of f to lm's parameter index (found[i]); errors for
 * tensors of no parameter and parameters given twice. */
static int match_tensors(const struct lora_model *lm, const struct st_file *f,
			 const struct st_tensor **found, struct hug_error *err)
{
	char name[PARAM_NAME_MAX + 32];
	for (int i = 0; i < f->n; i++) {
		const struct st_tensor *t = &f->tensors[i];
		canonical(lm->base.family, t->name, name, sizeof(name));
		int p = -1;
		for (int j = 0; j < lm->table.n && p < 0; j++)
			if (!strcmp(lm->table.items[j].name, name))
				p = j;
		if (p < 0)
			return explain_unexpected(lm, f->path, t->name, name, err);
		if (found[p])
			return hug_error_set(err, "%s: %s given twice (as %s and %s)", f->path,
					     name, found[p]->name, t->name);
		found[p] = t;
	}
	return 0;
}

/* The shape check of one tensor, with the reason when it fails. */
static int check_shape(const struct lora_model *lm, const struct st_file *f,
		       const struct st_tensor *t, const struct tensor *want,
		       struct hug_error *err)
{
	if (t->dtype != DT_F32 && t->dtype != DT_F64 && t->dtype != DT_BF16 && t->dtype != DT_F16)
		return hug_error_set(err, "%s: %s: dtype %s, expected a float dtype (F32, BF16, "
				     "F16, F64)", f->path, t->name, st_dtype_name(t->dtype));
	bool same = t->ndim == 2 && t->shape[0] == want->shape[0] &&
		    t->shape[1] == want->shape[1];
	if (same)
		return 0;
	char got[64], exp[64];
	st_tensor_describe(t, got, sizeof(got));
	snprintf(exp, sizeof(exp), "[%lld, %lld]", (long long)want->shape[0],
		 (long long)want->shape[1]);
	bool is_a = strstr(t->name, ".lora_A.") != NULL;
	bool rank = t->ndim == 2 && (is_a ? t->shape[0] : t->shape[1]) != lm->cfg.r;
	if (rank)
		return hug_error_set(err, "%s: %s: shape %s, expected %s: its rank differs from "
				     "r = %d in adapter_config.json", f->path, t->name, got, exp,
				     lm->cfg.r);
	return hug_error_set(err, "%s: %s: shape %s, but the base model (hidden_size %lld) "
			     "needs %s: this adapter was made for another base model", f->path,
			     t->name, got, (long long)model_dims(&lm->base).hidden_size, exp);
}

static int check_all(const struct lora_model *lm, const struct st_file *f,
		     const struct st_tensor **found, struct hug_error *err)
{
	if (match_tensors(lm, f, found, err))
		return -1;
	for (int i = 0; i < lm->table.n; i++) {
		const struct param *p = &lm->table.items[i];
		if (!found[i])
			return hug_error_set(err, "%s: no tensor %s (adapter_config.json selects "
					     "that module)", f->path, p->name);
		if (check_shape(lm, f, found[i], p->t, err))
			return -1;
	}
	return 0;
}

int lora_load_weights(struct lora_model *lm, const char *dir, struct hug_error *err)
{
	struct st_file f;
	if (st_open_in(&f, dir, LORA_WEIGHTS_FILE, err))
		return -1;
	const struct st_tensor **found = hug_calloc((size_t)lm->table.n + 1, sizeof(*found));
	int rc = check_all(lm, &f, found, err);
	for (int i = 0; !rc && i < lm->table.n; i++)
		rc = st_tensor_load(found[i], lm->table.items[i].t, err);
	hug_free(found);
	st_close(&f);
	return rc;
}

int lora_load(struct lora_model *lm, const struct model *base, const char *dir,
	      bool trainable, struct hug_error *err)
{
	memset(lm, 0, sizeof(*lm));
	struct lora_config cfg;
	char *path = fs_join(dir, LORA_CONFIG_FILE);
	size_t n = strlen(path) + 3;
	char *what = hug_malloc(n);
	snprintf(what, n, "%s: ", path);
	/* an adapter checkpoint hug wrote carries checksums */
	int rc = dir_checksums_check(dir, NULL, err) || lora_config_read(path, &cfg, err) ? -1 : 0;
	if (!rc) {
		rc = lora_model_init(lm, base, &cfg, trainable, what, err);
		lora_config_free(&cfg);
	}
	if (!rc && (rc = lora_load_weights(lm, dir, err)))
		lora_model_free(lm);
	hug_free(what);
	hug_free(path);
	return rc;
}
