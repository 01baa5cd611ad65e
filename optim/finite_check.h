/* finite_check.h: after an update, finds the first parameter or optimizer
 * moment (of this rank's range) that holds NaN or Inf, on the host or on
 * the GPU. */
#ifndef HUG_OPTIM_FINITE_CHECK_H
#define HUG_OPTIM_FINITE_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "../autograd/tensor.h"
#include "optimizer.h"

/* True when every element of t (any float dtype, contiguous, host or GPU)
 * is finite. */
bool tensor_all_finite(const struct tensor *t);

/* Checks the elements each slot updates: the parameter range [off,
 * off + len), exp_avg (m) and exp_avg_sq (v). Returns 0 when all are
 * finite; else 1 and writes "parameter NAME", "exp_avg of NAME" or
 * "exp_avg_sq of NAME" for the first bad one (slot order) into what[n]. */
int optim_find_nonfinite(struct optimizer *o, char *what, size_t n);

#endif
