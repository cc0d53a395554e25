/* SPDX-License-Identifier: MIT */
/* STUN client transactions, sans-IO (RFC 8489 §6.2, §9): retransmission
 * with doubling RTO, Rc/Rm and Ti, RTT per server (RFC 6298 estimator),
 * long-term credential challenges answered once, FIFO events. */
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "sluice/stun_txn.h"

#define MSG_MAX 2048           /* request or response kept per transaction */
#define PASSWORD_MAX 256       /* bytes of a prepared password */
#define PWALGS_RAW_MAX 128     /* PASSWORD-ALGORITHMS value copied back */
#define MIN_RTO_US 100000ull   /* floor on a measured RTO */
#define RTO_CACHE_US 600000000ull /* §6.2.1: forget RTT after 10 minutes idle */
#define MAX_TRANSACTIONS 4096
#define MAX_SERVERS 1024

enum slot_state { SLOT_FREE = 0, SLOT_ACTIVE, SLOT_DONE, SLOT_HELD };

struct server {
    bool used;
    sluice_addr addr;
    uint64_t last_used_us;
    bool have_rtt;
    uint64_t srtt_us, rttvar_us, rto_us;
    /* long-term credential state learned from challenges (§9.2) */
    bool have_nonce;
    uint16_t realm_len, nonce_len;
    char realm[SLUICE_STUN_MAX_TEXT];
    uint8_t nonce[SLUICE_STUN_MAX_TEXT];
    uint32_t features;
    uint16_t pwalgs_len; /* raw PASSWORD-ALGORITHMS value, 0 when absent */
    uint8_t pwalgs[PWALGS_RAW_MAX];
};

struct slot {
    enum slot_state state;
    bool indication;
    bool pending_tx;
    bool authenticated; /* the message on the wire carries integrity */
    bool sha256;        /* ... and it is MESSAGE-INTEGRITY-SHA256 */
    bool challenged;    /* a 401 was answered */
    bool stale_retried; /* a 438 was answered */
    uint8_t txid[SLUICE_STUN_TXID_LEN];
    sluice_addr server;
    sluice_transport transport;
    uint64_t user;
    sluice_stun_auth auth;
    uint16_t username_len, password_len;
    char username[SLUICE_STUN_MAX_USERNAME];
    char password[PASSWORD_MAX];
    sluice_stun_key key;
    bool key_valid;
    unsigned sent;
    uint64_t rto_us, base_rto_us;
    uint64_t first_sent_us, last_sent_us, next_us;
    uint16_t msg_len, resp_len;
    sluice_stun_msg body_msg; /* the caller's request, validated once in send */
    uint8_t body[MSG_MAX];
    uint8_t msg[MSG_MAX];
    uint8_t resp[MSG_MAX];
    /* result */
    sluice_stun_event_type ev_type;
    int ev_code, ev_reason;
    uint64_t ev_rtt_us;
};

struct sluice_stun_client {
    sluice_stun_client_config cfg;
    char software[SLUICE_STUN_MAX_TEXT + 1];
    size_t software_len;
    struct slot *slots;
    size_t n_slots;
    struct server *servers;
    size_t n_servers;
    /* FIFO of finished slots (indices); capacity n_slots, never overflows
     * because each slot is queued at most once until released. */
    uint32_t *evq;
    size_t evq_head, evq_len;
    long held; /* slot whose response the last event exposed, or -1 */
};

void sluice_stun_client_config_init(sluice_stun_client_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->initial_rto_us = 500000;           /* §6.2.1 */
    cfg->rc = 7;                            /* §6.2.1 */
    cfg->rm = 16;                           /* §6.2.1 */
    cfg->reliable_timeout_us = 39500000;    /* §6.2.2 Ti */
    cfg->max_transactions = 32;
    cfg->max_servers = 16;
    cfg->fingerprint = true;
}

sluice_stun_client *sluice_stun_client_new(const sluice_stun_client_config *cfg)
{
    sluice_stun_client_config def;
    sluice_stun_client *c;

    if (!cfg) {
        sluice_stun_client_config_init(&def);
        cfg = &def;
    }
    if (cfg->rc < 1 || cfg->rc > 32 || cfg->rm > 1024 || cfg->initial_rto_us == 0 ||
        cfg->max_transactions < 1 || cfg->max_transactions > MAX_TRANSACTIONS ||
        cfg->max_servers < 1 || cfg->max_servers > MAX_SERVERS || cfg->reliable_timeout_us == 0 ||
        (cfg->software && strlen(cfg->software) > SLUICE_STUN_MAX_TEXT_ENCODE) ||
        (!cfg->alloc.calloc != !cfg->alloc.free))
        return NULL;
    c = sluice_xcalloc(&cfg->alloc, 1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    if (cfg->software) {
        c->software_len = strlen(cfg->software);
        memcpy(c->software, cfg->software, c->software_len);
    }
    c->cfg.software = NULL; /* never keep the caller's pointer */
    c->n_slots = cfg->max_transactions;
    c->n_servers = cfg->max_servers;
    c->slots = sluice_xcalloc(&c->cfg.alloc, c->n_slots, sizeof *c->slots);
    c->servers = sluice_xcalloc(&c->cfg.alloc, c->n_servers, sizeof *c->servers);
    c->evq = sluice_xcalloc(&c->cfg.alloc, c->n_slots, sizeof *c->evq);
    c->held = -1;
    if (!c->slots || !c->servers || !c->evq) {
        sluice_stun_client_free(c);
        return NULL;
    }
    return c;
}

void sluice_stun_client_free(sluice_stun_client *c)
{
    if (!c)
        return;
    if (c->slots) {
        for (size_t i = 0; i < c->n_slots; i++) {
            sluice_stun_key_clear(&c->slots[i].key);
            memset(c->slots[i].password, 0, sizeof c->slots[i].password);
        }
    }
    sluice_xfree(&c->cfg.alloc, c->slots);
    sluice_xfree(&c->cfg.alloc, c->servers);
    sluice_xfree(&c->cfg.alloc, c->evq);
    sluice_xfree(&c->cfg.alloc, c);
}

static void release_held(sluice_stun_client *c)
{
    if (c->held >= 0) {
        struct slot *s = &c->slots[c->held];
        sluice_stun_key_clear(&s->key);
        memset(s->password, 0, sizeof s->password);
        s->state = SLOT_FREE;
        c->held = -1;
    }
}

static struct server *find_server(sluice_stun_client *c, const sluice_addr *a, uint64_t now,
                                  bool create)
{
    struct server *oldest = NULL;

    for (size_t i = 0; i < c->n_servers; i++) {
        struct server *s = &c->servers[i];
        if (s->used && sluice_addr_equal(&s->addr, a)) {
            if (s->have_rtt && now - s->last_used_us > RTO_CACHE_US)
                s->have_rtt = false; /* §6.2.1: stale RTT estimate */
            return s;
        }
        if (!oldest || !s->used || (oldest->used && s->last_used_us < oldest->last_used_us))
            oldest = s;
    }
    if (!create)
        return NULL;
    /* Bounded cache: evict the least recently used entry. */
    memset(oldest, 0, sizeof *oldest);
    oldest->used = true;
    oldest->addr = *a;
    oldest->last_used_us = now;
    return oldest;
}

uint64_t sluice_stun_client_rto(const sluice_stun_client *c, const sluice_addr *server,
                                uint64_t now_us)
{
    for (size_t i = 0; i < c->n_servers; i++) {
        const struct server *s = &c->servers[i];
        if (s->used && sluice_addr_equal(&s->addr, server) && s->have_rtt &&
            now_us - s->last_used_us <= RTO_CACHE_US)
            return s->rto_us;
    }
    return c->cfg.initial_rto_us;
}

/* RFC 6298 §2 estimator, fed only with samples from transactions that were
 * not retransmitted (Karn's rule, §3). */
static void rtt_sample(sluice_stun_client *c, struct server *s, uint64_t r)
{
    if (!s->have_rtt) {
        s->srtt_us = r;
        s->rttvar_us = r / 2;
        s->have_rtt = true;
    } else {
        uint64_t diff = s->srtt_us > r ? s->srtt_us - r : r - s->srtt_us;
        s->rttvar_us = (3 * s->rttvar_us + diff) / 4;
        s->srtt_us = (7 * s->srtt_us + r) / 8;
    }
    s->rto_us = s->srtt_us + 4 * s->rttvar_us;
    if (s->rto_us < MIN_RTO_US)
        s->rto_us = MIN_RTO_US;
    if (c->cfg.max_rto_us && s->rto_us > c->cfg.max_rto_us)
        s->rto_us = c->cfg.max_rto_us;
}

/* Build the wire message from the caller's body plus credentials. */
/* The body's XOR-*-ADDRESS values were encoded with the body's transaction
 * ID; IPv6 ones XOR the address with it (RFC 8489 §14.2), so re-encode
 * them for the ID on the wire. Attributes sit at the same offsets in the
 * copy as in the body. */
static void rexor_addresses(struct slot *t)
{
    sluice_stun_attr_iter it;
    sluice_stun_attr a;
    sluice_stun_attr_iter_init(&it, &t->body_msg);
    while (sluice_stun_attr_next(&it, &a)) {
        if ((a.type != SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS &&
             a.type != SLUICE_STUN_ATTR_XOR_PEER_ADDRESS &&
             a.type != SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS) ||
            a.len != 20 || a.value[1] != SLUICE_STUN_FAMILY_IPV6)
            continue;
        size_t off = (size_t)(a.value - t->body_msg.data) + 8; /* after cookie part */
        for (size_t i = 0; i < SLUICE_STUN_TXID_LEN; i++)
            t->msg[off + i] ^= (uint8_t)(t->body[8 + i] ^ t->txid[i]);
    }
}

static int build_message(sluice_stun_client *c, struct slot *t, const struct server *srv)
{
    sluice_stun_writer w;
    bool sha256 = false;
    int rc;

    rc = sluice_stun_writer_init_copy(&w, t->msg, sizeof t->msg, &t->body_msg);
    if (rc < 0)
        return rc;
    memcpy(t->msg + 8, t->txid, SLUICE_STUN_TXID_LEN);
    rexor_addresses(t);
    t->authenticated = false;
    t->sha256 = false;

    if (t->auth == SLUICE_STUN_AUTH_SHORT_TERM) {
        /* RFC 8489 §9.1.2 */
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, t->username, t->username_len);
        if (c->software_len)
            sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, c->software, c->software_len);
        sluice_stun_put_integrity(&w, &t->key);
        t->authenticated = true;
    } else if (t->auth == SLUICE_STUN_AUTH_LONG_TERM && srv && srv->have_nonce &&
               !t->indication) {
        /* RFC 8489 §9.2.3, §9.2.5: USERNAME (or USERHASH when the server
         * asks for anonymity), REALM, NONCE, the algorithms, integrity. */
        uint16_t alg = SLUICE_STUN_PWALG_MD5;
        if (srv->pwalgs_len && (srv->features & SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS)) {
            /* first algorithm of the server's list that we support */
            for (size_t off = 0; off + 4 <= srv->pwalgs_len;) {
                uint16_t a = rd16(srv->pwalgs + off);
                if (a == SLUICE_STUN_PWALG_MD5 || a == SLUICE_STUN_PWALG_SHA256) {
                    alg = a;
                    break;
                }
                off += 4 + ((rd16(srv->pwalgs + off + 2) + 3u) & ~3u);
            }
            sha256 = alg == SLUICE_STUN_PWALG_SHA256;
        }
        if (!t->key_valid) {
            rc = sluice_stun_key_long_term(&t->key, alg, t->username, t->username_len,
                                           srv->realm, srv->realm_len, t->password,
                                           t->password_len);
            if (rc < 0)
                return rc;
            t->key_valid = true;
        }
        if (srv->features & SLUICE_STUN_FEATURE_USERNAME_ANONYMITY) {
            uint8_t hash[32];
            rc = sluice_stun_userhash(hash, t->username, t->username_len, srv->realm,
                                      srv->realm_len);
            if (rc < 0)
                return rc;
            sluice_stun_put(&w, SLUICE_STUN_ATTR_USERHASH, hash, sizeof hash);
        } else {
            sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, t->username, t->username_len);
        }
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, srv->realm, srv->realm_len);
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, (const char *)srv->nonce,
                               srv->nonce_len);
        if (srv->pwalgs_len && (srv->features & SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS)) {
            sluice_stun_put(&w, SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS, srv->pwalgs, srv->pwalgs_len);
            sluice_stun_put_password_algorithm(&w, alg);
        }
        if (c->software_len)
            sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, c->software, c->software_len);
        if (sha256)
            sluice_stun_put_integrity_sha256(&w, &t->key);
        else
            sluice_stun_put_integrity(&w, &t->key);
        t->authenticated = true;
        t->sha256 = sha256;
    } else if (c->software_len) {
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, c->software, c->software_len);
    }
    if (c->cfg.fingerprint)
        sluice_stun_put_fingerprint(&w);
    rc = sluice_stun_writer_result(&w);
    if (rc < 0)
        return rc;
    t->msg_len = (uint16_t)rc;
    return 0;
}

/* (Re)start the retransmission schedule with a fresh transaction ID. */
static int start(sluice_stun_client *c, struct slot *t, uint64_t now)
{
    struct server *srv = find_server(c, &t->server, now, true);
    int rc = sluice_rng_fill(&c->cfg.rng, t->txid, sizeof t->txid);

    if (rc < 0)
        return rc;
    srv->last_used_us = now;
    rc = build_message(c, t, srv);
    if (rc < 0)
        return rc;
    t->sent = 0;
    t->base_rto_us = srv->have_rtt ? srv->rto_us : c->cfg.initial_rto_us;
    t->rto_us = t->base_rto_us;
    t->pending_tx = true;
    t->next_us = SLUICE_NEVER;
    return 0;
}

int sluice_stun_client_send(sluice_stun_client *c, uint64_t now_us, const uint8_t *body, size_t len,
                            const sluice_stun_request *req, uint8_t txid_out[SLUICE_STUN_TXID_LEN])
{
    sluice_stun_msg m;
    struct slot *t = NULL;
    int rc;

    if (!c || !body || !req)
        return SLUICE_ERR_INVALID;
    release_held(c);
    if (len > MSG_MAX)
        return SLUICE_ERR_NOSPACE;
    rc = sluice_stun_parse(&m, body, len);
    if (rc < 0)
        return SLUICE_ERR_INVALID;
    if (m.cls != SLUICE_STUN_REQUEST && m.cls != SLUICE_STUN_INDICATION)
        return SLUICE_ERR_INVALID;
    if (m.integrity_off || m.integrity256_off || m.fingerprint_off)
        return SLUICE_ERR_INVALID; /* the client adds these */
    if (req->server.family != SLUICE_AF_INET && req->server.family != SLUICE_AF_INET6)
        return SLUICE_ERR_INVALID;
    if (req->auth != SLUICE_STUN_AUTH_NONE) {
        if ((!req->username && req->username_len) || req->username_len >= SLUICE_STUN_MAX_USERNAME ||
            (!req->password && req->password_len) || req->password_len > PASSWORD_MAX)
            return SLUICE_ERR_INVALID;
        if (req->auth != SLUICE_STUN_AUTH_SHORT_TERM && req->auth != SLUICE_STUN_AUTH_LONG_TERM)
            return SLUICE_ERR_INVALID;
    }
    for (size_t i = 0; i < c->n_slots; i++) {
        if (c->slots[i].state == SLOT_FREE) {
            t = &c->slots[i];
            break;
        }
    }
    if (!t)
        return SLUICE_ERR_FULL;

    /* Keep the bulky buffers untouched; reset the fields. */
    t->indication = m.cls == SLUICE_STUN_INDICATION;
    t->pending_tx = false;
    t->authenticated = t->challenged = t->stale_retried = false;
    t->server = req->server;
    t->transport = req->transport;
    t->user = req->user;
    t->auth = req->auth;
    t->username_len = (uint16_t)req->username_len;
    t->password_len = (uint16_t)req->password_len;
    if (req->auth != SLUICE_STUN_AUTH_NONE) {
        if (req->username_len)
            memcpy(t->username, req->username, req->username_len);
        if (req->password_len)
            memcpy(t->password, req->password, req->password_len);
    }
    t->key_valid = false;
    t->resp_len = 0;
    t->ev_code = t->ev_reason = 0;
    t->ev_rtt_us = 0;
    memcpy(t->body, body, len);
    t->body_msg = m; /* offsets are relative: re-point the view at our copy */
    t->body_msg.data = t->body;
    if (req->auth == SLUICE_STUN_AUTH_SHORT_TERM) {
        rc = sluice_stun_key_short_term(&t->key, t->password, t->password_len);
        if (rc < 0)
            return rc;
        t->key_valid = true;
    }
    if (req->auth == SLUICE_STUN_AUTH_LONG_TERM && req->no_cached_nonce) {
        struct server *srv = find_server(c, &req->server, now_us, false);
        if (srv)
            srv->have_nonce = false;
    }
    rc = start(c, t, now_us);
    if (rc < 0) {
        sluice_stun_key_clear(&t->key);
        return rc;
    }
    t->state = SLOT_ACTIVE;
    if (txid_out)
        memcpy(txid_out, t->txid, SLUICE_STUN_TXID_LEN);
    return 0;
}

int sluice_stun_client_cancel(sluice_stun_client *c, const uint8_t txid[SLUICE_STUN_TXID_LEN])
{
    if (!c || !txid)
        return SLUICE_ERR_INVALID;
    release_held(c);
    for (size_t i = 0; i < c->n_slots; i++) {
        struct slot *t = &c->slots[i];
        if (t->state == SLOT_ACTIVE && memcmp(t->txid, txid, SLUICE_STUN_TXID_LEN) == 0) {
            sluice_stun_key_clear(&t->key);
            t->state = SLOT_FREE;
            return 0;
        }
    }
    return SLUICE_ERR_NOT_FOUND;
}

static void finish(sluice_stun_client *c, struct slot *t, sluice_stun_event_type type, int code,
                   int reason)
{
    size_t idx = (size_t)(t - c->slots);
    t->state = SLOT_DONE;
    t->pending_tx = false;
    t->ev_type = type;
    t->ev_code = code;
    t->ev_reason = reason;
    c->evq[(c->evq_head + c->evq_len) % c->n_slots] = (uint32_t)idx;
    c->evq_len++;
}

static void keep_response(struct slot *t, const uint8_t *data, size_t len)
{
    size_t n = len < sizeof t->resp ? len : sizeof t->resp;
    memcpy(t->resp, data, n);
    t->resp_len = (uint16_t)n;
}

/* Learn realm/nonce/algorithms from a 401 or 438 (RFC 8489 §9.2.5).
 * Returns true when they are usable for a retry. */
static bool learn_challenge(struct server *srv, const sluice_stun_msg *m)
{
    const uint8_t *realm, *nonce;
    size_t rlen, nlen;
    sluice_stun_attr pa;

    if (sluice_stun_get_bytes(m, SLUICE_STUN_ATTR_REALM, &realm, &rlen) < 0 ||
        sluice_stun_get_bytes(m, SLUICE_STUN_ATTR_NONCE, &nonce, &nlen) < 0 || nlen == 0)
        return false;
    memcpy(srv->realm, realm, rlen);
    srv->realm_len = (uint16_t)rlen;
    memcpy(srv->nonce, nonce, nlen);
    srv->nonce_len = (uint16_t)nlen;
    srv->features = 0;
    sluice_stun_nonce_features(nonce, nlen, &srv->features);
    srv->pwalgs_len = 0;
    if (sluice_stun_find(m, SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS, &pa) == 0 && pa.len >= 4 &&
        pa.len <= PWALGS_RAW_MAX) {
        uint16_t algs[1];
        if (sluice_stun_get_password_algorithms(m, algs, 1) > 0) {
            memcpy(srv->pwalgs, pa.value, pa.len);
            srv->pwalgs_len = pa.len;
        }
    }
    srv->have_nonce = true;
    return true;
}

int sluice_stun_client_handle_datagram(sluice_stun_client *c, uint64_t now_us,
                                       const sluice_addr *from, const uint8_t *data, size_t len)
{
    sluice_stun_msg m;
    struct slot *t = NULL;
    struct server *srv;
    int rc, code = 0;

    if (!c || (!data && len))
        return SLUICE_ERR_INVALID;
    release_held(c);
    if (len < SLUICE_STUN_HEADER_LEN || !sluice_stun_is_stun(data, len))
        return 0;
    rc = sluice_stun_parse(&m, data, len);
    if (rc < 0)
        return rc;
    if (m.cls != SLUICE_STUN_SUCCESS && m.cls != SLUICE_STUN_ERROR)
        return 0;
    for (size_t i = 0; i < c->n_slots; i++) {
        struct slot *s = &c->slots[i];
        if (s->state == SLOT_ACTIVE && !s->indication &&
            memcmp(s->txid, sluice_stun_txid(&m), SLUICE_STUN_TXID_LEN) == 0) {
            t = s;
            break;
        }
    }
    if (!t)
        return 0;
    (void)from;
    if (m.method != sluice_stun_type_method(rd16(t->msg)))
        return 1; /* same ID, wrong method: not a valid answer, drop */

    /* RFC 8489 §9.1.4, §9.2.5: a response carrying integrity must verify
     * with the request's key; a success response to an authenticated
     * request must carry it. Failures are dropped as if never received. */
    if (t->authenticated && t->key_valid) {
        if (m.integrity_off || m.integrity256_off) {
            /* No downgrade: a request signed with SHA-256 needs a response
             * whose MESSAGE-INTEGRITY-SHA256 verifies (§9.2.5). */
            int ok = t->sha256 ? sluice_stun_check_integrity_sha256(&m, &t->key)
                               : sluice_stun_check_integrity(&m, &t->key);
            if (ok != 0)
                return 1;
        } else if (m.cls == SLUICE_STUN_SUCCESS) {
            return 1;
        }
    }

    srv = find_server(c, &t->server, now_us, true);
    srv->last_used_us = now_us;
    t->ev_rtt_us = now_us >= t->last_sent_us ? now_us - t->last_sent_us : 0;
    if (t->sent == 1 && now_us >= t->first_sent_us)
        rtt_sample(c, srv, now_us - t->first_sent_us);
    if (len > sizeof t->resp) {
        t->resp_len = 0;
        finish(c, t, SLUICE_STUN_EVENT_FAILED, 0, SLUICE_ERR_NOSPACE);
        return 1;
    }
    keep_response(t, data, len);

    /* §6.3.3, §6.3.4: unknown comprehension-required attributes fail it. */
    if (m.n_unknown) {
        finish(c, t, SLUICE_STUN_EVENT_FAILED, 0, SLUICE_ERR_UNKNOWN_ATTR);
        return 1;
    }
    if (m.cls == SLUICE_STUN_SUCCESS) {
        finish(c, t, SLUICE_STUN_EVENT_SUCCESS, 0, 0);
        return 1;
    }
    if (sluice_stun_get_error_code(&m, &code, NULL, NULL) < 0) {
        finish(c, t, SLUICE_STUN_EVENT_FAILED, 0, SLUICE_ERR_MALFORMED);
        return 1;
    }
    if (t->auth == SLUICE_STUN_AUTH_LONG_TERM &&
        (code == SLUICE_STUN_ERR_UNAUTHORIZED || code == SLUICE_STUN_ERR_STALE_NONCE)) {
        /* §9.2.5: answer a 401 once (a second one means bad credentials),
         * and a 438 once with the new nonce. */
        /* A 401 to a request sent with a cached nonce counts as the first
         * challenge. */
        bool retry = code == SLUICE_STUN_ERR_UNAUTHORIZED ? !t->challenged : !t->stale_retried;
        if (retry && learn_challenge(srv, &m)) {
            if (code == SLUICE_STUN_ERR_UNAUTHORIZED)
                t->challenged = true;
            else
                t->stale_retried = true;
            t->key_valid = false; /* realm or algorithm may have changed */
            rc = start(c, t, now_us);
            if (rc < 0)
                finish(c, t, SLUICE_STUN_EVENT_FAILED, code, rc);
            return 1;
        }
        finish(c, t, SLUICE_STUN_EVENT_FAILED, code, SLUICE_ERR_AUTH);
        return 1;
    }
    finish(c, t, SLUICE_STUN_EVENT_ERROR, code, 0);
    return 1;
}

void sluice_stun_client_handle_timeout(sluice_stun_client *c, uint64_t now_us)
{
    if (!c)
        return;
    release_held(c);
    for (size_t i = 0; i < c->n_slots; i++) {
        struct slot *t = &c->slots[i];
        if (t->state != SLOT_ACTIVE || t->pending_tx || t->next_us > now_us)
            continue;
        if (t->transport == SLUICE_TRANSPORT_UDP && t->sent < c->cfg.rc) {
            t->pending_tx = true; /* §6.2.1 retransmission */
            t->next_us = SLUICE_NEVER;
        } else {
            struct server *srv = find_server(c, &t->server, now_us, false);
            if (srv)
                srv->have_rtt = false; /* back to the initial RTO */
            finish(c, t, SLUICE_STUN_EVENT_TIMEOUT, 0, SLUICE_ERR_TIMEOUT);
        }
    }
}

uint64_t sluice_stun_client_next_timeout(const sluice_stun_client *c)
{
    uint64_t next = SLUICE_NEVER;
    if (!c)
        return next;
    for (size_t i = 0; i < c->n_slots; i++) {
        const struct slot *t = &c->slots[i];
        if (t->state == SLOT_ACTIVE && !t->pending_tx && t->next_us < next)
            next = t->next_us;
    }
    return next;
}

int sluice_stun_client_poll_transmit(sluice_stun_client *c, uint64_t now_us, uint8_t *buf,
                                     size_t cap, sluice_transmit *meta)
{
    if (!c || !buf || !meta)
        return SLUICE_ERR_INVALID;
    release_held(c);
    for (size_t i = 0; i < c->n_slots; i++) {
        struct slot *t = &c->slots[i];
        if (t->state != SLOT_ACTIVE || !t->pending_tx)
            continue;
        if (cap < t->msg_len)
            return SLUICE_ERR_NOSPACE;
        memcpy(buf, t->msg, t->msg_len);
        meta->destination = t->server;
        meta->transport = t->transport;
        memset(&meta->source, 0, sizeof meta->source);
        t->pending_tx = false;
        if (t->indication) {
            /* §6.2: indications are sent once, no response, no event. */
            sluice_stun_key_clear(&t->key);
            t->state = SLOT_FREE;
            return t->msg_len;
        }
        if (t->sent == 0)
            t->first_sent_us = now_us;
        t->last_sent_us = now_us;
        t->sent++;
        if (t->transport != SLUICE_TRANSPORT_UDP) {
            /* §6.2.2: one send; fail after Ti without an answer. */
            t->next_us = now_us + c->cfg.reliable_timeout_us;
        } else if (t->sent < c->cfg.rc) {
            /* §6.2.1: wait RTO, then 2*RTO, ... before retransmitting. */
            t->next_us = now_us + t->rto_us;
            t->rto_us *= 2;
            if (c->cfg.max_rto_us && t->rto_us > c->cfg.max_rto_us)
                t->rto_us = c->cfg.max_rto_us;
        } else {
            /* §6.2.1: after the last request wait Rm * RTO. */
            t->next_us = now_us + (uint64_t)c->cfg.rm * t->base_rto_us;
        }
        return t->msg_len;
    }
    return 0;
}

bool sluice_stun_client_poll_event(sluice_stun_client *c, sluice_stun_event *ev)
{
    struct slot *t;
    uint32_t idx;

    if (!c || !ev)
        return false;
    release_held(c);
    if (c->evq_len == 0)
        return false;
    idx = c->evq[c->evq_head];
    c->evq_head = (c->evq_head + 1) % c->n_slots;
    c->evq_len--;
    t = &c->slots[idx];
    memset(ev, 0, sizeof *ev);
    ev->type = t->ev_type;
    ev->user = t->user;
    memcpy(ev->txid, t->txid, SLUICE_STUN_TXID_LEN);
    ev->server = t->server;
    ev->error_code = t->ev_code;
    ev->reason = t->ev_reason;
    ev->rtt_us = t->ev_rtt_us;
    ev->response = t->resp_len ? t->resp : NULL;
    ev->response_len = t->resp_len;
    t->state = SLOT_HELD;
    c->held = (long)idx;
    return true;
}
