/* SPDX-License-Identifier: MIT */
/* A small real-socket driver for one sluice ICE agent, for interop tests and
 * benchmarks: UDP sockets on loopback as bases, TCP streams to TURN servers
 * (TCP and TLS: the agent encrypts), a ppoll() loop on CLOCK_MONOTONIC,
 * transmits sent from the base the agent names, events and media handed to
 * callbacks. Header-only; every wait has a deadline, every loop a bound. */
#ifndef SLUICE_TEST_ICE_DRIVER_H
#define SLUICE_TEST_ICE_DRIVER_H

#include "sluice/ice.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ICE_DRV_MAX_SOCKS 8
#define ICE_DRV_MAX_STREAMS 8
#define ICE_DRV_MAX_POLL 64
/* Datagrams read from one socket per round, so one busy socket cannot
 * starve the others or the timers. */
#define ICE_DRV_RX_BURST 64
/* Bytes a stream holds while its socket does not take them (connecting, a
 * full send buffer). Beyond it the stream is given up: closed and
 * reported to the agent like any failed connection. */
#define ICE_DRV_STREAM_QUEUE (256u * 1024u)
/* Reads from one stream per round, 64 KiB each (the agent's bound). */
#define ICE_DRV_STREAM_READ 65536u
#define ICE_DRV_STREAM_BURST 4

typedef struct ice_driver ice_driver;
typedef void (*ice_drv_event_fn)(void *ctx, ice_driver *d, const sluice_ice_event *ev);
typedef void (*ice_drv_media_fn)(void *ctx, ice_driver *d, const sluice_ice_media *m);

struct ice_drv_sock {
    int fd;
    sluice_addr addr; /* the bound address: the base */
};

/* A TCP connection to a TURN server: the stream (base, server, transport)
 * of the agent's contract (sluice/ice.h). */
struct ice_drv_stream {
    int fd; /* -1: free slot */
    sluice_addr base, server;
    sluice_transport transport;
    bool connecting;
    uint8_t *out; /* ICE_DRV_STREAM_QUEUE bytes */
    size_t out_len;
};

struct ice_driver {
    sluice_ice_agent *ag; /* borrowed: the caller frees it after the driver */
    struct ice_drv_sock socks[ICE_DRV_MAX_SOCKS];
    size_t n_socks;
    struct ice_drv_stream streams[ICE_DRV_MAX_STREAMS];
    ice_drv_event_fn on_event;
    ice_drv_media_fn on_media;
    void *ctx;
    /* Counters for reports. */
    uint64_t tx_datagrams, rx_datagrams, tx_errors, rx_unknown;
    uint64_t streams_opened, streams_failed, stream_tx_bytes, stream_rx_bytes;
    char last_error[128];
    /* ICE_DRV_TRACE=1 in the environment: every datagram on stderr. */
    bool trace;
    uint64_t t_start;
    uint8_t buf[65536 + 4];
};

/* Monotonic microseconds: the agent's now_us. */
static inline uint64_t ice_drv_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A driver for agent ag. Returns NULL on allocation failure. */
static inline ice_driver *ice_drv_new(sluice_ice_agent *ag, ice_drv_event_fn on_event,
                                      ice_drv_media_fn on_media, void *ctx)
{
    ice_driver *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->ag = ag;
    d->on_event = on_event;
    d->on_media = on_media;
    d->ctx = ctx;
    d->trace = getenv("ICE_DRV_TRACE") && strcmp(getenv("ICE_DRV_TRACE"), "0") != 0;
    d->t_start = ice_drv_now_us();
    for (size_t i = 0; i < ICE_DRV_MAX_STREAMS; i++)
        d->streams[i].fd = -1;
    return d;
}

/* One trace line: time since the driver started, direction, addresses,
 * length and, for STUN (RFC 7983: first byte 0-3), the message type. */
static inline void ice_drv_trace(const ice_driver *d, const char *dir, const sluice_addr *local,
                                 const sluice_addr *remote, const uint8_t *data, size_t len)
{
    char l[SLUICE_ADDR_STRLEN], r[SLUICE_ADDR_STRLEN], what[32] = "";
    if (!d->trace)
        return;
    sluice_addr_format(local, true, l, sizeof l);
    sluice_addr_format(remote, true, r, sizeof r);
    if (len >= 20 && data[0] < 4)
        snprintf(what, sizeof what, " stun 0x%04x", (unsigned)(data[0] << 8 | data[1]));
    else if (len >= 4 && data[0] >= 64 && data[0] < 80)
        snprintf(what, sizeof what, " channel 0x%04x", (unsigned)(data[0] << 8 | data[1]));
    fprintf(stderr, "# drv %9.3f ms %s %s %s %s %zu bytes%s\n",
            (double)(ice_drv_now_us() - d->t_start) / 1000.0, dir, l, dir[0] == 't' ? "->" : "<-",
            r, len, what);
}

static inline void ice_drv_stream_free(struct ice_drv_stream *st)
{
    if (st->fd >= 0)
        close(st->fd);
    free(st->out);
    memset(st, 0, sizeof *st);
    st->fd = -1;
}

/* Frees every socket and stream: the agent is freed after (it emits
 * nothing on free; closing a stream deletes its allocation, RFC 8656 §3.1). */
static inline void ice_drv_free(ice_driver *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_socks; i++)
        close(d->socks[i].fd);
    for (size_t i = 0; i < ICE_DRV_MAX_STREAMS; i++)
        ice_drv_stream_free(&d->streams[i]);
    free(d);
}

/* Bind a non-blocking UDP socket on ip ("127.0.0.1", "::1"), port 0 (the
 * kernel picks), and add it to the agent as a base of stream/component.
 * Returns 0, or -1 with d->last_error set. *bound (may be NULL) gets the
 * address. */
static inline int ice_drv_add_base(ice_driver *d, uint64_t now_us, int stream,
                                   unsigned component, const char *ip, sluice_addr *bound)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    sluice_addr a;
    int fd = -1, rc;
    if (d->n_socks == ICE_DRV_MAX_SOCKS) {
        snprintf(d->last_error, sizeof d->last_error, "too many sockets");
        return -1;
    }
    if (sluice_addr_parse(&a, ip, 0) != 0 || (rc = sluice_addr_to_sockaddr(&a, &ss, sizeof ss)) < 0) {
        snprintf(d->last_error, sizeof d->last_error, "bad address %s", ip);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, (socklen_t)rc) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        sluice_addr_from_sockaddr(&a, &ss, sl) != 0) {
        snprintf(d->last_error, sizeof d->last_error, "socket/bind %s: %s", ip, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rc = sluice_ice_agent_add_base(d->ag, now_us, stream, component, &a);
    if (rc != 0) {
        snprintf(d->last_error, sizeof d->last_error, "add_base: %s", sluice_strerror(rc));
        close(fd);
        return -1;
    }
    d->socks[d->n_socks].fd = fd;
    d->socks[d->n_socks].addr = a;
    d->n_socks++;
    if (bound)
        *bound = a;
    return 0;
}

static inline struct ice_drv_sock *ice_drv_sock_for(ice_driver *d, const sluice_addr *base)
{
    for (size_t i = 0; i < d->n_socks; i++)
        if (sluice_addr_equal(&d->socks[i].addr, base))
            return &d->socks[i];
    return NULL;
}

/* Send one datagram from base to dst. Returns 0 or -1 (counted). */
static inline int ice_drv_sendto(ice_driver *d, const sluice_addr *base, const sluice_addr *dst,
                                 const uint8_t *data, size_t len)
{
    struct ice_drv_sock *s = ice_drv_sock_for(d, base);
    struct sockaddr_storage ss;
    int sl = sluice_addr_to_sockaddr(dst, &ss, sizeof ss);
    if (!s || sl < 0 || sendto(s->fd, data, len, 0, (struct sockaddr *)&ss, (socklen_t)sl) < 0) {
        d->tx_errors++;
        snprintf(d->last_error, sizeof d->last_error, "sendto: %s",
                 !s ? "no socket for the base" : sl < 0 ? "bad destination" : strerror(errno));
        return -1;
    }
    d->tx_datagrams++;
    ice_drv_trace(d, "tx", base, dst, data, len);
    return 0;
}

/* --- streams to TURN servers ------------------------------------------- */

static inline struct ice_drv_stream *ice_drv_stream_find(ice_driver *d, const sluice_addr *base,
                                                         const sluice_addr *server,
                                                         sluice_transport tr)
{
    for (size_t i = 0; i < ICE_DRV_MAX_STREAMS; i++) {
        struct ice_drv_stream *st = &d->streams[i];
        if (st->fd >= 0 && st->transport == tr && sluice_addr_equal(&st->base, base) &&
            sluice_addr_equal(&st->server, server))
            return st;
    }
    return NULL;
}

/* The stream failed or ended: close it and tell the agent (once). */
static inline void ice_drv_stream_lost(ice_driver *d, struct ice_drv_stream *st, const char *why)
{
    snprintf(d->last_error, sizeof d->last_error, "stream: %s", why);
    if (d->trace)
        ice_drv_trace(d, "rx-closed", &st->base, &st->server, (const uint8_t *)"", 0);
    d->streams_failed++;
    sluice_addr base = st->base, server = st->server;
    sluice_transport tr = st->transport;
    ice_drv_stream_free(st);
    sluice_ice_agent_handle_stream_closed(d->ag, ice_drv_now_us(), &base, &server, tr);
}

/* Connect a stream from the base's IP (port 0) to server, non-blocking. */
static inline struct ice_drv_stream *ice_drv_stream_open(ice_driver *d, const sluice_addr *base,
                                                         const sluice_addr *server,
                                                         sluice_transport tr)
{
    struct ice_drv_stream *st = NULL;
    struct sockaddr_storage ss;
    sluice_addr local = *base;
    int one = 1, sl;
    for (size_t i = 0; i < ICE_DRV_MAX_STREAMS && !st; i++)
        if (d->streams[i].fd < 0)
            st = &d->streams[i];
    if (!st) {
        snprintf(d->last_error, sizeof d->last_error, "too many streams");
        return NULL;
    }
    st->out = malloc(ICE_DRV_STREAM_QUEUE);
    local.port = 0;
    st->fd = socket(server->family == SLUICE_AF_INET6 ? AF_INET6 : AF_INET,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    st->base = *base;
    st->server = *server;
    st->transport = tr;
    st->connecting = true;
    d->streams_opened++;
    if (!st->out || st->fd < 0 || (sl = sluice_addr_to_sockaddr(&local, &ss, sizeof ss)) < 0 ||
        bind(st->fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0 ||
        setsockopt(st->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        (sl = sluice_addr_to_sockaddr(server, &ss, sizeof ss)) < 0 ||
        (connect(st->fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0 && errno != EINPROGRESS)) {
        ice_drv_stream_lost(d, st, strerror(errno));
        return NULL;
    }
    if (d->trace)
        ice_drv_trace(d, "tx-connect", base, server, (const uint8_t *)"", 0);
    return st;
}

/* Write what is queued, as far as the socket takes it. Returns 0, or -1
 * when the stream failed (closed and reported). */
static inline int ice_drv_stream_push(ice_driver *d, struct ice_drv_stream *st)
{
    size_t off = 0;
    while (!st->connecting && off < st->out_len) {
        ssize_t n = send(st->fd, st->out + off, st->out_len - off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ice_drv_stream_lost(d, st, strerror(errno));
            return -1;
        }
        off += (size_t)n;
        d->stream_tx_bytes += (uint64_t)n;
    }
    memmove(st->out, st->out + off, st->out_len - off);
    st->out_len -= off;
    return 0;
}

/* Bytes for the stream (base, server, tr), opened on first use. */
static inline int ice_drv_stream_write(ice_driver *d, const sluice_addr *base,
                                       const sluice_addr *server, sluice_transport tr,
                                       const uint8_t *data, size_t len)
{
    struct ice_drv_stream *st = ice_drv_stream_find(d, base, server, tr);
    if (!st && !(st = ice_drv_stream_open(d, base, server, tr)))
        return -1;
    ice_drv_trace(d, "tx", base, server, data, len);
    if (len > ICE_DRV_STREAM_QUEUE - st->out_len) {
        ice_drv_stream_lost(d, st, "write queue full");
        return -1;
    }
    memcpy(st->out + st->out_len, data, len);
    st->out_len += len;
    return ice_drv_stream_push(d, st);
}

/* The socket is writable (connected, or room again) or has news. */
static inline void ice_drv_stream_ready(ice_driver *d, struct ice_drv_stream *st, short revents)
{
    if (st->connecting && (revents & (POLLOUT | POLLERR | POLLHUP))) {
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(st->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err) {
            ice_drv_stream_lost(d, st, strerror(err ? err : errno));
            return;
        }
        st->connecting = false;
    }
    if (!st->connecting && (revents & POLLOUT) && ice_drv_stream_push(d, st) < 0)
        return;
    if (!(revents & (POLLIN | POLLERR | POLLHUP)))
        return;
    for (int i = 0; i < ICE_DRV_STREAM_BURST; i++) {
        ssize_t n = recv(st->fd, d->buf, ICE_DRV_STREAM_READ, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            ice_drv_stream_lost(d, st, n == 0 ? "closed by the server" : strerror(errno));
            return;
        }
        d->stream_rx_bytes += (uint64_t)n;
        ice_drv_trace(d, "rx", &st->base, &st->server, d->buf, (size_t)n);
        sluice_ice_media m;
        sluice_addr base = st->base, server = st->server;
        sluice_transport tr = st->transport;
        int rc = sluice_ice_agent_handle_stream(d->ag, ice_drv_now_us(), &base, &server, tr,
                                                d->buf, (size_t)n, &m);
        /* one chunk may complete several datagrams: bounded by its size */
        for (size_t k = 0; rc == 1 && k < ICE_DRV_STREAM_READ; k++) {
            if (d->on_media)
                d->on_media(d->ctx, d, &m);
            rc = sluice_ice_agent_handle_stream(d->ag, ice_drv_now_us(), &base, &server, tr,
                                                NULL, 0, &m);
        }
        if (rc < 0) { /* the agent gave the stream up (and says CLOSE_STREAM) */
            snprintf(d->last_error, sizeof d->last_error, "handle_stream: %s",
                     sluice_strerror(rc));
            ice_drv_stream_free(st);
            return;
        }
    }
}

/* One transmit of the agent: a datagram or stream bytes. */
static inline int ice_drv_transmit(ice_driver *d, const sluice_transmit *meta,
                                   const uint8_t *data, size_t len)
{
    if (meta->transport == SLUICE_TRANSPORT_UDP)
        return ice_drv_sendto(d, &meta->source, &meta->destination, data, len);
    return ice_drv_stream_write(d, &meta->source, &meta->destination, meta->transport, data,
                                len);
}

/* Run due timers, send every pending transmit, hand out every event. */
static inline void ice_drv_flush(ice_driver *d)
{
    uint64_t now = ice_drv_now_us();
    sluice_transmit meta;
    sluice_ice_event ev;
    int n;
    if (sluice_ice_agent_next_timeout(d->ag) <= now)
        sluice_ice_agent_handle_timeout(d->ag, now);
    while ((n = sluice_ice_agent_poll_transmit(d->ag, now, d->buf, sizeof d->buf, &meta)) > 0)
        ice_drv_transmit(d, &meta, d->buf, (size_t)n);
    while (sluice_ice_agent_poll_event(d->ag, &ev)) {
        if (ev.type == SLUICE_ICE_EVENT_CLOSE_STREAM) {
            struct ice_drv_stream *st = ice_drv_stream_find(d, &ev.base, &ev.server, ev.transport);
            if (st)
                ice_drv_stream_free(st);
        }
        if (d->on_event)
            d->on_event(d->ctx, d, &ev);
    }
}

/* Application data on the component's selected pair: framing NONE is sent
 * as is from route.base to route.destination, CHANNEL with the 4-byte
 * ChannelData header (RFC 8656 §12.4) written in front (and, on a TCP
 * stream, zeros up to a multiple of 4: §12.5), SEND through
 * sluice_ice_agent_send() (a Send indication, or TLS records). Returns 0,
 * or -1 (no route, send error). */
static inline int ice_drv_send(ice_driver *d, int stream, unsigned component,
                               const uint8_t *data, size_t len)
{
    sluice_ice_route r;
    uint64_t now = ice_drv_now_us();
    int rc = sluice_ice_agent_route(d->ag, stream, component, &r);
    if (rc != 0) {
        snprintf(d->last_error, sizeof d->last_error, "route: %s", sluice_strerror(rc));
        return -1;
    }
    if (len > sizeof d->buf - 8)
        return -1;
    if (r.framing == SLUICE_ICE_FRAMING_NONE) {
        rc = ice_drv_sendto(d, &r.base, &r.destination, data, len);
    } else if (r.framing == SLUICE_ICE_FRAMING_CHANNEL) {
        sluice_transmit meta = {.destination = r.destination, .transport = r.transport,
                                .source = r.base};
        size_t total = r.pad ? (len + 4 + 3) & ~(size_t)3 : len + 4;
        sluice_turn_channel_header(d->buf, r.channel, (uint16_t)len);
        memcpy(d->buf + 4, data, len);
        memset(d->buf + 4 + len, 0, total - 4 - len);
        rc = ice_drv_transmit(d, &meta, d->buf, total);
    } else {
        sluice_transmit meta;
        int n = sluice_ice_agent_send(d->ag, now, stream, component, data, len, d->buf,
                                      sizeof d->buf, &meta);
        if (n < 0) {
            snprintf(d->last_error, sizeof d->last_error, "agent_send: %s", sluice_strerror(n));
            return -1;
        }
        /* sluice_ice_agent_send() counts the datagram itself; TLS output
         * that did not fit comes from poll_transmit (the next flush). */
        return ice_drv_transmit(d, &meta, d->buf, (size_t)n);
    }
    if (rc == 0)
        sluice_ice_agent_count_sent(d->ag, now, stream, component, 1, len);
    return rc;
}

/* Read what is waiting on one socket (at most a burst) into the agent. */
static inline void ice_drv_read(ice_driver *d, struct ice_drv_sock *s)
{
    for (int i = 0; i < ICE_DRV_RX_BURST; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        sluice_addr from;
        sluice_ice_media m;
        ssize_t n = recvfrom(s->fd, d->buf, sizeof d->buf, 0, (struct sockaddr *)&ss, &sl);
        if (n < 0)
            return; /* EAGAIN, or an ICMP error reported on the socket */
        if (sluice_addr_from_sockaddr(&from, &ss, sl) != 0) {
            d->rx_unknown++;
            continue;
        }
        d->rx_datagrams++;
        ice_drv_trace(d, "rx", &s->addr, &from, d->buf, (size_t)n);
        int rc = sluice_ice_agent_handle_datagram(d->ag, ice_drv_now_us(), &s->addr, &from, d->buf,
                                                  (size_t)n, &m);
        if (rc == 1 && d->on_media)
            d->on_media(d->ctx, d, &m);
    }
}

/* The driver's fds for poll(): its sockets, then its streams (writable
 * interest while connecting or holding bytes). Fills at most cap and
 * returns how many; ice_drv_dispatch takes the same array back. */
static inline size_t ice_drv_pollfds(const ice_driver *d, struct pollfd *pfd, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n_socks && n < cap; i++)
        pfd[n++] = (struct pollfd){.fd = d->socks[i].fd, .events = POLLIN};
    for (size_t i = 0; i < ICE_DRV_MAX_STREAMS && n < cap; i++) {
        const struct ice_drv_stream *st = &d->streams[i];
        if (st->fd >= 0)
            pfd[n++] = (struct pollfd){
                .fd = st->fd,
                .events = (short)(POLLIN | (st->connecting || st->out_len ? POLLOUT : 0))};
    }
    return n;
}

/* Handle what poll() said about ice_drv_pollfds' fds, then flush. */
static inline void ice_drv_dispatch(ice_driver *d, const struct pollfd *pfd, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!pfd[i].revents)
            continue;
        for (size_t k = 0; k < d->n_socks; k++)
            if (d->socks[k].fd == pfd[i].fd && (pfd[i].revents & (POLLIN | POLLERR)))
                ice_drv_read(d, &d->socks[k]);
        for (size_t k = 0; k < ICE_DRV_MAX_STREAMS; k++)
            if (d->streams[k].fd >= 0 && d->streams[k].fd == pfd[i].fd)
                ice_drv_stream_ready(d, &d->streams[k], pfd[i].revents);
    }
    ice_drv_flush(d);
}

/* One round: flush, then wait in ppoll() over the driver's sockets and
 * streams and the caller's extra fds until one is ready, the agent's next
 * timeout, deadline_us, or extra_timeout_us from now (SLUICE_NEVER: none),
 * whichever is first; handle the driver's fds; flush again. Extra fds keep
 * their revents for the caller (a GPollFD array from g_main_context_query
 * works as is: it has struct pollfd's layout; so do another driver's
 * ice_drv_pollfds). Returns the number of extra fds ready, or -1 when
 * ppoll fails. */
static inline int ice_drv_poll(ice_driver *d, uint64_t deadline_us, struct pollfd *extra,
                               size_t n_extra, uint64_t extra_timeout_us)
{
    struct pollfd pfd[ICE_DRV_MAX_POLL];
    size_t n, own, i;
    ice_drv_flush(d);
    n = own = ice_drv_pollfds(d, pfd, ICE_DRV_MAX_POLL);
    for (i = 0; i < n_extra && n < ICE_DRV_MAX_POLL; i++, n++) {
        pfd[n] = extra[i];
        pfd[n].revents = 0;
    }
    uint64_t now = ice_drv_now_us();
    uint64_t until = sluice_ice_agent_next_timeout(d->ag);
    if (deadline_us < until)
        until = deadline_us;
    if (extra_timeout_us != SLUICE_NEVER && now + extra_timeout_us < until)
        until = now + extra_timeout_us;
    uint64_t wait = until > now ? until - now : 0;
    struct timespec ts = {.tv_sec = (time_t)(wait / 1000000u),
                          .tv_nsec = (long)(wait % 1000000u) * 1000};
    int rc = ppoll(pfd, (nfds_t)n, &ts, NULL);
    if (rc < 0 && errno != EINTR) {
        snprintf(d->last_error, sizeof d->last_error, "ppoll: %s", strerror(errno));
        return -1;
    }
    int ready = 0;
    for (i = own; i < n; i++) {
        extra[i - own].revents = rc > 0 ? pfd[i].revents : 0;
        ready += extra[i - own].revents != 0;
    }
    if (rc <= 0)
        for (i = 0; i < own; i++)
            pfd[i].revents = 0;
    ice_drv_dispatch(d, pfd, own);
    return ready;
}

/* Run rounds until done(ctx) or deadline_us. Returns done(ctx). */
static inline bool ice_drv_run_until(ice_driver *d, uint64_t deadline_us, bool (*done)(void *),
                                     void *ctx)
{
    while (!done(ctx)) {
        if (ice_drv_now_us() >= deadline_us || ice_drv_poll(d, deadline_us, NULL, 0, SLUICE_NEVER) < 0)
            return done(ctx);
    }
    return true;
}

#endif
