/* SPDX-License-Identifier: MIT */
/* sluice-coord client sockets: accept, read into the core, write the
 * core's output (holding at most one chunk per connection while its socket
 * is full, with the core's output paused), and the end of a connection:
 * last bytes, half-close, wait for the client's FIN, close. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coordd/coordd.h"

#define EV_BASE (EPOLLIN | EPOLLRDHUP)

/* ------------------------------------------------------------------------ */
/* The id table */

static size_t bucket(const struct coordd *d, uint64_t id)
{
    return (size_t)((id ^ (id >> 29)) * 0x9E3779B97F4A7C15ull >> 17) & d->table_mask;
}

int coordd_conns_init(struct coordd *d)
{
    uint64_t max = d->o->max_connections;
    size_t slots = (size_t)(max + (max / 64 > 4 ? max / 64 : 4)), n = 16;

    while (n < slots)
        n <<= 1;
    d->table = calloc(n, sizeof *d->table);
    if (!d->table)
        return -1;
    d->table_mask = n - 1;
    return 0;
}

void coordd_conns_free(struct coordd *d)
{
    free(d->table);
    d->table = NULL;
}

struct coordd_conn *coordd_conn_find(const struct coordd *d, uint64_t id)
{
    for (struct coordd_conn *c = d->table[bucket(d, id)]; c; c = c->hnext)
        if (c->id == id)
            return c;
    return NULL;
}

static void table_remove(struct coordd *d, struct coordd_conn *c)
{
    for (struct coordd_conn **pp = &d->table[bucket(d, c->id)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            c->hnext = NULL;
            return;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Lifecycle */

static void set_events(struct coordd *d, struct coordd_conn *c, uint32_t mask)
{
    if (c->ev_mask == mask)
        return;
    c->ev_mask = mask;
    coordd_epoll_set(d, EPOLL_CTL_MOD, c->fd, mask, &c->h);
}

/* Close the socket; the struct is freed after this loop iteration (a later
 * epoll event of the same batch may still name it). */
static void conn_close(struct coordd *d, struct coordd_conn *c)
{
    if (c->dead)
        return;
    if (c->in_core) {
        table_remove(d, c);
        c->in_core = false;
    }
    close(c->fd);
    c->fd = -1;
    c->dead = true;
    free(c->pend);
    c->pend = NULL;
    if (c->pend_len)
        d->n_paused--;
    c->pend_len = c->pend_off = 0;
    if (c->prev)
        c->prev->next = c->next;
    else
        d->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->closing) {
        if (c->lprev)
            c->lprev->lnext = c->lnext;
        else
            d->lingering = c->lnext;
        if (c->lnext)
            c->lnext->lprev = c->lprev;
    }
    c->dnext = d->graveyard;
    d->graveyard = c;
    d->n_conns--;
}

/* The socket ended or failed: tell the core (its CONNECTION_CLOSED event
 * follows) and close. */
static void conn_gone(struct coordd *d, struct coordd_conn *c)
{
    if (c->in_core) {
        uint64_t id = c->id;
        table_remove(d, c);
        c->in_core = false;
        sluice_coord_server_connection_closed(d->core, d->now_us, id);
    }
    conn_close(d, c);
}

void coordd_conn_finished(struct coordd *d, uint64_t id)
{
    struct coordd_conn *c = coordd_conn_find(d, id);
    /* Finished without handing out last bytes (a linger or idle timeout
     * while its output was paused): nothing more will be written. */
    if (c)
        conn_close(d, c);
}

void coordd_conns_reap(struct coordd *d)
{
    while (d->graveyard) {
        struct coordd_conn *c = d->graveyard;
        d->graveyard = c->dnext;
        free(c);
    }
}

void coordd_conns_close_all(struct coordd *d)
{
    while (d->all)
        conn_close(d, d->all);
    coordd_conns_reap(d);
}

void coordd_accept(struct coordd *d, struct coordd_listener *l)
{
    char as[SLUICE_ADDR_STRLEN];

    /* Bounded per wake-up so one listener cannot starve the rest. */
    for (int i = 0; i < 64 && l->fd >= 0; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        sluice_addr remote;
        uint64_t id;
        int one = 1;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            d->cnt.accept_failures++;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                coordd_pause_listeners(d);
            return;
        }
        if (sluice_addr_from_sockaddr(&remote, &ss, sl) < 0)
            memset(&remote, 0, sizeof remote);
        int r = sluice_coord_server_accept(d->core, d->now_us, &remote, &id);
        if (r < 0) {
            /* FULL: even the slots that say SERVER_FULL are taken. */
            if (r == SLUICE_ERR_FULL)
                d->cnt.accept_refused++;
            else
                d->cnt.accept_failures++;
            coordd_log(SLUICE_LOG_DEBUG, "connection refused at once", "remote=%s error=\"%s\"",
                       coordd_addr_str(&remote, as), sluice_strerror(r));
            close(fd);
            continue;
        }
        struct coordd_conn *c = calloc(1, sizeof *c);
        if (!c) {
            d->cnt.accept_failures++;
            sluice_coord_server_connection_closed(d->core, d->now_us, id);
            close(fd);
            continue;
        }
        /* Control frames are small and latency matters more than packing. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->h.kind = H_CONN;
        c->fd = fd;
        c->id = id;
        c->in_core = true;
        c->remote = remote;
        c->ev_mask = EV_BASE;
        if (coordd_epoll_set(d, EPOLL_CTL_ADD, fd, EV_BASE, &c->h) < 0) {
            d->cnt.accept_failures++;
            sluice_coord_server_connection_closed(d->core, d->now_us, id);
            close(fd);
            free(c);
            continue;
        }
        size_t b = bucket(d, id);
        c->hnext = d->table[b];
        d->table[b] = c;
        c->next = d->all;
        if (d->all)
            d->all->prev = c;
        d->all = c;
        d->n_conns++;
        coordd_log(SLUICE_LOG_DEBUG, "accepted", "conn=%llu remote=%s", (unsigned long long)id,
                   coordd_addr_str(&remote, as));
    }
}

/* ------------------------------------------------------------------------ */
/* Output */

/* Everything of the last chunk is out: half-close and wait for the
 * client's FIN (closing now could reset the connection and destroy the
 * ERROR frame in the client's receive queue). */
static void shut_write(struct coordd_conn *c)
{
    if (!c->wr_shut) {
        (void)shutdown(c->fd, SHUT_WR);
        c->wr_shut = true;
    }
}

static void send_chunk(struct coordd *d, struct coordd_conn *c, const uint8_t *buf, size_t n)
{
    size_t off = 0;

    while (off < n) {
        ssize_t w = send(c->fd, buf + off, n - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->pend = malloc(n - off);
            if (!c->pend)
                break;
            memcpy(c->pend, buf + off, n - off);
            c->pend_off = 0;
            c->pend_len = n - off;
            d->n_paused++;
            d->cnt.output_paused++;
            if (c->in_core && !c->paused) {
                sluice_coord_server_pause_output(d->core, c->id, true);
                c->paused = true;
            }
            set_events(d, c, EV_BASE | EPOLLOUT);
            return;
        }
        break;
    }
    if (off < n) {
        d->cnt.write_errors++;
        conn_gone(d, c);
        return;
    }
    if (c->closing)
        shut_write(c);
}

static void flush_pending(struct coordd *d, struct coordd_conn *c)
{
    while (c->pend_off < c->pend_len) {
        ssize_t w = send(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->pend_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        d->cnt.write_errors++;
        conn_gone(d, c);
        return;
    }
    free(c->pend);
    c->pend = NULL;
    c->pend_off = c->pend_len = 0;
    d->n_paused--;
    set_events(d, c, EV_BASE);
    if (c->paused && c->in_core) {
        sluice_coord_server_pause_output(d->core, c->id, false);
        c->paused = false;
    }
    if (c->closing)
        shut_write(c);
}

size_t coordd_pump_output(struct coordd *d)
{
    size_t chunks = 0;
    sluice_coord_transmit meta;

    for (;;) {
        int n = sluice_coord_server_poll_transmit(d->core, d->now_us, d->io, sizeof d->io, &meta);
        if (n < 0 || (n == 0 && !meta.close))
            break;
        chunks++;
        struct coordd_conn *c = coordd_conn_find(d, meta.conn);
        if (!c)
            continue; /* its socket is gone already */
        if (meta.close) {
            /* The core is done with it (CONNECTION_CLOSED is queued): the
             * socket lives on here until written and ended. */
            table_remove(d, c);
            c->in_core = false;
            c->closing = true;
            c->linger_until_us = d->now_us + COORDD_LINGER_US;
            c->lprev = NULL;
            c->lnext = d->lingering;
            if (d->lingering)
                d->lingering->lprev = c;
            d->lingering = c;
        }
        if (c->pend_len) {
            /* Cannot happen: its output is paused until the pending bytes
             * are out. Keep the order of the stream: drop the connection. */
            d->cnt.write_errors++;
            conn_gone(d, c);
            continue;
        }
        send_chunk(d, c, d->io, (size_t)n);
    }
    return chunks;
}

/* ------------------------------------------------------------------------ */
/* Input */

void coordd_conn_event(struct coordd *d, struct coordd_conn *c, uint32_t events)
{
    if (c->dead)
        return;
    if ((events & EPOLLOUT) && c->pend_len) {
        flush_pending(d, c);
        if (c->dead)
            return;
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return;
    for (int i = 0; i < COORDD_READS_PER_WAKE; i++) {
        ssize_t n = read(c->fd, d->io, sizeof d->io);
        if (n > 0) {
            /* A finished connection's late bytes are read and dropped. */
            if (c->in_core)
                sluice_coord_server_handle_stream(d->core, d->now_us, c->id, d->io, (size_t)n);
            if ((size_t)n < sizeof d->io)
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0 && !c->closing)
            d->cnt.read_errors++;
        conn_gone(d, c); /* EOF or an error */
        return;
    }
}

uint64_t coordd_conns_timeout(struct coordd *d)
{
    uint64_t next = SLUICE_NEVER;
    struct coordd_conn *c = d->lingering, *nx;

    for (; c; c = nx) {
        nx = c->lnext;
        if (d->now_us >= c->linger_until_us) {
            d->cnt.linger_timeouts++;
            conn_close(d, c);
        } else if (c->linger_until_us < next) {
            next = c->linger_until_us;
        }
    }
    return next;
}
