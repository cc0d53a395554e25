/* SPDX-License-Identifier: MIT */
/* GstSluiceWebRTCICETransport: a component of an agent stream as webrtcbin
 * sees it. Its src and sink are icesrc and icesink bound to the agent
 * (webrtcbin puts them in its transport bins: the sink with sync and async
 * off, the src locked in PLAYING from the bin's NULL->READY). Its state,
 * role and selected pair follow the agent's signals, which run on the
 * owning GstSluiceWebRTCICE's thread; the handlers hold only a weak
 * reference, so a transport may go away while the agent lives on. */
#include "gstsluicewebrtcicetransport.h"

#include "gsticesink.h"
#include "gsticesrc.h"

#define GST_CAT_DEFAULT gst_sluice_webrtc_ice_debug

/* GstWebRTCICEComponent counts from 0 (RTP), ICE from 1 (RFC 8445 §4). */
#define ICE_COMPONENT(t) ((guint)GST_WEBRTC_ICE_TRANSPORT(t)->component + 1)

struct _GstSluiceWebRTCICETransport {
    GstWebRTCICETransport parent;
    SluiceAgent *agent;
    guint stream_id;
    gulong handlers[3];
};

enum { PROP_0, PROP_AGENT, PROP_STREAM_ID };

G_DEFINE_TYPE(GstSluiceWebRTCICETransport, gst_sluice_webrtc_ice_transport,
              GST_TYPE_WEBRTC_ICE_TRANSPORT)

static GstWebRTCICEConnectionState connection_state(sluice_ice_state s)
{
    switch (s) {
    case SLUICE_ICE_NEW:
        return GST_WEBRTC_ICE_CONNECTION_STATE_NEW;
    case SLUICE_ICE_CHECKING:
        return GST_WEBRTC_ICE_CONNECTION_STATE_CHECKING;
    case SLUICE_ICE_CONNECTED:
        return GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED;
    case SLUICE_ICE_COMPLETED:
        return GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED;
    case SLUICE_ICE_DISCONNECTED:
        return GST_WEBRTC_ICE_CONNECTION_STATE_DISCONNECTED;
    case SLUICE_ICE_FAILED:
    default:
        return GST_WEBRTC_ICE_CONNECTION_STATE_FAILED;
    }
}

/* ------------------------------------------------------------------------ */
/* Agent signals (the ICE object's thread, no lock held). */

static void on_state(SluiceAgent *agent, guint stream, gint state, GWeakRef *weak)
{
    GstSluiceWebRTCICETransport *self = g_weak_ref_get(weak);
    (void)agent;
    if (!self)
        return;
    if (stream == self->stream_id) {
        GST_DEBUG_OBJECT(self, "stream %u: %s", stream, sluice_ice_state_name(state));
        gst_webrtc_ice_transport_connection_state_change(GST_WEBRTC_ICE_TRANSPORT(self),
                                                         connection_state(state));
    }
    gst_object_unref(self);
}

static void on_selected(SluiceAgent *agent, guint stream, guint component, const gchar *local,
                        const gchar *remote, GWeakRef *weak)
{
    GstSluiceWebRTCICETransport *self = g_weak_ref_get(weak);
    (void)agent;
    if (!self)
        return;
    if (stream == self->stream_id && component == ICE_COMPONENT(self)) {
        GST_INFO_OBJECT(self, "selected pair: %s <-> %s", local, remote);
        gst_webrtc_ice_transport_selected_pair_change(GST_WEBRTC_ICE_TRANSPORT(self));
    }
    gst_object_unref(self);
}

static void on_role(SluiceAgent *agent, gboolean controlling, GWeakRef *weak)
{
    GstSluiceWebRTCICETransport *self = g_weak_ref_get(weak);
    (void)agent;
    if (!self)
        return;
    /* RFC 8445 §7.3.1.1: a role conflict resolved on the wire. */
    GST_OBJECT_LOCK(self);
    GST_WEBRTC_ICE_TRANSPORT(self)->role =
        controlling ? GST_WEBRTC_ICE_ROLE_CONTROLLING : GST_WEBRTC_ICE_ROLE_CONTROLLED;
    GST_OBJECT_UNLOCK(self);
    gst_object_unref(self);
}

/* ------------------------------------------------------------------------ */

/* The elements come from the registry when the plugin is registered there
 * (their factory is then set, as for any element); an application that
 * linked the plugin library without registering it gets them directly. */
static GstElement *make_element(const gchar *factory, GType type)
{
    GstElement *e = gst_element_factory_make(factory, NULL);
    if (!e)
        e = g_object_new(type, NULL);
    return gst_object_ref_sink(e);
}

static void gst_sluice_webrtc_ice_transport_constructed(GObject *obj)
{
    GstSluiceWebRTCICETransport *self = GST_SLUICE_WEBRTC_ICE_TRANSPORT(obj);
    GstWebRTCICETransport *ice = GST_WEBRTC_ICE_TRANSPORT(obj);
    gboolean controlling = FALSE;

    G_OBJECT_CLASS(gst_sluice_webrtc_ice_transport_parent_class)->constructed(obj);
    g_assert(self->agent != NULL);

    g_object_get(self->agent, "controlling", &controlling, NULL);
    ice->role = controlling ? GST_WEBRTC_ICE_ROLE_CONTROLLING : GST_WEBRTC_ICE_ROLE_CONTROLLED;
    ice->state = connection_state(sluice_agent_get_state(self->agent, self->stream_id));
    ice->gathering_state = GST_WEBRTC_ICE_GATHERING_STATE_NEW;

    self->handlers[0] = g_signal_connect_data(self->agent, "state-changed", G_CALLBACK(on_state),
                                              gst_sluice_weak_new(self), gst_sluice_weak_free, 0);
    self->handlers[1] =
        g_signal_connect_data(self->agent, "selected-pair-changed", G_CALLBACK(on_selected),
                              gst_sluice_weak_new(self), gst_sluice_weak_free, 0);
    self->handlers[2] = g_signal_connect_data(self->agent, "role-changed", G_CALLBACK(on_role),
                                              gst_sluice_weak_new(self), gst_sluice_weak_free, 0);

    /* webrtcbin's transport bins link "src" and "sink", the pads of icesrc
     * and icesink. The sink must not wait for preroll or a clock: it sends
     * DTLS and media as they come (icesink's own defaults, set again).
     * With fatal-errors off, ICE failure, consent loss and TURN
     * authentication failures are bus warnings, not errors (on which
     * applications quit): webrtcbin reports them through its connection
     * states, from this transport's state, and the application may restart
     * ICE, as with libnice. */
    ice->src = make_element("icesrc", GST_TYPE_ICE_SRC);
    /* One buffer per push: with buffer lists, webrtcbin's receive chain
     * (GStreamer 1.22) unreffed a buffer once too often in about one run in
     * ten of the TURN-over-TCP/TLS tests, where DTLS flights arrive
     * together; 0 in 10 without (docs/webrtcbin.md). */
    g_object_set(ice->src, "agent", self->agent, "stream", self->stream_id, "component",
                 ICE_COMPONENT(self), "buffer-lists", FALSE, "fatal-errors", FALSE, NULL);
    ice->sink = make_element("icesink", GST_TYPE_ICE_SINK);
    g_object_set(ice->sink, "agent", self->agent, "stream", self->stream_id, "component",
                 ICE_COMPONENT(self), "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE,
                 "fatal-errors", FALSE, NULL);
}

static void gst_sluice_webrtc_ice_transport_dispose(GObject *obj)
{
    GstSluiceWebRTCICETransport *self = GST_SLUICE_WEBRTC_ICE_TRANSPORT(obj);
    GstWebRTCICETransport *ice = GST_WEBRTC_ICE_TRANSPORT(obj);
    for (guint i = 0; i < G_N_ELEMENTS(self->handlers); i++) {
        if (self->handlers[i])
            g_signal_handler_disconnect(self->agent, self->handlers[i]);
        self->handlers[i] = 0;
    }
    /* The elements' own references; webrtcbin's bins hold theirs. */
    gst_clear_object(&ice->src);
    gst_clear_object(&ice->sink);
    G_OBJECT_CLASS(gst_sluice_webrtc_ice_transport_parent_class)->dispose(obj);
}

static void gst_sluice_webrtc_ice_transport_finalize(GObject *obj)
{
    GstSluiceWebRTCICETransport *self = GST_SLUICE_WEBRTC_ICE_TRANSPORT(obj);
    g_clear_object(&self->agent);
    G_OBJECT_CLASS(gst_sluice_webrtc_ice_transport_parent_class)->finalize(obj);
}

static void gst_sluice_webrtc_ice_transport_set_property(GObject *obj, guint id, const GValue *v,
                                                         GParamSpec *ps)
{
    GstSluiceWebRTCICETransport *self = GST_SLUICE_WEBRTC_ICE_TRANSPORT(obj);
    switch (id) {
    case PROP_AGENT:
        self->agent = g_value_dup_object(v);
        break;
    case PROP_STREAM_ID:
        self->stream_id = g_value_get_uint(v);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    }
}

static void gst_sluice_webrtc_ice_transport_get_property(GObject *obj, guint id, GValue *v,
                                                         GParamSpec *ps)
{
    GstSluiceWebRTCICETransport *self = GST_SLUICE_WEBRTC_ICE_TRANSPORT(obj);
    switch (id) {
    case PROP_AGENT:
        g_value_set_object(v, self->agent);
        break;
    case PROP_STREAM_ID:
        g_value_set_uint(v, self->stream_id);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    }
}

static void gst_sluice_webrtc_ice_transport_class_init(GstSluiceWebRTCICETransportClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    const GParamFlags co = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

    oc->constructed = gst_sluice_webrtc_ice_transport_constructed;
    oc->dispose = gst_sluice_webrtc_ice_transport_dispose;
    oc->finalize = gst_sluice_webrtc_ice_transport_finalize;
    oc->set_property = gst_sluice_webrtc_ice_transport_set_property;
    oc->get_property = gst_sluice_webrtc_ice_transport_get_property;

    g_object_class_install_property(
        oc, PROP_AGENT,
        g_param_spec_object("agent", "Agent", "The SluiceAgent this transport is a component of",
                            SLUICE_TYPE_AGENT, co));
    g_object_class_install_property(
        oc, PROP_STREAM_ID,
        g_param_spec_uint("stream-id", "Stream id", "The agent's stream", 1, G_MAXUINT, 1, co));
}

static void gst_sluice_webrtc_ice_transport_init(GstSluiceWebRTCICETransport *self)
{
    (void)self;
}

GstSluiceWebRTCICETransport *gst_sluice_webrtc_ice_transport_new(SluiceAgent *agent,
                                                                 guint stream_id,
                                                                 GstWebRTCICEComponent component)
{
    return g_object_new(GST_TYPE_SLUICE_WEBRTC_ICE_TRANSPORT, "agent", agent, "stream-id",
                        stream_id, "component", component, NULL);
}
