/* SPDX-License-Identifier: MIT */
/* Coordinator helpers that are not state machines: client identities (an
 * EC P-256 key and a self-signed certificate on disk), fingerprints, TURN
 * REST credentials, names of codes. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/internal.h"
#include "common/tls.h"
#include "coord/frame.h"

const char *sluice_coord_code_name(int code)
{
    switch (code) {
    case SLUICE_COORD_E_NONE: return "none";
    case SLUICE_COORD_E_PROTOCOL: return "protocol error";
    case SLUICE_COORD_E_VERSION: return "unsupported version";
    case SLUICE_COORD_E_NAME_TAKEN: return "name taken";
    case SLUICE_COORD_E_BAD_NAME: return "bad name";
    case SLUICE_COORD_E_CERT_REQUIRED: return "certificate required";
    case SLUICE_COORD_E_CERT_INVALID: return "certificate invalid";
    case SLUICE_COORD_E_CERT_EXPIRED: return "certificate expired";
    case SLUICE_COORD_E_CERT_NAME: return "certificate name mismatch";
    case SLUICE_COORD_E_SERVER_FULL: return "server full";
    case SLUICE_COORD_E_TIMEOUT: return "timeout";
    case SLUICE_COORD_E_FLOW_CONTROL: return "flow control violation";
    case SLUICE_COORD_E_TOO_BIG: return "message too big";
    case SLUICE_COORD_E_LIMIT: return "limit reached";
    case SLUICE_COORD_E_NO_PEER: return "no such peer";
    case SLUICE_COORD_E_REFUSED: return "refused";
    case SLUICE_COORD_E_PEER_GONE: return "peer gone";
    case SLUICE_COORD_E_SHUTDOWN: return "shutting down";
    case SLUICE_COORD_E_INTERNAL: return "internal error";
    case SLUICE_COORD_E_SLOW: return "client too slow";
    case SLUICE_COORD_E_CANCELLED: return "cancelled";
    case SLUICE_COORD_E_KICKED: return "disconnected by the operator";
    case SLUICE_COORD_E_TLS: return "TLS failure";
    case SLUICE_COORD_E_PIN_MISMATCH: return "pinned certificate mismatch";
    case SLUICE_COORD_E_CONNECTION_LOST: return "connection lost";
    }
    return "unknown code";
}

bool sluice_coord_name_valid(const char *name)
{
    return name && coord_name_ok(name, strlen(name));
}

int sluice_coord_fingerprint_format(const uint8_t fp[32], char *buf, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";

    if (!fp || !buf)
        return SLUICE_ERR_INVALID;
    if (cap < 96)
        return SLUICE_ERR_NOSPACE;
    for (int i = 0; i < 32; i++) {
        buf[i * 3] = hex[fp[i] >> 4];
        buf[i * 3 + 1] = hex[fp[i] & 15];
        buf[i * 3 + 2] = i == 31 ? 0 : ':';
    }
    return 95;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sluice_coord_fingerprint_parse(const char *text, uint8_t fp[32])
{
    size_t len;
    bool colons;

    if (!text || !fp)
        return SLUICE_ERR_MALFORMED;
    len = strlen(text);
    if (len != 64 && len != 95)
        return SLUICE_ERR_MALFORMED;
    colons = len == 95;
    for (int i = 0; i < 32; i++) {
        const char *p = text + (colons ? i * 3 : i * 2);
        int hi = hexval(p[0]), lo = hexval(p[1]);
        if (hi < 0 || lo < 0 || (colons && i < 31 && p[2] != ':'))
            return SLUICE_ERR_MALFORMED;
        fp[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int sluice_coord_turn_rest_credentials(const char *secret, const char *name, uint64_t unix_time_s,
                                       uint32_t ttl_s, char *user, size_t user_cap, char *pass,
                                       size_t pass_cap)
{
    sluice_stun_key key;
    uint8_t mac[20];
    int n, r;

    if (!secret || !secret[0] || !sluice_coord_name_valid(name) || !user || !pass)
        return SLUICE_ERR_INVALID;
    /* TURN REST (draft-uberti-behave-turn-rest-00 §2.2): the username is
     * the expiry time, a colon and the user; the password its HMAC. */
    n = snprintf(user, user_cap, "%" PRIu64 ":%s", unix_time_s + ttl_s, name);
    if (n < 0 || (size_t)n >= user_cap)
        return SLUICE_ERR_NOSPACE;
    if (pass_cap < 29)
        return SLUICE_ERR_NOSPACE;
    r = sluice_stun_key_raw(&key, (const uint8_t *)secret, strlen(secret));
    if (r == 0)
        r = sluice_hmac_sha1(&key, (const uint8_t *)user, (size_t)n, NULL, 0, mac);
    sluice_stun_key_clear(&key);
    if (r < 0)
        return r;
    EVP_EncodeBlock((unsigned char *)pass, mac, sizeof mac); /* 28 characters + NUL */
    OPENSSL_cleanse(mac, sizeof mac);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Identities */

static bool add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    bool ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return false;
    ok = X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

static X509 *make_self_signed(const char *name, EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *subject;
    uint8_t serial[16];
    BIGNUM *bn = NULL;
    char san[8 + SLUICE_COORD_NAME_MAX];
    bool ok = x != NULL;

    /* A positive random serial (RFC 5280 §4.1.2.2: at most 20 octets). */
    ok = ok && RAND_bytes(serial, sizeof serial) == 1;
    serial[0] &= 0x7F;
    ok = ok && (bn = BN_bin2bn(serial, sizeof serial, NULL)) != NULL;
    ok = ok && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    ok = ok && X509_set_version(x, X509_VERSION_3) == 1;
    /* Fixed times, so that nothing reads a clock; 99991231235959Z means
     * "no well-defined expiration date" (RFC 5280 §4.1.2.5). */
    ok = ok && ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "20000101000000Z") == 1;
    ok = ok && ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "99991231235959Z") == 1;
    ok = ok && X509_set_pubkey(x, key) == 1;
    if (ok) {
        subject = X509_get_subject_name(x);
        ok = X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)name,
                                        -1, -1, 0) == 1 &&
             X509_set_issuer_name(x, subject) == 1;
    }
    /* The name's syntax ([A-Za-z0-9._-]) keeps it inert in this string. */
    snprintf(san, sizeof san, "DNS:%s", name);
    ok = ok && add_ext(x, NID_subject_alt_name, san);
    ok = ok && add_ext(x, NID_basic_constraints, "critical,CA:FALSE");
    ok = ok && add_ext(x, NID_key_usage, "critical,digitalSignature");
    /* Both: the same identity serves DTLS between peers in either role. */
    ok = ok && add_ext(x, NID_ext_key_usage, "clientAuth,serverAuth");
    ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Write through a temporary file in the same directory, then rename, so a
 * reader never sees half a file. mode applies to the final file. */
static int write_pem(const char *path, mode_t mode, X509 *cert, EVP_PKEY *key)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 8);
    FILE *f;
    int fd, r = SLUICE_ERR_STATE;

    if (!tmp)
        return SLUICE_ERR_NOMEM;
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".XXXXXX", 8);
    fd = mkstemp(tmp); /* created with mode 0600 */
    if (fd < 0) {
        free(tmp);
        return SLUICE_ERR_STATE;
    }
    if (fchmod(fd, mode) != 0 || !(f = fdopen(fd, "w"))) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return SLUICE_ERR_STATE;
    }
    bool ok = cert ? PEM_write_X509(f, cert) == 1
                   : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    if (fclose(f) == 0 && ok && rename(tmp, path) == 0)
        r = 0;
    else
        unlink(tmp);
    free(tmp);
    return r;
}

static int digest(const X509 *cert, uint8_t fp[32])
{
    unsigned int n = 0;
    if (!fp)
        return 0;
    return X509_digest(cert, EVP_sha256(), fp, &n) == 1 && n == 32 ? 0 : SLUICE_ERR_CRYPTO;
}

int sluice_coord_generate_identity(const char *name, const char *cert_path, const char *key_path,
                                   uint8_t fp[32])
{
    EVP_PKEY *key;
    X509 *cert = NULL;
    int r;

    if (!sluice_coord_name_valid(name) || !cert_path || !key_path || !cert_path[0] ||
        !key_path[0] || strcmp(cert_path, key_path) == 0)
        return SLUICE_ERR_INVALID;
    ERR_clear_error();
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key)
        cert = make_self_signed(name, key);
    if (!cert) {
        sluice_log(SLUICE_LOG_ERROR, "coord", "cannot create an identity for %s", name);
        EVP_PKEY_free(key);
        ERR_clear_error();
        return SLUICE_ERR_CRYPTO;
    }
    /* Key first: a certificate must never be on disk without its key. */
    r = write_pem(key_path, 0600, NULL, key);
    if (r == 0)
        r = write_pem(cert_path, 0644, cert, NULL);
    if (r == 0)
        r = digest(cert, fp);
    if (r < 0)
        sluice_log(SLUICE_LOG_ERROR, "coord", "cannot write identity %s / %s: %s", cert_path,
                   key_path, strerror(errno));
    X509_free(cert);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return r;
}

int sluice_coord_ensure_identity(const char *name, const char *cert_path, const char *key_path,
                                 uint8_t fp[32])
{
    FILE *cf, *kf;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    bool keep;

    if (!sluice_coord_name_valid(name) || !cert_path || !key_path)
        return SLUICE_ERR_INVALID;
    cf = fopen(cert_path, "r");
    kf = fopen(key_path, "r");
    if (cf)
        cert = PEM_read_X509(cf, NULL, NULL, NULL);
    if (kf)
        key = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
    if (cf)
        fclose(cf);
    if (kf)
        fclose(kf);
    keep = cert && key && X509_check_private_key(cert, key) == 1 &&
           sluice_tls_cert_has_name(cert, name) && digest(cert, fp) == 0;
    X509_free(cert);
    EVP_PKEY_free(key);
    ERR_clear_error();
    if (keep)
        return 0;
    int r = sluice_coord_generate_identity(name, cert_path, key_path, fp);
    return r < 0 ? r : 1;
}
