// cuemu_internal.h: what the emulator's own files share (not seen by hug's
// sources): findings, the device-memory guard, environment switches.
#ifndef CUEMU_INTERNAL_H
#define CUEMU_INTERNAL_H

#include <cstddef>

// A broken contract found by the emulator (a bad launch, a bad cuBLAS
// argument, a copy out of bounds, a deadlocked block): printed and counted;
// fatal (abort) unless CUEMU_KEEP_GOING is set.
void cuemu_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Device memory is mapped without access except while the emulated device
// works on it (a kernel, a copy, a GEMM, a collective), so a host read or
// write of device memory faults where it happens. Calls nest.
void cuemu_device_open();
void cuemu_device_close();
struct cuemu_device_scope {
	cuemu_device_scope() { cuemu_device_open(); }
	~cuemu_device_scope() { cuemu_device_close(); }
	cuemu_device_scope(const cuemu_device_scope &) = delete;
	cuemu_device_scope &operator=(const cuemu_device_scope &) = delete;
};

// Makes the allocation starting at p inaccessible for good, device work
// included, and leaves it out of the opening and closing above (which cost
// time in proportion to the memory mapped): for cuBLAS's workspace, which
// the emulated cuBLAS never uses.
void cuemu_seal(const void *p);

// True when [p, p + bytes) lies inside one live device allocation; with
// bytes 0, when p does. *dev gets the allocation's device when non-NULL.
bool cuemu_is_device(const void *p, size_t bytes, int *dev);
// The current device of this process (cudaSetDevice).
int cuemu_current_device();
// The sticky launch error that cudaGetLastError returns.
void cuemu_set_last_error(int e);
// Whether environment variable `name` is set to something but "" or "0".
bool cuemu_env_flag(const char *name);

#endif
