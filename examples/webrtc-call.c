/* SPDX-License-Identifier: MIT */
/* webrtc-call: a two-way video call with a data channel between two
 * webrtcbin applications that find each other by name through sluice-coord,
 * with sluice as webrtcbin's ICE agent.
 *
 *   webrtc-call --coordinator HOST:PORT --coordinator-pin FP --name bob
 *   webrtc-call --coordinator HOST:PORT --coordinator-pin FP --name alice --call bob
 *
 * The caller opens a DIRECT stream to the callee through the coordinator
 * (docs/coordinator.md). The coordinator hands both sides TURN credentials
 * for its sluice-relay with the stream; they become webrtcbin TURN servers.
 * The offer, the answer and the trickled candidates then travel as stream
 * messages:
 *
 *   "offer\n" SDP | "answer\n" SDP | "candidate MLINE\n" CANDIDATE | "done\n"
 *
 * Both sides send VP8 video (videotestsrc) and show what they receive
 * (--video-sink, default autovideosink); the caller opens a data channel
 * "chat" and the callee echoes what arrives on it. With --frames N the
 * program exits 0 once N frames arrived (and, on the caller, the echo came
 * back) and the peer has said "done" too, and 1 if that has not happened
 * within --timeout seconds. Without
 * --frames it runs until Ctrl-C or the peer hangs up.
 *
 * The only sluice-specific line is the ICE agent passed to webrtcbin
 * (make_webrtcbin); everything else is plain webrtcbin and the coordinator
 * client of libsluice-gio. docs/webrtcbin.md explains the switch. */
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#define GST_USE_UNSTABLE_API
#include <gst/webrtc/webrtc.h>
#include <stdio.h>
#include <string.h>

#include "sluice-coord-client.h"
#include "sluice-gio.h"

#define LABEL "webrtc-call"
#define MAX_OUTBOX 256 /* messages waiting for stream credit */
#define SENDER                                                                              \
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 " \
    "! videoconvert ! queue ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 "     \
    "! capsfilter caps=application/x-rtp,media=video,encoding-name=VP8,payload=96,"          \
    "clock-rate=90000"

typedef struct {
    /* options */
    gchar *coordinator, *pin, *ca, *name, *call, *video_sink, *stun, *local_address;
    gint frames_wanted, timeout_s;
    gboolean relay_only;
    /* state, main thread unless said otherwise */
    GMainLoop *loop;
    SluiceCoordClient *coord;
    guint stream;
    gchar *peer;
    GQueue outbox; /* GBytes for the stream, waiting for credit */
    GstElement *pipe, *webrtc;
    GstWebRTCDataChannel *channel;
    gint frames;  /* atomic: counted on a streaming thread */
    gint64 t_start, t_connected;
    gboolean got_message, got_echo, sent_done, peer_done, done;
    gint exit_code;
} Call;

static void finish(Call *c, gint code, const gchar *why)
{
    if (c->done)
        return;
    c->done = TRUE;
    c->exit_code = code;
    if (why)
        g_printerr("%s: %s\n", c->name, why);
    g_main_loop_quit(c->loop);
}

/* ------------------------------------------------------------------------ */
/* Signalling over the coordinator stream */

static void flush_outbox(Call *c)
{
    GBytes *b;
    while ((b = g_queue_peek_head(&c->outbox))) {
        GError *err = NULL;
        gsize len;
        const guint8 *d = g_bytes_get_data(b, &len);
        if (!sluice_coord_client_gio_send(c->coord, c->stream, d, len, &err)) {
            gboolean full = g_error_matches(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_FULL);
            if (!full)
                finish(c, 1, err->message);
            g_error_free(err);
            return; /* full: "writable" calls us again */
        }
        g_bytes_unref(g_queue_pop_head(&c->outbox));
    }
}

typedef struct {
    Call *c;
    gchar *text;
} Outgoing;

static gboolean send_on_main(gpointer data)
{
    Outgoing *o = data;
    Call *c = o->c;
    if (!c->done && c->stream) {
        if (c->outbox.length >= MAX_OUTBOX)
            finish(c, 1, "the signalling stream does not drain");
        else
            g_queue_push_tail(&c->outbox, g_bytes_new_take(o->text, strlen(o->text)));
        o->text = NULL;
        flush_outbox(c);
    }
    g_free(o->text);
    g_free(o);
    return G_SOURCE_REMOVE;
}

/* From any thread (webrtcbin calls back on its own). */
static void signal_send(Call *c, gchar *text)
{
    Outgoing *o = g_new0(Outgoing, 1);
    o->c = c;
    o->text = text;
    g_main_context_invoke(NULL, send_on_main, o);
}

/* ------------------------------------------------------------------------ */
/* webrtcbin */

/* identity's "handoff": one depayloaded (whole) frame. */
static void on_frame(GstElement *identity, GstBuffer *buf, gpointer data)
{
    (void)identity;
    (void)buf;
    g_atomic_int_inc((gint *)data);
}

/* Received video: depayload, decode, show, and count the frames. */
static void on_pad_added(GstElement *webrtc, GstPad *pad, gpointer data)
{
    Call *c = data;
    GError *err = NULL;
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC)
        return;
    gchar *desc = g_strdup_printf("rtpvp8depay ! identity name=count signal-handoffs=true ! "
                                  "vp8dec ! videoconvert ! queue ! %s",
                                  c->video_sink);
    GstElement *bin = gst_parse_bin_from_description(desc, TRUE, &err);
    g_free(desc);
    if (!bin) {
        g_printerr("%s: cannot build the receive branch: %s\n", c->name, err->message);
        g_error_free(err);
        return;
    }
    GstElement *count = gst_bin_get_by_name(GST_BIN(bin), "count");
    g_signal_connect(count, "handoff", G_CALLBACK(on_frame), &c->frames);
    gst_object_unref(count);
    gst_bin_add(GST_BIN(c->pipe), bin);
    gst_element_sync_state_with_parent(bin);
    GstPad *sink = gst_element_get_static_pad(bin, "sink");
    if (gst_pad_link(pad, sink) != GST_PAD_LINK_OK)
        g_printerr("%s: cannot link the received video\n", c->name);
    gst_object_unref(sink);
    g_print("%s: receiving video from %s\n", c->name, c->peer);
    (void)webrtc;
}

static void on_ice_candidate(GstElement *webrtc, guint mline, const gchar *cand, gpointer data)
{
    (void)webrtc;
    if (cand && *cand)
        signal_send(data, g_strdup_printf("candidate %u\n%s", mline, cand));
}

static gchar *sdp_text(GstPromise *promise, const gchar *field, GstElement *webrtc)
{
    const GstStructure *r = gst_promise_get_reply(promise);
    GstWebRTCSessionDescription *d = NULL;
    gchar *text = NULL;
    if (r)
        gst_structure_get(r, field, GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &d, NULL);
    if (d) {
        g_signal_emit_by_name(webrtc, "set-local-description", d, NULL);
        text = gst_sdp_message_as_text(d->sdp);
        gst_webrtc_session_description_free(d);
    }
    return text;
}

/* The offer (caller) or answer (callee) webrtcbin made: apply it, send it. */
static void on_description(GstPromise *promise, gpointer data)
{
    Call *c = data;
    const gchar *kind = c->call ? "offer" : "answer";
    gchar *sdp = sdp_text(promise, kind, c->webrtc);
    gst_promise_unref(promise);
    if (sdp)
        signal_send(c, g_strconcat(kind, "\n", sdp, NULL));
    else
        g_printerr("%s: webrtcbin made no %s\n", c->name, kind);
    g_free(sdp);
}

static void on_negotiation_needed(GstElement *webrtc, gpointer data)
{
    g_signal_emit_by_name(webrtc, "create-offer", NULL,
                          gst_promise_new_with_change_func(on_description, data, NULL));
}

/* With --frames: once our side has what it wanted we tell the peer
 * ("done"), and we leave once the peer has said the same, so that neither
 * hangs up on the other before it is finished. */
static gboolean goal_met(Call *c)
{
    gboolean talked = c->call ? c->got_echo : c->got_message;
    return c->frames_wanted > 0 && g_atomic_int_get(&c->frames) >= c->frames_wanted && talked;
}

static gboolean check_done(gpointer data)
{
    Call *c = data;
    if (c->done || !goal_met(c))
        return G_SOURCE_CONTINUE;
    if (!c->sent_done) {
        c->sent_done = TRUE;
        g_print("%s: %d video frames from %s, data channel %s; connected %.1f ms after the "
                "call started\n",
                c->name, g_atomic_int_get(&c->frames), c->peer,
                c->call ? "echo received" : "message echoed",
                (c->t_connected - c->t_start) / 1000.0);
        signal_send(c, g_strdup("done\n"));
    }
    if (c->peer_done)
        finish(c, 0, NULL);
    return G_SOURCE_CONTINUE;
}

static void on_connection_state(GstElement *webrtc, GParamSpec *pspec, gpointer data)
{
    Call *c = data;
    GstWebRTCPeerConnectionState s;
    (void)pspec;
    g_object_get(webrtc, "connection-state", &s, NULL);
    if (s == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED && !c->t_connected) {
        c->t_connected = g_get_monotonic_time();
        g_print("%s: connected to %s\n", c->name, c->peer);
    } else if (s == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED) {
        g_printerr("%s: the connection to %s failed (ICE or DTLS)\n", c->name, c->peer);
    }
}

static void on_channel_message(GstWebRTCDataChannel *ch, const gchar *text, gpointer data)
{
    Call *c = data;
    if (c->call) {
        if (g_str_has_prefix(text, "echo: "))
            c->got_echo = TRUE;
    } else {
        gchar *echo = g_strconcat("echo: ", text, NULL);
        g_signal_emit_by_name(ch, "send-string", echo);
        g_free(echo);
        c->got_message = TRUE;
    }
    g_print("%s: data channel: %s\n", c->name, text);
}

static void on_channel_open(GstWebRTCDataChannel *ch, gpointer data)
{
    Call *c = data;
    gchar *hello = g_strdup_printf("hello from %s", c->name);
    g_signal_emit_by_name(ch, "send-string", hello);
    g_free(hello);
}

static void on_data_channel(GstElement *webrtc, GstWebRTCDataChannel *ch, gpointer data)
{
    (void)webrtc;
    g_signal_connect(ch, "on-message-string", G_CALLBACK(on_channel_message), data);
}

static gboolean on_bus(GstBus *bus, GstMessage *m, gpointer data)
{
    Call *c = data;
    GError *err = NULL;
    gchar *dbg = NULL;
    (void)bus;
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
        gst_message_parse_error(m, &err, &dbg);
        g_printerr("%s: error from %s: %s (%s)\n", c->name, GST_OBJECT_NAME(m->src),
                   err->message, dbg ? dbg : "");
        finish(c, 1, NULL);
    } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING) {
        gst_message_parse_warning(m, &err, &dbg);
        g_printerr("%s: warning from %s: %s\n", c->name, GST_OBJECT_NAME(m->src), err->message);
    }
    g_clear_error(&err);
    g_free(dbg);
    return G_SOURCE_CONTINUE;
}

/* webrtcbin with sluice as its ICE agent: the one line that differs from a
 * libnice application. The type comes from the sluice plugin by name, so
 * this program does not link the plugin. */
static GstElement *make_webrtcbin(void)
{
    GType ice_type = gst_dynamic_type_factory_load("GstSluiceWebRTCICE");
    if (!ice_type)
        return NULL;
    GObject *ice = g_object_new(ice_type, "name", "sluice-ice", NULL);
    return gst_element_factory_make_full("webrtcbin", "name", "webrtc", "ice-agent", ice,
                                         "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE,
                                         NULL);
}

/* "turn:host:port?transport=tcp" + user/pass -> "turn://USER:PASS@host:port?..." */
static gchar *turn_url(const gchar *uri, const gchar *user, const gchar *pass)
{
    const gchar *rest = strchr(uri, ':');
    if (!rest)
        return NULL;
    gchar *scheme = g_strndup(uri, (gsize)(rest - uri));
    gchar *u = g_uri_escape_string(user, NULL, FALSE);
    gchar *p = g_uri_escape_string(pass, NULL, FALSE);
    gchar *url = g_strdup_printf("%s://%s:%s@%s", scheme, u, p, rest + 1);
    g_free(scheme);
    g_free(u);
    g_free(p);
    return url;
}

static gboolean start_call(Call *c, const SluiceCoordStreamInfo *info)
{
    GError *err = NULL;
    c->stream = info->stream;
    c->peer = g_strdup(info->name);
    c->t_start = g_get_monotonic_time();
    c->pipe = gst_pipeline_new("call");
    c->webrtc = make_webrtcbin();
    if (!c->webrtc) {
        finish(c, 1, "no GstSluiceWebRTCICE: is the sluice GStreamer plugin installed "
                     "(GST_PLUGIN_PATH), and webrtcbin (gstreamer1.0-plugins-bad)?");
        return FALSE;
    }
    gst_bin_add(GST_BIN(c->pipe), c->webrtc);
    if (c->local_address) {
        /* Gather on this address only (the agent's default: every
         * interface that is up, loopback only when nothing else is). */
        GstWebRTCICE *ice = NULL;
        gboolean ok = FALSE;
        g_object_get(c->webrtc, "ice-agent", &ice, NULL);
        g_signal_emit_by_name(ice, "add-local-ip-address", c->local_address, &ok);
        gst_object_unref(ice);
        if (!ok) {
            finish(c, 1, "--local-address: not an IP address the agent can use");
            return FALSE;
        }
    }
    if (c->relay_only)
        g_object_set(c->webrtc, "ice-transport-policy", GST_WEBRTC_ICE_TRANSPORT_POLICY_RELAY,
                     NULL);
    if (c->stun)
        g_object_set(c->webrtc, "stun-server", c->stun, NULL);
    for (guint i = 0; info->turn_uris && info->turn_uris[i]; i++) {
        gchar *url = turn_url(info->turn_uris[i], info->turn_username, info->turn_password);
        gboolean ok = FALSE;
        if (url)
            g_signal_emit_by_name(c->webrtc, "add-turn-server", url, &ok);
        g_print("%s: TURN server %s from the coordinator%s\n", c->name, info->turn_uris[i],
                ok ? "" : " (refused by webrtcbin)");
        g_free(url);
    }
    if (c->relay_only && !(info->turn_uris && info->turn_uris[0])) {
        finish(c, 1, "--relay-only, but the coordinator gave no TURN server (sluice-coord "
                     "--turn-secret/--turn-uri)");
        return FALSE;
    }
    g_signal_connect(c->webrtc, "pad-added", G_CALLBACK(on_pad_added), c);
    g_signal_connect(c->webrtc, "on-ice-candidate", G_CALLBACK(on_ice_candidate), c);
    g_signal_connect(c->webrtc, "notify::connection-state", G_CALLBACK(on_connection_state), c);
    g_signal_connect(c->webrtc, "on-data-channel", G_CALLBACK(on_data_channel), c);
    if (c->call)
        g_signal_connect(c->webrtc, "on-negotiation-needed", G_CALLBACK(on_negotiation_needed),
                         c);
    GstElement *src = gst_parse_bin_from_description(SENDER, TRUE, &err);
    if (!src) {
        finish(c, 1, err->message);
        g_error_free(err);
        return FALSE;
    }
    gst_bin_add(GST_BIN(c->pipe), src);
    if (!gst_element_link_pads(src, "src", c->webrtc, "sink_%u")) {
        finish(c, 1, "cannot link the video source to webrtcbin");
        return FALSE;
    }
    GstBus *bus = gst_pipeline_get_bus(GST_PIPELINE(c->pipe));
    gst_bus_add_watch(bus, on_bus, c);
    gst_object_unref(bus);
    if (gst_element_set_state(c->pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        finish(c, 1, "the pipeline does not start");
        return FALSE;
    }
    if (c->call) {
        g_signal_emit_by_name(c->webrtc, "create-data-channel", "chat", NULL, &c->channel);
        if (c->channel) {
            g_signal_connect(c->channel, "on-open", G_CALLBACK(on_channel_open), c);
            g_signal_connect(c->channel, "on-message-string", G_CALLBACK(on_channel_message), c);
        }
    }
    g_print("%s: in a call with %s (%s)\n", c->name, c->peer,
            c->call ? "offering" : "answering");
    return TRUE;
}

static void on_remote_description_set(GstPromise *promise, gpointer data)
{
    Call *c = data;
    gst_promise_unref(promise);
    if (!c->call)
        g_signal_emit_by_name(c->webrtc, "create-answer", NULL,
                              gst_promise_new_with_change_func(on_description, c, NULL));
}

static void set_remote(Call *c, GstWebRTCSDPType type, const gchar *text, gsize len)
{
    GstSDPMessage *sdp = NULL;
    gst_sdp_message_new(&sdp);
    if (gst_sdp_message_parse_buffer((const guint8 *)text, (guint)len, sdp) != GST_SDP_OK) {
        gst_sdp_message_free(sdp);
        finish(c, 1, "the peer sent an SDP that does not parse");
        return;
    }
    GstWebRTCSessionDescription *d = gst_webrtc_session_description_new(type, sdp);
    g_signal_emit_by_name(c->webrtc, "set-remote-description", d,
                          gst_promise_new_with_change_func(on_remote_description_set, c, NULL));
    gst_webrtc_session_description_free(d);
}

/* ------------------------------------------------------------------------ */
/* Coordinator */

static void on_message(SluiceCoordClient *cc, guint stream, const gchar *sender, GBytes *data,
                       gpointer user)
{
    Call *c = user;
    gsize len;
    const gchar *d = g_bytes_get_data(data, &len);
    const gchar *nl = memchr(d, '\n', len);
    (void)cc;
    (void)sender;
    if (stream != c->stream || !c->webrtc || !nl)
        return;
    gsize head = (gsize)(nl - d), body_len = len - head - 1;
    const gchar *body = nl + 1;
    if (head == 4 && !memcmp(d, "done", 4)) {
        c->peer_done = TRUE;
        check_done(c);
    } else if (head == 5 && !memcmp(d, "offer", 5) && !c->call) {
        set_remote(c, GST_WEBRTC_SDP_TYPE_OFFER, body, body_len);
    } else if (head == 6 && !memcmp(d, "answer", 6) && c->call) {
        set_remote(c, GST_WEBRTC_SDP_TYPE_ANSWER, body, body_len);
    } else if (head > 10 && !memcmp(d, "candidate ", 10)) {
        gchar *mline = g_strndup(d + 10, head - 10);
        gchar *cand = g_strndup(body, body_len);
        guint64 m = 0;
        if (g_ascii_string_to_unsigned(mline, 10, 0, 64, &m, NULL))
            g_signal_emit_by_name(c->webrtc, "add-ice-candidate", (guint)m, cand);
        g_free(mline);
        g_free(cand);
    } else {
        g_printerr("%s: unknown signalling message from %s ignored\n", c->name, c->peer);
    }
}

static void on_stream_incoming(SluiceCoordClient *cc, gpointer p, gpointer user)
{
    Call *c = user;
    const SluiceCoordStreamInfo *info = p;
    if (c->call || c->stream || info->kind != SLUICE_COORD_KIND_DIRECT ||
        g_strcmp0(info->label, LABEL) != 0) {
        sluice_coord_client_gio_refuse_stream(cc, info->stream, 486, "busy");
        return;
    }
    sluice_coord_client_gio_accept_stream(cc, info->stream);
    g_print("%s: call from %s\n", c->name, info->name);
    start_call(c, info);
}

static void on_stream_accepted(SluiceCoordClient *cc, gpointer p, gpointer user)
{
    Call *c = user;
    const SluiceCoordStreamInfo *info = p;
    (void)cc;
    if (c->call && !c->webrtc)
        start_call(c, info);
}

static void on_stream_refused(SluiceCoordClient *cc, guint stream, gint code,
                              const gchar *reason, gpointer user)
{
    Call *c = user;
    gchar *why = g_strdup_printf("%s did not take the call: %d %s", c->call, code, reason);
    (void)cc;
    (void)stream;
    finish(c, 1, why);
    g_free(why);
}

static void on_stream_closed(SluiceCoordClient *cc, guint stream, gint code,
                             const gchar *reason, gpointer user)
{
    Call *c = user;
    (void)cc;
    (void)code;
    (void)reason;
    if (stream == c->stream) {
        g_print("%s: %s hung up\n", c->name, c->peer);
        finish(c, c->frames_wanted > 0 && !goal_met(c) ? 1 : 0, NULL);
    }
}

static void on_stream_finished(SluiceCoordClient *cc, guint stream, gpointer user)
{
    on_stream_closed(cc, stream, 0, NULL, user);
}

static void on_writable(SluiceCoordClient *cc, guint stream, gpointer user)
{
    Call *c = user;
    (void)cc;
    if (stream == c->stream)
        flush_outbox(c);
}

static void on_connected(SluiceCoordClient *cc, guint max_message, gpointer user)
{
    Call *c = user;
    GError *err = NULL;
    (void)max_message;
    g_print("%s: connected to the coordinator %s\n", c->name, c->coordinator);
    if (!c->call) {
        g_print("%s: waiting for a call\n", c->name);
        return;
    }
    /* The coordinator holds the call up to 30 s for the callee to connect. */
    if (!sluice_coord_client_gio_open_stream(cc, SLUICE_COORD_KIND_DIRECT, c->call, LABEL,
                                             SLUICE_COORD_OPEN_WAIT, 30 * G_USEC_PER_SEC,
                                             &err)) {
        finish(c, 1, err->message);
        g_error_free(err);
    }
}

static void on_refused(SluiceCoordClient *cc, gint code, const gchar *reason, gpointer user)
{
    Call *c = user;
    gchar *why = g_strdup_printf("the coordinator refused us: %d %s", code, reason);
    (void)cc;
    finish(c, 1, why);
    g_free(why);
}

static void on_closed(SluiceCoordClient *cc, gint code, const gchar *reason, gpointer user)
{
    Call *c = user;
    gchar *why = g_strdup_printf("the coordinator closed the connection: %d %s", code, reason);
    (void)cc;
    if (!c->done)
        finish(c, c->frames_wanted > 0 ? 1 : 0, why);
    g_free(why);
}

static gboolean on_timeout(gpointer data)
{
    Call *c = data;
    gchar *why = g_strdup_printf("timed out after %d s: %d of %d frames, %s", c->timeout_s,
                                 g_atomic_int_get(&c->frames), c->frames_wanted,
                                 (c->call ? c->got_echo : c->got_message)
                                     ? "data channel ok"
                                     : "no data channel message");
    finish(c, 1, why);
    g_free(why);
    return G_SOURCE_REMOVE;
}

static gboolean on_sigint(gpointer data)
{
    finish(data, 0, NULL);
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    Call c = {.video_sink = NULL, .frames_wanted = 0, .timeout_s = 0};
    GError *err = NULL;
    GOptionEntry entries[] = {
        {"coordinator", 0, 0, G_OPTION_ARG_STRING, &c.coordinator,
         "sluice-coord address (default 127.0.0.1:7878)", "HOST:PORT"},
        {"coordinator-pin", 0, 0, G_OPTION_ARG_STRING, &c.pin,
         "the coordinator certificate's SHA-256 (its ready line's fingerprint=)", "FP"},
        {"coordinator-ca", 0, 0, G_OPTION_ARG_FILENAME, &c.ca,
         "verify the coordinator against this CA (default: the system store)", "FILE"},
        {"name", 0, 0, G_OPTION_ARG_STRING, &c.name, "our name at the coordinator", "NAME"},
        {"call", 0, 0, G_OPTION_ARG_STRING, &c.call, "call this client (else wait for a call)",
         "PEER"},
        {"video-sink", 0, 0, G_OPTION_ARG_STRING, &c.video_sink,
         "where received video goes (default autovideosink)", "SINK"},
        {"stun", 0, 0, G_OPTION_ARG_STRING, &c.stun, "webrtcbin stun-server", "stun://HOST:PORT"},
        {"local-address", 0, 0, G_OPTION_ARG_STRING, &c.local_address,
         "gather host candidates on this IP only", "IP"},
        {"relay-only", 0, 0, G_OPTION_ARG_NONE, &c.relay_only,
         "relayed candidates only (through the coordinator's TURN server)", NULL},
        {"frames", 0, 0, G_OPTION_ARG_INT, &c.frames_wanted,
         "exit 0 once this many frames arrived (0: run until Ctrl-C)", "N"},
        {"timeout", 0, 0, G_OPTION_ARG_INT, &c.timeout_s,
         "exit 1 after this many seconds (0: none)", "S"},
        {NULL, 0, 0, 0, NULL, NULL, NULL}};
    GOptionContext *oc = g_option_context_new("- a webrtcbin video call through sluice-coord");
    g_option_context_add_main_entries(oc, entries, NULL);
    g_option_context_add_group(oc, gst_init_get_option_group());
    if (!g_option_context_parse(oc, &argc, &argv, &err)) {
        g_printerr("webrtc-call: %s\n", err->message);
        return 2;
    }
    g_option_context_free(oc);
    if (!c.name) {
        g_printerr("webrtc-call: --name is required (see --help)\n");
        return 2;
    }
    if (!c.coordinator)
        c.coordinator = g_strdup("127.0.0.1:7878");
    if (!c.video_sink)
        c.video_sink = g_strdup("autovideosink");

    c.loop = g_main_loop_new(NULL, FALSE);
    c.coord = sluice_coord_client_gio_new(g_main_context_default(), c.name);
    if (c.pin)
        g_object_set(c.coord, "pin", c.pin, NULL);
    if (c.ca)
        g_object_set(c.coord, "ca-file", c.ca, NULL);
    g_signal_connect(c.coord, "connected", G_CALLBACK(on_connected), &c);
    g_signal_connect(c.coord, "refused", G_CALLBACK(on_refused), &c);
    g_signal_connect(c.coord, "closed", G_CALLBACK(on_closed), &c);
    g_signal_connect(c.coord, "stream-incoming", G_CALLBACK(on_stream_incoming), &c);
    g_signal_connect(c.coord, "stream-accepted", G_CALLBACK(on_stream_accepted), &c);
    g_signal_connect(c.coord, "stream-refused", G_CALLBACK(on_stream_refused), &c);
    g_signal_connect(c.coord, "stream-closed", G_CALLBACK(on_stream_closed), &c);
    g_signal_connect(c.coord, "stream-finished", G_CALLBACK(on_stream_finished), &c);
    g_signal_connect(c.coord, "message", G_CALLBACK(on_message), &c);
    g_signal_connect(c.coord, "writable", G_CALLBACK(on_writable), &c);
    if (!sluice_coord_client_gio_connect(c.coord, c.coordinator, &err)) {
        g_printerr("%s: %s\n", c.name, err->message);
        return 1;
    }
    if (c.timeout_s > 0)
        g_timeout_add_seconds((guint)c.timeout_s, on_timeout, &c);
    g_timeout_add(100, check_done, &c);
    g_unix_signal_add(SIGINT, on_sigint, &c);
    g_unix_signal_add(SIGTERM, on_sigint, &c);
    g_main_loop_run(c.loop);

    if (c.pipe) {
        gst_element_set_state(c.pipe, GST_STATE_NULL);
        gst_object_unref(c.pipe);
    }
    g_clear_object(&c.channel);
    sluice_coord_client_gio_close(c.coord, "bye");
    g_object_unref(c.coord);
    g_queue_clear_full(&c.outbox, (GDestroyNotify)g_bytes_unref);
    g_main_loop_unref(c.loop);
    g_free(c.coordinator);
    g_free(c.pin);
    g_free(c.ca);
    g_free(c.name);
    g_free(c.call);
    g_free(c.video_sink);
    g_free(c.stun);
    g_free(c.local_address);
    g_free(c.peer);
    return c.exit_code;
}
