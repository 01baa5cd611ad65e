/* generate.c: sampling and the KV-cached generation loop. */
#include "generate.h"

#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "../autograd/backend.h"
#include "../autograd/rng.h"
#include "../base/alloc.h"
#include "../base/clock.h"

struct gen_opts gen_opts_default(void)
{
	return (struct gen_opts){ .max_new_tokens = 32, .temperature = 1.0,
				  .top_p = 1.0,
				  .max_memory = GEN_DEFAULT_MAX_MEMORY };
}

double gen_memory_estimate(const struct model_config *cfg, int64_t n_prompt, int64_t max_new)
{
	const struct model_dims *c = &cfg->dims;
	double t = (double)n_prompt + (double)max_new, p = (double)n_prompt;
	double h = (double)c->hidden_size, v = (double)c->vocab_size;
	/* the cache holds the key/value heads only (grouped-query attention) */
	double kv = 2.0 * c->n_layer * t * (double)c->n_kv_head * (double)c->head_dim;
	double scores = 2.0 * c->n_head * p * p;
	double act = p * (16.0 * h + v);
	return 4.0 * (kv + scores + act);
}

int gen_check_size(const struct model_config *c, int64_t n_prompt, int64_t max_new,
		   double max_memory, struct hug_error *err)
{
	double t = (double)n_prompt + (double)max_new;
	if (t > GEN_MAX_POSITIONS)
		return hug_error_set(err, "prompt of %lld ids + max-new-tokens %lld = %.0f positions: "
				     "at most %d", (long long)n_prompt, (long long)max_new, t,
				     GEN_MAX_POSITIONS);
	double need = gen_memory_estimate(c, n_prompt, max_new);
	if (need > max_memory)
		return hug_error_set(err, "prompt of %lld ids + max-new-tokens %lld would need about "
				     "%.3g GiB (KV cache and attention scores), over the %.3g GiB "
				     "bound (--max-memory)", (long long)n_prompt, (long long)max_new,
				     need / 1073741824.0, max_memory / 1073741824.0);
	return 0;
}

int gen_opts_add_stop(struct gen_opts *o, int32_t id)
{
	if (id < 0)
		return -1;
	for (int k = 0; k < o->n_stop; k++)
		if (o->stop_ids[k] == id)
			return 0;
	if (o->n_stop >= GEN_MAX_STOP)
		return -1;
	o->stop_ids[o->n_stop++] = id;
	return 0;
}

void gen_opts_stop_at_eos(struct gen_opts *o, const struct model_dims *d)
{
	if (d->eos_token_id >= 0)
		gen_opts_add_stop(o, d->eos_token_id);
	for (int k = 0; k < d->n_eos_more; k++)
		gen_opts_add_stop(o, d->eos_more[k]);
}

static bool is_stop(const struct gen_opts *o, int32_t tok)
{
	for (int k = 0; k < o->n_stop; k++)
		if (o->stop_ids[k] == tok)
			return true;
	return false;
}

int gen_opts_validate(const struct gen_opts *o, struct hug_error *err)
{
	if (o->max_new_tokens <= 0)
		return hug_error_set(err, "max-new-tokens: expected > 0, got %d", o->max_new_tokens);
	if (!o->greedy && !(o->temperature >= 0))
		return hug_error_set(err, "temperature: expected >= 0, got %g", o->temperature);
	if (o->top_k < 0)
		return hug_error_set(err, "top-k: expected >= 0, got %d", o->top_k);
	if (!(o->top_p > 0 && o->top_p <= 1))
		return hug_error_set(err, "top-p: expected in (0, 1], got %g", o->top_p);
	if (!(o->max_memory > 0))
		return hug_error_set(err, "max-memory: expected > 0, got %g", o->max_memory);
	return 0;
}

/* Descending by logit, then ascending by id (a total order). */
static int by_logit_desc(const void *a, const void *b, void *keys)
{
	const double *k = keys;
	int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
	if (k[i] != k[j])
		return k[i] > k[j] ? -1 : 1;
	return (i > j) - (i < j);
}

int32_t gen_sample(const double *logits, int64_t v, const struct gen_opts *o,
		   uint64_t step, double *work, int32_t *iwork)
{
	int32_t best = 0;
	for (int64_t i = 1; i < v; i++)
		if (logits[i] > logits[best])
			best = (int32_t)i;
	if (o->greedy || o->temperature == 0.0)
		return best;
	/* candidates sorted by logit, cut to top-k */
	for (int64_t i = 0; i < v; i++)
		iwork[i] = (int32_t)i;
	qsort_r(iwork, (size_t)v, sizeof(*iwork), by_logit_desc, (void *)logits);
	int64_t n = o->top_k > 0 && o->top_k < v ? o->top_k : v;
	/* softmax at temperature over the candidates, then the top-p cut */
	double *p = work, z = 0;
	for (int64_t i = 0; i < n; i++) {
		p[i] = exp((logits[iwork[i]] - logits[best]) / o->temperature);
		z += p[i];
	}
	double cum = 0;
	int64_t keep = n;
	for (int64_t i = 0; i < n; i++) {
		cum += p[i] / z;
		if (cum >= o->top_p) {
			keep = i + 1;
			break;
		}
	}
	double zk = 0;
	for (int64_t i = 0; i < keep; i++)
		zk += p[i];
	double u = (double)(rng_u64(o->seed, step) >> 11) * (1.0 / 9007199254740992.0) * zk;
	for (int64_t i = 0; i < keep; i++) {
		u -= p[i];
		if (u < 0)
			return iwork[i];
	}
	return iwork[keep - 1];
}

/* Copies row `row` of logits (.., V) (f32 or f64, host or device) into
 * doubles; `work` holds V floats. */
static void logits_row(const struct tensor *logits, int64_t row, double *out, float *work)
{
	int64_t v = logits->shape[logits->ndim - 1];
	size_t es = dtype_size(logits->dtype);
	if (logits->dtype == DT_F64) {
		ag_memcpy(out, DEV_CPU, (const char *)logits->data + (size_t)(row * v) * es,
			  logits->device, (size_t)v * es);
		return;
	}
	ag_memcpy(work, DEV_CPU, (const char *)logits->data + (size_t)(row * v) * es,
		  logits->device, (size_t)v * es);
	for (int64_t i = 0; i < v; i++)
		out[i] = work[i];
}

/* ids (1, n) on the model's device = the host ids. */
static void put_ids(struct tensor *ids, const int32_t *host)
{
	ag_memcpy(ids->data, ids->device, host, DEV_CPU, tensor_nbytes(ids));
}

/* Decoding one token at a time on the CPU runs hug's own (OpenMP) kernels on
 * one thread: a step's element-wise, norm and attention work is one row,
 * far too little to pay for waking and joining a thread team (on a busy
 * machine that cost grew a 2-thread decode to 5x the 1-thread time), so
 * decoding at N threads is never slower than at 1. The prompt's forward
 * pass keeps every thread; OpenBLAS keeps its own threads for large
 * products. Kernels give the same bits at any thread count. Returns the
 * previous thread count, to hand back to decode_threads_restore. */
static int decode_threads_begin(const struct model *m)
{
#ifdef _OPENMP
	int prev = omp_get_max_threads();
	if (model_parts(m).device == DEV_CPU)
		omp_set_num_threads(1);
	return prev;
#else
	(void)m;
	return 1;
#endif
}

static void decode_threads_restore(int prev)
{
#ifdef _OPENMP
	omp_set_num_threads(prev);
#else
	(void)prev;
#endif
}

int model_generate(const struct model *m, const int32_t *prompt, int n_prompt,
		   const struct gen_opts *o, int32_t *out, struct hug_error *err)
{
	struct model_config cfg;
	model_config_of(m, &cfg);
	if (gen_opts_validate(o, err))
		return -1;
	if (n_prompt < 1)
		return hug_error_set(err, "prompt: expected at least one token id");
	for (int i = 0; i < n_prompt; i++)
		if (prompt[i] < 0 || prompt[i] >= cfg.dims.vocab_size)
			return hug_error_set(err, "prompt: id %d at position %d is outside the "
					     "vocabulary [0, %lld)", prompt[i], i,
					     (long long)cfg.dims.vocab_size);
	if (gen_check_size(&cfg, n_prompt, o->max_new_tokens, o->max_memory, err))
		return -1;
	int64_t v = cfg.dims.vocab_size;
	double t0 = hug_seconds();
	struct model_kv *kv = model_kv_new(m, 1, n_prompt + o->max_new_tokens);
	struct arena step;
	arena_init(&step, "generate", 0, ag_device_allocator(model_parts(m).device));
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &step);
	ctx.training = false;
	ag_set_grad_enabled(&ctx, false);
	double *row = hug_malloc((size_t)v * 3 * sizeof(double));
	int32_t *iwork = hug_malloc((size_t)v * sizeof(int32_t));
	float *fwork = hug_malloc((size_t)v * sizeof(float));
	int n_out = 0, rc = 0;
	struct arena idmem;
	arena_init(&idmem, "generate-ids", 0, ag_device_allocator(model_parts(m).device));
	struct tensor *ids = tensor_new(&idmem, DT_I32, TENSOR_SHAPE(1, n_prompt));
	put_ids(ids, prompt);
	struct tensor *next = tensor_new(&idmem, DT_I32, TENSOR_SHAPE(1, 1));
	int threads = -1; /* the thread count before decoding (-1: prompt step) */
	while (n_out < o->max_new_tokens) {
		struct tensor *logits = model_forward_cached(&ctx, m, kv, ids, NULL);
		if (!logits) {
			rc = hug_error_set(err, "%s", ctx.err.msg);
			break;
		}
		logits_row(logits, ids->shape[1] - 1, row, fwork);
		int32_t tok = gen_sample(row, v, o, (uint64_t)n_out, row + v, iwork);
		out[n_out++] = tok;
		if (n_out == 1 && o->timing)
			o->timing->first_token_s = hug_seconds() - t0;
		if (is_stop(o, tok))
			break;
		ag_ctx_reset(&ctx);
		if (threads < 0)
			threads = decode_threads_begin(m);
		put_ids(next, &tok);
		ids = next;
	}
	if (threads >= 0)
		decode_threads_restore(threads);
	hug_free(row);
	hug_free(iwork);
	hug_free(fwork);
	arena_free(&step);
	arena_free(&idmem);
	model_kv_free(m, kv);
	if (o->timing) {
		o->timing->total_s = hug_seconds() - t0;
		o->timing->n_new = n_out;
	}
	return rc ? -1 : n_out;
}
