/* SPDX-License-Identifier: MIT */
/* TURN client on virtual time against a scripted server: every state
 * transition, timer and error response of RFC 8656 §7-§12 that the client
 * handles, over UDP and TCP framing. */
#include "test.h"

#include "fail_alloc.h"

#include "fake_turn.h"
#include "sluice/sluice.h"

#define MS 1000ull
#define S 1000000ull

static sluice_test_rng rng;

struct env {
    sluice_turn_client *c;
    struct fake_turn s;
    sluice_addr server;
    uint64_t now;
    sluice_transport transport;
    bool drop_to_server;   /* lose everything the client sends */
    bool byte_by_byte;     /* stream: deliver the server's bytes one at a time */
    unsigned sent;         /* messages the client sent */
    uint8_t last_tx[70000];
    size_t last_tx_len;
};

static void env_init(struct env *e, sluice_transport transport, sluice_turn_family family)
{
    memset(e, 0, sizeof *e);
    fake_turn_init(&e->s);
    sluice_addr_parse(&e->server, "192.0.2.10:3478", 0);
    e->transport = transport;
    e->now = 1000 * S;
    sluice_test_rng_init(&rng, 7);
    sluice_turn_client_config cfg;
    sluice_turn_client_config_init(&cfg);
    cfg.server = e->server;
    cfg.transport = transport;
    cfg.username = "alice";
    cfg.password = "secret";
    cfg.family = family;
    cfg.software = "sluice-test";
    cfg.rng.fill = sluice_test_rng_fill;
    cfg.rng.ctx = &rng;
    int err = 1;
    e->c = sluice_turn_client_new(&cfg, &err);
    CHECK(e->c != NULL);
    CHECK_EQ(err, 0);
}

static void deliver(struct env *e, const uint8_t *data, size_t len)
{
    if (e->transport == SLUICE_TRANSPORT_UDP || !e->byte_by_byte) {
        sluice_turn_client_handle_datagram(e->c, e->now, &e->server, data, len);
        return;
    }
    for (size_t i = 0; i < len; i++)
        sluice_turn_client_handle_datagram(e->c, e->now, &e->server, data + i, 1);
}

/* Move everything the client wants to send to the server and the answers
 * back, until quiet. */
static void exchange(struct env *e)
{
    for (int round = 0; round < 64; round++) {
        uint8_t buf[2048], resp[2048];
        sluice_transmit tx;
        int n = sluice_turn_client_poll_transmit(e->c, e->now, buf, sizeof buf, &tx);
        if (n <= 0)
            return;
        CHECK_EQ(tx.transport, e->transport);
        /* the server answers from where the client sent (after redirects) */
        e->server = tx.destination;
        e->sent++;
        memcpy(e->last_tx, buf, (size_t)n);
        e->last_tx_len = (size_t)n;
        if (e->drop_to_server)
            continue;
        int r = fake_turn_answer(&e->s, buf, (size_t)n, resp, sizeof resp);
        CHECK(r >= 0);
        if (r > 0)
            deliver(e, resp, (size_t)r);
    }
    CHECK(!"exchange did not settle");
}

/* Advance virtual time to `until`, firing every deadline on the way. */
static void advance(struct env *e, uint64_t until)
{
    for (int i = 0; i < 100000; i++) {
        exchange(e);
        uint64_t t = sluice_turn_client_next_timeout(e->c);
        if (t > until)
            break;
        if (t > e->now)
            e->now = t;
        sluice_turn_client_handle_timeout(e->c, e->now);
    }
    e->now = until;
    sluice_turn_client_handle_timeout(e->c, e->now);
    exchange(e);
}

static bool next_event(struct env *e, sluice_turn_event *ev)
{
    return sluice_turn_client_poll_event(e->c, ev);
}

/* Expect the next event to be of type t. */
static void expect(struct env *e, sluice_turn_event_type t, sluice_turn_event *out)
{
    sluice_turn_event ev;
    bool got = next_event(e, &ev);
    CHECK(got);
    if (got && ev.type != t)
        fprintf(stderr, "# expected event %d, got %d (code %d, reason %d, %s)\n", (int)t,
                (int)ev.type, ev.error_code, ev.reason, ev.text);
    CHECK_EQ(got ? ev.type : 0, t);
    if (out)
        *out = ev;
}

static void no_event(struct env *e)
{
    sluice_turn_event ev;
    bool got = next_event(e, &ev);
    if (got)
        fprintf(stderr, "# unexpected event %d (%s)\n", (int)ev.type, ev.text);
    CHECK(!got);
}

static void allocated(struct env *e)
{
    CHECK_EQ(sluice_turn_client_allocate(e->c, e->now), 0);
    exchange(e);
    expect(e, SLUICE_TURN_EVENT_ALLOCATED, NULL);
}

static void env_free(struct env *e)
{
    sluice_turn_client_free(e->c);
}

/* ------------------------------------------------------------------------ */

static void test_allocate_udp(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), SLUICE_ERR_STATE);
    exchange(&e);
    /* RFC 8489 §9.2: unauthenticated first, challenged, then signed. */
    CHECK_EQ(e.s.requests[SLUICE_STUN_ALLOCATE], 2);
    CHECK_EQ(e.s.authenticated[SLUICE_STUN_ALLOCATE], 1);
    CHECK_EQ(e.s.last_family, 0); /* IPv4 default: no REQUESTED-ADDRESS-FAMILY */
    sluice_turn_event ev;
    expect(&e, SLUICE_TURN_EVENT_ALLOCATED, &ev);
    CHECK_EQ(ev.n_relayed, 1);
    CHECK(sluice_addr_equal(&ev.relayed[0], &e.s.relayed4));
    CHECK(sluice_addr_equal(&ev.mapped, &e.s.mapped));
    CHECK_EQ(ev.lifetime_s, 600);
    CHECK_EQ(ev.failed_family, 0);
    sluice_addr rel[2];
    CHECK_EQ(sluice_turn_client_relayed(e.c, rel), 1);
    /* RFC 8656 §7.3: refreshed before expiry, a minute early. */
    CHECK_EQ(sluice_turn_client_next_timeout(e.c), e.now + 540 * S);
    uint64_t t0 = e.now;
    advance(&e, t0 + 540 * S);
    CHECK_EQ(e.s.authenticated[SLUICE_STUN_REFRESH], 1);
    CHECK_EQ(e.s.last_lifetime, ~0u); /* no LIFETIME asked: the server's default */
    expect(&e, SLUICE_TURN_EVENT_REFRESHED, &ev);
    CHECK_EQ(ev.lifetime_s, 600);
    /* and keeps going */
    advance(&e, t0 + 3600 * S);
    CHECK_EQ(e.s.authenticated[SLUICE_STUN_REFRESH], 6);
    for (int i = 0; i < 5; i++)
        expect(&e, SLUICE_TURN_EVENT_REFRESHED, NULL);
    no_event(&e);
    env_free(&e);
}

static void test_requested_lifetime(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    sluice_turn_client_free(e.c);
    sluice_turn_client_config cfg;
    sluice_turn_client_config_init(&cfg);
    cfg.server = e.server;
    cfg.username = "alice";
    cfg.password = "secret";
    cfg.lifetime_s = 60;
    e.c = sluice_turn_client_new(&cfg, NULL);
    e.s.lifetime = 60;
    allocated(&e);
    /* short lifetimes are refreshed halfway */
    CHECK_EQ(sluice_turn_client_next_timeout(e.c), e.now + 30 * S);
    advance(&e, e.now + 30 * S);
    CHECK_EQ(e.s.last_lifetime, 60);
    expect(&e, SLUICE_TURN_EVENT_REFRESHED, NULL);
    env_free(&e);
}

static void test_families(void)
{
    struct env e;
    sluice_turn_event ev;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV6);
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    exchange(&e);
    CHECK_EQ(e.s.last_family, SLUICE_STUN_FAMILY_IPV6);
    CHECK_EQ(e.s.last_additional_family, 0);
    expect(&e, SLUICE_TURN_EVENT_ALLOCATED, &ev);
    CHECK_EQ(ev.n_relayed, 1);
    CHECK(sluice_addr_equal(&ev.relayed[0], &e.s.relayed6));
    /* a permission for an IPv4 peer on an IPv6 allocation is refused locally */
    sluice_addr p4, p6;
    sluice_addr_parse(&p4, "198.51.100.20:5000", 0);
    sluice_addr_parse(&p6, "[2001:db8::20]:5000", 0);
    CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &p4), SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &p6), 0);
    exchange(&e);
    /* the IPv6 XOR-PEER-ADDRESS is encoded with the transaction ID on the
     * wire, also after the request was re-sent (RFC 8489 §14.2) */
    CHECK(sluice_addr_equal_ip(&e.s.last_peer, &p6));
    expect(&e, SLUICE_TURN_EVENT_PERMISSION_CREATED, NULL);
    e.s.stale_nonce = "nonce-9";
    CHECK_EQ(sluice_turn_client_bind_channel(e.c, e.now, &p6), 0x4000);
    exchange(&e);
    CHECK(sluice_addr_equal(&e.s.last_peer, &p6));
    expect(&e, SLUICE_TURN_EVENT_CHANNEL_BOUND, NULL);
    env_free(&e);

    /* RFC 8656 §7.1: dual = IPv4 by default plus ADDITIONAL-ADDRESS-FAMILY IPv6 */
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_DUAL);
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    exchange(&e);
    CHECK_EQ(e.s.last_family, 0);
    CHECK_EQ(e.s.last_additional_family, SLUICE_STUN_FAMILY_IPV6);
    expect(&e, SLUICE_TURN_EVENT_ALLOCATED, &ev);
    CHECK_EQ(ev.n_relayed, 2);
    CHECK(sluice_addr_equal(&ev.relayed[0], &e.s.relayed4));
    CHECK(sluice_addr_equal(&ev.relayed[1], &e.s.relayed6));
    CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &p4), 0);
    CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &p6), 0);
    env_free(&e);

    /* §7.3: one family of a dual request may fail with ADDRESS-ERROR-CODE */
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_DUAL);
    e.s.v6_fails = true;
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    exchange(&e);
    expect(&e, SLUICE_TURN_EVENT_ALLOCATED, &ev);
    CHECK_EQ(ev.n_relayed, 1);
    CHECK_EQ(ev.failed_family, SLUICE_STUN_FAMILY_IPV6);
    CHECK_EQ(ev.family_error_code, 440);
    CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &p6), SLUICE_ERR_INVALID);
    env_free(&e);
}

static void test_allocate_errors(void)
{
    static const int codes[] = {437, 440, 441, 442, 486, 508, 403};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        struct env e;
        env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
        e.s.allocate_error = codes[i];
        CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
        exchange(&e);
        sluice_turn_event ev;
        expect(&e, SLUICE_TURN_EVENT_ALLOCATE_FAILED, &ev);
        CHECK_EQ(ev.error_code, codes[i]);
        CHECK(ev.text[0] != 0);
        CHECK_EQ(sluice_turn_client_next_timeout(e.c), SLUICE_NEVER);
        CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &e.s.mapped), SLUICE_ERR_STATE);
        /* close after a failure: CLOSED at once, nothing sent */
        unsigned sent = e.sent;
        CHECK_EQ(sluice_turn_client_close(e.c, e.now), 0);
        expect(&e, SLUICE_TURN_EVENT_CLOSED, NULL);
        exchange(&e);
        CHECK_EQ(e.sent, sent);
        env_free(&e);
    }
}

static void test_wrong_password(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    fake_turn_set_password(&e.s, "other");
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    exchange(&e);
    sluice_turn_event ev;
    expect(&e, SLUICE_TURN_EVENT_ALLOCATE_FAILED, &ev);
    CHECK_EQ(ev.error_code, 401);
    CHECK_EQ(ev.reason, SLUICE_ERR_AUTH);
    CHECK_EQ(e.s.requests[SLUICE_STUN_ALLOCATE], 2); /* a second 401 is final */
    env_free(&e);
}

static void test_server_never_answers(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    e.s.silent = true;
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    uint64_t t0 = e.now;
    advance(&e, t0 + 39 * S);
    no_event(&e);
    advance(&e, t0 + 40 * S);
    sluice_turn_event ev;
    expect(&e, SLUICE_TURN_EVENT_ALLOCATE_FAILED, &ev);
    CHECK_EQ(ev.reason, SLUICE_ERR_TIMEOUT);
    CHECK_EQ(e.s.requests[SLUICE_STUN_ALLOCATE], 7); /* Rc = 7 (RFC 8489 §6.2.1) */
    env_free(&e);

    /* over TCP: one request, Ti = 39.5 s */
    env_init(&e, SLUICE_TRANSPORT_TCP, SLUICE_TURN_FAMILY_IPV4);
    e.s.silent = true;
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    t0 = e.now;
    advance(&e, t0 + 40 * S);
    expect(&e, SLUICE_TURN_EVENT_ALLOCATE_FAILED, &ev);
    CHECK_EQ(ev.reason, SLUICE_ERR_TIMEOUT);
    CHECK_EQ(e.s.requests[SLUICE_STUN_ALLOCATE], 1);
    env_free(&e);
}

static void test_stale_nonce_mid_allocation(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    allocated(&e);
    /* the server rotates its nonce: the next request gets 438 (§9.2.5) */
    e.s.stale_nonce = "nonce-2";
    advance(&e, e.now + 540 * S);
    expect(&e, SLUICE_TURN_EVENT_REFRESHED, NULL);
    CHECK_EQ(e.s.requests[SLUICE_STUN_REFRESH], 2);
    CHECK_EQ(e.s.authenticated[SLUICE_STUN_REFRESH], 1);
    /* the new nonce is used from then on: no more challenges */
    sluice_addr peer;
    sluice_addr_parse(&peer, "198.51.100.20:5000", 0);
    CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &peer), 0);
    exchange(&e);
    CHECK_EQ(e.s.requests[SLUICE_STUN_CREATE_PERMISSION], 1);
    expect(&e, SLUICE_TURN_EVENT_PERMISSION_CREATED, NULL);
    env_free(&e);
}

static void test_lost_refresh(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    allocated(&e);
    uint64_t t0 = e.now;
    /* The refresh at 540 s is lost for 45 s: the transaction times out at
     * ~579.5 s and the client tries again before the 600 s expiry. */
    e.drop_to_server = true;
    advance(&e, t0 + 585 * S);
    no_event(&e);
    CHECK(e.sent >= 8);
    e.drop_to_server = false;
    advance(&e, t0 + 599 * S);
    expect(&e, SLUICE_TURN_EVENT_REFRESHED, NULL);
    no_event(&e);
    env_free(&e);

    /* Lost for good: the allocation is reported lost at its expiry. */
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    allocated(&e);
    t0 = e.now;
    e.drop_to_server = true;
    advance(&e, t0 + 599 * S);
    no_event(&e);
    advance(&e, t0 + 601 * S);
    sluice_turn_event ev;
    expect(&e, SLUICE_TURN_EVENT_LOST, &ev);
    CHECK_EQ(ev.reason, SLUICE_ERR_TIMEOUT);
    CHECK_EQ(sluice_turn_client_next_timeout(e.c), SLUICE_NEVER);
    sluice_addr rel[2];
    CHECK_EQ(sluice_turn_client_relayed(e.c, rel), 0);
    env_free(&e);
}

static void test_refresh_437(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    allocated(&e);
    e.s.refresh_error = 437;
    advance(&e, e.now + 540 * S);
    sluice_turn_event ev;
    expect(&e, SLUICE_TURN_EVENT_LOST, &ev);
    CHECK_EQ(ev.error_code, 437);
    env_free(&e);
}

static void test_redirect(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    e.s.allocate_error = 300;
    sluice_addr_parse(&e.s.alternate, "192.0.2.11:3478", 0);
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    /* the 300 arrives; the next Allocate goes to .11 and is challenged */
    sluice_transmit tx;
    uint8_t buf[2048], resp[2048];
    int n = sluice_turn_client_poll_transmit(e.c, e.now, buf, sizeof buf, &tx);
    CHECK(n > 0);
    n = fake_turn_answer(&e.s, buf, (size_t)n, resp, sizeof resp);
    CHECK(n > 0);
    CHECK_EQ(sluice_turn_client_handle_datagram(e.c, e.now, &e.server, resp, (size_t)n), 1);
    sluice_turn_event ev;
    expect(&e, SLUICE_TURN_EVENT_REDIRECTED, &ev);
    CHECK(sluice_addr_equal(&ev.server, &e.s.alternate));
    e.s.allocate_error = 0;
    exchange(&e);
    CHECK(sluice_addr_equal(&e.server, &e.s.alternate));
    expect(&e, SLUICE_TURN_EVENT_ALLOCATED, &ev);
    CHECK(sluice_addr_equal(&ev.server, &e.s.alternate));
    sluice_addr srv;
    sluice_turn_client_server(e.c, &srv);
    CHECK(sluice_addr_equal(&srv, &e.s.alternate));
    /* answers from the old server are ignored now */
    uint8_t junk[64];
    n = fake_turn_data_indication(&e.s.mapped, (const uint8_t *)"x", 1, junk, sizeof junk);
    sluice_addr old;
    sluice_addr_parse(&old, "192.0.2.10:3478", 0);
    CHECK_EQ(sluice_turn_client_handle_datagram(e.c, e.now, &old, junk, (size_t)n), 0);
    env_free(&e);

    /* A redirect loop ends after max_redirects (3) with a clear failure. */
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    e.s.allocate_error = 300;
    e.s.alternate_rotate = true;
    sluice_addr_parse(&e.s.alternate, "192.0.2.11:3478", 0);
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    exchange(&e);
    CHECK_EQ(e.s.requests[SLUICE_STUN_ALLOCATE], 4);
    for (int i = 0; i < 3; i++)
        expect(&e, SLUICE_TURN_EVENT_REDIRECTED, NULL);
    expect(&e, SLUICE_TURN_EVENT_ALLOCATE_FAILED, &ev);
    CHECK_EQ(ev.error_code, 300);
    env_free(&e);
}

/* Over TCP a 300 may share a chunk with more bytes of the old stream:
 * they must not be parsed as the new one's. */
static void test_redirect_tcp(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_TCP, SLUICE_TURN_FAMILY_IPV4);
    e.s.allocate_error = 300;
    sluice_addr_parse(&e.s.alternate, "192.0.2.11:3478", 0);
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    sluice_transmit tx;
    uint8_t buf[2048], resp[2048];
    int n = sluice_turn_client_poll_transmit(e.c, e.now, buf, sizeof buf, &tx);
    CHECK(n > 0);
    n = fake_turn_answer(&e.s, buf, (size_t)n, resp, sizeof resp);
    CHECK(n > 0);
    /* the 300, then the first half of a ChannelData frame */
    resp[n] = 0x40;
    resp[n + 1] = 0x00;
    CHECK_EQ(sluice_turn_client_handle_datagram(e.c, e.now, NULL, resp, (size_t)n + 2), 1);
    sluice_turn_event ev;
    expect(&e, SLUICE_TURN_EVENT_REDIRECTED, &ev);
    e.s.allocate_error = 0;
    exchange(&e); /* the new stream starts clean */
    CHECK(sluice_addr_equal(&e.server, &e.s.alternate));
    expect(&e, SLUICE_TURN_EVENT_ALLOCATED, NULL);
    env_free(&e);
}

static void test_permissions(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    sluice_addr peer, peer_other_port;
    sluice_addr_parse(&peer, "198.51.100.20:5000", 0);
    sluice_addr_parse(&peer_other_port, "198.51.100.20:6000", 0);
    CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &peer), SLUICE_ERR_STATE);
    allocated(&e);
    uint64_t t0 = e.now;
    CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &peer), 0);
    /* the same IP with another port is the same permission (§9) */
    CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &peer_other_port), 0);
    exchange(&e);
    CHECK_EQ(e.s.authenticated[SLUICE_STUN_CREATE_PERMISSION], 1);
    CHECK(sluice_addr_equal_ip(&e.s.last_peer, &peer));
    sluice_turn_event ev;
    expect(&e, SLUICE_TURN_EVENT_PERMISSION_CREATED, &ev);
    CHECK(sluice_addr_equal_ip(&ev.peer, &peer));
    no_event(&e);
    /* refreshed every 240 s (permissions last 300 s) */
    advance(&e, t0 + 239 * S);
    CHECK_EQ(e.s.authenticated[SLUICE_STUN_CREATE_PERMISSION], 1);
    advance(&e, t0 + 241 * S);
    CHECK_EQ(e.s.authenticated[SLUICE_STUN_CREATE_PERMISSION], 2);
    advance(&e, t0 + 481 * S);
    CHECK_EQ(e.s.authenticated[SLUICE_STUN_CREATE_PERMISSION], 3);
    no_event(&e); /* refreshes are silent; the allocation's own comes at 540 s */
    env_free(&e);
}

static void test_permission_errors(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    allocated(&e);
    sluice_addr peer;
    sluice_addr_parse(&peer, "198.51.100.20:5000", 0);
    e.s.perm_error = 403; /* forbidden peer (RFC 8656 §9.2) */
    CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &peer), 0);
    exchange(&e);
    sluice_turn_event ev;
    expect(&e, SLUICE_TURN_EVENT_PERMISSION_FAILED, &ev);
    CHECK_EQ(ev.error_code, 403);
    CHECK(sluice_addr_equal_ip(&ev.peer, &peer));
    /* no refresh after a failure... */
    unsigned n = e.s.requests[SLUICE_STUN_CREATE_PERMISSION];
    advance(&e, e.now + 300 * S);
    CHECK_EQ(e.s.requests[SLUICE_STUN_CREATE_PERMISSION], n);
    /* ...until asked again */
    e.s.perm_error = 0;
    CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &peer), 0);
    exchange(&e);
    while (next_event(&e, &ev) && ev.type == SLUICE_TURN_EVENT_REFRESHED)
        ;
    CHECK_EQ(ev.type, SLUICE_TURN_EVENT_PERMISSION_CREATED);
    env_free(&e);

    /* a lost permission refresh is retried while the permission lasts,
     * and reported when it lapses */
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    allocated(&e);
    uint64_t t0 = e.now;
    CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &peer), 0);
    exchange(&e);
    expect(&e, SLUICE_TURN_EVENT_PERMISSION_CREATED, NULL);
    e.s.silent = true;
    advance(&e, t0 + 299 * S);
    no_event(&e);
    advance(&e, t0 + 301 * S);
    expect(&e, SLUICE_TURN_EVENT_PERMISSION_FAILED, &ev);
    CHECK_EQ(ev.reason, SLUICE_ERR_TIMEOUT);
    env_free(&e);
}

static void test_permission_table_bound(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    allocated(&e);
    int full = 0, ok = 0;
    for (int i = 0; i < 100; i++) {
        char txt[64];
        snprintf(txt, sizeof txt, "198.51.100.%d:5000", i + 1);
        sluice_addr p;
        sluice_addr_parse(&p, txt, 0);
        int r = sluice_turn_client_create_permission(e.c, e.now, &p);
        if (r == 0)
            ok++;
        else if (r == SLUICE_ERR_FULL)
            full++;
    }
    CHECK_EQ(ok, 64);
    CHECK_EQ(full, 36);
    /* 64 permissions with 16 transactions at once: all get installed */
    advance(&e, e.now + 5 * S);
    CHECK_EQ(e.s.authenticated[SLUICE_STUN_CREATE_PERMISSION], 64);
    sluice_turn_event ev;
    int created = 0;
    while (next_event(&e, &ev))
        created += ev.type == SLUICE_TURN_EVENT_PERMISSION_CREATED;
    CHECK_EQ(created, 64);
    env_free(&e);
}

static void test_channels_and_data(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    allocated(&e);
    sluice_addr peer, peer2;
    sluice_addr_parse(&peer, "198.51.100.20:5000", 0);
    sluice_addr_parse(&peer2, "198.51.100.21:5000", 0);
    uint8_t out[2048];
    sluice_transmit tx;
    const uint8_t hello[5] = "hello";
    /* no permission, no channel: refused */
    CHECK_EQ(sluice_turn_client_send(e.c, e.now, &peer, hello, 5, out, sizeof out, &tx),
             SLUICE_ERR_NOT_FOUND);
    int ch = sluice_turn_client_bind_channel(e.c, e.now, &peer);
    CHECK_EQ(ch, 0x4000);
    CHECK_EQ(sluice_turn_client_bind_channel(e.c, e.now, &peer), 0x4000);
    CHECK_EQ(sluice_turn_client_bind_channel(e.c, e.now, &peer2), 0x4001);
    /* before the binding is confirmed: a Send indication (§12: no
     * ChannelData until the ChannelBind succeeded) */
    sluice_turn_route route;
    CHECK_EQ(sluice_turn_client_route(e.c, &peer, &route), SLUICE_ERR_UNSUPPORTED);
    int n = sluice_turn_client_send(e.c, e.now, &peer, hello, 5, out, sizeof out, &tx);
    CHECK(n > 20);
    CHECK(sluice_addr_equal(&tx.destination, &e.server));
    CHECK_EQ(fake_turn_answer(&e.s, out, (size_t)n, out + 1024, 1024), 0);
    CHECK_EQ(e.s.indications[SLUICE_STUN_SEND], 1);
    CHECK(sluice_addr_equal(&e.s.last_peer, &peer));
    CHECK_EQ(e.s.last_data_len, 5);
    exchange(&e);
    CHECK_EQ(e.s.last_channel, 0x4001);
    sluice_turn_event ev;
    expect(&e, SLUICE_TURN_EVENT_CHANNEL_BOUND, &ev);
    CHECK_EQ(ev.channel, 0x4000);
    CHECK(sluice_addr_equal(&ev.peer, &peer));
    expect(&e, SLUICE_TURN_EVENT_CHANNEL_BOUND, &ev);
    CHECK_EQ(ev.channel, 0x4001);
    /* now ChannelData: 4-byte header, no padding over UDP */
    n = sluice_turn_client_send(e.c, e.now, &peer, hello, 5, out, sizeof out, &tx);
    CHECK_EQ(n, 9);
    CHECK_EQ(out[0], 0x40);
    CHECK_EQ(out[1], 0x00);
    CHECK_EQ(out[3], 5);
    CHECK_MEM(out + 4, hello, 5);
    CHECK_EQ(sluice_turn_client_route(e.c, &peer, &route), 0);
    CHECK_EQ(route.channel, 0x4000);
    CHECK(!route.pad);
    CHECK(sluice_addr_equal(&route.server, &e.server));
    /* too small a buffer */
    CHECK_EQ(sluice_turn_client_send(e.c, e.now, &peer, hello, 5, out, 8, &tx), SLUICE_ERR_NOSPACE);

    /* receive: ChannelData on a bound channel, with UDP padding */
    uint8_t cd[12] = {0x40, 0x01, 0x00, 0x05, 'w', 'o', 'r', 'l', 'd', 0, 0, 0};
    sluice_addr from;
    const uint8_t *payload;
    size_t plen;
    CHECK_EQ(sluice_turn_client_unwrap(e.c, &e.server, cd, sizeof cd, &from, &payload, &plen), 1);
    CHECK(sluice_addr_equal(&from, &peer2));
    CHECK_EQ(plen, 5);
    CHECK(payload == cd + 4); /* zero copy: a view into the datagram */
    CHECK_EQ(sluice_turn_client_handle_datagram(e.c, e.now, &e.server, cd, sizeof cd), 1);
    uint8_t buf[64];
    size_t len = 0;
    CHECK_EQ(sluice_turn_client_recv(e.c, &from, buf, 4, &len), SLUICE_ERR_NOSPACE);
    CHECK_EQ(sluice_turn_client_recv(e.c, &from, buf, sizeof buf, &len), 1);
    CHECK_EQ(len, 5);
    CHECK_MEM(buf, "world", 5);
    CHECK(sluice_addr_equal(&from, &peer2));
    CHECK_EQ(sluice_turn_client_recv(e.c, &from, buf, sizeof buf, &len), 0);
    /* an unbound channel, a reserved number, a short one: dropped */
    uint8_t bad1[8] = {0x40, 0x07, 0x00, 0x01, 'x', 0, 0, 0};
    uint8_t bad2[8] = {0x50, 0x00, 0x00, 0x01, 'x', 0, 0, 0};
    uint8_t bad3[6] = {0x40, 0x00, 0x00, 0x09, 'x', 'y'};
    CHECK(sluice_turn_client_unwrap(e.c, &e.server, bad1, sizeof bad1, &from, &payload, &plen) < 0);
    CHECK(sluice_turn_client_unwrap(e.c, &e.server, bad2, sizeof bad2, &from, &payload, &plen) < 0);
    CHECK(sluice_turn_client_unwrap(e.c, &e.server, bad3, sizeof bad3, &from, &payload, &plen) < 0);
    sluice_turn_client_handle_datagram(e.c, e.now, &e.server, bad1, sizeof bad1);
    CHECK_EQ(sluice_turn_client_recv(e.c, &from, buf, sizeof buf, &len), 0);
    /* a Data indication from a peer with a permission (via ChannelBind) */
    n = fake_turn_data_indication(&peer, (const uint8_t *)"indic", 5, out, sizeof out);
    CHECK_EQ(sluice_turn_client_unwrap(e.c, &e.server, out, (size_t)n, &from, &payload, &plen), 1);
    CHECK_EQ(plen, 5);
    CHECK_MEM(payload, "indic", 5);
    /* ... but not from an unknown peer, and not from another source */
    sluice_addr stranger;
    sluice_addr_parse(&stranger, "198.51.100.99:1", 0);
    n = fake_turn_data_indication(&stranger, (const uint8_t *)"indic", 5, out, sizeof out);
    CHECK(sluice_turn_client_unwrap(e.c, &e.server, out, (size_t)n, &from, &payload, &plen) < 0);
    CHECK_EQ(sluice_turn_client_unwrap(e.c, &stranger, cd, sizeof cd, &from, &payload, &plen), 0);
    CHECK_EQ(sluice_turn_client_handle_datagram(e.c, e.now, &stranger, cd, sizeof cd), 0);
    sluice_turn_client_stats st;
    sluice_turn_client_get_stats(e.c, &st);
    CHECK(st.rx_dropped_unknown >= 3);

    /* channels are rebound every 240 s with their permission */
    uint64_t t0 = e.now;
    advance(&e, t0 + 241 * S);
    CHECK_EQ(e.s.authenticated[SLUICE_STUN_CHANNEL_BIND], 4);
    no_event(&e);
    env_free(&e);
}

static void test_channel_error(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    allocated(&e);
    sluice_addr peer;
    sluice_addr_parse(&peer, "198.51.100.20:5000", 0);
    CHECK_EQ(sluice_turn_client_bind_channel(e.c, e.now, &peer), 0x4000);
    e.s.chan_error = 400;
    exchange(&e);
    sluice_turn_event ev;
    expect(&e, SLUICE_TURN_EVENT_CHANNEL_FAILED, &ev);
    CHECK_EQ(ev.error_code, 400);
    CHECK_EQ(ev.channel, 0x4000);
    sluice_turn_route route;
    CHECK_EQ(sluice_turn_client_route(e.c, &peer, &route), SLUICE_ERR_UNSUPPORTED);
    env_free(&e);
}

static void test_receive_queue_bound(void)
{
    struct env e;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    allocated(&e);
    sluice_addr peer;
    sluice_addr_parse(&peer, "198.51.100.20:5000", 0);
    CHECK_EQ(sluice_turn_client_bind_channel(e.c, e.now, &peer), 0x4000);
    exchange(&e);
    static uint8_t cd[4 + 1200];
    sluice_turn_channel_header(cd, 0x4000, 1200);
    for (int i = 0; i < 1000; i++)
        sluice_turn_client_handle_datagram(e.c, e.now, &e.server, cd, sizeof cd);
    sluice_turn_client_stats st;
    sluice_turn_client_get_stats(e.c, &st);
    /* 256 KiB: about 210 datagrams kept, the rest dropped and counted */
    CHECK(st.rx_data > 150 && st.rx_data < 260);
    CHECK_EQ(st.rx_data + st.rx_dropped_queue, 1000);
    uint8_t buf[2000];
    size_t len;
    sluice_addr from;
    uint64_t got = 0;
    while (sluice_turn_client_recv(e.c, &from, buf, sizeof buf, &len) == 1) {
        CHECK_EQ(len, 1200);
        got++;
    }
    CHECK_EQ(got, st.rx_data);
    /* and the queue works again after draining (wrap-around) */
    for (int i = 0; i < 500; i++) {
        sluice_turn_client_handle_datagram(e.c, e.now, &e.server, cd, sizeof cd);
        CHECK_EQ(sluice_turn_client_recv(e.c, &from, buf, sizeof buf, &len), 1);
    }
    env_free(&e);
}

static void test_tcp_stream(void)
{
    for (int byte_by_byte = 0; byte_by_byte < 2; byte_by_byte++) {
        struct env e;
        env_init(&e, SLUICE_TRANSPORT_TCP, SLUICE_TURN_FAMILY_IPV4);
        e.byte_by_byte = byte_by_byte;
        allocated(&e);
        sluice_addr peer;
        sluice_addr_parse(&peer, "198.51.100.20:5000", 0);
        CHECK_EQ(sluice_turn_client_bind_channel(e.c, e.now, &peer), 0x4000);
        exchange(&e);
        expect(&e, SLUICE_TURN_EVENT_CHANNEL_BOUND, NULL);
        /* RFC 8656 §12.5: padded over TCP */
        uint8_t out[64];
        sluice_transmit tx;
        CHECK_EQ(sluice_turn_client_send(e.c, e.now, &peer, (const uint8_t *)"hello", 5, out,
                                         sizeof out, &tx),
                 12);
        CHECK_EQ(tx.transport, SLUICE_TRANSPORT_TCP);
        sluice_turn_route route;
        CHECK_EQ(sluice_turn_client_route(e.c, &peer, &route), 0);
        CHECK(route.pad);
        /* two ChannelData and a Data indication coalesced in one chunk */
        uint8_t stream[256];
        size_t sl = 0;
        const uint8_t cd1[8] = {0x40, 0x00, 0x00, 0x03, 'a', 'b', 'c', 0};
        const uint8_t cd2[4] = {0x40, 0x00, 0x00, 0x00}; /* empty payload */
        memcpy(stream, cd1, 8);
        memcpy(stream + 8, cd2, 4);
        sl = 12;
        int n = fake_turn_data_indication(&peer, (const uint8_t *)"dind", 4, stream + sl,
                                          sizeof stream - sl);
        sl += (size_t)n;
        if (byte_by_byte)
            for (size_t i = 0; i < sl; i++)
                sluice_turn_client_handle_datagram(e.c, e.now, NULL, stream + i, 1);
        else
            CHECK_EQ(sluice_turn_client_handle_datagram(e.c, e.now, NULL, stream, sl), 1);
        uint8_t buf[64];
        size_t len;
        sluice_addr from;
        CHECK_EQ(sluice_turn_client_recv(e.c, &from, buf, sizeof buf, &len), 1);
        CHECK_EQ(len, 3);
        CHECK_EQ(sluice_turn_client_recv(e.c, &from, buf, sizeof buf, &len), 1);
        CHECK_EQ(len, 0);
        CHECK_EQ(sluice_turn_client_recv(e.c, &from, buf, sizeof buf, &len), 1);
        CHECK_EQ(len, 4);
        CHECK_MEM(buf, "dind", 4);
        /* a byte that is neither STUN nor ChannelData breaks the stream */
        const uint8_t junk[4] = {0xC0, 0, 0, 0};
        CHECK(sluice_turn_client_handle_datagram(e.c, e.now, NULL, junk, 4) < 0);
        sluice_turn_event ev;
        expect(&e, SLUICE_TURN_EVENT_LOST, &ev);
        CHECK_EQ(ev.reason, SLUICE_ERR_MALFORMED);
        env_free(&e);
    }
}

static void test_stream_closed(void)
{
    struct env e;
    sluice_turn_event ev;
    env_init(&e, SLUICE_TRANSPORT_TCP, SLUICE_TURN_FAMILY_IPV4);
    CHECK_EQ(sluice_turn_client_allocate(e.c, e.now), 0);
    sluice_turn_client_handle_stream_closed(e.c, e.now);
    expect(&e, SLUICE_TURN_EVENT_ALLOCATE_FAILED, &ev);
    CHECK_EQ(ev.reason, SLUICE_ERR_STATE);
    env_free(&e);

    env_init(&e, SLUICE_TRANSPORT_TCP, SLUICE_TURN_FAMILY_IPV4);
    allocated(&e);
    sluice_turn_client_handle_stream_closed(e.c, e.now);
    expect(&e, SLUICE_TURN_EVENT_LOST, &ev);
    env_free(&e);
}

static void test_close(void)
{
    struct env e;
    sluice_turn_event ev;
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    allocated(&e);
    sluice_addr peer;
    sluice_addr_parse(&peer, "198.51.100.20:5000", 0);
    CHECK_EQ(sluice_turn_client_create_permission(e.c, e.now, &peer), 0);
    /* close before the permission is answered: the delete goes out */
    CHECK_EQ(sluice_turn_client_close(e.c, e.now), 0);
    CHECK_EQ(sluice_turn_client_close(e.c, e.now), SLUICE_ERR_STATE);
    exchange(&e);
    CHECK_EQ(e.s.last_lifetime, 0); /* RFC 8656 §7.2: LIFETIME 0 deletes */
    expect(&e, SLUICE_TURN_EVENT_CLOSED, &ev);
    CHECK_EQ(ev.reason, 0);
    no_event(&e);
    CHECK_EQ(sluice_turn_client_next_timeout(e.c), SLUICE_NEVER);
    env_free(&e);

    /* a server that does not answer: the wait is bounded (2 s) */
    env_init(&e, SLUICE_TRANSPORT_UDP, SLUICE_TURN_FAMILY_IPV4);
    allocated(&e);
    e.s.silent = true;
    uint64_t t0 = e.now;
    CHECK_EQ(sluice_turn_client_close(e.c, e.now), 0);
    advance(&e, t0 + 1900 * MS);
    no_event(&e);
    advance(&e, t0 + 2100 * MS);
    expect(&e, SLUICE_TURN_EVENT_CLOSED, &ev);
    CHECK_EQ(ev.reason, SLUICE_ERR_TIMEOUT);
    env_free(&e);
}

static void test_config_and_alloc_failures(void)
{
    sluice_turn_client_config cfg;
    sluice_turn_client_config_init(&cfg);
    int err = 0;
    CHECK(sluice_turn_client_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    sluice_addr_parse(&cfg.server, "192.0.2.10:3478", 0);
    cfg.username = "alice";
    CHECK(sluice_turn_client_new(&cfg, &err) == NULL); /* no password */
    cfg.password = "secret";
    cfg.max_permissions = 5000;
    CHECK(sluice_turn_client_new(&cfg, &err) == NULL);
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    cfg.max_permissions = 64;
    cfg.recv_queue_bytes = 1000;
    CHECK(sluice_turn_client_new(&cfg, &err) == NULL);
    cfg.recv_queue_bytes = 256 * 1024;
    /* TLS with a CA file that does not exist */
    cfg.transport = SLUICE_TRANSPORT_TLS;
    cfg.ca_file = "/nonexistent/ca.pem";
    CHECK(sluice_turn_client_new(&cfg, &err) == NULL);
    CHECK(err < 0);
    cfg.transport = SLUICE_TRANSPORT_TCP;
    cfg.ca_file = NULL;
    sluice_turn_client *c = sluice_turn_client_new(&cfg, &err);
    CHECK(c != NULL);
    sluice_turn_client_free(c);
    sluice_turn_client_free(NULL);
}

/* Fail each allocation in turn: NULL + NOMEM, no leak (ASan). */

static void test_allocation_failures(void)
{
    sluice_turn_client_config cfg;
    sluice_turn_client_config_init(&cfg);
    sluice_addr_parse(&cfg.server, "192.0.2.10:3478", 0);
    cfg.username = "alice";
    cfg.password = "secret";
    cfg.software = "x";
    cfg.transport = SLUICE_TRANSPORT_TCP;
    cfg.alloc.calloc = failing_calloc;
    cfg.alloc.free = plain_free;
    int ok_at = -1;
    for (fail_alloc_at = 0; fail_alloc_at < 64; fail_alloc_at++) {
        fail_alloc_calls = 0;
        int err = 0;
        sluice_turn_client *c = sluice_turn_client_new(&cfg, &err);
        if (c) {
            ok_at = fail_alloc_at;
            sluice_turn_client_free(c);
            break;
        }
        CHECK_EQ(err, SLUICE_ERR_NOMEM);
    }
    CHECK(ok_at > 5);
}

int main(void)
{
    RUN(test_allocate_udp);
    RUN(test_requested_lifetime);
    RUN(test_families);
    RUN(test_allocate_errors);
    RUN(test_wrong_password);
    RUN(test_server_never_answers);
    RUN(test_stale_nonce_mid_allocation);
    RUN(test_lost_refresh);
    RUN(test_refresh_437);
    RUN(test_redirect);
    RUN(test_redirect_tcp);
    RUN(test_permissions);
    RUN(test_permission_errors);
    RUN(test_permission_table_bound);
    RUN(test_channels_and_data);
    RUN(test_channel_error);
    RUN(test_receive_queue_bound);
    RUN(test_tcp_stream);
    RUN(test_stream_closed);
    RUN(test_close);
    RUN(test_config_and_alloc_failures);
    RUN(test_allocation_failures);
    return TEST_DONE();
}
