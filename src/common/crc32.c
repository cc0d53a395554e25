/* SPDX-License-Identifier: MIT */
/* CRC-32 for FINGERPRINT: slicing-by-8 over build-time generated tables. */
#include <string.h>

#include "common/internal.h"
#include "crc32_table.h"

uint32_t sluice_crc32(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    while (len >= 8) {
        /* Byte-wise loads: alignment-safe and endian-independent. */
        uint32_t a = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                            (uint32_t)p[3] << 24);
        uint32_t b = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                     (uint32_t)p[7] << 24;
        crc = crc32_table[7][a & 0xFF] ^ crc32_table[6][(a >> 8) & 0xFF] ^
              crc32_table[5][(a >> 16) & 0xFF] ^ crc32_table[4][a >> 24] ^
              crc32_table[3][b & 0xFF] ^ crc32_table[2][(b >> 8) & 0xFF] ^
              crc32_table[1][(b >> 16) & 0xFF] ^ crc32_table[0][b >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc32_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
