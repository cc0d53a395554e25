/* SPDX-License-Identifier: MIT */
/* Unit tests for src/common/addr.c: parsing, formatting, comparison,
 * sockaddr conversion and the peer-policy classifier. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "sluice/addr.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------ */
/* Parsing */

struct parse_case {
    const char *text;
    uint16_t default_port;
    uint8_t family;
    const char *ip;   /* as inet_pton reads it */
    uint16_t port;
    uint32_t scope_id;
};

static const struct parse_case parse_ok[] = {
    {"1.2.3.4", 3478, SLUICE_AF_INET, "1.2.3.4", 3478, 0},
    {"1.2.3.4:80", 3478, SLUICE_AF_INET, "1.2.3.4", 80, 0},
    {"1.2.3.4:0", 3478, SLUICE_AF_INET, "1.2.3.4", 0, 0},
    {"255.255.255.255:65535", 1, SLUICE_AF_INET, "255.255.255.255", 65535, 0},
    {"0.0.0.0", 0, SLUICE_AF_INET, "0.0.0.0", 0, 0},
    {"10.0.0.1:00080", 1, SLUICE_AF_INET, "10.0.0.1", 80, 0},
    {"::1", 3478, SLUICE_AF_INET6, "::1", 3478, 0},
    {"::", 5349, SLUICE_AF_INET6, "::", 5349, 0},
    {"[::]:0", 1, SLUICE_AF_INET6, "::", 0, 0},
    {"[::1]:80", 3478, SLUICE_AF_INET6, "::1", 80, 0},
    {"[::1]", 3478, SLUICE_AF_INET6, "::1", 3478, 0},
    {"2001:db8::1", 3478, SLUICE_AF_INET6, "2001:db8::1", 3478, 0},
    {"[2001:db8::1]:5349", 3478, SLUICE_AF_INET6, "2001:db8::1", 5349, 0},
    {"[2001:db8:0:0:1:0:0:1]:65535", 0, SLUICE_AF_INET6, "2001:db8::1:0:0:1", 65535, 0},
    {"::ffff:1.2.3.4", 7, SLUICE_AF_INET6, "::ffff:1.2.3.4", 7, 0},
    {"[::ffff:1.2.3.4]:9", 7, SLUICE_AF_INET6, "::ffff:1.2.3.4", 9, 0},
    {"[fe80::1%1]:80", 3478, SLUICE_AF_INET6, "fe80::1", 80, 1},
    {"fe80::1%2", 3478, SLUICE_AF_INET6, "fe80::1", 3478, 2},
    {"[fe80::abcd%4294967295]:1", 0, SLUICE_AF_INET6, "fe80::abcd", 1, 4294967295u},
    {"FE80::ABCD", 0, SLUICE_AF_INET6, "fe80::abcd", 0, 0},
};

static void test_parse_ok(void)
{
    for (size_t i = 0; i < N(parse_ok); i++) {
        const struct parse_case *c = &parse_ok[i];
        sluice_addr a;
        uint8_t want[16] = {0};
        int rc = sluice_addr_parse(&a, c->text, c->default_port);

        CHECK_EQ(rc, 0);
        if (rc != 0) {
            fprintf(stderr, "#   input \"%s\"\n", c->text);
            continue;
        }
        CHECK_EQ(a.family, c->family);
        CHECK_EQ(inet_pton(c->family == SLUICE_AF_INET ? AF_INET : AF_INET6, c->ip, want), 1);
        CHECK_MEM(a.ip, want, 16); /* IPv4: the rest stays zero */
        CHECK_EQ(a.port, c->port);
        CHECK_EQ(a.scope_id, c->scope_id);
    }
}

static void test_parse_reject(void)
{
    static const char *const bad[] = {
        "",
        "1.2.3",
        "1.2.3.4:",
        "1.2.3.4:65536",
        "1.2.3.4:99999",
        "1.2.3.4:123456",
        "1.2.3.4:-1",
        "1.2.3.4:+80",
        "1.2.3.4: 80",
        "1.2.3.4:80 ",
        "1.2.3.4:80x",
        "1.2.3.4:0x50",
        "1.2.3.4 ",
        " 1.2.3.4",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.-4",
        ":80",
        "[::1",
        "[::1]x",
        "[::1]:",
        "[::1]:65536",
        "[::1]:80:80",
        "[::1]]:80",
        "[]",
        "[]:80",
        "::1:80x",
        "::1::2",
        "1:2:3:4:5:6:7:8:9",
        "[fe80::1%]:80",
        "fe80::1%",
        "[1.2.3.4:80]",
        "garbage",
        "stun.example.org:3478", /* the core does no DNS */
        "localhost",
        "\x01\x02\x03",
        "12345",
    };
    char longer[301];
    sluice_addr a;

    for (size_t i = 0; i < N(bad); i++) {
        int rc = sluice_addr_parse(&a, bad[i], 3478);
        CHECK_EQ(rc, SLUICE_ERR_MALFORMED);
        if (rc != SLUICE_ERR_MALFORMED)
            fprintf(stderr, "#   input \"%s\" accepted as family %u\n", bad[i], a.family);
    }

    /* A 300-character string must not overflow any internal buffer. */
    memset(longer, '1', 300);
    longer[300] = '\0';
    CHECK_EQ(sluice_addr_parse(&a, longer, 1), SLUICE_ERR_MALFORMED);
    for (size_t i = 0; i < 300; i++)
        longer[i] = (char)(i % 5 == 4 ? ':' : 'f');
    CHECK_EQ(sluice_addr_parse(&a, longer, 1), SLUICE_ERR_MALFORMED);
    longer[0] = '[';
    longer[298] = ']';
    longer[299] = '1';
    CHECK_EQ(sluice_addr_parse(&a, longer, 1), SLUICE_ERR_MALFORMED);

    CHECK_EQ(sluice_addr_parse(&a, NULL, 1), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_addr_parse(NULL, "1.2.3.4", 1), SLUICE_ERR_INVALID);
}

/* ------------------------------------------------------------------------ */
/* Formatting */

struct format_case {
    const char *text;
    const char *with_port;
    const char *without_port;
};

static const struct format_case format_cases[] = {
    {"1.2.3.4:80", "1.2.3.4:80", "1.2.3.4"},
    {"255.255.255.255:65535", "255.255.255.255:65535", "255.255.255.255"},
    {"0.0.0.0:0", "0.0.0.0:0", "0.0.0.0"},
    {"[::1]:80", "[::1]:80", "::1"},
    {"[::]:0", "[::]:0", "::"},
    {"[2001:DB8:0:0:0:0:0:1]:3478", "[2001:db8::1]:3478", "2001:db8::1"},
    {"[fe80::1%1]:80", "[fe80::1%1]:80", "fe80::1%1"},
    {"[::ffff:10.0.0.1]:1", "[::ffff:10.0.0.1]:1", "::ffff:10.0.0.1"},
    /* The longest form SLUICE_ADDR_STRLEN is sized for. */
    {"[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%4294967295]:65535",
     "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535",
     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295"},
    {"[1111:2222:3333:4444:5555:6666:7777:8888]:65535",
     "[1111:2222:3333:4444:5555:6666:7777:8888]:65535",
     "1111:2222:3333:4444:5555:6666:7777:8888"},
};

static void check_format_sizes(const sluice_addr *a, bool with_port, const char *want)
{
    size_t n = strlen(want);
    char buf[SLUICE_ADDR_STRLEN + 16];

    /* Every buffer too small by at least one byte: NOSPACE, nothing past cap. */
    for (size_t cap = 0; cap <= n; cap++) {
        memset(buf, 0xA5, sizeof buf);
        CHECK_EQ(sluice_addr_format(a, with_port, buf, cap), SLUICE_ERR_NOSPACE);
        for (size_t j = cap; j < sizeof buf; j++)
            if ((uint8_t)buf[j] != 0xA5) {
                CHECK((uint8_t)buf[j] == 0xA5);
                break;
            }
    }
    memset(buf, 0xA5, sizeof buf);
    CHECK_EQ(sluice_addr_format(a, with_port, buf, n + 1), (int)n);
    CHECK_STR(buf, want);
    CHECK_EQ((uint8_t)buf[n + 1], 0xA5);
    CHECK_EQ(sluice_addr_format(a, with_port, buf, SLUICE_ADDR_STRLEN), (int)n);
}

static void test_format(void)
{
    for (size_t i = 0; i < N(format_cases); i++) {
        const struct format_case *c = &format_cases[i];
        sluice_addr a, b;
        char buf[SLUICE_ADDR_STRLEN];

        CHECK_EQ(sluice_addr_parse(&a, c->text, 0), 0);
        CHECK(strlen(c->with_port) < SLUICE_ADDR_STRLEN);
        check_format_sizes(&a, true, c->with_port);
        check_format_sizes(&a, false, c->without_port);

        /* Round trip: format, parse again, same value. */
        CHECK(sluice_addr_format(&a, true, buf, sizeof buf) > 0);
        CHECK_EQ(sluice_addr_parse(&b, buf, 9), 0);
        CHECK(sluice_addr_equal(&a, &b));
        CHECK_EQ(b.scope_id, a.scope_id);
        CHECK(sluice_addr_format(&a, false, buf, sizeof buf) > 0);
        CHECK_EQ(sluice_addr_parse(&b, buf, a.port), 0);
        CHECK(sluice_addr_equal(&a, &b));
    }
}

static void test_format_invalid(void)
{
    sluice_addr a;
    char buf[SLUICE_ADDR_STRLEN];

    memset(&a, 0, sizeof a); /* SLUICE_AF_NONE */
    CHECK_EQ(sluice_addr_format(&a, true, buf, sizeof buf), SLUICE_ERR_INVALID);
    a.family = 5;
    CHECK_EQ(sluice_addr_format(&a, false, buf, sizeof buf), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_addr_format(NULL, false, buf, sizeof buf), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_addr_parse(&a, "1.2.3.4", 1), 0);
    CHECK_EQ(sluice_addr_format(&a, false, NULL, 16), SLUICE_ERR_INVALID);
}

static void test_set(void)
{
    static const uint8_t v4[4] = {192, 0, 2, 7};
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 9};
    sluice_addr a;
    char buf[SLUICE_ADDR_STRLEN];

    memset(&a, 0xFF, sizeof a);
    sluice_addr_set_ipv4(&a, v4, 1234);
    CHECK_EQ(a.family, SLUICE_AF_INET);
    CHECK_EQ(a.port, 1234);
    CHECK_EQ(a.scope_id, 0);
    for (int i = 4; i < 16; i++)
        CHECK_EQ(a.ip[i], 0);
    CHECK_EQ(sluice_addr_format(&a, true, buf, sizeof buf), 14);
    CHECK_STR(buf, "192.0.2.7:1234");

    memset(&a, 0xFF, sizeof a);
    sluice_addr_set_ipv6(&a, v6, 4321);
    CHECK_EQ(a.family, SLUICE_AF_INET6);
    CHECK_EQ(a.scope_id, 0);
    CHECK_EQ(sluice_addr_format(&a, true, buf, sizeof buf), 18);
    CHECK_STR(buf, "[2001:db8::9]:4321");
}

/* ------------------------------------------------------------------------ */
/* Comparison */

static void test_equal(void)
{
    static const struct {
        const char *a, *b;
        bool equal, equal_ip;
    } cases[] = {
        {"1.2.3.4:80", "1.2.3.4:80", true, true},
        {"1.2.3.4:80", "1.2.3.4:81", false, true},
        {"1.2.3.4:80", "1.2.3.5:80", false, false},
        {"1.2.3.4:80", "4.3.2.1:80", false, false},
        {"[::1]:80", "[::1]:80", true, true},
        {"[::1]:80", "[::1]:8080", false, true},
        {"[::1]:80", "[::2]:80", false, false},
        {"[2001:db8::1]:80", "[2001:db8::1:0]:80", false, false},
        /* Same four bytes, other family: never equal. */
        {"1.2.3.4:80", "[::ffff:1.2.3.4]:80", false, false},
        {"0.0.0.0:80", "[::]:80", false, false},
        {"[fe80::1%1]:80", "[fe80::1%1]:80", true, true},
        {"[fe80::1%1]:80", "[fe80::1%2]:80", false, false},
    };

    for (size_t i = 0; i < N(cases); i++) {
        sluice_addr a, b;
        CHECK_EQ(sluice_addr_parse(&a, cases[i].a, 0), 0);
        CHECK_EQ(sluice_addr_parse(&b, cases[i].b, 0), 0);
        CHECK_EQ(sluice_addr_equal(&a, &b), cases[i].equal);
        CHECK_EQ(sluice_addr_equal(&b, &a), cases[i].equal);
        CHECK_EQ(sluice_addr_equal_ip(&a, &b), cases[i].equal_ip);
        CHECK_EQ(sluice_addr_equal_ip(&b, &a), cases[i].equal_ip);
        CHECK(sluice_addr_equal(&a, &a));
        CHECK(sluice_addr_equal_ip(&b, &b));
        if (sluice_addr_equal(&a, &b) != cases[i].equal)
            fprintf(stderr, "#   %s vs %s\n", cases[i].a, cases[i].b);
    }
}

/* ------------------------------------------------------------------------ */
/* sockaddr conversion */

static void test_sockaddr_v4(void)
{
    struct sockaddr_in s4;
    struct sockaddr_storage ss;
    sluice_addr a, b;

    CHECK_EQ(sluice_addr_parse(&a, "192.0.2.33:3478", 0), 0);
    for (size_t cap = 0; cap < sizeof s4; cap++)
        CHECK_EQ(sluice_addr_to_sockaddr(&a, &ss, cap), SLUICE_ERR_NOSPACE);
    memset(&ss, 0xCC, sizeof ss);
    CHECK_EQ(sluice_addr_to_sockaddr(&a, &ss, sizeof ss), (int)sizeof s4);
    memcpy(&s4, &ss, sizeof s4);
    CHECK_EQ(s4.sin_family, AF_INET);
    CHECK_EQ(s4.sin_port, htons(3478));
    CHECK_EQ(s4.sin_addr.s_addr, htonl(0xC0000221u));

    CHECK_EQ(sluice_addr_from_sockaddr(&b, &ss, sizeof s4), 0);
    CHECK(sluice_addr_equal(&a, &b));
    CHECK_EQ(sluice_addr_from_sockaddr(&b, &ss, sizeof s4 - 1), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_addr_from_sockaddr(&b, &ss, 0), SLUICE_ERR_INVALID);
}

static void test_sockaddr_v6(void)
{
    static const uint8_t want[16] = {0xfe, 0x80, [14] = 0xab, [15] = 0xcd};
    struct sockaddr_in6 s6;
    struct sockaddr_storage ss;
    sluice_addr a, b;

    CHECK_EQ(sluice_addr_parse(&a, "[fe80::abcd%7]:65535", 0), 0);
    for (size_t cap = 0; cap < sizeof s6; cap++)
        CHECK_EQ(sluice_addr_to_sockaddr(&a, &ss, cap), SLUICE_ERR_NOSPACE);
    memset(&ss, 0xCC, sizeof ss);
    CHECK_EQ(sluice_addr_to_sockaddr(&a, &ss, sizeof s6), (int)sizeof s6);
    memcpy(&s6, &ss, sizeof s6);
    CHECK_EQ(s6.sin6_family, AF_INET6);
    CHECK_EQ(s6.sin6_port, htons(65535));
    CHECK_EQ(s6.sin6_scope_id, 7);
    CHECK_EQ(s6.sin6_flowinfo, 0);
    CHECK_MEM(&s6.sin6_addr, want, 16);

    CHECK_EQ(sluice_addr_from_sockaddr(&b, &ss, sizeof s6), 0);
    CHECK(sluice_addr_equal(&a, &b));
    CHECK_EQ(b.scope_id, 7);
    CHECK_EQ(sluice_addr_from_sockaddr(&b, &ss, sizeof s6 - 1), SLUICE_ERR_INVALID);

    /* Global address, no scope. */
    CHECK_EQ(sluice_addr_parse(&a, "[2001:db8::5]:1", 0), 0);
    CHECK_EQ(sluice_addr_to_sockaddr(&a, &s6, sizeof s6), (int)sizeof s6);
    CHECK_EQ(sluice_addr_from_sockaddr(&b, &s6, sizeof s6), 0);
    CHECK(sluice_addr_equal(&a, &b));
}

static void test_sockaddr_invalid(void)
{
    struct sockaddr_un su;
    struct sockaddr_storage ss;
    sluice_addr a;

    memset(&a, 0, sizeof a);
    CHECK_EQ(sluice_addr_to_sockaddr(&a, &ss, sizeof ss), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_addr_to_sockaddr(NULL, &ss, sizeof ss), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_addr_parse(&a, "1.2.3.4", 1), 0);
    CHECK_EQ(sluice_addr_to_sockaddr(&a, NULL, sizeof ss), SLUICE_ERR_INVALID);

    memset(&su, 0, sizeof su);
    su.sun_family = AF_UNIX;
    CHECK_EQ(sluice_addr_from_sockaddr(&a, &su, sizeof su), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_addr_from_sockaddr(NULL, &su, sizeof su), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_addr_from_sockaddr(&a, NULL, sizeof su), SLUICE_ERR_INVALID);
}

/* ------------------------------------------------------------------------ */
/* Classification */

#define UNSPEC SLUICE_ADDR_UNSPECIFIED
#define LOOP SLUICE_ADDR_LOOPBACK
#define MCAST SLUICE_ADDR_MULTICAST
#define BCAST SLUICE_ADDR_BROADCAST
#define LL SLUICE_ADDR_LINK_LOCAL
#define PRIV SLUICE_ADDR_PRIVATE
#define ULA SLUICE_ADDR_ULA
#define SHARED SLUICE_ADDR_SHARED
#define RES SLUICE_ADDR_RESERVED
#define DOC SLUICE_ADDR_DOCUMENTATION
#define MAPPED SLUICE_ADDR_V4MAPPED
#define COMPAT SLUICE_ADDR_V4COMPAT
#define SIX2FOUR SLUICE_ADDR_6TO4
#define NAT64 SLUICE_ADDR_NAT64
#define TEREDO SLUICE_ADDR_TEREDO
#define XLAT SLUICE_ADDR_V4TRANSLATED

struct class_case {
    const char *text;
    uint32_t flags;
    const char *embedded; /* IPv4 address carried inside an IPv6 form, or NULL */
};

static const struct class_case class_cases[] = {
    /* IPv4, RFC 6890 special-purpose registry, with both neighbours of
     * every boundary. */
    {"0.0.0.0", UNSPEC, NULL},
    {"0.0.0.1", UNSPEC, NULL},
    {"0.255.255.255", UNSPEC, NULL},
    {"1.0.0.0", 0, NULL},
    {"1.1.1.1", 0, NULL},
    {"8.8.8.8", 0, NULL},
    {"9.255.255.255", 0, NULL},
    {"10.0.0.0", PRIV, NULL},
    {"10.0.0.1", PRIV, NULL},
    {"10.255.255.255", PRIV, NULL},
    {"11.0.0.0", 0, NULL},
    {"100.63.255.255", 0, NULL},
    {"100.64.0.0", SHARED, NULL},
    {"100.100.100.100", SHARED, NULL},
    {"100.127.255.255", SHARED, NULL},
    {"100.128.0.0", 0, NULL},
    {"126.255.255.255", 0, NULL},
    {"127.0.0.0", LOOP, NULL},
    {"127.0.0.1", LOOP, NULL},
    {"127.1.2.3", LOOP, NULL},
    {"127.255.255.255", LOOP, NULL},
    {"128.0.0.0", 0, NULL},
    {"169.253.255.255", 0, NULL},
    {"169.254.0.0", LL, NULL},
    {"169.254.169.254", LL, NULL}, /* cloud metadata services */
    {"169.254.255.255", LL, NULL},
    {"169.255.0.0", 0, NULL},
    {"172.15.255.255", 0, NULL},
    {"172.16.0.0", PRIV, NULL},
    {"172.20.1.1", PRIV, NULL},
    {"172.31.255.255", PRIV, NULL},
    {"172.32.0.0", 0, NULL},
    {"191.255.255.255", 0, NULL},
    {"192.0.0.0", RES, NULL},
    {"192.0.0.255", RES, NULL},
    {"192.0.1.0", 0, NULL},
    {"192.0.1.255", 0, NULL},
    {"192.0.2.0", DOC, NULL},
    {"192.0.2.1", DOC, NULL},
    {"192.0.2.255", DOC, NULL},
    {"192.0.3.0", 0, NULL},
    {"192.88.99.1", RES, NULL}, /* 6to4 relay anycast, RFC 7526 */
    {"192.167.255.255", 0, NULL},
    {"192.168.0.0", PRIV, NULL},
    {"192.168.1.1", PRIV, NULL},
    {"192.168.255.255", PRIV, NULL},
    {"192.169.0.0", 0, NULL},
    {"198.17.255.255", 0, NULL},
    {"198.18.0.0", RES, NULL},
    {"198.19.255.255", RES, NULL},
    {"198.20.0.0", 0, NULL},
    {"198.51.99.255", 0, NULL},
    {"198.51.100.0", DOC, NULL},
    {"198.51.100.255", DOC, NULL},
    {"198.51.101.0", 0, NULL},
    {"203.0.112.255", 0, NULL},
    {"203.0.113.0", DOC, NULL},
    {"203.0.113.255", DOC, NULL},
    {"203.0.114.0", 0, NULL},
    {"223.255.255.255", 0, NULL},
    {"224.0.0.0", MCAST, NULL},
    {"224.0.0.1", MCAST, NULL},
    {"239.255.255.255", MCAST, NULL},
    {"240.0.0.0", RES, NULL},
    {"255.255.255.254", RES, NULL},
    {"255.255.255.255", RES | BCAST, NULL},

    /* IPv6 native ranges (RFC 4291, RFC 6890). */
    {"::", UNSPEC, NULL},
    {"::1", LOOP, NULL},
    {"ff00::", MCAST, NULL},
    {"ff02::1", MCAST, NULL},
    {"ff0e::101", MCAST, NULL},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", MCAST, NULL},
    {"fe80::", LL, NULL},
    {"fe80::1", LL, NULL},
    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", LL, NULL},
    {"fec0::1", PRIV, NULL}, /* site-local, RFC 3879 */
    {"feff:ffff::1", PRIV, NULL},
    {"fc00::", ULA, NULL},
    {"fd12:3456:789a::1", ULA, NULL},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ULA, NULL},
    {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RES, NULL},
    {"fe7f:ffff::1", RES, NULL},
    {"100::", RES, NULL}, /* discard-only, RFC 6666 */
    {"100::ffff:ffff:ffff:ffff", RES, NULL},
    {"2001:20::1", RES, NULL}, /* ORCHIDv2, RFC 7343 */
    {"2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", RES, NULL},
    {"2001:30::", 0, NULL},
    /* Benchmarking, RFC 5180 (RFC 6890 §2.2.3: not globally reachable),
     * the IPv6 twin of 198.18/15. */
    {"2001:2::", RES, NULL},
    {"2001:2:0:ffff:ffff:ffff:ffff:ffff", RES, NULL},
    {"2001:1::2", 0, NULL}, /* TURN anycast, RFC 8155: global */
    {"2001:3::1", 0, NULL}, /* AMT, RFC 7450: global */
    {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RES, NULL},
    {"4000::1", RES, NULL},
    {"2000::", 0, NULL},
    {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", 0, NULL},
    {"2001:db8::", DOC, NULL},
    {"2001:db8::1", DOC, NULL},
    {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", DOC, NULL},
    {"2001:db9::", 0, NULL},
    {"2a00:1450::1", 0, NULL},
    {"2a00:1450:4001:82a::200e", 0, NULL},
    {"2001:4860:4860::8888", 0, NULL},
    {"2606:4700:4700::1111", 0, NULL},

    /* IPv4-in-IPv6 spellings: coturn CVE-2020-26262 let peers 0.0.0.0 and
     * [::] reach the relay's own loopback services; each of these forms
     * must carry both the form and the embedded address's class. */
    {"::ffff:127.0.0.1", MAPPED | LOOP, "127.0.0.1"},
    {"::ffff:7f00:1", MAPPED | LOOP, "127.0.0.1"},
    {"::ffff:127.255.255.255", MAPPED | LOOP, "127.255.255.255"},
    {"::ffff:0.0.0.0", MAPPED | UNSPEC, "0.0.0.0"},
    {"::ffff:10.0.0.1", MAPPED | PRIV, "10.0.0.1"},
    {"::ffff:172.16.0.1", MAPPED | PRIV, "172.16.0.1"},
    {"::ffff:192.168.1.1", MAPPED | PRIV, "192.168.1.1"},
    {"::ffff:169.254.169.254", MAPPED | LL, "169.254.169.254"},
    {"::ffff:100.64.0.1", MAPPED | SHARED, "100.64.0.1"},
    {"::ffff:224.0.0.1", MAPPED | MCAST, "224.0.0.1"},
    {"::ffff:255.255.255.255", MAPPED | RES | BCAST, "255.255.255.255"},
    {"::ffff:192.0.2.1", MAPPED | DOC, "192.0.2.1"},
    {"::ffff:8.8.8.8", MAPPED, "8.8.8.8"},
    {"::127.0.0.1", COMPAT | LOOP, "127.0.0.1"},
    {"::10.0.0.1", COMPAT | PRIV, "10.0.0.1"},
    {"::0.0.0.2", COMPAT | UNSPEC, "0.0.0.2"},
    {"::8.8.8.8", COMPAT, "8.8.8.8"},
    {"::ffff:0:127.0.0.1", XLAT | LOOP, "127.0.0.1"},
    {"::ffff:0:10.0.0.1", XLAT | PRIV, "10.0.0.1"},
    {"::ffff:0:0.0.0.0", XLAT | UNSPEC, "0.0.0.0"},
    {"2002:7f00:1::", SIX2FOUR | LOOP, "127.0.0.1"},
    {"2002:7f00:1:1::1", SIX2FOUR | LOOP, "127.0.0.1"},
    {"2002:a00:1::1", SIX2FOUR | PRIV, "10.0.0.1"},
    {"2002::", SIX2FOUR | UNSPEC, "0.0.0.0"},
    {"2002:c0a8:101::", SIX2FOUR | PRIV, "192.168.1.1"},
    {"2002:808:808::1", SIX2FOUR, "8.8.8.8"},
    {"64:ff9b::127.0.0.1", NAT64 | LOOP, "127.0.0.1"},
    {"64:ff9b::7f00:1", NAT64 | LOOP, "127.0.0.1"},
    {"64:ff9b::10.0.0.1", NAT64 | PRIV, "10.0.0.1"},
    {"64:ff9b::0.0.0.0", NAT64 | UNSPEC, "0.0.0.0"},
    {"64:ff9b::169.254.0.1", NAT64 | LL, "169.254.0.1"},
    {"64:ff9b::8.8.8.8", NAT64, "8.8.8.8"},
    /* RFC 8215 local-use /48, RFC 6052 §2.2 layout: v4 in bits 48..63 and
     * 72..87 around the "u" octet. */
    {"64:ff9b:1:7f00:0:100::", NAT64 | LOOP, "127.0.0.1"},
    {"64:ff9b:1:a00:0:100::", NAT64 | PRIV, "10.0.0.1"},
    {"64:ff9b:1:c0a8:1:100::", NAT64 | PRIV, "192.168.1.1"},
    /* Teredo (RFC 4380 §4): client IPv4 is the one's complement of the last
     * 32 bits. 0x80fffffe = ~127.0.0.1. */
    {"2001:0:4136:e378:8000:63bf:80ff:fffe", TEREDO | LOOP, "127.0.0.1"},
    {"2001::80ff:fffe", TEREDO | LOOP, "127.0.0.1"},
    {"2001:0:4136:e378:8000:63bf:f5ff:fffe", TEREDO | PRIV, "10.0.0.1"},
    {"2001:0:4136:e378:8000:63bf:ffff:ffff", TEREDO | UNSPEC, "0.0.0.0"},
    {"2001:0:4136:e378:8000:63bf:3fff:fdd2", TEREDO | DOC, "192.0.2.45"}, /* RFC 4380 §4 */
    {"2001:0:4136:e378:8000:63bf:f7f7:f7f7", TEREDO, "8.8.8.8"},
};

static void test_classify_table(void)
{
    for (size_t i = 0; i < N(class_cases); i++) {
        const struct class_case *c = &class_cases[i];
        sluice_addr a, emb, want;
        uint32_t f;
        char buf[SLUICE_ADDR_STRLEN];

        CHECK_EQ(sluice_addr_parse(&a, c->text, 3478), 0);
        memset(&emb, 0xEE, sizeof emb);
        f = sluice_addr_classify(&a, &emb);
        CHECK_EQ(f, c->flags);
        CHECK_EQ(sluice_addr_classify(&a, NULL), f);
        if (f != c->flags)
            fprintf(stderr, "#   %s: got 0x%06x, expected 0x%06x\n", c->text, (unsigned)f,
                    (unsigned)c->flags);

        if (c->embedded) {
            CHECK_EQ(sluice_addr_parse(&want, c->embedded, 3478), 0);
            CHECK_EQ(want.family, SLUICE_AF_INET);
            CHECK(sluice_addr_equal(&emb, &want));
            if (!sluice_addr_equal(&emb, &want) &&
                sluice_addr_format(&emb, true, buf, sizeof buf) > 0)
                fprintf(stderr, "#   %s: embedded %s, expected %s\n", c->text, buf,
                        c->embedded);
            /* The embedded IPv4 address classifies as the class flags. */
            CHECK_EQ(sluice_addr_classify(&emb, NULL), f & 0xFFFFu);
        } else {
            CHECK(sluice_addr_equal(&emb, &a));
        }

        /* A relay's default policy refuses everything but global unicast
         * and documentation space. */
        if (f == 0 || f == DOC)
            CHECK_EQ(f & SLUICE_ADDR_DENY_DEFAULT, 0);
        else
            CHECK(f & SLUICE_ADDR_DENY_DEFAULT);
    }
}

/* The brief's named spellings of loopback/private/unspecified, checked
 * per rule: form flag, class flag, embedded address, denied. */
static void test_classify_embedded_spellings(void)
{
    static const struct {
        const char *text;
        uint32_t form, cls;
        const char *v4;
    } cases[] = {
        {"::ffff:127.0.0.1", MAPPED, LOOP, "127.0.0.1"},
        {"::ffff:7f00:1", MAPPED, LOOP, "127.0.0.1"},
        {"::127.0.0.1", COMPAT, LOOP, "127.0.0.1"},
        {"2002:7f00:1::", SIX2FOUR, LOOP, "127.0.0.1"},
        {"64:ff9b::127.0.0.1", NAT64, LOOP, "127.0.0.1"},
        {"64:ff9b::10.0.0.1", NAT64, PRIV, "10.0.0.1"},
        {"64:ff9b:1:7f00:0:100::", NAT64, LOOP, "127.0.0.1"},
        {"::ffff:0:127.0.0.1", XLAT, LOOP, "127.0.0.1"},
        {"2001:0:4136:e378:8000:63bf:80ff:fffe", TEREDO, LOOP, "127.0.0.1"},
        {"::ffff:0.0.0.0", MAPPED, UNSPEC, "0.0.0.0"},
        {"::ffff:10.1.2.3", MAPPED, PRIV, "10.1.2.3"},
    };

    for (size_t i = 0; i < N(cases); i++) {
        sluice_addr a, emb;
        char buf[SLUICE_ADDR_STRLEN];
        uint32_t f;

        CHECK_EQ(sluice_addr_parse(&a, cases[i].text, 443), 0);
        f = sluice_addr_classify(&a, &emb);
        CHECK(f & cases[i].form);
        CHECK(f & cases[i].cls);
        CHECK(f & SLUICE_ADDR_DENY_DEFAULT);
        CHECK_EQ(emb.family, SLUICE_AF_INET);
        CHECK_EQ(emb.port, 443);
        CHECK(sluice_addr_format(&emb, false, buf, sizeof buf) > 0);
        CHECK_STR(buf, cases[i].v4);
    }

    /* CVE-2020-26262: both spellings of "any". */
    {
        sluice_addr a;
        CHECK_EQ(sluice_addr_parse(&a, "0.0.0.0:3478", 0), 0);
        CHECK(sluice_addr_classify(&a, NULL) & SLUICE_ADDR_UNSPECIFIED);
        CHECK(sluice_addr_classify(&a, NULL) & SLUICE_ADDR_DENY_DEFAULT);
        CHECK_EQ(sluice_addr_parse(&a, "[::]:3478", 0), 0);
        CHECK(sluice_addr_classify(&a, NULL) & SLUICE_ADDR_UNSPECIFIED);
        CHECK(sluice_addr_classify(&a, NULL) & SLUICE_ADDR_DENY_DEFAULT);
    }
}

static void test_classify_deny_default(void)
{
    static const char *const allowed[] = {"8.8.8.8", "2a00:1450::1", "2001:4860:4860::8888",
                                          "192.0.2.1", "2001:db8::1"};
    sluice_addr a;

    for (size_t i = 0; i < N(allowed); i++) {
        CHECK_EQ(sluice_addr_parse(&a, allowed[i], 1), 0);
        CHECK_EQ(sluice_addr_classify(&a, NULL) & SLUICE_ADDR_DENY_DEFAULT, 0);
    }
    CHECK_EQ(SLUICE_ADDR_DENY_DEFAULT & SLUICE_ADDR_DOCUMENTATION, 0);
    CHECK_EQ(sluice_addr_parse(&a, "192.0.2.1", 1), 0);
    CHECK_EQ(sluice_addr_classify(&a, NULL), SLUICE_ADDR_DOCUMENTATION);
    CHECK_EQ(sluice_addr_parse(&a, "2001:db8::1", 1), 0);
    CHECK_EQ(sluice_addr_classify(&a, NULL), SLUICE_ADDR_DOCUMENTATION);

    /* An address of no family fails closed. */
    memset(&a, 0, sizeof a);
    CHECK(sluice_addr_classify(&a, NULL) & SLUICE_ADDR_DENY_DEFAULT);
}

static void test_class_names(void)
{
    static const uint32_t flags[] = {
        UNSPEC, LOOP, MCAST, BCAST, LL, PRIV, ULA, SHARED, RES, DOC,
        MAPPED, COMPAT, SIX2FOUR, NAT64, TEREDO, XLAT,
    };
    uint32_t all = 0;

    for (size_t i = 0; i < N(flags); i++) {
        const char *name = sluice_addr_class_name(flags[i]);
        CHECK(name != NULL);
        CHECK(strcmp(name, "unknown") != 0);
        CHECK(strlen(name) > 0);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(name, sluice_addr_class_name(flags[j])) != 0);
        all |= flags[i];
    }
    /* Every flag of DENY_DEFAULT is one of the named flags. */
    CHECK_EQ(SLUICE_ADDR_DENY_DEFAULT & ~all, 0);
    CHECK_STR(sluice_addr_class_name(LOOP), "loopback");
    CHECK_STR(sluice_addr_class_name(0), "unknown");
    CHECK_STR(sluice_addr_class_name(LOOP | PRIV), "unknown");
    CHECK_STR(sluice_addr_class_name(1u << 31), "unknown");
}

int main(void)
{
    RUN(test_parse_ok);
    RUN(test_parse_reject);
    RUN(test_format);
    RUN(test_format_invalid);
    RUN(test_set);
    RUN(test_equal);
    RUN(test_sockaddr_v4);
    RUN(test_sockaddr_v6);
    RUN(test_sockaddr_invalid);
    RUN(test_classify_table);
    RUN(test_classify_embedded_spellings);
    RUN(test_classify_deny_default);
    RUN(test_class_names);
    return TEST_DONE();
}
