/* SPDX-License-Identifier: MIT */
/* Coordinator server core: connections (TLS with client certificates,
 * HELLO/WELCOME, names), timers, the output round robin and the event
 * queue. Streams, routing and broadcast are in server_stream.c. */
#include <stdio.h>
#include <time.h>

#include "coord/server_internal.h"

#define DEFAULT_MAX_CONNECTIONS 1024
#define DEFAULT_MAX_STREAMS 64
#define DEFAULT_MAX_CHANNELS 256
#define DEFAULT_MAX_MEMBERS 256
#define DEFAULT_MAX_HELD 256
#define DEFAULT_WINDOW (256u * 1024u)
#define DEFAULT_MEMBER_QUEUE (256u * 1024u)
#define DEFAULT_MAX_CONTROL_QUEUE 4096
#define DEFAULT_MAX_EVENTS 65536
#define SEC 1000000ull

void sluice_coord_server_config_init(sluice_coord_server_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_connections = DEFAULT_MAX_CONNECTIONS;
    cfg->max_streams_per_client = DEFAULT_MAX_STREAMS;
    cfg->max_channels = DEFAULT_MAX_CHANNELS;
    cfg->max_members = DEFAULT_MAX_MEMBERS;
    cfg->max_held_opens = DEFAULT_MAX_HELD;
    cfg->max_message = SLUICE_COORD_DEFAULT_MAX_MESSAGE;
    cfg->window = DEFAULT_WINDOW;
    cfg->member_queue_bytes = DEFAULT_MEMBER_QUEUE;
    cfg->max_control_queue = DEFAULT_MAX_CONTROL_QUEUE;
    cfg->max_events = DEFAULT_MAX_EVENTS;
    cfg->hello_timeout_us = 10 * SEC;
    cfg->idle_timeout_us = 60 * SEC;
    cfg->held_open_timeout_us = 60 * SEC;
    cfg->turn_ttl_s = 86400;
}

static bool config_valid(const sluice_coord_server_config *c, bool plaintext)
{
    if (!plaintext && (!c->cert_file || !c->key_file))
        return false;
    if (c->max_connections < 1 || c->max_connections > 1000000)
        return false;
    if (c->max_streams_per_client < 1 || c->max_streams_per_client > 65536)
        return false;
    if (c->max_channels < 1 || c->max_channels > 1000000 || c->max_members < 1 ||
        c->max_members > 1000000 || c->max_held_opens > 65536)
        return false;
    if (c->max_message < 1 || c->max_message > SLUICE_COORD_MAX_MESSAGE_LIMIT)
        return false;
    if (c->window < SLUICE_COORD_MESSAGE_COST(c->max_message) || c->window > INT32_MAX)
        return false;
    if (c->member_queue_bytes <
        SLUICE_COORD_MESSAGE_COST(c->max_message) + 1 + SLUICE_COORD_NAME_MAX)
        return false;
    if (c->max_control_queue < 16 || c->max_events < 16)
        return false;
    if (!c->hello_timeout_us || !c->idle_timeout_us || !c->held_open_timeout_us)
        return false;
    if (c->turn_secret) {
        if (!c->turn_secret[0] || c->n_turn_uris < 1 ||
            c->n_turn_uris > SLUICE_COORD_TURN_URIS_MAX || !c->turn_uris)
            return false;
        for (size_t i = 0; i < c->n_turn_uris; i++)
            if (!c->turn_uris[i] || !c->turn_uris[i][0] ||
                strlen(c->turn_uris[i]) > SLUICE_COORD_URI_MAX)
                return false;
    }
    return true;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n)
        p <<= 1;
    return p;
}

static sluice_coord_server *server_new(const sluice_coord_server_config *cfg, bool plaintext,
                                       int *err)
{
    sluice_coord_server *s;
    const sluice_allocator *a = &cfg->alloc;
    int dummy;

    if (!err)
        err = &dummy;
    *err = SLUICE_ERR_INVALID;
    if (!config_valid(cfg, plaintext)) {
        sluice_log(SLUICE_LOG_ERROR, "coord", "invalid coordinator server configuration");
        return NULL;
    }
    *err = SLUICE_ERR_NOMEM;
    s = sluice_xcalloc(a, 1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->cfg.cert_file = s->cfg.key_file = NULL; /* read below, not kept */
    s->unix_time_s = cfg->unix_time_s;
    s->n_slots = cfg->max_connections + (cfg->max_connections / 64 > 4 ? cfg->max_connections / 64 : 4);
    s->conns = sluice_xcalloc(a, s->n_slots, sizeof *s->conns);
    s->gens = sluice_xcalloc(a, s->n_slots, sizeof *s->gens);
    s->free_idx = sluice_xcalloc(a, s->n_slots, sizeof *s->free_idx);
    s->names_mask = pow2_at_least(cfg->max_connections) - 1;
    s->names = sluice_xcalloc(a, s->names_mask + 1, sizeof *s->names);
    s->chans_mask = pow2_at_least(cfg->max_channels) - 1;
    s->chans = sluice_xcalloc(a, s->chans_mask + 1, sizeof *s->chans);
    if (cfg->max_held_opens)
        s->held = sluice_xcalloc(a, cfg->max_held_opens, sizeof *s->held);
    if (!s->conns || !s->gens || !s->free_idx || !s->names || !s->chans ||
        (cfg->max_held_opens && !s->held))
        goto fail;
    if (cfg->turn_secret) {
        s->turn_secret = coord_strdup(a, cfg->turn_secret);
        if (!s->turn_secret)
            goto fail;
        for (size_t i = 0; i < cfg->n_turn_uris; i++)
            if (!(s->turn_uris[i] = coord_strdup(a, cfg->turn_uris[i])))
                goto fail;
    }
    s->cfg.turn_secret = NULL;
    s->cfg.turn_uris = NULL;
    s->cfg.client_ca_file = NULL;
    for (size_t i = 0; i < s->n_slots; i++)
        s->free_idx[i] = (uint32_t)(s->n_slots - 1 - i);
    s->n_free = s->n_slots;
    s->conn_deadline_lb = SLUICE_NEVER;
    s->evq.max = cfg->max_events;
    if (sluice_rng_fill(NULL, (uint8_t *)&s->hash_key, sizeof s->hash_key) < 0) {
        *err = SLUICE_ERR_CRYPTO;
        goto fail;
    }
    if (!plaintext) {
        sluice_tls_config tc;
        sluice_tls_config_init(&tc);
        tc.server = true;
        tc.cert_file = cfg->cert_file;
        tc.key_file = cfg->key_file;
        tc.min_version = 13;
        tc.request_client_cert = true;
        tc.client_ca_file = cfg->client_ca_file;
        tc.release_buffers = true;
        s->tls_ctx = sluice_tls_server_ctx_new(&tc, err);
        if (!s->tls_ctx)
            goto fail;
        s->client_ca_file = coord_strdup(a, cfg->client_ca_file);
        if (cfg->client_ca_file && !s->client_ca_file) {
            *err = SLUICE_ERR_NOMEM;
            goto fail;
        }
    }
    *err = 0;
    return s;
fail:
    sluice_coord_server_free(s);
    return NULL;
}

sluice_coord_server *sluice_coord_server_new(const sluice_coord_server_config *cfg, int *err)
{
    if (!cfg) {
        if (err)
            *err = SLUICE_ERR_INVALID;
        return NULL;
    }
    return server_new(cfg, false, err);
}

sluice_coord_server *coord_server_new_plaintext(const sluice_coord_server_config *cfg, int *err)
{
    if (!cfg) {
        if (err)
            *err = SLUICE_ERR_INVALID;
        return NULL;
    }
    return server_new(cfg, true, err);
}

static void conn_free(sluice_coord_server *s, sconn *c)
{
    const sluice_allocator *a = &s->cfg.alloc;
    coord_idtab_free(&c->streams, a, true);
    coord_link_free(&c->link);
    sluice_xfree(a, c->close_reason);
    sluice_xfree(a, c);
}

static void event_free(sluice_coord_server *s, sev *e)
{
    if (e->zombie)
        conn_free(s, e->zombie);
    else
        sluice_xfree(&s->cfg.alloc, e);
}

void sluice_coord_server_free(sluice_coord_server *s)
{
    const sluice_allocator *a;

    if (!s)
        return;
    a = &s->cfg.alloc;
    coord_evnode *n = coord_evq_release(&s->evq);
    if (n)
        event_free(s, (sev *)n);
    while ((n = coord_evq_pop(&s->evq)) != NULL)
        event_free(s, (sev *)coord_evq_release(&s->evq));
    for (size_t i = 0; s->conns && i < s->n_slots; i++)
        if (s->conns[i])
            conn_free(s, s->conns[i]);
    srv_chan_free_all(s);
    sluice_xfree(a, s->conns);
    sluice_xfree(a, s->gens);
    sluice_xfree(a, s->free_idx);
    sluice_xfree(a, s->names);
    sluice_xfree(a, s->chans);
    sluice_xfree(a, s->held);
    if (s->turn_secret) {
        OPENSSL_cleanse(s->turn_secret, strlen(s->turn_secret));
        sluice_xfree(a, s->turn_secret);
    }
    for (int i = 0; i < SLUICE_COORD_TURN_URIS_MAX; i++)
        sluice_xfree(a, s->turn_uris[i]);
    sluice_xfree(a, s->client_ca_file);
    sluice_tls_server_ctx_free(s->tls_ctx);
    sluice_xfree(a, s);
}

void sluice_coord_server_set_unix_time(sluice_coord_server *s, uint64_t unix_time_s)
{
    s->unix_time_s = unix_time_s;
}

/* ------------------------------------------------------------------------ */
/* Connections and names */

uint64_t srv_conn_id(const sconn *c)
{
    return (uint64_t)c->gen << 32 | (uint64_t)(c->idx + 1);
}

sconn *srv_conn(const sluice_coord_server *s, uint64_t id)
{
    uint64_t idx = (id & 0xFFFFFFFFu) - 1;
    sconn *c;

    if ((id & 0xFFFFFFFFu) == 0 || idx >= s->n_slots)
        return NULL;
    c = s->conns[idx];
    return c && c->gen == (uint32_t)(id >> 32) ? c : NULL;
}

bool srv_alive(const sconn *c)
{
    return c && !c->kill && c->state != CS_CLOSING;
}

static size_t name_hash(const sluice_coord_server *s, const char *p, size_t len)
{
    /* FNV-1a from a secret start: names are chosen by clients. */
    uint64_t h = 0xcbf29ce484222325ull ^ s->hash_key;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)p[i];
        h *= 0x100000001b3ull;
    }
    return (size_t)(h ^ h >> 29);
}

sconn *srv_find_name(const sluice_coord_server *s, const char *name, size_t len)
{
    for (sconn *c = s->names[name_hash(s, name, len) & s->names_mask]; c; c = c->hnext)
        if (strlen(c->name) == len && memcmp(c->name, name, len) == 0)
            return c;
    return NULL;
}

static void name_unlink(sluice_coord_server *s, sconn *c)
{
    sconn **pp = &s->names[name_hash(s, c->name, strlen(c->name)) & s->names_mask];
    for (; *pp; pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            c->hnext = NULL;
            return;
        }
    }
}

static void ready_add(sluice_coord_server *s, sconn *c)
{
    if (c->in_ready || c->paused)
        return;
    c->in_ready = true;
    c->rnext = NULL;
    c->rprev = s->ready_tail;
    if (s->ready_tail)
        s->ready_tail->rnext = c;
    else
        s->ready_head = c;
    s->ready_tail = c;
}

static void ready_remove(sluice_coord_server *s, sconn *c)
{
    if (!c->in_ready)
        return;
    if (c->rprev)
        c->rprev->rnext = c->rnext;
    else
        s->ready_head = c->rnext;
    if (c->rnext)
        c->rnext->rprev = c->rprev;
    else
        s->ready_tail = c->rprev;
    c->in_ready = false;
    c->rnext = c->rprev = NULL;
}

static void lower_deadline(sluice_coord_server *s, uint64_t t)
{
    if (t < s->conn_deadline_lb)
        s->conn_deadline_lb = t;
}

static int accept_conn(sluice_coord_server *s, uint64_t now, const sluice_addr *remote,
                       bool plaintext, const uint8_t *fp, uint64_t *conn);

int sluice_coord_server_accept(sluice_coord_server *s, uint64_t now_us, const sluice_addr *remote,
                               uint64_t *conn)
{
    if (!s || !conn || !s->tls_ctx)
        return SLUICE_ERR_INVALID;
    return accept_conn(s, now_us, remote, false, NULL, conn);
}

int coord_server_accept_plaintext(sluice_coord_server *s, uint64_t now_us,
                                  const sluice_addr *remote, const uint8_t *fp, uint64_t *conn)
{
    if (!s || !conn)
        return SLUICE_ERR_INVALID;
    return accept_conn(s, now_us, remote, true, fp, conn);
}

/* ------------------------------------------------------------------------ */
/* Output and events */

int srv_push(sluice_coord_server *s, sconn *c, uint8_t type, uint32_t stream, const void *p,
             size_t len, coord_blob *blob, uint32_t acct)
{
    int r;

    if (!srv_alive(c))
        return SLUICE_ERR_STATE;
    r = coord_link_push(&c->link, type, stream, p, len, blob, acct);
    if (r < 0) {
        s->stats.alloc_failures++;
        srv_kill(s, c, SLUICE_COORD_E_INTERNAL, "out of memory", false);
        return r;
    }
    if (type == CF_DATA || type == CF_BCAST_DATA) {
        s->stats.messages_out++;
        s->stats.bytes_out += len + (blob ? blob->len : 0);
    }
    if (!blob && c->link.n_control > s->cfg.max_control_queue)
        srv_kill(s, c, SLUICE_COORD_E_SLOW, "too many frames queued: the client does not read",
                 true);
    ready_add(s, c);
    return 0;
}

int srv_push_error(sluice_coord_server *s, sconn *c, uint8_t type, uint32_t stream, int code,
                   const char *reason)
{
    uint8_t p[3 + SLUICE_COORD_REASON_MAX];
    int n = coord_enc_error(p, sizeof p, (uint16_t)code, reason);
    return n < 0 ? n : srv_push(s, c, type, stream, p, (size_t)n, NULL, 0);
}

int srv_push_u32(sluice_coord_server *s, sconn *c, uint8_t type, uint32_t stream, uint32_t v)
{
    uint8_t p[4];
    wr32(p, v);
    return srv_push(s, c, type, stream, p, 4, NULL, 0);
}

sev *srv_event(sluice_coord_server *s, uint8_t type, const sconn *c, uint32_t stream,
               const char *label, const char *reason, const uint8_t *data, size_t len)
{
    size_t extra = strlen(c->name) + (label ? strlen(label) : 0) + (reason ? strlen(reason) : 0) + 3;
    bool counted = type != SLUICE_COORD_SERVER_EVENT_DATA;
    sev *e;
    char *tail;

    if (!coord_evq_admit(&s->evq, counted))
        return NULL;
    e = sluice_xcalloc(&s->cfg.alloc, 1, sizeof *e + extra + len);
    if (!e) {
        s->stats.alloc_failures++;
        s->evq.dropped++;
        return NULL;
    }
    e->type = type;
    e->conn = srv_conn_id(c);
    e->stream = stream;
    e->node.counted = counted;
    tail = (char *)(e + 1);
    e->name = coord_put_str(&tail, c->name);
    e->label = coord_put_str(&tail, label);
    e->reason = coord_put_str(&tail, reason);
    if (len)
        memcpy(tail, data, len);
    e->data = (const uint8_t *)tail;
    e->len = len;
    e->remote = c->remote;
    coord_evq_append(&s->evq, &e->node);
    return e;
}

/* The connection is finished: its terminal event is queued, its slot
 * freed; the struct lives on inside the event until it is released. */
static void finalize(sluice_coord_server *s, sconn *c)
{
    sev *e = &c->final_ev;

    ready_remove(s, c);
    coord_link_free(&c->link);
    memset(e, 0, sizeof *e);
    e->zombie = c;
    e->type = SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED;
    e->conn = srv_conn_id(c);
    e->code = c->close_code;
    e->by_peer = c->by_peer;
    e->name = c->name;
    e->label = "";
    e->reason = c->close_reason ? c->close_reason : sluice_coord_code_name(c->close_code);
    e->data = (const uint8_t *)"";
    e->remote = c->remote;
    e->has_fp = c->has_fp;
    memcpy(e->fp, c->fp, 32);
    s->conns[c->idx] = NULL;
    s->free_idx[s->n_free++] = c->idx;
    s->n_conns--;
    s->stats.connections = s->n_conns;
    coord_evq_append(&s->evq, &e->node);
}

void srv_kill(sluice_coord_server *s, sconn *c, int code, const char *reason, bool send)
{
    if (!srv_alive(c))
        return;
    c->kill = true;
    c->kill_send = send;
    c->close_code = code;
    c->close_reason = coord_strdup(&s->cfg.alloc, reason);
    c->knext = s->kill_head;
    s->kill_head = c;
    if (code == SLUICE_COORD_E_PROTOCOL || code == SLUICE_COORD_E_FLOW_CONTROL ||
        code == SLUICE_COORD_E_TOO_BIG)
        s->stats.protocol_errors++;
    if (code == SLUICE_COORD_E_TIMEOUT)
        s->stats.timeouts++;
    if (c->state != CS_READY && send && code != SLUICE_COORD_E_NONE)
        s->stats.refused++;
    sluice_log(SLUICE_LOG_INFO, "coord", "connection %s%s%s: %s: %s", c->name[0] ? "\"" : "",
               c->name, c->name[0] ? "\"" : "", sluice_coord_code_name(code),
               reason ? reason : "");
}

/* End the connections marked by srv_kill: streams torn down (which may
 * mark more), ERROR queued, TLS closed after it. */
static void reap(sluice_coord_server *s, uint64_t now)
{
    while (s->kill_head) {
        sconn *c = s->kill_head;
        s->kill_head = c->knext;
        c->knext = NULL;
        c->kill = false; /* from here on, state CLOSING says it */
        srv_streams_teardown(s, c);
        if (c->state == CS_READY) {
            name_unlink(s, c);
            s->stats.clients--;
        }
        coord_link_discard(&c->link);
        if (c->transport_gone) {
            c->state = CS_CLOSING;
            finalize(s, c);
            continue;
        }
        if (c->kill_send && c->link.established) {
            uint8_t p[3 + SLUICE_COORD_REASON_MAX];
            int n = coord_enc_error(p, sizeof p, (uint16_t)c->close_code, c->close_reason);
            if (n > 0)
                coord_link_push(&c->link, CF_ERROR, 0, p, (size_t)n, NULL, 0);
        }
        coord_link_close(&c->link);
        c->state = CS_CLOSING;
        /* Linger: a peer that never takes its last bytes is dropped. */
        c->deadline_us = now + s->cfg.hello_timeout_us;
        lower_deadline(s, c->deadline_us);
        if (coord_link_has_output(&c->link, s->tx_scratch))
            ready_add(s, c);
        else
            finalize(s, c);
    }
}

static int accept_conn(sluice_coord_server *s, uint64_t now, const sluice_addr *remote,
                       bool plaintext, const uint8_t *fp, uint64_t *conn)
{
    sconn *c;
    sluice_tls *tls = NULL;
    int err = 0;

    s->now = now;
    if (s->n_free == 0)
        return SLUICE_ERR_FULL;
    c = sluice_xcalloc(&s->cfg.alloc, 1, sizeof *c);
    if (!c) {
        s->stats.alloc_failures++;
        return SLUICE_ERR_NOMEM;
    }
    if (!plaintext) {
        tls = sluice_tls_new_server(s->tls_ctx, &err);
        if (!tls) {
            s->stats.alloc_failures++;
            sluice_xfree(&s->cfg.alloc, c);
            return err ? err : SLUICE_ERR_NOMEM;
        }
    }
    c->idx = s->free_idx[--s->n_free];
    c->gen = ++s->gens[c->idx];
    if (c->gen == 0) /* after 2^32 reuses of one slot */
        c->gen = ++s->gens[c->idx];
    s->conns[c->idx] = c;
    s->n_conns++;
    s->stats.connections = s->n_conns;
    s->stats.connections_total++;
    if (remote)
        c->remote = *remote;
    c->plaintext = plaintext;
    c->srv = s;
    coord_link_init(&c->link, tls, &s->cfg.alloc, s->cfg.max_message);
    c->link.dequeued = srv_dequeued;
    c->link.dequeued_ctx = c;
    c->next_even = 2;
    c->last_rx_us = now;
    c->deadline_us = now + s->cfg.hello_timeout_us;
    lower_deadline(s, c->deadline_us);
    if (s->shutting_down)
        c->refuse_code = SLUICE_COORD_E_SHUTDOWN;
    else if (s->n_conns > s->cfg.max_connections)
        c->refuse_code = SLUICE_COORD_E_SERVER_FULL;
    c->state = CS_HANDSHAKE;
    if (plaintext) {
        c->has_fp = true;
        if (fp)
            memcpy(c->fp, fp, 32);
        c->state = CS_HELLO;
        if (c->refuse_code) {
            srv_kill(s, c, c->refuse_code,
                     c->refuse_code == SLUICE_COORD_E_SHUTDOWN ? "the coordinator is shutting down"
                                                               : "the coordinator is full",
                     true);
            reap(s, now);
        }
    }
    *conn = srv_conn_id(c);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Handshake: certificate, HELLO, WELCOME */

static void fmt_time(char *buf, size_t cap, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm))
        strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
    else
        snprintf(buf, cap, "%lld", (long long)t);
}

/* The TLS handshake completed: decide about the client's certificate now,
 * with the caller's clock, and say why when it is refused. */
static void on_established(sluice_coord_server *s, sconn *c)
{
    char why[200], t1[40];
    int64_t nb, na;
    int r;

    if (c->refuse_code) {
        srv_kill(s, c, c->refuse_code,
                 c->refuse_code == SLUICE_COORD_E_SHUTDOWN ? "the coordinator is shutting down"
                                                           : "the coordinator is full",
                 true);
        return;
    }
    if (!s->unix_time_s) {
        srv_kill(s, c, SLUICE_COORD_E_CERT_INVALID,
                 "the coordinator's clock is not set: cannot check certificates", true);
        return;
    }
    if (sluice_tls_peer_fingerprint(c->link.tls, c->fp) != 32) {
        srv_kill(s, c, SLUICE_COORD_E_CERT_REQUIRED, "a client certificate is required", true);
        return;
    }
    c->has_fp = true;
    r = sluice_tls_peer_cert_times(c->link.tls, &nb, &na);
    if (r < 0) {
        srv_kill(s, c, SLUICE_COORD_E_CERT_INVALID, "unreadable certificate validity", true);
        return;
    }
    if ((int64_t)s->unix_time_s < nb || (int64_t)s->unix_time_s > na) {
        bool early = (int64_t)s->unix_time_s < nb;
        fmt_time(t1, sizeof t1, early ? nb : na);
        snprintf(why, sizeof why, "the client certificate %s %s", early ? "is not valid before" : "expired at", t1);
        srv_kill(s, c, SLUICE_COORD_E_CERT_EXPIRED, why, true);
        return;
    }
    if (s->client_ca_file) {
        char reason[128];
        r = sluice_tls_verify_peer_chain(c->link.tls, s->unix_time_s, reason, sizeof reason);
        if (r < 0) {
            snprintf(why, sizeof why, "the client certificate is not signed by the client CA: %s",
                     r == SLUICE_ERR_AUTH ? reason : sluice_strerror(r));
            srv_kill(s, c, SLUICE_COORD_E_CERT_INVALID, why, true);
            return;
        }
    }
    c->state = CS_HELLO;
}

static void on_hello(sluice_coord_server *s, sconn *c, const uint8_t *p, size_t n)
{
    coord_hello h;
    coord_welcome w;
    uint8_t buf[32];
    char why[160];
    sev *e;
    int len;

    if (coord_dec_hello(p, n, &h) < 0) {
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, "malformed HELLO", true);
        return;
    }
    if (h.version != SLUICE_COORD_VERSION) {
        snprintf(why, sizeof why, "protocol version %u is not supported (this coordinator speaks %d)",
                 h.version, SLUICE_COORD_VERSION);
        srv_kill(s, c, SLUICE_COORD_E_VERSION, why, true);
        return;
    }
    if (!coord_name_ok(h.name.p, h.name.len)) {
        srv_kill(s, c, SLUICE_COORD_E_BAD_NAME,
                 "invalid client name (1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit)",
                 true);
        return;
    }
    memcpy(c->name, h.name.p, h.name.len);
    c->name[h.name.len] = 0;
    if (!c->plaintext && !sluice_tls_peer_has_name(c->link.tls, c->name)) {
        snprintf(why, sizeof why, "the client certificate is not valid for the name \"%s\"", c->name);
        c->name[0] = 0;
        srv_kill(s, c, SLUICE_COORD_E_CERT_NAME, why, true);
        return;
    }
    if (srv_find_name(s, c->name, h.name.len)) {
        snprintf(why, sizeof why, "a client named \"%s\" is already connected", c->name);
        c->name[0] = 0;
        srv_kill(s, c, SLUICE_COORD_E_NAME_TAKEN, why, true);
        return;
    }
    memset(&w, 0, sizeof w);
    w.version = SLUICE_COORD_VERSION;
    w.max_message = s->cfg.max_message;
    w.window = s->cfg.window;
    w.idle_timeout_ms = (uint32_t)(s->cfg.idle_timeout_us / 1000 > UINT32_MAX
                                       ? UINT32_MAX
                                       : s->cfg.idle_timeout_us / 1000);
    len = coord_enc_welcome(buf, sizeof buf, &w);
    if (srv_push(s, c, CF_WELCOME, 0, buf, (size_t)len, NULL, 0) < 0)
        return;
    size_t b = name_hash(s, c->name, h.name.len) & s->names_mask;
    c->hnext = s->names[b];
    s->names[b] = c;
    c->state = CS_READY;
    s->stats.clients++;
    lower_deadline(s, c->last_rx_us + s->cfg.idle_timeout_us);
    e = srv_event(s, SLUICE_COORD_SERVER_EVENT_CLIENT_CONNECTED, c, 0, NULL, NULL, NULL, 0);
    if (e) {
        e->has_fp = c->has_fp;
        memcpy(e->fp, c->fp, 32);
    }
    sluice_log(SLUICE_LOG_INFO, "coord", "client \"%s\" connected", c->name);
    srv_held_connected(s, c->last_rx_us, c);
}

struct input_ctx {
    sluice_coord_server *s;
    sconn *c;
    uint64_t now;
};

static int on_frame(void *ctx, const coord_hdr *h, const uint8_t *p)
{
    struct input_ctx *in = ctx;
    sluice_coord_server *s = in->s;
    sconn *c = in->c;
    char why[96];

    if (!srv_alive(c))
        return SLUICE_ERR_STATE;
    if (!h) {
        on_established(s, c);
        return srv_alive(c) ? 0 : SLUICE_ERR_STATE;
    }
    if (c->state == CS_HANDSHAKE)
        return SLUICE_ERR_STATE; /* cannot happen: frames follow the handshake */
    if (c->state == CS_HELLO) {
        if (h->type == CF_HELLO) {
            on_hello(s, c, p, h->len);
        } else {
            snprintf(why, sizeof why, "expected HELLO, got %s", coord_frame_name(h->type));
            srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, why, true);
        }
        return srv_alive(c) ? 0 : SLUICE_ERR_STATE;
    }
    switch (h->type) {
    case CF_ERROR: {
        char reason[SLUICE_COORD_REASON_MAX + 1];
        int code;
        if (coord_dec_error_text(p, h->len, &code, reason, sizeof reason) < 0) {
            srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, "malformed ERROR", true);
            break;
        }
        c->by_peer = true;
        srv_kill(s, c, code, reason[0] ? reason : "closed by the client", false);
        break;
    }
    case CF_PING:
        if (h->len != COORD_PING_LEN)
            srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, "PING payload is not 8 bytes", true);
        else
            srv_push(s, c, CF_PONG, 0, p, h->len, NULL, 0);
        break;
    case CF_PONG:
        if (h->len != COORD_PING_LEN)
            srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, "PONG payload is not 8 bytes", true);
        break;
    case CF_HELLO:
    case CF_WELCOME:
    case CF_BCAST_DATA:
    case CF_LAG:
        snprintf(why, sizeof why, "unexpected %s from a client", coord_frame_name(h->type));
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, why, true);
        break;
    default:
        srv_stream_frame(s, in->now, c, h, p);
        break;
    }
    return srv_alive(c) ? 0 : SLUICE_ERR_STATE;
}

int sluice_coord_server_handle_stream(sluice_coord_server *s, uint64_t now_us, uint64_t conn,
                                      const uint8_t *data, size_t len)
{
    struct input_ctx in = {s, NULL, now_us};
    const char *why = "";
    sconn *c;
    int r;

    if (!s || (!data && len))
        return SLUICE_ERR_INVALID;
    c = srv_conn(s, conn);
    if (!c)
        return SLUICE_ERR_NOT_FOUND;
    s->now = now_us;
    if (!srv_alive(c))
        return 0;
    in.c = c;
    c->last_rx_us = now_us;
    uint64_t before = c->link.tls_in;
    r = coord_link_input(&c->link, data, len, s->rx_scratch, on_frame, &in, &why);
    s->stats.tls_bytes_in += c->link.tls_in - before;
    if (r < 0 && srv_alive(c)) {
        char text[200];
        switch (r) {
        case SLUICE_ERR_MALFORMED:
            srv_kill(s, c, c->link.proto_code, why, true);
            break;
        case SLUICE_ERR_STATE: /* the client's close_notify */
            c->by_peer = true;
            srv_kill(s, c, SLUICE_COORD_E_NONE, "the client closed the TLS session", false);
            break;
        case SLUICE_ERR_NOMEM:
            s->stats.alloc_failures++;
            srv_kill(s, c, SLUICE_COORD_E_INTERNAL, "out of memory", true);
            break;
        default:
            snprintf(text, sizeof text, "TLS: %s",
                     c->link.tls ? sluice_tls_error_text(c->link.tls) : sluice_strerror(r));
            srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, text, false);
            break;
        }
    }
    if (srv_alive(c))
        ready_add(s, c);
    reap(s, now_us);
    return 0;
}

int sluice_coord_server_connection_closed(sluice_coord_server *s, uint64_t now_us, uint64_t conn)
{
    sconn *c;

    if (!s)
        return SLUICE_ERR_INVALID;
    c = srv_conn(s, conn);
    if (!c)
        return SLUICE_ERR_NOT_FOUND;
    s->now = now_us;
    if (c->state == CS_CLOSING) {
        /* Already ending: stop waiting for its last bytes to be taken. */
        coord_link_discard(&c->link);
        finalize(s, c);
        return 0;
    }
    if (!c->kill) {
        c->by_peer = true;
        srv_kill(s, c, SLUICE_COORD_E_NONE, "the connection closed", false);
    }
    c->transport_gone = true;
    reap(s, now_us);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Output */

int sluice_coord_server_poll_transmit(sluice_coord_server *s, uint64_t now_us, uint8_t *buf,
                                      size_t cap, sluice_coord_transmit *meta)
{
    sconn *c;

    if (!s || !buf || !meta)
        return SLUICE_ERR_INVALID;
    memset(meta, 0, sizeof *meta);
    if (!cap)
        return SLUICE_ERR_NOSPACE;
    s->now = now_us;
    reap(s, now_us);
    while ((c = s->ready_head) != NULL) {
        ready_remove(s, c);
        if (!coord_link_has_output(&c->link, s->tx_scratch)) {
            if (c->state == CS_CLOSING && coord_link_done(&c->link))
                finalize(s, c);
            continue;
        }
        int n = coord_link_take(&c->link, buf, cap > INT32_MAX ? INT32_MAX : cap, s->tx_scratch);
        meta->conn = srv_conn_id(c);
        s->stats.tls_bytes_out += (uint64_t)n;
        if (c->state == CS_CLOSING && coord_link_done(&c->link)) {
            meta->close = true;
            finalize(s, c);
        } else if (coord_link_has_output(&c->link, s->tx_scratch)) {
            ready_add(s, c);
        }
        if (n > 0 || meta->close)
            return n;
    }
    return 0;
}

int sluice_coord_server_pause_output(sluice_coord_server *s, uint64_t conn, bool paused)
{
    sconn *c = s ? srv_conn(s, conn) : NULL;

    if (!c)
        return SLUICE_ERR_NOT_FOUND;
    c->paused = paused;
    if (paused)
        ready_remove(s, c);
    else
        ready_add(s, c);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Timers */

static uint64_t conn_deadline(const sluice_coord_server *s, const sconn *c)
{
    if (c->state == CS_READY)
        return c->last_rx_us + s->cfg.idle_timeout_us;
    return c->deadline_us;
}

void sluice_coord_server_handle_timeout(sluice_coord_server *s, uint64_t now_us)
{
    char why[96];

    if (!s)
        return;
    s->now = now_us;
    srv_held_timeout(s, now_us);
    if (now_us >= s->conn_deadline_lb) {
        for (size_t i = 0; i < s->n_slots; i++) {
            sconn *c = s->conns[i];
            if (!c || c->kill || now_us < conn_deadline(s, c))
                continue;
            if (c->state == CS_CLOSING) {
                coord_link_discard(&c->link);
                finalize(s, c);
            } else if (c->state == CS_READY) {
                snprintf(why, sizeof why, "nothing received for %llu s",
                         (unsigned long long)(s->cfg.idle_timeout_us / SEC));
                srv_kill(s, c, SLUICE_COORD_E_TIMEOUT, why, true);
            } else {
                snprintf(why, sizeof why, "no %s within %llu s",
                         c->state == CS_HANDSHAKE ? "TLS handshake" : "HELLO",
                         (unsigned long long)(s->cfg.hello_timeout_us / SEC));
                srv_kill(s, c, SLUICE_COORD_E_TIMEOUT, why, c->state == CS_HELLO);
            }
        }
        reap(s, now_us);
        s->conn_deadline_lb = SLUICE_NEVER;
        for (size_t i = 0; i < s->n_slots; i++)
            if (s->conns[i])
                lower_deadline(s, conn_deadline(s, s->conns[i]));
    }
    reap(s, now_us);
}

uint64_t sluice_coord_server_next_timeout(const sluice_coord_server *s)
{
    uint64_t t, h;

    if (!s)
        return SLUICE_NEVER;
    t = s->conn_deadline_lb;
    h = srv_held_next(s);
    return h < t ? h : t;
}

/* ------------------------------------------------------------------------ */
/* Operator calls */

int sluice_coord_server_disconnect(sluice_coord_server *s, uint64_t now_us, uint64_t conn,
                                   int code, const char *reason)
{
    sconn *c = s ? srv_conn(s, conn) : NULL;

    if (!c)
        return SLUICE_ERR_NOT_FOUND;
    s->now = now_us;
    if (srv_alive(c)) {
        srv_kill(s, c, code, reason ? reason : sluice_coord_code_name(code), true);
        reap(s, now_us);
    }
    return 0;
}

void sluice_coord_server_shutdown(sluice_coord_server *s, uint64_t now_us, const char *reason)
{
    if (!s)
        return;
    s->now = now_us;
    s->shutting_down = true;
    for (size_t i = 0; i < s->n_slots; i++)
        if (s->conns[i])
            srv_kill(s, s->conns[i], SLUICE_COORD_E_SHUTDOWN,
                     reason ? reason : "the coordinator is shutting down", true);
    reap(s, now_us);
}

int sluice_coord_server_find_client(const sluice_coord_server *s, const char *name,
                                    uint64_t *conn)
{
    sconn *c;

    if (!s || !name || !conn)
        return SLUICE_ERR_INVALID;
    c = srv_find_name(s, name, strlen(name));
    if (!c || !srv_alive(c))
        return SLUICE_ERR_NOT_FOUND;
    *conn = srv_conn_id(c);
    return 0;
}

int sluice_coord_server_conn_info(const sluice_coord_server *s, uint64_t conn,
                                  sluice_coord_conn_info *info)
{
    const sconn *c = s ? srv_conn(s, conn) : NULL;

    if (!c || !info)
        return SLUICE_ERR_NOT_FOUND;
    memset(info, 0, sizeof *info);
    info->remote = c->remote;
    info->named = c->state == CS_READY;
    memcpy(info->name, c->name, sizeof info->name);
    info->has_fingerprint = c->has_fp;
    memcpy(info->fingerprint, c->fp, 32);
    info->streams = c->streams.n;
    info->queued_bytes = c->link.queued;
    info->tls_pending = c->link.tls ? sluice_tls_pending_output(c->link.tls) : 0;
    return 0;
}

void sluice_coord_server_get_stats(const sluice_coord_server *s, sluice_coord_server_stats *st)
{
    if (!s || !st)
        return;
    *st = s->stats;
    st->events_dropped = s->evq.dropped;
}

/* ------------------------------------------------------------------------ */
/* Events */

static void release_current(sluice_coord_server *s)
{
    sev *e = (sev *)coord_evq_release(&s->evq);

    if (!e)
        return;
    if (e->type == SLUICE_COORD_SERVER_EVENT_DATA) {
        sconn *c = srv_conn(s, e->conn);
        sstream *st = c && srv_alive(c) ? srv_stream(c, e->stream) : NULL;
        if (st) {
            st->pending_credit += e->credit;
            srv_return_credit(s, st, false);
        }
    }
    event_free(s, e);
}

bool sluice_coord_server_poll_event(sluice_coord_server *s, sluice_coord_server_event *ev)
{
    sev *e;

    if (!s || !ev)
        return false;
    release_current(s);
    reap(s, s->now);
    e = (sev *)coord_evq_pop(&s->evq);
    if (!e)
        return false;
    memset(ev, 0, sizeof *ev);
    ev->type = (sluice_coord_server_event_type)e->type;
    ev->conn = e->conn;
    ev->stream = e->stream;
    ev->code = e->code;
    ev->by_peer = e->by_peer;
    ev->name = e->name;
    ev->label = e->label;
    ev->reason = e->reason;
    ev->data = e->data;
    ev->len = e->len;
    ev->remote = e->remote;
    ev->has_fingerprint = e->has_fp;
    memcpy(ev->fingerprint, e->fp, 32);
    return true;
}
