/* hf_model_dir.c: whole Hugging Face model directories of any family:
 * loading (config.json picks the family, then the weights by name) and
 * saving (config, generation config and weights written under a temporary
 * name, then swapped into place, keeping files hug did not write). */
#include "hf_checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../nn/hf_json.h"

/* True for the files hf_model_save writes (and their ".tmp" leftovers). */
static bool is_own_file(const char *name)
{
	static const char *const own[] = {
		HF_CONFIG_FILE, HF_GENERATION_CONFIG_FILE, HF_WEIGHTS_FILE,
		HF_WEIGHTS_INDEX_FILE,
	};
	char base[256];
	size_t n = strlen(name);
	if (n >= sizeof(base))
		return false;
	memcpy(base, name, n + 1);
	if (n > 4 && fs_ends_with(base, ".tmp"))
		base[n - 4] = '\0';
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strcmp(base, own[i]) == 0)
			return true;
	return hf_is_shard_name(base);
}

/* Removes directory `path` holding only files hf_model_save writes; any
 * other entry is left alone and reported. A missing path is fine. */
static int remove_own_dir(const char *path, struct hug_error *err)
{
	DIR *d = opendir(path);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return hug_error_set(err, "%s: cannot list: %s", path, strerror(errno));
	}
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (!is_own_file(e->d_name)) {
			rc = hug_error_set(err, "%s: holds %s, which hug did not write; not removing it (move it away and retry)",
					   path, e->d_name);
			break;
		}
		char *p = fs_join(path, e->d_name);
		if (unlink(p) != 0 && errno != ENOENT)
			rc = hug_error_set(err, "%s: cannot remove: %s", p, strerror(errno));
		hug_free(p);
	}
	closedir(d);
	if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
		rc = hug_error_set(err, "%s: cannot remove: %s", path, strerror(errno));
	return rc;
}

/* mkdir -p of every directory above `path` (not path itself). */
static int make_parents(const char *path, struct hug_error *err)
{
	char *parent = fs_parent(path);
	int rc = fs_make_dirs(parent, err);
	hug_free(parent);
	return rc;
}

/* Moves the entries of old_dir that hf_model_save does not write (a
 * tokenizer, a README) into new_dir, so replacing the directory keeps
 * them. */
static int carry_foreign(const char *old_dir, const char *new_dir,
			 struct hug_error *err)
{
	DIR *d = opendir(old_dir);
	if (!d)
		return hug_error_set(err, "%s: cannot list: %s", old_dir, strerror(errno));
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    is_own_file(e->d_name))
			continue;
		char *from = fs_join(old_dir, e->d_name);
		char *to = fs_join(new_dir, e->d_name);
		if (rename(from, to) != 0)
			rc = hug_error_set(err, "%s: cannot move it into %s: %s", from,
					   new_dir, strerror(errno));
		hug_free(from);
		hug_free(to);
	}
	closedir(d);
	return rc;
}

/* Replaces directory `dir` (which exists) by `tmp`, keeping the files hug
 * did not write, through fs_replace_dir. */
static int swap_into_place(const char *tmp, const char *dir, struct hug_error *err)
{
	if (carry_foreign(dir, tmp, err))
		return -1;
	return fs_replace_dir(tmp, dir, remove_own_dir, err);
}

/* Writes the whole directory into tmp (created here). */
static int save_into(const struct model *m, const char *tmp, enum dtype disk,
		     size_t max_shard_bytes, struct hug_error *err)
{
	struct model_config cfg;
	if (mkdir(tmp, 0755) != 0)
		return hug_error_set(err, "%s: cannot create: %s", tmp, strerror(errno));
	model_config_of(m, &cfg);
	if (model_config_write(&cfg, disk, tmp, err) ||
	    hf_weights_save(model_params(m), tmp, disk, max_shard_bytes, err))
		return -1;
	fs_sync_dir(tmp);
	return 0;
}

int hf_model_save(const struct model *m, const char *dir, enum dtype disk,
		  size_t max_shard_bytes, struct hug_error *err)
{
	char *d = hug_strdup(dir);
	size_t n = strlen(d);
	while (n > 1 && d[n - 1] == '/')
		d[--n] = '\0';
	char *tmp = fs_cat(d, ".tmp");
	struct stat st;
	int rc = -1;
	if (n == 0 || strcmp(d, "/") == 0 || strcmp(d, ".") == 0 ||
	    strcmp(d, "..") == 0 || (n >= 3 && strcmp(d + n - 3, "/..") == 0) ||
	    (n >= 2 && strcmp(d + n - 2, "/.") == 0)) {
		hug_error_set(err, "\"%s\": not a usable directory name to save into", dir);
		goto free_names;
	}
	if (lstat(d, &st) == 0 && !S_ISDIR(st.st_mode)) {
		hug_error_set(err, "%s: exists and is not a directory%s", d,
			      S_ISLNK(st.st_mode) ? " (a symbolic link: give the real path)" : "");
		goto free_names;
	}
	if (make_parents(d, err) || remove_own_dir(tmp, err))
		goto free_names;
	if (save_into(m, tmp, disk, max_shard_bytes, err)) {
		struct hug_error ignored = { 0 };
		remove_own_dir(tmp, &ignored);
		goto free_names;
	}
	if (fs_exists(d) ? swap_into_place(tmp, d, err) : fs_replace_dir(tmp, d, NULL, err))
		goto free_names;
	rc = 0;
free_names:
	hug_free(tmp);
	hug_free(d);
	return rc;
}

int hf_model_load(const char *dir, enum dtype dt, bool trainable, struct model *m,
		  struct hug_error *err)
{
	struct model_config cfg;
	bool wrapped = m->impl && !m->owned;
	if (dt != DT_F32 && dt != DT_F64)
		return hug_error_set(err, "%s: cannot load a model as %s (expected f32 or f64)",
				     dir, dtype_name(dt));
	if (!fs_is_dir(dir))
		return hug_error_set(err, "%s: %s", dir,
				     fs_exists(dir) ? "not a directory" : "no such directory");
	if (model_config_read(dir, &cfg, err))
		return -1;
	if (wrapped && cfg.family != m->family)
		return hug_error_set(err, "%s: a %s model, expected %s", dir, cfg.family->name,
				     m->family->name);
	if (wrapped)
		model_init_in(m, &cfg, dt, trainable, NULL, NULL);
	else
		model_init(m, &cfg, dt, trainable, NULL, NULL);
	if (hf_weights_load(model_params(m), &cfg.family->hf_names, cfg.family->display, dir,
			    err)) {
		model_free(m);
		return -1;
	}
	return 0;
}

int hf_generation_eos(const char *dir, int *ids, int max, int *n, struct hug_error *err)
{
	*n = 0;
	char *path = fs_join(dir, HF_GENERATION_CONFIG_FILE);
	cJSON *root = NULL;
	int rc = 0;
	if (fs_exists(path)) {
		int got = -1;
		rc = hug_json_read_object(path, HF_JSON_FILE_MAX, "a generation config", &root, err) ||
		     hf_cfg_tokens(path, root, "eos_token_id", ids, max, &got, err) ? -1 : 0;
		if (!rc && got > 0)
			*n = got;
	}
	cJSON_Delete(root);
	hug_free(path);
	return rc;
}
