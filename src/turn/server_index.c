/* SPDX-License-Identifier: MIT */
/* TURN server core: fixed-size hash indexes (5-tuple, permission, channel
 * by number and by peer, user, quota) and the keyed hash behind them. */
#include <string.h>

#include "turn/server_internal.h"

/* ------------------------------------------------------------------------ */
/* Memory, hashing, indexes */

void *srv_calloc(sluice_turn_server *s, size_t n, size_t size)
{
    void *p = sluice_xcalloc(&s->alloc, n, size);
    if (p)
        s->mem_bytes += n * size;
    return p;
}

uint64_t srv_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

uint64_t srv_hash(const sluice_turn_server *s, const void *p, size_t len, uint64_t extra)
{
    const uint8_t *b = p;
    uint64_t h = s->hash_seed ^ srv_mix64(extra + 0x9E3779B97F4A7C15ull) ^ len;
    uint64_t v;
    for (; len >= 8; len -= 8, b += 8) {
        memcpy(&v, b, 8);
        h = srv_mix64(h ^ v);
    }
    if (len) {
        v = 0;
        memcpy(&v, b, len);
        h = srv_mix64(h ^ v ^ 0x5bd1e995u);
    }
    return h;
}

int srv_index_init(sluice_turn_server *s, struct srv_index *ix, size_t entries)
{
    size_t cap = 16;
    while (cap < entries * 2)
        cap <<= 1;
    ix->slots = srv_calloc(s, cap, sizeof *ix->slots);
    if (!ix->slots)
        return SLUICE_ERR_NOMEM;
    ix->mask = (uint32_t)(cap - 1);
    return 0;
}


bool srv_flow_is_stream(const sluice_turn_server_flow *f)
{
    return f->transport != SLUICE_TRANSPORT_UDP;
}

uint64_t srv_flow_hash(const sluice_turn_server *s, const sluice_turn_server_flow *f)
{
    /* Streams are identified by the driver's connection id alone, so a
     * closed connection can be found without its addresses. */
    if (srv_flow_is_stream(f))
        return srv_hash(s, &f->conn_id, sizeof f->conn_id, 1);
    uint8_t k[40];
    memcpy(k, f->client.ip, 16);
    memcpy(k + 16, f->local.ip, 16);
    wr16(k + 32, f->client.port);
    wr16(k + 34, f->local.port);
    k[36] = f->client.family;
    k[37] = f->local.family;
    k[38] = k[39] = 0;
    return srv_hash(s, k, sizeof k, 2);
}

static bool flow_eq(const sluice_turn_server_flow *a, const sluice_turn_server_flow *b)
{
    if (srv_flow_is_stream(a) || srv_flow_is_stream(b))
        return srv_flow_is_stream(a) && srv_flow_is_stream(b) && a->conn_id == b->conn_id;
    return sluice_addr_equal(&a->client, &b->client) && sluice_addr_equal(&a->local, &b->local);
}

uint64_t srv_perm_hash(const sluice_turn_server *s, uint32_t alloc, uint8_t family,
                       const uint8_t *ip)
{
    return srv_hash(s, ip, 16, (uint64_t)alloc << 8 | family);
}

uint64_t srv_chan_num_hash(const sluice_turn_server *s, uint32_t alloc, uint16_t number)
{
    return srv_hash(s, NULL, 0, (uint64_t)alloc << 16 | number);
}

uint64_t srv_chan_peer_hash(const sluice_turn_server *s, uint32_t alloc, const sluice_addr *p)
{
    return srv_hash(s, p->ip, 16, (uint64_t)alloc << 24 | (uint64_t)p->port << 8 | p->family);
}

uint64_t srv_entry_hash(const sluice_turn_server *s, int kind, uint32_t e)
{
    switch (kind) {
    case IX_TUPLE:
        return srv_flow_hash(s, &s->allocs[e].flow);
    case IX_PERM:
        return srv_perm_hash(s, e / (uint32_t)s->cfg.max_permissions, s->perms[e].family,
                         s->perms[e].ip);
    case IX_CHAN_NUM:
        return srv_chan_num_hash(s, e / (uint32_t)s->cfg.max_channels, s->chans[e].number);
    case IX_CHAN_PEER:
        return srv_chan_peer_hash(s, e / (uint32_t)s->cfg.max_channels, &s->chans[e].peer);
    case IX_USER_NAME:
        return srv_hash(s, s->users[e].name, s->users[e].name_len, 0);
    case IX_USER_HASH:
        return srv_hash(s, s->users[e].userhash, 32, 0);
    default:
        return srv_hash(s, s->quotas[e].id, 16, 0);
    }
}

static bool entry_eq(const sluice_turn_server *s, int kind, uint32_t e, const void *key)
{
    switch (kind) {
    case IX_TUPLE:
        return flow_eq(&s->allocs[e].flow, key);
    case IX_PERM: {
        const struct perm_key *k = key;
        const struct srv_perm *p = &s->perms[e];
        return e / (uint32_t)s->cfg.max_permissions == k->alloc && p->family == k->ip->family &&
               memcmp(p->ip, k->ip->ip, 16) == 0;
    }
    case IX_CHAN_NUM: {
        const struct chan_key *k = key;
        return e / (uint32_t)s->cfg.max_channels == k->alloc && s->chans[e].number == k->number;
    }
    case IX_CHAN_PEER: {
        const struct chan_key *k = key;
        return e / (uint32_t)s->cfg.max_channels == k->alloc &&
               sluice_addr_equal(&s->chans[e].peer, k->peer);
    }
    case IX_USER_NAME: {
        const struct srv_user *k = key;
        return s->users[e].name_len == k->name_len &&
               memcmp(s->users[e].name, k->name, k->name_len) == 0;
    }
    case IX_USER_HASH:
        return memcmp(s->users[e].userhash, key, 32) == 0;
    default:
        return memcmp(s->quotas[e].id, key, 16) == 0;
    }
}

uint32_t srv_index_find(const sluice_turn_server *s, const struct srv_index *ix, int kind,
                        uint64_t h, const void *key)
{
    for (uint32_t i = (uint32_t)h & ix->mask;; i = (i + 1) & ix->mask) {
        uint32_t e = ix->slots[i];
        if (!e)
            return NONE;
        if (entry_eq(s, kind, e - 1, key))
            return e - 1;
    }
}

void srv_index_insert(struct srv_index *ix, uint64_t h, uint32_t entry)
{
    uint32_t i = (uint32_t)h & ix->mask;
    while (ix->slots[i])
        i = (i + 1) & ix->mask;
    ix->slots[i] = entry + 1;
}

/* Backward-shift deletion keeps every probe chain unbroken without
 * tombstones. Call before the entry's key fields change. */
void srv_index_remove(const sluice_turn_server *s, struct srv_index *ix, int kind, uint32_t entry)
{
    uint32_t i = (uint32_t)srv_entry_hash(s, kind, entry) & ix->mask;
    while (ix->slots[i] != entry + 1) {
        if (!ix->slots[i])
            return;
        i = (i + 1) & ix->mask;
    }
    for (uint32_t j = i;;) {
        j = (j + 1) & ix->mask;
        if (!ix->slots[j])
            break;
        uint32_t k = (uint32_t)srv_entry_hash(s, kind, ix->slots[j] - 1) & ix->mask;
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            ix->slots[i] = ix->slots[j];
            i = j;
        }
    }
    ix->slots[i] = 0;
}
