/* dir_checksums.c: SHA-256 records of a directory's files: computing them
 * after a save, checking them before a load. */
#include "dir_checksums.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "../base/sha256.h"

cJSON *dir_checksums_compute(const char *dir, const char *skip, struct hug_error *err)
{
	hug_json_init();
	DIR *d = opendir(dir);
	if (!d) {
		hug_error_set(err, "%s: cannot list: %s", dir, strerror(errno));
		return NULL;
	}
	cJSON *files = cJSON_CreateObject();
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || (skip && !strcmp(e->d_name, skip)) ||
		    fs_ends_with(e->d_name, ".tmp"))
			continue;
		char *p = fs_join(dir, e->d_name);
		struct stat st;
		char hex[65];
		uint64_t bytes;
		int rc = 0;
		if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			rc = sha256_file(p, hex, &bytes, err);
			if (!rc) {
				cJSON *f = cJSON_AddObjectToObject(files, e->d_name);
				cJSON_AddStringToObject(f, "sha256", hex);
				cJSON_AddNumberToObject(f, "bytes", (double)bytes);
			}
		}
		hug_free(p);
		if (rc) {
			cJSON_Delete(files);
			files = NULL;
			break;
		}
	}
	closedir(d);
	return files;
}

int dir_checksums_verify(const char *dir, const cJSON *files, const char *source,
			 struct hug_error *err)
{
	if (!cJSON_IsObject(files))
		return hug_error_set(err, "%s: %s: expected an object of file records, got %s",
				     source, DIR_CHECKSUMS_KEY, hug_json_kind(files));
	const cJSON *f;
	cJSON_ArrayForEach(f, files)
	{
		const char *name = f->string;
		const cJSON *sha = cJSON_GetObjectItemCaseSensitive(f, "sha256");
		const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(f, "bytes");
		if (!name || strchr(name, '/') || !cJSON_IsString(sha) ||
		    strlen(sha->valuestring) != 64 || !cJSON_IsNumber(bytes))
			return hug_error_set(err, "%s: %s.%s: expected {\"sha256\": 64 hex digits, "
					     "\"bytes\": N}", source, DIR_CHECKSUMS_KEY,
					     name ? name : "?");
		char *p = fs_join(dir, name);
		int rc = 0;
		char hex[65];
		uint64_t n;
		if (!fs_exists(p))
			rc = hug_error_set(err, "%s: missing (%s lists it)", p, source);
		else if (sha256_file(p, hex, &n, err))
			rc = -1;
		else if ((double)n != bytes->valuedouble)
			rc = hug_error_set(err, "%s: damaged: %s records %.0f bytes, the file has "
					   "%" PRIu64, p, source, bytes->valuedouble, n);
		else if (strcmp(hex, sha->valuestring))
			rc = hug_error_set(err, "%s: damaged: sha256 expected %s (from %s), got %s",
					   p, sha->valuestring, source, hex);
		hug_free(p);
		if (rc)
			return -1;
	}
	return 0;
}

int dir_checksums_check(const char *dir, bool *verified, struct hug_error *err)
{
	hug_json_init();
	if (verified)
		*verified = false;
	char *path = fs_join(dir, DIR_CHECKSUMS_FILE);
	int rc = 0;
	if (fs_exists(path)) {
		cJSON *j = NULL;
		rc = hug_json_read_object(path, (size_t)256 << 20, "a JSON object (truncated?)",
					  &j, err);
		const cJSON *files = rc ? NULL : cJSON_GetObjectItemCaseSensitive(j, DIR_CHECKSUMS_KEY);
		if (files) {
			rc = dir_checksums_verify(dir, files, path, err);
			if (!rc && verified)
				*verified = true;
		}
		cJSON_Delete(j);
	}
	hug_free(path);
	return rc;
}
