/* SPDX-License-Identifier: MIT */
/* Helpers shared by the TURN server core unit tests: a server with a
 * hand-driven driver on virtual time, raw signed requests, responses. */
#ifndef SLUICE_TURN_SERVER_UTIL_H
#define SLUICE_TURN_SERVER_UTIL_H

#include "test.h"

#include <openssl/hmac.h>

#include "sluice/sluice.h"

#define S 1000000ull

static sluice_test_rng rng;

/* ------------------------------------------------------------------------ */
/* A server with its driver: relay sockets tracked from events, peers'
 * inboxes, the transmit queue drained by hand. */

struct peer_rx {
    sluice_addr relay, peer;
    uint8_t data[2048];
    size_t len;
};

struct srv_env {
    sluice_turn_server *srv;
    sluice_turn_server_config cfg;
    uint64_t now;
    sluice_addr listen4, listen6, relay4, relay6;
    sluice_addr open[4096];
    size_t n_open;
    unsigned opens, closes;
    struct peer_rx rx[32];
    size_t n_rx;
    bool fail_next_bind; /* relay_failed() for the next OPEN */
};

static sluice_turn_server_user users[] = {
    {.name = "alice", .password = "secret"},
    {.name = "bob", .password = "hunter2"},
};
static const char *secrets[] = {"new-secret", "old-secret"};

static inline void srv_config(struct srv_env *e)
{
    sluice_turn_server_config_init(&e->cfg);
    e->cfg.realm = "example.org";
    e->cfg.software = "sluice-test-server";
    sluice_addr_parse(&e->relay4, "203.0.113.5", 0);
    sluice_addr_parse(&e->relay6, "2001:db8::5", 0);
    e->cfg.relay_ip4 = e->relay4;
    e->cfg.relay_ip6 = e->relay6;
    e->cfg.port_min = 50000;
    e->cfg.port_max = 50999;
    e->cfg.users = users;
    e->cfg.n_users = 2;
    e->cfg.rest_secrets = secrets;
    e->cfg.n_rest_secrets = 2;
    e->cfg.unix_time_s = 1700000000;
    e->cfg.max_allocations = 64;
    e->cfg.rng.fill = sluice_test_rng_fill;
    e->cfg.rng.ctx = &rng;
}

static inline void srv_start(struct srv_env *e)
{
    int err = 1;
    e->srv = sluice_turn_server_new(&e->cfg, &err);
    CHECK(e->srv != NULL);
    CHECK_EQ(err, 0);
}

static inline void srv_init(struct srv_env *e)
{
    memset(e, 0, sizeof *e);
    sluice_test_rng_init(&rng, 11);
    e->now = 5000 * S;
    sluice_addr_parse(&e->listen4, "192.0.2.10:3478", 0);
    sluice_addr_parse(&e->listen6, "[2001:db8::10]:3478", 0);
    srv_config(e);
    srv_start(e);
}

static inline void drain_events(struct srv_env *e)
{
    sluice_turn_server_event ev;
    while (sluice_turn_server_poll_event(e->srv, &ev)) {
        if (ev.type == SLUICE_TURN_SERVER_EVENT_OPEN_RELAY) {
            e->opens++;
            if (e->fail_next_bind) {
                e->fail_next_bind = false;
                CHECK_EQ(sluice_turn_server_relay_failed(e->srv, e->now, &ev.relay), 0);
                continue;
            }
            for (size_t i = 0; i < e->n_open; i++)
                CHECK(!sluice_addr_equal(&e->open[i], &ev.relay));
            if (e->n_open < 4096)
                e->open[e->n_open++] = ev.relay;
        } else {
            CHECK_EQ(ev.type, SLUICE_TURN_SERVER_EVENT_CLOSE_RELAY);
            e->closes++;
            bool found = false;
            for (size_t i = 0; i < e->n_open; i++)
                if (sluice_addr_equal(&e->open[i], &ev.relay)) {
                    e->open[i] = e->open[--e->n_open];
                    found = true;
                    break;
                }
            CHECK(found);
        }
    }
}

static inline bool relay_is_open(struct srv_env *e, const sluice_addr *a)
{
    for (size_t i = 0; i < e->n_open; i++)
        if (sluice_addr_equal(&e->open[i], a))
            return true;
    return false;
}

/* Client input; data for a peer lands in e->rx. */
static inline int to_server(struct srv_env *e, const sluice_turn_server_flow *f, const uint8_t *d,
                            size_t n)
{
    sluice_turn_server_transmit out;
    const uint8_t *p;
    size_t pl;
    int r = sluice_turn_server_handle_client(e->srv, e->now, f, d, n, &out, &p, &pl);
    if (r == 1) {
        CHECK_EQ(out.direction, SLUICE_TURN_SERVER_TO_PEER);
        CHECK(relay_is_open(e, &out.relay));
        CHECK(p >= d && p + pl <= d + n); /* a view, no copy */
        if (e->n_rx < 32 && pl <= 2048) {
            struct peer_rx *x = &e->rx[e->n_rx++];
            x->relay = out.relay;
            x->peer = out.peer;
            memcpy(x->data, p, pl);
            x->len = pl;
        }
    }
    drain_events(e);
    return r;
}

/* Move virtual time on by secs seconds and run the sweep. */
static inline void srv_advance(struct srv_env *e, uint64_t secs)
{
    e->now += secs * S;
    sluice_turn_server_handle_timeout(e->srv, e->now);
    drain_events(e);
}

static inline void srv_free(struct srv_env *e)
{
    sluice_turn_server_free(e->srv);
}

/* ------------------------------------------------------------------------ */
/* Raw requests, signed with MD5 long-term keys (no algorithm negotiation
 * attributes: RFC 8489 §9.2.4 then means MD5). */

struct msgb {
    sluice_stun_writer w;
    uint8_t buf[1500];
    uint8_t txid[12];
};

static uint32_t txid_counter;

static inline void req_begin(struct msgb *b, uint16_t method)
{
    memset(b->txid, 0, 12);
    b->txid[0] = 0x77;
    b->txid[8] = (uint8_t)(++txid_counter >> 8);
    b->txid[11] = (uint8_t)txid_counter;
    sluice_stun_writer_init(&b->w, b->buf, sizeof b->buf,
                            sluice_stun_type(method, SLUICE_STUN_REQUEST), b->txid);
}

static inline void req_sign(struct msgb *b, const char *user, const char *pw, const char *nonce)
{
    sluice_stun_key k;
    sluice_stun_key_long_term(&k, SLUICE_STUN_PWALG_MD5, user, strlen(user), "example.org", 11, pw,
                              strlen(pw));
    sluice_stun_put_string(&b->w, SLUICE_STUN_ATTR_USERNAME, user, strlen(user));
    sluice_stun_put_string(&b->w, SLUICE_STUN_ATTR_REALM, "example.org", 11);
    sluice_stun_put_string(&b->w, SLUICE_STUN_ATTR_NONCE, nonce, strlen(nonce));
    sluice_stun_put_integrity(&b->w, &k);
    sluice_stun_put_fingerprint(&b->w);
}

struct resp {
    uint8_t buf[2048];
    int len;
    sluice_stun_msg m;
    int code; /* 0 success, -1 none */
};

static inline void get_resp(struct srv_env *e, struct resp *r)
{
    sluice_turn_server_transmit tx;
    r->code = -1;
    r->len = sluice_turn_server_poll_transmit(e->srv, e->now, r->buf, sizeof r->buf, &tx);
    if (r->len <= 0)
        return;
    CHECK_EQ(tx.direction, SLUICE_TURN_SERVER_TO_CLIENT);
    CHECK_EQ(sluice_stun_parse(&r->m, r->buf, (size_t)r->len), 0);
    CHECK(sluice_stun_has(&r->m, SLUICE_STUN_ATTR_SOFTWARE));
    if (r->m.cls == SLUICE_STUN_SUCCESS)
        r->code = 0;
    else
        sluice_stun_get_error_code(&r->m, &r->code, NULL, NULL);
}

static inline int send_msg(struct srv_env *e, const sluice_turn_server_flow *f, struct msgb *b,
                           struct resp *r)
{
    int n = sluice_stun_writer_result(&b->w);
    CHECK(n > 0);
    to_server(e, f, b->buf, (size_t)n);
    get_resp(e, r);
    return r->code;
}

/* The nonce a 401 gives to flow's client. */
static inline void get_nonce(struct srv_env *e, const sluice_turn_server_flow *f, char nonce[128])
{
    struct msgb b;
    struct resp r;
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    CHECK_EQ(send_msg(e, f, &b, &r), 401);
    const uint8_t *n;
    size_t nl = 0;
    CHECK_EQ(sluice_stun_get_bytes(&r.m, SLUICE_STUN_ATTR_NONCE, &n, &nl), 0);
    CHECK(nl < 128);
    memcpy(nonce, n, nl);
    nonce[nl] = 0;
}

static inline void flow_udp(sluice_turn_server_flow *f, const char *client,
                            const sluice_addr *local)
{
    memset(f, 0, sizeof *f);
    sluice_addr_parse(&f->client, client, 0);
    f->local = *local;
    f->transport = SLUICE_TRANSPORT_UDP;
}

/* Allocate (IPv4 unless fam given) as user; returns the code. */
static inline int raw_allocate(struct srv_env *e, const sluice_turn_server_flow *f,
                               const char *user, const char *pw, uint8_t fam, uint8_t addfam,
                               struct resp *r)
{
    char nonce[128];
    struct msgb b;
    get_nonce(e, f, nonce);
    req_begin(&b, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&b.w, 17);
    if (fam)
        sluice_stun_put_address_family(&b.w, SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY, fam);
    if (addfam)
        sluice_stun_put_address_family(&b.w, SLUICE_STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY, addfam);
    req_sign(&b, user, pw, nonce);
    return send_msg(e, f, &b, r);
}

static inline int raw_perm(struct srv_env *e, const sluice_turn_server_flow *f, const char *user,
                           const char *pw, const char *const *peers, size_t n)
{
    char nonce[128];
    struct msgb b;
    struct resp r;
    get_nonce(e, f, nonce);
    req_begin(&b, SLUICE_STUN_CREATE_PERMISSION);
    for (size_t i = 0; i < n; i++) {
        sluice_addr p;
        CHECK_EQ(sluice_addr_parse(&p, peers[i], 0), 0);
        sluice_stun_put_xor_address(&b.w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &p);
    }
    req_sign(&b, user, pw, nonce);
    return send_msg(e, f, &b, &r);
}

static inline int raw_chan(struct srv_env *e, const sluice_turn_server_flow *f, uint16_t ch,
                           const char *peer)
{
    char nonce[128];
    struct msgb b;
    struct resp r;
    sluice_addr p;
    get_nonce(e, f, nonce);
    req_begin(&b, SLUICE_STUN_CHANNEL_BIND);
    sluice_stun_put_channel_number(&b.w, ch);
    CHECK_EQ(sluice_addr_parse(&p, peer, 0), 0);
    sluice_stun_put_xor_address(&b.w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &p);
    req_sign(&b, "alice", "secret", nonce);
    return send_msg(e, f, &b, &r);
}

static inline int raw_refresh(struct srv_env *e, const sluice_turn_server_flow *f, const char *user,
                              const char *pw, int64_t lifetime, struct resp *r)
{
    char nonce[128];
    struct msgb b;
    get_nonce(e, f, nonce);
    req_begin(&b, SLUICE_STUN_REFRESH);
    if (lifetime >= 0)
        sluice_stun_put_u32(&b.w, SLUICE_STUN_ATTR_LIFETIME, (uint32_t)lifetime);
    req_sign(&b, user, pw, nonce);
    return send_msg(e, f, &b, r);
}

static inline sluice_addr relayed_of(const struct resp *r, int which)
{
    sluice_stun_attr_iter it;
    sluice_stun_attr a;
    sluice_addr out;
    memset(&out, 0, sizeof out);
    int i = 0;
    sluice_stun_attr_iter_init(&it, &r->m);
    while (sluice_stun_attr_next(&it, &a))
        if (a.type == SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS && i++ == which)
            sluice_stun_decode_xor_address(&r->m, &a, &out);
    return out;
}

/* A peer datagram into the relay; returns what the client gets. */
static inline int from_peer(struct srv_env *e, const sluice_addr *relay, const char *peer,
                            const void *d, size_t n, uint8_t *out, size_t cap,
                            sluice_turn_server_transmit *tx)
{
    sluice_addr p;
    sluice_addr_parse(&p, peer, 0);
    return sluice_turn_server_handle_peer(e->srv, e->now, relay, &p, d, n, out, cap, tx);
}

/* TURN REST password: base64(HMAC-SHA1(secret, username)), computed
 * independently of the server with OpenSSL. */
static inline void rest_password_real(const char *secret, const char *user, char out[64])
{
    unsigned char mac[20];
    unsigned int ml = 0;
    HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)user, strlen(user), mac,
         &ml);
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < 18; i += 3) {
        uint32_t v = (uint32_t)mac[i] << 16 | (uint32_t)mac[i + 1] << 8 | mac[i + 2];
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = t[(v >> 6) & 63];
        out[o++] = t[v & 63];
    }
    uint32_t v = (uint32_t)mac[18] << 16 | (uint32_t)mac[19] << 8;
    out[o++] = t[v >> 18];
    out[o++] = t[(v >> 12) & 63];
    out[o++] = t[(v >> 6) & 63];
    out[o++] = '=';
    out[o] = 0;
}

#endif
