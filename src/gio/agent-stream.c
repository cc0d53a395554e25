/* SPDX-License-Identifier: MIT */
/* SluiceAgent's connections to TURN servers over TCP and TLS (RFC 8656
 * §3.1; turn:...?transport=tcp and turns:, RFC 7065), driven the way
 * sluice/ice.h "Streams to TURN servers" asks: the first transmit for
 * (base, server, transport) opens a non-blocking TCP connection from the
 * base's IP; what is read goes to sluice_ice_agent_handle_stream() in
 * order; a failure goes to sluice_ice_agent_handle_stream_closed(). TLS runs
 * inside the core over memory BIOs: here it is TCP.
 *
 * Locking: the table of links, opening, closing and reading run under the
 * agent lock, on the agent's context for everything that waits. Each link
 * also has its own lock over its socket writes and its backlog (order:
 * agent lock, then link lock), so that icesink can write media on a TCP
 * route without the agent lock (sluice_agent_route_write()). Only the
 * context reads a link, under the agent lock: chunks reach the core in
 * order. A writer without the agent lock that meets a dead connection only
 * marks it failed and wakes the context, which closes it and tells the
 * core. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "agent-internal.h"
#include "sluice-gio.h"

/* The backlog of a connection is bounded (RFC 8656 leaves it to us): a
 * connection that cannot keep up is closed, not grown. */
#define LINK_OUT_CAP (256u * 1024u)
/* Media waits (icesink) or is refused (sluice_agent_send) while more than
 * this is queued, which keeps room under LINK_OUT_CAP for the agent's own
 * requests: refreshes, permissions, checks. */
#define LINK_MEDIA_BACKLOG (64u * 1024u)
/* Reads of up to 64 KiB (what one sluice_ice_agent_handle_stream() call
 * takes) per wake-up of a link, so that sockets sharing the context take
 * turns. */
#define LINK_READS_PER_WAKEUP 4
#define MAX_VECTORS 16
/* The claimer's queue of a component (sluice_agent_get_media_fd()). */
#define MEDIA_QUEUE_MAX 256
#define MEDIA_QUEUE_BYTES (1024u * 1024u)

typedef struct LinkWatch LinkWatch;

struct SluiceLink {
    gint ref;
    sluice_addr base, server;
    sluice_transport transport;
    GSocket *socket;
    GMainContext *ctx;
    LinkWatch *watch; /* agent lock */
    gboolean closed;  /* set under both locks */
    GMutex lock;      /* what follows, and writes on socket */
    gboolean connecting, failed;
    GByteArray *out; /* bytes not written yet */
    gchar why[128];  /* failed: what happened */
};

/* The link's socket on the context: IN, plus OUT while connecting or while
 * bytes wait. prepare() takes the conditions from the link, so a writer on
 * another thread only wakes the context. */
struct LinkWatch {
    GSource base;
    SluiceGuard *guard;
    SluiceLink *link; /* a reference */
    gpointer tag;
    GIOCondition events;
};

typedef struct {
    SluiceAgentRecvFunc fn;
    gpointer data;
    guint stream, component;
    GBytes *bytes;
} Delivery;

SluiceLink *sluice_link_ref(SluiceLink *l)
{
    g_atomic_int_inc(&l->ref);
    return l;
}

void sluice_link_unref(SluiceLink *l)
{
    if (!l || !g_atomic_int_dec_and_test(&l->ref))
        return;
    g_object_unref(l->socket);
    g_byte_array_unref(l->out);
    g_main_context_unref(l->ctx);
    g_mutex_clear(&l->lock);
    g_free(l);
}

GSocket *sluice_link_socket(SluiceLink *l)
{
    return l->socket;
}

const sluice_addr *sluice_link_base(SluiceLink *l)
{
    return &l->base;
}

static void fmt_link(const SluiceLink *l, gchar *buf, gsize cap)
{
    char a[SLUICE_ADDR_STRLEN], b[SLUICE_ADDR_STRLEN];
    sluice_addr_format(&l->base, true, a, sizeof a);
    sluice_addr_format(&l->server, true, b, sizeof b);
    g_snprintf(buf, cap, "%s %s->%s", l->transport == SLUICE_TRANSPORT_TLS ? "TLS" : "TCP", a, b);
}

/* ------------------------------------------------------------------------ */
/* Writing (link lock held). */

static void fail_locked(SluiceLink *l, const gchar *what, const gchar *detail)
{
    if (l->failed)
        return;
    l->failed = TRUE;
    g_snprintf(l->why, sizeof l->why, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

/* Write what waits; the rest waits for G_IO_OUT. */
static void flush_locked(SluiceLink *l)
{
    while (l->out->len > 0 && !l->failed && !l->closed && !l->connecting) {
        ssize_t r = send(g_socket_get_fd(l->socket), l->out->data, l->out->len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0)
            g_byte_array_remove_range(l->out, 0, (guint)r);
        else if (r < 0 && errno == EINTR)
            continue;
        else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        else
            fail_locked(l, "write failed", r < 0 ? g_strerror(errno) : "closed");
    }
}

/* Bytes of one message (all vectors), on the wire after what waits: the
 * part the socket does not take now is queued, up to cap. FALSE when the
 * connection failed or the backlog would pass cap (then nothing is
 * written: a message is never cut). */
static gboolean write_locked(SluiceLink *l, const struct iovec *iov, guint n, gsize cap)
{
    gsize total = 0, done = 0;
    if (l->closed || l->failed)
        return FALSE;
    for (guint i = 0; i < n; i++)
        total += iov[i].iov_len;
    flush_locked(l);
    if (l->failed)
        return FALSE;
    if (l->out->len + total > cap) {
        gchar detail[64];
        g_snprintf(detail, sizeof detail, "%u bytes wait (at most %u)", l->out->len, (guint)cap);
        fail_locked(l, "backlog full", detail);
        return FALSE;
    }
    if (!l->connecting && l->out->len == 0) {
        struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = n};
        ssize_t r;
        do {
            r = sendmsg(g_socket_get_fd(l->socket), &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (r < 0 && errno == EINTR);
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            fail_locked(l, "write failed", g_strerror(errno));
            return FALSE;
        }
        done = r > 0 ? (gsize)r : 0;
    }
    for (guint i = 0; i < n && done < total; i++) {
        if (done >= iov[i].iov_len) {
            done -= iov[i].iov_len;
            total -= iov[i].iov_len;
            continue;
        }
        g_byte_array_append(l->out, (const guint8 *)iov[i].iov_base + done,
                            (guint)(iov[i].iov_len - done));
        total -= iov[i].iov_len;
        done = 0;
    }
    return TRUE;
}

gboolean sluice_link_media_room(SluiceLink *l)
{
    gboolean room, waiting;
    g_mutex_lock(&l->lock);
    flush_locked(l);
    /* A dead connection says yes: the write that follows finds out and
     * takes it down (with the agent lock). */
    room = l->closed || l->failed || l->out->len <= LINK_MEDIA_BACKLOG;
    waiting = l->out->len > 0 && !l->closed;
    g_mutex_unlock(&l->lock);
    if (waiting)
        g_main_context_wakeup(l->ctx);
    return room;
}

gboolean sluice_agent_route_write(SluiceAgentRoute *r, const GOutputVector *vectors,
                                  guint n_vectors, GError **error)
{
    SluiceLink *l = r ? r->link : NULL;
    struct iovec iov[MAX_VECTORS];
    gboolean ok = FALSE, wake;
    if (!l || n_vectors > MAX_VECTORS) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    !l ? "not a route over TCP" : "too many vectors");
        return FALSE;
    }
    for (guint i = 0; i < n_vectors; i++) {
        iov[i].iov_base = (void *)vectors[i].buffer;
        iov[i].iov_len = vectors[i].size;
    }
    g_mutex_lock(&l->lock);
    flush_locked(l);
    if (l->closed || l->failed) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                    "the connection to the TURN server is gone%s%s", l->why[0] ? ": " : "", l->why);
    } else if (l->connecting || l->out->len > LINK_MEDIA_BACKLOG) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                    "the connection to the TURN server is backed up");
    } else if (!(ok = write_locked(l, iov, n_vectors, LINK_OUT_CAP))) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                    "the connection to the TURN server failed: %s", l->why);
    }
    /* The context writes the rest, or takes a failed connection down. */
    wake = !l->closed && (l->failed || l->out->len > 0);
    g_mutex_unlock(&l->lock);
    if (wake)
        g_main_context_wakeup(l->ctx);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* The table (agent lock held). */

SluiceLink *sluice_link_find(SluiceAgent *self, const sluice_addr *base, const sluice_addr *server,
                             sluice_transport transport)
{
    for (guint i = 0; i < self->links->len; i++) {
        SluiceLink *l = g_ptr_array_index(self->links, i);
        if (l->transport == transport && sluice_addr_equal(&l->base, base) &&
            sluice_addr_equal(&l->server, server))
            return l;
    }
    return NULL;
}

static void link_close(SluiceAgent *self, SluiceLink *l)
{
    if (!g_ptr_array_remove_fast(self->links, l))
        return;
    if (l->watch) {
        g_source_destroy(&l->watch->base);
        g_source_unref(&l->watch->base);
        l->watch = NULL;
    }
    g_mutex_lock(&l->lock);
    l->closed = TRUE;
    g_socket_close(l->socket, NULL);
    g_byte_array_set_size(l->out, 0);
    g_mutex_unlock(&l->lock);
    sluice_link_unref(l); /* the table's; route snapshots may hold others */
}

/* The connection failed or ended: its allocation is gone (RFC 8656 §3.1). */
static void link_down(SluiceAgent *self, SluiceLink *l, guint64 now, const gchar *why)
{
    sluice_addr base = l->base, server = l->server;
    sluice_transport t = l->transport;
    gchar name[160];
    fmt_link(l, name, sizeof name);
    g_debug("TURN connection %s: %s", name, why);
    link_close(self, l);
    sluice_ice_agent_handle_stream_closed(self->core, now, &base, &server, t);
}

void sluice_link_close_stream(SluiceAgent *self, const sluice_ice_event *ev)
{
    SluiceLink *l = sluice_link_find(self, &ev->base, &ev->server, ev->transport);
    if (l)
        link_close(self, l);
}

void sluice_link_close_all(SluiceAgent *self)
{
    while (self->links->len > 0)
        link_close(self, g_ptr_array_index(self->links, self->links->len - 1));
}

static void on_link(SluiceAgent *self, SluiceLink *l, GIOCondition rev);

static gboolean watch_prepare(GSource *s, gint *timeout)
{
    LinkWatch *w = (LinkWatch *)s;
    SluiceLink *l = w->link;
    GIOCondition want = G_IO_IN | G_IO_ERR | G_IO_HUP;
    gboolean failed;
    *timeout = -1;
    g_mutex_lock(&l->lock);
    failed = l->failed && !l->closed;
    if (l->connecting)
        want = G_IO_OUT | G_IO_ERR | G_IO_HUP;
    else if (l->out->len > 0)
        want |= G_IO_OUT;
    g_mutex_unlock(&l->lock);
    if (want != w->events) {
        g_source_modify_unix_fd(s, w->tag, want);
        w->events = want;
    }
    return failed;
}

static gboolean watch_check(GSource *s)
{
    SluiceLink *l = ((LinkWatch *)s)->link;
    gboolean failed;
    g_mutex_lock(&l->lock);
    failed = l->failed && !l->closed;
    g_mutex_unlock(&l->lock);
    return failed; /* and GLib dispatches when the fd is ready */
}

static gboolean watch_dispatch(GSource *s, GSourceFunc cb, gpointer ud)
{
    LinkWatch *w = (LinkWatch *)s;
    GIOCondition rev = g_source_query_unix_fd(s, w->tag);
    SluiceAgent *self;
    (void)cb;
    (void)ud;
    if (!(self = sluice_guard_enter(w->guard)))
        return G_SOURCE_REMOVE;
    g_object_ref(self); /* a receive function may drop the last reference */
    on_link(self, w->link, rev);
    g_object_unref(self);
    sluice_guard_leave(w->guard);
    return G_SOURCE_CONTINUE;
}

static void watch_finalize(GSource *s)
{
    LinkWatch *w = (LinkWatch *)s;
    sluice_guard_unref(w->guard);
    sluice_link_unref(w->link);
}

static GSourceFuncs watch_funcs = {watch_prepare,  watch_check, watch_dispatch,
                                   watch_finalize, NULL,        NULL};

/* A TCP connection from the base's IP (any port) to the server, started
 * without blocking, with the TOS byte of the base's stream from the SYN
 * on. NULL when no socket could be made or the table is full. */
static SluiceLink *link_open(SluiceAgent *self, const Base *base, const sluice_transmit *meta)
{
    GSocketFamily fam =
        meta->destination.family == SLUICE_AF_INET6 ? G_SOCKET_FAMILY_IPV6 : G_SOCKET_FAMILY_IPV4;
    sluice_addr local = meta->source;
    GSocketAddress *la = NULL, *ra = NULL;
    GSocket *sock = NULL;
    GError *err = NULL;
    SluiceLink *l;
    gboolean connecting = FALSE;
    char to[SLUICE_ADDR_STRLEN];

    sluice_addr_format(&meta->destination, true, to, sizeof to);
    if (self->links->len >= SLUICE_AGENT_MAX_LINKS) {
        /* Once per agent: a configuration with too many servers or local
         * addresses; each allocation left out gets its server-error. */
        if (!self->links_full_warned)
            g_warning("no TCP connection to TURN server %s: at most %d per agent (fewer "
                      "TURN servers over TCP/TLS, or fewer local addresses)",
                      to, SLUICE_AGENT_MAX_LINKS);
        self->links_full_warned = TRUE;
        return NULL;
    }
    local.port = 0;
    la = sluice_gio_addr_to_gsocket(&local);
    ra = sluice_gio_addr_to_gsocket(&meta->destination);
    if (la && ra)
        sock = g_socket_new(fam, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &err);
    if (sock) {
        g_socket_set_blocking(sock, FALSE);
        /* Checks and ChannelData are small and latency-bound. */
        g_socket_set_option(sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
        sluice_agent_apply_tos(self, base, sock);
        if (g_socket_bind(sock, la, FALSE, &err) && !g_socket_connect(sock, ra, NULL, &err)) {
            connecting = g_error_matches(err, G_IO_ERROR, G_IO_ERROR_PENDING);
            if (connecting)
                g_clear_error(&err);
        }
    }
    g_clear_object(&la);
    g_clear_object(&ra);
    if (!sock || err) {
        g_debug("no TCP connection to TURN server %s: %s", to, err ? err->message : "bad address");
        g_clear_error(&err);
        if (sock) {
            g_socket_close(sock, NULL);
            g_object_unref(sock);
        }
        return NULL;
    }
    l = g_new0(SluiceLink, 1);
    l->ref = 1; /* the table's */
    l->base = meta->source;
    l->server = meta->destination;
    l->transport = meta->transport;
    l->socket = sock;
    l->ctx = g_main_context_ref(self->ctx);
    g_mutex_init(&l->lock);
    l->connecting = connecting;
    l->out = g_byte_array_new();
    l->watch = (LinkWatch *)g_source_new(&watch_funcs, sizeof(LinkWatch));
    l->watch->guard = sluice_guard_ref(self->guard);
    l->watch->link = sluice_link_ref(l);
    l->watch->events = connecting ? G_IO_OUT | G_IO_ERR | G_IO_HUP : G_IO_IN | G_IO_ERR | G_IO_HUP;
    l->watch->tag = g_source_add_unix_fd(&l->watch->base, g_socket_get_fd(sock), l->watch->events);
    g_source_set_name(&l->watch->base, "sluice TURN connection");
    g_ptr_array_add(self->links, l);
    g_source_attach(&l->watch->base, self->ctx);
    return l;
}

void sluice_link_transmit(SluiceAgent *self, guint64 now, const guint8 *buf, gsize len,
                          const sluice_transmit *meta)
{
    SluiceLink *l = sluice_link_find(self, &meta->source, &meta->destination, meta->transport);
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    gboolean ok, waiting;
    gchar why[160];
    if (!l) {
        /* The first bytes for this (base, server, transport): connect. */
        const Base *b = sluice_agent_find_base(self, &meta->source);
        if (!b) {
            g_debug("no base for a transmit to a TURN server; dropped");
            return;
        }
        l = link_open(self, b, meta);
        if (!l) {
            sluice_ice_agent_handle_stream_closed(self->core, now, &meta->source,
                                                  &meta->destination, meta->transport);
            return;
        }
    }
    g_mutex_lock(&l->lock);
    ok = write_locked(l, &iov, 1, LINK_OUT_CAP);
    waiting = l->out->len > 0;
    g_strlcpy(why, l->why, sizeof why);
    g_mutex_unlock(&l->lock);
    if (!ok)
        link_down(self, l, now, why);
    else if (waiting)
        g_main_context_wakeup(self->ctx);
}

/* ------------------------------------------------------------------------ */
/* Reading (on the context, agent lock held). */

static void media_push(Component *c, const sluice_ice_media *m)
{
    if (g_queue_get_length(&c->media) >= MEDIA_QUEUE_MAX ||
        c->media_bytes + m->len > MEDIA_QUEUE_BYTES) {
        if (c->media_dropped++ % 100 == 0)
            g_debug("stream %u component %u: the claimer's queue is full; %" G_GUINT64_FORMAT
                    " datagrams dropped",
                    c->stream, c->component, c->media_dropped);
        return;
    }
    g_queue_push_tail(&c->media, g_bytes_new(m->data, m->len));
    c->media_bytes += m->len;
    if (g_queue_get_length(&c->media) == 1 && c->media_fd >= 0) {
        guint64 one = 1;
        if (write(c->media_fd, &one, sizeof one) < 0)
            g_debug("media queue: eventfd write: %s", g_strerror(errno));
    }
}

/* Media for the application: the claimer's queue, or the receive function
 * (called after the lock is released). Copied: *m is a view into the core. */
static void collect(SluiceAgent *self, const sluice_ice_media *m, GPtrArray **deliver)
{
    Component *c = sluice_agent_find_component(self, (guint)m->stream, m->component);
    Delivery *d;
    if (!c || m->len == 0)
        return;
    if (c->claimed) {
        media_push(c, m);
        return;
    }
    if (!c->recv_func)
        return;
    d = g_new(Delivery, 1);
    d->fn = c->recv_func;
    d->data = c->recv_data;
    d->stream = (guint)m->stream;
    d->component = m->component;
    d->bytes = g_bytes_new(m->data, m->len);
    if (!*deliver)
        *deliver = g_ptr_array_new();
    g_ptr_array_add(*deliver, d);
}

/* One chunk of the stream to the core. FALSE when the link is gone. */
static gboolean feed(SluiceAgent *self, SluiceLink *l, guint64 now, const guint8 *data, gsize len,
                     GPtrArray **deliver)
{
    sluice_ice_media media;
    int rc = sluice_ice_agent_handle_stream(self->core, now, &l->base, &l->server, l->transport,
                                            data, len, &media);
    while (rc == 1) {
        collect(self, &media, deliver);
        rc = sluice_ice_agent_handle_stream(self->core, now, &l->base, &l->server, l->transport,
                                            NULL, 0, &media);
    }
    if (rc == SLUICE_ERR_NOT_FOUND) {
        /* No allocation uses it (any more). */
        link_close(self, l);
        return FALSE;
    }
    if (rc < 0) {
        /* Bad framing or a TLS failure: the core's SERVER_ERROR says what. */
        link_down(self, l, now, sluice_strerror(rc));
        return FALSE;
    }
    return TRUE;
}

static void read_link(SluiceAgent *self, SluiceLink *l, guint64 now, GPtrArray **deliver)
{
    for (int i = 0; i < LINK_READS_PER_WAKEUP; i++) {
        ssize_t r =
            recv(g_socket_get_fd(l->socket), self->rbuf, SLUICE_AGENT_RECV_BUF, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            link_down(self, l, now, r == 0 ? "closed by the server" : g_strerror(errno));
            return;
        }
        if (!feed(self, l, now, self->rbuf, (gsize)r, deliver) || r < SLUICE_AGENT_RECV_BUF)
            return;
    }
}

static void on_link(SluiceAgent *self, SluiceLink *l, GIOCondition rev)
{
    GPtrArray *deliver = NULL;
    gboolean failed;
    guint64 now;
    gchar why[160];

    g_mutex_lock(&self->lock);
    if (l->closed) {
        g_mutex_unlock(&self->lock);
        return;
    }
    now = sluice_agent_now(self);
    g_mutex_lock(&l->lock);
    if (!l->failed && l->connecting && (rev & (G_IO_OUT | G_IO_ERR | G_IO_HUP))) {
        GError *err = NULL;
        if (g_socket_check_connect_result(l->socket, &err))
            l->connecting = FALSE;
        else
            fail_locked(l, "cannot connect", err->message);
        g_clear_error(&err);
    }
    if (!l->connecting && (rev & G_IO_OUT))
        flush_locked(l);
    failed = l->failed;
    g_strlcpy(why, l->why, sizeof why);
    g_mutex_unlock(&l->lock);
    if (failed)
        link_down(self, l, now, why);
    else if (!l->connecting && (rev & (G_IO_IN | G_IO_ERR | G_IO_HUP)))
        read_link(self, l, now, &deliver);
    sluice_agent_pump_locked(self, now, TRUE);
    g_mutex_unlock(&self->lock);

    for (guint i = 0; deliver && i < deliver->len; i++) {
        Delivery *d = g_ptr_array_index(deliver, i);
        gsize len;
        const guint8 *data = g_bytes_get_data(d->bytes, &len);
        d->fn(self, d->stream, d->component, data, len, d->data);
        g_bytes_unref(d->bytes);
        g_free(d);
    }
    if (deliver)
        g_ptr_array_unref(deliver);
}

/* ------------------------------------------------------------------------ */
/* The claimer's media queue. */

void sluice_agent_media_claim(Component *c)
{
    if (c->media_fd < 0) {
        c->media_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (c->media_fd < 0)
            g_warning("eventfd: %s; media relayed over TCP/TLS will not reach the claimer",
                      g_strerror(errno));
    }
}

static void media_fd_reset(Component *c)
{
    guint64 v;
    if (c->media_fd >= 0 && read(c->media_fd, &v, sizeof v) < 0 && errno != EAGAIN)
        g_debug("media queue: eventfd read: %s", g_strerror(errno));
}

void sluice_agent_media_clear(Component *c)
{
    GBytes *b;
    while ((b = g_queue_pop_head(&c->media)))
        g_bytes_unref(b);
    c->media_bytes = 0;
    media_fd_reset(c);
}

gint sluice_agent_get_media_fd(SluiceAgent *agent, guint stream, guint component)
{
    Component *c;
    gint fd = -1;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), -1);
    g_mutex_lock(&agent->lock);
    c = sluice_agent_find_component(agent, stream, component);
    if (c && c->claimed)
        fd = c->media_fd;
    g_mutex_unlock(&agent->lock);
    return fd;
}

gssize sluice_agent_pop_media(SluiceAgent *agent, guint stream, guint component, guint8 *buf,
                              gsize cap)
{
    Component *c;
    GBytes *b = NULL;
    gssize n = 0;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), 0);
    g_mutex_lock(&agent->lock);
    c = sluice_agent_find_component(agent, stream, component);
    if (c && (b = g_queue_pop_head(&c->media))) {
        gsize len;
        const guint8 *data = g_bytes_get_data(b, &len);
        c->media_bytes -= len;
        if (len > cap) {
            c->media_dropped++;
            n = -1;
        } else {
            memcpy(buf, data, len);
            n = (gssize)len;
        }
        if (g_queue_is_empty(&c->media))
            media_fd_reset(c);
    }
    g_mutex_unlock(&agent->lock);
    if (b)
        g_bytes_unref(b);
    return n;
}
