/* SPDX-License-Identifier: MIT */
/* SluiceTurnAllocation: the TURN client core driven on a GMainContext
 * (sluice-turn-allocation.h), after the poll() driver in
 * src/tools/sluice-turn.c.
 *
 * Locking: `lock` serialises the core and the link (design.md: single
 * owner, the driver serialises access). It is held around core calls and
 * non-blocking socket calls only. Everything the core reports is queued as
 * an Item under the lock and emitted on the context after it is released:
 * signals and the receive function never run with the lock held, and
 * callers on other threads (send, bind_channel, close) only queue and wake
 * the timer. Callbacks on the context run under the guard (gio-internal.h),
 * so dispose waits for them. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "gio-internal.h"
#include "sluice-gio.h"
#include "sluice-turn-allocation.h"

#define IO_BUF (64u * 1024u + 64u)
/* poll_transmit over TCP/TLS needs 16 KiB + 64 of room (turn_client.h). */
#define STREAM_ROOM (16u * 1024u + 64u)
#define STREAM_OUT_CAP (256u * 1024u)
/* Work per wake-up, so that many objects can share one context. */
#define MAX_PER_WAKEUP 64
#define MAX_ADDRS 8
#define CONNECT_TIMEOUT_US (10u * G_USEC_PER_SEC)
/* `armed` after the timer fired: nothing is requested any more. */
#define ARMED_UNKNOWN (G_MAXUINT64 - 1)

typedef enum { ITEM_EVENT, ITEM_DATA } ItemKind;

typedef struct {
    ItemKind kind;
    sluice_turn_event ev; /* ITEM_EVENT */
    sluice_addr peer;     /* ITEM_DATA */
    guint8 *data;
    gsize len;
} Item;

/* A watch on the link's socket whose conditions can change (IN, plus OUT
 * while connecting or while stream bytes wait). */
typedef struct {
    GSource base;
    SluiceGuard *guard;
    gpointer tag;
} Watch;

struct _SluiceTurnAllocation {
    GObject parent;

    /* Settings: fixed once started. */
    gchar *uri, *username, *password, *ca_file, *server_name, *software;
    SluiceTurnAllocationTransport transport_opt;
    SluiceTurnAllocationFamily family;
    guint lifetime_s;
    gboolean tls_verify;
    GMainContext *ctx;
    SluiceClock *clock;

    SluiceGuard *guard;
    SluiceTimer *timer;
    GCancellable *cancel; /* the name lookup */
    guint8 *rbuf;         /* reads, on the context thread only */

    GMutex lock; /* everything below */
    SluiceTurnAllocationState state;
    gboolean started, need_begin, resolving;
    gboolean self_ref, release_pending, state_changed, addrs_changed;
    SluiceGioUri u;
    sluice_transport transport;
    sluice_addr addrs[MAX_ADDRS];
    gsize n_addrs, addr_idx;
    sluice_turn_client *core;
    guint64 armed;

    /* The link to the server: one UDP socket, or one TCP connection. */
    GSocket *sock;
    Watch *watch;
    sluice_addr server;
    GSocketAddress *server_gaddr;
    gboolean stream, connecting;
    guint64 connect_deadline;
    guint8 *out; /* stream bytes not yet written */
    gsize out_len;
    guint8 *buf; /* transmits, under the lock */
    gchar net_error[160];

    GPtrArray *items; /* Item, to emit on the context */
    sluice_addr relayed[2];
    gsize n_relayed;
    sluice_addr mapped;
    gboolean have_mapped;
    SluiceTurnAllocationStats stats;
    SluiceTurnAllocationRecvFunc recv_func;
    gpointer recv_data;
    GDestroyNotify recv_notify;
};

G_DEFINE_TYPE(SluiceTurnAllocation, sluice_turn_allocation, G_TYPE_OBJECT)

G_DEFINE_ENUM_TYPE(SluiceTurnAllocationTransport, sluice_turn_allocation_transport,
                   G_DEFINE_ENUM_VALUE(SLUICE_TURN_ALLOCATION_TRANSPORT_AUTO, "auto"),
                   G_DEFINE_ENUM_VALUE(SLUICE_TURN_ALLOCATION_TRANSPORT_UDP, "udp"),
                   G_DEFINE_ENUM_VALUE(SLUICE_TURN_ALLOCATION_TRANSPORT_TCP, "tcp"),
                   G_DEFINE_ENUM_VALUE(SLUICE_TURN_ALLOCATION_TRANSPORT_TLS, "tls"))

G_DEFINE_ENUM_TYPE(SluiceTurnAllocationFamily, sluice_turn_allocation_family,
                   G_DEFINE_ENUM_VALUE(SLUICE_TURN_ALLOCATION_FAMILY_IPV4, "ipv4"),
                   G_DEFINE_ENUM_VALUE(SLUICE_TURN_ALLOCATION_FAMILY_IPV6, "ipv6"),
                   G_DEFINE_ENUM_VALUE(SLUICE_TURN_ALLOCATION_FAMILY_DUAL, "dual"))

G_DEFINE_ENUM_TYPE(SluiceTurnAllocationState, sluice_turn_allocation_state,
                   G_DEFINE_ENUM_VALUE(SLUICE_TURN_ALLOCATION_STATE_NEW, "new"),
                   G_DEFINE_ENUM_VALUE(SLUICE_TURN_ALLOCATION_STATE_ALLOCATING, "allocating"),
                   G_DEFINE_ENUM_VALUE(SLUICE_TURN_ALLOCATION_STATE_ALLOCATED, "allocated"),
                   G_DEFINE_ENUM_VALUE(SLUICE_TURN_ALLOCATION_STATE_CLOSING, "closing"),
                   G_DEFINE_ENUM_VALUE(SLUICE_TURN_ALLOCATION_STATE_CLOSED, "closed"),
                   G_DEFINE_ENUM_VALUE(SLUICE_TURN_ALLOCATION_STATE_FAILED, "failed"))

/* clang-format off */
G_DEFINE_QUARK(sluice-turn-allocation-error-quark, sluice_turn_allocation_error)
/* clang-format on */

enum {
    PROP_0,
    PROP_SERVER,
    PROP_USERNAME,
    PROP_PASSWORD,
    PROP_TRANSPORT,
    PROP_FAMILY,
    PROP_LIFETIME,
    PROP_CA_FILE,
    PROP_TLS_VERIFY,
    PROP_SERVER_NAME,
    PROP_SOFTWARE,
    PROP_MAIN_CONTEXT,
    PROP_CLOCK,
    PROP_STATE,
    PROP_RELAYED_ADDRESS,
    PROP_MAPPED_ADDRESS,
    N_PROPS
};
static GParamSpec *props[N_PROPS];

enum {
    SIG_ALLOCATED,
    SIG_FAILED,
    SIG_LOST,
    SIG_REFRESHED,
    SIG_PERMISSION_CREATED,
    SIG_CHANNEL_BOUND,
    SIG_PEER_FAILED,
    SIG_REDIRECTED,
    SIG_CLOSED,
    N_SIGNALS
};
static guint signals[N_SIGNALS];

static void link_close(SluiceTurnAllocation *self);
static void pump(SluiceTurnAllocation *self, guint64 now);

static guint64 now_us(SluiceTurnAllocation *self)
{
    return sluice_timer_now(self->timer);
}

static void fmt_addr(const sluice_addr *a, gchar *buf, gsize cap)
{
    if (sluice_addr_format(a, true, buf, cap) < 0)
        g_strlcpy(buf, "?", cap);
}

static const gchar *transport_name(sluice_transport t)
{
    return t == SLUICE_TRANSPORT_TLS ? "TLS" : t == SLUICE_TRANSPORT_TCP ? "TCP" : "UDP";
}

static gboolean terminal(SluiceTurnAllocationState s)
{
    return s == SLUICE_TURN_ALLOCATION_STATE_CLOSED || s == SLUICE_TURN_ALLOCATION_STATE_FAILED;
}

static void set_state(SluiceTurnAllocation *self, SluiceTurnAllocationState s)
{
    if (self->state == s)
        return;
    self->state = s;
    self->state_changed = TRUE;
    /* The self reference of close() ends with the allocation. */
    if (terminal(s) && self->self_ref) {
        self->self_ref = FALSE;
        self->release_pending = TRUE;
    }
}

static void item_free(gpointer p)
{
    Item *it = p;
    g_free(it->data);
    g_free(it);
}

static void push_event(SluiceTurnAllocation *self, const sluice_turn_event *ev)
{
    Item *it = g_new0(Item, 1);
    it->kind = ITEM_EVENT;
    it->ev = *ev;
    g_ptr_array_add(self->items, it);
}

/* Arm the one timer for the core's next deadline (or the connect timeout),
 * or for now when items wait to be emitted. Only when it changed: with a
 * SluiceClock every request costs a clock id. */
static void rearm(SluiceTurnAllocation *self)
{
    guint64 d = self->core ? sluice_turn_client_next_timeout(self->core) : SLUICE_NEVER;
    if (self->connecting && self->connect_deadline < d)
        d = self->connect_deadline;
    if (self->items->len > 0 || self->need_begin || self->release_pending || self->state_changed)
        d = 0;
    if (d == self->armed)
        return;
    self->armed = d;
    sluice_timer_set(self->timer, d);
}

/* ------------------------------------------------------------------------ */
/* Failures: the core's events and local ones, as a GError a user can act on. */

static SluiceTurnAllocationError error_kind(const sluice_turn_event *ev)
{
    if (g_str_has_prefix(ev->text, "TLS"))
        return SLUICE_TURN_ALLOCATION_ERROR_TLS;
    switch (ev->error_code) {
    case 0:
        break;
    case 401: /* Unauthorized, after the credentials were sent */
    case 441: /* Wrong Credentials */
        return SLUICE_TURN_ALLOCATION_ERROR_AUTH;
    case 403:
        return SLUICE_TURN_ALLOCATION_ERROR_FORBIDDEN;
    case 486: /* Allocation Quota Reached */
    case 508: /* Insufficient Capacity */
        return SLUICE_TURN_ALLOCATION_ERROR_QUOTA;
    case 440: /* Address Family not Supported */
    case 442: /* Unsupported Transport Protocol */
        return SLUICE_TURN_ALLOCATION_ERROR_UNSUPPORTED;
    default:
        return SLUICE_TURN_ALLOCATION_ERROR_SERVER;
    }
    switch (ev->reason) {
    case SLUICE_ERR_TIMEOUT:
        return SLUICE_TURN_ALLOCATION_ERROR_TIMEOUT;
    case SLUICE_ERR_AUTH:
        return SLUICE_TURN_ALLOCATION_ERROR_AUTH;
    case SLUICE_ERR_CRYPTO:
        return SLUICE_TURN_ALLOCATION_ERROR_TLS;
    case SLUICE_ERR_STATE: /* the stream closed */
        return SLUICE_TURN_ALLOCATION_ERROR_NETWORK;
    default:
        return SLUICE_TURN_ALLOCATION_ERROR_FAILED;
    }
}

/* ev is ALLOCATE_FAILED, LOST, PERMISSION_FAILED or CHANNEL_FAILED. */
static GError *event_error(SluiceTurnAllocation *self, const sluice_turn_event *ev)
{
    SluiceTurnAllocationError kind = error_kind(ev);
    gchar srv[SLUICE_ADDR_STRLEN], code[160];
    const gchar *t = transport_name(self->transport);

    fmt_addr(&self->server, srv, sizeof srv);
    if (ev->error_code)
        g_snprintf(code, sizeof code, "%d %s", ev->error_code, ev->text);
    else
        g_strlcpy(code, ev->text, sizeof code);
    switch (kind) {
    case SLUICE_TURN_ALLOCATION_ERROR_AUTH:
        return g_error_new(SLUICE_TURN_ALLOCATION_ERROR, kind,
                           "TURN authentication failed: server %s refused user \"%s\" (%s); "
                           "check username and password",
                           srv, self->username ? self->username : "", code);
    case SLUICE_TURN_ALLOCATION_ERROR_FORBIDDEN:
        return g_error_new(SLUICE_TURN_ALLOCATION_ERROR, kind,
                           "TURN server %s forbids this request (%s)", srv, code);
    case SLUICE_TURN_ALLOCATION_ERROR_QUOTA:
        return g_error_new(SLUICE_TURN_ALLOCATION_ERROR, kind,
                           "TURN server %s has no room for this allocation (%s)%s", srv, code,
                           ev->error_code == 486 ? ": the user's allocation quota is reached" : "");
    case SLUICE_TURN_ALLOCATION_ERROR_UNSUPPORTED:
        return g_error_new(SLUICE_TURN_ALLOCATION_ERROR, kind,
                           "TURN server %s does not support the requested %s (%s)", srv,
                           ev->error_code == 442 ? "transport" : "address family", code);
    case SLUICE_TURN_ALLOCATION_ERROR_TIMEOUT:
        return g_error_new(SLUICE_TURN_ALLOCATION_ERROR, kind,
                           "no answer from TURN server %s over %s", srv, t);
    case SLUICE_TURN_ALLOCATION_ERROR_TLS:
        return g_error_new(SLUICE_TURN_ALLOCATION_ERROR, kind, "TLS with TURN server %s failed: %s",
                           srv, g_str_has_prefix(code, "TLS: ") ? code + 5 : code);
    case SLUICE_TURN_ALLOCATION_ERROR_NETWORK:
        /* The socket error that closed the stream says more than the core. */
        return g_error_new(SLUICE_TURN_ALLOCATION_ERROR, kind, "TURN server %s over %s: %s", srv, t,
                           self->net_error[0] ? self->net_error : code);
    case SLUICE_TURN_ALLOCATION_ERROR_SERVER:
        return g_error_new(SLUICE_TURN_ALLOCATION_ERROR, kind, "TURN server %s answered %s", srv,
                           code);
    case SLUICE_TURN_ALLOCATION_ERROR_FAILED:
    default:
        return g_error_new(SLUICE_TURN_ALLOCATION_ERROR, SLUICE_TURN_ALLOCATION_ERROR_FAILED,
                           "TURN allocation on %s failed: %s", srv, code);
    }
}

static void handle_event(SluiceTurnAllocation *self, const sluice_turn_event *ev)
{
    switch (ev->type) {
    case SLUICE_TURN_EVENT_ALLOCATED:
        self->n_relayed = MIN(ev->n_relayed, G_N_ELEMENTS(self->relayed));
        memcpy(self->relayed, ev->relayed, sizeof self->relayed);
        self->mapped = ev->mapped;
        self->have_mapped = ev->mapped.family != 0;
        self->addrs_changed = TRUE;
        if (self->state == SLUICE_TURN_ALLOCATION_STATE_ALLOCATING)
            set_state(self, SLUICE_TURN_ALLOCATION_STATE_ALLOCATED);
        break;
    case SLUICE_TURN_EVENT_ALLOCATE_FAILED:
    case SLUICE_TURN_EVENT_LOST:
        self->n_relayed = 0;
        set_state(self, SLUICE_TURN_ALLOCATION_STATE_FAILED);
        break;
    case SLUICE_TURN_EVENT_CLOSED:
        self->n_relayed = 0;
        set_state(self, SLUICE_TURN_ALLOCATION_STATE_CLOSED);
        break;
    case SLUICE_TURN_EVENT_REFRESHED:
        self->stats.refreshes++;
        break;
    default:
        break;
    }
    push_event(self, ev);
}

/* A failure of the driver (resolve, connect, socket): the same event the
 * core would report, with the explanation in net_error. */
static void fail_local(SluiceTurnAllocation *self, const gchar *fmt, ...) G_GNUC_PRINTF(2, 3);
static void fail_local(SluiceTurnAllocation *self, const gchar *fmt, ...)
{
    sluice_turn_event ev;
    va_list ap;

    if (terminal(self->state))
        return;
    va_start(ap, fmt);
    g_vsnprintf(self->net_error, sizeof self->net_error, fmt, ap);
    va_end(ap);
    memset(&ev, 0, sizeof ev);
    ev.type = self->state == SLUICE_TURN_ALLOCATION_STATE_ALLOCATED ? SLUICE_TURN_EVENT_LOST
              : self->state == SLUICE_TURN_ALLOCATION_STATE_CLOSING
                  ? SLUICE_TURN_EVENT_CLOSED
                  : SLUICE_TURN_EVENT_ALLOCATE_FAILED;
    ev.reason = SLUICE_ERR_STATE;
    g_strlcpy(ev.text, self->net_error, sizeof ev.text);
    handle_event(self, &ev);
    link_close(self);
}

/* ------------------------------------------------------------------------ */
/* The link: the socket watch, connecting, writing. */

static void on_socket(SluiceTurnAllocation *self, Watch *w, GIOCondition rev);

static gboolean watch_dispatch(GSource *s, GSourceFunc cb, gpointer ud)
{
    Watch *w = (Watch *)s;
    GIOCondition rev = g_source_query_unix_fd(s, w->tag);
    gpointer obj;
    (void)cb;
    (void)ud;
    if (!(obj = sluice_guard_enter(w->guard)))
        return G_SOURCE_CONTINUE;
    g_object_ref(obj);
    on_socket(obj, w, rev);
    g_object_unref(obj);
    sluice_guard_leave(w->guard);
    return G_SOURCE_CONTINUE;
}

static void watch_finalize(GSource *s)
{
    sluice_guard_unref(((Watch *)s)->guard);
}

static GSourceFuncs watch_funcs = {NULL, NULL, watch_dispatch, watch_finalize, NULL, NULL};

static void watch_update(SluiceTurnAllocation *self)
{
    GIOCondition c = G_IO_IN | G_IO_ERR | G_IO_HUP;
    if (!self->watch)
        return;
    if (self->connecting)
        c = G_IO_OUT | G_IO_ERR | G_IO_HUP;
    else if (self->stream && self->out_len > 0)
        c |= G_IO_OUT;
    g_source_modify_unix_fd(&self->watch->base, self->watch->tag, c);
}

static void link_close(SluiceTurnAllocation *self)
{
    if (self->watch) {
        g_source_destroy(&self->watch->base);
        g_source_unref(&self->watch->base);
        self->watch = NULL;
    }
    if (self->sock) {
        g_socket_close(self->sock, NULL);
        g_clear_object(&self->sock);
    }
    self->connecting = FALSE;
    self->out_len = 0;
}

/* A socket to `to`: UDP connected (the kernel filters other sources), or a
 * TCP connection started. FALSE with net_error set. */
static gboolean link_open(SluiceTurnAllocation *self, const sluice_addr *to, guint64 now)
{
    GSocketFamily fam = to->family == SLUICE_AF_INET6 ? G_SOCKET_FAMILY_IPV6 : G_SOCKET_FAMILY_IPV4;
    GError *err = NULL;
    gchar at[SLUICE_ADDR_STRLEN];

    link_close(self);
    fmt_addr(to, at, sizeof at);
    self->server = *to;
    g_clear_object(&self->server_gaddr);
    self->server_gaddr = sluice_gio_addr_to_gsocket(to);
    self->sock = g_socket_new(fam, self->stream ? G_SOCKET_TYPE_STREAM : G_SOCKET_TYPE_DATAGRAM,
                              self->stream ? G_SOCKET_PROTOCOL_TCP : G_SOCKET_PROTOCOL_UDP, &err);
    if (!self->sock || !self->server_gaddr) {
        g_snprintf(self->net_error, sizeof self->net_error, "cannot open a socket for %s: %s", at,
                   err ? err->message : "bad address");
        g_clear_error(&err);
        link_close(self);
        return FALSE;
    }
    g_socket_set_blocking(self->sock, FALSE);
    if (self->stream)
        g_socket_set_option(self->sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
    if (!g_socket_connect(self->sock, self->server_gaddr, NULL, &err)) {
        if (!self->stream || !g_error_matches(err, G_IO_ERROR, G_IO_ERROR_PENDING)) {
            g_snprintf(self->net_error, sizeof self->net_error, "cannot connect to %s: %s", at,
                       err->message);
            g_clear_error(&err);
            link_close(self);
            return FALSE;
        }
        g_clear_error(&err);
        self->connecting = TRUE;
        self->connect_deadline = now + CONNECT_TIMEOUT_US;
    } else {
        self->net_error[0] = 0; /* an earlier address's failure is history */
    }
    self->watch = (Watch *)g_source_new(&watch_funcs, sizeof(Watch));
    self->watch->guard = sluice_guard_ref(self->guard);
    self->watch->tag =
        g_source_add_unix_fd(&self->watch->base, g_socket_get_fd(self->sock), G_IO_IN);
    g_source_set_name(&self->watch->base, "sluice turn socket");
    g_source_attach(&self->watch->base, self->ctx);
    watch_update(self);
    return TRUE;
}

/* TCP/TLS: the connection ended. The allocation goes with it (RFC 8656 §3.1). */
static void stream_down(SluiceTurnAllocation *self, guint64 now, const gchar *why)
{
    gchar at[SLUICE_ADDR_STRLEN];
    fmt_addr(&self->server, at, sizeof at);
    if (!self->net_error[0] && self->state != SLUICE_TURN_ALLOCATION_STATE_CLOSING)
        g_snprintf(self->net_error, sizeof self->net_error, "the connection to %s %s", at, why);
    link_close(self);
    if (self->core)
        sluice_turn_client_handle_stream_closed(self->core, now);
}

/* Write pending stream bytes; the rest waits for G_IO_OUT. */
static void flush(SluiceTurnAllocation *self, guint64 now)
{
    for (int i = 0; i < MAX_PER_WAKEUP && self->out_len > 0 && self->sock && !self->connecting;
         i++) {
        ssize_t r = send(g_socket_get_fd(self->sock), self->out, self->out_len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0) {
            memmove(self->out, self->out + r, self->out_len - (gsize)r);
            self->out_len -= (gsize)r;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            gchar why[96];
            g_snprintf(why, sizeof why, "failed on write: %s",
                       r < 0 ? g_strerror(errno) : "closed");
            stream_down(self, now, why);
            return;
        }
    }
    watch_update(self);
}

static void udp_send(SluiceTurnAllocation *self, const guint8 *data, gsize len)
{
    /* ECONNREFUSED (an ICMP error for an earlier datagram) and a full
     * socket buffer are left to retransmission. */
    if (self->sock)
        (void)send(g_socket_get_fd(self->sock), data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Follow the core to another server (a redirect): a new socket, and for
 * TCP/TLS a new connection with nothing of the old one carried over. */
static gboolean relink(SluiceTurnAllocation *self, const sluice_addr *to, guint64 now)
{
    if (sluice_addr_equal(to, &self->server) && self->sock)
        return TRUE;
    if (link_open(self, to, now))
        return TRUE;
    if (self->stream) {
        if (self->core)
            sluice_turn_client_handle_stream_closed(self->core, now);
    } else {
        fail_local(self, "%s", self->net_error);
    }
    return FALSE;
}

/* Move what the core wants to send onto the wire. */
static void pump_transmit(SluiceTurnAllocation *self, guint64 now)
{
    sluice_transmit tx;
    int n;

    for (int i = 0; i < MAX_PER_WAKEUP && self->core; i++) {
        if (!self->stream) {
            n = sluice_turn_client_poll_transmit(self->core, now, self->buf, IO_BUF, &tx);
            if (n <= 0)
                break;
            if (!sluice_addr_equal(&tx.destination, &self->server) &&
                !relink(self, &tx.destination, now))
                break;
            udp_send(self, self->buf, (gsize)n);
            continue;
        }
        if (STREAM_OUT_CAP - self->out_len < STREAM_ROOM) {
            flush(self, now);
            if (STREAM_OUT_CAP - self->out_len < STREAM_ROOM)
                break; /* the rest when the socket drains */
        }
        n = sluice_turn_client_poll_transmit(self->core, now, self->out + self->out_len,
                                             STREAM_OUT_CAP - self->out_len, &tx);
        if (n <= 0)
            break;
        if (!sluice_addr_equal(&tx.destination, &self->server)) {
            /* A redirect: these bytes start a new stream. */
            memmove(self->out, self->out + self->out_len, (gsize)n);
            self->out_len = 0;
            if (!relink(self, &tx.destination, now))
                break;
        } else if (!self->sock) {
            continue; /* the stream is gone (and the core knows): discard */
        }
        self->out_len += (gsize)n;
        flush(self, now);
    }
}

/* Drain the core: transmits, events (state, items), stream peer data —
 * until nothing moves, a bounded number of rounds. */
static void pump(SluiceTurnAllocation *self, guint64 now)
{
    sluice_turn_event ev;
    gboolean more = TRUE;

    for (int round = 0; round < 16 && more && self->core; round++) {
        more = FALSE;
        pump_transmit(self, now);
        for (int i = 0; i < MAX_PER_WAKEUP && sluice_turn_client_poll_event(self->core, &ev); i++) {
            handle_event(self, &ev);
            more = TRUE;
        }
        for (int i = 0; i < MAX_PER_WAKEUP && self->stream; i++) {
            Item *it;
            size_t len;
            sluice_addr peer;
            int rc = sluice_turn_client_recv(self->core, &peer, self->buf, IO_BUF, &len);
            if (rc != 1)
                break;
            more = TRUE;
            if (!self->recv_func) {
                self->stats.rx_dropped++;
                continue;
            }
            self->stats.rx_packets++;
            self->stats.rx_bytes += len;
            it = g_new0(Item, 1);
            it->kind = ITEM_DATA;
            it->peer = peer;
            it->data = g_memdup2(self->buf, len);
            it->len = len;
            g_ptr_array_add(self->items, it);
        }
    }
    if (terminal(self->state))
        link_close(self);
}

/* ------------------------------------------------------------------------ */
/* Starting: resolve, then the first address that takes a connection. */

static gboolean try_address(SluiceTurnAllocation *self, guint64 now)
{
    sluice_turn_client_config cfg;
    int err = 0;
    gchar at[SLUICE_ADDR_STRLEN];

    for (; self->addr_idx < self->n_addrs; self->addr_idx++) {
        const sluice_addr *a = &self->addrs[self->addr_idx];
        sluice_turn_client_free(self->core);
        self->core = NULL;
        sluice_turn_client_config_init(&cfg);
        cfg.server = *a;
        cfg.transport = self->transport;
        cfg.server_name = self->server_name ? self->server_name : self->u.host;
        cfg.ca_file = self->ca_file;
        cfg.tls_verify = self->tls_verify;
        cfg.username = self->username;
        cfg.password = self->password;
        cfg.family = (sluice_turn_family)self->family;
        cfg.lifetime_s = self->lifetime_s;
        cfg.software = self->software;
        self->core = sluice_turn_client_new(&cfg, &err);
        if (!self->core) {
            fmt_addr(a, at, sizeof at);
            fail_local(self, "cannot set up the TURN client for %s: %s%s", at, sluice_strerror(err),
                       err == SLUICE_ERR_CRYPTO ? " (is ca-file a readable PEM file?)" : "");
            return FALSE;
        }
        self->server = *a;
        if (!link_open(self, a, now))
            continue;
        sluice_turn_client_allocate(self->core, now);
        pump(self, now);
        return TRUE;
    }
    fail_local(self, "%s", self->net_error[0] ? self->net_error : "no address to try");
    return FALSE;
}

/* TCP connect finished (or failed, or timed out: why). */
static void connect_done(SluiceTurnAllocation *self, guint64 now, const gchar *why)
{
    GError *err = NULL;
    gchar at[SLUICE_ADDR_STRLEN];

    fmt_addr(&self->server, at, sizeof at);
    if (!why && g_socket_check_connect_result(self->sock, &err)) {
        self->connecting = FALSE;
        self->net_error[0] = 0;
        flush(self, now);
        watch_update(self);
        return;
    }
    g_snprintf(self->net_error, sizeof self->net_error, "cannot connect to %s: %s", at,
               why ? why : err->message);
    g_clear_error(&err);
    link_close(self);
    /* Before anything was answered, the next resolved address. */
    if (self->state == SLUICE_TURN_ALLOCATION_STATE_ALLOCATING &&
        self->addr_idx + 1 < self->n_addrs &&
        sluice_addr_equal(&self->server, &self->addrs[self->addr_idx])) {
        self->addr_idx++;
        try_address(self, now);
        return;
    }
    if (self->core)
        sluice_turn_client_handle_stream_closed(self->core, now);
}

static void emit_items(SluiceTurnAllocation *self);

static void on_resolved(GObject *src, GAsyncResult *res, gpointer data)
{
    SluiceGuard *guard = data;
    SluiceTurnAllocation *self;
    GError *err = NULL;
    GList *list = g_resolver_lookup_by_name_finish(G_RESOLVER(src), res, &err);

    if ((self = sluice_guard_enter(guard))) {
        g_object_ref(self);
        g_mutex_lock(&self->lock);
        self->resolving = FALSE;
        if (self->state == SLUICE_TURN_ALLOCATION_STATE_ALLOCATING) {
            self->n_addrs = 0;
            for (GList *l = list; l && self->n_addrs < MAX_ADDRS; l = l->next)
                if (sluice_gio_addr_from_inet(&self->addrs[self->n_addrs], l->data, self->u.port))
                    self->n_addrs++;
            if (self->n_addrs > 0)
                try_address(self, now_us(self));
            else
                fail_local(self, "cannot resolve \"%s\": %s", self->u.host,
                           err ? err->message : "no IPv4 or IPv6 address");
        }
        rearm(self);
        g_mutex_unlock(&self->lock);
        emit_items(self);
        g_object_unref(self);
        sluice_guard_leave(guard);
    }
    g_clear_error(&err);
    g_resolver_free_addresses(list);
    sluice_guard_unref(guard);
}

static void begin(SluiceTurnAllocation *self, guint64 now)
{
    GInetAddress *lit = g_inet_address_new_from_string(self->u.host);
    GResolver *r;

    if (lit) {
        self->n_addrs = sluice_gio_addr_from_inet(&self->addrs[0], lit, self->u.port) ? 1 : 0;
        g_object_unref(lit);
        try_address(self, now);
        return;
    }
    /* A name: looked up off the context; the answer comes back to it. */
    self->resolving = TRUE;
    r = g_resolver_get_default();
    g_main_context_push_thread_default(self->ctx);
    g_resolver_lookup_by_name_async(r, self->u.host, self->cancel, on_resolved,
                                    sluice_guard_ref(self->guard));
    g_main_context_pop_thread_default(self->ctx);
    g_object_unref(r);
}

/* ------------------------------------------------------------------------ */
/* The context side: the timer, the socket, emitting. */

static GSocketAddress *gaddr(const sluice_addr *a)
{
    return a && a->family ? sluice_gio_addr_to_gsocket(a) : NULL;
}

static void emit_event(SluiceTurnAllocation *self, const sluice_turn_event *ev)
{
    GSocketAddress *a = NULL, *b = NULL;
    GError *e = NULL;

    switch (ev->type) {
    case SLUICE_TURN_EVENT_ALLOCATED:
        a = gaddr(&ev->relayed[0]);
        b = gaddr(&ev->mapped);
        g_signal_emit(self, signals[SIG_ALLOCATED], 0, a, b, (guint)ev->lifetime_s);
        break;
    case SLUICE_TURN_EVENT_ALLOCATE_FAILED:
        e = event_error(self, ev);
        g_signal_emit(self, signals[SIG_FAILED], 0, (guint)ev->error_code, e);
        break;
    case SLUICE_TURN_EVENT_LOST:
        e = event_error(self, ev);
        g_signal_emit(self, signals[SIG_LOST], 0, (guint)ev->error_code, e);
        break;
    case SLUICE_TURN_EVENT_REFRESHED:
        g_signal_emit(self, signals[SIG_REFRESHED], 0, (guint)ev->lifetime_s);
        break;
    case SLUICE_TURN_EVENT_PERMISSION_CREATED:
        a = gaddr(&ev->peer);
        g_signal_emit(self, signals[SIG_PERMISSION_CREATED], 0, a);
        break;
    case SLUICE_TURN_EVENT_CHANNEL_BOUND:
        a = gaddr(&ev->peer);
        g_signal_emit(self, signals[SIG_CHANNEL_BOUND], 0, a, (guint)ev->channel);
        break;
    case SLUICE_TURN_EVENT_PERMISSION_FAILED:
    case SLUICE_TURN_EVENT_CHANNEL_FAILED:
        a = gaddr(&ev->peer);
        e = event_error(self, ev);
        g_signal_emit(self, signals[SIG_PEER_FAILED], 0, a, (guint)ev->error_code, e);
        break;
    case SLUICE_TURN_EVENT_REDIRECTED:
        a = gaddr(&ev->server);
        g_signal_emit(self, signals[SIG_REDIRECTED], 0, a);
        break;
    case SLUICE_TURN_EVENT_CLOSED:
        g_signal_emit(self, signals[SIG_CLOSED], 0);
        break;
    }
    g_clear_object(&a);
    g_clear_object(&b);
    g_clear_error(&e);
}

/* On the context, no lock held, the caller holding a reference. */
static void emit_items(SluiceTurnAllocation *self)
{
    GPtrArray *items;
    gboolean release, state_changed, addrs_changed;
    SluiceTurnAllocationRecvFunc fn;
    gpointer fn_data;

    g_mutex_lock(&self->lock);
    items = self->items;
    self->items = g_ptr_array_new_with_free_func(item_free);
    release = self->release_pending;
    state_changed = self->state_changed;
    addrs_changed = self->addrs_changed;
    self->release_pending = self->state_changed = self->addrs_changed = FALSE;
    fn = self->recv_func;
    fn_data = self->recv_data;
    g_mutex_unlock(&self->lock);

    if (addrs_changed) {
        g_object_notify_by_pspec(G_OBJECT(self), props[PROP_RELAYED_ADDRESS]);
        g_object_notify_by_pspec(G_OBJECT(self), props[PROP_MAPPED_ADDRESS]);
    }
    if (state_changed)
        g_object_notify_by_pspec(G_OBJECT(self), props[PROP_STATE]);
    for (guint i = 0; i < items->len; i++) {
        Item *it = items->pdata[i];
        if (it->kind == ITEM_EVENT)
            emit_event(self, &it->ev);
        else if (fn)
            fn(self, &it->peer, it->data, it->len, fn_data);
    }
    g_ptr_array_unref(items);
    if (release)
        g_object_unref(self); /* close()'s reference; the caller still holds one */
}

/* The one timer: starting, core deadlines, the connect timeout, and items
 * queued by calls from other threads. */
static void on_timer(gpointer obj, guint64 now)
{
    SluiceTurnAllocation *self = obj;

    g_object_ref(self);
    g_mutex_lock(&self->lock);
    self->armed = ARMED_UNKNOWN;
    if (self->need_begin) {
        self->need_begin = FALSE;
        if (self->state == SLUICE_TURN_ALLOCATION_STATE_ALLOCATING)
            begin(self, now);
    }
    if (self->connecting && now >= self->connect_deadline)
        connect_done(self, now, "timed out");
    if (self->core && now >= sluice_turn_client_next_timeout(self->core))
        sluice_turn_client_handle_timeout(self->core, now);
    pump(self, now);
    rearm(self);
    g_mutex_unlock(&self->lock);
    emit_items(self);
    g_object_unref(self);
}

static void read_stream(SluiceTurnAllocation *self, guint64 now)
{
    for (int i = 0; i < 16 && self->sock && self->core; i++) {
        ssize_t r = recv(g_socket_get_fd(self->sock), self->rbuf, IO_BUF, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            gchar why[96];
            g_snprintf(why, sizeof why, "%s",
                       r == 0 ? "was closed by the server" : g_strerror(errno));
            stream_down(self, now, why);
            break;
        }
        if (sluice_turn_client_handle_datagram(self->core, now, &self->server, self->rbuf,
                                               (size_t)r) < 0) {
            /* Bad framing or a TLS failure: the core's event says why. */
            link_close(self);
            break;
        }
        pump(self, now);
    }
}

/* UDP: the zero-copy path first (ChannelData, Data indications), the core
 * for the rest. Peer data goes to the receive function at once, after any
 * items queued before it (a channel-bound before its first datagram). */
static void read_udp(SluiceTurnAllocation *self, Watch *w)
{
    for (int i = 0; i < MAX_PER_WAKEUP && self->sock && self->watch == w; i++) {
        sluice_addr peer;
        const uint8_t *payload;
        size_t plen;
        SluiceTurnAllocationRecvFunc fn;
        gpointer fn_data;
        guint64 now = now_us(self);
        ssize_t r = recv(g_socket_get_fd(self->sock), self->rbuf, IO_BUF, MSG_DONTWAIT);
        int rc;

        if (r < 0) {
            if (errno == EINTR || errno == ECONNREFUSED)
                continue; /* ICMP errors: left to retransmission */
            break;
        }
        if (!self->core)
            break;
        rc = sluice_turn_client_unwrap(self->core, &self->server, self->rbuf, (size_t)r, &peer,
                                       &payload, &plen);
        if (rc != 1) {
            if (rc == 0)
                sluice_turn_client_handle_datagram(self->core, now, &self->server, self->rbuf,
                                                   (size_t)r);
            pump(self, now);
            continue;
        }
        fn = self->recv_func;
        fn_data = self->recv_data;
        if (!fn) {
            self->stats.rx_dropped++;
            continue;
        }
        self->stats.rx_packets++;
        self->stats.rx_bytes += plen;
        if (self->items->len || self->release_pending || self->state_changed) {
            g_mutex_unlock(&self->lock);
            emit_items(self);
        } else {
            g_mutex_unlock(&self->lock);
        }
        fn(self, &peer, payload, plen, fn_data);
        g_mutex_lock(&self->lock);
    }
}

static void on_socket(SluiceTurnAllocation *self, Watch *w, GIOCondition rev)
{
    guint64 now;

    g_mutex_lock(&self->lock);
    if (w != self->watch) {
        g_mutex_unlock(&self->lock);
        return; /* a socket replaced by a redirect */
    }
    now = now_us(self);
    if (self->connecting) {
        if (rev & (G_IO_OUT | G_IO_ERR | G_IO_HUP))
            connect_done(self, now, NULL);
    } else if (self->stream) {
        if (rev & G_IO_OUT)
            flush(self, now);
        if (rev & (G_IO_IN | G_IO_ERR | G_IO_HUP))
            read_stream(self, now);
    } else {
        read_udp(self, w);
    }
    pump(self, now_us(self));
    rearm(self);
    g_mutex_unlock(&self->lock);
    emit_items(self);
}

/* ------------------------------------------------------------------------ */
/* Public API */

SluiceTurnAllocation *sluice_turn_allocation_new(const gchar *uri, const gchar *username,
                                                 const gchar *password)
{
    return g_object_new(SLUICE_TYPE_TURN_ALLOCATION, "server", uri, "username", username,
                        "password", password, NULL);
}

/* Does the authority of uri carry a port? (turn:HOST with transport=tls
 * then defaults to 5349, as turns: does.) */
static gboolean uri_has_port(const gchar *uri)
{
    const gchar *p = strchr(uri, ':'), *end, *at;
    if (!p)
        return FALSE;
    p++;
    if (g_str_has_prefix(p, "//"))
        p += 2;
    end = strchr(p, '?');
    if (!end)
        end = p + strlen(p);
    at = g_strrstr_len(p, end - p, "@");
    if (at)
        p = at + 1;
    if (*p == '[') {
        const gchar *rb = memchr(p, ']', (gsize)(end - p));
        return rb && rb + 1 < end && rb[1] == ':';
    }
    return memchr(p, ':', (gsize)(end - p)) != NULL;
}

static gboolean bad_setting(GError **error, const gchar *fmt, ...) G_GNUC_PRINTF(2, 3);
static gboolean bad_setting(GError **error, const gchar *fmt, ...)
{
    va_list ap;
    gchar *m;
    va_start(ap, fmt);
    m = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID, m);
    g_free(m);
    return FALSE;
}

/* Parse the URI and settle transport, port and credentials. */
static gboolean check_settings(SluiceTurnAllocation *self, GError **error)
{
    static const sluice_transport want[] = {SLUICE_TRANSPORT_UDP, SLUICE_TRANSPORT_UDP,
                                            SLUICE_TRANSPORT_TCP, SLUICE_TRANSPORT_TLS};
    gboolean named;

    if (!self->uri || !*self->uri)
        return bad_setting(error, "no TURN server URI (turn:HOST[:PORT] or turns:HOST[:PORT])");
    if (!sluice_gio_uri_parse(self->uri, &self->u, error))
        return FALSE;
    if (!self->u.turn)
        return bad_setting(error,
                           "\"%s\" is a STUN URI; a TURN server needs turn: or turns:", self->uri);
    named = g_str_has_prefix(self->uri, "turns:") || strchr(self->uri, '?') != NULL;
    self->transport = self->u.transport;
    if (self->transport_opt != SLUICE_TURN_ALLOCATION_TRANSPORT_AUTO) {
        sluice_transport t = want[self->transport_opt];
        if (named && t != self->u.transport)
            return bad_setting(error, "transport %s contradicts the URI \"%s\" (%s)",
                               transport_name(t), self->uri, transport_name(self->u.transport));
        if (t == SLUICE_TRANSPORT_TLS && !uri_has_port(self->uri))
            self->u.port = 5349; /* RFC 7065 §3.2 */
        self->transport = t;
    }
    self->stream = self->transport != SLUICE_TRANSPORT_UDP;
    if (!self->username && self->u.username) {
        self->username = g_strdup(self->u.username);
        self->password = g_strdup(self->u.password);
    }
    if (!self->username || !*self->username || !self->password)
        return bad_setting(error, "TURN needs a username and a password (long-term credentials)");
    if (self->ca_file && !g_file_test(self->ca_file, G_FILE_TEST_IS_REGULAR))
        return bad_setting(error, "ca-file \"%s\" is not a readable file", self->ca_file);
    return TRUE;
}

gboolean sluice_turn_allocation_start(SluiceTurnAllocation *self, GError **error)
{
    g_return_val_if_fail(SLUICE_IS_TURN_ALLOCATION(self), FALSE);
    g_mutex_lock(&self->lock);
    if (self->started) {
        g_mutex_unlock(&self->lock);
        g_set_error_literal(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE, "already started");
        return FALSE;
    }
    if (!check_settings(self, error)) {
        sluice_gio_uri_clear(&self->u);
        g_mutex_unlock(&self->lock);
        return FALSE;
    }
    self->started = TRUE;
    set_state(self, SLUICE_TURN_ALLOCATION_STATE_ALLOCATING);
    self->need_begin = TRUE;
    rearm(self);
    g_mutex_unlock(&self->lock);
    return TRUE;
}

void sluice_turn_allocation_close(SluiceTurnAllocation *self)
{
    sluice_turn_event ev;
    guint64 now;

    g_return_if_fail(SLUICE_IS_TURN_ALLOCATION(self));
    g_mutex_lock(&self->lock);
    if (terminal(self->state) || self->state == SLUICE_TURN_ALLOCATION_STATE_CLOSING) {
        g_mutex_unlock(&self->lock);
        return;
    }
    now = now_us(self);
    self->need_begin = FALSE;
    if (self->resolving)
        g_cancellable_cancel(self->cancel);
    /* Until "closed" has been emitted on the context. */
    g_object_ref(self);
    self->self_ref = TRUE;
    if (self->core && self->state != SLUICE_TURN_ALLOCATION_STATE_NEW) {
        set_state(self, SLUICE_TURN_ALLOCATION_STATE_CLOSING);
        if (sluice_turn_client_close(self->core, now) < 0) {
            memset(&ev, 0, sizeof ev);
            ev.type = SLUICE_TURN_EVENT_CLOSED;
            handle_event(self, &ev);
        }
        pump(self, now); /* the delete leaves now */
    } else {
        memset(&ev, 0, sizeof ev);
        ev.type = SLUICE_TURN_EVENT_CLOSED;
        handle_event(self, &ev);
        link_close(self);
    }
    rearm(self);
    g_mutex_unlock(&self->lock);
}

gboolean sluice_turn_allocation_peer_from_gsocket(sluice_addr *out, GSocketAddress *peer)
{
    return G_IS_INET_SOCKET_ADDRESS(peer) && sluice_gio_addr_from_gsocket(out, peer);
}

static gboolean core_error(GError **error, int rc, const gchar *what)
{
    gint code = rc == SLUICE_ERR_STATE     ? SLUICE_GIO_ERROR_STATE
                : rc == SLUICE_ERR_FULL    ? SLUICE_GIO_ERROR_FULL
                : rc == SLUICE_ERR_INVALID ? SLUICE_GIO_ERROR_INVALID
                                           : SLUICE_GIO_ERROR_FAILED;
    const gchar *why = rc == SLUICE_ERR_STATE     ? "there is no allocation (yet)"
                       : rc == SLUICE_ERR_INVALID ? "no relayed address of the peer's family"
                       : rc == SLUICE_ERR_FULL    ? "too many peers"
                                                  : sluice_strerror(rc);
    g_set_error(error, SLUICE_GIO_ERROR, code, "%s: %s", what, why);
    return FALSE;
}

static int peer_op(SluiceTurnAllocation *self, GSocketAddress *peer, gboolean channel,
                   GError **error)
{
    sluice_addr pa;
    guint64 now;
    int rc;

    if (!sluice_turn_allocation_peer_from_gsocket(&pa, peer)) {
        g_set_error_literal(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                            "the peer is not an IP socket address");
        return SLUICE_ERR_INVALID;
    }
    g_mutex_lock(&self->lock);
    if (!self->core || self->state != SLUICE_TURN_ALLOCATION_STATE_ALLOCATED) {
        rc = SLUICE_ERR_STATE;
    } else {
        now = now_us(self);
        rc = channel ? sluice_turn_client_bind_channel(self->core, now, &pa)
                     : sluice_turn_client_create_permission(self->core, now, &pa);
        pump(self, now);
        rearm(self);
    }
    g_mutex_unlock(&self->lock);
    if (rc < 0)
        core_error(error, rc, channel ? "cannot bind a channel" : "cannot create a permission");
    return rc;
}

guint sluice_turn_allocation_bind_channel(SluiceTurnAllocation *self, GSocketAddress *peer,
                                          GError **error)
{
    int rc;
    g_return_val_if_fail(SLUICE_IS_TURN_ALLOCATION(self), 0);
    rc = peer_op(self, peer, TRUE, error);
    return rc < 0 ? 0 : (guint)rc;
}

gboolean sluice_turn_allocation_create_permission(SluiceTurnAllocation *self, GSocketAddress *peer,
                                                  GError **error)
{
    g_return_val_if_fail(SLUICE_IS_TURN_ALLOCATION(self), FALSE);
    return peer_op(self, peer, FALSE, error) >= 0;
}

static gboolean send_failed(SluiceTurnAllocation *self, GError **error, gint code, const gchar *msg)
{
    if (code == SLUICE_GIO_ERROR_FULL)
        self->stats.tx_dropped++;
    g_mutex_unlock(&self->lock);
    g_set_error_literal(error, SLUICE_GIO_ERROR, code, msg);
    return FALSE;
}

gboolean sluice_turn_allocation_send(SluiceTurnAllocation *self, const sluice_addr *peer,
                                     const guint8 *data, gsize len, GError **error)
{
    sluice_turn_route route;
    sluice_transmit tx;
    guint64 now;
    int n;

    g_return_val_if_fail(SLUICE_IS_TURN_ALLOCATION(self), FALSE);
    if (len > 65535) {
        g_set_error_literal(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                            "a TURN datagram carries at most 65535 bytes");
        return FALSE;
    }
    g_mutex_lock(&self->lock);
    if (!self->core || self->state != SLUICE_TURN_ALLOCATION_STATE_ALLOCATED || !self->sock)
        return send_failed(self, error, SLUICE_GIO_ERROR_STATE, "not allocated");
    now = now_us(self);
    if (!self->stream) {
        ssize_t r;
        if (sluice_turn_client_route(self->core, peer, &route) == 0 && route.channel) {
            /* RFC 8656 §12.4: the header in front, the payload where it is. */
            guint8 hdr[4];
            struct iovec iov[2] = {{hdr, 4}, {(void *)data, len}};
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
            sluice_turn_channel_header(hdr, route.channel, (uint16_t)len);
            r = sendmsg(g_socket_get_fd(self->sock), &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        } else {
            n = sluice_turn_client_send(self->core, now, peer, data, len, self->buf, IO_BUF, &tx);
            if (n < 0)
                return send_failed(self, error,
                                   n == SLUICE_ERR_NOT_FOUND ? SLUICE_GIO_ERROR_INVALID
                                                             : SLUICE_GIO_ERROR_FAILED,
                                   n == SLUICE_ERR_NOT_FOUND ? "no permission or channel for peer"
                                                             : sluice_strerror(n));
            r = send(g_socket_get_fd(self->sock), self->buf, (size_t)n,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
                return send_failed(self, error, SLUICE_GIO_ERROR_FULL, "socket buffer full");
            return send_failed(self, error, SLUICE_GIO_ERROR_SOCKET, g_strerror(errno));
        }
    } else {
        if (STREAM_OUT_CAP - self->out_len < STREAM_ROOM)
            flush(self, now);
        if (STREAM_OUT_CAP - self->out_len < STREAM_ROOM)
            return send_failed(self, error, SLUICE_GIO_ERROR_FULL, "TCP backlog full");
        n = sluice_turn_client_send(self->core, now, peer, data, len, self->out + self->out_len,
                                    STREAM_OUT_CAP - self->out_len, &tx);
        if (n == SLUICE_ERR_NOSPACE && self->transport == SLUICE_TRANSPORT_TLS)
            n = 0; /* TLS queued the record; poll_transmit hands it out */
        if (n < 0)
            return send_failed(self, error,
                               n == SLUICE_ERR_NOT_FOUND ? SLUICE_GIO_ERROR_INVALID
                                                         : SLUICE_GIO_ERROR_FAILED,
                               n == SLUICE_ERR_NOT_FOUND ? "no permission or channel for peer"
                                                         : sluice_strerror(n));
        self->out_len += (gsize)n;
        if (n == 0)
            pump_transmit(self, now);
        flush(self, now);
        if (!self->sock) {
            /* The write failed and the stream is gone: the context reports it. */
            pump(self, now);
            rearm(self);
            return send_failed(self, error, SLUICE_GIO_ERROR_SOCKET, self->net_error);
        }
    }
    self->stats.tx_packets++;
    self->stats.tx_bytes += len;
    g_mutex_unlock(&self->lock);
    return TRUE;
}

void sluice_turn_allocation_set_recv_func(SluiceTurnAllocation *self,
                                          SluiceTurnAllocationRecvFunc func, gpointer user_data,
                                          GDestroyNotify notify)
{
    GDestroyNotify old_notify;
    gpointer old_data;

    g_return_if_fail(SLUICE_IS_TURN_ALLOCATION(self));
    g_mutex_lock(&self->lock);
    old_notify = self->recv_notify;
    old_data = self->recv_data;
    self->recv_func = func;
    self->recv_data = user_data;
    self->recv_notify = notify;
    g_mutex_unlock(&self->lock);
    if (old_notify)
        old_notify(old_data);
}

SluiceTurnAllocationState sluice_turn_allocation_get_state(SluiceTurnAllocation *self)
{
    SluiceTurnAllocationState s;
    g_return_val_if_fail(SLUICE_IS_TURN_ALLOCATION(self), SLUICE_TURN_ALLOCATION_STATE_NEW);
    g_mutex_lock(&self->lock);
    s = self->state;
    g_mutex_unlock(&self->lock);
    return s;
}

GSocketAddress *sluice_turn_allocation_get_relayed_address(SluiceTurnAllocation *self, guint index)
{
    GSocketAddress *a = NULL;
    g_return_val_if_fail(SLUICE_IS_TURN_ALLOCATION(self), NULL);
    g_mutex_lock(&self->lock);
    if (index < self->n_relayed)
        a = gaddr(&self->relayed[index]);
    g_mutex_unlock(&self->lock);
    return a;
}

GSocketAddress *sluice_turn_allocation_get_mapped_address(SluiceTurnAllocation *self)
{
    GSocketAddress *a = NULL;
    g_return_val_if_fail(SLUICE_IS_TURN_ALLOCATION(self), NULL);
    g_mutex_lock(&self->lock);
    if (self->have_mapped)
        a = gaddr(&self->mapped);
    g_mutex_unlock(&self->lock);
    return a;
}

SluiceTurnAllocationTransport sluice_turn_allocation_get_transport(SluiceTurnAllocation *self)
{
    SluiceTurnAllocationTransport t = SLUICE_TURN_ALLOCATION_TRANSPORT_AUTO;
    g_return_val_if_fail(SLUICE_IS_TURN_ALLOCATION(self), t);
    g_mutex_lock(&self->lock);
    if (self->started)
        t = self->transport == SLUICE_TRANSPORT_TLS   ? SLUICE_TURN_ALLOCATION_TRANSPORT_TLS
            : self->transport == SLUICE_TRANSPORT_TCP ? SLUICE_TURN_ALLOCATION_TRANSPORT_TCP
                                                      : SLUICE_TURN_ALLOCATION_TRANSPORT_UDP;
    g_mutex_unlock(&self->lock);
    return t;
}

GSocketAddress *sluice_turn_allocation_get_server_address(SluiceTurnAllocation *self)
{
    GSocketAddress *a;
    g_return_val_if_fail(SLUICE_IS_TURN_ALLOCATION(self), NULL);
    g_mutex_lock(&self->lock);
    a = gaddr(&self->server);
    g_mutex_unlock(&self->lock);
    return a;
}

void sluice_turn_allocation_get_stats(SluiceTurnAllocation *self, SluiceTurnAllocationStats *st)
{
    sluice_turn_client_stats cs;
    g_return_if_fail(SLUICE_IS_TURN_ALLOCATION(self));
    g_mutex_lock(&self->lock);
    *st = self->stats;
    if (self->core) {
        sluice_turn_client_get_stats(self->core, &cs);
        st->rx_dropped += cs.rx_dropped_queue + cs.rx_dropped_unknown;
    }
    g_mutex_unlock(&self->lock);
}

/* ------------------------------------------------------------------------ */
/* GObject */

static void sluice_turn_allocation_init(SluiceTurnAllocation *self)
{
    g_mutex_init(&self->lock);
    self->family = SLUICE_TURN_ALLOCATION_FAMILY_IPV4;
    self->tls_verify = TRUE;
    self->armed = ARMED_UNKNOWN;
    self->items = g_ptr_array_new_with_free_func(item_free);
    self->guard = sluice_guard_new(self);
    self->cancel = g_cancellable_new();
}

static void sluice_turn_allocation_constructed(GObject *obj)
{
    SluiceTurnAllocation *self = SLUICE_TURN_ALLOCATION(obj);

    G_OBJECT_CLASS(sluice_turn_allocation_parent_class)->constructed(obj);
    if (!self->ctx)
        self->ctx = sluice_gio_shared_context();
    self->timer = sluice_timer_new(self->ctx, self->clock, self->guard, on_timer);
    self->rbuf = g_malloc(IO_BUF);
    self->buf = g_malloc(IO_BUF);
    self->out = g_malloc(STREAM_OUT_CAP);
}

static void sluice_turn_allocation_dispose(GObject *obj)
{
    SluiceTurnAllocation *self = SLUICE_TURN_ALLOCATION(obj);

    /* Waits for a running callback; later ones do nothing. */
    sluice_guard_close(self->guard);
    g_cancellable_cancel(self->cancel);
    g_mutex_lock(&self->lock);
    if (self->core && self->state == SLUICE_TURN_ALLOCATION_STATE_ALLOCATED && self->sock) {
        /* Dropped without close(): send the delete once, without waiting. */
        guint64 now = now_us(self);
        if (sluice_turn_client_close(self->core, now) == 0)
            pump_transmit(self, now);
    }
    link_close(self);
    if (self->timer) {
        sluice_timer_free(self->timer);
        self->timer = NULL;
    }
    g_ptr_array_set_size(self->items, 0);
    g_mutex_unlock(&self->lock);
    G_OBJECT_CLASS(sluice_turn_allocation_parent_class)->dispose(obj);
}

static void sluice_turn_allocation_finalize(GObject *obj)
{
    SluiceTurnAllocation *self = SLUICE_TURN_ALLOCATION(obj);

    if (self->recv_notify)
        self->recv_notify(self->recv_data);
    sluice_turn_client_free(self->core);
    g_ptr_array_unref(self->items);
    sluice_guard_unref(self->guard);
    g_object_unref(self->cancel);
    g_clear_object(&self->server_gaddr);
    g_clear_object(&self->clock);
    if (self->ctx)
        g_main_context_unref(self->ctx);
    sluice_gio_uri_clear(&self->u);
    if (self->password)
        memset(self->password, 0, strlen(self->password));
    g_free(self->uri);
    g_free(self->username);
    g_free(self->password);
    g_free(self->ca_file);
    g_free(self->server_name);
    g_free(self->software);
    g_free(self->rbuf);
    g_free(self->buf);
    g_free(self->out);
    g_mutex_clear(&self->lock);
    G_OBJECT_CLASS(sluice_turn_allocation_parent_class)->finalize(obj);
}

/* The string settings by property id, or NULL. */
static gchar **string_field(SluiceTurnAllocation *self, guint id)
{
    switch (id) {
    case PROP_SERVER:
        return &self->uri;
    case PROP_USERNAME:
        return &self->username;
    case PROP_PASSWORD:
        return &self->password;
    case PROP_CA_FILE:
        return &self->ca_file;
    case PROP_SERVER_NAME:
        return &self->server_name;
    case PROP_SOFTWARE:
        return &self->software;
    default:
        return NULL;
    }
}

static void sluice_turn_allocation_set_property(GObject *obj, guint id, const GValue *v,
                                                GParamSpec *ps)
{
    SluiceTurnAllocation *self = SLUICE_TURN_ALLOCATION(obj);
    gchar **field = string_field(self, id);

    g_mutex_lock(&self->lock);
    if (self->started && id != PROP_MAIN_CONTEXT && id != PROP_CLOCK) {
        g_mutex_unlock(&self->lock);
        g_warning("SluiceTurnAllocation: \"%s\" cannot change once started", ps->name);
        return;
    }
    if (field) {
        if (*field && field == &self->password)
            memset(*field, 0, strlen(*field));
        g_free(*field);
        *field = g_value_dup_string(v);
    } else if (id == PROP_TRANSPORT) {
        self->transport_opt = g_value_get_enum(v);
    } else if (id == PROP_FAMILY) {
        self->family = g_value_get_enum(v);
    } else if (id == PROP_LIFETIME) {
        self->lifetime_s = g_value_get_uint(v);
    } else if (id == PROP_TLS_VERIFY) {
        self->tls_verify = g_value_get_boolean(v);
    } else if (id == PROP_MAIN_CONTEXT) {
        self->ctx = g_value_dup_boxed(v);
    } else if (id == PROP_CLOCK) {
        self->clock = g_value_dup_object(v);
    } else {
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    }
    g_mutex_unlock(&self->lock);
}

static void sluice_turn_allocation_get_property(GObject *obj, guint id, GValue *v, GParamSpec *ps)
{
    SluiceTurnAllocation *self = SLUICE_TURN_ALLOCATION(obj);
    gchar **field = string_field(self, id);

    if (id == PROP_RELAYED_ADDRESS) {
        g_value_take_object(v, sluice_turn_allocation_get_relayed_address(self, 0));
        return;
    }
    if (id == PROP_MAPPED_ADDRESS) {
        g_value_take_object(v, sluice_turn_allocation_get_mapped_address(self));
        return;
    }
    g_mutex_lock(&self->lock);
    if (field)
        g_value_set_string(v, *field);
    else if (id == PROP_TRANSPORT)
        g_value_set_enum(v, self->transport_opt);
    else if (id == PROP_FAMILY)
        g_value_set_enum(v, self->family);
    else if (id == PROP_LIFETIME)
        g_value_set_uint(v, self->lifetime_s);
    else if (id == PROP_TLS_VERIFY)
        g_value_set_boolean(v, self->tls_verify);
    else if (id == PROP_MAIN_CONTEXT)
        g_value_set_boxed(v, self->ctx);
    else if (id == PROP_CLOCK)
        g_value_set_object(v, self->clock);
    else if (id == PROP_STATE)
        g_value_set_enum(v, self->state);
    else
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    g_mutex_unlock(&self->lock);
}

static void sluice_turn_allocation_class_init(SluiceTurnAllocationClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
    const GParamFlags co = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;
    const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

    oc->constructed = sluice_turn_allocation_constructed;
    oc->dispose = sluice_turn_allocation_dispose;
    oc->finalize = sluice_turn_allocation_finalize;
    oc->set_property = sluice_turn_allocation_set_property;
    oc->get_property = sluice_turn_allocation_get_property;

    props[PROP_SERVER] = g_param_spec_string(
        "server", "Server",
        "TURN server URI: turn:HOST[:PORT][?transport=udp|tcp] or turns:HOST[:PORT]", NULL, rw);
    props[PROP_USERNAME] =
        g_param_spec_string("username", "Username", "Long-term credential user name", NULL, rw);
    props[PROP_PASSWORD] =
        g_param_spec_string("password", "Password", "Long-term credential password", NULL, rw);
    props[PROP_TRANSPORT] = g_param_spec_enum(
        "transport", "Transport", "Transport to the server (auto: as the URI says)",
        SLUICE_TYPE_TURN_ALLOCATION_TRANSPORT, SLUICE_TURN_ALLOCATION_TRANSPORT_AUTO, rw);
    props[PROP_FAMILY] = g_param_spec_enum(
        "family", "Family", "Address family of the relayed address",
        SLUICE_TYPE_TURN_ALLOCATION_FAMILY, SLUICE_TURN_ALLOCATION_FAMILY_IPV4, rw);
    props[PROP_LIFETIME] =
        g_param_spec_uint("lifetime", "Lifetime",
                          "LIFETIME to request in seconds (0: the server's)", 0, 86400, 0, rw);
    props[PROP_CA_FILE] = g_param_spec_string(
        "ca-file", "CA file", "TLS: PEM bundle to verify the server with (NULL: system store)",
        NULL, rw);
    props[PROP_TLS_VERIFY] = g_param_spec_boolean("tls-verify", "TLS verify",
                                                  "TLS: verify the server certificate", TRUE, rw);
    props[PROP_SERVER_NAME] = g_param_spec_string(
        "server-name", "Server name",
        "TLS: name for SNI and verification (NULL: the URI's host as written)", NULL, rw);
    props[PROP_SOFTWARE] = g_param_spec_string(
        "software", "Software", "SOFTWARE attribute of requests (NULL: none)", NULL, rw);
    props[PROP_MAIN_CONTEXT] = g_param_spec_boxed(
        "main-context", "Main context",
        "Context for the socket, the timer and the signals (NULL: the shared sluice-gio thread)",
        G_TYPE_MAIN_CONTEXT, co);
    props[PROP_CLOCK] = g_param_spec_object(
        "clock", "Clock", "Time source of the timers (NULL: monotonic)", SLUICE_TYPE_CLOCK, co);
    props[PROP_STATE] =
        g_param_spec_enum("state", "State", "State of the allocation",
                          SLUICE_TYPE_TURN_ALLOCATION_STATE, SLUICE_TURN_ALLOCATION_STATE_NEW, ro);
    props[PROP_RELAYED_ADDRESS] = g_param_spec_object(
        "relayed-address", "Relayed address",
        "The relayed transport address (NULL until allocated)", G_TYPE_SOCKET_ADDRESS, ro);
    props[PROP_MAPPED_ADDRESS] = g_param_spec_object(
        "mapped-address", "Mapped address",
        "Our address as the server saw it (NULL until allocated)", G_TYPE_SOCKET_ADDRESS, ro);
    g_object_class_install_properties(oc, N_PROPS, props);

    /* Every signal runs on the object's context with no lock held. */
    signals[SIG_ALLOCATED] =
        g_signal_new("allocated", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 3, G_TYPE_SOCKET_ADDRESS, G_TYPE_SOCKET_ADDRESS, G_TYPE_UINT);
    signals[SIG_FAILED] = g_signal_new("failed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                       NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_ERROR);
    signals[SIG_LOST] = g_signal_new("lost", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                     NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_ERROR);
    signals[SIG_REFRESHED] = g_signal_new("refreshed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
    signals[SIG_PERMISSION_CREATED] =
        g_signal_new("permission-created", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                     NULL, NULL, G_TYPE_NONE, 1, G_TYPE_SOCKET_ADDRESS);
    signals[SIG_CHANNEL_BOUND] =
        g_signal_new("channel-bound", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 2, G_TYPE_SOCKET_ADDRESS, G_TYPE_UINT);
    signals[SIG_PEER_FAILED] =
        g_signal_new("peer-failed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 3, G_TYPE_SOCKET_ADDRESS, G_TYPE_UINT, G_TYPE_ERROR);
    signals[SIG_REDIRECTED] =
        g_signal_new("redirected", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 1, G_TYPE_SOCKET_ADDRESS);
    signals[SIG_CLOSED] = g_signal_new("closed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                       NULL, NULL, NULL, G_TYPE_NONE, 0);
}
