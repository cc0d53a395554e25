/* SPDX-License-Identifier: MIT */
/* sluice-relay worker: one epoll loop owning one TURN server core, its
 * SO_REUSEPORT listeners, its relay sockets and its share of the port range;
 * UDP in recvmmsg batches, out in sendmmsg batches, no heap per packet. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "relay/relay.h"
#include "sluice/stun.h"

#define TICK_US 1000000u

/* ------------------------------------------------------------------------ */
/* Sockets */

#define LISTENER_SOCKET_BUFFER (4 * 1024 * 1024)

static int open_socket(const sluice_addr *a, int type, bool reuseport)
{
    struct sockaddr_storage ss;
    int one = 1;
    int slen = sluice_addr_to_sockaddr(a, &ss, sizeof ss);
    if (slen < 0)
        return -EINVAL;
    int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (ss.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (type == SOCK_STREAM)
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (type == SOCK_DGRAM && reuseport) {
        /* A listener takes every client's bursts: the default 208 KiB
         * overflows at a few hundred datagrams. SO_RCVBUFFORCE passes
         * net.core.rmem_max when running as root (CAP_NET_ADMIN). */
        int sz = LISTENER_SOCKET_BUFFER;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0)
            (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)slen) < 0 ||
        (type == SOCK_STREAM && listen(fd, 512) < 0)) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int add_listener(struct relay_worker *w, const sluice_addr *ip, uint16_t port,
                        sluice_transport tr)
{
    struct relay_listener *l = &w->listeners[w->n_listeners];
    char as[SLUICE_ADDR_STRLEN];
    static const char *const names[] = {"udp", "tcp", "tls"};

    l->local = *ip;
    l->local.port = port;
    l->transport = tr;
    l->wildcard = (sluice_addr_classify(&l->local, NULL) & SLUICE_ADDR_UNSPECIFIED) != 0;
    l->fd = open_socket(&l->local, tr == SLUICE_TRANSPORT_UDP ? SOCK_DGRAM : SOCK_STREAM, true);
    if (l->fd >= 0 && l->wildcard && tr == SLUICE_TRANSPORT_UDP) {
        /* RFC 3542 §6.1 (IPv6), ip(7) (IPv4): each datagram's local address */
        int one = 1;
        int r = l->local.family == SLUICE_AF_INET
                    ? setsockopt(l->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one)
                    : setsockopt(l->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
        if (r < 0) {
            r = -errno;
            close(l->fd);
            l->fd = r;
        }
    }
    if (l->fd < 0) {
        relay_log(SLUICE_LOG_ERROR, "cannot open listener", "proto=%s addr=%s error=\"%s\"",
                  names[tr], relay_addr_str(&l->local, as), strerror(-l->fd));
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_DATA(EV_LISTEN, w->n_listeners)};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
        close(l->fd);
        return -1;
    }
    w->n_listeners++;
    if (w->id == 0)
        relay_log(SLUICE_LOG_INFO, "listening", "proto=%s addr=%s", names[tr],
                  relay_addr_str(&l->local, as));
    return 0;
}

/* The UDP listener a client reached at local: the one bound to it, else
 * the wildcard listener of its family and port. */
static struct relay_listener *udp_listener(struct relay_worker *w, const sluice_addr *local)
{
    struct relay_listener *any = NULL;
    for (size_t i = 0; i < w->n_listeners; i++) {
        struct relay_listener *l = &w->listeners[i];
        if (l->transport != SLUICE_TRANSPORT_UDP)
            continue;
        if (sluice_addr_equal(&l->local, local))
            return l;
        if (l->wildcard && l->local.family == local->family && l->local.port == local->port)
            any = l;
    }
    return any;
}

/* The local address a datagram on a wildcard listener was sent to. */
static bool get_pktinfo(struct msghdr *h, uint16_t port, sluice_addr *local)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            sluice_addr_set_ipv4(local, (const uint8_t *)&pi.ipi_addr, port);
            return true;
        }
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            sluice_addr_set_ipv6(local, pi.ipi6_addr.s6_addr, port);
            return true;
        }
    }
    return false;
}

/* Ask for src as the source address of a datagram sent on a wildcard
 * socket (IP_PKTINFO ipi_spec_dst, IPV6_PKTINFO ipi6_addr; interface 0:
 * the routing table picks it). */
static void put_pktinfo(uint8_t ctrl[RELAY_PKTINFO_SPACE], struct msghdr *h,
                        const sluice_addr *src)
{
    memset(ctrl, 0, RELAY_PKTINFO_SPACE);
    h->msg_control = ctrl;
    h->msg_controllen = RELAY_PKTINFO_SPACE;
    struct cmsghdr *c = CMSG_FIRSTHDR(h);
    if (src->family == SLUICE_AF_INET) {
        struct in_pktinfo pi;
        memset(&pi, 0, sizeof pi);
        memcpy(&pi.ipi_spec_dst, src->ip, 4);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof pi);
        memcpy(CMSG_DATA(c), &pi, sizeof pi);
        h->msg_controllen = CMSG_SPACE(sizeof pi);
    } else {
        struct in6_pktinfo pi;
        memset(&pi, 0, sizeof pi);
        memcpy(&pi.ipi6_addr, src->ip, 16);
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof pi);
        memcpy(CMSG_DATA(c), &pi, sizeof pi);
        h->msg_controllen = CMSG_SPACE(sizeof pi);
    }
}

static int *relay_slot(struct relay_worker *w, const sluice_addr *relay)
{
    if (relay->port < w->port_lo || relay->port > w->port_hi)
        return NULL;
    if (relay->family == SLUICE_AF_INET && w->relay_fd4)
        return &w->relay_fd4[relay->port - w->port_lo];
    if (relay->family == SLUICE_AF_INET6 && w->relay_fd6)
        return &w->relay_fd6[relay->port - w->port_lo];
    return NULL;
}

/* OPEN_RELAY: bind the family's relay address (not the announced external
 * one) at the port the core chose. */
static int open_relay(struct relay_worker *w, const sluice_addr *relay)
{
    int *slot = relay_slot(w, relay);
    if (!slot)
        return -1;
    sluice_addr b = relay->family == SLUICE_AF_INET ? w->ctx->bind4 : w->ctx->bind6;
    b.port = relay->port;
    if (*slot >= 0) {
        close(*slot);
        *slot = -1;
    }
    int fd = open_socket(&b, SOCK_DGRAM, false);
    if (fd < 0) {
        char as[SLUICE_ADDR_STRLEN];
        relay_log(SLUICE_LOG_WARNING, "cannot bind relay socket", "worker=%u addr=%s error=\"%s\"",
                  w->id, relay_addr_str(&b, as), strerror(-fd));
        return -1;
    }
    struct epoll_event ev = {
        .events = EPOLLIN,
        .data.u64 = EV_DATA(relay->family == SLUICE_AF_INET ? EV_RELAY4 : EV_RELAY6, relay->port)};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        return -1;
    }
    *slot = fd;
    return 0;
}

static void close_relay(struct relay_worker *w, const sluice_addr *relay)
{
    int *slot = relay_slot(w, relay);
    if (slot && *slot >= 0) {
        close(*slot); /* leaves the epoll set by itself */
        *slot = -1;
    }
}

/* ------------------------------------------------------------------------ */
/* Batches */

static void txq_flush(struct relay_worker *w, struct relay_txq *q)
{
    unsigned done = 0;
    while (done < q->n) {
        int n = sendmmsg(q->fd, q->msgs + done, q->n - done, MSG_DONTWAIT);
        if (n > 0) {
            done += (unsigned)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            w->cnt.dropped_send += q->n - done;
            break;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            /* An error tied to one datagram (ICMP unreachable reported on
             * the socket, bad destination): skip it. */
            w->cnt.dropped_send++;
            done++;
        }
    }
    q->n = 0;
}

/* src: the source address to ask for (wildcard sockets), else NULL. */
static void txq_set(struct relay_txq *q, unsigned i, const sluice_addr *dst, const uint8_t *data,
                    size_t len, const sluice_addr *src)
{
    int sl = sluice_addr_to_sockaddr(dst, &q->dst[i], sizeof q->dst[i]);
    q->iov[i].iov_base = (void *)data;
    q->iov[i].iov_len = len;
    memset(&q->msgs[i], 0, sizeof q->msgs[i]);
    q->msgs[i].msg_hdr.msg_name = &q->dst[i];
    q->msgs[i].msg_hdr.msg_namelen = sl > 0 ? (socklen_t)sl : 0;
    q->msgs[i].msg_hdr.msg_iov = &q->iov[i];
    q->msgs[i].msg_hdr.msg_iovlen = 1;
    if (src)
        put_pktinfo(q->ctrl[i], &q->msgs[i].msg_hdr, src);
}

/* Client data toward a peer: a view into the receive batch, no copy. */
static void to_peer_add(struct relay_worker *w, int fd, const sluice_addr *peer,
                        const uint8_t *data, size_t len)
{
    struct relay_txq *q = &w->to_peer;
    if (q->n > 0 && (q->fd != fd || q->n == RELAY_BATCH))
        txq_flush(w, q);
    q->fd = fd;
    txq_set(q, q->n++, peer, data, len, NULL);
}

/* Peer data toward a UDP client, already written in to_client_buf[q->n]. */
static void to_client_commit(struct relay_worker *w, const struct relay_listener *l,
                             const sluice_turn_server_flow *flow, size_t len)
{
    struct relay_txq *q = &w->to_client;
    if (q->n > 0 && q->fd != l->fd) {
        unsigned at = q->n;
        txq_flush(w, q);
        memmove(w->to_client_buf[0], w->to_client_buf[at], len);
    }
    q->fd = l->fd;
    txq_set(q, q->n, &flow->client, w->to_client_buf[q->n], len,
            l->wildcard ? &flow->local : NULL);
    if (++q->n == RELAY_BATCH)
        txq_flush(w, q);
}

/* pktinfo: room for each datagram's local address (wildcard listeners). */
static void rx_prepare(struct relay_worker *w, bool pktinfo)
{
    for (unsigned i = 0; i < RELAY_BATCH; i++) {
        w->rx_iov[i].iov_base = w->rx_buf[i];
        w->rx_iov[i].iov_len = RELAY_SLOT;
        memset(&w->rx_msgs[i], 0, sizeof w->rx_msgs[i]);
        w->rx_msgs[i].msg_hdr.msg_name = &w->rx_from[i];
        w->rx_msgs[i].msg_hdr.msg_namelen = sizeof w->rx_from[i];
        w->rx_msgs[i].msg_hdr.msg_iov = &w->rx_iov[i];
        w->rx_msgs[i].msg_hdr.msg_iovlen = 1;
        if (pktinfo) {
            w->rx_msgs[i].msg_hdr.msg_control = w->rx_ctrl[i];
            w->rx_msgs[i].msg_hdr.msg_controllen = sizeof w->rx_ctrl[i];
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Core glue */

static void send_to_client(struct relay_worker *w, const sluice_turn_server_flow *flow,
                           const uint8_t *data, size_t len)
{
    if (flow->transport != SLUICE_TRANSPORT_UDP) {
        relay_conn_send(w, flow->conn_id, data, len);
        return;
    }
    struct relay_listener *l = udp_listener(w, &flow->local);
    struct sockaddr_storage ss;
    uint8_t ctrl[RELAY_PKTINFO_SPACE];
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr h = {.msg_name = &ss, .msg_iov = &iov, .msg_iovlen = 1};
    int sl = sluice_addr_to_sockaddr(&flow->client, &ss, sizeof ss);
    if (!l || sl < 0) {
        w->cnt.dropped_send++;
        return;
    }
    h.msg_namelen = (socklen_t)sl;
    if (l->wildcard)
        put_pktinfo(ctrl, &h, &flow->local); /* answer from where the client sent */
    if (sendmsg(l->fd, &h, MSG_DONTWAIT) < 0)
        w->cnt.dropped_send++;
}

void relay_send_to_peer(struct relay_worker *w, const sluice_turn_server_transmit *t,
                        const uint8_t *data, size_t len)
{
    int *slot = relay_slot(w, &t->relay);
    struct sockaddr_storage ss;
    int sl = sluice_addr_to_sockaddr(&t->peer, &ss, sizeof ss);
    if (!slot || *slot < 0 || sl < 0 ||
        sendto(*slot, data, len, MSG_DONTWAIT, (struct sockaddr *)&ss, (socklen_t)sl) < 0)
        w->cnt.dropped_send++;
}

void relay_pump(struct relay_worker *w)
{
    sluice_turn_server_event ev;
    sluice_turn_server_transmit t;

    /* Events first: a relay socket must exist before the Allocate success
     * response that names it leaves. */
    while (sluice_turn_server_poll_event(w->core, &ev)) {
        if (ev.type == SLUICE_TURN_SERVER_EVENT_OPEN_RELAY) {
            if (open_relay(w, &ev.relay) < 0)
                (void)sluice_turn_server_relay_failed(w->core, w->now_us, &ev.relay);
        } else if (ev.type == SLUICE_TURN_SERVER_EVENT_CLOSE_RELAY) {
            close_relay(w, &ev.relay);
        }
    }
    for (;;) {
        int n =
            sluice_turn_server_poll_transmit(w->core, w->now_us, w->answer, sizeof w->answer, &t);
        if (n <= 0)
            break;
        if (t.direction == SLUICE_TURN_SERVER_TO_CLIENT)
            send_to_client(w, &t.flow, w->answer, (size_t)n);
        else
            relay_send_to_peer(w, &t, w->answer, (size_t)n);
    }
}

/* Drain mode lives in the core (sluice_turn_server_set_draining): new
 * Allocates get 300 to --alternate-server, or 508; existing allocations
 * refresh, bind channels and relay until they end. */
void relay_sync_drain(struct relay_worker *w)
{
    bool d = atomic_load_explicit(&w->ctx->draining, memory_order_relaxed);
    if (d != w->draining) {
        w->draining = d;
        sluice_turn_server_set_draining(w->core, d);
    }
}

static void on_udp_listener(struct relay_worker *w, struct relay_listener *l)
{
    sluice_turn_server_flow flow = {.local = l->local, .transport = SLUICE_TRANSPORT_UDP};
    sluice_turn_server_transmit out;
    const uint8_t *payload;
    size_t plen;

    relay_sync_drain(w);
    for (int round = 0; round < 8; round++) {
        rx_prepare(w, l->wildcard);
        int n = recvmmsg(l->fd, w->rx_msgs, RELAY_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        w->now_us = relay_now_us();
        for (int i = 0; i < n; i++) {
            struct msghdr *h = &w->rx_msgs[i].msg_hdr;
            if (h->msg_flags & MSG_TRUNC) {
                w->cnt.dropped_oversize++;
                continue;
            }
            if (sluice_addr_from_sockaddr(&flow.client, &w->rx_from[i], h->msg_namelen) < 0)
                continue;
            if (!l->wildcard || !get_pktinfo(h, l->local.port, &flow.local))
                flow.local = l->local;
            const uint8_t *data = w->rx_buf[i];
            size_t len = w->rx_msgs[i].msg_len;
            if (sluice_turn_server_handle_client(w->core, w->now_us, &flow, data, len, &out,
                                                 &payload, &plen) == 1) {
                int *slot = relay_slot(w, &out.relay);
                if (slot && *slot >= 0)
                    to_peer_add(w, *slot, &out.peer, payload, plen);
                else
                    w->cnt.dropped_send++;
            }
        }
        if (w->to_peer.n)
            txq_flush(w, &w->to_peer);
        relay_pump(w);
        if (n < RELAY_BATCH)
            break;
    }
}

static void on_relay(struct relay_worker *w, uint8_t family, uint16_t port)
{
    sluice_addr relay = family == SLUICE_AF_INET ? w->ctx->announce4 : w->ctx->announce6;
    relay.port = port;
    int *slot = relay_slot(w, &relay);
    if (!slot || *slot < 0)
        return;
    int fd = *slot;
    sluice_turn_server_transmit out;
    sluice_addr peer;

    for (int round = 0; round < 8; round++) {
        rx_prepare(w, false);
        int n = recvmmsg(fd, w->rx_msgs, RELAY_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        w->now_us = relay_now_us();
        for (int i = 0; i < n; i++) {
            struct msghdr *h = &w->rx_msgs[i].msg_hdr;
            if (h->msg_flags & MSG_TRUNC) {
                w->cnt.dropped_oversize++;
                continue;
            }
            if (sluice_addr_from_sockaddr(&peer, &w->rx_from[i], h->msg_namelen) < 0)
                continue;
            uint8_t *buf = w->to_client_buf[w->to_client.n];
            int r = sluice_turn_server_handle_peer(w->core, w->now_us, &relay, &peer, w->rx_buf[i],
                                                   w->rx_msgs[i].msg_len, buf, RELAY_TX_SLOT, &out);
            if (r <= 0)
                continue;
            if (out.flow.transport == SLUICE_TRANSPORT_UDP) {
                const struct relay_listener *l = udp_listener(w, &out.flow.local);
                if (!l) {
                    w->cnt.dropped_send++;
                    continue;
                }
                to_client_commit(w, l, &out.flow, (size_t)r);
            } else {
                relay_conn_send(w, out.flow.conn_id, buf, (size_t)r);
            }
        }
        if (w->to_client.n)
            txq_flush(w, &w->to_client);
        relay_conn_reap(w);
        if (n < RELAY_BATCH)
            break;
    }
}

/* ------------------------------------------------------------------------ */
/* Life cycle */

static void publish_stats(struct relay_worker *w)
{
    struct relay_stats_slot *s = &w->ctx->slots[w->id];
    sluice_turn_server_stats st;
    sluice_turn_server_get_stats(w->core, &st);
    pthread_mutex_lock(&s->lock);
    s->core = st;
    s->daemon = w->cnt;
    pthread_mutex_unlock(&s->lock);
}

int relay_worker_init(struct relay_worker *w, struct relay_ctx *ctx, unsigned id)
{
    const struct relay_options *o = ctx->o;
    sluice_turn_server_config cfg;
    int err = 0;

    w->id = id;
    w->ctx = ctx;
    w->epfd = w->wake_fd = -1;
    w->free_conn = -1;
    unsigned span = (unsigned)(o->max_port - o->min_port) + 1;
    unsigned per = span / ctx->n_workers;
    w->port_lo = (uint16_t)(o->min_port + id * per);
    w->port_hi = id + 1 == ctx->n_workers ? o->max_port : (uint16_t)(w->port_lo + per - 1);
    size_t nports = (size_t)(w->port_hi - w->port_lo) + 1;

    if (ctx->bind4.family) {
        if (!(w->relay_fd4 = malloc(nports * sizeof(int))))
            return -1;
        for (size_t i = 0; i < nports; i++)
            w->relay_fd4[i] = -1;
    }
    if (ctx->bind6.family) {
        if (!(w->relay_fd6 = malloc(nports * sizeof(int))))
            return -1;
        for (size_t i = 0; i < nports; i++)
            w->relay_fd6[i] = -1;
    }

    sluice_turn_server_config_init(&cfg);
    cfg.realm = o->realm;
    cfg.software = o->software && *o->software ? o->software : NULL;
    cfg.relay_ip4 = ctx->announce4;
    cfg.relay_ip6 = ctx->announce6;
    cfg.port_min = w->port_lo;
    cfg.port_max = w->port_hi;
    cfg.users = ctx->users;
    cfg.n_users = ctx->n_users;
    cfg.rest_secrets = (const char *const *)o->secrets;
    cfg.n_rest_secrets = o->n_secrets;
    cfg.unix_time_s = (uint64_t)time(NULL);
    memcpy(cfg.nonce_key, ctx->nonce_key, sizeof cfg.nonce_key);
    cfg.max_lifetime_s = (uint32_t)(o->max_lifetime > 3600 ? 3600 : o->max_lifetime);
    if (cfg.max_lifetime_s == 0)
        cfg.max_lifetime_s = 1;
    cfg.default_lifetime_s = cfg.max_lifetime_s < 600 ? cfg.max_lifetime_s : 600;
    size_t per_alloc = (size_t)((o->max_allocations + ctx->n_workers - 1) / ctx->n_workers);
    cfg.max_allocations = per_alloc;
    /* One count for the whole relay (0: no per-user limit beyond the
     * worker's share of --max-allocations). */
    cfg.max_allocations_per_user = (size_t)o->user_quota;
    cfg.shared_quota = ctx->quota;
    cfg.alternate_server4 = o->alternate[0];
    cfg.alternate_server6 = o->alternate[1];
    cfg.alternate_tls_port = o->alternate_tls_port;
    cfg.alternate_domain = o->alternate_domain;
    cfg.max_pending_transmits = 256;
    cfg.bandwidth_bytes_per_s = o->bandwidth;
    cfg.challenges_per_s = (uint32_t)o->challenge_rate;
    cfg.challenge_burst = (uint32_t)o->challenge_burst;
    cfg.allow = o->allow;
    cfg.n_allow = o->n_allow;
    cfg.deny = o->deny;
    cfg.n_deny = o->n_deny;
    w->core = sluice_turn_server_new(&cfg, &err);
    if (!w->core) {
        relay_log(SLUICE_LOG_ERROR, "cannot create the TURN server core", "worker=%u error=\"%s\"",
                  id, sluice_strerror(err));
        return -1;
    }

    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->epfd < 0 || w->wake_fd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_DATA(EV_WAKE, 0)};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &ev) < 0)
        return -1;
    if (relay_conns_init(w) < 0)
        return -1;
    for (size_t i = 0; i < o->n_listen; i++) {
        if (add_listener(w, &o->listen[i], o->port, SLUICE_TRANSPORT_UDP) < 0 ||
            add_listener(w, &o->listen[i], o->port, SLUICE_TRANSPORT_TCP) < 0)
            return -1;
        if (o->tls_cert && add_listener(w, &o->listen[i], o->tls_port, SLUICE_TRANSPORT_TLS) < 0)
            return -1;
    }
    publish_stats(w);
    return 0;
}

void relay_worker_wake(struct relay_worker *w)
{
    uint64_t one = 1;
    if (w->wake_fd >= 0)
        (void)!write(w->wake_fd, &one, sizeof one);
}

void *relay_worker_run(void *arg)
{
    struct relay_worker *w = arg;
    struct epoll_event evs[64];
    uint64_t next_tick = relay_now_us() + TICK_US;

    while (!atomic_load(&w->ctx->stop)) {
        uint64_t now = relay_now_us();
        uint64_t deadline = sluice_turn_server_next_timeout(w->core);
        if (deadline > next_tick)
            deadline = next_tick;
        int timeout_ms = deadline <= now ? 0 : (int)((deadline - now + 999) / 1000);
        int n = epoll_wait(w->epfd, evs, 64, timeout_ms);
        if (n < 0 && errno != EINTR) {
            relay_log(SLUICE_LOG_ERROR, "epoll_wait failed", "worker=%u error=\"%s\"", w->id,
                      strerror(errno));
            break;
        }
        w->now_us = relay_now_us();
        for (int i = 0; i < n; i++) {
            uint64_t d = evs[i].data.u64;
            switch (EV_KIND(d)) {
            case EV_WAKE: {
                uint64_t v;
                (void)!read(w->wake_fd, &v, sizeof v);
                break;
            }
            case EV_LISTEN: {
                struct relay_listener *l = &w->listeners[EV_VALUE(d)];
                if (l->transport == SLUICE_TRANSPORT_UDP)
                    on_udp_listener(w, l);
                else
                    relay_conn_accept(w, l);
                break;
            }
            case EV_RELAY4:
                on_relay(w, SLUICE_AF_INET, (uint16_t)EV_VALUE(d));
                break;
            case EV_RELAY6:
                on_relay(w, SLUICE_AF_INET6, (uint16_t)EV_VALUE(d));
                break;
            case EV_CONN:
                relay_conn_event(w, EV_VALUE(d), evs[i].events);
                break;
            }
        }
        relay_conn_reap(w);
        w->now_us = relay_now_us();
        if (w->now_us >= sluice_turn_server_next_timeout(w->core)) {
            sluice_turn_server_handle_timeout(w->core, w->now_us);
            relay_pump(w);
            relay_conn_reap(w);
        }
        if (w->now_us >= next_tick) {
            sluice_turn_server_set_unix_time(w->core, (uint64_t)time(NULL));
            publish_stats(w);
            next_tick = w->now_us + TICK_US;
        }
    }
    publish_stats(w);
    return NULL;
}

void relay_worker_free(struct relay_worker *w)
{
    size_t nports = (size_t)(w->port_hi - w->port_lo) + 1;

    relay_conns_free(w);
    for (size_t i = 0; i < nports; i++) {
        if (w->relay_fd4 && w->relay_fd4[i] >= 0)
            close(w->relay_fd4[i]);
        if (w->relay_fd6 && w->relay_fd6[i] >= 0)
            close(w->relay_fd6[i]);
    }
    free(w->relay_fd4);
    free(w->relay_fd6);
    w->relay_fd4 = w->relay_fd6 = NULL;
    for (size_t i = 0; i < w->n_listeners; i++)
        close(w->listeners[i].fd);
    w->n_listeners = 0;
    if (w->core)
        sluice_turn_server_free(w->core);
    w->core = NULL;
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    w->epfd = w->wake_fd = -1;
}
