/* SPDX-License-Identifier: MIT */
/* sluice-relay TCP and TLS client connections: a bounded table per worker,
 * RFC 8656 §12.5 framing of the byte stream, sluice_tls (server mode, memory
 * BIOs) for TLS, and a bounded output buffer per connection. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay/relay.h"
#include "turn/framing.h"

static uint64_t conn_id_of(const struct relay_worker *w, const struct relay_conn *c)
{
    return (uint64_t)c->gen << 32 | (uint64_t)(c - w->conns + 1);
}

static struct relay_conn *conn_by_id(struct relay_worker *w, uint64_t id)
{
    uint64_t idx = (id & 0xffffffffu);
    if (idx == 0 || idx > w->max_conns)
        return NULL;
    struct relay_conn *c = &w->conns[idx - 1];
    return c->used && c->gen == (uint32_t)(id >> 32) ? c : NULL;
}

static void mark_closing(struct relay_worker *w, struct relay_conn *c)
{
    if (!c->closing) {
        c->closing = true;
        w->n_closing++;
    }
}

int relay_conns_init(struct relay_worker *w)
{
    w->max_conns = (size_t)w->ctx->o->max_connections;
    w->conns = calloc(w->max_conns, sizeof *w->conns);
    if (!w->conns)
        return -1;
    w->free_conn = -1;
    for (size_t i = w->max_conns; i-- > 0;) {
        w->conns[i].fd = -1;
        w->conns[i].gen = 1;
        w->conns[i].next_free = w->free_conn;
        w->free_conn = (int)i;
    }
    return 0;
}

static void conn_release(struct relay_worker *w, struct relay_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    if (c->tls)
        sluice_tls_free(c->tls);
    free(c->in);
    free(c->out);
    uint32_t gen = c->gen + 1;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->gen = gen ? gen : 1;
    c->next_free = w->free_conn;
    w->free_conn = (int)(c - w->conns);
    w->cnt.connections--;
}

void relay_conns_free(struct relay_worker *w)
{
    if (!w->conns)
        return;
    for (size_t i = 0; i < w->max_conns; i++)
        if (w->conns[i].used)
            conn_release(w, &w->conns[i]);
    free(w->conns);
    w->conns = NULL;
}

/* Close a connection: the core deletes its allocation (RFC 8656 §3.1). */
static void conn_close(struct relay_worker *w, struct relay_conn *c)
{
    uint64_t id = conn_id_of(w, c);
    conn_release(w, c);
    (void)sluice_turn_server_connection_closed(w->core, w->now_us, id);
    relay_pump(w);
}

void relay_conn_reap(struct relay_worker *w)
{
    /* Closing is rare: scan only when a connection asked for it. */
    if (w->n_closing == 0)
        return;
    w->n_closing = 0;
    for (size_t i = 0; i < w->max_conns; i++) {
        struct relay_conn *c = &w->conns[i];
        if (c->used && c->closing)
            conn_close(w, c);
    }
}

static void set_want_out(struct relay_worker *w, struct relay_conn *c, bool on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
                             .data.u64 = EV_DATA(EV_CONN, (uint32_t)(c - w->conns))};
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = on;
}

/* Move TLS ciphertext into the output buffer and write what the socket
 * takes. */
static void conn_flush(struct relay_worker *w, struct relay_conn *c)
{
    for (;;) {
        if (c->tls && c->out_len < RELAY_CONN_OUT) {
            int n =
                sluice_tls_take_output(c->tls, c->out + c->out_len, RELAY_CONN_OUT - c->out_len);
            if (n > 0)
                c->out_len += (size_t)n;
        }
        if (c->out_off == c->out_len)
            break;
        ssize_t n =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            mark_closing(w, c);
            return;
        }
        c->out_off += (size_t)n;
        if (c->out_off == c->out_len)
            c->out_off = c->out_len = 0;
    }
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    /* Compact so the free space is at the end. */
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    bool pending = c->out_len > 0 || (c->tls && sluice_tls_pending_output(c->tls) > 0);
    set_want_out(w, c, pending);
}

/* A whole frame, or nothing: a partial frame would break the stream. */
void relay_conn_send(struct relay_worker *w, uint64_t conn_id, const uint8_t *data, size_t len)
{
    struct relay_conn *c = conn_by_id(w, conn_id);
    if (!c || c->closing) {
        w->cnt.dropped_send++;
        return;
    }
    if (c->tls) {
        if (sluice_tls_pending_output(c->tls) + c->out_len + len > 2 * RELAY_CONN_OUT ||
            sluice_tls_write(c->tls, data, len) < 0) {
            w->cnt.dropped_conn_full++;
            return;
        }
    } else {
        if (c->out_len + len > RELAY_CONN_OUT) {
            w->cnt.dropped_conn_full++;
            return;
        }
        memcpy(c->out + c->out_len, data, len);
        c->out_len += len;
    }
    conn_flush(w, c);
}

void relay_conn_accept(struct relay_worker *w, struct relay_listener *l)
{
    char as[SLUICE_ADDR_STRLEN];

    for (int i = 0; i < 16; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        /* TURN messages and ChannelData are small and latency-bound: no
         * Nagle delay (it held relayed data ~40 ms behind an ACK). */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (w->free_conn < 0) {
            close(fd);
            w->cnt.connections_refused++;
            continue;
        }
        struct relay_conn *c = &w->conns[w->free_conn];
        c->in = malloc(SLUICE_TURN_STREAM_FRAME_MAX);
        c->out = malloc(RELAY_CONN_OUT);
        if (!c->in || !c->out || sluice_addr_from_sockaddr(&c->client, &ss, sl) < 0) {
            free(c->in);
            free(c->out);
            c->in = c->out = NULL;
            close(fd);
            w->cnt.connections_refused++;
            continue;
        }
        if (l->transport == SLUICE_TRANSPORT_TLS) {
            /* the shared context: no file is read per connection */
            int err = 0;
            c->tls = sluice_tls_new_server(w->ctx->tls, &err);
            if (!c->tls) {
                relay_log(SLUICE_LOG_WARNING, "cannot create a TLS session", "error=\"%s\"",
                          sluice_strerror(err));
                free(c->in);
                free(c->out);
                c->in = c->out = NULL;
                close(fd);
                w->cnt.connections_refused++;
                continue;
            }
        }
        w->free_conn = c->next_free;
        c->used = true;
        c->fd = fd;
        c->local = l->local;
        if (l->wildcard) {
            /* the address the client connected to */
            struct sockaddr_storage ls;
            socklen_t ll = sizeof ls;
            if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0)
                (void)sluice_addr_from_sockaddr(&c->local, &ls, ll);
        }
        c->tls_mode = l->transport == SLUICE_TRANSPORT_TLS;
        w->cnt.connections++;
        w->cnt.connections_total++;
        struct epoll_event ev = {.events = EPOLLIN,
                                 .data.u64 = EV_DATA(EV_CONN, (uint32_t)(c - w->conns))};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            conn_release(w, c);
            continue;
        }
        if (relay_log_level >= SLUICE_LOG_DEBUG)
            relay_log(SLUICE_LOG_DEBUG, "connection", "worker=%u proto=%s client=%s", w->id,
                      c->tls_mode ? "tls" : "tcp", relay_addr_str(&c->client, as));
    }
}

/* Hand every whole frame in c->in to the core; keep the partial rest. */
static void process_frames(struct relay_worker *w, struct relay_conn *c)
{
    sluice_turn_server_flow flow = {
        .client = c->client,
        .local = c->local,
        .transport = c->tls_mode ? SLUICE_TRANSPORT_TLS : SLUICE_TRANSPORT_TCP,
        .conn_id = conn_id_of(w, c),
    };
    sluice_turn_server_transmit out;
    const uint8_t *payload;
    size_t plen, off = 0;

    relay_sync_drain(w);
    while (off < c->in_len && !c->closing) {
        int n = sluice_turn_frame_length(c->in + off, c->in_len - off);
        if (n < 0) {
            mark_closing(w, c);
            break;
        }
        if (n == 0 || (size_t)n > c->in_len - off)
            break;
        const uint8_t *frame = c->in + off;
        off += (size_t)n;
        if (sluice_turn_server_handle_client(w->core, w->now_us, &flow, frame, (size_t)n, &out,
                                             &payload, &plen) == 1)
            relay_send_to_peer(w, &out, payload, plen);
        relay_pump(w);
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
}

static void on_readable(struct relay_worker *w, struct relay_conn *c)
{
    for (int round = 0; round < 8 && !c->closing; round++) {
        ssize_t n;
        if (!c->tls) {
            n = recv(c->fd, c->in + c->in_len, SLUICE_TURN_STREAM_FRAME_MAX - c->in_len,
                     MSG_DONTWAIT);
        } else {
            n = recv(c->fd, w->stream_rx, sizeof w->stream_rx, MSG_DONTWAIT);
        }
        if (n == 0) {
            mark_closing(w, c);
            return;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                mark_closing(w, c);
            return;
        }
        if (!c->tls) {
            c->in_len += (size_t)n;
            process_frames(w, c);
            continue;
        }
        bool was_up = sluice_tls_established(c->tls);
        if (sluice_tls_feed(c->tls, w->stream_rx, (size_t)n) < 0) {
            if (!was_up)
                w->cnt.tls_handshake_failures++;
            if (relay_log_level >= SLUICE_LOG_DEBUG) {
                char as[SLUICE_ADDR_STRLEN];
                relay_log(SLUICE_LOG_DEBUG, "TLS failure", "client=%s reason=\"%s\"",
                          relay_addr_str(&c->client, as), sluice_tls_error_text(c->tls));
            }
            conn_flush(w, c); /* the alert */
            mark_closing(w, c);
            return;
        }
        for (;;) {
            int k = sluice_tls_read(c->tls, c->in + c->in_len,
                                    SLUICE_TURN_STREAM_FRAME_MAX - c->in_len);
            if (k > 0) {
                c->in_len += (size_t)k;
                process_frames(w, c);
                if (c->closing)
                    return;
                continue;
            }
            if (k < 0)
                mark_closing(w, c);
            break;
        }
        conn_flush(w, c);
    }
}

void relay_conn_event(struct relay_worker *w, uint32_t idx, uint32_t events)
{
    if (idx >= w->max_conns)
        return;
    struct relay_conn *c = &w->conns[idx];
    if (!c->used)
        return;
    if (events & EPOLLIN)
        on_readable(w, c);
    if (!c->closing && (events & EPOLLOUT))
        conn_flush(w, c);
    if (events & (EPOLLERR | EPOLLHUP))
        mark_closing(w, c);
}
