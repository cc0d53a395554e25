/* SPDX-License-Identifier: MIT */
/* GstSluiceWebRTCICEStream: a stream of the SluiceAgent. It owns the
 * transports of its components (they do not point back: no cycle), starts
 * gathering once, and turns the agent's "gathering-done" into the
 * transports' gathering state, from which webrtcbin derives its own (and,
 * from 1.24, its end-of-candidates). */
#include "gstsluicewebrtcicestream.h"

#include "gstsluicewebrtcicetransport.h"

#define GST_CAT_DEFAULT gst_sluice_webrtc_ice_debug

struct _GstSluiceWebRTCICEStream {
    GstWebRTCICEStream parent;
    GWeakRef ice; /* the owner (it holds this stream) */
    SluiceAgent *agent;
    gulong gathering_done_id;
    GMutex lock;       /* guards what follows */
    GList *transports; /* GstSluiceWebRTCICETransport, owned */
    gboolean gathering_started, gathered;
};

enum { PROP_0, PROP_ICE, PROP_AGENT };

G_DEFINE_TYPE(GstSluiceWebRTCICEStream, gst_sluice_webrtc_ice_stream, GST_TYPE_WEBRTC_ICE_STREAM)

static GList *transports_copy(GstSluiceWebRTCICEStream *self)
{
    GList *l;
    g_mutex_lock(&self->lock);
    l = g_list_copy_deep(self->transports, (GCopyFunc)(void (*)(void))gst_object_ref, NULL);
    g_mutex_unlock(&self->lock);
    return l;
}

static void set_gathering_state(GstSluiceWebRTCICEStream *self, GstWebRTCICEGatheringState st)
{
    GList *l = transports_copy(self);
    for (GList *i = l; i; i = i->next)
        gst_webrtc_ice_transport_gathering_state_change(i->data, st);
    g_list_free_full(l, gst_object_unref);
}

static void on_gathering_done(SluiceAgent *agent, guint stream, GWeakRef *weak)
{
    GstSluiceWebRTCICEStream *self = g_weak_ref_get(weak);
    (void)agent;
    if (!self)
        return;
    if (stream == GST_WEBRTC_ICE_STREAM(self)->stream_id) {
        GST_DEBUG_OBJECT(self, "stream %u gathered", stream);
        g_mutex_lock(&self->lock);
        self->gathered = TRUE;
        g_mutex_unlock(&self->lock);
        set_gathering_state(self, GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE);
    }
    gst_object_unref(self);
}

/* ------------------------------------------------------------------------ */
/* GstWebRTCICEStream */

static GstWebRTCICETransport *find_transport(GstWebRTCICEStream *stream,
                                             GstWebRTCICEComponent component)
{
    GstSluiceWebRTCICEStream *self = GST_SLUICE_WEBRTC_ICE_STREAM(stream);
    GstWebRTCICETransport *t = NULL;

    /* Streams have one component: webrtcbin 1.22 requires rtcp-mux
     * (RFC 8843 bundles carry RTCP on the RTP component too). */
    if (component != GST_WEBRTC_ICE_COMPONENT_RTP) {
        GST_WARNING_OBJECT(self, "only the RTP component exists (rtcp-mux)");
        return NULL;
    }
    g_mutex_lock(&self->lock);
    for (GList *l = self->transports; l; l = l->next) {
        if (GST_WEBRTC_ICE_TRANSPORT(l->data)->component == component) {
            t = gst_object_ref(l->data);
            break;
        }
    }
    if (!t) {
        t = GST_WEBRTC_ICE_TRANSPORT(
            gst_sluice_webrtc_ice_transport_new(self->agent, stream->stream_id, component));
        gst_object_ref_sink(t);
        if (self->gathered)
            t->gathering_state = GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE;
        else if (self->gathering_started)
            t->gathering_state = GST_WEBRTC_ICE_GATHERING_STATE_GATHERING;
        self->transports = g_list_prepend(self->transports, gst_object_ref(t));
    }
    g_mutex_unlock(&self->lock);
    return t; /* transfer full */
}

static gboolean gather_candidates(GstWebRTCICEStream *stream)
{
    GstSluiceWebRTCICEStream *self = GST_SLUICE_WEBRTC_ICE_STREAM(stream);
    GstSluiceWebRTCICE *ice;
    GError *err = NULL;
    gboolean ok;

    /* webrtcbin asks again on every local description: gather once (an ICE
     * restart gathers again by itself, with new credentials). */
    g_mutex_lock(&self->lock);
    if (self->gathering_started) {
        g_mutex_unlock(&self->lock);
        return TRUE;
    }
    self->gathering_started = TRUE;
    g_mutex_unlock(&self->lock);

    ice = g_weak_ref_get(&self->ice);
    if (!ice)
        return FALSE;
    ok = gst_sluice_webrtc_ice_prepare_gather(ice, &err);
    gst_object_unref(ice);
    if (ok) {
        /* Before gathering: "gathering-done" may follow at once. */
        set_gathering_state(self, GST_WEBRTC_ICE_GATHERING_STATE_GATHERING);
        ok = sluice_agent_gather(self->agent, stream->stream_id, &err);
    }
    if (!ok) {
        GST_ERROR_OBJECT(self, "cannot gather candidates for stream %u: %s", stream->stream_id,
                         err->message);
        g_error_free(err);
        g_mutex_lock(&self->lock);
        self->gathering_started = FALSE;
        g_mutex_unlock(&self->lock);
    }
    return ok;
}

gboolean gst_sluice_webrtc_ice_stream_gathering_started(GstSluiceWebRTCICEStream *self)
{
    gboolean started;
    g_mutex_lock(&self->lock);
    started = self->gathering_started;
    g_mutex_unlock(&self->lock);
    return started;
}

void gst_sluice_webrtc_ice_stream_set_tos(GstSluiceWebRTCICEStream *self, guint tos)
{
    GError *err = NULL;
    gint n = sluice_agent_set_tos(self->agent, GST_WEBRTC_ICE_STREAM(self)->stream_id,
                                  MIN(tos, 255), &err);
    if (n < 0) {
        GST_WARNING_OBJECT(self, "%s", err->message);
        g_error_free(err);
    } else {
        GST_DEBUG_OBJECT(self, "TOS 0x%02x on %d sockets", tos, n);
    }
}

/* ------------------------------------------------------------------------ */
/* GObject */

static void gst_sluice_webrtc_ice_stream_constructed(GObject *obj)
{
    GstSluiceWebRTCICEStream *self = GST_SLUICE_WEBRTC_ICE_STREAM(obj);

    G_OBJECT_CLASS(gst_sluice_webrtc_ice_stream_parent_class)->constructed(obj);
    g_assert(self->agent != NULL);
    self->gathering_done_id =
        g_signal_connect_data(self->agent, "gathering-done", G_CALLBACK(on_gathering_done),
                              gst_sluice_weak_new(self), gst_sluice_weak_free, 0);
}

static void gst_sluice_webrtc_ice_stream_dispose(GObject *obj)
{
    GstSluiceWebRTCICEStream *self = GST_SLUICE_WEBRTC_ICE_STREAM(obj);
    GList *l;
    if (self->gathering_done_id)
        g_signal_handler_disconnect(self->agent, self->gathering_done_id);
    self->gathering_done_id = 0;
    g_mutex_lock(&self->lock);
    l = self->transports;
    self->transports = NULL;
    g_mutex_unlock(&self->lock);
    g_list_free_full(l, gst_object_unref);
    G_OBJECT_CLASS(gst_sluice_webrtc_ice_stream_parent_class)->dispose(obj);
}

static void gst_sluice_webrtc_ice_stream_finalize(GObject *obj)
{
    GstSluiceWebRTCICEStream *self = GST_SLUICE_WEBRTC_ICE_STREAM(obj);
    g_weak_ref_clear(&self->ice);
    g_clear_object(&self->agent);
    g_mutex_clear(&self->lock);
    G_OBJECT_CLASS(gst_sluice_webrtc_ice_stream_parent_class)->finalize(obj);
}

static void gst_sluice_webrtc_ice_stream_set_property(GObject *obj, guint id, const GValue *v,
                                                      GParamSpec *ps)
{
    GstSluiceWebRTCICEStream *self = GST_SLUICE_WEBRTC_ICE_STREAM(obj);
    switch (id) {
    case PROP_ICE:
        g_weak_ref_set(&self->ice, g_value_get_object(v));
        break;
    case PROP_AGENT:
        self->agent = g_value_dup_object(v);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    }
}

static void gst_sluice_webrtc_ice_stream_get_property(GObject *obj, guint id, GValue *v,
                                                      GParamSpec *ps)
{
    GstSluiceWebRTCICEStream *self = GST_SLUICE_WEBRTC_ICE_STREAM(obj);
    switch (id) {
    case PROP_ICE:
        g_value_take_object(v, g_weak_ref_get(&self->ice));
        break;
    case PROP_AGENT:
        g_value_set_object(v, self->agent);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    }
}

static void gst_sluice_webrtc_ice_stream_class_init(GstSluiceWebRTCICEStreamClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GstWebRTCICEStreamClass *sc = GST_WEBRTC_ICE_STREAM_CLASS(klass);
    const GParamFlags co = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

    oc->constructed = gst_sluice_webrtc_ice_stream_constructed;
    oc->dispose = gst_sluice_webrtc_ice_stream_dispose;
    oc->finalize = gst_sluice_webrtc_ice_stream_finalize;
    oc->set_property = gst_sluice_webrtc_ice_stream_set_property;
    oc->get_property = gst_sluice_webrtc_ice_stream_get_property;
    sc->find_transport = find_transport;
    sc->gather_candidates = gather_candidates;

    g_object_class_install_property(
        oc, PROP_ICE,
        g_param_spec_object("ice", "ICE", "The GstSluiceWebRTCICE this stream belongs to",
                            GST_TYPE_SLUICE_WEBRTC_ICE, co));
    g_object_class_install_property(oc, PROP_AGENT,
                                    g_param_spec_object("agent", "Agent",
                                                        "The SluiceAgent of the stream",
                                                        SLUICE_TYPE_AGENT, co));
}

static void gst_sluice_webrtc_ice_stream_init(GstSluiceWebRTCICEStream *self)
{
    g_weak_ref_init(&self->ice, NULL);
    g_mutex_init(&self->lock);
}

GstSluiceWebRTCICEStream *gst_sluice_webrtc_ice_stream_new(GstSluiceWebRTCICE *ice,
                                                           SluiceAgent *agent, guint stream_id)
{
    return g_object_new(GST_TYPE_SLUICE_WEBRTC_ICE_STREAM, "ice", ice, "agent", agent, "stream-id",
                        stream_id, NULL);
}
