/* dist.c: bucketed, overlapped data-parallel gradient all-reduce; ZeRO-1
 * reduce-scatter and parameter all-gather; the global gradient norm. The
 * packing and unpacking go through the backend's copy and scale
 * (asynchronous on a GPU, ordered with its kernels) and the all-reduces
 * through comm_iallreduce (MPI for host buffers; NCCL on a side stream for
 * device buffers), so one code path serves both and overlaps backward on
 * both. */
#include "dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../autograd/backend.h"
#include "../base/alloc.h"
#include "../base/panic.h"
#include "zero.h"

static bool trainable(const struct param *p)
{
	return p->t->grad != NULL;
}

static struct param_table *sort_table; /* for the qsort comparator only */

static int by_address(const void *a, const void *b)
{
	const struct tensor *x = sort_table->items[*(const int *)a].t;
	const struct tensor *y = sort_table->items[*(const int *)b].t;
	return (x > y) - (x < y);
}

/* Buckets over the trainable parameters in reverse table order (the order
 * in which backward completes them), each about bucket_bytes. */
static void make_buckets(struct dist *d, size_t bucket_bytes)
{
	struct param_table *pt = d->table;
	d->buckets = hug_calloc((size_t)(pt->n ? pt->n : 1), sizeof(*d->buckets));
	struct dist_bucket *cur = NULL;
	for (int i = pt->n - 1; i >= 0; i--) {
		if (d->offset[i] < 0)
			continue;
		int64_t n = tensor_numel(pt->items[i].t);
		if (!cur || (size_t)(cur->numel + n) * sizeof(float) > bucket_bytes) {
			cur = &d->buckets[d->n_buckets++];
			cur->last = i;
			cur->numel = 0;
		}
		cur->first = i;
		cur->offset = d->offset[i];
		cur->numel += n;
		d->bucket_of[i] = (int)(cur - d->buckets);
	}
}

void dist_init(struct dist *d, struct parallel *par, struct param_table *pt, int zero,
	       const char *block_prefix, size_t bucket_bytes)
{
	memset(d, 0, sizeof(*d));
	d->par = par;
	d->table = pt;
	d->level = par->dp > 1 ? zero : 0;
	d->zero = d->level >= 1;
	d->offset = hug_malloc((size_t)(pt->n ? pt->n : 1) * sizeof(*d->offset));
	d->bucket_of = hug_malloc((size_t)(pt->n ? pt->n : 1) * sizeof(*d->bucket_of));
	d->by_index = hug_malloc((size_t)(pt->n ? pt->n : 1) * sizeof(*d->by_index));
	bool first = true;
	for (int i = 0; i < pt->n; i++) {
		d->bucket_of[i] = -1;
		d->offset[i] = -1;
		if (!trainable(&pt->items[i]))
			continue;
		HUG_ASSERT(pt->items[i].t->dtype == DT_F32);
		if (first)
			d->device = pt->items[i].t->device;
		first = false;
		HUG_ASSERT(pt->items[i].t->device == d->device);
		d->offset[i] = d->total;
		d->total += tensor_numel(pt->items[i].t);
		d->by_index[d->n_trainable++] = i;
	}
	sort_table = pt;
	qsort(d->by_index, (size_t)d->n_trainable, sizeof(int), by_address);
	sort_table = NULL;
	int dp = par->dp;
	d->chunk = (d->total + dp - 1) / dp;
	if (d->level >= 2) { /* its own buffers: no flat copy of every gradient */
		d->z = zero_new(d, d->level, block_prefix);
		return;
	}
	/* no buffers in a world of one: nothing is ever packed */
	if (dp > 1) {
		size_t bytes = (size_t)(d->chunk * (dp + 1)) * sizeof(float) +
			       2 * sizeof(struct tensor) + 4 * ARENA_ALIGN;
		arena_init(&d->mem, "dist", bytes, ag_device_allocator(d->device));
		d->flat = tensor_zeros(&d->mem, DT_F32, TENSOR_SHAPE(d->chunk * dp));
		if (d->zero)
			d->part = tensor_zeros(&d->mem, DT_F32, TENSOR_SHAPE(d->chunk));
	}
	/* NCCL needs larger messages than MPI on a host to reach its bandwidth */
	if (!bucket_bytes)
		bucket_bytes = d->device == DEV_CPU ? (size_t)4 << 20 : (size_t)32 << 20;
	make_buckets(d, bucket_bytes);
}

void dist_free(struct dist *d)
{
	zero_free(d->z);
	hug_free(d->offset);
	hug_free(d->bucket_of);
	hug_free(d->by_index);
	hug_free(d->buckets);
	arena_free(&d->mem);
	memset(d, 0, sizeof(*d));
}

void dist_optim_range(const struct dist *d, int64_t *lo, int64_t *hi)
{
	if (!d->zero) {
		*lo = 0;
		*hi = d->total;
		return;
	}
	*lo = d->chunk * d->par->dp_rank;
	*hi = *lo + d->chunk < d->total ? *lo + d->chunk : d->total;
	if (*lo > *hi)
		*lo = *hi;
}

int dist_index_of(const struct dist *d, const struct tensor *t)
{
	int lo = 0, hi = d->n_trainable - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		const struct tensor *x = d->table->items[d->by_index[mid]].t;
		if (x == t)
			return d->by_index[mid];
		if (x < t)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* Elements [off, off + n) of the flat buffer. */
static void *flat_at(const struct dist *d, int64_t off)
{
	return (float *)d->flat->data + off;
}

/* Elements [off, off + n) of buffer `buf` (flat or part) = elements
 * [from, from + n) of contiguous tensor t (a gradient or a parameter), or
 * the reverse with into_t; through the backend, so asynchronous on a
 * device. */
static void copy_range(struct dist *d, const struct tensor *t, int64_t from,
		       const struct tensor *buf, int64_t off, int64_t n, bool into_t)
{
	struct tensor x, b;
	tensor_flat_range(&x, t, from, n);
	tensor_flat_range(&b, buf, off, n);
	if (into_t)
		ag_backend_get(d->device)->copy(&x, &b);
	else
		ag_backend_get(d->device)->copy(&b, &x);
}

static void pack(struct dist *d, int i)
{
	const struct tensor *g = d->table->items[i].t->grad;
	copy_range(d, g, 0, d->flat, d->offset[i], tensor_numel(g), false);
}

/* Gradient hook: packs a completed gradient; starts its bucket's
 * all-reduce once the bucket is complete. */
static void on_leaf_grad(void *state, struct tensor *leaf)
{
	struct dist *d = state;
	int i = dist_index_of(d, leaf);
	if (i < 0)
		return;
	pack(d, i);
	struct dist_bucket *b = &d->buckets[d->bucket_of[i]];
	if (--b->pending == 0)
		comm_iallreduce(&d->par->dp_group, flat_at(d, b->offset), b->numel, DT_F32,
				d->device, &b->req);
	for (int k = 0; k < d->n_buckets; k++) /* let MPI make progress */
		comm_test(&d->buckets[k].req);
}

void dist_attach(struct dist *d, struct ag_ctx *ctx)
{
	if (d->z)
		zero_attach(d->z, ctx);
}

void dist_before_forward(struct dist *d)
{
	if (d->z)
		zero_before_forward(d->z);
}

void dist_unshard(struct dist *d)
{
	if (d->z)
		zero_unshard(d->z);
}

void dist_reshard(struct dist *d)
{
	if (d->z)
		zero_reshard(d->z);
}

void dist_retarget(struct dist *d, struct optimizer *o)
{
	if (d->z)
		zero_retarget(d->z, o);
}

void dist_arm(struct dist *d, struct ag_ctx *ctx, bool last)
{
	if (d->z) {
		zero_arm(d->z, ctx);
		return;
	}
	if (d->par->dp <= 1 || d->zero || !last)
		return;
	for (int k = 0; k < d->n_buckets; k++) {
		struct dist_bucket *b = &d->buckets[k];
		b->pending = 0;
		for (int i = b->first; i <= b->last; i++)
			b->pending += d->bucket_of[i] == k;
	}
	ctx->on_leaf_grad = on_leaf_grad;
	ctx->hook_state = d;
}

/* Elements [from, to) of parameter i's gradient = buf[off + k - from] *
 * scale. */
static void unpack_scaled(struct dist *d, int i, struct tensor *buf, int64_t off, int64_t from,
			  int64_t to, double scale)
{
	if (to <= from)
		return;
	copy_range(d, d->table->items[i].t->grad, from, buf, off, to - from, true);
	struct tensor view;
	tensor_flat_range(&view, d->table->items[i].t->grad, from, to - from);
	ag_backend_get(d->device)->scale(&view, scale);
}

/* The range [a, b) of parameter i's elements that fall in this rank's
 * ZeRO range [lo, hi). */
static void zero_part(const struct dist *d, int i, int64_t lo, int64_t hi, int64_t *a,
		      int64_t *b)
{
	int64_t start = d->offset[i], n = tensor_numel(d->table->items[i].t);
	*a = lo > start ? lo - start : 0;
	*b = hi < start + n ? hi - start : n;
}

static void finish_zero(struct dist *d)
{
	struct param_table *pt = d->table;
	for (int i = 0; i < pt->n; i++)
		if (d->offset[i] >= 0)
			pack(d, i);
	comm_reduce_scatter_tensor(&d->par->dp_group, d->flat, d->part);
	int64_t lo, hi, a, b;
	dist_optim_range(d, &lo, &hi);
	for (int i = 0; i < pt->n; i++) {
		if (d->offset[i] < 0)
			continue;
		zero_part(d, i, lo, hi, &a, &b);
		unpack_scaled(d, i, d->part, d->offset[i] + a - lo, a, b, 1.0 / d->par->dp);
	}
	d->bytes_moved = d->chunk * d->par->dp * (int64_t)sizeof(float);
}

void dist_finish_grads(struct dist *d, struct ag_ctx *ctx)
{
	ctx->on_leaf_grad = NULL;
	ctx->hook_state = NULL;
	if (d->par->dp <= 1)
		return;
	if (d->z) {
		zero_finish_grads(d->z, ctx);
		return;
	}
	if (d->zero) {
		finish_zero(d);
		return;
	}
	double scale = 1.0 / d->par->dp;
	for (int k = 0; k < d->n_buckets; k++) {
		struct dist_bucket *b = &d->buckets[k];
		if (b->pending != 0) /* never completed: should not happen */
			hug_panic("dist: bucket %d has %d gradients missing", k, b->pending);
		comm_wait(&b->req);
		for (int i = b->first; i <= b->last; i++)
			if (d->offset[i] >= 0)
				unpack_scaled(d, i, d->flat, d->offset[i], 0,
					      tensor_numel(d->table->items[i].t), scale);
	}
	d->bytes_moved = d->total * (int64_t)sizeof(float);
}

/* Under tensor parallelism, replicated parameters count on rank 0 only. */
static bool count_on_tp0(const struct param *p)
{
	return p->shard.dim >= 0;
}

double dist_grad_norm(struct dist *d, const struct optimizer *o)
{
	const struct parallel *par = d->par;
	double ss = optim_grad_sumsq(o, par->tp > 1 && par->tp_rank != 0 ? count_on_tp0 : NULL);
	/* ZeRO ranges are disjoint over data-parallel ranks: sum over the world;
	 * otherwise every data-parallel rank holds the same gradients */
	comm_allreduce(d->zero ? &par->world : &par->tp_group, &ss, 1, DT_F64, COMM_SUM);
	return sqrt(ss);
}

void dist_gather_params(struct dist *d)
{
	if (d->z) {
		zero_after_update(d->z);
		return;
	}
	if (!d->zero)
		return;
	struct param_table *pt = d->table;
	int64_t lo, hi, a, b;
	dist_optim_range(d, &lo, &hi);
	ag_backend_get(d->device)->fill(d->part, 0.0);
	for (int i = 0; i < pt->n; i++) {
		if (d->offset[i] < 0)
			continue;
		zero_part(d, i, lo, hi, &a, &b);
		if (b > a)
			copy_range(d, pt->items[i].t, a, d->part, d->offset[i] + a - lo, b - a, false);
	}
	comm_allgather_tensor(&d->par->dp_group, d->part, d->flat);
	for (int i = 0; i < pt->n; i++)
		if (d->offset[i] >= 0)
			copy_range(d, pt->items[i].t, 0, d->flat, d->offset[i],
				   tensor_numel(pt->items[i].t), true);
}
