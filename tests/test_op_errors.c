/* test_op_errors.c: ops handed inputs they cannot take return NULL and leave
 * a message in ctx->err that names the op and the inputs (shapes, dtypes,
 * the offending index); the error is sticky until ag_ctx_reset(). */
#include <stdarg.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../autograd/backend.h"
#include "ag_env.h"
#include "harness.h"

static struct tensor *filled(struct ag_env *e, enum dtype dt, double v, int ndim,
			     const int64_t *shape)
{
	struct tensor *t = tensor_new(&e->model, dt, ndim, shape);
	tensor_fill(t, v);
	return t;
}

static struct tensor *ints(struct ag_env *e, const int32_t *vals, int ndim,
			   const int64_t *shape)
{
	struct tensor *t = tensor_new(&e->model, DT_I32, ndim, shape);
	memcpy(t->data, vals, tensor_nbytes(t));
	return t;
}

#define F32(e, ...) filled((e), DT_F32, 0.5, TENSOR_SHAPE(__VA_ARGS__))

/* Fails the test (at the caller's line) unless the op failed with a
 * message containing every NULL-terminated string given. */
static void expect_error_at(const char *file, int line, struct ag_ctx *ctx,
			    const void *result, ...)
{
	if (result)
		test_fail_at(file, line, "op succeeded, expected an error");
	if (!ag_failed(ctx)) {
		test_fail_at(file, line, "ctx->err not set");
		return;
	}
	va_list ap;
	va_start(ap, result);
	for (const char *s; (s = va_arg(ap, const char *));)
		if (!strstr(ctx->err.msg, s))
			test_fail_at(file, line, "message \"%s\" lacks \"%s\"",
				     ctx->err.msg, s);
	va_end(ap);
}

#define EXPECT_ERROR(ctx, result, ...)                                         \
	expect_error_at(__FILE__, __LINE__, (ctx), (result), __VA_ARGS__,     \
			(const char *)NULL)

TEST(op_error_matmul_inner_dims)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *a = F32(&e, 2, 3, 5), *b = F32(&e, 2, 4, 7);
	EXPECT_ERROR(&e.ctx, ag_matmul(&e.ctx, a, b, false, false),
		     "matmul", "[2, 3, 5]", "[2, 4, 7]");
	/* with a transpose the inner dims match: no error after a reset */
	ag_ctx_reset(&e.ctx);
	struct tensor *c = F32(&e, 2, 5, 3);
	CHECK(ag_matmul(&e.ctx, c, b, true, false) == NULL); /* K 5 vs 4 */
	ag_ctx_reset(&e.ctx);
	struct tensor *d = F32(&e, 2, 5, 4);
	struct tensor *r = ag_matmul(&e.ctx, c, d, true, false);
	CHECK(r != NULL && !ag_failed(&e.ctx));
	/* batch dims that differ */
	ag_ctx_reset(&e.ctx);
	struct tensor *f = F32(&e, 3, 5, 7);
	EXPECT_ERROR(&e.ctx, ag_matmul(&e.ctx, a, f, false, false),
		     "matmul", "[2, 3, 5]", "[3, 5, 7]");
	ag_env_free(&e);
}

TEST(op_error_add_not_broadcastable)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *a = F32(&e, 3, 5, 7), *b = F32(&e, 4, 7);
	EXPECT_ERROR(&e.ctx, ag_add(&e.ctx, a, b), "add", "[3, 5, 7]", "[4, 7]");
	ag_ctx_reset(&e.ctx);
	struct tensor *c = F32(&e, 3, 5, 6);
	EXPECT_ERROR(&e.ctx, ag_mul(&e.ctx, a, c), "mul", "[3, 5, 7]", "[3, 5, 6]");
	ag_env_free(&e);
}

TEST(op_error_mul_dtype_mismatch)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *a = F32(&e, 3, 5);
	struct tensor *b = filled(&e, DT_F64, 1.0, TENSOR_SHAPE(3, 5));
	EXPECT_ERROR(&e.ctx, ag_mul(&e.ctx, a, b), "mul", "f32", "f64");
	ag_env_free(&e);
}

TEST(op_error_linear_in_features)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = F32(&e, 2, 3, 5), *w = F32(&e, 7, 4);
	EXPECT_ERROR(&e.ctx, ag_linear(&e.ctx, x, w, NULL), "linear", "[2, 3, 5]",
		     "[7, 4]");
	/* a bias of the wrong size */
	ag_ctx_reset(&e.ctx);
	struct tensor *w2 = F32(&e, 7, 5), *bias = F32(&e, 6);
	EXPECT_ERROR(&e.ctx, ag_linear(&e.ctx, x, w2, bias), "linear", "[6]");
	ag_env_free(&e);
}

TEST(op_error_layernorm_weight_size)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = F32(&e, 3, 5), *w = F32(&e, 4), *b = F32(&e, 5);
	EXPECT_ERROR(&e.ctx, ag_layernorm(&e.ctx, x, w, b, 1e-5), "layernorm",
		     "[3, 5]", "[4]");
	ag_ctx_reset(&e.ctx);
	struct tensor *w5 = F32(&e, 5), *b4 = F32(&e, 4);
	EXPECT_ERROR(&e.ctx, ag_layernorm(&e.ctx, x, w5, b4, 1e-5), "layernorm",
		     "[3, 5]", "[4]");
	ag_env_free(&e);
}

TEST(op_error_embedding_id_out_of_range)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	const int32_t ids[] = { 3, 0, 123, 5 };
	struct tensor *t = ints(&e, ids, TENSOR_SHAPE(2, 2));
	struct tensor *w = F32(&e, 17, 3);
	EXPECT_ERROR(&e.ctx, ag_embedding(&e.ctx, t, w), "embedding",
		     "id 123 at position 2 ", "[0, 17)");
	ag_ctx_reset(&e.ctx);
	const int32_t neg[] = { 3, -4, 1, 5 };
	struct tensor *tn = ints(&e, neg, TENSOR_SHAPE(2, 2));
	EXPECT_ERROR(&e.ctx, ag_embedding(&e.ctx, tn, w), "embedding",
		     "id -4 at position 1 ", "[0, 17)");
	/* several bad ids: the first is named; the bound is exclusive */
	ag_ctx_reset(&e.ctx);
	const int32_t two[] = { 16, 0, 17, -1 };
	struct tensor *t2 = ints(&e, two, TENSOR_SHAPE(2, 2));
	EXPECT_ERROR(&e.ctx, ag_embedding(&e.ctx, t2, w), "embedding",
		     "id 17 at position 2 ");
	/* a strided view: the position is in the view's row-major order, so
	 * the 9 stored at [0][1] is found at [1][0], position 2 */
	ag_ctx_reset(&e.ctx);
	const int32_t tr[] = { 0, 9, 1, 2 };
	struct tensor *w9 = F32(&e, 9, 3);
	struct tensor *tt = ag_transpose(&e.ctx, ints(&e, tr, TENSOR_SHAPE(2, 2)), 0, 1);
	EXPECT_ERROR(&e.ctx, ag_embedding(&e.ctx, tt, w9), "embedding",
		     "id 9 at position 2 ", "[0, 9)");
	/* a vocabulary shard: ids are checked against the whole vocabulary, so
	 * ids of other ranks' rows are fine */
	ag_ctx_reset(&e.ctx);
	const int32_t sh[] = { 0, 16, 20, 3 };
	struct tensor *ts = ints(&e, sh, TENSOR_SHAPE(2, 2));
	CHECK(ag_embedding_shard(&e.ctx, t2, w, 4, 21) == NULL); /* -1 */
	EXPECT_ERROR(&e.ctx, NULL, "id -1 at position 3 ", "[0, 21)");
	ag_ctx_reset(&e.ctx);
	CHECK(ag_embedding_shard(&e.ctx, ts, w, 4, 21) != NULL);
	CHECK(!ag_failed(&e.ctx));
	ag_ctx_reset(&e.ctx);
	EXPECT_ERROR(&e.ctx, ag_embedding_shard(&e.ctx, ts, w, 0, 20), "embedding",
		     "id 20 at position 2 ", "[0, 20)");
	/* ids must be i32 */
	ag_ctx_reset(&e.ctx);
	struct tensor *fid = F32(&e, 2, 2);
	EXPECT_ERROR(&e.ctx, ag_embedding(&e.ctx, fid, w), "embedding", "f32");
	ag_env_free(&e);
}

TEST(op_error_cross_entropy_target_out_of_range)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *logits = F32(&e, 2, 3, 13);
	const int32_t tv[] = { 1, 2, 42, 0, -100, 12 };
	struct tensor *t = ints(&e, tv, TENSOR_SHAPE(2, 3));
	EXPECT_ERROR(&e.ctx, ag_cross_entropy(&e.ctx, logits, t, -100),
		     "cross_entropy", "target 42 at position 2 ", "[0, 13)",
		     "ignore index -100");
	/* a negative target that is not the ignore index */
	ag_ctx_reset(&e.ctx);
	const int32_t tn[] = { 1, 2, -7, 0, -100, 12 };
	struct tensor *t2 = ints(&e, tn, TENSOR_SHAPE(2, 3));
	EXPECT_ERROR(&e.ctx, ag_cross_entropy(&e.ctx, logits, t2, -100),
		     "cross_entropy", "target -7 at position 2 ");
	/* with another ignore index, -100 is an ordinary bad target */
	ag_ctx_reset(&e.ctx);
	const int32_t tv2[] = { 1, 2, 3, 0, -100, -1 };
	struct tensor *t4 = ints(&e, tv2, TENSOR_SHAPE(2, 3));
	EXPECT_ERROR(&e.ctx, ag_cross_entropy(&e.ctx, logits, t4, -1),
		     "cross_entropy", "target -100 at position 4 ", "ignore index -1");
	ag_ctx_reset(&e.ctx);
	CHECK(ag_cross_entropy(&e.ctx, logits, t4, -100) == NULL);
	EXPECT_ERROR(&e.ctx, NULL, "target -1 at position 5 ");
	/* targets whose shape is not logits' leading dims */
	ag_ctx_reset(&e.ctx);
	const int32_t t6[] = { 1, 2, 3, 4, 5, 6 };
	struct tensor *t3 = ints(&e, t6, TENSOR_SHAPE(3, 2));
	EXPECT_ERROR(&e.ctx, ag_cross_entropy(&e.ctx, logits, t3, -100),
		     "cross_entropy", "[2, 3, 13]", "[3, 2]");
	ag_env_free(&e);
}

/* Two ranks in name only: the all-reduce does nothing, enough for the op
 * layer to take a vocabulary slice on one process. */
static void noop_allreduce(void *state, void *buf, int64_t n, enum dtype dt, bool max,
			   enum device dev)
{
	(void)state, (void)buf, (void)n, (void)dt, (void)max, (void)dev;
}

TEST(op_error_cross_entropy_shard_target_out_of_range)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	const struct ag_collective pair = { NULL, 0, 2, noop_allreduce };
	/* this rank holds [5, 10) of a vocabulary of 13 */
	struct tensor *logits = F32(&e, 2, 3, 5);
	const int32_t ok[] = { 12, 0, 7, -100, 5, 9 };
	struct tensor *t = ints(&e, ok, TENSOR_SHAPE(2, 3));
	CHECK(ag_cross_entropy_shard(&e.ctx, logits, t, -100, 5, 13, &pair) != NULL);
	CHECK(!ag_failed(&e.ctx));
	ag_ctx_reset(&e.ctx);
	const int32_t bad[] = { 12, 0, 7, -100, 13, 9 };
	struct tensor *tb = ints(&e, bad, TENSOR_SHAPE(2, 3));
	EXPECT_ERROR(&e.ctx, ag_cross_entropy_shard(&e.ctx, logits, tb, -100, 5, 13, &pair),
		     "cross_entropy", "target 13 at position 4 ", "[0, 13)");
	ag_env_free(&e);
}

/* The CPU backend's range check itself: the first bad position and its
 * value, lo inclusive and hi exclusive, the skipped value, an empty
 * tensor (-1, value untouched). */
TEST(cpu_find_out_of_range_hook)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	int64_t (*find)(const struct tensor *, int64_t, int64_t, int64_t, int32_t *) =
		ag_backend_get(DEV_CPU)->find_out_of_range;
	CHECK(find != NULL);
	if (!find) {
		ag_env_free(&e);
		return;
	}
	const int32_t vals[] = { 2, 3, 9, -5, 10, 1, -100, 11 };
	struct tensor *t = ints(&e, vals, TENSOR_SHAPE(8));
	int32_t v = 77;
	CHECK(find(t, -100, 12, INT64_MIN, &v) == -1 && v == 77);
	CHECK(find(t, -5, 12, -100, &v) == -1 && v == 77);
	CHECK(find(t, 0, 10, INT64_MIN, &v) == 3 && v == -5);
	CHECK(find(t, -5, 10, INT64_MIN, &v) == 4 && v == 10);
	CHECK(find(t, -5, 11, -100, &v) == 7 && v == 11);
	CHECK(find(t, -100, 11, INT64_MIN, &v) == 7 && v == 11);
	CHECK(find(t, 2, 12, -100, &v) == 3 && v == -5);
	CHECK(find(t, 3, 12, INT64_MIN, &v) == 0 && v == 2);
	/* an empty range: every value is bad except the skipped one */
	CHECK(find(t, 0, 0, 2, &v) == 1 && v == 3);
	struct tensor *empty = tensor_new(&e.model, DT_I32, 1, (int64_t[]){ 0 });
	v = 77;
	CHECK(find(empty, 0, 0, INT64_MIN, &v) == -1 && v == 77);
	/* empty ids and targets pass the op layer's checks */
	struct tensor *ids0 = tensor_new(&e.model, DT_I32, 2, (int64_t[]){ 0, 3 });
	CHECK(ag_embedding(&e.ctx, ids0, F32(&e, 4, 2)) != NULL);
	CHECK(ag_cross_entropy(&e.ctx, F32(&e, 0, 5), empty, -100) != NULL);
	CHECK(!ag_failed(&e.ctx));
	ag_env_free(&e);
}

TEST(op_error_attention_shapes)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *q = F32(&e, 2, 3, 5, 4), *k = F32(&e, 2, 3, 6, 4);
	struct tensor *v = F32(&e, 2, 3, 5, 4);
	EXPECT_ERROR(&e.ctx, ag_attention(&e.ctx, q, k, v, &(struct ag_attn_desc){ .causal = true }),
		     "attention", "[2, 3, 5, 4]", "[2, 3, 6, 4]");
	/* slopes of the wrong length, a mask of the wrong shape */
	ag_ctx_reset(&e.ctx);
	struct tensor *sl = F32(&e, 4);
	EXPECT_ERROR(&e.ctx, ag_attention(&e.ctx, q, v, v, &(struct ag_attn_desc){
						 .pos_bias = AG_POS_BIAS_ALIBI, .slopes = sl, .causal = true }),
		     "attention", "[4]");
	ag_ctx_reset(&e.ctx);
	const int32_t mv[] = { 1, 1, 1, 1, 1, 1 };
	struct tensor *mask = ints(&e, mv, TENSOR_SHAPE(2, 3));
	EXPECT_ERROR(&e.ctx, ag_attention(&e.ctx, q, v, v, &(struct ag_attn_desc){
						 .causal = true, .key_mask = mask }),
		     "attention", "[2, 3]");
	/* empty heads (D = 0) */
	ag_ctx_reset(&e.ctx);
	struct tensor *q0 = F32(&e, 2, 3, 5, 0);
	EXPECT_ERROR(&e.ctx, ag_attention(&e.ctx, q0, q0, q0, &(struct ag_attn_desc){ .causal = true }),
		     "attention", "head size", "[2, 3, 5, 0]");
	ag_env_free(&e);
}

TEST(op_error_view_numel)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = F32(&e, 3, 5);
	EXPECT_ERROR(&e.ctx, ag_view(&e.ctx, x, TENSOR_SHAPE(4, 4)), "view",
		     "[3, 5]", "4, 4");
	/* -1 that cannot be inferred */
	ag_ctx_reset(&e.ctx);
	EXPECT_ERROR(&e.ctx, ag_view(&e.ctx, x, TENSOR_SHAPE(4, -1)), "view", "[3, 5]");
	/* a non-contiguous input */
	ag_ctx_reset(&e.ctx);
	struct tensor *t = ag_transpose(&e.ctx, x, 0, 1);
	REQUIRE(t);
	EXPECT_ERROR(&e.ctx, ag_view(&e.ctx, t, TENSOR_SHAPE(15)), "view", "[5, 3]");
	ag_env_free(&e);
}

TEST(op_error_backward_non_scalar)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = F32(&e, 3, 5);
	tensor_set_requires_grad(x, &e.model);
	struct tensor *y = ag_scale(&e.ctx, x, 2.0);
	REQUIRE(y);
	CHECK(ag_backward(&e.ctx, y) == -1);
	EXPECT_ERROR(&e.ctx, NULL, "backward", "[3, 5]");
	ag_ctx_reset(&e.ctx);
	CHECK(ag_backward(&e.ctx, NULL) == -1);
	EXPECT_ERROR(&e.ctx, NULL, "backward");
	ag_env_free(&e);
}

TEST(op_error_is_sticky_until_reset)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *a = F32(&e, 2, 3, 5), *b = F32(&e, 2, 4, 7);
	struct tensor *c = F32(&e, 2, 3, 5);
	CHECK(ag_matmul(&e.ctx, a, b, false, false) == NULL);
	REQUIRE(ag_failed(&e.ctx));
	char saved[HUG_ERROR_MAX];
	memcpy(saved, e.ctx.err.msg, sizeof(saved));
	int64_t nodes = e.ctx.n_nodes;

	/* valid ops after the error return NULL and keep the first message */
	CHECK(ag_add(&e.ctx, a, c) == NULL);
	CHECK(ag_gelu(&e.ctx, a) == NULL);
	CHECK(ag_view(&e.ctx, b, TENSOR_SHAPE(8, 7)) == NULL);
	CHECK(ag_mul(&e.ctx, a, b) == NULL); /* a second, different error */
	CHECK(strcmp(saved, e.ctx.err.msg) == 0);
	CHECK(e.ctx.n_nodes == nodes);
	CHECK(ag_failed(&e.ctx));

	ag_ctx_reset(&e.ctx);
	CHECK(!ag_failed(&e.ctx));
	CHECK(e.ctx.n_nodes == 0);
	struct tensor *s = ag_add(&e.ctx, a, c);
	REQUIRE(s);
	const float *v = s->data;
	CHECK(v[0] == 1.0f && v[29] == 1.0f);
	CHECK(!ag_failed(&e.ctx));
	ag_env_free(&e);
}
