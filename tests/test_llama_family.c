/* test_llama_family.c: the Llama-style families (llama, qwen2, qwen3,
 * mistral; nn/llama*.c) against transformers. Each fixture under
 * tests/fixtures/{llama-tiny-a,llama-tiny-b,qwen2-tiny,qwen3-tiny,
 * mistral-tiny} (tools/ref/make_family_fixtures.py) is a tiny random
 * *ForCausalLM saved by save_pretrained, plus reference.safetensors: a
 * padded batch, float64 logits, the causal-LM loss, every parameter's
 * gradient, the rope inverse frequencies and greedy generations. Everything
 * goes through the model interface (hf_model_load, model_forward,
 * model_generate), as the trainer and the CLI do: parity in f32 and f64,
 * generation, the KV cache, weights saved and reloaded (sharded, bf16,
 * f16, a tied checkpoint holding lm_head.weight), `hug generate` / `hug
 * eval`, the trainer, and steps that allocate nothing. The configuration
 * side is tests/test_llama_config.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../autograd/autograd.h"
#include "../base/alloc.h"
#include "../base/buf.h"
#include "../io/hf_checkpoint.h"
#include "../io/safetensors.h"
#include "../nn/generate.h"
#include "../nn/llama.h"
#include "../peft/lora_model.h"
#include "../train/recipe.h"
#include "../train/trainer.h"
#include "train_fixture.h"
#include "harness.h"

static const char *const fixtures[] = {
	"tests/fixtures/llama-tiny-a", "tests/fixtures/llama-tiny-b", "tests/fixtures/qwen2-tiny",
	"tests/fixtures/qwen3-tiny", "tests/fixtures/mistral-tiny",
};
#define N_FIXTURES ((int)(sizeof(fixtures) / sizeof(fixtures[0])))

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* max|got - want| / max|want| over n values; only rows (of `inner`) with
 * keep != 0 when keep is given. NaN is the worst. */
static double rel_err(const double *got, const double *want, int64_t n, const int32_t *keep,
		      int64_t inner)
{
	double maxdiff = 0, maxref = 0;
	for (int64_t i = 0; i < n; i++) {
		if (keep && !keep[i / inner])
			continue;
		double d = fabs(got[i] - want[i]);
		if (!(d <= maxdiff))
			maxdiff = isnan(d) ? INFINITY : d;
		if (fabs(want[i]) > maxref)
			maxref = fabs(want[i]);
	}
	return maxref > 0 ? maxdiff / maxref : maxdiff;
}

static double *read_all(const struct tensor *t)
{
	double *p = hug_malloc((size_t)tensor_numel(t) * sizeof(double));
	tensor_read_f64(t, p);
	return p;
}

/* Reference tensor `key` of file ref as a new tensor of dtype dt in a, or
 * NULL after a test failure. */
static struct tensor *ref_load(const struct st_file *ref, const char *dir, const char *key,
			       enum dtype dt, struct arena *a)
{
	struct hug_error err = { 0 };
	const struct st_tensor *s = st_find(ref, key);
	if (!s) {
		test_fail_at(__FILE__, __LINE__, "%s/reference.safetensors: no \"%s\"", dir, key);
		return NULL;
	}
	struct tensor *t = tensor_new(a, dt, s->ndim, s->shape);
	if (st_tensor_load(s, t, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return NULL;
	}
	return t;
}

static bool open_ref(const char *dir, struct st_file *ref)
{
	struct hug_error err = { 0 };
	char path[512];
	snprintf(path, sizeof(path), "%s/reference.safetensors", dir);
	if (st_open(ref, path, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return false;
	}
	return true;
}

TEST(llama_rope_inv_freq_matches_fixtures)
{
	for (int f = 0; f < N_FIXTURES; f++) {
		struct model_config cfg;
		struct hug_error err = { 0 };
		struct st_file ref;
		struct arena a;
		arena_init(&a, "ref", 0, NULL);
		REQUIRE(model_config_read(fixtures[f], &cfg, &err) == 0);
		REQUIRE(open_ref(fixtures[f], &ref));
		struct tensor *want = ref_load(&ref, fixtures[f], "rope.inv_freq", DT_F64, &a);
		const struct llama_config *c = llama_config_of(&cfg);
		if (want) {
			CHECK(want->shape[0] == c->head_dim / 2);
			double got[64];
			rope_inv_freq(&c->rope, c->head_dim, got);
			const double *w = want->data;
			for (int64_t i = 0; i < c->head_dim / 2; i++)
				if (got[i] != w[i])
					test_fail_at(__FILE__, __LINE__, "%s: inv_freq[%lld] %.17g, "
						     "want %.17g", base_name(fixtures[f]),
						     (long long)i, got[i], w[i]);
		}
		st_close(&ref);
		arena_free(&a);
	}
}

/* One fixture through forward, loss and backward in dtype dt. */
static void parity_one(const char *dir, enum dtype dt, double tol_logits, double tol_loss,
		       double tol_grad)
{
	struct hug_error err = { 0 };
	struct model m = { 0 };
	struct st_file ref;
	struct arena in, step;
	struct ag_ctx ctx;
	const char *name = base_name(dir);
	if (hf_model_load(dir, dt, true, &m, &err)) {
		test_fail_at(__FILE__, __LINE__, "hf_model_load(%s): %s", dir, err.msg);
		return;
	}
	if (!open_ref(dir, &ref)) {
		model_free(&m);
		return;
	}
	arena_init(&in, "inputs", 0, NULL);
	arena_init(&step, "step", 0, NULL);
	ag_ctx_init(&ctx, &step);
	ctx.training = false;
	struct tensor *ids = ref_load(&ref, dir, "input_ids", DT_I32, &in);
	struct tensor *mask = ref_load(&ref, dir, "attention_mask", DT_I32, &in);
	struct tensor *labels = ref_load(&ref, dir, "labels", DT_I32, &in);
	struct tensor *want = ref_load(&ref, dir, "logits", DT_F64, &in);
	struct tensor *want_loss = ref_load(&ref, dir, "loss", DT_F64, &in);
	if (!ids || !mask || !labels || !want || !want_loss)
		goto out;
	struct tensor *logits = model_forward(&ctx, &m, ids, mask);
	struct tensor *loss = model_lm_loss(&ctx, logits, labels);
	if (loss)
		ag_backward(&ctx, loss);
	if (ag_failed(&ctx)) {
		test_fail_at(__FILE__, __LINE__, "%s (%s): %s", name, dtype_name(dt), ctx.err.msg);
		goto out;
	}
	REQUIRE(tensor_same_shape(logits, want));
	int64_t n = tensor_numel(want), v = want->shape[2];
	double *g = read_all(logits), *w = read_all(want);
	double tok = rel_err(g, w, n, mask->data, v), all = rel_err(g, w, n, NULL, 1);
	hug_free(g);
	hug_free(w);
	double got_loss = tensor_item(loss), wl = tensor_item(want_loss);
	double lerr = fabs(got_loss - wl) / fabs(wl);
	if (!(tok <= tol_logits && all <= tol_logits))
		test_fail_at(__FILE__, __LINE__, "%s (%s): logits error %.3g (tokens), %.3g (all) "
			     "> %.3g", name, dtype_name(dt), tok, all, tol_logits);
	if (!(lerr <= tol_loss))
		test_fail_at(__FILE__, __LINE__, "%s (%s): loss %.17g, want %.17g", name,
			     dtype_name(dt), got_loss, wl);
	/* every parameter's gradient, and no reference gradient left over */
	struct param_table *pt = model_params(&m);
	int n_ref = 0;
	for (int i = 0; i < ref.n; i++)
		if (!strncmp(ref.tensors[i].name, "grad.", 5)) {
			n_ref++;
			if (!param_table_find(pt, ref.tensors[i].name + 5))
				test_fail_at(__FILE__, __LINE__, "%s: %s has no parameter", name,
					     ref.tensors[i].name);
		}
	CHECK(n_ref == pt->n);
	double worst = 0;
	const char *worst_name = "(none)";
	for (int i = 0; i < pt->n; i++) {
		char key[PARAM_NAME_MAX + 8];
		const struct param *p = &pt->items[i];
		snprintf(key, sizeof(key), "grad.%s", p->name);
		struct tensor *rg = ref_load(&ref, dir, key, DT_F64, &in);
		if (!rg)
			continue;
		if (!p->t->grad || !tensor_same_shape(p->t->grad, rg)) {
			test_fail_at(__FILE__, __LINE__, "%s: %s: gradient shape", name, p->name);
			continue;
		}
		double *gg = read_all(p->t->grad), *gw = read_all(rg);
		double e = rel_err(gg, gw, tensor_numel(rg), NULL, 1);
		hug_free(gg);
		hug_free(gw);
		if (!(e <= tol_grad))
			test_fail_at(__FILE__, __LINE__, "%s (%s): grad %s: error %.3g > %.3g", name,
				     dtype_name(dt), p->name, e, tol_grad);
		if (!(e <= worst)) {
			worst = e;
			worst_name = p->name;
		}
	}
	printf("\n    %s %s: logits %.2e (all positions %.2e), loss %.2e, grads %.2e (worst %s)",
	       name, dtype_name(dt), tok, all, lerr, worst, worst_name);
out:
	st_close(&ref);
	arena_free(&step);
	arena_free(&in);
	model_free(&m);
}

TEST(llama_parity_f32)
{
	for (int f = 0; f < N_FIXTURES; f++)
		parity_one(fixtures[f], DT_F32, 1e-5, 1e-5, 1e-4);
	printf("\n    ");
}

/* In f64 the only differences left are rounding: the references are the
 * f64 model with float32 rope frequencies, which hug uses too. */
TEST(llama_parity_f64)
{
	for (int f = 0; f < N_FIXTURES; f++)
		parity_one(fixtures[f], DT_F64, 1e-12, 1e-12, 1e-10);
	printf("\n    ");
}

TEST(llama_greedy_generation_matches_transformers)
{
	for (int f = 0; f < N_FIXTURES; f++) {
		struct hug_error err = { 0 };
		struct model m = { 0 };
		struct st_file ref;
		const char *dir = fixtures[f];
		REQUIRE(hf_model_load(dir, DT_F32, false, &m, &err) == 0);
		REQUIRE(open_ref(dir, &ref));
		int checked = 0;
		for (int i = 0;; i++) {
			char kp[32], ki[32];
			snprintf(kp, sizeof(kp), "gen.%d.prompt", i);
			snprintf(ki, sizeof(ki), "gen.%d.ids", i);
			if (!st_find(&ref, kp))
				break;
			struct arena a;
			arena_init(&a, "gen", 0, NULL);
			struct tensor *p = ref_load(&ref, dir, kp, DT_I32, &a);
			struct tensor *want = ref_load(&ref, dir, ki, DT_I32, &a);
			REQUIRE(p && want);
			int np = (int)p->shape[1], nw = (int)want->shape[1] - np;
			struct gen_opts o = gen_opts_default();
			o.greedy = true;
			o.max_new_tokens = nw;
			int32_t out[256];
			int got = model_generate(&m, p->data, np, &o, out, &err);
			CHECK(got == nw);
			if (got != nw)
				test_fail_at(__FILE__, __LINE__, "%s: %s", dir, err.msg);
			const int32_t *w = (const int32_t *)want->data + np;
			for (int k = 0; k < got && k < nw; k++)
				if (out[k] != w[k]) {
					test_fail_at(__FILE__, __LINE__, "%s: %s: token %d is %d, "
						     "transformers %d", base_name(dir), ki, k,
						     out[k], w[k]);
					break;
				}
			checked++;
			arena_free(&a);
		}
		CHECK(checked >= 1);
		st_close(&ref);
		model_free(&m);
	}
}

/* The cached forward of a prompt then one id at a time equals the forward
 * over the whole (padded) sequence. */
TEST(llama_kv_cache_matches_full_forward)
{
	for (int f = 0; f < N_FIXTURES; f++) {
		struct hug_error err = { 0 };
		struct model m = { 0 };
		struct st_file ref;
		struct arena in, step;
		struct ag_ctx ctx;
		const char *dir = fixtures[f];
		REQUIRE(hf_model_load(dir, DT_F64, false, &m, &err) == 0);
		REQUIRE(open_ref(dir, &ref));
		arena_init(&in, "in", 0, NULL);
		arena_init(&step, "step", 0, NULL);
		ag_ctx_init(&ctx, &step);
		ag_set_grad_enabled(&ctx, false);
		struct tensor *ids = ref_load(&ref, dir, "input_ids", DT_I32, &in);
		struct tensor *mask = ref_load(&ref, dir, "attention_mask", DT_I32, &in);
		REQUIRE(ids && mask);
		int64_t b = ids->shape[0], t = ids->shape[1], split_at = 4;
		struct tensor *full = model_forward(&ctx, &m, ids, mask);
		REQUIRE(full);
		int64_t v = full->shape[2];
		double *fl = read_all(full);
		struct model_kv *kv = model_kv_new(&m, b, t);
		double worst = 0;
		for (int64_t s = 0; s < t;) {
			int64_t len = s == 0 ? split_at : 1;
			struct tensor *is = ag_contiguous(&ctx, ag_slice(&ctx, ids, 1, s, len));
			struct tensor *ms = ag_contiguous(&ctx, ag_slice(&ctx, mask, 1, s, len));
			struct tensor *l = model_forward_cached(&ctx, &m, kv, is, ms);
			REQUIRE(l);
			double *lv = read_all(l);
			for (int64_t bi = 0; bi < b; bi++)
				for (int64_t j = 0; j < len; j++) {
					if (!((int32_t *)mask->data)[bi * t + s + j])
						continue;
					for (int64_t k = 0; k < v; k++) {
						double d = fabs(lv[(bi * len + j) * v + k] -
								fl[(bi * t + s + j) * v + k]);
						if (d > worst)
							worst = d;
					}
				}
			hug_free(lv);
			s += len;
		}
		if (!(worst < 1e-12))
			test_fail_at(__FILE__, __LINE__, "%s: cached logits differ by %.3g",
				     base_name(dir), worst);
		model_kv_free(&m, kv);
		hug_free(fl);
		st_close(&ref);
		arena_free(&step);
		arena_free(&in);
		model_free(&m);
	}
}

static char *make_tmpdir(void)
{
	char *d = hug_strdup("/tmp/hug-llama-XXXXXX");
	return mkdtemp(d) ? d : NULL;
}

/* Weights saved by hug load back bit for bit, as do the logits. */
TEST(llama_save_load_round_trip)
{
	for (int f = 0; f < N_FIXTURES; f++) {
		struct hug_error err = { 0 };
		struct model a = { 0 }, b = { 0 };
		REQUIRE(hf_model_load(fixtures[f], DT_F32, false, &a, &err) == 0);
		char *tmp = make_tmpdir();
		char out[512];
		snprintf(out, sizeof(out), "%s/m", tmp);
		REQUIRE(hf_model_save(&a, out, DT_F32, 40000, &err) == 0); /* sharded */
		if (hf_model_load(out, DT_F32, false, &b, &err)) {
			test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		} else {
			struct param_table *pa = model_params(&a), *pb = model_params(&b);
			CHECK(pa->n == pb->n);
			for (int i = 0; i < pa->n && i < pb->n; i++)
				CHECK(!strcmp(pa->items[i].name, pb->items[i].name) &&
				      !memcmp(pa->items[i].t->data, pb->items[i].t->data,
					      tensor_nbytes(pa->items[i].t)));
		}
		/* bf16 and f16 on disk: every value within its rounding */
		const enum dtype disk[2] = { DT_BF16, DT_F16 };
		const double ulp[2] = { 1.0 / 256, 1.0 / 2048 };
		for (int d = 0; d < 2; d++) {
			struct model c = { 0 };
			snprintf(out, sizeof(out), "%s/m%d", tmp, d);
			REQUIRE(hf_model_save(&a, out, disk[d], 0, &err) == 0);
			if (hf_model_load(out, DT_F32, false, &c, &err)) {
				test_fail_at(__FILE__, __LINE__, "%s", err.msg);
				continue;
			}
			struct param_table *pa = model_params(&a), *pc = model_params(&c);
			double worst = 0;
			for (int i = 0; i < pa->n; i++) {
				int64_t n = tensor_numel(pa->items[i].t);
				const float *x = pa->items[i].t->data, *y = pc->items[i].t->data;
				for (int64_t k = 0; k < n; k++)
					worst = fmax(worst, fabs(x[k] - y[k]) /
							   fmax(fabs(x[k]), 6.103515625e-05)); /* f16's
							   smallest normal: subnormals are absolute */
			}
			if (!(worst <= ulp[d]))
				test_fail_at(__FILE__, __LINE__, "%s: %s on disk: error %.3g", fixtures[f],
					     dtype_name(disk[d]), worst);
			model_free(&c);
		}
		model_free(&a);
		model_free(&b);
		train_fixture_rmtree(tmp);
		hug_free(tmp);
	}
}

/* `hug generate` and `hug eval` on each fixture directory: the greedy ids
 * of gen.0, and the loss of the reference's unpadded first row as the
 * model interface computes it in-process. */
TEST(llama_cli_generate_and_eval)
{
	const char *bin = getenv("HUG_BIN") ? getenv("HUG_BIN") : "build/bin/hug";
	for (int f = 0; f < N_FIXTURES; f++) {
		struct hug_error err = { 0 };
		struct st_file ref;
		struct arena a, step;
		struct ag_ctx ctx;
		struct model m = { 0 };
		const char *dir = fixtures[f];
		char cmd[2048], out[8192], ids[1024] = "", want[1024] = "";
		REQUIRE(open_ref(dir, &ref));
		arena_init(&a, "a", 0, NULL);
		struct tensor *p = ref_load(&ref, dir, "gen.0.prompt", DT_I32, &a);
		struct tensor *g = ref_load(&ref, dir, "gen.0.ids", DT_I32, &a);
		struct tensor *in = ref_load(&ref, dir, "input_ids", DT_I32, &a);
		REQUIRE(p && g && in);
		size_t off = 0;
		for (int64_t i = 0; i < p->shape[1]; i++)
			off += (size_t)snprintf(ids + off, sizeof(ids) - off, "%s%d", i ? "," : "",
						((int32_t *)p->data)[i]);
		off = 0;
		for (int64_t i = p->shape[1]; i < g->shape[1]; i++)
			off += (size_t)snprintf(want + off, sizeof(want) - off, "%s%d",
						i > p->shape[1] ? "," : "", ((int32_t *)g->data)[i]);
		snprintf(cmd, sizeof(cmd), "%s generate --model %s --prompt-ids %s --greedy --no-stop "
			 "--max-new-tokens %lld", bin, dir, ids, (long long)(g->shape[1] - p->shape[1]));
		CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
		if (!strstr(out, want))
			test_fail_at(__FILE__, __LINE__, "%s: hug generate gave %s, want %s", dir, out,
				     want);

		/* eval of row 0 (no padding) */
		int64_t t = in->shape[1];
		char *tmp = make_tmpdir(), path[512], json[1024];
		off = (size_t)snprintf(json, sizeof(json), "[[");
		for (int64_t i = 0; i < t; i++)
			off += (size_t)snprintf(json + off, sizeof(json) - off, "%s%d", i ? ", " : "",
						((int32_t *)in->data)[i]);
		snprintf(json + off, sizeof(json) - off, "]]");
		snprintf(path, sizeof(path), "%s/in.json", tmp);
		test_write_file(path, json);
		snprintf(cmd, sizeof(cmd), "%s eval --model %s --input %s", bin, dir, path);
		CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
		const char *l = strstr(out, "\"loss\": ");
		double cli = l ? atof(l + 8) : NAN;
		REQUIRE(hf_model_load(dir, DT_F32, false, &m, &err) == 0);
		arena_init(&step, "step", 0, NULL);
		ag_ctx_init(&ctx, &step);
		struct tensor *row = ag_contiguous(&ctx, ag_slice(&ctx, in, 0, 0, 1));
		struct tensor *loss = model_lm_loss(&ctx, model_forward(&ctx, &m, row, NULL), row);
		REQUIRE(loss);
		double want_loss = tensor_item(loss);
		if (!(fabs(cli - want_loss) <= 1e-5 * fabs(want_loss)))
			test_fail_at(__FILE__, __LINE__, "%s: hug eval loss %.9g, in-process %.9g (%s)",
				     dir, cli, want_loss, out);
		model_free(&m);
		arena_free(&step);
		train_fixture_rmtree(tmp);
		hug_free(tmp);
		arena_free(&a);
		st_close(&ref);
	}
}

/* Generation stops on every eos id the model lists: config.json's list
 * and generation_config.json's (transformers' generate stops on the
 * latter; Qwen2.5 Instruct lists more ids there). The fixture's greedy
 * ids are found first; the 4th becomes a second eos id. */
TEST(llama_generate_stops_on_any_eos_id)
{
	const char *bin = getenv("HUG_BIN") ? getenv("HUG_BIN") : "build/bin/hug";
	const char *dir = "tests/fixtures/llama-tiny-a";
	char cmd[2048], out[4096];
	snprintf(cmd, sizeof(cmd), "%s generate --model %s --prompt-ids 1,2,3 --greedy --no-stop "
		 "--max-new-tokens 12", bin, dir);
	REQUIRE(test_run_command(cmd, out, sizeof(out)) == 0);
	int ids[12], n = 0;
	for (char *p = out; n < 12 && *p; n++) {
		ids[n] = (int)strtol(p, &p, 10);
		if (*p == ',')
			p++;
		else
			break;
	}
	REQUIRE(n >= 4);
	int k = 3; /* the first position whose id did not occur before */
	for (bool seen = true; seen && k < n; k += seen) {
		seen = false;
		for (int i = 0; i < k; i++)
			seen |= ids[i] == ids[k];
	}
	REQUIRE(k < n);
	char *tmp = make_tmpdir(), path[512], json[256], want[256] = "";
	snprintf(cmd, sizeof(cmd), "cp %s/config.json %s/model.safetensors %s", dir, dir, tmp);
	REQUIRE(system(cmd) == 0);
	snprintf(path, sizeof(path), "%s/generation_config.json", tmp);
	snprintf(json, sizeof(json), "{\"eos_token_id\": [100000, %d]}\n", ids[k]);
	test_write_file(path, json);
	size_t off = 0;
	for (int i = 0; i <= k; i++)
		off += (size_t)snprintf(want + off, sizeof(want) - off, "%s%d", i ? "," : "", ids[i]);
	snprintf(cmd, sizeof(cmd), "%s generate --model %s --prompt-ids 1,2,3 --greedy "
		 "--max-new-tokens 12", bin, tmp);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	if (strncmp(out, want, strlen(want)) || out[strlen(want)] == ',')
		test_fail_at(__FILE__, __LINE__, "generate gave %s, want %s (stop at %d)", out, want,
			     ids[k]);
	/* a malformed list names the file and key */
	test_write_file(path, "{\"eos_token_id\": [\"x\"]}\n");
	CHECK(test_run_command(cmd, out, sizeof(out)) != 0);
	CHECK(strstr(out, "generation_config.json: eos_token_id") != NULL);
	train_fixture_rmtree(tmp);
	hug_free(tmp);
}

/* `hug generate --prompt` encodes as transformers' tokenizer(prompt) does:
 * with the post-processor's BOS (TemplateProcessing), unless
 * --no-special-tokens. A tokenizer over the fixture's 113 ids (one CJK
 * character each, "<s>" = 1 added in front by the template) makes the
 * text run comparable with --prompt-ids. */
TEST(llama_generate_prompt_adds_template_bos)
{
	const char *bin = getenv("HUG_BIN") ? getenv("HUG_BIN") : "build/bin/hug";
	const char *dir = "tests/fixtures/llama-tiny-a";
	char *tmp = make_tmpdir(), path[512], cmd[2048];
	struct buf j = { 0 };
	buf_printf(&j, "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 1, \"content\": "
		   "\"<s>\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
		   "\"normalized\": false, \"special\": true}], \"normalizer\": null, "
		   "\"pre_tokenizer\": null, \"post_processor\": {\"type\": \"TemplateProcessing\", "
		   "\"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, "
		   "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": [], "
		   "\"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1], "
		   "\"tokens\": [\"<s>\"]}}}, \"decoder\": {\"type\": \"Fuse\"}, "
		   "\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"vocab\": "
		   "{\"<unk>\": 0, \"<s>\": 1");
	for (int i = 2; i < 113; i++) {
		char u[8];
		int cp = 0x4E00 + i;
		snprintf(u, sizeof(u), "%c%c%c", 0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 63),
			 0x80 | (cp & 63));
		buf_printf(&j, ", \"%s\": %d", u, i);
	}
	buf_printf(&j, "}, \"merges\": []}}\n");
	snprintf(path, sizeof(path), "%s/tokenizer.json", tmp);
	test_write_file(path, j.p);
	buf_free(&j);
	/* the prompt: ids 2 and 3 */
	const char *prompt = "\xe4\xb8\x82\xe4\xb8\x83";
	char ref_bos[1024], ref_plain[1024], got[2][1024];
	snprintf(cmd, sizeof(cmd), "%s generate --model %s --prompt-ids 1,2,3 --greedy --no-stop "
		 "--max-new-tokens 6", bin, dir);
	REQUIRE(test_run_command(cmd, ref_bos, sizeof(ref_bos)) == 0);
	snprintf(cmd, sizeof(cmd), "%s generate --model %s --prompt-ids 2,3 --greedy --no-stop "
		 "--max-new-tokens 6", bin, dir);
	REQUIRE(test_run_command(cmd, ref_plain, sizeof(ref_plain)) == 0);
	for (int k = 0; k < 2; k++) {
		snprintf(cmd, sizeof(cmd), "%s generate --model %s --tokenizer %s --prompt %s "
			 "--greedy --no-stop --max-new-tokens 6%s", bin, dir, path, prompt,
			 k ? " --no-special-tokens" : "");
		REQUIRE(test_run_command(cmd, got[k], sizeof(got[k])) == 0);
	}
	/* expected text: the prompt, then each new id's character (1 is
	 * special: skipped; 0 is <unk>) */
	for (int k = 0; k < 2; k++) {
		const char *ids = k ? ref_plain : ref_bos;
		char want[1024];
		size_t off = (size_t)snprintf(want, sizeof(want), "%s", prompt);
		for (const char *p = ids; *p && *p != '\n';) {
			int id = (int)strtol(p, (char **)&p, 10);
			if (id == 0)
				off += (size_t)snprintf(want + off, sizeof(want) - off, "<unk>");
			else if (id >= 2) {
				int cp = 0x4E00 + id;
				off += (size_t)snprintf(want + off, sizeof(want) - off, "%c%c%c",
							0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 63),
							0x80 | (cp & 63));
			}
			if (*p == ',')
				p++;
		}
		if (strncmp(got[k], want, strlen(want)))
			test_fail_at(__FILE__, __LINE__, "generate --prompt%s gave \"%s\", want \"%s\"",
				     k ? " --no-special-tokens" : "", got[k], want);
	}
	CHECK(strcmp(ref_bos, ref_plain) != 0); /* the BOS changes the continuation */
	train_fixture_rmtree(tmp);
	hug_free(tmp);
}

/* The trainer on the families, as a recipe names them: a small Qwen3-style
 * model from scratch learns the counting corpus; LoRA on the Mistral
 * fixture with PEFT's default targets trains only the adapters. */
TEST(llama_families_train_from_recipe)
{
	const char *dir = train_fixture_shards(1, 20000);
	REQUIRE(dir);
	struct hug_error err = { 0 };
	char path[512];
	snprintf(path, sizeof(path), "%s/recipe.json", dir);
	/* a BLOOM recipe refuses the Llama-style settings */
	REQUIRE(train_fixture_recipe_in(dir, ", \"num_key_value_heads\": 2", ", \"steps\": 60",
					NULL) == 0);
	struct recipe r;
	CHECK(recipe_load(path, NULL, 0, 1, &r, &err) == -1);
	CHECK(strstr(err.msg, "model.num_key_value_heads: not a setting of model.arch \"bloom\""));
	hug_error_clear(&err);
	REQUIRE(train_fixture_recipe_in(dir, ", \"arch\": \"qwen3\", \"num_key_value_heads\": 2, "
					"\"head_dim\": 12, \"intermediate_size\": 48, "
					"\"tie_word_embeddings\": false, \"rope_theta\": 1e6",
					", \"steps\": 60", NULL) == 0);
	REQUIRE(recipe_load(path, NULL, 0, 1, &r, &err) == 0);
	CHECK(!strcmp(r.model.family->name, "qwen3"));
	CHECK(r.model.dims.n_kv_head == 2 && r.model.dims.head_dim == 12 &&
	      r.model.dims.intermediate_size == 48 && !r.model.dims.tie_word_embeddings &&
	      llama_config_of(&r.model)->rope.theta == 1e6);
	struct trainer t;
	REQUIRE(trainer_init(&t, &r, &err) == 0);
	double first = 0, last = 0;
	for (int s = 0; s < 60; s++) {
		struct step_result res;
		if (trainer_step(&t, &res, &err)) {
			test_fail_at(__FILE__, __LINE__, "%s", err.msg);
			break;
		}
		if (s < 5)
			first += res.loss / 5;
		if (s >= 55)
			last += res.loss / 5;
	}
	printf("(qwen3 from scratch: loss %.3f -> %.3f) ", first, last);
	CHECK(first > 3.5 && last < first - 1.0);
	trainer_free(&t);
	recipe_free(&r);

	/* LoRA on a pretrained Mistral with the default targets */
	char *abs = realpath("tests/fixtures/mistral-tiny", NULL);
	char model[1024], top[256];
	snprintf(model, sizeof(model), "\"from_pretrained\": \"%s\", \"attention_dropout\": 0.0", abs);
	free(abs);
	snprintf(top, sizeof(top), ", \"peft\": {\"r\": 4, \"alpha\": 8}");
	FILE *f = fopen(path, "w");
	REQUIRE(f);
	char glob[512], out[512];
	snprintf(glob, sizeof(glob), "%s/shard-*.h5", dir);
	snprintf(out, sizeof(out), "%s/run-lora", dir);
	fprintf(f, "{\"model\": {%s}, \"data\": {\"train\": [{\"path\": \"%s\"}], \"seq_len\": 32},"
		" \"optim\": {\"lr\": 0.01}, \"batch\": {\"micro_batch_size\": 4, "
		"\"global_batch_size\": 4}, \"train\": {\"out_dir\": \"%s\", \"steps\": 20}%s}\n",
		model, glob, out, top);
	fclose(f);
	if (recipe_load(path, NULL, 0, 1, &r, &err))
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	else if (trainer_init(&t, &r, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	} else {
		CHECK(t.lora && t.lora->n == 2 * 2 && !strcmp(t.lora->cfg.targets[0], "q_proj"));
		first = last = 0;
		for (int s = 0; s < 20; s++) {
			struct step_result res;
			if (trainer_step(&t, &res, &err)) {
				test_fail_at(__FILE__, __LINE__, "%s", err.msg);
				break;
			}
			if (s == 0)
				first = res.loss;
			last = res.loss;
		}
		printf("(mistral LoRA: loss %.3f -> %.3f) ", first, last);
		CHECK(last < first);
		trainer_free(&t);
	}
	recipe_free(&r);
	train_fixture_rmtree(dir);
}

/* Forward and backward of the padded batch (pad ids included, so the
 * embedding's pad row path runs) allocate nothing from the second step on:
 * positions, masks and the pad-row rows live in the step arena. */
TEST(llama_training_steps_allocate_nothing_after_the_first)
{
	for (int f = 0; f < N_FIXTURES; f++) {
		struct hug_error err = { 0 };
		struct model m = { 0 };
		struct st_file ref;
		struct arena in, step;
		struct ag_ctx ctx;
		REQUIRE(hf_model_load(fixtures[f], DT_F32, true, &m, &err) == 0);
		REQUIRE(open_ref(fixtures[f], &ref));
		arena_init(&in, "in", 0, NULL);
		arena_init(&step, "step", 0, NULL);
		ag_ctx_init(&ctx, &step);
		struct tensor *ids = ref_load(&ref, fixtures[f], "input_ids", DT_I32, &in);
		struct tensor *mask = ref_load(&ref, fixtures[f], "attention_mask", DT_I32, &in);
		struct tensor *labels = ref_load(&ref, fixtures[f], "labels", DT_I32, &in);
		REQUIRE(ids && mask && labels);
		uint64_t before = 0;
		for (int s = 0; s < 3; s++) {
			if (s == 2)
				before = hug_alloc_count();
			struct tensor *loss = model_lm_loss(&ctx, model_forward(&ctx, &m, ids, mask),
							    labels);
			REQUIRE(loss && ag_backward(&ctx, loss) == 0);
			ag_ctx_reset(&ctx);
		}
		if (hug_alloc_count() != before)
			test_fail_at(__FILE__, __LINE__, "%s: step 3 made %llu allocations",
				     base_name(fixtures[f]),
				     (unsigned long long)(hug_alloc_count() - before));
		st_close(&ref);
		arena_free(&step);
		arena_free(&in);
		model_free(&m);
	}
}

/* A tied model's file may hold lm_head.weight too (a copy of the
 * embedding, as some published checkpoints do): it loads, skipping the
 * copy; `hug info` counts it as ignored. An untied model loads its own. */
TEST(llama_tied_checkpoint_with_lm_head_copy_loads)
{
	struct hug_error err = { 0 };
	struct model m = { 0 }, b = { 0 };
	REQUIRE(hf_model_load("tests/fixtures/llama-tiny-b", DT_F32, false, &m, &err) == 0);
	REQUIRE(model_dims(&m).tie_word_embeddings);
	char *tmp = make_tmpdir(), path[512], cmd[1024], out[4096];
	struct model_config cfg;
	model_config_of(&m, &cfg);
	REQUIRE(model_config_write(&cfg, DT_F32, tmp, &err) == 0);
	struct st_writer *w = st_writer_new();
	struct param_table *pt = model_params(&m);
	for (int i = 0; i < pt->n; i++)
		st_writer_add(w, pt->items[i].name, pt->items[i].t, DT_F32);
	st_writer_add(w, "lm_head.weight", param_table_find(pt, "model.embed_tokens.weight")->t,
		      DT_F32);
	snprintf(path, sizeof(path), "%s/model.safetensors", tmp);
	REQUIRE(st_writer_write(w, path, &err) == 0);
	st_writer_free(w);
	if (hf_model_load(tmp, DT_F32, false, &b, &err))
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	else
		CHECK(model_params(&b)->n == pt->n);
	const char *bin = getenv("HUG_BIN") ? getenv("HUG_BIN") : "build/bin/hug";
	snprintf(cmd, sizeof(cmd), "%s info %s", bin, tmp);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	CHECK(strstr(out, "lm_head.weight, tied to the embeddings and ignored") &&
	      strstr(out, "matching the config"));
	model_free(&b);
	model_free(&m);
	train_fixture_rmtree(tmp);
	hug_free(tmp);
}