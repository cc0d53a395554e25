/* SPDX-License-Identifier: MIT */
/* sluice-coord: start-up (options, certificate, the core, listeners), the
 * one-thread epoll loop that drives the sans-IO coordinator core, signals
 * (SIGTERM/SIGINT: SHUTDOWN to every client, flush, exit 0). */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "coordd/coordd.h"

int coordd_log_level = SLUICE_LOG_INFO;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void coordd_log(int level, const char *msg, const char *fmt, ...)
{
    char line[2048];
    size_t n;
    va_list ap;

    if (level > coordd_log_level)
        return;
    n = (size_t)snprintf(line, sizeof line, "level=%s msg=\"%s\"", level_names[level & 3], msg);
    if (fmt && n < sizeof line - 1) {
        line[n++] = ' ';
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - n, fmt, ap);
        va_end(ap);
    }
    fprintf(stderr, "%s\n", line);
}

const char *coordd_quote(const char *v, char *buf, size_t cap)
{
    size_t j = 0;
    buf[j++] = '"';
    for (size_t i = 0; v[i] && j + 3 < cap; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch == '"' || ch == '\\')
            buf[j++] = '\\';
        buf[j++] = ch < 0x20 || ch == 0x7F ? '?' : (char)ch;
    }
    buf[j++] = '"';
    buf[j] = '\0';
    return buf;
}

/* The core logs what the daemon logs again as structured events (client
 * connected, connection closed with its reason, TLS failures included):
 * its info lines and per-connection TLS warnings go to debug. */
static void core_log_hook(void *ctx, sluice_log_level level, const char *module, const char *line)
{
    char esc[600];
    (void)ctx;
    int l = level >= SLUICE_LOG_INFO || (level == SLUICE_LOG_WARNING && !strcmp(module, "tls"))
                ? SLUICE_LOG_DEBUG
                : (int)level;
    if (l > coordd_log_level)
        return;
    coordd_quote(line, esc, sizeof esc);
    /* strip the quotes: msg="..." adds its own */
    esc[strlen(esc) - 1] = '\0';
    coordd_log(l, esc + 1, "module=%s", module);
}

const char *coordd_addr_str(const sluice_addr *a, char buf[SLUICE_ADDR_STRLEN])
{
    if (sluice_addr_format(a, true, buf, SLUICE_ADDR_STRLEN) < 0)
        snprintf(buf, SLUICE_ADDR_STRLEN, "?");
    return buf;
}

uint64_t coordd_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int coordd_epoll_set(struct coordd *d, int op, int fd, uint32_t events, void *ptr)
{
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    return epoll_ctl(d->epfd, op, fd, &ev);
}

/* ------------------------------------------------------------------------ */
/* Start-up */

static size_t core_slots(uint64_t max)
{
    /* What the core accepts: max, and 1/64th more (at least 4) to be told
     * SERVER_FULL after the handshake. */
    return (size_t)(max + (max / 64 > 4 ? max / 64 : 4));
}

static void raise_fd_limit(const struct coordd_options *o)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)core_slots(o->max_connections) + COORDD_MAX_LISTEN + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need)
        coordd_log(SLUICE_LOG_WARNING, "the descriptor limit is below --max-connections",
                   "limit=%llu need=%llu", (unsigned long long)rl.rlim_cur,
                   (unsigned long long)need);
}

/* The coordinator's certificate: the configured one, or the generated one
 * kept in --state-dir. Fills cert/key paths and d->fp. */
static int setup_cert(struct coordd *d, char *cert, char *key, size_t cap)
{
    const struct coordd_options *o = d->o;
    char why[512], q1[600], q2[600];

    if (o->tls_cert) {
        snprintf(cert, cap, "%s", o->tls_cert);
        snprintf(key, cap, "%s", o->tls_key);
        if (coordd_cert_fingerprint(cert, d->fp) < 0) {
            coordd_log(SLUICE_LOG_ERROR, "cannot read the TLS certificate", "cert=%s",
                       coordd_quote(cert, q1, sizeof q1));
            return -1;
        }
    } else {
        int r = coordd_cert_ensure(o->state_dir, o->server_names, o->n_server_names, cert, key, cap,
                                   d->fp, why, sizeof why);
        if (r < 0) {
            coordd_log(SLUICE_LOG_ERROR, "cannot set up the self-signed certificate",
                       "state_dir=%s error=%s", coordd_quote(o->state_dir, q1, sizeof q1),
                       coordd_quote(why, q2, sizeof q2));
            return -1;
        }
        if (r > 0) {
            char names[1024] = "";
            size_t n = 0;
            for (size_t i = 0; i < o->n_server_names && n < sizeof names; i++)
                n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? "," : "",
                                      o->server_names[i]);
            if (r == 1)
                coordd_log(SLUICE_LOG_INFO, "generated a self-signed certificate",
                           "cert=%s names=%s", coordd_quote(cert, q1, sizeof q1),
                           coordd_quote(names, q2, sizeof q2));
            else
                coordd_log(SLUICE_LOG_WARNING,
                           "replaced the self-signed certificate (unreadable, or not valid for "
                           "every --server-name): clients must pin the new fingerprint",
                           "cert=%s names=%s", coordd_quote(cert, q1, sizeof q1),
                           coordd_quote(names, q2, sizeof q2));
        }
    }
    sluice_coord_fingerprint_format(d->fp, d->fp_text, sizeof d->fp_text);
    return 0;
}

static int setup_core(struct coordd *d, const char *cert, const char *key)
{
    const struct coordd_options *o = d->o;
    sluice_coord_server_config cfg;
    const char *uris[SLUICE_COORD_TURN_URIS_MAX];
    char q[600];
    int err = 0;

    sluice_coord_server_config_init(&cfg);
    cfg.cert_file = cert;
    cfg.key_file = key;
    cfg.client_ca_file = o->client_ca;
    cfg.unix_time_s = (uint64_t)time(NULL);
    cfg.max_connections = (size_t)o->max_connections;
    cfg.max_streams_per_client = (size_t)o->max_streams_per_client;
    cfg.max_channels = (size_t)o->max_channels;
    cfg.max_members = (size_t)o->max_members;
    cfg.max_message = (uint32_t)o->max_message;
    cfg.window = (uint32_t)o->window;
    /* A member queue holds at least one largest message with its tag. */
    uint64_t mq = SLUICE_COORD_MESSAGE_COST(o->max_message) + 1 + SLUICE_COORD_NAME_MAX;
    if (cfg.member_queue_bytes < mq)
        cfg.member_queue_bytes = (size_t)mq;
    cfg.idle_timeout_us = o->idle_timeout * 1000000u;
    for (size_t i = 0; i < o->n_turn_uris; i++)
        uris[i] = o->turn_uris[i];
    cfg.turn_secret = o->turn_secret;
    cfg.turn_uris = uris;
    cfg.n_turn_uris = o->n_turn_uris;
    cfg.turn_ttl_s = (uint32_t)o->turn_ttl;
    d->core = sluice_coord_server_new(&cfg, &err);
    if (!d->core) {
        coordd_log(SLUICE_LOG_ERROR, "cannot start the coordinator core",
                   "error=%s cert=%s client_ca=%s", coordd_quote(sluice_strerror(err), q, 200),
                   cert, o->client_ca ? o->client_ca : "none");
        return -1;
    }
    return 0;
}

int coordd_listen(struct coordd *d, struct coordd_listener *l, const sluice_addr *addr,
                  enum coordd_kind kind)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char as[SLUICE_ADDR_STRLEN];
    int one = 1;
    int sl = sluice_addr_to_sockaddr(addr, &ss, sizeof ss);

    l->h.kind = kind;
    l->fd = sl < 0 ? -1 : socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0)
        goto fail;
    if (setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        goto fail;
    /* :: and 0.0.0.0 side by side, and one address family per listener. */
    if (ss.ss_family == AF_INET6 &&
        setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
        goto fail;
    if (bind(l->fd, (struct sockaddr *)&ss, (socklen_t)sl) < 0 || listen(l->fd, SOMAXCONN) < 0)
        goto fail;
    len = sizeof ss;
    if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0 ||
        sluice_addr_from_sockaddr(&l->addr, &ss, len) < 0)
        goto fail;
    if (coordd_epoll_set(d, EPOLL_CTL_ADD, l->fd, EPOLLIN, &l->h) < 0)
        goto fail;
    return 0;
fail:
    coordd_log(SLUICE_LOG_ERROR, "cannot open a listener", "addr=%s error=\"%s\"",
               coordd_addr_str(addr, as), strerror(errno));
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    return -1;
}

static int setup_listeners(struct coordd *d)
{
    const struct coordd_options *o = d->o;
    uint16_t port = (uint16_t)o->port;

    for (size_t i = 0; i < o->n_listen; i++) {
        sluice_addr a = o->listen[i];
        a.port = port;
        if (coordd_listen(d, &d->listeners[i], &a, H_LISTEN) < 0)
            return -1;
        d->n_listeners++;
        /* --port 0: every listener on the port the first one got. */
        port = d->listeners[i].addr.port;
    }
    return 0;
}

static void close_listeners(struct coordd *d)
{
    for (size_t i = 0; i < d->n_listeners; i++)
        if (d->listeners[i].fd >= 0) {
            close(d->listeners[i].fd);
            d->listeners[i].fd = -1;
        }
}

void coordd_pause_listeners(struct coordd *d)
{
    if (d->listeners_paused)
        return;
    d->listeners_paused = true;
    d->listeners_resume_us = d->now_us + 100000;
    for (size_t i = 0; i < d->n_listeners; i++)
        if (d->listeners[i].fd >= 0)
            coordd_epoll_set(d, EPOLL_CTL_MOD, d->listeners[i].fd, 0, &d->listeners[i].h);
    coordd_log(SLUICE_LOG_WARNING, "accept failed: pausing the listeners for 100 ms",
               "error=\"%s\" connections=%zu", strerror(errno), d->n_conns);
}

static void resume_listeners(struct coordd *d)
{
    d->listeners_paused = false;
    for (size_t i = 0; i < d->n_listeners; i++)
        if (d->listeners[i].fd >= 0)
            coordd_epoll_set(d, EPOLL_CTL_MOD, d->listeners[i].fd, EPOLLIN, &d->listeners[i].h);
}

static void log_ready(struct coordd *d, const char *cert)
{
    const struct coordd_options *o = d->o;
    char listen[COORDD_MAX_LISTEN * SLUICE_ADDR_STRLEN] = "", as[SLUICE_ADDR_STRLEN];
    char metrics[SLUICE_ADDR_STRLEN] = "off", q[600];
    size_t n = 0;

    for (size_t i = 0; i < d->n_listeners; i++)
        n += (size_t)snprintf(listen + n, sizeof listen - n, "%s%s", i ? "," : "",
                              coordd_addr_str(&d->listeners[i].addr, as));
    if (d->http_on)
        coordd_addr_str(&d->http_listener.addr, metrics);
    coordd_log(SLUICE_LOG_INFO, "ready",
               "listen=%s fingerprint=%s cert=%s metrics=%s max_connections=%llu client_ca=%s "
               "turn=%s",
               listen, d->fp_text, coordd_quote(cert, q, sizeof q), metrics,
               (unsigned long long)o->max_connections, o->client_ca ? "on" : "off",
               o->turn_secret ? "on" : "off");
}

/* ------------------------------------------------------------------------ */
/* The loop */

static void start_stop(struct coordd *d, const char *why)
{
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(d->core, &st);
    coordd_log(SLUICE_LOG_INFO, "stopping", "signal=%s clients=%llu sockets=%zu", why,
               (unsigned long long)st.clients, d->n_conns);
    d->stopping = true;
    d->stop_deadline_us = d->now_us + COORDD_STOP_FLUSH_US;
    close_listeners(d);
    sluice_coord_server_shutdown(d->core, d->now_us, "the coordinator is shutting down");
}

static void on_signal(struct coordd *d)
{
    struct signalfd_siginfo si;

    while (read(d->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            coordd_log(SLUICE_LOG_INFO, "SIGHUP ignored: restart to reload the configuration",
                       NULL);
        } else if (!d->stopping) {
            start_stop(d, si.ssi_signo == SIGTERM ? "TERM" : "INT");
        } else {
            /* A second signal: stop flushing. */
            d->stop_deadline_us = d->now_us;
        }
    }
}

static void set_clock(struct coordd *d)
{
    d->now_us = coordd_now_us();
    sluice_coord_server_set_unix_time(d->core, (uint64_t)time(NULL));
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static int run(struct coordd *d)
{
    struct epoll_event evs[64];

    for (;;) {
        set_clock(d);
        uint64_t next = sluice_coord_server_next_timeout(d->core);
        next = min_u64(next, coordd_conns_timeout(d));
        next = min_u64(next, coordd_http_timeout(d));
        if (d->listeners_paused)
            next = min_u64(next, d->listeners_resume_us);
        if (d->stopping)
            next = min_u64(next, d->stop_deadline_us);
        int timeout_ms = -1;
        if (next != SLUICE_NEVER) {
            uint64_t ms = next <= d->now_us ? 0 : (next - d->now_us + 999) / 1000;
            timeout_ms = ms > INT_MAX ? INT_MAX : (int)ms;
        }
        int n = epoll_wait(d->epfd, evs, 64, timeout_ms);
        if (n < 0 && errno != EINTR) {
            coordd_log(SLUICE_LOG_ERROR, "epoll_wait failed", "error=\"%s\"", strerror(errno));
            return -1;
        }
        set_clock(d);
        for (int i = 0; i < n; i++) {
            struct coordd_handle *h = evs[i].data.ptr;
            switch (h->kind) {
            case H_LISTEN:
                coordd_accept(d, (struct coordd_listener *)h);
                break;
            case H_CONN:
                coordd_conn_event(d, (struct coordd_conn *)h, evs[i].events);
                break;
            case H_SIGNAL:
                on_signal(d);
                break;
            case H_HTTP_LISTEN:
                coordd_http_accept(d);
                break;
            case H_HTTP:
                coordd_http_event(d, (struct coordd_http *)h, evs[i].events);
                break;
            }
        }
        if (d->now_us >= sluice_coord_server_next_timeout(d->core))
            sluice_coord_server_handle_timeout(d->core, d->now_us);
        if (d->listeners_paused && d->now_us >= d->listeners_resume_us)
            resume_listeners(d);
        /* Events make output (answers, credit); output ends connections
         * (events). Both converge; the bound is a guard. */
        for (int k = 0; k < 64; k++) {
            size_t e = coordd_drain_events(d);
            size_t p = coordd_pump_output(d);
            if (!e && !p)
                break;
        }
        coordd_conns_reap(d);
        coordd_http_reap(d);
        if (d->stopping && (d->n_conns == 0 || d->now_us >= d->stop_deadline_us))
            return 0;
    }
}

int main(int argc, char **argv)
{
    struct coordd_options o;
    struct coordd d;
    char cert[4200], key[4200];
    sigset_t sigs;
    uint64_t total = 0;
    int rc = 1;

    int pr = coordd_options_parse(&o, argc, argv);
    if (pr != 0) {
        coordd_options_free(&o);
        return pr > 0 ? 0 : 2;
    }
    coordd_log_level = (int)o.log_level;
    sluice_set_log_hook(core_log_hook, NULL, (sluice_log_level)o.log_level);

    memset(&d, 0, sizeof d);
    d.o = &o;
    d.epfd = d.sigfd = -1;
    d.http_listener.fd = -1;
    for (size_t i = 0; i < COORDD_MAX_LISTEN; i++)
        d.listeners[i].fd = -1;

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(&o);

    d.epfd = epoll_create1(EPOLL_CLOEXEC);
    d.sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    d.sig_h.kind = H_SIGNAL;
    if (d.epfd < 0 || d.sigfd < 0 ||
        coordd_epoll_set(&d, EPOLL_CTL_ADD, d.sigfd, EPOLLIN, &d.sig_h) < 0) {
        coordd_log(SLUICE_LOG_ERROR, "epoll/signalfd failed", "error=\"%s\"", strerror(errno));
        goto out;
    }
    if (setup_cert(&d, cert, key, sizeof cert) < 0 || setup_core(&d, cert, key) < 0)
        goto out;
    if (coordd_conns_init(&d) < 0 || !(d.who_buf = malloc((size_t)o.max_message))) {
        coordd_log(SLUICE_LOG_ERROR, "out of memory", NULL);
        goto out;
    }
    if (setup_listeners(&d) < 0 || (o.metrics_on && coordd_http_start(&d) < 0))
        goto out;
    d.now_us = coordd_now_us();
    log_ready(&d, cert);

    if (run(&d) == 0)
        rc = 0;

out:
    close_listeners(&d);
    coordd_conns_close_all(&d);
    if (d.core) {
        sluice_coord_server_stats st;
        sluice_coord_server_get_stats(d.core, &st);
        total = st.connections_total;
    }
    coordd_http_stop(&d);
    sluice_coord_server_free(d.core);
    coordd_conns_free(&d);
    free(d.who_buf);
    if (d.sigfd >= 0)
        close(d.sigfd);
    if (d.epfd >= 0)
        close(d.epfd);
    if (rc == 0)
        coordd_log(SLUICE_LOG_INFO, "stopped", "connections_total=%llu", (unsigned long long)total);
    coordd_options_free(&o);
    return rc;
}
