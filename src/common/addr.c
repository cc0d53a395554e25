/* SPDX-License-Identifier: MIT */
/* Addresses: parse/format, sockaddr conversion, and the canonicalising
 * classifier behind the relay's peer policy (design.md "sluice-relay"). */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "sluice/addr.h"

void sluice_addr_set_ipv4(sluice_addr *a, const uint8_t ip[4], uint16_t port)
{
    memset(a, 0, sizeof *a);
    a->family = SLUICE_AF_INET;
    memcpy(a->ip, ip, 4);
    a->port = port;
}

void sluice_addr_set_ipv6(sluice_addr *a, const uint8_t ip[16], uint16_t port)
{
    memset(a, 0, sizeof *a);
    a->family = SLUICE_AF_INET6;
    memcpy(a->ip, ip, 16);
    a->port = port;
}

static int parse_port(const char *s, uint16_t *port)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9')
        return SLUICE_ERR_MALFORMED;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v > 65535 || end - s > 5)
        return SLUICE_ERR_MALFORMED;
    *port = (uint16_t)v;
    return 0;
}

int sluice_addr_parse(sluice_addr *a, const char *text, uint16_t default_port)
{
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    const char *port_s = NULL, *colon;
    size_t hlen;
    uint16_t port = default_port;
    uint32_t scope = 0;
    char *pct;

    if (!a || !text)
        return SLUICE_ERR_INVALID;
    memset(a, 0, sizeof *a);
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close)
            return SLUICE_ERR_MALFORMED;
        hlen = (size_t)(close - text - 1);
        if (close[1] == ':')
            port_s = close + 2;
        else if (close[1] != '\0')
            return SLUICE_ERR_MALFORMED;
        text++;
    } else {
        colon = strchr(text, ':');
        if (colon && !strchr(colon + 1, ':')) { /* exactly one colon: IPv4:port */
            hlen = (size_t)(colon - text);
            port_s = colon + 1;
        } else {
            hlen = strlen(text);
        }
    }
    if (hlen == 0 || hlen >= sizeof host)
        return SLUICE_ERR_MALFORMED;
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (port_s && parse_port(port_s, &port) < 0)
        return SLUICE_ERR_MALFORMED;

    if (inet_pton(AF_INET, host, a->ip) == 1) {
        a->family = SLUICE_AF_INET;
        a->port = port;
        return 0;
    }
    pct = strchr(host, '%');
    if (pct) {
        char *end;
        unsigned long v;
        *pct = '\0';
        if (!pct[1])
            return SLUICE_ERR_MALFORMED;
        errno = 0;
        v = strtoul(pct + 1, &end, 10);
        if (*end == '\0' && !errno && v <= UINT32_MAX && pct[1] >= '0' && pct[1] <= '9')
            scope = (uint32_t)v;
        else if ((scope = if_nametoindex(pct + 1)) == 0)
            return SLUICE_ERR_MALFORMED;
    }
    if (inet_pton(AF_INET6, host, a->ip) == 1) {
        a->family = SLUICE_AF_INET6;
        a->port = port;
        a->scope_id = scope;
        return 0;
    }
    memset(a, 0, sizeof *a);
    return SLUICE_ERR_MALFORMED;
}

int sluice_addr_format(const sluice_addr *a, bool with_port, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    char scope[16] = "";
    int n;

    if (!a || !buf)
        return SLUICE_ERR_INVALID;
    if (a->family == SLUICE_AF_INET) {
        if (!inet_ntop(AF_INET, a->ip, ip, sizeof ip))
            return SLUICE_ERR_INVALID;
        n = with_port ? snprintf(buf, cap, "%s:%u", ip, a->port) : snprintf(buf, cap, "%s", ip);
    } else if (a->family == SLUICE_AF_INET6) {
        if (!inet_ntop(AF_INET6, a->ip, ip, sizeof ip))
            return SLUICE_ERR_INVALID;
        if (a->scope_id)
            snprintf(scope, sizeof scope, "%%%u", a->scope_id);
        n = with_port ? snprintf(buf, cap, "[%s%s]:%u", ip, scope, a->port)
                      : snprintf(buf, cap, "%s%s", ip, scope);
    } else {
        return SLUICE_ERR_INVALID;
    }
    if (n < 0 || (size_t)n >= cap)
        return SLUICE_ERR_NOSPACE;
    return n;
}

bool sluice_addr_equal_ip(const sluice_addr *a, const sluice_addr *b)
{
    if (a->family != b->family)
        return false;
    if (a->family == SLUICE_AF_INET)
        return memcmp(a->ip, b->ip, 4) == 0;
    if (a->family == SLUICE_AF_INET6)
        return memcmp(a->ip, b->ip, 16) == 0 && a->scope_id == b->scope_id;
    return true;
}

bool sluice_addr_equal(const sluice_addr *a, const sluice_addr *b)
{
    return a->port == b->port && sluice_addr_equal_ip(a, b);
}

int sluice_addr_to_sockaddr(const sluice_addr *a, void *sa, size_t cap)
{
    if (!a || !sa)
        return SLUICE_ERR_INVALID;
    if (a->family == SLUICE_AF_INET) {
        struct sockaddr_in s4;
        if (cap < sizeof s4)
            return SLUICE_ERR_NOSPACE;
        memset(&s4, 0, sizeof s4);
        s4.sin_family = AF_INET;
        s4.sin_port = htons(a->port);
        memcpy(&s4.sin_addr, a->ip, 4);
        memcpy(sa, &s4, sizeof s4);
        return (int)sizeof s4;
    }
    if (a->family == SLUICE_AF_INET6) {
        struct sockaddr_in6 s6;
        if (cap < sizeof s6)
            return SLUICE_ERR_NOSPACE;
        memset(&s6, 0, sizeof s6);
        s6.sin6_family = AF_INET6;
        s6.sin6_port = htons(a->port);
        s6.sin6_scope_id = a->scope_id;
        memcpy(&s6.sin6_addr, a->ip, 16);
        memcpy(sa, &s6, sizeof s6);
        return (int)sizeof s6;
    }
    return SLUICE_ERR_INVALID;
}

int sluice_addr_from_sockaddr(sluice_addr *a, const void *sa, size_t len)
{
    sa_family_t fam;

    if (!a || !sa || len < sizeof fam)
        return SLUICE_ERR_INVALID;
    memcpy(&fam, (const uint8_t *)sa + offsetof(struct sockaddr, sa_family), sizeof fam);
    memset(a, 0, sizeof *a);
    if (fam == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in s4;
        memcpy(&s4, sa, sizeof s4);
        a->family = SLUICE_AF_INET;
        memcpy(a->ip, &s4.sin_addr, 4);
        a->port = ntohs(s4.sin_port);
        return 0;
    }
    if (fam == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 s6;
        memcpy(&s6, sa, sizeof s6);
        a->family = SLUICE_AF_INET6;
        memcpy(a->ip, &s6.sin6_addr, 16);
        a->port = ntohs(s6.sin6_port);
        a->scope_id = s6.sin6_scope_id;
        return 0;
    }
    return SLUICE_ERR_INVALID;
}

/* IPv4 special-purpose ranges (RFC 6890 and the IANA registry). */
static uint32_t classify_v4(const uint8_t *ip)
{
    uint32_t v = rd32(ip), f = 0;
    static const struct {
        uint32_t net, mask, flag;
    } tab[] = {
        {0x00000000u, 0xFF000000u, SLUICE_ADDR_UNSPECIFIED}, /* 0/8 "this network" */
        {0x0A000000u, 0xFF000000u, SLUICE_ADDR_PRIVATE},     /* 10/8 */
        {0x64400000u, 0xFFC00000u, SLUICE_ADDR_SHARED},      /* 100.64/10 */
        {0x7F000000u, 0xFF000000u, SLUICE_ADDR_LOOPBACK},    /* 127/8 */
        {0xA9FE0000u, 0xFFFF0000u, SLUICE_ADDR_LINK_LOCAL},  /* 169.254/16 */
        {0xAC100000u, 0xFFF00000u, SLUICE_ADDR_PRIVATE},     /* 172.16/12 */
        {0xC0000000u, 0xFFFFFF00u, SLUICE_ADDR_RESERVED},    /* 192.0.0/24 IETF */
        {0xC0000200u, 0xFFFFFF00u, SLUICE_ADDR_DOCUMENTATION},/* 192.0.2/24 */
        {0xC0586300u, 0xFFFFFF00u, SLUICE_ADDR_RESERVED},    /* 192.88.99/24 6to4 anycast */
        {0xC0A80000u, 0xFFFF0000u, SLUICE_ADDR_PRIVATE},     /* 192.168/16 */
        {0xC6120000u, 0xFFFE0000u, SLUICE_ADDR_RESERVED},    /* 198.18/15 benchmarking */
        {0xC6336400u, 0xFFFFFF00u, SLUICE_ADDR_DOCUMENTATION},/* 198.51.100/24 */
        {0xCB007100u, 0xFFFFFF00u, SLUICE_ADDR_DOCUMENTATION},/* 203.0.113/24 */
        {0xE0000000u, 0xF0000000u, SLUICE_ADDR_MULTICAST},   /* 224/4 */
        {0xF0000000u, 0xF0000000u, SLUICE_ADDR_RESERVED},    /* 240/4 */
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if ((v & tab[i].mask) == tab[i].net)
            f |= tab[i].flag;
    if (v == 0xFFFFFFFFu)
        f |= SLUICE_ADDR_BROADCAST;
    return f;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

uint32_t sluice_addr_classify(const sluice_addr *a, sluice_addr *embedded)
{
    const uint8_t *ip = a->ip;
    uint32_t f = 0, form = 0;
    uint8_t v4[4];

    if (embedded)
        *embedded = *a;
    if (a->family == SLUICE_AF_INET)
        return classify_v4(ip);
    if (a->family != SLUICE_AF_INET6)
        return SLUICE_ADDR_UNSPECIFIED;

    if (all_zero(ip, 16))
        return SLUICE_ADDR_UNSPECIFIED;
    if (all_zero(ip, 15) && ip[15] == 1)
        return SLUICE_ADDR_LOOPBACK;

    /* Forms that embed an IPv4 address: classify the IPv4 address as well,
     * so no spelling of 127.0.0.1 or 10.0.0.1 slips past a policy. */
    if (all_zero(ip, 10) && ip[10] == 0xFF && ip[11] == 0xFF) {
        form = SLUICE_ADDR_V4MAPPED; /* ::ffff:a.b.c.d */
        memcpy(v4, ip + 12, 4);
    } else if (all_zero(ip, 8) && ip[8] == 0xFF && ip[9] == 0xFF && ip[10] == 0 && ip[11] == 0) {
        form = SLUICE_ADDR_V4TRANSLATED; /* ::ffff:0:a.b.c.d */
        memcpy(v4, ip + 12, 4);
    } else if (all_zero(ip, 12)) {
        form = SLUICE_ADDR_V4COMPAT; /* ::a.b.c.d */
        memcpy(v4, ip + 12, 4);
    } else if (ip[0] == 0x20 && ip[1] == 0x02) {
        form = SLUICE_ADDR_6TO4; /* 2002:AABB:CCDD::/48 */
        memcpy(v4, ip + 2, 4);
    } else if (ip[0] == 0x00 && ip[1] == 0x64 && ip[2] == 0xFF && ip[3] == 0x9B &&
               all_zero(ip + 4, 8)) {
        form = SLUICE_ADDR_NAT64; /* 64:ff9b::a.b.c.d (RFC 6052) */
        memcpy(v4, ip + 12, 4);
    } else if (ip[0] == 0x00 && ip[1] == 0x64 && ip[2] == 0xFF && ip[3] == 0x9B &&
               ip[4] == 0x00 && ip[5] == 0x01) {
        form = SLUICE_ADDR_NAT64; /* 64:ff9b:1::/48 local-use (RFC 8215) */
        /* RFC 6052 §2.2 /48: v4 in bytes 6,7 and 9,10 (byte 8 is "u"). */
        v4[0] = ip[6];
        v4[1] = ip[7];
        v4[2] = ip[9];
        v4[3] = ip[10];
    } else if (ip[0] == 0x20 && ip[1] == 0x01 && ip[2] == 0x00 && ip[3] == 0x00) {
        form = SLUICE_ADDR_TEREDO; /* 2001:0::/32, client v4 obfuscated (RFC 4380 §4) */
        for (int i = 0; i < 4; i++)
            v4[i] = (uint8_t)~ip[12 + i];
    }
    if (form) {
        f = form | classify_v4(v4);
        if (embedded) {
            sluice_addr_set_ipv4(embedded, v4, a->port);
        }
        return f;
    }

    if (ip[0] == 0xFF)
        f |= SLUICE_ADDR_MULTICAST;
    else if (ip[0] == 0xFE && (ip[1] & 0xC0) == 0x80)
        f |= SLUICE_ADDR_LINK_LOCAL;
    else if (ip[0] == 0xFE && (ip[1] & 0xC0) == 0xC0)
        f |= SLUICE_ADDR_PRIVATE; /* fec0::/10 site-local (deprecated, RFC 3879) */
    else if ((ip[0] & 0xFE) == 0xFC)
        f |= SLUICE_ADDR_ULA;
    else if (ip[0] == 0x20 && ip[1] == 0x01 && ip[2] == 0x0D && ip[3] == 0xB8)
        f |= SLUICE_ADDR_DOCUMENTATION;
    else if (ip[0] == 0x01 && all_zero(ip + 1, 7))
        f |= SLUICE_ADDR_RESERVED; /* 100::/64 discard-only (RFC 6666) */
    else if (ip[0] == 0x20 && ip[1] == 0x01 && ip[2] == 0x00 && ip[3] == 0x02 && ip[4] == 0 &&
             ip[5] == 0)
        f |= SLUICE_ADDR_RESERVED; /* 2001:2::/48 benchmarking (RFC 5180, RFC 6890) */
    else if (ip[0] == 0x20 && ip[1] == 0x01 && ip[2] == 0x00 && (ip[3] & 0xF0) == 0x20)
        f |= SLUICE_ADDR_RESERVED; /* 2001:20::/28 ORCHIDv2 */
    else if ((ip[0] & 0xE0) != 0x20)
        f |= SLUICE_ADDR_RESERVED; /* outside 2000::/3 global unicast */
    return f;
}

const char *sluice_addr_class_name(uint32_t flag)
{
    switch (flag) {
    case SLUICE_ADDR_UNSPECIFIED: return "unspecified";
    case SLUICE_ADDR_LOOPBACK: return "loopback";
    case SLUICE_ADDR_MULTICAST: return "multicast";
    case SLUICE_ADDR_BROADCAST: return "broadcast";
    case SLUICE_ADDR_LINK_LOCAL: return "link-local";
    case SLUICE_ADDR_PRIVATE: return "private";
    case SLUICE_ADDR_ULA: return "unique-local";
    case SLUICE_ADDR_SHARED: return "shared";
    case SLUICE_ADDR_RESERVED: return "reserved";
    case SLUICE_ADDR_DOCUMENTATION: return "documentation";
    case SLUICE_ADDR_V4MAPPED: return "v4-mapped";
    case SLUICE_ADDR_V4COMPAT: return "v4-compatible";
    case SLUICE_ADDR_6TO4: return "6to4";
    case SLUICE_ADDR_NAT64: return "nat64";
    case SLUICE_ADDR_TEREDO: return "teredo";
    case SLUICE_ADDR_V4TRANSLATED: return "v4-translated";
    }
    return "unknown";
}
