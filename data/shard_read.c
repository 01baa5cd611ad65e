/* shard_read.c: the shard reader. Opening checks everything that can be
 * checked without reading the tokens (attributes, dataset types and
 * lengths, every doc offset); reads check the ids and mask bytes they
 * return, so damage inside the data is reported instead of passed on. */
#include "shard_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/alloc.h"

/* The most entries of `elem` bytes a dataset in a file of `file_size`
 * bytes can hold: the file's size without filters, 1100 times that with
 * (deflate's best ratio is about 1032). Bounds what a damaged header can
 * make anyone allocate. */
static hsize_t max_elems(hid_t ds, size_t elem, int64_t file_size)
{
	hid_t dcpl = H5Dget_create_plist(ds);
	int nf = dcpl < 0 ? 1 : H5Pget_nfilters(dcpl);
	if (dcpl >= 0)
		H5Pclose(dcpl);
	hsize_t bytes = (hsize_t)(file_size > 0 ? file_size : 0);
	if (nf != 0)
		bytes *= 1100;
	return bytes / (elem ? elem : 1);
}

/* Opens 1-D dataset `name`, checks its type with `want` and returns it with
 * its length; -1 with err set otherwise. `optional` makes a missing dataset
 * return -1 with *len = -1 and no error. */
static hid_t open_1d(struct shard_reader *r, const char *name, bool optional,
		     bool (*want)(hid_t), const char *want_name, int64_t *len,
		     struct hug_error *err)
{
	char tn[64];
	*len = -1;
	htri_t exists = H5Lexists(r->file, name, H5P_DEFAULT);
	if (exists <= 0) {
		H5Eclear2(H5E_DEFAULT);
		if (optional)
			return -1;
		return hug_error_set(err, "%s: dataset %s is missing", r->path,
				     name);
	}
	/* No chunk cache: reads are random windows much smaller than a
	 * chunk, and without a cache HDF5 reads just the selected bytes of an
	 * unfiltered chunk instead of the whole chunk each time. */
	hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
	if (dapl >= 0)
		H5Pset_chunk_cache(dapl, 0, 0, 1.0);
	hid_t ds = H5Dopen2(r->file, name, dapl >= 0 ? dapl : H5P_DEFAULT);
	if (ds < 0) {
		snprintf(tn, sizeof(tn), "dataset %s cannot be opened", name);
		shard_h5_fail(err, r->path, tn);
	}
	if (dapl >= 0)
		H5Pclose(dapl);
	if (ds < 0)
		return -1;
	hid_t type = H5Dget_type(ds);
	hid_t space = H5Dget_space(ds);
	int rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
	hsize_t dim = 0;
	if (rank == 1)
		H5Sget_simple_extent_dims(space, &dim, NULL);
	bool ok = false;
	if (type < 0 || rank < 0)
		shard_h5_fail(err, r->path, "cannot read a dataset's header");
	else if (!want(type))
		hug_error_set(err, "%s: dataset %s: expected %s, found %s",
			      r->path, name, want_name,
			      shard_type_name(type, tn, sizeof(tn)));
	else if (rank != 1)
		hug_error_set(err, "%s: dataset %s: expected 1 dimension, "
			      "found %d", r->path, name, rank);
	else if (dim > max_elems(ds, H5Tget_size(type), r->file_size))
		hug_error_set(err, "%s: dataset %s claims %llu entries, more "
			      "than a file of %lld bytes can hold", r->path,
			      name, (unsigned long long)dim,
			      (long long)r->file_size);
	else
		ok = true;
	if (space >= 0)
		H5Sclose(space);
	if (type >= 0)
		H5Tclose(type);
	if (!ok) {
		H5Dclose(ds);
		return -1;
	}
	*len = (int64_t)dim;
	return ds;
}

static bool is_int(hid_t t, size_t size, bool is_signed)
{
	return H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == size &&
	       (H5Tget_sign(t) != H5T_SGN_NONE) == is_signed;
}

static bool want_tokens(hid_t t)
{
	return is_int(t, 2, false) || is_int(t, 4, true);
}

static bool want_offsets(hid_t t)
{
	return is_int(t, 8, true);
}

static bool want_mask(hid_t t)
{
	return H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1;
}

static int read_attrs(struct shard_reader *r, struct hug_error *err)
{
	struct shard_meta *m = &r->meta;
	char fmt[64];
	int64_t v, eos;
	if (shard_attr_read_str(r->file, r->path, "format", fmt, sizeof(fmt),
				err) < 0)
		return -1;
	if (strcmp(fmt, SHARD_FORMAT) != 0)
		return hug_error_set(err, "%s: attribute format is \"%s\", "
				     "expected \"%s\"", r->path, fmt,
				     SHARD_FORMAT);
	if (shard_attr_read_int(r->file, r->path, "format_version", &v,
				err) < 0)
		return -1;
	if (v != SHARD_FORMAT_VERSION)
		return hug_error_set(err, "%s: attribute format_version is "
				     "%lld, this hug reads version %d%s",
				     r->path, (long long)v,
				     SHARD_FORMAT_VERSION,
				     v > SHARD_FORMAT_VERSION ?
				     " (written by a newer hug?)" : "");
	if (shard_attr_read_int(r->file, r->path, "vocab_size",
				&m->vocab_size, err) < 0 ||
	    shard_attr_read_int(r->file, r->path, "eos_id", &eos, err) < 0 ||
	    shard_attr_read_str(r->file, r->path, "tokenizer_hash",
				m->tokenizer_hash, sizeof(m->tokenizer_hash),
				err) < 0 ||
	    shard_attr_read_str(r->file, r->path, "source", m->source,
				sizeof(m->source), err) < 0 ||
	    shard_attr_read_int(r->file, r->path, "n_tokens", &r->n_tokens,
				err) < 0 ||
	    shard_attr_read_int(r->file, r->path, "n_docs", &r->n_docs,
				err) < 0)
		return -1;
	if (m->vocab_size < 1 || m->vocab_size > INT32_MAX)
		return hug_error_set(err, "%s: attribute vocab_size is %lld, "
				     "expected 1 .. %d", r->path,
				     (long long)m->vocab_size, INT32_MAX);
	if (eos < -1 || eos >= m->vocab_size)
		return hug_error_set(err, "%s: attribute eos_id is %lld, "
				     "expected -1 or an id below vocab_size "
				     "%lld", r->path, (long long)eos,
				     (long long)m->vocab_size);
	m->eos_id = (int32_t)eos;
	if (r->n_tokens < 0 || r->n_docs < 0)
		return hug_error_set(err, "%s: attributes n_tokens %lld and "
				     "n_docs %lld must not be negative",
				     r->path, (long long)r->n_tokens,
				     (long long)r->n_docs);
	return 0;
}

static int offsets_read(struct shard_reader *r, int64_t first, int64_t n,
			int64_t *out, struct hug_error *err);

/* Checks doc_offsets in blocks: 0 first, non-decreasing, n_tokens last. */
static int check_offsets(struct shard_reader *r, struct hug_error *err)
{
	enum { BLOCK = 1 << 14 };
	int64_t *buf = hug_malloc(BLOCK * sizeof(int64_t));
	int64_t total = r->n_docs + 1, prev = 0;
	int rc = 0;
	for (int64_t at = 0; at < total && rc == 0; at += BLOCK) {
		int64_t n = total - at < BLOCK ? total - at : BLOCK;
		rc = offsets_read(r, at, n, buf, err);
		for (int64_t i = 0; i < n && rc == 0; i++) {
			int64_t v = buf[i], k = at + i;
			if (k == 0 && v != 0)
				rc = hug_error_set(err, "%s: dataset doc_offsets"
						   ": entry 0 is %lld, expected"
						   " 0", r->path, (long long)v);
			else if (v < prev)
				rc = hug_error_set(err, "%s: dataset doc_offsets"
						   " is not monotonic: entry "
						   "%lld is %lld, after %lld",
						   r->path, (long long)k,
						   (long long)v,
						   (long long)prev);
			prev = v;
		}
	}
	if (rc == 0 && prev != r->n_tokens)
		rc = hug_error_set(err, "%s: dataset doc_offsets ends at %lld, "
				   "expected n_tokens %lld", r->path,
				   (long long)prev, (long long)r->n_tokens);
	hug_free(buf);
	return rc;
}

static int check_lengths(struct shard_reader *r, int64_t n_tok,
			 int64_t n_off, int64_t n_mask, struct hug_error *err)
{
	if (n_tok != r->n_tokens)
		return hug_error_set(err, "%s: dataset tokens has %lld entries,"
				     " attribute n_tokens says %lld", r->path,
				     (long long)n_tok, (long long)r->n_tokens);
	if (n_off != r->n_docs + 1)
		return hug_error_set(err, "%s: dataset doc_offsets has %lld "
				     "entries, expected n_docs + 1 = %lld",
				     r->path, (long long)n_off,
				     (long long)r->n_docs + 1);
	if (r->mask >= 0 && n_mask != r->n_tokens)
		return hug_error_set(err, "%s: dataset loss_mask has %lld "
				     "entries, expected one per token (%lld)",
				     r->path, (long long)n_mask,
				     (long long)r->n_tokens);
	return 0;
}

/* Everything after H5Fopen; called with the lock held. */
static int validate(struct shard_reader *r, struct hug_error *err)
{
	int64_t n_tok, n_off, n_mask;
	if (read_attrs(r, err) < 0)
		return -1;
	r->tokens = open_1d(r, "tokens", false, want_tokens,
			    "uint16 or int32", &n_tok, err);
	if (r->tokens < 0)
		return -1;
	hid_t type = H5Dget_type(r->tokens);
	r->u16 = H5Tget_size(type) == 2;
	H5Tclose(type);
	r->offsets = open_1d(r, "doc_offsets", false, want_offsets, "int64",
			     &n_off, err);
	if (r->offsets < 0)
		return -1;
	r->mask = open_1d(r, "loss_mask", true, want_mask, "uint8", &n_mask,
			  err);
	if (r->mask < 0 && err && err->set)
		return -1;
	if (check_lengths(r, n_tok, n_off, n_mask, err) < 0)
		return -1;
	return check_offsets(r, err);
}

static void reader_close_ids(struct shard_reader *r)
{
	shard_close_ids(&r->file, &r->tokens, &r->offsets, &r->mask);
	H5Eclear2(H5E_DEFAULT);
}

/* Opens the file itself, telling "missing", "not HDF5" and "damaged"
 * apart. Called with the lock held. */
static int open_file(struct shard_reader *r, struct hug_error *err)
{
	struct stat st;
	FILE *fp = fopen(r->path, "rb");
	if (!fp)
		return hug_error_set(err, "%s: cannot open: %s", r->path,
				     strerror(errno));
	int dir = fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode);
	fclose(fp);
	if (dir)
		return hug_error_set(err, "%s: is a directory, expected a "
				     "shard file", r->path);
	int64_t size;
	if (shard_h5_check_superblock(r->path, &size, err) < 0)
		return -1;
	r->file_size = size;
	/* Readers take no file lock: many ranks open the same shards, and
	 * some cluster file systems refuse flock() (HDF5 then fails). */
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
#if H5_VERSION_GE(1, 10, 7)
	if (fapl >= 0)
		H5Pset_file_locking(fapl, false, true);
#endif
	r->file = H5Fopen(r->path, H5F_ACC_RDONLY,
			  fapl >= 0 ? fapl : H5P_DEFAULT);
	/* Report before H5Pclose: every API call clears the error stack. */
	int rc = r->file < 0 ? shard_h5_fail(err, r->path, "damaged or "
					     "truncated HDF5 file") : 0;
	if (fapl >= 0)
		H5Pclose(fapl);
	return rc;
}

/* The probe's child, file i of the readers in ctx: opens and validates as
 * the parent will, and also walks each dataset's chunk index (which later
 * reads go through); closes the file again, so a set of many files does
 * not pile up open descriptors. */
static int probe_open(void *ctx, int i, struct hug_error *err)
{
	struct shard_reader *r = ((struct shard_reader **)ctx)[i];
	int rc = open_file(r, err);
	if (rc == 0)
		rc = validate(r, err);
	hid_t sets[3] = { r->tokens, r->offsets, r->mask };
	for (int k = 0; k < 3 && rc == 0; k++) {
		hsize_t n;
		hid_t dcpl = sets[k] < 0 ? -1 : H5Dget_create_plist(sets[k]);
		hid_t fs = sets[k] < 0 ? -1 : H5Dget_space(sets[k]);
		if (dcpl >= 0 && fs >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED &&
		    H5Dget_num_chunks(sets[k], fs, &n) < 0)
			rc = shard_h5_fail(err, r->path, "a dataset's chunk "
					   "index cannot be read");
		if (fs >= 0)
			H5Sclose(fs);
		if (dcpl >= 0)
			H5Pclose(dcpl);
	}
	reader_close_ids(r);
	return rc;
}

int shard_readers_open(const char *const *paths, int n, struct shard_reader **out,
		       struct hug_error *err)
{
	struct hug_error local = { 0 };
	for (int i = 0; i < n; i++) {
		struct shard_reader *r = hug_calloc(1, sizeof(*r));
		r->path = hug_strdup(paths[i]);
		r->file = r->tokens = r->mask = r->offsets = -1;
		out[i] = r;
	}
	shard_h5_lock();
	/* libhdf5 trusts the file: a damaged one can crash or hang it. So the
	 * whole validation of every file runs first in one child process, and
	 * only files that passed there are opened here. validate() uses
	 * err->set to tell a missing optional dataset from a bad one, so each
	 * step works on a local error that starts empty. */
	int rc = shard_h5_probe(paths, n, probe_open, out, &local);
	for (int i = 0; i < n && rc == 0; i++) {
		rc = open_file(out[i], &local);
		if (rc == 0)
			rc = validate(out[i], &local);
	}
	if (rc < 0)
		for (int i = 0; i < n; i++)
			reader_close_ids(out[i]);
	shard_h5_unlock();
	if (rc < 0) {
		hug_error_set(err, "%s", local.msg);
		for (int i = 0; i < n; i++) {
			shard_reader_close(out[i]);
			out[i] = NULL;
		}
		return -1;
	}
	return 0;
}

int shard_reader_open(const char *path, struct shard_reader **rp,
		      struct hug_error *err)
{
	return shard_readers_open(&path, 1, rp, err);
}

const struct shard_meta *shard_reader_meta(const struct shard_reader *r)
{
	return &r->meta;
}

int64_t shard_reader_tokens(const struct shard_reader *r)
{
	return r->n_tokens;
}

int64_t shard_reader_docs(const struct shard_reader *r)
{
	return r->n_docs;
}

bool shard_reader_has_loss_mask(const struct shard_reader *r)
{
	return r->mask >= 0;
}

const char *shard_reader_path(const struct shard_reader *r)
{
	return r->path;
}

static int read_tokens(struct shard_reader *r, int64_t start, int64_t n,
		       int32_t *tokens, struct hug_error *err)
{
	if (!r->u16) {
		if (shard_h5_range(r->tokens, H5T_NATIVE_INT32, start, n, tokens, false) < 0)
			return shard_h5_fail(err, r->path, "dataset tokens: "
					     "read failed");
	} else {
		if (n > r->scratch_n) {
			hug_free(r->scratch);
			r->scratch = hug_malloc((size_t)n * sizeof(uint16_t));
			r->scratch_n = n;
		}
		if (shard_h5_range(r->tokens, H5T_NATIVE_UINT16, start, n, r->scratch,
				   false) < 0)
			return shard_h5_fail(err, r->path, "dataset tokens: "
					     "read failed");
		for (int64_t i = 0; i < n; i++)
			tokens[i] = r->scratch[i];
	}
	for (int64_t i = 0; i < n; i++)
		if (tokens[i] < 0 || tokens[i] >= r->meta.vocab_size)
			return hug_error_set(err, "%s: dataset tokens: entry "
					     "%lld is id %d, expected 0 .. %lld "
					     "(vocab_size)", r->path,
					     (long long)(start + i),
					     (int)tokens[i],
					     (long long)r->meta.vocab_size - 1);
	return 0;
}

static int read_mask(struct shard_reader *r, int64_t start, int64_t n,
		     uint8_t *mask, struct hug_error *err)
{
	if (r->mask < 0) {
		memset(mask, 1, (size_t)n);
		return 0;
	}
	if (shard_h5_range(r->mask, H5T_NATIVE_UINT8, start, n, mask, false) < 0)
		return shard_h5_fail(err, r->path, "dataset loss_mask: read "
				     "failed");
	for (int64_t i = 0; i < n; i++)
		if (mask[i] > 1)
			return hug_error_set(err, "%s: dataset loss_mask: entry "
					     "%lld is %d, expected 0 or 1",
					     r->path, (long long)(start + i),
					     (int)mask[i]);
	return 0;
}

int shard_reader_read(struct shard_reader *r, int64_t start, int64_t n,
		      int32_t *tokens, uint8_t *mask, struct hug_error *err)
{
	if (start < 0 || n < 0 || start > r->n_tokens - n)
		return hug_error_set(err, "%s: tokens [%lld, %lld) requested, "
				     "the shard has %lld", r->path,
				     (long long)start, (long long)(start + n),
				     (long long)r->n_tokens);
	if (n == 0)
		return 0;
	shard_h5_lock();
	int rc = read_tokens(r, start, n, tokens, err);
	if (rc == 0 && mask)
		rc = read_mask(r, start, n, mask, err);
	shard_h5_unlock();
	return rc;
}

/* shard_reader_doc_offsets without the lock (validate() holds it). */
static int offsets_read(struct shard_reader *r, int64_t first, int64_t n,
			int64_t *out, struct hug_error *err)
{
	if (first < 0 || n < 0 || first > r->n_docs + 1 - n)
		return hug_error_set(err, "%s: doc_offsets [%lld, %lld) "
				     "requested, the shard has %lld", r->path,
				     (long long)first, (long long)(first + n),
				     (long long)r->n_docs + 1);
	if (n > 0 && shard_h5_range(r->offsets, H5T_NATIVE_INT64, first, n, out, false) < 0)
		return shard_h5_fail(err, r->path, "dataset doc_offsets: read "
				     "failed");
	return 0;
}

int shard_reader_doc_offsets(struct shard_reader *r, int64_t first,
			     int64_t n, int64_t *out, struct hug_error *err)
{
	shard_h5_lock();
	int rc = offsets_read(r, first, n, out, err);
	shard_h5_unlock();
	return rc;
}

void shard_reader_close(struct shard_reader *r)
{
	if (!r)
		return;
	shard_h5_lock();
	reader_close_ids(r);
	shard_h5_unlock();
	hug_free(r->scratch);
	hug_free(r->path);
	hug_free(r);
}
