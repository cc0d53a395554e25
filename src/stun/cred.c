/* SPDX-License-Identifier: MIT */
/* STUN credentials (RFC 8489 §9): short- and long-term keys, USERHASH,
 * and constant-time MESSAGE-INTEGRITY(-SHA256) verification. */
#include <string.h>

#include "common/internal.h"
#include "sluice/stun.h"

int sluice_stun_key_short_term(sluice_stun_key *key, const char *password, size_t len)
{
    /* RFC 8489 §9.1.1: key = OpaqueString(password); the caller prepares. */
    if (!key || (!password && len))
        return SLUICE_ERR_INVALID;
    return sluice_stun_key_raw(key, (const uint8_t *)password, len);
}

int sluice_stun_key_long_term(sluice_stun_key *key, uint16_t alg, const char *username,
                              size_t ulen, const char *realm, size_t rlen, const char *password,
                              size_t plen)
{
    /* RFC 8489 §9.2.2: key = H(username ":" OpaqueString(realm) ":"
     * OpaqueString(password)), H = MD5 (16 bytes) or SHA-256 (32 bytes). */
    const uint8_t *parts[5] = {(const uint8_t *)username, (const uint8_t *)":",
                               (const uint8_t *)realm, (const uint8_t *)":",
                               (const uint8_t *)password};
    size_t lens[5] = {ulen, 1, rlen, 1, plen};
    uint8_t k[32];
    int rc;

    if (!key || (!username && ulen) || (!realm && rlen) || (!password && plen))
        return SLUICE_ERR_INVALID;
    if (alg == SLUICE_STUN_PWALG_MD5)
        rc = sluice_md5(parts, lens, 5, k);
    else if (alg == SLUICE_STUN_PWALG_SHA256)
        rc = sluice_sha256(parts, lens, 5, k);
    else
        return SLUICE_ERR_UNSUPPORTED;
    if (rc == 0)
        rc = sluice_stun_key_raw(key, k, alg == SLUICE_STUN_PWALG_MD5 ? 16 : 32);
    memset(k, 0, sizeof k);
    return rc;
}

int sluice_stun_userhash(uint8_t out[32], const char *username, size_t ulen, const char *realm,
                         size_t rlen)
{
    /* RFC 8489 §14.4 */
    const uint8_t *parts[3] = {(const uint8_t *)username, (const uint8_t *)":",
                               (const uint8_t *)realm};
    size_t lens[3] = {ulen, 1, rlen};
    if (!out || (!username && ulen) || (!realm && rlen))
        return SLUICE_ERR_INVALID;
    return sluice_sha256(parts, lens, 3, out);
}

/* HMAC over the message up to the integrity attribute at off, with the
 * header's length field set as if the message ended right after that
 * attribute (RFC 8489 §14.5, §14.6). */
static int mac_at(const sluice_stun_msg *m, const sluice_stun_key *key, uint32_t off,
                  bool sha256, uint8_t *out)
{
    uint8_t hdr[SLUICE_STUN_HEADER_LEN];
    uint16_t alen = rd16(m->data + off + 2);
    size_t adj = off + 4 + alen - SLUICE_STUN_HEADER_LEN;

    memcpy(hdr, m->data, SLUICE_STUN_HEADER_LEN);
    wr16(hdr + 2, (uint16_t)adj);
    if (sha256)
        return sluice_hmac_sha256(key, hdr, sizeof hdr, m->data + SLUICE_STUN_HEADER_LEN,
                                  off - SLUICE_STUN_HEADER_LEN, out);
    return sluice_hmac_sha1(key, hdr, sizeof hdr, m->data + SLUICE_STUN_HEADER_LEN,
                            off - SLUICE_STUN_HEADER_LEN, out);
}

int sluice_stun_check_integrity_sha1(const sluice_stun_msg *m, const sluice_stun_key *key)
{
    uint8_t mac[20];
    int rc;

    if (!m || !key)
        return SLUICE_ERR_INVALID;
    if (!m->integrity_off)
        return SLUICE_ERR_NOT_FOUND;
    rc = mac_at(m, key, m->integrity_off, false, mac);
    if (rc < 0)
        return rc;
    return sluice_ct_equal(mac, m->data + m->integrity_off + 4, 20) ? 0 : SLUICE_ERR_INTEGRITY;
}

int sluice_stun_check_integrity_sha256(const sluice_stun_msg *m, const sluice_stun_key *key)
{
    uint8_t mac[32];
    uint16_t alen;
    int rc;

    if (!m || !key)
        return SLUICE_ERR_INVALID;
    if (!m->integrity256_off)
        return SLUICE_ERR_NOT_FOUND;
    rc = mac_at(m, key, m->integrity256_off, true, mac);
    if (rc < 0)
        return rc;
    /* §14.6: the value may be truncated to 16..32 bytes (checked by parse). */
    alen = rd16(m->data + m->integrity256_off + 2);
    return sluice_ct_equal(mac, m->data + m->integrity256_off + 4, alen) ? 0
                                                                         : SLUICE_ERR_INTEGRITY;
}

int sluice_stun_check_integrity(const sluice_stun_msg *m, const sluice_stun_key *key)
{
    if (!m || !key)
        return SLUICE_ERR_INVALID;
    /* RFC 8489 §9.1.3, §9.2.4: prefer MESSAGE-INTEGRITY-SHA256. */
    if (m->integrity256_off)
        return sluice_stun_check_integrity_sha256(m, key);
    return sluice_stun_check_integrity_sha1(m, key);
}
