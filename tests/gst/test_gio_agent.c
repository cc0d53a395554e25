/* SPDX-License-Identifier: MIT */
/* SluiceAgent (the GLib driver of the ICE agent): two agents in one process
 * over loopback on the test's own GMainContext, candidates trickled through
 * signals, media both ways; bad input gives a GError, not a crash. TURN over
 * TCP/TLS: against TCP servers the test plays itself (refused, closed,
 * garbage, silent: the agent reports, closes and stays bounded), and under
 * tests/gst/turn_servers.sh relayed media both ways through sluice-relay and
 * coturn over TCP and TLS. The TOS byte set before gathering reaches the
 * UDP sockets and the TCP connections to TURN servers. */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "sluice-gio.h"

typedef struct {
    SluiceAgent *agent;
    guint stream;
    GPtrArray *got; /* GBytes received */
    gint state;
    gboolean selected, gathered;
    gboolean relayed;   /* the selected pair must be relayed (else host) */
    gint server_errors;
    gchar *error_text;  /* the last server-error */
    gint error_code;
    guint fds_at_error; /* open file descriptors when it came */
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
    if (!to)
        return; /* a lone agent */
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
    if (p->relayed) {
        g_assert_nonnull(strstr(l, "typ relay"));
        g_assert_nonnull(strstr(r, "typ relay"));
    } else {
        g_assert_nonnull(strstr(l, "typ host"));
        g_assert_nonnull(strstr(r, "127.0.0.1"));
    }
    p->selected = TRUE;
}

static guint count_fds(void)
{
    GDir *d = g_dir_open("/proc/self/fd", 0, NULL);
    guint n = 0;
    if (!d)
        return 0;
    while (g_dir_read_name(d))
        n++;
    g_dir_close(d);
    return n;
}

static void on_server_error(SluiceAgent *agent, const gchar *server, gint code,
                            const gchar *text, gpointer data)
{
    Peer *p = data;
    (void)agent;
    p->error_code = code;
    p->fds_at_error = count_fds();
    g_test_message("server-error %s %d %s", server, code, text);
    p->server_errors++;
    g_free(p->error_text);
    p->error_text = g_strdup(text);
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
    g_signal_connect(p->agent, "server-error", G_CALLBACK(on_server_error), p);
    sluice_agent_set_recv_func(p->agent, p->stream, 1, on_recv, p, NULL);
}

static void peer_clear(Peer *p)
{
    gpointer alive = p->agent;
    g_object_add_weak_pointer(G_OBJECT(p->agent), &alive);
    g_object_unref(p->agent);
    g_assert_null(alive); /* nothing else (a source, a connection) holds it */
    g_ptr_array_unref(p->got);
    g_free(p->error_text);
    memset(p, 0, sizeof *p);
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
    /* TURN over TCP and TLS are accepted; a CA bundle must be readable. */
    g_assert_true(sluice_agent_add_server(a, "turn:u:p@127.0.0.1?transport=tcp", NULL, NULL,
                                          &err));
    g_assert_true(sluice_agent_add_server(a, "turns:u:p@127.0.0.1", NULL, NULL, &err));
    g_assert_no_error(err);
    g_object_set(a, "ca-file", "/nonexistent/ca.pem", NULL);
    g_assert_false(sluice_agent_add_server(a, "turns:u:p@127.0.0.1:5350", NULL, NULL, &err));
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID);
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

/* ------------------------------------------------------------------------ */
/* TURN over TCP and TLS. */

/* A TCP "TURN server" on 127.0.0.1 that the test plays on its context. */
typedef enum {
    FAKE_REFUSE,  /* bound, not listening: connections are refused */
    FAKE_CLOSE,   /* accepts and closes at once */
    FAKE_GARBAGE, /* accepts and answers bytes that are neither STUN nor ChannelData */
    FAKE_SILENT,  /* accepts, reads, never answers */
} FakeMode;

typedef struct {
    FakeMode mode;
    GMainContext *ctx;
    GSocket *listener;
    guint16 port;
    GPtrArray *sources; /* GSource, destroyed at the end */
    guint accepted, eofs;
    gsize bytes;        /* read from the agent */
} Fake;

typedef struct {
    Fake *f;
    GSocket *conn;
} FakeConn;

static void fake_conn_free(gpointer p)
{
    FakeConn *c = p;
    g_socket_close(c->conn, NULL);
    g_object_unref(c->conn);
    g_free(c);
}

static gboolean on_fake_read(GSocket *s, GIOCondition cond, gpointer data)
{
    FakeConn *c = data;
    gchar buf[4096];
    gssize n = g_socket_receive(s, buf, sizeof buf, NULL, NULL);
    (void)cond;
    if (n > 0) {
        c->f->bytes += (gsize)n;
        return G_SOURCE_CONTINUE;
    }
    c->f->eofs++; /* the agent closed (or reset) the connection */
    return G_SOURCE_REMOVE;
}

static gboolean on_fake_accept(GSocket *l, GIOCondition cond, gpointer data)
{
    Fake *f = data;
    GSocket *conn;
    (void)cond;
    while ((conn = g_socket_accept(l, NULL, NULL))) {
        FakeConn *c;
        GSource *src;
        f->accepted++;
        if (f->mode == FAKE_CLOSE) {
            g_socket_close(conn, NULL);
            g_object_unref(conn);
            continue;
        }
        if (f->mode == FAKE_GARBAGE) {
            /* A first byte of 0x80 and up: neither STUN (0b00) nor
             * ChannelData (0b01) on a TURN stream (RFC 8656 §12.5). */
            static const gchar banner[] = "\xef\xbb\xbfHTTP/1.1 400 Bad Request\r\n\r\n";
            g_assert_cmpint(g_socket_send(conn, banner, sizeof banner - 1, NULL, NULL), ==,
                            sizeof banner - 1);
        }
        c = g_new0(FakeConn, 1);
        c->f = f;
        c->conn = conn;
        g_socket_set_blocking(conn, FALSE);
        src = g_socket_create_source(conn, G_IO_IN, NULL);
        g_source_set_callback(src, G_SOURCE_FUNC(on_fake_read), c, fake_conn_free);
        g_source_attach(src, f->ctx);
        g_ptr_array_add(f->sources, src);
    }
    return G_SOURCE_CONTINUE;
}

static void fake_start(Fake *f, GMainContext *ctx, FakeMode mode)
{
    GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    GSocketAddress *sa = g_inet_socket_address_new(lo, 0), *bound;
    GError *err = NULL;
    memset(f, 0, sizeof *f);
    f->mode = mode;
    f->ctx = ctx;
    f->sources = g_ptr_array_new();
    f->listener = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                               &err);
    g_assert_no_error(err);
    g_socket_set_blocking(f->listener, FALSE);
    g_assert_true(g_socket_bind(f->listener, sa, FALSE, &err));
    if (mode != FAKE_REFUSE) {
        GSource *src;
        g_assert_true(g_socket_listen(f->listener, &err));
        src = g_socket_create_source(f->listener, G_IO_IN, NULL);
        g_source_set_callback(src, G_SOURCE_FUNC(on_fake_accept), f, NULL);
        g_source_attach(src, ctx);
        g_ptr_array_add(f->sources, src);
    }
    g_assert_no_error(err);
    bound = g_socket_get_local_address(f->listener, &err);
    f->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
    g_object_unref(bound);
    g_object_unref(sa);
    g_object_unref(lo);
}

static void fake_stop(Fake *f)
{
    for (guint i = 0; i < f->sources->len; i++) {
        GSource *src = g_ptr_array_index(f->sources, i);
        g_source_destroy(src);
        g_source_unref(src);
    }
    g_ptr_array_unref(f->sources);
    g_socket_close(f->listener, NULL);
    g_object_unref(f->listener);
}

static void turn_peer_init(World *w, Peer *p, const gchar *uri)
{
    GError *err = NULL;
    peer_init(w, p, NULL, TRUE);
    g_object_set(p->agent, "relay-only", TRUE, NULL);
    g_assert_true(sluice_agent_add_server(p->agent, uri, "alice", "secret", &err));
    g_assert_no_error(err);
}

static gboolean a_failed_to_gather(World *w)
{
    return w->a.gathered && w->a.server_errors >= 1;
}

/* Refused, closed at once, or garbage: the allocation fails with a
 * server-error, gathering ends without a relayed candidate, and (garbage)
 * the agent closes the connection. */
static void turn_tcp_failure(FakeMode mode)
{
    World w = {0};
    Fake f;
    GError *err = NULL;
    gchar **cands, *uri;
    w.ctx = g_main_context_new();
    fake_start(&f, w.ctx, mode);
    uri = g_strdup_printf("turn:127.0.0.1:%u?transport=tcp", f.port);
    turn_peer_init(&w, &w.a, uri);
    g_assert_true(sluice_agent_gather(w.a.agent, w.a.stream, &err));
    g_assert_no_error(err);
    g_assert_true(run_until(&w, a_failed_to_gather));
    cands = sluice_agent_get_local_candidates(w.a.agent, w.a.stream);
    g_assert_cmpuint(g_strv_length(cands), ==, 0);
    g_strfreev(cands);
    if (mode != FAKE_REFUSE)
        g_assert_cmpuint(f.accepted, ==, 1);
    if (mode == FAKE_GARBAGE) {
        /* It sent its Allocate, and closed the connection on the reply. */
        g_assert_cmpuint(f.bytes, >=, 20);
        g_assert_cmpuint(f.eofs, ==, 1);
    }
    peer_clear(&w.a);
    fake_stop(&f);
    g_free(uri);
    g_main_context_unref(w.ctx);
}

static void test_turn_tcp_refused(void)
{
    turn_tcp_failure(FAKE_REFUSE);
}

static void test_turn_tcp_closed(void)
{
    turn_tcp_failure(FAKE_CLOSE);
}

static void test_turn_tcp_garbage(void)
{
    turn_tcp_failure(FAKE_GARBAGE);
}

#define N_FAKES 8

static Fake fakes[N_FAKES];

static guint fakes_sum(gsize field_offset)
{
    guint n = 0;
    for (guint i = 0; i < N_FAKES; i++)
        n += G_STRUCT_MEMBER(guint, &fakes[i], field_offset);
    return n;
}

static gboolean bounded_done(World *w)
{
    /* 3 bases x 8 servers want 24 connections; 16 are allowed. */
    return fakes_sum(G_STRUCT_OFFSET(Fake, accepted)) >= 16 && w->a.server_errors >= 8;
}

static gboolean all_closed(World *w)
{
    (void)w;
    return fakes_sum(G_STRUCT_OFFSET(Fake, eofs)) >= 16;
}

/* At most 16 connections per agent: the others fail at once (their
 * allocations with a server-error). Disposing the agent closes them all. */
static void test_turn_tcp_bounded(void)
{
    World w = {0};
    GError *err = NULL;
    w.ctx = g_main_context_new();
    peer_init(&w, &w.a, NULL, TRUE);
    g_object_set(w.a.agent, "relay-only", TRUE, NULL);
    g_assert_true(sluice_agent_add_local_address(w.a.agent, "127.0.0.2", &err));
    g_assert_true(sluice_agent_add_local_address(w.a.agent, "127.0.0.3", &err));
    for (guint i = 0; i < N_FAKES; i++) {
        gchar *uri;
        fake_start(&fakes[i], w.ctx, FAKE_SILENT);
        uri = g_strdup_printf("turn:127.0.0.1:%u?transport=tcp", fakes[i].port);
        g_assert_true(sluice_agent_add_server(w.a.agent, uri, "alice", "secret", &err));
        g_free(uri);
    }
    g_test_expect_message("sluice-gio", G_LOG_LEVEL_WARNING, "*at most 16 per agent*");
    g_assert_true(sluice_agent_gather(w.a.agent, w.a.stream, &err));
    g_assert_no_error(err);
    g_assert_true(run_until(&w, bounded_done));
    g_test_assert_expected_messages();
    g_assert_cmpuint(fakes_sum(G_STRUCT_OFFSET(Fake, accepted)), ==, 16);
    g_assert_cmpint(w.a.server_errors, ==, 8);
    g_assert_cmpuint(fakes_sum(G_STRUCT_OFFSET(Fake, eofs)), ==, 0);
    for (guint i = 0; i < N_FAKES; i++)
        g_assert_cmpuint(fakes[i].bytes, >=, 20); /* an Allocate on each */
    peer_clear(&w.a);
    g_assert_true(run_until(&w, all_closed));
    for (guint i = 0; i < N_FAKES; i++)
        fake_stop(&fakes[i]);
    g_main_context_unref(w.ctx);
}

/* The port of fd's local (or peer) address when it is 127.0.0.1, else 0. */
static guint16 loopback_port(int fd, gboolean peer)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int rc = peer ? getpeername(fd, (struct sockaddr *)&sa, &len)
                  : getsockname(fd, (struct sockaddr *)&sa, &len);
    if (rc != 0 || sa.sin_family != AF_INET || sa.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
        return 0;
    return ntohs(sa.sin_port);
}

/* IP_TOS of a socket of this process of the given type: the one whose
 * local port on 127.0.0.1 is local_port, or (local_port 0) whose peer's
 * port on 127.0.0.1 is peer_port; -1 when there is none. */
static gint loopback_socket_tos(int type, guint16 local_port, guint16 peer_port)
{
    GDir *d = g_dir_open("/proc/self/fd", 0, NULL);
    const gchar *name;
    gint found = -1;
    g_assert_nonnull(d);
    while (found < 0 && (name = g_dir_read_name(d))) {
        int fd = (int)g_ascii_strtoll(name, NULL, 10), t = 0, v = 0;
        socklen_t tl = sizeof t, vl = sizeof v;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &tl) != 0 || t != type)
            continue;
        if (local_port ? loopback_port(fd, FALSE) != local_port
                       : loopback_port(fd, TRUE) != peer_port)
            continue;
        if (getsockopt(fd, IPPROTO_IP, IP_TOS, &v, &vl) == 0)
            found = v;
    }
    g_dir_close(d);
    return found;
}

/* The port of the stream's only local candidate, once it was gathered. */
static guint16 host_candidate_port(Peer *p)
{
    gchar **cands = sluice_agent_get_local_candidates(p->agent, p->stream);
    guint16 port = 0;
    if (g_strv_length(cands) == 1) {
        gchar **f = g_strsplit(cands[0], " ", -1);
        if (g_strv_length(f) > 5)
            port = (guint16)g_ascii_strtoull(f[5], NULL, 10);
        g_strfreev(f);
    }
    g_strfreev(cands);
    return port;
}

/* TOS bytes: DSCP AF42 (36) and AF21 (18), RFC 2597. */
#define AF42 (36 << 2)
#define AF21 (18 << 2)

static gboolean host_and_turn_connection(World *w)
{
    return host_candidate_port(&w->a) != 0 && fakes[0].accepted >= 1;
}

/* sluice_agent_set_tos() before gathering: the UDP base bound later and the
 * TCP connection to a TURN server opened later carry the byte; set again,
 * it changes on both at once. */
static void test_tos(void)
{
    World w = {0};
    GError *err = NULL;
    guint16 udp_port;
    gchar *uri;
    w.ctx = g_main_context_new();
    fake_start(&fakes[0], w.ctx, FAKE_SILENT);
    uri = g_strdup_printf("turn:127.0.0.1:%u?transport=tcp", fakes[0].port);
    peer_init(&w, &w.a, NULL, TRUE);
    g_assert_true(sluice_agent_add_server(w.a.agent, uri, "alice", "secret", &err));
    g_assert_no_error(err);

    g_assert_cmpint(sluice_agent_set_tos(w.a.agent, 9, AF42, &err), ==, -1);
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE);
    g_clear_error(&err);
    g_assert_cmpint(sluice_agent_set_tos(w.a.agent, w.a.stream, AF42, &err), ==, 0);
    g_assert_no_error(err);

    g_assert_true(sluice_agent_gather(w.a.agent, w.a.stream, &err));
    g_assert_no_error(err);
    g_assert_true(run_until(&w, host_and_turn_connection));
    udp_port = host_candidate_port(&w.a);
    g_assert_cmpint(loopback_socket_tos(SOCK_DGRAM, udp_port, 0), ==, AF42);
    g_assert_cmpint(loopback_socket_tos(SOCK_STREAM, 0, fakes[0].port), ==, AF42);

    /* AF21 now: the base and the connection, 2 sockets. */
    g_assert_cmpint(sluice_agent_set_tos(w.a.agent, w.a.stream, AF21, &err), ==, 2);
    g_assert_no_error(err);
    g_assert_cmpint(loopback_socket_tos(SOCK_DGRAM, udp_port, 0), ==, AF21);
    g_assert_cmpint(loopback_socket_tos(SOCK_STREAM, 0, fakes[0].port), ==, AF21);

    peer_clear(&w.a);
    fake_stop(&fakes[0]);
    g_free(uri);
    g_main_context_unref(w.ctx);
}

static gboolean both_got_ten(World *w)
{
    return w->a.got->len >= 10 && w->b.got->len >= 10;
}

/* Relay-only both ways through a real TURN server over TCP or TLS
 * (tests/gst/turn_servers.sh): media from sluice_agent_send() reaches the
 * peer's receive function byte-exact, in order. */
static void relayed_pair(const gchar *port_env, const gchar *scheme, const gchar *query,
                         sluice_transport transport)
{
    const gchar *port = g_getenv(port_env);
    World w = {0};
    GError *err = NULL;
    gchar *uri;
    guint sent = 0;
    gint64 t0;
    if (!port) {
        g_test_skip("not under tests/gst/turn_servers.sh");
        return;
    }
    uri = g_strdup_printf("%s:127.0.0.1:%s%s", scheme, port, query);
    w.ctx = g_main_context_new();
    peer_init(&w, &w.a, &w.b, TRUE);
    peer_init(&w, &w.b, &w.a, FALSE);
    for (Peer *p = &w.a; p; p = p == &w.a ? &w.b : NULL) {
        p->relayed = TRUE;
        g_object_set(p->agent, "relay-only", TRUE, "ca-file", g_getenv("SLUICE_TEST_CA"), NULL);
        g_assert_true(sluice_agent_add_server(p->agent, uri, g_getenv("SLUICE_TEST_USER"),
                                              g_getenv("SLUICE_TEST_PASSWORD"), &err));
        g_assert_no_error(err);
    }
    exchange_credentials(&w.a, &w.b);
    exchange_credentials(&w.b, &w.a);
    /* A's TOS byte (EF, DSCP 46) on its connection to the server; B's stays 0. */
    g_assert_cmpint(sluice_agent_set_tos(w.a.agent, w.a.stream, 46 << 2, &err), ==, 0);
    t0 = g_get_monotonic_time();
    g_assert_true(sluice_agent_gather(w.a.agent, w.a.stream, &err));
    g_assert_true(sluice_agent_gather(w.b.agent, w.b.stream, &err));
    g_assert_true(run_until(&w, both_selected));
    g_test_message("%s: relayed pair after %.1f ms", uri,
                   (g_get_monotonic_time() - t0) / 1000.0);
    for (Peer *p = &w.a; p; p = p == &w.a ? &w.b : NULL) {
        SluiceAgentRoute r;
        g_assert_true(sluice_agent_get_route(p->agent, 1, 1, &r));
        gint tos = -1;
        g_assert_cmpint(r.route.transport, ==, transport);
        g_assert_nonnull(r.link);
        g_assert_true(g_socket_get_option(r.socket, IPPROTO_IP, IP_TOS, &tos, &err));
        g_assert_cmpint(tos, ==, p == &w.a ? 46 << 2 : 0);
        sluice_agent_route_clear(&r);
    }
    /* Three rounds of ten each way, 1 to 3000 bytes (above the 2 KiB the
     * agent frames on its stack). */
    for (guint round = 0; round < 3; round++) {
        for (guint k = 0; k < 10; k++, sent++) {
            gsize len = 1 + (sent * 311) % 3000;
            guint8 *d = g_malloc(len);
            for (gsize i = 0; i < len; i++)
                d[i] = (guint8)(sent + i * 13);
            d[0] = 0x80;
            g_assert_cmpint(sluice_agent_send(w.a.agent, 1, 1, d, len, &err), ==, (gssize)len);
            d[0] = 0x81;
            g_assert_cmpint(sluice_agent_send(w.b.agent, 1, 1, d, len, &err), ==, (gssize)len);
            g_assert_no_error(err);
            g_free(d);
        }
        g_assert_true(run_until(&w, both_got_ten));
        for (guint k = 0; k < 10; k++) {
            guint n = sent - 10 + k;
            gsize len = 1 + (n * 311) % 3000;
            GBytes *ga = g_ptr_array_index(w.b.got, k), *gb = g_ptr_array_index(w.a.got, k);
            const guint8 *da = g_bytes_get_data(ga, NULL), *db = g_bytes_get_data(gb, NULL);
            g_assert_cmpuint(g_bytes_get_size(ga), ==, len);
            g_assert_cmpuint(g_bytes_get_size(gb), ==, len);
            g_assert_cmpuint(da[0], ==, 0x80);
            g_assert_cmpuint(db[0], ==, 0x81);
            for (gsize i = 1; i < len; i++) {
                g_assert_cmpuint(da[i], ==, (guint8)(n + i * 13));
                g_assert_cmpuint(db[i], ==, (guint8)(n + i * 13));
            }
        }
        g_ptr_array_set_size(w.a.got, 0);
        g_ptr_array_set_size(w.b.got, 0);
    }
    g_assert_cmpint(w.a.server_errors + w.b.server_errors, ==, 0);
    peer_clear(&w.a);
    peer_clear(&w.b);
    g_free(uri);
    g_main_context_unref(w.ctx);
}

/* A wrong password over TCP: the allocation fails (401), the agent says
 * CLOSE_STREAM and the driver has closed the connection by the time the
 * application hears of it. */
static void test_relayed_bad_password(void)
{
    const gchar *port = g_getenv("SLUICE_TEST_RELAY_PORT");
    World w = {0};
    GError *err = NULL;
    gchar *uri;
    guint fds0;
    if (!port) {
        g_test_skip("not under tests/gst/turn_servers.sh");
        return;
    }
    uri = g_strdup_printf("turn:127.0.0.1:%s?transport=tcp", port);
    w.ctx = g_main_context_new();
    peer_init(&w, &w.a, NULL, TRUE);
    g_object_set(w.a.agent, "relay-only", TRUE, NULL);
    g_assert_true(sluice_agent_add_server(w.a.agent, uri, g_getenv("SLUICE_TEST_USER"),
                                          "not the password", &err));
    g_assert_no_error(err);
    fds0 = count_fds();
    g_assert_true(sluice_agent_gather(w.a.agent, w.a.stream, &err));
    g_assert_true(run_until(&w, a_failed_to_gather));
    g_assert_cmpint(w.a.error_code, ==, 401);
    g_assert_cmpuint(w.a.fds_at_error, ==, fds0 + 1); /* the UDP base only */
    peer_clear(&w.a);
    g_free(uri);
    g_main_context_unref(w.ctx);
}

static void test_relayed_relay_tcp(void)
{
    relayed_pair("SLUICE_TEST_RELAY_PORT", "turn", "?transport=tcp", SLUICE_TRANSPORT_TCP);
}

static void test_relayed_relay_tls(void)
{
    relayed_pair("SLUICE_TEST_RELAY_TLS_PORT", "turns", "", SLUICE_TRANSPORT_TLS);
}

static void test_relayed_coturn_tcp(void)
{
    relayed_pair("SLUICE_TEST_COTURN_PORT", "turn", "?transport=tcp", SLUICE_TRANSPORT_TCP);
}

static void test_relayed_coturn_tls(void)
{
    relayed_pair("SLUICE_TEST_COTURN_TLS_PORT", "turns", "", SLUICE_TRANSPORT_TLS);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/gio-agent/loopback-pair", test_loopback_pair);
    g_test_add_func("/gio-agent/bad-input", test_bad_input);
    g_test_add_func("/gio-agent/shared-context", test_shared_context);
    g_test_add_func("/gio-agent/turn-tcp/refused", test_turn_tcp_refused);
    g_test_add_func("/gio-agent/turn-tcp/closed", test_turn_tcp_closed);
    g_test_add_func("/gio-agent/turn-tcp/garbage", test_turn_tcp_garbage);
    g_test_add_func("/gio-agent/turn-tcp/bounded", test_turn_tcp_bounded);
    g_test_add_func("/gio-agent/tos", test_tos);
    g_test_add_func("/gio-agent/relayed/sluice-relay-tcp", test_relayed_relay_tcp);
    g_test_add_func("/gio-agent/relayed/sluice-relay-tls", test_relayed_relay_tls);
    g_test_add_func("/gio-agent/relayed/coturn-tcp", test_relayed_coturn_tcp);
    g_test_add_func("/gio-agent/relayed/coturn-tls", test_relayed_coturn_tls);
    g_test_add_func("/gio-agent/relayed/bad-password-tcp", test_relayed_bad_password);
    return g_test_run();
}
