/* SPDX-License-Identifier: MIT */
/* Per-user allocation counts shared by the TURN server cores of one process
 * (one core per worker thread): a fixed table of atomic words, lock-free.
 * The one object of the core that several threads may use at once. */
#include <stdatomic.h>
#include <string.h>

#include "turn/quota.h"
#include "turn/server_internal.h"

/* A user's counts live in the WINDOW slots that follow its hash (bounded
 * probing). A slot is one atomic word: 0 when free, else the user's 48-bit
 * tag above a 16-bit count of at least 1. Tag and count change together,
 * so a slot is never seen holding one user's tag with another's count. */
#define WINDOW 32u
#define COUNT_MASK 0xFFFFull
#define MIN_SLOTS 64u
#define MAX_SLOTS (1u << 24)

struct sluice_turn_quota {
    sluice_allocator alloc;
    uint64_t key[2];
    uint32_t mask;
    _Atomic uint64_t *slots;
    atomic_uint_fast64_t refused_full; /* no free slot in a window */
};

/* Keyed with a secret from the rng, so nobody can aim names at one window
 * and crowd out other users. id is already a digest: mixing is enough. */
static uint64_t user_hash(const sluice_turn_quota *q, const uint8_t id[16])
{
    return srv_mix64(srv_mix64(rd64(id) ^ q->key[0]) ^ rd64(id + 8) ^ q->key[1]);
}

sluice_turn_quota *sluice_turn_quota_new(size_t slots, const sluice_rng *rng,
                                         const sluice_allocator *alloc, int *err)
{
    sluice_allocator a = {0};
    uint8_t k[16];
    int dummy;
    if (!err)
        err = &dummy;
    if (alloc)
        a = *alloc;
    if (slots == 0 || slots > MAX_SLOTS) {
        *err = SLUICE_ERR_INVALID;
        return NULL;
    }
    if (sluice_rng_fill(rng, k, sizeof k) < 0) {
        *err = SLUICE_ERR_CRYPTO;
        return NULL;
    }
    size_t n = MIN_SLOTS;
    while (n < slots)
        n <<= 1;
    sluice_turn_quota *q = sluice_xcalloc(&a, 1, sizeof *q);
    if (!q || !(q->slots = sluice_xcalloc(&a, n, sizeof *q->slots))) {
        sluice_xfree(&a, q);
        *err = SLUICE_ERR_NOMEM;
        return NULL;
    }
    q->alloc = a;
    q->key[0] = rd64(k);
    q->key[1] = rd64(k + 8);
    q->mask = (uint32_t)(n - 1);
    for (size_t i = 0; i < n; i++)
        atomic_init(&q->slots[i], 0);
    atomic_init(&q->refused_full, 0);
    *err = 0;
    return q;
}

void sluice_turn_quota_free(sluice_turn_quota *q)
{
    if (!q)
        return;
    sluice_allocator a = q->alloc;
    sluice_xfree(&a, (void *)q->slots);
    sluice_xfree(&a, q);
}

/* Put one count in a slot of the window: a slot of this user with room,
 * else a free one. Returns the slot or UINT32_MAX when none is left. */
static uint32_t place(sluice_turn_quota *q, uint32_t start, uint64_t tag)
{
    for (uint32_t i = 0; i < WINDOW; i++) {
        uint32_t at = (start + i) & q->mask;
        uint64_t w = atomic_load(&q->slots[at]);
        while (w && (w >> 16) == tag && (w & COUNT_MASK) < COUNT_MASK) {
            if (atomic_compare_exchange_weak(&q->slots[at], &w, w + 1))
                return at;
        }
    }
    for (uint32_t i = 0; i < WINDOW; i++) {
        uint32_t at = (start + i) & q->mask;
        uint64_t w = 0;
        if (atomic_compare_exchange_strong(&q->slots[at], &w, tag << 16 | 1))
            return at;
    }
    return UINT32_MAX;
}

int sluice_turn_quota_acquire(sluice_turn_quota *q, const uint8_t id[16], uint32_t limit,
                              uint32_t *slot)
{
    uint64_t h = user_hash(q, id);
    uint64_t tag = h >> 16;
    uint32_t start = (uint32_t)h & q->mask;

    uint32_t at = place(q, start, tag);
    if (at == UINT32_MAX) {
        atomic_fetch_add(&q->refused_full, 1);
        return SLUICE_ERR_FULL;
    }
    /* Count first, then check: every allocation a user holds was counted
     * before the check of the last one admitted began, so that check saw
     * them all and the sum never passes limit, whatever the interleaving
     * (two racing Allocates may both be refused; never both admitted over
     * the limit). Two racing first Allocates may take two slots: the sum
     * covers every slot of the user in the window. */
    uint64_t total = 0;
    for (uint32_t i = 0; i < WINDOW; i++) {
        uint64_t w = atomic_load(&q->slots[(start + i) & q->mask]);
        if (w && (w >> 16) == tag)
            total += w & COUNT_MASK;
    }
    if (total > limit) {
        sluice_turn_quota_release(q, at);
        return SLUICE_ERR_FULL;
    }
    *slot = at;
    return 0;
}

void sluice_turn_quota_release(sluice_turn_quota *q, uint32_t slot)
{
    _Atomic uint64_t *p = &q->slots[slot & q->mask];
    uint64_t w = atomic_load(p);
    while (w) {
        uint64_t next = (w & COUNT_MASK) == 1 ? 0 : w - 1;
        if (atomic_compare_exchange_weak(p, &w, next))
            return;
    }
}

uint64_t sluice_turn_quota_held(const sluice_turn_quota *q)
{
    uint64_t total = 0;
    if (!q)
        return 0;
    for (uint32_t i = 0; i <= q->mask; i++)
        total += atomic_load(&q->slots[i]) & COUNT_MASK;
    return total;
}

uint64_t sluice_turn_quota_refused_full(const sluice_turn_quota *q)
{
    return q ? atomic_load(&q->refused_full) : 0;
}
