/* SPDX-License-Identifier: MIT */
/* sluice-stun: ask a STUN server for our mapped address over UDP, with the
 * RFC 8489 retransmission schedule of the sans-IO transaction client. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sluice/sluice.h"

enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_TIMEOUT = 2, EXIT_BAD_ANSWER = 3, EXIT_NETWORK = 4 };

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sluice-stun [--json] [--rto-ms N] [--family 4|6] HOST[:PORT]\n"
            "Sends a STUN Binding request (RFC 8489) over UDP and prints the mapped\n"
            "address. PORT defaults to 3478; IPv6 literals go in brackets: [::1]:3478.\n"
            "  --json        print one JSON object instead of lines\n"
            "  --rto-ms N    initial retransmission timeout (default 500)\n"
            "  --family 4|6  resolve HOST to this address family only\n"
            "exit: 0 ok, 1 usage, 2 timeout, 3 error or bad answer, 4 network error\n");
}

/* Split HOST[:PORT] / [V6]:PORT into host and port strings. */
static int split_hostport(const char *arg, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *p;
    size_t n;

    snprintf(port, pcap, "3478");
    if (arg[0] == '[') {
        p = strchr(arg, ']');
        if (!p)
            return -1;
        n = (size_t)(p - arg - 1);
        if (p[1] == ':')
            snprintf(port, pcap, "%s", p + 2);
        else if (p[1])
            return -1;
        arg++;
    } else if ((p = strchr(arg, ':')) && !strchr(p + 1, ':')) {
        n = (size_t)(p - arg);
        snprintf(port, pcap, "%s", p + 1);
    } else {
        n = strlen(arg);
    }
    if (n == 0 || n >= hcap || !port[0])
        return -1;
    memcpy(host, arg, n);
    host[n] = '\0';
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},       {"rto-ms", required_argument, NULL, 'r'},
        {"family", required_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},    {NULL, 0, NULL, 0}};
    bool json = false;
    long rto_ms = 500;
    int family = AF_UNSPEC, opt, fd = -1, rc, exit_code = EXIT_TIMEOUT;
    char host[256], port[16], text[SLUICE_ADDR_STRLEN], server_text[SLUICE_ADDR_STRLEN];
    struct addrinfo hints, *res = NULL;
    sluice_stun_client_config cfg;
    sluice_stun_client *client;
    sluice_stun_request req;
    sluice_addr server, mapped;
    sluice_stun_writer w;
    uint8_t body[64], buf[2048];
    bool done = false;
    uint64_t started;

    while ((opt = getopt_long(argc, argv, "jr:f:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'j': json = true; break;
        case 'r':
            rto_ms = strtol(optarg, NULL, 10);
            if (rto_ms < 1 || rto_ms > 60000) {
                fprintf(stderr, "sluice-stun: --rto-ms must be 1..60000\n");
                return EXIT_USAGE;
            }
            break;
        case 'f':
            if (!strcmp(optarg, "4"))
                family = AF_INET;
            else if (!strcmp(optarg, "6"))
                family = AF_INET6;
            else {
                fprintf(stderr, "sluice-stun: --family must be 4 or 6\n");
                return EXIT_USAGE;
            }
            break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("sluice-stun %s\n", sluice_version()); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (split_hostport(argv[optind], host, sizeof host, port, sizeof port) < 0) {
        fprintf(stderr, "sluice-stun: cannot parse '%s' as HOST[:PORT]\n", argv[optind]);
        return EXIT_USAGE;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_protocol = IPPROTO_UDP;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "sluice-stun: cannot resolve %s port %s: %s\n", host, port, gai_strerror(rc));
        return EXIT_NETWORK;
    }
    if (sluice_addr_from_sockaddr(&server, res->ai_addr, res->ai_addrlen) < 0) {
        fprintf(stderr, "sluice-stun: unsupported address family for %s\n", host);
        freeaddrinfo(res);
        return EXIT_NETWORK;
    }
    fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "sluice-stun: socket: %s\n", strerror(errno));
        return EXIT_NETWORK;
    }
    sluice_addr_format(&server, true, server_text, sizeof server_text);

    sluice_stun_client_config_init(&cfg);
    cfg.initial_rto_us = (uint64_t)rto_ms * 1000u;
    cfg.max_transactions = 1;
    cfg.max_servers = 1;
    cfg.software = "sluice-stun";
    client = sluice_stun_client_new(&cfg);
    if (!client) {
        fprintf(stderr, "sluice-stun: out of memory\n");
        close(fd);
        return EXIT_NETWORK;
    }
    sluice_stun_writer_init(&w, body, sizeof body,
                            sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST), NULL);
    memset(&req, 0, sizeof req);
    req.server = server;
    req.transport = SLUICE_TRANSPORT_UDP;
    started = now_us();
    rc = sluice_stun_client_send(client, started, body, (size_t)sluice_stun_writer_result(&w), &req,
                                 NULL);
    if (rc < 0) {
        fprintf(stderr, "sluice-stun: cannot start request: %s\n", sluice_strerror(rc));
        goto out;
    }

    while (!done) {
        sluice_transmit tx;
        sluice_stun_event ev;
        uint64_t t = now_us(), next;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n, timeout_ms;

        while ((n = sluice_stun_client_poll_transmit(client, t, buf, sizeof buf, &tx)) > 0) {
            struct sockaddr_storage ss;
            int sl = sluice_addr_to_sockaddr(&tx.destination, &ss, sizeof ss);
            if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&ss, (socklen_t)sl) < 0 &&
                errno != ECONNREFUSED && errno != EAGAIN) {
                fprintf(stderr, "sluice-stun: send to %s: %s\n", server_text, strerror(errno));
                exit_code = EXIT_NETWORK;
                goto out;
            }
        }
        while (sluice_stun_client_poll_event(client, &ev)) {
            sluice_stun_msg m;
            done = true;
            if (ev.type == SLUICE_STUN_EVENT_TIMEOUT) {
                fprintf(stderr, "sluice-stun: no answer from %s after %u requests (%.1f s)\n",
                        server_text, cfg.rc, (double)(now_us() - started) / 1e6);
                exit_code = EXIT_TIMEOUT;
            } else if (ev.type == SLUICE_STUN_EVENT_SUCCESS &&
                       sluice_stun_parse(&m, ev.response, ev.response_len) == 0 &&
                       (sluice_stun_get_xor_address(&m, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped) == 0 ||
                        sluice_stun_get_address(&m, SLUICE_STUN_ATTR_MAPPED_ADDRESS, &mapped) == 0)) {
                sluice_addr_format(&mapped, true, text, sizeof text);
                if (json)
                    printf("{\"server\": \"%s\", \"mapped_address\": \"%s\", \"rtt_ms\": %.3f}\n",
                           server_text, text, (double)ev.rtt_us / 1000.0);
                else
                    printf("mapped-address %s\nrtt-ms %.3f\n", text, (double)ev.rtt_us / 1000.0);
                exit_code = EXIT_OK;
            } else if (ev.type == SLUICE_STUN_EVENT_ERROR) {
                const char *reason = "";
                size_t rlen = 0;
                if (sluice_stun_parse(&m, ev.response, ev.response_len) == 0)
                    sluice_stun_get_error_code(&m, NULL, &reason, &rlen);
                fprintf(stderr, "sluice-stun: %s answered error %d %.*s\n", server_text,
                        ev.error_code, (int)rlen, reason);
                exit_code = EXIT_BAD_ANSWER;
            } else {
                fprintf(stderr, "sluice-stun: bad answer from %s: %s\n", server_text,
                        ev.type == SLUICE_STUN_EVENT_SUCCESS ? "no (XOR-)MAPPED-ADDRESS"
                                                             : sluice_strerror(ev.reason));
                exit_code = EXIT_BAD_ANSWER;
            }
        }
        if (done)
            break;
        next = sluice_stun_client_next_timeout(client);
        t = now_us();
        timeout_ms = next == SLUICE_NEVER ? -1 : next <= t ? 0 : (int)((next - t + 999) / 1000);
        n = poll(&pfd, 1, timeout_ms);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "sluice-stun: poll: %s\n", strerror(errno));
            exit_code = EXIT_NETWORK;
            goto out;
        }
        if (n > 0) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            ssize_t r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&ss, &sl);
            if (r >= 0) {
                sluice_addr from;
                sluice_addr_from_sockaddr(&from, &ss, sl);
                rc = sluice_stun_client_handle_datagram(client, now_us(), &from, buf, (size_t)r);
                if (rc < 0)
                    fprintf(stderr, "sluice-stun: ignored a malformed datagram from the server: %s\n",
                            sluice_strerror(rc));
            }
            /* ECONNREFUSED (ICMP port unreachable) is left to retransmission. */
        }
        sluice_stun_client_handle_timeout(client, now_us());
    }
out:
    sluice_stun_client_free(client);
    close(fd);
    return exit_code;
}
