/* test_peft_mpi.c: LoRA fine-tuning under data parallelism: `mpirun -np 2
 * hug train` (and with ZeRO-1, 2 and 3) against one process, on the adapters and
 * their optimizer state in the checkpoints. Skipped when hug was built
 * without MPI or mpirun is missing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../io/safetensors.h"
#include "harness.h"
#include "peft_fixture.h"
#include "train_fixture.h"

/* As tests/test_mpi.c runs its ranks: root allowed, one thread per rank,
 * no LeakSanitizer inside mpirun (Open MPI's unloaded plugins leak). */
#define MPI_ENV                                                                \
	"OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "   \
	"ASAN_OPTIONS=detect_leaks=0 "

static int train(const char *dir, int np, const char *out, const char *extra)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "%s%s%s train %s/recipe.json --set train.out_dir=%s/%s "
		 "%s >>%s/%s.log 2>&1", np > 1 ? MPI_ENV : "OMP_NUM_THREADS=1 ",
		 np > 1 ? "mpirun -np 2 --oversubscribe " : "", getenv("HUG_BIN"), dir, dir, out,
		 extra, dir, out);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* max |a - b| over the f32 tensors of a file in two runs' checkpoint-12. */
static double file_diff(const char *dir, const char *run_a, const char *run_b, const char *name)
{
	char a[512], b[512];
	snprintf(a, sizeof(a), "%s/%s/checkpoint-12/%s", dir, run_a, name);
	snprintf(b, sizeof(b), "%s/%s/checkpoint-12/%s", dir, run_b, name);
	return train_fixture_file_diff(a, b);
}

TEST(peft_mpi_data_parallel_matches_one_process)
{
#ifndef HUG_MPI
	SKIP("hug was built without MPI");
#endif
	if (!getenv("HUG_BIN") || system("command -v mpirun >/dev/null 2>&1") != 0)
		SKIP("no mpirun or HUG_BIN (run through make test)");
	/* micro 4, global 8: two micro-batches in one process, one per rank */
	const char *dir = peft_train_setup("{\"r\": 4, \"alpha\": 8, \"target_modules\": "
					   "[\"query_key_value\", \"dense_4h_to_h\"]}", 12, NULL);
	REQUIRE(dir);
	REQUIRE(train(dir, 1, "one", "") == 0);
	/* ZeRO-2/3 shard and reduce the adapters only (the frozen base stays
	 * whole on every rank) */
	static const char *const runs[][2] = { { "dp2", "" },
					       { "dp2-zero1", "--set parallel.zero=1" },
					       { "dp2-zero2", "--set parallel.zero=2" },
					       { "dp2-zero3", "--set parallel.zero=3" } };
	printf("\n");
	for (int i = 0; i < 4; i++) {
		CHECK(train(dir, 2, runs[i][0], runs[i][1]) == 0);
		double da = file_diff(dir, "one", runs[i][0], "adapter_model.safetensors");
		double dopt = file_diff(dir, "one", runs[i][0], "optimizer.safetensors");
		printf("    %s: |adapter diff| %.2g, |optimizer diff| %.2g\n", runs[i][0], da, dopt);
		CHECK(da <= 1e-5 && dopt <= 1e-5);
	}
	printf("    ");
	if (!test_failed_now())
		train_fixture_rmtree(dir);
}
