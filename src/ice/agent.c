/* SPDX-License-Identifier: MIT */
/* ICE agent object: configuration, streams and credentials, local bases,
 * gathering (host, server-reflexive, relayed through the TURN client),
 * events, the data-path route and the core-contract entry points. The
 * checklist lives in checklist.c, the STUN exchanges in connectivity.c. */
#include <stdio.h>
#include <string.h>

#include "ice/internal.h"

#define MAX_STREAMS 64
#define MAX_COMPONENTS 256
#define MAX_BASES 64
#define MAX_REMOTE 1000
#define MAX_PAIRS 1000
#define MAX_EVENTS 65536

void sluice_ice_config_init(sluice_ice_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->ta_us = 50 * ICE_MS; /* RFC 8445 §14.2 */
    cfg->max_streams = 4;
    cfg->max_components = 2;
    cfg->max_bases = 8;
    cfg->max_remote_candidates = 64;
    cfg->max_pairs = 100; /* §6.1.2.5 */
    cfg->max_events = 64;
    cfg->check_rc = 7;
    cfg->check_max_rto_us = 3 * ICE_SEC;
    cfg->nomination_wait_us = 250 * ICE_MS;
    cfg->failure_timeout_us = 30 * ICE_SEC;
    cfg->consent_interval_us = 5 * ICE_SEC; /* RFC 7675 §5.1 */
    cfg->consent_timeout_us = 30 * ICE_SEC;
    cfg->keepalive_us = 15 * ICE_SEC; /* RFC 8445 §11 */
}

int ice_random(sluice_ice_agent *a, void *out, size_t len)
{
    return sluice_rng_fill(&a->cfg.rng, out, len);
}

/* Tables start small and double up to their configured maximum, so that an
 * idle agent costs little (1,000 agents: docs/benchmarks.md); a table never
 * grows past its maximum. *tab is a pointer to the table pointer. Returns 0
 * when there is room for one more, SLUICE_ERR_FULL or SLUICE_ERR_NOMEM. */
int ice_grow(sluice_ice_agent *a, void *tab, size_t *cap, size_t n, size_t max, size_t elem)
{
    size_t head = 0;
    return ice_ring_grow(a, tab, &head, cap, n, max, elem);
}

/* The same for a ring buffer: entries are moved to the front in order. */
int ice_ring_grow(sluice_ice_agent *a, void *ring, size_t *head, size_t *cap, size_t len,
                  size_t max, size_t elem)
{
    uint8_t **r = ring;
    size_t nc;
    uint8_t *nr;
    if (len < *cap)
        return 0;
    if (*cap >= max)
        return SLUICE_ERR_FULL;
    nc = *cap ? *cap * 2 : 4;
    if (nc > max)
        nc = max;
    nr = sluice_xcalloc(&a->cfg.alloc, nc, elem);
    if (!nr)
        return SLUICE_ERR_NOMEM;
    for (size_t i = 0; i < len; i++)
        memcpy(nr + i * elem, *r + ((*head + i) % *cap) * elem, elem);
    sluice_xfree(&a->cfg.alloc, *r);
    *r = nr;
    *head = 0;
    *cap = nc;
    return 0;
}

/* Random ice-chars (RFC 8839 §5.4). */
static int random_chars(sluice_ice_agent *a, char *out, size_t n)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t r[64];
    int rc;
    if (n > sizeof r)
        return SLUICE_ERR_INVALID;
    rc = ice_random(a, r, n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        out[i] = digits[r[i] & 63];
    out[n] = '\0';
    return 0;
}

static void stream_free_tables(sluice_ice_agent *a, struct stream *s)
{
    const sluice_allocator *al = &a->cfg.alloc;
    sluice_xfree(al, s->bases);
    sluice_xfree(al, s->local);
    sluice_xfree(al, s->remote);
    sluice_xfree(al, s->pairs);
    sluice_xfree(al, s->triggered);
    sluice_xfree(al, s->gathers);
    sluice_xfree(al, s->comp);
    sluice_stun_key_clear(&s->key_local);
    sluice_stun_key_clear(&s->key_remote);
    sluice_stun_key_clear(&s->key_prev);
}

void sluice_ice_agent_free(sluice_ice_agent *a)
{
    if (!a)
        return;
    const sluice_allocator al = a->cfg.alloc;
    if (a->streams)
        for (size_t i = 0; i < a->cfg.max_streams; i++) {
            if (a->streams[i])
                stream_free_tables(a, a->streams[i]);
            sluice_xfree(&al, a->streams[i]);
        }
    if (a->turns)
        for (size_t i = 0; i < a->turns_cap; i++)
            sluice_turn_client_free(a->turns[i].tc);
    for (size_t i = 0; i < a->n_turn; i++)
        for (size_t k = 0; k < 4; k++)
            sluice_xfree(&al, a->turn_strings[i][k]);
    sluice_xfree(&al, a->stream_rx);
    sluice_xfree(&al, a->software);
    sluice_xfree(&al, a->streams);
    sluice_xfree(&al, a->turns);
    sluice_xfree(&al, a->resp);
    sluice_xfree(&al, a->evq);
    sluice_xfree(&al, a);
}

static char *dup_str(const sluice_allocator *al, const char *s)
{
    size_t n = strlen(s);
    char *d = sluice_xcalloc(al, n + 1, 1);
    if (d)
        memcpy(d, s, n);
    return d;
}

sluice_ice_agent *sluice_ice_agent_new(const sluice_ice_config *cfg, int *err)
{
    sluice_ice_agent *a;
    int dummy;
    if (!err)
        err = &dummy;
    *err = SLUICE_ERR_INVALID;
    if (!cfg || cfg->ta_us < 5 * ICE_MS || cfg->max_streams < 1 || cfg->max_streams > MAX_STREAMS ||
        cfg->max_components < 1 || cfg->max_components > MAX_COMPONENTS || cfg->max_bases < 1 ||
        cfg->max_bases > MAX_BASES || cfg->max_remote_candidates < 1 ||
        cfg->max_remote_candidates > MAX_REMOTE || cfg->max_pairs < 1 ||
        cfg->max_pairs > MAX_PAIRS || cfg->max_events < 8 || cfg->max_events > MAX_EVENTS ||
        cfg->check_rc < 1 || cfg->check_rc > 32 || cfg->consent_interval_us == 0 ||
        cfg->consent_timeout_us < cfg->consent_interval_us ||
        (cfg->software && strlen(cfg->software) > 127))
        return NULL;
    *err = SLUICE_ERR_NOMEM;
    a = sluice_xcalloc(&cfg->alloc, 1, sizeof *a);
    if (!a)
        return NULL;
    a->cfg = *cfg;
    a->cfg.software = NULL;
    a->controlling = cfg->controlling;
    a->max_turns = cfg->max_streams * cfg->max_components * cfg->max_bases * ICE_MAX_SERVERS;
    if (a->max_turns > 1024)
        a->max_turns = 1024;
    a->streams = sluice_xcalloc(&cfg->alloc, cfg->max_streams, sizeof *a->streams);
    if (cfg->software)
        a->software = dup_str(&cfg->alloc, cfg->software);
    if (!a->streams || (cfg->software && !a->software)) {
        sluice_ice_agent_free(a);
        return NULL;
    }
    /* RFC 8445 §7.1.1: the tie-breaker is a random 64-bit number. */
    if (ice_random(a, &a->tiebreaker, sizeof a->tiebreaker) < 0) {
        *err = SLUICE_ERR_CRYPTO;
        sluice_ice_agent_free(a);
        return NULL;
    }
    *err = 0;
    return a;
}

/* ------------------------------------------------------------------------ */
/* Events */

void ice_emit(sluice_ice_agent *a, const sluice_ice_event *ev)
{
    if (ice_ring_grow(a, &a->evq, &a->ev_head, &a->ev_cap, a->ev_len, a->cfg.max_events,
                      sizeof *a->evq) < 0) {
        a->stats.events_dropped++;
        return;
    }
    a->evq[(a->ev_head + a->ev_len) % a->ev_cap] = *ev;
    a->ev_len++;
}

bool sluice_ice_agent_poll_event(sluice_ice_agent *a, sluice_ice_event *ev)
{
    if (!a || !ev || a->ev_len == 0)
        return false;
    *ev = a->evq[a->ev_head];
    a->ev_head = (a->ev_head + 1) % a->ev_cap;
    a->ev_len--;
    return true;
}

void ice_set_state(sluice_ice_agent *a, struct stream *s, sluice_ice_state st)
{
    sluice_ice_event ev;
    if (s->state == st)
        return;
    s->state = st;
    if (st != SLUICE_ICE_COMPLETED)
        s->completed_us = 0;
    memset(&ev, 0, sizeof ev);
    ev.type = SLUICE_ICE_EVENT_STATE;
    ev.stream = s->id;
    ev.state = st;
    ice_emit(a, &ev);
}

const char *sluice_ice_state_name(sluice_ice_state s)
{
    switch (s) {
    case SLUICE_ICE_NEW: return "new";
    case SLUICE_ICE_CHECKING: return "checking";
    case SLUICE_ICE_CONNECTED: return "connected";
    case SLUICE_ICE_COMPLETED: return "completed";
    case SLUICE_ICE_FAILED: return "failed";
    case SLUICE_ICE_DISCONNECTED: return "disconnected";
    }
    return "?";
}

/* ------------------------------------------------------------------------ */
/* Streams and credentials */

struct stream *ice_stream(const sluice_ice_agent *a, int id)
{
    if (!a || id < 1 || (size_t)id > a->cfg.max_streams || !a->streams[id - 1] ||
        !a->streams[id - 1]->used)
        return NULL;
    return a->streams[id - 1];
}

static int new_local_credentials(sluice_ice_agent *a, struct stream *s)
{
    int rc = random_chars(a, s->ufrag, ICE_UFRAG_LEN);
    if (rc == 0)
        rc = random_chars(a, s->pwd, ICE_PWD_LEN);
    if (rc == 0)
        rc = sluice_stun_key_short_term(&s->key_local, s->pwd, strlen(s->pwd));
    return rc;
}

int sluice_ice_agent_add_stream(sluice_ice_agent *a, unsigned n_components)
{
    struct stream *s = NULL;
    const sluice_allocator *al;
    size_t nb;
    int rc;

    if (!a || n_components < 1 || n_components > a->cfg.max_components)
        return SLUICE_ERR_INVALID;
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        if (!a->streams[i]) {
            /* Streams are allocated as they are added (an idle agent of
             * max_streams 4 pays for one). */
            s = a->streams[i] = sluice_xcalloc(&a->cfg.alloc, 1, sizeof *s);
            if (!s)
                return SLUICE_ERR_NOMEM;
            s->id = (int)i + 1;
            break;
        }
    }
    if (!s)
        return SLUICE_ERR_FULL;
    al = &a->cfg.alloc;
    nb = n_components * a->cfg.max_bases;
    /* Per base: host, srflx, prflx, and a relay and srflx per TURN server. */
    s->max_local = nb * (3 + 2 * ICE_MAX_SERVERS);
    if (s->max_local > 4096)
        s->max_local = 4096;
    s->max_gathers = nb * ICE_MAX_SERVERS;
    /* Bases, the triggered queue and components now; candidates, pairs
     * and gathering transactions grow with use up to their maximums. */
    s->bases = sluice_xcalloc(al, nb, sizeof *s->bases);
    s->triggered = sluice_xcalloc(al, a->cfg.max_pairs, sizeof *s->triggered);
    s->comp = sluice_xcalloc(al, n_components, sizeof *s->comp);
    s->used = true; /* so that a failure below frees the tables */
    if (!s->bases || !s->triggered || !s->comp) {
        rc = SLUICE_ERR_NOMEM;
        goto fail;
    }
    s->n_components = n_components;
    for (unsigned c = 0; c < n_components; c++) {
        s->comp[c].sel.pair = -1;
    }
    rc = new_local_credentials(a, s);
    if (rc < 0)
        goto fail;
    return s->id;
fail:
    stream_free_tables(a, s);
    a->streams[s->id - 1] = NULL;
    sluice_xfree(&a->cfg.alloc, s);
    return rc;
}

int sluice_ice_agent_local_credentials(const sluice_ice_agent *a, int stream, const char **ufrag,
                                       const char **pwd)
{
    struct stream *s = ice_stream(a, stream);
    if (!s)
        return SLUICE_ERR_NOT_FOUND;
    if (ufrag)
        *ufrag = s->ufrag;
    if (pwd)
        *pwd = s->pwd;
    return 0;
}

int sluice_ice_agent_set_local_credentials(sluice_ice_agent *a, int stream, const char *ufrag,
                                           const char *pwd)
{
    struct stream *s = ice_stream(a, stream);
    if (!s)
        return SLUICE_ERR_NOT_FOUND;
    /* RFC 8839 §5.4 syntax; RFC 8445 §5.3: at least 24 bits of randomness
     * in the ufrag and 128 in the password, so at least 4 and 22 chars. */
    if (!ice_chars_ok(ufrag, 4, ICE_LOCAL_UFRAG_MAX) || !ice_chars_ok(pwd, 22, ICE_LOCAL_PWD_MAX))
        return SLUICE_ERR_INVALID;
    memcpy(s->ufrag, ufrag, strlen(ufrag) + 1);
    memcpy(s->pwd, pwd, strlen(pwd) + 1);
    return sluice_stun_key_short_term(&s->key_local, s->pwd, strlen(s->pwd));
}

int sluice_ice_agent_set_remote_credentials(sluice_ice_agent *a, uint64_t now_us, int stream,
                                            const char *ufrag, const char *pwd)
{
    struct stream *s = ice_stream(a, stream);
    int rc;
    if (!s)
        return SLUICE_ERR_NOT_FOUND;
    /* RFC 8839 §5.4: ice-ufrag 4..256 ice-chars, ice-pwd 22..256. Some
     * peers use shorter passwords; accept from 16 and say so in docs. */
    if (!ice_chars_ok(ufrag, 4, SLUICE_ICE_UFRAG_MAX) || !ice_chars_ok(pwd, 16, SLUICE_ICE_PWD_MAX))
        return SLUICE_ERR_INVALID;
    if (s->have_remote_creds && strcmp(s->rufrag, ufrag) == 0 && strcmp(s->rpwd, pwd) == 0)
        return 0;
    if (s->have_remote_creds)
        return SLUICE_ERR_STATE; /* new remote credentials mean a restart */
    rc = sluice_stun_key_short_term(&s->key_remote, pwd, strlen(pwd));
    if (rc < 0)
        return rc;
    memcpy(s->rufrag, ufrag, strlen(ufrag) + 1);
    memcpy(s->rpwd, pwd, strlen(pwd) + 1);
    s->have_remote_creds = true;
    ice_update_state(a, now_us, s);
    return 0;
}

void sluice_ice_agent_set_remote_lite(sluice_ice_agent *a, bool lite)
{
    if (!a)
        return;
    a->remote_lite = lite;
    /* RFC 8445 §6.1.1: a full agent facing a lite agent is controlling. */
    if (lite && !a->controlling)
        sluice_ice_agent_set_role(a, true);
}

int sluice_ice_agent_set_role(sluice_ice_agent *a, bool controlling)
{
    if (!a)
        return SLUICE_ERR_INVALID;
    if (a->controlling != controlling) {
        a->controlling = controlling;
        ice_recompute_priorities(a);
    }
    return 0;
}

bool sluice_ice_agent_controlling(const sluice_ice_agent *a)
{
    return a && a->controlling;
}

void sluice_ice_agent_set_relay_only(sluice_ice_agent *a, bool relay_only)
{
    if (a)
        a->relay_only = relay_only;
}

/* ------------------------------------------------------------------------ */
/* Servers and local candidates */

int sluice_ice_agent_add_stun_server(sluice_ice_agent *a, const sluice_addr *server)
{
    if (!a || !server || (server->family != SLUICE_AF_INET && server->family != SLUICE_AF_INET6) ||
        server->port == 0)
        return SLUICE_ERR_INVALID;
    if (a->n_stun == ICE_MAX_SERVERS)
        return SLUICE_ERR_FULL;
    a->stun_servers[a->n_stun++] = *server;
    return 0;
}

int sluice_ice_agent_add_turn_server(sluice_ice_agent *a, const sluice_ice_turn_server *server)
{
    const sluice_allocator *al;
    if (!a || !server || !server->username || !server->password ||
        (server->server.family != SLUICE_AF_INET && server->server.family != SLUICE_AF_INET6) ||
        server->server.port == 0 ||
        (server->transport != SLUICE_TRANSPORT_UDP && server->transport != SLUICE_TRANSPORT_TCP &&
         server->transport != SLUICE_TRANSPORT_TLS) ||
        (server->server_name && (!server->server_name[0] || strlen(server->server_name) > 255)))
        return SLUICE_ERR_INVALID;
    if (a->n_turn == ICE_MAX_SERVERS)
        return SLUICE_ERR_FULL;
    al = &a->cfg.alloc;
    /* Media relayed over a stream is reassembled by the TURN client and
     * handed out from here (one datagram at a time). */
    if (server->transport != SLUICE_TRANSPORT_UDP && !a->stream_rx &&
        !(a->stream_rx = sluice_xcalloc(al, 1, ICE_STREAM_RX)))
        return SLUICE_ERR_NOMEM;
    size_t i = a->n_turn;
    const char *src[4] = {server->username, server->password, server->server_name,
                          server->ca_file};
    char **dst = a->turn_strings[i];
    for (size_t k = 0; k < 4; k++) {
        dst[k] = src[k] ? dup_str(al, src[k]) : NULL;
        if (src[k] && !dst[k]) {
            for (size_t j = 0; j < 4; j++) {
                sluice_xfree(al, dst[j]);
                dst[j] = NULL;
            }
            return SLUICE_ERR_NOMEM;
        }
    }
    a->turn_servers[i] = *server;
    a->turn_servers[i].username = dst[0];
    a->turn_servers[i].password = dst[1];
    a->turn_servers[i].server_name = dst[2];
    a->turn_servers[i].ca_file = dst[3];
    a->n_turn++;
    return 0;
}

static bool signal_type(const sluice_ice_agent *a, sluice_ice_cand_type t)
{
    if (t == SLUICE_ICE_CAND_PRFLX)
        return false; /* RFC 8445 §7.2.5.3.1: never signalled */
    return !a->relay_only || t == SLUICE_ICE_CAND_RELAY;
}

static void signal_local(sluice_ice_agent *a, struct stream *s, struct lcand *l)
{
    sluice_ice_event ev;
    if (l->signalled || l->withdrawn || !signal_type(a, l->c.type))
        return;
    l->signalled = true;
    memset(&ev, 0, sizeof ev);
    ev.type = SLUICE_ICE_EVENT_LOCAL_CANDIDATE;
    ev.stream = s->id;
    ev.component = l->c.component;
    ev.candidate = l->c;
    ice_emit(a, &ev);
}

/* Add a local candidate unless it is redundant (RFC 8445 §5.1.3: same
 * address and base as an existing one). Returns its index or < 0. */
int ice_add_local(sluice_ice_agent *a, struct stream *s, sluice_ice_cand_type type,
                  const sluice_addr *addr, const sluice_addr *related, int base, int turn,
                  const sluice_addr *server, bool signal)
{
    const struct base *b = &s->bases[base];
    /* Copies first: addr or related may point into the table that grows. */
    const sluice_addr at = *addr, rel = related ? *related : (sluice_addr){0};
    sluice_transport via = turn >= 0 ? a->turns[turn].transport : SLUICE_TRANSPORT_UDP;
    uint16_t local_pref = b->local_pref;
    struct lcand *l;
    int rc;
    int idx = -1;
    for (size_t i = 0; i < s->n_local && idx < 0; i++) {
        if (s->local[i].base == base && sluice_addr_equal(&s->local[i].c.addr, &at)) {
            /* A new allocation may get the relayed address of a lost one
             * back: the candidate lives again, on the new allocation. */
            if (!s->local[i].withdrawn || type != SLUICE_ICE_CAND_RELAY)
                return (int)i;
            idx = (int)i;
        }
    }
    if (idx < 0) {
        rc = ice_grow(a, &s->local, &s->cap_local, s->n_local, s->max_local, sizeof *s->local);
        if (rc < 0)
            return rc;
        idx = (int)s->n_local++;
    }
    l = &s->local[idx];
    memset(l, 0, sizeof *l);
    l->c.component = b->component;
    l->c.transport = SLUICE_TRANSPORT_UDP;
    l->c.type = type;
    l->c.addr = at;
    /* RFC 8445 §5.1.2.1 leaves local preferences to us: relayed
     * candidates rank by the transport to the server first (UDP, TCP, TLS:
     * fewer layers, no head-of-line blocking), then by base (RFC 8421).
     * Over UDP that is the base's own preference. */
    if (type == SLUICE_ICE_CAND_RELAY)
        local_pref = (uint16_t)((3u - (unsigned)via) << 14 | (b->local_pref & 0x3FFFu));
    l->c.priority = sluice_ice_priority(type, local_pref, b->component);
    if (related && type != SLUICE_ICE_CAND_HOST)
        l->c.related = rel;
    ice_foundation(l->c.foundation, type, &b->addr, server, via);
    l->base = base;
    l->turn = turn;
    if (signal && s->gathering)
        signal_local(a, s, l);
    return idx;
}

/* RFC 8421 §4: IPv6 and IPv4 interleaved, IPv6 first. */
static uint16_t local_pref_for(const struct stream *s, const sluice_addr *addr, unsigned comp)
{
    unsigned same = 0;
    for (size_t i = 0; i < s->n_bases; i++)
        if (s->bases[i].component == comp && s->bases[i].addr.family == addr->family)
            same++;
    unsigned rank = 2 * same + (addr->family == SLUICE_AF_INET ? 1 : 0);
    return (uint16_t)(rank > 65535 ? 0 : 65535 - rank);
}

static void gather_base(sluice_ice_agent *a, uint64_t now, struct stream *s, int bi);

int sluice_ice_agent_add_base(sluice_ice_agent *a, uint64_t now_us, int stream,
                              unsigned component, const sluice_addr *addr)
{
    struct stream *s = ice_stream(a, stream);
    struct base *b;
    if (!s)
        return SLUICE_ERR_NOT_FOUND;
    if (!addr || component < 1 || component > s->n_components ||
        (addr->family != SLUICE_AF_INET && addr->family != SLUICE_AF_INET6) || addr->port == 0)
        return SLUICE_ERR_INVALID;
    for (size_t i = 0; i < s->n_bases; i++)
        if (sluice_addr_equal(&s->bases[i].addr, addr))
            return 0;
    unsigned per_comp = 0;
    for (size_t i = 0; i < s->n_bases; i++)
        if (s->bases[i].component == component)
            per_comp++;
    if (per_comp >= a->cfg.max_bases)
        return SLUICE_ERR_FULL;
    b = &s->bases[s->n_bases];
    b->addr = *addr;
    b->component = (uint16_t)component;
    b->local_pref = local_pref_for(s, addr, component);
    s->n_bases++;
    if (s->gathering)
        gather_base(a, now_us, s, (int)s->n_bases - 1);
    return 0;
}

static bool server_family_ok(const sluice_addr *base, const sluice_addr *server)
{
    return base->family == server->family;
}

/* A TURN client for allocation t on TURN server k from base bi of stream
 * s (allocated later by the pacer). On failure a SERVER_ERROR event and t
 * stays unused. */
static void turn_client_start(sluice_ice_agent *a, struct stream *s, int bi, size_t k,
                              struct turn_alloc *t)
{
    const struct base *b = &s->bases[bi];
    const sluice_ice_turn_server *ts = &a->turn_servers[k];
    sluice_turn_client_config tc;
    int err;
    sluice_turn_client_config_init(&tc);
    tc.server = ts->server;
    tc.transport = ts->transport;
    tc.server_name = ts->server_name;
    tc.ca_file = ts->ca_file;
    tc.tls_verify = !ts->tls_insecure;
    tc.username = ts->username;
    tc.password = ts->password;
    tc.family = b->addr.family == SLUICE_AF_INET6 ? SLUICE_TURN_FAMILY_IPV6
                                                  : SLUICE_TURN_FAMILY_IPV4;
    tc.max_permissions = a->cfg.max_remote_candidates;
    tc.max_channels = s->n_components > 8 ? s->n_components : 8;
    /* UDP: unwrapped in place, never queued. A stream is reassembled and
     * queued: room for everything one 64 KiB chunk can carry (8-byte
     * ChannelData frames with their records). */
    tc.recv_queue_bytes =
        ts->transport == SLUICE_TRANSPORT_UDP ? 70u * 1024 : ICE_STREAM_QUEUE;
    tc.software = a->software;
    tc.rng = a->cfg.rng;
    tc.alloc = a->cfg.alloc;
    memset(t, 0, sizeof *t);
    t->tc = sluice_turn_client_new(&tc, &err);
    if (!t->tc) {
        sluice_ice_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = SLUICE_ICE_EVENT_SERVER_ERROR;
        ev.stream = s->id;
        ev.server = ts->server;
        ev.base = b->addr;
        ev.transport = ts->transport;
        ev.reason = err;
        snprintf(ev.text, sizeof ev.text, "TURN client: %s", sluice_strerror(err));
        ice_emit(a, &ev);
        return;
    }
    t->used = true;
    t->stream = s->id;
    t->base = bi;
    t->server = (int)k;
    t->transport = ts->transport;
    t->stream_server = ts->server;
    t->lcand = -1;
}

/* Host candidate at once; Binding requests and allocations queued for the
 * pacer (RFC 8445 §5.1.1). */
static void gather_base(sluice_ice_agent *a, uint64_t now, struct stream *s, int bi)
{
    const struct base *b = &s->bases[bi];
    int li = ice_add_local(a, s, SLUICE_ICE_CAND_HOST, &b->addr, NULL, bi, -1, NULL, true);
    if (li >= 0 && !a->relay_only)
        ice_pairs_for_local(a, now, s, li);
    for (size_t k = 0; k < a->n_stun && !a->relay_only; k++) {
        if (!server_family_ok(&b->addr, &a->stun_servers[k]) ||
            ice_grow(a, &s->gathers, &s->cap_gathers, s->n_gathers, s->max_gathers,
                     sizeof *s->gathers) < 0)
            continue;
        struct gather *g = &s->gathers[s->n_gathers++];
        memset(g, 0, sizeof *g);
        g->base = bi;
        g->server = (int)k;
    }
    for (size_t k = 0; k < a->n_turn; k++) {
        struct turn_alloc *t = NULL;
        if (!server_family_ok(&b->addr, &a->turn_servers[k].server))
            continue;
        for (size_t i = 0; i < a->turns_cap; i++) {
            if (!a->turns[i].used) {
                t = &a->turns[i];
                break;
            }
        }
        if (!t && ice_grow(a, &a->turns, &a->turns_cap, a->turns_cap, a->max_turns,
                           sizeof *a->turns) == 0) {
            for (size_t i = 0; i < a->turns_cap && !t; i++)
                if (!a->turns[i].used)
                    t = &a->turns[i];
        }
        if (!t)
            break;
        turn_client_start(a, s, bi, k, t);
    }
}

static void check_gathering_done(sluice_ice_agent *a, struct stream *s)
{
    sluice_ice_event ev;
    if (!s->gathering || s->gathering_done)
        return;
    for (size_t i = 0; i < s->n_gathers; i++)
        if (!s->gathers[i].done)
            return;
    for (size_t i = 0; i < a->turns_cap; i++)
        if (a->turns[i].used && a->turns[i].stream == s->id && !a->turns[i].done)
            return;
    s->gathering_done = true;
    memset(&ev, 0, sizeof ev);
    ev.type = SLUICE_ICE_EVENT_GATHERING_DONE;
    ev.stream = s->id;
    ice_emit(a, &ev);
}

int sluice_ice_agent_gather(sluice_ice_agent *a, uint64_t now_us)
{
    if (!a)
        return SLUICE_ERR_INVALID;
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        struct stream *s = a->streams[i];
        if (!s || !s->used || s->gathering)
            continue;
        s->gathering = true;
        for (size_t b = 0; b < s->n_bases; b++)
            gather_base(a, now_us, s, (int)b);
        check_gathering_done(a, s);
    }
    return 0;
}

/* The answer to a gathering Binding request (from connectivity.c). */
void ice_gather_result(sluice_ice_agent *a, struct stream *s, struct gather *g,
                       const sluice_addr *mapped, int error_code, int reason)
{
    g->done = true;
    g->tx.active = false;
    if (mapped) {
        const struct base *b = &s->bases[g->base];
        ice_add_local(a, s, SLUICE_ICE_CAND_SRFLX, mapped, &b->addr, g->base, -1,
                      &a->stun_servers[g->server], true);
    } else {
        sluice_ice_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = SLUICE_ICE_EVENT_SERVER_ERROR;
        ev.stream = s->id;
        ev.server = a->stun_servers[g->server];
        ev.error_code = error_code;
        ev.reason = reason;
        snprintf(ev.text, sizeof ev.text, "STUN server: %s",
                 error_code ? sluice_stun_error_reason(error_code) : sluice_strerror(reason));
        ice_emit(a, &ev);
    }
    check_gathering_done(a, s);
}

sluice_turn_client *ice_turn_of(sluice_ice_agent *a, int turn)
{
    if (turn < 0 || (size_t)turn >= a->turns_cap || !a->turns[turn].used)
        return NULL;
    return a->turns[turn].tc;
}

/* One paced gathering transaction (RFC 8445 §5.1.1.1: one every Ta). */
static bool gather_tick(sluice_ice_agent *a, uint64_t now)
{
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        struct stream *s = a->streams[i];
        if (!s || !s->used || !s->gathering)
            continue;
        for (size_t k = 0; k < s->n_gathers; k++) {
            struct gather *g = &s->gathers[k];
            if (g->started)
                continue;
            g->started = true;
            /* RFC 8489 §6.2.1 defaults for a server: RTO 500 ms, Rc 7. */
            ice_txn_start(a, &g->tx, now, 500 * ICE_MS, 7);
            return true;
        }
    }
    for (size_t i = 0; i < a->turns_cap; i++) {
        struct turn_alloc *t = &a->turns[i];
        if (t->used && !t->started) {
            t->started = true;
            sluice_turn_client_allocate(t->tc, now);
            return true;
        }
    }
    return false;
}

static bool gather_pending(const sluice_ice_agent *a)
{
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        const struct stream *s = a->streams[i];
        if (!s || !s->used || !s->gathering)
            continue;
        for (size_t k = 0; k < s->n_gathers; k++)
            if (!s->gathers[k].started)
                return true;
    }
    for (size_t i = 0; i < a->turns_cap; i++)
        if (a->turns[i].used && !a->turns[i].started)
            return true;
    return false;
}

/* Tell the driver to close the stream of allocation t to server. */
static void close_stream(sluice_ice_agent *a, const struct stream *s, const struct turn_alloc *t,
                         const sluice_addr *server)
{
    sluice_ice_event ev;
    if (t->transport == SLUICE_TRANSPORT_UDP)
        return;
    memset(&ev, 0, sizeof ev);
    ev.type = SLUICE_ICE_EVENT_CLOSE_STREAM;
    ev.stream = s->id;
    ev.server = *server;
    ev.base = s->bases[t->base].addr;
    ev.transport = t->transport;
    ice_emit(a, &ev);
}

/* The allocation ti failed or is gone (an error, a lost refresh, its
 * stream closed: RFC 8656 §3.1). Its relayed candidate is withdrawn: its
 * pairs fail and it is never paired or signalled again (trickle has no way
 * to take a candidate back; the peer's checks to it fail on their own). A
 * selected pair on it cannot carry media any more: consent is lost at once
 * rather than after the RFC 7675 §5.1 timeout, so that the application can
 * restart (RFC 8445 §9), which allocates again. */
static void turn_ended(sluice_ice_agent *a, uint64_t now, struct stream *s, int ti,
                       const sluice_turn_event *tev)
{
    struct turn_alloc *t = &a->turns[ti];
    sluice_ice_event ev;
    t->done = true;
    t->ended = true;
    memset(&ev, 0, sizeof ev);
    ev.type = SLUICE_ICE_EVENT_SERVER_ERROR;
    ev.stream = s->id;
    ev.server = a->turn_servers[t->server].server;
    ev.base = s->bases[t->base].addr;
    ev.transport = t->transport;
    ev.error_code = tev->error_code;
    ev.reason = tev->reason;
    snprintf(ev.text, sizeof ev.text, "TURN %s: %s",
             tev->type == SLUICE_TURN_EVENT_LOST ? "allocation lost" : "allocate failed",
             tev->text);
    ice_emit(a, &ev);
    if (!t->stream_closed)
        close_stream(a, s, t, &t->stream_server);
    for (size_t i = 0; i < s->n_local; i++)
        if (s->local[i].turn == ti)
            s->local[i].withdrawn = true;
    for (size_t p = 0; p < s->n_pairs; p++)
        if (s->local[s->pairs[p].local].turn == ti)
            ice_pair_failed(a, now, s, (int)p);
    for (unsigned c = 1; c <= s->n_components; c++) {
        const struct route_state *sel = &s->comp[c - 1].sel;
        if (sel->valid && !sel->consent_lost && sel->turn == ti)
            ice_consent_lost(a, s, c);
    }
    check_gathering_done(a, s);
    ice_update_state(a, now, s);
}

/* TURN client events: relayed candidates, permissions, failures. */
static void turn_events(sluice_ice_agent *a, uint64_t now, int ti)
{
    struct turn_alloc *t = &a->turns[ti];
    struct stream *s = ice_stream(a, t->stream);
    sluice_turn_event tev;
    if (!s)
        return;
    while (sluice_turn_client_poll_event(t->tc, &tev)) {
        const struct base *b = &s->bases[t->base];
        const sluice_addr *srv = &a->turn_servers[t->server].server;
        switch (tev.type) {
        case SLUICE_TURN_EVENT_ALLOCATED:
            t->done = true;
            /* RFC 8445 §5.1.1.2: the mapped address is also server
             * reflexive — over UDP only: over TCP/TLS it maps the stream,
             * not the base's UDP socket. */
            if (!a->relay_only && t->transport == SLUICE_TRANSPORT_UDP)
                ice_add_local(a, s, SLUICE_ICE_CAND_SRFLX, &tev.mapped, &b->addr, t->base, -1,
                              srv, true);
            for (size_t r = 0; r < tev.n_relayed; r++) {
                int li = ice_add_local(a, s, SLUICE_ICE_CAND_RELAY, &tev.relayed[r], &tev.mapped,
                                       t->base, ti, srv, true);
                if (li >= 0) {
                    t->lcand = li;
                    ice_pairs_for_local(a, now, s, li);
                }
            }
            check_gathering_done(a, s);
            break;
        case SLUICE_TURN_EVENT_PERMISSION_CREATED:
            for (size_t p = 0; p < s->n_pairs; p++) {
                struct pair *pr = &s->pairs[p];
                if (s->local[pr->local].turn == ti &&
                    sluice_addr_equal_ip(&s->remote[pr->remote].c.addr, &tev.peer))
                    pr->perm_ok = true;
            }
            break;
        case SLUICE_TURN_EVENT_PERMISSION_FAILED:
            for (size_t p = 0; p < s->n_pairs; p++) {
                struct pair *pr = &s->pairs[p];
                if (s->local[pr->local].turn == ti &&
                    sluice_addr_equal_ip(&s->remote[pr->remote].c.addr, &tev.peer) &&
                    pr->state != PS_SUCCEEDED)
                    ice_pair_failed(a, now, s, (int)p);
            }
            break;
        case SLUICE_TURN_EVENT_ALLOCATE_FAILED:
        case SLUICE_TURN_EVENT_LOST:
            turn_ended(a, now, s, ti, &tev);
            break;
        case SLUICE_TURN_EVENT_CLOSED:
            /* A freed allocation's delete was answered (or timed out):
             * now its TCP/TLS stream can go. */
            t->deleting = false;
            if (t->freed && !t->stream_closed) {
                t->stream_closed = true;
                close_stream(a, s, t, &t->stream_server);
            }
            break;
        case SLUICE_TURN_EVENT_REDIRECTED:
            /* RFC 8489 §10: over TCP/TLS the new server gets a new stream
             * (the next transmit names it); the old one is done. */
            close_stream(a, s, t, &t->stream_server);
            t->stream_server = tev.server;
            break;
        default:
            break;
        }
    }
}

/* RFC 8445 §8.3.1: once a stream has been Completed for three seconds
 * (long enough for a peer's late aggressive nomination), the relayed
 * candidates that no selected pair uses are freed: the allocation is
 * deleted on the server (a Refresh with lifetime 0, RFC 8656 §7.2) rather
 * than kept refreshed for the whole session, and the candidate is
 * withdrawn. A restart allocates again. Returns the deadline of the next
 * free, SLUICE_NEVER when none is due. */
static bool turn_in_use(const struct stream *s, int ti)
{
    for (unsigned c = 0; c < s->n_components; c++)
        if (s->comp[c].sel.pair >= 0 && s->comp[c].sel.turn == ti)
            return true;
    return false;
}

static uint64_t free_unused(sluice_ice_agent *a, uint64_t now, bool act)
{
    uint64_t next = SLUICE_NEVER;
    for (size_t i = 0; i < a->turns_cap; i++) {
        struct turn_alloc *t = &a->turns[i];
        struct stream *s;
        if (!t->used || t->ended || !t->done || !(s = ice_stream(a, t->stream)) ||
            s->state != SLUICE_ICE_COMPLETED || !s->completed_us || turn_in_use(s, (int)i))
            continue;
        uint64_t due = s->completed_us + ICE_FREE_DELAY_US;
        if (!act || now < due) {
            if (due < next)
                next = due;
            continue;
        }
        t->freed = true;
        t->ended = true;
        t->deleting = true;
        for (size_t k = 0; k < s->n_local; k++)
            if (s->local[k].turn == (int)i)
                s->local[k].withdrawn = true;
        for (size_t p = 0; p < s->n_pairs; p++)
            if (s->local[s->pairs[p].local].turn == (int)i && s->pairs[p].state != PS_FAILED)
                ice_pair_failed(a, now, s, (int)p);
        a->stats.allocations_freed++;
        if (sluice_turn_client_close(t->tc, now) != 0) {
            t->deleting = false;
            if (!t->stream_closed) {
                t->stream_closed = true;
                close_stream(a, s, t, &t->stream_server);
            }
        }
        turn_events(a, now, (int)i);
    }
    return next;
}

/* ------------------------------------------------------------------------ */
/* Remote candidates, restart */

int sluice_ice_agent_add_remote_candidate(sluice_ice_agent *a, uint64_t now_us, int stream,
                                          const sluice_ice_candidate *c)
{
    struct stream *s = ice_stream(a, stream);
    if (!s)
        return SLUICE_ERR_NOT_FOUND;
    if (!c || c->transport != SLUICE_TRANSPORT_UDP || c->addr.port == 0 || c->priority == 0 ||
        (c->addr.family != SLUICE_AF_INET && c->addr.family != SLUICE_AF_INET6) ||
        !ice_chars_ok(c->foundation, 1, SLUICE_ICE_FOUNDATION_MAX))
        return SLUICE_ERR_INVALID;
    if (c->component < 1 || c->component > s->n_components)
        return SLUICE_ERR_NOT_FOUND;
    for (size_t i = 0; i < s->n_remote; i++) {
        struct rcand *r = &s->remote[i];
        if (r->c.component == c->component && sluice_addr_equal(&r->c.addr, &c->addr)) {
            /* A signalled candidate replaces a peer-reflexive guess
             * (RFC 8445 §7.3.1.3 keeps the signalled priority). */
            if (r->c.type == SLUICE_ICE_CAND_PRFLX && c->type != SLUICE_ICE_CAND_PRFLX) {
                r->c = *c;
                ice_recompute_priorities(a);
            }
            return 0;
        }
    }
    int rc = ice_grow(a, &s->remote, &s->cap_remote, s->n_remote, a->cfg.max_remote_candidates,
                      sizeof *s->remote);
    if (rc < 0) {
        a->stats.remote_candidates_dropped++;
        return rc;
    }
    s->remote[s->n_remote].c = *c;
    s->n_remote++;
    ice_pairs_for_remote(a, now_us, s, (int)s->n_remote - 1);
    ice_update_state(a, now_us, s);
    return 0;
}

int sluice_ice_agent_end_of_candidates(sluice_ice_agent *a, uint64_t now_us, int stream)
{
    struct stream *s = ice_stream(a, stream);
    if (!s)
        return SLUICE_ERR_NOT_FOUND;
    s->remote_eoc = true;
    ice_update_state(a, now_us, s);
    return 0;
}

int sluice_ice_agent_restart(sluice_ice_agent *a, uint64_t now_us, int stream)
{
    struct stream *s = ice_stream(a, stream);
    int rc;
    if (!s)
        return SLUICE_ERR_NOT_FOUND;
    /* Keep the old local credentials for consent on the old pair. */
    memcpy(s->prev_ufrag, s->ufrag, sizeof s->ufrag);
    memcpy(s->prev_pwd, s->pwd, sizeof s->pwd);
    s->key_prev = s->key_local;
    s->have_prev = true;
    rc = new_local_credentials(a, s);
    if (rc < 0)
        return rc;
    s->have_remote_creds = false;
    s->rufrag[0] = s->rpwd[0] = '\0';
    s->remote_eoc = false;
    s->n_remote = 0;
    s->n_pairs = 0;
    s->trig_head = s->trig_len = 0;
    s->checks_started_us = 0;
    for (unsigned c = 0; c < s->n_components; c++) {
        s->comp[c].first_valid_us = 0;
        s->comp[c].sel.pair = -1;
    }
    /* An allocation that failed or was lost is made again (a stream that
     * closed, a relay that restarted); its old relayed candidate stays
     * withdrawn, and the stream gathers until the new one is known. */
    for (size_t i = 0; i < a->turns_cap; i++) {
        struct turn_alloc *t = &a->turns[i];
        if (!t->used || t->stream != s->id || !t->ended)
            continue;
        int bi = t->base;
        size_t k = (size_t)t->server;
        /* A freed allocation still deleting: its stream goes now. */
        if (t->freed && !t->stream_closed)
            close_stream(a, s, t, &t->stream_server);
        sluice_turn_client_free(t->tc);
        turn_client_start(a, s, bi, k, t);
        if (t->used && s->gathering)
            s->gathering_done = false;
    }
    /* Candidates stay; they are signalled again with the new credentials
     * (RFC 8838 §4: a restart starts a new trickle session). */
    for (size_t i = 0; i < s->n_local; i++) {
        s->local[i].signalled = false;
        signal_local(a, s, &s->local[i]);
    }
    if (s->gathering_done) {
        sluice_ice_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = SLUICE_ICE_EVENT_GATHERING_DONE;
        ev.stream = s->id;
        ice_emit(a, &ev);
    }
    s->state = SLUICE_ICE_NEW;
    ice_set_state(a, s, SLUICE_ICE_CHECKING);
    (void)now_us;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Entry points */

/* The base a datagram arrived on. */
static int find_base(const sluice_ice_agent *a, const sluice_addr *local, struct stream **out)
{
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        struct stream *s = a->streams[i];
        if (!s || !s->used)
            continue;
        for (size_t b = 0; b < s->n_bases; b++) {
            if (sluice_addr_equal(&s->bases[b].addr, local)) {
                *out = s;
                return (int)b;
            }
        }
    }
    return -1;
}

/* The allocation of base on server over transport (a base may have a UDP
 * and a TCP allocation on one server address). */
static int find_turn(const sluice_ice_agent *a, const struct stream *s, int base,
                     const sluice_addr *from, sluice_transport transport)
{
    for (size_t i = 0; i < a->turns_cap; i++) {
        const struct turn_alloc *t = &a->turns[i];
        if (t->used && t->stream == s->id && t->base == base && t->transport == transport) {
            sluice_addr srv;
            sluice_turn_client_server(t->tc, &srv);
            if (sluice_addr_equal(&srv, from))
                return (int)i;
        }
    }
    return -1;
}

/* Media from a remote address on a base of component comp: accepted from
 * a known remote candidate of that component or the selected one. */
static int deliver_media(sluice_ice_agent *a, struct stream *s, unsigned comp,
                         const sluice_addr *from, const uint8_t *data, size_t len,
                         sluice_ice_media *media)
{
    bool known = false;
    for (size_t i = 0; i < s->n_remote && !known; i++)
        known = s->remote[i].c.component == comp && sluice_addr_equal(&s->remote[i].c.addr, from);
    struct route_state *sel = &s->comp[comp - 1].sel;
    if (!known && !(sel->valid && sluice_addr_equal(&sel->remote.addr, from))) {
        a->stats.media_dropped++;
        return 0;
    }
    if (sel->pair >= 0 &&
        sluice_addr_equal(&s->remote[s->pairs[sel->pair].remote].c.addr, from)) {
        s->pairs[sel->pair].packets_received++;
        s->pairs[sel->pair].bytes_received += len;
    }
    media->stream = s->id;
    media->component = comp;
    media->from = *from;
    media->data = data;
    media->len = len;
    return 1;
}

int sluice_ice_agent_handle_datagram(sluice_ice_agent *a, uint64_t now_us,
                                     const sluice_addr *local, const sluice_addr *remote,
                                     const uint8_t *data, size_t len, sluice_ice_media *media)
{
    struct stream *s = NULL;
    int bi, ti;
    if (!a || !local || !remote || (!data && len) || !media)
        return SLUICE_ERR_INVALID;
    bi = find_base(a, local, &s);
    if (bi < 0) {
        a->stats.media_dropped++;
        return 0;
    }
    ti = find_turn(a, s, bi, remote, SLUICE_TRANSPORT_UDP);
    if (ti >= 0) {
        struct turn_alloc *t = &a->turns[ti];
        sluice_addr peer;
        const uint8_t *payload;
        size_t plen;
        int rc = sluice_turn_client_unwrap(t->tc, remote, data, len, &peer, &payload, &plen);
        if (rc == 1) {
            const sluice_addr *relayed = t->lcand >= 0 ? &s->local[t->lcand].c.addr : local;
            if (sluice_stun_is_stun(payload, plen)) {
                ice_handle_stun(a, now_us, s, bi, ti, relayed, &peer, payload, plen);
                return 0;
            }
            return deliver_media(a, s, s->bases[bi].component, &peer, payload, plen, media);
        }
        sluice_turn_client_handle_datagram(t->tc, now_us, remote, data, len);
        turn_events(a, now_us, ti);
        return 0;
    }
    if (len >= 20 && data[0] < 4 && sluice_stun_is_stun(data, len)) {
        ice_handle_stun(a, now_us, s, bi, -1, local, remote, data, len);
        return 0;
    }
    return deliver_media(a, s, s->bases[bi].component, remote, data, len, media);
}

/* Peer datagrams the TURN client reassembled from the stream of
 * allocation ti: checks and answers go to the agent, the first media
 * datagram is returned (a view into a->stream_rx). */
static int stream_media(sluice_ice_agent *a, uint64_t now, struct stream *s, int bi, int ti,
                        sluice_ice_media *media)
{
    sluice_addr peer, relayed;
    size_t len;
    while (!a->turns[ti].ended &&
           sluice_turn_client_recv(a->turns[ti].tc, &peer, a->stream_rx, ICE_STREAM_RX, &len) ==
               1) {
        if (len >= 20 && a->stream_rx[0] < 4 && sluice_stun_is_stun(a->stream_rx, len)) {
            int li = a->turns[ti].lcand;
            relayed = li >= 0 ? s->local[li].c.addr : s->bases[bi].addr;
            ice_handle_stun(a, now, s, bi, ti, &relayed, &peer, a->stream_rx, len);
            continue;
        }
        if (deliver_media(a, s, s->bases[bi].component, &peer, a->stream_rx, len, media) == 1)
            return 1;
    }
    return 0;
}

/* The live allocation behind the stream (base, server, transport), or -1. */
static int find_stream(const sluice_ice_agent *a, const sluice_addr *base,
                       const sluice_addr *server, sluice_transport transport, struct stream **s)
{
    int bi = find_base(a, base, s);
    int ti = bi < 0 ? -1 : find_turn(a, *s, bi, server, transport);
    return ti >= 0 && (!a->turns[ti].ended || a->turns[ti].deleting) ? ti : -1;
}

int sluice_ice_agent_handle_stream(sluice_ice_agent *a, uint64_t now_us, const sluice_addr *base,
                                   const sluice_addr *server, sluice_transport transport,
                                   const uint8_t *data, size_t len, sluice_ice_media *media)
{
    struct stream *s = NULL;
    int ti, rc;
    if (!a || !base || !server || (!data && len) || !media ||
        (transport != SLUICE_TRANSPORT_TCP && transport != SLUICE_TRANSPORT_TLS))
        return SLUICE_ERR_INVALID;
    ti = find_stream(a, base, server, transport, &s);
    if (ti < 0)
        return SLUICE_ERR_NOT_FOUND;
    if (len) {
        /* Any split: the client reassembles STUN and padded ChannelData
         * frames (RFC 8656 §12.5) and decrypts TLS. A stream it cannot
         * frame is fatal for the allocation (turn_ended via the event). */
        sluice_turn_client_stats before, after;
        sluice_turn_client_get_stats(a->turns[ti].tc, &before);
        rc = sluice_turn_client_handle_datagram(a->turns[ti].tc, now_us, server, data, len);
        /* what did not fit the client's queue (one chunk of 64 KiB fits,
         * empty datagrams aside) is media lost */
        sluice_turn_client_get_stats(a->turns[ti].tc, &after);
        a->stats.media_dropped += after.rx_dropped_queue - before.rx_dropped_queue;
        turn_events(a, now_us, ti);
        if (rc < 0)
            return rc;
    }
    return stream_media(a, now_us, s, a->turns[ti].base, ti, media);
}

int sluice_ice_agent_handle_stream_closed(sluice_ice_agent *a, uint64_t now_us,
                                          const sluice_addr *base, const sluice_addr *server,
                                          sluice_transport transport)
{
    struct stream *s = NULL;
    int ti;
    if (!a || !base || !server ||
        (transport != SLUICE_TRANSPORT_TCP && transport != SLUICE_TRANSPORT_TLS))
        return SLUICE_ERR_INVALID;
    ti = find_stream(a, base, server, transport, &s);
    if (ti < 0)
        return SLUICE_ERR_NOT_FOUND;
    /* The driver closed it already: no CLOSE_STREAM back. */
    a->turns[ti].stream_closed = true;
    sluice_turn_client_handle_stream_closed(a->turns[ti].tc, now_us);
    turn_events(a, now_us, ti);
    return 0;
}

void sluice_ice_agent_handle_timeout(sluice_ice_agent *a, uint64_t now_us)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->turns_cap; i++) {
        if (!a->turns[i].used)
            continue;
        sluice_turn_client_handle_timeout(a->turns[i].tc, now_us);
        turn_events(a, now_us, (int)i);
    }
    ice_timers(a, now_us);
    /* RFC 8445 §6.1.4.2 / §14: one new transaction per Ta. */
    if (now_us >= a->next_tick_us) {
        bool sent = gather_tick(a, now_us);
        if (!sent)
            sent = ice_tick(a, now_us);
        if (sent) {
            a->next_tick_us = now_us + a->cfg.ta_us;
            a->last_tx_us = now_us;
        }
    }
    /* A nominating check skips the Ta queue (ice_nomination_pending). */
    if (now_us >= a->last_tx_us + ICE_NOMINATE_GAP_US && ice_nomination_pending(a) &&
        ice_nominate_tick(a, now_us))
        a->last_tx_us = now_us;
    for (size_t i = 0; i < a->cfg.max_streams; i++)
        if (a->streams[i] && a->streams[i]->used)
            ice_update_state(a, now_us, a->streams[i]);
    free_unused(a, now_us, true);
}

uint64_t sluice_ice_agent_next_timeout(const sluice_ice_agent *a)
{
    uint64_t next = SLUICE_NEVER, t;
    if (!a)
        return next;
    for (size_t i = 0; i < a->turns_cap; i++) {
        if (!a->turns[i].used)
            continue;
        t = sluice_turn_client_next_timeout(a->turns[i].tc);
        if (t < next)
            next = t;
    }
    t = ice_timers_deadline(a);
    if (t < next)
        next = t;
    if (gather_pending(a) || ice_work_pending(a)) {
        if (a->next_tick_us < next)
            next = a->next_tick_us;
    }
    t = free_unused((sluice_ice_agent *)a, 0, false);
    if (t < next)
        next = t;
    if (ice_nomination_pending(a) && a->last_tx_us + ICE_NOMINATE_GAP_US < next)
        next = a->last_tx_us + ICE_NOMINATE_GAP_US;
    t = ice_checklist_deadline(a);
    if (t < next)
        next = t;
    return next;
}

int sluice_ice_agent_poll_transmit(sluice_ice_agent *a, uint64_t now_us, uint8_t *buf, size_t cap,
                                   sluice_transmit *meta)
{
    int rc;
    if (!a || !buf || !meta)
        return SLUICE_ERR_INVALID;
    memset(meta, 0, sizeof *meta);
    /* Answers first: they carry the peer's RTT. */
    if (a->resp_len) {
        struct resp *r = &a->resp[a->resp_head];
        if (r->turn >= 0) {
            rc = ice_wrap_turn(a, now_us, r->turn, &r->destination, r->data, r->len, buf, cap,
                               meta);
            if (rc == SLUICE_ERR_NOSPACE)
                return rc;
        } else {
            if (cap < r->len)
                return SLUICE_ERR_NOSPACE;
            memcpy(buf, r->data, r->len);
            meta->destination = r->destination;
            meta->source = r->source;
            meta->transport = SLUICE_TRANSPORT_UDP;
            rc = r->len;
        }
        a->resp_head = (a->resp_head + 1) % a->resp_cap;
        a->resp_len--;
        if (rc > 0)
            return rc;
    }
    rc = ice_poll_checks(a, now_us, buf, cap, meta);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < a->turns_cap; i++) {
        struct turn_alloc *t = &a->turns[i];
        struct stream *s;
        /* An ended client may still hold a TLS alert: its stream is being
         * closed (CLOSE_STREAM), a transmit would open a new one. A freed
         * one sends its delete. */
        if (!t->used || (t->ended && !t->deleting) || !(s = ice_stream(a, t->stream)))
            continue;
        rc = sluice_turn_client_poll_transmit(t->tc, now_us, buf, cap, meta);
        if (rc != 0) {
            meta->source = s->bases[t->base].addr;
            return rc;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Data path */

int sluice_ice_agent_route(const sluice_ice_agent *a, int stream, unsigned component,
                           sluice_ice_route *route)
{
    struct stream *s = ice_stream(a, stream);
    const struct route_state *sel;
    if (!s || !route || component < 1 || component > s->n_components)
        return SLUICE_ERR_NOT_FOUND;
    sel = &s->comp[component - 1].sel;
    if (!sel->valid || sel->consent_lost)
        return SLUICE_ERR_STATE;
    memset(route, 0, sizeof *route);
    route->base = s->bases[sel->base].addr;
    route->peer = sel->remote.addr;
    route->transport = SLUICE_TRANSPORT_UDP;
    if (sel->turn >= 0) {
        const struct turn_alloc *t = &a->turns[sel->turn];
        sluice_turn_route tr;
        int rc = sluice_turn_client_route(t->tc, &sel->remote.addr, &tr);
        route->transport = t->transport;
        if (rc == 0) {
            /* UDP, or TCP with padding (RFC 8656 §12.5) */
            route->destination = tr.server;
            route->framing = SLUICE_ICE_FRAMING_CHANNEL;
            route->channel = tr.channel;
            route->pad = tr.pad;
        } else {
            /* no channel yet, or TLS: the agent wraps (and encrypts) */
            sluice_turn_client_server(t->tc, &route->destination);
            route->framing = SLUICE_ICE_FRAMING_SEND;
        }
    } else {
        route->destination = sel->remote.addr;
        route->framing = SLUICE_ICE_FRAMING_NONE;
    }
    return 0;
}

void sluice_ice_agent_count_sent(sluice_ice_agent *a, uint64_t now_us, int stream,
                                 unsigned component, uint64_t packets, uint64_t bytes)
{
    struct stream *s = ice_stream(a, stream);
    if (!s || component < 1 || component > s->n_components)
        return;
    struct route_state *sel = &s->comp[component - 1].sel;
    sel->last_sent_us = now_us;
    if (sel->pair >= 0) {
        s->pairs[sel->pair].packets_sent += packets;
        s->pairs[sel->pair].bytes_sent += bytes;
    }
}

int sluice_ice_agent_send(sluice_ice_agent *a, uint64_t now_us, int stream, unsigned component,
                          const uint8_t *data, size_t len, uint8_t *out, size_t cap,
                          sluice_transmit *meta)
{
    sluice_ice_route r;
    int rc;
    if (!a || (!data && len) || !out || !meta)
        return SLUICE_ERR_INVALID;
    rc = sluice_ice_agent_route(a, stream, component, &r);
    if (rc < 0)
        return rc;
    struct stream *s = ice_stream(a, stream);
    struct route_state *sel = &s->comp[component - 1].sel;
    memset(meta, 0, sizeof *meta);
    if (sel->turn >= 0) {
        rc = ice_wrap_turn(a, now_us, sel->turn, &r.peer, data, len, out, cap, meta);
    } else {
        if (cap < len)
            return SLUICE_ERR_NOSPACE;
        memcpy(out, data, len);
        meta->destination = r.destination;
        meta->source = r.base;
        meta->transport = SLUICE_TRANSPORT_UDP;
        rc = (int)len;
    }
    if (rc > 0)
        sluice_ice_agent_count_sent(a, now_us, stream, component, 1, len);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Statistics */

int sluice_ice_agent_pair_stats(const sluice_ice_agent *a, int stream, sluice_ice_pair_stats *out,
                                size_t cap)
{
    struct stream *s = ice_stream(a, stream);
    bool taken[MAX_PAIRS] = {false};
    if (!s)
        return SLUICE_ERR_NOT_FOUND;
    for (size_t n = 0; n < s->n_pairs && n < cap; n++) {
        int best = -1;
        for (size_t i = 0; i < s->n_pairs; i++)
            if (!taken[i] && (best < 0 || s->pairs[i].priority > s->pairs[best].priority))
                best = (int)i;
        taken[best] = true;
        const struct pair *p = &s->pairs[best];
        sluice_ice_pair_stats *o = &out[n];
        memset(o, 0, sizeof *o);
        o->local = s->local[p->local].c;
        o->remote = s->remote[p->remote].c;
        o->state = ice_pair_state_name(p->state);
        o->nominated = p->nominated;
        o->selected = s->comp[p->component - 1].sel.pair == best;
        o->rtt_us = p->rtt_us;
        o->requests_sent = p->requests_sent;
        o->responses_received = p->responses_received;
        o->requests_received = p->requests_received;
        o->responses_sent = p->responses_sent;
        o->consent_requests_sent = p->consent_requests_sent;
        o->packets_sent = p->packets_sent;
        o->bytes_sent = p->bytes_sent;
        o->packets_received = p->packets_received;
        o->bytes_received = p->bytes_received;
    }
    return (int)s->n_pairs;
}

void sluice_ice_agent_get_stats(const sluice_ice_agent *a, sluice_ice_stats *st)
{
    if (a && st)
        *st = a->stats;
}

sluice_ice_state sluice_ice_agent_state(const sluice_ice_agent *a, int stream)
{
    struct stream *s = ice_stream(a, stream);
    return s ? s->state : SLUICE_ICE_NEW;
}
