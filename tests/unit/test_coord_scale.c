/* SPDX-License-Identifier: MIT */
/* 1,000 clients on one coordinator server machine over real TLS 1.3 in
 * memory: all connect, all join one broadcast channel and receive a
 * message, stay idle; reports the server's heap bytes per idle connection
 * (glibc mallinfo2, OpenSSL included) and the CPU time of the 1,000
 * handshakes. */
#include <malloc.h>
#include <time.h>

#include "coord/frame.h"
#include "coord_util.h"

#define N_CLIENTS 1000

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static double cpu_ms(void)
{
    return (double)clock() * 1000.0 / CLOCKS_PER_SEC;
}

static void test_thousand_clients(void)
{
    static char certs[N_CLIENTS][96], keys[N_CLIENTS][96], names[N_CLIENTS][16];
    cu_world w;
    double t0, t1;

    /* Identities first (small self-signed certificates, no fsync). */
    for (int i = 0; i < N_CLIENTS; i++) {
        snprintf(names[i], sizeof names[i], "client-%04d", i);
        char c[64], k[64];
        snprintf(c, sizeof c, "%s.pem", names[i]);
        snprintf(k, sizeof k, "%s-key.pem", names[i]);
        cu_path(certs[i], sizeof certs[i], c);
        cu_path(keys[i], sizeof keys[i], k);
        if (!cu_make_cert(certs[i], keys[i], names[i], names[i], T_UNIX - DAY, T_UNIX + DAY, NULL,
                          NULL, false)) {
            CHECK(!"certificate");
            return;
        }
    }
    sluice_coord_server_config cfg;
    cu_server_cfg(&cfg);
    cfg.max_members = N_CLIENTS;
    cu_world_init(&w, &cfg);
    malloc_trim(0);
    size_t m0 = heap_in_use();

    t0 = cpu_ms();
    for (int i = 0; i < N_CLIENTS; i++) {
        sluice_coord_client_config cc;
        char dc[128], dk[128];
        cu_client_cfg(&cc, "x", dc, dk, sizeof dc);
        cc.name = names[i];
        cc.cert_file = certs[i];
        cc.key_file = keys[i];
        cu_add(&w, &cc);
        if (i % 50 == 49)
            cu_pump(&w);
    }
    cu_pump(&w);
    t1 = cpu_ms();
    size_t connected = 0;
    for (int i = 0; i < N_CLIENTS; i++)
        connected += cu_find(&w.cl[i].ev, SLUICE_COORD_EVENT_CONNECTED, 0) != NULL;
    CHECK_EQ(connected, N_CLIENTS);
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.clients, N_CLIENTS);
    printf("# %d clients connected (TLS 1.3, P-256) in %.0f ms of CPU, 0 s of virtual time "
           "(both ends in this process: %.2f ms per client)\n",
           N_CLIENTS, t1 - t0, (t1 - t0) / N_CLIENTS);

    /* Everyone joins one channel; one message reaches all 1,000. */
    uint32_t ids[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) {
        int64_t id = sluice_coord_client_open_stream(w.cl[i].c, w.now, SLUICE_COORD_KIND_BROADCAST,
                                                     "everyone", NULL, 0, 0);
        CHECK(id > 0);
        ids[i] = (uint32_t)id;
    }
    cu_pump(&w);
    CHECK_EQ(sluice_coord_client_send(w.cl[17].c, w.now, ids[17], (const uint8_t *)"all", 3), 0);
    cu_pump(&w);
    size_t got = 0;
    for (int i = 0; i < N_CLIENTS; i++) {
        cu_ev *d = cu_find(&w.cl[i].ev, SLUICE_COORD_EVENT_DATA, 0);
        got += d && d->len == 3 && !strcmp(d->sender, "client-0017");
    }
    CHECK_EQ(got, N_CLIENTS);
    for (int i = 0; i < N_CLIENTS; i++)
        CHECK_EQ(sluice_coord_client_close_stream(w.cl[i].c, w.now, ids[i]), 0);
    cu_pump(&w);
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.channels, 0);
    CHECK_EQ(st.streams, 0);

    /* Idle for a while (keepalives flow), then weigh the server alone:
     * free the clients without telling it. */
    cu_advance(&w, 30 * SEC);
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.clients, N_CLIENTS);
    for (int i = 0; i < N_CLIENTS; i++) {
        cu_evs_free(&w.cl[i].ev);
        sluice_coord_client_free(w.cl[i].c);
        w.cl[i].c = NULL;
    }
    malloc_trim(0);
    size_t m2 = heap_in_use();
    double per = ((double)m2 - (double)m0) / N_CLIENTS;
#ifdef UNDER_ASAN
    printf("# (memory not measured under AddressSanitizer)\n");
    (void)per;
#else
    printf("# server heap per idle connection: %.0f bytes (OpenSSL session, peer certificate, "
           "connection state)\n",
           per);
    CHECK(per > 0 && per < 64 * 1024);
#endif
    /* The server lets them all go cleanly. */
    for (int i = 0; i < N_CLIENTS; i++)
        CHECK_EQ(sluice_coord_server_connection_closed(w.s, w.now, w.cl[i].conn), 0);
    w.n = 0;
    sluice_coord_server_event ev;
    size_t closed = 0;
    while (sluice_coord_server_poll_event(w.s, &ev))
        closed += ev.type == SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED;
    CHECK_EQ(closed, N_CLIENTS);
    sluice_coord_server_get_stats(w.s, &st);
    CHECK_EQ(st.connections, 0);
    cu_world_free(&w);
}

/* The same without TLS: what the coordinator's own state costs. */
static void test_thousand_plaintext(void)
{
    sluice_coord_server_config cfg;
    sluice_coord_server *s;
    uint64_t conns[N_CLIENTS];
    uint8_t buf[4096];
    sluice_coord_transmit meta;
    sluice_coord_server_event ev;

    cu_server_cfg(&cfg);
    s = sluice_coord_server_new(&cfg, NULL);
    CHECK(s != NULL);
    malloc_trim(0);
    size_t m0 = heap_in_use();
    for (int i = 0; i < N_CLIENTS; i++) {
        uint8_t hello[12 + 5 + 16];
        char name[16];
        int n = snprintf(name, sizeof name, "client-%04d", i);
        CHECK_EQ(coord_server_accept_plaintext(s, 0, NULL, NULL, &conns[i]), 0);
        int p = coord_enc_hello(hello + 12, sizeof hello - 12, name);
        CHECK_EQ(p, 5 + n);
        coord_hdr_write(hello, 1 /* HELLO */, 0, (uint32_t)p);
        CHECK_EQ(sluice_coord_server_handle_stream(s, 0, conns[i], hello, 12 + (size_t)p), 0);
        while (sluice_coord_server_poll_transmit(s, 0, buf, sizeof buf, &meta) > 0)
            ;
        while (sluice_coord_server_poll_event(s, &ev))
            ;
    }
    malloc_trim(0);
    size_t m1 = heap_in_use();
    sluice_coord_server_stats st;
    sluice_coord_server_get_stats(s, &st);
    CHECK_EQ(st.clients, N_CLIENTS);
#ifdef UNDER_ASAN
    (void)m0;
    (void)m1;
#else
    double per = ((double)m1 - (double)m0) / N_CLIENTS;
    printf("# without TLS: %.0f bytes per idle connection (the coordinator's own state)\n", per);
    CHECK(per > 0 && per < 2048);
#endif
    sluice_coord_server_free(s);
}

int main(void)
{
    if (!cu_setup_files()) {
        printf("Bail out! cannot make test certificates\n");
        return 1;
    }
    RUN(test_thousand_clients);
    RUN(test_thousand_plaintext);
    cu_remove_files();
    return TEST_DONE();
}
