/* loader_order.c: which sample comes next. Sources are chosen by a
 * golden-ratio (Weyl) sequence in exact 64-bit fixed point, so the mix is
 * within a few draws of the weights at every length and on every rank's
 * subsequence; each source walks a seeded Feistel permutation of its
 * training samples, a new one per epoch, computed per index in O(1) memory
 * (cycle walking keeps it a bijection on [0, n)). */
#include <math.h>

#include "loader_internal.h"

/* 2^64 / golden ratio, odd: u_g = offset + g * PHI64 (mod 2^64). */
#define PHI64 0x9E3779B97F4A7C15ull

/* splitmix64's finaliser: a bijective 64-bit mixer. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 27;
	x *= 0x94D049BB133111EBull;
	x ^= x >> 31;
	return x;
}

int64_t loader_perm(uint64_t key, int64_t n, int64_t i)
{
	if (n <= 1)
		return 0;
	int bits = 64 - __builtin_clzll((uint64_t)(n - 1));
	int half = (bits + 1) / 2;
	uint64_t mask = (1ull << half) - 1;
	uint64_t x = (uint64_t)i;
	/* A permutation of [0, 4^half) >= n; walk until back inside [0, n). */
	do {
		uint64_t l = x >> half, r = x & mask;
		for (uint64_t k = 0; k < 4; k++) {
			uint64_t f = mix64(key + (k + 1) * PHI64 +
					   r * 0xD6E8FEB86659FD93ull) & mask;
			uint64_t t = l ^ f;
			l = r;
			r = t;
		}
		x = (l << half) | r;
	} while (x >= (uint64_t)n);
	return (int64_t)x;
}

uint64_t loader_perm_key(uint64_t seed, int s, int64_t epoch)
{
	uint64_t k = mix64(seed ^ 0x5851F42D4C957F2Dull);
	k = mix64(k ^ ((uint64_t)s * 0x2545F4914F6CDD1Dull));
	return mix64(k ^ ((uint64_t)epoch * PHI64 + 0x14057B7EF767814Full));
}

void loader_blend_setup(struct loader *L)
{
	double cum = 0;
	for (int s = 0; s < L->n_src; s++) {
		cum += L->src[s].weight;
		if (s == L->n_src - 1 || cum >= 1.0)
			L->thr[s] = UINT64_MAX;
		else
			L->thr[s] = (uint64_t)ldexp(cum, 64);
	}
	L->blend_offset = mix64(L->seed ^ 0xB5AD4ECEDA1CE2A9ull);
}

int loader_pick(const struct loader *L, int64_t g)
{
	uint64_t u = L->blend_offset + (uint64_t)g * PHI64;
	for (int s = 0; s < L->n_src - 1; s++)
		if (u < L->thr[s])
			return s;
	return L->n_src - 1;
}

void loader_draw(const struct loader *L, struct loader_pos *pos, int *s,
		 int64_t *c)
{
	*s = loader_pick(L, pos->cursor);
	*c = pos->drawn[*s]++;
	pos->cursor++;
}

int64_t loader_sample_of(const struct loader *L, int s, int64_t c)
{
	int64_t n = L->src[s].n_train;
	uint64_t key = loader_perm_key(L->seed, s, c / n);
	return loader_perm(key, n, c % n);
}
