/* SPDX-License-Identifier: MIT */
/* One ICE peer for the namespace NAT tests (tests/nat/nat_ice.py): a
 * SluiceAgent on the real interfaces of the namespace it runs in, driven
 * by a line protocol so that the test can carry the signalling between two
 * namespaces.
 *
 *   ice_peer [--controlling] [--stun URI] [--turn URI --user U --pass P]
 *            [--relay-only] [--count N] [--timeout-s S]
 *            [--coordinator HOST:PORT --name N --peer P --pin FINGERPRINT]
 *
 * With --coordinator the signalling goes through sluice-coord instead
 * (SluiceCoordIce: the role comes from the names, TURN credentials from the
 * coordinator) and stdin only carries "quit".
 *
 * stdout (one line each, flushed):
 *   cred UFRAG PWD          local credentials
 *   cand candidate:...      each local candidate as it is gathered
 *   eoc                     gathering done
 *   selected LTYPE RTYPE L R  the selected pair (types host/srflx/prflx/relay)
 *   connected MS            state connected, ms after the remote credentials
 *   received N              N media datagrams arrived intact (once, at --count)
 *   error TEXT              and exit 1
 * stdin: the other peer's cred/cand/eoc lines, then "quit".
 *
 * Once connected it sends --count numbered datagrams (one every 10 ms, so
 * a NAT or relay that drops the first ones still lets the rest through)
 * and reports when it has received the other peer's --count datagrams. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice-agent.h"
#include "sluice-gio.h"

struct peer {
    SluiceAgent *agent;
    GMainLoop *loop;
    guint stream;
    int count;
    int sent, received;
    gboolean connected, reported;
    gint64 t_creds;
    int rc;
    GString *line;
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
    char lt[16];
    (void)a;
    (void)stream;
    (void)comp;
    (void)ud;
    g_strlcpy(lt, cand_type(local), sizeof lt);
    out("selected %s %s %s | %s", lt, cand_type(remote), local, remote);
}

static gboolean send_tick(gpointer ud)
{
    struct peer *p = ud;
    char msg[64];
    GError *e = NULL;
    if (p->sent >= p->count)
        return G_SOURCE_REMOVE;
    int n = snprintf(msg, sizeof msg, "sluice-nat-test %d", p->sent);
    if (sluice_agent_send(p->agent, p->stream, 1, (const guint8 *)msg, (gsize)n, &e) < 0) {
        fail(p, "send", e);
        g_clear_error(&e);
        return G_SOURCE_REMOVE;
    }
    p->sent++;
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
        g_timeout_add(10, send_tick, p);
    } else if (st == SLUICE_ICE_FAILED) {
        fail(p, "ICE failed", NULL);
    }
}

static void on_recv(SluiceAgent *a, guint stream, guint comp, const guint8 *data, gsize len,
                    gpointer ud)
{
    struct peer *p = ud;
    (void)a;
    (void)stream;
    (void)comp;
    if (len > 16 && memcmp(data, "sluice-nat-test ", 16) == 0)
        p->received++;
    if (p->received >= p->count && !p->reported) {
        p->reported = TRUE;
        out("received %d", p->received);
    }
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
    (void)ci;
    (void)ud;
    out("coordinated %s peer-fingerprint %s", controlling ? "controlling" : "controlled",
        fp ? fp : "-");
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
    gboolean controlling = FALSE, relay_only = FALSE;
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
        {NULL, 0, 0, 0, NULL, NULL, NULL}};
    GOptionContext *oc = g_option_context_new("- ICE peer for the namespace NAT tests");
    GError *e = NULL;
    struct peer p = {0};
    g_option_context_add_main_entries(oc, entries, NULL);
    if (!g_option_context_parse(oc, &argc, &argv, &e) || count < 1 || count > 1000 ||
        timeout_s < 1 || timeout_s > 300) {
        fprintf(stderr, "ice_peer: %s\n", e ? e->message : "bad --count or --timeout-s");
        return 2;
    }
    g_option_context_free(oc);
    p.count = count;
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
        cc = sluice_coord_client_gio_new(g_main_context_default(), name);
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
