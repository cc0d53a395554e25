/* SPDX-License-Identifier: MIT */
/* Stateless STUN server helpers: Binding success responses (RFC 8489
 * §6.3.1, §7.3.1) and error responses (§6.3.4) for any request. */
#include <string.h>

#include "common/internal.h"
#include "sluice/stun_txn.h"

int sluice_stun_binding_response(const sluice_stun_msg *req, const sluice_addr *from,
                                 const sluice_stun_key *key, const char *software, uint8_t *buf,
                                 size_t cap)
{
    sluice_stun_writer w;

    if (!req || !from || req->cls != SLUICE_STUN_REQUEST || req->method != SLUICE_STUN_BINDING)
        return SLUICE_ERR_INVALID;
    sluice_stun_writer_init(&w, buf, cap, sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_SUCCESS),
                            sluice_stun_txid(req));
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, from);
    if (software)
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, software, strlen(software));
    if (key) {
        /* §9.1.3/§9.2.4: answer with the integrity type the request used. */
        if (req->integrity256_off)
            sluice_stun_put_integrity_sha256(&w, key);
        else
            sluice_stun_put_integrity(&w, key);
    }
    sluice_stun_put_fingerprint(&w);
    return sluice_stun_writer_result(&w);
}

int sluice_stun_error_response(const sluice_stun_msg *req, int code,
                               const sluice_stun_error_opts *opts, uint8_t *buf, size_t cap)
{
    static const sluice_stun_error_opts none;
    sluice_stun_writer w;

    if (!req || req->cls != SLUICE_STUN_REQUEST || code < 300 || code > 699)
        return SLUICE_ERR_INVALID;
    if (!opts)
        opts = &none;
    sluice_stun_writer_init(&w, buf, cap, sluice_stun_type(req->method, SLUICE_STUN_ERROR),
                            sluice_stun_txid(req));
    sluice_stun_put_error_code(&w, code, opts->reason);
    if (code == SLUICE_STUN_ERR_UNKNOWN_ATTRIBUTE) {
        /* §14.9: list the unknown comprehension-required attributes. */
        size_t n = req->n_unknown < SLUICE_STUN_MAX_UNKNOWN ? req->n_unknown : SLUICE_STUN_MAX_UNKNOWN;
        sluice_stun_put_unknown_attributes(&w, req->unknown, n);
    }
    if (opts->realm)
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, opts->realm, strlen(opts->realm));
    if (opts->nonce)
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, opts->nonce, strlen(opts->nonce));
    if (opts->n_password_algorithms)
        sluice_stun_put_password_algorithms(&w, opts->password_algorithms,
                                            opts->n_password_algorithms);
    if (opts->software)
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, opts->software,
                               strlen(opts->software));
    if (opts->key) {
        if (req->integrity256_off)
            sluice_stun_put_integrity_sha256(&w, opts->key);
        else
            sluice_stun_put_integrity(&w, opts->key);
    }
    if (opts->fingerprint)
        sluice_stun_put_fingerprint(&w);
    return sluice_stun_writer_result(&w);
}

/* RFC 8489 §11.2 (as RFC 5389 §12.2 before it): a Binding request without
 * the magic cookie comes from an RFC 3489 client. The server SHOULD answer
 * it with the cookie field copied and MAPPED-ADDRESS instead of
 * XOR-MAPPED-ADDRESS. libnice sends exactly this for server-reflexive
 * discovery (its RFC 5245 mode), so a STUN server that ignores it gives
 * libnice and webrtcbin no srflx candidate.
 *
 * RFC 3489 features that this server does not have get 420 (Unknown
 * Attribute): RESPONSE-ADDRESS (answering to another address would make the
 * server a reflector) and CHANGE-REQUEST with a flag set (there is no
 * alternate address, RFC 5780 §7.2). USERNAME, PASSWORD and
 * MESSAGE-INTEGRITY (the RFC 3489 shared-secret scheme) are ignored, as are
 * comprehension-optional attributes (>= 0x8000). */
int sluice_stun_classic_binding_response(const uint8_t *data, size_t len, const sluice_addr *from,
                                         uint8_t *buf, size_t cap)
{
    uint16_t unknown[SLUICE_STUN_MAX_UNKNOWN + 1];
    size_t n_unknown = 0, off = 20;
    sluice_stun_writer w;
    int n;

    if (!data || !from || !buf)
        return SLUICE_ERR_INVALID;
    /* RFC 3489 §11.1: 20-byte header, type, length of the attributes. */
    if (len < 20 || (data[0] & 0xC0) || rd16(data) != 0x0001 || rd16(data + 2) != len - 20 ||
        (len & 3) || rd32(data + 4) == SLUICE_STUN_MAGIC_COOKIE)
        return SLUICE_ERR_NOT_STUN;
    while (off < len) {
        if (len - off < 4)
            return SLUICE_ERR_MALFORMED;
        uint16_t type = rd16(data + off), vlen = rd16(data + off + 2);
        size_t padded = ((size_t)vlen + 3) & ~(size_t)3;
        if (padded > len - off - 4)
            return SLUICE_ERR_MALFORMED;
        bool refused = false;
        if (type == SLUICE_STUN_ATTR_CHANGE_REQUEST)
            refused = vlen != 4 || (rd32(data + off + 4) & 0x6) != 0;
        else if (type < 0x8000 && type != 0x0006 && type != 0x0007 &&
                 type != SLUICE_STUN_ATTR_MESSAGE_INTEGRITY)
            refused = true; /* RESPONSE-ADDRESS (0x0002) and anything unknown */
        if (refused && n_unknown < SLUICE_STUN_MAX_UNKNOWN)
            unknown[n_unknown++] = type;
        off += 4 + padded;
    }
    if (n_unknown) {
        /* RFC 3489 §11.2.10: an odd count repeats one attribute. */
        if (n_unknown & 1)
            unknown[n_unknown++] = unknown[0];
        sluice_stun_writer_init(&w, buf, cap,
                                sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_ERROR), data + 8);
        sluice_stun_put_error_code(&w, SLUICE_STUN_ERR_UNKNOWN_ATTRIBUTE, NULL);
        sluice_stun_put_unknown_attributes(&w, unknown, n_unknown);
    } else {
        sluice_stun_writer_init(&w, buf, cap,
                                sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_SUCCESS),
                                data + 8);
        sluice_stun_put_address(&w, SLUICE_STUN_ATTR_MAPPED_ADDRESS, from);
    }
    n = sluice_stun_writer_result(&w);
    if (n > 0)
        memcpy(buf + 4, data + 4, 4); /* the client's cookie field, not ours */
    return n;
}
