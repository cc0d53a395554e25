/* SPDX-License-Identifier: MIT */
/* Injected randomness: OpenSSL by default, a seeded xoshiro256** for tests. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "sluice/common.h"

/* A RAND_bytes call costs ~650 ns whatever its size (OpenSSL 3.0 takes the
 * DRBG lock and reseed checks per call), more than building and signing a
 * whole STUN request (docs/benchmarks.md). Small requests (transaction IDs,
 * tie-breakers) are therefore served from a per-thread pool of DRBG output,
 * refilled in one call. Bytes are wiped from the pool as they are handed
 * out, and a fork invalidates every pool so parent and child never share
 * output. */
#define POOL_SIZE 2048
#define POOL_MAX_REQUEST 64

static _Thread_local struct {
    uint8_t buf[POOL_SIZE];
    size_t pos; /* bytes before pos are used (and wiped) */
    unsigned gen;
    bool init;
} pool;
static atomic_uint fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add(&fork_gen, 1);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

static int fill_direct(uint8_t *out, size_t len)
{
    while (len > 0) {
        int n = len > 1u << 20 ? 1 << 20 : (int)len;
        if (RAND_bytes(out, n) != 1)
            return SLUICE_ERR_CRYPTO;
        out += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fill_pooled(uint8_t *out, size_t len)
{
    unsigned gen;

    pthread_once(&atfork_once, register_atfork);
    gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
    if (!pool.init || pool.gen != gen || POOL_SIZE - pool.pos < len) {
        int rc = fill_direct(pool.buf, POOL_SIZE);
        if (rc < 0) {
            OPENSSL_cleanse(pool.buf, POOL_SIZE);
            pool.init = false;
            return rc;
        }
        pool.pos = 0;
        pool.gen = gen;
        pool.init = true;
    }
    memcpy(out, pool.buf + pool.pos, len);
    memset(pool.buf + pool.pos, 0, len);
    pool.pos += len;
    return 0;
}

int sluice_rng_fill(const sluice_rng *rng, uint8_t *out, size_t len)
{
    if (!out && len)
        return SLUICE_ERR_INVALID;
    if (rng && rng->fill)
        return rng->fill(rng->ctx, out, len);
    if (len <= POOL_MAX_REQUEST)
        return fill_pooled(out, len);
    return fill_direct(out, len);
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
