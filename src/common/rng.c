/* SPDX-License-Identifier: MIT */
/* Injected randomness: OpenSSL by default, a seeded xoshiro256** for tests. */
#include <string.h>

#include <openssl/rand.h>

#include "sluice/common.h"

int sluice_rng_fill(const sluice_rng *rng, uint8_t *out, size_t len)
{
    if (rng && rng->fill)
        return rng->fill(rng->ctx, out, len);
    while (len > 0) {
        int n = len > 1u << 20 ? 1 << 20 : (int)len;
        if (RAND_bytes(out, n) != 1)
            return SLUICE_ERR_CRYPTO;
        out += n;
        len -= (size_t)n;
    }
    return 0;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void sluice_test_rng_init(sluice_test_rng *t, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        t->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(sluice_test_rng *t)
{
    uint64_t *s = t->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t tmp = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= tmp;
    s[3] = rotl(s[3], 45);
    return result;
}

int sluice_test_rng_fill(void *ctx, uint8_t *out, size_t len)
{
    sluice_test_rng *t = ctx;
    if (!t)
        return SLUICE_ERR_INVALID;
    while (len > 0) {
        uint64_t v = xoshiro_next(t);
        size_t n = len < 8 ? len : 8;
        memcpy(out, &v, n);
        out += n;
        len -= n;
    }
    return 0;
}
