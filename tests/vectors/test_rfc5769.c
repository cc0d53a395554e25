/* SPDX-License-Identifier: MIT */
/* Published STUN test vectors (RFC 5769 §2.1-§2.4, RFC 8489 Appendix B.1):
 * decode, verify FINGERPRINT and MESSAGE-INTEGRITY(-SHA256), re-encode.
 *
 * What the re-encoding compares, per vector:
 *  - "exact": the vector rebuilt with the writer (writer_init + put_* +
 *    put_integrity[_sha256] + put_fingerprint) must equal the RFC bytes,
 *    byte for byte. §2.1-§2.3 pad USERNAME/SOFTWARE with 0x20 where our
 *    writer pads with zeros; padding is covered by the HMAC and the CRC, so
 *    for these the test overwrites the three padding bytes in the caller's
 *    buffer with 0x20 before sealing (the writer hashes what is in its
 *    buffer), after first checking that the writer wrote zeros there.
 *  - "natural": §2.1-§2.3 rebuilt with the writer's own zero padding. The
 *    bytes before the padding must equal the vector; the whole message must
 *    parse, verify with the same key and decode to the same values.
 *  - "copy": writer_init_copy from the parsed vector, then the same seal.
 *    Must parse, verify, keep every attribute; for §2.4 and B.1 (zero
 *    padding) it must equal the vector exactly, for §2.1-§2.3 it must equal
 *    either the vector (padding copied) or the natural encoding (re-padded). */
#include <string.h>

#include "sluice/sluice.h"
#include "test.h"
#include "vectors.h"

#define S(lit) lit, (sizeof(lit) - 1)

static const uint8_t txid_5769_resp[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                           0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};
static const uint8_t txid_lt[12] = {0x78, 0xad, 0x34, 0x33, 0xc6, 0xad,
                                    0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e};

static sluice_stun_key short_key(void)
{
    sluice_stun_key k;
    CHECK_EQ(sluice_stun_key_short_term(&k, S(RFC5769_PASSWORD)), 0);
    return k;
}

static sluice_stun_key wrong_short_key(void)
{
    sluice_stun_key k;
    /* One character off (last 't' -> 'u'). */
    CHECK_EQ(sluice_stun_key_short_term(&k, S("VOkJxbRl1RmTxUk/WvJxBu")), 0);
    return k;
}

static sluice_stun_key long_key(uint16_t alg, const char *password, size_t plen)
{
    sluice_stun_key k;
    CHECK_EQ(
        sluice_stun_key_long_term(&k, alg, S(RFC_LT_USERNAME), S(RFC_LT_REALM), password, plen), 0);
    return k;
}

static int bytes_eq(const sluice_stun_msg *m, uint16_t type, const char *want, size_t wlen)
{
    const uint8_t *v = NULL;
    size_t n = 0;
    int rc = sluice_stun_get_bytes(m, type, &v, &n);
    if (rc != 0) {
        fprintf(stderr, "# get_bytes(0x%04x) = %d\n", type, rc);
        return 0;
    }
    return n == wlen && memcmp(v, want, wlen) == 0;
}

/* The attribute types the iterator yields, without the integrity and
 * fingerprint attributes (whether those are yielded is not specified). */
static size_t attr_types(const sluice_stun_msg *m, uint16_t *types, size_t max)
{
    sluice_stun_attr_iter it;
    sluice_stun_attr a;
    size_t n = 0;
    sluice_stun_attr_iter_init(&it, m);
    while (sluice_stun_attr_next(&it, &a) && n < max) {
        if (a.type == SLUICE_STUN_ATTR_MESSAGE_INTEGRITY ||
            a.type == SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256 ||
            a.type == SLUICE_STUN_ATTR_FINGERPRINT)
            continue;
        types[n++] = a.type;
    }
    return n;
}

static void check_types(const sluice_stun_msg *m, const uint16_t *want, size_t n)
{
    uint16_t got[16];
    size_t k = attr_types(m, got, 16);
    CHECK_EQ(k, n);
    for (size_t i = 0; i < n && i < k; i++)
        CHECK_EQ(got[i], want[i]);
}

static void dump_diff(const char *what, const uint8_t *a, size_t alen, const uint8_t *b,
                      size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            fprintf(stderr, "# %s: first difference at byte %zu: 0x%02x vs 0x%02x\n", what, i, a[i],
                    b[i]);
            return;
        }
    }
    if (alen != blen)
        fprintf(stderr, "# %s: lengths %zu vs %zu\n", what, alen, blen);
}

static int same_bytes(const char *what, const uint8_t *a, int alen, const uint8_t *b, size_t blen)
{
    if (alen < 0) {
        fprintf(stderr, "# %s: writer failed: %d (%s)\n", what, alen, sluice_strerror(alen));
        return 0;
    }
    if ((size_t)alen == blen && memcmp(a, b, blen) == 0)
        return 1;
    dump_diff(what, a, (size_t)alen, b, blen);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Writers for each vector. pad20: overwrite the writer's zero padding with
 * the RFC's 0x20 bytes before sealing. */

static int build_2_1(uint8_t *buf, size_t cap, bool pad20)
{
    sluice_stun_key key = short_key();
    sluice_stun_writer w;
    sluice_stun_writer_init(
        &w, buf, cap, sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST), txid_5769_resp);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, S("STUN test client"));
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, 0x6e0001ffu);
    sluice_stun_put_u64(&w, SLUICE_STUN_ATTR_ICE_CONTROLLED, 0x932ff9b151263b36ull);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, S("evtj:h6vY"));
    /* USERNAME value at 64..72, padding 73..75 (RFC 8489 §14: 32-bit boundary) */
    if (sluice_stun_writer_result(&w) == 76) {
        CHECK(buf[73] == 0 && buf[74] == 0 && buf[75] == 0);
        if (pad20)
            memset(buf + 73, 0x20, 3);
    }
    sluice_stun_put_integrity(&w, &key);
    sluice_stun_put_fingerprint(&w);
    return sluice_stun_writer_result(&w);
}

static int build_2_2_or_3(uint8_t *buf, size_t cap, bool pad20, const sluice_addr *mapped)
{
    sluice_stun_key key = short_key();
    sluice_stun_writer w;
    sluice_stun_writer_init(
        &w, buf, cap, sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_SUCCESS), txid_5769_resp);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, S("test vector"));
    if (sluice_stun_writer_result(&w) == 36) {
        CHECK(buf[35] == 0);
        if (pad20)
            buf[35] = 0x20;
    }
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, mapped);
    sluice_stun_put_integrity(&w, &key);
    sluice_stun_put_fingerprint(&w);
    return sluice_stun_writer_result(&w);
}

static sluice_addr addr_2_2(void)
{
    static const uint8_t ip[4] = {192, 0, 2, 1};
    sluice_addr a;
    memset(&a, 0, sizeof a);
    sluice_addr_set_ipv4(&a, ip, 32853);
    return a;
}

static sluice_addr addr_2_3(void)
{
    static const uint8_t ip[16] = {0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78,
                                   0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
    sluice_addr a;
    memset(&a, 0, sizeof a);
    sluice_addr_set_ipv6(&a, ip, 32853);
    return a;
}

static int build_2_4(uint8_t *buf, size_t cap)
{
    sluice_stun_key key = long_key(SLUICE_STUN_PWALG_MD5, S(RFC_LT_PASSWORD));
    sluice_stun_writer w;
    sluice_stun_writer_init(&w, buf, cap,
                            sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST), txid_lt);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, S(RFC_LT_USERNAME));
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, S(RFC5769_2_4_NONCE));
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, S(RFC_LT_REALM));
    sluice_stun_put_integrity(&w, &key);
    return sluice_stun_writer_result(&w);
}

static int build_b1(uint8_t *buf, size_t cap)
{
    sluice_stun_key key = long_key(SLUICE_STUN_PWALG_SHA256, S(RFC_LT_PASSWORD));
    uint8_t userhash[32];
    sluice_stun_writer w;
    CHECK_EQ(sluice_stun_userhash(userhash, S(RFC_LT_USERNAME), S(RFC_LT_REALM)), 0);
    sluice_stun_writer_init(&w, buf, cap,
                            sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST), txid_lt);
    sluice_stun_put(&w, SLUICE_STUN_ATTR_USERHASH, userhash, sizeof userhash);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, S(RFC8489_B1_NONCE));
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, S(RFC_LT_REALM));
    sluice_stun_put_password_algorithm(&w, SLUICE_STUN_PWALG_SHA256);
    sluice_stun_put_integrity_sha256(&w, &key);
    return sluice_stun_writer_result(&w);
}

/* writer_init_copy from a parsed vector, then seal like the vector. */
static int build_copy(uint8_t *buf, size_t cap, const sluice_stun_msg *m,
                      const sluice_stun_key *key, bool sha256, bool fingerprint)
{
    sluice_stun_writer w;
    sluice_stun_writer_init_copy(&w, buf, cap, m);
    if (sha256)
        sluice_stun_put_integrity_sha256(&w, key);
    else
        sluice_stun_put_integrity(&w, key);
    if (fingerprint)
        sluice_stun_put_fingerprint(&w);
    return sluice_stun_writer_result(&w);
}

/* ------------------------------------------------------------------------ */
/* RFC 5769 §2.1 */

static void check_2_1_values(const sluice_stun_msg *m)
{
    static const uint16_t types[] = {SLUICE_STUN_ATTR_SOFTWARE, SLUICE_STUN_ATTR_PRIORITY,
                                     SLUICE_STUN_ATTR_ICE_CONTROLLED, SLUICE_STUN_ATTR_USERNAME};
    uint32_t prio = 0;
    uint64_t tie = 0;
    CHECK_EQ(m->type, 0x0001);
    CHECK_EQ(m->method, SLUICE_STUN_BINDING);
    CHECK_EQ(m->cls, SLUICE_STUN_REQUEST);
    CHECK_MEM(sluice_stun_txid(m), txid_5769_resp, 12);
    CHECK(bytes_eq(m, SLUICE_STUN_ATTR_SOFTWARE, S("STUN test client")));
    CHECK_EQ(sluice_stun_get_u32(m, SLUICE_STUN_ATTR_PRIORITY, &prio), 0);
    CHECK_EQ(prio, 0x6e0001ffu);
    CHECK_EQ(sluice_stun_get_u64(m, SLUICE_STUN_ATTR_ICE_CONTROLLED, &tie), 0);
    CHECK(tie == 0x932ff9b151263b36ull);
    CHECK(bytes_eq(m, SLUICE_STUN_ATTR_USERNAME, S("evtj:h6vY")));
    CHECK(!sluice_stun_has(m, SLUICE_STUN_ATTR_ICE_CONTROLLING));
    CHECK_EQ(sluice_stun_get_u64(m, SLUICE_STUN_ATTR_ICE_CONTROLLING, &tie), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(m->n_unknown, 0);
    check_types(m, types, 4);
}

static void rfc5769_2_1_sample_request(void)
{
    sluice_stun_msg m;
    sluice_stun_key key = short_key(), bad = wrong_short_key();
    const size_t len = sizeof rfc5769_2_1;

    CHECK_EQ(sluice_stun_parse(&m, rfc5769_2_1, len), 0);
    CHECK(m.data == rfc5769_2_1);
    CHECK_EQ(m.len, len);
    check_2_1_values(&m);
    /* MESSAGE-INTEGRITY at 76, FINGERPRINT (verified by parse) at 100. */
    CHECK_EQ(m.integrity_off, 76);
    CHECK_EQ(m.integrity256_off, 0);
    CHECK_EQ(m.fingerprint_off, 100);
    /* RFC 8489 §9.1.3: short-term key = the password. */
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
    CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &key), 0);
    CHECK_EQ(sluice_stun_check_integrity_sha256(&m, &key), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_check_integrity(&m, &bad), SLUICE_ERR_INTEGRITY);
    CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &bad), SLUICE_ERR_INTEGRITY);
    /* The same key as raw bytes. */
    {
        sluice_stun_key raw;
        CHECK_EQ(sluice_stun_key_raw(&raw, (const uint8_t *)RFC5769_PASSWORD,
                                     sizeof RFC5769_PASSWORD - 1),
                 0);
        CHECK_EQ(sluice_stun_check_integrity(&m, &raw), 0);
    }
    CHECK(sluice_stun_is_stun(rfc5769_2_1, len));
    CHECK_EQ(sluice_stun_frame_length(rfc5769_2_1, len), (int)len);
}

static void rfc5769_2_1_reencode(void)
{
    uint8_t buf[256];
    sluice_stun_msg m, v;
    sluice_stun_key key = short_key();
    int n;

    /* exact: with the RFC's 0x20 padding */
    n = build_2_1(buf, sizeof buf, true);
    CHECK(same_bytes("2.1 exact", buf, n, rfc5769_2_1, sizeof rfc5769_2_1));

    /* natural: zero padding */
    n = build_2_1(buf, sizeof buf, false);
    CHECK_EQ(n, (int)sizeof rfc5769_2_1);
    if (n != (int)sizeof rfc5769_2_1)
        return;
    CHECK_MEM(buf, rfc5769_2_1, 73); /* everything before the USERNAME padding */
    CHECK(buf[73] == 0 && buf[74] == 0 && buf[75] == 0);
    CHECK_MEM(buf + 76, rfc5769_2_1 + 76, 4);   /* MESSAGE-INTEGRITY header */
    CHECK_MEM(buf + 100, rfc5769_2_1 + 100, 4); /* FINGERPRINT header */
    CHECK_EQ(sluice_stun_parse(&m, buf, (size_t)n), 0);
    check_2_1_values(&m);
    CHECK_EQ(m.fingerprint_off, 100);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);

    /* copy */
    CHECK_EQ(sluice_stun_parse(&v, rfc5769_2_1, sizeof rfc5769_2_1), 0);
    {
        uint8_t cbuf[256];
        int c = build_copy(cbuf, sizeof cbuf, &v, &key, false, true);
        CHECK(c == n &&
              (memcmp(cbuf, rfc5769_2_1, (size_t)n) == 0 || memcmp(cbuf, buf, (size_t)n) == 0));
        if (c > 0) {
            CHECK_EQ(sluice_stun_parse(&m, cbuf, (size_t)c), 0);
            check_2_1_values(&m);
            CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* RFC 5769 §2.2 and §2.3 */

static void check_response_values(const sluice_stun_msg *m, const sluice_addr *want)
{
    static const uint16_t types[] = {SLUICE_STUN_ATTR_SOFTWARE,
                                     SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS};
    sluice_addr a;
    sluice_stun_attr at;
    CHECK_EQ(m->type, 0x0101);
    CHECK_EQ(m->method, SLUICE_STUN_BINDING);
    CHECK_EQ(m->cls, SLUICE_STUN_SUCCESS);
    CHECK_MEM(sluice_stun_txid(m), txid_5769_resp, 12);
    CHECK(bytes_eq(m, SLUICE_STUN_ATTR_SOFTWARE, S("test vector")));
    memset(&a, 0xee, sizeof a);
    CHECK_EQ(sluice_stun_get_xor_address(m, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &a), 0);
    CHECK(sluice_addr_equal(&a, want));
    CHECK_EQ(a.family, want->family);
    CHECK_EQ(a.port, 32853);
    CHECK_EQ(a.scope_id, 0);
    /* The iterated attribute decodes the same way. */
    CHECK_EQ(sluice_stun_find(m, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &at), 0);
    memset(&a, 0, sizeof a);
    CHECK_EQ(sluice_stun_decode_xor_address(m, &at, &a), 0);
    CHECK(sluice_addr_equal(&a, want));
    /* It is not a plain MAPPED-ADDRESS. */
    CHECK_EQ(sluice_stun_get_address(m, SLUICE_STUN_ATTR_MAPPED_ADDRESS, &a), SLUICE_ERR_NOT_FOUND);
    check_types(m, types, 2);
    {
        char text[SLUICE_ADDR_STRLEN];
        const char *want_text = want->family == SLUICE_AF_INET
                                    ? "192.0.2.1:32853"
                                    : "[2001:db8:1234:5678:11:2233:4455:6677]:32853";
        CHECK(sluice_addr_format(want, true, text, sizeof text) == (int)strlen(want_text));
        CHECK_STR(text, want_text);
    }
}

static void check_response(const uint8_t *vec, size_t len, const sluice_addr *want)
{
    sluice_stun_msg m;
    sluice_stun_key key = short_key(), bad = wrong_short_key();
    CHECK_EQ(sluice_stun_parse(&m, vec, len), 0);
    CHECK_EQ(m.len, len);
    check_response_values(&m, want);
    CHECK_EQ(m.integrity_off, len - 32);
    CHECK_EQ(m.fingerprint_off, len - 8);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
    CHECK_EQ(sluice_stun_check_integrity(&m, &bad), SLUICE_ERR_INTEGRITY);
}

static void check_response_reencode(const uint8_t *vec, size_t len, const sluice_addr *want)
{
    uint8_t buf[256], cbuf[256];
    sluice_stun_msg m, v;
    sluice_stun_key key = short_key();
    int n, c;

    n = build_2_2_or_3(buf, sizeof buf, true, want);
    CHECK(same_bytes("response exact", buf, n, vec, len));

    n = build_2_2_or_3(buf, sizeof buf, false, want);
    CHECK_EQ(n, (int)len);
    if (n != (int)len)
        return;
    CHECK_MEM(buf, vec, 35); /* up to the SOFTWARE padding byte */
    CHECK_EQ(buf[35], 0);
    CHECK_MEM(buf + 36, vec + 36, len - 36 - 28); /* XOR-MAPPED-ADDRESS, MI header */
    CHECK_EQ(sluice_stun_parse(&m, buf, (size_t)n), 0);
    check_response_values(&m, want);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);

    CHECK_EQ(sluice_stun_parse(&v, vec, len), 0);
    c = build_copy(cbuf, sizeof cbuf, &v, &key, false, true);
    CHECK(c == n && (memcmp(cbuf, vec, len) == 0 || memcmp(cbuf, buf, len) == 0));
    if (c > 0) {
        CHECK_EQ(sluice_stun_parse(&m, cbuf, (size_t)c), 0);
        check_response_values(&m, want);
        CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
    }
}

static void rfc5769_2_2_ipv4_response(void)
{
    sluice_addr want = addr_2_2();
    check_response(rfc5769_2_2, sizeof rfc5769_2_2, &want);
}

static void rfc5769_2_2_reencode(void)
{
    sluice_addr want = addr_2_2();
    check_response_reencode(rfc5769_2_2, sizeof rfc5769_2_2, &want);
}

static void rfc5769_2_3_ipv6_response(void)
{
    sluice_addr want = addr_2_3();
    check_response(rfc5769_2_3, sizeof rfc5769_2_3, &want);
}

static void rfc5769_2_3_reencode(void)
{
    sluice_addr want = addr_2_3();
    check_response_reencode(rfc5769_2_3, sizeof rfc5769_2_3, &want);
}

/* ------------------------------------------------------------------------ */
/* RFC 5769 §2.4 */

static void check_2_4_values(const sluice_stun_msg *m)
{
    static const uint16_t types[] = {SLUICE_STUN_ATTR_USERNAME, SLUICE_STUN_ATTR_NONCE,
                                     SLUICE_STUN_ATTR_REALM};
    CHECK_EQ(m->type, 0x0001);
    CHECK_EQ(m->method, SLUICE_STUN_BINDING);
    CHECK_EQ(m->cls, SLUICE_STUN_REQUEST);
    CHECK_MEM(sluice_stun_txid(m), txid_lt, 12);
    CHECK(bytes_eq(m, SLUICE_STUN_ATTR_USERNAME, S(RFC_LT_USERNAME)));
    CHECK(bytes_eq(m, SLUICE_STUN_ATTR_NONCE, S(RFC5769_2_4_NONCE)));
    CHECK(bytes_eq(m, SLUICE_STUN_ATTR_REALM, S(RFC_LT_REALM)));
    CHECK_EQ(m->fingerprint_off, 0);
    CHECK_EQ(m->integrity256_off, 0);
    CHECK_EQ(m->integrity_off, 92);
    check_types(m, types, 3);
}

static void rfc5769_2_4_long_term(void)
{
    sluice_stun_msg m;
    /* RFC 8489 §9.2.2: key = MD5(username ":" realm ":" SASLprep(password)) */
    sluice_stun_key key = long_key(SLUICE_STUN_PWALG_MD5, S(RFC_LT_PASSWORD));
    sluice_stun_key bad = long_key(SLUICE_STUN_PWALG_MD5, S("thematrix"));
    sluice_stun_key sha = long_key(SLUICE_STUN_PWALG_SHA256, S(RFC_LT_PASSWORD));
    sluice_stun_key st;
    uint32_t features;

    CHECK_EQ(sluice_stun_parse(&m, rfc5769_2_4, sizeof rfc5769_2_4), 0);
    check_2_4_values(&m);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
    CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &key), 0);
    CHECK_EQ(sluice_stun_check_integrity_sha256(&m, &key), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_check_integrity(&m, &bad), SLUICE_ERR_INTEGRITY);
    CHECK_EQ(sluice_stun_check_integrity(&m, &sha), SLUICE_ERR_INTEGRITY);
    CHECK_EQ(sluice_stun_key_short_term(&st, S(RFC_LT_PASSWORD)), 0);
    CHECK_EQ(sluice_stun_check_integrity(&m, &st), SLUICE_ERR_INTEGRITY);
    /* "f//499k..." is no nonce cookie (RFC 8489 §9.2). */
    CHECK(!sluice_stun_nonce_features((const uint8_t *)RFC5769_2_4_NONCE,
                                      sizeof RFC5769_2_4_NONCE - 1, &features));
}

/* Without FINGERPRINT, damage shows up in MESSAGE-INTEGRITY. */
static void rfc5769_2_4_tamper(void)
{
    uint8_t b[sizeof rfc5769_2_4];
    sluice_stun_msg m;
    sluice_stun_key key = long_key(SLUICE_STUN_PWALG_MD5, S(RFC_LT_PASSWORD));

    /* A NONCE byte. */
    memcpy(b, rfc5769_2_4, sizeof b);
    b[50] ^= 0x01;
    CHECK_EQ(sluice_stun_parse(&m, b, sizeof b), 0);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), SLUICE_ERR_INTEGRITY);

    /* The USERNAME padding: ignored by the decoder, covered by the HMAC. */
    memcpy(b, rfc5769_2_4, sizeof b);
    b[42] = 0xff;
    b[43] = 0xff;
    CHECK_EQ(sluice_stun_parse(&m, b, sizeof b), 0);
    CHECK(bytes_eq(&m, SLUICE_STUN_ATTR_USERNAME, S(RFC_LT_USERNAME)));
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), SLUICE_ERR_INTEGRITY);

    /* The HMAC itself. */
    memcpy(b, rfc5769_2_4, sizeof b);
    b[sizeof b - 1] ^= 0x80;
    CHECK_EQ(sluice_stun_parse(&m, b, sizeof b), 0);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), SLUICE_ERR_INTEGRITY);

    /* The transaction ID (in the header the HMAC covers). */
    memcpy(b, rfc5769_2_4, sizeof b);
    b[19] ^= 0x01;
    CHECK_EQ(sluice_stun_parse(&m, b, sizeof b), 0);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), SLUICE_ERR_INTEGRITY);
}

static void rfc5769_2_4_reencode(void)
{
    uint8_t buf[256], cbuf[256];
    sluice_stun_msg m, v;
    sluice_stun_key key = long_key(SLUICE_STUN_PWALG_MD5, S(RFC_LT_PASSWORD));
    int n, c;

    n = build_2_4(buf, sizeof buf);
    CHECK(same_bytes("2.4 exact", buf, n, rfc5769_2_4, sizeof rfc5769_2_4));
    if (n > 0) {
        CHECK_EQ(sluice_stun_parse(&m, buf, (size_t)n), 0);
        check_2_4_values(&m);
        CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
    }
    CHECK_EQ(sluice_stun_parse(&v, rfc5769_2_4, sizeof rfc5769_2_4), 0);
    c = build_copy(cbuf, sizeof cbuf, &v, &key, false, false);
    CHECK(same_bytes("2.4 copy", cbuf, c, rfc5769_2_4, sizeof rfc5769_2_4));
}

/* The FINGERPRINT covers everything before it (RFC 8489 §14.7). */
static void rfc5769_fingerprint_tamper(void)
{
    const struct test_vector *vs = valid_vectors;
    for (size_t i = 0; i < 3; i++) { /* §2.1-§2.3 carry a FINGERPRINT */
        uint8_t b[256];
        sluice_stun_msg m;
        size_t len = vs[i].len;
        /* Any single bit flipped after the header's length field. */
        for (size_t off = 4; off < len; off++) {
            int rc;
            memcpy(b, vs[i].data, len);
            b[off] ^= 0x04;
            rc = sluice_stun_parse(&m, b, len);
            if (off < 8) { /* magic cookie */
                CHECK_EQ(rc, SLUICE_ERR_NOT_STUN);
            } else if (off >= len - 8 && off < len - 6) {
                /* FINGERPRINT type changed: now an ordinary attribute and
                 * the message has no FINGERPRINT to check. */
                CHECK_EQ(rc, 0);
                CHECK_EQ(m.fingerprint_off, 0);
            } else if (off >= len - 6 && off < len - 4) {
                /* FINGERPRINT length no longer 4 (RFC 8489 §14.7) */
                CHECK_EQ(rc, SLUICE_ERR_MALFORMED);
            } else {
                if (rc != SLUICE_ERR_FINGERPRINT)
                    fprintf(stderr, "# %s: bit flip at %zu -> %d\n", vs[i].name, off, rc);
                /* A flipped attribute header may be rejected before the CRC. */
                CHECK(rc == SLUICE_ERR_FINGERPRINT || (rc == SLUICE_ERR_MALFORMED && off >= 20));
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* RFC 8489 Appendix B.1 */

static void check_b1_values(const sluice_stun_msg *m)
{
    static const uint16_t types[] = {SLUICE_STUN_ATTR_USERHASH, SLUICE_STUN_ATTR_NONCE,
                                     SLUICE_STUN_ATTR_REALM, SLUICE_STUN_ATTR_PASSWORD_ALGORITHM};
    uint8_t userhash[32];
    const uint8_t *v = NULL;
    size_t n = 0;
    uint16_t alg = 0;
    uint32_t features = 0;

    CHECK_EQ(m->type, 0x0001);
    CHECK_EQ(m->method, SLUICE_STUN_BINDING);
    CHECK_EQ(m->cls, SLUICE_STUN_REQUEST);
    CHECK_MEM(sluice_stun_txid(m), txid_lt, 12);
    /* RFC 8489 §14.4: USERHASH = SHA-256(OpaqueString(username) ":" realm) */
    CHECK_EQ(sluice_stun_userhash(userhash, S(RFC_LT_USERNAME), S(RFC_LT_REALM)), 0);
    CHECK_EQ(sluice_stun_get_bytes(m, SLUICE_STUN_ATTR_USERHASH, &v, &n), 0);
    CHECK(n == 32 && v && memcmp(v, userhash, 32) == 0);
    CHECK_MEM(userhash, rfc8489_b1_errata6268 + 24, 32);
    CHECK(!sluice_stun_has(m, SLUICE_STUN_ATTR_USERNAME));
    CHECK(bytes_eq(m, SLUICE_STUN_ATTR_NONCE, S(RFC8489_B1_NONCE)));
    CHECK(bytes_eq(m, SLUICE_STUN_ATTR_REALM, S(RFC_LT_REALM)));
    CHECK_EQ(sluice_stun_get_password_algorithm(m, &alg), 0);
    CHECK_EQ(alg, SLUICE_STUN_PWALG_SHA256);
    /* The nonce cookie "obMatJos2" + "AAAC": the 24-bit set decodes to
     * 0x000002 (RFC 8489 §9.2). */
    if (sluice_stun_get_bytes(m, SLUICE_STUN_ATTR_NONCE, &v, &n) == 0) {
        CHECK(sluice_stun_nonce_features(v, n, &features));
        CHECK_EQ(features, 0x000002);
    }
    CHECK_EQ(m->integrity_off, 0);
    CHECK_EQ(m->integrity256_off, 128);
    CHECK_EQ(m->fingerprint_off, 0);
    check_types(m, types, 4);
}

static void rfc8489_b1_sha256_userhash(void)
{
    sluice_stun_msg m;
    /* RFC 8489 §9.2.2: key = SHA-256(username ":" realm ":" OpaqueString(password)) */
    sluice_stun_key key = long_key(SLUICE_STUN_PWALG_SHA256, S(RFC_LT_PASSWORD));
    sluice_stun_key md5 = long_key(SLUICE_STUN_PWALG_MD5, S(RFC_LT_PASSWORD));
    sluice_stun_key bad = long_key(SLUICE_STUN_PWALG_SHA256, S("TheMatrix"));

    CHECK_EQ(sluice_stun_parse(&m, rfc8489_b1_errata6268, sizeof rfc8489_b1_errata6268), 0);
    check_b1_values(&m);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
    CHECK_EQ(sluice_stun_check_integrity_sha256(&m, &key), 0);
    CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &key), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_check_integrity(&m, &md5), SLUICE_ERR_INTEGRITY);
    CHECK_EQ(sluice_stun_check_integrity(&m, &bad), SLUICE_ERR_INTEGRITY);
}

/* The vector as printed in RFC 8489 claims 156 bytes of attributes and
 * carries 136: a parser that honours the length field must say truncated.
 * With the length field corrected to 0x88 it parses, but its HMAC (made
 * over the header with 0x9c) cannot verify. */
static void rfc8489_b1_published_is_truncated(void)
{
    uint8_t b[sizeof rfc8489_b1_published];
    sluice_stun_msg m;
    sluice_stun_key key = long_key(SLUICE_STUN_PWALG_SHA256, S(RFC_LT_PASSWORD));

    CHECK_EQ(sluice_stun_parse(&m, rfc8489_b1_published, sizeof b), SLUICE_ERR_TRUNCATED);
    memcpy(b, rfc8489_b1_published, sizeof b);
    b[3] = 0x88;
    CHECK_EQ(sluice_stun_parse(&m, b, sizeof b), 0);
    CHECK_EQ(m.integrity256_off, 120);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), SLUICE_ERR_INTEGRITY);
}

static void rfc8489_b1_reencode(void)
{
    uint8_t buf[256], cbuf[256];
    sluice_stun_msg m, v;
    sluice_stun_key key = long_key(SLUICE_STUN_PWALG_SHA256, S(RFC_LT_PASSWORD));
    int n, c;

    n = build_b1(buf, sizeof buf);
    CHECK(same_bytes("B.1 exact", buf, n, rfc8489_b1_errata6268, sizeof rfc8489_b1_errata6268));
    if (n > 0) {
        CHECK_EQ(sluice_stun_parse(&m, buf, (size_t)n), 0);
        check_b1_values(&m);
        CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
    }
    CHECK_EQ(sluice_stun_parse(&v, rfc8489_b1_errata6268, sizeof rfc8489_b1_errata6268), 0);
    c = build_copy(cbuf, sizeof cbuf, &v, &key, true, false);
    CHECK(same_bytes("B.1 copy", cbuf, c, rfc8489_b1_errata6268, sizeof rfc8489_b1_errata6268));
}

/* A writer sealed with FINGERPRINT on top of every vector still verifies. */
static void vectors_add_fingerprint(void)
{
    sluice_stun_msg v, m;
    uint8_t buf[256];
    sluice_stun_key k24 = long_key(SLUICE_STUN_PWALG_MD5, S(RFC_LT_PASSWORD));
    sluice_stun_key kb1 = long_key(SLUICE_STUN_PWALG_SHA256, S(RFC_LT_PASSWORD));
    int n;

    CHECK_EQ(sluice_stun_parse(&v, rfc5769_2_4, sizeof rfc5769_2_4), 0);
    n = build_copy(buf, sizeof buf, &v, &k24, false, true);
    CHECK_EQ(n, (int)sizeof rfc5769_2_4 + 8);
    if (n > 0) {
        CHECK_MEM(buf + 4, rfc5769_2_4 + 4, sizeof rfc5769_2_4 - 4 - 20);
        CHECK_EQ(sluice_stun_parse(&m, buf, (size_t)n), 0);
        CHECK_EQ(m.fingerprint_off, sizeof rfc5769_2_4);
        /* RFC 8489 §14.5: the HMAC length excludes the FINGERPRINT after it. */
        CHECK_EQ(sluice_stun_check_integrity(&m, &k24), 0);
        CHECK_MEM(buf + 96, rfc5769_2_4 + 96, 20);
    }

    CHECK_EQ(sluice_stun_parse(&v, rfc8489_b1_errata6268, sizeof rfc8489_b1_errata6268), 0);
    n = build_copy(buf, sizeof buf, &v, &kb1, true, true);
    CHECK_EQ(n, (int)sizeof rfc8489_b1_errata6268 + 8);
    if (n > 0) {
        CHECK_EQ(sluice_stun_parse(&m, buf, (size_t)n), 0);
        CHECK_EQ(sluice_stun_check_integrity(&m, &kb1), 0);
        CHECK_MEM(buf + 132, rfc8489_b1_errata6268 + 132, 32);
    }
}

int main(void)
{
    RUN(rfc5769_2_1_sample_request);
    RUN(rfc5769_2_1_reencode);
    RUN(rfc5769_2_2_ipv4_response);
    RUN(rfc5769_2_2_reencode);
    RUN(rfc5769_2_3_ipv6_response);
    RUN(rfc5769_2_3_reencode);
    RUN(rfc5769_2_4_long_term);
    RUN(rfc5769_2_4_tamper);
    RUN(rfc5769_2_4_reencode);
    RUN(rfc5769_fingerprint_tamper);
    RUN(rfc8489_b1_sha256_userhash);
    RUN(rfc8489_b1_published_is_truncated);
    RUN(rfc8489_b1_reencode);
    RUN(vectors_add_fingerprint);
    return TEST_DONE();
}
