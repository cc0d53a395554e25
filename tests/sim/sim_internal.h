/* SPDX-License-Identifier: MIT */
/* Simulator internals shared by sim.c (network, queue, run loop), nat.c
 * (realms, NAT mapping/filtering, routing) and servers.c. Not for scenarios:
 * they use sim.h only. */
#ifndef SLUICE_SIM_INTERNAL_H
#define SLUICE_SIM_INTERNAL_H

#include "sim.h"

#define SIM_NAME_LEN 32
#define SIM_NAT_MAX_PUBLIC 4
/* Remote endpoints remembered per mapping for filtering (RFC 4787 §5); when
 * full, the entry closest to expiry is replaced. */
#define SIM_NAT_MAX_PERMS 32

struct sim_host {
    char name[SIM_NAME_LEN];
    sim_link link;
    sim_endpoint_ops ops;
    void *ctx;
    bool has_endpoint;
    uint64_t deadline; /* cached ops.next_timeout(), SLUICE_NEVER when none */
    sluice_test_rng rng;
    sim_stats st;
};

/* An address owned by a host in a realm. */
struct sim_owned {
    sluice_addr ip; /* port 0 */
    int realm;
    int host;
};

struct sim_perm {
    sluice_addr remote; /* Y:y the internal endpoint sent to */
    uint64_t expires_us;
};

struct sim_mapping {
    bool used;
    sluice_addr internal; /* X:x, in the NAT's inside realm */
    sluice_addr remote;   /* Y:y of the datagram that created it (ADM/APDM key) */
    sluice_addr external; /* X1':x1', in the parent realm */
    uint64_t expires_us;
    struct sim_perm perm[SIM_NAT_MAX_PERMS];
};

struct sim_realm {
    int parent; /* -1 for the internet */
    /* the NAT whose inside this realm is (unused for realm 0) */
    sluice_addr pub[SIM_NAT_MAX_PUBLIC];
    size_t n_pub;
    sim_nat_config cfg;
    struct sim_mapping *map; /* cfg.max_mappings entries */
    size_t n_live;
    sim_nat_stats st;
};

enum { PKT_ROUTE = 1, PKT_DELIVER = 2 };

/* A datagram in flight. At PKT_ROUTE it has crossed the sender's link and
 * waits to be routed from realm; at PKT_DELIVER it has been routed (src and
 * dst as the receiver sees them) and waits at the receiver's link end. */
struct sim_pkt {
    uint64_t time_us;
    uint64_t seq;
    int stage;
    int src_host, dst_host;
    int realm;
    sluice_addr src, dst;
    size_t len;
    uint8_t *data; /* max_datagram bytes in net->pool */
};

struct sim_net {
    sim_net_config cfg;
    uint64_t now_us;
    uint64_t seq;
    sluice_test_rng rng; /* links and NAT port choices */

    struct sim_host *hosts;
    size_t n_hosts;
    struct sim_owned *addrs;
    size_t n_addrs;
    struct sim_realm *realms;
    size_t n_realms;

    struct sim_pkt *pkts; /* max_in_flight slots */
    uint32_t *free_slots; /* stack of free slot indices */
    size_t n_free;
    uint32_t *heap; /* slot indices, min-heap on (time_us, seq) */
    size_t n_heap;
    uint8_t *pool;

    sim_stats st;
    uint64_t hash;
    sim_trace_fn trace;
    void *trace_ctx;
};

/* sim.c */
uint64_t sim_rand(sim_net *net);
/* True with probability p (p <= 0: never, p >= 1: always). */
bool sim_chance(sim_net *net, double p);
void sim_count_drop(sim_net *net, int host, sim_drop_reason r);
void sim_hash_event(sim_net *net, int kind, const sluice_addr *a, const sluice_addr *b,
                    const uint8_t *data, size_t len);
void sim_tracef(sim_net *net, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "1.2.3.4:5" into buf (SLUICE_ADDR_STRLEN). */
const char *sim_fmt(const sluice_addr *a, char *buf);
/* The host owning ip in realm, or -1. */
int sim_owner(const sim_net *net, int realm, const sluice_addr *ip);

/* nat.c */
void sim_realms_free(sim_net *net);
/* Route p (stage PKT_ROUTE) from p->realm: translate and filter through
 * NATs, set p->src/p->dst as the receiver will see them and p->dst_host.
 * Returns -1 when routed, else the sim_drop_reason. */
int sim_route(sim_net *net, struct sim_pkt *p);
/* Is ip a NAT public address in realm? */
bool sim_is_nat_public(const sim_net *net, int realm, const sluice_addr *ip);

/* servers.c uses the endpoint table to find its own servers. */
const sim_endpoint_ops *sim_host_endpoint(const sim_net *net, int host, void **ctx);

#endif
