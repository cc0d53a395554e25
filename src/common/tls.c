/* SPDX-License-Identifier: MIT */
/* Sans-IO TLS endpoint: an OpenSSL SSL object between two memory BIOs, with
 * bounded buffers on both sides and plaintext held until the handshake ends. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/internal.h"
#include "common/tls.h"

#define DEFAULT_MAX_BUFFERED (256u * 1024u)
/* The largest record a TLS 1.2 peer may send (RFC 5246 §6.2.3: 2^14 + 2048
 * bytes of ciphertext plus the 5-byte header). A smaller bound could refuse
 * a record that is needed whole before anything can be read. */
#define MIN_MAX_BUFFERED (5u + 16384u + 2048u)
/* Keeps every length representable in the int returns. */
#define MAX_MAX_BUFFERED (INT_MAX / 2)
#define HELD_MIN_CAP 4096u
/* Idle memory BIO buffers above this (both together) are given back. */
#define TRIM_THRESHOLD 1024u

struct sluice_tls_server_ctx {
    SSL_CTX *ctx;
    size_t max_buffered;
    bool has_client_ca;
};

struct sluice_tls {
    SSL *ssl;
    BIO *rbio; /* ciphertext fed by the owner, read by OpenSSL; owned by ssl */
    BIO *wbio; /* ciphertext written by OpenSSL, taken by the owner; owned by ssl */
    size_t max_buffered;
    bool server;
    bool established;   /* the handshake completed once */
    bool closed;        /* sluice_tls_close was called */
    bool close_pending; /* close_notify still to be queued */
    bool peer_closed;   /* the peer's close_notify was read */
    bool has_client_ca; /* server: a client CA store to verify clients with */
    int err;
    /* Plaintext accepted by sluice_tls_write but not yet given to SSL_write:
     * before the handshake ends, or after SSL_write asked to be retried. */
    uint8_t *held;
    size_t held_len, held_cap;
    char err_text[256];
};

void sluice_tls_config_init(sluice_tls_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->verify = true;
    cfg->max_buffered = DEFAULT_MAX_BUFFERED;
}

static const char *role(const sluice_tls *t)
{
    return t->server ? "server" : "client";
}

/* Record the first fatal error. Certificate verification failures become
 * SLUICE_ERR_AUTH with the X.509 reason; the rest SLUICE_ERR_CRYPTO with the
 * OpenSSL error string. Empties the error queue either way. */
static int fail(sluice_tls *t, int ssl_error)
{
    unsigned long e = ERR_peek_error();
    long vr = SSL_get_verify_result(t->ssl);

    if (t->err) {
        ERR_clear_error();
        return t->err;
    }
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
        vr != X509_V_OK) {
        t->err = SLUICE_ERR_AUTH;
        snprintf(t->err_text, sizeof t->err_text, "%s", X509_verify_cert_error_string(vr));
    } else {
        t->err = SLUICE_ERR_CRYPTO;
        if (e)
            ERR_error_string_n(e, t->err_text, sizeof t->err_text);
        else
            snprintf(t->err_text, sizeof t->err_text, "TLS failure (SSL_get_error %d)", ssl_error);
    }
    ERR_clear_error();
    t->established = false;
    t->held_len = 0;
    sluice_log(SLUICE_LOG_WARNING, "tls", "%s: %s", role(t), t->err_text);
    return t->err;
}

static bool retryable(int ssl_error)
{
    return ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE;
}

/* Queue the close_notify once the handshake has ended and every held byte
 * has gone to SSL_write: it must follow the data written before it. */
static int maybe_shutdown(sluice_tls *t)
{
    int r;

    if (!t->close_pending || !t->established || t->held_len || t->err)
        return t->err;
    ERR_clear_error();
    r = SSL_shutdown(t->ssl);
    if (r < 0) {
        int e = SSL_get_error(t->ssl, r);
        if (retryable(e))
            return 0;
        return fail(t, e);
    }
    t->close_pending = false;
    return 0;
}

/* Give the held plaintext to SSL_write. A retry must present the same bytes
 * again (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows the address to change),
 * which holds because held only ever grows at its end until written. */
static int flush_held(sluice_tls *t)
{
    size_t n;

    if (!t->established || t->err)
        return t->err;
    if (t->held_len) {
        ERR_clear_error();
        if (!SSL_write_ex(t->ssl, t->held, t->held_len, &n)) {
            int e = SSL_get_error(t->ssl, 0);
            return retryable(e) ? 0 : fail(t, e);
        }
        /* Without SSL_MODE_ENABLE_PARTIAL_WRITE success means all of it. */
        t->held_len = 0;
        if (t->held_cap > HELD_MIN_CAP) {
            OPENSSL_cleanse(t->held, t->held_cap);
            free(t->held);
            t->held = NULL;
            t->held_cap = 0;
        }
    }
    return maybe_shutdown(t);
}

/* Advance the handshake with whatever ciphertext has been fed. */
static int drive_handshake(sluice_tls *t)
{
    int r;

    if (t->established || t->err)
        return t->err;
    ERR_clear_error();
    r = SSL_do_handshake(t->ssl);
    if (r != 1) {
        int e = SSL_get_error(t->ssl, r);
        if (retryable(e))
            return 0;
        return fail(t, e);
    }
    t->established = true;
    sluice_log(SLUICE_LOG_DEBUG, "tls", "%s: %s established (%s)", role(t), SSL_get_version(t->ssl),
               SSL_get_cipher_name(t->ssl));
    return flush_held(t);
}

/* Server asking for client certificates: the handshake goes on whatever
 * the client sends; the owner checks the certificate afterwards with its
 * own clock and tells the client why it is refused. */
static int accept_any_client_cert(int preverify_ok, X509_STORE_CTX *x)
{
    (void)preverify_ok;
    (void)x;
    return 1;
}

static bool is_ip_literal(const char *s)
{
    uint8_t b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static SSL_CTX *make_ctx(const sluice_tls_config *cfg, const char **what)
{
    SSL_CTX *ctx = SSL_CTX_new(cfg->server ? TLS_server_method() : TLS_client_method());

    *what = "SSL_CTX_new";
    if (!ctx)
        return NULL;
    *what = "protocol version";
    if (!SSL_CTX_set_min_proto_version(ctx,
                                       cfg->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION))
        goto fail;
    /* Renegotiation is the one thing that makes SSL_write wait for the peer
     * after the handshake; nobody here needs it. Sessions are never resumed,
     * so a TLS 1.3 server sends no tickets. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (cfg->server) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, 0);
    } else {
        *what = cfg->ca_file ? cfg->ca_file : "default verify paths";
        /* Without verification (a pinned peer, checked by fingerprint after
         * the handshake) no store is loaded: OpenSSL still runs the chain
         * lookup with SSL_VERIFY_NONE, and scanning the system's hashed
         * certificate directory cost a pinned coordinator client about
         * 25 ms of CPU per handshake (measured by tests/coordd). */
        if (cfg->verify && (cfg->ca_file ? !SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL)
                                         : !SSL_CTX_set_default_verify_paths(ctx)))
            goto fail;
        SSL_CTX_set_verify(ctx, cfg->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
        if (cfg->verify_time_s)
            X509_VERIFY_PARAM_set_time(SSL_CTX_get0_param(ctx), (time_t)cfg->verify_time_s);
    }
    if (cfg->release_buffers)
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (cfg->server && cfg->request_client_cert) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_client_cert);
        if (cfg->client_ca_file) {
            STACK_OF(X509_NAME) *names;

            *what = cfg->client_ca_file;
            if (!SSL_CTX_load_verify_locations(ctx, cfg->client_ca_file, NULL))
                goto fail;
            names = SSL_load_client_CA_file(cfg->client_ca_file);
            if (!names)
                goto fail;
            SSL_CTX_set_client_CA_list(ctx, names); /* takes ownership */
        }
    }
    if (cfg->cert_file) {
        *what = cfg->cert_file;
        if (!SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file))
            goto fail;
        *what = cfg->key_file;
        if (!SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM))
            goto fail;
        *what = "certificate and key do not match";
        if (!SSL_CTX_check_private_key(ctx))
            goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Client only: SNI and the name the certificate must carry. RFC 6066 §3:
 * no IP literals in SNI; an IP is matched against iPAddress SANs. */
static bool set_peer_name(SSL *ssl, const char *name)
{
    if (is_ip_literal(name))
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1;
}

static bool config_valid(const sluice_tls_config *cfg)
{
    if (cfg->max_buffered < MIN_MAX_BUFFERED || cfg->max_buffered > MAX_MAX_BUFFERED)
        return false;
    if (cfg->min_version != 0 && cfg->min_version != 12 && cfg->min_version != 13)
        return false;
    if (!cfg->cert_file != !cfg->key_file)
        return false;
    if (cfg->server && !cfg->cert_file)
        return false;
    if (cfg->client_ca_file && (!cfg->server || !cfg->request_client_cert))
        return false;
    if (!cfg->server && cfg->server_name &&
        (!cfg->server_name[0] || strlen(cfg->server_name) > 255))
        return false;
    return true;
}

/* Log why creation failed: what was being set up and OpenSSL's reason. */
static int create_failed(const sluice_tls *t, const char *what)
{
    unsigned long e = ERR_peek_error();
    char reason[200] = "";

    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    sluice_log(SLUICE_LOG_ERROR, "tls", "%s: cannot create: %s%s%s", role(t), what,
               reason[0] ? ": " : "", reason);
    ERR_clear_error();
    /* Only allocation failures leave no reason behind. */
    return e ? SLUICE_ERR_CRYPTO : SLUICE_ERR_NOMEM;
}

/* The SSL object on ctx between two memory BIOs. cfg NULL: a server.
 * Returns 0 or a SLUICE_ERR_*. */
static int attach(sluice_tls *t, SSL_CTX *ctx, const sluice_tls_config *cfg)
{
    /* The SSL object keeps its own reference to the context. */
    t->ssl = SSL_new(ctx);
    if (!t->ssl)
        return create_failed(t, "SSL_new");
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        return create_failed(t, "BIO_new");
    }
    /* An empty BIO means "no data yet", never end of stream. */
    BIO_set_mem_eof_return(t->rbio, -1);
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);

    if (!cfg || cfg->server) {
        SSL_set_accept_state(t->ssl);
        return 0;
    }
    SSL_set_connect_state(t->ssl);
    if (cfg->server_name && !set_peer_name(t->ssl, cfg->server_name))
        return create_failed(t, "server name");
    /* The ClientHello goes out now; fail() has logged any failure. */
    return drive_handshake(t);
}

/* A context of its own for one endpoint. Returns 0 or a SLUICE_ERR_*. */
static int setup(sluice_tls *t, const sluice_tls_config *cfg)
{
    const char *what = "";
    SSL_CTX *ctx = make_ctx(cfg, &what);

    if (!ctx)
        return create_failed(t, what);
    int r = attach(t, ctx, cfg);
    SSL_CTX_free(ctx);
    return r;
}

sluice_tls_server_ctx *sluice_tls_server_ctx_new(const sluice_tls_config *cfg, int *err)
{
    sluice_tls_server_ctx *c;
    const char *what = "";
    int dummy;

    if (!err)
        err = &dummy;
    if (!cfg || !cfg->server || !config_valid(cfg)) {
        sluice_log(SLUICE_LOG_ERROR, "tls", "invalid TLS server configuration");
        *err = SLUICE_ERR_INVALID;
        return NULL;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        *err = SLUICE_ERR_NOMEM;
        return NULL;
    }
    c->max_buffered = cfg->max_buffered;
    c->has_client_ca = cfg->client_ca_file != NULL;
    ERR_clear_error();
    c->ctx = make_ctx(cfg, &what);
    if (!c->ctx) {
        sluice_tls log_as = {.server = true};
        *err = create_failed(&log_as, what);
        free(c);
        return NULL;
    }
    *err = 0;
    return c;
}

void sluice_tls_server_ctx_free(sluice_tls_server_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx); /* endpoints made from it hold their own references */
    free(c);
}

sluice_tls *sluice_tls_new_server(const sluice_tls_server_ctx *c, int *err)
{
    sluice_tls *t;
    int r, dummy;

    if (!err)
        err = &dummy;
    if (!c) {
        *err = SLUICE_ERR_INVALID;
        return NULL;
    }
    t = calloc(1, sizeof *t);
    if (!t) {
        *err = SLUICE_ERR_NOMEM;
        return NULL;
    }
    t->server = true;
    t->max_buffered = c->max_buffered;
    t->has_client_ca = c->has_client_ca;
    ERR_clear_error();
    r = attach(t, c->ctx, NULL);
    ERR_clear_error();
    if (r < 0) {
        sluice_tls_free(t);
        t = NULL;
    }
    *err = r < 0 ? r : 0;
    return t;
}

sluice_tls *sluice_tls_new(const sluice_tls_config *cfg, int *err)
{
    sluice_tls_config def;
    sluice_tls *t;
    int r;

    if (!cfg) {
        sluice_tls_config_init(&def);
        cfg = &def;
    }
    if (!config_valid(cfg)) {
        sluice_log(SLUICE_LOG_ERROR, "tls", "invalid TLS configuration");
        if (err)
            *err = SLUICE_ERR_INVALID;
        return NULL;
    }
    t = calloc(1, sizeof *t);
    if (!t) {
        if (err)
            *err = SLUICE_ERR_NOMEM;
        return NULL;
    }
    t->server = cfg->server;
    t->max_buffered = cfg->max_buffered;
    t->has_client_ca = cfg->client_ca_file != NULL;
    ERR_clear_error();
    r = setup(t, cfg);
    ERR_clear_error();
    if (r < 0) {
        sluice_tls_free(t);
        t = NULL;
    }
    if (err)
        *err = r < 0 ? r : 0;
    return t;
}

void sluice_tls_free(sluice_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* and both BIOs */
    if (t->held) {
        OPENSSL_cleanse(t->held, t->held_cap);
        free(t->held);
    }
    free(t);
}

int sluice_tls_feed(sluice_tls *t, const uint8_t *data, size_t len)
{
    int r;

    if (!t || (!data && len))
        return SLUICE_ERR_INVALID;
    if (t->err)
        return t->err;
    if (t->peer_closed)
        return SLUICE_ERR_STATE;
    if (len > t->max_buffered)
        return SLUICE_ERR_INVALID;
    if (BIO_ctrl_pending(t->rbio) + len > t->max_buffered)
        return SLUICE_ERR_FULL;
    if (!len)
        return 0;
    ERR_clear_error();
    if (BIO_write(t->rbio, data, (int)len) != (int)len)
        return fail(t, SSL_ERROR_SYSCALL);
    r = drive_handshake(t);
    ERR_clear_error();
    return r < 0 ? r : (int)len;
}

int sluice_tls_read(sluice_tls *t, uint8_t *buf, size_t cap)
{
    size_t n;
    int r;

    if (!t || (!buf && cap))
        return SLUICE_ERR_INVALID;
    if (t->err)
        return t->err;
    if (t->peer_closed)
        return SLUICE_ERR_STATE;
    ERR_clear_error();
    if (drive_handshake(t) < 0)
        return t->err;
    if (!t->established || !cap)
        return 0;
    if (cap > INT_MAX)
        cap = INT_MAX;
    ERR_clear_error();
    if (SSL_read_ex(t->ssl, buf, cap, &n)) {
        /* A record read may have unblocked a write that asked for a retry. */
        r = flush_held(t);
        ERR_clear_error();
        return r < 0 ? r : (int)n;
    }
    r = SSL_get_error(t->ssl, 0);
    if (retryable(r)) {
        r = flush_held(t);
        ERR_clear_error();
        return r;
    }
    if (r == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        t->peer_closed = true;
        return SLUICE_ERR_STATE;
    }
    return fail(t, r);
}

static int hold(sluice_tls *t, const uint8_t *data, size_t len)
{
    if (t->held_len + len > t->held_cap) {
        size_t cap = t->held_cap ? t->held_cap : HELD_MIN_CAP;
        uint8_t *p;

        while (cap < t->held_len + len)
            cap *= 2;
        if (cap > t->max_buffered)
            cap = t->max_buffered;
        p = malloc(cap);
        if (!p)
            return SLUICE_ERR_NOMEM;
        if (t->held_len)
            memcpy(p, t->held, t->held_len);
        if (t->held) {
            OPENSSL_cleanse(t->held, t->held_cap);
            free(t->held);
        }
        t->held = p;
        t->held_cap = cap;
    }
    memcpy(t->held + t->held_len, data, len);
    t->held_len += len;
    return 0;
}

int sluice_tls_write(sluice_tls *t, const uint8_t *data, size_t len)
{
    size_t n;
    int r;

    if (!t || (!data && len))
        return SLUICE_ERR_INVALID;
    if (t->err)
        return t->err;
    if (t->closed)
        return SLUICE_ERR_STATE;
    if (len > t->max_buffered)
        return SLUICE_ERR_INVALID;
    if (BIO_ctrl_pending(t->wbio) + t->held_len + len > t->max_buffered)
        return SLUICE_ERR_FULL;
    if (!len)
        return 0;
    ERR_clear_error();
    if (!t->established || t->held_len) {
        /* Behind the handshake or behind earlier bytes: keep the order. */
        r = hold(t, data, len);
        if (r == 0)
            r = flush_held(t);
    } else if (SSL_write_ex(t->ssl, data, len, &n)) {
        r = 0;
    } else {
        r = SSL_get_error(t->ssl, 0);
        r = retryable(r) ? hold(t, data, len) : fail(t, r);
    }
    ERR_clear_error();
    return r < 0 ? r : (int)len;
}

int sluice_tls_take_output(sluice_tls *t, uint8_t *buf, size_t cap)
{
    int n;

    if (!t || (!buf && cap))
        return SLUICE_ERR_INVALID;
    if (!cap || !BIO_ctrl_pending(t->wbio))
        return 0;
    n = BIO_read(t->wbio, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    return n > 0 ? n : 0;
}

size_t sluice_tls_pending_output(const sluice_tls *t)
{
    return t ? BIO_ctrl_pending(t->wbio) : 0;
}

bool sluice_tls_established(const sluice_tls *t)
{
    return t && t->established && !t->err;
}

int sluice_tls_error(const sluice_tls *t)
{
    return t ? t->err : SLUICE_ERR_INVALID;
}

const char *sluice_tls_error_text(const sluice_tls *t)
{
    return t ? t->err_text : "";
}

void sluice_tls_close(sluice_tls *t)
{
    if (!t || t->closed)
        return;
    t->closed = true;
    if (t->err)
        return;
    t->close_pending = true;
    ERR_clear_error();
    maybe_shutdown(t);
    ERR_clear_error();
}

int sluice_tls_peer_fingerprint(const sluice_tls *t, uint8_t out[32])
{
    const X509 *cert;
    unsigned int n = 0;
    int r;

    if (!t || !out)
        return SLUICE_ERR_INVALID;
    if (!t->established || t->err)
        return SLUICE_ERR_NOT_FOUND;
    cert = SSL_get0_peer_certificate(t->ssl);
    if (!cert)
        return SLUICE_ERR_NOT_FOUND;
    ERR_clear_error();
    r = X509_digest(cert, EVP_sha256(), out, &n) == 1 && n == 32 ? 32 : SLUICE_ERR_CRYPTO;
    ERR_clear_error();
    return r;
}

static const X509 *peer_cert(const sluice_tls *t)
{
    if (!t->established || t->err)
        return NULL;
    return SSL_get0_peer_certificate(t->ssl);
}

static int asn1_unix(const ASN1_TIME *a, int64_t *out)
{
    struct tm tm;

    if (!a || ASN1_TIME_to_tm(a, &tm) != 1)
        return SLUICE_ERR_MALFORMED;
    *out = (int64_t)timegm(&tm);
    return 0;
}

int sluice_tls_peer_cert_times(const sluice_tls *t, int64_t *not_before, int64_t *not_after)
{
    const X509 *cert;
    int r;

    if (!t || !not_before || !not_after)
        return SLUICE_ERR_INVALID;
    cert = peer_cert(t);
    if (!cert)
        return SLUICE_ERR_NOT_FOUND;
    r = asn1_unix(X509_get0_notBefore(cert), not_before);
    if (r == 0)
        r = asn1_unix(X509_get0_notAfter(cert), not_after);
    ERR_clear_error();
    return r;
}

static bool asn1_string_is(const ASN1_STRING *a, const char *name, size_t len)
{
    return a && (size_t)ASN1_STRING_length(a) == len &&
           memcmp(ASN1_STRING_get0_data(a), name, len) == 0;
}

bool sluice_tls_cert_has_name(const struct x509_st *cert, const char *name)
{
    const X509_NAME *subject;
    GENERAL_NAMES *sans;
    size_t len;
    bool found = false;

    if (!cert || !name)
        return false;
    len = strlen(name);
    subject = X509_get_subject_name(cert);
    for (int i = -1; !found && (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;)
        found = asn1_string_is(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)), name, len);
    sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; !found && sans && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS)
            found = asn1_string_is(g->d.dNSName, name, len);
    }
    GENERAL_NAMES_free(sans);
    ERR_clear_error();
    return found;
}

bool sluice_tls_peer_has_name(const sluice_tls *t, const char *name)
{
    return t && sluice_tls_cert_has_name(peer_cert(t), name);
}

int sluice_tls_verify_peer_chain(const sluice_tls *t, uint64_t unix_time_s, char *why, size_t cap)
{
    const X509 *cert;
    X509_STORE_CTX *x;
    int r;

    if (why && cap)
        why[0] = 0;
    if (!t)
        return SLUICE_ERR_INVALID;
    cert = peer_cert(t);
    if (!cert)
        return SLUICE_ERR_NOT_FOUND;
    if (!t->has_client_ca)
        return SLUICE_ERR_UNSUPPORTED;
    x = X509_STORE_CTX_new();
    if (!x)
        return SLUICE_ERR_NOMEM;
    /* OpenSSL's API takes the certificate non-const; it only reads it. */
    r = X509_STORE_CTX_init(x, SSL_CTX_get_cert_store(SSL_get_SSL_CTX(t->ssl)), (X509 *)cert,
                            SSL_get_peer_cert_chain(t->ssl));
    if (r == 1) {
        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(x), (time_t)unix_time_s);
        X509_STORE_CTX_set_purpose(x, X509_PURPOSE_SSL_CLIENT);
        r = X509_verify_cert(x);
    }
    if (r == 1) {
        r = 0;
    } else {
        int e = X509_STORE_CTX_get_error(x);
        if (why && cap)
            snprintf(why, cap, "%s", e != X509_V_OK ? X509_verify_cert_error_string(e)
                                                    : "certificate verification failed");
        r = SLUICE_ERR_AUTH;
    }
    X509_STORE_CTX_free(x);
    ERR_clear_error();
    return r;
}

void sluice_tls_trim(sluice_tls *t)
{
    BUF_MEM *rm = NULL, *wm = NULL;
    BIO *r, *w;

    if (!t || BIO_ctrl_pending(t->rbio) || BIO_ctrl_pending(t->wbio))
        return;
    BIO_get_mem_ptr(t->rbio, &rm);
    BIO_get_mem_ptr(t->wbio, &wm);
    if ((rm ? rm->max : 0) + (wm ? wm->max : 0) <= TRIM_THRESHOLD)
        return;
    r = BIO_new(BIO_s_mem());
    w = BIO_new(BIO_s_mem());
    if (!r || !w) {
        BIO_free(r);
        BIO_free(w);
        ERR_clear_error();
        return;
    }
    BIO_set_mem_eof_return(r, -1);
    BIO_set_mem_eof_return(w, -1);
    SSL_set_bio(t->ssl, r, w); /* frees the old pair */
    t->rbio = r;
    t->wbio = w;
}
