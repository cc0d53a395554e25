/* SPDX-License-Identifier: MIT */
/* Helpers shared by the STUN codec and writer unit tests. */
#ifndef SLUICE_STUN_CODEC_UTIL_H
#define SLUICE_STUN_CODEC_UTIL_H

#include <sys/wait.h>
#include <unistd.h>

#include "sluice/stun.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

__attribute__((unused)) static const uint8_t txid[SLUICE_STUN_TXID_LEN] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                                   0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

static inline uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* One message under construction in a shared buffer. */
__attribute__((unused)) static uint8_t buf[4096];
__attribute__((unused)) static sluice_stun_writer w;

static inline void begin(void)
{
    memset(buf, 0xEE, sizeof buf);
    CHECK_EQ(sluice_stun_writer_init(&w, buf, sizeof buf,
                                     sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST),
                                     txid),
             0);
}

/* Parse what the writer produced; returns the parse code. */
static inline int finish(sluice_stun_msg *m)
{
    int n = sluice_stun_writer_result(&w);
    if (n < 0)
        return n;
    CHECK_EQ(be16(buf + 2), n - SLUICE_STUN_HEADER_LEN);
    return sluice_stun_parse(m, buf, (size_t)n);
}

/* The single attribute of a message: header length and zero padding. */
static inline void check_single_attr(const sluice_stun_msg *m, uint16_t type, size_t len)
{
    size_t padded = (len + 3) & ~(size_t)3;
    CHECK_EQ(m->len, SLUICE_STUN_HEADER_LEN + 4 + padded);
    CHECK_EQ(be16(buf + 20), type);
    CHECK_EQ(be16(buf + 22), len);
    for (size_t i = len; i < padded; i++)
        CHECK_EQ(buf[24 + i], 0); /* RFC 8489 §14: padding written as zero */
}

/* Writer rules */

static inline sluice_stun_key test_key(void)
{
    sluice_stun_key k;
    CHECK_EQ(sluice_stun_key_short_term(&k, "secret", 6), 0);
    return k;
}

/* A message with one of every attribute the writer has a put for. */
static inline int build_everything(sluice_stun_writer *wr, uint8_t *b, size_t cap,
                            const sluice_stun_key *key)
{
    static const uint16_t unk[] = {0x0002, 0x0004, 0x0005};
    static const uint16_t algs[] = {SLUICE_STUN_PWALG_SHA256, SLUICE_STUN_PWALG_MD5};
    sluice_addr v4, v6;

    sluice_addr_parse(&v4, "192.0.2.1:32853", 0);
    sluice_addr_parse(&v6, "[2001:db8::1]:3478", 0);
    sluice_stun_writer_init(wr, b, cap, sluice_stun_type(SLUICE_STUN_ALLOCATE, SLUICE_STUN_REQUEST),
                            txid);
    sluice_stun_put_address(wr, SLUICE_STUN_ATTR_MAPPED_ADDRESS, &v4);
    sluice_stun_put_xor_address(wr, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &v6);
    sluice_stun_put_xor_address(wr, SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &v4);
    sluice_stun_put_string(wr, SLUICE_STUN_ATTR_USERNAME, "evtj:h6vY", 9);
    sluice_stun_put_string(wr, SLUICE_STUN_ATTR_REALM, "example.org", 11);
    sluice_stun_put_string(wr, SLUICE_STUN_ATTR_NONCE, "f//499k954d6OL34oL9FSTvy64sA", 28);
    sluice_stun_put_string(wr, SLUICE_STUN_ATTR_SOFTWARE, "sluice", 6);
    sluice_stun_put_u32(wr, SLUICE_STUN_ATTR_PRIORITY, 0x6e0001ff);
    sluice_stun_put_u64(wr, SLUICE_STUN_ATTR_ICE_CONTROLLING, 0x932ff9b151263b36ull);
    sluice_stun_put_empty(wr, SLUICE_STUN_ATTR_USE_CANDIDATE);
    sluice_stun_put_error_code(wr, 438, NULL);
    sluice_stun_put_unknown_attributes(wr, unk, 3);
    sluice_stun_put_channel_number(wr, 0x4001);
    sluice_stun_put_u32(wr, SLUICE_STUN_ATTR_LIFETIME, 600);
    sluice_stun_put_requested_transport(wr, 17);
    sluice_stun_put_address_family(wr, SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY,
                                   SLUICE_STUN_FAMILY_IPV6);
    sluice_stun_put_address_error_code(wr, SLUICE_STUN_FAMILY_IPV4, 440, "no");
    sluice_stun_put_even_port(wr, true);
    sluice_stun_put_icmp(wr, 3, 4, 1400);
    sluice_stun_put_password_algorithm(wr, SLUICE_STUN_PWALG_SHA256);
    sluice_stun_put_password_algorithms(wr, algs, 2);
    sluice_stun_put_empty(wr, SLUICE_STUN_ATTR_DONT_FRAGMENT);
    sluice_stun_put(wr, SLUICE_STUN_ATTR_DATA, "hello", 5);
    sluice_stun_put_u64(wr, SLUICE_STUN_ATTR_RESERVATION_TOKEN, 42);
    sluice_stun_put_integrity(wr, key);
    sluice_stun_put_integrity_sha256(wr, key);
    sluice_stun_put_fingerprint(wr);
    return sluice_stun_writer_result(wr);
}

#endif
