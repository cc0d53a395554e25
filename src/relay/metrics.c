/* SPDX-License-Identifier: MIT */
/* sluice-relay metrics: a small HTTP/1.0 endpoint on its own thread that
 * serves the Prometheus text format (GET /metrics, summed over the workers'
 * published stats), GET /healthz and POST /drain. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "relay/relay.h"

struct relay_metrics {
    struct relay_ctx *ctx;
    int fd, wake_fd;
    pthread_t thread;
    char body[16384];
    char req[4096];
};

void relay_stats_sum(struct relay_ctx *ctx, sluice_turn_server_stats *core,
                     struct relay_counters *daemon)
{
    memset(core, 0, sizeof *core);
    memset(daemon, 0, sizeof *daemon);
    for (unsigned i = 0; i < ctx->n_workers; i++) {
        struct relay_stats_slot *s = &ctx->slots[i];
        pthread_mutex_lock(&s->lock);
        /* Both structs are all uint64_t counters: sum them field by field. */
        const uint64_t *a = (const uint64_t *)(const void *)&s->core;
        uint64_t *sum = (uint64_t *)(void *)core;
        for (size_t k = 0; k < sizeof *core / sizeof(uint64_t); k++)
            sum[k] += a[k];
        a = (const uint64_t *)(const void *)&s->daemon;
        sum = (uint64_t *)(void *)daemon;
        for (size_t k = 0; k < sizeof *daemon / sizeof(uint64_t); k++)
            sum[k] += a[k];
        pthread_mutex_unlock(&s->lock);
    }
}

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *name, const char *type, const char *help,
                const char *labels, uint64_t v, bool header)
{
    int n;
    if (header) {
        n = snprintf(o->p + o->len, o->cap - o->len, "# HELP %s %s\n# TYPE %s %s\n", name, help,
                     name, type);
        if (n > 0 && (size_t)n < o->cap - o->len)
            o->len += (size_t)n;
    }
    n = snprintf(o->p + o->len, o->cap - o->len, "%s%s%s%s %llu\n", name, labels ? "{" : "",
                 labels ? labels : "", labels ? "}" : "", (unsigned long long)v);
    if (n > 0 && (size_t)n < o->cap - o->len)
        o->len += (size_t)n;
}

#define G(name, help, v) put(&o, "sluice_relay_" name, "gauge", help, NULL, v, true)
#define C(name, help, v) put(&o, "sluice_relay_" name, "counter", help, NULL, v, true)

static size_t render(struct relay_metrics *m)
{
    sluice_turn_server_stats s;
    struct relay_counters d;
    struct out o = {.p = m->body, .cap = sizeof m->body};

    relay_stats_sum(m->ctx, &s, &d);
    G("workers", "Worker threads.", m->ctx->n_workers);
    G("draining", "1 while in drain mode.", atomic_load(&m->ctx->draining) ? 1 : 0);
    G("allocations", "Current allocations.", s.allocations);
    C("allocations_total", "Allocations created.", s.allocations_total);
    C("allocations_expired_total", "Allocations that expired.", s.allocations_expired);
    G("permissions", "Current permissions.", s.permissions);
    G("channels", "Current channel bindings.", s.channels);
    C("requests_total", "STUN requests received.", s.requests);
    C("error_responses_total", "STUN error responses sent.", s.error_responses);
    C("auth_failures_total", "Requests with wrong credentials (401 after a credential, 441).",
      s.auth_failures);
    C("challenges_total", "401/438 challenges sent.", s.challenges);
    C("challenges_rate_limited_total", "401/438 challenges not sent (rate limit).",
      s.challenges_rate_limited);
    const char *pk = "sluice_relay_relayed_packets_total";
    const char *by = "sluice_relay_relayed_bytes_total";
    put(&o, pk, "counter", "Packets relayed.", "direction=\"to_peer\"", s.to_peer_packets, true);
    put(&o, pk, "counter", "", "direction=\"to_client\"", s.to_client_packets, false);
    put(&o, by, "counter", "Payload bytes relayed.", "direction=\"to_peer\"", s.to_peer_bytes,
        true);
    put(&o, by, "counter", "", "direction=\"to_client\"", s.to_client_bytes, false);
    const char *dr = "sluice_relay_dropped_total";
    put(&o, dr, "counter", "Packets dropped, by reason.", "reason=\"no_allocation\"",
        s.dropped_no_allocation, true);
    put(&o, dr, "counter", "", "reason=\"no_permission\"", s.dropped_no_permission, false);
    put(&o, dr, "counter", "", "reason=\"policy\"", s.dropped_policy, false);
    put(&o, dr, "counter", "", "reason=\"bandwidth\"", s.dropped_bandwidth, false);
    put(&o, dr, "counter", "", "reason=\"malformed\"", s.dropped_malformed, false);
    put(&o, dr, "counter", "", "reason=\"transmit_queue_full\"", s.dropped_transmit_full, false);
    put(&o, dr, "counter", "", "reason=\"oversize\"", d.dropped_oversize, false);
    put(&o, dr, "counter", "", "reason=\"send_failed\"", d.dropped_send, false);
    put(&o, dr, "counter", "", "reason=\"connection_output_full\"", d.dropped_conn_full, false);
    C("quota_refused_total", "Allocate requests refused with 486 (user quota).",
      s.quota_refused);
    C("quota_table_full_total", "Of those, refused because the quota table had no room.",
      sluice_turn_quota_refused_full(m->ctx->quota));
    C("relay_bind_failures_total", "Relay sockets that could not be bound.", s.relay_bind_failures);
    G("connections", "Current TCP/TLS client connections.", d.connections);
    C("connections_total", "TCP/TLS client connections accepted.", d.connections_total);
    C("connections_refused_total", "Connections closed at once (table full).",
      d.connections_refused);
    C("tls_handshake_failures_total", "TLS handshakes that failed.", d.tls_handshake_failures);
    C("drain_redirected_total", "Allocate requests answered 300 (--alternate-server) in drain mode.",
      s.drain_redirected);
    C("drain_refused_total", "Allocate requests answered 508 in drain mode.", s.drain_refused);
    return o.len;
}

static void respond(int fd, const char *status, const char *ctype, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, ctype, len);
    (void)!send(fd, head, (size_t)n, MSG_NOSIGNAL);
    if (len)
        (void)!send(fd, body, len, MSG_NOSIGNAL);
}

static void serve(struct relay_metrics *m, int fd)
{
    size_t got = 0;
    struct timeval tv = {.tv_sec = 1};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    while (got < sizeof m->req - 1) {
        ssize_t n = recv(fd, m->req + got, sizeof m->req - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        m->req[got] = '\0';
        if (strstr(m->req, "\r\n\r\n") || strstr(m->req, "\n\n"))
            break;
    }
    m->req[got] = '\0';
    const char *text = "text/plain; charset=utf-8";
    if (!strncmp(m->req, "GET /metrics ", 13) || !strncmp(m->req, "GET /metrics?", 13)) {
        size_t len = render(m);
        respond(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", m->body, len);
    } else if (!strncmp(m->req, "GET /healthz ", 13)) {
        if (atomic_load(&m->ctx->draining))
            respond(fd, "503 Service Unavailable", text, "draining\n", 9);
        else
            respond(fd, "200 OK", text, "ok\n", 3);
    } else if (!strncmp(m->req, "POST /drain ", 12)) {
        if (!atomic_exchange(&m->ctx->draining, true))
            relay_log(SLUICE_LOG_INFO, "drain mode: refusing new allocations", "via=http");
        respond(fd, "200 OK", text, "draining\n", 9);
    } else {
        respond(fd, "404 Not Found", text, "not found\n", 10);
    }
}

static void *run(void *arg)
{
    struct relay_metrics *m = arg;
    struct pollfd p[2] = {{.fd = m->fd, .events = POLLIN}, {.fd = m->wake_fd, .events = POLLIN}};

    while (!atomic_load(&m->ctx->stop)) {
        int n = poll(p, 2, 1000);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && (p[0].revents & POLLIN)) {
            int c = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC);
            if (c >= 0) {
                serve(m, c);
                close(c);
            }
        }
    }
    return NULL;
}

struct relay_metrics *relay_metrics_start(struct relay_ctx *ctx, int *err)
{
    struct relay_metrics *m = calloc(1, sizeof *m);
    struct sockaddr_storage ss;
    char as[SLUICE_ADDR_STRLEN];
    int one = 1;

    if (!m)
        return NULL;
    m->ctx = ctx;
    m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int sl = sluice_addr_to_sockaddr(&ctx->o->metrics, &ss, sizeof ss);
    m->fd = sl < 0 ? -1 : socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (m->fd < 0 || m->wake_fd < 0 ||
        setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(m->fd, (struct sockaddr *)&ss, (socklen_t)sl) < 0 || listen(m->fd, 16) < 0) {
        *err = errno;
        relay_log(SLUICE_LOG_ERROR, "cannot open the metrics listener", "addr=%s error=\"%s\"",
                  relay_addr_str(&ctx->o->metrics, as), strerror(errno));
        goto fail;
    }
    if (pthread_create(&m->thread, NULL, run, m) != 0)
        goto fail;
    relay_log(SLUICE_LOG_INFO, "listening", "proto=http addr=%s",
              relay_addr_str(&ctx->o->metrics, as));
    return m;
fail:
    if (m->fd >= 0)
        close(m->fd);
    if (m->wake_fd >= 0)
        close(m->wake_fd);
    free(m);
    return NULL;
}

void relay_metrics_stop(struct relay_metrics *m)
{
    uint64_t one = 1;
    (void)!write(m->wake_fd, &one, sizeof one);
    pthread_join(m->thread, NULL);
    close(m->fd);
    close(m->wake_fd);
    free(m);
}
