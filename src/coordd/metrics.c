/* SPDX-License-Identifier: MIT */
/* sluice-coord metrics: a tiny HTTP/1.0 endpoint in the main loop — GET
 * /metrics (Prometheus text from the core's stats and the daemon's
 * counters) and GET /healthz. Bounded: a few connections, one request of
 * at most 2 KiB each, 5 s to finish, closed after the response. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coordd/coordd.h"

#define HTTP_MAX_CONNS 16
#define HTTP_REQ_MAX 2048
#define HTTP_TIMEOUT_US (5 * 1000000ull)
#define BODY_MAX 16384

struct coordd_http {
    struct coordd_handle h;
    int fd;
    bool dead;
    uint64_t deadline_us;
    struct coordd_http *next, *prev;
    size_t got;
    char req[HTTP_REQ_MAX + 1];
    char *out;
    size_t out_off, out_len;
};

int coordd_http_start(struct coordd *d)
{
    if (coordd_listen(d, &d->http_listener, &d->o->metrics, H_HTTP_LISTEN) < 0)
        return -1;
    d->http_on = true;
    return 0;
}

static void http_close(struct coordd *d, struct coordd_http *h)
{
    if (h->dead)
        return;
    h->dead = true;
    close(h->fd);
    free(h->out);
    h->out = NULL;
    if (h->prev)
        h->prev->next = h->next;
    else
        d->http = h->next;
    if (h->next)
        h->next->prev = h->prev;
    h->next = d->http_graveyard;
    d->http_graveyard = h;
    d->n_http--;
}

void coordd_http_reap(struct coordd *d)
{
    while (d->http_graveyard) {
        struct coordd_http *h = d->http_graveyard;
        d->http_graveyard = h->next;
        free(h);
    }
}

void coordd_http_stop(struct coordd *d)
{
    while (d->http)
        http_close(d, d->http);
    coordd_http_reap(d);
    if (d->http_listener.fd >= 0)
        close(d->http_listener.fd);
    d->http_listener.fd = -1;
    d->http_on = false;
}

/* ------------------------------------------------------------------------ */
/* Rendering */

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < o->cap - o->len)
        o->len += (size_t)n;
}

static void metric(struct out *o, const char *name, const char *type, const char *help, uint64_t v)
{
    put(o, "# HELP sluice_coord_%s %s\n# TYPE sluice_coord_%s %s\nsluice_coord_%s %llu\n", name,
        help, name, type, name, (unsigned long long)v);
}

/* A counter with a direction label: in and out. */
static void metric2(struct out *o, const char *name, const char *help, uint64_t in, uint64_t out)
{
    put(o,
        "# HELP sluice_coord_%s %s\n# TYPE sluice_coord_%s counter\n"
        "sluice_coord_%s{direction=\"in\"} %llu\nsluice_coord_%s{direction=\"out\"} %llu\n",
        name, help, name, name, (unsigned long long)in, name, (unsigned long long)out);
}

#define G(name, help, v) metric(&o, name, "gauge", help, v)
#define C(name, help, v) metric(&o, name, "counter", help, v)

static size_t render(struct coordd *d, char *body, size_t cap)
{
    sluice_coord_server_stats s;
    const struct coordd_counters *k = &d->cnt;
    struct out o = {.p = body, .cap = cap};

    sluice_coord_server_get_stats(d->core, &s);
    G("clients", "Named (authenticated) clients connected now.", s.clients);
    G("connections", "Connections the core holds now (handshakes included).", s.connections);
    G("sockets", "Client sockets open now (closing ones included).", d->n_conns);
    G("max_connections", "The --max-connections limit.", d->o->max_connections);
    C("connections_total", "Connections accepted by the core.", s.connections_total);
    C("refused_total", "Connections refused with an ERROR before WELCOME.", s.refused);
    C("protocol_errors_total", "Connections ended for PROTOCOL, FLOW_CONTROL or TOO_BIG.",
      s.protocol_errors);
    C("timeouts_total", "Hello and idle timeouts.", s.timeouts);
    G("streams", "Streams open now (each side counted).", s.streams);
    C("streams_total", "Streams opened.", s.streams_total);
    C("streams_refused_total", "Stream opens refused.", s.streams_refused);
    G("held_opens", "Opens waiting for their peer to connect.", s.held_opens);
    C("held_open_timeouts_total", "Held opens that timed out.", s.held_open_timeouts);
    G("channels", "Broadcast channels now.", s.channels);
    metric2(&o, "messages_total", "Messages from clients (in) and queued to clients (out).",
            s.messages_in, s.messages_out);
    metric2(&o, "message_bytes_total", "Message payload bytes, in and out.", s.bytes_in,
            s.bytes_out);
    metric2(&o, "tls_bytes_total", "TCP bytes (TLS records), in and out.", s.tls_bytes_in,
            s.tls_bytes_out);
    C("broadcast_dropped_total", "Broadcast deliveries dropped for slow members (sent as LAG).",
      s.broadcast_dropped);
    C("events_dropped_total", "Core events dropped (queue full).", s.events_dropped);
    C("alloc_failures_total", "Allocations that failed in the core.", s.alloc_failures);
    C("accept_failures_total", "accept() or set-up failures (descriptors, memory).",
      k->accept_failures);
    C("accept_refused_total", "Connections closed at once: every slot taken.", k->accept_refused);
    C("write_errors_total", "Connections dropped because a write failed.", k->write_errors);
    C("read_errors_total", "Connections dropped because a read failed.", k->read_errors);
    C("output_blocked_total", "Times a socket was full and the connection's output paused.",
      k->output_paused);
    G("output_blocked", "Connections whose output waits for their socket now.", d->n_paused);
    C("linger_timeouts_total", "Closed connections that never sent their FIN in time.",
      k->linger_timeouts);
    C("who_requests_total", "Answers of the built-in \"sluice/clients\" service.", k->who_requests);
    C("service_refused_total", "COORD streams refused (no such service).", k->streams_refused);
    C("http_requests_total", "Requests to this endpoint.", k->http_requests);
    G("stopping", "1 while shutting down.", d->stopping ? 1 : 0);
    return o.len;
}

/* ------------------------------------------------------------------------ */
/* Connections */

static void respond(struct coordd *d, struct coordd_http *h)
{
    const char *status = "404 Not Found", *ctype = "text/plain; charset=utf-8";
    char *body = malloc(BODY_MAX);
    size_t blen = 0;

    d->cnt.http_requests++;
    if (!body) {
        http_close(d, h);
        return;
    }
    if (!strncmp(h->req, "GET /metrics ", 13) || !strncmp(h->req, "GET /metrics?", 13)) {
        status = "200 OK";
        ctype = "text/plain; version=0.0.4; charset=utf-8";
        blen = render(d, body, BODY_MAX);
    } else if (!strncmp(h->req, "GET /healthz ", 13)) {
        status = d->stopping ? "503 Service Unavailable" : "200 OK";
        blen = (size_t)snprintf(body, BODY_MAX, "%s\n", d->stopping ? "stopping" : "ok");
    } else {
        blen = (size_t)snprintf(body, BODY_MAX, "not found\n");
    }
    h->out = malloc(256 + blen);
    if (!h->out) {
        free(body);
        http_close(d, h);
        return;
    }
    int n = snprintf(h->out, 256,
                     "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, ctype, blen);
    memcpy(h->out + n, body, blen);
    free(body);
    h->out_len = (size_t)n + blen;
    h->out_off = 0;
    coordd_epoll_set(d, EPOLL_CTL_MOD, h->fd, EPOLLOUT, &h->h);
}

void coordd_http_accept(struct coordd *d)
{
    for (int i = 0; i < HTTP_MAX_CONNS; i++) {
        int fd = accept4(d->http_listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                d->cnt.accept_failures++;
            return;
        }
        struct coordd_http *h = d->n_http < HTTP_MAX_CONNS ? calloc(1, sizeof *h) : NULL;
        if (!h) {
            close(fd);
            continue;
        }
        h->h.kind = H_HTTP;
        h->fd = fd;
        h->deadline_us = d->now_us + HTTP_TIMEOUT_US;
        if (coordd_epoll_set(d, EPOLL_CTL_ADD, fd, EPOLLIN, &h->h) < 0) {
            close(fd);
            free(h);
            continue;
        }
        h->next = d->http;
        if (d->http)
            d->http->prev = h;
        d->http = h;
        d->n_http++;
    }
}

void coordd_http_event(struct coordd *d, struct coordd_http *h, uint32_t events)
{
    if (h->dead)
        return;
    if (!h->out) {
        ssize_t n = recv(h->fd, h->req + h->got, HTTP_REQ_MAX - h->got, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            http_close(d, h);
            return;
        }
        h->got += (size_t)n;
        h->req[h->got] = '\0';
        /* The request line is all we look at; answer once the head ends
         * (or the buffer is full). */
        if (strstr(h->req, "\r\n\r\n") || strstr(h->req, "\n\n") || h->got == HTTP_REQ_MAX)
            respond(d, h);
        return;
    }
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        return;
    while (h->out_off < h->out_len) {
        ssize_t w = send(h->fd, h->out + h->out_off, h->out_len - h->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            h->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        break;
    }
    http_close(d, h);
}

uint64_t coordd_http_timeout(struct coordd *d)
{
    uint64_t next = SLUICE_NEVER;
    struct coordd_http *h = d->http, *nx;

    for (; h; h = nx) {
        nx = h->next;
        if (d->now_us >= h->deadline_us)
            http_close(d, h);
        else if (h->deadline_us < next)
            next = h->deadline_us;
    }
    return next;
}
