/* sha256.h: SHA-256 (FIPS 180-4), for stable content identifiers such as
 * the tokenizer hash stored in token shards. Incremental: init, update any
 * number of times, final. */
#ifndef HUG_BASE_SHA256_H
#define HUG_BASE_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct sha256 {
	uint32_t h[8];
	uint64_t n_bytes;      /* total bytes fed so far */
	uint8_t block[64];     /* pending partial block */
	size_t fill;           /* bytes used in block */
};

/* Starts a new digest in `s`. */
void sha256_init(struct sha256 *s);

/* Feeds `len` bytes at `data` (NULL allowed when len is 0). */
void sha256_update(struct sha256 *s, const void *data, size_t len);

/* Finishes the digest into out[32]; `s` must be re-initialised to reuse. */
void sha256_final(struct sha256 *s, uint8_t out[32]);

/* The digest (64 hex digits into hex[65]) and size (*bytes, may be NULL)
 * of the file at `path`, read in fixed 1 MiB pieces (memory does not grow
 * with the file). 0, or -1 with err naming the file. */
int sha256_file(const char *path, char hex[65], uint64_t *bytes, struct hug_error *err);

/* Lets the digest use the CPU's SHA instructions (x86 SHA-NI) when `on`
 * and the CPU has them (the default), or only portable C; the result is
 * the same bits either way. Returns whether the instructions are now in
 * use. For tests and benchmarks; not thread-safe against running hashes. */
bool sha256_use_cpu_extensions(bool on);

/* Writes the 64 lowercase hex digits of `digest` and a NUL into hex[65]. */
void sha256_hex(const uint8_t digest[32], char hex[65]);

#endif
