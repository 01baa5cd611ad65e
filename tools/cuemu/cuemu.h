// cuemu.h: what tools/cuemu/cu2cpp puts at the top of every rewritten CUDA
// file: the emulated runtime and device built-ins.
#ifndef CUEMU_H
#define CUEMU_H
#include <cuda_runtime.h>
#endif
