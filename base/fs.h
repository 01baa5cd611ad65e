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
/* True when (file name) s ends with suffix (".h5", ".tmp"). */
bool fs_ends_with(const char *s, const char *suffix);

bool fs_is_dir(const char *path);
/* True when path exists (a dangling symlink counts). */
bool fs_exists(const char *path);
/* fs_exists of dir/name. */
bool fs_exists_in(const char *dir, const char *name);

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

/* The pieces of fs_write_atomic, for writers that stream a file (or let a
 * library such as HDF5 write it) under the temporary name themselves. */

/* "<path>.tmp", hug_malloc'd: the temporary name of an atomic write. */
char *fs_tmp_name(const char *path);

/* Creates (truncating) `tmp` for writing; the fd, or -1 with err naming it. */
int fs_create(const char *tmp, struct hug_error *err);

/* Writes all n bytes to fd, retrying short and interrupted writes. 0, or -1
 * with err naming `name`. */
int fs_write_all(int fd, const char *name, const void *p, size_t n,
		 struct hug_error *err);

/* Publishes the complete file `tmp` as `path`: fsync (of fd, or of tmp
 * opened again when fd < 0), close, rename over path, fsync of the
 * directory. Closes fd in every case; on failure removes tmp and returns -1
 * with err, else 0. */
int fs_commit(int fd, const char *tmp, const char *path, struct hug_error *err);

/* Makes renames in dir durable; failures are ignored (some file systems
 * refuse fsync on directories). */
void fs_sync_dir(const char *dir);

/* mkdir -p: creates path and every missing parent. 0 or -1 with err. */
int fs_make_dirs(const char *path, struct hug_error *err);

/* rm -rf of `path` (symbolic links are removed, never followed). A missing
 * path is fine. 0, or -1 with err naming the entry that could not go. */
int fs_remove_tree(const char *path, struct hug_error *err);

/* Removes the old contents that fs_replace_dir moved to `path`. */
typedef int (*fs_remove_fn)(const char *path, struct hug_error *err);

/* Puts the complete directory `tmp` (a sibling of `dir`, already written
 * and fsynced by the caller) in place of `dir`, then removes the old
 * contents with remove_old (NULL: fs_remove_tree):
 *  - `dir` absent: rename(tmp, dir).
 *  - `dir` present: renameat2(RENAME_EXCHANGE) swaps the two names in one
 *    step, so `dir` always names either the complete old or the complete
 *    new directory; the old one, now at `tmp`, is then removed.
 *  - the file system refuses the exchange (EINVAL, ENOSYS, ENOTSUP): `dir`
 *    is renamed to `old` (hug_malloc'd name: dir + ".old"), tmp to dir,
 *    then `old` is removed. A crash between those two renames leaves `dir`
 *    missing and the complete old directory at dir.old (never a half one).
 * The parent directory is fsynced after the renames. When remove_old fails
 * the new directory is already in place; the error names what was left.
 * Test hook: with HUG_TEST_REPLACE_STOP=after_exchange in the environment
 * it returns 0 right after the exchange, leaving the old directory at tmp
 * (what a crash at that point leaves). 0, or -1 with err. */
int fs_replace_dir(const char *tmp, const char *dir, fs_remove_fn remove_old,
		   struct hug_error *err);

#endif
