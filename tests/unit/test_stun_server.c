/* SPDX-License-Identifier: MIT */
/* Unit tests for the stateless server helpers (src/stun/server.c): Binding
 * success responses and error responses, read back with the parser. */
#include <stdlib.h>
#include <string.h>

#include "sluice/stun_txn.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t txid[SLUICE_STUN_TXID_LEN] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                                   0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

enum { REQ_MI = 1, REQ_MI256 = 2, REQ_FP = 4 };

/* A request of the given method/class into b; integrity and FINGERPRINT
 * per flags; `unknown` comprehension-required types are added as empty
 * attributes before the integrity. */
static int make_request(uint8_t *b, size_t cap, uint16_t method, sluice_stun_class cls,
                        const sluice_stun_key *key, int flags, const uint16_t *unknown,
                        size_t n_unknown, sluice_stun_msg *m)
{
    sluice_stun_writer w;
    int n;

    sluice_stun_writer_init(&w, b, cap, sluice_stun_type(method, cls), txid);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, "evtj:h6vY", 9);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, 0x6e0001ff);
    sluice_stun_put_empty(&w, 0xC00F); /* unknown, comprehension-optional */
    for (size_t i = 0; i < n_unknown; i++)
        sluice_stun_put_empty(&w, unknown[i]);
    if (flags & REQ_MI)
        sluice_stun_put_integrity(&w, key);
    if (flags & REQ_MI256)
        sluice_stun_put_integrity_sha256(&w, key);
    if (flags & REQ_FP)
        sluice_stun_put_fingerprint(&w);
    n = sluice_stun_writer_result(&w);
    CHECK(n > 0);
    if (n <= 0)
        return n;
    CHECK_EQ(sluice_stun_parse(m, b, (size_t)n), 0);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Binding success (RFC 8489 §6.3.1, §7.3.1) */

static void test_binding_response_plain(void)
{
    static const char *const froms[] = {"192.0.2.1:32853", "10.0.0.1:1", "0.0.0.0:0",
                                        "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
                                        "[::1]:65535"};
    static const char *const softwares[] = {NULL, "sluice 0.1", ""};

    for (size_t i = 0; i < N(froms); i++) {
        for (size_t s = 0; s < N(softwares); s++) {
            uint8_t req[256], resp[256];
            sluice_stun_msg rq, rs;
            sluice_addr from, mapped;
            const uint8_t *v;
            size_t vlen;
            int n;

            CHECK_EQ(sluice_addr_parse(&from, froms[i], 0), 0);
            make_request(req, sizeof req, SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, NULL, REQ_FP,
                         NULL, 0, &rq);
            n = sluice_stun_binding_response(&rq, &from, NULL, softwares[s], resp, sizeof resp);
            CHECK(n > 0);
            if (n <= 0)
                continue;
            /* The parser verifies FINGERPRINT, so parse == 0 means it is valid. */
            CHECK_EQ(sluice_stun_parse(&rs, resp, (size_t)n), 0);
            CHECK_EQ(rs.type, 0x0101);
            CHECK_EQ(rs.method, SLUICE_STUN_BINDING);
            CHECK_EQ(rs.cls, SLUICE_STUN_SUCCESS);
            CHECK_MEM(sluice_stun_txid(&rs), txid, SLUICE_STUN_TXID_LEN);
            CHECK_EQ(sluice_stun_get_xor_address(&rs, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS,
                                                 &mapped),
                     0);
            CHECK(sluice_addr_equal(&mapped, &from));
            CHECK(rs.fingerprint_off != 0);
            CHECK_EQ(rs.fingerprint_off + 8, (uint32_t)n); /* last */
            CHECK_EQ(rs.integrity_off, 0);
            CHECK_EQ(rs.integrity256_off, 0);
            CHECK_EQ(rs.n_unknown, 0);
            if (softwares[s]) {
                CHECK_EQ(sluice_stun_get_bytes(&rs, SLUICE_STUN_ATTR_SOFTWARE, &v, &vlen), 0);
                CHECK_EQ(vlen, strlen(softwares[s]));
                CHECK_MEM(v, softwares[s], vlen);
            } else {
                CHECK(!sluice_stun_has(&rs, SLUICE_STUN_ATTR_SOFTWARE));
            }
            /* Nothing of the request is echoed. */
            CHECK(!sluice_stun_has(&rs, SLUICE_STUN_ATTR_USERNAME));
            CHECK(!sluice_stun_has(&rs, SLUICE_STUN_ATTR_PRIORITY));
        }
    }
}

static void test_binding_response_integrity(void)
{
    static const struct {
        int req_flags;
        bool want_mi, want_mi256;
    } cases[] = {
        {REQ_MI | REQ_FP, true, false},
        {REQ_MI, true, false},
        {REQ_MI256 | REQ_FP, false, true},
        {REQ_MI | REQ_MI256 | REQ_FP, false, true}, /* §9.1.3: answer with SHA-256 */
        {REQ_FP, true, false},                      /* key given, request unsigned */
    };
    sluice_stun_key key, other;

    CHECK_EQ(sluice_stun_key_short_term(&key, "VOkJxbRl1RmTxUk/WvJxBt", 22), 0);
    CHECK_EQ(sluice_stun_key_short_term(&other, "other", 5), 0);
    for (size_t i = 0; i < N(cases); i++) {
        uint8_t req[256], resp[256];
        sluice_stun_msg rq, rs;
        sluice_addr from, mapped;
        int n;

        CHECK_EQ(sluice_addr_parse(&from, "[2001:db8::42]:5000", 0), 0);
        make_request(req, sizeof req, SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, &key,
                     cases[i].req_flags, NULL, 0, &rq);
        n = sluice_stun_binding_response(&rq, &from, &key, "srv", resp, sizeof resp);
        CHECK(n > 0);
        if (n <= 0)
            continue;
        CHECK_EQ(sluice_stun_parse(&rs, resp, (size_t)n), 0);
        CHECK_EQ(rs.cls, SLUICE_STUN_SUCCESS);
        CHECK_EQ(rs.integrity_off != 0, cases[i].want_mi);
        CHECK_EQ(rs.integrity256_off != 0, cases[i].want_mi256);
        CHECK(rs.fingerprint_off != 0);
        CHECK_EQ(sluice_stun_check_integrity(&rs, &key), 0);
        CHECK_EQ(sluice_stun_check_integrity(&rs, &other), SLUICE_ERR_INTEGRITY);
        CHECK_EQ(sluice_stun_get_xor_address(&rs, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped),
                 0);
        CHECK(sluice_addr_equal(&mapped, &from));
        /* XOR-MAPPED-ADDRESS and SOFTWARE come before the integrity. */
        CHECK(sluice_stun_has(&rs, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS));
        CHECK(sluice_stun_has(&rs, SLUICE_STUN_ATTR_SOFTWARE));
    }
}

static void test_binding_response_invalid(void)
{
    static const struct {
        uint16_t method;
        sluice_stun_class cls;
    } cases[] = {
        {SLUICE_STUN_BINDING, SLUICE_STUN_INDICATION},
        {SLUICE_STUN_BINDING, SLUICE_STUN_SUCCESS},
        {SLUICE_STUN_BINDING, SLUICE_STUN_ERROR},
        {SLUICE_STUN_ALLOCATE, SLUICE_STUN_REQUEST},
        {SLUICE_STUN_REFRESH, SLUICE_STUN_REQUEST},
        {SLUICE_STUN_CHANNEL_BIND, SLUICE_STUN_REQUEST},
        {0x0FFF, SLUICE_STUN_REQUEST},
    };
    uint8_t req[256], resp[256];
    sluice_stun_msg rq;
    sluice_addr from;

    CHECK_EQ(sluice_addr_parse(&from, "192.0.2.1:1", 0), 0);
    for (size_t i = 0; i < N(cases); i++) {
        make_request(req, sizeof req, cases[i].method, cases[i].cls, NULL, REQ_FP, NULL, 0, &rq);
        memset(resp, 0xC3, sizeof resp);
        CHECK_EQ(sluice_stun_binding_response(&rq, &from, NULL, NULL, resp, sizeof resp),
                 SLUICE_ERR_INVALID);
        CHECK_EQ(resp[0], 0xC3);
    }
    make_request(req, sizeof req, SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, NULL, 0, NULL, 0, &rq);
    CHECK_EQ(sluice_stun_binding_response(&rq, NULL, NULL, NULL, resp, sizeof resp),
             SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_binding_response(NULL, &from, NULL, NULL, resp, sizeof resp),
             SLUICE_ERR_INVALID);
    memset(&from, 0, sizeof from); /* no family */
    CHECK_EQ(sluice_stun_binding_response(&rq, &from, NULL, NULL, resp, sizeof resp),
             SLUICE_ERR_INVALID);
}

static void check_nospace_sweep(int need, int (*make)(uint8_t *b, size_t cap))
{
    static uint8_t b[1024 + 64];

    CHECK(need > 0 && need < 1024);
    for (size_t cap = 0; cap < (size_t)need; cap++) {
        size_t j;
        memset(b, 0xC3, sizeof b);
        CHECK_EQ(make(b, cap), SLUICE_ERR_NOSPACE);
        for (j = cap; j < sizeof b && b[j] == 0xC3; j++)
            ;
        if (j != sizeof b) {
            CHECK_EQ(j, sizeof b);
            fprintf(stderr, "#   cap %zu: byte %zu written\n", cap, j);
        }
    }
    memset(b, 0xC3, sizeof b);
    CHECK_EQ(make(b, (size_t)need), need);
    CHECK_EQ(b[need], 0xC3);
}

static sluice_stun_msg nospace_req;
static uint8_t nospace_req_buf[512];
static sluice_stun_key nospace_key;

static int make_binding(uint8_t *b, size_t cap)
{
    sluice_addr from;
    sluice_addr_parse(&from, "[2001:db8::1]:3478", 0);
    return sluice_stun_binding_response(&nospace_req, &from, &nospace_key, "sluice", b, cap);
}

static int make_error(uint8_t *b, size_t cap)
{
    static const uint16_t algs[] = {SLUICE_STUN_PWALG_SHA256, SLUICE_STUN_PWALG_MD5};
    sluice_stun_error_opts o;
    memset(&o, 0, sizeof o);
    o.realm = "example.org";
    o.nonce = "obMatJos2gAAAnonce";
    o.password_algorithms = algs;
    o.n_password_algorithms = 2;
    o.key = &nospace_key;
    o.software = "sluice";
    o.fingerprint = true;
    return sluice_stun_error_response(&nospace_req, 420, &o, b, cap);
}

static void test_nospace(void)
{
    static const uint16_t unk[] = {0x0002, 0x7777, 0x0031};
    uint8_t big[1024];

    CHECK_EQ(sluice_stun_key_short_term(&nospace_key, "pw", 2), 0);
    make_request(nospace_req_buf, sizeof nospace_req_buf, SLUICE_STUN_BINDING,
                 SLUICE_STUN_REQUEST, &nospace_key, REQ_MI256 | REQ_FP, unk, N(unk), &nospace_req);
    check_nospace_sweep(make_binding(big, sizeof big), make_binding);
    check_nospace_sweep(make_error(big, sizeof big), make_error);
}

/* ------------------------------------------------------------------------ */
/* Error responses (RFC 8489 §6.3.4) */

static void test_error_codes_and_methods(void)
{
    static const uint16_t methods[] = {SLUICE_STUN_BINDING, SLUICE_STUN_ALLOCATE,
                                       SLUICE_STUN_REFRESH, SLUICE_STUN_CREATE_PERMISSION,
                                       SLUICE_STUN_CHANNEL_BIND, SLUICE_STUN_CONNECT};
    static const int codes[] = {300, 400, 401, 403, 420, 437, 438, 440, 441, 442,
                                443, 486, 487, 500, 508, 699};

    for (size_t mi = 0; mi < N(methods); mi++) {
        for (size_t ci = 0; ci < N(codes); ci++) {
            uint8_t req[256], resp[512];
            sluice_stun_msg rq, rs;
            int code = 0, n;
            const char *reason = NULL;
            size_t rlen = 0;
            const char *want = sluice_stun_error_reason(codes[ci]);

            make_request(req, sizeof req, methods[mi], SLUICE_STUN_REQUEST, NULL, 0, NULL, 0,
                         &rq);
            n = sluice_stun_error_response(&rq, codes[ci], NULL, resp, sizeof resp);
            CHECK(n > 0);
            if (n <= 0)
                continue;
            CHECK_EQ(sluice_stun_parse(&rs, resp, (size_t)n), 0);
            CHECK_EQ(rs.method, methods[mi]);
            CHECK_EQ(rs.cls, SLUICE_STUN_ERROR);
            CHECK_EQ(rs.type, sluice_stun_type(methods[mi], SLUICE_STUN_ERROR));
            CHECK_MEM(sluice_stun_txid(&rs), txid, SLUICE_STUN_TXID_LEN);
            CHECK_EQ(sluice_stun_get_error_code(&rs, &code, &reason, &rlen), 0);
            CHECK_EQ(code, codes[ci]);
            CHECK_EQ(rlen, strlen(want));
            CHECK_MEM(reason, want, rlen);
            /* opts NULL: nothing else. */
            CHECK_EQ(rs.integrity_off, 0);
            CHECK_EQ(rs.integrity256_off, 0);
            CHECK_EQ(rs.fingerprint_off, 0);
            CHECK(!sluice_stun_has(&rs, SLUICE_STUN_ATTR_REALM));
            CHECK(!sluice_stun_has(&rs, SLUICE_STUN_ATTR_NONCE));
            CHECK(!sluice_stun_has(&rs, SLUICE_STUN_ATTR_SOFTWARE));
            CHECK_EQ(sluice_stun_has(&rs, SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES), codes[ci] == 420);
        }
    }
}

static void test_error_400_custom_reason(void)
{
    uint8_t req[256], resp[256];
    sluice_stun_msg rq, rs;
    sluice_stun_error_opts o;
    int code = 0, n;
    const char *reason;
    size_t rlen;

    memset(&o, 0, sizeof o);
    o.reason = "missing USERNAME";
    o.software = "sluice";
    o.fingerprint = true;
    make_request(req, sizeof req, SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, NULL, REQ_FP, NULL, 0,
                 &rq);
    n = sluice_stun_error_response(&rq, 400, &o, resp, sizeof resp);
    CHECK(n > 0);
    CHECK_EQ(sluice_stun_parse(&rs, resp, (size_t)n), 0);
    CHECK_EQ(rs.type, 0x0111);
    CHECK_EQ(sluice_stun_get_error_code(&rs, &code, &reason, &rlen), 0);
    CHECK_EQ(code, 400);
    CHECK_EQ(rlen, strlen(o.reason));
    CHECK_MEM(reason, o.reason, rlen);
    CHECK(sluice_stun_has(&rs, SLUICE_STUN_ATTR_SOFTWARE));
    CHECK(rs.fingerprint_off != 0);
    CHECK_EQ(rs.integrity_off, 0);
}

/* RFC 8489 §9.2.4: 401 with REALM, NONCE and PASSWORD-ALGORITHMS (the
 * nonce starting with the cookie that announces them, §9.2). */
static void test_error_401_challenge(void)
{
    static const uint16_t algs[] = {SLUICE_STUN_PWALG_SHA256, SLUICE_STUN_PWALG_MD5};
    uint8_t req[256], resp[512];
    sluice_stun_msg rq, rs;
    sluice_stun_error_opts o;
    char nonce[64];
    const uint8_t *v;
    size_t vlen;
    uint16_t got[4] = {0};
    uint32_t features = 0;
    int code = 0, n;

    sluice_stun_nonce_cookie(SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS, nonce);
    strcpy(nonce + SLUICE_STUN_NONCE_COOKIE_LEN, "f//499k954d6OL34oL9FSTvy64sA");
    memset(&o, 0, sizeof o);
    o.realm = "example.org";
    o.nonce = nonce;
    o.password_algorithms = algs;
    o.n_password_algorithms = N(algs);
    o.fingerprint = true;

    make_request(req, sizeof req, SLUICE_STUN_ALLOCATE, SLUICE_STUN_REQUEST, NULL, REQ_FP, NULL, 0,
                 &rq);
    n = sluice_stun_error_response(&rq, 401, &o, resp, sizeof resp);
    CHECK(n > 0);
    CHECK_EQ(sluice_stun_parse(&rs, resp, (size_t)n), 0);
    CHECK_EQ(rs.type, 0x0113);
    CHECK_EQ(sluice_stun_get_error_code(&rs, &code, NULL, NULL), 0);
    CHECK_EQ(code, 401);
    CHECK_EQ(sluice_stun_get_bytes(&rs, SLUICE_STUN_ATTR_REALM, &v, &vlen), 0);
    CHECK_EQ(vlen, 11);
    CHECK_MEM(v, "example.org", 11);
    CHECK_EQ(sluice_stun_get_bytes(&rs, SLUICE_STUN_ATTR_NONCE, &v, &vlen), 0);
    CHECK_EQ(vlen, strlen(nonce));
    CHECK_MEM(v, nonce, vlen);
    CHECK(sluice_stun_nonce_features(v, vlen, &features));
    CHECK_EQ(features, SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS);
    CHECK_EQ(sluice_stun_get_password_algorithms(&rs, got, N(got)), 2);
    CHECK_EQ(got[0], SLUICE_STUN_PWALG_SHA256);
    CHECK_EQ(got[1], SLUICE_STUN_PWALG_MD5);
    CHECK_EQ(rs.integrity_off, 0); /* no key: a challenge is unsigned */
    CHECK(rs.fingerprint_off != 0);
    CHECK(!sluice_stun_has(&rs, SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES));

    /* 438 Stale Nonce carries a fresh realm/nonce too. */
    o.password_algorithms = NULL;
    o.n_password_algorithms = 0;
    o.nonce = "fresh-nonce";
    n = sluice_stun_error_response(&rq, 438, &o, resp, sizeof resp);
    CHECK(n > 0);
    CHECK_EQ(sluice_stun_parse(&rs, resp, (size_t)n), 0);
    CHECK_EQ(sluice_stun_get_error_code(&rs, &code, NULL, NULL), 0);
    CHECK_EQ(code, 438);
    CHECK_EQ(sluice_stun_get_bytes(&rs, SLUICE_STUN_ATTR_NONCE, &v, &vlen), 0);
    CHECK_EQ(vlen, 11);
    CHECK_MEM(v, "fresh-nonce", 11);
    CHECK(sluice_stun_has(&rs, SLUICE_STUN_ATTR_REALM));
    CHECK(!sluice_stun_has(&rs, SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS));
}

/* RFC 8489 §14.9: 420 lists the unknown comprehension-required types of
 * the request, and nothing else. */
static void test_error_420_unknown(void)
{
    static const uint16_t few[] = {0x0002, 0x7777, 0x0031, 0x0002};
    uint16_t many[24];
    uint8_t req[512], resp[512];
    sluice_stun_msg rq, rs;
    uint16_t got[32];
    int n;

    make_request(req, sizeof req, SLUICE_STUN_ALLOCATE, SLUICE_STUN_REQUEST, NULL, REQ_FP, few,
                 N(few), &rq);
    CHECK_EQ(rq.n_unknown, N(few));
    n = sluice_stun_error_response(&rq, 420, NULL, resp, sizeof resp);
    CHECK(n > 0);
    CHECK_EQ(sluice_stun_parse(&rs, resp, (size_t)n), 0);
    CHECK_EQ(rs.type, 0x0113);
    CHECK_EQ(sluice_stun_get_unknown_attributes(&rs, got, N(got)), (int)N(few));
    CHECK_MEM(got, few, sizeof few); /* not 0xC00F, not PRIORITY/USERNAME */

    for (size_t i = 0; i < N(many); i++)
        many[i] = (uint16_t)(0x4000 + i);
    make_request(req, sizeof req, SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, NULL, 0, many,
                 N(many), &rq);
    CHECK_EQ(rq.n_unknown, N(many));
    n = sluice_stun_error_response(&rq, 420, NULL, resp, sizeof resp);
    CHECK(n > 0);
    CHECK_EQ(sluice_stun_parse(&rs, resp, (size_t)n), 0);
    CHECK_EQ(sluice_stun_get_unknown_attributes(&rs, got, N(got)), SLUICE_STUN_MAX_UNKNOWN);
    CHECK_MEM(got, many, 2 * SLUICE_STUN_MAX_UNKNOWN);

    /* Other codes never carry the list. */
    n = sluice_stun_error_response(&rq, 400, NULL, resp, sizeof resp);
    CHECK_EQ(sluice_stun_parse(&rs, resp, (size_t)n), 0);
    CHECK(!sluice_stun_has(&rs, SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES));
}

/* RFC 8445 §7.3.1.1: 487 Role Conflict on an authenticated Binding
 * request, signed like the request. */
static void test_error_487_signed(void)
{
    static const int flags[] = {REQ_MI | REQ_FP, REQ_MI256 | REQ_FP, REQ_MI | REQ_MI256};
    sluice_stun_key key;

    CHECK_EQ(sluice_stun_key_short_term(&key, "VOkJxbRl1RmTxUk/WvJxBt", 22), 0);
    for (size_t i = 0; i < N(flags); i++) {
        uint8_t req[256], resp[256];
        sluice_stun_msg rq, rs;
        sluice_stun_error_opts o;
        int code = 0, n;

        memset(&o, 0, sizeof o);
        o.key = &key;
        o.fingerprint = true;
        make_request(req, sizeof req, SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, &key, flags[i],
                     NULL, 0, &rq);
        n = sluice_stun_error_response(&rq, 487, &o, resp, sizeof resp);
        CHECK(n > 0);
        CHECK_EQ(sluice_stun_parse(&rs, resp, (size_t)n), 0);
        CHECK_EQ(rs.type, 0x0111);
        CHECK_EQ(sluice_stun_get_error_code(&rs, &code, NULL, NULL), 0);
        CHECK_EQ(code, 487);
        CHECK_EQ(rs.integrity256_off != 0, (flags[i] & REQ_MI256) != 0);
        CHECK_EQ(rs.integrity_off != 0, (flags[i] & REQ_MI256) == 0);
        CHECK_EQ(sluice_stun_check_integrity(&rs, &key), 0);
        CHECK(rs.fingerprint_off != 0);
    }
}

static void test_error_invalid(void)
{
    static const int bad_codes[] = {-1, 0, 200, 299, 700, 1000};
    static const sluice_stun_class bad_classes[] = {SLUICE_STUN_INDICATION, SLUICE_STUN_SUCCESS,
                                                    SLUICE_STUN_ERROR};
    uint8_t req[256], resp[256];
    sluice_stun_msg rq;
    sluice_stun_error_opts o;
    static char longrealm[800];

    make_request(req, sizeof req, SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, NULL, 0, NULL, 0, &rq);
    for (size_t i = 0; i < N(bad_codes); i++)
        CHECK_EQ(sluice_stun_error_response(&rq, bad_codes[i], NULL, resp, sizeof resp),
                 SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_error_response(NULL, 400, NULL, resp, sizeof resp), SLUICE_ERR_INVALID);
    for (size_t i = 0; i < N(bad_classes); i++) {
        make_request(req, sizeof req, SLUICE_STUN_BINDING, bad_classes[i], NULL, 0, NULL, 0, &rq);
        CHECK_EQ(sluice_stun_error_response(&rq, 400, NULL, resp, sizeof resp),
                 SLUICE_ERR_INVALID);
    }

    /* A REALM over the §14.9 limit is refused, not truncated. */
    make_request(req, sizeof req, SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, NULL, 0, NULL, 0, &rq);
    memset(longrealm, 'r', sizeof longrealm - 1);
    memset(&o, 0, sizeof o);
    o.realm = longrealm;
    CHECK_EQ(sluice_stun_error_response(&rq, 401, &o, resp, sizeof resp), SLUICE_ERR_INVALID);
}

/* RFC 8489 §11.2: Binding requests from RFC 3489 clients. */
static void test_classic_binding(void)
{
    uint8_t req[64] = {0x00, 0x01, 0x00, 0x00, 0xdc, 0xce, 0x4c, 0x4a, 0x48, 0x65,
                       0xff, 0xca, 0x6c, 0xed, 0x72, 0xb1, 0x7e, 0xf9, 0xb0, 0x6a};
    uint8_t resp[128];
    sluice_addr from, from6;
    CHECK_EQ(sluice_addr_parse(&from, "192.0.2.1:32853", 0), 0);
    CHECK_EQ(sluice_addr_parse(&from6, "[2001:db8::1]:4660", 0), 0);

    /* plain request: MAPPED-ADDRESS, the cookie field and ID copied */
    int n = sluice_stun_classic_binding_response(req, 20, &from, resp, sizeof resp);
    CHECK_EQ(n, 32);
    const uint8_t want4[16] = {0x01, 0x01, 0x00, 0x0c};
    CHECK_MEM(resp, want4, 4);
    CHECK_MEM(resp + 4, req + 4, 16);
    const uint8_t mapped4[12] = {0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x80, 0x55, 192, 0, 2, 1};
    CHECK_MEM(resp + 20, mapped4, 12);
    /* not parseable as RFC 8489: the cookie is the client's */
    sluice_stun_msg m;
    CHECK_EQ(sluice_stun_parse(&m, resp, 32), SLUICE_ERR_NOT_STUN);
    n = sluice_stun_classic_binding_response(req, 20, &from6, resp, sizeof resp);
    CHECK_EQ(n, 44);
    CHECK_EQ(resp[25], 0x02); /* family IPv6 */

    /* CHANGE-REQUEST with no flag, USERNAME, an optional attribute: answered */
    const uint8_t ok_attrs[] = {0x00, 0x03, 0x00, 0x04, 0, 0, 0, 0,
                                0x00, 0x06, 0x00, 0x04, 'u', 's', 'e', 'r',
                                0x80, 0x22, 0x00, 0x04, 't', 'e', 's', 't'};
    memcpy(req + 20, ok_attrs, sizeof ok_attrs);
    req[3] = sizeof ok_attrs;
    n = sluice_stun_classic_binding_response(req, 20 + sizeof ok_attrs, &from, resp, sizeof resp);
    CHECK_EQ(n, 32);
    CHECK_EQ(resp[1], 0x01);

    /* CHANGE-REQUEST "change port", RESPONSE-ADDRESS: 420, listing both */
    const uint8_t bad_attrs[] = {0x00, 0x03, 0x00, 0x04, 0, 0, 0, 0x02,
                                 0x00, 0x02, 0x00, 0x08, 0, 1, 0, 80, 203, 0, 113, 9};
    memcpy(req + 20, bad_attrs, sizeof bad_attrs);
    req[3] = sizeof bad_attrs;
    n = sluice_stun_classic_binding_response(req, 20 + sizeof bad_attrs, &from, resp, sizeof resp);
    CHECK(n > 20);
    CHECK_EQ(resp[0], 0x01);
    CHECK_EQ(resp[1], 0x11);
    CHECK_MEM(resp + 4, req + 4, 16);
    bool saw_420 = false, saw_list = false;
    for (size_t off = 20; n > 0 && off + 4 <= (size_t)n;) {
        uint16_t t = (uint16_t)(resp[off] << 8 | resp[off + 1]);
        uint16_t l = (uint16_t)(resp[off + 2] << 8 | resp[off + 3]);
        if (t == SLUICE_STUN_ATTR_ERROR_CODE && l >= 4)
            saw_420 = resp[off + 6] == 4 && resp[off + 7] == 20;
        if (t == SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES && l == 4)
            saw_list = resp[off + 5] == 0x03 && resp[off + 7] == 0x02;
        off += 4 + ((l + 3u) & ~3u);
    }
    CHECK(saw_420);
    CHECK(saw_list);
    /* one refused attribute: the list repeats it (even count, RFC 3489) */
    req[3] = 8;
    n = sluice_stun_classic_binding_response(req, 28, &from, resp, sizeof resp);
    CHECK(n > 20);

    /* not an RFC 3489 Binding request */
    req[3] = 0;
    uint8_t x[20];
    memcpy(x, req, 20);
    x[1] = 0x03; /* Allocate */
    CHECK_EQ(sluice_stun_classic_binding_response(x, 20, &from, resp, sizeof resp),
             SLUICE_ERR_NOT_STUN);
    memcpy(x, req, 20);
    x[4] = 0x21, x[5] = 0x12, x[6] = 0xa4, x[7] = 0x42; /* RFC 8489 cookie */
    CHECK_EQ(sluice_stun_classic_binding_response(x, 20, &from, resp, sizeof resp),
             SLUICE_ERR_NOT_STUN);
    memcpy(x, req, 20);
    x[0] = 0x80;
    CHECK_EQ(sluice_stun_classic_binding_response(x, 20, &from, resp, sizeof resp),
             SLUICE_ERR_NOT_STUN);
    /* truncation: every prefix of a request with attributes is refused,
     * never read past (ASan) */
    memcpy(req + 20, ok_attrs, sizeof ok_attrs);
    req[3] = sizeof ok_attrs;
    for (size_t len = 0; len < 20 + sizeof ok_attrs; len++) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, req, len);
        int r = sluice_stun_classic_binding_response(cut, len, &from, resp, sizeof resp);
        CHECK(r == SLUICE_ERR_NOT_STUN || r == SLUICE_ERR_MALFORMED);
        free(cut);
    }
    /* an attribute longer than the message */
    req[22] = 0x00;
    req[23] = 0x40;
    CHECK_EQ(sluice_stun_classic_binding_response(req, 20 + sizeof ok_attrs, &from, resp,
                                                  sizeof resp),
             SLUICE_ERR_MALFORMED);
    /* no room */
    req[3] = 0;
    CHECK(sluice_stun_classic_binding_response(req, 20, &from, resp, 24) < 0);
    CHECK_EQ(sluice_stun_classic_binding_response(NULL, 20, &from, resp, sizeof resp),
             SLUICE_ERR_INVALID);
}

int main(void)
{
    RUN(test_binding_response_plain);
    RUN(test_binding_response_integrity);
    RUN(test_binding_response_invalid);
    RUN(test_nospace);
    RUN(test_error_codes_and_methods);
    RUN(test_error_400_custom_reason);
    RUN(test_error_401_challenge);
    RUN(test_error_420_unknown);
    RUN(test_error_487_signed);
    RUN(test_error_invalid);
    RUN(test_classic_binding);
    return TEST_DONE();
}
