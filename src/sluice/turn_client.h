/* SPDX-License-Identifier: MIT */
/* sluice TURN client, sans-IO (RFC 8656, RFC 6156 address families): one
 * allocation on one server over UDP, TCP or TLS, with permissions, channels
 * and refreshes. The caller moves the bytes and the time; the client never
 * touches a socket or a clock. */
#ifndef SLUICE_TURN_CLIENT_H
#define SLUICE_TURN_CLIENT_H

#include "sluice/stun_txn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sluice_turn_client sluice_turn_client;

typedef enum {
    SLUICE_TURN_FAMILY_IPV4 = 1, /* the default; no REQUESTED-ADDRESS-FAMILY sent */
    SLUICE_TURN_FAMILY_IPV6 = 2, /* REQUESTED-ADDRESS-FAMILY IPv6 */
    SLUICE_TURN_FAMILY_DUAL = 3, /* IPv4 plus ADDITIONAL-ADDRESS-FAMILY IPv6 (RFC 8656 §7.1) */
} sluice_turn_family;

typedef struct sluice_turn_client_config {
    /* The TURN server's transport address and how to reach it. Over TCP and
     * TLS the caller connects a stream to `server` before the first
     * transmit and carries the bytes both ways (RFC 8656 §3.1). */
    sluice_addr server;
    sluice_transport transport;
    /* TLS: the name for SNI and certificate verification (a DNS name or an
     * IP literal). NULL: the server's IP address. Copied. */
    const char *server_name;
    /* TLS: CA bundle (PEM) to verify the server with. NULL: system store. */
    const char *ca_file;
    /* TLS: verify the server certificate (default true). */
    bool tls_verify;
    /* Long-term credentials (RFC 8489 §9.2). Both required. Copied. */
    const char *username;
    const char *password;
    sluice_turn_family family;
    /* LIFETIME to request in seconds (0: none sent, the server's default,
     * 600 s per RFC 8656 §7.2). */
    uint32_t lifetime_s;
    /* Peers with a permission (by IP) and with a channel (by IP:port):
     * default 64 each, at most 4096 each. */
    size_t max_permissions;
    size_t max_channels;
    /* ALTERNATE-SERVER redirects followed (300, RFC 8489 §10), default 3. */
    unsigned max_redirects;
    /* How long close() waits for the server to confirm the delete, in
     * microseconds (default 2 s). */
    uint64_t close_timeout_us;
    /* Bytes of received peer data buffered for sluice_turn_client_recv()
     * (default 256 KiB, at least 70 KiB, at most 64 MiB). Data that does not
     * fit is dropped and counted. */
    size_t recv_queue_bytes;
    /* Initial STUN RTO in microseconds (default 500 ms). */
    uint64_t initial_rto_us;
    /* SOFTWARE value for requests (NULL: none). Copied. */
    const char *software;
    sluice_rng rng;
    sluice_allocator alloc;
} sluice_turn_client_config;

/* Fill cfg with the defaults above (server unset, transport UDP, IPv4). */
SLUICE_API void sluice_turn_client_config_init(sluice_turn_client_config *cfg);

/* Create a client. Allocates all its tables here (and the TLS context for
 * TLS, which loads the CA file). Returns NULL and sets *err (may be NULL)
 * to SLUICE_ERR_INVALID (missing credentials, bad limits), SLUICE_ERR_NOMEM
 * or SLUICE_ERR_CRYPTO (TLS setup: unreadable CA file). */
SLUICE_API sluice_turn_client *sluice_turn_client_new(const sluice_turn_client_config *cfg,
                                                      int *err);
SLUICE_API void sluice_turn_client_free(sluice_turn_client *c);

/* Start the allocation (RFC 8656 §7.1): a TLS handshake first for TLS, then
 * Allocate with the 401 challenge, 438 retries, SHA-256 password algorithm
 * negotiation and USERHASH handled. Ends in an ALLOCATED or
 * ALLOCATE_FAILED event. Returns 0 or SLUICE_ERR_STATE (already started). */
SLUICE_API int sluice_turn_client_allocate(sluice_turn_client *c, uint64_t now_us);

/* Delete the allocation (Refresh with LIFETIME 0, RFC 8656 §7.2) and wait at
 * most close_timeout_us for the answer; then CLOSED. Before an allocation
 * exists it just stops (CLOSED at once). Returns 0 or SLUICE_ERR_STATE
 * when already closing or closed. */
SLUICE_API int sluice_turn_client_close(sluice_turn_client *c, uint64_t now_us);

/* Install a permission for peer's IP address (RFC 8656 §9) and keep it
 * refreshed (every 4 minutes; permissions last 5). Idempotent. Events:
 * PERMISSION_CREATED once confirmed, PERMISSION_FAILED on an error or when
 * a refresh fails. Returns 0, SLUICE_ERR_STATE (no allocation),
 * SLUICE_ERR_INVALID (no relayed address of the peer's family),
 * SLUICE_ERR_FULL (max_permissions). */
SLUICE_API int sluice_turn_client_create_permission(sluice_turn_client *c, uint64_t now_us,
                                                    const sluice_addr *peer);

/* Bind a channel to peer (RFC 8656 §12), which also installs a
 * permission, and keep it bound (rebound every 4 minutes, which keeps the
 * permission too; channels last 10 minutes, permissions 5). Returns the channel number (0x4000..0x4FFF; the same one when peer
 * already has one), SLUICE_ERR_STATE, SLUICE_ERR_INVALID or SLUICE_ERR_FULL.
 * Until CHANNEL_BOUND arrives, data to peer goes as Send indications. */
SLUICE_API int sluice_turn_client_bind_channel(sluice_turn_client *c, uint64_t now_us,
                                               const sluice_addr *peer);

/* Bytes received from the server. UDP: one datagram (from must be the
 * server). TCP/TLS: any chunk of the stream, in order (from is ignored).
 * STUN answers drive the state machine; Data indications and ChannelData
 * are queued for sluice_turn_client_recv(). Returns 1 when the bytes were
 * for this client, 0 when not (another source, not TURN), or a negative
 * code: over TCP/TLS a broken stream (bad framing, TLS failure) is fatal
 * and also ends the allocation with an event. */
SLUICE_API int sluice_turn_client_handle_datagram(sluice_turn_client *c, uint64_t now_us,
                                                  const sluice_addr *from, const uint8_t *data,
                                                  size_t len);

/* TCP/TLS: the stream to the server closed or failed. The allocation is
 * gone with it (RFC 8656 §3.1): LOST (or ALLOCATE_FAILED, or CLOSED when
 * closing). */
SLUICE_API void sluice_turn_client_handle_stream_closed(sluice_turn_client *c, uint64_t now_us);

SLUICE_API void sluice_turn_client_handle_timeout(sluice_turn_client *c, uint64_t now_us);
/* Earliest deadline in microseconds, SLUICE_NEVER when none. */
SLUICE_API uint64_t sluice_turn_client_next_timeout(const sluice_turn_client *c);
/* Next bytes to send: a datagram (UDP) or stream bytes (TCP/TLS) for
 * meta->destination. A new destination over TCP/TLS (after a redirect)
 * means a new connection. Returns the length, 0 when nothing is due, or
 * SLUICE_ERR_NOSPACE (cap too small; nothing lost — use at least 2048
 * bytes, or 16 KiB + 64 for TLS). */
SLUICE_API int sluice_turn_client_poll_transmit(sluice_turn_client *c, uint64_t now_us,
                                                uint8_t *buf, size_t cap, sluice_transmit *meta);

typedef enum {
    /* relayed[0..n_relayed), mapped, lifetime_s; for a dual request that
     * got one family, failed_family/family_error_code say why not both. */
    SLUICE_TURN_EVENT_ALLOCATED = 1,
    /* error_code (STUN code, 0 when none), reason (SLUICE_ERR_*: TIMEOUT,
     * AUTH, CRYPTO for TLS, STATE for a broken stream...), text. */
    SLUICE_TURN_EVENT_ALLOCATE_FAILED = 2,
    /* A refresh succeeded: lifetime_s granted. */
    SLUICE_TURN_EVENT_REFRESHED = 3,
    /* The allocation is gone: a refresh failed (437, timeout before
     * expiry), the stream closed, TLS failed. error_code/reason/text. */
    SLUICE_TURN_EVENT_LOST = 4,
    SLUICE_TURN_EVENT_PERMISSION_CREATED = 5, /* peer */
    SLUICE_TURN_EVENT_PERMISSION_FAILED = 6,  /* peer, error_code/reason */
    SLUICE_TURN_EVENT_CHANNEL_BOUND = 7,      /* peer, channel */
    SLUICE_TURN_EVENT_CHANNEL_FAILED = 8,     /* peer, channel, error_code/reason */
    /* ALTERNATE-SERVER (300) followed: server is the new address. Over
     * TCP/TLS the caller closes the old stream and connects a new one. */
    SLUICE_TURN_EVENT_REDIRECTED = 9,
    /* close() finished (deleted, or the wait expired: reason TIMEOUT). */
    SLUICE_TURN_EVENT_CLOSED = 10,
} sluice_turn_event_type;

typedef struct sluice_turn_event {
    sluice_turn_event_type type;
    sluice_addr relayed[2];
    size_t n_relayed;
    sluice_addr mapped;
    uint32_t lifetime_s;
    sluice_addr peer;
    uint16_t channel;
    sluice_addr server;
    int error_code;          /* STUN error code, 0 when none */
    int reason;              /* SLUICE_ERR_* or 0 */
    uint8_t failed_family;   /* ALLOCATED (dual): 1 IPv4 / 2 IPv6 that failed, else 0 */
    int family_error_code;   /* its ADDRESS-ERROR-CODE (e.g. 440) */
    char text[128];          /* reason phrase from the server or a local explanation */
} sluice_turn_event;

/* Next event, FIFO, never overwritten (bounded: when full, the oldest
 * informational events are kept and new ones counted in stats). */
SLUICE_API bool sluice_turn_client_poll_event(sluice_turn_client *c, sluice_turn_event *ev);

/* Next queued peer datagram (from Data indications and ChannelData): peer
 * and payload. Returns 1 and sets *len, 0 when the queue is empty, or
 * SLUICE_ERR_NOSPACE when cap is smaller than the datagram (it stays). */
SLUICE_API int sluice_turn_client_recv(sluice_turn_client *c, sluice_addr *peer, uint8_t *buf,
                                       size_t cap, size_t *len);

/* Wrap one datagram for peer and return the bytes to send to the server:
 * ChannelData when a channel is bound (padded over TCP/TLS, RFC 8656
 * §12.5), else a Send indication (RFC 8656 §10.1); encrypted for TLS (with
 * any earlier pending TLS output in front). meta says where. Returns the
 * length, SLUICE_ERR_STATE (no allocation), SLUICE_ERR_NOT_FOUND (no
 * permission or channel requested for peer), SLUICE_ERR_NOSPACE (cap too
 * small, nothing queued; over TLS the record is queued and the rest comes
 * from poll_transmit), SLUICE_ERR_INVALID (len > 65535). */
SLUICE_API int sluice_turn_client_send(sluice_turn_client *c, uint64_t now_us,
                                       const sluice_addr *peer, const uint8_t *data, size_t len,
                                       uint8_t *out, size_t cap, sluice_transmit *meta);

/* ------------------------------------------------------------------------ */
/* The zero-copy data path (design.md): the driver frames media itself. */

typedef struct sluice_turn_route {
    sluice_addr server;          /* where to send */
    sluice_transport transport;
    uint16_t channel;            /* bound channel, or 0 */
    bool pad;                    /* TCP: pad ChannelData to a multiple of 4 */
} sluice_turn_route;

/* How to send to peer without going through the client. Returns 0 when the
 * driver may frame it itself — a bound channel over UDP or TCP: write
 * sluice_turn_channel_header() into 4 bytes of headroom before the payload
 * (and pad over TCP); SLUICE_ERR_UNSUPPORTED when it must use
 * sluice_turn_client_send() (TLS, or no channel bound yet);
 * SLUICE_ERR_STATE without an allocation. */
SLUICE_API int sluice_turn_client_route(const sluice_turn_client *c, const sluice_addr *peer,
                                        sluice_turn_route *route);

/* The ChannelData header (RFC 8656 §12.4). */
static inline void sluice_turn_channel_header(uint8_t hdr[4], uint16_t channel, uint16_t len)
{
    hdr[0] = (uint8_t)(channel >> 8);
    hdr[1] = (uint8_t)channel;
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
}

/* Stateless ChannelData parse of one UDP datagram (RFC 8656 §12.4):
 * channel in 0x4000..0x4FFF, length within the datagram (trailing padding
 * allowed). Returns 0 with a view of the payload, SLUICE_ERR_NOT_FOUND when
 * the first two bits are not 01, SLUICE_ERR_TRUNCATED or
 * SLUICE_ERR_MALFORMED. */
SLUICE_API int sluice_turn_channel_data_parse(const uint8_t *data, size_t len, uint16_t *channel,
                                              const uint8_t **payload, size_t *payload_len);

/* UDP fast path: if the datagram from the server is peer data (ChannelData
 * on a bound channel, or a Data indication), return 1 with the peer and a
 * view of the payload inside data — no copy, nothing queued. 0 when it is
 * something else (give it to handle_datagram), negative when malformed. */
SLUICE_API int sluice_turn_client_unwrap(sluice_turn_client *c, const sluice_addr *from,
                                         const uint8_t *data, size_t len, sluice_addr *peer,
                                         const uint8_t **payload, size_t *payload_len);

/* ------------------------------------------------------------------------ */

typedef struct sluice_turn_client_stats {
    uint64_t rx_data;           /* peer datagrams received */
    uint64_t rx_dropped_queue;  /* dropped: receive queue full */
    uint64_t rx_dropped_unknown;/* dropped: unknown channel, bad indication */
    uint64_t tx_data;           /* datagrams wrapped by send() */
    uint64_t events_dropped;    /* events lost to a full event queue */
    uint32_t redirects;
} sluice_turn_client_stats;

SLUICE_API void sluice_turn_client_get_stats(const sluice_turn_client *c,
                                             sluice_turn_client_stats *st);

/* The current server (after redirects). */
SLUICE_API void sluice_turn_client_server(const sluice_turn_client *c, sluice_addr *server);

/* Relayed addresses of the allocation; returns how many (0, 1 or 2). */
SLUICE_API size_t sluice_turn_client_relayed(const sluice_turn_client *c, sluice_addr out[2]);

#ifdef __cplusplus
}
#endif
#endif
