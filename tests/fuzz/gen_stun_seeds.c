/* SPDX-License-Identifier: MIT */
/* Writes the STUN seed corpus: the published vectors byte for byte and a
 * few writer-built messages that reach every attribute getter (TURN,
 * ICE, RFC 5780). Its output is committed in tests/fuzz/corpus/stun/;
 * rerun it by hand after codec changes: gen_stun_seeds DIR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/sluice.h"
#include "vectors.h"

#define S(lit) lit, (sizeof(lit) - 1)

static const char *out_dir;
static int failures;

static void write_file(const char *name, const uint8_t *data, size_t len)
{
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        failures++;
    }
}

static sluice_stun_key key;
static const uint8_t txid[12] = {'s', 'l', 'u', 'i', 'c', 'e', '-', 's', 'e', 'e', 'd', 's'};

static void start(sluice_stun_writer *w, uint8_t *buf, size_t cap, uint16_t method,
                  sluice_stun_class cls)
{
    sluice_stun_writer_init(w, buf, cap, sluice_stun_type(method, cls), txid);
}

/* Seal with MESSAGE-INTEGRITY and FINGERPRINT, check it parses, write it. */
static void finish(const char *name, sluice_stun_writer *w, bool integrity)
{
    sluice_stun_msg m;
    int n;
    if (integrity)
        sluice_stun_put_integrity(w, &key);
    sluice_stun_put_fingerprint(w);
    n = sluice_stun_writer_result(w);
    if (n < 0 || sluice_stun_parse(&m, w->buf, (size_t)n) != 0) {
        fprintf(stderr, "%s: writer/parse failed: %d\n", name, n);
        failures++;
        return;
    }
    write_file(name, w->buf, (size_t)n);
}

static sluice_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    uint8_t ip[4] = {a, b, c, d};
    sluice_addr x;
    memset(&x, 0, sizeof x);
    sluice_addr_set_ipv4(&x, ip, port);
    return x;
}

static sluice_addr v6_doc(uint8_t last, uint16_t port)
{
    uint8_t ip[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
    sluice_addr x;
    memset(&x, 0, sizeof x);
    sluice_addr_set_ipv6(&x, ip, port);
    return x;
}

int main(int argc, char **argv)
{
    static uint8_t buf[4096];
    sluice_stun_writer w;
    char nonce[64];
    sluice_addr a4 = v4(192, 0, 2, 1, 32853), b4 = v4(198, 51, 100, 7, 49152);
    sluice_addr a6 = v6_doc(1, 3478), b6 = v6_doc(2, 50000);

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    if (sluice_stun_key_short_term(&key, S(RFC5769_PASSWORD)) != 0)
        return 1;

    /* The published vectors (B.1 both as printed and as corrected). */
    write_file("rfc5769-2.1", rfc5769_2_1, sizeof rfc5769_2_1);
    write_file("rfc5769-2.2", rfc5769_2_2, sizeof rfc5769_2_2);
    write_file("rfc5769-2.3", rfc5769_2_3, sizeof rfc5769_2_3);
    write_file("rfc5769-2.4", rfc5769_2_4, sizeof rfc5769_2_4);
    write_file("rfc8489-b1-published", rfc8489_b1_published, sizeof rfc8489_b1_published);
    write_file("rfc8489-b1-errata6268", rfc8489_b1_errata6268, sizeof rfc8489_b1_errata6268);

    /* RFC 8656 §7.1: Allocate request. */
    sluice_stun_nonce_cookie(
        SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS | SLUICE_STUN_FEATURE_USERNAME_ANONYMITY, nonce);
    memcpy(nonce + SLUICE_STUN_NONCE_COOKIE_LEN, "0123456789abcdef", 17);
    start(&w, buf, sizeof buf, SLUICE_STUN_ALLOCATE, SLUICE_STUN_REQUEST);
    sluice_stun_put_requested_transport(&w, 17);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_LIFETIME, 600);
    sluice_stun_put_empty(&w, SLUICE_STUN_ATTR_DONT_FRAGMENT);
    sluice_stun_put_even_port(&w, true);
    sluice_stun_put_address_family(&w, SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY,
                                   SLUICE_STUN_FAMILY_IPV6);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, S("evtj:h6vY"));
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, S("example.org"));
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, nonce, strlen(nonce));
    sluice_stun_put_password_algorithm(&w, SLUICE_STUN_PWALG_SHA256);
    finish("allocate-request", &w, true);

    /* Allocate success, dual-stack (RFC 8656 §7.3, RFC 8656 §18.11). */
    start(&w, buf, sizeof buf, SLUICE_STUN_ALLOCATE, SLUICE_STUN_SUCCESS);
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS, &b4);
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS, &b6);
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &a4);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_LIFETIME, 600);
    sluice_stun_put_u64(&w, SLUICE_STUN_ATTR_RESERVATION_TOKEN, 0x0102030405060708ull);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, S("sluice seed"));
    finish("allocate-success", &w, true);

    /* 401 with the nonce cookie and PASSWORD-ALGORITHMS (RFC 8489 §9.2.3). */
    {
        static const uint16_t algs[] = {SLUICE_STUN_PWALG_MD5, SLUICE_STUN_PWALG_SHA256};
        start(&w, buf, sizeof buf, SLUICE_STUN_ALLOCATE, SLUICE_STUN_ERROR);
        sluice_stun_put_error_code(&w, SLUICE_STUN_ERR_UNAUTHORIZED, NULL);
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, S("example.org"));
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, nonce, strlen(nonce));
        sluice_stun_put_password_algorithms(&w, algs, 2);
        finish("error-401", &w, false);
    }

    /* 420 with UNKNOWN-ATTRIBUTES (RFC 8489 §14.9). */
    {
        static const uint16_t unknown[] = {0x7ffe, 0x0002};
        start(&w, buf, sizeof buf, SLUICE_STUN_BINDING, SLUICE_STUN_ERROR);
        sluice_stun_put_error_code(&w, SLUICE_STUN_ERR_UNKNOWN_ATTRIBUTE, "Unknown Attribute");
        sluice_stun_put_unknown_attributes(&w, unknown, 2);
        finish("error-420", &w, true);
    }

    /* 440 with ADDRESS-ERROR-CODE (RFC 8656 §18.12). */
    start(&w, buf, sizeof buf, SLUICE_STUN_ALLOCATE, SLUICE_STUN_ERROR);
    sluice_stun_put_error_code(&w, SLUICE_STUN_ERR_ADDRESS_FAMILY, NULL);
    sluice_stun_put_address_error_code(&w, SLUICE_STUN_FAMILY_IPV6, 440, NULL);
    sluice_stun_put_address_family(&w, SLUICE_STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY,
                                   SLUICE_STUN_FAMILY_IPV6);
    finish("error-440", &w, true);

    /* CreatePermission with two peers, MESSAGE-INTEGRITY-SHA256. */
    start(&w, buf, sizeof buf, SLUICE_STUN_CREATE_PERMISSION, SLUICE_STUN_REQUEST);
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &a4);
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &a6);
    sluice_stun_put_integrity_sha256(&w, &key);
    finish("create-permission", &w, false);

    /* ChannelBind (RFC 8656 §11). */
    start(&w, buf, sizeof buf, SLUICE_STUN_CHANNEL_BIND, SLUICE_STUN_REQUEST);
    sluice_stun_put_channel_number(&w, 0x4001);
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &b4);
    finish("channel-bind", &w, true);

    /* Data indication with ICMP (RFC 8656 §10, §18.13). */
    start(&w, buf, sizeof buf, SLUICE_STUN_DATA, SLUICE_STUN_INDICATION);
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &b6);
    sluice_stun_put(&w, SLUICE_STUN_ATTR_DATA, "hello", 5);
    sluice_stun_put_icmp(&w, 3, 1, 0);
    finish("data-indication", &w, false);

    /* Binding success with RFC 5780 and ALTERNATE-SERVER attributes. */
    start(&w, buf, sizeof buf, SLUICE_STUN_BINDING, SLUICE_STUN_SUCCESS);
    sluice_stun_put_address(&w, SLUICE_STUN_ATTR_MAPPED_ADDRESS, &a4);
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &a6);
    sluice_stun_put_address(&w, SLUICE_STUN_ATTR_OTHER_ADDRESS, &b6);
    sluice_stun_put_address(&w, SLUICE_STUN_ATTR_RESPONSE_ORIGIN, &b4);
    sluice_stun_put_address(&w, SLUICE_STUN_ATTR_ALTERNATE_SERVER, &a6);
    sluice_stun_put(&w, SLUICE_STUN_ATTR_ALTERNATE_DOMAIN, "stun.example.org", 16);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_CACHE_TIMEOUT, 30);
    finish("binding-success-5780", &w, true);

    /* RFC 5780 Binding request. */
    start(&w, buf, sizeof buf, SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_CHANGE_REQUEST, 0x06);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_RESPONSE_PORT, 0x12340000u);
    sluice_stun_put(&w, SLUICE_STUN_ATTR_PADDING, "\0\0\0\0\0\0\0\0", 8);
    finish("binding-request-5780", &w, false);

    /* ICE connectivity check (RFC 8445 §7.1.1) with both integrity kinds. */
    start(&w, buf, sizeof buf, SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, S("evtj:h6vY"));
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, 0x6e0001ff);
    sluice_stun_put_u64(&w, SLUICE_STUN_ATTR_ICE_CONTROLLING, 0x932ff9b151263b36ull);
    sluice_stun_put_empty(&w, SLUICE_STUN_ATTR_USE_CANDIDATE);
    sluice_stun_put_integrity(&w, &key);
    sluice_stun_put_integrity_sha256(&w, &key);
    finish("ice-check", &w, false);

    /* RFC 6062 Connect / ConnectionBind. */
    start(&w, buf, sizeof buf, SLUICE_STUN_CONNECTION_BIND, SLUICE_STUN_REQUEST);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_CONNECTION_ID, 0xdeadbeef);
    finish("connection-bind", &w, true);

    /* Unknown comprehension-required and -optional attributes. */
    start(&w, buf, sizeof buf, SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST);
    sluice_stun_put(&w, 0x7ffe, "x", 1);
    sluice_stun_put(&w, 0xc0de, "yz", 2);
    finish("unknown-attributes", &w, false);

    return failures ? 1 : 0;
}
