/* optim.c: the CPU backend's optimizer kernels (struct ag_backend's
 * optim_update and sum_squares): PyTorch's single-tensor AdamW and SGD on
 * f32 and f64 parameters, and sums of squares in double. Built with
 * -fno-math-errno (Makefile) so the AdamW span vectorises. */
#include "cpu_kernels.h"

#include "../../base/panic.h"

#define CPU_TEMPLATE "optim.tmpl.h"
#include "instantiate.h"

void cpu_optim_update(const struct ag_optim_update *u, enum dtype dt, int64_t n, void *p,
		      const void *g, void *m, void *v)
{
	HUG_ASSERT(dt == DT_F32 || dt == DT_F64);
	if (u->adamw)
		CPU_DISPATCH(dt, adamw_update, n, p, g, m, v, u->lr, u->weight_decay, u->beta1,
			     u->beta2, u->eps, u->bc1, u->bc2);
	else
		CPU_DISPATCH(dt, sgd_update, n, p, g, m, u->lr, u->weight_decay, u->momentum,
			     u->nesterov, u->first);
}

double cpu_sum_squares(int n, struct tensor *const *ts)
{
	double ss = 0;
	for (int i = 0; i < n; i++) {
		HUG_ASSERT(tensor_is_contiguous(ts[i]));
		ss += CPU_DISPATCH(ts[i]->dtype, sum_squares, tensor_numel(ts[i]), ts[i]->data);
	}
	return ss;
}
