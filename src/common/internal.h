/* SPDX-License-Identifier: MIT */
/* Internal helpers shared by the core modules: byte order, logging, HMAC
 * with cached inner/outer states. Not installed. */
#ifndef SLUICE_COMMON_INTERNAL_H
#define SLUICE_COMMON_INTERNAL_H

#include <stdlib.h>
#include <string.h>

#include "sluice/common.h"
#include "sluice/stun.h"

/* Alignment-safe big-endian access (design.md: no unaligned casts). */
static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}
static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}
static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)(v >> 32));
    wr32(p + 4, (uint32_t)v);
}

/* The pluggable allocator (zero-initialised: libc), for stateful objects. */
static inline void *sluice_xcalloc(const sluice_allocator *a, size_t n, size_t size)
{
    return a->calloc ? a->calloc(a->ctx, n, size) : calloc(n, size);
}
static inline void sluice_xfree(const sluice_allocator *a, void *p)
{
    if (!p)
        return;
    if (a->free)
        a->free(a->ctx, p);
    else
        free(p);
}

/* Value of a base64 digit (RFC 4648 §4, or §5 "base64url" when url), -1
 * for anything else. */
static inline int sluice_b64_value(uint8_t c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

bool sluice_log_enabled(sluice_log_level level);
void sluice_log(sluice_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* HMAC over (hdr[0..hlen) || body[0..blen)) with the key's cached states.
 * out receives 20 (SHA-1) or 32 (SHA-256) bytes. Returns 0 or
 * SLUICE_ERR_INVALID for a key that was never initialised. */
int sluice_hmac_sha1(const sluice_stun_key *key, const uint8_t *hdr, size_t hlen,
                     const uint8_t *body, size_t blen, uint8_t out[20]);
int sluice_hmac_sha256(const sluice_stun_key *key, const uint8_t *hdr, size_t hlen,
                       const uint8_t *body, size_t blen, uint8_t out[32]);

/* Digests used for key derivation (not on the hot path). */
int sluice_md5(const uint8_t *const *parts, const size_t *lens, size_t n, uint8_t out[16]);
int sluice_sha256(const uint8_t *const *parts, const size_t *lens, size_t n, uint8_t out[32]);

/* Constant-time comparison (OpenSSL CRYPTO_memcmp). */
bool sluice_ct_equal(const uint8_t *a, const uint8_t *b, size_t len);

#endif
