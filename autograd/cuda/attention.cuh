// attention.cuh: what the exact (attention.cu) and tiled
// (attention_tiled.cu) CUDA attention kernels share: their arguments, the
// dropout factor, the visibility rule, the ALiBi positions and the shared
// memory opt-in (CUDA C++ only).
#ifndef HUG_AUTOGRAD_CUDA_ATTENTION_CUH
#define HUG_AUTOGRAD_CUDA_ATTENTION_CUH

#include "common.cuh"

#define ATT_THREADS 256

struct AttnArgs {
	const void *q, *k, *v;         // (B, H, T, D), unit stride on D
	int64_t qs[3], ks[3], vs[3];   // element strides of B, H; [2]: T (attn_ld)
	const void *slopes;            // (H) or NULL
	const int32_t *mask;           // (B, Tk) or NULL
	const int32_t *segs;           // (B, Tk) document ids or NULL
	const float *pos;              // (B, Tk) ALiBi positions (attn_positions)
				       // or NULL: pos_j = j
	void *out;                     // (B, H, Tq, D) contiguous
	void *probs;                   // exact: (B, H, Tq, Tk) contiguous;
				       // tiled: the log-sum-exp (B, H, Tq) f32
	int64_t B, H, Tq, Tk, D;
	int64_t G;                     // query heads per key/value head
	float scale;
	bool causal;
	int64_t window;                // sliding window, 0: none
	bool dropout;
	float pf, keep;                // p as f32 and 1 / (1 - p)
	uint64_t seed, offset;
	int64_t h0, htot;              // head_offset, n_head_total
};

// The dropout factor of probability (bh, i, j): 1, or 0 or 1/(1-p).
__device__ __forceinline__ float att_drop(const AttnArgs &a, int64_t bh, int64_t i,
					  int64_t j)
{
	if (!a.dropout)
		return 1.0f;
	int64_t b = bh / a.H, h = bh % a.H;
	int64_t idx = ((b * a.htot + a.h0 + h) * a.Tq + i) * a.Tk + j;
	return rng_uniform(a.seed, a.offset + (uint64_t)idx) >= a.pf ? a.keep : 0.0f;
}

// Whether query row i (qpos = Tk - Tq + i) of batch row b sees key j: the
// causal rule, the window, the padding mask and the document segments.
__device__ __forceinline__ bool att_visible(const AttnArgs &a, int64_t b, int64_t qpos,
					    int64_t j)
{
	if ((a.causal && j > qpos) || (a.window && qpos - j >= a.window))
		return false;
	if (a.mask && a.mask[b * a.Tk + j] == 0)
		return false;
	return !a.segs || a.segs[b * a.Tk + j] == a.segs[b * a.Tk + qpos];
}

// The ALiBi position of key j of batch row b: the kept keys from the start
// of j's segment up to j, minus 1 (j itself without a mask or segments).
__device__ __forceinline__ float att_pos(const AttnArgs &a, int64_t b, int64_t j)
{
	return a.pos ? a.pos[b * a.Tk + j] : (float)j;
}

// The leading dimension of q, k or v's (T, D) matrices: the stride on T,
// which ops.c makes at least D when T > 1. With T <= 1 it is never stepped
// and may be anything (a size-1 dim's stride: k (B, H, D, 1) transposed has
// 1), but cuBLAS checks a leading dimension against the rows even when it
// is unused (CUBLAS_STATUS_INVALID_VALUE below D), so max(1, D) stands in
// there, as on the CPU (attn_ld in autograd/cpu/attention.c).
static inline int64_t attn_ld(const struct tensor *t)
{
	int64_t d = t->shape[3], min = d > 1 ? d : 1;
	return t->shape[2] <= 1 ? min : t->stride[2];
}

static inline AttnArgs attn_args(const struct ag_node *n)
{
	const struct tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
	AttnArgs a;
	a.q = q->data;
	a.k = k->data;
	a.v = v->data;
	for (int d = 0; d < 3; d++) {
		a.qs[d] = q->stride[d];
		a.ks[d] = k->stride[d];
		a.vs[d] = v->stride[d];
	}
	a.qs[2] = attn_ld(q);
	a.ks[2] = attn_ld(k);
	a.vs[2] = attn_ld(v);
	a.slopes = n->in[3] ? n->in[3]->data : nullptr;
	a.mask = n->in[4] ? (const int32_t *)n->in[4]->data : nullptr;
	a.segs = n->in[5] ? (const int32_t *)n->in[5]->data : nullptr;
	a.pos = nullptr;
	a.out = n->out->data;
	a.probs = n->saved[0]->data;
	a.B = q->shape[0];
	a.H = q->shape[1];
	a.Tq = q->shape[2];
	a.Tk = k->shape[2];
	a.D = q->shape[3];
	a.G = n->p.attention.group;
	a.scale = (float)n->p.attention.scale;
	a.causal = n->p.attention.causal;
	a.window = n->p.attention.window;
	double p = n->p.attention.p;
	a.dropout = p != 0.0;
	a.pf = (float)p;
	a.keep = (float)(1.0 / (1.0 - p));
	a.seed = n->p.attention.seed;
	a.offset = n->p.attention.offset;
	a.h0 = n->p.attention.head_offset;
	a.htot = n->p.attention.n_head_total;
	return a;
}

// Dynamic shared memory of `bytes` for `kernel`: opts in above the default
// 48 KiB; more than the device allows is a clear failure.
template <typename K>
static void smem_prepare(K kernel, size_t bytes, const struct ag_node *n)
{
	const size_t static_margin = 4096; // block reductions
	if (bytes + static_margin > cu_smem_max())
		hug_panic("attention: %zu bytes of shared memory per block for Tq = %lld, "
			  "Tk = %lld; the device allows %zu (shorter sequences fit)",
			  bytes, (long long)n->in[0]->shape[2], (long long)n->in[1]->shape[2],
			  cu_smem_max());
	// the default 48 KiB limit counts static shared memory too
	if (bytes + static_margin > 48 * 1024)
		CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
						(int)bytes));
}

// Sets a.pos for ALiBi with a padding mask or segments: fills `pos`
// (B * Tk floats of device memory) with the positions (attention.cu);
// otherwise leaves a.pos NULL (pos_j = j). Returns the floats used.
int64_t attn_positions(AttnArgs &a, float *pos);
// The number of floats attn_positions needs.
static inline int64_t attn_pos_floats(const AttnArgs &a)
{
	return a.slopes && (a.mask || a.segs) ? a.B * a.Tk : 0;
}

// The tiled kernels (attention_tiled.cu).
void cuda_attention_tiled_forward(struct ag_node *n);
void cuda_attention_tiled_backward(struct ag_node *n);

#endif
