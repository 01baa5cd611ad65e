/* recipe.c: recipe parsing: --set overrides, unknown-key and type checks
 * against the key table (recipe_schema.c), filling struct recipe, and the
 * checks that span keys (batch divisibility, seq_len, files). */
#include "recipe.h"

#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "../io/hf_checkpoint.h"
#include "../peft/lora_config.h"
#include "recipe_schema.h"

struct rparse {
	const char *name;     /* file name for messages */
	cJSON *root;
	struct hug_error *err;
};

/* The JSON node at a dotted path, or NULL when absent. */
static cJSON *node_at(cJSON *root, const char *path)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	cJSON *n = root;
	for (char *save = NULL, *seg = strtok_r(buf, ".", &save); seg && n;
	     seg = strtok_r(NULL, ".", &save))
		n = cJSON_IsObject(n) ? cJSON_GetObjectItemCaseSensitive(n, seg) : NULL;
	return n;
}

static int fail(struct rparse *rp, const char *path, const char *fmt, const char *got)
{
	return hug_error_set(rp->err, "%s: %s: %s%s%s", rp->name, path, fmt,
			     got ? ", got " : "", got ? got : "");
}

/* Checks a value against its key's type and bounds. */
static int check_value(struct rparse *rp, const struct rkey *k, const cJSON *v)
{
	char want[160];
	if (cJSON_IsNull(v)) {
		if (k->nullable)
			return 0;
		snprintf(want, sizeof(want), "expected %s, not null", rkey_type_name(k->type));
		return fail(rp, k->path, want, NULL);
	}
	bool ok = true;
	switch (k->type) {
	case RK_OBJECT: ok = cJSON_IsObject(v); break;
	case RK_INT: ok = cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
			  v->valuedouble == floor(v->valuedouble); break;
	case RK_NUMBER: ok = cJSON_IsNumber(v) && isfinite(v->valuedouble); break;
	case RK_STRING: ok = cJSON_IsString(v) && v->valuestring[0]; break;
	case RK_BOOL: ok = cJSON_IsBool(v); break;
	case RK_ENUM: {
		ok = cJSON_IsString(v);
		if (ok) {
			char opts[128];
			snprintf(opts, sizeof(opts), "|%s|", k->choices);
			char key[96];
			snprintf(key, sizeof(key), "|%s|", v->valuestring);
			ok = strstr(opts, key) != NULL;
		}
		break;
	}
	case RK_NUMBERS: case RK_STRINGS: case RK_SOURCES: {
		ok = cJSON_IsArray(v);
		const cJSON *e;
		cJSON_ArrayForEach(e, v) {
			if (k->type == RK_NUMBERS && !cJSON_IsNumber(e))
				ok = false;
			if (k->type == RK_STRINGS && !cJSON_IsString(e))
				ok = false;
			if (k->type == RK_SOURCES && !cJSON_IsObject(e))
				ok = false;
		}
		break;
	}
	}
	char got[64];
	hug_json_text(v, got, sizeof(got));
	int rc = 0;
	if (!ok) {
		if (k->type == RK_ENUM)
			snprintf(want, sizeof(want), "expected one of \"%s\"", k->choices);
		else
			snprintf(want, sizeof(want), "expected %s", rkey_type_name(k->type));
		rc = fail(rp, k->path, want, got);
	} else if (k->type == RK_INT || k->type == RK_NUMBER) {
		/* an integer is range-checked as a double before any cast: it
		 * must fit the schema's bounds and be exact in a double (so
		 * within int64 too) */
		double d = v->valuedouble, hi = k->hi;
		if (k->type == RK_INT && hi > RECIPE_INT_MAX)
			hi = RECIPE_INT_MAX;
		bool below = k->lo_open ? d <= k->lo : d < k->lo;
		if (below || d > hi) {
			if (hi < 1e299)
				snprintf(want, sizeof(want), "expected %s in %s%.17g, %.17g]",
					 rkey_type_name(k->type), k->lo_open ? "(" : "[", k->lo, hi);
			else
				snprintf(want, sizeof(want), "expected %s %s %.17g",
					 rkey_type_name(k->type), k->lo_open ? ">" : ">=", k->lo);
			rc = fail(rp, k->path, want, got);
		}
	}
	return rc;
}

/* Walks the tree: every member must be a known key of a valid type. */
static int check_tree(struct rparse *rp, const cJSON *obj, const char *prefix)
{
	const cJSON *m;
	cJSON_ArrayForEach(m, obj) {
		char path[256];
		snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", m->string);
		for (const cJSON *o = obj->child; o != m; o = o->next)
			if (!strcmp(o->string, m->string))
				return hug_error_set(rp->err, "%s: %s: given twice", rp->name, path);
		const struct rkey *k = rkey_find(path);
		if (!k) {
			const struct rkey *near = rkey_suggest(path);
			if (near)
				return hug_error_set(rp->err, "%s: %s: unknown key (did you mean \"%s\"?)",
						     rp->name, path, near->path);
			return hug_error_set(rp->err, "%s: %s: unknown key (docs/recipes.md lists them)",
					     rp->name, path);
		}
		if (check_value(rp, k, m))
			return -1;
		if (k->type == RK_OBJECT && cJSON_IsObject(m) && check_tree(rp, m, path))
			return -1;
	}
	return 0;
}

/* The value at `path`, or the key's default (parsed into `scratch`). */
static const cJSON *value(struct rparse *rp, const char *path, cJSON **scratch)
{
	const cJSON *v = node_at(rp->root, path);
	if (v)
		return v;
	const struct rkey *k = rkey_find(path);
	if (!k || !k->def)
		return NULL;
	cJSON_Delete(*scratch);
	*scratch = cJSON_Parse(k->def);
	return *scratch;
}

static int need(struct rparse *rp, const char *path, const cJSON *v)
{
	if (v)
		return 0;
	return hug_error_set(rp->err, "%s: %s: required key is missing", rp->name, path);
}

/* The number (num) or boolean (flag) at path; the schema has checked its
 * type. 0 or -1 when it is missing. */
static int get_scalar(struct rparse *rp, const char *path, double *num, bool *flag)
{
	cJSON *scratch = NULL;
	const cJSON *v = value(rp, path, &scratch);
	int rc = need(rp, path, v);
	if (!rc && num)
		*num = v->valuedouble;
	if (!rc && flag)
		*flag = cJSON_IsTrue(v);
	cJSON_Delete(scratch);
	return rc;
}

static int get_num(struct rparse *rp, const char *path, double *out)
{
	return get_scalar(rp, path, out, NULL);
}

static int get_i64(struct rparse *rp, const char *path, int64_t *out)
{
	double d = 0;
	if (get_num(rp, path, &d))
		return -1;
	*out = (int64_t)d;
	return 0;
}

static int get_int(struct rparse *rp, const char *path, int *out)
{
	double d = 0;
	if (get_num(rp, path, &d))
		return -1;
	*out = (int)d;
	return 0;
}

static int get_bool(struct rparse *rp, const char *path, bool *out)
{
	return get_scalar(rp, path, NULL, out);
}

/* A copy of the string at path (NULL when null/absent and allowed). */
static int get_str(struct rparse *rp, const char *path, char **out)
{
	cJSON *scratch = NULL;
	const cJSON *v = value(rp, path, &scratch);
	int rc = need(rp, path, v);
	*out = !rc && cJSON_IsString(v) ? hug_strdup(v->valuestring) : NULL;
	cJSON_Delete(scratch);
	return rc;
}

static bool present(struct rparse *rp, const char *path)
{
	const cJSON *v = node_at(rp->root, path);
	return v && !cJSON_IsNull(v);
}

static int get_strings(struct rparse *rp, const char *path, char ***out, int *n)
{
	cJSON *scratch = NULL;
	const cJSON *v = value(rp, path, &scratch);
	*out = NULL;
	*n = 0;
	if (v && cJSON_IsArray(v)) {
		*out = hug_calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(char *));
		const cJSON *e;
		cJSON_ArrayForEach(e, v)
			(*out)[(*n)++] = hug_strdup(e->valuestring);
	}
	cJSON_Delete(scratch);
	return 0;
}

/* An array of whole numbers at path (NULL, 0 when null/absent); the
 * schema has checked the elements are numbers in range. */
static int get_ints(struct rparse *rp, const char *path, int **out, int *n)
{
	cJSON *scratch = NULL;
	const cJSON *v = value(rp, path, &scratch);
	int rc = 0;
	*out = NULL;
	*n = 0;
	if (v && cJSON_IsArray(v)) {
		*out = hug_calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(int));
		const cJSON *e;
		cJSON_ArrayForEach(e, v) {
			double d = e->valuedouble;
			bool whole = d >= 1 && d <= 1e6 && d == floor(d);
			if (!whole && !rc)
				rc = hug_error_set(rp->err, "%s: %s: expected whole numbers in [1, "
						   "1000000], got %g", rp->name, path, d);
			(*out)[(*n)++] = whole ? (int)d : 0;
		}
	}
	cJSON_Delete(scratch);
	return rc;
}

static void free_strings(char **s, int n)
{
	for (int i = 0; i < n; i++)
		hug_free(s[i]);
	hug_free(s);
}

/* data.train / data.valid: [{path, weight}], each glob matching files. */
static int get_sources(struct rparse *rp, const char *path, bool weighted,
		       struct recipe_source **out, int *n)
{
	*out = NULL;
	*n = 0;
	const cJSON *v = node_at(rp->root, path);
	if (!v || cJSON_IsNull(v))
		return weighted ? need(rp, path, NULL) : 0;
	int count = cJSON_GetArraySize(v);
	if (count == 0)
		return hug_error_set(rp->err, "%s: %s: expected at least one source", rp->name, path);
	*out = hug_calloc((size_t)count, sizeof(**out));
	for (int i = 0; i < count; i++) {
		const cJSON *e = cJSON_GetArrayItem(v, i), *m;
		cJSON_ArrayForEach(m, e)
			if (strcmp(m->string, "path") && (strcmp(m->string, "weight") || !weighted))
				return hug_error_set(rp->err, "%s: %s[%d].%s: unknown key (a source has "
						     "\"path\"%s)", rp->name, path, i, m->string,
						     weighted ? " and \"weight\"" : "");
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "path");
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(e, "weight");
		if (!cJSON_IsString(p) || !p->valuestring[0])
			return hug_error_set(rp->err, "%s: %s[%d].path: expected a file or glob string",
					     rp->name, path, i);
		if (w && (!cJSON_IsNumber(w) || !(w->valuedouble > 0)))
			return hug_error_set(rp->err, "%s: %s[%d].weight: expected a number > 0",
					     rp->name, path, i);
		(*out)[i].path = hug_strdup(p->valuestring);
		(*out)[i].weight = w ? w->valuedouble : 1.0;
		(*n)++;
		glob_t g;
		int grc = glob(p->valuestring, 0, NULL, &g);
		size_t matched = grc == 0 ? g.gl_pathc : 0;
		if (grc == 0)
			globfree(&g);
		if (matched == 0)
			return hug_error_set(rp->err, "%s: %s[%d].path: \"%s\" matches no files",
					     rp->name, path, i, p->valuestring);
	}
	return 0;
}

/* The model family of recipe key model.arch (absent: the default). */
static int parse_arch(struct rparse *rp, const struct model_family **f)
{
	char *arch = NULL, names[256];
	*f = model_families[0];
	if (!present(rp, "model.arch"))
		return 0;
	if (get_str(rp, "model.arch", &arch))
		return -1;
	*f = model_family_find(arch);
	int rc = 0;
	if (!*f)
		rc = hug_error_set(rp->err, "%s: model.arch: expected one of the model families "
				   "hug knows (%s), got \"%s\"", rp->name,
				   model_family_names(names, sizeof(names)), arch);
	hug_free(arch);
	return rc;
}

/* The family settings a recipe may give for a model trained from scratch,
 * under "model.<config.json key>" (defaults from the schema). */
static int parse_settings(struct rparse *rp, struct model_config *cfg)
{
	static const char *const nums[] = { "layer_norm_epsilon", "initializer_range",
					    "bos_token_id", "eos_token_id", "pad_token_id" };
	static const char *const bools[] = { "apply_residual_connection_post_layernorm" };
	char path[96];
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		double v;
		snprintf(path, sizeof(path), "model.%s", nums[i]);
		if (get_num(rp, path, &v))
			return -1;
		if (model_config_set(cfg, nums[i], v) && present(rp, path))
			return hug_error_set(rp->err, "%s: %s: not a setting of model.arch \"%s\"",
					     rp->name, path, cfg->family->name);
	}
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		bool b;
		snprintf(path, sizeof(path), "model.%s", bools[i]);
		if (get_bool(rp, path, &b))
			return -1;
		if (model_config_set(cfg, bools[i], b) && present(rp, path))
			return hug_error_set(rp->err, "%s: %s: not a setting of model.arch \"%s\"",
					     rp->name, path, cfg->family->name);
	}
	/* settings without a default: given, or the family's default */
	static const char *const optional[] = { "intermediate_size", "num_key_value_heads",
						"head_dim", "rms_norm_eps", "rope_theta",
						"max_position_embeddings", "sliding_window" };
	static const char *const optional_bools[] = { "tie_word_embeddings", "attention_bias",
						      "mlp_bias" };
	for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]) +
			       sizeof(optional_bools) / sizeof(optional_bools[0]); i++) {
		size_t nn = sizeof(optional) / sizeof(optional[0]);
		const char *key = i < nn ? optional[i] : optional_bools[i - nn];
		double v;
		bool b;
		snprintf(path, sizeof(path), "model.%s", key);
		if (!present(rp, path))
			continue;
		if (i < nn ? get_num(rp, path, &v) : get_bool(rp, path, &b))
			return -1;
		if (model_config_set(cfg, key, i < nn ? v : b))
			return hug_error_set(rp->err, "%s: %s: not a setting of model.arch \"%s\"",
					     rp->name, path, cfg->family->name);
	}
	return 0;
}

static int parse_model(struct rparse *rp, struct recipe *r)
{
	const struct model_family *family;
	if (get_str(rp, "model.from_pretrained", &r->from_pretrained) ||
	    parse_arch(rp, &family))
		return -1;
	static const char *const sizes[] = { "model.vocab_size", "model.hidden_size",
					     "model.n_layer", "model.n_head" };
	if (r->from_pretrained) {
		for (int i = 0; i < 4; i++)
			if (present(rp, sizes[i]))
				return hug_error_set(rp->err, "%s: %s: not allowed with model.from_pretrained "
						     "(the size comes from %s/config.json)", rp->name,
						     sizes[i], r->from_pretrained);
		struct hug_error e2 = { 0 };
		if (model_config_read(r->from_pretrained, &r->model, &e2))
			return hug_error_set(rp->err, "%s: model.from_pretrained: %s", rp->name, e2.msg);
		if (present(rp, "model.arch") && r->model.family != family)
			return hug_error_set(rp->err, "%s: model.arch: \"%s\", but %s/config.json "
					     "holds a %s model", rp->name, family->name,
					     r->from_pretrained, r->model.family->name);
	} else {
		struct model_sizes s;
		if (get_i64(rp, sizes[0], &s.vocab_size) || get_i64(rp, sizes[1], &s.hidden_size) ||
		    get_int(rp, sizes[2], &s.n_layer) || get_int(rp, sizes[3], &s.n_head))
			return -1;
		model_config_make(&r->model, family, &s);
		if (parse_settings(rp, &r->model))
			return -1;
	}
	/* dropout may be set for a pretrained model too (fine-tuning) */
	static const char *const dropouts[] = { "hidden_dropout", "attention_dropout" };
	for (int i = 0; i < 2; i++) {
		char path[64];
		double v;
		snprintf(path, sizeof(path), "model.%s", dropouts[i]);
		if (!present(rp, path) && r->from_pretrained)
			continue;
		if (get_num(rp, path, &v))
			return -1;
		if (model_config_set(&r->model, dropouts[i], v) && present(rp, path))
			return hug_error_set(rp->err, "%s: %s: not a setting of model.arch \"%s\"",
					     rp->name, path, r->model.family->name);
	}
	if (get_i64(rp, "model.max_seq_len", &r->max_seq_len))
		return -1;
	return model_config_validate(&r->model, rp->name, rp->err);
}

static int parse_optim(struct rparse *rp, struct recipe *r)
{
	cJSON *scratch = NULL;
	const cJSON *name = value(rp, "optim.name", &scratch);
	r->optim.kind = !strcmp(name->valuestring, "sgd") ? OPTIM_SGD : OPTIM_ADAMW;
	cJSON_Delete(scratch);
	scratch = NULL;
	const cJSON *betas = value(rp, "optim.betas", &scratch);
	int nb = cJSON_GetArraySize(betas);
	double b1 = nb > 0 ? cJSON_GetArrayItem(betas, 0)->valuedouble : -1;
	double b2 = nb > 1 ? cJSON_GetArrayItem(betas, 1)->valuedouble : -1;
	cJSON_Delete(scratch);
	if (nb != 2 || !(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1))
		return hug_error_set(rp->err, "%s: optim.betas: expected [beta1, beta2] with each "
				     "in [0, 1)", rp->name);
	r->optim.beta1 = b1;
	r->optim.beta2 = b2;
	if (get_num(rp, "optim.eps", &r->optim.eps) ||
	    get_num(rp, "optim.weight_decay", &r->optim.weight_decay) ||
	    get_num(rp, "optim.momentum", &r->optim.momentum) ||
	    get_bool(rp, "optim.nesterov", &r->optim.nesterov) ||
	    get_num(rp, "optim.lr", &r->schedule.max_lr) ||
	    get_num(rp, "optim.grad_clip", &r->grad_clip))
		return -1;
	if (r->optim.nesterov && r->optim.momentum == 0)
		return hug_error_set(rp->err, "%s: optim.nesterov: needs optim.momentum > 0", rp->name);
	return get_strings(rp, "optim.no_decay", &r->no_decay, &r->n_no_decay);
}

static int parse_schedule(struct rparse *rp, struct recipe *r)
{
	cJSON *scratch = NULL;
	const cJSON *d = value(rp, "schedule.decay", &scratch);
	r->schedule.decay = !strcmp(d->valuestring, "cosine") ? LR_COSINE :
			    !strcmp(d->valuestring, "linear") ? LR_LINEAR : LR_CONSTANT;
	cJSON_Delete(scratch);
	if (get_i64(rp, "schedule.warmup_steps", &r->schedule.warmup_steps) ||
	    get_num(rp, "schedule.min_lr", &r->schedule.min_lr))
		return -1;
	r->schedule.decay_steps = r->steps;
	if (present(rp, "schedule.decay_steps") &&
	    get_i64(rp, "schedule.decay_steps", &r->schedule.decay_steps))
		return -1;
	if (r->schedule.min_lr > r->schedule.max_lr)
		return hug_error_set(rp->err, "%s: schedule.min_lr: %g is above optim.lr %g",
				     rp->name, r->schedule.min_lr, r->schedule.max_lr);
	if (r->schedule.decay != LR_CONSTANT && r->schedule.decay_steps <= r->schedule.warmup_steps)
		return hug_error_set(rp->err, "%s: schedule.decay_steps: %lld must exceed "
				     "schedule.warmup_steps %lld", rp->name,
				     (long long)r->schedule.decay_steps,
				     (long long)r->schedule.warmup_steps);
	r->rampup.final = r->global_batch_size;
	if (present(rp, "schedule.rampup")) {
		if (get_i64(rp, "schedule.rampup.start", &r->rampup.start) ||
		    get_i64(rp, "schedule.rampup.increment", &r->rampup.increment) ||
		    get_i64(rp, "schedule.rampup.samples", &r->rampup.ramp_samples))
			return -1;
		if (r->rampup.start >= r->global_batch_size ||
		    (r->global_batch_size - r->rampup.start) % r->rampup.increment)
			return hug_error_set(rp->err, "%s: schedule.rampup: start %lld must be below "
					     "batch.global_batch_size %lld and reach it in steps of "
					     "increment %lld", rp->name, (long long)r->rampup.start,
					     (long long)r->global_batch_size,
					     (long long)r->rampup.increment);
	}
	return 0;
}

static int parse_run(struct rparse *rp, struct recipe *r, int world)
{
	cJSON *scratch = NULL;
	const cJSON *dev = value(rp, "device", &scratch);
	r->device = !strcmp(dev->valuestring, "cuda") ? DEV_CUDA : DEV_CPU;
	cJSON_Delete(scratch);
	scratch = NULL;
	const cJSON *prec = value(rp, "precision", &scratch);
	r->precision = !strcmp(prec->valuestring, "bf16") ? PRECISION_BF16 : PRECISION_F32;
	cJSON_Delete(scratch);
	scratch = NULL;
	const cJSON *ac = value(rp, "train.activation_checkpointing", &scratch);
	r->recompute = !strcmp(ac->valuestring, "block")     ? AG_RECOMPUTE_BLOCK :
		       !strcmp(ac->valuestring, "selective") ? AG_RECOMPUTE_SELECTIVE :
							       AG_RECOMPUTE_NONE;
	cJSON_Delete(scratch);
	int64_t seed;
	if (get_i64(rp, "batch.micro_batch_size", &r->micro_batch_size) ||
	    get_i64(rp, "batch.global_batch_size", &r->global_batch_size) ||
	    get_int(rp, "parallel.tensor", &r->tensor_parallel) ||
	    get_int(rp, "parallel.zero", &r->zero) ||
	    get_int(rp, "parallel.pipeline", &r->pipeline_parallel) ||
	    get_ints(rp, "parallel.pipeline_layers", &r->pipeline_layers, &r->n_pipeline_layers) ||
	    get_i64(rp, "train.steps", &r->steps) ||
	    get_i64(rp, "train.log_every", &r->log_every) ||
	    get_i64(rp, "train.eval_every", &r->eval_every) ||
	    get_i64(rp, "train.eval_batches", &r->eval_batches) ||
	    get_i64(rp, "train.save_every", &r->save_every) ||
	    get_i64(rp, "train.keep_last", &r->keep_last) ||
	    get_str(rp, "train.out_dir", &r->out_dir) ||
	    get_i64(rp, "train.seed", &seed) ||
	    get_bool(rp, "train.skip_nonfinite", &r->skip_nonfinite) ||
	    get_bool(rp, "train.tensorboard", &r->tensorboard) ||
	    get_i64(rp, "train.max_skipped_steps", &r->max_skipped_steps) ||
	    get_i64(rp, "train.sample_tokens", &r->sample_tokens) ||
	    get_strings(rp, "train.sample_prompts", &r->sample_prompts, &r->n_sample_prompts))
		return -1;
	r->seed = (uint64_t)seed;
	if (present(rp, "train.peak_tflops") && get_num(rp, "train.peak_tflops", &r->peak_tflops))
		return -1;
	if (world % r->tensor_parallel)
		return hug_error_set(rp->err, "%s: parallel.tensor: %d does not divide the %d "
				     "processes", rp->name, r->tensor_parallel, world);
	if (world % (r->tensor_parallel * r->pipeline_parallel))
		return hug_error_set(rp->err, "%s: parallel.pipeline: %d stages x parallel.tensor "
				     "%d do not divide the %d processes", rp->name,
				     r->pipeline_parallel, r->tensor_parallel, world);
	if (r->pipeline_layers && r->n_pipeline_layers != r->pipeline_parallel)
		return hug_error_set(rp->err, "%s: parallel.pipeline_layers: %d entries, expected "
				     "one per stage (parallel.pipeline %d)", rp->name,
				     r->n_pipeline_layers, r->pipeline_parallel);
	int64_t dp = world / r->tensor_parallel / r->pipeline_parallel;
	if ((double)r->micro_batch_size * (double)dp > RECIPE_INT_MAX)
		return hug_error_set(rp->err, "%s: batch.micro_batch_size: %lld x %lld data-parallel "
				     "ranks is too large", rp->name, (long long)r->micro_batch_size,
				     (long long)dp);
	int64_t unit = r->micro_batch_size * dp;
	if (r->global_batch_size % unit)
		return hug_error_set(rp->err, "%s: batch.global_batch_size: %lld is not a multiple of "
				     "micro_batch_size %lld x %lld data-parallel ranks = %lld",
				     rp->name, (long long)r->global_batch_size,
				     (long long)r->micro_batch_size, (long long)dp, (long long)unit);
	r->accumulation = r->global_batch_size / unit;
	return 0;
}

/* The tokenizer of the end-of-run samples: data.tokenizer, else the one in
 * the model.from_pretrained directory; none leaves it NULL (hug train then
 * says where it looked instead of printing samples). */
static int sample_tokenizer(struct recipe *r)
{
	if (r->sample_tokens == 0 || r->n_sample_prompts == 0)
		return 0;
	if (r->tokenizer) {
		r->sample_tokenizer = hug_strdup(r->tokenizer);
		return 0;
	}
	char *own = r->from_pretrained ? fs_join(r->from_pretrained, "tokenizer.json") : NULL;
	if (own && fs_exists(own))
		r->sample_tokenizer = own;
	else
		hug_free(own);
	return 0;
}

static int parse_data(struct rparse *rp, struct recipe *r)
{
	if (get_i64(rp, "data.seq_len", &r->seq_len) ||
	    get_num(rp, "data.valid_fraction", &r->valid_fraction) ||
	    get_str(rp, "data.tokenizer", &r->tokenizer))
		return -1;
	cJSON *scratch = NULL;
	const cJSON *packing = value(rp, "data.packing", &scratch);
	r->pack_documents = !strcmp(packing->valuestring, "document");
	cJSON_Delete(scratch);
	/* tokens per step and one micro-batch's logits must fit with room */
	double h = (double)r->model.dims.intermediate_size, v = (double)r->model.dims.vocab_size;
	double row = h > v ? h : v;
	if ((double)r->global_batch_size * (double)r->seq_len > RECIPE_INT_MAX ||
	    (double)r->micro_batch_size * (double)r->seq_len * row > RECIPE_INT_MAX)
		return hug_error_set(rp->err, "%s: batch.micro_batch_size %lld, "
				     "batch.global_batch_size %lld, data.seq_len %lld: too large "
				     "(a micro-batch's activations or a step's tokens overflow)",
				     rp->name, (long long)r->micro_batch_size,
				     (long long)r->global_batch_size, (long long)r->seq_len);
	if (r->seq_len > r->max_seq_len)
		return hug_error_set(rp->err, "%s: data.seq_len: %lld is longer than the model allows "
				     "(model.max_seq_len %lld)", rp->name, (long long)r->seq_len,
				     (long long)r->max_seq_len);
	struct stat st;
	if (r->tokenizer && stat(r->tokenizer, &st) != 0)
		return hug_error_set(rp->err, "%s: data.tokenizer: cannot open \"%s\": %s",
				     rp->name, r->tokenizer, strerror(errno));
	if (get_sources(rp, "data.train", true, &r->train, &r->n_train) ||
	    get_sources(rp, "data.valid", false, &r->valid, &r->n_valid))
		return -1;
	return sample_tokenizer(r);
}

void recipe_lora_config(const struct recipe *r, struct lora_config *lc)
{
	lora_config_init(lc);
	lc->r = r->peft.r;
	lc->alpha = r->peft.alpha;
	lc->dropout = r->peft.dropout;
	lc->rslora = r->peft.rslora;
	lora_config_set_targets(lc, (const char *const *)r->peft.target_modules,
				r->peft.n_targets);
	lora_config_set_base(lc, r->from_pretrained);
}

/* peft: the settings, and the adapters checked against the model's config
 * (the checks of lora_model_init, so the targets of a recipe that passes
 * exist; that LoRA needs model.from_pretrained is the trainer's check). */
static int parse_peft(struct rparse *rp, struct recipe *r)
{
	r->peft.enabled = present(rp, "peft");
	if (!r->peft.enabled)
		return 0;
	if (get_int(rp, "peft.r", &r->peft.r) || get_num(rp, "peft.alpha", &r->peft.alpha) ||
	    get_num(rp, "peft.dropout", &r->peft.dropout) ||
	    get_bool(rp, "peft.rslora", &r->peft.rslora) ||
	    get_strings(rp, "peft.target_modules", &r->peft.target_modules, &r->peft.n_targets))
		return -1;
	struct lora_config lc;
	char what[600];
	snprintf(what, sizeof(what), "%s: peft.", rp->name);
	recipe_lora_config(r, &lc);
	int rc = lora_config_check(&lc, &r->model, NULL, what, rp->err);
	lora_config_free(&lc);
	return rc;
}

/* Applies "a.b.c=value" to the tree. */
static int apply_override(struct rparse *rp, const char *ov)
{
	const char *eq = strchr(ov, '=');
	if (!eq || eq == ov)
		return hug_error_set(rp->err, "--set \"%s\": expected key.path=value", ov);
	char path[256];
	snprintf(path, sizeof(path), "%.*s", (int)(eq - ov), ov);
	cJSON *val = cJSON_Parse(eq + 1);
	if (!val)
		val = cJSON_CreateString(eq + 1);
	cJSON *obj = rp->root;
	char *save = NULL, *seg = strtok_r(path, ".", &save);
	while (seg) {
		char *next = strtok_r(NULL, ".", &save);
		if (!next) {
			if (cJSON_GetObjectItemCaseSensitive(obj, seg))
				cJSON_ReplaceItemInObjectCaseSensitive(obj, seg, val);
			else
				cJSON_AddItemToObject(obj, seg, val);
			return 0;
		}
		cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, seg);
		if (!child || cJSON_IsNull(child)) {
			child = cJSON_CreateObject();
			if (cJSON_GetObjectItemCaseSensitive(obj, seg))
				cJSON_ReplaceItemInObjectCaseSensitive(obj, seg, child);
			else
				cJSON_AddItemToObject(obj, seg, child);
		} else if (!cJSON_IsObject(child)) {
			cJSON_Delete(val);
			return hug_error_set(rp->err, "--set \"%s\": %s is not an object", ov, seg);
		}
		obj = child;
		seg = next;
	}
	cJSON_Delete(val);
	return 0;
}

int recipe_parse(const char *name, const char *text, const char *const *overrides,
		 int n_overrides, int world, struct recipe *r, struct hug_error *err)
{
	memset(r, 0, sizeof(*r));
	hug_json_init();
	struct rparse rp = { .name = name, .err = err };
	const char *where = NULL;
	rp.root = cJSON_ParseWithOpts(text, &where, 1);
	if (!rp.root || !cJSON_IsObject(rp.root)) {
		int line, col;
		hug_json_position(text, strlen(text), where ? (size_t)(where - text) : 0, &line, &col);
		cJSON_Delete(rp.root);
		return rp.root ? hug_error_set(err, "%s: expected a JSON object", name)
			       : hug_error_set(err, "%s:%d: not valid JSON", name, line);
	}
	r->path = hug_strdup(name);
	int rc = 0;
	for (int i = 0; i < n_overrides && !rc; i++)
		rc = apply_override(&rp, overrides[i]);
	rc = rc || check_tree(&rp, rp.root, "") || parse_model(&rp, r) ||
	     parse_run(&rp, r, world) || parse_data(&rp, r) || parse_optim(&rp, r) ||
	     parse_schedule(&rp, r) || parse_peft(&rp, r);
	if (!rc)
		r->json = cJSON_Print(rp.root);
	cJSON_Delete(rp.root);
	if (rc)
		recipe_free(r);
	return rc ? -1 : 0;
}

int recipe_load(const char *path, const char *const *overrides, int n_overrides,
		int world, struct recipe *r, struct hug_error *err)
{
	memset(r, 0, sizeof(*r));
	char *text;
	if (fs_read_file(path, 16u << 20, &text, NULL, err))
		return -1;
	int rc = recipe_parse(path, text, overrides, n_overrides, world, r, err);
	hug_free(text);
	return rc;
}

void recipe_free(struct recipe *r)
{
	for (int i = 0; i < r->n_train; i++)
		hug_free(r->train[i].path);
	for (int i = 0; i < r->n_valid; i++)
		hug_free(r->valid[i].path);
	hug_free(r->train);
	hug_free(r->valid);
	free_strings(r->no_decay, r->n_no_decay);
	hug_free(r->pipeline_layers);
	free_strings(r->peft.target_modules, r->peft.n_targets);
	free_strings(r->sample_prompts, r->n_sample_prompts);
	hug_free(r->path);
	hug_free(r->from_pretrained);
	hug_free(r->tokenizer);
	hug_free(r->sample_tokenizer);
	hug_free(r->out_dir);
	if (r->json)
		cJSON_free(r->json);
	memset(r, 0, sizeof(*r));
}

void recipe_write_docs(FILE *out)
{
	fprintf(out, "| key | type | default | meaning |\n|---|---|---|---|\n");
	for (int i = 0; i < recipe_n_keys; i++) {
		const struct rkey *k = &recipe_keys[i];
		char type[160];
		if (k->type == RK_ENUM)
			snprintf(type, sizeof(type), "one of `%s`", k->choices);
		else
			snprintf(type, sizeof(type), "%s%s", rkey_type_name(k->type),
				 k->nullable ? " or null" : "");
		fprintf(out, "| `%s` | %s | %s%s%s | %s |\n", k->path, type,
			k->def ? "`" : "", k->def ? k->def : "required", k->def ? "`" : "", k->doc);
	}
}
