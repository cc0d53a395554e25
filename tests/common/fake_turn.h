/* SPDX-License-Identifier: MIT */
/* A scripted TURN server for client tests and fuzzing: answers Allocate,
 * Refresh, CreatePermission and ChannelBind with the long-term credential
 * mechanism (RFC 8489 §9.2) and does whatever the test set up (errors,
 * silence, stale nonces, redirects, dual allocations). It is deliberately
 * not the real server core: the client is tested against the RFC's
 * messages here and against coturn in tests/interop. */
#ifndef SLUICE_FAKE_TURN_H
#define SLUICE_FAKE_TURN_H

#include <string.h>

#include "sluice/sluice.h"

#define FAKE_MAX_METHOD 16

struct fake_turn {
    const char *realm, *nonce, *user, *password;
    sluice_stun_key key;
    uint32_t lifetime;        /* granted on Allocate/Refresh (default 600) */
    sluice_addr relayed4, relayed6, mapped;
    int allocate_error;       /* answer Allocate with this code (0: success) */
    int refresh_error, perm_error, chan_error;
    bool v6_fails;            /* dual: answer ADDRESS-ERROR-CODE 440 for IPv6 */
    bool silent;              /* answer nothing at all */
    const char *stale_nonce;  /* next authenticated request: 438 with this nonce */
    sluice_addr alternate;    /* allocate_error 300: ALTERNATE-SERVER */
    const char *alternate_domain;
    bool alternate_rotate;    /* each 300 names the next port: a redirect loop */
    /* what was seen */
    unsigned requests[FAKE_MAX_METHOD];
    unsigned authenticated[FAKE_MAX_METHOD];
    unsigned indications[FAKE_MAX_METHOD];
    uint8_t last_family, last_additional_family;
    uint32_t last_lifetime; /* LIFETIME of the last Refresh (~0u when absent) */
    sluice_addr last_peer;
    uint16_t last_channel;
    uint8_t last_data[2048];
    size_t last_data_len;
};

static inline void fake_turn_init(struct fake_turn *s)
{
    memset(s, 0, sizeof *s);
    s->realm = "example.org";
    s->nonce = "nonce-1";
    s->user = "alice";
    s->password = "secret";
    s->lifetime = 600;
    sluice_addr_parse(&s->relayed4, "203.0.113.5:50000", 0);
    sluice_addr_parse(&s->relayed6, "[2001:db8::5]:50002", 0);
    sluice_addr_parse(&s->mapped, "198.51.100.7:40000", 0);
    sluice_stun_key_long_term(&s->key, SLUICE_STUN_PWALG_MD5, s->user, strlen(s->user), s->realm,
                              strlen(s->realm), s->password, strlen(s->password));
}

/* Change the password the server expects (a wrong-password test). */
static inline void fake_turn_set_password(struct fake_turn *s, const char *pw)
{
    s->password = pw;
    sluice_stun_key_long_term(&s->key, SLUICE_STUN_PWALG_MD5, s->user, strlen(s->user), s->realm,
                              strlen(s->realm), s->password, strlen(s->password));
}

static inline int fake_turn_error(struct fake_turn *s, const sluice_stun_msg *m, int code,
                                  const char *nonce, bool with_key, uint8_t *out, size_t cap)
{
    sluice_stun_error_opts o;
    memset(&o, 0, sizeof o);
    o.realm = (code == 401 || code == 438) ? s->realm : NULL;
    o.nonce = (code == 401 || code == 438) ? nonce : NULL;
    o.key = with_key ? &s->key : NULL;
    o.fingerprint = true;
    if (code == 300) {
        /* error response with ALTERNATE-SERVER (RFC 8489 §10) */
        sluice_stun_writer w;
        sluice_stun_writer_init(&w, out, cap,
                                sluice_stun_type(m->method, SLUICE_STUN_ERROR), sluice_stun_txid(m));
        sluice_stun_put_error_code(&w, 300, "Try Alternate");
        sluice_stun_put_address(&w, SLUICE_STUN_ATTR_ALTERNATE_SERVER, &s->alternate);
        if (s->alternate_domain)
            sluice_stun_put_string(&w, SLUICE_STUN_ATTR_ALTERNATE_DOMAIN, s->alternate_domain,
                                   strlen(s->alternate_domain));
        sluice_stun_put_fingerprint(&w);
        if (s->alternate_rotate)
            s->alternate.port++;
        return sluice_stun_writer_result(&w);
    }
    return sluice_stun_error_response(m, code, &o, out, cap);
}

/* Answer one message from the client. Returns the response length, 0 for
 * no answer (indications, silence), or a negative code for bad input. */
static inline int fake_turn_answer(struct fake_turn *s, const uint8_t *req, size_t len,
                                   uint8_t *out, size_t cap)
{
    sluice_stun_msg m;
    int r = sluice_stun_parse(&m, req, len);
    if (r < 0)
        return r;
    unsigned meth = m.method < FAKE_MAX_METHOD ? m.method : 0;
    if (m.cls == SLUICE_STUN_INDICATION) {
        s->indications[meth]++;
        sluice_stun_get_xor_address(&m, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &s->last_peer);
        const uint8_t *d;
        size_t dl;
        if (sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_DATA, &d, &dl) == 0 &&
            dl <= sizeof s->last_data) {
            memcpy(s->last_data, d, dl);
            s->last_data_len = dl;
        }
        return 0;
    }
    if (m.cls != SLUICE_STUN_REQUEST)
        return 0;
    s->requests[meth]++;
    if (s->silent)
        return 0;
    if (m.method == SLUICE_STUN_ALLOCATE && s->allocate_error == 300)
        return fake_turn_error(s, &m, 300, NULL, false, out, cap);
    if (m.integrity_off < 0)
        return fake_turn_error(s, &m, 401, s->nonce, false, out, cap);
    if (sluice_stun_check_integrity(&m, &s->key) != 0)
        return fake_turn_error(s, &m, 401, s->nonce, false, out, cap);
    const uint8_t *nonce;
    size_t nl;
    if (sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_NONCE, &nonce, &nl) < 0 ||
        nl != strlen(s->nonce) || memcmp(nonce, s->nonce, nl) != 0)
        return fake_turn_error(s, &m, 438, s->nonce, true, out, cap);
    if (s->stale_nonce) {
        s->nonce = s->stale_nonce;
        s->stale_nonce = NULL;
        return fake_turn_error(s, &m, 438, s->nonce, true, out, cap);
    }
    s->authenticated[meth]++;

    int code = 0;
    sluice_stun_writer w;
    sluice_stun_writer_init(&w, out, cap, sluice_stun_type(m.method, SLUICE_STUN_SUCCESS),
                            sluice_stun_txid(&m));
    switch (m.method) {
    case SLUICE_STUN_ALLOCATE: {
        code = s->allocate_error;
        if (code)
            break;
        s->last_family = 0;
        s->last_additional_family = 0;
        sluice_stun_get_address_family(&m, SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY,
                                       &s->last_family);
        sluice_stun_get_address_family(&m, SLUICE_STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY,
                                       &s->last_additional_family);
        if (s->last_family == SLUICE_STUN_FAMILY_IPV6) {
            sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS, &s->relayed6);
        } else {
            sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS, &s->relayed4);
            if (s->last_additional_family == SLUICE_STUN_FAMILY_IPV6) {
                if (s->v6_fails)
                    sluice_stun_put_address_error_code(&w, SLUICE_STUN_FAMILY_IPV6, 440,
                                                       "Address Family not Supported");
                else
                    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS,
                                                &s->relayed6);
            }
        }
        sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_LIFETIME, s->lifetime);
        sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &s->mapped);
        break;
    }
    case SLUICE_STUN_REFRESH: {
        code = s->refresh_error;
        if (code)
            break;
        uint32_t lt = s->lifetime;
        s->last_lifetime = ~0u;
        if (sluice_stun_get_u32(&m, SLUICE_STUN_ATTR_LIFETIME, &s->last_lifetime) == 0)
            lt = s->last_lifetime;
        sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_LIFETIME, lt);
        break;
    }
    case SLUICE_STUN_CREATE_PERMISSION:
        code = s->perm_error;
        sluice_stun_get_xor_address(&m, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &s->last_peer);
        break;
    case SLUICE_STUN_CHANNEL_BIND:
        code = s->chan_error;
        sluice_stun_get_xor_address(&m, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &s->last_peer);
        sluice_stun_get_channel_number(&m, &s->last_channel);
        break;
    default:
        code = 400;
    }
    if (code)
        return fake_turn_error(s, &m, code, s->nonce, true, out, cap);
    sluice_stun_put_integrity(&w, &s->key);
    sluice_stun_put_fingerprint(&w);
    return sluice_stun_writer_result(&w);
}

/* Build a Data indication from peer carrying data (RFC 8656 §10.3). */
static inline int fake_turn_data_indication(const sluice_addr *peer, const uint8_t *data,
                                            size_t len, uint8_t *out, size_t cap)
{
    static const uint8_t txid[SLUICE_STUN_TXID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    sluice_stun_writer w;
    sluice_stun_writer_init(&w, out, cap, sluice_stun_type(SLUICE_STUN_DATA, SLUICE_STUN_INDICATION),
                            txid);
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, peer);
    sluice_stun_put(&w, SLUICE_STUN_ATTR_DATA, data, len);
    return sluice_stun_writer_result(&w);
}

#endif
