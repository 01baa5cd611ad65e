// runtime.cpp: the CUDA runtime API of include/cuda_runtime_api.h on the
// CPU. Devices: CUEMU_DEVICES of them (default 1), all the same emulated
// H100-like part. Work is synchronous: a stream is a name, an event is
// complete when recorded, every query answers cudaSuccess.
//
// Device memory: each cudaMalloc is its own mapping, filled with 0xff bytes
// (NaN in every float type) since real device memory starts undefined, and
// placed so that its end meets an inaccessible guard page (an overrun
// faults). Outside the emulated device's own work (kernels, copies, GEMMs,
// collectives) every allocation is mapped without access, so host code
// that reads or writes device memory faults at the faulty line; the fault
// handler names the allocation. CUEMU_NO_PROTECT=1 turns the guard off.
// Copies check their direction and that device ranges lie inside one live
// allocation.
#include <cuda_runtime.h>

#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>

#include <sys/mman.h>
#include <unistd.h>

#include "cuemu_internal.h"

namespace {
struct Alloc {
	char *map;       // the mapping: data pages, then one guard page
	size_t map_len;  // data pages only
	size_t bytes;    // as asked
	int device;
	bool sealed;     // never accessible (cuBLAS's workspace: see cuemu_seal)
};
std::map<uintptr_t, Alloc> allocs; // by user pointer
int open_depth;
bool protect_on = true;
int current_device;
cudaError_t last_error = cudaSuccess;
int n_findings;
size_t page;
} // namespace

void cuemu_report(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "cuemu: FINDING: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	n_findings++;
	if (!cuemu_env_flag("CUEMU_KEEP_GOING"))
		abort();
}

bool cuemu_env_flag(const char *name)
{
	const char *v = getenv(name);
	return v && *v && strcmp(v, "0");
}

void cuemu_set_last_error(int e) { last_error = (cudaError_t)e; }
int cuemu_current_device() { return current_device; }

static int device_count()
{
	const char *v = getenv("CUEMU_DEVICES");
	return v && *v ? atoi(v) : 1;
}

// The allocation holding p, or nullptr.
static const Alloc *find(const void *p, uintptr_t *base)
{
	uintptr_t u = (uintptr_t)p;
	auto it = allocs.upper_bound(u);
	if (it == allocs.begin())
		return nullptr;
	--it;
	// one past the end belongs to the allocation too (an empty range there)
	if (u - it->first > it->second.bytes)
		return nullptr;
	if (base)
		*base = it->first;
	return &it->second;
}

bool cuemu_is_device(const void *p, size_t bytes, int *dev)
{
	uintptr_t base;
	const Alloc *a = find(p, &base);
	if (!a || (uintptr_t)p - base + bytes > a->bytes || (!bytes && (uintptr_t)p - base == a->bytes))
		return false;
	if (dev)
		*dev = a->device;
	return true;
}

void cuemu_check_pointer_arg(const char *kernel, int index, const void *p)
{
	if (p && !find(p, nullptr)) // one past the end counts (an empty tensor's)
		cuemu_report("launch of %s: parameter %d = %p is not device memory", kernel,
			     index, p);
}

static void set_access(const Alloc &a, int prot)
{
	if (mprotect(a.map, a.map_len, prot))
		cuemu_report("mprotect of device memory failed");
}

void cuemu_device_open()
{
	if (open_depth++ == 0 && protect_on)
		for (auto &kv : allocs)
			if (!kv.second.sealed)
				set_access(kv.second, PROT_READ | PROT_WRITE);
}

void cuemu_device_close()
{
	if (--open_depth == 0 && protect_on)
		for (auto &kv : allocs)
			if (!kv.second.sealed)
				set_access(kv.second, PROT_NONE);
}

void cuemu_seal(const void *p)
{
	auto it = allocs.find((uintptr_t)p);
	if (it == allocs.end())
		return;
	it->second.sealed = true;
	set_access(it->second, PROT_NONE);
}

static void on_fault(int sig, siginfo_t *si, void *)
{
	uintptr_t base;
	const Alloc *a = find(si->si_addr, &base);
	char msg[256];
	int n;
	if (a && !open_depth)
		n = snprintf(msg, sizeof msg,
			     "cuemu: FINDING: host code touched device memory at %p (byte %zu of a "
			     "%zu-byte cudaMalloc); the backtrace below shows where\n",
			     si->si_addr, (size_t)((uintptr_t)si->si_addr - base), a->bytes);
	else
		n = snprintf(msg, sizeof msg,
			     "cuemu: fault at %p (%s); a device-memory overrun ends at a guard "
			     "page\n",
			     si->si_addr, open_depth ? "while the device works" : "host code");
	if (n > 0)
		(void)!write(2, msg, (size_t)n);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void init_once()
{
	static bool done;
	if (done)
		return;
	done = true;
	page = (size_t)sysconf(_SC_PAGESIZE);
	protect_on = !cuemu_env_flag("CUEMU_NO_PROTECT");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigaction(SIGSEGV, &sa, nullptr);
	sigaction(SIGBUS, &sa, nullptr);
}

// ---- errors ----

const char *cudaGetErrorName(cudaError_t e)
{
	switch (e) {
	case cudaSuccess: return "cudaSuccess";
	case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
	case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
	case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
	case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
	case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
	case cudaErrorNoDevice: return "cudaErrorNoDevice";
	case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
	case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
	case cudaErrorNotReady: return "cudaErrorNotReady";
	case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
	}
	return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e)
{
	return e == cudaSuccess ? "no error" : cudaGetErrorName(e);
}

cudaError_t cudaGetLastError(void)
{
	cudaError_t e = last_error;
	last_error = cudaSuccess;
	return e;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

// ---- devices ----

cudaError_t cudaGetDeviceCount(int *count)
{
	*count = device_count();
	return *count > 0 ? cudaSuccess : cudaErrorNoDevice;
}

cudaError_t cudaSetDevice(int device)
{
	if (device < 0 || device >= device_count())
		return cudaErrorInvalidDevice;
	current_device = device;
	return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device)
{
	*device = current_device;
	return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
	if (device < 0 || device >= device_count())
		return cudaErrorInvalidDevice;
	memset(prop, 0, sizeof *prop);
	snprintf(prop->name, sizeof prop->name, "hug CUDA emulator (CPU)");
	prop->totalGlobalMem = (size_t)80 << 30;
	prop->sharedMemPerBlock = 48 * 1024;
	prop->sharedMemPerBlockOptin = 232448;
	prop->warpSize = 32;
	prop->maxThreadsPerBlock = 1024;
	prop->multiProcessorCount = 132;
	prop->major = 9;
	prop->minor = 0;
	return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device)
{
	struct cudaDeviceProp p;
	cudaError_t e = cudaGetDeviceProperties(&p, device);
	if (e)
		return e;
	switch (attr) {
	case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
	case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
	case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
	case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
	case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = (int)p.sharedMemPerBlockOptin; break;
	default: return cudaErrorInvalidValue;
	}
	return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

// ---- memory ----

cudaError_t cudaMalloc(void **p, size_t bytes)
{
	init_once();
	*p = nullptr;
	size_t data = (bytes + page - 1) / page * page;
	if (!data)
		data = page;
	char *m = (char *)mmap(nullptr, data + page, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return cudaErrorMemoryAllocation;
	mprotect(m + data, page, PROT_NONE); // the guard page
	// 256-byte aligned, as cudaMalloc's results are, ending near the guard
	char *u = m + data - (bytes + 255) / 256 * 256;
	memset(m, 0xff, data);
	Alloc a = { m, data, bytes, current_device, false };
	allocs[(uintptr_t)u] = a;
	if (protect_on && !open_depth)
		set_access(a, PROT_NONE);
	*p = u;
	return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
	if (!p)
		return cudaSuccess;
	auto it = allocs.find((uintptr_t)p);
	if (it == allocs.end()) {
		cuemu_report("cudaFree(%p): not a live cudaMalloc pointer", p);
		return cudaErrorInvalidDevicePointer;
	}
	munmap(it->second.map, it->second.map_len + page);
	allocs.erase(it);
	return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a, const void *p)
{
	int dev = -1;
	memset(a, 0, sizeof *a);
	if (cuemu_is_device(p, 0, &dev)) {
		a->type = cudaMemoryTypeDevice;
		a->device = dev;
		a->devicePointer = (void *)p;
	} else {
		a->type = cudaMemoryTypeUnregistered;
		a->device = -2;
		a->hostPointer = (void *)p;
	}
	return cudaSuccess;
}

static const char *kind_name(enum cudaMemcpyKind k)
{
	static const char *n[] = { "HostToHost", "HostToDevice", "DeviceToHost", "DeviceToDevice",
				   "Default" };
	return (unsigned)k < 5 ? n[k] : "?";
}

// Checks one side of a copy: a device side must lie inside one allocation,
// a host side must not be device memory.
static bool check_side(const char *what, const void *p, size_t bytes, bool want_dev,
		       enum cudaMemcpyKind kind)
{
	bool in_dev = cuemu_is_device(p, bytes, nullptr);
	bool touches = cuemu_is_device(p, 0, nullptr);
	if (want_dev && !in_dev) {
		cuemu_report("cudaMemcpy%s: %s %p + %zu bytes is not inside one device "
			     "allocation%s",
			     kind_name(kind), what, p, bytes,
			     touches ? " (it runs past the end of one)" : "");
		return false;
	}
	if (!want_dev && touches) {
		cuemu_report("cudaMemcpy%s: %s %p is device memory", kind_name(kind), what, p);
		return false;
	}
	return true;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
			    cudaStream_t)
{
	if (!bytes)
		return cudaSuccess;
	bool dd, sd;
	switch (kind) {
	case cudaMemcpyHostToHost: dd = sd = false; break;
	case cudaMemcpyHostToDevice: dd = true, sd = false; break;
	case cudaMemcpyDeviceToHost: dd = false, sd = true; break;
	case cudaMemcpyDeviceToDevice: dd = sd = true; break;
	case cudaMemcpyDefault:
		dd = cuemu_is_device(dst, 0, nullptr);
		sd = cuemu_is_device(src, 0, nullptr);
		break;
	default: return cudaErrorInvalidMemcpyDirection;
	}
	if (!check_side("dst", dst, bytes, dd, kind) || !check_side("src", src, bytes, sd, kind))
		return cudaErrorInvalidValue;
	cuemu_device_scope scope;
	memmove(dst, src, bytes);
	return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind)
{
	return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t)
{
	if (!bytes)
		return cudaSuccess;
	if (!cuemu_is_device(p, bytes, nullptr)) {
		cuemu_report("cudaMemset: %p + %zu bytes is not inside one device allocation", p,
			     bytes);
		return cudaErrorInvalidValue;
	}
	cuemu_device_scope scope;
	memset(p, value, bytes);
	return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int value, size_t bytes)
{
	return cudaMemsetAsync(p, value, bytes, nullptr);
}

// ---- streams and events ----

struct cuemu_stream {
	unsigned flags;
};
struct cuemu_event {
	double t; // seconds, when recorded
};

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
	*s = new cuemu_stream{ flags };
	return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
	delete s;
	return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamQuery(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t e, unsigned)
{
	return e ? cudaSuccess : cudaErrorInvalidResourceHandle;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned)
{
	*e = new cuemu_event{ 0.0 };
	return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, 0); }

cudaError_t cudaEventDestroy(cudaEvent_t e)
{
	if (!e)
		return cudaErrorInvalidResourceHandle;
	delete e;
	return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t)
{
	if (!e)
		return cudaErrorInvalidResourceHandle;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	e->t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
	return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t e)
{
	return e ? cudaSuccess : cudaErrorInvalidResourceHandle;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) { return cudaEventQuery(e); }

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
	if (!a || !b)
		return cudaErrorInvalidResourceHandle;
	*ms = (float)((b->t - a->t) * 1e3);
	return cudaSuccess;
}
