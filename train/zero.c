/* zero.c: ZeRO-2 (gradients reduce-scattered group by group as backward
 * completes them, into this rank's shard) and ZeRO-3 (parameters sharded,
 * each block gathered before use with the next one prefetched); see
 * zero.h. */
#include "zero.h"

#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "../autograd/backend.h"
#include "../base/alloc.h"
#include "../base/panic.h"
#include "dist.h"

/* A maximal piece of a group that is contiguous in the flat order. */
struct zero_run {
	int64_t flat, numel;      /* its flat range */
	int64_t packed;           /* its start in the group's buffer */
	int64_t mine, mine_flat;  /* the elements this rank owns, from flat index */
	int *counts, *displs;     /* per data-parallel rank, within the run */
	struct comm_request req;
};

struct zero_group {
	int64_t numel;            /* elements, packed in table order */
	struct zero_run *runs;
	int n_runs;
	int slot;                 /* ring slot of a block group; -1: the rest */
	int expected, done;       /* its leaves on this tape / completed */
	bool reducing;            /* gradient reduction in flight */
	bool into_recv;           /* ... into recv (added to gacc when done), not gacc */
	bool gathering;           /* parameter gather in flight */
};

struct zero {
	struct dist *d;
	int level;
	int n_blocks;             /* groups 0..n_blocks-1: blocks; n_blocks: the rest */
	struct zero_group *groups;
	int *group_of;            /* per table index; -1: frozen */
	int64_t *packed_at;       /* per table index: start in its group's buffer */
	bool *seen;               /* per table index, scratch of zero_arm */
	void **own_data, **own_grad; /* per table index: the model's own buffers */
	int64_t lo, hi;           /* this rank's flat range */
	struct arena mem;
	struct tensor *gslot[2];  /* block gradients, max block numel each */
	struct tensor *pslot[2];  /* level 3: block values */
	struct tensor *outer;     /* the rest's gradients packed / values staged */
	struct tensor *recv;      /* (chunk) a later micro-batch's reduced shard; made
				     on first need (gradient accumulation) */
	struct arena recv_mem;
	struct tensor *gacc;      /* (chunk) the step's accumulated shard */
	struct tensor *pshard;    /* (chunk) level 3: this rank's values */
	int pslot_block[2];       /* the block a value slot holds; -1 none */
	bool outer_valid;         /* level 3: the rest holds the current values */
	bool sharded;             /* level 3: block values live in the ring */
	bool step_open;           /* gacc holds this step's sum so far */
	bool first_micro;         /* the step's first micro-batch: reduce into gacc */
};

static const struct ag_backend *be(const struct zero *z)
{
	return ag_backend_get(z->d->device);
}

/* Elements [off, off + n) of buffer b as a 1-d view. */
static struct tensor at(const struct tensor *b, int64_t off, int64_t n)
{
	struct tensor v;
	tensor_flat_range(&v, b, off, n);
	return v;
}

static float *ptr(const struct tensor *b, int64_t off)
{
	return (float *)b->data + off;
}

/* Gives the pages strictly inside [p, p + bytes) of host memory back to
 * the system; they read as zeros if touched again. */
static void release(const struct zero *z, void *p, size_t bytes)
{
#ifdef __linux__
	if (z->d->device != DEV_CPU)
		return;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)p + page - 1) / page * page;
	uintptr_t b = ((uintptr_t)p + bytes) / page * page;
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
#else
	(void)z; (void)p; (void)bytes;
#endif
}

/* The block of parameter `name` (after block_prefix, digits then '.'),
 * or -1. */
static int block_of(const char *name, const char *prefix)
{
	const char *s = strstr(name, prefix);
	if (!s)
		return -1;
	s += strlen(prefix);
	char *end;
	long b = strtol(s, &end, 10);
	return end != s && *end == '.' && b >= 0 && b < 1000000 ? (int)b : -1;
}

static int64_t numel_of(const struct zero *z, int i)
{
	return tensor_numel(z->d->table->items[i].t);
}

/* Runs of group g and their pieces per rank. */
static void make_runs(struct zero *z, int g)
{
	struct dist *d = z->d;
	struct zero_group *G = &z->groups[g];
	G->runs = hug_calloc((size_t)(z->d->table->n ? z->d->table->n : 1), sizeof(*G->runs));
	struct zero_run *cur = NULL;
	for (int i = 0; i < d->table->n; i++) {
		if (z->group_of[i] != g)
			continue;
		z->packed_at[i] = G->numel;
		if (!cur || cur->flat + cur->numel != d->offset[i]) {
			cur = &G->runs[G->n_runs++];
			cur->flat = d->offset[i];
			cur->packed = G->numel;
		}
		cur->numel += numel_of(z, i);
		G->numel += numel_of(z, i);
	}
	int dp = d->par->dp;
	for (int k = 0; k < G->n_runs; k++) {
		struct zero_run *r = &G->runs[k];
		r->counts = hug_calloc((size_t)dp, sizeof(int));
		r->displs = hug_calloc((size_t)dp, sizeof(int));
		int64_t end = r->flat + r->numel;
		for (int q = 0; q < dp; q++) {
			int64_t a = d->chunk * q, b = a + d->chunk;
			a = a > r->flat ? a : r->flat;
			b = b < end ? b : end;
			HUG_ASSERT(r->numel <= INT32_MAX);
			r->counts[q] = b > a ? (int)(b - a) : 0;
			r->displs[q] = b > a ? (int)(a - r->flat) : (q ? r->displs[q - 1] + r->counts[q - 1] : 0);
		}
		r->mine = r->counts[d->par->dp_rank];
		r->mine_flat = r->flat + r->displs[d->par->dp_rank];
	}
}

/* Copies this rank's piece of group g's values into buf at their packed
 * places: from the shard (level 3, sharded) or from the parameters. */
static void pack_mine(struct zero *z, int g, struct tensor *buf)
{
	struct zero_group *G = &z->groups[g];
	if (z->sharded) {
		for (int k = 0; k < G->n_runs; k++) {
			struct zero_run *r = &G->runs[k];
			if (!r->mine)
				continue;
			struct tensor dst = at(buf, r->packed + r->displs[z->d->par->dp_rank], r->mine);
			struct tensor src = at(z->pshard, r->mine_flat - z->lo, r->mine);
			be(z)->copy(&dst, &src);
		}
		return;
	}
	struct dist *d = z->d;
	for (int i = 0; i < d->table->n; i++) {
		if (z->group_of[i] != g)
			continue;
		int64_t s = d->offset[i], n = numel_of(z, i);
		int64_t a = z->lo > s ? z->lo : s, b = z->hi < s + n ? z->hi : s + n;
		if (b <= a)
			continue;
		struct tensor dst = at(buf, z->packed_at[i] + a - s, b - a);
		struct tensor src = at(d->table->items[i].t, a - s, b - a);
		be(z)->copy(&dst, &src);
	}
}

/* Copies group g's values from buf into the parameters' tensors. */
static void unpack_values(struct zero *z, int g, const struct tensor *buf)
{
	struct dist *d = z->d;
	for (int i = 0; i < d->table->n; i++) {
		if (z->group_of[i] != g)
			continue;
		struct tensor src = at(buf, z->packed_at[i], numel_of(z, i));
		struct tensor dst = at(d->table->items[i].t, 0, numel_of(z, i));
		be(z)->copy(&dst, &src);
	}
}

/* Starts the all-gather of group g's values into buf. */
static void gather_start(struct zero *z, int g, struct tensor *buf)
{
	struct zero_group *G = &z->groups[g];
	pack_mine(z, g, buf);
	for (int k = 0; k < G->n_runs; k++) {
		struct zero_run *r = &G->runs[k];
		comm_iallgatherv(&z->d->par->dp_group, ptr(buf, r->packed), r->counts, r->displs,
				 DT_F32, z->d->device, &r->req);
	}
	G->gathering = true;
}

static void group_wait(struct zero *z, int g)
{
	struct zero_group *G = &z->groups[g];
	for (int k = 0; k < G->n_runs; k++)
		comm_wait(&G->runs[k].req);
}

/* Lets MPI progress the requests in flight. */
static void progress(struct zero *z)
{
	for (int g = 0; g <= z->n_blocks; g++)
		if (z->groups[g].reducing || z->groups[g].gathering)
			for (int k = 0; k < z->groups[g].n_runs; k++)
				comm_test(&z->groups[g].runs[k].req);
}

/* ---- level 3: block values ---- */

/* Block b's values are in its slot, or on their way (started here). */
static void block_prefetch(struct zero *z, int b)
{
	if (b < 0 || b >= z->n_blocks)
		return;
	int s = z->groups[b].slot;
	if (z->pslot_block[s] == b)
		return;
	int old = z->pslot_block[s];
	if (old >= 0 && z->groups[old].gathering) { /* not used yet: finish it first */
		group_wait(z, old);
		z->groups[old].gathering = false;
	}
	gather_start(z, b, z->pslot[s]);
	z->pslot_block[s] = b;
}

/* Block b's values are in its slot. */
static void block_ready(struct zero *z, int b)
{
	block_prefetch(z, b);
	if (z->groups[b].gathering) {
		group_wait(z, b);
		z->groups[b].gathering = false;
	}
}

static void on_block(void *state, int b)
{
	struct zero *z = state;
	if (!z->sharded || b >= z->n_blocks)
		return;
	block_ready(z, b);
	block_prefetch(z, b + 1);
	progress(z);
}

void zero_before_forward(struct zero *z)
{
	if (z->level < 3 || !z->sharded)
		return;
	int rest = z->n_blocks;
	if (!z->outer_valid) {
		gather_start(z, rest, z->outer);
		group_wait(z, rest);
		z->groups[rest].gathering = false;
		unpack_values(z, rest, z->outer);
		z->outer_valid = true;
	}
	block_prefetch(z, 0);
}

void zero_attach(struct zero *z, struct ag_ctx *ctx)
{
	if (z->level < 3)
		return;
	ctx->on_block = on_block;
	ctx->block_state = z;
}

/* ---- gradients ---- */

static struct tensor *grad_buf(struct zero *z, int g)
{
	return g < z->n_blocks ? z->gslot[z->groups[g].slot] : z->outer;
}

/* Starts the reduce-scatter of group g's gradients to their owners. */
static void reduce_start(struct zero *z, int g)
{
	struct dist *d = z->d;
	struct zero_group *G = &z->groups[g];
	struct tensor *buf = grad_buf(z, g);
	if (g == z->n_blocks) /* the rest: packed, then zeroed for the next micro-batch */
		for (int i = 0; i < d->table->n; i++) {
			if (z->group_of[i] != g)
				continue;
			struct tensor *gr = d->table->items[i].t->grad;
			struct tensor dst = at(buf, z->packed_at[i], numel_of(z, i));
			struct tensor src = at(gr, 0, numel_of(z, i));
			be(z)->copy(&dst, &src);
			be(z)->fill(gr, 0.0);
		}
	/* the step's first micro-batch lands in the sum itself */
	G->into_recv = !z->first_micro;
	if (G->into_recv && !z->recv) {
		arena_init(&z->recv_mem, "zero-recv",
			   (size_t)d->chunk * sizeof(float) + sizeof(struct tensor) + 2 * ARENA_ALIGN,
			   ag_device_allocator(d->device));
		z->recv = tensor_zeros(&z->recv_mem, DT_F32, TENSOR_SHAPE(d->chunk));
	}
	struct tensor *to = G->into_recv ? z->recv : z->gacc;
	for (int k = 0; k < G->n_runs; k++) {
		struct zero_run *r = &G->runs[k];
		comm_ireduce_scatterv(&d->par->dp_group, ptr(buf, r->packed),
				      ptr(to, r->mine ? r->mine_flat - z->lo : 0), r->counts,
				      r->displs, DT_F32, d->device, &r->req);
	}
	G->reducing = true;
}

/* Completes group g's reduction and adds it to the shard. */
static void reduce_finish(struct zero *z, int g)
{
	struct zero_group *G = &z->groups[g];
	if (!G->reducing)
		return;
	group_wait(z, g);
	for (int k = 0; k < G->n_runs && G->into_recv; k++) {
		struct zero_run *r = &G->runs[k];
		if (!r->mine)
			continue;
		struct tensor acc = at(z->gacc, r->mine_flat - z->lo, r->mine);
		struct tensor got = at(z->recv, r->mine_flat - z->lo, r->mine);
		be(z)->accumulate(&acc, &got);
	}
	G->reducing = false;
}

/* Backward has completed every gradient of group g. */
static void group_complete(struct zero *z, int g)
{
	reduce_start(z, g);
	if (g >= z->n_blocks || g == 0)
		return;
	/* block g - 1 runs next: its gradient slot (block g + 1's) free and
	 * zeroed, its values gathered, block g - 2's on their way */
	if (g + 1 < z->n_blocks)
		reduce_finish(z, g + 1);
	be(z)->fill(z->gslot[z->groups[g - 1].slot], 0.0);
	if (z->sharded) {
		block_ready(z, g - 1);
		block_prefetch(z, g - 2);
	}
}

static void on_leaf_grad(void *state, struct tensor *leaf)
{
	struct zero *z = state;
	int i = dist_index_of(z->d, leaf);
	if (i < 0)
		return;
	int g = z->group_of[i];
	if (++z->groups[g].done == z->groups[g].expected)
		group_complete(z, g);
	progress(z);
}

void zero_arm(struct zero *z, struct ag_ctx *ctx)
{
	struct dist *d = z->d;
	for (int g = 0; g <= z->n_blocks; g++) /* the previous micro-batch's */
		reduce_finish(z, g);
	z->first_micro = !z->step_open;
	z->step_open = true;
	/* which trainable leaves this backward will complete, per group */
	for (int g = 0; g <= z->n_blocks; g++)
		z->groups[g].expected = z->groups[g].done = 0;
	for (struct ag_node *n = ctx->tape; n; n = n->prev)
		for (int k = 0; k < n->n_in; k++) {
			struct tensor *t = n->in[k];
			if (!t || t->node || !t->requires_grad)
				continue;
			int i = dist_index_of(d, t);
			if (i >= 0 && !z->seen[i]) {
				z->seen[i] = true;
				z->groups[z->group_of[i]].expected++;
			}
		}
	memset(z->seen, 0, (size_t)(d->table->n ? d->table->n : 1) * sizeof(*z->seen));
	/* a group this loss does not reach gets no reduction: its part of a
	 * fresh sum is zero */
	for (int g = 0; g <= z->n_blocks && z->first_micro; g++)
		for (int k = 0; k < z->groups[g].n_runs && !z->groups[g].expected; k++) {
			struct zero_run *r = &z->groups[g].runs[k];
			struct tensor v = at(z->gacc, r->mine_flat - z->lo, r->mine);
			if (r->mine)
				be(z)->fill(&v, 0.0);
		}
	/* the last block runs first */
	int last = z->n_blocks - 1;
	if (last >= 0) {
		be(z)->fill(z->gslot[z->groups[last].slot], 0.0);
		if (last >= 1)
			be(z)->fill(z->gslot[z->groups[last - 1].slot], 0.0);
		if (z->sharded)
			block_ready(z, last);
	}
	ctx->on_leaf_grad = on_leaf_grad;
	ctx->hook_state = z;
}

void zero_finish_grads(struct zero *z, struct ag_ctx *ctx)
{
	ctx->on_leaf_grad = NULL;
	ctx->hook_state = NULL;
	for (int g = 0; g <= z->n_blocks; g++) {
		if (z->groups[g].done < z->groups[g].expected) /* never completed: should not happen */
			hug_panic("zero: group %d has %d gradients missing", g,
				  z->groups[g].expected - z->groups[g].done);
		reduce_finish(z, g);
	}
	be(z)->scale(z->gacc, 1.0 / z->d->par->dp);
	z->step_open = false;
	z->d->bytes_moved = z->d->total * (int64_t)sizeof(float);
}

void zero_retarget(struct zero *z, struct optimizer *o)
{
	struct dist *d = z->d;
	for (int k = 0; k < o->n; k++) {
		struct optim_slot *s = &o->slots[k];
		int i = (int)(s->param - d->table->items);
		int64_t at_shard = d->offset[i] + s->off - z->lo;
		HUG_ASSERT(at_shard >= 0 && at_shard + s->len <= z->hi - z->lo);
		optim_slot_retarget(s, z->level >= 3 ? ptr(z->pshard, at_shard) : NULL,
				    ptr(z->gacc, at_shard));
	}
}

void zero_after_update(struct zero *z)
{
	if (z->level >= 3) {
		z->pslot_block[0] = z->pslot_block[1] = -1;
		z->outer_valid = false;
		return;
	}
	/* level 2: every group's values gathered through its slot */
	for (int g = 0; g <= z->n_blocks; g++) {
		struct tensor *buf = grad_buf(z, g);
		gather_start(z, g, buf);
		group_wait(z, g);
		z->groups[g].gathering = false;
		unpack_values(z, g, buf);
	}
}

/* ---- level 3: moving values between the model's memory and the shard ---- */

void zero_unshard(struct zero *z)
{
	if (z->level < 3 || !z->sharded)
		return;
	struct dist *d = z->d;
	for (int b = 0; b < 2; b++)
		if (z->pslot_block[b] >= 0 && z->groups[z->pslot_block[b]].gathering) {
			group_wait(z, z->pslot_block[b]);
			z->groups[z->pslot_block[b]].gathering = false;
		}
	for (int i = 0; i < d->table->n; i++)
		if (z->group_of[i] >= 0 && z->group_of[i] < z->n_blocks)
			d->table->items[i].t->data = z->own_data[i];
	for (int g = 0; g <= z->n_blocks; g++) {
		struct tensor *buf = g < z->n_blocks ? z->pslot[z->groups[g].slot] : z->outer;
		gather_start(z, g, buf); /* from the shard: still sharded */
		group_wait(z, g);
		z->groups[g].gathering = false;
		unpack_values(z, g, buf);
	}
	z->sharded = false;
	z->pslot_block[0] = z->pslot_block[1] = -1;
	z->outer_valid = true;
}

/* Level 3: this rank's range of every parameter into the shard. */
static void shard_copy(struct zero *z)
{
	struct dist *d = z->d;
	for (int i = 0; i < d->table->n; i++) {
		int g = z->group_of[i];
		if (g < 0)
			continue;
		struct tensor *t = d->table->items[i].t;
		int64_t s = d->offset[i], n = numel_of(z, i);
		int64_t a = z->lo > s ? z->lo : s, b = z->hi < s + n ? z->hi : s + n;
		if (b > a) {
			struct tensor dst = at(z->pshard, a - z->lo, b - a);
			struct tensor src = at(t, a - s, b - a);
			be(z)->copy(&dst, &src);
		}
	}
	if (be(z)->synchronize)
		be(z)->synchronize();
}

/* Level 3: the block values' own memory given back. */
static void release_values(struct zero *z)
{
	for (int i = 0; i < z->d->table->n; i++)
		if (z->group_of[i] >= 0 && z->group_of[i] < z->n_blocks)
			release(z, z->own_data[i], (size_t)numel_of(z, i) * sizeof(float));
}

/* Level 3: block values into the ring (stale until gathered). */
static void shard_point(struct zero *z)
{
	struct dist *d = z->d;
	for (int i = 0; i < d->table->n; i++) {
		int g = z->group_of[i];
		if (g >= 0 && g < z->n_blocks)
			d->table->items[i].t->data = ptr(z->pslot[z->groups[g].slot], z->packed_at[i]);
	}
	z->sharded = true;
	z->pslot_block[0] = z->pslot_block[1] = -1;
	z->outer_valid = true;
}

void zero_reshard(struct zero *z)
{
	if (z->level < 3 || z->sharded)
		return;
	shard_copy(z);
	release_values(z);
	shard_point(z);
}

/* ---- set-up ---- */

static struct tensor *buffer(struct zero *z, int64_t n)
{
	return tensor_zeros(&z->mem, DT_F32, TENSOR_SHAPE(n > 0 ? n : 1));
}

struct zero *zero_new(struct dist *d, int level, const char *block_prefix)
{
	struct param_table *pt = d->table;
	size_t n = (size_t)(pt->n ? pt->n : 1);
	struct zero *z = hug_calloc(1, sizeof(*z));
	z->d = d;
	z->level = level;
	z->group_of = hug_malloc(n * sizeof(*z->group_of));
	z->packed_at = hug_calloc(n, sizeof(*z->packed_at));
	z->seen = hug_calloc(n, sizeof(*z->seen));
	z->own_data = hug_calloc(n, sizeof(*z->own_data));
	z->own_grad = hug_calloc(n, sizeof(*z->own_grad));
	for (int i = 0; i < pt->n; i++) {
		z->group_of[i] = d->offset[i] < 0 ? -1 : block_of(pt->items[i].name, block_prefix);
		if (z->group_of[i] + 1 > z->n_blocks)
			z->n_blocks = z->group_of[i] + 1;
	}
	for (int i = 0; i < pt->n; i++) /* the rest: the last group */
		if (d->offset[i] >= 0 && z->group_of[i] < 0)
			z->group_of[i] = z->n_blocks;
	z->groups = hug_calloc((size_t)z->n_blocks + 1, sizeof(*z->groups));
	int64_t widest = 1;
	for (int g = 0; g <= z->n_blocks; g++) {
		z->groups[g].slot = g < z->n_blocks ? g % 2 : -1;
		make_runs(z, g);
		if (g < z->n_blocks && z->groups[g].numel > widest)
			widest = z->groups[g].numel;
	}
	dist_optim_range(d, &z->lo, &z->hi);
	int64_t floats = 2 * widest + z->groups[z->n_blocks].numel + d->chunk +
			 (level >= 3 ? 2 * widest + d->chunk : 0);
	size_t bytes = (size_t)floats * sizeof(float) + 9 * (sizeof(struct tensor) + 2 * ARENA_ALIGN);
	arena_init(&z->mem, "zero", bytes, ag_device_allocator(d->device));
	for (int i = 0; i < pt->n; i++)
		if (z->group_of[i] >= 0) {
			z->own_data[i] = pt->items[i].t->data;
			z->own_grad[i] = pt->items[i].t->grad->data;
		}
	/* the model's own memory of the block values (once in the shard) and
	 * gradients (zeros) goes back before the buffers are touched: the
	 * set-up never holds both */
	if (level >= 3) {
		z->pshard = buffer(z, d->chunk);
		shard_copy(z);
		release_values(z);
	}
	for (int i = 0; i < pt->n; i++)
		if (z->group_of[i] >= 0 && z->group_of[i] < z->n_blocks)
			release(z, z->own_grad[i], (size_t)numel_of(z, i) * sizeof(float));
	for (int s = 0; s < 2; s++) {
		z->gslot[s] = buffer(z, widest);
		if (level >= 3)
			z->pslot[s] = buffer(z, widest);
		z->pslot_block[s] = -1;
	}
	z->outer = buffer(z, z->groups[z->n_blocks].numel);
	z->gacc = buffer(z, d->chunk);
	for (int i = 0; i < pt->n; i++) /* block gradients into the ring */
		if (z->group_of[i] >= 0 && z->group_of[i] < z->n_blocks)
			pt->items[i].t->grad->data =
				ptr(z->gslot[z->groups[z->group_of[i]].slot], z->packed_at[i]);
	z->outer_valid = true;
	if (level >= 3)
		shard_point(z);
	return z;
}

void zero_free(struct zero *z)
{
	if (!z)
		return;
	/* the model's tensors point at their own memory again (it is freed
	 * with the model; its released pages read as zeros) */
	struct param_table *pt = z->d->table;
	for (int i = 0; i < pt->n; i++)
		if (z->group_of[i] >= 0) {
			pt->items[i].t->data = z->own_data[i];
			pt->items[i].t->grad->data = z->own_grad[i];
		}
	for (int g = 0; g <= z->n_blocks; g++) {
		for (int k = 0; k < z->groups[g].n_runs; k++) {
			hug_free(z->groups[g].runs[k].counts);
			hug_free(z->groups[g].runs[k].displs);
		}
		hug_free(z->groups[g].runs);
	}
	hug_free(z->groups);
	hug_free(z->group_of);
	hug_free(z->packed_at);
	hug_free(z->seen);
	hug_free(z->own_data);
	hug_free(z->own_grad);
	arena_free(&z->mem);
	if (z->recv)
		arena_free(&z->recv_mem);
	hug_free(z);
}
