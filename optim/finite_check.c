/* finite_check.c: the "any NaN or Inf" test for tensors and for the state
 * an optimizer update just wrote. On the GPU it reuses the double-precision
 * sum-of-squares reduction of the gradient norm: a sum of squares of f32
 * values accumulated in double is finite exactly when every value is. */
#include "finite_check.h"

#include <math.h>
#include <stdio.h>

#include "../autograd/dtype.h"
#include "../autograd/transfer.h"
#include "../base/panic.h"
#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"
#endif

bool tensor_all_finite(const struct tensor *t)
{
	int64_t n = tensor_numel(t);
	if (!dtype_is_float(t->dtype) || n == 0)
		return true;
	if (t->device != DEV_CPU) {
#ifdef HUG_CUDA
		struct tensor *one = (struct tensor *)t;
		return isfinite(hug_cuda_sum_squares(1, &one));
#else
		hug_panic("finite check: tensor on a device this build lacks");
#endif
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

#ifdef HUG_CUDA
/* One reduction (one wait) over every slot's parameter range, m or v
 * (which: 0, 1, 2); true when all are finite. */
static bool device_all_finite(struct optimizer *o, int which)
{
	int k = 0;
	for (int i = 0; i < o->n; i++) {
		const struct optim_slot *s = &o->slots[i];
		if (which == 0)
			tensor_flat_range(&o->views[k], s->param->t, s->off, s->len);
		else if ((which == 1 ? s->m : s->v) != NULL)
			o->views[k] = *(which == 1 ? s->m : s->v);
		else
			continue;
		o->view_ptrs[k] = &o->views[k];
		k++;
	}
	return k == 0 || isfinite(hug_cuda_sum_squares(k, o->view_ptrs));
}
#endif

int optim_find_nonfinite(struct optimizer *o, char *what, size_t n)
{
#ifdef HUG_CUDA
	/* on the GPU: three waits when all is well, per tensor only if not */
	if (o->n && o->slots[0].param->t->device != DEV_CPU && device_all_finite(o, 0) &&
	    device_all_finite(o, 1) && device_all_finite(o, 2))
		return 0;
#endif
	for (int i = 0; i < o->n; i++) {
		const struct optim_slot *s = &o->slots[i];
		struct tensor view;
		tensor_flat_range(&view, s->param->t, s->off, s->len);
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
