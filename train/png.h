/* png.h: a minimal PNG encoder for 8-bit RGB images (colour type 2, no
 * interlace, filter 0 on every row). The zlib stream uses stored
 * (uncompressed) deflate blocks, so the file is about 3 * w * h bytes; the
 * point is a dependency-free picture, not a small one. CRC-32 and Adler-32
 * are exported for the tests and for anyone else who needs them. */
#ifndef HUG_TRAIN_PNG_H
#define HUG_TRAIN_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"

/* Largest width or height png_encode_rgb accepts. */
#define PNG_MAX_DIM 16384

/* CRC-32 (ISO 3309 / ITU-T V.42, reflected polynomial 0xEDB88320) of
 * buf[0..n), continuing from `crc` (pass 0 to start; the pre- and
 * post-inversion are done inside, so calls chain). */
uint32_t png_crc32_update(uint32_t crc, const void *buf, size_t n);

/* CRC-32 of buf[0..n); png_crc32("123456789", 9) == 0xCBF43926. */
uint32_t png_crc32(const void *buf, size_t n);

/* Adler-32 (RFC 1950) of buf[0..n); of "Wikipedia" it is 0x11E60398. */
uint32_t png_adler32(const void *buf, size_t n);

/* Encodes a w x h image whose pixels are rgb[3 * (y * w + x) + c] (rows top
 * to bottom, c = R, G, B) as a complete PNG file. Returns a hug_malloc'd
 * buffer the caller frees with hug_free, its size in *len. w and h must be
 * in [1, PNG_MAX_DIM] (a broken invariant otherwise: callers validate). */
uint8_t *png_encode_rgb(const uint8_t *rgb, int w, int h, size_t *len);

/* Encodes as png_encode_rgb and writes the file at `path` through a
 * temporary "<path>.tmp" renamed into place, so a reader never sees half a
 * file. 0, or -1 with err naming the path and the system's reason. */
int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h,
		  struct hug_error *err);

#endif
