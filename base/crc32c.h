/* crc32c.h: CRC-32C (Castagnoli, the polynomial 0x1EDC6F41 reflected), as
 * TensorBoard's record format and iSCSI use it. */
#ifndef HUG_BASE_CRC32C_H
#define HUG_BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of len bytes at p (crc32c("123456789") == 0xE3069283), on the
 * SSE4.2 crc32 instruction when the CPU has it, a table otherwise. */
uint32_t crc32c(const void *p, size_t len);

#endif
