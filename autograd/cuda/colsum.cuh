// colsum.cuh: deterministic column sums (CUDA C++ only): for a functor F
// over a row-major (rows, cols) operand,
//   dst_j (cols) += sum over rows r of f_j(r, c),   j < F::N,
// the one way the kernels sum over rows into a vector: the linear bias
// gradient (matmul.cu), LayerNorm's weight and bias gradients (norm.cu) and
// the gradient of a row vector broadcast by add/mul (elementwise.cu).
//
// Two passes. Pass 1 cuts the rows into chunks of colsum_chunk_rows(rows,
// cols) rows; a block of 256 threads covers 32 columns of one chunk (a
// warp reads 32 consecutive elements of a row: coalesced), its 8 warps
// take every 8th row of the chunk, each summing in double, and warp 0 adds
// the 8 warps' sums in warp order and stores them as the chunk's partial
// sums in a workspace (cu_workspace: F::N x chunks x cols doubles). Pass 2
// sums a column's partials the same way (8 warps over every 8th chunk,
// then in warp order) and adds the result into dst in dst's dtype,
// rounding once as from_f<T>(to_f(dst) + (float)sum). With one chunk
// (rows <= the chunk size, so always when rows <= 64) pass 1 adds into dst
// itself: one launch, no workspace.
//
// Determinism: the chunk size, and so every addition and its order, is a
// function of (rows, cols) alone -- never of the GPU (SM count) -- so the
// results are the same bits on every GPU model and every run. The order
// differs from the CPU reference's (each column top to bottom); both are
// accumulated in double except where the CPU sums in f32 (its linear bias
// and broadcast gradients), and the parity tests allow for it.
//
// A functor F provides
//   static constexpr int N;   // sums per column (1 or 2)
//   __device__ void operator()(int64_t r, int64_t e, double *s) const;
// which adds its N terms of row r at element e = r * cols + c to s[0..N);
// it is called only for r < rows and c < cols, and is passed to the
// kernels by value (plain data: pointers and sizes).
#ifndef HUG_AUTOGRAD_CUDA_COLSUM_CUH
#define HUG_AUTOGRAD_CUDA_COLSUM_CUH

#include "common.cuh"

#define COLSUM_COLS 32   // columns per block: one warp's width
#define COLSUM_WARPS 8   // warps per block: each takes every 8th row
#define COLSUM_THREADS (COLSUM_COLS * COLSUM_WARPS)
#define COLSUM_MIN_CHUNK 64   // rows per chunk, at least...
#define COLSUM_MAX_CHUNK 256  // ...and at most, unless the grid needs more
#define COLSUM_TARGET_BLOCKS 4096
#define COLSUM_MAX_CHUNKS 65535 // the grid's y dimension

// The destinations of a column sum: N vectors of cols elements of T (f32 or
// bf16); a NULL one is not written (pass 1 still forms its terms).
template <typename T, int N> struct ColsumDst {
	T *p[N];
};

// The sum of the values of a (rows, cols) tensor: f(r, e) = x[e].
template <typename T> struct ColsumOf {
	static constexpr int N = 1;
	const T *x;
	__device__ void operator()(int64_t, int64_t e, double *s) const { s[0] += to_f(x[e]); }
};

// Rows per chunk, a function of (rows, cols) only: 64, doubled up to 256
// while the pass-1 grid would have more than COLSUM_TARGET_BLOCKS blocks
// (so a thread reads at most 32 rows in pass 1, and at rows <= 16384 pass
// 2 sums at most 64 chunks), then more if the chunks would not fit the
// grid's y dimension (rows above 16.7M).
static inline int64_t colsum_chunk_rows(int64_t rows, int64_t cols)
{
	int64_t cblocks = (cols + COLSUM_COLS - 1) / COLSUM_COLS;
	int64_t chunk = COLSUM_MIN_CHUNK;
	while (chunk < COLSUM_MAX_CHUNK && cblocks * ((rows + chunk - 1) / chunk) > COLSUM_TARGET_BLOCKS)
		chunk *= 2;
	int64_t least = (rows + COLSUM_MAX_CHUNKS - 1) / COLSUM_MAX_CHUNKS;
	return chunk > least ? chunk : least;
}

// dst[c] += t in dst's dtype (rounded once, as the CPU's `+=` on a REAL).
template <typename T>
__device__ __forceinline__ void colsum_store(T *dst, int64_t c, double t)
{
	dst[c] = from_f<T>(to_f(dst[c]) + (float)t);
}

// The end of both passes, after their __syncthreads: warp 0 adds column
// c's COLSUM_WARPS partial sums in sh in warp order and, for each present
// dst.p[j], writes the total to part (N, nslots, cols) at `slot`, or with
// part NULL adds it into dst.p[j].
template <typename T, int N>
__device__ __forceinline__ void colsum_emit(const double (&sh)[N][COLSUM_WARPS][COLSUM_COLS],
					    ColsumDst<T, N> dst, int tx, int ty, int64_t c,
					    int64_t cols, double *part, int64_t slot,
					    int64_t nslots)
{
	if (ty != 0 || c >= cols)
		return;
	for (int j = 0; j < N; j++) {
		if (!dst.p[j])
			continue;
		double t = 0;
		for (int g = 0; g < COLSUM_WARPS; g++)
			t += sh[j][g][tx];
		if (part)
			part[((int64_t)j * nslots + slot) * cols + c] = t;
		else
			colsum_store(dst.p[j], c, t);
	}
}

// Pass 1: block (x, y) sums columns [32 x, 32 x + 32) over rows
// [y chunk, min(rows, (y + 1) chunk)); warp w takes rows y chunk + w,
// + w + 8, ... Its sums go to part (N, gridDim.y, cols) at chunk y, or,
// when part is NULL (a single chunk), into dst.
template <typename F, typename T, int N>
__global__ void __launch_bounds__(COLSUM_THREADS)
colsum_chunk_k(F f, int64_t rows, int64_t cols, int64_t chunk, double *part,
	       ColsumDst<T, N> dst)
{
	__shared__ double sh[N][COLSUM_WARPS][COLSUM_COLS];
	const int tx = threadIdx.x % COLSUM_COLS, ty = threadIdx.x / COLSUM_COLS;
	const int64_t c = (int64_t)blockIdx.x * COLSUM_COLS + tx;
	const int64_t r0 = (int64_t)blockIdx.y * chunk;
	const int64_t r1 = rows - r0 < chunk ? rows : r0 + chunk;
	double s[N];
	for (int j = 0; j < N; j++)
		s[j] = 0;
	if (c < cols)
		for (int64_t r = r0 + ty; r < r1; r += COLSUM_WARPS)
			f(r, r * cols + c, s);
	for (int j = 0; j < N; j++)
		sh[j][ty][tx] = s[j];
	__syncthreads();
	colsum_emit(sh, dst, tx, ty, c, cols, part, blockIdx.y, gridDim.y);
}

// Pass 2: block x adds the `chunks` partial sums of columns
// [32 x, 32 x + 32) (warp w takes chunks w, w + 8, ..., then warp order)
// into dst.
template <typename T, int N>
__global__ void __launch_bounds__(COLSUM_THREADS)
colsum_finish_k(const double *part, int64_t chunks, int64_t cols, ColsumDst<T, N> dst)
{
	__shared__ double sh[N][COLSUM_WARPS][COLSUM_COLS];
	const int tx = threadIdx.x % COLSUM_COLS, ty = threadIdx.x / COLSUM_COLS;
	const int64_t c = (int64_t)blockIdx.x * COLSUM_COLS + tx;
	for (int j = 0; j < N; j++) {
		double s = 0;
		if (c < cols && dst.p[j])
			for (int64_t k = ty; k < chunks; k += COLSUM_WARPS)
				s += part[((int64_t)j * chunks + k) * cols + c];
		sh[j][ty][tx] = s;
	}
	__syncthreads();
	colsum_emit(sh, dst, tx, ty, c, cols, nullptr, 0, 0);
}

// dst.p[j] (cols) += sum over rows of f_j, j < N (see the top of the
// file), on cu_stream(), asynchronously; uses cu_workspace when there is
// more than one chunk. Nothing to do when rows or cols is 0.
template <typename F, typename T, int N>
static void colsum_add(const F &f, int64_t rows, int64_t cols, ColsumDst<T, N> dst)
{
	static_assert(N == F::N, "the functor's sum count");
	if (rows <= 0 || cols <= 0)
		return;
	int64_t chunk = colsum_chunk_rows(rows, cols);
	int64_t chunks = (rows + chunk - 1) / chunk;
	int64_t cblocks = (cols + COLSUM_COLS - 1) / COLSUM_COLS;
	HUG_ASSERT(chunks <= COLSUM_MAX_CHUNKS && cblocks <= 0x7fffffffLL);
	double *part = nullptr;
	if (chunks > 1)
		part = (double *)cu_workspace((size_t)N * (size_t)chunks * (size_t)cols * sizeof(double));
	dim3 grid((unsigned)cblocks, (unsigned)chunks);
	colsum_chunk_k<F, T, N><<<grid, COLSUM_THREADS, 0, cu_stream()>>>(f, rows, cols, chunk,
									    part, dst);
	CUDA_LAUNCH_CHECK();
	if (!part)
		return;
	colsum_finish_k<T, N><<<(unsigned)cblocks, COLSUM_THREADS, 0, cu_stream()>>>(part, chunks,
										      cols, dst);
	CUDA_LAUNCH_CHECK();
}

#endif
