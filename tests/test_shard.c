/* test_shard.c: data/shard round trips (uint16 and int32 token storage,
 * with and without a loss mask, documents across chunk boundaries), the
 * writer's atomic publication and input checks, and one test per kind of
 * damaged file that shard_reader_open or shard_reader_read must refuse
 * with a message naming the file and the dataset or attribute. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../data/shard.h"
#include "harness.h"
#include "test_shard_util.h"

/* A deterministic mix of lengths, ids and mask bits; total > 2 chunks. */
static void make_docs(int64_t vocab, int64_t *n, int32_t **tok,
		      uint8_t **mask, int64_t **len, int *n_docs)
{
	static const int64_t lens[] = { 1, 70000, 0, 5, 65536, 3000, 1, 70001 };
	*n_docs = (int)(sizeof(lens) / sizeof(lens[0]));
	*len = hug_malloc(sizeof(lens));
	memcpy(*len, lens, sizeof(lens));
	*n = 0;
	for (int d = 0; d < *n_docs; d++)
		*n += lens[d];
	*tok = hug_malloc((size_t)*n * sizeof(int32_t));
	*mask = hug_malloc((size_t)*n);
	uint64_t x = 12345;
	for (int64_t i = 0; i < *n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		(*tok)[i] = (int32_t)((x >> 33) % (uint64_t)vocab);
		(*mask)[i] = (x >> 20) & 1;
	}
	(*tok)[0] = (int32_t)(vocab - 1);
}

static void roundtrip(int64_t vocab, bool with_mask)
{
	char dir[256], path[512];
	int64_t n, *len;
	int32_t *tok;
	uint8_t *mask;
	int n_docs;
	struct hug_error err = { 0 };
	tsu_tmp_dir(dir, sizeof(dir), "shard");
	snprintf(path, sizeof(path), "%s/s.h5", dir);
	make_docs(vocab, &n, &tok, &mask, &len, &n_docs);
	struct shard_meta meta = tsu_meta(vocab, "sha256:abc");
	meta.eos_id = 2;
	snprintf(meta.source, sizeof(meta.source), "wiki fr \xc3\xa9t\xc3\xa9");
	REQUIRE(tsu_write_shard(path, &meta, tok, with_mask ? mask : NULL, n,
				len, n_docs) == 0);

	struct shard_reader *r;
	REQUIRE(shard_reader_open(path, &r, &err) == 0);
	const struct shard_meta *m = shard_reader_meta(r);
	CHECK(m->vocab_size == vocab && m->eos_id == 2);
	CHECK(strcmp(m->tokenizer_hash, "sha256:abc") == 0);
	CHECK(strcmp(m->source, meta.source) == 0);
	CHECK(shard_reader_tokens(r) == n);
	CHECK(shard_reader_docs(r) == n_docs);
	CHECK(shard_reader_has_loss_mask(r) == with_mask);

	int32_t *got = hug_malloc((size_t)n * sizeof(int32_t));
	uint8_t *gmask = hug_malloc((size_t)n);
	REQUIRE(shard_reader_read(r, 0, n, got, gmask, &err) == 0);
	CHECK(memcmp(got, tok, (size_t)n * sizeof(int32_t)) == 0);
	for (int64_t i = 0; i < n; i++)
		CHECK(gmask[i] == (with_mask ? mask[i] : 1));
	/* ranges straddling chunk boundaries */
	int64_t starts[] = { 0, 65535, 65536, 131000, n - 7 };
	for (size_t k = 0; k < sizeof(starts) / sizeof(starts[0]); k++) {
		REQUIRE(shard_reader_read(r, starts[k], 7, got, NULL, &err) == 0);
		CHECK(memcmp(got, tok + starts[k], 7 * sizeof(int32_t)) == 0);
	}
	int64_t off[16];
	REQUIRE(shard_reader_doc_offsets(r, 0, n_docs + 1, off, &err) == 0);
	int64_t at = 0;
	for (int d = 0; d < n_docs; d++) {
		CHECK(off[d] == at);
		at += len[d];
	}
	CHECK(off[n_docs] == n);
	CHECK(shard_reader_read(r, n - 3, 4, got, NULL, &err) == -1);
	CHECK(tsu_has(err.msg, path, "[", "the shard has", NULL));
	shard_reader_close(r);

	hug_free(got);
	hug_free(gmask);
	hug_free(tok);
	hug_free(mask);
	hug_free(len);
	tsu_tmp_dir_remove(dir);
}

TEST(shard_roundtrip_u16_mask) { roundtrip(50257, true); }
TEST(shard_roundtrip_u16_nomask) { roundtrip(65536, false); }
TEST(shard_roundtrip_i32_mask) { roundtrip(65537, true); }
TEST(shard_roundtrip_i32_nomask) { roundtrip(250880, false); }

/* The stored type follows vocab_size: uint16 up to 65536, int32 above. */
static int stored_size(const char *path)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	hid_t d = H5Dopen2(f, "tokens", H5P_DEFAULT);
	hid_t t = H5Dget_type(d);
	int size = (int)H5Tget_size(t);
	H5Tclose(t);
	H5Dclose(d);
	H5Fclose(f);
	return size;
}

TEST(shard_token_type_follows_vocab)
{
	char dir[256], a[512], b[512];
	tsu_tmp_dir(dir, sizeof(dir), "shard");
	snprintf(a, sizeof(a), "%s/a.h5", dir);
	snprintf(b, sizeof(b), "%s/b.h5", dir);
	struct shard_meta ma = tsu_meta(65536, "h"), mb = tsu_meta(65537, "h");
	REQUIRE(tsu_write_counting(a, &ma, 0, 100, 10, false) == 0);
	REQUIRE(tsu_write_counting(b, &mb, 0, 100, 10, false) == 0);
	CHECK(stored_size(a) == 2);
	CHECK(stored_size(b) == 4);
	tsu_tmp_dir_remove(dir);
}

TEST(shard_empty)
{
	char dir[256], path[512];
	struct hug_error err = { 0 };
	struct shard_writer *w;
	struct shard_reader *r;
	tsu_tmp_dir(dir, sizeof(dir), "shard");
	snprintf(path, sizeof(path), "%s/e.h5", dir);
	struct shard_meta m = tsu_meta(100, "h");
	REQUIRE(shard_writer_open(&w, path, &m, true, &err) == 0);
	REQUIRE(shard_writer_close(w, &err) == 0);
	REQUIRE(shard_reader_open(path, &r, &err) == 0);
	CHECK(shard_reader_tokens(r) == 0 && shard_reader_docs(r) == 0);
	shard_reader_close(r);
	tsu_tmp_dir_remove(dir);
}

TEST(shard_writer_atomic_and_checks)
{
	char dir[256], path[512], tmp[520];
	struct hug_error err = { 0 };
	struct shard_writer *w;
	struct stat st;
	tsu_tmp_dir(dir, sizeof(dir), "shard");
	snprintf(path, sizeof(path), "%s/s.h5", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	struct shard_meta m = tsu_meta(1000, "h");
	int32_t good[] = { 1, 2, 3 }, bad[] = { 4, 1000, 5 };
	uint8_t mask[] = { 1, 2, 0 };

	REQUIRE(shard_writer_open(&w, path, &m, false, &err) == 0);
	CHECK(stat(tmp, &st) == 0 && stat(path, &st) != 0);
	REQUIRE(shard_writer_append(w, good, NULL, 3, &err) == 0);
	CHECK(shard_writer_append(w, bad, NULL, 3, &err) == -1);
	CHECK(tsu_has(err.msg, path, "document 1", "token 1", "1000",
		      "0 .. 999", NULL));
	CHECK(shard_writer_tokens(w) == 3 && shard_writer_docs(w) == 1);
	hug_error_clear(&err);
	REQUIRE(shard_writer_append(w, good, NULL, 2, &err) == 0);
	REQUIRE(shard_writer_close(w, &err) == 0);
	CHECK(stat(path, &st) == 0 && stat(tmp, &st) != 0);

	struct shard_reader *r;
	REQUIRE(shard_reader_open(path, &r, &err) == 0);
	CHECK(shard_reader_tokens(r) == 5 && shard_reader_docs(r) == 2);
	shard_reader_close(r);

	/* a mask byte that is not 0/1; a masked shard needs its mask */
	REQUIRE(shard_writer_open(&w, path, &m, true, &err) == 0);
	CHECK(shard_writer_append(w, good, mask, 3, &err) == -1);
	CHECK(tsu_has(err.msg, "loss mask 1 is 2", NULL));
	hug_error_clear(&err);
	CHECK(shard_writer_append(w, good, NULL, 3, &err) == -1);
	CHECK(tsu_has(err.msg, "none was given", NULL));
	shard_writer_discard(w);
	CHECK(stat(tmp, &st) != 0);
	/* the previous file is untouched by a discarded writer */
	REQUIRE(shard_reader_open(path, &r, &err) == 0);
	shard_reader_close(r);

	/* bad meta */
	hug_error_clear(&err);
	m.eos_id = 1000;
	CHECK(shard_writer_open(&w, path, &m, false, &err) == -1 && !w);
	CHECK(tsu_has(err.msg, "eos_id 1000", NULL));
	hug_error_clear(&err);
	m = tsu_meta(0, "h");
	CHECK(shard_writer_open(&w, path, &m, false, &err) == -1);
	CHECK(tsu_has(err.msg, "vocab_size 0", NULL));
	hug_error_clear(&err);
	m = tsu_meta(10, "h");
	snprintf(tmp, sizeof(tmp), "%s/no/such/dir/s.h5", dir);
	CHECK(shard_writer_open(&w, tmp, &m, false, &err) == -1);
	CHECK(tsu_has(err.msg, "cannot create", NULL));
	tsu_tmp_dir_remove(dir);
}

/* ---- damaged files ---- */

/* A valid shard of 300 tokens in 3 documents, loss mask on, vocab 1000. */
static void good_shard(const char *path)
{
	struct shard_meta m = tsu_meta(1000, "sha256:good");
	tsu_write_counting(path, &m, 0, 300, 100, true);
}

/* Opens path, expects failure, and checks the message has path + want. */
static void expect_open_error(const char *path, const char *want1,
			      const char *want2)
{
	struct hug_error err = { 0 };
	struct shard_reader *r = (void *)1;
	CHECK(shard_reader_open(path, &r, &err) == -1);
	CHECK(r == NULL);
	CHECK(err.set);
	CHECK(tsu_has(err.msg, path, want1, want2, NULL));
}

static void set_int_attr(const char *path, const char *name, int64_t v)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	H5Adelete(f, name);
	hid_t sp = H5Screate(H5S_SCALAR);
	hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT,
			     H5P_DEFAULT);
	H5Awrite(a, H5T_NATIVE_INT64, &v);
	H5Aclose(a);
	H5Sclose(sp);
	H5Fclose(f);
}

static void set_fixed_str_attr(const char *path, const char *name,
			       const char *s)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	H5Adelete(f, name);
	hid_t t = H5Tcopy(H5T_C_S1);
	H5Tset_size(t, strlen(s) + 1);
	hid_t sp = H5Screate(H5S_SCALAR);
	hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
	H5Awrite(a, t, s);
	H5Aclose(a);
	H5Sclose(sp);
	H5Tclose(t);
	H5Fclose(f);
}

static void write_elem(const char *path, const char *ds, hid_t mt,
		       int64_t at, const void *v)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	hid_t d = H5Dopen2(f, ds, H5P_DEFAULT);
	hid_t fs = H5Dget_space(d);
	hsize_t s = (hsize_t)at, c = 1;
	H5Sselect_hyperslab(fs, H5S_SELECT_SET, &s, NULL, &c, NULL);
	hid_t ms = H5Screate_simple(1, &c, NULL);
	H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, v);
	H5Sclose(ms);
	H5Sclose(fs);
	H5Dclose(d);
	H5Fclose(f);
}

/* Replaces dataset `name` with a contiguous one of n zero elements. */
static void replace_ds(const char *path, const char *name, hid_t type,
		       hsize_t n)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	H5Ldelete(f, name, H5P_DEFAULT);
	hid_t sp = H5Screate_simple(1, &n, NULL);
	hid_t d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT,
			     H5P_DEFAULT);
	H5Dclose(d);
	H5Sclose(sp);
	H5Fclose(f);
}

#define DAMAGE_TEST(name) \
	static void damage_##name(const char *path); \
	TEST(shard_rejects_##name) \
	{ \
		char dir[256], path[512]; \
		tsu_tmp_dir(dir, sizeof(dir), "shard"); \
		snprintf(path, sizeof(path), "%s/shard-00003.h5", dir); \
		good_shard(path); \
		damage_##name(path); \
		tsu_tmp_dir_remove(dir); \
	} \
	static void damage_##name(const char *path)

DAMAGE_TEST(format_version)
{
	set_int_attr(path, "format_version", 2);
	expect_open_error(path, "attribute format_version is 2",
			  "reads version 1");
}

DAMAGE_TEST(format_name)
{
	set_fixed_str_attr(path, "format", "other-shard");
	expect_open_error(path, "attribute format is \"other-shard\"",
			  "expected \"hug-shard\"");
}

DAMAGE_TEST(missing_attribute)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	H5Adelete(f, "tokenizer_hash");
	H5Fclose(f);
	expect_open_error(path, "attribute tokenizer_hash is missing", NULL);
}

DAMAGE_TEST(attribute_type)
{
	set_fixed_str_attr(path, "vocab_size", "50257");
	expect_open_error(path, "attribute vocab_size",
			  "expected an integer, found string");
}

DAMAGE_TEST(offsets_not_monotonic)
{
	int64_t v = 250;
	write_elem(path, "doc_offsets", H5T_NATIVE_INT64, 1, &v);
	expect_open_error(path, "doc_offsets is not monotonic",
			  "entry 2 is 200, after 250");
}

DAMAGE_TEST(offsets_wrong_end)
{
	int64_t v = 299;
	write_elem(path, "doc_offsets", H5T_NATIVE_INT64, 3, &v);
	expect_open_error(path, "doc_offsets ends at 299",
			  "expected n_tokens 300");
}

DAMAGE_TEST(offsets_wrong_start)
{
	int64_t v = 1;
	write_elem(path, "doc_offsets", H5T_NATIVE_INT64, 0, &v);
	expect_open_error(path, "doc_offsets: entry 0 is 1", NULL);
}

DAMAGE_TEST(mask_wrong_length)
{
	replace_ds(path, "loss_mask", H5T_STD_U8LE, 299);
	expect_open_error(path, "loss_mask has 299 entries",
			  "one per token (300)");
}

DAMAGE_TEST(tokens_wrong_type)
{
	replace_ds(path, "tokens", H5T_IEEE_F32LE, 300);
	expect_open_error(path, "dataset tokens: expected uint16 or int32",
			  "found float32");
}

DAMAGE_TEST(tokens_wrong_length)
{
	replace_ds(path, "tokens", H5T_STD_U16LE, 301);
	expect_open_error(path, "tokens has 301 entries", "n_tokens says 300");
}

DAMAGE_TEST(tokens_missing)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	H5Ldelete(f, "tokens", H5P_DEFAULT);
	H5Fclose(f);
	expect_open_error(path, "dataset tokens is missing", NULL);
}

DAMAGE_TEST(n_docs_mismatch)
{
	set_int_attr(path, "n_docs", 4);
	expect_open_error(path, "doc_offsets has 4 entries",
			  "n_docs + 1 = 5");
}

/* Damage inside the data is caught when read. */
DAMAGE_TEST(bad_token_id_on_read)
{
	struct hug_error err = { 0 };
	struct shard_reader *r;
	uint16_t v = 1000;
	uint8_t b = 7;
	int32_t tok[300];
	uint8_t mask[300];
	write_elem(path, "tokens", H5T_NATIVE_UINT16, 123, &v);
	write_elem(path, "loss_mask", H5T_NATIVE_UINT8, 200, &b);
	REQUIRE(shard_reader_open(path, &r, &err) == 0);
	CHECK(shard_reader_read(r, 0, 300, tok, NULL, &err) == -1);
	CHECK(tsu_has(err.msg, path, "dataset tokens: entry 123 is id 1000",
		      "0 .. 999", NULL));
	hug_error_clear(&err);
	CHECK(shard_reader_read(r, 150, 100, tok, mask, &err) == -1);
	CHECK(tsu_has(err.msg, "loss_mask: entry 200 is 7", NULL));
	shard_reader_close(r);
}

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void copy_prefix(const char *from, const char *to, long n)
{
	char *buf = hug_malloc((size_t)n + 1);
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	size_t got = in ? fread(buf, 1, (size_t)n, in) : 0;
	if (out)
		fwrite(buf, 1, got, out);
	if (in)
		fclose(in);
	if (out)
		fclose(out);
	hug_free(buf);
}

/* Cut anywhere, the file is refused cleanly (HDF5 notices the superblock's
 * end-of-file address lies beyond the file). */
DAMAGE_TEST(truncated)
{
	char cut[600];
	long size = file_size(path);
	REQUIRE(size > 1000);
	snprintf(cut, sizeof(cut), "%s.cut.h5", path);
	long lens[] = { 0, 4, 8, 100, 512, 2048, size / 2, size - 1 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		copy_prefix(path, cut, lens[i]);
		struct hug_error err = { 0 };
		struct shard_reader *r;
		CHECK(shard_reader_open(cut, &r, &err) == -1);
		CHECK(tsu_has(err.msg, cut, NULL));
		CHECK(strstr(err.msg, "truncated") || strstr(err.msg,
							   "not an HDF5"));
	}
	copy_prefix(path, cut, size / 2);
	expect_open_error(cut, "damaged or truncated HDF5 file",
			  "the superblock says it ends at byte");
	unlink(cut);
}

DAMAGE_TEST(not_hdf5)
{
	FILE *fp = fopen(path, "w");
	fputs("{\"text\": \"this is jsonl, not a shard\"}\n", fp);
	fclose(fp);
	expect_open_error(path, "not an HDF5 file", NULL);
}

TEST(shard_rejects_missing_file)
{
	expect_open_error("/nonexistent/shard.h5", "cannot open",
			  "No such file");
}

TEST(shard_rejects_directory)
{
	char dir[256];
	tsu_tmp_dir(dir, sizeof(dir), "shard");
	expect_open_error(dir, "is a directory", NULL);
	tsu_tmp_dir_remove(dir);
}

/* A file written by h5py (tools/ref/check_shards.py --make-fixture): its
 * variable-length strings, numpy types and default layout must read. */
TEST(shard_reads_h5py_fixture)
{
	const char *path = "tests/fixtures/shard_h5py.h5";
	struct hug_error err = { 0 };
	struct shard_reader *r;
	if (access(path, R_OK) != 0)
		SKIP("tests/fixtures/shard_h5py.h5 missing");
	REQUIRE(shard_reader_open(path, &r, &err) == 0);
	const struct shard_meta *m = shard_reader_meta(r);
	CHECK(m->vocab_size == 50257 && m->eos_id == 0);
	CHECK(strcmp(m->tokenizer_hash, "sha256:h5py") == 0);
	CHECK(strcmp(m->source, "made by h5py") == 0);
	REQUIRE(shard_reader_tokens(r) == 1000 && shard_reader_docs(r) == 4);
	REQUIRE(shard_reader_has_loss_mask(r));
	int32_t tok[1000];
	uint8_t mask[1000];
	REQUIRE(shard_reader_read(r, 0, 1000, tok, mask, &err) == 0);
	for (int i = 0; i < 1000; i++) {
		CHECK(tok[i] == (i * 37) % 50257);
		CHECK(mask[i] == (i % 5 != 0));
	}
	shard_reader_close(r);
}

/* With HUG_SHARD_OUT set, writes the shard tools/ref/check_shards.py
 * checks with h5py (tokens (i * 7919) % vocab, documents of 1000 tokens,
 * mask i % 4 != 0): one uint16 shard at $HUG_SHARD_OUT-u16.h5 and one
 * int32 shard at $HUG_SHARD_OUT-i32.h5. */
TEST(shard_write_for_python)
{
	const char *out = getenv("HUG_SHARD_OUT");
	char path[1024];
	if (!out)
		SKIP("set HUG_SHARD_OUT to write the h5py check files");
	int64_t vocabs[] = { 50257, 250880 };
	const char *tags[] = { "u16", "i32" };
	for (int k = 0; k < 2; k++) {
		int64_t n = 150000, doc = 1000;
		int32_t *tok = hug_malloc((size_t)n * sizeof(int32_t));
		uint8_t *mask = hug_malloc((size_t)n);
		int64_t *len = hug_malloc((size_t)(n / doc) * sizeof(int64_t));
		for (int64_t i = 0; i < n; i++) {
			tok[i] = (int32_t)((i * 7919) % vocabs[k]);
			mask[i] = i % 4 != 0;
		}
		for (int64_t d = 0; d < n / doc; d++)
			len[d] = doc;
		struct shard_meta m = tsu_meta(vocabs[k], "sha256:hug");
		snprintf(m.source, sizeof(m.source), "hug test %s", tags[k]);
		snprintf(path, sizeof(path), "%s-%s.h5", out, tags[k]);
		CHECK(tsu_write_shard(path, &m, tok, mask, n, len,
				      (int)(n / doc)) == 0);
		hug_free(tok);
		hug_free(mask);
		hug_free(len);
	}
}

/* hug writes its string attributes fixed-length (reading variable-length
 * ones goes through libhdf5's global heap code, which a damaged file can
 * crash); they still read back, and h5py's variable-length ones too
 * (shard_reads_h5py_fixture). */
TEST(shard_writer_writes_fixed_strings)
{
	char dir[256], path[300];
	tsu_tmp_dir(dir, sizeof(dir), "shard");
	snprintf(path, sizeof(path), "%s/s.h5", dir);
	struct shard_meta m = tsu_meta(100, "sha256:fixed");
	REQUIRE(tsu_write_counting(path, &m, 0, 10, 5, false) == 0);
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	REQUIRE(f >= 0);
	const char *names[] = { "format", "tokenizer_hash", "source" };
	for (int i = 0; i < 3; i++) {
		hid_t a = H5Aopen(f, names[i], H5P_DEFAULT);
		hid_t t = H5Aget_type(a);
		CHECK(H5Tget_class(t) == H5T_STRING);
		CHECK(H5Tis_variable_str(t) == 0);
		H5Tclose(t);
		H5Aclose(a);
	}
	H5Fclose(f);
	struct shard_reader *r;
	struct hug_error err = { 0 };
	REQUIRE(shard_reader_open(path, &r, &err) == 0);
	CHECK(strcmp(shard_reader_meta(r)->tokenizer_hash, "sha256:fixed") == 0);
	shard_reader_close(r);
	tsu_tmp_dir_remove(dir);
}
