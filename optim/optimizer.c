/* optimizer.c: AdamW and SGD state, updates, clipping and zeroing, for
 * parameters on any device: host f32/f64 or f32 on the GPU (the state lives
 * on the parameters' device). The element-wise work goes through the
 * device's backend (struct ag_backend's optim_update and sum_squares,
 * autograd/cpu/optim.c and autograd/cuda/optim.cu). The arithmetic follows
 * PyTorch's single-tensor AdamW: scalars in double, applied in the
 * parameter's precision. */
#include "optimizer.h"

#include <fnmatch.h>
#include <math.h>
#include <string.h>

#include "../autograd/backend.h"
#include "../autograd/transfer.h"
#include "../base/alloc.h"
#include "../base/panic.h"

struct optim_config optim_config_adamw(void)
{
	return (struct optim_config){ .kind = OPTIM_ADAMW, .beta1 = 0.9, .beta2 = 0.999,
				      .eps = 1e-8, .weight_decay = 0.01 };
}

/* Number of elements of all trainable parameters of pt. */
static int64_t optim_trainable_numel(const struct param_table *pt)
{
	int64_t n = 0;
	for (int i = 0; i < pt->n; i++)
		if (pt->items[i].t->grad)
			n += tensor_numel(pt->items[i].t);
	return n;
}

void optim_init_range(struct optimizer *o, const struct optim_config *cfg,
		      struct param_table *pt, int64_t lo, int64_t hi)
{
	memset(o, 0, sizeof(*o));
	o->cfg = *cfg;
	o->table = pt;
	o->lo = lo;
	o->hi = hi;
	o->slots = hug_calloc((size_t)(pt->n ? pt->n : 1), sizeof(*o->slots));
	o->views = hug_calloc((size_t)(pt->n ? pt->n : 1), sizeof(*o->views));
	o->view_ptrs = hug_calloc((size_t)(pt->n ? pt->n : 1), sizeof(*o->view_ptrs));
	bool need_m = cfg->kind == OPTIM_ADAMW || cfg->momentum != 0.0;
	bool need_v = cfg->kind == OPTIM_ADAMW;
	int64_t start = 0;
	size_t total = 0;
	enum device dev = DEV_CPU; /* the trainable parameters' (all on one device) */
	for (int i = 0; i < pt->n; i++)
		if (pt->items[i].t->grad) {
			dev = pt->items[i].t->device;
			break;
		}
	for (int pass = 0; pass < 2; pass++) { /* size the arena, then fill it */
		start = 0;
		for (int i = 0; i < pt->n; i++) {
			struct param *p = &pt->items[i];
			if (!p->t->grad)
				continue; /* frozen: no state */
			HUG_ASSERT(p->t->device == dev);
			int64_t n = tensor_numel(p->t), a = lo > start ? lo - start : 0;
			int64_t b = hi < start + n ? hi - start : n;
			start += n;
			if (a >= b)
				continue;
			size_t bytes = (size_t)(b - a) * dtype_size(p->t->dtype);
			if (pass == 0) {
				total += 2 * (bytes + 2 * ARENA_ALIGN + sizeof(struct tensor));
				continue;
			}
			struct optim_slot *s = &o->slots[o->n++];
			s->param = p;
			s->decay = !p->no_decay;
			s->off = a;
			s->len = b - a;
			if (need_m)
				s->m = tensor_zeros(&o->state, p->t->dtype, 1, &s->len);
			if (need_v)
				s->v = tensor_zeros(&o->state, p->t->dtype, 1, &s->len);
		}
		if (pass == 0)
			arena_init(&o->state, "optimizer", total, ag_device_allocator(dev));
	}
}

void optim_init(struct optimizer *o, const struct optim_config *cfg,
		struct param_table *pt)
{
	optim_init_range(o, cfg, pt, 0, optim_trainable_numel(pt));
}

void optim_free(struct optimizer *o)
{
	hug_free(o->slots);
	hug_free(o->views);
	hug_free(o->view_ptrs);
	arena_free(&o->state);
	memset(o, 0, sizeof(*o));
}

int optim_set_decay(struct optimizer *o, const char *pattern, bool decay)
{
	int n = 0;
	for (int i = 0; i < o->n; i++)
		if (fnmatch(pattern, o->slots[i].param->name, 0) == 0) {
			o->slots[i].decay = decay;
			n++;
		}
	return n;
}

/* The backend of the device holding tensor t; a panic when this build has
 * none (a tensor cannot get there without one). */
static const struct ag_backend *backend_of(const struct tensor *t, const char *what)
{
	const struct ag_backend *be = ag_backend_get(t->device);
	if (!be || !be->optim_update || !be->sum_squares)
		hug_panic("optimizer: %s is on %s, which has no optimizer kernels", what,
			  device_name(t->device));
	return be;
}

void optim_step(struct optimizer *o, double lr)
{
	o->step++;
	const struct optim_config *c = &o->cfg;
	double bc1 = 1.0 - pow(c->beta1, (double)o->step);
	double bc2 = 1.0 - pow(c->beta2, (double)o->step);
	struct ag_optim_update u = {
		.adamw = c->kind == OPTIM_ADAMW, .lr = lr, .beta1 = c->beta1,
		.beta2 = c->beta2, .eps = c->eps, .bc1 = bc1, .bc2 = bc2,
		.momentum = c->momentum, .nesterov = c->nesterov, .first = o->step == 1,
	};
	for (int i = 0; i < o->n; i++) {
		struct optim_slot *s = &o->slots[i];
		struct tensor *p = s->param->t;
		u.weight_decay = s->decay ? c->weight_decay : 0.0;
		size_t at = (size_t)s->off * dtype_size(p->dtype);
		char *pd = s->w ? s->w : (char *)p->data + at;
		char *gd = s->g ? s->g : (char *)p->grad->data + at;
		backend_of(p, s->param->name)->optim_update(&u, p->dtype, s->len, pd, gd,
							    s->m ? s->m->data : NULL,
							    s->v ? s->v->data : NULL);
	}
}

void optim_zero_grad(struct optimizer *o)
{
	for (int i = 0; i < o->table->n; i++) {
		struct tensor *g = o->table->items[i].t->grad;
		if (!g)
			continue;
		if (g->device == DEV_CPU)
			memset(g->data, 0, tensor_nbytes(g));
		else
			ag_backend_get(g->device)->fill(g, 0.0);
	}
}

/* The gradient elements of slot s as a 1-d view. */
static void slot_grad(const struct optim_slot *s, struct tensor *view)
{
	tensor_flat_range(view, s->param->t->grad, s->off, s->len);
	if (s->g)
		view->data = s->g;
}

void optim_slot_retarget(struct optim_slot *s, void *w, void *g)
{
	s->w = w;
	s->g = g;
}

double optim_grad_sumsq(const struct optimizer *o, bool (*include)(const struct param *))
{
	/* one call (one wait on the GPU) for every slot, in slot order */
	int k = 0;
	for (int i = 0; i < o->n; i++) {
		const struct optim_slot *s = &o->slots[i];
		if (include && !include(s->param))
			continue;
		slot_grad(s, &o->views[k]);
		o->view_ptrs[k] = &o->views[k];
		k++;
	}
	if (!k)
		return 0;
	return backend_of(&o->views[0], "a gradient")->sum_squares(k, o->view_ptrs);
}

double optim_grad_norm(const struct optimizer *o)
{
	return sqrt(optim_grad_sumsq(o, NULL));
}

void optim_scale_grads(struct optimizer *o, double coef)
{
	for (int i = 0; i < o->n; i++) {
		const struct optim_slot *s = &o->slots[i];
		struct tensor view;
		slot_grad(s, &view);
		ag_backend_get(view.device)->scale(&view, coef);
	}
}

double optim_clip_grads(struct optimizer *o, double norm, double max_norm)
{
	if (!(isfinite(norm) && max_norm > 0 && norm > max_norm))
		return 1.0;
	double coef = max_norm / (norm + 1e-6);
	optim_scale_grads(o, coef);
	return coef;
}

size_t optim_state_bytes(const struct optimizer *o)
{
	size_t b = 0;
	for (int i = 0; i < o->n; i++) {
		if (o->slots[i].m)
			b += tensor_nbytes(o->slots[i].m);
		if (o->slots[i].v)
			b += tensor_nbytes(o->slots[i].v);
	}
	return b;
}
