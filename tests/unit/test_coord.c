/* SPDX-License-Identifier: MIT */
/* Coordinator connections over real TLS 1.3 in memory, on virtual time:
 * HELLO/WELCOME, every way of being refused (duplicate name, wrong CA,
 * pin mismatch, certificate name, expiry, client CA, no certificate,
 * limits, shutdown), keepalive and idle timeouts, graceful close. */
#include "coord_util.h"

static void expect_refused(cu_world *w, size_t i, int code, const char *reason_part)
{
    cu_ev *t = cu_terminal(w, i);
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK_EQ(t->type, SLUICE_COORD_EVENT_REFUSED);
    CHECK_EQ(t->code, code);
    if (reason_part && !strstr(t->reason, reason_part)) {
        fprintf(stderr, "# reason \"%s\" lacks \"%s\"\n", t->reason, reason_part);
        CHECK(0);
    }
    CHECK(!cu_find(&w->cl[i].ev, SLUICE_COORD_EVENT_CONNECTED, 0));
    CHECK_EQ(sluice_coord_client_get_state(w->cl[i].c), SLUICE_COORD_CLIENT_CLOSED);
}

/* The server side ended the connection with code (one CONNECTION_CLOSED). */
static void expect_server_closed(cu_world *w, size_t i, int code)
{
    size_t n = 0;
    for (size_t j = 0; j < w->sev.n; j++) {
        cu_ev *e = &w->sev.v[j];
        if (e->type == SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED && e->conn == w->cl[i].conn) {
            n++;
            CHECK_EQ(e->code, code);
        }
    }
    CHECK_EQ(n, 1);
}

static void test_hello_welcome(void)
{
    cu_world w;
    cu_world_init(&w, NULL);
    size_t a = cu_connect(&w, "alice");
    cu_ev *e = cu_find(&w.cl[a].ev, SLUICE_COORD_EVENT_CONNECTED, 0);
    CHECK(e && e->max_message == 65536 && e->window == 256 * 1024);
    CHECK_EQ(sluice_coord_client_get_state(w.cl[a].c), SLUICE_COORD_CLIENT_CONNECTED);
    cu_ev *s = cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_CLIENT_CONNECTED, 0);
    CHECK(s != NULL);
    if (s) {
        CHECK_STR(s->name, "alice");
        CHECK_EQ(s->conn, w.cl[a].conn);
        CHECK(s->has_fp);
        /* The fingerprint the coordinator saw is the identity's. */
        char cert[128], key[128];
        uint8_t fp[32];
        cu_identity("alice", cert, key, sizeof cert);
        CHECK_EQ(sluice_coord_ensure_identity("alice", cert, key, fp), 0);
        CHECK_MEM(s->fp, fp, 32);
    }
    uint64_t conn = 0;
    CHECK_EQ(sluice_coord_server_find_client(w.s, "alice", &conn), 0);
    CHECK_EQ(conn, w.cl[a].conn);
    CHECK_EQ(sluice_coord_server_find_client(w.s, "bob", &conn), SLUICE_ERR_NOT_FOUND);
    sluice_coord_conn_info info;
    CHECK_EQ(sluice_coord_server_conn_info(w.s, w.cl[a].conn, &info), 0);
    CHECK(info.named);
    CHECK_STR(info.name, "alice");
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.connections, 1);
    CHECK_EQ(st.clients, 1);
    CHECK(st.tls_bytes_in > 0 && st.tls_bytes_out > 0);
    /* A second client, in 1-byte pieces: TLS and frames split everywhere. */
    w.split = 1;
    size_t b = cu_connect(&w, "bob");
    CHECK(cu_find(&w.cl[b].ev, SLUICE_COORD_EVENT_CONNECTED, 0) != NULL);
    cu_world_free(&w);
}

static void test_duplicate_name(void)
{
    cu_world w;
    cu_world_init(&w, NULL);
    size_t a = cu_connect(&w, "alice");
    size_t b = cu_add_named(&w, "alice");
    cu_pump(&w);
    expect_refused(&w, b, SLUICE_COORD_E_NAME_TAKEN, "already connected");
    expect_server_closed(&w, b, SLUICE_COORD_E_NAME_TAKEN);
    /* The first one is untouched. */
    CHECK_EQ(sluice_coord_client_get_state(w.cl[a].c), SLUICE_COORD_CLIENT_CONNECTED);
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.connections, 1);
    CHECK_EQ(st.refused, 1);
    cu_world_free(&w);
}

static void test_wrong_ca(void)
{
    cu_world w;
    sluice_coord_client_config cfg;
    char cert[128], key[128];
    cu_world_init(&w, NULL);
    cu_client_cfg(&cfg, "alice", cert, key, sizeof cert);
    cfg.ca_file = cu_other_cert; /* not the coordinator's issuer */
    size_t a = cu_add(&w, &cfg);
    cu_pump(&w);
    expect_refused(&w, a, SLUICE_COORD_E_TLS, "TLS");
    CHECK_EQ(cu_terminal(&w, a)->err, SLUICE_ERR_AUTH);
    /* The coordinator saw a failed handshake, no client. */
    CHECK(!cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_CLIENT_CONNECTED, 0));
    CHECK_EQ(cu_count(&w.sev, SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED), 1);
    /* Wrong server name, right CA. */
    cu_client_cfg(&cfg, "bob", cert, key, sizeof cert);
    cfg.server_name = "coord.example";
    size_t b = cu_add(&w, &cfg);
    cu_pump(&w);
    expect_refused(&w, b, SLUICE_COORD_E_TLS, "TLS");
    cu_world_free(&w);
}

static void test_pinned(void)
{
    cu_world w;
    sluice_coord_client_config cfg;
    char cert[128], key[128];
    cu_world_init(&w, NULL);
    /* The right pin: neither CA nor name needed. */
    cu_client_cfg(&cfg, "alice", cert, key, sizeof cert);
    cfg.ca_file = cu_other_cert;
    cfg.server_name = NULL;
    cfg.pinned = true;
    memcpy(cfg.pinned_sha256, cu_coord_fp, 32);
    size_t a = cu_add(&w, &cfg);
    cu_pump(&w);
    CHECK(cu_find(&w.cl[a].ev, SLUICE_COORD_EVENT_CONNECTED, 0) != NULL);
    /* A wrong pin: refused before HELLO (the impostor never learns the
     * name). */
    cu_client_cfg(&cfg, "bob", cert, key, sizeof cert);
    cfg.pinned = true;
    memcpy(cfg.pinned_sha256, cu_coord_fp, 32);
    cfg.pinned_sha256[5] ^= 1;
    size_t b = cu_add(&w, &cfg);
    cu_pump(&w);
    expect_refused(&w, b, SLUICE_COORD_E_PIN_MISMATCH, "not the pinned");
    CHECK_EQ(cu_terminal(&w, b)->err, SLUICE_ERR_AUTH);
    CHECK(!cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_CLIENT_CONNECTED, 1));
    cu_world_free(&w);
}

/* A client presenting cert/key made by the test, claiming name. */
static size_t add_with_cert(cu_world *w, const char *name, const char *cert, const char *key)
{
    sluice_coord_client_config cfg;
    char c2[128], k2[128];
    cu_client_cfg(&cfg, name, c2, k2, sizeof c2);
    cfg.cert_file = cert;
    cfg.key_file = key;
    return cu_add(w, &cfg);
}

static void test_cert_name_mismatch(void)
{
    cu_world w;
    char cert[128], key[128];
    cu_world_init(&w, NULL);
    /* alice's own identity, but saying "mallory". */
    cu_identity("alice", cert, key, sizeof cert);
    size_t m = add_with_cert(&w, "mallory", cert, key);
    cu_pump(&w);
    expect_refused(&w, m, SLUICE_COORD_E_CERT_NAME, "not valid for the name \"mallory\"");
    expect_server_closed(&w, m, SLUICE_COORD_E_CERT_NAME);
    /* CN only (no SAN) matches; SAN only (no CN) matches. */
    char c1[128], k1[128], c2[128], k2[128];
    cu_path(c1, sizeof c1, "cn-only.pem");
    cu_path(k1, sizeof k1, "cn-only-key.pem");
    cu_path(c2, sizeof c2, "san-only.pem");
    cu_path(k2, sizeof k2, "san-only-key.pem");
    CHECK(cu_make_cert(c1, k1, "carol", NULL, T_UNIX - DAY, T_UNIX + DAY, NULL, NULL, false));
    CHECK(cu_make_cert(c2, k2, NULL, "dave", T_UNIX - DAY, T_UNIX + DAY, NULL, NULL, false));
    size_t c = add_with_cert(&w, "carol", c1, k1);
    size_t d = add_with_cert(&w, "dave", c2, k2);
    cu_pump(&w);
    CHECK(cu_find(&w.cl[c].ev, SLUICE_COORD_EVENT_CONNECTED, 0) != NULL);
    CHECK(cu_find(&w.cl[d].ev, SLUICE_COORD_EVENT_CONNECTED, 0) != NULL);
    /* Case matters: names are identifiers. */
    size_t e = add_with_cert(&w, "Carol", c1, k1);
    cu_pump(&w);
    expect_refused(&w, e, SLUICE_COORD_E_CERT_NAME, NULL);
    cu_world_free(&w);
}

static void test_cert_validity(void)
{
    cu_world w;
    char c1[128], k1[128], c2[128], k2[128];
    cu_world_init(&w, NULL);
    cu_path(c1, sizeof c1, "expired.pem");
    cu_path(k1, sizeof k1, "expired-key.pem");
    cu_path(c2, sizeof c2, "future.pem");
    cu_path(k2, sizeof k2, "future-key.pem");
    CHECK(cu_make_cert(c1, k1, "old", "old", T_UNIX - 10 * DAY, T_UNIX - DAY, NULL, NULL, false));
    CHECK(cu_make_cert(c2, k2, "new", "new", T_UNIX + DAY, T_UNIX + 10 * DAY, NULL, NULL, false));
    size_t a = add_with_cert(&w, "old", c1, k1);
    size_t b = add_with_cert(&w, "new", c2, k2);
    cu_pump(&w);
    /* Self-signed mode checks the dates too, with the coordinator's clock. */
    expect_refused(&w, a, SLUICE_COORD_E_CERT_EXPIRED, "expired at 2023-11-13");
    expect_refused(&w, b, SLUICE_COORD_E_CERT_EXPIRED, "not valid before 2023-11-15");
    /* Exactly at notAfter it is still valid; one second after, not. */
    sluice_coord_server_set_unix_time(w.s, T_UNIX - DAY);
    size_t c = add_with_cert(&w, "old", c1, k1);
    cu_pump(&w);
    CHECK(cu_find(&w.cl[c].ev, SLUICE_COORD_EVENT_CONNECTED, 0) != NULL);
    sluice_coord_server_set_unix_time(w.s, T_UNIX - DAY + 1);
    cu_drop(&w, &w.cl[c]);
    cu_pump(&w);
    size_t d = add_with_cert(&w, "old", c1, k1);
    cu_pump(&w);
    expect_refused(&w, d, SLUICE_COORD_E_CERT_EXPIRED, NULL);
    /* No clock: refuse rather than guess. */
    sluice_coord_server_set_unix_time(w.s, 0);
    size_t e = cu_add_named(&w, "alice");
    cu_pump(&w);
    expect_refused(&w, e, SLUICE_COORD_E_CERT_INVALID, "clock is not set");
    cu_world_free(&w);
}

static void test_client_ca(void)
{
    sluice_coord_server_config cfg;
    cu_world w;
    char c1[128], k1[128], c2[128], k2[128], c3[128], k3[128];
    cu_server_cfg(&cfg);
    cfg.client_ca_file = cu_ca_cert;
    cu_world_init(&w, &cfg);
    cu_path(c1, sizeof c1, "signed.pem");
    cu_path(k1, sizeof k1, "signed-key.pem");
    cu_path(c2, sizeof c2, "signed-expired.pem");
    cu_path(k2, sizeof k2, "signed-expired-key.pem");
    cu_path(c3, sizeof c3, "other-ca-signed.pem");
    cu_path(k3, sizeof k3, "other-ca-signed-key.pem");
    CHECK(cu_make_cert(c1, k1, "erin", "erin", T_UNIX - DAY, T_UNIX + DAY, cu_ca_cert, cu_ca_key,
                       false));
    CHECK(cu_make_cert(c2, k2, "frank", "frank", T_UNIX - 3 * DAY, T_UNIX - DAY, cu_ca_cert,
                       cu_ca_key, false));
    size_t a = add_with_cert(&w, "erin", c1, k1);
    cu_pump(&w);
    CHECK(cu_find(&w.cl[a].ev, SLUICE_COORD_EVENT_CONNECTED, 0) != NULL);
    /* Self-signed is not enough any more. */
    size_t b = cu_add_named(&w, "grace");
    cu_pump(&w);
    expect_refused(&w, b, SLUICE_COORD_E_CERT_INVALID, "not signed by the client CA");
    /* Signed by the CA but expired: the date is checked first. */
    size_t c = add_with_cert(&w, "frank", c2, k2);
    cu_pump(&w);
    expect_refused(&w, c, SLUICE_COORD_E_CERT_EXPIRED, NULL);
    /* Signed by another issuer (the coordinator's own certificate). */
    CHECK(cu_make_cert(c3, k3, "heidi", "heidi", T_UNIX - DAY, T_UNIX + DAY, cu_other_cert,
                       cu_other_key, false));
    size_t d = add_with_cert(&w, "heidi", c3, k3);
    cu_pump(&w);
    expect_refused(&w, d, SLUICE_COORD_E_CERT_INVALID, "client CA");
    cu_world_free(&w);
}

static void test_no_client_cert(void)
{
    sluice_coord_server_config cfg;
    cu_world w;
    cu_server_cfg(&cfg);
    cfg.client_ca_file = cu_ca_cert;
    cu_world_init(&w, &cfg);
    /* A TLS client without a certificate, speaking HELLO by hand. */
    sluice_tls_config tc;
    sluice_tls_config_init(&tc);
    tc.server_name = "localhost";
    tc.ca_file = cu_coord_cert;
    tc.min_version = 13;
    sluice_tls *t = sluice_tls_new(&tc, NULL);
    CHECK(t != NULL);
    uint64_t conn = 0;
    CHECK_EQ(sluice_coord_server_accept(w.s, w.now, NULL, &conn), 0);
    uint8_t buf[20000], plain[4096];
    size_t plain_len = 0;
    sluice_coord_transmit meta;
    bool closed = false;
    for (int i = 0; i < 50 && t; i++) {
        int n;
        while ((n = sluice_tls_take_output(t, buf, sizeof buf)) > 0)
            sluice_coord_server_handle_stream(w.s, w.now, conn, buf, (size_t)n);
        while ((n = sluice_coord_server_poll_transmit(w.s, w.now, buf, sizeof buf, &meta)) > 0) {
            sluice_tls_feed(t, buf, (size_t)n);
            closed |= meta.close;
        }
        int r;
        while ((r = sluice_tls_read(t, plain + plain_len, sizeof plain - plain_len)) > 0)
            plain_len += (size_t)r;
    }
    /* The answer is an ERROR frame with CERT_REQUIRED and a reason. */
    CHECK(closed);
    CHECK(plain_len > 12);
    CHECK_EQ(plain[0], 3); /* ERROR */
    CHECK_EQ(plain[12] << 8 | plain[13], SLUICE_COORD_E_CERT_REQUIRED);
    CHECK(plain_len > 15 && memmem(plain, plain_len, "certificate is required", 23) != NULL);
    sluice_tls_free(t);
    cu_drain_events(&w);
    cu_ev *e = cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED, 0);
    CHECK(e && e->code == SLUICE_COORD_E_CERT_REQUIRED);
    cu_world_free(&w);
}

static void test_server_full_and_shutdown(void)
{
    sluice_coord_server_config cfg;
    cu_world w;
    cu_server_cfg(&cfg);
    cfg.max_connections = 2;
    cu_world_init(&w, &cfg);
    size_t a = cu_connect(&w, "alice");
    size_t b = cu_connect(&w, "bob");
    size_t c = cu_add_named(&w, "carol");
    cu_pump(&w);
    expect_refused(&w, c, SLUICE_COORD_E_SERVER_FULL, "full");
    /* Beyond the refusal slots accept() itself fails. */
    uint64_t conns[8];
    int r = 0;
    size_t n = 0;
    while (n < 8 && (r = sluice_coord_server_accept(w.s, w.now, NULL, &conns[n])) == 0)
        n++;
    CHECK_EQ(r, SLUICE_ERR_FULL);
    CHECK_EQ(n, 4); /* 2 + at least 4 refusal slots, one freed by carol */
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(sluice_coord_server_connection_closed(w.s, w.now, conns[i]), 0);
    cu_pump(&w);
    /* A slot freed by a departure lets a new client in. */
    cu_drop(&w, &w.cl[b]);
    cu_pump(&w);
    size_t d = cu_connect(&w, "dave");
    CHECK_EQ(sluice_coord_client_get_state(w.cl[d].c), SLUICE_COORD_CLIENT_CONNECTED);
    /* Shutdown: everyone gets CLOSED with SHUTDOWN, newcomers REFUSED. */
    sluice_coord_server_shutdown(w.s, w.now, NULL);
    cu_pump(&w);
    cu_ev *t = cu_terminal(&w, a);
    CHECK(t && t->type == SLUICE_COORD_EVENT_CLOSED && t->code == SLUICE_COORD_E_SHUTDOWN);
    t = cu_terminal(&w, d);
    CHECK(t && t->type == SLUICE_COORD_EVENT_CLOSED && t->code == SLUICE_COORD_E_SHUTDOWN);
    size_t e = cu_add_named(&w, "erin");
    cu_pump(&w);
    expect_refused(&w, e, SLUICE_COORD_E_SHUTDOWN, NULL);
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.connections, 0);
    CHECK_EQ(st.clients, 0);
    cu_world_free(&w);
}

static void test_keepalive_and_idle(void)
{
    sluice_coord_server_config cfg;
    cu_world w;
    cu_server_cfg(&cfg);
    cfg.idle_timeout_us = 30 * SEC;
    cu_world_init(&w, &cfg);
    size_t a = cu_connect(&w, "alice");
    /* Pings every idle/3 = 10 s keep both sides alive for a long time. */
    cu_advance(&w, 3600 * SEC);
    CHECK_EQ(sluice_coord_client_get_state(w.cl[a].c), SLUICE_COORD_CLIENT_CONNECTED);
    CHECK(!cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED, 0));
    CHECK(w.cl[a].ev.n == 1); /* pings and pongs make no events */
    /* A client that goes silent (its timers stop) is dropped by the
     * coordinator after exactly idle_timeout, with TIMEOUT. */
    sluice_coord_client *saved = w.cl[a].c;
    w.cl[a].c = NULL;
    uint64_t last = w.now;
    /* Its last ping was at most 10 s ago; find when the server fires. */
    uint64_t t = sluice_coord_server_next_timeout(w.s);
    CHECK(t <= last + 30 * SEC);
    cu_advance(&w, 60 * SEC);
    cu_ev *e = cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED, 0);
    CHECK(e && e->code == SLUICE_COORD_E_TIMEOUT);
    CHECK(e && strstr(e->reason, "nothing received for 30 s") != NULL);
    w.cl[a].c = saved;
    /* A coordinator that goes silent: the client gives up after its own
     * idle timeout (45 s by default). */
    size_t b = cu_connect(&w, "bob");
    w.server_no_poll = true;
    uint64_t start = w.now;
    sluice_coord_client *cb = w.cl[b].c;
    for (int i = 0; i < 100 && sluice_coord_client_get_state(cb) == SLUICE_COORD_CLIENT_CONNECTED; i++) {
        w.now = sluice_coord_client_next_timeout(cb);
        sluice_coord_client_handle_timeout(cb, w.now);
        uint8_t buf[4096];
        sluice_coord_transmit meta;
        while (sluice_coord_client_poll_transmit(cb, w.now, buf, sizeof buf, &meta) > 0)
            ; /* lost on the way */
    }
    CHECK_EQ(w.now - start, 45 * SEC);
    sluice_coord_event ev;
    bool closed = false;
    while (sluice_coord_client_poll_event(cb, &ev))
        if (ev.type == SLUICE_COORD_EVENT_CLOSED)
            closed = ev.code == SLUICE_COORD_E_TIMEOUT && ev.err == SLUICE_ERR_TIMEOUT;
    CHECK(closed);
    cu_world_free(&w);
}

static void test_hello_timeout(void)
{
    cu_world w;
    cu_world_init(&w, NULL);
    uint64_t conn = 0;
    CHECK_EQ(sluice_coord_server_accept(w.s, w.now, NULL, &conn), 0);
    uint64_t start = w.now;
    CHECK_EQ(sluice_coord_server_next_timeout(w.s), start + 10 * SEC);
    cu_advance(&w, 10 * SEC - 1);
    CHECK(!cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED, 0));
    cu_advance(&w, 1);
    cu_ev *e = cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED, 0);
    CHECK(e && e->code == SLUICE_COORD_E_TIMEOUT && e->conn == conn);
    CHECK_EQ(sluice_coord_server_handle_stream(w.s, w.now, conn, (const uint8_t *)"x", 1),
             SLUICE_ERR_NOT_FOUND);
    /* A client whose coordinator never answers gives up too. */
    sluice_coord_client_config cfg;
    char cert[128], key[128];
    cu_client_cfg(&cfg, "alice", cert, key, sizeof cert);
    sluice_coord_client *c = sluice_coord_client_new(&cfg, NULL);
    CHECK(c != NULL);
    CHECK_EQ(sluice_coord_client_start(c, w.now), 0);
    CHECK_EQ(sluice_coord_client_start(c, w.now), SLUICE_ERR_STATE);
    CHECK_EQ(sluice_coord_client_next_timeout(c), w.now + 10 * SEC);
    sluice_coord_client_handle_timeout(c, w.now + 10 * SEC);
    sluice_coord_event ev;
    CHECK(sluice_coord_client_poll_event(c, &ev));
    CHECK_EQ(ev.type, SLUICE_COORD_EVENT_REFUSED);
    CHECK_EQ(ev.code, SLUICE_COORD_E_TIMEOUT);
    CHECK(!sluice_coord_client_poll_event(c, &ev));
    sluice_coord_client_free(c);
    cu_world_free(&w);
}

static void test_graceful_close(void)
{
    cu_world w;
    cu_world_init(&w, NULL);
    size_t a = cu_connect(&w, "alice");
    size_t b = cu_connect(&w, "bob");
    /* The client says goodbye: CLOSED NONE on both ends, name freed. */
    CHECK_EQ(sluice_coord_client_close(w.cl[a].c, w.now, "bye now"), 0);
    CHECK_EQ(sluice_coord_client_close(w.cl[a].c, w.now, NULL), SLUICE_ERR_STATE);
    cu_pump(&w);
    cu_ev *t = cu_terminal(&w, a);
    CHECK(t && t->type == SLUICE_COORD_EVENT_CLOSED && t->code == SLUICE_COORD_E_NONE);
    cu_ev *e = cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED, 0);
    CHECK(e && e->code == SLUICE_COORD_E_NONE && e->by_peer);
    CHECK(e && strcmp(e->reason, "bye now") == 0);
    CHECK(e && strcmp(e->name, "alice") == 0);
    size_t c = cu_connect(&w, "alice"); /* the name is free again */
    CHECK(c > b);
    /* The operator kicks bob. */
    CHECK_EQ(sluice_coord_server_disconnect(w.s, w.now, w.cl[b].conn, SLUICE_COORD_E_KICKED,
                                            "go away"),
             0);
    cu_pump(&w);
    t = cu_terminal(&w, b);
    CHECK(t && t->type == SLUICE_COORD_EVENT_CLOSED && t->code == SLUICE_COORD_E_KICKED);
    CHECK(t && strcmp(t->reason, "go away") == 0);
    /* The TCP connection just drops: CONNECTION_LOST on the client, a
     * CONNECTION_CLOSED with by_peer on the coordinator. */
    cu_drop(&w, &w.cl[c]);
    cu_pump(&w);
    t = cu_terminal(&w, c);
    CHECK(t && t->type == SLUICE_COORD_EVENT_CLOSED && t->code == SLUICE_COORD_E_CONNECTION_LOST);
    CHECK_EQ(cu_count(&w.sev, SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED), 3);
    cu_world_free(&w);
}

static void test_bad_config(void)
{
    sluice_coord_server_config sc;
    sluice_coord_client_config cc;
    int err = 0;
    cu_server_cfg(&sc);
    sc.max_message = 2u << 20;
    CHECK(!sluice_coord_server_new(&sc, &err));
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    cu_server_cfg(&sc);
    sc.window = 1000;
    CHECK(!sluice_coord_server_new(&sc, &err));
    cu_server_cfg(&sc);
    sc.turn_secret = "s3cret"; /* without URIs */
    CHECK(!sluice_coord_server_new(&sc, &err));
    cu_server_cfg(&sc);
    sc.key_file = cu_other_key; /* does not match the certificate */
    CHECK(!sluice_coord_server_new(&sc, &err));
    CHECK_EQ(err, SLUICE_ERR_CRYPTO);
    char cert[128], key[128];
    cu_client_cfg(&cc, "alice", cert, key, sizeof cert);
    cc.name = "no spaces";
    CHECK(!sluice_coord_client_new(&cc, &err));
    CHECK_EQ(err, SLUICE_ERR_INVALID);
    cu_client_cfg(&cc, "alice", cert, key, sizeof cert);
    cc.server_name = NULL; /* neither a name nor a pin */
    CHECK(!sluice_coord_client_new(&cc, &err));
    cu_client_cfg(&cc, "alice", cert, key, sizeof cert);
    cc.key_file = cu_other_key;
    CHECK(!sluice_coord_client_new(&cc, &err));
    CHECK_EQ(err, SLUICE_ERR_CRYPTO);
}

int main(void)
{
    if (!cu_setup_files()) {
        printf("Bail out! cannot make test certificates\n");
        return 1;
    }
    RUN(test_hello_welcome);
    RUN(test_duplicate_name);
    RUN(test_wrong_ca);
    RUN(test_pinned);
    RUN(test_cert_name_mismatch);
    RUN(test_cert_validity);
    RUN(test_client_ca);
    RUN(test_no_client_cert);
    RUN(test_server_full_and_shutdown);
    RUN(test_keepalive_and_idle);
    RUN(test_hello_timeout);
    RUN(test_graceful_close);
    RUN(test_bad_config);
    cu_remove_files();
    return TEST_DONE();
}
