/* SPDX-License-Identifier: MIT */
/* GstSluiceWebRTCICE: webrtcbin's ICE agent on one SluiceAgent (GStreamer
 * 1.22's GstWebRTCICE). webrtcbin m-lines (sessions) map to agent streams
 * of one component; candidates travel as SDP attribute lines both ways.
 * The agent runs on this object's own thread and GMainContext, as libnice's
 * backend does: webrtcbin does real work in its callbacks (DTLS state
 * changes on notify::state), which must not hold up the process-wide
 * sluice-gio thread that icesrc/icesink agents elsewhere share. */
#include <dlfcn.h>
#include <string.h>

#include "gstsluicewebrtcice.h"
#include "gstsluicewebrtcicestream.h"

GST_DEBUG_CATEGORY(gst_sluice_webrtc_ice_debug);
#define GST_CAT_DEFAULT gst_sluice_webrtc_ice_debug

/* Remote candidates kept for statistics, per ICE object. */
#define MAX_REMOTE_CANDIDATES 256

/* ------------------------------------------------------------------------ */
/* The agent's thread: a GMainLoop on a private context. It lives as long as
 * the agent (a weak reference stops it), so transports and elements that
 * outlive this object still have a running agent. */

typedef struct {
    GMainContext *ctx;
    GMainLoop *loop;
    GThread *thread;
    gboolean detached; /* stopped from its own thread: it frees itself */
} IceLoop;

static gpointer loop_run(gpointer data)
{
    IceLoop *l = data;
    g_main_context_push_thread_default(l->ctx);
    g_main_loop_run(l->loop);
    g_main_context_pop_thread_default(l->ctx);
    if (l->detached) {
        g_main_loop_unref(l->loop);
        g_main_context_unref(l->ctx);
        g_free(l);
    }
    return NULL;
}

static IceLoop *loop_start(const gchar *name)
{
    IceLoop *l = g_new0(IceLoop, 1);
    l->ctx = g_main_context_new();
    l->loop = g_main_loop_new(l->ctx, FALSE);
    l->thread = g_thread_new(name, loop_run, l);
    return l;
}

static gboolean loop_quit(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

/* The agent is gone (weak notify, any thread, possibly the loop's own). A
 * quit dispatched inside the running loop is never lost, even if the loop
 * has not started running yet. */
static void loop_stop(gpointer data, GObject *agent)
{
    IceLoop *l = data;
    (void)agent;
    g_main_context_invoke_full(l->ctx, G_PRIORITY_HIGH, loop_quit, g_main_loop_ref(l->loop),
                               (GDestroyNotify)g_main_loop_unref);
    if (g_thread_self() == l->thread) {
        l->detached = TRUE;
        g_thread_unref(l->thread);
        return;
    }
    g_thread_join(l->thread);
    g_main_loop_unref(l->loop);
    g_main_context_unref(l->ctx);
    g_free(l);
}

/* ------------------------------------------------------------------------ */

/* set_on_ice_candidate's callback, shared with a call in flight on the
 * agent's thread while the application replaces it. */
typedef struct {
    gint ref;
    GstWebRTCICEOnCandidateFunc func;
    gpointer data;
    GDestroyNotify notify;
} CandidateCb;

static CandidateCb *cb_ref(CandidateCb *cb)
{
    if (cb)
        g_atomic_int_inc(&cb->ref);
    return cb;
}

static void cb_unref(CandidateCb *cb)
{
    if (cb && g_atomic_int_dec_and_test(&cb->ref)) {
        if (cb->notify)
            cb->notify(cb->data);
        g_free(cb);
    }
}

typedef struct {
    guint session_id; /* webrtcbin's m-line */
    GstSluiceWebRTCICEStream *stream;
} StreamItem;

typedef struct {
    guint stream_id;
    gchar *line;
} RemoteCand;

struct _GstSluiceWebRTCICE {
    GstWebRTCICE parent;
    SluiceAgent *agent;
    gulong handlers[4];
    GMutex lock;        /* guards what follows */
    GArray *streams;    /* StreamItem */
    GPtrArray *remotes; /* RemoteCand*, for get_remote_candidates */
    CandidateCb *on_candidate;
    gchar *stun_server, *turn_server, *http_proxy;
    GPtrArray *turn_servers; /* add_turn_server() URIs */
    GHashTable *applied;     /* server URIs given to the agent */
    gboolean ice_tcp, ice_udp;
    gboolean adopted;
};

enum { PROP_0, PROP_AGENT, PROP_ICE_TCP, PROP_ICE_UDP };

G_DEFINE_TYPE_WITH_CODE(GstSluiceWebRTCICE, gst_sluice_webrtc_ice, GST_TYPE_WEBRTC_ICE,
                        GST_DEBUG_CATEGORY_INIT(gst_sluice_webrtc_ice_debug, "sluicewebrtcice", 0,
                                                "sluice as webrtcbin's ICE agent"))

static void remote_cand_free(gpointer p)
{
    RemoteCand *r = p;
    g_free(r->line);
    g_free(r);
}

static void stream_item_clear(gpointer p)
{
    StreamItem *it = p;
    gst_clear_object(&it->stream);
}

/* Lock held. */
static StreamItem *find_item(GstSluiceWebRTCICE *self, guint stream_id, gint session_id)
{
    for (guint i = 0; i < self->streams->len; i++) {
        StreamItem *it = &g_array_index(self->streams, StreamItem, i);
        if (session_id >= 0 && it->session_id == (guint)session_id)
            return it;
        if (session_id < 0 && GST_WEBRTC_ICE_STREAM(it->stream)->stream_id == stream_id)
            return it;
    }
    return NULL;
}

static void remember_remote(GstSluiceWebRTCICE *self, guint stream_id, const gchar *line)
{
    RemoteCand *r;
    if (g_str_has_prefix(line, "a="))
        line += 2;
    g_mutex_lock(&self->lock);
    for (guint i = 0; i < self->remotes->len; i++) {
        RemoteCand *o = g_ptr_array_index(self->remotes, i);
        if (o->stream_id == stream_id && g_str_equal(o->line, line)) {
            g_mutex_unlock(&self->lock);
            return;
        }
    }
    if (self->remotes->len < MAX_REMOTE_CANDIDATES) {
        r = g_new0(RemoteCand, 1);
        r->stream_id = stream_id;
        r->line = g_strstrip(g_strdup(line));
        g_ptr_array_add(self->remotes, r);
    }
    g_mutex_unlock(&self->lock);
}

/* ------------------------------------------------------------------------ */
/* Agent signals (this object's thread, no lock held). */

static void on_new_candidate(SluiceAgent *agent, guint stream_id, guint component,
                             const gchar *line, GWeakRef *weak)
{
    GstSluiceWebRTCICE *self = g_weak_ref_get(weak);
    StreamItem *it;
    CandidateCb *cb = NULL;
    guint session = 0;
    (void)agent;
    (void)component;
    if (!self)
        return;
    g_mutex_lock(&self->lock);
    it = find_item(self, stream_id, -1);
    if (it) {
        session = it->session_id;
        cb = cb_ref(self->on_candidate);
    }
    g_mutex_unlock(&self->lock);
    if (cb && cb->func) {
        /* As libnice's backend: an SDP attribute, "a=candidate:..."
         * (webrtcbin strips the "a=" for its on-ice-candidate signal). */
        gchar *attr = g_strconcat("a=", line, NULL);
        GST_LOG_OBJECT(self, "session %u: %s", session, attr);
        cb->func(GST_WEBRTC_ICE(self), session, attr, cb->data);
        g_free(attr);
    }
    cb_unref(cb);
    gst_object_unref(self);
}

static void on_remote_prflx(SluiceAgent *agent, guint stream_id, guint component, const gchar *line,
                            GWeakRef *weak)
{
    GstSluiceWebRTCICE *self = g_weak_ref_get(weak);
    (void)agent;
    (void)component;
    if (!self)
        return;
    remember_remote(self, stream_id, line);
    gst_object_unref(self);
}

static void on_server_error(SluiceAgent *agent, const gchar *server, gint code, const gchar *text,
                            GWeakRef *weak)
{
    GstSluiceWebRTCICE *self = g_weak_ref_get(weak);
    (void)agent;
    if (!self)
        return;
    GST_WARNING_OBJECT(self, "server %s: %s (%d)", server, text, code);
    gst_object_unref(self);
}

static void on_consent_lost(SluiceAgent *agent, guint stream_id, guint component, GWeakRef *weak)
{
    GstSluiceWebRTCICE *self = g_weak_ref_get(weak);
    (void)agent;
    if (!self)
        return;
    GST_WARNING_OBJECT(self, "stream %u component %u: consent lost (RFC 7675)", stream_id,
                       component);
    gst_object_unref(self);
}

GWeakRef *gst_sluice_weak_new(gpointer obj)
{
    GWeakRef *w = g_new0(GWeakRef, 1);
    g_weak_ref_init(w, obj);
    return w;
}

void gst_sluice_weak_free(gpointer data, GClosure *closure)
{
    (void)closure;
    g_weak_ref_clear(data);
    g_free(data);
}

/* ------------------------------------------------------------------------ */
/* Servers: kept as given, handed to the agent before each gathering (the
 * agent uses servers for the bases gathered after they are added). */

/* "stun:", "turn:" and "turns:" URIs as webrtcbin users write them (RFC
 * 7064, RFC 7065, with "//" and "user:pass@" as libnice accepts). TURN
 * needs credentials, as libnice's backend requires. */
static gboolean uri_ok(const gchar *uri, gboolean turn)
{
    const gchar *p, *at, *q;
    if (!uri)
        return FALSE;
    if (turn && g_str_has_prefix(uri, "turns:"))
        p = uri + 6;
    else if (g_str_has_prefix(uri, turn ? "turn:" : "stun:"))
        p = uri + 5;
    else
        return FALSE;
    if (g_str_has_prefix(p, "//"))
        p += 2;
    q = strchr(p, '?');
    at = strrchr(p, '@');
    if (q && at > q)
        return FALSE;
    if (turn && (!at || !memchr(p, ':', (gsize)(at - p))))
        return FALSE;
    if (q && !g_str_equal(q, "?transport=udp") && !g_str_equal(q, "?transport=tcp"))
        return FALSE;
    p = at ? at + 1 : p;
    return *p && *p != ':' && *p != '?';
}

/* The URI without "user:pass@", for statistics. */
static gchar *uri_public(const gchar *uri)
{
    const gchar *colon = strchr(uri, ':'), *q = strchr(uri, '?'), *at = strrchr(uri, '@');
    const gchar *host;
    if (!colon || !at || (q && at > q))
        return g_strdup(uri);
    host = at + 1;
    return g_strdup_printf("%.*s%s", (int)(colon + 1 - uri), uri, host);
}

static const gchar *uri_relay_proto(const gchar *uri)
{
    if (g_str_has_prefix(uri, "turns:"))
        return "tls";
    if (g_str_has_suffix(uri, "?transport=tcp"))
        return "tcp";
    return "udp";
}

gboolean gst_sluice_webrtc_ice_prepare_gather(GstSluiceWebRTCICE *self, GError **error)
{
    GstWebRTCICE *ice = GST_WEBRTC_ICE(self);
    GPtrArray *todo = g_ptr_array_new_with_free_func(g_free);
    guint lo, hi;

    g_mutex_lock(&self->lock);
    if (!self->ice_udp) {
        g_mutex_unlock(&self->lock);
        g_ptr_array_unref(todo);
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_UNSUPPORTED,
                    "ice-udp is off and ICE-TCP (RFC 6544) is not supported: no candidates");
        return FALSE;
    }
    if (self->stun_server && !g_hash_table_contains(self->applied, self->stun_server))
        g_ptr_array_add(todo, g_strdup(self->stun_server));
    if (self->turn_server && !g_hash_table_contains(self->applied, self->turn_server))
        g_ptr_array_add(todo, g_strdup(self->turn_server));
    for (guint i = 0; i < self->turn_servers->len; i++) {
        const gchar *u = g_ptr_array_index(self->turn_servers, i);
        if (!g_hash_table_contains(self->applied, u))
            g_ptr_array_add(todo, g_strdup(u));
    }
    for (guint i = 0; i < todo->len; i++)
        g_hash_table_add(self->applied, g_strdup(g_ptr_array_index(todo, i)));
    g_mutex_unlock(&self->lock);

    /* Names resolve here, blocking, as in libnice's backend. A server that
     * does not work is logged: the others, and host candidates, still do. */
    for (guint i = 0; i < todo->len; i++) {
        const gchar *u = g_ptr_array_index(todo, i);
        GError *err = NULL;
        if (!sluice_agent_add_server(self->agent, u, NULL, NULL, &err)) {
            gchar *pub = uri_public(u);
            GST_WARNING_OBJECT(self, "server %s is not used: %s", pub, err->message);
            g_free(pub);
            g_error_free(err);
        }
    }
    g_ptr_array_unref(todo);

    /* min-rtp-port/max-rtp-port (the base class's properties). */
    GST_OBJECT_LOCK(self);
    lo = ice->min_rtp_port;
    hi = ice->max_rtp_port;
    GST_OBJECT_UNLOCK(self);
    if (lo > hi) {
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                    "invalid port range: min-rtp-port %u > max-rtp-port %u", lo, hi);
        return FALSE;
    }
    if (lo != 0 || hi != 65535)
        g_object_set(self->agent, "min-port", lo, "max-port", hi, NULL);
    return TRUE;
}

/* ------------------------------------------------------------------------ */
/* GstWebRTCICE */

static GstWebRTCICEStream *add_stream(GstWebRTCICE *ice, guint session_id)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    StreamItem item;
    GError *err = NULL;
    guint id;

    g_mutex_lock(&self->lock);
    if (find_item(self, 0, (gint)session_id)) {
        g_mutex_unlock(&self->lock);
        GST_ERROR_OBJECT(self, "stream already added with session_id=%u", session_id);
        return NULL;
    }
    g_mutex_unlock(&self->lock);

    /* One component: webrtcbin requires rtcp-mux. */
    id = sluice_agent_add_stream(self->agent, 1, &err);
    if (id == 0) {
        GST_ERROR_OBJECT(self, "cannot add a stream for session %u: %s", session_id, err->message);
        g_error_free(err);
        return NULL;
    }
    item.session_id = session_id;
    item.stream = gst_object_ref_sink(gst_sluice_webrtc_ice_stream_new(self, self->agent, id));
    g_mutex_lock(&self->lock);
    g_array_append_val(self->streams, item);
    g_mutex_unlock(&self->lock);
    GST_DEBUG_OBJECT(self, "session %u is agent stream %u", session_id, id);
    return GST_WEBRTC_ICE_STREAM(item.stream); /* transfer none: this object keeps it */
}

static GstWebRTCICETransport *find_transport(GstWebRTCICE *ice, GstWebRTCICEStream *stream,
                                             GstWebRTCICEComponent component)
{
    (void)ice;
    g_return_val_if_fail(GST_IS_SLUICE_WEBRTC_ICE_STREAM(stream), NULL);
    return gst_webrtc_ice_stream_find_transport(stream, component);
}

static gboolean gather_candidates(GstWebRTCICE *ice, GstWebRTCICEStream *stream)
{
    (void)ice;
    g_return_val_if_fail(GST_IS_SLUICE_WEBRTC_ICE_STREAM(stream), FALSE);
    return gst_webrtc_ice_stream_gather_candidates(stream);
}

/* The address of a candidate attribute (the 5th field), or NULL. */
static gchar **candidate_fields(const gchar *candidate)
{
    gchar **f;
    if (g_str_has_prefix(candidate, "a="))
        candidate += 2;
    if (!g_str_has_prefix(candidate, "candidate:"))
        return NULL;
    f = g_strsplit(candidate, " ", -1);
    if (g_strv_length(f) < 8) {
        g_strfreev(f);
        return NULL;
    }
    return f;
}

typedef struct {
    GWeakRef ice;
    guint stream_id;
    gchar **fields;
} MdnsLookup;

static void mdns_lookup_free(MdnsLookup *m)
{
    g_weak_ref_clear(&m->ice);
    g_strfreev(m->fields);
    g_free(m);
}

static void add_remote(GstSluiceWebRTCICE *self, guint stream_id, const gchar *candidate)
{
    GError *err = NULL;
    if (sluice_agent_add_remote_candidate(self->agent, stream_id, candidate, &err)) {
        remember_remote(self, stream_id, candidate);
        return;
    }
    if (g_error_matches(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_UNSUPPORTED))
        GST_DEBUG_OBJECT(self, "stream %u: %s: %s", stream_id, candidate, err->message);
    else
        GST_WARNING_OBJECT(self, "stream %u: cannot add %s: %s", stream_id, candidate,
                           err->message);
    g_error_free(err);
}

/* mDNS (".local") host candidates, as browsers offer them: resolved with
 * the system resolver (nss-mdns, when installed) on a short-lived thread of
 * their own, which holds only a weak reference (an unanswered mDNS query
 * takes seconds; nothing waits for it). */
static gpointer mdns_resolve(gpointer data)
{
    MdnsLookup *m = data;
    GResolver *r = g_resolver_get_default();
    GError *err = NULL;
    GList *addrs = g_resolver_lookup_by_name(r, m->fields[4], NULL, &err);
    GstSluiceWebRTCICE *self = g_weak_ref_get(&m->ice);
    if (self && addrs) {
        gchar *line;
        g_free(m->fields[4]);
        m->fields[4] = g_inet_address_to_string(addrs->data);
        line = g_strjoinv(" ", m->fields);
        GST_DEBUG_OBJECT(self, "mDNS candidate resolved: %s", line);
        add_remote(self, m->stream_id, line);
        g_free(line);
    } else if (self) {
        GST_WARNING_OBJECT(self,
                           "cannot resolve mDNS candidate %s: %s (the peer can still be "
                           "reached through a peer-reflexive candidate)",
                           m->fields[4], err ? err->message : "no address");
    }
    g_clear_error(&err);
    g_resolver_free_addresses(addrs);
    g_object_unref(r);
    if (self)
        gst_object_unref(self);
    mdns_lookup_free(m);
    return NULL;
}

static void add_candidate(GstWebRTCICE *ice, GstWebRTCICEStream *stream, const gchar *candidate)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    gchar **f;
    g_return_if_fail(GST_IS_SLUICE_WEBRTC_ICE_STREAM(stream));

    /* NULL (webrtcbin's empty add-ice-candidate) is end-of-candidates
     * (RFC 8838 §13). */
    if (!candidate || !*candidate || g_str_has_prefix(candidate, "a=end-of-candidates") ||
        g_str_has_prefix(candidate, "end-of-candidates")) {
        GST_DEBUG_OBJECT(self, "stream %u: end of candidates", stream->stream_id);
        sluice_agent_end_of_candidates(self->agent, stream->stream_id);
        return;
    }
    f = candidate_fields(candidate);
    if (!f) {
        GST_WARNING_OBJECT(self, "not a candidate attribute: %s", candidate);
        return;
    }
    if (g_ascii_strcasecmp(f[2], "udp") != 0) {
        GST_DEBUG_OBJECT(self, "ICE-TCP candidate ignored (not supported): %s", candidate);
    } else if (g_str_has_suffix(f[4], ".local")) {
        MdnsLookup *m = g_new0(MdnsLookup, 1);
        g_weak_ref_init(&m->ice, self);
        m->stream_id = stream->stream_id;
        m->fields = f;
        f = NULL;
        g_thread_unref(g_thread_new("sluice-mdns", mdns_resolve, m));
    } else {
        add_remote(self, stream->stream_id, candidate);
    }
    g_strfreev(f);
}

static gboolean set_local_credentials(GstWebRTCICE *ice, GstWebRTCICEStream *stream,
                                      const gchar *ufrag, const gchar *pwd)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    GError *err = NULL;
    gchar *u = NULL, *p = NULL;
    g_return_val_if_fail(GST_IS_SLUICE_WEBRTC_ICE_STREAM(stream), FALSE);
    g_return_val_if_fail(ufrag != NULL && pwd != NULL, FALSE);

    /* New credentials on a stream that gathered are an ICE restart (RFC
     * 8445 §9, webrtcbin's "ice-restart" offer option). */
    if (gst_sluice_webrtc_ice_stream_gathering_started(GST_SLUICE_WEBRTC_ICE_STREAM(stream)) &&
        sluice_agent_get_local_credentials(self->agent, stream->stream_id, &u, &p) &&
        (g_strcmp0(u, ufrag) != 0 || g_strcmp0(p, pwd) != 0)) {
        GST_INFO_OBJECT(self, "stream %u: new local credentials: ICE restart", stream->stream_id);
        if (!sluice_agent_restart(self->agent, stream->stream_id, &err)) {
            GST_ERROR_OBJECT(self, "ICE restart of stream %u: %s", stream->stream_id, err->message);
            g_clear_error(&err);
        }
    }
    g_free(u);
    g_free(p);
    if (!sluice_agent_set_local_credentials(self->agent, stream->stream_id, ufrag, pwd, &err)) {
        GST_ERROR_OBJECT(self, "stream %u: %s", stream->stream_id, err->message);
        g_error_free(err);
        return FALSE;
    }
    return TRUE;
}

static gboolean set_remote_credentials(GstWebRTCICE *ice, GstWebRTCICEStream *stream,
                                       const gchar *ufrag, const gchar *pwd)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    GError *err = NULL;
    g_return_val_if_fail(GST_IS_SLUICE_WEBRTC_ICE_STREAM(stream), FALSE);
    g_return_val_if_fail(ufrag != NULL && pwd != NULL, FALSE);
    if (!sluice_agent_set_remote_credentials(self->agent, stream->stream_id, ufrag, pwd, &err)) {
        GST_ERROR_OBJECT(self, "stream %u: %s", stream->stream_id, err->message);
        g_error_free(err);
        return FALSE;
    }
    return TRUE;
}

/* The string fields behind the setters and getters. */
static void set_field(GstSluiceWebRTCICE *self, gchar **field, const gchar *value)
{
    g_mutex_lock(&self->lock);
    g_free(*field);
    *field = g_strdup(value);
    g_mutex_unlock(&self->lock);
}

static gchar *get_field(GstSluiceWebRTCICE *self, gchar **field)
{
    gchar *s;
    g_mutex_lock(&self->lock);
    s = g_strdup(*field);
    g_mutex_unlock(&self->lock);
    return s;
}

static gboolean add_turn_server(GstWebRTCICE *ice, const gchar *uri)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    gboolean known = FALSE;
    if (!uri_ok(uri, TRUE)) {
        GST_ERROR_OBJECT(self,
                         "bad TURN server '%s': expected turn(s):[//]USER:PASS@HOST[:PORT]"
                         "[?transport=udp|tcp]",
                         uri);
        return FALSE;
    }
    g_mutex_lock(&self->lock);
    for (guint i = 0; i < self->turn_servers->len && !known; i++)
        known = g_str_equal(g_ptr_array_index(self->turn_servers, i), uri);
    if (!known)
        g_ptr_array_add(self->turn_servers, g_strdup(uri));
    g_mutex_unlock(&self->lock);
    return TRUE;
}

static void set_turn_server(GstWebRTCICE *ice, const gchar *uri)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    if (uri && !uri_ok(uri, TRUE)) {
        GST_ERROR_OBJECT(self,
                         "bad TURN server '%s': expected turn(s):[//]USER:PASS@HOST[:PORT]"
                         "[?transport=udp|tcp]",
                         uri);
        return;
    }
    set_field(self, &self->turn_server, uri);
}

static gchar *get_turn_server(GstWebRTCICE *ice)
{
    return get_field(GST_SLUICE_WEBRTC_ICE(ice), &GST_SLUICE_WEBRTC_ICE(ice)->turn_server);
}

static void set_stun_server(GstWebRTCICE *ice, const gchar *uri)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    if (uri && !uri_ok(uri, FALSE)) {
        GST_ERROR_OBJECT(self, "bad STUN server '%s': expected stun:[//]HOST[:PORT]", uri);
        return;
    }
    set_field(self, &self->stun_server, uri);
}

static gchar *get_stun_server(GstWebRTCICE *ice)
{
    return get_field(GST_SLUICE_WEBRTC_ICE(ice), &GST_SLUICE_WEBRTC_ICE(ice)->stun_server);
}

static void set_http_proxy(GstWebRTCICE *ice, const gchar *uri)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    if (uri)
        GST_WARNING_OBJECT(self,
                           "http-proxy %s is kept but not used: sluice does not reach "
                           "TURN servers through an HTTP proxy",
                           uri);
    set_field(self, &self->http_proxy, uri);
}

static gchar *get_http_proxy(GstWebRTCICE *ice)
{
    return get_field(GST_SLUICE_WEBRTC_ICE(ice), &GST_SLUICE_WEBRTC_ICE(ice)->http_proxy);
}

static void set_is_controller(GstWebRTCICE *ice, gboolean controller)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    g_object_set(self->agent, "controlling", controller, NULL);
}

static gboolean get_is_controller(GstWebRTCICE *ice)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    gboolean c = FALSE;
    g_object_get(self->agent, "controlling", &c, NULL);
    return c;
}

static void set_force_relay(GstWebRTCICE *ice, gboolean force_relay)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    g_object_set(self->agent, "relay-only", force_relay, NULL);
}

static void set_tos(GstWebRTCICE *ice, GstWebRTCICEStream *stream, guint tos)
{
    (void)ice;
    g_return_if_fail(GST_IS_SLUICE_WEBRTC_ICE_STREAM(stream));
    /* The agent keeps it for the stream's sockets, those of a later
     * gathering and its TURN connections included. */
    gst_sluice_webrtc_ice_stream_set_tos(GST_SLUICE_WEBRTC_ICE_STREAM(stream), tos);
}

/* webrtcbin 1.22 keeps the object given to its construct-only "ice-agent"
 * without taking a reference (g_value_get_object) and drops one in its
 * dispose. It adopts the agent by calling set_on_ice_candidate from its
 * constructed with its own callback and itself as user data. Turn that
 * into a real reference: a floating one is sunk (a C caller hands the new
 * object over), otherwise one is added (a binding or an application that
 * keeps its own reference, and drops it as usual). The callback is
 * recognised by the module it lives in (dladdr: safe for any pointer),
 * then the data by its type. */
static void adopt_by_webrtcbin(GstSluiceWebRTCICE *self, GstWebRTCICEOnCandidateFunc func,
                               gpointer user_data)
{
    Dl_info info;
    GType bin = g_type_from_name("GstWebRTCBin");
    if (self->adopted || !func || !user_data || bin == 0)
        return;
    if (!dladdr((void *)(gsize)func, &info) || !info.dli_fname ||
        !g_str_has_suffix(info.dli_fname, "/libgstwebrtc.so"))
        return;
    if (!G_TYPE_CHECK_INSTANCE_TYPE(user_data, bin))
        return;
    self->adopted = TRUE;
    if (g_object_is_floating(self))
        gst_object_ref_sink(self);
    else
        gst_object_ref(self);
    GST_DEBUG_OBJECT(self, "adopted by %" GST_PTR_FORMAT, user_data);
}

static void set_on_ice_candidate(GstWebRTCICE *ice, GstWebRTCICEOnCandidateFunc func,
                                 gpointer user_data, GDestroyNotify notify)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    CandidateCb *cb = g_new0(CandidateCb, 1), *old;
    cb->ref = 1;
    cb->func = func;
    cb->data = user_data;
    cb->notify = notify;
    g_mutex_lock(&self->lock);
    old = self->on_candidate;
    self->on_candidate = cb;
    adopt_by_webrtcbin(self, func, user_data);
    g_mutex_unlock(&self->lock);
    cb_unref(old);
}

/* Statistics. */

static GstWebRTCICECandidateStats *candidate_stats(GstSluiceWebRTCICE *self, guint stream_id,
                                                   const gchar *line, gboolean local)
{
    sluice_ice_candidate c;
    GstWebRTCICECandidateStats *st;
    char ip[SLUICE_ADDR_STRLEN];
    if (sluice_ice_candidate_parse(&c, line) != 0 ||
        sluice_addr_format(&c.addr, false, ip, sizeof ip) < 0)
        return NULL;
    st = g_new0(GstWebRTCICECandidateStats, 1);
    st->ipaddr = g_strdup(ip);
    st->port = c.addr.port;
    st->stream_id = stream_id;
    st->type = sluice_ice_cand_type_name(c.type); /* host, srflx, prflx, relay */
    st->proto = "udp";
    st->prio = c.priority;
    if (local && c.type == SLUICE_ICE_CAND_SRFLX && self->stun_server) {
        st->url = uri_public(self->stun_server);
    } else if (local && c.type == SLUICE_ICE_CAND_RELAY) {
        /* The candidate line does not say which server: the first one. */
        const gchar *t = self->turn_server;
        if (!t && self->turn_servers->len)
            t = g_ptr_array_index(self->turn_servers, 0);
        if (t) {
            st->url = uri_public(t);
            st->relay_proto = uri_relay_proto(t);
        }
    }
    if (!st->url)
        st->url = g_strdup("");
    return st;
}

static GstWebRTCICECandidateStats **get_local_candidates(GstWebRTCICE *ice,
                                                         GstWebRTCICEStream *stream)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    GPtrArray *out = g_ptr_array_new();
    gchar **lines = sluice_agent_get_local_candidates(self->agent, stream->stream_id);
    g_mutex_lock(&self->lock);
    for (gchar **l = lines; l && *l; l++) {
        GstWebRTCICECandidateStats *st = candidate_stats(self, stream->stream_id, *l, TRUE);
        if (st)
            g_ptr_array_add(out, st);
    }
    g_mutex_unlock(&self->lock);
    g_strfreev(lines);
    g_ptr_array_add(out, NULL);
    return (GstWebRTCICECandidateStats **)g_ptr_array_free(out, FALSE);
}

static GstWebRTCICECandidateStats **get_remote_candidates(GstWebRTCICE *ice,
                                                          GstWebRTCICEStream *stream)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    GPtrArray *out = g_ptr_array_new();
    g_mutex_lock(&self->lock);
    for (guint i = 0; i < self->remotes->len; i++) {
        RemoteCand *r = g_ptr_array_index(self->remotes, i);
        GstWebRTCICECandidateStats *st;
        if (r->stream_id != stream->stream_id)
            continue;
        st = candidate_stats(self, r->stream_id, r->line, FALSE);
        if (st)
            g_ptr_array_add(out, st);
    }
    g_mutex_unlock(&self->lock);
    g_ptr_array_add(out, NULL);
    return (GstWebRTCICECandidateStats **)g_ptr_array_free(out, FALSE);
}

static gboolean get_selected_pair(GstWebRTCICE *ice, GstWebRTCICEStream *stream,
                                  GstWebRTCICECandidateStats **local_stats,
                                  GstWebRTCICECandidateStats **remote_stats)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    gchar *l = NULL, *r = NULL;
    GstWebRTCICECandidateStats *ls = NULL, *rs = NULL;
    if (!stream || !sluice_agent_get_selected_pair(self->agent, stream->stream_id, 1, &l, &r))
        return FALSE;
    g_mutex_lock(&self->lock);
    ls = candidate_stats(self, stream->stream_id, l, TRUE);
    rs = candidate_stats(self, stream->stream_id, r, FALSE);
    g_mutex_unlock(&self->lock);
    g_free(l);
    g_free(r);
    if (!ls || !rs) {
        gst_webrtc_ice_candidate_stats_free(ls);
        gst_webrtc_ice_candidate_stats_free(rs);
        return FALSE;
    }
    *local_stats = ls;
    *remote_stats = rs;
    return TRUE;
}

/* The "add-local-ip-address" action signal (declared by GstWebRTCICE):
 * gather on this address instead of every interface; several may be
 * given, before gathering. */
static gboolean add_local_ip_address(GstWebRTCICE *ice, const gchar *address)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(ice);
    GError *err = NULL;
    if (!sluice_agent_add_local_address(self->agent, address, &err)) {
        GST_ERROR_OBJECT(self, "cannot add local address: %s", err->message);
        g_error_free(err);
        return FALSE;
    }
    return TRUE;
}

/* ------------------------------------------------------------------------ */
/* GObject */

static void gst_sluice_webrtc_ice_constructed(GObject *obj)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(obj);
    gchar *name = gst_object_get_name(GST_OBJECT(obj));
    gchar *tname = g_strdup_printf("sluice:%s", name);
    IceLoop *loop;

    G_OBJECT_CLASS(gst_sluice_webrtc_ice_parent_class)->constructed(obj);
    loop = loop_start(tname);
    self->agent = g_object_new(SLUICE_TYPE_AGENT, "main-context", loop->ctx, NULL);
    g_object_weak_ref(G_OBJECT(self->agent), loop_stop, loop);
    g_free(tname);
    g_free(name);

    self->handlers[0] =
        g_signal_connect_data(self->agent, "new-candidate", G_CALLBACK(on_new_candidate),
                              gst_sluice_weak_new(self), gst_sluice_weak_free, 0);
    self->handlers[1] =
        g_signal_connect_data(self->agent, "new-remote-candidate", G_CALLBACK(on_remote_prflx),
                              gst_sluice_weak_new(self), gst_sluice_weak_free, 0);
    self->handlers[2] =
        g_signal_connect_data(self->agent, "server-error", G_CALLBACK(on_server_error),
                              gst_sluice_weak_new(self), gst_sluice_weak_free, 0);
    self->handlers[3] =
        g_signal_connect_data(self->agent, "consent-lost", G_CALLBACK(on_consent_lost),
                              gst_sluice_weak_new(self), gst_sluice_weak_free, 0);
}

static void gst_sluice_webrtc_ice_dispose(GObject *obj)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(obj);
    CandidateCb *cb;
    if (self->agent) {
        for (guint i = 0; i < G_N_ELEMENTS(self->handlers); i++) {
            if (self->handlers[i])
                g_signal_handler_disconnect(self->agent, self->handlers[i]);
            self->handlers[i] = 0;
        }
    }
    g_mutex_lock(&self->lock);
    g_array_set_size(self->streams, 0);
    cb = self->on_candidate;
    self->on_candidate = NULL;
    g_mutex_unlock(&self->lock);
    cb_unref(cb);
    G_OBJECT_CLASS(gst_sluice_webrtc_ice_parent_class)->dispose(obj);
}

static void gst_sluice_webrtc_ice_finalize(GObject *obj)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(obj);
    /* Transports and elements may keep the agent (and its thread) alive. */
    g_clear_object(&self->agent);
    g_array_unref(self->streams);
    g_ptr_array_unref(self->remotes);
    g_ptr_array_unref(self->turn_servers);
    g_hash_table_unref(self->applied);
    g_free(self->stun_server);
    g_free(self->turn_server);
    g_free(self->http_proxy);
    g_mutex_clear(&self->lock);
    G_OBJECT_CLASS(gst_sluice_webrtc_ice_parent_class)->finalize(obj);
}

static void gst_sluice_webrtc_ice_set_property(GObject *obj, guint id, const GValue *v,
                                               GParamSpec *ps)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(obj);
    switch (id) {
    case PROP_ICE_TCP:
        g_mutex_lock(&self->lock);
        self->ice_tcp = g_value_get_boolean(v);
        g_mutex_unlock(&self->lock);
        if (self->ice_tcp)
            GST_WARNING_OBJECT(self, "ice-tcp: ICE-TCP candidates (RFC 6544) are not supported;"
                                     " only UDP candidates are gathered (TURN over TCP/TLS is "
                                     "configured with the TURN server URI)");
        break;
    case PROP_ICE_UDP:
        g_mutex_lock(&self->lock);
        self->ice_udp = g_value_get_boolean(v);
        g_mutex_unlock(&self->lock);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    }
}

static void gst_sluice_webrtc_ice_get_property(GObject *obj, guint id, GValue *v, GParamSpec *ps)
{
    GstSluiceWebRTCICE *self = GST_SLUICE_WEBRTC_ICE(obj);
    switch (id) {
    case PROP_AGENT:
        g_value_set_object(v, self->agent);
        break;
    case PROP_ICE_TCP:
        g_mutex_lock(&self->lock);
        g_value_set_boolean(v, self->ice_tcp);
        g_mutex_unlock(&self->lock);
        break;
    case PROP_ICE_UDP:
        g_mutex_lock(&self->lock);
        g_value_set_boolean(v, self->ice_udp);
        g_mutex_unlock(&self->lock);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    }
}

static void gst_sluice_webrtc_ice_class_init(GstSluiceWebRTCICEClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GstWebRTCICEClass *ic = GST_WEBRTC_ICE_CLASS(klass);
    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

    oc->constructed = gst_sluice_webrtc_ice_constructed;
    oc->dispose = gst_sluice_webrtc_ice_dispose;
    oc->finalize = gst_sluice_webrtc_ice_finalize;
    oc->set_property = gst_sluice_webrtc_ice_set_property;
    oc->get_property = gst_sluice_webrtc_ice_get_property;

    ic->add_stream = add_stream;
    ic->find_transport = find_transport;
    ic->gather_candidates = gather_candidates;
    ic->add_candidate = add_candidate;
    ic->set_local_credentials = set_local_credentials;
    ic->set_remote_credentials = set_remote_credentials;
    ic->add_turn_server = add_turn_server;
    ic->set_is_controller = set_is_controller;
    ic->get_is_controller = get_is_controller;
    ic->set_force_relay = set_force_relay;
    ic->set_stun_server = set_stun_server;
    ic->get_stun_server = get_stun_server;
    ic->set_turn_server = set_turn_server;
    ic->get_turn_server = get_turn_server;
    ic->set_http_proxy = set_http_proxy;
    ic->get_http_proxy = get_http_proxy;
    ic->set_tos = set_tos;
    ic->set_on_ice_candidate = set_on_ice_candidate;
    ic->get_local_candidates = get_local_candidates;
    ic->get_remote_candidates = get_remote_candidates;
    ic->get_selected_pair = get_selected_pair;

    g_object_class_install_property(
        oc, PROP_AGENT,
        g_param_spec_object("agent", "Agent",
                            "The SluiceAgent behind this object (read-only; its properties, "
                            "e.g. ca-file for turns: servers or ta, may be set before "
                            "gathering)",
                            SLUICE_TYPE_AGENT, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
    g_object_class_install_property(
        oc, PROP_ICE_TCP,
        g_param_spec_boolean("ice-tcp", "ICE TCP",
                             "ICE-TCP candidates (RFC 6544): not supported, TRUE only logs so",
                             FALSE, rw));
    g_object_class_install_property(
        oc, PROP_ICE_UDP,
        g_param_spec_boolean("ice-udp", "ICE UDP", "Gather UDP candidates (FALSE: none at all)",
                             TRUE, rw));

    g_signal_override_class_handler("add-local-ip-address", G_TYPE_FROM_CLASS(klass),
                                    G_CALLBACK(add_local_ip_address));
}

static void gst_sluice_webrtc_ice_init(GstSluiceWebRTCICE *self)
{
    g_mutex_init(&self->lock);
    self->streams = g_array_new(FALSE, TRUE, sizeof(StreamItem));
    g_array_set_clear_func(self->streams, stream_item_clear);
    self->remotes = g_ptr_array_new_with_free_func(remote_cand_free);
    self->turn_servers = g_ptr_array_new_with_free_func(g_free);
    self->applied = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    self->ice_udp = TRUE;
}

GstWebRTCICE *gst_sluice_webrtc_ice_new(const gchar *name)
{
    return g_object_new(GST_TYPE_SLUICE_WEBRTC_ICE, "name", name, NULL);
}
