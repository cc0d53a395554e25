/* SPDX-License-Identifier: MIT */
/* Guard pages for decoder tests: a buffer whose bytes end exactly where an
 * inaccessible page begins (and start right after another one), so any
 * read past either end of the input crashes the test instead of passing
 * silently (the picohttpparser test.c technique). */
#ifndef SLUICE_TEST_GUARD_H
#define SLUICE_TEST_GUARD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct guard_buf {
    uint8_t *map;
    size_t map_len;
    uint8_t *lo; /* first accessible byte */
    uint8_t *hi; /* first byte of the trailing PROT_NONE page */
} guard_buf;

/* Room for any STUN message (20 + 65532 bytes) between two guard pages. */
static inline void guard_init(guard_buf *g)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data = (65536 + page - 1) / page * page + page;
    g->map_len = data + 2 * page;
    g->map = (uint8_t *)mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                             -1, 0);
    if (g->map == MAP_FAILED) {
        perror("mmap");
        exit(99);
    }
    if (mprotect(g->map, page, PROT_NONE) != 0 ||
        mprotect(g->map + page + data, page, PROT_NONE) != 0) {
        perror("mprotect");
        exit(99);
    }
    g->lo = g->map + page;
    g->hi = g->map + page + data;
}

static inline void guard_free(guard_buf *g)
{
    munmap(g->map, g->map_len);
}

/* Copy src[0..len) so that its last byte is the last accessible one. */
static inline uint8_t *guard_place(guard_buf *g, const uint8_t *src, size_t len)
{
    uint8_t *dst;
    if (len > (size_t)(g->hi - g->lo)) {
        fprintf(stderr, "guard_place: %zu bytes do not fit\n", len);
        exit(99);
    }
    dst = g->hi - len;
    if (len)
        memmove(dst, src, len);
    return dst;
}

/* Copy src[0..len) right after the leading guard page (catches reads
 * before the start). */
static inline uint8_t *guard_place_low(guard_buf *g, const uint8_t *src, size_t len)
{
    if (len > (size_t)(g->hi - g->lo)) {
        fprintf(stderr, "guard_place_low: %zu bytes do not fit\n", len);
        exit(99);
    }
    if (len)
        memmove(g->lo, src, len);
    return g->lo;
}

#endif
