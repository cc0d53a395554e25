/* SPDX-License-Identifier: MIT */
/* Unit tests for the direct channel's DTLS endpoint (src/coord/dtls.c): two
 * endpoints joined in memory with identities generated at run time — the
 * handshake, messages both ways, the size limit, pinning, lost flights,
 * garbage and truncated datagrams, close, bounds, allocation failures. */
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "fail_alloc.h"
#include "sluice/coord.h"
#include "test.h"

#define T0 1000000u /* virtual now_us at the start of each case */
#define MS 1000u

static char dir[] = "/tmp/sluice-dtls-XXXXXX";
static bool have_dir;
static char alice_crt[64], alice_key[64], bob_crt[64], bob_key[64], eve_crt[64], eve_key[64];
static uint8_t alice_fp[32], bob_fp[32], eve_fp[32];

static bool setup_files(void)
{
    if (!mkdtemp(dir))
        return false;
    have_dir = true;
    snprintf(alice_crt, sizeof alice_crt, "%s/alice.crt", dir);
    snprintf(alice_key, sizeof alice_key, "%s/alice.key", dir);
    snprintf(bob_crt, sizeof bob_crt, "%s/bob.crt", dir);
    snprintf(bob_key, sizeof bob_key, "%s/bob.key", dir);
    snprintf(eve_crt, sizeof eve_crt, "%s/eve.crt", dir);
    snprintf(eve_key, sizeof eve_key, "%s/eve.key", dir);
    return sluice_coord_generate_identity("alice", alice_crt, alice_key, alice_fp) == 0 &&
           sluice_coord_generate_identity("bob", bob_crt, bob_key, bob_fp) == 0 &&
           sluice_coord_generate_identity("eve", eve_crt, eve_key, eve_fp) == 0;
}

static void remove_files(void)
{
    const char *files[] = {alice_crt, alice_key, bob_crt, bob_key, eve_crt, eve_key};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(files[i]);
    rmdir(dir);
}

/* ------------------------------------------------------------------------ */
/* Endpoints and the in-memory path */

typedef struct {
    size_t max_datagram;
    size_t recv_queue;
    size_t send_queue_bytes;
    uint64_t retransmit_us;
    uint64_t handshake_timeout_us;
} opts;

/* alice is the client (controlling), bob the server; each pins pin. */
static sluice_coord_dtls *endpoint(bool client, const uint8_t *pin, const opts *o)
{
    sluice_coord_dtls_config cfg;
    sluice_coord_dtls *d;
    int err = 1;

    sluice_coord_dtls_config_init(&cfg);
    cfg.client = client;
    cfg.cert_file = client ? alice_crt : bob_crt;
    cfg.key_file = client ? alice_key : bob_key;
    cfg.peer_fingerprint = pin;
    if (o && o->max_datagram)
        cfg.max_datagram = o->max_datagram;
    if (o && o->recv_queue)
        cfg.recv_queue = o->recv_queue;
    if (o && o->send_queue_bytes)
        cfg.send_queue_bytes = o->send_queue_bytes;
    if (o && o->retransmit_us)
        cfg.retransmit_us = o->retransmit_us;
    if (o && o->handshake_timeout_us)
        cfg.handshake_timeout_us = o->handshake_timeout_us;
    d = sluice_coord_dtls_new(&cfg, &err);
    CHECK(d != NULL);
    CHECK_EQ(err, 0);
    return d;
}

/* A datagram as the wire must see it: DTLS by its first byte (RFC 7983),
 * whole records, within the MTU. */
static void check_datagram(const uint8_t *p, size_t len, size_t mtu)
{
    size_t off = 0;
    CHECK(len > 0 && len <= mtu);
    CHECK(sluice_coord_is_dtls(p[0]));
    while (off + 13 <= len)
        off += 13 + ((size_t)p[off + 11] << 8 | p[off + 12]);
    CHECK_EQ(off, len);
}

/* Move what from has to send over to to, or lose all of it. Returns the
 * datagrams taken. */
static int carry(sluice_coord_dtls *from, sluice_coord_dtls *to, uint64_t now, size_t mtu,
                 bool lose)
{
    uint8_t buf[SLUICE_COORD_DTLS_MAX_DATAGRAM];
    int n, taken = 0;
    while ((n = sluice_coord_dtls_poll_transmit(from, buf, sizeof buf)) > 0) {
        check_datagram(buf, (size_t)n, mtu);
        taken++;
        if (!lose)
            sluice_coord_dtls_handle_datagram(to, now, buf, (size_t)n);
    }
    CHECK_EQ(n, 0);
    return taken;
}

/* Exchange until neither side has anything to say. */
static void settle(sluice_coord_dtls *a, sluice_coord_dtls *b, uint64_t now, size_t mtu)
{
    for (int i = 0; i < 20; i++)
        if (carry(a, b, now, mtu, false) + carry(b, a, now, mtu, false) == 0)
            return;
    CHECK(!"the endpoints never went quiet");
}

static void handshake(sluice_coord_dtls *a, sluice_coord_dtls *b, size_t mtu)
{
    CHECK_EQ(sluice_coord_dtls_start(a, T0), 0);
    CHECK_EQ(sluice_coord_dtls_start(b, T0), 0);
    settle(a, b, T0 + 1 * MS, mtu);
    CHECK(sluice_coord_dtls_established(a));
    CHECK(sluice_coord_dtls_established(b));
}

/* A message both ways, compared byte for byte. */
static void exchange(sluice_coord_dtls *from, sluice_coord_dtls *to, size_t len, uint8_t seed)
{
    uint8_t msg[SLUICE_COORD_DTLS_MAX_DATAGRAM], got[SLUICE_COORD_DTLS_MAX_DATAGRAM];
    for (size_t i = 0; i < len; i++)
        msg[i] = (uint8_t)(seed + i * 7);
    CHECK_EQ(sluice_coord_dtls_send(from, msg, len), 0);
    CHECK_EQ(carry(from, to, T0 + 2 * MS, SLUICE_COORD_DTLS_MAX_DATAGRAM, false), 1);
    CHECK_EQ(sluice_coord_dtls_recv(to, got, sizeof got), (int)len);
    CHECK_MEM(got, msg, len);
    CHECK_EQ(sluice_coord_dtls_recv(to, got, sizeof got), 0);
}

/* ------------------------------------------------------------------------ */

static void test_is_dtls(void)
{
    static const struct {
        uint8_t b;
        bool dtls;
    } t[] = {{0, false},  {1, false},   {3, false},   {4, false},   {19, false},
             {20, true},  {22, true},   {23, true},   {63, true},   {64, false},
             {79, false}, {127, false}, {128, false}, {191, false}, {255, false}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECK_EQ(sluice_coord_is_dtls(t[i].b), t[i].dtls);
}

static void test_handshake_and_messages(void)
{
    sluice_coord_dtls *a = endpoint(true, bob_fp, NULL), *b = endpoint(false, alice_fp, NULL);
    sluice_coord_dtls_stats st;
    uint8_t buf[64];

    CHECK(!sluice_coord_dtls_established(a));
    CHECK_EQ(sluice_coord_dtls_next_timeout(a), SLUICE_NEVER); /* not started */
    CHECK_EQ(sluice_coord_dtls_next_timeout(b), SLUICE_NEVER);
    CHECK_EQ(sluice_coord_dtls_start(a, T0), 0);
    CHECK_EQ(sluice_coord_dtls_start(a, T0), SLUICE_ERR_STATE);
    /* The ClientHello's retransmission timer, on our clock: 1 s. */
    CHECK_EQ(sluice_coord_dtls_next_timeout(a), T0 + 1000000u);
    CHECK_EQ(sluice_coord_dtls_send(a, (const uint8_t *)"x", 1), SLUICE_ERR_STATE);
    settle(a, b, T0 + 3 * MS, 1200);
    CHECK(sluice_coord_dtls_established(a));
    CHECK(sluice_coord_dtls_established(b));
    CHECK_EQ(sluice_coord_dtls_error(a), 0);
    CHECK_STR(sluice_coord_dtls_error_text(a), "");
    /* Established: no timers left. */
    CHECK_EQ(sluice_coord_dtls_next_timeout(a), SLUICE_NEVER);
    CHECK_EQ(sluice_coord_dtls_next_timeout(b), SLUICE_NEVER);
    CHECK_EQ(sluice_coord_dtls_max_payload(a), 1200 - SLUICE_COORD_DTLS_OVERHEAD);

    exchange(a, b, 1, 1);
    exchange(b, a, 1, 2);
    exchange(a, b, 100, 3);
    exchange(b, a, 1163, 4);
    exchange(a, b, 1163, 5);

    /* Several queued: FIFO, each its own datagram. */
    for (uint8_t i = 0; i < 5; i++)
        CHECK_EQ(sluice_coord_dtls_send(b, &i, 1), 0);
    CHECK_EQ(carry(b, a, T0 + 4 * MS, 1200, false), 1); /* five records fit in one datagram */
    for (uint8_t i = 0; i < 5; i++) {
        CHECK_EQ(sluice_coord_dtls_recv(a, buf, sizeof buf), 1);
        CHECK_EQ(buf[0], i);
    }
    CHECK_EQ(sluice_coord_dtls_recv(a, buf, sizeof buf), 0);

    sluice_coord_dtls_get_stats(a, &st);
    CHECK_EQ(st.messages_out, 3);
    CHECK_EQ(st.messages_in, 7);
    CHECK_EQ(st.messages_dropped, 0);
    CHECK_EQ(st.retransmits, 0);
    CHECK_EQ(st.handshake_us, 3 * MS);
    CHECK(st.datagrams_in > 0 && st.datagrams_out > 0);
    sluice_coord_dtls_free(a);
    sluice_coord_dtls_free(b);
    CHECK_EQ(ERR_peek_error(), 0);
}

/* A small MTU: the flights are fragmented, every datagram still fits. */
static void test_small_mtu(void)
{
    opts o = {.max_datagram = SLUICE_COORD_DTLS_MIN_DATAGRAM};
    sluice_coord_dtls *a = endpoint(true, bob_fp, &o), *b = endpoint(false, alice_fp, &o);
    sluice_coord_dtls_stats st;
    uint8_t big[256] = {0};

    handshake(a, b, SLUICE_COORD_DTLS_MIN_DATAGRAM);
    sluice_coord_dtls_get_stats(a, &st);
    CHECK(st.datagrams_out >= 3); /* the certificate alone needs more than one */
    CHECK_EQ(sluice_coord_dtls_max_payload(a), 256 - SLUICE_COORD_DTLS_OVERHEAD);
    CHECK_EQ(sluice_coord_dtls_send(a, big, 256 - SLUICE_COORD_DTLS_OVERHEAD), 0);
    CHECK_EQ(sluice_coord_dtls_send(a, big, 256 - SLUICE_COORD_DTLS_OVERHEAD + 1),
             SLUICE_ERR_INVALID);
    CHECK_EQ(carry(a, b, T0 + 5 * MS, SLUICE_COORD_DTLS_MIN_DATAGRAM, false), 1);
    CHECK_EQ(sluice_coord_dtls_recv(b, big, sizeof big), 256 - SLUICE_COORD_DTLS_OVERHEAD);
    sluice_coord_dtls_free(a);
    sluice_coord_dtls_free(b);
}

static void test_max_size(void)
{
    sluice_coord_dtls *a = endpoint(true, bob_fp, NULL), *b = endpoint(false, alice_fp, NULL);
    opts wide = {.max_datagram = 1400};
    sluice_coord_dtls *w, *n;
    uint8_t msg[1400] = {0}, got[1400];
    size_t max = 1200 - SLUICE_COORD_DTLS_OVERHEAD;
    sluice_coord_dtls_stats st;

    /* Arguments are checked before the state. */
    CHECK_EQ(sluice_coord_dtls_send(a, msg, max + 1), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_dtls_send(a, msg, 0), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_dtls_send(a, NULL, 5), SLUICE_ERR_INVALID);
    handshake(a, b, 1200);
    CHECK_EQ(sluice_coord_dtls_send(a, msg, max + 1), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_dtls_send(a, msg, 0), SLUICE_ERR_INVALID);
    exchange(a, b, max, 9); /* exactly max_payload: one datagram of exactly 1200 */
    CHECK_EQ(sluice_coord_dtls_send(b, msg, max), 0);
    CHECK_EQ(sluice_coord_dtls_poll_transmit(b, got, 1199), SLUICE_ERR_NOSPACE);
    CHECK_EQ(sluice_coord_dtls_poll_transmit(b, got, 1200), 1200);
    CHECK_EQ(sluice_coord_dtls_handle_datagram(a, T0, got, 1200), 0);
    CHECK_EQ(sluice_coord_dtls_recv(a, got, max - 1), SLUICE_ERR_NOSPACE); /* stays */
    CHECK_EQ(sluice_coord_dtls_recv(a, got, max), (int)max);
    sluice_coord_dtls_free(a);
    sluice_coord_dtls_free(b);

    /* A peer with a larger MTU: what is above our max_payload is dropped
     * and counted, what fits passes. */
    w = endpoint(true, bob_fp, &wide);
    n = endpoint(false, alice_fp, NULL);
    handshake(w, n, 1400);
    CHECK_EQ(sluice_coord_dtls_send(w, msg, max + 1), 0);
    CHECK_EQ(sluice_coord_dtls_send(w, msg, max), 0);
    carry(w, n, T0 + 2 * MS, 1400, false);
    CHECK_EQ(sluice_coord_dtls_recv(n, got, sizeof got), (int)max);
    CHECK_EQ(sluice_coord_dtls_recv(n, got, sizeof got), 0);
    sluice_coord_dtls_get_stats(n, &st);
    CHECK_EQ(st.messages_dropped, 1);
    CHECK_EQ(st.messages_in, 1);
    CHECK(sluice_coord_dtls_established(n));
    sluice_coord_dtls_free(w);
    sluice_coord_dtls_free(n);
}

/* One side pins the wrong certificate: both fail, with texts that say
 * why, and nothing passes. */
static void wrong_pin(bool client_wrong)
{
    sluice_coord_dtls *a = endpoint(true, client_wrong ? eve_fp : bob_fp, NULL);
    sluice_coord_dtls *b = endpoint(false, client_wrong ? alice_fp : eve_fp, NULL);
    sluice_coord_dtls *pinning = client_wrong ? a : b, *other = client_wrong ? b : a;
    uint8_t buf[64];

    CHECK_EQ(sluice_coord_dtls_start(a, T0), 0);
    settle(a, b, T0 + 1 * MS, 1200);
    CHECK(!sluice_coord_dtls_established(a));
    CHECK(!sluice_coord_dtls_established(b));
    CHECK_EQ(sluice_coord_dtls_error(pinning), SLUICE_ERR_AUTH);
    CHECK(strstr(sluice_coord_dtls_error_text(pinning), "fingerprint") != NULL);
    CHECK(strstr(sluice_coord_dtls_error_text(pinning), "is not the pinned") != NULL);
    CHECK_EQ(sluice_coord_dtls_error(other), SLUICE_ERR_AUTH);
    CHECK(strstr(sluice_coord_dtls_error_text(other), "bad certificate") != NULL);
    fprintf(stderr, "# %s: \"%s\" / \"%s\"\n", client_wrong ? "client pin" : "server pin",
            sluice_coord_dtls_error_text(pinning), sluice_coord_dtls_error_text(other));
    /* Final: no sending, no receiving, no timers. */
    CHECK_EQ(sluice_coord_dtls_send(a, (const uint8_t *)"hi", 2), SLUICE_ERR_AUTH);
    CHECK_EQ(sluice_coord_dtls_send(b, (const uint8_t *)"hi", 2), SLUICE_ERR_AUTH);
    CHECK_EQ(sluice_coord_dtls_recv(a, buf, sizeof buf), 0);
    CHECK_EQ(sluice_coord_dtls_recv(b, buf, sizeof buf), 0);
    CHECK_EQ(sluice_coord_dtls_next_timeout(a), SLUICE_NEVER);
    CHECK_EQ(sluice_coord_dtls_next_timeout(b), SLUICE_NEVER);
    CHECK_EQ(sluice_coord_dtls_handle_datagram(a, T0, (const uint8_t *)"\x17", 1), SLUICE_ERR_AUTH);
    sluice_coord_dtls_free(a);
    sluice_coord_dtls_free(b);
    CHECK_EQ(ERR_peek_error(), 0);
}

static void test_wrong_fingerprint_client(void)
{
    wrong_pin(true);
}

static void test_wrong_fingerprint_server(void)
{
    wrong_pin(false);
}

/* Call handle_timeout at the deadline until the endpoint resends. OpenSSL
 * checks the expiry against the system clock (coord.h: the one exception)
 * and counts a timer as due within 15 ms of its end: with the 20 ms
 * timeouts used here that takes about 5 ms of real time, while the virtual
 * deadline moves on by what OpenSSL says is left each time. */
static void expire(sluice_coord_dtls *d, uint64_t *now)
{
    sluice_coord_dtls_stats before, after;
    sluice_coord_dtls_get_stats(d, &before);
    for (int i = 0; i < 200; i++) {
        uint64_t due = sluice_coord_dtls_next_timeout(d);
        CHECK(due != SLUICE_NEVER);
        if (due == SLUICE_NEVER)
            return;
        if (due > *now)
            *now = due;
        sluice_coord_dtls_handle_timeout(d, *now);
        sluice_coord_dtls_get_stats(d, &after);
        if (after.retransmits > before.retransmits)
            return;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    CHECK(!"OpenSSL never found its timer due");
}

static void test_lost_first_flight(void)
{
    opts o = {.retransmit_us = 20 * MS};
    sluice_coord_dtls *a = endpoint(true, bob_fp, &o), *b = endpoint(false, alice_fp, &o);
    sluice_coord_dtls_stats st;
    uint64_t now = T0;

    CHECK_EQ(sluice_coord_dtls_start(a, now), 0);
    CHECK_EQ(carry(a, b, now, 1200, true), 1); /* the ClientHello is lost */
    CHECK_EQ(sluice_coord_dtls_next_timeout(a), T0 + 20 * MS);
    sluice_coord_dtls_handle_timeout(a, T0 + 19 * MS); /* early: nothing */
    CHECK_EQ(sluice_coord_dtls_poll_transmit(a, (uint8_t[1200]){0}, 1200), 0);
    expire(a, &now);
    /* Resent, and the next timeout doubled (RFC 6347 §4.2.4.1). */
    CHECK_EQ(sluice_coord_dtls_next_timeout(a), now + 40 * MS);
    settle(a, b, now, 1200);
    CHECK(sluice_coord_dtls_established(a));
    CHECK(sluice_coord_dtls_established(b));
    sluice_coord_dtls_get_stats(a, &st);
    CHECK_EQ(st.retransmits, 1);
    CHECK(st.handshake_us >= 20 * MS);
    exchange(a, b, 10, 1);
    exchange(b, a, 10, 2);
    sluice_coord_dtls_free(a);
    sluice_coord_dtls_free(b);
}

/* Flight `lost` of the handshake is lost once (1: ClientHello, 2: the
 * server's first flight, 3: the client's second, 4: the server's last):
 * whoever waits resends on its timer, and the handshake completes. */
static void lose_flight(int lost)
{
    opts o = {.retransmit_us = 20 * MS};
    sluice_coord_dtls *a = endpoint(true, bob_fp, &o), *b = endpoint(false, alice_fp, &o);
    sluice_coord_dtls_stats sa, sb;
    uint64_t now = T0;
    int flights = 0;

    CHECK_EQ(sluice_coord_dtls_start(a, now), 0);
    for (int round = 0; round < 30; round++) {
        int moved = 0;
        for (int k = 0; k < 2; k++) {
            int n = carry(k ? b : a, k ? a : b, now, 1200, flights + 1 == lost);
            if (n) {
                flights++;
                moved += n;
            }
        }
        if (moved)
            continue;
        if (sluice_coord_dtls_established(a) && sluice_coord_dtls_established(b))
            break;
        expire(sluice_coord_dtls_next_timeout(a) <= sluice_coord_dtls_next_timeout(b) ? a : b,
               &now);
    }
    CHECK(sluice_coord_dtls_established(a));
    CHECK(sluice_coord_dtls_established(b));
    sluice_coord_dtls_get_stats(a, &sa);
    sluice_coord_dtls_get_stats(b, &sb);
    CHECK(sa.retransmits + sb.retransmits >= 1);
    fprintf(stderr,
            "# flight %d lost: %d flights, retransmits %" PRIu64 "/%" PRIu64 ", handshake %" PRIu64
            " us\n",
            lost, flights, sa.retransmits, sb.retransmits, sa.handshake_us);
    exchange(a, b, 10, 1);
    exchange(b, a, 10, 2);
    sluice_coord_dtls_free(a);
    sluice_coord_dtls_free(b);
}

static void test_lost_later_flights(void)
{
    for (int lost = 2; lost <= 4; lost++)
        lose_flight(lost);
}

/* No answer at all: the handshake timeout ends it on our clock alone. */
static void test_handshake_timeout(void)
{
    opts o = {.handshake_timeout_us = 50 * MS};
    sluice_coord_dtls *a = endpoint(true, bob_fp, &o);
    uint8_t buf[1200];

    CHECK_EQ(sluice_coord_dtls_start(a, T0), 0);
    while (sluice_coord_dtls_poll_transmit(a, buf, sizeof buf) > 0)
        ;
    CHECK_EQ(sluice_coord_dtls_next_timeout(a), T0 + 50 * MS); /* before the 1 s retransmission */
    sluice_coord_dtls_handle_timeout(a, T0 + 49 * MS);
    CHECK_EQ(sluice_coord_dtls_error(a), 0);
    sluice_coord_dtls_handle_timeout(a, T0 + 50 * MS);
    CHECK_EQ(sluice_coord_dtls_error(a), SLUICE_ERR_TIMEOUT);
    CHECK(strstr(sluice_coord_dtls_error_text(a), "not done after 50 ms") != NULL);
    CHECK_EQ(sluice_coord_dtls_next_timeout(a), SLUICE_NEVER);
    sluice_coord_dtls_free(a);
}

/* A datagram must be whole DTLS records: every cut of a real one is
 * refused without harm, each copied into a buffer of exactly its length
 * (ASan catches a read past it); the whole one then works. */
static void test_truncated(void)
{
    sluice_coord_dtls *a = endpoint(true, bob_fp, NULL), *b = endpoint(false, alice_fp, NULL);
    uint8_t hello[1200];
    sluice_coord_dtls_stats st;
    int n;

    CHECK_EQ(sluice_coord_dtls_start(a, T0), 0);
    n = sluice_coord_dtls_poll_transmit(a, hello, sizeof hello);
    CHECK(n > 13);
    for (int len = 0; len < n; len++) {
        uint8_t *cut = malloc(len ? (size_t)len : 1);
        memcpy(cut, hello, (size_t)len);
        CHECK_EQ(sluice_coord_dtls_handle_datagram(b, T0, cut, (size_t)len), SLUICE_ERR_TRUNCATED);
        free(cut);
    }
    /* A whole record followed by a cut one: refused as a whole. */
    {
        uint8_t two[2400];
        memcpy(two, hello, (size_t)n);
        memcpy(two + n, hello, 20);
        CHECK_EQ(sluice_coord_dtls_handle_datagram(b, T0, two, (size_t)n + 20),
                 SLUICE_ERR_TRUNCATED);
    }
    sluice_coord_dtls_get_stats(b, &st);
    CHECK_EQ(st.datagrams_rejected, (uint64_t)n + 1);
    CHECK_EQ(st.datagrams_in, 0);
    CHECK_EQ(sluice_coord_dtls_error(b), 0);
    CHECK_EQ(sluice_coord_dtls_handle_datagram(b, T0, hello, (size_t)n), 0);
    settle(a, b, T0 + 1 * MS, 1200);
    CHECK(sluice_coord_dtls_established(a));
    CHECK(sluice_coord_dtls_established(b));
    sluice_coord_dtls_free(a);
    sluice_coord_dtls_free(b);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint8_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint8_t)rng_state;
}

/* Garbage: refused (wrong header) or dropped by DTLS (records that do not
 * authenticate); a session never crashes and, once established, never
 * ends because of it. */
static void test_garbage(void)
{
    sluice_coord_dtls *a = endpoint(true, bob_fp, NULL), *b = endpoint(false, alice_fp, NULL);
    uint8_t g[1200];
    sluice_coord_dtls_stats st;
    static const struct {
        uint8_t bytes[16];
        size_t len;
        int want;
    } bad[] = {
        {{0x00, 0x01, 0x00, 0x00}, 4, SLUICE_ERR_MALFORMED},             /* STUN */
        {{0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4}, 8, SLUICE_ERR_MALFORMED}, /* ChannelData */
        {{22, 0xfe, 0xfd, 0, 0}, 5, SLUICE_ERR_TRUNCATED},               /* short header */
        {{24, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 13, SLUICE_ERR_MALFORMED}, /* heartbeat */
        {{19, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 13, SLUICE_ERR_MALFORMED},
        {{22, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 13, SLUICE_ERR_MALFORMED}, /* TLS 1.2 */
        {{22, 0xfe, 0xfc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 13, SLUICE_ERR_MALFORMED},
        {{23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1, 0x48, 0x01},
         13,
         SLUICE_ERR_MALFORMED}, /* 18433 */
        {{23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1, 0x00, 0x05, 1}, 14, SLUICE_ERR_TRUNCATED},
    };

    CHECK_EQ(sluice_coord_dtls_handle_datagram(b, T0, NULL, 0), SLUICE_ERR_TRUNCATED);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(sluice_coord_dtls_handle_datagram(b, T0, bad[i].bytes, bad[i].len), bad[i].want);
    /* Random bytes with a random DTLS-range first byte. */
    for (int i = 0; i < 200; i++) {
        size_t len = 1 + rnd() % 200;
        for (size_t j = 0; j < len; j++)
            g[j] = rnd();
        g[0] = (uint8_t)(20 + g[0] % 44);
        sluice_coord_dtls_handle_datagram(b, T0, g, len);
    }
    CHECK_EQ(sluice_coord_dtls_error(b), 0);
    handshake(a, b, 1200);

    /* Established: well-formed records of the current epoch with random
     * contents fail authentication and are dropped; nothing else happens. */
    for (int i = 0; i < 200; i++) {
        size_t body = 1 + rnd() % 100;
        g[0] = (uint8_t)(21 + i % 3); /* alert, handshake, application data */
        g[1] = 0xfe;
        g[2] = 0xfd;
        g[3] = 0;
        g[4] = 1; /* epoch 1 */
        for (int j = 5; j < 11; j++)
            g[j] = rnd();
        g[11] = 0;
        g[12] = (uint8_t)body;
        for (size_t j = 0; j < body; j++)
            g[13 + j] = rnd();
        CHECK_EQ(sluice_coord_dtls_handle_datagram(b, T0 + 2 * MS, g, 13 + body), 0);
        CHECK_EQ(sluice_coord_dtls_handle_datagram(a, T0 + 2 * MS, g, 13 + body), 0);
    }
    CHECK(sluice_coord_dtls_established(a));
    CHECK(sluice_coord_dtls_established(b));
    CHECK_EQ(sluice_coord_dtls_recv(b, g, sizeof g), 0);
    exchange(a, b, 33, 7);
    exchange(b, a, 44, 8);
    sluice_coord_dtls_get_stats(b, &st);
    CHECK_EQ(st.messages_in, 1);
    sluice_coord_dtls_free(a);
    sluice_coord_dtls_free(b);

    /* Before the handshake, a forged plaintext handshake record with a
     * garbage body may end it (DTLS 1.2 has nothing to authenticate it
     * with) — with a reason, never a crash. */
    for (int i = 0; i < 50; i++) {
        sluice_coord_dtls *s = endpoint(false, alice_fp, NULL);
        size_t body = 12 + rnd() % 60;
        memset(g, 0, 13);
        g[0] = 22;
        g[1] = 0xfe;
        g[2] = 0xff;
        g[12] = (uint8_t)body;
        for (size_t j = 0; j < body; j++)
            g[13 + j] = rnd();
        g[13] = 1; /* client_hello */
        int r = sluice_coord_dtls_handle_datagram(s, T0, g, 13 + body);
        CHECK(r == 0 || r == sluice_coord_dtls_error(s));
        if (r < 0)
            CHECK(sluice_coord_dtls_error_text(s)[0] != 0);
        while (sluice_coord_dtls_poll_transmit(s, g, sizeof g) > 0)
            ;
        sluice_coord_dtls_free(s);
    }
    CHECK_EQ(ERR_peek_error(), 0);
}

/* Replays and reordering: DTLS's window drops a duplicate; reordered
 * messages arrive in the order they came. */
static void test_duplicates_and_reordering(void)
{
    sluice_coord_dtls *a = endpoint(true, bob_fp, NULL), *b = endpoint(false, alice_fp, NULL);
    uint8_t d1[1200], d2[1200], got[64];
    int n1, n2;

    handshake(a, b, 1200);
    CHECK_EQ(sluice_coord_dtls_send(a, (const uint8_t *)"one", 3), 0);
    n1 = sluice_coord_dtls_poll_transmit(a, d1, sizeof d1);
    CHECK_EQ(sluice_coord_dtls_send(a, (const uint8_t *)"two", 3), 0);
    n2 = sluice_coord_dtls_poll_transmit(a, d2, sizeof d2);
    CHECK(n1 > 0 && n2 > 0);
    CHECK_EQ(sluice_coord_dtls_handle_datagram(b, T0, d2, (size_t)n2), 0);
    CHECK_EQ(sluice_coord_dtls_handle_datagram(b, T0, d1, (size_t)n1), 0);
    CHECK_EQ(sluice_coord_dtls_handle_datagram(b, T0, d1, (size_t)n1), 0); /* replay */
    CHECK_EQ(sluice_coord_dtls_handle_datagram(b, T0, d2, (size_t)n2), 0); /* replay */
    CHECK_EQ(sluice_coord_dtls_recv(b, got, sizeof got), 3);
    CHECK_MEM(got, "two", 3);
    CHECK_EQ(sluice_coord_dtls_recv(b, got, sizeof got), 3);
    CHECK_MEM(got, "one", 3);
    CHECK_EQ(sluice_coord_dtls_recv(b, got, sizeof got), 0);
    sluice_coord_dtls_free(a);
    sluice_coord_dtls_free(b);
}

static void test_close_notify(void)
{
    sluice_coord_dtls *a = endpoint(true, bob_fp, NULL), *b = endpoint(false, alice_fp, NULL);
    uint8_t got[64];

    handshake(a, b, 1200);
    CHECK_EQ(sluice_coord_dtls_send(a, (const uint8_t *)"last", 4), 0);
    sluice_coord_dtls_close(a);
    sluice_coord_dtls_close(a); /* idempotent */
    CHECK(!sluice_coord_dtls_established(a));
    CHECK_EQ(sluice_coord_dtls_send(a, (const uint8_t *)"x", 1), SLUICE_ERR_STATE);
    carry(a, b, T0 + 2 * MS, 1200, false);
    CHECK(sluice_coord_dtls_peer_closed(b));
    CHECK_EQ(sluice_coord_dtls_error(b), 0);
    /* What came before the close_notify is still there. */
    CHECK_EQ(sluice_coord_dtls_recv(b, got, sizeof got), 4);
    CHECK_MEM(got, "last", 4);
    CHECK_EQ(sluice_coord_dtls_recv(b, got, sizeof got), 0);
    CHECK_EQ(sluice_coord_dtls_send(b, (const uint8_t *)"x", 1), SLUICE_ERR_STATE);
    CHECK_EQ(sluice_coord_dtls_handle_datagram(b, T0, (const uint8_t *)"\x17", 1),
             SLUICE_ERR_STATE);
    CHECK_EQ(sluice_coord_dtls_handle_datagram(a, T0, (const uint8_t *)"\x17", 1),
             SLUICE_ERR_STATE);
    sluice_coord_dtls_free(a);
    sluice_coord_dtls_free(b);

    /* Closing during the handshake sends nothing and stops the timers. */
    a = endpoint(true, bob_fp, NULL);
    CHECK_EQ(sluice_coord_dtls_start(a, T0), 0);
    CHECK(sluice_coord_dtls_next_timeout(a) != SLUICE_NEVER);
    sluice_coord_dtls_close(a);
    CHECK_EQ(sluice_coord_dtls_next_timeout(a), SLUICE_NEVER);
    CHECK_EQ(sluice_coord_dtls_start(a, T0), SLUICE_ERR_STATE);
    sluice_coord_dtls_free(a);
}

/* Bounds: the receive queue drops and counts, the send queue says FULL. */
static void test_queues(void)
{
    opts o = {.recv_queue = 4, .send_queue_bytes = 2400};
    sluice_coord_dtls *a = endpoint(true, bob_fp, &o), *b = endpoint(false, alice_fp, &o);
    sluice_coord_dtls_stats st;
    uint8_t msg[1163] = {0}, got[1200];
    int sent = 0, r;

    handshake(a, b, 1200);
    for (int i = 0; i < 6; i++) {
        msg[0] = (uint8_t)i;
        CHECK_EQ(sluice_coord_dtls_send(a, msg, 10), 0);
    }
    carry(a, b, T0 + 2 * MS, 1200, false);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(sluice_coord_dtls_recv(b, got, sizeof got), 10);
        CHECK_EQ(got[0], i);
    }
    CHECK_EQ(sluice_coord_dtls_recv(b, got, sizeof got), 0);
    sluice_coord_dtls_get_stats(b, &st);
    CHECK_EQ(st.messages_dropped, 2);
    CHECK_EQ(st.messages_in, 4);

    while ((r = sluice_coord_dtls_send(a, msg, sizeof msg)) == 0)
        sent++;
    CHECK_EQ(r, SLUICE_ERR_FULL);
    CHECK_EQ(sent, 2);
    CHECK(sluice_coord_dtls_poll_transmit(a, got, sizeof got) > 0);
    CHECK_EQ(sluice_coord_dtls_send(a, msg, sizeof msg), 0);
    sluice_coord_dtls_free(a);
    sluice_coord_dtls_free(b);
}

static void test_bad_config(void)
{
    sluice_coord_dtls_config cfg;
    char missing[80];
    int err = 0;

    snprintf(missing, sizeof missing, "%s/missing.pem", dir);
    sluice_coord_dtls_config_init(&cfg);
    cfg.cert_file = alice_crt;
    cfg.key_file = alice_key;
    CHECK(sluice_coord_dtls_new(&cfg, &err) == NULL); /* no fingerprint */
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    cfg.peer_fingerprint = bob_fp;
    cfg.max_datagram = 255;
    CHECK(sluice_coord_dtls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    cfg.max_datagram = 16385;
    CHECK(sluice_coord_dtls_new(&cfg, NULL) == NULL);
    cfg.max_datagram = 1200;
    cfg.recv_queue = 0;
    CHECK(sluice_coord_dtls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    cfg.recv_queue = 8;
    cfg.send_queue_bytes = 2399;
    CHECK(sluice_coord_dtls_new(&cfg, &err) == NULL);
    cfg.send_queue_bytes = 2400;
    cfg.retransmit_us = 999;
    CHECK(sluice_coord_dtls_new(&cfg, &err) == NULL);
    cfg.retransmit_us = 60000001;
    CHECK(sluice_coord_dtls_new(&cfg, &err) == NULL);
    cfg.retransmit_us = 1000000;
    cfg.handshake_timeout_us = 0;
    CHECK(sluice_coord_dtls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    cfg.handshake_timeout_us = 1000000;
    cfg.key_file = NULL;
    CHECK(sluice_coord_dtls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    cfg.key_file = bob_key; /* not alice's */
    CHECK(sluice_coord_dtls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_CRYPTO);
    cfg.key_file = missing;
    CHECK(sluice_coord_dtls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_CRYPTO);
    cfg.cert_file = missing;
    cfg.key_file = alice_key;
    CHECK(sluice_coord_dtls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_CRYPTO);
    CHECK(sluice_coord_dtls_new(NULL, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    CHECK_EQ(ERR_peek_error(), 0);

    /* NULL handles. */
    sluice_coord_dtls_free(NULL);
    sluice_coord_dtls_close(NULL);
    sluice_coord_dtls_handle_timeout(NULL, 0);
    CHECK_EQ(sluice_coord_dtls_start(NULL, 0), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_dtls_send(NULL, (const uint8_t *)"x", 1), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_dtls_recv(NULL, NULL, 0), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_dtls_poll_transmit(NULL, NULL, 0), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_dtls_handle_datagram(NULL, 0, NULL, 0), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_dtls_next_timeout(NULL), SLUICE_NEVER);
    CHECK(!sluice_coord_dtls_established(NULL));
    CHECK_EQ(sluice_coord_dtls_error(NULL), SLUICE_ERR_INVALID);
    CHECK_STR(sluice_coord_dtls_error_text(NULL), "");
}

/* Fail each allocation in turn. */
static void test_alloc_failures(void)
{
    sluice_coord_dtls_config cfg;
    int err, failed = 0;

    sluice_coord_dtls_config_init(&cfg);
    cfg.cert_file = alice_crt;
    cfg.key_file = alice_key;
    cfg.client = true;
    cfg.peer_fingerprint = bob_fp;
    cfg.alloc.calloc = failing_calloc;
    cfg.alloc.free = plain_free;
    for (fail_alloc_at = 0;; fail_alloc_at++) {
        sluice_coord_dtls *d;
        fail_alloc_calls = 0;
        d = sluice_coord_dtls_new(&cfg, &err);
        if (d) {
            CHECK_EQ(err, 0);
            CHECK_EQ(sluice_coord_dtls_start(d, T0), 0);
            sluice_coord_dtls_free(d);
            break;
        }
        CHECK_EQ(err, SLUICE_ERR_NOMEM);
        failed++;
    }
    CHECK_EQ(failed, 4); /* the object, the ring, its lengths, the read buffer */
    fail_alloc_at = -1;
}

int main(void)
{
    if (!setup_files()) {
        ERR_print_errors_fp(stderr);
        printf("Bail out! cannot make test identities in /tmp\n");
        if (have_dir)
            remove_files();
        return 1;
    }
    RUN(test_is_dtls);
    RUN(test_handshake_and_messages);
    RUN(test_small_mtu);
    RUN(test_max_size);
    RUN(test_wrong_fingerprint_client);
    RUN(test_wrong_fingerprint_server);
    RUN(test_lost_first_flight);
    RUN(test_lost_later_flights);
    RUN(test_handshake_timeout);
    RUN(test_truncated);
    RUN(test_garbage);
    RUN(test_duplicates_and_reordering);
    RUN(test_close_notify);
    RUN(test_queues);
    RUN(test_bad_config);
    RUN(test_alloc_failures);
    remove_files();
    return TEST_DONE();
}
