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
