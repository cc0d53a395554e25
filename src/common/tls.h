/* SPDX-License-Identifier: MIT */
/* sluice TLS over memory BIOs (internal): a sans-IO TLS endpoint. The owner
 * feeds ciphertext received from the stream and sends the ciphertext this
 * object produces; plaintext goes in and out through read/write. Used by the
 * TURN client (turns:) and the coordinator. OpenSSL libssl underneath. */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/common.h"

typedef struct sluice_tls sluice_tls;

typedef struct sluice_tls_config {
    bool server; /* false: client */
    /* Client: name sent as SNI and checked against the certificate (DNS
     * name, or an IP literal checked against IP SANs; no SNI for IPs).
     * IPv6 literals without brackets. At most 255 bytes, not "".
     * NULL: no name check (only the chain is verified). Copied. */
    const char *server_name;
    /* Client: CA bundle (PEM file) to verify the server with. NULL: the
     * system store (OpenSSL default verify paths). Copied. */
    const char *ca_file;
    /* Client: verify the server certificate (default true via
     * sluice_tls_config_init). false only for tests/operators who ask. */
    bool verify;
    /* Server (required) and client (optional, client certificates): PEM
     * certificate chain file and private key file; both or neither. Read
     * by sluice_tls_new. */
    const char *cert_file;
    const char *key_file;
    /* Minimum protocol version: 0 (or 12) = TLS 1.2, 13 = TLS 1.3 only. */
    int min_version;
    /* Upper bound on buffered ciphertext not yet taken by the owner (plus
     * plaintext held for it) and on ciphertext fed but not yet consumed
     * (default 256 KiB each). At least 18437 bytes (one TLS 1.2 record of
     * the largest size), so a record can always be fed whole. */
    size_t max_buffered;
    /* Server: ask the client for a certificate (CertificateRequest). The
     * handshake never fails over the client's certificate, present or not,
     * valid or not: the owner checks it afterwards with
     * sluice_tls_verify_peer_chain(), sluice_tls_peer_cert_times() and
     * sluice_tls_peer_has_name(), and can then refuse with a reason the
     * client can read (the coordinator does). Default false. */
    bool request_client_cert;
    /* Server with request_client_cert: CA bundle (PEM file) the client's
     * chain must verify to (sluice_tls_verify_peer_chain); its subjects are
     * also sent as acceptable CA names. NULL: none (any certificate). Read
     * at creation. */
    const char *client_ca_file;
    /* Free an idle session's record buffers (SSL_MODE_RELEASE_BUFFERS):
     * about 34 KiB less per quiet connection, for servers holding
     * thousands of them. Default false. */
    bool release_buffers;
    /* Client: check the server certificate's validity period at this wall
     * clock time (unix seconds) instead of the system clock OpenSSL reads.
     * 0: the system clock. */
    uint64_t verify_time_s;
} sluice_tls_config;

void sluice_tls_config_init(sluice_tls_config *cfg);

/* Create an endpoint. A client starts its handshake at once (its
 * ClientHello is waiting in the output). cfg NULL: a verifying client with
 * the system store and no name check. Returns NULL on failure; *err (may
 * be NULL) gets 0 on success, else SLUICE_ERR_INVALID (bad configuration),
 * SLUICE_ERR_CRYPTO (files missing, unreadable or not matching; OpenSSL
 * failures) or SLUICE_ERR_NOMEM. The reason is logged through the log hook
 * (module "tls", SLUICE_LOG_ERROR). */
sluice_tls *sluice_tls_new(const sluice_tls_config *cfg, int *err);
void sluice_tls_free(sluice_tls *t);

/* A server context shared by many endpoints: the certificate chain and key
 * files are read and checked once, here, instead of for every connection
 * (a TLS listener accepting thousands of clients). Built from a config with
 * server true (server_name, ca_file and verify are not used); the endpoints
 * made from it take cfg's min_version and max_buffered.
 * Returns NULL on failure; *err (may be NULL) gets 0, SLUICE_ERR_INVALID
 * (not a server config, bad values), SLUICE_ERR_CRYPTO (files missing,
 * unreadable or not matching; the reason is logged through the log hook,
 * module "tls") or SLUICE_ERR_NOMEM.
 * Threads: creating endpoints from one context on several threads at once
 * is safe (OpenSSL only reads a context it is not told to change); each
 * endpoint still has one owner. Lifetime: every endpoint holds a reference
 * of its own (OpenSSL's), so sluice_tls_server_ctx_free may come before
 * the endpoints are freed. */
typedef struct sluice_tls_server_ctx sluice_tls_server_ctx;
sluice_tls_server_ctx *sluice_tls_server_ctx_new(const sluice_tls_config *cfg, int *err);
void sluice_tls_server_ctx_free(sluice_tls_server_ctx *ctx);
/* A server endpoint on ctx (no file is read). NULL on failure with *err
 * SLUICE_ERR_INVALID (ctx NULL) or SLUICE_ERR_NOMEM/SLUICE_ERR_CRYPTO. */
sluice_tls *sluice_tls_new_server(const sluice_tls_server_ctx *ctx, int *err);

/* Ciphertext received from the peer. Returns len: all of it is accepted,
 * or nothing with SLUICE_ERR_FULL when the ciphertext fed and not yet
 * consumed would exceed max_buffered (sluice_tls_read consumes it: read
 * until 0, then feed again). len > max_buffered: SLUICE_ERR_INVALID.
 * Drives the handshake: ciphertext is consumed here until the handshake
 * completes, then by sluice_tls_read. Returns the session's error code
 * (SLUICE_ERR_AUTH, SLUICE_ERR_CRYPTO) from the call whose input made it
 * fail and from every call after; SLUICE_ERR_STATE after the peer's
 * close_notify. */
int sluice_tls_feed(sluice_tls *t, const uint8_t *data, size_t len);

/* Decrypted application data. Returns bytes written to buf (at most one
 * record's worth per call; call again), 0 when none is available yet
 * (all fed ciphertext consumed), SLUICE_ERR_STATE after the peer's
 * close_notify (EOF, for good), or SLUICE_ERR_CRYPTO / SLUICE_ERR_AUTH
 * (certificate verification failed) on a fatal error. */
int sluice_tls_read(sluice_tls *t, uint8_t *buf, size_t cap);

/* Encrypt application data. Allowed before the handshake completes (it is
 * copied, held and sent after, in order). Returns len (all accepted), or
 * nothing accepted and SLUICE_ERR_FULL when pending ciphertext plus held
 * plaintext plus len would exceed max_buffered (take output, then write
 * again); SLUICE_ERR_INVALID when len > max_buffered; SLUICE_ERR_STATE
 * after sluice_tls_close; the session's error code once it failed. The
 * output can exceed max_buffered by the record overhead of one write. */
int sluice_tls_write(sluice_tls *t, const uint8_t *data, size_t len);

/* Ciphertext to send to the peer, in order. Returns bytes copied into buf
 * (at most cap), 0 when nothing is pending. Still works after a failure:
 * the alert that tells the peer why may be waiting. */
int sluice_tls_take_output(sluice_tls *t, uint8_t *buf, size_t cap);
/* Bytes of ciphertext pending (held plaintext not counted). */
size_t sluice_tls_pending_output(const sluice_tls *t);

/* The handshake has completed and the session has not failed. */
bool sluice_tls_established(const sluice_tls *t);
/* Negative code once the session failed (handshake, verification, bad
 * record), else 0. */
int sluice_tls_error(const sluice_tls *t);
/* Human-readable reason for the failure (certificate verification result
 * or OpenSSL error string); "" when none. Owned by t. */
const char *sluice_tls_error_text(const sluice_tls *t);

/* Queue a close_notify (after any held data; during the handshake, once it
 * completes). Further writes fail with SLUICE_ERR_STATE; reading goes on
 * until the peer's close_notify (half-close). */
void sluice_tls_close(sluice_tls *t);

/* SHA-256 fingerprint of the DER peer certificate, once the handshake has
 * completed. Returns 32, or SLUICE_ERR_NOT_FOUND (no handshake yet, a
 * failed session, or no certificate: a server's clients show none unless
 * it set request_client_cert). For coordinator pinning, also with verify
 * false. */
int sluice_tls_peer_fingerprint(const sluice_tls *t, uint8_t out[32]);

/* An idle session (nothing pending either way) gives back the buffers its
 * memory BIOs grew to (the handshake's flights, the largest burst): for
 * servers holding thousands of quiet connections. Cheap when there is
 * nothing to give back. */
void sluice_tls_trim(sluice_tls *t);

/* The peer certificate's validity period (notBefore, notAfter) in unix
 * seconds, once the handshake has completed. Returns 0, SLUICE_ERR_NOT_FOUND
 * (no handshake yet, a failed session, no certificate) or
 * SLUICE_ERR_MALFORMED (a time OpenSSL cannot convert). */
int sluice_tls_peer_cert_times(const sluice_tls *t, int64_t *not_before, int64_t *not_after);

/* Does the peer certificate name exactly `name` (byte for byte) in its
 * subject commonName or in a dNSName subjectAltName? No wildcards, no case
 * folding: the coordinator's client names are identifiers. False when
 * there is no certificate. */
bool sluice_tls_peer_has_name(const sluice_tls *t, const char *name);
/* The same rule for any certificate (an OpenSSL X509). */
struct x509_st;
bool sluice_tls_cert_has_name(const struct x509_st *cert, const char *name);

/* Server: verify the peer's chain (its certificate and the intermediates it
 * sent) against the endpoint's client_ca_file at unix_time_s (never the
 * system clock), for TLS client authentication. Returns 0,
 * SLUICE_ERR_NOT_FOUND (no peer certificate, or no handshake yet),
 * SLUICE_ERR_UNSUPPORTED (no client_ca_file configured), SLUICE_ERR_AUTH
 * (the chain does not verify: why, when not NULL, gets OpenSSL's reason,
 * NUL-terminated, truncated to cap) or SLUICE_ERR_NOMEM. */
int sluice_tls_verify_peer_chain(const sluice_tls *t, uint64_t unix_time_s, char *why, size_t cap);

#endif
