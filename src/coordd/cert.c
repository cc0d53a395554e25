/* SPDX-License-Identifier: MIT */
/* sluice-coord's own certificate when none is configured: a self-signed EC
 * P-256 certificate for the --server-name names, generated on first use
 * and kept in the state directory so clients can pin its fingerprint. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "coordd/coordd.h"

static void say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x;
    if (!f)
        return NULL;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k;
    if (!f)
        return NULL;
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

static bool is_ip(const char *name)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);
    ASN1_OCTET_STRING_free(ip);
    return ip != NULL;
}

static int digest(X509 *x, uint8_t fp[32])
{
    unsigned len = 0;
    return X509_digest(x, EVP_sha256(), fp, &len) == 1 && len == 32 ? 0 : -1;
}

int coordd_cert_fingerprint(const char *path, uint8_t fp[32])
{
    X509 *x = read_cert(path);
    int rc = x ? digest(x, fp) : -1;
    X509_free(x);
    return rc;
}

/* mkdir -p with mode 0700 for the directories it creates. */
static int make_dirs(const char *dir, char *why, size_t cap)
{
    char path[4096];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof path) {
        say(why, cap, "bad state directory '%s'", dir);
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
            say(why, cap, "cannot create %s: %s", path, strerror(errno));
            return -1;
        }
        path[i] = c;
    }
    return 0;
}

/* Write PEM through a temporary file in the same directory, then rename,
 * so a crash never leaves half a key behind. */
static int write_pem(const char *path, X509 *x, EVP_PKEY *key, mode_t mode, char *why, size_t cap)
{
    char tmp[4200];
    int fd;
    FILE *f;
    bool ok;

    snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    fd = mkstemp(tmp); /* 0600 */
    if (fd < 0) {
        say(why, cap, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    if (fchmod(fd, mode) < 0 || !(f = fdopen(fd, "w"))) {
        say(why, cap, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    ok = x ? PEM_write_X509(f, x) == 1
           : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        say(why, cap, "cannot write %s: %s", path, strerror(errno ? errno : EIO));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static bool add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return false;
    bool ok = X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* Valid from 2000-01-01 with no well-defined expiry (RFC 5280 §4.1.2.5),
 * like the client identities: a pinned certificate is its fingerprint, and
 * a coordinator whose clock is wrong still starts. */
static X509 *make_cert(EVP_PKEY *key, char *const *names, size_t n_names)
{
    X509 *x = X509_new();
    uint8_t serial[16];
    char san[4096];
    size_t off = 0;
    BIGNUM *bn = NULL;
    bool ok = x != NULL && RAND_bytes(serial, sizeof serial) == 1;

    serial[0] &= 0x7F; /* positive, RFC 5280 §4.1.2.2 */
    serial[0] |= 0x40;
    ok = ok && X509_set_version(x, X509_VERSION_3) == 1;
    ok = ok && (bn = BN_bin2bn(serial, sizeof serial, NULL)) != NULL &&
         BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    ok = ok && ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "20000101000000Z") == 1 &&
         ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "99991231235959Z") == 1;
    ok = ok && X509_set_pubkey(x, key) == 1;
    ok = ok && X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                          (const unsigned char *)names[0],
                                          strlen(names[0]) > 64 ? 64 : -1, -1, 0) == 1;
    ok = ok && X509_set_issuer_name(x, X509_get_subject_name(x)) == 1;
    for (size_t i = 0; ok && i < n_names; i++) {
        int n = snprintf(san + off, sizeof san - off, "%s%s:%s", i ? "," : "",
                         is_ip(names[i]) ? "IP" : "DNS", names[i]);
        ok = n > 0 && (size_t)n < sizeof san - off;
        off += ok ? (size_t)n : 0;
    }
    ok = ok && add_ext(x, NID_subject_alt_name, san);
    ok = ok && add_ext(x, NID_basic_constraints, "critical,CA:FALSE");
    ok = ok && add_ext(x, NID_key_usage, "critical,digitalSignature");
    ok = ok && add_ext(x, NID_ext_key_usage, "serverAuth");
    ok = ok && add_ext(x, NID_subject_key_identifier, "hash");
    ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
    BN_free(bn);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Does the kept certificate still serve: key matches, every name covered? */
static bool usable(X509 *x, EVP_PKEY *key, char *const *names, size_t n_names)
{
    if (!x || !key || X509_check_private_key(x, key) != 1)
        return false;
    for (size_t i = 0; i < n_names; i++) {
        int r = is_ip(names[i])
                    ? X509_check_ip_asc(x, names[i], 0)
                    : X509_check_host(x, names[i], 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL);
        if (r != 1)
            return false;
    }
    return true;
}

int coordd_cert_ensure(const char *dir, char *const *names, size_t n_names, char *cert_path,
                       char *key_path, size_t path_cap, uint8_t fp[32], char *why, size_t why_cap)
{
    X509 *x;
    EVP_PKEY *key;
    int rc = -1;

    if (snprintf(cert_path, path_cap, "%s/cert.pem", dir) >= (int)path_cap ||
        snprintf(key_path, path_cap, "%s/key.pem", dir) >= (int)path_cap) {
        say(why, why_cap, "state directory path too long");
        return -1;
    }
    x = read_cert(cert_path);
    key = read_key(key_path);
    bool existed = x || key || access(cert_path, F_OK) == 0;
    if (usable(x, key, names, n_names)) {
        rc = digest(x, fp);
        if (rc < 0)
            say(why, why_cap, "cannot hash %s", cert_path);
        goto out;
    }
    X509_free(x);
    EVP_PKEY_free(key);
    x = NULL;
    if (make_dirs(dir, why, why_cap) < 0)
        return -1;
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    x = key ? make_cert(key, names, n_names) : NULL;
    if (!x) {
        say(why, why_cap, "OpenSSL could not make a certificate");
        goto out;
    }
    /* The key first: a crash in between leaves a mismatch, which the next
     * start replaces. */
    if (write_pem(key_path, NULL, key, 0600, why, why_cap) < 0 ||
        write_pem(cert_path, x, NULL, 0644, why, why_cap) < 0)
        goto out;
    if (digest(x, fp) < 0) {
        say(why, why_cap, "cannot hash the new certificate");
        goto out;
    }
    rc = existed ? 2 : 1;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}
