/* png.c: PNG encoding (signature, IHDR, one IDAT, IEND) with a zlib stream
 * of stored deflate blocks, and the CRC-32 / Adler-32 checksums it needs. */
#include "png.h"

#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/panic.h"

/* Largest LEN of a stored deflate block (RFC 1951, 3.2.4). */
#define STORED_MAX 65535u

/* Fills t with the CRC of each byte value, one bit at a time. */
static void crc_table_fill(uint32_t t[256])
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		t[i] = c;
	}
}

uint32_t png_crc32_update(uint32_t crc, const void *buf, size_t n)
{
	/* built per call: 2 K operations, no shared state between threads */
	uint32_t t[256];
	const uint8_t *p = buf;
	crc_table_fill(t);
	crc = ~crc;
	for (size_t i = 0; i < n; i++)
		crc = t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

uint32_t png_crc32(const void *buf, size_t n)
{
	return png_crc32_update(0, buf, n);
}

uint32_t png_adler32(const void *buf, size_t n)
{
	const uint8_t *p = buf;
	uint32_t a = 1, b = 0;
	while (n) {
		/* 5552 bytes is the most that cannot overflow b before the modulo */
		size_t k = n < 5552 ? n : 5552;
		n -= k;
		while (k--) {
			a += *p++;
			b += a;
		}
		a %= 65521u;
		b %= 65521u;
	}
	return (b << 16) | a;
}

static uint8_t *put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

/* Writes a chunk (length, type, data, CRC over type and data) at p, where
 * the data is already in place at p + 8; returns the end of the chunk. */
static uint8_t *chunk_close(uint8_t *p, const char type[4], size_t data_len)
{
	put_be32(p, (uint32_t)data_len);
	memcpy(p + 4, type, 4);
	return put_be32(p + 8 + data_len, png_crc32(p + 4, 4 + data_len));
}

/* Writes the filtered scanlines (a 0 filter byte, then the row) to dst. */
static void scanlines(uint8_t *dst, const uint8_t *rgb, int w, int h)
{
	size_t row = (size_t)w * 3;
	for (int y = 0; y < h; y++) {
		*dst++ = 0;
		memcpy(dst, rgb + (size_t)y * row, row);
		dst += row;
	}
}

/* Writes the zlib stream (header, stored blocks, Adler-32) of raw[0..n) to
 * p; returns its end. */
static uint8_t *zlib_stored(uint8_t *p, const uint8_t *raw, size_t n)
{
	*p++ = 0x78;   /* CM 8 (deflate), CINFO 7 (32 K window) */
	*p++ = 0x01;   /* FLEVEL 0, no dictionary, FCHECK: 0x7801 % 31 == 0 */
	size_t off = 0;
	do {
		size_t k = n - off < STORED_MAX ? n - off : STORED_MAX;
		*p++ = off + k == n ? 1 : 0;   /* BFINAL, BTYPE 00 */
		*p++ = (uint8_t)k;
		*p++ = (uint8_t)(k >> 8);
		*p++ = (uint8_t)~k;
		*p++ = (uint8_t)(~k >> 8);
		memcpy(p, raw + off, k);
		p += k;
		off += k;
	} while (off < n);
	return put_be32(p, png_adler32(raw, n));
}

uint8_t *png_encode_rgb(const uint8_t *rgb, int w, int h, size_t *len)
{
	static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n' };
	HUG_ASSERT(w >= 1 && w <= PNG_MAX_DIM && h >= 1 && h <= PNG_MAX_DIM);
	size_t raw_len = (size_t)h * (1 + (size_t)w * 3);
	size_t blocks = raw_len / STORED_MAX + 1;
	size_t z_len = 2 + blocks * 5 + raw_len + 4;
	size_t cap = 8 + (12 + 13) + (12 + z_len) + 12;
	uint8_t *raw = hug_malloc(raw_len);
	uint8_t *out = hug_malloc(cap), *p = out;

	memcpy(p, sig, 8);
	p += 8;
	uint8_t *d = put_be32(p + 8, (uint32_t)w);
	d = put_be32(d, (uint32_t)h);
	d[0] = 8;   /* bit depth */
	d[1] = 2;   /* colour type: truecolour */
	d[2] = 0;   /* compression: deflate */
	d[3] = 0;   /* filter method 0 */
	d[4] = 0;   /* no interlace */
	p = chunk_close(p, "IHDR", 13);

	scanlines(raw, rgb, w, h);
	uint8_t *z_end = zlib_stored(p + 8, raw, raw_len);
	p = chunk_close(p, "IDAT", (size_t)(z_end - (p + 8)));
	p = chunk_close(p, "IEND", 0);
	hug_free(raw);
	HUG_ASSERT((size_t)(p - out) <= cap);
	*len = (size_t)(p - out);
	return out;
}

int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h,
		  struct hug_error *err)
{
	size_t len;
	uint8_t *png = png_encode_rgb(rgb, w, h, &len);
	int rc = fs_write_atomic(path, png, len, err);
	hug_free(png);
	return rc;
}
