/* test_cuemu.c: the CUDA emulator's own checks (tools/cuemu) fire on the
 * bugs they exist for, planted in tools/cuemu/selftest.cu. Each planted bug
 * runs in a forked child whose stderr must name it; the child's death is
 * the expected outcome. Only in emulator builds (make test-cuemu); elsewhere
 * the tests skip. Named cuda_emulator_* so the GPU filter runs them. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifdef HUG_CUEMU

float cuemu_selftest_host_reads_device(void);
void cuemu_selftest_kernel_overruns(void);
void cuemu_selftest_divergent_barrier(void);
int cuemu_selftest_smem_without_optin(void);
int cuemu_selftest_gemm_bad_lda(void);
int cuemu_selftest_copy_wrong_direction(void);
void cuemu_selftest_partial_warp_shuffle(void);
void cuemu_selftest_host_pointer_to_kernel(void);
void cuemu_selftest_missing_barrier(float *out);
float cuemu_selftest_fresh_memory(void);

/* Runs fn in a child with stderr captured; true when the child did not
 * exit normally with status 0 and its stderr contains `want`. */
static bool child_reports(void (*fn)(void), const char *want)
{
	int fd[2];
	if (pipe(fd))
		return false;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		fn();
		_exit(0);
	}
	close(fd[1]);
	char buf[8192];
	size_t n = 0;
	ssize_t r;
	while ((r = read(fd[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(fd[0]);
	buf[n] = 0;
	int st = 0;
	waitpid(pid, &st, 0);
	bool died = !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	bool named = strstr(buf, want) != NULL;
	if (!died || !named)
		printf("\n    child %s; stderr: %s", died ? "failed" : "succeeded", buf);
	return died && named;
}

static void host_reads(void) { (void)cuemu_selftest_host_reads_device(); }
static void smem_optin(void) { (void)cuemu_selftest_smem_without_optin(); }
static void gemm_lda(void) { (void)cuemu_selftest_gemm_bad_lda(); }
static void copy_dir(void) { (void)cuemu_selftest_copy_wrong_direction(); }

/* Each planted bug and the words its report must contain. */
static const struct {
	const char *what;
	void (*fn)(void);
	const char *want;
} planted[] = {
	{ "host access to device memory", host_reads, "host code touched device memory" },
	{ "kernel overrun", cuemu_selftest_kernel_overruns, "device-memory overrun" },
	{ "divergent barrier", cuemu_selftest_divergent_barrier, "cannot go on" },
	{ "shared memory over the limit", smem_optin, "dynamic shared memory" },
	{ "bad GEMM arguments", gemm_lda, "lda < max(1, rows of A)" },
	{ "copy in the wrong direction", copy_dir, "is device memory" },
	{ "partial warp shuffle", cuemu_selftest_partial_warp_shuffle, "in a warp of 16 lanes" },
	{ "host pointer to a kernel", cuemu_selftest_host_pointer_to_kernel,
	  "parameter 0 = " },
};

TEST(cuda_emulator_finds_planted_bugs)
{
	printf("\n");
	for (size_t i = 0; i < sizeof(planted) / sizeof(planted[0]); i++) {
		bool found = child_reports(planted[i].fn, planted[i].want);
		printf("    %-32s %s\n", planted[i].what, found ? "found" : "MISSED");
		CHECK(found);
	}
}

/* The two thread orders give different results for a kernel that misses a
 * barrier: that difference is how CUEMU_ORDER=rev finds one. */
TEST(cuda_emulator_thread_order_exposes_missing_barrier)
{
	float fwd[64], rev[64];
	const char *old = getenv("CUEMU_ORDER");
	unsetenv("CUEMU_ORDER");
	cuemu_selftest_missing_barrier(fwd);
	setenv("CUEMU_ORDER", "rev", 1);
	cuemu_selftest_missing_barrier(rev);
	if (old)
		setenv("CUEMU_ORDER", old, 1);
	else
		unsetenv("CUEMU_ORDER");
	int differ = 0;
	for (int i = 0; i < 64; i++)
		differ += !(fwd[i] == rev[i] || (isnan(fwd[i]) && isnan(rev[i])));
	CHECK(differ > 0);
	CHECK(isnan(fwd[0]) && isnan(rev[63]));
}

TEST(cuda_emulator_fresh_device_memory_is_nan)
{
	CHECK(isnan(cuemu_selftest_fresh_memory()));
}

#else

TEST(cuda_emulator_checks)
{
	SKIP("not an emulator build (make test-cuemu)");
}

#endif
