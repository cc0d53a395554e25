/* SPDX-License-Identifier: MIT */
/* Coordinator client (internal): the state shared by client.c (connection,
 * timers, events) and client_stream.c (streams, credit, delivery). */
#ifndef SLUICE_COORD_CLIENT_INTERNAL_H
#define SLUICE_COORD_CLIENT_INTERNAL_H

#include "common/internal.h"
#include "coord/internal.h"
#include "coord/link.h"
#include "coord/table.h"

enum cstream_state {
    CST_OPENING = 1, /* we sent OPEN */
    CST_INCOMING,    /* we got OPEN, the application has not answered */
    CST_OPEN,
};

typedef struct cstream {
    uint32_t id;
    uint8_t kind;
    uint8_t state;
    bool tx_closed, rx_closed;
    bool blocked;      /* send() said FULL: WRITABLE owed */
    bool non_blocking; /* receive mode */
    int64_t tx_credit;  /* frame bytes we may send */
    int64_t rx_allowed; /* frame bytes the other side may still send */
    uint64_t unconsumed;     /* manual credit: delivered, not consumed */
    uint64_t pending_credit; /* consumed, not yet returned */
    uint64_t queued;         /* bytes of this stream's DATA events held (dropping modes) */
    uint64_t lag;            /* drops not yet reported */
    char name[SLUICE_COORD_CHANNEL_MAX + 1];
    char label[SLUICE_COORD_LABEL_MAX + 1];
} cstream;

/* An event node: fixed fields, then its strings and payload. */
typedef struct cev {
    coord_evnode node;
    uint8_t type;
    uint8_t kind;
    bool has_fp;
    int code, err;
    uint32_t stream;
    uint32_t credit; /* DATA, automatic credit: returned when released */
    uint32_t qbytes; /* DATA in a dropping mode: uncharged when released */
    uint64_t count;
    uint32_t max_message, window;
    const char *name, *label, *sender, *reason;
    const uint8_t *data;
    size_t len;
    uint8_t fp[32];
    const char *turn_user, *turn_pass;
    const char *turn_uris[SLUICE_COORD_TURN_URIS_MAX];
    size_t n_turn_uris;
    uint32_t turn_ttl;
    /* strings, payload and attribute strings follow the node */
} cev;

struct sluice_coord_client {
    sluice_coord_client_config cfg;
    char name[SLUICE_COORD_NAME_MAX + 1];
    bool plaintext;
    sluice_coord_client_state state;
    bool was_connected;
    coord_link link;
    uint32_t max_message, window;
    uint64_t now;         /* the latest now_us given to any call */
    uint64_t last_rx_us;
    uint64_t deadline_us; /* handshake, or closing linger */
    uint64_t ping_at_us, ping_interval_us, idle_timeout_us;
    uint64_t ping_count;
    bool want_writable; /* the send queue said FULL */

    coord_idtab streams; /* cstream, by id */
    uint32_t next_odd;
    uint32_t max_even; /* highest coordinator-opened id seen */

    coord_evq evq;
    cev final_ev;
    bool final_queued;
    char final_reason[SLUICE_COORD_REASON_MAX + 1];

    sluice_coord_client_stats stats;
    uint8_t rx_scratch[COORD_LINK_CHUNK];
    uint8_t tx_scratch[COORD_LINK_CHUNK];
};

/* client.c */
/* End the connection: the terminal event gets type/code/err/reason, an
 * ERROR frame goes out first when send_error. */
void cli_fail(sluice_coord_client *c, int code, int err, const char *reason, bool send_error);
int cli_push(sluice_coord_client *c, uint8_t type, uint32_t stream, const void *p, size_t len,
             coord_blob *blob);
int cli_push_error(sluice_coord_client *c, uint8_t type, uint32_t stream, int code,
                   const char *reason);
/* Queue an event with strings (may be NULL) and payload; NULL when dropped. */
cev *cli_event(sluice_coord_client *c, uint8_t type, uint32_t stream, const char *name,
               const char *label, const char *sender, const char *reason, const uint8_t *data,
               size_t len, size_t extra);

/* client_stream.c */
cstream *cli_stream(const sluice_coord_client *c, uint32_t id);
void cli_stream_remove(sluice_coord_client *c, cstream *st);
void cli_streams_free(sluice_coord_client *c);
/* A stream frame (or OPEN) from the coordinator. Returns 0 or negative
 * after failing the connection. */
int cli_stream_frame(sluice_coord_client *c, const coord_hdr *h, const uint8_t *p);
/* A DATA event was released. */
void cli_released(sluice_coord_client *c, const cev *e);
/* The send queue drained: WRITABLE for streams that were refused. */
void cli_writable(sluice_coord_client *c);

#endif
