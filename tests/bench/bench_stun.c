/* SPDX-License-Identifier: MIT */
/* Side-by-side benchmark: sluice's STUN codec against libnice's STUN library
 * on one ICE Binding request, validated and built in the same process. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <stun/stunagent.h>
#include <stun/stunmessage.h>

#include "common/internal.h"
#include "sluice/stun.h"

/* A typical ICE connectivity check (RFC 8445 §7.1.1): "remote:local"
 * ufrags, a 22-character password (RFC 8445 §5.3 asks for >= 128 bits). */
static const char USERNAME[] = "abcdefgh:ijklmnop";
static const char PASSWORD[] = "pqrstuvwxyzABCDEFGHIJK";
#define PRIORITY_VALUE 0x6E7F1EFFu
#define TIE_BREAKER 0x0123456789ABCDEFull
#define BUF_CAP 256

#define DEFAULT_ROUNDS 5
#define ROUND_TARGET_NS 200000000.0 /* ~0.2 s per round */
#define QUICK_ITERATIONS 2000

static volatile uint64_t sink; /* defeats dead-code elimination */

/* ------------------------------------------------------------------------ */
/* Shared state */

typedef struct bench_ctx {
    /* sluice */
    sluice_stun_key key; /* prepared once: the design under test */
    /* libnice */
    StunAgent agent;
    /* the message both validators read */
    uint8_t msg[BUF_CAP];
    size_t msg_len;
    /* scratch for the builders */
    uint8_t out[BUF_CAP];
    uint8_t txid[SLUICE_STUN_TXID_LEN];
    uint64_t counter;
} bench_ctx;

typedef struct creds {
    const char *username;
    size_t ulen;
    const char *password;
    size_t plen;
} creds;

static const creds good_creds = {USERNAME, sizeof USERNAME - 1, PASSWORD, sizeof PASSWORD - 1};

/* libnice's validater: look the username up and hand back the short-term
 * password, as an ICE agent's callback does. */
static bool nice_validater(StunAgent *agent, StunMessage *message, uint8_t *username,
                           uint16_t username_len, uint8_t **password, size_t *password_len,
                           void *user_data)
{
    const creds *c = user_data;
    (void)agent;
    (void)message;
    if (username_len != c->ulen || memcmp(username, c->username, c->ulen) != 0)
        return false;
    *password = (uint8_t *)(uintptr_t)c->password;
    *password_len = c->plen;
    return true;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* One-shot builders and validators (also used by the interop checks) */

static int sluice_build_one(uint8_t *buf, size_t cap, const sluice_stun_key *key,
                            const uint8_t *txid)
{
    sluice_stun_writer w;
    sluice_stun_writer_init(&w, buf, cap, sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST),
                            txid);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, USERNAME, sizeof USERNAME - 1);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, PRIORITY_VALUE);
    sluice_stun_put_u64(&w, SLUICE_STUN_ATTR_ICE_CONTROLLING, TIE_BREAKER);
    sluice_stun_put_integrity(&w, key);
    sluice_stun_put_fingerprint(&w);
    return sluice_stun_writer_result(&w);
}

static size_t nice_build_one(bench_ctx *b, uint8_t *buf, size_t cap, const char *password)
{
    StunMessage msg;
    StunTransactionId id;
    size_t n;

    if (!stun_agent_init_request(&b->agent, &msg, buf, cap, STUN_BINDING))
        return 0;
    if (stun_message_append_string(&msg, STUN_ATTRIBUTE_USERNAME, USERNAME) !=
            STUN_MESSAGE_RETURN_SUCCESS ||
        stun_message_append32(&msg, STUN_ATTRIBUTE_PRIORITY, PRIORITY_VALUE) !=
            STUN_MESSAGE_RETURN_SUCCESS ||
        stun_message_append64(&msg, STUN_ATTRIBUTE_ICE_CONTROLLING, TIE_BREAKER) !=
            STUN_MESSAGE_RETURN_SUCCESS)
        return 0;
    n = stun_agent_finish_message(&b->agent, &msg, (const uint8_t *)password, strlen(password));
    /* A request's ID stays in the agent's table (200 slots) until its
     * response arrives; drop it so the table never fills. */
    stun_message_id(&msg, id);
    stun_agent_forget_transaction(&b->agent, id);
    return n;
}

/* The full receive-side check with sluice: structure + FINGERPRINT (parse),
 * username lookup, MESSAGE-INTEGRITY with the cached key. */
static int sluice_validate_one(const uint8_t *data, size_t len, const sluice_stun_key *key,
                               const creds *c)
{
    sluice_stun_msg m;
    const uint8_t *user;
    size_t ulen;
    int rc = sluice_stun_parse(&m, data, len);

    if (rc < 0)
        return rc;
    if (m.n_unknown)
        return SLUICE_ERR_UNKNOWN_ATTR;
    rc = sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_USERNAME, &user, &ulen);
    if (rc < 0)
        return rc;
    if (ulen != c->ulen || memcmp(user, c->username, ulen) != 0)
        return SLUICE_ERR_AUTH;
    return sluice_stun_check_integrity(&m, key);
}

static StunValidationStatus nice_validate_one(bench_ctx *b, const uint8_t *data, size_t len,
                                              const creds *c)
{
    StunMessage msg;
    return stun_agent_validate(&b->agent, &msg, data, len, nice_validater, (void *)(uintptr_t)c);
}

/* ------------------------------------------------------------------------ */
/* Timed loops: each runs n iterations and returns the number of failures. */

typedef uint64_t (*loop_fn)(bench_ctx *b, uint64_t n);

static uint64_t loop_sluice_validate(bench_ctx *b, uint64_t n)
{
    uint64_t fails = 0, acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        int rc = sluice_validate_one(b->msg, b->msg_len, &b->key, &good_creds);
        fails += rc != 0;
        acc += (uint64_t)(unsigned)rc;
    }
    sink += acc;
    return fails;
}

static uint64_t loop_nice_validate(bench_ctx *b, uint64_t n)
{
    uint64_t fails = 0, acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        StunValidationStatus st = nice_validate_one(b, b->msg, b->msg_len, &good_creds);
        fails += st != STUN_VALIDATION_SUCCESS;
        acc += (uint64_t)st;
    }
    sink += acc;
    return fails;
}

/* sluice build with a fresh random transaction ID per request from the
 * default RNG (OpenSSL RAND_bytes), as src/stun/txn.c does; libnice's
 * stun_agent_init_request draws one too (gnutls_rnd), so both sides pay. */
static uint64_t loop_sluice_build(bench_ctx *b, uint64_t n)
{
    uint64_t fails = 0, acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        int len;
        if (sluice_rng_fill(NULL, b->txid, sizeof b->txid) < 0)
            fails++;
        len = sluice_build_one(b->out, sizeof b->out, &b->key, b->txid);
        fails += len != (int)b->msg_len;
        acc += (uint64_t)len + b->out[len > 0 ? len - 1 : 0];
    }
    sink += acc;
    return fails;
}

/* The same with a caller-supplied transaction ID (a counter): the codec
 * alone, without the RNG. */
static uint64_t loop_sluice_build_fixed_txid(bench_ctx *b, uint64_t n)
{
    uint64_t fails = 0, acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        int len;
        b->counter++;
        memcpy(b->txid, &b->counter, sizeof b->counter);
        len = sluice_build_one(b->out, sizeof b->out, &b->key, b->txid);
        fails += len != (int)b->msg_len;
        acc += (uint64_t)len + b->out[len > 0 ? len - 1 : 0];
    }
    sink += acc;
    return fails;
}

static uint64_t loop_nice_build(bench_ctx *b, uint64_t n)
{
    uint64_t fails = 0, acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = nice_build_one(b, b->out, sizeof b->out, PASSWORD);
        fails += len != b->msg_len;
        acc += (uint64_t)len + b->out[len > 0 ? len - 1 : 0];
    }
    sink += acc;
    return fails;
}

/* The pieces of sluice's cost, for the floor. */
static uint64_t loop_piece_crc32(bench_ctx *b, uint64_t n)
{
    /* What FINGERPRINT covers: the message up to that attribute. */
    uint32_t acc = 0;
    for (uint64_t i = 0; i < n; i++)
        acc += sluice_crc32(0, b->msg, b->msg_len - 8);
    sink += acc;
    return 0;
}

static uint64_t loop_piece_hmac(bench_ctx *b, uint64_t n)
{
    /* What put_integrity hashes: the message up to MESSAGE-INTEGRITY
     * (b->msg_len - 8 - 24 bytes), from the cached inner/outer states. */
    uint8_t mac[20];
    uint64_t fails = 0, acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        fails += sluice_hmac_sha1(&b->key, b->msg, b->msg_len - 32, NULL, 0, mac) != 0;
        acc += mac[0];
    }
    sink += acc;
    return fails;
}

static uint64_t loop_piece_parse(bench_ctx *b, uint64_t n)
{
    uint64_t fails = 0, acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        sluice_stun_msg m;
        fails += sluice_stun_parse(&m, b->msg, b->msg_len) != 0;
        acc += m.integrity_off;
    }
    sink += acc;
    return fails;
}

static uint64_t loop_piece_check_integrity(bench_ctx *b, uint64_t n)
{
    sluice_stun_msg m;
    uint64_t fails = 0;
    if (sluice_stun_parse(&m, b->msg, b->msg_len) != 0)
        return n;
    for (uint64_t i = 0; i < n; i++)
        fails += sluice_stun_check_integrity(&m, &b->key) != 0;
    sink += fails;
    return fails;
}

static uint64_t loop_piece_rng(bench_ctx *b, uint64_t n)
{
    uint64_t fails = 0;
    for (uint64_t i = 0; i < n; i++) {
        fails += sluice_rng_fill(NULL, b->txid, sizeof b->txid) != 0;
        sink += b->txid[0];
    }
    return fails;
}

static uint64_t loop_piece_rng_pooled(bench_ctx *b, uint64_t n)
{
    /* The same bytes drawn from a 4 KB pool refilled with one RAND_bytes
     * call: what a buffered txid source would cost. */
    static uint8_t pool[4092];
    static size_t used = sizeof pool;
    uint64_t fails = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (used + sizeof b->txid > sizeof pool) {
            fails += RAND_bytes(pool, (int)sizeof pool) != 1;
            used = 0;
        }
        memcpy(b->txid, pool + used, sizeof b->txid);
        used += sizeof b->txid;
        sink += b->txid[0];
    }
    return fails;
}

static uint64_t loop_piece_key(bench_ctx *b, uint64_t n)
{
    /* Re-keying per message: what the cached key saves. */
    sluice_stun_key k;
    uint64_t fails = 0;
    for (uint64_t i = 0; i < n; i++) {
        fails += sluice_stun_key_short_term(&k, PASSWORD, sizeof PASSWORD - 1) != 0;
        sink += k.opaque[0];
    }
    return fails;
}

/* ------------------------------------------------------------------------ */
/* Timing */

typedef struct workload {
    const char *name;
    loop_fn fn;
    uint64_t n;         /* iterations per round */
    double ns[32];      /* ns/op of each round */
    int rounds;
    uint64_t failures;
    bool skip;          /* left out by --only */
} workload;

static double run_round(bench_ctx *b, workload *w)
{
    uint64_t t0 = now_ns();
    w->failures += w->fn(b, w->n);
    uint64_t t1 = now_ns();
    return (double)(t1 - t0) / (double)w->n;
}

/* Pick n so that one round takes about ROUND_TARGET_NS; doubles as warm-up. */
static void calibrate(bench_ctx *b, workload *w)
{
    uint64_t n = 1000;
    for (;;) {
        uint64_t t0 = now_ns();
        w->failures += w->fn(b, n);
        uint64_t dt = now_ns() - t0;
        if (dt >= 20000000u || n >= (1ull << 40)) {
            double per = (double)dt / (double)n;
            w->n = (uint64_t)(ROUND_TARGET_NS / (per > 0.1 ? per : 0.1));
            if (w->n < 1000)
                w->n = 1000;
            return;
        }
        n *= 2;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double best_of(const workload *w)
{
    double best = w->ns[0];
    for (int i = 1; i < w->rounds; i++)
        if (w->ns[i] < best)
            best = w->ns[i];
    return best;
}

static double median_of(const workload *w)
{
    double s[32];
    memcpy(s, w->ns, sizeof(double) * (size_t)w->rounds);
    qsort(s, (size_t)w->rounds, sizeof s[0], cmp_double);
    return w->rounds % 2 ? s[w->rounds / 2] : (s[w->rounds / 2 - 1] + s[w->rounds / 2]) / 2;
}

/* Runs a group of workloads round-robin (the order rotating each round)
 * so that a burst of noise from other work on the machine spreads over all
 * of them rather than landing on one. */
static void run_group(bench_ctx *b, workload *ws, int count, int rounds, uint64_t fixed_n)
{
    for (int i = 0; i < count; i++) {
        if (ws[i].skip)
            continue;
        if (fixed_n) {
            uint64_t warm = fixed_n / 10 ? fixed_n / 10 : 1;
            ws[i].failures += ws[i].fn(b, warm);
            ws[i].n = fixed_n;
        } else {
            calibrate(b, &ws[i]);
        }
        ws[i].rounds = 0;
    }
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < count; k++) {
            workload *w = &ws[(k + r) % count];
            if (!w->skip)
                w->ns[w->rounds++] = run_round(b, w);
        }
}

static long to_int(double ns)
{
    return (long)(ns + 0.5);
}

static void print_rounds(const workload *w)
{
    if (w->skip)
        return;
    printf("  %-28s", w->name);
    for (int i = 0; i < w->rounds; i++)
        printf(" %7.1f", w->ns[i]);
    printf("  | best %7.1f  median %7.1f ns/op  (n=%" PRIu64 ")\n", best_of(w), median_of(w),
           w->n);
}

/* ------------------------------------------------------------------------ */
/* Correctness before timing */

static int check(bool ok, const char *what)
{
    printf("  %-64s %s\n", what, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}

/* Same message type and the same attributes up to MESSAGE-INTEGRITY,
 * compared by value: the transaction IDs differ, and libnice pads with
 * spaces where sluice pads with zeros (RFC 8489 §14: padding is ignored). */
static bool same_attributes(const uint8_t *x, size_t xlen, const uint8_t *y, size_t ylen)
{
    sluice_stun_msg mx, my;
    sluice_stun_attr_iter ix, iy;
    sluice_stun_attr ax, ay;
    bool nx, ny;

    if (sluice_stun_parse(&mx, x, xlen) != 0 || sluice_stun_parse(&my, y, ylen) != 0 ||
        mx.type != my.type)
        return false;
    sluice_stun_attr_iter_init(&ix, &mx);
    sluice_stun_attr_iter_init(&iy, &my);
    for (;;) {
        nx = sluice_stun_attr_next(&ix, &ax);
        ny = sluice_stun_attr_next(&iy, &ay);
        if (!nx || !ny)
            return nx == ny;
        if (ax.type != ay.type || ax.len != ay.len || memcmp(ax.value, ay.value, ax.len) != 0)
            return false;
    }
}

static int interop_checks(bench_ctx *b)
{
    uint8_t sl[BUF_CAP], ni[BUF_CAP], bad[BUF_CAP];
    sluice_stun_key wrong;
    creds wrong_creds = good_creds;
    uint8_t txid[SLUICE_STUN_TXID_LEN];
    int sl_len, failed = 0;
    size_t ni_len;

    printf("interop checks:\n");
    if (sluice_rng_fill(NULL, txid, sizeof txid) < 0)
        return check(false, "sluice_rng_fill");
    sl_len = sluice_build_one(sl, sizeof sl, &b->key, txid);
    ni_len = nice_build_one(b, ni, sizeof ni, PASSWORD);
    failed += check(sl_len > 0, "sluice builds the request");
    failed += check(ni_len > 0, "libnice builds the request");
    failed += check(sl_len > 0 && (size_t)sl_len == ni_len, "both requests have the same length");
    if (sl_len <= 0 || ni_len == 0)
        return failed;
    failed += check(same_attributes(sl, (size_t)sl_len, ni, ni_len),
                    "same type and attributes (values, not padding) before MI");

    failed += check(sluice_validate_one(sl, (size_t)sl_len, &b->key, &good_creds) == 0,
                    "sluice accepts sluice's request");
    failed += check(nice_validate_one(b, ni, ni_len, &good_creds) == STUN_VALIDATION_SUCCESS,
                    "libnice accepts libnice's request");
    failed += check(sluice_validate_one(ni, ni_len, &b->key, &good_creds) == 0,
                    "sluice accepts libnice's request");
    failed += check(nice_validate_one(b, sl, (size_t)sl_len, &good_creds) == STUN_VALIDATION_SUCCESS,
                    "libnice accepts sluice's request");

    /* The validators must really verify, or the timings mean nothing. */
    if (sluice_stun_key_short_term(&wrong, "not-the-password-at-all", 23) < 0)
        return failed + check(false, "sluice_stun_key_short_term");
    wrong_creds.password = "not-the-password-at-all";
    wrong_creds.plen = 23;
    failed += check(sluice_validate_one(ni, ni_len, &wrong, &good_creds) == SLUICE_ERR_INTEGRITY,
                    "sluice rejects a wrong password");
    failed += check(nice_validate_one(b, sl, (size_t)sl_len, &wrong_creds) != STUN_VALIDATION_SUCCESS,
                    "libnice rejects a wrong password");
    memcpy(bad, ni, ni_len);
    bad[24] ^= 0x01; /* first byte of USERNAME: FINGERPRINT and integrity break */
    failed += check(sluice_validate_one(bad, ni_len, &b->key, &good_creds) != 0,
                    "sluice rejects a flipped bit");
    failed += check(nice_validate_one(b, bad, ni_len, &good_creds) != STUN_VALIDATION_SUCCESS,
                    "libnice rejects a flipped bit");
    sluice_stun_key_clear(&wrong);

    /* The validate workload reads libnice's bytes (no home advantage). */
    memcpy(b->msg, ni, ni_len);
    b->msg_len = ni_len;
    return failed;
}

/* ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_stun [--iterations N] [--rounds R] [--quick] [--only TEXT]\n"
               "  --iterations N  fixed N iterations, one round (no calibration)\n"
               "  --rounds R      rounds per workload (default %d, at most 32)\n"
               "  --quick         interop checks and a short smoke run\n"
               "  --only TEXT     time only the workloads whose name contains TEXT\n"
               "                  (for profiling one side; no result lines)\n",
               DEFAULT_ROUNDS);
}

int main(int argc, char **argv)
{
    static bench_ctx b; /* StunAgent holds 200 saved IDs: keep it off the stack */
    uint64_t fixed_n = 0;
    int rounds = DEFAULT_ROUNDS;
    bool quick = false;
    const char *only = NULL;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iterations") && i + 1 < argc) {
            char *end;
            errno = 0;
            fixed_n = strtoull(argv[++i], &end, 10);
            if (errno || *end || fixed_n == 0) {
                usage(stderr);
                return 2;
            }
            rounds = 1;
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1 || rounds > 32) {
                usage(stderr);
                return 2;
            }
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--quick")) {
            quick = true;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (quick) {
        fixed_n = QUICK_ITERATIONS;
        rounds = 1;
    }

    if (sluice_stun_key_short_term(&b.key, PASSWORD, sizeof PASSWORD - 1) < 0) {
        fprintf(stderr, "bench_stun: cannot prepare the sluice key\n");
        return 1;
    }
    /* As libnice's ICE agent sets up its STUN agent for RFC 5389 checks. */
    stun_agent_init(&b.agent, STUN_ALL_KNOWN_ATTRIBUTES, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);

    printf("sluice %s vs libnice STUN (stun_agent_*), one process\n", sluice_version());
    printf("message: ICE Binding request, USERNAME \"%s\", PRIORITY, ICE-CONTROLLING,\n"
           "         MESSAGE-INTEGRITY (short-term), FINGERPRINT\n",
           USERNAME);
    if (interop_checks(&b)) {
        fprintf(stderr, "bench_stun: interop checks failed; not timing\n");
        return 1;
    }
    printf("  message length: %zu bytes\n", b.msg_len);

    workload validate[] = {
        {.name = "validate sluice", .fn = loop_sluice_validate},
        {.name = "validate libnice", .fn = loop_nice_validate},
    };
    workload build[] = {
        {.name = "build sluice", .fn = loop_sluice_build},
        {.name = "build libnice", .fn = loop_nice_build},
        {.name = "build sluice (caller txid)", .fn = loop_sluice_build_fixed_txid},
    };
    workload pieces[] = {
        {.name = "sluice_crc32 (FINGERPRINT)", .fn = loop_piece_crc32},
        {.name = "HMAC-SHA1, cached key", .fn = loop_piece_hmac},
        {.name = "sluice_stun_parse", .fn = loop_piece_parse},
        {.name = "sluice_stun_check_integrity", .fn = loop_piece_check_integrity},
        {.name = "sluice_rng_fill 12 B", .fn = loop_piece_rng},
        {.name = "RAND_bytes 4 KB pool, 12 B", .fn = loop_piece_rng_pooled},
        {.name = "sluice_stun_key_short_term", .fn = loop_piece_key},
    };
    const int nv = (int)(sizeof validate / sizeof validate[0]);
    const int nb = (int)(sizeof build / sizeof build[0]);
    const int np = (int)(sizeof pieces / sizeof pieces[0]);
    if (only) {
        for (int i = 0; i < nv; i++)
            validate[i].skip = !strstr(validate[i].name, only);
        for (int i = 0; i < nb; i++)
            build[i].skip = !strstr(build[i].name, only);
        for (int i = 0; i < np; i++)
            pieces[i].skip = !strstr(pieces[i].name, only);
    }

    printf("\ntimings, ns/op per round (%d round%s%s):\n", rounds, rounds == 1 ? "" : "s",
           fixed_n ? ", fixed iterations" : ", ~0.2 s each");
    run_group(&b, validate, nv, rounds, fixed_n);
    for (int i = 0; i < nv; i++)
        print_rounds(&validate[i]);
    run_group(&b, build, nb, rounds, fixed_n);
    for (int i = 0; i < nb; i++)
        print_rounds(&build[i]);
    printf("\npieces of sluice's cost (%zu-byte message):\n", b.msg_len);
    run_group(&b, pieces, np, rounds, fixed_n);
    for (int i = 0; i < np; i++)
        print_rounds(&pieces[i]);

    uint64_t failures = 0;
    for (int i = 0; i < nv; i++)
        failures += validate[i].failures;
    for (int i = 0; i < nb; i++)
        failures += build[i].failures;
    for (int i = 0; i < np; i++)
        failures += pieces[i].failures;
    if (failures) {
        fprintf(stderr, "bench_stun: %" PRIu64 " operations failed during timing\n", failures);
        return 1;
    }

    if (only) {
        printf("\n(--only: no result lines)\n");
        return 0;
    }
    /* Best round of each: the least disturbed by other work on the machine. */
    long vs = to_int(best_of(&validate[0])), vn = to_int(best_of(&validate[1]));
    long bs = to_int(best_of(&build[0])), bn = to_int(best_of(&build[1]));
    printf("\nresult (best round; ratio = libnice / sluice; build includes a random "
           "transaction ID on both sides):\n");
    printf("validate: sluice %ld ns/op, libnice %ld ns/op, %.2fx\n", vs, vn,
           vs > 0 ? (double)vn / (double)vs : 0.0);
    printf("build: sluice %ld ns/op, libnice %ld ns/op, %.2fx\n", bs, bn,
           bs > 0 ? (double)bn / (double)bs : 0.0);
    return 0;
}
