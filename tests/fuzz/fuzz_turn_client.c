/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the TURN client: a client is brought to an
 * allocation with a bound channel by the scripted server, then driven by
 * the input — arbitrary datagrams or stream bytes, server answers with the
 * outstanding request's transaction ID patched in, time jumps, API calls —
 * checking the contract after every step (bounded output, sane deadlines,
 * FIFO events, no crash, no leak). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_turn.h"
#include "sluice/sluice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(what)                                                                                 \
    do {                                                                                           \
        fprintf(stderr, "fuzz_turn_client: %s:%d: broken promise: %s\n", __FILE__, __LINE__,      \
                what);                                                                             \
        abort();                                                                                   \
    } while (0)

struct st {
    sluice_turn_client *c;
    struct fake_turn s;
    sluice_addr server;
    uint64_t now;
    bool stream;
    uint8_t last_req[2048];
    size_t last_req_len;
};

/* Drain transmits (answering them with the scripted server when asked),
 * events and received data; check the contract on the way. */
static void drain(struct st *t, bool answer)
{
    for (int i = 0; i < 256; i++) {
        uint8_t buf[2048], resp[2048];
        sluice_transmit tx;
        int n = sluice_turn_client_poll_transmit(t->c, t->now, buf, sizeof buf, &tx);
        if (n < 0 && n != SLUICE_ERR_NOSPACE)
            FAIL("poll_transmit error");
        if (n <= 0)
            break;
        if ((size_t)n > sizeof buf)
            FAIL("poll_transmit overran its buffer");
        memcpy(t->last_req, buf, (size_t)n);
        t->last_req_len = (size_t)n;
        if (answer) {
            int r = fake_turn_answer(&t->s, buf, (size_t)n, resp, sizeof resp);
            if (r > 0)
                sluice_turn_client_handle_datagram(t->c, t->now, &t->server, resp, (size_t)r);
        }
    }
    sluice_turn_event ev;
    for (int i = 0; i < 100000 && sluice_turn_client_poll_event(t->c, &ev); i++) {
        if (ev.type < SLUICE_TURN_EVENT_ALLOCATED || ev.type > SLUICE_TURN_EVENT_CLOSED)
            FAIL("event type out of range");
        if (ev.n_relayed > 2)
            FAIL("n_relayed > 2");
        if (memchr(ev.text, 0, sizeof ev.text) == NULL)
            FAIL("event text not terminated");
    }
    uint8_t buf[70000];
    size_t len;
    sluice_addr peer;
    int r;
    for (int i = 0; i < 100000 && (r = sluice_turn_client_recv(t->c, &peer, buf, sizeof buf, &len)) != 0;
         i++) {
        if (r != 1 || len > 65535)
            FAIL("recv");
    }
    uint64_t nt = sluice_turn_client_next_timeout(t->c);
    (void)nt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct st t;
    memset(&t, 0, sizeof t);
    fake_turn_init(&t.s);
    sluice_addr_parse(&t.server, "192.0.2.10:3478", 0);
    t.now = 1000000;
    t.stream = data[0] & 1;
    sluice_test_rng rng;
    sluice_test_rng_init(&rng, 1);
    sluice_turn_client_config cfg;
    sluice_turn_client_config_init(&cfg);
    cfg.server = t.server;
    cfg.transport = t.stream ? SLUICE_TRANSPORT_TCP : SLUICE_TRANSPORT_UDP;
    cfg.family = (data[0] >> 1) % 3 + 1;
    cfg.username = "alice";
    cfg.password = "secret";
    cfg.max_permissions = 8;
    cfg.max_channels = 8;
    cfg.rng.fill = sluice_test_rng_fill;
    cfg.rng.ctx = &rng;
    t.c = sluice_turn_client_new(&cfg, NULL);
    if (!t.c)
        FAIL("new");
    sluice_addr peer;
    sluice_addr_parse(&peer, "198.51.100.20:5000", 0);
    if (data[0] & 0x80) {
        /* stay mid-allocation: fuzz the Allocate answers themselves */
        sluice_turn_client_allocate(t.c, t.now);
        drain(&t, false);
    } else {
        sluice_turn_client_allocate(t.c, t.now);
        drain(&t, true);
        sluice_turn_client_bind_channel(t.c, t.now, &peer);
        drain(&t, true);
    }

    size_t i = 1;
    while (i + 3 <= size) {
        uint8_t op = data[i];
        size_t len = (size_t)data[i + 1] << 8 | data[i + 2];
        i += 3;
        if (len > size - i)
            len = size - i;
        const uint8_t *arg = data + i;
        i += len;
        uint8_t tmp[2048];
        switch (op % 8) {
        case 0: /* raw bytes from the server */
            sluice_turn_client_handle_datagram(t.c, t.now, &t.server, arg, len);
            break;
        case 1: /* an answer to the outstanding request: its txid patched in */
            if (len >= 20 && len <= sizeof tmp && t.last_req_len >= 20) {
                memcpy(tmp, arg, len);
                memcpy(tmp + 4, t.last_req + 4, 16);
                tmp[2] = (uint8_t)((len - 20) >> 8);
                tmp[3] = (uint8_t)(len - 20);
                sluice_turn_client_handle_datagram(t.c, t.now, &t.server, tmp, len);
            }
            break;
        case 2: { /* time passes: up to ~11 minutes per step */
            uint64_t step = len ? (uint64_t)arg[0] * 2600000 : 1000;
            uint64_t until = t.now + step;
            for (int k = 0; k < 1000; k++) {
                uint64_t nt = sluice_turn_client_next_timeout(t.c);
                if (nt > until)
                    break;
                if (nt > t.now)
                    t.now = nt;
                sluice_turn_client_handle_timeout(t.c, t.now);
                drain(&t, (op & 0x80) != 0);
            }
            t.now = until;
            sluice_turn_client_handle_timeout(t.c, t.now);
            break;
        }
        case 3: { /* a permission or channel for a peer from the input */
            sluice_addr p = peer;
            if (len >= 1)
                p.ip[3] = arg[0];
            if (len >= 2)
                p.port = arg[1];
            if (op & 0x80)
                sluice_turn_client_bind_channel(t.c, t.now, &p);
            else
                sluice_turn_client_create_permission(t.c, t.now, &p);
            break;
        }
        case 4: { /* send peer data */
            uint8_t out[2048];
            sluice_transmit tx;
            int n = sluice_turn_client_send(t.c, t.now, &peer, arg, len > 1500 ? 1500 : len, out,
                                            sizeof out, &tx);
            if (n > (int)sizeof out)
                FAIL("send overran");
            sluice_turn_route route;
            sluice_turn_client_route(t.c, &peer, &route);
            break;
        }
        case 5: { /* the fast path */
            const uint8_t *payload;
            size_t plen;
            sluice_addr from;
            int r = sluice_turn_client_unwrap(t.c, &t.server, arg, len, &from, &payload, &plen);
            if (r == 1 && (payload < arg || payload + plen > arg + len))
                FAIL("unwrap view outside the datagram");
            break;
        }
        case 6:
            if (op & 0x80)
                sluice_turn_client_handle_stream_closed(t.c, t.now);
            else
                sluice_turn_client_close(t.c, t.now);
            break;
        case 7: /* let the scripted server answer what is pending */
            drain(&t, true);
            break;
        }
        drain(&t, false);
    }
    sluice_turn_client_free(t.c);
    return 0;
}
