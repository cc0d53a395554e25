/* SPDX-License-Identifier: MIT */
/* sluice addresses: IPv4/IPv6 + port values, parsing, formatting and a
 * canonicalising classifier used by the TURN server's peer policy. */
#ifndef SLUICE_ADDR_H
#define SLUICE_ADDR_H

#include "sluice/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_AF_NONE 0
#define SLUICE_AF_INET 4
#define SLUICE_AF_INET6 6

/* An IP address and port. IPv4 addresses use ip[0..3]; the rest is zero.
 * Plain value: copy it freely. Compare with sluice_addr_equal(). */
typedef struct sluice_addr {
    uint8_t family; /* SLUICE_AF_INET, SLUICE_AF_INET6 or SLUICE_AF_NONE */
    uint8_t ip[16];
    uint16_t port;     /* host byte order */
    uint32_t scope_id; /* IPv6 zone index (link-local), else 0 */
} sluice_addr;

/* Longest formatted address: "[" 45-char IPv6 "%" 10-digit scope "]:" 5 digits + NUL. */
#define SLUICE_ADDR_STRLEN 72

SLUICE_API void sluice_addr_set_ipv4(sluice_addr *a, const uint8_t ip[4], uint16_t port);
SLUICE_API void sluice_addr_set_ipv6(sluice_addr *a, const uint8_t ip[16], uint16_t port);

/* Parse "1.2.3.4", "1.2.3.4:80", "::1", "[::1]:80", "[fe80::1%3]:80".
 * A missing port becomes default_port. Returns 0, SLUICE_ERR_INVALID or
 * SLUICE_ERR_MALFORMED. Names are not resolved (the core does no DNS). */
SLUICE_API int sluice_addr_parse(sluice_addr *a, const char *text, uint16_t default_port);

/* Format as "1.2.3.4:80" or "[::1]:80" (with_port false: "1.2.3.4", "::1").
 * Returns the string length, or SLUICE_ERR_NOSPACE / SLUICE_ERR_INVALID. */
SLUICE_API int sluice_addr_format(const sluice_addr *a, bool with_port, char *buf, size_t cap);

/* Equality of family, address, port (and scope for IPv6). */
SLUICE_API bool sluice_addr_equal(const sluice_addr *a, const sluice_addr *b);
/* Equality of family and address (and scope for IPv6), ignoring the port. */
SLUICE_API bool sluice_addr_equal_ip(const sluice_addr *a, const sluice_addr *b);

/* Conversion to and from struct sockaddr_in / sockaddr_in6 (passed as void *
 * so this header does not pull in socket headers). to_sockaddr returns the
 * socklen, or SLUICE_ERR_NOSPACE/INVALID; from_sockaddr returns 0 or INVALID. */
SLUICE_API int sluice_addr_to_sockaddr(const sluice_addr *a, void *sa, size_t cap);
SLUICE_API int sluice_addr_from_sockaddr(sluice_addr *a, const void *sa, size_t len);

/* Classification flags. An address can carry several. */
enum {
    SLUICE_ADDR_UNSPECIFIED = 1u << 0,  /* 0.0.0.0/8, :: */
    SLUICE_ADDR_LOOPBACK = 1u << 1,     /* 127/8, ::1 */
    SLUICE_ADDR_MULTICAST = 1u << 2,    /* 224/4, ff00::/8 */
    SLUICE_ADDR_BROADCAST = 1u << 3,    /* 255.255.255.255 */
    SLUICE_ADDR_LINK_LOCAL = 1u << 4,   /* 169.254/16, fe80::/10 */
    SLUICE_ADDR_PRIVATE = 1u << 5,      /* 10/8, 172.16/12, 192.168/16, fec0::/10 */
    SLUICE_ADDR_ULA = 1u << 6,          /* fc00::/7 */
    SLUICE_ADDR_SHARED = 1u << 7,       /* 100.64/10 carrier-grade NAT (RFC 6598) */
    SLUICE_ADDR_RESERVED = 1u << 8,     /* 240/4, 192.0.0/24, 198.18/15, 100::/64, ... */
    SLUICE_ADDR_DOCUMENTATION = 1u << 9,/* 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32 */
    /* IPv4-in-IPv6 forms: the embedded IPv4 address is classified too and its
     * flags are OR-ed in, so ::ffff:127.0.0.1 is LOOPBACK | V4MAPPED. */
    SLUICE_ADDR_V4MAPPED = 1u << 16,    /* ::ffff:0:0/96 */
    SLUICE_ADDR_V4COMPAT = 1u << 17,    /* ::/96 except :: and ::1 (deprecated) */
    SLUICE_ADDR_6TO4 = 1u << 18,        /* 2002::/16 */
    SLUICE_ADDR_NAT64 = 1u << 19,       /* 64:ff9b::/96, 64:ff9b:1::/48 */
    SLUICE_ADDR_TEREDO = 1u << 20,      /* 2001::/32 (server + obfuscated client) */
    SLUICE_ADDR_V4TRANSLATED = 1u << 21,/* ::ffff:0:0:0/96 (SIIT, RFC 2765) */
};

/* Everything a relay should refuse as a peer by default. */
#define SLUICE_ADDR_DENY_DEFAULT                                                                   \
    (SLUICE_ADDR_UNSPECIFIED | SLUICE_ADDR_LOOPBACK | SLUICE_ADDR_MULTICAST |                      \
     SLUICE_ADDR_BROADCAST | SLUICE_ADDR_LINK_LOCAL | SLUICE_ADDR_PRIVATE | SLUICE_ADDR_ULA |      \
     SLUICE_ADDR_SHARED | SLUICE_ADDR_RESERVED | SLUICE_ADDR_V4MAPPED | SLUICE_ADDR_V4COMPAT |     \
     SLUICE_ADDR_6TO4 | SLUICE_ADDR_NAT64 | SLUICE_ADDR_TEREDO | SLUICE_ADDR_V4TRANSLATED)

/* Classify a (possibly IPv4-embedding) address. If embedded is not NULL and
 * the address carries an IPv4 address in one of the forms above, the IPv4
 * address is written there (port copied), else *embedded = *a. 0 means an
 * ordinary global unicast address. */
SLUICE_API uint32_t sluice_addr_classify(const sluice_addr *a, sluice_addr *embedded);

/* Name of a single flag ("loopback", "v4-mapped", ...), or "unknown". */
SLUICE_API const char *sluice_addr_class_name(uint32_t flag);

#ifdef __cplusplus
}
#endif
#endif
