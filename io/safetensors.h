/* safetensors.h: reading and writing the safetensors format (a u64 LE header
 * length N, N bytes of JSON header, then the tensor bytes). The reader maps
 * the file read-only and validates every entry, offset and size against the
 * file length before handing out pointers into it; the writer packs host
 * tensors without gaps and replaces the destination atomically. */
#ifndef HUG_IO_SAFETENSORS_H
#define HUG_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../autograd/dtype.h"
#include "../autograd/tensor.h"
#include "../base/error.h"

#define ST_MAX_DIMS 8
/* Headers longer than this are refused as corrupt. */
#define ST_MAX_HEADER (100u * 1000u * 1000u)

struct st_tensor {
	char *name;
	enum dtype dtype;
	int ndim;
	int64_t shape[ST_MAX_DIMS];
	const void *data;   /* points into the mapping; may be unaligned */
	size_t nbytes;
	uint64_t begin;     /* data_offsets[0], relative to the byte buffer */
	const char *path;   /* the file's path, for messages (may be NULL) */
};

struct st_file {
	char *path;
	void *map;           /* mmap of the whole file */
	size_t map_size;
	int n;               /* number of tensors */
	struct st_tensor *tensors; /* sorted by data offset */
	int n_meta;          /* __metadata__, in header order */
	char **meta_keys;
	char **meta_values;
};

/* Opens `path`, maps it read-only and validates the header completely (see
 * safetensors.c for the list of checks). Returns 0 with *f filled, or -1
 * with `err` naming the file and the problem and *f left empty (st_close on
 * it is harmless). Close with st_close. */
int st_open(struct st_file *f, const char *path, struct hug_error *err);
/* st_open of dir/name. */
int st_open_in(struct st_file *f, const char *dir, const char *name, struct hug_error *err);

/* Unmaps the file and frees everything st_open allocated; pointers into the
 * file (st_tensor.data, names) are invalid afterwards. Idempotent. */
void st_close(struct st_file *f);

/* Drops the resident pages of tensor t's bytes in f's mapping (t one of
 * f's tensors, already copied out): the mapping stays valid (a later read
 * faults the pages in again from the file), but a loader that releases
 * each tensor after converting it never holds the file and the copy whole
 * at once. */
void st_tensor_release(const struct st_file *f, const struct st_tensor *t);

/* The tensor called `name`, or NULL. Linear in the number of tensors. */
const struct st_tensor *st_find(const struct st_file *f, const char *name);

/* The __metadata__ value for `key`, or NULL. */
const char *st_meta_get(const struct st_file *f, const char *key);

/* Writes "[2, 3] F32"-style text for a file tensor into buf (always
 * NUL-terminated); returns buf. */
char *st_tensor_describe(const struct st_tensor *t, char *buf, size_t n);

/* Copies src into tensor dst (any strides on the host; contiguous on a
 * device, where the values go through a host copy), converting between
 * the float dtypes f32, f64, bf16 and f16 as needed (round to nearest
 * even); i32 and u8 load only into the same dtype. Returns 0, or -1 with
 * `err` naming the tensor (and file) when the shapes differ (both are
 * named) or the dtypes cannot convert. */
int st_tensor_load(const struct st_tensor *src, struct tensor *dst,
		   struct hug_error *err);

/* Writer: collects tensors by reference and writes them on st_writer_write. */
struct st_writer;

/* A new, empty writer (its metadata holds "format": "pt"). */
struct st_writer *st_writer_new(void);

/* Adds tensor t under `name` (copied), to be stored as dtype `disk`; when
 * disk differs from t->dtype both must be float dtypes (anything else is a
 * bug: panic). A host tensor (any strides) is read at st_writer_write, so
 * it and its storage must stay valid and unchanged until then; a device
 * tensor (contiguous) is copied to the host now. Duplicate names are
 * reported by st_writer_write. */
void st_writer_add(struct st_writer *w, const char *name,
		   const struct tensor *t, enum dtype disk);

/* Sets __metadata__[key] = value (both copied), replacing an earlier value
 * of the same key. "format" is always "pt": setting it to anything else is
 * a bug (panic). */
void st_writer_set_metadata(struct st_writer *w, const char *key,
			    const char *value);

/* Writes the collected tensors to `path` atomically: to "<path>.tmp",
 * fsync, rename over path, fsync the directory. The header is compact JSON,
 * "__metadata__" first, then the tensors in the order added, padded with
 * spaces to a multiple of 8 bytes; the tensor bytes are packed with no
 * gaps in the same order. Returns 0, or -1 with `err` naming the file and
 * the failing system call (the temporary file is removed); the writer may
 * be written again or freed either way. */
int st_writer_write(struct st_writer *w, const char *path,
		    struct hug_error *err);

/* Frees the writer (not the tensors it refers to); NULL is a no-op. */
void st_writer_free(struct st_writer *w);

/* The safetensors name ("F32", "BF16", ...) of a hug dtype. */
const char *st_dtype_name(enum dtype dt);

#endif
