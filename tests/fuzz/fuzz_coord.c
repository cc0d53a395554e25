/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the coordinator: arbitrary bytes as decrypted frames
 * (the plaintext entry points skip TLS) into a server connection, next to
 * a second named client on a broadcast channel, with a "daemon" that
 * accepts streams to the coordinator and echoes their data; or into a
 * client with an application that accepts, sends and consumes. Input:
 * byte 0 picks the side and options, byte 1 the chunk size, the rest is
 * the stream. Checks the contract after every step: bounded output that
 * parses as frames for known connections, terminated strings, one terminal
 * event per connection, everything released (sanitizers catch leaks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/frame.h"
#include "coord/internal.h"
#include "sluice/sluice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(what)                                                                                 \
    do {                                                                                           \
        fprintf(stderr, "fuzz_coord: %s:%d: broken promise: %s\n", __FILE__, __LINE__, what);      \
        abort();                                                                                   \
    } while (0)

#define MS 1000ull
#define OPT_HELLO 0x01  /* say HELLO (server side) / WELCOME (client side) first */
#define OPT_JUMPS 0x02  /* move time by a minute now and then */
#define OPT_CLIENT 0x04 /* fuzz the client instead of the server */

static uint8_t out[70000];

static void check_str(const char *s)
{
    if (!s || memchr(s, 0, 4096) == NULL)
        FAIL("event string missing or not terminated");
}

/* Output of one connection is a sequence of whole frames only at the end,
 * but every header on the way must pass the rules. */
typedef struct framer {
    uint8_t hdr[12];
    size_t have;
    uint64_t skip;
} framer;

static void frames_in(framer *f, const uint8_t *p, size_t n)
{
    while (n) {
        if (f->skip) {
            size_t k = n < f->skip ? n : (size_t)f->skip;
            f->skip -= k;
            p += k;
            n -= k;
            continue;
        }
        size_t k = 12 - f->have < n ? 12 - f->have : n;
        memcpy(f->hdr + f->have, p, k);
        f->have += k;
        p += k;
        n -= k;
        if (f->have == 12) {
            coord_hdr h;
            const char *why;
            int code;
            coord_hdr_parse(f->hdr, 12, &h);
            if (coord_hdr_check(&h, SLUICE_COORD_MAX_MESSAGE_LIMIT, &why, &code) < 0)
                FAIL("a machine wrote a frame that breaks the header rules");
            f->skip = h.len;
            f->have = 0;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Server side */

typedef struct srv_run {
    sluice_coord_server *s;
    uint64_t a, b; /* fuzzed connection, the well-behaved one */
    bool a_closed, b_closed;
    framer fa, fb;
    uint64_t now;
} srv_run;

static void srv_drain(srv_run *r)
{
    sluice_coord_transmit meta;
    sluice_coord_server_event ev;
    int n;

    for (int i = 0; i < 10000; i++) {
        n = sluice_coord_server_poll_transmit(r->s, r->now, out, sizeof out, &meta);
        if (n < 0)
            FAIL("poll_transmit error");
        if (n == 0)
            break;
        if ((size_t)n > sizeof out)
            FAIL("poll_transmit overran its buffer");
        if (meta.conn == r->a)
            frames_in(&r->fa, out, (size_t)n);
        else if (meta.conn == r->b)
            frames_in(&r->fb, out, (size_t)n);
        else
            FAIL("output for an unknown connection");
    }
    while (sluice_coord_server_poll_event(r->s, &ev)) {
        check_str(ev.name);
        check_str(ev.label);
        check_str(ev.reason);
        if (!ev.data)
            FAIL("event data view is NULL");
        switch (ev.type) {
        case SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED:
            if (ev.conn == r->a) {
                if (r->a_closed)
                    FAIL("two terminal events");
                r->a_closed = true;
            } else if (ev.conn == r->b) {
                if (r->b_closed)
                    FAIL("two terminal events");
                r->b_closed = true;
            }
            break;
        case SLUICE_COORD_SERVER_EVENT_STREAM_INCOMING:
            if (ev.stream & 1)
                sluice_coord_server_accept_stream(r->s, r->now, ev.conn, ev.stream);
            break;
        case SLUICE_COORD_SERVER_EVENT_DATA:
            if (ev.len > SLUICE_COORD_MAX_MESSAGE_LIMIT)
                FAIL("message above the limit");
            /* An echo, a broadcast; either may be refused. */
            sluice_coord_server_send(r->s, r->now, ev.conn, ev.stream, ev.data, ev.len);
            sluice_coord_server_broadcast(r->s, r->now, "room", ev.data, ev.len < 64 ? ev.len : 64);
            break;
        case SLUICE_COORD_SERVER_EVENT_STREAM_FINISHED:
            sluice_coord_server_close_stream(r->s, r->now, ev.conn, ev.stream);
            break;
        default:
            break;
        }
    }
}

static void plain_frame(sluice_coord_server *s, uint64_t now, uint64_t conn, uint8_t type,
                        uint32_t stream, const uint8_t *p, size_t n)
{
    uint8_t f[600];
    coord_hdr_write(f, type, stream, (uint32_t)n);
    memcpy(f + 12, p, n);
    sluice_coord_server_handle_stream(s, now, conn, f, 12 + n);
}

static void fuzz_server(uint8_t opts, size_t chunk, const uint8_t *data, size_t size)
{
    sluice_coord_server_config cfg;
    srv_run r;
    uint8_t p[600];
    int n;

    memset(&r, 0, sizeof r);
    sluice_coord_server_config_init(&cfg);
    cfg.unix_time_s = 1700000000;
    cfg.max_connections = 4;
    cfg.max_streams_per_client = 8;
    cfg.max_channels = 4;
    cfg.max_members = 4;
    cfg.max_held_opens = 4;
    cfg.max_message = 4096;
    cfg.window = 16384;
    cfg.member_queue_bytes = 8192;
    cfg.max_control_queue = 64;
    cfg.max_events = 64;
    static const char *const uris[] = {"turn:relay.example:3478"};
    cfg.turn_secret = "fuzz";
    cfg.turn_uris = uris;
    cfg.n_turn_uris = 1;
    r.now = 1000 * MS;
    r.s = coord_server_new_plaintext(&cfg, NULL);
    if (!r.s)
        FAIL("server");
    uint8_t fp[32] = {1, 2, 3};
    if (coord_server_accept_plaintext(r.s, r.now, NULL, fp, &r.b) < 0 ||
        coord_server_accept_plaintext(r.s, r.now, NULL, NULL, &r.a) < 0)
        FAIL("accept");
    /* bob: named, on channel "room". */
    n = coord_enc_hello(p, sizeof p, "bob");
    plain_frame(r.s, r.now, r.b, CF_HELLO, 0, p, (size_t)n);
    n = coord_enc_open(p, sizeof p, SLUICE_COORD_KIND_BROADCAST, 0, "room", "", NULL);
    plain_frame(r.s, r.now, r.b, CF_OPEN, 1, p, (size_t)n);
    if (opts & OPT_HELLO) {
        n = coord_enc_hello(p, sizeof p, "alice");
        plain_frame(r.s, r.now, r.a, CF_HELLO, 0, p, (size_t)n);
    }
    srv_drain(&r);
    size_t pieces = 0;
    while (size) {
        size_t k = size < chunk ? size : chunk;
        sluice_coord_server_handle_stream(r.s, r.now, r.a, data, k);
        data += k;
        size -= k;
        pieces++;
        r.now += MS;
        if ((opts & OPT_JUMPS) && pieces % 7 == 0)
            r.now += 61000 * MS;
        sluice_coord_server_handle_timeout(r.s, r.now);
        srv_drain(&r);
    }
    sluice_coord_server_connection_closed(r.s, r.now, r.a);
    sluice_coord_server_connection_closed(r.s, r.now, r.b);
    srv_drain(&r);
    if (!r.a_closed || !r.b_closed)
        FAIL("a connection ended without its terminal event");
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(r.s, &st);
    if (st.connections || st.streams || st.channels || st.held_opens || st.clients)
        FAIL("state left behind after every connection closed");
    sluice_coord_server_free(r.s);
}

/* ------------------------------------------------------------------------ */
/* Client side */

static void fuzz_client(uint8_t opts, size_t chunk, const uint8_t *data, size_t size)
{
    sluice_coord_client_config cfg;
    sluice_coord_client *c;
    sluice_coord_transmit meta;
    sluice_coord_event ev;
    framer f = {0};
    uint64_t now = 1000 * MS;
    bool terminal = false;

    sluice_coord_client_config_init(&cfg);
    cfg.name = "alice";
    cfg.max_streams = 8;
    cfg.max_events = 32;
    cfg.recv_queue_bytes = 8192;
    cfg.non_blocking = (opts & 0x08) != 0;
    cfg.manual_credit = (opts & 0x10) != 0;
    c = coord_client_new_plaintext(&cfg, NULL);
    if (!c || sluice_coord_client_start(c, now) < 0)
        FAIL("client");
    if (opts & OPT_HELLO) {
        uint8_t w[12 + 16];
        coord_welcome wl = {SLUICE_COORD_VERSION, 4096, 16384, 30000};
        coord_hdr_write(w, CF_WELCOME, 0, 16);
        coord_enc_welcome(w + 12, 16, &wl);
        sluice_coord_client_handle_stream(c, now, w, sizeof w);
        sluice_coord_client_open_stream(c, now, SLUICE_COORD_KIND_PEER, "bob", "x", 0, 0);
        sluice_coord_client_open_stream(c, now, SLUICE_COORD_KIND_BROADCAST, "room", NULL, 0, 0);
    }
    size_t pieces = 0;
    for (;;) {
        int n;
        while ((n = sluice_coord_client_poll_transmit(c, now, out, sizeof out, &meta)) > 0) {
            if ((size_t)n > sizeof out)
                FAIL("poll_transmit overran its buffer");
            frames_in(&f, out, (size_t)n);
        }
        if (n < 0)
            FAIL("poll_transmit error");
        while (sluice_coord_client_poll_event(c, &ev)) {
            check_str(ev.name);
            check_str(ev.label);
            check_str(ev.sender);
            check_str(ev.reason);
            check_str(ev.turn.username);
            check_str(ev.turn.password);
            if (ev.turn.n_uris > SLUICE_COORD_TURN_URIS_MAX)
                FAIL("too many TURN URIs");
            for (size_t i = 0; i < ev.turn.n_uris; i++)
                check_str(ev.turn.uris[i]);
            switch (ev.type) {
            case SLUICE_COORD_EVENT_REFUSED:
            case SLUICE_COORD_EVENT_CLOSED:
                if (terminal)
                    FAIL("two terminal events");
                terminal = true;
                break;
            case SLUICE_COORD_EVENT_STREAM_INCOMING:
                if (ev.stream % 3)
                    sluice_coord_client_accept_stream(c, now, ev.stream);
                else
                    sluice_coord_client_refuse_stream(c, now, ev.stream, 15, "no");
                break;
            case SLUICE_COORD_EVENT_DATA:
                if (ev.len > SLUICE_COORD_MAX_MESSAGE_LIMIT)
                    FAIL("message above the limit");
                sluice_coord_client_consume(c, now, ev.stream, ev.len);
                sluice_coord_client_send(c, now, ev.stream, ev.data, ev.len < 32 ? ev.len : 32);
                break;
            case SLUICE_COORD_EVENT_STREAM_FINISHED:
                sluice_coord_client_close_stream(c, now, ev.stream);
                break;
            default:
                break;
            }
        }
        if (!size)
            break;
        size_t k = size < chunk ? size : chunk;
        sluice_coord_client_handle_stream(c, now, data, k);
        data += k;
        size -= k;
        pieces++;
        now += MS;
        if ((opts & OPT_JUMPS) && pieces % 7 == 0)
            now += 20000 * MS;
        sluice_coord_client_handle_timeout(c, now);
    }
    sluice_coord_client_connection_closed(c, now);
    while (sluice_coord_client_poll_event(c, &ev))
        if (ev.type == SLUICE_COORD_EVENT_REFUSED || ev.type == SLUICE_COORD_EVENT_CLOSED) {
            if (terminal)
                FAIL("two terminal events");
            terminal = true;
        }
    if (!terminal)
        FAIL("the client ended without its terminal event");
    sluice_coord_client_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t opts = data[0];
    size_t chunk = data[1] ? data[1] : SIZE_MAX;
    if (opts & OPT_CLIENT)
        fuzz_client(opts, chunk, data + 2, size - 2);
    else
        fuzz_server(opts, chunk, data + 2, size - 2);
    return 0;
}
