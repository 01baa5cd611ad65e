/* test_tensorboard.c: TensorBoard event files (train/tensorboard.c):
 * CRC-32C against its definition, the record framing and the Event
 * messages read back here with protobuf-c, the bytes of a fixed sequence
 * against tests/fixtures/tensorboard/ (a file TensorBoard's own reader
 * parsed: tools/ref/check_tensorboard.py wrote read.json beside it), and
 * `hug train` writing loss, lr and validation events equal to
 * metrics.jsonl, with a session start at the resumed step. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/crc32c.h"
#include "../base/fs.h"
#include "../train/tensorboard.h"
#include "harness.h"
#include "train/tensorboard.pb-c.h"
#include "train_fixture.h"

#define FIXTURE_DIR "tests/fixtures/tensorboard"

/* CRC-32C bit by bit, from the definition. */
static uint32_t crc_bits(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & -(c & 1));
	}
	return ~c;
}

TEST(crc32c_matches_definition)
{
	CHECK(crc32c("123456789", 9) == 0xE3069283u);
	CHECK(crc32c("", 0) == 0);
	uint8_t buf[300];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 37 + 11);
	int bad = 0;
	for (size_t off = 0; off < 9; off++)
		for (size_t n = 0; n + off <= sizeof(buf); n += 7)
			bad += crc32c(buf + off, n) != crc_bits(buf + off, n);
	CHECK(bad == 0);
}

/* The events of one file, checked record by record (framing and both
 * CRCs); NULL after a test failure. Free with free_events. */
struct events {
	int n;
	Tensorboard__Event *ev[256];
};

static uint32_t masked(const uint8_t *p, size_t n)
{
	uint32_t c = crc_bits(p, n);
	return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

static uint64_t get_le(const uint8_t *b, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static bool read_events(const char *path, struct events *e)
{
	size_t len;
	uint8_t *buf = (uint8_t *)test_read_file(path, &len);
	memset(e, 0, sizeof(*e));
	if (!buf) {
		test_fail_at(__FILE__, __LINE__, "%s: cannot read", path);
		return false;
	}
	size_t at = 0;
	bool ok = true;
	while (ok && at < len && e->n < 256) {
		if (len - at < 12) {
			ok = false;
			break;
		}
		uint64_t n = get_le(buf + at, 8);
		ok = get_le(buf + at + 8, 4) == masked(buf + at, 8) && n <= len - at - 16 &&
		     get_le(buf + at + 12 + n, 4) == masked(buf + at + 12, n);
		if (ok)
			e->ev[e->n] = tensorboard__event__unpack(NULL, n, buf + at + 12);
		ok = ok && e->ev[e->n++];
		at += 16 + n;
	}
	free(buf);
	if (!ok)
		test_fail_at(__FILE__, __LINE__, "%s: bad record %d", path, e->n);
	return ok;
}

static void free_events(struct events *e)
{
	for (int i = 0; i < e->n; i++)
		if (e->ev[i])
			tensorboard__event__free_unpacked(e->ev[i], NULL);
	e->n = 0;
}

static double fixed_clock(void)
{
	return 1767225600.5; /* 2026-01-01 */
}

/* The fixed sequence of the fixture. */
static bool write_sequence(const char *dir, char *path, size_t n)
{
	struct hug_error err = { 0 };
	struct tb_writer *w;
	if (tb_open(&w, dir, 20, fixed_clock, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return false;
	}
	snprintf(path, n, "%s", tb_path(w));
	cJSON *rec = cJSON_Parse("{\"step\": 21, \"loss\": 3.25, \"lr\": 0.0003, \"grad_norm\": 1.5,"
				 " \"tokens_per_s\": 1234.5, \"skipped\": true}");
	cJSON *val = cJSON_Parse("{\"step\": 22, \"valid_loss\": 2.75, \"valid_ppl\": 15.642}");
	bool ok = tb_scalar(w, "train/custom", 21, -0.125, &err) == 0 &&
		  tb_record(w, rec, &err) == 0 && tb_record(w, val, &err) == 0 &&
		  tb_text(w, "samples", 22, "**Hello**, wörld", &err) == 0 && tb_sync(w, &err) == 0;
	if (!ok)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	cJSON *bad = cJSON_Parse("{\"loss\": 1}");
	CHECK(tb_record(w, bad, &err) == -1 && strstr(err.msg, "\"step\""));
	cJSON_Delete(bad);
	cJSON_Delete(rec);
	cJSON_Delete(val);
	tb_close(w);
	return ok;
}

static const Tensorboard__Summary__Value *find_value(const Tensorboard__Event *ev,
						     const char *tag)
{
	if (ev->what_case != TENSORBOARD__EVENT__WHAT_SUMMARY)
		return NULL;
	for (size_t i = 0; i < ev->summary->n_value; i++)
		if (!strcmp(ev->summary->value[i]->tag, tag))
			return ev->summary->value[i];
	return NULL;
}

TEST(tensorboard_records_read_back)
{
	char dir[] = "/tmp/hug-tb-XXXXXX", path[512];
	REQUIRE(mkdtemp(dir));
	REQUIRE(write_sequence(dir, path, sizeof(path)));
	CHECK(strstr(path, "/events.out.tfevents.1767225600.") != NULL);
	struct events e;
	REQUIRE(read_events(path, &e));
	CHECK(e.n == 6);
	if (e.n == 6) {
		CHECK(e.ev[0]->what_case == TENSORBOARD__EVENT__WHAT_FILE_VERSION &&
		      !strcmp(e.ev[0]->file_version, "brain.Event:2"));
		CHECK(e.ev[1]->what_case == TENSORBOARD__EVENT__WHAT_SESSION_LOG &&
		      e.ev[1]->session_log->status ==
			      TENSORBOARD__SESSION_LOG__SESSION_STATUS__START &&
		      e.ev[1]->step == 21);
		CHECK(e.ev[0]->wall_time == fixed_clock());
		const Tensorboard__Summary__Value *v = find_value(e.ev[2], "train/custom");
		CHECK(v && v->simple_value == -0.125f && e.ev[2]->step == 21);
		CHECK(e.ev[3]->step == 21 && e.ev[3]->summary->n_value == 5);
		v = find_value(e.ev[3], "train/loss");
		CHECK(v && v->simple_value == 3.25f);
		v = find_value(e.ev[3], "train/skipped");
		CHECK(v && v->simple_value == 1.0f);
		v = find_value(e.ev[4], "valid/loss");
		CHECK(v && v->simple_value == 2.75f && e.ev[4]->step == 22);
		CHECK(find_value(e.ev[4], "valid/ppl") != NULL);
		v = find_value(e.ev[5], "samples");
		CHECK(v && v->value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR &&
		      v->metadata && !strcmp(v->metadata->plugin_data->plugin_name, "text") &&
		      v->tensor->dtype == 7 && v->tensor->n_string_val == 1 &&
		      !memcmp(v->tensor->string_val[0].data, "**Hello**, wörld",
			      strlen("**Hello**, wörld")));
	}
	free_events(&e);

	/* the same bytes as the fixture TensorBoard's reader parsed */
	size_t a, b;
	char *got = test_read_file(path, &a);
	if (getenv("HUG_TB_FIXTURE_WRITE")) {
		FILE *f = fopen(FIXTURE_DIR "/events.out.tfevents.fixture", "wb");
		REQUIRE(f && fwrite(got, 1, a, f) == a);
		fclose(f);
	}
	char *want = test_read_file(FIXTURE_DIR "/events.out.tfevents.fixture", &b);
	CHECK(want && a == b && memcmp(got, want, a) == 0);
	free(got);
	free(want);
	/* what TensorBoard's reader saw in it */
	char *seen = test_read_file(FIXTURE_DIR "/read.json", NULL);
	CHECK(seen && strstr(seen, "\"train/loss\": [[21, 3.25]]") &&
	      strstr(seen, "\"valid/loss\": [[22, 2.75]]") &&
	      strstr(seen, "\"samples\": [[22, \"**Hello**, w\\u00f6rld\"]]"));
	free(seen);
	train_fixture_rmtree(dir);
}

/* The one events file under dir whose name is not `other` (NULL: any). */
static bool find_events(const char *dir, const char *other, char *out, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;
	while (d && (de = readdir(d)) != NULL)
		if (!strncmp(de->d_name, "events.out.tfevents.", 20) &&
		    (!other || strcmp(de->d_name, other))) {
			snprintf(out, n, "%s/%s", dir, de->d_name);
			found = true;
		}
	if (d)
		closedir(d);
	return found;
}

TEST(tensorboard_from_hug_train)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	const char *dir = train_fixture_setup(6000, NULL, ", \"steps\": 6, \"eval_every\": 3, "
					      "\"save_every\": 3");
	REQUIRE(dir);
	char out[512], log[8192], first[1024], second[1024];
	snprintf(out, sizeof(out), "%s/run", dir);
	const char *opts = "--set schedule.warmup_steps=1 --set data.valid_fraction=0.1";
	REQUIRE(train_fixture_hug(log, sizeof(log), "train %s/recipe.json %s", dir, opts) == 0);
	REQUIRE(find_events(out, NULL, first, sizeof(first)));
	/* as if killed after logging step 6 but before its checkpoint */
	char ckpt[600];
	snprintf(ckpt, sizeof(ckpt), "%s/checkpoint-6", out);
	train_fixture_rmtree(ckpt);
	REQUIRE(!fs_exists(ckpt));
	sleep(1); /* the second file's name has another second in it */
	REQUIRE(train_fixture_hug(log, sizeof(log), "train %s/recipe.json --resume %s", dir,
				  opts) == 0);
	REQUIRE(find_events(out, strrchr(first, '/') + 1, second, sizeof(second)));

	/* the losses equal metrics.jsonl's (as floats), steps 1..3 then 4..6 */
	char *mpath = fs_join(out, "metrics.jsonl");
	char *metrics = test_read_file(mpath, NULL);
	hug_free(mpath);
	REQUIRE(metrics);
	double loss[7] = { 0 };
	for (char *l = strtok(metrics, "\n"); l; l = strtok(NULL, "\n")) {
		int step;
		char *x = strstr(l, "\"loss\":");
		if (sscanf(l, "{\"step\":%d", &step) == 1 && x && step >= 1 && step <= 6)
			loss[step] = strtod(x + 7, NULL);
	}
	free(metrics);
	/* the first file holds steps 1..6, the second a session start at 4 and
	 * steps 4..6 again (TensorBoard drops the first file's 4..6) */
	int seen[2] = { 0, 0 }, valid = 0, starts = 0;
	for (int f = 0; f < 2; f++) {
		struct events e;
		REQUIRE(read_events(f ? second : first, &e));
		for (int i = 0; i < e.n; i++) {
			const Tensorboard__Event *ev = e.ev[i];
			if (ev->what_case == TENSORBOARD__EVENT__WHAT_SESSION_LOG) {
				CHECK(f == 1 && ev->step == 4);
				starts++;
			}
			const Tensorboard__Summary__Value *v = find_value(ev, "train/loss");
			if (v) {
				CHECK(ev->step >= (f ? 4 : 1) && ev->step <= 6);
				CHECK(v->simple_value == (float)loss[ev->step]);
				CHECK(find_value(ev, "train/lr") && find_value(ev, "train/grad_norm") &&
				      find_value(ev, "train/tokens_per_s") && find_value(ev, "train/tokens"));
				seen[f]++;
			}
			valid += find_value(ev, "valid/loss") != NULL;
		}
		free_events(&e);
	}
	CHECK(seen[0] == 6 && seen[1] == 3);
	CHECK(valid == 3);
	CHECK(starts == 1);
	train_fixture_rmtree(dir);
}
