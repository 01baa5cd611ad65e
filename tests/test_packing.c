/* test_packing.c: sequence packing with per-document attention
 * (data.packing "document"): the loader's document ids and boundary
 * targets (loader_pack_documents), and, through the model interface
 * (model_forward_batch with segments), each document's loss in a packed
 * batch equal within 1e-5 to the document's loss run alone, for BLOOM
 * (ALiBi distances restart per document) and the Llama families (RoPE
 * position ids restart; Mistral's sliding window; Qwen3's QK-norm), under
 * the default (tiled) and the exact attention kernels; and the trainer
 * with data.packing "document": its first step's loss is the token-weighted
 * mean of the documents of its batch run one by one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../data/loader.h"
#include "../io/hf_checkpoint.h"
#include "../nn/model.h"
#include "../train/recipe.h"
#include "../train/trainer.h"
#include "harness.h"
#include "test_cuda_util.h"
#include "train_fixture.h"
#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"
#endif

enum { EOS = 2 };

TEST(packing_document_ids_and_targets)
{
	/* row 0: [5 6 EOS | 7 EOS | 8 9], row 1: no EOS */
	const int32_t in[2 * 7] = { 5, 6, EOS, 7, EOS, 8, 9, 1, 3, 4, 5, 6, 7, 8 };
	int32_t tg[2 * 7] = { 6, EOS, 7, EOS, 8, 9, 10, 3, 4, 5, 6, 7, 8, 9 };
	int32_t seg[2 * 7];
	loader_pack_documents(in, tg, 2, 7, EOS, seg);
	const int32_t want_seg[2 * 7] = { 0, 0, 0, 1, 1, 2, 2, 0, 0, 0, 0, 0, 0, 0 };
	const int32_t want_tg[2 * 7] = { 6, EOS, -100, EOS, -100, 9, 10, 3, 4, 5, 6, 7, 8, 9 };
	CHECK(memcmp(seg, want_seg, sizeof(seg)) == 0);
	CHECK(memcmp(tg, want_tg, sizeof(tg)) == 0);
	/* no EOS id: one document per row, targets unchanged */
	int32_t tg2[7] = { 1, 2, 3, 4, 5, 6, 7 };
	loader_pack_documents(in, tg2, 1, 7, -1, seg);
	CHECK(seg[6] == 0 && tg2[2] == 3 && tg2[4] == 5);
}

enum { T = 23, B = 2, NDOC = 3 };

/* Row r holds documents of these lengths (the last one cut by the row's
 * end, as the loader's windows cut them); each but the last ends with EOS. */
static const int doc_len[B][NDOC] = { { 6, 9, 8 }, { 11, 3, 9 } };

static int32_t token(int r, int j)
{
	return (int32_t)(3 + (j * 7 + r * 13) % 90); /* never EOS, < every vocab */
}

/* A host (B, T) i32 tensor as the model's device wants it. */
static struct tensor *on_dev(struct arena *dev, const struct tensor *h, bool cuda)
{
	return cuda ? cuda_test_upload(dev, h, DT_I32) : (struct tensor *)h;
}

static double alone_loss(struct ag_ctx *ctx, struct arena *host, const struct model *m,
			 const int32_t *ids, int len, bool cuda)
{
	struct tensor *x = tensor_new(host, DT_I32, TENSOR_SHAPE(1, len));
	struct tensor *y = tensor_new(host, DT_I32, TENSOR_SHAPE(1, len));
	memcpy(x->data, ids, (size_t)len * sizeof(int32_t));
	for (int j = 0; j < len; j++)
		((int32_t *)y->data)[j] = j + 1 < len ? ids[j + 1] : -100;
	struct tensor *l = model_loss(ctx, m, model_forward(ctx, m, on_dev(ctx->step, x, cuda), NULL),
				      on_dev(ctx->step, y, cuda));
	return l ? tensor_item(l) : NAN;
}

/* Each document's loss in the packed batch against the document alone, on
 * the CPU or (cuda) the GPU, with the kernel `kernel`. */
static void check_model(const char *dir, enum ag_attn_kernel kernel, bool cuda)
{
	struct model hm = { 0 }, dm = { 0 }, *m = &hm;
	struct hug_error err = { 0 };
	if (hf_model_load(dir, DT_F32, false, &hm, &err))
		test_fail_at(__FILE__, __LINE__, "hf_model_load(%s): %s", dir, err.msg);
	const struct arena_allocator *dev = NULL;
#ifdef HUG_CUDA
	if (cuda) {
		dev = hug_cuda_allocator();
		model_to_device(&dm, &hm, dev, false);
		m = &dm;
	}
#endif
	struct arena step, host;
	arena_init(&step, "step", 0, dev);
	arena_init(&host, "host", 0, NULL);
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &step);
	ag_set_grad_enabled(&ctx, false);
	setenv("HUG_ATTENTION", kernel == AG_ATTN_KERNEL_EXACT ? "exact" : "tiled", 1);
	struct tensor *ids = tensor_new(&host, DT_I32, TENSOR_SHAPE(B, T));
	struct tensor *tg = tensor_new(&host, DT_I32, TENSOR_SHAPE(B, T));
	struct tensor *seg = tensor_new(&host, DT_I32, TENSOR_SHAPE(B, T));
	int32_t *x = ids->data, *y = tg->data;
	for (int r = 0; r < B; r++) {
		int j = 0;
		for (int d = 0; d < NDOC; d++)
			for (int k = 0; k < doc_len[r][d]; k++, j++)
				x[r * T + j] = k == doc_len[r][d] - 1 && d < NDOC - 1 ? EOS
										   : token(r, j);
		for (j = 0; j < T; j++) /* the loader's targets: the next token */
			y[r * T + j] = j + 1 < T ? x[r * T + j + 1] : token(r, T);
	}
	loader_pack_documents(x, y, B, T, EOS, seg->data);
	struct tensor *dids = on_dev(&step, ids, cuda);
	struct model_batch mb = { .ids = dids, .segments = on_dev(&step, seg, cuda) };
	struct tensor *logits = model_forward_batch(&ctx, m, &mb);
	REQUIRE(logits);
	double worst = 0;
	for (int r = 0; r < B; r++) {
		int start = 0;
		for (int d = 0; d < NDOC; d++) {
			int len = doc_len[r][d];
			/* the packed batch's targets of document d only */
			struct tensor *td = tensor_new(&host, DT_I32, TENSOR_SHAPE(B, T));
			int32_t *t = td->data;
			for (int e = 0; e < B * T; e++)
				t[e] = -100;
			for (int j = start; j < start + len; j++)
				t[r * T + j] = j + 1 < start + len ? y[r * T + j] : -100;
			struct tensor *lp = model_loss(&ctx, m, logits, on_dev(&step, td, cuda));
			REQUIRE(lp);
			double packed = tensor_item(lp);
			double alone = alone_loss(&ctx, &host, m, x + r * T + start, len, cuda);
			double diff = fabs(packed - alone);
			worst = diff > worst ? diff : worst;
			if (!(diff <= 1e-5))
				test_fail_at(__FILE__, __LINE__, "%s row %d document %d: packed loss "
					     "%.9g, alone %.9g", dir, r, d, packed, alone);
			start += len;
		}
	}
	/* the same ids without segments do attend across documents */
	struct tensor *lcross = model_forward(&ctx, m, dids, NULL);
	REQUIRE(lcross);
	struct tensor *hc = tensor_new(&host, DT_F32, 3, lcross->shape);
	struct tensor *hp = tensor_new(&host, DT_F32, 3, logits->shape);
	tensor_transfer(hc, lcross);
	tensor_transfer(hp, logits);
	double far = 0;
	for (int64_t e = 0; e < tensor_numel(hc); e++)
		far = fmax(far, fabs(((float *)hc->data)[e] - ((float *)hp->data)[e]));
	CHECK(far > 1e-3);
	printf("\n    %-28s %-5s %-4s worst |packed - alone| %.1e", dir + 15,
	       kernel == AG_ATTN_KERNEL_EXACT ? "exact" : "tiled", cuda ? "cuda" : "cpu", worst);
	unsetenv("HUG_ATTENTION");
	arena_free(&step);
	arena_free(&host);
	if (cuda)
		model_free(&dm);
	model_free(&hm);
}

static const char *const pack_dirs[] = {
	"tests/fixtures/bloom-tiny-a", "tests/fixtures/llama-tiny-a",
	"tests/fixtures/mistral-tiny", "tests/fixtures/qwen3-tiny",
};

TEST(packing_per_document_losses_match_alone)
{
	for (size_t i = 0; i < sizeof(pack_dirs) / sizeof(pack_dirs[0]); i++) {
		check_model(pack_dirs[i], AG_ATTN_KERNEL_TILED, false);
		check_model(pack_dirs[i], AG_ATTN_KERNEL_EXACT, false);
	}
	printf("\n    ");
}

/* The same on the GPU (segments through the CUDA kernels). */
TEST(cuda_packing_per_document_losses_match_alone)
{
	CUDA_TEST_BEGIN();
	for (size_t i = 0; i < sizeof(pack_dirs) / sizeof(pack_dirs[0]); i++) {
		check_model(pack_dirs[i], AG_ATTN_KERNEL_TILED, true);
		check_model(pack_dirs[i], AG_ATTN_KERNEL_EXACT, true);
	}
	printf("\n    ");
}

/* Builds a trainer for the counting corpus in dir (BLOOM, T = 32, one
 * micro-batch of 4) with data.packing `packing`. */
static int open_trainer(const char *dir, const char *packing, struct recipe *r,
			struct trainer *t)
{
	const char *ov[] = { "batch.micro_batch_size=4", "batch.global_batch_size=4",
			     "train.steps=1", "schedule.warmup_steps=0", packing };
	return train_fixture_open(dir, ov, 5, r, t);
}

TEST(packing_trainer_loss_is_documents_alone)
{
	const char *dir = train_fixture_setup(4000, NULL, NULL);
	REQUIRE(dir);
	struct recipe ra, rb;
	struct trainer ta, tb;
	REQUIRE(open_trainer(dir, "data.packing=\"document\"", &ra, &ta) == 0);
	struct step_result res;
	struct hug_error err = { 0 };
	REQUIRE(trainer_step(&ta, &res, &err) == 0);
	/* the same initial weights (same seed), no packing: each document of
	 * the batch ta served, alone */
	REQUIRE(open_trainer(dir, "data.packing=\"none\"", &rb, &tb) == 0);
	int64_t b = ta.inputs->shape[0], t = ta.inputs->shape[1];
	const int32_t *x = ta.inputs->data, *y = ta.targets->data;
	struct arena step;
	arena_init(&step, "step", 0, NULL);
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &step);
	ag_set_grad_enabled(&ctx, false);
	double sum = 0;
	int64_t count = 0, docs = 0;
	for (int64_t r = 0; r < b; r++)
		for (int64_t j0 = 0, j = 0; j < t; j++) {
			if (x[r * t + j] != ta.eos && j < t - 1)
				continue;
			/* document [j0, j]: its targets within it, then the row's
			 * last target when the document is cut by the row's end */
			int64_t len = j - j0 + 1;
			struct tensor *xi = tensor_new(&step, DT_I32, TENSOR_SHAPE(1, len));
			struct tensor *yi = tensor_new(&step, DT_I32, TENSOR_SHAPE(1, len));
			memcpy(xi->data, x + r * t + j0, (size_t)len * 4);
			memcpy(yi->data, y + r * t + j0, (size_t)len * 4);
			int64_t n = 0;
			for (int64_t k = 0; k < len; k++)
				n += ((int32_t *)yi->data)[k] != -100;
			struct tensor *l = model_loss(&ctx, &tb.model,
						      model_forward(&ctx, &tb.model, xi, NULL), yi);
			REQUIRE(l);
			if (n)
				sum += tensor_item(l) * (double)n;
			count += n;
			docs++;
			j0 = j + 1;
		}
	double want = sum / (double)count;
	printf("(%lld documents in %lld rows; packed %.7f, alone %.7f) ", (long long)docs,
	       (long long)b, res.loss, want);
	CHECK(docs > b); /* the batch does hold packed documents */
	CHECK(res.target_tokens == count);
	CHECK(fabs(res.loss - want) <= 1e-5);
	arena_free(&step);
	trainer_free(&tb);
	recipe_free(&rb);
	trainer_free(&ta);
	recipe_free(&ra);
	train_fixture_rmtree(dir);
}
