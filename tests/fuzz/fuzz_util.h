/* fuzz_util.h: helpers shared by the libFuzzer harnesses of tests/fuzz/:
 * a file in memory (/dev/shm) that file-reading entry points open by path,
 * rewritten for each input. (A memfd's /proc/self/fd path does not do:
 * HDF5 resolves the real path, which a memfd lacks.) */
#ifndef HUG_FUZZ_UTIL_H
#define HUG_FUZZ_UTIL_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_path[64];

static void fuzz_file_remove(void)
{
	unlink(fuzz_path);
}

/* Replaces the contents of this process's scratch file
 * (/dev/shm/hug-fuzz-<pid>, or under /tmp without /dev/shm; removed at
 * exit) with data[0..size) and returns its path. Aborts if the file cannot
 * be created or written. */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
	static int fd = -1;
	if (fd < 0) {
		const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		snprintf(fuzz_path, sizeof fuzz_path, "%s/hug-fuzz-%d", dir, (int)getpid());
		fd = open(fuzz_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0) {
			perror(fuzz_path);
			abort();
		}
		atexit(fuzz_file_remove);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) {
		perror(fuzz_path);
		abort();
	}
	return fuzz_path;
}

/* A NUL-terminated heap copy of data[0..size) (free with free). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
