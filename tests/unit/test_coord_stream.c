/* SPDX-License-Identifier: MIT */
/* Coordinator streams over real TLS 1.3 in memory, on virtual time:
 * streams to the coordinator and to other clients (ordered, byte-exact,
 * empty and largest messages), opens held until the peer connects and
 * their timeout, direct streams with fingerprints and TURN REST
 * credentials, limits, resets, half-close, a departing peer. */
#include <openssl/hmac.h>

#include "coord_util.h"

static uint8_t pat(size_t seed, size_t i)
{
    return (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

static uint8_t *pattern(size_t seed, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        p[i] = pat(seed, i);
    return p;
}

/* The DATA events of stream, in order. */
static size_t data_events(cu_evs *e, uint32_t stream, cu_ev **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n; i++)
        if (e->v[i].type == SLUICE_COORD_EVENT_DATA && e->v[i].stream == stream && n < cap)
            out[n++] = &e->v[i];
    return n;
}

static cu_ev *find_stream_ev(cu_evs *e, int type, uint32_t stream)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->v[i].type == type && e->v[i].stream == stream)
            return &e->v[i];
    return NULL;
}

/* a opens kind to b's name; b accepts. Returns a's stream id; *bs gets
 * b's. */
static uint32_t open_pair(cu_world *w, size_t a, size_t b, const char *bname,
                          sluice_coord_kind kind, const char *label, uint32_t *bs)
{
    int64_t id = sluice_coord_client_open_stream(w->cl[a].c, w->now, kind, bname, label, 0, 0);
    CHECK(id > 0 && (id & 1));
    size_t before = cu_count(&w->cl[b].ev, SLUICE_COORD_EVENT_STREAM_INCOMING);
    cu_pump(w);
    cu_ev *in = cu_find(&w->cl[b].ev, SLUICE_COORD_EVENT_STREAM_INCOMING, before);
    CHECK(in != NULL);
    if (!in)
        return 0;
    CHECK(in->stream > 0 && (in->stream & 1) == 0);
    CHECK_EQ(in->kind, kind);
    CHECK_STR(in->label, label ? label : "");
    *bs = in->stream;
    CHECK_EQ(sluice_coord_client_accept_stream(w->cl[b].c, w->now, in->stream), 0);
    CHECK_EQ(sluice_coord_client_accept_stream(w->cl[b].c, w->now, in->stream), SLUICE_ERR_STATE);
    cu_pump(w);
    cu_ev *acc = find_stream_ev(&w->cl[a].ev, SLUICE_COORD_EVENT_STREAM_ACCEPTED, (uint32_t)id);
    CHECK(acc != NULL);
    return (uint32_t)id;
}

static void test_stream_to_coordinator(void)
{
    cu_world w;
    cu_world_init(&w, NULL);
    size_t a = cu_connect(&w, "alice");
    uint64_t conn = w.cl[a].conn;
    int64_t id = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_COORD, NULL,
                                                 "status", 0, 0);
    CHECK_EQ(id, 1);
    /* Not accepted yet: nothing can be sent. */
    CHECK_EQ(sluice_coord_client_send(w.cl[a].c, w.now, 1, (const uint8_t *)"x", 1),
             SLUICE_ERR_STATE);
    cu_pump(&w);
    cu_ev *in = cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_STREAM_INCOMING, 0);
    CHECK(in && in->conn == conn && in->stream == 1);
    CHECK(in && !strcmp(in->name, "alice") && !strcmp(in->label, "status"));
    CHECK_EQ(sluice_coord_server_accept_stream(w.s, w.now, conn, 1), 0);
    CHECK_EQ(sluice_coord_server_accept_stream(w.s, w.now, conn, 1), SLUICE_ERR_STATE);
    cu_pump(&w);
    cu_ev *acc = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_ACCEPTED, 1);
    CHECK(acc && acc->kind == SLUICE_COORD_KIND_COORD && !strcmp(acc->label, "status"));
    /* Both ways, in order. */
    for (int i = 0; i < 5; i++) {
        char m[16];
        snprintf(m, sizeof m, "up %d", i);
        CHECK_EQ(sluice_coord_client_send(w.cl[a].c, w.now, 1, (const uint8_t *)m, strlen(m)), 0);
        snprintf(m, sizeof m, "down %d", i);
        CHECK_EQ(sluice_coord_server_send(w.s, w.now, conn, 1, (const uint8_t *)m, strlen(m)), 0);
    }
    cu_pump(&w);
    size_t up = 0;
    for (size_t i = 0; i < w.sev.n; i++) {
        cu_ev *e = &w.sev.v[i];
        if (e->type != SLUICE_COORD_SERVER_EVENT_DATA)
            continue;
        char m[16];
        snprintf(m, sizeof m, "up %zu", up++);
        CHECK(e->len == strlen(m) && !memcmp(e->data, m, e->len));
    }
    CHECK_EQ(up, 5);
    cu_ev *d[8];
    CHECK_EQ(data_events(&w.cl[a].ev, 1, d, 8), 5);
    CHECK(d[4]->len == 6 && !memcmp(d[4]->data, "down 4", 6));
    CHECK(sluice_coord_server_writable(w.s, conn, 1) == 65536);
    /* Half-close from the client, then from the coordinator. */
    CHECK_EQ(sluice_coord_client_close_stream(w.cl[a].c, w.now, 1), 0);
    CHECK_EQ(sluice_coord_client_close_stream(w.cl[a].c, w.now, 1), SLUICE_ERR_STATE);
    CHECK_EQ(sluice_coord_client_send(w.cl[a].c, w.now, 1, (const uint8_t *)"x", 1),
             SLUICE_ERR_STATE);
    cu_pump(&w);
    CHECK(cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_STREAM_FINISHED, 0) != NULL);
    CHECK(!cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_STREAM_CLOSED, 0));
    CHECK_EQ(sluice_coord_server_send(w.s, w.now, conn, 1, (const uint8_t *)"last", 4), 0);
    CHECK_EQ(sluice_coord_server_close_stream(w.s, w.now, conn, 1), 0);
    cu_pump(&w);
    CHECK(cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_STREAM_CLOSED, 0) != NULL);
    CHECK_EQ(data_events(&w.cl[a].ev, 1, d, 8), 6);
    CHECK(find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_FINISHED, 1) != NULL);
    cu_ev *cl = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_CLOSED, 1);
    CHECK(cl && cl->code == SLUICE_COORD_E_NONE);
    CHECK_EQ(sluice_coord_server_send(w.s, w.now, conn, 1, (const uint8_t *)"x", 1),
             SLUICE_ERR_NOT_FOUND);
    /* The coordinator refuses the next one. */
    id = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_COORD, NULL, "x", 0,
                                         0);
    CHECK_EQ(id, 3);
    cu_pump(&w);
    CHECK_EQ(sluice_coord_server_refuse_stream(w.s, w.now, conn, 3, SLUICE_COORD_E_REFUSED,
                                               "not today"),
             0);
    cu_pump(&w);
    cu_ev *ref = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_REFUSED, 3);
    CHECK(ref && ref->code == SLUICE_COORD_E_REFUSED && !strcmp(ref->reason, "not today"));
    /* And opens one itself (even id). */
    int64_t sid = sluice_coord_server_open_stream(w.s, w.now, conn, "push");
    CHECK_EQ(sid, 2);
    cu_pump(&w);
    in = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_INCOMING, 2);
    CHECK(in && in->kind == SLUICE_COORD_KIND_COORD && !strcmp(in->name, "") &&
          !strcmp(in->label, "push"));
    CHECK_EQ(sluice_coord_client_accept_stream(w.cl[a].c, w.now, 2), 0);
    cu_pump(&w);
    CHECK(cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_STREAM_ACCEPTED, 0) != NULL);
    CHECK_EQ(sluice_coord_server_send(w.s, w.now, conn, 2, (const uint8_t *)"news", 4), 0);
    cu_pump(&w);
    CHECK_EQ(data_events(&w.cl[a].ev, 2, d, 8), 1);
    /* A reset by the client reaches the coordinator's events. */
    CHECK_EQ(sluice_coord_client_reset_stream(w.cl[a].c, w.now, 2, SLUICE_COORD_E_CANCELLED,
                                              "enough"),
             0);
    cu_pump(&w);
    cu_ev *cs = cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_STREAM_CLOSED, 1);
    CHECK(cs && cs->stream == 2 && cs->code == SLUICE_COORD_E_CANCELLED &&
          !strcmp(cs->reason, "enough"));
    cu_world_free(&w);
}

static void check_messages(cu_world *w, size_t to, uint32_t stream, const size_t *sizes, size_t n,
                           size_t seed)
{
    cu_ev *d[32];
    size_t got = data_events(&w->cl[to].ev, stream, d, 32);
    CHECK_EQ(got, n);
    for (size_t i = 0; i < got && i < n; i++) {
        CHECK_EQ(d[i]->len, sizes[i]);
        uint8_t *want = pattern(seed + i, sizes[i]);
        if (d[i]->len == sizes[i] && sizes[i])
            CHECK_MEM(d[i]->data, want, sizes[i]);
        free(want);
        CHECK_STR(d[i]->sender, "");
    }
}

static void send_messages(cu_world *w, size_t from, uint32_t stream, const size_t *sizes,
                          size_t n, size_t seed)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t *m = pattern(seed + i, sizes[i]);
        int r;
        /* Wait for credit the way an application does: on WRITABLE. */
        while ((r = sluice_coord_client_send(w->cl[from].c, w->now, stream, m, sizes[i])) ==
               SLUICE_ERR_FULL)
            cu_pump(w);
        CHECK_EQ(r, 0);
        free(m);
    }
    cu_pump(w);
}

static void test_peer_stream(void)
{
    static const size_t sizes[] = {0, 1, 100, 16383, 16384, 16385, 65535, 65536, 0, 7};
    const size_t n = sizeof sizes / sizeof sizes[0];
    cu_world w;
    uint32_t bs = 0;
    cu_world_init(&w, NULL);
    size_t a = cu_connect(&w, "alice");
    size_t b = cu_connect(&w, "bob");
    uint32_t as = open_pair(&w, a, b, "bob", SLUICE_COORD_KIND_PEER, "chat", &bs);
    cu_ev *in = find_stream_ev(&w.cl[b].ev, SLUICE_COORD_EVENT_STREAM_INCOMING, bs);
    CHECK(in && !strcmp(in->name, "alice") && !in->has_fp && !strcmp(in->turn_user, ""));
    cu_ev *acc = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_ACCEPTED, as);
    CHECK(acc && !strcmp(acc->name, "bob") && !acc->has_fp);
    send_messages(&w, a, as, sizes, n, 10);
    send_messages(&w, b, bs, sizes, n, 50);
    check_messages(&w, b, bs, sizes, n, 10);
    check_messages(&w, a, as, sizes, n, 50);
    /* Above max_message: refused locally, nothing sent. */
    uint8_t *big = pattern(1, 65537);
    CHECK_EQ(sluice_coord_client_send(w.cl[a].c, w.now, as, big, 65537), SLUICE_ERR_INVALID);
    free(big);
    CHECK_EQ(sluice_coord_client_writable(w.cl[a].c, as), 65536);
    /* The same in 1-byte pieces through TLS: every boundary. */
    w.split = 1;
    send_messages(&w, a, as, sizes, 6, 90);
    cu_ev *d[32];
    CHECK_EQ(data_events(&w.cl[b].ev, bs, d, 32), n + 6);
    CHECK(d[n + 5]->len == 16385 && d[n + 5]->data[16384] == pat(95, 16384));
    w.split = 0;
    /* A second stream is refused by bob with his reason. */
    int64_t id = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_PEER, "bob",
                                                 "other", 0, 0);
    cu_pump(&w);
    in = cu_find(&w.cl[b].ev, SLUICE_COORD_EVENT_STREAM_INCOMING, 1);
    CHECK(in != NULL);
    if (in)
        CHECK_EQ(sluice_coord_client_refuse_stream(w.cl[b].c, w.now, in->stream,
                                                   SLUICE_COORD_E_REFUSED, "busy"),
                 0);
    cu_pump(&w);
    cu_ev *ref = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_REFUSED, (uint32_t)id);
    CHECK(ref && ref->code == SLUICE_COORD_E_REFUSED && !strcmp(ref->reason, "busy"));
    /* Half-close both ways ends the stream on both sides. */
    CHECK_EQ(sluice_coord_client_close_stream(w.cl[a].c, w.now, as), 0);
    cu_pump(&w);
    CHECK(find_stream_ev(&w.cl[b].ev, SLUICE_COORD_EVENT_STREAM_FINISHED, bs) != NULL);
    CHECK_EQ(sluice_coord_client_send(w.cl[b].c, w.now, bs, (const uint8_t *)"after", 5), 0);
    CHECK_EQ(sluice_coord_client_close_stream(w.cl[b].c, w.now, bs), 0);
    cu_pump(&w);
    CHECK_EQ(data_events(&w.cl[a].ev, as, d, 32), n + 1);
    cu_ev *ca = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_CLOSED, as);
    cu_ev *cb = find_stream_ev(&w.cl[b].ev, SLUICE_COORD_EVENT_STREAM_CLOSED, bs);
    CHECK(ca && ca->code == SLUICE_COORD_E_NONE);
    CHECK(cb && cb->code == SLUICE_COORD_E_NONE);
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.streams, 0);
    CHECK_EQ(st.streams_refused, 1);
    CHECK(st.messages_in >= 2 * n + 7);
    cu_world_free(&w);
}

static void test_largest_message(void)
{
    sluice_coord_server_config cfg;
    cu_world w;
    uint32_t bs = 0;
    cu_server_cfg(&cfg);
    cfg.max_message = SLUICE_COORD_MAX_MESSAGE_LIMIT;
    cfg.window = 2 * (SLUICE_COORD_MAX_MESSAGE_LIMIT + 12);
    cfg.member_queue_bytes = 2 * (SLUICE_COORD_MAX_MESSAGE_LIMIT + 100);
    cu_world_init(&w, &cfg);
    size_t a = cu_connect(&w, "alice");
    size_t b = cu_connect(&w, "bob");
    cu_ev *con = cu_find(&w.cl[a].ev, SLUICE_COORD_EVENT_CONNECTED, 0);
    CHECK(con && con->max_message == SLUICE_COORD_MAX_MESSAGE_LIMIT);
    uint32_t as = open_pair(&w, a, b, "bob", SLUICE_COORD_KIND_PEER, NULL, &bs);
    static const size_t sizes[] = {SLUICE_COORD_MAX_MESSAGE_LIMIT, 3, SLUICE_COORD_MAX_MESSAGE_LIMIT,
                                   SLUICE_COORD_MAX_MESSAGE_LIMIT};
    send_messages(&w, a, as, sizes, 4, 7);
    check_messages(&w, b, bs, sizes, 4, 7);
    uint8_t *big = pattern(1, SLUICE_COORD_MAX_MESSAGE_LIMIT + 1);
    CHECK_EQ(sluice_coord_client_send(w.cl[a].c, w.now, as, big, SLUICE_COORD_MAX_MESSAGE_LIMIT + 1),
             SLUICE_ERR_INVALID);
    free(big);
    cu_world_free(&w);
}

static void test_absent_peer_and_wait(void)
{
    cu_world w;
    cu_world_init(&w, NULL);
    size_t a = cu_connect(&w, "alice");
    /* Without WAIT: refused at once. */
    int64_t id = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_PEER, "bob",
                                                 "video", 0, 0);
    cu_pump(&w);
    cu_ev *ref = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_REFUSED, (uint32_t)id);
    CHECK(ref && ref->code == SLUICE_COORD_E_NO_PEER);
    CHECK(ref && strstr(ref->reason, "no client named \"bob\"") != NULL);
    /* With WAIT: held until bob connects (any time within 60 s). */
    uint64_t t0 = w.now;
    int64_t held = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_PEER, "bob",
                                                   "video", SLUICE_COORD_OPEN_WAIT, 0);
    cu_pump(&w);
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.held_opens, 1);
    /* (next_timeout may be early, never late) */
    CHECK(sluice_coord_server_next_timeout(w.s) <= t0 + 60 * SEC);
    cu_advance(&w, 59 * SEC);
    size_t b = cu_connect(&w, "bob");
    cu_ev *in = cu_find(&w.cl[b].ev, SLUICE_COORD_EVENT_STREAM_INCOMING, 0);
    CHECK(in && !strcmp(in->name, "alice") && !strcmp(in->label, "video"));
    if (in)
        CHECK_EQ(sluice_coord_client_accept_stream(w.cl[b].c, w.now, in->stream), 0);
    cu_pump(&w);
    CHECK(find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_ACCEPTED, (uint32_t)held) != NULL);
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.held_opens, 0);
    /* Either order works: bob now waits for carol, carol opens to bob
     * (connected: no wait needed). */
    int64_t bw = sluice_coord_client_open_stream(w.cl[b].c, w.now, SLUICE_COORD_KIND_PEER, "carol",
                                                 "audio", SLUICE_COORD_OPEN_WAIT, 0);
    cu_pump(&w);
    size_t c = cu_connect(&w, "carol");
    int64_t cw = sluice_coord_client_open_stream(w.cl[c].c, w.now, SLUICE_COORD_KIND_PEER, "bob",
                                                 "audio", SLUICE_COORD_OPEN_WAIT, 0);
    cu_pump(&w);
    CHECK(cu_find(&w.cl[c].ev, SLUICE_COORD_EVENT_STREAM_INCOMING, 0) != NULL);
    CHECK(cu_find(&w.cl[b].ev, SLUICE_COORD_EVENT_STREAM_INCOMING, 0) != NULL);
    CHECK(bw > 0 && cw > 0);
    /* Timeout: exactly 60 s after the open, not a microsecond earlier. */
    uint64_t t1 = w.now;
    int64_t lost = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_DIRECT,
                                                   "dave", NULL, SLUICE_COORD_OPEN_WAIT, 0);
    cu_pump(&w);
    cu_advance_to(&w, t1 + 60 * SEC - 1);
    CHECK(!find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_REFUSED, (uint32_t)lost));
    cu_advance_to(&w, t1 + 60 * SEC);
    ref = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_REFUSED, (uint32_t)lost);
    CHECK(ref && ref->code == SLUICE_COORD_E_TIMEOUT);
    /* A shorter wait asked by the client (5 s), honoured exactly. */
    uint64_t t2 = w.now;
    int64_t quick = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_PEER,
                                                    "erin", NULL, SLUICE_COORD_OPEN_WAIT, 5 * SEC);
    cu_pump(&w);
    CHECK_EQ(sluice_coord_server_next_timeout(w.s), t2 + 5 * SEC);
    cu_advance_to(&w, t2 + 5 * SEC - 1);
    CHECK(!find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_REFUSED, (uint32_t)quick));
    cu_advance_to(&w, t2 + 5 * SEC);
    CHECK(find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_REFUSED, (uint32_t)quick) != NULL);
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.held_open_timeouts, 2);
    cu_world_free(&w);
}

static void test_held_limits(void)
{
    sluice_coord_server_config cfg;
    cu_world w;
    cu_server_cfg(&cfg);
    cfg.max_held_opens = 2;
    cu_world_init(&w, &cfg);
    size_t a = cu_connect(&w, "alice");
    int64_t h1 = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_PEER, "bob",
                                                 "1", SLUICE_COORD_OPEN_WAIT, 0);
    int64_t h2 = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_PEER, "bob",
                                                 "2", SLUICE_COORD_OPEN_WAIT, 0);
    int64_t h3 = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_PEER, "bob",
                                                 "3", SLUICE_COORD_OPEN_WAIT, 0);
    cu_pump(&w);
    cu_ev *ref = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_REFUSED, (uint32_t)h3);
    CHECK(ref && ref->code == SLUICE_COORD_E_LIMIT && strstr(ref->reason, "waiting") != NULL);
    /* The opener cancels one: the slot is free again. */
    CHECK_EQ(sluice_coord_client_reset_stream(w.cl[a].c, w.now, (uint32_t)h1,
                                              SLUICE_COORD_E_CANCELLED, NULL),
             0);
    cu_pump(&w);
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.held_opens, 1);
    /* The opener leaves: its held open goes with it; bob sees nothing. */
    cu_drop(&w, &w.cl[a]);
    cu_pump(&w);
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.held_opens, 0);
    CHECK_EQ(st.streams, 0);
    size_t b = cu_connect(&w, "bob");
    cu_pump(&w);
    CHECK(!cu_find(&w.cl[b].ev, SLUICE_COORD_EVENT_STREAM_INCOMING, 0));
    CHECK(h2 > 0);
    cu_world_free(&w);
}

static void check_rest(const cu_ev *e, const char *who, uint32_t ttl)
{
    char user[64];
    snprintf(user, sizeof user, "%llu:%s", (unsigned long long)(T_UNIX + ttl), who);
    CHECK_STR(e->turn_user, user);
    uint8_t mac[20];
    unsigned int n = 0;
    char want[32];
    HMAC(EVP_sha1(), "relay-secret", 12, (const uint8_t *)user, strlen(user), mac, &n);
    EVP_EncodeBlock((unsigned char *)want, mac, 20);
    CHECK_STR(e->turn_pass, want);
    CHECK_EQ(e->ttl, ttl);
    CHECK_EQ(e->n_uris, 2);
    CHECK_STR(e->turn_uris[0], "turn:relay.example:3478?transport=udp");
    CHECK_STR(e->turn_uris[1], "turns:relay.example:5349");
}

static void test_direct_stream(void)
{
    static const char *const uris[] = {"turn:relay.example:3478?transport=udp",
                                       "turns:relay.example:5349"};
    sluice_coord_server_config cfg;
    cu_world w;
    uint32_t bs = 0;
    cu_server_cfg(&cfg);
    cfg.turn_secret = "relay-secret";
    cfg.turn_uris = uris;
    cfg.n_turn_uris = 2;
    cfg.turn_ttl_s = 3600;
    cu_world_init(&w, &cfg);
    size_t a = cu_connect(&w, "alice");
    size_t b = cu_connect(&w, "bob");
    char cert[128], key[128];
    uint8_t afp[32], bfp[32];
    cu_identity("alice", cert, key, sizeof cert);
    CHECK_EQ(sluice_coord_ensure_identity("alice", cert, key, afp), 0);
    cu_identity("bob", cert, key, sizeof cert);
    CHECK_EQ(sluice_coord_ensure_identity("bob", cert, key, bfp), 0);
    uint32_t as = open_pair(&w, a, b, "bob", SLUICE_COORD_KIND_DIRECT, "sluice-ice/video", &bs);
    /* bob learns alice's certificate and gets credentials in his name... */
    cu_ev *in = find_stream_ev(&w.cl[b].ev, SLUICE_COORD_EVENT_STREAM_INCOMING, bs);
    CHECK(in && in->kind == SLUICE_COORD_KIND_DIRECT && in->has_fp);
    if (in) {
        CHECK_MEM(in->fp, afp, 32);
        check_rest(in, "bob", 3600);
    }
    /* ...and alice bob's, with credentials in hers. */
    cu_ev *acc = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_ACCEPTED, as);
    CHECK(acc && acc->kind == SLUICE_COORD_KIND_DIRECT && acc->has_fp);
    if (acc) {
        CHECK_MEM(acc->fp, bfp, 32);
        check_rest(acc, "alice", 3600);
    }
    /* ICE signalling is ordinary messages (docs/coord-protocol.md). */
    const char *offer = "ice-ufrag 8hhY\nice-pwd asd88fgpdd777uzjYhagZg\n"
                        "candidate:1 1 udp 2130706431 198.51.100.7 40000 typ host\n";
    const char *done = "end-of-candidates\n";
    CHECK_EQ(sluice_coord_client_send(w.cl[a].c, w.now, as, (const uint8_t *)offer, strlen(offer)), 0);
    CHECK_EQ(sluice_coord_client_send(w.cl[a].c, w.now, as, (const uint8_t *)done, strlen(done)), 0);
    cu_pump(&w);
    cu_ev *d[4];
    CHECK_EQ(data_events(&w.cl[b].ev, bs, d, 4), 2);
    CHECK(d[0]->len == strlen(offer) && !memcmp(d[0]->data, offer, d[0]->len));
    /* Without a TURN secret: fingerprints only. */
    cu_world_free(&w);
    cu_world_init(&w, NULL);
    a = cu_connect(&w, "alice");
    b = cu_connect(&w, "bob");
    as = open_pair(&w, a, b, "bob", SLUICE_COORD_KIND_DIRECT, NULL, &bs);
    acc = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_ACCEPTED, as);
    CHECK(acc && acc->has_fp && !strcmp(acc->turn_user, "") && acc->n_uris == 0);
    cu_world_free(&w);
}

static void test_stream_limits(void)
{
    sluice_coord_server_config cfg;
    cu_world w;
    cu_server_cfg(&cfg);
    cfg.max_streams_per_client = 3;
    cfg.max_channels = 1;
    cfg.max_members = 2;
    cu_world_init(&w, &cfg);
    size_t a = cu_connect(&w, "alice");
    size_t b = cu_connect(&w, "bob");
    int64_t ids[4];
    for (int i = 0; i < 4; i++)
        ids[i] = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_COORD, NULL,
                                                 NULL, 0, 0);
    cu_pump(&w);
    CHECK_EQ(cu_count(&w.sev, SLUICE_COORD_SERVER_EVENT_STREAM_INCOMING), 3);
    cu_ev *ref = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_REFUSED, (uint32_t)ids[3]);
    CHECK(ref && ref->code == SLUICE_COORD_E_LIMIT &&
          strstr(ref->reason, "stream limit (3 per client)") != NULL);
    /* A peer at its limit: the open to it is refused with a reason. */
    int64_t p = sluice_coord_client_open_stream(w.cl[b].c, w.now, SLUICE_COORD_KIND_PEER, "alice",
                                                NULL, 0, 0);
    cu_pump(&w);
    ref = find_stream_ev(&w.cl[b].ev, SLUICE_COORD_EVENT_STREAM_REFUSED, (uint32_t)p);
    CHECK(ref && ref->code == SLUICE_COORD_E_LIMIT && strstr(ref->reason, "\"alice\"") != NULL);
    /* Channels and members. */
    size_t c = cu_connect(&w, "carol");
    int64_t j1 = sluice_coord_client_open_stream(w.cl[b].c, w.now, SLUICE_COORD_KIND_BROADCAST,
                                                 "room", NULL, 0, 0);
    int64_t j2 = sluice_coord_client_open_stream(w.cl[b].c, w.now, SLUICE_COORD_KIND_BROADCAST,
                                                 "hall", NULL, 0, 0);
    int64_t j3 = sluice_coord_client_open_stream(w.cl[c].c, w.now, SLUICE_COORD_KIND_BROADCAST,
                                                 "room", NULL, 0, 0);
    int64_t j4 = sluice_coord_client_open_stream(w.cl[c].c, w.now, SLUICE_COORD_KIND_BROADCAST,
                                                 "room", NULL, 0, 0);
    cu_pump(&w);
    CHECK(find_stream_ev(&w.cl[b].ev, SLUICE_COORD_EVENT_STREAM_ACCEPTED, (uint32_t)j1) != NULL);
    ref = find_stream_ev(&w.cl[b].ev, SLUICE_COORD_EVENT_STREAM_REFUSED, (uint32_t)j2);
    CHECK(ref && ref->code == SLUICE_COORD_E_LIMIT && strstr(ref->reason, "channels") != NULL);
    CHECK(find_stream_ev(&w.cl[c].ev, SLUICE_COORD_EVENT_STREAM_ACCEPTED, (uint32_t)j3) != NULL);
    ref = find_stream_ev(&w.cl[c].ev, SLUICE_COORD_EVENT_STREAM_REFUSED, (uint32_t)j4);
    CHECK(ref && ref->code == SLUICE_COORD_E_LIMIT && strstr(ref->reason, "full") != NULL);
    cu_world_free(&w);
    /* The client's own limit: opens fail locally, incoming ones are
     * refused for it. */
    cu_world_init(&w, NULL);
    sluice_coord_client_config cc;
    char cert[128], key[128];
    cu_client_cfg(&cc, "dave", cert, key, sizeof cert);
    cc.max_streams = 2;
    size_t d = cu_add(&w, &cc);
    cu_pump(&w);
    a = cu_connect(&w, "alice");
    CHECK(sluice_coord_client_open_stream(w.cl[d].c, w.now, SLUICE_COORD_KIND_COORD, NULL, NULL, 0,
                                          0) > 0);
    CHECK(sluice_coord_client_open_stream(w.cl[d].c, w.now, SLUICE_COORD_KIND_COORD, NULL, NULL, 0,
                                          0) > 0);
    CHECK_EQ(sluice_coord_client_open_stream(w.cl[d].c, w.now, SLUICE_COORD_KIND_COORD, NULL, NULL,
                                             0, 0),
             SLUICE_ERR_FULL);
    p = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_PEER, "dave", NULL, 0,
                                        0);
    cu_pump(&w);
    ref = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_REFUSED, (uint32_t)p);
    CHECK(ref && ref->code == SLUICE_COORD_E_LIMIT);
    CHECK(!cu_find(&w.cl[d].ev, SLUICE_COORD_EVENT_STREAM_INCOMING, 0));
    /* Argument checks. */
    CHECK_EQ(sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_PEER, "bad name",
                                             NULL, 0, 0),
             SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_COORD, "x", NULL,
                                             0, 0),
             SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_BROADCAST, "room",
                                             NULL, SLUICE_COORD_OPEN_WAIT, 0),
             SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_PEER, "bob",
                                             "tab\t", 0, 0),
             SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_client_open_stream(w.cl[a].c, w.now, (sluice_coord_kind)9, "bob", NULL,
                                             0, 0),
             SLUICE_ERR_INVALID);
    CHECK_EQ(sluice_coord_client_send(w.cl[a].c, w.now, 99, NULL, 0), SLUICE_ERR_NOT_FOUND);
    CHECK_EQ(sluice_coord_client_accept_stream(w.cl[a].c, w.now, 98), SLUICE_ERR_NOT_FOUND);
    cu_world_free(&w);
}

static void test_reset_and_peer_gone(void)
{
    cu_world w;
    uint32_t bs = 0, bs2 = 0;
    cu_world_init(&w, NULL);
    size_t a = cu_connect(&w, "alice");
    size_t b = cu_connect(&w, "bob");
    uint32_t as = open_pair(&w, a, b, "bob", SLUICE_COORD_KIND_PEER, "one", &bs);
    uint32_t as2 = open_pair(&w, a, b, "bob", SLUICE_COORD_KIND_PEER, "two", &bs2);
    /* A reset reaches the other side with its code and reason. */
    CHECK_EQ(sluice_coord_client_send(w.cl[a].c, w.now, as, (const uint8_t *)"x", 1), 0);
    CHECK_EQ(sluice_coord_client_reset_stream(w.cl[a].c, w.now, as, SLUICE_COORD_E_CANCELLED,
                                              "changed my mind"),
             0);
    CHECK_EQ(sluice_coord_client_send(w.cl[a].c, w.now, as, (const uint8_t *)"x", 1),
             SLUICE_ERR_NOT_FOUND);
    cu_pump(&w);
    cu_ev *cl = find_stream_ev(&w.cl[b].ev, SLUICE_COORD_EVENT_STREAM_CLOSED, bs);
    CHECK(cl && cl->code == SLUICE_COORD_E_CANCELLED && !strcmp(cl->reason, "changed my mind"));
    /* Late frames for the reset stream are harmless. */
    CHECK_EQ(sluice_coord_client_send(w.cl[b].c, w.now, bs, (const uint8_t *)"x", 1),
             SLUICE_ERR_NOT_FOUND);
    /* bob's connection drops: alice's other stream ends with PEER_GONE. */
    cu_drop(&w, &w.cl[b]);
    cu_pump(&w);
    cl = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_CLOSED, as2);
    CHECK(cl && cl->code == SLUICE_COORD_E_PEER_GONE && strstr(cl->reason, "\"bob\"") != NULL);
    CHECK_EQ(sluice_coord_client_get_state(w.cl[a].c), SLUICE_COORD_CLIENT_CONNECTED);
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.streams, 0);
    /* An open that bob never answered is reset for alice too. */
    size_t c = cu_connect(&w, "carol");
    int64_t p = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_PEER, "carol",
                                                NULL, 0, 0);
    cu_pump(&w);
    CHECK(cu_find(&w.cl[c].ev, SLUICE_COORD_EVENT_STREAM_INCOMING, 0) != NULL);
    CHECK_EQ(sluice_coord_client_close(w.cl[c].c, w.now, NULL), 0);
    cu_pump(&w);
    cl = find_stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_STREAM_CLOSED, (uint32_t)p);
    CHECK(cl && cl->code == SLUICE_COORD_E_PEER_GONE);
    cu_world_free(&w);
}

static void test_self_stream(void)
{
    cu_world w;
    uint32_t in = 0;
    cu_world_init(&w, NULL);
    size_t a = cu_connect(&w, "alice");
    uint32_t out = open_pair(&w, a, a, "alice", SLUICE_COORD_KIND_PEER, "loop", &in);
    CHECK(out && in && out != in);
    CHECK_EQ(sluice_coord_client_send(w.cl[a].c, w.now, out, (const uint8_t *)"echo", 4), 0);
    cu_pump(&w);
    cu_ev *d[2];
    CHECK_EQ(data_events(&w.cl[a].ev, in, d, 2), 1);
    CHECK(d[0]->len == 4 && !memcmp(d[0]->data, "echo", 4));
    /* Its departure tears down both ends without trouble. */
    CHECK_EQ(sluice_coord_client_close(w.cl[a].c, w.now, NULL), 0);
    cu_pump(&w);
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.streams, 0);
    CHECK_EQ(st.connections, 0);
    cu_world_free(&w);
}

int main(void)
{
    if (!cu_setup_files()) {
        printf("Bail out! cannot make test certificates\n");
        return 1;
    }
    RUN(test_stream_to_coordinator);
    RUN(test_peer_stream);
    RUN(test_largest_message);
    RUN(test_absent_peer_and_wait);
    RUN(test_held_limits);
    RUN(test_direct_stream);
    RUN(test_stream_limits);
    RUN(test_reset_and_peer_gone);
    RUN(test_self_stream);
    cu_remove_files();
    return TEST_DONE();
}
