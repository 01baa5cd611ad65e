/* test_bloom_device.c: nn/bloom_device.h on the host: a model moved with
 * bloom_model_to_device (here to another host arena: the same code path
 * as to the GPU, minus the device) keeps every name, shard spec and bit;
 * bloom_model_copy_weights brings values back; and the cast view of an f64
 * model computed in f32 gives the f32 model's logits and loss, with the
 * gradients landing in the f64 master weights; LoRA adapters on such a
 * view are cast too (f32 adapters of a bf16 run on the GPU); and each
 * block is cast where the forward reaches it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/bloom.h"
#include "../nn/bloom_device.h"
#include "../peft/lora_model.h"
#include "ag_env.h"
#include "bloom_util.h"
#include "harness.h"

#define B 2
#define T 7

static void make_ids(struct arena *a, struct tensor **ids, struct tensor **labels)
{
	*ids = tensor_new(a, DT_I32, TENSOR_SHAPE(B, T));
	*labels = tensor_new(a, DT_I32, TENSOR_SHAPE(B, T));
	int32_t *iv = (*ids)->data, *lv = (*labels)->data;
	for (int i = 0; i < B * T; i++) {
		iv[i] = (i * 7 + 3) % 37;
		lv[i] = i % 5 == 4 ? -100 : iv[i];
	}
}

/* The loss of m on the fixed batch, after backward (gradients in m). */
static double loss_of(const struct bloom_model *m, bool cast_to_f32, double *logits_out)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	e.ctx.training = false;
	struct tensor *ids, *labels;
	make_ids(&e.model, &ids, &labels);
	struct bloom_model view;
	const struct bloom_model *use = m;
	if (cast_to_f32) {
		CHECK(bloom_model_cast(&e.ctx, m, DT_F32, &view));
		use = &view;
	}
	struct tensor *logits = bloom_forward(&e.ctx, use, ids, NULL);
	struct tensor *loss = bloom_lm_loss(&e.ctx, logits, labels);
	double l = NAN;
	if (loss && ag_backward(&e.ctx, loss) == 0) {
		l = tensor_item(loss);
		if (logits_out)
			tensor_read_f64(logits, logits_out);
		CHECK(loss->dtype == DT_F32 || !cast_to_f32);
	} else {
		test_fail_at(__FILE__, __LINE__, "%s", e.ctx.err.msg);
	}
	ag_env_free(&e);
	return l;
}

/* Copies every value of table `src` into `dst` (same order and shapes),
 * through doubles, so an f32 table receives the rounded f64 values. */
static void copy_values(const struct param_table *dst, const struct param_table *src)
{
	for (int i = 0; i < src->n; i++) {
		const struct tensor *s = src->items[i].t;
		double *v = malloc((size_t)(tensor_numel(s) ? tensor_numel(s) : 1) * sizeof(double));
		tensor_read_f64(s, v);
		tensor_write_f64(dst->items[i].t, v);
		free(v);
	}
}

/* max |a's gradient - b's gradient| over two tables of the same shapes;
 * a's gradients must be f64 (the masters of a cast view). */
static double grad_diff(const struct param_table *a, const struct param_table *b)
{
	double worst = 0;
	for (int i = 0; i < a->n; i++) {
		const struct tensor *ga = a->items[i].t->grad, *gb = b->items[i].t->grad;
		CHECK(ga->dtype == DT_F64);
		int64_t n = tensor_numel(ga);
		double *x = malloc((size_t)(n ? n : 1) * sizeof(double));
		double *y = malloc((size_t)(n ? n : 1) * sizeof(double));
		tensor_read_f64(ga, x);
		tensor_read_f64(gb, y);
		for (int64_t k = 0; k < n; k++)
			worst = fmax(worst, fabs(x[k] - y[k]));
		free(x);
		free(y);
	}
	return worst;
}

TEST(bloom_device_copy_keeps_names_shards_and_bits)
{
	struct bloom_config c = bloom_config_make(37, 24, 3, 3);
	struct bloom_model a, b;
	bloom_model_init(&a, &c, DT_F32, true);
	bloom_model_init_weights(&a, 5);
	bloom_model_to_device(&b, &a, NULL, true);
	REQUIRE(b.table.n == a.table.n);
	for (int i = 0; i < a.table.n; i++) {
		const struct param *p = &a.table.items[i], *q = &b.table.items[i];
		CHECK(strcmp(p->name, q->name) == 0 && p->no_decay == q->no_decay);
		CHECK(p->shard.dim == q->shard.dim && tensor_same_shape(p->t, q->t));
		CHECK(q->t->grad && q->t->data != p->t->data);
		CHECK(memcmp(p->t->data, q->t->data, tensor_nbytes(p->t)) == 0);
	}
	CHECK(memcmp(a.slopes->data, b.slopes->data, tensor_nbytes(a.slopes)) == 0);
	CHECK(b.params.n_chunk_allocs == 1);
	static double la[B * T * 37], lb[B * T * 37];
	double l1 = loss_of(&a, false, la), l2 = loss_of(&b, false, lb);
	CHECK(l1 == l2 && memcmp(la, lb, sizeof(la)) == 0);
	/* copy_weights: b's values back into a fresh model */
	struct bloom_model c2;
	bloom_model_init(&c2, &c, DT_F32, false);
	bloom_model_copy_weights(&c2, &b);
	for (int i = 0; i < a.table.n; i++)
		CHECK(memcmp(a.table.items[i].t->data, c2.table.items[i].t->data,
			     tensor_nbytes(a.table.items[i].t)) == 0);
	bloom_model_free(&c2);
	bloom_model_free(&b);
	bloom_model_free(&a);
}

TEST(bloom_device_cast_view_trains_the_master_weights)
{
	struct bloom_config c = bloom_config_make(37, 24, 3, 3);
	struct bloom_model m64, m32;
	bloom_model_init(&m64, &c, DT_F64, true);
	bloom_model_init_weights(&m64, 9);
	bloom_model_init(&m32, &c, DT_F32, true);
	copy_values(&m32.table, &m64.table); /* the f32 model: the rounded f64 one */
	static double l64[B * T * 37], l32[B * T * 37];
	double a = loss_of(&m64, true, l64), b = loss_of(&m32, false, l32);
	CHECK(a == b);
	CHECK(memcmp(l64, l32, sizeof(l64)) == 0);
	/* the f32 gradients, carried to the f64 masters exactly */
	double worst = grad_diff(&m64.table, &m32.table);
	printf("(master grads vs f32 model: %.2g) ", worst);
	CHECK(worst == 0);
	bloom_model_free(&m32);
	bloom_model_free(&m64);
}

/* The position (from the end of the tape, 0 = last recorded) of the cast
 * node reading `master`, or -1. */
static int cast_position(const struct ag_ctx *ctx, const struct tensor *master)
{
	int pos = 0;
	for (const struct ag_node *n = ctx->tape; n; n = n->prev, pos++)
		if (n->op == AG_OP_CAST && n->in[0] == master)
			return pos;
	return -1;
}

/* Linear nodes recorded after position `late` and before position `early`
 * (positions from the end, early > late). */
static int linears_between(const struct ag_ctx *ctx, int early, int late)
{
	int pos = 0, count = 0;
	for (const struct ag_node *n = ctx->tape; n; n = n->prev, pos++)
		count += pos > late && pos < early && n->op == AG_OP_LINEAR;
	return count;
}

/* Each block's weights are cast just before the block runs, not all up
 * front: so backward completes each block's master gradients right after
 * that block's backward (where data parallelism starts its all-reduce),
 * instead of every gradient at the very end. */
TEST(bloom_device_cast_view_casts_each_block_where_it_runs)
{
	struct bloom_config c = bloom_config_make(37, 24, 3, 3);
	struct bloom_model m;
	bloom_model_init(&m, &c, DT_F64, true);
	bloom_model_init_weights(&m, 9);
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *ids, *labels;
	make_ids(&e.model, &ids, &labels);
	struct bloom_model view;
	REQUIRE(bloom_model_cast(&e.ctx, &m, DT_F32, &view));
	REQUIRE(bloom_forward(&e.ctx, &view, ids, NULL));
	int wte = cast_position(&e.ctx, m.wte), lnf = cast_position(&e.ctx, m.lnf_w);
	CHECK(wte >= 0 && lnf >= 0);
	int prev = wte;
	for (int l = 0; l < c.n_layer; l++) {
		int ln1 = cast_position(&e.ctx, m.layers[l].ln1_w);
		int fc2 = cast_position(&e.ctx, m.layers[l].fc2_w);
		CHECK(ln1 >= 0 && fc2 >= 0 && fc2 < ln1 && ln1 < prev);
		/* the previous block's four linears lie between its casts and these */
		if (l > 0)
			CHECK(linears_between(&e.ctx, prev, ln1) == 4);
		prev = fc2;
	}
	CHECK(lnf < prev && linears_between(&e.ctx, prev, lnf) == 4);
	ag_env_free(&e);
	bloom_model_free(&m);
}

/* An adapted model: dt base + adapters on every linear (r 4). */
static void adapted(struct bloom_model *m, struct lora_model *lm, enum dtype dt)
{
	struct bloom_config c = bloom_config_make(37, 24, 3, 3);
	struct hug_error err = { 0 };
	struct lora_config lc;
	const char *targets[] = { "query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h" };
	bloom_model_init(m, &c, dt, false);
	bloom_model_init_weights(m, 9);
	lora_config_init(&lc);
	lc.r = 4;
	lora_config_set_targets(&lc, targets, 4);
	if (lora_model_init(lm, BLOOM_M(m), &lc, true, "", &err))
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	lora_model_init_weights(lm, 3);
	lora_config_free(&lc);
}

TEST(bloom_device_cast_view_casts_lora_adapters)
{
	struct bloom_model m64, m32;
	struct lora_model l64, l32;
	adapted(&m64, &l64, DT_F64);
	adapted(&m32, &l32, DT_F32);
	for (int i = 0; i < l64.n; i++) /* B away from zero, so adapters count */
		for (int64_t k = 0; k < tensor_numel(l64.sites[i].ad.b); k++)
			((double *)l64.sites[i].ad.b->data)[k] = 0.01 * (double)((k * 7 + i) % 11 - 5);
	copy_values(&m32.table, &m64.table);
	copy_values(&l32.table, &l64.table);
	static double a64[B * T * 37], a32[B * T * 37];
	double a = loss_of(&m64, true, a64), b = loss_of(&m32, false, a32);
	CHECK(a == b && memcmp(a64, a32, sizeof(a64)) == 0);
	double worst = grad_diff(&l64.table, &l32.table);
	printf("(adapter grads vs f32 adapters: %.2g) ", worst);
	CHECK(worst == 0);
	lora_model_free(&l32);
	lora_model_free(&l64);
	bloom_model_free(&m32);
	bloom_model_free(&m64);
}
