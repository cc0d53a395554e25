/* SPDX-License-Identifier: MIT */
/* SluiceDirectChannel: the direct channel's DTLS core (sluice_coord_dtls)
 * on a SluiceAgent component. One mutex guards the core; datagrams go to
 * the agent under it (the agent never calls us with its lock held), what
 * the application hears is collected and emitted after it is released, on
 * the agent's context. */
#include "sluice-direct-channel.h"

#include <string.h>

#include "gio-internal.h"
#include "sluice-gio.h"

/* Datagrams kept while the controlled side has no selected pair yet (a
 * ClientHello can arrive before the nomination is known here). */
#define MAX_UNSENT 32

struct _SluiceDirectChannel {
    GObject parent;
    GMutex lock;
    SluiceAgent *agent;
    guint stream, component;
    gboolean client;
    SluiceGuard *guard;
    SluiceTimer *timer;
    sluice_coord_dtls *core;
    gboolean started;
    gboolean told_established, told_end; /* signals already emitted (or due) */
    gboolean ice_failed;
    GQueue unsent; /* GBytes*, oldest first */
    gulong h_selected, h_state;
    guint8 buf[SLUICE_COORD_DTLS_MAX_DATAGRAM];
};

G_DEFINE_TYPE(SluiceDirectChannel, sluice_direct_channel, G_TYPE_OBJECT)

enum { SIG_ESTABLISHED, SIG_MESSAGE, SIG_ERROR, SIG_CLOSED, N_SIGNALS };
static guint signals[N_SIGNALS];

/* What one pump has for the application. */
typedef struct {
    gboolean established;
    GPtrArray *messages; /* GBytes* */
    gchar *error;
    gboolean closed;
} Report;

/* ------------------------------------------------------------------------ */
/* Pumping the core (lock held) */

static void keep_unsent(SluiceDirectChannel *self, const guint8 *data, gsize len)
{
    if (self->unsent.length >= MAX_UNSENT)
        g_bytes_unref(g_queue_pop_head(&self->unsent)); /* datagrams: the oldest goes */
    g_queue_push_tail(&self->unsent, g_bytes_new(data, len));
}

/* One datagram to the agent. FALSE when there is no route yet (kept). */
static gboolean send_one(SluiceDirectChannel *self, const guint8 *data, gsize len)
{
    GError *e = NULL;
    if (sluice_agent_send(self->agent, self->stream, self->component, data, len, &e) >= 0)
        return TRUE;
    if (g_error_matches(e, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE)) {
        g_error_free(e);
        return FALSE;
    }
    /* A blocked TURN-over-TCP backlog: a lost datagram, which DTLS (for the
     * handshake) or the application (for messages) lives with. */
    g_debug("direct channel: datagram of %" G_GSIZE_FORMAT " bytes dropped: %s", len, e->message);
    g_error_free(e);
    return TRUE;
}

static void flush_unsent(SluiceDirectChannel *self)
{
    GBytes *b;
    while ((b = g_queue_peek_head(&self->unsent))) {
        gsize len;
        const guint8 *p = g_bytes_get_data(b, &len);
        if (!send_one(self, p, len))
            return;
        g_bytes_unref(g_queue_pop_head(&self->unsent));
    }
}

/* Everything the core has to send, in order. */
static void transmit(SluiceDirectChannel *self)
{
    int n;
    flush_unsent(self);
    while ((n = sluice_coord_dtls_poll_transmit(self->core, self->buf, sizeof self->buf)) > 0) {
        if (self->unsent.length || !send_one(self, self->buf, (gsize)n))
            keep_unsent(self, self->buf, (gsize)n);
    }
}

/* Take output, messages and state changes; re-arm the timer. */
static void pump(SluiceDirectChannel *self, Report *r)
{
    int n;
    transmit(self);
    while ((n = sluice_coord_dtls_recv(self->core, self->buf, sizeof self->buf)) > 0) {
        if (!r->messages)
            r->messages = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
        g_ptr_array_add(r->messages, g_bytes_new(self->buf, (gsize)n));
    }
    if (!self->told_established && sluice_coord_dtls_established(self->core)) {
        self->told_established = TRUE;
        r->established = TRUE;
    }
    if (!self->told_end) {
        if (sluice_coord_dtls_error(self->core)) {
            self->told_end = TRUE;
            r->error = g_strdup(sluice_coord_dtls_error_text(self->core));
        } else if (self->ice_failed) {
            self->told_end = TRUE;
            r->error = g_strdup("ICE failed: no path to the peer");
        } else if (sluice_coord_dtls_peer_closed(self->core)) {
            self->told_end = TRUE;
            r->closed = TRUE;
        }
    }
    sluice_timer_set(self->timer, sluice_coord_dtls_next_timeout(self->core));
}

/* The client starts once the agent has a pair to send on; the server only
 * starts its handshake timeout then (its first datagram would too). */
static void maybe_start(SluiceDirectChannel *self, guint64 now)
{
    if (self->started || self->told_end)
        return;
    if (!sluice_agent_get_selected_pair(self->agent, self->stream, self->component, NULL, NULL))
        return;
    self->started = TRUE;
    if (sluice_coord_dtls_start(self->core, now) < 0 && !sluice_coord_dtls_error(self->core))
        g_debug("direct channel: started already (a datagram came first)");
}

/* Emit what a pump found, no lock held, on the agent's context. */
static void report(SluiceDirectChannel *self, Report *r)
{
    if (r->established)
        g_signal_emit(self, signals[SIG_ESTABLISHED], 0);
    for (guint i = 0; r->messages && i < r->messages->len; i++)
        g_signal_emit(self, signals[SIG_MESSAGE], 0, g_ptr_array_index(r->messages, i));
    if (r->error)
        g_signal_emit(self, signals[SIG_ERROR], 0, r->error);
    if (r->closed)
        g_signal_emit(self, signals[SIG_CLOSED], 0);
    if (r->messages)
        g_ptr_array_unref(r->messages);
    g_free(r->error);
}

/* ------------------------------------------------------------------------ */
/* Callbacks on the agent's context (each under the guard) */

static void guard_closure_notify(gpointer data, GClosure *closure)
{
    (void)closure;
    sluice_guard_unref(data);
}

static void on_recv(SluiceAgent *agent, guint stream, guint component, const guint8 *data,
                    gsize len, gpointer user_data)
{
    SluiceDirectChannel *self = sluice_guard_enter(user_data);
    Report r = {0};
    (void)agent;
    (void)stream;
    (void)component;
    if (!self)
        return;
    /* RFC 7983 §7: only DTLS is ours on this component. */
    if (len && sluice_coord_is_dtls(data[0])) {
        guint64 now = sluice_timer_now(self->timer);
        g_mutex_lock(&self->lock);
        self->started = TRUE; /* a server's handshake starts with the ClientHello */
        int rc = sluice_coord_dtls_handle_datagram(self->core, now, data, len);
        if (rc == SLUICE_ERR_TRUNCATED || rc == SLUICE_ERR_MALFORMED)
            g_debug("direct channel: datagram dropped: %s", sluice_strerror(rc));
        pump(self, &r);
        g_mutex_unlock(&self->lock);
        report(self, &r);
    }
    sluice_guard_leave(user_data);
}

static void on_timer(gpointer data, guint64 now)
{
    SluiceDirectChannel *self = data;
    Report r = {0};
    g_mutex_lock(&self->lock);
    maybe_start(self, now);
    sluice_coord_dtls_handle_timeout(self->core, now);
    pump(self, &r);
    g_mutex_unlock(&self->lock);
    report(self, &r);
}

static void on_selected(SluiceAgent *agent, guint stream, guint component, const gchar *local,
                        const gchar *remote, gpointer user_data)
{
    SluiceDirectChannel *self = sluice_guard_enter(user_data);
    Report r = {0};
    (void)agent;
    (void)local;
    (void)remote;
    if (!self)
        return;
    if (stream == self->stream && component == self->component) {
        g_mutex_lock(&self->lock);
        maybe_start(self, sluice_timer_now(self->timer));
        pump(self, &r);
        g_mutex_unlock(&self->lock);
        report(self, &r);
    }
    sluice_guard_leave(user_data);
}

static void on_state(SluiceAgent *agent, guint stream, gint state, gpointer user_data)
{
    SluiceDirectChannel *self = sluice_guard_enter(user_data);
    Report r = {0};
    (void)agent;
    if (!self)
        return;
    if (stream == self->stream) {
        g_mutex_lock(&self->lock);
        if (state == SLUICE_ICE_FAILED)
            self->ice_failed = TRUE;
        else
            maybe_start(self, sluice_timer_now(self->timer));
        pump(self, &r);
        g_mutex_unlock(&self->lock);
        report(self, &r);
    }
    sluice_guard_leave(user_data);
}

/* ------------------------------------------------------------------------ */
/* API */

SluiceDirectChannel *sluice_direct_channel_new(SluiceAgent *agent, guint stream, guint component,
                                               const gchar *cert_file, const gchar *key_file,
                                               gboolean client, const gchar *peer_fingerprint,
                                               GError **error)
{
    sluice_coord_dtls_config cfg;
    SluiceDirectChannel *self;
    GMainContext *ctx = NULL;
    SluiceClock *clock = NULL;
    uint8_t fp[32];
    int err = 0;

    g_return_val_if_fail(SLUICE_IS_AGENT(agent), NULL);
    if (!stream || !component || !cert_file || !key_file || !peer_fingerprint) {
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                    "direct channel: stream, component, identity files and the peer "
                    "fingerprint are required");
        return NULL;
    }
    if (sluice_coord_fingerprint_parse(peer_fingerprint, fp) < 0) {
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                    "direct channel: \"%s\" is not a SHA-256 fingerprint", peer_fingerprint);
        return NULL;
    }
    sluice_coord_dtls_config_init(&cfg);
    cfg.cert_file = cert_file;
    cfg.key_file = key_file;
    cfg.client = client ? true : false;
    cfg.peer_fingerprint = fp;
    self = g_object_new(SLUICE_TYPE_DIRECT_CHANNEL, NULL);
    self->core = sluice_coord_dtls_new(&cfg, &err);
    if (!self->core) {
        g_set_error(error, SLUICE_GIO_ERROR,
                    err == SLUICE_ERR_INVALID ? SLUICE_GIO_ERROR_INVALID : SLUICE_GIO_ERROR_FAILED,
                    "direct channel: cannot use the identity %s / %s: %s", cert_file, key_file,
                    sluice_strerror(err));
        g_object_unref(self);
        return NULL;
    }
    self->agent = g_object_ref(agent);
    self->stream = stream;
    self->component = component;
    self->client = client;
    g_object_get(agent, "main-context", &ctx, "clock", &clock, NULL);
    self->timer = sluice_timer_new(ctx, clock, self->guard, on_timer);
    if (ctx)
        g_main_context_unref(ctx);
    g_clear_object(&clock);
    sluice_agent_set_recv_func(agent, stream, component, on_recv, sluice_guard_ref(self->guard),
                               sluice_guard_unref);
    self->h_selected =
        g_signal_connect_data(agent, "selected-pair-changed", G_CALLBACK(on_selected),
                              sluice_guard_ref(self->guard), guard_closure_notify, 0);
    self->h_state = g_signal_connect_data(agent, "state-changed", G_CALLBACK(on_state),
                                          sluice_guard_ref(self->guard), guard_closure_notify, 0);
    /* The pair may already be selected: look on the context. */
    sluice_timer_set(self->timer, 0);
    return self;
}

SluiceDirectChannel *sluice_direct_channel_new_for_coord(SluiceCoordClient *client,
                                                         SluiceAgent *agent, guint stream,
                                                         guint component, gboolean controlling,
                                                         const gchar *peer_fingerprint,
                                                         GError **error)
{
    gchar *cert = NULL, *key = NULL;
    SluiceDirectChannel *ch;

    g_return_val_if_fail(SLUICE_IS_COORD_CLIENT(client), NULL);
    g_object_get(client, "cert-file", &cert, "key-file", &key, NULL);
    if (!cert || !key) {
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE,
                    "direct channel: the coordinator client has no identity yet (connect it "
                    "first)");
        ch = NULL;
    } else {
        ch = sluice_direct_channel_new(agent, stream, component, cert, key, controlling,
                                       peer_fingerprint, error);
    }
    g_free(cert);
    g_free(key);
    return ch;
}

gboolean sluice_direct_channel_send(SluiceDirectChannel *ch, const guint8 *data, gsize len,
                                    GError **error)
{
    int rc;
    g_return_val_if_fail(SLUICE_IS_DIRECT_CHANNEL(ch), FALSE);
    g_mutex_lock(&ch->lock);
    rc = sluice_coord_dtls_send(ch->core, data, len);
    if (rc == 0)
        transmit(ch);
    g_mutex_unlock(&ch->lock);
    if (rc == 0)
        return TRUE;
    if (rc == SLUICE_ERR_INVALID)
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                    "a direct-channel message is 1..%" G_GSIZE_FORMAT
                    " bytes, not %" G_GSIZE_FORMAT,
                    sluice_coord_dtls_max_payload(ch->core), len);
    else if (rc == SLUICE_ERR_FULL)
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_FULL,
                    "direct channel: too much output waiting");
    else if (rc == SLUICE_ERR_STATE)
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE,
                    "direct channel: not established, or closed");
    else
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE, "direct channel failed: %s",
                    sluice_coord_dtls_error_text(ch->core));
    return FALSE;
}

gboolean sluice_direct_channel_is_established(SluiceDirectChannel *ch)
{
    gboolean r;
    g_return_val_if_fail(SLUICE_IS_DIRECT_CHANNEL(ch), FALSE);
    g_mutex_lock(&ch->lock);
    r = sluice_coord_dtls_established(ch->core);
    g_mutex_unlock(&ch->lock);
    return r;
}

gsize sluice_direct_channel_get_max_payload(SluiceDirectChannel *ch)
{
    g_return_val_if_fail(SLUICE_IS_DIRECT_CHANNEL(ch), 0);
    return sluice_coord_dtls_max_payload(ch->core);
}

void sluice_direct_channel_close(SluiceDirectChannel *ch)
{
    g_return_if_fail(SLUICE_IS_DIRECT_CHANNEL(ch));
    g_mutex_lock(&ch->lock);
    if (ch->core && ch->agent) {
        sluice_coord_dtls_close(ch->core);
        transmit(ch);
        ch->told_end = TRUE; /* no signal after our own close */
        if (ch->timer)
            sluice_timer_set(ch->timer, SLUICE_NEVER);
    }
    g_mutex_unlock(&ch->lock);
}

/* ------------------------------------------------------------------------ */
/* GObject */

static void sluice_direct_channel_init(SluiceDirectChannel *self)
{
    g_mutex_init(&self->lock);
    g_queue_init(&self->unsent);
    self->guard = sluice_guard_new(self);
}

static void sluice_direct_channel_dispose(GObject *obj)
{
    SluiceDirectChannel *self = SLUICE_DIRECT_CHANNEL(obj);

    /* Wait for a callback running on the context; none runs after this. */
    sluice_guard_close(self->guard);
    if (self->agent) {
        sluice_direct_channel_close(self); /* the peer hears of it */
        g_signal_handler_disconnect(self->agent, self->h_selected);
        g_signal_handler_disconnect(self->agent, self->h_state);
        sluice_agent_set_recv_func(self->agent, self->stream, self->component, NULL, NULL, NULL);
        g_clear_object(&self->agent);
    }
    if (self->timer) {
        sluice_timer_free(self->timer);
        self->timer = NULL;
    }
    G_OBJECT_CLASS(sluice_direct_channel_parent_class)->dispose(obj);
}

static void sluice_direct_channel_finalize(GObject *obj)
{
    SluiceDirectChannel *self = SLUICE_DIRECT_CHANNEL(obj);
    sluice_coord_dtls_free(self->core);
    g_queue_clear_full(&self->unsent, (GDestroyNotify)g_bytes_unref);
    sluice_guard_unref(self->guard);
    g_mutex_clear(&self->lock);
    G_OBJECT_CLASS(sluice_direct_channel_parent_class)->finalize(obj);
}

static void sluice_direct_channel_class_init(SluiceDirectChannelClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    oc->dispose = sluice_direct_channel_dispose;
    oc->finalize = sluice_direct_channel_finalize;

    signals[SIG_ESTABLISHED] = g_signal_new("established", G_TYPE_FROM_CLASS(klass),
                                            G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 0);
    signals[SIG_MESSAGE] = g_signal_new("message", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_BYTES);
    signals[SIG_ERROR] = g_signal_new("error", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                      NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
    signals[SIG_CLOSED] = g_signal_new("closed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                       NULL, NULL, NULL, G_TYPE_NONE, 0);
}
