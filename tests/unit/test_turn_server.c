/* SPDX-License-Identifier: MIT */
/* TURN server core on virtual time: every method and error path of RFC
 * 8656 it implements, nonces, credentials, policy, quotas, expiry, and the
 * sluice TURN client against the server in one process (UDP, TCP). */
#include "test.h"

#include "fail_alloc.h"

#include "sluice/sluice.h"
#include "turn/framing.h"
#include "turn_server_util.h"

/* ------------------------------------------------------------------------ */
/* The sluice TURN client against the server */

struct duo {
    struct srv_env e;
    sluice_turn_client *c;
    sluice_turn_server_flow flow;
    uint8_t stream[70000]; /* client -> server bytes not yet framed */
    size_t stream_len;
};

static void duo_init(struct duo *d, sluice_transport t, sluice_turn_family fam, bool v6_client,
                     const char *user, const char *pw)
{
    srv_init(&d->e);
    memset(&d->flow, 0, sizeof d->flow);
    d->stream_len = 0;
    sluice_turn_client_config cfg;
    sluice_turn_client_config_init(&cfg);
    cfg.server = v6_client ? d->e.listen6 : d->e.listen4;
    cfg.transport = t;
    cfg.username = user;
    cfg.password = pw;
    cfg.family = fam;
    cfg.software = "sluice-test-client";
    cfg.rng.fill = sluice_test_rng_fill;
    cfg.rng.ctx = &rng;
    int err = 1;
    d->c = sluice_turn_client_new(&cfg, &err);
    CHECK(d->c != NULL);
    d->flow.transport = t;
    d->flow.conn_id = t == SLUICE_TRANSPORT_UDP ? 0 : 42;
    sluice_addr_parse(&d->flow.client, v6_client ? "[2001:db8:1::7]:40000" : "198.51.100.7:40000",
                      0);
    d->flow.local = cfg.server;
}

/* Move bytes both ways until quiet. */
static void duo_pump(struct duo *d)
{
    for (int round = 0; round < 200; round++) {
        bool moved = false;
        uint8_t buf[4096];
        sluice_transmit tx;
        int n;
        while ((n = sluice_turn_client_poll_transmit(d->c, d->e.now, buf, sizeof buf, &tx)) > 0) {
            moved = true;
            CHECK(sluice_addr_equal(&tx.destination, &d->flow.local));
            if (d->flow.transport == SLUICE_TRANSPORT_UDP) {
                to_server(&d->e, &d->flow, buf, (size_t)n);
                continue;
            }
            /* stream: frame with RFC 8656 §12.5 rules */
            memcpy(d->stream + d->stream_len, buf, (size_t)n);
            d->stream_len += (size_t)n;
            for (;;) {
                int fl = sluice_turn_frame_length(d->stream, d->stream_len);
                CHECK(fl >= 0);
                if (fl <= 0 || (size_t)fl > d->stream_len)
                    break;
                to_server(&d->e, &d->flow, d->stream, (size_t)fl);
                memmove(d->stream, d->stream + fl, d->stream_len - (size_t)fl);
                d->stream_len -= (size_t)fl;
            }
        }
        sluice_turn_server_transmit stx;
        while ((n = sluice_turn_server_poll_transmit(d->e.srv, d->e.now, buf, sizeof buf,
                                                     &stx)) > 0) {
            moved = true;
            CHECK_EQ(stx.direction, SLUICE_TURN_SERVER_TO_CLIENT);
            CHECK_EQ(stx.flow.conn_id, d->flow.conn_id);
            sluice_turn_client_handle_datagram(d->c, d->e.now, &stx.flow.local, buf, (size_t)n);
        }
        if (!moved)
            return;
    }
    CHECK(!"pump did not settle");
}

static void duo_advance(struct duo *d, uint64_t until)
{
    for (int i = 0; i < 100000; i++) {
        duo_pump(d);
        uint64_t t = sluice_turn_client_next_timeout(d->c);
        uint64_t ts = sluice_turn_server_next_timeout(d->e.srv);
        if (ts < t)
            t = ts;
        if (t > until)
            break;
        if (t > d->e.now)
            d->e.now = t;
        sluice_turn_client_handle_timeout(d->c, d->e.now);
        sluice_turn_server_handle_timeout(d->e.srv, d->e.now);
        drain_events(&d->e);
    }
    d->e.now = until;
    sluice_turn_client_handle_timeout(d->c, d->e.now);
    sluice_turn_server_handle_timeout(d->e.srv, d->e.now);
    drain_events(&d->e);
    duo_pump(d);
}

static bool duo_event(struct duo *d, sluice_turn_event_type t, sluice_turn_event *out)
{
    sluice_turn_event ev;
    while (sluice_turn_client_poll_event(d->c, &ev)) {
        if (ev.type == t) {
            if (out)
                *out = ev;
            return true;
        }
        if (ev.type != SLUICE_TURN_EVENT_REFRESHED && ev.type != SLUICE_TURN_EVENT_PERMISSION_CREATED)
            fprintf(stderr, "# other event %d (code %d: %s)\n", (int)ev.type, ev.error_code,
                    ev.text);
    }
    return false;
}

static void duo_free(struct duo *d)
{
    sluice_turn_client_free(d->c);
    srv_free(&d->e);
}

/* Data both ways through the relay, by channel and by indication. */
static void duo_data2(struct duo *d, const sluice_addr *relay, const char *peer_s, bool channel,
                      bool fresh)
{
    sluice_addr peer;
    sluice_addr_parse(&peer, peer_s, 0);
    if (channel) {
        int ch = sluice_turn_client_bind_channel(d->c, d->e.now, &peer);
        CHECK(ch >= 0x4000);
        duo_pump(d);
        sluice_turn_event ev;
        if (fresh)
            CHECK(duo_event(d, SLUICE_TURN_EVENT_CHANNEL_BOUND, &ev));
    } else {
        CHECK_EQ(sluice_turn_client_create_permission(d->c, d->e.now, &peer), 0);
        duo_pump(d);
    }
    /* client -> peer */
    uint8_t out[2048];
    sluice_transmit tx;
    size_t before = d->e.n_rx;
    int n = sluice_turn_client_send(d->c, d->e.now, &peer, (const uint8_t *)"ping!", 5, out,
                                    sizeof out, &tx);
    CHECK(n > 0);
    if (channel && d->flow.transport == SLUICE_TRANSPORT_UDP)
        CHECK_EQ(n, 9);
    if (!channel)
        CHECK(n > 30); /* a Send indication */
    if (d->flow.transport == SLUICE_TRANSPORT_UDP) {
        CHECK_EQ(to_server(&d->e, &d->flow, out, (size_t)n), 1);
    } else {
        int fl = sluice_turn_frame_length(out, (size_t)n);
        CHECK_EQ(fl, n);
        CHECK_EQ(to_server(&d->e, &d->flow, out, (size_t)n), 1);
    }
    CHECK_EQ(d->e.n_rx, before + 1);
    if (d->e.n_rx == before + 1) {
        CHECK_EQ(d->e.rx[before].len, 5);
        CHECK_MEM(d->e.rx[before].data, "ping!", 5);
        CHECK(sluice_addr_equal(&d->e.rx[before].peer, &peer));
        CHECK(sluice_addr_equal(&d->e.rx[before].relay, relay));
    }
    /* peer -> client */
    uint8_t buf[2048];
    sluice_turn_server_transmit stx;
    n = sluice_turn_server_handle_peer(d->e.srv, d->e.now, relay, &peer,
                                       (const uint8_t *)"pong", 4, buf, sizeof buf, &stx);
    CHECK(n > 0);
    if (channel)
        CHECK_EQ(n, 8);
    else
        CHECK(n > 20);
    CHECK_EQ(stx.direction, SLUICE_TURN_SERVER_TO_CLIENT);
    CHECK_EQ(sluice_turn_client_handle_datagram(d->c, d->e.now, &stx.flow.local, buf, (size_t)n),
             1);
    sluice_addr from;
    size_t len = 0;
    CHECK_EQ(sluice_turn_client_recv(d->c, &from, buf, sizeof buf, &len), 1);
    CHECK_EQ(len, 4);
    CHECK_MEM(buf, "pong", 4);
    CHECK(sluice_addr_equal(&from, &peer));
}

static void duo_data(struct duo *d, const sluice_addr *relay, const char *peer_s, bool channel)
{
    duo_data2(d, relay, peer_s, channel, true);
}

static void interop(sluice_transport t, sluice_turn_family fam, bool v6_client)
{
    struct duo d;
    duo_init(&d, t, fam, v6_client, "alice", "secret");
    CHECK_EQ(sluice_turn_client_allocate(d.c, d.e.now), 0);
    duo_pump(&d);
    sluice_turn_event ev;
    CHECK(duo_event(&d, SLUICE_TURN_EVENT_ALLOCATED, &ev));
    size_t want = fam == SLUICE_TURN_FAMILY_DUAL ? 2 : 1;
    CHECK_EQ(ev.n_relayed, want);
    CHECK(sluice_addr_equal(&ev.mapped, &d.flow.client));
    CHECK_EQ(ev.lifetime_s, 600);
    CHECK_EQ(d.e.n_open, want);
    for (size_t i = 0; i < ev.n_relayed && i < 2; i++)
        CHECK(relay_is_open(&d.e, &ev.relayed[i]));
    if (fam != SLUICE_TURN_FAMILY_IPV6) {
        CHECK_EQ(ev.relayed[0].family, SLUICE_AF_INET);
        duo_data(&d, &ev.relayed[0], "198.51.100.20:5000", true);
        duo_data(&d, &ev.relayed[0], "198.51.100.21:5001", false);
    }
    if (fam != SLUICE_TURN_FAMILY_IPV4) {
        const sluice_addr *r6 = &ev.relayed[fam == SLUICE_TURN_FAMILY_DUAL ? 1 : 0];
        CHECK_EQ(r6->family, SLUICE_AF_INET6);
        duo_data(&d, r6, "[2001:db8:2::20]:6000", true);
        duo_data(&d, r6, "[2001:db8:2::21]:6001", false);
    }
    sluice_turn_server_stats st;
    sluice_turn_server_get_stats(d.e.srv, &st);
    CHECK_EQ(st.allocations, 1);
    CHECK(st.channels >= 1);
    CHECK(st.to_peer_packets >= 2);
    CHECK(st.to_client_packets >= 2);
    /* an hour of refreshes (allocation, permissions, channels) */
    duo_advance(&d, d.e.now + 3600 * S);
    CHECK(duo_event(&d, SLUICE_TURN_EVENT_REFRESHED, NULL));
    sluice_turn_server_get_stats(d.e.srv, &st);
    CHECK_EQ(st.allocations, 1);
    CHECK_EQ(st.allocations_expired, 0);
    if (fam != SLUICE_TURN_FAMILY_IPV6) /* the channel still works */
        duo_data2(&d, &ev.relayed[0], "198.51.100.20:5000", true, false);
    /* delete */
    CHECK_EQ(sluice_turn_client_close(d.c, d.e.now), 0);
    duo_pump(&d);
    CHECK(duo_event(&d, SLUICE_TURN_EVENT_CLOSED, &ev));
    CHECK_EQ(ev.reason, 0);
    sluice_turn_server_get_stats(d.e.srv, &st);
    CHECK_EQ(st.allocations, 0);
    CHECK_EQ(st.permissions, 0);
    CHECK_EQ(st.channels, 0);
    CHECK_EQ(d.e.n_open, 0);
    CHECK_EQ(st.challenges_rate_limited, 0);
    duo_free(&d);
}

static void test_interop_udp_v4(void)
{
    interop(SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4, false);
}
static void test_interop_udp_v6(void)
{
    interop(SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV6, true);
}
static void test_interop_udp_dual(void)
{
    interop(SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_DUAL, false);
}
static void test_interop_tcp_v4(void)
{
    interop(SLUICE_TRANSPORT_TCP, SLUICE_TURN_FAMILY_IPV4, false);
}
static void test_interop_tcp_dual(void)
{
    interop(SLUICE_TRANSPORT_TCP, SLUICE_TURN_FAMILY_DUAL, true);
}

/* TCP: ChannelData to the client is padded (RFC 8656 §12.5); the stream
 * closing deletes the allocation (§3.1). */
static void test_tcp_padding_and_close(void)
{
    struct duo d;
    duo_init(&d, SLUICE_TRANSPORT_TCP, SLUICE_TURN_FAMILY_IPV4, false, "alice", "secret");
    sluice_turn_client_allocate(d.c, d.e.now);
    duo_pump(&d);
    sluice_turn_event ev;
    CHECK(duo_event(&d, SLUICE_TURN_EVENT_ALLOCATED, &ev));
    sluice_addr peer;
    sluice_addr_parse(&peer, "198.51.100.20:5000", 0);
    CHECK_EQ(sluice_turn_client_bind_channel(d.c, d.e.now, &peer), 0x4000);
    duo_pump(&d);
    uint8_t buf[64];
    sluice_turn_server_transmit tx;
    CHECK_EQ(sluice_turn_server_handle_peer(d.e.srv, d.e.now, &ev.relayed[0], &peer,
                                            (const uint8_t *)"abcde", 5, buf, sizeof buf, &tx),
             12);
    CHECK_EQ(buf[2], 0);
    CHECK_EQ(buf[3], 5);
    CHECK_EQ(sluice_turn_server_connection_closed(d.e.srv, d.e.now, 42), 1);
    CHECK_EQ(sluice_turn_server_connection_closed(d.e.srv, d.e.now, 42), 0);
    drain_events(&d.e);
    CHECK_EQ(d.e.n_open, 0);
    CHECK_EQ(sluice_turn_server_handle_peer(d.e.srv, d.e.now, &ev.relayed[0], &peer,
                                            (const uint8_t *)"x", 1, buf, sizeof buf, &tx),
             0);
    duo_free(&d);
}

/* SHA-256 password algorithm and USERHASH with the real client. */
static void test_interop_sha256_userhash(void)
{
    for (int variant = 0; variant < 3; variant++) {
        struct duo d;
        duo_init(&d, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4, false, "bob", "hunter2");
        sluice_turn_server_free(d.e.srv);
        if (variant == 1) {
            d.e.cfg.userhash = true;
        } else if (variant == 2) {
            d.e.cfg.n_password_algorithms = 0; /* plain MD5, no cookie bits */
        }
        srv_start(&d.e);
        sluice_turn_client_allocate(d.c, d.e.now);
        duo_pump(&d);
        CHECK(duo_event(&d, SLUICE_TURN_EVENT_ALLOCATED, NULL));
        duo_free(&d);
    }
}

static void test_rest_credentials(void)
{
    char pw[64];
    struct {
        const char *user, *secret;
        bool ok;
    } cases[] = {
        {"1700000600:carol", "new-secret", true},
        {"1700000600:carol", "old-secret", true}, /* rotation: old still accepted */
        {"1700000600", "new-secret", true},
        {"1700000600:carol", "wrong-secret", false},
        {"1699999999:carol", "new-secret", false}, /* expired */
        {"abc:carol", "new-secret", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rest_password_real(cases[i].secret, cases[i].user, pw);
        struct duo d;
        duo_init(&d, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4, false, cases[i].user, pw);
        sluice_turn_client_allocate(d.c, d.e.now);
        duo_pump(&d);
        sluice_turn_event ev;
        if (cases[i].ok) {
            CHECK(duo_event(&d, SLUICE_TURN_EVENT_ALLOCATED, &ev));
        } else {
            CHECK(duo_event(&d, SLUICE_TURN_EVENT_ALLOCATE_FAILED, &ev));
            CHECK_EQ(ev.error_code, 401);
        }
        /* the wall clock moves past the expiry: new requests fail */
        if (cases[i].ok) {
            sluice_turn_server_set_unix_time(d.e.srv, 1700000601);
            struct resp r;
            CHECK_EQ(raw_allocate(&d.e, &d.flow, cases[i].user, pw, 0, 0, &r), 401);
        }
        sluice_turn_server_stats st;
        sluice_turn_server_get_stats(d.e.srv, &st);
        CHECK(cases[i].ok || st.auth_failures > 0);
        duo_free(&d);
    }
}

/* ------------------------------------------------------------------------ */
/* Raw protocol tests */

/* RFC 8489 §11.2: an RFC 3489 Binding request (no magic cookie, as libnice
 * sends for srflx discovery) gets MAPPED-ADDRESS with its cookie field
 * copied; on a stream flow, and for any other method, it stays dropped. */
static void test_binding_classic(void)
{
    struct srv_env e;
    srv_init(&e);
    sluice_turn_server_flow f;
    flow_udp(&f, "198.51.100.7:40000", &e.listen4);
    const uint8_t req[20] = {0x00, 0x01, 0x00, 0x00, 0xdc, 0xce, 0x4c, 0x4a, 0x48, 0x65,
                             0xff, 0xca, 0x6c, 0xed, 0x72, 0xb1, 0x7e, 0xf9, 0xb0, 0x6a};
    CHECK_EQ(to_server(&e, &f, req, sizeof req), 0);
    uint8_t buf[256];
    sluice_turn_server_transmit tx;
    int n = sluice_turn_server_poll_transmit(e.srv, e.now, buf, sizeof buf, &tx);
    CHECK_EQ(n, 32);
    CHECK_EQ(tx.direction, SLUICE_TURN_SERVER_TO_CLIENT);
    CHECK(sluice_addr_equal(&tx.flow.client, &f.client));
    if (n == 32) {
        const uint8_t want[12] = {0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x9c, 0x40,
                                  198, 51, 100, 7};
        CHECK_EQ(buf[0], 0x01);
        CHECK_EQ(buf[1], 0x01);
        CHECK_EQ(buf[3], 12);
        CHECK_MEM(buf + 4, req + 4, 16);
        CHECK_MEM(buf + 20, want, 12);
    }
    /* not a Binding request: dropped as before */
    uint8_t alloc[20];
    memcpy(alloc, req, 20);
    alloc[1] = 0x03;
    int dropped_before;
    sluice_turn_server_stats st;
    sluice_turn_server_get_stats(e.srv, &st);
    dropped_before = (int)st.dropped_malformed;
    CHECK_EQ(to_server(&e, &f, alloc, sizeof alloc), 0);
    CHECK_EQ(sluice_turn_server_poll_transmit(e.srv, e.now, buf, sizeof buf, &tx), 0);
    sluice_turn_server_get_stats(e.srv, &st);
    CHECK_EQ((int)st.dropped_malformed, dropped_before + 1);
    srv_free(&e);
}

static void test_binding_and_challenge(void)
{
    struct srv_env e;
    srv_init(&e);
    sluice_turn_server_flow f;
    flow_udp(&f, "198.51.100.7:40000", &e.listen4);
    struct msgb b;
    struct resp r;
    req_begin(&b, SLUICE_STUN_BINDING);
    sluice_stun_put_fingerprint(&b.w);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 0);
    sluice_addr m;
    CHECK_EQ(sluice_stun_get_xor_address(&r.m, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &m), 0);
    CHECK(sluice_addr_equal(&m, &f.client));
    /* challenge: REALM, NONCE with the cookie, PASSWORD-ALGORITHMS */
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 401);
    const uint8_t *n;
    size_t nl;
    uint32_t features = 0;
    CHECK_EQ(sluice_stun_get_bytes(&r.m, SLUICE_STUN_ATTR_NONCE, &n, &nl), 0);
    CHECK(sluice_stun_nonce_features(n, nl, &features));
    CHECK_EQ(features, SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS);
    uint16_t algs[4];
    CHECK_EQ(sluice_stun_get_password_algorithms(&r.m, algs, 4), 2);
    CHECK_EQ(algs[0], SLUICE_STUN_PWALG_SHA256);
    CHECK(!r.m.integrity_off && !r.m.integrity256_off);
    /* a non-request, a non-STUN datagram, garbage: no answer */
    const uint8_t junk[8] = {0xC0, 1, 2, 3, 4, 5, 6, 7};
    CHECK_EQ(to_server(&e, &f, junk, sizeof junk), 0);
    get_resp(&e, &r);
    CHECK_EQ(r.code, -1);
    srv_free(&e);
}

static void test_nonces(void)
{
    struct srv_env e;
    srv_init(&e);
    sluice_turn_server_flow f, g;
    flow_udp(&f, "198.51.100.7:40000", &e.listen4);
    flow_udp(&g, "198.51.100.8:40000", &e.listen4);
    char nonce[128];
    struct msgb b;
    struct resp r;
    get_nonce(&e, &f, nonce);
    /* the nonce from another address is stale here */
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    req_sign(&b, "alice", "secret", nonce);
    CHECK_EQ(send_msg(&e, &g, &b, &r), 438);
    CHECK(sluice_stun_has(&r.m, SLUICE_STUN_ATTR_NONCE));
    /* a forged nonce: the cookie plus garbage, and a flipped character */
    char forged[128];
    strcpy(forged, nonce);
    forged[20] = forged[20] == 'A' ? 'B' : 'A';
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    req_sign(&b, "alice", "secret", forged);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 438);
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    req_sign(&b, "alice", "secret", "obMatJos2AAAAgarbage");
    CHECK_EQ(send_msg(&e, &f, &b, &r), 438);
    /* expiry: valid for an hour */
    e.now += 3599 * S;
    req_begin(&b, SLUICE_STUN_REFRESH);
    req_sign(&b, "alice", "secret", nonce);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 437); /* authenticated, no allocation */
    e.now += 2 * S;
    req_begin(&b, SLUICE_STUN_REFRESH);
    req_sign(&b, "alice", "secret", nonce);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 438);
    /* missing USERNAME/REALM/NONCE with integrity: 400 (RFC 8489 §9.2.4) */
    get_nonce(&e, &f, nonce);
    req_begin(&b, SLUICE_STUN_REFRESH);
    sluice_stun_key k;
    sluice_stun_key_short_term(&k, "x", 1);
    sluice_stun_put_integrity(&b.w, &k);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 400);
    /* wrong password, unknown user: 401 */
    req_begin(&b, SLUICE_STUN_REFRESH);
    req_sign(&b, "alice", "wrong", nonce);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 401);
    req_begin(&b, SLUICE_STUN_REFRESH);
    req_sign(&b, "mallory", "secret", nonce);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 401);
    sluice_turn_server_stats st;
    sluice_turn_server_get_stats(e.srv, &st);
    CHECK_EQ(st.auth_failures, 2);
    srv_free(&e);
}

static void test_challenge_rate_limit(void)
{
    struct srv_env e;
    srv_init(&e);
    sluice_turn_server_flow f, g;
    flow_udp(&f, "198.51.100.7:40000", &e.listen4);
    flow_udp(&g, "198.51.100.99:40000", &e.listen4);
    struct msgb b;
    struct resp r;
    int answered = 0;
    for (int i = 0; i < 100; i++) {
        req_begin(&b, SLUICE_STUN_ALLOCATE);
        answered += send_msg(&e, &f, &b, &r) == 401;
    }
    CHECK_EQ(answered, 20); /* the burst */
    sluice_turn_server_stats st;
    sluice_turn_server_get_stats(e.srv, &st);
    CHECK_EQ(st.challenges_rate_limited, 80);
    /* another source is not affected; time refills */
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    CHECK_EQ(send_msg(&e, &g, &b, &r), 401);
    e.now += S;
    answered = 0;
    for (int i = 0; i < 20; i++) {
        req_begin(&b, SLUICE_STUN_ALLOCATE);
        answered += send_msg(&e, &f, &b, &r) == 401;
    }
    CHECK_EQ(answered, 10);
    srv_free(&e);
}

static void test_allocate_errors(void)
{
    struct srv_env e;
    srv_init(&e);
    sluice_turn_server_flow f;
    flow_udp(&f, "198.51.100.7:40000", &e.listen4);
    char nonce[128];
    struct msgb b;
    struct resp r;
    get_nonce(&e, &f, nonce);
    /* no REQUESTED-TRANSPORT: 400; TCP: 442 */
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    req_sign(&b, "alice", "secret", nonce);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 400);
    CHECK(r.m.integrity_off != 0); /* authenticated errors are signed */
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 6);
    req_sign(&b, "alice", "secret", nonce);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 442);
    /* both families: 400; ADDITIONAL IPv4: 400 */
    CHECK_EQ(raw_allocate(&e, &f, "alice", "secret", 2, 2, &r), 400);
    CHECK_EQ(raw_allocate(&e, &f, "alice", "secret", 0, 1, &r), 400);
    /* unknown comprehension-required attribute: 420 listing it */
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    sluice_stun_put(&b.w, 0x0077, "abcd", 4);
    req_sign(&b, "alice", "secret", nonce);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 420);
    uint16_t unk[4];
    CHECK_EQ(sluice_stun_get_unknown_attributes(&r.m, unk, 4), 1);
    CHECK_EQ(unk[0], 0x0077);
    /* DONT-FRAGMENT is accepted; success; retransmission gets the same */
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    sluice_stun_put_empty(&b.w, SLUICE_STUN_ATTR_DONT_FRAGMENT);
    sluice_stun_put_u32(&b.w, SLUICE_STUN_ATTR_LIFETIME, 99999);
    req_sign(&b, "alice", "secret", nonce);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 0);
    uint32_t lt;
    CHECK_EQ(sluice_stun_get_u32(&r.m, SLUICE_STUN_ATTR_LIFETIME, &lt), 0);
    CHECK_EQ(lt, 3600);
    struct resp r2;
    CHECK_EQ(send_msg(&e, &f, &b, &r2), 0);
    CHECK_EQ(r2.len, r.len);
    CHECK_MEM(r2.buf, r.buf, (size_t)r.len);
    CHECK_EQ(e.n_open, 1);
    /* a new Allocate (other txid) on the same 5-tuple: 437 */
    CHECK_EQ(raw_allocate(&e, &f, "alice", "secret", 0, 0, &r), 437);
    /* another user on this 5-tuple: 441 */
    CHECK_EQ(raw_refresh(&e, &f, "bob", "hunter2", -1, &r), 441);
    /* Refresh without an allocation: 437; with one: lifetimes clamped */
    sluice_turn_server_flow g;
    flow_udp(&g, "198.51.100.8:1", &e.listen4);
    CHECK_EQ(raw_refresh(&e, &g, "alice", "secret", -1, &r), 437);
    CHECK_EQ(raw_refresh(&e, &f, "alice", "secret", 10, &r), 0);
    CHECK_EQ(sluice_stun_get_u32(&r.m, SLUICE_STUN_ATTR_LIFETIME, &lt), 0);
    CHECK_EQ(lt, 600);
    CHECK_EQ(raw_refresh(&e, &f, "alice", "secret", 1200, &r), 0);
    CHECK_EQ(sluice_stun_get_u32(&r.m, SLUICE_STUN_ATTR_LIFETIME, &lt), 0);
    CHECK_EQ(lt, 1200);
    /* Refresh with the other family: 443 */
    get_nonce(&e, &f, nonce);
    req_begin(&b, SLUICE_STUN_REFRESH);
    sluice_stun_put_address_family(&b.w, SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY, 2);
    req_sign(&b, "alice", "secret", nonce);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 443);
    /* CreatePermission/ChannelBind without an allocation: 437 */
    const char *p1[] = {"198.51.100.20:1"};
    CHECK_EQ(raw_perm(&e, &g, "alice", "secret", p1, 1), 437);
    CHECK_EQ(raw_chan(&e, &g, 0x4000, "198.51.100.20:1"), 437);
    /* delete */
    CHECK_EQ(raw_refresh(&e, &f, "alice", "secret", 0, &r), 0);
    CHECK_EQ(e.n_open, 0);
    CHECK_EQ(raw_refresh(&e, &f, "alice", "secret", 0, &r), 437);
    srv_free(&e);
}

static void test_families(void)
{
    struct srv_env e;
    memset(&e, 0, sizeof e);
    sluice_test_rng_init(&rng, 3);
    e.now = 100 * S;
    sluice_addr_parse(&e.listen4, "192.0.2.10:3478", 0);
    srv_config(&e);
    e.cfg.relay_ip6.family = SLUICE_AF_NONE; /* IPv4 only */
    srv_start(&e);
    sluice_turn_server_flow f;
    struct resp r;
    flow_udp(&f, "198.51.100.7:40000", &e.listen4);
    CHECK_EQ(raw_allocate(&e, &f, "alice", "secret", 2, 0, &r), 440);
    /* dual: IPv4 granted, IPv6 refused with ADDRESS-ERROR-CODE 440 */
    CHECK_EQ(raw_allocate(&e, &f, "alice", "secret", 0, 2, &r), 0);
    uint8_t fam = 0;
    int code = 0;
    CHECK_EQ(sluice_stun_get_address_error_code(&r.m, &fam, &code, NULL, NULL), 0);
    CHECK_EQ(fam, SLUICE_STUN_FAMILY_IPV6);
    CHECK_EQ(code, 440);
    sluice_addr rel = relayed_of(&r, 0);
    CHECK_EQ(rel.family, SLUICE_AF_INET);
    /* peer family mismatch: 443 */
    const char *p6[] = {"[2001:db8:2::1]:5"};
    CHECK_EQ(raw_perm(&e, &f, "alice", "secret", p6, 1), 443);
    CHECK_EQ(raw_chan(&e, &f, 0x4001, "[2001:db8:2::1]:5"), 443);
    srv_free(&e);
}

static void test_permissions_and_channels(void)
{
    struct srv_env e;
    srv_init(&e);
    sluice_turn_server_flow f;
    struct resp r;
    flow_udp(&f, "198.51.100.7:40000", &e.listen4);
    CHECK_EQ(raw_allocate(&e, &f, "alice", "secret", 0, 0, &r), 0);
    sluice_addr relay = relayed_of(&r, 0);
    CHECK(relay_is_open(&e, &relay));
    /* all-or-nothing: one forbidden peer fails the whole request */
    const char *mixed[] = {"198.51.100.20:1", "127.0.0.1:1"};
    CHECK_EQ(raw_perm(&e, &f, "alice", "secret", mixed, 2), 403);
    uint8_t out[256];
    sluice_turn_server_transmit tx;
    CHECK_EQ(from_peer(&e, &relay, "198.51.100.20:9", "x", 1, out, sizeof out, &tx), 0);
    const char *two[] = {"198.51.100.20:1", "198.51.100.21:1"};
    CHECK_EQ(raw_perm(&e, &f, "alice", "secret", two, 2), 0);
    /* permission by IP: any port of the peer gets through */
    CHECK(from_peer(&e, &relay, "198.51.100.20:9", "x", 1, out, sizeof out, &tx) > 0);
    CHECK(from_peer(&e, &relay, "198.51.100.21:7", "x", 1, out, sizeof out, &tx) > 0);
    CHECK_EQ(from_peer(&e, &relay, "198.51.100.22:7", "x", 1, out, sizeof out, &tx), 0);
    /* capacity: 8 permissions per allocation */
    const char *many[] = {"198.51.100.30:1", "198.51.100.31:1", "198.51.100.32:1",
                          "198.51.100.33:1", "198.51.100.34:1", "198.51.100.35:1",
                          "198.51.100.36:1"};
    CHECK_EQ(raw_perm(&e, &f, "alice", "secret", many, 7), 508);
    CHECK_EQ(raw_perm(&e, &f, "alice", "secret", many, 6), 0);
    /* no XOR-PEER-ADDRESS: 400 */
    CHECK_EQ(raw_perm(&e, &f, "alice", "secret", many, 0), 400);
    /* channels: range, rebinding rules (RFC 8656 §11.2) */
    CHECK_EQ(raw_chan(&e, &f, 0x3FFF, "198.51.100.20:1"), 400);
    CHECK_EQ(raw_chan(&e, &f, 0x8000, "198.51.100.20:1"), 400);
    CHECK_EQ(raw_chan(&e, &f, 0x4000, "198.51.100.20:1"), 0);
    CHECK_EQ(raw_chan(&e, &f, 0x4000, "198.51.100.20:1"), 0); /* refresh */
    CHECK_EQ(raw_chan(&e, &f, 0x4000, "198.51.100.20:2"), 400); /* number taken */
    CHECK_EQ(raw_chan(&e, &f, 0x4001, "198.51.100.20:1"), 400); /* peer taken */
    CHECK_EQ(raw_chan(&e, &f, 0x4001, "127.0.0.1:1"), 403);
    CHECK_EQ(raw_chan(&e, &f, 0x4001, "198.51.100.20:2"), 0);
    /* data: ChannelData in, ChannelData out */
    const uint8_t cd[8] = {0x40, 0x00, 0x00, 0x03, 'a', 'b', 'c', 0};
    size_t n0 = e.n_rx;
    CHECK_EQ(to_server(&e, &f, cd, sizeof cd), 1);
    CHECK_EQ(e.n_rx, n0 + 1);
    CHECK_EQ(e.rx[n0].peer.port, 1);
    const uint8_t cd_unbound[5] = {0x40, 0x07, 0x00, 0x01, 'z'};
    CHECK_EQ(to_server(&e, &f, cd_unbound, sizeof cd_unbound), 0);
    int n = from_peer(&e, &relay, "198.51.100.20:1", "hey", 3, out, sizeof out, &tx);
    CHECK_EQ(n, 7); /* UDP: no padding */
    CHECK_EQ(out[0], 0x40);
    CHECK_EQ(out[1], 0x00);
    /* a peer on another port (no channel): Data indication */
    n = from_peer(&e, &relay, "198.51.100.20:3", "hey", 3, out, sizeof out, &tx);
    CHECK(n > 20);
    sluice_stun_msg m;
    CHECK_EQ(sluice_stun_parse(&m, out, (size_t)n), 0);
    CHECK_EQ(m.method, SLUICE_STUN_DATA);
    CHECK_EQ(m.cls, SLUICE_STUN_INDICATION);
    /* NOSPACE */
    CHECK_EQ(from_peer(&e, &relay, "198.51.100.20:1", "hey", 3, out, 5, &tx), SLUICE_ERR_NOSPACE);
    /* expiry on virtual time: permissions 300 s, channels 600 s (data
     * stops at 300 s with the permission, since nothing refreshes it) */
    e.now += 301 * S;
    sluice_turn_server_handle_timeout(e.srv, e.now);
    CHECK_EQ(raw_refresh(&e, &f, "alice", "secret", 3600, &r), 0);
    CHECK_EQ(from_peer(&e, &relay, "198.51.100.21:7", "x", 1, out, sizeof out, &tx), 0);
    CHECK_EQ(to_server(&e, &f, cd, sizeof cd), 0);
    sluice_turn_server_stats st;
    sluice_turn_server_get_stats(e.srv, &st);
    CHECK_EQ(st.permissions, 0);
    CHECK_EQ(st.channels, 2);
    /* a rebind after the permission lapsed restores both */
    CHECK_EQ(raw_chan(&e, &f, 0x4000, "198.51.100.20:1"), 0);
    CHECK_EQ(to_server(&e, &f, cd, sizeof cd), 1);
    /* channel 0x4001 expires at 600 s but cannot be rebound to another
     * peer for 5 more minutes (RFC 8656 §12) */
    e.now += 300 * S;
    sluice_turn_server_handle_timeout(e.srv, e.now);
    CHECK_EQ(raw_chan(&e, &f, 0x4001, "198.51.100.23:1"), 400);
    e.now += 301 * S;
    sluice_turn_server_handle_timeout(e.srv, e.now);
    CHECK_EQ(raw_chan(&e, &f, 0x4001, "198.51.100.23:1"), 0);
    srv_free(&e);
}

/* RFC 5766 allowed channels up to 0x7FFF and clients of that generation
 * still use them; accepted by default, refused when strict (RFC 8656 §12). */
static void test_rfc5766_channels(void)
{
    for (int strict = 0; strict < 2; strict++) {
        struct srv_env e;
        memset(&e, 0, sizeof e);
        sluice_test_rng_init(&rng, 11);
        e.now = 5000 * S;
        sluice_addr_parse(&e.listen4, "192.0.2.10:3478", 0);
        sluice_addr_parse(&e.listen6, "[2001:db8::10]:3478", 0);
        srv_config(&e);
        CHECK(e.cfg.rfc5766_channels);
        e.cfg.rfc5766_channels = !strict;
        srv_start(&e);
        sluice_turn_server_flow f;
        struct resp r;
        flow_udp(&f, "198.51.100.7:40000", &e.listen4);
        CHECK_EQ(raw_allocate(&e, &f, "alice", "secret", 0, 0, &r), 0);
        CHECK_EQ(raw_chan(&e, &f, 0x6291, "198.51.100.20:1"), strict ? 400 : 0);
        const uint8_t cd[8] = {0x62, 0x91, 0x00, 0x03, 'a', 'b', 'c', 0};
        size_t n0 = e.n_rx;
        CHECK_EQ(to_server(&e, &f, cd, sizeof cd), strict ? 0 : 1);
        CHECK_EQ(e.n_rx, n0 + (strict ? 0 : 1));
        srv_free(&e);
    }
}

static void test_send_indication(void)
{
    struct srv_env e;
    srv_init(&e);
    sluice_turn_server_flow f;
    struct resp r;
    flow_udp(&f, "198.51.100.7:40000", &e.listen4);
    CHECK_EQ(raw_allocate(&e, &f, "alice", "secret", 0, 0, &r), 0);
    const char *p[] = {"198.51.100.20:1"};
    CHECK_EQ(raw_perm(&e, &f, "alice", "secret", p, 1), 0);
    struct {
        const char *peer;
        int result;
    } cases[] = {
        {"198.51.100.20:5", 1},
        {"198.51.100.21:5", 0}, /* no permission */
        {"127.0.0.1:5", 0},     /* policy */
        {"[::ffff:127.0.0.1]:5", 0},
        {"[2001:db8::1]:5", 0}, /* family */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct msgb b;
        sluice_addr peer;
        sluice_addr_parse(&peer, cases[i].peer, 0);
        req_begin(&b, SLUICE_STUN_SEND);
        sluice_stun_writer_init(&b.w, b.buf, sizeof b.buf,
                                sluice_stun_type(SLUICE_STUN_SEND, SLUICE_STUN_INDICATION), b.txid);
        sluice_stun_put_xor_address(&b.w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &peer);
        sluice_stun_put(&b.w, SLUICE_STUN_ATTR_DATA, "data", 4);
        int n = sluice_stun_writer_result(&b.w);
        CHECK_EQ(to_server(&e, &f, b.buf, (size_t)n), cases[i].result);
    }
    sluice_turn_server_stats st;
    sluice_turn_server_get_stats(e.srv, &st);
    CHECK_EQ(st.dropped_policy, 2);
    CHECK_EQ(st.dropped_no_permission, 2);
    CHECK_EQ(st.to_peer_packets, 1);
    srv_free(&e);
}

/* The peer policy table (coturn CVE-2020-26262 and IPv4-in-IPv6 forms). */
static void test_peer_policy(void)
{
    struct srv_env e;
    srv_init(&e);
    struct {
        const char *addr;
        int code;
    } deny_default[] = {
        {"0.0.0.0:1", 403},
        {"0.1.2.3:1", 403},
        {"[::]:1", 403},
        {"127.0.0.1:1", 403},
        {"127.255.0.1:1", 403},
        {"[::1]:1", 403},
        {"[::ffff:127.0.0.1]:1", 403},
        {"[::ffff:0.0.0.0]:1", 403},
        {"[::127.0.0.1]:1", 403},
        {"[2002:7f00:1::]:1", 403},
        {"[64:ff9b::7f00:1]:1", 403},
        {"[64:ff9b:1::1]:1", 403},
        {"[::ffff:8.8.8.8]:1", 403}, /* every IPv4-in-IPv6 form */
        {"10.1.2.3:1", 403},
        {"172.16.0.1:1", 403},
        {"192.168.1.1:1", 403},
        {"169.254.169.254:1", 403},
        {"[fe80::1]:1", 403},
        {"[fc00::1]:1", 403},
        {"224.0.0.1:1", 403},
        {"[ff02::1]:1", 403},
        {"255.255.255.255:1", 403},
        {"100.64.0.1:1", 403},
        {"8.8.8.8:0", 0}, /* permissions are by IP */
        {"8.8.8.8:53", 0},
        {"198.51.100.1:1", 0},
        {"[2001:4860::8888]:1", 0},
    };
    for (size_t i = 0; i < sizeof deny_default / sizeof deny_default[0]; i++) {
        sluice_addr a;
        CHECK_EQ(sluice_addr_parse(&a, deny_default[i].addr, 0), 0);
        int got = sluice_turn_server_check_peer(e.srv, &a);
        if (got != deny_default[i].code)
            fprintf(stderr, "# %s: %d\n", deny_default[i].addr, got);
        CHECK_EQ(got, deny_default[i].code);
    }
    srv_free(&e);

    /* allow 10.0.0.0/8 and ::1; deny 8.8.0.0/16 and 127.0.0.0/8; no classes */
    srv_init(&e);
    sluice_turn_server_free(e.srv);
    sluice_turn_cidr allow[2], deny[2];
    CHECK_EQ(sluice_turn_cidr_parse(&allow[0], "10.0.0.0/8"), 0);
    CHECK_EQ(sluice_turn_cidr_parse(&allow[1], "::1"), 0);
    CHECK_EQ(sluice_turn_cidr_parse(&deny[0], "8.8.0.0/16"), 0);
    CHECK_EQ(sluice_turn_cidr_parse(&deny[1], "2001:db8:dead::/48"), 0);
    CHECK(sluice_turn_cidr_parse(&deny[1], "1.2.3.4/33") < 0);
    CHECK(sluice_turn_cidr_parse(&deny[1], "1.2.3.4/") < 0);
    CHECK(sluice_turn_cidr_parse(&deny[1], "nonsense/8") < 0);
    CHECK_EQ(sluice_turn_cidr_parse(&deny[1], "2001:db8:dead::/48"), 0);
    e.cfg.allow = allow;
    e.cfg.n_allow = 2;
    e.cfg.deny = deny;
    e.cfg.n_deny = 2;
    srv_start(&e);
    struct {
        const char *addr;
        int code;
    } custom[] = {
        {"10.1.2.3:1", 0},
        {"[::1]:1", 0},
        {"[::ffff:10.1.2.3]:1", 403}, /* allow names the address as written */
        {"11.1.2.3:1", 0},
        {"8.8.8.8:1", 403},
        {"[::ffff:8.8.8.8]:1", 403},
        {"[64:ff9b::808:808]:1", 403},
        {"[2001:db8:dead:1::1]:1", 403},
        {"[2001:db8:beef::1]:1", 0},
        {"127.0.0.1:1", 403},
    };
    for (size_t i = 0; i < sizeof custom / sizeof custom[0]; i++) {
        sluice_addr a;
        CHECK_EQ(sluice_addr_parse(&a, custom[i].addr, 0), 0);
        int got = sluice_turn_server_check_peer(e.srv, &a);
        if (got != custom[i].code)
            fprintf(stderr, "# custom %s: %d\n", custom[i].addr, got);
        CHECK_EQ(got, custom[i].code);
    }
    srv_free(&e);

    /* only 127.0.0.0/8 on the deny list, no class denial: the mapped form
     * is still denied (canonical check) */
    srv_init(&e);
    sluice_turn_server_free(e.srv);
    CHECK_EQ(sluice_turn_cidr_parse(&deny[0], "127.0.0.0/8"), 0);
    e.cfg.deny = deny;
    e.cfg.n_deny = 1;
    e.cfg.deny_classes = 0;
    e.cfg.deny_classes_set = true;
    srv_start(&e);
    const char *mapped[] = {"127.0.0.1:1", "[::ffff:127.0.0.1]:1", "[::127.0.0.1]:1",
                            "[2002:7f00:1::]:1", "[64:ff9b::7f00:1]:1"};
    for (size_t i = 0; i < 5; i++) {
        sluice_addr a;
        sluice_addr_parse(&a, mapped[i], 0);
        CHECK_EQ(sluice_turn_server_check_peer(e.srv, &a), 403);
    }
    sluice_addr a;
    sluice_addr_parse(&a, "10.0.0.1:1", 0);
    CHECK_EQ(sluice_turn_server_check_peer(e.srv, &a), 0);
    srv_free(&e);
}

static void test_quotas(void)
{
    struct srv_env e;
    memset(&e, 0, sizeof e);
    sluice_test_rng_init(&rng, 5);
    e.now = 100 * S;
    sluice_addr_parse(&e.listen4, "192.0.2.10:3478", 0);
    srv_config(&e);
    e.cfg.max_allocations = 4;
    e.cfg.max_allocations_per_user = 2;
    srv_start(&e);
    struct resp r;
    char cl[64];
    sluice_turn_server_flow f[6];
    for (int i = 0; i < 6; i++) {
        snprintf(cl, sizeof cl, "198.51.100.7:%d", 1000 + i);
        flow_udp(&f[i], cl, &e.listen4);
    }
    CHECK_EQ(raw_allocate(&e, &f[0], "alice", "secret", 0, 0, &r), 0);
    CHECK_EQ(raw_allocate(&e, &f[1], "alice", "secret", 0, 0, &r), 0);
    CHECK_EQ(raw_allocate(&e, &f[2], "alice", "secret", 0, 0, &r), 486);
    CHECK_EQ(raw_allocate(&e, &f[2], "bob", "hunter2", 0, 0, &r), 0);
    CHECK_EQ(raw_allocate(&e, &f[3], "bob", "hunter2", 0, 0, &r), 0);
    char pw[64];
    rest_password_real("new-secret", "1800000000:carol", pw);
    CHECK_EQ(raw_allocate(&e, &f[4], "1800000000:carol", pw, 0, 0, &r), 508);
    /* freeing one makes room */
    CHECK_EQ(raw_refresh(&e, &f[0], "alice", "secret", 0, &r), 0);
    CHECK_EQ(raw_allocate(&e, &f[4], "1800000000:carol", pw, 0, 0, &r), 0);
    CHECK_EQ(raw_allocate(&e, &f[5], "alice", "secret", 0, 0, &r), 508);
    srv_free(&e);

    /* relay ports run out: 508 */
    memset(&e, 0, sizeof e);
    e.now = 100 * S;
    sluice_addr_parse(&e.listen4, "192.0.2.10:3478", 0);
    srv_config(&e);
    e.cfg.port_min = 50000;
    e.cfg.port_max = 50001;
    srv_start(&e);
    CHECK_EQ(raw_allocate(&e, &f[0], "alice", "secret", 0, 0, &r), 0);
    CHECK_EQ(raw_allocate(&e, &f[1], "alice", "secret", 0, 0, &r), 0);
    CHECK_EQ(raw_allocate(&e, &f[2], "bob", "hunter2", 0, 0, &r), 508);
    /* expiry frees them (and closes the relay sockets) */
    e.now += 601 * S;
    CHECK(sluice_turn_server_next_timeout(e.srv) <= e.now);
    sluice_turn_server_handle_timeout(e.srv, e.now);
    drain_events(&e);
    CHECK_EQ(e.n_open, 0);
    CHECK_EQ(e.closes, 2);
    CHECK_EQ(raw_allocate(&e, &f[2], "bob", "hunter2", 0, 0, &r), 0);
    srv_free(&e);
}

/* Drain mode (RFC 8489 §10): new Allocates are redirected with 300 to the
 * alternate of their family, signed; a retransmitted Allocate, refreshes,
 * permissions, channels and data of existing allocations keep working;
 * without an alternate, 508. */
static void test_drain(void)
{
    struct srv_env e;
    memset(&e, 0, sizeof e);
    sluice_test_rng_init(&rng, 21);
    e.now = 100 * S;
    sluice_addr_parse(&e.listen4, "192.0.2.10:3478", 0);
    sluice_addr_parse(&e.listen6, "[2001:db8::10]:3478", 0);
    srv_config(&e);
    sluice_addr_parse(&e.cfg.alternate_server4, "198.51.100.99:3478", 0);
    sluice_addr_parse(&e.cfg.alternate_server6, "[2001:db8::99]:3478", 0);
    e.cfg.alternate_tls_port = 5349;
    e.cfg.alternate_domain = "alt.example.org";
    srv_start(&e);
    struct resp r;
    sluice_turn_server_flow f0, f1, f6, ft;
    flow_udp(&f0, "198.51.100.7:1000", &e.listen4);
    flow_udp(&f1, "198.51.100.7:1001", &e.listen4);
    flow_udp(&f6, "[2001:db8:1::7]:1000", &e.listen6);
    flow_udp(&ft, "198.51.100.7:1002", &e.listen4);
    ft.transport = SLUICE_TRANSPORT_TLS;
    ft.conn_id = 9;

    /* an allocation made before the drain, and its Allocate kept */
    char nonce[128];
    struct msgb first;
    get_nonce(&e, &f0, nonce);
    req_begin(&first, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&first.w, 17);
    req_sign(&first, "alice", "secret", nonce);
    int first_len = sluice_stun_writer_result(&first.w);
    CHECK_EQ(send_msg(&e, &f0, &first, &r), 0);
    sluice_addr relay = relayed_of(&r, 0);

    sluice_turn_server_set_draining(e.srv, true);
    sluice_turn_server_set_draining(NULL, true);
    sluice_addr alt;
    const uint8_t *dom;
    size_t dl;
    const char *reason;
    size_t rl;
    int code;
    CHECK_EQ(raw_allocate(&e, &f1, "bob", "hunter2", 0, 0, &r), 300);
    CHECK_EQ(sluice_stun_get_address(&r.m, SLUICE_STUN_ATTR_ALTERNATE_SERVER, &alt), 0);
    CHECK(sluice_addr_equal(&alt, &e.cfg.alternate_server4));
    CHECK(sluice_stun_has(&r.m, SLUICE_STUN_ATTR_MESSAGE_INTEGRITY));
    CHECK(!sluice_stun_has(&r.m, SLUICE_STUN_ATTR_ALTERNATE_DOMAIN));
    CHECK_EQ(sluice_stun_get_error_code(&r.m, &code, &reason, &rl), 0);
    CHECK(rl == 8 && memcmp(reason, "Draining", 8) == 0);
    /* RFC 8489 §14.15: the alternate of the request's family */
    CHECK_EQ(raw_allocate(&e, &f6, "bob", "hunter2", 0, 0, &r), 300);
    CHECK_EQ(sluice_stun_get_address(&r.m, SLUICE_STUN_ATTR_ALTERNATE_SERVER, &alt), 0);
    CHECK(sluice_addr_equal(&alt, &e.cfg.alternate_server6));
    /* over TLS: the TLS port and ALTERNATE-DOMAIN (§14.16) */
    CHECK_EQ(raw_allocate(&e, &ft, "bob", "hunter2", 0, 0, &r), 300);
    CHECK_EQ(sluice_stun_get_address(&r.m, SLUICE_STUN_ATTR_ALTERNATE_SERVER, &alt), 0);
    CHECK_EQ(alt.port, 5349);
    CHECK_EQ(sluice_stun_get_bytes(&r.m, SLUICE_STUN_ATTR_ALTERNATE_DOMAIN, &dom, &dl), 0);
    CHECK(dl == 15 && memcmp(dom, "alt.example.org", 15) == 0);
    /* nothing was created, no relay opened */
    CHECK_EQ(e.n_open, 1);

    /* the existing allocation goes on: retransmission, refresh,
     * permission, channel, data both ways */
    to_server(&e, &f0, first.buf, (size_t)first_len);
    get_resp(&e, &r);
    CHECK_EQ(r.code, 0);
    sluice_addr again = relayed_of(&r, 0);
    CHECK(sluice_addr_equal(&again, &relay));
    CHECK_EQ(raw_refresh(&e, &f0, "alice", "secret", 900, &r), 0);
    const char *p[] = {"198.51.100.20:1"};
    CHECK_EQ(raw_perm(&e, &f0, "alice", "secret", p, 1), 0);
    CHECK_EQ(raw_chan(&e, &f0, 0x4001, "198.51.100.20:7"), 0);
    uint8_t cd[8], out[128];
    sluice_turn_channel_header(cd, 0x4001, 4);
    memcpy(cd + 4, "ping", 4);
    e.n_rx = 0;
    CHECK_EQ(to_server(&e, &f0, cd, sizeof cd), 1);
    CHECK_EQ(e.n_rx, 1);
    sluice_turn_server_transmit tx;
    CHECK_EQ(from_peer(&e, &relay, "198.51.100.20:7", "pong", 4, out, sizeof out, &tx), 8);
    sluice_turn_server_stats st;
    sluice_turn_server_get_stats(e.srv, &st);
    CHECK_EQ(st.drain_redirected, 3);
    CHECK_EQ(st.drain_refused, 0);
    CHECK_EQ(st.allocations, 1);

    /* the drain ends when the allocation does (virtual time) */
    srv_advance(&e, 901);
    CHECK_EQ(e.n_open, 0);
    /* drain off: allocations again */
    sluice_turn_server_set_draining(e.srv, false);
    CHECK_EQ(raw_allocate(&e, &f1, "bob", "hunter2", 0, 0, &r), 0);
    srv_free(&e);

    /* no alternate server: 508 "Draining", signed */
    srv_init(&e);
    sluice_turn_server_set_draining(e.srv, true);
    flow_udp(&f1, "198.51.100.7:1001", &e.listen4);
    CHECK_EQ(raw_allocate(&e, &f1, "bob", "hunter2", 0, 0, &r), 508);
    CHECK(sluice_stun_has(&r.m, SLUICE_STUN_ATTR_MESSAGE_INTEGRITY));
    CHECK(!sluice_stun_has(&r.m, SLUICE_STUN_ATTR_ALTERNATE_SERVER));
    CHECK_EQ(sluice_stun_get_error_code(&r.m, &code, &reason, &rl), 0);
    CHECK(rl == 8 && memcmp(reason, "Draining", 8) == 0);
    /* only an IPv6 alternate: an IPv4 client gets 508 */
    srv_free(&e);
    memset(&e, 0, sizeof e);
    e.now = 100 * S;
    sluice_addr_parse(&e.listen4, "192.0.2.10:3478", 0);
    srv_config(&e);
    sluice_addr_parse(&e.cfg.alternate_server6, "[2001:db8::99]:3478", 0);
    srv_start(&e);
    sluice_turn_server_set_draining(e.srv, true);
    CHECK_EQ(raw_allocate(&e, &f1, "bob", "hunter2", 0, 0, &r), 508);
    sluice_turn_server_get_stats(e.srv, &st);
    CHECK_EQ(st.drain_refused, 1);
    srv_free(&e);

    /* alternates are checked at creation */
    srv_config(&e);
    sluice_addr_parse(&e.cfg.alternate_server4, "[2001:db8::99]:3478", 0);
    CHECK(sluice_turn_server_new(&e.cfg, NULL) == NULL);
    srv_config(&e);
    sluice_addr_parse(&e.cfg.alternate_server4, "198.51.100.99", 0);
    CHECK(sluice_turn_server_new(&e.cfg, NULL) == NULL);
    srv_config(&e);
    e.cfg.alternate_domain = "";
    CHECK(sluice_turn_server_new(&e.cfg, NULL) == NULL);
}

static void test_bandwidth(void)
{
    struct srv_env e;
    memset(&e, 0, sizeof e);
    e.now = 100 * S;
    sluice_addr_parse(&e.listen4, "192.0.2.10:3478", 0);
    srv_config(&e);
    e.cfg.bandwidth_bytes_per_s = 1000;
    srv_start(&e);
    sluice_turn_server_flow f;
    struct resp r;
    flow_udp(&f, "198.51.100.7:40000", &e.listen4);
    CHECK_EQ(raw_allocate(&e, &f, "alice", "secret", 0, 0, &r), 0);
    sluice_addr relay = relayed_of(&r, 0);
    CHECK_EQ(raw_chan(&e, &f, 0x4000, "198.51.100.20:1"), 0);
    uint8_t cd[4 + 400] = {0x40, 0x00, 0x01, 0x90};
    int ok = 0;
    for (int i = 0; i < 5; i++)
        ok += to_server(&e, &f, cd, sizeof cd);
    CHECK_EQ(ok, 2);
    uint8_t out[600];
    sluice_turn_server_transmit tx;
    ok = 0;
    for (int i = 0; i < 5; i++)
        ok += from_peer(&e, &relay, "198.51.100.20:1", cd + 4, 400, out, sizeof out, &tx) > 0;
    CHECK_EQ(ok, 2);
    e.now += S;
    CHECK_EQ(to_server(&e, &f, cd, sizeof cd), 1);
    sluice_turn_server_stats st;
    sluice_turn_server_get_stats(e.srv, &st);
    CHECK_EQ(st.dropped_bandwidth, 6);
    srv_free(&e);
}

static void test_even_port_reservation(void)
{
    struct srv_env e;
    srv_init(&e);
    sluice_turn_server_flow f, g, h;
    flow_udp(&f, "198.51.100.7:40000", &e.listen4);
    flow_udp(&g, "198.51.100.7:40001", &e.listen4);
    flow_udp(&h, "198.51.100.7:40002", &e.listen4);
    char nonce[128];
    struct msgb b;
    struct resp r;
    get_nonce(&e, &f, nonce);
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    sluice_stun_put_even_port(&b.w, true);
    req_sign(&b, "alice", "secret", nonce);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 0);
    sluice_addr rel = relayed_of(&r, 0);
    CHECK_EQ(rel.port % 2, 0);
    uint64_t token = 0;
    CHECK_EQ(sluice_stun_get_u64(&r.m, SLUICE_STUN_ATTR_RESERVATION_TOKEN, &token), 0);
    CHECK(token != 0);
    /* token with REQUESTED-ADDRESS-FAMILY or EVEN-PORT: 400; bogus: 508 */
    get_nonce(&e, &g, nonce);
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    sluice_stun_put_u64(&b.w, SLUICE_STUN_ATTR_RESERVATION_TOKEN, token);
    sluice_stun_put_even_port(&b.w, false);
    req_sign(&b, "alice", "secret", nonce);
    CHECK_EQ(send_msg(&e, &g, &b, &r), 400);
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    sluice_stun_put_u64(&b.w, SLUICE_STUN_ATTR_RESERVATION_TOKEN, token ^ 1);
    req_sign(&b, "alice", "secret", nonce);
    CHECK_EQ(send_msg(&e, &g, &b, &r), 508);
    /* the token gets port + 1 */
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    sluice_stun_put_u64(&b.w, SLUICE_STUN_ATTR_RESERVATION_TOKEN, token);
    req_sign(&b, "alice", "secret", nonce);
    CHECK_EQ(send_msg(&e, &g, &b, &r), 0);
    sluice_addr rel2 = relayed_of(&r, 0);
    CHECK_EQ(rel2.port, rel.port + 1);
    /* used once only */
    get_nonce(&e, &h, nonce);
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    sluice_stun_put_u64(&b.w, SLUICE_STUN_ATTR_RESERVATION_TOKEN, token);
    req_sign(&b, "bob", "hunter2", nonce);
    CHECK_EQ(send_msg(&e, &h, &b, &r), 508);
    /* a second reservation expires after 30 s */
    CHECK_EQ(raw_refresh(&e, &f, "alice", "secret", 0, &r), 0);
    get_nonce(&e, &f, nonce);
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    sluice_stun_put_even_port(&b.w, true);
    req_sign(&b, "alice", "secret", nonce);
    CHECK_EQ(send_msg(&e, &f, &b, &r), 0);
    CHECK_EQ(sluice_stun_get_u64(&r.m, SLUICE_STUN_ATTR_RESERVATION_TOKEN, &token), 0);
    e.now += 31 * S;
    sluice_turn_server_handle_timeout(e.srv, e.now);
    get_nonce(&e, &h, nonce);
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    sluice_stun_put_u64(&b.w, SLUICE_STUN_ATTR_RESERVATION_TOKEN, token);
    req_sign(&b, "bob", "hunter2", nonce);
    CHECK_EQ(send_msg(&e, &h, &b, &r), 508);
    srv_free(&e);
}

/* The driver cannot bind a relay port: the queued response moves to
 * another port; after repeated failures it becomes 508. */
static void test_relay_bind_failure(void)
{
    struct srv_env e;
    srv_init(&e);
    sluice_turn_server_flow f;
    flow_udp(&f, "198.51.100.7:40000", &e.listen4);
    char nonce[128];
    get_nonce(&e, &f, nonce);
    struct msgb b;
    struct resp r;
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    req_sign(&b, "alice", "secret", nonce);
    e.fail_next_bind = true;
    CHECK_EQ(send_msg(&e, &f, &b, &r), 0); /* the events were drained first */
    CHECK_EQ(e.opens, 2);
    CHECK_EQ(e.n_open, 1);
    sluice_addr rel = relayed_of(&r, 0);
    CHECK(relay_is_open(&e, &rel));
    /* four failures in a row: 508 */
    sluice_turn_server_flow g;
    flow_udp(&g, "198.51.100.7:40001", &e.listen4);
    get_nonce(&e, &g, nonce);
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    req_sign(&b, "alice", "secret", nonce);
    int n = sluice_stun_writer_result(&b.w);
    sluice_turn_server_transmit tx;
    const uint8_t *p;
    size_t pl;
    sluice_turn_server_handle_client(e.srv, e.now, &g, b.buf, (size_t)n, &tx, &p, &pl);
    sluice_turn_server_event ev;
    int fails = 0;
    while (sluice_turn_server_poll_event(e.srv, &ev)) {
        CHECK_EQ(ev.type, SLUICE_TURN_SERVER_EVENT_OPEN_RELAY);
        sluice_turn_server_relay_failed(e.srv, e.now, &ev.relay);
        fails++;
    }
    CHECK_EQ(fails, 4);
    get_resp(&e, &r);
    CHECK_EQ(r.code, 508);
    CHECK(r.m.integrity_off != 0);
    sluice_turn_server_stats st;
    sluice_turn_server_get_stats(e.srv, &st);
    CHECK_EQ(st.allocations, 1);
    CHECK_EQ(st.relay_bind_failures, 5);
    srv_free(&e);
}

/* Fail each allocation in turn: NULL + NOMEM, no leak (ASan). */
static size_t counted;

static void test_allocation_failures(void)
{
    struct srv_env e;
    memset(&e, 0, sizeof e);
    srv_config(&e);
    sluice_turn_cidr deny;
    sluice_turn_cidr_parse(&deny, "10.0.0.0/8");
    e.cfg.deny = &deny;
    e.cfg.n_deny = 1;
    e.cfg.alloc.calloc = failing_calloc;
    e.cfg.alloc.free = plain_free;
    int ok_at = -1;
    for (fail_alloc_at = 0; fail_alloc_at < 100; fail_alloc_at++) {
        fail_alloc_calls = 0;
        int err = 0;
        sluice_turn_server *s = sluice_turn_server_new(&e.cfg, &err);
        if (s) {
            ok_at = fail_alloc_at;
            sluice_turn_server_free(s);
            break;
        }
        CHECK_EQ(err, SLUICE_ERR_NOMEM);
    }
    CHECK(ok_at > 20);
    /* bad configs */
    int err = 0;
    sluice_turn_server_config bad = e.cfg;
    bad.realm = NULL;
    CHECK(sluice_turn_server_new(&bad, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    bad = e.cfg;
    bad.relay_ip4.family = bad.relay_ip6.family = SLUICE_AF_NONE;
    CHECK(sluice_turn_server_new(&bad, NULL) == NULL);
    bad = e.cfg;
    bad.port_min = 60000;
    bad.port_max = 50000;
    CHECK(sluice_turn_server_new(&bad, NULL) == NULL);
    bad = e.cfg;
    bad.max_allocations = 0;
    CHECK(sluice_turn_server_new(&bad, NULL) == NULL);
    sluice_turn_server_free(NULL);
}

/* Memory: 10,000 allocations in ≤ 2 KiB of core state each. */
static void *counting_calloc(void *ctx, size_t n, size_t size)
{
    (void)ctx;
    counted += n * size;
    return calloc(n, size);
}

static void test_memory_budget(void)
{
    struct srv_env e;
    memset(&e, 0, sizeof e);
    srv_config(&e);
    e.cfg.max_allocations = 10000;
    e.cfg.port_min = 49152;
    e.cfg.port_max = 65535;
    e.cfg.alloc.calloc = counting_calloc;
    e.cfg.alloc.free = plain_free;
    counted = 0;
    sluice_turn_server *s = sluice_turn_server_new(&e.cfg, NULL);
    CHECK(s != NULL);
    size_t per = counted / 10000;
    printf("# %zu bytes allocated for 10000 allocations: %zu bytes per allocation\n", counted,
           per);
    CHECK_EQ(sluice_turn_server_memory(s), counted);
    CHECK(per <= 2048);
    sluice_turn_server_free(s);
}

/* Thousands of allocations created, used and expired on virtual time. */
static void test_soak(void)
{
    struct srv_env e;
    memset(&e, 0, sizeof e);
    sluice_test_rng_init(&rng, 99);
    e.now = 100 * S;
    sluice_addr_parse(&e.listen4, "192.0.2.10:3478", 0);
    srv_config(&e);
    e.cfg.max_allocations = 3000;
    e.cfg.max_allocations_per_user = 0;
    e.cfg.port_min = 40000;
    e.cfg.port_max = 45000;
    e.cfg.challenges_per_s = 1000000;
    e.cfg.challenge_burst = 1000000;
    srv_start(&e);
    unsigned created = 0, relayed = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 2500; i++) {
            sluice_turn_server_flow f;
            char cl[64];
            snprintf(cl, sizeof cl, "198.51.%d.%d:%d", 100 + (i % 3), i % 250, 1024 + i + round);
            flow_udp(&f, cl, &e.listen4);
            struct resp r;
            if (raw_allocate(&e, &f, "alice", "secret", 0, 0, &r) != 0)
                continue;
            created++;
            sluice_addr relay = relayed_of(&r, 0);
            if (i % 5 == 0) {
                if (raw_chan(&e, &f, (uint16_t)(0x4000 + i % 100), "198.51.100.20:1") == 0) {
                    uint8_t cd[8] = {0x40, (uint8_t)(i % 100), 0, 4, 1, 2, 3, 4};
                    relayed += to_server(&e, &f, cd, sizeof cd) == 1;
                    uint8_t out[64];
                    sluice_turn_server_transmit tx;
                    relayed += from_peer(&e, &relay, "198.51.100.20:1", "abcd", 4, out,
                                         sizeof out, &tx) == 8;
                }
            }
            e.now += 100000; /* 100 ms */
        }
        sluice_turn_server_stats st;
        sluice_turn_server_get_stats(e.srv, &st);
        CHECK_EQ(st.allocations, 2500);
        e.now += 700 * S;
        sluice_turn_server_handle_timeout(e.srv, e.now);
        drain_events(&e);
        sluice_turn_server_get_stats(e.srv, &st);
        CHECK_EQ(st.allocations, 0);
        CHECK_EQ(st.permissions, 0);
        CHECK_EQ(e.n_open, 0);
        e.now += 301 * S;
        sluice_turn_server_handle_timeout(e.srv, e.now);
        sluice_turn_server_get_stats(e.srv, &st);
        CHECK_EQ(st.channels, 0);
    }
    CHECK_EQ(created, 7500);
    CHECK_EQ(relayed, 3000);
    CHECK_EQ(sluice_turn_server_next_timeout(e.srv), SLUICE_NEVER);
    srv_free(&e);
}

int main(void)
{
    RUN(test_interop_udp_v4);
    RUN(test_interop_udp_v6);
    RUN(test_interop_udp_dual);
    RUN(test_interop_tcp_v4);
    RUN(test_interop_tcp_dual);
    RUN(test_tcp_padding_and_close);
    RUN(test_interop_sha256_userhash);
    RUN(test_rest_credentials);
    RUN(test_binding_and_challenge);
    RUN(test_binding_classic);
    RUN(test_nonces);
    RUN(test_challenge_rate_limit);
    RUN(test_allocate_errors);
    RUN(test_families);
    RUN(test_permissions_and_channels);
    RUN(test_rfc5766_channels);
    RUN(test_send_indication);
    RUN(test_peer_policy);
    RUN(test_quotas);
    RUN(test_drain);
    RUN(test_bandwidth);
    RUN(test_even_port_reservation);
    RUN(test_relay_bind_failure);
    RUN(test_allocation_failures);
    RUN(test_memory_budget);
    RUN(test_soak);
    return TEST_DONE();
}
