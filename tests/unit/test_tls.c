/* SPDX-License-Identifier: MIT */
/* Unit tests for the sans-IO TLS endpoint (src/common/tls.c): a client and a
 * server joined in memory, with certificates made at run time; the shared
 * server context. */
#include <stdbool.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/tls.h"
#include "test.h"
#include "test_cert.h"

#define CHUNK 16384
#define SMALL_BUFFERED 65536

static char dir[] = "/tmp/sluice-tls-XXXXXX";
static bool have_dir;
static char cert_path[64], key_path[64], other_cert_path[64], other_key_path[64];
static char bad_path[64];
static uint8_t cert_sha256[32];

/* ------------------------------------------------------------------------ */
/* Certificates */

static bool setup_files(void)
{
    if (!mkdtemp(dir))
        return false;
    have_dir = true;
    snprintf(cert_path, sizeof cert_path, "%s/cert.pem", dir);
    snprintf(key_path, sizeof key_path, "%s/key.pem", dir);
    snprintf(other_cert_path, sizeof other_cert_path, "%s/other-cert.pem", dir);
    snprintf(other_key_path, sizeof other_key_path, "%s/other-key.pem", dir);
    snprintf(bad_path, sizeof bad_path, "%s/missing.pem", dir);
    return make_cert(cert_path, key_path, 1, cert_sha256) &&
           make_cert(other_cert_path, other_key_path, 2, NULL);
}

static void remove_files(void)
{
    unlink(cert_path);
    unlink(key_path);
    unlink(other_cert_path);
    unlink(other_key_path);
    rmdir(dir);
}

/* ------------------------------------------------------------------------ */
/* Endpoints and the in-memory wire */

static sluice_tls *new_server(size_t max_buffered)
{
    sluice_tls_config cfg;
    sluice_tls *t;
    int err = 1;

    sluice_tls_config_init(&cfg);
    cfg.server = true;
    cfg.cert_file = cert_path;
    cfg.key_file = key_path;
    if (max_buffered)
        cfg.max_buffered = max_buffered;
    t = sluice_tls_new(&cfg, &err);
    CHECK(t != NULL);
    CHECK_EQ(err, 0);
    return t;
}

static sluice_tls *new_client(const char *name, const char *ca, bool verify, size_t max_buffered)
{
    sluice_tls_config cfg;
    sluice_tls *t;
    int err = 1;

    sluice_tls_config_init(&cfg);
    cfg.server_name = name;
    cfg.ca_file = ca;
    cfg.verify = verify;
    if (max_buffered)
        cfg.max_buffered = max_buffered;
    t = sluice_tls_new(&cfg, &err);
    CHECK(t != NULL);
    CHECK_EQ(err, 0);
    if (t)
        CHECK(sluice_tls_pending_output(t) > 0); /* the ClientHello */
    return t;
}

/* Plaintext one endpoint has read, checked against the pattern byte
 * pattern(seed, offset) as it arrives or kept for a direct comparison. */
typedef struct sink {
    uint8_t buf[4096];
    size_t len;
    size_t total;
    uint8_t seed;  /* pattern mode when nonzero */
    bool mismatch; /* a byte differed from the pattern */
    int last;      /* last sluice_tls_read result <= 0 */
} sink;

static uint8_t pattern(uint8_t seed, size_t i)
{
    return (uint8_t)(seed + i * 31 + (i >> 9));
}

/* Read everything t has decrypted. */
static void drain(sluice_tls *t, sink *s)
{
    uint8_t b[5000];
    int n;

    while ((n = sluice_tls_read(t, b, sizeof b)) > 0) {
        for (int i = 0; i < n; i++) {
            if (s->seed && b[i] != pattern(s->seed, s->total + (size_t)i))
                s->mismatch = true;
            else if (!s->seed && s->len < sizeof s->buf)
                s->buf[s->len++] = b[i];
        }
        s->total += (size_t)n;
    }
    s->last = n;
}

typedef struct wire {
    long moved;    /* ciphertext bytes carried */
    int feed_full; /* SLUICE_ERR_FULL answers from feed */
    int feed_err;  /* first other negative answer from feed */
} wire;

/* Carry all pending ciphertext from one endpoint to the other. When the
 * receiver is full, read from it (as an owner would) and offer again. */
static bool carry(sluice_tls *from, sluice_tls *to, sink *to_sink, wire *w)
{
    uint8_t b[CHUNK];
    bool moved = false;
    int n;

    while ((n = sluice_tls_take_output(from, b, sizeof b)) > 0) {
        int r, tries = 0;

        moved = true;
        w->moved += n;
        while ((r = sluice_tls_feed(to, b, (size_t)n)) == SLUICE_ERR_FULL && tries++ < 4) {
            w->feed_full++;
            drain(to, to_sink);
        }
        CHECK(r != SLUICE_ERR_FULL);
        if (r < 0) {
            if (!w->feed_err)
                w->feed_err = r;
            return moved;
        }
        CHECK_EQ(r, n);
    }
    return moved;
}

/* Run the wire until neither side has anything to send, with a bound on
 * the rounds so a live-lock shows as a failure. Reads only when asked. */
static void pump(sluice_tls *c, sluice_tls *s, sink *cs, sink *ss, wire *w, bool read)
{
    for (int round = 0; round < 1000; round++) {
        bool a = carry(c, s, ss, w);
        bool b = carry(s, c, cs, w);

        if (read) {
            drain(c, cs);
            drain(s, ss);
        }
        if (!a && !b && !sluice_tls_pending_output(c) && !sluice_tls_pending_output(s))
            return;
    }
    CHECK(!"pump did not settle");
}

static void connect_pair(sluice_tls *c, sluice_tls *s, sink *cs, sink *ss)
{
    wire w = {0};

    pump(c, s, cs, ss, &w, true);
    CHECK_EQ(w.feed_err, 0);
    CHECK(sluice_tls_established(c));
    CHECK(sluice_tls_established(s));
    CHECK_EQ(sluice_tls_error(c), 0);
    CHECK_EQ(sluice_tls_error(s), 0);
    CHECK_STR(sluice_tls_error_text(c), "");
}

static bool sink_is(const sink *s, const char *text)
{
    return s->len == strlen(text) && memcmp(s->buf, text, s->len) == 0;
}

/* ------------------------------------------------------------------------ */
/* Handshake and data */

static void test_handshake_and_data(void)
{
    sluice_tls *s = new_server(0), *c = new_client("localhost", cert_path, true, 0);
    sink cs = {0}, ss = {0};
    wire w = {0};
    uint8_t b[16];

    if (!s || !c)
        goto out;
    CHECK(!sluice_tls_established(c));
    CHECK(!sluice_tls_established(s));
    /* Both sides write before the handshake; it is held, then delivered. */
    CHECK_EQ(sluice_tls_write(c, (const uint8_t *)"hello ", 6), 6);
    CHECK_EQ(sluice_tls_write(c, (const uint8_t *)"server", 6), 6);
    CHECK_EQ(sluice_tls_write(s, (const uint8_t *)"early", 5), 5);
    CHECK_EQ(sluice_tls_read(c, b, sizeof b), 0);
    CHECK_EQ(sluice_tls_read(s, b, sizeof b), 0);

    connect_pair(c, s, &cs, &ss);
    CHECK(sink_is(&ss, "hello server"));
    CHECK(sink_is(&cs, "early"));

    /* After the handshake, in both directions, several writes per flight. */
    cs.len = ss.len = 0;
    CHECK_EQ(sluice_tls_write(c, (const uint8_t *)"ping", 4), 4);
    CHECK_EQ(sluice_tls_write(c, (const uint8_t *)"-2", 2), 2);
    CHECK_EQ(sluice_tls_write(s, (const uint8_t *)"pong", 4), 4);
    CHECK_EQ(sluice_tls_write(c, NULL, 0), 0);
    pump(c, s, &cs, &ss, &w, true);
    CHECK(sink_is(&ss, "ping-2"));
    CHECK(sink_is(&cs, "pong"));
    CHECK_EQ(cs.last, 0);
    CHECK_EQ(ss.last, 0);
    CHECK_EQ(w.feed_err, 0);
    /* Nothing from OpenSSL is left on this thread's error queue. */
    CHECK_EQ(ERR_peek_error(), 0);
out:
    sluice_tls_free(c);
    sluice_tls_free(s);
}

static void test_tls13_only(void)
{
    sluice_tls_config cfg;
    sluice_tls *s = new_server(0), *c;
    sink cs = {0}, ss = {0};
    int err;

    sluice_tls_config_init(&cfg);
    cfg.server_name = "localhost";
    cfg.ca_file = cert_path;
    cfg.min_version = 13;
    c = sluice_tls_new(&cfg, &err);
    CHECK(c != NULL);
    if (s && c)
        connect_pair(c, s, &cs, &ss);
    sluice_tls_free(c);
    sluice_tls_free(s);
}

/* 1 MiB each way at once through 64 KiB bounds: writes meet FULL and wait
 * for the wire, feeds meet FULL and wait for the reader. */
static void test_large_data(void)
{
    enum { TOTAL = 1 << 20 };
    sluice_tls *s = new_server(SMALL_BUFFERED);
    sluice_tls *c = new_client("localhost", cert_path, true, SMALL_BUFFERED);
    sink cs = {.seed = 7}, ss = {.seed = 99};
    uint8_t chunk[CHUNK];
    size_t sent_c = 0, sent_s = 0, max_pending = 0;
    int write_full = 0;
    wire w = {0};

    if (!s || !c)
        goto out;
    for (int round = 0; round < 100000 && (ss.total < TOTAL || cs.total < TOTAL); round++) {
        /* Each side writes until its output is full. */
        for (int side = 0; side < 2; side++) {
            sluice_tls *t = side ? s : c;
            size_t *sent = side ? &sent_s : &sent_c;
            uint8_t seed = side ? 7 : 99;

            while (*sent < TOTAL) {
                size_t n = TOTAL - *sent < CHUNK ? TOTAL - *sent : CHUNK;
                int r;

                for (size_t i = 0; i < n; i++)
                    chunk[i] = pattern(seed, *sent + i);
                r = sluice_tls_write(t, chunk, n);
                if (r == SLUICE_ERR_FULL) {
                    write_full++;
                    break;
                }
                CHECK_EQ(r, (int)n);
                if (r < 0)
                    goto out;
                *sent += n;
                if (sluice_tls_pending_output(t) > max_pending)
                    max_pending = sluice_tls_pending_output(t);
            }
        }
        /* The wire reads only when a feed is refused. */
        pump(c, s, &cs, &ss, &w, false);
        if (w.feed_err)
            break;
        if (sent_c == TOTAL && sent_s == TOTAL) {
            drain(c, &cs);
            drain(s, &ss);
        }
    }
    CHECK_EQ(w.feed_err, 0);
    CHECK_EQ(ss.total, TOTAL);
    CHECK_EQ(cs.total, TOTAL);
    CHECK(!ss.mismatch);
    CHECK(!cs.mismatch);
    fprintf(stderr, "# %d writes and %d feeds refused (full), output peaked at %zu\n", write_full,
            w.feed_full, max_pending);
    CHECK(write_full > 0);
    CHECK(w.feed_full > 0);
    /* The bound holds up to the record overhead of one write. */
    CHECK(max_pending <= SMALL_BUFFERED + 256);
out:
    sluice_tls_free(c);
    sluice_tls_free(s);
}

static void test_buffer_bounds(void)
{
    static uint8_t big[SMALL_BUFFERED + 1];
    sluice_tls *c = new_client("localhost", cert_path, true, SMALL_BUFFERED);
    sluice_tls *s = new_server(SMALL_BUFFERED);
    sink cs = {0}, ss = {0};
    uint8_t rec[CHUNK];
    size_t held = 0;
    int r, n = 0;

    if (!c || !s)
        goto out;
    /* More than the bound in one call can never succeed. */
    CHECK_EQ(sluice_tls_write(c, big, sizeof big), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_tls_feed(s, big, sizeof big), SLUICE_ERR_INVALID);
    /* Held plaintext counts against the bound before the handshake. */
    while ((r = sluice_tls_write(c, big, 10000)) == 10000)
        held += 10000;
    CHECK_EQ(r, SLUICE_ERR_FULL);
    CHECK(held > 0 && held <= SMALL_BUFFERED);
    /* Fed ciphertext counts until it is read: the server reads nothing
     * while the client writes, so its feed fills up. */
    connect_pair(c, s, &cs, &ss);
    CHECK_EQ(ss.total, held);
    for (int i = 0; i < 100; i++) {
        r = sluice_tls_write(c, big, CHUNK);
        if (r == SLUICE_ERR_FULL) {
            while ((n = sluice_tls_take_output(c, rec, sizeof rec)) > 0) {
                r = sluice_tls_feed(s, rec, (size_t)n);
                if (r < 0)
                    break;
                CHECK_EQ(r, n);
            }
            if (r < 0)
                break;
        } else {
            CHECK_EQ(r, CHUNK);
        }
    }
    CHECK_EQ(r, SLUICE_ERR_FULL);
    /* Reading makes room. */
    ss.total = 0;
    drain(s, &ss);
    CHECK(ss.total > 0);
    CHECK_EQ(sluice_tls_feed(s, rec, (size_t)n), n);
out:
    sluice_tls_free(c);
    sluice_tls_free(s);
}

/* ------------------------------------------------------------------------ */
/* Verification */

static void expect_auth_failure(sluice_tls *c, sluice_tls *s, const char *text)
{
    sink cs = {0}, ss = {0};
    wire w = {0};
    uint8_t b[16];

    pump(c, s, &cs, &ss, &w, true);
    CHECK(!sluice_tls_established(c));
    CHECK_EQ(sluice_tls_error(c), SLUICE_ERR_AUTH);
    CHECK(strstr(sluice_tls_error_text(c), text) != NULL);
    fprintf(stderr, "# client: %s; server: %s\n", sluice_tls_error_text(c),
            sluice_tls_error_text(s));
    /* The server learns it from the client's alert. */
    CHECK(!sluice_tls_established(s));
    CHECK_EQ(sluice_tls_error(s), SLUICE_ERR_CRYPTO);
    CHECK(sluice_tls_error_text(s)[0] != '\0');
    /* The failure is final on every call. */
    CHECK_EQ(sluice_tls_read(c, b, sizeof b), SLUICE_ERR_AUTH);
    CHECK_EQ(sluice_tls_write(c, b, 1), SLUICE_ERR_AUTH);
    CHECK_EQ(sluice_tls_feed(c, b, 1), SLUICE_ERR_AUTH);
    CHECK_EQ(sluice_tls_peer_fingerprint(c, b), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(ERR_peek_error(), 0);
}

static void test_verify_names(void)
{
    static const struct {
        const char *name;
        const char *error; /* NULL: the handshake completes */
    } cases[] = {
        {"localhost", NULL},
        {"127.0.0.1", NULL}, /* iPAddress SAN */
        {NULL, NULL},        /* chain only */
        {"example.com", "hostname mismatch"},
        {"LOCALHOST", NULL}, /* DNS names compare without case */
        {"host.localhost", "hostname mismatch"},
        {"127.0.0.2", "IP address mismatch"},
        {"::1", "IP address mismatch"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sluice_tls *s = new_server(0), *c = new_client(cases[i].name, cert_path, true, 0);
        sink cs = {0}, ss = {0};

        t_case_name = cases[i].name ? cases[i].name : "(no name)";
        if (s && c) {
            if (cases[i].error)
                expect_auth_failure(c, s, cases[i].error);
            else
                connect_pair(c, s, &cs, &ss);
        }
        sluice_tls_free(c);
        sluice_tls_free(s);
    }
    t_case_name = "test_verify_names";
}

static void test_verify_wrong_ca(void)
{
    sluice_tls *s = new_server(0), *c = new_client("localhost", other_cert_path, true, 0);

    if (s && c)
        expect_auth_failure(c, s, "self-signed certificate");
    sluice_tls_free(c);
    sluice_tls_free(s);

    /* The system store does not know the test certificate either. */
    s = new_server(0);
    c = new_client("localhost", NULL, true, 0);
    if (s && c)
        expect_auth_failure(c, s, "self-signed certificate");
    sluice_tls_free(c);
    sluice_tls_free(s);
}

static void test_no_verify(void)
{
    sluice_tls *s = new_server(0), *c = new_client("example.com", other_cert_path, false, 0);
    sink cs = {0}, ss = {0};
    uint8_t fp[32];

    if (s && c) {
        connect_pair(c, s, &cs, &ss);
        /* What a pinning owner checks instead. */
        CHECK_EQ(sluice_tls_peer_fingerprint(c, fp), 32);
        CHECK_MEM(fp, cert_sha256, 32);
    }
    sluice_tls_free(c);
    sluice_tls_free(s);
}

static void test_fingerprint(void)
{
    sluice_tls *s = new_server(0), *c = new_client("localhost", cert_path, true, 0);
    sink cs = {0}, ss = {0};
    uint8_t fp[32];

    if (!s || !c)
        goto out;
    CHECK_EQ(sluice_tls_peer_fingerprint(c, fp), SLUICE_ERR_NOT_FOUND);
    connect_pair(c, s, &cs, &ss);
    memset(fp, 0, sizeof fp);
    CHECK_EQ(sluice_tls_peer_fingerprint(c, fp), 32);
    CHECK_MEM(fp, cert_sha256, 32);
    /* The client showed no certificate. */
    CHECK_EQ(sluice_tls_peer_fingerprint(s, fp), SLUICE_ERR_NOT_FOUND);
out:
    sluice_tls_free(c);
    sluice_tls_free(s);
}

/* ------------------------------------------------------------------------ */
/* Closing and failures */

static void test_close_notify(void)
{
    sluice_tls *s = new_server(0), *c = new_client("localhost", cert_path, true, 0);
    sink cs = {0}, ss = {0};
    wire w = {0};
    uint8_t b[16];

    if (!s || !c)
        goto out;
    connect_pair(c, s, &cs, &ss);
    CHECK_EQ(sluice_tls_write(c, (const uint8_t *)"last", 4), 4);
    sluice_tls_close(c);
    CHECK_EQ(sluice_tls_write(c, (const uint8_t *)"x", 1), SLUICE_ERR_STATE);
    pump(c, s, &cs, &ss, &w, false);
    /* The data before the close_notify, then end of stream, for good. */
    CHECK_EQ(sluice_tls_read(s, b, sizeof b), 4);
    CHECK_MEM(b, "last", 4);
    CHECK_EQ(sluice_tls_read(s, b, sizeof b), SLUICE_ERR_STATE);
    CHECK_EQ(sluice_tls_read(s, b, sizeof b), SLUICE_ERR_STATE);
    CHECK_EQ(sluice_tls_feed(s, b, 1), SLUICE_ERR_STATE);
    CHECK_EQ(sluice_tls_error(s), 0);
    /* Half-closed: the server still writes, the client still reads. */
    CHECK_EQ(sluice_tls_write(s, (const uint8_t *)"bye", 3), 3);
    sluice_tls_close(s);
    pump(c, s, &cs, &ss, &w, false);
    CHECK_EQ(w.feed_err, 0);
    CHECK_EQ(sluice_tls_read(c, b, sizeof b), 3);
    CHECK_MEM(b, "bye", 3);
    CHECK_EQ(sluice_tls_read(c, b, sizeof b), SLUICE_ERR_STATE);
    CHECK_EQ(sluice_tls_error(c), 0);
out:
    sluice_tls_free(c);
    sluice_tls_free(s);
}

/* A close requested during the handshake follows the held data. */
static void test_close_before_established(void)
{
    sluice_tls *s = new_server(0), *c = new_client("localhost", cert_path, true, 0);
    sink cs = {0}, ss = {0};
    wire w = {0};

    if (!s || !c)
        goto out;
    CHECK_EQ(sluice_tls_write(c, (const uint8_t *)"only this", 9), 9);
    sluice_tls_close(c);
    pump(c, s, &cs, &ss, &w, true);
    CHECK(sink_is(&ss, "only this"));
    CHECK_EQ(ss.last, SLUICE_ERR_STATE);
out:
    sluice_tls_free(c);
    sluice_tls_free(s);
}

static void test_garbage(void)
{
    static const char junk[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    /* Record headers (and a handshake header), the rest 0xa5 bytes. */
    static const uint8_t records[][9] = {
        {0x16, 0x03, 0x03, 0x00, 0x3b, 0x02, 0x00, 0x00, 0x37}, /* ServerHello of junk */
        {0x16, 0x03, 0x03, 0x00, 0x3b, 0xa5, 0xa5, 0xa5, 0xa5}, /* unknown message */
        {0x15, 0x03, 0x03, 0x00, 0x3b, 0xa5, 0xa5, 0xa5, 0xa5}, /* alert, wrong length */
        {0x17, 0x03, 0x03, 0x00, 0x3b, 0xa5, 0xa5, 0xa5, 0xa5}, /* data before any key */
        {0x16, 0x03, 0x03, 0xff, 0xff, 0xa5, 0xa5, 0xa5, 0xa5}, /* over the record limit */
        {0x16, 0x07, 0x07, 0x00, 0x3b, 0xa5, 0xa5, 0xa5, 0xa5}, /* unknown version */
        {0x00, 0x00, 0x00, 0x00, 0x00, 0xa5, 0xa5, 0xa5, 0xa5},
    };
    sluice_tls *c = new_client("localhost", cert_path, true, 0);
    sluice_tls *s = new_server(0);
    sink cs = {0}, ss = {0};
    uint8_t b[CHUNK];
    int n;

    if (!c || !s)
        goto out;
    /* Instead of a ServerHello. */
    CHECK_EQ(sluice_tls_feed(c, (const uint8_t *)junk, sizeof junk - 1), SLUICE_ERR_CRYPTO);
    CHECK_EQ(sluice_tls_error(c), SLUICE_ERR_CRYPTO);
    CHECK(sluice_tls_error_text(c)[0] != '\0');
    fprintf(stderr, "# garbage: %s\n", sluice_tls_error_text(c));
    CHECK_EQ(sluice_tls_read(c, b, sizeof b), SLUICE_ERR_CRYPTO);
    CHECK_EQ(sluice_tls_write(c, b, 1), SLUICE_ERR_CRYPTO);
    CHECK(!sluice_tls_established(c));
    CHECK_EQ(ERR_peek_error(), 0);
    /* A server fed an HTTP request fails the same way. */
    CHECK_EQ(sluice_tls_feed(s, (const uint8_t *)junk, sizeof junk - 1), SLUICE_ERR_CRYPTO);
    sluice_tls_free(c);
    sluice_tls_free(s);

    /* Records that pass the header check and break inside, and bytes that
     * are no record at all: every one is fatal, none crashes. */
    for (size_t i = 0; i < sizeof records / sizeof records[0]; i++) {
        uint8_t rec[64];

        memset(rec, 0xa5, sizeof rec);
        memcpy(rec, records[i], sizeof records[i]);
        c = new_client("localhost", cert_path, true, 0);
        if (!c)
            break;
        CHECK_EQ(sluice_tls_feed(c, rec, sizeof rec), SLUICE_ERR_CRYPTO);
        CHECK(sluice_tls_error_text(c)[0] != '\0');
        fprintf(stderr, "# record %zu: %s\n", i, sluice_tls_error_text(c));
        CHECK(sluice_tls_pending_output(c) < 1000); /* at most an alert */
        sluice_tls_free(c);
    }
    c = s = NULL;

    /* A record damaged after the handshake fails its authentication. */
    c = new_client("localhost", cert_path, true, 0);
    s = new_server(0);
    if (!c || !s)
        goto out;
    connect_pair(c, s, &cs, &ss);
    CHECK_EQ(sluice_tls_write(s, (const uint8_t *)"payload", 7), 7);
    n = sluice_tls_take_output(s, b, sizeof b);
    CHECK(n > 10);
    if (n > 10) {
        b[n - 3] ^= 0x40;
        CHECK_EQ(sluice_tls_feed(c, b, (size_t)n), n);
        CHECK_EQ(sluice_tls_read(c, b, sizeof b), SLUICE_ERR_CRYPTO);
        CHECK_EQ(sluice_tls_error(c), SLUICE_ERR_CRYPTO);
        CHECK(!sluice_tls_established(c));
        CHECK(sluice_tls_error_text(c)[0] != '\0');
        fprintf(stderr, "# damaged record: %s\n", sluice_tls_error_text(c));
        CHECK_EQ(ERR_peek_error(), 0);
    }
out:
    sluice_tls_free(c);
    sluice_tls_free(s);
}

/* ------------------------------------------------------------------------ */
/* Configuration */

static int log_lines;
static void count_log(void *ctx, sluice_log_level level, const char *module, const char *line)
{
    (void)ctx;
    (void)level;
    (void)module;
    (void)line;
    log_lines++;
}

static void test_bad_config(void)
{
    sluice_tls_config cfg;
    int err;

    sluice_set_log_hook(count_log, NULL, SLUICE_LOG_ERROR);
    /* Missing certificate file. */
    sluice_tls_config_init(&cfg);
    cfg.server = true;
    cfg.cert_file = bad_path;
    cfg.key_file = key_path;
    err = 0;
    log_lines = 0;
    CHECK(sluice_tls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_CRYPTO);
    CHECK_EQ(log_lines, 1);
    CHECK_EQ(ERR_peek_error(), 0);
    /* Key of another certificate. */
    cfg.cert_file = cert_path;
    cfg.key_file = other_key_path;
    err = 0;
    CHECK(sluice_tls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_CRYPTO);
    /* A server needs both files. */
    cfg.key_file = NULL;
    err = 0;
    CHECK(sluice_tls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    cfg.cert_file = NULL;
    CHECK(sluice_tls_new(&cfg, NULL) == NULL);
    /* Client: a missing CA file, bounds, versions, names. */
    sluice_tls_config_init(&cfg);
    cfg.ca_file = bad_path;
    err = 0;
    CHECK(sluice_tls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_CRYPTO);
    sluice_tls_config_init(&cfg);
    cfg.max_buffered = 1024;
    CHECK(sluice_tls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    sluice_tls_config_init(&cfg);
    cfg.min_version = 11;
    CHECK(sluice_tls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    sluice_tls_config_init(&cfg);
    cfg.server_name = "";
    CHECK(sluice_tls_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    sluice_set_log_hook(NULL, NULL, SLUICE_LOG_ERROR);

    /* No configuration: a verifying client on the system store. */
    {
        sluice_tls *t = sluice_tls_new(NULL, &err);

        CHECK(t != NULL);
        CHECK_EQ(err, 0);
        CHECK(sluice_tls_pending_output(t) > 0);
        sluice_tls_free(t);
    }

    /* NULL handles and arguments. */
    CHECK_EQ(sluice_tls_feed(NULL, NULL, 0), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_tls_read(NULL, NULL, 0), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_tls_write(NULL, NULL, 0), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_tls_take_output(NULL, NULL, 0), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_tls_pending_output(NULL), 0);
    CHECK(!sluice_tls_established(NULL));
    CHECK_STR(sluice_tls_error_text(NULL), "");
    sluice_tls_close(NULL);
    sluice_tls_free(NULL);
}

/* One server context (certificate and key read once) serves two sessions
 * at once; the context can be freed while its sessions go on. */
static void test_shared_server_ctx(void)
{
    sluice_tls_config cfg;
    sluice_tls_server_ctx *ctx;
    sluice_tls *s[2] = {NULL, NULL}, *c[2] = {NULL, NULL};
    sink cs[2] = {{0}}, ss[2] = {{0}};
    wire w = {0};
    int err = 1;

    sluice_tls_config_init(&cfg);
    cfg.server = true;
    cfg.cert_file = cert_path;
    cfg.key_file = key_path;
    ctx = sluice_tls_server_ctx_new(&cfg, &err);
    CHECK(ctx != NULL);
    CHECK_EQ(err, 0);
    if (!ctx)
        return;
    for (int i = 0; i < 2; i++) {
        err = 1;
        s[i] = sluice_tls_new_server(ctx, &err);
        CHECK(s[i] != NULL);
        CHECK_EQ(err, 0);
        c[i] = new_client("localhost", cert_path, true, 0);
    }
    if (!s[0] || !s[1] || !c[0] || !c[1])
        goto out;
    /* interleaved handshakes, then the owner lets go of the context */
    CHECK_EQ(sluice_tls_write(c[0], (const uint8_t *)"first", 5), 5);
    CHECK_EQ(sluice_tls_write(c[1], (const uint8_t *)"second", 6), 6);
    carry(c[0], s[0], &ss[0], &w);
    carry(c[1], s[1], &ss[1], &w);
    sluice_tls_server_ctx_free(ctx);
    ctx = NULL;
    for (int i = 0; i < 2; i++)
        connect_pair(c[i], s[i], &cs[i], &ss[i]);
    CHECK(sink_is(&ss[0], "first"));
    CHECK(sink_is(&ss[1], "second"));
    /* a session made from the context is a normal server */
    uint8_t fp[32];
    CHECK_EQ(sluice_tls_peer_fingerprint(c[1], fp), 32);
    CHECK_MEM(fp, cert_sha256, 32);
    cs[0].len = cs[1].len = 0;
    CHECK_EQ(sluice_tls_write(s[0], (const uint8_t *)"to-0", 4), 4);
    CHECK_EQ(sluice_tls_write(s[1], (const uint8_t *)"to-1", 4), 4);
    for (int i = 0; i < 2; i++)
        pump(c[i], s[i], &cs[i], &ss[i], &w, true);
    CHECK(sink_is(&cs[0], "to-0"));
    CHECK(sink_is(&cs[1], "to-1"));
    CHECK_EQ(w.feed_err, 0);
    CHECK_EQ(ERR_peek_error(), 0);
out:
    sluice_tls_server_ctx_free(ctx);
    for (int i = 0; i < 2; i++) {
        sluice_tls_free(c[i]);
        sluice_tls_free(s[i]);
    }
}

/* A bad certificate or key fails when the context is made: once, up front. */
static void test_shared_server_ctx_errors(void)
{
    sluice_tls_config cfg;
    int err = 0;

    sluice_tls_config_init(&cfg);
    cfg.server = true;
    cfg.cert_file = cert_path;
    cfg.key_file = other_key_path; /* does not match */
    CHECK(sluice_tls_server_ctx_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_CRYPTO);
    cfg.key_file = bad_path; /* missing */
    CHECK(sluice_tls_server_ctx_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_CRYPTO);
    cfg.cert_file = NULL;
    cfg.key_file = NULL;
    CHECK(sluice_tls_server_ctx_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    cfg.server = false; /* only servers share a context */
    cfg.cert_file = cert_path;
    cfg.key_file = key_path;
    CHECK(sluice_tls_server_ctx_new(&cfg, NULL) == NULL);
    CHECK(sluice_tls_server_ctx_new(NULL, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    CHECK(sluice_tls_new_server(NULL, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    sluice_tls_server_ctx_free(NULL);
    CHECK_EQ(ERR_peek_error(), 0);
}

int main(void)
{
    if (!setup_files()) {
        ERR_print_errors_fp(stderr);
        printf("Bail out! cannot make test certificates in /tmp\n");
        if (have_dir)
            remove_files();
        return 1;
    }
    RUN(test_handshake_and_data);
    RUN(test_tls13_only);
    RUN(test_large_data);
    RUN(test_buffer_bounds);
    RUN(test_verify_names);
    RUN(test_verify_wrong_ca);
    RUN(test_no_verify);
    RUN(test_fingerprint);
    RUN(test_close_notify);
    RUN(test_close_before_established);
    RUN(test_garbage);
    RUN(test_bad_config);
    RUN(test_shared_server_ctx);
    RUN(test_shared_server_ctx_errors);
    remove_files();
    return TEST_DONE();
}
