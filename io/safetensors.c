/* safetensors.c: the safetensors reader (mmap + full header validation) and
 * writer (compact header padded to 8 bytes, packed data, atomic replace).
 *
 * st_open refuses, with a message naming the file and the problem:
 * a file shorter than 8 bytes; a header length of 0, over ST_MAX_HEADER or
 * past the end of the file; a header that is not JSON, not an object, or has
 * bytes other than whitespace after the object; an entry that is not an
 * object; a missing or wrong-typed dtype, shape or data_offsets; an unknown
 * dtype, or a known safetensors dtype hug does not support ("unsupported");
 * shape entries that are not non-negative integers; more than ST_MAX_DIMS
 * dims; a byte count that overflows or differs from end - begin; begin >
 * end; end past the data buffer; overlapping tensors; duplicate names; a
 * __metadata__ that is not an object of strings. Gaps between tensors are
 * allowed. */
#include "safetensors.h"

#include "../base/json.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../autograd/transfer.h"
#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/panic.h"

/* ---- dtypes ---- */

/* Every dtype the safetensors format defines; hug reads the first six. */
static const struct {
	const char *name;
	int dtype; /* enum dtype, or -1: known but unsupported */
} st_dtypes[] = {
	{ "F32", DT_F32 },   { "F64", DT_F64 },	    { "BF16", DT_BF16 },
	{ "F16", DT_F16 },   { "I32", DT_I32 },	    { "U8", DT_U8 },
	{ "BOOL", -1 },	     { "I8", -1 },	    { "I16", -1 },
	{ "U16", -1 },	     { "U32", -1 },	    { "I64", -1 },
	{ "U64", -1 },	     { "F8_E5M2", -1 },	    { "F8_E4M3", -1 },
	{ "F8_E8M0", -1 },   { "F6_E2M3", -1 },	    { "F6_E3M2", -1 },
	{ "F4", -1 },	     { "C64", -1 },
};

const char *st_dtype_name(enum dtype dt)
{
	for (size_t i = 0; i < sizeof(st_dtypes) / sizeof(st_dtypes[0]); i++)
		if (st_dtypes[i].dtype == (int)dt)
			return st_dtypes[i].name;
	hug_panic("st_dtype_name: bad dtype %d", (int)dt);
}

/* ---- reader ---- */

/* A non-negative integer JSON number -> *out; false otherwise. */
static bool json_u64(const cJSON *item, uint64_t *out)
{
	if (!cJSON_IsNumber(item))
		return false;
	double v = item->valuedouble;
	if (!(v >= 0 && v <= (double)HUG_JSON_INT_MAX) || v != floor(v))
		return false;
	*out = (uint64_t)v;
	return true;
}

static void shape_text(int ndim, const int64_t *shape, char *buf, size_t n)
{
	size_t off = 0;
	off += (size_t)snprintf(buf, n, "[");
	for (int d = 0; d < ndim && off < n; d++)
		off += (size_t)snprintf(buf + off, n - off, "%s%" PRId64,
					d ? ", " : "", shape[d]);
	if (off < n)
		snprintf(buf + off, n - off, "]");
}

char *st_tensor_describe(const struct st_tensor *t, char *buf, size_t n)
{
	char s[256];
	shape_text(t->ndim, t->shape, s, sizeof(s));
	snprintf(buf, n, "%s %s", s, st_dtype_name(t->dtype));
	return buf;
}

/* Member `key` of the entry e of tensor `name` -> *out. Missing, or (when
 * `is` is given) not of that type (`what`: "a string"), is an error naming
 * the file and the tensor. 0 or -1. */
static int entry_member(const char *path, const char *name, const cJSON *e, const char *key,
			cJSON_bool (*is)(const cJSON *), const char *what, const cJSON **out,
			struct hug_error *err)
{
	*out = cJSON_GetObjectItemCaseSensitive(e, key);
	if (!*out)
		return hug_error_set(err, "%s: tensor \"%s\": missing \"%s\"", path, name, key);
	if (is && !is(*out))
		return hug_error_set(err, "%s: tensor \"%s\": \"%s\" is %s, expected %s", path,
				     name, key, hug_json_kind(*out), what);
	return 0;
}

static int parse_dtype(const char *path, const char *name, const cJSON *e,
		       struct st_tensor *t, struct hug_error *err)
{
	const cJSON *dt;
	if (entry_member(path, name, e, "dtype", cJSON_IsString, "a string", &dt, err))
		return -1;
	for (size_t i = 0; i < sizeof(st_dtypes) / sizeof(st_dtypes[0]); i++) {
		if (strcmp(dt->valuestring, st_dtypes[i].name) != 0)
			continue;
		if (st_dtypes[i].dtype < 0)
			return hug_error_set(err,
					     "%s: tensor \"%s\": dtype \"%s\" is unsupported by hug (it reads F32, F64, BF16, F16, I32, U8)",
					     path, name, dt->valuestring);
		t->dtype = (enum dtype)st_dtypes[i].dtype;
		return 0;
	}
	return hug_error_set(err, "%s: tensor \"%s\": unknown dtype \"%s\"",
			     path, name, dt->valuestring);
}

static int parse_shape(const char *path, const char *name, const cJSON *e,
		       struct st_tensor *t, struct hug_error *err)
{
	const cJSON *sh;
	if (entry_member(path, name, e, "shape", cJSON_IsArray, "an array", &sh, err))
		return -1;
	int n = cJSON_GetArraySize(sh);
	if (n > ST_MAX_DIMS)
		return hug_error_set(err,
				     "%s: tensor \"%s\": shape has %d dims, more than the %d hug reads",
				     path, name, n, ST_MAX_DIMS);
	t->ndim = 0;
	const cJSON *d;
	cJSON_ArrayForEach(d, sh) {
		uint64_t v;
		if (!json_u64(d, &v))
			return hug_error_set(err,
					     "%s: tensor \"%s\": shape[%d] is not a non-negative integer",
					     path, name, t->ndim);
		t->shape[t->ndim++] = (int64_t)v;
	}
	return 0;
}

/* Parses data_offsets and checks them against the shape and the buffer. */
static int parse_offsets(const char *path, const char *name, const cJSON *e,
			 uint64_t buf_size, struct st_tensor *t,
			 struct hug_error *err)
{
	const cJSON *off;
	uint64_t b, end, bytes = dtype_size(t->dtype);
	if (entry_member(path, name, e, "data_offsets", NULL, NULL, &off, err))
		return -1;
	if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
	    !json_u64(cJSON_GetArrayItem(off, 0), &b) ||
	    !json_u64(cJSON_GetArrayItem(off, 1), &end))
		return hug_error_set(err,
				     "%s: tensor \"%s\": \"data_offsets\" must be an array of 2 non-negative integers",
				     path, name);
	if (b > end)
		return hug_error_set(err,
				     "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "]: begin is after end",
				     path, name, b, end);
	char s[256];
	shape_text(t->ndim, t->shape, s, sizeof(s));
	for (int d = 0; d < t->ndim; d++)
		if (__builtin_mul_overflow(bytes, (uint64_t)t->shape[d], &bytes))
			return hug_error_set(err,
					     "%s: tensor \"%s\": shape %s overflows the byte count",
					     path, name, s);
	if (bytes != end - b)
		return hug_error_set(err,
				     "%s: tensor \"%s\": shape %s of %s needs %" PRIu64 " bytes but data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64,
				     path, name, s, st_dtype_name(t->dtype), bytes,
				     b, end, end - b);
	if (end > buf_size)
		return hug_error_set(err,
				     "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] run past the end of the data buffer (%" PRIu64 " bytes)",
				     path, name, b, end, buf_size);
	t->begin = b;
	t->nbytes = (size_t)bytes;
	return 0;
}

static int parse_entry(struct st_file *f, const cJSON *e, const char *data,
		       uint64_t buf_size, struct st_tensor *t,
		       struct hug_error *err)
{
	const char *name = e->string;
	t->name = hug_strdup(name);
	t->path = f->path;
	if (!cJSON_IsObject(e))
		return hug_error_set(err,
				     "%s: tensor \"%s\": entry is %s, expected an object",
				     f->path, name, hug_json_kind(e));
	if (parse_dtype(f->path, name, e, t, err) ||
	    parse_shape(f->path, name, e, t, err) ||
	    parse_offsets(f->path, name, e, buf_size, t, err))
		return -1;
	t->data = data + t->begin;
	return 0;
}

static int parse_metadata(struct st_file *f, const cJSON *m,
			  struct hug_error *err)
{
	if (f->meta_keys)
		return hug_error_set(err, "%s: \"__metadata__\" appears twice (duplicate key)",
				     f->path);
	if (!cJSON_IsObject(m))
		return hug_error_set(err,
				     "%s: __metadata__ is %s, expected an object of strings",
				     f->path, hug_json_kind(m));
	int n = cJSON_GetArraySize(m);
	f->meta_keys = hug_calloc((size_t)n + 1, sizeof(char *));
	f->meta_values = hug_calloc((size_t)n + 1, sizeof(char *));
	const cJSON *kv;
	cJSON_ArrayForEach(kv, m) {
		if (!cJSON_IsString(kv))
			return hug_error_set(err,
					     "%s: __metadata__: value of \"%s\" is %s, expected a string (metadata must be an object of strings)",
					     f->path, kv->string, hug_json_kind(kv));
		f->meta_keys[f->n_meta] = hug_strdup(kv->string);
		f->meta_values[f->n_meta] = hug_strdup(kv->valuestring);
		f->n_meta++;
	}
	return 0;
}

static int by_name(const void *a, const void *b)
{
	const struct st_tensor *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static int by_offset(const void *a, const void *b)
{
	const struct st_tensor *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->nbytes != y->nbytes)
		return x->nbytes < y->nbytes ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int check_duplicates(const struct st_file *f, struct hug_error *err)
{
	const struct st_tensor **p = hug_malloc((size_t)f->n * sizeof(*p));
	int rc = 0;
	for (int i = 0; i < f->n; i++)
		p[i] = &f->tensors[i];
	qsort(p, (size_t)f->n, sizeof(*p), by_name);
	for (int i = 1; i < f->n; i++) {
		if (strcmp(p[i - 1]->name, p[i]->name) == 0) {
			rc = hug_error_set(err,
					   "%s: tensor \"%s\" appears twice in the header (duplicate name)",
					   f->path, p[i]->name);
			break;
		}
	}
	hug_free(p);
	return rc;
}

/* Tensors are sorted by offset: a non-empty tensor overlaps an earlier one
 * exactly when it begins before the largest end seen so far. */
static int check_overlaps(const struct st_file *f, struct hug_error *err)
{
	const struct st_tensor *last = NULL; /* non-empty, largest end */
	for (int i = 0; i < f->n; i++) {
		const struct st_tensor *t = &f->tensors[i];
		if (t->nbytes == 0)
			continue;
		if (last && t->begin < last->begin + last->nbytes)
			return hug_error_set(err,
					     "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor \"%s\" [%" PRIu64 ", %" PRIu64 "]",
					     f->path, t->name, t->begin,
					     t->begin + t->nbytes, last->name,
					     last->begin, last->begin + last->nbytes);
		if (!last || t->begin + t->nbytes > last->begin + last->nbytes)
			last = t;
	}
	return 0;
}

/* Parses the JSON text hdr (hlen bytes, NUL-terminated) into f. */
static int parse_json(struct st_file *f, const char *hdr, uint64_t hlen,
		      const char *data, uint64_t buf_size,
		      struct hug_error *err)
{
	const char *end = NULL;
	int rc = -1;
	hug_json_init();
	cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
	if (!root)
		return hug_error_set(err,
				     "%s: header is not valid JSON (parse error at byte %td of %" PRIu64 ")",
				     f->path, end ? end - hdr : (ptrdiff_t)0, hlen);
	for (const char *p = end; p < hdr + hlen; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
			hug_error_set(err,
				      "%s: header is not valid JSON (unexpected bytes after the object at byte %td)",
				      f->path, p - hdr);
			goto free_json;
		}
	}
	if (!cJSON_IsObject(root)) {
		hug_error_set(err, "%s: header is %s, expected a JSON object",
			      f->path, hug_json_kind(root));
		goto free_json;
	}

	int n = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, root)
		n += strcmp(e->string, "__metadata__") != 0;
	f->tensors = hug_calloc((size_t)n + 1, sizeof(*f->tensors));
	cJSON_ArrayForEach(e, root) {
		if (strcmp(e->string, "__metadata__") == 0) {
			if (parse_metadata(f, e, err))
				goto free_json;
			continue;
		}
		/* counted before parsing, so st_close frees its name */
		struct st_tensor *t = &f->tensors[f->n++];
		if (parse_entry(f, e, data, buf_size, t, err))
			goto free_json;
	}
	if (check_duplicates(f, err))
		goto free_json;
	qsort(f->tensors, (size_t)f->n, sizeof(*f->tensors), by_offset);
	rc = check_overlaps(f, err);
free_json:
	cJSON_Delete(root);
	return rc;
}

static int parse_header(struct st_file *f, struct hug_error *err)
{
	const unsigned char *m = f->map;
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | m[i];
	if (hlen == 0)
		return hug_error_set(err,
				     "%s: header length is 0 (not a safetensors file?)",
				     f->path);
	if (hlen > ST_MAX_HEADER)
		return hug_error_set(err,
				     "%s: header length %" PRIu64 " is too large (limit %u bytes; not a safetensors file?)",
				     f->path, hlen, ST_MAX_HEADER);
	if (hlen > f->map_size - 8)
		return hug_error_set(err,
				     "%s: header length %" PRIu64 " runs past the end of the file (%zu bytes; truncated?)",
				     f->path, hlen, f->map_size);
	/* a NUL-terminated copy, so the parser cannot read past the header */
	char *hdr = hug_malloc((size_t)hlen + 1);
	memcpy(hdr, m + 8, (size_t)hlen);
	hdr[hlen] = '\0';
	const char *data = (const char *)m + 8 + hlen;
	int rc = parse_json(f, hdr, hlen, data, f->map_size - 8 - hlen, err);
	hug_free(hdr);
	return rc;
}

int st_open(struct st_file *f, const char *path, struct hug_error *err)
{
	struct stat st;
	memset(f, 0, sizeof(*f));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hug_error_set(err, "%s: cannot open: %s", path,
				     strerror(errno));
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return hug_error_set(err, "%s: cannot stat: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return hug_error_set(err, "%s: not a regular file", path);
	}
	if (st.st_size < 8) {
		close(fd);
		return hug_error_set(err,
				     "%s: file is %lld bytes, too short for the 8-byte header length (truncated?)",
				     path, (long long)st.st_size);
	}
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (map == MAP_FAILED)
		return hug_error_set(err, "%s: cannot map: %s", path, strerror(e));
	f->path = hug_strdup(path);
	f->map = map;
	f->map_size = (size_t)st.st_size;
	if (parse_header(f, err)) {
		st_close(f);
		return -1;
	}
	return 0;
}

void st_tensor_release(const struct st_file *f, const struct st_tensor *t)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t base = (uintptr_t)f->map, end_map = base + f->map_size;
	uintptr_t lo = (uintptr_t)t->data, hi = lo + t->nbytes;
	if (!f->map || page <= 0 || t->nbytes == 0 || lo < base || hi > end_map)
		return;
	/* whole pages around the tensor: a private read-only file mapping
	 * refaults any of them, neighbours' bytes included, from the file */
	lo -= (lo - base) % (uintptr_t)page;
	hi = hi + ((uintptr_t)page - (hi - base) % (uintptr_t)page) % (uintptr_t)page;
	if (hi > end_map)
		hi = end_map;
	madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void st_close(struct st_file *f)
{
	if (f->map)
		munmap(f->map, f->map_size);
	for (int i = 0; i < f->n; i++)
		hug_free(f->tensors[i].name);
	for (int i = 0; i < f->n_meta; i++) {
		hug_free(f->meta_keys[i]);
		hug_free(f->meta_values[i]);
	}
	hug_free(f->tensors);
	hug_free(f->meta_keys);
	hug_free(f->meta_values);
	hug_free(f->path);
	memset(f, 0, sizeof(*f));
}

const struct st_tensor *st_find(const struct st_file *f, const char *name)
{
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->tensors[i].name, name) == 0)
			return &f->tensors[i];
	return NULL;
}

const char *st_meta_get(const struct st_file *f, const char *key)
{
	for (int i = 0; i < f->n_meta; i++)
		if (strcmp(f->meta_keys[i], key) == 0)
			return f->meta_values[i];
	return NULL;
}

/* ---- element conversion (sources may be unaligned: memcpy) ---- */

static double get_float(const unsigned char *p, enum dtype dt)
{
	switch (dt) {
	case DT_F32: {
		float v;
		memcpy(&v, p, 4);
		return v;
	}
	case DT_F64: {
		double v;
		memcpy(&v, p, 8);
		return v;
	}
	case DT_BF16:
	case DT_F16: {
		uint16_t h;
		memcpy(&h, p, 2);
		return dt == DT_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
	}
	default:
		hug_panic("get_float: %s is not a float dtype", dtype_name(dt));
	}
}

/* f64 -> bf16/f16 goes through f32 (as torch does). */
static void put_float(unsigned char *p, enum dtype dt, double v)
{
	switch (dt) {
	case DT_F32: {
		float f = (float)v;
		memcpy(p, &f, 4);
		break;
	}
	case DT_F64:
		memcpy(p, &v, 8);
		break;
	case DT_BF16:
	case DT_F16: {
		uint16_t h = dt == DT_BF16 ? f32_to_bf16((float)v)
					   : f32_to_f16((float)v);
		memcpy(p, &h, 2);
		break;
	}
	default:
		hug_panic("put_float: %s is not a float dtype", dtype_name(dt));
	}
}

static void convert_one(unsigned char *dst, enum dtype ddt,
			const unsigned char *src, enum dtype sdt)
{
	if (ddt == sdt)
		memcpy(dst, src, dtype_size(ddt));
	else
		put_float(dst, ddt, get_float(src, sdt));
}

_Static_assert(TENSOR_MAX_DIMS == 4, "the strided loops below assume 4 dims");

/* Shape and strides of t padded in front to 4 dims. */
static void pad4(const struct tensor *t, int64_t *shape, int64_t *stride)
{
	int lead = TENSOR_MAX_DIMS - t->ndim;
	for (int d = 0; d < TENSOR_MAX_DIMS; d++) {
		shape[d] = d < lead ? 1 : t->shape[d - lead];
		stride[d] = d < lead ? 0 : t->stride[d - lead];
	}
}

/* Copies the packed row-major elements at src (dtype sdt) into dst. */
static void unpack_into(struct tensor *dst, const unsigned char *src,
			enum dtype sdt)
{
	int64_t sh[4], st[4];
	size_t ss = dtype_size(sdt), ds = dtype_size(dst->dtype);
	unsigned char *d = dst->data;
	pad4(dst, sh, st);
	for (int64_t i0 = 0; i0 < sh[0]; i0++)
		for (int64_t i1 = 0; i1 < sh[1]; i1++)
			for (int64_t i2 = 0; i2 < sh[2]; i2++) {
				int64_t o = i0 * st[0] + i1 * st[1] + i2 * st[2];
				for (int64_t i3 = 0; i3 < sh[3]; i3++) {
					convert_one(d + (o + i3 * st[3]) * (int64_t)ds,
						    dst->dtype, src, sdt);
					src += ss;
				}
			}
}

/* The index of the first NaN or Inf among the file tensor's float
 * elements, or -1 (also for integer dtypes). */
static int64_t first_nonfinite(const struct st_tensor *src)
{
	if (!dtype_is_float(src->dtype))
		return -1;
	size_t ss = dtype_size(src->dtype);
	const unsigned char *p = src->data;
	for (size_t i = 0; i < src->nbytes / ss; i++)
		if (!isfinite(get_float(p + i * ss, src->dtype)))
			return (int64_t)i;
	return -1;
}

int st_tensor_load(const struct st_tensor *src, struct tensor *dst,
		   struct hug_error *err)
{
	const char *path = src->path ? src->path : "safetensors";
	char a[256], b[256];
	if (dst->device != DEV_CPU) { /* through a host copy */
		struct arena host;
		arena_init(&host, "st-load", 0, NULL);
		struct tensor *h = tensor_new_like(&host, dst);
		int rc = st_tensor_load(src, h, err);
		if (!rc)
			tensor_transfer(dst, h);
		arena_free(&host);
		return rc;
	}
	bool same = src->ndim == dst->ndim;
	for (int d = 0; same && d < src->ndim; d++)
		same = src->shape[d] == dst->shape[d];
	if (!same) {
		shape_text(src->ndim, src->shape, a, sizeof(a));
		shape_text(dst->ndim, dst->shape, b, sizeof(b));
		return hug_error_set(err,
				     "%s: tensor \"%s\": shape %s in the file, %s expected",
				     path, src->name, a, b);
	}
	if (src->dtype != dst->dtype &&
	    !(dtype_is_float(src->dtype) && dtype_is_float(dst->dtype)))
		return hug_error_set(err,
				     "%s: tensor \"%s\": cannot load %s data into a %s tensor",
				     path, src->name, st_dtype_name(src->dtype),
				     dtype_name(dst->dtype));
	int64_t bad = first_nonfinite(src); /* weights, adapters and optimizer state alike */
	if (bad >= 0)
		return hug_error_set(err, "%s: tensor \"%s\": element %lld is NaN or infinite; "
				     "refusing to load non-finite values", path, src->name,
				     (long long)bad);
	if (src->dtype == dst->dtype && tensor_is_contiguous(dst))
		memcpy(dst->data, src->data, src->nbytes);
	else
		unpack_into(dst, src->data, src->dtype);
	return 0;
}

/* ---- writer ---- */

struct st_writer_entry {
	char *name;
	const struct tensor *t;
	enum dtype disk;
};

struct st_writer {
	int n, cap;
	struct st_writer_entry *e;
	struct arena staging;  /* host copies of device tensors */
	int n_meta, cap_meta;
	char **keys, **values; /* keys[0] is "format" */
};

struct st_writer *st_writer_new(void)
{
	struct st_writer *w = hug_calloc(1, sizeof(*w));
	arena_init(&w->staging, "st-writer", 0, NULL);
	st_writer_set_metadata(w, "format", "pt");
	return w;
}

void st_writer_add(struct st_writer *w, const char *name,
		   const struct tensor *t, enum dtype disk)
{
	HUG_ASSERT((unsigned)disk < DT_COUNT);
	if (t->device != DEV_CPU) {
		struct tensor *h = tensor_new_like(&w->staging, t);
		tensor_transfer(h, t);
		t = h;
	}
	HUG_ASSERT(disk == t->dtype ||
		   (dtype_is_float(disk) && dtype_is_float(t->dtype)));
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 16;
		w->e = hug_realloc(w->e, (size_t)w->cap * sizeof(*w->e));
	}
	w->e[w->n++] = (struct st_writer_entry){
		.name = hug_strdup(name), .t = t, .disk = disk
	};
}

void st_writer_set_metadata(struct st_writer *w, const char *key,
			    const char *value)
{
	if (strcmp(key, "format") == 0 && w->n_meta > 0) {
		HUG_ASSERT(strcmp(value, "pt") == 0);
		return;
	}
	for (int i = 0; i < w->n_meta; i++) {
		if (strcmp(w->keys[i], key) == 0) {
			hug_free(w->values[i]);
			w->values[i] = hug_strdup(value);
			return;
		}
	}
	if (w->n_meta == w->cap_meta) {
		w->cap_meta = w->cap_meta ? 2 * w->cap_meta : 4;
		w->keys = hug_realloc(w->keys, (size_t)w->cap_meta * sizeof(char *));
		w->values = hug_realloc(w->values, (size_t)w->cap_meta * sizeof(char *));
	}
	w->keys[w->n_meta] = hug_strdup(key);
	w->values[w->n_meta] = hug_strdup(value);
	w->n_meta++;
}

void st_writer_free(struct st_writer *w)
{
	if (!w)
		return;
	for (int i = 0; i < w->n; i++)
		hug_free(w->e[i].name);
	for (int i = 0; i < w->n_meta; i++) {
		hug_free(w->keys[i]);
		hug_free(w->values[i]);
	}
	hug_free(w->e);
	hug_free(w->keys);
	hug_free(w->values);
	arena_free(&w->staging);
	hug_free(w);
}

static void build_header(const struct st_writer *w, struct buf *b)
{
	char num[64];
	uint64_t off = 0;
	buf_str(b, "{\"__metadata__\":{");
	for (int i = 0; i < w->n_meta; i++) {
		if (i)
			buf_str(b, ",");
		hug_json_quote(b, w->keys[i]);
		buf_str(b, ":");
		hug_json_quote(b, w->values[i]);
	}
	buf_str(b, "}");
	for (int i = 0; i < w->n; i++) {
		const struct tensor *t = w->e[i].t;
		uint64_t nbytes = (uint64_t)tensor_numel(t) * dtype_size(w->e[i].disk);
		buf_str(b, ",");
		hug_json_quote(b, w->e[i].name);
		buf_str(b, ":{\"dtype\":\"");
		buf_str(b, st_dtype_name(w->e[i].disk));
		buf_str(b, "\",\"shape\":[");
		for (int d = 0; d < t->ndim; d++) {
			snprintf(num, sizeof(num), "%s%" PRId64, d ? "," : "",
				 t->shape[d]);
			buf_str(b, num);
		}
		snprintf(num, sizeof(num), "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}",
			 off, off + nbytes);
		buf_str(b, num);
		off += nbytes;
	}
	buf_str(b, "}");
	while (b->n % 8)
		buf_str(b, " ");
}

/* Buffered output to a file descriptor; the first failure sticks. */
struct outf {
	int fd;
	const char *path;
	unsigned char *buf;
	size_t len, cap;
	int failed;
};

static int write_all(struct outf *o, const void *p, size_t n,
		     struct hug_error *err)
{
	if (!o->failed && fs_write_all(o->fd, o->path, p, n, err))
		o->failed = 1;
	return o->failed ? -1 : 0;
}

static int out_flush(struct outf *o, struct hug_error *err)
{
	int rc = write_all(o, o->buf, o->len, err);
	o->len = 0;
	return rc;
}

/* Streams the logical elements of t converted to `disk` through o->buf. */
static int write_converted(struct outf *o, const struct tensor *t,
			   enum dtype disk, struct hug_error *err)
{
	int64_t sh[4], st[4];
	size_t ss = dtype_size(t->dtype), ds = dtype_size(disk);
	const unsigned char *s = t->data;
	pad4(t, sh, st);
	for (int64_t i0 = 0; i0 < sh[0]; i0++)
		for (int64_t i1 = 0; i1 < sh[1]; i1++)
			for (int64_t i2 = 0; i2 < sh[2]; i2++) {
				int64_t base = i0 * st[0] + i1 * st[1] + i2 * st[2];
				for (int64_t i3 = 0; i3 < sh[3]; i3++) {
					if (o->len + ds > o->cap && out_flush(o, err))
						return -1;
					convert_one(o->buf + o->len, disk,
						    s + (base + i3 * st[3]) * (int64_t)ss,
						    t->dtype);
					o->len += ds;
				}
			}
	return 0;
}

static int write_body(struct outf *o, const struct st_writer *w,
		      const struct buf *hdr, struct hug_error *err)
{
	unsigned char len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)((uint64_t)hdr->n >> (8 * i));
	if (write_all(o, len8, 8, err) || write_all(o, hdr->p, hdr->n, err))
		return -1;
	for (int i = 0; i < w->n; i++) {
		const struct tensor *t = w->e[i].t;
		if (t->dtype == w->e[i].disk && tensor_is_contiguous(t)) {
			if (out_flush(o, err) ||
			    write_all(o, t->data, tensor_nbytes(t), err))
				return -1;
		} else if (write_converted(o, t, w->e[i].disk, err)) {
			return -1;
		}
	}
	return out_flush(o, err);
}

static int by_entry_name(const void *a, const void *b)
{
	const struct st_writer_entry *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static int check_writer_names(const struct st_writer *w, const char *path,
			      struct hug_error *err)
{
	const struct st_writer_entry **p = hug_malloc((size_t)w->n * sizeof(*p));
	int rc = 0;
	for (int i = 0; i < w->n; i++)
		p[i] = &w->e[i];
	qsort(p, (size_t)w->n, sizeof(*p), by_entry_name);
	for (int i = 1; i < w->n; i++) {
		if (strcmp(p[i - 1]->name, p[i]->name) == 0) {
			rc = hug_error_set(err,
					   "%s: tensor \"%s\" added twice (duplicate name)",
					   path, p[i]->name);
			break;
		}
	}
	hug_free(p);
	return rc;
}

/* Refuses a tensor with a NaN or Inf element, as stored on disk (a value
 * that overflows the disk dtype counts too), naming it: no file ever holds
 * one. 0 or -1. */
static int check_writer_finite(const struct st_writer *w, const char *path,
			       struct hug_error *err)
{
	for (int i = 0; i < w->n; i++) {
		const struct tensor *t = w->e[i].t;
		enum dtype disk = w->e[i].disk;
		if (!dtype_is_float(disk))
			continue;
		int64_t sh[4], st[4], k = 0;
		size_t ts = dtype_size(t->dtype);
		pad4(t, sh, st);
		for (int64_t i0 = 0; i0 < sh[0]; i0++)
			for (int64_t i1 = 0; i1 < sh[1]; i1++)
				for (int64_t i2 = 0; i2 < sh[2]; i2++)
					for (int64_t i3 = 0; i3 < sh[3]; i3++, k++) {
						unsigned char v[8];
						convert_one(v, disk, (const unsigned char *)t->data +
							    (size_t)(i0 * st[0] + i1 * st[1] + i2 * st[2] +
								     i3 * st[3]) * ts, t->dtype);
						if (!isfinite(get_float(v, disk)))
							return hug_error_set(err, "%s: tensor \"%s\": element "
									     "%lld is NaN or infinite as %s; "
									     "refusing to write it", path,
									     w->e[i].name, (long long)k,
									     dtype_name(disk));
					}
	}
	return 0;
}

int st_writer_write(struct st_writer *w, const char *path,
		    struct hug_error *err)
{
	struct buf hdr = { 0 };
	struct outf o = { .fd = -1, .cap = 1 << 20 };
	int rc = -1;
	if (check_writer_names(w, path, err) || check_writer_finite(w, path, err))
		return -1;
	char *tmp = fs_tmp_name(path);
	o.path = tmp;
	build_header(w, &hdr);
	o.fd = fs_create(tmp, err);
	if (o.fd < 0)
		goto free_bufs;
	o.buf = hug_malloc(o.cap);
	if (write_body(&o, w, &hdr, err)) {
		close(o.fd);
		unlink(tmp);
		goto free_bufs;
	}
	rc = fs_commit(o.fd, tmp, path, err);
free_bufs:
	hug_free(o.buf);
	buf_free(&hdr);
	hug_free(tmp);
	return rc;
}

int st_open_in(struct st_file *f, const char *dir, const char *name, struct hug_error *err)
{
	char *path = fs_join(dir, name);
	int rc = st_open(f, path, err);
	hug_free(path);
	return rc;
}
