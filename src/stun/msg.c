/* SPDX-License-Identifier: MIT */
/* STUN message parsing and validation (RFC 8489 §5, §14): one pass over the
 * caller's bytes, no allocation, no copies, no crypto. */
#include <string.h>

#include "common/internal.h"
#include "sluice/stun.h"

bool sluice_stun_is_stun(const uint8_t *data, size_t len)
{
    /* RFC 8489 §5: top two bits zero, cookie, length a multiple of 4;
     * RFC 7983 §7: first byte 0..3. */
    return data && len >= SLUICE_STUN_HEADER_LEN && data[0] < 4 &&
           rd32(data + 4) == SLUICE_STUN_MAGIC_COOKIE && (rd16(data + 2) & 3) == 0 &&
           (size_t)rd16(data + 2) + SLUICE_STUN_HEADER_LEN == len;
}

int sluice_stun_frame_length(const uint8_t *data, size_t len)
{
    if (!data && len)
        return SLUICE_ERR_INVALID;
    if (len < SLUICE_STUN_HEADER_LEN)
        return 0;
    if ((data[0] & 0xC0) || rd32(data + 4) != SLUICE_STUN_MAGIC_COOKIE)
        return SLUICE_ERR_NOT_STUN;
    if (rd16(data + 2) & 3)
        return SLUICE_ERR_MALFORMED;
    return SLUICE_STUN_HEADER_LEN + rd16(data + 2);
}

/* Comprehension-required attribute types this codec understands. */
static bool known_required(uint16_t type)
{
    switch (type) {
    case SLUICE_STUN_ATTR_MAPPED_ADDRESS:
    case SLUICE_STUN_ATTR_CHANGE_REQUEST:
    case SLUICE_STUN_ATTR_USERNAME:
    case SLUICE_STUN_ATTR_MESSAGE_INTEGRITY:
    case SLUICE_STUN_ATTR_ERROR_CODE:
    case SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES:
    case SLUICE_STUN_ATTR_CHANNEL_NUMBER:
    case SLUICE_STUN_ATTR_LIFETIME:
    case SLUICE_STUN_ATTR_XOR_PEER_ADDRESS:
    case SLUICE_STUN_ATTR_DATA:
    case SLUICE_STUN_ATTR_REALM:
    case SLUICE_STUN_ATTR_NONCE:
    case SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS:
    case SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY:
    case SLUICE_STUN_ATTR_EVEN_PORT:
    case SLUICE_STUN_ATTR_REQUESTED_TRANSPORT:
    case SLUICE_STUN_ATTR_DONT_FRAGMENT:
    case SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
    case SLUICE_STUN_ATTR_PASSWORD_ALGORITHM:
    case SLUICE_STUN_ATTR_USERHASH:
    case SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS:
    case SLUICE_STUN_ATTR_RESERVATION_TOKEN:
    case SLUICE_STUN_ATTR_PRIORITY:
    case SLUICE_STUN_ATTR_USE_CANDIDATE:
    case SLUICE_STUN_ATTR_PADDING:
    case SLUICE_STUN_ATTR_RESPONSE_PORT:
    case SLUICE_STUN_ATTR_CONNECTION_ID:
        return true;
    }
    return false;
}

int sluice_stun_parse(sluice_stun_msg *m, const uint8_t *data, size_t len)
{
    size_t mlen, off;
    int seen = 0; /* 1: after MI, 2: after MI-SHA256, 3: after FINGERPRINT */

    if (!m || (!data && len))
        return SLUICE_ERR_INVALID;
    if (len < SLUICE_STUN_HEADER_LEN)
        return SLUICE_ERR_TRUNCATED;
    /* RFC 8489 §5: the most significant two bits are zero; magic cookie. */
    if ((data[0] & 0xC0) || rd32(data + 4) != SLUICE_STUN_MAGIC_COOKIE)
        return SLUICE_ERR_NOT_STUN;
    mlen = rd16(data + 2);
    if (mlen & 3)
        return SLUICE_ERR_MALFORMED; /* §5: always a multiple of 4 */
    if (SLUICE_STUN_HEADER_LEN + mlen > len)
        return SLUICE_ERR_TRUNCATED;
    if (SLUICE_STUN_HEADER_LEN + mlen < len)
        return SLUICE_ERR_MALFORMED; /* trailing bytes in the datagram */

    m->data = data;
    m->len = len;
    m->type = rd16(data);
    m->method = sluice_stun_type_method(m->type);
    m->cls = sluice_stun_type_class(m->type);
    m->integrity_off = m->integrity256_off = m->fingerprint_off = 0;
    m->attrs_end = (uint32_t)len;
    m->n_unknown = 0;

    for (off = SLUICE_STUN_HEADER_LEN; off < len;) {
        uint16_t type, alen;
        size_t padded;

        if (len - off < 4)
            return SLUICE_ERR_MALFORMED; /* cannot happen with mlen % 4 == 0 */
        type = rd16(data + off);
        alen = rd16(data + off + 2);
        padded = ((size_t)alen + 3) & ~(size_t)3;
        /* §14: an attribute must fit in the message the header announced. */
        if (padded > len - off - 4)
            return SLUICE_ERR_MALFORMED;
        if (seen == 3)
            return SLUICE_ERR_MALFORMED; /* §14.7: FINGERPRINT is the last attribute */

        switch (type) {
        case SLUICE_STUN_ATTR_MESSAGE_INTEGRITY:
            if (seen)
                break; /* a second integrity after MI: ignored per §14.5 */
            if (alen != 20)
                return SLUICE_ERR_MALFORMED;
            m->integrity_off = (uint32_t)off;
            m->attrs_end = (uint32_t)off;
            seen = 1;
            break;
        case SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
            if (seen >= 2)
                break;
            /* §14.6: 16 to 32 bytes, a multiple of 4. */
            if (alen < 16 || alen > 32 || (alen & 3))
                return SLUICE_ERR_MALFORMED;
            m->integrity256_off = (uint32_t)off;
            if (!seen)
                m->attrs_end = (uint32_t)off;
            seen = 2;
            break;
        case SLUICE_STUN_ATTR_FINGERPRINT: {
            uint32_t crc;
            if (alen != 4)
                return SLUICE_ERR_MALFORMED;
            if (off + 8 != len)
                return SLUICE_ERR_MALFORMED; /* §14.7: must be last */
            /* §14.7: CRC-32 of the message up to (excluding) this
             * attribute, XOR 0x5354554e. The header length already
             * includes the attribute, as the rule requires. */
            crc = sluice_crc32(0, data, off) ^ 0x5354554Eu;
            if (crc != rd32(data + off + 4))
                return SLUICE_ERR_FINGERPRINT;
            m->fingerprint_off = (uint32_t)off;
            if (!seen)
                m->attrs_end = (uint32_t)off;
            seen = 3;
            break;
        }
        default:
            /* §14.5: attributes after MESSAGE-INTEGRITY other than the two
             * above are ignored: not looked up, not reported unknown. */
            if (!seen && type < 0x8000 && !known_required(type)) {
                if (m->n_unknown < SLUICE_STUN_MAX_UNKNOWN)
                    m->unknown[m->n_unknown] = type;
                if (m->n_unknown < UINT16_MAX)
                    m->n_unknown++;
            }
            break;
        }
        off += 4 + padded;
    }
    return 0;
}

void sluice_stun_attr_iter_init(sluice_stun_attr_iter *it, const sluice_stun_msg *m)
{
    it->m = m;
    it->off = SLUICE_STUN_HEADER_LEN;
}

bool sluice_stun_attr_next(sluice_stun_attr_iter *it, sluice_stun_attr *a)
{
    const sluice_stun_msg *m = it->m;
    uint16_t alen;

    if (it->off + 4 > m->attrs_end)
        return false;
    a->type = rd16(m->data + it->off);
    alen = rd16(m->data + it->off + 2);
    a->len = alen;
    a->value = m->data + it->off + 4;
    it->off += 4 + (((uint32_t)alen + 3) & ~3u);
    return true;
}

int sluice_stun_find(const sluice_stun_msg *m, uint16_t type, sluice_stun_attr *a)
{
    const uint8_t *d = m->data;
    uint32_t off = SLUICE_STUN_HEADER_LEN, end = m->attrs_end;

    /* Integrity and fingerprint live at or past attrs_end: the parser
     * recorded where. */
    switch (type) {
    case SLUICE_STUN_ATTR_MESSAGE_INTEGRITY:
        off = m->integrity_off;
        end = off + 4;
        break;
    case SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
        off = m->integrity256_off;
        end = off + 4;
        break;
    case SLUICE_STUN_ATTR_FINGERPRINT:
        off = m->fingerprint_off;
        end = off + 4;
        break;
    }
    if (!off)
        return SLUICE_ERR_NOT_FOUND;

    /* The parser validated every bound up to attrs_end. */
    while (off + 4 <= end) {
        uint16_t t = rd16(d + off), alen = rd16(d + off + 2);
        if (t == type) {
            a->type = t;
            a->len = alen;
            a->value = d + off + 4;
            return 0;
        }
        off += 4 + (((uint32_t)alen + 3) & ~3u);
    }
    return SLUICE_ERR_NOT_FOUND;
}

bool sluice_stun_has(const sluice_stun_msg *m, uint16_t type)
{
    sluice_stun_attr a;
    return sluice_stun_find(m, type, &a) == 0;
}
