/* test_weights_release.c: loading weights drops each tensor's pages of the
 * mapped file once converted (st_tensor_release, io/hf_weights_load.c), so
 * a load never holds the file and the copy whole at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../autograd/arena.h"
#include "../autograd/tensor.h"
#include "../io/safetensors.h"
#include "harness.h"

/* This process's file-backed resident bytes (RssFile), or -1. */
static long long rss_file(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "RssFile: %lld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

TEST(weights_release_drops_the_mapped_pages)
{
	if (rss_file() < 0)
		SKIP("no RssFile in /proc/self/status");
	char path[] = "/tmp/hug-release-XXXXXX";
	int fd = mkstemp(path);
	REQUIRE(fd >= 0);
	close(fd);
	struct arena a;
	arena_init(&a, "test", 0, NULL);
	enum { N = 4, ROWS = 1024, COLS = 512 }; /* 4 tensors of 2 MiB */
	struct st_writer *w = st_writer_new();
	struct tensor *t[N], *back[N];
	char names[N][16];
	for (int i = 0; i < N; i++) {
		t[i] = tensor_new(&a, DT_F32, TENSOR_SHAPE(ROWS, COLS));
		back[i] = tensor_new(&a, DT_F32, TENSOR_SHAPE(ROWS, COLS));
		float *v = t[i]->data;
		for (int k = 0; k < ROWS * COLS; k++)
			v[k] = (float)(i * 7 + k % 13);
		snprintf(names[i], sizeof(names[i]), "w%d", i);
		st_writer_add(w, names[i], t[i], DT_F32);
	}
	struct hug_error err = { 0 };
	REQUIRE(st_writer_write(w, path, &err) == 0);
	st_writer_free(w);
	struct st_file f;
	REQUIRE(st_open(&f, path, &err) == 0);
	long long before = rss_file();
	for (int i = 0; i < N; i++)
		CHECK(st_tensor_load(st_find(&f, names[i]), back[i], &err) == 0);
	long long loaded = rss_file();
	for (int i = 0; i < N; i++)
		st_tensor_release(&f, st_find(&f, names[i]));
	long long released = rss_file();
	printf("  file pages resident: %lld KiB before, %lld after loading, %lld after release\n",
	       before / 1024, loaded / 1024, released / 1024);
	/* the loads fault the file in (8 MiB); the release gives it back */
	CHECK(loaded - before > 7 * 1024 * 1024);
	CHECK(released - before < 1024 * 1024);
	/* released pages read again from the file: the values are intact */
	CHECK(st_tensor_load(st_find(&f, names[2]), back[0], &err) == 0);
	CHECK(memcmp(back[0]->data, t[2]->data, tensor_nbytes(t[2])) == 0);
	CHECK(memcmp(back[3]->data, t[3]->data, tensor_nbytes(t[3])) == 0);
	st_close(&f);
	arena_free(&a);
	unlink(path);
}
