/* SPDX-License-Identifier: MIT */
/* TURN client over TLS (turns:), in memory: the client's TLS runs inside
 * the core with memory BIOs; the server side is a sluice TLS endpoint in
 * front of the scripted TURN server. Certificates are made at run time. */
#include <unistd.h>

#include "common/tls.h"
#include "fake_turn.h"
#include "sluice/sluice.h"
#include "test.h"
#include "test_cert.h"
#include "turn/framing.h"

#define S 1000000ull

static char dir[] = "/tmp/sluice-turn-tls-XXXXXX";
static char cert_path[96], key_path[96], other_cert_path[96], other_key_path[96];
static sluice_test_rng rng;

struct env {
    sluice_turn_client *c;
    sluice_tls *srv;
    struct fake_turn s;
    sluice_addr server;
    uint64_t now;
    uint8_t plain[70000]; /* server-side plaintext not yet framed */
    size_t plain_len;
    unsigned channel_data_seen;
    size_t last_channel_data_len; /* on the wire, with padding */
};

static bool env_init(struct env *e, const char *ca, const char *name, bool verify)
{
    memset(e, 0, sizeof *e);
    fake_turn_init(&e->s);
    sluice_addr_parse(&e->server, "127.0.0.1:5349", 0);
    e->now = 1000 * S;
    sluice_test_rng_init(&rng, 3);
    sluice_turn_client_config cfg;
    sluice_turn_client_config_init(&cfg);
    cfg.server = e->server;
    cfg.transport = SLUICE_TRANSPORT_TLS;
    cfg.server_name = name;
    cfg.ca_file = ca;
    cfg.tls_verify = verify;
    cfg.username = "alice";
    cfg.password = "secret";
    cfg.rng.fill = sluice_test_rng_fill;
    cfg.rng.ctx = &rng;
    int err = 0;
    e->c = sluice_turn_client_new(&cfg, &err);
    CHECK(e->c != NULL);
    sluice_tls_config tc;
    sluice_tls_config_init(&tc);
    tc.server = true;
    tc.cert_file = cert_path;
    tc.key_file = key_path;
    e->srv = sluice_tls_new(&tc, &err);
    CHECK(e->srv != NULL);
    return e->c && e->srv;
}

static void env_free(struct env *e)
{
    sluice_turn_client_free(e->c);
    sluice_tls_free(e->srv);
}

/* Server side: frame the plaintext, answer STUN, note ChannelData. */
static void server_frames(struct env *e)
{
    size_t off = 0;
    for (;;) {
        int fl = sluice_turn_frame_length(e->plain + off, e->plain_len - off);
        CHECK(fl >= 0);
        if (fl <= 0 || (size_t)fl > e->plain_len - off)
            break;
        const uint8_t *f = e->plain + off;
        if ((f[0] & 0xC0) == 0x40) {
            e->channel_data_seen++;
            e->last_channel_data_len = (size_t)fl;
        } else {
            uint8_t resp[2048];
            int r = fake_turn_answer(&e->s, f, (size_t)fl, resp, sizeof resp);
            CHECK(r >= 0);
            if (r > 0)
                CHECK_EQ(sluice_tls_write(e->srv, resp, (size_t)r), r);
        }
        off += (size_t)fl;
    }
    memmove(e->plain, e->plain + off, e->plain_len - off);
    e->plain_len -= off;
}

/* Carry bytes both ways until neither side has anything to say. */
static void exchange(struct env *e)
{
    for (int round = 0; round < 200; round++) {
        bool moved = false;
        uint8_t buf[20000];
        sluice_transmit tx;
        int n;
        while ((n = sluice_turn_client_poll_transmit(e->c, e->now, buf, sizeof buf, &tx)) > 0) {
            CHECK_EQ(tx.transport, SLUICE_TRANSPORT_TLS);
            CHECK(sluice_addr_equal(&tx.destination, &e->server));
            if (sluice_tls_feed(e->srv, buf, (size_t)n) < 0)
                break;
            moved = true;
        }
        int r;
        while ((r = sluice_tls_read(e->srv, e->plain + e->plain_len,
                                    sizeof e->plain - e->plain_len)) > 0) {
            e->plain_len += (size_t)r;
            server_frames(e);
        }
        while ((n = sluice_tls_take_output(e->srv, buf, sizeof buf)) > 0) {
            sluice_turn_client_handle_datagram(e->c, e->now, NULL, buf, (size_t)n);
            moved = true;
        }
        if (!moved)
            return;
    }
    CHECK(!"exchange did not settle");
}

static void expect(struct env *e, sluice_turn_event_type t, sluice_turn_event *out)
{
    sluice_turn_event ev;
    bool got = sluice_turn_client_poll_event(e->c, &ev);
    CHECK(got);
    if (got && ev.type != t)
        fprintf(stderr, "# expected event %d, got %d (code %d, reason %d, %s)\n", (int)t,
                (int)ev.type, ev.error_code, ev.reason, ev.text);
    CHECK_EQ(got ? ev.type : 0, t);
    if (out && got)
        *out = ev;
}

static void test_allocate_and_data_over_tls(void)
{
    struct env e;
    if (!env_init(&e, cert_path, "localhost", true))
        return;
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    exchange(&e);
    sluice_turn_event ev;
    expect(&e, SLUICE_TURN_EVENT_ALLOCATED, &ev);
    CHECK(sluice_addr_equal(&ev.relayed[0], &e.s.relayed4));
    CHECK(sluice_tls_established(e.srv));

    sluice_addr peer;
    sluice_addr_parse(&peer, "198.51.100.20:5000", 0);
    CHECK_EQ(sluice_turn_client_bind_channel(e.c, e.now, &peer), 0x4000);
    exchange(&e);
    expect(&e, SLUICE_TURN_EVENT_CHANNEL_BOUND, NULL);
    /* over TLS the driver cannot frame: route says use send() */
    sluice_turn_route route;
    CHECK_EQ(sluice_turn_client_route(e.c, &peer, &route), SLUICE_ERR_UNSUPPORTED);
    uint8_t out[4096];
    sluice_transmit tx;
    int n = sluice_turn_client_send(e.c, e.now, &peer, (const uint8_t *)"hello", 5, out,
                                    sizeof out, &tx);
    CHECK(n > 12); /* a TLS record, not plaintext */
    CHECK_EQ(tx.transport, SLUICE_TRANSPORT_TLS);
    CHECK_EQ(sluice_tls_feed(e.srv, out, (size_t)n), n);
    exchange(&e);
    CHECK_EQ(e.channel_data_seen, 1);
    CHECK_EQ(e.last_channel_data_len, 12); /* padded (RFC 8656 §12.5) */

    /* server to client: ChannelData and a Data indication in one record */
    uint8_t rec[128] = {0x40, 0x00, 0x00, 0x03, 'a', 'b', 'c', 0};
    int dl = fake_turn_data_indication(&peer, (const uint8_t *)"data", 4, rec + 8, sizeof rec - 8);
    CHECK(dl > 0);
    CHECK_EQ(sluice_tls_write(e.srv, rec, 8 + (size_t)dl), 8 + dl);
    exchange(&e);
    uint8_t buf[64];
    size_t len;
    sluice_addr from;
    CHECK_EQ(sluice_turn_client_recv(e.c, &from, buf, sizeof buf, &len), 1);
    CHECK_EQ(len, 3);
    CHECK(sluice_addr_equal(&from, &peer));
    CHECK_EQ(sluice_turn_client_recv(e.c, &from, buf, sizeof buf, &len), 1);
    CHECK_EQ(len, 4);
    CHECK_MEM(buf, "data", 4);

    /* a refresh after 540 s goes through the session too */
    e.now += 540 * S;
    sluice_turn_client_handle_timeout(e.c, e.now);
    exchange(&e);
    expect(&e, SLUICE_TURN_EVENT_REFRESHED, NULL);

    /* close: delete, then close_notify reaches the server */
    CHECK_EQ(sluice_turn_client_close(e.c, e.now), 0);
    exchange(&e);
    expect(&e, SLUICE_TURN_EVENT_CLOSED, &ev);
    CHECK_EQ(ev.reason, 0);
    CHECK_EQ(e.s.last_lifetime, 0);
    CHECK_EQ(sluice_tls_read(e.srv, buf, sizeof buf), SLUICE_ERR_STATE);
    env_free(&e);
}

static void test_ip_name(void)
{
    struct env e;
    /* no server_name: the server's IP, checked against the IP SAN */
    if (!env_init(&e, cert_path, NULL, true))
        return;
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    exchange(&e);
    expect(&e, SLUICE_TURN_EVENT_ALLOCATED, NULL);
    env_free(&e);
}

static void test_verification_failures(void)
{
    enum { OTHER_CA, SYSTEM_STORE, RIGHT_CA };
    static const struct {
        int ca;
        const char *name;
    } cases[] = {
        {OTHER_CA, "localhost"},     /* signed by someone else */
        {SYSTEM_STORE, NULL},        /* our self-signed CA is not in the system store */
        {RIGHT_CA, "example.com"},   /* name mismatch */
        {RIGHT_CA, "127.0.0.2"},     /* IP mismatch */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct env e;
        const char *ca = cases[i].ca == OTHER_CA ? other_cert_path
                         : cases[i].ca == RIGHT_CA ? cert_path
                                                   : NULL;
        if (!env_init(&e, ca, cases[i].name, true))
            return;
        CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
        exchange(&e);
        sluice_turn_event ev;
        expect(&e, SLUICE_TURN_EVENT_ALLOCATE_FAILED, &ev);
        CHECK_EQ(ev.reason, SLUICE_ERR_AUTH);
        CHECK(strncmp(ev.text, "TLS: ", 5) == 0);
        fprintf(stderr, "# case %zu: %s\n", i, ev.text);
        CHECK_EQ(e.s.requests[SLUICE_STUN_ALLOCATE], 0); /* nothing leaked in clear */
        CHECK_EQ(sluice_turn_client_next_timeout(e.c), SLUICE_NEVER);
        env_free(&e);
    }
    /* verification off: connects despite the wrong CA and name */
    struct env e;
    if (!env_init(&e, other_cert_path, "example.com", false))
        return;
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    exchange(&e);
    expect(&e, SLUICE_TURN_EVENT_ALLOCATED, NULL);
    env_free(&e);
}

static void test_garbage_from_server(void)
{
    struct env e;
    if (!env_init(&e, cert_path, "localhost", true))
        return;
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    exchange(&e);
    expect(&e, SLUICE_TURN_EVENT_ALLOCATED, NULL);
    /* bytes that are not TLS records: the session and the allocation end */
    static const uint8_t junk[64] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    CHECK(sluice_turn_client_handle_datagram(e.c, e.now, NULL, junk, sizeof junk) < 0);
    sluice_turn_event ev;
    expect(&e, SLUICE_TURN_EVENT_LOST, &ev);
    CHECK_EQ(ev.reason, SLUICE_ERR_CRYPTO);
    env_free(&e);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        printf("1..0 # SKIP cannot create a temporary directory\n");
        return 0;
    }
    snprintf(cert_path, sizeof cert_path, "%s/cert.pem", dir);
    snprintf(key_path, sizeof key_path, "%s/key.pem", dir);
    snprintf(other_cert_path, sizeof other_cert_path, "%s/other.pem", dir);
    snprintf(other_key_path, sizeof other_key_path, "%s/other-key.pem", dir);
    bool ok = make_cert(cert_path, key_path, 1, NULL) &&
              make_cert(other_cert_path, other_key_path, 2, NULL);
    CHECK(ok);
    if (ok) {
        RUN(test_allocate_and_data_over_tls);
        RUN(test_ip_name);
        RUN(test_verification_failures);
        RUN(test_garbage_from_server);
    }
    unlink(cert_path);
    unlink(key_path);
    unlink(other_cert_path);
    unlink(other_key_path);
    rmdir(dir);
    return TEST_DONE();
}
