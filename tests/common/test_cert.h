/* SPDX-License-Identifier: MIT */
/* Test certificates made at run time with OpenSSL: a self-signed P-256
 * certificate for localhost and 127.0.0.1, written as PEM files. */
#ifndef SLUICE_TEST_CERT_H
#define SLUICE_TEST_CERT_H

#include <stdbool.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static inline bool add_ext(X509 *x, int nid, const char *value)
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

static inline bool write_pem(const char *path, X509 *x, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    bool ok;

    if (!f)
        return false;
    ok = x ? PEM_write_X509(f, x) == 1 : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    return fclose(f) == 0 && ok;
}

/* A self-signed P-256 certificate for localhost and 127.0.0.1. fp, when not
 * NULL, receives the SHA-256 of its DER form. */
static inline bool make_cert(const char *cert_file, const char *key_file, long serial, uint8_t fp[32])
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    unsigned int n = 0;
    bool ok = key && x;

    ok = ok && X509_set_version(x, X509_VERSION_3) == 1;
    ok = ok && ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1;
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL;
    ok = ok && X509_gmtime_adj(X509_getm_notAfter(x), 86400) != NULL;
    ok = ok && X509_set_pubkey(x, key) == 1;
    if (ok) {
        name = X509_get_subject_name(x);
        ok = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)"localhost", -1, -1, 0) == 1 &&
             X509_set_issuer_name(x, name) == 1;
    }
    ok = ok && add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
    ok = ok && write_pem(cert_file, x, NULL) && write_pem(key_file, NULL, key);
    if (ok && fp)
        ok = X509_digest(x, EVP_sha256(), fp, &n) == 1 && n == 32;
    X509_free(x);
    EVP_PKEY_free(key);
    return ok;
}

#endif
