/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the direct channel's DTLS endpoint
 * (src/coord/dtls.c). Byte 0 picks the mode: bit 0 the fuzzed endpoint is
 * the server (else the client), bit 1 a real handshake with a correct peer
 * comes first, bit 2 the rest of the input is an XOR mask over the real
 * peer's datagrams (a handshake with damaged flights) instead of
 * datagrams of its own. Otherwise the rest is datagrams, each a 2-byte
 * length and its bytes; length 0 moves time on by a second and runs the
 * timers. Checks the contract after every step: datagrams of whole DTLS
 * records within the MTU, messages within max_payload, a reason with every
 * failure, no timer once failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/coord.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(what)                                                                                 \
    do {                                                                                           \
        fprintf(stderr, "fuzz_coord_dtls: %s:%d: broken promise: %s\n", __FILE__, __LINE__, what); \
        abort();                                                                                   \
    } while (0)

#define MTU 1200u

static char dir[] = "/tmp/sluice-fuzz-dtls-XXXXXX";
static char crt[2][64], key[2][64];
static uint8_t fp[2][32];
static bool ready;

static void cleanup(void)
{
    for (int i = 0; i < 2; i++) {
        unlink(crt[i]);
        unlink(key[i]);
    }
    rmdir(dir);
}

static void setup(void)
{
    static const char *names[2] = {"client", "server"};
    if (!mkdtemp(dir))
        FAIL("mkdtemp");
    for (int i = 0; i < 2; i++) {
        snprintf(crt[i], sizeof crt[i], "%s/%s.crt", dir, names[i]);
        snprintf(key[i], sizeof key[i], "%s/%s.key", dir, names[i]);
        if (sluice_coord_generate_identity(names[i], crt[i], key[i], fp[i]) != 0)
            FAIL("identity");
    }
    atexit(cleanup);
    ready = true;
}

/* role 1: server. */
static sluice_coord_dtls *endpoint(int role)
{
    sluice_coord_dtls_config cfg;
    sluice_coord_dtls *d;
    sluice_coord_dtls_config_init(&cfg);
    cfg.client = role == 0;
    cfg.cert_file = crt[role];
    cfg.key_file = key[role];
    cfg.peer_fingerprint = fp[1 - role];
    cfg.recv_queue = 8;
    d = sluice_coord_dtls_new(&cfg, NULL);
    if (!d)
        FAIL("endpoint");
    return d;
}

static void check(sluice_coord_dtls *d)
{
    uint8_t buf[MTU];
    int n;
    if (sluice_coord_dtls_error(d)) {
        if (!sluice_coord_dtls_error_text(d)[0])
            FAIL("a failure without a reason");
        if (sluice_coord_dtls_established(d))
            FAIL("failed and established");
        if (sluice_coord_dtls_next_timeout(d) != SLUICE_NEVER)
            FAIL("a timer after the failure");
    }
    while ((n = sluice_coord_dtls_recv(d, buf, sizeof buf)) > 0)
        if ((size_t)n > sluice_coord_dtls_max_payload(d))
            FAIL("message above max_payload");
    if (n < 0)
        FAIL("recv with room failed");
}

/* One datagram out of from, checked; delivered to to (may be NULL),
 * XORed with *mask first while it lasts. Returns FALSE when none. */
static bool move(sluice_coord_dtls *from, sluice_coord_dtls *to, uint64_t now, const uint8_t **mask,
                 size_t *mask_len)
{
    uint8_t buf[MTU];
    size_t off = 0;
    int n = sluice_coord_dtls_poll_transmit(from, buf, sizeof buf);
    if (n < 0)
        FAIL("poll_transmit with an MTU-sized buffer failed");
    if (n == 0)
        return false;
    if (!sluice_coord_is_dtls(buf[0]))
        FAIL("output is not DTLS by RFC 7983");
    while (off + 13 <= (size_t)n)
        off += 13 + ((size_t)buf[off + 11] << 8 | buf[off + 12]);
    if (off != (size_t)n)
        FAIL("output is not whole records");
    if (to) {
        for (int i = 0; mask && *mask_len && i < n; i++, (*mask_len)--)
            buf[i] ^= *(*mask)++;
        sluice_coord_dtls_handle_datagram(to, now, buf, (size_t)n);
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sluice_coord_dtls *f, *p;
    uint64_t now = 1000000;
    const uint8_t *mask = NULL;
    size_t mask_len = 0;
    int role;

    if (!ready)
        setup();
    if (size < 1)
        return 0;
    role = data[0] & 1;
    f = endpoint(role);
    p = endpoint(1 - role);
    sluice_coord_dtls_start(f, now);
    sluice_coord_dtls_start(p, now);
    if (data[0] & 4) {
        mask = data + 1;
        mask_len = size - 1;
    }
    if (data[0] & 6) {
        /* A real exchange (with damaged flights from the peer in XOR mode). */
        for (int round = 0; round < 64; round++) {
            bool moved = false;
            while (move(f, p, now, NULL, NULL))
                moved = true;
            while (move(p, f, now, &mask, &mask_len))
                moved = true;
            check(f);
            check(p);
            if (!moved) {
                now += 1000000;
                sluice_coord_dtls_handle_timeout(f, now);
                sluice_coord_dtls_handle_timeout(p, now);
                if (sluice_coord_dtls_next_timeout(f) == SLUICE_NEVER &&
                    sluice_coord_dtls_next_timeout(p) == SLUICE_NEVER)
                    break;
            }
        }
        if (!(data[0] & 4) &&
            (!sluice_coord_dtls_established(f) || !sluice_coord_dtls_established(p)))
            FAIL("an undisturbed handshake did not complete");
    }
    if (!(data[0] & 4)) {
        size_t off = 1;
        while (off + 2 <= size) {
            size_t len = (size_t)data[off] << 8 | data[off + 1];
            off += 2;
            if (len > size - off)
                len = size - off;
            if (len == 0) {
                now += 1000000;
                sluice_coord_dtls_handle_timeout(f, now);
            } else {
                /* A heap copy of exactly len bytes: ASan sees any over-read. */
                uint8_t *dg = malloc(len);
                memcpy(dg, data + off, len);
                sluice_coord_dtls_handle_datagram(f, now, dg, len);
                free(dg);
            }
            off += len;
            while (move(f, p, now, NULL, NULL))
                ;
            if (sluice_coord_dtls_established(p))
                sluice_coord_dtls_send(p, (const uint8_t *)"ping", 4);
            while (move(p, f, now, NULL, NULL))
                ;
            if (sluice_coord_dtls_established(f))
                sluice_coord_dtls_send(f, (const uint8_t *)"pong", 4);
            check(f);
            check(p);
        }
    }
    sluice_coord_dtls_close(f);
    while (move(f, NULL, now, NULL, NULL))
        ;
    sluice_coord_dtls_free(f);
    sluice_coord_dtls_free(p);
    return 0;
}
