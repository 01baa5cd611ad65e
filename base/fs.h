/* fs.h: file-system helpers shared by every module that reads or writes
 * files: path joining, whole-file reads with a size limit, atomic writes
 * (temporary name, fsync, rename, directory fsync), mkdir -p. */
#ifndef HUG_BASE_FS_H
#define HUG_BASE_FS_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* "dir/name" (no doubled slash), hug_malloc'd. */
char *fs_join(const char *dir, const char *name);
/* s followed by suffix, hug_malloc'd. */
char *fs_cat(const char *s, const char *suffix);
/* The directory part of path ("." when none), hug_malloc'd. */
char *fs_parent(const char *path);

bool fs_is_dir(const char *path);
/* True when path exists (a dangling symlink counts). */
bool fs_exists(const char *path);

/* Reads the regular file `path` (at most max_bytes) into a NUL-terminated
 * hug_malloc'd buffer; *len (may be NULL) gets the size. 0, or -1 with err
 * naming the file. */
int fs_read_file(const char *path, size_t max_bytes, char **out, size_t *len,
		 struct hug_error *err);

/* Writes len bytes to path atomically: "<path>.tmp", fsync, rename over
 * path, fsync of the directory. 0, or -1 with err (no partial file left
 * under either name). */
int fs_write_atomic(const char *path, const void *data, size_t len,
		    struct hug_error *err);

/* Makes renames in dir durable; failures are ignored (some file systems
 * refuse fsync on directories). */
void fs_sync_dir(const char *dir);

/* mkdir -p: creates path and every missing parent. 0 or -1 with err. */
int fs_make_dirs(const char *path, struct hug_error *err);

#endif
