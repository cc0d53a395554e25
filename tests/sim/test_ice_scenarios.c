/* SPDX-License-Identifier: MIT */
/* The ICE scenario matrix on the simulator (issue 5): two sluice agents,
 * each behind {no NAT, full cone, restricted cone, port-restricted cone,
 * symmetric}, over IPv4, IPv6 or dual stack, with and without a TURN
 * server (sluice's own TURN core, which also answers STUN). Every scenario
 * states its expected outcome — direct, reflexive or relayed, and failure
 * only where no path exists — and measures setup time in virtual time.
 * Plus: 20% loss, role conflicts, consent loss after a NAT reboot and
 * recovery by ICE restart. Seeded: a failing case replays bit for bit. */
#include <stdio.h>

#include "sim.h"
#include "sluice/ice.h"
#include "test.h"

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
    sluice_rng rng;
};

static void flush(struct agent *a, uint64_t now);

static void deliver(void *ctx, sim_net *net, uint64_t now, const sluice_addr *local,
                    const sluice_addr *remote, const uint8_t *data, size_t len)
{
    struct agent *a = ctx;
    sluice_ice_media m;
    (void)net;
    int rc = sluice_ice_agent_handle_datagram(a->ag, now, local, remote, data, len, &m);
    CHECK(rc >= 0);
    if (rc == 1)
        a->media_rx++;
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
        CHECK_EQ(sim_send(a->net, a->host, now, &meta.source, &meta.destination, buf, (size_t)n),
                 0);
    CHECK(n == 0);
    while (sluice_ice_agent_poll_event(a->ag, &ev)) {
        struct agent *p = a->peer;
        switch (ev.type) {
        case SLUICE_ICE_EVENT_LOCAL_CANDIDATE:
            sluice_ice_agent_add_remote_candidate(p->ag, now, p->stream, &ev.candidate);
            sim_host_wake(a->net, p->host);
            break;
        case SLUICE_ICE_EVENT_GATHERING_DONE:
            sluice_ice_agent_end_of_candidates(p->ag, now, p->stream);
            sim_host_wake(a->net, p->host);
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
        default:
            break;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* A world: server host, two agents behind their NATs. */

struct world {
    sim_net *net;
    struct agent a, b;
    int realm_a, realm_b;
    bool turn;
};

static sluice_turn_server_user turn_user = {.name = "user", .password = "pass"};

static void add_server(struct world *w)
{
    sluice_addr l[2], r4, r6;
    int h = sim_host_add(w->net, "server");
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
    CHECK_EQ(sim_turn_server_add(w->net, h, l, 2, &sc), 0);
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

static struct world *world_new(uint64_t seed, int nat_a, int nat_b, int fam, bool turn)
{
    struct world *w = calloc(1, sizeof *w);
    w->net = sim_net_new(seed);
    w->turn = turn;
    add_server(w);
    add_agent(w, &w->a, "a", nat_a, fam, 1, true);
    add_agent(w, &w->b, "b", nat_b, fam, 2, false);
    w->a.peer = &w->b;
    w->b.peer = &w->a;
    return w;
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
        sluice_turn_channel_header(buf, r.channel, (uint16_t)len);
        memcpy(buf + 4, text, len);
        CHECK_EQ(sim_send(w->net, from->host, now, &r.base, &r.destination, buf, len + 4), 0);
    } else if (r.framing == SLUICE_ICE_FRAMING_SEND) {
        sluice_transmit meta;
        int n = sluice_ice_agent_send(from->ag, now, from->stream, 1, (const uint8_t *)text, len,
                                      buf, sizeof buf, &meta);
        CHECK(n > 0);
        if (n > 0)
            CHECK_EQ(sim_send(w->net, from->host, now, &meta.source, &meta.destination, buf,
                              (size_t)n), 0);
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

int main(void)
{
    RUN(test_matrix_v4);
    RUN(test_matrix_v6_dual);
    RUN(test_loss_20);
    RUN(test_role_conflict_sim);
    RUN(test_replay);
    RUN(test_consent_nat_reboot);
    return TEST_DONE();
}
