/* SPDX-License-Identifier: MIT */
/* SluiceTurnAllocation (the GLib driver of the TURN client) on the test's
 * own GMainContext with a GstTestClock behind the SluiceClock: a server
 * that never answers fails after 39.5 s of mock time, and against
 * sluice-relay (SLUICE_TEST_RELAY_PORT, started by turn_servers.sh) an
 * allocation over UDP, TCP and TLS carries data both ways to a peer the
 * test plays itself, is refreshed when the mock clock is cranked past its
 * refresh time, and is deleted. Nothing sleeps: every wait is on the
 * context, a socket timeout or the test clock, with a deadline. */
#include <stdlib.h>
#include <string.h>

#include <gst/check/gsttestclock.h>
#include <gst/gst.h>

#include "gstsluiceclock.h"
#include "sluice-gio.h"

#define DEADLINE_S 10

typedef struct {
    GMainContext *ctx;
    GstTestClock *tc;
    SluiceClock *clock;
    gboolean timed_out;

    /* what the allocation reported */
    gint allocated, failed, refreshed, channel_bound, closed, lost;
    guint fail_code;
    gint fail_kind;
    gchar *fail_message;
    GPtrArray *got; /* GBytes from the peer */
} World;

static void world_init(World *w)
{
    memset(w, 0, sizeof *w);
    w->ctx = g_main_context_new();
    w->tc = GST_TEST_CLOCK(gst_test_clock_new());
    w->clock = gst_sluice_clock_new(GST_CLOCK(w->tc));
    w->got = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
}

static void world_clear(World *w)
{
    /* Let sources that finish (closed objects, cancelled lookups) run. */
    while (g_main_context_iteration(w->ctx, FALSE))
        ;
    g_object_unref(w->clock);
    gst_object_unref(w->tc);
    g_main_context_unref(w->ctx);
    g_ptr_array_unref(w->got);
    g_free(w->fail_message);
}

static gboolean on_deadline(gpointer data)
{
    ((World *)data)->timed_out = TRUE;
    return G_SOURCE_REMOVE;
}

/* Iterate the test's context until cond(w) or DEADLINE_S real seconds. */
static gboolean run_until(World *w, gboolean (*cond)(World *))
{
    GSource *t = g_timeout_source_new_seconds(DEADLINE_S);
    gboolean ok;
    w->timed_out = FALSE;
    g_source_set_callback(t, on_deadline, w, NULL);
    g_source_attach(t, w->ctx);
    while (!cond(w) && !w->timed_out)
        g_main_context_iteration(w->ctx, TRUE);
    ok = cond(w);
    g_source_destroy(t);
    g_source_unref(t);
    return ok;
}

static gboolean is_allocated(World *w)
{
    return w->allocated > 0 || w->failed > 0;
}
static gboolean is_failed(World *w)
{
    return w->failed > 0;
}
static gboolean is_bound(World *w)
{
    return w->channel_bound > 0 || w->failed > 0;
}
static gboolean is_closed(World *w)
{
    return w->closed > 0;
}
static gboolean has_data(World *w)
{
    return w->got->len > 0;
}
static gboolean timer_pending(World *w)
{
    return gst_test_clock_peek_id_count(w->tc) > 0 || w->failed > 0 || w->refreshed > 0;
}

static void on_allocated(SluiceTurnAllocation *a, GSocketAddress *relayed, GSocketAddress *mapped,
                         guint lifetime, gpointer data)
{
    World *w = data;
    (void)a;
    g_assert_true(G_IS_INET_SOCKET_ADDRESS(relayed));
    g_assert_true(G_IS_INET_SOCKET_ADDRESS(mapped));
    g_assert_cmpuint(lifetime, >, 0);
    w->allocated++;
}

static void on_failed(SluiceTurnAllocation *a, guint code, GError *err, gpointer data)
{
    World *w = data;
    (void)a;
    g_assert_true(err->domain == SLUICE_TURN_ALLOCATION_ERROR);
    g_test_message("failed: %u %s", code, err->message);
    w->failed++;
    w->fail_code = code;
    w->fail_kind = err->code;
    g_free(w->fail_message);
    w->fail_message = g_strdup(err->message);
}

static void on_lost(SluiceTurnAllocation *a, guint code, GError *err, gpointer data)
{
    (void)a;
    (void)code;
    g_test_message("lost: %s", err->message);
    ((World *)data)->lost++;
}

static void on_refreshed(SluiceTurnAllocation *a, guint lifetime, gpointer data)
{
    (void)a;
    g_assert_cmpuint(lifetime, >, 0);
    ((World *)data)->refreshed++;
}

static void on_channel_bound(SluiceTurnAllocation *a, GSocketAddress *peer, guint channel,
                             gpointer data)
{
    (void)a;
    (void)peer;
    g_assert_cmpuint(channel, >=, 0x4000);
    g_assert_cmpuint(channel, <=, 0x4FFF);
    ((World *)data)->channel_bound++;
}

static void on_closed(SluiceTurnAllocation *a, gpointer data)
{
    (void)a;
    ((World *)data)->closed++;
}

static void on_data(SluiceTurnAllocation *a, const sluice_addr *peer, const guint8 *data, gsize len,
                    gpointer user)
{
    World *w = user;
    (void)a;
    (void)peer;
    g_ptr_array_add(w->got, g_bytes_new(data, len));
}

static SluiceTurnAllocation *make_alloc(World *w, const gchar *uri, const gchar *password)
{
    SluiceTurnAllocation *a =
        g_object_new(SLUICE_TYPE_TURN_ALLOCATION, "server", uri, "username",
                     g_getenv("SLUICE_TEST_USER"), "password", password, "ca-file",
                     g_getenv("SLUICE_TEST_CA"), "main-context", w->ctx, "clock", w->clock, NULL);
    g_signal_connect(a, "allocated", G_CALLBACK(on_allocated), w);
    g_signal_connect(a, "failed", G_CALLBACK(on_failed), w);
    g_signal_connect(a, "lost", G_CALLBACK(on_lost), w);
    g_signal_connect(a, "refreshed", G_CALLBACK(on_refreshed), w);
    g_signal_connect(a, "channel-bound", G_CALLBACK(on_channel_bound), w);
    g_signal_connect(a, "closed", G_CALLBACK(on_closed), w);
    sluice_turn_allocation_set_recv_func(a, on_data, w, NULL);
    return a;
}

static guint64 mock_now_us(World *w)
{
    return gst_clock_get_time(GST_CLOCK(w->tc)) / 1000;
}

/* Crank the test clock to the allocation's next deadline and let the
 * context run that timer: one step in mock time, no sleeping. */
static void crank(World *w)
{
    g_assert_true(gst_test_clock_timed_wait_for_multiple_pending_ids(w->tc, 1, 5000, NULL));
    g_assert_true(gst_test_clock_crank(w->tc));
    /* The wake-up made the timer ready: this iteration runs it. */
    g_main_context_iteration(w->ctx, TRUE);
}

/* No request in flight: the next deadline is a refresh a minute or more
 * away, not a retransmission (the relay answers in real time, and mock
 * time must not outrun it). */
static gboolean quiet(World *w)
{
    GstClockID id;
    gboolean far;
    if (w->failed || w->lost)
        return TRUE;
    if (!gst_test_clock_peek_next_pending_id(w->tc, &id))
        return FALSE;
    far = gst_clock_id_get_time(id) >= gst_clock_get_time(GST_CLOCK(w->tc)) + 60 * GST_SECOND;
    gst_clock_id_unref(id);
    return far;
}

/* ------------------------------------------------------------------------ */

static void test_settings(void)
{
    World w;
    GError *err = NULL;
    SluiceTurnAllocation *a;
    struct {
        const gchar *uri, *user, *pass, *ca;
        gint transport;
        const gchar *expect;
    } bad[] = {
        {NULL, "u", "p", NULL, 0, "no TURN server URI"},
        {"stun:127.0.0.1", "u", "p", NULL, 0, "STUN URI"},
        {"http://x", "u", "p", NULL, 0, "expected stun:"},
        {"turn:127.0.0.1", NULL, NULL, NULL, 0, "username and a password"},
        {"turn:127.0.0.1", "", "p", NULL, 0, "username and a password"},
        {"turns:127.0.0.1", "u", "p", NULL, SLUICE_TURN_ALLOCATION_TRANSPORT_UDP, "contradicts"},
        {"turn:127.0.0.1?transport=tcp", "u", "p", NULL, SLUICE_TURN_ALLOCATION_TRANSPORT_TLS,
         "contradicts"},
        {"turns:127.0.0.1", "u", "p", "/nonexistent/ca.pem", 0, "ca-file"},
    };

    world_init(&w);
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        a = g_object_new(SLUICE_TYPE_TURN_ALLOCATION, "server", bad[i].uri, "username", bad[i].user,
                         "password", bad[i].pass, "ca-file", bad[i].ca, "transport",
                         bad[i].transport, "main-context", w.ctx, NULL);
        g_assert_false(sluice_turn_allocation_start(a, &err));
        g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID);
        g_assert_nonnull(strstr(err->message, bad[i].expect));
        g_clear_error(&err);
        g_assert_cmpint(sluice_turn_allocation_get_state(a), ==, SLUICE_TURN_ALLOCATION_STATE_NEW);
        g_object_unref(a);
    }

    /* Credentials in the URI; a second start is refused; closing before
     * anything was sent ends at once, with "closed" on the context. */
    a = make_alloc(&w, "turn:u:p@127.0.0.1:9", NULL);
    g_object_set(a, "username", NULL, NULL);
    g_assert_true(sluice_turn_allocation_start(a, &err));
    g_assert_no_error(err);
    g_assert_false(sluice_turn_allocation_start(a, &err));
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE);
    g_clear_error(&err);
    g_assert_cmpint(sluice_turn_allocation_get_transport(a), ==,
                    SLUICE_TURN_ALLOCATION_TRANSPORT_UDP);
    sluice_turn_allocation_close(a);
    g_object_unref(a); /* the object keeps itself until "closed" */
    g_assert_true(run_until(&w, is_closed));
    g_assert_cmpint(w.allocated, ==, 0);
    world_clear(&w);
}

/* A server that never answers: Rc = 7 Allocate requests over UDP, then
 * "failed" with TIMEOUT at 39.5 s (RFC 8489 §6.2.1, Rm = 16) — in mock
 * time, so the test takes milliseconds. */
static void test_no_answer(void)
{
    World w;
    GError *err = NULL;
    GSocket *silent =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &err);
    GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    GSocketAddress *any = g_inet_socket_address_new(lo, 0), *bound;
    SluiceTurnAllocation *a;
    gchar *uri;
    guint64 t0;
    guint requests = 0;
    gchar buf[2048];

    g_assert_no_error(err);
    g_assert_true(g_socket_bind(silent, any, FALSE, &err));
    bound = g_socket_get_local_address(silent, &err);
    uri = g_strdup_printf("turn:127.0.0.1:%u",
                          g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));

    world_init(&w);
    t0 = mock_now_us(&w);
    a = make_alloc(&w, uri, "p");
    g_object_set(a, "username", "u", NULL);
    g_assert_true(sluice_turn_allocation_start(a, &err));
    for (int i = 0; i < 16 && !w.failed; i++) {
        g_assert_true(run_until(&w, timer_pending)); /* a request was sent */
        crank(&w);
    }
    g_assert_cmpint(w.failed, ==, 1);
    g_assert_cmpint(w.fail_kind, ==, SLUICE_TURN_ALLOCATION_ERROR_TIMEOUT);
    g_assert_cmpuint(w.fail_code, ==, 0);
    g_assert_nonnull(strstr(w.fail_message, "no answer from TURN server"));
    g_assert_cmpuint(mock_now_us(&w) - t0, ==, 39500000);
    g_assert_cmpint(sluice_turn_allocation_get_state(a), ==, SLUICE_TURN_ALLOCATION_STATE_FAILED);
    g_socket_set_blocking(silent, FALSE);
    while (g_socket_receive(silent, buf, sizeof buf, NULL, NULL) > 0)
        requests++;
    g_assert_cmpuint(requests, ==, 7);

    g_object_unref(a);
    world_clear(&w);
    g_free(uri);
    g_object_unref(bound);
    g_object_unref(any);
    g_object_unref(lo);
    g_object_unref(silent);
}

/* ------------------------------------------------------------------------ */
/* Against sluice-relay */

static gchar *relay_uri(const gchar *transport)
{
    if (!g_getenv("SLUICE_TEST_RELAY_PORT"))
        return NULL;
    if (g_str_equal(transport, "tls"))
        return g_strdup_printf("turns:127.0.0.1:%s", g_getenv("SLUICE_TEST_RELAY_TLS_PORT"));
    if (g_str_equal(transport, "tcp"))
        return g_strdup_printf("turn:127.0.0.1:%s?transport=tcp",
                               g_getenv("SLUICE_TEST_RELAY_PORT"));
    return g_strdup_printf("turn:127.0.0.1:%s", g_getenv("SLUICE_TEST_RELAY_PORT"));
}

/* One datagram from the allocation to the peer and one back. */
static void ping_pong(World *w, SluiceTurnAllocation *a, GSocket *peer, GSocketAddress *peer_addr,
                      GSocketAddress *relayed, guint n)
{
    gchar *ping = g_strdup_printf("ping %u", n), *pong = g_strdup_printf("pong %u", n);
    sluice_addr pa;
    GError *err = NULL;
    GSocketAddress *from = NULL;
    gchar buf[256];
    gssize r;
    GBytes *got;

    g_assert_true(sluice_turn_allocation_peer_from_gsocket(&pa, peer_addr));
    g_assert_true(sluice_turn_allocation_send(a, &pa, (const guint8 *)ping, strlen(ping), &err));
    g_assert_no_error(err);
    r = g_socket_receive_from(peer, &from, buf, sizeof buf, NULL, &err); /* 5 s timeout */
    g_assert_no_error(err);
    g_assert_cmpmem(buf, r, ping, strlen(ping));
    /* It came from the relayed address. */
    g_assert_cmpuint(g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(from)), ==,
                     g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(relayed)));
    g_assert_cmpint(g_socket_send_to(peer, from, pong, strlen(pong), NULL, &err), ==,
                    (gssize)strlen(pong));
    g_ptr_array_set_size(w->got, 0);
    g_assert_true(run_until(w, has_data));
    got = w->got->pdata[0];
    g_assert_cmpmem(g_bytes_get_data(got, NULL), g_bytes_get_size(got), pong, strlen(pong));
    g_object_unref(from);
    g_free(ping);
    g_free(pong);
}

static void test_relay(gconstpointer data)
{
    const gchar *transport = data;
    gchar *uri = relay_uri(transport);
    World w;
    GError *err = NULL;
    SluiceTurnAllocation *a;
    GSocket *peer;
    GInetAddress *lo;
    GSocketAddress *any, *peer_addr, *relayed, *mapped;
    SluiceTurnAllocationStats st;
    guint64 t0;

    if (!uri) {
        g_test_skip("SLUICE_TEST_RELAY_PORT not set (run through turn_servers.sh)");
        return;
    }
    /* The peer: the test's own UDP socket on 127.0.0.1 (the relay allows
     * loopback peers for this test). */
    peer = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &err);
    lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    any = g_inet_socket_address_new(lo, 0);
    g_assert_true(g_socket_bind(peer, any, FALSE, &err));
    peer_addr = g_socket_get_local_address(peer, &err);
    g_socket_set_timeout(peer, 5);

    world_init(&w);
    t0 = mock_now_us(&w);
    a = make_alloc(&w, uri, g_getenv("SLUICE_TEST_PASSWORD"));
    g_assert_true(sluice_turn_allocation_start(a, &err));
    g_assert_no_error(err);
    g_assert_true(run_until(&w, is_allocated));
    g_assert_cmpint(w.failed, ==, 0);
    g_assert_cmpint(sluice_turn_allocation_get_state(a), ==,
                    SLUICE_TURN_ALLOCATION_STATE_ALLOCATED);
    relayed = sluice_turn_allocation_get_relayed_address(a, 0);
    mapped = sluice_turn_allocation_get_mapped_address(a);
    g_assert_nonnull(relayed);
    g_assert_nonnull(mapped);
    g_assert_null(sluice_turn_allocation_get_relayed_address(a, 1));

    g_assert_cmpuint(sluice_turn_allocation_bind_channel(a, peer_addr, &err), ==, 0x4000);
    g_assert_no_error(err);
    g_assert_true(run_until(&w, is_bound));
    g_assert_cmpint(w.channel_bound, ==, 1);
    ping_pong(&w, a, peer, peer_addr, relayed, 1);

    /* Crank mock time through the channel rebinds (240 s) to the refresh
     * (lifetime - 60 s); the relay is on real time and just sees early
     * refreshes. */
    for (int i = 0; i < 10; i++) {
        g_assert_true(run_until(&w, quiet)); /* every request answered */
        if (w.refreshed || w.lost)
            break;
        crank(&w);
    }
    g_assert_cmpint(w.lost, ==, 0);
    g_assert_cmpint(w.refreshed, ==, 1);
    g_assert_cmpuint(mock_now_us(&w) - t0, >=, 540u * G_USEC_PER_SEC);
    g_test_message("%s: refreshed after %" G_GUINT64_FORMAT " s of mock time", transport,
                   (mock_now_us(&w) - t0) / G_USEC_PER_SEC);
    ping_pong(&w, a, peer, peer_addr, relayed, 2);

    sluice_turn_allocation_get_stats(a, &st);
    g_assert_cmpuint(st.tx_packets, ==, 2);
    g_assert_cmpuint(st.rx_packets, ==, 2);
    g_assert_cmpuint(st.refreshes, ==, 1);

    sluice_turn_allocation_close(a);
    g_assert_true(run_until(&w, is_closed));
    g_assert_cmpint(sluice_turn_allocation_get_state(a), ==, SLUICE_TURN_ALLOCATION_STATE_CLOSED);
    g_assert_false(sluice_turn_allocation_send(a, &(sluice_addr){0}, (const guint8 *)"x", 1, &err));
    g_assert_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE);
    g_clear_error(&err);

    g_object_unref(a);
    world_clear(&w);
    g_object_unref(relayed);
    g_object_unref(mapped);
    g_object_unref(peer_addr);
    g_object_unref(any);
    g_object_unref(lo);
    g_object_unref(peer);
    g_free(uri);
}

static gboolean all_allocated_quota(World *w)
{
    return w->allocated + w->failed >= (gint)atoi(g_getenv("SLUICE_TEST_RELAY_QUOTA"));
}

/* The failed one is closed at once, the others once the relay confirmed. */
static gboolean all_closed_quota(World *w)
{
    return w->closed >= (gint)atoi(g_getenv("SLUICE_TEST_RELAY_QUOTA"));
}

static gboolean all_allocated(World *w)
{
    return w->allocated + w->failed >= 8;
}
static gboolean all_closed(World *w)
{
    return w->closed >= 8;
}

/* Eight allocations share one context (and its one thread). */
static void test_relay_shared_context(void)
{
    gchar *uri = relay_uri("udp");
    SluiceTurnAllocation *a[8];
    GError *err = NULL;
    World w;

    if (!uri) {
        g_test_skip("SLUICE_TEST_RELAY_PORT not set (run through turn_servers.sh)");
        return;
    }
    world_init(&w);
    for (guint i = 0; i < G_N_ELEMENTS(a); i++) {
        a[i] = make_alloc(&w, uri, g_getenv("SLUICE_TEST_PASSWORD"));
        g_assert_true(sluice_turn_allocation_start(a[i], &err));
    }
    g_assert_true(run_until(&w, all_allocated));
    g_assert_cmpint(w.failed, ==, 0);
    for (guint i = 0; i < G_N_ELEMENTS(a); i++) {
        sluice_turn_allocation_close(a[i]);
        g_object_unref(a[i]);
    }
    g_assert_true(run_until(&w, all_closed));
    world_clear(&w);
    g_free(uri);
}

static void expect_failure(const gchar *uri, const gchar *password, const gchar *ca, gint kind,
                           guint code, const gchar *words)
{
    SluiceTurnAllocation *a;
    GError *err = NULL;
    World w;

    world_init(&w);
    a = make_alloc(&w, uri, password);
    g_object_set(a, "ca-file", ca, NULL);
    g_assert_true(sluice_turn_allocation_start(a, &err));
    g_assert_true(run_until(&w, is_failed));
    g_assert_cmpint(w.allocated, ==, 0);
    g_assert_cmpint(w.fail_kind, ==, kind);
    g_assert_cmpuint(w.fail_code, ==, code);
    g_assert_nonnull(strstr(w.fail_message, words));
    g_object_unref(a);
    world_clear(&w);
}

static void test_relay_wrong_password(void)
{
    gchar *uri = relay_uri("udp");
    if (!uri) {
        g_test_skip("SLUICE_TEST_RELAY_PORT not set (run through turn_servers.sh)");
        return;
    }
    expect_failure(uri, "wrong", g_getenv("SLUICE_TEST_CA"), SLUICE_TURN_ALLOCATION_ERROR_AUTH, 401,
                   "check username and password");
    g_free(uri);
}

/* The system store does not know the test certificate. */
static void test_relay_tls_unverified(void)
{
    gchar *uri = relay_uri("tls");
    if (!uri) {
        g_test_skip("SLUICE_TEST_RELAY_PORT not set (run through turn_servers.sh)");
        return;
    }
    expect_failure(uri, g_getenv("SLUICE_TEST_PASSWORD"), NULL, SLUICE_TURN_ALLOCATION_ERROR_TLS, 0,
                   "TLS with TURN server");
    g_free(uri);
}

/* A host name: resolved off the context, then each address in turn over
 * TLS (the relay listens on 127.0.0.1 only, so ::1, when localhost has it,
 * is refused first); the certificate is checked against DNS:localhost. */
static void test_relay_name(void)
{
    gchar *uri;
    SluiceTurnAllocation *a;
    GError *err = NULL;
    World w;

    if (!g_getenv("SLUICE_TEST_RELAY_TLS_PORT")) {
        g_test_skip("SLUICE_TEST_RELAY_PORT not set (run through turn_servers.sh)");
        return;
    }
    uri = g_strdup_printf("turns:localhost:%s", g_getenv("SLUICE_TEST_RELAY_TLS_PORT"));
    world_init(&w);
    a = make_alloc(&w, uri, g_getenv("SLUICE_TEST_PASSWORD"));
    g_assert_true(sluice_turn_allocation_start(a, &err));
    g_assert_true(run_until(&w, is_allocated));
    g_assert_cmpint(w.failed, ==, 0);
    sluice_turn_allocation_close(a);
    g_object_unref(a);
    g_assert_true(run_until(&w, is_closed));
    world_clear(&w);
    g_free(uri);
}

static gboolean quota_settled(World *w)
{
    return w->allocated + w->failed >= (gint)atoi(g_getenv("SLUICE_TEST_RELAY_QUOTA")) + 1;
}

/* The user's quota on sluice-relay is full: the next Allocate gets 486. */
static void test_relay_quota(void)
{
    gchar *uri = relay_uri("udp");
    GPtrArray *all;
    World w;
    guint quota;

    if (!uri || !g_getenv("SLUICE_TEST_RELAY_QUOTA")) {
        g_test_skip("SLUICE_TEST_RELAY_PORT not set (run through turn_servers.sh)");
        g_free(uri);
        return;
    }
    quota = (guint)atoi(g_getenv("SLUICE_TEST_RELAY_QUOTA"));
    all = g_ptr_array_new_with_free_func(g_object_unref);
    world_init(&w);
    for (guint i = 0; i < quota; i++) {
        SluiceTurnAllocation *a = make_alloc(&w, uri, g_getenv("SLUICE_TEST_PASSWORD"));
        g_ptr_array_add(all, a);
        g_assert_true(sluice_turn_allocation_start(a, NULL));
    }
    g_assert_true(run_until(&w, all_allocated_quota));
    g_assert_cmpint(w.failed, ==, 0);
    {
        SluiceTurnAllocation *a = make_alloc(&w, uri, g_getenv("SLUICE_TEST_PASSWORD"));
        g_ptr_array_add(all, a);
        g_assert_true(sluice_turn_allocation_start(a, NULL));
    }
    g_assert_true(run_until(&w, quota_settled));
    g_assert_cmpint(w.allocated, ==, (gint)quota);
    g_assert_cmpint(w.failed, ==, 1);
    g_assert_cmpuint(w.fail_code, ==, 486);
    g_assert_cmpint(w.fail_kind, ==, SLUICE_TURN_ALLOCATION_ERROR_QUOTA);
    g_assert_nonnull(strstr(w.fail_message, "quota"));
    for (guint i = 0; i < all->len; i++)
        sluice_turn_allocation_close(all->pdata[i]);
    g_ptr_array_unref(all);
    g_assert_true(run_until(&w, all_closed_quota));
    world_clear(&w);
    g_free(uri);
}

/* A resolver that answers every name with 127.0.0.2 (nothing listens
 * there: the connection is refused) and then 127.0.0.1. */
typedef struct {
    GResolver parent;
} FakeResolver;
typedef struct {
    GResolverClass parent_class;
} FakeResolverClass;
static GType fake_resolver_get_type(void);
G_DEFINE_TYPE(FakeResolver, fake_resolver, G_TYPE_RESOLVER)

static GList *fake_addresses(void)
{
    GList *l = g_list_append(NULL, g_inet_address_new_from_string("127.0.0.2"));
    return g_list_append(l, g_inet_address_new_from_string("127.0.0.1"));
}

static GList *fake_lookup(GResolver *r, const gchar *host, GCancellable *c, GError **e)
{
    (void)r;
    (void)host;
    (void)c;
    (void)e;
    return fake_addresses();
}

static void fake_lookup_async(GResolver *r, const gchar *host, GCancellable *c,
                              GAsyncReadyCallback cb, gpointer data)
{
    GTask *t = g_task_new(r, c, cb, data);
    (void)host;
    g_task_return_pointer(t, fake_addresses(), (GDestroyNotify)g_resolver_free_addresses);
    g_object_unref(t);
}

static GList *fake_lookup_finish(GResolver *r, GAsyncResult *res, GError **e)
{
    (void)r;
    return g_task_propagate_pointer(G_TASK(res), e);
}

static void fake_resolver_class_init(FakeResolverClass *k)
{
    GResolverClass *rc = G_RESOLVER_CLASS(k);
    rc->lookup_by_name = fake_lookup;
    rc->lookup_by_name_async = fake_lookup_async;
    rc->lookup_by_name_finish = fake_lookup_finish;
}

static void fake_resolver_init(FakeResolver *r)
{
    (void)r;
}

/* Over TCP each resolved address is tried in turn: the first refuses, the
 * allocation is made on the second. */
static void test_relay_next_address(void)
{
    GResolver *saved = g_resolver_get_default(), *fake;
    GSocketAddress *srv;
    SluiceTurnAllocation *a;
    GError *err = NULL;
    gchar *uri;
    World w;

    if (!g_getenv("SLUICE_TEST_RELAY_PORT")) {
        g_test_skip("SLUICE_TEST_RELAY_PORT not set (run through turn_servers.sh)");
        g_object_unref(saved);
        return;
    }
    fake = g_object_new(fake_resolver_get_type(), NULL);
    g_resolver_set_default(fake);
    uri = g_strdup_printf("turn:relay.sluice.invalid:%s?transport=tcp",
                          g_getenv("SLUICE_TEST_RELAY_PORT"));
    world_init(&w);
    a = make_alloc(&w, uri, g_getenv("SLUICE_TEST_PASSWORD"));
    g_assert_true(sluice_turn_allocation_start(a, &err));
    g_assert_true(run_until(&w, is_allocated));
    g_assert_cmpint(w.failed, ==, 0);
    srv = sluice_turn_allocation_get_server_address(a);
    g_assert_cmpuint(g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(srv)), ==,
                     (guint)atoi(g_getenv("SLUICE_TEST_RELAY_PORT")));
    {
        gchar *ip =
            g_inet_address_to_string(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(srv)));
        g_assert_cmpstr(ip, ==, "127.0.0.1");
        g_free(ip);
    }
    sluice_turn_allocation_close(a);
    g_object_unref(a);
    g_assert_true(run_until(&w, is_closed));
    world_clear(&w);
    g_resolver_set_default(saved);
    g_object_unref(saved);
    g_object_unref(fake);
    g_object_unref(srv);
    g_free(uri);
}

int main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/turn-allocation/settings", test_settings);
    g_test_add_func("/turn-allocation/no-answer", test_no_answer);
    g_test_add_data_func("/turn-allocation/relay/udp", "udp", test_relay);
    g_test_add_data_func("/turn-allocation/relay/tcp", "tcp", test_relay);
    g_test_add_data_func("/turn-allocation/relay/tls", "tls", test_relay);
    g_test_add_func("/turn-allocation/relay/shared-context", test_relay_shared_context);
    g_test_add_func("/turn-allocation/relay/name", test_relay_name);
    g_test_add_func("/turn-allocation/relay/next-address", test_relay_next_address);
    g_test_add_func("/turn-allocation/relay/quota", test_relay_quota);
    g_test_add_func("/turn-allocation/relay/wrong-password", test_relay_wrong_password);
    g_test_add_func("/turn-allocation/relay/tls-unverified", test_relay_tls_unverified);
    return g_test_run();
}
