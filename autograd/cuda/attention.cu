// attention.cu: the entry points of the CUDA attention (the tiled kernel,
// attention_tiled.cu, unless the node asks for the exact one), the ALiBi
// positions, and the exact kernel: the causal self-attention with ALiBi, a
// padding mask, document segments, a sliding window, grouped key/value
// heads, Tq <= Tk and dropout on the probabilities
// (autograd/cpu/attention.tmpl.h; ag_attention in autograd.h), as the CPU
// does it: the matrix products on cuBLAS (cu_gemm, tensor cores in bf16)
// and the softmax rows in a kernel. The exact kernel materialises and
// saves the probabilities (B, H, Tq, Tk), as transformers' eager BLOOM
// does; its rows keep Tk floats in shared memory, so it is limited to the
// keys that fit (about 56K on an H100); the tiled kernel has no such limit.
//
// Grouped heads (G = H / Hkv query heads per key/value head): each product
// below is G strided-batched GEMMs, the g-th over query heads g, G + g,
// 2G + g, ... against key/value heads 0, 1, 2, ...; the G products into dK
// and dV accumulate in turn on the stream (the group sum, no atomics).
// G = 1 is one GEMM per product, as for multi-head attention.
//
// Forward, per batch of heads:
//   1. S = scale Q K^T (one strided-batched GEMM, into the saved
//      probabilities; in bf16 the scores are rounded to bf16 there, as
//      transformers' baddbmm does).
//   2. Row kernel, one block per (b, h, query row i): the ALiBi bias
//      slope * pos_j (pos_j = j, or with a padding mask or segments the
//      precomputed attn_positions), the causal, sliding-window, padding and
//      segment masks, the
//      softmax (f32, the sum in double), P rounded to the dtype into the saved probabilities, and
//      with dropout P M into the workspace. A row whose keys are all masked
//      gets zero probabilities; a row with a NaN score gets NaN ones.
//   3. O = (P M) V (GEMM).
// Backward, with W the shared workspace (B, H, Tq, Tk) (cu_workspace):
//   dV += (P M)^T dO (GEMM; P M formed in W with dropout);
//   W = dO V^T (GEMM); row kernel: dS_ij = P_ij (M_ij W_ij - sum_j P_ij
//   M_ij W_ij) scale into W (0 where P_ij = 0, the row sum in double);
//   dQ += dS K; dK += dS^T Q (GEMMs).
// The saved probabilities are not modified, so the backward could run again.
// Keys hidden by the causal mask or the window are computed and multiplied
// by zero, so a NaN or infinity in K or V at key j reaches every query row
// of the output (from V) or of dQ (from K). The CPU skips the keys hidden from a whole
// block of its query rows (CPU_ATTN_ROWS, 64, in autograd/cpu/attention.c),
// so there it reaches only the blocks that see key j: the same rows without
// the causal mask or for Tq <= 64, fewer beyond (and with a window, only
// the blocks whose window reaches key j). M is the dropout factor from the
// counter-based stream, numbered over all heads (head_offset,
// n_head_total) exactly as the CPU numbers it.
// Determinism: cuBLAS on one stream without atomics, and row kernels with
// fixed-tree block reductions.
#include <cmath>

#include "common.cuh"

#include "attention.cuh"

// 2. The softmax rows: probs holds the scaled scores on entry and the
// probabilities on return; pm (or NULL without dropout) gets P M. One
// block per (b, h, i). Dynamic shared memory: Tk floats, and Tk ints with
// a padding mask.
template <typename T>
__global__ void __launch_bounds__(ATT_THREADS) attn_softmax_k(AttnArgs a, T *pm)
{
	extern __shared__ __align__(16) unsigned char smem[];
	float *sc = (float *)smem;       // Tk
	const int tid = threadIdx.x, nt = blockDim.x;
	const int64_t row = blockIdx.x, bh = row / a.Tq, i = row % a.Tq;
	const int64_t b = bh / a.H, h = bh % a.H;

	T *prow = (T *)a.probs + row * a.Tk;
	T *wrow = pm ? pm + row * a.Tk : nullptr;
	const int64_t qpos = a.Tk - a.Tq + i;
	const float slope = a.slopes ? to_f(((const T *)a.slopes)[h]) : 0.0f;
	float mx = -INFINITY;
	double nan_seen = 0; // a NaN score makes the row NaN, never "all masked"
	for (int64_t j = tid; j < a.Tk; j += nt) {
		float s = -INFINITY;
		if (att_visible(a, b, qpos, j)) {
			float p = att_pos(a, b, j);
			// no contraction into an FMA: the CPU rounds the product
			s = __fadd_rn(to_f(prow[j]), __fmul_rn(slope, p));
			mx = s > mx ? s : mx;
			nan_seen += s != s ? 1.0 : 0.0; // NaN (no fast-math here)
		}
		sc[j] = s;
	}
	mx = block_max(mx);
	if (block_sum(nan_seen) > 0)
		mx = NAN; // every probability of the row NaN, as on the CPU
	if (mx == -INFINITY) { // every key masked: zeros (uniform over the block)
		for (int64_t j = tid; j < a.Tk; j += nt) {
			prow[j] = from_f<T>(0.0f);
			if (wrow)
				wrow[j] = from_f<T>(0.0f);
		}
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
		if (wrow)
			wrow[j] = from_f<T>(to_f(p) * att_drop(a, bh, i, j));
	}
}

// w = P M element for element (0 where P is 0, so a dropped NaN is
// skipped as on the CPU), for the dV product of a backward with dropout.
template <typename T>
__global__ void attn_drop_probs_k(AttnArgs a, T *w)
{
	const T *P = (const T *)a.probs;
	CU_FOR(e, a.B * a.H * a.Tq * a.Tk) {
		int64_t j = e % a.Tk, r = e / a.Tk;
		float p = to_f(P[e]);
		w[e] = p == 0.0f ? from_f<T>(0.0f)
				 : from_f<T>(p * att_drop(a, r / a.Tq, r % a.Tq, j));
	}
}

// The softmax backward rows: w holds dP' = dO V^T on entry and dS on
// return, dS_ij = P_ij (M_ij dP'_ij - rowdot) scale with rowdot = sum_j
// P_ij M_ij dP'_ij (double), 0 where P_ij = 0. One block per (b, h, i);
// dynamic shared memory: Tk floats.
template <typename T>
__global__ void __launch_bounds__(ATT_THREADS) attn_softmax_bwd_k(AttnArgs a, T *w)
{
	extern __shared__ __align__(16) unsigned char smem[];
	float *sc = (float *)smem; // Tk
	const int tid = threadIdx.x, nt = blockDim.x;
	const int64_t row = blockIdx.x, bh = row / a.Tq, i = row % a.Tq;
	const T *prow = (const T *)a.probs + row * a.Tk;
	T *wrow = w + row * a.Tk;
	double rowdot = 0;
	for (int64_t j = tid; j < a.Tk; j += nt) {
		float p = to_f(prow[j]), dp = 0.0f;
		if (p != 0.0f) {
			dp = to_f(wrow[j]);
			if (a.dropout)
				dp *= att_drop(a, bh, i, j);
			rowdot += (double)p * dp;
		}
		sc[j] = dp;
	}
	const float rd = (float)block_sum(rowdot);
	for (int64_t j = tid; j < a.Tk; j += nt) {
		float p = to_f(prow[j]);
		wrow[j] = from_f<T>(p == 0.0f ? 0.0f : __fmul_rn(__fmul_rn(p, sc[j] - rd), a.scale));
	}
}

// The per-head products of one call: for each of `groups` and each of the
// G query heads of a key/value head, a strided-batched GEMM of `count`
// key/value heads. q, k and v may be views with any strides on (B, H, T);
// heads are one batch of B*Hkv when stepping a batch is H steps of a query
// head and Hkv steps of a key/value head, else one batch of Hkv per b.
// Everything the kernels write (out, probs, the workspace, the gradients)
// is contiguous.
struct HeadBatches {
	int64_t groups, count;
};

static HeadBatches head_batches(const AttnArgs &a)
{
	const int64_t hkv = a.H / a.G;
	bool flat = a.B == 1 || (a.qs[0] == a.H * a.qs[1] && a.ks[0] == hkv * a.ks[1] &&
				 a.vs[0] == hkv * a.vs[1]);
	return flat ? HeadBatches{ 1, a.B * hkv } : HeadBatches{ a.B, hkv };
}

// Positions of batch row b (one thread per row, in key order): the kept
// keys from the start of the current run of equal segment ids, minus 1.
__global__ void attn_positions_k(AttnArgs a, float *pos)
{
	CU_FOR(b, a.B) {
		const int32_t *mb = a.mask ? a.mask + b * a.Tk : nullptr;
		const int32_t *sg = a.segs ? a.segs + b * a.Tk : nullptr;
		int64_t kept = 0;
		for (int64_t j = 0; j < a.Tk; j++) {
			if (sg && j > 0 && sg[j] != sg[j - 1])
				kept = 0;
			kept += !mb || mb[j] != 0;
			pos[b * a.Tk + j] = (float)(kept - 1);
		}
	}
}

int64_t attn_positions(AttnArgs &a, float *pos)
{
	int64_t nf = attn_pos_floats(a);
	if (!nf)
		return 0;
	attn_positions_k<<<cu_blocks(a.B, 32), 32, 0, cu_stream()>>>(a, pos);
	CUDA_LAUNCH_CHECK();
	a.pos = pos;
	return nf;
}

extern "C" void cuda_attention_forward(struct ag_node *n)
{
	if (n->p.attention.tiled) {
		cuda_attention_tiled_forward(n);
		return;
	}
	AttnArgs a = attn_args(n);
	const enum dtype dt = n->out->dtype;
	const int64_t rows = a.B * a.H * a.Tq, tqk = a.Tq * a.Tk;
	if (!rows)
		return; // Tq = 0, or no heads: nothing to write (the op layer refuses D = 0)
	// the workspace: the positions (floats), then P M with dropout
	size_t pos_bytes = ((size_t)attn_pos_floats(a) * sizeof(float) + 255) / 256 * 256;
	size_t pm_bytes = a.dropout ? (size_t)(rows * a.Tk) * dtype_size(dt) : 0;
	unsigned char *ws = pos_bytes + pm_bytes
		? (unsigned char *)cu_workspace(pos_bytes + pm_bytes) : nullptr;
	attn_positions(a, (float *)ws);
	void *pm = a.dropout ? ws + pos_bytes : nullptr;
	HeadBatches hb = head_batches(a);
	const int64_t G = a.G;
	// batch g, query heads hg + G c for key/value heads c: the first query
	// head's index over (B, H) is g H + hg
	for (int64_t g = 0; g < hb.groups; g++) // S (Tq, Tk) = scale Q K^T
		for (int64_t hg = 0; hg < G; hg++)
			cu_gemm(dt, false, true, a.Tq, a.Tk, a.D, a.scale,
				cu_elem(a.q, dt, g * a.qs[0] + hg * a.qs[1]), a.qs[2], G * a.qs[1],
				cu_elem(a.k, dt, g * a.ks[0]), a.ks[2], a.ks[1], 0.0f,
				cu_elem(a.probs, dt, (g * a.H + hg) * tqk), a.Tk, G * tqk,
				hb.count);
	size_t bytes = (size_t)a.Tk * sizeof(float);
	CU_FLOAT_DISPATCH(dt, T, {
		smem_prepare(attn_softmax_k<T>, bytes, n);
		attn_softmax_k<T><<<cu_rows(rows), ATT_THREADS, bytes, cu_stream()>>>(a, (T *)pm);
	});
	CUDA_LAUNCH_CHECK();
	const void *pv = pm ? pm : a.probs;
	for (int64_t g = 0; g < hb.groups; g++) // O (Tq, D) = (P M) V
		for (int64_t hg = 0; hg < G; hg++)
			cu_gemm(dt, false, false, a.Tq, a.D, a.Tk, 1.0f,
				cu_elem(pv, dt, (g * a.H + hg) * tqk), a.Tk, G * tqk,
				cu_elem(a.v, dt, g * a.vs[0]), a.vs[2], a.vs[1], 0.0f,
				cu_elem(a.out, dt, (g * a.H + hg) * a.Tq * a.D), a.D,
				G * a.Tq * a.D, hb.count);
}

extern "C" void cuda_attention_backward(struct ag_node *n)
{
	if (n->p.attention.tiled) {
		cuda_attention_tiled_backward(n);
		return;
	}
	AttnArgs a = attn_args(n);
	const enum dtype dt = n->out->dtype;
	struct tensor *dq = n->in[0]->grad, *dk = n->in[1]->grad, *dv = n->in[2]->grad;
	const int64_t rows = a.B * a.H * a.Tq, tqk = a.Tq * a.Tk;
	if (!rows || (!dq && !dk && !dv))
		return; // no gradient element depends on anything
	const void *dout = n->out->grad->data;
	void *w = cu_workspace((size_t)(rows * a.Tk) * dtype_size(dt));
	HeadBatches hb = head_batches(a);
	const int64_t G = a.G, hkv = a.H / G;
	const int64_t sq = a.Tq * a.D, sk = a.Tk * a.D; // gradient strides per head
	if (dv) {
		const void *pm = a.probs;
		if (a.dropout) {
			CU_FLOAT_DISPATCH(dt, T,
				attn_drop_probs_k<T><<<cu_blocks(rows * a.Tk), CU_THREADS, 0,
						       cu_stream()>>>(a, (T *)w));
			CUDA_LAUNCH_CHECK();
			pm = w;
		}
		for (int64_t g = 0; g < hb.groups; g++) // dV (Tk, D) += (P M)^T dO
			for (int64_t hg = 0; hg < G; hg++) // the group's sum, in turn
				cu_gemm(dt, true, false, a.Tk, a.D, a.Tq, 1.0f,
					cu_elem(pm, dt, (g * a.H + hg) * tqk), a.Tk, G * tqk,
					cu_elem(dout, dt, (g * a.H + hg) * sq), a.D, G * sq, 1.0f,
					cu_elem(dv->data, dt, g * hkv * sk), a.D, sk, hb.count);
	}
	if (!dq && !dk)
		return;
	for (int64_t g = 0; g < hb.groups; g++) // W (Tq, Tk) = dO V^T
		for (int64_t hg = 0; hg < G; hg++)
			cu_gemm(dt, false, true, a.Tq, a.Tk, a.D, 1.0f,
				cu_elem(dout, dt, (g * a.H + hg) * sq), a.D, G * sq,
				cu_elem(a.v, dt, g * a.vs[0]), a.vs[2], a.vs[1], 0.0f,
				cu_elem(w, dt, (g * a.H + hg) * tqk), a.Tk, G * tqk, hb.count);
	size_t bytes = (size_t)a.Tk * sizeof(float);
	CU_FLOAT_DISPATCH(dt, T, {
		smem_prepare(attn_softmax_bwd_k<T>, bytes, n);
		attn_softmax_bwd_k<T><<<cu_rows(rows), ATT_THREADS, bytes, cu_stream()>>>(
			a, (T *)w);
	});
	CUDA_LAUNCH_CHECK();
	for (int64_t g = 0; dq && g < hb.groups; g++) // dQ (Tq, D) += dS K
		for (int64_t hg = 0; hg < G; hg++)
			cu_gemm(dt, false, false, a.Tq, a.D, a.Tk, 1.0f,
				cu_elem(w, dt, (g * a.H + hg) * tqk), a.Tk, G * tqk,
				cu_elem(a.k, dt, g * a.ks[0]), a.ks[2], a.ks[1], 1.0f,
				cu_elem(dq->data, dt, (g * a.H + hg) * sq), a.D, G * sq, hb.count);
	for (int64_t g = 0; dk && g < hb.groups; g++) // dK (Tk, D) += dS^T Q
		for (int64_t hg = 0; hg < G; hg++) // the group's sum, in turn
			cu_gemm(dt, true, false, a.Tk, a.D, a.Tq, 1.0f,
				cu_elem(w, dt, (g * a.H + hg) * tqk), a.Tk, G * tqk,
				cu_elem(a.q, dt, g * a.qs[0] + hg * a.qs[1]), a.qs[2], G * a.qs[1],
				1.0f, cu_elem(dk->data, dt, g * hkv * sk), a.D, sk, hb.count);
}
