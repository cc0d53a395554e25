/* SPDX-License-Identifier: MIT */
/* sluice TURN server core, sans-IO (RFC 8656, RFC 6156, RFC 8489 long-term
 * credentials): allocations, permissions, channels, stateless nonces,
 * quotas and peer policy. The daemon owns every socket and every clock. */
#ifndef SLUICE_TURN_SERVER_H
#define SLUICE_TURN_SERVER_H

#include "sluice/stun_txn.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * I/O model (docs/turn-server-core.md has the long version):
 *
 * - Client side: the driver passes every UDP datagram, or every whole frame
 *   of a TCP/TLS stream (cut with the framing rule of RFC 8656 §12.5: STUN
 *   length or padded ChannelData length), to sluice_turn_server_handle_client()
 *   together with the flow (5-tuple plus a connection id for streams).
 *   STUN answers are queued and leave through sluice_turn_server_poll_transmit().
 *   Client data for a peer (ChannelData, Send indications) is NOT queued:
 *   handle_client returns it at once as a view into the caller's datagram
 *   (zero copy) with the relay socket and peer to send it from/to.
 * - Peer side: the driver passes datagrams that arrived on a relay socket to
 *   sluice_turn_server_handle_peer() with an output buffer; the core writes
 *   ChannelData or a Data indication there (one copy, no heap) and says to
 *   which client flow to send it.
 * - Relay sockets: the core owns the port space (one relay IP per family,
 *   a port range) and picks ports itself. It tells the driver to open and
 *   close relay sockets through events (SLUICE_TURN_SERVER_EVENT_OPEN_RELAY /
 *   CLOSE_RELAY). Drain events BEFORE transmits: if a bind fails, call
 *   sluice_turn_server_relay_failed(); while the Allocate success response
 *   is still queued the core moves the allocation to another port and
 *   rewrites the response (or turns it into 508), so the client never sees
 *   an address nobody listens on.
 * - Time: now_us is monotonic microseconds from the caller. The wall clock
 *   (unix seconds) is needed only for TURN REST credentials and is given by
 *   the caller with sluice_turn_server_set_unix_time().
 */

typedef struct sluice_turn_server sluice_turn_server;

/* A static long-term credential (RFC 8489 §9.2). Either password, or a
 * precomputed MD5 key = MD5(name ":" realm ":" password) in md5_key with
 * has_md5_key set (then SHA-256 password algorithm is not available for
 * this user). Copied at creation. */
typedef struct sluice_turn_server_user {
    const char *name;
    const char *password;
    uint8_t md5_key[16];
    bool has_md5_key;
} sluice_turn_server_user;

/* An address prefix for the peer policy ("10.0.0.0/8", "2001:db8::/32"). */
typedef struct sluice_turn_cidr {
    sluice_addr addr; /* port ignored */
    uint8_t prefix_len;
} sluice_turn_cidr;

/* Parse "1.2.3.0/24", "2001:db8::/32" or a bare address (full length).
 * Returns 0, SLUICE_ERR_INVALID or SLUICE_ERR_MALFORMED. */
SLUICE_API int sluice_turn_cidr_parse(sluice_turn_cidr *c, const char *text);

/* ------------------------------------------------------------------------ */
/* Per-user quota shared between cores.
 *
 * A daemon that runs one core per worker thread gives every core the same
 * table (config shared_quota), so that max_allocations_per_user holds for
 * the whole process and not once per core. This is THE ONE OBJECT that may
 * be used from several threads at once: it is a fixed table of C11 atomic
 * words, lock-free; cores count an allocation when they create it and give
 * it back when it is deleted or expires. Everything else in the core has
 * one owner.
 *
 * A user's counts sit in a bounded window of slots after a keyed 64-bit
 * hash of the username (the key is secret, from rng). When the window
 * holds no free slot the Allocate is refused with 486 (the table never
 * grows): size it at about twice the users that hold allocations at once,
 * for instance the daemon's total max_allocations. */
typedef struct sluice_turn_quota sluice_turn_quota;

/* slots: at least this many (rounded up to a power of two, at least 64;
 * 1 .. 2^24). rng: the hash key (NULL: OpenSSL). alloc may be NULL.
 * Returns NULL and sets *err (may be NULL) to SLUICE_ERR_INVALID,
 * SLUICE_ERR_NOMEM or SLUICE_ERR_CRYPTO. */
SLUICE_API sluice_turn_quota *sluice_turn_quota_new(size_t slots, const sluice_rng *rng,
                                                    const sluice_allocator *alloc, int *err);
/* Free it after every core that uses it has been freed. */
SLUICE_API void sluice_turn_quota_free(sluice_turn_quota *q);
/* Allocations counted now, over all users and cores (a sum of atomic
 * loads: exact when no core runs). Thread-safe. */
SLUICE_API uint64_t sluice_turn_quota_held(const sluice_turn_quota *q);
/* Allocates refused because a user's window had no free slot. */
SLUICE_API uint64_t sluice_turn_quota_refused_full(const sluice_turn_quota *q);

typedef struct sluice_turn_server_config {
    /* REALM (RFC 8489 §9.2). Required. Copied. */
    const char *realm;
    /* SOFTWARE on every response (NULL: none). Copied. */
    const char *software;
    /* Relay addresses: one IP per family; family SLUICE_AF_NONE means the
     * family is not served (440). Ports are ignored. */
    sluice_addr relay_ip4, relay_ip6;
    /* Relay port range, inclusive (default 49152..65535). */
    uint16_t port_min, port_max;

    /* Static users (may be 0). Copied. */
    const sluice_turn_server_user *users;
    size_t n_users;
    /* TURN REST shared secrets (may be 0): a username "EXPIRY[:user]" with
     * EXPIRY in unix seconds is valid until EXPIRY with password
     * base64(HMAC-SHA1(secret, username)). Every secret is tried, so one
     * can be rotated in while the old one is still accepted. Copied. */
    const char *const *rest_secrets;
    size_t n_rest_secrets;
    /* Current wall-clock time in unix seconds for REST expiry (update it
     * with sluice_turn_server_set_unix_time()). 0: REST users are refused. */
    uint64_t unix_time_s;

    /* Key of the stateless nonce MAC (RFC 8489 §9.2). All zero: random
     * (from rng) at creation. Give the same key to workers that share
     * clients. */
    uint8_t nonce_key[32];
    /* How long a nonce stays valid, in seconds (default 3600). A nonce is
     * valid only from the client transport address it was given to. */
    uint32_t nonce_lifetime_s;
    /* Offer PASSWORD-ALGORITHMS (RFC 8489 §9.2.1, nonce cookie bit 0), in
     * this order. Default: SHA-256 then MD5. n = 0 and the arrays' first
     * entry 0: no negotiation (MD5 only, no cookie feature bit). */
    uint16_t password_algorithms[2];
    size_t n_password_algorithms;
    /* Username anonymity (RFC 8489 §9.2.1, cookie bit 1): clients may send
     * USERHASH. Only static users can be found by their hash. Default off. */
    bool userhash;

    /* Lifetimes in seconds (RFC 8656 §7.2: default 600, maximum 3600). */
    uint32_t default_lifetime_s;
    uint32_t max_lifetime_s;
    /* Accept channel numbers 0x5000..0x7FFF in ChannelBind and ChannelData,
     * the range RFC 5766 allowed and RFC 8656 §12 reserves. Clients of that
     * generation (coturn 4.6's turnutils_uclient among them) still pick
     * from it. Default true; false is strict RFC 8656. */
    bool rfc5766_channels;

    /* Tables, all sized at creation. */
    size_t max_allocations;          /* default 1024, at most 1,000,000 */
    size_t max_allocations_per_user; /* 486 beyond; default 64, 0: max_allocations */
    /* NULL: max_allocations_per_user is counted by this core alone. Else
     * counted in this table, shared with other cores (possibly on other
     * threads). Borrowed, not copied: it must outlive the core. */
    sluice_turn_quota *shared_quota;
    size_t max_permissions;          /* per allocation, default 8, at most 256 */
    size_t max_channels;             /* per allocation, default 8, at most 4096 */
    size_t max_reservations;         /* EVEN-PORT R tokens, default 64 */
    size_t max_pending_transmits;    /* queued STUN answers, default 64 */
    /* Relayed bytes per second per allocation, each direction (token
     * bucket, one second of burst); 0: unlimited. */
    uint64_t bandwidth_bytes_per_s;

    /* 401/438 challenges per source IP: a token bucket of this many per
     * second and this burst, in a table of challenge_table_size buckets
     * hashed by source IP (collisions share a bucket). Excess challenges
     * are not answered and are counted. Defaults: 10/s, 20, 4096. */
    uint32_t challenges_per_s;
    uint32_t challenge_burst;
    size_t challenge_table_size;

    /* Peer policy: peers whose class (sluice_addr_classify) intersects
     * deny_classes are refused unless an allow prefix matches; peers in a
     * deny prefix are always refused. Prefixes are matched against the
     * address and the IPv4 address it embeds (::ffff:127.0.0.1 matches
     * 127.0.0.0/8). deny_classes default SLUICE_ADDR_DENY_DEFAULT; set
     * deny_classes_set to use 0. Copied. */
    uint32_t deny_classes;
    bool deny_classes_set;
    const sluice_turn_cidr *allow;
    size_t n_allow;
    const sluice_turn_cidr *deny;
    size_t n_deny;

    /* Drain (sluice_turn_server_set_draining): new Allocates are sent to
     * another server with 300 Try Alternate and ALTERNATE-SERVER (RFC 8489
     * §10, RFC 8656 §7.2): the address of the request's family (RFC 8489
     * §14.15), port included. Family SLUICE_AF_NONE: none of that family;
     * then 508. alternate_tls_port (0: the same port) replaces the port
     * for requests that came over TLS. alternate_domain (NULL: none) is
     * sent as ALTERNATE-DOMAIN (§14.16) on TLS, the name the client checks
     * the alternate's certificate against. Copied. */
    sluice_addr alternate_server4, alternate_server6;
    uint16_t alternate_tls_port;
    const char *alternate_domain;

    sluice_rng rng;
    sluice_allocator alloc;
} sluice_turn_server_config;

/* Fill cfg with the defaults above (no relay addresses, no users). */
SLUICE_API void sluice_turn_server_config_init(sluice_turn_server_config *cfg);

/* Create a server core. Every table is allocated here, never later.
 * Returns NULL and sets *err (may be NULL) to SLUICE_ERR_INVALID (no
 * realm, no relay family, bad ranges or limits), SLUICE_ERR_NOMEM or
 * SLUICE_ERR_CRYPTO. */
SLUICE_API sluice_turn_server *sluice_turn_server_new(const sluice_turn_server_config *cfg,
                                                      int *err);
/* Free everything. The driver should close every relay socket it has. */
SLUICE_API void sluice_turn_server_free(sluice_turn_server *s);

/* Update the wall clock (unix seconds) used for TURN REST expiry. */
SLUICE_API void sluice_turn_server_set_unix_time(sluice_turn_server *s, uint64_t unix_time_s);

/* Drain mode (off at creation). While on, an Allocate that would create an
 * allocation is answered, after authentication (so the answer is signed),
 * with 300 Try Alternate naming the configured alternate server of its
 * family, or 508 Insufficient Capacity ("Draining") when there is none.
 * Existing allocations keep working: refreshes, permissions, channels,
 * data, and a retransmitted Allocate of an existing allocation. */
SLUICE_API void sluice_turn_server_set_draining(sluice_turn_server *s, bool draining);

/* A client-side 5-tuple. For UDP conn_id is 0; for TCP/TLS it is the
 * driver's id of the stream (nonzero), and client/local are its ends. */
typedef struct sluice_turn_server_flow {
    sluice_addr client; /* client transport address (remote end) */
    sluice_addr local;  /* the listener address the client reached */
    sluice_transport transport;
    uint64_t conn_id;
} sluice_turn_server_flow;

typedef enum {
    SLUICE_TURN_SERVER_TO_CLIENT = 1, /* send from flow.local to flow.client (flow.conn_id) */
    SLUICE_TURN_SERVER_TO_PEER = 2,   /* send from the relay socket `relay` to `peer` */
} sluice_turn_server_direction;

/* Where output goes. */
typedef struct sluice_turn_server_transmit {
    sluice_turn_server_direction direction;
    sluice_turn_server_flow flow; /* TO_CLIENT */
    sluice_addr relay;            /* TO_PEER: source (relay socket) */
    sluice_addr peer;             /* TO_PEER: destination */
} sluice_turn_server_transmit;

/* Input from a client: one UDP datagram, or one whole frame from a TCP/TLS
 * stream (driver frames with the rule in turn/framing; padding included).
 * Requests are answered through poll_transmit (or silently dropped: rate
 * limited challenges, malformed input).
 * Returns 1 when the input is client data to relay: *out says from which
 * relay socket to which peer, and *payload and *payload_len is a view into
 * data (no copy; valid as long as data is). Returns 0 when consumed or
 * dropped, or SLUICE_ERR_INVALID for bad arguments. */
SLUICE_API int sluice_turn_server_handle_client(sluice_turn_server *s, uint64_t now_us,
                                                const sluice_turn_server_flow *flow,
                                                const uint8_t *data, size_t len,
                                                sluice_turn_server_transmit *out,
                                                const uint8_t **payload, size_t *payload_len);

/* Input from a peer: a datagram received on the relay socket `relay` from
 * `peer`. When a permission exists, writes ChannelData (bound channel;
 * padded to 4 on TCP/TLS) or a Data indication into buf and returns its
 * length with *out set to the client flow. Returns 0 when dropped (no
 * allocation, no permission, bandwidth limit: counted), SLUICE_ERR_NOSPACE
 * (cap too small; use len + 40 bytes), SLUICE_ERR_INVALID. No heap use. */
SLUICE_API int sluice_turn_server_handle_peer(sluice_turn_server *s, uint64_t now_us,
                                              const sluice_addr *relay, const sluice_addr *peer,
                                              const uint8_t *data, size_t len, uint8_t *buf,
                                              size_t cap, sluice_turn_server_transmit *out);

/* The TCP/TLS stream conn_id closed: its allocation is deleted (RFC 8656
 * §3.1). Returns 1 when an allocation was deleted, else 0. */
SLUICE_API int sluice_turn_server_connection_closed(sluice_turn_server *s, uint64_t now_us,
                                                    uint64_t conn_id);

/* The driver could not bind the relay socket of an OPEN_RELAY event. If the
 * allocation's success response has not been polled yet, another port is
 * chosen (a new OPEN_RELAY event; the queued response is rewritten) or,
 * after 4 attempts, the response becomes 508 and the allocation is
 * deleted. Otherwise the allocation is deleted (the client will see 437).
 * Returns 0, or SLUICE_ERR_NOT_FOUND when no allocation owns relay. */
SLUICE_API int sluice_turn_server_relay_failed(sluice_turn_server *s, uint64_t now_us,
                                               const sluice_addr *relay);

/* Expire allocations, permissions, channels and reservations. Expiry is
 * checked with 1 s granularity. */
SLUICE_API void sluice_turn_server_handle_timeout(sluice_turn_server *s, uint64_t now_us);
/* Next deadline in microseconds, SLUICE_NEVER when none. */
SLUICE_API uint64_t sluice_turn_server_next_timeout(const sluice_turn_server *s);

/* Next queued STUN answer: its bytes in buf and the flow in *out. Returns
 * the length, 0 when none, or SLUICE_ERR_NOSPACE (kept; 600 bytes always
 * suffice). */
SLUICE_API int sluice_turn_server_poll_transmit(sluice_turn_server *s, uint64_t now_us,
                                                uint8_t *buf, size_t cap,
                                                sluice_turn_server_transmit *out);

typedef enum {
    /* Bind a UDP socket to relay (address and port) and pass what arrives
     * on it to handle_peer; send TO_PEER output from it. */
    SLUICE_TURN_SERVER_EVENT_OPEN_RELAY = 1,
    /* Close the socket bound to relay. */
    SLUICE_TURN_SERVER_EVENT_CLOSE_RELAY = 2,
} sluice_turn_server_event_type;

typedef struct sluice_turn_server_event {
    sluice_turn_server_event_type type;
    sluice_addr relay;
} sluice_turn_server_event;

/* Next event, FIFO. Never lost: the queue has one slot per relay port, and
 * a port is not reused until its CLOSE_RELAY has been polled. An OPEN that
 * is cancelled before it was polled produces neither event. */
SLUICE_API bool sluice_turn_server_poll_event(sluice_turn_server *s, sluice_turn_server_event *ev);

/* Counters for the daemon's metrics. */
typedef struct sluice_turn_server_stats {
    uint64_t allocations;          /* current */
    uint64_t allocations_total;    /* created */
    uint64_t allocations_expired;
    uint64_t permissions;          /* current */
    uint64_t channels;             /* current */
    uint64_t requests;             /* STUN requests received */
    uint64_t error_responses;
    uint64_t auth_failures;        /* 401 after a credential was presented, 441 */
    uint64_t challenges;           /* 401/438 sent */
    uint64_t challenges_rate_limited; /* 401/438 not sent */
    uint64_t to_peer_packets, to_peer_bytes;     /* client -> peer */
    uint64_t to_client_packets, to_client_bytes; /* peer -> client */
    uint64_t dropped_no_allocation;
    uint64_t dropped_no_permission;
    uint64_t dropped_policy;       /* Send to a forbidden peer */
    uint64_t dropped_bandwidth;
    uint64_t dropped_malformed;
    uint64_t dropped_transmit_full;/* answers lost to a full transmit queue */
    uint64_t relay_bind_failures;
    uint64_t quota_refused;        /* 486: user quota reached or quota table window full */
    uint64_t drain_redirected;     /* Allocates answered 300 while draining */
    uint64_t drain_refused;        /* Allocates answered 508 while draining */
} sluice_turn_server_stats;

SLUICE_API void sluice_turn_server_get_stats(const sluice_turn_server *s,
                                             sluice_turn_server_stats *st);

/* Would the policy let peer be a peer? Returns 0, or the STUN code that a
 * request naming it gets (403). For tests and operator tools. */
SLUICE_API int sluice_turn_server_check_peer(const sluice_turn_server *s, const sluice_addr *peer);

/* Bytes of memory the core allocated at creation (all of it). */
SLUICE_API size_t sluice_turn_server_memory(const sluice_turn_server *s);

#ifdef __cplusplus
}
#endif
#endif
