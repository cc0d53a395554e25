/* SPDX-License-Identifier: MIT */
/* ICE candidates: priorities (RFC 8445 §5.1.2), foundations (§5.1.1.3) and
 * the SDP candidate attribute (RFC 8839 §5.1). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ice/internal.h"

uint32_t sluice_ice_priority(sluice_ice_cand_type type, uint16_t local_pref, uint16_t component)
{
    uint32_t tp;
    switch (type) {
    case SLUICE_ICE_CAND_HOST: tp = ICE_TYPE_PREF_HOST; break;
    case SLUICE_ICE_CAND_PRFLX: tp = ICE_TYPE_PREF_PRFLX; break;
    case SLUICE_ICE_CAND_SRFLX: tp = ICE_TYPE_PREF_SRFLX; break;
    default: tp = ICE_TYPE_PREF_RELAY; break;
    }
    if (component < 1)
        component = 1;
    if (component > 256)
        component = 256;
    /* §5.1.2.1 */
    return (tp << 24) + ((uint32_t)local_pref << 8) + (256u - component);
}

const char *sluice_ice_cand_type_name(sluice_ice_cand_type t)
{
    switch (t) {
    case SLUICE_ICE_CAND_HOST: return "host";
    case SLUICE_ICE_CAND_SRFLX: return "srflx";
    case SLUICE_ICE_CAND_PRFLX: return "prflx";
    case SLUICE_ICE_CAND_RELAY: return "relay";
    }
    return "?";
}

/* RFC 8839 §5.1: ice-char = ALPHA / DIGIT / "+" / "/". */
static bool ice_char(int c)
{
    return isalnum((unsigned char)c) || c == '+' || c == '/';
}

bool ice_chars_ok(const char *s, size_t min, size_t max)
{
    size_t n = 0;
    if (!s)
        return false;
    for (; s[n]; n++) {
        if (n >= max || !ice_char(s[n]))
            return false;
    }
    return n >= min;
}

/* §5.1.1.3: the same foundation for candidates of the same type, from the
 * same base IP, learned from the same server, over the same transport. A
 * 64-bit FNV-1a of those, printed as 8 base64-ish ice-chars. */
void ice_foundation(char out[SLUICE_ICE_FOUNDATION_MAX + 1], sluice_ice_cand_type type,
                    const sluice_addr *base, const sluice_addr *server,
                    sluice_transport server_transport)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint64_t h = 1469598103934665603ull;
    uint8_t buf[1 + 1 + 16 + 1 + 16 + 2 + 1];
    size_t n = 0;

    buf[n++] = (uint8_t)type;
    buf[n++] = base->family;
    memcpy(buf + n, base->ip, 16);
    n += 16;
    buf[n++] = server ? server->family : 0;
    if (server) {
        memcpy(buf + n, server->ip, 16);
        n += 16;
        buf[n++] = (uint8_t)(server->port >> 8);
        buf[n++] = (uint8_t)server->port;
        /* §5.1.1.3: and the same transport to the server (UDP foundations
         * stay what they were). */
        if (server_transport != SLUICE_TRANSPORT_UDP)
            buf[n++] = (uint8_t)server_transport;
    }
    for (size_t i = 0; i < n; i++) {
        h ^= buf[i];
        h *= 1099511628211ull;
    }
    for (int i = 0; i < 8; i++) {
        out[i] = digits[h & 63];
        h >>= 6;
    }
    out[8] = '\0';
}

static bool eq_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
    return *a == *b;
}

/* Next space-separated token of *p into tok (cap bytes). */
static bool token(const char **p, char *tok, size_t cap)
{
    const char *s = *p;
    size_t n = 0;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s || *s == '\r' || *s == '\n')
        return false;
    while (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') {
        if (n + 1 >= cap)
            return false;
        tok[n++] = *s++;
    }
    tok[n] = '\0';
    *p = s;
    return true;
}

static bool parse_uint(const char *t, unsigned long max, unsigned long *out)
{
    char *end;
    if (!isdigit((unsigned char)t[0]) || strlen(t) > 10)
        return false;
    errno = 0;
    *out = strtoul(t, &end, 10);
    return errno == 0 && *end == '\0' && *out <= max;
}

/* An address token: IPv4 or IPv6 literal. FQDNs (and mDNS .local names,
 * RFC 8839 §5.1 allows FQDNs) are not resolved by the core. */
static int parse_ip(const char *t, unsigned long port, sluice_addr *a)
{
    char buf[80];
    int rc;
    if (strchr(t, ':')) {
        if (snprintf(buf, sizeof buf, "[%s]:%lu", t, port) >= (int)sizeof buf)
            return SLUICE_ERR_MALFORMED;
    } else {
        if (snprintf(buf, sizeof buf, "%s:%lu", t, port) >= (int)sizeof buf)
            return SLUICE_ERR_MALFORMED;
    }
    rc = sluice_addr_parse(a, buf, 0);
    if (rc < 0) {
        /* Not a literal: a name (anything with a letter and a dot). */
        for (const char *q = t; *q; q++)
            if (isalpha((unsigned char)*q))
                return SLUICE_ERR_UNSUPPORTED;
        return SLUICE_ERR_MALFORMED;
    }
    a->port = (uint16_t)port;
    return 0;
}

int sluice_ice_candidate_parse(sluice_ice_candidate *c, const char *text)
{
    char tok[SLUICE_ICE_CANDIDATE_TEXT_MAX];
    char addr_tok[80];
    unsigned long v, port;
    const char *p;
    int rc;

    if (!c || !text)
        return SLUICE_ERR_INVALID;
    memset(c, 0, sizeof *c);
    if (strlen(text) > 1024)
        return SLUICE_ERR_MALFORMED;
    p = text;
    if (strncmp(p, "a=", 2) == 0)
        p += 2;
    if (strncmp(p, "candidate:", 10) != 0)
        return SLUICE_ERR_MALFORMED;
    p += 10;
    /* foundation */
    if (!token(&p, tok, sizeof tok) || !ice_chars_ok(tok, 1, SLUICE_ICE_FOUNDATION_MAX))
        return SLUICE_ERR_MALFORMED;
    memcpy(c->foundation, tok, strlen(tok) + 1);
    /* component-id: 1*3DIGIT, 1..256 */
    if (!token(&p, tok, sizeof tok) || !parse_uint(tok, 256, &v) || v < 1)
        return SLUICE_ERR_MALFORMED;
    c->component = (uint16_t)v;
    /* transport */
    if (!token(&p, tok, sizeof tok))
        return SLUICE_ERR_MALFORMED;
    if (!eq_nocase(tok, "udp"))
        return eq_nocase(tok, "tcp") ? SLUICE_ERR_UNSUPPORTED : SLUICE_ERR_MALFORMED;
    c->transport = SLUICE_TRANSPORT_UDP;
    /* priority: 1*10DIGIT, 1..2^31-1 */
    if (!token(&p, tok, sizeof tok) || !parse_uint(tok, 0x7FFFFFFFul, &v) || v < 1)
        return SLUICE_ERR_MALFORMED;
    c->priority = (uint32_t)v;
    /* connection-address and port */
    if (!token(&p, addr_tok, sizeof addr_tok))
        return SLUICE_ERR_MALFORMED;
    if (!token(&p, tok, sizeof tok) || !parse_uint(tok, 65535, &port))
        return SLUICE_ERR_MALFORMED;
    rc = parse_ip(addr_tok, port, &c->addr);
    if (rc < 0)
        return rc;
    /* "typ" cand-type */
    if (!token(&p, tok, sizeof tok) || strcmp(tok, "typ") != 0)
        return SLUICE_ERR_MALFORMED;
    if (!token(&p, tok, sizeof tok))
        return SLUICE_ERR_MALFORMED;
    if (strcmp(tok, "host") == 0)
        c->type = SLUICE_ICE_CAND_HOST;
    else if (strcmp(tok, "srflx") == 0)
        c->type = SLUICE_ICE_CAND_SRFLX;
    else if (strcmp(tok, "prflx") == 0)
        c->type = SLUICE_ICE_CAND_PRFLX;
    else if (strcmp(tok, "relay") == 0)
        c->type = SLUICE_ICE_CAND_RELAY;
    else
        return SLUICE_ERR_MALFORMED;
    /* [raddr A rport P] then extension att-name att-value pairs. */
    char raddr[80] = "";
    unsigned long rport = 0;
    bool have_rport = false;
    while (token(&p, tok, sizeof tok)) {
        char val[SLUICE_ICE_CANDIDATE_TEXT_MAX];
        if (!token(&p, val, sizeof val))
            return SLUICE_ERR_MALFORMED;
        if (strcmp(tok, "raddr") == 0) {
            if (strlen(val) >= sizeof raddr)
                return SLUICE_ERR_MALFORMED;
            memcpy(raddr, val, strlen(val) + 1);
        } else if (strcmp(tok, "rport") == 0) {
            if (!parse_uint(val, 65535, &rport))
                return SLUICE_ERR_MALFORMED;
            have_rport = true;
        }
        /* generation, ufrag, network-id, network-cost, tcptype...: skipped */
    }
    if (raddr[0] && have_rport) {
        /* A related address we cannot parse (browsers send "0.0.0.0" or a
         * name) is only informational: ignore it. */
        if (parse_ip(raddr, rport, &c->related) < 0)
            memset(&c->related, 0, sizeof c->related);
    }
    return 0;
}

int sluice_ice_candidate_format(const sluice_ice_candidate *c, char *buf, size_t cap)
{
    char ip[SLUICE_ADDR_STRLEN], rip[SLUICE_ADDR_STRLEN];
    int n;

    if (!c || !buf)
        return SLUICE_ERR_INVALID;
    if (sluice_addr_format(&c->addr, false, ip, sizeof ip) < 0)
        return SLUICE_ERR_INVALID;
    /* sluice_addr_format puts IPv6 in brackets only with a port. */
    n = snprintf(buf, cap, "candidate:%s %u udp %u %s %u typ %s", c->foundation,
                 (unsigned)c->component, (unsigned)c->priority, ip, (unsigned)c->addr.port,
                 sluice_ice_cand_type_name(c->type));
    if (n < 0 || (size_t)n >= cap)
        return SLUICE_ERR_NOSPACE;
    if (c->related.family != SLUICE_AF_NONE && c->type != SLUICE_ICE_CAND_HOST) {
        if (sluice_addr_format(&c->related, false, rip, sizeof rip) < 0)
            return SLUICE_ERR_INVALID;
        int m = snprintf(buf + n, cap - (size_t)n, " raddr %s rport %u", rip,
                         (unsigned)c->related.port);
        if (m < 0 || (size_t)m >= cap - (size_t)n)
            return SLUICE_ERR_NOSPACE;
        n += m;
    }
    return n;
}
