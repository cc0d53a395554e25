/* SPDX-License-Identifier: MIT */
/* ICE agent unit tests on virtual time: two agents joined by an in-test
 * wire (latency, seeded loss, a cut switch). NAT and server scenarios live
 * in tests/sim; here are the protocol rules between two agents. */
#include "sluice/ice.h"
#include "fail_alloc.h"
#include "fake_turn.h"
#include "test.h"

#define MS 1000ull
#define SEC 1000000ull

/* ------------------------------------------------------------------------ */
/* The wire */

#define WIRE_MAX 512
struct pkt {
    uint64_t at;
    sluice_addr src, dst;
    size_t len;
    uint8_t data[2048];
};

struct peer {
    sluice_ice_agent *ag;
    int stream;
    sluice_addr bases[4];
    size_t n_bases;
    bool signal;     /* forward local candidates to the other side */
    bool connected;
    int selected;    /* SELECTED_PAIR events */
    int consent_lost;
    int role_events;
    int gathering_done;
    sluice_ice_state state;
    sluice_ice_candidate sel_local, sel_remote;
    size_t media_rx;
    uint8_t last_media[64];
};

struct world {
    uint64_t now;
    struct pkt *q;
    size_t n;
    uint64_t latency;
    unsigned loss_pct;
    sluice_test_rng rng;
    bool cut_r_to_l; /* drop everything R sends to L */
    bool cut_all;
    struct peer l, r;
    uint64_t sent, dropped;
    unsigned spins;
};

static uint32_t wrand(struct world *w)
{
    uint32_t v;
    sluice_test_rng_fill(&w->rng, (uint8_t *)&v, sizeof v);
    return v;
}

static void addr4(sluice_addr *a, uint8_t last, uint16_t port)
{
    const uint8_t ip[4] = {192, 0, 2, last};
    sluice_addr_set_ipv4(a, ip, port);
}

static void addr6(sluice_addr *a, uint8_t last, uint16_t port)
{
    uint8_t ip[16] = {0x20, 0x01, 0x0d, 0xb8};
    ip[15] = last;
    sluice_addr_set_ipv6(a, ip, port);
}

static struct peer *owner(struct world *w, const sluice_addr *a)
{
    struct peer *ps[2] = {&w->l, &w->r};
    for (int i = 0; i < 2; i++)
        for (size_t b = 0; b < ps[i]->n_bases; b++)
            if (sluice_addr_equal(&ps[i]->bases[b], a))
                return ps[i];
    return NULL;
}

static struct peer *other(struct world *w, struct peer *p)
{
    return p == &w->l ? &w->r : &w->l;
}

static void pump_out(struct world *w, struct peer *p)
{
    uint8_t buf[2048];
    sluice_transmit meta;
    int n;
    while ((n = sluice_ice_agent_poll_transmit(p->ag, w->now, buf, sizeof buf, &meta)) > 0) {
        CHECK(meta.source.family != 0);
        w->sent++;
        if (w->cut_all || (p == &w->r && w->cut_r_to_l) ||
            (w->loss_pct && wrand(w) % 100 < w->loss_pct) || w->n == WIRE_MAX) {
            w->dropped++;
            continue;
        }
        struct pkt *k = &w->q[w->n++];
        k->at = w->now + w->latency;
        k->src = meta.source;
        k->dst = meta.destination;
        k->len = (size_t)n;
        memcpy(k->data, buf, (size_t)n);
    }
    CHECK(n == 0);
}

static void pump_events(struct world *w, struct peer *p)
{
    sluice_ice_event ev;
    struct peer *o = other(w, p);
    while (sluice_ice_agent_poll_event(p->ag, &ev)) {
        switch (ev.type) {
        case SLUICE_ICE_EVENT_LOCAL_CANDIDATE:
            if (p->signal)
                CHECK_EQ(sluice_ice_agent_add_remote_candidate(o->ag, w->now, o->stream,
                                                               &ev.candidate), 0);
            break;
        case SLUICE_ICE_EVENT_GATHERING_DONE:
            p->gathering_done++;
            if (p->signal)
                sluice_ice_agent_end_of_candidates(o->ag, w->now, o->stream);
            break;
        case SLUICE_ICE_EVENT_STATE:
            p->state = ev.state;
            if (ev.state == SLUICE_ICE_CONNECTED)
                p->connected = true;
            break;
        case SLUICE_ICE_EVENT_SELECTED_PAIR:
            p->selected++;
            p->sel_local = ev.local;
            p->sel_remote = ev.remote;
            break;
        case SLUICE_ICE_EVENT_CONSENT_LOST:
            p->consent_lost++;
            break;
        case SLUICE_ICE_EVENT_ROLE:
            p->role_events++;
            break;
        default:
            break;
        }
    }
}

static void pump(struct world *w)
{
    for (int i = 0; i < 4; i++) {
        pump_out(w, &w->l);
        pump_out(w, &w->r);
        pump_events(w, &w->l);
        pump_events(w, &w->r);
    }
}

/* One step of virtual time: the earliest packet or timer. */
static bool step(struct world *w, uint64_t until)
{
    uint64_t t = sluice_ice_agent_next_timeout(w->l.ag);
    uint64_t tr = sluice_ice_agent_next_timeout(w->r.ag);
    int pk = -1;
    if (tr < t)
        t = tr;
    for (size_t i = 0; i < w->n; i++)
        if (w->q[i].at < t || (pk < 0 && w->q[i].at == t)) {
            t = w->q[i].at;
            pk = (int)i;
        }
    if (t > until)
        return false;
    if (t > w->now) {
        w->now = t;
        w->spins = 0;
    } else if (pk < 0 && ++w->spins > 100) {
        /* A deadline that does not move when handled is a busy loop. */
        CHECK(!"timer spins without progress");
        return false;
    }
    if (pk >= 0) {
        struct pkt k = w->q[pk];
        w->q[pk] = w->q[--w->n];
        struct peer *p = owner(w, &k.dst);
        if (p) {
            sluice_ice_media m;
            int rc = sluice_ice_agent_handle_datagram(p->ag, w->now, &k.dst, &k.src, k.data, k.len,
                                                      &m);
            CHECK(rc >= 0);
            if (rc == 1) {
                p->media_rx++;
                memcpy(p->last_media, m.data, m.len < 64 ? m.len : 64);
            }
        }
    } else {
        sluice_ice_agent_handle_timeout(w->l.ag, w->now);
        sluice_ice_agent_handle_timeout(w->r.ag, w->now);
    }
    pump(w);
    return true;
}

static void run_until(struct world *w, uint64_t until)
{
    for (int guard = 0; guard < 200000 && step(w, until); guard++)
        ;
    if (w->now < until)
        w->now = until;
}

static bool both_connected(void *ctx)
{
    struct world *w = ctx;
    return w->l.connected && w->r.connected;
}

static bool run_while(struct world *w, uint64_t limit, bool (*done)(void *), void *ctx)
{
    for (int guard = 0; guard < 200000; guard++) {
        if (done(ctx))
            return true;
        if (!step(w, limit))
            return done(ctx);
    }
    return false;
}

static sluice_test_rng agent_rng[2];

static void peer_init(struct world *w, struct peer *p, bool controlling, unsigned n_comp,
                      uint8_t host, uint64_t seed)
{
    sluice_ice_config cfg;
    int err;
    sluice_ice_config_init(&cfg);
    cfg.controlling = controlling;
    sluice_test_rng *rng = &agent_rng[p == &w->l ? 0 : 1];
    sluice_test_rng_init(rng, seed);
    cfg.rng.fill = sluice_test_rng_fill;
    cfg.rng.ctx = rng;
    p->ag = sluice_ice_agent_new(&cfg, &err);
    CHECK(p->ag != NULL);
    p->stream = sluice_ice_agent_add_stream(p->ag, n_comp);
    CHECK_EQ(p->stream, 1);
    p->signal = true;
    for (unsigned c = 1; c <= n_comp; c++) {
        addr4(&p->bases[p->n_bases], host, (uint16_t)(5000 + c));
        CHECK_EQ(sluice_ice_agent_add_base(p->ag, w->now, p->stream, c, &p->bases[p->n_bases]), 0);
        p->n_bases++;
    }
}

static void exchange_credentials(struct world *w)
{
    const char *u, *pw;
    CHECK_EQ(sluice_ice_agent_local_credentials(w->l.ag, 1, &u, &pw), 0);
    CHECK_EQ(sluice_ice_agent_set_remote_credentials(w->r.ag, w->now, 1, u, pw), 0);
    CHECK_EQ(sluice_ice_agent_local_credentials(w->r.ag, 1, &u, &pw), 0);
    CHECK_EQ(sluice_ice_agent_set_remote_credentials(w->l.ag, w->now, 1, u, pw), 0);
}

static struct world *world_new(unsigned n_comp, uint64_t seed)
{
    struct world *w = calloc(1, sizeof *w);
    w->q = calloc(WIRE_MAX, sizeof *w->q);
    w->now = 1 * SEC;
    w->latency = 10 * MS;
    sluice_test_rng_init(&w->rng, seed);
    peer_init(w, &w->l, true, n_comp, 1, seed * 2 + 1);
    peer_init(w, &w->r, false, n_comp, 2, seed * 2 + 2);
    return w;
}

static void world_free(struct world *w)
{
    sluice_ice_agent_free(w->l.ag);
    sluice_ice_agent_free(w->r.ag);
    free(w->q);
    free(w);
}

static void start(struct world *w)
{
    exchange_credentials(w);
    CHECK_EQ(sluice_ice_agent_gather(w->l.ag, w->now), 0);
    CHECK_EQ(sluice_ice_agent_gather(w->r.ag, w->now), 0);
    pump(w);
}

/* Send one media datagram from p through its route and deliver it. */
static bool media_roundtrip(struct world *w, struct peer *p, const char *text)
{
    sluice_ice_route r;
    struct peer *o = other(w, p);
    size_t before = o->media_rx;
    if (sluice_ice_agent_route(p->ag, p->stream, 1, &r) != 0)
        return false;
    CHECK_EQ(r.framing, SLUICE_ICE_FRAMING_NONE);
    sluice_ice_media m;
    int rc = sluice_ice_agent_handle_datagram(o->ag, w->now, &r.destination, &r.base,
                                              (const uint8_t *)text, strlen(text), &m);
    if (rc == 1) {
        o->media_rx++;
        CHECK_EQ(m.len, strlen(text));
        CHECK_MEM(m.data, text, m.len);
        CHECK_EQ(m.component, 1);
    }
    return o->media_rx == before + 1;
}

/* ------------------------------------------------------------------------ */

static void test_candidate_syntax(void)
{
    sluice_ice_candidate c;
    char buf[256];
    CHECK_EQ(sluice_ice_candidate_parse(&c, "candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host"),
             0);
    CHECK_EQ(c.component, 1);
    CHECK_EQ(c.priority, 2130706431u);
    CHECK_EQ(c.type, SLUICE_ICE_CAND_HOST);
    CHECK_EQ(c.addr.port, 5000);
    CHECK(sluice_ice_candidate_format(&c, buf, sizeof buf) > 0);
    CHECK_STR(buf, "candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host");
    CHECK_EQ(sluice_ice_candidate_parse(
                 &c, "a=candidate:Ab+/9 2 udp 1694498815 2001:db8::5 61000 typ srflx raddr "
                     "2001:db8::1 rport 5000 generation 0 ufrag abcd network-cost 10\r\n"),
             0);
    CHECK_EQ(c.type, SLUICE_ICE_CAND_SRFLX);
    CHECK_EQ(c.addr.family, SLUICE_AF_INET6);
    CHECK_EQ(c.related.port, 5000);
    CHECK(sluice_ice_candidate_format(&c, buf, sizeof buf) > 0);
    CHECK_STR(buf, "candidate:Ab+/9 2 udp 1694498815 2001:db8::5 61000 typ srflx raddr 2001:db8::1 "
                   "rport 5000");
    /* Round trip of the formatted text. */
    sluice_ice_candidate c2;
    CHECK_EQ(sluice_ice_candidate_parse(&c2, buf), 0);
    CHECK(sluice_addr_equal(&c.addr, &c2.addr) && c.priority == c2.priority);
    /* Refusals. */
    CHECK_EQ(sluice_ice_candidate_parse(
                 &c, "candidate:1 1 udp 2113937151 6b8f2a1c-1111-2222.local 5000 typ host"),
             SLUICE_ERR_UNSUPPORTED);
    CHECK_EQ(sluice_ice_candidate_parse(
                 &c, "candidate:1 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active"),
             SLUICE_ERR_UNSUPPORTED);
    const char *bad[] = {
        "",
        "candidate:",
        "candidate:1 1 udp 1 192.0.2.1 5000 typ",
        "candidate:1 0 udp 1 192.0.2.1 5000 typ host",
        "candidate:1 257 udp 1 192.0.2.1 5000 typ host",
        "candidate:1 1 udp 0 192.0.2.1 5000 typ host",
        "candidate:1 1 udp 4294967296 192.0.2.1 5000 typ host",
        "candidate:1 1 udp 1 192.0.2.1 70000 typ host",
        "candidate:1 1 udp 1 192.0.2.1 5000 type host",
        "candidate:1 1 udp 1 192.0.2.1 5000 typ cone",
        "candidate:1 1 sctp 1 192.0.2.1 5000 typ host",
        "candidate:f@o 1 udp 1 192.0.2.1 5000 typ host",
        "candidate:1 1 udp 1 999.0.2.1 5000 typ host",
        "candidate:1 1 udp 1 192.0.2.1 5000 typ host raddr",
        "candidate:123456789012345678901234567890123 1 udp 1 192.0.2.1 5000 typ host",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = sluice_ice_candidate_parse(&c, bad[i]);
        if (rc >= 0)
            fprintf(stderr, "# accepted: %s\n", bad[i]);
        CHECK(rc < 0);
    }
    /* Every truncation of a valid line is refused or parses cleanly. */
    const char *full = "candidate:842163049 1 udp 1677729535 198.51.100.7 53705 typ srflx raddr "
                       "10.0.0.2 rport 53705 generation 0";
    char cut[200];
    for (size_t n = 0; n < strlen(full); n++) {
        memcpy(cut, full, n);
        cut[n] = '\0';
        (void)sluice_ice_candidate_parse(&c, cut);
    }
    /* §5.1.2.1 */
    CHECK_EQ(sluice_ice_priority(SLUICE_ICE_CAND_HOST, 65535, 1), 2130706431u);
    CHECK_EQ(sluice_ice_priority(SLUICE_ICE_CAND_RELAY, 65535, 2), 16777214u);
}

static void test_connect_host(void)
{
    struct world *w = world_new(1, 1);
    uint64_t t0 = w->now;
    start(w);
    CHECK(w->l.gathering_done == 1 && w->r.gathering_done == 1);
    CHECK(run_while(w, t0 + 5 * SEC, both_connected, w));
    /* A few round trips and Ta: 10 ms one way. */
    CHECK(w->now - t0 < 200 * MS);
    CHECK_EQ(w->l.selected, 1);
    CHECK_EQ(w->r.selected, 1);
    CHECK(sluice_addr_equal(&w->l.sel_remote.addr, &w->r.bases[0]));
    CHECK(sluice_addr_equal(&w->r.sel_remote.addr, &w->l.bases[0]));
    run_until(w, w->now + 1 * SEC);
    CHECK_EQ(sluice_ice_agent_state(w->l.ag, 1), SLUICE_ICE_COMPLETED);
    CHECK_EQ(sluice_ice_agent_state(w->r.ag, 1), SLUICE_ICE_COMPLETED);
    CHECK(media_roundtrip(w, &w->l, "hello"));
    CHECK(media_roundtrip(w, &w->r, "world"));
    /* Stats: one pair, succeeded, nominated, selected, with an RTT. */
    sluice_ice_pair_stats ps[4];
    CHECK_EQ(sluice_ice_agent_pair_stats(w->l.ag, 1, ps, 4), 1);
    CHECK_STR(ps[0].state, "succeeded");
    CHECK(ps[0].nominated && ps[0].selected);
    CHECK_EQ(ps[0].rtt_us, 20 * MS);
    CHECK(ps[0].requests_sent >= 1 && ps[0].responses_received >= 1);
    world_free(w);
}

/* Credentials chosen by the application (webrtcbin sets its own). */
static void test_local_credentials(void)
{
    struct world *w = world_new(1, 21);
    uint64_t t0 = w->now;
    const char *u, *pw;
    CHECK_EQ(sluice_ice_agent_set_local_credentials(w->l.ag, 1, "abc", "0123456789012345678901"),
             SLUICE_ERR_INVALID); /* ufrag too short */
    CHECK_EQ(sluice_ice_agent_set_local_credentials(w->l.ag, 1, "abcd", "short-password"),
             SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_ice_agent_set_local_credentials(w->l.ag, 1, "ab cd", "0123456789012345678901"),
             SLUICE_ERR_INVALID); /* not ice-chars */
    CHECK_EQ(sluice_ice_agent_set_local_credentials(w->l.ag, 2, "abcd", "0123456789012345678901"),
             SLUICE_ERR_NOT_FOUND);
    char longu[66];
    memset(longu, 'u', 65);
    longu[65] = '\0';
    CHECK_EQ(sluice_ice_agent_set_local_credentials(w->l.ag, 1, longu, "0123456789012345678901"),
             SLUICE_ERR_INVALID);
    longu[64] = '\0'; /* 64: the longest accepted */
    CHECK_EQ(sluice_ice_agent_set_local_credentials(w->l.ag, 1, longu,
                                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"), 0);
    CHECK_EQ(sluice_ice_agent_set_local_credentials(w->r.ag, 1, "Rufr", "r+/0123456789012345678901"), 0);
    CHECK_EQ(sluice_ice_agent_local_credentials(w->l.ag, 1, &u, &pw), 0);
    CHECK_STR(u, longu);
    CHECK_STR(pw, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef");
    start(w);
    CHECK(run_while(w, t0 + 5 * SEC, both_connected, w));
    CHECK(media_roundtrip(w, &w->l, "hello"));
    world_free(w);
}

static void test_two_components(void)
{
    struct world *w = world_new(2, 2);
    uint64_t t0 = w->now;
    start(w);
    CHECK(run_while(w, t0 + 5 * SEC, both_connected, w));
    CHECK_EQ(w->l.selected, 2);
    CHECK_EQ(w->r.selected, 2);
    sluice_ice_route r1, r2;
    CHECK_EQ(sluice_ice_agent_route(w->l.ag, 1, 1, &r1), 0);
    CHECK_EQ(sluice_ice_agent_route(w->l.ag, 1, 2, &r2), 0);
    CHECK_EQ(r1.destination.port, 5001);
    CHECK_EQ(r2.destination.port, 5002);
    CHECK_EQ(sluice_ice_agent_route(w->l.ag, 1, 3, &r2), SLUICE_ERR_NOT_FOUND);
    world_free(w);
}

static void test_role_conflict(void)
{
    /* Both start controlling; the tie-breakers decide (§7.3.1.1). */
    struct world *w = world_new(1, 3);
    uint64_t t0 = w->now;
    sluice_ice_agent_set_role(w->r.ag, true);
    start(w);
    CHECK(run_while(w, t0 + 10 * SEC, both_connected, w));
    CHECK_EQ(w->l.role_events + w->r.role_events, 1);
    CHECK(sluice_ice_agent_controlling(w->l.ag) != sluice_ice_agent_controlling(w->r.ag));
    sluice_ice_stats st;
    sluice_ice_agent_get_stats(w->l.role_events ? w->l.ag : w->r.ag, &st);
    CHECK_EQ(st.role_conflicts, 1);
    world_free(w);

    /* Both controlled. */
    w = world_new(1, 4);
    t0 = w->now;
    sluice_ice_agent_set_role(w->l.ag, false);
    start(w);
    CHECK(run_while(w, t0 + 10 * SEC, both_connected, w));
    CHECK(sluice_ice_agent_controlling(w->l.ag) != sluice_ice_agent_controlling(w->r.ag));
    world_free(w);
}

/* The nominating check skips the Ta queue (docs/ice.md): with 10 ms one
 * way, the first checks leave at t0, succeed at 20 ms, and the controlling
 * agent nominates at once (5 ms after its previous transaction has long
 * passed): selected at 30 ms on the controlled side and 40 ms on the
 * controlling one, at the default Ta of 50 ms. Waiting for the Ta slot
 * would have sent it at 50 ms and connected at 70 ms. */
static void test_nominating_check_skips_ta(void)
{
    struct world *w = world_new(1, 1);
    uint64_t t0 = w->now;
    start(w);
    CHECK(run_while(w, t0 + 5 * SEC, both_connected, w));
    CHECK_EQ(w->now - t0, 40 * MS);
    world_free(w);

    /* With no latency the nominating check is still paced: 5 ms after the
     * first check, not at once (RFC 8445 §14.2's floor). */
    w = world_new(1, 2);
    w->latency = 100; /* 0.1 ms */
    t0 = w->now;
    start(w);
    CHECK(run_while(w, t0 + 5 * SEC, both_connected, w));
    CHECK(w->now - t0 >= 5 * MS && w->now - t0 <= 6 * MS);
    world_free(w);
}

/* §8.1.1, docs/ice.md: a higher-priority pair whose check stays unanswered
 * holds the nomination of a direct valid pair back for four of its round
 * trips plus 2 Ta after that check went out, not for the whole
 * nomination_wait (250 ms after the first valid pair). L gets an unreachable
 * remote candidate that outranks R's real one (a private address of another
 * network, the usual case between two NATed peers). */
static void test_nomination_patience(void)
{
    for (int unreachable = 0; unreachable < 2; unreachable++) {
        struct world *w = world_new(1, 21);
        uint64_t t0 = w->now;
        start(w);
        if (unreachable) {
            sluice_ice_candidate c;
            CHECK_EQ(sluice_ice_candidate_parse(
                         &c, "candidate:9 1 udp 2130706431 198.51.100.99 9 typ host"), 0);
            CHECK_EQ(sluice_ice_agent_add_remote_candidate(w->l.ag, w->now, 1, &c), 0);
            pump(w);
        }
        CHECK(run_while(w, t0 + 5 * SEC, both_connected, w));
        uint64_t took = w->now - t0;
        printf("# %s: connected after %llu ms\n",
               unreachable ? "with an unreachable better pair" : "one pair",
               (unsigned long long)(took / MS));
        if (unreachable) {
            /* First check (to the unreachable one) at t0, R's pair at
             * t0 + Ta, valid 20 ms later; nominated at t0 + 4 x 20 ms + 2 x
             * 50 ms = t0 + 180 ms, answered 20 ms later. */
            CHECK(took >= 180 * MS && took <= 205 * MS);
            CHECK(took < 50 * MS + 20 * MS + 250 * MS); /* the old wait */
            CHECK(sluice_addr_equal(&w->l.sel_remote.addr, &w->r.bases[0]));
        } else {
            CHECK_EQ(took, 40 * MS);
        }
        world_free(w);
    }
}

/* §6.1.1: facing a lite peer the full agent controls, and keeps the role
 * when the peer disagrees (a 487 answer or a request claiming the
 * controlling role): over seeds, both tie-breaker orders occur. */
static void test_lite_peer_keeps_controlling(void)
{
    for (uint64_t seed = 11; seed < 19; seed++) {
        struct world *w = world_new(1, seed);
        uint64_t t0 = w->now;
        sluice_ice_agent_set_remote_lite(w->l.ag, true);
        sluice_ice_agent_set_role(w->r.ag, true); /* a misconfigured peer */
        start(w);
        CHECK(run_while(w, t0 + 10 * SEC, both_connected, w));
        CHECK(sluice_ice_agent_controlling(w->l.ag));
        CHECK(!sluice_ice_agent_controlling(w->r.ag));
        CHECK_EQ(w->l.role_events, 0);
        CHECK_EQ(w->r.role_events, 1);
        world_free(w);
    }
}

static void test_peer_reflexive(void)
{
    /* R never signals its candidates: L learns R from R's checks
     * (§7.3.1.3) and they still connect. */
    struct world *w = world_new(1, 5);
    uint64_t t0 = w->now;
    w->r.signal = false;
    start(w);
    CHECK(run_while(w, t0 + 5 * SEC, both_connected, w));
    CHECK_EQ(w->l.sel_remote.type, SLUICE_ICE_CAND_PRFLX);
    CHECK(sluice_addr_equal(&w->l.sel_remote.addr, &w->r.bases[0]));
    world_free(w);
}

static void test_trickle_late(void)
{
    /* Candidates first, credentials a second later (RFC 8838): checks wait
     * for credentials, then connect without any fixed delay. */
    struct world *w = world_new(1, 6);
    sluice_ice_agent_gather(w->l.ag, w->now);
    sluice_ice_agent_gather(w->r.ag, w->now);
    pump(w);
    run_until(w, w->now + 1 * SEC);
    CHECK(!w->l.connected && !w->r.connected);
    CHECK_EQ(w->sent, 0);
    uint64_t t0 = w->now;
    exchange_credentials(w);
    pump(w);
    CHECK(run_while(w, t0 + 5 * SEC, both_connected, w));
    CHECK(w->now - t0 < 200 * MS);
    world_free(w);
}

static void test_loss(void)
{
    /* 20% loss both ways: still connects (retransmissions, triggered
     * checks), with seeds that replay. */
    for (uint64_t seed = 10; seed < 20; seed++) {
        struct world *w = world_new(1, seed);
        uint64_t t0 = w->now;
        w->loss_pct = 20;
        start(w);
        CHECK(run_while(w, t0 + 20 * SEC, both_connected, w));
        world_free(w);
    }
}

static void test_consent_and_restart(void)
{
    struct world *w = world_new(1, 7);
    uint64_t t0 = w->now;
    start(w);
    CHECK(run_while(w, t0 + 5 * SEC, both_connected, w));
    /* Consent keeps the pair alive for minutes while R answers. */
    run_until(w, w->now + 120 * SEC);
    CHECK_EQ(w->l.consent_lost, 0);
    sluice_ice_pair_stats ps[2];
    CHECK_EQ(sluice_ice_agent_pair_stats(w->l.ag, 1, ps, 2), 1);
    /* 4-6 s intervals over 120 s: 20-30 consent checks. */
    CHECK(ps[0].consent_requests_sent >= 19 && ps[0].consent_requests_sent <= 31);
    /* R stops answering: 30 s after the last answer (which came at most
     * 6 s before the cut) consent is lost and L refuses to send. */
    w->cut_r_to_l = true;
    uint64_t cut = w->now;
    run_until(w, cut + 23 * SEC);
    CHECK_EQ(w->l.consent_lost, 0);
    sluice_ice_route r;
    CHECK_EQ(sluice_ice_agent_route(w->l.ag, 1, 1, &r), 0);
    run_until(w, cut + 31 * SEC);
    CHECK_EQ(w->l.consent_lost, 1);
    CHECK_EQ(sluice_ice_agent_route(w->l.ag, 1, 1, &r), SLUICE_ERR_STATE);
    CHECK_EQ(w->l.state, SLUICE_ICE_DISCONNECTED);
    /* ICE restart (§9) with the path back: new credentials, a new pair. */
    w->cut_r_to_l = false;
    w->l.connected = w->r.connected = false;
    CHECK_EQ(sluice_ice_agent_restart(w->l.ag, w->now, 1), 0);
    CHECK_EQ(sluice_ice_agent_restart(w->r.ag, w->now, 1), 0);
    exchange_credentials(w);
    pump(w);
    uint64_t t1 = w->now;
    CHECK(run_while(w, t1 + 5 * SEC, both_connected, w));
    CHECK_EQ(sluice_ice_agent_route(w->l.ag, 1, 1, &r), 0);
    CHECK(media_roundtrip(w, &w->l, "back"));
    world_free(w);
}

static void test_restart_keeps_media(void)
{
    /* After a restart, media keeps the old route until a new pair is
     * selected. */
    struct world *w = world_new(1, 8);
    uint64_t t0 = w->now;
    start(w);
    CHECK(run_while(w, t0 + 5 * SEC, both_connected, w));
    CHECK_EQ(sluice_ice_agent_restart(w->l.ag, w->now, 1), 0);
    sluice_ice_route r;
    CHECK_EQ(sluice_ice_agent_route(w->l.ag, 1, 1, &r), 0);
    CHECK(media_roundtrip(w, &w->l, "still"));
    const char *u1, *u2;
    sluice_ice_agent_local_credentials(w->l.ag, 1, &u1, NULL);
    CHECK(strlen(u1) >= 4);
    /* Old-session consent checks from R are still answered. */
    run_until(w, w->now + 40 * SEC);
    CHECK_EQ(w->r.consent_lost, 0);
    sluice_ice_agent_local_credentials(w->l.ag, 1, &u2, NULL);
    CHECK(u1 == u2);
    world_free(w);
}

static void test_no_path_fails(void)
{
    /* Every packet lost, end-of-candidates on both sides: the checks time
     * out and the stream fails (no fixed waits beyond the STUN schedule). */
    struct world *w = world_new(1, 9);
    w->cut_all = true;
    uint64_t t0 = w->now;
    start(w);
    run_until(w, t0 + 60 * SEC);
    CHECK_EQ(w->l.state, SLUICE_ICE_FAILED);
    CHECK_EQ(w->r.state, SLUICE_ICE_FAILED);
    CHECK(!w->l.connected);
    world_free(w);
}

static void test_bad_checks(void)
{
    struct world *w = world_new(1, 11);
    start(w);
    /* A Binding request with the wrong password: 401, no pair. */
    uint8_t msg[256], out[512];
    sluice_stun_writer wr;
    sluice_stun_key key;
    const uint8_t txid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const char *lu;
    sluice_ice_agent_local_credentials(w->l.ag, 1, &lu, NULL);
    char user[64];
    snprintf(user, sizeof user, "%s:evil", lu);
    sluice_stun_key_short_term(&key, "wrongpasswordwrongpassword", 26);
    sluice_stun_writer_init(&wr, msg, sizeof msg,
                            sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST), txid);
    sluice_stun_put(&wr, SLUICE_STUN_ATTR_USERNAME, user, strlen(user));
    sluice_stun_put_u32(&wr, SLUICE_STUN_ATTR_PRIORITY, 12345);
    sluice_stun_put_integrity(&wr, &key);
    sluice_stun_put_fingerprint(&wr);
    int n = sluice_stun_writer_result(&wr);
    CHECK(n > 0);
    sluice_addr evil;
    addr4(&evil, 66, 6666);
    sluice_ice_media m;
    CHECK_EQ(sluice_ice_agent_handle_datagram(w->l.ag, w->now, &w->l.bases[0], &evil, msg,
                                              (size_t)n, &m), 0);
    sluice_transmit meta;
    int rn = sluice_ice_agent_poll_transmit(w->l.ag, w->now, out, sizeof out, &meta);
    CHECK(rn > 0);
    sluice_stun_msg resp;
    CHECK_EQ(sluice_stun_parse(&resp, out, (size_t)rn), 0);
    int code = 0;
    CHECK_EQ(resp.cls, SLUICE_STUN_ERROR);
    sluice_stun_get_error_code(&resp, &code, NULL, NULL);
    CHECK_EQ(code, 401);
    CHECK(sluice_addr_equal(&meta.destination, &evil));
    sluice_ice_stats st;
    sluice_ice_agent_get_stats(w->l.ag, &st);
    CHECK_EQ(st.checks_rejected, 1);
    sluice_ice_pair_stats ps[8];
    int before = sluice_ice_agent_pair_stats(w->l.ag, 1, ps, 8);
    /* No username: 400. Garbage and truncations: dropped quietly. */
    sluice_stun_writer_init(&wr, msg, sizeof msg,
                            sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST), txid);
    sluice_stun_put_fingerprint(&wr);
    n = sluice_stun_writer_result(&wr);
    sluice_ice_agent_handle_datagram(w->l.ag, w->now, &w->l.bases[0], &evil, msg, (size_t)n, &m);
    rn = sluice_ice_agent_poll_transmit(w->l.ag, w->now, out, sizeof out, &meta);
    CHECK(rn > 0 && sluice_stun_parse(&resp, out, (size_t)rn) == 0);
    sluice_stun_get_error_code(&resp, &code, NULL, NULL);
    CHECK_EQ(code, 400);
    for (size_t cut = 0; cut < (size_t)n; cut++)
        CHECK(sluice_ice_agent_handle_datagram(w->l.ag, w->now, &w->l.bases[0], &evil, msg, cut,
                                               &m) >= 0);
    /* Media from an unknown source is dropped. */
    CHECK_EQ(sluice_ice_agent_handle_datagram(w->l.ag, w->now, &w->l.bases[0], &evil,
                                              (const uint8_t *)"\x80xyz", 4, &m), 0);
    CHECK_EQ(sluice_ice_agent_pair_stats(w->l.ag, 1, ps, 8), before);
    world_free(w);
}

static void test_bounds(void)
{
    /* A remote that floods candidates meets max_remote_candidates, and
     * the checklist stays within max_pairs. */
    struct world *w = world_new(1, 12);
    start(w);
    int full = 0;
    for (int i = 0; i < 200; i++) {
        sluice_ice_candidate c;
        char line[128];
        snprintf(line, sizeof line, "candidate:f%d 1 udp %d 198.51.100.%d %d typ host", i,
                 1000 + i, 1 + i % 250, 10000 + i);
        CHECK_EQ(sluice_ice_candidate_parse(&c, line), 0);
        int rc = sluice_ice_agent_add_remote_candidate(w->l.ag, w->now, 1, &c);
        if (rc == SLUICE_ERR_FULL)
            full++;
        else
            CHECK_EQ(rc, 0);
    }
    CHECK_EQ(full, 200 - 64 + 1); /* R's own host candidate came first */
    sluice_ice_pair_stats ps[128];
    CHECK(sluice_ice_agent_pair_stats(w->l.ag, 1, ps, 128) <= 100);
    sluice_ice_stats st;
    sluice_ice_agent_get_stats(w->l.ag, &st);
    CHECK_EQ(st.remote_candidates_dropped, (uint64_t)full);
    /* Invalid ones. */
    sluice_ice_candidate c;
    sluice_ice_candidate_parse(&c, "candidate:x 2 udp 5 198.51.100.1 1 typ host");
    CHECK_EQ(sluice_ice_agent_add_remote_candidate(w->l.ag, w->now, 1, &c), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_ice_agent_add_remote_candidate(w->l.ag, w->now, 7, &c), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_ice_agent_set_remote_credentials(w->l.ag, w->now, 1, "ab", "x"),
             SLUICE_ERR_INVALID);
    /* Still connects to the real peer despite the flood of dead pairs. */
    uint64_t t0 = w->now;
    CHECK(run_while(w, t0 + 30 * SEC, both_connected, w));
    world_free(w);
}

static void test_dual_stack_preference(void)
{
    /* RFC 8421: with IPv6 and IPv4 bases on both sides, IPv6 wins. */
    struct world *w = world_new(1, 13);
    addr6(&w->l.bases[1], 1, 7000);
    addr6(&w->r.bases[1], 2, 7000);
    CHECK_EQ(sluice_ice_agent_add_base(w->l.ag, w->now, 1, 1, &w->l.bases[1]), 0);
    CHECK_EQ(sluice_ice_agent_add_base(w->r.ag, w->now, 1, 1, &w->r.bases[1]), 0);
    w->l.n_bases = w->r.n_bases = 2;
    uint64_t t0 = w->now;
    start(w);
    CHECK(run_while(w, t0 + 5 * SEC, both_connected, w));
    CHECK_EQ(w->l.sel_remote.addr.family, SLUICE_AF_INET6);
    CHECK_EQ(w->r.sel_remote.addr.family, SLUICE_AF_INET6);
    world_free(w);
}

static void test_alloc_failures(void)
{
    sluice_ice_config cfg;
    sluice_ice_config_init(&cfg);
    cfg.alloc.calloc = failing_calloc;
    cfg.alloc.free = plain_free;
    int ok = 0;
    for (int i = 0; i < 40; i++) {
        fail_alloc_calls = 0;
        fail_alloc_at = i;
        int err = 0;
        sluice_ice_agent *a = sluice_ice_agent_new(&cfg, &err);
        if (!a) {
            CHECK_EQ(err, SLUICE_ERR_NOMEM);
            continue;
        }
        int s = sluice_ice_agent_add_stream(a, 2);
        CHECK(s == 1 || s == SLUICE_ERR_NOMEM);
        if (s == 1)
            ok++;
        sluice_ice_agent_free(a);
    }
    fail_alloc_at = -1;
    CHECK(ok > 0);

    /* An agent with a TURN server over TCP gathering: every allocation
     * (the stream buffer, copies, the TURN client) failing in turn. */
    int gathered = 0;
    for (int i = 0; i < 60; i++) {
        sluice_ice_turn_server ts = {.transport = SLUICE_TRANSPORT_TCP, .username = "u",
                                     .password = "p"};
        sluice_addr base;
        sluice_ice_event ev;
        uint8_t buf[2048];
        sluice_transmit meta;
        fail_alloc_calls = 0;
        fail_alloc_at = i;
        sluice_ice_agent *a = sluice_ice_agent_new(&cfg, NULL);
        if (!a)
            continue;
        sluice_addr_parse(&ts.server, "203.0.113.9:3478", 0);
        addr4(&base, 1, 5000);
        int rc = sluice_ice_agent_add_turn_server(a, &ts);
        CHECK(rc == 0 || rc == SLUICE_ERR_NOMEM);
        if (sluice_ice_agent_add_stream(a, 1) == 1 &&
            sluice_ice_agent_add_base(a, 1 * SEC, 1, 1, &base) == 0 &&
            sluice_ice_agent_gather(a, 1 * SEC) == 0) {
            sluice_ice_agent_handle_timeout(a, 2 * SEC);
            while (sluice_ice_agent_poll_transmit(a, 2 * SEC, buf, sizeof buf, &meta) > 0)
                gathered += meta.transport == SLUICE_TRANSPORT_TCP;
            while (sluice_ice_agent_poll_event(a, &ev))
                ;
        }
        sluice_ice_agent_free(a);
    }
    fail_alloc_at = -1;
    CHECK(gathered > 0);
}

/* ------------------------------------------------------------------------ */
/* TURN over TCP and TLS: the stream contract (sluice/ice.h "Streams to TURN
 * servers", RFC 8656 §3.1) against the scripted server of fake_turn.h,
 * which answers UDP datagrams and TCP stream messages alike. Whole
 * sessions through a relayed stream run in tests/sim. */

struct st {
    sluice_ice_agent *ag;
    sluice_test_rng rng;
    uint64_t now;
    sluice_addr base, server, peer;
    sluice_addr alternate; /* a second server (redirects) */
    struct fake_turn ft[2]; /* by transport: UDP, TCP */
    bool silent;            /* the servers answer nothing */
    unsigned tx[3];         /* transmits by transport */
    uint8_t first_byte[3];
    int server_errors, close_streams, gathering_done, srflx;
    sluice_ice_event last_error, last_close;
    sluice_ice_candidate relay[4];
    int n_relay;
    char media[4][32];
    int n_media;
};

static void st_media(struct st *t, const sluice_ice_media *m)
{
    CHECK_EQ(m->stream, 1);
    CHECK(sluice_addr_equal(&m->from, &t->peer));
    if (t->n_media < 4 && m->len < 32) {
        memcpy(t->media[t->n_media], m->data, m->len);
        t->media[t->n_media][m->len] = '\0';
    }
    t->n_media++;
}

/* Bytes of the stream to srv into the agent, then every media datagram
 * they completed. Returns the first call's code. */
static int st_feed_from(struct st *t, const sluice_addr *srv, sluice_transport tr,
                        const uint8_t *data, size_t len)
{
    sluice_ice_media m;
    int rc = sluice_ice_agent_handle_stream(t->ag, t->now, &t->base, srv, tr, data, len, &m);
    for (int r = rc, guard = 0; r == 1 && guard < 100; guard++) {
        st_media(t, &m);
        r = sluice_ice_agent_handle_stream(t->ag, t->now, &t->base, srv, tr, NULL, 0, &m);
        CHECK(r >= 0);
    }
    return rc;
}

static int st_feed(struct st *t, sluice_transport tr, const uint8_t *data, size_t len)
{
    return st_feed_from(t, &t->server, tr, data, len);
}

static void st_pump(struct st *t)
{
    uint8_t buf[2048], resp[2048];
    sluice_transmit meta;
    sluice_ice_event ev;
    int n;
    while ((n = sluice_ice_agent_poll_transmit(t->ag, t->now, buf, sizeof buf, &meta)) > 0) {
        CHECK(sluice_addr_equal(&meta.source, &t->base));
        if (meta.transport > SLUICE_TRANSPORT_TLS)
            continue;
        t->tx[meta.transport]++;
        t->first_byte[meta.transport] = buf[0];
        if ((!sluice_addr_equal(&meta.destination, &t->server) &&
             !sluice_addr_equal(&meta.destination, &t->alternate)) ||
            t->silent || meta.transport == SLUICE_TRANSPORT_TLS)
            continue;
        /* Over TCP a transmit is whole messages: one here. */
        struct fake_turn *ft = &t->ft[meta.transport];
        int r = fake_turn_answer(ft, buf, (size_t)n, resp, sizeof resp);
        if (ft->allocate_error == 300)
            ft->allocate_error = 0; /* one redirect */
        if (r <= 0)
            continue;
        if (meta.transport == SLUICE_TRANSPORT_UDP) {
            sluice_ice_media m;
            CHECK_EQ(sluice_ice_agent_handle_datagram(t->ag, t->now, &t->base, &t->server, resp,
                                                      (size_t)r, &m), 0);
        } else {
            CHECK_EQ(st_feed_from(t, &meta.destination, SLUICE_TRANSPORT_TCP, resp, (size_t)r),
                     0);
        }
    }
    CHECK_EQ(n, 0);
    while (sluice_ice_agent_poll_event(t->ag, &ev)) {
        switch (ev.type) {
        case SLUICE_ICE_EVENT_LOCAL_CANDIDATE:
            if (ev.candidate.type == SLUICE_ICE_CAND_RELAY && t->n_relay < 4)
                t->relay[t->n_relay++] = ev.candidate;
            if (ev.candidate.type == SLUICE_ICE_CAND_SRFLX)
                t->srflx++;
            break;
        case SLUICE_ICE_EVENT_GATHERING_DONE:
            t->gathering_done++;
            break;
        case SLUICE_ICE_EVENT_SERVER_ERROR:
            t->server_errors++;
            t->last_error = ev;
            break;
        case SLUICE_ICE_EVENT_CLOSE_STREAM:
            t->close_streams++;
            t->last_close = ev;
            break;
        default:
            break;
        }
    }
}

static void st_run(struct st *t, uint64_t until)
{
    st_pump(t);
    for (int guard = 0; guard < 10000; guard++) {
        uint64_t next = sluice_ice_agent_next_timeout(t->ag);
        if (next > until)
            break;
        if (next > t->now)
            t->now = next;
        sluice_ice_agent_handle_timeout(t->ag, t->now);
        st_pump(t);
    }
    t->now = until;
}

/* An agent with one base, a remote peer (credentials and one host
 * candidate) and TURN servers on one address over the transports in mask
 * (bit per sluice_transport). */
static void st_init(struct st *t, unsigned mask, bool relay_only)
{
    sluice_ice_config cfg;
    sluice_ice_candidate c;
    memset(t, 0, sizeof *t);
    t->now = 1 * SEC;
    sluice_ice_config_init(&cfg);
    cfg.controlling = true;
    sluice_test_rng_init(&t->rng, 77);
    cfg.rng.fill = sluice_test_rng_fill;
    cfg.rng.ctx = &t->rng;
    t->ag = sluice_ice_agent_new(&cfg, NULL);
    CHECK(t->ag != NULL);
    sluice_ice_agent_set_relay_only(t->ag, relay_only);
    addr4(&t->base, 1, 5000);
    CHECK_EQ(sluice_addr_parse(&t->server, "203.0.113.9:3478", 0), 0);
    for (int k = 0; k < 2; k++) {
        fake_turn_init(&t->ft[k]);
        /* different allocations, different relayed addresses */
        t->ft[k].relayed4.port = (uint16_t)(50000 + k);
    }
    for (int tr = SLUICE_TRANSPORT_UDP; tr <= SLUICE_TRANSPORT_TLS; tr++) {
        if (!(mask & (1u << tr)))
            continue;
        sluice_ice_turn_server ts = {.server = t->server, .transport = (sluice_transport)tr,
                                     .username = "alice", .password = "secret"};
        CHECK_EQ(sluice_ice_agent_add_turn_server(t->ag, &ts), 0);
    }
    CHECK_EQ(sluice_ice_agent_add_stream(t->ag, 1), 1);
    CHECK_EQ(sluice_ice_agent_add_base(t->ag, t->now, 1, 1, &t->base), 0);
    CHECK_EQ(sluice_ice_agent_set_remote_credentials(t->ag, t->now, 1, "rfrg",
                                                     "remotePasswordOfPeer1xyz"), 0);
    CHECK_EQ(sluice_ice_candidate_parse(&c, "candidate:1 1 udp 2130706431 192.0.2.2 6000 typ host"),
             0);
    t->peer = c.addr;
    CHECK_EQ(sluice_ice_agent_add_remote_candidate(t->ag, t->now, 1, &c), 0);
    CHECK_EQ(sluice_ice_agent_gather(t->ag, t->now), 0);
}

static void test_turn_stream_chunks(void)
{
    struct st t;
    uint8_t buf[512];
    const char *texts[2] = {"first media", "second, a bit longer"};
    size_t n = 0;
    st_init(&t, 1u << SLUICE_TRANSPORT_TCP, false);
    st_run(&t, t.now + 2 * SEC);
    /* Allocated over TCP: a relayed (UDP) candidate; the mapped address
     * maps the TCP stream, so no server-reflexive candidate from it. */
    CHECK(t.tx[SLUICE_TRANSPORT_TCP] >= 3);
    CHECK_EQ(t.n_relay, 1);
    CHECK_EQ(t.relay[0].transport, SLUICE_TRANSPORT_UDP);
    CHECK(sluice_addr_equal(&t.relay[0].addr, &t.ft[1].relayed4));
    CHECK_EQ(t.srflx, 0);
    CHECK_EQ(t.server_errors, 0);
    /* A permission for the peer, then a check through the relay as a Send
     * indication on the stream. */
    CHECK(t.ft[1].authenticated[SLUICE_STUN_CREATE_PERMISSION] >= 1);
    CHECK(t.ft[1].indications[SLUICE_STUN_SEND] >= 1);

    /* Two Data indications from the peer in one piece of stream, split at
     * every byte boundary: each comes out once, whole, in order. */
    for (int i = 0; i < 2; i++) {
        int r = fake_turn_data_indication(&t.peer, (const uint8_t *)texts[i], strlen(texts[i]),
                                          buf + n, sizeof buf - n);
        CHECK(r > 0);
        n += (size_t)r;
    }
    for (size_t k = 0; k <= n; k++) {
        t.n_media = 0;
        CHECK(st_feed(&t, SLUICE_TRANSPORT_TCP, buf, k) >= 0);
        CHECK(st_feed(&t, SLUICE_TRANSPORT_TCP, buf + k, n - k) >= 0);
        CHECK_EQ(t.n_media, 2);
        CHECK_STR(t.media[0], texts[0]);
        CHECK_STR(t.media[1], texts[1]);
    }
    t.n_media = 0;
    for (size_t k = 0; k < n; k++)
        CHECK(st_feed(&t, SLUICE_TRANSPORT_TCP, buf + k, 1) >= 0);
    CHECK_EQ(t.n_media, 2);
    /* Bad arguments; the UDP side of the same server address is no stream. */
    sluice_ice_media m;
    CHECK_EQ(sluice_ice_agent_handle_stream(t.ag, t.now, &t.base, &t.server, SLUICE_TRANSPORT_UDP,
                                            buf, n, &m), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_ice_agent_handle_stream(t.ag, t.now, &t.peer, &t.server, SLUICE_TRANSPORT_TCP,
                                            buf, n, &m), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_ice_agent_handle_stream(t.ag, t.now, &t.base, &t.server, SLUICE_TRANSPORT_TLS,
                                            buf, n, &m), SLUICE_ERR_NOT_FOUND);

    /* Bytes that are neither STUN nor ChannelData (RFC 8656 §12.5): the
     * stream is broken, the allocation gone, the driver told to close. */
    static const uint8_t junk[] = {0xC0, 0, 0, 4, 'j', 'u', 'n', 'k'};
    CHECK_EQ(st_feed(&t, SLUICE_TRANSPORT_TCP, junk, sizeof junk), SLUICE_ERR_MALFORMED);
    st_pump(&t);
    CHECK_EQ(t.server_errors, 1);
    CHECK_EQ(t.last_error.transport, SLUICE_TRANSPORT_TCP);
    CHECK(sluice_addr_equal(&t.last_error.base, &t.base));
    CHECK(sluice_addr_equal(&t.last_error.server, &t.server));
    CHECK_EQ(t.close_streams, 1);
    CHECK_EQ(t.last_close.transport, SLUICE_TRANSPORT_TCP);
    CHECK(sluice_addr_equal(&t.last_close.base, &t.base));
    CHECK(sluice_addr_equal(&t.last_close.server, &t.server));
    CHECK_EQ(st_feed(&t, SLUICE_TRANSPORT_TCP, buf, n), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_ice_agent_handle_stream_closed(t.ag, t.now, &t.base, &t.server,
                                                   SLUICE_TRANSPORT_TCP), SLUICE_ERR_NOT_FOUND);
    /* Its pairs failed; nothing more goes to the dead stream. */
    sluice_ice_pair_stats ps[4];
    int np = sluice_ice_agent_pair_stats(t.ag, 1, ps, 4);
    for (int i = 0; i < np && i < 4; i++)
        if (ps[i].local.type == SLUICE_ICE_CAND_RELAY)
            CHECK_STR(ps[i].state, "failed");
    unsigned before = t.tx[SLUICE_TRANSPORT_TCP];
    st_run(&t, t.now + 10 * SEC);
    CHECK_EQ(t.tx[SLUICE_TRANSPORT_TCP], before);
    sluice_ice_agent_free(t.ag);
}

static void test_turn_stream_closed(void)
{
    struct st t;
    st_init(&t, 1u << SLUICE_TRANSPORT_UDP | 1u << SLUICE_TRANSPORT_TCP, true);
    st_run(&t, t.now + 2 * SEC);
    /* Two allocations on one server address, one per transport: UDP ranks
     * above TCP, and they have different foundations (RFC 8445 §5.1.1.3). */
    CHECK_EQ(t.n_relay, 2);
    CHECK_EQ(t.gathering_done, 1);
    const sluice_ice_candidate *udp = &t.relay[0], *tcp = &t.relay[1];
    if (udp->addr.port != t.ft[0].relayed4.port) {
        udp = &t.relay[1];
        tcp = &t.relay[0];
    }
    CHECK(udp->priority > tcp->priority);
    CHECK(strcmp(udp->foundation, tcp->foundation) != 0);

    /* The driver reports the TCP stream closed: a SERVER_ERROR (no
     * CLOSE_STREAM back), the UDP allocation is untouched. */
    CHECK_EQ(sluice_ice_agent_handle_stream_closed(t.ag, t.now, &t.base, &t.server,
                                                   SLUICE_TRANSPORT_TCP), 0);
    st_pump(&t);
    CHECK_EQ(t.server_errors, 1);
    CHECK_EQ(t.last_error.transport, SLUICE_TRANSPORT_TCP);
    CHECK_EQ(t.close_streams, 0);
    CHECK_EQ(sluice_ice_agent_handle_stream_closed(t.ag, t.now, &t.base, &t.server,
                                                   SLUICE_TRANSPORT_TCP), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_ice_agent_handle_stream_closed(t.ag, t.now, &t.base, &t.server,
                                                   SLUICE_TRANSPORT_UDP), SLUICE_ERR_INVALID);
    sluice_ice_pair_stats ps[4];
    int np = sluice_ice_agent_pair_stats(t.ag, 1, ps, 4);
    CHECK_EQ(np, 2);
    for (int i = 0; i < np && i < 4; i++) {
        bool on_tcp = sluice_addr_equal(&ps[i].local.addr, &tcp->addr);
        CHECK(on_tcp == (strcmp(ps[i].state, "failed") == 0));
    }

    /* A restart allocates again over TCP; the relayed address it gets back
     * is offered again, and gathering ends once it is known. */
    unsigned allocs = t.ft[1].requests[SLUICE_STUN_ALLOCATE];
    t.n_relay = 0;
    t.gathering_done = 0;
    CHECK_EQ(sluice_ice_agent_restart(t.ag, t.now, 1), 0);
    st_pump(&t);
    CHECK_EQ(t.gathering_done, 0);
    CHECK_EQ(t.n_relay, 1); /* the UDP one, signalled again */
    st_run(&t, t.now + 2 * SEC);
    CHECK(t.ft[1].requests[SLUICE_STUN_ALLOCATE] > allocs);
    CHECK_EQ(t.n_relay, 2);
    CHECK_EQ(t.gathering_done, 1);
    CHECK_EQ(sluice_ice_agent_set_remote_credentials(t.ag, t.now, 1, "rfr2",
                                                     "remotePasswordOfPeer2xyz"), 0);
    sluice_ice_candidate c;
    CHECK_EQ(sluice_ice_candidate_parse(&c, "candidate:1 1 udp 2130706431 192.0.2.2 6000 typ host"),
             0);
    CHECK_EQ(sluice_ice_agent_add_remote_candidate(t.ag, t.now, 1, &c), 0);
    CHECK_EQ(sluice_ice_agent_pair_stats(t.ag, 1, ps, 4), 2);

    /* A connection that never comes up (refused): the allocation fails,
     * gathering still ends. */
    struct st u;
    st_init(&u, 1u << SLUICE_TRANSPORT_TCP, true);
    u.silent = true;
    st_run(&u, u.now + 1 * SEC);
    CHECK_EQ(u.tx[SLUICE_TRANSPORT_TCP], 1);
    CHECK_EQ(sluice_ice_agent_handle_stream_closed(u.ag, u.now, &u.base, &u.server,
                                                   SLUICE_TRANSPORT_TCP), 0);
    st_pump(&u);
    CHECK_EQ(u.server_errors, 1);
    CHECK(strstr(u.last_error.text, "allocate failed") != NULL);
    CHECK_EQ(u.gathering_done, 1);
    CHECK_EQ(u.n_relay, 0);
    sluice_ice_agent_free(u.ag);
    sluice_ice_agent_free(t.ag);
}

static void test_turn_stream_tls(void)
{
    struct st t;
    sluice_ice_turn_server ts = {.transport = SLUICE_TRANSPORT_TLS, .username = "u",
                                 .password = "p"};
    char long_name[300];
    st_init(&t, 0, true);
    ts.server = t.server;
    /* Configuration checks. */
    ts.transport = (sluice_transport)7;
    CHECK_EQ(sluice_ice_agent_add_turn_server(t.ag, &ts), SLUICE_ERR_INVALID);
    ts.transport = SLUICE_TRANSPORT_TLS;
    ts.server_name = "";
    CHECK_EQ(sluice_ice_agent_add_turn_server(t.ag, &ts), SLUICE_ERR_INVALID);
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    ts.server_name = long_name;
    CHECK_EQ(sluice_ice_agent_add_turn_server(t.ag, &ts), SLUICE_ERR_INVALID);
    sluice_ice_agent_free(t.ag);

    /* A CA file that does not exist: the TURN client cannot be made. */
    st_init(&t, 0, true);
    sluice_ice_agent_free(t.ag);
    sluice_ice_config cfg;
    sluice_ice_config_init(&cfg);
    t.ag = sluice_ice_agent_new(&cfg, NULL);
    sluice_ice_agent_set_relay_only(t.ag, true);
    ts.server_name = "turn.example.test";
    ts.ca_file = "/nonexistent/ca.pem";
    CHECK_EQ(sluice_ice_agent_add_turn_server(t.ag, &ts), 0);
    ts.server_name = NULL;
    ts.ca_file = NULL;
    ts.tls_insecure = true;
    ts.server.port++;
    CHECK_EQ(sluice_ice_agent_add_turn_server(t.ag, &ts), 0);
    CHECK_EQ(sluice_ice_agent_add_stream(t.ag, 1), 1);
    CHECK_EQ(sluice_ice_agent_add_base(t.ag, t.now, 1, 1, &t.base), 0);
    CHECK_EQ(sluice_ice_agent_gather(t.ag, t.now), 0);
    st_pump(&t);
    CHECK_EQ(t.server_errors, 1);
    CHECK_EQ(t.last_error.reason, SLUICE_ERR_CRYPTO);
    CHECK_EQ(t.last_error.transport, SLUICE_TRANSPORT_TLS);
    /* The other one starts a TLS handshake: a ClientHello on the stream
     * (RFC 8446 §5.1: record type 22). */
    t.server = ts.server;
    st_run(&t, t.now + 1 * SEC);
    CHECK(t.tx[SLUICE_TRANSPORT_TLS] >= 1);
    CHECK_EQ(t.first_byte[SLUICE_TRANSPORT_TLS], 22);
    /* A server that answers in plain text: a TLS failure, not a crash. */
    static const uint8_t http[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    int rc = st_feed(&t, SLUICE_TRANSPORT_TLS, http, sizeof http - 1);
    CHECK(rc < 0 && rc != SLUICE_ERR_INVALID && rc != SLUICE_ERR_NOT_FOUND);
    st_pump(&t);
    CHECK_EQ(t.server_errors, 2);
    CHECK_EQ(t.close_streams, 1);
    CHECK_EQ(t.last_close.transport, SLUICE_TRANSPORT_TLS);
    CHECK_EQ(t.gathering_done, 1);
    sluice_ice_agent_free(t.ag);
}

/* ALTERNATE-SERVER over TCP (RFC 8489 §10, RFC 8656 §6): the allocation
 * moves to a new stream to the new server; the agent asks for the old one
 * to be closed, and the old stream is no longer its own. */
static void test_turn_stream_redirect(void)
{
    struct st t;
    st_init(&t, 1u << SLUICE_TRANSPORT_TCP, true);
    CHECK_EQ(sluice_addr_parse(&t.alternate, "203.0.113.10:3478", 0), 0);
    t.ft[1].allocate_error = 300;
    t.ft[1].alternate = t.alternate;
    st_run(&t, t.now + 2 * SEC);
    CHECK_EQ(t.close_streams, 1);
    CHECK(sluice_addr_equal(&t.last_close.server, &t.server));
    CHECK_EQ(t.last_close.transport, SLUICE_TRANSPORT_TCP);
    CHECK_EQ(t.server_errors, 0);
    CHECK_EQ(t.n_relay, 1);
    CHECK_EQ(t.gathering_done, 1);
    uint8_t buf[128];
    int n = fake_turn_data_indication(&t.peer, (const uint8_t *)"via the new server", 18, buf,
                                      sizeof buf);
    CHECK_EQ(st_feed(&t, SLUICE_TRANSPORT_TCP, buf, (size_t)n), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(st_feed_from(&t, &t.alternate, SLUICE_TRANSPORT_TCP, buf, (size_t)n), 1);
    CHECK_EQ(t.n_media, 1);
    CHECK_STR(t.media[0], "via the new server");
    sluice_ice_agent_free(t.ag);
}

int main(void)
{
    RUN(test_candidate_syntax);
    RUN(test_connect_host);
    RUN(test_local_credentials);
    RUN(test_two_components);
    RUN(test_role_conflict);
    RUN(test_nominating_check_skips_ta);
    RUN(test_nomination_patience);
    RUN(test_lite_peer_keeps_controlling);
    RUN(test_peer_reflexive);
    RUN(test_trickle_late);
    RUN(test_loss);
    RUN(test_consent_and_restart);
    RUN(test_restart_keeps_media);
    RUN(test_no_path_fails);
    RUN(test_bad_checks);
    RUN(test_bounds);
    RUN(test_dual_stack_preference);
    RUN(test_alloc_failures);
    RUN(test_turn_stream_chunks);
    RUN(test_turn_stream_closed);
    RUN(test_turn_stream_tls);
    RUN(test_turn_stream_redirect);
    return TEST_DONE();
}
