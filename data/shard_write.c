/* shard_write.c: the shard writer. Documents are validated whole, buffered a
 * chunk at a time and appended to extendible chunked datasets in
 * "<path>.tmp"; close writes the counts, fsyncs and renames the file into
 * place, so a crash never leaves a half-written shard under its real name. */
#include "shard_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"

static int check_meta(const char *path, const struct shard_meta *m,
		      struct hug_error *err)
{
	if (m->vocab_size < 1 || m->vocab_size > INT32_MAX)
		return hug_error_set(err, "%s: vocab_size %lld: expected 1 .. "
				     "%d", path, (long long)m->vocab_size,
				     INT32_MAX);
	if (m->eos_id < -1 || m->eos_id >= m->vocab_size)
		return hug_error_set(err, "%s: eos_id %d: expected -1 (none) "
				     "or an id below vocab_size %lld", path,
				     (int)m->eos_id, (long long)m->vocab_size);
	if (!memchr(m->tokenizer_hash, '\0', sizeof(m->tokenizer_hash)))
		return hug_error_set(err, "%s: tokenizer_hash is not "
				     "NUL-terminated within %zu bytes", path,
				     sizeof(m->tokenizer_hash));
	if (!memchr(m->source, '\0', sizeof(m->source)))
		return hug_error_set(err, "%s: source is not NUL-terminated "
				     "within %zu bytes", path,
				     sizeof(m->source));
	return 0;
}

/* An empty, extendible, chunked 1-D dataset. */
static hid_t create_1d(hid_t file, const char *name, hid_t type,
		       hsize_t chunk)
{
	hsize_t dims = 0, maxdims = H5S_UNLIMITED;
	hid_t space = H5Screate_simple(1, &dims, &maxdims);
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	hid_t ds = -1;
	if (space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 1, &chunk) >= 0)
		ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl,
				H5P_DEFAULT);
	if (ds < 0)
		shard_h5_capture();
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (space >= 0)
		H5Sclose(space);
	return ds;
}

/* Grows `ds` to at + n elements and writes buf (memory type mt) there. */
static int write_tail(hid_t ds, hid_t mt, int64_t at, int64_t n,
		      const void *buf)
{
	hsize_t size = (hsize_t)(at + n);
	if (n == 0)
		return 0;
	if (H5Dset_extent(ds, &size) < 0) {
		shard_h5_capture();
		return -1;
	}
	return shard_h5_range(ds, mt, at, n, (void *)buf, true); /* not written to */
}

static int flush_tokens(struct shard_writer *w)
{
	hid_t mt = w->u16 ? H5T_NATIVE_UINT16 : H5T_NATIVE_INT32;
	if (write_tail(w->tokens, mt, w->written_tokens, w->tok_fill,
		       w->tok_buf) < 0)
		return -1;
	if (w->with_mask && write_tail(w->mask, H5T_NATIVE_UINT8,
				       w->written_tokens, w->tok_fill,
				       w->mask_buf) < 0)
		return -1;
	w->written_tokens += w->tok_fill;
	w->tok_fill = 0;
	return 0;
}

static int flush_offsets(struct shard_writer *w)
{
	if (write_tail(w->offsets, H5T_NATIVE_INT64, w->written_offsets,
		       w->off_fill, w->off_buf) < 0)
		return -1;
	w->written_offsets += w->off_fill;
	w->off_fill = 0;
	return 0;
}

static int push_offset(struct shard_writer *w, int64_t off)
{
	if (w->off_fill == (int64_t)SHARD_DOC_CHUNK && flush_offsets(w) < 0)
		return -1;
	w->off_buf[w->off_fill++] = off;
	return 0;
}

static void close_ids(struct shard_writer *w)
{
	shard_close_ids(&w->file, &w->tokens, &w->offsets, &w->mask);
}

static void writer_free(struct shard_writer *w)
{
	hug_free(w->tok_buf);
	hug_free(w->mask_buf);
	hug_free(w->off_buf);
	hug_free(w->tmp_path);
	hug_free(w->path);
	hug_free(w);
}

/* Creates the file, its datasets and the attributes known up front. */
static int create_file(struct shard_writer *w, struct hug_error *err)
{
	const struct shard_meta *m = &w->meta;
	w->file = H5Fcreate(w->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT,
			    H5P_DEFAULT);
	if (w->file < 0)
		return shard_h5_fail(err, w->tmp_path, "cannot create");
	w->tokens = create_1d(w->file, "tokens",
			      w->u16 ? H5T_STD_U16LE : H5T_STD_I32LE,
			      SHARD_TOKEN_CHUNK);
	w->offsets = create_1d(w->file, "doc_offsets", H5T_STD_I64LE,
			       SHARD_DOC_CHUNK);
	if (w->with_mask)
		w->mask = create_1d(w->file, "loss_mask", H5T_STD_U8LE,
				    SHARD_TOKEN_CHUNK);
	if (w->tokens < 0 || w->offsets < 0 || (w->with_mask && w->mask < 0))
		return shard_h5_fail(err, w->tmp_path, "cannot create the "
				     "datasets");
	if (shard_attr_write_str(w->file, "format", SHARD_FORMAT) < 0 ||
	    shard_attr_write_int(w->file, "format_version", H5T_STD_I32LE,
				 SHARD_FORMAT_VERSION) < 0 ||
	    shard_attr_write_int(w->file, "vocab_size", H5T_STD_I64LE,
				 m->vocab_size) < 0 ||
	    shard_attr_write_int(w->file, "eos_id", H5T_STD_I32LE,
				 m->eos_id) < 0 ||
	    shard_attr_write_str(w->file, "tokenizer_hash",
				 m->tokenizer_hash) < 0 ||
	    shard_attr_write_str(w->file, "source", m->source) < 0)
		return shard_h5_fail(err, w->tmp_path, "cannot write the "
				     "attributes");
	return 0;
}

int shard_writer_open(struct shard_writer **wp, const char *path,
		      const struct shard_meta *meta, bool with_loss_mask,
		      struct hug_error *err)
{
	*wp = NULL;
	if (!path || !path[0])
		return hug_error_set(err, "shard writer: empty path");
	if (check_meta(path, meta, err) < 0)
		return -1;
	struct shard_writer *w = hug_calloc(1, sizeof(*w));
	w->path = hug_strdup(path);
	w->tmp_path = fs_tmp_name(path);
	w->meta = *meta;
	w->u16 = meta->vocab_size <= SHARD_U16_MAX_VOCAB;
	w->with_mask = with_loss_mask;
	w->file = w->tokens = w->mask = w->offsets = -1;
	w->tok_buf = hug_malloc(SHARD_TOKEN_CHUNK * (w->u16 ? 2 : 4));
	w->mask_buf = with_loss_mask ? hug_malloc(SHARD_TOKEN_CHUNK) : NULL;
	w->off_buf = hug_malloc(SHARD_DOC_CHUNK * sizeof(int64_t));
	w->off_buf[w->off_fill++] = 0;

	shard_h5_lock();
	int rc = create_file(w, err);
	if (rc < 0) {
		close_ids(w);
		unlink(w->tmp_path);
	}
	shard_h5_unlock();
	if (rc < 0) {
		writer_free(w);
		return -1;
	}
	*wp = w;
	return 0;
}

static int check_doc(const struct shard_writer *w, const int32_t *tokens,
		     const uint8_t *mask, int64_t n, struct hug_error *err)
{
	if (n < 0)
		return hug_error_set(err, "%s: document %lld: negative length "
				     "%lld", w->path, (long long)w->n_docs,
				     (long long)n);
	if (n > 0 && !tokens)
		return hug_error_set(err, "%s: document %lld: no tokens given",
				     w->path, (long long)w->n_docs);
	if (w->with_mask && n > 0 && !mask)
		return hug_error_set(err, "%s: document %lld: the shard has a "
				     "loss mask but none was given", w->path,
				     (long long)w->n_docs);
	for (int64_t i = 0; i < n; i++) {
		if (tokens[i] < 0 || tokens[i] >= w->meta.vocab_size)
			return hug_error_set(err, "%s: document %lld: token "
					     "%lld is id %d, expected 0 .. %lld",
					     w->path, (long long)w->n_docs,
					     (long long)i, (int)tokens[i],
					     (long long)w->meta.vocab_size - 1);
		if (w->with_mask && mask[i] > 1)
			return hug_error_set(err, "%s: document %lld: loss "
					     "mask %lld is %d, expected 0 or 1",
					     w->path, (long long)w->n_docs,
					     (long long)i, (int)mask[i]);
	}
	return 0;
}

/* Copies one validated document into the chunk buffers, flushing each
 * buffer as it fills. Called with the HDF5 lock held. */
static int buffer_doc(struct shard_writer *w, const int32_t *tokens,
		      const uint8_t *mask, int64_t n)
{
	int64_t done = 0;
	while (done < n) {
		int64_t room = (int64_t)SHARD_TOKEN_CHUNK - w->tok_fill;
		int64_t k = n - done < room ? n - done : room;
		if (w->u16) {
			uint16_t *b = (uint16_t *)w->tok_buf + w->tok_fill;
			for (int64_t i = 0; i < k; i++)
				b[i] = (uint16_t)tokens[done + i];
		} else {
			memcpy((int32_t *)w->tok_buf + w->tok_fill,
			       tokens + done, (size_t)k * sizeof(int32_t));
		}
		if (w->with_mask)
			memcpy(w->mask_buf + w->tok_fill, mask + done,
			       (size_t)k);
		w->tok_fill += k;
		done += k;
		if (w->tok_fill == (int64_t)SHARD_TOKEN_CHUNK &&
		    flush_tokens(w) < 0)
			return -1;
	}
	return push_offset(w, w->n_tokens + n);
}

int shard_writer_append(struct shard_writer *w, const int32_t *tokens,
			const uint8_t *loss_mask, int64_t n,
			struct hug_error *err)
{
	if (w->file < 0)
		return hug_error_set(err, "%s: an earlier write failed; the "
				     "shard cannot be completed", w->path);
	if (check_doc(w, tokens, loss_mask, n, err) < 0)
		return -1;
	shard_h5_lock();
	int rc = buffer_doc(w, tokens, loss_mask, n);
	if (rc < 0) {
		shard_h5_fail(err, w->tmp_path, "write failed");
		close_ids(w);
	}
	shard_h5_unlock();
	if (rc < 0)
		return -1;
	w->n_tokens += n;
	w->n_docs++;
	return 0;
}

int64_t shard_writer_tokens(const struct shard_writer *w)
{
	return w->n_tokens;
}

int64_t shard_writer_docs(const struct shard_writer *w)
{
	return w->n_docs;
}

/* Flushes the buffers, writes the counts and closes the HDF5 file. */
static int finish_file(struct shard_writer *w, struct hug_error *err)
{
	if (flush_tokens(w) < 0 || flush_offsets(w) < 0)
		return shard_h5_fail(err, w->tmp_path, "write failed");
	if (shard_attr_write_int(w->file, "n_tokens", H5T_STD_I64LE,
				 w->n_tokens) < 0 ||
	    shard_attr_write_int(w->file, "n_docs", H5T_STD_I64LE,
				 w->n_docs) < 0)
		return shard_h5_fail(err, w->tmp_path, "cannot write the "
				     "attributes");
	hid_t file = w->file;
	w->file = -1;
	close_ids(w);
	if (H5Fclose(file) < 0)
		return shard_h5_fail(err, w->tmp_path, "close failed");
	return 0;
}

int shard_writer_close(struct shard_writer *w, struct hug_error *err)
{
	if (!w)
		return 0;
	int rc;
	shard_h5_lock();
	if (w->file < 0)
		rc = hug_error_set(err, "%s: an earlier write failed; the "
				   "shard was not written", w->path);
	else
		rc = finish_file(w, err);
	close_ids(w);
	shard_h5_unlock();
	if (rc == 0)
		rc = fs_commit(-1, w->tmp_path, w->path, err);
	if (rc < 0)
		unlink(w->tmp_path);
	writer_free(w);
	return rc;
}

void shard_writer_discard(struct shard_writer *w)
{
	if (!w)
		return;
	shard_h5_lock();
	close_ids(w);
	H5Eclear2(H5E_DEFAULT);
	shard_h5_unlock();
	unlink(w->tmp_path);
	writer_free(w);
}
