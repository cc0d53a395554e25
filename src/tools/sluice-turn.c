/* SPDX-License-Identifier: MIT */
/* sluice-turn: check a TURN server end to end — allocate (RFC 8656) over UDP,
 * TCP or TLS, optionally ping a UDP echo peer through the relay, then delete
 * the allocation. Drives the sans-IO TURN client with poll() and
 * CLOCK_MONOTONIC; every loop is bounded by a count or by the run deadline. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "sluice/turn_client.h"

/* parse_args: --help or --version answered, exit 0. */
#define ARGS_ANSWERED (-1)

enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1,
    EXIT_TIMEOUT = 2,
    EXIT_FAILED = 3,
    EXIT_NETWORK = 4,
    EXIT_ALL_LOST = 5,
};

#define RUN_LIMIT_US (60u * 1000000u) /* plus the ping schedule */
#define CONNECT_TIMEOUT_MS 10000
#define MAX_COUNT 1000
#define MAX_SCHEDULE_MS 600000 /* (count - 1) * interval */
#define PROBE_LEN 100
#define PROBE_MAGIC "SLTP"
#define MAX_ADDRS 8
/* poll_transmit over TCP/TLS needs 16 KiB + 64 of room (turn_client.h). */
#define STREAM_ROOM (16u * 1024u + 64u)
#define STREAM_OUT_CAP (256u * 1024u)
#define IO_BUF (64u * 1024u + 64u)
/* Work done per wakeup before going back to poll(): keeps every inner loop
 * bounded even against a flood. */
#define MAX_PER_WAKEUP 256

typedef enum { PH_ALLOCATING, PH_BINDING, PH_PINGING, PH_CLOSING, PH_DONE } phase;

struct options {
    sluice_transport transport;
    sluice_turn_family family;
    const char *ca_file;
    bool insecure;
    const char *ping;
    long count;
    long interval_ms;
    bool no_channel;
    long lifetime_s;
    long rto_ms;
    bool json;
    bool verbose;
    const char *user;
    const char *password;
    char host[256];
    char port[8];
    bool numeric_host;
};

struct link {
    int fd;
    sluice_addr server; /* what fd is connected to */
    bool stream;        /* TCP or TLS */
    bool down;          /* stream gone (told the client or the client knows) */
    uint8_t *out;       /* stream bytes not yet written */
    size_t out_len;
};

struct tool {
    struct options o;
    sluice_turn_client *client;
    struct link link;
    phase ph;
    uint64_t started_us, run_deadline_us;
    int exit_code;
    char server_text[SLUICE_ADDR_STRLEN];

    /* network trouble seen before the run ended: turns a failure into exit 4 */
    char net_error[160];

    /* result of the allocation */
    bool allocated;
    sluice_addr relayed[2];
    size_t n_relayed;
    sluice_addr mapped;
    uint32_t lifetime_s;
    uint8_t failed_family;
    int family_error_code;

    /* the failure that ended the run */
    bool failed;
    int error_code;
    char error_text[200];

    /* ping */
    sluice_addr peer_cand[MAX_ADDRS];
    size_t n_peer_cand;
    sluice_addr peer;
    uint16_t channel;
    uint8_t nonce[8];
    long n_sent, n_got;
    uint64_t sent_us[MAX_COUNT];
    bool got[MAX_COUNT];
    uint64_t rtt_min, rtt_max, rtt_sum;
    uint64_t ping_start_us, ping_end_us;
    uint64_t rx_unwrapped, rx_queued, rx_stray;
    bool pinged;

    uint8_t buf[IO_BUF];
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: sluice-turn [options] --user U --password P turn:HOST[:PORT][?transport=udp|tcp]\n"
        "       sluice-turn [options] --user U --password P turns:HOST[:PORT]\n"
        "Allocates a relayed address on a TURN server (RFC 8656), optionally pings a UDP\n"
        "echo peer through it, then deletes the allocation. HOST: a name, an IPv4\n"
        "literal or a bracketed IPv6 literal; PORT defaults to 3478 (5349 for TLS).\n"
        "  --transport udp|tcp|tls  transport to the server (default: from the URI, udp)\n"
        "  --family 4|6|dual        relayed address family (default 4)\n"
        "  --ca FILE                TLS: verify the server against this PEM bundle\n"
        "                           (default: the system store)\n"
        "  --insecure               TLS: do not verify the server certificate\n"
        "  --ping HOST:PORT         echo peer to ping through the relay\n"
        "  --count N                probes to send (default 5, at most %d)\n"
        "  --interval-ms N          gap between probes (default 200)\n"
        "  --no-channel             use a permission and Send indications, no channel\n"
        "  --lifetime S             allocation lifetime to request (default: server's)\n"
        "  --rto-ms N               initial STUN retransmission timeout (default 500)\n"
        "  --json                   print one JSON object instead of lines\n"
        "  -v, --verbose            log client events and library messages to stderr\n"
        "exit: 0 ok, 1 usage, 2 timeout, 3 refused or failed, 4 network error,\n"
        "      5 every probe lost\n",
        MAX_COUNT);
}

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

static int usage_error(const char *fmt, ...) PRINTF_LIKE(1, 2);
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("sluice-turn: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(see sluice-turn --help)\n", stderr);
    return EXIT_USAGE;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static const char *transport_name(sluice_transport t)
{
    return t == SLUICE_TRANSPORT_TLS ? "tls" : t == SLUICE_TRANSPORT_TCP ? "tcp" : "udp";
}

static const char *family_name(sluice_turn_family f)
{
    return f == SLUICE_TURN_FAMILY_DUAL ? "dual" : f == SLUICE_TURN_FAMILY_IPV6 ? "6" : "4";
}

/* RFC 7065 §3.1: turnURI = scheme ":" host [":" port] ["?transport=" transport],
 * scheme "turn" / "turns" (case-insensitive, RFC 3986 §3.1). Fills host,
 * port ("" when absent), *secure and *uri_transport (-1 when absent). */
static const char *parse_turn_uri(const char *uri, struct options *o, bool *secure,
                                  int *uri_transport)
{
    const char *p, *q;
    size_t n, i;
    long port;

    *uri_transport = -1;
    o->port[0] = '\0';
    if (!strncasecmp(uri, "turns:", 6)) {
        *secure = true;
        p = uri + 6;
    } else if (!strncasecmp(uri, "turn:", 5)) {
        *secure = false;
        p = uri + 5;
    } else {
        return "the URI must start with turn: or turns:";
    }
    if (*p == '[') {
        struct in6_addr a6;
        q = strchr(p, ']');
        if (!q)
            return "unterminated [IPv6] literal";
        n = (size_t)(q - p - 1);
        if (n == 0 || n >= sizeof o->host)
            return "bad [IPv6] literal";
        memcpy(o->host, p + 1, n);
        o->host[n] = '\0';
        if (inet_pton(AF_INET6, o->host, &a6) != 1)
            return "bad [IPv6] literal";
        o->numeric_host = true;
        q++;
    } else {
        n = strcspn(p, ":?");
        if (n == 0)
            return "missing host";
        if (n >= sizeof o->host)
            return "host name too long";
        for (i = 0; i < n; i++) {
            char ch = p[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_'))
                return "bad character in host (IPv6 literals go in brackets)";
        }
        memcpy(o->host, p, n);
        o->host[n] = '\0';
        q = p + n;
    }
    if (*q == ':') {
        n = strcspn(q + 1, "?");
        if (n == 0 || n > 5)
            return "bad port";
        memcpy(o->port, q + 1, n);
        o->port[n] = '\0';
        for (i = 0; i < n; i++)
            if (o->port[i] < '0' || o->port[i] > '9')
                return "bad port";
        if (!parse_long(o->port, 1, 65535, &port))
            return "bad port";
        q += 1 + n;
    }
    if (*q == '?') {
        q++;
        if (strncasecmp(q, "transport=", 10))
            return "the only URI parameter is ?transport=udp|tcp";
        q += 10;
        if (!strcasecmp(q, "udp"))
            *uri_transport = SLUICE_TRANSPORT_UDP;
        else if (!strcasecmp(q, "tcp"))
            *uri_transport = SLUICE_TRANSPORT_TCP;
        else
            return "transport must be udp or tcp";
        if (*secure && *uri_transport == SLUICE_TRANSPORT_UDP)
            return "turns:...?transport=udp means DTLS, which sluice-turn does not speak";
    } else if (*q) {
        return "trailing characters after the port";
    }
    return NULL;
}

/* HOST:PORT or [V6]:PORT with a port required. */
static int split_peer(const char *arg, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *p;
    size_t n;

    if (arg[0] == '[') {
        p = strchr(arg, ']');
        if (!p || p[1] != ':')
            return -1;
        n = (size_t)(p - arg - 1);
        arg++;
        p++;
    } else {
        p = strrchr(arg, ':');
        if (!p || memchr(arg, ':', (size_t)(p - arg)))
            return -1;
        n = (size_t)(p - arg);
    }
    if (n == 0 || n >= hcap || !p[1] || strlen(p + 1) >= pcap)
        return -1;
    memcpy(host, arg, n);
    host[n] = '\0';
    snprintf(port, pcap, "%s", p + 1);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Output */

static void json_string(FILE *f, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;

    fputc('"', f);
    for (; *u; u++) {
        if (*u == '"' || *u == '\\')
            fprintf(f, "\\%c", *u);
        else if (*u < 0x20 || *u == 0x7f)
            fprintf(f, "\\u%04x", *u);
        else
            fputc(*u, f);
    }
    fputc('"', f);
}

static void vlog(struct tool *t, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void vlog(struct tool *t, const char *fmt, ...)
{
    va_list ap;

    if (!t->o.verbose)
        return;
    fprintf(stderr, "sluice-turn: [%8.3f] ", (double)(now_us() - t->started_us) / 1e6);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void log_hook(void *ctx, sluice_log_level level, const char *module, const char *line)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "sluice-turn: %s %s: %s\n", module, names[level & 3], line);
}

static void fmt_addr(const sluice_addr *a, char *buf, size_t cap)
{
    if (sluice_addr_format(a, true, buf, cap) < 0)
        snprintf(buf, cap, "?");
}

/* The failure that decides the exit code; the first one wins. */
static void fail(struct tool *t, int exit_code, int stun_code, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
static void fail(struct tool *t, int exit_code, int stun_code, const char *fmt, ...)
{
    va_list ap;

    if (t->failed)
        return;
    t->failed = true;
    t->exit_code = exit_code;
    t->error_code = stun_code;
    va_start(ap, fmt);
    vsnprintf(t->error_text, sizeof t->error_text, fmt, ap);
    va_end(ap);
}

/* Failure from a client event: the server's code and reason phrase, or the
 * local reason with the client's explanation. A timeout exits 2; a failure
 * that followed a socket-level error (EOF, reset, refused) exits 4. */
static void fail_event(struct tool *t, const sluice_turn_event *ev, const char *what)
{
    int code = EXIT_FAILED;
    char local[200];
    size_t n;

    if (ev->error_code != 0) {
        fail(t, code, ev->error_code, "%s", ev->text[0] ? ev->text : sluice_strerror(ev->reason));
        return;
    }
    if (ev->reason == SLUICE_ERR_TIMEOUT)
        code = EXIT_TIMEOUT;
    else if (t->net_error[0])
        code = EXIT_NETWORK;
    n = (size_t)snprintf(local, sizeof local, "%s: %s", what,
                         ev->text[0]  ? ev->text
                         : ev->reason ? sluice_strerror(ev->reason)
                                      : "failed");
    if (t->net_error[0] && n < sizeof local)
        snprintf(local + n, sizeof local - n, " (%s)", t->net_error);
    fail(t, code, 0, "%s", local);
}

static void print_result(struct tool *t)
{
    char a[SLUICE_ADDR_STRLEN];
    size_t i;
    double mn = (double)t->rtt_min / 1000.0, mx = (double)t->rtt_max / 1000.0,
           avg = t->n_got ? (double)t->rtt_sum / 1000.0 / (double)t->n_got : 0.0;

    if (t->failed)
        fprintf(stderr, "error %d %s\n", t->error_code, t->error_text);
    if (!t->o.json) {
        if (t->pinged) {
            if (t->n_got)
                printf("rtt-ms %.3f/%.3f/%.3f lost %ld/%ld\n", mn, avg, mx, t->n_sent - t->n_got,
                       t->n_sent);
            else
                printf("rtt-ms -/-/- lost %ld/%ld\n", t->n_sent, t->n_sent);
        }
        fflush(stdout);
        return;
    }
    printf("{\"server\": ");
    json_string(stdout, t->server_text);
    printf(", \"transport\": \"%s\", \"family\": \"%s\"", transport_name(t->o.transport),
           family_name(t->o.family));
    if (t->allocated) {
        printf(", \"relayed_addresses\": [");
        for (i = 0; i < t->n_relayed; i++) {
            fmt_addr(&t->relayed[i], a, sizeof a);
            printf("%s\"%s\"", i ? ", " : "", a);
        }
        fmt_addr(&t->mapped, a, sizeof a);
        printf("], \"mapped_address\": \"%s\", \"lifetime_s\": %u", a, t->lifetime_s);
        if (t->failed_family)
            printf(", \"failed_family\": %d, \"family_error_code\": %d",
                   t->failed_family == 2 ? 6 : 4, t->family_error_code);
    }
    if (t->pinged) {
        fmt_addr(&t->peer, a, sizeof a);
        printf(", \"ping\": {\"peer\": \"%s\", \"channel\": ", a);
        if (t->channel)
            printf("%u", t->channel);
        else
            printf("null");
        printf(", \"sent\": %ld, \"received\": %ld, \"lost\": %ld, \"rtt_ms\": ", t->n_sent,
               t->n_got, t->n_sent - t->n_got);
        if (t->n_got)
            printf("{\"min\": %.3f, \"avg\": %.3f, \"max\": %.3f}", mn, avg, mx);
        else
            printf("null");
        printf(", \"unwrapped\": %llu, \"queued\": %llu}", (unsigned long long)t->rx_unwrapped,
               (unsigned long long)t->rx_queued);
    }
    printf(", \"error\": ");
    if (t->failed) {
        printf("{\"code\": %d, \"reason\": ", t->error_code);
        json_string(stdout, t->error_text);
        printf("}");
    } else {
        printf("null");
    }
    printf(", \"exit_code\": %d}\n", t->exit_code);
    fflush(stdout);
}

/* ------------------------------------------------------------------------ */
/* Sockets */

/* A socket connected to a (UDP: default destination; TCP: handshake done
 * within timeout_ms), non-blocking. Returns the fd, or -1 with why filled. */
static int open_connected(const sluice_addr *a, bool stream, int timeout_ms, char *why,
                          size_t whycap)
{
    struct sockaddr_storage ss;
    int sl = sluice_addr_to_sockaddr(a, &ss, sizeof ss), fd, err = 0, one = 1;
    socklen_t el = sizeof err;
    struct pollfd pfd;
    uint64_t deadline = now_us() + (uint64_t)timeout_ms * 1000u;
    char at[SLUICE_ADDR_STRLEN];

    fmt_addr(a, at, sizeof at);
    if (sl < 0) {
        snprintf(why, whycap, "cannot use address %s", at);
        return -1;
    }
    fd =
        socket(ss.ss_family, (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(why, whycap, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&ss, (socklen_t)sl) == 0)
        goto connected;
    if (errno != EINPROGRESS) {
        snprintf(why, whycap, "connect to %s: %s", at, strerror(errno));
        close(fd);
        return -1;
    }
    for (int i = 0; i < 64; i++) { /* EINTR retries, bounded by the deadline too */
        uint64_t t = now_us();
        int n;
        if (t >= deadline) {
            snprintf(why, whycap, "connect to %s: timed out after %d ms", at, timeout_ms);
            close(fd);
            return -1;
        }
        pfd.fd = fd;
        pfd.events = POLLOUT;
        n = poll(&pfd, 1, (int)((deadline - t + 999) / 1000));
        if (n > 0)
            break;
        if (n < 0 && errno != EINTR) {
            snprintf(why, whycap, "poll: %s", strerror(errno));
            close(fd);
            return -1;
        }
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    if (err) {
        snprintf(why, whycap, "connect to %s: %s", at, strerror(err));
        close(fd);
        return -1;
    }
connected:
    if (stream)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void link_close(struct link *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    l->out_len = 0;
}

static void note_net_error(struct tool *t, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void note_net_error(struct tool *t, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(t->net_error, sizeof t->net_error, fmt, ap);
    va_end(ap);
    vlog(t, "network: %s", t->net_error);
}

/* The stream to the server ended (EOF, reset, write error). The allocation
 * goes with it (RFC 8656 §3.1); the client turns that into an event. */
static void stream_down(struct tool *t, const char *why)
{
    if (t->link.down)
        return;
    t->link.down = true;
    link_close(&t->link);
    if (t->ph != PH_CLOSING)
        note_net_error(t, "stream to %s %s", t->server_text, why);
    sluice_turn_client_handle_stream_closed(t->client, now_us());
}

/* Follow the client to another server (a redirect): a new socket, and for
 * TCP/TLS a new stream with nothing of the old one carried over. */
static bool relink(struct tool *t, const sluice_addr *to)
{
    char why[160];
    int fd;

    if (sluice_addr_equal(to, &t->link.server) && t->link.fd >= 0)
        return true;
    link_close(&t->link);
    t->link.server = *to;
    fmt_addr(to, t->server_text, sizeof t->server_text);
    vlog(t, "connecting to %s", t->server_text);
    fd = open_connected(to, t->link.stream, CONNECT_TIMEOUT_MS, why, sizeof why);
    if (fd < 0) {
        note_net_error(t, "%s", why);
        if (t->link.stream) {
            t->link.down = true;
            sluice_turn_client_handle_stream_closed(t->client, now_us());
        } else {
            fail(t, EXIT_NETWORK, 0, "%s", why);
        }
        return false;
    }
    t->link.fd = fd;
    t->link.down = false;
    return true;
}

/* Write pending stream bytes; whatever the kernel does not take waits for
 * POLLOUT. */
static void flush(struct tool *t)
{
    struct link *l = &t->link;

    for (int i = 0; i < MAX_PER_WAKEUP && l->out_len > 0 && l->fd >= 0; i++) {
        ssize_t r = send(l->fd, l->out, l->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0) {
            memmove(l->out, l->out + r, l->out_len - (size_t)r);
            l->out_len -= (size_t)r;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            char why[96];
            snprintf(why, sizeof why, "failed on write: %s", r < 0 ? strerror(errno) : "EOF");
            stream_down(t, why);
            break;
        }
    }
}

static void udp_send(struct tool *t, const uint8_t *data, size_t len)
{
    if (t->link.fd < 0)
        return;
    if (send(t->link.fd, data, len, MSG_DONTWAIT) < 0 && errno != ECONNREFUSED && errno != EAGAIN &&
        errno != EWOULDBLOCK && errno != EINTR) {
        note_net_error(t, "send to %s: %s", t->server_text, strerror(errno));
        fail(t, EXIT_NETWORK, 0, "%s", t->net_error);
    }
    /* ECONNREFUSED (an earlier ICMP port unreachable) is left to retransmission. */
}

/* Move everything the client wants to send onto the wire. */
static void pump_transmit(struct tool *t)
{
    struct link *l = &t->link;
    sluice_transmit tx;
    int n;

    for (int i = 0; i < MAX_PER_WAKEUP; i++) {
        if (!l->stream) {
            n = sluice_turn_client_poll_transmit(t->client, now_us(), t->buf, sizeof t->buf, &tx);
            if (n <= 0)
                break;
            if (!sluice_addr_equal(&tx.destination, &l->server) && !relink(t, &tx.destination))
                break;
            udp_send(t, t->buf, (size_t)n);
            continue;
        }
        if (STREAM_OUT_CAP - l->out_len < STREAM_ROOM) {
            flush(t);
            if (STREAM_OUT_CAP - l->out_len < STREAM_ROOM)
                break; /* the rest when the socket drains */
        }
        n = sluice_turn_client_poll_transmit(t->client, now_us(), l->out + l->out_len,
                                             STREAM_OUT_CAP - l->out_len, &tx);
        if (n <= 0)
            break;
        if (!sluice_addr_equal(&tx.destination, &l->server)) {
            /* A redirect: bytes for a new stream; the old backlog is dropped. */
            memmove(l->out, l->out + l->out_len, (size_t)n);
            l->out_len = 0;
            if (!relink(t, &tx.destination))
                break;
        } else if (l->fd < 0) {
            continue; /* the stream is gone (and the client knows): discard */
        }
        l->out_len += (size_t)n;
        flush(t);
    }
}

/* ------------------------------------------------------------------------ */
/* Ping */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A probe: "SLTP", sequence number, send time (µs, this process's monotonic
 * clock), the run's nonce, then filler up to PROBE_LEN bytes. */
static void send_probe(struct tool *t)
{
    uint8_t probe[PROBE_LEN];
    uint64_t stamp = now_us();
    uint32_t seq = (uint32_t)t->n_sent;
    sluice_transmit tx;
    struct link *l = &t->link;
    int n;

    memcpy(probe, PROBE_MAGIC, 4);
    put_be32(probe + 4, seq);
    put_be32(probe + 8, (uint32_t)(stamp >> 32));
    put_be32(probe + 12, (uint32_t)stamp);
    memcpy(probe + 16, t->nonce, sizeof t->nonce);
    for (size_t i = 24; i < sizeof probe; i++)
        probe[i] = (uint8_t)(i ^ seq);

    if (!l->stream) {
        n = sluice_turn_client_send(t->client, stamp, &t->peer, probe, sizeof probe, t->buf,
                                    sizeof t->buf, &tx);
        if (n > 0) {
            if (!sluice_addr_equal(&tx.destination, &l->server) && !relink(t, &tx.destination))
                return;
            udp_send(t, t->buf, (size_t)n);
        }
    } else {
        if (STREAM_OUT_CAP - l->out_len < STREAM_ROOM)
            flush(t);
        if (STREAM_OUT_CAP - l->out_len < STREAM_ROOM)
            return; /* the stream is backed up: try again on the next wakeup */
        n = sluice_turn_client_send(t->client, stamp, &t->peer, probe, sizeof probe,
                                    l->out + l->out_len, STREAM_OUT_CAP - l->out_len, &tx);
        if (n > 0) {
            l->out_len += (size_t)n;
            flush(t);
        } else if (n == SLUICE_ERR_NOSPACE && t->o.transport == SLUICE_TRANSPORT_TLS) {
            n = 0; /* TLS queued the record; poll_transmit hands it out */
        }
    }
    if (n < 0) {
        fail(t, EXIT_FAILED, 0, "cannot send probe %u: %s", seq, sluice_strerror(n));
        return;
    }
    t->sent_us[seq] = stamp;
    t->n_sent++;
    vlog(t, "probe %u sent", seq);
}

static void on_peer_data(struct tool *t, const sluice_addr *from, const uint8_t *p, size_t len,
                         bool unwrapped)
{
    uint64_t now = now_us(), rtt, stamp;
    uint32_t seq;

    if (t->ph != PH_PINGING || !sluice_addr_equal(from, &t->peer) || len != PROBE_LEN ||
        memcmp(p, PROBE_MAGIC, 4) || memcmp(p + 16, t->nonce, sizeof t->nonce)) {
        t->rx_stray++;
        vlog(t, "ignored %zu bytes of peer data", len);
        return;
    }
    seq = get_be32(p + 4);
    stamp = (uint64_t)get_be32(p + 8) << 32 | get_be32(p + 12);
    if (seq >= (uint32_t)t->n_sent || t->got[seq] || stamp != t->sent_us[seq]) {
        t->rx_stray++;
        vlog(t, "ignored a duplicate or unknown echo (seq %u)", seq);
        return;
    }
    t->got[seq] = true;
    rtt = now - stamp;
    if (t->n_got == 0 || rtt < t->rtt_min)
        t->rtt_min = rtt;
    if (rtt > t->rtt_max)
        t->rtt_max = rtt;
    t->rtt_sum += rtt;
    t->n_got++;
    if (unwrapped)
        t->rx_unwrapped++;
    else
        t->rx_queued++;
    vlog(t, "echo %u: %.3f ms (%s)", seq, (double)rtt / 1000.0,
         unwrapped ? "zero-copy unwrap" : "receive queue");
}

/* ------------------------------------------------------------------------ */
/* Phases */

static void start_close(struct tool *t)
{
    int rc;

    if (t->ph == PH_CLOSING || t->ph == PH_DONE)
        return;
    rc = sluice_turn_client_close(t->client, now_us());
    vlog(t, "closing (%s)", rc < 0 ? sluice_strerror(rc) : "delete sent");
    t->ph = rc < 0 ? PH_DONE : PH_CLOSING;
}

static void start_ping(struct tool *t)
{
    t->ph = PH_PINGING;
    t->pinged = true;
    t->ping_start_us = now_us();
    t->ping_end_us = 0;
}

static void on_allocated(struct tool *t, const sluice_turn_event *ev)
{
    char a[SLUICE_ADDR_STRLEN], b[SLUICE_ADDR_STRLEN];
    size_t i, j;
    int rc;

    t->allocated = true;
    t->n_relayed = ev->n_relayed > 2 ? 2 : ev->n_relayed;
    memcpy(t->relayed, ev->relayed, sizeof t->relayed);
    t->mapped = ev->mapped;
    t->lifetime_s = ev->lifetime_s;
    t->failed_family = ev->failed_family;
    t->family_error_code = ev->family_error_code;
    if (!t->o.json) {
        for (i = 0; i < t->n_relayed; i++) {
            fmt_addr(&t->relayed[i], a, sizeof a);
            printf("relayed-address %s\n", a);
        }
        fmt_addr(&t->mapped, a, sizeof a);
        printf("mapped-address %s\n", a);
        fflush(stdout);
    }
    if (ev->failed_family)
        fprintf(stderr, "sluice-turn: warning: no IPv%d relayed address: %d %s\n",
                ev->failed_family == 2 ? 6 : 4, ev->family_error_code, ev->text);
    else if (t->o.family == SLUICE_TURN_FAMILY_DUAL && t->n_relayed == 1)
        /* RFC 8656 §7.1 wants an ADDRESS-ERROR-CODE for the family not
         * granted. coturn 4.6 knows ADDITIONAL-ADDRESS-FAMILY only under
         * its pre-RFC code point 0x8032 (RFC 8656: 0x8000), ignores ours
         * and allocates IPv4 alone, saying nothing. */
        fprintf(stderr,
                "sluice-turn: warning: dual allocation requested, one relayed address granted "
                "and no ADDRESS-ERROR-CODE: the server ignored ADDITIONAL-ADDRESS-FAMILY "
                "(coturn 4.6 and older use a pre-RFC 8656 code point)\n");
    if (!t->o.ping) {
        start_close(t);
        return;
    }
    /* The first resolved peer address whose family has a relayed address. */
    for (i = 0; i < t->n_peer_cand; i++)
        for (j = 0; j < t->n_relayed; j++)
            if (t->peer_cand[i].family == t->relayed[j].family)
                goto found;
    fail(t, EXIT_FAILED, 0, "no relayed address of the family of peer %s", t->o.ping);
    start_close(t);
    return;
found:
    t->peer = t->peer_cand[i];
    fmt_addr(&t->peer, a, sizeof a);
    fmt_addr(&t->relayed[j], b, sizeof b);
    if (t->o.no_channel) {
        rc = sluice_turn_client_create_permission(t->client, now_us(), &t->peer);
        vlog(t, "permission for %s via %s: %s", a, b, rc < 0 ? sluice_strerror(rc) : "requested");
    } else {
        rc = sluice_turn_client_bind_channel(t->client, now_us(), &t->peer);
        vlog(t, "channel for %s via %s: %s", a, b, rc < 0 ? sluice_strerror(rc) : "requested");
    }
    if (rc < 0) {
        fail(t, EXIT_FAILED, 0, "cannot %s for %s: %s",
             t->o.no_channel ? "create a permission" : "bind a channel", a, sluice_strerror(rc));
        start_close(t);
        return;
    }
    t->ph = PH_BINDING;
}

static void on_event(struct tool *t, const sluice_turn_event *ev)
{
    char a[SLUICE_ADDR_STRLEN];

    switch (ev->type) {
    case SLUICE_TURN_EVENT_ALLOCATED:
        vlog(t, "allocated: %zu relayed address(es), lifetime %u s", ev->n_relayed, ev->lifetime_s);
        if (t->ph == PH_ALLOCATING)
            on_allocated(t, ev);
        break;
    case SLUICE_TURN_EVENT_ALLOCATE_FAILED:
        vlog(t, "allocate failed: %d %s (%s)", ev->error_code, ev->text,
             sluice_strerror(ev->reason));
        fail_event(t, ev, "allocation failed");
        t->ph = PH_DONE;
        break;
    case SLUICE_TURN_EVENT_REFRESHED:
        vlog(t, "refreshed: lifetime %u s", ev->lifetime_s);
        break;
    case SLUICE_TURN_EVENT_LOST:
        vlog(t, "allocation lost: %d %s (%s)", ev->error_code, ev->text,
             sluice_strerror(ev->reason));
        if (t->ph != PH_CLOSING)
            fail_event(t, ev, "allocation lost");
        t->ph = PH_DONE;
        break;
    case SLUICE_TURN_EVENT_PERMISSION_CREATED:
        fmt_addr(&ev->peer, a, sizeof a);
        vlog(t, "permission created for %s", a);
        if (t->ph == PH_BINDING && t->o.no_channel && sluice_addr_equal_ip(&ev->peer, &t->peer))
            start_ping(t);
        break;
    case SLUICE_TURN_EVENT_CHANNEL_BOUND:
        fmt_addr(&ev->peer, a, sizeof a);
        vlog(t, "channel 0x%04x bound to %s", ev->channel, a);
        if (t->ph == PH_BINDING && !t->o.no_channel && sluice_addr_equal(&ev->peer, &t->peer)) {
            t->channel = ev->channel;
            start_ping(t);
        }
        break;
    case SLUICE_TURN_EVENT_PERMISSION_FAILED:
    case SLUICE_TURN_EVENT_CHANNEL_FAILED:
        fmt_addr(&ev->peer, a, sizeof a);
        vlog(t, "%s for %s failed: %d %s (%s)",
             ev->type == SLUICE_TURN_EVENT_CHANNEL_FAILED ? "channel" : "permission", a,
             ev->error_code, ev->text, sluice_strerror(ev->reason));
        if (t->ph == PH_BINDING || t->ph == PH_PINGING) {
            fail_event(t, ev,
                       ev->type == SLUICE_TURN_EVENT_CHANNEL_FAILED ? "channel bind failed"
                                                                    : "permission failed");
            start_close(t);
        }
        break;
    case SLUICE_TURN_EVENT_REDIRECTED:
        fmt_addr(&ev->server, a, sizeof a);
        fprintf(stderr, "sluice-turn: redirected to %s\n", a);
        relink(t, &ev->server);
        break;
    case SLUICE_TURN_EVENT_CLOSED:
        vlog(t, "closed (%s)", ev->reason ? sluice_strerror(ev->reason) : "deleted");
        if (t->ph == PH_CLOSING && ev->reason == SLUICE_ERR_TIMEOUT)
            fprintf(stderr, "sluice-turn: warning: %s did not confirm the delete\n",
                    t->server_text);
        t->ph = PH_DONE;
        break;
    }
}

/* Drain the client: transmits, then events (which may queue transmits),
 * then peer data — until nothing moves, a bounded number of rounds. */
static void pump(struct tool *t)
{
    sluice_turn_event ev;
    sluice_addr from;
    size_t len;
    bool more = true;

    for (int round = 0; round < 16 && more; round++) {
        more = false;
        pump_transmit(t);
        for (int i = 0; i < MAX_PER_WAKEUP && sluice_turn_client_poll_event(t->client, &ev); i++) {
            on_event(t, &ev);
            more = true;
        }
        for (int i = 0; i < MAX_PER_WAKEUP; i++) {
            int rc = sluice_turn_client_recv(t->client, &from, t->buf, sizeof t->buf, &len);
            if (rc != 1)
                break;
            on_peer_data(t, &from, t->buf, len, false);
        }
    }
}

static void on_readable(struct tool *t)
{
    struct link *l = &t->link;
    sluice_addr peer;
    const uint8_t *payload;
    size_t plen;
    ssize_t r;
    int rc;

    for (int i = 0; i < (l->stream ? 16 : MAX_PER_WAKEUP) && l->fd >= 0; i++) {
        r = recv(l->fd, t->buf, sizeof t->buf, MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            if (!l->stream) {
                /* ICMP errors on a connected UDP socket: left to
                 * retransmission, like sluice-stun. */
                vlog(t, "recv: %s", strerror(errno));
                continue;
            }
            {
                char why[96];
                snprintf(why, sizeof why, "failed: %s", strerror(errno));
                stream_down(t, why);
            }
            break;
        }
        if (r == 0 && l->stream) {
            stream_down(t, "closed by the server");
            break;
        }
        if (!l->stream) {
            /* The zero-copy path first (RFC 8656 §12.4 ChannelData, or a
             * Data indication), the full client for everything else. */
            rc = sluice_turn_client_unwrap(t->client, &l->server, t->buf, (size_t)r, &peer,
                                           &payload, &plen);
            if (rc == 1) {
                on_peer_data(t, &peer, payload, plen, true);
                continue;
            }
            if (rc < 0) {
                vlog(t, "dropped a malformed datagram: %s", sluice_strerror(rc));
                continue;
            }
        }
        rc = sluice_turn_client_handle_datagram(t->client, now_us(), &l->server, t->buf, (size_t)r);
        if (rc < 0) {
            vlog(t, "client rejected %zd bytes: %s", r, sluice_strerror(rc));
            if (l->stream) {
                /* Bad framing or a TLS failure (certificate verification)
                 * ends the stream; the client's own event says why. */
                l->down = true;
                link_close(l);
                break;
            }
        }
    }
}

/* Start probes, finish the ping, and notice the run deadline. */
static void step_ping(struct tool *t, uint64_t now)
{
    uint64_t wait_us;

    if (t->ph != PH_PINGING)
        return;
    if (t->n_sent < t->o.count &&
        now >= t->ping_start_us + (uint64_t)t->n_sent * (uint64_t)t->o.interval_ms * 1000u) {
        send_probe(t);
        if (t->n_sent == t->o.count) {
            wait_us = (uint64_t)t->o.rto_ms * 3000u;
            if (wait_us < 1000000u)
                wait_us = 1000000u;
            t->ping_end_us = now_us() + wait_us;
        }
    }
    if (t->failed) {
        start_close(t);
        return;
    }
    if (t->n_sent == t->o.count && (t->n_got == t->n_sent || now >= t->ping_end_us)) {
        vlog(t, "ping done: %ld/%ld echoes", t->n_got, t->n_sent);
        if (t->n_got == 0)
            fail(t, EXIT_ALL_LOST, 0, "no echo from %s: all %ld probes lost", t->o.ping, t->n_sent);
        start_close(t);
    }
}

static uint64_t next_wakeup(const struct tool *t)
{
    uint64_t next = sluice_turn_client_next_timeout(t->client), w;

    if (t->ph == PH_PINGING) {
        if (t->n_sent < t->o.count)
            w = t->ping_start_us + (uint64_t)t->n_sent * (uint64_t)t->o.interval_ms * 1000u;
        else
            w = t->ping_end_us;
        if (w < next)
            next = w;
    }
    return next < t->run_deadline_us ? next : t->run_deadline_us;
}

static void run(struct tool *t)
{
    int rc = sluice_turn_client_allocate(t->client, now_us());

    if (rc < 0) {
        fail(t, EXIT_FAILED, 0, "cannot start the allocation: %s", sluice_strerror(rc));
        return;
    }
    /* Each pass waits in poll(); the deadline ends the loop, the count only
     * guards against a clock that does not move. */
    for (unsigned long pass = 0; pass < 10000000ul; pass++) {
        struct pollfd pfd = {.fd = t->link.fd, .events = POLLIN};
        uint64_t now, next;
        int n, timeout_ms;

        pump(t);
        now = now_us();
        step_ping(t, now);
        /* A local failure (network, probe) ends the run: delete what exists. */
        if (t->failed && t->ph != PH_CLOSING && t->ph != PH_DONE)
            start_close(t);
        pump(t);
        if (t->ph == PH_DONE)
            return;
        if (now >= t->run_deadline_us) {
            static const char *const names[] = {"allocating", "binding", "pinging", "closing",
                                                "done"};
            if (t->ph == PH_CLOSING && !t->failed) {
                fprintf(stderr, "sluice-turn: warning: gave up waiting for the delete\n");
                return;
            }
            fail(t, EXIT_TIMEOUT, 0, "timeout: no result after %.0f s (%s)",
                 (double)(t->run_deadline_us - t->started_us) / 1e6, names[t->ph]);
            return;
        }
        if (t->link.stream && t->link.out_len > 0)
            pfd.events |= POLLOUT;
        next = next_wakeup(t);
        now = now_us();
        timeout_ms = next <= now ? 0 : (int)((next - now + 999) / 1000);
        n = poll(&pfd, 1, timeout_ms); /* fd -1 (stream gone): just a sleep */
        if (n < 0 && errno != EINTR) {
            fail(t, EXIT_NETWORK, 0, "poll: %s", strerror(errno));
            return;
        }
        if (n > 0 && (pfd.revents & POLLOUT))
            flush(t);
        if (n > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP)))
            on_readable(t);
        now = now_us();
        if (now >= sluice_turn_client_next_timeout(t->client))
            sluice_turn_client_handle_timeout(t->client, now);
    }
    fail(t, EXIT_TIMEOUT, 0, "timeout: event loop limit");
}

/* ------------------------------------------------------------------------ */

static int resolve(const char *host, const char *port, bool stream, bool numeric, int family,
                   sluice_addr *out, size_t cap, size_t *n_out)
{
    struct addrinfo hints, *res = NULL, *ai;
    int rc;
    size_t n = 0;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = stream ? SOCK_STREAM : SOCK_DGRAM;
    hints.ai_flags = numeric ? AI_NUMERICHOST : 0;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "sluice-turn: cannot resolve %s port %s: %s\n", host, port,
                gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai && n < cap; ai = ai->ai_next) {
        sluice_addr a;
        size_t i;
        if (sluice_addr_from_sockaddr(&a, ai->ai_addr, ai->ai_addrlen) < 0)
            continue;
        for (i = 0; i < n && !sluice_addr_equal(&a, &out[i]); i++)
            ;
        if (i == n)
            out[n++] = a;
    }
    freeaddrinfo(res);
    if (n == 0) {
        fprintf(stderr, "sluice-turn: %s has no usable address\n", host);
        return -1;
    }
    *n_out = n;
    return 0;
}

static int parse_args(struct tool *t, int argc, char **argv)
{
    static const struct option opts[] = {{"transport", required_argument, NULL, 't'},
                                         {"family", required_argument, NULL, 'f'},
                                         {"ca", required_argument, NULL, 'c'},
                                         {"insecure", no_argument, NULL, 'k'},
                                         {"ping", required_argument, NULL, 'p'},
                                         {"count", required_argument, NULL, 'n'},
                                         {"interval-ms", required_argument, NULL, 'i'},
                                         {"no-channel", no_argument, NULL, 'N'},
                                         {"lifetime", required_argument, NULL, 'l'},
                                         {"rto-ms", required_argument, NULL, 'r'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"user", required_argument, NULL, 'u'},
                                         {"password", required_argument, NULL, 'P'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    struct options *o = &t->o;
    int opt, transport_opt = -1, uri_transport;
    bool secure, count_set = false, interval_set = false;
    const char *why;

    o->family = SLUICE_TURN_FAMILY_IPV4;
    o->count = 5;
    o->interval_ms = 200;
    o->rto_ms = 500;
    while ((opt = getopt_long(argc, argv, "vhV", opts, NULL)) != -1) {
        switch (opt) {
        case 't':
            if (!strcmp(optarg, "udp"))
                transport_opt = SLUICE_TRANSPORT_UDP;
            else if (!strcmp(optarg, "tcp"))
                transport_opt = SLUICE_TRANSPORT_TCP;
            else if (!strcmp(optarg, "tls"))
                transport_opt = SLUICE_TRANSPORT_TLS;
            else
                return usage_error("--transport must be udp, tcp or tls");
            break;
        case 'f':
            if (!strcmp(optarg, "4"))
                o->family = SLUICE_TURN_FAMILY_IPV4;
            else if (!strcmp(optarg, "6"))
                o->family = SLUICE_TURN_FAMILY_IPV6;
            else if (!strcmp(optarg, "dual"))
                o->family = SLUICE_TURN_FAMILY_DUAL;
            else
                return usage_error("--family must be 4, 6 or dual");
            break;
        case 'c':
            o->ca_file = optarg;
            break;
        case 'k':
            o->insecure = true;
            break;
        case 'p':
            o->ping = optarg;
            break;
        case 'n':
            if (!parse_long(optarg, 1, MAX_COUNT, &o->count))
                return usage_error("--count must be 1..%d", MAX_COUNT);
            count_set = true;
            break;
        case 'i':
            if (!parse_long(optarg, 1, 60000, &o->interval_ms))
                return usage_error("--interval-ms must be 1..60000");
            interval_set = true;
            break;
        case 'N':
            o->no_channel = true;
            break;
        case 'l':
            if (!parse_long(optarg, 0, 86400, &o->lifetime_s))
                return usage_error("--lifetime must be 0..86400 seconds");
            break;
        case 'r':
            if (!parse_long(optarg, 1, 60000, &o->rto_ms))
                return usage_error("--rto-ms must be 1..60000");
            break;
        case 'j':
            o->json = true;
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'P':
            o->password = optarg;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'h':
            usage(stdout);
            return ARGS_ANSWERED;
        case 'V':
            printf("sluice-turn %s\n", sluice_version());
            return ARGS_ANSWERED;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1)
        return usage_error(optind < argc ? "exactly one turn: or turns: URI expected"
                                         : "missing the server URI (turn:HOST[:PORT])");
    why = parse_turn_uri(argv[optind], o, &secure, &uri_transport);
    if (why)
        return usage_error("bad URI '%s': %s", argv[optind], why);
    if (!o->user || !o->user[0])
        return usage_error("--user is required (TURN needs long-term credentials)");
    if (!o->password)
        return usage_error("--password is required");

    /* The URI names a transport when it says turns: or ?transport=; an
     * explicit --transport must agree with it. */
    if (secure)
        o->transport = SLUICE_TRANSPORT_TLS;
    else if (uri_transport >= 0)
        o->transport = (sluice_transport)uri_transport;
    else
        o->transport = SLUICE_TRANSPORT_UDP;
    if (transport_opt >= 0) {
        if ((secure || uri_transport >= 0) && (sluice_transport)transport_opt != o->transport)
            return usage_error("--transport %s contradicts the URI (%s)",
                               transport_name((sluice_transport)transport_opt),
                               transport_name(o->transport));
        o->transport = (sluice_transport)transport_opt;
    }
    if (!o->port[0])
        snprintf(o->port, sizeof o->port, "%s",
                 o->transport == SLUICE_TRANSPORT_TLS ? "5349" : "3478");
    if ((o->ca_file || o->insecure) && o->transport != SLUICE_TRANSPORT_TLS)
        return usage_error("--ca and --insecure apply to TLS only");
    if (o->ca_file && o->insecure)
        return usage_error("--ca and --insecure exclude each other");
    if (!o->ping && (count_set || interval_set || o->no_channel))
        return usage_error("--count, --interval-ms and --no-channel need --ping");
    if ((o->count - 1) * o->interval_ms > MAX_SCHEDULE_MS)
        return usage_error("--count x --interval-ms must stay under %d s", MAX_SCHEDULE_MS / 1000);
    return 0;
}

/* Resolve the peer now, so a typo fails before the server is bothered.
 * Only addresses of the requested relay family qualify. */
static int resolve_peer(struct tool *t)
{
    char host[256], port[16];
    sluice_addr all[MAX_ADDRS];
    size_t n = 0, i;
    long pn;

    if (split_peer(t->o.ping, host, sizeof host, port, sizeof port) < 0 ||
        !parse_long(port, 1, 65535, &pn))
        return usage_error("--ping wants HOST:PORT or [IPv6]:PORT, got '%s'", t->o.ping);
    if (resolve(host, port, false, t->o.ping[0] == '[', AF_UNSPEC, all, MAX_ADDRS, &n) < 0)
        return EXIT_NETWORK;
    for (i = 0; i < n; i++) {
        bool ok = t->o.family == SLUICE_TURN_FAMILY_DUAL ||
                  (t->o.family == SLUICE_TURN_FAMILY_IPV4 && all[i].family == SLUICE_AF_INET) ||
                  (t->o.family == SLUICE_TURN_FAMILY_IPV6 && all[i].family == SLUICE_AF_INET6);
        if (ok)
            t->peer_cand[t->n_peer_cand++] = all[i];
    }
    if (t->n_peer_cand == 0)
        return usage_error("peer %s has no IPv%s address; choose --family to match", t->o.ping,
                           t->o.family == SLUICE_TURN_FAMILY_IPV6 ? "6" : "4");
    return 0;
}

int main(int argc, char **argv)
{
    static struct tool tool;
    struct tool *t = &tool;
    sluice_addr servers[MAX_ADDRS];
    size_t n_servers = 0, i;
    sluice_turn_client_config cfg;
    char why[160];
    int rc, err = 0;

    t->link.fd = -1;
    t->started_us = now_us();
    rc = parse_args(t, argc, argv);
    if (rc == ARGS_ANSWERED)
        return EXIT_OK;
    if (rc)
        return rc;
    if (t->o.verbose)
        sluice_set_log_hook(log_hook, NULL, SLUICE_LOG_DEBUG);
    if (t->o.ping && (rc = resolve_peer(t)) != 0)
        return rc;
    if (sluice_rng_fill(NULL, t->nonce, sizeof t->nonce) < 0) {
        fprintf(stderr, "sluice-turn: no randomness\n");
        return EXIT_NETWORK;
    }

    t->link.stream = t->o.transport != SLUICE_TRANSPORT_UDP;
    if (resolve(t->o.host, t->o.port, t->link.stream, t->o.numeric_host, AF_UNSPEC, servers,
                MAX_ADDRS, &n_servers) < 0)
        return EXIT_NETWORK;
    if (t->link.stream) {
        t->link.out = malloc(STREAM_OUT_CAP);
        if (!t->link.out) {
            fprintf(stderr, "sluice-turn: out of memory\n");
            return EXIT_NETWORK;
        }
    }
    /* UDP: the first address. TCP/TLS: the first that accepts a connection. */
    for (i = 0; i < n_servers; i++) {
        fmt_addr(&servers[i], t->server_text, sizeof t->server_text);
        t->link.fd =
            open_connected(&servers[i], t->link.stream, CONNECT_TIMEOUT_MS, why, sizeof why);
        if (t->link.fd >= 0)
            break;
        fprintf(stderr, "sluice-turn: %s\n", why);
        if (!t->link.stream)
            break;
    }
    if (t->link.fd < 0) {
        fail(t, EXIT_NETWORK, 0, "cannot reach %s port %s", t->o.host, t->o.port);
        print_result(t);
        free(t->link.out);
        return t->exit_code;
    }
    t->link.server = servers[i];
    vlog(t, "%s to %s", t->link.stream ? "connected" : "sending", t->server_text);

    sluice_turn_client_config_init(&cfg);
    cfg.server = t->link.server;
    cfg.transport = t->o.transport;
    cfg.server_name = t->o.host;
    cfg.ca_file = t->o.ca_file;
    cfg.tls_verify = !t->o.insecure;
    cfg.username = t->o.user;
    cfg.password = t->o.password;
    cfg.family = t->o.family;
    cfg.lifetime_s = (uint32_t)t->o.lifetime_s;
    cfg.max_permissions = 4;
    cfg.max_channels = 4;
    cfg.initial_rto_us = (uint64_t)t->o.rto_ms * 1000u;
    cfg.software = "sluice-turn";
    t->client = sluice_turn_client_new(&cfg, &err);
    if (!t->client) {
        fail(t, err == SLUICE_ERR_NOMEM ? EXIT_NETWORK : EXIT_FAILED, 0,
             "cannot create the client: %s%s", sluice_strerror(err),
             err == SLUICE_ERR_CRYPTO ? " (unreadable --ca file?)" : "");
        print_result(t);
        link_close(&t->link);
        free(t->link.out);
        return t->exit_code;
    }

    t->run_deadline_us = t->started_us + RUN_LIMIT_US;
    if (t->o.ping)
        t->run_deadline_us += (uint64_t)(t->o.count - 1) * (uint64_t)t->o.interval_ms * 1000u;
    run(t);
    if (!t->failed)
        t->exit_code = EXIT_OK;
    print_result(t);

    sluice_turn_client_free(t->client);
    link_close(&t->link);
    free(t->link.out);
    return t->exit_code;
}
