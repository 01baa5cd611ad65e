// blas.cpp: the cuBLAS calls of include/cublas_v2.h on the CPU, with
// cuBLAS's column-major definitions and the argument checks its
// documentation gives for cublasGemmEx and cublasGemmStridedBatchedEx
// (leading dimensions at least the rows even where unused, and so on).
// Products accumulate in f32 in order of k and round once on store, as
// CUBLAS_COMPUTE_32F without TF32 does (cuBLAS's own order differs, so its
// last bits may too). beta == 0 never reads C (it may hold NaN). Also
// reported: two batches that write one element of C, and a C that
// overlaps A or B, both undefined in cuBLAS.
#include <cublas_v2.h>

#include <cstdio>
#include <cstdlib>
#include <unordered_set>
#include <vector>

#include "cuemu_internal.h"

extern "C" {
#include "../../autograd/dtype.h"
}

struct cuemu_blas {
	cudaStream_t stream;
};

const char *cublasGetStatusName(cublasStatus_t s)
{
	switch (s) {
	case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
	case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
	case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
	case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
	case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
	case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
	}
	return "CUBLAS_STATUS_UNKNOWN";
}

const char *cublasGetStatusString(cublasStatus_t s)
{
	return s == CUBLAS_STATUS_SUCCESS ? "success" : cublasGetStatusName(s);
}

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
	*h = new cuemu_blas{ nullptr };
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h)
{
	delete h;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
	if (!h)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	h->stream = s;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode)
{
	if (!h)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	if (mode != CUBLAS_DEFAULT_MATH) // TF32 would not match the CPU: hug never asks
		cuemu_report("cublasSetMathMode(%d): the emulator computes true f32 only", mode);
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetAtomicsMode(cublasHandle_t h, cublasAtomicsMode_t)
{
	return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes)
{
	if (!h)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	if (bytes && !cuemu_is_device(ws, bytes, nullptr)) {
		cuemu_report("cublasSetWorkspace: %p + %zu bytes is not device memory", ws, bytes);
		return CUBLAS_STATUS_INVALID_VALUE;
	}
	if (bytes)
		cuemu_seal(ws);
	return CUBLAS_STATUS_SUCCESS;
}

static size_t type_size(cudaDataType t) { return t == CUDA_R_32F ? 4 : 2; }

static float load(const void *p, cudaDataType t, long long i)
{
	if (t == CUDA_R_32F)
		return ((const float *)p)[i];
	return bf16_to_f32(((const uint16_t *)p)[i]);
}

static void store(void *p, cudaDataType t, long long i, float v)
{
	if (t == CUDA_R_32F)
		((float *)p)[i] = v;
	else
		((uint16_t *)p)[i] = f32_to_bf16(v);
}

// The byte range [lo, hi) that one operand's batch p touches.
static void span(const void *base, cudaDataType t, long long stride, int p, int rows, int cols,
		 int ld, uintptr_t *lo, uintptr_t *hi)
{
	uintptr_t b = (uintptr_t)base + (uintptr_t)(p * stride * (long long)type_size(t));
	*lo = b;
	*hi = b + (uintptr_t)(((long long)(cols - 1) * ld + rows) * (long long)type_size(t));
}

static cublasStatus_t gemm(const char *fn, cublasHandle_t h, cublasOperation_t ta,
			   cublasOperation_t tb, int m, int n, int k, const void *alpha,
			   const void *A, cudaDataType At, int lda, long long sA, const void *B,
			   cudaDataType Bt, int ldb, long long sB, const void *beta, void *C,
			   cudaDataType Ct, int ldc, long long sC, int batch,
			   cublasComputeType_t ct, cublasGemmAlgo_t algo)
{
	if (getenv("CUEMU_LOG"))
		fprintf(stderr,
			"cuemu: %s(%c, %c, m %d, n %d, k %d, alpha %g, lda %d sA %lld, ldb %d sB "
			"%lld, beta %g, ldc %d sC %lld, batch %d)\n",
			fn, "NTC"[ta], "NTC"[tb], m, n, k, *(const float *)alpha, lda, sA, ldb, sB,
			*(const float *)beta, ldc, sC, batch);
	auto fail = [&](const char *why) {
		cuemu_report("%s(%c, %c, m %d, n %d, k %d, lda %d, ldb %d, ldc %d, batch %d): %s",
			     fn, "NTC"[ta], "NTC"[tb], m, n, k, lda, ldb, ldc, batch, why);
		return CUBLAS_STATUS_INVALID_VALUE;
	};
	if (!h)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	if (ta > CUBLAS_OP_C || tb > CUBLAS_OP_C)
		return fail("bad transa or transb");
	if (m < 0 || n < 0 || k < 0 || batch < 0)
		return fail("a negative size");
	int rows_a = ta == CUBLAS_OP_N ? m : k, cols_a = ta == CUBLAS_OP_N ? k : m;
	int rows_b = tb == CUBLAS_OP_N ? k : n, cols_b = tb == CUBLAS_OP_N ? n : k;
	if (lda < (rows_a > 1 ? rows_a : 1))
		return fail("lda < max(1, rows of A)");
	if (ldb < (rows_b > 1 ? rows_b : 1))
		return fail("ldb < max(1, rows of B)");
	if (ldc < (m > 1 ? m : 1))
		return fail("ldc < max(1, m)");
	if (ct != CUBLAS_COMPUTE_32F || algo != CUBLAS_GEMM_DEFAULT)
		return fail("a compute type or algorithm hug does not use");
	bool types_ok = (At == CUDA_R_32F && Bt == CUDA_R_32F && Ct == CUDA_R_32F) ||
			(At == CUDA_R_16BF && Bt == CUDA_R_16BF &&
			 (Ct == CUDA_R_16BF || Ct == CUDA_R_32F));
	if (!types_ok) {
		cuemu_report("%s: unsupported types A %d, B %d, C %d", fn, At, Bt, Ct);
		return CUBLAS_STATUS_NOT_SUPPORTED;
	}
	if (m == 0 || n == 0 || batch == 0)
		return CUBLAS_STATUS_SUCCESS;
	float al = *(const float *)alpha, be = *(const float *)beta; // host pointer mode
	bool use_ab = k > 0 && al != 0.0f;
	// every operand range must be device memory
	for (int p = 0; p < batch; p++) {
		uintptr_t lo, hi;
		if (use_ab) {
			span(A, At, sA, p, rows_a, cols_a, lda, &lo, &hi);
			if (!cuemu_is_device((void *)lo, hi - lo, nullptr))
				return fail("A of a batch is not inside one device allocation");
			span(B, Bt, sB, p, rows_b, cols_b, ldb, &lo, &hi);
			if (!cuemu_is_device((void *)lo, hi - lo, nullptr))
				return fail("B of a batch is not inside one device allocation");
		}
		span(C, Ct, sC, p, m, n, ldc, &lo, &hi);
		if (!cuemu_is_device((void *)lo, hi - lo, nullptr))
			return fail("C of a batch is not inside one device allocation");
	}
	cuemu_device_scope scope;
	// C elements written, to find batches writing one element twice and a
	// C that overlaps what is read (bounded work: small products only)
	bool check = (long long)m * n * batch <= (1LL << 20) && !cuemu_env_flag("CUEMU_NO_ALIAS_CHECK");
	std::unordered_set<uintptr_t> writes;
	std::vector<float> a((size_t)m * k), b((size_t)n * k);
	for (int p = 0; p < batch; p++) {
		const char *Ap = (const char *)A + p * sA * (long long)type_size(At);
		const char *Bp = (const char *)B + p * sB * (long long)type_size(Bt);
		char *Cp = (char *)C + p * sC * (long long)type_size(Ct);
		if (use_ab) {
			for (int i = 0; i < m; i++) // a[i][l] = op(A)(i, l)
				for (int l = 0; l < k; l++)
					a[(size_t)i * k + l] = load(Ap, At, ta == CUBLAS_OP_N ?
						i + (long long)l * lda : l + (long long)i * lda);
			for (int j = 0; j < n; j++) // b[j][l] = op(B)(l, j)
				for (int l = 0; l < k; l++)
					b[(size_t)j * k + l] = load(Bp, Bt, tb == CUBLAS_OP_N ?
						l + (long long)j * ldb : j + (long long)l * ldb);
		}
		for (int j = 0; j < n; j++)
			for (int i = 0; i < m; i++) {
				float acc = 0.0f;
				if (use_ab) {
					const float *ar = &a[(size_t)i * k], *br = &b[(size_t)j * k];
					for (int l = 0; l < k; l++)
						acc += ar[l] * br[l];
				}
				long long ic = i + (long long)j * ldc;
				float v = use_ab ? al * acc : 0.0f;
				if (be != 0.0f)
					v = v + be * load(Cp, Ct, ic);
				store(Cp, Ct, ic, v);
				if (check &&
				    !writes.insert((uintptr_t)(Cp + ic * type_size(Ct))).second)
					return fail("two batches write one element of C");
			}
	}
	if (check && use_ab)
		for (int p = 0; p < batch; p++) {
			uintptr_t alo, ahi, blo, bhi;
			span(A, At, sA, p, rows_a, cols_a, lda, &alo, &ahi);
			span(B, Bt, sB, p, rows_b, cols_b, ldb, &blo, &bhi);
			for (uintptr_t w : writes)
				if ((w >= alo && w < ahi) || (w >= blo && w < bhi))
					return fail("C overlaps A or B");
		}
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
			    int n, int k, const void *alpha, const void *A, cudaDataType At,
			    int lda, const void *B, cudaDataType Bt, int ldb, const void *beta,
			    void *C, cudaDataType Ct, int ldc, cublasComputeType_t ct,
			    cublasGemmAlgo_t algo)
{
	return gemm("cublasGemmEx", h, ta, tb, m, n, k, alpha, A, At, lda, 0, B, Bt, ldb, 0, beta,
		    C, Ct, ldc, 0, 1, ct, algo);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta,
					  cublasOperation_t tb, int m, int n, int k,
					  const void *alpha, const void *A, cudaDataType At,
					  int lda, long long sA, const void *B, cudaDataType Bt,
					  int ldb, long long sB, const void *beta, void *C,
					  cudaDataType Ct, int ldc, long long sC, int batch,
					  cublasComputeType_t ct, cublasGemmAlgo_t algo)
{
	return gemm("cublasGemmStridedBatchedEx", h, ta, tb, m, n, k, alpha, A, At, lda, sA, B,
		    Bt, ldb, sB, beta, C, Ct, ldc, sC, batch, ct, algo);
}
