/* SPDX-License-Identifier: MIT */
/* ICE connection setup time over loopback UDP: sluice against sluice,
 * libnice's NiceAgent against NiceAgent, and the two mixed, at equal Ta
 * (20 ms and 50 ms) and at each library's defaults. One host candidate per
 * side on 127.0.0.1, one component. The clock starts when both sides have
 * the other's credentials and every candidate, and stops when both have a
 * selected (nominated) pair. Everything runs in one thread: one ppoll()
 * over the sluice drivers' sockets and the GMainContext's fds
 * (tests/interop/ice_nice.h).
 *
 *   bench_ice_setup [--runs N] [--only TEXT]
 *
 * --runs: sessions per configuration (default 20), run round-robin over the
 * configurations so that bursts of other work spread over all of them.
 * --only: run the configurations whose label contains TEXT.
 * ICE_DRV_TRACE=1 prints every datagram a sluice agent sends or receives. */
#include "ice_nice.h"

#include <math.h>

#define MS 1000ull
#define MAX_RUNS 200
#define MAX_CANDS 8
#define SESSION_LIMIT (3000 * MS)
#define GATHER_LIMIT (2000 * MS)

enum impl { SLUICE, NICE };

/* libnice's two ways of being created here: nice_agent_new()'s defaults
 * (aggressive nomination, no trickle), or webrtcbin's flags (gst-plugins-bad
 * ext/webrtc/nice: ICE_TRICKLE | REGULAR_NOMINATION). */
enum nice_mode { NICE_DEFAULT, NICE_WEBRTCBIN };

struct side {
    enum impl impl;
    bool controlling;
    sluice_ice_agent *ag;
    ice_driver *d;
    int stream;
    NiceAgent *na;
    guint nstream;
    bool ready; /* libnice: component READY */
    char ufrag[SLUICE_ICE_UFRAG_MAX + 1], pwd[SLUICE_ICE_PWD_MAX + 1];
    char cands[MAX_CANDS][SLUICE_ICE_CANDIDATE_TEXT_MAX];
    int n_cands;
    bool gathered, selected, failed, done;
    uint64_t t_done;
    sluice_addr sel_local, sel_remote;
};

struct config {
    const char *group; /* "Ta 20 ms", "Ta 50 ms", "defaults" */
    const char *label;
    enum impl ctl, ctd; /* the controlling and the controlled side */
    enum nice_mode mode;
    unsigned ta_sluice_ms, ta_nice_ms;
};

#define AGGR "libnice -> libnice, aggressive (its default)"
#define REGU "libnice -> libnice, regular (webrtcbin)"

/* Who talks to whom; each runs at Ta 20 ms and at Ta 50 ms on both sides.
 * The mixed ones (from the fourth on) also run with each side at its own
 * default Ta (sluice 50 ms, libnice 20 ms); the same-library rows of that
 * "defaults" group are the Ta 50 / Ta 20 rows. */
static const struct config pairings[] = {
    {NULL, "sluice -> sluice", SLUICE, SLUICE, NICE_DEFAULT, 0, 0},
    {NULL, AGGR, NICE, NICE, NICE_DEFAULT, 0, 0},
    {NULL, REGU, NICE, NICE, NICE_WEBRTCBIN, 0, 0},
    {NULL, "sluice -> libnice (webrtcbin flags)", SLUICE, NICE, NICE_WEBRTCBIN, 0, 0},
    {NULL, "libnice aggressive -> sluice", NICE, SLUICE, NICE_DEFAULT, 0, 0},
    {NULL, "libnice regular -> sluice", NICE, SLUICE, NICE_WEBRTCBIN, 0, 0},
};
#define N_PAIRINGS (sizeof pairings / sizeof pairings[0])
#define FIRST_MIXED 3

#define N_CONFIGS (2 * N_PAIRINGS + (N_PAIRINGS - FIRST_MIXED))
static struct config configs[N_CONFIGS];

static void make_configs(void)
{
    size_t n = 0;
    static const struct {
        const char *group;
        unsigned ta_sluice_ms, ta_nice_ms;
        size_t first;
    } groups[] = {
        {"Ta 20 ms", 20, 20, 0}, {"Ta 50 ms", 50, 50, 0}, {"defaults", 50, 20, FIRST_MIXED}};
    for (size_t g = 0; g < 3; g++) {
        for (size_t i = groups[g].first; i < N_PAIRINGS; i++) {
            configs[n] = pairings[i];
            configs[n].group = groups[g].group;
            configs[n].ta_sluice_ms = groups[g].ta_sluice_ms;
            configs[n++].ta_nice_ms = groups[g].ta_nice_ms;
        }
    }
}

/* Setup times of each configuration, ms. */
static struct result {
    double ms[MAX_RUNS];
    int n, failures;
} results[N_CONFIGS];

struct run {
    GMainContext *ctx;
    struct side side[2]; /* [0] controlling, [1] controlled */
    uint64_t t0;
};

static void side_check_done(struct side *s)
{
    if (!s->done && s->selected && (s->impl == SLUICE || s->ready)) {
        s->done = true;
        s->t_done = ice_drv_now_us();
    }
}

static void add_local_candidate(struct side *s, const char *sdp)
{
    if (s->n_cands < MAX_CANDS)
        snprintf(s->cands[s->n_cands++], sizeof s->cands[0], "%s", sdp);
}

/* --- sluice ------------------------------------------------------------- */

static void sluice_on_event(void *ctx, ice_driver *d, const sluice_ice_event *ev)
{
    struct side *s = ctx;
    char line[SLUICE_ICE_CANDIDATE_TEXT_MAX];
    (void)d;
    switch (ev->type) {
    case SLUICE_ICE_EVENT_LOCAL_CANDIDATE:
        if (sluice_ice_candidate_format(&ev->candidate, line, sizeof line) > 0)
            add_local_candidate(s, line);
        break;
    case SLUICE_ICE_EVENT_GATHERING_DONE:
        s->gathered = true;
        break;
    case SLUICE_ICE_EVENT_STATE:
        if (ev->state == SLUICE_ICE_FAILED)
            s->failed = true;
        break;
    case SLUICE_ICE_EVENT_SELECTED_PAIR:
        s->selected = true;
        s->sel_local = ev->local.addr;
        s->sel_remote = ev->remote.addr;
        side_check_done(s);
        break;
    default:
        break;
    }
}

static int sluice_side_init(struct side *s, unsigned ta_ms)
{
    sluice_ice_config cfg;
    const char *u, *p;
    int err = 0;
    sluice_ice_config_init(&cfg);
    cfg.controlling = s->controlling;
    cfg.ta_us = ta_ms * MS;
    s->ag = sluice_ice_agent_new(&cfg, &err);
    if (!s->ag || !(s->d = ice_drv_new(s->ag, sluice_on_event, NULL, s)))
        return -1;
    s->stream = sluice_ice_agent_add_stream(s->ag, 1);
    if (s->stream < 1 || ice_drv_add_base(s->d, ice_drv_now_us(), s->stream, 1, "127.0.0.1", NULL))
        return -1;
    if (sluice_ice_agent_local_credentials(s->ag, s->stream, &u, &p) != 0)
        return -1;
    snprintf(s->ufrag, sizeof s->ufrag, "%s", u);
    snprintf(s->pwd, sizeof s->pwd, "%s", p);
    return sluice_ice_agent_gather(s->ag, ice_drv_now_us());
}

static int sluice_side_set_remote(struct side *s, const struct side *peer)
{
    uint64_t now = ice_drv_now_us();
    if (sluice_ice_agent_set_remote_credentials(s->ag, now, s->stream, peer->ufrag, peer->pwd))
        return -1;
    for (int i = 0; i < peer->n_cands; i++) {
        sluice_ice_candidate c;
        if (sluice_ice_candidate_parse(&c, peer->cands[i]) != 0 ||
            sluice_ice_agent_add_remote_candidate(s->ag, now, s->stream, &c) != 0)
            return -1;
    }
    return sluice_ice_agent_end_of_candidates(s->ag, now, s->stream);
}

/* --- libnice ------------------------------------------------------------ */

static void nice_on_candidate(NiceAgent *agent, NiceCandidate *c, gpointer data)
{
    gchar *sdp = nice_agent_generate_local_candidate_sdp(agent, c);
    if (sdp)
        add_local_candidate(data, sdp);
    g_free(sdp);
}

static void nice_on_gathering_done(NiceAgent *agent, guint stream, gpointer data)
{
    struct side *s = data;
    (void)agent;
    (void)stream;
    s->gathered = true;
}

static void nice_on_state(NiceAgent *agent, guint stream, guint comp, guint state, gpointer data)
{
    struct side *s = data;
    (void)agent;
    (void)stream;
    (void)comp;
    if (state == NICE_COMPONENT_STATE_READY)
        s->ready = true;
    else if (state == NICE_COMPONENT_STATE_FAILED)
        s->failed = true;
    side_check_done(s);
}

static void nice_on_selected_pair(NiceAgent *agent, guint stream, guint comp, NiceCandidate *l,
                                  NiceCandidate *r, gpointer data)
{
    struct side *s = data;
    (void)agent;
    (void)stream;
    (void)comp;
    s->selected = true;
    s->sel_local = ice_nice_addr(&l->addr);
    s->sel_remote = ice_nice_addr(&r->addr);
    side_check_done(s);
}

static void nice_on_recv(NiceAgent *agent, guint stream, guint comp, guint len, gchar *buf,
                         gpointer data)
{
    (void)agent;
    (void)stream;
    (void)comp;
    (void)len;
    (void)buf;
    (void)data;
}

static int nice_side_init(struct side *s, GMainContext *ctx, enum nice_mode mode, unsigned ta_ms)
{
    NiceAddress local;
    guint pacing = 0;
    if (mode == NICE_WEBRTCBIN)
        s->na = nice_agent_new_full(ctx, NICE_COMPATIBILITY_RFC5245,
                                    NICE_AGENT_OPTION_ICE_TRICKLE |
                                        NICE_AGENT_OPTION_REGULAR_NOMINATION);
    else
        s->na = nice_agent_new(ctx, NICE_COMPATIBILITY_RFC5245);
    if (!s->na)
        return -1;
    g_object_set(s->na, "controlling-mode", s->controlling, "stun-pacing-timer", ta_ms, "ice-tcp",
                 FALSE, "upnp", FALSE, NULL);
    g_object_get(s->na, "stun-pacing-timer", &pacing, NULL);
    if (pacing != ta_ms)
        return -1;
    nice_address_init(&local);
    nice_address_set_from_string(&local, "127.0.0.1");
    nice_agent_add_local_address(s->na, &local);
    g_signal_connect(s->na, "new-candidate-full", G_CALLBACK(nice_on_candidate), s);
    g_signal_connect(s->na, "candidate-gathering-done", G_CALLBACK(nice_on_gathering_done), s);
    g_signal_connect(s->na, "component-state-changed", G_CALLBACK(nice_on_state), s);
    g_signal_connect(s->na, "new-selected-pair-full", G_CALLBACK(nice_on_selected_pair), s);
    s->nstream = nice_agent_add_stream(s->na, 1);
    if (!s->nstream)
        return -1;
    nice_agent_attach_recv(s->na, s->nstream, 1, ctx, nice_on_recv, s);
    gchar *u = NULL, *p = NULL;
    if (!nice_agent_get_local_credentials(s->na, s->nstream, &u, &p))
        return -1;
    snprintf(s->ufrag, sizeof s->ufrag, "%s", u);
    snprintf(s->pwd, sizeof s->pwd, "%s", p);
    g_free(u);
    g_free(p);
    return nice_agent_gather_candidates(s->na, s->nstream) ? 0 : -1;
}

static int nice_side_set_remote(struct side *s, const struct side *peer)
{
    GSList *list = NULL;
    int n;
    if (!nice_agent_set_remote_credentials(s->na, s->nstream, peer->ufrag, peer->pwd))
        return -1;
    for (int i = 0; i < peer->n_cands; i++) {
        char sdp[SLUICE_ICE_CANDIDATE_TEXT_MAX + 2];
        snprintf(sdp, sizeof sdp, "%s%s", strncmp(peer->cands[i], "a=", 2) ? "a=" : "",
                 peer->cands[i]);
        NiceCandidate *c = nice_agent_parse_remote_candidate_sdp(s->na, s->nstream, sdp);
        if (c)
            list = g_slist_append(list, c);
    }
    n = nice_agent_set_remote_candidates(s->na, s->nstream, 1, list);
    g_slist_free_full(list, (GDestroyNotify)nice_candidate_free);
    if (n != peer->n_cands)
        return -1;
    /* With ICE_TRICKLE libnice waits for end-of-candidates (RFC 8838). */
    nice_agent_peer_candidate_gathering_done(s->na, s->nstream);
    return 0;
}

/* --- the loop ----------------------------------------------------------- */

static bool run_until(struct run *r, uint64_t limit_us, bool (*done)(const struct run *))
{
    uint64_t deadline = ice_drv_now_us() + limit_us;
    ice_driver *const drv[2] = {r->side[0].d, r->side[1].d};
    for (;;) {
        ice_nice_flush(drv, 2); /* events waiting since the last round */
        if (done(r) || ice_drv_now_us() >= deadline)
            return done(r);
        ice_nice_iterate(r->ctx, drv, 2, deadline);
    }
}

static bool both_gathered(const struct run *r)
{
    return r->side[0].gathered && r->side[1].gathered;
}

static bool both_done(const struct run *r)
{
    return (r->side[0].done && r->side[1].done) || r->side[0].failed || r->side[1].failed;
}

static void run_free(struct run *r)
{
    for (int i = 0; i < 2; i++) {
        struct side *s = &r->side[i];
        if (s->na) {
            nice_agent_attach_recv(s->na, s->nstream, 1, r->ctx, NULL, NULL);
            nice_agent_close_async(s->na, NULL, NULL);
            g_object_unref(s->na);
        }
        ice_drv_free(s->d);
        sluice_ice_agent_free(s->ag);
    }
    /* libnice's pending sources (closing its sockets) run here. */
    for (int i = 0; i < 100 && g_main_context_iteration(r->ctx, FALSE); i++)
        ;
    g_main_context_release(r->ctx);
    g_main_context_unref(r->ctx);
}

/* One session. Returns the setup time in ms, or a negative value on
 * failure (with the reason printed). */
static double run_once(const struct config *c)
{
    struct run r;
    double ms = -1;
    const char *why = NULL;
    memset(&r, 0, sizeof r);
    r.ctx = g_main_context_new();
    if (!g_main_context_acquire(r.ctx)) {
        g_main_context_unref(r.ctx);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        struct side *s = &r.side[i];
        s->impl = i == 0 ? c->ctl : c->ctd;
        s->controlling = i == 0;
        if ((s->impl == SLUICE ? sluice_side_init(s, c->ta_sluice_ms)
                               : nice_side_init(s, r.ctx, c->mode, c->ta_nice_ms)) != 0) {
            why = "agent set-up";
            goto out;
        }
    }
    if (!run_until(&r, GATHER_LIMIT, both_gathered) || !r.side[0].n_cands || !r.side[1].n_cands) {
        why = "gathering";
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        struct side *s = &r.side[i];
        if ((s->impl == SLUICE ? sluice_side_set_remote(s, &r.side[1 - i])
                               : nice_side_set_remote(s, &r.side[1 - i])) != 0) {
            why = "remote candidates refused";
            goto out;
        }
    }
    r.t0 = ice_drv_now_us();
    if (!run_until(&r, SESSION_LIMIT, both_done) || r.side[0].failed || r.side[1].failed) {
        why = r.side[0].failed || r.side[1].failed ? "ICE failed" : "no selected pair in 3 s";
        goto out;
    }
    if (!sluice_addr_equal(&r.side[0].sel_local, &r.side[1].sel_remote) ||
        !sluice_addr_equal(&r.side[0].sel_remote, &r.side[1].sel_local)) {
        why = "the two sides selected different pairs";
        goto out;
    }
    uint64_t t = r.side[0].t_done > r.side[1].t_done ? r.side[0].t_done : r.side[1].t_done;
    ms = (double)(t - r.t0) / 1000.0;
out:
    if (why)
        fprintf(stderr, "%s, %s: %s\n", c->group, c->label, why);
    run_free(&r);
    return ms;
}

/* --- statistics ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const struct result *r)
{
    return r->n % 2 ? r->ms[r->n / 2] : (r->ms[r->n / 2 - 1] + r->ms[r->n / 2]) / 2;
}

/* Nearest rank: the ceil(0.9 n)-th smallest. */
static double p90(const struct result *r)
{
    int k = (int)ceil(0.9 * r->n);
    return r->ms[k > 0 ? k - 1 : 0];
}

/* The results of a configuration, NULL when it did not run. */
static const struct result *find(const char *group, const char *label)
{
    for (size_t i = 0; i < N_CONFIGS; i++)
        if (strcmp(configs[i].group, group) == 0 && strcmp(configs[i].label, label) == 0)
            return results[i].n ? &results[i] : NULL;
    return NULL;
}

static void ratio(const char *what, const struct result *nice, const struct result *sl)
{
    if (!nice || !sl)
        return;
    printf("  %-76s median %5.2fx  p90 %5.2fx\n", what, median(nice) / median(sl),
           p90(nice) / p90(sl));
}

int main(int argc, char **argv)
{
    int runs = 20, failures = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--runs N] [--only TEXT]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "--runs: 1..%d\n", MAX_RUNS);
        return 2;
    }
    make_configs();
    uint64_t start = ice_drv_now_us();
    for (int k = 0; k < runs; k++) {
        for (size_t j = 0; j < N_CONFIGS; j++) {
            size_t i = (j + (size_t)k) % N_CONFIGS;
            char name[128];
            snprintf(name, sizeof name, "%s %s", configs[i].group, configs[i].label);
            if (only && !strstr(name, only))
                continue;
            double ms = run_once(&configs[i]);
            if (ms < 0)
                results[i].failures++;
            else
                results[i].ms[results[i].n++] = ms;
        }
    }
    printf("ICE connection setup over loopback, one host candidate per side, 1 component:\n"
           "from both sides having the remote credentials and candidates to a selected pair\n"
           "on both sides; %d sessions per configuration; ms; A -> B: A controlling.\n\n",
           runs);
    printf("%-9s %-50s %6s %6s %8s %8s %8s %8s\n", "group", "configuration", "sluice", "nice",
           "median", "p90", "min", "max");
    printf("%-9s %-50s %6s %6s\n", "", "", "Ta", "Ta");
    for (size_t i = 0; i < N_CONFIGS; i++) {
        const struct config *c = &configs[i];
        struct result *r = &results[i];
        failures += r->failures;
        if (!r->n && !r->failures)
            continue;
        qsort(r->ms, (size_t)r->n, sizeof r->ms[0], cmp_double);
        printf("%-9s %-50s %6u %6u ", c->group, c->label, c->ta_sluice_ms, c->ta_nice_ms);
        if (r->n)
            printf("%8.1f %8.1f %8.1f %8.1f", median(r), p90(r), r->ms[0], r->ms[r->n - 1]);
        if (r->failures)
            printf("  (%d failed)", r->failures);
        printf("\n");
    }
    printf("\nlibnice / sluice (above 1: sluice is faster):\n");
    static const char *const tas[] = {"Ta 20 ms", "Ta 50 ms"};
    for (int i = 0; i < 2; i++) {
        const struct result *s = find(tas[i], "sluice -> sluice");
        char what[96];
        snprintf(what, sizeof what, "%s, libnice aggressive (its default):", tas[i]);
        ratio(what, find(tas[i], AGGR), s);
        snprintf(what, sizeof what, "%s, libnice regular (webrtcbin):", tas[i]);
        ratio(what, find(tas[i], REGU), s);
    }
    const struct result *sdef = find("Ta 50 ms", "sluice -> sluice");
    ratio("defaults (libnice Ta 20 ms, sluice Ta 50 ms), libnice aggressive:",
          find("Ta 20 ms", AGGR), sdef);
    ratio("defaults (libnice Ta 20 ms, sluice Ta 50 ms), libnice regular:", find("Ta 20 ms", REGU),
          sdef);
    printf("\n%d failed sessions; %.1f s in all\n", failures,
           (double)(ice_drv_now_us() - start) / 1e6);
    return failures ? 1 : 0;
}
