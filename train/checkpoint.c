/* checkpoint.c: atomic checkpoint directories, pruning, and resume. */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "../io/dir_checksums.h"
#include "../io/hf_checkpoint.h"
#include "../io/safetensors.h"
#include "../peft/lora_io.h"
#include "checkpoint_gather.h"
#include "pipeline.h"

#define STATE_FILE "trainer_state.json"
#define OPTIM_FILE "optimizer.safetensors"
#define STATE_VERSION 1

/* optimizer.safetensors from the gathered optimizer state. */
static int save_optimizer(const struct optimizer *o, const struct full_table *state,
			  const char *dir, struct hug_error *err)
{
	struct st_writer *w = st_writer_new();
	for (int i = 0; i < state->pt.n; i++)
		st_writer_add(w, state->pt.items[i].name, state->pt.items[i].t, DT_F32);
	char step[32];
	snprintf(step, sizeof(step), "%" PRId64, o->step);
	st_writer_set_metadata(w, "step", step);
	st_writer_set_metadata(w, "optimizer", o->cfg.kind == OPTIM_ADAMW ? "adamw" : "sgd");
	char *path = fs_join(dir, OPTIM_FILE);
	int rc = st_writer_write(w, path, err);
	hug_free(path);
	st_writer_free(w);
	return rc;
}

/* Integers beyond 2^53 (seeds, RNG offsets) travel as decimal strings. */
static void add_u64(cJSON *obj, const char *key, uint64_t v)
{
	char s[32];
	snprintf(s, sizeof(s), "%" PRIu64, v);
	cJSON_AddStringToObject(obj, key, s);
}

/* `files`: the SHA-256 record of the other files (dir_checksums.h). */
static char *state_json(const struct trainer *t, const cJSON *history, const cJSON *files)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "format_version", STATE_VERSION);
	cJSON_AddNumberToObject(j, "step", (double)t->step);
	cJSON_AddNumberToObject(j, "samples_seen", (double)t->samples_seen);
	cJSON_AddNumberToObject(j, "tokens_seen", (double)t->tokens_seen);
	cJSON_AddNumberToObject(j, "skipped_steps", (double)t->skipped_steps);
	cJSON_AddNumberToObject(j, "consecutive_skips", (double)t->consecutive_skips);
	cJSON *rng = cJSON_AddObjectToObject(j, "rng");
	add_u64(rng, "dropout_seed", t->ctx.seed);
	add_u64(rng, "dropout_offset", t->ctx.rng_offset);
	struct loader_state ls;
	loader_state_save(t->train, &ls);
	cJSON_AddItemToObject(j, "data", loader_state_to_json(&ls));
	cJSON_AddItemToObject(j, "log_history",
			      history ? cJSON_Duplicate(history, 1) : cJSON_CreateArray());
	cJSON_AddItemToObject(j, DIR_CHECKSUMS_KEY, cJSON_Duplicate(files, 1));
	char *text = cJSON_Print(j);
	cJSON_Delete(j);
	return text;
}

static int write_text(const char *dir, const char *name, const char *text,
		      struct hug_error *err)
{
	char *path = fs_join(dir, name);
	int rc = fs_write_atomic(path, text, strlen(text), err);
	hug_free(path);
	return rc;
}

/* Copies file `from` to dir/name atomically. */
static int copy_in(const char *from, const char *dir, const char *name, struct hug_error *err)
{
	char *buf;
	size_t len;
	if (fs_read_file(from, (size_t)1 << 30, &buf, &len, err))
		return -1;
	char *path = fs_join(dir, name);
	int rc = fs_write_atomic(path, buf, len, err);
	hug_free(path);
	hug_free(buf);
	return rc;
}

/* rm -rf of a checkpoint directory; failures are ignored. */
static void remove_checkpoint_dir(const char *path)
{
	struct hug_error ignored = { 0 };
	fs_remove_tree(path, &ignored);
}

/* Step number of a complete checkpoint directory name, or -1. */
static int64_t checkpoint_step(const char *name)
{
	const char *pre = "checkpoint-";
	size_t n = strlen(pre);
	if (strncmp(name, pre, n) || !name[n])
		return -1;
	char *end;
	long long v = strtoll(name + n, &end, 10);
	return *end || v < 0 ? -1 : v;
}

/* Steps of the checkpoint-<step> directories in out_dir, ascending (only
 * those with a state file when complete_only); count in *n. */
static int64_t *list_checkpoints(const char *out_dir, bool complete_only, int *n)
{
	*n = 0;
	DIR *d = opendir(out_dir);
	if (!d)
		return NULL;
	int cap = 16;
	int64_t *steps = hug_malloc((size_t)cap * sizeof(*steps));
	struct dirent *e;
	while ((e = readdir(d))) {
		int64_t s = checkpoint_step(e->d_name);
		if (s < 0)
			continue;
		if (complete_only) {
			char *dir = fs_join(out_dir, e->d_name);
			bool ok = fs_exists_in(dir, STATE_FILE);
			hug_free(dir);
			if (!ok)
				continue;
		}
		if (*n == cap)
			steps = hug_realloc(steps, (size_t)(cap *= 2) * sizeof(*steps));
		steps[(*n)++] = s;
	}
	closedir(d);
	for (int i = 1; i < *n; i++) /* insertion sort: few entries */
		for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) {
			int64_t x = steps[j];
			steps[j] = steps[j - 1];
			steps[j - 1] = x;
		}
	return steps;
}

static char *checkpoint_path(const char *out_dir, int64_t step)
{
	char name[64];
	snprintf(name, sizeof(name), "checkpoint-%" PRId64, step);
	return fs_join(out_dir, name);
}

static void prune(const char *out_dir, int64_t keep)
{
	int n;
	int64_t *steps = list_checkpoints(out_dir, true, &n);
	for (int i = 0; keep > 0 && i + keep < n; i++) {
		char *p = checkpoint_path(out_dir, steps[i]);
		remove_checkpoint_dir(p);
		hug_free(p);
	}
	hug_free(steps);
}

/* The first parameter with a non-finite value, or NULL (parameters on a
 * device are copied to the host one at a time to be checked). */
static const char *nonfinite_param(const struct param_table *pt)
{
	struct arena host;
	arena_init(&host, "finite-check", 0, NULL);
	const char *bad = NULL;
	for (int i = 0; i < pt->n && !bad; i++) {
		const struct tensor *p = pt->items[i].t;
		if (p->device != DEV_CPU) {
			struct tensor *h = tensor_new_like(&host, p);
			tensor_transfer(h, p);
			p = h;
		}
		const float *v = p->data;
		for (int64_t k = 0; k < tensor_numel(p); k++)
			if (!isfinite(v[k])) {
				bad = pt->items[i].name;
				break;
			}
		arena_reset(&host);
	}
	arena_free(&host);
	return bad;
}

/* The weights: the model as a Hugging Face directory or, under LoRA, the
 * adapters alone in PEFT's layout (the frozen base stays where
 * model.from_pretrained points). */
static int save_weights(const struct trainer *t, const struct full_table *weights,
			const char *dir, struct hug_error *err)
{
	struct model_config cfg;
	if (t->lora)
		return lora_save(t->lora, dir, DT_F32, err);
	model_config_of(&t->model, &cfg);
	return model_config_write(&cfg, DT_F32, dir, err) ||
	       hf_weights_save(&weights->pt, dir, DT_F32, 0, err) ? -1 : 0;
}

/* Writes the checkpoint directory (the writing rank only). */
static int write_checkpoint(const struct trainer *t, const cJSON *history,
			    const struct full_table *weights, const struct full_table *state,
			    char **path, struct hug_error *err)
{
	const struct recipe *r = t->r;
	if (fs_make_dirs(r->out_dir, err))
		return -1;
	char *final = checkpoint_path(r->out_dir, t->step);
	char *tmp = fs_cat(final, ".tmp");
	char *text = NULL;
	cJSON *files = NULL;
	int rc = -1;
	remove_checkpoint_dir(tmp);
	if (mkdir(tmp, 0755) != 0) {
		hug_error_set(err, "%s: cannot create: %s", tmp, strerror(errno));
		goto out;
	}
	if (save_weights(t, weights, tmp, err) ||
	    save_optimizer(&t->opt, state, tmp, err) ||
	    write_text(tmp, "recipe.json", r->json, err) ||
	    (r->tokenizer && copy_in(r->tokenizer, tmp, "tokenizer.json", err)))
		goto out;
	/* the state file last, with the digests of everything else */
	if (!(files = dir_checksums_compute(tmp, STATE_FILE, err)))
		goto out;
	text = state_json(t, history, files);
	if (write_text(tmp, STATE_FILE, text, err))
		goto out;
	fs_sync_dir(tmp);
	/* a re-save of the same step replaces it atomically */
	if (fs_replace_dir(tmp, final, NULL, err))
		goto out;
	prune(r->out_dir, r->keep_last);
	rc = 0;
	if (path) {
		*path = final;
		final = NULL;
	}
out:
	if (rc)
		remove_checkpoint_dir(tmp);
	if (text)
		cJSON_free(text);
	cJSON_Delete(files);
	hug_free(tmp);
	hug_free(final);
	return rc;
}

/* checkpoint_save with every parameter whole in its tensor. */
static int save_whole(const struct trainer *t, const cJSON *history, char **path,
		      struct hug_error *err)
{
	const struct parallel *par = t->par;
	/* every rank checks its part; all refuse together */
	const char *bad = nonfinite_param(t->lora ? &t->lora->table : model_params(&t->model));
	int flag = bad != NULL;
	comm_allreduce(&par->world, &flag, 1, DT_I32, COMM_MAX);
	if (flag)
		return hug_error_set(err, "step %lld: parameter %s holds a non-finite value; not "
				     "writing a checkpoint", (long long)t->step,
				     bad ? bad : "(on another rank)");
	/* collective: whole tensors from every rank's shards and ranges */
	struct full_table weights = { 0 }, state;
	if (!t->lora)
		gather_params(t, model_params(&t->model), &weights);
	gather_optimizer(t, &state);
	if (t->pipe) { /* the other stages' tensors to the writer */
		pipeline_gather(t, &weights, true);
		pipeline_gather(t, &state, false);
	}
	int rc = 0;
	if (parallel_is_main(par))
		rc = write_checkpoint(t, history, &weights, &state, path, err);
	else if (path)
		*path = NULL;
	if (!t->lora)
		full_table_free(&weights);
	full_table_free(&state);
	/* everyone learns whether the writer succeeded */
	comm_allreduce(&par->world, &rc, 1, DT_I32, COMM_MIN);
	if (rc && !err->set)
		hug_error_set(err, "step %lld: rank 0 could not write the checkpoint",
			      (long long)t->step);
	return rc ? -1 : 0;
}

int checkpoint_save(const struct trainer *t, const cJSON *history, char **path,
		    struct hug_error *err)
{
	/* ZeRO-3 keeps a shard of each parameter: whole for the writer, then
	 * sharded again (the trainer's communication state, not its contents,
	 * changes) */
	struct dist *d = (struct dist *)&t->dist;
	dist_unshard(d);
	int rc = save_whole(t, history, path, err);
	dist_reshard(d);
	return rc;
}

char *checkpoint_latest(const char *out_dir)
{
	int n;
	int64_t *steps = list_checkpoints(out_dir, true, &n);
	char *p = n ? checkpoint_path(out_dir, steps[n - 1]) : NULL;
	hug_free(steps);
	return p;
}

int checkpoint_verify(const char *dir, bool *verified, struct hug_error *err)
{
	if (verified)
		*verified = false;
	bool lora = fs_exists_in(dir, LORA_CONFIG_FILE);
	const char *need[] = { STATE_FILE, lora ? LORA_CONFIG_FILE : "config.json",
			       lora ? LORA_WEIGHTS_FILE : "model.safetensors", OPTIM_FILE,
			       "recipe.json" };
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!fs_exists_in(dir, need[i]))
			return hug_error_set(err, "%s: missing %s", dir, need[i]);
	return dir_checksums_check(dir, verified, err);
}

char *checkpoint_resume_pick(const char *out_dir, FILE *report, struct hug_error *err)
{
	int n;
	int64_t *steps = list_checkpoints(out_dir, false, &n);
	if (!steps)
		return NULL;
	char *pick = NULL, *skipped = hug_strdup("");
	for (int i = n - 1; i >= 0 && !pick; i--) {
		char *p = checkpoint_path(out_dir, steps[i]);
		struct hug_error why = { 0 };
		bool verified;
		if (!fs_is_dir(p)) {
			hug_free(p);
			continue;
		}
		if (checkpoint_verify(p, &verified, &why) == 0) {
			if (!verified && report)
				fprintf(report, "%s: no checksums recorded (written by an older hug): "
					"resuming from it unverified\n", p);
			pick = p;
			break;
		}
		if (report)
			fprintf(report, "skipping %s: %s\n", p, why.msg);
		char *line = hug_malloc(strlen(p) + strlen(why.msg) + 8);
		sprintf(line, "\n  %s: %s", p, why.msg);
		char *all = fs_cat(skipped, line);
		hug_free(skipped);
		hug_free(line);
		skipped = all;
		hug_free(p);
	}
	if (!pick && *skipped)
		hug_error_set(err, "%s: no intact checkpoint to resume from; damaged:%s", out_dir,
			      skipped);
	hug_free(skipped);
	hug_free(steps);
	return pick;
}

/* A required count: an integer >= 0. */
static int json_count(const struct json_at *at, const cJSON *j, const char *key,
		      int64_t *out, struct hug_error *err)
{
	return hug_json_get_int(at, j, key, 0, HUG_JSON_INT_MAX, true, out, err);
}

static int load_state(struct trainer *t, const char *dir, cJSON **history,
		      struct hug_error *err)
{
	char *path = fs_join(dir, STATE_FILE);
	cJSON *j = NULL;
	int rc = hug_json_read_object(path, (size_t)256 << 20, NULL, &j, err);
	int64_t version = 0;
	const struct json_at at = { path, NULL }, at_rng = { path, "rng" };
	if (!rc && (json_count(&at, j, "format_version", &version, err) ||
		    json_count(&at, j, "step", &t->step, err) ||
		    json_count(&at, j, "samples_seen", &t->samples_seen, err) ||
		    json_count(&at, j, "tokens_seen", &t->tokens_seen, err) ||
		    json_count(&at, j, "skipped_steps", &t->skipped_steps, err)))
		rc = -1;
	t->consecutive_skips = 0; /* absent in older checkpoints */
	if (!rc && hug_json_get_int(&at, j, "consecutive_skips", 0, HUG_JSON_INT_MAX, false,
				    &t->consecutive_skips, err))
		rc = -1;
	if (!rc && version != STATE_VERSION)
		rc = hug_error_set(err, "%s: format_version %lld, this hug reads %d", path,
				   (long long)version, STATE_VERSION);
	const cJSON *rng = rc ? NULL : cJSON_GetObjectItemCaseSensitive(j, "rng");
	if (!rc && (hug_json_get_u64_string(&at_rng, rng, "dropout_seed", true, &t->ctx.seed, err) ||
		    hug_json_get_u64_string(&at_rng, rng, "dropout_offset", true,
					    &t->ctx.rng_offset, err)))
		rc = -1;
	struct loader_state ls;
	if (!rc) {
		char what[600];
		snprintf(what, sizeof(what), "%s: data", path);
		rc = loader_state_from_json(cJSON_GetObjectItemCaseSensitive(j, "data"), what, &ls, err) ||
		     loader_state_restore(t->train, &ls, err) ? -1 : 0;
	}
	if (!rc && history) {
		cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "log_history");
		*history = cJSON_IsArray(h) ? cJSON_Duplicate(h, 1) : cJSON_CreateArray();
	}
	cJSON_Delete(j);
	hug_free(path);
	return rc;
}

int checkpoint_load(struct trainer *t, const char *dir, cJSON **history,
		    struct hug_error *err)
{
	hug_json_init();
	dist_unshard(&t->dist); /* ZeRO-3: read into whole tensors, then shard */
	int w = t->lora ? lora_load_weights(t->lora, dir, err)
		: t->pipe ? pipeline_load_params(t, dir, err)
			  : scatter_params(t, model_params(&t->model), dir, err);
	dist_reshard(&t->dist);
	if (w || scatter_optimizer(t, dir, err) ||
	    load_state(t, dir, history, err))
		return -1;
	t->opt.step = t->step - t->skipped_steps;
	return 0;
}
