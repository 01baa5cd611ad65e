/* test_cuda_util.c: see test_cuda_util.h. */
#include "test_cuda_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../autograd/rng.h"
#include "../base/alloc.h"
#include "../base/panic.h"

#ifdef HUG_CUDA
#include "../autograd/backend.h"
#include "../autograd/cuda/cuda_api.h"
#endif

bool cuda_test_required(void)
{
	const char *s = getenv("HUG_REQUIRE_GPU");
	return s && *s && strcmp(s, "0") != 0;
}

const char *cuda_test_unavailable(void)
{
#ifndef HUG_CUDA
	return "built without CUDA";
#else
	static int state; /* 0 untried, 1 ready, -1 failed */
	static struct hug_error err;
	if (state == 0) {
		if (hug_cuda_device_count() == 0) {
			hug_error_set(&err, "no CUDA device");
			state = -1;
		} else {
			state = hug_cuda_init(0, &err) == 0 ? 1 : -1;
		}
	}
	return state == 1 ? NULL : err.msg;
#endif
}

#ifdef HUG_CUDA

struct tensor *cuda_test_upload(struct arena *dev, const struct tensor *h, enum dtype dt)
{
	struct arena tmp;
	arena_init(&tmp, "upload", 0, NULL);
	if (!dtype_is_float(h->dtype))
		dt = h->dtype;
	/* a contiguous host copy in the target dtype */
	struct tensor *c = tensor_new(&tmp, dt, h->ndim, h->shape);
	int64_t n = tensor_numel(h);
	if (dt == h->dtype) {
		ag_backend_get(DEV_CPU)->copy(c, h);
	} else {
		double *v = hug_malloc((size_t)(n ? n : 1) * sizeof(double));
		tensor_read_f64(h, v);
		tensor_write_f64(c, v);
		hug_free(v);
	}
	struct tensor *d = tensor_new(dev, dt, h->ndim, h->shape);
	hug_cuda_copy_h2d(d, c);
	arena_free(&tmp);
	return d;
}

double *cuda_test_read(const struct tensor *d)
{
	struct arena tmp, dtmp;
	arena_init(&tmp, "read", 0, NULL);
	arena_init(&dtmp, "read-dev", 0, hug_cuda_allocator());
	const struct tensor *src = d;
	if (!tensor_is_contiguous(d)) {
		struct tensor *c = tensor_new(&dtmp, d->dtype, d->ndim, d->shape);
		ag_backend_get(DEV_CUDA)->copy(c, d);
		src = c;
	}
	struct tensor *h = tensor_new(&tmp, d->dtype, d->ndim, d->shape);
	hug_cuda_copy_d2h(h, src);
	int64_t n = tensor_numel(d);
	double *v = hug_malloc((size_t)(n ? n : 1) * sizeof(double));
	tensor_read_f64(h, v);
	arena_free(&dtmp);
	arena_free(&tmp);
	return v;
}

void cuda_test_fill(struct tensor *t, uint64_t seed, double scale, bool bf16_exact)
{
	int64_t n = tensor_numel(t);
	double *v = hug_malloc((size_t)(n ? n : 1) * sizeof(double));
	for (int64_t i = 0; i < n; i++) {
		double x = (2.0 * rng_uniform(seed, (uint64_t)i) - 1.0) * scale;
		v[i] = bf16_exact ? bf16_to_f32(f32_to_bf16((float)x)) : (float)x;
	}
	tensor_write_f64(t, v);
	hug_free(v);
}

double cuda_test_rel_err(const double *got, const double *want, int64_t n,
			 int64_t *worst)
{
	double maxdiff = 0, maxref = 0;
	*worst = 0;
	for (int64_t i = 0; i < n; i++) {
		double d = fabs(got[i] - want[i]);
		if (isnan(d))
			d = INFINITY;
		if (d > maxdiff) {
			maxdiff = d;
			*worst = i;
		}
		if (fabs(want[i]) > maxref)
			maxref = fabs(want[i]);
	}
	return maxref > 0 ? maxdiff / maxref : maxdiff;
}

/* The device twin of host parameter h, made and registered in dm. */
static struct tensor *twin(struct bloom_model *dm, const struct bloom_model *hm,
			   const struct tensor *h, bool trainable)
{
	const struct param *p = param_table_find(&hm->table, h->name);
	HUG_ASSERT(p && p->t == h);
	struct tensor *d = cuda_test_upload(&dm->params, h, h->dtype);
	if (trainable)
		tensor_set_requires_grad(d, &dm->grads);
	param_table_add(&dm->table, p->name, d, p->no_decay);
	return d;
}

void cuda_test_model_to_device(struct bloom_model *dm, const struct bloom_model *hm,
			       bool trainable)
{
	memset(dm, 0, sizeof(*dm));
	dm->cfg = hm->cfg;
	dm->tp = hm->tp;
	dm->dtype = hm->dtype;
	size_t bytes = arena_capacity(&hm->params) + 4 * ARENA_ALIGN;
	arena_init(&dm->params, "params", bytes, hug_cuda_allocator());
	arena_init(&dm->grads, "grads", bytes, hug_cuda_allocator());
	param_table_init(&dm->table);
	/* the host table's order, so the optimizer sees the same sequence */
	for (int i = 0; i < hm->table.n; i++)
		twin(dm, hm, hm->table.items[i].t, trainable);
#define DEV(field) (param_table_find(&dm->table, hm->field->name)->t)
	dm->wte = DEV(wte);
	dm->emb_ln_w = DEV(emb_ln_w);
	dm->emb_ln_b = DEV(emb_ln_b);
	dm->lnf_w = DEV(lnf_w);
	dm->lnf_b = DEV(lnf_b);
	dm->layers = hug_calloc((size_t)hm->cfg.n_layer, sizeof(*dm->layers));
	for (int l = 0; l < hm->cfg.n_layer; l++) {
		dm->layers[l].ln1_w = DEV(layers[l].ln1_w);
		dm->layers[l].ln1_b = DEV(layers[l].ln1_b);
		dm->layers[l].qkv_w = DEV(layers[l].qkv_w);
		dm->layers[l].qkv_b = DEV(layers[l].qkv_b);
		dm->layers[l].proj_w = DEV(layers[l].proj_w);
		dm->layers[l].proj_b = DEV(layers[l].proj_b);
		dm->layers[l].ln2_w = DEV(layers[l].ln2_w);
		dm->layers[l].ln2_b = DEV(layers[l].ln2_b);
		dm->layers[l].fc1_w = DEV(layers[l].fc1_w);
		dm->layers[l].fc1_b = DEV(layers[l].fc1_b);
		dm->layers[l].fc2_w = DEV(layers[l].fc2_w);
		dm->layers[l].fc2_b = DEV(layers[l].fc2_b);
	}
#undef DEV
	dm->slopes = cuda_test_upload(&dm->params, hm->slopes, hm->slopes->dtype);
	HUG_ASSERT(dm->params.n_chunk_allocs == 1);
}

/* A view of m whose parameters are ag_cast(p, dt) (recorded, so gradients
 * reach m's f32 parameters); layers in `layers` (n_layer entries). */
void cuda_test_model_cast(struct ag_ctx *ctx, const struct bloom_model *m, enum dtype dt,
		       struct bloom_model *out, struct bloom_layer *layers)
{
	*out = *m;
	out->dtype = dt;
	out->layers = layers;
#define CAST(x) ag_cast(ctx, (x), dt)
	out->wte = CAST(m->wte);
	out->emb_ln_w = CAST(m->emb_ln_w);
	out->emb_ln_b = CAST(m->emb_ln_b);
	out->lnf_w = CAST(m->lnf_w);
	out->lnf_b = CAST(m->lnf_b);
	out->slopes = CAST(m->slopes);
	for (int l = 0; l < m->cfg.n_layer; l++) {
		const struct bloom_layer *s = &m->layers[l];
		struct bloom_layer *d = &layers[l];
		*d = *s; /* fields beyond the weights (LoRA adapters) as they are */
		d->ln1_w = CAST(s->ln1_w);
		d->ln1_b = CAST(s->ln1_b);
		d->qkv_w = CAST(s->qkv_w);
		d->qkv_b = CAST(s->qkv_b);
		d->proj_w = CAST(s->proj_w);
		d->proj_b = CAST(s->proj_b);
		d->ln2_w = CAST(s->ln2_w);
		d->ln2_b = CAST(s->ln2_b);
		d->fc1_w = CAST(s->fc1_w);
		d->fc1_b = CAST(s->fc1_b);
		d->fc2_w = CAST(s->fc2_w);
		d->fc2_b = CAST(s->fc2_b);
	}
#undef CAST
}

#endif
