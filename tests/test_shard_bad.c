/* test_shard_bad.c: every damaged shard in tests/fixtures/shards-bad/ (fuzz
 * findings that once crashed or hung libhdf5 under the shard reader) is
 * refused with a clean error naming the file. Each file is opened in a
 * forked child with a time bound, so a crash or hang fails this test
 * instead of killing the test runner. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../data/shard.h"
#include "harness.h"

#define BAD_DIR "tests/fixtures/shards-bad"

/* In a child: opens `path` (and reads it all if that succeeds) and writes
 * "ERR <message>" or "OK" to fd. */
static void child_read(const char *path, int fd)
{
	struct hug_error err = { 0 };
	struct shard_reader *r;
	char out[HUG_ERROR_MAX + 8];
	int rc = shard_reader_open(path, &r, &err);
	if (rc == 0) {
		int32_t tok[256];
		uint8_t mask[256];
		int64_t n = shard_reader_tokens(r);
		for (int64_t at = 0; at < n && rc == 0; at += 256)
			rc = shard_reader_read(r, at, n - at < 256 ? n - at : 256,
					       tok, mask, &err);
		shard_reader_close(r);
	}
	snprintf(out, sizeof(out), "%s%s", rc == 0 ? "OK" : "ERR ",
		 rc == 0 ? "" : err.msg);
	ssize_t w = write(fd, out, strlen(out) + 1);
	_exit(w > 0 ? 0 : 1);
}

/* Runs child_read on `path` with a 60 s bound; returns the child's status
 * (-1 when it had to be killed) and its text in msg. */
static int run_bounded(const char *path, char *msg, size_t n)
{
	int fds[2];
	if (pipe(fds) != 0)
		return -2;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		child_read(path, fds[1]);
	}
	close(fds[1]);
	size_t got = 0;
	int waited_ms = 0, st = 0;
	msg[0] = '\0';
	while (got + 1 < n && waited_ms < 60000) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		int k = poll(&p, 1, 200);
		waited_ms += 200;
		if (k <= 0)
			continue;
		ssize_t r = read(fds[0], msg + got, n - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	msg[got] = '\0';
	close(fds[0]);
	if (waited_ms >= 60000)
		kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return waited_ms >= 60000 ? -1 : st;
}

TEST(shard_bad_fixtures_give_clean_errors)
{
	DIR *d = opendir(BAD_DIR);
	if (!d)
		SKIP(BAD_DIR " missing");
	/* The hang reproducers stop at the reader's probe time bound: keep it
	 * short here (the default is for slow file systems). */
	const char *old = getenv("HUG_SHARD_CHECK_SECONDS");
	char *saved = old ? strdup(old) : NULL;
	setenv("HUG_SHARD_CHECK_SECONDS", "2", 1);
	int files = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len < 4 || strcmp(e->d_name + len - 3, ".h5") != 0)
			continue;
		char path[512], msg[HUG_ERROR_MAX + 8];
		snprintf(path, sizeof(path), BAD_DIR "/%s", e->d_name);
		int st = run_bounded(path, msg, sizeof(msg));
		files++;
		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "    %s: %s\n", path,
				st == -1 ? "hung (killed after 60 s)"
				: WIFSIGNALED(st) ? strsignal(WTERMSIG(st))
						  : "child failed");
			CHECK(!"the shard reader crashed or hung");
			continue;
		}
		if (strncmp(msg, "ERR ", 4) != 0 || !strstr(msg, path)) {
			fprintf(stderr, "    %s: got \"%s\"\n", path, msg);
			CHECK(!"expected an error naming the file");
		}
	}
	closedir(d);
	if (saved) {
		setenv("HUG_SHARD_CHECK_SECONDS", saved, 1);
		free(saved);
	} else {
		unsetenv("HUG_SHARD_CHECK_SECONDS");
	}
	CHECK(files >= 5);
}
