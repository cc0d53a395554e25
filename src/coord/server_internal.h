/* SPDX-License-Identifier: MIT */
/* Coordinator server core (internal): connections, streams, channels and
 * held opens shared by server.c (connections, handshake, timers, output,
 * events) and server_stream.c (streams, routing, broadcast). */
#ifndef SLUICE_COORD_SERVER_INTERNAL_H
#define SLUICE_COORD_SERVER_INTERNAL_H

#include <openssl/crypto.h>

#include "common/internal.h"
#include "coord/internal.h"
#include "coord/link.h"
#include "coord/table.h"

struct sconn;
struct schan;

/* One connection's view of a stream. A proxied stream between two clients
 * is a pair of these, one on each connection, pointing at each other. */
enum sstream_state {
    SS_HELD = 1,    /* client's open waiting for its peer to connect */
    SS_WAIT_PEER,   /* client's open forwarded, waiting for the other side's answer */
    SS_WAIT_CLIENT, /* we sent OPEN to this client, waiting for its ACCEPT/REFUSE */
    SS_OPEN,
};

typedef struct sstream {
    uint32_t id;
    uint8_t kind;
    uint8_t state;
    bool rx_closed;  /* the client sent CLOSE: no more DATA from it */
    bool tx_closed;  /* we sent CLOSE to the client */
    bool blocked;    /* COORD: the daemon's send() got FULL */
    struct sconn *conn;
    struct sstream *peer;   /* PEER/DIRECT: the other connection's side */
    struct schan *chan;     /* BROADCAST */
    uint32_t member_idx;
    int64_t rx_allowed;     /* frame bytes the client may still send on it */
    int64_t tx_credit;      /* COORD: frame bytes we may still send */
    uint64_t pending_credit;/* consumed here, not yet returned (COORD, BROADCAST) */
    uint64_t queued;        /* BROADCAST: BCAST_DATA bytes queued to the client */
    uint64_t lag;           /* BROADCAST: drops not yet reported */
} sstream;

/* A server event node. CONNECTION_CLOSED uses the one embedded in its
 * connection, which is freed with it once the event is released. */
typedef struct sev {
    coord_evnode node;
    struct sconn *zombie;
    uint8_t type;
    bool by_peer;
    bool has_fp;
    int code;
    uint64_t conn;
    uint32_t stream;
    uint32_t credit; /* DATA: returned when released */
    const char *name, *label, *reason;
    const uint8_t *data;
    size_t len;
    sluice_addr remote;
    uint8_t fp[32];
    /* strings and payload follow the node */
} sev;

enum sconn_state {
    CS_HANDSHAKE = 1, /* TLS */
    CS_HELLO,         /* certificate checked, waiting for HELLO */
    CS_READY,         /* named */
    CS_CLOSING,       /* output draining */
};

typedef struct sconn {
    struct sluice_coord_server *srv;
    uint32_t idx, gen;
    uint8_t state;
    bool plaintext;
    bool paused;
    bool in_ready;
    bool kill;          /* end it at the next reap */
    bool kill_send;     /* ... with an ERROR frame */
    bool transport_gone;/* ... the daemon closed it: finish at once */
    bool by_peer;
    int refuse_code;    /* SERVER_FULL / SHUTDOWN after the handshake, else 0 */
    int close_code;
    char *close_reason; /* allocated; NULL: the code's name */
    struct sconn *rnext, *rprev; /* ready list */
    struct sconn *knext;         /* kill list */
    struct sconn *hnext;         /* name table chain */
    coord_link link;
    sluice_addr remote;
    char name[SLUICE_COORD_NAME_MAX + 1];
    bool has_fp;
    uint8_t fp[32];
    uint64_t last_rx_us;
    uint64_t deadline_us; /* hello, or closing linger; idle is last_rx + idle */
    coord_idtab streams;  /* sstream, by id */
    uint32_t next_even;   /* next coordinator-opened id */
    uint32_t max_odd;     /* highest client-opened id seen */
    sev final_ev;
} sconn;

typedef struct schan {
    struct schan *hnext;
    sstream **members;
    uint32_t n_members, cap_members;
    char name[SLUICE_COORD_CHANNEL_MAX + 1];
} schan;

typedef struct held_open {
    sstream *st;
    uint64_t deadline_us;
    char target[SLUICE_COORD_NAME_MAX + 1];
    char label[SLUICE_COORD_LABEL_MAX + 1];
} held_open;

struct sluice_coord_server {
    sluice_coord_server_config cfg;
    sluice_tls_server_ctx *tls_ctx;
    char *client_ca_file;
    char *turn_secret;
    char *turn_uris[SLUICE_COORD_TURN_URIS_MAX];
    uint64_t unix_time_s;
    uint64_t now; /* the latest now_us given to any call */
    bool shutting_down;

    sconn **conns;
    uint32_t *gens;
    uint32_t *free_idx;
    size_t n_slots, n_free, n_conns;
    sconn *ready_head, *ready_tail;
    sconn *kill_head;

    sconn **names; /* chained by hnext */
    size_t names_mask;
    schan **chans;
    size_t chans_mask, n_chans;
    uint64_t hash_key;

    held_open *held;
    size_t n_held;

    uint64_t conn_deadline_lb; /* never later than the earliest connection deadline */

    coord_evq evq;

    uint8_t rx_scratch[COORD_LINK_CHUNK];
    uint8_t tx_scratch[COORD_LINK_CHUNK];
    sluice_coord_server_stats stats;
};

/* server.c */
sconn *srv_conn(const sluice_coord_server *s, uint64_t id);
uint64_t srv_conn_id(const sconn *c);
bool srv_alive(const sconn *c);
sconn *srv_find_name(const sluice_coord_server *s, const char *name, size_t len);
/* Mark c to be ended at the next reap (with an ERROR frame when send). */
void srv_kill(sluice_coord_server *s, sconn *c, int code, const char *reason, bool send);
/* Queue a frame to c (nothing when c is ending); a control queue over its
 * bound ends c with SLOW. Returns 0 or a negative code. */
int srv_push(sluice_coord_server *s, sconn *c, uint8_t type, uint32_t stream, const void *p,
             size_t len, coord_blob *blob, uint32_t acct);
int srv_push_error(sluice_coord_server *s, sconn *c, uint8_t type, uint32_t stream, int code,
                   const char *reason);
int srv_push_u32(sluice_coord_server *s, sconn *c, uint8_t type, uint32_t stream, uint32_t v);
/* Queue an event. Returns the node (to fill views that point into it) or
 * NULL when dropped. */
sev *srv_event(sluice_coord_server *s, uint8_t type, const sconn *c, uint32_t stream,
               const char *label, const char *reason, const uint8_t *data, size_t len);

/* server_stream.c */
sstream *srv_stream(const sconn *c, uint32_t id);
void srv_stream_remove(sluice_coord_server *s, sstream *st);
/* A frame for a stream from a named client. Returns 0 or a negative code
 * after killing c. */
int srv_stream_frame(sluice_coord_server *s, uint64_t now, sconn *c, const coord_hdr *h,
                     const uint8_t *p);
/* c is ending: reset its peers, leave its channels, drop its held opens. */
void srv_streams_teardown(sluice_coord_server *s, sconn *c);
/* c got its name: forward the opens that waited for it. */
void srv_held_connected(sluice_coord_server *s, uint64_t now, sconn *c);
void srv_held_timeout(sluice_coord_server *s, uint64_t now);
uint64_t srv_held_next(const sluice_coord_server *s);
/* An entry left c's queue. */
void srv_dequeued(void *ctx, const coord_qent *e);
/* Return consumed credit on st when enough has piled up (force: any). */
void srv_return_credit(sluice_coord_server *s, sstream *st, bool force);
void srv_chan_free_all(sluice_coord_server *s);

#endif
