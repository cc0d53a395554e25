/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the ICE agent mid-session: an agent with two
 * components, remote credentials and candidates, checks under way, is
 * driven by the input — arbitrary datagrams from remote addresses,
 * well-formed checks carrying fuzzed attributes (so the fuzzer gets past
 * MESSAGE-INTEGRITY), answers to the agent's own requests with fuzzed
 * bodies, candidate strings, time jumps, restarts, and the stream of a
 * TURN allocation over TCP (a scripted server answers it; the input splits
 * its answers anywhere, interleaves fuzzed stream bytes, Data indications
 * and ChannelData, or closes the stream) — checking the contract after
 * every step: bounded output, transmits with a source base, deadlines that
 * move, events FIFO, media views inside the agent's buffer or the
 * datagram, no crash, no leak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_turn.h"
#include "sluice/sluice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(what)                                                                                 \
    do {                                                                                           \
        fprintf(stderr, "fuzz_ice: %s:%d: broken promise: %s\n", __FILE__, __LINE__, what);       \
        abort();                                                                                   \
    } while (0)

struct in {
    const uint8_t *p;
    size_t n;
};

static uint8_t take(struct in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static size_t take_n(struct in *in, const uint8_t **out, size_t max)
{
    size_t n = take(in);
    n = n * 8 + take(in) % 8;
    if (n > max)
        n = max;
    if (n > in->n)
        n = in->n;
    *out = in->p;
    in->p += n;
    in->n -= n;
    return n;
}

struct st {
    sluice_ice_agent *a;
    uint64_t now;
    sluice_addr base[2], remote[4];
    char rpwd[32];
    uint8_t last_txid[12];
    bool have_txid;
    sluice_addr last_dst;
    sluice_test_rng rng;
    /* TURN over TCP from base[0]: the scripted server's answers, waiting
     * for the input to deliver them */
    struct fake_turn turn;
    sluice_addr turn_server;
    uint8_t turn_out[4096];
    size_t turn_len;
};

static void drain(struct st *t)
{
    uint8_t buf[2048];
    sluice_transmit meta;
    sluice_ice_event ev;
    int n, i;
    for (i = 0; i < 4096; i++) {
        n = sluice_ice_agent_poll_transmit(t->a, t->now, buf, sizeof buf, &meta);
        if (n == 0)
            break;
        if (n < 0 || n > (int)sizeof buf)
            FAIL("poll_transmit length");
        if (meta.source.family == SLUICE_AF_NONE)
            FAIL("transmit without a source base");
        if (meta.transport == SLUICE_TRANSPORT_TCP) {
            if (!sluice_addr_equal(&meta.destination, &t->turn_server) ||
                !sluice_addr_equal(&meta.source, &t->base[0]))
                FAIL("stream bytes for a stream nobody configured");
            /* one whole message per transmit over TCP */
            int r = fake_turn_answer(&t->turn, buf, (size_t)n, t->turn_out + t->turn_len,
                                     sizeof t->turn_out - t->turn_len);
            if (r > 0)
                t->turn_len += (size_t)r;
            continue;
        }
        if (meta.transport != SLUICE_TRANSPORT_UDP)
            FAIL("transmit over a transport nobody configured");
        if (n >= 20 && buf[0] < 2) { /* our request: remember its ID to answer it */
            memcpy(t->last_txid, buf + 8, 12);
            t->have_txid = true;
            t->last_dst = meta.destination;
        }
    }
    if (i == 4096)
        FAIL("endless transmits");
    for (i = 0; i < 100000 && sluice_ice_agent_poll_event(t->a, &ev); i++)
        ;
    if (i == 100000)
        FAIL("endless events");
}

static void deliver(struct st *t, const sluice_addr *local, const sluice_addr *from,
                    const uint8_t *d, size_t n)
{
    sluice_ice_media m;
    int rc = sluice_ice_agent_handle_datagram(t->a, t->now, local, from, d, n, &m);
    if (rc < 0)
        FAIL("handle_datagram error on a valid call");
    if (rc == 1 && (m.data < d || m.data + m.len > d + n))
        FAIL("media view outside the datagram");
    drain(t);
}

/* Bytes on the TURN stream; then every media datagram they completed. */
static void stream_in(struct st *t, const uint8_t *d, size_t n)
{
    sluice_ice_media m;
    int rc = sluice_ice_agent_handle_stream(t->a, t->now, &t->base[0], &t->turn_server,
                                            SLUICE_TRANSPORT_TCP, d, n, &m);
    if (rc == SLUICE_ERR_INVALID)
        FAIL("handle_stream: a valid call refused");
    /* rc < 0: the stream broke, or was given up before: both are fine */
    for (int i = 0; rc == 1; i++) {
        if (i > 70000)
            FAIL("endless media from one chunk");
        if (!m.data || m.len > 65535)
            FAIL("stream media view");
        rc = sluice_ice_agent_handle_stream(t->a, t->now, &t->base[0], &t->turn_server,
                                            SLUICE_TRANSPORT_TCP, NULL, 0, &m);
        if (rc < 0)
            FAIL("handle_stream: an error while draining");
    }
    drain(t);
}

/* Stream input: the server's pending answers split where the input says,
 * fuzzed bytes, a Data indication or ChannelData with a fuzzed payload, or
 * the end of the stream. */
static void stream_op(struct st *t, struct in *in, uint8_t op)
{
    uint8_t buf[1600];
    const uint8_t *d;
    size_t n = take_n(in, &d, 1500);
    switch ((op >> 4) & 7) {
    case 0:
    case 1:
    case 2: { /* pending answers, cut at a fuzzed point */
        size_t cut = t->turn_len ? (size_t)take(in) * 7 % (t->turn_len + 1) : 0;
        uint8_t copy[sizeof t->turn_out];
        size_t len = t->turn_len;
        memcpy(copy, t->turn_out, len);
        t->turn_len = 0;
        stream_in(t, copy, cut);
        stream_in(t, copy + cut, len - cut);
        break;
    }
    case 3: {
        int r = fake_turn_data_indication(&t->remote[op & 3], d, n, buf, sizeof buf);
        if (r > 0)
            stream_in(t, buf, (size_t)r);
        break;
    }
    case 4: { /* ChannelData, padded (RFC 8656 §12.5) or not */
        size_t total = 4 + n + ((op & 8) ? (4 - n % 4) % 4 : 0);
        sluice_turn_channel_header(buf, (uint16_t)(0x4000 + (op & 3)), (uint16_t)n);
        memcpy(buf + 4, d, n);
        memset(buf + 4 + n, 0, total - 4 - n);
        stream_in(t, buf, total);
        break;
    }
    case 5:
        if (op & 8) {
            int rc = sluice_ice_agent_handle_stream_closed(t->a, t->now, &t->base[0],
                                                           &t->turn_server, SLUICE_TRANSPORT_TCP);
            if (rc != 0 && rc != SLUICE_ERR_NOT_FOUND)
                FAIL("handle_stream_closed");
            drain(t);
            break;
        }
        /* fall through */
    default:
        stream_in(t, d, n);
        break;
    }
}

/* A check or an answer with valid integrity around fuzzed attributes. */
static void signed_msg(struct st *t, struct in *in, bool answer)
{
    uint8_t buf[1500];
    sluice_stun_writer w;
    sluice_stun_key key;
    const char *lu;
    char user[80];
    uint8_t txid[12];
    const uint8_t *attrs;
    size_t na = take_n(in, &attrs, 256);
    uint8_t flags = take(in);

    sluice_ice_agent_local_credentials(t->a, 1, &lu, NULL);
    if (answer) {
        if (!t->have_txid)
            return;
        memcpy(txid, t->last_txid, 12);
        sluice_stun_writer_init(&w, buf, sizeof buf,
                                sluice_stun_type(SLUICE_STUN_BINDING, flags & 1 ? SLUICE_STUN_ERROR
                                                                                : SLUICE_STUN_SUCCESS),
                                txid);
        if (flags & 1)
            sluice_stun_put_error_code(&w, flags & 2 ? 487 : 400 + (flags >> 4), NULL);
        else
            sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS,
                                        &t->remote[flags >> 6]);
        sluice_stun_key_short_term(&key, t->rpwd, strlen(t->rpwd));
    } else {
        const char *lpwd;
        sluice_ice_agent_local_credentials(t->a, 1, NULL, &lpwd);
        for (int i = 0; i < 12; i++)
            txid[i] = take(in);
        sluice_stun_writer_init(&w, buf, sizeof buf,
                                sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST), txid);
        snprintf(user, sizeof user, "%s:RFRAG", lu);
        sluice_stun_put(&w, SLUICE_STUN_ATTR_USERNAME, user, strlen(user));
        sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY, 1 + (flags & 0x3F) * 1000);
        sluice_stun_put_u64(&w, flags & 0x40 ? SLUICE_STUN_ATTR_ICE_CONTROLLING
                                             : SLUICE_STUN_ATTR_ICE_CONTROLLED,
                            (uint64_t)flags << 56);
        if (flags & 0x80)
            sluice_stun_put_empty(&w, SLUICE_STUN_ATTR_USE_CANDIDATE);
        sluice_stun_key_short_term(&key, lpwd, strlen(lpwd));
    }
    /* Raw fuzzed attributes (the writer keeps the message well framed). */
    for (size_t off = 0; off + 4 <= na;) {
        uint16_t ty = (uint16_t)(attrs[off] << 8 | attrs[off + 1]);
        size_t l = attrs[off + 2] % 64;
        off += 3;
        if (l > na - off)
            l = na - off;
        if (ty != SLUICE_STUN_ATTR_MESSAGE_INTEGRITY && ty != SLUICE_STUN_ATTR_FINGERPRINT &&
            ty != SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256)
            sluice_stun_put(&w, ty, attrs + off, l);
        off += l;
    }
    sluice_stun_put_integrity(&w, &key);
    sluice_stun_put_fingerprint(&w);
    sluice_stun_key_clear(&key);
    int n = sluice_stun_writer_result(&w);
    if (n > 0)
        deliver(t, &t->base[flags & 1], answer ? &t->last_dst : &t->remote[flags >> 6], buf,
                (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct st t;
    struct in in = {data, size};
    sluice_ice_config cfg;
    memset(&t, 0, sizeof t);
    sluice_test_rng_init(&t.rng, 1);
    sluice_ice_config_init(&cfg);
    cfg.controlling = size & 1;
    cfg.rng.fill = sluice_test_rng_fill;
    cfg.rng.ctx = &t.rng;
    cfg.max_remote_candidates = 16;
    cfg.max_pairs = 24;
    t.a = sluice_ice_agent_new(&cfg, NULL);
    if (!t.a)
        FAIL("agent");
    t.now = 1000000;
    fake_turn_init(&t.turn);
    sluice_addr_parse(&t.turn_server, "203.0.113.5:3478", 0);
    sluice_ice_turn_server ts = {.server = t.turn_server, .transport = SLUICE_TRANSPORT_TCP,
                                 .username = "alice", .password = "secret"};
    if (sluice_ice_agent_add_turn_server(t.a, &ts) != 0)
        FAIL("add_turn_server over TCP");
    sluice_ice_agent_add_stream(t.a, 2);
    sluice_addr_parse(&t.base[0], "192.0.2.1:5000", 0);
    sluice_addr_parse(&t.base[1], "[2001:db8::1]:5000", 0);
    sluice_addr_parse(&t.remote[0], "198.51.100.1:6000", 0);
    sluice_addr_parse(&t.remote[1], "198.51.100.2:6001", 0);
    sluice_addr_parse(&t.remote[2], "[2001:db8::2]:6000", 0);
    sluice_addr_parse(&t.remote[3], "203.0.113.9:7000", 0); /* never signalled */
    sluice_ice_agent_add_base(t.a, t.now, 1, 1, &t.base[0]);
    sluice_ice_agent_add_base(t.a, t.now, 1, 2, &t.base[1]);
    snprintf(t.rpwd, sizeof t.rpwd, "remotepasswordremotepass");
    sluice_ice_agent_set_remote_credentials(t.a, t.now, 1, "RFRAG", t.rpwd);
    sluice_ice_agent_gather(t.a, t.now);
    const char *cands[] = {
        "candidate:a 1 udp 2130706431 198.51.100.1 6000 typ host",
        "candidate:b 1 udp 1694498815 198.51.100.2 6001 typ srflx raddr 10.0.0.1 rport 1",
        "candidate:c 2 udp 2130706430 2001:db8::2 6000 typ host",
    };
    for (size_t i = 0; i < 3; i++) {
        sluice_ice_candidate c;
        if (sluice_ice_candidate_parse(&c, cands[i]) == 0)
            sluice_ice_agent_add_remote_candidate(t.a, t.now, 1, &c);
    }
    drain(&t);

    for (int step = 0; step < 256 && in.n; step++) {
        uint8_t op = take(&in);
        const uint8_t *d;
        size_t n;
        switch (op % 9) {
        case 0: /* raw datagram */
            n = take_n(&in, &d, 1500);
            deliver(&t, &t.base[op >> 7], &t.remote[(op >> 3) & 3], d, n);
            break;
        case 1:
            signed_msg(&t, &in, false);
            break;
        case 2:
            signed_msg(&t, &in, true);
            break;
        case 3: { /* a candidate line */
            char line[300];
            n = take_n(&in, &d, sizeof line - 1);
            memcpy(line, d, n);
            line[n] = '\0';
            sluice_ice_candidate c;
            if (sluice_ice_candidate_parse(&c, line) == 0) {
                char back[300];
                if (sluice_ice_candidate_format(&c, back, sizeof back) < 0)
                    FAIL("a parsed candidate does not format");
                sluice_ice_agent_add_remote_candidate(t.a, t.now, 1, &c);
            }
            drain(&t);
            break;
        }
        case 4: { /* time: to the deadline, or a jump */
            uint64_t next = sluice_ice_agent_next_timeout(t.a);
            uint64_t jump = (uint64_t)take(&in) * 100000;
            if (next != SLUICE_NEVER && next > t.now && (op & 0x80))
                t.now = next;
            else
                t.now += jump;
            sluice_ice_agent_handle_timeout(t.a, t.now);
            drain(&t);
            break;
        }
        case 5:
            if (op & 0x80) {
                sluice_ice_agent_restart(t.a, t.now, 1);
                sluice_ice_agent_set_remote_credentials(t.a, t.now, 1, "RFRAG2", t.rpwd);
            } else {
                sluice_ice_agent_end_of_candidates(t.a, t.now, 1);
            }
            drain(&t);
            break;
        case 6: { /* the data path */
            sluice_ice_route r;
            uint8_t out[2048];
            sluice_transmit meta;
            unsigned comp = 1 + (op >> 7);
            if (sluice_ice_agent_route(t.a, 1, comp, &r) == 0) {
                if (r.base.family == SLUICE_AF_NONE)
                    FAIL("route without a base");
                int k = sluice_ice_agent_send(t.a, t.now, 1, comp, (const uint8_t *)"x", 1, out,
                                              sizeof out, &meta);
                if (k < 0)
                    FAIL("send on a valid route");
            }
            break;
        }
        case 7:
            stream_op(&t, &in, op);
            break;
        default: {
            sluice_ice_pair_stats ps[32];
            int k = sluice_ice_agent_pair_stats(t.a, 1, ps, 32);
            if (k < 0 || k > (int)cfg.max_pairs)
                FAIL("pair table over its bound");
            break;
        }
        }
        uint64_t next = sluice_ice_agent_next_timeout(t.a);
        if (next < t.now) {
            /* A deadline in the past must move once handled. */
            sluice_ice_agent_handle_timeout(t.a, t.now);
            drain(&t);
            int spins = 0;
            while (sluice_ice_agent_next_timeout(t.a) <= t.now && spins++ < 64) {
                sluice_ice_agent_handle_timeout(t.a, t.now);
                drain(&t);
            }
            if (spins >= 64)
                FAIL("a deadline that never moves");
        }
    }
    sluice_ice_agent_free(t.a);
    return 0;
}
