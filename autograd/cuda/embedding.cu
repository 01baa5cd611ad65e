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
//
// Also the backend's range check of ids and targets (find_out_of_range):
// every thread that sees a bad value does an integer atomicMin of its
// position, so the result is the lowest bad position whatever the order
// of the atomics, and one small copy brings it and its value to the host.
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

// ---- the range check of ids and targets ----

// What the range check leaves in the scratch: the lowest bad position (all
// ones when there is none) and the value there.
struct oor_result {
	unsigned long long first;
	int32_t value;
	int32_t pad;
};
static_assert(sizeof(oor_result) <= CU_SCRATCH_DOUBLES * sizeof(double),
	      "the range check's result must fit the scratch");

__global__ void out_of_range_k(int64_t n, const int32_t *v, int64_t lo, int64_t hi,
			       int64_t skip, oor_result *r)
{
	CU_FOR(i, n) {
		int64_t x = v[i];
		if ((x < lo || x >= hi) && x != skip)
			atomicMin(&r->first, (unsigned long long)i);
	}
}

// Runs after out_of_range_k on the stream: the value at the position found.
__global__ void out_of_range_value_k(const int32_t *v, oor_result *r)
{
	if (r->first != ~0ull)
		r->value = v[r->first];
}

extern "C" int64_t cuda_find_out_of_range(const struct tensor *t, int64_t lo, int64_t hi,
					  int64_t skip, int32_t *value)
{
	HUG_ASSERT(t->device == DEV_CUDA && t->dtype == DT_I32 && tensor_is_contiguous(t));
	int64_t n = tensor_numel(t);
	if (!n)
		return -1;
	const int32_t *v = (const int32_t *)t->data;
	oor_result *r = reinterpret_cast<oor_result *>(cu_scratch());
	CUDA_CHECK(cudaMemsetAsync(r, 0xff, sizeof(*r), cu_stream()));
	out_of_range_k<<<cu_blocks(n), CU_THREADS, 0, cu_stream()>>>(n, v, lo, hi, skip, r);
	CUDA_LAUNCH_CHECK();
	out_of_range_value_k<<<1, 1, 0, cu_stream()>>>(v, r);
	CUDA_LAUNCH_CHECK();
	oor_result h;
	hug_cuda_memcpy_d2h(&h, r, sizeof(h)); // waits for the stream
	if (h.first == ~0ull)
		return -1;
	*value = h.value;
	return (int64_t)h.first;
}
