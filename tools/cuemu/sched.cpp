// sched.cpp: kernel launches on the CPU. A launch runs its blocks one after
// another. The threads of a block are coroutines (fibers), run one at a
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

#ifndef __x86_64__
#include <ucontext.h>
#endif

#include "cuemu_internal.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#define CUEMU_ASAN 1
#else
#define CUEMU_ASAN 0
#endif

uint3 cuemu_threadIdx, cuemu_blockIdx;
dim3 cuemu_blockDim, cuemu_gridDim;

// ---- fiber switching ----
// On x86-64 a switch saves the callee-saved registers and the FP control
// words on the old stack and loads the other stack: no system call (glibc's
// swapcontext saves the signal mask with one, which made barrier-heavy
// kernels spend most of their time in the kernel). Elsewhere, ucontext.
#ifdef __x86_64__
struct fiber_ctx {
	void *sp;
};
extern "C" void cuemu_fiber_switch(void **save_sp, void *load_sp);
asm(".text\n"
    ".globl cuemu_fiber_switch\n"
    ".type cuemu_fiber_switch,@function\n"
    "cuemu_fiber_switch:\n"
    "	pushq %rbp\n"
    "	pushq %rbx\n"
    "	pushq %r12\n"
    "	pushq %r13\n"
    "	pushq %r14\n"
    "	pushq %r15\n"
    "	subq $8, %rsp\n"
    "	stmxcsr (%rsp)\n"
    "	fnstcw 4(%rsp)\n"
    "	movq %rsp, (%rdi)\n"
    "	movq %rsi, %rsp\n"
    "	ldmxcsr (%rsp)\n"
    "	fldcw 4(%rsp)\n"
    "	addq $8, %rsp\n"
    "	popq %r15\n"
    "	popq %r14\n"
    "	popq %r13\n"
    "	popq %r12\n"
    "	popq %rbx\n"
    "	popq %rbp\n"
    "	ret\n"
    ".size cuemu_fiber_switch,.-cuemu_fiber_switch\n");

static void ctx_switch(fiber_ctx *from, fiber_ctx *to) { cuemu_fiber_switch(&from->sp, to->sp); }

// A context that starts `entry` on the stack [stack, stack + size): the
// frame cuemu_fiber_switch pops, returning into entry as if called.
static void ctx_make(fiber_ctx *c, char *stack, size_t size, void (*entry)())
{
	uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
	uint64_t *sp = (uint64_t *)(top - 16); // entry sees rsp = 8 (mod 16)
	*sp = (uint64_t)(uintptr_t)entry;      // return address
	for (int i = 0; i < 6; i++)            // rbp rbx r12 r13 r14 r15
		*--sp = 0;
	uint32_t ctl[2];
	asm volatile("stmxcsr %0" : "=m"(ctl[0]));
	asm volatile("fnstcw %0" : "=m"(ctl[1]));
	--sp;
	memcpy(sp, ctl, 8);
	c->sp = sp;
}
#else
struct fiber_ctx {
	ucontext_t uc;
};
static void ctx_switch(fiber_ctx *from, fiber_ctx *to) { swapcontext(&from->uc, &to->uc); }
static void ctx_make(fiber_ctx *c, char *stack, size_t size, void (*entry)())
{
	getcontext(&c->uc);
	c->uc.uc_stack.ss_sp = stack;
	c->uc.uc_stack.ss_size = size;
	c->uc.uc_link = nullptr;
	makecontext(&c->uc, entry, 0);
}
#endif

namespace {
enum State { RUN, BLOCK_WAIT, WARP_WAIT, DONE };
struct Fiber {
	fiber_ctx ctx;
	State st;
	void *fake; // ASan's fake stack of the fiber
};
const size_t STACK = 256 * 1024;
std::vector<Fiber> fibers;
std::vector<char *> stacks;
fiber_ctx sched_ctx;
[[maybe_unused]] void *sched_fake;
[[maybe_unused]] const void *sched_bottom;
[[maybe_unused]] size_t sched_size;
int cur_tid, nthreads;
bool direct;       // the launch runs threads as plain calls
bool hit_barrier;  // the launch reached a barrier
const char *cur_name;
const std::function<void()> *cur_body;
// Two exchange buffers a warp (2 x 32 lanes x 8 bytes): a warp operation
// writes the calling lane's value into one, waits for the warp once, reads,
// and the lane's next operation uses the other buffer, which no lane can
// still be reading (they all passed the wait in between).
std::vector<unsigned char> warp_slots;
std::vector<unsigned char> lane_parity;
int or_acc, or_result;
std::map<void *, size_t> shared_all; // every static __shared__ array seen
std::set<void *> shared_launch;      // those the current launch uses
unsigned char *dyn_smem;
bool in_launch;
std::map<const void *, int> func_smem;   // MaxDynamicSharedMemorySize by kernel
std::map<const void *, bool> barrier_free; // by kernel, after its first launch
} // namespace

// The pass in progress: threads are run in pass order (thread order, or
// reverse with CUEMU_ORDER=rev); a thread that stops (barrier or end)
// counts itself and hands over to the next runnable thread of the pass
// directly, and the last one to the scheduler, which releases barriers and
// starts the next pass. Counts: threads that ended, that wait at
// __syncthreads, that wait at a warp operation (by warp).
static int pass_pos;
static bool pass_rev;
static int n_done, n_block_wait;
static std::vector<int> warp_waits;

static int thread_at(int pos) { return pass_rev ? nthreads - 1 - pos : pos; }

// The next runnable thread after the current pass position (-1: none),
// moving the position there.
static int next_runnable()
{
	while (++pass_pos < nthreads) {
		int t = thread_at(pass_pos);
		if (fibers[t].st == RUN)
			return t;
	}
	return -1;
}

static void set_thread(int t);

// The calling thread stops in state st: counted, then the next thread of
// the pass runs (or the scheduler, at the end of the pass).
static void stop(State st)
{
	int me = cur_tid;
	Fiber &f = fibers[me];
	f.st = st;
	n_done += st == DONE;
	n_block_wait += st == BLOCK_WAIT;
	warp_waits[(size_t)(me / 32)] += st == WARP_WAIT;
	bool final = st == DONE;
#if CUEMU_ASAN
	// ASan follows fiber switches through the scheduler only
	__sanitizer_start_switch_fiber(final ? nullptr : &f.fake, sched_bottom, sched_size);
	ctx_switch(&f.ctx, &sched_ctx);
	__sanitizer_finish_switch_fiber(f.fake, nullptr, nullptr);
#else
	(void)final;
	int next = next_runnable();
	if (next < 0) {
		ctx_switch(&f.ctx, &sched_ctx);
	} else {
		set_thread(next);
		ctx_switch(&f.ctx, &fibers[next].ctx);
	}
#endif
}

static void fiber_main()
{
#if CUEMU_ASAN
	__sanitizer_finish_switch_fiber(nullptr, &sched_bottom, &sched_size);
#endif
	(*cur_body)();
	stop(DONE);
	abort(); // never resumed
}

// threadIdx of linear thread t (x fastest, as CUDA numbers warps)
static void set_thread(int t)
{
	cur_tid = t;
	unsigned bx = cuemu_blockDim.x, by = cuemu_blockDim.y;
	if (by == 1 && cuemu_blockDim.z == 1) // the usual one-dimensional block
		cuemu_threadIdx = uint3{ (unsigned)t, 0, 0 };
	else
		cuemu_threadIdx = uint3{ (unsigned)t % bx, (unsigned)t / bx % by,
					 (unsigned)t / (bx * by) };
}

static void resume(int t)
{
	set_thread(t);
#if CUEMU_ASAN
	__sanitizer_start_switch_fiber(&sched_fake, stacks[t], STACK);
#endif
	ctx_switch(&sched_ctx, &fibers[t].ctx);
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
	stop(st);
}

void cuemu_syncthreads() { wait_at(BLOCK_WAIT); }

int cuemu_syncthreads_or(int pred)
{
	or_acc |= pred != 0;
	wait_at(BLOCK_WAIT);
	return or_result;
}

void cuemu_syncwarp() { wait_at(WARP_WAIT); }

unsigned char *cuemu_warp_slots()
{
	unsigned char p = lane_parity[(size_t)cur_tid];
	lane_parity[(size_t)cur_tid] = p ^ 1;
	return &warp_slots[((size_t)(cur_tid / 32) * 2 + p) * 32 * 8];
}
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
	slot[8 * cuemu_lane()] = pred != 0;
	cuemu_syncwarp();
	unsigned r = 0;
	for (int l = 0; l < 32; l++)
		r |= (unsigned)slot[8 * l] << l;
	return r;
}

void cuemu_shared_register(void *p, size_t bytes)
{
	if (!in_launch)
		cuemu_report("a __shared__ array used outside a launch");
	if (shared_launch.insert(p).second) { // first use in this launch: undefined
		shared_all[p] = bytes;
		memset(p, 0xff, bytes);
	}
}

void *cuemu_dyn_smem() { return dyn_smem; }

static void block_start(unsigned long long b, const cuemu_cfg_t &cfg)
{
	for (void *p : shared_launch) // undefined at a block's start: NaN / -1
		memset(p, 0xff, shared_all[p]);
	dyn_smem = (unsigned char *)malloc(cfg.smem ? cfg.smem : 1);
	memset(dyn_smem, 0xff, cfg.smem);
	unsigned gx = cfg.grid.x, gy = cfg.grid.y;
	cuemu_blockIdx = uint3{ (unsigned)(b % gx), (unsigned)(b / gx % gy), (unsigned)(b / gx / gy) };
	warp_slots.assign((size_t)(nthreads + 31) / 32 * 2 * 32 * 8, 0xff);
	lane_parity.assign((size_t)nthreads, 0);
}

static void run_block_direct(bool rev)
{
	for (int i = 0; i < nthreads; i++) {
		int t = rev ? nthreads - 1 - i : i;
		set_thread(t);
		(*cur_body)();
	}
}

static void run_block_fibers(unsigned long long bx, bool rev)
{
	int nt = nthreads;
	for (int t = 0; t < nt; t++) {
		Fiber &f = fibers[t];
		ctx_make(&f.ctx, stacks[t], STACK, fiber_main);
		f.st = RUN;
		f.fake = nullptr;
	}
	int nw = (nt + 31) / 32;
	n_done = n_block_wait = 0;
	warp_waits.assign((size_t)nw, 0);
	pass_rev = rev;
	for (;;) {
		pass_pos = -1;
#if CUEMU_ASAN
		for (int t; (t = next_runnable()) >= 0;)
			resume(t);
#else
		int first = next_runnable();
		if (first >= 0)
			resume(first); // the pass runs until its last thread stops
#endif
		if (n_done == nt)
			return;
		bool released = false;
		int n_ww = 0;
		for (int w = 0; w < nw; w++) {
			int lo = w * 32, hi = lo + 32 < nt ? lo + 32 : nt;
			n_ww += warp_waits[(size_t)w];
			if (warp_waits[(size_t)w] == hi - lo) {
				for (int t = lo; t < hi; t++)
					fibers[t].st = RUN;
				warp_waits[(size_t)w] = 0;
				released = true;
			}
		}
		if (released)
			continue;
		if (n_block_wait == nt) {
			or_result = or_acc;
			or_acc = 0;
			for (int t = 0; t < nt; t++)
				fibers[t].st = RUN;
			n_block_wait = 0;
			continue;
		}
		cuemu_report("kernel %s, block %llu cannot go on: %d threads wait at __syncthreads, "
			     "%d at a warp operation, %d ended (of %d)",
			     cur_name, bx, n_block_wait, n_ww, n_done, nt);
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
		fprintf(stderr, "cuemu: launch %s grid (%u, %u, %u) block (%u, %u, %u) smem %zu\n",
			name, cfg.grid.x, cfg.grid.y, cfg.grid.z, cfg.block.x, cfg.block.y,
			cfg.block.z, cfg.smem);
	if (in_launch) {
		cuemu_report("launch of %s from device code", name);
		return;
	}
	unsigned long long threads = (unsigned long long)cfg.block.x * cfg.block.y * cfg.block.z;
	unsigned long long blocks = (unsigned long long)cfg.grid.x * cfg.grid.y * cfg.grid.z;
	if (!threads || threads > 1024 || cfg.block.z > 64 || !blocks || cfg.grid.x > 0x7fffffffu ||
	    cfg.grid.y > 65535 || cfg.grid.z > 65535) {
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
	nthreads = (int)threads;
	cuemu_blockDim = cfg.block;
	cuemu_gridDim = cfg.grid;
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
	for (unsigned long long bx = 0; bx < blocks; bx++) {
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
