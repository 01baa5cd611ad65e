/* sha256.c: SHA-256 (FIPS 180-4), written from the standard: a portable
 * compression function and one on the x86 SHA extensions, chosen at run
 * time; and the digest of a file read in pieces. Checkpoints are hashed
 * whole on every save and load, so its speed is a save's speed. */
#include "sha256.h"

#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static inline uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One round with the working variables a..h named in place: the caller
 * rotates the names instead of moving eight values each round. */
#define SHA_ROUND(a, b, c, d, e, f, g, h, i)                                         \
	do {                                                                         \
		uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) +         \
			      ((e & f) ^ (~e & g)) + K[i] + w[i];                     \
		uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) +             \
			      ((a & b) ^ (a & c) ^ (b & c));                          \
		d += t1;                                                             \
		h = t1 + t2;                                                         \
	} while (0)

/* The compression function over n consecutive 64-byte blocks at p, in
 * portable C. */
static void compress_c(uint32_t st[8], const uint8_t *p, size_t n)
{
	for (; n > 0; n--, p += 64) {
		uint32_t w[64];
		for (int i = 0; i < 16; i++)
			w[i] = load_be32(p + 4 * i);
		for (int i = 16; i < 64; i++) {
			uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
			uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
			w[i] = w[i - 16] + s0 + w[i - 7] + s1;
		}
		uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
		uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
		for (int i = 0; i < 64; i += 8) {
			SHA_ROUND(a, b, c, d, e, f, g, h, i);
			SHA_ROUND(h, a, b, c, d, e, f, g, i + 1);
			SHA_ROUND(g, h, a, b, c, d, e, f, i + 2);
			SHA_ROUND(f, g, h, a, b, c, d, e, i + 3);
			SHA_ROUND(e, f, g, h, a, b, c, d, i + 4);
			SHA_ROUND(d, e, f, g, h, a, b, c, i + 5);
			SHA_ROUND(c, d, e, f, g, h, a, b, i + 6);
			SHA_ROUND(b, c, d, e, f, g, h, a, i + 7);
		}
		st[0] += a;
		st[1] += b;
		st[2] += c;
		st[3] += d;
		st[4] += e;
		st[5] += f;
		st[6] += g;
		st[7] += h;
	}
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_NI_PATH 1

/* The compression function on the x86 SHA extensions (SHA-NI). The state
 * lives in two registers as the instructions want it, ABEF and CDGH (A in
 * the highest lane); each sha256rnds2 does two rounds, and sha256msg1/2
 * extend the message schedule four words at a time. */
__attribute__((target("sha,sse4.1,ssse3")))
static void compress_shani(uint32_t st[8], const uint8_t *p, size_t n)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
	__m128i abcd = _mm_loadu_si128((const __m128i *)st);      /* A B C D (lane 0..3) */
	__m128i efgh = _mm_loadu_si128((const __m128i *)(st + 4)); /* E F G H */
	__m128i badc = _mm_shuffle_epi32(abcd, 0xB1);             /* B A D C */
	__m128i hgfe = _mm_shuffle_epi32(efgh, 0x1B);             /* H G F E */
	__m128i abef = _mm_alignr_epi8(badc, hgfe, 8);            /* F E B A */
	__m128i cdgh = _mm_blend_epi16(hgfe, badc, 0xF0);         /* H G D C */
	for (; n > 0; n--, p += 64) {
		__m128i save_abef = abef, save_cdgh = cdgh, m[4];
		for (int g = 0; g < 16; g++) {
			__m128i *cur = &m[g & 3];
			if (g < 4) {
				*cur = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)),
							bswap);
			} else {
				/* W[t..t+3] from W[t-16..], W[t-12..], W[t-7..t-4], W[t-4..] */
				__m128i t = _mm_sha256msg1_epu32(*cur, m[(g + 1) & 3]);
				t = _mm_add_epi32(t, _mm_alignr_epi8(m[(g + 3) & 3], m[(g + 2) & 3], 4));
				*cur = _mm_sha256msg2_epu32(t, m[(g + 3) & 3]);
			}
			__m128i wk = _mm_add_epi32(*cur, _mm_loadu_si128((const __m128i *)(K + 4 * g)));
			cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
			abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
		}
		abef = _mm_add_epi32(abef, save_abef);
		cdgh = _mm_add_epi32(cdgh, save_cdgh);
	}
	__m128i feba = _mm_shuffle_epi32(abef, 0x1B); /* A B E F */
	__m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1); /* G H C D */
	_mm_storeu_si128((__m128i *)st, _mm_blend_epi16(feba, dchg, 0xF0));        /* A B C D */
	_mm_storeu_si128((__m128i *)(st + 4), _mm_alignr_epi8(dchg, feba, 8));     /* E F G H */
}

/* Whether this CPU has the SHA extensions (and SSSE3 / SSE4.1). */
static bool cpu_has_sha_ni(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1))
		return false;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return (b >> 29) & 1;
}
#endif

/* -1: not decided yet; 0: portable C; 1: SHA-NI. */
static int use_ext = -1;

bool sha256_use_cpu_extensions(bool on)
{
#ifdef HAVE_SHA_NI_PATH
	__atomic_store_n(&use_ext, on && cpu_has_sha_ni(), __ATOMIC_RELAXED);
#else
	(void)on;
	__atomic_store_n(&use_ext, 0, __ATOMIC_RELAXED);
#endif
	return __atomic_load_n(&use_ext, __ATOMIC_RELAXED) == 1;
}

static void compress(uint32_t st[8], const uint8_t *p, size_t n)
{
	int ext = __atomic_load_n(&use_ext, __ATOMIC_RELAXED);
	if (ext < 0)
		ext = sha256_use_cpu_extensions(true);
#ifdef HAVE_SHA_NI_PATH
	if (ext == 1) {
		compress_shani(st, p, n);
		return;
	}
#endif
	compress_c(st, p, n);
}

void sha256_init(struct sha256 *s)
{
	static const uint32_t h0[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};
	memcpy(s->h, h0, sizeof(h0));
	s->n_bytes = 0;
	s->fill = 0;
}

void sha256_update(struct sha256 *s, const void *data, size_t len)
{
	const uint8_t *p = data;
	s->n_bytes += len;
	if (s->fill > 0) {
		size_t take = 64 - s->fill < len ? 64 - s->fill : len;
		memcpy(s->block + s->fill, p, take);
		s->fill += take;
		p += take;
		len -= take;
		if (s->fill < 64)
			return;
		compress(s->h, s->block, 1);
		s->fill = 0;
	}
	/* whole blocks straight from the caller's buffer */
	if (len >= 64) {
		compress(s->h, p, len / 64);
		p += len / 64 * 64;
		len %= 64;
	}
	if (len > 0) {
		memcpy(s->block, p, len);
		s->fill = len;
	}
}

void sha256_final(struct sha256 *s, uint8_t out[32])
{
	uint64_t bits = s->n_bytes * 8;
	uint8_t pad = 0x80, zero = 0, len_be[8];
	sha256_update(s, &pad, 1);
	while (s->fill != 56)
		sha256_update(s, &zero, 1);
	for (int i = 0; i < 8; i++)
		len_be[i] = (uint8_t)(bits >> (56 - 8 * i));
	sha256_update(s, len_be, 8);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(s->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)s->h[i];
	}
}

void sha256_hex(const uint8_t digest[32], char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 15];
	}
	hex[64] = '\0';
}

int sha256_file(const char *path, char hex[65], uint64_t *bytes, struct hug_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hug_error_set(err, "%s: cannot open: %s", path, strerror(errno));
	enum { PIECE = 1 << 20 };
	unsigned char *buf = hug_malloc(PIECE);
	struct sha256 s;
	sha256_init(&s);
	int rc = 0;
	for (;;) {
		ssize_t r = read(fd, buf, PIECE);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = hug_error_set(err, "%s: read failed: %s", path, strerror(errno));
			break;
		}
		if (r == 0)
			break;
		sha256_update(&s, buf, (size_t)r);
	}
	close(fd);
	hug_free(buf);
	if (rc)
		return -1;
	if (bytes)
		*bytes = s.n_bytes;
	uint8_t d[32];
	sha256_final(&s, d);
	sha256_hex(d, hex);
	return 0;
}
