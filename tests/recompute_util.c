/* recompute_util.c: the training step of recompute_util.h. */
#include "recompute_util.h"

#include <stdio.h>
#include <string.h>

#include "../autograd/backend.h"
#include "../autograd/checkpoint.h"
#include "../base/alloc.h"

static const int32_t IDS[2][9] = { { 5, 17, 3, 44, 60, 2, 11, 9, 31 },
				   { 8, 8, 21, 70, 1, 0, 63, 12, 4 } };
static const int32_t MASK[2][9] = { { 1, 1, 1, 1, 1, 1, 1, 1, 1 },
				    { 1, 1, 1, 1, 1, 1, 0, 0, 0 } };

/* ids, mask and next-token targets (2, 9) i32 in `a` (on its device),
 * ids below vocab. */
static void batch(struct arena *a, struct arena *host, int64_t vocab, struct tensor *out[3])
{
	struct tensor *h[3];
	for (int k = 0; k < 3; k++) {
		h[k] = tensor_new(host, DT_I32, TENSOR_SHAPE(2, 9));
		out[k] = tensor_new(a, DT_I32, TENSOR_SHAPE(2, 9));
	}
	int32_t *i = h[0]->data, *m = h[1]->data, *t = h[2]->data;
	for (int b = 0; b < 2; b++)
		for (int j = 0; j < 9; j++) {
			i[b * 9 + j] = IDS[b][j] % (int32_t)vocab;
			m[b * 9 + j] = MASK[b][j];
		}
	for (int b = 0; b < 2; b++)
		for (int j = 0; j < 9; j++)
			t[b * 9 + j] = j + 1 < 9 && MASK[b][j + 1] ? i[b * 9 + j + 1] : -100;
	for (int k = 0; k < 3; k++)
		tensor_transfer(out[k], h[k]);
}

static size_t grad_bytes(const struct param_table *pt)
{
	size_t n = 0;
	for (int i = 0; i < pt->n; i++)
		if (pt->items[i].t->grad)
			n += tensor_nbytes(pt->items[i].t->grad);
	return n;
}

int recompute_run(const struct model *m, const struct param_table *pt,
		  enum ag_recompute mode, int steps, struct recompute_result *r)
{
	return recompute_run_cast(m, pt, mode, model_parts(m).dtype, steps, r);
}

int recompute_run_cast(const struct model *m, const struct param_table *pt,
		       enum ag_recompute mode, enum dtype dt, int steps,
		       struct recompute_result *r)
{
	enum device dev = model_parts(m).device;
	const struct arena_allocator *on = ag_device_allocator(dev);
	const struct ag_backend *be = ag_backend_get(dev);
	struct arena host, inputs, step;
	arena_init(&host, "host", 0, NULL);
	arena_init(&inputs, "inputs", 0, on);
	arena_init(&step, "step", 0, on);
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &step);
	ctx.recompute = mode;
	ctx.seed = 7;
	ctx.training = true;
	for (int i = 0; i < pt->n; i++)
		if (pt->items[i].t->grad)
			be->fill(pt->items[i].t->grad, 0.0);
	struct tensor *in[3]; /* ids, mask, targets */
	batch(&inputs, &host, model_dims(m).vocab_size, in);
	memset(r, 0, sizeof(*r));
	int rc = 0;
	uint64_t after_first = 0;
	struct model view = { 0 };
	const struct model *fm = m;
	for (int s = 0; s < steps && !rc; s++) {
		ag_ctx_reset(&ctx);
		if (s == 1)
			after_first = hug_alloc_count();
		if (dt != model_parts(m).dtype) {
			if (!model_cast(&ctx, m, dt, &view)) {
				fprintf(stderr, "recompute_run: cast: %s\n", ctx.err.msg);
				rc = -1;
				break;
			}
			fm = &view;
		}
		struct tensor *logits = model_forward(&ctx, fm, in[0], in[1]);
		struct tensor *loss = model_loss(&ctx, fm, logits, in[2]);
		if (!loss || ag_backward(&ctx, loss)) {
			fprintf(stderr, "recompute_run: %s\n", ctx.err.msg);
			rc = -1;
			break;
		}
		r->loss = tensor_item(loss);
	}
	r->allocs_late = steps > 1 ? hug_alloc_count() - after_first : 0;
	r->step_peak = step.high_water;
	r->scratch_peak = ag_recompute_scratch_peak(&ctx);
	r->bytes = grad_bytes(pt);
	r->grads = hug_malloc(r->bytes ? r->bytes : 1);
	size_t off = 0;
	for (int i = 0; i < pt->n; i++) {
		const struct tensor *g = pt->items[i].t->grad;
		if (!g)
			continue;
		ag_memcpy(r->grads + off, DEV_CPU, g->data, g->device, tensor_nbytes(g));
		off += tensor_nbytes(g);
	}
	model_view_free(&view);
	ag_ctx_free(&ctx);
	arena_free(&step);
	arena_free(&inputs);
	arena_free(&host);
	return rc;
}

int recompute_first_diff(const struct param_table *pt, const struct recompute_result *a,
			 const struct recompute_result *b, const char **name)
{
	*name = "(sizes)";
	if (a->bytes != b->bytes)
		return 1;
	size_t off = 0;
	for (int i = 0; i < pt->n; i++) {
		const struct tensor *g = pt->items[i].t->grad;
		if (!g)
			continue;
		size_t n = tensor_nbytes(g);
		if (memcmp(a->grads + off, b->grads + off, n)) {
			*name = pt->items[i].name;
			return i + 1;
		}
		off += n;
	}
	*name = "";
	return 0;
}
