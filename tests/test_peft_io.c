/* test_peft_io.c: adapters in PEFT's layout: a save/load round trip (bit
 * for bit in f32, within rounding in bf16), the files for
 * tools/ref/check_peft_export.py, and bad adapters (r <= 0, an unknown
 * target module, an adapter for another base shape, settings hug does not
 * implement, missing and unexpected tensors), each an error naming the
 * file and the key that leaves the base model without adapters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../io/hf_checkpoint.h"
#include "bloom_util.h"
#include "harness.h"
#include "peft_fixture.h"
#include "train_fixture.h"

static char *tmp_dir(void)
{
	char *d = hug_strdup("/tmp/hug-peft-XXXXXX");
	if (!mkdtemp(d)) {
		hug_free(d);
		return NULL;
	}
	return d;
}

static bool copy_file(const char *from, const char *to)
{
	char *buf;
	size_t len;
	struct hug_error err = { 0 };
	if (fs_read_file(from, 1 << 26, &buf, &len, &err))
		return false;
	bool ok = fs_write_atomic(to, buf, len, &err) == 0;
	hug_free(buf);
	return ok;
}

static bool write_text(const char *dir, const char *name, const char *text)
{
	struct hug_error err = { 0 };
	char *p = fs_join(dir, name);
	bool ok = fs_write_atomic(p, text, strlen(text), &err) == 0;
	hug_free(p);
	return ok;
}

static bool no_hooks(const struct bloom_model *m)
{
	for (int l = 0; l < m->cfg.n_layer; l++)
		for (int k = 0; k < BLOOM_N_LINEAR; k++)
			if (m->layers[l].lora[k])
				return false;
	return true;
}

TEST(peft_save_load_round_trip)
{
	struct peft_run r;
	char *dir = tmp_dir();
	REQUIRE(dir);
	if (!peft_run_open(&r, &peft_fixtures[2], DT_F32)) { /* the regex one */
		peft_run_free(&r);
		return;
	}
	struct hug_error err = { 0 };
	REQUIRE(lora_save(&r.lm, dir, DT_F32, &err) == 0);
	struct bloom_model m;
	struct lora_model lm;
	REQUIRE(hf_bloom_load(peft_fixtures[2].base, DT_F32, false, &m, &err) == 0);
	REQUIRE(lora_load(&lm, BLOOM_M(&m), dir, false, &err) == 0);
	CHECK(lm.n == r.lm.n && lm.cfg.r == 2 && lm.cfg.alpha == 3.0);
	CHECK(lm.cfg.target_regex == NULL && lm.cfg.n_targets == 2); /* saved as paths */
	CHECK(!strcmp(lm.cfg.base_model, "tests/fixtures/bloom-tiny-a"));
	for (int i = 0; i < lm.table.n; i++) {
		const struct tensor *a = lm.table.items[i].t, *b = r.lm.table.items[i].t;
		CHECK(!strcmp(lm.table.items[i].name, r.lm.table.items[i].name));
		CHECK(memcmp(a->data, b->data, tensor_nbytes(a)) == 0);
	}
	lora_model_free(&lm);
	/* bf16 on disk: each value within bf16's rounding */
	REQUIRE(lora_save(&r.lm, dir, DT_BF16, &err) == 0);
	REQUIRE(lora_load(&lm, BLOOM_M(&m), dir, false, &err) == 0);
	double worst = 0;
	for (int i = 0; i < lm.table.n; i++) {
		double e = peft_relerr(lm.table.items[i].t, r.lm.table.items[i].t, NULL);
		worst = fmax(worst, e);
	}
	CHECK(worst > 0 && worst <= 1.0 / 256);
	lora_model_free(&lm);
	bloom_model_free(&m);
	peft_run_free(&r);
	train_fixture_rmtree(dir);
	hug_free(dir);
}

/* Fills B (and A) of every site with a fixed non-trivial pattern, as if
 * trained. */
static void pretend_trained(struct lora_model *lm)
{
	for (int i = 0; i < lm->n; i++) {
		struct tensor *b = lm->sites[i].ad.b;
		for (int64_t k = 0; k < tensor_numel(b); k++)
			((float *)b->data)[k] = 0.03f * (float)((k * 7 + i) % 11 - 5);
	}
}

/* One fixture base with a hug-made adapter: adapter/, merged/ and
 * hug_logits.safetensors under out/<name>, for check_peft_export.py. */
static void export_one(const char *out, const char *base, const char *name,
		       const char *const *targets, int n_targets, bool rslora)
{
	char dir[512], sub[600];
	struct hug_error err = { 0 };
	struct peft_run r = { 0 };
	struct lora_config c;
	snprintf(dir, sizeof(dir), "%s/%s", out, name);
	REQUIRE(fs_make_dirs(dir, &err) == 0);
	arena_init(&r.mem, "ref", 0, NULL);
	arena_init(&r.step, "step", 0, NULL);
	ag_ctx_init(&r.ctx, &r.step);
	REQUIRE(hf_model_load(base, DT_F32, false, &r.m, &err) == 0);
	r.have_model = true;
	lora_config_init(&c);
	c.r = 4;
	c.alpha = 16;
	c.rslora = rslora;
	lora_config_set_targets(&c, targets, n_targets);
	char *abs_base = realpath(base, NULL);
	lora_config_set_base(&c, abs_base);
	free(abs_base);
	REQUIRE(lora_model_init(&r.lm, &r.m, &c, false, "", &err) == 0);
	lora_config_free(&c);
	r.have_lora = true;
	lora_model_init_weights(&r.lm, 5);
	pretend_trained(&r.lm);
	snprintf(sub, sizeof(sub), "%s/reference.safetensors", base);
	REQUIRE(st_open(&r.ref, sub, &err) == 0);
	r.ids = peft_ref(&r, "input_ids", DT_I32);
	r.mask = peft_ref(&r, "attention_mask", DT_I32);
	REQUIRE(r.ids && r.mask);
	struct tensor *logits = model_forward(&r.ctx, &r.m, r.ids, r.mask);
	REQUIRE(logits);
	struct st_writer *w = st_writer_new();
	st_writer_add(w, "input_ids", r.ids, DT_I32);
	st_writer_add(w, "attention_mask", r.mask, DT_I32);
	st_writer_add(w, "logits", logits, DT_F32);
	snprintf(sub, sizeof(sub), "%s/hug_logits.safetensors", dir);
	CHECK(st_writer_write(w, sub, &err) == 0);
	st_writer_free(w);
	snprintf(sub, sizeof(sub), "%s/adapter", dir);
	CHECK(fs_make_dirs(sub, &err) == 0 && lora_save(&r.lm, sub, DT_F32, &err) == 0);
	lora_merge(&r.lm);
	snprintf(sub, sizeof(sub), "%s/merged", dir);
	CHECK(hf_model_save(&r.m, sub, DT_F32, 0, &err) == 0);
	if (err.set)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	peft_run_free(&r);
}

/* Writes the files tools/ref/check_peft_export.py reads into
 * $HUG_PEFT_OUT (or a temporary directory, removed afterwards). */
TEST(peft_export_for_python)
{
	const char *env = getenv("HUG_PEFT_OUT");
	char *tmp = env ? NULL : tmp_dir();
	const char *out = env ? env : tmp;
	REQUIRE(out);
	export_one(out, "tests/fixtures/bloom-tiny-a", "bloom-tiny-a",
		   (const char *[]){ "query_key_value", "dense_h_to_4h" }, 2, false);
	export_one(out, "tests/fixtures/bloom-tiny-b", "bloom-tiny-b",
		   (const char *[]){ "dense*", "h.0.self_attention.query_key_value" }, 2, true);
	if (env)
		printf("(wrote %s/bloom-tiny-a, %s/bloom-tiny-b) ", out, out);
	train_fixture_rmtree(tmp);
	hug_free(tmp);
}

/* ---- bad adapters ---- */

struct bad_case {
	const char *what;
	const char *config;      /* adapter_config.json text */
	const char *weights;     /* adapter_model.safetensors to copy (a fixture) */
	const char *base;
	const char *expect;      /* in the message */
};

#define TARGETS "[\"query_key_value\", \"dense_4h_to_h\"]"
#define CFG_RT(r, targets, extra) "{\"peft_type\": \"LORA\", \"r\": " r ", \"lora_alpha\": 8, " \
	"\"target_modules\": " targets extra "}"
#define CFG_R(r) CFG_RT(r, TARGETS, "")
#define CFG(extra) CFG_RT("4", TARGETS, extra)
#define A_FILE "tests/fixtures/peft/bloom-tiny-a-lora/adapter_model.safetensors"
#define B_FILE "tests/fixtures/peft/bloom-tiny-b-rslora/adapter_model.safetensors"
#define BASE_A "tests/fixtures/bloom-tiny-a"
#define BASE_B "tests/fixtures/bloom-tiny-b"

static const struct bad_case bad_cases[] = {
	{ "r 0", CFG_R("0"), A_FILE, BASE_A,
	  "adapter_config.json: r: expected an integer > 0, got 0" },
	{ "r -3", CFG_R("-3"), A_FILE, BASE_A,
	  "adapter_config.json: r: expected an integer > 0, got -3" },
	{ "r 2.5", CFG_R("2.5"), A_FILE, BASE_A, "r: expected an integer > 0, got 2.5" },
	{ "unknown module", "{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": [\"q_proj\"]}",
	  A_FILE, BASE_A, "adapter_config.json: target_modules[0]: \"q_proj\" matches no linear layer" },
	{ "other base", "{\"peft_type\": \"LORA\", \"r\": 3, \"target_modules\": [\"query_key_value\", "
	  "\"dense\", \"dense_h_to_4h\", \"dense_4h_to_h\"]}", B_FILE, BASE_A,
	  "needs [3, 24]: this adapter was made for another base model" },
	{ "rank differs", CFG_R("8"), A_FILE, BASE_A, "its rank differs from r = 8" },
	{ "not lora", "{\"peft_type\": \"PREFIX_TUNING\", \"r\": 4}", A_FILE, BASE_A,
	  "peft_type: expected \"LORA\" (hug loads LoRA adapters only), got \"PREFIX_TUNING\"" },
	{ "task", CFG(", \"task_type\": \"SEQ_CLS\""), A_FILE, BASE_A, "task_type: expected" },
	{ "bias", CFG(", \"bias\": \"lora_only\""), A_FILE, BASE_A, "bias: expected \"none\"" },
	{ "dora", CFG(", \"use_dora\": true"), A_FILE, BASE_A, "use_dora: expected false" },
	{ "modules_to_save", CFG(", \"modules_to_save\": [\"lm_head\"]"), A_FILE, BASE_A,
	  "modules_to_save: expected null or empty" },
	{ "rank_pattern", CFG(", \"rank_pattern\": {\"dense\": 2}"), A_FILE, BASE_A,
	  "rank_pattern: expected null or empty" },
	{ "dropout", CFG(", \"lora_dropout\": 1.5"), A_FILE, BASE_A,
	  "lora_dropout: expected a number in [0, 1), got 1.5" },
	{ "layers", CFG(", \"layers_to_transform\": [7]"), A_FILE, BASE_A,
	  "layers_to_transform[0]: layer 7 does not exist (the model has 2 layers)" },
	{ "fewer targets", "{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": [\"query_key_value\"]}",
	  A_FILE, BASE_A, "adapter_config.json's target_modules do not select this module" },
	{ "more targets", CFG_RT("4", "[\"query_key_value\", \"dense_4h_to_h\", \"dense\"]", ""),
	  A_FILE, BASE_A, "no tensor base_model.model.transformer.h.0.self_attention.dense.lora_A.weight" },
	{ "regex", CFG_RT("4", "\"(\"", ""), A_FILE, BASE_A, "is not a regular expression" },
	{ "not json", "{\"peft_type\": ", A_FILE, BASE_A, "expected a JSON object" },
	{ "twice", CFG(", \"r\": 0"), A_FILE, BASE_A, "adapter_config.json: r: given twice" },
};

static void run_bad_case(const struct bad_case *c, const char *dir)
{
	char *dst = fs_join(dir, LORA_WEIGHTS_FILE);
	bool ok = copy_file(c->weights, dst) && write_text(dir, LORA_CONFIG_FILE, c->config);
	hug_free(dst);
	REQUIRE(ok);
	struct bloom_model m;
	struct lora_model lm;
	struct hug_error err = { 0 };
	REQUIRE(hf_bloom_load(c->base, DT_F32, false, &m, &err) == 0);
	int rc = lora_load(&lm, BLOOM_M(&m), dir, false, &err);
	if (rc == 0) {
		test_fail_at(__FILE__, __LINE__, "%s: loaded", c->what);
		lora_model_free(&lm);
	} else if (!strstr(err.msg, c->expect) || !strstr(err.msg, dir)) {
		test_fail_at(__FILE__, __LINE__, "%s: got \"%s\", expected \"%s\" and the path",
			     c->what, err.msg, c->expect);
	}
	CHECK(no_hooks(&m));
	bloom_model_free(&m);
}

TEST(peft_bad_adapters_give_clear_errors)
{
	char *dir = tmp_dir();
	REQUIRE(dir);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		run_bad_case(&bad_cases[i], dir);
	train_fixture_rmtree(dir);
	hug_free(dir);
}

/* Tensors a base lacks: a layer beyond it, and a key of no LoRA shape. */
TEST(peft_adapter_with_extra_tensors_is_refused)
{
	char *dir = tmp_dir();
	REQUIRE(dir);
	struct arena mem;
	arena_init(&mem, "mem", 0, NULL);
	struct tensor *a = tensor_zeros(&mem, DT_F32, TENSOR_SHAPE(4, 24));
	struct tensor *b = tensor_zeros(&mem, DT_F32, TENSOR_SHAPE(72, 4));
	static const char *const extra[] = {
		"base_model.model.transformer.h.5.self_attention.query_key_value.lora_A.weight",
		"base_model.model.lm_head.lora_A.weight",
	};
	static const char *const expect[] = {
		"the base model has no layer 5 (it has 2): this adapter was made for another base model",
		"base_model.model.lm_head.lora_A.weight: not a LoRA tensor of a BLOOM block",
	};
	for (int e = 0; e < 2; e++) {
		struct st_writer *w = st_writer_new();
		char name[128];
		struct hug_error err = { 0 };
		for (int l = 0; l < 2; l++) {
			/* PEFT's keys without "transformer." are accepted too */
			snprintf(name, sizeof(name), "base_model.model.%sh.%d.self_attention."
				 "query_key_value.lora_A.weight", l ? "" : "transformer.", l);
			st_writer_add(w, name, a, DT_F32);
			{
				struct model_linear lin;
				struct model_config mc;
				struct bloom_config bc = bloom_config_make(64, 24, 2, 4);
				bloom_model_config(&mc, &bc);
				model_config_linear(&mc, l, BLOOM_QKV, &lin);
				lora_param_name(name, sizeof(name), lin.path, 'B');
			}
			st_writer_add(w, name, b, DT_F32);
		}
		char *path = fs_join(dir, LORA_WEIGHTS_FILE);
		REQUIRE(st_writer_write(w, path, &err) == 0);
		REQUIRE(write_text(dir, LORA_CONFIG_FILE, "{\"peft_type\": \"LORA\", \"r\": 4}"));
		struct bloom_model m;
		struct lora_model lm;
		REQUIRE(hf_bloom_load(BASE_A, DT_F32, false, &m, &err) == 0);
		CHECK(lora_load(&lm, BLOOM_M(&m), dir, false, &err) == 0); /* the two layers alone load */
		lora_model_free(&lm);
		st_writer_add(w, extra[e], a, DT_F32);
		REQUIRE(st_writer_write(w, path, &err) == 0);
		CHECK(lora_load(&lm, BLOOM_M(&m), dir, false, &err) == -1);
		if (!strstr(err.msg, expect[e]))
			test_fail_at(__FILE__, __LINE__, "got \"%s\"", err.msg);
		CHECK(no_hooks(&m));
		bloom_model_free(&m);
		st_writer_free(w);
		hug_free(path);
	}
	arena_free(&mem);
	train_fixture_rmtree(dir);
	hug_free(dir);
}
