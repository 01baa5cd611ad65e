// rope.cu: the rotary position embedding (autograd/cpu/rope.tmpl.h). One
// thread per (b, t, i < D/2): it forms the angle pos[b, t] * inv_freq[i]
// in f32 (the position and inv_freq rounded to f32, as on the CPU), its
// cos and sin once, and rotates the pair (i, i + D/2) of every head.
// Consecutive threads take consecutive i, so loads and stores coalesce.
// bf16 computes in f32 and rounds once on store.
#include <cmath>

#include "common.cuh"

struct RopeDims {
	int64_t b, h, t, d;
	int64_t sx[4]; // the source's element strides (sx[3] == 1)
};

// Forward: y = rot(a) x, x strided, y contiguous. Backward (INV): dx +=
// rot(-a) dy, dy and dx contiguous.
template <typename T, bool INV>
__global__ void rope_k(RopeDims g, const T *x, const int32_t *pos, const double *inv_freq,
		       T *y)
{
	const int64_t d2 = g.d / 2;
	CU_FOR(e, g.b * g.t * d2) {
		int64_t i = e % d2, bt = e / d2;
		int64_t b = bt / g.t, t = bt % g.t;
		float a = (float)pos[bt] * (float)inv_freq[i];
		float cs = cosf(a), sn = sinf(a);
		for (int64_t h = 0; h < g.h; h++) {
			const T *xp = x + b * g.sx[0] + h * g.sx[1] + t * g.sx[2] + i;
			T *yp = y + ((b * g.h + h) * g.t + t) * g.d + i;
			float x1 = to_f(xp[0]), x2 = to_f(xp[d2]);
			if (!INV) {
				yp[0] = from_f<T>(x1 * cs - x2 * sn);
				yp[d2] = from_f<T>(x2 * cs + x1 * sn);
			} else {
				yp[0] = from_f<T>(to_f(yp[0]) + (x1 * cs + x2 * sn));
				yp[d2] = from_f<T>(to_f(yp[d2]) + (x2 * cs - x1 * sn));
			}
		}
	}
}

static RopeDims rope_dims(const struct tensor *src)
{
	RopeDims g;
	g.b = src->shape[0];
	g.h = src->shape[1];
	g.t = src->shape[2];
	g.d = src->shape[3];
	for (int k = 0; k < 4; k++)
		g.sx[k] = src->stride[k];
	return g;
}

extern "C" void cuda_rope_forward(struct ag_node *n)
{
	const struct tensor *x = n->in[0];
	RopeDims g = rope_dims(x);
	int64_t work = g.b * g.t * (g.d / 2);
	if (!work || !g.h)
		return;
	CU_FLOAT_DISPATCH(x->dtype, T,
		rope_k<T, false><<<cu_blocks(work), CU_THREADS, 0, cu_stream()>>>(
			g, (const T *)x->data, (const int32_t *)n->in[1]->data,
			(const double *)n->in[2]->data, (T *)n->out->data));
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_rope_backward(struct ag_node *n)
{
	const struct tensor *x = n->in[0], *dy = n->out->grad;
	if (!x->grad)
		return;
	RopeDims g = rope_dims(dy);
	int64_t work = g.b * g.t * (g.d / 2);
	if (!work || !g.h)
		return;
	CU_FLOAT_DISPATCH(x->dtype, T,
		rope_k<T, true><<<cu_blocks(work), CU_THREADS, 0, cu_stream()>>>(
			g, (const T *)dy->data, (const int32_t *)n->in[1]->data,
			(const double *)n->in[2]->data, (T *)x->grad->data));
	CUDA_LAUNCH_CHECK();
}
