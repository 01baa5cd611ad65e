/* test_loader.c: data/loader. Shards hold tokens that encode their own
 * position (source * 1e6 + stream offset), so every served row says exactly
 * which sample it is: epoch coverage across 1, 2 and 3 ranks, blend ratios,
 * loss-mask targets, save/restore (with and without prefetch, across world
 * sizes, through JSON), the validation split and the error messages. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/alloc.h"
#include "../data/loader.h"
#include "harness.h"
#include "test_shard_util.h"

#define VOCAB (1 << 24)
#define SRC_BASE 1000000

/* Sources of the current fixture that have a loss mask (bit per source). */
static unsigned masked_sources;

struct fixture {
	char dir[256];
	char glob[LOADER_MAX_SOURCES][512];
	struct loader_source src[LOADER_MAX_SOURCES];
	int n_src;
};

/* Adds source dir/<name>/ with shards of the given sizes (0 allowed);
 * token = n_src * SRC_BASE + stream offset. */
static void add_source(struct fixture *fx, const char *name, double weight,
		       const int64_t *sizes, int n_shards, bool mask)
{
	char sub[400], path[600];
	int s = fx->n_src++;
	if (s == 0)
		masked_sources = 0;
	if (mask)
		masked_sources |= 1u << s;
	struct shard_meta m = tsu_meta(VOCAB, "sha256:test");
	snprintf(sub, sizeof(sub), "%s/%s", fx->dir, name);
	mkdir(sub, 0755);
	int64_t base = (int64_t)s * SRC_BASE;
	for (int f = 0; f < n_shards; f++) {
		snprintf(path, sizeof(path), "%s/shard-%05d.h5", sub, f);
		tsu_write_counting(path, &m, base, sizes[f], 13, mask);
		base += sizes[f];
	}
	snprintf(fx->glob[s], sizeof(fx->glob[s]), "%s/shard-*.h5", sub);
	fx->src[s] = (struct loader_source){ .glob = fx->glob[s],
					     .weight = weight };
}

static struct loader_config config(struct fixture *fx, int64_t T, int64_t B,
				   int rank, int world, int prefetch)
{
	return (struct loader_config){
		.sources = fx->src, .n_sources = fx->n_src, .seq_len = T,
		.batch_size = B, .rank = rank, .world = world, .seed = 1234,
		.prefetch = prefetch,
	};
}

static struct loader *open_ok(const struct loader_config *c)
{
	struct hug_error err = { 0 };
	struct loader *L = NULL;
	if (loader_open(c, &L, &err) < 0)
		test_fail_at(__FILE__, __LINE__, "loader_open: %s", err.msg);
	return L;
}

/* Checks a row is one whole window, targets masked exactly where the
 * fixture's mask is 0 (masked sources, offsets divisible by 3); returns
 * (source, sample index) as source * SRC_BASE + index, or -1. */
static int64_t row_sample(const int32_t *in, const int32_t *tg, int64_t T)
{
	int64_t tok0 = in[0], src = tok0 / SRC_BASE, pos = tok0 % SRC_BASE;
	bool masked = masked_sources >> src & 1;
	if (pos % (T + 1) != 0)
		return -1;
	for (int64_t t = 0; t < T; t++) {
		int64_t next = tok0 + t + 1;
		if (in[t] != tok0 + t)
			return -1;
		if (tg[t] != (masked && next % 3 == 0 ? -100 : next))
			return -1;
	}
	return src * SRC_BASE + pos / (T + 1);
}

/* One source of 4 shards (one empty): 10223 tokens, T = 7: 1277 samples,
 * 7 tokens dropped. Over two epochs of global draws, the rows of all ranks
 * together hold every training sample exactly once per epoch. */
static void coverage(int world)
{
	struct fixture fx = { 0 };
	const int64_t sizes[] = { 5000, 0, 3001, 2222 };
	const int64_t T = 7, B = 3, n = 1277;
	tsu_tmp_dir(fx.dir, sizeof(fx.dir), "loader");
	add_source(&fx, "a", 1.0, sizes, 4, false);
	int *seen = hug_calloc(2 * n, sizeof(int));
	int32_t *in = hug_malloc(B * T * sizeof(int32_t));
	int32_t *tg = hug_malloc(B * T * sizeof(int32_t));
	for (int r = 0; r < world; r++) {
		struct loader_config c = config(&fx, T, B, r, world, r % 2 * 2);
		struct loader *L = open_ok(&c);
		REQUIRE(L);
		struct loader_source_stats st;
		loader_stats(L, 0, &st);
		CHECK(st.n_train == n && st.dropped_tokens == 7 &&
		      st.n_files == 4 && st.n_tokens == 10223);
		/* rank r's k-th row is global draw k/B*B*world + r*B + k%B;
		 * pull whole steps until every draw < 2n is behind us */
		int64_t steps = (2 * n + B * world - 1) / (B * world), k = 0;
		for (int64_t b = 0; b < steps; b++) {
			struct hug_error err = { 0 };
			REQUIRE(loader_next(L, in, tg, &err) == 0);
			for (int64_t i = 0; i < B; i++, k++) {
				int64_t smp = row_sample(in + i * T, tg + i * T, T);
				REQUIRE(smp >= 0 && smp < n);
				int64_t g = k / B * B * world + r * B + k % B;
				if (g < 2 * n)
					seen[(g >= n) * n + smp]++;
			}
		}
		loader_close(L);
	}
	int bad = 0;
	for (int64_t i = 0; i < 2 * n; i++)
		bad += seen[i] != 1;
	CHECK(bad == 0);
	hug_free(seen);
	hug_free(in);
	hug_free(tg);
	tsu_tmp_dir_remove(fx.dir);
}

TEST(loader_epoch_coverage_1_rank) { coverage(1); }
TEST(loader_epoch_coverage_2_ranks) { coverage(2); }
TEST(loader_epoch_coverage_3_ranks) { coverage(3); }

/* The order is shuffled, and differently in the next epoch. */
TEST(loader_shuffles_per_epoch)
{
	struct fixture fx = { 0 };
	const int64_t sizes[] = { 800 }, T = 7, n = 100;
	tsu_tmp_dir(fx.dir, sizeof(fx.dir), "loader");
	add_source(&fx, "a", 1.0, sizes, 1, false);
	struct loader_config c = config(&fx, T, 1, 0, 1, 0);
	struct loader *L = open_ok(&c);
	REQUIRE(L);
	int64_t order[200];
	int32_t in[7], tg[7];
	for (int i = 0; i < 2 * n; i++) {
		struct hug_error err = { 0 };
		REQUIRE(loader_next(L, in, tg, &err) == 0);
		order[i] = row_sample(in, tg, T);
	}
	int in_place = 0, same_next = 0;
	for (int i = 0; i < n; i++) {
		in_place += order[i] == i;
		same_next += order[i] == order[n + i];
	}
	CHECK(in_place < 10 && same_next < 10);
	loader_close(L);
	tsu_tmp_dir_remove(fx.dir);
}

/* Targets are -100 exactly where the target token's mask byte is 0 (the
 * fixture's mask is 0 at stream offsets divisible by 3). */
TEST(loader_loss_mask_targets)
{
	struct fixture fx = { 0 };
	const int64_t sizes[] = { 700, 333 }, T = 9, B = 4;
	tsu_tmp_dir(fx.dir, sizeof(fx.dir), "loader");
	add_source(&fx, "m", 1.0, sizes, 2, true);
	struct loader_config c = config(&fx, T, B, 0, 1, 1);
	struct loader *L = open_ok(&c);
	REQUIRE(L);
	int32_t in[36], tg[36];
	int masked = 0, bad = 0;
	for (int b = 0; b < 30; b++) {
		struct hug_error err = { 0 };
		REQUIRE(loader_next(L, in, tg, &err) == 0);
		for (int i = 0; i < B * T; i++) {
			int64_t tok = in[i] + 1, want = tok % 3 ? tok : -100;
			bad += tg[i] != want;
			masked += tg[i] == -100;
		}
	}
	CHECK(bad == 0 && masked > 0);
	loader_close(L);
	tsu_tmp_dir_remove(fx.dir);
}

/* 10,000 samples from three sources weighted .5/.3/.2: the realised mix is
 * within 1% of the weights (whole run, and one rank of 2 or 8), every batch
 * of 10 rows is within one row of 5/3/2, every source's epochs are complete
 * permutations, and the stats agree. */
static void blend(int rank, int world)
{
	struct fixture fx = { 0 };
	const int64_t a[] = { 1000 }, b[] = { 300, 300 }, c3[] = { 3000 };
	const int64_t T = 7, B = 10, n_train[] = { 125, 75, 375 };
	const double w[] = { 0.5, 0.3, 0.2 };
	tsu_tmp_dir(fx.dir, sizeof(fx.dir), "loader");
	add_source(&fx, "a", 5, a, 1, false);
	add_source(&fx, "b", 3, b, 2, true);
	add_source(&fx, "c", 2, c3, 1, false);
	struct loader_config c = config(&fx, T, B, rank, world, 2);
	struct loader *L = open_ok(&c);
	REQUIRE(L);
	int64_t count[3] = { 0 };
	int *seen[3];
	int64_t *order[3];
	for (int s = 0; s < 3; s++) {
		seen[s] = hug_calloc((size_t)n_train[s], sizeof(int));
		order[s] = hug_malloc(10000 * sizeof(int64_t));
	}
	int32_t in[70], tg[70];
	int lopsided = 0;
	for (int k = 0; k < 1000; k++) {
		struct hug_error err = { 0 };
		int64_t in_batch[3] = { 0 };
		REQUIRE(loader_next(L, in, tg, &err) == 0);
		for (int i = 0; i < B; i++) {
			int64_t smp = row_sample(in + i * T, tg + i * T, T);
			REQUIRE(smp >= 0);
			int s = (int)(smp / SRC_BASE);
			order[s][count[s]++] = smp % SRC_BASE;
			in_batch[s]++;
		}
		/* every batch of 10 is close to 5/3/2 */
		for (int s = 0; s < 3; s++)
			lopsided += fabs((double)in_batch[s] - B * w[s]) > 1.5;
	}
	CHECK(lopsided == 0);
	for (int s = 0; s < 3; s++) {
		CHECK_NEAR(count[s] / 10000.0, w[s], 0.01);
		struct loader_source_stats st;
		loader_stats(L, s, &st);
		CHECK_NEAR(st.weight, w[s], 1e-12);
		CHECK(st.served_tokens == count[s] * T);
		if (world == 1) {
			CHECK(st.drawn == count[s]);
			CHECK(st.epoch == count[s] / n_train[s]);
			/* each complete epoch is a permutation */
			for (int64_t i = 0; i + n_train[s] <= count[s];
			     i += n_train[s]) {
				memset(seen[s], 0, n_train[s] * sizeof(int));
				int dup = 0;
				for (int64_t j = 0; j < n_train[s]; j++)
					dup += seen[s][order[s][i + j]]++ != 0;
				CHECK(dup == 0);
			}
		}
		hug_free(seen[s]);
		hug_free(order[s]);
	}
	loader_close(L);
	tsu_tmp_dir_remove(fx.dir);
}

TEST(loader_blend_ratios_1_rank) { blend(0, 1); }
TEST(loader_blend_ratios_rank_1_of_2) { blend(1, 2); }
TEST(loader_blend_ratios_rank_3_of_8) { blend(3, 8); }

/* ---- state ---- */

static void two_sources(struct fixture *fx)
{
	const int64_t a[] = { 900, 1111 }, b[] = { 2000 };
	tsu_tmp_dir(fx->dir, sizeof(fx->dir), "loader");
	add_source(fx, "a", 0.7, a, 2, true);
	add_source(fx, "b", 0.3, b, 1, false);
}

#define ST_T 5
#define ST_B 4
#define ST_N 20

/* The first ST_N batches of a fresh loader with this prefetch. */
static void reference(struct fixture *fx, int rank, int world, int prefetch,
		      int32_t (*ref)[2][ST_B * ST_T])
{
	struct loader_config c = config(fx, ST_T, ST_B, rank, world, prefetch);
	struct loader *L = open_ok(&c);
	for (int k = 0; L && k < ST_N; k++) {
		struct hug_error err = { 0 };
		CHECK(loader_next(L, ref[k][0], ref[k][1], &err) == 0);
	}
	loader_close(L);
}

static bool same_batch(struct loader *L, int32_t (*want)[ST_B * ST_T])
{
	int32_t in[ST_B * ST_T], tg[ST_B * ST_T];
	struct hug_error err = { 0 };
	if (loader_next(L, in, tg, &err) < 0) {
		fprintf(stderr, "    loader_next: %s\n", err.msg);
		return false;
	}
	return memcmp(in, want[0], sizeof(in)) == 0 &&
	       memcmp(tg, want[1], sizeof(tg)) == 0;
}

/* Save after 7 batches, pull 3 more (prefetch runs further), then resume in
 * a new loader through JSON text, and in the same loader: both continue
 * with batch 8 of an uninterrupted run. */
static void restore(int p1, int p2)
{
	struct fixture fx = { 0 };
	int32_t ref[ST_N][2][ST_B * ST_T], ref_p[ST_N][2][ST_B * ST_T];
	struct hug_error err = { 0 };
	two_sources(&fx);
	reference(&fx, 1, 2, 0, ref);
	reference(&fx, 1, 2, 3, ref_p);
	CHECK(memcmp(ref, ref_p, sizeof(ref)) == 0);

	struct loader_config c = config(&fx, ST_T, ST_B, 1, 2, p1);
	struct loader *L = open_ok(&c);
	REQUIRE(L);
	for (int k = 0; k < 7; k++)
		CHECK(same_batch(L, ref[k]));
	struct loader_state st, back;
	loader_state_save(L, &st);
	CHECK(st.cursor == 7 * ST_B * 2);
	cJSON *j = loader_state_to_json(&st);
	char *text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	cJSON *parsed = cJSON_Parse(text);
	REQUIRE(loader_state_from_json(parsed, "state", &back, &err) == 0);
	cJSON_Delete(parsed);
	cJSON_free(text);
	CHECK(memcmp(&st, &back, sizeof(st)) == 0);
	for (int k = 7; k < 10; k++)
		CHECK(same_batch(L, ref[k]));

	c.prefetch = p2;
	struct loader *L2 = open_ok(&c);
	REQUIRE(L2);
	REQUIRE(loader_state_restore(L2, &back, &err) == 0);
	for (int k = 7; k < ST_N; k++)
		CHECK(same_batch(L2, ref[k]));
	loader_close(L2);

	REQUIRE(loader_state_restore(L, &st, &err) == 0);
	for (int k = 7; k < ST_N; k++)
		CHECK(same_batch(L, ref[k]));
	loader_close(L);
	tsu_tmp_dir_remove(fx.dir);
}

TEST(loader_restore_sync) { restore(0, 0); }
TEST(loader_restore_prefetch) { restore(2, 4); }
TEST(loader_restore_mixed) { restore(3, 0); }

/* The state is global: world 2 after 5 batches equals world 1 after 10,
 * and a world-1 loader resumes from a world-2 state. */
TEST(loader_state_is_rank_independent)
{
	struct fixture fx = { 0 };
	int32_t ref[ST_N][2][ST_B * ST_T];
	int32_t in[ST_B * ST_T], tg[ST_B * ST_T];
	struct hug_error err = { 0 };
	struct loader_state s2, s1;
	two_sources(&fx);
	reference(&fx, 0, 1, 0, ref);
	struct loader_config c = config(&fx, ST_T, ST_B, 0, 2, 1);
	struct loader *L = open_ok(&c);
	REQUIRE(L);
	for (int k = 0; k < 5; k++)
		REQUIRE(loader_next(L, in, tg, &err) == 0);
	loader_state_save(L, &s2);
	loader_close(L);
	c = config(&fx, ST_T, ST_B, 0, 1, 0);
	L = open_ok(&c);
	REQUIRE(L);
	for (int k = 0; k < 10; k++)
		CHECK(same_batch(L, ref[k]));
	loader_state_save(L, &s1);
	CHECK(memcmp(&s1, &s2, sizeof(s1)) == 0);
	loader_close(L);
	L = open_ok(&c);
	REQUIRE(L);
	REQUIRE(loader_state_restore(L, &s2, &err) == 0);
	CHECK(same_batch(L, ref[10]));
	loader_close(L);
	tsu_tmp_dir_remove(fx.dir);
}

TEST(loader_restore_refuses_mismatch)
{
	struct fixture fx = { 0 };
	struct hug_error err = { 0 };
	struct loader_state st, bad;
	two_sources(&fx);
	struct loader_config c = config(&fx, ST_T, ST_B, 0, 1, 2);
	struct loader *L = open_ok(&c);
	REQUIRE(L);
	loader_state_save(L, &st);
	bad = st;
	bad.seed++;
	CHECK(loader_state_restore(L, &bad, &err) == -1);
	CHECK(tsu_has(err.msg, "seed 1235", "has 1234", NULL));
	hug_error_clear(&err);
	bad = st;
	bad.n_train[1]--;
	CHECK(loader_state_restore(L, &bad, &err) == -1);
	CHECK(tsu_has(err.msg, "sources[1] had 332", "now 333",
		      "data changed", NULL));
	hug_error_clear(&err);
	bad = st;
	bad.drawn[0] = 5;
	CHECK(loader_state_restore(L, &bad, &err) == -1);
	CHECK(tsu_has(err.msg, "cursor 0", NULL));
	/* JSON */
	hug_error_clear(&err);
	cJSON *j = cJSON_Parse("{\"version\":1,\"seed\":\"12\",\"seq_len\":5,"
			       "\"cursor\":-3,\"sources\":[{\"drawn\":0,"
			       "\"n_train\":1}]}");
	CHECK(loader_state_from_json(j, "trainer_state.json: data", &bad,
				     &err) == -1);
	CHECK(tsu_has(err.msg, "trainer_state.json: data.cursor: expected an "
		      "integer >= 0", NULL));
	cJSON_Delete(j);
	hug_error_clear(&err);
	j = cJSON_Parse("{\"version\":1,\"seed\":12,\"seq_len\":5,"
			"\"cursor\":0,\"sources\":[]}");
	CHECK(loader_state_from_json(j, "d", &bad, &err) == -1);
	CHECK(tsu_has(err.msg, "d.seed: expected a decimal string", NULL));
	cJSON_Delete(j);
	/* still usable */
	int32_t in[ST_B * ST_T], tg[ST_B * ST_T];
	CHECK(loader_next(L, in, tg, &err) == 0);
	loader_close(L);
	tsu_tmp_dir_remove(fx.dir);
}

/* ---- validation split ---- */

/* valid_fraction 0.1 of 1277 samples: the last 127 are held out; the
 * validation pass of 3 ranks covers them exactly once, with padding rows
 * at the end, and training never serves them. */
TEST(loader_valid_disjoint)
{
	struct fixture fx = { 0 };
	const int64_t sizes[] = { 5000, 3001, 2222 }, b2[] = { 400 };
	const int64_t T = 7, B = 4, n = 1277, nv = 127, nt = n - nv;
	tsu_tmp_dir(fx.dir, sizeof(fx.dir), "loader");
	add_source(&fx, "a", 0.9, sizes, 3, false);
	add_source(&fx, "b", 0.1, b2, 1, true);
	int *seen = hug_calloc(n, sizeof(int));
	int seen_b = 0, bad = 0;
	int32_t in[28], tg[28], sid[4];
	for (int r = 0; r < 3; r++) {
		struct loader_config c = config(&fx, T, B, r, 3, 2);
		c.valid_fraction = 0.1;
		struct loader *L = open_ok(&c);
		REQUIRE(L);
		CHECK(loader_valid_samples(L) == nv + 5);
		struct hug_error err = { 0 };
		struct loader_valid *v;
		REQUIRE(loader_valid_open(L, &v, &err) == 0);
		int64_t rows;
		while ((rows = loader_valid_next(v, in, tg, sid, &err)) > 0) {
			for (int64_t i = 0; i < B; i++) {
				int64_t smp = row_sample(in + i * T, tg + i * T, T);
				if (i >= rows) {
					bad += sid[i] != -1 || tg[i * T] != -100;
				} else if (sid[i] == 1) {
					bad += smp < SRC_BASE + 45;
					seen_b++;
				} else {
					bad += sid[i] != 0 || smp < nt;
					seen[smp]++;
				}
			}
		}
		CHECK(rows == 0);
		loader_valid_close(v);
		/* a training epoch of source a never reaches the tail */
		for (int k = 0; k < 400; k++) {
			REQUIRE(loader_next(L, in, tg, &err) == 0);
			for (int i = 0; i < B; i++) {
				int64_t smp = row_sample(in + i * T, tg + i * T, T);
				bad += smp < SRC_BASE ? smp >= nt :
				       smp >= SRC_BASE + 45;
			}
		}
		loader_close(L);
	}
	CHECK(bad == 0);
	CHECK(seen_b == 5);
	int wrong = 0;
	for (int64_t i = 0; i < n; i++)
		wrong += seen[i] != (i >= nt);
	CHECK(wrong == 0);
	hug_free(seen);
	tsu_tmp_dir_remove(fx.dir);
}

/* ---- errors ---- */

static void expect_open_error(struct loader_config *c, const char *a,
			      const char *b)
{
	struct hug_error err = { 0 };
	struct loader *L = (void *)1;
	CHECK(loader_open(c, &L, &err) == -1 && L == NULL);
	CHECK(tsu_has(err.msg, a, b, NULL));
}

TEST(loader_errors)
{
	struct fixture fx = { 0 };
	char path[1024];
	two_sources(&fx);
	struct loader_config c = config(&fx, ST_T, ST_B, 0, 1, 0);

	/* empty glob, named by the caller's label */
	char missing[600];
	snprintf(missing, sizeof(missing), "%s/xx/*.h5", fx.dir);
	struct loader_source src[2] = { fx.src[0], { .glob = missing,
		.weight = 1, .label = "data.train[1].path" } };
	c.sources = src;
	snprintf(path, sizeof(path), "data.train[1].path: %s matched no files",
		 missing);
	expect_open_error(&c, path, NULL);
	c.sources = fx.src;

	c.expect_vocab_size = 8192;
	expect_open_error(&c, "shard-00000.h5: attribute vocab_size is "
			  "16777216, expected 8192", "sources[0]: ");
	c.expect_vocab_size = VOCAB;
	c.expect_tokenizer_hash = "sha256:other";
	expect_open_error(&c, "tokenizer_hash is \"sha256:test\", expected "
			  "\"sha256:other\"", "another tokenizer");
	c.expect_tokenizer_hash = NULL;
	c.seq_len = 2000;
	expect_open_error(&c, "sources[1]: ", "2000 tokens in 1 files, fewer "
			  "than one sample of seq_len + 1 = 2001");
	c.seq_len = ST_T;
	c.rank = 1;
	expect_open_error(&c, "rank 1 of world 1", NULL);
	c.rank = 0;
	c.valid_fraction = 1;
	expect_open_error(&c, "valid_fraction 1", NULL);
	c.valid_fraction = 0;

	/* a shard from another tokenizer among the others */
	struct shard_meta m = tsu_meta(VOCAB, "sha256:else");
	snprintf(path, sizeof(path), "%s/b/shard-00001.h5", fx.dir);
	tsu_write_counting(path, &m, 0, 100, 10, false);
	expect_open_error(&c, "b/shard-00001.h5: attribute tokenizer_hash is "
			  "\"sha256:else\", but", "all shards must come from "
			  "one tokenizer");
	/* not HDF5 */
	FILE *fp = fopen(path, "w");
	fputs("hello\n", fp);
	fclose(fp);
	expect_open_error(&c, "sources[1]: ", "shard-00001.h5: not an HDF5 "
			  "file");
	struct loader_source bad_w[1] = { { .glob = fx.src[0].glob,
					    .weight = 0 } };
	c.sources = bad_w;
	c.n_sources = 1;
	expect_open_error(&c, "sources[0]: weight 0", "> 0");
	tsu_tmp_dir_remove(fx.dir);
}

/* A damaged token inside the data: loader_next fails naming the shard, and
 * keeps failing; a restore clears it (and the same damage fails again). */
static void read_failure(int prefetch)
{
	struct fixture fx = { 0 };
	const int64_t sizes[] = { 600 };
	const int64_t T = 5, B = 4;
	char path[600];
	tsu_tmp_dir(fx.dir, sizeof(fx.dir), "loader");
	add_source(&fx, "a", 1, sizes, 1, false);
	snprintf(path, sizeof(path), "%s/a/shard-00000.h5", fx.dir);
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	REQUIRE(f >= 0);
	hid_t d = H5Dopen2(f, "tokens", H5P_DEFAULT);
	hid_t fs = H5Dget_space(d);
	hsize_t s = 0, cnt = 600;
	int32_t *all = hug_malloc(600 * sizeof(int32_t));
	for (int i = 0; i < 600; i++)
		all[i] = i % 7 == 3 ? -5 : i;
	H5Sselect_hyperslab(fs, H5S_SELECT_SET, &s, NULL, &cnt, NULL);
	H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, fs, H5P_DEFAULT, all);
	H5Sclose(fs);
	H5Dclose(d);
	H5Fclose(f);
	hug_free(all);

	struct loader_config c = config(&fx, T, B, 0, 1, prefetch);
	struct loader *L = open_ok(&c);
	REQUIRE(L);
	int32_t in[20], tg[20];
	struct hug_error err = { 0 };
	CHECK(loader_next(L, in, tg, &err) == -1);
	CHECK(tsu_has(err.msg, path, "dataset tokens: entry", "is id -5",
		      NULL));
	hug_error_clear(&err);
	CHECK(loader_next(L, in, tg, &err) == -1);
	CHECK(tsu_has(err.msg, "is id -5", NULL));
	struct loader_state st;
	loader_state_save(L, &st);
	CHECK(st.cursor == 0);
	hug_error_clear(&err);
	REQUIRE(loader_state_restore(L, &st, &err) == 0);
	CHECK(loader_next(L, in, tg, &err) == -1);
	loader_close(L);
	tsu_tmp_dir_remove(fx.dir);
}

TEST(loader_read_failure_sync) { read_failure(0); }
TEST(loader_read_failure_prefetch) { read_failure(3); }

/* After the first batch, batches allocate nothing through hug_malloc. */
TEST(loader_next_allocates_nothing)
{
	struct fixture fx = { 0 };
	int32_t in[ST_B * ST_T], tg[ST_B * ST_T];
	struct hug_error err = { 0 };
	two_sources(&fx);
	for (int p = 0; p <= 2; p += 2) {
		struct loader_config c = config(&fx, ST_T, ST_B, 0, 1, p);
		struct loader *L = open_ok(&c);
		REQUIRE(L);
		for (int k = 0; k < 3; k++)
			REQUIRE(loader_next(L, in, tg, &err) == 0);
		uint64_t before = hug_alloc_count();
		for (int k = 0; k < 50; k++)
			REQUIRE(loader_next(L, in, tg, &err) == 0);
		CHECK(hug_alloc_count() == before);
		loader_close(L);
	}
	tsu_tmp_dir_remove(fx.dir);
}

/* A source's shards are checked in one child process, not one each: the
 * fork costs ~0.35 s per call in a process that already holds a 2 GB
 * model, so per-shard probes made opening many shards slow. A damaged file
 * among good ones (here one that hangs libhdf5) is still named, and the
 * files before it are not blamed. */
TEST(loader_checks_a_source_in_one_probe)
{
	struct fixture fx = { 0 };
	const int64_t sizes[] = { 300, 400, 500, 600, 700 };
	tsu_tmp_dir(fx.dir, sizeof(fx.dir), "loader");
	add_source(&fx, "a", 1.0, sizes, 5, false);
	struct loader_config c = config(&fx, ST_T, ST_B, 0, 1, 0);
	int64_t before = shard_probe_count();
	struct loader *L = open_ok(&c);
	CHECK(shard_probe_count() - before <= 1);
	loader_close(L);

	/* a hang reproducer among them, sorted after shard-00001 */
	const char *old = getenv("HUG_SHARD_CHECK_SECONDS");
	char *saved = old ? strdup(old) : NULL, cmd[1024], bad[700];
	setenv("HUG_SHARD_CHECK_SECONDS", "1", 1);
	snprintf(bad, sizeof(bad), "%s/a/shard-00001x.h5", fx.dir);
	snprintf(cmd, sizeof(cmd), "cp tests/fixtures/shards-bad/vlen-attr-global-heap-hang.h5 %s",
		 bad);
	REQUIRE(system(cmd) == 0);
	struct hug_error err = { 0 };
	L = (void *)1;
	CHECK(loader_open(&c, &L, &err) == -1 && L == NULL);
	CHECK(strstr(err.msg, bad) != NULL);
	CHECK(strstr(err.msg, "shard-00000.h5") == NULL && strstr(err.msg, "shard-00001.h5") == NULL);
	if (saved) {
		setenv("HUG_SHARD_CHECK_SECONDS", saved, 1);
		free(saved);
	} else {
		unsetenv("HUG_SHARD_CHECK_SECONDS");
	}
	tsu_tmp_dir_remove(fx.dir);
}
