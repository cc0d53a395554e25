/* SPDX-License-Identifier: MIT */
/* Coordinator frame codec and helpers: header rules as a table, every
 * payload decoder at every truncation length (each input in a buffer of
 * exactly its size, so a sanitizer build catches any over-read), syntax
 * rules, fingerprints, TURN REST credentials checked against OpenSSL's
 * HMAC, identity files, the credit rule. */
#include <sys/stat.h>

#include <openssl/hmac.h>

#include "coord/frame.h"
#include "coord_util.h"

/* Decode p[0..n) from a heap copy of exactly n bytes. */
typedef int (*dec_fn)(const uint8_t *p, size_t n, void *out);

/* The copy lives until the next call, so the views in out stay valid. */
static uint8_t *last_copy;

static int run_dec(dec_fn f, const uint8_t *p, size_t n, void *out)
{
    free(last_copy);
    last_copy = malloc(n ? n : 1);
    if (n)
        memcpy(last_copy, p, n);
    return f(last_copy, n, out);
}

static int dec_hello(const uint8_t *p, size_t n, void *o) { return coord_dec_hello(p, n, o); }
static int dec_welcome(const uint8_t *p, size_t n, void *o) { return coord_dec_welcome(p, n, o); }
static int dec_error(const uint8_t *p, size_t n, void *o) { return coord_dec_error(p, n, o); }
static int dec_open(const uint8_t *p, size_t n, void *o) { return coord_dec_open(p, n, o); }
static int dec_accept(const uint8_t *p, size_t n, void *o) { return coord_dec_accept(p, n, o); }
static int dec_bcast(const uint8_t *p, size_t n, void *o) { return coord_dec_bcast(p, n, o); }
static int dec_u32(const uint8_t *p, size_t n, void *o) { return coord_dec_u32(p, n, o); }

/* Every proper prefix decodes as TRUNCATED, or as 0 where the format has a
 * boundary there (listed in ok_at, terminated by SIZE_MAX). */
static void every_truncation(dec_fn f, const uint8_t *p, size_t n, const size_t *ok_at)
{
    union {
        coord_hello h;
        coord_welcome w;
        coord_error e;
        coord_open o;
        coord_attrs a;
        coord_bcast b;
        uint32_t v;
    } out;
    CHECK_EQ(run_dec(f, p, n, &out), 0);
    for (size_t k = 0; k < n; k++) {
        bool ok = false;
        for (const size_t *q = ok_at; q && *q != SIZE_MAX; q++)
            ok |= *q == k;
        int r = run_dec(f, p, k, &out);
        if (ok)
            CHECK_EQ(r, 0);
        else if (r != SLUICE_ERR_TRUNCATED) {
            fprintf(stderr, "# truncation at %zu of %zu: %d\n", k, n, r);
            CHECK(0);
        }
    }
}

static void test_header_rules(void)
{
    static const struct {
        uint8_t type, flags;
        uint16_t reserved;
        uint32_t stream, len;
        int want, code;
    } rows[] = {
        {CF_HELLO, 0, 0, 0, 10, 0, 0},
        {CF_HELLO, 0, 0, 1, 10, SLUICE_ERR_MALFORMED, SLUICE_COORD_E_PROTOCOL}, /* on a stream */
        {CF_OPEN, 0, 0, 0, 10, SLUICE_ERR_MALFORMED, SLUICE_COORD_E_PROTOCOL},  /* on stream 0 */
        {CF_OPEN, 0, 0, 1, COORD_MAX_CONTROL, 0, 0},
        {CF_OPEN, 0, 0, 1, COORD_MAX_CONTROL + 1, SLUICE_ERR_MALFORMED, SLUICE_COORD_E_PROTOCOL},
        {CF_DATA, 0, 0, 1, 1000, 0, 0},
        {CF_DATA, 0, 0, 1, 1001, SLUICE_ERR_MALFORMED, SLUICE_COORD_E_TOO_BIG},
        {CF_DATA, 0, 0, 1, 0xFFFFFFFFu, SLUICE_ERR_MALFORMED, SLUICE_COORD_E_TOO_BIG},
        {CF_BCAST_DATA, 0, 0, 1, 1000 + 64, 0, 0},
        {CF_BCAST_DATA, 0, 0, 1, 1000 + 65, SLUICE_ERR_MALFORMED, SLUICE_COORD_E_TOO_BIG},
        {0, 0, 0, 0, 0, SLUICE_ERR_MALFORMED, SLUICE_COORD_E_PROTOCOL},   /* unknown */
        {15, 0, 0, 1, 0, SLUICE_ERR_MALFORMED, SLUICE_COORD_E_PROTOCOL},  /* unknown */
        {255, 0, 0, 1, 0, SLUICE_ERR_MALFORMED, SLUICE_COORD_E_PROTOCOL}, /* unknown */
        {CF_CLOSE, 1, 0, 1, 0, SLUICE_ERR_MALFORMED, SLUICE_COORD_E_PROTOCOL},  /* flags */
        {CF_CLOSE, 0, 0x8000, 1, 0, SLUICE_ERR_MALFORMED, SLUICE_COORD_E_PROTOCOL},
        {CF_PING, 0, 0, 0, 8, 0, 0},
        {CF_PONG, 0, 0, 7, 8, SLUICE_ERR_MALFORMED, SLUICE_COORD_E_PROTOCOL},
        {CF_CREDIT, 0, 0, 0xFFFFFFFFu, 4, 0, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint8_t b[12];
        coord_hdr h;
        const char *why = "";
        int code = -1;
        b[0] = rows[i].type;
        b[1] = rows[i].flags;
        b[2] = (uint8_t)(rows[i].reserved >> 8);
        b[3] = (uint8_t)rows[i].reserved;
        b[4] = (uint8_t)(rows[i].stream >> 24);
        b[5] = (uint8_t)(rows[i].stream >> 16);
        b[6] = (uint8_t)(rows[i].stream >> 8);
        b[7] = (uint8_t)rows[i].stream;
        b[8] = (uint8_t)(rows[i].len >> 24);
        b[9] = (uint8_t)(rows[i].len >> 16);
        b[10] = (uint8_t)(rows[i].len >> 8);
        b[11] = (uint8_t)rows[i].len;
        CHECK_EQ(coord_hdr_parse(b, 12, &h), 0);
        CHECK_EQ(h.stream, rows[i].stream);
        CHECK_EQ(h.len, rows[i].len);
        int r = coord_hdr_check(&h, 1000, &why, &code);
        if (r != rows[i].want)
            fprintf(stderr, "# row %zu: %d (%s)\n", i, r, why);
        CHECK_EQ(r, rows[i].want);
        if (r)
            CHECK_EQ(code, rows[i].code);
    }
    for (size_t n = 0; n < 12; n++) {
        uint8_t b[12] = {0};
        coord_hdr h;
        CHECK_EQ(coord_hdr_parse(b, n, &h), SLUICE_ERR_TRUNCATED);
    }
    uint8_t w[12];
    coord_hdr h;
    coord_hdr_write(w, CF_DATA, 0x01020304u, 0x0A0B0C0Du);
    CHECK_EQ(coord_hdr_parse(w, 12, &h), 0);
    CHECK_EQ(h.type, CF_DATA);
    CHECK_EQ(h.stream, 0x01020304u);
    CHECK_EQ(h.len, 0x0A0B0C0Du);
    CHECK_STR(coord_frame_name(CF_BCAST_DATA), "BCAST_DATA");
    CHECK_STR(coord_frame_name(99), "?");
}

static void test_payload_round_trips(void)
{
    uint8_t b[COORD_MAX_CONTROL];
    int n;

    /* HELLO */
    coord_hello hello;
    n = coord_enc_hello(b, sizeof b, "alice");
    CHECK_EQ(n, 2 + 2 + 1 + 5);
    CHECK_EQ(run_dec(dec_hello, b, (size_t)n, &hello), 0);
    CHECK_EQ(hello.version, SLUICE_COORD_VERSION);
    every_truncation(dec_hello, b, (size_t)n, NULL);
    b[n] = 0;
    CHECK_EQ(run_dec(dec_hello, b, (size_t)n + 1, &hello), SLUICE_ERR_MALFORMED);
    b[3] = 1; /* reserved */
    CHECK_EQ(run_dec(dec_hello, b, (size_t)n, &hello), SLUICE_ERR_MALFORMED);

    /* WELCOME */
    coord_welcome w = {SLUICE_COORD_VERSION, 65536, 262144, 60000}, w2;
    n = coord_enc_welcome(b, sizeof b, &w);
    CHECK_EQ(n, 16);
    CHECK_EQ(run_dec(dec_welcome, b, 16, &w2), 0);
    CHECK_EQ(w2.max_message, 65536);
    CHECK_EQ(w2.window, 262144);
    CHECK_EQ(w2.idle_timeout_ms, 60000);
    every_truncation(dec_welcome, b, 16, NULL);
    w.window = 65536 + 11; /* cannot carry one largest message */
    n = coord_enc_welcome(b, sizeof b, &w);
    CHECK_EQ(run_dec(dec_welcome, b, (size_t)n, &w2), SLUICE_ERR_MALFORMED);

    /* ERROR / REFUSE / RESET */
    coord_error e;
    n = coord_enc_error(b, sizeof b, 3, "name taken");
    CHECK_EQ(n, 2 + 1 + 10);
    CHECK_EQ(run_dec(dec_error, b, (size_t)n, &e), 0);
    CHECK_EQ(e.code, 3);
    CHECK_EQ(e.reason.len, 10);
    CHECK_MEM(e.reason.p, "name taken", 10);
    every_truncation(dec_error, b, (size_t)n, NULL);
    char longr[400];
    memset(longr, 'x', sizeof longr - 1);
    longr[sizeof longr - 1] = 0;
    n = coord_enc_error(b, sizeof b, 1, longr); /* cut, not refused */
    CHECK_EQ(n, 3 + SLUICE_COORD_REASON_MAX);
    CHECK_EQ(coord_enc_error(b, 10, 1, "a reason too long for 10"), SLUICE_ERR_NOSPACE);

    /* OPEN with every attribute */
    uint8_t fp[32];
    for (int i = 0; i < 32; i++)
        fp[i] = (uint8_t)i;
    coord_attrs a;
    memset(&a, 0, sizeof a);
    a.fingerprint = fp;
    a.turn_username = (coord_str){"1700086400:bob", 14};
    a.turn_password = (coord_str){"pw", 2};
    a.turn_ttl_s = 86400;
    a.has_turn_ttl = true;
    a.turn_uris[0] = (coord_str){"turn:a", 6};
    a.turn_uris[1] = (coord_str){"turns:b", 7};
    a.n_turn_uris = 2;
    a.wait_ms = 1234;
    a.has_wait = true;
    n = coord_enc_open(b, sizeof b, SLUICE_COORD_KIND_DIRECT, 0, "bob", "sluice-ice/video", &a);
    CHECK(n > 0);
    coord_open o;
    CHECK_EQ(run_dec(dec_open, b, (size_t)n, &o), 0);
    CHECK_EQ(o.kind, SLUICE_COORD_KIND_DIRECT);
    CHECK_EQ(o.name.len, 3);
    CHECK_EQ(o.label.len, 16);
    CHECK(o.attrs.fingerprint && memcmp(o.attrs.fingerprint, fp, 32) == 0);
    CHECK_EQ(o.attrs.turn_username.len, 14);
    CHECK_EQ(o.attrs.turn_ttl_s, 86400);
    CHECK_EQ(o.attrs.n_turn_uris, 2);
    CHECK_EQ(o.attrs.wait_ms, 1234);
    /* Prefixes that end at an attribute boundary are valid OPENs. */
    size_t base = 2 + 1 + 3 + 1 + 16;
    size_t bounds[8], nb = 0;
    bounds[nb++] = base;
    size_t off = base;
    size_t lens[] = {32, 14, 2, 4, 6, 7, 4};
    for (size_t i = 0; i < 6; i++) {
        off += 3 + lens[i];
        bounds[nb++] = off;
    }
    bounds[nb] = SIZE_MAX;
    every_truncation(dec_open, b, (size_t)n, bounds);
    /* Bad kind, bad flags. */
    uint8_t bad[64];
    memcpy(bad, b, base);
    bad[0] = 0;
    CHECK_EQ(run_dec(dec_open, bad, base, &o), SLUICE_ERR_MALFORMED);
    bad[0] = 5;
    CHECK_EQ(run_dec(dec_open, bad, base, &o), SLUICE_ERR_MALFORMED);
    bad[0] = SLUICE_COORD_KIND_PEER;
    bad[1] = 2;
    CHECK_EQ(run_dec(dec_open, bad, base, &o), SLUICE_ERR_MALFORMED);

    /* Attribute rules: duplicates, lengths, five URIs; unknown skipped. */
    static const uint8_t dup_fp[] = {1, 0, 32, [3 ... 34] = 7, 1, 0, 32, [38 ... 69] = 7};
    CHECK_EQ(run_dec(dec_accept, dup_fp, sizeof dup_fp, &a), SLUICE_ERR_MALFORMED);
    static const uint8_t short_fp[] = {1, 0, 31, [3 ... 33] = 7};
    CHECK_EQ(run_dec(dec_accept, short_fp, sizeof short_fp, &a), SLUICE_ERR_MALFORMED);
    static const uint8_t empty_user[] = {2, 0, 0};
    CHECK_EQ(run_dec(dec_accept, empty_user, sizeof empty_user, &a), SLUICE_ERR_MALFORMED);
    static const uint8_t bad_ttl[] = {4, 0, 3, 1, 2, 3};
    CHECK_EQ(run_dec(dec_accept, bad_ttl, sizeof bad_ttl, &a), SLUICE_ERR_MALFORMED);
    static const uint8_t five_uris[] = {5, 0, 1, 'a', 5, 0, 1, 'b', 5, 0, 1, 'c',
                                        5, 0, 1, 'd', 5, 0, 1, 'e'};
    CHECK_EQ(run_dec(dec_accept, five_uris, sizeof five_uris, &a), SLUICE_ERR_MALFORMED);
    CHECK_EQ(run_dec(dec_accept, five_uris, sizeof five_uris - 4, &a), 0);
    CHECK_EQ(a.n_turn_uris, 4);
    static const uint8_t unknown[] = {200, 0, 2, 9, 9, 4, 0, 4, 0, 0, 0, 60};
    CHECK_EQ(run_dec(dec_accept, unknown, sizeof unknown, &a), 0);
    CHECK(a.has_turn_ttl && a.turn_ttl_s == 60);
    CHECK_EQ(run_dec(dec_accept, unknown, 4, &a), SLUICE_ERR_TRUNCATED);
    CHECK_EQ(run_dec(dec_accept, unknown, 0, &a), 0);

    /* BCAST_DATA */
    coord_bcast bc;
    n = coord_enc_bcast_prefix(b, sizeof b, "carol");
    CHECK_EQ(n, 6);
    memcpy(b + 6, "hello", 5);
    CHECK_EQ(run_dec(dec_bcast, b, 11, &bc), 0);
    CHECK_EQ(bc.sender.len, 5);
    CHECK_EQ(bc.len, 5);
    size_t bb[] = {6, 7, 8, 9, 10, SIZE_MAX};
    every_truncation(dec_bcast, b, 11, bb);

    /* CREDIT / LAG */
    uint32_t v;
    n = coord_enc_u32(b, sizeof b, 4096);
    CHECK_EQ(run_dec(dec_u32, b, 4, &v), 0);
    CHECK_EQ(v, 4096);
    every_truncation(dec_u32, b, 4, NULL);
    memset(b, 0, 4);
    CHECK_EQ(run_dec(dec_u32, b, 4, &v), SLUICE_ERR_MALFORMED); /* zero credit */
    CHECK_EQ(run_dec(dec_u32, b, 5, &v), SLUICE_ERR_MALFORMED);

    /* Encoders: strings over 255 bytes are refused, buffers respected. */
    char big[300];
    memset(big, 'a', 299);
    big[299] = 0;
    CHECK_EQ(coord_enc_open(b, sizeof b, 2, 0, big, "", NULL), SLUICE_ERR_INVALID);
    CHECK_EQ(coord_enc_open(b, 5, 2, 0, "bob", "", NULL), SLUICE_ERR_NOSPACE);
    CHECK_EQ(coord_enc_hello(b, 4, "alice"), SLUICE_ERR_NOSPACE);
}

static void test_syntax(void)
{
    static const struct {
        const char *s;
        bool name, channel, label;
    } rows[] = {
        {"alice", true, true, true},
        {"a", true, true, true},
        {"a.b_c-d9", true, true, true},
        {"", false, false, true},
        {"-alice", false, true, true},
        {".x", false, true, true},
        {"al ice", false, false, true},
        {"al:ice", false, true, true},
        {"room/1", false, true, true},
        {"sluice-ice/video", false, true, true},
        {"tab\there", false, false, false},
        {"\x7f", false, false, false},
        {"caf\xc3\xa9", false, false, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t n = strlen(rows[i].s);
        CHECK_EQ(coord_name_ok(rows[i].s, n), rows[i].name);
        CHECK_EQ(coord_channel_ok(rows[i].s, n), rows[i].channel);
        CHECK_EQ(coord_label_ok(rows[i].s, n), rows[i].label);
        CHECK_EQ(sluice_coord_name_valid(rows[i].s), rows[i].name);
    }
    char s[200];
    memset(s, 'a', sizeof s);
    CHECK(coord_name_ok(s, 63));
    CHECK(!coord_name_ok(s, 64));
    CHECK(coord_channel_ok(s, 127));
    CHECK(!coord_channel_ok(s, 128));
    CHECK(coord_label_ok(s, 127));
    CHECK(!coord_label_ok(s, 128));
    CHECK(!sluice_coord_name_valid(NULL));
    char r[8];
    coord_copy_reason(r, sizeof r, "a\nb\x01\x7f" "cdefgh", 10);
    CHECK_STR(r, "a?b??cd");
    coord_copy_reason(r, sizeof r, "", 0);
    CHECK_STR(r, "");
    for (int code = 0; code <= 102; code++)
        CHECK(sluice_coord_code_name(code) != NULL);
    CHECK_STR(sluice_coord_code_name(SLUICE_COORD_E_NAME_TAKEN), "name taken");
    CHECK_STR(sluice_coord_code_name(5000), "unknown code");
}

static void test_fingerprints(void)
{
    uint8_t fp[32], back[32];
    char text[96];
    for (int i = 0; i < 32; i++)
        fp[i] = (uint8_t)(i * 37 + 5);
    CHECK_EQ(sluice_coord_fingerprint_format(fp, text, sizeof text), 95);
    CHECK_EQ(strlen(text), 95);
    CHECK(strncmp(text, "05:2A:4F:", 9) == 0);
    CHECK_EQ(sluice_coord_fingerprint_format(fp, text, 95), SLUICE_ERR_NOSPACE);
    CHECK_EQ(sluice_coord_fingerprint_format(fp, text, sizeof text), 95);
    CHECK_EQ(sluice_coord_fingerprint_parse(text, back), 0);
    CHECK_MEM(fp, back, 32);
    /* Lower case, without colons. */
    char plain[65];
    for (int i = 0; i < 32; i++)
        snprintf(plain + 2 * i, 3, "%02x", fp[i]);
    CHECK_EQ(sluice_coord_fingerprint_parse(plain, back), 0);
    CHECK_MEM(fp, back, 32);
    text[2] = '-';
    CHECK_EQ(sluice_coord_fingerprint_parse(text, back), SLUICE_ERR_MALFORMED);
    plain[10] = 'g';
    CHECK_EQ(sluice_coord_fingerprint_parse(plain, back), SLUICE_ERR_MALFORMED);
    CHECK_EQ(sluice_coord_fingerprint_parse("AB:CD", back), SLUICE_ERR_MALFORMED);
    CHECK_EQ(sluice_coord_fingerprint_parse(NULL, back), SLUICE_ERR_MALFORMED);
}

static void test_turn_rest(void)
{
    char user[96], pass[32];
    CHECK_EQ(sluice_coord_turn_rest_credentials("north-wind", "alice", T_UNIX, 86400, user,
                                                sizeof user, pass, sizeof pass),
             0);
    CHECK_STR(user, "1700086400:alice");
    /* The password is base64(HMAC-SHA1(secret, username)), computed here
     * with OpenSSL's own HMAC. */
    uint8_t mac[20];
    unsigned int mlen = 0;
    HMAC(EVP_sha1(), "north-wind", 10, (const uint8_t *)user, strlen(user), mac, &mlen);
    CHECK_EQ(mlen, 20);
    char want[32];
    EVP_EncodeBlock((unsigned char *)want, mac, 20);
    CHECK_STR(pass, want);
    CHECK_EQ(strlen(pass), 28);
    CHECK_EQ(sluice_coord_turn_rest_credentials("", "alice", T_UNIX, 1, user, sizeof user, pass,
                                                sizeof pass),
             SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_turn_rest_credentials("k", "a:b", T_UNIX, 1, user, sizeof user, pass,
                                                sizeof pass),
             SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_turn_rest_credentials("k", "alice", T_UNIX, 1, user, 8, pass,
                                                sizeof pass),
             SLUICE_ERR_NOSPACE);
    CHECK_EQ(sluice_coord_turn_rest_credentials("k", "alice", T_UNIX, 1, user, sizeof user, pass,
                                                28),
             SLUICE_ERR_NOSPACE);
}

static void test_identity_files(void)
{
    char cert[128], key[128];
    uint8_t fp[32], fp2[32], fp3[32];
    struct stat st;
    cu_path(cert, sizeof cert, "ident.pem");
    cu_path(key, sizeof key, "ident-key.pem");
    CHECK_EQ(sluice_coord_generate_identity("ivan", cert, key, fp), 0);
    CHECK_EQ(stat(key, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(stat(cert, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0644);
    /* CN and SAN name, fixed validity, the fingerprint of the file. */
    FILE *f = fopen(cert, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    CHECK(x != NULL);
    if (x) {
        CHECK(sluice_tls_cert_has_name(x, "ivan"));
        CHECK(!sluice_tls_cert_has_name(x, "ivan2"));
        CHECK(!sluice_tls_cert_has_name(x, "IVAN"));
        struct tm tm;
        CHECK_EQ(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm), 1);
        CHECK_EQ(tm.tm_year + 1900, 9999);
        CHECK_EQ(ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm), 1);
        CHECK_EQ(tm.tm_year + 1900, 2000);
        unsigned int n = 0;
        uint8_t d[32];
        X509_digest(x, EVP_sha256(), d, &n);
        CHECK_MEM(d, fp, 32);
        EVP_PKEY *pk = X509_get0_pubkey(x);
        CHECK(pk && EVP_PKEY_is_a(pk, "EC"));
        X509_free(x);
    }
    /* ensure: kept when valid for the name, replaced otherwise. */
    CHECK_EQ(sluice_coord_ensure_identity("ivan", cert, key, fp2), 0);
    CHECK_MEM(fp, fp2, 32);
    CHECK_EQ(sluice_coord_ensure_identity("judy", cert, key, fp3), 1);
    CHECK(memcmp(fp, fp3, 32) != 0);
    CHECK_EQ(sluice_coord_ensure_identity("judy", cert, key, fp2), 0);
    CHECK_MEM(fp3, fp2, 32);
    unlink(key);
    CHECK_EQ(sluice_coord_ensure_identity("judy", cert, key, fp2), 1);
    CHECK(memcmp(fp3, fp2, 32) != 0);
    CHECK_EQ(sluice_coord_generate_identity("no way", cert, key, NULL), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_generate_identity("ivan", cert, cert, NULL), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_generate_identity("ivan", "/nonexistent/dir/c.pem",
                                            "/nonexistent/dir/k.pem", NULL),
             SLUICE_ERR_STATE);
    unlink(cert);
    unlink(key);
}

static void test_credit_rule(void)
{
    /* A quarter of the window... */
    CHECK(!coord_credit_due(0, 262144, 65536));
    CHECK(!coord_credit_due(65535, 262144, 65536));
    CHECK(coord_credit_due(65536, 262144, 65536));
    /* ...or at once when the window is barely above one message. */
    uint64_t w = SLUICE_COORD_MESSAGE_COST(65536);
    CHECK(coord_credit_due(1, w, 65536));
    CHECK(!coord_credit_due(0, w, 65536));
    CHECK(!coord_credit_due(100, w + 100, 65536));
    CHECK(coord_credit_due(101, w + 100, 65536));
    CHECK_EQ(SLUICE_COORD_MESSAGE_COST(0), 12);
}

int main(void)
{
    if (!cu_setup_files()) {
        printf("Bail out! cannot make test files\n");
        return 1;
    }
    RUN(test_header_rules);
    RUN(test_payload_round_trips);
    RUN(test_syntax);
    RUN(test_fingerprints);
    RUN(test_turn_rest);
    RUN(test_identity_files);
    RUN(test_credit_rule);
    cu_remove_files();
    free(last_copy);
    return TEST_DONE();
}
