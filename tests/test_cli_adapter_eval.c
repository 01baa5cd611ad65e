/* test_cli_adapter_eval.c: `hug eval --adapter` on every PEFT fixture
 * (BLOOM, Llama, Qwen2): the logits it dumps equal those PEFT computed
 * for the base with the adapter (tools/ref/make_peft_fixtures.py, the
 * fixture's reference.safetensors), row by row over the kept positions of
 * the padded reference batch. Needs HUG_BIN (set by make test). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../io/safetensors.h"
#include "harness.h"
#include "peft_fixture.h"
#include "train_fixture.h"

static int32_t i32_at(const struct st_tensor *t, int64_t i)
{
	int32_t v;
	memcpy(&v, (const char *)t->data + i * 4, 4);
	return v;
}

/* Writes the unpadded rows of the reference batch as eval's JSON input.
 * 0 or -1. */
static int write_input(const struct st_tensor *ids, const struct st_tensor *mask,
		       const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	int64_t b = ids->shape[0], t = ids->shape[1];
	fputc('[', f);
	for (int64_t i = 0; i < b; i++) {
		fprintf(f, "%s[", i ? "," : "");
		for (int64_t j = 0, k = 0; j < t; j++)
			if (i32_at(mask, i * t + j))
				fprintf(f, "%s%d", k++ ? "," : "", i32_at(ids, i * t + j));
		fputc(']', f);
	}
	fputc(']', f);
	return fclose(f);
}

/* max |hug - peft| / max |peft| over the kept positions: eval's row i
 * position k is the reference's k-th kept position of row i. */
static double logits_relerr(const struct st_tensor *got, const struct st_tensor *ref,
			    const struct st_tensor *mask)
{
	int64_t b = ref->shape[0], t = ref->shape[1], v = ref->shape[2], tg = got->shape[1];
	double worst = 0, scale = 0;
	for (int64_t i = 0; i < b; i++)
		for (int64_t j = 0, k = 0; j < t; j++) {
			if (!i32_at(mask, i * t + j))
				continue;
			for (int64_t c = 0; c < v; c++) {
				double want, d;
				float g;
				memcpy(&want, (const char *)ref->data + ((i * t + j) * v + c) * 8, 8);
				memcpy(&g, (const char *)got->data + ((i * tg + k) * v + c) * 4, 4);
				d = fabs((double)g - want);
				worst = d > worst ? d : worst;
				scale = fabs(want) > scale ? fabs(want) : scale;
			}
			k++;
		}
	return scale > 0 ? worst / scale : INFINITY;
}

TEST(cli_eval_adapter_matches_peft_every_family)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	char dir[] = "/tmp/hug-eval-adapter-XXXXXX", in[256], dump[256], out[8192];
	REQUIRE(mkdtemp(dir));
	snprintf(in, sizeof(in), "%s/in.json", dir);
	snprintf(dump, sizeof(dump), "%s/logits.safetensors", dir);
	for (int f = 0; f < n_peft_fixtures; f++) {
		const struct peft_fixture *fx = &peft_fixtures[f];
		struct st_file ref, got;
		struct hug_error err = { 0 };
		REQUIRE(st_open_in(&ref, fx->adapter, "reference.safetensors", &err) == 0);
		const struct st_tensor *ids = st_find(&ref, "input_ids");
		const struct st_tensor *mask = st_find(&ref, "attention_mask");
		const struct st_tensor *logits = st_find(&ref, "logits");
		REQUIRE(ids && mask && logits && logits->dtype == DT_F64);
		REQUIRE(write_input(ids, mask, in) == 0);
		int rc = train_fixture_hug(out, sizeof(out), "eval --model %s --adapter %s --input %s "
					   "--dump-logits %s", fx->base, fx->adapter, in, dump);
		if (rc != 0) {
			test_fail_at(__FILE__, __LINE__, "%s: exit %d: %s", fx->adapter, rc, out);
			st_close(&ref);
			continue;
		}
		REQUIRE(st_open(&got, dump, &err) == 0);
		const struct st_tensor *g = st_find(&got, "logits");
		REQUIRE(g && g->dtype == DT_F32 && g->shape[2] == logits->shape[2]);
		double e = logits_relerr(g, logits, mask);
		printf("(%s %.1e) ", strrchr(fx->adapter, '/') + 1, e);
		if (!(e < 1e-5))
			test_fail_at(__FILE__, __LINE__, "%s: logits differ from PEFT's by %.3g",
				     fx->adapter, e);
		/* without the adapter, the base's logits are not the adapted ones */
		CHECK(train_fixture_hug(out, sizeof(out), "eval --model %s --input %s --dump-logits %s",
					fx->base, in, dump) == 0);
		st_close(&got);
		REQUIRE(st_open(&got, dump, &err) == 0);
		CHECK(logits_relerr(st_find(&got, "logits"), logits, mask) > 1e-3);
		st_close(&got);
		st_close(&ref);
	}
	/* a directory without an adapter is refused, naming the file */
	CHECK(train_fixture_hug(out, sizeof(out), "eval --model tests/fixtures/bloom-tiny-a "
				"--adapter tests/fixtures/bloom-tiny-b --input %s", in) == 2);
	CHECK(strstr(out, "adapter_config.json") != NULL);
	unlink(in);
	unlink(dump);
	rmdir(dir);
}
