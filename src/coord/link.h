/* SPDX-License-Identifier: MIT */
/* One coordinator connection's transport (internal), shared by the client
 * and the server machines: TLS on memory BIOs (or plaintext, for tests and
 * the fuzzer), frame reassembly on the way in, an ordered queue of frames
 * on the way out that is moved into TLS only while TLS has little pending,
 * so every byte held for a slow peer sits in an accountable place. */
#ifndef SLUICE_COORD_LINK_H
#define SLUICE_COORD_LINK_H

#include "common/tls.h"
#include "coord/frame.h"

/* A refcounted message payload, shared by the queue entries that carry it
 * (one copy for every member of a broadcast channel). */
typedef struct coord_blob {
    uint32_t refs;
    uint32_t len;
    uint8_t data[];
} coord_blob;

coord_blob *coord_blob_new(const sluice_allocator *a, size_t len);
void coord_blob_unref(const sluice_allocator *a, coord_blob *b);

/* A frame waiting to be sent: header, inline bytes, then the blob's. */
typedef struct coord_qent {
    struct coord_qent *next;
    coord_blob *blob;
    uint32_t inline_len;
    uint32_t acct; /* owner's accounting tag (bytes charged to a stream), 0: none */
    uint8_t hdr[COORD_HDR_LEN];
    uint8_t data[];
} coord_qent;

/* Called when an entry has left the queue (moved into TLS or handed out),
 * just before it is freed. */
typedef void (*coord_dequeued_fn)(void *ctx, const coord_qent *e);

/* A complete frame arrived (payload is a view valid during the call), or,
 * with h NULL, the TLS handshake has just completed. Return 0 to go on,
 * a negative code to stop reading (the connection is ending). */
typedef int (*coord_frame_fn)(void *ctx, const coord_hdr *h, const uint8_t *payload);

typedef struct coord_link {
    sluice_tls *tls; /* NULL: plaintext */
    const sluice_allocator *alloc;
    /* receive */
    uint8_t hdr[COORD_HDR_LEN];
    uint8_t hdr_have;
    bool in_frame;
    coord_hdr cur;
    uint8_t *rx; /* a frame that spans inputs, allocated to its length */
    uint32_t rx_have;
    uint32_t max_message; /* header check limit */
    int proto_code;       /* wire code of the last SLUICE_ERR_MALFORMED */
    bool established;
    /* send */
    coord_qent *head, *tail;
    size_t head_off;   /* bytes of head already moved out */
    size_t queued;     /* frame bytes in the queue */
    size_t n_entries;
    size_t n_control;  /* entries without a blob */
    bool closing;      /* close once the queue is out */
    bool tls_closed;
    coord_dequeued_fn dequeued;
    void *dequeued_ctx;
    uint64_t tls_in, tls_out; /* bytes on the TCP stream */
} coord_link;

/* TLS output moved per step and kept pending at most (roughly). */
#define COORD_LINK_CHUNK 16384
#define COORD_LINK_HIGH 65536

void coord_link_init(coord_link *l, sluice_tls *tls, const sluice_allocator *a,
                     uint32_t max_message);
/* Free the queue, the partial frame and the TLS session. */
void coord_link_free(coord_link *l);

/* Bytes from the TCP stream. scratch (COORD_LINK_CHUNK bytes at least)
 * receives plaintext. Returns 0; SLUICE_ERR_MALFORMED with *why and
 * l->proto_code for a frame that breaks a header rule; SLUICE_ERR_AUTH or SLUICE_ERR_CRYPTO
 * (TLS failed: sluice_tls_error_text); SLUICE_ERR_STATE after the peer's
 * close_notify; SLUICE_ERR_NOMEM; or what fn returned. */
int coord_link_input(coord_link *l, const uint8_t *data, size_t len, uint8_t *scratch,
                     coord_frame_fn fn, void *ctx, const char **why);

/* Queue a frame: payload (copied, may be NULL) then blob (referenced, may
 * be NULL). acct is the entry's accounting tag. Returns 0 or
 * SLUICE_ERR_NOMEM. */
int coord_link_push(coord_link *l, uint8_t type, uint32_t stream, const void *payload,
                    size_t len, coord_blob *blob, uint32_t acct);
/* Drop every queued frame (a dying connection) except one partly sent
 * already, which goes out whole. */
void coord_link_discard(coord_link *l);
/* Drop the queued frames of one stream that have not started to go out
 * (a reset stream). */
void coord_link_discard_stream(coord_link *l, uint32_t stream);

/* Close once everything queued is out (TLS close_notify after it). */
void coord_link_close(coord_link *l);

/* Is there anything to take? */
bool coord_link_has_output(coord_link *l, uint8_t *scratch);
/* Take output bytes (ciphertext, or plaintext frames without TLS).
 * Returns the length, 0 when none. */
int coord_link_take(coord_link *l, uint8_t *buf, size_t cap, uint8_t *scratch);
/* Closing and nothing left to send. */
bool coord_link_done(const coord_link *l);

#endif
