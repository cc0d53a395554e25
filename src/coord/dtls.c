/* SPDX-License-Identifier: MIT */
/* Direct channel: DTLS 1.2 between two coordinator clients on their ICE
 * path, each pinning the other's certificate by the SHA-256 fingerprint the
 * coordinator vouched for. OpenSSL underneath, on a datagram BIO of our own
 * (one received datagram at a time; it also hears when OpenSSL arms or
 * stops its retransmission timer) and a memory BIO for output, which
 * poll_transmit cuts into datagrams at record boundaries. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/internal.h"
#include "sluice/coord.h"

#define DEFAULT_RECV_QUEUE 64u
#define MAX_RECV_QUEUE 4096u
#define DEFAULT_SEND_QUEUE_BYTES (64u * 1024u)
#define MAX_SEND_QUEUE_BYTES (16u * 1024u * 1024u)
#define DEFAULT_RETRANSMIT_US 1000000u /* RFC 6347 §4.2.4.1 */
#define MAX_RETRANSMIT_US 60000000u    /* RFC 6347 §4.2.4.1: at least 60 s */
#define DEFAULT_HANDSHAKE_TIMEOUT_US 30000000u

/* RFC 6347 §4.1: type(1) version(2) epoch(2) sequence_number(6) length(2). */
#define RECORD_HEADER 13u
/* RFC 6347 §4.1 / RFC 5246 §6.2.3: a record's fragment is at most
 * 2^14 + 2048 bytes. */
#define MAX_RECORD_FRAGMENT (16384u + 2048u)

/* AEAD suites only: the record overhead is then at most
 * SLUICE_COORD_DTLS_OVERHEAD. ECDSA first (coordinator identities are EC
 * P-256); RSA for identities given as files. */
static const char CIPHERS[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                              "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
                              "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305";

struct sluice_coord_dtls {
    sluice_allocator alloc;
    SSL *ssl;
    BIO *rbio; /* ours: the datagram being handled; owned by ssl */
    BIO *wbio; /* memory: records written by OpenSSL; owned by ssl */
    bool client;
    bool started;
    bool established;
    bool closed;      /* close() */
    bool peer_closed; /* the peer's close_notify */
    bool fp_mismatch; /* the verify callback saw a certificate that is not the pin */
    int peer_alert;   /* a fatal alert received: its description, else -1 */
    int err;
    uint8_t peer_fp[32];
    uint8_t seen_fp[32]; /* what the peer showed, for the error text */
    size_t max_datagram, max_payload, send_queue_bytes;
    /* The datagram handle_datagram is feeding (a view, NULL outside it). */
    const uint8_t *in;
    size_t in_len;
    /* Time: the caller's now_us of the current call; the retransmission
     * duration OpenSSL last asked the timer callback for; deadlines. */
    uint64_t now_us;
    uint32_t retransmit_first_us, retransmit_us;
    uint64_t retransmit_at;
    uint64_t handshake_timeout_us, handshake_deadline, started_at;
    /* Received messages: a ring of recv_queue slots of max_payload bytes. */
    uint8_t *ring;
    uint32_t *ring_len;
    size_t ring_cap, ring_head, ring_count;
    uint8_t *scratch; /* max_payload + 1: one more byte tells an oversized record */
    sluice_coord_dtls_stats stats;
    char err_text[320];
};

bool sluice_coord_is_dtls(uint8_t first_byte)
{
    return first_byte >= 20 && first_byte <= 63; /* RFC 7983 §7 */
}

void sluice_coord_dtls_config_init(sluice_coord_dtls_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_datagram = SLUICE_COORD_DTLS_DEFAULT_MAX_DATAGRAM;
    cfg->recv_queue = DEFAULT_RECV_QUEUE;
    cfg->send_queue_bytes = DEFAULT_SEND_QUEUE_BYTES;
    cfg->retransmit_us = DEFAULT_RETRANSMIT_US;
    cfg->handshake_timeout_us = DEFAULT_HANDSHAKE_TIMEOUT_US;
}

/* ------------------------------------------------------------------------ */
/* The input BIO: hands OpenSSL the current datagram whole (DTLS reads one
 * datagram per BIO_read) and records timer changes. */

static int dgram_read(BIO *b, char *out, int outl)
{
    sluice_coord_dtls *d = BIO_get_data(b);
    size_t n;

    BIO_clear_retry_flags(b);
    if (!d || !d->in_len || outl <= 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    /* A datagram longer than OpenSSL's buffer is cut, as a socket would;
     * the record cut short is then dropped by OpenSSL. */
    n = d->in_len < (size_t)outl ? d->in_len : (size_t)outl;
    memcpy(out, d->in, n);
    d->in = NULL;
    d->in_len = 0;
    return (int)n;
}

static int dgram_write(BIO *b, const char *in, int inl)
{
    (void)b;
    (void)in;
    (void)inl;
    return -1; /* never the write BIO */
}

static long dgram_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    sluice_coord_dtls *d = BIO_get_data(b);
    (void)num;

    switch (cmd) {
    case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:
        /* dtls1_start_timer (armed: the duration is what timer_cb gave) or
         * dtls1_stop_timer (all zero). The absolute time OpenSSL passes is
         * on its own clock: only whether it is zero is used. */
        if (d) {
            const struct timeval *tv = ptr;
            bool armed = tv && (tv->tv_sec || tv->tv_usec);
            d->retransmit_at = armed ? d->now_us + d->retransmit_us : SLUICE_NEVER;
        }
        return 1;
    case BIO_CTRL_PENDING:
        return d ? (long)d->in_len : 0;
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        /* MTU queries, peer addresses, receive timeouts: none here. */
        return 0;
    }
}

static int dgram_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *dgram_method;
static CRYPTO_ONCE dgram_once = CRYPTO_ONCE_STATIC_INIT;

static void dgram_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice dtls input");
    if (!m)
        return;
    if (!BIO_meth_set_read(m, dgram_read) || !BIO_meth_set_write(m, dgram_write) ||
        !BIO_meth_set_ctrl(m, dgram_ctrl) || !BIO_meth_set_create(m, dgram_create)) {
        BIO_meth_free(m);
        return;
    }
    dgram_method = m; /* for the life of the process */
}

/* ------------------------------------------------------------------------ */
/* Callbacks OpenSSL makes during our calls */

static sluice_coord_dtls *of_ssl(const SSL *ssl)
{
    return SSL_get_app_data(ssl);
}

/* RFC 6347 §4.2.4.1: start with the configured timeout, double on each
 * expiry, up to 60 s. prev_us is 0 when a fresh timer starts. */
static unsigned int timer_cb(SSL *ssl, unsigned int prev_us)
{
    sluice_coord_dtls *d = of_ssl(ssl);
    uint64_t next;

    if (prev_us == 0) {
        next = d->retransmit_first_us;
    } else {
        /* An expiry: OpenSSL resends the flight after this returns (from
         * handle_timeout, or from a read when its clock says so first). */
        next =
            (uint64_t)prev_us * 2 > MAX_RETRANSMIT_US ? MAX_RETRANSMIT_US : (uint64_t)prev_us * 2;
        d->stats.retransmits++;
    }
    d->retransmit_us = (uint32_t)next;
    return (unsigned int)next;
}

/* The pin is the whole check: whatever OpenSSL thinks of the chain (a
 * self-signed certificate with no trust store never verifies), the leaf's
 * DER SHA-256 must equal the fingerprint the coordinator gave. */
static int verify_cb(int preverify_ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    sluice_coord_dtls *d = ssl ? of_ssl(ssl) : NULL;
    X509 *cert = X509_STORE_CTX_get_current_cert(x);
    uint8_t fp[32];
    unsigned int n = 0;
    (void)preverify_ok;

    if (!d)
        return 0;
    if (X509_STORE_CTX_get_error_depth(x) != 0)
        return 1; /* intermediates: only the leaf is pinned */
    if (!cert || X509_digest(cert, EVP_sha256(), fp, &n) != 1 || n != sizeof fp) {
        X509_STORE_CTX_set_error(x, X509_V_ERR_UNSPECIFIED);
        return 0;
    }
    if (CRYPTO_memcmp(fp, d->peer_fp, sizeof fp) != 0) {
        d->fp_mismatch = true;
        memcpy(d->seen_fp, fp, sizeof fp);
        /* Sent to the peer as a bad_certificate alert. */
        X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    X509_STORE_CTX_set_error(x, X509_V_OK);
    return 1;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
    sluice_coord_dtls *d = of_ssl(ssl);

    /* ret: alert level << 8 | description (RFC 5246 §7.2). */
    if (d && (where & SSL_CB_READ_ALERT) == SSL_CB_READ_ALERT && (ret >> 8) == SSL3_AL_FATAL &&
        d->peer_alert < 0)
        d->peer_alert = ret & 0xff;
}

/* ------------------------------------------------------------------------ */
/* Failure */

static bool is_certificate_alert(int desc)
{
    return desc == SSL3_AD_BAD_CERTIFICATE || desc == SSL3_AD_UNSUPPORTED_CERTIFICATE ||
           desc == SSL3_AD_CERTIFICATE_REVOKED || desc == SSL3_AD_CERTIFICATE_EXPIRED ||
           desc == SSL3_AD_CERTIFICATE_UNKNOWN || desc == TLS1_AD_UNKNOWN_CA ||
           desc == TLS1_AD_ACCESS_DENIED || desc == TLS13_AD_CERTIFICATE_REQUIRED;
}

static void stop_timers(sluice_coord_dtls *d)
{
    d->retransmit_at = SLUICE_NEVER;
    d->handshake_deadline = SLUICE_NEVER;
}

/* Record the first fatal error with a text a person can act on. code 0:
 * work it out from what the callbacks saw and OpenSSL's error queue.
 * Empties the error queue. */
static int fail(sluice_coord_dtls *d, int code, const char *text)
{
    unsigned long e = ERR_peek_error();
    char fp_seen[96], fp_pinned[96];

    if (d->err) {
        ERR_clear_error();
        return d->err;
    }
    if (code) {
        d->err = code;
        snprintf(d->err_text, sizeof d->err_text, "%s", text);
    } else if (d->fp_mismatch) {
        sluice_coord_fingerprint_format(d->seen_fp, fp_seen, sizeof fp_seen);
        sluice_coord_fingerprint_format(d->peer_fp, fp_pinned, sizeof fp_pinned);
        d->err = SLUICE_ERR_AUTH;
        snprintf(d->err_text, sizeof d->err_text,
                 "peer certificate fingerprint %s is not the pinned %s (the one the "
                 "coordinator vouched for)",
                 fp_seen, fp_pinned);
    } else if (d->peer_alert >= 0) {
        d->err = is_certificate_alert(d->peer_alert) ? SLUICE_ERR_AUTH : SLUICE_ERR_CRYPTO;
        snprintf(d->err_text, sizeof d->err_text, "DTLS alert from the peer: %s%s",
                 SSL_alert_desc_string_long(d->peer_alert),
                 is_certificate_alert(d->peer_alert)
                     ? " (it does not accept our certificate: not the fingerprint it was given?)"
                     : "");
    } else if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
               ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        d->err = SLUICE_ERR_AUTH;
        snprintf(d->err_text, sizeof d->err_text, "the peer sent no certificate");
    } else if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_READ_TIMEOUT_EXPIRED) {
        d->err = SLUICE_ERR_TIMEOUT;
        snprintf(d->err_text, sizeof d->err_text,
                 "DTLS handshake: no answer after %" PRIu64 " retransmissions",
                 d->stats.retransmits);
    } else {
        d->err = SLUICE_ERR_CRYPTO;
        if (e)
            ERR_error_string_n(e, d->err_text, sizeof d->err_text);
        else
            snprintf(d->err_text, sizeof d->err_text, "DTLS failure");
    }
    ERR_clear_error();
    d->established = false;
    stop_timers(d);
    sluice_log(SLUICE_LOG_WARNING, "dtls", "%s: %s", d->client ? "client" : "server", d->err_text);
    return d->err;
}

static bool retryable(int ssl_error)
{
    return ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE;
}

/* ------------------------------------------------------------------------ */
/* Creation */

static bool config_valid(const sluice_coord_dtls_config *cfg)
{
    return cfg && cfg->cert_file && cfg->key_file && cfg->peer_fingerprint &&
           cfg->max_datagram >= SLUICE_COORD_DTLS_MIN_DATAGRAM &&
           cfg->max_datagram <= SLUICE_COORD_DTLS_MAX_DATAGRAM && cfg->recv_queue >= 1 &&
           cfg->recv_queue <= MAX_RECV_QUEUE && cfg->send_queue_bytes >= 2 * cfg->max_datagram &&
           cfg->send_queue_bytes <= MAX_SEND_QUEUE_BYTES && cfg->retransmit_us >= 1000 &&
           cfg->retransmit_us <= MAX_RETRANSMIT_US && cfg->handshake_timeout_us >= 1000;
}

static int create_failed(const char *what)
{
    unsigned long e = ERR_peek_error();
    char reason[200] = "";

    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    sluice_log(SLUICE_LOG_ERROR, "dtls", "cannot create: %s%s%s", what, reason[0] ? ": " : "",
               reason);
    ERR_clear_error();
    return e ? SLUICE_ERR_CRYPTO : SLUICE_ERR_NOMEM;
}

static SSL_CTX *make_ctx(const sluice_coord_dtls_config *cfg, const char **what)
{
    static const unsigned char sid_ctx[] = "sluice-coord-dtls";
    SSL_CTX *ctx = SSL_CTX_new(DTLS_method());

    *what = "SSL_CTX_new";
    if (!ctx)
        return NULL;
    *what = "DTLS 1.2";
    if (!SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION))
        goto fail;
    *what = "cipher suites";
    if (!SSL_CTX_set_cipher_list(ctx, CIPHERS))
        goto fail;
    /* The MTU is ours to set (there is no socket to ask), no
     * renegotiation, no resumption: each channel is one fresh handshake. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    *what = "session id context";
    if (!SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1))
        goto fail;
    /* Both sides demand the peer's certificate; verify_cb pins it. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
    *what = cfg->cert_file;
    if (!SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file))
        goto fail;
    *what = cfg->key_file;
    if (!SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM))
        goto fail;
    *what = "certificate and key do not match";
    if (!SSL_CTX_check_private_key(ctx))
        goto fail;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static int setup(sluice_coord_dtls *d, const sluice_coord_dtls_config *cfg)
{
    const char *what = "";
    SSL_CTX *ctx;

    if (!CRYPTO_THREAD_run_once(&dgram_once, dgram_method_init) || !dgram_method)
        return create_failed("BIO method");
    ctx = make_ctx(cfg, &what);
    if (!ctx)
        return create_failed(what);
    d->ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL object keeps its own reference */
    if (!d->ssl)
        return create_failed("SSL_new");
    d->rbio = BIO_new(dgram_method);
    d->wbio = BIO_new(BIO_s_mem());
    if (!d->rbio || !d->wbio) {
        BIO_free(d->rbio);
        BIO_free(d->wbio);
        d->rbio = d->wbio = NULL;
        return create_failed("BIO_new");
    }
    BIO_set_data(d->rbio, d);
    BIO_set_mem_eof_return(d->wbio, -1);
    SSL_set_bio(d->ssl, d->rbio, d->wbio);
    SSL_set_app_data(d->ssl, d);
    SSL_set_info_callback(d->ssl, info_cb);
    DTLS_set_timer_cb(d->ssl, timer_cb);
    /* The whole UDP payload is ours: no IP/UDP overhead to subtract. */
    if (!SSL_set_mtu(d->ssl, (long)cfg->max_datagram) ||
        !DTLS_set_link_mtu(d->ssl, (long)cfg->max_datagram))
        return create_failed("MTU");
    if (cfg->client)
        SSL_set_connect_state(d->ssl);
    else
        SSL_set_accept_state(d->ssl);
    return 0;
}

sluice_coord_dtls *sluice_coord_dtls_new(const sluice_coord_dtls_config *cfg, int *err)
{
    sluice_coord_dtls *d;
    int dummy, r;

    if (!err)
        err = &dummy;
    if (!config_valid(cfg)) {
        sluice_log(SLUICE_LOG_ERROR, "dtls", "invalid direct channel configuration");
        *err = SLUICE_ERR_INVALID;
        return NULL;
    }
    d = sluice_xcalloc(&cfg->alloc, 1, sizeof *d);
    if (!d) {
        *err = SLUICE_ERR_NOMEM;
        return NULL;
    }
    d->alloc = cfg->alloc;
    d->client = cfg->client;
    d->peer_alert = -1;
    memcpy(d->peer_fp, cfg->peer_fingerprint, sizeof d->peer_fp);
    d->max_datagram = cfg->max_datagram;
    d->max_payload = cfg->max_datagram - SLUICE_COORD_DTLS_OVERHEAD;
    d->send_queue_bytes = cfg->send_queue_bytes;
    d->retransmit_first_us = d->retransmit_us = (uint32_t)cfg->retransmit_us;
    d->handshake_timeout_us = cfg->handshake_timeout_us;
    stop_timers(d);
    d->ring_cap = cfg->recv_queue;
    d->ring = sluice_xcalloc(&d->alloc, d->ring_cap, d->max_payload);
    d->ring_len = sluice_xcalloc(&d->alloc, d->ring_cap, sizeof *d->ring_len);
    d->scratch = sluice_xcalloc(&d->alloc, 1, d->max_payload + 1);
    if (!d->ring || !d->ring_len || !d->scratch) {
        sluice_coord_dtls_free(d);
        *err = SLUICE_ERR_NOMEM;
        return NULL;
    }
    ERR_clear_error();
    r = setup(d, cfg);
    ERR_clear_error();
    if (r < 0) {
        sluice_coord_dtls_free(d);
        *err = r;
        return NULL;
    }
    *err = 0;
    return d;
}

void sluice_coord_dtls_free(sluice_coord_dtls *d)
{
    if (!d)
        return;
    SSL_free(d->ssl); /* and both BIOs */
    if (d->ring) {
        OPENSSL_cleanse(d->ring, d->ring_cap * d->max_payload);
        sluice_xfree(&d->alloc, d->ring);
    }
    sluice_xfree(&d->alloc, d->ring_len);
    if (d->scratch) {
        OPENSSL_cleanse(d->scratch, d->max_payload + 1);
        sluice_xfree(&d->alloc, d->scratch);
    }
    sluice_xfree(&d->alloc, d);
}

/* ------------------------------------------------------------------------ */
/* Driving OpenSSL */

static void begin(sluice_coord_dtls *d, uint64_t now_us)
{
    d->started = true;
    d->started_at = now_us;
    d->handshake_deadline =
        now_us + d->handshake_timeout_us < now_us ? SLUICE_NEVER : now_us + d->handshake_timeout_us;
}

/* A message arrived: into the ring, or counted as dropped. */
static void deliver(sluice_coord_dtls *d, size_t n)
{
    size_t slot;

    if (n > d->max_payload || d->ring_count == d->ring_cap) {
        d->stats.messages_dropped++;
        return;
    }
    slot = (d->ring_head + d->ring_count) % d->ring_cap;
    memcpy(d->ring + slot * d->max_payload, d->scratch, n);
    d->ring_len[slot] = (uint32_t)n;
    d->ring_count++;
    d->stats.messages_in++;
}

static int handshake_done(sluice_coord_dtls *d)
{
    const X509 *cert = SSL_get0_peer_certificate(d->ssl);
    uint8_t fp[32];
    unsigned int n = 0;

    /* verify_cb has pinned the leaf; checked again here so that nothing
     * but the pinned certificate can ever be established. */
    if (!cert || X509_digest(cert, EVP_sha256(), fp, &n) != 1 || n != sizeof fp)
        return fail(d, SLUICE_ERR_AUTH, "the peer's certificate cannot be read");
    if (CRYPTO_memcmp(fp, d->peer_fp, sizeof fp) != 0) {
        d->fp_mismatch = true;
        memcpy(d->seen_fp, fp, sizeof fp);
        return fail(d, 0, NULL);
    }
    d->established = true;
    d->handshake_deadline = SLUICE_NEVER;
    d->stats.handshake_us = d->now_us - d->started_at;
    return 0;
}

/* Advance the handshake, then read every message the input carried. */
static int drive(sluice_coord_dtls *d)
{
    size_t n;
    int r;

    if (d->err)
        return d->err;
    if (!d->established) {
        ERR_clear_error();
        r = SSL_do_handshake(d->ssl);
        if (r != 1) {
            int e = SSL_get_error(d->ssl, r);
            return retryable(e) ? 0 : fail(d, 0, NULL);
        }
        if (handshake_done(d) < 0)
            return d->err;
    }
    for (;;) {
        ERR_clear_error();
        if (SSL_read_ex(d->ssl, d->scratch, d->max_payload + 1, &n)) {
            if (n > d->max_payload) {
                /* Larger than any message we accept: drop the rest of the
                 * record too. */
                while (SSL_pending(d->ssl) > 0 &&
                       SSL_read_ex(d->ssl, d->scratch, d->max_payload + 1, &n))
                    ;
                n = d->max_payload + 1;
            }
            deliver(d, n);
            continue;
        }
        r = SSL_get_error(d->ssl, 0);
        if (retryable(r))
            break;
        if (r == SSL_ERROR_ZERO_RETURN) {
            d->peer_closed = true;
            stop_timers(d);
            break;
        }
        return fail(d, 0, NULL);
    }
    ERR_clear_error();
    return 0;
}

/* RFC 6347 §4.1: a datagram is whole records. Returns 0 or why not. */
static int check_records(const uint8_t *p, size_t len)
{
    size_t off = 0;

    if (len == 0)
        return SLUICE_ERR_TRUNCATED;
    while (off < len) {
        size_t rl;
        /* change_cipher_spec, alert, handshake, application_data: anything
         * else OpenSSL would treat as fatal even unauthenticated. */
        if (p[off] < 20 || p[off] > 23)
            return SLUICE_ERR_MALFORMED;
        if (len - off < RECORD_HEADER)
            return SLUICE_ERR_TRUNCATED;
        /* DTLS 1.0 (0xFEFF, a ClientHello's record) or 1.2 (0xFEFD). */
        if (p[off + 1] != 0xfe || (p[off + 2] != 0xff && p[off + 2] != 0xfd))
            return SLUICE_ERR_MALFORMED;
        rl = rd16(p + off + 11);
        if (rl > MAX_RECORD_FRAGMENT)
            return SLUICE_ERR_MALFORMED;
        if (len - off - RECORD_HEADER < rl)
            return SLUICE_ERR_TRUNCATED;
        off += RECORD_HEADER + rl;
    }
    return 0;
}

int sluice_coord_dtls_start(sluice_coord_dtls *d, uint64_t now_us)
{
    int r;

    if (!d)
        return SLUICE_ERR_INVALID;
    if (d->err)
        return d->err;
    if (d->started || d->closed)
        return SLUICE_ERR_STATE;
    d->now_us = now_us;
    begin(d, now_us);
    if (!d->client)
        return 0;
    r = drive(d); /* the ClientHello, and the timer armed for it */
    ERR_clear_error();
    return r;
}

int sluice_coord_dtls_handle_datagram(sluice_coord_dtls *d, uint64_t now_us, const uint8_t *data,
                                      size_t len)
{
    int r;

    if (!d || (!data && len))
        return SLUICE_ERR_INVALID;
    if (d->err)
        return d->err;
    if (d->closed || d->peer_closed)
        return SLUICE_ERR_STATE;
    r = check_records(data, len);
    if (r < 0) {
        d->stats.datagrams_rejected++;
        return r;
    }
    d->stats.datagrams_in++;
    d->now_us = now_us;
    if (!d->started)
        begin(d, now_us);
    d->in = data;
    d->in_len = len;
    r = drive(d);
    d->in = NULL; /* whatever OpenSSL did not take is gone with the call */
    d->in_len = 0;
    ERR_clear_error();
    return r;
}

int sluice_coord_dtls_poll_transmit(sluice_coord_dtls *d, uint8_t *buf, size_t cap)
{
    char *p = NULL;
    long pending;
    size_t off = 0;

    if (!d || (!buf && cap))
        return SLUICE_ERR_INVALID;
    pending = BIO_get_mem_data(d->wbio, &p);
    if (pending <= 0 || !p)
        return 0;
    /* Whole records, as many as fit in one datagram (RFC 6347 §4.1.1:
     * several records may share a datagram, none may span two). OpenSSL
     * keeps each record within the MTU; one that is not still goes out,
     * alone. */
    while ((size_t)pending - off >= RECORD_HEADER) {
        size_t sz = RECORD_HEADER + rd16((const uint8_t *)p + off + 11);
        if (sz > (size_t)pending - off)
            break; /* not a whole record: OpenSSL writes whole ones */
        if (off && off + sz > d->max_datagram)
            break;
        off += sz;
        if (off >= d->max_datagram)
            break;
    }
    if (off == 0)
        off = (size_t)pending; /* never seen: hand it out rather than wedge */
    if (off > cap)
        return SLUICE_ERR_NOSPACE;
    if (off > INT_MAX || BIO_read(d->wbio, buf, (int)off) != (int)off) {
        ERR_clear_error();
        return 0;
    }
    d->stats.datagrams_out++;
    return (int)off;
}

int sluice_coord_dtls_send(sluice_coord_dtls *d, const uint8_t *data, size_t len)
{
    size_t n;
    int r;

    if (!d || (!data && len))
        return SLUICE_ERR_INVALID;
    if (d->err)
        return d->err;
    if (len == 0 || len > d->max_payload)
        return SLUICE_ERR_INVALID;
    if (!d->established || d->closed || d->peer_closed)
        return SLUICE_ERR_STATE;
    if (BIO_ctrl_pending(d->wbio) + len + SLUICE_COORD_DTLS_OVERHEAD > d->send_queue_bytes)
        return SLUICE_ERR_FULL;
    ERR_clear_error();
    if (!SSL_write_ex(d->ssl, data, len, &n)) {
        r = SSL_get_error(d->ssl, 0);
        /* A memory BIO never asks to retry a write; if OpenSSL does, the
         * datagram is simply not sent (datagram semantics). */
        if (retryable(r)) {
            ERR_clear_error();
            return SLUICE_ERR_FULL;
        }
        return fail(d, 0, NULL);
    }
    d->stats.messages_out++;
    return 0;
}

int sluice_coord_dtls_recv(sluice_coord_dtls *d, uint8_t *buf, size_t cap)
{
    size_t n;

    if (!d || (!buf && cap))
        return SLUICE_ERR_INVALID;
    if (!d->ring_count)
        return 0;
    n = d->ring_len[d->ring_head];
    if (n > cap)
        return SLUICE_ERR_NOSPACE;
    memcpy(buf, d->ring + d->ring_head * d->max_payload, n);
    d->ring_head = (d->ring_head + 1) % d->ring_cap;
    d->ring_count--;
    return (int)n;
}

void sluice_coord_dtls_handle_timeout(sluice_coord_dtls *d, uint64_t now_us)
{
    struct timeval tv;
    int r;

    if (!d || d->err || d->closed)
        return;
    d->now_us = now_us;
    if (!d->established && now_us >= d->handshake_deadline) {
        char text[96];
        snprintf(text, sizeof text, "DTLS handshake not done after %" PRIu64 " ms",
                 d->handshake_timeout_us / 1000);
        fail(d, SLUICE_ERR_TIMEOUT, text);
        return;
    }
    if (now_us < d->retransmit_at)
        return;
    ERR_clear_error();
    r = DTLSv1_handle_timeout(d->ssl);
    if (r > 0) {
        /* Resent (counted by timer_cb); the timer was re-armed through the
         * BIO, which set retransmit_at. */
    } else if (r == 0) {
        /* Due on our clock, not yet on the one OpenSSL reads (the
         * documented exception): come back when it is due there. */
        if (DTLSv1_get_timeout(d->ssl, &tv) == 1) {
            uint64_t left = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
            d->retransmit_at = now_us + (left ? left : 1000);
        } else {
            d->retransmit_at = SLUICE_NEVER;
        }
    } else {
        fail(d, 0, NULL);
    }
    ERR_clear_error();
}

uint64_t sluice_coord_dtls_next_timeout(const sluice_coord_dtls *d)
{
    uint64_t t;

    if (!d || d->err || d->closed || d->peer_closed)
        return SLUICE_NEVER;
    t = d->retransmit_at;
    if (!d->established && d->handshake_deadline < t)
        t = d->handshake_deadline;
    return t;
}

bool sluice_coord_dtls_established(const sluice_coord_dtls *d)
{
    return d && d->established && !d->err && !d->closed;
}

bool sluice_coord_dtls_peer_closed(const sluice_coord_dtls *d)
{
    return d && d->peer_closed;
}

int sluice_coord_dtls_error(const sluice_coord_dtls *d)
{
    return d ? d->err : SLUICE_ERR_INVALID;
}

const char *sluice_coord_dtls_error_text(const sluice_coord_dtls *d)
{
    return d ? d->err_text : "";
}

size_t sluice_coord_dtls_max_payload(const sluice_coord_dtls *d)
{
    return d ? d->max_payload : 0;
}

void sluice_coord_dtls_close(sluice_coord_dtls *d)
{
    if (!d || d->closed)
        return;
    d->closed = true;
    stop_timers(d);
    if (d->err || !d->established || d->peer_closed)
        return;
    ERR_clear_error();
    /* DTLS sends close_notify and returns 0 (it does not wait for the
     * peer's). */
    (void)SSL_shutdown(d->ssl);
    ERR_clear_error();
}

void sluice_coord_dtls_get_stats(const sluice_coord_dtls *d, sluice_coord_dtls_stats *st)
{
    if (!st)
        return;
    if (!d) {
        memset(st, 0, sizeof *st);
        return;
    }
    *st = d->stats;
}
