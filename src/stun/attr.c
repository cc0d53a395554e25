/* SPDX-License-Identifier: MIT */
/* Typed STUN attribute getters (RFC 8489 §14, RFC 8656 §18, RFC 8445 §16.1,
 * RFC 5780 §7). Every getter checks the value's format before use. */
#include <string.h>

#include "common/internal.h"
#include "sluice/stun.h"

int sluice_stun_decode_address(const sluice_stun_attr *a, sluice_addr *out)
{
    /* RFC 8489 §14.1: 0, family, port, address. */
    if (a->len < 4)
        return SLUICE_ERR_MALFORMED;
    if (a->value[1] == 0x01 && a->len == 8) {
        sluice_addr_set_ipv4(out, a->value + 4, rd16(a->value + 2));
        return 0;
    }
    if (a->value[1] == 0x02 && a->len == 20) {
        sluice_addr_set_ipv6(out, a->value + 4, rd16(a->value + 2));
        return 0;
    }
    return SLUICE_ERR_MALFORMED;
}

int sluice_stun_decode_xor_address(const sluice_stun_msg *m, const sluice_stun_attr *a,
                                   sluice_addr *out)
{
    /* RFC 8489 §14.2: port XOR the cookie's top 16 bits; IPv4 XOR the
     * cookie; IPv6 XOR cookie || transaction ID. */
    const uint8_t *key = m->data + 4; /* cookie followed by the txid */
    uint8_t ip[16];
    uint16_t port;

    if (a->len < 4)
        return SLUICE_ERR_MALFORMED;
    port = (uint16_t)(rd16(a->value + 2) ^ (SLUICE_STUN_MAGIC_COOKIE >> 16));
    if (a->value[1] == 0x01 && a->len == 8) {
        for (int i = 0; i < 4; i++)
            ip[i] = a->value[4 + i] ^ key[i];
        sluice_addr_set_ipv4(out, ip, port);
        return 0;
    }
    if (a->value[1] == 0x02 && a->len == 20) {
        for (int i = 0; i < 16; i++)
            ip[i] = a->value[4 + i] ^ key[i];
        sluice_addr_set_ipv6(out, ip, port);
        return 0;
    }
    return SLUICE_ERR_MALFORMED;
}

int sluice_stun_get_address(const sluice_stun_msg *m, uint16_t type, sluice_addr *out)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, type, &a);
    return rc < 0 ? rc : sluice_stun_decode_address(&a, out);
}

int sluice_stun_get_xor_address(const sluice_stun_msg *m, uint16_t type, sluice_addr *out)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, type, &a);
    return rc < 0 ? rc : sluice_stun_decode_xor_address(m, &a, out);
}

int sluice_stun_get_u32(const sluice_stun_msg *m, uint16_t type, uint32_t *out)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, type, &a);
    if (rc < 0)
        return rc;
    if (a.len != 4)
        return SLUICE_ERR_MALFORMED;
    *out = rd32(a.value);
    return 0;
}

int sluice_stun_get_u64(const sluice_stun_msg *m, uint16_t type, uint64_t *out)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, type, &a);
    if (rc < 0)
        return rc;
    if (a.len != 8)
        return SLUICE_ERR_MALFORMED;
    *out = rd64(a.value);
    return 0;
}

static size_t max_bytes(uint16_t type)
{
    switch (type) {
    case SLUICE_STUN_ATTR_USERNAME:
        return SLUICE_STUN_MAX_USERNAME - 1; /* "less than 513 bytes" (§14.3) */
    case SLUICE_STUN_ATTR_REALM:
    case SLUICE_STUN_ATTR_NONCE:
    case SLUICE_STUN_ATTR_SOFTWARE:
    case SLUICE_STUN_ATTR_ALTERNATE_DOMAIN:
        return SLUICE_STUN_MAX_TEXT; /* §14.9, §14.10, §14.14, §14.16 */
    default:
        return 65535;
    }
}

int sluice_stun_get_bytes(const sluice_stun_msg *m, uint16_t type, const uint8_t **value,
                          size_t *len)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, type, &a);
    if (rc < 0)
        return rc;
    if (a.len > max_bytes(type) || (type == SLUICE_STUN_ATTR_USERHASH && a.len != 32))
        return SLUICE_ERR_MALFORMED;
    *value = a.value;
    *len = a.len;
    return 0;
}

static int decode_error(const uint8_t *v, size_t len, int *code, const char **reason,
                        size_t *reason_len)
{
    unsigned cls, num;
    /* RFC 8489 §14.8: 21 reserved bits, class (3..6), number (0..99). */
    if (len < 4 || len - 4 > SLUICE_STUN_MAX_TEXT)
        return SLUICE_ERR_MALFORMED;
    cls = v[2] & 0x07;
    num = v[3];
    if (cls < 3 || cls > 6 || num > 99)
        return SLUICE_ERR_MALFORMED;
    if (code)
        *code = (int)(cls * 100 + num);
    if (reason)
        *reason = (const char *)v + 4;
    if (reason_len)
        *reason_len = len - 4;
    return 0;
}

int sluice_stun_get_error_code(const sluice_stun_msg *m, int *code, const char **reason,
                               size_t *reason_len)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, SLUICE_STUN_ATTR_ERROR_CODE, &a);
    return rc < 0 ? rc : decode_error(a.value, a.len, code, reason, reason_len);
}

int sluice_stun_get_unknown_attributes(const sluice_stun_msg *m, uint16_t *types, size_t max)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES, &a);
    if (rc < 0)
        return rc;
    if (a.len & 1)
        return SLUICE_ERR_MALFORMED; /* §14.9: a list of 16-bit values */
    for (size_t i = 0; i < a.len / 2u && i < max; i++)
        types[i] = rd16(a.value + 2 * i);
    return a.len / 2;
}

int sluice_stun_get_channel_number(const sluice_stun_msg *m, uint16_t *channel)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, SLUICE_STUN_ATTR_CHANNEL_NUMBER, &a);
    if (rc < 0)
        return rc;
    if (a.len != 4)
        return SLUICE_ERR_MALFORMED;
    *channel = rd16(a.value); /* RFC 8656 §18.1: number, then RFFU */
    return 0;
}

int sluice_stun_get_requested_transport(const sluice_stun_msg *m, uint8_t *protocol)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, SLUICE_STUN_ATTR_REQUESTED_TRANSPORT, &a);
    if (rc < 0)
        return rc;
    if (a.len != 4)
        return SLUICE_ERR_MALFORMED;
    *protocol = a.value[0]; /* RFC 8656 §18.7: protocol, then RFFU */
    return 0;
}

int sluice_stun_get_address_family(const sluice_stun_msg *m, uint16_t type, uint8_t *family)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, type, &a);
    if (rc < 0)
        return rc;
    /* RFC 8656 §18.8, §18.11: family, then 24 reserved bits. */
    if (a.len != 4 || (a.value[0] != SLUICE_STUN_FAMILY_IPV4 && a.value[0] != SLUICE_STUN_FAMILY_IPV6))
        return SLUICE_ERR_MALFORMED;
    *family = a.value[0];
    return 0;
}

int sluice_stun_get_address_error_code(const sluice_stun_msg *m, uint8_t *family, int *code,
                                       const char **reason, size_t *reason_len)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, SLUICE_STUN_ATTR_ADDRESS_ERROR_CODE, &a);
    if (rc < 0)
        return rc;
    /* RFC 8656 §18.12: family, reserved, class, number, reason. */
    if (a.len < 4 || (a.value[0] != SLUICE_STUN_FAMILY_IPV4 && a.value[0] != SLUICE_STUN_FAMILY_IPV6))
        return SLUICE_ERR_MALFORMED;
    rc = decode_error(a.value, a.len, code, reason, reason_len);
    if (rc == 0 && family)
        *family = a.value[0];
    return rc;
}

int sluice_stun_get_even_port(const sluice_stun_msg *m, bool *reserve)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, SLUICE_STUN_ATTR_EVEN_PORT, &a);
    if (rc < 0)
        return rc;
    if (a.len != 1)
        return SLUICE_ERR_MALFORMED; /* RFC 8656 §18.6: one byte, R bit first */
    *reserve = (a.value[0] & 0x80) != 0;
    return 0;
}

int sluice_stun_get_icmp(const sluice_stun_msg *m, uint8_t *icmp_type, uint8_t *icmp_code,
                         uint32_t *error_data)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, SLUICE_STUN_ATTR_ICMP, &a);
    if (rc < 0)
        return rc;
    if (a.len != 8)
        return SLUICE_ERR_MALFORMED; /* RFC 8656 §18.13: reserved, type, code, data */
    *icmp_type = a.value[2];
    *icmp_code = a.value[3];
    *error_data = rd32(a.value + 4);
    return 0;
}

int sluice_stun_get_password_algorithm(const sluice_stun_msg *m, uint16_t *alg)
{
    sluice_stun_attr a;
    int rc = sluice_stun_find(m, SLUICE_STUN_ATTR_PASSWORD_ALGORITHM, &a);
    if (rc < 0)
        return rc;
    /* RFC 8489 §14.12: algorithm, parameters length, parameters (padded). */
    if (a.len < 4 || (size_t)rd16(a.value + 2) != a.len - 4u)
        return SLUICE_ERR_MALFORMED;
    *alg = rd16(a.value);
    return 0;
}

int sluice_stun_get_password_algorithms(const sluice_stun_msg *m, uint16_t *algs, size_t max)
{
    sluice_stun_attr a;
    size_t off = 0;
    int n = 0;
    int rc = sluice_stun_find(m, SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS, &a);
    if (rc < 0)
        return rc;
    /* RFC 8489 §14.11: a list of (algorithm, params length, params padded). */
    while (off < a.len) {
        size_t plen;
        if (a.len - off < 4)
            return SLUICE_ERR_MALFORMED;
        plen = ((size_t)rd16(a.value + off + 2) + 3) & ~(size_t)3;
        if (plen > a.len - off - 4)
            return SLUICE_ERR_MALFORMED;
        if ((size_t)n < max)
            algs[n] = rd16(a.value + off);
        n++;
        off += 4 + plen;
    }
    return n;
}

bool sluice_stun_nonce_features(const uint8_t *nonce, size_t len, uint32_t *features)
{
    uint32_t v = 0;
    /* RFC 8489 §9.2: "obMatJos2" then the 24-bit set as 4 base64 chars. */
    if (!nonce || len < SLUICE_STUN_NONCE_COOKIE_LEN || memcmp(nonce, SLUICE_STUN_NONCE_COOKIE, 9))
        return false;
    for (int i = 0; i < 4; i++) {
        int d = sluice_b64_value(nonce[9 + i], false);
        if (d < 0)
            return false;
        v = v << 6 | (uint32_t)d;
    }
    if (features)
        *features = v;
    return true;
}

void sluice_stun_nonce_cookie(uint32_t features, char out[SLUICE_STUN_NONCE_COOKIE_LEN])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    memcpy(out, SLUICE_STUN_NONCE_COOKIE, 9);
    for (int i = 0; i < 4; i++)
        out[9 + i] = b64[(features >> (18 - 6 * i)) & 0x3F];
}
