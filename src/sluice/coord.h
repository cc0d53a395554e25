/* SPDX-License-Identifier: MIT */
/* sluice coordinator, sans-IO: named clients on TLS 1.3 connections to one
 * coordinator, with multiplexed, ordered, framed message streams between
 * them — proxied streams (to the coordinator or through it to another
 * client), broadcast channels, and direct-channel signalling (certificate
 * fingerprints and TURN REST credentials handed out by the coordinator).
 * The wire format is in docs/coord-protocol.md. */
#ifndef SLUICE_COORD_H
#define SLUICE_COORD_H

#include "sluice/addr.h"
#include "sluice/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * I/O model (both machines follow design.md's core contract):
 *
 * - The caller owns the TCP connection(s). Bytes read from a socket go to
 *   *_handle_stream() in any chunking; bytes to write come from
 *   *_poll_transmit() into the caller's buffer. TLS runs inside the machine
 *   (OpenSSL on memory BIOs): the caller only ever sees ciphertext.
 * - Time is now_us, monotonic microseconds chosen by the caller. The wall
 *   clock (unix seconds, for certificate validity and TURN REST expiry) is
 *   given by the caller too. Nothing here reads a clock or a socket.
 * - Events are pulled FIFO with *_poll_event(); they are never overwritten.
 *   Strings and payloads in an event are views valid until the next
 *   *_poll_event() call on the same machine (or its free).
 * - A connection ends with one terminal event (client: REFUSED or CLOSED;
 *   server: CONNECTION_CLOSED). It comes only after the last bytes of that
 *   connection have been handed out by poll_transmit (the chunk carrying
 *   them has meta->close set), so on the event: write what you took, then
 *   close the socket.
 * - Every table has a maximum set at creation. Memory grows only within
 *   those maximums: messages are copied into per-message allocations whose
 *   total is bounded by the credit windows (proxied streams) or by a per
 *   member queue bound (broadcast), never by how slow a reader is.
 * - Single owner, no locks, no callbacks (except the process log hook).
 *
 * Message streams:
 * - Each stream carries whole messages (0..max_message bytes, default
 *   64 KiB, at most 1 MiB) in order. A stream has an application label
 *   ("sluice-ice/video") so a receiver can tell incoming streams apart.
 * - Proxied streams (kind COORD or PEER) are back-pressured: a sender needs
 *   credit for 12 + length bytes per message (SLUICE_COORD_MESSAGE_COST);
 *   the receiver returns credit as it consumes, end to end through the
 *   coordinator, whose queue for a stream is therefore bounded by the
 *   window. send() returns SLUICE_ERR_FULL (would block) without credit;
 *   a WRITABLE event says when to try again.
 * - A client in non-blocking receive mode never withholds credit: it drops
 *   messages its application has not taken once a per-stream bound is
 *   reached, and reports the count in a LAG event.
 * - Broadcast channels (kind BROADCAST) are joined by name; every member,
 *   the sender included, receives every message tagged with its sender.
 *   The coordinator never lets a slow member stall a channel: each member
 *   has a bounded queue, and what does not fit is dropped and reported to
 *   that member as LAG.
 * - Direct streams (kind DIRECT) are proxied streams whose OPEN and ACCEPT
 *   carry the SHA-256 fingerprint of the other side's certificate (as the
 *   coordinator authenticated it) and, when the coordinator is configured
 *   with a TURN REST secret, TURN credentials. The two clients exchange ICE
 *   credentials and candidates over the stream (text format in
 *   docs/coord-protocol.md) and then talk over the ICE path with DTLS,
 *   pinning each other's certificate (their coordinator identity). That
 *   DTLS path carries datagrams — size-limited, possibly lost — not this
 *   stream's reliable messages; it is not part of this module.
 */

/* ------------------------------------------------------------------------ */
/* Limits and constants */

#define SLUICE_COORD_VERSION 1
/* Client names: 1..63 bytes of [A-Za-z0-9._-], starting with a letter or
 * digit. They are matched exactly against the certificate's CN or dNSName. */
#define SLUICE_COORD_NAME_MAX 63
/* Channel names: 1..127 printable ASCII bytes (0x21..0x7E). */
#define SLUICE_COORD_CHANNEL_MAX 127
/* Stream labels: 0..127 bytes of 0x20..0x7E. */
#define SLUICE_COORD_LABEL_MAX 127
/* Reason texts: 0..255 bytes (control characters shown as '?'). */
#define SLUICE_COORD_REASON_MAX 255
/* Message sizes. */
#define SLUICE_COORD_DEFAULT_MAX_MESSAGE 65536u
#define SLUICE_COORD_MAX_MESSAGE_LIMIT (1u << 20)
/* TURN servers handed out with direct streams, and the length of a URI. */
#define SLUICE_COORD_TURN_URIS_MAX 4
#define SLUICE_COORD_URI_MAX 255
/* Credit a message costs: its frame header plus its payload. */
#define SLUICE_COORD_MESSAGE_COST(len) ((uint64_t)12 + (uint64_t)(len))

typedef enum {
    SLUICE_COORD_KIND_COORD = 1,     /* to (or from) the coordinator itself */
    SLUICE_COORD_KIND_PEER = 2,      /* to another client through the coordinator */
    SLUICE_COORD_KIND_BROADCAST = 3, /* membership of a named broadcast channel */
    SLUICE_COORD_KIND_DIRECT = 4,    /* like PEER, plus fingerprints and TURN credentials */
} sluice_coord_kind;

/* Open flags. */
#define SLUICE_COORD_OPEN_WAIT 0x01u /* PEER/DIRECT: hold the open until the peer connects */

/* Codes carried by ERROR, REFUSE and RESET frames and by events. The wire
 * codes are 0..99; 100 and up are local to a client and never sent. */
typedef enum {
    SLUICE_COORD_E_NONE = 0,          /* normal close */
    SLUICE_COORD_E_PROTOCOL = 1,      /* malformed frame, unknown type, frame out of state */
    SLUICE_COORD_E_VERSION = 2,       /* protocol version not supported */
    SLUICE_COORD_E_NAME_TAKEN = 3,    /* another client has this name */
    SLUICE_COORD_E_BAD_NAME = 4,      /* name, channel or label breaks the syntax rules */
    SLUICE_COORD_E_CERT_REQUIRED = 5, /* the client sent no certificate */
    SLUICE_COORD_E_CERT_INVALID = 6,  /* not signed by the client CA, or unusable */
    SLUICE_COORD_E_CERT_EXPIRED = 7,  /* outside its validity period */
    SLUICE_COORD_E_CERT_NAME = 8,     /* neither CN nor a dNSName equals the name */
    SLUICE_COORD_E_SERVER_FULL = 9,   /* connection limit reached */
    SLUICE_COORD_E_TIMEOUT = 10,      /* hello, idle or held-open timeout */
    SLUICE_COORD_E_FLOW_CONTROL = 11, /* data beyond the credit granted */
    SLUICE_COORD_E_TOO_BIG = 12,      /* message above max_message */
    SLUICE_COORD_E_LIMIT = 13,        /* streams, channels, members or held opens exhausted */
    SLUICE_COORD_E_NO_PEER = 14,      /* the named client is not connected */
    SLUICE_COORD_E_REFUSED = 15,      /* refused by the application */
    SLUICE_COORD_E_PEER_GONE = 16,    /* the other side disconnected */
    SLUICE_COORD_E_SHUTDOWN = 17,     /* the coordinator is shutting down */
    SLUICE_COORD_E_INTERNAL = 18,     /* out of memory or another local failure */
    SLUICE_COORD_E_SLOW = 19,         /* the client does not read its control frames */
    SLUICE_COORD_E_CANCELLED = 20,    /* reset by the application */
    SLUICE_COORD_E_KICKED = 21,       /* disconnected by the coordinator's operator */
    /* Local to the client: */
    SLUICE_COORD_E_TLS = 100,             /* TLS failed (err, reason say why) */
    SLUICE_COORD_E_PIN_MISMATCH = 101,    /* the coordinator's certificate is not the pinned one */
    SLUICE_COORD_E_CONNECTION_LOST = 102, /* the TCP connection ended without an ERROR frame */
} sluice_coord_code;

/* Name of a code ("name taken", ...). Never NULL. */
SLUICE_API const char *sluice_coord_code_name(int code);

/* TURN credentials handed out with a direct stream (TURN REST scheme:
 * username "<expiry unix time>:<client name>", password
 * base64(HMAC-SHA1(secret, username))). Strings are "" when absent. */
typedef struct sluice_coord_turn_credentials {
    const char *username;
    const char *password;
    uint32_t ttl_s;
    const char *uris[SLUICE_COORD_TURN_URIS_MAX]; /* "turn:relay.example:3478", ... */
    size_t n_uris;
} sluice_coord_turn_credentials;

/* Compute TURN REST credentials (also what the coordinator does): username
 * "<unix_time_s + ttl_s>:<name>" into user (cap >= 86 is always enough),
 * password into pass (cap >= 29). Returns 0, SLUICE_ERR_INVALID (bad name,
 * empty secret) or SLUICE_ERR_NOSPACE. */
SLUICE_API int sluice_coord_turn_rest_credentials(const char *secret, const char *name,
                                                  uint64_t unix_time_s, uint32_t ttl_s,
                                                  char *user, size_t user_cap, char *pass,
                                                  size_t pass_cap);

/* Is name a valid client name? */
SLUICE_API bool sluice_coord_name_valid(const char *name);

/* Format a SHA-256 fingerprint as "AB:CD:..." (95 characters + NUL; cap
 * >= 96). Returns the length or SLUICE_ERR_NOSPACE. */
SLUICE_API int sluice_coord_fingerprint_format(const uint8_t fp[32], char *buf, size_t cap);
/* Parse "AB:CD:..." or 64 hex digits (either case). Returns 0 or
 * SLUICE_ERR_MALFORMED. */
SLUICE_API int sluice_coord_fingerprint_parse(const char *text, uint8_t fp[32]);

/* Create a client identity: an EC P-256 key and a self-signed certificate
 * with CN = name and subjectAltName DNS:name, valid from 2000-01-01 with no
 * well-defined expiry (99991231235959Z, RFC 5280 §4.1.2.5): the identity is
 * its fingerprint, so nothing here reads the clock. Writes PEM files; the
 * key with mode 0600. Existing files are replaced (written to a temporary
 * file next to them, then renamed). fp (may be NULL) gets the certificate's
 * SHA-256. Returns 0, SLUICE_ERR_INVALID (bad name or paths),
 * SLUICE_ERR_CRYPTO (OpenSSL failed) or SLUICE_ERR_STATE (a file could not
 * be written: see errno). */
SLUICE_API int sluice_coord_generate_identity(const char *name, const char *cert_path,
                                              const char *key_path, uint8_t fp[32]);

/* Keep or create: when both files exist, the key matches the certificate
 * and the certificate names `name`, returns 0 (fp gets its SHA-256);
 * otherwise generates a new identity and returns 1. Negative codes as
 * sluice_coord_generate_identity. What the client library calls on first
 * use. */
SLUICE_API int sluice_coord_ensure_identity(const char *name, const char *cert_path,
                                            const char *key_path, uint8_t fp[32]);

/* Where transmitted bytes go. */
typedef struct sluice_coord_transmit {
    uint64_t conn; /* server: the connection; client: 0 */
    /* These are the connection's last bytes: close it once they are
     * written (the terminal event follows). */
    bool close;
} sluice_coord_transmit;

/* ------------------------------------------------------------------------ */
/* Client */

typedef struct sluice_coord_client sluice_coord_client;

typedef struct sluice_coord_client_config {
    /* This client's name (required; see SLUICE_COORD_NAME_MAX). Copied. */
    const char *name;
    /* Identity: PEM certificate valid for name, and its key (required; see
     * sluice_coord_ensure_identity). Read at creation. */
    const char *cert_file;
    const char *key_file;
    /* How to verify the coordinator. server_name: the name for SNI and the
     * certificate check (DNS name or IP literal; NULL only with a pin).
     * With pinned set, the coordinator's certificate must have exactly
     * this SHA-256 fingerprint (chain and name are not checked). Otherwise
     * ca_file (PEM bundle), or the system store when ca_file is NULL.
     * Read at creation. */
    const char *server_name;
    const char *ca_file;
    bool pinned;
    uint8_t pinned_sha256[32];
    /* Wall clock (unix seconds) for the coordinator certificate's validity
     * check; 0: OpenSSL reads the system clock. */
    uint64_t unix_time_s;
    /* Receive mode of new streams (sluice_coord_client_set_nonblocking
     * changes one stream): false (default) back-pressures the sender;
     * true never withholds credit and drops what does not fit in
     * recv_queue_bytes, reporting LAG. Broadcast streams always drop. */
    bool non_blocking;
    /* Blocking mode: false (default) returns a message's credit when its
     * DATA event is released (the next poll_event); true waits for
     * sluice_coord_client_consume(). */
    bool manual_credit;
    /* Streams open at once, both directions (default 64, 1..65536). */
    size_t max_streams;
    /* Bytes (SLUICE_COORD_MESSAGE_COST) of received messages waiting in
     * the event queue per non-blocking or broadcast stream (default
     * 256 KiB, at least 13). A message that costs more than this is
     * always dropped: keep it above 12 + the coordinator's max_message. */
    size_t recv_queue_bytes;
    /* Bytes of sends queued towards the coordinator before send() says
     * SLUICE_ERR_FULL (default 256 KiB, at least 64 KiB). */
    size_t send_queue_bytes;
    /* Events other than DATA held at once (0, the default: 4 * max_streams
     * + 64); more are dropped and counted (the terminal event never). */
    size_t max_events;
    /* Timers, in microseconds: TLS + HELLO/WELCOME (default 10 s); PING
     * interval (default 15 s, lowered to a third of the coordinator's idle
     * timeout); no byte from the coordinator for idle_timeout_us (default
     * 45 s) closes with TIMEOUT. */
    uint64_t handshake_timeout_us;
    uint64_t keepalive_us;
    uint64_t idle_timeout_us;
    sluice_allocator alloc;
} sluice_coord_client_config;

SLUICE_API void sluice_coord_client_config_init(sluice_coord_client_config *cfg);

/* Create a client (loads the identity and CA files; starts nothing).
 * Returns NULL and sets *err (may be NULL): SLUICE_ERR_INVALID (bad name,
 * missing files or settings, bad limits), SLUICE_ERR_CRYPTO (unreadable or
 * mismatched certificate/key/CA, logged through the log hook) or
 * SLUICE_ERR_NOMEM. */
SLUICE_API sluice_coord_client *sluice_coord_client_new(const sluice_coord_client_config *cfg,
                                                        int *err);
SLUICE_API void sluice_coord_client_free(sluice_coord_client *c);

/* Start the TLS handshake on a freshly connected TCP stream (the
 * ClientHello is then waiting in poll_transmit). HELLO goes out once the
 * coordinator is verified; CONNECTED follows its WELCOME, REFUSED its
 * ERROR. Returns 0 or SLUICE_ERR_STATE (already started). A client is
 * used for one connection: make a new one to reconnect. */
SLUICE_API int sluice_coord_client_start(sluice_coord_client *c, uint64_t now_us);

/* Bytes read from the TCP stream, any chunking. Returns 0, or a negative
 * code when the connection has failed because of them (the terminal event
 * says why); SLUICE_ERR_STATE when not started or already finished (input
 * ignored). */
SLUICE_API int sluice_coord_client_handle_stream(sluice_coord_client *c, uint64_t now_us,
                                                 const uint8_t *data, size_t len);

/* The TCP stream ended or failed: REFUSED/CLOSED with CONNECTION_LOST
 * (unless already finished). Pending output is discarded. */
SLUICE_API void sluice_coord_client_connection_closed(sluice_coord_client *c, uint64_t now_us);

/* Bytes to write to the TCP stream. Returns the length (at most cap), 0
 * when nothing is due, SLUICE_ERR_NOSPACE when cap is 0. meta->close marks
 * the last bytes of the connection. Use a buffer of 16 KiB or more. */
SLUICE_API int sluice_coord_client_poll_transmit(sluice_coord_client *c, uint64_t now_us,
                                                 uint8_t *buf, size_t cap,
                                                 sluice_coord_transmit *meta);

SLUICE_API void sluice_coord_client_handle_timeout(sluice_coord_client *c, uint64_t now_us);
/* Earliest deadline in microseconds, SLUICE_NEVER when none. */
SLUICE_API uint64_t sluice_coord_client_next_timeout(const sluice_coord_client *c);

/* Graceful close: an ERROR frame with code NONE (and reason, may be NULL)
 * and a TLS close_notify, then CLOSED (code NONE) once they are taken.
 * Returns 0 or SLUICE_ERR_STATE (not started or already finished). */
SLUICE_API int sluice_coord_client_close(sluice_coord_client *c, uint64_t now_us,
                                         const char *reason);

typedef enum {
    SLUICE_COORD_CLIENT_IDLE = 0,      /* created, not started */
    SLUICE_COORD_CLIENT_CONNECTING,    /* TLS handshake, HELLO sent */
    SLUICE_COORD_CLIENT_CONNECTED,     /* WELCOME received */
    SLUICE_COORD_CLIENT_CLOSING,       /* last bytes not yet taken */
    SLUICE_COORD_CLIENT_CLOSED,        /* finished (terminal event queued) */
} sluice_coord_client_state;

SLUICE_API sluice_coord_client_state sluice_coord_client_get_state(const sluice_coord_client *c);

/* Open a stream. kind COORD: to the coordinator (name NULL or ""). PEER or
 * DIRECT: to the client called name (may be this client itself); with
 * SLUICE_COORD_OPEN_WAIT the coordinator holds the open until that client
 * connects, at most wait_timeout_us (0: the coordinator's maximum, by
 * default 60 s). BROADCAST: join channel name. label: NULL or "" for none.
 * Returns the stream id (odd, > 0) — STREAM_ACCEPTED or STREAM_REFUSED
 * follows — or SLUICE_ERR_STATE (not connected), SLUICE_ERR_INVALID (bad
 * kind, name, channel, label or flags), SLUICE_ERR_FULL (max_streams). */
SLUICE_API int64_t sluice_coord_client_open_stream(sluice_coord_client *c, uint64_t now_us,
                                                   sluice_coord_kind kind, const char *name,
                                                   const char *label, unsigned flags,
                                                   uint64_t wait_timeout_us);

/* Answer a STREAM_INCOMING. Returns 0, SLUICE_ERR_NOT_FOUND (no such
 * stream) or SLUICE_ERR_STATE (already answered). refuse: code (e.g.
 * SLUICE_COORD_E_REFUSED) and reason (may be NULL) reach the opener. */
SLUICE_API int sluice_coord_client_accept_stream(sluice_coord_client *c, uint64_t now_us,
                                                 uint32_t stream);
SLUICE_API int sluice_coord_client_refuse_stream(sluice_coord_client *c, uint64_t now_us,
                                                 uint32_t stream, int code, const char *reason);

/* Send one message (copied). Returns 0, SLUICE_ERR_FULL (would block: not
 * enough credit or the send queue is full; a WRITABLE event follows),
 * SLUICE_ERR_INVALID (len above max_message), SLUICE_ERR_NOT_FOUND,
 * SLUICE_ERR_STATE (not accepted yet, or closed for sending),
 * SLUICE_ERR_NOMEM. */
SLUICE_API int sluice_coord_client_send(sluice_coord_client *c, uint64_t now_us, uint32_t stream,
                                        const uint8_t *data, size_t len);

/* Largest message send() would take now on stream (0 when none; negative
 * SLUICE_ERR_NOT_FOUND / SLUICE_ERR_STATE). */
SLUICE_API int64_t sluice_coord_client_writable(const sluice_coord_client *c, uint32_t stream);

/* manual_credit: the application is done with a message of len bytes on
 * stream: its credit goes back to the sender. Returns 0,
 * SLUICE_ERR_NOT_FOUND or SLUICE_ERR_INVALID (more than was received). */
SLUICE_API int sluice_coord_client_consume(sluice_coord_client *c, uint64_t now_us,
                                           uint32_t stream, size_t len);

/* Switch one stream's receive mode (see config non_blocking). Returns 0 or
 * SLUICE_ERR_NOT_FOUND. */
SLUICE_API int sluice_coord_client_set_nonblocking(sluice_coord_client *c, uint64_t now_us,
                                                   uint32_t stream, bool non_blocking);

/* Half-close: no more messages from us (the peer gets STREAM_FINISHED).
 * For a broadcast stream, leave the channel. Returns 0,
 * SLUICE_ERR_NOT_FOUND or SLUICE_ERR_STATE (already closed). */
SLUICE_API int sluice_coord_client_close_stream(sluice_coord_client *c, uint64_t now_us,
                                                uint32_t stream);
/* Abort the stream both ways with code and reason (may be NULL). Returns 0
 * or SLUICE_ERR_NOT_FOUND. The stream is gone at once (no event). */
SLUICE_API int sluice_coord_client_reset_stream(sluice_coord_client *c, uint64_t now_us,
                                                uint32_t stream, int code, const char *reason);

typedef enum {
    /* WELCOME received: max_message, window. */
    SLUICE_COORD_EVENT_CONNECTED = 1,
    /* Terminal, before CONNECTED: the coordinator refused us (code,
     * reason from its ERROR frame) or the connection failed (code TLS,
     * PIN_MISMATCH, CONNECTION_LOST, TIMEOUT; err SLUICE_ERR_*). */
    SLUICE_COORD_EVENT_REFUSED = 2,
    /* Terminal, after CONNECTED (or after our own close() at any time):
     * code, err, reason (code NONE after a close by either side). Every
     * stream is gone. */
    SLUICE_COORD_EVENT_CLOSED = 3,
    /* A stream opened to us: stream, kind (COORD, PEER, DIRECT), name (the
     * opener, "" for the coordinator), label; DIRECT: peer_fingerprint of
     * the opener and turn. Answer with accept_stream or refuse_stream. */
    SLUICE_COORD_EVENT_STREAM_INCOMING = 4,
    /* Our open was accepted: stream, kind, name, label; DIRECT:
     * peer_fingerprint of the acceptor and turn. */
    SLUICE_COORD_EVENT_STREAM_ACCEPTED = 5,
    /* Our open was refused (stream gone): code (NO_PEER, TIMEOUT, LIMIT,
     * REFUSED...), reason. */
    SLUICE_COORD_EVENT_STREAM_REFUSED = 6,
    /* A message: stream, data/len; on a broadcast stream sender is the
     * client that sent it ("" for the coordinator). */
    SLUICE_COORD_EVENT_DATA = 7,
    /* count messages were dropped on stream since the last LAG (by this
     * client in non-blocking mode, or by the coordinator for a slow
     * broadcast member). */
    SLUICE_COORD_EVENT_LAG = 8,
    /* The peer closed its side: no more DATA on stream. */
    SLUICE_COORD_EVENT_STREAM_FINISHED = 9,
    /* The stream is gone: code NONE when both sides closed, else a reset
     * (CANCELLED or the peer's code, PEER_GONE, ...) with reason. */
    SLUICE_COORD_EVENT_STREAM_CLOSED = 10,
    /* send() said SLUICE_ERR_FULL on stream and may now succeed. */
    SLUICE_COORD_EVENT_WRITABLE = 11,
} sluice_coord_event_type;

typedef struct sluice_coord_event {
    sluice_coord_event_type type;
    uint32_t stream;
    sluice_coord_kind kind;
    int code;            /* sluice_coord_code */
    int err;             /* SLUICE_ERR_* for local failures, else 0 */
    const char *name;    /* peer client or channel; "" when none */
    const char *label;   /* "" when none */
    const char *sender;  /* DATA on broadcast; "" otherwise */
    const char *reason;  /* "" when none */
    const uint8_t *data; /* DATA */
    size_t len;
    uint64_t count;      /* LAG */
    bool has_peer_fingerprint;
    uint8_t peer_fingerprint[32];
    sluice_coord_turn_credentials turn;
    uint32_t max_message; /* CONNECTED */
    uint32_t window;      /* CONNECTED: initial credit per stream and direction */
} sluice_coord_event;

/* Next event, FIFO. The previous event's views (and, in automatic credit
 * mode, its message's credit) are released by this call. */
SLUICE_API bool sluice_coord_client_poll_event(sluice_coord_client *c, sluice_coord_event *ev);

typedef struct sluice_coord_client_stats {
    uint64_t bytes_in, bytes_out;       /* TCP bytes (ciphertext) */
    uint64_t messages_in, messages_out; /* DATA / BCAST_DATA */
    uint64_t messages_dropped;          /* non-blocking/broadcast drops by this client */
    uint64_t lag_reported;              /* drops the coordinator reported (LAG frames) */
    uint64_t events_dropped;
    uint64_t streams_open;
} sluice_coord_client_stats;

SLUICE_API void sluice_coord_client_get_stats(const sluice_coord_client *c,
                                              sluice_coord_client_stats *st);

/* ------------------------------------------------------------------------ */
/* Server (the coordinator's core; the sluice-coord daemon drives it) */

typedef struct sluice_coord_server sluice_coord_server;

typedef struct sluice_coord_server_config {
    /* The coordinator's certificate chain and key (PEM, required; read at
     * creation). */
    const char *cert_file;
    const char *key_file;
    /* NULL (default): clients authenticate with any certificate (self-
     * signed is the norm) valid for their name. Else the chain must verify
     * to this CA bundle (access control). */
    const char *client_ca_file;
    /* Wall clock, unix seconds, for certificate validity and TURN REST
     * expiry (update with sluice_coord_server_set_unix_time). While 0,
     * clients are refused (CERT_INVALID, "coordinator clock not set"). */
    uint64_t unix_time_s;

    /* Connections at once (default 1024, 1..1,000,000). A few more (1/64th
     * of it, at least 4) are accepted to be told SERVER_FULL after the
     * handshake; beyond that accept() fails. */
    size_t max_connections;
    size_t max_streams_per_client;  /* default 64, 1..65536 */
    size_t max_channels;            /* broadcast channels, default 256 */
    size_t max_members;             /* per channel, default 256 */
    size_t max_held_opens;          /* opens waiting for a peer, default 256 */
    uint32_t max_message;           /* default 64 KiB, at most 1 MiB */
    /* Credit per stream and direction, in SLUICE_COORD_MESSAGE_COST bytes
     * (default 256 KiB, at least 12 + max_message). */
    uint32_t window;
    /* Bytes queued per broadcast member (default 256 KiB, at least
     * 12 + 64 + max_message); excess messages are dropped and reported as
     * LAG to that member. */
    size_t member_queue_bytes;
    /* Control frames queued towards one client (default 4096); beyond,
     * the client is disconnected with SLOW. */
    size_t max_control_queue;
    /* Events other than DATA held at once (default 65536); more are
     * dropped and counted (connection lifecycle events are never dropped). */
    size_t max_events;
    /* Timers, microseconds: TLS + HELLO (default 10 s); no byte from a
     * client for idle_timeout_us (default 60 s) disconnects it; a held open
     * waits at most held_open_timeout_us (default 60 s). */
    uint64_t hello_timeout_us;
    uint64_t idle_timeout_us;
    uint64_t held_open_timeout_us;

    /* TURN REST for direct streams: shared secret (NULL: no credentials),
     * relay URIs (1..4 when a secret is set) and credential lifetime in
     * seconds (default 86400). Copied. */
    const char *turn_secret;
    const char *const *turn_uris;
    size_t n_turn_uris;
    uint32_t turn_ttl_s;

    sluice_allocator alloc;
} sluice_coord_server_config;

SLUICE_API void sluice_coord_server_config_init(sluice_coord_server_config *cfg);

/* Create a server (reads the certificate, key and client CA once). Returns
 * NULL and sets *err (may be NULL): SLUICE_ERR_INVALID (missing files, bad
 * limits, TURN secret without URIs), SLUICE_ERR_CRYPTO (unreadable or
 * mismatched files; logged) or SLUICE_ERR_NOMEM. */
SLUICE_API sluice_coord_server *sluice_coord_server_new(const sluice_coord_server_config *cfg,
                                                        int *err);
SLUICE_API void sluice_coord_server_free(sluice_coord_server *s);

SLUICE_API void sluice_coord_server_set_unix_time(sluice_coord_server *s, uint64_t unix_time_s);

/* A TCP connection was accepted from remote. *conn gets its id (never 0,
 * never reused). Returns 0, or SLUICE_ERR_FULL (close the socket at once:
 * even the slots that tell clients SERVER_FULL are taken) or
 * SLUICE_ERR_NOMEM. */
SLUICE_API int sluice_coord_server_accept(sluice_coord_server *s, uint64_t now_us,
                                          const sluice_addr *remote, uint64_t *conn);

/* Bytes read from connection conn, any chunking. Returns 0 (protocol
 * errors are answered on the wire and end the connection through the
 * usual terminal event), SLUICE_ERR_NOT_FOUND (unknown or finished conn)
 * or SLUICE_ERR_INVALID. Input after the connection started closing is
 * ignored. */
SLUICE_API int sluice_coord_server_handle_stream(sluice_coord_server *s, uint64_t now_us,
                                                 uint64_t conn, const uint8_t *data, size_t len);

/* The TCP connection ended or failed: it is dropped at once (its streams
 * are reset towards their peers, its channels left) and CONNECTION_CLOSED
 * is queued. Returns 0 or SLUICE_ERR_NOT_FOUND. */
SLUICE_API int sluice_coord_server_connection_closed(sluice_coord_server *s, uint64_t now_us,
                                                     uint64_t conn);

/* Bytes to write for some connection (round robin over those with output
 * that are not paused): meta->conn says which, meta->close marks its last
 * bytes. Returns the length, 0 when nothing is due, SLUICE_ERR_NOSPACE
 * when cap is 0. Take a connection's output only when it can be written
 * (pause it otherwise): what stays here is bounded, what you take is yours. */
SLUICE_API int sluice_coord_server_poll_transmit(sluice_coord_server *s, uint64_t now_us,
                                                 uint8_t *buf, size_t cap,
                                                 sluice_coord_transmit *meta);

/* Stop (or resume) handing out conn's output, e.g. while its socket is not
 * writable. Returns 0 or SLUICE_ERR_NOT_FOUND. */
SLUICE_API int sluice_coord_server_pause_output(sluice_coord_server *s, uint64_t conn,
                                                bool paused);

SLUICE_API void sluice_coord_server_handle_timeout(sluice_coord_server *s, uint64_t now_us);
/* Earliest deadline in microseconds, SLUICE_NEVER when none. May be early
 * (then handle_timeout finds nothing due); never late. */
SLUICE_API uint64_t sluice_coord_server_next_timeout(const sluice_coord_server *s);

/* Disconnect a client: ERROR (code, reason) and close. Returns 0 or
 * SLUICE_ERR_NOT_FOUND. */
SLUICE_API int sluice_coord_server_disconnect(sluice_coord_server *s, uint64_t now_us,
                                              uint64_t conn, int code, const char *reason);
/* Disconnect everyone with SHUTDOWN and refuse new connections. */
SLUICE_API void sluice_coord_server_shutdown(sluice_coord_server *s, uint64_t now_us,
                                             const char *reason);

/* The connection of the client called name. Returns 0 or
 * SLUICE_ERR_NOT_FOUND. */
SLUICE_API int sluice_coord_server_find_client(const sluice_coord_server *s, const char *name,
                                               uint64_t *conn);

typedef struct sluice_coord_conn_info {
    sluice_addr remote;
    bool named;             /* WELCOME sent */
    char name[SLUICE_COORD_NAME_MAX + 1];
    bool has_fingerprint;
    uint8_t fingerprint[32];
    size_t streams;
    size_t queued_bytes;    /* output not yet in TLS */
    size_t tls_pending;     /* ciphertext not yet taken */
} sluice_coord_conn_info;

SLUICE_API int sluice_coord_server_conn_info(const sluice_coord_server *s, uint64_t conn,
                                             sluice_coord_conn_info *info);

/* The coordinator's own side of COORD streams. Same meaning as the client
 * calls of the same names, on (conn, stream). open_stream opens a COORD
 * stream to a named client (even id; STREAM_ACCEPTED/REFUSED follow). */
SLUICE_API int sluice_coord_server_accept_stream(sluice_coord_server *s, uint64_t now_us,
                                                 uint64_t conn, uint32_t stream);
SLUICE_API int sluice_coord_server_refuse_stream(sluice_coord_server *s, uint64_t now_us,
                                                 uint64_t conn, uint32_t stream, int code,
                                                 const char *reason);
SLUICE_API int64_t sluice_coord_server_open_stream(sluice_coord_server *s, uint64_t now_us,
                                                   uint64_t conn, const char *label);
SLUICE_API int sluice_coord_server_send(sluice_coord_server *s, uint64_t now_us, uint64_t conn,
                                        uint32_t stream, const uint8_t *data, size_t len);
SLUICE_API int64_t sluice_coord_server_writable(const sluice_coord_server *s, uint64_t conn,
                                                uint32_t stream);
SLUICE_API int sluice_coord_server_close_stream(sluice_coord_server *s, uint64_t now_us,
                                                uint64_t conn, uint32_t stream);
SLUICE_API int sluice_coord_server_reset_stream(sluice_coord_server *s, uint64_t now_us,
                                                uint64_t conn, uint32_t stream, int code,
                                                const char *reason);

/* Send a message to every member of a broadcast channel with sender ""
 * (the coordinator), with the same per-member drop rule. Returns the
 * number of members it was queued for, SLUICE_ERR_NOT_FOUND (no such
 * channel) or SLUICE_ERR_INVALID (too big). */
SLUICE_API int sluice_coord_server_broadcast(sluice_coord_server *s, uint64_t now_us,
                                             const char *channel, const uint8_t *data,
                                             size_t len);

typedef enum {
    /* A client is authenticated and named (WELCOME sent): conn, name,
     * fingerprint, remote. */
    SLUICE_COORD_SERVER_EVENT_CLIENT_CONNECTED = 1,
    /* Terminal, once per accepted connection: conn, name ("" when it never
     * got one), code and reason (why: NONE for a close by the client or
     * connection_closed, else the refusal or error sent), by_peer. */
    SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED = 2,
    /* A client opened a COORD stream: conn, name, stream, label. Answer
     * with accept_stream or refuse_stream. */
    SLUICE_COORD_SERVER_EVENT_STREAM_INCOMING = 3,
    SLUICE_COORD_SERVER_EVENT_STREAM_ACCEPTED = 4, /* our open_stream */
    SLUICE_COORD_SERVER_EVENT_STREAM_REFUSED = 5,  /* code, reason */
    /* A message on a COORD stream: conn, stream, data/len. Its credit goes
     * back to the client when the next poll_event releases it. */
    SLUICE_COORD_SERVER_EVENT_DATA = 6,
    SLUICE_COORD_SERVER_EVENT_STREAM_FINISHED = 7,
    SLUICE_COORD_SERVER_EVENT_STREAM_CLOSED = 8, /* code, reason */
    SLUICE_COORD_SERVER_EVENT_WRITABLE = 9,
} sluice_coord_server_event_type;

typedef struct sluice_coord_server_event {
    sluice_coord_server_event_type type;
    uint64_t conn;
    uint32_t stream;
    int code;
    bool by_peer;
    const char *name;   /* the client's name, "" when none */
    const char *label;
    const char *reason;
    const uint8_t *data;
    size_t len;
    sluice_addr remote;
    bool has_fingerprint;
    uint8_t fingerprint[32]; /* CLIENT_CONNECTED: the client certificate's SHA-256 */
} sluice_coord_server_event;

SLUICE_API bool sluice_coord_server_poll_event(sluice_coord_server *s,
                                               sluice_coord_server_event *ev);

typedef struct sluice_coord_server_stats {
    uint64_t connections;          /* now */
    uint64_t clients;              /* named now */
    uint64_t connections_total;
    uint64_t refused;              /* connections refused with an ERROR before WELCOME */
    uint64_t protocol_errors;      /* connections ended with PROTOCOL, FLOW_CONTROL, TOO_BIG */
    uint64_t timeouts;             /* hello and idle timeouts */
    uint64_t streams;              /* open now (counted once per connection side) */
    uint64_t streams_total;
    uint64_t streams_refused;
    uint64_t held_opens;           /* waiting now */
    uint64_t held_open_timeouts;
    uint64_t channels;             /* now */
    uint64_t messages_in, bytes_in;    /* DATA frames and payload bytes from clients */
    uint64_t messages_out, bytes_out;  /* DATA/BCAST_DATA frames queued to clients */
    uint64_t broadcast_dropped;    /* member deliveries dropped (reported as LAG) */
    uint64_t events_dropped;
    uint64_t alloc_failures;
    uint64_t tls_bytes_in, tls_bytes_out;
} sluice_coord_server_stats;

SLUICE_API void sluice_coord_server_get_stats(const sluice_coord_server *s,
                                              sluice_coord_server_stats *st);

/* ------------------------------------------------------------------------ */
/* Direct channel (DTLS)
 *
 * Once two clients have connected over ICE (DIRECT stream signalling), their
 * messages travel on the ICE path inside DTLS 1.2 (RFC 6347), and each side
 * checks the other's certificate against the SHA-256 fingerprint the
 * coordinator attached to the DIRECT stream (the peer's coordinator
 * identity): no CA, no names, the pin is the whole check.
 *
 * Datagrams, not a stream: each send() is one DTLS record in one UDP
 * datagram. A message is at most max_payload bytes (max_datagram minus
 * SLUICE_COORD_DTLS_OVERHEAD), may be lost and may arrive out of order
 * (DTLS's replay window drops duplicates); there is no retransmission,
 * ordering or flow control of application data (only the handshake is
 * retransmitted). A reliable layer, if ever wanted, goes on top.
 *
 * Roles: the ICE controlling agent is the DTLS client, the controlled one
 * the server. WebRTC negotiates this with SDP's a=setup; here the ICE role
 * (fixed by the names, see SluiceCoordIce) decides, so nothing more is
 * exchanged. The server asks for the client's certificate; both verify
 * the peer. No HelloVerifyRequest cookie: ICE connectivity checks have
 * already proved the peer's address.
 *
 * I/O model, as the rest of this header, with one exception:
 * - handle_datagram() takes one received UDP payload (demultiplex with
 *   sluice_coord_is_dtls(), RFC 7983); poll_transmit() gives one datagram
 *   to send, made of whole DTLS records, at most max_datagram bytes.
 * - Time is now_us (monotonic microseconds) from the caller, EXCEPT that
 *   OpenSSL checks the expiry of its handshake retransmission timer
 *   against the system clock (gettimeofday) it reads itself: the deadline
 *   next_timeout() reports is computed from now_us (the duration OpenSSL
 *   chose, learnt through DTLS_set_timer_cb), but when handle_timeout()
 *   runs on a virtual clock that is ahead of the real one, OpenSSL finds
 *   nothing due and the deadline moves to when it will. This is the one
 *   place where the coordinator core depends on the system clock.
 * - Certificate and key files are read at creation. OpenSSL's own
 *   allocations do not go through cfg.alloc.
 */

/* Bytes a DTLS 1.2 record adds to a message with the AEAD suites used here
 * (13-byte header, 8-byte explicit nonce, 16-byte tag; ChaCha20-Poly1305
 * needs 8 fewer). */
#define SLUICE_COORD_DTLS_OVERHEAD 37u
#define SLUICE_COORD_DTLS_DEFAULT_MAX_DATAGRAM 1200u
#define SLUICE_COORD_DTLS_MIN_DATAGRAM 256u
#define SLUICE_COORD_DTLS_MAX_DATAGRAM 16384u

/* RFC 7983 §7: a UDP payload whose first byte is 20..63 is DTLS (0..3 is
 * STUN, 64..79 TURN ChannelData, 128..191 RTP/RTCP). */
SLUICE_API bool sluice_coord_is_dtls(uint8_t first_byte);

typedef struct sluice_coord_dtls sluice_coord_dtls;

typedef struct sluice_coord_dtls_config {
    /* Our identity (the one the coordinator knows us by): PEM certificate
     * and its key. Required; read at creation. */
    const char *cert_file;
    const char *key_file;
    /* true: DTLS client — the ICE controlling side; false: server. */
    bool client;
    /* SHA-256 of the peer's DER certificate, as the coordinator gave it
     * (sluice_coord_event.peer_fingerprint; sluice_coord_fingerprint_parse
     * for the text form). Required (32 bytes, copied). */
    const uint8_t *peer_fingerprint;
    /* Largest UDP payload sent (default 1200, 256..16384): the DTLS MTU,
     * handshake flights are fragmented to it. Both sides should use the
     * same value: a message above our max_payload is dropped on receipt. */
    size_t max_datagram;
    /* Received messages held for recv() (default 64, 1..4096); beyond,
     * new ones are dropped and counted. */
    size_t recv_queue;
    /* Ciphertext not yet taken by poll_transmit before send() says
     * SLUICE_ERR_FULL (default 64 KiB, at least 2 * max_datagram). */
    size_t send_queue_bytes;
    /* Handshake retransmission: first timeout in microseconds (default
     * 1 s, RFC 6347 §4.2.4.1; 1 ms..60 s), doubled on each expiry up to
     * 60 s. */
    uint64_t retransmit_us;
    /* The handshake fails with SLUICE_ERR_TIMEOUT when not done this many
     * microseconds after it started (default 30 s, at least 1 ms). */
    uint64_t handshake_timeout_us;
    sluice_allocator alloc;
} sluice_coord_dtls_config;

SLUICE_API void sluice_coord_dtls_config_init(sluice_coord_dtls_config *cfg);

/* Create an endpoint (reads the identity files; starts nothing). Returns
 * NULL and sets *err (may be NULL): SLUICE_ERR_INVALID (missing files or
 * fingerprint, values out of range), SLUICE_ERR_CRYPTO (unreadable or
 * mismatched certificate and key; logged, module "dtls") or
 * SLUICE_ERR_NOMEM. */
SLUICE_API sluice_coord_dtls *sluice_coord_dtls_new(const sluice_coord_dtls_config *cfg,
                                                    int *err);
SLUICE_API void sluice_coord_dtls_free(sluice_coord_dtls *d);

/* Start the handshake (once the ICE path is up). Client: its first flight
 * (ClientHello) is then waiting in poll_transmit. Server: only starts the
 * handshake timeout (a server also starts on its first datagram).
 * Returns 0, SLUICE_ERR_STATE (already started, closed) or the error the
 * endpoint failed with. */
SLUICE_API int sluice_coord_dtls_start(sluice_coord_dtls *d, uint64_t now_us);

/* One received UDP payload (any first byte 20..63). It must consist of
 * whole DTLS records: otherwise it is dropped with SLUICE_ERR_TRUNCATED (a
 * record runs past the end) or SLUICE_ERR_MALFORMED (not a DTLS 1.x
 * record header, unknown content type) and the session goes on — a stray
 * or forged datagram does not end it. Records DTLS itself rejects (bad
 * MAC, replays, old epochs) are dropped silently by OpenSSL. Returns 0;
 * the endpoint's error once it failed (here or before: input ignored);
 * SLUICE_ERR_STATE after close() or the peer's close_notify. Messages it
 * carried are then waiting for recv(); output (handshake flights, alerts)
 * for poll_transmit(). data is not kept. */
SLUICE_API int sluice_coord_dtls_handle_datagram(sluice_coord_dtls *d, uint64_t now_us,
                                                 const uint8_t *data, size_t len);

/* The next datagram to send: whole records, at most max_datagram bytes
 * (one flight may take several datagrams). Returns its length, 0 when
 * nothing is waiting, SLUICE_ERR_NOSPACE when cap is below the next
 * datagram (nothing taken; max_datagram is always enough). Works after a
 * failure too: the alert that tells the peer why may be waiting. */
SLUICE_API int sluice_coord_dtls_poll_transmit(sluice_coord_dtls *d, uint8_t *buf, size_t cap);

/* Send one message of 1..max_payload bytes as one datagram (copied and
 * encrypted now; take it with poll_transmit). Returns 0,
 * SLUICE_ERR_INVALID (empty or above max_payload), SLUICE_ERR_STATE (not
 * established yet, after close() or the peer's close_notify),
 * SLUICE_ERR_FULL (send_queue_bytes of output not taken yet), or the
 * endpoint's error. Delivery is not guaranteed (see above). */
SLUICE_API int sluice_coord_dtls_send(sluice_coord_dtls *d, const uint8_t *data, size_t len);

/* The oldest received message, copied into buf. Returns its length (>= 1),
 * 0 when none is waiting (see error() and peer_closed() for why none may
 * come), SLUICE_ERR_NOSPACE when cap is too small (the message stays;
 * max_payload is always enough). Messages received before a failure or
 * the peer's close_notify can still be taken. */
SLUICE_API int sluice_coord_dtls_recv(sluice_coord_dtls *d, uint8_t *buf, size_t cap);

/* Handshake retransmission and the handshake timeout. Call at or after
 * next_timeout() (early calls do nothing). */
SLUICE_API void sluice_coord_dtls_handle_timeout(sluice_coord_dtls *d, uint64_t now_us);
/* Earliest deadline in microseconds, SLUICE_NEVER when none (established,
 * failed, closed, or a server waiting for its first datagram). */
SLUICE_API uint64_t sluice_coord_dtls_next_timeout(const sluice_coord_dtls *d);

/* The handshake has completed, the peer's certificate is the pinned one,
 * and the endpoint has not failed or closed. */
SLUICE_API bool sluice_coord_dtls_established(const sluice_coord_dtls *d);
/* The peer's close_notify has arrived: no more messages will come. */
SLUICE_API bool sluice_coord_dtls_peer_closed(const sluice_coord_dtls *d);
/* 0, or the negative code the endpoint failed with: SLUICE_ERR_AUTH (the
 * peer's certificate is not the pinned one, it sent none, or the peer
 * rejected ours), SLUICE_ERR_TIMEOUT (handshake timeout or too many
 * retransmissions), SLUICE_ERR_CRYPTO (any other DTLS failure). Final. */
SLUICE_API int sluice_coord_dtls_error(const sluice_coord_dtls *d);
/* Why it failed, for a person ("peer certificate fingerprint AB:... is not
 * the pinned CD:...", "DTLS alert from the peer: bad certificate", ...);
 * "" while it has not. Owned by d. */
SLUICE_API const char *sluice_coord_dtls_error_text(const sluice_coord_dtls *d);

/* Largest message send() takes: max_datagram - SLUICE_COORD_DTLS_OVERHEAD. */
SLUICE_API size_t sluice_coord_dtls_max_payload(const sluice_coord_dtls *d);

/* Queue a close_notify (when established; before that, nothing is sent)
 * and stop: send() and handle_datagram() say SLUICE_ERR_STATE, timers end.
 * Idempotent. */
SLUICE_API void sluice_coord_dtls_close(sluice_coord_dtls *d);

typedef struct sluice_coord_dtls_stats {
    uint64_t datagrams_in;       /* accepted by handle_datagram */
    uint64_t datagrams_rejected; /* TRUNCATED / MALFORMED */
    uint64_t datagrams_out;      /* given by poll_transmit */
    uint64_t messages_in, messages_out;
    uint64_t messages_dropped;   /* receive queue full, or above max_payload */
    uint64_t retransmits;        /* handshake flights resent on a timeout */
    uint64_t handshake_us;       /* start to established, in now_us terms; 0 until then */
} sluice_coord_dtls_stats;

SLUICE_API void sluice_coord_dtls_get_stats(const sluice_coord_dtls *d,
                                            sluice_coord_dtls_stats *st);

#ifdef __cplusplus
}
#endif
#endif
