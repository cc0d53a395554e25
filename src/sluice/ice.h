/* SPDX-License-Identifier: MIT */
/* sluice ICE agent, sans-IO (RFC 8445 full agent, RFC 8838 trickle, RFC
 * 7675 consent freshness, RFC 8421 dual-stack preferences). The driver owns
 * the sockets ("bases") and the clock; the agent decides what to send from
 * which base to where, and when. docs/ice.md has a full example. */
#ifndef SLUICE_ICE_H
#define SLUICE_ICE_H

#include "sluice/turn_client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sluice_ice_agent sluice_ice_agent;

/* ------------------------------------------------------------------------ */
/* Candidates (RFC 8445 §5.1, SDP syntax of RFC 8839 §5.1). */

typedef enum {
    SLUICE_ICE_CAND_HOST = 0,
    SLUICE_ICE_CAND_SRFLX = 1,
    SLUICE_ICE_CAND_PRFLX = 2,
    SLUICE_ICE_CAND_RELAY = 3,
} sluice_ice_cand_type;

#define SLUICE_ICE_FOUNDATION_MAX 32 /* RFC 8839 §5.1: 1*32 ice-char */
#define SLUICE_ICE_UFRAG_MAX 256     /* RFC 8839 §5.4: 4..256 ice-chars */
#define SLUICE_ICE_PWD_MAX 256       /* RFC 8839 §5.4: 22..256 ice-chars */
#define SLUICE_ICE_CANDIDATE_TEXT_MAX 256

typedef struct sluice_ice_candidate {
    char foundation[SLUICE_ICE_FOUNDATION_MAX + 1];
    uint16_t component;      /* 1..256 */
    sluice_transport transport; /* UDP (TCP candidates, RFC 6544, are refused for now) */
    uint32_t priority;
    sluice_addr addr;
    sluice_ice_cand_type type;
    sluice_addr related;     /* raddr/rport; family SLUICE_AF_NONE when absent */
} sluice_ice_candidate;

/* Parse an SDP candidate attribute: "candidate:..." with or without a
 * leading "a=", trailing CR/LF allowed; unknown extension attributes are
 * skipped (RFC 8839 §5.1). Returns 0, SLUICE_ERR_MALFORMED, or
 * SLUICE_ERR_UNSUPPORTED (a transport other than UDP, or an FQDN/mDNS
 * ".local" address, which the core never resolves). */
SLUICE_API int sluice_ice_candidate_parse(sluice_ice_candidate *c, const char *text);
/* Format as "candidate:FOUNDATION COMPONENT udp PRIORITY ADDR PORT typ TYPE
 * [raddr A rport P]". Returns the length or SLUICE_ERR_NOSPACE. */
SLUICE_API int sluice_ice_candidate_format(const sluice_ice_candidate *c, char *buf, size_t cap);
/* RFC 8445 §5.1.2.1: (2^24)*type_pref + (2^8)*local_pref + (256 - component). */
SLUICE_API uint32_t sluice_ice_priority(sluice_ice_cand_type type, uint16_t local_pref,
                                        uint16_t component);
SLUICE_API const char *sluice_ice_cand_type_name(sluice_ice_cand_type t);

/* ------------------------------------------------------------------------ */
/* Configuration. */

typedef struct sluice_ice_config {
    /* Initial role (RFC 8445 §6.1.1). Role conflicts are resolved on the
     * wire (§7.3.1.1) and reported with SLUICE_ICE_EVENT_ROLE. */
    bool controlling;
    /* Pacing interval Ta between new checks and gathering transactions
     * (RFC 8445 §14.2: default 50 ms; at least 5 ms). */
    uint64_t ta_us;
    /* Tables, all allocated at creation (RFC 8445 §6.1.2.5: 100 pairs). */
    size_t max_streams;           /* default 4, at most 64 */
    size_t max_components;        /* per stream, default 2, at most 256 */
    size_t max_bases;             /* per component, default 8, at most 64 */
    size_t max_remote_candidates; /* per stream, default 64, at most 1000 */
    size_t max_pairs;             /* per stream, default 100, at most 1000 */
    size_t max_events;            /* default 256 */
    /* Connectivity-check retransmissions (RFC 8489 Rc, default 7) and the
     * largest RTO between them (default 3 s). The first RTO follows RFC
     * 8445 §14.3 (max(500 ms, Ta * checks outstanding)) unless
     * check_initial_rto_us is set. */
    unsigned check_rc;
    uint64_t check_max_rto_us;
    uint64_t check_initial_rto_us;
    /* Controlling agent: after the first valid pair of a component, how
     * long to wait for a better pair to succeed before nominating the best
     * valid one (default 250 ms; nominates at once when no higher-priority
     * pair is still being checked). */
    uint64_t nomination_wait_us;
    /* After end-of-candidates and every pair failed, or this long with no
     * valid pair at all (default 30 s; 0: never), the stream fails. */
    uint64_t failure_timeout_us;
    /* RFC 7675: consent checks every consent_interval_us randomised to
     * [0.8, 1.2] of it (default 5 s), consent lost after consent_timeout_us
     * without a response (default 30 s). */
    uint64_t consent_interval_us;
    uint64_t consent_timeout_us;
    /* Keepalive for pairs carrying no media (RFC 8445 §11, default 15 s);
     * consent checks count as keepalives. */
    uint64_t keepalive_us;
    /* SOFTWARE in requests (NULL: none). Copied. */
    const char *software;
    sluice_rng rng;
    sluice_allocator alloc;
} sluice_ice_config;

SLUICE_API void sluice_ice_config_init(sluice_ice_config *cfg);

/* Create an agent. Every table is allocated here (TURN clients are created
 * when gathering starts on a base). Returns NULL and sets *err (may be
 * NULL). */
SLUICE_API sluice_ice_agent *sluice_ice_agent_new(const sluice_ice_config *cfg, int *err);
SLUICE_API void sluice_ice_agent_free(sluice_ice_agent *a);

/* A TURN server to gather relayed candidates from (RFC 8445 §5.1.1.2).
 * One allocation per (server, base of the server's family). The relayed
 * address is UDP whatever the transport to the server (RFC 8656 §3.1).
 * Over TCP and TLS ("turn:...?transport=tcp", "turns:", RFC 7065) the
 * driver carries a byte stream from the base's IP to the server: see
 * "Streams to TURN servers" below. Strings are copied. Zero-initialise
 * the struct: a zero field keeps its default. */
typedef struct sluice_ice_turn_server {
    sluice_addr server;
    sluice_transport transport; /* UDP, TCP or TLS */
    const char *username;
    const char *password;
    /* TLS: the name sent as SNI and checked against the certificate (a DNS
     * name or an IP literal, at most 255 bytes). NULL: the server's IP. */
    const char *server_name;
    /* TLS: CA bundle (PEM) to verify the server with. NULL: the system
     * store. Read when gathering starts on a base. */
    const char *ca_file;
    /* TLS: do not verify the server certificate (tests only). The zero
     * default verifies. */
    bool tls_insecure;
} sluice_ice_turn_server;

/* Servers apply to every stream and base; add them before gathering.
 * Relayed candidates rank UDP above TCP above TLS on the same base.
 * Returns 0, SLUICE_ERR_FULL (8 of each), SLUICE_ERR_INVALID (bad address,
 * transport or name), SLUICE_ERR_NOMEM. */
SLUICE_API int sluice_ice_agent_add_stun_server(sluice_ice_agent *a, const sluice_addr *server);
SLUICE_API int sluice_ice_agent_add_turn_server(sluice_ice_agent *a,
                                                const sluice_ice_turn_server *server);
/* Only relayed candidates are offered and paired (a "relay" policy). */
SLUICE_API void sluice_ice_agent_set_relay_only(sluice_ice_agent *a, bool relay_only);

/* A stream of n_components (1..max_components) components. Returns the
 * stream id (>= 1) or a negative code. Local credentials are generated. */
SLUICE_API int sluice_ice_agent_add_stream(sluice_ice_agent *a, unsigned n_components);
/* Local ICE credentials of a stream (NUL-terminated, owned by the agent). */
SLUICE_API int sluice_ice_agent_local_credentials(const sluice_ice_agent *a, int stream,
                                                  const char **ufrag, const char **pwd);
/* Replace the generated local credentials (RFC 8839 §5.4 ice-chars; ufrag
 * 4..64, pwd 22..128 characters), for applications that choose their own
 * (webrtcbin). Set them before the remote side sees the old ones: checks
 * carrying the old ones are rejected. Copied. Returns 0, SLUICE_ERR_INVALID,
 * SLUICE_ERR_NOT_FOUND. */
SLUICE_API int sluice_ice_agent_set_local_credentials(sluice_ice_agent *a, int stream,
                                                      const char *ufrag, const char *pwd);
/* Remote credentials (RFC 8839 §5.4 syntax checked). May come before or
 * after remote candidates; checks wait for them. */
SLUICE_API int sluice_ice_agent_set_remote_credentials(sluice_ice_agent *a, uint64_t now_us,
                                                       int stream, const char *ufrag,
                                                       const char *pwd);
/* The remote agent is ICE-lite (RFC 8445 §2.5): this agent takes the
 * controlling role (§6.1.1) and keeps it in role conflicts: a 487 answer
 * from the lite peer makes it check again, not switch; a request claiming
 * the controlling role is answered with 487. Checks are still answered
 * (§7.3). */
SLUICE_API void sluice_ice_agent_set_remote_lite(sluice_ice_agent *a, bool lite);
SLUICE_API int sluice_ice_agent_set_role(sluice_ice_agent *a, bool controlling);
SLUICE_API bool sluice_ice_agent_controlling(const sluice_ice_agent *a);

/* A local socket the driver owns, bound to addr (a specific address, not a
 * wildcard) for stream/component. The agent offers it as a host candidate
 * (RFC 8421 local preferences: IPv6 first, interleaved with IPv4) and
 * gathers server-reflexive and relayed candidates from it. Returns 0,
 * SLUICE_ERR_FULL, SLUICE_ERR_INVALID, SLUICE_ERR_NOT_FOUND (stream). */
SLUICE_API int sluice_ice_agent_add_base(sluice_ice_agent *a, uint64_t now_us, int stream,
                                         unsigned component, const sluice_addr *addr);
/* Start gathering on every stream (host candidates at once, then server
 * reflexive and relayed ones paced by Ta). LOCAL_CANDIDATE events trickle
 * out as candidates appear, then GATHERING_DONE per stream. */
SLUICE_API int sluice_ice_agent_gather(sluice_ice_agent *a, uint64_t now_us);

/* A remote candidate (trickled or from the SDP). Pairs form at once.
 * Returns 0, SLUICE_ERR_FULL (max_remote_candidates: ignored, counted),
 * SLUICE_ERR_INVALID, SLUICE_ERR_NOT_FOUND (stream or component). A
 * duplicate is ignored (0). */
SLUICE_API int sluice_ice_agent_add_remote_candidate(sluice_ice_agent *a, uint64_t now_us,
                                                     int stream, const sluice_ice_candidate *c);
/* The remote side sent end-of-candidates (RFC 8838 §13). */
SLUICE_API int sluice_ice_agent_end_of_candidates(sluice_ice_agent *a, uint64_t now_us,
                                                  int stream);
/* ICE restart (RFC 8445 §9): new local credentials; remote credentials and
 * candidates are forgotten until new ones are given; media keeps the
 * current route until a new pair is selected. */
SLUICE_API int sluice_ice_agent_restart(sluice_ice_agent *a, uint64_t now_us, int stream);

/* ------------------------------------------------------------------------ */
/* The core contract (design.md). */

/* Media for the application, a view into the datagram (no copy). */
typedef struct sluice_ice_media {
    int stream;
    unsigned component;
    sluice_addr from;         /* the remote candidate's address */
    const uint8_t *data;
    size_t len;
} sluice_ice_media;

/* A datagram that arrived on the base `local` from `remote`. STUN for the
 * agent (checks, answers, TURN control) is consumed (returns 0). Media —
 * including media relayed through TURN, unwrapped here — returns 1 with
 * *media set; 0 also when dropped (unknown base, no consent). Negative on
 * bad arguments. */
SLUICE_API int sluice_ice_agent_handle_datagram(sluice_ice_agent *a, uint64_t now_us,
                                                const sluice_addr *local,
                                                const sluice_addr *remote, const uint8_t *data,
                                                size_t len, sluice_ice_media *media);
SLUICE_API void sluice_ice_agent_handle_timeout(sluice_ice_agent *a, uint64_t now_us);
SLUICE_API uint64_t sluice_ice_agent_next_timeout(const sluice_ice_agent *a);
/* Next bytes to send: meta->source is the base to send from. With
 * meta->transport UDP they are one datagram to meta->destination; with TCP
 * or TLS they are the next bytes of the stream from that base to the TURN
 * server meta->destination (see below). Returns the length, 0 when none,
 * SLUICE_ERR_NOSPACE (kept; 2048 bytes suffice, TLS output is split to
 * fit). */
SLUICE_API int sluice_ice_agent_poll_transmit(sluice_ice_agent *a, uint64_t now_us, uint8_t *buf,
                                              size_t cap, sluice_transmit *meta);

/* Streams to TURN servers (TCP, or TLS inside the agent: RFC 8656 §3.1).
 * A stream is named by (base, server, transport), as in a transmit:
 * - Opening: the first transmit with meta->transport TCP or TLS for a
 *   (source, destination) pair means "connect a TCP stream from the
 *   base's IP (port 0: any) to destination". The driver queues the bytes
 *   while connecting and writes every later transmit for the same triple
 *   on it, in order (TLS records are already encrypted: for the driver TLS
 *   is TCP). A base may have a UDP and a TCP allocation on the same server
 *   address: they are different streams.
 * - Reading: every chunk read from the stream goes to
 *   sluice_ice_agent_handle_stream(), in order, split anywhere.
 * - Closing: when the connection fails (refused, reset, EOF, the driver's
 *   own write queue overflowing), call sluice_ice_agent_handle_stream_closed().
 *   When the agent no longer needs a stream (its allocation failed or was
 *   lost, or the server redirected it elsewhere) it emits
 *   SLUICE_ICE_EVENT_CLOSE_STREAM; close it then, without calling
 *   handle_stream_closed. Closing a stream deletes its allocation (RFC 8656
 *   §3.1). sluice_ice_agent_free() emits nothing: close every stream. */

/* Bytes read from the stream (base, server, transport TCP or TLS). STUN
 * answers and relayed connectivity checks are consumed. Returns 1 with
 * *media set when the bytes completed a datagram of media relayed from the
 * peer; a chunk may complete several: call again with data NULL and len 0
 * until it returns 0 to get the others. *media is a view into the agent,
 * valid until the next call on the agent. Returns 0 when nothing (more) is
 * for the application; SLUICE_ERR_NOT_FOUND when no allocation uses this
 * stream (any more: close it); a negative code when the bytes broke the
 * stream — SLUICE_ERR_MALFORMED (neither STUN nor ChannelData, RFC 8656
 * §12.5), a TLS failure (SLUICE_ERR_CRYPTO, SLUICE_ERR_AUTH for a
 * certificate that does not verify, SLUICE_ERR_STATE when the server
 * closed the TLS session): the allocation is gone, with SERVER_ERROR and
 * CLOSE_STREAM events; SLUICE_ERR_INVALID for bad arguments. Feed chunks
 * of at most 64 KiB and drain them: what one such chunk carries always fits
 * (256 KiB per stream allocation; empty datagrams aside); media beyond that
 * is dropped and counted in stats.media_dropped. */
SLUICE_API int sluice_ice_agent_handle_stream(sluice_ice_agent *a, uint64_t now_us,
                                              const sluice_addr *base, const sluice_addr *server,
                                              sluice_transport transport, const uint8_t *data,
                                              size_t len, sluice_ice_media *media);
/* The stream (base, server, transport) failed or closed. Its allocation is
 * gone (RFC 8656 §3.1): a SERVER_ERROR event; its relayed candidate is
 * withdrawn (its pairs fail, it is not offered again); a selected pair on
 * it loses consent at once (CONSENT_LOST, state disconnected: RFC 8445 §9
 * restart to recover — a restart allocates again on a lost allocation's
 * server). Returns 0, SLUICE_ERR_NOT_FOUND (no allocation uses it),
 * SLUICE_ERR_INVALID. */
SLUICE_API int sluice_ice_agent_handle_stream_closed(sluice_ice_agent *a, uint64_t now_us,
                                                     const sluice_addr *base,
                                                     const sluice_addr *server,
                                                     sluice_transport transport);

typedef enum {
    SLUICE_ICE_NEW = 0,
    SLUICE_ICE_CHECKING = 1,
    SLUICE_ICE_CONNECTED = 2,  /* every component has a selected pair */
    SLUICE_ICE_COMPLETED = 3,  /* ... and nothing is left to check */
    SLUICE_ICE_FAILED = 4,
    SLUICE_ICE_DISCONNECTED = 5, /* consent lost on a selected pair */
} sluice_ice_state;
SLUICE_API const char *sluice_ice_state_name(sluice_ice_state s);

typedef enum {
    SLUICE_ICE_EVENT_LOCAL_CANDIDATE = 1, /* stream, candidate */
    SLUICE_ICE_EVENT_GATHERING_DONE = 2,  /* stream */
    SLUICE_ICE_EVENT_STATE = 3,           /* stream, state */
    SLUICE_ICE_EVENT_SELECTED_PAIR = 4,   /* stream, component, local, remote */
    SLUICE_ICE_EVENT_CONSENT_LOST = 5,    /* stream, component, local, remote */
    SLUICE_ICE_EVENT_ROLE = 6,            /* controlling: the new role */
    SLUICE_ICE_EVENT_SERVER_ERROR = 7,    /* server, error_code, reason, text (TURN: base, transport) */
    SLUICE_ICE_EVENT_REMOTE_PRFLX = 8,    /* stream, remote: a learned candidate */
    SLUICE_ICE_EVENT_CLOSE_STREAM = 9,    /* base, server, transport: close this stream */
} sluice_ice_event_type;

typedef struct sluice_ice_event {
    sluice_ice_event_type type;
    int stream;
    unsigned component;
    sluice_ice_state state;
    bool controlling;
    sluice_ice_candidate candidate; /* LOCAL_CANDIDATE, REMOTE_PRFLX */
    sluice_ice_candidate local, remote; /* SELECTED_PAIR, CONSENT_LOST */
    sluice_addr server;
    int error_code;
    int reason;
    char text[96];
    sluice_addr base;           /* SERVER_ERROR (TURN), CLOSE_STREAM */
    sluice_transport transport; /* ... and the transport to the server */
} sluice_ice_event;

/* Next event, FIFO, never overwritten. When the queue is full new events
 * are dropped and counted (stats.events_dropped). */
SLUICE_API bool sluice_ice_agent_poll_event(sluice_ice_agent *a, sluice_ice_event *ev);

/* ------------------------------------------------------------------------ */
/* The data path (design.md): the driver sends media itself. */

typedef enum {
    SLUICE_ICE_FRAMING_NONE = 0,    /* send the payload as is */
    SLUICE_ICE_FRAMING_CHANNEL = 1, /* 4-byte ChannelData header in headroom (and pad) */
    /* use sluice_ice_agent_send(): a Send indication until the channel is
     * bound, and always over TLS (it encrypts) */
    SLUICE_ICE_FRAMING_SEND = 2,
} sluice_ice_framing;

/* Where media goes. transport UDP: a datagram from base to destination.
 * TCP: bytes on the stream (base, destination, TCP) — ChannelData header,
 * payload and, with pad, zeros up to a multiple of 4 (RFC 8656 §12.5).
 * TLS: framing is SEND; write sluice_ice_agent_send()'s output on the
 * stream (base, destination, TLS). */
typedef struct sluice_ice_route {
    sluice_addr base;        /* local socket */
    sluice_addr destination; /* remote candidate, or the TURN server */
    sluice_transport transport;
    sluice_ice_framing framing;
    uint16_t channel;
    sluice_addr peer;        /* the remote candidate (differs from destination when relayed) */
    bool pad;                /* CHANNEL over TCP: pad to a multiple of 4 bytes */
} sluice_ice_route;

/* Current route of a component. Returns 0, SLUICE_ERR_STATE (no selected
 * pair yet, or consent lost: RFC 7675 §5.1 forbids sending),
 * SLUICE_ERR_NOT_FOUND. */
SLUICE_API int sluice_ice_agent_route(const sluice_ice_agent *a, int stream, unsigned component,
                                      sluice_ice_route *route);
/* Wrap and address one datagram of media for the component's selected
 * pair (copying): needed for FRAMING_SEND, works for every route. Over
 * TLS, output (this record and any earlier pending one) that does not fit
 * in cap comes later from poll_transmit. Returns the length written to out
 * and fills meta, or SLUICE_ERR_STATE, SLUICE_ERR_NOSPACE. */
SLUICE_API int sluice_ice_agent_send(sluice_ice_agent *a, uint64_t now_us, int stream,
                                     unsigned component, const uint8_t *data, size_t len,
                                     uint8_t *out, size_t cap, sluice_transmit *meta);
/* Media the driver sent itself on the route (for statistics and the
 * keepalive timer). */
SLUICE_API void sluice_ice_agent_count_sent(sluice_ice_agent *a, uint64_t now_us, int stream,
                                            unsigned component, uint64_t packets, uint64_t bytes);

/* ------------------------------------------------------------------------ */
/* Statistics. */

typedef struct sluice_ice_pair_stats {
    sluice_ice_candidate local, remote;
    const char *state;          /* "frozen", "waiting", "in-progress", "succeeded", "failed" */
    bool nominated, selected;
    uint64_t rtt_us;            /* last check round trip, 0 when none */
    uint64_t requests_sent, responses_received, requests_received, responses_sent;
    uint64_t consent_requests_sent;
    uint64_t packets_sent, bytes_sent, packets_received, bytes_received;
} sluice_ice_pair_stats;

/* Pairs of a stream, in priority order: fills at most cap, returns the
 * number of pairs (may exceed cap) or SLUICE_ERR_NOT_FOUND. */
SLUICE_API int sluice_ice_agent_pair_stats(const sluice_ice_agent *a, int stream,
                                           sluice_ice_pair_stats *out, size_t cap);

typedef struct sluice_ice_stats {
    uint64_t checks_sent, checks_received, checks_rejected; /* rejected: bad auth etc. */
    uint64_t role_conflicts;
    uint64_t remote_candidates_dropped; /* max_remote_candidates reached */
    uint64_t pairs_dropped;             /* max_pairs reached */
    uint64_t events_dropped;
    uint64_t media_dropped;             /* unknown source, no consent, stream queue full */
    uint64_t allocations_freed;         /* unused TURN allocations deleted after completion */
} sluice_ice_stats;
SLUICE_API void sluice_ice_agent_get_stats(const sluice_ice_agent *a, sluice_ice_stats *st);

SLUICE_API sluice_ice_state sluice_ice_agent_state(const sluice_ice_agent *a, int stream);

#ifdef __cplusplus
}
#endif
#endif
