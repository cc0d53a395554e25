/* SPDX-License-Identifier: MIT */
/* Coordinator frames on the wire, without TLS (the plaintext entry points):
 * every malformed or out-of-state frame a client can send gets an ERROR
 * frame with the right code and a close, never a crash; the same for the
 * client facing a broken coordinator; a frame sequence split at every
 * byte boundary gives the same answers; garbage instead of TLS. */
#include "coord/frame.h"
#include "coord_util.h"
#include "fail_alloc.h"

/* ------------------------------------------------------------------------ */
/* Building frames */

typedef struct buf {
    uint8_t b[300000];
    size_t n;
} buf;

static void frame(buf *o, uint8_t type, uint32_t stream, const void *p, size_t len)
{
    if (o->n + COORD_HDR_LEN + len > sizeof o->b)
        abort(); /* a test bug */
    coord_hdr_write(o->b + o->n, type, stream, (uint32_t)len);
    o->n += COORD_HDR_LEN;
    if (len)
        memcpy(o->b + o->n, p, len);
    o->n += len;
}

static void hello(buf *o, const char *name)
{
    uint8_t p[80];
    int n = coord_enc_hello(p, sizeof p, name);
    frame(o, CF_HELLO, 0, p, (size_t)n);
}

static void open_frame(buf *o, uint32_t id, uint8_t kind, uint8_t flags, const char *name,
                       const char *label)
{
    uint8_t p[600];
    int n = coord_enc_open(p, sizeof p, kind, flags, name, label, NULL);
    frame(o, CF_OPEN, id, p, (size_t)n);
}

static void u32_frame(buf *o, uint8_t type, uint32_t stream, uint32_t v)
{
    uint8_t p[4];
    coord_enc_u32(p, 4, v);
    frame(o, type, stream, p, 4);
}

/* ------------------------------------------------------------------------ */
/* A plaintext server connection */

typedef struct raw {
    sluice_coord_server *s;
    uint64_t conn;
    uint64_t now;
    buf out;
    bool closed; /* meta.close seen */
} raw;

static void raw_init(raw *r, const sluice_coord_server_config *cfg_in)
{
    sluice_coord_server_config cfg;
    memset(r, 0, sizeof *r);
    if (cfg_in)
        cfg = *cfg_in;
    else
        cu_server_cfg(&cfg);
    r->now = 5 * SEC;
    r->s = sluice_coord_server_new(&cfg, NULL);
    CHECK(r->s != NULL);
    CHECK_EQ(coord_server_accept_plaintext(r->s, r->now, NULL, NULL, &r->conn), 0);
}

static void raw_drain(raw *r)
{
    sluice_coord_transmit meta;
    int n;
    while ((n = sluice_coord_server_poll_transmit(r->s, r->now, r->out.b + r->out.n,
                                                  sizeof r->out.b - r->out.n, &meta)) > 0) {
        CHECK_EQ(meta.conn, r->conn);
        r->out.n += (size_t)n;
        r->closed |= meta.close;
    }
}

static void raw_feed(raw *r, const uint8_t *p, size_t n)
{
    int rc = sluice_coord_server_handle_stream(r->s, r->now, r->conn, p, n);
    CHECK(rc == 0 || rc == SLUICE_ERR_NOT_FOUND);
    raw_drain(r);
}

/* The i-th frame of the output (header + payload view), or false. */
static bool out_frame(const raw *r, size_t i, coord_hdr *h, const uint8_t **p)
{
    size_t off = 0;
    for (;;) {
        if (off + COORD_HDR_LEN > r->out.n)
            return false;
        coord_hdr_parse(r->out.b + off, COORD_HDR_LEN, h);
        if (off + COORD_HDR_LEN + h->len > r->out.n)
            return false;
        *p = r->out.b + off + COORD_HDR_LEN;
        if (i-- == 0)
            return true;
        off += COORD_HDR_LEN + h->len;
    }
}

/* The connection answered with a last ERROR frame of code, closed, and
 * reported CONNECTION_CLOSED with the same code. */
static void expect_error(raw *r, int code, const char *reason_part)
{
    coord_hdr h = {0};
    const uint8_t *p = NULL, *lp = NULL;
    coord_hdr last = {0};
    for (size_t i = 0; out_frame(r, i, &h, &p); i++) {
        last = h;
        lp = p;
    }
    CHECK_EQ(last.type, CF_ERROR);
    if (last.type == CF_ERROR) {
        int got = -1;
        char reason[300];
        CHECK_EQ(coord_dec_error_text(lp, last.len, &got, reason, sizeof reason), 0);
        CHECK_EQ(got, code);
        if (reason_part && !strstr(reason, reason_part)) {
            fprintf(stderr, "# reason \"%s\" lacks \"%s\"\n", reason, reason_part);
            CHECK(0);
        }
    }
    CHECK(r->closed);
    sluice_coord_server_event ev;
    bool seen = false;
    while (sluice_coord_server_poll_event(r->s, &ev))
        if (ev.type == SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED && ev.conn == r->conn) {
            seen = true;
            CHECK_EQ(ev.code, code);
            CHECK(!ev.by_peer);
        }
    CHECK(seen);
    /* Input after the end is refused without harm. */
    CHECK_EQ(sluice_coord_server_handle_stream(r->s, r->now, r->conn, (const uint8_t *)"x", 1),
             SLUICE_ERR_NOT_FOUND);
}

static void raw_free(raw *r)
{
    sluice_coord_server_free(r->s);
}

/* One case: frames after a HELLO (or instead of one), expected code. */
static void server_case(const buf *in, bool say_hello, int code, const char *reason_part)
{
    raw r;
    buf h = {.n = 0};
    raw_init(&r, NULL);
    if (say_hello) {
        hello(&h, "alice");
        raw_feed(&r, h.b, h.n);
        CHECK(!r.closed);
    }
    raw_feed(&r, in->b, in->n);
    expect_error(&r, code, reason_part);
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(r.s, &st);
    CHECK_EQ(st.connections, 0);
    CHECK_EQ(st.streams, 0);
    raw_free(&r);
}

static void test_server_malformed(void)
{
    static buf in;
    uint8_t junk[16] = {0};

    /* Header rules. */
    in.n = 0;
    coord_hdr_write(in.b, CF_HELLO, 0, 0xFFFFFFFFu);
    in.n = 12;
    server_case(&in, false, SLUICE_COORD_E_PROTOCOL, "frame too long");
    in.n = 0;
    frame(&in, 15, 1, NULL, 0);
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "unknown frame type");
    in.n = 0;
    frame(&in, 0, 0, NULL, 0);
    server_case(&in, false, SLUICE_COORD_E_PROTOCOL, "unknown frame type");
    in.n = 0;
    frame(&in, CF_CLOSE, 1, NULL, 0);
    in.b[1] = 0x80;
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "reserved");
    in.n = 0;
    frame(&in, CF_PING, 3, junk, 8);
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "connection frame on a stream");
    in.n = 0;
    coord_hdr_write(in.b, CF_DATA, 1, 65537);
    in.n = 12;
    server_case(&in, true, SLUICE_COORD_E_TOO_BIG, "larger than max_message");

    /* Before HELLO. */
    in.n = 0;
    open_frame(&in, 1, SLUICE_COORD_KIND_COORD, 0, "", "");
    server_case(&in, false, SLUICE_COORD_E_PROTOCOL, "expected HELLO, got OPEN");
    in.n = 0;
    frame(&in, CF_HELLO, 0, junk, 3);
    server_case(&in, false, SLUICE_COORD_E_PROTOCOL, "malformed HELLO");
    in.n = 0;
    hello(&in, "bad name");
    server_case(&in, false, SLUICE_COORD_E_BAD_NAME, "invalid client name");
    in.n = 0;
    hello(&in, "alice");
    in.b[13] = 2; /* version 2 */
    server_case(&in, false, SLUICE_COORD_E_VERSION, "version 2");

    /* After HELLO: frames out of place. */
    in.n = 0;
    hello(&in, "alice");
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "unexpected HELLO");
    in.n = 0;
    frame(&in, CF_BCAST_DATA, 1, junk, 1);
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "unexpected BCAST_DATA");
    in.n = 0;
    u32_frame(&in, CF_CREDIT, 5, 100);
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "never opened");
    in.n = 0;
    frame(&in, CF_DATA, 2, junk, 4);
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "never opened");
    in.n = 0;
    open_frame(&in, 2, SLUICE_COORD_KIND_COORD, 0, "", "");
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "odd and increasing");
    in.n = 0;
    open_frame(&in, 3, SLUICE_COORD_KIND_BROADCAST, 0, "room", "");
    open_frame(&in, 1, SLUICE_COORD_KIND_BROADCAST, 0, "room", "");
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "odd and increasing");
    in.n = 0;
    frame(&in, CF_OPEN, 1, junk, 2);
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "malformed OPEN");
    in.n = 0;
    frame(&in, CF_PING, 0, junk, 7);
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "PING");
    in.n = 0;
    frame(&in, CF_ERROR, 0, junk, 1);
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "malformed ERROR");

    /* Streams out of state. */
    in.n = 0;
    open_frame(&in, 1, SLUICE_COORD_KIND_COORD, 0, "", "");
    frame(&in, CF_DATA, 1, junk, 4); /* not accepted yet */
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "not open for sending");
    in.n = 0;
    open_frame(&in, 1, SLUICE_COORD_KIND_BROADCAST, 0, "room", "");
    frame(&in, CF_ACCEPT, 1, NULL, 0);
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "not offered");
    in.n = 0;
    open_frame(&in, 1, SLUICE_COORD_KIND_BROADCAST, 0, "room", "");
    frame(&in, CF_CLOSE, 1, NULL, 0);
    frame(&in, CF_CLOSE, 1, NULL, 0); /* stale after the stream ended: ignored */
    frame(&in, CF_DATA, 9, junk, 1);  /* ...but 9 never existed */
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "never opened");
    in.n = 0;
    open_frame(&in, 1, SLUICE_COORD_KIND_BROADCAST, 0, "room", "");
    u32_frame(&in, CF_CREDIT, 1, 0);
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "malformed CREDIT");
    in.n = 0;
    open_frame(&in, 1, SLUICE_COORD_KIND_BROADCAST, 0, "room", "");
    frame(&in, CF_RESET, 1, junk, 1);
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "malformed RESET");
    in.n = 0;
    open_frame(&in, 1, SLUICE_COORD_KIND_BROADCAST, 0, "room", "");
    frame(&in, CF_CLOSE, 1, junk, 1);
    server_case(&in, true, SLUICE_COORD_E_PROTOCOL, "CLOSE with a payload");

    /* Flow control: beyond the window with no credit back. */
    static uint8_t big[65536];
    {
        /* alice opens to herself and accepts (stream 2), then floods. */
        raw r;
        buf h = {.n = 0};
        raw_init(&r, NULL);
        hello(&h, "alice");
        open_frame(&h, 1, SLUICE_COORD_KIND_PEER, 0, "alice", "");
        frame(&h, CF_ACCEPT, 2, NULL, 0);
        raw_feed(&r, h.b, h.n);
        CHECK(!r.closed);
        in.n = 0;
        for (int i = 0; i < 4; i++)
            frame(&in, CF_DATA, 1, big, sizeof big);
        raw_feed(&r, in.b, in.n);
        expect_error(&r, SLUICE_COORD_E_FLOW_CONTROL, "beyond the credit");
        raw_free(&r);
    }
    in.n = 0;
    open_frame(&in, 1, SLUICE_COORD_KIND_PEER, 0, "alice", "");
    frame(&in, CF_ACCEPT, 2, NULL, 0);
    u32_frame(&in, CF_CREDIT, 2, 1); /* nothing was consumed */
    server_case(&in, true, SLUICE_COORD_E_FLOW_CONTROL, "beyond the window");
}

static void test_server_truncated_then_closed(void)
{
    for (int which = 0; which < 3; which++) {
        raw r;
        buf in = {.n = 0};
        raw_init(&r, NULL);
        hello(&in, "alice");
        open_frame(&in, 1, SLUICE_COORD_KIND_BROADCAST, 0, "room", "label");
        /* Cut inside a header, inside a payload, or at a frame edge. */
        size_t cut = which == 0 ? in.n - 30 : which == 1 ? in.n - 3 : in.n;
        raw_feed(&r, in.b, cut);
        CHECK(!r.closed);
        CHECK_EQ(sluice_coord_server_connection_closed(r.s, r.now, r.conn), 0);
        CHECK_EQ(sluice_coord_server_connection_closed(r.s, r.now, r.conn), SLUICE_ERR_NOT_FOUND);
        sluice_coord_server_event ev;
        int closed = 0;
        while (sluice_coord_server_poll_event(r.s, &ev))
            if (ev.type == SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED) {
                closed++;
                CHECK(ev.by_peer);
                CHECK_EQ(ev.code, SLUICE_COORD_E_NONE);
            }
        CHECK_EQ(closed, 1);
        sluice_coord_server_stats st;
        sluice_coord_server_get_stats(r.s, &st);
        CHECK_EQ(st.channels, 0);
        CHECK_EQ(st.clients, 0);
        raw_free(&r);
    }
}

/* A session script whose answers are fixed (no TLS, no randomness). */
static void script(buf *in)
{
    static uint8_t m[3000];
    for (size_t i = 0; i < sizeof m; i++)
        m[i] = (uint8_t)(i * 13);
    in->n = 0;
    hello(in, "alice");
    open_frame(in, 1, SLUICE_COORD_KIND_BROADCAST, 0, "room", "chat");
    open_frame(in, 3, SLUICE_COORD_KIND_PEER, SLUICE_COORD_OPEN_WAIT, "bob", "video");
    frame(in, CF_DATA, 1, m, 0);
    frame(in, CF_DATA, 1, m, 5);
    frame(in, CF_DATA, 1, m, sizeof m);
    frame(in, CF_PING, 0, "12345678", 8);
    open_frame(in, 5, SLUICE_COORD_KIND_PEER, 0, "alice", "self");
    frame(in, CF_ACCEPT, 2, NULL, 0);
    frame(in, CF_DATA, 5, m, 100);
    frame(in, CF_RESET, 3, "\0\x14\0", 3);
    frame(in, CF_CLOSE, 1, NULL, 0);
    frame(in, CF_CLOSE, 5, NULL, 0);
    frame(in, CF_CLOSE, 2, NULL, 0);
}

/* Feed in, cut at cuts, to a new connection on s; its output goes to out,
 * the number of its events (before the close) to *events. */
static void run_split(sluice_coord_server *s, const buf *in, const size_t *cuts, size_t ncuts,
                      buf *out, size_t *events)
{
    raw r;
    sluice_coord_server_event ev;
    memset(&r, 0, sizeof r);
    r.s = s;
    r.now = 5 * SEC;
    CHECK_EQ(coord_server_accept_plaintext(s, r.now, NULL, NULL, &r.conn), 0);
    size_t off = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : in->n;
        raw_feed(&r, in->b + off, end - off);
        off = end;
    }
    CHECK(!r.closed);
    memcpy(out->b, r.out.b, r.out.n);
    out->n = r.out.n;
    *events = 0;
    while (sluice_coord_server_poll_event(s, &ev))
        (*events)++;
    CHECK_EQ(sluice_coord_server_connection_closed(s, r.now, r.conn), 0);
    while (sluice_coord_server_poll_event(s, &ev))
        ;
}

static void test_split_everywhere(void)
{
    static buf in, ref, out;
    size_t ref_events, events;
    sluice_coord_server_config cfg;
    cu_server_cfg(&cfg);
    sluice_coord_server *s = sluice_coord_server_new(&cfg, NULL);
    script(&in);
    run_split(s, &in, NULL, 0, &ref, &ref_events);
    /* WELCOME, ACCEPT (room), 3 BCAST_DATA, PONG, OPEN (self, stream 2),
     * ACCEPT (5), DATA, CLOSE (room), CLOSE, CLOSE; CREDIT may interleave. */
    coord_hdr h;
    size_t frames = 0;
    for (size_t off = 0; off + 12 <= ref.n; frames++) {
        coord_hdr_parse(ref.b + off, 12, &h);
        off += 12 + h.len;
    }
    CHECK(frames >= 12);
    CHECK_EQ(ref_events, 1); /* CLIENT_CONNECTED */
    size_t mismatches = 0;
    for (size_t k = 0; k <= in.n; k++) {
        run_split(s, &in, &k, 1, &out, &events);
        if (out.n != ref.n || memcmp(out.b, ref.b, ref.n) != 0 || events != ref_events)
            mismatches++;
    }
    CHECK_EQ(mismatches, 0);
    /* Byte by byte. */
    size_t *cuts = malloc(in.n * sizeof *cuts);
    for (size_t k = 0; k < in.n; k++)
        cuts[k] = k;
    run_split(s, &in, cuts, in.n, &out, &events);
    CHECK(out.n == ref.n && memcmp(out.b, ref.b, ref.n) == 0);
    free(cuts);
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(s, &st);
    CHECK_EQ(st.connections, 0);
    CHECK_EQ(st.streams, 0);
    CHECK_EQ(st.channels, 0);
    sluice_coord_server_free(s);
}

static void test_tls_garbage(void)
{
    cu_world w;
    cu_world_init(&w, NULL);
    uint64_t conn;
    CHECK_EQ(sluice_coord_server_accept(w.s, w.now, NULL, &conn), 0);
    static const uint8_t http[] = "GET / HTTP/1.1\r\nHost: coord\r\n\r\n";
    CHECK_EQ(sluice_coord_server_handle_stream(w.s, w.now, conn, http, sizeof http - 1), 0);
    cu_pump(&w);
    cu_ev *e = cu_find(&w.sev, SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED, 0);
    CHECK(e && e->conn == conn && strstr(e->reason, "TLS") != NULL);
    /* A client fed garbage by its "coordinator". */
    size_t a = cu_add_named(&w, "alice");
    cu_pump(&w);
    cu_drop(&w, &w.cl[a]); /* (then a fresh one, fed by hand) */
    sluice_coord_client_config cfg;
    char cert[128], key[128];
    cu_client_cfg(&cfg, "bob", cert, key, sizeof cert);
    sluice_coord_client *c = sluice_coord_client_new(&cfg, NULL);
    CHECK_EQ(sluice_coord_client_start(c, w.now), 0);
    uint8_t junk[300];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 7 + 1);
    CHECK(sluice_coord_client_handle_stream(c, w.now, junk, sizeof junk) < 0);
    uint8_t out[4096];
    sluice_coord_transmit meta;
    while (sluice_coord_client_poll_transmit(c, w.now, out, sizeof out, &meta) > 0)
        ;
    sluice_coord_event ev;
    bool refused = false;
    while (sluice_coord_client_poll_event(c, &ev))
        refused |= ev.type == SLUICE_COORD_EVENT_REFUSED && ev.code == SLUICE_COORD_E_TLS;
    CHECK(refused);
    CHECK_EQ(sluice_coord_client_handle_stream(c, w.now, junk, 1), SLUICE_ERR_STATE);
    sluice_coord_client_free(c);
    cu_world_free(&w);
}

/* ------------------------------------------------------------------------ */
/* The client against a broken coordinator */

typedef struct fake {
    sluice_coord_client *c;
    uint64_t now;
    buf out;
} fake;

static void fake_init(fake *f)
{
    sluice_coord_client_config cfg;
    sluice_coord_client_config_init(&cfg);
    cfg.name = "alice";
    memset(f, 0, sizeof *f);
    f->now = 7 * SEC;
    f->c = coord_client_new_plaintext(&cfg, NULL);
    CHECK(f->c != NULL);
    CHECK_EQ(sluice_coord_client_start(f->c, f->now), 0);
}

static void fake_feed(fake *f, const buf *in)
{
    sluice_coord_transmit meta;
    int n;
    sluice_coord_client_handle_stream(f->c, f->now, in->b, in->n);
    while ((n = sluice_coord_client_poll_transmit(f->c, f->now, f->out.b + f->out.n,
                                                  sizeof f->out.b - f->out.n, &meta)) > 0)
        f->out.n += (size_t)n;
}

static void welcome(buf *o)
{
    coord_welcome w = {SLUICE_COORD_VERSION, 65536, 262144, 60000};
    uint8_t p[16];
    coord_enc_welcome(p, sizeof p, &w);
    frame(o, CF_WELCOME, 0, p, 16);
}

/* After (or instead of) WELCOME, in makes the client end with type/code. */
static void client_case(const buf *in, bool say_welcome, int type, int code, const char *part)
{
    fake f;
    buf w = {.n = 0};
    fake_init(&f);
    if (say_welcome) {
        welcome(&w);
        fake_feed(&f, &w);
        CHECK_EQ(sluice_coord_client_get_state(f.c), SLUICE_COORD_CLIENT_CONNECTED);
    }
    fake_feed(&f, in);
    sluice_coord_event ev;
    bool seen = false;
    while (sluice_coord_client_poll_event(f.c, &ev)) {
        if (ev.type != SLUICE_COORD_EVENT_REFUSED && ev.type != SLUICE_COORD_EVENT_CLOSED)
            continue;
        seen = true;
        CHECK_EQ(ev.type, type);
        CHECK_EQ(ev.code, code);
        if (part && !strstr(ev.reason, part)) {
            fprintf(stderr, "# reason \"%s\" lacks \"%s\"\n", ev.reason, part);
            CHECK(0);
        }
    }
    CHECK(seen);
    CHECK_EQ(sluice_coord_client_get_state(f.c), SLUICE_COORD_CLIENT_CLOSED);
    sluice_coord_client_free(f.c);
}

static void test_client_malformed(void)
{
    static buf in;
    uint8_t junk[8] = {0};

    in.n = 0;
    frame(&in, CF_ERROR, 0, "\0\x03\x05taken", 8);
    client_case(&in, false, SLUICE_COORD_EVENT_REFUSED, SLUICE_COORD_E_NAME_TAKEN, "taken");
    in.n = 0;
    frame(&in, CF_DATA, 1, junk, 1);
    client_case(&in, false, SLUICE_COORD_EVENT_REFUSED, SLUICE_COORD_E_PROTOCOL, "before WELCOME");
    in.n = 0;
    frame(&in, CF_WELCOME, 0, junk, 8);
    client_case(&in, false, SLUICE_COORD_EVENT_REFUSED, SLUICE_COORD_E_PROTOCOL, "malformed WELCOME");
    in.n = 0;
    welcome(&in);
    client_case(&in, true, SLUICE_COORD_EVENT_CLOSED, SLUICE_COORD_E_PROTOCOL, "second WELCOME");
    in.n = 0;
    frame(&in, 77, 1, NULL, 0);
    client_case(&in, true, SLUICE_COORD_EVENT_CLOSED, SLUICE_COORD_E_PROTOCOL, "unknown");
    in.n = 0;
    coord_hdr_write(in.b, CF_BCAST_DATA, 2, 65536 + 65);
    in.n = 12;
    client_case(&in, true, SLUICE_COORD_EVENT_CLOSED, SLUICE_COORD_E_TOO_BIG, NULL);
    in.n = 0;
    frame(&in, CF_DATA, 2, junk, 1);
    client_case(&in, true, SLUICE_COORD_EVENT_CLOSED, SLUICE_COORD_E_PROTOCOL, "never opened");
    in.n = 0;
    open_frame(&in, 3, SLUICE_COORD_KIND_PEER, 0, "bob", "");
    client_case(&in, true, SLUICE_COORD_EVENT_CLOSED, SLUICE_COORD_E_PROTOCOL, "even");
    in.n = 0;
    open_frame(&in, 2, SLUICE_COORD_KIND_BROADCAST, 0, "room", "");
    client_case(&in, true, SLUICE_COORD_EVENT_CLOSED, SLUICE_COORD_E_PROTOCOL, "malformed OPEN");
    in.n = 0;
    open_frame(&in, 2, SLUICE_COORD_KIND_PEER, 0, "bob", "");
    frame(&in, CF_DATA, 2, junk, 1); /* before we accepted */
    client_case(&in, true, SLUICE_COORD_EVENT_CLOSED, SLUICE_COORD_E_PROTOCOL, "not open");
    in.n = 0;
    open_frame(&in, 2, SLUICE_COORD_KIND_PEER, 0, "bob", "");
    frame(&in, CF_HELLO, 0, NULL, 0);
    client_case(&in, true, SLUICE_COORD_EVENT_CLOSED, SLUICE_COORD_E_PROTOCOL, "HELLO");
    in.n = 0;
    frame(&in, CF_ERROR, 0, "\0\x11\0", 3);
    client_case(&in, true, SLUICE_COORD_EVENT_CLOSED, SLUICE_COORD_E_SHUTDOWN, NULL);
    /* Data beyond the window the coordinator itself announced. */
    {
        fake f;
        buf a = {.n = 0};
        static buf b;
        fake_init(&f);
        welcome(&a);
        open_frame(&a, 2, SLUICE_COORD_KIND_PEER, 0, "bob", "");
        fake_feed(&f, &a);
        CHECK_EQ(sluice_coord_client_accept_stream(f.c, f.now, 2), 0);
        static uint8_t big[65536];
        b.n = 0;
        for (int i = 0; i < 4; i++)
            frame(&b, CF_DATA, 2, big, sizeof big);
        f.out.n = 0;
        fake_feed(&f, &b);
        CHECK_EQ(sluice_coord_client_get_state(f.c), SLUICE_COORD_CLIENT_CLOSED);
        /* ...and it said why: an ERROR frame went out last. */
        coord_hdr h;
        size_t off = 0, last = 0;
        while (off + 12 <= f.out.n) {
            coord_hdr_parse(f.out.b + off, 12, &h);
            last = off;
            off += 12 + h.len;
        }
        CHECK_EQ(f.out.b[last], CF_ERROR);
        CHECK_EQ(f.out.b[last + 12] << 8 | f.out.b[last + 13], SLUICE_COORD_E_FLOW_CONTROL);
        sluice_coord_client_free(f.c);
    }
}

/* A client that sends but never reads cannot make the coordinator queue
 * without bound: PONGs pile up to max_control_queue, then SLOW. */
static void test_slow_reader(void)
{
    sluice_coord_server_config cfg;
    raw r;
    static buf in;
    cu_server_cfg(&cfg);
    cfg.max_control_queue = 100;
    raw_init(&r, &cfg);
    in.n = 0;
    hello(&in, "alice");
    raw_feed(&r, in.b, in.n);
    CHECK_EQ(sluice_coord_server_pause_output(r.s, r.conn, true), 0);
    in.n = 0;
    for (int i = 0; i < 1000; i++)
        frame(&in, CF_PING, 0, "pingping", 8);
    raw_feed(&r, in.b, in.n);
    sluice_coord_conn_info info;
    /* Ended with SLOW; its queue was dropped, the ERROR waits for the
     * socket. */
    CHECK_EQ(sluice_coord_server_conn_info(r.s, r.conn, &info), 0);
    CHECK(info.queued_bytes < 200);
    CHECK_EQ(sluice_coord_server_pause_output(r.s, r.conn, false), 0);
    raw_drain(&r);
    expect_error(&r, SLUICE_COORD_E_SLOW, "does not read");
    raw_free(&r);

    /* A closing connection whose last bytes are never taken is dropped
     * after the linger time (hello_timeout), not kept forever. */
    raw_init(&r, NULL);
    in.n = 0;
    hello(&in, "alice");
    raw_feed(&r, in.b, in.n);
    sluice_coord_server_event ev;
    while (sluice_coord_server_poll_event(r.s, &ev))
        ;
    CHECK_EQ(sluice_coord_server_pause_output(r.s, r.conn, true), 0);
    CHECK_EQ(sluice_coord_server_disconnect(r.s, r.now, r.conn, SLUICE_COORD_E_KICKED, NULL), 0);
    CHECK(!sluice_coord_server_poll_event(r.s, &ev));
    uint64_t t = sluice_coord_server_next_timeout(r.s);
    CHECK(t <= r.now + 10 * SEC);
    sluice_coord_server_handle_timeout(r.s, r.now + 10 * SEC);
    CHECK(sluice_coord_server_poll_event(r.s, &ev));
    CHECK(ev.type == SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED && ev.code == SLUICE_COORD_E_KICKED);
    raw_free(&r);
}

/* Events beyond max_events are dropped and counted, except the terminal
 * ones, which a daemon needs to close sockets. */
static void test_event_bound(void)
{
    sluice_coord_server_config cfg;
    sluice_coord_server *s;
    uint64_t conns[40];
    uint8_t o[4096];
    sluice_coord_transmit meta;
    sluice_coord_server_event ev;
    cu_server_cfg(&cfg);
    cfg.max_events = 16;
    s = coord_server_new_plaintext(&cfg, NULL);
    for (int i = 0; i < 40; i++) {
        buf in = {.n = 0};
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        hello(&in, name);
        CHECK_EQ(coord_server_accept_plaintext(s, 0, NULL, NULL, &conns[i]), 0);
        CHECK_EQ(sluice_coord_server_handle_stream(s, 0, conns[i], in.b, in.n), 0);
    }
    while (sluice_coord_server_poll_transmit(s, 0, o, sizeof o, &meta) > 0)
        ;
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(s, &st);
    CHECK_EQ(st.clients, 40);
    CHECK_EQ(st.events_dropped, 24);
    for (int i = 0; i < 40; i++)
        CHECK_EQ(sluice_coord_server_connection_closed(s, 0, conns[i]), 0);
    int connected = 0, closed = 0;
    while (sluice_coord_server_poll_event(s, &ev)) {
        connected += ev.type == SLUICE_COORD_SERVER_EVENT_CLIENT_CONNECTED;
        closed += ev.type == SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED;
    }
    CHECK_EQ(connected, 16);
    CHECK_EQ(closed, 40);
    sluice_coord_server_free(s);
}

/* Fail each allocation in turn (style.md): a server session and a client
 * session, plaintext (OpenSSL's own allocations are not ours to fail).
 * Nothing may crash or leak, every connection still ends once. */
static void test_alloc_failures(void)
{
    static buf in;
    script(&in);
    int server_runs = 0, client_runs = 0;
    for (int k = 0;; k++) {
        sluice_coord_server_config cfg;
        cu_server_cfg(&cfg);
        cfg.alloc.calloc = failing_calloc;
        cfg.alloc.free = plain_free;
        fail_alloc_at = k;
        fail_alloc_calls = 0;
        sluice_coord_server *s = coord_server_new_plaintext(&cfg, NULL);
        server_runs++;
        if (s) {
            uint64_t a = 0, b = 0;
            int ra = coord_server_accept_plaintext(s, 0, NULL, NULL, &a);
            int rb = coord_server_accept_plaintext(s, 0, NULL, NULL, &b);
            buf h = {.n = 0};
            hello(&h, "bob");
            open_frame(&h, 1, SLUICE_COORD_KIND_BROADCAST, 0, "room", "");
            uint8_t o[70000];
            sluice_coord_transmit meta;
            sluice_coord_server_event ev;
            int closed = 0;
            if (rb == 0)
                sluice_coord_server_handle_stream(s, 0, b, h.b, h.n);
            for (size_t off = 0; ra == 0 && off < in.n; off += 50) {
                size_t m = in.n - off < 50 ? in.n - off : 50;
                sluice_coord_server_handle_stream(s, 0, a, in.b + off, m);
                while (sluice_coord_server_poll_transmit(s, 0, o, sizeof o, &meta) > 0)
                    ;
                while (sluice_coord_server_poll_event(s, &ev)) {
                    if (ev.type == SLUICE_COORD_SERVER_EVENT_STREAM_INCOMING)
                        sluice_coord_server_accept_stream(s, 0, ev.conn, ev.stream);
                    closed += ev.type == SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED;
                }
            }
            if (ra == 0)
                sluice_coord_server_connection_closed(s, 0, a);
            if (rb == 0)
                sluice_coord_server_connection_closed(s, 0, b);
            while (sluice_coord_server_poll_event(s, &ev))
                closed += ev.type == SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED;
            CHECK_EQ(closed, (ra == 0) + (rb == 0));
            sluice_coord_server_stats st;
            sluice_coord_server_get_stats(s, &st);
            CHECK_EQ(st.connections, 0);
            CHECK_EQ(st.streams, 0);
            sluice_coord_server_free(s);
        }
        if (fail_alloc_calls <= k)
            break;
    }
    for (int k = 0;; k++) {
        sluice_coord_client_config cfg;
        sluice_coord_client_config_init(&cfg);
        cfg.name = "alice";
        cfg.alloc.calloc = failing_calloc;
        cfg.alloc.free = plain_free;
        fail_alloc_at = k;
        fail_alloc_calls = 0;
        sluice_coord_client *c = coord_client_new_plaintext(&cfg, NULL);
        client_runs++;
        if (c) {
            buf f = {.n = 0};
            welcome(&f);
            open_frame(&f, 2, SLUICE_COORD_KIND_PEER, 0, "bob", "x");
            frame(&f, CF_DATA, 2, "data", 4);
            uint8_t o[4096];
            sluice_coord_transmit meta;
            sluice_coord_event ev;
            int terminal = 0;
            sluice_coord_client_start(c, 0);
            sluice_coord_client_handle_stream(c, 0, f.b, 12 + 16);
            sluice_coord_client_open_stream(c, 0, SLUICE_COORD_KIND_BROADCAST, "room", NULL, 0, 0);
            sluice_coord_client_handle_stream(c, 0, f.b + 28, f.n - 28);
            while (sluice_coord_client_poll_event(c, &ev)) {
                if (ev.type == SLUICE_COORD_EVENT_STREAM_INCOMING)
                    sluice_coord_client_accept_stream(c, 0, ev.stream);
                terminal += ev.type == SLUICE_COORD_EVENT_REFUSED || ev.type == SLUICE_COORD_EVENT_CLOSED;
            }
            while (sluice_coord_client_poll_transmit(c, 0, o, sizeof o, &meta) > 0)
                ;
            sluice_coord_client_connection_closed(c, 0);
            while (sluice_coord_client_poll_event(c, &ev))
                terminal += ev.type == SLUICE_COORD_EVENT_REFUSED || ev.type == SLUICE_COORD_EVENT_CLOSED;
            CHECK_EQ(terminal, 1);
            sluice_coord_client_free(c);
        }
        if (fail_alloc_calls <= k)
            break;
    }
    fail_alloc_at = -1;
    printf("# %d server and %d client runs, each failing one more allocation\n", server_runs,
           client_runs);
    CHECK(server_runs > 20 && client_runs > 5);
}

int main(void)
{
    if (!cu_setup_files()) {
        printf("Bail out! cannot make test certificates\n");
        return 1;
    }
    RUN(test_server_malformed);
    RUN(test_server_truncated_then_closed);
    RUN(test_split_everywhere);
    RUN(test_tls_garbage);
    RUN(test_client_malformed);
    RUN(test_slow_reader);
    RUN(test_event_bound);
    RUN(test_alloc_failures);
    cu_remove_files();
    return TEST_DONE();
}
