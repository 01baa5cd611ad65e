/* finite_check.c: the "any NaN or Inf" test for tensors and for the state
 * an optimizer update just wrote. Off the host it reuses the device
 * backend's double-precision sum of squares (the gradient norm's, struct
 * ag_backend's sum_squares): a sum of squares of f32 or bf16 values
 * accumulated in double is finite exactly when every value is. */
#include "finite_check.h"

#include <math.h>
#include <stdio.h>

#include "../autograd/backend.h"
#include "../autograd/dtype.h"
#include "../autograd/transfer.h"
#include "../base/panic.h"

/* The sum of squares of ts[0..n) (device memory of `dev`) by that device's
 * backend. */
static double device_sum_squares(enum device dev, int n, struct tensor *const *ts)
{
	const struct ag_backend *be = ag_backend_get(dev);
	if (!be || !be->sum_squares)
		hug_panic("finite check: a tensor on %s, which has no backend", device_name(dev));
	return be->sum_squares(n, ts);
}

bool tensor_all_finite(const struct tensor *t)
{
	int64_t n = tensor_numel(t);
	if (!dtype_is_float(t->dtype) || n == 0)
		return true;
	if (t->device != DEV_CPU) {
		struct tensor *one = (struct tensor *)t;
		return isfinite(device_sum_squares(t->device, 1, &one));
	}
	HUG_ASSERT(tensor_is_contiguous(t));
	const void *d = t->data;
	for (int64_t i = 0; i < n; i++) {
		double v;
		switch (t->dtype) {
		case DT_F32: v = ((const float *)d)[i]; break;
		case DT_F64: v = ((const double *)d)[i]; break;
		case DT_BF16: v = bf16_to_f32(((const uint16_t *)d)[i]); break;
		default: v = f16_to_f32(((const uint16_t *)d)[i]); break;
		}
		if (!isfinite(v))
			return false;
	}
	return true;
}

/* The parameter values of slot s (its own, or a ZeRO shard's) as a 1-d
 * view. */
static void slot_values(const struct optim_slot *s, struct tensor *view)
{
	tensor_flat_range(view, s->param->t, s->off, s->len);
	if (s->w)
		view->data = s->w;
}

/* One reduction (one wait) over every slot's parameter range, m or v
 * (which: 0, 1, 2) on device dev; true when all are finite. */
static bool device_all_finite(struct optimizer *o, enum device dev, int which)
{
	int k = 0;
	for (int i = 0; i < o->n; i++) {
		const struct optim_slot *s = &o->slots[i];
		if (which == 0)
			slot_values(s, &o->views[k]);
		else if ((which == 1 ? s->m : s->v) != NULL)
			o->views[k] = *(which == 1 ? s->m : s->v);
		else
			continue;
		o->view_ptrs[k] = &o->views[k];
		k++;
	}
	return k == 0 || isfinite(device_sum_squares(dev, k, o->view_ptrs));
}

int optim_find_nonfinite(struct optimizer *o, char *what, size_t n)
{
	/* off the host: three waits when all is well, per tensor only if not */
	enum device dev = o->n ? o->slots[0].param->t->device : DEV_CPU;
	if (dev != DEV_CPU && device_all_finite(o, dev, 0) && device_all_finite(o, dev, 1) &&
	    device_all_finite(o, dev, 2))
		return 0;
	for (int i = 0; i < o->n; i++) {
		const struct optim_slot *s = &o->slots[i];
		struct tensor view;
		slot_values(s, &view);
		const char *kind = NULL;
		if (!tensor_all_finite(&view))
			kind = "parameter ";
		else if (s->m && !tensor_all_finite(s->m))
			kind = o->cfg.kind == OPTIM_ADAMW ? "exp_avg of " : "momentum_buffer of ";
		else if (s->v && !tensor_all_finite(s->v))
			kind = "exp_avg_sq of ";
		if (kind) {
			snprintf(what, n, "%s%s", kind, s->param->name);
			return 1;
		}
	}
	return 0;
}
