/* SPDX-License-Identifier: MIT */
/* Simulator core: the network object, hosts and their links, the bounded
 * queue of datagrams in flight, the discrete-event run loop on virtual
 * time, statistics and the trace. Routing through NATs is in nat.c. */
#include "sim_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EV_SEND = 1, EV_DROP = 2, EV_DELIVER = 3 };

/* ------------------------------------------------------------------------ */
/* Randomness */

uint64_t sim_rand(sim_net *net)
{
    uint8_t b[8];
    sluice_test_rng_fill(&net->rng, b, sizeof b);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

bool sim_chance(sim_net *net, double p)
{
    if (!(p > 0.0))
        return false;
    if (p >= 1.0)
        return true;
    /* 53 random bits as a double in [0, 1): exact, so runs replay. */
    double u = (double)(sim_rand(net) >> 11) * (1.0 / 9007199254740992.0);
    return u < p;
}

static uint64_t uniform(sim_net *net, uint64_t max_inclusive)
{
    if (!max_inclusive)
        return 0;
    return sim_rand(net) % (max_inclusive + 1);
}

/* ------------------------------------------------------------------------ */
/* Errors, names, formatting */

const char *sim_strerror(int err)
{
    switch (err) {
    case SIM_ERR_STEP_LIMIT:
        return "simulation step limit reached";
    case SIM_ERR_NOT_LOCAL:
        return "source address not owned by the host";
    default:
        return sluice_strerror(err);
    }
}

const char *sim_drop_name(sim_drop_reason r)
{
    static const char *const names[SIM_DROP_N] = {
        "loss",    "nat-filter", "no-route",    "queue-full",
        "hairpin", "nat-full",   "no-endpoint", "too-big",
    };
    return (unsigned)r < SIM_DROP_N ? names[r] : "unknown";
}

const char *sim_fmt(const sluice_addr *a, char *buf)
{
    if (sluice_addr_format(a, true, buf, SLUICE_ADDR_STRLEN) < 0)
        snprintf(buf, SLUICE_ADDR_STRLEN, "?");
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Trace and digest */

static void hash_bytes(sim_net *net, const void *p, size_t n)
{
    /* FNV-1a, 64 bit */
    const uint8_t *b = p;
    uint64_t h = net->hash;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    net->hash = h;
}

static void hash_addr(sim_net *net, const sluice_addr *a)
{
    uint8_t b[19];
    b[0] = a->family;
    memcpy(b + 1, a->ip, 16);
    b[17] = (uint8_t)(a->port >> 8);
    b[18] = (uint8_t)a->port;
    hash_bytes(net, b, sizeof b);
}

void sim_hash_event(sim_net *net, int kind, const sluice_addr *a, const sluice_addr *b,
                    const uint8_t *data, size_t len)
{
    uint8_t hdr[17];
    for (int i = 0; i < 8; i++) {
        hdr[i] = (uint8_t)(net->now_us >> (56 - 8 * i));
        hdr[8 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    hdr[16] = (uint8_t)kind;
    hash_bytes(net, hdr, sizeof hdr);
    if (a)
        hash_addr(net, a);
    if (b)
        hash_addr(net, b);
    if (data)
        hash_bytes(net, data, len);
}

void sim_tracef(sim_net *net, const char *fmt, ...)
{
    if (!net->trace)
        return;
    char line[512];
    int n = snprintf(line, sizeof line, "%llu.%06llu ", (unsigned long long)(net->now_us / 1000000),
                     (unsigned long long)(net->now_us % 1000000));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    net->trace(net->trace_ctx, line);
}

void sim_set_trace(sim_net *net, sim_trace_fn fn, void *ctx)
{
    net->trace = fn;
    net->trace_ctx = ctx;
}

uint64_t sim_trace_hash(const sim_net *net)
{
    return net->hash;
}

/* ------------------------------------------------------------------------ */
/* The network */

void sim_net_config_init(sim_net_config *cfg, uint64_t seed)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = seed;
    cfg->max_in_flight = 4096;
    cfg->max_datagram = 2048;
    cfg->max_hosts = 64;
    cfg->max_realms = 32;
    cfg->max_addrs = 256;
    cfg->max_steps = 1000000;
}

sim_net *sim_net_new(uint64_t seed)
{
    sim_net_config cfg;
    sim_net_config_init(&cfg, seed);
    return sim_net_new_config(&cfg);
}

sim_net *sim_net_new_config(const sim_net_config *cfg)
{
    if (!cfg || !cfg->max_in_flight || cfg->max_in_flight > (1u << 24) || !cfg->max_datagram ||
        cfg->max_datagram > 65535 || !cfg->max_hosts || cfg->max_hosts > 65536 ||
        !cfg->max_realms || cfg->max_realms > 4096 || !cfg->max_addrs || cfg->max_addrs > 65536 ||
        !cfg->max_steps)
        return NULL;
    sim_net *net = calloc(1, sizeof *net);
    if (!net)
        return NULL;
    net->cfg = *cfg;
    net->hosts = calloc(cfg->max_hosts, sizeof *net->hosts);
    net->addrs = calloc(cfg->max_addrs, sizeof *net->addrs);
    net->realms = calloc(cfg->max_realms, sizeof *net->realms);
    net->pkts = calloc(cfg->max_in_flight, sizeof *net->pkts);
    net->free_slots = calloc(cfg->max_in_flight, sizeof *net->free_slots);
    net->heap = calloc(cfg->max_in_flight, sizeof *net->heap);
    net->pool = malloc(cfg->max_in_flight * cfg->max_datagram);
    if (!net->hosts || !net->addrs || !net->realms || !net->pkts || !net->free_slots ||
        !net->heap || !net->pool) {
        sim_net_free(net);
        return NULL;
    }
    for (size_t i = 0; i < cfg->max_in_flight; i++) {
        net->pkts[i].data = net->pool + i * cfg->max_datagram;
        /* pop order 0, 1, 2, ...: slots are used deterministically */
        net->free_slots[i] = (uint32_t)(cfg->max_in_flight - 1 - i);
    }
    net->n_free = cfg->max_in_flight;
    sluice_test_rng_init(&net->rng, cfg->seed);
    net->realms[0].parent = -1;
    net->n_realms = 1;
    net->hash = 0xcbf29ce484222325ull;
    return net;
}

void sim_net_free(sim_net *net)
{
    if (!net)
        return;
    for (size_t i = 0; i < net->n_hosts; i++) {
        struct sim_host *h = &net->hosts[i];
        if (h->has_endpoint && h->ops.destroy)
            h->ops.destroy(h->ctx);
    }
    if (net->realms)
        sim_realms_free(net);
    free(net->hosts);
    free(net->addrs);
    free(net->realms);
    free(net->pkts);
    free(net->free_slots);
    free(net->heap);
    free(net->pool);
    free(net);
}

uint64_t sim_now(const sim_net *net)
{
    return net->now_us;
}

uint64_t sim_seed(const sim_net *net)
{
    return net->cfg.seed;
}

/* ------------------------------------------------------------------------ */
/* Hosts */

void sim_link_init(sim_link *link)
{
    memset(link, 0, sizeof *link);
    link->latency_us = 5000;
}

static struct sim_host *host_get(const sim_net *net, int host)
{
    if (!net || host < 0 || (size_t)host >= net->n_hosts)
        return NULL;
    return &net->hosts[host];
}

int sim_host_add(sim_net *net, const char *name)
{
    if (!net || !name)
        return SLUICE_ERR_INVALID;
    if (net->n_hosts >= net->cfg.max_hosts)
        return SLUICE_ERR_FULL;
    int id = (int)net->n_hosts++;
    struct sim_host *h = &net->hosts[id];
    snprintf(h->name, sizeof h->name, "%s", name);
    sim_link_init(&h->link);
    h->deadline = SLUICE_NEVER;
    /* An independent stream per host: adding a host or an event elsewhere
     * does not shift what another host draws. */
    sluice_test_rng_init(&h->rng, net->cfg.seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(id + 1)));
    return id;
}

int sim_owner(const sim_net *net, int realm, const sluice_addr *ip)
{
    for (size_t i = 0; i < net->n_addrs; i++)
        if (net->addrs[i].realm == realm && sluice_addr_equal_ip(&net->addrs[i].ip, ip))
            return net->addrs[i].host;
    return -1;
}

int sim_host_add_addr(sim_net *net, int host, int realm, const sluice_addr *ip)
{
    if (!host_get(net, host) || !ip || realm < 0 || (size_t)realm >= net->n_realms ||
        (ip->family != SLUICE_AF_INET && ip->family != SLUICE_AF_INET6))
        return SLUICE_ERR_INVALID;
    if (sim_owner(net, realm, ip) >= 0 || sim_is_nat_public(net, realm, ip))
        return SLUICE_ERR_INVALID;
    if (net->n_addrs >= net->cfg.max_addrs)
        return SLUICE_ERR_FULL;
    struct sim_owned *o = &net->addrs[net->n_addrs++];
    o->ip = *ip;
    o->ip.port = 0;
    o->realm = realm;
    o->host = host;
    return 0;
}

int sim_host_set_link(sim_net *net, int host, const sim_link *link)
{
    struct sim_host *h = host_get(net, host);
    if (!h || !link || link->loss < 0 || link->duplicate < 0 || link->reorder < 0)
        return SLUICE_ERR_INVALID;
    h->link = *link;
    return 0;
}

int sim_host_find(const sim_net *net, const char *name)
{
    for (size_t i = 0; net && name && i < net->n_hosts; i++)
        if (!strcmp(net->hosts[i].name, name))
            return (int)i;
    return SLUICE_ERR_NOT_FOUND;
}

const char *sim_host_name(const sim_net *net, int host)
{
    struct sim_host *h = host_get(net, host);
    return h ? h->name : "?";
}

size_t sim_host_addrs(const sim_net *net, int host, sluice_addr *out, int *realms, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; net && i < net->n_addrs; i++) {
        if (net->addrs[i].host != host)
            continue;
        if (n < cap) {
            if (out)
                out[n] = net->addrs[i].ip;
            if (realms)
                realms[n] = net->addrs[i].realm;
        }
        n++;
    }
    return n;
}

bool sim_host_owns(const sim_net *net, int host, const sluice_addr *ip, int *realm)
{
    for (size_t i = 0; net && ip && i < net->n_addrs; i++) {
        if (net->addrs[i].host == host && sluice_addr_equal_ip(&net->addrs[i].ip, ip)) {
            if (realm)
                *realm = net->addrs[i].realm;
            return true;
        }
    }
    return false;
}

sluice_rng sim_host_rng(sim_net *net, int host)
{
    sluice_rng r = {0};
    struct sim_host *h = host_get(net, host);
    if (h) {
        r.fill = sluice_test_rng_fill;
        r.ctx = &h->rng;
    }
    return r;
}

static void refresh_deadline(sim_net *net, struct sim_host *h)
{
    (void)net;
    h->deadline =
        h->has_endpoint && h->ops.next_timeout ? h->ops.next_timeout(h->ctx) : SLUICE_NEVER;
}

int sim_host_set_endpoint(sim_net *net, int host, const sim_endpoint_ops *ops, void *ctx)
{
    struct sim_host *h = host_get(net, host);
    if (!h || (ops && !ops->deliver))
        return SLUICE_ERR_INVALID;
    if (h->has_endpoint && h->ops.destroy)
        h->ops.destroy(h->ctx);
    h->has_endpoint = ops != NULL;
    if (ops)
        h->ops = *ops;
    else
        memset(&h->ops, 0, sizeof h->ops);
    h->ctx = ops ? ctx : NULL;
    refresh_deadline(net, h);
    return 0;
}

const sim_endpoint_ops *sim_host_endpoint(const sim_net *net, int host, void **ctx)
{
    struct sim_host *h = host_get(net, host);
    if (!h || !h->has_endpoint)
        return NULL;
    if (ctx)
        *ctx = h->ctx;
    return &h->ops;
}

void sim_host_wake(sim_net *net, int host)
{
    struct sim_host *h = host_get(net, host);
    if (h)
        refresh_deadline(net, h);
}

/* ------------------------------------------------------------------------ */
/* Statistics */

void sim_count_drop(sim_net *net, int host, sim_drop_reason r)
{
    net->st.dropped[r]++;
    struct sim_host *h = host_get(net, host);
    if (h)
        h->st.dropped[r]++;
}

void sim_net_get_stats(const sim_net *net, sim_stats *st)
{
    *st = net->st;
}

int sim_host_get_stats(const sim_net *net, int host, sim_stats *st)
{
    struct sim_host *h = host_get(net, host);
    if (!h || !st)
        return SLUICE_ERR_INVALID;
    *st = h->st;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The queue: a binary min-heap on (time, seq) over fixed packet slots. The
 * sequence number makes the order of equal times the order of queueing. */

static bool pkt_before(const sim_net *net, uint32_t a, uint32_t b)
{
    const struct sim_pkt *x = &net->pkts[a], *y = &net->pkts[b];
    return x->time_us != y->time_us ? x->time_us < y->time_us : x->seq < y->seq;
}

static void heap_push(sim_net *net, uint32_t slot)
{
    net->pkts[slot].seq = net->seq++;
    size_t i = net->n_heap++;
    net->heap[i] = slot;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pkt_before(net, net->heap[i], net->heap[up]))
            break;
        uint32_t t = net->heap[i];
        net->heap[i] = net->heap[up];
        net->heap[up] = t;
        i = up;
    }
}

static uint32_t heap_pop(sim_net *net)
{
    uint32_t top = net->heap[0];
    net->heap[0] = net->heap[--net->n_heap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < net->n_heap && pkt_before(net, net->heap[l], net->heap[m]))
            m = l;
        if (r < net->n_heap && pkt_before(net, net->heap[r], net->heap[m]))
            m = r;
        if (m == i)
            break;
        uint32_t t = net->heap[i];
        net->heap[i] = net->heap[m];
        net->heap[m] = t;
        i = m;
    }
    return top;
}

static struct sim_pkt *slot_alloc(sim_net *net, uint32_t *slot)
{
    if (!net->n_free)
        return NULL;
    *slot = net->free_slots[--net->n_free];
    return &net->pkts[*slot];
}

static void slot_free(sim_net *net, uint32_t slot)
{
    net->free_slots[net->n_free++] = slot;
}

/* One crossing of a host's access link: loss, then delay with jitter and
 * reordering. Returns false when lost. */
static bool link_cross(sim_net *net, struct sim_host *h, uint64_t *delay)
{
    const sim_link *l = &h->link;
    if (sim_chance(net, l->loss))
        return false;
    uint64_t d = l->latency_us + uniform(net, l->jitter_us);
    if (sim_chance(net, l->reorder)) {
        d += l->reorder_delay_us;
        h->st.reordered++;
        net->st.reordered++;
    }
    *delay = d;
    return true;
}

static void drop(sim_net *net, const struct sim_pkt *p, sim_drop_reason r)
{
    char a[SLUICE_ADDR_STRLEN], b[SLUICE_ADDR_STRLEN];
    sim_count_drop(net, p->src_host, r);
    sim_hash_event(net, EV_DROP * 16 + (int)r, &p->src, &p->dst, NULL, p->len);
    sim_tracef(net, "drop %s %s -> %s len %zu host %s", sim_drop_name(r), sim_fmt(&p->src, a),
               sim_fmt(&p->dst, b), p->len, net->hosts[p->src_host].name);
}

/* Queue a copy of p at time t (stage unchanged). Returns false when the
 * queue is full (counted against the sender). */
static bool queue_copy(sim_net *net, const struct sim_pkt *p, uint64_t t)
{
    uint32_t slot;
    struct sim_pkt *c = slot_alloc(net, &slot);
    if (!c) {
        drop(net, p, SIM_DROP_QUEUE_FULL);
        return false;
    }
    uint8_t *data = c->data;
    *c = *p;
    c->data = data;
    memcpy(c->data, p->data, p->len);
    c->time_us = t;
    heap_push(net, slot);
    return true;
}

int sim_send(sim_net *net, int host, uint64_t now, const sluice_addr *src_local,
             const sluice_addr *dst, const uint8_t *data, size_t len)
{
    struct sim_host *h = host_get(net, host);
    if (!h || !src_local || !dst || (!data && len) || now < net->now_us ||
        (dst->family != SLUICE_AF_INET && dst->family != SLUICE_AF_INET6) ||
        dst->family != src_local->family)
        return SLUICE_ERR_INVALID;
    int realm;
    if (!sim_host_owns(net, host, src_local, &realm))
        return SIM_ERR_NOT_LOCAL;
    struct sim_pkt p = {0};
    p.src_host = host;
    p.dst_host = -1;
    p.realm = realm;
    p.src = *src_local;
    p.dst = *dst;
    p.len = len;
    p.stage = PKT_ROUTE;
    p.data = (uint8_t *)data;

    h->st.sent++;
    net->st.sent++;
    uint64_t saved = net->now_us;
    net->now_us = now; /* for the digest and trace only */
    if (len > net->cfg.max_datagram) {
        drop(net, &p, SIM_DROP_TOO_BIG);
        net->now_us = saved;
        return SLUICE_ERR_NOSPACE;
    }
    char a[SLUICE_ADDR_STRLEN], b[SLUICE_ADDR_STRLEN];
    sim_hash_event(net, EV_SEND, src_local, dst, data, len);
    sim_tracef(net, "send %s -> %s len %zu host %s", sim_fmt(src_local, a), sim_fmt(dst, b), len,
               h->name);
    int rc = 0;
    uint64_t delay;
    if (!link_cross(net, h, &delay)) {
        drop(net, &p, SIM_DROP_LOSS);
    } else {
        if (!queue_copy(net, &p, now + delay))
            rc = SLUICE_ERR_FULL;
        if (sim_chance(net, h->link.duplicate) && link_cross(net, h, &delay)) {
            h->st.duplicated++;
            net->st.duplicated++;
            if (!queue_copy(net, &p, now + delay))
                rc = SLUICE_ERR_FULL;
        }
    }
    net->now_us = saved;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The run loop */

/* Stage PKT_ROUTE: through the NATs, then onto the receiver's link. */
static void process_route(sim_net *net, uint32_t slot)
{
    struct sim_pkt *p = &net->pkts[slot];
    int r = sim_route(net, p);
    if (r >= 0) {
        drop(net, p, (sim_drop_reason)r);
        slot_free(net, slot);
        return;
    }
    struct sim_host *rx = &net->hosts[p->dst_host];
    uint64_t delay;
    if (!link_cross(net, rx, &delay)) {
        drop(net, p, SIM_DROP_LOSS);
        slot_free(net, slot);
        return;
    }
    p->stage = PKT_DELIVER;
    bool dup = sim_chance(net, rx->link.duplicate);
    uint64_t dup_delay;
    if (dup && link_cross(net, rx, &dup_delay)) {
        rx->st.duplicated++;
        net->st.duplicated++;
        queue_copy(net, p, net->now_us + dup_delay);
    }
    p->time_us = net->now_us + delay;
    heap_push(net, slot);
}

static void process_deliver(sim_net *net, uint32_t slot)
{
    struct sim_pkt *p = &net->pkts[slot];
    struct sim_host *rx = &net->hosts[p->dst_host];
    if (!rx->has_endpoint) {
        drop(net, p, SIM_DROP_NO_ENDPOINT);
        slot_free(net, slot);
        return;
    }
    char a[SLUICE_ADDR_STRLEN], b[SLUICE_ADDR_STRLEN];
    rx->st.delivered++;
    net->st.delivered++;
    sim_hash_event(net, EV_DELIVER, &p->dst, &p->src, p->data, p->len);
    sim_tracef(net, "deliver %s <- %s len %zu host %s", sim_fmt(&p->dst, a), sim_fmt(&p->src, b),
               p->len, rx->name);
    /* The slot stays taken during the call: data points into it. */
    rx->ops.deliver(rx->ctx, net, net->now_us, &p->dst, &p->src, p->data, p->len);
    slot_free(net, slot);
    refresh_deadline(net, rx);
}

/* Run the earliest event at or before t_end. Returns 1 when one ran, 0 when
 * none is due. */
static int step(sim_net *net, uint64_t t_end)
{
    uint64_t t_pkt = net->n_heap ? net->pkts[net->heap[0]].time_us : SLUICE_NEVER;
    uint64_t t_timer = SLUICE_NEVER;
    size_t timer_host = 0;
    for (size_t i = 0; i < net->n_hosts; i++) {
        if (net->hosts[i].deadline < t_timer) {
            t_timer = net->hosts[i].deadline;
            timer_host = i;
        }
    }
    if (t_pkt <= t_timer) {
        if (t_pkt == SLUICE_NEVER || t_pkt > t_end)
            return 0;
        uint32_t slot = heap_pop(net);
        if (t_pkt > net->now_us)
            net->now_us = t_pkt;
        if (net->pkts[slot].stage == PKT_ROUTE)
            process_route(net, slot);
        else
            process_deliver(net, slot);
        return 1;
    }
    if (t_timer > t_end)
        return 0;
    /* A deadline in the past runs now: time never goes backwards. */
    if (t_timer > net->now_us)
        net->now_us = t_timer;
    struct sim_host *h = &net->hosts[timer_host];
    if (h->ops.timeout)
        h->ops.timeout(h->ctx, net, net->now_us);
    refresh_deadline(net, h);
    if (h->deadline <= net->now_us && !h->ops.timeout)
        h->deadline = SLUICE_NEVER; /* nothing could ever consume it */
    return 1;
}

int sim_run(sim_net *net, uint64_t max_time, bool (*done)(void *ctx), void *ctx)
{
    if (!net)
        return SLUICE_ERR_INVALID;
    for (size_t i = 0; i < net->n_hosts; i++)
        refresh_deadline(net, &net->hosts[i]);
    if (done && done(ctx))
        return 1;
    for (uint64_t steps = 0;; steps++) {
        if (steps >= net->cfg.max_steps)
            return SIM_ERR_STEP_LIMIT;
        if (!step(net, max_time))
            break;
        if (done && done(ctx))
            return 1;
    }
    if (max_time > net->now_us)
        net->now_us = max_time;
    return 0;
}

int sim_run_until(sim_net *net, uint64_t t_end)
{
    return sim_run(net, t_end, NULL, NULL);
}
