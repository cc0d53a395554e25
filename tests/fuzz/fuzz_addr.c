/* SPDX-License-Identifier: MIT */
/* libFuzzer target for addresses: sluice_addr_parse / format / classify /
 * sockaddr conversion. Round trip: whatever parses formats to text that
 * parses back to the same address; formatting never writes past cap. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sluice/sluice.h"

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_addr: %s:%d: broken promise: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Format into exactly cap bytes with a canary behind them. */
static int format_capped(const sluice_addr *a, bool with_port, char *out, size_t cap)
{
    char buf[SLUICE_ADDR_STRLEN + 16];
    int rc;
    memset(buf, 0xa5, sizeof buf);
    rc = sluice_addr_format(a, with_port, buf, cap);
    for (size_t i = cap; i < sizeof buf; i++)
        EXPECT((uint8_t)buf[i] == 0xa5);
    if (rc >= 0) {
        EXPECT((size_t)rc < cap && buf[rc] == '\0' && strlen(buf) == (size_t)rc);
        memcpy(out, buf, (size_t)rc + 1);
    }
    return rc;
}

static void check_classify(const sluice_addr *a)
{
    sluice_addr emb;
    uint32_t flags, again;
    memset(&emb, 0x5a, sizeof emb);
    flags = sluice_addr_classify(a, &emb);
    again = sluice_addr_classify(a, NULL);
    EXPECT(flags == again);
    EXPECT(emb.family == SLUICE_AF_INET || emb.family == SLUICE_AF_INET6);
    EXPECT(emb.port == a->port);
    if (emb.family == SLUICE_AF_INET && a->family == SLUICE_AF_INET6)
        EXPECT(flags & (SLUICE_ADDR_V4MAPPED | SLUICE_ADDR_V4COMPAT | SLUICE_ADDR_6TO4 |
                        SLUICE_ADDR_NAT64 | SLUICE_ADDR_TEREDO | SLUICE_ADDR_V4TRANSLATED));
    for (int bit = 0; bit < 32; bit++)
        if (flags & (1u << bit))
            EXPECT(sluice_addr_class_name(1u << bit) != NULL);
}

/* a is a valid address: every output form reads back as a. */
static void round_trip(const sluice_addr *a)
{
    char text[SLUICE_ADDR_STRLEN + 16], bare[SLUICE_ADDR_STRLEN + 16];
    sluice_addr b;
    struct sockaddr_storage ss;
    int n, sl;

    check_classify(a);

    n = format_capped(a, true, text, SLUICE_ADDR_STRLEN);
    EXPECT(n > 0);
    /* Too small a buffer is NOSPACE, never a partial write past cap. */
    for (size_t cap = 0; cap <= (size_t)n; cap++) {
        char tmp[SLUICE_ADDR_STRLEN + 16];
        EXPECT(format_capped(a, true, tmp, cap) == SLUICE_ERR_NOSPACE);
    }
    EXPECT(format_capped(a, true, bare, (size_t)n + 1) == n);

    memset(&b, 0, sizeof b);
    if (sluice_addr_parse(&b, text, 1) != 0)
        fprintf(stderr, "fuzz_addr: formatted \"%s\" does not parse\n", text);
    EXPECT(sluice_addr_parse(&b, text, 1) == 0);
    if (!sluice_addr_equal(a, &b))
        fprintf(stderr, "fuzz_addr: \"%s\" reads back differently\n", text);
    EXPECT(sluice_addr_equal(a, &b));
    EXPECT(sluice_addr_equal(&b, a));

    n = format_capped(a, false, bare, SLUICE_ADDR_STRLEN);
    EXPECT(n > 0);
    memset(&b, 0, sizeof b);
    EXPECT(sluice_addr_parse(&b, bare, a->port) == 0);
    EXPECT(sluice_addr_equal(a, &b));
    EXPECT(sluice_addr_equal_ip(a, &b));

    memset(&ss, 0, sizeof ss);
    sl = sluice_addr_to_sockaddr(a, &ss, sizeof ss);
    EXPECT(sl > 0 && (size_t)sl <= sizeof ss);
    memset(&b, 0, sizeof b);
    EXPECT(sluice_addr_from_sockaddr(&b, &ss, (size_t)sl) == 0);
    EXPECT(sluice_addr_equal(a, &b));
    EXPECT(sluice_addr_to_sockaddr(a, &ss, (size_t)sl - 1) < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sluice_addr a;

    if (size == 0)
        return 0;
    if (data[0] != 0xff) {
        /* Text: the whole input, up to an embedded NUL or 255 bytes, so
         * corpus files are plain strings. */
        char text[256];
        size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
        int rc;
        memcpy(text, data, n);
        text[n] = '\0';
        memset(&a, 0x5a, sizeof a);
        rc = sluice_addr_parse(&a, text, 3478);
        EXPECT(rc == 0 || rc == SLUICE_ERR_INVALID || rc == SLUICE_ERR_MALFORMED);
        if (rc != 0)
            return 0;
        EXPECT(a.family == SLUICE_AF_INET || a.family == SLUICE_AF_INET6);
        if (a.family == SLUICE_AF_INET) {
            for (int i = 4; i < 16; i++)
                EXPECT(a.ip[i] == 0);
            EXPECT(a.scope_id == 0);
        }
        round_trip(&a);
    } else if (size >= 2 + 16 + 2 + 4) {
        /* Binary: 0xff, family selector, 16 address bytes, port, zone. */
        const uint8_t *p = data + 2;
        uint16_t port = (uint16_t)(p[16] << 8 | p[17]);
        if (port == 0) /* whether ":0" parses is not part of the contract */
            port = 1;
        memset(&a, 0, sizeof a);
        if (data[1] & 1) {
            sluice_addr_set_ipv6(&a, p, port);
            /* A zone index only means something on a link-local address. */
            if (p[0] == 0xfe && (p[1] & 0xc0) == 0x80)
                a.scope_id =
                    (uint32_t)p[18] << 24 | (uint32_t)p[19] << 16 | (uint32_t)p[20] << 8 | p[21];
        } else {
            sluice_addr_set_ipv4(&a, p, port);
        }
        round_trip(&a);
    }
    return 0;
}
