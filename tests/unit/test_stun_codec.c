/* SPDX-License-Identifier: MIT */
/* Unit tests for the STUN codec (src/stun/msg.c, attr.c, names.c,
 * src/common/crc32.c, error.c): type encoding, every put/get pair, parsing
 * rules, names, CRC-32. Writer rules are in test_stun_writer.c. */
#include "stun_codec_util.h"


/* ------------------------------------------------------------------------ */
/* Message type (RFC 8489 §5) */

static const uint16_t all_methods[] = {
    SLUICE_STUN_BINDING,          SLUICE_STUN_ALLOCATE,      SLUICE_STUN_REFRESH,
    SLUICE_STUN_SEND,             SLUICE_STUN_DATA,          SLUICE_STUN_CREATE_PERMISSION,
    SLUICE_STUN_CHANNEL_BIND,     SLUICE_STUN_CONNECT,       SLUICE_STUN_CONNECTION_BIND,
    SLUICE_STUN_CONNECTION_ATTEMPT,
};

static void test_type_table(void)
{
    static const struct {
        uint16_t method;
        sluice_stun_class cls;
        uint16_t type;
    } cases[] = {
        {SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, 0x0001},
        {SLUICE_STUN_BINDING, SLUICE_STUN_INDICATION, 0x0011},
        {SLUICE_STUN_BINDING, SLUICE_STUN_SUCCESS, 0x0101},
        {SLUICE_STUN_BINDING, SLUICE_STUN_ERROR, 0x0111},
        {SLUICE_STUN_ALLOCATE, SLUICE_STUN_REQUEST, 0x0003},
        {SLUICE_STUN_ALLOCATE, SLUICE_STUN_SUCCESS, 0x0103},
        {SLUICE_STUN_ALLOCATE, SLUICE_STUN_ERROR, 0x0113},
        {SLUICE_STUN_REFRESH, SLUICE_STUN_REQUEST, 0x0004},
        {SLUICE_STUN_REFRESH, SLUICE_STUN_SUCCESS, 0x0104},
        {SLUICE_STUN_SEND, SLUICE_STUN_INDICATION, 0x0016},
        {SLUICE_STUN_DATA, SLUICE_STUN_INDICATION, 0x0017},
        {SLUICE_STUN_CREATE_PERMISSION, SLUICE_STUN_REQUEST, 0x0008},
        {SLUICE_STUN_CREATE_PERMISSION, SLUICE_STUN_ERROR, 0x0118},
        {SLUICE_STUN_CHANNEL_BIND, SLUICE_STUN_REQUEST, 0x0009},
        {SLUICE_STUN_CHANNEL_BIND, SLUICE_STUN_SUCCESS, 0x0109},
        {SLUICE_STUN_CONNECT, SLUICE_STUN_REQUEST, 0x000A},
        {SLUICE_STUN_CONNECTION_BIND, SLUICE_STUN_REQUEST, 0x000B},
        {SLUICE_STUN_CONNECTION_ATTEMPT, SLUICE_STUN_INDICATION, 0x001C},
        /* Bit placement: M11..M7 C1 M6..M4 C0 M3..M0. */
        {0x0FFF, SLUICE_STUN_REQUEST, 0x3EEF},
        {0x0FFF, SLUICE_STUN_ERROR, 0x3FFF},
        {0x0010, SLUICE_STUN_REQUEST, 0x0020},
        {0x0080, SLUICE_STUN_REQUEST, 0x0200},
        {0x0000, SLUICE_STUN_ERROR, 0x0110},
    };

    for (size_t i = 0; i < N(cases); i++) {
        CHECK_EQ(sluice_stun_type(cases[i].method, cases[i].cls), cases[i].type);
        CHECK_EQ(sluice_stun_type_method(cases[i].type), cases[i].method);
        CHECK_EQ(sluice_stun_type_class(cases[i].type), cases[i].cls);
    }
}

static void test_type_round_trip(void)
{
    static uint8_t seen[0x4000];

    memset(seen, 0, sizeof seen);
    /* Every 12-bit method and every class: round trip, top bits clear,
     * and no two pairs share a type. */
    for (uint16_t m = 0; m < 0x1000; m++) {
        for (int c = 0; c < 4; c++) {
            uint16_t t = sluice_stun_type(m, (sluice_stun_class)c);
            if ((t & 0xC000) || seen[t & 0x3FFF] || sluice_stun_type_method(t) != m ||
                sluice_stun_type_class(t) != (sluice_stun_class)c) {
                CHECK_EQ(t & 0xC000, 0);
                CHECK_EQ(seen[t & 0x3FFF], 0);
                CHECK_EQ(sluice_stun_type_method(t), m);
                CHECK_EQ(sluice_stun_type_class(t), c);
            }
            seen[t & 0x3FFF] = 1;
        }
    }
    for (size_t i = 0; i < 0x4000; i++)
        if (!seen[i])
            CHECK(seen[i]); /* bijective on 14 bits */

    /* The writer and parser carry the type unchanged. */
    for (size_t i = 0; i < N(all_methods); i++) {
        for (int c = 0; c < 4; c++) {
            uint16_t t = sluice_stun_type(all_methods[i], (sluice_stun_class)c);
            sluice_stun_msg m;
            CHECK_EQ(sluice_stun_writer_init(&w, buf, sizeof buf, t, txid), 0);
            CHECK_EQ(sluice_stun_parse(&m, buf, SLUICE_STUN_HEADER_LEN), 0);
            CHECK_EQ(m.type, t);
            CHECK_EQ(m.method, all_methods[i]);
            CHECK_EQ(m.cls, c);
            CHECK_MEM(sluice_stun_txid(&m), txid, 12);
            CHECK_EQ(be32(buf + 4), SLUICE_STUN_MAGIC_COOKIE);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Addresses (RFC 8489 §14.1, §14.2) */

static const char *const addr_texts[] = {
    "192.0.2.1:32853", "0.0.0.0:0", "255.255.255.255:65535", "10.1.2.3:3478",
    "[2001:db8:1234:5678:11:2233:4455:6677]:32853", "[::]:0", "[::1]:1",
    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
};

static void test_address_round_trip(void)
{
    static const uint16_t plain[] = {SLUICE_STUN_ATTR_MAPPED_ADDRESS,
                                     SLUICE_STUN_ATTR_ALTERNATE_SERVER,
                                     SLUICE_STUN_ATTR_RESPONSE_ORIGIN,
                                     SLUICE_STUN_ATTR_OTHER_ADDRESS};
    static const uint16_t xored[] = {SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS,
                                     SLUICE_STUN_ATTR_XOR_PEER_ADDRESS,
                                     SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS};

    for (size_t i = 0; i < N(addr_texts); i++) {
        sluice_addr a, got;
        sluice_stun_msg m;
        sluice_stun_attr at;
        size_t alen;

        CHECK_EQ(sluice_addr_parse(&a, addr_texts[i], 0), 0);
        alen = a.family == SLUICE_AF_INET ? 8 : 20;
        for (size_t t = 0; t < N(plain); t++) {
            begin();
            CHECK_EQ(sluice_stun_put_address(&w, plain[t], &a), 0);
            CHECK_EQ(finish(&m), 0);
            check_single_attr(&m, plain[t], alen);
            CHECK_EQ(buf[24], 0);
            CHECK_EQ(buf[25], a.family == SLUICE_AF_INET ? 1 : 2);
            CHECK_EQ(be16(buf + 26), a.port);
            CHECK_MEM(buf + 28, a.ip, alen - 4);
            memset(&got, 0x55, sizeof got);
            CHECK_EQ(sluice_stun_get_address(&m, plain[t], &got), 0);
            CHECK(sluice_addr_equal(&got, &a));
            CHECK_EQ(sluice_stun_find(&m, plain[t], &at), 0);
            CHECK_EQ(sluice_stun_decode_address(&at, &got), 0);
            CHECK(sluice_addr_equal(&got, &a));
        }
        for (size_t t = 0; t < N(xored); t++) {
            begin();
            CHECK_EQ(sluice_stun_put_xor_address(&w, xored[t], &a), 0);
            CHECK_EQ(finish(&m), 0);
            check_single_attr(&m, xored[t], alen);
            /* On the wire: port XOR 0x2112, address XOR cookie || txid. */
            CHECK_EQ(be16(buf + 26), a.port ^ 0x2112);
            for (size_t k = 0; k < alen - 4; k++)
                CHECK_EQ(buf[28 + k], a.ip[k] ^ buf[4 + k]);
            memset(&got, 0x55, sizeof got);
            CHECK_EQ(sluice_stun_get_xor_address(&m, xored[t], &got), 0);
            CHECK(sluice_addr_equal(&got, &a));
            CHECK_EQ(sluice_stun_find(&m, xored[t], &at), 0);
            CHECK_EQ(sluice_stun_decode_xor_address(&m, &at, &got), 0);
            CHECK(sluice_addr_equal(&got, &a));
        }
    }
}

/* The XOR results of RFC 5769 §2.2 and §2.3, produced by the writer. */
static void test_xor_address_wire(void)
{
    static const uint8_t v4[] = {0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43};
    static const uint8_t v6[] = {0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3,
                                 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9};
    sluice_addr a;

    CHECK_EQ(sluice_addr_parse(&a, addr_texts[0], 0), 0);
    begin();
    CHECK_EQ(sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &a), 0);
    CHECK_MEM(buf + 24, v4, sizeof v4);
    CHECK_EQ(sluice_addr_parse(&a, addr_texts[4], 0), 0);
    begin();
    CHECK_EQ(sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &a), 0);
    CHECK_MEM(buf + 24, v6, sizeof v6);
}

static void test_address_invalid(void)
{
    sluice_addr a;
    uint8_t bad[32] = {0};
    sluice_stun_msg m;

    memset(&a, 0, sizeof a); /* no family */
    begin();
    CHECK_EQ(sluice_stun_put_address(&w, SLUICE_STUN_ATTR_MAPPED_ADDRESS, &a), SLUICE_ERR_INVALID);
    CHECK_EQ(w.len, SLUICE_STUN_HEADER_LEN);
    begin();
    CHECK_EQ(sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, NULL),
             SLUICE_ERR_INVALID);

    /* Decoding: family 1 with 20 bytes, family 2 with 8, family 3, short. */
    static const struct {
        uint8_t family;
        size_t len;
    } cases[] = {{1, 20}, {2, 8}, {3, 8}, {0, 8}, {1, 4}, {1, 12}, {2, 16}, {2, 24}, {1, 0}};
    for (size_t i = 0; i < N(cases); i++) {
        sluice_addr got;
        bad[1] = cases[i].family;
        begin();
        sluice_stun_put(&w, SLUICE_STUN_ATTR_MAPPED_ADDRESS, bad, cases[i].len);
        sluice_stun_put(&w, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, bad, cases[i].len);
        CHECK_EQ(finish(&m), 0);
        CHECK_EQ(sluice_stun_get_address(&m, SLUICE_STUN_ATTR_MAPPED_ADDRESS, &got),
                 SLUICE_ERR_MALFORMED);
        CHECK_EQ(sluice_stun_get_xor_address(&m, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &got),
                 SLUICE_ERR_MALFORMED);
    }
}

/* ------------------------------------------------------------------------ */
/* Integers */

static void test_u32_u64(void)
{
    static const uint16_t t32[] = {SLUICE_STUN_ATTR_PRIORITY, SLUICE_STUN_ATTR_LIFETIME,
                                   SLUICE_STUN_ATTR_CHANGE_REQUEST,
                                   SLUICE_STUN_ATTR_CACHE_TIMEOUT,
                                   SLUICE_STUN_ATTR_CONNECTION_ID};
    static const uint32_t v32[] = {0, 1, 0x6e0001ff, 0x80000000u, UINT32_MAX};
    static const uint16_t t64[] = {SLUICE_STUN_ATTR_ICE_CONTROLLING,
                                   SLUICE_STUN_ATTR_ICE_CONTROLLED,
                                   SLUICE_STUN_ATTR_RESERVATION_TOKEN};
    static const uint64_t v64[] = {0, 1, 0x932ff9b151263b36ull, 0x8000000000000000ull,
                                   UINT64_MAX};
    static const uint8_t zeros[12];

    for (size_t t = 0; t < N(t32); t++) {
        for (size_t i = 0; i < N(v32); i++) {
            sluice_stun_msg m;
            uint32_t got = 0xA5A5A5A5u;
            begin();
            CHECK_EQ(sluice_stun_put_u32(&w, t32[t], v32[i]), 0);
            CHECK_EQ(finish(&m), 0);
            check_single_attr(&m, t32[t], 4);
            CHECK_EQ(be32(buf + 24), v32[i]);
            CHECK_EQ(sluice_stun_get_u32(&m, t32[t], &got), 0);
            CHECK_EQ(got, v32[i]);
        }
        /* Wrong sizes. */
        for (size_t len = 0; len <= 8; len++) {
            sluice_stun_msg m;
            uint32_t got;
            if (len == 4)
                continue;
            begin();
            sluice_stun_put(&w, t32[t], zeros, len);
            CHECK_EQ(finish(&m), 0);
            CHECK_EQ(sluice_stun_get_u32(&m, t32[t], &got), SLUICE_ERR_MALFORMED);
        }
    }
    for (size_t t = 0; t < N(t64); t++) {
        for (size_t i = 0; i < N(v64); i++) {
            sluice_stun_msg m;
            uint64_t got = 0;
            begin();
            CHECK_EQ(sluice_stun_put_u64(&w, t64[t], v64[i]), 0);
            CHECK_EQ(finish(&m), 0);
            check_single_attr(&m, t64[t], 8);
            CHECK_EQ(be32(buf + 24), (uint32_t)(v64[i] >> 32));
            CHECK_EQ(be32(buf + 28), (uint32_t)v64[i]);
            CHECK_EQ(sluice_stun_get_u64(&m, t64[t], &got), 0);
            CHECK(got == v64[i]);
        }
        for (size_t len = 0; len <= 12; len += 4) {
            sluice_stun_msg m;
            uint64_t got;
            if (len == 8)
                continue;
            begin();
            sluice_stun_put(&w, t64[t], zeros, len);
            CHECK_EQ(finish(&m), 0);
            CHECK_EQ(sluice_stun_get_u64(&m, t64[t], &got), SLUICE_ERR_MALFORMED);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Strings and byte values (RFC 8489 §14.3, §14.9, §14.10, §14.14, §14.16) */

static void test_string_limits(void)
{
    static const struct {
        uint16_t type;
        size_t max; /* longest accepted */
    } cases[] = {
        {SLUICE_STUN_ATTR_USERNAME, 512},       /* "less than 513 bytes" */
        {SLUICE_STUN_ATTR_REALM, SLUICE_STUN_MAX_TEXT_ENCODE},
        {SLUICE_STUN_ATTR_NONCE, SLUICE_STUN_MAX_TEXT_ENCODE},
        {SLUICE_STUN_ATTR_SOFTWARE, SLUICE_STUN_MAX_TEXT_ENCODE},
        {SLUICE_STUN_ATTR_ALTERNATE_DOMAIN, SLUICE_STUN_MAX_TEXT_ENCODE},
    };
    static char text[1024];

    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + i % 26);
    for (size_t c = 0; c < N(cases); c++) {
        const size_t lens[] = {0, 1, 2, 3, 4, 5, cases[c].max - 1, cases[c].max};
        for (size_t k = 0; k < N(lens); k++) {
            sluice_stun_msg m;
            const uint8_t *v = NULL;
            size_t vlen = 9999;
            begin();
            CHECK_EQ(sluice_stun_put_string(&w, cases[c].type, text, lens[k]), 0);
            CHECK_EQ(finish(&m), 0);
            check_single_attr(&m, cases[c].type, lens[k]);
            CHECK_EQ(sluice_stun_get_bytes(&m, cases[c].type, &v, &vlen), 0);
            CHECK_EQ(vlen, lens[k]);
            CHECK(v == buf + 24);
            CHECK_MEM(v, text, lens[k]);
        }
        /* One byte over: the writer refuses and writes nothing. */
        begin();
        CHECK_EQ(sluice_stun_put_string(&w, cases[c].type, text, cases[c].max + 1),
                 SLUICE_ERR_INVALID);
        CHECK_EQ(w.len, SLUICE_STUN_HEADER_LEN);
        CHECK_EQ(sluice_stun_writer_result(&w), SLUICE_ERR_INVALID);
        CHECK_EQ(buf[20], 0xEE);

        /* Written raw: the getter takes up to the decoding limit (RFC 8489
         * §14.9: 509 bytes when encoding, 763 when decoding) and refuses
         * one byte more. */
        {
            sluice_stun_msg m;
            const uint8_t *v;
            size_t vlen;
            size_t dmax = cases[c].type == SLUICE_STUN_ATTR_USERNAME ? cases[c].max
                                                                      : SLUICE_STUN_MAX_TEXT;
            begin();
            CHECK_EQ(sluice_stun_put(&w, cases[c].type, text, dmax), 0);
            CHECK_EQ(finish(&m), 0);
            CHECK_EQ(sluice_stun_get_bytes(&m, cases[c].type, &v, &vlen), 0);
            CHECK_EQ(vlen, dmax);
            begin();
            CHECK_EQ(sluice_stun_put(&w, cases[c].type, text, dmax + 1), 0);
            CHECK_EQ(finish(&m), 0);
            CHECK_EQ(sluice_stun_get_bytes(&m, cases[c].type, &v, &vlen), SLUICE_ERR_MALFORMED);
        }
    }
}

static void test_userhash_bytes(void)
{
    uint8_t h[40];

    for (size_t i = 0; i < sizeof h; i++)
        h[i] = (uint8_t)(0xF0 ^ i);
    for (size_t len = 28; len <= 36; len++) {
        sluice_stun_msg m;
        const uint8_t *v;
        size_t vlen = 0;
        begin();
        CHECK_EQ(sluice_stun_put(&w, SLUICE_STUN_ATTR_USERHASH, h, len), 0);
        CHECK_EQ(finish(&m), 0);
        /* §14.4: USERHASH is exactly 32 bytes. */
        CHECK_EQ(sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_USERHASH, &v, &vlen),
                 len == 32 ? 0 : SLUICE_ERR_MALFORMED);
        if (len == 32) {
            CHECK_EQ(vlen, 32);
            CHECK_MEM(v, h, 32);
        }
    }
}

static void test_data_padding(void)
{
    static const uint8_t payload[8] = {0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0xFA, 0xF9, 0xF8};

    for (size_t len = 0; len <= 8; len++) {
        sluice_stun_msg m;
        const uint8_t *v;
        size_t vlen = 99;
        sluice_stun_attr at;

        begin(); /* buffer pre-filled with 0xEE: padding must overwrite it */
        CHECK_EQ(sluice_stun_put(&w, SLUICE_STUN_ATTR_DATA, payload, len), 0);
        CHECK_EQ(sluice_stun_writer_result(&w), 20 + 4 + (int)((len + 3) & ~3u));
        CHECK_EQ(finish(&m), 0);
        check_single_attr(&m, SLUICE_STUN_ATTR_DATA, len);
        CHECK_EQ(sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_DATA, &v, &vlen), 0);
        CHECK_EQ(vlen, len);
        CHECK_MEM(v, payload, len);
        CHECK_EQ(sluice_stun_find(&m, SLUICE_STUN_ATTR_DATA, &at), 0);
        CHECK_EQ(at.len, len);
        /* A following attribute starts on the next 4-byte boundary. */
        CHECK_EQ(sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, 7), 0);
        CHECK_EQ(finish(&m), 0);
        {
            uint32_t p = 0;
            CHECK_EQ(sluice_stun_get_u32(&m, SLUICE_STUN_ATTR_PRIORITY, &p), 0);
            CHECK_EQ(p, 7);
        }
    }
    begin();
    CHECK_EQ(sluice_stun_put(&w, SLUICE_STUN_ATTR_DATA, NULL, 1), SLUICE_ERR_INVALID);
}

static void test_empty_attrs(void)
{
    static const uint16_t types[] = {SLUICE_STUN_ATTR_USE_CANDIDATE,
                                     SLUICE_STUN_ATTR_DONT_FRAGMENT};
    for (size_t i = 0; i < N(types); i++) {
        sluice_stun_msg m;
        sluice_stun_attr at;
        begin();
        CHECK_EQ(sluice_stun_put_empty(&w, types[i]), 0);
        CHECK_EQ(finish(&m), 0);
        check_single_attr(&m, types[i], 0);
        CHECK(sluice_stun_has(&m, types[i]));
        CHECK_EQ(sluice_stun_find(&m, types[i], &at), 0);
        CHECK_EQ(at.type, types[i]);
        CHECK_EQ(at.len, 0);
        CHECK(!sluice_stun_has(&m, types[1 - i]));
    }
}

/* ------------------------------------------------------------------------ */
/* ERROR-CODE and ADDRESS-ERROR-CODE (RFC 8489 §14.8, RFC 8656 §18.12) */

static void test_error_code(void)
{
    static const int codes[] = {300, 400, 401, 403, 420, 437, 438, 440, 441, 442, 443,
                                486, 487, 500, 508, 599, 600, 699};
    static char longest[SLUICE_STUN_MAX_TEXT_ENCODE + 2];

    for (size_t i = 0; i < N(codes); i++) {
        sluice_stun_msg m;
        int code = 0;
        const char *reason = NULL;
        size_t rlen = 0;
        const char *want = sluice_stun_error_reason(codes[i]);

        begin();
        CHECK_EQ(sluice_stun_put_error_code(&w, codes[i], NULL), 0);
        CHECK_EQ(finish(&m), 0);
        check_single_attr(&m, SLUICE_STUN_ATTR_ERROR_CODE, 4 + strlen(want));
        CHECK_EQ(buf[24], 0);
        CHECK_EQ(buf[25], 0);
        CHECK_EQ(buf[26], codes[i] / 100);
        CHECK_EQ(buf[27], codes[i] % 100);
        CHECK_EQ(sluice_stun_get_error_code(&m, &code, &reason, &rlen), 0);
        CHECK_EQ(code, codes[i]);
        CHECK_EQ(rlen, strlen(want));
        CHECK(reason && memcmp(reason, want, rlen) == 0);
    }

    /* Custom reasons of every padding remainder. */
    {
        static const char *const reasons[] = {"", "x", "ab", "abc", "abcd", "Go away"};
        for (size_t i = 0; i < N(reasons); i++) {
            sluice_stun_msg m;
            int code = 0;
            const char *reason = NULL;
            size_t rlen = 99;
            begin();
            CHECK_EQ(sluice_stun_put_error_code(&w, 403, reasons[i]), 0);
            CHECK_EQ(finish(&m), 0);
            check_single_attr(&m, SLUICE_STUN_ATTR_ERROR_CODE, 4 + strlen(reasons[i]));
            CHECK_EQ(sluice_stun_get_error_code(&m, &code, &reason, &rlen), 0);
            CHECK_EQ(code, 403);
            CHECK_EQ(rlen, strlen(reasons[i]));
            CHECK_MEM(reason, reasons[i], rlen);
        }
    }

    memset(longest, 'r', sizeof longest - 1);
    longest[SLUICE_STUN_MAX_TEXT_ENCODE] = '\0';
    begin();
    CHECK_EQ(sluice_stun_put_error_code(&w, 500, longest), 0);
    longest[SLUICE_STUN_MAX_TEXT_ENCODE] = 'r';
    longest[SLUICE_STUN_MAX_TEXT_ENCODE + 1] = '\0';
    begin();
    CHECK_EQ(sluice_stun_put_error_code(&w, 500, longest), SLUICE_ERR_INVALID);

    /* Codes outside 300..699 are refused. */
    {
        static const int bad[] = {-1, 0, 200, 299, 700, 1000};
        for (size_t i = 0; i < N(bad); i++) {
            begin();
            CHECK_EQ(sluice_stun_put_error_code(&w, bad[i], NULL), SLUICE_ERR_INVALID);
            CHECK_EQ(w.len, SLUICE_STUN_HEADER_LEN);
        }
    }

    /* Wire values the getter refuses: class 2 and 7, number 100, short. */
    {
        static const uint8_t bad[][4] = {{0, 0, 2, 0}, {0, 0, 7, 0}, {0, 0, 4, 100}, {0, 0, 0, 0}};
        for (size_t i = 0; i < N(bad); i++) {
            sluice_stun_msg m;
            int code;
            begin();
            sluice_stun_put(&w, SLUICE_STUN_ATTR_ERROR_CODE, bad[i], 4);
            CHECK_EQ(finish(&m), 0);
            CHECK_EQ(sluice_stun_get_error_code(&m, &code, NULL, NULL), SLUICE_ERR_MALFORMED);
        }
        for (size_t len = 0; len < 4; len++) {
            sluice_stun_msg m;
            int code;
            begin();
            sluice_stun_put(&w, SLUICE_STUN_ATTR_ERROR_CODE, "\0\0\4\1", len);
            CHECK_EQ(finish(&m), 0);
            CHECK_EQ(sluice_stun_get_error_code(&m, &code, NULL, NULL), SLUICE_ERR_MALFORMED);
        }
    }
}

static void test_address_error_code(void)
{
    static const struct {
        uint8_t family;
        int code;
        const char *reason;
    } cases[] = {
        {SLUICE_STUN_FAMILY_IPV4, 440, NULL},
        {SLUICE_STUN_FAMILY_IPV6, 440, NULL},
        {SLUICE_STUN_FAMILY_IPV6, 508, "full"},
        {SLUICE_STUN_FAMILY_IPV4, 486, ""},
    };

    for (size_t i = 0; i < N(cases); i++) {
        sluice_stun_msg m;
        uint8_t family = 0;
        int code = 0;
        const char *reason = NULL;
        size_t rlen = 99;
        const char *want = cases[i].reason ? cases[i].reason
                                           : sluice_stun_error_reason(cases[i].code);
        begin();
        CHECK_EQ(sluice_stun_put_address_error_code(&w, cases[i].family, cases[i].code,
                                                    cases[i].reason),
                 0);
        CHECK_EQ(finish(&m), 0);
        check_single_attr(&m, SLUICE_STUN_ATTR_ADDRESS_ERROR_CODE, 4 + strlen(want));
        CHECK_EQ(buf[24], cases[i].family);
        CHECK_EQ(sluice_stun_get_address_error_code(&m, &family, &code, &reason, &rlen), 0);
        CHECK_EQ(family, cases[i].family);
        CHECK_EQ(code, cases[i].code);
        CHECK_EQ(rlen, strlen(want));
        CHECK_MEM(reason, want, rlen);
        /* It is not an ERROR-CODE. */
        CHECK_EQ(sluice_stun_get_error_code(&m, &code, NULL, NULL), SLUICE_ERR_NOT_FOUND);
    }
    begin();
    CHECK_EQ(sluice_stun_put_address_error_code(&w, 0, 440, NULL), SLUICE_ERR_INVALID);
    begin();
    CHECK_EQ(sluice_stun_put_address_error_code(&w, 3, 440, NULL), SLUICE_ERR_INVALID);
    begin();
    CHECK_EQ(sluice_stun_put_address_error_code(&w, SLUICE_STUN_FAMILY_IPV4, 200, NULL),
             SLUICE_ERR_INVALID);
}

/* ------------------------------------------------------------------------ */
/* Lists and small fixed attributes */

static void test_unknown_attributes(void)
{
    static const uint16_t types[] = {0x0002, 0x7FFF, 0x0031, 0x1234, 0x0004};

    for (size_t n = 0; n <= N(types); n++) {
        sluice_stun_msg m;
        uint16_t got[8];
        begin();
        CHECK_EQ(sluice_stun_put_unknown_attributes(&w, types, n), 0);
        CHECK_EQ(finish(&m), 0);
        check_single_attr(&m, SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES, 2 * n);
        memset(got, 0, sizeof got);
        CHECK_EQ(sluice_stun_get_unknown_attributes(&m, got, N(got)), (int)n);
        CHECK_MEM(got, types, 2 * n);
        /* A short output array: total count returned, only max written. */
        memset(got, 0, sizeof got);
        CHECK_EQ(sluice_stun_get_unknown_attributes(&m, got, 1), (int)n);
        if (n)
            CHECK_EQ(got[0], types[0]);
        CHECK_EQ(got[1], 0);
    }
    begin();
    CHECK_EQ(sluice_stun_put_unknown_attributes(&w, NULL, 1), SLUICE_ERR_INVALID);
    {
        sluice_stun_msg m;
        uint16_t got[4];
        begin();
        sluice_stun_put(&w, SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES, "\x00\x02\x00", 3);
        CHECK_EQ(finish(&m), 0);
        CHECK_EQ(sluice_stun_get_unknown_attributes(&m, got, 4), SLUICE_ERR_MALFORMED);
    }
}

static void test_channel_transport_family(void)
{
    static const uint16_t channels[] = {0x4000, 0x4001, 0x4FFF, 0x7FFF};
    static const uint8_t protocols[] = {17, 6, 0, 255};

    for (size_t i = 0; i < N(channels); i++) {
        sluice_stun_msg m;
        uint16_t ch = 0;
        begin();
        CHECK_EQ(sluice_stun_put_channel_number(&w, channels[i]), 0);
        CHECK_EQ(finish(&m), 0);
        check_single_attr(&m, SLUICE_STUN_ATTR_CHANNEL_NUMBER, 4);
        CHECK_EQ(be16(buf + 24), channels[i]);
        CHECK_EQ(be16(buf + 26), 0); /* RFFU */
        CHECK_EQ(sluice_stun_get_channel_number(&m, &ch), 0);
        CHECK_EQ(ch, channels[i]);
    }
    for (size_t i = 0; i < N(protocols); i++) {
        sluice_stun_msg m;
        uint8_t p = 99;
        begin();
        CHECK_EQ(sluice_stun_put_requested_transport(&w, protocols[i]), 0);
        CHECK_EQ(finish(&m), 0);
        check_single_attr(&m, SLUICE_STUN_ATTR_REQUESTED_TRANSPORT, 4);
        CHECK_EQ(buf[24], protocols[i]);
        CHECK_EQ(buf[25] | buf[26] | buf[27], 0);
        CHECK_EQ(sluice_stun_get_requested_transport(&m, &p), 0);
        CHECK_EQ(p, protocols[i]);
    }

    {
        static const uint16_t types[] = {SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY,
                                         SLUICE_STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY};
        static const uint8_t fams[] = {SLUICE_STUN_FAMILY_IPV4, SLUICE_STUN_FAMILY_IPV6};
        for (size_t t = 0; t < N(types); t++) {
            for (size_t f = 0; f < N(fams); f++) {
                sluice_stun_msg m;
                uint8_t got = 0;
                begin();
                CHECK_EQ(sluice_stun_put_address_family(&w, types[t], fams[f]), 0);
                CHECK_EQ(finish(&m), 0);
                check_single_attr(&m, types[t], 4);
                CHECK_EQ(buf[24], fams[f]);
                CHECK_EQ(buf[25] | buf[26] | buf[27], 0);
                CHECK_EQ(sluice_stun_get_address_family(&m, types[t], &got), 0);
                CHECK_EQ(got, fams[f]);
            }
            begin();
            CHECK_EQ(sluice_stun_put_address_family(&w, types[t], 0), SLUICE_ERR_INVALID);
            begin();
            CHECK_EQ(sluice_stun_put_address_family(&w, types[t], 3), SLUICE_ERR_INVALID);
            {
                sluice_stun_msg m;
                uint8_t got;
                begin();
                sluice_stun_put(&w, types[t], "\x03\0\0\0", 4);
                CHECK_EQ(finish(&m), 0);
                CHECK_EQ(sluice_stun_get_address_family(&m, types[t], &got),
                         SLUICE_ERR_MALFORMED);
            }
        }
    }
}

static void test_even_port_icmp(void)
{
    for (int r = 0; r < 2; r++) {
        sluice_stun_msg m;
        bool reserve = !r;
        begin();
        CHECK_EQ(sluice_stun_put_even_port(&w, r != 0), 0);
        CHECK_EQ(finish(&m), 0);
        check_single_attr(&m, SLUICE_STUN_ATTR_EVEN_PORT, 1);
        CHECK_EQ(buf[24], r ? 0x80 : 0x00); /* RFC 8656 §18.6: R is the top bit */
        CHECK_EQ(sluice_stun_get_even_port(&m, &reserve), 0);
        CHECK_EQ(reserve, r != 0);
    }
    {
        /* Other RFFU bits do not set R. */
        sluice_stun_msg m;
        bool reserve = true;
        begin();
        sluice_stun_put(&w, SLUICE_STUN_ATTR_EVEN_PORT, "\x7f", 1);
        CHECK_EQ(finish(&m), 0);
        CHECK_EQ(sluice_stun_get_even_port(&m, &reserve), 0);
        CHECK(!reserve);
        begin();
        sluice_stun_put(&w, SLUICE_STUN_ATTR_EVEN_PORT, "\x80\0\0\0", 4);
        CHECK_EQ(finish(&m), 0);
        CHECK_EQ(sluice_stun_get_even_port(&m, &reserve), SLUICE_ERR_MALFORMED);
    }

    {
        static const struct {
            uint8_t type, code;
            uint32_t data;
        } cases[] = {{3, 1, 0xDEADBEEF}, {0, 0, 0}, {255, 255, UINT32_MAX}, {1, 4, 1400}};
        for (size_t i = 0; i < N(cases); i++) {
            sluice_stun_msg m;
            uint8_t t = 9, c = 9;
            uint32_t d = 9;
            begin();
            CHECK_EQ(sluice_stun_put_icmp(&w, cases[i].type, cases[i].code, cases[i].data), 0);
            CHECK_EQ(finish(&m), 0);
            check_single_attr(&m, SLUICE_STUN_ATTR_ICMP, 8);
            CHECK_EQ(buf[24] | buf[25], 0); /* reserved */
            CHECK_EQ(sluice_stun_get_icmp(&m, &t, &c, &d), 0);
            CHECK_EQ(t, cases[i].type);
            CHECK_EQ(c, cases[i].code);
            CHECK_EQ(d, cases[i].data);
        }
    }
}

static void test_password_algorithms(void)
{
    static const uint16_t algs[] = {SLUICE_STUN_PWALG_MD5, SLUICE_STUN_PWALG_SHA256};
    static const uint16_t lists[][3] = {
        {SLUICE_STUN_PWALG_SHA256},
        {SLUICE_STUN_PWALG_SHA256, SLUICE_STUN_PWALG_MD5},
        {SLUICE_STUN_PWALG_MD5, SLUICE_STUN_PWALG_SHA256, 0x7777},
    };

    for (size_t i = 0; i < N(algs); i++) {
        sluice_stun_msg m;
        uint16_t got = 0;
        begin();
        CHECK_EQ(sluice_stun_put_password_algorithm(&w, algs[i]), 0);
        CHECK_EQ(finish(&m), 0);
        check_single_attr(&m, SLUICE_STUN_ATTR_PASSWORD_ALGORITHM, 4);
        CHECK_EQ(be16(buf + 24), algs[i]);
        CHECK_EQ(be16(buf + 26), 0); /* §14.12: no parameters */
        CHECK_EQ(sluice_stun_get_password_algorithm(&m, &got), 0);
        CHECK_EQ(got, algs[i]);
    }
    for (size_t i = 0; i < N(lists); i++) {
        size_t n = i + 1;
        sluice_stun_msg m;
        uint16_t got[4] = {0};
        begin();
        CHECK_EQ(sluice_stun_put_password_algorithms(&w, lists[i], n), 0);
        CHECK_EQ(finish(&m), 0);
        check_single_attr(&m, SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS, 4 * n);
        CHECK_EQ(sluice_stun_get_password_algorithms(&m, got, N(got)), (int)n);
        CHECK_MEM(got, lists[i], 2 * n);
        memset(got, 0, sizeof got);
        CHECK_EQ(sluice_stun_get_password_algorithms(&m, got, 1), (int)n);
        CHECK_EQ(got[0], lists[i][0]);
        CHECK_EQ(got[1], 0);
    }
    begin();
    CHECK_EQ(sluice_stun_put_password_algorithms(&w, algs, 0), SLUICE_ERR_INVALID);
    begin();
    CHECK_EQ(sluice_stun_put_password_algorithms(&w, NULL, 1), SLUICE_ERR_INVALID);

    /* Algorithms with parameters (§14.11: length, then padded params). */
    {
        static const uint8_t v[] = {0x00, 0x09, 0x00, 0x03, 'a', 'b', 'c', 0,
                                    0x00, 0x02, 0x00, 0x00};
        sluice_stun_msg m;
        uint16_t got[4] = {0};
        begin();
        sluice_stun_put(&w, SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS, v, sizeof v);
        CHECK_EQ(finish(&m), 0);
        CHECK_EQ(sluice_stun_get_password_algorithms(&m, got, 4), 2);
        CHECK_EQ(got[0], 9);
        CHECK_EQ(got[1], 2);
        begin();
        sluice_stun_put(&w, SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS, v, 6); /* params overrun */
        CHECK_EQ(finish(&m), 0);
        CHECK_EQ(sluice_stun_get_password_algorithms(&m, got, 4), SLUICE_ERR_MALFORMED);
    }
}

/* Every getter on a message without its attribute. */
static void test_getters_not_found(void)
{
    sluice_stun_msg m;
    sluice_addr a;
    uint32_t u32;
    uint64_t u64;
    const uint8_t *v;
    size_t len;
    int code;
    uint16_t u16[4];
    uint8_t u8, u8b;
    bool b;

    begin();
    CHECK_EQ(sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, "x", 1), 0);
    CHECK_EQ(finish(&m), 0);
    CHECK_EQ(sluice_stun_get_address(&m, SLUICE_STUN_ATTR_MAPPED_ADDRESS, &a),
             SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_xor_address(&m, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &a),
             SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_u32(&m, SLUICE_STUN_ATTR_PRIORITY, &u32), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_u64(&m, SLUICE_STUN_ATTR_ICE_CONTROLLING, &u64),
             SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_USERNAME, &v, &len),
             SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_error_code(&m, &code, NULL, NULL), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_unknown_attributes(&m, u16, 4), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_channel_number(&m, u16), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_requested_transport(&m, &u8), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_address_family(&m, SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY, &u8),
             SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_address_error_code(&m, &u8, &code, NULL, NULL),
             SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_even_port(&m, &b), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_icmp(&m, &u8, &u8b, &u32), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_password_algorithm(&m, u16), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_get_password_algorithms(&m, u16, 4), SLUICE_ERR_NOT_FOUND);
    CHECK(!sluice_stun_has(&m, SLUICE_STUN_ATTR_MESSAGE_INTEGRITY));
    CHECK(!sluice_stun_has(&m, SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256));
    CHECK(!sluice_stun_has(&m, SLUICE_STUN_ATTR_FINGERPRINT));
}

/* ------------------------------------------------------------------------ */

static void test_iteration_and_duplicates(void)
{
    static const struct {
        uint16_t type;
        const char *value;
        size_t len;
    } attrs[] = {
        {SLUICE_STUN_ATTR_PRIORITY, "\0\0\0\1", 4},
        {SLUICE_STUN_ATTR_SOFTWARE, "abc", 3},
        {SLUICE_STUN_ATTR_PRIORITY, "\0\0\0\2", 4},
        {0x7777, "q", 1},
        {0xC001, "optional", 8},
        {SLUICE_STUN_ATTR_USERNAME, "", 0},
        {SLUICE_STUN_ATTR_SOFTWARE, "second", 6},
    };
    sluice_stun_msg m;
    sluice_stun_attr_iter it;
    sluice_stun_attr a;
    size_t i = 0;
    uint32_t prio = 0;
    const uint8_t *v;
    size_t vlen;

    begin();
    for (size_t k = 0; k < N(attrs); k++)
        CHECK_EQ(sluice_stun_put(&w, attrs[k].type, attrs[k].value, attrs[k].len), 0);
    CHECK_EQ(finish(&m), 0);

    sluice_stun_attr_iter_init(&it, &m);
    while (sluice_stun_attr_next(&it, &a)) {
        CHECK(i < N(attrs));
        if (i >= N(attrs))
            break;
        CHECK_EQ(a.type, attrs[i].type);
        CHECK_EQ(a.len, attrs[i].len);
        CHECK_MEM(a.value, attrs[i].value, a.len);
        i++;
    }
    CHECK_EQ(i, N(attrs));
    CHECK(!sluice_stun_attr_next(&it, &a)); /* stays at the end */

    /* RFC 8489 §14: the first of duplicates counts. */
    CHECK_EQ(sluice_stun_get_u32(&m, SLUICE_STUN_ATTR_PRIORITY, &prio), 0);
    CHECK_EQ(prio, 1);
    CHECK_EQ(sluice_stun_find(&m, SLUICE_STUN_ATTR_PRIORITY, &a), 0);
    CHECK(a.value == buf + 24);
    CHECK_EQ(sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_SOFTWARE, &v, &vlen), 0);
    CHECK_EQ(vlen, 3);
    CHECK_MEM(v, "abc", 3);
    CHECK_EQ(m.n_unknown, 1);
    CHECK_EQ(m.unknown[0], 0x7777);
    CHECK(sluice_stun_has(&m, 0xC001));
    CHECK(!sluice_stun_has(&m, 0xC002));

    /* Empty message: no attributes. */
    begin();
    CHECK_EQ(finish(&m), 0);
    sluice_stun_attr_iter_init(&it, &m);
    CHECK(!sluice_stun_attr_next(&it, &a));
    CHECK_EQ(m.attrs_end, 20);
}

/* RFC 8489 §14.5: attributes after MESSAGE-INTEGRITY (other than
 * MI-SHA256 and FINGERPRINT) are ignored. */
static void test_attrs_after_integrity_ignored(void)
{
    sluice_stun_key key = test_key();
    sluice_stun_msg m;
    sluice_stun_attr_iter it;
    sluice_stun_attr a;
    size_t n, count = 0;
    static const uint8_t late[] = {0x00, 0x06, 0x00, 0x04, 'l', 'a', 't', 'e',
                                   0x77, 0x78, 0x00, 0x00};

    begin();
    CHECK_EQ(sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, 5), 0);
    CHECK_EQ(sluice_stun_put_integrity(&w, &key), 0);
    n = (size_t)sluice_stun_writer_result(&w);
    memcpy(buf + n, late, sizeof late);
    n += sizeof late;
    put_be16(buf + 2, (uint16_t)(n - 20));
    CHECK_EQ(sluice_stun_parse(&m, buf, n), 0);
    CHECK_EQ(m.integrity_off, 28);
    CHECK_EQ(m.attrs_end, 28);
    CHECK_EQ(m.n_unknown, 0);
    CHECK(!sluice_stun_has(&m, SLUICE_STUN_ATTR_USERNAME));
    CHECK(sluice_stun_has(&m, SLUICE_STUN_ATTR_MESSAGE_INTEGRITY));
    sluice_stun_attr_iter_init(&it, &m);
    while (sluice_stun_attr_next(&it, &a)) {
        CHECK_EQ(a.type, SLUICE_STUN_ATTR_PRIORITY);
        count++;
    }
    CHECK_EQ(count, 1);
}

static void test_is_stun_frame_length(void)
{
    uint8_t msg[64];
    sluice_stun_writer wr;
    int n;

    CHECK_EQ(sluice_stun_writer_init(&wr, msg, sizeof msg, 0x0001, txid), 0);
    sluice_stun_put_u32(&wr, SLUICE_STUN_ATTR_PRIORITY, 1);
    sluice_stun_put_fingerprint(&wr);
    n = sluice_stun_writer_result(&wr);
    CHECK_EQ(n, 36);

    CHECK(sluice_stun_is_stun(msg, (size_t)n));
    CHECK_EQ(sluice_stun_frame_length(msg, (size_t)n), n);
    for (size_t len = 0; len < 20; len++) {
        CHECK(!sluice_stun_is_stun(msg, len));
        CHECK_EQ(sluice_stun_frame_length(msg, len), 0);
    }
    /* A stream that has only the header so far still gives the length. */
    for (size_t len = 20; len <= (size_t)n; len++)
        CHECK_EQ(sluice_stun_frame_length(msg, len), n);
    CHECK(!sluice_stun_is_stun(msg, (size_t)n - 4));
    CHECK(!sluice_stun_is_stun(NULL, 20));
    CHECK_EQ(sluice_stun_frame_length(NULL, 0), 0);

    {
        static const struct {
            size_t off;
            uint8_t value;
            bool is_stun;
            int frame;
        } cases[] = {
            {0, 0x40, false, SLUICE_ERR_NOT_STUN}, /* §5: top two bits zero */
            {0, 0x80, false, SLUICE_ERR_NOT_STUN},
            {0, 0xC0, false, SLUICE_ERR_NOT_STUN},
            {0, 0x04, false, 36},                  /* RFC 7983: 0..3 only */
            {0, 0x03, true, 36},
            {4, 0x21 ^ 1, false, SLUICE_ERR_NOT_STUN}, /* cookie */
            {7, 0x43, false, SLUICE_ERR_NOT_STUN},
            {3, 0x11, false, SLUICE_ERR_MALFORMED}, /* length not a multiple of 4 */
            {3, 0x12, false, SLUICE_ERR_MALFORMED},
            {3, 0x14, false, 40},
            {3, 0x0c, false, 32},
        };
        for (size_t i = 0; i < N(cases); i++) {
            uint8_t c[64];
            memcpy(c, msg, sizeof c);
            c[cases[i].off] = cases[i].value;
            CHECK_EQ(sluice_stun_is_stun(c, (size_t)n), cases[i].is_stun);
            CHECK_EQ(sluice_stun_frame_length(c, (size_t)n), cases[i].frame);
        }
    }
    /* Largest length field. */
    msg[2] = 0xFF;
    msg[3] = 0xFC;
    CHECK_EQ(sluice_stun_frame_length(msg, 20), 20 + 0xFFFC);
}

static void test_parse_basic_errors(void)
{
    uint8_t msg[64];
    sluice_stun_msg m;
    sluice_stun_writer wr;
    int n;

    CHECK_EQ(sluice_stun_writer_init(&wr, msg, sizeof msg - 8, 0x0001, txid), 0);
    sluice_stun_put_u32(&wr, SLUICE_STUN_ATTR_PRIORITY, 1);
    sluice_stun_put_fingerprint(&wr);
    n = sluice_stun_writer_result(&wr);
    CHECK_EQ(sluice_stun_parse(&m, msg, (size_t)n), 0);
    CHECK_EQ(m.fingerprint_off, 28);

    for (size_t len = 0; len < 20; len++)
        CHECK_EQ(sluice_stun_parse(&m, msg, len), SLUICE_ERR_TRUNCATED);
    for (size_t len = 20; len < (size_t)n; len++)
        CHECK_EQ(sluice_stun_parse(&m, msg, len), SLUICE_ERR_TRUNCATED);
    memset(msg + n, 0, 8);
    CHECK_EQ(sluice_stun_parse(&m, msg, (size_t)n + 4), SLUICE_ERR_MALFORMED); /* trailing */
    CHECK_EQ(sluice_stun_parse(NULL, msg, (size_t)n), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_parse(&m, NULL, 20), SLUICE_ERR_INVALID);

    msg[n - 1] ^= 1;
    CHECK_EQ(sluice_stun_parse(&m, msg, (size_t)n), SLUICE_ERR_FINGERPRINT);
    msg[n - 1] ^= 1;
    msg[27] ^= 1; /* PRIORITY value: CRC no longer matches */
    CHECK_EQ(sluice_stun_parse(&m, msg, (size_t)n), SLUICE_ERR_FINGERPRINT);
    msg[27] ^= 1;
    msg[23] = 8; /* PRIORITY length 8 runs over FINGERPRINT's header; still in bounds */
    CHECK(sluice_stun_parse(&m, msg, (size_t)n) < 0);
    msg[23] = 13; /* past the end */
    CHECK_EQ(sluice_stun_parse(&m, msg, (size_t)n), SLUICE_ERR_MALFORMED);
    msg[23] = 4;
    CHECK_EQ(sluice_stun_parse(&m, msg, (size_t)n), 0);
}

static void test_unknown_reporting(void)
{
    /* The attribute types this codec defines (stun.h), by hand. */
    static const uint16_t known[] = {
        0x0001, 0x0003, 0x0006, 0x0008, 0x0009, 0x000A, 0x000C, 0x000D, 0x0012, 0x0013,
        0x0014, 0x0015, 0x0016, 0x0017, 0x0018, 0x0019, 0x001A, 0x001C, 0x001D, 0x001E,
        0x0020, 0x0022, 0x0024, 0x0025, 0x0026, 0x0027, 0x002A,
    };
    static uint8_t is_known[0x8000];
    sluice_stun_msg m;
    static const uint8_t value[4];
    unsigned wrong = 0;

    memset(is_known, 0, sizeof is_known);
    for (size_t i = 0; i < N(known); i++)
        is_known[known[i]] = 1;

    /* Every comprehension-required type alone in a message. */
    for (uint32_t t = 0; t < 0x8000; t++) {
        if (t == SLUICE_STUN_ATTR_MESSAGE_INTEGRITY ||
            t == SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256)
            continue; /* need their own sizes */
        begin();
        sluice_stun_put(&w, (uint16_t)t, value, 4);
        if (finish(&m) != 0 || m.n_unknown != (is_known[t] ? 0 : 1) ||
            (!is_known[t] && m.unknown[0] != t)) {
            if (wrong++ < 5)
                fprintf(stderr, "#   type 0x%04x: n_unknown %u\n", (unsigned)t, m.n_unknown);
        }
    }
    CHECK_EQ(wrong, 0);

    /* Comprehension-optional types are never reported (§14). */
    wrong = 0;
    for (uint32_t t = 0x8000; t <= 0xFFFF; t += 0x0101) {
        begin();
        sluice_stun_put(&w, (uint16_t)t, value, 4);
        if (finish(&m) != 0 || m.n_unknown != 0)
            wrong++;
    }
    CHECK_EQ(wrong, 0);

    /* Mixed, in order of appearance. */
    begin();
    sluice_stun_put(&w, 0x0002, value, 4);
    sluice_stun_put(&w, SLUICE_STUN_ATTR_PRIORITY, value, 4);
    sluice_stun_put(&w, 0x8005, value, 4);
    sluice_stun_put(&w, 0x7FFF, value, 0);
    sluice_stun_put(&w, 0xFFFF, value, 4);
    sluice_stun_put(&w, 0x0002, value, 4); /* duplicates are listed as they come */
    sluice_stun_put(&w, 0x0031, value, 1);
    CHECK_EQ(finish(&m), 0);
    CHECK_EQ(m.n_unknown, 4);
    CHECK_EQ(m.unknown[0], 0x0002);
    CHECK_EQ(m.unknown[1], 0x7FFF);
    CHECK_EQ(m.unknown[2], 0x0002);
    CHECK_EQ(m.unknown[3], 0x0031);

    /* More than SLUICE_STUN_MAX_UNKNOWN: all counted, the first 16 listed. */
    begin();
    for (uint16_t i = 0; i < 40; i++)
        sluice_stun_put(&w, (uint16_t)(0x7000 + i), NULL, 0);
    CHECK_EQ(finish(&m), 0);
    CHECK_EQ(m.n_unknown, 40);
    for (int i = 0; i < SLUICE_STUN_MAX_UNKNOWN; i++)
        CHECK_EQ(m.unknown[i], 0x7000 + i);
}

/* ------------------------------------------------------------------------ */
/* Nonce cookie (RFC 8489 §9.2) */

static void test_nonce_cookie(void)
{
    static const uint32_t features[] = {
        0,
        SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS,
        SLUICE_STUN_FEATURE_USERNAME_ANONYMITY,
        SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS | SLUICE_STUN_FEATURE_USERNAME_ANONYMITY,
        1,
        2,
        0x123456,
        0xABCDEF,
        0xFFFFFF,
    };

    for (size_t i = 0; i < N(features); i++) {
        char cookie[SLUICE_STUN_NONCE_COOKIE_LEN + 1];
        uint8_t nonce[64];
        uint32_t got = 0xDEADBEEF;

        memset(cookie, 0x7F, sizeof cookie);
        sluice_stun_nonce_cookie(features[i], cookie);
        CHECK_EQ(cookie[SLUICE_STUN_NONCE_COOKIE_LEN], 0x7F); /* writes exactly 13 */
        CHECK_MEM(cookie, "obMatJos2", 9);
        CHECK(sluice_stun_nonce_features((const uint8_t *)cookie, 13, &got));
        CHECK_EQ(got, features[i]);
        /* A real nonce: the cookie and then the server's own bytes. */
        memcpy(nonce, cookie, 13);
        memcpy(nonce + 13, "f//499k954d6OL34oL9FSTvy64sA", 28);
        got = 0;
        CHECK(sluice_stun_nonce_features(nonce, 41, &got));
        CHECK_EQ(got, features[i]);
        CHECK(!sluice_stun_nonce_features(nonce, 12, &got));
        CHECK(sluice_stun_nonce_features(nonce, 13, NULL));
    }
    {
        char cookie[SLUICE_STUN_NONCE_COOKIE_LEN];
        sluice_stun_nonce_cookie(SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS, cookie);
        CHECK_MEM(cookie, "obMatJos2gAAA", 13); /* bit 0 is the top bit */
        sluice_stun_nonce_cookie(0, cookie);
        CHECK_MEM(cookie, "obMatJos2AAAA", 13);
    }
    {
        /* RFC 8489 Appendix B.1's nonce. */
        static const char b1[] = "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA";
        uint32_t got = 0;
        CHECK(sluice_stun_nonce_features((const uint8_t *)b1, sizeof b1 - 1, &got));
        CHECK_EQ(got, 2);
    }

    {
        static const char *const not_cookie[] = {
            "f//499k954d6OL34oL9FSTvy64sA",
            "obMatJos",
            "obMatJos2AAA",
            "obMatJos3AAAAxyz",
            "obmatjos2AAAAxyz",
            "ObMatJos2AAAAxyz",
            "obMatJos2AA=Axyz",
            "obMatJos2AA AXYZ",
            "obMatJos2-AAAxyz",
            "",
        };
        for (size_t i = 0; i < N(not_cookie); i++) {
            uint32_t got = 77;
            CHECK(!sluice_stun_nonce_features((const uint8_t *)not_cookie[i],
                                              strlen(not_cookie[i]), &got));
        }
        CHECK(!sluice_stun_nonce_features(NULL, 13, NULL));
    }
}

/* ------------------------------------------------------------------------ */
/* Names */

static void test_names(void)
{
    static const uint16_t attrs[] = {
        SLUICE_STUN_ATTR_MAPPED_ADDRESS,     SLUICE_STUN_ATTR_CHANGE_REQUEST,
        SLUICE_STUN_ATTR_USERNAME,           SLUICE_STUN_ATTR_MESSAGE_INTEGRITY,
        SLUICE_STUN_ATTR_ERROR_CODE,         SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES,
        SLUICE_STUN_ATTR_CHANNEL_NUMBER,     SLUICE_STUN_ATTR_LIFETIME,
        SLUICE_STUN_ATTR_XOR_PEER_ADDRESS,   SLUICE_STUN_ATTR_DATA,
        SLUICE_STUN_ATTR_REALM,              SLUICE_STUN_ATTR_NONCE,
        SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS, SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY,
        SLUICE_STUN_ATTR_EVEN_PORT,          SLUICE_STUN_ATTR_REQUESTED_TRANSPORT,
        SLUICE_STUN_ATTR_DONT_FRAGMENT,      SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256,
        SLUICE_STUN_ATTR_PASSWORD_ALGORITHM, SLUICE_STUN_ATTR_USERHASH,
        SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, SLUICE_STUN_ATTR_RESERVATION_TOKEN,
        SLUICE_STUN_ATTR_PRIORITY,           SLUICE_STUN_ATTR_USE_CANDIDATE,
        SLUICE_STUN_ATTR_PADDING,            SLUICE_STUN_ATTR_RESPONSE_PORT,
        SLUICE_STUN_ATTR_CONNECTION_ID,      SLUICE_STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY,
        SLUICE_STUN_ATTR_ADDRESS_ERROR_CODE, SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS,
        SLUICE_STUN_ATTR_ALTERNATE_DOMAIN,   SLUICE_STUN_ATTR_ICMP,
        SLUICE_STUN_ATTR_SOFTWARE,           SLUICE_STUN_ATTR_ALTERNATE_SERVER,
        SLUICE_STUN_ATTR_CACHE_TIMEOUT,      SLUICE_STUN_ATTR_FINGERPRINT,
        SLUICE_STUN_ATTR_ICE_CONTROLLED,     SLUICE_STUN_ATTR_ICE_CONTROLLING,
        SLUICE_STUN_ATTR_RESPONSE_ORIGIN,    SLUICE_STUN_ATTR_OTHER_ADDRESS,
    };
    static const int codes[] = {300, 400, 401, 403, 405, 420, 437, 438, 440,
                                441, 442, 443, 446, 447, 486, 487, 500, 508};

    for (size_t i = 0; i < N(attrs); i++) {
        const char *name = sluice_stun_attr_name(attrs[i]);
        CHECK(name && strcmp(name, "unknown") != 0);
        CHECK(sluice_stun_attr_known(attrs[i]));
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(name, sluice_stun_attr_name(attrs[j])) != 0);
    }
    CHECK_STR(sluice_stun_attr_name(SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS), "XOR-MAPPED-ADDRESS");
    CHECK_STR(sluice_stun_attr_name(0x0002), "unknown");
    CHECK(!sluice_stun_attr_known(0x0002));
    CHECK(!sluice_stun_attr_known(0x0000));
    CHECK(!sluice_stun_attr_known(0xFFFF));

    for (size_t i = 0; i < N(all_methods); i++) {
        const char *name = sluice_stun_method_name(all_methods[i]);
        CHECK(name && strcmp(name, "unknown") != 0);
    }
    CHECK_STR(sluice_stun_method_name(SLUICE_STUN_BINDING), "Binding");
    CHECK_STR(sluice_stun_method_name(0x0FFF), "unknown");
    for (int c = 0; c < 4; c++)
        CHECK(strcmp(sluice_stun_class_name((sluice_stun_class)c), "unknown") != 0);

    for (size_t i = 0; i < N(codes); i++) {
        const char *r = sluice_stun_error_reason(codes[i]);
        CHECK(r && *r && strcmp(r, "unknown") != 0 && strcmp(r, "Error") != 0);
    }
    CHECK_STR(sluice_stun_error_reason(401), "Unauthorized");
    CHECK_STR(sluice_stun_error_reason(420), "Unknown Attribute");
    CHECK_STR(sluice_stun_error_reason(438), "Stale Nonce");
    CHECK(sluice_stun_error_reason(299) != NULL);
}

/* ------------------------------------------------------------------------ */
/* CRC-32 (RFC 8489 §14.7: ISO-HDLC, as in ITU-T V.42) */

static uint32_t crc32_bitwise(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void test_crc32(void)
{
    static uint8_t data[512];
    sluice_test_rng rng;

    CHECK_EQ(sluice_crc32(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
    CHECK_EQ(sluice_crc32(0, NULL, 0), 0);
    CHECK_EQ(crc32_bitwise((const uint8_t *)"123456789", 9), 0xCBF43926u);

    sluice_test_rng_init(&rng, 0x5EEDu);
    sluice_test_rng_fill(&rng, data, sizeof data);
    for (size_t len = 0; len <= 300; len++) {
        for (size_t off = 0; off < 8; off++) { /* every alignment */
            uint32_t want = crc32_bitwise(data + off, len);
            CHECK_EQ(sluice_crc32(0, data + off, len), want);
            /* Chaining: the seed continues a running CRC. */
            CHECK_EQ(sluice_crc32(sluice_crc32(0, data + off, len / 3), data + off + len / 3,
                                  len - len / 3),
                     want);
        }
    }
}

static void test_strerror(void)
{
    for (int e = SLUICE_ERR_UNKNOWN_ATTR; e <= SLUICE_OK; e++) {
        const char *s = sluice_strerror(e);
        CHECK(s != NULL);
        CHECK(strcmp(s, "unknown error") != 0);
        for (int f = SLUICE_ERR_UNKNOWN_ATTR; f < e; f++)
            CHECK(strcmp(s, sluice_strerror(f)) != 0);
    }
    CHECK_STR(sluice_strerror(SLUICE_ERR_UNKNOWN_ATTR - 1), "unknown error");
    CHECK(sluice_strerror(-1000) != NULL);
}

int main(void)
{
    RUN(test_type_table);
    RUN(test_type_round_trip);
    RUN(test_address_round_trip);
    RUN(test_xor_address_wire);
    RUN(test_address_invalid);
    RUN(test_u32_u64);
    RUN(test_string_limits);
    RUN(test_userhash_bytes);
    RUN(test_data_padding);
    RUN(test_empty_attrs);
    RUN(test_error_code);
    RUN(test_address_error_code);
    RUN(test_unknown_attributes);
    RUN(test_channel_transport_family);
    RUN(test_even_port_icmp);
    RUN(test_password_algorithms);
    RUN(test_getters_not_found);
    RUN(test_iteration_and_duplicates);
    RUN(test_attrs_after_integrity_ignored);
    RUN(test_is_stun_frame_length);
    RUN(test_parse_basic_errors);
    RUN(test_unknown_reporting);
    RUN(test_nonce_cookie);
    RUN(test_names);
    RUN(test_crc32);
    RUN(test_strerror);
    return TEST_DONE();
}
