// sched.cpp: kernel launches on the CPU. A launch runs its blocks one after
// another. The threads of a block are coroutines (ucontext), run one at a
// time, in thread order (or reverse order with CUEMU_ORDER=rev, so a
// missing barrier shows as a difference between two runs) until each
// reaches a barrier or ends: __syncthreads releases when every thread of
// the block waits there, a warp operation when the 32 lanes of its warp
// do. A barrier that can never complete (some threads ended, or wait at
// another barrier) is reported. Static __shared__ arrays are reset to 0xff
// bytes (NaN, -1) at every block start; dynamic shared memory is a fresh
// allocation of exactly the launch's byte count, filled the same way, and
// the launch's total is checked against the kernel's limit (48 KiB unless
// raised by cudaFuncSetAttribute) and the device's (227 KiB, an H100's).
//
// Speed: a kernel whose first launch reached no barrier runs its later
// launches as plain calls, thread after thread; should such a launch reach
// a barrier after all, that is reported (it cannot be suspended).
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <vector>

#include <ucontext.h>

#include "cuemu_internal.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#define CUEMU_ASAN 1
#else
#define CUEMU_ASAN 0
#endif

uint3 cuemu_threadIdx, cuemu_blockIdx;
dim3 cuemu_blockDim, cuemu_gridDim;

namespace {
enum State { RUN, BLOCK_WAIT, WARP_WAIT, DONE };
struct Fiber {
	ucontext_t uc;
	State st;
	void *fake; // ASan's fake stack of the fiber
};
const size_t STACK = 256 * 1024;
std::vector<Fiber> fibers;
std::vector<char *> stacks;
ucontext_t sched_uc;
[[maybe_unused]] void *sched_fake;
[[maybe_unused]] const void *sched_bottom;
[[maybe_unused]] size_t sched_size;
int cur_tid, nthreads;
bool direct;       // the launch runs threads as plain calls
bool hit_barrier;  // the launch reached a barrier
const char *cur_name;
const std::function<void()> *cur_body;
std::vector<unsigned char> warp_slots;
int or_acc, or_result;
std::map<void *, size_t> shared_all; // every static __shared__ array seen
std::set<void *> shared_launch;      // those the current launch uses
unsigned char *dyn_smem;
bool in_launch;
std::map<const void *, int> func_smem;   // MaxDynamicSharedMemorySize by kernel
std::map<const void *, bool> barrier_free; // by kernel, after its first launch
} // namespace

static void to_sched(bool final)
{
	Fiber &f = fibers[cur_tid];
#if CUEMU_ASAN
	__sanitizer_start_switch_fiber(final ? nullptr : &f.fake, sched_bottom, sched_size);
#else
	(void)final;
#endif
	swapcontext(&f.uc, &sched_uc);
#if CUEMU_ASAN
	__sanitizer_finish_switch_fiber(f.fake, nullptr, nullptr);
#endif
}

static void fiber_main()
{
#if CUEMU_ASAN
	__sanitizer_finish_switch_fiber(nullptr, &sched_bottom, &sched_size);
#endif
	(*cur_body)();
	fibers[cur_tid].st = DONE;
	to_sched(true);
	abort(); // never resumed
}

static void resume(int t)
{
	cur_tid = t;
	cuemu_threadIdx = uint3{ (unsigned)t, 0, 0 };
#if CUEMU_ASAN
	__sanitizer_start_switch_fiber(&sched_fake, stacks[t], STACK);
#endif
	swapcontext(&sched_uc, &fibers[t].uc);
#if CUEMU_ASAN
	__sanitizer_finish_switch_fiber(sched_fake, nullptr, nullptr);
#endif
}

static void wait_at(State st)
{
	hit_barrier = true;
	if (direct) {
		cuemu_report("kernel %s reached a barrier in a launch run as plain calls (its "
			     "first launch reached none): a barrier under a condition that "
			     "depends on the launch",
			     cur_name);
		return;
	}
	fibers[cur_tid].st = st;
	to_sched(false);
}

void cuemu_syncthreads() { wait_at(BLOCK_WAIT); }

int cuemu_syncthreads_or(int pred)
{
	or_acc |= pred != 0;
	wait_at(BLOCK_WAIT);
	return or_result;
}

void cuemu_syncwarp() { wait_at(WARP_WAIT); }

unsigned char *cuemu_warp_slots() { return &warp_slots[(size_t)(cur_tid / 32) * 32 * 8]; }
int cuemu_lane() { return cur_tid & 31; }

void cuemu_warp_check(const char *op, unsigned mask, int width)
{
	int w = cur_tid / 32, lanes = nthreads - 32 * w < 32 ? nthreads - 32 * w : 32;
	if (mask != 0xffffffffu || lanes != 32 || width < 1 || (width & (width - 1)) || width > 32)
		cuemu_report("%s in kernel %s with mask %#x, width %d, in a warp of %d lanes "
			     "(block of %d threads)",
			     op, cur_name, mask, width, lanes, nthreads);
}

unsigned __ballot_sync(unsigned mask, int pred)
{
	cuemu_warp_check("__ballot_sync", mask, 32);
	unsigned char *slot = cuemu_warp_slots();
	int lane = cuemu_lane();
	slot[8 * lane] = pred != 0;
	cuemu_syncwarp();
	unsigned r = 0;
	for (int l = 0; l < 32; l++)
		r |= (unsigned)slot[8 * l] << l;
	cuemu_syncwarp();
	return r;
}

void cuemu_shared_register(void *p, size_t bytes)
{
	if (!in_launch)
		cuemu_report("a __shared__ array used outside a launch");
	if (!shared_all.count(p)) {
		shared_all[p] = bytes;
		memset(p, 0xff, bytes);
	}
	shared_launch.insert(p);
}

void *cuemu_dyn_smem() { return dyn_smem; }

static void block_start(unsigned bx, const cuemu_cfg_t &cfg)
{
	for (void *p : shared_launch) // undefined at a block's start: NaN / -1
		memset(p, 0xff, shared_all[p]);
	dyn_smem = (unsigned char *)malloc(cfg.smem ? cfg.smem : 1);
	memset(dyn_smem, 0xff, cfg.smem);
	cuemu_blockIdx = uint3{ bx, 0, 0 };
	warp_slots.assign((size_t)(nthreads + 31) / 32 * 32 * 8, 0xff);
}

static void run_block_direct(bool rev)
{
	for (int i = 0; i < nthreads; i++) {
		int t = rev ? nthreads - 1 - i : i;
		cur_tid = t;
		cuemu_threadIdx = uint3{ (unsigned)t, 0, 0 };
		(*cur_body)();
	}
}

static void run_block_fibers(unsigned bx, bool rev)
{
	int nt = nthreads;
	for (int t = 0; t < nt; t++) {
		Fiber &f = fibers[t];
		getcontext(&f.uc);
		f.uc.uc_stack.ss_sp = stacks[t];
		f.uc.uc_stack.ss_size = STACK;
		f.uc.uc_link = nullptr;
		makecontext(&f.uc, fiber_main, 0);
		f.st = RUN;
		f.fake = nullptr;
	}
	for (;;) {
		for (int i = 0; i < nt; i++) {
			int t = rev ? nt - 1 - i : i;
			if (fibers[t].st == RUN)
				resume(t);
		}
		int done = 0, bw = 0, ww = 0;
		for (int t = 0; t < nt; t++) {
			done += fibers[t].st == DONE;
			bw += fibers[t].st == BLOCK_WAIT;
			ww += fibers[t].st == WARP_WAIT;
		}
		if (done == nt)
			return;
		bool released = false;
		for (int w = 0; w * 32 < nt; w++) {
			int lo = w * 32, hi = lo + 32 < nt ? lo + 32 : nt, c = 0;
			for (int t = lo; t < hi; t++)
				c += fibers[t].st == WARP_WAIT;
			if (c == hi - lo) {
				for (int t = lo; t < hi; t++)
					fibers[t].st = RUN;
				released = true;
			}
		}
		if (released)
			continue;
		if (bw == nt) {
			or_result = or_acc;
			or_acc = 0;
			for (int t = 0; t < nt; t++)
				fibers[t].st = RUN;
			continue;
		}
		cuemu_report("kernel %s, block %u cannot go on: %d threads wait at __syncthreads, "
			     "%d at a warp operation, %d ended (of %d)",
			     cur_name, bx, bw, ww, done, nt);
		fprintf(stderr, "cuemu: the block is deadlocked; stopping\n");
		exit(3);
	}
}

static size_t device_smem_max()
{
	const char *v = getenv("CUEMU_SMEM_MAX");
	return v ? (size_t)strtoull(v, nullptr, 0) : 232448; // H100: 227 KiB
}

static size_t launch_static_bytes()
{
	size_t s = 0;
	for (void *p : shared_launch)
		s += shared_all[p];
	return s;
}

void cuemu_launch_impl(const char *name, const void *kernel, const cuemu_cfg_t &cfg,
		       const std::function<void()> &body)
{
	if (getenv("CUEMU_LOG"))
		fprintf(stderr, "cuemu: launch %s grid %u block %u smem %zu\n", name, cfg.grid.x,
			cfg.block.x, cfg.smem);
	if (in_launch) {
		cuemu_report("launch of %s from device code", name);
		return;
	}
	if (cfg.block.x < 1 || cfg.block.x > 1024 || cfg.block.y != 1 || cfg.block.z != 1 ||
	    cfg.grid.x < 1 || cfg.grid.x > 0x7fffffffu || cfg.grid.y != 1 || cfg.grid.z != 1) {
		// hug's kernels are one-dimensional: anything else is a bug too
		cuemu_report("launch of %s: bad configuration grid (%u, %u, %u) block (%u, %u, %u)",
			     name, cfg.grid.x, cfg.grid.y, cfg.grid.z, cfg.block.x, cfg.block.y,
			     cfg.block.z);
		cuemu_set_last_error(cudaErrorInvalidConfiguration);
		return;
	}
	auto lim = func_smem.find(kernel);
	size_t dyn_max = lim != func_smem.end() ? (size_t)lim->second : 48 * 1024;
	if (cfg.smem > dyn_max || cfg.smem > device_smem_max()) {
		cuemu_report("launch of %s: %zu bytes of dynamic shared memory; the kernel allows "
			     "%zu (%s)",
			     name, cfg.smem, dyn_max,
			     lim != func_smem.end() ? "cudaFuncSetAttribute" : "default 48 KiB");
		cuemu_set_last_error(cudaErrorInvalidValue);
		return;
	}
	cuemu_device_scope scope;
	nthreads = (int)cfg.block.x;
	cuemu_blockDim = dim3(cfg.block.x);
	cuemu_gridDim = dim3(cfg.grid.x);
	static bool cleanup = false;
	if (!cleanup) { // the fiber stacks go at exit (no leak report)
		cleanup = true;
		atexit([] {
			for (char *s : stacks)
				free(s);
			stacks.clear();
		});
	}
	auto bf = barrier_free.find(kernel);
	direct = bf != barrier_free.end() && bf->second && !cuemu_env_flag("CUEMU_NO_DIRECT");
	if (!direct && fibers.size() < (size_t)nthreads) {
		fibers.resize((size_t)nthreads);
		while (stacks.size() < (size_t)nthreads)
			stacks.push_back((char *)malloc(STACK));
	}
	or_acc = 0;
	hit_barrier = false;
	cur_name = name;
	cur_body = &body;
	in_launch = true;
	shared_launch.clear();
	bool rev = getenv("CUEMU_ORDER") && !strcmp(getenv("CUEMU_ORDER"), "rev");
	for (unsigned bx = 0; bx < cfg.grid.x; bx++) {
		block_start(bx, cfg);
		if (direct)
			run_block_direct(rev);
		else
			run_block_fibers(bx, rev);
		free(dyn_smem);
		dyn_smem = nullptr;
		if (bx == 0) { // the kernel's static shared memory is known now
			size_t st = launch_static_bytes();
			if (st > 48 * 1024 || st + cfg.smem > device_smem_max()) {
				cuemu_report("launch of %s: %zu bytes of static and %zu of dynamic "
					     "shared memory; the device has %zu",
					     name, st, cfg.smem, device_smem_max());
				cuemu_set_last_error(cudaErrorInvalidValue);
				break;
			}
		}
	}
	in_launch = false;
	if (bf == barrier_free.end())
		barrier_free[kernel] = !hit_barrier;
}

cudaError_t cuemu_func_set_attribute(const void *f, int attr, int value)
{
	if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
		return cudaErrorInvalidValue;
	if (value < 0 || (size_t)value > device_smem_max()) {
		cuemu_report("cudaFuncSetAttribute(MaxDynamicSharedMemorySize, %d) above the "
			     "device's %zu",
			     value, device_smem_max());
		return cudaErrorInvalidValue;
	}
	func_smem[f] = value;
	return cudaSuccess;
}
