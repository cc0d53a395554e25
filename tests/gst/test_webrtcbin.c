/* SPDX-License-Identifier: MIT */
/* webrtcbin with sluice as its ICE agent (GstSluiceWebRTCICE) against
 * webrtcbin with libnice, in one process over loopback: an offer with VP8
 * video both ways and a data channel, answered in-process; frames and
 * data-channel messages must arrive at both ends, with sluice offering and
 * answering. Then against aiortc (tests/gst/aiortc_peer.py, driven over its
 * stdin/stdout) as the answerer: frames must arrive at aiortc. Every wait
 * is a GMainLoop with a deadline; every agent gathers on 127.0.0.1 only
 * ("add-local-ip-address"). Prints the time from the answer being applied
 * to each side's ICE connection state "connected" (docs/webrtcbin.md). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gio/gio.h>
#include <gst/check/gstcheck.h>
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include "sluice-webrtc-ice.h"

#define DEADLINE_S 20
#define FRAMES 10  /* VP8 frames each receiver must get per stream */
#define MESSAGES 3 /* data-channel messages each side must get */
#define MAX_VIDEOS 2

typedef enum {
    BACKEND_NICE,        /* webrtcbin's default */
    BACKEND_SLUICE,      /* gst_sluice_webrtc_ice_new(), handed over */
    BACKEND_SLUICE_NAME, /* by type name, as bindings do, the test keeping a ref */
} Backend;

typedef struct {
    const gchar *name;
    Backend backend;
    GstElement *webrtc;
    GstWebRTCICE *ice_kept; /* BACKEND_SLUICE_NAME: the test's own reference */
    GWeakRef ice_weak;      /* sluice: to see it finalized */
    GstWebRTCDataChannel *channel;
    gint frames[MAX_VIDEOS], pads, messages, sent;
    gint64 t_ice, t_pc; /* µs after the answer was applied, -1 before */
} Peer;

typedef struct {
    GMainLoop *loop;
    GstElement *pipe;
    Peer p[2]; /* [0] offers */
    GMutex lock;
    gint64 t_answer; /* monotonic µs */
    gboolean negotiation_needed, offered, timed_out, failed;
    gboolean two_way; /* both peers send video and use the channel */
    guint videos;     /* video streams each way */
    gboolean data;    /* a data channel */
    gchar *turn;      /* the offerer's TURN server: relay-only */
    GSubprocess *py;  /* aiortc */
    GDataInputStream *py_out;
    GCancellable *py_cancel;
    gboolean py_offered, py_exited;
    gint py_frames, py_messages;
    gint py_candidates, py_mdns; /* the peer's candidates, and its .local ones */
    gint64 t_py_ice;             /* the peer's ICE connected/completed, µs after the answer */
    const gchar *py_name;        /* "aiortc", "chromium" */
} Call;

static const gchar *SENDER =
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1 "
    "! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=10 ! rtpvp8pay pt=96 "
    "! capsfilter caps=application/x-rtp,media=video,encoding-name=VP8,payload=96,"
    "clock-rate=90000";

static gint64 now_us(void)
{
    return g_get_monotonic_time();
}

static gint64 since_answer(Call *c)
{
    gint64 t;
    g_mutex_lock(&c->lock);
    t = c->t_answer ? now_us() - c->t_answer : -1;
    g_mutex_unlock(&c->lock);
    return t;
}

/* ------------------------------------------------------------------------ */
/* Peers */

static GstElement *make_webrtcbin(Peer *p)
{
    GstElement *w;
    GstWebRTCICE *ice = NULL;
    gchar *ice_name = g_strdup_printf("%s-ice", p->name);
    gboolean ok = FALSE;

    g_weak_ref_init(&p->ice_weak, NULL);
    if (p->backend == BACKEND_SLUICE) {
        /* C: hand the floating object over; webrtcbin keeps it. */
        ice = gst_sluice_webrtc_ice_new(ice_name);
        g_weak_ref_set(&p->ice_weak, ice);
        w = gst_element_factory_make_full("webrtcbin", "name", p->name, "ice-agent", ice, NULL);
    } else if (p->backend == BACKEND_SLUICE_NAME) {
        /* As a binding: the type by name, the caller owning a reference
         * (pygobject sinks it) and dropping it after webrtcbin. */
        GType t = gst_dynamic_type_factory_load("GstSluiceWebRTCICE");
        fail_unless(t != 0, "GstSluiceWebRTCICE is not in the registry");
        ice = gst_object_ref_sink(g_object_new(t, "name", ice_name, NULL));
        p->ice_kept = ice;
        g_weak_ref_set(&p->ice_weak, ice);
        w = gst_element_factory_make_full("webrtcbin", "name", p->name, "ice-agent", ice, NULL);
    } else {
        w = gst_element_factory_make("webrtcbin", p->name);
    }
    fail_unless(w != NULL, "no webrtcbin (gstreamer1.0-plugins-bad)");
    g_object_get(w, "ice-agent", &ice, NULL);
    fail_unless(ice != NULL);
    if (p->backend != BACKEND_NICE)
        fail_unless(G_TYPE_CHECK_INSTANCE_TYPE(ice, GST_TYPE_SLUICE_WEBRTC_ICE));
    /* Loopback only (tests send nowhere else). */
    g_signal_emit_by_name(ice, "add-local-ip-address", "127.0.0.1", &ok);
    fail_unless(ok, "%s: add-local-ip-address failed", p->name);
    gst_object_unref(ice);
    g_free(ice_name);
    return w;
}

static void on_frame(GstElement *sink, GstBuffer *buf, GstPad *pad, gpointer data)
{
    gint *frames = data;
    (void)sink;
    (void)buf;
    (void)pad;
    g_atomic_int_inc(frames);
}

/* Received video: depayload and count frames. */
static void on_pad_added(GstElement *webrtc, GstPad *pad, gpointer data)
{
    Peer *p = data;
    GstElement *bin;
    GstPad *sink;
    GError *err = NULL;
    gint slot;
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC)
        return;
    slot = g_atomic_int_add(&p->pads, 1);
    fail_unless(slot < MAX_VIDEOS, "%s: too many video pads", p->name);
    bin = gst_parse_bin_from_description(
        "rtpvp8depay ! fakesink name=count signal-handoffs=true sync=false async=false", TRUE,
        &err);
    fail_unless(bin != NULL, "%s", err ? err->message : "?");
    {
        GstElement *fs = gst_bin_get_by_name(GST_BIN(bin), "count");
        g_signal_connect(fs, "handoff", G_CALLBACK(on_frame), &p->frames[slot]);
        gst_object_unref(fs);
    }
    gst_bin_add(GST_BIN(GST_ELEMENT_PARENT(webrtc)), bin);
    gst_element_sync_state_with_parent(bin);
    sink = gst_element_get_static_pad(bin, "sink");
    fail_unless_equals_int(gst_pad_link(pad, sink), GST_PAD_LINK_OK);
    gst_object_unref(sink);
}

static Peer *peer_of(Call *c, GstElement *w)
{
    return c->p[0].webrtc == w ? &c->p[0] : &c->p[1];
}

static void on_ice_state(GstElement *w, GParamSpec *ps, gpointer data)
{
    Call *c = data;
    Peer *p = peer_of(c, w);
    GstWebRTCICEConnectionState s;
    (void)ps;
    g_object_get(w, "ice-connection-state", &s, NULL);
    GST_INFO("%s: ICE %d", p->name, s);
    if ((s == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED ||
         s == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED) &&
        p->t_ice < 0)
        p->t_ice = since_answer(c);
    if (s == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED)
        c->failed = TRUE;
}

static void on_pc_state(GstElement *w, GParamSpec *ps, gpointer data)
{
    Call *c = data;
    Peer *p = peer_of(c, w);
    GstWebRTCPeerConnectionState s;
    (void)ps;
    g_object_get(w, "connection-state", &s, NULL);
    if (s == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED && p->t_pc < 0)
        p->t_pc = since_answer(c);
    GST_INFO("%s: connection state %d", p->name, s);
    if (s == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED)
        c->failed = TRUE;
}

static void on_message(GstWebRTCDataChannel *ch, const gchar *text, gpointer data)
{
    Peer *p = data;
    (void)ch;
    GST_INFO("%s got '%s'", p->name, text);
    if (g_str_has_prefix(text, "hello"))
        g_atomic_int_inc(&p->messages);
}

static void watch_channel(Peer *p, GstWebRTCDataChannel *ch)
{
    g_signal_connect(ch, "on-message-string", G_CALLBACK(on_message), p);
    p->channel = g_object_ref(ch);
}

static void on_data_channel(GstElement *w, GstWebRTCDataChannel *ch, gpointer data)
{
    Call *c = data;
    watch_channel(peer_of(c, w), ch);
}

/* Candidates trickle straight to the other webrtcbin (aiortc: in the SDP). */
static void on_ice_candidate(GstElement *w, guint mline, const gchar *cand, gpointer data)
{
    Call *c = data;
    Peer *other = peer_of(c, w) == &c->p[0] ? &c->p[1] : &c->p[0];
    if (other->webrtc)
        g_signal_emit_by_name(other->webrtc, "add-ice-candidate", mline, cand);
}

static void on_negotiation_needed(GstElement *w, gpointer data)
{
    Call *c = data;
    (void)w;
    g_mutex_lock(&c->lock);
    c->negotiation_needed = TRUE;
    g_mutex_unlock(&c->lock);
}

static void add_peer(Call *c, Peer *p, const gchar *bundle)
{
    p->webrtc = make_webrtcbin(p);
    p->t_ice = p->t_pc = -1;
    g_object_set_data(G_OBJECT(p->webrtc), "call", c);
    gst_bin_add(GST_BIN(c->pipe), p->webrtc);
    g_signal_connect(p->webrtc, "pad-added", G_CALLBACK(on_pad_added), p);
    g_signal_connect(p->webrtc, "notify::ice-connection-state", G_CALLBACK(on_ice_state), c);
    g_signal_connect(p->webrtc, "notify::connection-state", G_CALLBACK(on_pc_state), c);
    g_signal_connect(p->webrtc, "on-data-channel", G_CALLBACK(on_data_channel), c);
    g_signal_connect(p->webrtc, "on-ice-candidate", G_CALLBACK(on_ice_candidate), c);
    gst_util_set_object_arg(G_OBJECT(p->webrtc), "bundle-policy", bundle);
    if (c->turn && p == &c->p[0]) {
        /* webrtcbin's TURN settings, and the agent's CA for turns:. */
        GstWebRTCICE *ice = NULL;
        GObject *agent = NULL;
        gboolean ok = FALSE;
        g_object_set(p->webrtc, "ice-transport-policy", GST_WEBRTC_ICE_TRANSPORT_POLICY_RELAY,
                     NULL);
        if (strstr(c->turn, "transport=tcp")) {
            g_signal_emit_by_name(p->webrtc, "add-turn-server", c->turn, &ok);
            fail_unless(ok, "add-turn-server %s", c->turn);
        } else {
            g_object_set(p->webrtc, "turn-server", c->turn, NULL);
        }
        g_object_get(p->webrtc, "ice-agent", &ice, NULL);
        g_object_get(ice, "agent", &agent, NULL);
        g_object_set(agent, "ca-file", g_getenv("SLUICE_TEST_CA"), NULL);
        g_object_unref(agent);
        gst_object_unref(ice);
    }
    for (guint i = 0; i < c->videos; i++) {
        GError *err = NULL;
        GstElement *src = gst_parse_bin_from_description(SENDER, TRUE, &err);
        fail_unless(src != NULL, "%s", err ? err->message : "?");
        gst_bin_add(GST_BIN(c->pipe), src);
        fail_unless(gst_element_link_pads(src, "src", p->webrtc, "sink_%u"));
    }
}

/* ------------------------------------------------------------------------ */
/* Offer / answer */

static void on_remote_set(GstPromise *promise, gpointer data)
{
    (void)data;
    gst_promise_unref(promise);
}

static void set_description(GstElement *w, const gchar *signal, GstWebRTCSessionDescription *d)
{
    GstPromise *p = gst_promise_new_with_change_func(on_remote_set, NULL, NULL);
    g_signal_emit_by_name(w, signal, d, p);
}

static void on_answer(GstPromise *promise, gpointer data)
{
    Call *c = data;
    const GstStructure *r = gst_promise_get_reply(promise);
    GstWebRTCSessionDescription *answer = NULL;
    gst_structure_get(r, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, NULL);
    gst_promise_unref(promise);
    fail_unless(answer != NULL, "no answer: %" GST_PTR_FORMAT, r);
    set_description(c->p[1].webrtc, "set-local-description", answer);
    g_mutex_lock(&c->lock);
    c->t_answer = now_us();
    g_mutex_unlock(&c->lock);
    set_description(c->p[0].webrtc, "set-remote-description", answer);
    gst_webrtc_session_description_free(answer);
}

static gboolean create_offer(gpointer data);

static void on_offer(GstPromise *promise, gpointer data)
{
    Call *c = data;
    const GstStructure *r = gst_promise_get_reply(promise);
    GstWebRTCSessionDescription *offer = NULL;
    if (r)
        gst_structure_get(r, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, NULL);
    if (!offer) {
        /* Before the payloader's caps reach webrtcbin: try again. */
        GST_INFO("no offer yet: %" GST_PTR_FORMAT, r);
        gst_promise_unref(promise);
        g_timeout_add(50, create_offer, c);
        return;
    }
    gst_promise_unref(promise);
    set_description(c->p[0].webrtc, "set-local-description", offer);
    if (c->p[1].webrtc) {
        set_description(c->p[1].webrtc, "set-remote-description", offer);
        g_signal_emit_by_name(c->p[1].webrtc, "create-answer", NULL,
                              gst_promise_new_with_change_func(on_answer, c, NULL));
    }
    gst_webrtc_session_description_free(offer);
}

static gboolean create_offer(gpointer data)
{
    Call *c = data;
    g_signal_emit_by_name(c->p[0].webrtc, "create-offer", NULL,
                          gst_promise_new_with_change_func(on_offer, c, NULL));
    return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------------ */
/* aiortc over a pipe (tests/gst/aiortc_peer.py) */

static void py_send(Call *c, const gchar *kind, const gchar *text)
{
    GOutputStream *in = g_subprocess_get_stdin_pipe(c->py);
    gchar *b64 = g_base64_encode((const guchar *)text, strlen(text));
    gchar *line = g_strdup_printf("%s %s\n", kind, b64);
    GError *err = NULL;
    fail_unless(g_output_stream_write_all(in, line, strlen(line), NULL, NULL, &err), "%s",
                err ? err->message : "?");
    fail_unless(g_output_stream_flush(in, NULL, NULL));
    g_free(line);
    g_free(b64);
}

static void py_read_next(Call *c);

static void py_line(GObject *src, GAsyncResult *res, gpointer data)
{
    Call *c = data;
    GError *err = NULL;
    gchar *line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(src), res, NULL, &err);
    if (!line) {
        if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            c->py_exited = TRUE;
        g_clear_error(&err);
        return;
    }
    if (g_str_has_prefix(line, "answer ")) {
        gsize n = 0;
        guchar *sdp_text = g_base64_decode(line + 7, &n);
        gchar *text = g_strndup((const gchar *)sdp_text, n);
        GstSDPMessage *sdp = NULL;
        GstWebRTCSessionDescription *answer;
        fail_unless_equals_int(gst_sdp_message_new_from_text(text, &sdp), GST_SDP_OK);
        answer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
        g_mutex_lock(&c->lock);
        c->t_answer = now_us();
        g_mutex_unlock(&c->lock);
        set_description(c->p[0].webrtc, "set-remote-description", answer);
        gst_webrtc_session_description_free(answer);
        g_free(text);
        g_free(sdp_text);
    } else if (g_str_has_prefix(line, "frames ")) {
        g_atomic_int_set(&c->py_frames, atoi(line + 7));
    } else if (g_str_has_prefix(line, "message ")) {
        g_atomic_int_inc(&c->py_messages);
    } else if ((g_str_equal(line, "ice completed") || g_str_equal(line, "ice connected")) &&
               c->t_py_ice < 0) {
        c->t_py_ice = since_answer(c);
    } else if (g_str_has_prefix(line, "candidate ")) {
        /* "candidate MLINE candidate:..." trickled by the browser. */
        gchar *end = NULL;
        guint mline = (guint)g_ascii_strtoull(line + 10, &end, 10);
        c->py_candidates++;
        if (strstr(line, ".local "))
            c->py_mdns++;
        GST_INFO("%s offered %s", c->py_name, line + 10);
        if (end && *end == ' ')
            g_signal_emit_by_name(c->p[0].webrtc, "add-ice-candidate", mline, end + 1);
    } else if (g_str_has_prefix(line, "error")) {
        g_printerr("%s: %s\n", c->py_name, line);
        c->failed = TRUE;
    }
    g_free(line);
    py_read_next(c);
}

static void py_read_next(Call *c)
{
    g_data_input_stream_read_line_async(c->py_out, G_PRIORITY_DEFAULT, c->py_cancel, py_line, c);
}

/* The offer goes once gathering is complete (aiortc takes no trickle). */
static void aiortc_tick(Call *c)
{
    GstWebRTCICEGatheringState g;
    g_object_get(c->p[0].webrtc, "ice-gathering-state", &g, NULL);
    if (!c->py_offered && g == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) {
        GstWebRTCSessionDescription *d = NULL;
        gchar *text;
        g_object_get(c->p[0].webrtc, "local-description", &d, NULL);
        if (!d)
            return;
        text = gst_sdp_message_as_text(d->sdp);
        py_send(c, "offer", text);
        g_free(text);
        gst_webrtc_session_description_free(d);
        c->py_offered = TRUE;
    }
    if (c->py_exited) {
        g_printerr("%s exited early\n", c->py_name);
        c->failed = TRUE;
    }
    if (g_atomic_int_get(&c->py_frames) >= FRAMES &&
        g_atomic_int_get(&c->py_messages) >= MESSAGES &&
        g_atomic_int_get(&c->p[0].messages) >= MESSAGES)
        g_main_loop_quit(c->loop);
}

/* The peer script named by env (SLUICE_AIORTC_PEER, SLUICE_CHROMIUM_PEER). */
static void py_start(Call *c, const gchar *env)
{
    const gchar *script = g_getenv(env);
    GError *err = NULL;
    fail_unless(script != NULL, "%s is not set", env);
    c->py = g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &err,
                             "/usr/bin/python3", script, NULL);
    fail_unless(c->py != NULL, "%s", err ? err->message : "?");
    c->py_out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(c->py));
    c->py_cancel = g_cancellable_new();
    c->t_py_ice = -1;
    py_read_next(c);
}

static gboolean py_wait_deadline(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

static void py_waited(GObject *src, GAsyncResult *res, gpointer data)
{
    (void)src;
    (void)res;
    g_main_loop_quit(data);
}

/* Close its stdin and give it 5 s to close its peer connection and exit. */
static void py_stop(Call *c)
{
    GMainLoop *loop = g_main_loop_new(NULL, FALSE);
    guint d;
    g_cancellable_cancel(c->py_cancel);
    g_output_stream_close(g_subprocess_get_stdin_pipe(c->py), NULL, NULL);
    g_subprocess_wait_async(c->py, NULL, py_waited, loop);
    d = g_timeout_add_seconds(5, py_wait_deadline, loop);
    g_main_loop_run(loop);
    if (!g_subprocess_get_if_exited(c->py) && !g_subprocess_get_if_signaled(c->py)) {
        g_subprocess_force_exit(c->py);
        g_subprocess_wait(c->py, NULL, NULL);
    } else {
        g_source_remove(d);
    }
    g_main_loop_unref(loop);
    g_clear_object(&c->py_out);
    g_clear_object(&c->py_cancel);
    g_clear_object(&c->py);
}

/* ------------------------------------------------------------------------ */
/* The main loop: one 20 ms tick drives everything, with a deadline. */

static gboolean two_way_done(Call *c)
{
    for (int i = 0; i < 2; i++) {
        for (guint v = 0; v < c->videos; v++) {
            if (g_atomic_int_get(&c->p[i].frames[v]) < FRAMES)
                return FALSE;
        }
        if (c->data && g_atomic_int_get(&c->p[i].messages) < MESSAGES)
            return FALSE;
    }
    return TRUE;
}

static gboolean tick(gpointer data)
{
    Call *c = data;
    gboolean need;
    g_mutex_lock(&c->lock);
    need = c->negotiation_needed && !c->offered;
    if (need)
        c->offered = TRUE;
    g_mutex_unlock(&c->lock);
    if (need)
        create_offer(c);
    for (int i = 0; i < 2 && c->data; i++) {
        Peer *p = &c->p[i];
        GstWebRTCDataChannelState st = 0;
        if (!p->channel)
            continue;
        g_object_get(p->channel, "ready-state", &st, NULL);
        if (st == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN && p->sent < 2 * MESSAGES) {
            gchar *m = g_strdup_printf("hello %d from %s", ++p->sent, p->name);
            gst_webrtc_data_channel_send_string(p->channel, m);
            g_free(m);
        }
    }
    if (c->two_way && two_way_done(c))
        g_main_loop_quit(c->loop);
    if (!c->two_way && c->py)
        aiortc_tick(c);
    if (c->failed)
        g_main_loop_quit(c->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean deadline(gpointer data)
{
    Call *c = data;
    c->timed_out = TRUE;
    g_main_loop_quit(c->loop);
    return G_SOURCE_REMOVE;
}

static gboolean on_bus(GstBus *bus, GstMessage *m, gpointer data)
{
    Call *c = data;
    (void)bus;
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
        GError *err = NULL;
        gchar *dbg = NULL;
        gst_message_parse_error(m, &err, &dbg);
        g_printerr("error from %s: %s (%s)\n", GST_OBJECT_NAME(GST_MESSAGE_SRC(m)), err->message,
                   dbg ? dbg : "");
        g_clear_error(&err);
        g_free(dbg);
        c->failed = TRUE;
        g_main_loop_quit(c->loop);
    }
    return G_SOURCE_CONTINUE;
}

static void call_init(Call *c)
{
    memset(c, 0, sizeof *c);
    g_mutex_init(&c->lock);
    c->loop = g_main_loop_new(NULL, FALSE);
    c->pipe = gst_pipeline_new(NULL);
}

static void run(Call *c)
{
    GstBus *bus = gst_element_get_bus(c->pipe);
    guint watch = gst_bus_add_watch(bus, on_bus, c);
    guint t = g_timeout_add(20, tick, c);
    guint d = g_timeout_add_seconds(DEADLINE_S, deadline, c);
    g_main_loop_run(c->loop);
    g_source_remove(t);
    if (!c->timed_out)
        g_source_remove(d);
    g_source_remove(watch);
    gst_object_unref(bus);
}

static const gchar *backend_name(Backend b)
{
    return b == BACKEND_NICE ? "libnice" : "sluice";
}

static void report(Call *c)
{
    for (int i = 0; i < 2; i++) {
        Peer *p = &c->p[i];
        if (!p->name)
            continue;
        g_print("%-8s %-7s: ICE connected %6.1f ms, connection-state connected %6.1f ms after "
                "the answer; frames %d/%d, %d messages received\n",
                p->name, backend_name(p->backend), p->t_ice / 1000.0, p->t_pc / 1000.0,
                g_atomic_int_get(&p->frames[0]), g_atomic_int_get(&p->frames[1]),
                g_atomic_int_get(&p->messages));
    }
}

/* The sluice side's stats from webrtcbin (get_local_candidates,
 * get_remote_candidates, get_selected_pair behind them). */
static void check_stats(Peer *p)
{
    GstPromise *pr = gst_promise_new();
    const GstStructure *s;
    gchar *str;
    g_signal_emit_by_name(p->webrtc, "get-stats", NULL, pr);
    fail_unless_equals_int(gst_promise_wait(pr), GST_PROMISE_RESULT_REPLIED);
    s = gst_promise_get_reply(pr);
    str = gst_structure_to_string(s);
    fail_unless(strstr(str, "local-candidate") != NULL, "%s: no local-candidate in %s", p->name,
                str);
    fail_unless(strstr(str, "127.0.0.1") != NULL, "%s: no 127.0.0.1 in %s", p->name, str);
    g_free(str);
    gst_promise_unref(pr);
}

/* Every local candidate webrtcbin reports is relayed, through the server
 * given ("url" and "relay-protocol" filled in). */
static gboolean check_relay_candidate(GQuark field, const GValue *v, gpointer data)
{
    const GstStructure *st;
    const gchar *type;
    gint *n = data;
    (void)field;
    if (!GST_VALUE_HOLDS_STRUCTURE(v))
        return TRUE;
    st = gst_value_get_structure(v);
    /* By id: webrtcbin 1.22 names its local candidate structures
     * "remote-candidate" and the other way round. */
    if (!gst_structure_has_field(st, "candidate-type") ||
        !g_str_has_prefix(gst_structure_get_string(st, "id"), "ice-candidate-local"))
        return TRUE;
    fail_unless(g_str_has_prefix(gst_structure_get_string(st, "url"), "turn"),
                "no TURN server url: %s", gst_structure_get_string(st, "url"));
    type = gst_structure_get_string(st, "candidate-type");
    fail_unless(g_strcmp0(type, "relay") == 0, "local candidate of type %s", type);
    (*n)++;
    return TRUE;
}

static void check_relayed(Peer *p)
{
    GstPromise *pr = gst_promise_new();
    gint n = 0;
    g_signal_emit_by_name(p->webrtc, "get-stats", NULL, pr);
    fail_unless_equals_int(gst_promise_wait(pr), GST_PROMISE_RESULT_REPLIED);
    if (g_getenv("SLUICE_TEST_STATS")) {
        gchar *t = gst_structure_to_string(gst_promise_get_reply(pr));
        g_print("%s\n", t);
        g_free(t);
    }
    gst_structure_foreach(gst_promise_get_reply(pr), check_relay_candidate, &n);
    fail_unless(n > 0, "no local candidate in the stats");
    gst_promise_unref(pr);
}

/* Threads of this process whose name starts with prefix (the agents'
 * threads are "sluice:NAME"). */
static guint count_threads(const gchar *prefix)
{
    GDir *d = g_dir_open("/proc/self/task", 0, NULL);
    const gchar *tid;
    guint n = 0;
    while (d && (tid = g_dir_read_name(d))) {
        gchar *path = g_strdup_printf("/proc/self/task/%s/comm", tid), *comm = NULL;
        if (g_file_get_contents(path, &comm, NULL, NULL) && g_str_has_prefix(comm, prefix))
            n++;
        g_free(comm);
        g_free(path);
    }
    if (d)
        g_dir_close(d);
    return n;
}

static void call_clear(Call *c)
{
    gst_element_set_state(c->pipe, GST_STATE_NULL);
    for (int i = 0; i < 2; i++)
        g_clear_object(&c->p[i].channel);
    gst_object_unref(c->pipe);
    for (int i = 0; i < 2; i++) {
        Peer *p = &c->p[i];
        GObject *left;
        if (p->ice_kept)
            gst_object_unref(p->ice_kept);
        /* The ICE object goes with webrtcbin (and the test's reference). */
        left = g_weak_ref_get(&p->ice_weak);
        fail_unless(left == NULL, "%s: the ICE agent outlived webrtcbin", p->name);
        g_weak_ref_clear(&p->ice_weak);
    }
    /* With the last element gone, the agents and their threads are too. */
    fail_unless_equals_int(count_threads("sluice:"), 0);
    g_main_loop_unref(c->loop);
    g_free(c->turn);
    g_mutex_clear(&c->lock);
}

/* ------------------------------------------------------------------------ */
/* The backend without webrtcbin, through the GstWebRTCICE API. */

/* IP_TOS of this process's UDP socket bound to 127.0.0.1:port, -1 if none. */
static gint socket_tos(guint port)
{
    GDir *d = g_dir_open("/proc/self/fd", 0, NULL);
    const gchar *name;
    gint tos = -1;
    while (d && tos < 0 && (name = g_dir_read_name(d))) {
        int fd = atoi(name), type = 0, v = 0;
        struct sockaddr_in sa;
        socklen_t len = sizeof sa, tl = sizeof type, vl = sizeof v;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_DGRAM)
            continue;
        if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0 || sa.sin_family != AF_INET ||
            ntohs(sa.sin_port) != port || sa.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
            continue;
        if (getsockopt(fd, IPPROTO_IP, IP_TOS, &v, &vl) == 0)
            tos = v;
    }
    if (d)
        g_dir_close(d);
    return tos;
}

static gboolean quit_loop(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------------ */
/* webrtcbin <-> webrtcbin */

/* PLAYING, then the offerer's data channel (when the call has one); the
 * offer follows from the main loop once webrtcbin asks for negotiation. */
static void start_call(Call *c)
{
    g_signal_connect(c->p[0].webrtc, "on-negotiation-needed", G_CALLBACK(on_negotiation_needed), c);
    fail_unless(gst_element_set_state(c->pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    if (c->data) {
        GstWebRTCDataChannel *ch = NULL;
        g_signal_emit_by_name(c->p[0].webrtc, "create-data-channel", "chat", NULL, &ch);
        fail_unless(ch != NULL);
        watch_channel(&c->p[0], ch);
        g_object_unref(ch);
    }
}

/* bundle: webrtcbin's bundle-policy on both sides ("none": one ICE stream
 * per m-line; webrtcbin 1.22 then gets no data channel through, whatever
 * the ICE agent, so data goes with bundling only). */
static void two_webrtcbins(Backend offerer, Backend answerer, const gchar *bundle, guint videos,
                           gboolean data)
{
    Call c;
    gboolean ok;

    call_init(&c);
    c.two_way = TRUE;
    c.videos = videos;
    c.data = data;
    c.p[0].name = "offerer";
    c.p[0].backend = offerer;
    c.p[1].name = "answerer";
    c.p[1].backend = answerer;
    g_print("-- %s offers, %s answers: bundle-policy %s, %u video stream(s) each way%s\n",
            backend_name(offerer), backend_name(answerer), bundle, videos,
            data ? ", a data channel" : "");
    add_peer(&c, &c.p[0], bundle);
    add_peer(&c, &c.p[1], bundle);
    start_call(&c);

    run(&c);
    report(&c);
    ok = !c.failed && !c.timed_out;
    for (int i = 0; i < 2 && ok; i++) {
        if (c.p[i].backend != BACKEND_NICE)
            check_stats(&c.p[i]);
    }
    call_clear(&c);
    fail_unless(ok, "the call failed or did not finish within %d s", DEADLINE_S);
}

GST_START_TEST(test_sluice_offers_libnice_answers)
{
    two_webrtcbins(BACKEND_SLUICE, BACKEND_NICE, "max-bundle", 1, TRUE);
}
GST_END_TEST

GST_START_TEST(test_libnice_offers_sluice_answers)
{
    two_webrtcbins(BACKEND_NICE, BACKEND_SLUICE_NAME, "max-bundle", 1, TRUE);
}
GST_END_TEST

GST_START_TEST(test_libnice_both)
{
    two_webrtcbins(BACKEND_NICE, BACKEND_NICE, "max-bundle", 1, TRUE);
}
GST_END_TEST

GST_START_TEST(test_sluice_both)
{
    two_webrtcbins(BACKEND_SLUICE_NAME, BACKEND_SLUICE, "max-compat", 1, TRUE);
}
GST_END_TEST

/* Two ICE streams (one per m-line), each carrying video. */
GST_START_TEST(test_unbundled_sluice_offers)
{
    two_webrtcbins(BACKEND_SLUICE, BACKEND_NICE, "none", 2, FALSE);
}
GST_END_TEST

GST_START_TEST(test_unbundled_sluice_answers)
{
    two_webrtcbins(BACKEND_NICE, BACKEND_SLUICE, "none", 2, FALSE);
}
GST_END_TEST

/* ------------------------------------------------------------------------ */
/* Relay-only through sluice-relay and coturn (tests/gst/turn_servers.sh
 * starts them and sets SLUICE_TEST_*). */

static const gchar *env(const gchar *name)
{
    const gchar *v = g_getenv(name);
    fail_unless(v != NULL, "%s is not set (run under turn_servers.sh)", name);
    return v;
}

/* sluice offers relay-only (ice-transport-policy=relay) through server
 * ("RELAY" or "COTURN") over transport ("udp", "tcp", "tls"); libnice
 * answers with its loopback host candidate. */
static void relayed_call(const gchar *server, const gchar *transport)
{
    Call c;
    gboolean ok;
    gchar *user = g_uri_escape_string(env("SLUICE_TEST_USER"), NULL, FALSE);
    gchar *pass = g_uri_escape_string(env("SLUICE_TEST_PASSWORD"), NULL, FALSE);
    gboolean tls = g_str_equal(transport, "tls");
    gchar *port_env = g_strdup_printf("SLUICE_TEST_%s%s_PORT", server, tls ? "_TLS" : "");

    call_init(&c);
    c.two_way = TRUE;
    c.videos = 1;
    c.data = TRUE;
    c.turn = g_strdup_printf("%s://%s:%s@127.0.0.1:%s%s", tls ? "turns" : "turn", user, pass,
                             env(port_env), g_str_equal(transport, "tcp") ? "?transport=tcp" : "");
    c.p[0].name = "offerer";
    c.p[0].backend = BACKEND_SLUICE;
    c.p[1].name = "answerer";
    c.p[1].backend = BACKEND_NICE;
    g_print("-- sluice offers relay-only through %s over %s, libnice answers\n",
            g_str_equal(server, "RELAY") ? "sluice-relay" : "coturn", transport);
    add_peer(&c, &c.p[0], "max-bundle");
    add_peer(&c, &c.p[1], "max-bundle");
    start_call(&c);
    run(&c);
    report(&c);
    ok = !c.failed && !c.timed_out;
    if (ok)
        check_relayed(&c.p[0]);
    call_clear(&c);
    g_free(port_env);
    g_free(user);
    g_free(pass);
    fail_unless(ok, "the call failed or did not finish within %d s", DEADLINE_S);
}

GST_START_TEST(test_relayed_sluice_relay_udp)
{
    relayed_call("RELAY", "udp");
}
GST_END_TEST

GST_START_TEST(test_relayed_sluice_relay_tcp)
{
    relayed_call("RELAY", "tcp");
}
GST_END_TEST

GST_START_TEST(test_relayed_sluice_relay_tls)
{
    relayed_call("RELAY", "tls");
}
GST_END_TEST

GST_START_TEST(test_relayed_coturn_udp)
{
    relayed_call("COTURN", "udp");
}
GST_END_TEST

GST_START_TEST(test_relayed_coturn_tcp)
{
    relayed_call("COTURN", "tcp");
}
GST_END_TEST

GST_START_TEST(test_relayed_coturn_tls)
{
    relayed_call("COTURN", "tls");
}
GST_END_TEST

/* aiortc or Chromium answers an offer (bundled video and a data channel):
 * frames must arrive at the peer, messages both ways. */
static void peer_call(Backend offerer, const gchar *peer, const gchar *env)
{
    Call c;
    gboolean ok;
    gint frames, mdns;

    call_init(&c);
    c.videos = 1;
    c.data = TRUE;
    c.py_name = peer;
    c.p[0].name = "offerer";
    c.p[0].backend = offerer;
    g_print("-- %s offers, %s answers: bundle-policy max-bundle, video to %s, a data "
            "channel\n",
            backend_name(offerer), peer, peer);
    add_peer(&c, &c.p[0], "max-bundle");
    py_start(&c, env);
    start_call(&c);

    run(&c);
    report(&c);
    g_print("%-16s: ICE connected  %6.1f ms after the answer; %d frames, %d messages "
            "received; it offered %d candidates, %d of them mDNS (.local)\n",
            peer, c.t_py_ice / 1000.0, g_atomic_int_get(&c.py_frames),
            g_atomic_int_get(&c.py_messages), c.py_candidates, c.py_mdns);
    ok = !c.failed && !c.timed_out;
    if (ok && offerer != BACKEND_NICE)
        check_stats(&c.p[0]);
    frames = g_atomic_int_get(&c.py_frames);
    mdns = c.py_mdns;
    /* Stop everything before failing: nothing may keep running. */
    py_stop(&c);
    call_clear(&c);
    fail_unless(ok, "the call failed or did not finish within %d s", DEADLINE_S);
    fail_unless(frames >= FRAMES);
    if (g_str_equal(peer, "chromium"))
        fail_unless(mdns > 0, "Chromium offered no mDNS candidate");
}

GST_START_TEST(test_aiortc_answers_sluice)
{
    peer_call(BACKEND_SLUICE, "aiortc", "SLUICE_AIORTC_PEER");
}
GST_END_TEST

/* The same with libnice, for the timing baseline. */
GST_START_TEST(test_aiortc_answers_libnice)
{
    peer_call(BACKEND_NICE, "aiortc", "SLUICE_AIORTC_PEER");
}
GST_END_TEST

/* Headless Chromium answers (tests/gst/chromium_peer.py, in a network
 * namespace of its own, tests/gst/meson.build): its host candidate is an
 * mDNS name that cannot resolve there, so the call goes through the
 * peer-reflexive candidate its checks create. */
GST_START_TEST(test_chromium_answers_sluice)
{
    peer_call(BACKEND_SLUICE, "chromium", "SLUICE_CHROMIUM_PEER");
}
GST_END_TEST

GST_START_TEST(test_chromium_answers_libnice)
{
    peer_call(BACKEND_NICE, "chromium", "SLUICE_CHROMIUM_PEER");
}
GST_END_TEST

static void on_candidate_cb(GstWebRTCICE *ice, guint session, const gchar *cand, gpointer data)
{
    GPtrArray *got = data;
    (void)ice;
    g_ptr_array_add(got, g_strdup_printf("%u %s", session, cand));
}

static gboolean wait_gathered(GstWebRTCICETransport *t)
{
    GMainLoop *loop = g_main_loop_new(NULL, FALSE);
    gint64 until = now_us() + 5 * G_USEC_PER_SEC;
    GstWebRTCICEGatheringState st;
    while (g_object_get(t, "gathering-state", &st, NULL),
           st != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE && now_us() < until) {
        g_timeout_add(10, quit_loop, loop);
        g_main_loop_run(loop);
    }
    g_main_loop_unref(loop);
    return st == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE;
}

/* Every GstWebRTCICE method on its own: streams and transports, servers,
 * role, gathering with the candidate callback, credentials, remote
 * candidates (a TCP one ignored), statistics, and the
 * TOS byte on the stream's socket (set before and after gathering). */
GST_START_TEST(test_backend_api)
{
    GstWebRTCICE *ice = gst_object_ref_sink(gst_sluice_webrtc_ice_new("api"));
    GstWebRTCICEStream *s0, *s1;
    GstWebRTCICETransport *t0, *t0b;
    GstWebRTCICECandidateStats **cands, *l = NULL, *r = NULL;
    GPtrArray *got = g_ptr_array_new_with_free_func(g_free);
    gboolean ok = FALSE, tcp = TRUE;
    gchar *str;
    GWeakRef weak;

    g_weak_ref_init(&weak, ice);
    g_signal_emit_by_name(ice, "add-local-ip-address", "127.0.0.1", &ok);
    fail_unless(ok);
    g_signal_emit_by_name(ice, "add-local-ip-address", "not-an-ip", &ok);
    fail_if(ok);
    g_object_get(ice, "ice-tcp", &tcp, NULL);
    fail_if(tcp, "ICE-TCP is off by default");

    /* Servers are kept as given (and handed to the agent when gathering). */
    fail_unless(gst_webrtc_ice_add_turn_server(ice, "turn://u:p@127.0.0.1:9?transport=tcp"));
    fail_if(gst_webrtc_ice_add_turn_server(ice, "turn://127.0.0.1:9"), "no credentials");
    fail_if(gst_webrtc_ice_add_turn_server(ice, "http://u:p@127.0.0.1"));
    gst_webrtc_ice_set_stun_server(ice, "stun://127.0.0.1:9");
    str = gst_webrtc_ice_get_stun_server(ice);
    fail_unless_equals_string(str, "stun://127.0.0.1:9");
    g_free(str);
    gst_webrtc_ice_set_turn_server(ice, "turns://u:p@127.0.0.1:9");
    str = gst_webrtc_ice_get_turn_server(ice);
    fail_unless_equals_string(str, "turns://u:p@127.0.0.1:9");
    g_free(str);
    gst_webrtc_ice_set_http_proxy(ice, "http://127.0.0.1:3128");
    str = gst_webrtc_ice_get_http_proxy(ice);
    fail_unless_equals_string(str, "http://127.0.0.1:3128");
    g_free(str);
    /* The servers above do not exist: forget them before gathering. */
    gst_webrtc_ice_set_stun_server(ice, NULL);
    gst_webrtc_ice_set_turn_server(ice, NULL);

    gst_webrtc_ice_set_is_controller(ice, TRUE);
    fail_unless(gst_webrtc_ice_get_is_controller(ice));
    gst_webrtc_ice_set_is_controller(ice, FALSE);
    fail_if(gst_webrtc_ice_get_is_controller(ice));
    gst_webrtc_ice_set_force_relay(ice, FALSE);
    gst_webrtc_ice_set_on_ice_candidate(ice, on_candidate_cb, got, NULL);

    s0 = gst_webrtc_ice_add_stream(ice, 0);
    fail_unless(s0 != NULL);
    fail_unless(gst_webrtc_ice_add_stream(ice, 0) == NULL, "session 0 twice");
    s1 = gst_webrtc_ice_add_stream(ice, 7);
    fail_unless(s1 != NULL && s1->stream_id != s0->stream_id);
    t0 = gst_webrtc_ice_find_transport(ice, s0, GST_WEBRTC_ICE_COMPONENT_RTP);
    t0b = gst_webrtc_ice_find_transport(ice, s0, GST_WEBRTC_ICE_COMPONENT_RTP);
    fail_unless(t0 != NULL && t0 == t0b);
    fail_unless(t0->src != NULL && t0->sink != NULL);
    fail_unless_equals_string(GST_OBJECT_NAME(gst_element_get_factory(t0->src)), "icesrc");
    fail_unless_equals_string(GST_OBJECT_NAME(gst_element_get_factory(t0->sink)), "icesink");
    /* ICE failure is webrtcbin's connection state, not a bus error. */
    gboolean src_fatal = TRUE, sink_fatal = TRUE;
    g_object_get(t0->src, "fatal-errors", &src_fatal, NULL);
    g_object_get(t0->sink, "fatal-errors", &sink_fatal, NULL);
    fail_if(src_fatal || sink_fatal, "the transport's elements have fatal-errors on");
    fail_unless(gst_webrtc_ice_find_transport(ice, s0, GST_WEBRTC_ICE_COMPONENT_RTCP) == NULL,
                "rtcp-mux only");

    fail_unless(gst_webrtc_ice_set_local_credentials(ice, s0, "abcd", "abcdefghijklmnopqrstuv"));
    fail_if(gst_webrtc_ice_set_local_credentials(ice, s0, "a", "b"), "too short");
    fail_unless(gst_webrtc_ice_set_remote_credentials(ice, s0, "wxyz", "wxyzwxyzwxyzwxyzwxyzwx"));

    /* TOS before gathering: applied when the sockets exist. */
    gst_webrtc_ice_set_tos(ice, s0, 0x90);
    fail_unless(gst_webrtc_ice_gather_candidates(ice, s0));
    fail_unless(gst_webrtc_ice_gather_candidates(ice, s0), "again: nothing new");
    fail_unless(wait_gathered(t0));
    fail_unless(got->len >= 1);
    fail_unless(g_str_has_prefix(g_ptr_array_index(got, 0), "0 a=candidate:"), "%s",
                (gchar *)g_ptr_array_index(got, 0));
    cands = gst_webrtc_ice_get_local_candidates(ice, s0);
    fail_unless(cands[0] != NULL);
    fail_unless_equals_string(cands[0]->ipaddr, "127.0.0.1");
    fail_unless_equals_string(cands[0]->type, "host");
    fail_unless_equals_int(socket_tos(cands[0]->port), 0x90);
    gst_webrtc_ice_set_tos(ice, s0, 0x48);
    fail_unless_equals_int(socket_tos(cands[0]->port), 0x48);
    for (GstWebRTCICECandidateStats **c = cands; *c; c++)
        gst_webrtc_ice_candidate_stats_free(*c);
    g_free(cands);

    gst_webrtc_ice_add_candidate(ice, s0, "a=candidate:1 1 UDP 2130706431 127.0.0.1 9 typ host");
    gst_webrtc_ice_add_candidate(ice, s0,
                                 "a=candidate:2 1 TCP 1015022591 127.0.0.1 9 typ host "
                                 "tcptype active");
    gst_webrtc_ice_add_candidate(ice, s0, NULL); /* end of candidates */
    cands = gst_webrtc_ice_get_remote_candidates(ice, s0);
    fail_unless(cands[0] != NULL && cands[1] == NULL, "one UDP remote candidate");
    fail_unless_equals_int(cands[0]->port, 9);
    for (GstWebRTCICECandidateStats **c = cands; *c; c++)
        gst_webrtc_ice_candidate_stats_free(*c);
    g_free(cands);
    fail_if(gst_webrtc_ice_get_selected_pair(ice, s0, &l, &r), "nothing selected");

    gst_object_unref(t0);
    gst_object_unref(t0b);
    gst_object_unref(ice);
    fail_unless(g_weak_ref_get(&weak) == NULL);
    g_weak_ref_clear(&weak);
    g_ptr_array_unref(got);
    fail_unless_equals_int(count_threads("sluice:"), 0);
}
GST_END_TEST

static Suite *webrtcbin_suite(void)
{
    Suite *s = suite_create("sluice-webrtcbin");
    TCase *tc = tcase_create("general");
    suite_add_tcase(s, tc);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_backend_api);
    tcase_add_test(tc, test_sluice_offers_libnice_answers);
    tcase_add_test(tc, test_libnice_offers_sluice_answers);
    tcase_add_test(tc, test_sluice_both);
    tcase_add_test(tc, test_libnice_both);
    tcase_add_test(tc, test_unbundled_sluice_offers);
    tcase_add_test(tc, test_unbundled_sluice_answers);
    tcase_add_test(tc, test_aiortc_answers_sluice);
    tcase_add_test(tc, test_aiortc_answers_libnice);
    tcase_add_test(tc, test_chromium_answers_sluice);
    tcase_add_test(tc, test_chromium_answers_libnice);
    tcase_add_test(tc, test_relayed_sluice_relay_udp);
    tcase_add_test(tc, test_relayed_sluice_relay_tcp);
    tcase_add_test(tc, test_relayed_sluice_relay_tls);
    tcase_add_test(tc, test_relayed_coturn_udp);
    tcase_add_test(tc, test_relayed_coturn_tcp);
    tcase_add_test(tc, test_relayed_coturn_tls);
    return s;
}

GST_CHECK_MAIN(webrtcbin);
