/* SPDX-License-Identifier: MIT */
/* Interop: relayed candidates through coturn over TCP and TLS (RFC 8656
 * §3.1; TLS inside the agent) and over UDP on IPv6 (RFC 6156). Two sluice
 * ICE agents on the real-socket driver (tests/common/ice_driver.h: UDP
 * bases, non-blocking TCP streams to the TURN server) in one process, one
 * poll loop: a (controlling, relay only) allocates over the transport
 * under test, b (controlled, relay only) over UDP, so the only path is
 * a's relay <-> b's relay through coturn. Each case checks both selected
 * pairs, the route a's media takes (padded ChannelData on TCP, records on
 * TLS), application data both ways byte-exact, and reports the setup time
 * (both sides having credentials to both having a selected pair). Plus the
 * failures: a certificate that does not verify, a refused connection.
 * Environment from ice_turn_stream.sh. */
#include "ice_interop.h"
#include "test.h"
#include "test_cert.h"

/* A sluice side with what the tests look at beyond iop_sluice. */
struct side {
    struct iop_sluice s; /* first: the driver's ctx is also an iop_sluice */
    int server_errors;
    sluice_ice_event last_error;
    uint64_t t_error;
};

struct env {
    unsigned port, tls_port, nobody_port;
    char user[64], pass[64];
    const char *ca, *other_ca;
    bool v6;
} env;

static void side_on_event(void *ctx, ice_driver *d, const sluice_ice_event *ev)
{
    struct side *x = ctx;
    if (ev->type == SLUICE_ICE_EVENT_SERVER_ERROR) {
        x->server_errors++;
        x->last_error = *ev;
        x->t_error = ice_drv_now_us();
    }
    iop_sluice_on_event(&x->s, d, ev);
}

/* Signalling between the two: a candidate line, or NULL for
 * end-of-candidates. */
static void to_peer(void *ctx, const char *candidate)
{
    struct side *peer = ctx;
    if (candidate)
        iop_sluice_add_remote(&peer->s, candidate);
    else
        sluice_ice_agent_end_of_candidates(peer->s.ag, ice_drv_now_us(), peer->s.stream);
}

static sluice_ice_turn_server turn_server(const char *ip, sluice_transport tr)
{
    sluice_ice_turn_server ts = {.transport = tr, .username = env.user, .password = env.pass};
    unsigned port = tr == SLUICE_TRANSPORT_TLS ? env.tls_port : env.port;
    if (sluice_addr_parse(&ts.server, ip, (uint16_t)port) != 0)
        abort();
    if (tr == SLUICE_TRANSPORT_TLS)
        ts.ca_file = env.ca;
    return ts;
}

static int side_init(struct side *x, bool controlling, const sluice_ice_turn_server *turn,
                     char peer_dir)
{
    memset(x, 0, sizeof *x);
    /* bases on 127.0.0.1 and ::1: a TURN server of one family uses the
     * base of that family */
    if (iop_sluice_init(&x->s, controlling, turn, true, env.v6, peer_dir) != 0)
        return -1;
    x->s.d->on_event = side_on_event;
    x->s.d->ctx = x;
    return 0;
}

/* One round over both drivers: b's fds ride along in a's ppoll. */
static void iterate(struct side *a, struct side *b, uint64_t deadline)
{
    struct pollfd fds[ICE_DRV_MAX_POLL];
    ice_drv_flush(b->s.d);
    size_t n = ice_drv_pollfds(b->s.d, fds, ICE_DRV_MAX_POLL / 2);
    uint64_t now = ice_drv_now_us(), tb = sluice_ice_agent_next_timeout(b->s.ag);
    ice_drv_poll(a->s.d, deadline, fds, n, tb > now ? tb - now : 0);
    ice_drv_dispatch(b->s.d, fds, n);
}

static bool run_until(struct side *a, struct side *b, uint64_t limit_us,
                      bool (*done)(struct side *, struct side *))
{
    uint64_t deadline = ice_drv_now_us() + limit_us;
    for (int guard = 0; !done(a, b) && ice_drv_now_us() < deadline && guard < 1000000; guard++)
        iterate(a, b, deadline);
    return done(a, b);
}

static bool both_selected(struct side *a, struct side *b)
{
    return (a->s.selected && b->s.selected) || a->s.failed || b->s.failed;
}

static bool data_done(struct side *a, struct side *b)
{
    return iop_rx_complete(&a->s.rx) && iop_rx_complete(&b->s.rx);
}

static bool a_gathered(struct side *a, struct side *b)
{
    (void)b;
    return a->s.gathering_done;
}

static const char *transport_name(sluice_transport tr)
{
    return tr == SLUICE_TRANSPORT_UDP ? "UDP" : tr == SLUICE_TRANSPORT_TCP ? "TCP" : "TLS";
}

static void start(struct side *a, struct side *b)
{
    const char *u, *p;
    a->s.signal = to_peer;
    a->s.signal_ctx = b;
    b->s.signal = to_peer;
    b->s.signal_ctx = a;
    CHECK_EQ(sluice_ice_agent_local_credentials(a->s.ag, a->s.stream, &u, &p), 0);
    CHECK_EQ(sluice_ice_agent_set_remote_credentials(b->s.ag, ice_drv_now_us(), b->s.stream, u, p),
             0);
    CHECK_EQ(sluice_ice_agent_local_credentials(b->s.ag, b->s.stream, &u, &p), 0);
    CHECK_EQ(sluice_ice_agent_set_remote_credentials(a->s.ag, ice_drv_now_us(), a->s.stream, u, p),
             0);
    CHECK_EQ(sluice_ice_agent_gather(a->s.ag, ice_drv_now_us()), 0);
    CHECK_EQ(sluice_ice_agent_gather(b->s.ag, ice_drv_now_us()), 0);
}

/* a over `tr` to the server at ip (server_name for TLS), b over UDP. */
static void relay_case(const char *ip, sluice_transport tr, const char *server_name)
{
    struct side a, b;
    sluice_ice_turn_server ta = turn_server(ip, tr), tb = turn_server(ip, SLUICE_TRANSPORT_UDP);
    ta.server_name = server_name;
    if (side_init(&a, true, &ta, 'b') != 0 || side_init(&b, false, &tb, 'a') != 0) {
        CHECK(!"agents set up");
        goto out;
    }
    iop_diag("a: relay only through coturn over %s at %s%s%s, b: over UDP", transport_name(tr),
             ip, server_name ? ", TLS name " : "", server_name ? server_name : "");
    uint64_t t0 = ice_drv_now_us();
    start(&a, &b);
    CHECK(run_until(&a, &b, IOP_CONNECT_LIMIT, both_selected));
    CHECK(a.s.selected && b.s.selected);
    CHECK(!a.s.failed && !b.s.failed);
    CHECK_EQ(a.server_errors, 0);
    CHECK_EQ(b.server_errors, 0);
    if (!a.s.selected || !b.s.selected) {
        iop_diag("not connected: a %s, b %s; a's last error: %s",
                 sluice_ice_state_name(a.s.state), sluice_ice_state_name(b.s.state),
                 a.server_errors ? a.last_error.text : "none");
        goto out;
    }
    uint64_t t1 = a.s.t_selected > b.s.t_selected ? a.s.t_selected : b.s.t_selected;
    iop_diag("setup time: %.1f ms (a selected at %.1f ms, b at %.1f ms); a opened %" PRIu64
             " stream(s)",
             (double)(t1 - t0) / 1000.0, (double)(a.s.t_selected - t0) / 1000.0,
             (double)(b.s.t_selected - t0) / 1000.0, a.s.d->streams_opened);
    CHECK_EQ(a.s.sel_local.type, SLUICE_ICE_CAND_RELAY);
    CHECK_EQ(b.s.sel_local.type, SLUICE_ICE_CAND_RELAY);
    CHECK(sluice_addr_equal(&a.s.sel_local.addr, &b.s.sel_remote.addr));
    CHECK(sluice_addr_equal(&a.s.sel_remote.addr, &b.s.sel_local.addr));
    CHECK_EQ(a.s.sel_local.addr.family, ta.server.family);
    CHECK_EQ(a.s.d->streams_opened, tr == SLUICE_TRANSPORT_UDP ? 0 : 1);

    /* Media both ways, once the channels are bound (a's route over TCP is
     * then padded ChannelData; over TLS always the agent's records). */
    sluice_ice_route r;
    for (int i = 0; i < 2; i++)
        run_until(&a, &b, 300 * IOP_MS, data_done); /* nothing sent yet: just time */
    CHECK_EQ(sluice_ice_agent_route(a.s.ag, a.s.stream, 1, &r), 0);
    CHECK_EQ(r.transport, tr);
    CHECK(sluice_addr_equal(&r.destination, &ta.server));
    iop_diag("a's route: %s to the server, %s%s", transport_name(r.transport),
             r.framing == SLUICE_ICE_FRAMING_CHANNEL ? "ChannelData"
             : r.framing == SLUICE_ICE_FRAMING_SEND  ? "through sluice_ice_agent_send"
                                                     : "none",
             r.pad ? ", padded to 4" : "");
    CHECK_EQ(r.framing, tr == SLUICE_TRANSPORT_TLS ? SLUICE_ICE_FRAMING_SEND
                                                   : SLUICE_ICE_FRAMING_CHANNEL);
    CHECK_EQ(r.pad, tr == SLUICE_TRANSPORT_TCP);
    CHECK_EQ(iop_sluice_send_all(&a.s, 'a'), 0);
    CHECK_EQ(iop_sluice_send_all(&b.s, 'b'), 0);
    CHECK(run_until(&a, &b, IOP_DATA_LIMIT, data_done));
    CHECK_EQ(a.s.rx.n_ok, IOP_N_PAYLOADS);
    CHECK_EQ(b.s.rx.n_ok, IOP_N_PAYLOADS);
    CHECK_EQ(a.s.rx.n_bad + b.s.rx.n_bad, 0);
    iop_diag("data: a received %d/%d, b %d/%d intact; a's stream %" PRIu64 " bytes out, %" PRIu64
             " in",
             a.s.rx.n_ok, IOP_N_PAYLOADS, b.s.rx.n_ok, IOP_N_PAYLOADS, a.s.d->stream_tx_bytes,
             a.s.d->stream_rx_bytes);
    CHECK_EQ(a.s.d->streams_failed, 0);
out:
    if (t_case_failed && a.s.ag)
        iop_sluice_report(&a.s);
    iop_sluice_free(&a.s);
    iop_sluice_free(&b.s);
}

/* a's server cannot be used: gathering still ends, with the reason. */
static void failure_case(sluice_ice_turn_server ta, int want_reason, const char *what)
{
    struct side a, b;
    sluice_ice_turn_server tb = turn_server("127.0.0.1", SLUICE_TRANSPORT_UDP);
    if (side_init(&a, true, &ta, 'b') != 0 || side_init(&b, false, &tb, 'a') != 0) {
        CHECK(!"agents set up");
        goto out;
    }
    uint64_t t0 = ice_drv_now_us();
    start(&a, &b);
    CHECK(run_until(&a, &b, IOP_CONNECT_LIMIT, a_gathered));
    CHECK_EQ(a.server_errors, 1);
    CHECK_EQ(a.last_error.reason, want_reason);
    CHECK_EQ(a.last_error.transport, ta.transport);
    CHECK_EQ(a.s.n_local_candidates, 0);
    CHECK_EQ(a.s.d->streams_opened, 1);
    iop_diag("%s: \"%s\" after %.1f ms", what, a.last_error.text,
             (double)(a.t_error - t0) / 1000.0);
out:
    iop_sluice_free(&a.s);
    iop_sluice_free(&b.s);
}

static void tcp_ipv4(void)
{
    relay_case("127.0.0.1", SLUICE_TRANSPORT_TCP, NULL);
}

static void tls_ipv4(void)
{
    relay_case("127.0.0.1", SLUICE_TRANSPORT_TLS, NULL); /* verified by IP */
}

/* (The certificate names localhost and 127.0.0.1, not ::1: by name.) */

static void tls_ipv4_by_name(void)
{
    relay_case("127.0.0.1", SLUICE_TRANSPORT_TLS, "localhost");
}

static void udp_ipv6(void)
{
    relay_case("::1", SLUICE_TRANSPORT_UDP, NULL);
}

static void tcp_ipv6(void)
{
    relay_case("::1", SLUICE_TRANSPORT_TCP, NULL);
}

static void tls_ipv6(void)
{
    relay_case("::1", SLUICE_TRANSPORT_TLS, "localhost");
}

static void tls_unknown_ca(void)
{
    sluice_ice_turn_server ta = turn_server("127.0.0.1", SLUICE_TRANSPORT_TLS);
    ta.ca_file = env.other_ca;
    failure_case(ta, SLUICE_ERR_AUTH, "TLS with a CA that did not sign the server's certificate");
}

static void tcp_refused(void)
{
    sluice_ice_turn_server ta = turn_server("127.0.0.1", SLUICE_TRANSPORT_TCP);
    ta.server.port = (uint16_t)env.nobody_port;
    failure_case(ta, SLUICE_ERR_STATE, "TCP to a port nobody listens on");
}

static bool read_env(void)
{
    const char *v = getenv("SLUICE_TURN_STREAM");
    env.ca = getenv("SLUICE_TURN_STREAM_CA");
    env.other_ca = getenv("SLUICE_TURN_STREAM_OTHER_CA");
    env.v6 = getenv("SLUICE_TURN_STREAM_V6") && strcmp(getenv("SLUICE_TURN_STREAM_V6"), "1") == 0;
    return v && env.ca && env.other_ca &&
           sscanf(v, "%u %u %u %63s %63s", &env.port, &env.tls_port, &env.nobody_port, env.user,
                  env.pass) == 5;
}

/* --make-certs DIR: DIR/server.pem, server.key, other.pem, other.key. */
static int make_certs(const char *dir)
{
    char c1[512], k1[512], c2[512], k2[512];
    snprintf(c1, sizeof c1, "%s/server.pem", dir);
    snprintf(k1, sizeof k1, "%s/server.key", dir);
    snprintf(c2, sizeof c2, "%s/other.pem", dir);
    snprintf(k2, sizeof k2, "%s/other.key", dir);
    return make_cert(c1, k1, 1, NULL) && make_cert(c2, k2, 2, NULL) ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--make-certs") == 0)
        return make_certs(argv[2]);
    if (!read_env()) {
        printf("1..0 # SKIP no TURN server: run through ice_turn_stream.sh\n");
        return 77;
    }
    RUN(tcp_ipv4);
    RUN(tls_ipv4);
    RUN(tls_ipv4_by_name);
    if (env.v6) {
        RUN(udp_ipv6);
        RUN(tcp_ipv6);
        RUN(tls_ipv6);
    } else {
        static const char *const names[] = {"udp_ipv6", "tcp_ipv6", "tls_ipv6"};
        for (int i = 0; i < 3; i++)
            printf("ok %d - %s # SKIP ::1 cannot be bound (IPv6 disabled)\n", ++t_cases, names[i]);
    }
    RUN(tls_unknown_ca);
    RUN(tcp_refused);
    return TEST_DONE();
}
