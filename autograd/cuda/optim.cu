// optim.cu: optimizer pieces for parameters in device memory (the backend's
// optim_update and sum_squares hooks): AdamW and SGD on f32 master weights
// (autograd/cpu/optim.tmpl.h, operation for operation, with the
// round-to-nearest intrinsics so nvcc fuses nothing into an FMA: a step
// gives the CPU's bits), the sum of squares for the
// global gradient norm, and in-place scaling for clipping.
#include <cmath>

#include "common.cuh"

__global__ void adamw_k(int64_t n, float *p, const float *g, float *m, float *v,
			float decay, float w1, float rb2, float w2, float step, float bc2s,
			float e)
{
	CU_FOR(i, n) {
		float gi = g[i];
		float pi = __fmul_rn(p[i], decay);                      // p *= decay
		float mi = __fadd_rn(m[i], __fmul_rn(w1, __fsub_rn(gi, m[i]))); // m += w1 (g - m)
		float vi = __fadd_rn(__fmul_rn(v[i], rb2),
				     __fmul_rn(__fmul_rn(w2, gi), gi)); // v = v b2 + w2 g g
		float den = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2s), e);
		pi = __fsub_rn(pi, __fmul_rn(step, __fdiv_rn(mi, den)));
		p[i] = pi;
		m[i] = mi;
		v[i] = vi;
	}
}

extern "C" void hug_cuda_adamw_update(int64_t n, float *p, const float *g, float *m,
				      float *v, double lr, double wd, double b1, double b2,
				      double eps, double bc1, double bc2)
{
	if (n <= 0)
		return;
	// the scalars exactly as autograd/cpu/optim.tmpl.h rounds them
	const float decay = (float)(1.0 - lr * wd), w1 = (float)(1.0 - b1);
	const float rb2 = (float)b2, w2 = (float)(1.0 - b2);
	const float step = (float)(lr / bc1), bc2s = (float)sqrt(bc2), e = (float)eps;
	adamw_k<<<cu_blocks(n), CU_THREADS, 0, cu_stream()>>>(n, p, g, m, v, decay, w1, rb2, w2,
								 step, bc2s, e);
	CUDA_LAUNCH_CHECK();
}

__global__ void sgd_k(int64_t n, float *p, const float *g, float *buf, float rl, float rw,
		      float mo, bool nesterov, bool first)
{
	CU_FOR(i, n) {
		float d = __fadd_rn(g[i], __fmul_rn(rw, p[i]));
		if (buf) {
			buf[i] = first ? d : __fadd_rn(__fmul_rn(mo, buf[i]), d);
			d = nesterov ? __fadd_rn(d, __fmul_rn(mo, buf[i])) : buf[i];
		}
		p[i] = __fsub_rn(p[i], __fmul_rn(rl, d));
	}
}

extern "C" void hug_cuda_sgd_update(int64_t n, float *p, const float *g, float *buf,
				    double lr, double wd, double momentum, bool nesterov,
				    bool first)
{
	if (n <= 0)
		return;
	sgd_k<<<cu_blocks(n), CU_THREADS, 0, cu_stream()>>>(n, p, g, buf, (float)lr, (float)wd,
							       (float)momentum, nesterov, first);
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_optim_update(const struct ag_optim_update *u, enum dtype dt, int64_t n,
				  void *p, const void *g, void *m, void *v)
{
	HUG_ASSERT(dt == DT_F32);
	if (u->adamw)
		hug_cuda_adamw_update(n, (float *)p, (const float *)g, (float *)m, (float *)v, u->lr,
				      u->weight_decay, u->beta1, u->beta2, u->eps, u->bc1, u->bc2);
	else
		hug_cuda_sgd_update(n, (float *)p, (const float *)g, (float *)m, u->lr,
				    u->weight_decay, u->momentum, u->nesterov, u->first);
}

// ---- global norm ----

#define SQ_MAX_BLOCKS 1024
static_assert(SQ_MAX_BLOCKS + 1 <= CU_SCRATCH_DOUBLES, "scratch too small");

template <typename T>
__global__ void sumsq_partial_k(int64_t n, const T *x, double *part)
{
	double s = 0;
	CU_FOR(i, n) {
		double xv = to_f(x[i]);
		s += xv * xv;
	}
	s = block_sum(s);
	if (threadIdx.x == 0)
		part[blockIdx.x] = s;
}

// *acc += the partial sums, added in a fixed tree
__global__ void sumsq_finish_k(int nb, const double *part, double *acc)
{
	double s = 0;
	for (int b = threadIdx.x; b < nb; b += blockDim.x)
		s += part[b];
	s = block_sum(s);
	if (threadIdx.x == 0)
		*acc += s;
}

extern "C" double hug_cuda_sum_squares(int n, struct tensor *const *ts)
{
	double *acc = cu_scratch(), *part = acc + 1;
	CUDA_CHECK(cudaMemsetAsync(acc, 0, sizeof(double), cu_stream()));
	for (int i = 0; i < n; i++) {
		const struct tensor *t = ts[i];
		HUG_ASSERT(t->device == DEV_CUDA && tensor_is_contiguous(t));
		int64_t numel = tensor_numel(t);
		if (!numel)
			continue;
		// the split depends on numel alone: deterministic
		int64_t nb = (numel + CU_THREADS * 16 - 1) / (CU_THREADS * 16);
		if (nb > SQ_MAX_BLOCKS)
			nb = SQ_MAX_BLOCKS;
		CU_FLOAT_DISPATCH(t->dtype, T,
			sumsq_partial_k<T><<<(unsigned)nb, CU_THREADS, 0, cu_stream()>>>(
				numel, (const T *)t->data, part));
		sumsq_finish_k<<<1, 1024, 0, cu_stream()>>>((int)nb, part, acc);
		CUDA_LAUNCH_CHECK();
	}
	double s = 0;
	hug_cuda_memcpy_d2h(&s, acc, sizeof(s));
	return s;
}

template <typename T>
__global__ void scale_inplace_k(int64_t n, T *x, float a)
{
	CU_FOR(i, n)
		x[i] = from_f<T>(to_f(x[i]) * a);
}

extern "C" void hug_cuda_scale(struct tensor *t, double a)
{
	HUG_ASSERT(t->device == DEV_CUDA && tensor_is_contiguous(t));
	int64_t n = tensor_numel(t);
	if (!n)
		return;
	CU_FLOAT_DISPATCH(t->dtype, T,
		scale_inplace_k<T><<<cu_blocks(n), CU_THREADS, 0, cu_stream()>>>(
			n, (T *)t->data, (float)a));
	CUDA_LAUNCH_CHECK();
}
