/* SPDX-License-Identifier: MIT */
/* The sluice side of the ICE interop tests (ice_libnice.c, ice_aioice.c):
 * one agent on the real-socket driver with one stream of one component on
 * 127.0.0.1, its events turned into signalling and timings, the test
 * payloads and their byte-exact check. */
#ifndef SLUICE_ICE_INTEROP_H
#define SLUICE_ICE_INTEROP_H

#include "ice_driver.h"

#include <inttypes.h>
#include <stdarg.h>

#define IOP_MS 1000ull
#define IOP_SEC 1000000ull
#define IOP_N_PAYLOADS 4
/* Every case must finish well under 20 s. */
#define IOP_CONNECT_LIMIT (10 * IOP_SEC)
#define IOP_DATA_LIMIT (3 * IOP_SEC)

/* Application data: sizes from one byte to a full-size datagram, every byte
 * a function of (direction, index, offset). None starts with 0-3 or 64-79,
 * so no receiver could take it for STUN or ChannelData (RFC 7983). */
static const size_t iop_payload_len[IOP_N_PAYLOADS] = {1, 100, 1200, 1400};

static inline size_t iop_payload(uint8_t *buf, char dir, int i)
{
    size_t n = iop_payload_len[i];
    for (size_t k = 0; k < n; k++)
        buf[k] = (uint8_t)(128 + ((unsigned)dir * 7u + (unsigned)i * 13u + (unsigned)k) % 64u);
    return n;
}

/* Received payloads: which of the expected ones arrived intact. */
struct iop_rx {
    char dir; /* the sender's direction tag */
    bool got[IOP_N_PAYLOADS];
    int n_ok, n_bad;
};

static inline void iop_rx_datagram(struct iop_rx *rx, const uint8_t *data, size_t len)
{
    uint8_t want[1500];
    for (int i = 0; i < IOP_N_PAYLOADS; i++) {
        if (len != iop_payload_len[i])
            continue;
        iop_payload(want, rx->dir, i);
        if (memcmp(want, data, len) == 0) {
            if (!rx->got[i]) {
                rx->got[i] = true;
                rx->n_ok++;
            }
            return;
        }
    }
    rx->n_bad++;
}

static inline bool iop_rx_complete(const struct iop_rx *rx)
{
    return rx->n_ok == IOP_N_PAYLOADS;
}

/* The sluice agent with its driver. */
struct iop_sluice {
    sluice_ice_agent *ag;
    ice_driver *d;
    int stream;
    bool gathering_done, selected, failed;
    uint64_t t_selected; /* ice_drv_now_us() of SELECTED_PAIR */
    sluice_ice_state state;
    sluice_ice_candidate sel_local, sel_remote;
    int n_local_candidates, n_role_events;
    struct iop_rx rx;
    /* Signalling to the peer: an SDP "candidate:..." line, or NULL for
     * end-of-candidates. */
    void (*signal)(void *ctx, const char *candidate);
    void *signal_ctx;
};

__attribute__((format(printf, 1, 2))) static inline void iop_diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

static inline void iop_sluice_on_event(void *ctx, ice_driver *d, const sluice_ice_event *ev)
{
    struct iop_sluice *s = ctx;
    char line[SLUICE_ICE_CANDIDATE_TEXT_MAX], l[SLUICE_ICE_CANDIDATE_TEXT_MAX],
        r[SLUICE_ICE_CANDIDATE_TEXT_MAX];
    (void)d;
    switch (ev->type) {
    case SLUICE_ICE_EVENT_LOCAL_CANDIDATE:
        s->n_local_candidates++;
        if (sluice_ice_candidate_format(&ev->candidate, line, sizeof line) > 0 && s->signal)
            s->signal(s->signal_ctx, line);
        break;
    case SLUICE_ICE_EVENT_GATHERING_DONE:
        s->gathering_done = true;
        if (s->signal)
            s->signal(s->signal_ctx, NULL);
        break;
    case SLUICE_ICE_EVENT_STATE:
        s->state = ev->state;
        if (ev->state == SLUICE_ICE_FAILED)
            s->failed = true;
        break;
    case SLUICE_ICE_EVENT_SELECTED_PAIR:
        if (!s->selected)
            s->t_selected = ice_drv_now_us();
        s->selected = true;
        s->sel_local = ev->local;
        s->sel_remote = ev->remote;
        sluice_ice_candidate_format(&ev->local, l, sizeof l);
        sluice_ice_candidate_format(&ev->remote, r, sizeof r);
        iop_diag("sluice selected pair: local %s, remote %s", l, r);
        break;
    case SLUICE_ICE_EVENT_ROLE:
        s->n_role_events++;
        iop_diag("sluice role changed: %s", ev->controlling ? "controlling" : "controlled");
        break;
    case SLUICE_ICE_EVENT_SERVER_ERROR:
        iop_diag("sluice server error %d (%s): %s", ev->error_code, sluice_strerror(ev->reason),
                 ev->text);
        break;
    default:
        break;
    }
}

static inline void iop_sluice_on_media(void *ctx, ice_driver *d, const sluice_ice_media *m)
{
    struct iop_sluice *s = ctx;
    (void)d;
    iop_rx_datagram(&s->rx, m->data, m->len);
}

/* True when a UDP socket can be bound on ::1 (IPv6 is enabled). */
static inline bool iop_have_ipv6_loopback(void)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A sluice agent with one stream of one component and one base on
 * 127.0.0.1 (and one on ::1 with dual_stack); with turn (may be NULL) a
 * TURN server, and relay_only. Returns 0, or -1 with a diagnostic
 * printed. */
static inline int iop_sluice_init(struct iop_sluice *s, bool controlling,
                                  const sluice_ice_turn_server *turn, bool relay_only,
                                  bool dual_stack, char peer_dir)
{
    sluice_ice_config cfg;
    int err = 0;
    memset(s, 0, sizeof *s);
    s->rx.dir = peer_dir;
    sluice_ice_config_init(&cfg);
    cfg.controlling = controlling;
    cfg.software = "sluice interop test";
    s->ag = sluice_ice_agent_new(&cfg, &err);
    if (!s->ag) {
        iop_diag("sluice_ice_agent_new: %s", sluice_strerror(err));
        return -1;
    }
    s->d = ice_drv_new(s->ag, iop_sluice_on_event, iop_sluice_on_media, s);
    if (!s->d)
        return -1;
    if (turn && (err = sluice_ice_agent_add_turn_server(s->ag, turn)) != 0) {
        iop_diag("add_turn_server: %s", sluice_strerror(err));
        return -1;
    }
    sluice_ice_agent_set_relay_only(s->ag, relay_only);
    s->stream = sluice_ice_agent_add_stream(s->ag, 1);
    if (s->stream < 1) {
        iop_diag("add_stream: %s", sluice_strerror(s->stream));
        return -1;
    }
    if (ice_drv_add_base(s->d, ice_drv_now_us(), s->stream, 1, "127.0.0.1", NULL) != 0 ||
        (dual_stack && ice_drv_add_base(s->d, ice_drv_now_us(), s->stream, 1, "::1", NULL) != 0)) {
        iop_diag("driver: %s", s->d->last_error);
        return -1;
    }
    return 0;
}

static inline void iop_sluice_free(struct iop_sluice *s)
{
    ice_drv_free(s->d);
    sluice_ice_agent_free(s->ag);
    s->d = NULL;
    s->ag = NULL;
}

/* Send every payload of direction dir on the selected pair. */
static inline int iop_sluice_send_all(struct iop_sluice *s, char dir)
{
    uint8_t buf[1500];
    for (int i = 0; i < IOP_N_PAYLOADS; i++) {
        size_t n = iop_payload(buf, dir, i);
        if (ice_drv_send(s->d, s->stream, 1, buf, n) != 0) {
            iop_diag("sluice send: %s", s->d->last_error);
            return -1;
        }
    }
    return 0;
}

/* Parse an SDP candidate from the peer and hand it to the agent. */
static inline int iop_sluice_add_remote(struct iop_sluice *s, const char *sdp)
{
    sluice_ice_candidate c;
    int rc = sluice_ice_candidate_parse(&c, sdp);
    if (rc == SLUICE_ERR_UNSUPPORTED) {
        iop_diag("sluice ignores candidate (unsupported): %s", sdp);
        return 0;
    }
    if (rc == 0)
        rc = sluice_ice_agent_add_remote_candidate(s->ag, ice_drv_now_us(), s->stream, &c);
    if (rc != 0)
        iop_diag("sluice refused candidate \"%s\": %s", sdp, sluice_strerror(rc));
    return rc;
}

/* Selected-pair statistics of the sluice side, for diagnostics. */
static inline void iop_sluice_report(const struct iop_sluice *s)
{
    sluice_ice_pair_stats ps[16];
    sluice_ice_stats st;
    char l[SLUICE_ICE_CANDIDATE_TEXT_MAX], r[SLUICE_ICE_CANDIDATE_TEXT_MAX];
    int n = sluice_ice_agent_pair_stats(s->ag, s->stream, ps, 16);
    sluice_ice_agent_get_stats(s->ag, &st);
    iop_diag("sluice: state %s, %s, checks sent %" PRIu64 " received %" PRIu64
             " rejected %" PRIu64 ", media dropped %" PRIu64 ", %d local candidates",
             sluice_ice_state_name(sluice_ice_agent_state(s->ag, s->stream)),
             sluice_ice_agent_controlling(s->ag) ? "controlling" : "controlled", st.checks_sent,
             st.checks_received, st.checks_rejected, st.media_dropped, s->n_local_candidates);
    for (int i = 0; i < n && i < 16; i++) {
        sluice_ice_candidate_format(&ps[i].local, l, sizeof l);
        sluice_ice_candidate_format(&ps[i].remote, r, sizeof r);
        iop_diag("  pair %s%s%s: %s -> %s (req %" PRIu64 "/%" PRIu64 " resp %" PRIu64 "/%" PRIu64
                 ")",
                 ps[i].state, ps[i].nominated ? " nominated" : "", ps[i].selected ? " selected" : "",
                 l, r, ps[i].requests_sent, ps[i].responses_received, ps[i].requests_received,
                 ps[i].responses_sent);
    }
}

#endif
