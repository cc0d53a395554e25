/* SPDX-License-Identifier: MIT */
/* sluice network simulator: a deterministic, in-memory, discrete-event
 * network on virtual time with hosts, lossy links and RFC 4787 NATs, which
 * drives sans-IO endpoints (and sluice's own STUN/TURN server core) so whole
 * sessions run in milliseconds and replay bit for bit from a seed.
 * docs/simulator.md has the long version. */
#ifndef SLUICE_SIM_H
#define SLUICE_SIM_H

#include "sluice/sluice.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Model in one paragraph
 * ----------------------
 * Realms are address spaces. Realm 0 (SIM_REALM_INTERNET) is the internet;
 * every NAT creates a new realm (its inside) below a parent realm, and NATs
 * may nest. A host owns addresses in realms (several, IPv4 and IPv6; a
 * dual-stack host typically has an IPv4 address behind a NAT and an IPv6
 * address directly on the internet). A datagram sent by a host first
 * crosses the sender's access link (latency, jitter, loss, duplication,
 * reordering), is then routed instantly through NATs, and finally crosses
 * the receiver's access link before it is delivered. Destinations in the
 * sender's realm are reached directly; anything else goes up through the
 * realm's NAT (translation, RFC 4787 §4) and, when it targets a NAT's
 * public address, down through that NAT (filtering, RFC 4787 §5). Ports
 * are not bound: every datagram to an address a host owns is given to the
 * host's endpoint, which demultiplexes on the local address.
 *
 * Time is virtual microseconds starting at 0; nothing reads a clock.
 * Randomness comes only from the seed. Every table is sized at creation;
 * overflow is counted, never grown. Single-threaded.
 */

typedef struct sim_net sim_net;

/* The internet realm. NAT realms get ids 1, 2, ... in creation order. */
#define SIM_REALM_INTERNET 0

/* Simulator errors, below the SLUICE_ERR_* space. The simulator also
 * returns SLUICE_ERR_INVALID, SLUICE_ERR_FULL, SLUICE_ERR_NOSPACE and
 * SLUICE_ERR_NOMEM. */
enum {
    SIM_ERR_STEP_LIMIT = -100, /* a run call hit max_steps (a livelocked endpoint) */
    SIM_ERR_NOT_LOCAL = -101,  /* sim_send from an address the host does not own */
};

/* Name of a SIM_ERR_* or SLUICE_ERR_* code. Never NULL. */
const char *sim_strerror(int err);

/* ------------------------------------------------------------------------ */
/* The network */

typedef struct sim_net_config {
    uint64_t seed;        /* everything random derives from it */
    size_t max_in_flight; /* datagrams queued at once (default 4096) */
    size_t max_datagram;  /* bytes per datagram (default 2048, at most 65535) */
    size_t max_hosts;     /* default 64 */
    size_t max_realms;    /* including the internet: NATs + 1 (default 32) */
    size_t max_addrs;     /* addresses over all hosts (default 256) */
    uint64_t max_steps;   /* events processed per run call (default 1,000,000) */
} sim_net_config;

/* Fill cfg with the defaults above and seed. */
void sim_net_config_init(sim_net_config *cfg, uint64_t seed);

/* Create a network. Returns NULL on bad limits or allocation failure. */
sim_net *sim_net_new(uint64_t seed);
sim_net *sim_net_new_config(const sim_net_config *cfg);
/* Free the network, calling every endpoint's destroy (built-in servers). */
void sim_net_free(sim_net *net);

/* Current virtual time in microseconds. */
uint64_t sim_now(const sim_net *net);
uint64_t sim_seed(const sim_net *net);

/* ------------------------------------------------------------------------ */
/* Hosts, addresses and links */

/* Access-link properties of a host. A datagram from host A to host B
 * crosses A's link and then B's link: each adds latency_us, a uniform
 * 0..jitter_us, loses it with probability loss, duplicates it with
 * probability duplicate (the copy gets its own delay), and with probability
 * reorder holds it back reorder_delay_us more so later datagrams overtake
 * it. Probabilities are in [0, 1]. */
typedef struct sim_link {
    uint64_t latency_us;
    uint64_t jitter_us;
    double loss;
    double duplicate;
    double reorder;
    uint64_t reorder_delay_us;
} sim_link;

/* The default link: 5 ms latency, nothing else (so 10 ms host to host). */
void sim_link_init(sim_link *link);

/* Add a host (name copied, at most 31 bytes kept). Returns its id (>= 0,
 * dense from 0), or SLUICE_ERR_FULL / SLUICE_ERR_INVALID. */
int sim_host_add(sim_net *net, const char *name);

/* Give host the address ip (port ignored) in realm. An address is unique
 * within its realm (a NAT's public addresses included); the same private
 * address may exist in different realms. Returns 0, SLUICE_ERR_INVALID
 * (unknown host/realm, bad family, address taken) or SLUICE_ERR_FULL. */
int sim_host_add_addr(sim_net *net, int host, int realm, const sluice_addr *ip);

/* Replace a host's link properties. Returns 0 or SLUICE_ERR_INVALID. */
int sim_host_set_link(sim_net *net, int host, const sim_link *link);

/* Host id by name, or SLUICE_ERR_NOT_FOUND. */
int sim_host_find(const sim_net *net, const char *name);
const char *sim_host_name(const sim_net *net, int host);
/* The host's addresses (ports 0) in the order added; returns how many
 * there are (may exceed cap; only cap are written). realms may be NULL. */
size_t sim_host_addrs(const sim_net *net, int host, sluice_addr *out, int *realms, size_t cap);
/* Does host own ip (port ignored)? On true, *realm (may be NULL) says where. */
bool sim_host_owns(const sim_net *net, int host, const sluice_addr *ip, int *realm);

/* A per-host deterministic generator (seeded from the network seed and the
 * host id) for the sans-IO objects a host runs: transaction ids, ICE
 * tie-breakers, TURN nonce keys. Valid until sim_net_free(). */
sluice_rng sim_host_rng(sim_net *net, int host);

/* ------------------------------------------------------------------------ */
/* Endpoints */

/* What runs on a host. The simulator calls these from its run loop only;
 * inside them the endpoint sends with sim_send() (never re-entered: sends
 * are queued, at the earliest delivered later in the same instant).
 * - deliver: a datagram arrived at local (an address of the host, with the
 *   port it was sent to) from remote (as translated by NATs on the way).
 *   data is valid during the call only.
 * - timeout: the deadline from next_timeout has come (now >= it).
 * - next_timeout: the earliest deadline, SLUICE_NEVER for none. Read again
 *   after every call into this endpoint and at the start of every run
 *   call; if something else changes the endpoint between those, call
 *   sim_host_wake().
 * - destroy (may be NULL): called by sim_net_free() and when the endpoint
 *   is replaced; for endpoints the simulator owns. */
typedef struct sim_endpoint_ops {
    void (*deliver)(void *ctx, sim_net *net, uint64_t now, const sluice_addr *local,
                    const sluice_addr *remote, const uint8_t *data, size_t len);
    void (*timeout)(void *ctx, sim_net *net, uint64_t now);
    uint64_t (*next_timeout)(void *ctx);
    void (*destroy)(void *ctx);
} sim_endpoint_ops;

/* Install the endpoint of host (one per host; ops is copied, ctx borrowed
 * until replaced or sim_net_free()). ops NULL removes it. A datagram for a
 * host without an endpoint is dropped (SIM_DROP_NO_ENDPOINT). Returns 0 or
 * SLUICE_ERR_INVALID. */
int sim_host_set_endpoint(sim_net *net, int host, const sim_endpoint_ops *ops, void *ctx);

/* Re-read host's next_timeout (after changing its endpoint from outside a
 * callback while a run call is in progress, e.g. from done()). */
void sim_host_wake(sim_net *net, int host);

/* Send a datagram from host's address src_local (with the source port)
 * to dst. It leaves at now, which must not be before sim_now() (inside
 * callbacks it is the callback's now; outside, a later now schedules the
 * send). data is copied. Returns 0 when the datagram entered the network
 * (it may still be lost: see the stats), SIM_ERR_NOT_LOCAL when host does
 * not own src_local, SLUICE_ERR_NOSPACE when len > max_datagram,
 * SLUICE_ERR_FULL when the in-flight queue is full (counted),
 * SLUICE_ERR_INVALID for bad arguments (families of src_local and dst
 * differ, now in the past, unknown host). */
int sim_send(sim_net *net, int host, uint64_t now, const sluice_addr *src_local,
             const sluice_addr *dst, const uint8_t *data, size_t len);

/* ------------------------------------------------------------------------ */
/* NATs (IPv4, RFC 4787) */

/* RFC 4787 §4.1: which mappings an internal endpoint (X:x) gets. */
typedef enum {
    SIM_MAP_ENDPOINT_INDEPENDENT = 0,   /* one X1':x1' for every Y:y */
    SIM_MAP_ADDRESS_DEPENDENT = 1,      /* one per remote address Y */
    SIM_MAP_ADDRESS_PORT_DEPENDENT = 2, /* one per remote Y:y ("symmetric") */
} sim_nat_mapping;

/* RFC 4787 §5: which inbound datagrams to X1':x1' are let in. */
typedef enum {
    SIM_FILTER_ENDPOINT_INDEPENDENT = 0,   /* from anyone */
    SIM_FILTER_ADDRESS_DEPENDENT = 1,      /* from an address X has sent to */
    SIM_FILTER_ADDRESS_PORT_DEPENDENT = 2, /* from an address and port X has sent to */
} sim_nat_filtering;

/* The classic names (RFC 4787 §3 maps them). */
typedef enum {
    SIM_NAT_FULL_CONE = 0,       /* EIM + EIF */
    SIM_NAT_RESTRICTED_CONE = 1, /* EIM + ADF */
    SIM_NAT_PORT_RESTRICTED = 2, /* EIM + APDF */
    SIM_NAT_SYMMETRIC = 3,       /* APDM + APDF */
} sim_nat_type;

typedef struct sim_nat_config {
    sim_nat_mapping mapping;
    sim_nat_filtering filtering;
    /* RFC 4787 §6 (REQ-9): a datagram from inside to one of this NAT's own
     * mappings is looped back in, with the sender's external address as
     * its source, and filtered like any other inbound datagram. Off: it is
     * dropped (SIM_DROP_HAIRPIN). */
    bool hairpinning;
    /* RFC 4787 §4.3: idle time after which a mapping (and each filter
     * entry) expires, in microseconds; outbound traffic refreshes it
     * (REQ-6), inbound traffic only when inbound_refresh is set. Default
     * 120 s, the least REQ-5 allows. */
    uint64_t mapping_timeout_us;
    bool inbound_refresh;
    /* RFC 4787 §4.2.1: keep the internal port as the external port when it
     * is free; otherwise (and when false) pick a random free port in
     * port_min..port_max (default 1024..65535). */
    bool port_preservation;
    uint16_t port_min, port_max;
    /* Mappings at once (default 256, at most 65536); when full, a datagram
     * needing a new mapping is dropped (SIM_DROP_NAT_FULL). */
    size_t max_mappings;
} sim_nat_config;

/* Fill cfg for a classic NAT type: timeout 120 s, random ports, hairpinning
 * on, 256 mappings. */
void sim_nat_config_init(sim_nat_config *cfg, sim_nat_type type);

/* Add a NAT whose public side has the n_public IPv4 addresses public_ips
 * (ports ignored, 1..4 of them) in parent_realm; returns the id of the new
 * inside realm (> 0). With several public addresses, all mappings of one
 * internal address use the same public address (RFC 4787 REQ-2 "paired").
 * Returns SLUICE_ERR_INVALID (bad realm/addresses/config, address taken)
 * or SLUICE_ERR_FULL (max_realms). */
int sim_nat_add(sim_net *net, int parent_realm, const sluice_addr *public_ips, size_t n_public,
                const sim_nat_config *cfg);

/* The parent of realm (-1 for the internet or an unknown realm). */
int sim_realm_parent(const sim_net *net, int realm);

/* The live mapping the NAT of realm holds for internal (IP:port in realm)
 * towards remote (in the parent realm; for endpoint-independent mapping
 * any remote works). Returns 1 and sets *external, or 0. */
int sim_nat_mapping_lookup(const sim_net *net, int realm, const sluice_addr *internal,
                           const sluice_addr *remote, sluice_addr *external);

/* Forget every mapping of the NAT of realm at once, as a NAT reboot or a
 * change of public address would: later outbound traffic gets new
 * mappings (and, with random ports, new external ports). Returns the number
 * of live mappings dropped, or SLUICE_ERR_INVALID. */
int sim_nat_flush(sim_net *net, int realm);

typedef struct sim_nat_stats {
    uint64_t mappings; /* live now */
    uint64_t mappings_created;
    uint64_t mappings_expired; /* reclaimed after their timeout */
    uint64_t translated_out;   /* datagrams translated outbound */
    uint64_t translated_in;    /* datagrams let in */
    uint64_t filtered;         /* inbound datagrams refused (no mapping or filter) */
    uint64_t hairpinned;
    uint64_t table_full; /* datagrams dropped: no room for a mapping */
} sim_nat_stats;

/* Returns 0, or SLUICE_ERR_INVALID when realm is not a NAT realm. */
int sim_nat_get_stats(const sim_net *net, int realm, sim_nat_stats *st);

/* ------------------------------------------------------------------------ */
/* Running */

/* Process events in time order (datagram arrivals, endpoint deadlines)
 * until none is left before or at t_end, then set the clock to t_end.
 * Ties: datagrams before deadlines, datagrams in the order they were
 * queued, deadlines by host id. Returns 0, or SIM_ERR_STEP_LIMIT after
 * max_steps events (the clock stays at the last event). */
int sim_run_until(sim_net *net, uint64_t t_end);

/* Like sim_run_until(max_time) but stops as soon as done(ctx) is true
 * (checked first and after every event; done may be NULL). Returns 1 when
 * done, 0 at max_time, or SIM_ERR_STEP_LIMIT. */
int sim_run(sim_net *net, uint64_t max_time, bool (*done)(void *ctx), void *ctx);

/* ------------------------------------------------------------------------ */
/* Statistics and tracing */

/* Why a datagram was dropped. */
typedef enum {
    SIM_DROP_LOSS = 0,        /* link loss */
    SIM_DROP_FILTER = 1,      /* NAT inbound filter, or no mapping */
    SIM_DROP_NO_ROUTE = 2,    /* nobody owns the destination in reach */
    SIM_DROP_QUEUE_FULL = 3,  /* max_in_flight */
    SIM_DROP_HAIRPIN = 4,     /* hairpinning off */
    SIM_DROP_NAT_FULL = 5,    /* NAT mapping table full */
    SIM_DROP_NO_ENDPOINT = 6, /* the destination host has no endpoint */
    SIM_DROP_TOO_BIG = 7,     /* larger than max_datagram */
    SIM_DROP_N
} sim_drop_reason;

const char *sim_drop_name(sim_drop_reason r);

/* Counters. For a host: sent and dropped count datagrams it sent (drops
 * are charged to the sender, whatever the reason), delivered and
 * duplicated/reordered count what its endpoint received and what its link
 * did. For the network: totals. A duplicate is one more delivery. */
typedef struct sim_stats {
    uint64_t sent;
    uint64_t delivered;
    uint64_t duplicated;
    uint64_t reordered;
    uint64_t dropped[SIM_DROP_N];
} sim_stats;

void sim_net_get_stats(const sim_net *net, sim_stats *st);
/* Returns 0 or SLUICE_ERR_INVALID. */
int sim_host_get_stats(const sim_net *net, int host, sim_stats *st);

/* A 64-bit digest of everything that happened (each send, NAT mapping,
 * drop and delivery with its time, addresses and bytes), always kept:
 * equal seeds and inputs give equal digests. */
uint64_t sim_trace_hash(const sim_net *net);

/* Optional per-datagram trace (off by default): one NUL-terminated line per
 * send, drop, NAT mapping and delivery, e.g.
 * "1.005000 deliver 10.0.0.2:5000 <- 203.0.113.1:3478 len 20 host alice".
 * fn NULL turns it off. */
typedef void (*sim_trace_fn)(void *ctx, const char *line);
void sim_set_trace(sim_net *net, sim_trace_fn fn, void *ctx);

/* ------------------------------------------------------------------------ */
/* Built-in servers: sluice's TURN server core (which also answers STUN
 * Binding requests without credentials, RFC 8489 §6.3.1) as an endpoint.
 * Relay sockets opened by the core (OPEN_RELAY events) become live on the
 * host at once; datagrams to them go to the core's handle_peer. */

/* Defaults for a simulated TURN server on top of
 * sluice_turn_server_config_init(): realm "sim.test", the given relay IPs
 * (either may be NULL), a peer policy that allows the simulator's ranges
 * (documentation ranges, 10/8, 172.16/12, 192.168/16, 100.64/10,
 * 2001:db8::/32, fc00::/7) and small tables. Set users yourself. The rng
 * is left empty: sim_turn_server_add() gives the core the host's rng. */
void sim_turn_server_config_init(sluice_turn_server_config *cfg, const sluice_addr *relay_ip4,
                                 const sluice_addr *relay_ip6);

/* Run a TURN server on host listening (UDP) on the n_listen (1..4)
 * transport addresses listen, which the host must own, as must the relay
 * IPs of cfg. Installs the host's endpoint (owned by the simulator).
 * Returns 0, SLUICE_ERR_INVALID, SLUICE_ERR_NOMEM or the core's error. */
int sim_turn_server_add(sim_net *net, int host, const sluice_addr *listen, size_t n_listen,
                        const sluice_turn_server_config *cfg);

/* A STUN server: the same core with no users (Binding only). */
int sim_stun_server_add(sim_net *net, int host, const sluice_addr *listen, size_t n_listen);

/* The core behind host's server (for stats), or NULL. */
sluice_turn_server *sim_turn_server_core(sim_net *net, int host);

#ifdef __cplusplus
}
#endif
#endif
