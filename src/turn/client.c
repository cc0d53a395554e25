/* SPDX-License-Identifier: MIT */
/* TURN client, sans-IO (RFC 8656, RFC 6156 families): one allocation with
 * refreshes, permissions and channels over UDP, TCP or TLS (memory BIOs).
 * Requests go through a STUN transaction set that answers 401/438. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/internal.h"
#include "common/tls.h"
#include "sluice/turn_client.h"
#include "turn/framing.h"

#define SEC 1000000ull
/* RFC 8656 §9: permissions last 300 s; refreshed a minute early. */
#define PERM_LIFETIME_US (300 * SEC)
#define PERM_REFRESH_US (240 * SEC)
/* RFC 8656 §12: channel bindings last 600 s. They are rebound with the
 * permission's period, since the permission a ChannelBind installs lasts
 * only 300 s. */
#define CHAN_LIFETIME_US (600 * SEC)
/* When the transaction set is full, try again this much later. */
#define BUSY_RETRY_US 50000ull
#define MAX_PEERS 4096
#define MAX_TRANSACTIONS 16
#define MAX_EVENTS_BASE 32
#define RECV_QUEUE_MIN (70u * 1024)
#define RECV_QUEUE_MAX (64u * 1024 * 1024)
#define BODY_MAX 512 /* request bodies we build (addresses, numbers) */
#define TLS_PLAIN_CHUNK 16384
#define TLS_OUTPUT_HIGH (64u * 1024)
#define CRED_MAX 512

enum state { ST_IDLE, ST_ALLOCATING, ST_ALLOCATED, ST_CLOSING, ST_CLOSED, ST_FAILED };
enum kind { K_ALLOCATE = 1, K_REFRESH, K_PERM, K_CHAN, K_DELETE };

/* A permission (by IP, RFC 8656 §9) or a channel (by IP:port, §12). */
struct peer {
    bool confirmed; /* a success arrived and has not expired */
    bool failed;    /* an error answer: no more refreshes until asked again */
    bool inflight;
    uint16_t channel;
    sluice_addr addr;
    uint64_t refresh_at_us; /* next request; SLUICE_NEVER while in flight or failed */
    uint64_t expires_us;    /* 0 until confirmed */
    uint8_t txid[SLUICE_STUN_TXID_LEN];
};

struct recv_hdr {
    sluice_addr peer;
    uint32_t len;
};

struct sluice_turn_client {
    sluice_turn_client_config cfg;
    char *username, *password, *server_name, *ca_file, *software;
    sluice_stun_client *stun;
    sluice_tls *tls;
    enum state state;
    sluice_addr server;
    char server_name_buf[SLUICE_STUN_MAX_TEXT + 1]; /* ALTERNATE-DOMAIN */
    bool use_alt_name;

    /* the allocation */
    sluice_addr relayed[2];
    size_t n_relayed;
    sluice_addr mapped;
    uint64_t expires_us;
    uint64_t refresh_at_us; /* SLUICE_NEVER while a refresh is in flight */
    uint64_t close_deadline_us;
    uint8_t refresh_txid[SLUICE_STUN_TXID_LEN];

    struct peer *perms;
    size_t n_perms;
    struct peer *chans;
    size_t n_chans;

    sluice_turn_event *evq;
    size_t evq_cap, evq_head, evq_len;

    uint8_t *rq; /* receive queue: records of recv_hdr + payload */
    size_t rq_cap, rq_head, rq_used;

    uint8_t *rx; /* stream reassembly (TCP/TLS) */
    size_t rx_len;
    /* Changes when a redirect replaces the stream: bytes of the old stream
     * still being processed are dropped. */
    unsigned stream_gen;
    uint8_t *scratch; /* TLS: plaintext chunk / wrapped datagram */
    size_t scratch_cap;
    bool tls_close_sent;

    sluice_turn_client_stats stats;
};

/* Copy a string of at most max bytes; *err becomes INVALID (too long) or
 * NOMEM on failure and is left alone on success. */
static char *xstrdup(const sluice_allocator *a, const char *s, size_t max, int *err)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    if (n > max) {
        *err = SLUICE_ERR_INVALID;
        return NULL;
    }
    char *d = sluice_xcalloc(a, 1, n + 1);
    if (!d) {
        if (*err == 0)
            *err = SLUICE_ERR_NOMEM;
        return NULL;
    }
    memcpy(d, s, n);
    return d;
}

void sluice_turn_client_config_init(sluice_turn_client_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->transport = SLUICE_TRANSPORT_UDP;
    cfg->tls_verify = true;
    cfg->family = SLUICE_TURN_FAMILY_IPV4;
    cfg->max_permissions = 64;
    cfg->max_channels = 64;
    cfg->max_redirects = 3;
    cfg->close_timeout_us = 2 * SEC;
    cfg->recv_queue_bytes = 256 * 1024;
    cfg->initial_rto_us = 500000;
}

static bool stream(const sluice_turn_client *c)
{
    return c->cfg.transport != SLUICE_TRANSPORT_UDP;
}

static int make_tls(sluice_turn_client *c)
{
    sluice_tls_free(c->tls);
    c->tls = NULL;
    char ip[64];
    sluice_tls_config tc;
    sluice_tls_config_init(&tc);
    tc.server = false;
    tc.verify = c->cfg.tls_verify;
    tc.ca_file = c->ca_file;
    if (c->use_alt_name)
        tc.server_name = c->server_name_buf;
    else if (c->server_name)
        tc.server_name = c->server_name;
    else if (sluice_addr_format(&c->server, false, ip, sizeof ip) >= 0)
        tc.server_name = ip;
    int err = 0;
    c->tls = sluice_tls_new(&tc, &err);
    return c->tls ? 0 : (err ? err : SLUICE_ERR_CRYPTO);
}

sluice_turn_client *sluice_turn_client_new(const sluice_turn_client_config *cfg, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    *err = SLUICE_ERR_INVALID;
    if (!cfg || !cfg->username || !cfg->password || !cfg->username[0])
        return NULL;
    if (cfg->server.family != 4 && cfg->server.family != 6)
        return NULL;
    if (cfg->transport != SLUICE_TRANSPORT_UDP && cfg->transport != SLUICE_TRANSPORT_TCP &&
        cfg->transport != SLUICE_TRANSPORT_TLS)
        return NULL;
    if (cfg->family < SLUICE_TURN_FAMILY_IPV4 || cfg->family > SLUICE_TURN_FAMILY_DUAL)
        return NULL;
    if (cfg->max_permissions > MAX_PEERS || cfg->max_channels > MAX_PEERS ||
        cfg->max_channels > SLUICE_TURN_CHANNEL_MAX - SLUICE_TURN_CHANNEL_MIN + 1)
        return NULL;
    if (cfg->recv_queue_bytes < RECV_QUEUE_MIN || cfg->recv_queue_bytes > RECV_QUEUE_MAX)
        return NULL;

    const sluice_allocator *a = &cfg->alloc;
    sluice_turn_client *c = sluice_xcalloc(a, 1, sizeof *c);
    *err = SLUICE_ERR_NOMEM;
    if (!c)
        return NULL;
    c->cfg = *cfg;
    c->server = cfg->server;
    int serr = 0;
    c->username = xstrdup(a, cfg->username, SLUICE_STUN_MAX_USERNAME - 1, &serr);
    c->password = xstrdup(a, cfg->password, CRED_MAX, &serr);
    c->server_name = xstrdup(a, cfg->server_name, 255, &serr);
    c->ca_file = xstrdup(a, cfg->ca_file, 4096, &serr);
    c->software = xstrdup(a, cfg->software, SLUICE_STUN_MAX_TEXT_ENCODE, &serr);
    c->cfg.username = c->cfg.password = c->cfg.server_name = c->cfg.ca_file = NULL;
    c->cfg.software = NULL;
    if (serr) {
        *err = serr;
        goto fail;
    }

    sluice_stun_client_config sc;
    sluice_stun_client_config_init(&sc);
    if (cfg->initial_rto_us)
        sc.initial_rto_us = cfg->initial_rto_us;
    sc.max_transactions = MAX_TRANSACTIONS;
    sc.max_servers = 4; /* the server and its redirects */
    sc.software = c->software;
    sc.rng = cfg->rng;
    sc.alloc = cfg->alloc;
    c->stun = sluice_stun_client_new(&sc);
    if (!c->stun)
        goto fail;

    if (cfg->max_permissions) {
        c->perms = sluice_xcalloc(a, cfg->max_permissions, sizeof *c->perms);
        if (!c->perms)
            goto fail;
    }
    if (cfg->max_channels) {
        c->chans = sluice_xcalloc(a, cfg->max_channels, sizeof *c->chans);
        if (!c->chans)
            goto fail;
    }
    c->evq_cap = MAX_EVENTS_BASE + cfg->max_permissions + cfg->max_channels;
    c->evq = sluice_xcalloc(a, c->evq_cap, sizeof *c->evq);
    c->rq_cap = cfg->recv_queue_bytes;
    c->rq = sluice_xcalloc(a, 1, c->rq_cap);
    if (!c->evq || !c->rq)
        goto fail;
    if (stream(c)) {
        c->rx = sluice_xcalloc(a, 1, SLUICE_TURN_STREAM_FRAME_MAX);
        if (!c->rx)
            goto fail;
    }
    if (cfg->transport == SLUICE_TRANSPORT_TLS) {
        /* a wrapped datagram (Send indication with a 64 KiB DATA) */
        c->scratch_cap = 65536 + 64;
        c->scratch = sluice_xcalloc(a, 1, c->scratch_cap);
        if (!c->scratch)
            goto fail;
        int e = make_tls(c);
        if (e < 0) {
            *err = e;
            goto fail;
        }
    }
    *err = 0;
    c->refresh_at_us = SLUICE_NEVER;
    return c;
fail:
    sluice_turn_client_free(c);
    return NULL;
}

void sluice_turn_client_free(sluice_turn_client *c)
{
    if (!c)
        return;
    const sluice_allocator a = c->cfg.alloc;
    sluice_tls_free(c->tls);
    sluice_stun_client_free(c->stun);
    if (c->password)
        OPENSSL_cleanse(c->password, strlen(c->password));
    sluice_xfree(&a, c->username);
    sluice_xfree(&a, c->password);
    sluice_xfree(&a, c->server_name);
    sluice_xfree(&a, c->ca_file);
    sluice_xfree(&a, c->software);
    sluice_xfree(&a, c->perms);
    sluice_xfree(&a, c->chans);
    sluice_xfree(&a, c->evq);
    sluice_xfree(&a, c->rq);
    sluice_xfree(&a, c->rx);
    sluice_xfree(&a, c->scratch);
    sluice_xfree(&a, c);
}

/* ------------------------------------------------------------------------ */
/* Events */

static sluice_turn_event *push_event(sluice_turn_client *c, sluice_turn_event_type type)
{
    if (c->evq_len == c->evq_cap) {
        c->stats.events_dropped++;
        return NULL;
    }
    sluice_turn_event *ev = &c->evq[(c->evq_head + c->evq_len++) % c->evq_cap];
    memset(ev, 0, sizeof *ev);
    ev->type = type;
    ev->server = c->server;
    return ev;
}

bool sluice_turn_client_poll_event(sluice_turn_client *c, sluice_turn_event *ev)
{
    if (!c->evq_len)
        return false;
    *ev = c->evq[c->evq_head];
    c->evq_head = (c->evq_head + 1) % c->evq_cap;
    c->evq_len--;
    return true;
}

static void set_text(sluice_turn_event *ev, const char *s, size_t n)
{
    /* some servers count trailing NULs into the reason phrase */
    while (n && s[n - 1] == 0)
        n--;
    if (n >= sizeof ev->text)
        n = sizeof ev->text - 1;
    /* the server's reason phrase is UTF-8 from the wire: keep it printable */
    for (size_t i = 0; i < n; i++)
        ev->text[i] = (s[i] >= 0x20 && s[i] != 0x7F) || (s[i] & 0x80) ? s[i] : '?';
    ev->text[n] = 0;
}

/* error_code/text from a stun event's response */
static void fill_error(sluice_turn_event *ev, const sluice_stun_event *se)
{
    ev->error_code = se->error_code;
    ev->reason = se->reason;
    if (se->type == SLUICE_STUN_EVENT_TIMEOUT) {
        ev->reason = SLUICE_ERR_TIMEOUT;
        set_text(ev, "no answer from the TURN server", 30);
        return;
    }
    sluice_stun_msg m;
    int code;
    const char *r;
    size_t rl;
    if (se->response && sluice_stun_parse(&m, se->response, se->response_len) == 0 &&
        sluice_stun_get_error_code(&m, &code, &r, &rl) == 0) {
        ev->error_code = code;
        set_text(ev, r, rl);
    }
    if (!ev->text[0]) {
        const char *s = ev->error_code ? sluice_stun_error_reason(ev->error_code)
                                       : sluice_strerror(ev->reason);
        if (s)
            set_text(ev, s, strlen(s));
    }
    if (!ev->reason && se->type == SLUICE_STUN_EVENT_FAILED)
        ev->reason = SLUICE_ERR_AUTH;
}

/* The allocation ends: ALLOCATE_FAILED, LOST or CLOSED. */
static void terminate(sluice_turn_client *c, sluice_turn_event_type type, int code, int reason,
                      const char *text)
{
    if (c->state == ST_CLOSED || c->state == ST_FAILED)
        return;
    sluice_turn_event *ev = push_event(c, type);
    if (ev) {
        ev->error_code = code;
        ev->reason = reason;
        if (text)
            set_text(ev, text, strlen(text));
    }
    c->state = type == SLUICE_TURN_EVENT_CLOSED ? ST_CLOSED : ST_FAILED;
    c->n_relayed = 0;
    c->refresh_at_us = SLUICE_NEVER;
    if (c->tls && !c->tls_close_sent && sluice_tls_established(c->tls)) {
        sluice_tls_close(c->tls);
        c->tls_close_sent = true;
    }
}

/* ------------------------------------------------------------------------ */
/* Requests */

static uint64_t user_of(enum kind k, size_t idx)
{
    return (uint64_t)k << 32 | (uint32_t)idx;
}

static int send_request(sluice_turn_client *c, uint64_t now, const uint8_t *body, size_t len,
                        enum kind k, size_t idx, uint8_t txid[SLUICE_STUN_TXID_LEN])
{
    sluice_stun_request rq = {
        .server = c->server,
        .transport = c->cfg.transport,
        .user = user_of(k, idx),
        .auth = SLUICE_STUN_AUTH_LONG_TERM,
        .username = c->username,
        .username_len = strlen(c->username),
        .password = c->password,
        .password_len = strlen(c->password),
    };
    return sluice_stun_client_send(c->stun, now, body, len, &rq, txid);
}

static int begin(sluice_stun_writer *w, uint8_t *buf, uint16_t method)
{
    return sluice_stun_writer_init(w, buf, BODY_MAX, sluice_stun_type(method, SLUICE_STUN_REQUEST),
                                   NULL);
}

static int send_allocate(sluice_turn_client *c, uint64_t now)
{
    uint8_t buf[BODY_MAX];
    sluice_stun_writer w;
    begin(&w, buf, SLUICE_STUN_ALLOCATE);
    sluice_stun_put_requested_transport(&w, 17); /* UDP relay, RFC 8656 §7.1 */
    /* RFC 8656 §7.1: IPv4 is the default; REQUESTED- and ADDITIONAL-
     * ADDRESS-FAMILY are never both present; the additional one is IPv6. */
    if (c->cfg.family == SLUICE_TURN_FAMILY_IPV6)
        sluice_stun_put_address_family(&w, SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY,
                                       SLUICE_STUN_FAMILY_IPV6);
    else if (c->cfg.family == SLUICE_TURN_FAMILY_DUAL)
        sluice_stun_put_address_family(&w, SLUICE_STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY,
                                       SLUICE_STUN_FAMILY_IPV6);
    if (c->cfg.lifetime_s)
        sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_LIFETIME, c->cfg.lifetime_s);
    int n = sluice_stun_writer_result(&w);
    if (n < 0)
        return n;
    return send_request(c, now, buf, (size_t)n, K_ALLOCATE, 0, NULL);
}

static int send_refresh(sluice_turn_client *c, uint64_t now, uint32_t lifetime, enum kind k)
{
    uint8_t buf[BODY_MAX];
    sluice_stun_writer w;
    begin(&w, buf, SLUICE_STUN_REFRESH);
    if (k == K_DELETE || lifetime)
        sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_LIFETIME, lifetime);
    int n = sluice_stun_writer_result(&w);
    if (n < 0)
        return n;
    return send_request(c, now, buf, (size_t)n, k, 0, c->refresh_txid);
}

static int send_peer_request(sluice_turn_client *c, uint64_t now, struct peer *p, enum kind k,
                             size_t idx)
{
    uint8_t buf[BODY_MAX];
    sluice_stun_writer w;
    begin(&w, buf, k == K_CHAN ? SLUICE_STUN_CHANNEL_BIND : SLUICE_STUN_CREATE_PERMISSION);
    if (k == K_CHAN)
        sluice_stun_put_channel_number(&w, p->channel);
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &p->addr);
    int n = sluice_stun_writer_result(&w);
    if (n < 0)
        return n;
    return send_request(c, now, buf, (size_t)n, k, idx, p->txid);
}

/* Send every request that is due; a full transaction set postpones. */
static void pump(sluice_turn_client *c, uint64_t now)
{
    if (c->state != ST_ALLOCATED)
        return;
    if (now >= c->expires_us) {
        terminate(c, SLUICE_TURN_EVENT_LOST, 0, SLUICE_ERR_TIMEOUT,
                  "allocation expired before a refresh succeeded");
        return;
    }
    if (now >= c->refresh_at_us) {
        int r = send_refresh(c, now, c->cfg.lifetime_s, K_REFRESH);
        c->refresh_at_us = r == 0 ? SLUICE_NEVER : now + BUSY_RETRY_US;
    }
    for (int pass = 0; pass < 2; pass++) {
        struct peer *tab = pass ? c->chans : c->perms;
        size_t n = pass ? c->n_chans : c->n_perms;
        for (size_t i = 0; i < n; i++) {
            struct peer *p = &tab[i];
            if (p->confirmed && now >= p->expires_us) {
                /* the refresh did not make it in time */
                p->confirmed = false;
                p->failed = true;
                p->refresh_at_us = SLUICE_NEVER;
                sluice_turn_event *ev = push_event(
                    c, pass ? SLUICE_TURN_EVENT_CHANNEL_FAILED : SLUICE_TURN_EVENT_PERMISSION_FAILED);
                if (ev) {
                    ev->peer = p->addr;
                    ev->channel = p->channel;
                    ev->reason = SLUICE_ERR_TIMEOUT;
                    set_text(ev, "expired before a refresh succeeded", 34);
                }
                if (p->inflight) {
                    sluice_stun_client_cancel(c->stun, p->txid);
                    p->inflight = false;
                }
                continue;
            }
            if (p->inflight || p->failed || now < p->refresh_at_us)
                continue;
            int r = send_peer_request(c, now, p, pass ? K_CHAN : K_PERM, i);
            if (r == 0) {
                p->inflight = true;
                p->refresh_at_us = SLUICE_NEVER;
            } else {
                p->refresh_at_us = now + BUSY_RETRY_US;
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Answers */

static void on_allocate(sluice_turn_client *c, uint64_t now, const sluice_stun_event *se)
{
    if (c->state != ST_ALLOCATING)
        return;
    sluice_stun_msg m;
    bool parsed = se->response && sluice_stun_parse(&m, se->response, se->response_len) == 0;

    if (se->type == SLUICE_STUN_EVENT_SUCCESS && parsed) {
        sluice_stun_attr_iter it;
        sluice_stun_attr a;
        c->n_relayed = 0;
        sluice_stun_attr_iter_init(&it, &m);
        while (sluice_stun_attr_next(&it, &a)) {
            if (a.type == SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS && c->n_relayed < 2 &&
                sluice_stun_decode_xor_address(&m, &a, &c->relayed[c->n_relayed]) == 0)
                c->n_relayed++;
        }
        uint32_t lifetime = 0;
        if (c->n_relayed == 0 || sluice_stun_get_u32(&m, SLUICE_STUN_ATTR_LIFETIME, &lifetime) < 0) {
            terminate(c, SLUICE_TURN_EVENT_ALLOCATE_FAILED, 0, SLUICE_ERR_MALFORMED,
                      "Allocate success without XOR-RELAYED-ADDRESS or LIFETIME");
            return;
        }
        memset(&c->mapped, 0, sizeof c->mapped);
        sluice_stun_get_xor_address(&m, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &c->mapped);
        c->state = ST_ALLOCATED;
        uint64_t life = (uint64_t)lifetime * SEC;
        c->expires_us = now + life;
        /* refresh a minute before expiry, or halfway for short lifetimes */
        c->refresh_at_us = now + life - (life / 2 < 60 * SEC ? life / 2 : 60 * SEC);
        sluice_turn_event *ev = push_event(c, SLUICE_TURN_EVENT_ALLOCATED);
        if (ev) {
            memcpy(ev->relayed, c->relayed, sizeof ev->relayed);
            ev->n_relayed = c->n_relayed;
            ev->mapped = c->mapped;
            ev->lifetime_s = lifetime;
            uint8_t fam;
            int code;
            const char *r;
            size_t rl;
            /* RFC 8656 §7.3: one family of a dual request may fail. */
            if (sluice_stun_get_address_error_code(&m, &fam, &code, &r, &rl) == 0) {
                ev->failed_family = fam;
                ev->family_error_code = code;
                set_text(ev, r, rl);
            }
        }
        return;
    }

    int code = 0;
    if (se->type == SLUICE_STUN_EVENT_ERROR && parsed) {
        const char *r;
        size_t rl;
        sluice_stun_get_error_code(&m, &code, &r, &rl);
    }
    /* RFC 8489 §10, RFC 8656 §7.3: 300 Try Alternate with ALTERNATE-SERVER. */
    if (code == SLUICE_STUN_ERR_TRY_ALTERNATE) {
        sluice_addr alt;
        if (sluice_stun_get_address(&m, SLUICE_STUN_ATTR_ALTERNATE_SERVER, &alt) == 0 &&
            (alt.family == 4 || alt.family == 6) && alt.port &&
            c->stats.redirects < c->cfg.max_redirects && !sluice_addr_equal(&alt, &c->server)) {
            c->stats.redirects++;
            c->server = alt;
            const uint8_t *dom;
            size_t dl;
            c->use_alt_name = false;
            if (sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_ALTERNATE_DOMAIN, &dom, &dl) == 0 &&
                dl < sizeof c->server_name_buf) {
                memcpy(c->server_name_buf, dom, dl);
                c->server_name_buf[dl] = 0;
                c->use_alt_name = true;
            }
            c->rx_len = 0;
            c->stream_gen++;
            c->tls_close_sent = false;
            int r = c->cfg.transport == SLUICE_TRANSPORT_TLS ? make_tls(c) : 0;
            if (r == 0)
                r = send_allocate(c, now);
            if (r == 0) {
                sluice_turn_event *ev = push_event(c, SLUICE_TURN_EVENT_REDIRECTED);
                if (ev)
                    set_text(ev, "ALTERNATE-SERVER", 16);
                return;
            }
            terminate(c, SLUICE_TURN_EVENT_ALLOCATE_FAILED, 0, r, "redirect failed");
            return;
        }
    }
    sluice_turn_event tmp = {0};
    fill_error(&tmp, se);
    if (code == SLUICE_STUN_ERR_TRY_ALTERNATE && !tmp.reason)
        tmp.reason = SLUICE_ERR_UNSUPPORTED; /* no usable ALTERNATE-SERVER or too many */
    terminate(c, SLUICE_TURN_EVENT_ALLOCATE_FAILED, tmp.error_code, tmp.reason, tmp.text);
}

static void on_refresh(sluice_turn_client *c, uint64_t now, const sluice_stun_event *se)
{
    if (c->state != ST_ALLOCATED)
        return;
    sluice_stun_msg m;
    uint32_t lifetime;
    if (se->type == SLUICE_STUN_EVENT_SUCCESS &&
        sluice_stun_parse(&m, se->response, se->response_len) == 0 &&
        sluice_stun_get_u32(&m, SLUICE_STUN_ATTR_LIFETIME, &lifetime) == 0 && lifetime > 0) {
        uint64_t life = (uint64_t)lifetime * SEC;
        c->expires_us = now + life;
        c->refresh_at_us = now + life - (life / 2 < 60 * SEC ? life / 2 : 60 * SEC);
        sluice_turn_event *ev = push_event(c, SLUICE_TURN_EVENT_REFRESHED);
        if (ev)
            ev->lifetime_s = lifetime;
        return;
    }
    if (se->type == SLUICE_STUN_EVENT_TIMEOUT && now < c->expires_us) {
        /* A lost refresh: try again while the allocation lives (§7.3). */
        c->refresh_at_us = now;
        return;
    }
    sluice_turn_event tmp = {0};
    if (se->type == SLUICE_STUN_EVENT_SUCCESS) {
        tmp.reason = SLUICE_ERR_MALFORMED;
        strcpy(tmp.text, "Refresh success without a usable LIFETIME");
    } else {
        fill_error(&tmp, se);
    }
    /* 437: the server has no such allocation any more. */
    terminate(c, SLUICE_TURN_EVENT_LOST, tmp.error_code, tmp.reason, tmp.text);
}

static void on_peer(sluice_turn_client *c, uint64_t now, const sluice_stun_event *se, bool chan,
                    size_t idx)
{
    size_t n = chan ? c->n_chans : c->n_perms;
    if (idx >= n || c->state != ST_ALLOCATED)
        return;
    struct peer *p = chan ? &c->chans[idx] : &c->perms[idx];
    if (!p->inflight)
        return; /* cancelled */
    p->inflight = false;
    if (se->type == SLUICE_STUN_EVENT_SUCCESS) {
        bool first = !p->confirmed;
        p->confirmed = true;
        p->failed = false;
        p->expires_us = now + (chan ? CHAN_LIFETIME_US : PERM_LIFETIME_US);
        /* A channel is rebound at 4 minutes too, so that the permission it
         * installs (5 minutes, RFC 8656 §12) never lapses. */
        p->refresh_at_us = now + PERM_REFRESH_US;
        if (first) {
            sluice_turn_event *ev = push_event(c, chan ? SLUICE_TURN_EVENT_CHANNEL_BOUND
                                                       : SLUICE_TURN_EVENT_PERMISSION_CREATED);
            if (ev) {
                ev->peer = p->addr;
                ev->channel = p->channel;
            }
        }
        return;
    }
    if (se->type == SLUICE_STUN_EVENT_TIMEOUT && p->confirmed && now < p->expires_us) {
        p->refresh_at_us = now; /* a lost refresh: again, while it lasts */
        return;
    }
    p->confirmed = false;
    p->failed = true;
    p->refresh_at_us = SLUICE_NEVER;
    sluice_turn_event *ev =
        push_event(c, chan ? SLUICE_TURN_EVENT_CHANNEL_FAILED : SLUICE_TURN_EVENT_PERMISSION_FAILED);
    if (ev) {
        fill_error(ev, se);
        ev->peer = p->addr;
        ev->channel = p->channel;
    }
}

static void on_delete(sluice_turn_client *c, const sluice_stun_event *se)
{
    if (c->state != ST_CLOSING)
        return;
    if (se->type == SLUICE_STUN_EVENT_SUCCESS) {
        terminate(c, SLUICE_TURN_EVENT_CLOSED, 0, 0, "allocation deleted");
        return;
    }
    sluice_turn_event tmp = {0};
    fill_error(&tmp, se);
    /* 437 means it is gone already: as good as deleted. */
    terminate(c, SLUICE_TURN_EVENT_CLOSED, tmp.error_code,
              tmp.error_code == SLUICE_STUN_ERR_ALLOCATION_MISMATCH ? 0 : tmp.reason, tmp.text);
}

static void drain_stun(sluice_turn_client *c, uint64_t now)
{
    sluice_stun_event se;
    while (sluice_stun_client_poll_event(c->stun, &se)) {
        enum kind k = (enum kind)(se.user >> 32);
        size_t idx = (uint32_t)se.user;
        switch (k) {
        case K_ALLOCATE:
            on_allocate(c, now, &se);
            break;
        case K_REFRESH:
            on_refresh(c, now, &se);
            break;
        case K_PERM:
            on_peer(c, now, &se, false, idx);
            break;
        case K_CHAN:
            on_peer(c, now, &se, true, idx);
            break;
        case K_DELETE:
            on_delete(c, &se);
            break;
        }
    }
    pump(c, now);
}

/* ------------------------------------------------------------------------ */
/* Public control */

int sluice_turn_client_allocate(sluice_turn_client *c, uint64_t now_us)
{
    if (c->state != ST_IDLE)
        return SLUICE_ERR_STATE;
    int r = send_allocate(c, now_us);
    if (r < 0)
        return r;
    c->state = ST_ALLOCATING;
    return 0;
}

int sluice_turn_client_close(sluice_turn_client *c, uint64_t now_us)
{
    switch (c->state) {
    case ST_CLOSING:
    case ST_CLOSED:
        return SLUICE_ERR_STATE;
    case ST_ALLOCATED:
        break;
    default:
        /* nothing allocated (or a failed/unfinished allocate): stop now */
        c->state = ST_ALLOCATED; /* let terminate() emit CLOSED */
        terminate(c, SLUICE_TURN_EVENT_CLOSED, 0, 0, "closed before an allocation existed");
        return 0;
    }
    /* Outstanding permission/channel transactions no longer matter. */
    for (size_t i = 0; i < c->n_perms; i++)
        if (c->perms[i].inflight)
            sluice_stun_client_cancel(c->stun, c->perms[i].txid);
    for (size_t i = 0; i < c->n_chans; i++)
        if (c->chans[i].inflight)
            sluice_stun_client_cancel(c->stun, c->chans[i].txid);
    if (c->refresh_at_us == SLUICE_NEVER)
        sluice_stun_client_cancel(c->stun, c->refresh_txid);
    c->state = ST_CLOSING;
    c->close_deadline_us = now_us + c->cfg.close_timeout_us;
    /* RFC 8656 §7.2: a Refresh with LIFETIME 0 deletes the allocation. */
    if (send_refresh(c, now_us, 0, K_DELETE) < 0)
        terminate(c, SLUICE_TURN_EVENT_CLOSED, 0, SLUICE_ERR_FULL, "could not send the delete");
    return 0;
}

static bool family_ok(const sluice_turn_client *c, const sluice_addr *peer)
{
    for (size_t i = 0; i < c->n_relayed; i++)
        if (c->relayed[i].family == peer->family)
            return true;
    return false;
}

static struct peer *find_perm(sluice_turn_client *c, const sluice_addr *peer, size_t *idx)
{
    for (size_t i = 0; i < c->n_perms; i++)
        if (sluice_addr_equal_ip(&c->perms[i].addr, peer)) {
            if (idx)
                *idx = i;
            return &c->perms[i];
        }
    return NULL;
}

static struct peer *find_chan(const sluice_turn_client *c, const sluice_addr *peer)
{
    for (size_t i = 0; i < c->n_chans; i++)
        if (sluice_addr_equal(&c->chans[i].addr, peer))
            return &c->chans[i];
    return NULL;
}

static struct peer *find_chan_number(const sluice_turn_client *c, uint16_t number)
{
    size_t i = (size_t)number - SLUICE_TURN_CHANNEL_MIN;
    /* numbers are handed out in order from 0x4000 */
    if (number < SLUICE_TURN_CHANNEL_MIN || i >= c->n_chans)
        return NULL;
    return &c->chans[i];
}

static void rearm(struct peer *p, uint64_t now)
{
    if (p->failed) {
        p->failed = false;
        p->refresh_at_us = now;
    }
}

int sluice_turn_client_create_permission(sluice_turn_client *c, uint64_t now_us,
                                         const sluice_addr *peer)
{
    if (c->state != ST_ALLOCATED)
        return SLUICE_ERR_STATE;
    if (!peer || !family_ok(c, peer))
        return SLUICE_ERR_INVALID;
    struct peer *p = find_perm(c, peer, NULL);
    if (p) {
        rearm(p, now_us);
    } else {
        if (c->n_perms == c->cfg.max_permissions)
            return SLUICE_ERR_FULL;
        p = &c->perms[c->n_perms++];
        memset(p, 0, sizeof *p);
        p->addr = *peer;
        p->addr.port = 0; /* a permission is for the IP address (§9) */
        p->refresh_at_us = now_us;
    }
    pump(c, now_us);
    return 0;
}

int sluice_turn_client_bind_channel(sluice_turn_client *c, uint64_t now_us,
                                    const sluice_addr *peer)
{
    if (c->state != ST_ALLOCATED)
        return SLUICE_ERR_STATE;
    if (!peer || !family_ok(c, peer) || !peer->port)
        return SLUICE_ERR_INVALID;
    struct peer *p = find_chan(c, peer);
    if (p) {
        rearm(p, now_us);
    } else {
        if (c->n_chans == c->cfg.max_channels)
            return SLUICE_ERR_FULL;
        p = &c->chans[c->n_chans];
        memset(p, 0, sizeof *p);
        p->addr = *peer;
        p->channel = (uint16_t)(SLUICE_TURN_CHANNEL_MIN + c->n_chans);
        p->refresh_at_us = now_us;
        c->n_chans++;
    }
    pump(c, now_us);
    return p->channel;
}

/* ------------------------------------------------------------------------ */
/* Received data */

static void rq_copy_in(sluice_turn_client *c, size_t off, const void *src, size_t n)
{
    off %= c->rq_cap;
    size_t first = c->rq_cap - off < n ? c->rq_cap - off : n;
    memcpy(c->rq + off, src, first);
    memcpy(c->rq, (const uint8_t *)src + first, n - first);
}

static void rq_copy_out(const sluice_turn_client *c, size_t off, void *dst, size_t n)
{
    off %= c->rq_cap;
    size_t first = c->rq_cap - off < n ? c->rq_cap - off : n;
    memcpy(dst, c->rq + off, first);
    memcpy((uint8_t *)dst + first, c->rq, n - first);
}

static void queue_data(sluice_turn_client *c, const sluice_addr *peer, const uint8_t *data,
                       size_t len)
{
    struct recv_hdr h = {.peer = *peer, .len = (uint32_t)len};
    if (c->rq_used + sizeof h + len > c->rq_cap) {
        c->stats.rx_dropped_queue++;
        return;
    }
    rq_copy_in(c, c->rq_head + c->rq_used, &h, sizeof h);
    rq_copy_in(c, c->rq_head + c->rq_used + sizeof h, data, len);
    c->rq_used += sizeof h + len;
    c->stats.rx_data++;
}

int sluice_turn_client_recv(sluice_turn_client *c, sluice_addr *peer, uint8_t *buf, size_t cap,
                            size_t *len)
{
    if (!c->rq_used)
        return 0;
    struct recv_hdr h;
    rq_copy_out(c, c->rq_head, &h, sizeof h);
    if (h.len > cap)
        return SLUICE_ERR_NOSPACE;
    rq_copy_out(c, c->rq_head + sizeof h, buf, h.len);
    if (peer)
        *peer = h.peer;
    *len = h.len;
    c->rq_head = (c->rq_head + sizeof h + h.len) % c->rq_cap;
    c->rq_used -= sizeof h + h.len;
    return 1;
}

/* Peer data in a ChannelData message or a Data indication (RFC 8656 §10.4,
 * §12.6). Returns 1 with a view, 0 when the message is not data, or a
 * negative code. Counts drops. */
static int extract(sluice_turn_client *c, const uint8_t *data, size_t len, bool padded_stream,
                   sluice_addr *peer, const uint8_t **payload, size_t *plen)
{
    if (len && (data[0] & 0xC0) == 0x40) {
        uint16_t ch;
        int r;
        if (padded_stream) {
            /* the framer already checked the length */
            ch = rd16(data);
            *plen = rd16(data + 2);
            *payload = data + 4;
            r = ch > SLUICE_TURN_CHANNEL_MAX ? SLUICE_ERR_MALFORMED : 0;
        } else {
            r = sluice_turn_channel_data_parse(data, len, &ch, payload, plen);
        }
        struct peer *p = r == 0 ? find_chan_number(c, ch) : NULL;
        /* §12.6: data on a channel that is not bound is discarded. */
        if (!p || !p->confirmed) {
            c->stats.rx_dropped_unknown++;
            return r < 0 ? r : SLUICE_ERR_NOT_FOUND;
        }
        *peer = p->addr;
        return 1;
    }
    if (len < 20 || data[0] >= 0x40 || rd16(data) != sluice_stun_type(SLUICE_STUN_DATA,
                                                                         SLUICE_STUN_INDICATION))
        return 0;
    sluice_stun_msg m;
    int r = sluice_stun_parse(&m, data, len);
    if (r < 0)
        return r;
    /* §10.4: XOR-PEER-ADDRESS and DATA are required; else discard. */
    if (sluice_stun_get_xor_address(&m, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, peer) < 0 ||
        sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_DATA, payload, plen) < 0) {
        c->stats.rx_dropped_unknown++;
        return SLUICE_ERR_MALFORMED;
    }
    /* A Data indication from a peer without a permission cannot happen on
     * a conforming server; drop it rather than trust it. */
    if (!find_perm(c, peer, NULL) && !find_chan(c, peer)) {
        c->stats.rx_dropped_unknown++;
        return SLUICE_ERR_NOT_FOUND;
    }
    return 1;
}

int sluice_turn_client_unwrap(sluice_turn_client *c, const sluice_addr *from, const uint8_t *data,
                              size_t len, sluice_addr *peer, const uint8_t **payload,
                              size_t *payload_len)
{
    if (c->cfg.transport != SLUICE_TRANSPORT_UDP || c->state != ST_ALLOCATED ||
        (from && !sluice_addr_equal(from, &c->server)))
        return 0;
    int r = extract(c, data, len, false, peer, payload, payload_len);
    if (r == 1)
        c->stats.rx_data++;
    return r;
}

/* One complete message from the server (a datagram or a stream frame). */
static int handle_message(sluice_turn_client *c, uint64_t now, const uint8_t *data, size_t len)
{
    sluice_addr peer;
    const uint8_t *payload;
    size_t plen;
    int r = c->state == ST_ALLOCATED ? extract(c, data, len, stream(c), &peer, &payload, &plen)
                                     : 0;
    if (r == 1) {
        queue_data(c, &peer, payload, plen);
        return 1;
    }
    if (r < 0 || (len && data[0] >= 0x40))
        return 1; /* data we dropped (counted) */
    r = sluice_stun_client_handle_datagram(c->stun, now, &c->server, data, len);
    drain_stun(c, now);
    return r < 0 ? r : 1;
}

static int fatal_stream(sluice_turn_client *c, int reason, const char *text)
{
    if (c->state == ST_ALLOCATING)
        terminate(c, SLUICE_TURN_EVENT_ALLOCATE_FAILED, 0, reason, text);
    else if (c->state == ST_CLOSING)
        terminate(c, SLUICE_TURN_EVENT_CLOSED, 0, reason, text);
    else
        terminate(c, SLUICE_TURN_EVENT_LOST, 0, reason, text);
    c->rx_len = 0;
    return reason;
}

/* Append stream plaintext and hand out complete frames. */
static int stream_bytes(sluice_turn_client *c, uint64_t now, const uint8_t *data, size_t len)
{
    while (len) {
        size_t room = SLUICE_TURN_STREAM_FRAME_MAX - c->rx_len;
        size_t n = len < room ? len : room;
        memcpy(c->rx + c->rx_len, data, n);
        c->rx_len += n;
        data += n;
        len -= n;
        size_t off = 0;
        for (;;) {
            int fl = sluice_turn_frame_length(c->rx + off, c->rx_len - off);
            if (fl < 0)
                return fatal_stream(c, SLUICE_ERR_MALFORMED,
                                    "the server sent bytes that are neither STUN nor ChannelData");
            if (fl == 0 || (size_t)fl > c->rx_len - off)
                break;
            if (c->state == ST_CLOSED || c->state == ST_FAILED)
                return 1;
            unsigned gen = c->stream_gen;
            handle_message(c, now, c->rx + off, (size_t)fl);
            if (gen != c->stream_gen)
                return 1; /* redirected: the rest belongs to the old stream */
            off += (size_t)fl;
        }
        memmove(c->rx, c->rx + off, c->rx_len - off);
        c->rx_len -= off;
    }
    return 1;
}

static int tls_fail(sluice_turn_client *c)
{
    int e = sluice_tls_error(c->tls);
    char text[128];
    snprintf(text, sizeof text, "TLS: %s", sluice_tls_error_text(c->tls));
    return fatal_stream(c, e ? e : SLUICE_ERR_CRYPTO, text);
}

static int tls_bytes(sluice_turn_client *c, uint64_t now, const uint8_t *data, size_t len)
{
    while (len) {
        /* in record-sized pieces: a chunk above the session's bound would
         * be refused whole */
        size_t piece = len < TLS_PLAIN_CHUNK ? len : TLS_PLAIN_CHUNK;
        int n = sluice_tls_feed(c->tls, data, piece);
        if (n == SLUICE_ERR_FULL)
            n = 0; /* read plaintext below, then feed the rest */
        else if (n < 0)
            return tls_fail(c);
        data += n;
        len -= (size_t)n;
        bool got = false;
        for (;;) {
            int r = sluice_tls_read(c->tls, c->scratch, TLS_PLAIN_CHUNK);
            if (r == 0)
                break;
            if (r == SLUICE_ERR_STATE)
                return fatal_stream(c, SLUICE_ERR_STATE, "the server closed the TLS session");
            if (r < 0)
                return tls_fail(c);
            got = true;
            unsigned gen = c->stream_gen;
            stream_bytes(c, now, c->scratch, (size_t)r);
            if (gen != c->stream_gen)
                return 1; /* redirected: a new session replaced this one */
            if (c->state == ST_FAILED || c->state == ST_CLOSED)
                return 1;
        }
        if (n == 0 && !got)
            return tls_fail(c); /* neither consumed nor produced: stuck */
    }
    if (sluice_tls_error(c->tls))
        return tls_fail(c);
    return 1;
}

int sluice_turn_client_handle_datagram(sluice_turn_client *c, uint64_t now_us,
                                       const sluice_addr *from, const uint8_t *data, size_t len)
{
    if (c->state == ST_IDLE || c->state == ST_CLOSED || c->state == ST_FAILED)
        return 0;
    switch (c->cfg.transport) {
    case SLUICE_TRANSPORT_UDP:
        if (!from || !sluice_addr_equal(from, &c->server))
            return 0;
        if (!len)
            return 0;
        return handle_message(c, now_us, data, len);
    case SLUICE_TRANSPORT_TCP:
        return stream_bytes(c, now_us, data, len);
    default:
        return tls_bytes(c, now_us, data, len);
    }
}

void sluice_turn_client_handle_stream_closed(sluice_turn_client *c, uint64_t now_us)
{
    (void)now_us;
    if (!stream(c) || c->state == ST_IDLE)
        return;
    fatal_stream(c, SLUICE_ERR_STATE, "the connection to the TURN server closed");
}

void sluice_turn_client_handle_timeout(sluice_turn_client *c, uint64_t now_us)
{
    sluice_stun_client_handle_timeout(c->stun, now_us);
    drain_stun(c, now_us);
    if (c->state == ST_CLOSING && now_us >= c->close_deadline_us)
        terminate(c, SLUICE_TURN_EVENT_CLOSED, 0, SLUICE_ERR_TIMEOUT,
                  "the server did not confirm the delete in time");
}

uint64_t sluice_turn_client_next_timeout(const sluice_turn_client *c)
{
    uint64_t t = SLUICE_NEVER;
    if (c->state == ST_CLOSED || c->state == ST_FAILED)
        return t;
    uint64_t s = sluice_stun_client_next_timeout(c->stun);
    if (s < t)
        t = s;
    if (c->state == ST_CLOSING && c->close_deadline_us < t)
        t = c->close_deadline_us;
    if (c->state != ST_ALLOCATED)
        return t;
    if (c->refresh_at_us < t)
        t = c->refresh_at_us;
    if (c->expires_us < t)
        t = c->expires_us;
    for (int pass = 0; pass < 2; pass++) {
        const struct peer *tab = pass ? c->chans : c->perms;
        size_t n = pass ? c->n_chans : c->n_perms;
        for (size_t i = 0; i < n; i++) {
            if (tab[i].refresh_at_us < t)
                t = tab[i].refresh_at_us;
            if (tab[i].confirmed && tab[i].expires_us < t)
                t = tab[i].expires_us;
        }
    }
    return t;
}

int sluice_turn_client_poll_transmit(sluice_turn_client *c, uint64_t now_us, uint8_t *buf,
                                     size_t cap, sluice_transmit *meta)
{
    meta->destination = c->server;
    meta->transport = c->cfg.transport;
    memset(&meta->source, 0, sizeof meta->source);
    if (c->cfg.transport != SLUICE_TRANSPORT_TLS) {
        if (c->state == ST_CLOSED || c->state == ST_FAILED)
            return 0;
        return sluice_stun_client_poll_transmit(c->stun, now_us, buf, cap, meta);
    }
    /* TLS: move due STUN messages into the session, then hand out records. */
    if (c->state != ST_CLOSED && c->state != ST_FAILED) {
        uint8_t msg[2048];
        sluice_transmit m;
        int n;
        /* Stop while output waits: a polled message must always fit in the
         * session (it refuses writes only above its 256 KiB bound). */
        while (sluice_tls_pending_output(c->tls) < TLS_OUTPUT_HIGH &&
               (n = sluice_stun_client_poll_transmit(c->stun, now_us, msg, sizeof msg, &m)) > 0) {
            if (sluice_tls_write(c->tls, msg, (size_t)n) < 0) {
                tls_fail(c);
                break;
            }
        }
    }
    if (!sluice_tls_pending_output(c->tls))
        return 0;
    if (cap < 1)
        return SLUICE_ERR_NOSPACE;
    meta->transport = SLUICE_TRANSPORT_TLS;
    return sluice_tls_take_output(c->tls, buf, cap);
}

/* ------------------------------------------------------------------------ */
/* Sending peer data */

static int wrap(sluice_turn_client *c, const sluice_addr *peer, const uint8_t *data, size_t len,
                uint8_t *out, size_t cap)
{
    struct peer *ch = find_chan(c, peer);
    if (ch && ch->confirmed) {
        /* RFC 8656 §12.5: ChannelData; padded to 4 over TCP and TLS. */
        size_t total = 4 + len;
        if (stream(c))
            total = (total + 3) & ~(size_t)3;
        if (total > cap)
            return SLUICE_ERR_NOSPACE;
        sluice_turn_channel_header(out, ch->channel, (uint16_t)len);
        memcpy(out + 4, data, len);
        memset(out + 4 + len, 0, total - 4 - len);
        return (int)total;
    }
    if (!ch && !find_perm(c, peer, NULL))
        return SLUICE_ERR_NOT_FOUND;
    /* RFC 8656 §10.1: a Send indication with XOR-PEER-ADDRESS and DATA. */
    uint8_t txid[SLUICE_STUN_TXID_LEN];
    int r = sluice_rng_fill(&c->cfg.rng, txid, sizeof txid);
    if (r < 0)
        return r;
    sluice_stun_writer w;
    sluice_stun_writer_init(&w, out, cap, sluice_stun_type(SLUICE_STUN_SEND, SLUICE_STUN_INDICATION),
                            txid);
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, peer);
    sluice_stun_put(&w, SLUICE_STUN_ATTR_DATA, data, len);
    return sluice_stun_writer_result(&w);
}

int sluice_turn_client_send(sluice_turn_client *c, uint64_t now_us, const sluice_addr *peer,
                            const uint8_t *data, size_t len, uint8_t *out, size_t cap,
                            sluice_transmit *meta)
{
    (void)now_us;
    if (c->state != ST_ALLOCATED)
        return SLUICE_ERR_STATE;
    if (len > 65535 || !peer)
        return SLUICE_ERR_INVALID;
    meta->destination = c->server;
    meta->transport = c->cfg.transport;
    memset(&meta->source, 0, sizeof meta->source);
    if (c->cfg.transport != SLUICE_TRANSPORT_TLS) {
        int n = wrap(c, peer, data, len, out, cap);
        if (n > 0)
            c->stats.tx_data++;
        return n;
    }
    int n = wrap(c, peer, data, len, c->scratch, c->scratch_cap);
    if (n < 0)
        return n;
    int r = sluice_tls_write(c->tls, c->scratch, (size_t)n);
    if (r < 0)
        return r;
    c->stats.tx_data++;
    return sluice_tls_take_output(c->tls, out, cap);
}

int sluice_turn_client_route(const sluice_turn_client *c, const sluice_addr *peer,
                             sluice_turn_route *route)
{
    if (c->state != ST_ALLOCATED)
        return SLUICE_ERR_STATE;
    memset(route, 0, sizeof *route);
    route->server = c->server;
    route->transport = c->cfg.transport;
    const struct peer *ch = find_chan(c, peer);
    if (ch && ch->confirmed)
        route->channel = ch->channel;
    route->pad = c->cfg.transport == SLUICE_TRANSPORT_TCP;
    if (c->cfg.transport == SLUICE_TRANSPORT_TLS || !route->channel)
        return SLUICE_ERR_UNSUPPORTED;
    return 0;
}

void sluice_turn_client_get_stats(const sluice_turn_client *c, sluice_turn_client_stats *st)
{
    *st = c->stats;
}

void sluice_turn_client_server(const sluice_turn_client *c, sluice_addr *server)
{
    *server = c->server;
}

size_t sluice_turn_client_relayed(const sluice_turn_client *c, sluice_addr out[2])
{
    if (c->state != ST_ALLOCATED)
        return 0;
    for (size_t i = 0; i < c->n_relayed; i++)
        out[i] = c->relayed[i];
    return c->n_relayed;
}
