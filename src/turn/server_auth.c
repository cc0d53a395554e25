/* SPDX-License-Identifier: MIT */
/* TURN server credentials: long-term users and TURN REST shared secrets
 * (RFC 8489 §9.2), stateless HMAC nonces bound to the client address, and
 * a bounded per-source rate limit on 401/438 challenges. */
#include <stdio.h>
#include <string.h>

#include "turn/server_internal.h"

#define NONCE_MAC_LEN 14 /* truncated HMAC-SHA256: 112 bits */
#define NONCE_RAW_LEN (4 + NONCE_MAC_LEN)
#define NONCE_B64_LEN 24 /* 18 bytes */
#define NONCE_LEN (SLUICE_STUN_NONCE_COOKIE_LEN + NONCE_B64_LEN)

static const char b64std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Base64 (RFC 4648 §4, padded) or base64url (§5, unpadded); out gets a
 * terminating NUL. */
void srv_base64(const uint8_t *in, size_t n, char *out, bool url)
{
    const char *t = url ? b64url : b64std;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = t[v >> 18];
        *out++ = t[(v >> 12) & 63];
        *out++ = t[(v >> 6) & 63];
        *out++ = t[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = t[v >> 18];
        *out++ = t[(v >> 12) & 63];
        if (!url) {
            *out++ = '=';
            *out++ = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = t[v >> 18];
        *out++ = t[(v >> 12) & 63];
        *out++ = t[(v >> 6) & 63];
        if (!url)
            *out++ = '=';
    }
    *out = 0;
}

static void id_of(const char *name, size_t len, uint8_t out[16])
{
    uint8_t h[32];
    const uint8_t *parts[1] = {(const uint8_t *)name};
    size_t lens[1] = {len};
    sluice_sha256(parts, lens, 1, h);
    memcpy(out, h, 16);
}

int srv_auth_init(sluice_turn_server *s, const sluice_turn_server_config *cfg)
{
    uint8_t zero[32] = {0};
    uint8_t nk[32];
    int rc;

    s->features = 0;
    if (cfg->n_password_algorithms)
        s->features |= SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS;
    if (cfg->userhash)
        s->features |= SLUICE_STUN_FEATURE_USERNAME_ANONYMITY;

    memcpy(nk, cfg->nonce_key, 32);
    if (memcmp(nk, zero, 32) == 0 && sluice_rng_fill(&cfg->rng, nk, sizeof nk) < 0)
        return SLUICE_ERR_CRYPTO;
    rc = sluice_stun_key_raw(&s->nonce_key, nk, sizeof nk);
    memset(nk, 0, sizeof nk);
    if (rc < 0)
        return rc;

    if (cfg->n_rest_secrets) {
        s->secrets = srv_calloc(s, cfg->n_rest_secrets, sizeof *s->secrets);
        if (!s->secrets)
            return SLUICE_ERR_NOMEM;
        for (size_t i = 0; i < cfg->n_rest_secrets; i++) {
            const char *sec = cfg->rest_secrets[i];
            if (!sec)
                return SLUICE_ERR_INVALID;
            rc = sluice_stun_key_raw(&s->secrets[i], (const uint8_t *)sec, strlen(sec));
            if (rc < 0)
                return rc;
        }
        s->n_secrets = cfg->n_rest_secrets;
    }

    if (cfg->n_users) {
        s->users = srv_calloc(s, cfg->n_users, sizeof *s->users);
        if (!s->users)
            return SLUICE_ERR_NOMEM;
        if ((rc = srv_index_init(s, &s->ix_user_name, cfg->n_users)) < 0 ||
            (rc = srv_index_init(s, &s->ix_user_hash, cfg->n_users)) < 0)
            return rc;
        for (size_t i = 0; i < cfg->n_users; i++) {
            const sluice_turn_server_user *u = &cfg->users[i];
            struct srv_user *d = &s->users[i];
            if (!u->name || (!u->password && !u->has_md5_key))
                return SLUICE_ERR_INVALID;
            d->name_len = strlen(u->name);
            if (d->name_len == 0 || d->name_len >= SLUICE_STUN_MAX_USERNAME)
                return SLUICE_ERR_INVALID;
            d->name = srv_calloc(s, d->name_len + 1, 1);
            if (!d->name)
                return SLUICE_ERR_NOMEM;
            s->n_users = i + 1; /* so free() sees the name */
            memcpy(d->name, u->name, d->name_len);
            id_of(d->name, d->name_len, d->id);
            if (u->has_md5_key) {
                memcpy(d->md5, u->md5_key, 16);
            } else {
                /* RFC 8489 §9.2.2 */
                size_t pl = strlen(u->password);
                const uint8_t *parts[5] = {(const uint8_t *)d->name, (const uint8_t *)":",
                                           (const uint8_t *)s->realm, (const uint8_t *)":",
                                           (const uint8_t *)u->password};
                size_t lens[5] = {d->name_len, 1, s->realm_len, 1, pl};
                if (sluice_md5(parts, lens, 5, d->md5) < 0 ||
                    sluice_sha256(parts, lens, 5, d->sha256) < 0)
                    return SLUICE_ERR_CRYPTO;
                d->has_sha256 = true;
            }
            if (sluice_stun_userhash(d->userhash, d->name, d->name_len, s->realm,
                                     s->realm_len) < 0)
                return SLUICE_ERR_CRYPTO;
            if (srv_index_find(s, &s->ix_user_name, IX_USER_NAME,
                               srv_hash(s, d->name, d->name_len, 0), d) != UINT32_MAX)
                return SLUICE_ERR_INVALID; /* duplicate name */
            srv_index_insert(&s->ix_user_name, srv_hash(s, d->name, d->name_len, 0), (uint32_t)i);
            srv_index_insert(&s->ix_user_hash, srv_hash(s, d->userhash, 32, 0), (uint32_t)i);
        }
    }
    return 0;
}

void srv_auth_free(sluice_turn_server *s)
{
    for (size_t i = 0; i < s->n_users; i++) {
        memset(s->users[i].md5, 0, sizeof s->users[i].md5);
        memset(s->users[i].sha256, 0, sizeof s->users[i].sha256);
        sluice_xfree(&s->alloc, s->users[i].name);
    }
    for (size_t i = 0; i < s->n_secrets; i++)
        sluice_stun_key_clear(&s->secrets[i]);
    sluice_stun_key_clear(&s->nonce_key);
}

/* MAC over expiry || client transport address (RFC 8489 §9.2: the nonce
 * may encode the client's address and an expiry; no state is kept). */
static void nonce_mac(const sluice_turn_server *s, uint32_t expiry_s, const sluice_addr *client,
                      uint8_t mac[32])
{
    uint8_t in[4 + 1 + 16 + 2];
    wr32(in, expiry_s);
    in[4] = client->family;
    memcpy(in + 5, client->ip, 16);
    wr16(in + 21, client->port);
    sluice_hmac_sha256(&s->nonce_key, in, sizeof in, NULL, 0, mac);
}

void srv_make_nonce(const sluice_turn_server *s, uint64_t now_us, const sluice_addr *client,
                    char out[64])
{
    uint8_t raw[NONCE_RAW_LEN], mac[32];
    uint32_t expiry = (uint32_t)(now_us / SEC_US + s->cfg.nonce_lifetime_s);
    char cookie[SLUICE_STUN_NONCE_COOKIE_LEN];

    nonce_mac(s, expiry, client, mac);
    wr32(raw, expiry);
    memcpy(raw + 4, mac, NONCE_MAC_LEN);
    sluice_stun_nonce_cookie(s->features, cookie);
    memcpy(out, cookie, SLUICE_STUN_NONCE_COOKIE_LEN);
    srv_base64(raw, sizeof raw, out + SLUICE_STUN_NONCE_COOKIE_LEN, true);
}

/* true when nonce is one we gave to client and it has not expired */
static bool nonce_valid(const sluice_turn_server *s, uint64_t now_us, const sluice_addr *client,
                        const uint8_t *nonce, size_t len)
{
    char cookie[SLUICE_STUN_NONCE_COOKIE_LEN];
    uint8_t raw[NONCE_RAW_LEN + 2], mac[32];

    if (len != NONCE_LEN)
        return false;
    sluice_stun_nonce_cookie(s->features, cookie);
    if (memcmp(nonce, cookie, SLUICE_STUN_NONCE_COOKIE_LEN) != 0)
        return false;
    const uint8_t *p = nonce + SLUICE_STUN_NONCE_COOKIE_LEN;
    for (size_t i = 0, o = 0; i < NONCE_B64_LEN; i += 4, o += 3) {
        int v[4];
        for (int k = 0; k < 4; k++)
            if ((v[k] = sluice_b64_value(p[i + (size_t)k], true)) < 0)
                return false;
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        raw[o] = (uint8_t)(w >> 16);
        raw[o + 1] = (uint8_t)(w >> 8);
        raw[o + 2] = (uint8_t)w;
    }
    uint32_t expiry = rd32(raw);
    uint64_t now_s = now_us / SEC_US;
    nonce_mac(s, expiry, client, mac);
    if (!sluice_ct_equal(mac, raw + 4, NONCE_MAC_LEN))
        return false;
    return expiry > now_s && expiry <= now_s + s->cfg.nonce_lifetime_s;
}

bool srv_challenge_allowed(sluice_turn_server *s, uint64_t now_us, const sluice_addr *ip)
{
    /* Token bucket kept as the tokens *spent* (0 = full), so the zeroed
     * table needs no initialisation. */
    size_t n = s->cfg.challenge_table_size;
    struct srv_bucket *b = &s->buckets[srv_hash(s, ip->ip, 16, ip->family) & (n - 1)];
    uint64_t cap = (uint64_t)s->cfg.challenge_burst * 1000;
    if (now_us > b->last_us) {
        uint64_t back = (now_us - b->last_us) * s->cfg.challenges_per_s / 1000;
        b->tokens_milli = back >= b->tokens_milli ? 0 : (uint32_t)(b->tokens_milli - back);
    }
    b->last_us = now_us;
    if (b->tokens_milli + 1000ull > cap)
        return false;
    b->tokens_milli += 1000;
    return true;
}

/* A TURN REST username: "EXPIRY" or "EXPIRY:user" (EXPIRY decimal unix
 * seconds). Returns the expiry, 0 when it is not one; *user and *ulen get the
 * part that identifies the user for quotas. */
static uint64_t rest_expiry(const uint8_t *name, size_t len, const uint8_t **user, size_t *ulen)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < len && name[i] >= '0' && name[i] <= '9'; i++) {
        if (v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    if (i == 0 || (i < len && name[i] != ':'))
        return 0;
    *user = i < len ? name + i + 1 : name;
    *ulen = i < len ? len - i - 1 : len;
    return v;
}

static int check_mi(const sluice_stun_msg *m, const uint8_t *k, size_t klen)
{
    sluice_stun_key key;
    int rc = sluice_stun_key_raw(&key, k, klen);
    if (rc == 0)
        rc = m->integrity256_off ? sluice_stun_check_integrity_sha256(m, &key)
                                 : sluice_stun_check_integrity_sha1(m, &key);
    sluice_stun_key_clear(&key);
    return rc;
}

/* long-term key of a REST user for one secret (RFC 8489 §9.2.2) */
static void rest_key(const sluice_turn_server *s, const sluice_stun_key *secret,
                     const uint8_t *name, size_t nlen, uint16_t alg, uint8_t out[32])
{
    uint8_t mac[20];
    char pw[32];
    sluice_hmac_sha1(secret, name, nlen, NULL, 0, mac);
    srv_base64(mac, sizeof mac, pw, false);
    const uint8_t *parts[5] = {name, (const uint8_t *)":", (const uint8_t *)s->realm,
                               (const uint8_t *)":", (const uint8_t *)pw};
    size_t lens[5] = {nlen, 1, s->realm_len, 1, strlen(pw)};
    if (alg == SLUICE_STUN_PWALG_SHA256)
        sluice_sha256(parts, lens, 5, out);
    else
        sluice_md5(parts, lens, 5, out);
    memset(pw, 0, sizeof pw);
}

int srv_authenticate(sluice_turn_server *s, uint64_t now_us, const sluice_turn_server_flow *flow,
                     const sluice_stun_msg *m, struct srv_cred *cr, bool *presented)
{
    const uint8_t *name = NULL, *realm, *nonce, *uhash = NULL;
    size_t nlen = 0, rlen, nonce_len, uhlen = 0;
    uint16_t alg = SLUICE_STUN_PWALG_MD5;

    *presented = false;
    memset(cr, 0, sizeof *cr);
    /* RFC 8489 §9.2.4: no integrity: challenge. */
    if (!m->integrity_off && !m->integrity256_off)
        return SLUICE_STUN_ERR_UNAUTHORIZED;
    bool have_name = sluice_stun_get_bytes(m, SLUICE_STUN_ATTR_USERNAME, &name, &nlen) == 0;
    bool have_hash = s->cfg.userhash &&
                     sluice_stun_get_bytes(m, SLUICE_STUN_ATTR_USERHASH, &uhash, &uhlen) == 0 &&
                     uhlen == 32;
    if ((!have_name && !have_hash) ||
        sluice_stun_get_bytes(m, SLUICE_STUN_ATTR_REALM, &realm, &rlen) < 0 ||
        sluice_stun_get_bytes(m, SLUICE_STUN_ATTR_NONCE, &nonce, &nonce_len) < 0)
        return SLUICE_STUN_ERR_BAD_REQUEST;
    /* §9.2.4: a nonce we did not give to this address, or an old one: 438
     * with a fresh nonce (the client retries once). */
    if (!nonce_valid(s, now_us, &flow->client, nonce, nonce_len))
        return SLUICE_STUN_ERR_STALE_NONCE;
    *presented = true;
    if (rlen != s->realm_len || memcmp(realm, s->realm, rlen) != 0)
        return SLUICE_STUN_ERR_UNAUTHORIZED;

    /* §9.2.4 (password algorithms): with the feature bit set, the request
     * repeats our PASSWORD-ALGORITHMS exactly and picks one of them; with
     * neither attribute, MD5. */
    bool has_algs = sluice_stun_has(m, SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS);
    bool has_alg = sluice_stun_has(m, SLUICE_STUN_ATTR_PASSWORD_ALGORITHM);
    if ((s->features & SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS) && (has_algs || has_alg)) {
        uint16_t algs[8];
        int n = sluice_stun_get_password_algorithms(m, algs, 8);
        if (!has_algs || !has_alg || n != (int)s->cfg.n_password_algorithms ||
            sluice_stun_get_password_algorithm(m, &alg) < 0)
            return SLUICE_STUN_ERR_BAD_REQUEST;
        bool listed = false;
        for (int i = 0; i < n; i++) {
            if (algs[i] != s->cfg.password_algorithms[i])
                return SLUICE_STUN_ERR_BAD_REQUEST;
            if (algs[i] == alg)
                listed = true;
        }
        if (!listed)
            return SLUICE_STUN_ERR_BAD_REQUEST;
    } else if (has_alg || has_algs) {
        return SLUICE_STUN_ERR_BAD_REQUEST;
    }
    size_t klen = alg == SLUICE_STUN_PWALG_SHA256 ? 32 : 16;
    cr->key_len = (uint8_t)klen;
    cr->sha256_mi = m->integrity256_off != 0;

    /* static users, by USERHASH or USERNAME */
    uint32_t ui = UINT32_MAX;
    if (have_hash)
        ui = srv_index_find(s, &s->ix_user_hash, IX_USER_HASH, srv_hash(s, uhash, 32, 0), uhash);
    else if (s->n_users) {
        struct srv_user key = {.name = (char *)(uintptr_t)name, .name_len = nlen};
        ui = srv_index_find(s, &s->ix_user_name, IX_USER_NAME, srv_hash(s, name, nlen, 0), &key);
    }
    if (ui != UINT32_MAX) {
        const struct srv_user *u = &s->users[ui];
        if (alg == SLUICE_STUN_PWALG_SHA256 && !u->has_sha256)
            return SLUICE_STUN_ERR_UNAUTHORIZED;
        memcpy(cr->key, alg == SLUICE_STUN_PWALG_SHA256 ? u->sha256 : u->md5, klen);
        if (check_mi(m, cr->key, klen) != 0) {
            sluice_log(SLUICE_LOG_INFO, "turn-server", "bad integrity for user %.*s",
                       (int)u->name_len, u->name);
            return SLUICE_STUN_ERR_UNAUTHORIZED;
        }
        memcpy(cr->user_id, u->id, 16);
        memcpy(cr->quota_id, u->id, 16);
        return 0;
    }
    if (!have_name || s->n_secrets == 0)
        return SLUICE_STUN_ERR_UNAUTHORIZED;

    /* TURN REST: expiry in the name, password from a shared secret. */
    const uint8_t *user;
    size_t ulen;
    uint64_t expiry = rest_expiry(name, nlen, &user, &ulen);
    if (expiry == 0 || s->unix_time_s == 0 || expiry < s->unix_time_s) {
        sluice_log(SLUICE_LOG_DEBUG, "turn-server", "REST username expired or invalid");
        return SLUICE_STUN_ERR_UNAUTHORIZED;
    }
    for (size_t i = 0; i < s->n_secrets; i++) {
        rest_key(s, &s->secrets[i], name, nlen, alg, cr->key);
        if (check_mi(m, cr->key, klen) == 0) {
            id_of((const char *)name, nlen, cr->user_id);
            id_of((const char *)user, ulen, cr->quota_id);
            return 0;
        }
    }
    memset(cr->key, 0, sizeof cr->key);
    sluice_log(SLUICE_LOG_INFO, "turn-server", "bad integrity for a REST user");
    return SLUICE_STUN_ERR_UNAUTHORIZED;
}
