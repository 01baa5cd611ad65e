/* optimizer.c: AdamW and SGD updates, clipping and zeroing on host f32/f64
 * parameters. The arithmetic follows PyTorch's single-tensor AdamW: scalars
 * in double, applied in the parameter's precision. */
#include "optimizer.h"

#include <fnmatch.h>
#include <math.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/panic.h"

struct optim_config optim_config_adamw(void)
{
	return (struct optim_config){ .kind = OPTIM_ADAMW, .beta1 = 0.9, .beta2 = 0.999,
				      .eps = 1e-8, .weight_decay = 0.01 };
}

void optim_init(struct optimizer *o, const struct optim_config *cfg,
		struct param_table *pt)
{
	memset(o, 0, sizeof(*o));
	o->cfg = *cfg;
	o->slots = hug_calloc((size_t)(pt->n ? pt->n : 1), sizeof(*o->slots));
	bool need_m = cfg->kind == OPTIM_ADAMW || cfg->momentum != 0.0;
	bool need_v = cfg->kind == OPTIM_ADAMW;
	size_t total = 0;
	for (int i = 0; i < pt->n; i++)
		if (pt->items[i].t->grad)
			total += 2 * (tensor_nbytes(pt->items[i].t) + 2 * ARENA_ALIGN + sizeof(struct tensor));
	arena_init(&o->state, "optimizer", total, NULL);
	for (int i = 0; i < pt->n; i++) {
		struct param *p = &pt->items[i];
		if (!p->t->grad)
			continue; /* frozen: no state */
		struct optim_slot *s = &o->slots[o->n++];
		s->param = p;
		s->decay = !p->no_decay;
		if (need_m)
			s->m = tensor_zeros(&o->state, p->t->dtype, p->t->ndim, p->t->shape);
		if (need_v)
			s->v = tensor_zeros(&o->state, p->t->dtype, p->t->ndim, p->t->shape);
	}
}

void optim_free(struct optimizer *o)
{
	hug_free(o->slots);
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

#define CPU_TEMPLATE "optim/optimizer.tmpl.h"
#include "../autograd/cpu/instantiate.h"

void optim_step(struct optimizer *o, double lr)
{
	o->step++;
	const struct optim_config *c = &o->cfg;
	double bc1 = 1.0 - pow(c->beta1, (double)o->step);
	double bc2 = 1.0 - pow(c->beta2, (double)o->step);
	for (int i = 0; i < o->n; i++) {
		struct optim_slot *s = &o->slots[i];
		struct tensor *p = s->param->t;
		double wd = s->decay ? c->weight_decay : 0.0;
		int64_t n = tensor_numel(p);
		HUG_ASSERT(p->dtype == DT_F32 || p->dtype == DT_F64);
		if (c->kind == OPTIM_ADAMW)
			CPU_DISPATCH(p->dtype, adamw_update, n, p->data, p->grad->data,
				     s->m->data, s->v->data, lr, wd, c->beta1, c->beta2,
				     c->eps, bc1, bc2);
		else
			CPU_DISPATCH(p->dtype, sgd_update, n, p->data, p->grad->data,
				     s->m ? s->m->data : NULL, lr, wd, c->momentum,
				     c->nesterov, o->step == 1);
	}
}

void optim_zero_grad(struct optimizer *o)
{
	for (int i = 0; i < o->n; i++) {
		struct tensor *g = o->slots[i].param->t->grad;
		memset(g->data, 0, tensor_nbytes(g));
	}
}

double optim_clip_grad_norm(struct optimizer *o, double max_norm)
{
	double ss = 0;
	for (int i = 0; i < o->n; i++) {
		struct tensor *g = o->slots[i].param->t->grad;
		ss += CPU_DISPATCH(g->dtype, sum_squares, tensor_numel(g), g->data);
	}
	double norm = sqrt(ss);
	if (!isfinite(norm) || max_norm <= 0 || norm <= max_norm)
		return norm;
	double coef = max_norm / (norm + 1e-6);
	for (int i = 0; i < o->n; i++) {
		struct tensor *g = o->slots[i].param->t->grad;
		CPU_DISPATCH(g->dtype, scale_inplace, tensor_numel(g), g->data, coef);
	}
	return norm;
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
