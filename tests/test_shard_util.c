/* test_shard_util.c: scratch directories and shard writing for the shard
 * and loader tests (see test_shard_util.h). */
#include "test_shard_util.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "harness.h"

void tsu_tmp_dir(char *dir, size_t n, const char *tag)
{
	const char *base = getenv("TMPDIR");
	snprintf(dir, n, "%s/hug_%s_XXXXXX", base && *base ? base : "/tmp",
		 tag);
	if (!mkdtemp(dir))
		test_fail_at(__FILE__, __LINE__, "mkdtemp %s failed", dir);
}

void tsu_tmp_dir_remove(const char *dir)
{
	char p[1024];
	struct stat st;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			tsu_tmp_dir_remove(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

struct shard_meta tsu_meta(int64_t vocab, const char *hash)
{
	struct shard_meta m = { .vocab_size = vocab, .eos_id = 0 };
	snprintf(m.tokenizer_hash, sizeof(m.tokenizer_hash), "%s", hash);
	snprintf(m.source, sizeof(m.source), "test");
	return m;
}

int tsu_write_shard(const char *path, const struct shard_meta *meta,
		    const int32_t *tokens, const uint8_t *mask, int64_t n,
		    const int64_t *doc_len, int n_docs)
{
	struct hug_error err = { 0 };
	struct shard_writer *w;
	int64_t at = 0;
	if (shard_writer_open(&w, path, meta, mask != NULL, &err) < 0)
		goto fail;
	for (int d = 0; d < n_docs; d++) {
		if (shard_writer_append(w, tokens + at, mask ? mask + at : NULL,
					doc_len[d], &err) < 0) {
			shard_writer_discard(w);
			goto fail;
		}
		at += doc_len[d];
	}
	if (at != n) {
		shard_writer_discard(w);
		test_fail_at(__FILE__, __LINE__, "documents sum to %lld, not "
			     "%lld", (long long)at, (long long)n);
		return -1;
	}
	if (shard_writer_close(w, &err) < 0)
		goto fail;
	return 0;
fail:
	test_fail_at(__FILE__, __LINE__, "writing %s: %s", path, err.msg);
	return -1;
}

int tsu_write_counting(const char *path, const struct shard_meta *meta,
		       int64_t base, int64_t n, int64_t doc, bool with_mask)
{
	int32_t *tok = hug_malloc((size_t)(n ? n : 1) * sizeof(int32_t));
	uint8_t *mask = with_mask ? hug_malloc((size_t)(n ? n : 1)) : NULL;
	int n_docs = (int)((n + doc - 1) / doc);
	int64_t *len = hug_malloc((size_t)(n_docs ? n_docs : 1) * sizeof(int64_t));
	for (int64_t i = 0; i < n; i++) {
		tok[i] = (int32_t)((base + i) % meta->vocab_size);
		if (mask)
			mask[i] = (base + i) % 3 != 0;
	}
	for (int d = 0; d < n_docs; d++)
		len[d] = (d + 1) * doc <= n ? doc : n - d * doc;
	int rc = tsu_write_shard(path, meta, tok, mask, n, len, n_docs);
	hug_free(len);
	hug_free(mask);
	hug_free(tok);
	return rc;
}

bool tsu_has(const char *msg, ...)
{
	va_list ap;
	const char *want;
	bool ok = true;
	va_start(ap, msg);
	while ((want = va_arg(ap, const char *))) {
		if (!strstr(msg, want)) {
			fprintf(stderr, "    message \"%s\" lacks \"%s\"\n", msg,
				want);
			ok = false;
		}
	}
	va_end(ap);
	return ok;
}
