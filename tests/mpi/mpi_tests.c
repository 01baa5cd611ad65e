/* mpi_tests.c: checks that need several processes, run under
 * `mpirun -np N build/bin/hug_mpi_tests SCENARIO` by tests/test_mpi.c (and
 * by hand). Each scenario prints what it measured on rank 0 and exits 0 when
 * every rank passed, 1 otherwise.
 *
 *   tp_parity DIR   the HF fixture model at DIR under tensor parallelism
 *                   over all ranks against the same model in one process:
 *                   logits, loss and every gradient (f64 and f32)
 *   tp_random       the same on a random model with 6 heads (3 per rank at
 *                   -np 2) and padding
 *   tp_family DIR   tp_parity through the model interface, for a fixture of
 *                   any family (the Llama-style ones: key/value heads split,
 *                   or replicated when fewer than the ranks)
 *   tp_mqa          the same on a random multi-query Qwen2 (4 query heads
 *                   over 1 key/value head, q/k/v biases, untied head): the
 *                   key/value head replicated over every rank
 *   tp_plan         the memory plan's step terms against the step arena
 *                   (tests/mpi/mpi_plan.c)
 *   tp_recompute DIR  the fixture under tensor parallelism over all ranks,
 *                   with dropout, trained one step under each activation
 *                   recomputation mode: each rank's gradients and the loss
 *                   the same bits as without recomputation */

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../base/alloc.h"
#include "../../base/panic.h"
#include "../../io/hf_checkpoint.h"
#include "../ag_env.h"
#include "../bloom_util.h"
#include "../recompute_util.h"
#include "../../nn/bloom.h"
#include "../../parallel/comm.h"

static struct parallel par;

static const int32_t IDS[2][9] = { { 5, 17, 3, 44, 60, 2, 11, 9, 31 },
				   { 8, 8, 21, 70, 1, 0, 63, 12, 4 } };
static const int32_t MASK[2][9] = { { 1, 1, 1, 1, 1, 1, 1, 1, 1 },
				    { 1, 1, 1, 1, 1, 1, 0, 0, 0 } };

/* Fills (B, T) i32 tensors of ids, mask and next-token targets. */
static void batch(struct arena *a, int64_t vocab, struct tensor **ids, struct tensor **mask,
		  struct tensor **tgt)
{
	*ids = tensor_new(a, DT_I32, TENSOR_SHAPE(2, 9));
	*mask = tensor_new(a, DT_I32, TENSOR_SHAPE(2, 9));
	*tgt = tensor_new(a, DT_I32, TENSOR_SHAPE(2, 9));
	int32_t *i = (*ids)->data, *m = (*mask)->data, *t = (*tgt)->data;
	for (int b = 0; b < 2; b++)
		for (int j = 0; j < 9; j++) {
			i[b * 9 + j] = IDS[b][j] % (int32_t)vocab;
			m[b * 9 + j] = MASK[b][j];
		}
	for (int b = 0; b < 2; b++)
		for (int j = 0; j < 9; j++)
			t[b * 9 + j] = j + 1 < 9 && MASK[b][j + 1] ? i[b * 9 + j + 1] : -100;
}

/* Forward + backward of m on the batch; returns logits (host, f64 copy
 * owned by the caller) and the loss. */
static double *run(struct bloom_model *m, double *loss)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	e.ctx.training = false;
	struct tensor *ids, *mask, *tgt;
	batch(&e.model, m->cfg.vocab_size, &ids, &mask, &tgt);
	struct tensor *logits = bloom_forward(&e.ctx, m, ids, mask);
	struct tensor *l = bloom_loss(&e.ctx, m, logits, tgt);
	if (!l || ag_backward(&e.ctx, l))
		hug_panic("rank %d: %s", par.world_rank, e.ctx.err.msg);
	tensor_read_f64(l, loss);
	double *out = hug_malloc(tensor_nbytes(logits) / dtype_size(logits->dtype) * sizeof(double));
	tensor_read_f64(logits, out);
	ag_env_free(&e);
	return out;
}

static double rel(double diff, double ref)
{
	return diff / (ref > 1e-30 ? ref : 1e-30);
}

/* Compares the TP model (this rank's shards) with the full model. */
static int compare(struct bloom_model *full, struct bloom_model *tp, double tol, const char *what)
{
	double lf, lt;
	double *ref = run(full, &lf), *got = run(tp, &lt);
	int64_t v = full->cfg.vocab_size, v0, vl, rows = 2 * 9;
	bloom_vocab_slice(tp, &v0, &vl);
	double dmax = 0, rmax = 0;
	for (int64_t r = 0; r < rows; r++)
		for (int64_t k = 0; k < vl; k++) {
			dmax = fmax(dmax, fabs(got[r * vl + k] - ref[r * v + v0 + k]));
			rmax = fmax(rmax, fabs(ref[r * v + v0 + k]));
		}
	double e_logits = rel(dmax, rmax), e_loss = rel(fabs(lt - lf), fabs(lf)), e_grad = 0;
	const char *worst = "";
	struct arena tmp;
	arena_init(&tmp, "tmp", 0, NULL);
	for (int i = 0; i < tp->table.n; i++) {
		struct param *p = &tp->table.items[i];
		struct param *q = param_table_find(&full->table, p->name);
		struct tensor *want = tensor_new_like(&tmp, p->t);
		param_slice_from_full(p, q->t->grad, want);
		int64_t n = tensor_numel(want);
		double *a = hug_malloc((size_t)n * sizeof(double)), *b = hug_malloc((size_t)n * sizeof(double));
		tensor_read_f64(want, a);
		tensor_read_f64(p->t->grad, b);
		double d = 0, m = 0;
		for (int64_t k = 0; k < n; k++) {
			d = fmax(d, fabs(a[k] - b[k]));
			m = fmax(m, fabs(a[k]));
		}
		if (rel(d, m) > e_grad) {
			e_grad = rel(d, m);
			worst = p->name;
		}
		hug_free(a);
		hug_free(b);
	}
	arena_free(&tmp);
	double e[3] = { e_logits, e_loss, e_grad };
	comm_allreduce(&par.world, e, 3, DT_F64, COMM_MAX);
	int ok = e[0] <= tol && e[1] <= tol && e[2] <= tol;
	if (parallel_is_main(&par))
		printf("%s tp=%d: logits %.2g, loss %.2g, gradients %.2g (worst on rank 0: %s): %s\n",
		       what, tp->tp.size, e[0], e[1], e[2], worst, ok ? "ok" : "FAIL");
	hug_free(ref);
	hug_free(got);
	return ok ? 0 : 1;
}

/* A TP model holding this rank's shards of `full`. */
static void shard_of(const struct bloom_model *full, struct bloom_model *tp)
{
	struct model_tp t = { .rank = par.tp_rank, .size = par.tp,
			      .coll = comm_collective(&par.tp_group) };
	bloom_model_init_tp(tp, &full->cfg, full->dtype, true, &t);
	for (int i = 0; i < tp->table.n; i++) {
		struct param *p = &tp->table.items[i];
		param_slice_from_full(p, param_table_find(&full->table, p->name)->t, p->t);
	}
}

static int parity(struct bloom_model *full, const char *what, double tol)
{
	struct bloom_model tp;
	shard_of(full, &tp);
	int rc = compare(full, &tp, tol, what);
	bloom_model_free(&tp);
	return rc;
}

static int tp_parity(const char *dir)
{
	int rc = 0;
	struct hug_error err = { 0 };
	enum dtype dts[2] = { DT_F64, DT_F32 };
	for (int k = 0; k < 2; k++) {
		struct bloom_model full;
		if (hf_bloom_load(dir, dts[k], true, &full, &err))
			hug_panic("%s", err.msg);
		char what[300];
		snprintf(what, sizeof(what), "%s %s", dir, dtype_name(dts[k]));
		rc |= parity(&full, what, dts[k] == DT_F64 ? 1e-10 : 1e-5);
		bloom_model_free(&full);
	}
	return rc;
}

static int tp_random(void)
{
	int rc = 0;
	enum dtype dts[2] = { DT_F64, DT_F32 };
	for (int k = 0; k < 2; k++) {
		struct bloom_config c = bloom_config_make(75, 24, 2, 6);
		c.apply_residual_connection_post_layernorm = k == 1;
		struct bloom_model full;
		bloom_model_init(&full, &c, dts[k], true);
		full.cfg.initializer_range = 0.3;
		bloom_model_init_weights(&full, 99);
		rc |= parity(&full, dts[k] == DT_F64 ? "random 6 heads f64" : "random 6 heads post-LN f32",
			     dts[k] == DT_F64 ? 1e-10 : 1e-5);
		bloom_model_free(&full);
	}
	return rc;
}

/* ---- any family, through the model interface ---- */

static double *model_run(const struct model *m, double *loss)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	e.ctx.training = false;
	struct tensor *ids, *mask, *tgt;
	batch(&e.model, model_dims(m).vocab_size, &ids, &mask, &tgt);
	struct tensor *logits = model_forward(&e.ctx, m, ids, mask);
	struct tensor *l = model_loss(&e.ctx, m, logits, tgt);
	if (l)
		ag_backward(&e.ctx, l);
	if (ag_failed(&e.ctx))
		hug_panic("rank %d: %s", par.world_rank, e.ctx.err.msg);
	tensor_read_f64(l, loss);
	double *out = hug_malloc(tensor_nbytes(logits) / dtype_size(logits->dtype) * sizeof(double));
	tensor_read_f64(logits, out);
	ag_env_free(&e);
	return out;
}

static int model_compare(const struct model *full, const struct model *tp, double tol,
			 const char *what)
{
	double lf, lt;
	double *ref = model_run(full, &lf), *got = model_run(tp, &lt);
	int64_t v = model_dims(full).vocab_size, v0, vl, rows = 2 * 9;
	model_vocab_slice(tp, &v0, &vl);
	double dmax = 0, rmax = 0;
	for (int64_t r = 0; r < rows; r++)
		for (int64_t k = 0; k < vl; k++) {
			dmax = fmax(dmax, fabs(got[r * vl + k] - ref[r * v + v0 + k]));
			rmax = fmax(rmax, fabs(ref[r * v + v0 + k]));
		}
	double e_logits = rel(dmax, rmax), e_loss = rel(fabs(lt - lf), fabs(lf)), e_grad = 0;
	const char *worst = "";
	struct arena tmp;
	arena_init(&tmp, "tmp", 0, NULL);
	struct param_table *pt = model_params(tp), *pf = model_params(full);
	for (int i = 0; i < pt->n; i++) {
		struct param *p = &pt->items[i];
		struct param *q = param_table_find(pf, p->name);
		struct tensor *want = tensor_new_like(&tmp, p->t);
		param_slice_from_full(p, q->t->grad, want);
		int64_t n = tensor_numel(want);
		double *a = hug_malloc((size_t)n * sizeof(double)), *b = hug_malloc((size_t)n * sizeof(double));
		tensor_read_f64(want, a);
		tensor_read_f64(p->t->grad, b);
		double d = 0, mx = 0;
		for (int64_t k = 0; k < n; k++) {
			d = fmax(d, fabs(a[k] - b[k]));
			mx = fmax(mx, fabs(a[k]));
		}
		if (rel(d, mx) > e_grad) {
			e_grad = rel(d, mx);
			worst = p->name;
		}
		hug_free(a);
		hug_free(b);
	}
	arena_free(&tmp);
	double e[3] = { e_logits, e_loss, e_grad };
	comm_allreduce(&par.world, e, 3, DT_F64, COMM_MAX);
	int ok = e[0] <= tol && e[1] <= tol && e[2] <= tol;
	if (parallel_is_main(&par))
		printf("%s tp=%d: logits %.2g, loss %.2g, gradients %.2g (worst on rank 0: %s): %s\n",
		       what, par.tp, e[0], e[1], e[2], worst, ok ? "ok" : "FAIL");
	hug_free(ref);
	hug_free(got);
	return ok ? 0 : 1;
}

/* tp_parity of `full` (any family, loaded or random) against the same
 * weights sliced over the tensor-parallel group, in dtype dt. */
static int tp_family_compare(struct model *full, enum dtype dt, const char *what)
{
	struct model tp = { 0 };
	struct model_config cfg;
	model_config_of(full, &cfg);
	struct model_tp t = { .rank = par.tp_rank, .size = par.tp,
			      .coll = comm_collective(&par.tp_group) };
	model_init(&tp, &cfg, dt, true, &t, NULL);
	struct param_table *pt = model_params(&tp);
	for (int i = 0; i < pt->n; i++) {
		struct param *p = &pt->items[i];
		param_slice_from_full(p, param_table_find(model_params(full), p->name)->t, p->t);
	}
	int rc = model_compare(full, &tp, dt == DT_F64 ? 1e-10 : 1e-5, what);
	model_free(&tp);
	return rc;
}

static int tp_family(const char *dir)
{
	int rc = 0;
	struct hug_error err = { 0 };
	enum dtype dts[2] = { DT_F64, DT_F32 };
	for (int k = 0; k < 2; k++) {
		struct model full = { 0 };
		if (hf_model_load(dir, dts[k], true, &full, &err))
			hug_panic("%s", err.msg);
		char what[300];
		snprintf(what, sizeof(what), "%s %s", dir, dtype_name(dts[k]));
		rc |= tp_family_compare(&full, dts[k], what);
		model_free(&full);
	}
	return rc;
}

static int tp_mqa(void)
{
	struct model_config cfg;
	const struct model_sizes s = { .vocab_size = 61, .hidden_size = 32, .n_layer = 2,
				       .n_head = 4 };
	model_config_make(&cfg, model_family_find("qwen2"), &s);
	if (model_config_set(&cfg, "num_key_value_heads", 1) ||
	    model_config_set(&cfg, "intermediate_size", 48) ||
	    model_config_set(&cfg, "tie_word_embeddings", 0))
		hug_panic("qwen2 has no num_key_value_heads / intermediate_size / tie_word_embeddings");
	int rc = 0;
	enum dtype dts[2] = { DT_F64, DT_F32 };
	for (int k = 0; k < 2; k++) {
		struct model full = { 0 };
		model_init(&full, &cfg, dts[k], true, NULL, NULL);
		model_init_weights(&full, 1234);
		/* transformers initialises biases to 0: make them count */
		struct param_table *pt = model_params(&full);
		for (int i = 0; i < pt->n; i++)
			if (strstr(pt->items[i].name, "_proj.bias")) {
				struct tensor *b = pt->items[i].t;
				for (int64_t j = 0; j < b->shape[0]; j++) {
					double v = 0.4 * sin(0.7 * (double)j + (double)i);
					if (b->dtype == DT_F64)
						((double *)b->data)[j] = v;
					else
						((float *)b->data)[j] = (float)v;
				}
			}
		char what[64];
		snprintf(what, sizeof(what), "random qwen2 4/1 heads %s", dtype_name(dts[k]));
		rc |= tp_family_compare(&full, dts[k], what);
		model_free(&full);
	}
	return rc;
}

int mpi_tp_plan(const struct parallel *par); /* mpi_plan.c */

static int tp_recompute(const char *dir)
{
	struct hug_error err = { 0 };
	struct model full = { 0 }, tp = { 0 };
	struct model_config cfg;
	if (hf_model_load(dir, DT_F32, true, &full, &err))
		hug_panic("%s", err.msg);
	model_config_of(&full, &cfg);
	if (model_config_set(&cfg, "attention_dropout", 0.1))
		hug_panic("%s: no attention_dropout", dir);
	model_config_set(&cfg, "hidden_dropout", 0.1); /* BLOOM only */
	struct model_tp t = { .rank = par.tp_rank, .size = par.tp,
			      .coll = comm_collective(&par.tp_group) };
	model_init(&tp, &cfg, DT_F32, true, &t, NULL);
	struct param_table *pt = model_params(&tp);
	for (int i = 0; i < pt->n; i++) {
		struct param *p = &pt->items[i];
		param_slice_from_full(p, param_table_find(model_params(&full), p->name)->t, p->t);
	}
	struct recompute_result ref, got;
	int bad = recompute_run(&tp, pt, AG_RECOMPUTE_NONE, 2, &ref) != 0;
	const char *names[] = { "none", "block", "selective" };
	for (int k = 1; k < 3 && !bad; k++) {
		const char *name;
		bad = recompute_run(&tp, pt, (enum ag_recompute)k, 2, &got) != 0;
		if (!bad && (recompute_first_diff(pt, &ref, &got, &name) ||
			     memcmp(&ref.loss, &got.loss, sizeof(double)))) {
			fprintf(stderr, "rank %d: %s %s: %s differs\n", par.world_rank, dir,
				names[k], *name ? name : "the loss");
			bad = 1;
		}
		if (!bad)
			hug_free(got.grads);
	}
	comm_allreduce(&par.world, &bad, 1, DT_I32, COMM_MAX);
	if (parallel_is_main(&par))
		printf("%s tp=%d: block and selective recomputation give none's bits: %s\n", dir,
		       par.tp, bad ? "FAIL" : "ok");
	hug_free(ref.grads);
	model_free(&tp);
	model_free(&full);
	return bad;
}

int main(int argc, char **argv)
{
	struct hug_error err = { 0 };
	if (parallel_init(&par, &err) || parallel_set_layout(&par, par.world_size, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	int rc = 2;
	if (argc >= 3 && !strcmp(argv[1], "tp_parity"))
		rc = tp_parity(argv[2]);
	else if (argc >= 2 && !strcmp(argv[1], "tp_random"))
		rc = tp_random();
	else if (argc >= 3 && !strcmp(argv[1], "tp_family"))
		rc = tp_family(argv[2]);
	else if (argc >= 2 && !strcmp(argv[1], "tp_mqa"))
		rc = tp_mqa();
	else if (argc >= 2 && !strcmp(argv[1], "tp_plan"))
		rc = mpi_tp_plan(&par);
	else if (argc >= 3 && !strcmp(argv[1], "tp_recompute"))
		rc = tp_recompute(argv[2]);
	else if (parallel_is_main(&par))
		fprintf(stderr, "usage: hug_mpi_tests tp_parity DIR | tp_random | tp_family DIR | "
			"tp_mqa | tp_plan | tp_recompute DIR\n");
	comm_allreduce(&par.world, &rc, 1, DT_I32, COMM_MAX);
	parallel_finalize(&par);
	return rc;
}
