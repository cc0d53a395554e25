/* SPDX-License-Identifier: MIT */
/* HMAC-SHA1 / HMAC-SHA256 (RFC 2104) from precomputed inner and outer
 * states, so a credential is keyed once and every message after that costs
 * only its own compression rounds. Uses OpenSSL's low-level digest API,
 * deprecated in 3.0 but kept for exactly this use: the EVP interface
 * allocates per context copy and costs several times more per message. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <assert.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <openssl/sha.h>

#include "common/internal.h"

#define KEY_MAGIC 0x534c4b59u /* "SLKY" */

struct key_impl {
    SHA_CTX sha1_inner;
    SHA_CTX sha1_outer;
    SHA256_CTX sha256_inner;
    SHA256_CTX sha256_outer;
    uint32_t magic;
};

static_assert(sizeof(struct key_impl) <= sizeof(((sluice_stun_key *)0)->opaque),
              "sluice_stun_key too small");
static_assert(_Alignof(struct key_impl) <= 16, "sluice_stun_key alignment");

static struct key_impl *impl(sluice_stun_key *k)
{
    return (struct key_impl *)(void *)k->opaque;
}
static const struct key_impl *cimpl(const sluice_stun_key *k)
{
    return (const struct key_impl *)(const void *)k->opaque;
}

/* The 64-byte HMAC key block for a hash with a 64-byte block (SHA-1 and
 * SHA-256): the key zero-padded, or its digest when it is longer than the
 * block (RFC 2104 §2), XOR-ed with pad. */
static void key_block(uint8_t block[64], const uint8_t *k, size_t len, bool sha256, uint8_t pad)
{
    memset(block, 0, 64);
    if (len > 64) {
        if (sha256)
            SHA256(k, len, block);
        else
            SHA1(k, len, block);
    } else if (len) {
        memcpy(block, k, len);
    }
    for (int i = 0; i < 64; i++)
        block[i] ^= pad;
}

int sluice_stun_key_raw(sluice_stun_key *key, const uint8_t *k, size_t len)
{
    uint8_t block[64];
    struct key_impl *ki;
    int ok;

    if (!key || (!k && len))
        return SLUICE_ERR_INVALID;
    memset(key, 0, sizeof *key);
    ki = impl(key);

    key_block(block, k, len, false, 0x36);
    ok = SHA1_Init(&ki->sha1_inner) && SHA1_Update(&ki->sha1_inner, block, 64);
    key_block(block, k, len, false, 0x5c);
    ok = ok && SHA1_Init(&ki->sha1_outer) && SHA1_Update(&ki->sha1_outer, block, 64);
    key_block(block, k, len, true, 0x36);
    ok = ok && SHA256_Init(&ki->sha256_inner) && SHA256_Update(&ki->sha256_inner, block, 64);
    key_block(block, k, len, true, 0x5c);
    ok = ok && SHA256_Init(&ki->sha256_outer) && SHA256_Update(&ki->sha256_outer, block, 64);
    OPENSSL_cleanse(block, sizeof block);
    if (!ok) {
        OPENSSL_cleanse(key, sizeof *key);
        return SLUICE_ERR_CRYPTO;
    }
    ki->magic = KEY_MAGIC;
    return 0;
}

void sluice_stun_key_clear(sluice_stun_key *key)
{
    if (key)
        OPENSSL_cleanse(key, sizeof *key);
}

int sluice_hmac_sha1(const sluice_stun_key *key, const uint8_t *hdr, size_t hlen,
                     const uint8_t *body, size_t blen, uint8_t out[20])
{
    const struct key_impl *ki = cimpl(key);
    SHA_CTX c;
    uint8_t inner[20];

    if (ki->magic != KEY_MAGIC)
        return SLUICE_ERR_INVALID;
    c = ki->sha1_inner;
    SHA1_Update(&c, hdr, hlen);
    if (blen)
        SHA1_Update(&c, body, blen);
    SHA1_Final(inner, &c);
    c = ki->sha1_outer;
    SHA1_Update(&c, inner, sizeof inner);
    SHA1_Final(out, &c);
    return 0;
}

int sluice_hmac_sha256(const sluice_stun_key *key, const uint8_t *hdr, size_t hlen,
                       const uint8_t *body, size_t blen, uint8_t out[32])
{
    const struct key_impl *ki = cimpl(key);
    SHA256_CTX c;
    uint8_t inner[32];

    if (ki->magic != KEY_MAGIC)
        return SLUICE_ERR_INVALID;
    c = ki->sha256_inner;
    SHA256_Update(&c, hdr, hlen);
    if (blen)
        SHA256_Update(&c, body, blen);
    SHA256_Final(inner, &c);
    c = ki->sha256_outer;
    SHA256_Update(&c, inner, sizeof inner);
    SHA256_Final(out, &c);
    return 0;
}

static int digest(const EVP_MD *md, const uint8_t *const *parts, const size_t *lens, size_t n,
                  uint8_t *out)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok;

    if (!c)
        return SLUICE_ERR_NOMEM;
    ok = EVP_DigestInit_ex(c, md, NULL);
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(c, parts[i], lens[i]);
    ok = ok && EVP_DigestFinal_ex(c, out, NULL);
    EVP_MD_CTX_free(c);
    return ok ? 0 : SLUICE_ERR_CRYPTO;
}

int sluice_md5(const uint8_t *const *parts, const size_t *lens, size_t n, uint8_t out[16])
{
    /* MD5 is only ever a key-derivation step of RFC 8489 §9.2.2; it is
     * available in OpenSSL's default provider (not FIPS). */
    return digest(EVP_md5(), parts, lens, n, out);
}

int sluice_sha256(const uint8_t *const *parts, const size_t *lens, size_t n, uint8_t out[32])
{
    return digest(EVP_sha256(), parts, lens, n, out);
}

bool sluice_ct_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    /* Constant time: no early exit, whatever the first difference. */
    uint8_t d = 0;
    for (size_t i = 0; i < len; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}
