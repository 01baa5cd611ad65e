/* test_cuda_runtime.c: the CUDA backend's plumbing and optimizer pieces:
 * device arenas, copies, fill/copy/accumulate on every dtype and on strided
 * views, the clean refusal of f64 math, and AdamW/SGD/the gradient norm
 * against optim/ (AdamW and SGD bit for bit).
 *
 * Without a GPU every test reports itself skipped (the argument checks of
 * hug_cuda_init need no device and always run). */
#include <math.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../autograd/backend.h"
#include "../base/alloc.h"
#include "../optim/optimizer.h"
#include "harness.h"
#include "test_cuda_util.h"

#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"

TEST(cuda_init_reports_errors)
{
	struct hug_error err = { 0 };
	if (hug_cuda_device_count() == 0) {
		CHECK(!hug_cuda_ready());
		CHECK(hug_cuda_init(0, &err) == -1);
		CHECK(strstr(err.msg, "no CUDA device") != NULL);
		/* the CPU path is untouched */
		CHECK(ag_backend_get(DEV_CUDA) == NULL);
		CHECK(ag_backend_get(DEV_CPU) == &ag_cpu_backend);
		return;
	}
	CUDA_TEST_BEGIN();
	CHECK(hug_cuda_init(hug_cuda_device_count(), &err) == -1);
	CHECK(err.set);
	CHECK(hug_cuda_init(0, &err) == 0); /* again, same device: fine */
	CHECK(ag_backend_get(DEV_CUDA) != NULL);
}

TEST(cuda_arena_and_copies)
{
	CUDA_TEST_BEGIN();
	struct arena dev, host;
	arena_init(&dev, "dev", 1024, hug_cuda_allocator());
	arena_init(&host, "host", 0, NULL);
	uint64_t before = hug_cuda_alloc_count();
	struct tensor *h = tensor_new(&host, DT_F32, TENSOR_SHAPE(3, 5, 7));
	cuda_test_fill(h, 3, 2.0, false);
	struct tensor *d = tensor_new(&dev, DT_F32, TENSOR_SHAPE(3, 5, 7));
	CHECK(d->device == DEV_CUDA);
	CHECK(dev.meta != NULL); /* the header lives in host memory */
	hug_cuda_copy_h2d(d, h);
	struct tensor *back = tensor_new(&host, DT_F32, TENSOR_SHAPE(3, 5, 7));
	hug_cuda_copy_d2h(back, d);
	CHECK(memcmp(back->data, h->data, tensor_nbytes(h)) == 0);
	/* zeroed allocations and growth into a second chunk */
	struct tensor *z = tensor_zeros(&dev, DT_F32, TENSOR_SHAPE(1000));
	double *zv = cuda_test_read(z);
	int nonzero = 0;
	for (int i = 0; i < 1000; i++)
		nonzero += zv[i] != 0;
	CHECK(nonzero == 0);
	hug_free(zv);
	CHECK(dev.n_chunk_allocs >= 2);
	CHECK(hug_cuda_alloc_count() - before == dev.n_chunk_allocs);
	/* reset coalesces into one device chunk; the same requests then fit */
	arena_reset(&dev);
	uint64_t after_reset = hug_cuda_alloc_count();
	tensor_new(&dev, DT_F32, TENSOR_SHAPE(3, 5, 7));
	tensor_zeros(&dev, DT_F32, TENSOR_SHAPE(1000));
	CHECK(hug_cuda_alloc_count() == after_reset);
	arena_free(&dev);
	CHECK(dev.meta == NULL);
	arena_free(&host);
}

/* fill, copy and accumulate on strided views of every dtype, against the
 * CPU backend. */
TEST(cuda_fill_copy_accumulate)
{
	CUDA_TEST_BEGIN();
	const enum dtype dts[] = { DT_F32, DT_F64, DT_BF16, DT_F16, DT_I32, DT_U8 };
	const struct ag_backend *gpu = ag_backend_get(DEV_CUDA), *cpu = &ag_cpu_backend;
	struct arena dev, host;
	arena_init(&dev, "dev", 0, hug_cuda_allocator());
	arena_init(&host, "host", 0, NULL);
	struct ag_ctx dctx, hctx;
	ag_ctx_init(&dctx, &dev);
	ag_ctx_init(&hctx, &host);
	ag_set_grad_enabled(&dctx, false);
	ag_set_grad_enabled(&hctx, false);
	for (size_t k = 0; k < sizeof(dts) / sizeof(dts[0]); k++) {
		enum dtype dt = dts[k];
		bool is_float = dtype_is_float(dt);
		struct tensor *h = tensor_new(&host, dt, TENSOR_SHAPE(3, 5, 7));
		struct tensor *d = tensor_new(&dev, dt, TENSOR_SHAPE(3, 5, 7));
		double v[105];
		for (int i = 0; i < 105; i++)
			v[i] = is_float ? (i % 13) * 0.37 - 2.0 : (i * 7) % 100;
		tensor_write_f64(h, v);
		hug_cuda_copy_h2d(d, h);
		/* fill a strided slice with 3 */
		struct tensor *hs = ag_slice(&hctx, ag_transpose(&hctx, h, 0, 2), 1, 1, 3);
		struct tensor *ds = ag_slice(&dctx, ag_transpose(&dctx, d, 0, 2), 1, 1, 3);
		REQUIRE(hs && ds);
		cpu->fill(hs, 3.0);
		gpu->fill(ds, 3.0);
		/* copy a permuted view into a contiguous tensor */
		struct tensor *hp = ag_permute(&hctx, h, (const int[]){ 1, 2, 0 });
		struct tensor *dp = ag_permute(&dctx, d, (const int[]){ 1, 2, 0 });
		struct tensor *hc = tensor_new(&host, dt, hp->ndim, hp->shape);
		struct tensor *dc = tensor_new(&dev, dt, dp->ndim, dp->shape);
		cpu->copy(hc, hp);
		gpu->copy(dc, dp);
		if (dt == DT_F32 || dt == DT_F64) { /* hc += h (flat), on both; the
						       CPU accumulates f32/f64 only */
			cpu->accumulate(hc, h);
			gpu->accumulate(dc, d);
		}
		double want[105], *got = cuda_test_read(dc);
		tensor_read_f64(hc, want);
		for (int i = 0; i < 105; i++)
			if (got[i] != want[i]) {
				test_fail_at(__FILE__, __LINE__, "%s: element %d: gpu %g, cpu %g",
					     dtype_name(dt), i, got[i], want[i]);
				break;
			}
		hug_free(got);
	}
	arena_free(&dev);
	arena_free(&host);
}

/* f64 math is refused by the op layer on CUDA, naming the device. */
TEST(cuda_f64_is_refused_cleanly)
{
	CUDA_TEST_BEGIN();
	struct arena dev, step;
	arena_init(&dev, "dev", 0, hug_cuda_allocator());
	arena_init(&step, "step", 0, hug_cuda_allocator());
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &step);
	struct tensor *a = tensor_zeros(&dev, DT_F64, TENSOR_SHAPE(3, 5));
	CHECK(ag_add(&ctx, a, a) == NULL);
	CHECK(ag_failed(&ctx));
	CHECK(strstr(ctx.err.msg, "add:") != NULL);
	CHECK(strstr(ctx.err.msg, "not supported") != NULL);
	ag_ctx_reset(&ctx);
	/* casts to and from f64 are data movement and work */
	struct tensor *f = ag_cast(&ctx, a, DT_F32);
	CHECK(f && f->dtype == DT_F32 && !ag_failed(&ctx));
	arena_free(&step);
	arena_free(&dev);
}

/* ---- optimizer pieces ---- */

#define ON 1037 /* odd, more than a few blocks of a small grid */

/* Runs 3 optimizer steps on the CPU (optim/) and on the GPU from the same
 * parameters and gradients; the results must be the same bits. */
static void optimizer_bits(const struct optim_config *oc, double lr)
{
	struct arena model, dev;
	arena_init(&model, "model", 0, NULL);
	arena_init(&dev, "dev", 0, hug_cuda_allocator());
	struct param_table pt;
	param_table_init(&pt);
	struct tensor *p = tensor_new(&model, DT_F32, TENSOR_SHAPE(ON));
	cuda_test_fill(p, 1, 1.0, false);
	tensor_set_requires_grad(p, &model);
	param_table_add(&pt, "w", p, false);
	struct optimizer o;
	optim_init(&o, oc, &pt);
	struct tensor *dp = cuda_test_upload(&dev, p, DT_F32);
	struct tensor *dm = tensor_zeros(&dev, DT_F32, TENSOR_SHAPE(ON));
	struct tensor *dv = tensor_zeros(&dev, DT_F32, TENSOR_SHAPE(ON));
	for (int s = 1; s <= 3; s++) {
		cuda_test_fill(p->grad, 100 + (uint64_t)s, 0.5, false);
		struct tensor *dg = cuda_test_upload(&dev, p->grad, DT_F32);
		optim_step(&o, lr);
		if (oc->kind == OPTIM_ADAMW)
			hug_cuda_adamw_update(ON, dp->data, dg->data, dm->data, dv->data, lr,
					      oc->weight_decay, oc->beta1, oc->beta2, oc->eps,
					      1.0 - pow(oc->beta1, s), 1.0 - pow(oc->beta2, s));
		else
			hug_cuda_sgd_update(ON, dp->data, dg->data,
					    oc->momentum != 0 ? dm->data : NULL, lr,
					    oc->weight_decay, oc->momentum, oc->nesterov, s == 1);
	}
	float got[ON];
	hug_cuda_memcpy_d2h(got, dp->data, sizeof(got));
	const float *want = p->data;
	int bad = 0;
	for (int i = 0; i < ON; i++)
		if (memcmp(&got[i], &want[i], sizeof(float)) && bad++ < 3)
			test_fail_at(__FILE__, __LINE__, "element %d: gpu %.9g, cpu %.9g", i,
				     got[i], want[i]);
	CHECK(bad == 0);
	optim_free(&o);
	param_table_free(&pt);
	arena_free(&dev);
	arena_free(&model);
}

TEST(cuda_adamw_matches_optim_bit_for_bit)
{
	CUDA_TEST_BEGIN();
	struct optim_config oc = optim_config_adamw();
	oc.weight_decay = 0.1;
	optimizer_bits(&oc, 3e-3);
}

TEST(cuda_sgd_matches_optim_bit_for_bit)
{
	CUDA_TEST_BEGIN();
	struct optim_config oc = { .kind = OPTIM_SGD, .momentum = 0.9, .nesterov = true,
				   .weight_decay = 0.01 };
	optimizer_bits(&oc, 0.05);
	struct optim_config plain = { .kind = OPTIM_SGD };
	optimizer_bits(&plain, 0.05);
}

/* The sum of squares over several tensors (f32 and bf16) against a double
 * sum on the host; deterministic (two calls, same bits). Then scaling. */
TEST(cuda_grad_norm_and_scale)
{
	CUDA_TEST_BEGIN();
	struct arena dev, host;
	arena_init(&dev, "dev", 0, hug_cuda_allocator());
	arena_init(&host, "host", 0, NULL);
	const int64_t sizes[] = { 7, 1, 70001, 333 };
	struct tensor *ts[4];
	double want = 0;
	for (int i = 0; i < 4; i++) {
		struct tensor *h = tensor_new(&host, DT_F32, 1, &sizes[i]);
		cuda_test_fill(h, 40 + (uint64_t)i, 1.5, i == 3);
		ts[i] = cuda_test_upload(&dev, h, i == 3 ? DT_BF16 : DT_F32);
		const float *v = h->data;
		for (int64_t j = 0; j < sizes[i]; j++)
			want += (double)v[j] * v[j];
	}
	double got = hug_cuda_sum_squares(4, ts), again = hug_cuda_sum_squares(4, ts);
	CHECK(fabs(got - want) <= 1e-12 * want);
	CHECK(memcmp(&got, &again, sizeof(got)) == 0);
	hug_cuda_scale(ts[2], 0.5);
	double scaled = hug_cuda_sum_squares(1, &ts[2]);
	double *v = cuda_test_read(ts[2]);
	double direct = 0;
	for (int64_t j = 0; j < sizes[2]; j++)
		direct += v[j] * v[j];
	hug_free(v);
	CHECK(fabs(scaled - direct) <= 1e-12 * direct);
	arena_free(&dev);
	arena_free(&host);
}

#else
TEST(cuda_runtime)
{
	CUDA_TEST_BEGIN(); /* skips, or fails under HUG_REQUIRE_GPU */
}
#endif
