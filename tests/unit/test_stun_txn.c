/* SPDX-License-Identifier: MIT */
/* STUN client transactions on virtual time: RFC 8489 §6.2 schedule, RTT
 * cache, short- and long-term credentials, FIFO events, bounds. */
#include "test.h"

#include "sluice/sluice.h"

#define MS 1000ull
#define S 1000000ull

static sluice_test_rng rng;
static sluice_addr server, client_addr;

static sluice_stun_client *new_client(size_t max_tx)
{
    sluice_stun_client_config cfg;
    sluice_stun_client_config_init(&cfg);
    sluice_test_rng_init(&rng, 42);
    cfg.rng.fill = sluice_test_rng_fill;
    cfg.rng.ctx = &rng;
    cfg.max_transactions = max_tx;
    cfg.software = "sluice-test";
    return sluice_stun_client_new(&cfg);
}

static size_t binding_body(uint8_t *buf, size_t cap)
{
    sluice_stun_writer w;
    sluice_stun_writer_init(&w, buf, cap, sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST),
                            NULL);
    return (size_t)sluice_stun_writer_result(&w);
}

static sluice_stun_request plain_request(void)
{
    sluice_stun_request r;
    memset(&r, 0, sizeof r);
    r.server = server;
    r.transport = SLUICE_TRANSPORT_UDP;
    r.user = 7;
    return r;
}

/* Poll one transmit and parse it into m (bytes kept in buf). */
static int take(sluice_stun_client *c, uint64_t now, uint8_t *buf, size_t cap, sluice_stun_msg *m)
{
    sluice_transmit tx;
    int n = sluice_stun_client_poll_transmit(c, now, buf, cap, &tx);
    if (n > 0) {
        CHECK(sluice_addr_equal(&tx.destination, &server));
        CHECK_EQ(sluice_stun_parse(m, buf, (size_t)n), 0);
    }
    return n;
}

static void setup(void)
{
    sluice_addr_parse(&server, "192.0.2.10:3478", 0);
    sluice_addr_parse(&client_addr, "198.51.100.7:40000", 0);
}

/* RFC 8489 §6.2.1: with RTO 500 ms, Rc 7, Rm 16 requests go out at 0,
 * 500, 1500, 3500, 7500, 15500, 31500 ms and the transaction fails at
 * 39500 ms. */
static void udp_schedule(void)
{
    static const uint64_t expect_ms[] = {0, 500, 1500, 3500, 7500, 15500, 31500};
    sluice_stun_client *c = new_client(4);
    uint8_t body[64], buf[1500];
    sluice_stun_request r = plain_request();
    sluice_stun_msg m;
    sluice_stun_event ev;
    uint64_t now = 0;
    uint8_t txid[12];
    int sends = 0;

    CHECK_EQ(sluice_stun_client_send(c, 0, body, binding_body(body, sizeof body), &r, txid), 0);
    while (now <= 60 * S) {
        int n;
        while ((n = take(c, now, buf, sizeof buf, &m)) > 0) {
            CHECK(sends < 7);
            if (sends < 7)
                CHECK_EQ(now, expect_ms[sends] * MS);
            CHECK_MEM(sluice_stun_txid(&m), txid, 12); /* retransmissions keep the ID */
            CHECK(m.fingerprint_off != 0);
            CHECK(sluice_stun_has(&m, SLUICE_STUN_ATTR_SOFTWARE));
            sends++;
        }
        if (sluice_stun_client_poll_event(c, &ev))
            break;
        now = sluice_stun_client_next_timeout(c);
        CHECK(now != SLUICE_NEVER);
        if (now == SLUICE_NEVER)
            break;
        sluice_stun_client_handle_timeout(c, now);
    }
    CHECK_EQ(sends, 7);
    CHECK_EQ(now, 39500 * MS);
    CHECK_EQ(ev.type, SLUICE_STUN_EVENT_TIMEOUT);
    CHECK_EQ(ev.reason, SLUICE_ERR_TIMEOUT);
    CHECK_EQ(ev.user, 7);
    CHECK(!sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(sluice_stun_client_next_timeout(c), SLUICE_NEVER);
    sluice_stun_client_free(c);
}

/* RFC 8489 §6.2.2: over TCP/TLS one request, failure after Ti = 39.5 s. */
static void reliable_timeout(void)
{
    sluice_stun_client *c = new_client(4);
    uint8_t body[64], buf[1500];
    sluice_stun_request r = plain_request();
    sluice_stun_msg m;
    sluice_stun_event ev;

    r.transport = SLUICE_TRANSPORT_TCP;
    CHECK_EQ(sluice_stun_client_send(c, 1000, body, binding_body(body, sizeof body), &r, NULL), 0);
    CHECK(take(c, 1000, buf, sizeof buf, &m) > 0);
    CHECK_EQ(take(c, 1000, buf, sizeof buf, &m), 0);
    CHECK_EQ(sluice_stun_client_next_timeout(c), 1000 + 39500 * MS);
    sluice_stun_client_handle_timeout(c, 1000 + 39500 * MS - 1);
    CHECK(!sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(take(c, 1000 + 39500 * MS - 1, buf, sizeof buf, &m), 0); /* never retransmitted */
    sluice_stun_client_handle_timeout(c, 1000 + 39500 * MS);
    CHECK(sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(ev.type, SLUICE_STUN_EVENT_TIMEOUT);
    sluice_stun_client_free(c);
}

static int respond_binding(const sluice_stun_msg *req, const sluice_stun_key *key, uint8_t *out,
                           size_t cap)
{
    return sluice_stun_binding_response(req, &client_addr, key, "srv", out, cap);
}

static void success_and_rtt(void)
{
    sluice_stun_client *c = new_client(4);
    uint8_t body[64], buf[1500], resp[1500];
    sluice_stun_request r = plain_request();
    sluice_stun_msg m, rm;
    sluice_stun_event ev;
    sluice_addr mapped;
    int n;

    CHECK_EQ(sluice_stun_client_rto(c, &server, 0), 500 * MS);
    CHECK_EQ(sluice_stun_client_send(c, 0, body, binding_body(body, sizeof body), &r, NULL), 0);
    CHECK(take(c, 0, buf, sizeof buf, &m) > 0);
    n = respond_binding(&m, NULL, resp, sizeof resp);
    CHECK(n > 0);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 20 * MS, &server, resp, (size_t)n), 1);
    /* a duplicate answer is no longer ours */
    CHECK(sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(ev.type, SLUICE_STUN_EVENT_SUCCESS);
    CHECK_EQ(ev.rtt_us, 20 * MS);
    CHECK_EQ(sluice_stun_parse(&rm, ev.response, ev.response_len), 0);
    CHECK_EQ(sluice_stun_get_xor_address(&rm, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped), 0);
    CHECK(sluice_addr_equal(&mapped, &client_addr));
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 21 * MS, &server, resp, (size_t)n), 0);
    CHECK(!sluice_stun_client_poll_event(c, &ev));
    /* RFC 6298: SRTT 20 ms, RTTVAR 10 ms -> 60 ms, raised to the 100 ms floor */
    CHECK_EQ(sluice_stun_client_rto(c, &server, 21 * MS), 100 * MS);

    /* The next transaction to this server starts from the cached RTO. */
    CHECK_EQ(sluice_stun_client_send(c, 1 * S, body, binding_body(body, sizeof body), &r, NULL), 0);
    CHECK(take(c, 1 * S, buf, sizeof buf, &m) > 0);
    CHECK_EQ(sluice_stun_client_next_timeout(c), 1 * S + 100 * MS);
    /* Karn: an answer after a retransmission does not feed the estimator. */
    sluice_stun_client_handle_timeout(c, 1 * S + 100 * MS);
    CHECK(take(c, 1 * S + 100 * MS, buf, sizeof buf, &m) > 0);
    n = respond_binding(&m, NULL, resp, sizeof resp);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 1 * S + 900 * MS, &server, resp, (size_t)n), 1);
    CHECK(sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(ev.rtt_us, 800 * MS); /* measured from the last retransmission */
    CHECK_EQ(sluice_stun_client_rto(c, &server, 2 * S), 100 * MS);
    /* §6.2.1: the estimate is forgotten after 10 minutes without traffic */
    CHECK_EQ(sluice_stun_client_rto(c, &server, 2 * S + 601 * S), 500 * MS);
    sluice_stun_client_free(c);
}

static void short_term(void)
{
    sluice_stun_client *c = new_client(4);
    uint8_t body[64], buf[1500], resp[1500];
    sluice_stun_request r = plain_request();
    sluice_stun_msg m;
    sluice_stun_event ev;
    sluice_stun_key key, wrong;
    const uint8_t *u;
    size_t ulen;
    int n;

    r.auth = SLUICE_STUN_AUTH_SHORT_TERM;
    r.username = "remote:local";
    r.username_len = 12;
    r.password = "pass-word-1234567890ab";
    r.password_len = strlen(r.password);
    sluice_stun_key_short_term(&key, r.password, r.password_len);
    sluice_stun_key_short_term(&wrong, "nope", 4);
    CHECK_EQ(sluice_stun_client_send(c, 0, body, binding_body(body, sizeof body), &r, NULL), 0);
    CHECK(take(c, 0, buf, sizeof buf, &m) > 0);
    CHECK_EQ(sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_USERNAME, &u, &ulen), 0);
    CHECK_EQ(ulen, 12);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
    CHECK(m.fingerprint_off > m.integrity_off);

    /* wrong key: dropped silently (RFC 8489 §9.1.4) */
    n = respond_binding(&m, &wrong, resp, sizeof resp);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 10 * MS, &server, resp, (size_t)n), 1);
    CHECK(!sluice_stun_client_poll_event(c, &ev));
    /* no integrity on a success response: dropped too */
    n = respond_binding(&m, NULL, resp, sizeof resp);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 11 * MS, &server, resp, (size_t)n), 1);
    CHECK(!sluice_stun_client_poll_event(c, &ev));
    /* right key: success */
    n = respond_binding(&m, &key, resp, sizeof resp);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 12 * MS, &server, resp, (size_t)n), 1);
    CHECK(sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(ev.type, SLUICE_STUN_EVENT_SUCCESS);
    sluice_stun_client_free(c);
}

/* A server's 401/438 answer (RFC 8489 §9.2.4). */
static int challenge(const sluice_stun_msg *req, int code, const char *nonce, const uint16_t *algs,
                     size_t n_algs, uint8_t *out, size_t cap)
{
    sluice_stun_error_opts o;
    memset(&o, 0, sizeof o);
    o.realm = "example.org";
    o.nonce = nonce;
    o.password_algorithms = algs;
    o.n_password_algorithms = n_algs;
    o.fingerprint = true;
    return sluice_stun_error_response(req, code, &o, out, cap);
}

static sluice_stun_request long_term_request(void)
{
    sluice_stun_request r = plain_request();
    r.auth = SLUICE_STUN_AUTH_LONG_TERM;
    r.username = "alice";
    r.username_len = 5;
    r.password = "secret";
    r.password_len = 6;
    return r;
}

static void long_term_challenge(void)
{
    sluice_stun_client *c = new_client(4);
    uint8_t body[64], buf[1500], resp[1500], first_txid[12];
    sluice_stun_request r = long_term_request();
    sluice_stun_msg m;
    sluice_stun_event ev;
    sluice_stun_key key;
    const uint8_t *v;
    size_t vlen;
    int n;

    sluice_stun_key_long_term(&key, SLUICE_STUN_PWALG_MD5, "alice", 5, "example.org", 11, "secret",
                              6);
    CHECK_EQ(sluice_stun_client_send(c, 0, body, binding_body(body, sizeof body), &r, first_txid), 0);
    CHECK(take(c, 0, buf, sizeof buf, &m) > 0);
    /* §9.2.3: the first request carries no credentials */
    CHECK(!sluice_stun_has(&m, SLUICE_STUN_ATTR_USERNAME));
    CHECK_EQ(m.integrity_off, 0);
    n = challenge(&m, 401, "nonce-1", NULL, 0, resp, sizeof resp);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 5 * MS, &server, resp, (size_t)n), 1);
    CHECK(!sluice_stun_client_poll_event(c, &ev));
    /* the retry: new transaction, USERNAME, REALM, NONCE, MI with the MD5 key */
    CHECK(take(c, 5 * MS, buf, sizeof buf, &m) > 0);
    CHECK(memcmp(sluice_stun_txid(&m), first_txid, 12) != 0);
    CHECK_EQ(sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_USERNAME, &v, &vlen), 0);
    CHECK(vlen == 5 && memcmp(v, "alice", 5) == 0);
    CHECK_EQ(sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_NONCE, &v, &vlen), 0);
    CHECK(vlen == 7 && memcmp(v, "nonce-1", 7) == 0);
    CHECK(sluice_stun_has(&m, SLUICE_STUN_ATTR_REALM));
    CHECK(!sluice_stun_has(&m, SLUICE_STUN_ATTR_PASSWORD_ALGORITHM));
    CHECK_EQ(sluice_stun_check_integrity_sha1(&m, &key), 0);
    CHECK_EQ(m.integrity256_off, 0);
    /* its schedule restarted with the RTO learned from the 401's 5 ms RTT
     * (RFC 6298 gives 25 ms, raised to the 100 ms floor) */
    CHECK_EQ(sluice_stun_client_next_timeout(c), 105 * MS);
    n = respond_binding(&m, &key, resp, sizeof resp);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 10 * MS, &server, resp, (size_t)n), 1);
    CHECK(sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(ev.type, SLUICE_STUN_EVENT_SUCCESS);

    /* Next request: the cached nonce goes out at once. A second 401 after
     * that is answered once; a 401 to the authenticated retry fails. */
    CHECK_EQ(sluice_stun_client_send(c, 1 * S, body, binding_body(body, sizeof body), &r, NULL), 0);
    CHECK(take(c, 1 * S, buf, sizeof buf, &m) > 0);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
    n = challenge(&m, 401, "nonce-2", NULL, 0, resp, sizeof resp);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 1 * S + 1, &server, resp, (size_t)n), 1);
    CHECK(!sluice_stun_client_poll_event(c, &ev));
    CHECK(take(c, 1 * S + 1, buf, sizeof buf, &m) > 0);
    CHECK_EQ(sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_NONCE, &v, &vlen), 0);
    CHECK(vlen == 7 && memcmp(v, "nonce-2", 7) == 0);
    n = challenge(&m, 401, "nonce-3", NULL, 0, resp, sizeof resp);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 1 * S + 2, &server, resp, (size_t)n), 1);
    CHECK(sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(ev.type, SLUICE_STUN_EVENT_FAILED);
    CHECK_EQ(ev.error_code, 401);
    CHECK_EQ(ev.reason, SLUICE_ERR_AUTH);
    CHECK_EQ(take(c, 1 * S + 2, buf, sizeof buf, &m), 0);
    sluice_stun_client_free(c);
}

/* A nonce that goes stale mid-way: 438 answered once with the new nonce. */
static void stale_nonce(void)
{
    sluice_stun_client *c = new_client(4);
    uint8_t body[64], buf[1500], resp[1500];
    sluice_stun_request r = long_term_request();
    sluice_stun_msg m;
    sluice_stun_event ev;
    sluice_stun_key key;
    const uint8_t *v;
    size_t vlen;
    int n;

    sluice_stun_key_long_term(&key, SLUICE_STUN_PWALG_MD5, "alice", 5, "example.org", 11, "secret",
                              6);
    CHECK_EQ(sluice_stun_client_send(c, 0, body, binding_body(body, sizeof body), &r, NULL), 0);
    CHECK(take(c, 0, buf, sizeof buf, &m) > 0);
    n = challenge(&m, 401, "n1", NULL, 0, resp, sizeof resp);
    sluice_stun_client_handle_datagram(c, 1, &server, resp, (size_t)n);
    CHECK(take(c, 1, buf, sizeof buf, &m) > 0);
    n = challenge(&m, 438, "n2", NULL, 0, resp, sizeof resp);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 2, &server, resp, (size_t)n), 1);
    CHECK(!sluice_stun_client_poll_event(c, &ev));
    CHECK(take(c, 2, buf, sizeof buf, &m) > 0);
    CHECK_EQ(sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_NONCE, &v, &vlen), 0);
    CHECK(vlen == 2 && memcmp(v, "n2", 2) == 0);
    CHECK_EQ(sluice_stun_check_integrity(&m, &key), 0);
    /* second 438 in one transaction: give up with the code */
    n = challenge(&m, 438, "n3", NULL, 0, resp, sizeof resp);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 3, &server, resp, (size_t)n), 1);
    CHECK(sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(ev.type, SLUICE_STUN_EVENT_FAILED);
    CHECK_EQ(ev.error_code, 438);
    sluice_stun_client_free(c);
}

/* RFC 8489 §9.2.5: PASSWORD-ALGORITHMS negotiation and USERHASH. */
static void password_algorithms_and_userhash(void)
{
    static const uint16_t algs[] = {SLUICE_STUN_PWALG_SHA256, SLUICE_STUN_PWALG_MD5};
    sluice_stun_client *c = new_client(4);
    uint8_t body[64], buf[1500], resp[1500], hash[32];
    sluice_stun_request r = long_term_request();
    sluice_stun_msg m;
    sluice_stun_event ev;
    sluice_stun_key key;
    char nonce[64];
    const uint8_t *v;
    size_t vlen;
    uint16_t alg, got[4];
    int n;

    sluice_stun_nonce_cookie(SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS |
                                 SLUICE_STUN_FEATURE_USERNAME_ANONYMITY,
                             nonce);
    memcpy(nonce + SLUICE_STUN_NONCE_COOKIE_LEN, "abcdef", 7);
    sluice_stun_key_long_term(&key, SLUICE_STUN_PWALG_SHA256, "alice", 5, "example.org", 11,
                              "secret", 6);
    sluice_stun_userhash(hash, "alice", 5, "example.org", 11);

    CHECK_EQ(sluice_stun_client_send(c, 0, body, binding_body(body, sizeof body), &r, NULL), 0);
    CHECK(take(c, 0, buf, sizeof buf, &m) > 0);
    n = challenge(&m, 401, nonce, algs, 2, resp, sizeof resp);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 1, &server, resp, (size_t)n), 1);
    CHECK(take(c, 1, buf, sizeof buf, &m) > 0);
    CHECK_EQ(sluice_stun_get_password_algorithm(&m, &alg), 0);
    CHECK_EQ(alg, SLUICE_STUN_PWALG_SHA256);
    CHECK_EQ(sluice_stun_get_password_algorithms(&m, got, 4), 2);
    CHECK_EQ(got[0], SLUICE_STUN_PWALG_SHA256);
    CHECK(!sluice_stun_has(&m, SLUICE_STUN_ATTR_USERNAME));
    CHECK_EQ(sluice_stun_get_bytes(&m, SLUICE_STUN_ATTR_USERHASH, &v, &vlen), 0);
    CHECK(vlen == 32 && memcmp(v, hash, 32) == 0);
    CHECK(m.integrity256_off != 0);
    CHECK_EQ(m.integrity_off, 0);
    CHECK_EQ(sluice_stun_check_integrity_sha256(&m, &key), 0);
    /* no downgrade: a valid SHA-1 MESSAGE-INTEGRITY alone is not enough
     * for a request signed with MESSAGE-INTEGRITY-SHA256 */
    {
        sluice_stun_writer w;
        sluice_stun_writer_init(&w, resp, sizeof resp,
                                sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_SUCCESS),
                                sluice_stun_txid(&m));
        sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &client_addr);
        sluice_stun_put_integrity(&w, &key);
        n = sluice_stun_writer_result(&w);
        CHECK_EQ(sluice_stun_client_handle_datagram(c, 2, &server, resp, (size_t)n), 1);
        CHECK(!sluice_stun_client_poll_event(c, &ev));
    }
    n = respond_binding(&m, &key, resp, sizeof resp);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 2, &server, resp, (size_t)n), 1);
    CHECK(sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(ev.type, SLUICE_STUN_EVENT_SUCCESS);
    sluice_stun_client_free(c);
}

static void error_and_unknown(void)
{
    sluice_stun_client *c = new_client(4);
    uint8_t body[64], buf[1500], resp[1500];
    sluice_stun_request r = plain_request();
    sluice_stun_msg m;
    sluice_stun_event ev;
    sluice_stun_writer w;
    int n;

    CHECK_EQ(sluice_stun_client_send(c, 0, body, binding_body(body, sizeof body), &r, NULL), 0);
    CHECK(take(c, 0, buf, sizeof buf, &m) > 0);
    n = sluice_stun_error_response(&m, 400, NULL, resp, sizeof resp);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 1, &server, resp, (size_t)n), 1);
    CHECK(sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(ev.type, SLUICE_STUN_EVENT_ERROR);
    CHECK_EQ(ev.error_code, 400);

    /* §6.3.3: a success response with an unknown comprehension-required
     * attribute fails the transaction */
    CHECK_EQ(sluice_stun_client_send(c, 2, body, binding_body(body, sizeof body), &r, NULL), 0);
    CHECK(take(c, 2, buf, sizeof buf, &m) > 0);
    sluice_stun_writer_init(&w, resp, sizeof resp,
                            sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_SUCCESS),
                            sluice_stun_txid(&m));
    sluice_stun_put_xor_address(&w, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &client_addr);
    sluice_stun_put_u32(&w, 0x7F01, 1);
    n = sluice_stun_writer_result(&w);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 3, &server, resp, (size_t)n), 1);
    CHECK(sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(ev.type, SLUICE_STUN_EVENT_FAILED);
    CHECK_EQ(ev.reason, SLUICE_ERR_UNKNOWN_ATTR);

    /* not ours: garbage, requests, unknown IDs, wrong method */
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 4, &server, (const uint8_t *)"hello", 5), 0);
    CHECK_EQ(sluice_stun_client_handle_datagram(c, 4, &server, buf, m.len), 0);
    CHECK(!sluice_stun_client_poll_event(c, &ev));
    sluice_stun_client_free(c);
}

/* Bounded table; events are FIFO and never overwritten. */
static void bounds_and_fifo(void)
{
    sluice_stun_client *c = new_client(2);
    uint8_t body[64], buf[1500], a[12], b[12];
    sluice_stun_request r = plain_request();
    sluice_stun_msg m;
    sluice_stun_event ev;
    size_t blen = binding_body(body, sizeof body);

    r.user = 1;
    CHECK_EQ(sluice_stun_client_send(c, 0, body, blen, &r, a), 0);
    r.user = 2;
    CHECK_EQ(sluice_stun_client_send(c, 1, body, blen, &r, b), 0);
    CHECK_EQ(sluice_stun_client_send(c, 2, body, blen, &r, NULL), SLUICE_ERR_FULL);
    /* NOSPACE leaves the datagram queued */
    {
        sluice_transmit tx;
        CHECK_EQ(sluice_stun_client_poll_transmit(c, 3, buf, 10, &tx), SLUICE_ERR_NOSPACE);
    }
    CHECK(take(c, 3, buf, sizeof buf, &m) > 0);
    CHECK(take(c, 3, buf, sizeof buf, &m) > 0);
    CHECK_EQ(take(c, 3, buf, sizeof buf, &m), 0);
    /* both time out; the slots stay taken until their events are read */
    for (uint64_t now = 3; now != SLUICE_NEVER; now = sluice_stun_client_next_timeout(c)) {
        sluice_stun_client_handle_timeout(c, now);
        while (take(c, now, buf, sizeof buf, &m) > 0)
            ;
    }
    CHECK_EQ(sluice_stun_client_send(c, 50 * S, body, blen, &r, NULL), SLUICE_ERR_FULL);
    CHECK(sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(ev.user, 1);
    CHECK_MEM(ev.txid, a, 12);
    CHECK(sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(ev.user, 2);
    CHECK_MEM(ev.txid, b, 12);
    CHECK(!sluice_stun_client_poll_event(c, &ev));
    CHECK_EQ(sluice_stun_client_send(c, 50 * S, body, blen, &r, a), 0);
    CHECK_EQ(sluice_stun_client_cancel(c, a), 0);
    CHECK_EQ(sluice_stun_client_cancel(c, a), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(take(c, 50 * S, buf, sizeof buf, &m), 0);
    sluice_stun_client_free(c);
}

static void indication_and_bad_input(void)
{
    sluice_stun_client *c = new_client(2);
    uint8_t body[64], buf[1500];
    sluice_stun_request r = plain_request();
    sluice_stun_msg m;
    sluice_stun_event ev;
    sluice_stun_writer w;
    int n;

    sluice_stun_writer_init(&w, body, sizeof body,
                            sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_INDICATION), NULL);
    n = sluice_stun_writer_result(&w);
    CHECK_EQ(sluice_stun_client_send(c, 0, body, (size_t)n, &r, NULL), 0);
    CHECK(take(c, 0, buf, sizeof buf, &m) > 0);
    CHECK_EQ(m.cls, SLUICE_STUN_INDICATION);
    CHECK_EQ(take(c, 0, buf, sizeof buf, &m), 0);
    CHECK_EQ(sluice_stun_client_next_timeout(c), SLUICE_NEVER);
    CHECK(!sluice_stun_client_poll_event(c, &ev));

    /* a body with its own FINGERPRINT, a response, garbage, no server */
    sluice_stun_put_fingerprint(&w);
    CHECK_EQ(sluice_stun_client_send(c, 0, body, (size_t)sluice_stun_writer_result(&w), &r, NULL),
             SLUICE_ERR_INVALID);
    sluice_stun_writer_init(&w, body, sizeof body,
                            sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_SUCCESS), NULL);
    CHECK_EQ(sluice_stun_client_send(c, 0, body, (size_t)sluice_stun_writer_result(&w), &r, NULL),
             SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_stun_client_send(c, 0, (const uint8_t *)"garbage", 7, &r, NULL),
             SLUICE_ERR_INVALID);
    r.server.family = 0;
    CHECK_EQ(sluice_stun_client_send(c, 0, body, binding_body(body, sizeof body), &r, NULL),
             SLUICE_ERR_INVALID);
    sluice_stun_client_free(c);
}

/* Same seed, same transaction IDs: sessions replay bit for bit. */
static void deterministic(void)
{
    uint8_t body[64], a[12], b[12];
    sluice_stun_request r = plain_request();
    sluice_stun_client *c1 = new_client(2);
    sluice_stun_client *c2;

    CHECK_EQ(sluice_stun_client_send(c1, 0, body, binding_body(body, sizeof body), &r, a), 0);
    c2 = new_client(2);
    CHECK_EQ(sluice_stun_client_send(c2, 0, body, binding_body(body, sizeof body), &r, b), 0);
    CHECK_MEM(a, b, 12);
    sluice_stun_client_free(c1);
    sluice_stun_client_free(c2);
}

/* A failing allocator: the n-th allocation fails; counts live blocks. */
struct failing {
    int fail_at, calls, live;
};
static void *f_calloc(void *ctx, size_t n, size_t size)
{
    struct failing *f = ctx;
    if (++f->calls == f->fail_at)
        return NULL;
    f->live++;
    return calloc(n, size);
}
static void f_free(void *ctx, void *p)
{
    struct failing *f = ctx;
    f->live--;
    free(p);
}

/* style.md: fail each allocation in turn; nothing leaks, nothing crashes. */
static void allocation_failures(void)
{
    sluice_stun_client_config cfg;
    int total;
    struct failing f = {0, 0, 0};

    sluice_stun_client_config_init(&cfg);
    cfg.alloc.calloc = f_calloc;
    cfg.alloc.free = f_free;
    cfg.alloc.ctx = &f;
    sluice_stun_client_free(sluice_stun_client_new(&cfg));
    total = f.calls;
    CHECK(total >= 2);
    CHECK_EQ(f.live, 0);
    for (int k = 1; k <= total; k++) {
        sluice_stun_client *c;
        f.fail_at = k;
        f.calls = 0;
        c = sluice_stun_client_new(&cfg);
        CHECK(c == NULL);
        CHECK_EQ(f.live, 0);
        sluice_stun_client_free(c);
    }
    /* a half-set allocator is a configuration error */
    cfg.alloc.free = NULL;
    CHECK(sluice_stun_client_new(&cfg) == NULL);
}

int main(void)
{
    setup();
    RUN(udp_schedule);
    RUN(reliable_timeout);
    RUN(success_and_rtt);
    RUN(short_term);
    RUN(long_term_challenge);
    RUN(stale_nonce);
    RUN(password_algorithms_and_userhash);
    RUN(error_and_unknown);
    RUN(bounds_and_fifo);
    RUN(indication_and_bad_input);
    RUN(deterministic);
    RUN(allocation_failures);
    return TEST_DONE();
}
