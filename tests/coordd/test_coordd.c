/* SPDX-License-Identifier: MIT */
/* sluice-coord, the daemon, end to end over loopback TCP: options and usage
 * errors; the generated certificate (kept, pinned, usable as a CA file);
 * HELLO/WELCOME; the "sluice/clients" service; PEER and DIRECT streams with
 * TURN REST credentials; broadcast with self-delivery; refusals (duplicate
 * name, wrong CA, wrong pin, --client-ca); metrics; SIGTERM. Clients are
 * sluice_coord_client machines on real sockets (coordd_harness.h).
 * Usage: test_coordd PATH/TO/sluice-coord */
#include "coordd_harness.h"

static const char *exe;
static th_daemon d1;
static th_world w;
static th_client *alice, *bob;
static char state_dir[128], daemon_cert[160];
static char alice_cert[128], alice_key[128], bob_cert[128], bob_key[128];

#define TURN_SECRET "correct horse battery staple"
#define TURN_URI "turn:127.0.0.1:3478"
#define WAIT_MS 5000

/* ------------------------------------------------------------------------ */
/* Options */

/* Run sluice-coord to completion; returns its exit code, output in *out. */
static int run_once(const char *const *args, const char *const *env, th_daemon *d)
{
    if (!th_spawn(d, exe, args, env))
        return -1;
    int st = th_wait_exit(d, 10000);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_options(void)
{
    th_daemon d;
    char conf[128];

    CHECK_EQ(run_once((const char *const[]){"--help", NULL}, NULL, &d), 0);
    CHECK(d.log && strstr(d.log, "SLUICE_COORD_MAX_MEMBERS") && strstr(d.log, "--turn-uri") &&
          strstr(d.log, "[default: 7878]") && strstr(d.log, "sluice/clients"));
    th_daemon_free(&d);

    CHECK_EQ(run_once((const char *const[]){"--version", NULL}, NULL, &d), 0);
    CHECK(d.log && !strncmp(d.log, "sluice-coord ", 13));
    th_daemon_free(&d);

    CHECK_EQ(run_once((const char *const[]){"--turn-secret", "x", NULL}, NULL, &d), 2);
    CHECK(d.log && strstr(d.log, "--turn-uri"));
    th_daemon_free(&d);

    CHECK_EQ(run_once((const char *const[]){"--max-message", "2000000", NULL}, NULL, &d), 2);
    CHECK(d.log && strstr(d.log, "--max-message"));
    th_daemon_free(&d);

    CHECK_EQ(
        run_once((const char *const[]){"--window", "100", "--max-message", "1000", NULL}, NULL, &d),
        2);
    CHECK(d.log && strstr(d.log, "--window"));
    th_daemon_free(&d);

    CHECK_EQ(run_once((const char *const[]){"--bogus", "1", NULL}, NULL, &d), 2);
    CHECK(d.log && strstr(d.log, "unknown option '--bogus'"));
    th_daemon_free(&d);

    CHECK_EQ(run_once((const char *const[]){"--metrics-listen", "127.0.0.1", NULL}, NULL, &d), 2);
    th_daemon_free(&d);

    /* The environment is read ... */
    CHECK_EQ(run_once(NULL, (const char *const[]){"SLUICE_COORD_PORT=http", NULL}, &d), 2);
    CHECK(d.log && strstr(d.log, "environment") && strstr(d.log, "--port"));
    th_daemon_free(&d);

    /* ... and the config file, with a line number in the message. */
    th_path(conf, sizeof conf, "bad.conf");
    FILE *f = fopen(conf, "w");
    if (f) {
        fputs("# a comment\nport = 7000\nmax-members = lots\n", f);
        fclose(f);
    }
    CHECK_EQ(run_once((const char *const[]){"--config", conf, NULL}, NULL, &d), 2);
    CHECK(d.log && strstr(d.log, "bad.conf:3") && strstr(d.log, "--max-members"));
    th_daemon_free(&d);
}

/* ------------------------------------------------------------------------ */
/* One coordinator, two clients */

static th_client *connect_client(const char *name, const char *cert, const char *key,
                                 const char *ca_file)
{
    th_client_opts o = {.cert = cert, .key = key, .ca_file = ca_file, .record = true};
    o.server_name = ca_file ? "localhost" : NULL;
    return th_connect(&w, name, d1.port, d1.fingerprint, &o);
}

static void test_start(void)
{
    char ts[160];
    struct stat st;
    uint8_t fp[32];
    char fptext[100];

    th_path(state_dir, sizeof state_dir, "state");
    const char *args[] = {"--listen",
                          "127.0.0.1",
                          "--port",
                          "0",
                          "--state-dir",
                          state_dir,
                          "--server-name",
                          "localhost",
                          "--server-name",
                          "127.0.0.1",
                          "--metrics-listen",
                          "127.0.0.1:0",
                          "--turn-secret",
                          TURN_SECRET,
                          "--turn-uri",
                          TURN_URI,
                          "--turn-ttl",
                          "3600",
                          NULL};
    CHECK(th_start(&d1, exe, args));
    w.d = &d1;
    CHECK(d1.metrics_port != 0);
    CHECK_EQ(th_log_count(&d1, "msg=\"generated a self-signed certificate\"", NULL), 1);

    /* The ready line's fingerprint is the certificate's, the key is 0600. */
    snprintf(daemon_cert, sizeof daemon_cert, "%s/cert.pem", state_dir);
    CHECK(th_cert_sha256(daemon_cert, fp));
    sluice_coord_fingerprint_format(fp, fptext, sizeof fptext);
    CHECK_STR(fptext, d1.fingerprint);
    snprintf(ts, sizeof ts, "%s/key.pem", state_dir);
    CHECK(stat(ts, &st) == 0 && (st.st_mode & 0777) == 0600);
}

static void test_hello(void)
{
    th_path(alice_cert, sizeof alice_cert, "alice.pem");
    th_path(alice_key, sizeof alice_key, "alice-key.pem");
    th_path(bob_cert, sizeof bob_cert, "bob.pem");
    th_path(bob_key, sizeof bob_key, "bob-key.pem");
    /* Client identities as a real client makes them. */
    CHECK_EQ(sluice_coord_ensure_identity("alice", alice_cert, alice_key, NULL), 1);
    CHECK_EQ(sluice_coord_ensure_identity("bob", bob_cert, bob_key, NULL), 1);

    /* alice pins the fingerprint from the ready line; bob verifies the
     * generated certificate as a CA file, by name. */
    alice = connect_client("alice", alice_cert, alice_key, NULL);
    bob = connect_client("bob", bob_cert, bob_key, daemon_cert);
    CHECK(alice && bob);
    if (!alice || !bob)
        return;
    th_ev *e = th_wait(&w, alice, SLUICE_COORD_EVENT_CONNECTED, 0, 1, WAIT_MS);
    CHECK(e != NULL);
    CHECK(e && e->code == 0);
    CHECK(th_wait(&w, bob, SLUICE_COORD_EVENT_CONNECTED, 0, 1, WAIT_MS) != NULL);
    CHECK(!alice->finished && !bob->finished);
    CHECK(th_wait_log(&d1, "name=\"bob\"", WAIT_MS));
    CHECK_EQ(th_log_count(&d1, "msg=\"client connected\"", "name=\"alice\" remote=127.0.0.1:"), 1);
}

static void test_who(void)
{
    if (!alice)
        return;
    uint64_t now = th_now_us();
    int64_t s = sluice_coord_client_open_stream(alice->c, now, SLUICE_COORD_KIND_COORD, NULL,
                                                "sluice/clients", 0, 0);
    CHECK(s > 0);
    CHECK(th_wait(&w, alice, SLUICE_COORD_EVENT_STREAM_ACCEPTED, (uint32_t)s, 1, WAIT_MS));
    th_ev *e = th_wait(&w, alice, SLUICE_COORD_EVENT_DATA, (uint32_t)s, 1, WAIT_MS);
    CHECK(e != NULL);
    if (e) {
        CHECK_EQ(e->len, 10);
        CHECK_STR(e->data, "alice\nbob\n");
    }
    CHECK(th_wait(&w, alice, SLUICE_COORD_EVENT_STREAM_FINISHED, (uint32_t)s, 1, WAIT_MS));
    CHECK_EQ(sluice_coord_client_close_stream(alice->c, th_now_us(), (uint32_t)s), 0);
    CHECK(th_wait(&w, alice, SLUICE_COORD_EVENT_STREAM_CLOSED, (uint32_t)s, 1, WAIT_MS));

    /* Any other label is refused with a reason that names the service. */
    s = sluice_coord_client_open_stream(alice->c, th_now_us(), SLUICE_COORD_KIND_COORD, NULL,
                                        "chat/rooms", 0, 0);
    CHECK(s > 0);
    e = th_wait(&w, alice, SLUICE_COORD_EVENT_STREAM_REFUSED, (uint32_t)s, 1, WAIT_MS);
    CHECK(e != NULL);
    if (e) {
        CHECK_EQ(e->code, SLUICE_COORD_E_REFUSED);
        CHECK(strstr(e->reason, "sluice/clients") != NULL);
    }
}

static void test_peer_stream(void)
{
    if (!alice || !bob)
        return;
    int64_t s = sluice_coord_client_open_stream(alice->c, th_now_us(), SLUICE_COORD_KIND_PEER,
                                                "bob", "chat", 0, 0);
    CHECK(s > 0);
    th_ev *in = th_wait(&w, bob, SLUICE_COORD_EVENT_STREAM_INCOMING, 0, 1, WAIT_MS);
    CHECK(in != NULL);
    if (!in)
        return;
    CHECK_STR(in->name, "alice");
    CHECK_STR(in->label, "chat");
    CHECK_EQ(in->kind, SLUICE_COORD_KIND_PEER);
    uint32_t bs = in->stream;
    CHECK_EQ(sluice_coord_client_accept_stream(bob->c, th_now_us(), bs), 0);
    CHECK(th_wait(&w, alice, SLUICE_COORD_EVENT_STREAM_ACCEPTED, (uint32_t)s, 1, WAIT_MS));

    CHECK_EQ(sluice_coord_client_send(alice->c, th_now_us(), (uint32_t)s,
                                      (const uint8_t *)"hello bob", 9),
             0);
    th_ev *e = th_wait(&w, bob, SLUICE_COORD_EVENT_DATA, bs, 1, WAIT_MS);
    CHECK(e && e->len == 9 && !memcmp(e->data, "hello bob", 9));
    CHECK_EQ(sluice_coord_client_send(bob->c, th_now_us(), bs, (const uint8_t *)"hello alice", 11),
             0);
    e = th_wait(&w, alice, SLUICE_COORD_EVENT_DATA, (uint32_t)s, 1, WAIT_MS);
    CHECK(e && e->len == 11 && !memcmp(e->data, "hello alice", 11));

    /* A message of the largest size, through the daemon's socket buffers. */
    static uint8_t big[65536];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    CHECK_EQ(sluice_coord_client_send(alice->c, th_now_us(), (uint32_t)s, big, sizeof big), 0);
    e = th_wait(&w, bob, SLUICE_COORD_EVENT_DATA, bs, 2, WAIT_MS);
    CHECK(e && e->len == sizeof big && !memcmp(e->data, big, sizeof e->data - 1));

    CHECK_EQ(sluice_coord_client_close_stream(alice->c, th_now_us(), (uint32_t)s), 0);
    CHECK(th_wait(&w, bob, SLUICE_COORD_EVENT_STREAM_FINISHED, bs, 1, WAIT_MS));
    CHECK_EQ(sluice_coord_client_close_stream(bob->c, th_now_us(), bs), 0);
    CHECK(th_wait(&w, alice, SLUICE_COORD_EVENT_STREAM_CLOSED, (uint32_t)s, 1, WAIT_MS));
}

/* A DIRECT stream carries each side's certificate fingerprint and TURN REST
 * credentials made with --turn-secret (what sluice-relay --auth-secret
 * checks). */
static void test_direct_turn(void)
{
    uint8_t bob_fp[32], alice_fp[32];
    char user[128], pass[64];

    if (!alice || !bob)
        return;
    CHECK(th_cert_sha256(bob_cert, bob_fp) && th_cert_sha256(alice_cert, alice_fp));
    int64_t s = sluice_coord_client_open_stream(alice->c, th_now_us(), SLUICE_COORD_KIND_DIRECT,
                                                "bob", "video", 0, 0);
    CHECK(s > 0);
    size_t from = 0;
    th_ev *in = NULL;
    /* bob's second incoming stream */
    if (th_wait(&w, bob, SLUICE_COORD_EVENT_STREAM_INCOMING, 0, 2, WAIT_MS)) {
        th_find(bob, SLUICE_COORD_EVENT_STREAM_INCOMING, 0, &from);
        in = th_find(bob, SLUICE_COORD_EVENT_STREAM_INCOMING, 0, &from);
    }
    CHECK(in != NULL);
    if (!in)
        return;
    CHECK_EQ(in->kind, SLUICE_COORD_KIND_DIRECT);
    CHECK(in->has_fp && !memcmp(in->fp, alice_fp, 32));
    CHECK_EQ(in->n_uris, 1);
    CHECK_STR(in->turn_uri, TURN_URI);
    CHECK_EQ(in->ttl, 3600);
    /* username "EXPIRY:name", password base64(HMAC-SHA1(secret, username)) */
    char *colon = strchr(in->turn_user, ':');
    CHECK(colon != NULL);
    if (colon) {
        uint64_t expiry = strtoull(in->turn_user, NULL, 10);
        CHECK(expiry > (uint64_t)time(NULL) + 3500 && expiry <= (uint64_t)time(NULL) + 3601);
        CHECK_EQ(sluice_coord_turn_rest_credentials(TURN_SECRET, colon + 1, expiry - 3600, 3600,
                                                    user, sizeof user, pass, sizeof pass),
                 0);
        CHECK_STR(user, in->turn_user);
        CHECK_STR(pass, in->turn_pass);
    }
    CHECK_EQ(sluice_coord_client_accept_stream(bob->c, th_now_us(), in->stream), 0);
    th_ev *acc = th_wait(&w, alice, SLUICE_COORD_EVENT_STREAM_ACCEPTED, (uint32_t)s, 1, WAIT_MS);
    CHECK(acc && acc->has_fp && !memcmp(acc->fp, bob_fp, 32) && acc->n_uris == 1);
    CHECK_EQ(sluice_coord_client_reset_stream(alice->c, th_now_us(), (uint32_t)s,
                                              SLUICE_COORD_E_CANCELLED, "done"),
             0);
}

static void test_broadcast(void)
{
    if (!alice || !bob)
        return;
    int64_t sa = sluice_coord_client_open_stream(alice->c, th_now_us(), SLUICE_COORD_KIND_BROADCAST,
                                                 "room", NULL, 0, 0);
    int64_t sb = sluice_coord_client_open_stream(bob->c, th_now_us(), SLUICE_COORD_KIND_BROADCAST,
                                                 "room", NULL, 0, 0);
    CHECK(sa > 0 && sb > 0);
    CHECK(th_wait(&w, alice, SLUICE_COORD_EVENT_STREAM_ACCEPTED, (uint32_t)sa, 1, WAIT_MS));
    CHECK(th_wait(&w, bob, SLUICE_COORD_EVENT_STREAM_ACCEPTED, (uint32_t)sb, 1, WAIT_MS));
    CHECK_EQ(sluice_coord_client_send(alice->c, th_now_us(), (uint32_t)sa,
                                      (const uint8_t *)"hi room", 7),
             0);
    th_ev *ea = th_wait(&w, alice, SLUICE_COORD_EVENT_DATA, (uint32_t)sa, 1, WAIT_MS);
    th_ev *eb = th_wait(&w, bob, SLUICE_COORD_EVENT_DATA, (uint32_t)sb, 1, WAIT_MS);
    CHECK(ea && eb);
    if (ea && eb) {
        CHECK_STR(ea->sender, "alice"); /* the sender gets its own message */
        CHECK_STR(eb->sender, "alice");
        CHECK(ea->len == 7 && !memcmp(ea->data, "hi room", 7));
        CHECK(eb->len == 7 && !memcmp(eb->data, "hi room", 7));
    }
}

static void test_duplicate_name(void)
{
    char c[128], k[128];
    th_path(c, sizeof c, "alice2.pem");
    th_path(k, sizeof k, "alice2-key.pem");
    CHECK_EQ(sluice_coord_generate_identity("alice", c, k, NULL), 0);
    th_client *dup = connect_client("alice", c, k, NULL);
    CHECK(dup != NULL);
    if (!dup)
        return;
    CHECK(th_pump(&w, WAIT_MS, th_pred_finished, dup));
    CHECK_EQ(dup->term_type, SLUICE_COORD_EVENT_REFUSED);
    CHECK_EQ(dup->term_code, SLUICE_COORD_E_NAME_TAKEN);
    CHECK(!dup->connected);
    CHECK(th_wait_log(&d1, "code_name=\"name taken\"", WAIT_MS));
    /* The first alice is untouched. */
    CHECK(alice && !alice->finished);
}

static void test_wrong_ca(void)
{
    char c[128], k[128], ca[128], cak[128];
    th_path(c, sizeof c, "eve.pem");
    th_path(k, sizeof k, "eve-key.pem");
    th_path(ca, sizeof ca, "other-ca.pem");
    th_path(cak, sizeof cak, "other-ca-key.pem");
    CHECK_EQ(sluice_coord_generate_identity("eve", c, k, NULL), 0);
    CHECK(th_make_cert(ca, cak, "some other CA", NULL, NULL, true));

    /* A CA that did not sign the coordinator's certificate. */
    th_client *eve = connect_client("eve", c, k, ca);
    CHECK(eve != NULL);
    if (eve) {
        CHECK(th_pump(&w, WAIT_MS, th_pred_finished, eve));
        CHECK_EQ(eve->term_type, SLUICE_COORD_EVENT_REFUSED);
        CHECK_EQ(eve->term_code, SLUICE_COORD_E_TLS);
        CHECK(!eve->connected);
    }
    /* A pin of another certificate. */
    th_client_opts o = {.cert = c, .key = k, .pin_other = true, .record = true};
    CHECK(th_cert_sha256(ca, o.pin_fp));
    th_client *eve2 = th_connect(&w, "eve", d1.port, d1.fingerprint, &o);
    CHECK(eve2 != NULL);
    if (eve2) {
        CHECK(th_pump(&w, WAIT_MS, th_pred_finished, eve2));
        CHECK_EQ(eve2->term_code, SLUICE_COORD_E_PIN_MISMATCH);
    }
    /* A server name the certificate does not cover. */
    th_client_opts o3 = {.cert = c,
                         .key = k,
                         .ca_file = daemon_cert,
                         .server_name = "coord.example",
                         .record = true};
    th_client *eve3 = th_connect(&w, "eve", d1.port, d1.fingerprint, &o3);
    CHECK(eve3 != NULL);
    if (eve3) {
        CHECK(th_pump(&w, WAIT_MS, th_pred_finished, eve3));
        CHECK_EQ(eve3->term_code, SLUICE_COORD_E_TLS);
    }
    /* ... and 127.0.0.1, which --server-name put in as an IP SAN, works. */
    th_client_opts o4 = {
        .cert = c, .key = k, .ca_file = daemon_cert, .server_name = "127.0.0.1", .record = true};
    th_client *eve4 = th_connect(&w, "eve", d1.port, d1.fingerprint, &o4);
    CHECK(eve4 && th_wait(&w, eve4, SLUICE_COORD_EVENT_CONNECTED, 0, 1, WAIT_MS));
    if (eve4) {
        CHECK_EQ(sluice_coord_client_close(eve4->c, th_now_us(), "bye"), 0);
        CHECK(th_pump(&w, WAIT_MS, th_pred_finished, eve4));
        CHECK_EQ(eve4->term_code, SLUICE_COORD_E_NONE);
    }
}

static bool pred_log_closed_eve(th_world *ww, void *ctx)
{
    (void)ctx;
    return th_log_count(ww->d, "msg=\"connection closed\"", "name=\"eve\"") >= 1;
}

static void test_metrics(void)
{
    static char body[65536];
    /* eve's close has reached the daemon (its log says so). */
    CHECK(th_pump(&w, WAIT_MS, pred_log_closed_eve, NULL));
    CHECK_EQ(th_http_get(d1.metrics_port, "/metrics", body, sizeof body), 200);
    CHECK_EQ(th_metric(body, "sluice_coord_clients"), 2);
    CHECK_EQ(th_metric(body, "sluice_coord_who_requests_total"), 1);
    CHECK_EQ(th_metric(body, "sluice_coord_service_refused_total"), 1);
    CHECK_EQ(th_metric(body, "sluice_coord_channels"), 1);
    CHECK(th_metric(body, "sluice_coord_refused_total") >= 1); /* NAME_TAKEN */
    CHECK(th_metric(body, "sluice_coord_connections_total") >= 6);
    CHECK_EQ(th_metric(body, "sluice_coord_write_errors_total"), 0);
    CHECK(strstr(body, "# TYPE sluice_coord_clients gauge") != NULL);
    CHECK(strstr(body, "sluice_coord_messages_total{direction=\"in\"}") != NULL);
    CHECK_EQ(th_http_get(d1.metrics_port, "/healthz", body, sizeof body), 200);
    CHECK_STR(body, "ok\n");
    CHECK_EQ(th_http_get(d1.metrics_port, "/nope", body, sizeof body), 404);
}

struct sent_ctx {
    th_client *cl;
    uint32_t stream;
    int sent, want;
    const uint8_t *msg;
    size_t len;
};

/* Send as fast as credit allows; true once all went. */
static bool pred_sent(th_world *ww, void *ctx)
{
    struct sent_ctx *x = ctx;
    (void)ww;
    while (x->sent < x->want &&
           sluice_coord_client_send(x->cl->c, th_now_us(), x->stream, x->msg, x->len) == 0)
        x->sent++;
    return x->sent == x->want;
}

static bool pred_blocked(th_world *ww, void *ctx)
{
    static char body[65536];
    (void)ww;
    (void)ctx;
    return th_http_get(d1.metrics_port, "/metrics", body, sizeof body) == 200 &&
           th_metric(body, "sluice_coord_output_blocked") >= 1;
}

static bool pred_unblocked(th_world *ww, void *ctx)
{
    static char body[65536];
    (void)ww;
    (void)ctx;
    return th_http_get(d1.metrics_port, "/metrics", body, sizeof body) == 200 &&
           th_metric(body, "sluice_coord_output_blocked") == 0;
}

/* bob stops reading while alice broadcasts 8 MiB to the room: the daemon's
 * socket to bob fills, it holds one chunk and pauses bob's output in the
 * core, which drops for bob (LAG) and not for alice; bob reads again and
 * everything flows. */
static void test_slow_reader(void)
{
    static uint8_t msg[65536];
    static char body[65536];
    size_t from = 0;

    if (!alice || !bob)
        return;
    th_ev *ja, *jb;
    /* The room streams: the last STREAM_ACCEPTED of each. */
    while ((ja = th_find(alice, SLUICE_COORD_EVENT_STREAM_ACCEPTED, 0, &from)) &&
           ja->kind != SLUICE_COORD_KIND_BROADCAST)
        ;
    from = 0;
    while ((jb = th_find(bob, SLUICE_COORD_EVENT_STREAM_ACCEPTED, 0, &from)) &&
           jb->kind != SLUICE_COORD_KIND_BROADCAST)
        ;
    CHECK(ja && jb);
    if (!ja || !jb)
        return;
    uint32_t sa = ja->stream, sb = jb->stream;
    size_t bob_data0 = 0;
    from = 0;
    while (th_find(bob, SLUICE_COORD_EVENT_DATA, sb, &from))
        bob_data0++;

    memset(msg, 'x', sizeof msg);
    bob->no_read = true;
    struct sent_ctx x = {alice, sa, 0, 128, msg, sizeof msg};
    CHECK(th_pump(&w, 20000, pred_sent, &x));
    CHECK(th_pump(&w, WAIT_MS, pred_blocked, NULL));
    CHECK(th_wait(&w, alice, SLUICE_COORD_EVENT_DATA, sa, 1 + 128, 20000) != NULL);
    CHECK_EQ(th_http_get(d1.metrics_port, "/metrics", body, sizeof body), 200);
    CHECK(th_metric(body, "sluice_coord_output_blocked_total") >= 1);
    CHECK(th_metric(body, "sluice_coord_broadcast_dropped_total") >= 1);

    bob->no_read = false;
    th_ev *lag = th_wait(&w, bob, SLUICE_COORD_EVENT_LAG, sb, 1, 20000);
    CHECK(lag != NULL);
    size_t got = 0;
    from = 0;
    while (th_find(bob, SLUICE_COORD_EVENT_DATA, sb, &from))
        got++;
    got -= bob_data0;
    CHECK(got >= 1 && got < 128);
    fprintf(stderr, "# slow reader: bob got %zu of 128 broadcasts, lag %s\n", got,
            lag ? "reported" : "missing");
    /* Everything the daemon held went out: nothing waits for a socket. */
    CHECK(th_pump(&w, WAIT_MS, pred_unblocked, NULL));
    CHECK(!alice->finished && !bob->finished);
}

static bool pred_both_finished(th_world *ww, void *ctx)
{
    (void)ww;
    (void)ctx;
    return alice->finished && bob->finished;
}

static void test_sigterm(void)
{
    if (!alice || !bob)
        return;
    CHECK_EQ(kill(d1.pid, SIGTERM), 0);
    CHECK(th_pump(&w, WAIT_MS, pred_both_finished, NULL));
    CHECK_EQ(alice->term_type, SLUICE_COORD_EVENT_CLOSED);
    CHECK_EQ(alice->term_code, SLUICE_COORD_E_SHUTDOWN);
    CHECK_EQ(bob->term_code, SLUICE_COORD_E_SHUTDOWN);
    /* Our clients close their sockets: the daemon need not wait out 2 s. */
    uint64_t t0 = th_now_us();
    int st = th_wait_exit(&d1, 5000);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(th_now_us() - t0 < 1900000);
    CHECK_EQ(th_log_count(&d1, "msg=\"stopping\"", "signal=TERM"), 1);
    CHECK_EQ(th_log_count(&d1, "msg=\"stopped\"", NULL), 1);
    CHECK_EQ(th_log_count(&d1, "level=error", NULL), 0);
    CHECK(th_sanitizer_clean(&d1));
    w.d = NULL;
}

/* ------------------------------------------------------------------------ */
/* A second coordinator on the same state directory, with --client-ca */

static void test_client_ca(void)
{
    th_daemon d2;
    th_world w2 = {0};
    char ca[128], cak[128], carol[128], carolk[128], dave[128], davek[128];

    th_path(ca, sizeof ca, "clients-ca.pem");
    th_path(cak, sizeof cak, "clients-ca-key.pem");
    th_path(carol, sizeof carol, "carol.pem");
    th_path(carolk, sizeof carolk, "carol-key.pem");
    th_path(dave, sizeof dave, "dave.pem");
    th_path(davek, sizeof davek, "dave-key.pem");
    CHECK(th_make_cert(ca, cak, "sluice clients CA", NULL, NULL, true));
    CHECK(th_make_cert(carol, carolk, "carol", ca, cak, false));
    CHECK(th_make_cert(dave, davek, "dave", NULL, NULL, false));

    const char *args[] = {"--listen",
                          "127.0.0.1",
                          "--port",
                          "0",
                          "--state-dir",
                          state_dir,
                          "--server-name",
                          "localhost",
                          "--server-name",
                          "127.0.0.1",
                          "--metrics-listen",
                          "off",
                          "--client-ca",
                          ca,
                          NULL};
    CHECK(th_start(&d2, exe, args));
    w2.d = &d2;
    /* The certificate was kept: the pin survives a restart. */
    CHECK_STR(d2.fingerprint, d1.fingerprint);
    CHECK_EQ(th_log_count(&d2, "generated", NULL), 0);
    CHECK(strstr(d2.log, "client_ca=on") != NULL);

    th_client_opts oc = {.cert = carol, .key = carolk, .record = true};
    th_client_opts od = {.cert = dave, .key = davek, .record = true};
    th_client *c = th_connect(&w2, "carol", d2.port, d2.fingerprint, &oc);
    th_client *dv = th_connect(&w2, "dave", d2.port, d2.fingerprint, &od);
    CHECK(c && dv);
    if (c && dv) {
        CHECK(th_wait(&w2, c, SLUICE_COORD_EVENT_CONNECTED, 0, 1, WAIT_MS) != NULL);
        CHECK(th_pump(&w2, WAIT_MS, th_pred_finished, dv));
        CHECK_EQ(dv->term_type, SLUICE_COORD_EVENT_REFUSED);
        CHECK_EQ(dv->term_code, SLUICE_COORD_E_CERT_INVALID);
        CHECK(strstr(dv->term_reason, "client CA") != NULL);
    }
    CHECK_EQ(kill(d2.pid, SIGINT), 0);
    if (c) {
        CHECK(th_pump(&w2, WAIT_MS, th_pred_finished, c));
        CHECK_EQ(c->term_code, SLUICE_COORD_E_SHUTDOWN);
    }
    int st = th_wait_exit(&d2, 5000);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(th_log_count(&d2, "msg=\"stopping\"", "signal=INT"), 1);
    CHECK(th_sanitizer_clean(&d2));
    th_world_free(&w2);
    th_daemon_free(&d2);
}

/* --max-connections 1: the second client is told SERVER_FULL; beyond the
 * core's few extra slots (4 here) a connection is closed at once. */
static void test_limits(void)
{
    th_daemon d3;
    th_world w3 = {0};
    static char body[65536];
    int raw[6];

    const char *args[] = {"--port",
                          "0",
                          "--state-dir",
                          state_dir,
                          "--metrics-listen",
                          "127.0.0.1:0",
                          "--max-connections",
                          "1",
                          NULL};
    CHECK(th_start(&d3, exe, args));
    w3.d = &d3;
    th_client_opts oa = {.cert = alice_cert, .key = alice_key, .record = true};
    th_client_opts ob = {.cert = bob_cert, .key = bob_key, .record = true};
    th_client *a = th_connect(&w3, "alice", d3.port, d3.fingerprint, &oa);
    CHECK(a && th_wait(&w3, a, SLUICE_COORD_EVENT_CONNECTED, 0, 1, WAIT_MS));
    th_client *b = th_connect(&w3, "bob", d3.port, d3.fingerprint, &ob);
    CHECK(b && th_pump(&w3, WAIT_MS, th_pred_finished, b));
    if (b) {
        CHECK_EQ(b->term_type, SLUICE_COORD_EVENT_REFUSED);
        CHECK_EQ(b->term_code, SLUICE_COORD_E_SERVER_FULL);
    }
    CHECK(th_wait_log(&d3, "code_name=\"server full\"", WAIT_MS));

    /* Silent TCP connections hold the 4 spare slots; two more are closed
     * at once. */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(d3.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 6; i++) {
        raw[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(raw[i] >= 0 && connect(raw[i], (struct sockaddr *)&sa, sizeof sa) == 0);
    }
    int closed = 0;
    uint64_t end = th_now_us() + WAIT_MS * 1000u;
    bool seen[6] = {false};
    while (closed < 2 && th_now_us() < end) {
        struct pollfd pf[6];
        for (int i = 0; i < 6; i++)
            pf[i] = (struct pollfd){.fd = seen[i] ? -1 : raw[i], .events = POLLIN};
        poll(pf, 6, 100);
        for (int i = 0; i < 6; i++) {
            char c;
            if (pf[i].revents && recv(raw[i], &c, 1, MSG_DONTWAIT) <= 0) {
                seen[i] = true;
                closed++;
            }
        }
        th_daemon_read(&d3);
    }
    CHECK_EQ(closed, 2);
    CHECK_EQ(th_http_get(d3.metrics_port, "/metrics", body, sizeof body), 200);
    CHECK_EQ(th_metric(body, "sluice_coord_accept_refused_total"), 2);
    CHECK_EQ(th_metric(body, "sluice_coord_clients"), 1);
    CHECK_EQ(th_metric(body, "sluice_coord_connections"), 5);
    for (int i = 0; i < 6; i++)
        if (raw[i] >= 0)
            close(raw[i]);

    CHECK_EQ(kill(d3.pid, SIGTERM), 0);
    if (a) {
        CHECK(th_pump(&w3, WAIT_MS, th_pred_finished, a));
        CHECK_EQ(a->term_code, SLUICE_COORD_E_SHUTDOWN);
    }
    int st = th_wait_exit(&d3, 5000);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(th_sanitizer_clean(&d3));
    th_world_free(&w3);
    th_daemon_free(&d3);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/sluice-coord\n", argv[0]);
        return 2;
    }
    exe = argv[1];
    signal(SIGPIPE, SIG_IGN);
    if (!th_mkdtemp())
        return 1;
    atexit(th_kill_all);
    RUN(test_options);
    RUN(test_start);
    RUN(test_hello);
    RUN(test_who);
    RUN(test_peer_stream);
    RUN(test_direct_turn);
    RUN(test_broadcast);
    RUN(test_duplicate_name);
    RUN(test_wrong_ca);
    RUN(test_metrics);
    RUN(test_slow_reader);
    RUN(test_sigterm);
    RUN(test_client_ca);
    RUN(test_limits);
    th_world_free(&w);
    th_kill_all();
    th_daemon_free(&d1);
    th_rmdir();
    return TEST_DONE();
}
