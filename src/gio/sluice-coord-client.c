/* SPDX-License-Identifier: MIT */
/* SluiceCoordClient: the coordinator client core on a GMainContext. One
 * mutex guards the core; everything it reports is copied into a queue and
 * emitted by the context's callbacks after the mutex is released (the
 * same discipline as SluiceAgent). */
#include "sluice-coord-client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "gio-internal.h"
#include "sluice-gio.h"

#define COORD_DEFAULT_PORT 7878
#define READ_CHUNK 65536
#define WRITE_CHUNK 32768

/* A copied core event. */
typedef struct {
    sluice_coord_event_type type;
    guint stream;
    sluice_coord_kind kind;
    gint code;
    gchar *name, *label, *sender, *reason, *fingerprint;
    gchar *turn_username, *turn_password;
    gchar **turn_uris;
    GBytes *data;
    guint64 count;
    guint max_message;
} QueuedEvent;

struct _SluiceCoordClient {
    GObject parent;
    GMutex lock;
    GMainContext *ctx;
    SluiceGuard *guard;
    SluiceTimer *timer;
    sluice_coord_client *core;
    gchar *name, *cert_file, *key_file, *ca_file, *pin, *server_name;
    gboolean non_blocking;
    gboolean started;
    GCancellable *cancel;
    GSocketConnection *conn;
    GSocket *sock;
    GSource *in_src, *out_src;
    guint8 *wbuf;
    gsize wlen, woff;
    gboolean close_after_write;
    GQueue events; /* QueuedEvent*, emitted on the context */
    gboolean finished;
};

G_DEFINE_TYPE(SluiceCoordClient, sluice_coord_client_gio, G_TYPE_OBJECT)

enum {
    PROP_0,
    PROP_NAME,
    PROP_CERT_FILE,
    PROP_KEY_FILE,
    PROP_CA_FILE,
    PROP_PIN,
    PROP_SERVER_NAME,
    PROP_NON_BLOCKING,
    PROP_MAIN_CONTEXT,
};

enum {
    SIG_CONNECTED,
    SIG_REFUSED,
    SIG_CLOSED,
    SIG_STREAM_INCOMING,
    SIG_STREAM_ACCEPTED,
    SIG_STREAM_REFUSED,
    SIG_MESSAGE,
    SIG_LAG,
    SIG_STREAM_FINISHED,
    SIG_STREAM_CLOSED,
    SIG_WRITABLE,
    N_SIGNALS
};
static guint signals[N_SIGNALS];

static void queued_free(QueuedEvent *q)
{
    g_free(q->name);
    g_free(q->label);
    g_free(q->sender);
    g_free(q->reason);
    g_free(q->fingerprint);
    g_free(q->turn_username);
    g_free(q->turn_password);
    g_strfreev(q->turn_uris);
    if (q->data)
        g_bytes_unref(q->data);
    g_free(q);
}

static guint64 mono_now(void)
{
    return (guint64)g_get_monotonic_time();
}

/* ------------------------------------------------------------------------ */
/* Pumping the core (lock held) */

static void watch_output(SluiceCoordClient *self, gboolean on);
static void drop_socket(SluiceCoordClient *self);

/* Copy every core event into the queue. */
static void drain_events(SluiceCoordClient *self)
{
    sluice_coord_event ev;
    while (sluice_coord_client_poll_event(self->core, &ev)) {
        QueuedEvent *q = g_new0(QueuedEvent, 1);
        q->type = ev.type;
        q->stream = ev.stream;
        q->kind = ev.kind;
        q->code = ev.code;
        q->name = g_strdup(ev.name ? ev.name : "");
        q->label = g_strdup(ev.label ? ev.label : "");
        q->sender = g_strdup(ev.sender ? ev.sender : "");
        q->reason = g_strdup(ev.reason && *ev.reason ? ev.reason : sluice_coord_code_name(ev.code));
        if (ev.has_peer_fingerprint) {
            char fp[96];
            if (sluice_coord_fingerprint_format(ev.peer_fingerprint, fp, sizeof fp) > 0)
                q->fingerprint = g_strdup(fp);
        }
        q->turn_username = g_strdup(ev.turn.username ? ev.turn.username : "");
        q->turn_password = g_strdup(ev.turn.password ? ev.turn.password : "");
        q->turn_uris = g_new0(gchar *, ev.turn.n_uris + 1);
        for (size_t i = 0; i < ev.turn.n_uris; i++)
            q->turn_uris[i] = g_strdup(ev.turn.uris[i]);
        if (ev.type == SLUICE_COORD_EVENT_DATA)
            q->data = g_bytes_new(ev.data, ev.len);
        q->count = ev.count;
        q->max_message = ev.max_message;
        if (ev.type == SLUICE_COORD_EVENT_REFUSED || ev.type == SLUICE_COORD_EVENT_CLOSED)
            self->finished = TRUE;
        g_queue_push_tail(&self->events, q);
    }
}

/* Write what the core has for the socket until it would block. */
static void flush_output(SluiceCoordClient *self, guint64 now)
{
    while (self->sock) {
        if (self->woff == self->wlen) {
            sluice_coord_transmit meta;
            int n = sluice_coord_client_poll_transmit(self->core, now, self->wbuf, WRITE_CHUNK,
                                                      &meta);
            if (n <= 0)
                break;
            self->wlen = (gsize)n;
            self->woff = 0;
            self->close_after_write = meta.close;
        }
        GError *e = NULL;
        gssize w = g_socket_send(self->sock, (const gchar *)self->wbuf + self->woff,
                                 self->wlen - self->woff, NULL, &e);
        if (w < 0) {
            gboolean again = g_error_matches(e, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
            g_error_free(e);
            if (again) {
                watch_output(self, TRUE);
                return;
            }
            sluice_coord_client_connection_closed(self->core, now);
            drop_socket(self);
            break;
        }
        self->woff += (gsize)w;
        if (self->woff == self->wlen && self->close_after_write) {
            drop_socket(self);
            break;
        }
    }
    watch_output(self, FALSE);
}

/* After any input: output, events, the next deadline. */
static void pump(SluiceCoordClient *self, guint64 now)
{
    flush_output(self, now);
    drain_events(self);
    if (self->timer)
        sluice_timer_set(self->timer, self->events.length
                                          ? 0
                                          : sluice_coord_client_next_timeout(self->core));
}

/* ------------------------------------------------------------------------ */
/* Emitting (no lock held, on the context) */

static void emit_events(SluiceCoordClient *self)
{
    for (;;) {
        g_mutex_lock(&self->lock);
        QueuedEvent *q = g_queue_pop_head(&self->events);
        g_mutex_unlock(&self->lock);
        if (!q)
            return;
        SluiceCoordStreamInfo info = {
            .stream = q->stream,
            .kind = q->kind,
            .name = q->name,
            .label = q->label,
            .fingerprint = q->fingerprint,
            .turn_username = q->turn_username,
            .turn_password = q->turn_password,
            .turn_uris = (const gchar *const *)q->turn_uris,
        };
        switch (q->type) {
        case SLUICE_COORD_EVENT_CONNECTED:
            g_signal_emit(self, signals[SIG_CONNECTED], 0, q->max_message);
            break;
        case SLUICE_COORD_EVENT_REFUSED:
            g_signal_emit(self, signals[SIG_REFUSED], 0, q->code, q->reason);
            break;
        case SLUICE_COORD_EVENT_CLOSED:
            g_signal_emit(self, signals[SIG_CLOSED], 0, q->code, q->reason);
            break;
        case SLUICE_COORD_EVENT_STREAM_INCOMING:
            g_signal_emit(self, signals[SIG_STREAM_INCOMING], 0, &info);
            break;
        case SLUICE_COORD_EVENT_STREAM_ACCEPTED:
            g_signal_emit(self, signals[SIG_STREAM_ACCEPTED], 0, &info);
            break;
        case SLUICE_COORD_EVENT_STREAM_REFUSED:
            g_signal_emit(self, signals[SIG_STREAM_REFUSED], 0, q->stream, q->code, q->reason);
            break;
        case SLUICE_COORD_EVENT_DATA:
            g_signal_emit(self, signals[SIG_MESSAGE], 0, q->stream, q->sender, q->data);
            break;
        case SLUICE_COORD_EVENT_LAG:
            g_signal_emit(self, signals[SIG_LAG], 0, q->stream, q->count);
            break;
        case SLUICE_COORD_EVENT_STREAM_FINISHED:
            g_signal_emit(self, signals[SIG_STREAM_FINISHED], 0, q->stream);
            break;
        case SLUICE_COORD_EVENT_STREAM_CLOSED:
            g_signal_emit(self, signals[SIG_STREAM_CLOSED], 0, q->stream, q->code, q->reason);
            break;
        case SLUICE_COORD_EVENT_WRITABLE:
            g_signal_emit(self, signals[SIG_WRITABLE], 0, q->stream);
            break;
        }
        queued_free(q);
    }
}

/* ------------------------------------------------------------------------ */
/* Socket callbacks */

static gboolean on_readable(GSocket *sock, GIOCondition cond, gpointer data)
{
    SluiceCoordClient *self = sluice_guard_enter(data);
    guint8 buf[READ_CHUNK];
    (void)cond;
    if (!self)
        return G_SOURCE_REMOVE;
    g_object_ref(self);
    g_mutex_lock(&self->lock);
    guint64 now = mono_now();
    for (int rounds = 0; rounds < 16 && self->sock == sock; rounds++) {
        GError *e = NULL;
        gssize n = g_socket_receive(sock, (gchar *)buf, sizeof buf, NULL, &e);
        if (n < 0 && g_error_matches(e, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
            g_error_free(e);
            break;
        }
        if (n <= 0)
            g_debug("coordinator connection: %s", e ? e->message : "end of stream");
        g_clear_error(&e);
        if (n <= 0) {
            sluice_coord_client_connection_closed(self->core, now);
            drop_socket(self);
            break;
        }
        sluice_coord_client_handle_stream(self->core, now, buf, (size_t)n);
        flush_output(self, now);
    }
    pump(self, now);
    g_mutex_unlock(&self->lock);
    sluice_guard_leave(data);
    emit_events(self);
    g_object_unref(self);
    return G_SOURCE_CONTINUE;
}

static gboolean on_writable(GSocket *sock, GIOCondition cond, gpointer data)
{
    SluiceCoordClient *self = sluice_guard_enter(data);
    (void)sock;
    (void)cond;
    if (!self)
        return G_SOURCE_REMOVE;
    g_object_ref(self);
    g_mutex_lock(&self->lock);
    pump(self, mono_now());
    g_mutex_unlock(&self->lock);
    sluice_guard_leave(data);
    emit_events(self);
    g_object_unref(self);
    return G_SOURCE_CONTINUE;
}

static GSource *socket_source(SluiceCoordClient *self, GIOCondition cond, GSocketSourceFunc fn)
{
    GSource *s = g_socket_create_source(self->sock, cond, NULL);
    g_source_set_callback(s, (GSourceFunc)(void (*)(void))fn, sluice_guard_ref(self->guard),
                          sluice_guard_unref);
    g_source_attach(s, self->ctx);
    return s;
}

static void watch_output(SluiceCoordClient *self, gboolean on)
{
    if (on && !self->out_src && self->sock)
        self->out_src = socket_source(self, G_IO_OUT, on_writable);
    else if (!on && self->out_src) {
        g_source_destroy(self->out_src);
        g_source_unref(self->out_src);
        self->out_src = NULL;
    }
}

static void drop_socket(SluiceCoordClient *self)
{
    watch_output(self, FALSE);
    if (self->in_src) {
        g_source_destroy(self->in_src);
        g_source_unref(self->in_src);
        self->in_src = NULL;
    }
    if (self->sock)
        g_socket_close(self->sock, NULL);
    g_clear_object(&self->sock);
    g_clear_object(&self->conn);
    self->wlen = self->woff = 0;
}

static void on_timer(gpointer data, guint64 now)
{
    SluiceCoordClient *self = data;
    g_object_ref(self);
    g_mutex_lock(&self->lock);
    sluice_coord_client_handle_timeout(self->core, now);
    pump(self, now);
    g_mutex_unlock(&self->lock);
    emit_events(self);
    g_object_unref(self);
}

/* The TCP connection is up (or failed): start TLS. On the context. */
static void on_connected(GObject *src, GAsyncResult *res, gpointer data)
{
    SluiceGuard *guard = data;
    GError *e = NULL;
    GSocketConnection *conn = g_socket_client_connect_finish(G_SOCKET_CLIENT(src), res, &e);
    SluiceCoordClient *self = sluice_guard_enter(guard);
    if (!self) {
        g_clear_object(&conn);
        g_clear_error(&e);
        sluice_guard_unref(guard);
        return;
    }
    g_object_ref(self);
    g_mutex_lock(&self->lock);
    guint64 now = mono_now();
    if (!conn) {
        /* No TCP: the core reports CONNECTION_LOST as REFUSED. */
        g_message("sluice-coord: cannot connect: %s", e->message);
        sluice_coord_client_start(self->core, now);
        sluice_coord_client_connection_closed(self->core, now);
    } else {
        self->conn = conn;
        self->sock = g_object_ref(g_socket_connection_get_socket(conn));
        g_socket_set_blocking(self->sock, FALSE);
        /* The client's 10 s is for connecting. Left on the socket it would
         * end an idle connection: GSocket fails a read with TIMED_OUT once
         * nothing has moved for that long (found by examples/webrtc-call,
         * whose signalling goes quiet once the call is up). */
        g_socket_set_timeout(self->sock, 0);
        g_socket_set_option(self->sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
        self->in_src = socket_source(self, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable);
        sluice_coord_client_start(self->core, now);
    }
    g_clear_error(&e);
    pump(self, now);
    g_mutex_unlock(&self->lock);
    sluice_guard_leave(guard);
    sluice_guard_unref(guard);
    emit_events(self);
    g_object_unref(self);
}

typedef struct {
    SluiceGuard *guard;
    GSocketConnectable *where;
    GCancellable *cancel;
    GMainContext *ctx;
} ConnectStart;

/* On the client's context (the thread that owns it). */
static gboolean connect_start(gpointer data)
{
    ConnectStart *cs = data;
    GSocketClient *sc = g_socket_client_new();
    g_socket_client_set_timeout(sc, 10);
    /* A direct TCP connection: no proxy lookup (which would also load
     * GIO's libproxy module, C++ that cannot run under ASan). */
    g_socket_client_set_enable_proxy(sc, FALSE);
    /* We are dispatching ctx, so we own it and may make it the default. */
    g_main_context_push_thread_default(cs->ctx);
    g_socket_client_connect_async(sc, cs->where, cs->cancel, on_connected, cs->guard);
    g_main_context_pop_thread_default(cs->ctx);
    g_main_context_unref(cs->ctx);
    g_object_unref(sc);
    g_object_unref(cs->where);
    g_object_unref(cs->cancel);
    g_free(cs);
    return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------------ */
/* API */

static gboolean default_identity(SluiceCoordClient *self, GError **error)
{
    if (self->cert_file && self->key_file)
        return TRUE;
    gchar *dir = g_build_filename(g_get_user_state_dir(), "sluice", NULL);
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_FAILED, "cannot create %s", dir);
        g_free(dir);
        return FALSE;
    }
    gchar *base = g_strconcat(self->name, ".crt", NULL);
    g_free(self->cert_file);
    self->cert_file = g_build_filename(dir, base, NULL);
    g_free(base);
    base = g_strconcat(self->name, ".key", NULL);
    g_free(self->key_file);
    self->key_file = g_build_filename(dir, base, NULL);
    g_free(base);
    g_free(dir);
    int rc = sluice_coord_ensure_identity(self->name, self->cert_file, self->key_file, NULL);
    if (rc < 0) {
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_FAILED,
                    "cannot create the identity %s: %s", self->cert_file, sluice_strerror(rc));
        return FALSE;
    }
    return TRUE;
}

gboolean sluice_coord_client_gio_connect(SluiceCoordClient *self, const gchar *address,
                                         GError **error)
{
    sluice_coord_client_config cfg;
    gchar *host = NULL;
    guint16 port = 0;
    int err = 0;
    g_return_val_if_fail(SLUICE_IS_COORD_CLIENT(self), FALSE);
    GSocketConnectable *where =
        g_network_address_parse(address, COORD_DEFAULT_PORT, error);
    if (!where)
        return FALSE;
    host = g_strdup(g_network_address_get_hostname(G_NETWORK_ADDRESS(where)));
    port = g_network_address_get_port(G_NETWORK_ADDRESS(where));
    (void)port;
    g_mutex_lock(&self->lock);
    if (self->started) {
        g_mutex_unlock(&self->lock);
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE, "already connecting");
        goto fail;
    }
    if (!sluice_coord_name_valid(self->name ? self->name : "")) {
        g_mutex_unlock(&self->lock);
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                    "client name \"%s\": 1..63 of A-Z a-z 0-9 . _ -, starting with a letter "
                    "or digit", self->name ? self->name : "");
        goto fail;
    }
    if (!default_identity(self, error)) {
        g_mutex_unlock(&self->lock);
        goto fail;
    }
    sluice_coord_client_config_init(&cfg);
    cfg.name = self->name;
    cfg.cert_file = self->cert_file;
    cfg.key_file = self->key_file;
    cfg.server_name = self->server_name ? self->server_name : host;
    cfg.ca_file = self->ca_file;
    cfg.non_blocking = self->non_blocking;
    if (self->pin) {
        if (sluice_coord_fingerprint_parse(self->pin, cfg.pinned_sha256) != 0) {
            g_mutex_unlock(&self->lock);
            g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                        "pin \"%s\" is not a SHA-256 fingerprint (AB:CD:... or 64 hex digits)",
                        self->pin);
            goto fail;
        }
        cfg.pinned = TRUE;
    }
    self->core = sluice_coord_client_new(&cfg, &err);
    if (!self->core) {
        g_mutex_unlock(&self->lock);
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                    "coordinator client: %s (identity %s, CA %s)", sluice_strerror(err),
                    self->cert_file, self->ca_file ? self->ca_file : "system store");
        goto fail;
    }
    self->started = TRUE;
    self->timer = sluice_timer_new(self->ctx, NULL, self->guard, on_timer);
    g_mutex_unlock(&self->lock);

    /* The async connect must start on the client's context (its result
     * is delivered to the thread-default context of the caller). */
    ConnectStart *cs = g_new0(ConnectStart, 1);
    cs->guard = sluice_guard_ref(self->guard);
    cs->where = where;
    cs->cancel = g_object_ref(self->cancel);
    cs->ctx = g_main_context_ref(self->ctx);
    g_main_context_invoke_full(self->ctx, G_PRIORITY_DEFAULT, connect_start, cs, NULL);
    g_free(host);
    return TRUE;
fail:
    g_object_unref(where);
    g_free(host);
    return FALSE;
}

/* Core calls from the API: under the lock; afterwards the output is
 * written and the context emits what the call produced. */
static guint64 api_begin(SluiceCoordClient *self)
{
    g_mutex_lock(&self->lock);
    return mono_now();
}

static int api_end(SluiceCoordClient *self, guint64 now, int rc)
{
    if (self->core)
        pump(self, now);
    if (self->timer && self->events.length)
        sluice_timer_set(self->timer, 0);
    g_mutex_unlock(&self->lock);
    return rc;
}

void sluice_coord_client_gio_close(SluiceCoordClient *self, const gchar *reason)
{
    g_return_if_fail(SLUICE_IS_COORD_CLIENT(self));
    guint64 now = api_begin(self);
    api_end(self, now, self->core ? sluice_coord_client_close(self->core, now, reason) : 0);
}

gboolean sluice_coord_client_gio_is_connected(SluiceCoordClient *self)
{
    gboolean r;
    g_return_val_if_fail(SLUICE_IS_COORD_CLIENT(self), FALSE);
    g_mutex_lock(&self->lock);
    r = self->core && sluice_coord_client_get_state(self->core) == SLUICE_COORD_CLIENT_CONNECTED;
    g_mutex_unlock(&self->lock);
    return r;
}

static void set_code_error(GError **error, int rc, const char *what)
{
    int code = rc == SLUICE_ERR_FULL        ? SLUICE_GIO_ERROR_FULL
               : rc == SLUICE_ERR_STATE     ? SLUICE_GIO_ERROR_STATE
               : rc == SLUICE_ERR_INVALID   ? SLUICE_GIO_ERROR_INVALID
               : rc == SLUICE_ERR_NOT_FOUND ? SLUICE_GIO_ERROR_INVALID
                                            : SLUICE_GIO_ERROR_FAILED;
    g_set_error(error, SLUICE_GIO_ERROR, code, "%s: %s", what, sluice_strerror(rc));
}

guint sluice_coord_client_gio_open_stream(SluiceCoordClient *self, sluice_coord_kind kind,
                                          const gchar *name, const gchar *label, guint flags,
                                          guint64 wait_timeout_us, GError **error)
{
    g_return_val_if_fail(SLUICE_IS_COORD_CLIENT(self), 0);
    guint64 now = api_begin(self);
    int64_t id = self->core ? sluice_coord_client_open_stream(self->core, now, kind, name, label,
                                                              flags, wait_timeout_us)
                            : SLUICE_ERR_STATE;
    api_end(self, now, 0);
    if (id <= 0) {
        set_code_error(error, (int)id, "open stream");
        return 0;
    }
    return (guint)id;
}

gboolean sluice_coord_client_gio_accept_stream(SluiceCoordClient *self, guint stream)
{
    g_return_val_if_fail(SLUICE_IS_COORD_CLIENT(self), FALSE);
    guint64 now = api_begin(self);
    return api_end(self, now,
                   self->core ? sluice_coord_client_accept_stream(self->core, now, stream)
                              : SLUICE_ERR_STATE) == 0;
}

gboolean sluice_coord_client_gio_refuse_stream(SluiceCoordClient *self, guint stream, gint code,
                                               const gchar *reason)
{
    g_return_val_if_fail(SLUICE_IS_COORD_CLIENT(self), FALSE);
    guint64 now = api_begin(self);
    return api_end(self, now,
                   self->core ? sluice_coord_client_refuse_stream(self->core, now, stream, code,
                                                                  reason)
                              : SLUICE_ERR_STATE) == 0;
}

gboolean sluice_coord_client_gio_send(SluiceCoordClient *self, guint stream, const guint8 *data,
                                      gsize len, GError **error)
{
    g_return_val_if_fail(SLUICE_IS_COORD_CLIENT(self), FALSE);
    guint64 now = api_begin(self);
    int rc = api_end(self, now,
                     self->core ? sluice_coord_client_send(self->core, now, stream, data, len)
                                : SLUICE_ERR_STATE);
    if (rc != 0) {
        set_code_error(error, rc, "send");
        return FALSE;
    }
    return TRUE;
}

gboolean sluice_coord_client_gio_close_stream(SluiceCoordClient *self, guint stream)
{
    g_return_val_if_fail(SLUICE_IS_COORD_CLIENT(self), FALSE);
    guint64 now = api_begin(self);
    return api_end(self, now,
                   self->core ? sluice_coord_client_close_stream(self->core, now, stream)
                              : SLUICE_ERR_STATE) == 0;
}

SluiceCoordClient *sluice_coord_client_gio_new(GMainContext *ctx, const gchar *name)
{
    return g_object_new(SLUICE_TYPE_COORD_CLIENT, "main-context", ctx, "name", name, NULL);
}

/* ------------------------------------------------------------------------ */
/* GObject */

static void sluice_coord_client_gio_init(SluiceCoordClient *self)
{
    g_mutex_init(&self->lock);
    g_queue_init(&self->events);
    self->guard = sluice_guard_new(self);
    self->cancel = g_cancellable_new();
    self->wbuf = g_malloc(WRITE_CHUNK);
}

static void sluice_coord_client_gio_constructed(GObject *obj)
{
    SluiceCoordClient *self = SLUICE_COORD_CLIENT(obj);
    G_OBJECT_CLASS(sluice_coord_client_gio_parent_class)->constructed(obj);
    if (!self->ctx)
        self->ctx = sluice_gio_shared_context();
}

static void sluice_coord_client_gio_dispose(GObject *obj)
{
    SluiceCoordClient *self = SLUICE_COORD_CLIENT(obj);
    sluice_guard_close(self->guard);
    g_cancellable_cancel(self->cancel);
    g_mutex_lock(&self->lock);
    if (self->timer) {
        sluice_timer_free(self->timer);
        self->timer = NULL;
    }
    drop_socket(self);
    g_mutex_unlock(&self->lock);
    G_OBJECT_CLASS(sluice_coord_client_gio_parent_class)->dispose(obj);
}

static void sluice_coord_client_gio_finalize(GObject *obj)
{
    SluiceCoordClient *self = SLUICE_COORD_CLIENT(obj);
    sluice_coord_client_free(self->core);
    g_queue_clear_full(&self->events, (GDestroyNotify)queued_free);
    sluice_guard_unref(self->guard);
    g_clear_object(&self->cancel);
    if (self->ctx)
        g_main_context_unref(self->ctx);
    g_free(self->name);
    g_free(self->cert_file);
    g_free(self->key_file);
    g_free(self->ca_file);
    g_free(self->pin);
    g_free(self->server_name);
    g_free(self->wbuf);
    g_mutex_clear(&self->lock);
    G_OBJECT_CLASS(sluice_coord_client_gio_parent_class)->finalize(obj);
}

static void set_property(GObject *obj, guint id, const GValue *v, GParamSpec *ps)
{
    SluiceCoordClient *self = SLUICE_COORD_CLIENT(obj);
    gchar **slot = NULL;
    switch (id) {
    case PROP_NAME:
        slot = &self->name;
        break;
    case PROP_CERT_FILE:
        slot = &self->cert_file;
        break;
    case PROP_KEY_FILE:
        slot = &self->key_file;
        break;
    case PROP_CA_FILE:
        slot = &self->ca_file;
        break;
    case PROP_PIN:
        slot = &self->pin;
        break;
    case PROP_SERVER_NAME:
        slot = &self->server_name;
        break;
    case PROP_NON_BLOCKING:
        self->non_blocking = g_value_get_boolean(v);
        return;
    case PROP_MAIN_CONTEXT:
        self->ctx = g_value_get_boxed(v) ? g_main_context_ref(g_value_get_boxed(v)) : NULL;
        return;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
        return;
    }
    g_mutex_lock(&self->lock);
    g_free(*slot);
    *slot = g_value_dup_string(v);
    g_mutex_unlock(&self->lock);
}

static void get_property(GObject *obj, guint id, GValue *v, GParamSpec *ps)
{
    SluiceCoordClient *self = SLUICE_COORD_CLIENT(obj);
    g_mutex_lock(&self->lock);
    switch (id) {
    case PROP_NAME:
        g_value_set_string(v, self->name);
        break;
    case PROP_CERT_FILE:
        g_value_set_string(v, self->cert_file);
        break;
    case PROP_KEY_FILE:
        g_value_set_string(v, self->key_file);
        break;
    case PROP_CA_FILE:
        g_value_set_string(v, self->ca_file);
        break;
    case PROP_PIN:
        g_value_set_string(v, self->pin);
        break;
    case PROP_SERVER_NAME:
        g_value_set_string(v, self->server_name);
        break;
    case PROP_NON_BLOCKING:
        g_value_set_boolean(v, self->non_blocking);
        break;
    case PROP_MAIN_CONTEXT:
        g_value_set_boxed(v, self->ctx);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    }
    g_mutex_unlock(&self->lock);
}

static void sluice_coord_client_gio_class_init(SluiceCoordClientClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
    oc->constructed = sluice_coord_client_gio_constructed;
    oc->dispose = sluice_coord_client_gio_dispose;
    oc->finalize = sluice_coord_client_gio_finalize;
    oc->set_property = set_property;
    oc->get_property = get_property;
    g_object_class_install_property(
        oc, PROP_NAME,
        g_param_spec_string("name", "Name", "This client's name at the coordinator", NULL,
                            G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));
    g_object_class_install_property(
        oc, PROP_CERT_FILE,
        g_param_spec_string("cert-file", "Certificate",
                            "PEM certificate valid for the name (default: generated and kept "
                            "in $XDG_STATE_HOME/sluice)",
                            NULL, rw));
    g_object_class_install_property(
        oc, PROP_KEY_FILE,
        g_param_spec_string("key-file", "Key", "PEM private key of cert-file", NULL, rw));
    g_object_class_install_property(
        oc, PROP_CA_FILE,
        g_param_spec_string("ca-file", "CA file",
                            "PEM CA bundle to verify the coordinator (default: system store)",
                            NULL, rw));
    g_object_class_install_property(
        oc, PROP_PIN,
        g_param_spec_string("pin", "Pinned fingerprint",
                            "SHA-256 fingerprint of the coordinator's certificate "
                            "(AB:CD:...); replaces the CA and name checks",
                            NULL, rw));
    g_object_class_install_property(
        oc, PROP_SERVER_NAME,
        g_param_spec_string("server-name", "Server name",
                            "Name checked in the coordinator's certificate (default: the "
                            "host connected to)",
                            NULL, rw));
    g_object_class_install_property(
        oc, PROP_NON_BLOCKING,
        g_param_spec_boolean("non-blocking", "Non-blocking receive",
                             "Never back-pressure senders; drop and report lag instead", FALSE,
                             rw));
    g_object_class_install_property(
        oc, PROP_MAIN_CONTEXT,
        g_param_spec_boxed("main-context", "Main context",
                           "Context of the connection and signals (NULL: the shared "
                           "sluice-gio thread)",
                           G_TYPE_MAIN_CONTEXT,
                           G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));
    GType t = G_TYPE_FROM_CLASS(klass);
    signals[SIG_CONNECTED] = g_signal_new("connected", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                          NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
    signals[SIG_REFUSED] = g_signal_new("refused", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                        G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_STRING);
    signals[SIG_CLOSED] = g_signal_new("closed", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                       G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_STRING);
    signals[SIG_STREAM_INCOMING] = g_signal_new("stream-incoming", t, G_SIGNAL_RUN_LAST, 0, NULL,
                                                NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
    signals[SIG_STREAM_ACCEPTED] = g_signal_new("stream-accepted", t, G_SIGNAL_RUN_LAST, 0, NULL,
                                                NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
    signals[SIG_STREAM_REFUSED] =
        g_signal_new("stream-refused", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 3,
                     G_TYPE_UINT, G_TYPE_INT, G_TYPE_STRING);
    signals[SIG_MESSAGE] = g_signal_new("message", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                        G_TYPE_NONE, 3, G_TYPE_UINT, G_TYPE_STRING, G_TYPE_BYTES);
    signals[SIG_LAG] = g_signal_new("lag", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                    G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_UINT64);
    signals[SIG_STREAM_FINISHED] = g_signal_new("stream-finished", t, G_SIGNAL_RUN_LAST, 0, NULL,
                                                NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
    signals[SIG_STREAM_CLOSED] =
        g_signal_new("stream-closed", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 3,
                     G_TYPE_UINT, G_TYPE_INT, G_TYPE_STRING);
    signals[SIG_WRITABLE] = g_signal_new("writable", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                         G_TYPE_NONE, 1, G_TYPE_UINT);
}
