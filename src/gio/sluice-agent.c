/* SPDX-License-Identifier: MIT */
/* SluiceAgent: the ICE agent core driven on a GMainContext (sluice-agent.h).
 *
 * Locking: `lock` serialises the core (design.md: single owner, the driver
 * serialises access) and guards the tables below. It is held only around
 * core calls and non-blocking sends; signals and receive callbacks run on
 * the context thread after it is released. The media data path takes it
 * only for STUN/TURN packets and statistics, never per media packet (except
 * over TLS to a TURN server, where the core encrypts). Connections to TURN
 * servers over TCP and TLS are in agent-stream.c. */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "agent-internal.h"
#include "sluice-gio.h"

#define MAX_LOCAL_ADDRS 16
#define RECV_BATCH 32
#define RECV_BUF SLUICE_AGENT_RECV_BUF

typedef struct {
    guint stream;
    gchar *line;
} LocalCand;

static void local_cand_free(gpointer p)
{
    LocalCand *lc = p;
    g_free(lc->line);
    g_free(lc);
}

enum {
    PROP_0,
    PROP_MAIN_CONTEXT,
    PROP_CLOCK,
    PROP_CONTROLLING,
    PROP_TA,
    PROP_RELAY_ONLY,
    PROP_INTERFACES,
    PROP_EXCLUDE_INTERFACES,
    PROP_IPV4,
    PROP_IPV6,
    PROP_INCLUDE_LOOPBACK,
    PROP_MIN_PORT,
    PROP_MAX_PORT,
    PROP_SOFTWARE,
    PROP_CA_FILE,
    N_PROPS
};

enum {
    SIG_NEW_CANDIDATE,
    SIG_GATHERING_DONE,
    SIG_STATE_CHANGED,
    SIG_SELECTED_PAIR_CHANGED,
    SIG_CONSENT_LOST,
    SIG_ROLE_CHANGED,
    SIG_SERVER_ERROR,
    SIG_NEW_REMOTE_CANDIDATE,
    N_SIGNALS
};

static GParamSpec *props[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_TYPE(SluiceAgent, sluice_agent, G_TYPE_OBJECT)

GType sluice_agent_state_get_type(void)
{
    static GType type;
    static const GEnumValue values[] = {
        {SLUICE_ICE_NEW, "New", "new"},
        {SLUICE_ICE_CHECKING, "Checking", "checking"},
        {SLUICE_ICE_CONNECTED, "Connected: every component has a selected pair", "connected"},
        {SLUICE_ICE_COMPLETED, "Completed: nothing left to check", "completed"},
        {SLUICE_ICE_FAILED, "Failed", "failed"},
        {SLUICE_ICE_DISCONNECTED, "Disconnected: consent lost on a selected pair",
         "disconnected"},
        {0, NULL, NULL},
    };
    if (g_once_init_enter(&type))
        g_once_init_leave(&type, g_enum_register_static("SluiceAgentState", values));
    return type;
}

static gboolean set_core_error(GError **error, int rc, const gchar *what)
{
    SluiceGioError code;
    switch (rc) {
    case SLUICE_ERR_INVALID:
    case SLUICE_ERR_MALFORMED:
    case SLUICE_ERR_TRUNCATED:
        code = SLUICE_GIO_ERROR_INVALID;
        break;
    case SLUICE_ERR_UNSUPPORTED:
        code = SLUICE_GIO_ERROR_UNSUPPORTED;
        break;
    case SLUICE_ERR_FULL:
        code = SLUICE_GIO_ERROR_FULL;
        break;
    case SLUICE_ERR_STATE:
    case SLUICE_ERR_NOT_FOUND:
        code = SLUICE_GIO_ERROR_STATE;
        break;
    default:
        code = SLUICE_GIO_ERROR_FAILED;
    }
    g_set_error(error, SLUICE_GIO_ERROR, code, "%s: %s", what, sluice_strerror(rc));
    return FALSE;
}

static guint64 now_us(SluiceAgent *self)
{
    return sluice_timer_now(self->timer);
}

guint64 sluice_agent_now(SluiceAgent *self)
{
    return now_us(self);
}

Base *sluice_agent_find_base(SluiceAgent *self, const sluice_addr *a)
{
    for (guint i = 0; i < self->bases->len; i++) {
        Base *b = g_ptr_array_index(self->bases, i);
        if (sluice_addr_equal(&b->addr, a))
            return b;
    }
    return NULL;
}

static Base *find_base_by_socket(SluiceAgent *self, GSocket *s)
{
    for (guint i = 0; i < self->bases->len; i++) {
        Base *b = g_ptr_array_index(self->bases, i);
        if (b->socket == s)
            return b;
    }
    return NULL;
}

Component *sluice_agent_find_component(SluiceAgent *self, guint stream, guint component)
{
    for (guint i = 0; i < self->components->len; i++) {
        Component *c = g_ptr_array_index(self->components, i);
        if (c->stream == stream && c->component == component)
            return c;
    }
    return NULL;
}

#define find_component sluice_agent_find_component

/* ------------------------------------------------------------------------ */
/* Running the core (lock held). */

static void send_transmit(SluiceAgent *self, guint64 now, const guint8 *buf, gsize len,
                          const sluice_transmit *meta)
{
    Base *b;
    GSocketAddress *dest;
    GError *err = NULL;
    if (meta->transport != SLUICE_TRANSPORT_UDP) {
        sluice_link_transmit(self, now, buf, len, meta); /* agent-stream.c */
        return;
    }
    b = sluice_agent_find_base(self, &meta->source);
    if (!b) {
        g_debug("no socket for source of a transmit; dropped");
        return;
    }
    dest = sluice_gio_addr_to_gsocket(&meta->destination);
    if (!dest)
        return;
    if (g_socket_send_to(b->socket, dest, (const gchar *)buf, len, NULL, &err) < 0) {
        /* UDP: a full buffer or an unreachable peer loses this datagram;
         * the core retransmits what matters. */
        g_debug("send: %s", err->message);
        g_clear_error(&err);
    }
    g_object_unref(dest);
}

static void drain_transmits(SluiceAgent *self, guint64 now)
{
    guint8 buf[2048];
    sluice_transmit meta;
    int n;
    while ((n = sluice_ice_agent_poll_transmit(self->core, now, buf, sizeof buf, &meta)) > 0)
        send_transmit(self, now, buf, (gsize)n, &meta);
}

/* A route over TCP or TLS goes on the connection to its TURN server: the
 * snapshot carries that connection's socket (and the connection, for
 * sluice_agent_route_write()). */
static gboolean route_link(SluiceAgent *self, const sluice_ice_route *r, SluiceLink **link)
{
    *link = NULL;
    if (r->transport == SLUICE_TRANSPORT_UDP)
        return TRUE;
    *link = sluice_link_find(self, &r->base, &r->destination, r->transport);
    return *link != NULL;
}

static void refresh_routes(SluiceAgent *self)
{
    gboolean changed = FALSE;
    for (guint i = 0; i < self->components->len; i++) {
        Component *c = g_ptr_array_index(self->components, i);
        sluice_ice_route r;
        SluiceLink *link = NULL;
        gboolean ok =
            sluice_ice_agent_route(self->core, (int)c->stream, c->component, &r) == 0;
        gboolean have_link = ok && route_link(self, &r, &link);
        if (ok == c->route_ok && (!ok || (memcmp(&r, &c->route, sizeof r) == 0 &&
                                          link == c->route_link)))
            continue;
        changed = TRUE;
        g_clear_object(&c->route_socket);
        g_clear_object(&c->route_dest);
        g_clear_pointer(&c->route_link, sluice_link_unref);
        c->route_ok = ok;
        if (ok) {
            Base *b = sluice_agent_find_base(self, &r.base);
            c->route = r;
            if (link) {
                c->route_link = sluice_link_ref(link);
                c->route_socket = g_object_ref(sluice_link_socket(link));
            } else if (b && have_link) {
                c->route_socket = g_object_ref(b->socket);
            }
            c->route_dest = sluice_gio_addr_to_gsocket(&r.destination);
            if (!have_link) {
                g_debug("route of stream %u component %u: its TURN connection is gone",
                        c->stream, c->component);
                c->route_ok = FALSE;
            } else if (!c->route_socket || !c->route_dest) {
                g_warning("route of stream %u component %u: no socket for its base",
                          c->stream, c->component);
                c->route_ok = FALSE;
            }
        } else {
            memset(&c->route, 0, sizeof c->route);
        }
    }
    if (changed)
        g_atomic_int_inc(&self->route_gen);
}

static gchar *format_candidate(const sluice_ice_candidate *c)
{
    char line[SLUICE_ICE_CANDIDATE_TEXT_MAX];
    if (sluice_ice_candidate_format(c, line, sizeof line) < 0)
        return g_strdup("");
    return g_strdup(line);
}

/* Drain transmits and events, refresh the routes, re-arm the one timer
 * (unless the timer callback itself is running: it re-arms at its end).
 * CLOSE_STREAM is handled here, on whatever thread pumps. */
void sluice_agent_pump_locked(SluiceAgent *self, guint64 now, gboolean arm)
{
    sluice_ice_event ev;

    drain_transmits(self, now);
    while (sluice_ice_agent_poll_event(self->core, &ev)) {
        if (ev.type == SLUICE_ICE_EVENT_CLOSE_STREAM) {
            /* The core is done with this connection (ice.h): no signal. */
            sluice_link_close_stream(self, &ev);
            continue;
        }
        if (ev.type == SLUICE_ICE_EVENT_LOCAL_CANDIDATE) {
            LocalCand *lc = g_new0(LocalCand, 1);
            lc->stream = (guint)ev.stream;
            lc->line = format_candidate(&ev.candidate);
            g_ptr_array_add(self->local_cands, lc);
        }
        g_array_append_val(self->pending, ev);
    }
    /* Also without events: a channel bound or a connection replaced changes
     * a route quietly. */
    refresh_routes(self);
    if (arm)
        sluice_timer_set(self->timer,
                         self->pending->len ? 0 : sluice_ice_agent_next_timeout(self->core));
}

static gchar *format_addr(const sluice_addr *a)
{
    char s[SLUICE_ADDR_STRLEN];
    if (sluice_addr_format(a, true, s, sizeof s) < 0)
        return g_strdup("?");
    return g_strdup(s);
}

static void emit_event(SluiceAgent *self, const sluice_ice_event *ev)
{
    gchar *a = NULL, *b = NULL;
    switch (ev->type) {
    case SLUICE_ICE_EVENT_LOCAL_CANDIDATE:
        a = format_candidate(&ev->candidate);
        g_signal_emit(self, signals[SIG_NEW_CANDIDATE], 0, (guint)ev->stream,
                      (guint)ev->candidate.component, a);
        break;
    case SLUICE_ICE_EVENT_GATHERING_DONE:
        g_signal_emit(self, signals[SIG_GATHERING_DONE], 0, (guint)ev->stream);
        break;
    case SLUICE_ICE_EVENT_STATE:
        g_signal_emit(self, signals[SIG_STATE_CHANGED], 0, (guint)ev->stream, (gint)ev->state);
        break;
    case SLUICE_ICE_EVENT_SELECTED_PAIR:
        a = format_candidate(&ev->local);
        b = format_candidate(&ev->remote);
        g_signal_emit(self, signals[SIG_SELECTED_PAIR_CHANGED], 0, (guint)ev->stream,
                      ev->component, a, b);
        break;
    case SLUICE_ICE_EVENT_CONSENT_LOST:
        g_signal_emit(self, signals[SIG_CONSENT_LOST], 0, (guint)ev->stream, ev->component);
        break;
    case SLUICE_ICE_EVENT_ROLE:
        g_signal_emit(self, signals[SIG_ROLE_CHANGED], 0, (gboolean)ev->controlling);
        break;
    case SLUICE_ICE_EVENT_SERVER_ERROR:
        a = format_addr(&ev->server);
        g_signal_emit(self, signals[SIG_SERVER_ERROR], 0, a, ev->error_code, ev->text);
        break;
    case SLUICE_ICE_EVENT_REMOTE_PRFLX:
        a = format_candidate(&ev->candidate);
        g_signal_emit(self, signals[SIG_NEW_REMOTE_CANDIDATE], 0, (guint)ev->stream,
                      (guint)ev->candidate.component, a);
        break;
    default: /* driver-level events, handled in sluice_agent_pump_locked() */
        break;
    }
    g_free(a);
    g_free(b);
}

/* The one timer: core deadlines, and events waiting to be emitted. The
 * timer is re-armed after the signals ran, so that a test driving a mock
 * clock sees the next wake-up only once the application was told. */
static void on_timer(gpointer obj, guint64 now)
{
    SluiceAgent *self = obj;
    GArray *events;

    g_mutex_lock(&self->lock);
    if (now >= sluice_ice_agent_next_timeout(self->core))
        sluice_ice_agent_handle_timeout(self->core, now);
    sluice_agent_pump_locked(self, now, FALSE);
    events = self->pending;
    self->pending = g_array_new(FALSE, FALSE, sizeof(sluice_ice_event));
    g_mutex_unlock(&self->lock);

    g_object_ref(self);
    for (guint i = 0; i < events->len; i++)
        emit_event(self, &g_array_index(events, sluice_ice_event, i));
    g_array_unref(events);

    g_mutex_lock(&self->lock);
    if (self->timer)
        sluice_timer_set(self->timer, self->pending->len
                                          ? 0
                                          : sluice_ice_agent_next_timeout(self->core));
    g_mutex_unlock(&self->lock);
    g_object_unref(self);
}

/* ------------------------------------------------------------------------ */
/* Sockets watched on the context (components nobody claimed). */

static gboolean on_readable(GSocket *socket, GIOCondition cond, gpointer data)
{
    SluiceGuard *guard = data;
    SluiceAgent *self = sluice_guard_enter(guard);
    (void)cond;
    if (!self)
        return G_SOURCE_REMOVE;
    /* Bounded: at most RECV_BATCH datagrams per wake-up, then others run. */
    for (int i = 0; i < RECV_BATCH; i++) {
        GSocketAddress *from = NULL;
        GError *err = NULL;
        sluice_ice_media media;
        Component *c = NULL;
        SluiceAgentRecvFunc fn = NULL;
        gpointer fn_data = NULL;
        gssize n = g_socket_receive_from(socket, &from, (gchar *)self->rbuf, RECV_BUF, NULL,
                                         &err);
        if (n < 0) {
            g_clear_error(&err);
            break;
        }
        if (sluice_agent_receive(self, socket, from, self->rbuf, (gsize)n, &media) == 1) {
            g_mutex_lock(&self->lock);
            c = find_component(self, (guint)media.stream, media.component);
            if (c) {
                fn = c->recv_func;
                fn_data = c->recv_data;
            }
            g_mutex_unlock(&self->lock);
            if (fn)
                fn(self, (guint)media.stream, media.component, media.data, media.len, fn_data);
        }
        g_clear_object(&from);
    }
    sluice_guard_leave(guard);
    return G_SOURCE_CONTINUE;
}

static void watch_base(SluiceAgent *self, Base *b)
{
    b->watch = g_socket_create_source(b->socket, G_IO_IN, NULL);
    g_source_set_callback(b->watch, G_SOURCE_FUNC(on_readable), sluice_guard_ref(self->guard),
                          sluice_guard_unref);
    g_source_attach(b->watch, self->ctx);
}

static void unwatch_base(Base *b)
{
    if (b->watch) {
        g_source_destroy(b->watch);
        g_source_unref(b->watch);
        b->watch = NULL;
    }
}

static void base_free(gpointer p)
{
    Base *b = p;
    unwatch_base(b);
    g_socket_close(b->socket, NULL);
    g_object_unref(b->socket);
    g_free(b);
}

static void component_free(gpointer p)
{
    Component *c = p;
    if (c->changed) {
        g_cancellable_cancel(c->changed);
        g_object_unref(c->changed);
    }
    g_clear_object(&c->route_socket);
    g_clear_object(&c->route_dest);
    g_clear_pointer(&c->route_link, sluice_link_unref);
    sluice_agent_media_clear(c);
    if (c->media_fd >= 0)
        close(c->media_fd);
    if (c->recv_notify)
        c->recv_notify(c->recv_data);
    g_free(c);
}

/* ------------------------------------------------------------------------ */
/* GObject */

static void sluice_agent_init(SluiceAgent *self)
{
    g_mutex_init(&self->lock);
    self->ta_ms = 50;
    self->ipv4 = self->ipv6 = TRUE;
    self->bases = g_ptr_array_new_with_free_func(base_free);
    self->components = g_ptr_array_new_with_free_func(component_free);
    self->links = g_ptr_array_new();
    self->local_addrs = g_array_new(FALSE, FALSE, sizeof(sluice_addr));
    self->pending = g_array_new(FALSE, FALSE, sizeof(sluice_ice_event));
    self->local_cands = g_ptr_array_new_with_free_func(local_cand_free);
    self->guard = sluice_guard_new(self);
}

static void sluice_agent_constructed(GObject *obj)
{
    SluiceAgent *self = SLUICE_AGENT(obj);
    sluice_ice_config cfg;
    int err = 0;

    G_OBJECT_CLASS(sluice_agent_parent_class)->constructed(obj);
    if (!self->ctx)
        self->ctx = sluice_gio_shared_context();
    sluice_ice_config_init(&cfg);
    cfg.controlling = self->controlling;
    cfg.ta_us = (uint64_t)self->ta_ms * 1000;
    cfg.software = self->software;
    self->core = sluice_ice_agent_new(&cfg, &err);
    if (!self->core)
        g_error("sluice_ice_agent_new: %s", sluice_strerror(err)); /* only out of memory */
    sluice_ice_agent_set_relay_only(self->core, self->relay_only);
    self->timer = sluice_timer_new(self->ctx, self->clock, self->guard, on_timer);
    self->rbuf = g_malloc(RECV_BUF);
}

/* A thread iterating ctx may be inside poll() with our closed sockets in
 * its set; Linux keeps a socket (and its port) alive until that poll()
 * returns. Wait until the context has run once more: destroying the
 * sources woke it, so this is short. Nothing to wait for when nobody
 * iterates ctx, or when we are that thread. */
typedef struct {
    gint ref;
    GMutex lock;
    GCond cond;
    gboolean done;
} ContextPing;

static void ping_unref(ContextPing *p)
{
    if (g_atomic_int_dec_and_test(&p->ref)) {
        g_mutex_clear(&p->lock);
        g_cond_clear(&p->cond);
        g_free(p);
    }
}

static gboolean ping_run(gpointer data)
{
    ContextPing *p = data;
    g_mutex_lock(&p->lock);
    p->done = TRUE;
    g_cond_signal(&p->cond);
    g_mutex_unlock(&p->lock);
    return G_SOURCE_REMOVE;
}

static void wait_context_pass(GMainContext *ctx)
{
    if (!ctx || g_main_context_is_owner(ctx))
        return;
    if (g_main_context_acquire(ctx)) {
        g_main_context_release(ctx);
        return;
    }
    ContextPing *p = g_new0(ContextPing, 1);
    p->ref = 2;
    g_mutex_init(&p->lock);
    g_cond_init(&p->cond);
    g_main_context_invoke_full(ctx, G_PRIORITY_HIGH, ping_run, p, (GDestroyNotify)ping_unref);
    gint64 until = g_get_monotonic_time() + G_TIME_SPAN_SECOND;
    g_mutex_lock(&p->lock);
    while (!p->done && g_cond_wait_until(&p->cond, &p->lock, until))
        ;
    g_mutex_unlock(&p->lock);
    ping_unref(p);
}

void sluice_agent_close(SluiceAgent *self)
{
    g_return_if_fail(SLUICE_IS_AGENT(self));
    /* Waits for a running callback; later ones do nothing. */
    sluice_guard_close(self->guard);
    g_mutex_lock(&self->lock);
    if (self->timer) {
        sluice_timer_free(self->timer);
        self->timer = NULL;
    }
    sluice_link_close_all(self);
    g_ptr_array_set_size(self->bases, 0);
    g_ptr_array_set_size(self->components, 0);
    g_mutex_unlock(&self->lock);
    wait_context_pass(self->ctx);
}

static void sluice_agent_dispose(GObject *obj)
{
    sluice_agent_close(SLUICE_AGENT(obj));
    G_OBJECT_CLASS(sluice_agent_parent_class)->dispose(obj);
}

static void sluice_agent_finalize(GObject *obj)
{
    SluiceAgent *self = SLUICE_AGENT(obj);
    sluice_ice_agent_free(self->core);
    g_ptr_array_unref(self->bases);
    g_ptr_array_unref(self->components);
    g_ptr_array_unref(self->links);
    g_array_unref(self->local_addrs);
    g_array_unref(self->pending);
    g_ptr_array_unref(self->local_cands);
    sluice_guard_unref(self->guard);
    g_clear_object(&self->clock);
    if (self->ctx)
        g_main_context_unref(self->ctx);
    g_strfreev(self->interfaces);
    g_strfreev(self->exclude_interfaces);
    g_free(self->software);
    g_free(self->ca_file);
    g_free(self->rbuf);
    g_mutex_clear(&self->lock);
    G_OBJECT_CLASS(sluice_agent_parent_class)->finalize(obj);
}

static void sluice_agent_set_property(GObject *obj, guint id, const GValue *v, GParamSpec *ps)
{
    SluiceAgent *self = SLUICE_AGENT(obj);
    switch (id) {
    case PROP_MAIN_CONTEXT:
        self->ctx = g_value_dup_boxed(v);
        break;
    case PROP_CLOCK:
        self->clock = g_value_dup_object(v);
        break;
    case PROP_CONTROLLING:
        self->controlling = g_value_get_boolean(v);
        if (self->core) {
            g_mutex_lock(&self->lock);
            sluice_ice_agent_set_role(self->core, self->controlling);
            g_mutex_unlock(&self->lock);
        }
        break;
    case PROP_TA:
        self->ta_ms = g_value_get_uint(v);
        break;
    case PROP_RELAY_ONLY:
        self->relay_only = g_value_get_boolean(v);
        if (self->core) {
            g_mutex_lock(&self->lock);
            sluice_ice_agent_set_relay_only(self->core, self->relay_only);
            g_mutex_unlock(&self->lock);
        }
        break;
    case PROP_INTERFACES:
        g_strfreev(self->interfaces);
        self->interfaces = g_value_dup_boxed(v);
        break;
    case PROP_EXCLUDE_INTERFACES:
        g_strfreev(self->exclude_interfaces);
        self->exclude_interfaces = g_value_dup_boxed(v);
        break;
    case PROP_IPV4:
        self->ipv4 = g_value_get_boolean(v);
        break;
    case PROP_IPV6:
        self->ipv6 = g_value_get_boolean(v);
        break;
    case PROP_INCLUDE_LOOPBACK:
        self->include_loopback = g_value_get_boolean(v);
        break;
    case PROP_MIN_PORT:
        self->min_port = g_value_get_uint(v);
        break;
    case PROP_MAX_PORT:
        self->max_port = g_value_get_uint(v);
        break;
    case PROP_SOFTWARE:
        g_free(self->software);
        self->software = g_value_dup_string(v);
        break;
    case PROP_CA_FILE:
        g_mutex_lock(&self->lock);
        g_free(self->ca_file);
        self->ca_file = g_value_dup_string(v);
        g_mutex_unlock(&self->lock);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    }
}

static void sluice_agent_get_property(GObject *obj, guint id, GValue *v, GParamSpec *ps)
{
    SluiceAgent *self = SLUICE_AGENT(obj);
    switch (id) {
    case PROP_MAIN_CONTEXT:
        g_value_set_boxed(v, self->ctx);
        break;
    case PROP_CLOCK:
        g_value_set_object(v, self->clock);
        break;
    case PROP_CONTROLLING:
        g_mutex_lock(&self->lock);
        g_value_set_boolean(v, self->core ? sluice_ice_agent_controlling(self->core)
                                          : self->controlling);
        g_mutex_unlock(&self->lock);
        break;
    case PROP_TA:
        g_value_set_uint(v, self->ta_ms);
        break;
    case PROP_RELAY_ONLY:
        g_value_set_boolean(v, self->relay_only);
        break;
    case PROP_INTERFACES:
        g_value_set_boxed(v, self->interfaces);
        break;
    case PROP_EXCLUDE_INTERFACES:
        g_value_set_boxed(v, self->exclude_interfaces);
        break;
    case PROP_IPV4:
        g_value_set_boolean(v, self->ipv4);
        break;
    case PROP_IPV6:
        g_value_set_boolean(v, self->ipv6);
        break;
    case PROP_INCLUDE_LOOPBACK:
        g_value_set_boolean(v, self->include_loopback);
        break;
    case PROP_MIN_PORT:
        g_value_set_uint(v, self->min_port);
        break;
    case PROP_MAX_PORT:
        g_value_set_uint(v, self->max_port);
        break;
    case PROP_SOFTWARE:
        g_value_set_string(v, self->software);
        break;
    case PROP_CA_FILE:
        g_mutex_lock(&self->lock);
        g_value_set_string(v, self->ca_file);
        g_mutex_unlock(&self->lock);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    }
}

static void sluice_agent_class_init(SluiceAgentClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
    const GParamFlags co = rw | G_PARAM_CONSTRUCT_ONLY;

    oc->constructed = sluice_agent_constructed;
    oc->dispose = sluice_agent_dispose;
    oc->finalize = sluice_agent_finalize;
    oc->set_property = sluice_agent_set_property;
    oc->get_property = sluice_agent_get_property;

    props[PROP_MAIN_CONTEXT] = g_param_spec_boxed(
        "main-context", "Main context",
        "The GMainContext the agent's sockets, timer and signals run on (NULL: the shared "
        "sluice-gio thread)",
        G_TYPE_MAIN_CONTEXT, co);
    props[PROP_CLOCK] = g_param_spec_object(
        "clock", "Clock", "Time source of every timer (NULL: the monotonic clock)",
        SLUICE_TYPE_CLOCK, co);
    props[PROP_CONTROLLING] = g_param_spec_boolean(
        "controlling", "Controlling", "ICE role: controlling (TRUE) or controlled (RFC 8445 §6.1.1)",
        FALSE, rw | G_PARAM_CONSTRUCT);
    props[PROP_TA] = g_param_spec_uint("ta", "Ta",
                                       "Pacing interval between new checks in milliseconds "
                                       "(RFC 8445 §14.2)",
                                       5, 1000, 50, co);
    props[PROP_RELAY_ONLY] = g_param_spec_boolean(
        "relay-only", "Relay only", "Offer and pair only relayed candidates (TURN)", FALSE,
        rw | G_PARAM_CONSTRUCT);
    props[PROP_INTERFACES] = g_param_spec_boxed(
        "interfaces", "Interfaces",
        "Network interfaces to gather host candidates on (NULL: all that are up)", G_TYPE_STRV,
        rw);
    props[PROP_EXCLUDE_INTERFACES] = g_param_spec_boxed(
        "exclude-interfaces", "Exclude interfaces", "Network interfaces never used", G_TYPE_STRV,
        rw);
    props[PROP_IPV4] = g_param_spec_boolean("ipv4", "IPv4", "Gather IPv4 candidates", TRUE, rw);
    props[PROP_IPV6] = g_param_spec_boolean("ipv6", "IPv6", "Gather IPv6 candidates", TRUE, rw);
    props[PROP_INCLUDE_LOOPBACK] = g_param_spec_boolean(
        "include-loopback", "Include loopback",
        "Also gather on loopback addresses (always done when nothing else is up)", FALSE, rw);
    props[PROP_MIN_PORT] = g_param_spec_uint(
        "min-port", "Minimum port", "Lowest local UDP port (0: any port)", 0, 65535, 0, rw);
    props[PROP_MAX_PORT] = g_param_spec_uint(
        "max-port", "Maximum port", "Highest local UDP port (0: any port)", 0, 65535, 0, rw);
    props[PROP_SOFTWARE] = g_param_spec_string(
        "software", "Software", "SOFTWARE attribute of outgoing requests (NULL: none)", NULL, co);
    props[PROP_CA_FILE] = g_param_spec_string(
        "ca-file", "CA file",
        "PEM bundle to verify turns: (TURN over TLS) servers with, used by the servers added "
        "after it is set (NULL: the system store)",
        NULL, rw);
    g_object_class_install_properties(oc, N_PROPS, props);

    /* All signals are emitted on the agent's main context, no lock held. */
    signals[SIG_NEW_CANDIDATE] =
        g_signal_new("new-candidate", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 3, G_TYPE_UINT, G_TYPE_UINT, G_TYPE_STRING);
    signals[SIG_GATHERING_DONE] =
        g_signal_new("gathering-done", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                     NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
    signals[SIG_STATE_CHANGED] =
        g_signal_new("state-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 2, G_TYPE_UINT, SLUICE_TYPE_AGENT_STATE);
    signals[SIG_SELECTED_PAIR_CHANGED] = g_signal_new(
        "selected-pair-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
        NULL, G_TYPE_NONE, 4, G_TYPE_UINT, G_TYPE_UINT, G_TYPE_STRING, G_TYPE_STRING);
    signals[SIG_CONSENT_LOST] =
        g_signal_new("consent-lost", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_UINT);
    signals[SIG_ROLE_CHANGED] =
        g_signal_new("role-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 1, G_TYPE_BOOLEAN);
    signals[SIG_SERVER_ERROR] =
        g_signal_new("server-error", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_INT, G_TYPE_STRING);
    signals[SIG_NEW_REMOTE_CANDIDATE] = g_signal_new(
        "new-remote-candidate", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
        G_TYPE_NONE, 3, G_TYPE_UINT, G_TYPE_UINT, G_TYPE_STRING);
}

SluiceAgent *sluice_agent_new(GMainContext *ctx)
{
    return g_object_new(SLUICE_TYPE_AGENT, "main-context", ctx, NULL);
}

/* ------------------------------------------------------------------------ */
/* Streams, servers, gathering */

guint sluice_agent_add_stream(SluiceAgent *agent, guint n_components, GError **error)
{
    int id;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), 0);
    g_mutex_lock(&agent->lock);
    id = sluice_ice_agent_add_stream(agent->core, n_components);
    if (id > 0) {
        for (guint c = 1; c <= n_components; c++) {
            Component *comp = g_new0(Component, 1);
            comp->stream = (guint)id;
            comp->component = c;
            g_queue_init(&comp->media);
            comp->media_fd = -1;
            comp->tos = -1;
            g_ptr_array_add(agent->components, comp);
        }
    }
    g_mutex_unlock(&agent->lock);
    if (id < 0) {
        set_core_error(error, id, "cannot add a stream");
        return 0;
    }
    return (guint)id;
}

gboolean sluice_agent_add_local_address(SluiceAgent *agent, const gchar *ip, GError **error)
{
    GInetAddress *ia;
    sluice_addr a;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), FALSE);
    ia = ip ? g_inet_address_new_from_string(ip) : NULL;
    if (!ia) {
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                    "'%s' is not an IP address", ip ? ip : "(null)");
        return FALSE;
    }
    sluice_gio_addr_from_inet(&a, ia, 0);
    g_object_unref(ia);
    g_mutex_lock(&agent->lock);
    if (agent->local_addrs->len >= MAX_LOCAL_ADDRS) {
        g_mutex_unlock(&agent->lock);
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_FULL,
                    "at most %d local addresses", MAX_LOCAL_ADDRS);
        return FALSE;
    }
    g_array_append_val(agent->local_addrs, a);
    g_mutex_unlock(&agent->lock);
    return TRUE;
}

gboolean sluice_agent_add_server(SluiceAgent *agent, const gchar *uri, const gchar *username,
                                 const gchar *password, GError **error)
{
    SluiceGioUri u;
    sluice_addr addrs[4];
    gsize n = 0;
    gboolean ok = TRUE;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), FALSE);
    if (!sluice_gio_uri_parse(uri, &u, error))
        return FALSE;
    if (!sluice_gio_uri_resolve(&u, addrs, G_N_ELEMENTS(addrs), &n, error)) {
        sluice_gio_uri_clear(&u);
        return FALSE;
    }
    g_mutex_lock(&agent->lock);
    for (gsize i = 0; i < n && ok; i++) {
        int rc;
        if (u.turn) {
            sluice_ice_turn_server ts;
            memset(&ts, 0, sizeof ts);
            ts.server = addrs[i];
            ts.transport = u.transport;
            ts.username = username ? username : u.username;
            ts.password = password ? password : u.password;
            /* turns: the name checked against the certificate (and sent
             * as SNI when it is a name) is the URI's host as written. TCP
             * and TLS connections are carried by agent-stream.c. */
            ts.server_name = u.transport == SLUICE_TRANSPORT_TLS ? u.host : NULL;
            ts.ca_file = agent->ca_file;
            if (u.transport == SLUICE_TRANSPORT_TLS && agent->ca_file &&
                !g_file_test(agent->ca_file, G_FILE_TEST_IS_REGULAR)) {
                g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                            "ca-file '%s' is not a readable file", agent->ca_file);
                ok = FALSE;
                break;
            }
            if (!ts.username || !ts.password) {
                g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                            "TURN server %s needs a username and a password", uri);
                ok = FALSE;
                break;
            }
            rc = sluice_ice_agent_add_turn_server(agent->core, &ts);
        } else {
            rc = sluice_ice_agent_add_stun_server(agent->core, &addrs[i]);
        }
        if (rc < 0) {
            gchar *what = g_strdup_printf("cannot use server %s", uri);
            ok = set_core_error(error, rc, what);
            g_free(what);
        }
    }
    g_mutex_unlock(&agent->lock);
    sluice_gio_uri_clear(&u);
    return ok;
}

static gboolean in_list(gchar **list, const gchar *name)
{
    return list && g_strv_contains((const gchar *const *)list, name);
}

/* Local addresses to gather on: the application's, or the interfaces that
 * are up (link-local excluded: they need a scope the peer cannot use;
 * loopback only when asked for or when nothing else is up). */
static gsize local_addresses(SluiceAgent *self, sluice_addr *out, gsize cap)
{
    struct ifaddrs *ifa, *i;
    gsize n = 0, n_loop = 0;
    sluice_addr loops[MAX_LOCAL_ADDRS];

    g_mutex_lock(&self->lock);
    for (guint k = 0; k < self->local_addrs->len && n < cap; k++)
        out[n++] = g_array_index(self->local_addrs, sluice_addr, k);
    g_mutex_unlock(&self->lock);
    if (n > 0 || getifaddrs(&ifa) != 0)
        return n;
    for (i = ifa; i && n < cap; i = i->ifa_next) {
        sluice_addr a;
        gboolean loop;
        if (!i->ifa_addr || !(i->ifa_flags & IFF_UP))
            continue;
        if (i->ifa_addr->sa_family == AF_INET && !self->ipv4)
            continue;
        if (i->ifa_addr->sa_family == AF_INET6 && !self->ipv6)
            continue;
        if (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6)
            continue;
        if (self->interfaces && !in_list(self->interfaces, i->ifa_name))
            continue;
        if (in_list(self->exclude_interfaces, i->ifa_name))
            continue;
        if (sluice_addr_from_sockaddr(&a, i->ifa_addr,
                                      i->ifa_addr->sa_family == AF_INET
                                          ? sizeof(struct sockaddr_in)
                                          : sizeof(struct sockaddr_in6)) != 0)
            continue;
        if (sluice_addr_classify(&a, NULL) & SLUICE_ADDR_LINK_LOCAL)
            continue;
        a.port = 0;
        loop = (i->ifa_flags & IFF_LOOPBACK) != 0;
        if (loop && !self->include_loopback && !in_list(self->interfaces, i->ifa_name)) {
            if (n_loop < G_N_ELEMENTS(loops))
                loops[n_loop++] = a;
            continue;
        }
        out[n++] = a;
    }
    freeifaddrs(ifa);
    for (gsize k = 0; n == 0 && k < n_loop && k < cap; k++)
        out[k] = loops[k], n = k + 1;
    return n;
}

static GSocket *bind_socket(SluiceAgent *self, sluice_addr *a, GError **error)
{
    GSocketFamily fam = a->family == SLUICE_AF_INET6 ? G_SOCKET_FAMILY_IPV6 : G_SOCKET_FAMILY_IPV4;
    GSocket *s = g_socket_new(fam, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, error);
    guint lo = self->min_port, hi = self->max_port;
    guint span, start;
    if (!s)
        return NULL;
    g_socket_set_blocking(s, FALSE);
    if (lo == 0 && hi == 0) {
        span = 1;
        start = 0;
    } else {
        if (lo == 0)
            lo = 1;
        if (hi == 0 || hi < lo)
            hi = 65535;
        span = hi - lo + 1;
        start = g_random_int_range(0, (gint32)span);
    }
    for (guint k = 0; k < span; k++) {
        GError *e = NULL;
        GSocketAddress *sa;
        a->port = (guint16)(span == 1 && lo == 0 ? 0 : lo + (start + k) % span);
        sa = sluice_gio_addr_to_gsocket(a);
        if (sa && g_socket_bind(s, sa, FALSE, &e)) {
            GSocketAddress *bound = g_socket_get_local_address(s, NULL);
            g_object_unref(sa);
            if (bound && sluice_gio_addr_from_gsocket(a, bound)) {
                g_object_unref(bound);
                return s;
            }
            g_clear_object(&bound);
            break;
        }
        g_clear_object(&sa);
        if (k + 1 == span || !g_error_matches(e, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE)) {
            char txt[SLUICE_ADDR_STRLEN];
            sluice_addr_format(a, false, txt, sizeof txt);
            g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_SOCKET,
                        "cannot bind a UDP socket on %s (ports %u-%u): %s", txt, lo, hi,
                        e ? e->message : "no address");
            g_clear_error(&e);
            g_object_unref(s);
            return NULL;
        }
        g_clear_error(&e);
    }
    g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_SOCKET, "cannot bind a UDP socket");
    g_object_unref(s);
    return NULL;
}

gboolean sluice_agent_gather(SluiceAgent *agent, guint stream, GError **error)
{
    sluice_addr addrs[MAX_LOCAL_ADDRS];
    gsize n = local_addresses(agent, addrs, G_N_ELEMENTS(addrs));
    GPtrArray *made = g_ptr_array_new_with_free_func(base_free);
    guint n_comp = 0;
    gboolean ok = TRUE;
    guint64 now;
    int rc = 0;

    g_return_val_if_fail(SLUICE_IS_AGENT(agent), FALSE);
    g_mutex_lock(&agent->lock);
    for (guint i = 0; i < agent->components->len; i++) {
        Component *c = g_ptr_array_index(agent->components, i);
        if (c->stream == stream)
            n_comp++;
    }
    g_mutex_unlock(&agent->lock);
    if (n_comp == 0) {
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE, "no stream %u", stream);
        g_ptr_array_unref(made);
        return FALSE;
    }
    if (n == 0) {
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_SOCKET,
                    "no usable local address (check the interfaces, ipv4 and ipv6 settings)");
        g_ptr_array_unref(made);
        return FALSE;
    }
    /* Sockets first, without the lock (binding may walk a port range). */
    for (guint c = 1; c <= n_comp && ok; c++) {
        for (gsize i = 0; i < n && ok; i++) {
            Base *b = g_new0(Base, 1);
            b->addr = addrs[i];
            b->socket = bind_socket(agent, &b->addr, error);
            b->stream = stream;
            b->component = c;
            if (!b->socket) {
                g_free(b);
                ok = FALSE;
                break;
            }
            g_ptr_array_add(made, b);
        }
    }
    if (!ok) {
        g_ptr_array_unref(made);
        return FALSE;
    }
    g_mutex_lock(&agent->lock);
    now = now_us(agent);
    while (made->len > 0) {
        Base *b = g_ptr_array_steal_index(made, 0);
        Component *comp = find_component(agent, b->stream, b->component);
        rc = sluice_ice_agent_add_base(agent->core, now, (int)stream, b->component, &b->addr);
        if (rc < 0) {
            base_free(b);
            break;
        }
        g_ptr_array_add(agent->bases, b);
        sluice_agent_apply_tos(agent, b, b->socket);
        if (comp && comp->claimed) {
            if (comp->changed)
                g_cancellable_cancel(comp->changed);
        } else {
            watch_base(agent, b);
        }
    }
    if (rc == 0)
        rc = sluice_ice_agent_gather(agent->core, now);
    sluice_agent_pump_locked(agent, now, TRUE);
    g_mutex_unlock(&agent->lock);
    g_ptr_array_unref(made);
    if (rc < 0)
        return set_core_error(error, rc, "cannot gather");
    return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Credentials and candidates */

gboolean sluice_agent_get_local_credentials(SluiceAgent *agent, guint stream, gchar **ufrag,
                                            gchar **pwd)
{
    const char *u, *p;
    int rc;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), FALSE);
    g_mutex_lock(&agent->lock);
    rc = sluice_ice_agent_local_credentials(agent->core, (int)stream, &u, &p);
    if (rc == 0) {
        if (ufrag)
            *ufrag = g_strdup(u);
        if (pwd)
            *pwd = g_strdup(p);
    }
    g_mutex_unlock(&agent->lock);
    return rc == 0;
}

/* The pattern of every call into the core from the application: lock, call,
 * pump (transmits go out now, events on the context), unlock. */
#define CORE_CALL(agent, expr)                                                                 \
    ({                                                                                         \
        int rc_;                                                                               \
        g_mutex_lock(&(agent)->lock);                                                          \
        guint64 now = now_us(agent);                                                           \
        (void)now;                                                                             \
        rc_ = (expr);                                                                          \
        sluice_agent_pump_locked((agent), now_us(agent), TRUE);                                \
        g_mutex_unlock(&(agent)->lock);                                                        \
        rc_;                                                                                   \
    })

gboolean sluice_agent_set_local_credentials(SluiceAgent *agent, guint stream, const gchar *ufrag,
                                            const gchar *pwd, GError **error)
{
    int rc;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), FALSE);
    rc = CORE_CALL(agent, sluice_ice_agent_set_local_credentials(agent->core, (int)stream, ufrag,
                                                                 pwd));
    return rc == 0 || set_core_error(error, rc,
                                     "bad local credentials (ufrag 4..64 and password 22..128 "
                                     "characters of A-Z a-z 0-9 + /, RFC 8839 §5.4)");
}

gboolean sluice_agent_set_remote_credentials(SluiceAgent *agent, guint stream,
                                             const gchar *ufrag, const gchar *pwd,
                                             GError **error)
{
    int rc;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), FALSE);
    if (!ufrag || !pwd)
        return set_core_error(error, SLUICE_ERR_INVALID, "remote credentials");
    rc = CORE_CALL(agent, sluice_ice_agent_set_remote_credentials(agent->core, now, (int)stream,
                                                                  ufrag, pwd));
    return rc == 0 ||
           set_core_error(error, rc,
                          rc == SLUICE_ERR_STATE
                              ? "new remote credentials need an ICE restart"
                              : "bad remote credentials (ufrag 4..256 and password 16..256 "
                                "characters of A-Z a-z 0-9 + /, RFC 8839 §5.4)");
}

gboolean sluice_agent_add_remote_candidate(SluiceAgent *agent, guint stream, const gchar *sdp,
                                           GError **error)
{
    sluice_ice_candidate c;
    int rc;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), FALSE);
    rc = sdp ? sluice_ice_candidate_parse(&c, sdp) : SLUICE_ERR_INVALID;
    if (rc < 0) {
        g_set_error(error, SLUICE_GIO_ERROR,
                    rc == SLUICE_ERR_UNSUPPORTED ? SLUICE_GIO_ERROR_UNSUPPORTED
                                                 : SLUICE_GIO_ERROR_INVALID,
                    "%s candidate '%s'",
                    rc == SLUICE_ERR_UNSUPPORTED ? "unsupported (TCP or mDNS .local)" : "malformed",
                    sdp ? sdp : "(null)");
        return FALSE;
    }
    rc = CORE_CALL(agent, sluice_ice_agent_add_remote_candidate(agent->core, now, (int)stream, &c));
    return rc == 0 || set_core_error(error, rc, "cannot add the remote candidate");
}

gboolean sluice_agent_add_remote_candidates(SluiceAgent *agent, guint stream, const gchar *list,
                                            GError **error)
{
    gchar **lines;
    gboolean ok = TRUE;
    if (!list)
        return TRUE;
    lines = g_strsplit_set(list, "\r\n;,", -1);
    for (gchar **l = lines; *l && ok; l++) {
        gchar *t = g_strstrip(*l);
        if (*t)
            ok = sluice_agent_add_remote_candidate(agent, stream, t, error);
    }
    g_strfreev(lines);
    return ok;
}

gboolean sluice_agent_end_of_candidates(SluiceAgent *agent, guint stream)
{
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), FALSE);
    return CORE_CALL(agent, sluice_ice_agent_end_of_candidates(agent->core, now, (int)stream)) ==
           0;
}

static void forget_local_candidates(SluiceAgent *agent, guint stream)
{
    for (guint i = agent->local_cands->len; i > 0; i--) {
        LocalCand *lc = g_ptr_array_index(agent->local_cands, i - 1);
        if (lc->stream == stream)
            g_ptr_array_remove_index(agent->local_cands, i - 1);
    }
}

gboolean sluice_agent_restart(SluiceAgent *agent, guint stream, GError **error)
{
    int rc;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), FALSE);
    /* The core signals every candidate again with the new credentials. */
    rc = CORE_CALL(agent, (forget_local_candidates(agent, stream),
                           sluice_ice_agent_restart(agent->core, now, (int)stream)));
    return rc == 0 || set_core_error(error, rc, "cannot restart");
}

gchar **sluice_agent_get_local_candidates(SluiceAgent *agent, guint stream)
{
    GPtrArray *out = g_ptr_array_new();
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), NULL);
    g_mutex_lock(&agent->lock);
    for (guint i = 0; i < agent->local_cands->len; i++) {
        LocalCand *lc = g_ptr_array_index(agent->local_cands, i);
        if (lc->stream == stream)
            g_ptr_array_add(out, g_strdup(lc->line));
    }
    g_mutex_unlock(&agent->lock);
    g_ptr_array_add(out, NULL);
    return (gchar **)g_ptr_array_free(out, FALSE);
}


sluice_ice_state sluice_agent_get_state(SluiceAgent *agent, guint stream)
{
    sluice_ice_state s;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), SLUICE_ICE_FAILED);
    g_mutex_lock(&agent->lock);
    s = sluice_ice_agent_state(agent->core, (int)stream);
    g_mutex_unlock(&agent->lock);
    return s;
}

gint sluice_agent_get_pair_stats(SluiceAgent *agent, guint stream, sluice_ice_pair_stats *out,
                                 gsize cap)
{
    int n;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), 0);
    g_mutex_lock(&agent->lock);
    n = sluice_ice_agent_pair_stats(agent->core, (int)stream, out, cap);
    g_mutex_unlock(&agent->lock);
    return n < 0 ? 0 : n;
}

gboolean sluice_agent_get_selected_pair(SluiceAgent *agent, guint stream, guint component,
                                        gchar **local, gchar **remote)
{
    sluice_ice_pair_stats st[32];
    gint n = sluice_agent_get_pair_stats(agent, stream, st, G_N_ELEMENTS(st));
    for (gint i = 0; i < n && i < (gint)G_N_ELEMENTS(st); i++) {
        if (st[i].selected && st[i].local.component == component) {
            if (local)
                *local = format_candidate(&st[i].local);
            if (remote)
                *remote = format_candidate(&st[i].remote);
            return TRUE;
        }
    }
    return FALSE;
}

/* ------------------------------------------------------------------------ */
/* Data */

void sluice_agent_set_recv_func(SluiceAgent *agent, guint stream, guint component,
                                SluiceAgentRecvFunc func, gpointer user_data,
                                GDestroyNotify notify)
{
    Component *c;
    GDestroyNotify old_notify = NULL;
    gpointer old_data = NULL;
    g_return_if_fail(SLUICE_IS_AGENT(agent));
    g_mutex_lock(&agent->lock);
    c = find_component(agent, stream, component);
    if (c) {
        old_notify = c->recv_notify;
        old_data = c->recv_data;
        c->recv_func = func;
        c->recv_data = user_data;
        c->recv_notify = notify;
    }
    g_mutex_unlock(&agent->lock);
    if (old_notify)
        old_notify(old_data);
}

guint sluice_agent_route_generation(SluiceAgent *agent)
{
    return (guint)g_atomic_int_get(&agent->route_gen);
}

gboolean sluice_agent_get_route(SluiceAgent *agent, guint stream, guint component,
                                SluiceAgentRoute *out)
{
    Component *c;
    gboolean ok = FALSE;
    memset(out, 0, sizeof *out);
    g_mutex_lock(&agent->lock);
    out->generation = (guint)g_atomic_int_get(&agent->route_gen);
    c = find_component(agent, stream, component);
    if (c && c->route_ok) {
        out->socket = g_object_ref(c->route_socket);
        out->dest = g_object_ref(c->route_dest);
        out->link = c->route_link ? sluice_link_ref(c->route_link) : NULL;
        out->route = c->route;
        ok = TRUE;
    }
    g_mutex_unlock(&agent->lock);
    return ok;
}

void sluice_agent_route_clear(SluiceAgentRoute *r)
{
    g_clear_object(&r->socket);
    g_clear_object(&r->dest);
    g_clear_pointer(&r->link, sluice_link_unref);
    memset(&r->route, 0, sizeof r->route);
}

void sluice_agent_count_sent(SluiceAgent *agent, guint stream, guint component, guint64 packets,
                             guint64 bytes)
{
    g_mutex_lock(&agent->lock);
    sluice_ice_agent_count_sent(agent->core, now_us(agent), (int)stream, component, packets,
                                bytes);
    g_mutex_unlock(&agent->lock);
}

gssize sluice_agent_send_framed(SluiceAgent *agent, guint stream, guint component,
                                const guint8 *data, gsize len, GError **error)
{
    /* Room for a Send indication's attributes or a TLS record's overhead;
     * TLS output beyond it comes from poll_transmit (pumped below). */
    guint8 stack[2048], *out = stack;
    gsize cap = sizeof stack;
    sluice_transmit meta;
    Component *c;
    guint64 now;
    int n;
    if (len + 256 > cap) {
        cap = len + 256;
        out = g_malloc(cap);
    }
    g_mutex_lock(&agent->lock);
    now = now_us(agent);
    c = find_component(agent, stream, component);
    if (c && c->route_ok && c->route_link && !sluice_link_media_room(c->route_link)) {
        /* TCP/TLS: media waits for the connection rather than growing its
         * backlog until the connection (and the allocation) is dropped. */
        g_mutex_unlock(&agent->lock);
        if (out != stack)
            g_free(out);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                    "the connection to the TURN server is backed up");
        return -1;
    }
    n = sluice_ice_agent_send(agent->core, now, (int)stream, component, data, len, out, cap,
                              &meta);
    if (n > 0)
        send_transmit(agent, now, out, (gsize)n, &meta);
    if (n >= 0 && c && c->route_link)
        sluice_agent_pump_locked(agent, now, TRUE); /* TLS records left over, link failures */
    g_mutex_unlock(&agent->lock);
    if (out != stack)
        g_free(out);
    if (n < 0) {
        g_set_error(error, SLUICE_GIO_ERROR,
                    n == SLUICE_ERR_STATE ? SLUICE_GIO_ERROR_STATE : SLUICE_GIO_ERROR_FAILED,
                    "cannot send on stream %u component %u: %s", stream, component,
                    n == SLUICE_ERR_STATE ? "no selected pair or consent lost"
                                          : sluice_strerror(n));
        return -1;
    }
    return (gssize)len;
}

gssize sluice_agent_send(SluiceAgent *agent, guint stream, guint component, const guint8 *data,
                         gsize len, GError **error)
{
    SluiceAgentRoute r;
    gssize n;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), -1);
    if (!sluice_agent_get_route(agent, stream, component, &r) ||
        r.route.framing != SLUICE_ICE_FRAMING_NONE) {
        sluice_agent_route_clear(&r);
        return sluice_agent_send_framed(agent, stream, component, data, len, error);
    }
    n = g_socket_send_to(r.socket, r.dest, (const gchar *)data, len, NULL, error);
    sluice_agent_route_clear(&r);
    if (n >= 0)
        sluice_agent_count_sent(agent, stream, component, 1, (guint64)n);
    return n;
}

GPtrArray *sluice_agent_claim_component(SluiceAgent *agent, guint stream, guint component,
                                        GCancellable **changed)
{
    Component *c;
    GPtrArray *out = NULL;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), NULL);
    g_mutex_lock(&agent->lock);
    c = find_component(agent, stream, component);
    if (c) {
        out = g_ptr_array_new_with_free_func(g_object_unref);
        c->claimed = TRUE;
        sluice_agent_media_claim(c);
        if (c->changed)
            g_object_unref(c->changed);
        c->changed = g_cancellable_new();
        for (guint i = 0; i < agent->bases->len; i++) {
            Base *b = g_ptr_array_index(agent->bases, i);
            if (b->stream == stream && b->component == component) {
                unwatch_base(b);
                g_ptr_array_add(out, g_object_ref(b->socket));
            }
        }
        if (changed)
            *changed = g_object_ref(c->changed);
    }
    g_mutex_unlock(&agent->lock);
    return out;
}

void sluice_agent_release_component(SluiceAgent *agent, guint stream, guint component)
{
    Component *c;
    g_return_if_fail(SLUICE_IS_AGENT(agent));
    g_mutex_lock(&agent->lock);
    c = find_component(agent, stream, component);
    if (c && c->claimed) {
        c->claimed = FALSE;
        sluice_agent_media_clear(c);
        if (c->changed) {
            g_cancellable_cancel(c->changed);
            g_clear_object(&c->changed);
        }
        for (guint i = 0; i < agent->bases->len; i++) {
            Base *b = g_ptr_array_index(agent->bases, i);
            if (b->stream == stream && b->component == component && !b->watch)
                watch_base(agent, b);
        }
    }
    g_mutex_unlock(&agent->lock);
}

gint sluice_agent_receive_native(SluiceAgent *agent, GSocket *socket, const sluice_addr *from,
                                 guint8 *data, gsize len, sluice_ice_media *media)
{
    Base *b;
    int rc = 0;
    g_mutex_lock(&agent->lock);
    b = find_base_by_socket(agent, socket);
    if (b) {
        guint64 now = now_us(agent);
        rc = sluice_ice_agent_handle_datagram(agent->core, now, &b->addr, from, data, len, media);
        sluice_agent_pump_locked(agent, now, TRUE);
    }
    g_mutex_unlock(&agent->lock);
    return rc == 1 ? 1 : 0;
}

gint sluice_agent_receive(SluiceAgent *agent, GSocket *socket, GSocketAddress *from, guint8 *data,
                          gsize len, sluice_ice_media *media)
{
    sluice_addr a;
    if (!from || !sluice_gio_addr_from_gsocket(&a, from))
        return 0;
    return sluice_agent_receive_native(agent, socket, &a, data, len, media);
}
