/* rng.h: counter-based random numbers. A value is a pure function of
 * (seed, counter), so any element of a random stream can be produced in any
 * order, on any thread or device, and regenerated for a backward pass
 * without storing it. Usable from C and from CUDA device code. */
#ifndef HUG_AUTOGRAD_RNG_H
#define HUG_AUTOGRAD_RNG_H

#include <stdint.h>

#ifdef __CUDACC__
#define RNG_FN __host__ __device__ static inline
#else
#define RNG_FN static inline
#endif

/* A 64-bit mix of (seed, counter): two rounds of the splitmix64 finaliser
 * over the counter offset by a seed-derived key. */
RNG_FN uint64_t rng_u64(uint64_t seed, uint64_t counter)
{
	uint64_t z = counter * 0x9e3779b97f4a7c15ull + (seed ^ 0xd1b54a32d192ed03ull) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	z += seed;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 24 bits of resolution (exact in f32). */
RNG_FN float rng_uniform(uint64_t seed, uint64_t counter)
{
	return (float)(rng_u64(seed, counter) >> 40) * (1.0f / 16777216.0f);
}

#endif
