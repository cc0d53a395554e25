/* SPDX-License-Identifier: MIT */
/* Built-in simulator endpoints: sluice's sans-IO TURN server core (which
 * also answers STUN Binding) driven like sluice-relay drives it, with relay
 * sockets that exist as soon as the core asks for them. */
#include "sim_internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_LISTEN 4

struct sim_server {
    sluice_turn_server *core;
    sim_net *net;
    int host;
    sluice_addr listen[MAX_LISTEN];
    size_t n_listen;
    sluice_addr *relays; /* open relay sockets */
    size_t n_relays, max_relays;
    uint64_t unbound; /* datagrams to a port nobody listens on */
    uint8_t buf[65536 + 64];
};

/* Ranges the simulator uses for addresses: the core denies private and
 * reserved classes by default (coturn CVE-2020-26262), so a simulated
 * relay must allow them explicitly. */
static const char *const sim_ranges[] = {
    "192.0.2.0/24",   "198.51.100.0/24", "203.0.113.0/24", "10.0.0.0/8", "172.16.0.0/12",
    "192.168.0.0/16", "100.64.0.0/10",   "2001:db8::/32",  "fc00::/7",
};
#define N_RANGES (sizeof sim_ranges / sizeof sim_ranges[0])
static sluice_turn_cidr sim_allow[N_RANGES];

void sim_turn_server_config_init(sluice_turn_server_config *cfg, const sluice_addr *relay_ip4,
                                 const sluice_addr *relay_ip6)
{
    sluice_turn_server_config_init(cfg);
    cfg->realm = "sim.test";
    cfg->software = "sluice-sim";
    if (relay_ip4)
        cfg->relay_ip4 = *relay_ip4;
    if (relay_ip6)
        cfg->relay_ip6 = *relay_ip6;
    /* The table is static and the core copies it: parse once. */
    if (!sim_allow[0].addr.family)
        for (size_t i = 0; i < N_RANGES; i++)
            sluice_turn_cidr_parse(&sim_allow[i], sim_ranges[i]);
    cfg->allow = sim_allow;
    cfg->n_allow = N_RANGES;
    cfg->max_allocations = 64;
    cfg->challenge_table_size = 64;
    /* Scenarios put many clients behind one NAT address. */
    cfg->challenges_per_s = 1000;
    cfg->challenge_burst = 1000;
}

static bool is_listen(const struct sim_server *s, const sluice_addr *a)
{
    for (size_t i = 0; i < s->n_listen; i++)
        if (sluice_addr_equal(&s->listen[i], a))
            return true;
    return false;
}

static bool is_relay(const struct sim_server *s, const sluice_addr *a)
{
    for (size_t i = 0; i < s->n_relays; i++)
        if (sluice_addr_equal(&s->relays[i], a))
            return true;
    return false;
}

/* Relay sockets first, then the STUN answers that may name them (the order
 * turn_server.h asks for). A relay "bind" fails only when our table is
 * full, which the core then handles as a failed bind. */
static void drain(struct sim_server *s, uint64_t now)
{
    sluice_turn_server_event ev;
    while (sluice_turn_server_poll_event(s->core, &ev)) {
        if (ev.type == SLUICE_TURN_SERVER_EVENT_OPEN_RELAY) {
            if (s->n_relays < s->max_relays && !is_relay(s, &ev.relay))
                s->relays[s->n_relays++] = ev.relay;
            else
                sluice_turn_server_relay_failed(s->core, now, &ev.relay);
        } else if (ev.type == SLUICE_TURN_SERVER_EVENT_CLOSE_RELAY) {
            for (size_t i = 0; i < s->n_relays; i++) {
                if (sluice_addr_equal(&s->relays[i], &ev.relay)) {
                    s->relays[i] = s->relays[--s->n_relays];
                    break;
                }
            }
        }
    }
    sluice_turn_server_transmit tx;
    int n;
    while ((n = sluice_turn_server_poll_transmit(s->core, now, s->buf, sizeof s->buf, &tx)) > 0)
        sim_send(s->net, s->host, now, &tx.flow.local, &tx.flow.client, s->buf, (size_t)n);
}

static void srv_deliver(void *ctx, sim_net *net, uint64_t now, const sluice_addr *local,
                        const sluice_addr *remote, const uint8_t *data, size_t len)
{
    struct sim_server *s = ctx;
    sluice_turn_server_transmit tx;
    if (is_listen(s, local)) {
        sluice_turn_server_flow flow = {
            .client = *remote, .local = *local, .transport = SLUICE_TRANSPORT_UDP};
        const uint8_t *payload;
        size_t plen;
        if (sluice_turn_server_handle_client(s->core, now, &flow, data, len, &tx, &payload,
                                             &plen) == 1)
            sim_send(net, s->host, now, &tx.relay, &tx.peer, payload, plen);
    } else if (is_relay(s, local)) {
        int n = sluice_turn_server_handle_peer(s->core, now, local, remote, data, len, s->buf,
                                               sizeof s->buf, &tx);
        if (n > 0)
            sim_send(net, s->host, now, &tx.flow.local, &tx.flow.client, s->buf, (size_t)n);
    } else {
        s->unbound++;
    }
    drain(s, now);
}

static void srv_timeout(void *ctx, sim_net *net, uint64_t now)
{
    struct sim_server *s = ctx;
    (void)net;
    sluice_turn_server_handle_timeout(s->core, now);
    drain(s, now);
}

static uint64_t srv_next_timeout(void *ctx)
{
    struct sim_server *s = ctx;
    return sluice_turn_server_next_timeout(s->core);
}

static void srv_destroy(void *ctx)
{
    struct sim_server *s = ctx;
    sluice_turn_server_free(s->core);
    free(s->relays);
    free(s);
}

static const sim_endpoint_ops server_ops = {
    .deliver = srv_deliver,
    .timeout = srv_timeout,
    .next_timeout = srv_next_timeout,
    .destroy = srv_destroy,
};

int sim_turn_server_add(sim_net *net, int host, const sluice_addr *listen, size_t n_listen,
                        const sluice_turn_server_config *cfg)
{
    if (!net || !listen || !n_listen || n_listen > MAX_LISTEN || !cfg)
        return SLUICE_ERR_INVALID;
    for (size_t i = 0; i < n_listen; i++)
        if (!sim_host_owns(net, host, &listen[i], NULL) || !listen[i].port)
            return SLUICE_ERR_INVALID;
    if ((cfg->relay_ip4.family && !sim_host_owns(net, host, &cfg->relay_ip4, NULL)) ||
        (cfg->relay_ip6.family && !sim_host_owns(net, host, &cfg->relay_ip6, NULL)))
        return SLUICE_ERR_INVALID;
    struct sim_server *s = calloc(1, sizeof *s);
    if (!s)
        return SLUICE_ERR_NOMEM;
    sluice_turn_server_config c = *cfg;
    if (!c.rng.fill)
        c.rng = sim_host_rng(net, host);
    /* one relay socket per family per allocation */
    s->max_relays = 2 * (c.max_allocations ? c.max_allocations : 1024);
    s->relays = calloc(s->max_relays, sizeof *s->relays);
    int err = SLUICE_ERR_NOMEM;
    if (s->relays)
        s->core = sluice_turn_server_new(&c, &err);
    if (!s->core) {
        free(s->relays);
        free(s);
        return err < 0 ? err : SLUICE_ERR_INVALID;
    }
    s->net = net;
    s->host = host;
    memcpy(s->listen, listen, n_listen * sizeof *listen);
    s->n_listen = n_listen;
    int rc = sim_host_set_endpoint(net, host, &server_ops, s);
    if (rc < 0)
        srv_destroy(s);
    return rc;
}

int sim_stun_server_add(sim_net *net, int host, const sluice_addr *listen, size_t n_listen)
{
    if (!net || !listen || !n_listen)
        return SLUICE_ERR_INVALID;
    /* The core needs one relay family; with no users nothing is ever
     * allocated, so only Binding is answered. */
    sluice_turn_server_config cfg;
    sim_turn_server_config_init(&cfg, listen[0].family == SLUICE_AF_INET ? &listen[0] : NULL,
                                listen[0].family == SLUICE_AF_INET6 ? &listen[0] : NULL);
    cfg.max_allocations = 1;
    return sim_turn_server_add(net, host, listen, n_listen, &cfg);
}

sluice_turn_server *sim_turn_server_core(sim_net *net, int host)
{
    void *ctx;
    const sim_endpoint_ops *ops = sim_host_endpoint(net, host, &ctx);
    if (!ops || ops->deliver != srv_deliver)
        return NULL;
    return ((struct sim_server *)ctx)->core;
}
