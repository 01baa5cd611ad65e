/* shard_h5.c: HDF5 plumbing shared by the shard writer and reader: one lock
 * for every HDF5 call hug makes (the library is serial at heart and our
 * readers keep per-reader scratch), silencing HDF5's stderr error dumps in
 * favour of hug_error messages, and scalar attribute helpers. */
#include "shard_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Largest attribute value read, in bytes (source: 256 with its NUL). */
#define SHARD_ATTR_MAX 1023

static pthread_mutex_t shard_h5_mutex = PTHREAD_MUTEX_INITIALIZER;
/* The cause of the last failure in this lock section, kept because every
 * HDF5 API call (even a cleanup H5Sclose) clears the error stack. */
static char shard_h5_saved[256];

void shard_h5_lock(void)
{
	pthread_mutex_lock(&shard_h5_mutex);
	/* Per thread in a thread-safe HDF5 build, so set it every time. */
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	shard_h5_saved[0] = '\0';
}

void shard_h5_unlock(void)
{
	pthread_mutex_unlock(&shard_h5_mutex);
}

struct walk_state {
	char *buf;
	size_t n;
	bool got;
};

static herr_t walk_first(unsigned k, const H5E_error2_t *e, void *data)
{
	struct walk_state *s = data;
	(void)k;
	if (!s->got && e->desc && e->desc[0]) {
		snprintf(s->buf, s->n, "%s", e->desc);
		s->got = true;
	}
	return 0;
}

char *shard_h5_detail(char *buf, size_t n)
{
	struct walk_state s = { .buf = buf, .n = n, .got = false };
	buf[0] = '\0';
	/* Upward: the innermost frame, where the cause was found, comes first. */
	H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_first, &s);
	H5Eclear2(H5E_DEFAULT);
	return buf;
}

void shard_h5_capture(void)
{
	char d[sizeof(shard_h5_saved)];
	shard_h5_detail(d, sizeof(d));
	if (d[0] && !shard_h5_saved[0])
		memcpy(shard_h5_saved, d, sizeof(d));
}

int shard_h5_fail(struct hug_error *err, const char *path, const char *what)
{
	char d[256];
	shard_h5_detail(d, sizeof(d));
	if (!d[0])
		memcpy(d, shard_h5_saved, sizeof(d));
	shard_h5_saved[0] = '\0';
	if (d[0])
		return hug_error_set(err, "%s: %s (HDF5: %s)", path, what, d);
	return hug_error_set(err, "%s: %s", path, what);
}

int shard_attr_write_int(hid_t loc, const char *name, hid_t file_type,
			 int64_t v)
{
	int rc = -1;
	hid_t space = H5Screate(H5S_SCALAR);
	if (space < 0)
		return -1;
	hid_t a = H5Acreate2(loc, name, file_type, space, H5P_DEFAULT,
			     H5P_DEFAULT);
	if (a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0)
		rc = 0;
	else
		shard_h5_capture();
	if (a >= 0)
		H5Aclose(a);
	H5Sclose(space);
	return rc;
}

/* Fixed-length UTF-8, NUL-terminated, exactly as long as the string (h5py
 * hands it back as bytes). Not variable-length: reading those goes through
 * libhdf5's global heap code, which a damaged file can crash. */
int shard_attr_write_str(hid_t loc, const char *name, const char *s)
{
	int rc = -1;
	hid_t type = H5Tcopy(H5T_C_S1);
	if (type < 0)
		return -1;
	hid_t space = H5Screate(H5S_SCALAR);
	if (space < 0)
		goto close_type;
	if (H5Tset_size(type, strlen(s) + 1) < 0 ||
	    H5Tset_strpad(type, H5T_STR_NULLTERM) < 0 ||
	    H5Tset_cset(type, H5T_CSET_UTF8) < 0)
		goto close_space;
	hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
	if (a >= 0 && H5Awrite(a, type, s) >= 0)
		rc = 0;
	else
		shard_h5_capture();
	if (a >= 0)
		H5Aclose(a);
close_space:
	H5Sclose(space);
close_type:
	H5Tclose(type);
	return rc;
}

const char *shard_type_name(hid_t type, char *buf, size_t n)
{
	size_t size = H5Tget_size(type);
	switch (H5Tget_class(type)) {
	case H5T_INTEGER:
		snprintf(buf, n, "%sint%zu",
			 H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", size * 8);
		break;
	case H5T_FLOAT:
		snprintf(buf, n, "float%zu", size * 8);
		break;
	case H5T_STRING:
		snprintf(buf, n, "string");
		break;
	case H5T_ENUM:
		snprintf(buf, n, "enum");
		break;
	case H5T_COMPOUND:
		snprintf(buf, n, "compound");
		break;
	default:
		snprintf(buf, n, "an HDF5 type of class %d",
			 (int)H5Tget_class(type));
		break;
	}
	return buf;
}

/* Opens attribute `name`, checks it holds exactly one element and returns
 * it with its type; -1 with err set when missing or not a single value. */
static hid_t attr_open(hid_t loc, const char *path, const char *name,
		       hid_t *type, struct hug_error *err)
{
	htri_t exists = H5Aexists(loc, name);
	if (exists <= 0) {
		H5Eclear2(H5E_DEFAULT);
		return hug_error_set(err, "%s: attribute %s is missing (not a "
				     "hug shard, or a damaged one)", path, name);
	}
	hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
	if (a < 0) {
		char what[128];
		snprintf(what, sizeof(what), "attribute %s cannot be opened",
			 name);
		return shard_h5_fail(err, path, what);
	}
	hid_t space = H5Aget_space(a);
	H5S_class_t sc = space < 0 ? H5S_NO_CLASS : H5Sget_simple_extent_type(space);
	hssize_t np = space < 0 || sc == H5S_NULL ? -1
				 : H5Sget_simple_extent_npoints(space);
	if (space >= 0)
		H5Sclose(space);
	*type = np == 1 ? H5Aget_type(a) : -1;
	if (*type < 0) {
		H5Aclose(a);
		H5Eclear2(H5E_DEFAULT);
		return hug_error_set(err, "%s: attribute %s: expected a single "
				     "value, found %lld", path, name,
				     (long long)np);
	}
	/* One value of a fixed-size type is stored in the attribute itself:
	 * its storage must be that size, and small (hug's are <= 256). A
	 * variable-length string stores a 16-byte heap reference. */
	size_t tsize = H5Tget_size(*type);
	hsize_t stored = H5Aget_storage_size(a);
	bool vlen = H5Tis_variable_str(*type) > 0;
	if (tsize == 0 || tsize > SHARD_ATTR_MAX ||
	    (!vlen && stored != tsize) || (vlen && stored > 64)) {
		H5Tclose(*type);
		H5Aclose(a);
		H5Eclear2(H5E_DEFAULT);
		return hug_error_set(err, "%s: attribute %s: a value of %zu "
				     "bytes stored in %llu (damaged; at most "
				     "%d allowed)", path, name, tsize,
				     (unsigned long long)stored,
				     SHARD_ATTR_MAX);
	}
	return a;
}

int shard_attr_read_int(hid_t loc, const char *path, const char *name,
			int64_t *v, struct hug_error *err)
{
	hid_t type;
	char tn[64];
	hid_t a = attr_open(loc, path, name, &type, err);
	if (a < 0)
		return -1;
	int rc = -1;
	if (H5Tget_class(type) != H5T_INTEGER) {
		hug_error_set(err, "%s: attribute %s: expected an integer, "
			      "found %s", path, name,
			      shard_type_name(type, tn, sizeof(tn)));
		goto close;
	}
	if (H5Tget_size(type) == 8 && H5Tget_sign(type) == H5T_SGN_NONE) {
		uint64_t u;
		if (H5Aread(a, H5T_NATIVE_UINT64, &u) < 0)
			goto fail;
		if (u > (uint64_t)INT64_MAX) {
			hug_error_set(err, "%s: attribute %s is %llu, too "
				      "large", path, name,
				      (unsigned long long)u);
			goto close;
		}
		*v = (int64_t)u;
	} else if (H5Aread(a, H5T_NATIVE_INT64, v) < 0) {
		goto fail;
	}
	rc = 0;
	goto close;
fail:
	snprintf(tn, sizeof(tn), "attribute %s cannot be read", name);
	shard_h5_fail(err, path, tn);
close:
	H5Tclose(type);
	H5Aclose(a);
	return rc;
}

static int read_vlen_str(hid_t a, hid_t type, const char *path,
			 const char *name, char *buf, size_t n,
			 struct hug_error *err)
{
	char *s = NULL;
	hid_t mt = H5Tcopy(H5T_C_S1);
	int rc = -1;
	if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 ||
	    H5Tset_cset(mt, H5Tget_cset(type)) < 0 || H5Aread(a, mt, &s) < 0) {
		char what[96];
		snprintf(what, sizeof(what), "attribute %s cannot be read",
			 name);
		shard_h5_fail(err, path, what);
		goto close;
	}
	size_t len = s ? strlen(s) : 0;
	if (len >= n) {
		hug_error_set(err, "%s: attribute %s: %zu bytes long, at most "
			      "%zu allowed", path, name, len, n - 1);
	} else {
		memcpy(buf, s ? s : "", len + 1);
		rc = 0;
	}
	H5free_memory(s);
close:
	if (mt >= 0)
		H5Tclose(mt);
	return rc;
}

static int read_fixed_str(hid_t a, hid_t type, const char *path,
			  const char *name, char *buf, size_t n,
			  struct hug_error *err)
{
	size_t size = H5Tget_size(type);
	char tmp[1024];
	if (size == 0 || size >= sizeof(tmp))
		return hug_error_set(err, "%s: attribute %s: a string of %zu "
				     "bytes, at most %zu allowed", path, name,
				     size, n - 1);
	/* Read the file's own type: no conversion, then cut at the NUL or
	 * the padding the file used. */
	if (H5Aread(a, type, tmp) < 0) {
		char what[96];
		snprintf(what, sizeof(what), "attribute %s cannot be read",
			 name);
		return shard_h5_fail(err, path, what);
	}
	tmp[size] = '\0';
	size_t len = strnlen(tmp, size);
	if (H5Tget_strpad(type) == H5T_STR_SPACEPAD)
		while (len > 0 && tmp[len - 1] == ' ')
			len--;
	if (len >= n)
		return hug_error_set(err, "%s: attribute %s: %zu bytes long, at "
				     "most %zu allowed", path, name, len, n - 1);
	memcpy(buf, tmp, len);
	buf[len] = '\0';
	return 0;
}

int shard_attr_read_str(hid_t loc, const char *path, const char *name,
			char *buf, size_t n, struct hug_error *err)
{
	hid_t type;
	char tn[64];
	hid_t a = attr_open(loc, path, name, &type, err);
	if (a < 0)
		return -1;
	int rc;
	if (H5Tget_class(type) != H5T_STRING)
		rc = hug_error_set(err, "%s: attribute %s: expected a string, "
				   "found %s", path, name,
				   shard_type_name(type, tn, sizeof(tn)));
	else if (H5Tis_variable_str(type) > 0)
		rc = read_vlen_str(a, type, path, name, buf, n, err);
	else
		rc = read_fixed_str(a, type, path, name, buf, n, err);
	H5Tclose(type);
	H5Aclose(a);
	return rc;
}

void shard_close_ids(hid_t *file, hid_t *tokens, hid_t *offsets, hid_t *mask)
{
	hid_t *sets[3] = { tokens, mask, offsets };
	for (int i = 0; i < 3; i++)
		if (*sets[i] >= 0)
			H5Dclose(*sets[i]);
	if (*file >= 0)
		H5Fclose(*file);
	*tokens = *mask = *offsets = *file = -1;
}

int shard_h5_range(hid_t ds, hid_t mt, int64_t start, int64_t n, void *buf, bool write)
{
	hsize_t s = (hsize_t)start, c = (hsize_t)n;
	int rc = -1;
	hid_t fs = H5Dget_space(ds);
	hid_t ms = H5Screate_simple(1, &c, NULL);
	if (fs >= 0 && ms >= 0 &&
	    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &s, NULL, &c, NULL) >= 0 &&
	    (write ? H5Dwrite(ds, mt, ms, fs, H5P_DEFAULT, buf)
		   : H5Dread(ds, mt, ms, fs, H5P_DEFAULT, buf)) >= 0)
		rc = 0;
	else
		shard_h5_capture();
	if (ms >= 0)
		H5Sclose(ms);
	if (fs >= 0)
		H5Sclose(fs);
	return rc;
}
