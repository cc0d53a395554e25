/* SPDX-License-Identifier: MIT */
/* Relay benchmark pieces: a TURN load generator (N allocations over UDP,
 * each with a channel to an in-process UDP echo peer, 120-byte ChannelData
 * pumped with sendmmsg/recvmmsg) that reports the server's CPU time per
 * relayed packet from /proc/PID/stat; and a plain recvmmsg/sendmmsg UDP
 * forwarder, the syscall floor a user-space relay can reach. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sluice/sluice.h"

#define BATCH 64
#define PAYLOAD_MAX 1400
#define MAX_ALLOCATIONS 20000
#define SETUP_LIMIT_US (30 * 1000000ull)

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_relay: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* utime + stime of a process in clock ticks (proc(5) fields 14, 15). */
static bool proc_cpu_ticks(long pid, uint64_t *ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may contain spaces */
    if (!p)
        return false;
    unsigned long long ut = 0, st = 0;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return false;
    *ticks = ut + st;
    return true;
}

/* Resident memory of a process in KiB (VmRSS from /proc/PID/status). */
static long proc_rss_kib(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static int udp_socket(const struct sockaddr_in *bind_to)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int sz = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    if (bind_to && bind(fd, (const struct sockaddr *)bind_to, sizeof *bind_to) < 0)
        die("bind");
    return fd;
}

static struct sockaddr_in loopback(uint16_t port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* ------------------------------------------------------------------------ */
/* The plain forwarder: listen socket L; one socket per client towards the
 * fixed peer, created on the client's first datagram; everything batched. */

struct fwd_client {
    struct sockaddr_in addr;
    int fd;
};

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int run_forwarder(uint16_t port, uint16_t peer_port, size_t max_clients)
{
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    struct sockaddr_in la = loopback(port), peer = loopback(peer_port);
    int lfd = udp_socket(&la);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct fwd_client *cl = calloc(max_clients, sizeof *cl);
    size_t n_cl = 0;
    static size_t by_port[65536];
    for (size_t i = 0; i < 65536; i++)
        by_port[i] = SIZE_MAX;
    static uint8_t bufs[BATCH][PAYLOAD_MAX + 64];
    struct mmsghdr msgs[BATCH], out[BATCH];
    struct iovec iov[BATCH], oiov[BATCH];
    struct sockaddr_in from[BATCH];
    printf("forwarder ready on 127.0.0.1:%u\n", port);
    fflush(stdout);
    while (!stop_flag) {
        struct epoll_event evs[64];
        int ne = epoll_wait(ep, evs, 64, 200);
        for (int e = 0; e < ne; e++) {
            uint64_t id = evs[e].data.u64;
            int fd = id == UINT64_MAX ? lfd : cl[id].fd;
            for (int round = 0; round < 16; round++) {
                for (int i = 0; i < BATCH; i++) {
                    iov[i].iov_base = bufs[i];
                    iov[i].iov_len = sizeof bufs[i];
                    memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
                    msgs[i].msg_hdr.msg_iov = &iov[i];
                    msgs[i].msg_hdr.msg_iovlen = 1;
                    msgs[i].msg_hdr.msg_name = &from[i];
                    msgs[i].msg_hdr.msg_namelen = sizeof from[i];
                }
                int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
                if (n <= 0)
                    break;
                if (id == UINT64_MAX) {
                    /* client -> peer: each client's datagrams leave from its
                     * own socket; consecutive ones are sent as one batch */
                    int i = 0;
                    while (i < n) {
                        /* O(1): clients are on loopback, told apart by port */
                        size_t c = by_port[ntohs(from[i].sin_port)];
                        if (c == SIZE_MAX || cl[c].addr.sin_addr.s_addr != from[i].sin_addr.s_addr) {
                            c = n_cl;
                            if (n_cl == max_clients) {
                                i++;
                                continue;
                            }
                            cl[c].addr = from[i];
                            by_port[ntohs(from[i].sin_port)] = c;
                            cl[c].fd = udp_socket(NULL);
                            if (connect(cl[c].fd, (struct sockaddr *)&peer, sizeof peer) < 0)
                                die("connect");
                            struct epoll_event ce = {.events = EPOLLIN, .data.u64 = c};
                            epoll_ctl(ep, EPOLL_CTL_ADD, cl[c].fd, &ce);
                            n_cl++;
                        }
                        int k = 0;
                        while (i + k < n && from[i + k].sin_port == cl[c].addr.sin_port &&
                               from[i + k].sin_addr.s_addr == cl[c].addr.sin_addr.s_addr) {
                            oiov[k].iov_base = bufs[i + k];
                            oiov[k].iov_len = msgs[i + k].msg_len;
                            memset(&out[k].msg_hdr, 0, sizeof out[k].msg_hdr);
                            out[k].msg_hdr.msg_iov = &oiov[k];
                            out[k].msg_hdr.msg_iovlen = 1;
                            k++;
                        }
                        sendmmsg(cl[c].fd, out, (unsigned)k, MSG_DONTWAIT);
                        i += k;
                    }
                } else {
                    /* peer -> client: one batch out of the listen socket */
                    for (int i = 0; i < n; i++) {
                        oiov[i].iov_base = bufs[i];
                        oiov[i].iov_len = msgs[i].msg_len;
                        memset(&out[i].msg_hdr, 0, sizeof out[i].msg_hdr);
                        out[i].msg_hdr.msg_iov = &oiov[i];
                        out[i].msg_hdr.msg_iovlen = 1;
                        out[i].msg_hdr.msg_name = &cl[id].addr;
                        out[i].msg_hdr.msg_namelen = sizeof cl[id].addr;
                    }
                    sendmmsg(lfd, out, (unsigned)n, MSG_DONTWAIT);
                }
            }
        }
    }
    for (size_t c = 0; c < n_cl; c++)
        close(cl[c].fd);
    free(cl);
    close(ep);
    close(lfd);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The echo peer: a thread bouncing every datagram back, batched. */

struct echo {
    int fd;
    volatile bool stop;
    uint64_t packets;
};

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    static uint8_t bufs[BATCH][PAYLOAD_MAX + 64];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in from[BATCH];
    while (!e->stop) {
        struct pollfd p = {.fd = e->fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = sizeof bufs[i];
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &from[i];
            msgs[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        int n = recvmmsg(e->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            continue;
        for (int i = 0; i < n; i++)
            iov[i].iov_len = msgs[i].msg_len;
        sendmmsg(e->fd, msgs, (unsigned)n, MSG_DONTWAIT);
        e->packets += (uint64_t)n;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The load generator */

struct flow {
    int fd;
    sluice_turn_client *turn;
    uint16_t channel;
    bool ready, failed;
};

struct opts {
    const char *server; /* "turn" target HOST:PORT, or the forwarder's */
    bool raw;           /* forwarder: plain payload, no TURN */
    size_t allocations;
    size_t size;
    double seconds;
    unsigned burst;     /* datagrams per flow per round */
    long pid;           /* server process to measure */
    unsigned peer_port; /* the echo peer's port (0: any) */
    const char *user, *password;
    const char *label;
};

static void flush_turn(struct flow *f, uint64_t now)
{
    uint8_t buf[2048];
    sluice_transmit tx;
    int n;
    while ((n = sluice_turn_client_poll_transmit(f->turn, now, buf, sizeof buf, &tx)) > 0)
        send(f->fd, buf, (size_t)n, MSG_DONTWAIT);
}

/* Allocate and bind a channel on every flow, all at once. */
static size_t setup_turn(struct flow *fl, size_t n, int ep, const struct opts *o,
                         const sluice_addr *server, const sluice_addr *peer)
{
    uint64_t start = now_us();
    for (size_t i = 0; i < n; i++) {
        sluice_turn_client_config cfg;
        sluice_turn_client_config_init(&cfg);
        cfg.server = *server;
        cfg.username = o->user;
        cfg.password = o->password;
        cfg.max_permissions = 1;
        cfg.max_channels = 1;
        cfg.recv_queue_bytes = 70 * 1024;
        fl[i].turn = sluice_turn_client_new(&cfg, NULL);
        if (!fl[i].turn || sluice_turn_client_allocate(fl[i].turn, now_us()) < 0) {
            fprintf(stderr, "bench_relay: cannot create TURN client %zu\n", i);
            exit(2);
        }
        flush_turn(&fl[i], now_us());
    }
    size_t ready = 0, failed = 0;
    while (ready + failed < n && now_us() - start < SETUP_LIMIT_US) {
        uint8_t buf[2048];
        bool any = false;
        uint64_t now = now_us();
        for (size_t i = 0; i < n; i++) {
            struct flow *f = &fl[i];
            if (f->ready || f->failed)
                continue;
            ssize_t r;
            while ((r = recv(f->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
                sluice_turn_client_handle_datagram(f->turn, now, server, buf, (size_t)r);
                any = true;
            }
            if (sluice_turn_client_next_timeout(f->turn) <= now)
                sluice_turn_client_handle_timeout(f->turn, now);
            sluice_turn_event ev;
            while (sluice_turn_client_poll_event(f->turn, &ev)) {
                if (ev.type == SLUICE_TURN_EVENT_ALLOCATED) {
                    int ch = sluice_turn_client_bind_channel(f->turn, now, peer);
                    if (ch > 0)
                        f->channel = (uint16_t)ch;
                } else if (ev.type == SLUICE_TURN_EVENT_CHANNEL_BOUND) {
                    f->ready = true;
                    ready++;
                } else if (ev.type == SLUICE_TURN_EVENT_ALLOCATE_FAILED ||
                           ev.type == SLUICE_TURN_EVENT_CHANNEL_FAILED) {
                    if (!failed)
                        fprintf(stderr, "bench_relay: flow %zu: %d %s\n", i, ev.error_code,
                                ev.text);
                    f->failed = true;
                    failed++;
                }
            }
            flush_turn(f, now);
        }
        if (!any) {
            /* wait for an answer on any flow (or 2 ms for retransmissions) */
            struct epoll_event evs[16];
            epoll_wait(ep, evs, 16, 2);
        }
    }
    return ready;
}

static int run_load(const struct opts *o)
{
    sluice_addr server;
    if (sluice_addr_parse(&server, o->server, 3478) < 0) {
        fprintf(stderr, "bench_relay: bad server %s\n", o->server);
        return 1;
    }
    struct sockaddr_storage ss;
    sluice_addr_to_sockaddr(&server, &ss, sizeof ss);

    /* the echo peer */
    struct sockaddr_in pa = loopback((uint16_t)o->peer_port);
    struct echo echo = {.fd = udp_socket(&pa)};
    socklen_t pl = sizeof pa;
    getsockname(echo.fd, (struct sockaddr *)&pa, &pl);
    sluice_addr peer;
    sluice_addr_from_sockaddr(&peer, &pa, pl);
    pthread_t th;
    if (pthread_create(&th, NULL, echo_main, &echo) != 0)
        die("pthread_create");

    size_t n = o->allocations;
    struct flow *fl = calloc(n, sizeof *fl);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (size_t i = 0; i < n; i++) {
        fl[i].fd = udp_socket(NULL);
        if (connect(fl[i].fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)) < 0)
            die("connect");
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fl[i].fd, &ev);
    }
    uint64_t t_setup = now_us();
    size_t ready = n;
    if (!o->raw) {
        ready = setup_turn(fl, n, ep, o, &server, &peer);
        if (ready < n) {
            fprintf(stderr, "bench_relay: only %zu of %zu allocations ready\n", ready, n);
            return 3;
        }
    }
    double setup_s = (double)(now_us() - t_setup) / 1e6;
    long rss_kib = o->pid ? proc_rss_kib(o->pid) : -1;

    /* the pump */
    static uint8_t tx[BATCH][PAYLOAD_MAX + 8];
    static uint8_t rx[BATCH][PAYLOAD_MAX + 64];
    size_t hdr = o->raw ? 0 : 4;
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    unsigned burst = o->burst > BATCH ? BATCH : o->burst;
    uint64_t sent = 0, received = 0;
    uint64_t ticks0 = 0, ticks1 = 0;
    if (o->pid && !proc_cpu_ticks(o->pid, &ticks0)) {
        fprintf(stderr, "bench_relay: cannot read /proc/%ld/stat\n", o->pid);
        return 1;
    }
    uint64_t t0 = now_us(), deadline = t0 + (uint64_t)(o->seconds * 1e6);
    size_t inflight_limit = n * burst * 2;
    uint64_t written_off = 0, last_rx = now_us();
    while (now_us() < deadline) {
        /* keep at most ~2 bursts per flow in flight; what has not come back
         * 50 ms after the last echo is written off as lost */
        if (sent - received - written_off >= inflight_limit && now_us() - last_rx > 50000) {
            written_off = sent - received;
            last_rx = now_us();
        }
        if (sent - received - written_off < inflight_limit) {
            for (size_t i = 0; i < n; i++) {
                for (unsigned k = 0; k < burst; k++) {
                    if (hdr)
                        sluice_turn_channel_header(tx[k], fl[i].channel, (uint16_t)o->size);
                    iov[k].iov_base = tx[k];
                    iov[k].iov_len = hdr + o->size;
                    memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
                    msgs[k].msg_hdr.msg_iov = &iov[k];
                    msgs[k].msg_hdr.msg_iovlen = 1;
                }
                int s = sendmmsg(fl[i].fd, msgs, burst, MSG_DONTWAIT);
                if (s > 0)
                    sent += (uint64_t)s;
            }
        }
        struct epoll_event evs[256];
        int ne = epoll_wait(ep, evs, 256, 5);
        for (int e = 0; e < ne; e++) {
            int fd = fl[evs[e].data.u64].fd;
            for (;;) {
                for (int k = 0; k < BATCH; k++) {
                    iov[k].iov_base = rx[k];
                    iov[k].iov_len = sizeof rx[k];
                    memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
                    msgs[k].msg_hdr.msg_iov = &iov[k];
                    msgs[k].msg_hdr.msg_iovlen = 1;
                }
                int r = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
                if (r <= 0)
                    break;
                for (int k = 0; k < r; k++)
                    if (msgs[k].msg_len == hdr + o->size)
                        received++;
                last_rx = now_us();
            }
        }
    }
    /* let the last echoes land (bounded) */
    uint64_t drain_end = now_us() + 200000;
    while (now_us() < drain_end) {
        struct epoll_event evs[256];
        int ne = epoll_wait(ep, evs, 256, 20);
        if (ne <= 0)
            break;
        for (int e = 0; e < ne; e++) {
            uint8_t b[PAYLOAD_MAX + 64];
            while (recv(fl[evs[e].data.u64].fd, b, sizeof b, MSG_DONTWAIT) > 0)
                received++;
        }
    }
    double secs = (double)(now_us() - t0) / 1e6;
    if (o->pid)
        proc_cpu_ticks(o->pid, &ticks1);
    echo.stop = true;
    pthread_join(th, NULL);

    /* Each echoed datagram crossed the relay twice (to the peer, back). */
    uint64_t relayed = received * 2;
    double cpu_s = (double)(ticks1 - ticks0) / (double)sysconf(_SC_CLK_TCK);
    double us_per = relayed ? cpu_s * 1e6 / (double)relayed : 0;
    printf("%-14s allocations %zu  setup %.2fs  sent %" PRIu64 "  echoed %" PRIu64
           " (%.1f%% lost)  %.0f relayed pkt/s  server cpu %.2fs  %.3f us/pkt  rss %ld KiB\n",
           o->label, n, setup_s, sent, received,
           sent ? 100.0 * (double)(sent - received) / (double)sent : 0.0, (double)relayed / secs,
           cpu_s, us_per, rss_kib);
    printf("RESULT %s us_per_pkt=%.3f pps=%.0f rss_kib=%ld lost_pct=%.2f\n", o->label, us_per,
           (double)relayed / secs, rss_kib,
           sent ? 100.0 * (double)(sent - received) / (double)sent : 0.0);

    if (!o->raw) {
        /* delete the allocations (best effort, bounded) */
        for (size_t i = 0; i < n; i++) {
            sluice_turn_client_close(fl[i].turn, now_us());
            flush_turn(&fl[i], now_us());
        }
    }
    for (size_t i = 0; i < n; i++) {
        sluice_turn_client_free(fl[i].turn);
        close(fl[i].fd);
    }
    free(fl);
    close(ep);
    close(echo.fd);
    return received ? 0 : 4;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_relay --forwarder PORT PEER_PORT\n"
            "       bench_relay [--raw] --server IP:PORT [--pid PID] [--peer-port P]\n"
            "                   [--allocations N]\n"
            "                   [--seconds S] [--size BYTES] [--burst K] [--user U]\n"
            "                   [--password P] [--label NAME]\n");
}

int main(int argc, char **argv)
{
    struct opts o = {.allocations = 100, .size = 120, .seconds = 5, .burst = 8,
                     .user = "bench", .password = "bench", .label = "relay"};
    if (argc >= 4 && strcmp(argv[1], "--forwarder") == 0)
        return run_forwarder((uint16_t)atoi(argv[2]), (uint16_t)atoi(argv[3]), MAX_ALLOCATIONS);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--raw") == 0) {
            o.raw = true;
            continue;
        }
        if (!v) {
            usage();
            return 1;
        }
        i++;
        if (strcmp(a, "--server") == 0)
            o.server = v;
        else if (strcmp(a, "--peer-port") == 0)
            o.peer_port = (unsigned)atoi(v);
        else if (strcmp(a, "--pid") == 0)
            o.pid = atol(v);
        else if (strcmp(a, "--allocations") == 0)
            o.allocations = (size_t)atol(v);
        else if (strcmp(a, "--seconds") == 0)
            o.seconds = atof(v);
        else if (strcmp(a, "--size") == 0)
            o.size = (size_t)atol(v);
        else if (strcmp(a, "--burst") == 0)
            o.burst = (unsigned)atoi(v);
        else if (strcmp(a, "--user") == 0)
            o.user = v;
        else if (strcmp(a, "--password") == 0)
            o.password = v;
        else if (strcmp(a, "--label") == 0)
            o.label = v;
        else {
            usage();
            return 1;
        }
    }
    if (!o.server || o.allocations == 0 || o.allocations > MAX_ALLOCATIONS || o.size == 0 ||
        o.size > PAYLOAD_MAX || o.seconds <= 0 || o.seconds > 600 || o.burst == 0) {
        usage();
        return 1;
    }
    return run_load(&o);
}
