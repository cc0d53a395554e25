/* SPDX-License-Identifier: MIT */
/* Simulated NATs (RFC 4787 behaviour for UDP over IPv4) and routing between
 * realms: translation and mapping creation on the way out, filtering on
 * the way in, hairpinning, mapping timeouts, port allocation. */
#include "sim_internal.h"

#include <stdlib.h>
#include <string.h>

enum { EV_MAP = 4, EV_FLUSH = 5 };

void sim_nat_config_init(sim_nat_config *cfg, sim_nat_type type)
{
    memset(cfg, 0, sizeof *cfg);
    switch (type) {
    case SIM_NAT_FULL_CONE:
        cfg->mapping = SIM_MAP_ENDPOINT_INDEPENDENT;
        cfg->filtering = SIM_FILTER_ENDPOINT_INDEPENDENT;
        break;
    case SIM_NAT_RESTRICTED_CONE:
        cfg->mapping = SIM_MAP_ENDPOINT_INDEPENDENT;
        cfg->filtering = SIM_FILTER_ADDRESS_DEPENDENT;
        break;
    case SIM_NAT_PORT_RESTRICTED:
        cfg->mapping = SIM_MAP_ENDPOINT_INDEPENDENT;
        cfg->filtering = SIM_FILTER_ADDRESS_PORT_DEPENDENT;
        break;
    case SIM_NAT_SYMMETRIC:
    default:
        cfg->mapping = SIM_MAP_ADDRESS_PORT_DEPENDENT;
        cfg->filtering = SIM_FILTER_ADDRESS_PORT_DEPENDENT;
        break;
    }
    cfg->hairpinning = true;
    cfg->mapping_timeout_us = 120ull * 1000000; /* RFC 4787 REQ-5: at least 2 min */
    cfg->port_min = 1024;
    cfg->port_max = 65535;
    cfg->max_mappings = 256;
}

static struct sim_realm *nat_get(const sim_net *net, int realm)
{
    if (!net || realm <= 0 || (size_t)realm >= net->n_realms)
        return NULL;
    return &net->realms[realm];
}

/* The NAT realm whose public addresses in realm include ip, or 0. */
static int nat_by_public(const sim_net *net, int realm, const sluice_addr *ip)
{
    for (size_t r = 1; r < net->n_realms; r++) {
        const struct sim_realm *n = &net->realms[r];
        if (n->parent != realm)
            continue;
        for (size_t i = 0; i < n->n_pub; i++)
            if (sluice_addr_equal_ip(&n->pub[i], ip))
                return (int)r;
    }
    return 0;
}

bool sim_is_nat_public(const sim_net *net, int realm, const sluice_addr *ip)
{
    return nat_by_public(net, realm, ip) != 0;
}

int sim_nat_add(sim_net *net, int parent_realm, const sluice_addr *public_ips, size_t n_public,
                const sim_nat_config *cfg)
{
    if (!net || !public_ips || !cfg || parent_realm < 0 || (size_t)parent_realm >= net->n_realms ||
        !n_public || n_public > SIM_NAT_MAX_PUBLIC || !cfg->max_mappings ||
        cfg->max_mappings > 65536 || !cfg->mapping_timeout_us || cfg->port_min == 0 ||
        cfg->port_min > cfg->port_max || (unsigned)cfg->mapping > SIM_MAP_ADDRESS_PORT_DEPENDENT ||
        (unsigned)cfg->filtering > SIM_FILTER_ADDRESS_PORT_DEPENDENT)
        return SLUICE_ERR_INVALID;
    for (size_t i = 0; i < n_public; i++) {
        /* IPv4 only: RFC 4787 is about IPv4 NAT; IPv6 realms are not NATed. */
        if (public_ips[i].family != SLUICE_AF_INET ||
            sim_owner(net, parent_realm, &public_ips[i]) >= 0 ||
            sim_is_nat_public(net, parent_realm, &public_ips[i]))
            return SLUICE_ERR_INVALID;
        for (size_t j = 0; j < i; j++)
            if (sluice_addr_equal_ip(&public_ips[i], &public_ips[j]))
                return SLUICE_ERR_INVALID;
    }
    if (net->n_realms >= net->cfg.max_realms)
        return SLUICE_ERR_FULL;
    struct sim_realm *n = &net->realms[net->n_realms];
    memset(n, 0, sizeof *n);
    n->map = calloc(cfg->max_mappings, sizeof *n->map);
    if (!n->map)
        return SLUICE_ERR_NOMEM;
    n->parent = parent_realm;
    n->cfg = *cfg;
    for (size_t i = 0; i < n_public; i++) {
        n->pub[i] = public_ips[i];
        n->pub[i].port = 0;
    }
    n->n_pub = n_public;
    return (int)net->n_realms++;
}

void sim_realms_free(sim_net *net)
{
    for (size_t r = 0; r < net->n_realms; r++)
        free(net->realms[r].map);
}

int sim_realm_parent(const sim_net *net, int realm)
{
    if (!net || realm < 0 || (size_t)realm >= net->n_realms)
        return -1;
    return net->realms[realm].parent;
}

int sim_nat_get_stats(const sim_net *net, int realm, sim_nat_stats *st)
{
    struct sim_realm *n = nat_get(net, realm);
    if (!n || !st)
        return SLUICE_ERR_INVALID;
    *st = n->st;
    st->mappings = 0;
    for (size_t i = 0; i < n->cfg.max_mappings; i++)
        if (n->map[i].used && n->map[i].expires_us > net->now_us)
            st->mappings++;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Mappings */

static bool live(const sim_net *net, const struct sim_mapping *m)
{
    return m->used && m->expires_us > net->now_us;
}

/* Reclaim mappings whose timeout passed (RFC 4787 §4.3): their ports become
 * free and later traffic gets a new mapping. */
static void expire(sim_net *net, struct sim_realm *n)
{
    for (size_t i = 0; i < n->cfg.max_mappings; i++) {
        struct sim_mapping *m = &n->map[i];
        if (m->used && m->expires_us <= net->now_us) {
            m->used = false;
            n->st.mappings_expired++;
            n->n_live--;
        }
    }
}

int sim_nat_flush(sim_net *net, int realm)
{
    struct sim_realm *n = nat_get(net, realm);
    if (!n)
        return SLUICE_ERR_INVALID;
    expire(net, n);
    int dropped = (int)n->n_live;
    for (size_t i = 0; i < n->cfg.max_mappings; i++)
        n->map[i].used = false;
    n->n_live = 0;
    sim_hash_event(net, EV_FLUSH, NULL, NULL, NULL, (size_t)realm);
    sim_tracef(net, "nat %d flush %d mappings", realm, dropped);
    return dropped;
}

/* Does mapping m serve internal -> remote? RFC 4787 §4.1. */
static bool mapping_matches(const struct sim_realm *n, const struct sim_mapping *m,
                            const sluice_addr *internal, const sluice_addr *remote)
{
    if (!sluice_addr_equal(&m->internal, internal))
        return false;
    switch (n->cfg.mapping) {
    case SIM_MAP_ENDPOINT_INDEPENDENT:
        return true;
    case SIM_MAP_ADDRESS_DEPENDENT:
        return sluice_addr_equal_ip(&m->remote, remote);
    default:
        return sluice_addr_equal(&m->remote, remote);
    }
}

static const struct sim_mapping *find_const(const sim_net *net, const struct sim_realm *n,
                                            const sluice_addr *internal, const sluice_addr *remote)
{
    for (size_t i = 0; i < n->cfg.max_mappings; i++)
        if (live(net, &n->map[i]) && mapping_matches(n, &n->map[i], internal, remote))
            return &n->map[i];
    return NULL;
}

int sim_nat_mapping_lookup(const sim_net *net, int realm, const sluice_addr *internal,
                           const sluice_addr *remote, sluice_addr *external)
{
    const struct sim_realm *n = nat_get(net, realm);
    if (!n || !internal || !remote)
        return 0;
    const struct sim_mapping *m = find_const(net, n, internal, remote);
    if (!m)
        return 0;
    if (external)
        *external = m->external;
    return 1;
}

static bool port_taken(const sim_net *net, const struct sim_realm *n, const sluice_addr *ip,
                       uint16_t port)
{
    for (size_t i = 0; i < n->cfg.max_mappings; i++) {
        const struct sim_mapping *m = &n->map[i];
        if (live(net, m) && m->external.port == port && sluice_addr_equal_ip(&m->external, ip))
            return true;
    }
    return false;
}

/* An external port for internal on public address ip: the internal port
 * when preserving and free (RFC 4787 §4.2.1), else random in range, with a
 * bounded number of draws and then a scan. 0 when the range is full. */
static uint16_t pick_port(sim_net *net, const struct sim_realm *n, const sluice_addr *ip,
                          uint16_t internal_port)
{
    const sim_nat_config *c = &n->cfg;
    if (c->port_preservation && internal_port >= c->port_min && internal_port <= c->port_max &&
        !port_taken(net, n, ip, internal_port))
        return internal_port;
    uint32_t span = (uint32_t)c->port_max - c->port_min + 1;
    for (int tries = 0; tries < 16; tries++) {
        uint16_t p = (uint16_t)(c->port_min + sim_rand(net) % span);
        if (!port_taken(net, n, ip, p))
            return p;
    }
    uint32_t start = (uint32_t)(sim_rand(net) % span);
    for (uint32_t k = 0; k < span; k++) {
        uint16_t p = (uint16_t)(c->port_min + (start + k) % span);
        if (!port_taken(net, n, ip, p))
            return p;
    }
    return 0;
}

/* RFC 4787 REQ-2: "paired" pooling, every mapping of one internal address
 * uses the same public address. */
static const sluice_addr *pool_addr(const struct sim_realm *n, const sluice_addr *internal)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ internal->ip[i]) * 16777619u;
    return &n->pub[h % n->n_pub];
}

static void perm_touch(struct sim_mapping *m, const sluice_addr *remote, uint64_t expires)
{
    struct sim_perm *slot = &m->perm[0];
    for (size_t i = 0; i < SIM_NAT_MAX_PERMS; i++) {
        struct sim_perm *p = &m->perm[i];
        if (p->expires_us && sluice_addr_equal(&p->remote, remote)) {
            p->expires_us = expires;
            return;
        }
        if (p->expires_us < slot->expires_us)
            slot = p;
    }
    slot->remote = *remote;
    slot->expires_us = expires;
}

/* Outbound X:x -> Y:y through NAT realm r: find or create the mapping and
 * refresh it and its filter entry for Y:y (RFC 4787 REQ-6: outbound
 * refreshes). NULL when the table or the port range is full. */
static struct sim_mapping *outbound(sim_net *net, int r, const sluice_addr *internal,
                                    const sluice_addr *remote)
{
    struct sim_realm *n = &net->realms[r];
    uint64_t expires = net->now_us + n->cfg.mapping_timeout_us;
    struct sim_mapping *m = (struct sim_mapping *)find_const(net, n, internal, remote);
    if (!m) {
        for (size_t i = 0; i < n->cfg.max_mappings && !m; i++)
            if (!n->map[i].used)
                m = &n->map[i];
        const sluice_addr *ip = pool_addr(n, internal);
        uint16_t port = m ? pick_port(net, n, ip, internal->port) : 0;
        if (!port) {
            n->st.table_full++;
            return NULL;
        }
        memset(m, 0, sizeof *m);
        m->used = true;
        m->internal = *internal;
        m->remote = *remote;
        m->external = *ip;
        m->external.port = port;
        n->st.mappings_created++;
        n->n_live++;
        char a[SLUICE_ADDR_STRLEN], b[SLUICE_ADDR_STRLEN], c[SLUICE_ADDR_STRLEN];
        sim_hash_event(net, EV_MAP, internal, &m->external, NULL, (size_t)r);
        sim_tracef(net, "nat %d map %s -> %s (first to %s)", r, sim_fmt(internal, a),
                   sim_fmt(&m->external, b), sim_fmt(remote, c));
    }
    m->expires_us = expires;
    perm_touch(m, remote, expires);
    n->st.translated_out++;
    return m;
}

/* RFC 4787 §5: may a datagram from Y:y (in the parent realm) reach the
 * internal endpoint of m? */
static bool filter_pass(const sim_net *net, const struct sim_realm *n, const struct sim_mapping *m,
                        const sluice_addr *from)
{
    if (n->cfg.filtering == SIM_FILTER_ENDPOINT_INDEPENDENT)
        return true;
    for (size_t i = 0; i < SIM_NAT_MAX_PERMS; i++) {
        const struct sim_perm *p = &m->perm[i];
        if (p->expires_us <= net->now_us)
            continue;
        if (n->cfg.filtering == SIM_FILTER_ADDRESS_DEPENDENT
                ? sluice_addr_equal_ip(&p->remote, from)
                : sluice_addr_equal(&p->remote, from))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* Routing */

int sim_route(sim_net *net, struct sim_pkt *p)
{
    int realm = p->realm;
    int came_out_of = 0; /* the NAT the datagram just left, for hairpinning */
    /* Each hop enters or leaves one NAT; a loop-free path is bounded by two
     * hops per realm. */
    for (size_t hop = 0; hop <= 2 * net->n_realms; hop++) {
        int host = sim_owner(net, realm, &p->dst);
        if (host >= 0) {
            p->dst_host = host;
            return -1;
        }
        int r = nat_by_public(net, realm, &p->dst);
        if (r) {
            /* Inbound through NAT r. */
            struct sim_realm *n = &net->realms[r];
            expire(net, n);
            bool hairpin = r == came_out_of;
            if (hairpin && !n->cfg.hairpinning)
                return SIM_DROP_HAIRPIN; /* RFC 4787 REQ-9 not met, on purpose */
            struct sim_mapping *m = NULL;
            for (size_t i = 0; i < n->cfg.max_mappings && !m; i++)
                if (n->map[i].used && sluice_addr_equal(&n->map[i].external, &p->dst))
                    m = &n->map[i];
            if (!m || !filter_pass(net, n, m, &p->src)) {
                n->st.filtered++;
                return SIM_DROP_FILTER;
            }
            if (n->cfg.inbound_refresh)
                m->expires_us = net->now_us + n->cfg.mapping_timeout_us;
            if (hairpin)
                n->st.hairpinned++;
            n->st.translated_in++;
            /* RFC 4787 REQ-9 b: a hairpinned datagram keeps the sender's
             * external address as its source, as p->src already is. */
            p->dst = m->internal;
            realm = r;
            came_out_of = 0;
            continue;
        }
        if (realm > 0 && p->dst.family == SLUICE_AF_INET && p->src.family == SLUICE_AF_INET) {
            /* Outbound through the NAT of this realm. */
            struct sim_realm *n = &net->realms[realm];
            expire(net, n);
            struct sim_mapping *m = outbound(net, realm, &p->src, &p->dst);
            if (!m)
                return SIM_DROP_NAT_FULL;
            p->src = m->external;
            came_out_of = realm;
            realm = n->parent;
            continue;
        }
        return SIM_DROP_NO_ROUTE;
    }
    return SIM_DROP_NO_ROUTE;
}
