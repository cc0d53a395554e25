/* SPDX-License-Identifier: MIT */
/* Writes one STUN message of every kind the sluice writer and the server
 * helpers produce into a pcap file (raw IPv4 + UDP port 3478) so that
 * test_tshark.sh can check that Wireshark's dissector accepts every one. */

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/sluice.h"

#define CLIENT_PORT 54321
#define SERVER_PORT 3478
#define LINKTYPE_RAW 101

static FILE *out;
static unsigned n_packets;
static int failures;

static const uint8_t client_ip[4] = {192, 0, 2, 1};
static const uint8_t server_ip[4] = {192, 0, 2, 2};

enum direction { TO_SERVER, TO_CLIENT };

/* ------------------------------------------------------------------------ */
/* pcap (https://www.tcpdump.org/manpages/pcap-savefile.5.html), written
 * little-endian byte by byte so the file is the same on every host. */

static void le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
    le16(p, (uint16_t)v);
    le16(p + 2, (uint16_t)(v >> 16));
}

static void be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void pcap_global_header(void)
{
    uint8_t h[24];
    le32(h, 0xA1B2C3D4u); /* magic: microsecond timestamps */
    le16(h + 4, 2);       /* version 2.4 */
    le16(h + 6, 4);
    le32(h + 8, 0);  /* thiszone */
    le32(h + 12, 0); /* sigfigs */
    le32(h + 16, 65535);
    le32(h + 20, LINKTYPE_RAW);
    fwrite(h, 1, sizeof h, out);
}

/* RFC 1071 one's-complement sum over the IPv4 header. */
static uint16_t ipv4_checksum(const uint8_t *h, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(h[i] << 8 | h[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

static void pcap_packet(enum direction dir, const uint8_t *payload, size_t len)
{
    uint8_t rec[16], ip[20], udp[8];
    const uint8_t *src = dir == TO_SERVER ? client_ip : server_ip;
    const uint8_t *dst = dir == TO_SERVER ? server_ip : client_ip;
    size_t total = sizeof ip + sizeof udp + len;

    /* Fixed, increasing timestamps keep the file reproducible. */
    le32(rec, 1700000000u);
    le32(rec + 4, n_packets * 1000u);
    le32(rec + 8, (uint32_t)total);
    le32(rec + 12, (uint32_t)total);

    memset(ip, 0, sizeof ip);
    ip[0] = 0x45; /* version 4, 5 words */
    be16(ip + 2, (uint16_t)total);
    be16(ip + 4, (uint16_t)(n_packets + 1)); /* identification */
    be16(ip + 6, 0x4000);                    /* DF, offset 0 */
    ip[8] = 64;                              /* TTL */
    ip[9] = 17;                              /* UDP */
    memcpy(ip + 12, src, 4);
    memcpy(ip + 16, dst, 4);
    be16(ip + 10, ipv4_checksum(ip, sizeof ip));

    be16(udp, dir == TO_SERVER ? CLIENT_PORT : SERVER_PORT);
    be16(udp + 2, dir == TO_SERVER ? SERVER_PORT : CLIENT_PORT);
    be16(udp + 4, (uint16_t)(sizeof udp + len));
    be16(udp + 6, 0); /* no checksum (allowed over IPv4) */

    fwrite(rec, 1, sizeof rec, out);
    fwrite(ip, 1, sizeof ip, out);
    fwrite(udp, 1, sizeof udp, out);
    fwrite(payload, 1, len, out);
    n_packets++;
}

/* ------------------------------------------------------------------------ */
/* Messages */

static uint8_t buf[2048];
static sluice_stun_writer w;
/* Addresses the current message should carry, in order, as "IP:PORT"
 * (no brackets: how tshark's stun.att.ipv6 and stun.att.port read). */
static char expected_addrs[1024];

static void fail(const char *label, const char *what, int err)
{
    fprintf(stderr, "FAIL %s: %s: %s (%d)\n", label, what, sluice_strerror(err), err);
    failures++;
}

/* A distinct, recognisable transaction ID per exchange. */
static const uint8_t *txid(unsigned n)
{
    static uint8_t id[SLUICE_STUN_TXID_LEN];
    memcpy(id, "sluicepcap", 10);
    be16(id + 10, (uint16_t)n);
    return id;
}

static void begin(uint16_t method, sluice_stun_class cls, unsigned exchange)
{
    expected_addrs[0] = '\0';
    sluice_stun_writer_init(&w, buf, sizeof buf, sluice_stun_type(method, cls), txid(exchange));
}

static void expect_addr(const sluice_addr *a)
{
    char ip[INET6_ADDRSTRLEN];
    size_t used = strlen(expected_addrs);

    inet_ntop(a->family == SLUICE_AF_INET6 ? AF_INET6 : AF_INET, a->ip, ip, sizeof ip);
    snprintf(expected_addrs + used, sizeof expected_addrs - used, "%s%s:%u", used ? "," : "", ip,
             a->port);
}

static void put_addr(uint16_t type, const sluice_addr *a)
{
    sluice_stun_put_address(&w, type, a);
    expect_addr(a);
}

static void put_xaddr(uint16_t type, const sluice_addr *a)
{
    sluice_stun_put_xor_address(&w, type, a);
    expect_addr(a);
}

/* The attribute types, walked here without the sluice parser, as tshark's
 * stun.att.type prints them ("0x0020,0x8028"; "-" for none): the test
 * compares them with what Wireshark found. */
static void print_attr_types(const uint8_t *msg, size_t len)
{
    size_t off = SLUICE_STUN_HEADER_LEN;
    const char *sep = "";

    if (off + 4 > len)
        fputs("-", stdout);
    while (off + 4 <= len) {
        unsigned type = (unsigned)msg[off] << 8 | msg[off + 1];
        unsigned alen = (unsigned)msg[off + 2] << 8 | msg[off + 3];
        printf("%s0x%04x", sep, type);
        sep = ",";
        off += 4 + ((alen + 3u) & ~3u);
    }
}

/* Check that the message parses back (and its integrity verifies with key
 * when given), then add it to the capture and name its frame on stdout. */
static void emit_buf(const char *label, enum direction dir, const uint8_t *msg, int len,
                     const sluice_stun_key *key)
{
    sluice_stun_msg m;
    int r;

    if (len < 0) {
        fail(label, "write", len);
        return;
    }
    r = sluice_stun_parse(&m, msg, (size_t)len);
    if (r < 0)
        fail(label, "parse back", r);
    else if (key && (r = sluice_stun_check_integrity(&m, key)) < 0)
        fail(label, "integrity check", r);
    pcap_packet(dir, msg, (size_t)len);
    printf("frame %u %s ", n_packets, label);
    print_attr_types(msg, (size_t)len);
    printf(" %s\n", expected_addrs[0] ? expected_addrs : "-");
    expected_addrs[0] = '\0';
}

static void emit(const char *label, enum direction dir, const sluice_stun_key *key)
{
    emit_buf(label, dir, buf, sluice_stun_writer_result(&w), key);
}

static void addr4(sluice_addr *a, uint8_t a0, uint8_t a1, uint8_t a2, uint8_t a3, uint16_t port)
{
    const uint8_t ip[4] = {a0, a1, a2, a3};
    sluice_addr_set_ipv4(a, ip, port);
}

static void addr6(sluice_addr *a, uint16_t last, uint16_t port)
{
    uint8_t ip[16] = {0x20, 0x01, 0x0d, 0xb8}; /* 2001:db8::/32 */
    be16(ip + 14, last);
    sluice_addr_set_ipv6(a, ip, port);
}

#define STR(s) s, sizeof(s) - 1

static const char software[] = "sluice stun_pcap";
static const char ice_user[] = "evtj:h6vY";
static const char ice_pass[] = "VOkJxbRl1RmTxUk/WvJxBt";
static const char lt_user[] = "sluice-user";
static const char lt_realm[] = "example.org";
static const char lt_pass[] = "TheOldStreetCar";

static sluice_stun_key short_key, md5_key, sha256_key;
static char nonce[64];
static size_t nonce_len;
static sluice_addr client4, client6, mapped4, mapped6, relayed4, relayed6, peer4a, peer4b, peer6,
    server4, other4, alternate4;

/* USERNAME, REALM, NONCE for a long-term authenticated request. */
static void put_long_term(void)
{
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, STR(lt_user));
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, STR(lt_realm));
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, nonce, nonce_len);
}

static void setup(void)
{
    int r;
    char cookie[SLUICE_STUN_NONCE_COOKIE_LEN];

    if ((r = sluice_stun_key_short_term(&short_key, STR(ice_pass))) < 0)
        fail("setup", "short-term key", r);
    if ((r = sluice_stun_key_long_term(&md5_key, SLUICE_STUN_PWALG_MD5, STR(lt_user), STR(lt_realm),
                                       STR(lt_pass))) < 0)
        fail("setup", "long-term MD5 key", r);
    if ((r = sluice_stun_key_long_term(&sha256_key, SLUICE_STUN_PWALG_SHA256, STR(lt_user),
                                       STR(lt_realm), STR(lt_pass))) < 0)
        fail("setup", "long-term SHA-256 key", r);

    /* RFC 8489 §9.2: a nonce that starts with the cookie and feature bits. */
    sluice_stun_nonce_cookie(
        SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS | SLUICE_STUN_FEATURE_USERNAME_ANONYMITY, cookie);
    memcpy(nonce, cookie, sizeof cookie);
    memcpy(nonce + sizeof cookie, "f//499k954d6OL34oL9FSTvy64sA", 28);
    nonce_len = sizeof cookie + 28;

    addr4(&client4, 192, 0, 2, 1, CLIENT_PORT);
    addr6(&client6, 0x1, CLIENT_PORT);
    addr4(&mapped4, 203, 0, 113, 7, 40001);
    addr6(&mapped6, 0x7, 40001);
    addr4(&relayed4, 198, 51, 100, 9, 50000);
    addr6(&relayed6, 0x9, 50002);
    addr4(&peer4a, 203, 0, 113, 20, 6000);
    addr4(&peer4b, 203, 0, 113, 21, 6001);
    addr6(&peer6, 0x22, 6002);
    addr4(&server4, 192, 0, 2, 2, SERVER_PORT);
    addr4(&other4, 192, 0, 2, 3, 3479);
    addr4(&alternate4, 198, 51, 100, 1, SERVER_PORT);
}

static const uint8_t payload[] = "hello, peer"; /* 11 bytes: DATA needs padding */

static void binding(void)
{
    static const uint16_t unknown[] = {0x0030, 0x0031, 0x7FFF};
    static const uint16_t algs[] = {SLUICE_STUN_PWALG_SHA256, SLUICE_STUN_PWALG_MD5};
    static const uint8_t response_port[4] = {0x1F, 0x90, 0, 0}; /* 8080 + 2 bytes padding */
    static const uint8_t padding[13];

    begin(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, 1);
    emit("binding-request-empty", TO_SERVER, NULL);

    begin(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, 2);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, STR(software));
    sluice_stun_put_fingerprint(&w);
    emit("binding-request-software-fingerprint", TO_SERVER, NULL);

    /* RFC 8445 §7.1.1: an ICE connectivity check from the controlling agent. */
    begin(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, 3);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, STR(ice_user));
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, 0x6E0001FFu);
    sluice_stun_put_empty(&w, SLUICE_STUN_ATTR_USE_CANDIDATE);
    sluice_stun_put_u64(&w, SLUICE_STUN_ATTR_ICE_CONTROLLING, 0x932FF9B151263B36ull);
    sluice_stun_put_integrity(&w, &short_key);
    sluice_stun_put_fingerprint(&w);
    emit("ice-check-controlling-mi", TO_SERVER, &short_key);

    /* The same check re-signed through writer_init_copy. */
    {
        static uint8_t copy[2048];
        sluice_stun_msg m;
        int r = sluice_stun_parse(&m, buf, (size_t)sluice_stun_writer_result(&w));
        if (r < 0) {
            fail("ice-check-copy", "parse", r);
        } else {
            sluice_stun_writer cw;
            sluice_stun_writer_init_copy(&cw, copy, sizeof copy, &m);
            sluice_stun_put_integrity_sha256(&cw, &short_key);
            sluice_stun_put_fingerprint(&cw);
            emit_buf("ice-check-copied-mi-sha256", TO_SERVER, copy, sluice_stun_writer_result(&cw),
                     &short_key);
        }
    }

    begin(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, 4);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, STR(ice_user));
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, 0x7E7F00FFu);
    sluice_stun_put_u64(&w, SLUICE_STUN_ATTR_ICE_CONTROLLED, 0x0123456789ABCDEFull);
    sluice_stun_put_integrity_sha256(&w, &short_key);
    sluice_stun_put_fingerprint(&w);
    emit("ice-check-controlled-mi-sha256", TO_SERVER, &short_key);

    begin(SLUICE_STUN_BINDING, SLUICE_STUN_SUCCESS, 3);
    put_xaddr(SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped4);
    put_addr(SLUICE_STUN_ATTR_MAPPED_ADDRESS, &mapped4);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, STR(software));
    sluice_stun_put_integrity(&w, &short_key);
    sluice_stun_put_fingerprint(&w);
    emit("binding-success-ipv4-mi", TO_CLIENT, &short_key);

    begin(SLUICE_STUN_BINDING, SLUICE_STUN_SUCCESS, 4);
    put_xaddr(SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped6);
    put_addr(SLUICE_STUN_ATTR_MAPPED_ADDRESS, &mapped6);
    sluice_stun_put_integrity(&w, &short_key);
    sluice_stun_put_integrity_sha256(&w, &short_key);
    sluice_stun_put_fingerprint(&w);
    emit("binding-success-ipv6-mi-and-mi-sha256", TO_CLIENT, &short_key);

    /* RFC 5780 NAT behaviour discovery. */
    begin(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, 5);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_CHANGE_REQUEST, 0x6); /* change IP and port */
    sluice_stun_put(&w, SLUICE_STUN_ATTR_RESPONSE_PORT, response_port, sizeof response_port);
    sluice_stun_put(&w, SLUICE_STUN_ATTR_PADDING, padding, sizeof padding);
    sluice_stun_put_fingerprint(&w);
    emit("binding-request-rfc5780", TO_SERVER, NULL);

    begin(SLUICE_STUN_BINDING, SLUICE_STUN_SUCCESS, 5);
    put_xaddr(SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped4);
    put_addr(SLUICE_STUN_ATTR_RESPONSE_ORIGIN, &server4);
    put_addr(SLUICE_STUN_ATTR_OTHER_ADDRESS, &other4);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_CACHE_TIMEOUT, 60);
    sluice_stun_put_fingerprint(&w);
    emit("binding-success-rfc5780", TO_CLIENT, NULL);

    begin(SLUICE_STUN_BINDING, SLUICE_STUN_ERROR, 2);
    sluice_stun_put_error_code(&w, SLUICE_STUN_ERR_BAD_REQUEST, NULL);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, STR(software));
    sluice_stun_put_fingerprint(&w);
    emit("binding-error-400", TO_CLIENT, NULL);

    begin(SLUICE_STUN_BINDING, SLUICE_STUN_ERROR, 6);
    sluice_stun_put_error_code(&w, SLUICE_STUN_ERR_UNAUTHORIZED, NULL);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, STR(lt_realm));
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, nonce, nonce_len);
    sluice_stun_put_password_algorithms(&w, algs, 2);
    sluice_stun_put_fingerprint(&w);
    emit("binding-error-401-password-algorithms", TO_CLIENT, NULL);

    begin(SLUICE_STUN_BINDING, SLUICE_STUN_ERROR, 7);
    sluice_stun_put_error_code(&w, SLUICE_STUN_ERR_UNKNOWN_ATTRIBUTE, "Unknown Attribute");
    sluice_stun_put_unknown_attributes(&w, unknown, 3); /* odd count: padded */
    sluice_stun_put_fingerprint(&w);
    emit("binding-error-420-unknown-attributes", TO_CLIENT, NULL);

    begin(SLUICE_STUN_BINDING, SLUICE_STUN_ERROR, 8);
    sluice_stun_put_error_code(&w, SLUICE_STUN_ERR_STALE_NONCE, NULL);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, STR(lt_realm));
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, nonce, nonce_len);
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("binding-error-438-mi", TO_CLIENT, &md5_key);

    /* RFC 8489 §6.1 keepalive. */
    begin(SLUICE_STUN_BINDING, SLUICE_STUN_INDICATION, 9);
    sluice_stun_put_fingerprint(&w);
    emit("binding-indication", TO_SERVER, NULL);
}

static void turn(void)
{
    uint8_t userhash[32];
    int r;

    /* RFC 8656 §7.1 */
    begin(SLUICE_STUN_ALLOCATE, SLUICE_STUN_REQUEST, 20);
    sluice_stun_put_requested_transport(&w, 17);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_LIFETIME, 600);
    sluice_stun_put_empty(&w, SLUICE_STUN_ATTR_DONT_FRAGMENT);
    sluice_stun_put_even_port(&w, true);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, STR(software));
    sluice_stun_put_fingerprint(&w);
    emit("allocate-request-unauthenticated", TO_SERVER, NULL);

    begin(SLUICE_STUN_ALLOCATE, SLUICE_STUN_ERROR, 20);
    sluice_stun_put_error_code(&w, SLUICE_STUN_ERR_UNAUTHORIZED, NULL);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, STR(lt_realm));
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, nonce, nonce_len);
    sluice_stun_put_fingerprint(&w);
    emit("allocate-error-401", TO_CLIENT, NULL);

    begin(SLUICE_STUN_ALLOCATE, SLUICE_STUN_REQUEST, 21);
    sluice_stun_put_requested_transport(&w, 17);
    sluice_stun_put_address_family(&w, SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY,
                                   SLUICE_STUN_FAMILY_IPV6);
    put_long_term();
    sluice_stun_put_password_algorithm(&w, SLUICE_STUN_PWALG_SHA256);
    sluice_stun_put_integrity_sha256(&w, &sha256_key);
    sluice_stun_put_fingerprint(&w);
    emit("allocate-request-ipv6-sha256", TO_SERVER, &sha256_key);

    /* RFC 8489 §9.2.3.2: USERHASH instead of USERNAME. */
    if ((r = sluice_stun_userhash(userhash, STR(lt_user), STR(lt_realm))) < 0)
        fail("allocate-request-userhash", "userhash", r);
    begin(SLUICE_STUN_ALLOCATE, SLUICE_STUN_REQUEST, 22);
    sluice_stun_put_requested_transport(&w, 17);
    sluice_stun_put_address_family(&w, SLUICE_STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY,
                                   SLUICE_STUN_FAMILY_IPV6);
    sluice_stun_put(&w, SLUICE_STUN_ATTR_USERHASH, userhash, sizeof userhash);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_REALM, STR(lt_realm));
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_NONCE, nonce, nonce_len);
    sluice_stun_put_password_algorithm(&w, SLUICE_STUN_PWALG_MD5);
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("allocate-request-dual-userhash", TO_SERVER, &md5_key);

    begin(SLUICE_STUN_ALLOCATE, SLUICE_STUN_SUCCESS, 22);
    put_xaddr(SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS, &relayed4);
    put_xaddr(SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS, &relayed6);
    put_xaddr(SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped4);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_LIFETIME, 600);
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("allocate-success-dual", TO_CLIENT, &md5_key);

    /* RFC 8656 §7.2: a dual allocation where only IPv4 could be relayed. */
    begin(SLUICE_STUN_ALLOCATE, SLUICE_STUN_SUCCESS, 23);
    put_xaddr(SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS, &relayed4);
    sluice_stun_put_address_error_code(&w, SLUICE_STUN_FAMILY_IPV6, SLUICE_STUN_ERR_ADDRESS_FAMILY,
                                       NULL);
    put_xaddr(SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped4);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_LIFETIME, 600);
    sluice_stun_put_u64(&w, SLUICE_STUN_ATTR_RESERVATION_TOKEN, 0x5EED5EED00C0FFEEull);
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("allocate-success-address-error-code-reservation-token", TO_CLIENT, &md5_key);

    begin(SLUICE_STUN_ALLOCATE, SLUICE_STUN_REQUEST, 24);
    sluice_stun_put_requested_transport(&w, 17);
    sluice_stun_put_u64(&w, SLUICE_STUN_ATTR_RESERVATION_TOKEN, 0x5EED5EED00C0FFEEull);
    put_long_term();
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("allocate-request-reservation-token", TO_SERVER, &md5_key);

    /* RFC 8489 §10: try an alternate server. */
    begin(SLUICE_STUN_ALLOCATE, SLUICE_STUN_ERROR, 24);
    sluice_stun_put_error_code(&w, SLUICE_STUN_ERR_TRY_ALTERNATE, NULL);
    put_addr(SLUICE_STUN_ATTR_ALTERNATE_SERVER, &alternate4);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_ALTERNATE_DOMAIN, STR("turn.example.org"));
    sluice_stun_put_fingerprint(&w);
    emit("allocate-error-300-alternate", TO_CLIENT, NULL);

    begin(SLUICE_STUN_REFRESH, SLUICE_STUN_REQUEST, 25);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_LIFETIME, 0);
    put_long_term();
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("refresh-request", TO_SERVER, &md5_key);

    begin(SLUICE_STUN_REFRESH, SLUICE_STUN_SUCCESS, 25);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_LIFETIME, 0);
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("refresh-success", TO_CLIENT, &md5_key);

    /* RFC 8656 §9.1 */
    begin(SLUICE_STUN_CREATE_PERMISSION, SLUICE_STUN_REQUEST, 26);
    put_xaddr(SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &peer4a);
    put_xaddr(SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &peer4b);
    put_long_term();
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("create-permission-request-two-peers", TO_SERVER, &md5_key);

    begin(SLUICE_STUN_CREATE_PERMISSION, SLUICE_STUN_SUCCESS, 26);
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("create-permission-success", TO_CLIENT, &md5_key);

    /* RFC 8656 §11.1 */
    begin(SLUICE_STUN_CHANNEL_BIND, SLUICE_STUN_REQUEST, 27);
    sluice_stun_put_channel_number(&w, 0x4000);
    put_xaddr(SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &peer6);
    put_long_term();
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("channel-bind-request", TO_SERVER, &md5_key);

    begin(SLUICE_STUN_CHANNEL_BIND, SLUICE_STUN_SUCCESS, 27);
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("channel-bind-success", TO_CLIENT, &md5_key);

    /* RFC 8656 §10 */
    begin(SLUICE_STUN_SEND, SLUICE_STUN_INDICATION, 28);
    put_xaddr(SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &peer4a);
    sluice_stun_put_empty(&w, SLUICE_STUN_ATTR_DONT_FRAGMENT);
    sluice_stun_put(&w, SLUICE_STUN_ATTR_DATA, payload, sizeof payload - 1);
    emit("send-indication", TO_SERVER, NULL);

    begin(SLUICE_STUN_DATA, SLUICE_STUN_INDICATION, 29);
    put_xaddr(SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &peer4a);
    sluice_stun_put(&w, SLUICE_STUN_ATTR_DATA, payload, sizeof payload - 1);
    emit("data-indication", TO_CLIENT, NULL);

    /* RFC 8656 §11.5: an ICMP error from the peer, relayed. */
    begin(SLUICE_STUN_DATA, SLUICE_STUN_INDICATION, 30);
    put_xaddr(SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &peer4b);
    sluice_stun_put_icmp(&w, 3, 3, 0); /* destination unreachable, port unreachable */
    emit("data-indication-icmp", TO_CLIENT, NULL);

    /* RFC 6062 TCP allocations. */
    begin(SLUICE_STUN_CONNECT, SLUICE_STUN_REQUEST, 31);
    put_xaddr(SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &peer4a);
    put_long_term();
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("connect-request", TO_SERVER, &md5_key);

    begin(SLUICE_STUN_CONNECT, SLUICE_STUN_SUCCESS, 31);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_CONNECTION_ID, 0xC0FFEE01u);
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("connect-success", TO_CLIENT, &md5_key);

    begin(SLUICE_STUN_CONNECTION_BIND, SLUICE_STUN_REQUEST, 32);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_CONNECTION_ID, 0xC0FFEE01u);
    put_long_term();
    sluice_stun_put_integrity(&w, &md5_key);
    sluice_stun_put_fingerprint(&w);
    emit("connection-bind-request", TO_SERVER, &md5_key);

    begin(SLUICE_STUN_CONNECTION_ATTEMPT, SLUICE_STUN_INDICATION, 33);
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_CONNECTION_ID, 0xC0FFEE02u);
    put_xaddr(SLUICE_STUN_ATTR_XOR_PEER_ADDRESS, &peer4b);
    emit("connection-attempt-indication", TO_CLIENT, NULL);
}

/* The messages of the stateless server helpers in stun_txn.h. */
static void server_helpers(void)
{
    static const uint16_t algs[] = {SLUICE_STUN_PWALG_SHA256, SLUICE_STUN_PWALG_MD5};
    static const uint8_t junk[4] = {1, 2, 3, 4};
    static uint8_t reqbuf[512], resp[1024];
    sluice_stun_msg req;
    sluice_stun_error_opts opts;
    int r, len;

    /* Plain Binding request, answered without and with credentials. */
    begin(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, 40);
    sluice_stun_put_fingerprint(&w);
    len = sluice_stun_writer_result(&w);
    if (len < 0 || (r = sluice_stun_parse(&req, buf, (size_t)len)) < 0) {
        fail("server-helpers", "request", len < 0 ? len : r);
        return;
    }
    expect_addr(&client4);
    emit_buf("binding-response-helper-ipv4", TO_CLIENT, resp,
             sluice_stun_binding_response(&req, &client4, NULL, software, resp, sizeof resp), NULL);
    expect_addr(&client6);
    emit_buf("binding-response-helper-ipv6-no-software", TO_CLIENT, resp,
             sluice_stun_binding_response(&req, &client6, NULL, NULL, resp, sizeof resp), NULL);

    begin(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST, 41);
    sluice_stun_put_string(&w, SLUICE_STUN_ATTR_USERNAME, STR(ice_user));
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, 0x6E0001FFu);
    sluice_stun_put_u64(&w, SLUICE_STUN_ATTR_ICE_CONTROLLING, 0x932FF9B151263B36ull);
    sluice_stun_put_integrity(&w, &short_key);
    sluice_stun_put_fingerprint(&w);
    len = sluice_stun_writer_result(&w);
    if (len < 0 || (r = sluice_stun_parse(&req, buf, (size_t)len)) < 0) {
        fail("server-helpers", "ICE request", len < 0 ? len : r);
        return;
    }
    expect_addr(&client4);
    emit_buf("binding-response-helper-mi", TO_CLIENT, resp,
             sluice_stun_binding_response(&req, &client4, &short_key, software, resp, sizeof resp),
             &short_key);

    emit_buf("error-response-helper-400", TO_CLIENT, resp,
             sluice_stun_error_response(&req, SLUICE_STUN_ERR_BAD_REQUEST, NULL, resp, sizeof resp),
             NULL);

    memset(&opts, 0, sizeof opts);
    opts.realm = lt_realm;
    opts.nonce = nonce; /* NUL-terminated: nonce[] is zero past nonce_len */
    opts.password_algorithms = algs;
    opts.n_password_algorithms = 2;
    opts.software = software;
    opts.fingerprint = true;
    emit_buf(
        "error-response-helper-401", TO_CLIENT, resp,
        sluice_stun_error_response(&req, SLUICE_STUN_ERR_UNAUTHORIZED, &opts, resp, sizeof resp),
        NULL);

    memset(&opts, 0, sizeof opts);
    opts.realm = lt_realm;
    opts.nonce = nonce;
    opts.key = &md5_key;
    opts.fingerprint = true;
    emit_buf(
        "error-response-helper-438-mi", TO_CLIENT, resp,
        sluice_stun_error_response(&req, SLUICE_STUN_ERR_STALE_NONCE, &opts, resp, sizeof resp),
        &md5_key);

    /* A request with unknown comprehension-required attributes, for a 420.
     * The request itself stays out of the capture: the attributes are
     * unknown to Wireshark too, by design. */
    {
        sluice_stun_writer rw;
        sluice_stun_writer_init(&rw, reqbuf, sizeof reqbuf,
                                sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST),
                                txid(42));
        sluice_stun_put(&rw, 0x0030, junk, sizeof junk);
        sluice_stun_put(&rw, 0x7FFE, junk, 2);
        sluice_stun_put(&rw, 0xC001, junk, sizeof junk); /* optional: not listed */
        sluice_stun_put_fingerprint(&rw);
        len = sluice_stun_writer_result(&rw);
    }
    if (len < 0 || (r = sluice_stun_parse(&req, reqbuf, (size_t)len)) < 0) {
        fail("server-helpers", "request with unknown attributes", len < 0 ? len : r);
        return;
    }
    if (req.n_unknown != 2) {
        fprintf(stderr, "FAIL server-helpers: parser listed %u unknown attributes, expected 2\n",
                req.n_unknown);
        failures++;
    }
    memset(&opts, 0, sizeof opts);
    opts.fingerprint = true;
    emit_buf("error-response-helper-420", TO_CLIENT, resp,
             sluice_stun_error_response(&req, SLUICE_STUN_ERR_UNKNOWN_ATTRIBUTE, &opts, resp,
                                        sizeof resp),
             NULL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT.pcap\n", argv[0]);
        return 2;
    }
    out = fopen(argv[1], "wb");
    if (!out) {
        perror(argv[1]);
        return 2;
    }
    pcap_global_header();
    setup();
    binding();
    turn();
    server_helpers();
    if (fclose(out) != 0) {
        perror(argv[1]);
        return 2;
    }
    printf("packets %u\n", n_packets);
    if (failures) {
        fprintf(stderr, "%d failure(s) while writing messages\n", failures);
        return 1;
    }
    return 0;
}
