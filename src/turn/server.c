/* SPDX-License-Identifier: MIT */
/* TURN server core, sans-IO (RFC 8656, RFC 6156): allocation tables, relay
 * port maps, Allocate/Refresh/CreatePermission/ChannelBind, the relay data
 * path in both directions, expiry on virtual time, and the output queues. */
#include <stdio.h>
#include <string.h>

#include "turn/framing.h"
#include "turn/quota.h"
#include "turn/server_internal.h"
#include "sluice/turn_client.h"

#define PERM_LIFETIME_US (300 * SEC_US)        /* RFC 8656 §9 */
#define CHAN_LIFETIME_US (600 * SEC_US)        /* RFC 8656 §12 */
#define CHAN_COOLDOWN_US (300 * SEC_US)        /* RFC 8656 §12: no rebinding for 5 min */
#define RESERVATION_US (30 * SEC_US)           /* RFC 8656 §7.2: about 30 s */
#define MAX_BIND_ATTEMPTS 4
#define MAX_PEERS_PER_REQUEST 64

/* ------------------------------------------------------------------------ */
/* Creation */

void sluice_turn_server_config_init(sluice_turn_server_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->port_min = 49152;
    cfg->port_max = 65535;
    cfg->nonce_lifetime_s = 3600;
    cfg->password_algorithms[0] = SLUICE_STUN_PWALG_SHA256;
    cfg->password_algorithms[1] = SLUICE_STUN_PWALG_MD5;
    cfg->n_password_algorithms = 2;
    cfg->default_lifetime_s = 600;
    cfg->max_lifetime_s = 3600;
    cfg->rfc5766_channels = true;
    cfg->max_allocations = 1024;
    cfg->max_allocations_per_user = 64;
    cfg->max_permissions = 8;
    cfg->max_channels = 8;
    cfg->max_reservations = 64;
    cfg->max_pending_transmits = 64;
    cfg->challenges_per_s = 10;
    cfg->challenge_burst = 20;
    cfg->challenge_table_size = 4096;
    cfg->deny_classes = SLUICE_ADDR_DENY_DEFAULT;
}

static char *dup_str(sluice_turn_server *s, const char *str, size_t *len)
{
    size_t n = strlen(str);
    char *d = srv_calloc(s, n + 1, 1);
    if (d)
        memcpy(d, str, n);
    if (len)
        *len = n;
    return d;
}

static bool config_ok(const sluice_turn_server_config *c)
{
    if (!c->realm || !*c->realm || strlen(c->realm) > SLUICE_STUN_MAX_TEXT_ENCODE)
        return false;
    if (c->software && strlen(c->software) > 128)
        return false;
    if (c->relay_ip4.family != SLUICE_AF_NONE && c->relay_ip4.family != SLUICE_AF_INET)
        return false;
    if (c->relay_ip6.family != SLUICE_AF_NONE && c->relay_ip6.family != SLUICE_AF_INET6)
        return false;
    if (c->relay_ip4.family == SLUICE_AF_NONE && c->relay_ip6.family == SLUICE_AF_NONE)
        return false;
    if (c->port_min == 0 || c->port_min > c->port_max)
        return false;
    if (c->max_allocations < 1 || c->max_allocations > 1000000 || c->max_permissions < 1 ||
        c->max_permissions > 256 || c->max_channels < 1 || c->max_channels > 4096 ||
        c->max_reservations < 1 || c->max_reservations > 65536 ||
        c->max_pending_transmits < 1 || c->max_pending_transmits > 65536 ||
        c->challenge_table_size < 1 || c->challenge_table_size > (1u << 20))
        return false;
    if ((uint64_t)c->max_allocations * c->max_channels > UINT32_MAX / 2 ||
        (uint64_t)c->max_allocations * c->max_permissions > UINT32_MAX / 2)
        return false;
    if (c->n_password_algorithms > 2 || c->nonce_lifetime_s == 0 ||
        c->default_lifetime_s == 0 || c->max_lifetime_s < c->default_lifetime_s)
        return false;
    for (size_t i = 0; i < c->n_password_algorithms; i++) {
        uint16_t a = c->password_algorithms[i];
        if (a != SLUICE_STUN_PWALG_MD5 && a != SLUICE_STUN_PWALG_SHA256)
            return false;
        if (i == 1 && a == c->password_algorithms[0])
            return false;
    }
    if ((c->alternate_server4.family != SLUICE_AF_NONE &&
         (c->alternate_server4.family != SLUICE_AF_INET || !c->alternate_server4.port)) ||
        (c->alternate_server6.family != SLUICE_AF_NONE &&
         (c->alternate_server6.family != SLUICE_AF_INET6 || !c->alternate_server6.port)) ||
        (c->alternate_domain &&
         (!*c->alternate_domain || strlen(c->alternate_domain) > SLUICE_STUN_MAX_TEXT_ENCODE)))
        return false;
    if ((c->n_users && !c->users) || (c->n_rest_secrets && !c->rest_secrets) ||
        (c->n_allow && !c->allow) || (c->n_deny && !c->deny))
        return false;
    return true;
}

static int server_init(sluice_turn_server *s, const sluice_turn_server_config *cfg)
{
    int rc;
    size_t na = cfg->max_allocations;

    s->realm = dup_str(s, cfg->realm, &s->realm_len);
    if (!s->realm)
        return SLUICE_ERR_NOMEM;
    if (cfg->software && !(s->software = dup_str(s, cfg->software, NULL)))
        return SLUICE_ERR_NOMEM;
    if (cfg->alternate_domain &&
        !(s->alt_domain = dup_str(s, cfg->alternate_domain, &s->alt_domain_len)))
        return SLUICE_ERR_NOMEM;
    uint8_t seed[12];
    if (sluice_rng_fill(&cfg->rng, seed, sizeof seed) < 0)
        return SLUICE_ERR_CRYPTO;
    s->hash_seed = rd64(seed);
    s->ind_seed = rd32(seed + 8);
    if ((rc = srv_auth_init(s, cfg)) < 0 || (rc = srv_policy_init(s, cfg)) < 0)
        return rc;

    s->allocs = srv_calloc(s, na, sizeof *s->allocs);
    s->alloc_free = srv_calloc(s, na, sizeof *s->alloc_free);
    s->perms = srv_calloc(s, na * cfg->max_permissions, sizeof *s->perms);
    s->chans = srv_calloc(s, na * cfg->max_channels, sizeof *s->chans);
    s->resv = srv_calloc(s, cfg->max_reservations, sizeof *s->resv);
    s->tx = srv_calloc(s, cfg->max_pending_transmits, sizeof *s->tx);
    s->buckets = srv_calloc(s, cfg->challenge_table_size, sizeof *s->buckets);
    if (!s->allocs || !s->alloc_free || !s->perms || !s->chans || !s->resv || !s->tx ||
        !s->buckets)
        return SLUICE_ERR_NOMEM;
    if ((rc = srv_index_init(s, &s->ix_tuple, na)) < 0 ||
        (rc = srv_index_init(s, &s->ix_perm, na * cfg->max_permissions)) < 0 ||
        (rc = srv_index_init(s, &s->ix_chan_num, na * cfg->max_channels)) < 0 ||
        (rc = srv_index_init(s, &s->ix_chan_peer, na * cfg->max_channels)) < 0)
        return rc;
    for (size_t i = 0; i < na; i++)
        s->alloc_free[i] = (uint32_t)(na - 1 - i);
    s->n_alloc_free = na;
    if (!cfg->shared_quota) {
        /* the per-user counts of this core alone */
        s->quotas = srv_calloc(s, na, sizeof *s->quotas);
        s->quota_free = srv_calloc(s, na, sizeof *s->quota_free);
        if (!s->quotas || !s->quota_free)
            return SLUICE_ERR_NOMEM;
        if ((rc = srv_index_init(s, &s->ix_quota, na)) < 0)
            return rc;
        for (size_t i = 0; i < na; i++)
            s->quota_free[i] = (uint32_t)(na - 1 - i);
        s->n_quota_free = na;
    }

    s->n_ports = (uint32_t)cfg->port_max - cfg->port_min + 1;
    const sluice_addr *ips[2] = {&cfg->relay_ip4, &cfg->relay_ip6};
    for (int f = 0; f < 2; f++) {
        struct srv_portmap *pm = &s->ports[f];
        if (ips[f]->family == SLUICE_AF_NONE)
            continue;
        pm->enabled = true;
        pm->ip = *ips[f];
        pm->ip.port = 0;
        pm->owner = srv_calloc(s, s->n_ports, sizeof *pm->owner);
        pm->state = srv_calloc(s, s->n_ports, sizeof *pm->state);
        if (!pm->owner || !pm->state)
            return SLUICE_ERR_NOMEM;
    }
    s->evq_cap = 2 * (size_t)s->n_ports;
    s->evq = srv_calloc(s, s->evq_cap, sizeof *s->evq);
    if (!s->evq)
        return SLUICE_ERR_NOMEM;
    s->unix_time_s = cfg->unix_time_s;
    s->next_deadline_us = SLUICE_NEVER;
    return 0;
}

sluice_turn_server *sluice_turn_server_new(const sluice_turn_server_config *cfg, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    if (!cfg || !config_ok(cfg)) {
        *err = SLUICE_ERR_INVALID;
        return NULL;
    }
    sluice_turn_server *s = sluice_xcalloc(&cfg->alloc, 1, sizeof *s);
    if (!s) {
        *err = SLUICE_ERR_NOMEM;
        return NULL;
    }
    s->alloc = cfg->alloc;
    s->mem_bytes = sizeof *s;
    s->cfg = *cfg;
    if (!s->cfg.deny_classes_set)
        s->cfg.deny_classes = cfg->deny_classes ? cfg->deny_classes : SLUICE_ADDR_DENY_DEFAULT;
    if (s->cfg.max_allocations_per_user == 0)
        s->cfg.max_allocations_per_user = cfg->max_allocations;
    size_t tsz = 1;
    while (tsz < cfg->challenge_table_size)
        tsz <<= 1;
    s->cfg.challenge_table_size = tsz;
    /* the copies replace the caller's pointers */
    s->cfg.realm = s->cfg.software = s->cfg.alternate_domain = NULL;
    s->cfg.users = NULL;
    s->cfg.rest_secrets = NULL;
    s->cfg.allow = s->cfg.deny = NULL;
    int rc = server_init(s, cfg);
    if (rc < 0) {
        sluice_turn_server_free(s);
        *err = rc;
        return NULL;
    }
    *err = 0;
    return s;
}

void sluice_turn_server_free(sluice_turn_server *s)
{
    if (!s)
        return;
    const sluice_allocator *a = &s->alloc;
    srv_auth_free(s);
    sluice_xfree(a, s->realm);
    sluice_xfree(a, s->software);
    sluice_xfree(a, s->alt_domain);
    sluice_xfree(a, s->secrets);
    sluice_xfree(a, s->users);
    sluice_xfree(a, s->ix_user_name.slots);
    sluice_xfree(a, s->ix_user_hash.slots);
    sluice_xfree(a, s->allow);
    sluice_xfree(a, s->deny);
    sluice_xfree(a, s->allocs);
    sluice_xfree(a, s->alloc_free);
    sluice_xfree(a, s->perms);
    sluice_xfree(a, s->chans);
    sluice_xfree(a, s->quotas);
    sluice_xfree(a, s->quota_free);
    sluice_xfree(a, s->resv);
    sluice_xfree(a, s->tx);
    sluice_xfree(a, s->buckets);
    sluice_xfree(a, s->ix_tuple.slots);
    sluice_xfree(a, s->ix_perm.slots);
    sluice_xfree(a, s->ix_chan_num.slots);
    sluice_xfree(a, s->ix_chan_peer.slots);
    sluice_xfree(a, s->ix_quota.slots);
    for (int f = 0; f < 2; f++) {
        sluice_xfree(a, s->ports[f].owner);
        sluice_xfree(a, s->ports[f].state);
    }
    sluice_xfree(a, s->evq);
    sluice_allocator copy = s->alloc;
    sluice_xfree(&copy, s);
}

void sluice_turn_server_set_unix_time(sluice_turn_server *s, uint64_t unix_time_s)
{
    if (s)
        s->unix_time_s = unix_time_s;
}

void sluice_turn_server_set_draining(sluice_turn_server *s, bool draining)
{
    if (s)
        s->draining = draining;
}

/* ------------------------------------------------------------------------ */
/* Relay ports and their events */

static int family_index(uint8_t af)
{
    return af == SLUICE_AF_INET ? 0 : af == SLUICE_AF_INET6 ? 1 : -1;
}

static void port_set(sluice_turn_server *s, int f, uint32_t idx, uint8_t st)
{
    uint8_t *p = &s->ports[f].state[idx];
    uint8_t queued = *p & PORT_QUEUED;
    *p = st | queued;
    if ((st == PORT_OPEN_PENDING || st == PORT_CLOSE_PENDING) && !queued) {
        /* each port is queued at most once: evq_cap = 2 * n_ports never fills */
        s->evq[(s->evq_head + s->evq_len) % s->evq_cap] = (uint32_t)f * s->n_ports + idx;
        s->evq_len++;
        *p |= PORT_QUEUED;
    }
}

static uint8_t port_state(const sluice_turn_server *s, int f, uint32_t idx)
{
    return s->ports[f].state[idx] & (uint8_t)~PORT_QUEUED;
}

/* Release a port the allocation held: tell the driver to close it if it
 * heard of it, else forget it silently. */
static void port_release(sluice_turn_server *s, int f, uint32_t idx)
{
    s->ports[f].owner[idx] = 0;
    if (port_state(s, f, idx) == PORT_OPEN)
        port_set(s, f, idx, PORT_CLOSE_PENDING);
    else
        port_set(s, f, idx, PORT_FREE);
}

static uint32_t rand32(sluice_turn_server *s)
{
    uint8_t b[4] = {0};
    if (sluice_rng_fill(&s->cfg.rng, b, sizeof b) < 0)
        return (uint32_t)srv_mix64(++s->ind_counter ^ s->hash_seed);
    return rd32(b);
}

/* Pick a free port at random (RFC 8656 §7.2: unpredictable ports). even:
 * an even port; pair: and the next one free too. Returns the index or NONE. */
static uint32_t port_pick(sluice_turn_server *s, int f, bool even, bool pair)
{
    uint32_t n = s->n_ports, start = rand32(s) % n;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (start + k) % n;
        if (port_state(s, f, i) != PORT_FREE)
            continue;
        uint32_t port = s->cfg.port_min + i;
        if (even && (port & 1))
            continue;
        if (pair && (i + 1 >= n || port_state(s, f, i + 1) != PORT_FREE))
            continue;
        return i;
    }
    return NONE;
}

bool sluice_turn_server_poll_event(sluice_turn_server *s, sluice_turn_server_event *ev)
{
    if (!s || !ev)
        return false;
    while (s->evq_len) {
        uint32_t v = s->evq[s->evq_head];
        s->evq_head = (s->evq_head + 1) % s->evq_cap;
        s->evq_len--;
        int f = (int)(v / s->n_ports);
        uint32_t idx = v % s->n_ports;
        uint8_t st = port_state(s, f, idx);
        s->ports[f].state[idx] = st;
        memset(ev, 0, sizeof *ev);
        ev->relay = s->ports[f].ip;
        ev->relay.port = (uint16_t)(s->cfg.port_min + idx);
        if (st == PORT_OPEN_PENDING) {
            s->ports[f].state[idx] = PORT_OPEN;
            ev->type = SLUICE_TURN_SERVER_EVENT_OPEN_RELAY;
            return true;
        }
        if (st == PORT_CLOSE_PENDING) {
            s->ports[f].state[idx] = PORT_FREE;
            ev->type = SLUICE_TURN_SERVER_EVENT_CLOSE_RELAY;
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* Transmit queue and message building */

static struct srv_txe *tx_reserve(sluice_turn_server *s)
{
    if (s->tx_len == s->cfg.max_pending_transmits) {
        s->st.dropped_transmit_full++;
        return NULL;
    }
    return &s->tx[(s->tx_head + s->tx_len) % s->cfg.max_pending_transmits];
}

static void tx_commit(sluice_turn_server *s, struct srv_txe *t, const sluice_turn_server_flow *f,
                      int len, uint32_t alloc_ref)
{
    if (len <= 0)
        return;
    t->flow = *f;
    t->len = (uint16_t)len;
    t->alloc_ref = alloc_ref;
    s->tx_len++;
}

int sluice_turn_server_poll_transmit(sluice_turn_server *s, uint64_t now_us, uint8_t *buf,
                                     size_t cap, sluice_turn_server_transmit *out)
{
    (void)now_us;
    if (!s || !buf || !out)
        return SLUICE_ERR_INVALID;
    /* entries emptied by relay_failed() are skipped */
    while (s->tx_len && s->tx[s->tx_head].len == 0) {
        s->tx_head = (s->tx_head + 1) % s->cfg.max_pending_transmits;
        s->tx_len--;
    }
    if (!s->tx_len)
        return 0;
    struct srv_txe *t = &s->tx[s->tx_head];
    if (cap < t->len)
        return SLUICE_ERR_NOSPACE;
    memcpy(buf, t->bytes, t->len);
    memset(out, 0, sizeof *out);
    out->direction = SLUICE_TURN_SERVER_TO_CLIENT;
    out->flow = t->flow;
    if (t->alloc_ref)
        s->allocs[t->alloc_ref - 1].response_queued = false;
    s->tx_head = (s->tx_head + 1) % s->cfg.max_pending_transmits;
    s->tx_len--;
    return t->len;
}

/* SOFTWARE, integrity with the request's key and type, FINGERPRINT. */
static void seal(const sluice_turn_server *s, sluice_stun_writer *w, const uint8_t *key,
                 size_t key_len, bool sha256)
{
    if (s->software)
        sluice_stun_put_string(w, SLUICE_STUN_ATTR_SOFTWARE, s->software, strlen(s->software));
    if (key) {
        sluice_stun_key k;
        if (sluice_stun_key_raw(&k, key, key_len) == 0) {
            if (sha256)
                sluice_stun_put_integrity_sha256(w, &k);
            else
                sluice_stun_put_integrity(w, &k);
        }
        sluice_stun_key_clear(&k);
    }
    sluice_stun_put_fingerprint(w);
}

/* Start an error response in a transmit slot: the header and ERROR-CODE
 * (reason NULL: the standard phrase). NULL when the queue is full. */
static struct srv_txe *error_begin(sluice_turn_server *s, sluice_stun_writer *w, uint16_t method,
                                   const uint8_t *txid, int code, const char *reason)
{
    struct srv_txe *t = tx_reserve(s);
    if (!t)
        return NULL;
    s->st.error_responses++;
    sluice_stun_writer_init(w, t->bytes, sizeof t->bytes,
                            sluice_stun_type(method, SLUICE_STUN_ERROR), txid);
    sluice_stun_put_error_code(w, code, reason);
    return t;
}

/* An error response (RFC 8489 §6.3.4). 401/438 carry REALM, a fresh NONCE
 * and PASSWORD-ALGORITHMS (§9.2.4); cr (may be NULL) signs it. */
static void send_error(sluice_turn_server *s, uint64_t now_us, const sluice_turn_server_flow *f,
                       uint16_t method, const uint8_t *txid, const sluice_stun_msg *m, int code,
                       const struct srv_cred *cr)
{
    sluice_stun_writer w;
    struct srv_txe *t = error_begin(s, &w, method, txid, code, NULL);
    if (!t)
        return;
    if (code == SLUICE_STUN_ERR_UNKNOWN_ATTRIBUTE && m) {
        size_t n = m->n_unknown < SLUICE_STUN_MAX_UNKNOWN ? m->n_unknown : SLUICE_STUN_MAX_UNKNOWN;
        sluice_stun_put_unknown_attributes(&w, m->unknown, n);
    }
    if (code == SLUICE_STUN_ERR_UNAUTHORIZED || code == SLUICE_STUN_ERR_STALE_NONCE) {
        char nonce[64];
        srv_make_nonce(s, now_us, &f->client, nonce);
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, s->realm, s->realm_len);
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, nonce, strlen(nonce));
        if (s->features & SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS)
            sluice_stun_put_password_algorithms(&w, s->cfg.password_algorithms,
                                                s->cfg.n_password_algorithms);
    }
    seal(s, &w, cr ? cr->key : NULL, cr ? cr->key_len : 0, cr && cr->sha256_mi);
    tx_commit(s, t, f, sluice_stun_writer_result(&w), 0);
}

static sluice_addr relay_addr(const sluice_turn_server *s, const struct srv_alloc *a, int k)
{
    sluice_addr r = s->ports[a->relay_family[k]].ip;
    r.port = a->relay_port[k];
    return r;
}

/* The Allocate success response, built from the allocation's state so a
 * retransmission gets the same answer (RFC 8656 §7.2) and a failed bind
 * can be rewritten with another port. */
static int build_allocate_success(const sluice_turn_server *s, const struct srv_alloc *a,
                                  uint8_t *buf, size_t cap)
{
    sluice_stun_writer w;
    sluice_stun_writer_init(&w, buf, cap,
                            sluice_stun_type(SLUICE_STUN_ALLOCATE, SLUICE_STUN_SUCCESS), a->txid);
    for (int k = 0; k < a->n_relay; k++) {
        sluice_addr r = relay_addr(s, a, k);
        sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS, &r);
    }
    if (a->addr_err_code)
        sluice_stun_put_address_error_code(&w, a->addr_err_family, a->addr_err_code, NULL);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_LIFETIME, a->lifetime_s);
    if (a->token)
        sluice_stun_put_u64(&w, SLUICE_STUN_ATTR_RESERVATION_TOKEN, a->token);
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &a->flow.client);
    seal(s, &w, a->key, a->key_len, a->sha256_mi);
    return sluice_stun_writer_result(&w);
}

/* ------------------------------------------------------------------------ */
/* Allocations, permissions, channels */

static void note_deadline(sluice_turn_server *s, uint64_t t)
{
    if (t < s->next_deadline_us)
        s->next_deadline_us = t;
}

static uint32_t find_alloc(const sluice_turn_server *s, uint64_t now_us,
                           const sluice_turn_server_flow *f)
{
    uint32_t ai = srv_index_find(s, &s->ix_tuple, IX_TUPLE, srv_flow_hash(s, f), f);
    if (ai != NONE && s->allocs[ai].expires_us <= now_us)
        return NONE; /* expired, deleted by the next sweep */
    return ai;
}

static struct srv_perm *find_perm(const sluice_turn_server *s, uint32_t ai, const sluice_addr *ip,
                                  uint32_t *index)
{
    struct perm_key k = {ai, ip};
    uint32_t e = srv_index_find(s, &s->ix_perm, IX_PERM, srv_perm_hash(s, ai, ip->family, ip->ip), &k);
    if (index)
        *index = e;
    return e == NONE ? NULL : &s->perms[e];
}

static struct srv_chan *find_chan_num(const sluice_turn_server *s, uint32_t ai, uint16_t number)
{
    struct chan_key k = {ai, number, NULL};
    uint32_t e = srv_index_find(s, &s->ix_chan_num, IX_CHAN_NUM, srv_chan_num_hash(s, ai, number), &k);
    return e == NONE ? NULL : &s->chans[e];
}

static struct srv_chan *find_chan_peer(const sluice_turn_server *s, uint32_t ai,
                                       const sluice_addr *peer)
{
    struct chan_key k = {ai, 0, peer};
    uint32_t e =
        srv_index_find(s, &s->ix_chan_peer, IX_CHAN_PEER, srv_chan_peer_hash(s, ai, peer), &k);
    return e == NONE ? NULL : &s->chans[e];
}

static void perm_remove(sluice_turn_server *s, uint32_t e)
{
    srv_index_remove(s, &s->ix_perm, IX_PERM, e);
    memset(&s->perms[e], 0, sizeof s->perms[e]);
    s->allocs[e / s->cfg.max_permissions].n_perms--;
    s->st.permissions--;
}

static void chan_remove(sluice_turn_server *s, uint32_t e)
{
    srv_index_remove(s, &s->ix_chan_num, IX_CHAN_NUM, e);
    srv_index_remove(s, &s->ix_chan_peer, IX_CHAN_PEER, e);
    memset(&s->chans[e], 0, sizeof s->chans[e]);
    s->allocs[e / s->cfg.max_channels].n_chans--;
    s->st.channels--;
}

/* Install or refresh the permission for peer's IP (RFC 8656 §9.2). The
 * caller has checked there is room. */
static void perm_install(sluice_turn_server *s, uint64_t now_us, uint32_t ai, const sluice_addr *ip)
{
    struct srv_perm *p = find_perm(s, ai, ip, NULL);
    if (!p) {
        size_t base = (size_t)ai * s->cfg.max_permissions;
        for (size_t i = 0; i < s->cfg.max_permissions; i++) {
            if (s->perms[base + i].expires_us)
                continue;
            p = &s->perms[base + i];
            p->family = ip->family;
            memcpy(p->ip, ip->ip, 16);
            srv_index_insert(&s->ix_perm, srv_perm_hash(s, ai, ip->family, ip->ip),
                             (uint32_t)(base + i));
            s->allocs[ai].n_perms++;
            s->st.permissions++;
            break;
        }
        if (!p)
            return;
    }
    p->expires_us = now_us + PERM_LIFETIME_US;
    note_deadline(s, p->expires_us);
}

static void quota_release(sluice_turn_server *s, uint32_t q)
{
    if (q == NONE)
        return;
    if (s->cfg.shared_quota) {
        sluice_turn_quota_release(s->cfg.shared_quota, q);
        return;
    }
    if (--s->quotas[q].count)
        return;
    srv_index_remove(s, &s->ix_quota, IX_QUOTA, q);
    memset(&s->quotas[q], 0, sizeof s->quotas[q]);
    s->quota_free[s->n_quota_free++] = q;
}

static void alloc_delete(sluice_turn_server *s, uint32_t ai)
{
    struct srv_alloc *a = &s->allocs[ai];
    size_t pb = (size_t)ai * s->cfg.max_permissions, cb = (size_t)ai * s->cfg.max_channels;
    for (size_t i = 0; i < s->cfg.max_permissions && a->n_perms; i++)
        if (s->perms[pb + i].expires_us)
            perm_remove(s, (uint32_t)(pb + i));
    for (size_t i = 0; i < s->cfg.max_channels && a->n_chans; i++)
        if (s->chans[cb + i].expires_us)
            chan_remove(s, (uint32_t)(cb + i));
    for (int k = 0; k < a->n_relay; k++)
        port_release(s, a->relay_family[k], a->relay_port[k] - s->cfg.port_min);
    if (a->response_queued)
        for (size_t i = 0; i < s->tx_len; i++) {
            struct srv_txe *t = &s->tx[(s->tx_head + i) % s->cfg.max_pending_transmits];
            if (t->alloc_ref == ai + 1)
                t->alloc_ref = 0;
        }
    quota_release(s, a->quota_slot);
    srv_index_remove(s, &s->ix_tuple, IX_TUPLE, ai);
    memset(a, 0, sizeof *a);
    s->alloc_free[s->n_alloc_free++] = ai;
    s->st.allocations--;
}

/* RFC 8656 §7.2, §7.3: the requested lifetime clamped to the maximum and
 * raised to the default; 0 stays 0 (a delete, Refresh only). */
static uint32_t desired_lifetime(const sluice_turn_server *s, const sluice_stun_msg *m, bool *zero)
{
    uint32_t lt;
    *zero = false;
    if (sluice_stun_get_u32(m, SLUICE_STUN_ATTR_LIFETIME, &lt) < 0)
        return s->cfg.default_lifetime_s;
    if (lt == 0) {
        *zero = true;
        return 0;
    }
    if (lt > s->cfg.max_lifetime_s)
        lt = s->cfg.max_lifetime_s;
    return lt > s->cfg.default_lifetime_s ? lt : s->cfg.default_lifetime_s;
}

static bool bw_take(sluice_turn_server *s, struct srv_alloc *a, int dir, size_t len,
                    uint64_t now_us)
{
    uint64_t rate = s->cfg.bandwidth_bytes_per_s;
    if (!rate)
        return true;
    if (now_us > a->bw_last_us[dir]) {
        uint64_t add = (now_us - a->bw_last_us[dir]) * rate / SEC_US;
        a->bw_tokens[dir] = a->bw_tokens[dir] + add > rate ? rate : a->bw_tokens[dir] + add;
        a->bw_last_us[dir] = now_us;
    }
    if (a->bw_tokens[dir] < len) {
        s->st.dropped_bandwidth++;
        return false;
    }
    a->bw_tokens[dir] -= len;
    return true;
}

static bool alloc_has_family(const sluice_turn_server *s, const struct srv_alloc *a, uint8_t af,
                             int *k)
{
    for (int i = 0; i < a->n_relay; i++)
        if (s->ports[a->relay_family[i]].ip.family == af) {
            if (k)
                *k = i;
            return true;
        }
    return false;
}

/* ------------------------------------------------------------------------ */
/* Requests */

struct req {
    const sluice_turn_server_flow *flow;
    const sluice_stun_msg *m;
    const struct srv_cred *cr;
    uint64_t now;
};

static void reply_error(sluice_turn_server *s, const struct req *r, int code)
{
    send_error(s, r->now, r->flow, r->m->method, sluice_stun_txid(r->m), r->m, code, r->cr);
}

/* Success with optional LIFETIME; nothing else (Refresh, CreatePermission,
 * ChannelBind). */
static void reply_success(sluice_turn_server *s, const struct req *r, bool lifetime, uint32_t lt)
{
    struct srv_txe *t = tx_reserve(s);
    sluice_stun_writer w;
    if (!t)
        return;
    sluice_stun_writer_init(&w, t->bytes, sizeof t->bytes,
                            sluice_stun_type(r->m->method, SLUICE_STUN_SUCCESS),
                            sluice_stun_txid(r->m));
    if (lifetime)
        sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_LIFETIME, lt);
    seal(s, &w, r->cr->key, r->cr->key_len, r->cr->sha256_mi);
    tx_commit(s, t, r->flow, sluice_stun_writer_result(&w), 0);
}

static struct srv_reservation *find_reservation(sluice_turn_server *s, uint64_t now_us,
                                                uint64_t token)
{
    for (size_t i = 0; i < s->cfg.max_reservations; i++)
        if (s->resv[i].expires_us > now_us && s->resv[i].token == token)
            return &s->resv[i];
    return NULL;
}

/* §7.2 step 7: count one allocation for the user, in the shared table or
 * in this core's. Returns 0 with the slot in *q (quota_release gives it
 * back), or the code to answer: 486, or 508 when this core's table is
 * full (only when every allocation is in use). */
static int quota_take(sluice_turn_server *s, const uint8_t id[16], uint32_t *q)
{
    size_t limit = s->cfg.max_allocations_per_user;
    if (s->cfg.shared_quota) {
        if (sluice_turn_quota_acquire(s->cfg.shared_quota, id,
                                      limit > UINT32_MAX ? UINT32_MAX : (uint32_t)limit, q) < 0)
            return SLUICE_STUN_ERR_ALLOCATION_QUOTA;
        return 0;
    }
    uint64_t h = srv_hash(s, id, 16, 0);
    uint32_t i = srv_index_find(s, &s->ix_quota, IX_QUOTA, h, id);
    if (i != NONE && s->quotas[i].count >= limit)
        return SLUICE_STUN_ERR_ALLOCATION_QUOTA;
    if (i == NONE) {
        if (!s->n_quota_free)
            return SLUICE_STUN_ERR_INSUFFICIENT_CAPACITY;
        i = s->quota_free[--s->n_quota_free];
        memcpy(s->quotas[i].id, id, 16);
        srv_index_insert(&s->ix_quota, h, i);
    }
    s->quotas[i].count++;
    *q = i;
    return 0;
}

/* Drain mode: RFC 8489 §10 redirect to the alternate server of the
 * client's family (§14.15), signed like any answer to an authenticated
 * request; 508 when there is none. */
static void reply_draining(sluice_turn_server *s, const struct req *r)
{
    const sluice_turn_server_flow *f = r->flow;
    sluice_addr alt = f->client.family == SLUICE_AF_INET6 ? s->cfg.alternate_server6
                                                          : s->cfg.alternate_server4;
    bool tls = f->transport == SLUICE_TRANSPORT_TLS;
    bool redirect = alt.family != SLUICE_AF_NONE;
    sluice_stun_writer w;
    struct srv_txe *t = error_begin(s, &w, SLUICE_STUN_ALLOCATE, sluice_stun_txid(r->m),
                                    redirect ? SLUICE_STUN_ERR_TRY_ALTERNATE
                                             : SLUICE_STUN_ERR_INSUFFICIENT_CAPACITY,
                                    "Draining");
    if (!t)
        return;
    if (redirect) {
        if (tls && s->cfg.alternate_tls_port)
            alt.port = s->cfg.alternate_tls_port;
        sluice_stun_put_address(&w, SLUICE_STUN_ATTR_ALTERNATE_SERVER, &alt);
        if (tls && s->alt_domain) /* §14.16 */
            sluice_stun_put_string(&w, SLUICE_STUN_ATTR_ALTERNATE_DOMAIN, s->alt_domain,
                                   s->alt_domain_len);
        s->st.drain_redirected++;
    } else {
        s->st.drain_refused++;
    }
    seal(s, &w, r->cr->key, r->cr->key_len, r->cr->sha256_mi);
    tx_commit(s, t, f, sluice_stun_writer_result(&w), 0);
}

/* RFC 8656 §7.2 */
static void do_allocate(sluice_turn_server *s, const struct req *r)
{
    const sluice_stun_msg *m = r->m;
    uint32_t ai = srv_index_find(s, &s->ix_tuple, IX_TUPLE, srv_flow_hash(s, r->flow), r->flow);
    if (ai != NONE && s->allocs[ai].expires_us <= r->now) {
        alloc_delete(s, ai); /* expired but not swept yet */
        s->st.allocations_expired++;
        ai = NONE;
    }
    if (ai != NONE) {
        struct srv_alloc *a = &s->allocs[ai];
        /* §7.2 step 1: a retransmission gets the same success response. */
        if (memcmp(a->txid, sluice_stun_txid(m), SLUICE_STUN_TXID_LEN) == 0 &&
            memcmp(a->user_id, r->cr->user_id, 16) == 0) {
            struct srv_txe *t = tx_reserve(s);
            if (t)
                tx_commit(s, t, r->flow, build_allocate_success(s, a, t->bytes, sizeof t->bytes),
                          0);
            return;
        }
        reply_error(s, r, SLUICE_STUN_ERR_ALLOCATION_MISMATCH);
        return;
    }
    if (s->draining) {
        reply_draining(s, r);
        return;
    }
    uint8_t proto;
    int rc = sluice_stun_get_requested_transport(m, &proto);
    if (rc < 0) {
        reply_error(s, r, SLUICE_STUN_ERR_BAD_REQUEST);
        return;
    }
    if (proto != 17) {
        reply_error(s, r, SLUICE_STUN_ERR_UNSUPPORTED_TRANSPORT);
        return;
    }
    /* DONT-FRAGMENT (§7.2 step 3) is understood; the driver's relay sockets
     * do not fragment what the core hands them. */
    uint8_t rfam = 0, afam = 0;
    int rr = sluice_stun_get_address_family(m, SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY, &rfam);
    int ar = sluice_stun_get_address_family(m, SLUICE_STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY, &afam);
    bool has_token = sluice_stun_has(m, SLUICE_STUN_ATTR_RESERVATION_TOKEN);
    bool has_even = sluice_stun_has(m, SLUICE_STUN_ATTR_EVEN_PORT);
    bool reserve = false;
    uint64_t token = 0;
    if (has_even && sluice_stun_get_even_port(m, &reserve) < 0) {
        reply_error(s, r, SLUICE_STUN_ERR_BAD_REQUEST);
        return;
    }
    if (rr == SLUICE_ERR_MALFORMED) {
        reply_error(s, r, SLUICE_STUN_ERR_ADDRESS_FAMILY); /* §7.2: unknown family */
        return;
    }
    /* §7.2: REQUESTED- and ADDITIONAL-ADDRESS-FAMILY together, an
     * ADDITIONAL that is not IPv6, or a token with a family or EVEN-PORT. */
    if (ar == SLUICE_ERR_MALFORMED || (rr == 0 && ar == 0) || (ar == 0 && afam != SLUICE_STUN_FAMILY_IPV6) ||
        (has_token && (has_even || rr == 0 || ar == 0))) {
        reply_error(s, r, SLUICE_STUN_ERR_BAD_REQUEST);
        return;
    }
    struct srv_reservation *resv = NULL;
    if (has_token) {
        if (sluice_stun_get_u64(m, SLUICE_STUN_ATTR_RESERVATION_TOKEN, &token) < 0 ||
            !(resv = find_reservation(s, r->now, token))) {
            reply_error(s, r, SLUICE_STUN_ERR_INSUFFICIENT_CAPACITY); /* §7.2 step 4 */
            return;
        }
    }
    bool want[2] = {false, false};
    if (resv)
        want[resv->family] = true;
    else if (rr == 0)
        want[rfam == SLUICE_STUN_FAMILY_IPV6] = true;
    else if (ar == 0)
        want[0] = want[1] = true;
    else
        want[0] = true; /* §7.2: absent means IPv4 */
    bool dual = want[0] && want[1];
    if (!dual && !s->ports[want[1]].enabled) {
        reply_error(s, r, SLUICE_STUN_ERR_ADDRESS_FAMILY);
        return;
    }
    if (dual && !s->ports[0].enabled && !s->ports[1].enabled) {
        reply_error(s, r, SLUICE_STUN_ERR_ADDRESS_FAMILY);
        return;
    }
    /* §7.2 step 7: per-user quota, then capacity. From here on every
     * refusal gives the quota back. */
    uint32_t q = NONE;
    int code = quota_take(s, r->cr->quota_id, &q);
    if (!code && !s->n_alloc_free)
        code = SLUICE_STUN_ERR_INSUFFICIENT_CAPACITY;
    if (code) {
        if (code == SLUICE_STUN_ERR_ALLOCATION_QUOTA)
            s->st.quota_refused++;
        quota_release(s, q);
        reply_error(s, r, code);
        return;
    }
    struct srv_reservation *new_resv = NULL;
    if (reserve) {
        for (size_t i = 0; i < s->cfg.max_reservations && !new_resv; i++)
            if (s->resv[i].expires_us == 0)
                new_resv = &s->resv[i];
        if (!new_resv) {
            quota_release(s, q);
            reply_error(s, r, SLUICE_STUN_ERR_INSUFFICIENT_CAPACITY);
            return;
        }
    }

    /* Ports. */
    uint32_t pidx[2] = {NONE, NONE};
    uint16_t addr_err_code = 0;
    uint8_t addr_err_family = 0;
    if (resv) {
        pidx[resv->family] = resv->port;
    } else {
        for (int f = 0; f < 2; f++) {
            if (!want[f])
                continue;
            if (!s->ports[f].enabled) {
                addr_err_code = SLUICE_STUN_ERR_ADDRESS_FAMILY; /* §7.2: one family served */
                addr_err_family = f ? SLUICE_STUN_FAMILY_IPV6 : SLUICE_STUN_FAMILY_IPV4;
                continue;
            }
            pidx[f] = port_pick(s, f, has_even, reserve && (f == 0 || !want[0]));
            if (pidx[f] == NONE && dual) {
                addr_err_code = SLUICE_STUN_ERR_INSUFFICIENT_CAPACITY;
                addr_err_family = f ? SLUICE_STUN_FAMILY_IPV6 : SLUICE_STUN_FAMILY_IPV4;
            }
        }
        if (pidx[0] == NONE && pidx[1] == NONE) {
            quota_release(s, q);
            reply_error(s, r, dual && addr_err_code == SLUICE_STUN_ERR_ADDRESS_FAMILY &&
                                      !s->ports[0].enabled && !s->ports[1].enabled
                                  ? SLUICE_STUN_ERR_ADDRESS_FAMILY
                                  : SLUICE_STUN_ERR_INSUFFICIENT_CAPACITY);
            return;
        }
        if (dual && pidx[0] != NONE && pidx[1] != NONE)
            addr_err_code = 0;
    }

    bool zero;
    uint32_t lt = desired_lifetime(s, m, &zero);
    if (zero)
        lt = s->cfg.default_lifetime_s;

    ai = s->alloc_free[--s->n_alloc_free];
    struct srv_alloc *a = &s->allocs[ai];
    memset(a, 0, sizeof *a);
    a->used = true;
    a->flow = *r->flow;
    memcpy(a->txid, sluice_stun_txid(m), SLUICE_STUN_TXID_LEN);
    memcpy(a->user_id, r->cr->user_id, 16);
    memcpy(a->key, r->cr->key, 32);
    a->key_len = r->cr->key_len;
    a->sha256_mi = r->cr->sha256_mi;
    a->quota_slot = q;
    a->lifetime_s = lt;
    a->expires_us = r->now + (uint64_t)lt * SEC_US;
    a->addr_err_code = addr_err_code;
    a->addr_err_family = addr_err_family;
    a->bw_tokens[0] = a->bw_tokens[1] = s->cfg.bandwidth_bytes_per_s;
    a->bw_last_us[0] = a->bw_last_us[1] = r->now;
    for (int f = 0; f < 2; f++) {
        if (pidx[f] == NONE)
            continue;
        a->relay_family[a->n_relay] = (uint8_t)f;
        a->relay_port[a->n_relay] = (uint16_t)(s->cfg.port_min + pidx[f]);
        a->n_relay++;
        s->ports[f].owner[pidx[f]] = ai + 1;
        port_set(s, f, pidx[f], PORT_OPEN_PENDING);
    }
    if (resv) {
        memset(resv, 0, sizeof *resv);
    } else if (new_resv) {
        /* §7.2: EVEN-PORT with R: keep the next port for a later Allocate. */
        int f = a->relay_family[0];
        uint32_t next = a->relay_port[0] - s->cfg.port_min + 1u;
        uint8_t tb[8];
        do {
            if (sluice_rng_fill(&s->cfg.rng, tb, sizeof tb) < 0)
                wr64(tb, srv_mix64(++s->ind_counter ^ s->hash_seed));
            a->token = rd64(tb);
        } while (a->token == 0);
        new_resv->token = a->token;
        new_resv->family = (uint8_t)f;
        new_resv->port = (uint16_t)next;
        new_resv->expires_us = r->now + RESERVATION_US;
        port_set(s, f, next, PORT_RESERVED);
        note_deadline(s, new_resv->expires_us);
    }
    srv_index_insert(&s->ix_tuple, srv_flow_hash(s, &a->flow), ai);
    note_deadline(s, a->expires_us);
    s->st.allocations++;
    s->st.allocations_total++;

    struct srv_txe *t = tx_reserve(s);
    if (t) {
        a->response_queued = true;
        tx_commit(s, t, r->flow, build_allocate_success(s, a, t->bytes, sizeof t->bytes), ai + 1);
    }
}

static uint32_t alloc_for_request(sluice_turn_server *s, const struct req *r)
{
    uint32_t ai = find_alloc(s, r->now, r->flow);
    if (ai == NONE) {
        reply_error(s, r, SLUICE_STUN_ERR_ALLOCATION_MISMATCH);
        return NONE;
    }
    /* RFC 8656 §7.3, §9.2, §11.2: same credentials as the Allocate. */
    if (memcmp(s->allocs[ai].user_id, r->cr->user_id, 16) != 0) {
        s->st.auth_failures++;
        reply_error(s, r, SLUICE_STUN_ERR_WRONG_CREDENTIALS);
        return NONE;
    }
    return ai;
}

/* RFC 8656 §7.3 */
static void do_refresh(sluice_turn_server *s, const struct req *r)
{
    uint32_t ai = alloc_for_request(s, r);
    if (ai == NONE)
        return;
    struct srv_alloc *a = &s->allocs[ai];
    uint8_t fam;
    int k = -1;
    int fr = sluice_stun_get_address_family(r->m, SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY, &fam);
    if (fr == 0 && !alloc_has_family(s, a, fam == SLUICE_STUN_FAMILY_IPV6 ? SLUICE_AF_INET6
                                                                          : SLUICE_AF_INET, &k)) {
        reply_error(s, r, SLUICE_STUN_ERR_PEER_ADDRESS_FAMILY);
        return;
    }
    if (fr == SLUICE_ERR_MALFORMED) {
        reply_error(s, r, SLUICE_STUN_ERR_BAD_REQUEST);
        return;
    }
    bool zero;
    uint32_t lt = desired_lifetime(s, r->m, &zero);
    if (zero) {
        if (fr == 0 && a->n_relay == 2) {
            /* §7.3: delete one family of a dual allocation */
            port_release(s, a->relay_family[k], a->relay_port[k] - s->cfg.port_min);
            if (k == 0) {
                a->relay_family[0] = a->relay_family[1];
                a->relay_port[0] = a->relay_port[1];
            }
            a->n_relay = 1;
            lt = (uint32_t)((a->expires_us - r->now) / SEC_US);
        } else {
            alloc_delete(s, ai);
        }
        reply_success(s, r, true, lt);
        return;
    }
    a->expires_us = r->now + (uint64_t)lt * SEC_US;
    note_deadline(s, a->expires_us);
    reply_success(s, r, true, lt);
}

/* Common peer checks: family served by the allocation (443) and policy
 * (403). Returns 0 or the code. */
static int peer_check(const sluice_turn_server *s, const struct srv_alloc *a,
                      const sluice_addr *peer)
{
    if (!alloc_has_family(s, a, peer->family, NULL))
        return SLUICE_STUN_ERR_PEER_ADDRESS_FAMILY;
    if (!srv_peer_allowed(s, peer))
        return SLUICE_STUN_ERR_FORBIDDEN;
    return 0;
}

/* RFC 8656 §9.2: every XOR-PEER-ADDRESS or none. */
static void do_create_permission(sluice_turn_server *s, const struct req *r)
{
    uint32_t ai = alloc_for_request(s, r);
    if (ai == NONE)
        return;
    struct srv_alloc *a = &s->allocs[ai];
    sluice_addr peers[MAX_PEERS_PER_REQUEST];
    size_t n = 0, fresh = 0;
    sluice_stun_attr_iter it;
    sluice_stun_attr at;
    int code = 0;
    sluice_stun_attr_iter_init(&it, r->m);
    while (sluice_stun_attr_next(&it, &at)) {
        if (at.type != SLUICE_STUN_ATTR_XOR_PEER_ADDRESS)
            continue;
        if (n == MAX_PEERS_PER_REQUEST ||
            sluice_stun_decode_xor_address(r->m, &at, &peers[n]) < 0) {
            code = SLUICE_STUN_ERR_BAD_REQUEST;
            break;
        }
        int c = peer_check(s, a, &peers[n]);
        if (c && !code)
            code = c;
        bool dup = false;
        for (size_t i = 0; i < n; i++)
            dup = dup || sluice_addr_equal_ip(&peers[i], &peers[n]);
        if (!dup && !find_perm(s, ai, &peers[n], NULL))
            fresh++;
        n++;
    }
    if (!code && n == 0)
        code = SLUICE_STUN_ERR_BAD_REQUEST;
    if (!code && a->n_perms + fresh > s->cfg.max_permissions)
        code = SLUICE_STUN_ERR_INSUFFICIENT_CAPACITY;
    if (code) {
        reply_error(s, r, code);
        return;
    }
    for (size_t i = 0; i < n; i++)
        perm_install(s, r->now, ai, &peers[i]);
    reply_success(s, r, false, 0);
}

static uint16_t channel_max(const sluice_turn_server *s)
{
    return s->cfg.rfc5766_channels ? SLUICE_TURN_CHANNEL_MAX_RFC5766 : SLUICE_TURN_CHANNEL_MAX;
}

/* RFC 8656 §11.2 */
static void do_channel_bind(sluice_turn_server *s, const struct req *r)
{
    uint32_t ai = alloc_for_request(s, r);
    if (ai == NONE)
        return;
    struct srv_alloc *a = &s->allocs[ai];
    uint16_t number;
    sluice_addr peer;
    if (sluice_stun_get_channel_number(r->m, &number) < 0 || number < SLUICE_TURN_CHANNEL_MIN ||
        number > channel_max(s) ||
        sluice_stun_get_xor_address(r->m, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &peer) < 0) {
        reply_error(s, r, SLUICE_STUN_ERR_BAD_REQUEST);
        return;
    }
    int code = peer.port == 0 ? SLUICE_STUN_ERR_BAD_REQUEST : peer_check(s, a, &peer);
    if (code) {
        reply_error(s, r, code);
        return;
    }
    /* §11.2: the number bound to another peer, or the peer to another
     * number (also during the 5 minutes after expiry, §12): 400. */
    struct srv_chan *by_num = find_chan_num(s, ai, number);
    struct srv_chan *by_peer = find_chan_peer(s, ai, &peer);
    if ((by_num && !sluice_addr_equal(&by_num->peer, &peer)) ||
        (by_peer && by_peer->number != number)) {
        reply_error(s, r, SLUICE_STUN_ERR_BAD_REQUEST);
        return;
    }
    bool need_perm = !find_perm(s, ai, &peer, NULL);
    if ((!by_num && a->n_chans >= s->cfg.max_channels) ||
        (need_perm && a->n_perms >= s->cfg.max_permissions)) {
        reply_error(s, r, SLUICE_STUN_ERR_INSUFFICIENT_CAPACITY);
        return;
    }
    if (!by_num) {
        size_t base = (size_t)ai * s->cfg.max_channels;
        for (size_t i = 0; i < s->cfg.max_channels; i++) {
            if (s->chans[base + i].expires_us)
                continue;
            by_num = &s->chans[base + i];
            by_num->peer = peer;
            by_num->number = number;
            srv_index_insert(&s->ix_chan_num, srv_chan_num_hash(s, ai, number), (uint32_t)(base + i));
            srv_index_insert(&s->ix_chan_peer, srv_chan_peer_hash(s, ai, &peer),
                             (uint32_t)(base + i));
            a->n_chans++;
            s->st.channels++;
            break;
        }
    }
    by_num->expires_us = r->now + CHAN_LIFETIME_US;
    note_deadline(s, by_num->expires_us);
    perm_install(s, r->now, ai, &peer);
    reply_success(s, r, false, 0);
}

static void handle_request(sluice_turn_server *s, uint64_t now_us,
                           const sluice_turn_server_flow *flow, const sluice_stun_msg *m)
{
    s->st.requests++;
    if (m->method == SLUICE_STUN_BINDING) {
        /* RFC 8489 §6.3.1: no credentials needed. */
        struct srv_txe *t = tx_reserve(s);
        if (t)
            tx_commit(s, t, flow,
                      sluice_stun_binding_response(m, &flow->client, NULL, s->software, t->bytes,
                                                   sizeof t->bytes),
                      0);
        return;
    }
    struct srv_cred cr;
    bool presented;
    struct req r = {flow, m, NULL, now_us};
    int code = srv_authenticate(s, now_us, flow, m, &cr, &presented);
    if (code) {
        if (presented && code == SLUICE_STUN_ERR_UNAUTHORIZED)
            s->st.auth_failures++;
        if (code == SLUICE_STUN_ERR_UNAUTHORIZED || code == SLUICE_STUN_ERR_STALE_NONCE) {
            /* stateless challenges, bounded per source */
            if (!srv_challenge_allowed(s, now_us, &flow->client)) {
                s->st.challenges_rate_limited++;
                return;
            }
            s->st.challenges++;
        }
        reply_error(s, &r, code);
        return;
    }
    r.cr = &cr;
    /* RFC 8489 §6.3.1: unknown comprehension-required attributes. */
    if (m->n_unknown) {
        reply_error(s, &r, SLUICE_STUN_ERR_UNKNOWN_ATTRIBUTE);
        return;
    }
    switch (m->method) {
    case SLUICE_STUN_ALLOCATE:
        do_allocate(s, &r);
        break;
    case SLUICE_STUN_REFRESH:
        do_refresh(s, &r);
        break;
    case SLUICE_STUN_CREATE_PERMISSION:
        do_create_permission(s, &r);
        break;
    case SLUICE_STUN_CHANNEL_BIND:
        do_channel_bind(s, &r);
        break;
    default:
        reply_error(s, &r, SLUICE_STUN_ERR_BAD_REQUEST);
        break;
    }
    memset(&cr, 0, sizeof cr);
}

/* ------------------------------------------------------------------------ */
/* Data path. Kept small and free of STUN request machinery so a kernel
 * fast path can mirror it: lookups, a permission check, a token bucket. */

static int relay_to_peer(sluice_turn_server *s, uint64_t now_us, uint32_t ai,
                         const sluice_addr *peer, const uint8_t *payload, size_t len,
                         sluice_turn_server_transmit *out, const uint8_t **pp, size_t *pl)
{
    struct srv_alloc *a = &s->allocs[ai];
    int k;
    struct srv_perm *p;
    if (!alloc_has_family(s, a, peer->family, &k)) {
        s->st.dropped_no_permission++;
        return 0;
    }
    if (!(p = find_perm(s, ai, peer, NULL)) || p->expires_us <= now_us) {
        s->st.dropped_no_permission++;
        return 0;
    }
    if (!bw_take(s, a, 0, len, now_us))
        return 0;
    memset(out, 0, sizeof *out);
    out->direction = SLUICE_TURN_SERVER_TO_PEER;
    out->relay = relay_addr(s, a, k);
    out->peer = *peer;
    *pp = payload;
    *pl = len;
    s->st.to_peer_packets++;
    s->st.to_peer_bytes += len;
    return 1;
}

static int client_channel_data(sluice_turn_server *s, uint64_t now_us,
                               const sluice_turn_server_flow *flow, const uint8_t *data,
                               size_t len, sluice_turn_server_transmit *out, const uint8_t **pp,
                               size_t *pl)
{
    uint16_t number;
    const uint8_t *payload;
    size_t plen;
    if (sluice_turn_channel_data_parse_max(data, len, channel_max(s), &number, &payload, &plen) < 0 ||
        number < SLUICE_TURN_CHANNEL_MIN) {
        s->st.dropped_malformed++;
        return 0;
    }
    uint32_t ai = find_alloc(s, now_us, flow);
    if (ai == NONE) {
        s->st.dropped_no_allocation++;
        return 0;
    }
    struct srv_chan *c = find_chan_num(s, ai, number);
    if (!c || c->expires_us <= now_us) {
        s->st.dropped_no_permission++;
        return 0;
    }
    return relay_to_peer(s, now_us, ai, &c->peer, payload, plen, out, pp, pl);
}

/* RFC 8656 §10.2 */
static int client_send(sluice_turn_server *s, uint64_t now_us, const sluice_turn_server_flow *flow,
                       const sluice_stun_msg *m, sluice_turn_server_transmit *out,
                       const uint8_t **pp, size_t *pl)
{
    sluice_addr peer;
    const uint8_t *d;
    size_t dl;
    uint32_t ai = find_alloc(s, now_us, flow);
    if (ai == NONE) {
        s->st.dropped_no_allocation++;
        return 0;
    }
    if (sluice_stun_get_xor_address(m, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &peer) < 0 ||
        sluice_stun_get_bytes(m, SLUICE_STUN_ATTR_DATA, &d, &dl) < 0) {
        s->st.dropped_malformed++;
        return 0;
    }
    if (peer.port == 0 || !srv_peer_allowed(s, &peer)) {
        s->st.dropped_policy++;
        return 0;
    }
    return relay_to_peer(s, now_us, ai, &peer, d, dl, out, pp, pl);
}

int sluice_turn_server_handle_client(sluice_turn_server *s, uint64_t now_us,
                                     const sluice_turn_server_flow *flow, const uint8_t *data,
                                     size_t len, sluice_turn_server_transmit *out,
                                     const uint8_t **payload, size_t *payload_len)
{
    sluice_stun_msg m;
    if (!s || !flow || (!data && len) || !out || !payload || !payload_len ||
        (srv_flow_is_stream(flow) && flow->conn_id == 0))
        return SLUICE_ERR_INVALID;
    if (len >= 1 && (data[0] & 0xC0) == 0x40)
        return client_channel_data(s, now_us, flow, data, len, out, payload, payload_len);
    int perr = sluice_stun_parse(&m, data, len);
    if (perr == SLUICE_ERR_NOT_STUN && !srv_flow_is_stream(flow)) {
        /* An RFC 3489 Binding request (libnice's srflx discovery). */
        uint8_t resp[128];
        int n = sluice_stun_classic_binding_response(data, len, &flow->client, resp, sizeof resp);
        if (n > 0) {
            struct srv_txe *t = tx_reserve(s);
            s->st.requests++;
            if (t) {
                memcpy(t->bytes, resp, (size_t)n);
                tx_commit(s, t, flow, n, 0);
            }
            return 0;
        }
    }
    if (perr < 0) {
        s->st.dropped_malformed++;
        return 0;
    }
    if (m.cls == SLUICE_STUN_INDICATION) {
        if (m.method == SLUICE_STUN_SEND)
            return client_send(s, now_us, flow, &m, out, payload, payload_len);
        return 0;
    }
    if (m.cls == SLUICE_STUN_REQUEST)
        handle_request(s, now_us, flow, &m);
    return 0;
}

int sluice_turn_server_handle_peer(sluice_turn_server *s, uint64_t now_us,
                                   const sluice_addr *relay, const sluice_addr *peer,
                                   const uint8_t *data, size_t len, uint8_t *buf, size_t cap,
                                   sluice_turn_server_transmit *out)
{
    if (!s || !relay || !peer || (!data && len) || !buf || !out || len > 65535)
        return SLUICE_ERR_INVALID;
    int f = family_index(relay->family);
    if (f < 0 || !s->ports[f].enabled || relay->port < s->cfg.port_min ||
        relay->port > s->cfg.port_max || !sluice_addr_equal_ip(relay, &s->ports[f].ip)) {
        s->st.dropped_no_allocation++;
        return 0;
    }
    uint32_t owner = s->ports[f].owner[relay->port - s->cfg.port_min];
    if (!owner || s->allocs[owner - 1].expires_us <= now_us) {
        s->st.dropped_no_allocation++;
        return 0;
    }
    uint32_t ai = owner - 1;
    struct srv_alloc *a = &s->allocs[ai];
    /* RFC 8656 §10.3: only from peers with a permission. */
    struct srv_perm *p = find_perm(s, ai, peer, NULL);
    if (!p || p->expires_us <= now_us) {
        s->st.dropped_no_permission++;
        return 0;
    }
    struct srv_chan *c = find_chan_peer(s, ai, peer);
    int n;
    if (c && c->expires_us > now_us) {
        /* §12.4: ChannelData, padded to 4 on streams (§12.5) */
        size_t pad = srv_flow_is_stream(&a->flow) ? (4 - (len & 3)) & 3 : 0;
        if (cap < 4 + len + pad)
            return SLUICE_ERR_NOSPACE;
        if (!bw_take(s, a, 1, len, now_us))
            return 0;
        sluice_turn_channel_header(buf, c->number, (uint16_t)len);
        if (len)
            memcpy(buf + 4, data, len);
        memset(buf + 4 + len, 0, pad);
        n = (int)(4 + len + pad);
    } else {
        /* §10.3: Data indication */
        sluice_stun_writer w;
        uint8_t txid[SLUICE_STUN_TXID_LEN];
        wr32(txid, s->ind_seed);
        wr64(txid + 4, ++s->ind_counter);
        if (cap < 20 + 24 + 4 + len + 3)
            return SLUICE_ERR_NOSPACE;
        if (!bw_take(s, a, 1, len, now_us))
            return 0;
        sluice_stun_writer_init(&w, buf, cap,
                                sluice_stun_type(SLUICE_STUN_DATA, SLUICE_STUN_INDICATION), txid);
        sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, peer);
        sluice_stun_put(&w, SLUICE_STUN_ATTR_DATA, data, len);
        n = sluice_stun_writer_result(&w);
        if (n < 0)
            return n;
    }
    memset(out, 0, sizeof *out);
    out->direction = SLUICE_TURN_SERVER_TO_CLIENT;
    out->flow = a->flow;
    s->st.to_client_packets++;
    s->st.to_client_bytes += len;
    return n;
}

int sluice_turn_server_connection_closed(sluice_turn_server *s, uint64_t now_us, uint64_t conn_id)
{
    (void)now_us;
    if (!s || !conn_id)
        return 0;
    sluice_turn_server_flow key;
    memset(&key, 0, sizeof key);
    key.transport = SLUICE_TRANSPORT_TCP;
    key.conn_id = conn_id;
    uint32_t ai = srv_index_find(s, &s->ix_tuple, IX_TUPLE, srv_flow_hash(s, &key), &key);
    if (ai == NONE)
        return 0;
    alloc_delete(s, ai); /* RFC 8656 §3.1: the stream ends the allocation */
    return 1;
}

int sluice_turn_server_relay_failed(sluice_turn_server *s, uint64_t now_us,
                                    const sluice_addr *relay)
{
    (void)now_us;
    if (!s || !relay)
        return SLUICE_ERR_INVALID;
    int f = family_index(relay->family);
    if (f < 0 || !s->ports[f].enabled || relay->port < s->cfg.port_min ||
        relay->port > s->cfg.port_max || !sluice_addr_equal_ip(relay, &s->ports[f].ip))
        return SLUICE_ERR_NOT_FOUND;
    uint32_t idx = relay->port - s->cfg.port_min;
    uint32_t owner = s->ports[f].owner[idx];
    if (!owner)
        return SLUICE_ERR_NOT_FOUND;
    uint32_t ai = owner - 1;
    struct srv_alloc *a = &s->allocs[ai];
    s->st.relay_bind_failures++;
    /* The driver has no socket: forget the port without a CLOSE. It stays
     * out of use until another port is picked (it is simply FREE again). */
    s->ports[f].owner[idx] = 0;
    s->ports[f].state[idx] &= PORT_QUEUED;
    int k = a->relay_family[0] == f && a->relay_port[0] == relay->port ? 0 : 1;
    struct srv_txe *t = NULL;
    if (a->response_queued)
        for (size_t i = 0; i < s->tx_len && !t; i++) {
            struct srv_txe *e = &s->tx[(s->tx_head + i) % s->cfg.max_pending_transmits];
            if (e->alloc_ref == ai + 1)
                t = e;
        }
    uint32_t np = NONE;
    if (t && ++a->bind_attempts < MAX_BIND_ATTEMPTS) {
        /* keep the failed port busy while picking, so it is not chosen again */
        s->ports[f].state[idx] |= PORT_RESERVED;
        np = port_pick(s, f, false, false);
        s->ports[f].state[idx] &= PORT_QUEUED;
    }
    if (np != NONE) {
        a->relay_port[k] = (uint16_t)(s->cfg.port_min + np);
        s->ports[f].owner[np] = ai + 1;
        port_set(s, f, np, PORT_OPEN_PENDING);
        int n = build_allocate_success(s, a, t->bytes, sizeof t->bytes);
        t->len = (uint16_t)(n > 0 ? n : 0);
        return 0;
    }
    /* Give up: remove the port from the allocation, then the allocation. */
    uint8_t txid[SLUICE_STUN_TXID_LEN];
    sluice_turn_server_flow flow = a->flow;
    struct srv_cred cr;
    memset(&cr, 0, sizeof cr);
    memcpy(txid, a->txid, sizeof txid);
    memcpy(cr.key, a->key, 32);
    cr.key_len = a->key_len;
    cr.sha256_mi = a->sha256_mi;
    a->relay_port[k] = a->relay_port[a->n_relay - 1];
    a->relay_family[k] = a->relay_family[a->n_relay - 1];
    a->n_relay--;
    alloc_delete(s, ai);
    if (t) {
        /* replace the queued success with 508 (RFC 8656 §7.2) */
        sluice_stun_writer w;
        sluice_stun_writer_init(&w, t->bytes, sizeof t->bytes,
                                sluice_stun_type(SLUICE_STUN_ALLOCATE, SLUICE_STUN_ERROR), txid);
        sluice_stun_put_error_code(&w, SLUICE_STUN_ERR_INSUFFICIENT_CAPACITY, NULL);
        seal(s, &w, cr.key, cr.key_len, cr.sha256_mi);
        int n = sluice_stun_writer_result(&w);
        t->len = (uint16_t)(n > 0 ? n : 0);
        t->flow = flow;
        s->st.error_responses++;
    }
    memset(&cr, 0, sizeof cr);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Time */

void sluice_turn_server_handle_timeout(sluice_turn_server *s, uint64_t now_us)
{
    if (!s || now_us < s->next_deadline_us)
        return;
    uint64_t next = SLUICE_NEVER;
    for (uint32_t ai = 0; ai < s->cfg.max_allocations; ai++) {
        struct srv_alloc *a = &s->allocs[ai];
        if (!a->used)
            continue;
        if (a->expires_us <= now_us) {
            alloc_delete(s, ai);
            s->st.allocations_expired++;
            continue;
        }
        if (a->expires_us < next)
            next = a->expires_us;
        size_t pb = (size_t)ai * s->cfg.max_permissions, cb = (size_t)ai * s->cfg.max_channels;
        for (size_t i = 0; i < s->cfg.max_permissions && a->n_perms; i++) {
            uint64_t e = s->perms[pb + i].expires_us;
            if (!e)
                continue;
            if (e <= now_us)
                perm_remove(s, (uint32_t)(pb + i));
            else if (e < next)
                next = e;
        }
        for (size_t i = 0; i < s->cfg.max_channels && a->n_chans; i++) {
            uint64_t e = s->chans[cb + i].expires_us;
            if (!e)
                continue;
            uint64_t gone = e + CHAN_COOLDOWN_US;
            if (gone <= now_us)
                chan_remove(s, (uint32_t)(cb + i));
            else if ((e > now_us ? e : gone) < next)
                next = e > now_us ? e : gone;
        }
    }
    for (size_t i = 0; i < s->cfg.max_reservations; i++) {
        struct srv_reservation *rv = &s->resv[i];
        if (!rv->expires_us)
            continue;
        if (rv->expires_us <= now_us) {
            if (port_state(s, rv->family, rv->port) == PORT_RESERVED)
                port_set(s, rv->family, rv->port, PORT_FREE);
            memset(rv, 0, sizeof *rv);
        } else if (rv->expires_us < next) {
            next = rv->expires_us;
        }
    }
    s->next_deadline_us = next;
}

uint64_t sluice_turn_server_next_timeout(const sluice_turn_server *s)
{
    if (!s || s->next_deadline_us == SLUICE_NEVER)
        return SLUICE_NEVER;
    /* 1 s granularity: one sweep serves every deadline within a second */
    return (s->next_deadline_us + SEC_US - 1) / SEC_US * SEC_US;
}

void sluice_turn_server_get_stats(const sluice_turn_server *s, sluice_turn_server_stats *st)
{
    if (s && st)
        *st = s->st;
}

size_t sluice_turn_server_memory(const sluice_turn_server *s)
{
    return s ? s->mem_bytes : 0;
}
