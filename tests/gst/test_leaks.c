/* SPDX-License-Identifier: MIT */
/* 100 NULL -> PLAYING -> NULL cycles of one icesink/icesrc pipeline, and
 * 100 pipelines built and dropped, under GStreamer's `leaks` tracer
 * (GST_TRACERS=leaks, set by tests/gst/meson.build): every GstObject and
 * GstMiniObject (elements, pads, buffers, pools, caps, events...) created
 * during the cycles must be gone at the end. The tracer's activity
 * checkpoint lists what was created and what was freed since tracking
 * started; anything created and not freed is a leak, reported with its
 * type. Also checks file descriptors and that each SluiceAgent is
 * finalized. */
#include <errno.h>
#include <unistd.h>

#include <gst/check/gstcheck.h>
#include <gst/gst.h>

#include "sluice-agent.h"

static GstTracer *leaks_tracer(void)
{
    GList *l = gst_tracing_get_active_tracers();
    GstTracer *found = NULL;
    for (GList *i = l; i; i = i->next) {
        if (!found && g_strcmp0(G_OBJECT_TYPE_NAME(i->data), "GstLeaksTracer") == 0)
            found = gst_object_ref(i->data);
    }
    g_list_free_full(l, gst_object_unref);
    return found;
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

/* Objects in created but not in removed (matched by address and type). */
/* "type-name@address" of one entry (the tracer gives the address as a
 * string). */
static gchar *entry_key(const GstStructure *s)
{
    const gchar *addr = gst_structure_get_string(s, "address");
    return g_strdup_printf("%s@%s", gst_structure_get_string(s, "type-name"),
                           addr ? addr : "?");
}

/* Objects created and not removed: an address can be freed and reused,
 * so each key counts creations minus removals. */
static guint report_live(const GstStructure *cp, GString *out)
{
    const GValue *created = gst_structure_get_value(cp, "objects-created-list");
    const GValue *removed = gst_structure_get_value(cp, "objects-removed-list");
    GHashTable *balance = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTableIter it;
    gpointer k, v;
    guint live = 0;
    fail_unless(created && removed, "checkpoint without object lists");
    for (int pass = 0; pass < 2; pass++) {
        const GValue *list = pass == 0 ? created : removed;
        for (guint i = 0; i < gst_value_list_get_size(list); i++) {
            const GstStructure *s = gst_value_get_structure(gst_value_list_get_value(list, i));
            gchar *key = entry_key(s);
            gint n = GPOINTER_TO_INT(g_hash_table_lookup(balance, key)) + (pass == 0 ? 1 : -1);
            g_hash_table_replace(balance, key, GINT_TO_POINTER(n));
        }
    }
    g_hash_table_iter_init(&it, balance);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        /* Negative: created before tracking started (the warm-up), freed
         * during it. */
        if (GPOINTER_TO_INT(v) > 0) {
            live += (guint)GPOINTER_TO_INT(v);
            if (out->len < 2000)
                g_string_append_printf(out, " %s", (const gchar *)k);
        }
    }
    g_hash_table_unref(balance);
    return live;
}

/* Two agents in one pipeline, host candidates on loopback with fixed
 * ports and credentials (as from gst-launch-1.0): icesink (session A,
 * controlling) sends to icesrc (session B). */
static guint port_a, port_b;

static guint free_udp_port(void)
{
    GSocket *s = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                              G_SOCKET_PROTOCOL_UDP, NULL);
    GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    GSocketAddress *sa = g_inet_socket_address_new(lo, 0);
    guint port;
    fail_unless(g_socket_bind(s, sa, FALSE, NULL));
    g_object_unref(sa);
    sa = g_socket_get_local_address(s, NULL);
    port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(sa));
    g_object_unref(sa);
    g_object_unref(lo);
    g_object_unref(s);
    return port;
}

static GMutex rx_lock;
static GCond rx_cond;
static guint rx_count;

static void on_handoff(GstElement *sink, GstBuffer *b, GstPad *pad, gpointer ud)
{
    (void)sink;
    (void)b;
    (void)pad;
    (void)ud;
    g_mutex_lock(&rx_lock);
    rx_count++;
    g_cond_broadcast(&rx_cond);
    g_mutex_unlock(&rx_lock);
}

static GstElement *make_pipeline(void)
{
    GError *err = NULL;
    gchar *text = g_strdup_printf(
        "appsrc name=in is-live=true format=time ! icesink name=sink session=leaks-a "
        "controlling=true address=127.0.0.1 min-port=%u max-port=%u local-ufrag=aaaa "
        "local-pwd=aaaaaaaaaaaaaaaaaaaaaaaa remote-ufrag=bbbb remote-pwd=bbbbbbbbbbbbbbbbbbbbbbbb "
        "remote-candidates=\"candidate:1 1 udp 2130706431 127.0.0.1 %u typ host\" "
        "icesrc session=leaks-b address=127.0.0.1 min-port=%u max-port=%u local-ufrag=bbbb "
        "local-pwd=bbbbbbbbbbbbbbbbbbbbbbbb remote-ufrag=aaaa remote-pwd=aaaaaaaaaaaaaaaaaaaaaaaa "
        "remote-candidates=\"candidate:1 1 udp 2130706431 127.0.0.1 %u typ host\" "
        "! fakesink name=out async=false signal-handoffs=true",
        port_a, port_a, port_b, port_b, port_b, port_a);
    GstElement *p = gst_parse_launch(text, &err);
    g_free(text);
    fail_unless(p != NULL, "%s", err ? err->message : "");
    GstElement *out = gst_bin_get_by_name(GST_BIN(p), "out");
    g_signal_connect(out, "handoff", G_CALLBACK(on_handoff), NULL);
    gst_object_unref(out);
    return p;
}

/* PLAYING, then buffers through icesink until four arrive at icesrc's
 * fakesink (ICE connects in a few ms; every wait is bounded), then NULL. */
static void play_until_data(GstElement *p, guint cycle)
{
    GstElement *in = gst_bin_get_by_name(GST_BIN(p), "in");
    gboolean got = FALSE;
    fail_unless_equals_int(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS);
    g_mutex_lock(&rx_lock);
    rx_count = 0;
    g_mutex_unlock(&rx_lock);
    for (int k = 0; k < 2000 && !got; k++) {
        GstBuffer *b = gst_buffer_new_allocate(NULL, 200, NULL);
        GstFlowReturn fr;
        gst_buffer_memset(b, 0, (guint8)k, 200);
        g_signal_emit_by_name(in, "push-buffer", b, &fr);
        gst_buffer_unref(b);
        g_mutex_lock(&rx_lock);
        gint64 until = g_get_monotonic_time() + 5 * G_TIME_SPAN_MILLISECOND;
        while (rx_count < 4 && g_cond_wait_until(&rx_cond, &rx_lock, until))
            ;
        got = rx_count >= 4;
        g_mutex_unlock(&rx_lock);
    }
    gst_object_unref(in);
    fail_unless(got, "cycle %u: no data through icesink -> icesrc within 10 s", cycle);
    fail_unless_equals_int(gst_element_set_state(p, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
}

GST_START_TEST(test_cycles_no_leaks)
{
    GstTracer *tracer = leaks_tracer();
    GstStructure *cp = NULL;
    GString *names = g_string_new(NULL);
    fail_unless(tracer != NULL, "the leaks tracer is not active (GST_TRACERS=leaks)");

    /* One pipeline played before tracking: registry, plugin and type
     * setup are one-off costs, not leaks. */
    port_a = free_udp_port();
    port_b = free_udp_port();
    GstElement *warm = make_pipeline();
    play_until_data(warm, 0);
    gst_object_unref(warm);
    guint fds0 = count_fds();

    g_signal_emit_by_name(tracer, "activity-start-tracking");
    /* The same pipeline, 100 times NULL -> PLAYING -> NULL, data each time. */
    GstElement *p = make_pipeline();
    for (guint i = 0; i < 100; i++)
        play_until_data(p, i);
    GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
    SluiceAgent *agent = NULL;
    gpointer alive;
    g_object_get(sink, "agent", &agent, NULL);
    gst_object_unref(sink);
    alive = agent;
    if (agent) {
        g_object_add_weak_pointer(G_OBJECT(agent), &alive);
        g_object_unref(agent);
    }
    gst_object_unref(p);
    fail_unless(alive == NULL, "an agent outlived its pipeline");
    /* 100 pipelines built, played with data and dropped. */
    for (guint i = 0; i < 100; i++) {
        GstElement *q = make_pipeline();
        play_until_data(q, 100 + i);
        gst_object_unref(q);
    }
    g_signal_emit_by_name(tracer, "activity-get-checkpoint", &cp);
    g_signal_emit_by_name(tracer, "activity-stop-tracking");
    fail_unless(cp != NULL);
    guint created = gst_value_list_get_size(gst_structure_get_value(cp, "objects-created-list"));
    guint live = report_live(cp, names);
    g_print("# %u GstObjects/GstMiniObjects created in 200 cycles with data, %u alive after\n",
            created, live);
    if (live)
        g_print("# alive:%s\n", names->str);
    fail_unless(created > 1000, "the tracer saw too few objects (%u): is it tracking?", created);
    fail_unless_equals_int(live, 0);
    fail_unless_equals_int(count_fds(), fds0);
    gst_structure_free(cp);
    g_string_free(names, TRUE);
    gst_object_unref(tracer);
}
GST_END_TEST;

static Suite *leaks_suite(void)
{
    Suite *s = suite_create("sluice-leaks");
    TCase *tc = tcase_create("cycles");
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tcase_add_test(tc, test_cycles_no_leaks);
    return s;
}

/* The leaks tracer is looked up in the registry when gst_init() runs; with
 * a fresh registry (a clean build) it is not there yet. So the first run
 * builds the registry and executes this program again with the tracer. */
int main(int argc, char **argv)
{
    if (!g_getenv("SLUICE_LEAKS_CHILD")) {
        gst_init(NULL, NULL);
        g_setenv("SLUICE_LEAKS_CHILD", "1", TRUE);
        g_setenv("GST_TRACERS", "leaks", TRUE);
        execv("/proc/self/exe", argv);
        g_printerr("cannot re-execute %s: %s\n", argv[0], g_strerror(errno));
        return 1;
    }
    gst_check_init(&argc, &argv);
    return gst_check_run_suite(leaks_suite(), "leaks", __FILE__);
}
