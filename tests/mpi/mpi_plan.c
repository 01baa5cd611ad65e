/* mpi_plan.c: the memory plan (train/mem_plan.c) under tensor parallelism:
 * one training step's step-arena high-water mark on every rank against the
 * plan's activation and logits terms (`hug_mpi_tests tp_plan`, run by
 * tests/test_mpi.c). */
#include <stdio.h>
#include <string.h>

#include "../../base/panic.h"
#include "../../nn/model.h"
#include "../../parallel/comm.h"
#include "../../train/mem_plan.h"
#include "../ag_env.h"

/* One forward + loss + backward of a random model of family `arch` at
 * (b, t) on this rank's tensor slice; 0 when the arena's high-water mark
 * is within 2% of the plan on every rank. */
static int one(const struct parallel *par, const char *arch, const struct model_sizes *s,
	       int kv_heads, int64_t b, int64_t t)
{
	struct model_config cfg;
	model_config_make(&cfg, model_family_find(arch), s);
	if (kv_heads && model_config_set(&cfg, "num_key_value_heads", kv_heads))
		hug_panic("%s: no num_key_value_heads", arch);
	struct model m = { 0 };
	struct model_tp tp = { .rank = par->tp_rank, .size = par->tp,
			       .coll = comm_collective(&par->tp_group) };
	model_init(&m, &cfg, DT_F32, true, &tp, NULL);
	model_init_weights(&m, 7);
	model_config_of(&m, &cfg);
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *ids = tensor_new(&e.model, DT_I32, TENSOR_SHAPE(b, t));
	struct tensor *tgt = tensor_new(&e.model, DT_I32, TENSOR_SHAPE(b, t));
	for (int64_t i = 0; i < b * t; i++) {
		((int32_t *)ids->data)[i] = (int32_t)((i * 7 + 3) % s->vocab_size);
		((int32_t *)tgt->data)[i] = (int32_t)((i * 5 + 1) % s->vocab_size);
	}
	struct tensor *loss = model_loss(&e.ctx, &m, model_forward(&e.ctx, &m, ids, NULL), tgt);
	if (!loss || ag_backward(&e.ctx, loss))
		hug_panic("rank %d: %s", par->world_rank, e.ctx.err.msg);
	struct mem_layout l;
	struct mem_plan p;
	mem_layout_default(&l);
	l.tp = par->tp;
	l.micro_batch = b;
	l.seq_len = t;
	mem_plan_compute(&cfg, &l, &p);
	double got = (double)e.step.high_water, want = (double)(p.activations + p.logits);
	double r[1] = { got > 0 ? (want - got) / got : 1.0 };
	double worst[1] = { r[0] < 0 ? -r[0] : r[0] };
	comm_allreduce(&par->world, worst, 1, DT_F64, COMM_MAX);
	int ok = worst[0] <= 0.02;
	if (parallel_is_main(par))
		printf("%s tp=%d (%lld x %lld): step arena %.0f bytes, planned %.0f (%+.2f%%; worst "
		       "rank %.2f%%): %s\n", arch, par->tp, (long long)b, (long long)t, got, want,
		       100 * r[0], 100 * worst[0], ok ? "ok" : "FAIL");
	ag_env_free(&e);
	model_free(&m);
	return ok ? 0 : 1;
}

int mpi_tp_plan(const struct parallel *par)
{
	int rc = 0;
	rc |= one(par, "bloom", &(struct model_sizes){ 256, 64, 2, 8 }, 0, 2, 48);
	rc |= one(par, "llama", &(struct model_sizes){ 256, 64, 2, 8 }, 4, 2, 40);
	rc |= one(par, "qwen3", &(struct model_sizes){ 128, 64, 2, 8 }, 4, 2, 64);
	return rc;
}
