/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the STUN codec: parse, iterate, every getter,
 * integrity with a fixed key; a message that parses is re-encoded with
 * writer_init_copy + MESSAGE-INTEGRITY + FINGERPRINT and must parse again,
 * verify, and carry the same attributes. Any broken promise aborts.
 * Rejected inputs are retried with length and FINGERPRINT repaired. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/sluice.h"

#define EXERCISE_FAIL(what)                                                                        \
    do {                                                                                           \
        fprintf(stderr, "fuzz_stun: %s:%d: broken promise: %s\n", __FILE__, __LINE__, what);       \
        abort();                                                                                   \
    } while (0)

#include "stun_exercise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 5769's short-term password: the seed vectors verify with it. */
static const char fuzz_password[] = "VOkJxbRl1RmTxUk/WvJxBt";

/* Attributes that count, minus integrity and fingerprint: what a copy keeps. */
static size_t content_attrs(const sluice_stun_msg *m, sluice_stun_attr *out, size_t max)
{
    sluice_stun_attr_iter it;
    sluice_stun_attr a;
    size_t n = 0;
    sluice_stun_attr_iter_init(&it, m);
    while (sluice_stun_attr_next(&it, &a)) {
        if (exercise_is_integrity_type(a.type))
            continue;
        if (n < max)
            out[n] = a;
        n++;
    }
    return n;
}

static void reencode(const sluice_stun_msg *m, const sluice_stun_key *key)
{
    /* Room for the largest message plus the seal. */
    static uint8_t buf[SLUICE_STUN_MAX_MSG_LEN + 64];
    static sluice_stun_attr before[16384], after[16384];
    sluice_stun_writer w;
    sluice_stun_msg r;
    size_t nb, na;
    int len, rc;

    sluice_stun_writer_init_copy(&w, buf, sizeof buf, m);
    sluice_stun_put_integrity(&w, key);
    sluice_stun_put_fingerprint(&w);
    len = sluice_stun_writer_result(&w);
    if (len < 0) {
        /* Only an over-long result may fail: the copy plus 32 bytes of seal
         * no longer fits the 16-bit length field. */
        EXERCISE_EXPECT(len == SLUICE_ERR_NOSPACE || len == SLUICE_ERR_INVALID);
        EXERCISE_EXPECT(m->len + 32 > SLUICE_STUN_MAX_MSG_LEN);
        return;
    }

    rc = sluice_stun_parse(&r, buf, (size_t)len);
    if (rc != 0)
        fprintf(stderr, "fuzz_stun: re-encoded message does not parse: %d\n", rc);
    EXERCISE_EXPECT(rc == 0);
    EXERCISE_EXPECT(r.type == m->type);
    EXERCISE_EXPECT(memcmp(sluice_stun_txid(&r), sluice_stun_txid(m), 12) == 0);
    EXERCISE_EXPECT(r.fingerprint_off != 0);
    EXERCISE_EXPECT(r.integrity_off != 0);
    EXERCISE_EXPECT(sluice_stun_check_integrity_sha1(&r, key) == 0);
    EXERCISE_EXPECT(sluice_stun_check_integrity(&r, key) == 0);
    EXERCISE_EXPECT(r.n_unknown == m->n_unknown);

    nb = content_attrs(m, before, sizeof before / sizeof before[0]);
    na = content_attrs(&r, after, sizeof after / sizeof after[0]);
    EXERCISE_EXPECT(na == nb);
    for (size_t i = 0; i < na && i < nb && i < sizeof before / sizeof before[0]; i++) {
        EXERCISE_EXPECT(after[i].type == before[i].type);
        EXERCISE_EXPECT(after[i].len == before[i].len);
        EXERCISE_EXPECT(after[i].len == 0 ||
                        memcmp(after[i].value, before[i].value, after[i].len) == 0);
    }
    /* And the copy reads the same through every getter. */
    (void)exercise_stun(buf, (size_t)len, key, NULL);
}

static uint32_t crc32_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* Most mutations break the header length or the FINGERPRINT, and the parser
 * rightly stops there. To reach the attribute code behind them, a rejected
 * input is also tried with both repaired: length = size - 20, and a trailing
 * FINGERPRINT recomputed (RFC 8489 §14.7). */
static bool repair(const uint8_t *data, size_t size, uint8_t **out)
{
    uint8_t *b;
    bool changed = false;

    if (size < SLUICE_STUN_HEADER_LEN || size > SLUICE_STUN_MAX_MSG_LEN || size % 4 != 0)
        return false;
    b = malloc(size); /* exactly size bytes: over-reads still trip ASan */
    if (!b)
        return false;
    memcpy(b, data, size);
    if (((size_t)b[2] << 8 | b[3]) != size - 20) {
        b[2] = (uint8_t)((size - 20) >> 8);
        b[3] = (uint8_t)(size - 20);
        changed = true;
    }
    if (size >= 28 && b[size - 8] == 0x80 && b[size - 7] == 0x28 && b[size - 6] == 0 &&
        b[size - 5] == 4) {
        uint32_t crc = crc32_ref(b, size - 8) ^ 0x5354554eu;
        uint8_t v[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8),
                        (uint8_t)crc};
        if (memcmp(b + size - 4, v, 4) != 0) {
            memcpy(b + size - 4, v, 4);
            changed = true;
        }
    }
    if (!changed) {
        free(b);
        return false;
    }
    *out = b;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sluice_stun_key key;
    static int key_ready;
    sluice_stun_msg m;
    uint8_t *fixed;

    if (!key_ready) {
        if (sluice_stun_key_short_term(&key, fuzz_password, sizeof fuzz_password - 1) != 0)
            abort();
        key_ready = 1;
    }
    if (exercise_stun(data, size, &key, &m) == 0) {
        reencode(&m, &key);
    } else if (repair(data, size, &fixed)) {
        if (exercise_stun(fixed, size, &key, &m) == 0)
            reencode(&m, &key);
        free(fixed);
    }
    return 0;
}
