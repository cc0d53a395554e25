/* SPDX-License-Identifier: MIT */
/* Coordinator flow control over real TLS 1.3 in memory: credit windows end
 * to end (a sender is held back by a reader that does not read, and the
 * coordinator's queue stays within the window), manual credit, the
 * non-blocking receive mode with its lag count, broadcast channels with
 * self-delivery and sender tags, and a slow broadcast member that loses
 * messages (and is told how many) while the others keep receiving. */
#include "coord_util.h"

static size_t count_data(cu_evs *e, uint32_t stream)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n; i++)
        n += e->v[i].type == SLUICE_COORD_EVENT_DATA && e->v[i].stream == stream;
    return n;
}

static cu_ev *stream_ev(cu_evs *e, int type, uint32_t stream, size_t nth)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->v[i].type == type && e->v[i].stream == stream && nth-- == 0)
            return &e->v[i];
    return NULL;
}

static uint32_t open_pair(cu_world *w, size_t a, size_t b, const char *bname, uint32_t *bs)
{
    int64_t id = sluice_coord_client_open_stream(w->cl[a].c, w->now, SLUICE_COORD_KIND_PEER, bname,
                                                 "data", 0, 0);
    size_t before = cu_count(&w->cl[b].ev, SLUICE_COORD_EVENT_STREAM_INCOMING);
    cu_pump(w);
    cu_ev *in = cu_find(&w->cl[b].ev, SLUICE_COORD_EVENT_STREAM_INCOMING, before);
    CHECK(in != NULL);
    if (!in)
        return 0;
    *bs = in->stream;
    CHECK_EQ(sluice_coord_client_accept_stream(w->cl[b].c, w->now, in->stream), 0);
    cu_pump(w);
    CHECK(stream_ev(&w->cl[a].ev, SLUICE_COORD_EVENT_STREAM_ACCEPTED, (uint32_t)id, 0) != NULL);
    return (uint32_t)id;
}

/* Send 1000-byte messages numbered from *next until send() says FULL. */
static size_t send_until_full(cu_world *w, size_t a, uint32_t as, uint32_t *next)
{
    uint8_t m[1000];
    size_t n = 0;
    for (;;) {
        memset(m, 0, sizeof m);
        memcpy(m, next, sizeof *next);
        int r = sluice_coord_client_send(w->cl[a].c, w->now, as, m, sizeof m);
        if (r == SLUICE_ERR_FULL)
            return n;
        CHECK_EQ(r, 0);
        if (r)
            return n;
        (*next)++;
        n++;
    }
}

static void check_sequence(cu_evs *e, uint32_t stream, uint32_t count)
{
    uint32_t want = 0;
    for (size_t i = 0; i < e->n; i++) {
        cu_ev *d = &e->v[i];
        if (d->type != SLUICE_COORD_EVENT_DATA || d->stream != stream)
            continue;
        uint32_t got;
        memcpy(&got, d->data, sizeof got);
        if (got != want) {
            fprintf(stderr, "# message %u arrived as number %u\n", want, got);
            CHECK(0);
            return;
        }
        want++;
    }
    CHECK_EQ(want, count);
}

static void test_backpressure(void)
{
    cu_world w;
    uint32_t bs = 0, next = 0;
    cu_world_init(&w, NULL);
    size_t a = cu_connect(&w, "alice");
    size_t b = cu_connect(&w, "bob");
    uint32_t as = open_pair(&w, a, b, "bob", &bs);
    uint64_t bconn = w.cl[b].conn;
    const size_t per_window = 256 * 1024 / SLUICE_COORD_MESSAGE_COST(1000);

    /* bob's socket is not being written: everything waits in the
     * coordinator, which never holds more than the window. */
    CHECK_EQ(sluice_coord_server_pause_output(w.s, bconn, true), 0);
    size_t sent = send_until_full(&w, a, as, &next);
    cu_pump(&w);
    sent += send_until_full(&w, a, as, &next);
    CHECK_EQ(sent, per_window);
    CHECK(sluice_coord_client_writable(w.cl[a].c, as) < 1000);
    sluice_coord_conn_info info;
    CHECK_EQ(sluice_coord_server_conn_info(w.s, bconn, &info), 0);
    CHECK(info.queued_bytes + info.tls_pending <= 256 * 1024 + 4096);
    CHECK(info.queued_bytes + info.tls_pending >= sent * 1000);
    /* bob's socket drains, but bob does not read: still no credit. */
    w.cl[b].no_poll = true;
    CHECK_EQ(sluice_coord_server_pause_output(w.s, bconn, false), 0);
    cu_pump(&w);
    CHECK_EQ(sluice_coord_server_conn_info(w.s, bconn, &info), 0);
    CHECK_EQ(info.queued_bytes, 0);
    CHECK_EQ(send_until_full(&w, a, as, &next), 0);
    CHECK(!stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_WRITABLE, as, 0));
    /* bob reads: credit flows back, alice is told she may write. */
    w.cl[b].no_poll = false;
    cu_pump(&w);
    CHECK(stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_WRITABLE, as, 0) != NULL);
    CHECK(sluice_coord_client_writable(w.cl[a].c, as) == 1000 ||
          sluice_coord_client_writable(w.cl[a].c, as) > 1000);
    /* Keep going to 1000 messages, in order, none lost. */
    while (next < 1000) {
        size_t k = send_until_full(&w, a, as, &next);
        if (next > 1000)
            break;
        cu_pump(&w);
        CHECK(k > 0);
        if (!k)
            break;
    }
    cu_pump(&w);
    check_sequence(&w.cl[b].ev, bs, next);
    sluice_coord_client_stats cs;
    sluice_coord_client_get_stats(w.cl[b].c, &cs);
    CHECK_EQ(cs.messages_dropped, 0);
    cu_world_free(&w);
}

static void test_manual_credit(void)
{
    cu_world w;
    sluice_coord_client_config cfg;
    char cert[128], key[128];
    uint32_t bs = 0, next = 0;
    cu_world_init(&w, NULL);
    size_t a = cu_connect(&w, "alice");
    cu_client_cfg(&cfg, "bob", cert, key, sizeof cert);
    cfg.manual_credit = true;
    size_t b = cu_add(&w, &cfg);
    cu_pump(&w);
    uint32_t as = open_pair(&w, a, b, "bob", &bs);
    size_t sent = send_until_full(&w, a, as, &next);
    cu_pump(&w);
    /* bob has every message as an event, but has not consumed one. */
    CHECK_EQ(count_data(&w.cl[b].ev, bs), sent);
    CHECK_EQ(send_until_full(&w, a, as, &next), 0);
    CHECK_EQ(sluice_coord_client_consume(w.cl[b].c, w.now, bs, 1000), 0);
    cu_pump(&w);
    /* One message's credit waits for more (a quarter window). */
    CHECK_EQ(send_until_full(&w, a, as, &next), 0);
    for (size_t i = 1; i < sent; i++)
        CHECK_EQ(sluice_coord_client_consume(w.cl[b].c, w.now, bs, 1000), 0);
    CHECK_EQ(sluice_coord_client_consume(w.cl[b].c, w.now, bs, 1000), SLUICE_ERR_INVALID);
    cu_pump(&w);
    CHECK(stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_WRITABLE, as, 0) != NULL);
    CHECK(send_until_full(&w, a, as, &next) > 0);
    /* Switching to non-blocking gives back what the application holds. */
    cu_pump(&w);
    CHECK_EQ(send_until_full(&w, a, as, &next), 0);
    CHECK_EQ(sluice_coord_client_set_nonblocking(w.cl[b].c, w.now, bs, true), 0);
    cu_pump(&w);
    CHECK(send_until_full(&w, a, as, &next) > 0);
    cu_world_free(&w);
}

static void test_coordinator_credit(void)
{
    cu_world w;
    cu_world_init(&w, NULL);
    size_t a = cu_connect(&w, "alice");
    int64_t id = sluice_coord_client_open_stream(w.cl[a].c, w.now, SLUICE_COORD_KIND_COORD, NULL,
                                                 NULL, 0, 0);
    cu_pump(&w);
    CHECK_EQ(sluice_coord_server_accept_stream(w.s, w.now, w.cl[a].conn, (uint32_t)id), 0);
    cu_pump(&w);
    /* The daemon does not take its events: the client is held back. */
    w.server_no_poll = true;
    uint32_t next = 0;
    size_t sent = send_until_full(&w, a, (uint32_t)id, &next);
    cu_pump(&w);
    CHECK_EQ(send_until_full(&w, a, (uint32_t)id, &next), 0);
    w.server_no_poll = false;
    cu_pump(&w);
    CHECK(stream_ev(&w.cl[a].ev, SLUICE_COORD_EVENT_WRITABLE, (uint32_t)id, 0) != NULL);
    CHECK_EQ(cu_count(&w.sev, SLUICE_COORD_SERVER_EVENT_DATA), sent);
    /* The other way: the coordinator's send() waits for the client. */
    w.cl[a].no_poll = true;
    uint8_t m[1000] = {0};
    size_t out = 0;
    while (sluice_coord_server_send(w.s, w.now, w.cl[a].conn, (uint32_t)id, m, sizeof m) == 0)
        out++;
    CHECK_EQ(out, sent);
    CHECK(sluice_coord_server_writable(w.s, w.cl[a].conn, (uint32_t)id) < 1000);
    cu_pump(&w);
    w.cl[a].no_poll = false;
    cu_pump(&w);
    CHECK(cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_WRITABLE, 0) != NULL);
    CHECK(sluice_coord_server_writable(w.s, w.cl[a].conn, (uint32_t)id) >= 1000);
    cu_world_free(&w);
}

static void test_nonblocking_lag(void)
{
    cu_world w;
    sluice_coord_client_config cfg;
    char cert[128], key[128];
    uint32_t bs = 0;
    cu_world_init(&w, NULL);
    size_t a = cu_connect(&w, "alice");
    cu_client_cfg(&cfg, "bob", cert, key, sizeof cert);
    cfg.non_blocking = true;
    cfg.recv_queue_bytes = 10 * SLUICE_COORD_MESSAGE_COST(100);
    size_t b = cu_add(&w, &cfg);
    cu_pump(&w);
    uint32_t as = open_pair(&w, a, b, "bob", &bs);
    /* bob does not read; alice is never held back. */
    w.cl[b].no_poll = true;
    uint8_t m[100];
    for (uint32_t i = 0; i < 50; i++) {
        memset(m, 0, sizeof m);
        memcpy(m, &i, sizeof i);
        CHECK_EQ(sluice_coord_client_send(w.cl[a].c, w.now, as, m, sizeof m), 0);
        cu_pump(&w);
    }
    w.cl[b].no_poll = false;
    cu_pump(&w);
    /* The first ten, then how many were lost. */
    CHECK_EQ(count_data(&w.cl[b].ev, bs), 10);
    cu_ev *lag = stream_ev(&w.cl[b].ev, SLUICE_COORD_EVENT_LAG, bs, 0);
    CHECK(lag && lag->count == 40);
    cu_ev *last = stream_ev(&w.cl[b].ev, SLUICE_COORD_EVENT_DATA, bs, 9);
    CHECK(last && lag && last < lag);
    uint32_t i = 50;
    memcpy(m, &i, sizeof i);
    CHECK_EQ(sluice_coord_client_send(w.cl[a].c, w.now, as, m, sizeof m), 0);
    cu_pump(&w);
    cu_ev *after = stream_ev(&w.cl[b].ev, SLUICE_COORD_EVENT_DATA, bs, 10);
    CHECK(after && !memcmp(after->data, &i, sizeof i) && after > lag);
    sluice_coord_client_stats cs;
    sluice_coord_client_get_stats(w.cl[b].c, &cs);
    CHECK_EQ(cs.messages_dropped, 40);
    CHECK_EQ(cs.messages_in, 51);
    cu_world_free(&w);
}

static void test_broadcast(void)
{
    cu_world w;
    const char *names[] = {"alice", "bob", "carol"};
    uint32_t ch[3];
    cu_world_init(&w, NULL);
    for (size_t i = 0; i < 3; i++) {
        cu_connect(&w, names[i]);
        int64_t id = sluice_coord_client_open_stream(w.cl[i].c, w.now, SLUICE_COORD_KIND_BROADCAST,
                                                     "room/1", "chat", 0, 0);
        CHECK(id > 0);
        ch[i] = (uint32_t)id;
        cu_pump(&w);
        CHECK(stream_ev(&w.cl[i].ev, SLUICE_COORD_EVENT_STREAM_ACCEPTED, ch[i], 0) != NULL);
    }
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.channels, 1);
    CHECK_EQ(sluice_coord_client_send(w.cl[0].c, w.now, ch[0], (const uint8_t *)"hello", 5), 0);
    CHECK_EQ(sluice_coord_client_send(w.cl[0].c, w.now, ch[0], (const uint8_t *)"again", 5), 0);
    cu_pump(&w);
    CHECK_EQ(sluice_coord_client_send(w.cl[1].c, w.now, ch[1], (const uint8_t *)"hi", 2), 0);
    cu_pump(&w);
    CHECK_EQ(sluice_coord_server_broadcast(w.s, w.now, "room/1", (const uint8_t *)"news", 4), 3);
    CHECK_EQ(sluice_coord_server_broadcast(w.s, w.now, "nowhere", (const uint8_t *)"x", 1),
             SLUICE_ERR_NOT_FOUND);
    cu_pump(&w);
    /* Everyone, the senders too, in order, tagged. */
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ(count_data(&w.cl[i].ev, ch[i]), 4);
        cu_ev *d0 = stream_ev(&w.cl[i].ev, SLUICE_COORD_EVENT_DATA, ch[i], 0);
        cu_ev *d1 = stream_ev(&w.cl[i].ev, SLUICE_COORD_EVENT_DATA, ch[i], 1);
        cu_ev *d2 = stream_ev(&w.cl[i].ev, SLUICE_COORD_EVENT_DATA, ch[i], 2);
        cu_ev *d3 = stream_ev(&w.cl[i].ev, SLUICE_COORD_EVENT_DATA, ch[i], 3);
        CHECK(d0 && !strcmp(d0->sender, "alice") && d0->len == 5 && !memcmp(d0->data, "hello", 5));
        CHECK(d1 && !strcmp(d1->sender, "alice") && !memcmp(d1->data, "again", 5));
        CHECK(d2 && !strcmp(d2->sender, "bob") && d2->len == 2);
        CHECK(d3 && !strcmp(d3->sender, "") && d3->len == 4);
        CHECK(d0 && d0->kind == SLUICE_COORD_KIND_BROADCAST);
    }
    /* carol leaves; later messages do not reach her. */
    CHECK_EQ(sluice_coord_client_close_stream(w.cl[2].c, w.now, ch[2]), 0);
    cu_pump(&w);
    CHECK(stream_ev(&w.cl[2].ev, SLUICE_COORD_EVENT_STREAM_FINISHED, ch[2], 0) != NULL);
    cu_ev *cl = stream_ev(&w.cl[2].ev, SLUICE_COORD_EVENT_STREAM_CLOSED, ch[2], 0);
    CHECK(cl && cl->code == SLUICE_COORD_E_NONE);
    CHECK_EQ(sluice_coord_client_send(w.cl[0].c, w.now, ch[0], (const uint8_t *)"bye", 3), 0);
    cu_pump(&w);
    CHECK_EQ(count_data(&w.cl[0].ev, ch[0]), 5);
    CHECK_EQ(count_data(&w.cl[1].ev, ch[1]), 5);
    CHECK_EQ(count_data(&w.cl[2].ev, ch[2]), 4);
    /* A member that disconnects leaves too; the last one frees it. */
    cu_drop(&w, &w.cl[1]);
    cu_pump(&w);
    CHECK_EQ(sluice_coord_server_broadcast(w.s, w.now, "room/1", (const uint8_t *)"x", 1), 1);
    CHECK_EQ(sluice_coord_client_reset_stream(w.cl[0].c, w.now, ch[0], SLUICE_COORD_E_CANCELLED,
                                              NULL),
             0);
    cu_pump(&w);
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.channels, 0);
    CHECK_EQ(st.streams, 0);
    cu_world_free(&w);
}

static void test_broadcast_slow_member(void)
{
    sluice_coord_server_config cfg;
    cu_world w;
    const char *names[] = {"alice", "bob", "carol"};
    uint32_t ch[3];
    cu_server_cfg(&cfg);
    cfg.max_message = 1000;
    cfg.member_queue_bytes = SLUICE_COORD_MESSAGE_COST(1000) + 1 + 63;
    cu_world_init(&w, &cfg);
    for (size_t i = 0; i < 3; i++) {
        cu_connect(&w, names[i]);
        ch[i] = (uint32_t)sluice_coord_client_open_stream(w.cl[i].c, w.now,
                                                          SLUICE_COORD_KIND_BROADCAST, "room",
                                                          NULL, 0, 0);
        cu_pump(&w);
    }
    /* Each BCAST_DATA costs 12 + 1 + 5 ("alice") + 200 bytes of carol's
     * queue: four fit. */
    const size_t fit = cfg.member_queue_bytes / SLUICE_COORD_MESSAGE_COST(1 + 5 + 200);
    CHECK_EQ(fit, 4);
    CHECK_EQ(sluice_coord_server_pause_output(w.s, w.cl[2].conn, true), 0);
    uint8_t m[200];
    for (uint32_t i = 0; i < 20; i++) {
        memset(m, 0, sizeof m);
        memcpy(m, &i, sizeof i);
        /* The channel never stalls: alice always has credit. */
        CHECK_EQ(sluice_coord_client_send(w.cl[0].c, w.now, ch[0], m, sizeof m), 0);
        cu_pump(&w);
    }
    CHECK_EQ(count_data(&w.cl[0].ev, ch[0]), 20);
    CHECK_EQ(count_data(&w.cl[1].ev, ch[1]), 20);
    check_sequence(&w.cl[1].ev, ch[1], 20);
    CHECK_EQ(count_data(&w.cl[2].ev, ch[2]), 0);
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.broadcast_dropped, 20 - fit);
    /* carol's socket drains: the four, then LAG with the rest. */
    CHECK_EQ(sluice_coord_server_pause_output(w.s, w.cl[2].conn, false), 0);
    cu_pump(&w);
    CHECK_EQ(count_data(&w.cl[2].ev, ch[2]), fit);
    cu_ev *lag = stream_ev(&w.cl[2].ev, SLUICE_COORD_EVENT_LAG, ch[2], 0);
    CHECK(lag && lag->count == 20 - fit);
    CHECK(lag && lag > stream_ev(&w.cl[2].ev, SLUICE_COORD_EVENT_DATA, ch[2], fit - 1));
    uint32_t i = 99;
    memcpy(m, &i, sizeof i);
    CHECK_EQ(sluice_coord_client_send(w.cl[0].c, w.now, ch[0], m, sizeof m), 0);
    cu_pump(&w);
    cu_ev *d = stream_ev(&w.cl[2].ev, SLUICE_COORD_EVENT_DATA, ch[2], fit);
    CHECK(d && !memcmp(d->data, &i, sizeof i));
    sluice_coord_client_stats cs;
    sluice_coord_client_get_stats(w.cl[2].c, &cs);
    CHECK_EQ(cs.lag_reported, 20 - fit);
    /* A member whose own application does not read drops locally (a
     * broadcast stream never holds the channel back). */
    w.cl[1].no_poll = true;
    for (uint32_t k = 0; k < 2000; k++) {
        CHECK_EQ(sluice_coord_client_send(w.cl[0].c, w.now, ch[0], m, sizeof m), 0);
        cu_pump(&w); /* (the member queue here holds 4: no bursts) */
    }
    w.cl[1].no_poll = false;
    cu_pump(&w);
    sluice_coord_client_get_stats(w.cl[1].c, &cs);
    CHECK(cs.messages_dropped > 0);
    CHECK(stream_ev(&w.cl[1].ev, SLUICE_COORD_EVENT_LAG, ch[1], 0) != NULL);
    CHECK_EQ(count_data(&w.cl[0].ev, ch[0]), 2021);
    cu_world_free(&w);
}

int main(void)
{
    if (!cu_setup_files()) {
        printf("Bail out! cannot make test certificates\n");
        return 1;
    }
    RUN(test_backpressure);
    RUN(test_manual_credit);
    RUN(test_coordinator_credit);
    RUN(test_nonblocking_lag);
    RUN(test_broadcast);
    RUN(test_broadcast_slow_member);
    cu_remove_files();
    return TEST_DONE();
}
