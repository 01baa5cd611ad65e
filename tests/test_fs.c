/* test_fs.c: the atomic file write of base/fs.h and its pieces: a write
 * that fails at the rename leaves no temporary file and the old contents;
 * fs_commit publishes a file written (and closed) by someone else;
 * fs_ends_with, fs_exists_in. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "harness.h"

TEST(fs_write_atomic_failure_leaves_no_temporary_file)
{
	char root[] = "/tmp/hug-fs-XXXXXX";
	REQUIRE(mkdtemp(root));
	struct hug_error err = { 0 };
	/* the target is a non-empty directory: the rename fails */
	char *path = fs_join(root, "f"), *tmp = fs_tmp_name(path);
	char *inner = fs_join(path, "x");
	REQUIRE(mkdir(path, 0755) == 0);
	test_write_file(inner, "keep");
	CHECK(fs_write_atomic(path, "new", 3, &err) == -1);
	CHECK(strstr(err.msg, "cannot rename") && strstr(err.msg, "f.tmp"));
	CHECK(!fs_exists(tmp));
	CHECK(fs_is_dir(path) && fs_exists(inner));
	/* the directory does not exist: the error names the temporary file */
	char *missing = fs_join(root, "no/such/f");
	err = (struct hug_error){ 0 };
	CHECK(fs_write_atomic(missing, "x", 1, &err) == -1);
	CHECK(strstr(err.msg, "no/such/f.tmp: cannot create") != NULL);
	REQUIRE(fs_remove_tree(root, &err) == 0);
	hug_free(missing);
	hug_free(inner);
	hug_free(tmp);
	hug_free(path);
}

TEST(fs_commit_publishes_a_closed_file_and_removes_it_on_failure)
{
	char root[] = "/tmp/hug-fs-XXXXXX";
	REQUIRE(mkdtemp(root));
	struct hug_error err = { 0 };
	char *path = fs_join(root, "f"), *tmp = fs_tmp_name(path);
	test_write_file(path, "old");
	test_write_file(tmp, "new");
	CHECK(fs_commit(-1, tmp, path, &err) == 0);
	size_t n = 0;
	char *got = test_read_file(path, &n);
	CHECK(got && n == 3 && !memcmp(got, "new", 3) && !fs_exists(tmp));
	hug_free(got);
	/* streamed through an open fd, then a rename that fails */
	int fd = fs_create(tmp, &err);
	REQUIRE(fd >= 0);
	CHECK(fs_write_all(fd, tmp, "abc", 3, &err) == 0);
	char *sub = fs_join(root, "d"), *inner = fs_join(sub, "x");
	REQUIRE(mkdir(sub, 0755) == 0);
	test_write_file(inner, "");
	CHECK(fs_commit(fd, tmp, sub, &err) == -1 && strstr(err.msg, "cannot rename"));
	CHECK(!fs_exists(tmp) && fs_is_dir(sub));
	/* nothing to publish */
	err = (struct hug_error){ 0 };
	CHECK(fs_commit(-1, tmp, path, &err) == -1 && strstr(err.msg, "f.tmp: fsync failed"));
	REQUIRE(fs_remove_tree(root, &err) == 0);
	hug_free(inner);
	hug_free(sub);
	hug_free(tmp);
	hug_free(path);
}

TEST(fs_ends_with_matches_whole_suffixes_only)
{
	CHECK(fs_ends_with("shard-00001.h5", ".h5"));
	CHECK(fs_ends_with("config.json.tmp", ".tmp"));
	CHECK(fs_ends_with(".h5", ".h5"));
	CHECK(fs_ends_with("x", ""));
	CHECK(!fs_ends_with("h5", ".h5"));
	CHECK(!fs_ends_with("data.jsonl", ".json"));
	CHECK(!fs_ends_with("", ".tmp"));
}

TEST(fs_exists_in_looks_in_the_directory)
{
	char root[] = "/tmp/hug-fs-XXXXXX";
	REQUIRE(mkdtemp(root));
	char *p = fs_join(root, "f");
	test_write_file(p, "x");
	CHECK(fs_exists_in(root, "f"));
	CHECK(!fs_exists_in(root, "g"));
	CHECK(!fs_exists_in("/nonexistent-hug-dir", "f"));
	unlink(p);
	rmdir(root);
	hug_free(p);
}
