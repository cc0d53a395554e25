/* SPDX-License-Identifier: MIT */
/* icesink -> icesrc in one process over loopback host candidates (buffers
 * and buffer lists, byte-exact and in order), and consent freshness on a
 * GstTestClock: the peer goes away, 30 s of mock time later the sink stops
 * sending and the application is told; an ICE restart brings media back.
 * Under tests/gst/turn_servers.sh: the same relay-only through sluice-relay
 * and coturn over TURN UDP, TCP and TLS. ICE failure is a bus error, or a
 * warning with fatal-errors=FALSE (webrtcbin's transport). */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <string.h>

#include "gstsluiceclock.h"
#include "sluice-gio.h"

typedef struct {
    SluiceAgent *agent;
    gint selected, consent_lost;
    GstClockTime lost_at; /* mock time when consent-lost was signalled */
} Peer;

static GstClock *mock_clock;
static GMutex lock;
static GCond cond;

static void on_candidate(SluiceAgent *agent, guint stream, guint comp, const gchar *line,
                         gpointer data)
{
    Peer *other = data;
    (void)agent;
    (void)comp;
    fail_unless(sluice_agent_add_remote_candidate(other->agent, stream, line, NULL));
}

static void on_selected(SluiceAgent *agent, guint stream, guint comp, const gchar *l,
                        const gchar *r, gpointer data)
{
    Peer *p = data;
    (void)agent;
    (void)stream;
    (void)comp;
    (void)l;
    (void)r;
    g_mutex_lock(&lock);
    p->selected++;
    g_cond_broadcast(&cond);
    g_mutex_unlock(&lock);
}

static void on_consent_lost(SluiceAgent *agent, guint stream, guint comp, gpointer data)
{
    Peer *p = data;
    (void)agent;
    (void)stream;
    (void)comp;
    g_mutex_lock(&lock);
    /* The agent re-arms its timer after its signals: the mock clock
     * cannot move on while this runs. */
    if (mock_clock)
        p->lost_at = gst_clock_get_time(mock_clock);
    p->consent_lost++;
    g_cond_broadcast(&cond);
    g_mutex_unlock(&lock);
}

static void peer_new(Peer *p, gboolean controlling, SluiceClock *clock)
{
    GError *err = NULL;
    memset(p, 0, sizeof *p);
    p->agent = g_object_new(SLUICE_TYPE_AGENT, "controlling", controlling, "clock", clock, NULL);
    fail_unless(sluice_agent_add_local_address(p->agent, "127.0.0.1", &err));
    fail_unless_equals_int(sluice_agent_add_stream(p->agent, 1, &err), 1);
    g_signal_connect(p->agent, "selected-pair-changed", G_CALLBACK(on_selected), p);
    g_signal_connect(p->agent, "consent-lost", G_CALLBACK(on_consent_lost), p);
}

static void credentials(Peer *from, Peer *to)
{
    gchar *u, *pw;
    fail_unless(sluice_agent_get_local_credentials(from->agent, 1, &u, &pw));
    fail_unless(sluice_agent_set_remote_credentials(to->agent, 1, u, pw, NULL));
    g_free(u);
    g_free(pw);
}

/* Wire two peers: trickle candidates, exchange credentials, gather. */
static void connect_peers(Peer *a, Peer *b)
{
    GError *err = NULL;
    g_signal_connect(a->agent, "new-candidate", G_CALLBACK(on_candidate), b);
    g_signal_connect(b->agent, "new-candidate", G_CALLBACK(on_candidate), a);
    credentials(a, b);
    credentials(b, a);
    fail_unless(sluice_agent_gather(a->agent, 1, &err));
    fail_unless(sluice_agent_gather(b->agent, 1, &err));
}

/* Wait (real time, bounded) until *counter reaches n. */
static gboolean wait_count(gint *counter, gint n)
{
    gint64 end = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;
    gboolean ok = TRUE;
    g_mutex_lock(&lock);
    while (*counter < n && ok)
        ok = g_cond_wait_until(&cond, &lock, end);
    ok = *counter >= n;
    g_mutex_unlock(&lock);
    return ok;
}

static GstBuffer *numbered_buffer(guint i, gsize size)
{
    GstBuffer *buf = gst_buffer_new_allocate(NULL, size, NULL);
    GstMapInfo m;
    gst_buffer_map(buf, &m, GST_MAP_WRITE);
    for (gsize k = 0; k < size; k++)
        m.data[k] = (guint8)(i * 7 + k);
    m.data[0] = 0x80; /* RTP version 2: the plain-media fast path (RFC 7983) */
    m.data[1] = (guint8)(i >> 8);
    m.data[2] = (guint8)i;
    gst_buffer_unmap(buf, &m);
    return buf;
}

static void check_buffer(GstBuffer *got, guint i, gsize size)
{
    GstBuffer *want = numbered_buffer(i, size);
    GstMapInfo m;
    fail_unless(got != NULL, "buffer %u missing", i);
    fail_unless_equals_int(gst_buffer_get_size(got), size);
    gst_buffer_map(want, &m, GST_MAP_READ);
    fail_unless(gst_buffer_memcmp(got, 0, m.data, size) == 0, "buffer %u differs", i);
    gst_buffer_unmap(want, &m);
    gst_buffer_unref(want);
}

static GstHarness *sink_harness(SluiceAgent *agent)
{
    /* The agent is set before the harness starts the element. */
    GstElement *e = gst_element_factory_make("icesink", NULL);
    GstHarness *h;
    fail_unless(e != NULL, "icesink not found: is GST_PLUGIN_PATH the build's gst/?");
    g_object_set(e, "agent", agent, NULL);
    h = gst_harness_new_with_element(e, "sink", NULL);
    gst_object_unref(e);
    gst_harness_set_src_caps_str(h, "application/x-rtp");
    gst_harness_play(h);
    return h;
}

static GstHarness *src_harness(SluiceAgent *agent)
{
    GstElement *e = gst_element_factory_make("icesrc", NULL);
    GstHarness *h;
    fail_unless(e != NULL, "icesrc not found: is GST_PLUGIN_PATH the build's gst/?");
    g_object_set(e, "agent", agent, NULL);
    h = gst_harness_new_with_element(e, NULL, "src");
    gst_object_unref(e);
    gst_harness_play(h);
    return h;
}

GST_START_TEST(test_loopback_exact)
{
    Peer a, b;
    GstHarness *hs, *hr;
    guint i = 0;
    const gsize size = 1200;
    peer_new(&a, TRUE, NULL);
    peer_new(&b, FALSE, NULL);
    hs = sink_harness(a.agent);
    hr = src_harness(b.agent);
    connect_peers(&a, &b);
    fail_unless(wait_count(&a.selected, 1) && wait_count(&b.selected, 1));
    {
        SluiceAgentRoute r;
        fail_unless(sluice_agent_get_route(a.agent, 1, 1, &r));
        sluice_agent_route_clear(&r);
    }

    /* 2,000 buffers in bursts of 50 (the receive buffer holds a burst; the
     * test is about order and content, not about overrunning a socket). */
    for (guint burst = 0; burst < 40; burst++) {
        for (guint k = 0; k < 50; k++)
            fail_unless_equals_int(gst_harness_push(hs, numbered_buffer(i + k, size)),
                                   GST_FLOW_OK);
        for (guint k = 0; k < 50; k++) {
            GstBuffer *got = gst_harness_pull(hr);
            check_buffer(got, i + k, size);
            fail_unless(GST_BUFFER_DTS_IS_VALID(got));
            gst_buffer_unref(got);
        }
        i += 50;
    }
    /* A buffer list goes out in one sendmmsg batch. */
    GstBufferList *list = gst_buffer_list_new();
    for (guint k = 0; k < 40; k++)
        gst_buffer_list_add(list, numbered_buffer(i + k, 100 + k));
    fail_unless_equals_int(gst_pad_push_list(hs->srcpad, list), GST_FLOW_OK);
    for (guint k = 0; k < 40; k++) {
        GstBuffer *got = gst_harness_pull(hr);
        check_buffer(got, i + k, 100 + k);
        gst_buffer_unref(got);
    }
    guint64 sent = 0, recvd = 0;
    g_object_get(hs->element, "packets-sent", &sent, NULL);
    g_object_get(hr->element, "packets-received", &recvd, NULL);
    fail_unless_equals_uint64(sent, 2040);
    fail_unless_equals_uint64(recvd, 2040);

    /* The agent counted the media the sink sent itself. */
    sluice_ice_pair_stats st[4];
    fail_unless(sluice_agent_get_pair_stats(a.agent, 1, st, 4) >= 1);
    fail_unless(st[0].packets_sent >= 2040);

    gst_harness_teardown(hs);
    gst_harness_teardown(hr);
    g_object_unref(a.agent);
    g_object_unref(b.agent);
}
GST_END_TEST;

/* Advance the test clock one pending wake-up at a time until *flag or
 * limit_us of mock time has passed. */
static gboolean crank_until(GstTestClock *clock, gint *flag, guint64 limit_us)
{
    GstClockTime end = gst_clock_get_time(GST_CLOCK(clock)) + limit_us * 1000;
    for (guint i = 0; i < 100000; i++) {
        gint v;
        g_mutex_lock(&lock);
        v = *flag;
        g_mutex_unlock(&lock);
        if (v)
            return TRUE;
        if (gst_clock_get_time(GST_CLOCK(clock)) > end)
            return FALSE;
        gst_test_clock_crank(clock);
    }
    return FALSE;
}

/* While the peer answers on real sockets, mock time must not outrun the
 * network: advance it 5 ms at a time, waiting (bounded) for *flag on the
 * condition in between, and fire the wake-ups that are due. */
static gboolean step_until(GstTestClock *clock, gint *flag, guint64 limit_us)
{
    for (guint64 t = 0; t <= limit_us; t += 5000) {
        gint64 end = g_get_monotonic_time() + 5 * G_TIME_SPAN_MILLISECOND;
        gboolean done;
        g_mutex_lock(&lock);
        while (!*flag && g_cond_wait_until(&cond, &lock, end))
            ;
        done = *flag != 0;
        g_mutex_unlock(&lock);
        if (done)
            return TRUE;
        gst_test_clock_advance_time(clock, 5 * GST_MSECOND);
        while (gst_test_clock_get_next_entry_time(clock) <= gst_clock_get_time(GST_CLOCK(clock)))
            gst_test_clock_crank(clock);
    }
    return FALSE;
}

GST_START_TEST(test_consent_mock_clock)
{
    GstTestClock *tclock = GST_TEST_CLOCK(gst_test_clock_new());
    SluiceClock *clock = gst_sluice_clock_new(GST_CLOCK(tclock));
    mock_clock = GST_CLOCK(tclock);
    Peer a, b, b2;
    GstHarness *hs, *hr, *hr2;
    GstBus *bus = gst_bus_new();
    GstMessage *msg;
    guint64 sent0, sent1, dropped;

    peer_new(&a, TRUE, clock);
    peer_new(&b, FALSE, NULL);
    hs = sink_harness(a.agent);
    gst_element_set_bus(hs->element, bus);
    hr = src_harness(b.agent);
    connect_peers(&a, &b);
    fail_unless(step_until(tclock, &a.selected, 10 * G_USEC_PER_SEC));
    fail_unless(wait_count(&b.selected, 1));
    gst_harness_push(hs, numbered_buffer(1, 200));
    gst_buffer_unref(gst_harness_pull(hr));

    /* The peer goes away: its sockets close, nothing answers. */
    gst_harness_teardown(hr);
    gpointer b_alive = b.agent;
    g_object_add_weak_pointer(G_OBJECT(b.agent), &b_alive);
    g_object_unref(b.agent);
    fail_unless(b_alive == NULL, "the peer's agent is still referenced");
    GstClockTime t_gone = gst_clock_get_time(GST_CLOCK(tclock));
    fail_unless(crank_until(tclock, &a.consent_lost, 60 * G_USEC_PER_SEC));
    GstClockTime waited = a.lost_at - t_gone;
    /* RFC 7675 §5.1: lost 30 s after the last response (which came at most
     * one consent interval, 4-6 s, before the peer went away). */
    fail_unless(waited >= 24 * GST_SECOND && waited <= 31 * GST_SECOND,
                "consent lost after %" GST_TIME_FORMAT, GST_TIME_ARGS(waited));
    msg = gst_bus_timed_pop_filtered(bus, 10 * GST_SECOND, GST_MESSAGE_ERROR);
    fail_unless(msg != NULL, "no error on the bus");
    GError *gerr = NULL;
    gst_message_parse_error(msg, &gerr, NULL);
    fail_unless(strstr(gerr->message, "consent lost") != NULL, "%s", gerr->message);
    g_error_free(gerr);
    gst_message_unref(msg);
    /* The sink stops sending. */
    g_object_get(hs->element, "packets-sent", &sent0, NULL);
    for (guint k = 0; k < 10; k++)
        gst_harness_push(hs, numbered_buffer(k, 200));
    g_object_get(hs->element, "packets-sent", &sent1, "packets-dropped", &dropped, NULL);
    fail_unless_equals_uint64(sent1, sent0);
    fail_unless(dropped >= 10);

    /* ICE restart with a new peer brings the stream back. */
    peer_new(&b2, FALSE, NULL);
    hr2 = src_harness(b2.agent);
    a.selected = 0;
    g_signal_handlers_disconnect_by_func(a.agent, on_candidate, &b);
    fail_unless(sluice_agent_restart(a.agent, 1, NULL));
    connect_peers(&a, &b2);
    fail_unless(step_until(tclock, &a.selected, 10 * G_USEC_PER_SEC));
    fail_unless(wait_count(&b2.selected, 1));
    gst_harness_push(hs, numbered_buffer(77, 300));
    GstBuffer *got = gst_harness_pull(hr2);
    check_buffer(got, 77, 300);
    gst_buffer_unref(got);

    gst_harness_teardown(hs);
    gst_harness_teardown(hr2);
    g_object_unref(a.agent);
    g_object_unref(b2.agent);
    g_object_unref(clock);
    mock_clock = NULL;
    gst_object_unref(tclock);
    gst_object_unref(bus);
}
GST_END_TEST;

/* Media relayed through a TURN server (relay-only on both sides) when
 * tests/gst/turn_servers.sh started one: sluice-relay and coturn, over UDP,
 * TCP and TLS (the agents connect to the server; TLS runs in the core). */
static void relayed_exchange(const gchar *port_env, sluice_transport transport)
{
    const gchar *port = g_getenv(port_env);
    const gchar *names[] = {"UDP", "TCP", "TLS"};
    gchar *uri;
    Peer a, b;
    GstHarness *hs, *hr;
    gint64 t0, setup_us;
    guint i = 0;
    if (!port) {
        GST_INFO("%s not set (run under turn_servers.sh): skipped", port_env);
        return;
    }
    uri = g_strdup_printf("%s:127.0.0.1:%s%s", transport == SLUICE_TRANSPORT_TLS ? "turns" : "turn",
                          port, transport == SLUICE_TRANSPORT_TCP ? "?transport=tcp" : "");
    peer_new(&a, TRUE, NULL);
    peer_new(&b, FALSE, NULL);
    for (Peer *p = &a; p; p = p == &a ? &b : NULL) {
        GError *err = NULL;
        g_object_set(p->agent, "relay-only", TRUE, "ca-file", g_getenv("SLUICE_TEST_CA"), NULL);
        fail_unless(sluice_agent_add_server(p->agent, uri, g_getenv("SLUICE_TEST_USER"),
                                            g_getenv("SLUICE_TEST_PASSWORD"), &err),
                    "%s", err ? err->message : "");
    }
    hs = sink_harness(a.agent);
    hr = src_harness(b.agent);
    t0 = g_get_monotonic_time();
    connect_peers(&a, &b);
    fail_unless(wait_count(&a.selected, 1) && wait_count(&b.selected, 1), "no relayed pair (%s)",
                uri);
    setup_us = g_get_monotonic_time() - t0;
    gchar *l = NULL, *r = NULL;
    fail_unless(sluice_agent_get_selected_pair(a.agent, 1, 1, &l, &r));
    fail_unless(strstr(l, "typ relay") && strstr(r, "typ relay"), "%s / %s", l, r);
    g_free(l);
    g_free(r);
    /* Both sides reach their relay over the transport of the URI. */
    for (Peer *p = &a; p; p = p == &a ? &b : NULL) {
        SluiceAgentRoute rt;
        fail_unless(sluice_agent_get_route(p->agent, 1, 1, &rt));
        fail_unless_equals_int(rt.route.transport, transport);
        fail_unless((rt.link != NULL) == (transport != SLUICE_TRANSPORT_UDP));
        sluice_agent_route_clear(&rt);
    }
    /* Sizes that are not multiples of 4: ChannelData over TCP is padded
     * (RFC 8656 §12.5), the receiver must strip exactly that. */
    gint64 t1 = g_get_monotonic_time();
    for (guint burst = 0; burst < 10; burst++) {
        for (guint k = 0; k < 20; k++)
            gst_harness_push(hs, numbered_buffer(i + k, 997 + (i + k) % 5));
        for (guint k = 0; k < 20; k++) {
            GstBuffer *got = gst_harness_pull(hr);
            check_buffer(got, i + k, 997 + (i + k) % 5);
            gst_buffer_unref(got);
        }
        i += 20;
    }
    /* Buffer lists of 40, sizes 3..1202. Not more at once: between the two
     * allocations the relay forwards over UDP, and with 100 (60 KB) coturn
     * was seen to lose a run of datagrams over TLS (its own socket buffer;
     * both agents counted nothing dropped). */
    for (guint burst = 0; burst < 3; burst++) {
        GstBufferList *list = gst_buffer_list_new();
        for (guint k = 0; k < 40; k++)
            gst_buffer_list_add(list, numbered_buffer(i + k, 3 + (i + k) * 37 % 1200));
        fail_unless_equals_int(gst_pad_push_list(hs->srcpad, list), GST_FLOW_OK);
        for (guint k = 0; k < 40; k++) {
            GstBuffer *got = gst_harness_pull(hr);
            check_buffer(got, i + k, 3 + (i + k) * 37 % 1200);
            gst_buffer_unref(got);
        }
        i += 40;
    }
    gint64 xfer_us = g_get_monotonic_time() - t1;
    guint64 sent = 0, dropped = 0, recvd = 0;
    g_object_get(hs->element, "packets-sent", &sent, "packets-dropped", &dropped, NULL);
    g_object_get(hr->element, "packets-received", &recvd, NULL);
    fail_unless_equals_uint64(sent, i);
    fail_unless_equals_uint64(dropped, 0);
    fail_unless_equals_uint64(recvd, i);
    {
        SluiceAgentRoute rt;
        fail_unless(sluice_agent_get_route(a.agent, 1, 1, &rt));
        g_print("# %s over %s: relayed pair after %.1f ms, %u datagrams in %.1f ms, framing %s\n",
                port_env, names[transport], setup_us / 1000.0, i, xfer_us / 1000.0,
                rt.route.framing == SLUICE_ICE_FRAMING_CHANNEL ? "channel" : "send");
        sluice_agent_route_clear(&rt);
    }
    gst_harness_teardown(hs);
    gst_harness_teardown(hr);
    gpointer a_alive = a.agent, b_alive = b.agent;
    g_object_add_weak_pointer(G_OBJECT(a.agent), &a_alive);
    g_object_add_weak_pointer(G_OBJECT(b.agent), &b_alive);
    g_object_unref(a.agent);
    g_object_unref(b.agent);
    fail_unless(a_alive == NULL && b_alive == NULL, "an agent outlived its elements");
    g_free(uri);
}

GST_START_TEST(test_relayed_sluice_relay)
{
    relayed_exchange("SLUICE_TEST_RELAY_PORT", SLUICE_TRANSPORT_UDP);
}
GST_END_TEST;

GST_START_TEST(test_relayed_coturn)
{
    relayed_exchange("SLUICE_TEST_COTURN_PORT", SLUICE_TRANSPORT_UDP);
}
GST_END_TEST;

GST_START_TEST(test_relayed_sluice_relay_tcp)
{
    relayed_exchange("SLUICE_TEST_RELAY_PORT", SLUICE_TRANSPORT_TCP);
}
GST_END_TEST;

GST_START_TEST(test_relayed_coturn_tcp)
{
    relayed_exchange("SLUICE_TEST_COTURN_PORT", SLUICE_TRANSPORT_TCP);
}
GST_END_TEST;

GST_START_TEST(test_relayed_sluice_relay_tls)
{
    relayed_exchange("SLUICE_TEST_RELAY_TLS_PORT", SLUICE_TRANSPORT_TLS);
}
GST_END_TEST;

GST_START_TEST(test_relayed_coturn_tls)
{
    relayed_exchange("SLUICE_TEST_COTURN_TLS_PORT", SLUICE_TRANSPORT_TLS);
}
GST_END_TEST;

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

/* 100 NULL -> PLAYING -> NULL cycles of a gst-launch style pair (agents
 * found by session name, configured by properties): every agent is
 * finalized, every socket closed, no thread stuck in a state change. */
GST_START_TEST(test_state_cycles)
{
    guint fds0 = 0;
    for (guint i = 0; i < 100; i++) {
        GError *err = NULL;
        GstElement *p = gst_parse_launch(
            "appsrc name=in is-live=true ! icesink name=sink session=cycle address=127.0.0.1 "
            "local-ufrag=cyca local-pwd=cyclepassword0123456789xyz "
            "icesrc name=src session=cycle ! fakesink async=false",
            &err);
        GstElement *sink;
        SluiceAgent *agent = NULL;
        gpointer alive;
        fail_unless(p != NULL, "%s", err ? err->message : "");
        fail_unless_equals_int(gst_element_set_state(p, GST_STATE_PLAYING),
                               GST_STATE_CHANGE_SUCCESS);
        sink = gst_bin_get_by_name(GST_BIN(p), "sink");
        /* Both elements use the agent the session created. */
        GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
        SluiceAgent *agent2 = NULL;
        g_object_get(sink, "agent", &agent, NULL);
        g_object_get(src, "agent", &agent2, NULL);
        fail_unless(agent != NULL && agent == agent2);
        alive = agent;
        g_object_add_weak_pointer(G_OBJECT(agent), &alive);
        g_object_unref(agent);
        g_object_unref(agent2);
        gst_object_unref(sink);
        gst_object_unref(src);
        fail_unless_equals_int(gst_element_set_state(p, GST_STATE_NULL),
                               GST_STATE_CHANGE_SUCCESS);
        gst_object_unref(p);
        fail_unless(alive == NULL, "cycle %u: the agent outlived its pipeline", i);
        if (i == 0)
            fds0 = count_fds();
    }
    fail_unless_equals_int(count_fds(), fds0);
}
GST_END_TEST;

/* ICE fails at once on an agent whose only remote candidate cannot be
 * paired (IPv6, a documentation address, against a 127.0.0.1 base: no check
 * is ever sent) once gathering is done and the peer said end-of-candidates.
 * The element posts "ICE failed" as an error, or with fatal-errors=FALSE as
 * a warning, after its sluice-ice-state message "failed". */
static void ice_failure_message(const gchar *factory, gboolean fatal)
{
    SluiceAgent *agent = g_object_new(SLUICE_TYPE_AGENT, NULL);
    GstBus *bus = gst_bus_new();
    GstHarness *h;
    GstMessage *msg = NULL;
    GError *err = NULL;
    gboolean fatal_default = FALSE, told_failed = FALSE;
    gint64 end = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;

    fail_unless(sluice_agent_add_local_address(agent, "127.0.0.1", &err));
    fail_unless_equals_int(sluice_agent_add_stream(agent, 1, &err), 1);
    fail_unless(sluice_agent_set_remote_credentials(agent, 1, "nope", "nobodyanswerschecks0123",
                                                    &err));
    fail_unless(sluice_agent_add_remote_candidate(
        agent, 1, "candidate:1 1 udp 2122260223 2001:db8::1 9 typ host", &err));
    h = g_str_equal(factory, "icesrc") ? src_harness(agent) : sink_harness(agent);
    g_object_get(h->element, "fatal-errors", &fatal_default, NULL);
    fail_unless(fatal_default, "%s: fatal-errors is not TRUE by default", factory);
    g_object_set(h->element, "fatal-errors", fatal, NULL);
    gst_element_set_bus(h->element, bus);
    fail_unless(sluice_agent_gather(agent, 1, &err));
    fail_unless(sluice_agent_end_of_candidates(agent, 1));
    fail_unless(err == NULL, "%s", err ? err->message : "");

    /* Element messages until the error or warning; bounded. */
    while (!msg && g_get_monotonic_time() < end) {
        GstClockTime left = (GstClockTime)(end - g_get_monotonic_time()) * GST_USECOND;
        GstMessage *m = gst_bus_timed_pop_filtered(
            bus, left, GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR | GST_MESSAGE_WARNING);
        const GstStructure *st = m ? gst_message_get_structure(m) : NULL;
        if (!m)
            break;
        if (GST_MESSAGE_TYPE(m) != GST_MESSAGE_ELEMENT) {
            msg = m;
            continue;
        }
        if (gst_structure_has_name(st, "sluice-ice-state") &&
            g_strcmp0(gst_structure_get_string(st, "state"), "failed") == 0)
            told_failed = TRUE;
        gst_message_unref(m);
    }
    fail_unless(msg != NULL, "%s: ICE failure not posted within 10 s", factory);
    fail_unless(told_failed, "%s: no sluice-ice-state \"failed\" before it", factory);
    fail_unless_equals_int(GST_MESSAGE_TYPE(msg),
                           fatal ? GST_MESSAGE_ERROR : GST_MESSAGE_WARNING);
    if (fatal)
        gst_message_parse_error(msg, &err, NULL);
    else
        gst_message_parse_warning(msg, &err, NULL);
    fail_unless(g_error_matches(err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ_WRITE));
    fail_unless(strstr(err->message, "ICE failed") != NULL, "%s", err->message);
    g_clear_error(&err);
    gst_message_unref(msg);
    /* The warning was all: no error behind it. */
    msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    fail_unless(msg == NULL, "%s: an error was posted as well", factory);

    gst_harness_teardown(h);
    g_object_unref(agent);
    gst_object_unref(bus);
}

GST_START_TEST(test_ice_failure_fatal_errors)
{
    ice_failure_message("icesrc", TRUE);
    ice_failure_message("icesink", TRUE);
}
GST_END_TEST;

GST_START_TEST(test_ice_failure_not_fatal)
{
    ice_failure_message("icesrc", FALSE);
    ice_failure_message("icesink", FALSE);
}
GST_END_TEST;

static Suite *elements_suite(void)
{
    Suite *s = suite_create("sluice-elements");
    TCase *tc = tcase_create("general");
    suite_add_tcase(s, tc);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_loopback_exact);
    tcase_add_test(tc, test_consent_mock_clock);
    tcase_add_test(tc, test_state_cycles);
    tcase_add_test(tc, test_ice_failure_fatal_errors);
    tcase_add_test(tc, test_ice_failure_not_fatal);
    tcase_add_test(tc, test_relayed_sluice_relay);
    tcase_add_test(tc, test_relayed_coturn);
    tcase_add_test(tc, test_relayed_sluice_relay_tcp);
    tcase_add_test(tc, test_relayed_coturn_tcp);
    tcase_add_test(tc, test_relayed_sluice_relay_tls);
    tcase_add_test(tc, test_relayed_coturn_tls);
    return s;
}

GST_CHECK_MAIN(elements);
