/* SPDX-License-Identifier: MIT */
/* STUN message writer into caller buffers (RFC 8489 §5, §14): sticky
 * errors, zero padding, integrity and fingerprint finalisation. */
#include <string.h>

#include "common/internal.h"
#include "sluice/stun.h"

static int fail(sluice_stun_writer *w, int err)
{
    if (!w->err)
        w->err = err;
    return w->err;
}

static void set_length(sluice_stun_writer *w)
{
    wr16(w->buf + 2, (uint16_t)(w->len - SLUICE_STUN_HEADER_LEN));
}

int sluice_stun_writer_init(sluice_stun_writer *w, uint8_t *buf, size_t cap, uint16_t type,
                            const uint8_t txid[SLUICE_STUN_TXID_LEN])
{
    if (!w)
        return SLUICE_ERR_INVALID;
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->err = 0;
    w->sealed = 0;
    if (!buf || (type & 0xC000))
        return fail(w, SLUICE_ERR_INVALID);
    if (cap < SLUICE_STUN_HEADER_LEN)
        return fail(w, SLUICE_ERR_NOSPACE);
    wr16(buf, type);
    wr16(buf + 2, 0);
    wr32(buf + 4, SLUICE_STUN_MAGIC_COOKIE);
    if (txid)
        memmove(buf + 8, txid, SLUICE_STUN_TXID_LEN); /* txid may live in buf (in-place copy) */
    else
        memset(buf + 8, 0, SLUICE_STUN_TXID_LEN);
    w->len = SLUICE_STUN_HEADER_LEN;
    return 0;
}

int sluice_stun_writer_init_copy(sluice_stun_writer *w, uint8_t *buf, size_t cap,
                                 const sluice_stun_msg *m)
{
    size_t n;
    int rc;

    if (!m) {
        if (w)
            memset(w, 0, sizeof *w), w->err = SLUICE_ERR_INVALID;
        return SLUICE_ERR_INVALID;
    }
    rc = sluice_stun_writer_init(w, buf, cap, m->type, m->data + 8);
    if (rc < 0)
        return rc;
    n = m->attrs_end - SLUICE_STUN_HEADER_LEN;
    if (n > cap - w->len || n > 65532)
        return fail(w, SLUICE_ERR_NOSPACE);
    memmove(buf + w->len, m->data + SLUICE_STUN_HEADER_LEN, n);
    w->len += n;
    set_length(w);
    return 0;
}

/* Reserve an attribute header and padded value; returns a pointer to the
 * value, zero-filled padding already written. */
static uint8_t *reserve(sluice_stun_writer *w, uint16_t type, size_t len, bool trailer)
{
    size_t padded = (len + 3) & ~(size_t)3;
    uint8_t *p;

    if (w->err)
        return NULL;
    if (!w->buf || w->len < SLUICE_STUN_HEADER_LEN) {
        fail(w, SLUICE_ERR_STATE);
        return NULL;
    }
    if (w->sealed && !trailer) {
        fail(w, SLUICE_ERR_STATE);
        return NULL;
    }
    if (len > 0xFFFF || w->len - SLUICE_STUN_HEADER_LEN + 4 + padded > 65532) {
        fail(w, SLUICE_ERR_INVALID);
        return NULL;
    }
    if (w->cap - w->len < 4 + padded) {
        fail(w, SLUICE_ERR_NOSPACE);
        return NULL;
    }
    p = w->buf + w->len;
    wr16(p, type);
    wr16(p + 2, (uint16_t)len);
    if (padded != len)
        memset(p + 4 + len, 0, padded - len);
    w->len += 4 + padded;
    set_length(w);
    return p + 4;
}

int sluice_stun_put(sluice_stun_writer *w, uint16_t type, const void *value, size_t len)
{
    uint8_t *p;
    if (!value && len)
        return fail(w, SLUICE_ERR_INVALID);
    p = reserve(w, type, len, false);
    if (!p)
        return w->err;
    if (len)
        memcpy(p, value, len);
    return 0;
}

int sluice_stun_put_empty(sluice_stun_writer *w, uint16_t type)
{
    return sluice_stun_put(w, type, NULL, 0);
}

int sluice_stun_put_u32(sluice_stun_writer *w, uint16_t type, uint32_t v)
{
    uint8_t *p = reserve(w, type, 4, false);
    if (!p)
        return w->err;
    wr32(p, v);
    return 0;
}

int sluice_stun_put_u64(sluice_stun_writer *w, uint16_t type, uint64_t v)
{
    uint8_t *p = reserve(w, type, 8, false);
    if (!p)
        return w->err;
    wr64(p, v);
    return 0;
}

static int put_addr(sluice_stun_writer *w, uint16_t type, const sluice_addr *a, bool xor)
{
    size_t alen;
    uint8_t *p;

    if (!a || (a->family != SLUICE_AF_INET && a->family != SLUICE_AF_INET6))
        return fail(w, SLUICE_ERR_INVALID);
    alen = a->family == SLUICE_AF_INET ? 4 : 16;
    p = reserve(w, type, 4 + alen, false);
    if (!p)
        return w->err;
    p[0] = 0;
    p[1] = a->family == SLUICE_AF_INET ? 0x01 : 0x02;
    if (xor) {
        /* RFC 8489 §14.2 */
        const uint8_t *key = w->buf + 4;
        wr16(p + 2, (uint16_t)(a->port ^ (SLUICE_STUN_MAGIC_COOKIE >> 16)));
        for (size_t i = 0; i < alen; i++)
            p[4 + i] = a->ip[i] ^ key[i];
    } else {
        wr16(p + 2, a->port);
        memcpy(p + 4, a->ip, alen);
    }
    return 0;
}

int sluice_stun_put_address(sluice_stun_writer *w, uint16_t type, const sluice_addr *a)
{
    return put_addr(w, type, a, false);
}

int sluice_stun_put_xor_address(sluice_stun_writer *w, uint16_t type, const sluice_addr *a)
{
    return put_addr(w, type, a, true);
}

int sluice_stun_put_string(sluice_stun_writer *w, uint16_t type, const char *s, size_t len)
{
    size_t max = 65535;
    if (type == SLUICE_STUN_ATTR_USERNAME)
        max = SLUICE_STUN_MAX_USERNAME - 1;
    else if (type == SLUICE_STUN_ATTR_REALM || type == SLUICE_STUN_ATTR_NONCE ||
             type == SLUICE_STUN_ATTR_SOFTWARE || type == SLUICE_STUN_ATTR_ALTERNATE_DOMAIN)
        max = SLUICE_STUN_MAX_TEXT_ENCODE; /* 127 characters, 509 bytes when encoding */
    if (len > max)
        return fail(w, SLUICE_ERR_INVALID);
    return sluice_stun_put(w, type, s, len);
}

static int put_error(sluice_stun_writer *w, uint16_t type, int family, int code,
                     const char *reason)
{
    size_t rlen;
    uint8_t *p;

    if (code < 300 || code > 699)
        return fail(w, SLUICE_ERR_INVALID);
    if (!reason)
        reason = sluice_stun_error_reason(code);
    rlen = strlen(reason);
    if (rlen > SLUICE_STUN_MAX_TEXT_ENCODE) /* §14.8: 127 characters, 509 bytes */
        return fail(w, SLUICE_ERR_INVALID);
    p = reserve(w, type, 4 + rlen, false);
    if (!p)
        return w->err;
    p[0] = (uint8_t)family; /* 0 for ERROR-CODE */
    p[1] = 0;
    p[2] = (uint8_t)(code / 100);
    p[3] = (uint8_t)(code % 100);
    memcpy(p + 4, reason, rlen);
    return 0;
}

int sluice_stun_put_error_code(sluice_stun_writer *w, int code, const char *reason)
{
    return put_error(w, SLUICE_STUN_ATTR_ERROR_CODE, 0, code, reason);
}

int sluice_stun_put_address_error_code(sluice_stun_writer *w, uint8_t family, int code,
                                       const char *reason)
{
    if (family != SLUICE_STUN_FAMILY_IPV4 && family != SLUICE_STUN_FAMILY_IPV6)
        return fail(w, SLUICE_ERR_INVALID);
    return put_error(w, SLUICE_STUN_ATTR_ADDRESS_ERROR_CODE, family, code, reason);
}

int sluice_stun_put_unknown_attributes(sluice_stun_writer *w, const uint16_t *types, size_t n)
{
    uint8_t *p;
    if (n > 1024 || (!types && n))
        return fail(w, SLUICE_ERR_INVALID);
    p = reserve(w, SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES, 2 * n, false);
    if (!p)
        return w->err;
    for (size_t i = 0; i < n; i++)
        wr16(p + 2 * i, types[i]);
    return 0;
}

int sluice_stun_put_channel_number(sluice_stun_writer *w, uint16_t channel)
{
    uint8_t *p = reserve(w, SLUICE_STUN_ATTR_CHANNEL_NUMBER, 4, false);
    if (!p)
        return w->err;
    wr16(p, channel);
    wr16(p + 2, 0);
    return 0;
}

int sluice_stun_put_requested_transport(sluice_stun_writer *w, uint8_t protocol)
{
    uint8_t *p = reserve(w, SLUICE_STUN_ATTR_REQUESTED_TRANSPORT, 4, false);
    if (!p)
        return w->err;
    p[0] = protocol;
    p[1] = p[2] = p[3] = 0;
    return 0;
}

int sluice_stun_put_address_family(sluice_stun_writer *w, uint16_t type, uint8_t family)
{
    uint8_t *p;
    if (family != SLUICE_STUN_FAMILY_IPV4 && family != SLUICE_STUN_FAMILY_IPV6)
        return fail(w, SLUICE_ERR_INVALID);
    p = reserve(w, type, 4, false);
    if (!p)
        return w->err;
    p[0] = family;
    p[1] = p[2] = p[3] = 0;
    return 0;
}

int sluice_stun_put_even_port(sluice_stun_writer *w, bool reserve_next)
{
    uint8_t *p = reserve(w, SLUICE_STUN_ATTR_EVEN_PORT, 1, false);
    if (!p)
        return w->err;
    p[0] = reserve_next ? 0x80 : 0;
    return 0;
}

int sluice_stun_put_icmp(sluice_stun_writer *w, uint8_t icmp_type, uint8_t icmp_code,
                         uint32_t error_data)
{
    uint8_t *p = reserve(w, SLUICE_STUN_ATTR_ICMP, 8, false);
    if (!p)
        return w->err;
    p[0] = p[1] = 0;
    p[2] = icmp_type;
    p[3] = icmp_code;
    wr32(p + 4, error_data);
    return 0;
}

int sluice_stun_put_password_algorithm(sluice_stun_writer *w, uint16_t alg)
{
    uint8_t *p = reserve(w, SLUICE_STUN_ATTR_PASSWORD_ALGORITHM, 4, false);
    if (!p)
        return w->err;
    wr16(p, alg);
    wr16(p + 2, 0); /* MD5 and SHA-256 take no parameters (§18.5) */
    return 0;
}

int sluice_stun_put_password_algorithms(sluice_stun_writer *w, const uint16_t *algs, size_t n)
{
    uint8_t *p;
    if (n == 0 || n > 256 || !algs)
        return fail(w, SLUICE_ERR_INVALID);
    p = reserve(w, SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS, 4 * n, false);
    if (!p)
        return w->err;
    for (size_t i = 0; i < n; i++) {
        wr16(p + 4 * i, algs[i]);
        wr16(p + 4 * i + 2, 0);
    }
    return 0;
}

/* RFC 8489 §14.5 / §14.6: HMAC over the message up to the attribute, with
 * the header length already counting it (set by reserve). MESSAGE-INTEGRITY
 * may precede MESSAGE-INTEGRITY-SHA256 and is then covered by it. */
static int put_mac(sluice_stun_writer *w, const sluice_stun_key *key, bool sha256)
{
    uint8_t *p;
    size_t covered;
    int rc;

    if (!key)
        return fail(w, SLUICE_ERR_INVALID);
    if (w->sealed > (sha256 ? 1 : 0))
        return fail(w, SLUICE_ERR_STATE);
    p = reserve(w, sha256 ? SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256
                          : SLUICE_STUN_ATTR_MESSAGE_INTEGRITY,
                sha256 ? 32 : 20, sha256);
    if (!p)
        return w->err;
    covered = (size_t)(p - 4 - w->buf);
    rc = sha256 ? sluice_hmac_sha256(key, w->buf, covered, NULL, 0, p)
                : sluice_hmac_sha1(key, w->buf, covered, NULL, 0, p);
    if (rc < 0)
        return fail(w, rc);
    w->sealed = sha256 ? 2 : 1;
    return 0;
}

int sluice_stun_put_integrity(sluice_stun_writer *w, const sluice_stun_key *key)
{
    return put_mac(w, key, false);
}

int sluice_stun_put_integrity_sha256(sluice_stun_writer *w, const sluice_stun_key *key)
{
    return put_mac(w, key, true);
}

int sluice_stun_put_fingerprint(sluice_stun_writer *w)
{
    uint8_t *p;
    if (w->sealed == 3)
        return fail(w, SLUICE_ERR_STATE);
    p = reserve(w, SLUICE_STUN_ATTR_FINGERPRINT, 4, true);
    if (!p)
        return w->err;
    /* RFC 8489 §14.7 */
    wr32(p, sluice_crc32(0, w->buf, (size_t)(p - 4 - w->buf)) ^ 0x5354554Eu);
    w->sealed = 3;
    return 0;
}
