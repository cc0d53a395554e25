/* SPDX-License-Identifier: MIT */
/* Unit tests for STUN credentials (src/stun/cred.c, src/common/hmac.c):
 * short- and long-term keys, MESSAGE-INTEGRITY(-SHA256) against OpenSSL's
 * one-shot HMAC as the reference, tamper detection, USERHASH. */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sluice/stun.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t txid[SLUICE_STUN_TXID_LEN] = {0x78, 0xad, 0x34, 0x33, 0xc6, 0xad,
                                                   0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e};

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void digest(const EVP_MD *md, const char *s, uint8_t *out)
{
    unsigned n = 0;
    CHECK_EQ(EVP_Digest(s, strlen(s), out, &n, md, NULL), 1);
}

/* Reference MESSAGE-INTEGRITY(-SHA256) of RFC 8489 §14.5/§14.6: HMAC over
 * the message up to the attribute at off, with the header's length set as
 * if the message ended right after an attribute of mac_len bytes. */
static void ref_mac(const EVP_MD *md, const uint8_t *key, size_t klen, const uint8_t *msg,
                    size_t off, size_t mac_len, uint8_t *out)
{
    static uint8_t copy[4096];
    static const uint8_t dummy;
    unsigned n = 0;

    memcpy(copy, msg, off);
    put_be16(copy + 2, (uint16_t)(off - SLUICE_STUN_HEADER_LEN + 4 + mac_len));
    CHECK(HMAC(md, klen ? key : &dummy, (int)klen, copy, off, out, &n) != NULL);
}

enum { WITH_MI = 1, WITH_MI256 = 2 };

/* A typical ICE/TURN request; integrity per `which`, no FINGERPRINT (so
 * that a flipped byte shows up as an integrity failure, not a CRC one). */
static int build(uint8_t *b, size_t cap, const sluice_stun_key *key, int which, size_t data_len)
{
    static uint8_t data[512];
    sluice_stun_writer w;

    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    sluice_stun_writer_init(&w, b, cap, sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST),
                            txid);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, "sluice test", 11);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, 0x6e0001ff);
    sluice_stun_put_u64(&w, SLUICE_STUN_ATTR_ICE_CONTROLLED, 0x932ff9b151263b36ull);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, "evtj:h6vY", 9); /* 3 padding bytes */
    if (data_len)
        sluice_stun_put(&w, SLUICE_STUN_ATTR_DATA, data, data_len);
    if (which & WITH_MI)
        sluice_stun_put_integrity(&w, key);
    if (which & WITH_MI256)
        sluice_stun_put_integrity_sha256(&w, key);
    return sluice_stun_writer_result(&w);
}

/* ------------------------------------------------------------------------ */

struct cred {
    const char *name;
    int kind; /* 0 short-term, else PASSWORD-ALGORITHM */
    const char *user, *realm, *pass;
};

static const struct cred creds[] = {
    {"short-term", 0, NULL, NULL, "VOkJxbRl1RmTxUk/WvJxBt"},
    {"long-term MD5", SLUICE_STUN_PWALG_MD5, "user", "example.org", "pass"},
    {"long-term SHA-256", SLUICE_STUN_PWALG_SHA256, "user", "example.org", "pass"},
};

static int make_key(sluice_stun_key *k, const struct cred *c, const char *pass)
{
    if (!c->kind)
        return sluice_stun_key_short_term(k, pass, strlen(pass));
    return sluice_stun_key_long_term(k, (uint16_t)c->kind, c->user, strlen(c->user), c->realm,
                                     strlen(c->realm), pass, strlen(pass));
}

/* Sign, verify, then flip every byte the integrity covers, one at a time. */
static void test_sign_and_tamper(void)
{
    static const int modes[] = {WITH_MI, WITH_MI256, WITH_MI | WITH_MI256};
    static const uint8_t flips[] = {0x01, 0x80, 0xFF};

    for (size_t c = 0; c < N(creds); c++) {
        sluice_stun_key key, wrong;
        CHECK_EQ(make_key(&key, &creds[c], creds[c].pass), 0);
        CHECK_EQ(make_key(&wrong, &creds[c], "Pass"), 0);

        for (size_t md = 0; md < N(modes); md++) {
            uint8_t b[512];
            sluice_stun_msg m;
            size_t covered, bad = 0;
            int n = build(b, sizeof b, &key, modes[md], 0);

            CHECK(n > 0);
            if (n <= 0)
                continue;
            CHECK_EQ(sluice_stun_parse(&m, b, (size_t)n), 0);
            CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
            CHECK_EQ(sluice_stun_check_integrity(&m, &wrong), SLUICE_ERR_INTEGRITY);
            if (modes[md] & WITH_MI) {
                CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &key), 0);
                CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &wrong), SLUICE_ERR_INTEGRITY);
            } else {
                CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &key), SLUICE_ERR_NOT_FOUND);
            }
            if (modes[md] & WITH_MI256) {
                CHECK_EQ(sluice_stun_check_integrity_sha256(&m, &key), 0);
                CHECK_EQ(sluice_stun_check_integrity_sha256(&m, &wrong), SLUICE_ERR_INTEGRITY);
            } else {
                CHECK_EQ(sluice_stun_check_integrity_sha256(&m, &key), SLUICE_ERR_NOT_FOUND);
            }

            /* What check_integrity verifies: up to and including the value
             * of MI-SHA256 if present, else of MI (RFC 8489 §9.1.3). */
            covered = (modes[md] & WITH_MI256) ? m.integrity256_off + 4 + 32
                                               : m.integrity_off + 4 + 20;
            CHECK_EQ(covered, (size_t)n);
            for (size_t i = 0; i < covered; i++) {
                /* With both attributes, renaming MI-SHA256 leaves a valid
                 * MI: see test_sha256_renamed. */
                if (modes[md] == (WITH_MI | WITH_MI256) && i >= m.integrity256_off &&
                    i < m.integrity256_off + 2)
                    continue;
                for (size_t f = 0; f < N(flips); f++) {
                    int rc;
                    b[i] ^= flips[f];
                    rc = sluice_stun_parse(&m, b, (size_t)n);
                    if (rc == 0)
                        rc = sluice_stun_check_integrity(&m, &key);
                    /* Any failure will do: INTEGRITY for a changed value,
                     * a parse error or NOT_FOUND for a mangled header. */
                    if (rc == 0) {
                        if (bad++ < 3)
                            fprintf(stderr, "#   %s mode %d: byte %zu ^ 0x%02x -> %d\n",
                                    creds[c].name, modes[md], i, flips[f], rc);
                    }
                    b[i] ^= flips[f];
                }
            }
            CHECK_EQ(bad, 0);
            CHECK_EQ(sluice_stun_parse(&m, b, (size_t)n), 0);
            CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
        }
    }
}

/* RFC 8489 §9.1.3, §9.2.4: when both are present, MI-SHA256 decides. */
static void test_sha256_preferred(void)
{
    sluice_stun_key a, b;
    uint8_t msg[512];
    sluice_stun_writer w;
    sluice_stun_msg m;
    int n;

    CHECK_EQ(sluice_stun_key_short_term(&a, "alpha", 5), 0);
    CHECK_EQ(sluice_stun_key_short_term(&b, "bravo", 5), 0);
    CHECK_EQ(sluice_stun_writer_init(&w, msg, sizeof msg, 0x0001, txid), 0);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, "u:v", 3);
    sluice_stun_put_integrity(&w, &a);        /* MI with key a */
    sluice_stun_put_integrity_sha256(&w, &b); /* MI-SHA256 with key b */
    n = sluice_stun_writer_result(&w);
    CHECK(n > 0);
    CHECK_EQ(sluice_stun_parse(&m, msg, (size_t)n), 0);
    CHECK_EQ(sluice_stun_check_integrity(&m, &b), 0);
    CHECK_EQ(sluice_stun_check_integrity(&m, &a), SLUICE_ERR_INTEGRITY);
    CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &a), 0);
    CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &b), SLUICE_ERR_INTEGRITY);
    CHECK_EQ(sluice_stun_check_integrity_sha256(&m, &b), 0);
}

/* MI-SHA256's type field is outside every HMAC. With MI also present,
 * renaming it turns the check into an SHA-1 check that passes: the content
 * is still authenticated, but with the weaker algorithm. Guarding against
 * that downgrade is the client's job (RFC 8489 §9.1.4, §9.2.5: the response
 * must carry the integrity type the request used), so the codec must keep
 * the difference visible: check_integrity_sha256 reports NOT_FOUND. */
static void test_sha256_renamed(void)
{
    sluice_stun_key key;
    uint8_t b[512];
    sluice_stun_msg m;
    int n;

    CHECK_EQ(sluice_stun_key_short_term(&key, "pw", 2), 0);
    n = build(b, sizeof b, &key, WITH_MI | WITH_MI256, 0);
    CHECK_EQ(sluice_stun_parse(&m, b, (size_t)n), 0);
    b[m.integrity256_off] ^= 0x01; /* 0x001C -> 0x011C */
    CHECK_EQ(sluice_stun_parse(&m, b, (size_t)n), 0);
    CHECK_EQ(m.integrity256_off, 0);
    CHECK_EQ(m.n_unknown, 0); /* after MI: ignored, not reported */
    CHECK_EQ(sluice_stun_check_integrity_sha256(&m, &key), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
}

/* The writer's MI and MI-SHA256 against OpenSSL's HMAC(), for key lengths
 * around the 64-byte block (longer keys are hashed first, RFC 2104 §2) and
 * messages of several block counts. */
static void test_hmac_reference(void)
{
    static const size_t klens[] = {0, 1, 16, 20, 32, 63, 64, 65, 128, 200};
    static const size_t dlens[] = {0, 1, 3, 4, 23, 24, 55, 56, 63, 64, 100, 257};
    static const int modes[] = {WITH_MI, WITH_MI256, WITH_MI | WITH_MI256};
    uint8_t kbytes[200];
    size_t bad = 0;

    for (size_t i = 0; i < sizeof kbytes; i++)
        kbytes[i] = (uint8_t)(0xA0 + i * 13);
    for (size_t k = 0; k < N(klens); k++) {
        sluice_stun_key key;
        CHECK_EQ(sluice_stun_key_raw(&key, kbytes, klens[k]), 0);
        for (size_t d = 0; d < N(dlens); d++) {
            for (size_t md = 0; md < N(modes); md++) {
                uint8_t b[1024], want[32];
                sluice_stun_msg m;
                int n = build(b, sizeof b, &key, modes[md], dlens[d]);

                CHECK(n > 0);
                if (n <= 0 || sluice_stun_parse(&m, b, (size_t)n) != 0) {
                    bad++;
                    continue;
                }
                if (m.integrity_off) {
                    CHECK_EQ(be16(b + m.integrity_off), SLUICE_STUN_ATTR_MESSAGE_INTEGRITY);
                    CHECK_EQ(be16(b + m.integrity_off + 2), 20);
                    ref_mac(EVP_sha1(), kbytes, klens[k], b, m.integrity_off, 20, want);
                    if (memcmp(b + m.integrity_off + 4, want, 20) != 0)
                        bad++;
                }
                if (m.integrity256_off) {
                    CHECK_EQ(be16(b + m.integrity256_off + 2), 32);
                    ref_mac(EVP_sha256(), kbytes, klens[k], b, m.integrity256_off, 32, want);
                    if (memcmp(b + m.integrity256_off + 4, want, 32) != 0)
                        bad++;
                }
                if (sluice_stun_check_integrity(&m, &key) != 0)
                    bad++;
                if (bad && bad < 3)
                    fprintf(stderr, "#   key %zu bytes, data %zu, mode %d\n", klens[k],
                            dlens[d], modes[md]);
            }
        }
    }
    CHECK_EQ(bad, 0);
}

/* RFC 8489 §14.6: MI-SHA256 may be truncated to 16..32 bytes (multiples of
 * 4); the length field counts the truncated attribute. Built by hand. */
static void test_truncated_sha256(void)
{
    static const char pass[] = "VOkJxbRl1RmTxUk/WvJxBt";
    sluice_stun_key key;
    uint8_t b[512];

    CHECK_EQ(sluice_stun_key_short_term(&key, pass, strlen(pass)), 0);
    for (size_t tl = 8; tl <= 36; tl += 2) {
        uint8_t mac[32];
        sluice_stun_msg m;
        int n = build(b, sizeof b, &key, 0, 0);
        size_t off = (size_t)n, padded = (tl + 3) & ~(size_t)3;
        bool valid = tl >= 16 && tl <= 32 && tl % 4 == 0;

        ref_mac(EVP_sha256(), (const uint8_t *)pass, strlen(pass), b, off, padded, mac);
        put_be16(b + off, SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256);
        put_be16(b + off + 2, (uint16_t)tl);
        memset(b + off + 4, 0, padded);
        memcpy(b + off + 4, mac, tl < 32 ? tl : 32);
        put_be16(b + 2, (uint16_t)(off + 4 + padded - 20));
        if (!valid) {
            CHECK_EQ(sluice_stun_parse(&m, b, off + 4 + padded), SLUICE_ERR_MALFORMED);
            continue;
        }
        CHECK_EQ(sluice_stun_parse(&m, b, off + 4 + padded), 0);
        CHECK_EQ(m.integrity256_off, off);
        CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
        CHECK_EQ(sluice_stun_check_integrity_sha256(&m, &key), 0);
        b[off + 4 + tl - 1] ^= 1; /* last byte of the truncated MAC */
        CHECK_EQ(sluice_stun_check_integrity(&m, &key), SLUICE_ERR_INTEGRITY);
    }
}

/* RFC 8489 §14.5: attributes after MESSAGE-INTEGRITY are ignored and not
 * covered; the check uses the length as it was at MI. */
static void test_trailing_attrs_after_integrity(void)
{
    sluice_stun_key key;
    uint8_t b[512];
    sluice_stun_msg m;
    static const uint8_t extra[] = {0x80, 0x22, 0x00, 0x03, 'x', 'y', 'z', 0,
                                    0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4};
    int n;

    CHECK_EQ(sluice_stun_key_short_term(&key, "pw", 2), 0);
    n = build(b, sizeof b, &key, WITH_MI, 0);
    memcpy(b + n, extra, sizeof extra);
    put_be16(b + 2, (uint16_t)(n + (int)sizeof extra - 20));
    CHECK_EQ(sluice_stun_parse(&m, b, (size_t)n + sizeof extra), 0);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);

    /* A FINGERPRINT after MI does not change the MI either. */
    {
        sluice_stun_writer w;
        CHECK_EQ(sluice_stun_writer_init(&w, b, sizeof b, 0x0001, txid), 0);
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, "a:b", 3);
        sluice_stun_put_integrity(&w, &key);
        sluice_stun_put_integrity_sha256(&w, &key);
        sluice_stun_put_fingerprint(&w);
        n = sluice_stun_writer_result(&w);
        CHECK_EQ(sluice_stun_parse(&m, b, (size_t)n), 0);
        CHECK(m.fingerprint_off != 0);
        CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &key), 0);
        CHECK_EQ(sluice_stun_check_integrity_sha256(&m, &key), 0);
    }
}

/* Long-term keys are MD5/SHA-256 of "username:realm:password" (RFC 8489
 * §9.2.2): a raw key of that digest signs identically. */
static void test_long_term_key_derivation(void)
{
    static const struct {
        const char *user, *realm, *pass;
    } cases[] = {
        {"user", "realm", "pass"},
        {"", "", ""},
        {"\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9", "example.org",
         "TheMatrIX"},
        {"a:b", "c:d", "e:f"},
    };

    for (size_t i = 0; i < N(cases); i++) {
        char joined[256];
        uint8_t md5[16], sha[32];
        sluice_stun_key lt, raw, wrong;
        uint8_t b1[512], b2[512];
        int n1, n2;

        snprintf(joined, sizeof joined, "%s:%s:%s", cases[i].user, cases[i].realm,
                 cases[i].pass);
        digest(EVP_md5(), joined, md5);
        digest(EVP_sha256(), joined, sha);

        CHECK_EQ(sluice_stun_key_long_term(&lt, SLUICE_STUN_PWALG_MD5, cases[i].user,
                                           strlen(cases[i].user), cases[i].realm,
                                           strlen(cases[i].realm), cases[i].pass,
                                           strlen(cases[i].pass)),
                 0);
        CHECK_EQ(sluice_stun_key_raw(&raw, md5, sizeof md5), 0);
        n1 = build(b1, sizeof b1, &lt, WITH_MI | WITH_MI256, 5);
        n2 = build(b2, sizeof b2, &raw, WITH_MI | WITH_MI256, 5);
        CHECK(n1 > 0);
        CHECK_EQ(n1, n2);
        CHECK_MEM(b1, b2, (size_t)n1);
        /* Not the plain password as a short-term key. */
        CHECK_EQ(sluice_stun_key_short_term(&wrong, cases[i].pass, strlen(cases[i].pass)), 0);
        n1 = build(b1, sizeof b1, &lt, WITH_MI, 5);
        n2 = build(b2, sizeof b2, &wrong, WITH_MI, 5);
        CHECK_EQ(n1, n2);
        CHECK_MEM(b1, b2, (size_t)n1 - 20);
        CHECK(memcmp(b1 + n1 - 20, b2 + n1 - 20, 20) != 0);

        CHECK_EQ(sluice_stun_key_long_term(&lt, SLUICE_STUN_PWALG_SHA256, cases[i].user,
                                           strlen(cases[i].user), cases[i].realm,
                                           strlen(cases[i].realm), cases[i].pass,
                                           strlen(cases[i].pass)),
                 0);
        CHECK_EQ(sluice_stun_key_raw(&raw, sha, sizeof sha), 0);
        n1 = build(b1, sizeof b1, &lt, WITH_MI | WITH_MI256, 0);
        n2 = build(b2, sizeof b2, &raw, WITH_MI | WITH_MI256, 0);
        CHECK_EQ(n1, n2);
        CHECK_MEM(b1, b2, (size_t)n1);
    }

    {
        sluice_stun_key k;
        CHECK_EQ(sluice_stun_key_long_term(&k, 0, "u", 1, "r", 1, "p", 1),
                 SLUICE_ERR_UNSUPPORTED);
        CHECK_EQ(sluice_stun_key_long_term(&k, 3, "u", 1, "r", 1, "p", 1),
                 SLUICE_ERR_UNSUPPORTED);
        CHECK_EQ(sluice_stun_key_long_term(&k, SLUICE_STUN_PWALG_MD5, NULL, 1, "r", 1, "p", 1),
                 SLUICE_ERR_INVALID);
        CHECK_EQ(sluice_stun_key_long_term(NULL, SLUICE_STUN_PWALG_MD5, "u", 1, "r", 1, "p", 1),
                 SLUICE_ERR_INVALID);
    }
}

/* Rebuild the request of RFC 5769 §2.4 with the writer: the long-term MD5
 * key gives the published MESSAGE-INTEGRITY. (The vector itself is parsed
 * and checked in tests/vectors.) */
static void test_rfc5769_long_term(void)
{
    static const char user[] =
        "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";
    static const char nonce[] = "f//499k954d6OL34oL9FSTvy64sA";
    static const char realm[] = "example.org";
    static const uint8_t mi[20] = {0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02, 0xb8,
                                   0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66};
    sluice_stun_key key;
    sluice_stun_writer w;
    sluice_stun_msg m;
    uint8_t b[256];
    int n;

    CHECK_EQ(sluice_stun_key_long_term(&key, SLUICE_STUN_PWALG_MD5, user, strlen(user), realm,
                                       strlen(realm), "TheMatrIX", 9),
             0);
    CHECK_EQ(sluice_stun_writer_init(&w, b, sizeof b, 0x0001, txid), 0);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, user, strlen(user));
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, nonce, strlen(nonce));
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, realm, strlen(realm));
    sluice_stun_put_integrity(&w, &key);
    n = sluice_stun_writer_result(&w);
    CHECK_EQ(n, 20 + 0x60);
    CHECK_MEM(b + n - 20, mi, 20);
    CHECK_EQ(sluice_stun_parse(&m, b, (size_t)n), 0);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
}

/* USERHASH = SHA-256(username ":" realm), RFC 8489 §14.4. */
static void test_userhash(void)
{
    static const struct {
        const char *user, *realm;
    } cases[] = {
        {"user", "example.org"},
        {"", ""},
        {"\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9", "example.org"},
        {"a:b", "c"},
    };

    for (size_t i = 0; i < N(cases); i++) {
        char joined[128];
        uint8_t want[32], got[32];
        snprintf(joined, sizeof joined, "%s:%s", cases[i].user, cases[i].realm);
        digest(EVP_sha256(), joined, want);
        memset(got, 0, sizeof got);
        CHECK_EQ(sluice_stun_userhash(got, cases[i].user, strlen(cases[i].user), cases[i].realm,
                                      strlen(cases[i].realm)),
                 0);
        CHECK_MEM(got, want, 32);
    }
    {
        uint8_t out[32];
        CHECK_EQ(sluice_stun_userhash(NULL, "u", 1, "r", 1), SLUICE_ERR_INVALID);
        CHECK_EQ(sluice_stun_userhash(out, NULL, 1, "r", 1), SLUICE_ERR_INVALID);
        CHECK_EQ(sluice_stun_userhash(out, "u", 1, NULL, 1), SLUICE_ERR_INVALID);
    }
}

/* Keys are plain values; a cleared or never-made key signs nothing. */
static void test_key_lifecycle(void)
{
    sluice_stun_key key, copy, zero;
    uint8_t b1[512], b2[512];
    sluice_stun_writer w;
    sluice_stun_msg m;
    int n1, n2;

    CHECK_EQ(sluice_stun_key_short_term(&key, "pw", 2), 0);
    memcpy(&copy, &key, sizeof key);
    n1 = build(b1, sizeof b1, &key, WITH_MI | WITH_MI256, 0);
    n2 = build(b2, sizeof b2, &copy, WITH_MI | WITH_MI256, 0);
    CHECK_EQ(n1, n2);
    CHECK_MEM(b1, b2, (size_t)n1);
    /* Many checks with one key give one answer (cached state not consumed). */
    CHECK_EQ(sluice_stun_parse(&m, b1, (size_t)n1), 0);
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &key), 0);
        CHECK_EQ(sluice_stun_check_integrity_sha256(&m, &key), 0);
    }

    sluice_stun_key_clear(&copy);
    CHECK_EQ(sluice_stun_check_integrity(&m, &copy), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_writer_init(&w, b2, sizeof b2, 0x0001, txid), 0);
    CHECK_EQ(sluice_stun_put_integrity(&w, &copy), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_writer_init(&w, b2, sizeof b2, 0x0001, txid), 0);
    CHECK_EQ(sluice_stun_put_integrity_sha256(&w, &copy), SLUICE_ERR_INVALID);
    memset(&zero, 0, sizeof zero);
    CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &zero), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_check_integrity(&m, NULL), SLUICE_ERR_INVALID);
    sluice_stun_key_clear(NULL);

    CHECK_EQ(sluice_stun_key_raw(&key, NULL, 1), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_key_raw(NULL, (const uint8_t *)"k", 1), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_key_short_term(&key, NULL, 1), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_key_short_term(&key, NULL, 0), 0); /* empty password */
    CHECK_EQ(sluice_stun_key_raw(&key, NULL, 0), 0);

    /* No integrity at all. */
    n1 = build(b1, sizeof b1, &key, 0, 0);
    CHECK_EQ(sluice_stun_parse(&m, b1, (size_t)n1), 0);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), SLUICE_ERR_NOT_FOUND);
}

int main(void)
{
    RUN(test_sign_and_tamper);
    RUN(test_sha256_preferred);
    RUN(test_sha256_renamed);
    RUN(test_hmac_reference);
    RUN(test_truncated_sha256);
    RUN(test_trailing_attrs_after_integrity);
    RUN(test_long_term_key_derivation);
    RUN(test_rfc5769_long_term);
    RUN(test_userhash);
    RUN(test_key_lifecycle);
    return TEST_DONE();
}
