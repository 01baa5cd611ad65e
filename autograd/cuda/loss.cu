// loss.cu: the fused log-softmax + cross-entropy with an ignore index
// (autograd/cpu/loss.tmpl.h), also over a vocabulary split across a
// tensor-parallel group (logits hold the slice [off, off + v); the group's
// collective reduces the row maxima, the sums of exponentials and the
// target logits, on device buffers).
//
// Forward: one block per row computes the log-sum-exp (max with
// block_max, the sum of exp in double with block_sum) into saved[0] (f32
// for f32 and bf16 logits); ignored rows get 0. Then one block sums
// lse - target logit over the counted rows in a fixed order and writes the
// mean (0 when nothing counts). The op layer range-checks the targets
// (the backend's find_out_of_range); should one outside [0, V) that is not
// the ignore index reach the kernels anyway, it makes the loss NaN instead
// of reading out of bounds.
//
// Backward: the count of counted targets is recomputed on the device from
// the targets (one block, into the backend's scratch), so nothing has to
// travel from the forward through host memory; then one block per counted
// row adds g (softmax - onehot) with g = dloss / count.
#include <cmath>

#include "common.cuh"

#define XENT_THREADS 256

template <typename T>
__global__ void __launch_bounds__(XENT_THREADS)
xent_lse_k(int64_t v, const T *x, const int32_t *t, int32_t ignore, float *lse)
{
	const int64_t r = blockIdx.x;
	if (t[r] == ignore) {
		if (threadIdx.x == 0)
			lse[r] = 0.0f;
		return;
	}
	const T *xr = x + r * v;
	float mx = -INFINITY;
	for (int64_t i = threadIdx.x; i < v; i += blockDim.x) {
		float xv = to_f(xr[i]);
		mx = xv > mx ? xv : mx;
	}
	mx = block_max(mx);
	double s = 0;
	for (int64_t i = threadIdx.x; i < v; i += blockDim.x)
		s += exp((double)(to_f(xr[i]) - mx));
	s = block_sum(s);
	if (threadIdx.x == 0)
		lse[r] = mx + (float)log(s);
}

// Vocab-parallel pieces: the local row maximum, the local sum of
// exponentials against the group's maximum, the log added to the maximum,
// and the target logit held by this rank (0 elsewhere).
template <typename T>
__global__ void __launch_bounds__(XENT_THREADS)
xent_rowmax_k(int64_t v, const T *x, const int32_t *t, int32_t ignore, float *lse)
{
	const int64_t r = blockIdx.x;
	float mx = -INFINITY;
	if (t[r] != ignore)
		for (int64_t i = threadIdx.x; i < v; i += blockDim.x) {
			float xv = to_f(x[r * v + i]);
			mx = xv > mx ? xv : mx;
		}
	mx = block_max(mx);
	if (threadIdx.x == 0)
		lse[r] = t[r] == ignore ? 0.0f : mx;
}

template <typename T>
__global__ void __launch_bounds__(XENT_THREADS)
xent_rowsum_k(int64_t v, const T *x, const int32_t *t, int32_t ignore, const float *mx,
	      float *out)
{
	const int64_t r = blockIdx.x;
	double s = 0;
	if (t[r] != ignore)
		for (int64_t i = threadIdx.x; i < v; i += blockDim.x)
			s += exp((double)(to_f(x[r * v + i]) - mx[r]));
	s = block_sum(s);
	if (threadIdx.x == 0)
		out[r] = (float)s;
}

__global__ void xent_addlog_k(int64_t rows, const int32_t *t, int32_t ignore, float *lse,
			      const float *tl)
{
	CU_FOR(r, rows)
		if (t[r] != ignore)
			lse[r] += (float)log((double)tl[r]);
}

template <typename T>
__global__ void xent_target_k(int64_t rows, int64_t v, const T *x, const int32_t *t,
			      int32_t ignore, int64_t off, float *tl)
{
	CU_FOR(r, rows) {
		int64_t k = (int64_t)t[r] - off;
		tl[r] = t[r] != ignore && k >= 0 && k < v ? to_f(x[r * v + k]) : 0.0f;
	}
}

// out = mean over counted rows of lse - target logit (tl, or read from x
// when tl is NULL); one block.
template <typename T>
__global__ void xent_total_k(int64_t rows, int64_t v, const T *x, const int32_t *t,
			     int32_t ignore, const float *lse, const float *tl, float *out)
{
	double total = 0;
	long long cnt = 0;
	for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
		if (t[r] == ignore)
			continue;
		double target;
		if (tl)
			target = tl[r];
		else
			target = t[r] >= 0 && t[r] < v ? (double)to_f(x[r * v + t[r]]) : (double)NAN;
		total += (double)lse[r] - target;
		cnt++;
	}
	total = block_sum(total);
	cnt = block_sum(cnt);
	if (threadIdx.x == 0)
		out[0] = (float)(cnt ? total / (double)cnt : 0.0);
}

__global__ void xent_count_k(int64_t rows, const int32_t *t, int32_t ignore, double *count)
{
	long long cnt = 0;
	for (int64_t r = threadIdx.x; r < rows; r += blockDim.x)
		cnt += t[r] != ignore;
	cnt = block_sum(cnt);
	if (threadIdx.x == 0)
		count[0] = (double)cnt;
}

// dx (rows, v) += g (softmax(x) - onehot(t - off)) on counted rows
template <typename T>
__global__ void __launch_bounds__(XENT_THREADS)
xent_bwd_k(int64_t v, const T *x, const int32_t *t, int32_t ignore, const float *lse,
	   const float *dout, const double *count, int64_t off, T *dx)
{
	const int64_t r = blockIdx.x;
	const double c = count[0];
	if (t[r] == ignore || c == 0)
		return;
	const float g = (float)((double)dout[0] / c);
	const float l = lse[r];
	const int64_t k = (int64_t)t[r] - off;
	const T *xr = x + r * v;
	T *dr = dx + r * v;
	for (int64_t i = threadIdx.x; i < v; i += blockDim.x) {
		float val = to_f(dr[i]) + g * expf(to_f(xr[i]) - l);
		if (i == k)
			val -= g;
		dr[i] = from_f<T>(val);
	}
}

extern "C" void cuda_cross_entropy_forward(struct ag_node *n)
{
	const struct tensor *x = n->in[0], *t = n->in[1];
	const int64_t v = x->shape[x->ndim - 1], rows = tensor_numel(t);
	const int32_t ignore = n->p.cross_entropy.ignore_index;
	const int64_t off = n->p.cross_entropy.vocab_offset;
	const struct ag_collective *coll = n->p.cross_entropy.coll;
	const int32_t *tg = (const int32_t *)t->data;
	struct tensor *lse_t = n->saved[0];
	HUG_ASSERT(lse_t->dtype == DT_F32 && n->out->dtype == DT_F32);
	float *lse = (float *)lse_t->data;
	float *tl = coll ? (float *)n->saved[1]->data : nullptr;
	HUG_ASSERT(!coll || n->saved[1]->dtype == DT_F32);
	n->p.cross_entropy.count = -1; // known on the device only
	CU_FLOAT_DISPATCH(x->dtype, T, {
		const T *xd = (const T *)x->data;
		if (!coll) {
			if (rows)
				xent_lse_k<T><<<cu_rows(rows), XENT_THREADS, 0, cu_stream()>>>(
					v, xd, tg, ignore, lse);
		} else {
			// every rank makes every collective call, even with no rows
			if (rows)
				xent_rowmax_k<T><<<cu_rows(rows), XENT_THREADS, 0, cu_stream()>>>(
					v, xd, tg, ignore, lse);
			CUDA_LAUNCH_CHECK();
			coll->allreduce(coll->state, lse, rows, DT_F32, true, DEV_CUDA);
			if (rows)
				xent_rowsum_k<T><<<cu_rows(rows), XENT_THREADS, 0, cu_stream()>>>(
					v, xd, tg, ignore, lse, tl);
			CUDA_LAUNCH_CHECK();
			coll->allreduce(coll->state, tl, rows, DT_F32, false, DEV_CUDA);
			if (rows) {
				xent_addlog_k<<<cu_blocks(rows), CU_THREADS, 0, cu_stream()>>>(
					rows, tg, ignore, lse, tl);
				xent_target_k<T><<<cu_blocks(rows), CU_THREADS, 0, cu_stream()>>>(
					rows, v, xd, tg, ignore, off, tl);
			}
			CUDA_LAUNCH_CHECK();
			coll->allreduce(coll->state, tl, rows, DT_F32, false, DEV_CUDA);
		}
		xent_total_k<T><<<1, 1024, 0, cu_stream()>>>(rows, v, xd, tg, ignore, lse, tl,
							      (float *)n->out->data);
	});
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_cross_entropy_backward(struct ag_node *n)
{
	const struct tensor *x = n->in[0], *t = n->in[1];
	if (!x->grad)
		return;
	const int64_t v = x->shape[x->ndim - 1], rows = tensor_numel(t);
	if (!rows || !v)
		return;
	const int32_t ignore = n->p.cross_entropy.ignore_index;
	double *count = cu_scratch();
	xent_count_k<<<1, 1024, 0, cu_stream()>>>(rows, (const int32_t *)t->data, ignore, count);
	CUDA_LAUNCH_CHECK();
	CU_FLOAT_DISPATCH(x->dtype, T,
		xent_bwd_k<T><<<cu_rows(rows), XENT_THREADS, 0, cu_stream()>>>(
			v, (const T *)x->data, (const int32_t *)t->data, ignore,
			(const float *)n->saved[0]->data, (const float *)n->out->grad->data, count,
			n->p.cross_entropy.vocab_offset, (T *)x->grad->data));
	CUDA_LAUNCH_CHECK();
}
