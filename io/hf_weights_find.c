/* hf_weights_find.c: finding the weight files of a Hugging Face model
 * directory: model.safetensors, or the shards listed by
 * model.safetensors.index.json (validated: an object of strings, shard names
 * without path separators, every shard a regular file). */
#include "hf_checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "../nn/hf_json.h"

bool hf_is_shard_name(const char *s)
{
	static const char pat[] = "model-#####-of-#####.safetensors";
	if (strlen(s) != sizeof(pat) - 1)
		return false;
	for (size_t i = 0; pat[i]; i++) {
		if (pat[i] == '#' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return false;
	}
	return true;
}

/* A shard name from an index must name a file in the directory itself. */
static bool shard_name_ok(const char *s)
{
	return *s && !strchr(s, '/') && !strchr(s, '\\') && !strstr(s, "..");
}

void hf_weight_files_free(struct hf_weight_files *wf)
{
	for (int i = 0; i < wf->n_files; i++)
		hug_free(wf->files[i]);
	for (int i = 0; i < wf->n_map; i++)
		hug_free(wf->map_names[i]);
	hug_free(wf->files);
	hug_free(wf->map_names);
	hug_free(wf->map_file);
	memset(wf, 0, sizeof(*wf));
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Index of `name` in wf->files, appending it when new. */
static int files_add(struct hf_weight_files *wf, const char *name)
{
	for (int i = 0; i < wf->n_files; i++)
		if (strcmp(wf->files[i], name) == 0)
			return i;
	wf->files = hug_realloc(wf->files, (size_t)(wf->n_files + 1) * sizeof(char *));
	wf->files[wf->n_files] = hug_strdup(name);
	return wf->n_files++;
}

/* Reads metadata.total_size, if any. */
static int index_total_size(const char *path, const cJSON *root,
			    struct hf_weight_files *wf, struct hug_error *err)
{
	const cJSON *meta;
	wf->total_size = -1;
	if (hug_json_member(&(struct json_at){ path, NULL }, root, "metadata", &meta, err))
		return -1;
	if (!meta || cJSON_IsNull(meta))
		return 0;
	if (!cJSON_IsObject(meta))
		return hug_error_set(err, "%s: metadata: expected an object, got %s",
				     path, hug_json_kind(meta));
	return hug_json_get_int(&(struct json_at){ path, "metadata" }, meta, "total_size", 0,
				INT64_MAX, false, &wf->total_size, err);
}

/* Fills wf from the index's weight_map. */
static int index_weight_map(const char *dir, const char *path, const cJSON *root,
			    struct hf_weight_files *wf, struct hug_error *err)
{
	const cJSON *map, *it;
	char got[96];
	if (hug_json_member(&(struct json_at){ path, NULL }, root, "weight_map", &map, err))
		return -1;
	if (!map)
		return hug_error_set(err, "%s: weight_map: missing", path);
	if (!cJSON_IsObject(map))
		return hug_error_set(err, "%s: weight_map: expected an object, got %s",
				     path, hug_json_kind(map));
	int n = cJSON_GetArraySize(map);
	if (n == 0)
		return hug_error_set(err, "%s: weight_map: empty", path);
	wf->map_names = hug_calloc((size_t)n, sizeof(char *));
	wf->map_file = hug_calloc((size_t)n, sizeof(int));
	cJSON_ArrayForEach(it, map) {
		if (!cJSON_IsString(it))
			return hug_error_set(err, "%s: weight_map: %s: expected a shard file name, got %s",
					     path, it->string, hug_json_text(it, got, sizeof(got)));
		if (!shard_name_ok(it->valuestring))
			return hug_error_set(err, "%s: weight_map: %s: shard \"%s\" must be a file name in %s (no '/', '\\' or \"..\")",
					     path, it->string, it->valuestring, dir);
		wf->map_names[wf->n_map] = hug_strdup(it->string);
		wf->map_file[wf->n_map++] = files_add(wf, it->valuestring);
	}
	/* duplicates among the tensor names */
	char **sorted = hug_malloc((size_t)n * sizeof(char *));
	memcpy(sorted, wf->map_names, (size_t)n * sizeof(char *));
	qsort(sorted, (size_t)n, sizeof(char *), by_str);
	int rc = 0;
	for (int i = 1; i < n && rc == 0; i++)
		if (strcmp(sorted[i - 1], sorted[i]) == 0)
			rc = hug_error_set(err, "%s: weight_map: tensor %s listed twice",
					   path, sorted[i]);
	hug_free(sorted);
	return rc;
}

/* Every shard named by the index must be a regular file in dir. */
static int index_check_shards(const char *dir, const char *path,
			      const struct hf_weight_files *wf,
			      struct hug_error *err)
{
	for (int f = 0; f < wf->n_files; f++) {
		char *p = fs_join(dir, wf->files[f]);
		struct stat st;
		int e = stat(p, &st) == 0 ? 0 : errno;
		bool ok = e == 0 && S_ISREG(st.st_mode);
		hug_free(p);
		if (ok)
			continue;
		const char *example = "";
		for (int i = 0; i < wf->n_map; i++)
			if (wf->map_file[i] == f) {
				example = wf->map_names[i];
				break;
			}
		return hug_error_set(err, "%s: shard %s (holding %s) %s",
				     path, wf->files[f], example,
				     e == ENOENT ? "does not exist" : "is not a readable regular file");
	}
	return 0;
}

static int find_sharded(const char *dir, const char *path,
			struct hf_weight_files *wf, struct hug_error *err)
{
	cJSON *root;
	if (hug_json_read_object(path, HF_JSON_FILE_MAX, NULL, &root, err))
		return -1;
	int rc = -1;
	wf->sharded = true;
	if (index_total_size(path, root, wf, err) ||
	    index_weight_map(dir, path, root, wf, err))
		goto delete_root;
	/* map_file indexes files in first-seen order: sort the files and
	 * renumber */
	char **old = hug_malloc((size_t)wf->n_files * sizeof(char *));
	memcpy(old, wf->files, (size_t)wf->n_files * sizeof(char *));
	qsort(wf->files, (size_t)wf->n_files, sizeof(char *), by_str);
	for (int i = 0; i < wf->n_map; i++)
		for (int f = 0; f < wf->n_files; f++)
			if (wf->files[f] == old[wf->map_file[i]]) {
				wf->map_file[i] = f;
				break;
			}
	hug_free(old);
	rc = index_check_shards(dir, path, wf, err);
delete_root:
	cJSON_Delete(root);
	return rc;
}

int hf_weights_find(const char *dir, struct hf_weight_files *wf,
		    struct hug_error *err)
{
	memset(wf, 0, sizeof(*wf));
	wf->total_size = -1;
	if (!fs_is_dir(dir))
		return hug_error_set(err, "%s: %s", dir,
				     fs_exists(dir) ? "not a directory" : "no such directory");
	char *single = fs_join(dir, HF_WEIGHTS_FILE);
	char *index = fs_join(dir, HF_WEIGHTS_INDEX_FILE);
	int rc = 0;
	if (fs_exists(single)) {
		files_add(wf, HF_WEIGHTS_FILE);
	} else if (fs_exists(index)) {
		rc = find_sharded(dir, index, wf, err);
	} else {
		char *bin = fs_join(dir, "pytorch_model.bin");
		rc = hug_error_set(err, "%s: no weights: neither %s nor %s exists%s",
				   dir, HF_WEIGHTS_FILE, HF_WEIGHTS_INDEX_FILE,
				   fs_exists(bin) ? " (pytorch_model.bin is not read by hug: convert it to safetensors)" : "");
		hug_free(bin);
	}
	if (rc)
		hf_weight_files_free(wf);
	hug_free(single);
	hug_free(index);
	return rc;
}
