/* SPDX-License-Identifier: MIT */
/* A sluice_allocator that fails the Nth calloc (style.md: fail each
 * allocation in turn). Set fail_alloc_at and reset fail_alloc_calls to 0
 * before each attempt; -1 never fails. */
#ifndef SLUICE_FAIL_ALLOC_H
#define SLUICE_FAIL_ALLOC_H

#include <stdlib.h>

static int fail_alloc_at = -1, fail_alloc_calls;

static inline void *failing_calloc(void *ctx, size_t n, size_t size)
{
    (void)ctx;
    if (fail_alloc_calls++ == fail_alloc_at)
        return NULL;
    return calloc(n, size);
}

static inline void plain_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

#endif
