/* shard_internal.h: what the shard writer and reader share and nothing else
 * may use: the process-wide HDF5 lock, HDF5 error text, attribute helpers,
 * the chunk sizes and the shard structs themselves. */
#ifndef HUG_DATA_SHARD_INTERNAL_H
#define HUG_DATA_SHARD_INTERNAL_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard.h"

/* Elements per chunk of tokens / loss_mask and of doc_offsets. */
#define SHARD_TOKEN_CHUNK ((hsize_t)1 << 16)
#define SHARD_DOC_CHUNK ((hsize_t)1 << 13)

struct shard_writer {
	char *path;
	char *tmp_path;          /* "<path>.tmp", where the data goes */
	struct shard_meta meta;
	bool u16;                /* tokens stored as uint16 */
	bool with_mask;
	hid_t file, tokens, mask, offsets;
	int64_t n_tokens;        /* appended, buffered or not */
	int64_t n_docs;
	int64_t written_tokens;  /* already in the file */
	int64_t written_offsets; /* doc_offsets entries already in the file */
	void *tok_buf;           /* (SHARD_TOKEN_CHUNK) u16 or i32 */
	uint8_t *mask_buf;       /* (SHARD_TOKEN_CHUNK) */
	int64_t *off_buf;        /* (SHARD_DOC_CHUNK) */
	int64_t tok_fill, off_fill;
};

struct shard_reader {
	char *path;
	struct shard_meta meta;
	int64_t n_tokens, n_docs;
	int64_t file_size;       /* bytes, bounds what the file may claim */
	bool u16;
	hid_t file, tokens, mask, offsets; /* mask is -1 without a loss mask */
	uint16_t *scratch;       /* u16 staging for reads, grown on demand */
	int64_t scratch_n;
};

/* Takes the process-wide lock around HDF5 and turns off HDF5's automatic
 * error printing for the calling thread. Pair with shard_h5_unlock. */
void shard_h5_lock(void);
void shard_h5_unlock(void);

/* Writes the innermost message of the calling thread's HDF5 error stack
 * (e.g. "truncated file: eof = 1024, ...") into buf, or "" when the stack
 * is empty, and clears the stack. Returns buf. */
char *shard_h5_detail(char *buf, size_t n);

/* Saves the cause on the current HDF5 error stack for the next
 * shard_h5_fail in this lock section; call it right where a call failed,
 * before cleanup calls (which clear the stack). */
void shard_h5_capture(void);

/* Records "<path>: <what> (HDF5: <detail>)" in err, the detail from the
 * error stack or else from shard_h5_capture; returns -1. */
int shard_h5_fail(struct hug_error *err, const char *path, const char *what);

/* Reads (write false) or writes [start, start + n) of 1-D dataset ds as
 * memory type mt from or into buf. 0, or -1 after shard_h5_capture. */
int shard_h5_range(hid_t ds, hid_t mt, int64_t start, int64_t n, void *buf, bool write);

/* Scalar attributes on `loc`. Writers return 0 or -1 (HDF5 failure, error
 * stack left for shard_h5_fail). */
int shard_attr_write_int(hid_t loc, const char *name, hid_t file_type,
			 int64_t v);
int shard_attr_write_str(hid_t loc, const char *name, const char *s);

/* Reads attribute `name` of `loc` as an int64 (any HDF5 integer type, one
 * element). Returns 0, or -1 with err "<path>: attribute <name>: ...". */
int shard_attr_read_int(hid_t loc, const char *path, const char *name,
			int64_t *v, struct hug_error *err);

/* Reads string attribute `name` (fixed or variable length) into buf,
 * which must hold it with its NUL (else an error). Returns 0 or -1. */
int shard_attr_read_str(hid_t loc, const char *path, const char *name,
			char *buf, size_t n, struct hug_error *err);

/* "uint16", "int64", "float32", "string", ... for messages. */
const char *shard_type_name(hid_t type, char *buf, size_t n);

/* Closes the datasets and the file of a shard (ids < 0 are skipped) and
 * sets every id to -1. */
void shard_close_ids(hid_t *file, hid_t *tokens, hid_t *offsets, hid_t *mask);

/* Checks by hand, before libhdf5 sees it, that `path` is a regular file
 * with an HDF5 superblock (at 0 or a power-of-two offset from 512) of
 * version 0..3, 4- or 8-byte offsets and lengths, and an end-of-file
 * address within the file. Sets *file_size. 0, or -1 with err naming the
 * file and what is wrong. (shard_check.c) */
int shard_h5_check_superblock(const char *path, int64_t *file_size,
			      struct hug_error *err);

/* Runs fn(ctx, i, err) for i = 0 .. n-1 (file i is paths[i]) in one
 * forked child (with the caller's HDF5 lock state), stopping at the first
 * failure, and waits at most HUG_SHARD_CHECK_SECONDS (default 10) for each
 * file. Returns 0 when every call returned 0; else -1 with err holding
 * fn's message, or "<path>: damaged HDF5 file: ..." naming the file that
 * crashed the child or ran out of time (the child is then killed). Costs
 * one fork per call, whatever n: check a set of files in one call.
 * HUG_SHARD_CHECK_SECONDS=0 skips the probe (fn is not run: returns 0). */
int shard_h5_probe(const char *const *paths, int n,
		   int (*fn)(void *ctx, int i, struct hug_error *err), void *ctx,
		   struct hug_error *err);

#endif
