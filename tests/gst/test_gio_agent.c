/* SPDX-License-Identifier: MIT */
/* SluiceAgent (the GLib driver of the ICE agent): two agents in one process
 * over loopback on the test's own GMainContext, candidates trickled through
 * signals, media both ways; bad input gives a GError, not a crash. */
#include <string.h>

#include "sluice-gio.h"

typedef struct {
    SluiceAgent *agent;
    guint stream;
    GPtrArray *got; /* GBytes received */
    gint state;
    gboolean selected, gathered;
} Peer;

typedef struct {
    GMainContext *ctx;
    Peer a, b;
    gboolean timed_out;
} World;

static void on_candidate(SluiceAgent *agent, guint stream, guint comp, const gchar *line,
                         gpointer data)
{
    Peer *to = data;
    GError *err = NULL;
    (void)agent;
    (void)comp;
    g_assert_true(sluice_agent_add_remote_candidate(to->agent, to->stream, line, &err));
    g_assert_no_error(err);
    (void)stream;
}

static void on_gathered(SluiceAgent *agent, guint stream, gpointer data)
{
    Peer *p = data;
    (void)agent;
    (void)stream;
    p->gathered = TRUE;
}

static void on_state(SluiceAgent *agent, guint stream, gint state, gpointer data)
{
    Peer *p = data;
    (void)agent;
    (void)stream;
    p->state = state;
}

static void on_selected(SluiceAgent *agent, guint stream, guint comp, const gchar *l,
                        const gchar *r, gpointer data)
{
    Peer *p = data;
    (void)agent;
    (void)stream;
    (void)comp;
    g_assert_nonnull(strstr(l, "typ host"));
    g_assert_nonnull(strstr(r, "127.0.0.1"));
    p->selected = TRUE;
}

static void on_recv(SluiceAgent *agent, guint stream, guint comp, const guint8 *data, gsize len,
                    gpointer user)
{
    Peer *p = user;
    (void)agent;
    (void)stream;
    g_assert_cmpuint(comp, ==, 1);
    g_ptr_array_add(p->got, g_bytes_new(data, len));
}

static gboolean on_deadline(gpointer data)
{
    ((World *)data)->timed_out = TRUE;
    return G_SOURCE_REMOVE;
}

/* Iterate the test's context until cond holds or 10 s pass. */
static gboolean run_until(World *w, gboolean (*cond)(World *))
{
    GSource *t = g_timeout_source_new_seconds(10);
    w->timed_out = FALSE;
    g_source_set_callback(t, on_deadline, w, NULL);
    g_source_attach(t, w->ctx);
    while (!cond(w) && !w->timed_out)
        g_main_context_iteration(w->ctx, TRUE);
    g_source_destroy(t);
    g_source_unref(t);
    return cond(w);
}

static gboolean both_selected(World *w)
{
    return w->a.selected && w->b.selected;
}

static gboolean both_got_one(World *w)
{
    return w->a.got->len >= 1 && w->b.got->len >= 1;
}

static void peer_init(World *w, Peer *p, Peer *other, gboolean controlling)
{
    GError *err = NULL;
    p->agent = g_object_new(SLUICE_TYPE_AGENT, "main-context", w->ctx, "controlling",
                            controlling, "ta", 20, NULL);
    g_assert_true(sluice_agent_add_local_address(p->agent, "127.0.0.1", &err));
    p->stream = sluice_agent_add_stream(p->agent, 1, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(p->stream, ==, 1);
    p->got = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_signal_connect(p->agent, "new-candidate", G_CALLBACK(on_candidate), other);
    g_signal_connect(p->agent, "gathering-done", G_CALLBACK(on_gathered), p);
    g_signal_connect(p->agent, "state-changed", G_CALLBACK(on_state), p);
    g_signal_connect(p->agent, "selected-pair-changed", G_CALLBACK(on_selected), p);
    sluice_agent_set_recv_func(p->agent, p->stream, 1, on_recv, p, NULL);
}

static void exchange_credentials(Peer *from, Peer *to)
{
    gchar *u = NULL, *pw = NULL;
    GError *err = NULL;
    g_assert_true(sluice_agent_get_local_credentials(from->agent, from->stream, &u, &pw));
    g_assert_true(sluice_agent_set_remote_credentials(to->agent, to->stream, u, pw, &err));
    g_assert_no_error(err);
    g_free(u);
    g_free(pw);
}

static void test_loopback_pair(void)
{
    World w = {0};
    GError *err = NULL;
    gchar **cands;
    w.ctx = g_main_context_new();
    peer_init(&w, &w.a, &w.b, TRUE);
    peer_init(&w, &w.b, &w.a, FALSE);
    exchange_credentials(&w.a, &w.b);
    exchange_credentials(&w.b, &w.a);
    g_assert_true(sluice_agent_gather(w.a.agent, w.a.stream, &err));
    g_assert_true(sluice_agent_gather(w.b.agent, w.b.stream, &err));
    g_assert_no_error(err);
    g_assert_true(run_until(&w, both_selected));
    g_assert_true(w.a.gathered && w.b.gathered);
    cands = sluice_agent_get_local_candidates(w.a.agent, w.a.stream);
    g_assert_cmpuint(g_strv_length(cands), ==, 1);
    g_strfreev(cands);
    g_assert_cmpint(sluice_agent_get_state(w.a.agent, 1), >=, SLUICE_ICE_CONNECTED);

    g_assert_cmpint(sluice_agent_send(w.a.agent, 1, 1, (const guint8 *)"hello", 5, &err), ==, 5);
    g_assert_cmpint(sluice_agent_send(w.b.agent, 1, 1, (const guint8 *)"world!", 6, &err), ==, 6);
    g_assert_no_error(err);
    g_assert_true(run_until(&w, both_got_one));
    g_assert_cmpuint(g_bytes_get_size(g_ptr_array_index(w.b.got, 0)), ==, 5);
    g_assert_cmpmem(g_bytes_get_data(g_ptr_array_index(w.b.got, 0), NULL), 5, "hello", 5);
    g_assert_cmpmem(g_bytes_get_data(g_ptr_array_index(w.a.got, 0), NULL), 6, "world!", 6);

    /* A route snapshot for the data path. */
    SluiceAgentRoute r;
    g_assert_true(sluice_agent_get_route(w.a.agent, 1, 1, &r));
    g_assert_nonnull(r.socket);
    g_assert_cmpint(r.route.framing, ==, SLUICE_ICE_FRAMING_NONE);
    g_assert_cmpuint(r.generation, ==, sluice_agent_route_generation(w.a.agent));
    sluice_agent_route_clear(&r);

    g_object_unref(w.a.agent);
    g_object_unref(w.b.agent);
    g_ptr_array_unref(w.a.got);
    g_ptr_array_unref(w.b.got);
    g_main_context_unref(w.ctx);
}

static void test_bad_input(void)
{
    GMainContext *ctx = g_main_context_new();
    SluiceAgent *a = g_object_new(SLUICE_TYPE_AGENT, "main-context", ctx, NULL);
    GError *err = NULL;
    guint s = sluice_agent_add_stream(a, 1, &err);
    g_assert_cmpuint(s, ==, 1);
    g_assert_cmpuint(sluice_agent_add_stream(a, 0, &err), ==, 0);
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(sluice_agent_add_remote_candidate(a, s, "candidate:garbage", &err));
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(sluice_agent_add_remote_candidate(
        a, s, "candidate:1 1 udp 2122260223 abc.local 5000 typ host", &err));
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_UNSUPPORTED);
    g_clear_error(&err);
    g_assert_false(sluice_agent_set_remote_credentials(a, s, "ab", "short", &err));
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(sluice_agent_add_server(a, "http://example.invalid", NULL, NULL, &err));
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(sluice_agent_add_server(a, "turn:127.0.0.1", NULL, NULL, &err));
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(sluice_agent_add_server(a, "turns:u:p@127.0.0.1", NULL, NULL, &err));
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_UNSUPPORTED);
    g_clear_error(&err);
    g_assert_false(sluice_agent_add_local_address(a, "not-an-ip", &err));
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_cmpint(sluice_agent_send(a, s, 1, (const guint8 *)"x", 1, &err), ==, -1);
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE);
    g_clear_error(&err);
    g_assert_false(sluice_agent_gather(a, 7, &err));
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE);
    g_clear_error(&err);
    g_object_unref(a);
    g_main_context_unref(ctx);
}

/* Many agents share the default context thread; none needs its own. */
static void test_shared_context(void)
{
    SluiceAgent *agents[20];
    GError *err = NULL;
    for (guint i = 0; i < G_N_ELEMENTS(agents); i++) {
        agents[i] = sluice_agent_new(NULL);
        g_assert_true(sluice_agent_add_local_address(agents[i], "127.0.0.1", &err));
        g_assert_cmpuint(sluice_agent_add_stream(agents[i], 2, &err), ==, 1);
        g_assert_true(sluice_agent_gather(agents[i], 1, &err));
        g_assert_no_error(err);
    }
    GMainContext *c0 = NULL;
    g_object_get(agents[0], "main-context", &c0, NULL);
    for (guint i = 1; i < G_N_ELEMENTS(agents); i++) {
        GMainContext *ci = NULL;
        g_object_get(agents[i], "main-context", &ci, NULL);
        g_assert_true(ci == c0);
        g_main_context_unref(ci);
    }
    g_main_context_unref(c0);
    for (guint i = 0; i < G_N_ELEMENTS(agents); i++)
        g_object_unref(agents[i]);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/gio-agent/loopback-pair", test_loopback_pair);
    g_test_add_func("/gio-agent/bad-input", test_bad_input);
    g_test_add_func("/gio-agent/shared-context", test_shared_context);
    return g_test_run();
}
