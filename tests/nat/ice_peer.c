/* SPDX-License-Identifier: MIT */
/* One ICE peer for the namespace NAT tests (tests/nat/nat_ice.py): a
 * SluiceAgent on the real interfaces of the namespace it runs in, driven
 * by a line protocol so that the test can carry the signalling between two
 * namespaces.
 *
 *   ice_peer [--controlling] [--stun URI] [--turn URI --user U --pass P]
 *            [--relay-only] [--count N] [--timeout-s S]
 *            [--coordinator HOST:PORT --name N --peer P --pin FINGERPRINT
 *             [--dtls [--bad-peer-fingerprint]]]
 *
 * With --coordinator the signalling goes through sluice-coord instead
 * (SluiceCoordIce: the role comes from the names, TURN credentials from the
 * coordinator) and stdin only carries "quit". With --dtls the datagrams go
 * over a SluiceDirectChannel (DTLS, the peer pinned by the fingerprint the
 * coordinator gave; the controlling side is the DTLS client) instead of
 * raw sluice_agent_send; --bad-peer-fingerprint pins a fingerprint with
 * one byte changed, which must fail the handshake.
 *
 * stdout (one line each, flushed):
 *   cred UFRAG PWD          local credentials
 *   cand candidate:...      each local candidate as it is gathered
 *   eoc                     gathering done
 *   selected LTYPE RTYPE L R  the selected pair (types host/srflx/prflx/relay)
 *   connected MS            state connected, ms after the remote credentials
 *   received N              N media datagrams arrived intact (once, at --count;
 *                           with --dtls on the controlling side, after the rtt line)
 *   dtls established MS     the DTLS handshake is done, MS after the selected pair
 *   dtls rtt MIN MEDIAN MAX  controlling side: ms for a message and its echo (10)
 *   error TEXT              and exit 1 (DTLS failures: "error dtls: REASON")
 * stdin: the other peer's cred/cand/eoc lines, then "quit".
 *
 * Once connected it sends --count numbered datagrams (one every 10 ms, so
 * a NAT or relay that drops the first ones still lets the rest through)
 * and reports when it has received the other peer's --count datagrams.
 * With --dtls the controlling side then sends 10 pings the other echoes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice-agent.h"
#include "sluice-gio.h"

#define PINGS 10

struct peer {
    SluiceAgent *agent;
    GMainLoop *loop;
    guint stream;
    int count;
    int sent, received;
    gboolean connected, reported;
    gint64 t_creds, t_selected;
    int rc;
    GString *line;
    /* --dtls */
    gboolean dtls, bad_fp, controlling;
    SluiceCoordClient *cc;
    SluiceDirectChannel *ch;
    int pings, pongs;
    double rtt_ms[PINGS];
};

static void out(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void fail(struct peer *p, const char *what, const GError *e)
{
    out("error %s%s%s", what, e ? ": " : "", e ? e->message : "");
    p->rc = 1;
    g_main_loop_quit(p->loop);
}

static void on_candidate(SluiceAgent *a, guint stream, guint comp, const gchar *sdp, gpointer ud)
{
    (void)a;
    (void)stream;
    (void)comp;
    (void)ud;
    out("cand %s", sdp);
}

static void on_gathering_done(SluiceAgent *a, guint stream, gpointer ud)
{
    (void)a;
    (void)stream;
    (void)ud;
    out("eoc");
}

static const char *cand_type(const char *sdp)
{
    const char *t = sdp ? strstr(sdp, " typ ") : NULL;
    static char buf[16];
    if (!t)
        return "?";
    sscanf(t + 5, "%15s", buf);
    return buf;
}

static void on_selected(SluiceAgent *a, guint stream, guint comp, const gchar *local,
                        const gchar *remote, gpointer ud)
{
    struct peer *p = ud;
    char lt[16];
    (void)a;
    (void)stream;
    (void)comp;
    g_strlcpy(lt, cand_type(local), sizeof lt);
    out("selected %s %s %s | %s", lt, cand_type(remote), local, remote);
    if (!p->t_selected)
        p->t_selected = g_get_monotonic_time();
}

static gboolean send_tick(gpointer ud)
{
    struct peer *p = ud;
    char msg[64];
    GError *e = NULL;
    gboolean ok;
    int n;
    if (p->sent < p->count) {
        n = snprintf(msg, sizeof msg, "sluice-nat-test %d", p->sent);
    } else if (p->dtls && p->controlling && p->pings < PINGS) {
        /* Round trips over DTLS: the other side echoes each ping. */
        n = snprintf(msg, sizeof msg, "sluice-nat-ping %d %" G_GINT64_FORMAT, p->pings,
                     g_get_monotonic_time());
    } else {
        return G_SOURCE_REMOVE;
    }
    if (p->dtls)
        ok = sluice_direct_channel_send(p->ch, (const guint8 *)msg, (gsize)n, &e);
    else
        ok = sluice_agent_send(p->agent, p->stream, 1, (const guint8 *)msg, (gsize)n, &e) >= 0;
    if (!ok) {
        fail(p, "send", e);
        g_clear_error(&e);
        return G_SOURCE_REMOVE;
    }
    if (p->sent < p->count)
        p->sent++;
    else
        p->pings++;
    return G_SOURCE_CONTINUE;
}

static void on_state(SluiceAgent *a, guint stream, gint st, gpointer ud)
{
    struct peer *p = ud;
    (void)a;
    (void)stream;
    if ((st == SLUICE_ICE_CONNECTED || st == SLUICE_ICE_COMPLETED) &&
        !p->connected) {
        p->connected = TRUE;
        out("connected %.1f", (double)(g_get_monotonic_time() - p->t_creds) / 1000.0);
        if (!p->dtls) /* with --dtls: once the channel is established */
            g_timeout_add(10, send_tick, p);
    } else if (st == SLUICE_ICE_FAILED) {
        fail(p, "ICE failed", NULL);
    }
}

/* "received" once the other side's datagrams are all in (and, with
 * --dtls on the controlling side, the round trips measured). */
static void maybe_report(struct peer *p)
{
    if (p->received >= p->count && !p->reported &&
        !(p->dtls && p->controlling && p->pongs < PINGS)) {
        p->reported = TRUE;
        out("received %d", p->received);
    }
}

static void count_received(struct peer *p)
{
    p->received++;
    maybe_report(p);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void on_dtls_established(SluiceDirectChannel *ch, gpointer ud)
{
    struct peer *p = ud;
    (void)ch;
    out("dtls established %.1f",
        p->t_selected ? (double)(g_get_monotonic_time() - p->t_selected) / 1000.0 : -1.0);
    g_timeout_add(10, send_tick, p);
}

static void on_dtls_message(SluiceDirectChannel *ch, GBytes *b, gpointer ud)
{
    struct peer *p = ud;
    gsize len;
    const char *data = g_bytes_get_data(b, &len);
    char text[96];
    if (len >= sizeof text)
        return;
    memcpy(text, data, len);
    text[len] = 0;
    if (g_str_has_prefix(text, "sluice-nat-test ")) {
        count_received(p);
    } else if (g_str_has_prefix(text, "sluice-nat-ping ")) {
        memcpy(text + 11, "pong", 4);
        if (!sluice_direct_channel_send(ch, (const guint8 *)text, len, NULL))
            out("# pong not sent");
    } else if (g_str_has_prefix(text, "sluice-nat-pong ") && p->pongs < PINGS) {
        gint64 t0 = 0;
        int seq = 0;
        if (sscanf(text + 16, "%d %" G_GINT64_FORMAT, &seq, &t0) != 2)
            return;
        p->rtt_ms[p->pongs++] = (double)(g_get_monotonic_time() - t0) / 1000.0;
        if (p->pongs == PINGS) {
            double s[PINGS];
            memcpy(s, p->rtt_ms, sizeof s);
            qsort(s, PINGS, sizeof s[0], cmp_double);
            out("dtls rtt %.3f %.3f %.3f", s[0], s[PINGS / 2], s[PINGS - 1]);
            maybe_report(p);
        }
    }
}

static void on_dtls_error(SluiceDirectChannel *ch, const gchar *reason, gpointer ud)
{
    struct peer *p = ud;
    (void)ch;
    out("error dtls: %s", reason);
    p->rc = 1;
    g_main_loop_quit(p->loop);
}

static void on_dtls_closed(SluiceDirectChannel *ch, gpointer ud)
{
    (void)ch;
    (void)ud;
    out("dtls closed");
}

static void on_recv(SluiceAgent *a, guint stream, guint comp, const guint8 *data, gsize len,
                    gpointer ud)
{
    struct peer *p = ud;
    (void)a;
    (void)stream;
    (void)comp;
    if (len > 16 && memcmp(data, "sluice-nat-test ", 16) == 0)
        count_received(p);
}

static void handle_line(struct peer *p, char *l)
{
    GError *e = NULL;
    g_strstrip(l);
    if (g_str_has_prefix(l, "cred ")) {
        gchar **v = g_strsplit(l + 5, " ", 2);
        p->t_creds = g_get_monotonic_time();
        if (!v[0] || !v[1] ||
            !sluice_agent_set_remote_credentials(p->agent, p->stream, v[0], v[1], &e))
            fail(p, "remote credentials", e);
        g_strfreev(v);
    } else if (g_str_has_prefix(l, "cand ")) {
        if (!sluice_agent_add_remote_candidate(p->agent, p->stream, l + 5, &e))
            out("# candidate refused (%s): %s", e->message, l + 5);
    } else if (strcmp(l, "eoc") == 0) {
        sluice_agent_end_of_candidates(p->agent, p->stream);
    } else if (strcmp(l, "quit") == 0) {
        g_main_loop_quit(p->loop);
    }
    g_clear_error(&e);
}

static gboolean on_stdin(GIOChannel *ch, GIOCondition cond, gpointer ud)
{
    struct peer *p = ud;
    gchar *l = NULL;
    gsize n;
    (void)cond;
    GIOStatus st = g_io_channel_read_line(ch, &l, &n, NULL, NULL);
    if (st == G_IO_STATUS_NORMAL && l) {
        handle_line(p, l);
        g_free(l);
        return G_SOURCE_CONTINUE;
    }
    g_free(l);
    if (st == G_IO_STATUS_AGAIN)
        return G_SOURCE_CONTINUE;
    g_main_loop_quit(p->loop); /* EOF: the driver is gone */
    return G_SOURCE_REMOVE;
}

static void on_coord_ready(SluiceCoordIce *ci, gboolean controlling, const gchar *fp,
                           gpointer ud)
{
    struct peer *p = ud;
    GError *e = NULL;
    (void)ci;
    out("coordinated %s peer-fingerprint %s", controlling ? "controlling" : "controlled",
        fp ? fp : "-");
    if (!p->dtls || p->ch)
        return;
    p->controlling = controlling;
    gchar *pin = g_strdup(fp ? fp : "");
    if (p->bad_fp && pin[0])
        pin[0] = pin[0] == '0' ? '1' : '0'; /* the first byte, changed */
    /* The controlling side is the DTLS client; our identity is the one the
     * client connected to the coordinator with. */
    p->ch = sluice_direct_channel_new_for_coord(p->cc, p->agent, p->stream, 1, controlling, pin,
                                                &e);
    g_free(pin);
    if (!p->ch) {
        fail(p, "dtls", e);
        g_clear_error(&e);
        return;
    }
    g_signal_connect(p->ch, "established", G_CALLBACK(on_dtls_established), p);
    g_signal_connect(p->ch, "message", G_CALLBACK(on_dtls_message), p);
    g_signal_connect(p->ch, "error", G_CALLBACK(on_dtls_error), p);
    g_signal_connect(p->ch, "closed", G_CALLBACK(on_dtls_closed), p);
}

static void on_coord_failed(SluiceCoordIce *ci, const gchar *reason, gpointer ud)
{
    (void)ci;
    fail(ud, reason, NULL);
}

static void on_coord_end(SluiceCoordClient *cc, gint code, const gchar *reason, gpointer ud)
{
    (void)cc;
    (void)code;
    fail(ud, reason, NULL);
}

static gboolean on_timeout(gpointer ud)
{
    fail(ud, "timeout", NULL);
    return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
    gboolean controlling = FALSE, relay_only = FALSE, dtls = FALSE, bad_fp = FALSE;
    gchar *stun = NULL, *turn = NULL, *user = NULL, *pass = NULL;
    gint count = 20, timeout_s = 30;
    gchar *coordinator = NULL, *name = NULL, *peer = NULL, *pin = NULL;
    GOptionEntry entries[] = {
        {"controlling", 0, 0, G_OPTION_ARG_NONE, &controlling, "controlling role", NULL},
        {"stun", 0, 0, G_OPTION_ARG_STRING, &stun, "STUN server URI", "URI"},
        {"turn", 0, 0, G_OPTION_ARG_STRING, &turn, "TURN server URI", "URI"},
        {"user", 0, 0, G_OPTION_ARG_STRING, &user, "TURN username", "U"},
        {"pass", 0, 0, G_OPTION_ARG_STRING, &pass, "TURN password", "P"},
        {"relay-only", 0, 0, G_OPTION_ARG_NONE, &relay_only, "relayed candidates only", NULL},
        {"count", 0, 0, G_OPTION_ARG_INT, &count, "datagrams each way (1..1000)", "N"},
        {"timeout-s", 0, 0, G_OPTION_ARG_INT, &timeout_s, "give up after S s (1..300)", "S"},
        {"coordinator", 0, 0, G_OPTION_ARG_STRING, &coordinator, "sluice-coord address", "A"},
        {"name", 0, 0, G_OPTION_ARG_STRING, &name, "our name at the coordinator", "N"},
        {"peer", 0, 0, G_OPTION_ARG_STRING, &peer, "the other peer's name", "P"},
        {"pin", 0, 0, G_OPTION_ARG_STRING, &pin, "coordinator certificate SHA-256", "FP"},
        {"dtls", 0, 0, G_OPTION_ARG_NONE, &dtls, "datagrams over a DTLS direct channel", NULL},
        {"bad-peer-fingerprint", 0, 0, G_OPTION_ARG_NONE, &bad_fp,
         "pin a wrong peer fingerprint (DTLS must fail)", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL}};
    GOptionContext *oc = g_option_context_new("- ICE peer for the namespace NAT tests");
    GError *e = NULL;
    struct peer p = {0};
    g_option_context_add_main_entries(oc, entries, NULL);
    if (!g_option_context_parse(oc, &argc, &argv, &e) || count < 1 || count > 1000 ||
        timeout_s < 1 || timeout_s > 300 || (dtls && !coordinator) || (bad_fp && !dtls)) {
        fprintf(stderr, "ice_peer: %s\n",
                e ? e->message
                  : "bad --count or --timeout-s, or --dtls without --coordinator, or "
                    "--bad-peer-fingerprint without --dtls");
        return 2;
    }
    g_option_context_free(oc);
    p.count = count;
    p.dtls = dtls;
    p.bad_fp = bad_fp;
    /* Everything on the default context: the agent's signals and stdin. */
    p.loop = g_main_loop_new(NULL, FALSE);
    p.agent = sluice_agent_new(g_main_context_default());
    g_object_set(p.agent, "controlling", controlling, "relay-only", relay_only, NULL);
    g_signal_connect(p.agent, "new-candidate", G_CALLBACK(on_candidate), &p);
    g_signal_connect(p.agent, "gathering-done", G_CALLBACK(on_gathering_done), &p);
    g_signal_connect(p.agent, "selected-pair-changed", G_CALLBACK(on_selected), &p);
    g_signal_connect(p.agent, "state-changed", G_CALLBACK(on_state), &p);
    p.stream = sluice_agent_add_stream(p.agent, 1, &e);
    if (!p.stream || (stun && !sluice_agent_add_server(p.agent, stun, NULL, NULL, &e)) ||
        (turn && !sluice_agent_add_server(p.agent, turn, user, pass, &e))) {
        out("error setup: %s", e->message);
        return 1;
    }
    sluice_agent_set_recv_func(p.agent, p.stream, 1, on_recv, &p, NULL);
    SluiceCoordClient *cc = NULL;
    SluiceCoordIce *ci = NULL;
    if (coordinator) {
        /* Candidates are still printed (on_candidate) for the log; the
         * driver does not forward them. */
        cc = p.cc = sluice_coord_client_gio_new(g_main_context_default(), name);
        g_object_set(cc, "pin", pin, NULL);
        g_signal_connect(cc, "refused", G_CALLBACK(on_coord_end), &p);
        ci = sluice_coord_ice_new(cc, p.agent, p.stream, peer, "sluice-ice/nat-test", &e);
        if (!ci || !sluice_coord_client_gio_connect(cc, coordinator, &e)) {
            out("error coordinator: %s", e->message);
            return 1;
        }
        g_signal_connect(ci, "ready", G_CALLBACK(on_coord_ready), &p);
        g_signal_connect(ci, "failed", G_CALLBACK(on_coord_failed), &p);
        p.t_creds = g_get_monotonic_time();
    } else {
        gchar *ufrag, *pwd;
        sluice_agent_get_local_credentials(p.agent, p.stream, &ufrag, &pwd);
        out("cred %s %s", ufrag, pwd);
        g_free(ufrag);
        g_free(pwd);
        if (!sluice_agent_gather(p.agent, p.stream, &e)) {
            out("error gather: %s", e->message);
            return 1;
        }
    }
    GIOChannel *in = g_io_channel_unix_new(STDIN_FILENO);
    g_io_add_watch(in, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin, &p);
    guint to = g_timeout_add_seconds((guint)timeout_s, on_timeout, &p);
    g_main_loop_run(p.loop);
    g_source_remove(to);
    g_io_channel_unref(in);
    g_clear_object(&p.ch); /* a close_notify to the peer */
    if (cc)
        sluice_coord_client_gio_close(cc, "done");
    g_clear_object(&ci);
    g_clear_object(&cc);
    g_object_unref(p.agent);
    g_main_loop_unref(p.loop);
    g_free(stun);
    g_free(turn);
    g_free(user);
    g_free(pass);
    g_free(coordinator);
    g_free(name);
    g_free(peer);
    g_free(pin);
    return p.rc;
}
