/* SPDX-License-Identifier: MIT */
/* Every truncation of every published vector, lying length fields, trailing
 * bytes; and the guard-page over-read check: each input ends exactly at an
 * inaccessible page while it is parsed, iterated, read with every getter
 * and integrity-checked, so any read past the input crashes. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "test.h"

static const char *ex_ctx = "";
static size_t ex_ctx_len;
#define EXERCISE_FAIL(what)                                                                        \
    do {                                                                                           \
        t_checks++;                                                                                \
        t_failures++;                                                                              \
        t_case_failed = 1;                                                                         \
        fprintf(stderr, "# %s (len %zu): broken promise: %s\n", ex_ctx, ex_ctx_len, what);         \
    } while (0)

#include "guard.h"
#include "stun_exercise.h"
#include "vectors.h"

#define S(lit) lit, (sizeof(lit) - 1)

/* The published vectors, plus B.1 as printed (itself truncated). */
static const struct test_vector all_vectors[] = {
    {"RFC 5769 §2.1", rfc5769_2_1, sizeof rfc5769_2_1},
    {"RFC 5769 §2.2", rfc5769_2_2, sizeof rfc5769_2_2},
    {"RFC 5769 §2.3", rfc5769_2_3, sizeof rfc5769_2_3},
    {"RFC 5769 §2.4", rfc5769_2_4, sizeof rfc5769_2_4},
    {"RFC 8489 B.1 (erratum 6268)", rfc8489_b1_errata6268, sizeof rfc8489_b1_errata6268},
    {"RFC 8489 B.1 (published)", rfc8489_b1_published, sizeof rfc8489_b1_published},
};
#define N_ALL (sizeof all_vectors / sizeof all_vectors[0])

static guard_buf g;
static sluice_stun_key keys[3];

static void keys_init(void)
{
    CHECK_EQ(sluice_stun_key_short_term(&keys[0], S(RFC5769_PASSWORD)), 0);
    CHECK_EQ(sluice_stun_key_long_term(&keys[1], SLUICE_STUN_PWALG_MD5, S(RFC_LT_USERNAME),
                                       S(RFC_LT_REALM), S(RFC_LT_PASSWORD)),
             0);
    CHECK_EQ(sluice_stun_key_long_term(&keys[2], SLUICE_STUN_PWALG_SHA256, S(RFC_LT_USERNAME),
                                       S(RFC_LT_REALM), S(RFC_LT_PASSWORD)),
             0);
}

/* Parse p[0..len) placed against the trailing guard page, then against
 * the leading one, exercising everything with every key. */
static unsigned long n_guarded;

static int guarded(const char *ctx, const uint8_t *p, size_t len)
{
    int rc = 0;
    n_guarded++;
    ex_ctx = ctx;
    ex_ctx_len = len;
    for (int side = 0; side < 2; side++) {
        const uint8_t *d = side == 0 ? guard_place(&g, p, len) : guard_place_low(&g, p, len);
        for (int k = 0; k < 3; k++) {
            int r = exercise_stun(d, len, &keys[k], NULL);
            if (side == 0 && k == 0)
                rc = r;
            else if (r != rc)
                EXERCISE_FAIL("parse result depends on placement or key");
        }
    }
    return rc;
}

/* Offsets at which the vector's attributes end (20 = no attribute), walked
 * independently of the library. */
static size_t boundaries(const struct test_vector *v, size_t *out, size_t max)
{
    size_t n = 0, off = 20;
    size_t end = 20 + ((size_t)v->data[2] << 8 | v->data[3]);
    if (end > v->len)
        end = v->len;
    out[n++] = 20;
    while (off + 4 <= end && n < max) {
        size_t alen = (size_t)v->data[off + 2] << 8 | v->data[off + 3];
        off += 4 + ((alen + 3) & ~(size_t)3);
        if (off > end)
            break;
        out[n++] = off;
    }
    return n;
}

/* The vectors themselves, guarded. */
static void vectors_guarded(void)
{
    for (size_t i = 0; i < N_ALL; i++) {
        const struct test_vector *v = &all_vectors[i];
        int rc = guarded(v->name, v->data, v->len);
        if (v->data == rfc8489_b1_published)
            CHECK_EQ(rc, SLUICE_ERR_TRUNCATED);
        else
            CHECK_EQ(rc, 0);
    }
}

/* Every prefix 0..len-1 is an error; from 20 bytes on the header claims
 * more than is there, which is SLUICE_ERR_TRUNCATED (below 20 the header
 * itself is short: also TRUNCATED per sluice_stun_parse's contract). */
static void every_prefix_truncated(void)
{
    for (size_t i = 0; i < N_ALL; i++) {
        const struct test_vector *v = &all_vectors[i];
        for (size_t n = 0; n < v->len; n++) {
            int rc = guarded(v->name, v->data, n);
            CHECK(rc < 0);
            if (rc != SLUICE_ERR_TRUNCATED)
                fprintf(stderr, "# %s: prefix of %zu bytes -> %d (%s)\n", v->name, n, rc,
                        sluice_strerror(rc));
            CHECK_EQ(rc, SLUICE_ERR_TRUNCATED);
        }
    }
}

/* The header's length field claims more than is present: every prefix of
 * at least 20 bytes with every claim (multiple of 4) from one word beyond
 * what is there up to 64 bytes past the vector, and the largest claim. */
static void claim(uint8_t *b, size_t claimed)
{
    b[2] = (uint8_t)(claimed >> 8);
    b[3] = (uint8_t)claimed;
}

static void length_claims_more(void)
{
    uint8_t b[512];
    for (size_t i = 0; i < N_ALL; i++) {
        const struct test_vector *v = &all_vectors[i];
        for (size_t n = 20; n <= v->len; n++) {
            size_t have = n - 20;
            size_t limit = v->len - 20 + 64;
            memcpy(b, v->data, n);
            for (size_t c = (have / 4 + 1) * 4; c <= 0xfffc; c = c < limit ? c + 4 : 0xfffc + 4) {
                int rc;
                claim(b, c < limit ? c : 0xfffc);
                rc = guarded(v->name, b, n);
                if (rc != SLUICE_ERR_TRUNCATED)
                    fprintf(stderr, "# %s: %zu bytes claiming %zu -> %d\n", v->name, n,
                            c < limit ? c : (size_t)0xfffc, rc);
                CHECK_EQ(rc, SLUICE_ERR_TRUNCATED);
            }
            /* A claim that is not a multiple of 4 is an error of some kind. */
            claim(b, have + 1);
            CHECK(guarded(v->name, b, n) < 0);
        }
    }
}

/* Bytes after the message (RFC 8489 §6.3: the length field must match the
 * datagram): an error, SLUICE_ERR_MALFORMED. */
static void trailing_garbage(void)
{
    uint8_t b[512];
    for (size_t i = 0; i < N_VALID_VECTORS; i++) {
        const struct test_vector *v = &valid_vectors[i];
        for (size_t extra = 1; extra <= 12; extra++) {
            int rc;
            memcpy(b, v->data, v->len);
            memset(b + v->len, extra & 1 ? 0x00 : 0xa5, extra);
            rc = guarded(v->name, b, v->len + extra);
            CHECK(rc < 0);
            if (rc != SLUICE_ERR_MALFORMED)
                fprintf(stderr, "# %s + %zu trailing bytes -> %d\n", v->name, extra, rc);
            CHECK_EQ(rc, SLUICE_ERR_MALFORMED);
        }
        /* The length field shortened by whole words: what follows the
         * claimed end is trailing garbage too. */
        for (size_t less = 4; less <= v->len - 20; less += 4) {
            int rc;
            memcpy(b, v->data, v->len);
            claim(b, v->len - 20 - less);
            rc = guarded(v->name, b, v->len);
            CHECK_EQ(rc, SLUICE_ERR_MALFORMED);
        }
    }
}

/* Prefixes whose length field is corrected to match: at an attribute
 * boundary they are valid messages (the FINGERPRINT, if any, is cut off);
 * elsewhere an attribute runs past the end: SLUICE_ERR_MALFORMED. */
static void prefixes_with_fixed_length(void)
{
    uint8_t b[512];
    for (size_t i = 0; i < N_VALID_VECTORS; i++) {
        const struct test_vector *v = &valid_vectors[i];
        size_t bounds[32];
        size_t nb = boundaries(v, bounds, 32);
        for (size_t n = 20; n < v->len; n += 4) {
            bool at_boundary = false;
            int rc;
            for (size_t k = 0; k < nb; k++)
                at_boundary |= bounds[k] == n;
            memcpy(b, v->data, n);
            claim(b, n - 20);
            rc = guarded(v->name, b, n);
            if (rc != (at_boundary ? 0 : SLUICE_ERR_MALFORMED))
                fprintf(stderr, "# %s: first %zu bytes, length fixed -> %d\n", v->name, n, rc);
            CHECK_EQ(rc, at_boundary ? 0 : SLUICE_ERR_MALFORMED);
        }
    }
}

/* Each attribute's declared length made longer than the message allows,
 * and shorter (so the next header is read from inside the value). */
static void attribute_length_lies(void)
{
    uint8_t b[512];
    for (size_t i = 0; i < N_VALID_VECTORS; i++) {
        const struct test_vector *v = &valid_vectors[i];
        size_t bounds[32];
        size_t nb = boundaries(v, bounds, 32);
        for (size_t k = 0; k + 1 < nb; k++) {
            size_t off = bounds[k];
            size_t alen = (size_t)v->data[off + 2] << 8 | v->data[off + 3];
            static const size_t deltas[] = {1, 4, 5, 64, 0xffff};
            for (size_t d = 0; d < sizeof deltas / sizeof deltas[0]; d++) {
                size_t nl = alen + deltas[d] > 0xffff ? 0xffff : alen + deltas[d];
                memcpy(b, v->data, v->len);
                b[off + 2] = (uint8_t)(nl >> 8);
                b[off + 3] = (uint8_t)nl;
                /* Padded end beyond the message? Then MALFORMED. */
                if (off + 4 + ((nl + 3) & ~(size_t)3) > v->len)
                    CHECK_EQ(guarded(v->name, b, v->len), SLUICE_ERR_MALFORMED);
                else
                    (void)guarded(v->name, b, v->len); /* next header misread: any result */
            }
            for (size_t nl = 0; nl < alen; nl++) {
                memcpy(b, v->data, v->len);
                b[off + 2] = (uint8_t)(nl >> 8);
                b[off + 3] = (uint8_t)nl;
                (void)guarded(v->name, b, v->len); /* any result; no over-read */
            }
        }
    }
}

/* Every single byte of every vector replaced by a few values, guarded. */
static void byte_mutations_guarded(void)
{
    static const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    uint8_t b[512];
    for (size_t i = 0; i < N_ALL; i++) {
        const struct test_vector *v = &all_vectors[i];
        for (size_t off = 0; off < v->len; off++) {
            for (size_t k = 0; k < sizeof vals; k++) {
                memcpy(b, v->data, v->len);
                b[off] = vals[k];
                (void)guarded(v->name, b, v->len);
            }
        }
    }
}

/* The guard pages really are inaccessible: a child that reads one byte
 * past either end dies of SIGSEGV. */
static void guard_pages_trap(void)
{
    for (int side = 0; side < 2; side++) {
        pid_t pid = fork();
        int status = 0;
        if (pid == 0) {
            signal(SIGSEGV, SIG_DFL); /* a sanitizer's handler would exit instead */
            volatile const uint8_t *p = side == 0 ? g.hi : g.lo - 1;
            _exit(*p == 0x42 ? 3 : 4);
        }
        CHECK(pid > 0);
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
    }
}

int main(void)
{
    guard_init(&g);
    keys_init();
    RUN(guard_pages_trap);
    RUN(vectors_guarded);
    RUN(every_prefix_truncated);
    RUN(length_claims_more);
    RUN(trailing_garbage);
    RUN(prefixes_with_fixed_length);
    RUN(attribute_length_lies);
    RUN(byte_mutations_guarded);
    guard_free(&g);
    printf("# %lu inputs parsed against guard pages (x2 placements x3 keys)\n", n_guarded);
    return TEST_DONE();
}
