/* test_safetensors.c: io/safetensors round trips (every dtype, strided
 * views, 0-d scalars, conversions, metadata), byte compatibility with the
 * Python safetensors library in both directions, and one test per class of
 * malformed file that st_open must refuse with a clear message. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../autograd/arena.h"
#include "../base/alloc.h"
#include "../autograd/tensor.h"
#include "../io/safetensors.h"
#include "harness.h"
#include "test_shard_util.h"

#define PY_FIXTURE "tests/fixtures/safetensors_py.safetensors"

/* ---- temp files ---- */

static void write_bytes(const char *path, const void *buf, size_t n)
{
	FILE *fp = fopen(path, "wb");
	if (!fp || fwrite(buf, 1, n, fp) != n)
		test_fail_at(__FILE__, __LINE__, "cannot write %s", path);
	if (fp)
		fclose(fp);
}

/* Writes a safetensors-like file: the length prefix `hlen` (as given, even
 * if wrong), the `h` bytes of header, then `data_len` zero bytes. */
static void write_st_raw(const char *path, uint64_t hlen, const char *header,
			 size_t h, size_t data_len)
{
	size_t n = 8 + h + data_len;
	unsigned char *buf = hug_calloc(1, n);
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)(hlen >> (8 * i));
	memcpy(buf + 8, header, h);
	write_bytes(path, buf, n);
	hug_free(buf);
}

/* A well-formed length prefix for the NUL-terminated `header`. */
static void write_st(const char *path, const char *header, size_t data_len)
{
	write_st_raw(path, strlen(header), header, strlen(header), data_len);
}

/* ---- writer/reader round trips ---- */

static void fill_pattern(struct tensor *t, double scale, double shift)
{
	int64_t n = tensor_numel(t);
	double *v = hug_malloc((size_t)n * sizeof(double));
	for (int64_t i = 0; i < n; i++)
		v[i] = (double)i * scale + shift;
	tensor_write_f64(t, v);
	hug_free(v);
}

/* Logical elements of t packed row-major in its own dtype. */
static void pack(const struct tensor *t, unsigned char *out)
{
	size_t es = dtype_size(t->dtype);
	int64_t n = tensor_numel(t);
	for (int64_t i = 0; i < n; i++) {
		int64_t off = 0, r = i;
		for (int d = t->ndim - 1; d >= 0; d--) {
			off += (r % t->shape[d]) * t->stride[d];
			r /= t->shape[d];
		}
		memcpy(out + i * (int64_t)es, (const char *)t->data + off * (int64_t)es, es);
	}
}

/* Checks that file tensor s holds exactly the logical bytes of t. */
static void check_same_bytes(const struct st_tensor *s, const struct tensor *t)
{
	size_t nb = tensor_nbytes(t);
	unsigned char *want = hug_malloc(nb);
	pack(t, want);
	CHECK(s->dtype == t->dtype);
	CHECK(s->ndim == t->ndim);
	for (int d = 0; d < t->ndim && d < s->ndim; d++)
		CHECK(s->shape[d] == t->shape[d]);
	CHECK(s->nbytes == nb);
	if (s->nbytes == nb && memcmp(s->data, want, nb) != 0)
		test_fail_at(__FILE__, __LINE__, "tensor \"%s\": bytes differ",
			     s->name);
	hug_free(want);
}

TEST(safetensors_roundtrip_all_dtypes)
{
	struct arena a;
	struct hug_error err = { 0 };
	char dir[256], path[300];
	arena_init(&a, "test", 0, NULL);
	tsu_tmp_dir(dir, sizeof(dir), "st");
	snprintf(path, sizeof(path), "%s/rt.safetensors", dir);

	struct tensor *f32 = tensor_new(&a, DT_F32, TENSOR_SHAPE(2, 3));
	struct tensor *f64 = tensor_new(&a, DT_F64, TENSOR_SHAPE(4));
	struct tensor *bf16 = tensor_new(&a, DT_BF16, TENSOR_SHAPE(3));
	struct tensor *f16 = tensor_new(&a, DT_F16, TENSOR_SHAPE(2, 2));
	struct tensor *i32 = tensor_new(&a, DT_I32, TENSOR_SHAPE(5));
	struct tensor *u8 = tensor_new(&a, DT_U8, TENSOR_SHAPE(3));
	struct tensor *scalar = tensor_new(&a, DT_F32, 0, NULL);
	struct tensor *base = tensor_new(&a, DT_F32, TENSOR_SHAPE(3, 4));
	struct tensor *empty = tensor_new(&a, DT_F32, TENSOR_SHAPE(0, 3));
	fill_pattern(f32, 0.5, -1);
	fill_pattern(f64, 1.0 / 3.0, 0.1);
	fill_pattern(bf16, 1.25, -2);
	fill_pattern(f16, 0.75, 3);
	fill_pattern(i32, -1000003, 7);
	fill_pattern(u8, 100, 1);
	fill_pattern(scalar, 0, 42.25);
	fill_pattern(base, 1, 0);
	/* a transposed view of base's columns 1..3: shape [3, 3] strides [1, 4] */
	struct tensor view = *base;
	view.shape[0] = 3;
	view.shape[1] = 3;
	view.stride[0] = 1;
	view.stride[1] = 4;
	view.data = (float *)base->data + 1;
	CHECK(!tensor_is_contiguous(&view));

	const struct tensor *all[] = { f32, f64, bf16, f16, i32, u8, scalar, &view, empty };
	const char *names[] = { "w.f32", "w.f64", "w.bf16", "w.f16", "ids.i32",
				"bytes.u8", "scalar", "view.t", "empty" };
	const int n = (int)(sizeof(all) / sizeof(all[0]));
	struct st_writer *w = st_writer_new();
	for (int i = 0; i < n; i++)
		st_writer_add(w, names[i], all[i], all[i]->dtype);
	CHECK(st_writer_write(w, path, &err) == 0);
	st_writer_free(w);
	REQUIRE(!err.set);

	struct st_file f;
	int rc = st_open(&f, path, &err);
	if (rc)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	REQUIRE(rc == 0);
	CHECK(f.n == n);
	/* header padded to 8; packed in the order added, no gaps */
	uint64_t hlen;
	memcpy(&hlen, f.map, 8);
	CHECK(hlen % 8 == 0);
	CHECK(strncmp((const char *)f.map + 8,
		      "{\"__metadata__\":{\"format\":\"pt\"},\"w.f32\":", 40) == 0);
	CHECK(st_meta_get(&f, "format") && strcmp(st_meta_get(&f, "format"), "pt") == 0);
	uint64_t expect_off = 0;
	for (int i = 0; i < n && i < f.n; i++) {
		const struct st_tensor *s = &f.tensors[i];
		CHECK(strcmp(s->name, names[i]) == 0);
		CHECK(s->begin == expect_off);
		expect_off += s->nbytes;
		check_same_bytes(s, all[i]);
		CHECK(st_find(&f, names[i]) == s);
	}
	CHECK(8 + hlen + expect_off == f.map_size);
	CHECK(f.tensors[6].ndim == 0 && f.tensors[6].nbytes == 4);
	CHECK(st_find(&f, "nope") == NULL);

	/* load back: same dtype into contiguous and strided destinations */
	for (int i = 0; i < n; i++) {
		const struct tensor *t = all[i];
		struct tensor *d = tensor_new(&a, t->dtype, t->ndim, t->shape);
		CHECK(st_tensor_load(st_find(&f, names[i]), d, &err) == 0);
		check_same_bytes(st_find(&f, names[i]), d);
	}
	struct tensor *base2 = tensor_zeros(&a, DT_F32, TENSOR_SHAPE(3, 4));
	struct tensor view2 = view;
	view2.data = (float *)base2->data + 1;
	CHECK(st_tensor_load(st_find(&f, "view.t"), &view2, &err) == 0);
	double got[12], want[12];
	tensor_read_f64(base2, got);
	tensor_read_f64(base, want);
	for (int i = 0; i < 12; i++)
		CHECK(got[i] == (i % 4 == 0 ? 0.0 : want[i]));
	CHECK(!err.set);
	st_close(&f);
	CHECK(f.map == NULL && f.n == 0);
	st_close(&f); /* idempotent */
	tsu_tmp_dir_remove(dir);
	arena_free(&a);
}

TEST(safetensors_float_conversions)
{
	struct arena a;
	struct hug_error err = { 0 };
	char dir[256], path[300];
	arena_init(&a, "test", 0, NULL);
	tsu_tmp_dir(dir, sizeof(dir), "st");
	snprintf(path, sizeof(path), "%s/conv.safetensors", dir);

	const float vals[5] = { 1.0f, -3.14159f, 0.1f, 65504.0f, 1e-6f };
	struct tensor *src = tensor_new(&a, DT_F32, TENSOR_SHAPE(5));
	memcpy(src->data, vals, sizeof(vals));
	struct tensor *src64 = tensor_new(&a, DT_F64, TENSOR_SHAPE(5));
	for (int i = 0; i < 5; i++)
		((double *)src64->data)[i] = vals[i];
	struct st_writer *w = st_writer_new();
	st_writer_add(w, "as_bf16", src, DT_BF16);
	st_writer_add(w, "as_f16", src, DT_F16);
	st_writer_add(w, "as_f64", src, DT_F64);
	st_writer_add(w, "f64_as_f32", src64, DT_F32);
	st_writer_add(w, "i32", tensor_zeros(&a, DT_I32, TENSOR_SHAPE(2)), DT_I32);
	REQUIRE(st_writer_write(w, path, &err) == 0);
	st_writer_free(w);

	struct st_file f;
	REQUIRE(st_open(&f, path, &err) == 0);
	const struct st_tensor *b = st_find(&f, "as_bf16"), *h = st_find(&f, "as_f16");
	const struct st_tensor *d = st_find(&f, "as_f64"), *s = st_find(&f, "f64_as_f32");
	REQUIRE(b && h && d && s);
	CHECK(b->dtype == DT_BF16 && h->dtype == DT_F16 && d->dtype == DT_F64);
	for (int i = 0; i < 5; i++) {
		uint16_t hb, hh;
		double dd;
		float ff;
		memcpy(&hb, (const char *)b->data + 2 * i, 2);
		memcpy(&hh, (const char *)h->data + 2 * i, 2);
		memcpy(&dd, (const char *)d->data + 8 * i, 8);
		memcpy(&ff, (const char *)s->data + 4 * i, 4);
		CHECK(hb == f32_to_bf16(vals[i]));
		CHECK(hh == f32_to_f16(vals[i]));
		CHECK(dd == (double)vals[i]);
		CHECK(ff == vals[i]);
	}
	/* file bf16 -> f32 and f64; file f16 -> f32; file f64 -> bf16 */
	struct tensor *t32 = tensor_new(&a, DT_F32, TENSOR_SHAPE(5));
	struct tensor *t64 = tensor_new(&a, DT_F64, TENSOR_SHAPE(5));
	struct tensor *tb = tensor_new(&a, DT_BF16, TENSOR_SHAPE(5));
	CHECK(st_tensor_load(b, t32, &err) == 0);
	for (int i = 0; i < 5; i++)
		CHECK(((float *)t32->data)[i] == bf16_to_f32(f32_to_bf16(vals[i])));
	CHECK(st_tensor_load(b, t64, &err) == 0);
	for (int i = 0; i < 5; i++)
		CHECK(((double *)t64->data)[i] == bf16_to_f32(f32_to_bf16(vals[i])));
	CHECK(st_tensor_load(h, t32, &err) == 0);
	for (int i = 0; i < 5; i++)
		CHECK(((float *)t32->data)[i] == f16_to_f32(f32_to_f16(vals[i])));
	CHECK(st_tensor_load(d, tb, &err) == 0);
	for (int i = 0; i < 5; i++)
		CHECK(((uint16_t *)tb->data)[i] == f32_to_bf16(vals[i]));
	CHECK(!err.set);

	/* integers load only into their own dtype */
	struct tensor *f2 = tensor_new(&a, DT_F32, TENSOR_SHAPE(2));
	CHECK(st_tensor_load(st_find(&f, "i32"), f2, &err) == -1);
	CHECK(strstr(err.msg, "\"i32\"") && strstr(err.msg, "cannot load"));
	CHECK(strstr(err.msg, path) != NULL);
	hug_error_clear(&err);
	CHECK(st_tensor_load(b, tensor_new(&a, DT_I32, TENSOR_SHAPE(5)), &err) == -1);
	hug_error_clear(&err);

	/* shape mismatch names the tensor and both shapes */
	CHECK(st_tensor_load(b, tensor_new(&a, DT_F32, TENSOR_SHAPE(1, 5)), &err) == -1);
	CHECK(strstr(err.msg, "\"as_bf16\"") && strstr(err.msg, "[5]") &&
	      strstr(err.msg, "[1, 5]"));
	hug_error_clear(&err);
	CHECK(st_tensor_load(b, tensor_new(&a, DT_F32, TENSOR_SHAPE(4)), &err) == -1);
	CHECK(strstr(err.msg, "[5]") && strstr(err.msg, "[4]"));
	st_close(&f);
	tsu_tmp_dir_remove(dir);
	arena_free(&a);
}

TEST(safetensors_metadata_roundtrip)
{
	struct arena a;
	struct hug_error err = { 0 };
	char dir[256], path[300];
	arena_init(&a, "test", 0, NULL);
	tsu_tmp_dir(dir, sizeof(dir), "st");
	snprintf(path, sizeof(path), "%s/meta.safetensors", dir);
	struct st_writer *w = st_writer_new();
	st_writer_set_metadata(w, "note", "first");
	st_writer_set_metadata(w, "odd \"key\"", "tab\there\nline \\ \x01 caf\xc3\xa9");
	st_writer_set_metadata(w, "note", "second");
	st_writer_set_metadata(w, "format", "pt");
	st_writer_add(w, "we\"ird\\name", tensor_zeros(&a, DT_F32, TENSOR_SHAPE(1)), DT_F32);
	REQUIRE(st_writer_write(w, path, &err) == 0);
	/* writing again replaces the file */
	REQUIRE(st_writer_write(w, path, &err) == 0);
	st_writer_free(w);
	CHECK(access(path, F_OK) == 0);
	char tmp[320];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	CHECK(access(tmp, F_OK) != 0);

	struct st_file f;
	REQUIRE(st_open(&f, path, &err) == 0);
	CHECK(f.n_meta == 3);
	CHECK(f.n_meta >= 1 && strcmp(f.meta_keys[0], "format") == 0);
	CHECK(strcmp(st_meta_get(&f, "format"), "pt") == 0);
	CHECK(st_meta_get(&f, "note") && strcmp(st_meta_get(&f, "note"), "second") == 0);
	const char *odd = st_meta_get(&f, "odd \"key\"");
	CHECK(odd && strcmp(odd, "tab\there\nline \\ \x01 caf\xc3\xa9") == 0);
	CHECK(st_meta_get(&f, "missing") == NULL);
	CHECK(f.n == 1 && st_find(&f, "we\"ird\\name") != NULL);
	st_close(&f);
	tsu_tmp_dir_remove(dir);
	arena_free(&a);
}

TEST(safetensors_write_error_names_file)
{
	struct arena a;
	struct hug_error err = { 0 };
	arena_init(&a, "test", 0, NULL);
	char dir[256], path[300], tmp[320];
	tsu_tmp_dir(dir, sizeof(dir), "st");
	snprintf(path, sizeof(path), "%s/dup.safetensors", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	struct st_writer *w = st_writer_new();
	st_writer_add(w, "x", tensor_zeros(&a, DT_F32, TENSOR_SHAPE(2)), DT_F32);
	CHECK(st_writer_write(w, "/nonexistent-dir/out.safetensors", &err) == -1);
	CHECK(strstr(err.msg, "/nonexistent-dir/out.safetensors") != NULL);
	hug_error_clear(&err);
	st_writer_add(w, "x", tensor_zeros(&a, DT_F32, TENSOR_SHAPE(2)), DT_F32);
	CHECK(st_writer_write(w, path, &err) == -1);
	CHECK(strstr(err.msg, "duplicate") && strstr(err.msg, "\"x\"") &&
	      strstr(err.msg, path));
	CHECK(access(path, F_OK) != 0 && access(tmp, F_OK) != 0);
	st_writer_free(w);
	tsu_tmp_dir_remove(dir);
	arena_free(&a);
}

/* ---- compatibility with the Python library ---- */

TEST(safetensors_reads_python_file)
{
	struct st_file f;
	struct hug_error err = { 0 };
	int rc = st_open(&f, PY_FIXTURE, &err);
	if (rc)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	REQUIRE(rc == 0);
	CHECK(f.n == 4);
	CHECK(strcmp(st_meta_get(&f, "format"), "pt") == 0);
	CHECK(st_meta_get(&f, "note") &&
	      strcmp(st_meta_get(&f, "note"), "made by safetensors") == 0);

	const struct st_tensor *t = st_find(&f, "f32");
	REQUIRE(t && t->dtype == DT_F32 && t->ndim == 2 && t->shape[0] == 2 &&
		t->shape[1] == 3);
	for (int i = 0; i < 6; i++) {
		float v;
		memcpy(&v, (const char *)t->data + 4 * i, 4);
		CHECK(v == (float)i * 0.5f - 1.0f);
	}
	t = st_find(&f, "bf16");
	REQUIRE(t && t->dtype == DT_BF16 && t->ndim == 1 && t->shape[0] == 4);
	const float bv[4] = { 1.5f, -2.0f, 0.25f, 3.0f };
	for (int i = 0; i < 4; i++) {
		uint16_t h;
		memcpy(&h, (const char *)t->data + 2 * i, 2);
		CHECK(h == f32_to_bf16(bv[i]));
	}
	t = st_find(&f, "i32");
	REQUIRE(t && t->dtype == DT_I32 && t->ndim == 1 && t->shape[0] == 3);
	const int32_t iv[3] = { 1, -2, 2147483647 };
	CHECK(memcmp(t->data, iv, sizeof(iv)) == 0);
	t = st_find(&f, "f16");
	REQUIRE(t && t->dtype == DT_F16 && t->ndim == 2);
	const uint16_t hv[4] = { 0x3800, 0xbc00, 0x7bff, 0x0400 };
	CHECK(memcmp(t->data, hv, sizeof(hv)) == 0);

	/* and through st_tensor_load, into f64 */
	struct arena a;
	arena_init(&a, "test", 0, NULL);
	struct tensor *d = tensor_new(&a, DT_F64, TENSOR_SHAPE(2, 2));
	CHECK(st_tensor_load(t, d, &err) == 0);
	CHECK(((double *)d->data)[2] == 65504.0);
	CHECK(((double *)d->data)[3] == 1.0 / 16384.0);
	arena_free(&a);
	st_close(&f);
}

/* The exact bytes safetensors.torch.save (0.8) writes for the tensors of
 * tools/ref/check_safetensors.py's expected(); hug's writer must match. */
static const char py_header[] =
	"{\"__metadata__\":{\"format\":\"pt\"},"
	"\"a.f64\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]},"
	"\"b.f32\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[32,56]},"
	"\"s.f32\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[56,60]},"
	"\"c.i32\":{\"dtype\":\"I32\",\"shape\":[3],\"data_offsets\":[60,72]},"
	"\"d.bf16\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[72,80]},"
	"\"e.f16\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[80,88]}}";
static const char py_data_hex[] =
	"000000000000e0bf000000000000d0bf0000000000000000000000000000d03f"
	"00000000000040400000c0400000c03f000090400000f04000002a4207000000"
	"f8ffffffffffff7fc03f00c0cd3d4940003800bc5535d063";

/* Writes the file tools/ref/check_safetensors.py checks: to $HUG_ST_OUT
 * when set (and kept there), else to a temp dir. */
TEST(safetensors_write_for_python)
{
	struct arena a;
	struct hug_error err = { 0 };
	char dir[256] = "", path[300];
	const char *out = getenv("HUG_ST_OUT");
	arena_init(&a, "test", 0, NULL);
	if (out && *out) {
		snprintf(path, sizeof(path), "%s", out);
	} else {
		tsu_tmp_dir(dir, sizeof(dir), "st");
		snprintf(path, sizeof(path), "%s/hug_written.safetensors", dir);
	}
	struct tensor *a64 = tensor_new(&a, DT_F64, TENSOR_SHAPE(2, 2));
	fill_pattern(a64, 0.25, -0.5);
	struct tensor *base = tensor_new(&a, DT_F32, TENSOR_SHAPE(3, 2));
	fill_pattern(base, 1.5, 0);
	struct tensor bt = *base; /* base transposed: [2, 3], strides [1, 2] */
	bt.shape[0] = 2;
	bt.shape[1] = 3;
	bt.stride[0] = 1;
	bt.stride[1] = 2;
	struct tensor *s = tensor_new(&a, DT_F32, 0, NULL);
	fill_pattern(s, 0, 42.5);
	struct tensor *c = tensor_new(&a, DT_I32, TENSOR_SHAPE(3));
	const int32_t cv[3] = { 7, -8, 2147483647 };
	memcpy(c->data, cv, sizeof(cv));
	struct tensor *d = tensor_new(&a, DT_F32, TENSOR_SHAPE(4));
	const float dv[4] = { 1.5f, -2.0f, 0.1f, 3.14159f };
	memcpy(d->data, dv, sizeof(dv));
	struct tensor *e = tensor_new(&a, DT_F64, TENSOR_SHAPE(2, 2));
	const double ev[4] = { 0.5, -1.0, 1.0 / 3.0, 1000.1 };
	memcpy(e->data, ev, sizeof(ev));

	struct st_writer *w = st_writer_new();
	st_writer_add(w, "a.f64", a64, DT_F64);
	st_writer_add(w, "b.f32", &bt, DT_F32);
	st_writer_add(w, "s.f32", s, DT_F32);
	st_writer_add(w, "c.i32", c, DT_I32);
	st_writer_add(w, "d.bf16", d, DT_BF16);
	st_writer_add(w, "e.f16", e, DT_F16);
	int rc = st_writer_write(w, path, &err);
	st_writer_free(w);
	if (rc)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	REQUIRE(rc == 0);

	size_t n = 0, hl = strlen(py_header), dl = strlen(py_data_hex) / 2;
	char *bytes = test_read_file(path, &n);
	REQUIRE(bytes);
	CHECK(n == 8 + hl + dl);
	if (n == 8 + hl + dl) {
		uint64_t len;
		memcpy(&len, bytes, 8);
		CHECK(len == hl);
		CHECK(memcmp(bytes + 8, py_header, hl) == 0);
		for (size_t i = 0; i < dl; i++) {
			unsigned v;
			sscanf(py_data_hex + 2 * i, "%2x", &v);
			if ((unsigned char)bytes[8 + hl + i] != v) {
				test_fail_at(__FILE__, __LINE__,
					     "data byte %zu: %02x, want %02x", i,
					     (unsigned char)bytes[8 + hl + i], v);
				break;
			}
		}
	}
	hug_free(bytes);
	if (dir[0])
		tsu_tmp_dir_remove(dir);
	arena_free(&a);
}

/* ---- malformed files ---- */

/* st_open on `path` fails, the message names the file and contains
 * `keyword`, and the st_file is left empty. */
static void expect_bad_at(const char *file, int line, const char *path,
			  const char *keyword)
{
	struct st_file f;
	struct hug_error err = { 0 };
	int rc = st_open(&f, path, &err);
	if (rc != -1) {
		test_fail_at(file, line, "st_open(%s) = %d, want -1", path, rc);
		if (rc == 0)
			st_close(&f);
		return;
	}
	if (!err.set || !strstr(err.msg, path) || !strstr(err.msg, keyword))
		test_fail_at(file, line, "message \"%s\" lacks the path or \"%s\"",
			     err.msg, keyword);
	if (f.map || f.tensors || f.n || f.meta_keys || f.path)
		test_fail_at(file, line, "st_file not left empty");
	st_close(&f);
}

#define EXPECT_BAD(path, keyword) expect_bad_at(__FILE__, __LINE__, path, keyword)

/* Writes header (with a correct length) plus data_len bytes to a fresh
 * file in dir and expects st_open to refuse it. */
#define BAD_HEADER(dir, header, data_len, keyword)                            \
	do {                                                                   \
		char p_[300];                                                  \
		snprintf(p_, sizeof(p_), "%s/bad%d.safetensors", dir, __LINE__); \
		write_st(p_, header, data_len);                                \
		expect_bad_at(__FILE__, __LINE__, p_, keyword);               \
	} while (0)

/* A header st_open must refuse: the header, the data bytes after it, a
 * keyword of the message. */
struct bad_header {
	const char *header;
	size_t data_len;
	const char *keyword;
};

/* BAD_HEADER for each of the n cases, each in its own file of a fresh
 * directory; a failure names the case's index (the line is the caller's). */
static void expect_bad_headers_at(const char *file, int line, const struct bad_header *c,
				  size_t n)
{
	char dir[256], p[300];
	tsu_tmp_dir(dir, sizeof(dir), "st");
	for (size_t i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/bad%zu.safetensors", dir, i);
		write_st(p, c[i].header, c[i].data_len);
		int failed = test_failed_now();
		expect_bad_at(file, line, p, c[i].keyword);
		if (!failed && test_failed_now())
			test_fail_at(file, line, "(case %zu: %s)", i, c[i].header);
	}
	tsu_tmp_dir_remove(dir);
}

#define EXPECT_BAD_HEADERS(cases)                                                              \
	expect_bad_headers_at(__FILE__, __LINE__, cases, sizeof(cases) / sizeof(cases[0]))

/* The header is well-formed: st_open must succeed. */
static int open_ok(const char *dir, const char *header, size_t data_len,
		   struct st_file *f)
{
	char p[300];
	struct hug_error err = { 0 };
	snprintf(p, sizeof(p), "%s/good.safetensors", dir);
	write_st(p, header, data_len);
	int rc = st_open(f, p, &err);
	if (rc)
		fprintf(stderr, "    unexpected: %s\n", err.msg);
	return rc;
}

TEST(safetensors_bad_framing)
{
	char dir[256], p[300];
	tsu_tmp_dir(dir, sizeof(dir), "st");

	snprintf(p, sizeof(p), "%s/short.safetensors", dir);
	write_bytes(p, "\x10\0\0\0\0", 5);
	EXPECT_BAD(p, "too short");
	snprintf(p, sizeof(p), "%s/empty.safetensors", dir);
	write_bytes(p, "", 0);
	EXPECT_BAD(p, "too short");
	snprintf(p, sizeof(p), "%s/missing.safetensors", dir);
	EXPECT_BAD(p, "cannot open");
	EXPECT_BAD(dir, "not a regular file");

	snprintf(p, sizeof(p), "%s/zero.safetensors", dir);
	write_st_raw(p, 0, "{}", 2, 0);
	EXPECT_BAD(p, "header length is 0");
	snprintf(p, sizeof(p), "%s/past.safetensors", dir);
	write_st_raw(p, 100, "{}", 2, 0);
	EXPECT_BAD(p, "past the end of the file");
	snprintf(p, sizeof(p), "%s/huge.safetensors", dir);
	write_st_raw(p, 200u * 1000u * 1000u, "{}", 2, 0);
	EXPECT_BAD(p, "too large");
	snprintf(p, sizeof(p), "%s/huge2.safetensors", dir);
	write_st_raw(p, UINT64_MAX, "{}", 2, 0);
	EXPECT_BAD(p, "too large");
	tsu_tmp_dir_remove(dir);
}

TEST(safetensors_bad_json)
{
	char dir[256];
	tsu_tmp_dir(dir, sizeof(dir), "st");
	BAD_HEADER(dir, "{\"a\": ", 0, "not valid JSON");
	BAD_HEADER(dir, "hello", 0, "not valid JSON");
	BAD_HEADER(dir, "{} trailing", 0, "not valid JSON");
	/* NUL bytes instead of space padding */
	static const char nul_pad[] = "{}\0\0\0\0\0\0";
	char p[300];
	snprintf(p, sizeof(p), "%s/nulpad.safetensors", dir);
	write_st_raw(p, 8, nul_pad, 8, 0);
	EXPECT_BAD(p, "not valid JSON");
	BAD_HEADER(dir, "[1, 2]", 0, "expected a JSON object");
	BAD_HEADER(dir, "\"str\"", 0, "expected a JSON object");
	BAD_HEADER(dir, "{\"t\": 5}", 0, "expected an object");
	BAD_HEADER(dir, "{\"t\": [1]}", 0, "expected an object");
	/* a truncated escape near the end of the header */
	BAD_HEADER(dir, "{\"t\\u12", 0, "not valid JSON");
	tsu_tmp_dir_remove(dir);
}

TEST(safetensors_bad_fields)
{
	static const struct bad_header cases[] = {
		{ "{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		  "missing \"dtype\"" },
		{ "{\"t\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		  "\"dtype\" is a number" },
		{ "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
		  "missing \"shape\"" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4,
		  "\"shape\" is a string" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
		  "missing \"data_offsets\"" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
		  "data_offsets" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}}", 4,
		  "data_offsets" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4,
		  "data_offsets" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
		  "non-negative integers" },
	};
	EXPECT_BAD_HEADERS(cases);
}

TEST(safetensors_bad_dtypes)
{
	static const struct bad_header cases[] = {
		{ "{\"t\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		  "unknown dtype \"F33\"" },
		{ "{\"t\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		  "unknown dtype \"f32\"" },
		{ "{\"t\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
		  "unsupported" },
		{ "{\"t\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
		  "\"BOOL\" is unsupported" },
		{ "{\"t\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
		  "unsupported" },
		{ "{\"t\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2,
		  "unsupported" },
	};
	EXPECT_BAD_HEADERS(cases);
}

TEST(safetensors_bad_shapes_and_offsets)
{
	static const struct bad_header cases[] = {
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
		  "shape[0] is not a non-negative integer" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,2.5],\"data_offsets\":[0,4]}}", 4,
		  "shape[1] is not a non-negative integer" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,\"2\"],\"data_offsets\":[0,8]}}", 8,
		  "shape[1]" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4,
		  "shape[0]" },
		{ "{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
		  "more than the 8" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
		  "overflows" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24,
		  "needs 24 bytes" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8,
		  "begin is after end" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
		  "past the end of the data buffer" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[9,9]}}", 8,
		  "past the end of the data buffer" },
		{ "{\"h.0.b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
		  "\"h.0.w\":{\"dtype\":\"F32\",\"shape\":[16],\"data_offsets\":[0,64]}}",
		  64, "overlap" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]},"
		  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]},"
		  "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
		  24, "overlap tensor \"a\"" },
		{ "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		  "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
		  8, "duplicate" },
	};
	EXPECT_BAD_HEADERS(cases);
}

TEST(safetensors_bad_metadata)
{
	static const struct bad_header cases[] = {
		{ "{\"__metadata__\":[1]}", 0,
		  "__metadata__" },
		{ "{\"__metadata__\":\"pt\"}", 0,
		  "expected an object of strings" },
		{ "{\"__metadata__\":{\"format\":\"pt\",\"n\":3}}", 0,
		  "value of \"n\" is a number, expected a string" },
		{ "{\"__metadata__\":{},\"__metadata__\":{}}", 0,
		  "duplicate" },
	};
	EXPECT_BAD_HEADERS(cases);
}

TEST(safetensors_accepts_gaps_and_empty)
{
	char dir[256];
	struct st_file f;
	tsu_tmp_dir(dir, sizeof(dir), "st");
	/* a gap between tensors, zero-size tensors sharing an offset, entries
	 * listed out of offset order, padding spaces, extra entry keys */
	const char *h =
		"{\"late\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]},"
		"\"e1\":{\"dtype\":\"F16\",\"shape\":[0,3],\"data_offsets\":[8,8]},"
		"\"e2\":{\"dtype\":\"BF16\",\"shape\":[3,0],\"data_offsets\":[8,8]},"
		"\"early\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1],\"x\":1},"
		"\"__metadata__\":{\"format\":\"pt\"}}      ";
	REQUIRE(open_ok(dir, h, 24, &f) == 0);
	CHECK(f.n == 4);
	CHECK(strcmp(f.tensors[0].name, "early") == 0);
	CHECK(strcmp(f.tensors[3].name, "late") == 0);
	CHECK(f.tensors[0].ndim == 0 && f.tensors[0].nbytes == 1);
	CHECK(st_find(&f, "e1")->nbytes == 0);
	CHECK((const char *)st_find(&f, "late")->data ==
	      (const char *)f.map + 8 + strlen(h) + 16);
	st_close(&f);
	/* an empty header object is a valid file with no tensors */
	REQUIRE(open_ok(dir, "{}", 0, &f) == 0);
	CHECK(f.n == 0 && f.n_meta == 0);
	st_close(&f);
	tsu_tmp_dir_remove(dir);
}
