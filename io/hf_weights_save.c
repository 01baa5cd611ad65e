/* hf_weights_save.c: writing a parameter table as Hugging Face weights:
 * one model.safetensors, or greedy shards with model.safetensors.index.json,
 * removing the weight files of an earlier save that this one replaced. */
#include "hf_checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../nn/hf_json.h"
#include "safetensors.h"

/* Removes files in dir that an earlier save wrote and this one did not:
 * the single file, the index, and shards not in keep[0..n_keep). */
static int remove_stale(const char *dir, bool keep_single, bool keep_index,
			char **keep, int n_keep, struct hug_error *err)
{
	const char *fixed[2] = { HF_WEIGHTS_FILE, HF_WEIGHTS_INDEX_FILE };
	const bool keep_fixed[2] = { keep_single, keep_index };
	for (int i = 0; i < 2; i++) {
		if (keep_fixed[i])
			continue;
		char *p = fs_join(dir, fixed[i]);
		int e = unlink(p) != 0 && errno != ENOENT ? errno : 0;
		hug_free(p);
		if (e)
			return hug_error_set(err, "%s/%s: cannot remove the stale file: %s",
					     dir, fixed[i], strerror(e));
	}
	DIR *d = opendir(dir);
	if (!d)
		return hug_error_set(err, "%s: cannot list: %s", dir, strerror(errno));
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		if (!hf_is_shard_name(e->d_name))
			continue;
		bool kept = false;
		for (int i = 0; i < n_keep && !kept; i++)
			kept = strcmp(keep[i], e->d_name) == 0;
		if (kept)
			continue;
		char *p = fs_join(dir, e->d_name);
		if (unlink(p) != 0 && errno != ENOENT)
			rc = hug_error_set(err, "%s: cannot remove the stale shard: %s",
					   p, strerror(errno));
		hug_free(p);
	}
	closedir(d);
	return rc;
}

/* Writes the parameters [lo, hi) of pt to dir/name. */
static int write_tensors(const struct param_table *pt, int lo, int hi,
			 const char *dir, const char *name, enum dtype disk,
			 struct hug_error *err)
{
	struct st_writer *w = st_writer_new();
	for (int i = lo; i < hi; i++)
		st_writer_add(w, pt->items[i].name, pt->items[i].t, disk);
	char *p = fs_join(dir, name);
	int rc = st_writer_write(w, p, err);
	hug_free(p);
	st_writer_free(w);
	return rc;
}

struct name_shard {
	const char *name;
	int shard;
};

static int by_ns_name(const void *a, const void *b)
{
	return strcmp(((const struct name_shard *)a)->name,
		      ((const struct name_shard *)b)->name);
}

/* The index: {"metadata": {"total_size": N}, "weight_map": {name: shard}},
 * names sorted, as transformers writes it. */
static int write_index(const struct param_table *pt, const int *shard_of,
		       char **shards, uint64_t total, const char *dir,
		       struct hug_error *err)
{
	struct name_shard *ns = hug_malloc((size_t)pt->n * sizeof(*ns) + 1);
	struct buf b = { 0 };
	for (int i = 0; i < pt->n; i++)
		ns[i] = (struct name_shard){ pt->items[i].name, shard_of[i] };
	qsort(ns, (size_t)pt->n, sizeof(*ns), by_ns_name);
	buf_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %" PRIu64 "\n  },\n  \"weight_map\": {\n", total);
	for (int i = 0; i < pt->n; i++) {
		buf_str(&b, "    ");
		hug_json_quote(&b, ns[i].name);
		buf_str(&b, ": ");
		hug_json_quote(&b, shards[ns[i].shard]);
		buf_str(&b, i + 1 < pt->n ? ",\n" : "\n");
	}
	buf_str(&b, "  }\n}\n");
	int rc = hf_json_write_in(dir, HF_WEIGHTS_INDEX_FILE, &b, err);
	buf_free(&b);
	hug_free(ns);
	return rc;
}

static int save_sharded(const struct param_table *pt, const char *dir,
			enum dtype disk, size_t max_shard_bytes, uint64_t total,
			struct hug_error *err)
{
	int *shard_of = hug_malloc((size_t)pt->n * sizeof(int) + 1);
	int n_shards = 0, rc = -1;
	uint64_t in_shard = 0;
	for (int i = 0; i < pt->n; i++) {
		uint64_t nb = (uint64_t)tensor_numel(pt->items[i].t) * dtype_size(disk);
		if (n_shards == 0 || (in_shard > 0 && in_shard + nb > max_shard_bytes)) {
			n_shards++;
			in_shard = 0;
		}
		shard_of[i] = n_shards - 1;
		in_shard += nb;
	}
	char **shards = hug_calloc((size_t)n_shards, sizeof(char *));
	for (int s = 0; s < n_shards; s++) {
		char name[64];
		snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", s + 1, n_shards);
		shards[s] = hug_strdup(name);
	}
	for (int s = 0, lo = 0; s < n_shards; s++) {
		int hi = lo;
		while (hi < pt->n && shard_of[hi] == s)
			hi++;
		if (write_tensors(pt, lo, hi, dir, shards[s], disk, err))
			goto free_names;
		lo = hi;
	}
	if (write_index(pt, shard_of, shards, total, dir, err))
		goto free_names;
	rc = remove_stale(dir, false, true, shards, n_shards, err);
free_names:
	for (int s = 0; s < n_shards; s++)
		hug_free(shards[s]);
	hug_free(shards);
	hug_free(shard_of);
	return rc;
}

int hf_weights_save(const struct param_table *pt, const char *dir, enum dtype disk,
		    size_t max_shard_bytes, struct hug_error *err)
{
	if (!hf_torch_dtype_name(disk))
		return hug_error_set(err, "%s: cannot save weights as %s (expected f32, f64, bf16 or f16)",
				     dir, dtype_name(disk));
	if (!fs_is_dir(dir))
		return hug_error_set(err, "%s: not a directory", dir);
	for (int i = 0; i < pt->n; i++)
		if (!dtype_is_float(pt->items[i].t->dtype))
			return hug_error_set(err, "%s: parameter %s is %s, not a float tensor",
					     dir, pt->items[i].name,
					     dtype_name(pt->items[i].t->dtype));
	uint64_t total = 0;
	for (int i = 0; i < pt->n; i++)
		total += (uint64_t)tensor_numel(pt->items[i].t) * dtype_size(disk);
	if (max_shard_bytes == 0 || total <= max_shard_bytes) {
		if (write_tensors(pt, 0, pt->n, dir, HF_WEIGHTS_FILE, disk, err))
			return -1;
		return remove_stale(dir, true, false, NULL, 0, err);
	}
	return save_sharded(pt, dir, disk, max_shard_bytes, total, err);
}

