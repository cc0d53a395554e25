/* SPDX-License-Identifier: MIT */
/* The ICE scenario matrix on the simulator (issue 5): two sluice agents,
 * each behind {no NAT, full cone, restricted cone, port-restricted cone,
 * symmetric}, over IPv4, IPv6 or dual stack, with and without a TURN
 * server (sluice's own TURN core, which also answers STUN). Every scenario
 * states its expected outcome — direct, reflexive or relayed, and failure
 * only where no path exists — and measures setup time in virtual time.
 * Plus: 20% loss, role conflicts, consent loss after a NAT reboot and
 * recovery by ICE restart, relay-only over IPv6, and TURN over TCP and TLS
 * (streams modelled on the simulator, a TURN server core behind a stream
 * framer and a TLS endpoint): relayed sessions, media both ways, a stream
 * closed by the server mid-session and recovery by restart. Seeded: a
 * failing case replays bit for bit (TLS draws OpenSSL's own randomness). */
#include <stdio.h>
#include <unistd.h>

#include "common/tls.h"
#include "sim.h"
#include "sluice/ice.h"
#include "test.h"
#include "test_cert.h"
#include "turn/framing.h"

#define MS ((uint64_t)1000)
#define SEC ((uint64_t)1000000)

enum nat { N_NONE = -1, N_FULL = SIM_NAT_FULL_CONE, N_RESTR = SIM_NAT_RESTRICTED_CONE,
           N_PORT = SIM_NAT_PORT_RESTRICTED, N_SYM = SIM_NAT_SYMMETRIC };
enum fam { F_V4 = 1, F_V6 = 2, F_DUAL = 3 };
enum outcome { O_FAIL, O_DIRECT, O_RELAY };

static const char *nat_name(int n)
{
    switch (n) {
    case N_NONE: return "none";
    case N_FULL: return "full-cone";
    case N_RESTR: return "restricted";
    case N_PORT: return "port-restricted";
    case N_SYM: return "symmetric";
    }
    return "?";
}

static void ip(sluice_addr *a, const char *text)
{
    if (sluice_addr_parse(a, text, 0) != 0)
        abort();
}

/* ------------------------------------------------------------------------ */
/* Streams. The simulator carries datagrams; a TCP connection is modelled as
 * datagrams between two fixed transport addresses over lossless,
 * jitter-free links, which the simulator delivers in order (same delay,
 * ties in queue order), through NATs like any flow. The bytes are cut into
 * pieces of random size (from the seed, down to one byte), so both ends
 * reassemble frames from arbitrary splits. An empty datagram is the FIN.
 * There is no SYN: setup times leave out the TCP handshake's round trip. */

#define STREAM_PIECE_MAX 1400

static uint32_t piece_rng(uint64_t *st)
{
    *st = *st * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*st >> 33);
}

static void stream_send(sim_net *net, int host, uint64_t now, const sluice_addr *from,
                        const sluice_addr *to, const uint8_t *data, size_t len, uint64_t *rng)
{
    while (len) {
        size_t max = len < STREAM_PIECE_MAX ? len : STREAM_PIECE_MAX;
        /* mostly large pieces, one in four cut small */
        uint32_t r = piece_rng(rng);
        size_t n = (r & 3) ? max : 1 + (r >> 2) % (max < 7 ? max : 7);
        CHECK_EQ(sim_send(net, host, now, from, to, data, n), 0);
        data += n;
        len -= n;
    }
}

/* One end of a modelled connection on an agent: the stream (base, server,
 * transport) of the ICE contract and the local address that carries it. */
struct astream {
    sluice_addr base, server, local;
    sluice_transport transport;
    bool open;
};
#define AGENT_STREAMS 4

/* ------------------------------------------------------------------------ */
/* An ICE agent as a simulator endpoint. */

struct agent {
    sim_net *net;
    int host;
    sluice_ice_agent *ag;
    struct agent *peer; /* signalling: candidates go straight to the peer */
    int stream;
    bool connected, failed;
    uint64_t connected_at;
    int consent_lost;
    sluice_ice_candidate sel_local, sel_remote;
    size_t media_rx;
    char last_media[64];
    sluice_rng rng;
    struct astream streams[AGENT_STREAMS];
    uint16_t next_stream_port;
    uint64_t piece_rng;
    int server_errors, streams_closed;
    sluice_ice_event last_error;
};

static void flush(struct agent *a, uint64_t now);

static void got_media(struct agent *a, const sluice_ice_media *m)
{
    size_t n = m->len < sizeof a->last_media - 1 ? m->len : sizeof a->last_media - 1;
    memcpy(a->last_media, m->data, n);
    a->last_media[n] = '\0';
    a->media_rx++;
}

static struct astream *agent_stream(struct agent *a, const sluice_addr *base,
                                    const sluice_addr *server, sluice_transport tr, bool open)
{
    for (size_t i = 0; i < AGENT_STREAMS; i++) {
        struct astream *st = &a->streams[i];
        if (st->open && st->transport == tr && sluice_addr_equal(&st->base, base) &&
            sluice_addr_equal(&st->server, server))
            return st;
    }
    if (!open)
        return NULL;
    /* "connect": a new local port on the base's IP (port 0 in a driver) */
    for (size_t i = 0; i < AGENT_STREAMS; i++) {
        struct astream *st = &a->streams[i];
        if (st->open)
            continue;
        st->open = true;
        st->base = *base;
        st->server = *server;
        st->transport = tr;
        st->local = *base;
        st->local.port = a->next_stream_port++;
        return st;
    }
    CHECK(!"too many streams");
    return NULL;
}

/* Bytes out as the contract says: a datagram, or stream bytes. */
static void agent_out(struct agent *a, uint64_t now, const sluice_addr *source,
                      const sluice_addr *dest, sluice_transport tr, const uint8_t *data,
                      size_t len)
{
    if (tr == SLUICE_TRANSPORT_UDP) {
        CHECK_EQ(sim_send(a->net, a->host, now, source, dest, data, len), 0);
        return;
    }
    struct astream *st = agent_stream(a, source, dest, tr, true);
    if (st)
        stream_send(a->net, a->host, now, &st->local, dest, data, len, &a->piece_rng);
}

static void deliver(void *ctx, sim_net *net, uint64_t now, const sluice_addr *local,
                    const sluice_addr *remote, const uint8_t *data, size_t len)
{
    struct agent *a = ctx;
    sluice_ice_media m;
    (void)net;
    for (size_t i = 0; i < AGENT_STREAMS; i++) {
        struct astream *st = &a->streams[i];
        if (!st->open || !sluice_addr_equal(&st->local, local))
            continue;
        if (!len) { /* FIN from the server */
            st->open = false;
            CHECK_EQ(sluice_ice_agent_handle_stream_closed(a->ag, now, &st->base, &st->server,
                                                           st->transport), 0);
        } else {
            int rc = sluice_ice_agent_handle_stream(a->ag, now, &st->base, &st->server,
                                                    st->transport, data, len, &m);
            CHECK(rc >= 0);
            for (int guard = 0; rc == 1 && guard < 1000; guard++) {
                got_media(a, &m);
                rc = sluice_ice_agent_handle_stream(a->ag, now, &st->base, &st->server,
                                                    st->transport, NULL, 0, &m);
            }
        }
        flush(a, now);
        return;
    }
    int rc = sluice_ice_agent_handle_datagram(a->ag, now, local, remote, data, len, &m);
    CHECK(rc >= 0);
    if (rc == 1)
        got_media(a, &m);
    flush(a, now);
}

static void timeout(void *ctx, sim_net *net, uint64_t now)
{
    struct agent *a = ctx;
    (void)net;
    sluice_ice_agent_handle_timeout(a->ag, now);
    flush(a, now);
}

static uint64_t next_timeout(void *ctx)
{
    struct agent *a = ctx;
    return sluice_ice_agent_next_timeout(a->ag);
}

static const sim_endpoint_ops agent_ops = {deliver, timeout, next_timeout, NULL};

static void flush(struct agent *a, uint64_t now)
{
    uint8_t buf[2048];
    sluice_transmit meta;
    sluice_ice_event ev;
    int n;
    while ((n = sluice_ice_agent_poll_transmit(a->ag, now, buf, sizeof buf, &meta)) > 0)
        agent_out(a, now, &meta.source, &meta.destination, meta.transport, buf, (size_t)n);
    CHECK(n == 0);
    bool signalled = false;
    while (sluice_ice_agent_poll_event(a->ag, &ev)) {
        struct agent *p = a->peer;
        switch (ev.type) {
        case SLUICE_ICE_EVENT_LOCAL_CANDIDATE:
            sluice_ice_agent_add_remote_candidate(p->ag, now, p->stream, &ev.candidate);
            signalled = true;
            break;
        case SLUICE_ICE_EVENT_GATHERING_DONE:
            sluice_ice_agent_end_of_candidates(p->ag, now, p->stream);
            signalled = true;
            break;
        case SLUICE_ICE_EVENT_STATE:
            if (ev.state == SLUICE_ICE_CONNECTED && !a->connected) {
                a->connected = true;
                a->connected_at = now;
            }
            if (ev.state == SLUICE_ICE_FAILED)
                a->failed = true;
            break;
        case SLUICE_ICE_EVENT_SELECTED_PAIR:
            a->sel_local = ev.local;
            a->sel_remote = ev.remote;
            break;
        case SLUICE_ICE_EVENT_CONSENT_LOST:
            a->consent_lost++;
            break;
        case SLUICE_ICE_EVENT_SERVER_ERROR:
            a->server_errors++;
            a->last_error = ev;
            break;
        case SLUICE_ICE_EVENT_CLOSE_STREAM: {
            struct astream *st = agent_stream(a, &ev.base, &ev.server, ev.transport, false);
            CHECK(st != NULL);
            if (st) { /* FIN to the server */
                st->open = false;
                CHECK_EQ(sim_send(a->net, a->host, now, &st->local, &st->server, buf, 0), 0);
                a->streams_closed++;
            }
            break;
        }
        default:
            break;
        }
    }
    /* Signalling is input for the peer: it may have something to send now
     * (a TURN permission for the new candidate), and what is due is polled,
     * not announced by next_timeout (the core contract). */
    if (signalled) {
        flush(a->peer, now);
        sim_host_wake(a->net, a->peer->host);
    }
}

/* ------------------------------------------------------------------------ */
/* A TURN server that also listens on TCP and TLS: sluice's server core
 * behind the stream model above (frames cut with the RFC 8656 §12.5 rule,
 * TLS through the core's memory-BIO endpoint), UDP as sim_turn_server_add
 * does it. One connection per client address. */

#define SS_CONNS 8
#define SS_RELAYS 32

struct sconn {
    bool used;
    sluice_addr client;
    sluice_transport transport;
    uint64_t id;
    sluice_tls *tls;
    size_t rx_len;
    uint8_t rx[SLUICE_TURN_STREAM_FRAME_MAX];
};

struct sserver {
    sim_net *net;
    int host;
    sluice_turn_server *core;
    sluice_tls_server_ctx *tls_ctx;
    sluice_addr listen[3]; /* by transport */
    sluice_addr relays[SS_RELAYS];
    size_t n_relays;
    struct sconn conns[SS_CONNS];
    uint64_t next_id;
    uint64_t piece_rng;
    uint8_t buf[SLUICE_TURN_STREAM_FRAME_MAX + 64];
    uint8_t plain[20000];
};

static struct sconn *ss_conn_by_id(struct sserver *ss, uint64_t id)
{
    for (size_t i = 0; i < SS_CONNS; i++)
        if (ss->conns[i].used && ss->conns[i].id == id)
            return &ss->conns[i];
    return NULL;
}

static void ss_stream_out(struct sserver *ss, uint64_t now, struct sconn *c, const uint8_t *data,
                          size_t len)
{
    const sluice_addr *from = &ss->listen[c->transport];
    if (c->tls && len)
        CHECK_EQ(sluice_tls_write(c->tls, data, len), (int)len);
    if (!c->tls) {
        stream_send(ss->net, ss->host, now, from, &c->client, data, len, &ss->piece_rng);
        return;
    }
    int n;
    while ((n = sluice_tls_take_output(c->tls, ss->plain, sizeof ss->plain)) > 0)
        stream_send(ss->net, ss->host, now, from, &c->client, ss->plain, (size_t)n,
                    &ss->piece_rng);
}

/* The connection ends: the server sends its FIN and forgets it; the core
 * deletes the allocation (RFC 8656 §3.1). */
static void ss_close(struct sserver *ss, uint64_t now, struct sconn *c, bool send_fin)
{
    if (send_fin)
        CHECK_EQ(sim_send(ss->net, ss->host, now, &ss->listen[c->transport], &c->client, ss->buf,
                          0), 0);
    sluice_turn_server_connection_closed(ss->core, now, c->id);
    sluice_tls_free(c->tls);
    c->tls = NULL;
    c->used = false;
}

static void ss_out(struct sserver *ss, uint64_t now, const sluice_turn_server_transmit *tx,
                   const uint8_t *data, size_t len)
{
    struct sconn *c;
    if (tx->direction == SLUICE_TURN_SERVER_TO_PEER)
        CHECK_EQ(sim_send(ss->net, ss->host, now, &tx->relay, &tx->peer, data, len), 0);
    else if (tx->flow.transport == SLUICE_TRANSPORT_UDP)
        CHECK_EQ(sim_send(ss->net, ss->host, now, &tx->flow.local, &tx->flow.client, data, len),
                 0);
    else if ((c = ss_conn_by_id(ss, tx->flow.conn_id)))
        ss_stream_out(ss, now, c, data, len);
}

static void ss_drain(struct sserver *ss, uint64_t now)
{
    sluice_turn_server_event ev;
    sluice_turn_server_transmit tx;
    int n;
    while (sluice_turn_server_poll_event(ss->core, &ev)) {
        if (ev.type == SLUICE_TURN_SERVER_EVENT_OPEN_RELAY) {
            if (ss->n_relays < SS_RELAYS)
                ss->relays[ss->n_relays++] = ev.relay;
            else
                sluice_turn_server_relay_failed(ss->core, now, &ev.relay);
        } else if (ev.type == SLUICE_TURN_SERVER_EVENT_CLOSE_RELAY) {
            for (size_t i = 0; i < ss->n_relays; i++)
                if (sluice_addr_equal(&ss->relays[i], &ev.relay)) {
                    ss->relays[i] = ss->relays[--ss->n_relays];
                    break;
                }
        }
    }
    while ((n = sluice_turn_server_poll_transmit(ss->core, now, ss->buf, sizeof ss->buf, &tx)) > 0)
        ss_out(ss, now, &tx, ss->buf, (size_t)n);
}

static void ss_client_input(struct sserver *ss, uint64_t now, const sluice_turn_server_flow *flow,
                            const uint8_t *data, size_t len)
{
    sluice_turn_server_transmit tx;
    const uint8_t *payload;
    size_t plen;
    if (sluice_turn_server_handle_client(ss->core, now, flow, data, len, &tx, &payload, &plen) == 1)
        ss_out(ss, now, &tx, payload, plen);
}

/* Plain bytes of connection c: cut into frames for the core. */
static void ss_stream_in(struct sserver *ss, uint64_t now, struct sconn *c, const uint8_t *data,
                         size_t len)
{
    sluice_turn_server_flow flow = {.client = c->client,
                                    .local = ss->listen[c->transport],
                                    .transport = c->transport,
                                    .conn_id = c->id};
    while (len) {
        size_t n = sizeof c->rx - c->rx_len < len ? sizeof c->rx - c->rx_len : len;
        memcpy(c->rx + c->rx_len, data, n);
        c->rx_len += n;
        data += n;
        len -= n;
        size_t off = 0;
        for (;;) {
            int fl = sluice_turn_frame_length(c->rx + off, c->rx_len - off);
            if (fl < 0) {
                CHECK(!"client sent an unframeable stream");
                ss_close(ss, now, c, true);
                return;
            }
            if (fl == 0 || (size_t)fl > c->rx_len - off)
                break;
            ss_client_input(ss, now, &flow, c->rx + off, (size_t)fl);
            off += (size_t)fl;
        }
        memmove(c->rx, c->rx + off, c->rx_len - off);
        c->rx_len -= off;
    }
}

static void ss_deliver(void *ctx, sim_net *net, uint64_t now, const sluice_addr *local,
                       const sluice_addr *remote, const uint8_t *data, size_t len)
{
    struct sserver *ss = ctx;
    sluice_turn_server_transmit tx;
    (void)net;
    if (sluice_addr_equal(local, &ss->listen[SLUICE_TRANSPORT_UDP])) {
        sluice_turn_server_flow flow = {.client = *remote, .local = *local};
        ss_client_input(ss, now, &flow, data, len);
    } else if (sluice_addr_equal(local, &ss->listen[SLUICE_TRANSPORT_TCP]) ||
               sluice_addr_equal(local, &ss->listen[SLUICE_TRANSPORT_TLS])) {
        sluice_transport tr = sluice_addr_equal(local, &ss->listen[SLUICE_TRANSPORT_TCP])
                                  ? SLUICE_TRANSPORT_TCP
                                  : SLUICE_TRANSPORT_TLS;
        struct sconn *c = NULL;
        for (size_t i = 0; i < SS_CONNS && !c; i++)
            if (ss->conns[i].used && ss->conns[i].transport == tr &&
                sluice_addr_equal(&ss->conns[i].client, remote))
                c = &ss->conns[i];
        if (!c && len) { /* accept */
            for (size_t i = 0; i < SS_CONNS && !c; i++)
                if (!ss->conns[i].used)
                    c = &ss->conns[i];
            CHECK(c != NULL);
            if (!c)
                return;
            c->used = true;
            c->client = *remote;
            c->transport = tr;
            c->id = ++ss->next_id;
            c->rx_len = 0;
            c->tls = tr == SLUICE_TRANSPORT_TLS ? sluice_tls_new_server(ss->tls_ctx, NULL) : NULL;
            CHECK(tr != SLUICE_TRANSPORT_TLS || c->tls);
        }
        if (!c)
            return;
        if (!len) {
            ss_close(ss, now, c, false);
        } else if (c->tls) {
            CHECK_EQ(sluice_tls_feed(c->tls, data, len), (int)len);
            int n;
            while ((n = sluice_tls_read(c->tls, ss->plain, sizeof ss->plain)) > 0 && c->used)
                ss_stream_in(ss, now, c, ss->plain, (size_t)n);
            CHECK(n >= 0);
            if (c->used)
                ss_stream_out(ss, now, c, NULL, 0); /* handshake records */
        } else {
            ss_stream_in(ss, now, c, data, len);
        }
    } else {
        for (size_t i = 0; i < ss->n_relays; i++) {
            if (!sluice_addr_equal(&ss->relays[i], local))
                continue;
            int n = sluice_turn_server_handle_peer(ss->core, now, local, remote, data, len,
                                                   ss->buf, sizeof ss->buf, &tx);
            if (n > 0)
                ss_out(ss, now, &tx, ss->buf, (size_t)n);
            break;
        }
    }
    ss_drain(ss, now);
}

static void ss_timeout(void *ctx, sim_net *net, uint64_t now)
{
    struct sserver *ss = ctx;
    (void)net;
    sluice_turn_server_handle_timeout(ss->core, now);
    ss_drain(ss, now);
}

static uint64_t ss_next_timeout(void *ctx)
{
    struct sserver *ss = ctx;
    return sluice_turn_server_next_timeout(ss->core);
}

static void ss_destroy(void *ctx)
{
    struct sserver *ss = ctx;
    for (size_t i = 0; i < SS_CONNS; i++)
        sluice_tls_free(ss->conns[i].tls);
    sluice_tls_server_ctx_free(ss->tls_ctx);
    sluice_turn_server_free(ss->core);
    free(ss);
}

static const sim_endpoint_ops sserver_ops = {ss_deliver, ss_timeout, ss_next_timeout, ss_destroy};

/* Certificate and key for the TLS listener (tests/common/test_cert.h:
 * DNS:localhost, IP:127.0.0.1), made once in a temporary directory. */
static char cert_dir[] = "/tmp/sluice-sim-ice-XXXXXX";
static char cert_path[64], key_path[64];
static bool have_cert;

/* ------------------------------------------------------------------------ */
/* A world: server host, two agents behind their NATs. */

struct world {
    sim_net *net;
    struct agent a, b;
    int realm_a, realm_b;
    bool turn;
    struct sserver *ss; /* the stream-capable server, when used */
    int srv_host;
};

static sluice_turn_server_user turn_user = {.name = "user", .password = "pass"};

/* The server at 203.0.113.1 (and 2001:db8:ffff::1 without streams):
 * STUN and TURN over UDP on 3478; with streams (IPv4 only) TURN over TCP
 * on 3479 and TLS on 5349 too. */
static void add_server(struct world *w, bool streams)
{
    sluice_addr l[2], r4, r6;
    int h = sim_host_add(w->net, "server");
    w->srv_host = h;
    ip(&r4, "203.0.113.1");
    ip(&r6, "2001:db8:ffff::1");
    CHECK_EQ(sim_host_add_addr(w->net, h, SIM_REALM_INTERNET, &r4), 0);
    CHECK_EQ(sim_host_add_addr(w->net, h, SIM_REALM_INTERNET, &r6), 0);
    ip(&l[0], "203.0.113.1:3478");
    ip(&l[1], "[2001:db8:ffff::1]:3478");
    sluice_turn_server_config sc;
    sim_turn_server_config_init(&sc, &r4, &r6);
    sc.users = &turn_user;
    sc.n_users = 1;
    if (!streams) {
        CHECK_EQ(sim_turn_server_add(w->net, h, l, 2, &sc), 0);
        return;
    }
    struct sserver *ss = calloc(1, sizeof *ss);
    sluice_tls_config tc;
    ss->net = w->net;
    ss->host = h;
    ss->piece_rng = sim_seed(w->net) ^ 0x5EC0DE;
    sc.rng = sim_host_rng(w->net, h);
    ss->core = sluice_turn_server_new(&sc, NULL);
    CHECK(ss->core != NULL);
    sluice_tls_config_init(&tc);
    tc.server = true;
    tc.cert_file = cert_path;
    tc.key_file = key_path;
    ss->tls_ctx = sluice_tls_server_ctx_new(&tc, NULL);
    CHECK(ss->tls_ctx != NULL);
    ip(&ss->listen[SLUICE_TRANSPORT_UDP], "203.0.113.1:3478");
    ip(&ss->listen[SLUICE_TRANSPORT_TCP], "203.0.113.1:3479");
    ip(&ss->listen[SLUICE_TRANSPORT_TLS], "203.0.113.1:5349");
    CHECK_EQ(sim_host_set_endpoint(w->net, h, &sserver_ops, ss), 0);
    w->ss = ss;
}

/* Host for one agent: behind nat (or on the internet), with IPv4/IPv6. */
static void add_agent(struct world *w, struct agent *ag, const char *name, int nat, int fam,
                      int idx, bool controlling)
{
    char text[64];
    sluice_addr v4, v6, pub;
    int realm = SIM_REALM_INTERNET;
    ag->net = w->net;
    ag->host = sim_host_add(w->net, name);
    ag->next_stream_port = 41000;
    ag->piece_rng = sim_seed(w->net) + (uint64_t)idx;
    CHECK(ag->host >= 0);
    if (nat != N_NONE) {
        sim_nat_config nc;
        sim_nat_config_init(&nc, (sim_nat_type)nat);
        snprintf(text, sizeof text, "198.51.100.%d", idx);
        ip(&pub, text);
        realm = sim_nat_add(w->net, SIM_REALM_INTERNET, &pub, 1, &nc);
        CHECK(realm > 0);
        snprintf(text, sizeof text, "10.0.%d.2", idx);
    } else {
        snprintf(text, sizeof text, "192.0.2.%d", idx);
    }
    if (idx == 1)
        w->realm_a = realm;
    else
        w->realm_b = realm;

    sluice_ice_config cfg;
    sluice_ice_config_init(&cfg);
    cfg.controlling = controlling;
    ag->rng = sim_host_rng(w->net, ag->host);
    cfg.rng = ag->rng;
    ag->ag = sluice_ice_agent_new(&cfg, NULL);
    CHECK(ag->ag != NULL);
    ag->stream = sluice_ice_agent_add_stream(ag->ag, 1);
    if (fam & F_V4) {
        ip(&v4, text);
        CHECK_EQ(sim_host_add_addr(w->net, ag->host, realm, &v4), 0);
        v4.port = 40000;
        CHECK_EQ(sluice_ice_agent_add_base(ag->ag, 0, ag->stream, 1, &v4), 0);
    }
    if (fam & F_V6) {
        /* IPv6 is global: no NAT (a typical dual-stack home). */
        snprintf(text, sizeof text, "2001:db8:%d::2", idx);
        ip(&v6, text);
        CHECK_EQ(sim_host_add_addr(w->net, ag->host, SIM_REALM_INTERNET, &v6), 0);
        v6.port = 40002;
        CHECK_EQ(sluice_ice_agent_add_base(ag->ag, 0, ag->stream, 1, &v6), 0);
    }
    sluice_addr s4, s6;
    ip(&s4, "203.0.113.1:3478");
    ip(&s6, "[2001:db8:ffff::1]:3478");
    CHECK_EQ(sluice_ice_agent_add_stun_server(ag->ag, &s4), 0);
    CHECK_EQ(sluice_ice_agent_add_stun_server(ag->ag, &s6), 0);
    if (w->turn) {
        sluice_ice_turn_server ts = {.server = s4, .transport = SLUICE_TRANSPORT_UDP,
                                     .username = "user", .password = "pass"};
        CHECK_EQ(sluice_ice_agent_add_turn_server(ag->ag, &ts), 0);
        ts.server = s6;
        CHECK_EQ(sluice_ice_agent_add_turn_server(ag->ag, &ts), 0);
    }
    CHECK_EQ(sim_host_set_endpoint(w->net, ag->host, &agent_ops, ag), 0);
}

/* SIM_TRACE=1 in the environment: every datagram on stderr. */
static void trace_line(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "%s\n", line);
}

static struct world *world_new_streams(uint64_t seed, int nat_a, int nat_b, int fam, bool turn,
                                       bool streams)
{
    struct world *w = calloc(1, sizeof *w);
    w->net = sim_net_new(seed);
    if (getenv("SIM_TRACE") && strcmp(getenv("SIM_TRACE"), "0") != 0)
        sim_set_trace(w->net, trace_line, NULL);
    w->turn = turn;
    add_server(w, streams);
    add_agent(w, &w->a, "a", nat_a, fam, 1, true);
    add_agent(w, &w->b, "b", nat_b, fam, 2, false);
    w->a.peer = &w->b;
    w->b.peer = &w->a;
    return w;
}

static struct world *world_new(uint64_t seed, int nat_a, int nat_b, int fam, bool turn)
{
    return world_new_streams(seed, nat_a, nat_b, fam, turn, false);
}

static void world_free(struct world *w)
{
    sim_net_free(w->net);
    sluice_ice_agent_free(w->a.ag);
    sluice_ice_agent_free(w->b.ag);
    free(w);
}

static void exchange_credentials(struct world *w, uint64_t now)
{
    const char *u, *p;
    sluice_ice_agent_local_credentials(w->a.ag, w->a.stream, &u, &p);
    CHECK_EQ(sluice_ice_agent_set_remote_credentials(w->b.ag, now, w->b.stream, u, p), 0);
    sluice_ice_agent_local_credentials(w->b.ag, w->b.stream, &u, &p);
    CHECK_EQ(sluice_ice_agent_set_remote_credentials(w->a.ag, now, w->a.stream, u, p), 0);
}

static void start(struct world *w)
{
    uint64_t now = sim_now(w->net);
    exchange_credentials(w, now);
    sluice_ice_agent_gather(w->a.ag, now);
    sluice_ice_agent_gather(w->b.ag, now);
    flush(&w->a, now);
    flush(&w->b, now);
    sim_host_wake(w->net, w->a.host);
    sim_host_wake(w->net, w->b.host);
}

static bool settled(void *ctx)
{
    struct world *w = ctx;
    return (w->a.connected && w->b.connected) || w->a.failed || w->b.failed;
}

/* Media both ways through the selected routes (ChannelData framed in
 * headroom as a driver would, or through sluice_ice_agent_send). */
static void send_media(struct world *w, struct agent *from, const char *text)
{
    sluice_ice_route r;
    uint8_t buf[256];
    size_t len = strlen(text);
    uint64_t now = sim_now(w->net);
    if (sluice_ice_agent_route(from->ag, from->stream, 1, &r) != 0) {
        CHECK(!"no route");
        return;
    }
    if (r.framing == SLUICE_ICE_FRAMING_CHANNEL) {
        /* RFC 8656 §12.5: padded to a multiple of 4 on a TCP stream */
        size_t total = r.pad ? (4 + len + 3) & ~(size_t)3 : 4 + len;
        CHECK(r.transport == (r.pad ? SLUICE_TRANSPORT_TCP : SLUICE_TRANSPORT_UDP));
        memset(buf, 0, sizeof buf);
        sluice_turn_channel_header(buf, r.channel, (uint16_t)len);
        memcpy(buf + 4, text, len);
        agent_out(from, now, &r.base, &r.destination, r.transport, buf, total);
        sluice_ice_agent_count_sent(from->ag, now, from->stream, 1, 1, len);
    } else if (r.framing == SLUICE_ICE_FRAMING_SEND) {
        sluice_transmit meta;
        int n = sluice_ice_agent_send(from->ag, now, from->stream, 1, (const uint8_t *)text, len,
                                      buf, sizeof buf, &meta);
        CHECK(n > 0);
        CHECK_EQ(meta.transport, r.transport);
        if (n > 0)
            agent_out(from, now, &meta.source, &meta.destination, meta.transport, buf, (size_t)n);
        flush(from, now); /* TLS output that did not fit */
    } else {
        CHECK_EQ(sim_send(w->net, from->host, now, &r.base, &r.destination,
                          (const uint8_t *)text, len), 0);
    }
}

static bool relayed(const struct agent *a)
{
    return a->sel_local.type == SLUICE_ICE_CAND_RELAY ||
           a->sel_remote.type == SLUICE_ICE_CAND_RELAY;
}

/* RFC 4787 hole punching: a direct IPv4 path exists unless one side maps
 * per destination (symmetric) and the other filters by port, or both are
 * symmetric. */
static enum outcome expect(int nat_a, int nat_b, int fam, bool turn)
{
    bool direct;
    if (fam & F_V6)
        direct = true; /* global IPv6 both sides */
    else if ((nat_a == N_SYM && (nat_b == N_PORT || nat_b == N_SYM)) ||
             (nat_b == N_SYM && (nat_a == N_PORT || nat_a == N_SYM)))
        direct = false;
    else
        direct = true;
    if (direct)
        return O_DIRECT;
    return turn ? O_RELAY : O_FAIL;
}

/* ------------------------------------------------------------------------ */

static uint64_t worst_setup_us[2]; /* [turn] */

static void run_scenario(int nat_a, int nat_b, int fam, bool turn, uint64_t seed)
{
    struct world *w = world_new(seed, nat_a, nat_b, fam, turn);
    enum outcome want = expect(nat_a, nat_b, fam, turn);
    uint64_t t0 = sim_now(w->net);
    char label[160];
    snprintf(label, sizeof label, "%s/%s %s%s", nat_name(nat_a), nat_name(nat_b),
             fam == F_V4 ? "v4" : fam == F_V6 ? "v6" : "dual", turn ? " +turn" : "");
    start(w);
    int rc = sim_run(w->net, t0 + 60 * SEC, settled, w);
    CHECK(rc >= 0);
    bool ok = w->a.connected && w->b.connected;
    enum outcome got = !ok ? O_FAIL : (relayed(&w->a) || relayed(&w->b)) ? O_RELAY : O_DIRECT;
    if (got != want) {
        char l[160] = "", r[160] = "";
        sluice_ice_candidate_format(&w->a.sel_local, l, sizeof l);
        sluice_ice_candidate_format(&w->a.sel_remote, r, sizeof r);
        fprintf(stderr, "# %s: expected %d got %d (a: %s -> %s)\n", label, want, got, l, r);
    }
    CHECK_EQ(got, want);
    if (ok) {
        uint64_t setup = (w->a.connected_at > w->b.connected_at ? w->a.connected_at
                                                                : w->b.connected_at) - t0;
        if (setup > worst_setup_us[turn])
            worst_setup_us[turn] = setup;
        printf("# %-40s %-7s %4" PRIu64 " ms (%s/%s)\n", label,
               got == O_RELAY ? "relay" : "direct", setup / MS,
               sluice_ice_cand_type_name(w->a.sel_local.type),
               sluice_ice_cand_type_name(w->a.sel_remote.type));
        /* Both agents agree on the pair: what a sees locally b sees as remote
         * (the base for reflexive candidates, so compare types only when
         * relayed). */
        CHECK_EQ(relayed(&w->a), relayed(&w->b));
        /* Media both ways. */
        sim_run_until(w->net, sim_now(w->net) + 500 * MS);
        send_media(w, &w->a, "media from a");
        send_media(w, &w->b, "media from b");
        sim_run_until(w->net, sim_now(w->net) + 500 * MS);
        CHECK_EQ(w->a.media_rx, 1);
        CHECK_EQ(w->b.media_rx, 1);
    } else {
        printf("# %-40s failed as expected at %" PRIu64 " ms\n", label,
               (sim_now(w->net) - t0) / MS);
        /* Failure is reported, not silent. */
        CHECK(w->a.failed || w->b.failed);
    }
    world_free(w);
}

/* RFC 8445 §8.3.1: three seconds after a stream completes, the TURN
 * allocations no selected pair uses are deleted on the server; the one a
 * relayed route uses stays, and media keeps flowing. */
static uint64_t server_allocations(struct world *w)
{
    sluice_turn_server_stats st;
    sluice_turn_server_get_stats(sim_turn_server_core(w->net, w->srv_host), &st);
    return st.allocations;
}

static uint64_t freed(const struct agent *a)
{
    sluice_ice_stats st;
    sluice_ice_agent_get_stats(a->ag, &st);
    return st.allocations_freed;
}

static bool both_completed(void *ctx)
{
    struct world *w = ctx;
    return sluice_ice_agent_state(w->a.ag, 1) == SLUICE_ICE_COMPLETED &&
           sluice_ice_agent_state(w->b.ag, 1) == SLUICE_ICE_COMPLETED;
}

static void free_case(int nat_a, int nat_b, uint64_t seed, uint64_t keep)
{
    struct world *w = world_new(seed, nat_a, nat_b, F_V4, true);
    uint64_t t0 = sim_now(w->net);
    start(w);
    CHECK(sim_run(w->net, t0 + 30 * SEC, settled, w) == 1);
    CHECK(w->a.connected && w->b.connected);
    CHECK_EQ(server_allocations(w), 2);
    /* Completed once the higher-priority pairs still in progress are done
     * (they may take their whole retransmission schedule, 15.5 s). */
    CHECK(sim_run(w->net, sim_now(w->net) + 30 * SEC, both_completed, w) == 1);
    uint64_t done_at = sim_now(w->net);
    sim_run_until(w->net, done_at + 2 * SEC);
    CHECK_EQ(server_allocations(w), 2); /* not before 3 s */
    sim_run_until(w->net, sim_now(w->net) + 2 * SEC);
    CHECK_EQ(server_allocations(w), keep);
    CHECK_EQ(freed(&w->a) + freed(&w->b), 2 - keep);
    /* Minutes later the kept one is still refreshed, the route works. */
    sim_run_until(w->net, sim_now(w->net) + 700 * SEC);
    CHECK_EQ(server_allocations(w), keep);
    send_media(w, &w->a, "media from a");
    send_media(w, &w->b, "media from b");
    sim_run_until(w->net, sim_now(w->net) + 500 * MS);
    CHECK_EQ(w->a.media_rx, 1);
    CHECK_EQ(w->b.media_rx, 1);
    printf("# %s/%s +turn: completed at %" PRIu64 " ms, then %" PRIu64
           " of 2 allocations kept 3 s later\n",
           nat_name(nat_a), nat_name(nat_b), (done_at - t0) / MS, keep);
    world_free(w);
}

static void test_free_unused_allocations(void)
{
    free_case(N_FULL, N_FULL, 31, 0); /* direct: neither is used */
    free_case(N_SYM, N_SYM, 32, 1);   /* relayed through one of them */
}

static const int nats[] = {N_NONE, N_FULL, N_RESTR, N_PORT, N_SYM};

static void test_matrix_v4(void)
{
    for (int turn = 0; turn < 2; turn++)
        for (size_t i = 0; i < 5; i++)
            for (size_t j = i; j < 5; j++)
                run_scenario(nats[i], nats[j], F_V4, turn, 100 + i * 10 + j);
    printf("# worst setup: %" PRIu64 " ms without TURN, %" PRIu64 " ms with\n",
           worst_setup_us[0] / MS, worst_setup_us[1] / MS);
}

static void test_matrix_v6_dual(void)
{
    for (int turn = 0; turn < 2; turn++) {
        run_scenario(N_NONE, N_NONE, F_V6, turn, 200 + turn);
        for (size_t i = 0; i < 5; i++)
            for (size_t j = i; j < 5; j++)
                run_scenario(nats[i], nats[j], F_DUAL, turn, 300 + i * 10 + j + 100 * turn);
    }
}

static void test_loss_20(void)
{
    /* 20% loss on both access links, port-restricted on both sides. */
    for (uint64_t seed = 1; seed <= 5; seed++) {
        struct world *w = world_new(seed, N_PORT, N_PORT, F_V4, false);
        sim_link l;
        sim_link_init(&l);
        l.loss = 0.2;
        sim_host_set_link(w->net, w->a.host, &l);
        sim_host_set_link(w->net, w->b.host, &l);
        uint64_t t0 = sim_now(w->net);
        start(w);
        CHECK(sim_run(w->net, t0 + 60 * SEC, settled, w) >= 0);
        CHECK(w->a.connected && w->b.connected);
        printf("# 20%% loss seed %" PRIu64 ": connected in %" PRIu64 " ms\n", seed,
               (sim_now(w->net) - t0) / MS);
        world_free(w);
    }
}

static void test_role_conflict_sim(void)
{
    struct world *w = world_new(7, N_FULL, N_SYM, F_V4, false);
    sluice_ice_agent_set_role(w->b.ag, true); /* both controlling */
    uint64_t t0 = sim_now(w->net);
    start(w);
    CHECK(sim_run(w->net, t0 + 30 * SEC, settled, w) >= 0);
    CHECK(w->a.connected && w->b.connected);
    CHECK(sluice_ice_agent_controlling(w->a.ag) != sluice_ice_agent_controlling(w->b.ag));
    world_free(w);
}

static void test_replay(void)
{
    /* The same seed replays the same session. */
    uint64_t h[2];
    for (int i = 0; i < 2; i++) {
        struct world *w = world_new(42, N_PORT, N_SYM, F_V4, true);
        start(w);
        sim_run(w->net, sim_now(w->net) + 10 * SEC, settled, w);
        h[i] = sim_trace_hash(w->net);
        world_free(w);
    }
    CHECK(h[0] == h[1]);
}

static void test_consent_nat_reboot(void)
{
    /* A's NAT reboots and forgets its mappings. B's consent checks go
     * unanswered; 30 s later both stop sending (RFC 7675) and report it.
     * An ICE restart finds the path again. */
    struct world *w = world_new(9, N_PORT, N_FULL, F_V4, false);
    uint64_t t0 = sim_now(w->net);
    start(w);
    CHECK(sim_run(w->net, t0 + 30 * SEC, settled, w) == 1);
    CHECK(w->a.connected && w->b.connected);
    sim_run_until(w->net, sim_now(w->net) + 20 * SEC);
    CHECK_EQ(w->a.consent_lost + w->b.consent_lost, 0);
    /* Reboot with a new port assignment: the old mapping is gone. */
    CHECK(sim_nat_flush(w->net, w->realm_a) >= 1);
    sim_run_until(w->net, sim_now(w->net) + 40 * SEC);
    CHECK(w->b.consent_lost == 1);
    sluice_ice_route r;
    CHECK_EQ(sluice_ice_agent_route(w->b.ag, 1, 1, &r), SLUICE_ERR_STATE);
    /* Restart both ends. */
    uint64_t now = sim_now(w->net);
    w->a.connected = w->b.connected = false;
    CHECK_EQ(sluice_ice_agent_restart(w->a.ag, now, 1), 0);
    CHECK_EQ(sluice_ice_agent_restart(w->b.ag, now, 1), 0);
    exchange_credentials(w, now);
    flush(&w->a, now);
    flush(&w->b, now);
    sim_host_wake(w->net, w->a.host);
    sim_host_wake(w->net, w->b.host);
    CHECK(sim_run(w->net, now + 30 * SEC, settled, w) == 1);
    CHECK(w->a.connected && w->b.connected);
    CHECK_EQ(sluice_ice_agent_route(w->b.ag, 1, 1, &r), 0);
    printf("# restart after consent loss: connected again in %" PRIu64 " ms\n",
           (sim_now(w->net) - now) / MS);
    world_free(w);
}


/* Relay-only over IPv6: both agents on global IPv6 addresses, relayed
 * candidates from the TURN server's IPv6 address (RFC 6156), media both
 * ways through two IPv6 allocations. */
static void test_relay_only_ipv6(void)
{
    struct world *w = world_new(11, N_NONE, N_NONE, F_V6, true);
    sluice_ice_agent_set_relay_only(w->a.ag, true);
    sluice_ice_agent_set_relay_only(w->b.ag, true);
    uint64_t t0 = sim_now(w->net);
    start(w);
    CHECK_EQ(sim_run(w->net, t0 + 30 * SEC, settled, w), 1);
    CHECK(w->a.connected && w->b.connected);
    CHECK_EQ(w->a.sel_local.type, SLUICE_ICE_CAND_RELAY);
    CHECK_EQ(w->a.sel_remote.type, SLUICE_ICE_CAND_RELAY);
    CHECK_EQ(w->a.sel_local.addr.family, SLUICE_AF_INET6);
    CHECK_EQ(w->b.sel_local.addr.family, SLUICE_AF_INET6);
    printf("# relay-only over IPv6: connected in %" PRIu64 " ms\n",
           (w->a.connected_at > w->b.connected_at ? w->a.connected_at : w->b.connected_at) / MS -
               t0 / MS);
    sim_run_until(w->net, sim_now(w->net) + 500 * MS);
    send_media(w, &w->a, "v6 media from a");
    send_media(w, &w->b, "v6 media from b");
    sim_run_until(w->net, sim_now(w->net) + 500 * MS);
    CHECK_EQ(w->a.media_rx, 1);
    CHECK_EQ(w->b.media_rx, 1);
    CHECK_STR(w->a.last_media, "v6 media from b");
    world_free(w);
}

/* Agent a (relay only) reaches its TURN server over tr, b over UDP; both
 * behind symmetric NATs, so the relay is the only path. */
static struct world *stream_world(uint64_t seed, sluice_transport tr)
{
    struct world *w = world_new_streams(seed, N_SYM, N_SYM, F_V4, false, true);
    sluice_ice_turn_server ts = {.server = w->ss->listen[tr], .transport = tr,
                                 .username = "user", .password = "pass"};
    if (tr == SLUICE_TRANSPORT_TLS) {
        /* verified against the test CA by name (the certificate has no
         * SAN for the server's IP) */
        ts.server_name = "localhost";
        ts.ca_file = cert_path;
    }
    CHECK_EQ(sluice_ice_agent_add_turn_server(w->a.ag, &ts), 0);
    sluice_ice_agent_set_relay_only(w->a.ag, true);
    ts = (sluice_ice_turn_server){.server = w->ss->listen[SLUICE_TRANSPORT_UDP],
                                  .transport = SLUICE_TRANSPORT_UDP,
                                  .username = "user",
                                  .password = "pass"};
    CHECK_EQ(sluice_ice_agent_add_turn_server(w->b.ag, &ts), 0);
    return w;
}

static uint64_t stream_connect(struct world *w, const char *what)
{
    uint64_t t0 = sim_now(w->net);
    start(w);
    CHECK_EQ(sim_run(w->net, t0 + 30 * SEC, settled, w), 1);
    CHECK(w->a.connected && w->b.connected);
    uint64_t setup =
        (w->a.connected_at > w->b.connected_at ? w->a.connected_at : w->b.connected_at) - t0;
    printf("# %s: connected in %" PRIu64 " ms (a %s/%s)\n", what, setup / MS,
           sluice_ice_cand_type_name(w->a.sel_local.type),
           sluice_ice_cand_type_name(w->a.sel_remote.type));
    CHECK_EQ(w->a.sel_local.type, SLUICE_ICE_CAND_RELAY);
    CHECK_EQ(w->a.server_errors, 0);
    return setup;
}

/* Media both ways; a's route goes over its stream. Odd lengths exercise
 * ChannelData padding (RFC 8656 §12.5) in both directions. */
static void stream_media(struct world *w, sluice_transport tr, const char *tag)
{
    char ma[64], mb[64];
    sluice_ice_route r;
    size_t a0 = w->a.media_rx, b0 = w->b.media_rx;
    sim_run_until(w->net, sim_now(w->net) + 500 * MS); /* channels bound */
    CHECK_EQ(sluice_ice_agent_route(w->a.ag, w->a.stream, 1, &r), 0);
    CHECK_EQ(r.transport, tr);
    CHECK_EQ(r.framing, tr == SLUICE_TRANSPORT_TLS ? SLUICE_ICE_FRAMING_SEND
                                                   : SLUICE_ICE_FRAMING_CHANNEL);
    CHECK_EQ(r.pad, tr == SLUICE_TRANSPORT_TCP);
    snprintf(ma, sizeof ma, "%s from a, odd", tag);
    snprintf(mb, sizeof mb, "%s from b", tag);
    send_media(w, &w->a, ma);
    send_media(w, &w->b, mb);
    sim_run_until(w->net, sim_now(w->net) + 500 * MS);
    CHECK_EQ(w->a.media_rx, a0 + 1);
    CHECK_EQ(w->b.media_rx, b0 + 1);
    CHECK_STR(w->a.last_media, mb);
    CHECK_STR(w->b.last_media, ma);
}

static uint64_t stream_setup_us[3];

static void test_turn_tcp(void)
{
    /* the same over UDP, for comparison */
    struct world *u = stream_world(20, SLUICE_TRANSPORT_UDP);
    stream_setup_us[SLUICE_TRANSPORT_UDP] =
        stream_connect(u, "relay-only a over TURN/UDP, b over TURN/UDP");
    stream_media(u, SLUICE_TRANSPORT_UDP, "udp");
    world_free(u);
    for (uint64_t seed = 21; seed <= 23; seed++) {
        struct world *w = stream_world(seed, SLUICE_TRANSPORT_TCP);
        uint64_t t = stream_connect(w, "relay-only a over TURN/TCP, b over TURN/UDP");
        if (t > stream_setup_us[SLUICE_TRANSPORT_TCP])
            stream_setup_us[SLUICE_TRANSPORT_TCP] = t;
        stream_media(w, SLUICE_TRANSPORT_TCP, "tcp");
        world_free(w);
    }
}

static void test_turn_tls(void)
{
    for (uint64_t seed = 31; seed <= 33; seed++) {
        struct world *w = stream_world(seed, SLUICE_TRANSPORT_TLS);
        uint64_t t = stream_connect(w, "relay-only a over TURN/TLS, b over TURN/UDP");
        if (t > stream_setup_us[SLUICE_TRANSPORT_TLS])
            stream_setup_us[SLUICE_TRANSPORT_TLS] = t;
        stream_media(w, SLUICE_TRANSPORT_TLS, "tls");
        world_free(w);
    }
}

/* The server closes a's connection mid-session: the allocation is gone
 * (RFC 8656 §3.1), a reports it and stops sending at once (consent lost,
 * disconnected), and an ICE restart (RFC 8445 §9) allocates again over a
 * new connection and reconnects. */
static void test_turn_stream_closed_by_server(void)
{
    for (int k = SLUICE_TRANSPORT_TCP; k <= SLUICE_TRANSPORT_TLS; k++) {
        sluice_transport tr = (sluice_transport)k;
        struct world *w = stream_world(41 + (uint64_t)k, tr);
        stream_connect(w, tr == SLUICE_TRANSPORT_TCP ? "TCP, before the close"
                                                      : "TLS, before the close");
        stream_media(w, tr, "before");
        struct sconn *c = NULL;
        for (size_t i = 0; i < SS_CONNS; i++)
            if (w->ss->conns[i].used && w->ss->conns[i].transport == tr)
                c = &w->ss->conns[i];
        CHECK(c != NULL);
        if (!c) {
            world_free(w);
            continue;
        }
        ss_close(w->ss, sim_now(w->net), c, true);
        sim_run_until(w->net, sim_now(w->net) + 100 * MS);
        CHECK_EQ(w->a.server_errors, 1);
        CHECK_EQ(w->a.last_error.transport, tr);
        CHECK_EQ(w->a.consent_lost, 1);
        CHECK_EQ(sluice_ice_agent_state(w->a.ag, 1), SLUICE_ICE_DISCONNECTED);
        sluice_ice_route r;
        CHECK_EQ(sluice_ice_agent_route(w->a.ag, 1, 1, &r), SLUICE_ERR_STATE);
        CHECK_EQ(w->a.streams_closed, 0); /* the driver saw it close */

        uint64_t now = sim_now(w->net);
        w->a.connected = w->b.connected = false;
        CHECK_EQ(sluice_ice_agent_restart(w->a.ag, now, 1), 0);
        CHECK_EQ(sluice_ice_agent_restart(w->b.ag, now, 1), 0);
        exchange_credentials(w, now);
        flush(&w->a, now);
        flush(&w->b, now);
        sim_host_wake(w->net, w->a.host);
        sim_host_wake(w->net, w->b.host);
        CHECK_EQ(sim_run(w->net, now + 30 * SEC, settled, w), 1);
        CHECK(w->a.connected && w->b.connected);
        CHECK_EQ(w->a.sel_local.type, SLUICE_ICE_CAND_RELAY);
        printf("# %s stream closed by the server: restart reconnected in %" PRIu64 " ms\n",
               tr == SLUICE_TRANSPORT_TCP ? "TCP" : "TLS", (sim_now(w->net) - now) / MS);
        stream_media(w, tr, "after");
        world_free(w);
    }
}

int main(void)
{
    RUN(test_matrix_v4);
    RUN(test_matrix_v6_dual);
    RUN(test_loss_20);
    RUN(test_role_conflict_sim);
    RUN(test_replay);
    RUN(test_consent_nat_reboot);
    RUN(test_free_unused_allocations);
    RUN(test_relay_only_ipv6);
    have_cert = mkdtemp(cert_dir) != NULL;
    if (have_cert) {
        snprintf(cert_path, sizeof cert_path, "%s/cert.pem", cert_dir);
        snprintf(key_path, sizeof key_path, "%s/key.pem", cert_dir);
        have_cert = make_cert(cert_path, key_path, 1, NULL);
    }
    CHECK(have_cert);
    if (have_cert) {
        RUN(test_turn_tcp);
        RUN(test_turn_tls);
        RUN(test_turn_stream_closed_by_server);
        printf("# relayed setup: a over TURN/UDP %" PRIu64 " ms, TURN/TCP %" PRIu64
               " ms, TURN/TLS %" PRIu64 " ms\n",
               stream_setup_us[SLUICE_TRANSPORT_UDP] / MS,
               stream_setup_us[SLUICE_TRANSPORT_TCP] / MS,
               stream_setup_us[SLUICE_TRANSPORT_TLS] / MS);
    }
    unlink(cert_path);
    unlink(key_path);
    rmdir(cert_dir);
    return TEST_DONE();
}
