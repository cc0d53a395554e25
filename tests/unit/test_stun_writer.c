/* SPDX-License-Identifier: MIT */
/* Unit tests for the STUN writer (src/stun/writer.c): buffer limits, sticky
 * errors, sealing order, copies, the largest message. */
#include <sys/wait.h>
#include <unistd.h>

#include "sluice/stun.h"
#include "test.h"

#include "stun_codec_util.h"

static void test_writer_nospace_every_size(void)
{
    sluice_stun_key key = test_key();
    static uint8_t full[1024], b[1024 + 64];
    sluice_stun_writer wr;
    sluice_stun_msg m;
    int need = build_everything(&wr, full, sizeof full, &key);

    CHECK(need > 200);
    if (need <= 0)
        return;
    CHECK_EQ(sluice_stun_parse(&m, full, (size_t)need), 0);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
    CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &key), 0);

    for (size_t cap = 0; cap < (size_t)need; cap++) {
        size_t j;
        memset(b, 0xC3, sizeof b);
        CHECK_EQ(build_everything(&wr, b, cap, &key), SLUICE_ERR_NOSPACE);
        CHECK(wr.len <= cap);
        for (j = cap; j < sizeof b && b[j] == 0xC3; j++)
            ;
        if (j != sizeof b) {
            CHECK_EQ(j, sizeof b); /* byte written past cap */
            fprintf(stderr, "#   cap %zu: byte %zu written\n", cap, j);
        }
    }
    memset(b, 0xC3, sizeof b);
    CHECK_EQ(build_everything(&wr, b, (size_t)need, &key), need);
    CHECK_MEM(b, full, (size_t)need);
    CHECK_EQ(b[need], 0xC3);
}

static void test_writer_sticky(void)
{
    uint8_t small[28];
    sluice_stun_writer wr;

    /* NOSPACE stays, even when a smaller attribute would still fit. */
    CHECK_EQ(sluice_stun_writer_init(&wr, small, sizeof small, 0x0001, txid), 0);
    CHECK_EQ(sluice_stun_put(&wr, SLUICE_STUN_ATTR_DATA, "12345678", 8), SLUICE_ERR_NOSPACE);
    CHECK_EQ(wr.len, 20);
    CHECK_EQ(sluice_stun_put_empty(&wr, SLUICE_STUN_ATTR_USE_CANDIDATE), SLUICE_ERR_NOSPACE);
    CHECK_EQ(sluice_stun_put_u32(&wr, SLUICE_STUN_ATTR_PRIORITY, 1), SLUICE_ERR_NOSPACE);
    CHECK_EQ(sluice_stun_put_fingerprint(&wr), SLUICE_ERR_NOSPACE);
    CHECK_EQ(wr.len, 20);
    CHECK_EQ(sluice_stun_writer_result(&wr), SLUICE_ERR_NOSPACE);
    CHECK_EQ(be16(small + 2), 0);

    /* INVALID stays too, and the first error wins. */
    begin();
    CHECK_EQ(sluice_stun_put_error_code(&w, 99, NULL), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, 1), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_put_fingerprint(&w), SLUICE_ERR_INVALID);
    CHECK_EQ(w.len, 20);
    CHECK_EQ(sluice_stun_writer_result(&w), SLUICE_ERR_INVALID);

    /* Header-level failures. */
    CHECK_EQ(sluice_stun_writer_init(&wr, small, 19, 0x0001, txid), SLUICE_ERR_NOSPACE);
    CHECK_EQ(sluice_stun_writer_result(&wr), SLUICE_ERR_NOSPACE);
    CHECK_EQ(sluice_stun_writer_init(&wr, small, sizeof small, 0x4001, txid), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_writer_init(&wr, small, sizeof small, 0xC001, txid), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_writer_init(&wr, NULL, 100, 0x0001, txid), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_writer_init(NULL, small, sizeof small, 0x0001, txid), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_writer_init(&wr, small, 20, 0x0001, NULL), 0);
    for (int i = 8; i < 20; i++)
        CHECK_EQ(small[i], 0);
    CHECK_EQ(sluice_stun_writer_result(&wr), 20);
}

static void test_writer_seal_order(void)
{
    sluice_stun_key key = test_key();
    sluice_stun_msg m;

    /* RFC 8489 §14.5: nothing but MI-SHA256 and FINGERPRINT after MI. */
    begin();
    CHECK_EQ(sluice_stun_put_integrity(&w, &key), 0);
    CHECK_EQ(sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, 1), SLUICE_ERR_STATE);
    CHECK_EQ(sluice_stun_writer_result(&w), SLUICE_ERR_STATE);
    begin();
    CHECK_EQ(sluice_stun_put_integrity(&w, &key), 0);
    CHECK_EQ(sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, "x", 1), SLUICE_ERR_STATE);
    begin();
    CHECK_EQ(sluice_stun_put_integrity(&w, &key), 0);
    CHECK_EQ(sluice_stun_put_empty(&w, SLUICE_STUN_ATTR_USE_CANDIDATE), SLUICE_ERR_STATE);
    begin();
    CHECK_EQ(sluice_stun_put_integrity(&w, &key), 0);
    CHECK_EQ(sluice_stun_put_integrity(&w, &key), SLUICE_ERR_STATE);
    begin();
    CHECK_EQ(sluice_stun_put_integrity_sha256(&w, &key), 0);
    CHECK_EQ(sluice_stun_put_integrity(&w, &key), SLUICE_ERR_STATE);
    begin();
    CHECK_EQ(sluice_stun_put_integrity_sha256(&w, &key), 0);
    CHECK_EQ(sluice_stun_put_integrity_sha256(&w, &key), SLUICE_ERR_STATE);
    begin();
    CHECK_EQ(sluice_stun_put_integrity_sha256(&w, &key), 0);
    CHECK_EQ(sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, NULL),
             SLUICE_ERR_INVALID);

    /* MI, MI-SHA256, FINGERPRINT is a valid order. */
    begin();
    CHECK_EQ(sluice_stun_put_integrity(&w, &key), 0);
    CHECK_EQ(sluice_stun_put_integrity_sha256(&w, &key), 0);
    CHECK_EQ(sluice_stun_put_fingerprint(&w), 0);
    CHECK_EQ(finish(&m), 0);
    CHECK(m.integrity_off && m.integrity256_off && m.fingerprint_off);

    /* §14.7: after FINGERPRINT nothing else, not even integrity. */
    for (int k = 0; k < 6; k++) {
        int rc;
        begin();
        CHECK_EQ(sluice_stun_put_fingerprint(&w), 0);
        switch (k) {
        case 0: rc = sluice_stun_put_fingerprint(&w); break;
        case 1: rc = sluice_stun_put_integrity(&w, &key); break;
        case 2: rc = sluice_stun_put_integrity_sha256(&w, &key); break;
        case 3: rc = sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, 1); break;
        case 4: rc = sluice_stun_put_empty(&w, SLUICE_STUN_ATTR_DONT_FRAGMENT); break;
        default: rc = sluice_stun_put(&w, SLUICE_STUN_ATTR_DATA, "x", 1); break;
        }
        CHECK_EQ(rc, SLUICE_ERR_STATE);
        CHECK_EQ(w.len, 28);
    }
    begin();
    CHECK_EQ(sluice_stun_put_integrity(&w, NULL), SLUICE_ERR_INVALID);
}

static void test_writer_init_copy(void)
{
    sluice_stun_key key = test_key();
    static uint8_t orig[512], copy[512];
    sluice_stun_writer wr;
    sluice_stun_msg m;
    int n, n2;

    CHECK_EQ(sluice_stun_writer_init(&wr, orig, sizeof orig,
                                     sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST),
                                     txid),
             0);
    sluice_stun_put_string(&wr, SLUICE_STUN_ATTR_SOFTWARE, "STUN test client", 16);
    sluice_stun_put_u32(&wr, SLUICE_STUN_ATTR_PRIORITY, 0x6e0001ff);
    sluice_stun_put_u64(&wr, SLUICE_STUN_ATTR_ICE_CONTROLLED, 0x932ff9b151263b36ull);
    sluice_stun_put_string(&wr, SLUICE_STUN_ATTR_USERNAME, "evtj:h6vY", 9);
    sluice_stun_put_integrity(&wr, &key);
    sluice_stun_put_fingerprint(&wr);
    n = sluice_stun_writer_result(&wr);
    CHECK(n > 0);
    CHECK_EQ(sluice_stun_parse(&m, orig, (size_t)n), 0);

    memset(copy, 0xAB, sizeof copy);
    CHECK_EQ(sluice_stun_writer_init_copy(&wr, copy, sizeof copy, &m), 0);
    CHECK_EQ(wr.len, m.integrity_off);
    CHECK_EQ(be16(copy + 2), m.integrity_off - 20);
    CHECK_MEM(copy, orig, 2);
    CHECK_MEM(copy + 4, orig + 4, m.integrity_off - 4);
    CHECK_EQ(copy[wr.len], 0xAB);
    /* Re-signing with the same key reproduces the message exactly. */
    sluice_stun_put_integrity(&wr, &key);
    sluice_stun_put_fingerprint(&wr);
    n2 = sluice_stun_writer_result(&wr);
    CHECK_EQ(n2, n);
    CHECK_MEM(copy, orig, (size_t)n);

    /* Every smaller buffer: NOSPACE, nothing past cap. */
    for (size_t cap = 0; cap < m.integrity_off; cap++) {
        size_t j;
        memset(copy, 0xAB, sizeof copy);
        CHECK_EQ(sluice_stun_writer_init_copy(&wr, copy, cap, &m), SLUICE_ERR_NOSPACE);
        CHECK_EQ(sluice_stun_writer_result(&wr), SLUICE_ERR_NOSPACE);
        for (j = cap; j < sizeof copy && copy[j] == 0xAB; j++)
            ;
        CHECK_EQ(j, sizeof copy);
    }

    /* Without integrity: everything before FINGERPRINT is copied. */
    CHECK_EQ(sluice_stun_writer_init(&wr, orig, sizeof orig, 0x0111, txid), 0);
    sluice_stun_put_error_code(&wr, 420, NULL);
    sluice_stun_put_string(&wr, SLUICE_STUN_ATTR_SOFTWARE, "s", 1);
    sluice_stun_put_fingerprint(&wr);
    n = sluice_stun_writer_result(&wr);
    CHECK_EQ(sluice_stun_parse(&m, orig, (size_t)n), 0);
    CHECK_EQ(sluice_stun_writer_init_copy(&wr, copy, sizeof copy, &m), 0);
    CHECK_EQ(wr.len, (size_t)n - 8);
    CHECK_EQ(be16(copy), 0x0111);
    sluice_stun_put_fingerprint(&wr);
    CHECK_EQ(sluice_stun_writer_result(&wr), n);
    CHECK_MEM(copy, orig, (size_t)n);
}

/* Re-signing a received message in its own buffer (a relay or a client
 * adding integrity to what it parsed): type, txid and attributes are
 * already in place. */
static void test_writer_init_copy_in_place(void)
{
    sluice_stun_key key = test_key();
    static uint8_t b[256], want[256];
    sluice_stun_writer wr;
    sluice_stun_msg m;
    int n, n2;

    CHECK_EQ(sluice_stun_writer_init(&wr, b, sizeof b, 0x0003, txid), 0);
    sluice_stun_put_requested_transport(&wr, 17);
    sluice_stun_put_string(&wr, SLUICE_STUN_ATTR_USERNAME, "user", 4);
    sluice_stun_put_integrity(&wr, &key);
    sluice_stun_put_fingerprint(&wr);
    n = sluice_stun_writer_result(&wr);
    CHECK(n > 0);
    memcpy(want, b, (size_t)n);
    CHECK_EQ(sluice_stun_parse(&m, b, (size_t)n), 0);
    CHECK_EQ(sluice_stun_writer_init_copy(&wr, b, sizeof b, &m), 0);
    sluice_stun_put_integrity(&wr, &key);
    sluice_stun_put_fingerprint(&wr);
    n2 = sluice_stun_writer_result(&wr);
    CHECK_EQ(n2, n);
    CHECK_MEM(b, want, (size_t)n);
}

/* The largest message: 65532 bytes of attributes (RFC 8489 §5: 16-bit
 * length, a multiple of 4). One byte more is refused by the writer. */
static void test_max_message(void)
{
    static uint8_t big[SLUICE_STUN_MAX_MSG_LEN + 64];
    static uint8_t payload[65536];
    sluice_stun_writer wr;
    sluice_stun_msg m;
    const uint8_t *v;
    size_t vlen;

    memset(payload, 0x5A, sizeof payload);
    CHECK_EQ(sluice_stun_writer_init(&wr, big, sizeof big, 0x0017, txid), 0);
    CHECK_EQ(sluice_stun_put(&wr, SLUICE_STUN_ATTR_DATA, payload, 65528), 0);
    CHECK_EQ(sluice_stun_writer_result(&wr), SLUICE_STUN_MAX_MSG_LEN);
    CHECK_EQ(be16(big + 2), 0xFFFC);
    CHECK_EQ(sluice_stun_parse(&m, big, SLUICE_STUN_MAX_MSG_LEN), 0);
    CHECK_EQ(sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_DATA, &v, &vlen), 0);
    CHECK_EQ(vlen, 65528);
    CHECK_EQ(sluice_stun_frame_length(big, 20), SLUICE_STUN_MAX_MSG_LEN);
    CHECK(sluice_stun_is_stun(big, SLUICE_STUN_MAX_MSG_LEN));
    /* Full: even an empty attribute no longer fits the length field. */
    CHECK_EQ(sluice_stun_put_empty(&wr, SLUICE_STUN_ATTR_USE_CANDIDATE), SLUICE_ERR_INVALID);
    CHECK_EQ(be16(big + 2), 0xFFFC);

    CHECK_EQ(sluice_stun_writer_init(&wr, big, sizeof big, 0x0017, txid), 0);
    CHECK_EQ(sluice_stun_put(&wr, SLUICE_STUN_ATTR_DATA, payload, 65529), SLUICE_ERR_INVALID);
    CHECK_EQ(wr.len, 20);
    CHECK_EQ(sluice_stun_writer_init(&wr, big, sizeof big, 0x0017, txid), 0);
    CHECK_EQ(sluice_stun_put(&wr, SLUICE_STUN_ATTR_DATA, payload, 65536), SLUICE_ERR_INVALID);
    CHECK_EQ(wr.len, 20);
}

/* In a child process: a crash there fails this case, not the whole file. */
static int run_in_child(void (*fn)(void))
{
    int status = 0;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void init_copy_null(void)
{
    uint8_t b[64];
    sluice_stun_writer wr;
    _exit(sluice_stun_writer_init_copy(&wr, b, sizeof b, NULL) == SLUICE_ERR_INVALID ? 0 : 1);
}

/* A NULL message is a caller error, not a crash. */
static void test_writer_init_copy_null(void)
{
    int rc = run_in_child(init_copy_null);
    CHECK_EQ(rc, 0);
    if (rc > 128)
        fprintf(stderr, "#   sluice_stun_writer_init_copy(w, buf, 64, NULL) killed by signal %d\n",
                rc - 128);
}

/* ------------------------------------------------------------------------ */
/* Parsing rules */

int main(void)
{
    RUN(test_writer_nospace_every_size);
    RUN(test_writer_sticky);
    RUN(test_writer_seal_order);
    RUN(test_writer_init_copy);
    RUN(test_writer_init_copy_in_place);
    RUN(test_max_message);
    RUN(test_writer_init_copy_null);
    return TEST_DONE();
}
