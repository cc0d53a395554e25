/* SPDX-License-Identifier: MIT */
/* sluice common definitions: export macro, error codes, time, randomness,
 * logging and the transmit descriptor shared by every core state machine. */
#ifndef SLUICE_COMMON_H
#define SLUICE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SLUICE_BUILDING) && defined(__GNUC__)
#define SLUICE_API __attribute__((visibility("default")))
#else
#define SLUICE_API
#endif

/* A deadline that never comes (returned by every *_next_timeout()). */
#define SLUICE_NEVER UINT64_MAX

/* Library errors. Every fallible function returns >= 0 on success (often a
 * length) and one of these negative codes on failure. STUN wire error codes
 * (400, 401, ...) are a separate space: see sluice/stun.h. */
typedef enum {
    SLUICE_OK = 0,
    SLUICE_ERR_INVALID = -1,     /* bad argument from the caller */
    SLUICE_ERR_TRUNCATED = -2,   /* input ends before a length says it should */
    SLUICE_ERR_MALFORMED = -3,   /* input is complete but breaks a format rule */
    SLUICE_ERR_NOT_STUN = -4,    /* not a STUN message (cookie, top bits) */
    SLUICE_ERR_NOSPACE = -5,     /* caller buffer too small */
    SLUICE_ERR_NOT_FOUND = -6,   /* attribute or object absent */
    SLUICE_ERR_INTEGRITY = -7,   /* MESSAGE-INTEGRITY(-SHA256) mismatch */
    SLUICE_ERR_FINGERPRINT = -8, /* FINGERPRINT mismatch */
    SLUICE_ERR_FULL = -9,        /* a bounded table or queue is full */
    SLUICE_ERR_NOMEM = -10,      /* allocation failed */
    SLUICE_ERR_CRYPTO = -11,     /* the crypto library failed */
    SLUICE_ERR_TIMEOUT = -12,    /* a transaction or operation timed out */
    SLUICE_ERR_UNSUPPORTED = -13,/* feature or algorithm not supported */
    SLUICE_ERR_STATE = -14,      /* call not valid in the object's state */
    SLUICE_ERR_AUTH = -15,       /* authentication failed / missing credentials */
    SLUICE_ERR_UNKNOWN_ATTR = -16,/* unknown comprehension-required attribute */
} sluice_err;

/* Name of an error code ("truncated input", ...). Never NULL. */
SLUICE_API const char *sluice_strerror(int err);

/* Library version as "MAJOR.MINOR.PATCH". */
SLUICE_API const char *sluice_version(void);

/* Injected randomness. fill() writes len random bytes and returns 0, or a
 * negative code. The default (ctx NULL, fill NULL) is OpenSSL RAND_bytes. */
typedef struct sluice_rng {
    int (*fill)(void *ctx, uint8_t *out, size_t len);
    void *ctx;
} sluice_rng;

/* Fill from rng (NULL or empty rng: OpenSSL RAND_bytes). */
SLUICE_API int sluice_rng_fill(const sluice_rng *rng, uint8_t *out, size_t len);

/* A deterministic generator for tests and replays (xoshiro256**). */
typedef struct sluice_test_rng {
    uint64_t s[4];
} sluice_test_rng;
SLUICE_API void sluice_test_rng_init(sluice_test_rng *t, uint64_t seed);
/* Fill-function for sluice_rng with ctx = a sluice_test_rng. */
SLUICE_API int sluice_test_rng_fill(void *ctx, uint8_t *out, size_t len);

/* Pluggable allocator for stateful objects (tests fail each allocation in
 * turn). Zero-initialised: libc calloc/free. Objects allocate only when
 * created. */
typedef struct sluice_allocator {
    void *(*calloc)(void *ctx, size_t n, size_t size);
    void (*free)(void *ctx, void *p);
    void *ctx;
} sluice_allocator;

/* Optional log hook: the only callback the core makes. Called synchronously
 * with a formatted, NUL-terminated line; must not call back into sluice. */
typedef enum {
    SLUICE_LOG_ERROR = 0,
    SLUICE_LOG_WARNING = 1,
    SLUICE_LOG_INFO = 2,
    SLUICE_LOG_DEBUG = 3,
} sluice_log_level;
typedef void (*sluice_log_fn)(void *ctx, sluice_log_level level, const char *module,
                              const char *line);
/* Process-wide hook; NULL disables logging (the default). Not thread-safe:
 * set it once at start-up. */
SLUICE_API void sluice_set_log_hook(sluice_log_fn fn, void *ctx, sluice_log_level max_level);

/* Transport of a transmit or of a server association. */
typedef enum {
    SLUICE_TRANSPORT_UDP = 0,
    SLUICE_TRANSPORT_TCP = 1,
    SLUICE_TRANSPORT_TLS = 2,
} sluice_transport;

#ifdef __cplusplus
}
#endif
#endif
