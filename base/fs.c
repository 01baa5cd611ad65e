/* fs.c: paths, whole-file reads, atomic writes, directories, atomic
 * directory replacement. */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"

char *fs_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	bool slash = a > 0 && dir[a - 1] != '/';
	char *p = hug_malloc(a + slash + b + 1);
	memcpy(p, dir, a);
	if (slash)
		p[a] = '/';
	memcpy(p + a + slash, name, b + 1);
	return p;
}

char *fs_cat(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	char *p = hug_malloc(a + b + 1);
	memcpy(p, s, a);
	memcpy(p + a, suffix, b + 1);
	return p;
}

bool fs_exists_in(const char *dir, const char *name)
{
	char *p = fs_join(dir, name);
	bool ok = fs_exists(p);
	hug_free(p);
	return ok;
}

bool fs_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

char *fs_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return hug_strdup(".");
	char *p = hug_strdup(path);
	p[slash == path ? 1 : slash - path] = '\0';
	return p;
}

bool fs_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool fs_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int fs_read_file(const char *path, size_t max_bytes, char **out, size_t *len,
		 struct hug_error *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hug_error_set(err, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return hug_error_set(err, "%s: not a regular file", path);
	}
	if ((uint64_t)st.st_size > max_bytes) {
		close(fd);
		return hug_error_set(err, "%s: %lld bytes, more than the %zu allowed",
				     path, (long long)st.st_size, max_bytes);
	}
	size_t n = (size_t)st.st_size, got = 0;
	char *buf = hug_malloc(n + 1);
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			close(fd);
			hug_free(buf);
			return hug_error_set(err, "%s: read failed: %s", path, strerror(e));
		}
		got += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

void fs_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

char *fs_tmp_name(const char *path)
{
	return fs_cat(path, ".tmp");
}

int fs_create(const char *tmp, struct hug_error *err)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		hug_error_set(err, "%s: cannot create: %s", tmp, strerror(errno));
	return fd;
}

int fs_write_all(int fd, const char *name, const void *p, size_t n,
		 struct hug_error *err)
{
	const char *c = p;
	while (n > 0) {
		ssize_t k = write(fd, c, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return hug_error_set(err, "%s: write failed: %s", name,
					     k < 0 ? strerror(errno) : "no progress");
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

int fs_commit(int fd, const char *tmp, const char *path, struct hug_error *err)
{
	if (fd < 0)
		fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		hug_error_set(err, "%s: fsync failed: %s", tmp, strerror(errno));
		goto remove_tmp;
	}
	int c = close(fd);
	fd = -1;
	if (c != 0) {
		hug_error_set(err, "%s: close failed: %s", tmp, strerror(errno));
		goto remove_tmp;
	}
	if (rename(tmp, path) != 0) {
		hug_error_set(err, "%s: cannot rename %s over it: %s", path, tmp,
			      strerror(errno));
		goto remove_tmp;
	}
	char *dir = fs_parent(path);
	fs_sync_dir(dir);
	hug_free(dir);
	return 0;
remove_tmp:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

int fs_write_atomic(const char *path, const void *data, size_t len,
		    struct hug_error *err)
{
	char *tmp = fs_tmp_name(path);
	int rc = -1;
	int fd = fs_create(tmp, err);
	if (fd < 0)
		goto free_tmp;
	if (fs_write_all(fd, tmp, data, len, err)) {
		close(fd);
		unlink(tmp);
		goto free_tmp;
	}
	rc = fs_commit(fd, tmp, path, err);
free_tmp:
	hug_free(tmp);
	return rc;
}

int fs_make_dirs(const char *path, struct hug_error *err)
{
	char *p = hug_strdup(path);
	int rc = 0;
	for (char *s = strchr(p + 1, '/');; s = strchr(s + 1, '/')) {
		if (s)
			*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			rc = hug_error_set(err, "%s: cannot create: %s", p, strerror(errno));
		else if (!fs_is_dir(p))
			rc = hug_error_set(err, "%s: not a directory", p);
		if (!s || rc)
			break;
		*s = '/';
	}
	hug_free(p);
	return rc;
}

int fs_remove_tree(const char *path, struct hug_error *err)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0
				       : hug_error_set(err, "%s: cannot stat: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) != 0 && errno != ENOENT)
			return hug_error_set(err, "%s: cannot remove: %s", path, strerror(errno));
		return 0;
	}
	DIR *d = opendir(path);
	if (!d)
		return hug_error_set(err, "%s: cannot list: %s", path, strerror(errno));
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *p = fs_join(path, e->d_name);
		rc = fs_remove_tree(p, err);
		hug_free(p);
	}
	closedir(d);
	if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
		rc = hug_error_set(err, "%s: cannot remove: %s", path, strerror(errno));
	return rc;
}

static bool stop_after_exchange(void)
{
	const char *s = getenv("HUG_TEST_REPLACE_STOP");
	return s && !strcmp(s, "after_exchange");
}

int fs_replace_dir(const char *tmp, const char *dir, fs_remove_fn remove_old,
		   struct hug_error *err)
{
	if (!remove_old)
		remove_old = fs_remove_tree;
	char *parent = fs_parent(dir);
	int rc = -1;
	if (!fs_exists(dir)) {
		if (rename(tmp, dir) != 0) {
			hug_error_set(err, "%s: cannot rename %s to it: %s", dir, tmp, strerror(errno));
			goto out;
		}
		fs_sync_dir(parent);
		rc = 0;
		goto out;
	}
#ifdef RENAME_EXCHANGE
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) == 0) {
		fs_sync_dir(parent);
		rc = stop_after_exchange() ? 0 : remove_old(tmp, err);
		goto out;
	}
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
		hug_error_set(err, "%s: cannot exchange it with %s: %s", dir, tmp, strerror(errno));
		goto out;
	}
#endif
	char *old = fs_cat(dir, ".old");
	if (remove_old(old, err))
		goto free_old;
	if (rename(dir, old) != 0) {
		hug_error_set(err, "%s: cannot rename it to %s: %s", dir, old, strerror(errno));
		goto free_old;
	}
	if (rename(tmp, dir) != 0) {
		int e = errno;
		rename(old, dir);
		hug_error_set(err, "%s: cannot rename %s to it: %s", dir, tmp, strerror(e));
		goto free_old;
	}
	fs_sync_dir(parent);
	rc = remove_old(old, err);
free_old:
	hug_free(old);
out:
	hug_free(parent);
	return rc;
}
