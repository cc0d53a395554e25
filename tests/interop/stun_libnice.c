/* SPDX-License-Identifier: MIT */
/* Interop: libnice's own STUN code (libstun, as linked by libnice) asks
 * sluice-relay for its mapped address in both of its modes: RFC 3489
 * (no magic cookie: what NiceAgent sends for server-reflexive discovery in
 * webrtcbin's RFC 5245 mode, RFC 8489 §11.2) and RFC 5389. libnice must
 * accept the answer and read the address the socket really has. TAP.
 * Usage: stun_libnice HOST PORT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stun/stunagent.h>
#include <stun/usages/bind.h>

static int failures, n_test;

static void tap(int ok, const char *name, const char *why)
{
    n_test++;
    if (!ok)
        failures++;
    printf("%s %d - %s%s%s\n", ok ? "ok" : "not ok", n_test, name, ok ? "" : ": ",
           ok ? "" : why);
}

static void bind_case(const char *name, StunCompatibility compat, const struct sockaddr_in *srv)
{
    static const uint16_t known[] = {STUN_ATTRIBUTE_MAPPED_ADDRESS,
                                     STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS, 0};
    StunAgent agent;
    StunMessage req, resp;
    uint8_t out[STUN_MAX_MESSAGE_SIZE], in[STUN_MAX_MESSAGE_SIZE];
    struct sockaddr_in local = {.sin_family = AF_INET}, mapped, alt;
    socklen_t local_len = sizeof local, mapped_len = sizeof mapped, alt_len = sizeof alt;
    char why[160] = "";
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    local.sin_addr = srv->sin_addr;
    if (fd < 0 || bind(fd, (struct sockaddr *)&local, sizeof local) < 0 ||
        getsockname(fd, (struct sockaddr *)&local, &local_len) < 0) {
        tap(0, name, "no socket");
        if (fd >= 0)
            close(fd);
        return;
    }
    stun_agent_init(&agent, known, compat, 0);
    size_t n = stun_usage_bind_create(&agent, &req, out, sizeof out);
    if (compat == STUN_COMPATIBILITY_RFC3489 && n >= 8 &&
        out[4] == 0x21 && out[5] == 0x12 && out[6] == 0xA4 && out[7] == 0x42)
        snprintf(why, sizeof why, "libstun put the RFC 5389 cookie in an RFC 3489 request");
    /* Up to 4 tries, 500 ms each: loopback never needs more than one. */
    for (int attempt = 0; attempt < 4 && !why[0]; attempt++) {
        if (sendto(fd, out, n, 0, (const struct sockaddr *)srv, sizeof *srv) != (ssize_t)n) {
            snprintf(why, sizeof why, "sendto failed");
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 500) != 1)
            continue;
        ssize_t got = recv(fd, in, sizeof in, 0);
        if (got <= 0)
            continue;
        if (stun_agent_validate(&agent, &resp, in, (size_t)got, NULL, NULL) !=
            STUN_VALIDATION_SUCCESS) {
            snprintf(why, sizeof why, "libstun refused the response (%zd bytes)", got);
            break;
        }
        StunUsageBindReturn r = stun_usage_bind_process(&resp, (struct sockaddr *)&mapped,
                                                        &mapped_len, (struct sockaddr *)&alt,
                                                        &alt_len);
        if (r != STUN_USAGE_BIND_RETURN_SUCCESS)
            snprintf(why, sizeof why, "stun_usage_bind_process returned %d", (int)r);
        else if (mapped.sin_family != AF_INET || mapped.sin_port != local.sin_port ||
                 mapped.sin_addr.s_addr != local.sin_addr.s_addr)
            snprintf(why, sizeof why, "mapped %s:%u, socket is on port %u",
                     inet_ntoa(mapped.sin_addr), ntohs(mapped.sin_port), ntohs(local.sin_port));
        else
            printf("# %s: mapped %s:%u\n", name, inet_ntoa(mapped.sin_addr),
                   ntohs(mapped.sin_port));
        close(fd);
        tap(!why[0], name, why);
        return;
    }
    close(fd);
    tap(0, name, why[0] ? why : "no answer in 2 s");
}

int main(int argc, char **argv)
{
    struct sockaddr_in srv = {.sin_family = AF_INET};
    if (argc != 3 || inet_pton(AF_INET, argv[1], &srv.sin_addr) != 1) {
        fprintf(stderr, "usage: stun_libnice IPV4 PORT\n");
        return 2;
    }
    srv.sin_port = htons((uint16_t)atoi(argv[2]));
    printf("1..2\n");
    bind_case("libnice_rfc3489_binding", STUN_COMPATIBILITY_RFC3489, &srv);
    bind_case("libnice_rfc5389_binding", STUN_COMPATIBILITY_RFC5389, &srv);
    return failures ? 1 : 0;
}
