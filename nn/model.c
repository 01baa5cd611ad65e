/* model.c: the model interface over the family tables: choosing a family
 * (recipe model.arch, config.json model_type / architectures), configs,
 * and struct model's calls, which dispatch to the family. */
#include "model.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "../base/panic.h"
#include "hf_json.h"

/* ------------------------------------------------------------ families */

const struct model_family *model_family_find(const char *name)
{
	for (int i = 0; model_families[i]; i++)
		if (!strcmp(model_families[i]->name, name))
			return model_families[i];
	return NULL;
}

const char *model_family_names(char *buf, size_t n)
{
	size_t off = 0;
	buf[0] = '\0';
	for (int i = 0; model_families[i] && off < n; i++)
		off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? ", " : "",
					model_families[i]->name);
	return buf;
}

static bool listed(const char *const *list, const char *s)
{
	for (int i = 0; list && list[i]; i++)
		if (!strcmp(list[i], s))
			return true;
	return false;
}

/* Every value of one list field of every family, quoted and joined by
 * " or ": "\"bloom\"" (for messages). */
static void known_values(bool architectures, char *buf, size_t n)
{
	size_t off = 0;
	buf[0] = '\0';
	for (int i = 0; model_families[i]; i++) {
		const char *const *l = architectures ? model_families[i]->architectures
						     : model_families[i]->model_types;
		for (int k = 0; l && l[k] && off < n; k++)
			off += (size_t)snprintf(buf + off, n - off, "%s\"%s\"", off ? " or " : "",
						l[k]);
	}
}

/* The family listing string `it` in model_types (or architectures), or an
 * error naming the file, the key and what is known. */
static int family_by(const char *file, const char *key, const cJSON *it, bool architectures,
		     const struct model_family **out, struct hug_error *err)
{
	char got[96], known[512], names[256];
	for (int i = 0; cJSON_IsString(it) && model_families[i]; i++)
		if (listed(architectures ? model_families[i]->architectures
					 : model_families[i]->model_types, it->valuestring)) {
			*out = model_families[i];
			return 0;
		}
	known_values(architectures, known, sizeof(known));
	return hug_error_set(err, "%s: %s: expected %s, got %s (hug knows the model families: %s)",
			     file, key, known, hug_json_text(it, got, sizeof(got)),
			     model_family_names(names, sizeof(names)));
}

int model_family_of_json(const char *file, const struct cJSON *root,
			 const struct model_family **out, struct hug_error *err)
{
	const cJSON *type, *arch;
	const struct model_family *by_type = NULL, *by_arch = NULL;
	const struct json_at at = { file, NULL };
	if (hug_json_member(&at, root, "model_type", &type, err) ||
	    hug_json_member(&at, root, "architectures", &arch, err))
		return -1;
	if (type && family_by(file, "model_type", type, false, &by_type, err))
		return -1;
	if (arch && !cJSON_IsNull(arch)) {
		if (!cJSON_IsArray(arch) || cJSON_GetArraySize(arch) < 1)
			return hug_error_set(err, "%s: architectures: expected a list of class names "
					     "such as [\"%s\"], got %s", file,
					     model_families[0]->architectures[0],
					     cJSON_IsArray(arch) ? "an empty list" : hug_json_kind(arch));
		if (family_by(file, "architectures[0]", cJSON_GetArrayItem(arch, 0), true,
			      &by_arch, err))
			return -1;
	}
	if (by_type && by_arch && by_type != by_arch)
		return hug_error_set(err, "%s: model_type \"%s\" and architectures \"%s\" name "
				     "different model families (%s, %s)", file, type->valuestring,
				     cJSON_GetArrayItem(arch, 0)->valuestring, by_type->name,
				     by_arch->name);
	*out = by_type ? by_type : by_arch ? by_arch : model_families[0];
	return 0;
}

/* -------------------------------------------------------------- configs */

void model_config_make(struct model_config *cfg, const struct model_family *f,
		       const struct model_sizes *s)
{
	f->config_make(cfg, s);
}

int model_config_set(struct model_config *cfg, const char *key, double v)
{
	return cfg->family->config_set(cfg, key, v);
}

int model_config_preset(const char *name, struct model_config *cfg)
{
	for (int i = 0; model_families[i]; i++)
		if (model_families[i]->config_preset(name, cfg) == 0)
			return 0;
	return -1;
}

int model_config_validate(const struct model_config *cfg, const char *what,
			  struct hug_error *err)
{
	return cfg->family->config_validate(cfg, what, err);
}

int model_config_read(const char *path, struct model_config *cfg, struct hug_error *err)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return hug_error_set(err, "%s: cannot open: %s", path, strerror(errno));
	char *file = S_ISDIR(st.st_mode) ? fs_join(path, HF_CONFIG_FILE) : hug_strdup(path);
	cJSON *root;
	int rc = -1;
	if (S_ISDIR(st.st_mode) && !fs_exists(file)) {
		hug_error_set(err, "%s: no %s (is this a Hugging Face model directory?)",
			      path, HF_CONFIG_FILE);
		goto free_file;
	}
	if (hug_json_read_object(file, HF_JSON_FILE_MAX, NULL, &root, err))
		goto free_file;
	const struct model_family *f;
	struct model_config c;
	rc = model_family_of_json(file, root, &f, err);
	if (rc == 0)
		rc = f->config_from_json(&c, file, root, err);
	if (rc == 0)
		*cfg = c;
	cJSON_Delete(root);
free_file:
	hug_free(file);
	return rc;
}

int model_config_write(const struct model_config *cfg, enum dtype weights_dtype,
		       const char *dir, struct hug_error *err)
{
	return cfg->family->config_write(cfg, weights_dtype, dir, err);
}

void model_config_print(const struct model_config *cfg, FILE *out)
{
	cfg->family->config_print(cfg, out);
}

int model_config_tp_validate(const struct model_config *cfg, int size, struct hug_error *err)
{
	return cfg->family->tp_validate(cfg, size, err);
}

int64_t model_config_param_count(const struct model_config *cfg)
{
	return cfg->family->param_count(cfg);
}

double model_config_flops_per_token(const struct model_config *cfg, int64_t seq_len)
{
	return cfg->family->flops_per_token(cfg, seq_len);
}

int model_config_n_linear(const struct model_config *cfg)
{
	return cfg->family->n_linear;
}

void model_config_linear(const struct model_config *cfg, int layer, int kind,
			 struct model_linear *out)
{
	cfg->family->linear(cfg, NULL, layer, kind, out);
}

/* --------------------------------------------------------------- models */

void model_wrap(struct model *m, const struct model_family *f, void *impl)
{
	*m = (struct model){ .family = f, .impl = impl, .owned = false };
}

void model_init_in(struct model *m, const struct model_config *cfg, enum dtype dt,
		   bool trainable, const struct model_tp *tp,
		   const struct arena_allocator *allocator)
{
	HUG_ASSERT(m->impl && m->family == cfg->family);
	cfg->family->init(m->impl, cfg, dt, trainable, tp, allocator);
}

void model_init(struct model *m, const struct model_config *cfg, enum dtype dt,
		bool trainable, const struct model_tp *tp,
		const struct arena_allocator *allocator)
{
	*m = (struct model){ .family = cfg->family, .owned = true,
			     .impl = hug_calloc(1, cfg->family->impl_size) };
	model_init_in(m, cfg, dt, trainable, tp, allocator);
}

void model_free(struct model *m)
{
	if (!m->family)
		return;
	m->family->free(m->impl);
	if (m->owned)
		hug_free(m->impl);
	memset(m, 0, sizeof(*m));
}

void model_init_weights(struct model *m, uint64_t seed)
{
	m->family->init_weights(m->impl, seed);
}

struct model_parts model_parts(const struct model *m)
{
	struct model_parts p;
	m->family->parts(m->impl, &p);
	return p;
}

struct param_table *model_params(const struct model *m)
{
	return model_parts(m).table;
}

void model_config_of(const struct model *m, struct model_config *out)
{
	m->family->config_of(m->impl, out);
}

struct model_dims model_dims(const struct model *m)
{
	struct model_config c;
	model_config_of(m, &c);
	return c.dims;
}

void model_take_settings(struct model *m, const struct model_config *cfg)
{
	HUG_ASSERT(cfg->family == m->family);
	m->family->take_settings(m->impl, cfg);
}

void model_to_device(struct model *dst, const struct model *src,
		     const struct arena_allocator *allocator, bool trainable)
{
	*dst = (struct model){ .family = src->family, .owned = true,
			       .impl = hug_calloc(1, src->family->impl_size) };
	src->family->to_device(dst->impl, src->impl, allocator, trainable);
}

void model_copy_weights(struct model *dst, const struct model *src)
{
	HUG_ASSERT(dst->family == src->family);
	src->family->copy_weights(dst->impl, src->impl);
}

bool model_cast(struct ag_ctx *ctx, const struct model *m, enum dtype dt, struct model *view)
{
	if (!view->impl) /* a view holds no memory of its own but its struct */
		*view = (struct model){ .family = m->family,
					.impl = hug_calloc(1, m->family->impl_size) };
	HUG_ASSERT(view->family == m->family);
	return m->family->cast(ctx, m->impl, dt, view->impl);
}

void model_view_free(struct model *view)
{
	hug_free(view->impl);
	memset(view, 0, sizeof(*view));
}

struct tensor *model_forward(struct ag_ctx *ctx, const struct model *m, struct tensor *ids,
			     struct tensor *mask)
{
	const struct model_batch b = { .ids = ids, .mask = mask };
	return model_forward_batch(ctx, m, &b);
}

struct tensor *model_forward_batch(struct ag_ctx *ctx, const struct model *m,
				   const struct model_batch *b)
{
	if (!ctx->err.set && model_parts(m).tp.stage.layer_hi > 0) {
		hug_error_set(&ctx->err, "model_forward: the model holds one pipeline stage "
			      "(blocks [%d, %d)); run model_forward_stage",
			      model_parts(m).tp.stage.layer_lo, model_parts(m).tp.stage.layer_hi);
		return NULL;
	}
	return m->family->forward(ctx, m->impl, b);
}

struct tensor *model_forward_stage(struct ag_ctx *ctx, const struct model *m,
				   const struct model_stage *stage, struct tensor *ids,
				   struct tensor *mask, struct tensor *hidden)
{
	int n = model_dims(m).n_layer;
	struct model_stage own = model_parts(m).tp.stage;
	if (ctx->err.set)
		return NULL;
	if (own.layer_hi > 0 && (own.layer_lo != stage->layer_lo || own.layer_hi != stage->layer_hi ||
				 own.embed != stage->embed || own.head != stage->head)) {
		hug_error_set(&ctx->err, "model_forward_stage: the model holds blocks [%d, %d) "
			      "only, asked for [%d, %d)", own.layer_lo, own.layer_hi,
			      stage->layer_lo, stage->layer_hi);
		return NULL;
	}
	if (stage->layer_lo < 0 || stage->layer_hi > n || stage->layer_lo > stage->layer_hi ||
	    (!stage->embed && !hidden)) {
		hug_error_set(&ctx->err, "model_forward_stage: layers [%d, %d) of %d, embed %d, "
			      "hidden %s: expected a range inside the model and a hidden input "
			      "for a stage without the embedding", stage->layer_lo,
			      stage->layer_hi, n, stage->embed, hidden ? "given" : "NULL");
		return NULL;
	}
	return m->family->forward_stage(ctx, m->impl, stage, ids, mask, hidden);
}

struct tensor *model_loss(struct ag_ctx *ctx, const struct model *m, struct tensor *logits,
			  struct tensor *targets)
{
	return m->family->loss(ctx, m->impl, logits, targets);
}

void model_vocab_slice(const struct model *m, int64_t *offset, int64_t *len)
{
	m->family->vocab_slice(m->impl, offset, len);
}

struct model_kv *model_kv_new(const struct model *m, int64_t batch, int64_t max_len)
{
	return m->family->kv_new(m->impl, batch, max_len);
}

void model_kv_free(const struct model *m, struct model_kv *kv)
{
	m->family->kv_free(kv);
}

struct tensor *model_forward_cached(struct ag_ctx *ctx, const struct model *m,
				    struct model_kv *kv, struct tensor *ids, struct tensor *mask)
{
	return m->family->forward_cached(ctx, m->impl, kv, ids, mask);
}

void model_linear(const struct model *m, int layer, int kind, struct model_linear *out)
{
	struct model_config c;
	model_config_of(m, &c);
	m->family->linear(&c, m->impl, layer, kind, out);
}

struct tensor *model_lm_loss(struct ag_ctx *ctx, struct tensor *logits, struct tensor *labels)
{
	char d0[64], d1[64];
	if (ctx->err.set)
		return NULL;
	if (!logits || !labels || logits->ndim != 3 || labels->ndim != 2 ||
	    labels->shape[0] != logits->shape[0] || labels->shape[1] != logits->shape[1] ||
	    logits->shape[1] < 2) {
		hug_error_set(&ctx->err, "lm_loss: logits must be (B, T, V) and labels "
			      "(B, T) with T >= 2: logits is %s, labels is %s",
			      logits ? tensor_describe(logits, d0, sizeof(d0)) : "NULL",
			      labels ? tensor_describe(labels, d1, sizeof(d1)) : "NULL");
		return NULL;
	}
	int64_t t = logits->shape[1];
	struct tensor *pred = ag_slice(ctx, logits, 1, 0, t - 1);   /* (B, T-1, V) */
	struct tensor *next = ag_slice(ctx, labels, 1, 1, t - 1);   /* (B, T-1) */
	return ag_cross_entropy(ctx, pred, next, -100);
}
