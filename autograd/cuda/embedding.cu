// embedding.cu: the embedding lookup and its deterministic backward
// (autograd/cpu/embedding.tmpl.h), also for a vocabulary shard: the weight
// holds rows [off, off + rows) and ids outside give zero rows and no
// gradient.
//
// Backward without atomics. One block per token position i. The block
// first checks whether id[i] occurs at an earlier position; if so it exits,
// since the block of the first occurrence owns that weight row. The owner
// scans positions i..n-1 a tile at a time, compacts the positions holding
// the same id into shared memory in position order (a warp ballot and a
// prefix over the 8 warps), and adds their gradient rows to its weight row,
// one thread per column. So every row is written by one block and its
// gradients are summed in position order: the CPU's order, bit for bit in
// f32. Work is O(n^2 / 256) id comparisons per thread plus O(n C) adds,
// independent of the vocabulary size.
#include "common.cuh"

#define EMB_THREADS 256 // 8 warps; the compaction below assumes it

template <typename T>
__global__ void embedding_fwd_k(int64_t n, int64_t c, const int32_t *ids, int64_t off,
				int64_t rows, const T *w, T *out)
{
	CU_FOR(e, n * c) {
		int64_t i = e / c, j = e % c;
		int64_t r = (int64_t)ids[i] - off;
		out[e] = r >= 0 && r < rows ? w[r * c + j] : from_f<T>(0.0f);
	}
}

template <typename T>
__global__ void __launch_bounds__(EMB_THREADS)
embedding_bwd_k(int64_t n, int64_t c, const int32_t *ids, int64_t off, int64_t rows,
		const T *dout, T *dw)
{
	__shared__ int64_t pos[EMB_THREADS];
	__shared__ int wcount[EMB_THREADS / 32];
	const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
	const int64_t i = blockIdx.x;
	const int32_t id = ids[i];
	const int64_t r = (int64_t)id - off;
	if (r < 0 || r >= rows)
		return; // the whole block: another shard's row
	// an earlier occurrence owns the row
	for (int64_t base = 0; base < i; base += EMB_THREADS) {
		int64_t j = base + tid;
		if (__syncthreads_or(j < i && ids[j] == id))
			return; // uniform: every thread got the same answer
	}
	T *row = dw + r * c;
	for (int64_t base = i; base < n; base += EMB_THREADS) {
		int64_t j = base + tid;
		bool hit = j < n && ids[j] == id;
		unsigned m = __ballot_sync(0xffffffffu, hit);
		if (lane == 0)
			wcount[warp] = __popc(m);
		__syncthreads();
		int before = 0, total = 0;
		for (int w = 0; w < EMB_THREADS / 32; w++) {
			before += w < warp ? wcount[w] : 0;
			total += wcount[w];
		}
		if (hit)
			pos[before + __popc(m & ((1u << lane) - 1u))] = j;
		__syncthreads();
		for (int64_t col = tid; col < c; col += EMB_THREADS) {
			float acc = to_f(row[col]);
			for (int q = 0; q < total; q++)
				acc += to_f(dout[pos[q] * c + col]);
			row[col] = from_f<T>(acc);
		}
		__syncthreads(); // pos and wcount are reused by the next tile
	}
}

extern "C" void cuda_embedding_forward(struct ag_node *n)
{
	const struct tensor *ids = n->in[0], *w = n->in[1];
	int64_t cnt = tensor_numel(ids), c = w->shape[1];
	if (cnt == 0 || c == 0)
		return;
	CU_FLOAT_DISPATCH(w->dtype, T,
		embedding_fwd_k<T><<<cu_blocks(cnt * c), CU_THREADS, 0, cu_stream()>>>(
			cnt, c, (const int32_t *)ids->data, n->p.embedding.vocab_offset,
			w->shape[0], (const T *)w->data, (T *)n->out->data));
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_embedding_backward(struct ag_node *n)
{
	const struct tensor *ids = n->in[0], *w = n->in[1];
	if (!w->grad)
		return;
	int64_t cnt = tensor_numel(ids), c = w->shape[1];
	if (cnt == 0 || c == 0)
		return;
	CU_FLOAT_DISPATCH(w->dtype, T,
		embedding_bwd_k<T><<<cu_rows(cnt), EMB_THREADS, 0, cu_stream()>>>(
			cnt, c, (const int32_t *)ids->data, n->p.embedding.vocab_offset,
			w->shape[0], (const T *)n->out->grad->data, (T *)w->grad->data));
	CUDA_LAUNCH_CHECK();
}
