// reduce.cu: CUDA kernels for sum and mean, over all elements or one dim
// (autograd/cpu/reduce.tmpl.h). Sums accumulate in double. Over one dim a
// thread sums its output's k elements in order (the CPU's order); over all
// elements a fixed number of blocks (a function of n alone) make partial
// sums that one block combines in a fixed tree, so results are
// deterministic.
#include "common.cuh"
extern "C" {
#include "../node_dims.h"
}

#define SUM_ALL_MAX_BLOCKS 1024
static_assert(SUM_ALL_MAX_BLOCKS <= CU_SCRATCH_DOUBLES, "scratch too small");

template <typename T>
__global__ void sum_partial_k(int64_t n, const T *x, double *part)
{
	double s = 0;
	CU_FOR(i, n)
		s += to_f(x[i]);
	s = block_sum(s);
	if (threadIdx.x == 0)
		part[blockIdx.x] = s;
}

template <typename T>
__global__ void sum_finish_k(int nb, const double *part, double scale, T *y)
{
	double s = 0;
	for (int b = threadIdx.x; b < nb; b += blockDim.x)
		s += part[b];
	s = block_sum(s);
	if (threadIdx.x == 0)
		y[0] = from_f<T>((float)(s * scale));
}

// y (outer, inner) = scale * sum_k x (outer, k, inner)
template <typename T>
__global__ void sum_dim_k(int64_t outer, int64_t k, int64_t inner, double scale,
			  const T *x, T *y)
{
	CU_FOR(e, outer * inner) {
		int64_t o = e / inner, i = e % inner;
		double s = 0;
		for (int64_t j = 0; j < k; j++)
			s += to_f(x[(o * k + j) * inner + i]);
		y[e] = from_f<T>((float)(s * scale));
	}
}

// dx (outer, k, inner) += scale * dy (outer, inner)
template <typename T>
__global__ void sum_dim_bwd_k(int64_t outer, int64_t k, int64_t inner, float scale,
			      const T *dy, T *dx)
{
	CU_FOR(e, outer * k * inner) {
		int64_t i = e % inner, o = e / (k * inner);
		dx[e] = from_f<T>(to_f(dx[e]) + scale * to_f(dy[o * inner + i]));
	}
}


static void reduce_forward(struct ag_node *n, bool mean)
{
	int64_t outer, k, inner;
	ag_reduce_dims(n, &outer, &k, &inner);
	double scale = mean ? (k ? 1.0 / (double)k : 0.0) : 1.0;
	if (n->p.reduce.dim == AG_DIM_ALL) {
		int64_t nb = (k + CU_THREADS * 16 - 1) / (CU_THREADS * 16);
		if (nb > SUM_ALL_MAX_BLOCKS)
			nb = SUM_ALL_MAX_BLOCKS;
		if (nb < 1)
			nb = 1;
		double *part = cu_scratch();
		CU_FLOAT_DISPATCH(n->out->dtype, T, {
			sum_partial_k<T><<<(unsigned)nb, CU_THREADS, 0, cu_stream()>>>(
				k, (const T *)n->in[0]->data, part);
			sum_finish_k<T><<<1, 1024, 0, cu_stream()>>>(
				(int)nb, part, scale, (T *)n->out->data);
		});
	} else {
		if (outer == 0 || inner == 0)
			return;
		CU_FLOAT_DISPATCH(n->out->dtype, T,
			sum_dim_k<T><<<cu_blocks(outer * inner), CU_THREADS, 0, cu_stream()>>>(
				outer, k, inner, scale, (const T *)n->in[0]->data,
				(T *)n->out->data));
	}
	CUDA_LAUNCH_CHECK();
}

static void reduce_backward(struct ag_node *n, bool mean)
{
	int64_t outer, k, inner;
	ag_reduce_dims(n, &outer, &k, &inner);
	double scale = mean ? (k ? 1.0 / (double)k : 0.0) : 1.0;
	int64_t total = outer * k * inner;
	if (!total)
		return;
	CU_FLOAT_DISPATCH(n->out->dtype, T,
		sum_dim_bwd_k<T><<<cu_blocks(total), CU_THREADS, 0, cu_stream()>>>(
			outer, k, inner, (float)scale, (const T *)n->out->grad->data,
			(T *)n->in[0]->grad->data));
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_sum_forward(struct ag_node *n) { reduce_forward(n, false); }
extern "C" void cuda_sum_backward(struct ag_node *n) { reduce_backward(n, false); }
extern "C" void cuda_mean_forward(struct ag_node *n) { reduce_forward(n, true); }
extern "C" void cuda_mean_backward(struct ag_node *n) { reduce_backward(n, true); }
