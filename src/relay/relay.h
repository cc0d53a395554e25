/* SPDX-License-Identifier: MIT */
/* sluice-relay internals shared by main, the workers, the stream glue and
 * the metrics endpoint: the daemon context, the worker and its tables. */
#ifndef SLUICE_RELAY_H
#define SLUICE_RELAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "common/tls.h"
#include "relay/options.h"
#include "sluice/turn_server.h"

/* Datagrams per recvmmsg/sendmmsg batch and the size of each slot. Larger
 * datagrams are dropped and counted (MSG_TRUNC). */
#define RELAY_BATCH 32
#define RELAY_SLOT 4096
/* ChannelData header / Data indication overhead that handle_peer adds. */
#define RELAY_TX_SLOT (RELAY_SLOT + 64)
/* Per-connection output bound (ciphertext or plain frames). */
#define RELAY_CONN_OUT 32768
/* Room for one IP_PKTINFO or IPV6_PKTINFO control message. */
#define RELAY_PKTINFO_SPACE CMSG_SPACE(sizeof(struct in6_pktinfo))

/* Daemon-side counters of one worker (the core has its own). */
struct relay_counters {
    uint64_t connections; /* current TCP/TLS clients */
    uint64_t connections_total;
    uint64_t connections_refused; /* table full */
    uint64_t tls_handshake_failures;
    uint64_t dropped_oversize;  /* datagram larger than a slot */
    uint64_t dropped_send;      /* socket send failed (EAGAIN, ...) */
    uint64_t dropped_conn_full; /* a stream's output bound reached */
};

struct relay_stats_slot {
    pthread_mutex_t lock;
    sluice_turn_server_stats core;
    struct relay_counters daemon;
};

struct relay_ctx {
    const struct relay_options *o;
    uint8_t nonce_key[32];
    sluice_turn_server_user *users;
    size_t n_users;
    /* Relay address each family's sockets bind to, and the address the
     * core announces (the --external-ip, else the same). */
    sluice_addr bind4, bind6, announce4, announce6;
    /* Per-user allocation counts shared by every worker's core (NULL when
     * --user-quota is 0): the one core object that threads share. */
    sluice_turn_quota *quota;
    /* The TLS listener's certificate and key, read once at start-up and
     * used by every worker for every connection (NULL: no TLS). */
    sluice_tls_server_ctx *tls;
    atomic_bool stop;
    atomic_bool draining;
    unsigned n_workers;
    struct relay_stats_slot *slots; /* one per worker */
};

/* Listeners of one worker. */
struct relay_listener {
    int fd;
    sluice_addr local;
    sluice_transport transport;
    /* 0.0.0.0 or ::. A UDP one learns each datagram's local address from
     * IP_PKTINFO/IPV6_PKTINFO and answers from it. */
    bool wildcard;
};

struct relay_conn {
    int fd;
    uint32_t gen;
    bool used, closing, want_out, tls_mode;
    sluice_tls *tls;
    sluice_addr client, local;
    uint8_t *in;
    size_t in_len;
    uint8_t *out;
    size_t out_off, out_len;
    int next_free;
};

/* Queued datagrams for one sendmmsg on one socket. */
struct relay_txq {
    int fd;
    unsigned n;
    struct mmsghdr msgs[RELAY_BATCH];
    struct iovec iov[RELAY_BATCH];
    struct sockaddr_storage dst[RELAY_BATCH];
    uint8_t ctrl[RELAY_BATCH][RELAY_PKTINFO_SPACE]; /* source address on a wildcard socket */
};

struct relay_worker {
    unsigned id;
    pthread_t thread;
    bool started;
    struct relay_ctx *ctx;
    int epfd, wake_fd;
    sluice_turn_server *core;
    uint16_t port_lo, port_hi;
    int *relay_fd4, *relay_fd6; /* by port - port_lo; -1: closed */
    struct relay_listener listeners[RELAY_MAX_LISTEN * 3];
    size_t n_listeners;
    struct relay_conn *conns;
    size_t max_conns;
    int free_conn;
    size_t n_closing; /* connections marked closing since the last reap */
    struct relay_counters cnt;
    uint64_t now_us;
    bool draining; /* what the core was last told (ctx->draining may move on) */
    /* Batches: received datagrams, client->peer views, peer->client frames. */
    struct mmsghdr rx_msgs[RELAY_BATCH];
    struct iovec rx_iov[RELAY_BATCH];
    struct sockaddr_storage rx_from[RELAY_BATCH];
    uint8_t rx_ctrl[RELAY_BATCH][RELAY_PKTINFO_SPACE];
    uint8_t rx_buf[RELAY_BATCH][RELAY_SLOT];
    struct relay_txq to_peer, to_client;
    uint8_t to_client_buf[RELAY_BATCH][RELAY_TX_SLOT];
    uint8_t stream_rx[16384];         /* TCP bytes or TLS ciphertext */
    uint8_t stream_tx[RELAY_TX_SLOT]; /* peer data framed for a stream */
    uint8_t answer[2048];             /* STUN answers from poll_transmit */
};

/* Logging: `level=L msg="M" key=value...` on stderr. fmt gives the
 * key=value tail (may be NULL). */
extern int relay_log_level;
void relay_log(int level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void relay_core_log_hook(void *ctx, sluice_log_level level, const char *module, const char *line);
const char *relay_addr_str(const sluice_addr *a, char buf[SLUICE_ADDR_STRLEN]);
uint64_t relay_now_us(void);

/* worker.c */
int relay_worker_init(struct relay_worker *w, struct relay_ctx *ctx, unsigned id);
void *relay_worker_run(void *arg);
void relay_worker_wake(struct relay_worker *w);
void relay_worker_free(struct relay_worker *w);
/* Send a datagram from a relay socket to a peer (stream frames). */
void relay_send_to_peer(struct relay_worker *w, const sluice_turn_server_transmit *t,
                        const uint8_t *data, size_t len);
/* Tell the core when drain mode was switched on (by a signal or POST
 * /drain on another thread) before it sees the next request. */
void relay_sync_drain(struct relay_worker *w);
/* Send queued STUN answers, open/close relay sockets. */
void relay_pump(struct relay_worker *w);

/* stream.c: TCP/TLS client connections */
int relay_conns_init(struct relay_worker *w);
void relay_conns_free(struct relay_worker *w);
void relay_conn_accept(struct relay_worker *w, struct relay_listener *l);
void relay_conn_event(struct relay_worker *w, uint32_t idx, uint32_t events);
/* Queue a whole frame to the stream conn_id (dropped + counted if it does
 * not fit). */
void relay_conn_send(struct relay_worker *w, uint64_t conn_id, const uint8_t *data, size_t len);
void relay_conn_reap(struct relay_worker *w);

/* metrics.c */
struct relay_metrics;
struct relay_metrics *relay_metrics_start(struct relay_ctx *ctx, int *err);
void relay_metrics_stop(struct relay_metrics *m);
void relay_stats_sum(struct relay_ctx *ctx, sluice_turn_server_stats *core,
                     struct relay_counters *daemon);

/* epoll data: kind in the top byte. */
enum { EV_WAKE = 1, EV_LISTEN = 2, EV_RELAY4 = 3, EV_RELAY6 = 4, EV_CONN = 5 };
#define EV_DATA(kind, v) (((uint64_t)(kind) << 56) | (uint64_t)(v))
#define EV_KIND(d) ((unsigned)((d) >> 56))
#define EV_VALUE(d) ((uint32_t)(d))

#endif
