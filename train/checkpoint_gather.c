/* checkpoint_gather.c: gathering shards into whole tensors for saving,
 * and slicing whole tensors back into shards for loading. */
#include "checkpoint_gather.h"

#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../io/hf_checkpoint.h"
#include "../io/safetensors.h"

#define OPTIM_FILE "optimizer.safetensors"

void full_table_free(struct full_table *f)
{
	param_table_free(&f->pt);
	arena_free(&f->mem);
}

/* A zeroed full-shape tensor for local parameter p, registered in out under
 * `name`. */
static struct tensor *full_for(struct full_table *out, const struct param *p, const char *name)
{
	struct tensor *t = tensor_zeros(&out->mem, p->t->dtype, p->t->ndim, p->shard.full_shape);
	param_table_add(&out->pt, name, t, p->no_decay);
	return t;
}

/* full (zeroed, full shape, host) += this rank's shard src of p (host or
 * device), summed over the tensor-parallel group: the whole tensor on
 * every rank. */
static void gather_shard(const struct trainer *t, const struct param *p,
			 const struct tensor *src, struct tensor *full)
{
	if (p->shard.dim < 0) {
		tensor_transfer(full, src);
		return;
	}
	struct arena host;
	arena_init(&host, "gather-shard", 0, NULL);
	if (src->device != DEV_CPU) {
		struct tensor *h = tensor_new_like(&host, src);
		tensor_transfer(h, src);
		src = h;
	}
	param_slice_into_full(p, src, full);
	arena_free(&host);
	comm_allreduce_tensor(&t->par->tp_group, full, COMM_SUM);
}

void gather_params(const struct trainer *t, const struct param_table *local,
		   struct full_table *out)
{
	arena_init(&out->mem, "gather", 0, NULL);
	param_table_init(&out->pt);
	for (int i = 0; i < local->n; i++) {
		const struct param *p = &local->items[i];
		gather_shard(t, p, p->t, full_for(out, p, p->name));
	}
}

int optimizer_state_names(const struct optimizer *o, const char *names[2])
{
	if (o->cfg.kind == OPTIM_ADAMW) {
		names[0] = "exp_avg";
		names[1] = "exp_avg_sq";
		return 2;
	}
	names[0] = "momentum_buffer";
	return o->cfg.momentum != 0.0;
}

/* The local (shard-shaped) state k of parameter p: this rank's ranges,
 * summed over the data-parallel group when ZeRO split them. */
static void local_state(const struct trainer *t, const struct param *p, int k,
			struct tensor *dst)
{
	const struct optimizer *o = &t->opt;
	memset(dst->data, 0, tensor_nbytes(dst));
	size_t es = dtype_size(dst->dtype);
	for (int i = 0; i < o->n; i++) {
		const struct optim_slot *s = &o->slots[i];
		if (s->param != p)
			continue;
		const struct tensor *st = k == 0 ? s->m : s->v;
		ag_memcpy((char *)dst->data + (size_t)s->off * es, dst->device, st->data,
			  st->device, (size_t)s->len * es);
	}
	if (t->dist.zero)
		comm_allreduce_tensor(&t->par->dp_group, dst, COMM_SUM);
}

void gather_optimizer(const struct trainer *t, struct full_table *out)
{
	const char *names[2];
	int n_states = optimizer_state_names(&t->opt, names);
	const struct param_table *pt = t->opt.table;
	arena_init(&out->mem, "gather", 0, NULL);
	param_table_init(&out->pt);
	struct arena scratch;
	arena_init(&scratch, "scratch", 0, NULL);
	for (int i = 0; i < pt->n; i++) {
		const struct param *p = &pt->items[i];
		if (!p->t->grad)
			continue;
		for (int k = 0; k < n_states; k++) {
			char name[PARAM_NAME_MAX + 32];
			snprintf(name, sizeof(name), "%s.%s", names[k], p->name);
			struct tensor *shard = tensor_new_like(&scratch, p->t);
			local_state(t, p, k, shard);
			gather_shard(t, p, shard, full_for(out, p, name));
			arena_reset(&scratch);
		}
	}
	arena_free(&scratch);
}

int scatter_params(const struct trainer *t, struct param_table *local, const char *dir,
		   struct hug_error *err)
{
	const struct model_family *f = t->model.family;
	if (t->par->tp <= 1 && t->device == DEV_CPU)
		return hf_weights_load(local, &f->hf_names, f->display, dir, err);
	/* through whole host tensors: this rank's slice, then its device */
	struct full_table full;
	struct arena host;
	arena_init(&full.mem, "scatter", 0, NULL);
	arena_init(&host, "scatter-shard", 0, NULL);
	param_table_init(&full.pt);
	for (int i = 0; i < local->n; i++)
		full_for(&full, &local->items[i], local->items[i].name);
	int rc = hf_weights_load(&full.pt, &f->hf_names, f->display, dir, err);
	for (int i = 0; !rc && i < local->n; i++) {
		struct tensor *dst = local->items[i].t;
		struct tensor *h = dst->device == DEV_CPU ? dst : tensor_new_like(&host, dst);
		param_slice_from_full(&local->items[i], full.pt.items[i].t, h);
		if (h != dst)
			tensor_transfer(dst, h);
		arena_reset(&host);
	}
	arena_free(&host);
	full_table_free(&full);
	return rc;
}

int scatter_optimizer(struct trainer *t, const char *dir, struct hug_error *err)
{
	struct st_file f;
	if (st_open_in(&f, dir, OPTIM_FILE, err))
		return -1;
	const char *names[2];
	int n_states = optimizer_state_names(&t->opt, names);
	struct arena scratch;
	arena_init(&scratch, "scratch", 0, NULL);
	struct optimizer *o = &t->opt;
	size_t es = sizeof(float);
	int rc = 0;
	for (int i = 0; i < o->n && !rc; i++) {
		struct optim_slot *s = &o->slots[i];
		const struct param *p = s->param;
		for (int k = 0; k < n_states && !rc; k++) {
			char name[PARAM_NAME_MAX + 32];
			snprintf(name, sizeof(name), "%s.%s", names[k], p->name);
			const struct st_tensor *st = st_find(&f, name);
			if (!st) {
				rc = hug_error_set(err, "%s: no tensor %s (was the checkpoint made with "
						   "another optimizer?)", f.path, name);
				break;
			}
			struct tensor *full = tensor_new(&scratch, p->t->dtype, p->t->ndim,
							 p->shard.full_shape);
			struct tensor *shard = tensor_new_like(&scratch, p->t);
			rc = st_tensor_load(st, full, err);
			if (rc)
				break;
			param_slice_from_full(p, full, shard);
			struct tensor *dst = k == 0 ? s->m : s->v;
			ag_memcpy(dst->data, dst->device, (char *)shard->data + (size_t)s->off * es,
				  DEV_CPU, (size_t)s->len * es);
			arena_reset(&scratch);
		}
	}
	arena_free(&scratch);
	st_close(&f);
	return rc;
}
