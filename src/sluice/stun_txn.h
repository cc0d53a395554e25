/* SPDX-License-Identifier: MIT */
/* sluice STUN transactions, sans-IO (RFC 8489 §6): a bounded set of client
 * transactions with retransmission, RTT estimation per server, long-term
 * credential challenges; and server-side helpers for Binding and errors. */
#ifndef SLUICE_STUN_TXN_H
#define SLUICE_STUN_TXN_H

#include "sluice/stun.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What to send where; filled by every *_poll_transmit(). */
typedef struct sluice_transmit {
    sluice_addr destination;
    sluice_transport transport;
    /* The local address (socket) to send from: set by the ICE agent, which
     * sends from several bases; family SLUICE_AF_NONE (zero) elsewhere. */
    sluice_addr source;
} sluice_transmit;

typedef struct sluice_stun_client sluice_stun_client;

typedef struct sluice_stun_client_config {
    /* Initial RTO in microseconds (RFC 8489 §6.2.1: configurable, default
     * 500 ms). Used until a server has an RTT sample. */
    uint64_t initial_rto_us;
    /* Requests sent over UDP before giving up (Rc, default 7). */
    unsigned rc;
    /* Final wait after the last request, in RTOs (Rm, default 16). */
    unsigned rm;
    /* Transaction timeout over TCP/TLS (Ti, default 39.5 s). */
    uint64_t reliable_timeout_us;
    /* Upper bound on RTO in microseconds (0: none). Doubling stops here. */
    uint64_t max_rto_us;
    /* Outstanding transactions at once (default 32, at most 4096). */
    size_t max_transactions;
    /* Servers whose RTT and realm/nonce are cached (default 16, at most 1024). */
    size_t max_servers;
    /* SOFTWARE value added to requests (NULL: none). Copied. */
    const char *software;
    /* Add FINGERPRINT to every request (default true). */
    bool fingerprint;
    /* Randomness for transaction IDs (default OpenSSL). */
    sluice_rng rng;
    /* Allocator (default libc). Used only in _new and _free. */
    sluice_allocator alloc;
} sluice_stun_client_config;

/* Fill cfg with the defaults above. */
SLUICE_API void sluice_stun_client_config_init(sluice_stun_client_config *cfg);

/* Create a transaction set. Allocates everything it will ever need here.
 * Returns NULL on allocation failure or an invalid config. */
SLUICE_API sluice_stun_client *sluice_stun_client_new(const sluice_stun_client_config *cfg);
SLUICE_API void sluice_stun_client_free(sluice_stun_client *c);

typedef enum {
    SLUICE_STUN_AUTH_NONE = 0,
    SLUICE_STUN_AUTH_SHORT_TERM = 1, /* USERNAME + MESSAGE-INTEGRITY with password */
    SLUICE_STUN_AUTH_LONG_TERM = 2,  /* RFC 8489 §9.2: 401 challenge, realm, nonce */
} sluice_stun_auth;

/* How to send one request. Every pointer is read during the call only. */
typedef struct sluice_stun_request {
    sluice_addr server;
    sluice_transport transport; /* UDP: retransmit; TCP/TLS: one send, Ti */
    uint64_t user;              /* echoed in the request's events */
    sluice_stun_auth auth;
    const char *username; /* short- and long-term */
    size_t username_len;
    const char *password; /* short- and long-term (prepared UTF-8) */
    size_t password_len;
    /* Send a request (not an indication) without waiting for a challenge
     * when the server's realm/nonce are cached (default true via zero: set
     * no_cached_nonce to force the challenge round trip). */
    bool no_cached_nonce;
} sluice_stun_request;

/* Start a client transaction. body is a request or indication built with
 * the writer, without USERNAME/REALM/NONCE/integrity/FINGERPRINT (the
 * client adds those); its transaction ID is replaced by a fresh random one,
 * returned in txid_out (may be NULL). IPv6 XOR-MAPPED-, XOR-PEER- and
 * XOR-RELAYED-ADDRESS values in body, encoded with body's own transaction
 * ID, are re-encoded for every ID put on the wire. Indications are sent once and produce
 * no event. Returns 0, SLUICE_ERR_FULL (max_transactions outstanding),
 * SLUICE_ERR_NOSPACE (message too large), SLUICE_ERR_INVALID. */
SLUICE_API int sluice_stun_client_send(sluice_stun_client *c, uint64_t now_us, const uint8_t *body,
                                       size_t len, const sluice_stun_request *req,
                                       uint8_t txid_out[SLUICE_STUN_TXID_LEN]);

/* Stop a transaction without an event. Returns 0 or SLUICE_ERR_NOT_FOUND. */
SLUICE_API int sluice_stun_client_cancel(sluice_stun_client *c,
                                         const uint8_t txid[SLUICE_STUN_TXID_LEN]);

/* Feed a received datagram (or a complete framed message from a stream).
 * Returns 1 if it answered one of our transactions (an event may follow;
 * an answer that fails its integrity check is dropped as RFC 8489 §9.1.4
 * and §9.2.5 say, and also returns 1), 0 if it is not ours (not STUN, a
 * request, an unknown transaction), or a negative parse error. */
SLUICE_API int sluice_stun_client_handle_datagram(sluice_stun_client *c, uint64_t now_us,
                                                  const sluice_addr *from, const uint8_t *data,
                                                  size_t len);
SLUICE_API void sluice_stun_client_handle_timeout(sluice_stun_client *c, uint64_t now_us);
/* Earliest deadline, SLUICE_NEVER when none. */
SLUICE_API uint64_t sluice_stun_client_next_timeout(const sluice_stun_client *c);
/* Next datagram to send. Returns its length, 0 when nothing is due, or
 * SLUICE_ERR_NOSPACE (the datagram stays queued) */
SLUICE_API int sluice_stun_client_poll_transmit(sluice_stun_client *c, uint64_t now_us,
                                                uint8_t *buf, size_t cap, sluice_transmit *meta);

typedef enum {
    /* A success response (integrity checked when credentials were used). */
    SLUICE_STUN_EVENT_SUCCESS = 1,
    /* An error response other than a challenge that was answered. */
    SLUICE_STUN_EVENT_ERROR = 2,
    /* No answer after Rc requests (UDP) or Ti (TCP/TLS). */
    SLUICE_STUN_EVENT_TIMEOUT = 3,
    /* The response had unknown comprehension-required attributes, or the
     * server challenged twice / sent a 401 without usable realm/nonce. */
    SLUICE_STUN_EVENT_FAILED = 4,
} sluice_stun_event_type;

typedef struct sluice_stun_event {
    sluice_stun_event_type type;
    uint64_t user;
    uint8_t txid[SLUICE_STUN_TXID_LEN]; /* of the final request sent */
    sluice_addr server;
    int error_code;      /* STUN code for ERROR (and FAILED after a 401), else 0 */
    int reason;          /* sluice_err explaining FAILED/TIMEOUT, else 0 */
    uint64_t rtt_us;     /* SUCCESS/ERROR: from the last (re)transmission */
    /* SUCCESS/ERROR/FAILED: the response, owned by the client, valid until
     * the next call on the client. Parse it with sluice_stun_parse(). */
    const uint8_t *response;
    size_t response_len;
} sluice_stun_event;

/* Next event in FIFO order. false when none. Events are never overwritten:
 * each transaction produces exactly one, and its slot is held until then. */
SLUICE_API bool sluice_stun_client_poll_event(sluice_stun_client *c, sluice_stun_event *ev);

/* Current RTO estimate for a server in microseconds (RFC 8489 §6.2.1 with
 * the RFC 6298 computation); initial_rto_us when no sample is cached. */
SLUICE_API uint64_t sluice_stun_client_rto(const sluice_stun_client *c, const sluice_addr *server,
                                           uint64_t now_us);

/* ------------------------------------------------------------------------ */
/* Server helpers (stateless). */

/* Answer a Binding request (RFC 8489 §6.3.1, §7.3.1): success response with
 * XOR-MAPPED-ADDRESS = from, SOFTWARE (if given), MESSAGE-INTEGRITY when key
 * is given (the caller has authenticated the request with it), FINGERPRINT.
 * Returns the length written or a negative code. */
SLUICE_API int sluice_stun_binding_response(const sluice_stun_msg *req, const sluice_addr *from,
                                            const sluice_stun_key *key, const char *software,
                                            uint8_t *buf, size_t cap);

/* Answer a Binding request from an RFC 3489 client, one without the magic
 * cookie (RFC 8489 §11.2): a success response with MAPPED-ADDRESS = from and
 * the request's cookie field copied, or 420 for RESPONSE-ADDRESS,
 * CHANGE-REQUEST with a flag set and other unknown comprehension-required
 * attributes. For data that sluice_stun_parse() refused with
 * SLUICE_ERR_NOT_STUN. Returns the length written, SLUICE_ERR_NOT_STUN when
 * data is no such request, SLUICE_ERR_MALFORMED for a bad attribute list. */
SLUICE_API int sluice_stun_classic_binding_response(const uint8_t *data, size_t len,
                                                    const sluice_addr *from, uint8_t *buf,
                                                    size_t cap);

typedef struct sluice_stun_error_opts {
    const char *reason;         /* NULL: standard phrase */
    const char *realm;          /* 401/438: REALM */
    const char *nonce;          /* 401/438: NONCE */
    const uint16_t *password_algorithms; /* 401: PASSWORD-ALGORITHMS list */
    size_t n_password_algorithms;
    const sluice_stun_key *key; /* integrity on the response (not for 400/401/420 without auth) */
    const char *software;
    bool fingerprint;           /* add FINGERPRINT */
} sluice_stun_error_opts;

/* Build an error response to req. For 420, UNKNOWN-ATTRIBUTES lists
 * req->unknown. opts may be NULL. Returns the length or a negative code. */
SLUICE_API int sluice_stun_error_response(const sluice_stun_msg *req, int code,
                                          const sluice_stun_error_opts *opts, uint8_t *buf,
                                          size_t cap);

#ifdef __cplusplus
}
#endif
#endif
