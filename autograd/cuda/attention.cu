// attention.cu: the fused causal self-attention with ALiBi, a padding mask,
// Tq <= Tk and dropout on the probabilities (autograd/cpu/attention.tmpl.h;
// ag_attention in autograd.h). Straightforward kernels, not flash
// attention: the probabilities are materialised and saved, as on the CPU.
//
// Forward: one block per (b, h, query row i). The block stages q_i in
// shared memory, computes the prefix count of kept keys when there is a
// padding mask (pos_j = kept keys up to j, minus 1), writes the row of
// scores to shared memory (one thread per key), takes the row maximum and
// the sum of exponentials (double) with the fixed-tree block reductions,
// stores the probabilities (rounded to the tensor's dtype) and forms
// out_i = sum_j p_ij m_ij v_j with the threads split over (key group, d)
// and the groups combined in order.
//
// Backward, in three kernels so that each output element has one writer
// (no atomics):
//   1. dV: one block per (b, h, key j): dV_j += sum_i P_ij M_ij dO_i.
//   2. dS and dQ: one block per (b, h, i): dP_ij = M_ij dO_i . V_j,
//      dS_ij = P_ij (dP_ij - sum_j P_ij dP_ij) scale, dQ_i += sum_j dS_ij K_j.
//      When dK is wanted, dS overwrites the saved probabilities in place
//      (the tape runs a node's backward once; dV has read them already).
//   3. dK: one block per (b, h, key j): dK_j += sum_i dS_ij Q_i.
// M is the dropout factor from the counter-based stream, numbered over all
// heads (head_offset, n_head_total) exactly as the CPU numbers it.
#include <cmath>

#include "common.cuh"

#define ATT_THREADS 256

struct AttnArgs {
	const void *q, *k, *v;         // (B, H, T, D), unit stride on D
	int64_t qs[3], ks[3], vs[3];   // element strides of dims 0..2
	const void *slopes;            // (H) or NULL
	const int32_t *mask;           // (B, Tk) or NULL
	void *out;                     // (B, H, Tq, D) contiguous
	void *probs;                   // (B, H, Tq, Tk); dS after backward 2
	int64_t B, H, Tq, Tk, D;
	float scale;
	bool causal;
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

// pos[j] = number of m[j'] != 0 for j' <= j, for j < tk (a block-wide scan:
// each thread counts a contiguous chunk, the chunk totals are scanned in
// shared memory). Every thread of the block must call it.
__device__ void mask_positions(const int32_t *m, int64_t tk, int *pos)
{
	__shared__ int tsum[ATT_THREADS];
	const int tid = threadIdx.x, nt = blockDim.x;
	int64_t per = (tk + nt - 1) / nt, lo = tid * per;
	int64_t hi = lo + per < tk ? lo + per : tk;
	int cnt = 0;
	for (int64_t j = lo; j < hi; j++)
		cnt += m[j] != 0;
	tsum[tid] = cnt;
	__syncthreads();
	for (int off = 1; off < nt; off <<= 1) {
		int add = tid >= off ? tsum[tid - off] : 0;
		__syncthreads();
		tsum[tid] += add;
		__syncthreads();
	}
	int run = tsum[tid] - cnt;
	for (int64_t j = lo; j < hi; j++) {
		run += m[j] != 0;
		pos[j] = run;
	}
	__syncthreads();
}

// out[d] (+)= sum_j w[j] x_j[d] for d < D, x_j = base + j * stride, j < n,
// skipping w[j] == 0: the threads split into groups of D (group g takes
// j = g, g + G, ...), then the G partial sums are added in group order.
// `part` holds blockDim.x floats. Every thread of the block must call it.
template <typename T>
__device__ void weighted_rows(const float *w, int64_t n, const T *base, int64_t stride,
			      int64_t D, T *out, bool accumulate, float *part)
{
	const int tid = threadIdx.x, nt = blockDim.x;
	if (D == 0)
		return;
	if (D <= nt) {
		int G = nt / (int)D, g = tid / (int)D, d = tid % (int)D;
		float acc = 0.0f;
		if (g < G)
			for (int64_t j = g; j < n; j += G) {
				float wj = w[j];
				if (wj != 0.0f)
					acc += wj * to_f(base[j * stride + d]);
			}
		part[tid] = acc;
		__syncthreads();
		if (tid < D) {
			float o = 0.0f;
			for (int gg = 0; gg < G; gg++)
				o += part[gg * D + tid];
			out[tid] = from_f<T>(accumulate ? to_f(out[tid]) + o : o);
		}
		__syncthreads();
	} else {
		for (int64_t d = tid; d < D; d += nt) {
			float o = 0.0f;
			for (int64_t j = 0; j < n; j++)
				if (w[j] != 0.0f)
					o += w[j] * to_f(base[j * stride + d]);
			out[d] = from_f<T>(accumulate ? to_f(out[d]) + o : o);
		}
	}
}

template <typename T>
__global__ void __launch_bounds__(ATT_THREADS) attn_fwd_k(AttnArgs a)
{
	extern __shared__ __align__(16) unsigned char smem[];
	float *sc = (float *)smem;                              // Tk
	int *pos = (int *)(sc + a.Tk);                          // Tk with a mask
	float *qv = (float *)(pos + (a.mask ? a.Tk : 0));       // D
	float *part = qv + a.D;                                 // ATT_THREADS
	const int tid = threadIdx.x, nt = blockDim.x;
	const int64_t row = blockIdx.x, bh = row / a.Tq, i = row % a.Tq;
	const int64_t b = bh / a.H, h = bh % a.H;
	const T *qi = (const T *)a.q + b * a.qs[0] + h * a.qs[1] + i * a.qs[2];
	const T *kb = (const T *)a.k + b * a.ks[0] + h * a.ks[1];
	const T *vb = (const T *)a.v + b * a.vs[0] + h * a.vs[1];
	const int32_t *mb = a.mask ? a.mask + b * a.Tk : nullptr;
	for (int64_t d = tid; d < a.D; d += nt)
		qv[d] = to_f(qi[d]);
	if (mb)
		mask_positions(mb, a.Tk, pos);
	__syncthreads();

	const int64_t qpos = a.Tk - a.Tq + i;
	const float slope = a.slopes ? to_f(((const T *)a.slopes)[h]) : 0.0f;
	float mx = -INFINITY;
	for (int64_t j = tid; j < a.Tk; j += nt) {
		bool ok = !a.causal || j <= qpos;
		if (mb)
			ok = ok && mb[j] != 0;
		float s = -INFINITY;
		if (ok) {
			const T *kj = kb + j * a.ks[2];
			float dot = 0.0f;
			for (int64_t d = 0; d < a.D; d++)
				dot += qv[d] * to_f(kj[d]);
			float p = mb ? (float)(pos[j] - 1) : (float)j;
			s = a.scale * dot + slope * p;
			mx = s > mx ? s : mx;
		}
		sc[j] = s;
	}
	mx = block_max(mx);

	T *prow = (T *)a.probs + row * a.Tk;
	T *orow = (T *)a.out + row * a.D;
	if (mx == -INFINITY) { // every key masked: zeros (uniform over the block)
		for (int64_t j = tid; j < a.Tk; j += nt)
			prow[j] = from_f<T>(0.0f);
		for (int64_t d = tid; d < a.D; d += nt)
			orow[d] = from_f<T>(0.0f);
		return;
	}
	double sum = 0;
	for (int64_t j = tid; j < a.Tk; j += nt) {
		float e = sc[j] == -INFINITY ? 0.0f : expf(sc[j] - mx);
		sc[j] = e;
		sum += e;
	}
	sum = block_sum(sum);
	const float inv = (float)(1.0 / sum);
	for (int64_t j = tid; j < a.Tk; j += nt) {
		T p = from_f<T>(sc[j] * inv);
		prow[j] = p;
		sc[j] = to_f(p) * att_drop(a, bh, i, j);
	}
	__syncthreads();
	weighted_rows<T>(sc, a.Tk, vb, a.vs[2], a.D, orow, false, part);
}

// 1. dV_j += sum_i P_ij M_ij dO_i, one block per (b, h, j)
template <typename T>
__global__ void __launch_bounds__(ATT_THREADS) attn_bwd_dv_k(AttnArgs a, const T *dout, T *dv)
{
	extern __shared__ __align__(16) unsigned char smem[];
	float *w = (float *)smem;       // Tq
	float *part = w + a.Tq;         // ATT_THREADS
	const int64_t col = blockIdx.x, bh = col / a.Tk, j = col % a.Tk;
	const T *P = (const T *)a.probs + bh * a.Tq * a.Tk;
	for (int64_t i = threadIdx.x; i < a.Tq; i += blockDim.x) {
		float p = to_f(P[i * a.Tk + j]);
		float m = p == 0.0f ? 0.0f : att_drop(a, bh, i, j);
		w[i] = m == 0.0f ? 0.0f : p * m; // a dropped NaN p is skipped, as on the CPU
	}
	__syncthreads();
	weighted_rows<T>(w, a.Tq, dout + bh * a.Tq * a.D, a.D, a.D,
			 dv + (bh * a.Tk + j) * a.D, true, part);
}

// 2. dS (into sc, and into the saved probabilities when store_ds) and
// dQ_i += sum_j dS_ij K_j, one block per (b, h, i)
template <typename T>
__global__ void __launch_bounds__(ATT_THREADS)
attn_bwd_ds_k(AttnArgs a, const T *dout, T *dq, bool store_ds)
{
	extern __shared__ __align__(16) unsigned char smem[];
	float *sc = (float *)smem;     // Tk
	float *dov = sc + a.Tk;        // D
	float *part = dov + a.D;       // ATT_THREADS
	const int tid = threadIdx.x, nt = blockDim.x;
	const int64_t row = blockIdx.x, bh = row / a.Tq, i = row % a.Tq;
	const int64_t b = bh / a.H, h = bh % a.H;
	const T *kb = (const T *)a.k + b * a.ks[0] + h * a.ks[1];
	const T *vb = (const T *)a.v + b * a.vs[0] + h * a.vs[1];
	T *prow = (T *)a.probs + row * a.Tk;
	for (int64_t d = tid; d < a.D; d += nt)
		dov[d] = to_f(dout[row * a.D + d]);
	__syncthreads();
	double rowdot = 0;
	for (int64_t j = tid; j < a.Tk; j += nt) {
		float p = to_f(prow[j]), dp = 0.0f;
		if (p != 0.0f) {
			const T *vj = vb + j * a.vs[2];
			float dot = 0.0f;
			for (int64_t d = 0; d < a.D; d++)
				dot += dov[d] * to_f(vj[d]);
			dp = att_drop(a, bh, i, j) * dot;
			rowdot += (double)p * dp;
		}
		sc[j] = dp;
	}
	const float rd = (float)block_sum(rowdot);
	for (int64_t j = tid; j < a.Tk; j += nt) {
		float p = to_f(prow[j]);
		float ds = p == 0.0f ? 0.0f : p * (sc[j] - rd) * a.scale;
		sc[j] = ds;
		if (store_ds)
			prow[j] = from_f<T>(ds);
	}
	__syncthreads();
	if (dq)
		weighted_rows<T>(sc, a.Tk, kb, a.ks[2], a.D, dq + row * a.D, true, part);
}

// 3. dK_j += sum_i dS_ij Q_i, one block per (b, h, j)
template <typename T>
__global__ void __launch_bounds__(ATT_THREADS) attn_bwd_dk_k(AttnArgs a, T *dk)
{
	extern __shared__ __align__(16) unsigned char smem[];
	float *w = (float *)smem;       // Tq
	float *part = w + a.Tq;         // ATT_THREADS
	const int64_t col = blockIdx.x, bh = col / a.Tk, j = col % a.Tk;
	const int64_t b = bh / a.H, h = bh % a.H;
	const T *dS = (const T *)a.probs + bh * a.Tq * a.Tk;
	for (int64_t i = threadIdx.x; i < a.Tq; i += blockDim.x)
		w[i] = to_f(dS[i * a.Tk + j]);
	__syncthreads();
	weighted_rows<T>(w, a.Tq, (const T *)a.q + b * a.qs[0] + h * a.qs[1], a.qs[2], a.D,
			 dk + (bh * a.Tk + j) * a.D, true, part);
}

static AttnArgs attn_args(const struct ag_node *n)
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
	a.slopes = n->in[3] ? n->in[3]->data : nullptr;
	a.mask = n->in[4] ? (const int32_t *)n->in[4]->data : nullptr;
	a.out = n->out->data;
	a.probs = n->saved[0]->data;
	a.B = q->shape[0];
	a.H = q->shape[1];
	a.Tq = q->shape[2];
	a.Tk = k->shape[2];
	a.D = q->shape[3];
	a.scale = (float)n->p.attention.scale;
	a.causal = n->p.attention.causal;
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
	const size_t static_margin = 4096; // block reductions, the mask scan
	if (bytes + static_margin > cu_smem_max())
		hug_panic("attention: %zu bytes of shared memory per block for Tq = %lld, "
			  "Tk = %lld, D = %lld; the device allows %zu (shorter sequences fit)",
			  bytes, (long long)n->in[0]->shape[2], (long long)n->in[1]->shape[2],
			  (long long)n->in[0]->shape[3], cu_smem_max());
	// the default 48 KiB limit counts static shared memory too
	if (bytes + static_margin > 48 * 1024)
		CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
						(int)bytes));
}

extern "C" void cuda_attention_forward(struct ag_node *n)
{
	AttnArgs a = attn_args(n);
	int64_t rows = a.B * a.H * a.Tq;
	if (!rows)
		return;
	size_t bytes = (size_t)(a.Tk * (a.mask ? 2 : 1) + a.D + ATT_THREADS) * sizeof(float);
	CU_FLOAT_DISPATCH(n->out->dtype, T, {
		smem_prepare(attn_fwd_k<T>, bytes, n);
		attn_fwd_k<T><<<cu_rows(rows), ATT_THREADS, bytes, cu_stream()>>>(a);
	});
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_attention_backward(struct ag_node *n)
{
	AttnArgs a = attn_args(n);
	struct tensor *dq = n->in[0]->grad, *dk = n->in[1]->grad, *dv = n->in[2]->grad;
	int64_t rows = a.B * a.H * a.Tq, cols = a.B * a.H * a.Tk;
	if (!rows || !cols || !a.D)
		return;
	const void *dout = n->out->grad->data;
	size_t col_bytes = (size_t)(a.Tq + ATT_THREADS) * sizeof(float);
	size_t row_bytes = (size_t)(a.Tk + a.D + ATT_THREADS) * sizeof(float);
	CU_FLOAT_DISPATCH(n->out->dtype, T, {
		if (dv) {
			smem_prepare(attn_bwd_dv_k<T>, col_bytes, n);
			attn_bwd_dv_k<T><<<cu_rows(cols), ATT_THREADS, col_bytes, cu_stream()>>>(
				a, (const T *)dout, (T *)dv->data);
			CUDA_LAUNCH_CHECK();
		}
		if (dq || dk) {
			smem_prepare(attn_bwd_ds_k<T>, row_bytes, n);
			attn_bwd_ds_k<T><<<cu_rows(rows), ATT_THREADS, row_bytes, cu_stream()>>>(
				a, (const T *)dout, dq ? (T *)dq->data : nullptr, dk != nullptr);
			CUDA_LAUNCH_CHECK();
		}
		if (dk) {
			smem_prepare(attn_bwd_dk_k<T>, col_bytes, n);
			attn_bwd_dk_k<T><<<cu_rows(cols), ATT_THREADS, col_bytes, cu_stream()>>>(
				a, (T *)dk->data);
			CUDA_LAUNCH_CHECK();
		}
	});
}
