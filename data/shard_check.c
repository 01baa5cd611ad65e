/* shard_check.c: the defences the shard reader puts in front of libhdf5,
 * which trusts the sizes and addresses it finds in a file: a superblock
 * check done by hand before H5Fopen, and the probe that runs the whole
 * validation of a set of files in one forked child with a time bound per
 * file, so a file that crashes or hangs libhdf5 costs an error message,
 * not the process. */
#include "shard_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const unsigned char h5_sig[8] = { 0x89, 'H', 'D', 'F', '\r', '\n',
					 0x1a, '\n' };

static uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int shard_h5_check_superblock(const char *path, int64_t *file_size,
			      struct hug_error *err)
{
	unsigned char b[96];
	struct stat st;
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return hug_error_set(err, "%s: cannot open: %s", path,
				     strerror(errno));
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(fp);
		return hug_error_set(err, "%s: not a regular file, expected a "
				     "shard file", path);
	}
	*file_size = (int64_t)st.st_size;
	/* The superblock sits at 0, 512, 1024, 2048, ... (after a user
	 * block); look no further than the file. */
	int64_t at = -1;
	for (int64_t o = 0; o + (int64_t)sizeof(b) <= st.st_size;
	     o = o ? o * 2 : 512) {
		if (fseeko(fp, o, SEEK_SET) != 0 ||
		    fread(b, 1, sizeof(b), fp) != sizeof(b))
			break;
		if (memcmp(b, h5_sig, 8) == 0) {
			at = o;
			break;
		}
	}
	fclose(fp);
	if (at < 0)
		return hug_error_set(err, "%s: not an HDF5 file (no HDF5 "
				     "signature; a shard must be HDF5)", path);
	int ver = b[8], so, sl, base;
	if (ver == 0 || ver == 1) {
		so = b[13];
		sl = b[14];
		base = ver == 0 ? 24 : 28;
	} else if (ver == 2 || ver == 3) {
		so = b[9];
		sl = b[10];
		base = 12;
	} else {
		return hug_error_set(err, "%s: damaged HDF5 file: superblock "
				     "version %d, expected 0 to 3", path, ver);
	}
	if ((so != 4 && so != 8) || (sl != 4 && sl != 8))
		return hug_error_set(err, "%s: damaged HDF5 file: superblock "
				     "gives %d-byte offsets and %d-byte lengths, "
				     "expected 4 or 8", path, so, sl);
	/* Base address, then (v0/1: free space, EOF; v2/3: extension, EOF). */
	uint64_t base_addr = get_le(b + base, so);
	uint64_t eof = get_le(b + base + 2 * so, so);
	if (base_addr > (uint64_t)st.st_size ||
	    eof > (uint64_t)st.st_size - base_addr)
		return hug_error_set(err, "%s: damaged or truncated HDF5 file: "
				     "the superblock says it ends at byte %llu "
				     "(base %llu), the file has %lld bytes",
				     path, (unsigned long long)eof,
				     (unsigned long long)base_addr,
				     (long long)st.st_size);
	return 0;
}

/* Seconds the probe may take: HUG_SHARD_CHECK_SECONDS, default 10; 0
 * turns the probe off (files trusted, e.g. shards this hug wrote). */
static double probe_limit(void)
{
	const char *s = getenv("HUG_SHARD_CHECK_SECONDS");
	char *end;
	double v = s ? strtod(s, &end) : -1;
	if (s && end != s && v == 0)
		return 0;
	return v > 0 ? v : 10.0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int64_t probe_count;

int64_t shard_probe_count(void)
{
	return __atomic_load_n(&probe_count, __ATOMIC_RELAXED);
}

/* What the parent has read of the child's reports: one NUL-terminated
 * record per file ("" when it passed, else the message). */
struct probe_reports {
	int done;                    /* records complete */
	char first_bad[HUG_ERROR_MAX]; /* the failing file's message */
	bool failed;                 /* a record held a message */
	size_t cur_len;              /* bytes of the record being read */
};

/* Takes k bytes of the child's output. */
static void probe_take(struct probe_reports *p, const char *buf, size_t k)
{
	for (size_t i = 0; i < k && !p->failed; i++) {
		if (buf[i] == '\0') {
			if (p->cur_len > 0)
				p->failed = true;
			else
				p->done++;
			p->cur_len = 0;
		} else if (p->cur_len + 1 < sizeof(p->first_bad)) {
			p->first_bad[p->cur_len++] = buf[i];
			p->first_bad[p->cur_len] = '\0';
		}
	}
}

/* Set by a sanitizer runtime when one is linked (a fuzzing or sanitizer
 * build), NULL otherwise. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

/* The child: checks files 0, 1, ... in order and reports each; stops at
 * the first that fails. */
static void probe_child(int fd, int n, int (*fn)(void *ctx, int i, struct hug_error *err),
			void *ctx)
{
	/* What a crash prints (a sanitizer's report, libhdf5's messages) is
	 * noise to the user: the parent reports it. */
	int null = open("/dev/null", O_WRONLY);
	if (null >= 0)
		dup2(null, 2);
	/* A crash here is the file's doing, reported by the parent: die of the
	 * signal, without the handlers the process may have installed (a
	 * fuzzer's would record the input as a finding of its own). */
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGTRAP, SIGSYS };
	for (size_t k = 0; k < sizeof(fatal) / sizeof(fatal[0]); k++)
		signal(fatal[k], SIG_DFL);
	if (__sanitizer_set_death_callback) /* libhdf5 errors a sanitizer sees, too */
		__sanitizer_set_death_callback(NULL);
	for (int i = 0; i < n; i++) {
		struct hug_error e = { 0 };
		int rc = fn(ctx, i, &e);
		const char *msg = rc == 0 ? "" : (e.set && e.msg[0] ? e.msg : "failed");
		size_t len = strlen(msg) + 1;
		if (write(fd, msg, len) != (ssize_t)len)
			_exit(1);
		if (rc != 0)
			break;
	}
	_exit(0);
}

int shard_h5_probe(const char *const *paths, int n,
		   int (*fn)(void *ctx, int i, struct hug_error *err), void *ctx,
		   struct hug_error *err)
{
	int fds[2];
	double limit = probe_limit();
	if (limit == 0 || n <= 0)
		return 0;
	if (pipe(fds) != 0)
		return hug_error_set(err, "%s: cannot check the file: pipe: %s",
				     paths[0], strerror(errno));
	fflush(NULL);
	__atomic_add_fetch(&probe_count, 1, __ATOMIC_RELAXED);
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return hug_error_set(err, "%s: cannot check the file: fork: %s",
				     paths[0], strerror(errno));
	}
	if (pid == 0) {
		close(fds[0]);
		probe_child(fds[1], n, fn, ctx);
	}
	close(fds[1]);
	/* The time bound is per file: it restarts at each file's report. */
	struct probe_reports rep = { 0 };
	double t0 = now_s();
	bool timed_out = false, eof = false;
	while (!eof && !rep.failed && rep.done < n) {
		double left = limit - (now_s() - t0);
		if (left <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		int k = poll(&p, 1, (int)(left * 1000) + 1);
		if (k <= 0)
			continue; /* EINTR or no data yet: the bound is checked above */
		char buf[4096];
		ssize_t got = read(fds[0], buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			eof = true;
			continue;
		}
		int before = rep.done;
		probe_take(&rep, buf, (size_t)got);
		if (rep.done > before)
			t0 = now_s();
	}
	close(fds[0]);
	if (timed_out || rep.failed || rep.done < n)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rep.failed)
		return hug_error_set(err, "%s", rep.first_bad);
	if (rep.done == n)
		return 0;
	const char *path = paths[rep.done];
	if (timed_out)
		return hug_error_set(err, "%s: damaged HDF5 file: the HDF5 "
				     "library did not finish reading it in %g s "
				     "(a loop in its structure? the bound is "
				     "HUG_SHARD_CHECK_SECONDS)", path, limit);
	if (WIFSIGNALED(status))
		return hug_error_set(err, "%s: damaged HDF5 file: the HDF5 "
				     "library crashed reading it (signal %d)",
				     path, WTERMSIG(status));
	return hug_error_set(err, "%s: damaged HDF5 file: checking it "
			     "failed (exit status %d)", path,
			     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
