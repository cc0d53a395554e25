/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the TURN server core: records drive a server from a
 * few clients (UDP and TCP flows) and peers — raw datagrams, requests
 * signed with a valid user's key and nonce (so they get past auth), peer
 * data, time jumps, closes, bind failures, drain mode, a shared quota
 * table — checking the contract. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/sluice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(what)                                                                                 \
    do {                                                                                           \
        fprintf(stderr, "fuzz_turn_server: %s:%d: broken promise: %s\n", __FILE__, __LINE__,      \
                what);                                                                             \
        abort();                                                                                   \
    } while (0)

#define NCLIENT 3
#define NOPEN 64

struct st {
    sluice_turn_server *s;
    uint64_t now;
    sluice_turn_server_flow flows[NCLIENT];
    char nonce[NCLIENT][128];
    sluice_addr open[NOPEN];
    size_t n_open;
    sluice_stun_key key;
    uint32_t txn;
    bool draining;
};

struct in {
    const uint8_t *p;
    size_t n;
};

static uint8_t byte(struct in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static size_t take(struct in *in, size_t want, const uint8_t **out)
{
    if (want > in->n)
        want = in->n;
    *out = in->p;
    in->p += want;
    in->n -= want;
    return want;
}

static void drain(struct st *t)
{
    sluice_turn_server_event ev;
    for (int i = 0; i < 100000 && sluice_turn_server_poll_event(t->s, &ev); i++) {
        if (ev.type == SLUICE_TURN_SERVER_EVENT_OPEN_RELAY) {
            if (t->n_open < NOPEN)
                t->open[t->n_open++] = ev.relay;
        } else if (ev.type == SLUICE_TURN_SERVER_EVENT_CLOSE_RELAY) {
            for (size_t k = 0; k < t->n_open; k++)
                if (sluice_addr_equal(&t->open[k], &ev.relay)) {
                    t->open[k] = t->open[--t->n_open];
                    break;
                }
        } else {
            FAIL("event type");
        }
    }
    uint8_t buf[700];
    sluice_turn_server_transmit tx;
    int n;
    for (int i = 0; i < 1000; i++) {
        n = sluice_turn_server_poll_transmit(t->s, t->now, buf, sizeof buf, &tx);
        if (n < 0)
            FAIL("poll_transmit error with a 700-byte buffer");
        if (n == 0)
            break;
        if ((size_t)n > sizeof buf)
            FAIL("poll_transmit overran");
        if (tx.direction != SLUICE_TURN_SERVER_TO_CLIENT)
            FAIL("answer not to a client");
        sluice_stun_msg m;
        int pr = sluice_stun_parse(&m, buf, (size_t)n);
        if (pr == SLUICE_ERR_NOT_STUN) {
            /* An answer to an RFC 3489 Binding request (RFC 8489 §11.2):
             * the client's cookie field, a Binding success or error
             * response whose length field covers the rest. */
            uint16_t type = (uint16_t)(buf[0] << 8 | buf[1]);
            if (n < 20 || (type != 0x0101 && type != 0x0111) ||
                (buf[2] << 8 | buf[3]) != n - 20)
                FAIL("server sent an invalid RFC 3489 answer");
            continue;
        }
        if (pr != 0)
            FAIL("server sent an invalid STUN message");
        /* keep the latest nonce of a challenged client */
        const uint8_t *nv;
        size_t nl;
        for (int c = 0; c < NCLIENT; c++)
            if (sluice_addr_equal(&tx.flow.client, &t->flows[c].client) &&
                sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_NONCE, &nv, &nl) == 0 && nl < 128) {
                memcpy(t->nonce[c], nv, nl);
                t->nonce[c][nl] = 0;
            }
    }
    uint64_t next = sluice_turn_server_next_timeout(t->s);
    (void)next;
}

static void client_input(struct st *t, int c, const uint8_t *d, size_t n)
{
    sluice_turn_server_transmit tx;
    const uint8_t *p = NULL;
    size_t pl = 0;
    int r = sluice_turn_server_handle_client(t->s, t->now, &t->flows[c], d, n, &tx, &p, &pl);
    if (r < 0 || r > 1)
        FAIL("handle_client result");
    if (r == 1 && (tx.direction != SLUICE_TURN_SERVER_TO_PEER || p < d || p + pl > d + n))
        FAIL("relayed payload is not a view of the input");
}

/* A request with fuzzed attributes, signed as alice with the nonce the
 * server last gave this client. */
static void signed_request(struct st *t, int c, struct in *in)
{
    static const uint16_t methods[] = {SLUICE_STUN_ALLOCATE, SLUICE_STUN_REFRESH,
                                       SLUICE_STUN_CREATE_PERMISSION, SLUICE_STUN_CHANNEL_BIND,
                                       SLUICE_STUN_BINDING, 0x00A};
    uint8_t buf[1500], txid[12] = {0};
    sluice_stun_writer w;
    uint8_t mi = byte(in);
    uint16_t method = methods[mi % 6];
    txid[0] = (uint8_t)c;
    txid[11] = (uint8_t)++t->txn;
    txid[10] = (uint8_t)(t->txn >> 8);
    if (mi & 0x80) /* a retransmission: the previous transaction ID */
        txid[11]--;
    sluice_stun_writer_init(&w, buf, sizeof buf, sluice_stun_type(method, SLUICE_STUN_REQUEST),
                            txid);
    if (method == SLUICE_STUN_ALLOCATE && (mi & 0x40))
        sluice_stun_put_requested_transport(&w, 17);
    unsigned nattr = byte(in) % 6;
    for (unsigned i = 0; i < nattr; i++) {
        uint8_t kind = byte(in);
        if (kind < 128) {
            /* an address attribute with a chosen peer */
            sluice_addr a;
            uint8_t ip[16];
            const uint8_t *v;
            memset(ip, 0, sizeof ip);
            size_t got = take(in, (kind & 1) ? 16 : 4, &v);
            memcpy(ip, v, got);
            if (kind & 1)
                sluice_addr_set_ipv6(&a, ip, (uint16_t)(1000 + kind));
            else
                sluice_addr_set_ipv4(&a, ip, (uint16_t)(1000 + kind));
            sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &a);
        } else if (kind < 160) {
            sluice_stun_put_channel_number(&w, (uint16_t)(0x3FFE + (kind & 31)));
        } else {
            static const uint16_t types[] = {SLUICE_STUN_ATTR_LIFETIME,
                                             SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY,
                                             SLUICE_STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY,
                                             SLUICE_STUN_ATTR_EVEN_PORT,
                                             SLUICE_STUN_ATTR_RESERVATION_TOKEN,
                                             SLUICE_STUN_ATTR_DONT_FRAGMENT,
                                             SLUICE_STUN_ATTR_REQUESTED_TRANSPORT,
                                             0x0077};
            const uint8_t *v;
            size_t len = take(in, byte(in) % 9, &v);
            sluice_stun_put(&w, types[kind & 7], v, len);
        }
    }
    if (!(mi & 0x20)) {
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, "alice", 5);
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, "example.org", 11);
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, t->nonce[c], strlen(t->nonce[c]));
        sluice_stun_put_integrity(&w, &t->key);
    }
    sluice_stun_put_fingerprint(&w);
    int n = sluice_stun_writer_result(&w);
    if (n > 0)
        client_input(t, c, buf, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sluice_test_rng rng;
    static const sluice_turn_server_user users[] = {{.name = "alice", .password = "secret"}};
    static const char *secrets[] = {"s1"};
    struct st t;
    sluice_turn_server_config cfg;
    sluice_turn_quota *quota = NULL;

    memset(&t, 0, sizeof t);
    sluice_test_rng_init(&rng, 1);
    sluice_turn_server_config_init(&cfg);
    cfg.realm = "example.org";
    cfg.software = "fuzz";
    sluice_addr_parse(&cfg.relay_ip4, "203.0.113.5", 0);
    sluice_addr_parse(&cfg.relay_ip6, "2001:db8::5", 0);
    cfg.port_min = 50000;
    cfg.port_max = 50015; /* small: exhaustion is reachable */
    cfg.users = users;
    cfg.n_users = 1;
    cfg.rest_secrets = secrets;
    cfg.n_rest_secrets = 1;
    cfg.unix_time_s = 1700000000;
    cfg.n_password_algorithms = size & 1 ? 2 : 0;
    cfg.max_allocations = 4;
    cfg.max_allocations_per_user = 3;
    cfg.max_permissions = 2;
    cfg.max_channels = 2;
    cfg.max_reservations = 2;
    cfg.max_pending_transmits = 4;
    cfg.bandwidth_bytes_per_s = size & 2 ? 500 : 0;
    cfg.challenge_table_size = 4;
    cfg.rng.fill = sluice_test_rng_fill;
    cfg.rng.ctx = &rng;
    if (size & 4) {
        /* one slot window of 32 in a 64-slot table, shared with nobody */
        quota = sluice_turn_quota_new(1, &cfg.rng, NULL, NULL);
        if (!quota)
            FAIL("quota_new");
        cfg.shared_quota = quota;
    }
    if (size & 8) {
        sluice_addr_parse(&cfg.alternate_server4, "198.51.100.99:3478", 0);
        cfg.alternate_tls_port = 5349;
        cfg.alternate_domain = "alt.example.org";
    }
    t.s = sluice_turn_server_new(&cfg, NULL);
    if (!t.s)
        FAIL("server_new");
    sluice_stun_key_long_term(&t.key, SLUICE_STUN_PWALG_MD5, "alice", 5, "example.org", 11,
                              "secret", 6);
    t.now = 1000000000ull;
    const char *clients[NCLIENT] = {"198.51.100.7:40000", "[2001:db8:1::7]:40000",
                                    "198.51.100.8:40001"};
    for (int c = 0; c < NCLIENT; c++) {
        sluice_addr_parse(&t.flows[c].client, clients[c], 0);
        sluice_addr_parse(&t.flows[c].local, "192.0.2.10:3478", 0);
        t.flows[c].transport = c == 2 ? SLUICE_TRANSPORT_TCP : SLUICE_TRANSPORT_UDP;
        t.flows[c].conn_id = c == 2 ? 7 : 0;
        /* a first challenge gives every client a nonce */
        uint8_t req[28] = {0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42, 9, 9, 9, 9,
                           9,    9,    9,    9,    9,    9,    9,    (uint8_t)c,
                           0x00, 0x19, 0x00, 0x04, 17,   0,    0,    0};
        client_input(&t, c, req, sizeof req);
        drain(&t);
    }

    struct in in = {data, size};
    const char *peers[4] = {"198.51.100.20:5000", "[2001:db8:2::20]:6000", "127.0.0.1:1",
                            "198.51.100.21:7"};
    while (in.n) {
        uint8_t op = byte(&in);
        int c = (op >> 4) % NCLIENT;
        switch (op & 7) {
        case 0: { /* raw client datagram */
            const uint8_t *d;
            size_t n = take(&in, byte(&in) * 4u, &d);
            client_input(&t, c, d, n);
            break;
        }
        case 1:
        case 2:
            signed_request(&t, c, &in);
            break;
        case 3: { /* peer datagram */
            sluice_addr relay, peer;
            uint8_t k = byte(&in);
            if (t.n_open)
                relay = t.open[k % t.n_open];
            else
                sluice_addr_parse(&relay, "203.0.113.5:50000", 0);
            sluice_addr_parse(&peer, peers[(k >> 4) & 3], 0);
            const uint8_t *d;
            size_t n = take(&in, byte(&in), &d);
            uint8_t out[400];
            size_t cap = (k & 8) ? 16 : sizeof out;
            sluice_turn_server_transmit tx;
            int r = sluice_turn_server_handle_peer(t.s, t.now, &relay, &peer, d, n, out, cap, &tx);
            if (r > (int)cap || (r < 0 && r != SLUICE_ERR_NOSPACE))
                FAIL("handle_peer result");
            break;
        }
        case 4: /* time */
            t.now += (uint64_t)byte(&in) * 5000000ull;
            sluice_turn_server_handle_timeout(t.s, t.now);
            break;
        case 5:
            if (op & 8) {
                t.draining = !t.draining;
                sluice_turn_server_set_draining(t.s, t.draining);
            } else {
                sluice_turn_server_connection_closed(t.s, t.now, 7);
            }
            break;
        case 6:
            if (t.n_open)
                sluice_turn_server_relay_failed(t.s, t.now, &t.open[byte(&in) % t.n_open]);
            break;
        case 7: { /* ChannelData on a chosen channel */
            uint8_t cd[40] = {0x40, 0, 0, 8};
            cd[1] = byte(&in) & 3;
            client_input(&t, c, cd, 12);
            break;
        }
        }
        drain(&t);
        if (sluice_turn_server_next_timeout(t.s) < t.now &&
            sluice_turn_server_next_timeout(t.s) + 1000000 < t.now) {
            sluice_turn_server_handle_timeout(t.s, t.now);
            drain(&t);
        }
    }
    t.now += 4000ull * 1000000;
    sluice_turn_server_handle_timeout(t.s, t.now);
    drain(&t);
    sluice_turn_server_stats st;
    sluice_turn_server_get_stats(t.s, &st);
    if (st.allocations || st.permissions)
        FAIL("state left after every lifetime passed");
    if (sluice_turn_quota_held(quota) != 0)
        FAIL("quota counts left after every allocation ended");
    sluice_turn_server_free(t.s);
    sluice_turn_quota_free(quota);
    return 0;
}
