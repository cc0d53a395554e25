/* SPDX-License-Identifier: MIT */
/* Interop: the sluice ICE agent against libnice's NiceAgent (RFC 5245 mode,
 * regular nomination, trickle) in one process over loopback UDP. One loop
 * (ice_nice.h) polls the sluice driver's sockets together with the
 * GMainContext's fds, so neither side spins.
 * Cases, as TAP test points: host candidates with either side controlling
 * (libnice with regular and aggressive nomination), role conflicts, dual
 * stack, and relay-only through coturn (TURN server in the environment, see
 * ice_libnice.sh), and libnice as an ICE-lite agent (RFC 8445 §2.5) with
 * sluice taking the controlling role (§6.1.1). Each case checks the
 * selected pairs of both sides and application data both ways, byte-exact,
 * and reports connection times (from both sides having remote credentials
 * to a selected pair). */
#include "ice_interop.h"
#include "ice_nice.h"
#include "test.h"

struct nice_side {
    NiceAgent *agent;
    guint stream;
    bool gathering_done, ready, selected, failed;
    uint64_t t_ready, t_selected;
    NiceCandidateType sel_local_type, sel_remote_type;
    sluice_addr sel_local, sel_remote;
    int n_local_candidates;
    struct iop_rx rx;
};

struct session {
    GMainContext *ctx;
    struct iop_sluice s;
    struct nice_side n;
    uint64_t t0;
};

/* --- signalling, sluice -> libnice ------------------------------------- */

static void sluice_to_nice(void *ctx, const char *candidate)
{
    struct session *ss = ctx;
    if (!candidate) {
        nice_agent_peer_candidate_gathering_done(ss->n.agent, ss->n.stream);
        return;
    }
    char *sdp = g_strdup_printf("a=%s", candidate);
    NiceCandidate *c = nice_agent_parse_remote_candidate_sdp(ss->n.agent, ss->n.stream, sdp);
    if (!c) {
        iop_diag("libnice cannot parse sluice's %s", sdp);
    } else {
        GSList *l = g_slist_append(NULL, c);
        if (nice_agent_set_remote_candidates(ss->n.agent, ss->n.stream, 1, l) != 1)
            iop_diag("libnice refused sluice's %s", sdp);
        g_slist_free_full(l, (GDestroyNotify)nice_candidate_free);
    }
    g_free(sdp);
}

/* --- libnice signals ---------------------------------------------------- */

static void on_new_candidate(NiceAgent *agent, NiceCandidate *c, gpointer data)
{
    struct session *ss = data;
    gchar *sdp = nice_agent_generate_local_candidate_sdp(agent, c);
    ss->n.n_local_candidates++;
    if (sdp)
        iop_sluice_add_remote(&ss->s, sdp);
    g_free(sdp);
}

static void on_gathering_done(NiceAgent *agent, guint stream, gpointer data)
{
    struct session *ss = data;
    (void)agent;
    (void)stream;
    ss->n.gathering_done = true;
    sluice_ice_agent_end_of_candidates(ss->s.ag, ice_drv_now_us(), ss->s.stream);
}

static void on_state(NiceAgent *agent, guint stream, guint comp, guint state, gpointer data)
{
    struct session *ss = data;
    (void)agent;
    (void)stream;
    (void)comp;
    if (state == NICE_COMPONENT_STATE_READY && !ss->n.ready) {
        ss->n.ready = true;
        ss->n.t_ready = ice_drv_now_us();
    } else if (state == NICE_COMPONENT_STATE_FAILED) {
        ss->n.failed = true;
        iop_diag("libnice component failed");
    }
}

static const char *nice_type_name(NiceCandidateType t)
{
    switch (t) {
    case NICE_CANDIDATE_TYPE_HOST:
        return "host";
    case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE:
        return "srflx";
    case NICE_CANDIDATE_TYPE_PEER_REFLEXIVE:
        return "prflx";
    case NICE_CANDIDATE_TYPE_RELAYED:
        return "relay";
    }
    return "?";
}

static void on_selected_pair(NiceAgent *agent, guint stream, guint comp, NiceCandidate *l,
                             NiceCandidate *r, gpointer data)
{
    struct session *ss = data;
    char la[NICE_ADDRESS_STRING_LEN], ra[NICE_ADDRESS_STRING_LEN];
    (void)agent;
    (void)stream;
    (void)comp;
    if (!ss->n.selected)
        ss->n.t_selected = ice_drv_now_us();
    ss->n.selected = true;
    ss->n.sel_local_type = l->type;
    ss->n.sel_remote_type = r->type;
    ss->n.sel_local = ice_nice_addr(&l->addr);
    ss->n.sel_remote = ice_nice_addr(&r->addr);
    nice_address_to_string(&l->addr, la);
    nice_address_to_string(&r->addr, ra);
    iop_diag("libnice selected pair: local %s %s:%u, remote %s %s:%u", nice_type_name(l->type), la,
             nice_address_get_port(&l->addr), nice_type_name(r->type), ra,
             nice_address_get_port(&r->addr));
}

static void on_recv(NiceAgent *agent, guint stream, guint comp, guint len, gchar *buf,
                    gpointer data)
{
    struct session *ss = data;
    (void)agent;
    (void)stream;
    (void)comp;
    iop_rx_datagram(&ss->n.rx, (const uint8_t *)buf, len);
}

/* --- the loop ----------------------------------------------------------- */

static bool run_until(struct session *ss, uint64_t limit_us, bool (*done)(struct session *))
{
    uint64_t deadline = ice_drv_now_us() + limit_us;
    while (!done(ss) && ice_drv_now_us() < deadline)
        ice_nice_iterate(ss->ctx, &ss->s.d, 1, deadline);
    return done(ss);
}

static bool both_selected(struct session *ss)
{
    return (ss->s.selected && ss->n.selected && ss->n.ready) || ss->s.failed || ss->n.failed;
}

static bool data_done(struct session *ss)
{
    return iop_rx_complete(&ss->s.rx) && iop_rx_complete(&ss->n.rx);
}

/* --- a case ------------------------------------------------------------- */

struct turn_env {
    bool have;
    sluice_ice_turn_server srv;
    char host[64];
    unsigned port;
};

/* One case. libnice's default nomination is aggressive (RFC 5245
 * §8.1.1.2: every check carries USE-CANDIDATE); sluice must accept it when
 * controlled. Both agents starting in the same role is a role conflict
 * (RFC 8445 §7.3.1.1) that the two must resolve on the wire. A lite libnice
 * (NICE_AGENT_OPTION_LITE_MODE, "full-mode" FALSE) is controlled; sluice
 * is told so (sluice_ice_agent_set_remote_lite) and must be the controlling
 * agent whatever role it was configured with (§6.1.1). */
struct case_cfg {
    bool sluice_controlling, nice_controlling;
    bool nice_aggressive;
    bool nice_lite;
    bool dual_stack; /* bases on 127.0.0.1 and ::1 on both sides */
    const struct turn_env *turn;
};

static int nice_init(struct session *ss, const struct case_cfg *cc)
{
    const struct turn_env *turn = cc->turn;
    NiceAddress local;
    NiceAgentOption opts = NICE_AGENT_OPTION_LITE_MODE;
    if (!cc->nice_lite)
        opts = (cc->nice_aggressive ? 0 : NICE_AGENT_OPTION_REGULAR_NOMINATION) |
               NICE_AGENT_OPTION_ICE_TRICKLE;
    gboolean full_mode = TRUE;
    ss->n.agent = nice_agent_new_full(ss->ctx, NICE_COMPATIBILITY_RFC5245, opts);
    if (!ss->n.agent)
        return -1;
    g_object_get(ss->n.agent, "full-mode", &full_mode, NULL);
    if (full_mode == cc->nice_lite) {
        iop_diag("libnice full-mode is %d with%s LITE_MODE", full_mode, cc->nice_lite ? "" : "out");
        return -1;
    }
    g_object_set(ss->n.agent, "controlling-mode", cc->nice_controlling, "ice-tcp", FALSE, "upnp",
                 FALSE, "force-relay", turn != NULL, NULL);
    for (int i = 0; i < (cc->dual_stack ? 2 : 1); i++) {
        nice_address_init(&local);
        nice_address_set_from_string(&local, i ? "::1" : "127.0.0.1");
        nice_agent_add_local_address(ss->n.agent, &local);
    }
    g_signal_connect(ss->n.agent, "new-candidate-full", G_CALLBACK(on_new_candidate), ss);
    g_signal_connect(ss->n.agent, "candidate-gathering-done", G_CALLBACK(on_gathering_done), ss);
    g_signal_connect(ss->n.agent, "component-state-changed", G_CALLBACK(on_state), ss);
    g_signal_connect(ss->n.agent, "new-selected-pair-full", G_CALLBACK(on_selected_pair), ss);
    ss->n.stream = nice_agent_add_stream(ss->n.agent, 1);
    if (!ss->n.stream)
        return -1;
    if (turn &&
        !nice_agent_set_relay_info(ss->n.agent, ss->n.stream, 1, turn->host, turn->port,
                                   turn->srv.username, turn->srv.password, NICE_RELAY_TYPE_TURN_UDP))
        return -1;
    nice_agent_attach_recv(ss->n.agent, ss->n.stream, 1, ss->ctx, on_recv, ss);
    return 0;
}

static void exchange_credentials(struct session *ss)
{
    gchar *ufrag = NULL, *pwd = NULL;
    const char *u, *p;
    nice_agent_get_local_credentials(ss->n.agent, ss->n.stream, &ufrag, &pwd);
    int rc = sluice_ice_agent_set_remote_credentials(ss->s.ag, ice_drv_now_us(), ss->s.stream,
                                                     ufrag, pwd);
    CHECK_EQ(rc, 0);
    g_free(ufrag);
    g_free(pwd);
    CHECK_EQ(sluice_ice_agent_local_credentials(ss->s.ag, ss->s.stream, &u, &p), 0);
    CHECK(nice_agent_set_remote_credentials(ss->n.agent, ss->n.stream, u, p));
    ss->t0 = ice_drv_now_us();
}

static double ms_since(uint64_t t0, uint64_t t)
{
    return (double)(t - t0) / 1000.0;
}

static const char *role(bool controlling)
{
    return controlling ? "controlling" : "controlled";
}

static void run_case(const struct case_cfg *cc)
{
    const struct turn_env *turn = cc->turn;
    struct session ss;
    memset(&ss, 0, sizeof ss);
    ss.ctx = g_main_context_new();
    CHECK(g_main_context_acquire(ss.ctx));
    ss.n.rx.dir = 's';
    if (iop_sluice_init(&ss.s, cc->sluice_controlling, turn ? &turn->srv : NULL, turn != NULL,
                        cc->dual_stack, 'n') != 0 ||
        nice_init(&ss, cc) != 0) {
        CHECK(!"agents set up");
        goto out;
    }
    ss.s.signal = sluice_to_nice;
    ss.s.signal_ctx = &ss;
    if (cc->nice_lite)
        sluice_ice_agent_set_remote_lite(ss.s.ag, true);
    iop_diag("sluice %s, libnice %s (%s)%s", role(cc->sluice_controlling),
             role(cc->nice_controlling),
             cc->nice_lite         ? "ICE-lite"
             : cc->nice_aggressive ? "aggressive nomination"
                                   : "regular nomination",
             turn              ? ", relay only through coturn"
             : cc->dual_stack ? ", host candidates on 127.0.0.1 and ::1"
                              : ", host candidates on 127.0.0.1");

    exchange_credentials(&ss);
    CHECK_EQ(sluice_ice_agent_gather(ss.s.ag, ice_drv_now_us()), 0);
    CHECK(nice_agent_gather_candidates(ss.n.agent, ss.n.stream));

    bool connected = run_until(&ss, IOP_CONNECT_LIMIT, both_selected);
    CHECK(connected);
    CHECK(!ss.s.failed);
    CHECK(!ss.n.failed);
    CHECK(ss.s.selected);
    CHECK(ss.n.selected);
    CHECK(ss.n.ready);
    if (!ss.s.selected || !ss.n.selected || !ss.n.ready) {
        iop_diag("not connected after %.0f ms: sluice %s (%s), libnice selected %d ready %d",
                 ms_since(ss.t0, ice_drv_now_us()), ss.s.selected ? "selected" : "no pair",
                 sluice_ice_state_name(ss.s.state), ss.n.selected, ss.n.ready);
        iop_sluice_report(&ss.s);
        goto out;
    }
    iop_diag("connection time: sluice %.1f ms, libnice %.1f ms (selected pair), libnice ready "
             "%.1f ms",
             ms_since(ss.t0, ss.s.t_selected), ms_since(ss.t0, ss.n.t_selected),
             ms_since(ss.t0, ss.n.t_ready));
    sluice_ice_cand_type want = turn ? SLUICE_ICE_CAND_RELAY : SLUICE_ICE_CAND_HOST;
    CHECK_EQ(ss.s.sel_local.type, want);
    CHECK_EQ(ss.n.sel_local_type,
             turn ? NICE_CANDIDATE_TYPE_RELAYED : NICE_CANDIDATE_TYPE_HOST);
    if (!turn)
        CHECK_EQ(ss.s.sel_remote.type, SLUICE_ICE_CAND_HOST);
    /* Both selected the same pair. */
    CHECK(sluice_addr_equal(&ss.s.sel_local.addr, &ss.n.sel_remote));
    CHECK(sluice_addr_equal(&ss.s.sel_remote.addr, &ss.n.sel_local));
    if (cc->nice_lite) {
        /* RFC 8445 §6.1.1: the full agent controls; the role came from the
         * configuration, not from a conflict on the wire. */
        sluice_ice_stats st;
        sluice_ice_agent_get_stats(ss.s.ag, &st);
        iop_diag("lite peer: sluice %s (configured %s), %" PRIu64 " role conflicts, %d ROLE "
                 "events, %" PRIu64 " checks received",
                 role(sluice_ice_agent_controlling(ss.s.ag)), role(cc->sluice_controlling),
                 st.role_conflicts, ss.s.n_role_events, st.checks_received);
        /* Also when the lite peer claims the controlling role: it may
         * answer with 487 (its tie-breaker is larger in half the runs),
         * and sluice keeps controlling and checks again. */
        CHECK(sluice_ice_agent_controlling(ss.s.ag));
        CHECK_EQ(ss.s.n_role_events, 0);
        if (!cc->nice_controlling)
            CHECK_EQ(st.role_conflicts, 0);
    } else if (cc->sluice_controlling == cc->nice_controlling) {
        /* libnice's "controlling-mode" keeps the role it was given (it
         * resolves conflicts internally), so only sluice's side is visible
         * here. */
        bool now = sluice_ice_agent_controlling(ss.s.ag);
        iop_diag("role conflict resolved: sluice %s now (%d ROLE events)", role(now),
                 ss.s.n_role_events);
        CHECK_EQ(ss.s.n_role_events, now != cc->sluice_controlling);
    }
    if (cc->dual_stack) {
        /* RFC 8421 §4: IPv6 first; libnice ranks its ::1 candidate higher too. */
        iop_diag("dual stack: sluice selected %s", ss.s.sel_local.addr.family == SLUICE_AF_INET6
                                                       ? "IPv6"
                                                       : "IPv4");
        CHECK_EQ(ss.s.sel_local.addr.family, ss.s.sel_remote.addr.family);
    }

    /* Application data both ways. */
    sluice_ice_route route;
    CHECK_EQ(sluice_ice_agent_route(ss.s.ag, ss.s.stream, 1, &route), 0);
    iop_diag("sluice route: framing %s",
             route.framing == SLUICE_ICE_FRAMING_NONE      ? "none"
             : route.framing == SLUICE_ICE_FRAMING_CHANNEL ? "ChannelData"
                                                           : "Send indication");
    CHECK_EQ(iop_sluice_send_all(&ss.s, 's'), 0);
    for (int i = 0; i < IOP_N_PAYLOADS; i++) {
        uint8_t buf[1500];
        size_t n = iop_payload(buf, 'n', i);
        CHECK_EQ(nice_agent_send(ss.n.agent, ss.n.stream, 1, (guint)n, (const gchar *)buf),
                 (int)n);
    }
    CHECK(run_until(&ss, IOP_DATA_LIMIT, data_done));
    CHECK_EQ(ss.s.rx.n_ok, IOP_N_PAYLOADS);
    CHECK_EQ(ss.n.rx.n_ok, IOP_N_PAYLOADS);
    CHECK_EQ(ss.s.rx.n_bad, 0);
    CHECK_EQ(ss.n.rx.n_bad, 0);
    iop_diag("data: sluice received %d/%d, libnice received %d/%d intact", ss.s.rx.n_ok,
             IOP_N_PAYLOADS, ss.n.rx.n_ok, IOP_N_PAYLOADS);
    if (t_case_failed)
        iop_sluice_report(&ss.s);
out:
    if (ss.n.agent) {
        nice_agent_attach_recv(ss.n.agent, ss.n.stream, 1, ss.ctx, NULL, NULL);
        nice_agent_close_async(ss.n.agent, NULL, NULL);
        g_object_unref(ss.n.agent);
    }
    /* Let libnice's pending sources (closing sockets, TURN refresh 0) run. */
    for (int i = 0; i < 100 && g_main_context_iteration(ss.ctx, FALSE); i++)
        ;
    iop_sluice_free(&ss.s);
    g_main_context_release(ss.ctx);
    g_main_context_unref(ss.ctx);
}

static struct turn_env turn_env;

static void host_sluice_controlling(void)
{
    run_case(&(struct case_cfg){.sluice_controlling = true});
}

static void host_sluice_controlled(void)
{
    run_case(&(struct case_cfg){.nice_controlling = true});
}

static void host_sluice_controlled_aggressive(void)
{
    run_case(&(struct case_cfg){.nice_controlling = true, .nice_aggressive = true});
}

static void lite_sluice_controlling(void)
{
    run_case(&(struct case_cfg){.sluice_controlling = true, .nice_lite = true});
}

static void lite_sluice_configured_controlled(void)
{
    run_case(&(struct case_cfg){.nice_lite = true});
}

static void lite_peer_claims_controlling(void)
{
    run_case(&(struct case_cfg){
        .sluice_controlling = true, .nice_controlling = true, .nice_lite = true});
}

static void role_conflict_both_controlling(void)
{
    run_case(&(struct case_cfg){.sluice_controlling = true, .nice_controlling = true});
}

static void role_conflict_both_controlled(void)
{
    run_case(&(struct case_cfg){0});
}

static void dual_stack_sluice_controlling(void)
{
    run_case(&(struct case_cfg){.sluice_controlling = true, .dual_stack = true});
}

static void relay_only_sluice_controlling(void)
{
    run_case(&(struct case_cfg){.sluice_controlling = true, .turn = &turn_env});
}

static void relay_only_sluice_controlled(void)
{
    run_case(&(struct case_cfg){.nice_controlling = true, .turn = &turn_env});
}

/* SLUICE_TURN="127.0.0.1:PORT USER PASSWORD" from ice_libnice.sh. */
static bool read_turn_env(struct turn_env *t)
{
    static char user[128], pass[128];
    const char *v = getenv("SLUICE_TURN");
    char addr[96];
    if (!v || sscanf(v, "%95s %127s %127s", addr, user, pass) != 3)
        return false;
    if (sluice_addr_parse(&t->srv.server, addr, 3478) != 0 ||
        sluice_addr_format(&t->srv.server, false, t->host, sizeof t->host) < 0)
        return false;
    t->port = t->srv.server.port;
    t->srv.transport = SLUICE_TRANSPORT_UDP;
    t->srv.username = user;
    t->srv.password = pass;
    t->have = true;
    return true;
}

int main(void)
{
    RUN(host_sluice_controlling);
    RUN(host_sluice_controlled);
    RUN(host_sluice_controlled_aggressive);
    RUN(role_conflict_both_controlling);
    RUN(role_conflict_both_controlled);
    RUN(lite_sluice_controlling);
    RUN(lite_sluice_configured_controlled);
    RUN(lite_peer_claims_controlling);
    if (iop_have_ipv6_loopback()) {
        RUN(dual_stack_sluice_controlling);
    } else {
        t_cases++;
        printf("ok %d - dual_stack_sluice_controlling # SKIP ::1 cannot be bound (IPv6 "
               "disabled)\n",
               t_cases);
    }
    const char *turn_error = getenv("SLUICE_TURN_ERROR");
    if (read_turn_env(&turn_env)) {
        RUN(relay_only_sluice_controlling);
        RUN(relay_only_sluice_controlled);
    } else {
        static const char *const names[] = {"relay_only_sluice_controlling",
                                            "relay_only_sluice_controlled"};
        for (int i = 0; i < 2; i++) {
            t_cases++;
            if (turn_error) {
                t_failures++;
                printf("not ok %d - %s: %s\n", t_cases, names[i], turn_error);
            } else {
                printf("ok %d - %s # SKIP no TURN server: SLUICE_TURN unset (ice_libnice.sh "
                       "sets it when coturn's turnserver is installed)\n",
                       t_cases, names[i]);
            }
        }
    }
    return TEST_DONE();
}
