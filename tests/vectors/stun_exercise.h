/* SPDX-License-Identifier: MIT */
/* Drive every read-side STUN codec entry point over one datagram and check
 * the API's promises (return codes, views inside the datagram). Shared by
 * the guard-page test and the fuzz target; the includer defines
 * EXERCISE_FAIL(what) to record or abort on a broken promise. */
#ifndef SLUICE_TEST_STUN_EXERCISE_H
#define SLUICE_TEST_STUN_EXERCISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sluice/stun.h"

#ifndef EXERCISE_FAIL
#error "define EXERCISE_FAIL(what) before including stun_exercise.h"
#endif

#define EXERCISE_EXPECT(cond)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            EXERCISE_FAIL(#cond);                                                                  \
    } while (0)

/* A view [p, p + n) lies inside the datagram (n == 0 views may sit at the end). */
static inline bool exercise_inside(const uint8_t *data, size_t len, const void *p, size_t n)
{
    const uint8_t *q = (const uint8_t *)p;
    if (n == 0)
        return q == NULL || (q >= data && q <= data + len);
    return q != NULL && q >= data && q <= data + len && n <= (size_t)(data + len - q);
}

/* Typed getters return 0, NOT_FOUND exactly when the attribute is absent
 * from the attributes that count, else MALFORMED. */
static inline void exercise_getter_rc(const sluice_stun_msg *m, uint16_t type, int rc)
{
    bool present = sluice_stun_has(m, type);
    EXERCISE_EXPECT(rc == 0 || rc == SLUICE_ERR_NOT_FOUND || rc == SLUICE_ERR_MALFORMED);
    EXERCISE_EXPECT(present == (rc != SLUICE_ERR_NOT_FOUND));
}

static inline void exercise_addr_out(int rc, const sluice_addr *a)
{
    if (rc != 0)
        return;
    EXERCISE_EXPECT(a->family == SLUICE_AF_INET || a->family == SLUICE_AF_INET6);
    if (a->family == SLUICE_AF_INET) {
        for (int i = 4; i < 16; i++)
            EXERCISE_EXPECT(a->ip[i] == 0);
    }
}

static const uint16_t exercise_address_types[] = {
    SLUICE_STUN_ATTR_MAPPED_ADDRESS, SLUICE_STUN_ATTR_ALTERNATE_SERVER,
    SLUICE_STUN_ATTR_RESPONSE_ORIGIN, SLUICE_STUN_ATTR_OTHER_ADDRESS};
static const uint16_t exercise_xor_address_types[] = {SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS,
                                                      SLUICE_STUN_ATTR_XOR_PEER_ADDRESS,
                                                      SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS};
static const uint16_t exercise_u32_types[] = {
    SLUICE_STUN_ATTR_PRIORITY, SLUICE_STUN_ATTR_LIFETIME, SLUICE_STUN_ATTR_CHANGE_REQUEST,
    SLUICE_STUN_ATTR_CACHE_TIMEOUT, SLUICE_STUN_ATTR_CONNECTION_ID};
static const uint16_t exercise_u64_types[] = {SLUICE_STUN_ATTR_ICE_CONTROLLING,
                                              SLUICE_STUN_ATTR_ICE_CONTROLLED,
                                              SLUICE_STUN_ATTR_RESERVATION_TOKEN};
static const uint16_t exercise_bytes_types[] = {SLUICE_STUN_ATTR_USERNAME,
                                                SLUICE_STUN_ATTR_USERHASH,
                                                SLUICE_STUN_ATTR_REALM,
                                                SLUICE_STUN_ATTR_NONCE,
                                                SLUICE_STUN_ATTR_SOFTWARE,
                                                SLUICE_STUN_ATTR_DATA,
                                                SLUICE_STUN_ATTR_ALTERNATE_DOMAIN,
                                                SLUICE_STUN_ATTR_PADDING};

#define EXERCISE_N(a) (sizeof(a) / sizeof((a)[0]))

static inline bool exercise_is_integrity_type(uint16_t t)
{
    return t == SLUICE_STUN_ATTR_MESSAGE_INTEGRITY ||
           t == SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256 || t == SLUICE_STUN_ATTR_FINGERPRINT;
}

/* Every getter on a parsed message. */
static inline void exercise_getters(const sluice_stun_msg *m)
{
    const uint8_t *data = m->data;
    size_t len = m->len;
    sluice_addr a;
    uint32_t u32;
    uint64_t u64;
    const uint8_t *v;
    size_t vlen;
    int rc;

    for (size_t i = 0; i < EXERCISE_N(exercise_address_types); i++) {
        rc = sluice_stun_get_address(m, exercise_address_types[i], &a);
        exercise_getter_rc(m, exercise_address_types[i], rc);
        exercise_addr_out(rc, &a);
    }
    for (size_t i = 0; i < EXERCISE_N(exercise_xor_address_types); i++) {
        rc = sluice_stun_get_xor_address(m, exercise_xor_address_types[i], &a);
        exercise_getter_rc(m, exercise_xor_address_types[i], rc);
        exercise_addr_out(rc, &a);
    }
    for (size_t i = 0; i < EXERCISE_N(exercise_u32_types); i++) {
        rc = sluice_stun_get_u32(m, exercise_u32_types[i], &u32);
        exercise_getter_rc(m, exercise_u32_types[i], rc);
    }
    for (size_t i = 0; i < EXERCISE_N(exercise_u64_types); i++) {
        rc = sluice_stun_get_u64(m, exercise_u64_types[i], &u64);
        exercise_getter_rc(m, exercise_u64_types[i], rc);
    }
    for (size_t i = 0; i < EXERCISE_N(exercise_bytes_types); i++) {
        v = NULL;
        vlen = 0;
        rc = sluice_stun_get_bytes(m, exercise_bytes_types[i], &v, &vlen);
        exercise_getter_rc(m, exercise_bytes_types[i], rc);
        if (rc == 0) {
            EXERCISE_EXPECT(exercise_inside(data, len, v, vlen));
            /* RFC 8489 §14.3, §14.4, §14.8, §14.9, §14.10 length limits */
            if (exercise_bytes_types[i] == SLUICE_STUN_ATTR_USERNAME)
                EXERCISE_EXPECT(vlen <= 512);
            if (exercise_bytes_types[i] == SLUICE_STUN_ATTR_USERHASH)
                EXERCISE_EXPECT(vlen == 32);
            if (exercise_bytes_types[i] == SLUICE_STUN_ATTR_REALM ||
                exercise_bytes_types[i] == SLUICE_STUN_ATTR_NONCE ||
                exercise_bytes_types[i] == SLUICE_STUN_ATTR_SOFTWARE)
                EXERCISE_EXPECT(vlen <= SLUICE_STUN_MAX_TEXT);
            if (exercise_bytes_types[i] == SLUICE_STUN_ATTR_NONCE) {
                uint32_t features = 0xffffffffu;
                if (sluice_stun_nonce_features(v, vlen, &features))
                    EXERCISE_EXPECT(features <= 0xffffffu);
            }
        }
    }

    {
        int code = -1;
        const char *reason = NULL;
        size_t reason_len = 0;
        rc = sluice_stun_get_error_code(m, &code, &reason, &reason_len);
        exercise_getter_rc(m, SLUICE_STUN_ATTR_ERROR_CODE, rc);
        if (rc == 0) {
            EXERCISE_EXPECT(code >= 300 && code <= 699); /* RFC 8489 §14.8 */
            EXERCISE_EXPECT(exercise_inside(data, len, reason, reason_len));
            EXERCISE_EXPECT(reason_len <= SLUICE_STUN_MAX_TEXT);
        }
    }
    {
        uint16_t types[SLUICE_STUN_MAX_UNKNOWN];
        rc = sluice_stun_get_unknown_attributes(m, types, SLUICE_STUN_MAX_UNKNOWN);
        EXERCISE_EXPECT(rc >= 0 || rc == SLUICE_ERR_NOT_FOUND || rc == SLUICE_ERR_MALFORMED);
        EXERCISE_EXPECT(sluice_stun_has(m, SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES) ==
                        (rc != SLUICE_ERR_NOT_FOUND));
        rc = sluice_stun_get_unknown_attributes(m, NULL, 0);
        EXERCISE_EXPECT(rc >= 0 || rc == SLUICE_ERR_NOT_FOUND || rc == SLUICE_ERR_MALFORMED);
    }
    {
        uint16_t ch;
        rc = sluice_stun_get_channel_number(m, &ch);
        exercise_getter_rc(m, SLUICE_STUN_ATTR_CHANNEL_NUMBER, rc);
    }
    {
        uint8_t proto;
        rc = sluice_stun_get_requested_transport(m, &proto);
        exercise_getter_rc(m, SLUICE_STUN_ATTR_REQUESTED_TRANSPORT, rc);
    }
    {
        static const uint16_t fam_types[] = {SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY,
                                             SLUICE_STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY};
        for (size_t i = 0; i < EXERCISE_N(fam_types); i++) {
            uint8_t fam = 0;
            rc = sluice_stun_get_address_family(m, fam_types[i], &fam);
            /* Any family value may come back: a server answers an unknown
             * one with 440 (RFC 8656 §7.2). */
            exercise_getter_rc(m, fam_types[i], rc);
        }
    }
    {
        uint8_t fam;
        int code;
        const char *reason = NULL;
        size_t reason_len = 0;
        rc = sluice_stun_get_address_error_code(m, &fam, &code, &reason, &reason_len);
        exercise_getter_rc(m, SLUICE_STUN_ATTR_ADDRESS_ERROR_CODE, rc);
        if (rc == 0)
            EXERCISE_EXPECT(exercise_inside(data, len, reason, reason_len));
    }
    {
        bool reserve;
        rc = sluice_stun_get_even_port(m, &reserve);
        exercise_getter_rc(m, SLUICE_STUN_ATTR_EVEN_PORT, rc);
    }
    {
        uint8_t it, ic;
        uint32_t ed;
        rc = sluice_stun_get_icmp(m, &it, &ic, &ed);
        exercise_getter_rc(m, SLUICE_STUN_ATTR_ICMP, rc);
    }
    {
        uint16_t alg;
        rc = sluice_stun_get_password_algorithm(m, &alg);
        exercise_getter_rc(m, SLUICE_STUN_ATTR_PASSWORD_ALGORITHM, rc);
    }
    {
        uint16_t algs[8];
        rc = sluice_stun_get_password_algorithms(m, algs, 8);
        EXERCISE_EXPECT(rc >= 0 || rc == SLUICE_ERR_NOT_FOUND || rc == SLUICE_ERR_MALFORMED);
        EXERCISE_EXPECT(sluice_stun_has(m, SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS) ==
                        (rc != SLUICE_ERR_NOT_FOUND));
        rc = sluice_stun_get_password_algorithms(m, NULL, 0);
        EXERCISE_EXPECT(rc >= 0 || rc == SLUICE_ERR_NOT_FOUND || rc == SLUICE_ERR_MALFORMED);
    }
}

/* Iterate the attributes that count; every view inside the datagram, find()
 * returns the first of each type, decoders agree with the getters' codes. */
static inline void exercise_iterate(const sluice_stun_msg *m)
{
    const uint8_t *data = m->data;
    size_t len = m->len;
    sluice_stun_attr_iter it;
    sluice_stun_attr at;
    const uint8_t *prev_end = data + SLUICE_STUN_HEADER_LEN;
    size_t n = 0;

    sluice_stun_attr_iter_init(&it, m);
    while (sluice_stun_attr_next(&it, &at)) {
        sluice_stun_attr first;
        sluice_addr a;
        int rc;

        EXERCISE_EXPECT(++n <= len / 4); /* every attribute takes >= 4 bytes */
        if (n > len / 4)
            break;
        EXERCISE_EXPECT(exercise_inside(data, len, at.value, at.len));
        if (at.value) {
            /* In order, past the header and the previous attribute. */
            EXERCISE_EXPECT(at.value >= prev_end + 4);
            prev_end = at.value + at.len;
        }
        EXERCISE_EXPECT(sluice_stun_has(m, at.type));
        EXERCISE_EXPECT(sluice_stun_find(m, at.type, &first) == 0);
        EXERCISE_EXPECT(first.type == at.type && first.value <= at.value);
        (void)sluice_stun_attr_name(at.type);
        (void)sluice_stun_attr_known(at.type);

        switch (at.type) {
        case SLUICE_STUN_ATTR_MAPPED_ADDRESS:
        case SLUICE_STUN_ATTR_ALTERNATE_SERVER:
        case SLUICE_STUN_ATTR_RESPONSE_ORIGIN:
        case SLUICE_STUN_ATTR_OTHER_ADDRESS:
            rc = sluice_stun_decode_address(&at, &a);
            EXERCISE_EXPECT(rc == 0 || rc == SLUICE_ERR_MALFORMED);
            exercise_addr_out(rc, &a);
            break;
        case SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS:
        case SLUICE_STUN_ATTR_XOR_PEER_ADDRESS:
        case SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS:
            rc = sluice_stun_decode_xor_address(m, &at, &a);
            EXERCISE_EXPECT(rc == 0 || rc == SLUICE_ERR_MALFORMED);
            exercise_addr_out(rc, &a);
            break;
        default:
            break;
        }
    }
}

/* Parse data[0..len) and, when it parses, iterate, call every getter and
 * check integrity with key (may be NULL). Returns the parse result; *out
 * (may be NULL) receives the view. */
static inline int exercise_stun(const uint8_t *data, size_t len, const sluice_stun_key *key,
                                sluice_stun_msg *out)
{
    sluice_stun_msg m;
    int rc, frame;
    bool maybe;

    memset(&m, 0, sizeof m);
    rc = sluice_stun_parse(&m, data, len);
    EXERCISE_EXPECT(rc == 0 || rc == SLUICE_ERR_TRUNCATED || rc == SLUICE_ERR_NOT_STUN ||
                    rc == SLUICE_ERR_MALFORMED || rc == SLUICE_ERR_FINGERPRINT);
    maybe = sluice_stun_is_stun(data, len);
    frame = sluice_stun_frame_length(data, len);
    EXERCISE_EXPECT(frame >= 0 || frame == SLUICE_ERR_NOT_STUN || frame == SLUICE_ERR_MALFORMED);
    EXERCISE_EXPECT(frame == 0 || frame >= SLUICE_STUN_HEADER_LEN || frame < 0);
    if (out)
        *out = m;
    if (rc != 0)
        return rc;

    /* The demultiplexer only claims first bytes 0..3 (RFC 7983 §7; methods
     * 0x100-0xFFF are reserved to avoid DTLS), the parser takes any method. */
    EXERCISE_EXPECT(maybe || data[0] > 3);
    EXERCISE_EXPECT(frame == (int)len);
    EXERCISE_EXPECT(m.data == data && m.len == len);
    EXERCISE_EXPECT(len >= SLUICE_STUN_HEADER_LEN && len % 4 == 0);
    EXERCISE_EXPECT(m.method == sluice_stun_type_method(m.type));
    EXERCISE_EXPECT(m.cls == sluice_stun_type_class(m.type));
    EXERCISE_EXPECT(sluice_stun_type(m.method, m.cls) == m.type);
    EXERCISE_EXPECT(sluice_stun_txid(&m) == data + 8);
    EXERCISE_EXPECT(m.integrity_off == 0 || (m.integrity_off >= 20 && m.integrity_off + 24 <= len));
    EXERCISE_EXPECT(m.integrity256_off == 0 ||
                    (m.integrity256_off >= 20 && m.integrity256_off + 20 <= len));
    EXERCISE_EXPECT(m.fingerprint_off == 0 || m.fingerprint_off + 8 == len);
    EXERCISE_EXPECT(m.attrs_end >= 20 && m.attrs_end <= len);
    for (unsigned i = 0; i < m.n_unknown && i < SLUICE_STUN_MAX_UNKNOWN; i++)
        EXERCISE_EXPECT(m.unknown[i] < 0x8000); /* RFC 8489 §14 */
    (void)sluice_stun_method_name(m.method);
    (void)sluice_stun_class_name(m.cls);

    exercise_iterate(&m);
    exercise_getters(&m);

    if (key) {
        int i1 = sluice_stun_check_integrity_sha1(&m, key);
        int i2 = sluice_stun_check_integrity_sha256(&m, key);
        int ia = sluice_stun_check_integrity(&m, key);
        EXERCISE_EXPECT(i1 == 0 || i1 == SLUICE_ERR_INTEGRITY || i1 == SLUICE_ERR_NOT_FOUND);
        EXERCISE_EXPECT(i2 == 0 || i2 == SLUICE_ERR_INTEGRITY || i2 == SLUICE_ERR_NOT_FOUND);
        EXERCISE_EXPECT((i1 == SLUICE_ERR_NOT_FOUND) == (m.integrity_off == 0));
        EXERCISE_EXPECT((i2 == SLUICE_ERR_NOT_FOUND) == (m.integrity256_off == 0));
        /* RFC 8489 §9.2.4: MESSAGE-INTEGRITY-SHA256 wins when present. */
        EXERCISE_EXPECT(ia == (m.integrity256_off ? i2 : i1));
    }
    if (out)
        *out = m;
    return 0;
}

#endif
