/* SPDX-License-Identifier: MIT */
/* The per-user quota table shared between TURN server cores: limits,
 * release, a full window, two cores on virtual time sharing one table, and
 * real threads racing on it (the one object of the core that allows it). */
#include <pthread.h>
#include <stdatomic.h>

#include "test.h"

#include "fail_alloc.h"
#include "turn/quota.h"
#include "turn_server_util.h"

static void id_of(uint8_t id[16], unsigned n)
{
    memset(id, 0, 16);
    /* a digest in real use: spread the bits the same way */
    uint64_t x = 0x9E3779B97F4A7C15ull * (n + 1);
    for (int i = 0; i < 16; i++) {
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ull;
        id[i] = (uint8_t)(x >> 56);
    }
}

static sluice_turn_quota *quota_new(size_t slots)
{
    sluice_rng r = {sluice_test_rng_fill, &rng};
    int err = 1;
    sluice_turn_quota *q = sluice_turn_quota_new(slots, &r, NULL, &err);
    CHECK(q != NULL);
    CHECK_EQ(err, 0);
    return q;
}

static void test_table(void)
{
    int err = 0;
    sluice_test_rng_init(&rng, 1);
    CHECK(sluice_turn_quota_new(0, NULL, NULL, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    CHECK(sluice_turn_quota_new((size_t)1 << 25, NULL, NULL, NULL) == NULL);
    CHECK_EQ(sluice_turn_quota_held(NULL), 0);
    sluice_turn_quota_free(NULL);

    sluice_turn_quota *q = quota_new(100);
    uint8_t a[16], b[16];
    uint32_t sa[3], sb;
    id_of(a, 1);
    id_of(b, 2);
    CHECK_EQ(sluice_turn_quota_acquire(q, a, 2, &sa[0]), 0);
    CHECK_EQ(sluice_turn_quota_acquire(q, a, 2, &sa[1]), 0);
    CHECK_EQ(sluice_turn_quota_acquire(q, a, 2, &sa[2]), SLUICE_ERR_FULL);
    CHECK_EQ(sa[0], sa[1]); /* one slot per user */
    CHECK_EQ(sluice_turn_quota_acquire(q, b, 2, &sb), 0);
    CHECK(sb != sa[0]);
    CHECK_EQ(sluice_turn_quota_held(q), 3);
    /* a refusal leaves nothing behind; a release makes room */
    sluice_turn_quota_release(q, sa[0]);
    CHECK_EQ(sluice_turn_quota_held(q), 2);
    CHECK_EQ(sluice_turn_quota_acquire(q, a, 2, &sa[0]), 0);
    sluice_turn_quota_release(q, sa[0]);
    sluice_turn_quota_release(q, sa[1]);
    sluice_turn_quota_release(q, sb);
    CHECK_EQ(sluice_turn_quota_held(q), 0);
    CHECK_EQ(sluice_turn_quota_refused_full(q), 0);
    sluice_turn_quota_free(q);
}

/* 64 slots (the minimum), 64 users: every window is full; the next user
 * is refused (486 in the core) instead of the table growing. */
static void test_full_window(void)
{
    sluice_test_rng_init(&rng, 2);
    sluice_turn_quota *q = quota_new(1);
    uint8_t id[16];
    uint32_t slot[64], extra;
    unsigned placed = 0;
    for (unsigned u = 0; u < 1000 && placed < 64; u++) {
        id_of(id, u);
        if (sluice_turn_quota_acquire(q, id, 5, &slot[placed]) == 0)
            placed++;
    }
    CHECK_EQ(placed, 64);
    CHECK_EQ(sluice_turn_quota_held(q), 64);
    id_of(id, 5000);
    CHECK_EQ(sluice_turn_quota_acquire(q, id, 5, &extra), SLUICE_ERR_FULL);
    CHECK(sluice_turn_quota_refused_full(q) >= 1);
    /* one slot back: the newcomer fits (every window covers half the table) */
    sluice_turn_quota_release(q, slot[7]);
    uint64_t before = sluice_turn_quota_refused_full(q);
    int r = sluice_turn_quota_acquire(q, id, 5, &extra);
    if (r < 0)
        CHECK_EQ(sluice_turn_quota_refused_full(q), before + 1);
    else
        CHECK_EQ(sluice_turn_quota_held(q), 64);
    sluice_turn_quota_free(q);

    /* every allocation of its creation can fail */
    sluice_allocator fa = {failing_calloc, plain_free, NULL};
    for (fail_alloc_at = 0;; fail_alloc_at++) {
        int err = 0;
        fail_alloc_calls = 0;
        sluice_turn_quota *t = sluice_turn_quota_new(100, NULL, &fa, &err);
        if (t) {
            sluice_turn_quota_free(t);
            CHECK_EQ(fail_alloc_at, 2);
            break;
        }
        CHECK_EQ(err, SLUICE_ERR_NOMEM);
    }
    fail_alloc_at = -1;
}

/* Two cores (two workers' worth) with one table: the per-user quota holds
 * across them; a delete or an expiry on one frees room on the other. */
static void test_two_cores(void)
{
    static struct srv_env e[2];
    sluice_test_rng_init(&rng, 3);
    sluice_turn_quota *q = quota_new(128);
    for (int i = 0; i < 2; i++) {
        memset(&e[i], 0, sizeof e[i]);
        e[i].now = 100 * S;
        sluice_addr_parse(&e[i].listen4, "192.0.2.10:3478", 0);
        srv_config(&e[i]);
        e[i].cfg.port_min = (uint16_t)(50000 + 500 * i);
        e[i].cfg.port_max = (uint16_t)(50499 + 500 * i);
        e[i].cfg.max_allocations_per_user = 2;
        e[i].cfg.shared_quota = q;
        srv_start(&e[i]);
    }
    struct resp r;
    sluice_turn_server_flow f[6];
    char cl[64];
    for (int i = 0; i < 6; i++) {
        snprintf(cl, sizeof cl, "198.51.100.7:%d", 1000 + i);
        flow_udp(&f[i], cl, &e[0].listen4);
    }
    CHECK_EQ(raw_allocate(&e[0], &f[0], "alice", "secret", 0, 0, &r), 0);
    CHECK_EQ(raw_allocate(&e[1], &f[1], "alice", "secret", 0, 0, &r), 0);
    CHECK_EQ(raw_allocate(&e[1], &f[2], "alice", "secret", 0, 0, &r), 486);
    CHECK_EQ(raw_allocate(&e[0], &f[2], "alice", "secret", 0, 0, &r), 486);
    CHECK_EQ(raw_allocate(&e[0], &f[2], "bob", "hunter2", 0, 0, &r), 0);
    CHECK_EQ(sluice_turn_quota_held(q), 3);
    sluice_turn_server_stats st;
    sluice_turn_server_get_stats(e[0].srv, &st);
    CHECK_EQ(st.quota_refused, 1);

    /* a delete (Refresh lifetime 0) on core 1 lets core 0 allocate */
    CHECK_EQ(raw_refresh(&e[1], &f[1], "alice", "secret", 0, &r), 0);
    CHECK_EQ(sluice_turn_quota_held(q), 2);
    CHECK_EQ(raw_allocate(&e[0], &f[3], "alice", "secret", 0, 0, &r), 0);
    CHECK_EQ(raw_allocate(&e[1], &f[4], "alice", "secret", 0, 0, &r), 486);

    /* TURN REST users count by the name after the expiry */
    char pw[64], name[64];
    snprintf(name, sizeof name, "1800000000:carol");
    rest_password_real("new-secret", name, pw);
    CHECK_EQ(raw_allocate(&e[1], &f[4], name, pw, 0, 0, &r), 0);
    snprintf(name, sizeof name, "1800000001:carol");
    rest_password_real("new-secret", name, pw);
    CHECK_EQ(raw_allocate(&e[0], &f[5], name, pw, 0, 0, &r), 0);
    flow_udp(&f[5], "198.51.100.8:1", &e[0].listen4);
    CHECK_EQ(raw_allocate(&e[1], &f[5], name, pw, 0, 0, &r), 486);

    /* expiry on both cores gives everything back */
    for (int i = 0; i < 2; i++) {
        srv_advance(&e[i], 601);
        CHECK_EQ(e[i].n_open, 0);
    }
    CHECK_EQ(sluice_turn_quota_held(q), 0);
    CHECK_EQ(raw_allocate(&e[1], &f[0], "alice", "secret", 0, 0, &r), 0);
    CHECK_EQ(raw_allocate(&e[1], &f[1], "alice", "secret", 0, 0, &r), 0);
    CHECK_EQ(raw_allocate(&e[1], &f[2], "alice", "secret", 0, 0, &r), 486);
    /* freeing a core gives nothing back by itself: the driver frees the
     * table after every core, and the counts die with it */
    for (int i = 0; i < 2; i++)
        srv_free(&e[i]);
    sluice_turn_quota_free(q);
}

/* Threads hammer one table: acquire/release for a few users at once. At
 * no moment does a user hold more than the limit, and at the end the
 * table is empty. */
#define RACE_THREADS 4
#define RACE_USERS 6
#define RACE_LIMIT 3
#define RACE_ROUNDS 100000

struct race {
    sluice_turn_quota *q;
    unsigned seed;
    atomic_int *holding; /* per user, counted by the test itself */
    atomic_int *over;
    uint64_t admitted, refused;
};

static void *race_thread(void *arg)
{
    struct race *r = arg;
    uint8_t ids[RACE_USERS][16];
    uint32_t held[RACE_USERS][RACE_LIMIT + 1];
    unsigned n_held[RACE_USERS] = {0};
    uint64_t x = r->seed * 0x9E3779B97F4A7C15ull + 1;
    for (unsigned u = 0; u < RACE_USERS; u++)
        id_of(ids[u], u);
    for (unsigned i = 0; i < RACE_ROUNDS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned u = (unsigned)(x % RACE_USERS);
        bool take = (x >> 32) & 1;
        if (take && n_held[u] <= RACE_LIMIT) {
            uint32_t slot;
            if (sluice_turn_quota_acquire(r->q, ids[u], RACE_LIMIT, &slot) == 0) {
                if (atomic_fetch_add(&r->holding[u], 1) + 1 > RACE_LIMIT)
                    atomic_fetch_add(r->over, 1);
                held[u][n_held[u]++] = slot;
                r->admitted++;
            } else {
                r->refused++;
            }
        } else if (n_held[u]) {
            atomic_fetch_sub(&r->holding[u], 1);
            sluice_turn_quota_release(r->q, held[u][--n_held[u]]);
        }
    }
    for (unsigned u = 0; u < RACE_USERS; u++)
        while (n_held[u]) {
            atomic_fetch_sub(&r->holding[u], 1);
            sluice_turn_quota_release(r->q, held[u][--n_held[u]]);
        }
    return NULL;
}

static void test_threads(void)
{
    sluice_test_rng_init(&rng, 4);
    /* a small table: the users' windows overlap and share slots */
    sluice_turn_quota *q = quota_new(64);
    atomic_int holding[RACE_USERS], over;
    struct race r[RACE_THREADS];
    pthread_t th[RACE_THREADS];
    for (unsigned u = 0; u < RACE_USERS; u++)
        atomic_init(&holding[u], 0);
    atomic_init(&over, 0);
    for (unsigned i = 0; i < RACE_THREADS; i++) {
        r[i] = (struct race){.q = q, .seed = i + 1, .holding = holding, .over = &over};
        CHECK_EQ(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
    }
    uint64_t admitted = 0, refused = 0;
    for (unsigned i = 0; i < RACE_THREADS; i++) {
        pthread_join(th[i], NULL);
        admitted += r[i].admitted;
        refused += r[i].refused;
    }
    printf("# %" PRIu64 " admitted, %" PRIu64 " refused\n", admitted, refused);
    CHECK(admitted > 1000);
    CHECK(refused > 0);
    CHECK_EQ(atomic_load(&over), 0);
    CHECK_EQ(sluice_turn_quota_held(q), 0);
    CHECK_EQ(sluice_turn_quota_refused_full(q), 0);
    sluice_turn_quota_free(q);
}

int main(void)
{
    RUN(test_table);
    RUN(test_full_window);
    RUN(test_two_cores);
    RUN(test_threads);
    return TEST_DONE();
}
