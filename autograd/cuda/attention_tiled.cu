// attention_tiled.cu: the tiled (flash-attention style) CUDA attention,
// the default kernel: the same function as the exact kernel (attention.cu)
// and the CPU's tiled one (autograd/cpu/attention_tiled.tmpl.h) without
// materialising the (Tq, Tk) probabilities. Memory: the output and the
// row log-sum-exp (B, H, Tq) f32 are saved; the backward's workspace holds
// the ALiBi positions (B, Tk) and D_i = dO_i . O_i (B, H, Tq). No limit on
// the number of keys: shared memory holds tiles whose size depends on the
// head size D only.
//
// Forward, one block per (b, h, tile of BQ query rows): Q in shared memory
// (as f32), then for each tile of BK keys that the causal rule and window
// leave to the block: K and V tiles in shared memory, the scores
// S = scale q.k + slope pos_j (masked -inf), one warp per row for the
// online softmax (running max m, sum l; the accumulator rescaled by
// exp(m_old - m_new)), O += (P M) V. At the end O / l and lse = m + log l
// (a row whose keys are all masked: zeros and lse = -inf; a NaN score
// makes the row NaN, as on the CPU).
// Backward, two kernels so that every gradient element has one owner (no
// atomics, a fixed order: deterministic):
//   dK, dV: one block per (b, key/value head, tile of BK keys); for each
//     query head of the group and each tile of query rows that can see
//     the keys: P = exp(S - lse), dV += (P M)^T dO,
//     dS = P (M (dO V^T) - D_i) scale, dK += dS^T Q;
//   dQ: one block per (b, h, tile of BQ rows); for each key tile the same
//     dS, dQ += dS K.
// Every product is a plain loop over shared memory in f32 (no tensor
// cores): correct for any D, slower than a tuned kernel on a real GPU.
#include <cmath>

#include "attention.cuh"

#define FT_THREADS 128
#define FT_BQ 16

// Keys per tile: 32, or 16 for heads wider than 256 (shared memory).
static int ft_bk(int64_t d)
{
	return d > 256 ? 16 : 32;
}

// The maximum of a and b where a NaN in either wins (the CPU's sticky NaN).
__device__ __forceinline__ float ft_nanmax(float a, float b)
{
	return a != a || b != b ? NAN : a > b ? a : b;
}

// Warp-wide all-reduce (every lane gets the result): NaN-sticky max, sum.
__device__ __forceinline__ float ft_warp_max(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v = ft_nanmax(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

__device__ __forceinline__ float ft_warp_sum(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

// Key range [kbeg, kend) that query rows [i0, i1) can see (causal, window).
__device__ __forceinline__ int64_t ft_kend(const AttnArgs &a, int64_t i1)
{
	int64_t e = a.Tk - a.Tq + i1;
	return a.causal && e < a.Tk ? e : a.Tk;
}

__device__ __forceinline__ int64_t ft_kbeg(const AttnArgs &a, int64_t i0)
{
	int64_t b = a.Tk - a.Tq + i0 - a.window + 1;
	return a.window && b > 0 ? b : 0;
}

// rows (n x D) of a (T, D) matrix at row r0 with row stride ld, into smem
// as f32 (threads of the block in turn).
template <typename T>
__device__ __forceinline__ void ft_load(float *dst, const T *src, int64_t ld, int64_t r0,
					int n, int D)
{
	for (int e = threadIdx.x; e < n * D; e += blockDim.x)
		dst[e] = to_f(src[(r0 + e / D) * ld + e % D]);
}

template <typename T>
__global__ void __launch_bounds__(FT_THREADS) attn_tiled_fwd_k(AttnArgs a, int BK)
{
	extern __shared__ __align__(16) unsigned char smem[];
	const int D = (int)a.D, BQ = FT_BQ;
	float *Qs = (float *)smem;  // (BQ, D)
	float *Ks = Qs + BQ * D;    // (BK, D)
	float *Vs = Ks + BK * D;    // (BK, D)
	float *Os = Vs + BK * D;    // (BQ, D) accumulator
	float *S = Os + BQ * D;     // (BQ, BK)
	float *ms = S + BQ * BK;    // (BQ) running max
	float *ls = ms + BQ;        // (BQ) running sum
	float *al = ls + BQ;        // (BQ) this tile's rescaling
	const int tid = threadIdx.x, nt = blockDim.x, lane = tid & 31, warp = tid >> 5;
	const int64_t nqt = (a.Tq + BQ - 1) / BQ;
	const int64_t bh = blockIdx.x / nqt, i0 = (blockIdx.x % nqt) * BQ;
	const int64_t b = bh / a.H, h = bh % a.H, hkv = h / a.G;
	const int nr = (int)(a.Tq - i0 < BQ ? a.Tq - i0 : BQ);
	const T *qb = (const T *)a.q + b * a.qs[0] + h * a.qs[1];
	const T *kb = (const T *)a.k + b * a.ks[0] + hkv * a.ks[1];
	const T *vb = (const T *)a.v + b * a.vs[0] + hkv * a.vs[1];
	const float slope = a.slopes ? to_f(((const T *)a.slopes)[h]) : 0.0f;
	ft_load(Qs, qb, a.qs[2], i0, nr, D);
	for (int e = tid; e < nr * D; e += nt)
		Os[e] = 0.0f;
	for (int r = tid; r < BQ; r += nt) {
		ms[r] = -INFINITY;
		ls[r] = 0.0f;
	}
	__syncthreads();
	const int64_t kbeg = ft_kbeg(a, i0), kend = ft_kend(a, i0 + nr);
	for (int64_t j0 = kbeg; j0 < kend; j0 += BK) {
		const int nc = (int)(kend - j0 < BK ? kend - j0 : BK);
		ft_load(Ks, kb, a.ks[2], j0, nc, D);
		ft_load(Vs, vb, a.vs[2], j0, nc, D);
		__syncthreads();
		for (int e = tid; e < nr * BK; e += nt) {
			int r = e / BK, c = e % BK;
			int64_t j = j0 + c, qpos = a.Tk - a.Tq + i0 + r;
			float s = -INFINITY;
			if (c < nc && att_visible(a, b, qpos, j)) {
				float dot = 0.0f;
				for (int d = 0; d < D; d++)
					dot = __fadd_rn(dot, __fmul_rn(Qs[r * D + d], Ks[c * D + d]));
				s = __fmul_rn(dot, a.scale);
				if (a.slopes)
					s = __fadd_rn(s, __fmul_rn(slope, att_pos(a, b, j)));
			}
			S[e] = s;
		}
		__syncthreads();
		for (int r = warp; r < nr; r += nt / 32) { // one warp per row
			float *sr = S + r * BK;
			float mx = -INFINITY;
			for (int c = lane; c < nc; c += 32)
				mx = sr[c] == -INFINITY ? mx : ft_nanmax(mx, sr[c]);
			mx = ft_warp_max(mx);
			const float mold = ms[r], mnew = ft_nanmax(mold, mx);
			float alpha = 1.0f, sum = 0.0f;
			if (mnew == -INFINITY) { // nothing visible yet
				for (int c = lane; c < nc; c += 32)
					sr[c] = 0.0f;
			} else {
				alpha = mold == -INFINITY ? 0.0f : expf(mold - mnew);
				for (int c = lane; c < nc; c += 32) {
					float e = sr[c] == -INFINITY ? 0.0f : expf(sr[c] - mnew);
					sum += e;
					sr[c] = e != 0.0f ? e * att_drop(a, bh, i0 + r, j0 + c) : 0.0f;
				}
				sum = ft_warp_sum(sum);
			}
			__syncwarp();
			if (lane == 0) {
				al[r] = alpha;
				if (mnew != -INFINITY) {
					ls[r] = ls[r] * alpha + sum;
					ms[r] = mnew;
				}
			}
		}
		__syncthreads();
		for (int e = tid; e < nr * D; e += nt) { // O = O alpha + (P M) V
			int r = e / D, d = e % D;
			float acc = Os[e] * al[r];
			for (int c = 0; c < nc; c++)
				acc = __fadd_rn(acc, __fmul_rn(S[r * BK + c], Vs[c * D + d]));
			Os[e] = acc;
		}
		__syncthreads();
	}
	T *ob = (T *)a.out + (bh * a.Tq + i0) * D;
	float *lb = (float *)a.probs + bh * a.Tq + i0;
	for (int e = tid; e < nr * D; e += nt) {
		int r = e / D;
		ob[e] = from_f<T>(ms[r] == -INFINITY ? 0.0f : Os[e] / ls[r]);
	}
	for (int r = tid; r < nr; r += nt)
		lb[r] = ms[r] == -INFINITY ? -INFINITY : ms[r] + logf(ls[r]);
}

// D_i = dO_i . O_i per row (B, H, Tq), f32 (the sum in double).
template <typename T>
__global__ void attn_tiled_drow_k(AttnArgs a, const T *dout, float *drow)
{
	CU_FOR(row, a.B * a.H * a.Tq) {
		const T *o = (const T *)a.out + row * a.D, *g = dout + row * a.D;
		double t = 0;
		for (int64_t d = 0; d < a.D; d++)
			t += (double)to_f(g[d]) * to_f(o[d]);
		drow[row] = (float)t;
	}
}

// P_rc and dS_rc for query row i0 + r of head bh against key j (both
// tiles in shared memory: Q/dO rows r, K/V rows c); P M into *pm.
__device__ __forceinline__ float ft_ds(const AttnArgs &a, int64_t b, int64_t bh, float slope,
				       const float *Qr, const float *dOr, const float *Kc,
				       const float *Vc, float lse, float drow, int64_t i,
				       int64_t j, float *pm)
{
	*pm = 0.0f;
	const int D = (int)a.D;
	if (lse == -INFINITY || !att_visible(a, b, a.Tk - a.Tq + i, j))
		return 0.0f;
	float dot = 0.0f;
	for (int d = 0; d < D; d++)
		dot = __fadd_rn(dot, __fmul_rn(Qr[d], Kc[d]));
	float s = __fmul_rn(dot, a.scale);
	if (a.slopes)
		s = __fadd_rn(s, __fmul_rn(slope, att_pos(a, b, j)));
	float p = expf(s - lse);
	if (p == 0.0f)
		return 0.0f;
	float m = att_drop(a, bh, i, j), dp = 0.0f;
	*pm = p * m;
	for (int d = 0; d < D; d++)
		dp = __fadd_rn(dp, __fmul_rn(dOr[d], Vc[d]));
	return __fmul_rn(__fmul_rn(p, dp * m - drow), a.scale);
}

// gradient (n x D rows, contiguous) += acc (smem f32)
template <typename T>
__device__ __forceinline__ void ft_accumulate(T *g, const float *acc, int n, int D)
{
	for (int e = threadIdx.x; e < n * D; e += blockDim.x)
		g[e] = from_f<T>(to_f(g[e]) + acc[e]);
}

template <typename T>
__global__ void __launch_bounds__(FT_THREADS)
attn_tiled_dq_k(AttnArgs a, int BK, const T *dout, const float *drow, T *dq)
{
	extern __shared__ __align__(16) unsigned char smem[];
	const int D = (int)a.D, BQ = FT_BQ;
	float *Qs = (float *)smem; // (BQ, D)
	float *dOs = Qs + BQ * D;  // (BQ, D)
	float *dQs = dOs + BQ * D; // (BQ, D)
	float *Ks = dQs + BQ * D;  // (BK, D)
	float *Vs = Ks + BK * D;   // (BK, D)
	float *dS = Vs + BK * D;   // (BQ, BK)
	const int tid = threadIdx.x, nt = blockDim.x;
	const int64_t nqt = (a.Tq + BQ - 1) / BQ;
	const int64_t bh = blockIdx.x / nqt, i0 = (blockIdx.x % nqt) * BQ;
	const int64_t b = bh / a.H, h = bh % a.H, hkv = h / a.G;
	const int nr = (int)(a.Tq - i0 < BQ ? a.Tq - i0 : BQ);
	const T *qb = (const T *)a.q + b * a.qs[0] + h * a.qs[1];
	const T *kb = (const T *)a.k + b * a.ks[0] + hkv * a.ks[1];
	const T *vb = (const T *)a.v + b * a.vs[0] + hkv * a.vs[1];
	const float *lse = (const float *)a.probs + bh * a.Tq + i0;
	const float *dr = drow + bh * a.Tq + i0;
	const float slope = a.slopes ? to_f(((const T *)a.slopes)[h]) : 0.0f;
	ft_load(Qs, qb, a.qs[2], i0, nr, D);
	ft_load(dOs, dout + bh * a.Tq * D, (int64_t)D, i0, nr, D);
	for (int e = tid; e < nr * D; e += nt)
		dQs[e] = 0.0f;
	const int64_t kbeg = ft_kbeg(a, i0), kend = ft_kend(a, i0 + nr);
	for (int64_t j0 = kbeg; j0 < kend; j0 += BK) {
		const int nc = (int)(kend - j0 < BK ? kend - j0 : BK);
		__syncthreads(); // the previous tile's readers are done
		ft_load(Ks, kb, a.ks[2], j0, nc, D);
		ft_load(Vs, vb, a.vs[2], j0, nc, D);
		__syncthreads();
		for (int e = tid; e < nr * BK; e += nt) {
			int r = e / BK, c = e % BK;
			float pm;
			dS[e] = c < nc ? ft_ds(a, b, bh, slope, Qs + r * D, dOs + r * D, Ks + c * D,
					       Vs + c * D, lse[r], dr[r], i0 + r, j0 + c, &pm)
				       : 0.0f;
		}
		__syncthreads();
		for (int e = tid; e < nr * D; e += nt) { // dQ += dS K
			int r = e / D, d = e % D;
			float acc = dQs[e];
			for (int c = 0; c < nc; c++)
				acc = __fadd_rn(acc, __fmul_rn(dS[r * BK + c], Ks[c * D + d]));
			dQs[e] = acc;
		}
	}
	__syncthreads();
	ft_accumulate(dq + (bh * a.Tq + i0) * D, dQs, nr, D);
}

template <typename T>
__global__ void __launch_bounds__(FT_THREADS)
attn_tiled_dkv_k(AttnArgs a, int BK, const T *dout, const float *drow, T *dk, T *dv)
{
	extern __shared__ __align__(16) unsigned char smem[];
	const int D = (int)a.D, BQ = FT_BQ;
	float *Ks = (float *)smem; // (BK, D)
	float *Vs = Ks + BK * D;   // (BK, D)
	float *dKs = Vs + BK * D;  // (BK, D)
	float *dVs = dKs + BK * D; // (BK, D)
	float *Qs = dVs + BK * D;  // (BQ, D)
	float *dOs = Qs + BQ * D;  // (BQ, D)
	float *PM = dOs + BQ * D;  // (BQ, BK)
	float *dS = PM + BQ * BK;  // (BQ, BK)
	const int tid = threadIdx.x, nt = blockDim.x;
	const int64_t hkvn = a.H / a.G, nkt = (a.Tk + BK - 1) / BK;
	const int64_t bkv = blockIdx.x / nkt, j0 = (blockIdx.x % nkt) * BK;
	const int64_t b = bkv / hkvn, hkv = bkv % hkvn;
	const int nc = (int)(a.Tk - j0 < BK ? a.Tk - j0 : BK);
	const T *kb = (const T *)a.k + b * a.ks[0] + hkv * a.ks[1];
	const T *vb = (const T *)a.v + b * a.vs[0] + hkv * a.vs[1];
	ft_load(Ks, kb, a.ks[2], j0, nc, D);
	ft_load(Vs, vb, a.vs[2], j0, nc, D);
	for (int e = tid; e < nc * D; e += nt)
		dKs[e] = dVs[e] = 0.0f;
	// query rows that can see a key of [j0, j0 + nc): qpos >= j0 (causal),
	// qpos - (j0 + nc - 1) < window
	const int64_t off = a.Tk - a.Tq;
	int64_t ilo = a.causal ? j0 - off : 0;
	int64_t ihi = a.window ? j0 + nc - 1 + a.window - off : a.Tq;
	ilo = ilo < 0 ? 0 : ilo;
	ihi = ihi > a.Tq ? a.Tq : ihi;
	for (int64_t hg = 0; hg < a.G; hg++) {
		const int64_t h = hkv * a.G + hg, bh = b * a.H + h;
		const T *qb = (const T *)a.q + b * a.qs[0] + h * a.qs[1];
		const float slope = a.slopes ? to_f(((const T *)a.slopes)[h]) : 0.0f;
		for (int64_t i0 = ilo; i0 < ihi; i0 += BQ) {
			const int nr = (int)(ihi - i0 < BQ ? ihi - i0 : BQ);
			const float *lse = (const float *)a.probs + bh * a.Tq + i0;
			const float *dr = drow + bh * a.Tq + i0;
			__syncthreads(); // the previous tile's readers are done
			ft_load(Qs, qb, a.qs[2], i0, nr, D);
			ft_load(dOs, dout + bh * a.Tq * D, (int64_t)D, i0, nr, D);
			__syncthreads();
			for (int e = tid; e < nr * BK; e += nt) {
				int r = e / BK, c = e % BK;
				float pm = 0.0f;
				dS[e] = c < nc ? ft_ds(a, b, bh, slope, Qs + r * D, dOs + r * D,
						       Ks + c * D, Vs + c * D, lse[r], dr[r], i0 + r,
						       j0 + c, &pm)
					       : 0.0f;
				PM[e] = pm;
			}
			__syncthreads();
			for (int e = tid; e < nc * D; e += nt) { // dV += PM^T dO, dK += dS^T Q
				int c = e / D, d = e % D;
				float av = dVs[e], ak = dKs[e];
				for (int r = 0; r < nr; r++) {
					av = __fadd_rn(av, __fmul_rn(PM[r * BK + c], dOs[r * D + d]));
					ak = __fadd_rn(ak, __fmul_rn(dS[r * BK + c], Qs[r * D + d]));
				}
				dVs[e] = av;
				dKs[e] = ak;
			}
		}
	}
	__syncthreads();
	if (dk)
		ft_accumulate(dk + (bkv * a.Tk + j0) * D, dKs, nc, D);
	if (dv)
		ft_accumulate(dv + (bkv * a.Tk + j0) * D, dVs, nc, D);
}

// Grid size: blocks per (b, h) times their count (one grid dimension).
static unsigned ft_grid(int64_t heads, int64_t tiles)
{
	return cu_rows(heads * tiles);
}

void cuda_attention_tiled_forward(struct ag_node *n)
{
	AttnArgs a = attn_args(n);
	const enum dtype dt = n->out->dtype;
	if (a.B * a.H * a.Tq == 0)
		return;
	const int bk = ft_bk(a.D);
	float *ws = attn_pos_floats(a)
		? (float *)cu_workspace((size_t)attn_pos_floats(a) * sizeof(float)) : nullptr;
	attn_positions(a, ws);
	size_t bytes = (size_t)((2 * FT_BQ + 2 * bk) * a.D + FT_BQ * bk + 3 * FT_BQ) *
		       sizeof(float);
	int64_t nqt = (a.Tq + FT_BQ - 1) / FT_BQ;
	CU_FLOAT_DISPATCH(dt, T, {
		smem_prepare(attn_tiled_fwd_k<T>, bytes, n);
		attn_tiled_fwd_k<T><<<ft_grid(a.B * a.H, nqt), FT_THREADS, bytes, cu_stream()>>>(
			a, bk);
	});
	CUDA_LAUNCH_CHECK();
}

void cuda_attention_tiled_backward(struct ag_node *n)
{
	AttnArgs a = attn_args(n);
	const enum dtype dt = n->out->dtype;
	struct tensor *dq = n->in[0]->grad, *dk = n->in[1]->grad, *dv = n->in[2]->grad;
	if (a.B * a.H * a.Tq == 0 || (!dq && !dk && !dv))
		return;
	const int bk = ft_bk(a.D);
	// the workspace: D_i (B, H, Tq), then the positions
	int64_t nrow = a.B * a.H * a.Tq, npos = attn_pos_floats(a);
	float *drow = (float *)cu_workspace((size_t)(nrow + npos) * sizeof(float));
	attn_positions(a, drow + nrow);
	const void *dout = n->out->grad->data;
	CU_FLOAT_DISPATCH(dt, T, {
		attn_tiled_drow_k<T><<<cu_blocks(nrow), CU_THREADS, 0, cu_stream()>>>(
			a, (const T *)dout, drow);
	});
	CUDA_LAUNCH_CHECK();
	if (dq) {
		size_t bytes = (size_t)((3 * FT_BQ + 2 * bk) * a.D + FT_BQ * bk) * sizeof(float);
		int64_t nqt = (a.Tq + FT_BQ - 1) / FT_BQ;
		CU_FLOAT_DISPATCH(dt, T, {
			smem_prepare(attn_tiled_dq_k<T>, bytes, n);
			attn_tiled_dq_k<T><<<ft_grid(a.B * a.H, nqt), FT_THREADS, bytes,
					     cu_stream()>>>(a, bk, (const T *)dout, drow,
							    (T *)dq->data);
		});
		CUDA_LAUNCH_CHECK();
	}
	if (dk || dv) {
		size_t bytes = (size_t)((4 * bk + 2 * FT_BQ) * a.D + 2 * FT_BQ * bk) *
			       sizeof(float);
		int64_t nkt = (a.Tk + bk - 1) / bk;
		CU_FLOAT_DISPATCH(dt, T, {
			smem_prepare(attn_tiled_dkv_k<T>, bytes, n);
			attn_tiled_dkv_k<T><<<ft_grid(a.B * a.H / a.G, nkt), FT_THREADS, bytes,
					      cu_stream()>>>(a, bk, (const T *)dout, drow,
							     dk ? (T *)dk->data : nullptr,
							     dv ? (T *)dv->data : nullptr);
		});
		CUDA_LAUNCH_CHECK();
	}
}
