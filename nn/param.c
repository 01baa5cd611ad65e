/* param.c: the name -> tensor parameter registry. */
#include "param.h"

#include <string.h>

#include "../base/alloc.h"
#include "../base/panic.h"

void param_table_init(struct param_table *pt)
{
	memset(pt, 0, sizeof(*pt));
}

void param_table_free(struct param_table *pt)
{
	for (int i = 0; i < pt->n; i++)
		hug_free(pt->items[i].name);
	hug_free(pt->items);
	memset(pt, 0, sizeof(*pt));
}

struct param *param_table_add(struct param_table *pt, const char *name,
			      struct tensor *t, bool no_decay)
{
	HUG_ASSERT(strlen(name) < PARAM_NAME_MAX);
	if (param_table_find(pt, name))
		hug_panic("parameter %s registered twice", name);
	if (pt->n == pt->cap) {
		pt->cap = pt->cap ? pt->cap * 2 : 64;
		pt->items = hug_realloc(pt->items, (size_t)pt->cap * sizeof(*pt->items));
	}
	struct param *p = &pt->items[pt->n++];
	memset(p, 0, sizeof(*p));
	p->name = hug_strdup(name);
	p->t = t;
	p->no_decay = no_decay;
	p->shard.dim = -1;
	for (int d = 0; d < TENSOR_MAX_DIMS; d++)
		p->shard.full_shape[d] = t->shape[d];
	t->name = p->name;
	return p;
}

void param_set_shard(struct param *p, int dim, int64_t offset, int64_t full)
{
	HUG_ASSERT(dim >= 0 && dim < p->t->ndim && offset >= 0 &&
		   offset + p->t->shape[dim] <= full);
	p->shard.dim = dim;
	p->shard.offset = offset;
	p->shard.full_shape[dim] = full;
}

int64_t param_global_index(const struct param *p, int64_t i)
{
	if (p->shard.dim < 0)
		return i;
	const struct tensor *t = p->t;
	int64_t g = 0;
	for (int d = 0; d < t->ndim; d++) { /* row-major digits of i */
		int64_t inner = 1;
		for (int e = d + 1; e < t->ndim; e++)
			inner *= t->shape[e];
		int64_t digit = i / inner % t->shape[d];
		if (d == p->shard.dim)
			digit += p->shard.offset;
		g = g * p->shard.full_shape[d] + digit;
	}
	return g;
}

/* Element size and the (outer, len, inner) layout of p's slice. */
static void slice_layout(const struct param *p, int64_t *outer, int64_t *len,
			 int64_t *inner, int64_t *full_len)
{
	const struct tensor *t = p->t;
	int d = p->shard.dim < 0 ? 0 : p->shard.dim;
	*outer = *inner = 1;
	for (int e = 0; e < d; e++)
		*outer *= t->shape[e];
	for (int e = d + 1; e < t->ndim; e++)
		*inner *= t->shape[e];
	*len = t->ndim ? t->shape[d] : 1;
	*full_len = t->ndim ? p->shard.full_shape[d] : 1;
}

static void slice_copy(const struct param *p, const struct tensor *full,
		       const struct tensor *part, bool into_full)
{
	HUG_ASSERT(full->device == DEV_CPU && part->device == DEV_CPU &&
		   full->dtype == part->dtype && tensor_is_contiguous(full) &&
		   tensor_is_contiguous(part));
	int64_t outer, len, inner, full_len;
	slice_layout(p, &outer, &len, &inner, &full_len);
	size_t es = dtype_size(part->dtype), row = (size_t)(len * inner) * es;
	int64_t off = p->shard.dim < 0 ? 0 : p->shard.offset;
	for (int64_t o = 0; o < outer; o++) {
		char *f = (char *)full->data + (size_t)((o * full_len + off) * inner) * es;
		char *q = (char *)part->data + (size_t)o * row;
		if (into_full)
			memcpy(f, q, row);
		else
			memcpy(q, f, row);
	}
}

void param_slice_from_full(const struct param *p, const struct tensor *full,
			   struct tensor *dst)
{
	slice_copy(p, full, dst, false);
}

void param_slice_into_full(const struct param *p, const struct tensor *src,
			   struct tensor *full)
{
	slice_copy(p, full, src, true);
}

struct param *param_table_find(const struct param_table *pt, const char *name)
{
	for (int i = 0; i < pt->n; i++)
		if (!strcmp(pt->items[i].name, name))
			return &pt->items[i];
	return NULL;
}

int64_t param_table_numel(const struct param_table *pt)
{
	int64_t n = 0;
	for (int i = 0; i < pt->n; i++)
		n += tensor_numel(pt->items[i].t);
	return n;
}
