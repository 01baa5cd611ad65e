/* eval.c: `hug eval --model DIR --input FILE`: per-token loss and
 * perplexity of a checkpoint of any family on token-id sequences (a JSON
 * array of arrays), optionally dumping the logits to a safetensors file;
 * `--adapter DIR` applies a LoRA adapter (as hug generate does); on a GPU
 * with --device cuda. The result is JSON on stdout; the timing (tokens/s)
 * goes to stderr. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../autograd/backend.h"
#include "../base/alloc.h"
#include "../base/clock.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "../io/safetensors.h"
#include "../nn/generate.h"
#include "args.h"
#include "cli.h"
#include "device.h"
#include "load.h"

struct sequences {
	int n;
	int64_t max_len;
	int64_t *len;     /* n */
	int32_t **ids;    /* n arrays of len[i] */
};

static void sequences_free(struct sequences *s)
{
	for (int i = 0; i < s->n; i++)
		hug_free(s->ids[i]);
	hug_free(s->ids);
	hug_free(s->len);
	memset(s, 0, sizeof(*s));
}

/* Reads `path`: [[id, ...], ...], each id an integer in [0, vocab), each
 * sequence at least 2 long. Errors name the file and the [i][j] position. */
static int sequences_read(const char *path, int64_t vocab, struct sequences *s,
			  struct hug_error *err)
{
	memset(s, 0, sizeof(*s));
	char *text;
	if (fs_read_file(path, (size_t)1 << 30, &text, NULL, err))
		return -1;
	hug_json_init();
	cJSON *root = cJSON_Parse(text);
	hug_free(text);
	int rc = -1;
	if (!root || !cJSON_IsArray(root) || cJSON_GetArraySize(root) == 0) {
		hug_error_set(err, "%s: expected a non-empty JSON array of arrays of token ids", path);
		goto out;
	}
	s->n = cJSON_GetArraySize(root);
	s->len = hug_calloc((size_t)s->n, sizeof(*s->len));
	s->ids = hug_calloc((size_t)s->n, sizeof(*s->ids));
	for (int i = 0; i < s->n; i++) {
		cJSON *seq = cJSON_GetArrayItem(root, i);
		int n = cJSON_IsArray(seq) ? cJSON_GetArraySize(seq) : -1;
		if (n < 2) {
			hug_error_set(err, "%s: [%d]: expected an array of at least 2 token ids", path, i);
			goto out;
		}
		s->len[i] = n;
		s->max_len = n > s->max_len ? n : s->max_len;
		s->ids[i] = hug_malloc((size_t)n * sizeof(int32_t));
		for (int j = 0; j < n; j++) {
			cJSON *v = cJSON_GetArrayItem(seq, j);
			double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
			if (d != floor(d) || d < 0 || d >= (double)vocab) {
				hug_error_set(err, "%s: [%d][%d]: expected an integer id in [0, %lld)",
					      path, i, j, (long long)vocab);
				goto out;
			}
			s->ids[i][j] = (int32_t)d;
		}
	}
	rc = 0;
out:
	cJSON_Delete(root);
	if (rc)
		sequences_free(s);
	return rc;
}

/* Fills ids/mask (B, T) for sequences [first, first + b), right-padded. */
static void fill_batch(const struct sequences *s, int first, int b, int64_t t,
		       struct tensor *ids, struct tensor *mask)
{
	int32_t *id = ids->data, *mk = mask->data;
	for (int i = 0; i < b; i++)
		for (int64_t j = 0; j < t; j++) {
			bool in = j < s->len[first + i];
			id[i * t + j] = in ? s->ids[first + i][j] : 0;
			mk[i * t + j] = in;
		}
}

/* JSON has no NaN or Infinity: a non-finite loss (of the whole input or a
 * sequence) or perplexity is an error on stderr; returns 1 then, else 0. */
static int nonfinite_result(const struct sequences *s, const double *seq_loss, double loss)
{
	for (int i = 0; i < s->n; i++)
		if (!isfinite(seq_loss[i])) {
			fprintf(stderr, "hug eval: sequence %d: loss %g is not finite (the model "
				"overflows on this input)\n", i, seq_loss[i]);
			return 1;
		}
	if (!isfinite(loss) || !isfinite(exp(loss))) {
		fprintf(stderr, "hug eval: loss %g (perplexity %g) is not finite\n", loss, exp(loss));
		return 1;
	}
	return 0;
}

int cli_eval(int argc, char **argv)
{
	const char *model = NULL, *adapter = NULL, *input = NULL, *dump = NULL, *device = NULL;
	int batch = 8;
	bool help = false;
	const struct arg_spec specs[] = {
		{ "model", ARG_STR, &model, "checkpoint directory (config.json + safetensors)" },
		{ "adapter", ARG_STR, &adapter, "LoRA adapter directory (PEFT layout) to apply" },
		{ "input", ARG_STR, &input, "JSON file: an array of arrays of token ids" },
		{ "dump-logits", ARG_STR, &dump, "write logits (N, T, V) and the mask to this safetensors file" },
		{ "batch-size", ARG_INT, &batch, "sequences per forward pass (8)" },
		{ "device", ARG_STR, &device, "cpu (default), cuda or cuda:N" },
		{ "help", ARG_SWITCH, &help, "show this help" },
	};
	const int n_specs = (int)(sizeof(specs) / sizeof(specs[0]));
	struct hug_error err = { 0 };
	const char *pos[1];
	int n_pos = 0;
	if (args_parse_cmd("eval", argc, argv, specs, n_specs, pos, 0, &n_pos))
		return 2;
	if (help || !model || !input)
		return args_show_usage("usage: hug eval --model DIR --input FILE [options]\n",
				       specs, n_specs, help);
	if (batch <= 0) {
		fprintf(stderr, "hug eval: --batch-size: expected > 0, got %d\n", batch);
		return 2;
	}
	struct model m = { 0 };
	struct sequences s;
	/* a directory hug wrote carries checksums: a damaged file is refused */
	if (cli_model_load(model, adapter, &m, &err)) {
		fprintf(stderr, "hug eval: %s\n", err.msg);
		return 2;
	}
	struct model_config mc;
	model_config_of(&m, &mc);
	if (sequences_read(input, mc.dims.vocab_size, &s, &err) ||
	    cli_model_to_device(&m, device, &err)) {
		fprintf(stderr, "hug eval: %s\n", err.msg);
		sequences_free(&s);
		model_free(&m);
		return 2;
	}
	/* a forward pass over `batch` sequences of the longest length must fit
	 * the same memory bound as generation, refused before allocating */
	double need = (double)(batch < s.n ? batch : s.n) * gen_memory_estimate(&mc, s.max_len, 0);
	if (s.max_len > GEN_MAX_POSITIONS || need > GEN_DEFAULT_MAX_MEMORY) {
		fprintf(stderr, "hug eval: %s: sequences of up to %lld ids in batches of %d would need "
			"about %.3g GiB (at most %d ids and %.3g GiB)\n", input, (long long)s.max_len,
			batch, need / 1073741824.0, GEN_MAX_POSITIONS,
			GEN_DEFAULT_MAX_MEMORY / 1073741824.0);
		sequences_free(&s);
		model_free(&m);
		return 2;
	}
	int64_t v = mc.dims.vocab_size, t = s.max_len;
	struct arena step, keep, host;
	arena_init(&step, "eval", 0, ag_device_allocator(model_parts(&m).device));
	arena_init(&keep, "eval-out", 0, NULL);
	arena_init(&host, "eval-batch", 0, NULL);
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &step);
	ctx.training = false;
	ag_set_grad_enabled(&ctx, false);
	struct tensor *all_logits = dump ? tensor_zeros(&keep, DT_F32, TENSOR_SHAPE(s.n, t, v)) : NULL;
	struct tensor *all_mask = dump ? tensor_zeros(&keep, DT_I32, TENSOR_SHAPE(s.n, t)) : NULL;
	double *seq_loss = hug_calloc((size_t)s.n, sizeof(double));
	double total_nll = 0;
	int64_t total_tokens = 0, read_tokens = 0;
	int rc = 0;
	double t0 = hug_seconds();
	for (int first = 0; first < s.n && !rc; first += batch) {
		int b = s.n - first < batch ? s.n - first : batch;
		ag_ctx_reset(&ctx);
		arena_reset(&host);
		struct tensor *hids = tensor_new(&host, DT_I32, TENSOR_SHAPE(b, t));
		struct tensor *hmask = tensor_new(&host, DT_I32, TENSOR_SHAPE(b, t));
		fill_batch(&s, first, b, t, hids, hmask);
		struct tensor *ids = tensor_new(&step, DT_I32, TENSOR_SHAPE(b, t));
		struct tensor *mask = tensor_new(&step, DT_I32, TENSOR_SHAPE(b, t));
		tensor_transfer(ids, hids);
		tensor_transfer(mask, hmask);
		struct tensor *logits = model_forward(&ctx, &m, ids, mask); /* (b, T, V) */
		for (int i = 0; i < b && logits; i++) {
			int64_t n = s.len[first + i];
			struct tensor *lg = ag_slice(&ctx, ag_slice(&ctx, logits, 0, i, 1), 1, 0, n - 1);
			struct tensor *tg = ag_slice(&ctx, ag_slice(&ctx, ids, 0, i, 1), 1, 1, n - 1);
			struct tensor *loss = ag_cross_entropy(&ctx, lg, tg, -100);
			if (!loss)
				break;
			seq_loss[first + i] = tensor_item(loss);
			read_tokens += n;
			total_nll += seq_loss[first + i] * (double)(n - 1);
			total_tokens += n - 1;
		}
		if (ag_failed(&ctx)) {
			fprintf(stderr, "hug eval: %s\n", ctx.err.msg);
			rc = 1;
			break;
		}
		if (dump) {
			ag_memcpy((float *)all_logits->data + (int64_t)first * t * v, DEV_CPU,
				  logits->data, logits->device, tensor_nbytes(logits));
			memcpy((int32_t *)all_mask->data + (int64_t)first * t, hmask->data,
			       tensor_nbytes(hmask));
		}
	}
	double seconds = hug_seconds() - t0;
	if (!rc) /* reported on stderr; then nothing goes to stdout */
		rc = nonfinite_result(&s, seq_loss, total_nll / (double)total_tokens);
	if (!rc) {
		double loss = total_nll / (double)total_tokens;
		printf("{\"sequences\": %d, \"tokens\": %lld, \"loss\": %.6f, \"perplexity\": %.4f,\n"
		       " \"per_sequence\": [", s.n, (long long)total_tokens, loss, exp(loss));
		for (int i = 0; i < s.n; i++)
			printf("%s{\"tokens\": %lld, \"loss\": %.6f}", i ? ", " : "",
			       (long long)(s.len[i] - 1), seq_loss[i]);
		printf("]}\n");
		fflush(stdout);
		fprintf(stderr, "hug eval: %d sequences, %lld tokens in %.3f s (%.1f tokens/s)\n", s.n,
			(long long)read_tokens, seconds,
			seconds > 0 ? (double)read_tokens / seconds : 0.0);
	}
	if (!rc && dump) {
		struct st_writer *w = st_writer_new();
		st_writer_add(w, "logits", all_logits, DT_F32);
		st_writer_add(w, "attention_mask", all_mask, DT_I32);
		if (st_writer_write(w, dump, &err)) {
			fprintf(stderr, "hug eval: %s\n", err.msg);
			rc = 1;
		}
		st_writer_free(w);
	}
	hug_free(seq_loss);
	arena_free(&step);
	arena_free(&keep);
	arena_free(&host);
	sequences_free(&s);
	model_free(&m);
	return rc;
}
