/* utf8.c: strict UTF-8 decoding and a two-stage class table built once
 * from the generated ranges in tokenizer_unicode.c. */
#include "utf8.h"

#include <pthread.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/panic.h"

#define BLOCK_BITS 8
#define N_BLOCKS (0x110000 >> BLOCK_BITS)

static uint16_t *stage1;   /* block index per 256 code points */
static uint8_t *stage2;    /* classes, 256 per distinct block */
static uint8_t ascii_class[128];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

int utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint8_t b = s[0];
	int len;
	uint32_t c, min;
	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	if (b >= 0xC2 && b <= 0xDF) {
		len = 2, c = b & 0x1F, min = 0x80;
	} else if (b >= 0xE0 && b <= 0xEF) {
		len = 3, c = b & 0x0F, min = 0x800;
	} else if (b >= 0xF0 && b <= 0xF4) {
		len = 4, c = b & 0x07, min = 0x10000;
	} else {
		*cp = UTF8_INVALID;
		return 1;
	}
	if ((size_t)len > n)
		goto invalid;
	for (int i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			goto invalid;
		c = c << 6 | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		goto invalid;
	*cp = c;
	return len;
invalid:
	*cp = UTF8_INVALID;
	return 1;
}

int utf8_invalid_len(const uint8_t *s, size_t n)
{
	uint8_t b = s[0], lo = 0x80, hi = 0xBF;
	int len;
	if (b >= 0xC2 && b <= 0xDF)
		len = 2;
	else if (b >= 0xE0 && b <= 0xEF)
		len = 3;
	else if (b >= 0xF0 && b <= 0xF4)
		len = 4;
	else
		return 1;
	/* the second byte's range excludes overlongs and surrogates */
	if (b == 0xE0)
		lo = 0xA0;
	else if (b == 0xED)
		hi = 0x9F;
	else if (b == 0xF0)
		lo = 0x90;
	else if (b == 0xF4)
		hi = 0x8F;
	int k = 1;
	for (; k < len && (size_t)k < n; k++) {
		uint8_t c = s[k];
		if (k == 1 ? (c < lo || c > hi) : (c & 0xC0) != 0x80)
			break;
	}
	return k;
}

void utf8_append_lossy(struct buf *out, const uint8_t *s, size_t n)
{
	size_t i = 0, run = 0;
	while (i < n) {
		uint32_t cp;
		int len = utf8_decode(s + i, n - i, &cp);
		if (cp != UTF8_INVALID) {
			i += (size_t)len;
			continue;
		}
		buf_put(out, (const char *)s + run, i - run);
		buf_put(out, "\xef\xbf\xbd", 3);
		i += (size_t)utf8_invalid_len(s + i, n - i);
		run = i;
	}
	buf_put(out, (const char *)s + run, n - run);
}

int64_t utf8_find_invalid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		uint32_t cp;
		int len = utf8_decode(s + i, n - i, &cp);
		if (cp == UTF8_INVALID)
			return (int64_t)i;
		i += (size_t)len;
	}
	return -1;
}

/* Fills one 256-entry block for code points [base, base + 256). */
static void fill_block(uint8_t *blk, uint32_t base, int *r)
{
	memset(blk, UC_O, 1 << BLOCK_BITS);
	while (*r < utf8_n_ranges && utf8_ranges[*r].hi < base)
		(*r)++;
	for (int k = *r; k < utf8_n_ranges && utf8_ranges[k].lo < base + 256; k++) {
		uint32_t lo = utf8_ranges[k].lo > base ? utf8_ranges[k].lo : base;
		uint32_t hi = utf8_ranges[k].hi < base + 255 ? utf8_ranges[k].hi : base + 255;
		memset(blk + (lo - base), utf8_ranges[k].cls, hi - lo + 1);
	}
}

static void build_tables(void)
{
	uint8_t blk[1 << BLOCK_BITS];
	int cap = 64, used = 0, r = 0;
	stage1 = hug_malloc(N_BLOCKS * sizeof(uint16_t));
	stage2 = hug_malloc((size_t)cap << BLOCK_BITS);
	for (uint32_t b = 0; b < N_BLOCKS; b++) {
		fill_block(blk, b << BLOCK_BITS, &r);
		int found = -1;
		for (int k = used - 1; k >= 0 && found < 0; k--)
			if (!memcmp(stage2 + ((size_t)k << BLOCK_BITS), blk, sizeof(blk)))
				found = k;
		if (found < 0) {
			if (used == cap)
				stage2 = hug_realloc(stage2, (size_t)(cap *= 2) << BLOCK_BITS);
			memcpy(stage2 + ((size_t)used << BLOCK_BITS), blk, sizeof(blk));
			found = used++;
		}
		stage1[b] = (uint16_t)found;
	}
	for (int c = 0; c < 128; c++)
		ascii_class[c] = stage2[((size_t)stage1[0] << BLOCK_BITS) + (size_t)c];
}

void utf8_init(void)
{
	pthread_once(&table_once, build_tables);
}

enum utf8_class utf8_class(uint32_t cp)
{
	if (cp > 0x10FFFF)
		return UC_O;
	HUG_ASSERT(stage1 != NULL);
	size_t blk = stage1[cp >> BLOCK_BITS];
	return (enum utf8_class)stage2[(blk << BLOCK_BITS) + (cp & 0xFF)];
}

int utf8_next_class(const uint8_t *s, size_t n, enum utf8_class *cls)
{
	if (s[0] < 0x80) {
		*cls = (enum utf8_class)ascii_class[s[0]];
		return 1;
	}
	uint32_t cp;
	int len = utf8_decode(s, n, &cp);
	*cls = utf8_class(cp);
	return len;
}
