/* SPDX-License-Identifier: MIT */
/* Self-test of the network simulator: RFC 4787 NAT behaviour per preset
 * with scripted endpoints, link properties and replay from a seed, sluice's
 * STUN client and TURN client through NATs against the built-in servers,
 * and the bounds (queue, steps, source addresses, tables). */
#include "test.h"

#include "sim.h"

#define MS 1000ull
#define S 1000000ull

static sluice_addr A(const char *text)
{
    sluice_addr a;
    int rc = sluice_addr_parse(&a, text, 0);
    if (rc < 0) {
        fprintf(stderr, "# bad address %s\n", text);
        abort();
    }
    return a;
}

/* A pointer to a parsed address (a ring of 8, for use inside one call). */
static const sluice_addr *PA(const char *text)
{
    static sluice_addr ring[8];
    static unsigned next;
    sluice_addr *a = &ring[next++ % 8];
    *a = A(text);
    return a;
}

/* ------------------------------------------------------------------------ */
/* A scripted endpoint: records what arrives; as a "reflector" it answers
 * every datagram with the source address it saw (a STUN server in
 * miniature); as an "echo" it sends the bytes back. */

#define REC_MAX 64

struct rx {
    sluice_addr local, remote;
    uint8_t data[32];
    size_t len;
    uint64_t t;
};

struct rec {
    sim_net *net;
    int host;
    bool reflect, echo;
    struct rx rx[REC_MAX];
    size_t n_rx;    /* kept (at most REC_MAX) */
    size_t n_total; /* received */
    uint32_t last_seq;
    size_t out_of_order;
};

static void rec_deliver(void *ctx, sim_net *net, uint64_t now, const sluice_addr *local,
                        const sluice_addr *remote, const uint8_t *data, size_t len)
{
    struct rec *r = ctx;
    if (r->n_rx < REC_MAX) {
        struct rx *x = &r->rx[r->n_rx++];
        x->local = *local;
        x->remote = *remote;
        x->len = len < sizeof x->data ? len : sizeof x->data;
        memcpy(x->data, data, x->len);
        x->t = now;
    }
    r->n_total++;
    if (len == 4) { /* sequence-numbered traffic */
        uint32_t seq;
        memcpy(&seq, data, 4);
        if (seq < r->last_seq)
            r->out_of_order++;
        else
            r->last_seq = seq;
    }
    if (r->reflect) {
        uint8_t b[19]; /* family, address, port: no struct padding on the wire */
        b[0] = remote->family;
        memcpy(b + 1, remote->ip, 16);
        b[17] = (uint8_t)(remote->port >> 8);
        b[18] = (uint8_t)remote->port;
        sim_send(net, r->host, now, local, remote, b, sizeof b);
    } else if (r->echo)
        sim_send(net, r->host, now, local, remote, data, len);
}

static const sim_endpoint_ops rec_ops = {.deliver = rec_deliver};

static void rec_init(struct rec *r, sim_net *net, int host)
{
    memset(r, 0, sizeof *r);
    r->net = net;
    r->host = host;
    CHECK_EQ(sim_host_set_endpoint(net, host, &rec_ops, r), 0);
}

/* The address the reflector reported in the last datagram received. */
static sluice_addr rec_reflected(const struct rec *r)
{
    sluice_addr a = {0};
    const struct rx *x = r->n_rx ? &r->rx[r->n_rx - 1] : NULL;
    if (x && x->len == 19) {
        a.family = x->data[0];
        memcpy(a.ip, x->data + 1, 16);
        a.port = (uint16_t)(x->data[17] << 8 | x->data[18]);
    }
    return a;
}

static int add_host(sim_net *net, const char *name, int realm, const char *ip)
{
    int h = sim_host_add(net, name);
    CHECK(h >= 0);
    sluice_addr a = A(ip);
    CHECK_EQ(sim_host_add_addr(net, h, realm, &a), 0);
    return h;
}

static int send_str(sim_net *net, int host, const char *from, const char *to, const char *s)
{
    sluice_addr f = A(from), t = A(to);
    return sim_send(net, host, sim_now(net), &f, &t, (const uint8_t *)s, strlen(s));
}

static void run_for(sim_net *net, uint64_t us)
{
    CHECK_EQ(sim_run_until(net, sim_now(net) + us), 0);
}

/* ------------------------------------------------------------------------ */
/* NAT presets (RFC 4787 §4.1 mapping, §5 filtering, §6 hairpinning) */

struct nat_world {
    sim_net *net;
    int realm;
    int a, b, s1, s2, s3;
    struct rec ra, rb, r1, r2, r3;
};

/* Internet: reflectors S1 192.0.2.1, S2 192.0.2.2 and a stranger S3
 * 198.51.100.3. A NAT 203.0.113.10 with A 10.0.0.2 and B 10.0.0.3 inside. */
static void world_init(struct nat_world *w, const sim_nat_config *nc, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    w->net = sim_net_new(seed);
    CHECK(w->net != NULL);
    sluice_addr pub = A("203.0.113.10");
    w->realm = sim_nat_add(w->net, SIM_REALM_INTERNET, &pub, 1, nc);
    CHECK_EQ(w->realm, 1);
    w->s1 = add_host(w->net, "s1", 0, "192.0.2.1");
    w->s2 = add_host(w->net, "s2", 0, "192.0.2.2");
    w->s3 = add_host(w->net, "s3", 0, "198.51.100.3");
    w->a = add_host(w->net, "a", w->realm, "10.0.0.2");
    w->b = add_host(w->net, "b", w->realm, "10.0.0.3");
    rec_init(&w->ra, w->net, w->a);
    rec_init(&w->rb, w->net, w->b);
    rec_init(&w->r1, w->net, w->s1);
    rec_init(&w->r2, w->net, w->s2);
    rec_init(&w->r3, w->net, w->s3);
    w->r1.reflect = w->r2.reflect = true;
}

/* Send from `from` on host and return the address the reflector at `to`
 * saw (family NONE when nothing came back). */
static sluice_addr probe(struct nat_world *w, int host, struct rec *r, const char *from,
                         const char *to)
{
    size_t before = r->n_rx;
    CHECK_EQ(send_str(w->net, host, from, to, "probe"), 0);
    run_for(w->net, 100 * MS);
    sluice_addr none = {0};
    return r->n_rx > before ? rec_reflected(r) : none;
}

/* Did a datagram sent by host from->to reach rec? */
static bool reaches(struct nat_world *w, int host, const char *from, const sluice_addr *to,
                    struct rec *r)
{
    size_t before = r->n_total;
    sluice_addr f = A(from);
    CHECK_EQ(sim_send(w->net, host, sim_now(w->net), &f, to, (const uint8_t *)"in", 2), 0);
    run_for(w->net, 100 * MS);
    return r->n_total > before;
}

static void test_nat_presets(void)
{
    static const struct {
        sim_nat_type type;
        const char *name;
        bool same_mapping;        /* EIM: S1 and S2 see the same X1':x1' */
        bool pass_other_port;     /* from S1's address, another port */
        bool pass_other_addr;     /* from an address A never sent to */
        bool hairpin_after_punch; /* B -> A's mapping after A sent to B's mapping */
    } cases[] = {
        {SIM_NAT_FULL_CONE, "full cone", true, true, true, true},
        {SIM_NAT_RESTRICTED_CONE, "restricted cone", true, true, false, true},
        {SIM_NAT_PORT_RESTRICTED, "port restricted", true, false, false, true},
        {SIM_NAT_SYMMETRIC, "symmetric", false, false, false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sim_nat_config nc;
        sim_nat_config_init(&nc, cases[i].type);
        struct nat_world w;
        world_init(&w, &nc, 100 + i);
        sluice_addr m1 = probe(&w, w.a, &w.ra, "10.0.0.2:5000", "192.0.2.1:3478");
        sluice_addr m2 = probe(&w, w.a, &w.ra, "10.0.0.2:5000", "192.0.2.2:3478");
        CHECK_EQ(m1.family, SLUICE_AF_INET);
        CHECK(sluice_addr_equal_ip(&m1, PA("203.0.113.10")));
        CHECK(sluice_addr_equal_ip(&m2, &m1)); /* one public address: paired */
        CHECK_EQ(sluice_addr_equal(&m1, &m2), cases[i].same_mapping);
        if (sluice_addr_equal(&m1, &m2) != cases[i].same_mapping)
            fprintf(stderr, "# %s: mapping behaviour wrong\n", cases[i].name);
        /* the simulator's own view agrees */
        sluice_addr ext;
        CHECK_EQ(
            sim_nat_mapping_lookup(w.net, w.realm, PA("10.0.0.2:5000"), PA("192.0.2.1:3478"), &ext),
            1);
        CHECK(sluice_addr_equal(&ext, &m1));

        /* filtering, RFC 4787 §5 */
        CHECK(reaches(&w, w.s1, "192.0.2.1:3478", &m1, &w.ra)); /* contacted Y:y */
        CHECK_EQ(reaches(&w, w.s1, "192.0.2.1:4000", &m1, &w.ra), cases[i].pass_other_port);
        CHECK_EQ(reaches(&w, w.s3, "198.51.100.3:3478", &m1, &w.ra), cases[i].pass_other_addr);

        /* hairpinning, RFC 4787 §6: B learns its mapping, A sends to it
         * (opening A's filter for it), then B sends to A's mapping. */
        sluice_addr mb = probe(&w, w.b, &w.rb, "10.0.0.3:6000", "192.0.2.1:3478");
        CHECK_EQ(mb.family, SLUICE_AF_INET);
        reaches(&w, w.a, "10.0.0.2:5000", &mb, &w.rb);
        size_t before = w.ra.n_rx;
        bool hp = reaches(&w, w.b, "10.0.0.3:6000", &m1, &w.ra);
        CHECK_EQ(hp, cases[i].hairpin_after_punch);
        if (hp && w.ra.n_rx > before) {
            /* REQ-9 b: the source is B's external address, not 10.0.0.3 */
            CHECK(sluice_addr_equal_ip(&w.ra.rx[w.ra.n_rx - 1].remote, PA("203.0.113.10")));
            CHECK(sluice_addr_equal(&w.ra.rx[w.ra.n_rx - 1].remote, &mb));
        }
        sim_nat_stats ns;
        CHECK_EQ(sim_nat_get_stats(w.net, w.realm, &ns), 0);
        CHECK(ns.hairpinned >= (hp ? 1u : 0u));
        CHECK_EQ(ns.mappings_created, ns.mappings);
        sim_stats st;
        sim_net_get_stats(w.net, &st);
        CHECK_EQ(st.dropped[SIM_DROP_LOSS], 0);
        CHECK_EQ(st.sent + st.duplicated,
                 st.delivered + st.dropped[SIM_DROP_FILTER] + st.dropped[SIM_DROP_HAIRPIN]);
        sim_net_free(w.net);
    }
}

static void test_nat_hairpin_off(void)
{
    sim_nat_config nc;
    sim_nat_config_init(&nc, SIM_NAT_FULL_CONE);
    for (int on = 0; on <= 1; on++) {
        nc.hairpinning = on;
        struct nat_world w;
        world_init(&w, &nc, 7);
        sluice_addr m1 = probe(&w, w.a, &w.ra, "10.0.0.2:5000", "192.0.2.1:3478");
        CHECK_EQ(reaches(&w, w.b, "10.0.0.3:6000", &m1, &w.ra), on);
        sim_stats st;
        CHECK_EQ(sim_host_get_stats(w.net, w.b, &st), 0);
        CHECK_EQ(st.dropped[SIM_DROP_HAIRPIN], on ? 0 : 1);
        /* a host on the same LAN is reached directly, without the NAT */
        CHECK(reaches(&w, w.b, "10.0.0.3:6000", PA("10.0.0.2:5000"), &w.ra));
        CHECK(sluice_addr_equal(&w.ra.rx[w.ra.n_rx - 1].remote, PA("10.0.0.3:6000")));
        sim_net_free(w.net);
    }
}

/* RFC 4787 §4.3: mappings expire after the idle timeout; outbound traffic
 * refreshes them (REQ-6), inbound traffic does not (by default). */
static void test_nat_expiry(void)
{
    sim_nat_type types[] = {SIM_NAT_PORT_RESTRICTED, SIM_NAT_SYMMETRIC};
    for (size_t i = 0; i < 2; i++) {
        sim_nat_config nc;
        sim_nat_config_init(&nc, types[i]);
        nc.mapping_timeout_us = 30 * S;
        struct nat_world w;
        world_init(&w, &nc, 21);
        sluice_addr m1 = probe(&w, w.a, &w.ra, "10.0.0.2:5000", "192.0.2.1:3478");
        /* inbound traffic for 50 s does not keep it alive without outbound */
        for (int k = 0; k < 2; k++) {
            run_for(w.net, 10 * S);
            CHECK(reaches(&w, w.s1, "192.0.2.1:3478", &m1, &w.ra));
        }
        run_for(w.net, 10 * S);
        CHECK(!reaches(&w, w.s1, "192.0.2.1:3478", &m1, &w.ra));
        CHECK_EQ(
            sim_nat_mapping_lookup(w.net, w.realm, PA("10.0.0.2:5000"), PA("192.0.2.1:3478"), NULL),
            0);
        sim_nat_stats ns;
        sim_nat_get_stats(w.net, w.realm, &ns);
        CHECK_EQ(ns.mappings_expired, 1);
        CHECK_EQ(ns.mappings, 0);
        /* keepalives every 20 s keep a new mapping for 2 minutes */
        sluice_addr m2 = probe(&w, w.a, &w.ra, "10.0.0.2:5000", "192.0.2.1:3478");
        CHECK_EQ(m2.family, SLUICE_AF_INET);
        for (int k = 0; k < 6; k++) {
            run_for(w.net, 20 * S);
            CHECK_EQ(send_str(w.net, w.a, "10.0.0.2:5000", "192.0.2.1:3478", "keepalive"), 0);
        }
        run_for(w.net, 29 * S);
        CHECK(reaches(&w, w.s1, "192.0.2.1:3478", &m2, &w.ra));
        run_for(w.net, 2 * S);
        CHECK(!reaches(&w, w.s1, "192.0.2.1:3478", &m2, &w.ra));
        sim_nat_get_stats(w.net, w.realm, &ns);
        CHECK_EQ(ns.mappings_expired, 2);
        CHECK_EQ(ns.mappings_created, 2);
        /* a NAT reboot forgets a live mapping at once */
        sluice_addr m3 = probe(&w, w.a, &w.ra, "10.0.0.2:5000", "192.0.2.1:3478");
        CHECK_EQ(sim_nat_flush(w.net, w.realm), 1);
        CHECK(!reaches(&w, w.s1, "192.0.2.1:3478", &m3, &w.ra));
        CHECK_EQ(sim_nat_flush(w.net, SIM_REALM_INTERNET), SLUICE_ERR_INVALID);
        sim_net_free(w.net);
    }
}

static void test_nat_ports_and_nesting(void)
{
    /* port preservation keeps x when free; a second internal host asking
     * for the same port gets another one */
    sim_nat_config nc;
    sim_nat_config_init(&nc, SIM_NAT_PORT_RESTRICTED);
    nc.port_preservation = true;
    struct nat_world w;
    world_init(&w, &nc, 3);
    sluice_addr ma = probe(&w, w.a, &w.ra, "10.0.0.2:5000", "192.0.2.1:3478");
    sluice_addr mb = probe(&w, w.b, &w.rb, "10.0.0.3:5000", "192.0.2.1:3478");
    CHECK_EQ(ma.port, 5000);
    CHECK(mb.port != 5000 && mb.port >= 1024);

    /* a NAT inside the NAT realm (carrier-grade below a home router): the
     * internet sees the outer public address */
    sim_nat_config inner;
    sim_nat_config_init(&inner, SIM_NAT_FULL_CONE);
    sluice_addr ipub = A("10.0.0.100");
    int r2 = sim_nat_add(w.net, w.realm, &ipub, 1, &inner);
    CHECK_EQ(r2, 2);
    CHECK_EQ(sim_realm_parent(w.net, r2), w.realm);
    int c = add_host(w.net, "c", r2, "192.168.1.2");
    struct rec rc;
    rec_init(&rc, w.net, c);
    sluice_addr mc = probe(&w, c, &rc, "192.168.1.2:7000", "192.0.2.1:3478");
    CHECK(sluice_addr_equal_ip(&mc, PA("203.0.113.10")));
    /* A, in the middle realm, reaches C through the inner NAT's public
     * address once C has opened it (full cone inside, so any source) */
    sluice_addr c_mid;
    CHECK_EQ(
        sim_nat_mapping_lookup(w.net, r2, PA("192.168.1.2:7000"), PA("192.0.2.1:3478"), &c_mid), 1);
    CHECK(sluice_addr_equal_ip(&c_mid, &ipub));
    CHECK(reaches(&w, w.a, "10.0.0.2:5000", &c_mid, &rc));
    /* and a NAT realm address is not reachable from the internet */
    CHECK(!reaches(&w, w.s1, "192.0.2.1:3478", PA("10.0.0.2:5000"), &w.ra));
    sim_stats st;
    sim_host_get_stats(w.net, w.s1, &st);
    CHECK_EQ(st.dropped[SIM_DROP_NO_ROUTE], 1);
    sim_net_free(w.net);
}

/* Dual stack: IPv4 behind a NAT, IPv6 global on the internet realm. */
static void test_dual_stack(void)
{
    sim_nat_config nc;
    sim_nat_config_init(&nc, SIM_NAT_SYMMETRIC);
    struct nat_world w;
    world_init(&w, &nc, 5);
    sluice_addr v6 = A("2001:db8:1::2"), s6 = A("2001:db8::1");
    CHECK_EQ(sim_host_add_addr(w.net, w.a, SIM_REALM_INTERNET, &v6), 0);
    CHECK_EQ(sim_host_add_addr(w.net, w.s1, SIM_REALM_INTERNET, &s6), 0);
    sluice_addr m6 = probe(&w, w.a, &w.ra, "[2001:db8:1::2]:5000", "[2001:db8::1]:3478");
    CHECK(sluice_addr_equal(&m6, PA("[2001:db8:1::2]:5000"))); /* no translation */
    sluice_addr m4 = probe(&w, w.a, &w.ra, "10.0.0.2:5000", "192.0.2.1:3478");
    CHECK(sluice_addr_equal_ip(&m4, PA("203.0.113.10")));
    /* the global IPv6 address takes unsolicited traffic (no NAT, no filter) */
    CHECK_EQ(sim_send(w.net, w.s3, sim_now(w.net), PA("198.51.100.3:1"), PA("[2001:db8:1::2]:5000"),
                      (const uint8_t *)"x", 1),
             SLUICE_ERR_INVALID); /* mixed families */
    sluice_addr s3v6 = A("2001:db8::3");
    CHECK_EQ(sim_host_add_addr(w.net, w.s3, SIM_REALM_INTERNET, &s3v6), 0);
    CHECK(reaches(&w, w.s3, "[2001:db8::3]:1", PA("[2001:db8:1::2]:5000"), &w.ra));
    int realms[4];
    sluice_addr addrs[4];
    CHECK_EQ(sim_host_addrs(w.net, w.a, addrs, realms, 4), 2);
    CHECK_EQ(realms[0], w.realm);
    CHECK_EQ(realms[1], SIM_REALM_INTERNET);
    sim_net_free(w.net);
}

/* ------------------------------------------------------------------------ */
/* Links */

static void send_seq(sim_net *net, int host, const char *from, const char *to, uint32_t seq,
                     uint64_t at)
{
    sluice_addr f = A(from), t = A(to);
    CHECK_EQ(sim_send(net, host, at, &f, &t, (const uint8_t *)&seq, 4), 0);
}

/* Two internet hosts: tx sends numbered datagrams, rx records them. */
struct pair {
    sim_net *net;
    int tx, rx;
    struct rec r;
};

static void pair_init(struct pair *p, uint64_t seed)
{
    p->net = sim_net_new(seed);
    p->tx = add_host(p->net, "tx", 0, "192.0.2.1");
    p->rx = add_host(p->net, "rx", 0, "192.0.2.2");
    rec_init(&p->r, p->net, p->rx);
}

/* Set host's link, reset the recorder, send n datagrams numbered from
 * first, spacing_us apart, and run for a second after the last. */
static void pair_blast(struct pair *p, int host, const sim_link *l, uint32_t n, uint32_t first,
                       uint64_t spacing_us)
{
    CHECK_EQ(sim_host_set_link(p->net, host, l), 0);
    rec_init(&p->r, p->net, p->rx);
    for (uint32_t k = 0; k < n; k++)
        send_seq(p->net, p->tx, "192.0.2.1:1", "192.0.2.2:2", first + k,
                 sim_now(p->net) + k * spacing_us);
    run_for(p->net, n * spacing_us + 1 * S);
}

static void test_link_loss(void)
{
    struct pair p;
    pair_init(&p, 42);
    sim_link l;
    sim_link_init(&l);
    l.loss = 0.2;
    size_t received = 0;
    /* 10 batches of 1000: the queue holds 4096 */
    for (int batch = 0; batch < 10; batch++) {
        pair_blast(&p, p.tx, &l, 1000, (uint32_t)batch * 1000, 10);
        CHECK_EQ(p.r.out_of_order, 0); /* no jitter, no reordering */
        received += p.r.n_total;
    }
    sim_stats st;
    sim_host_get_stats(p.net, p.tx, &st);
    CHECK_EQ(st.sent, 10000);
    /* binomial(10000, 0.2): sd 40, so +-300 is 7.5 sd */
    CHECK(st.dropped[SIM_DROP_LOSS] > 1700 && st.dropped[SIM_DROP_LOSS] < 2300);
    CHECK_EQ(received + st.dropped[SIM_DROP_LOSS], 10000);
    sim_net_free(p.net);
}

static void test_link_dup_reorder(void)
{
    struct pair p;
    pair_init(&p, 43);
    sim_link l;
    sim_link_init(&l);
    l.duplicate = 0.1;
    pair_blast(&p, p.rx, &l, 1000, 0, 100);
    sim_stats st, rs;
    sim_net_get_stats(p.net, &st);
    sim_host_get_stats(p.net, p.rx, &rs);
    CHECK(rs.duplicated > 60 && rs.duplicated < 140);
    CHECK_EQ(p.r.n_total, 1000 + rs.duplicated);
    CHECK_EQ(st.delivered, st.sent + st.duplicated);

    /* reordering: 10% held back 20 ms while others go out every 1 ms */
    sim_link_init(&l);
    CHECK_EQ(sim_host_set_link(p.net, p.rx, &l), 0);
    l.reorder = 0.1;
    l.reorder_delay_us = 20 * MS;
    pair_blast(&p, p.tx, &l, 500, 1, 1 * MS);
    sim_host_get_stats(p.net, p.tx, &st);
    CHECK(st.reordered > 20 && st.reordered < 90);
    CHECK_EQ(p.r.n_total, 500);
    CHECK(p.r.out_of_order >= st.reordered / 2);

    /* jitter alone reorders datagrams closer than the jitter */
    sim_link_init(&l);
    l.jitter_us = 5 * MS;
    pair_blast(&p, p.tx, &l, 200, 1, 500);
    CHECK_EQ(p.r.n_total, 200);
    CHECK(p.r.out_of_order > 0);
    sim_net_free(p.net);
}

/* A busy scenario with every random feature; returns its digests. */
static uint64_t line_hash;
static size_t line_count;
static void hash_line(void *ctx, const char *line)
{
    (void)ctx;
    for (const char *p = line; *p; p++)
        line_hash = (line_hash ^ (uint8_t)*p) * 0x100000001b3ull;
    line_hash = (line_hash ^ '\n') * 0x100000001b3ull;
    line_count++;
}

static uint64_t replay_run(uint64_t seed, uint64_t *lines)
{
    sim_nat_config nc;
    sim_nat_config_init(&nc, SIM_NAT_SYMMETRIC);
    struct nat_world w;
    world_init(&w, &nc, seed);
    line_hash = 0xcbf29ce484222325ull;
    line_count = 0;
    sim_set_trace(w.net, hash_line, NULL);
    sim_link l;
    sim_link_init(&l);
    l.jitter_us = 3 * MS;
    l.loss = 0.1;
    l.duplicate = 0.05;
    l.reorder = 0.05;
    l.reorder_delay_us = 10 * MS;
    sim_host_set_link(w.net, w.a, &l);
    sim_host_set_link(w.net, w.s1, &l);
    for (uint32_t k = 0; k < 300; k++) {
        send_seq(w.net, w.a, "10.0.0.2:5000", k % 2 ? "192.0.2.1:3478" : "192.0.2.2:3478", k,
                 sim_now(w.net) + k * MS);
        send_seq(w.net, w.b, "10.0.0.3:5000", "192.0.2.1:3478", k, sim_now(w.net) + k * MS);
    }
    run_for(w.net, 2 * S);
    *lines = line_hash;
    CHECK(line_count > 1000);
    uint64_t h = sim_trace_hash(w.net);
    sim_net_free(w.net);
    return h;
}

static void test_replay(void)
{
    uint64_t l1, l2, l3;
    uint64_t h1 = replay_run(1234, &l1);
    uint64_t h2 = replay_run(1234, &l2);
    uint64_t h3 = replay_run(1235, &l3);
    CHECK(h1 == h2);
    CHECK(l1 == l2);
    CHECK(h1 != h3);
    CHECK(l1 != l3);
}

/* ------------------------------------------------------------------------ */
/* Glue between the simulator and one sans-IO object with one local socket:
 * the object's own input, timeout, deadline and drain (transmits, events). */

struct core_ep {
    sim_net *net;
    int host;
    sluice_addr local;
    void (*feed)(struct core_ep *e, uint64_t now, const sluice_addr *remote, const uint8_t *data,
                 size_t len);
    void (*tick)(struct core_ep *e, uint64_t now);
    uint64_t (*deadline)(const struct core_ep *e);
    void (*flush)(struct core_ep *e, uint64_t now);
};

static void core_deliver(void *ctx, sim_net *net, uint64_t now, const sluice_addr *local,
                         const sluice_addr *remote, const uint8_t *data, size_t len)
{
    struct core_ep *e = ctx;
    (void)net;
    (void)local;
    e->feed(e, now, remote, data, len);
    e->flush(e, now);
}

static void core_timeout(void *ctx, sim_net *net, uint64_t now)
{
    struct core_ep *e = ctx;
    (void)net;
    e->tick(e, now);
    e->flush(e, now);
}

static uint64_t core_next(void *ctx)
{
    struct core_ep *e = ctx;
    return e->deadline(e);
}

static const sim_endpoint_ops core_ops = {
    .deliver = core_deliver, .timeout = core_timeout, .next_timeout = core_next};

/* feed/tick/deadline of struct EP (a core_ep first, the object in c) for
 * the sluice object whose functions start with PREFIX. */
#define CORE_GLUE(EP, PREFIX)                                                                      \
    static void EP##_feed(struct core_ep *b, uint64_t now, const sluice_addr *remote,              \
                          const uint8_t *data, size_t len)                                         \
    {                                                                                              \
        PREFIX##_handle_datagram(((struct EP *)b)->c, now, remote, data, len);                     \
    }                                                                                              \
    static void EP##_tick(struct core_ep *b, uint64_t now)                                         \
    {                                                                                              \
        PREFIX##_handle_timeout(((struct EP *)b)->c, now);                                         \
    }                                                                                              \
    static uint64_t EP##_deadline(const struct core_ep *b)                                         \
    {                                                                                              \
        return PREFIX##_next_timeout(((const struct EP *)b)->c);                                   \
    }                                                                                              \
    static void EP##_transmit(struct core_ep *b, uint64_t now)                                     \
    {                                                                                              \
        uint8_t buf[2048];                                                                         \
        sluice_transmit tx;                                                                        \
        int n;                                                                                     \
        while ((n = PREFIX##_poll_transmit(((struct EP *)b)->c, now, buf, sizeof buf, &tx)) > 0)   \
            sim_send(b->net, b->host, now, &b->local, &tx.destination, buf, (size_t)n);            \
    }

/* ------------------------------------------------------------------------ */
/* sluice's STUN client behind a port-restricted NAT, the sim STUN server */

struct stun_ep {
    struct core_ep base; /* first: the endpoint context */
    sluice_stun_client *c;
    bool done;
    sluice_stun_event ev;
    sluice_addr mapped;
};

CORE_GLUE(stun_ep, sluice_stun_client)

static void stun_ep_flush(struct core_ep *b, uint64_t now)
{
    struct stun_ep *e = (struct stun_ep *)b;
    stun_ep_transmit(b, now);
    while (sluice_stun_client_poll_event(e->c, &e->ev)) {
        e->done = true;
        sluice_stun_msg m;
        if (e->ev.type == SLUICE_STUN_EVENT_SUCCESS &&
            sluice_stun_parse(&m, e->ev.response, e->ev.response_len) == 0)
            sluice_stun_get_xor_address(&m, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &e->mapped);
    }
}

static bool stun_done(void *ctx)
{
    return ((struct stun_ep *)ctx)->done;
}

static void test_stun_through_nat(void)
{
    sim_net *net = sim_net_new(77);
    sim_nat_config nc;
    sim_nat_config_init(&nc, SIM_NAT_PORT_RESTRICTED);
    sluice_addr pub = A("203.0.113.20");
    int realm = sim_nat_add(net, 0, &pub, 1, &nc);
    int srv = add_host(net, "stun", 0, "192.0.2.1");
    sluice_addr listen = A("192.0.2.1:3478");
    CHECK_EQ(sim_stun_server_add(net, srv, &listen, 1), 0);
    CHECK(sim_turn_server_core(net, srv) != NULL);
    int h = add_host(net, "client", realm, "10.0.0.2");

    struct stun_ep e = {.base = {net, h, A("10.0.0.2:5000"), stun_ep_feed, stun_ep_tick,
                                 stun_ep_deadline, stun_ep_flush}};
    sluice_stun_client_config cc;
    sluice_stun_client_config_init(&cc);
    cc.rng = sim_host_rng(net, h);
    e.c = sluice_stun_client_new(&cc);
    CHECK(e.c != NULL);
    CHECK_EQ(sim_host_set_endpoint(net, h, &core_ops, &e), 0);

    uint8_t req[64];
    sluice_stun_writer w;
    sluice_stun_writer_init(&w, req, sizeof req,
                            sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST), NULL);
    int len = sluice_stun_writer_result(&w);
    CHECK(len == SLUICE_STUN_HEADER_LEN);
    sluice_stun_request r = {.server = listen, .transport = SLUICE_TRANSPORT_UDP};
    CHECK_EQ(sluice_stun_client_send(e.c, sim_now(net), req, (size_t)len, &r, NULL), 0);
    stun_ep_flush(&e.base, sim_now(net));
    CHECK_EQ(sim_run(net, 10 * S, stun_done, &e), 1);
    CHECK_EQ(e.ev.type, SLUICE_STUN_EVENT_SUCCESS);
    sluice_addr ext;
    CHECK_EQ(sim_nat_mapping_lookup(net, realm, &e.base.local, &listen, &ext), 1);
    CHECK(sluice_addr_equal(&e.mapped, &ext));
    CHECK(sluice_addr_equal_ip(&e.mapped, &pub));
    CHECK(sim_now(net) >= 20 * MS && sim_now(net) < 30 * MS); /* one round trip */

    /* with 50% loss each way, retransmissions still get an answer */
    sim_link l;
    sim_link_init(&l);
    l.loss = 0.5;
    sim_host_set_link(net, h, &l);
    e.done = false;
    CHECK_EQ(sluice_stun_client_send(e.c, sim_now(net), req, (size_t)len, &r, NULL), 0);
    stun_ep_flush(&e.base, sim_now(net));
    CHECK_EQ(sim_run(net, sim_now(net) + 60 * S, stun_done, &e), 1);
    CHECK(e.ev.type == SLUICE_STUN_EVENT_SUCCESS || e.ev.type == SLUICE_STUN_EVENT_TIMEOUT);
    sim_stats st;
    sim_host_get_stats(net, h, &st);
    CHECK(st.sent >= 2);

    sim_host_set_endpoint(net, h, NULL, NULL);
    sluice_stun_client_free(e.c);
    sim_net_free(net);
}

/* ------------------------------------------------------------------------ */
/* sluice's TURN client behind a symmetric NAT, the sim TURN server, a
 * public peer that echoes */

struct turn_ep {
    struct core_ep base; /* first: the endpoint context */
    sluice_turn_client *c;
    sluice_turn_event evs[16];
    size_t n_evs;
    uint8_t got[64];
    size_t got_len;
    sluice_addr got_from;
    size_t n_got;
};

CORE_GLUE(turn_ep, sluice_turn_client)

static void turn_ep_flush(struct core_ep *b, uint64_t now)
{
    struct turn_ep *e = (struct turn_ep *)b;
    turn_ep_transmit(b, now);
    sluice_turn_event ev;
    while (sluice_turn_client_poll_event(e->c, &ev))
        if (e->n_evs < 16)
            e->evs[e->n_evs++] = ev;
    size_t len;
    while (sluice_turn_client_recv(e->c, &e->got_from, e->got, sizeof e->got, &len) == 1) {
        e->got_len = len;
        e->n_got++;
    }
}

static int want_event;
static bool turn_has_event(void *ctx)
{
    struct turn_ep *e = ctx;
    for (size_t i = 0; i < e->n_evs; i++)
        if ((int)e->evs[i].type == want_event)
            return true;
    return false;
}

static const sluice_turn_event *turn_event(struct turn_ep *e, int type)
{
    for (size_t i = 0; i < e->n_evs; i++)
        if ((int)e->evs[i].type == type)
            return &e->evs[i];
    return NULL;
}

static bool turn_got(void *ctx)
{
    return ((struct turn_ep *)ctx)->n_got > 0;
}

static void test_turn_through_nat(void)
{
    sim_net *net = sim_net_new(99);
    sim_nat_config nc;
    sim_nat_config_init(&nc, SIM_NAT_SYMMETRIC);
    /* RFC 4787 REQ-5's recommended 5 minutes: longer than the client's
     * 4-minute refresh period (with the 2-minute minimum the idle client
     * would lose its mapping, and so its allocation, to a 437). */
    nc.mapping_timeout_us = 300 * S;
    sluice_addr pub = A("203.0.113.30");
    int realm = sim_nat_add(net, 0, &pub, 1, &nc);
    int srv = add_host(net, "turn", 0, "192.0.2.50");
    sluice_addr listen = A("192.0.2.50:3478"), relay_ip = A("192.0.2.50");
    sluice_turn_server_config sc;
    sim_turn_server_config_init(&sc, &relay_ip, NULL);
    sluice_turn_server_user user = {.name = "alice", .password = "secret"};
    sc.users = &user;
    sc.n_users = 1;
    CHECK_EQ(sim_turn_server_add(net, srv, &listen, 1, &sc), 0);
    int peer = add_host(net, "peer", 0, "198.51.100.7");
    struct rec pr;
    rec_init(&pr, net, peer);
    pr.echo = true;
    int peer2 = add_host(net, "peer2", 0, "198.51.100.8");
    struct rec pr2;
    rec_init(&pr2, net, peer2);
    pr2.echo = true;
    int h = add_host(net, "client", realm, "10.1.0.2");

    struct turn_ep e = {.base = {net, h, A("10.1.0.2:40000"), turn_ep_feed, turn_ep_tick,
                                 turn_ep_deadline, turn_ep_flush}};
    sluice_turn_client_config cc;
    sluice_turn_client_config_init(&cc);
    cc.server = listen;
    cc.username = "alice";
    cc.password = "secret";
    cc.rng = sim_host_rng(net, h);
    int err = 0;
    e.c = sluice_turn_client_new(&cc, &err);
    CHECK(e.c != NULL);
    CHECK_EQ(sim_host_set_endpoint(net, h, &core_ops, &e), 0);

    CHECK_EQ(sluice_turn_client_allocate(e.c, sim_now(net)), 0);
    turn_ep_flush(&e.base, sim_now(net));
    want_event = SLUICE_TURN_EVENT_ALLOCATED;
    CHECK_EQ(sim_run(net, 10 * S, turn_has_event, &e), 1);
    const sluice_turn_event *ev = turn_event(&e, SLUICE_TURN_EVENT_ALLOCATED);
    CHECK(ev != NULL);
    if (!ev)
        goto out;
    CHECK_EQ(ev->n_relayed, 1);
    CHECK(sluice_addr_equal_ip(&ev->relayed[0], &relay_ip));
    sluice_addr ext;
    CHECK_EQ(sim_nat_mapping_lookup(net, realm, &e.base.local, &listen, &ext), 1);
    CHECK(sluice_addr_equal(&ev->mapped, &ext));
    sluice_addr relayed = ev->relayed[0];

    /* a channel to the peer; data both ways (ChannelData) */
    sluice_addr pa = A("198.51.100.7:7000");
    CHECK(sluice_turn_client_bind_channel(e.c, sim_now(net), &pa) >= 0x4000);
    turn_ep_flush(&e.base, sim_now(net));
    want_event = SLUICE_TURN_EVENT_CHANNEL_BOUND;
    CHECK_EQ(sim_run(net, sim_now(net) + 10 * S, turn_has_event, &e), 1);
    uint8_t out[256];
    sluice_transmit tx;
    int n = sluice_turn_client_send(e.c, sim_now(net), &pa, (const uint8_t *)"hello peer", 10, out,
                                    sizeof out, &tx);
    CHECK(n == 14); /* 4-byte ChannelData header */
    CHECK_EQ(sim_send(net, h, sim_now(net), &e.base.local, &tx.destination, out, (size_t)n), 0);
    CHECK_EQ(sim_run(net, sim_now(net) + 5 * S, turn_got, &e), 1);
    CHECK_EQ(pr.n_total, 1);
    CHECK(sluice_addr_equal(&pr.rx[0].remote, &relayed)); /* the peer sees the relay */
    CHECK(pr.n_rx && pr.rx[0].len == 10 && !memcmp(pr.rx[0].data, "hello peer", 10));
    CHECK_EQ(e.n_got, 1);
    CHECK(sluice_addr_equal(&e.got_from, &pa));
    CHECK(e.got_len == 10 && !memcmp(e.got, "hello peer", 10));

    /* a permission only: Send and Data indications */
    sluice_addr pb = A("198.51.100.8:7001");
    CHECK_EQ(sluice_turn_client_create_permission(e.c, sim_now(net), &pb), 0);
    turn_ep_flush(&e.base, sim_now(net));
    want_event = SLUICE_TURN_EVENT_PERMISSION_CREATED;
    CHECK_EQ(sim_run(net, sim_now(net) + 10 * S, turn_has_event, &e), 1);
    e.n_got = 0;
    n = sluice_turn_client_send(e.c, sim_now(net), &pb, (const uint8_t *)"hi two", 6, out,
                                sizeof out, &tx);
    CHECK(n > 36); /* a Send indication */
    CHECK_EQ(sim_send(net, h, sim_now(net), &e.base.local, &tx.destination, out, (size_t)n), 0);
    CHECK_EQ(sim_run(net, sim_now(net) + 5 * S, turn_got, &e), 1);
    CHECK(sluice_addr_equal(&e.got_from, &pb));
    CHECK(e.got_len == 6 && !memcmp(e.got, "hi two", 6));
    /* a peer without a permission is filtered by the relay, not the NAT */
    int stranger = add_host(net, "stranger", 0, "198.51.100.9");
    CHECK_EQ(sim_send(net, stranger, sim_now(net), PA("198.51.100.9:1"), &relayed,
                      (const uint8_t *)"x", 1),
             0);
    run_for(net, 1 * S);
    sluice_turn_server_stats ss;
    sluice_turn_server_get_stats(sim_turn_server_core(net, srv), &ss);
    CHECK_EQ(ss.dropped_no_permission, 1);
    CHECK_EQ(ss.allocations, 1);

    /* the allocation, permissions and channel survive 20 minutes of quiet
     * refreshes through the NAT (refresh traffic keeps the mapping) */
    run_for(net, 20 * 60 * S);
    CHECK(turn_event(&e, SLUICE_TURN_EVENT_LOST) == NULL);
    CHECK(turn_event(&e, SLUICE_TURN_EVENT_REFRESHED) != NULL);
    e.n_got = 0;
    n = sluice_turn_client_send(e.c, sim_now(net), &pa, (const uint8_t *)"later", 5, out,
                                sizeof out, &tx);
    CHECK_EQ(sim_send(net, h, sim_now(net), &e.base.local, &tx.destination, out, (size_t)n), 0);
    CHECK_EQ(sim_run(net, sim_now(net) + 5 * S, turn_got, &e), 1);
out:
    sim_host_set_endpoint(net, h, NULL, NULL);
    sluice_turn_client_free(e.c);
    sim_net_free(net);
}

/* ------------------------------------------------------------------------ */
/* Bounds */

static uint64_t spin_next(void *ctx)
{
    (void)ctx;
    return 0; /* always due: a livelocked endpoint */
}

static void spin_timeout(void *ctx, sim_net *net, uint64_t now)
{
    (void)ctx;
    (void)net;
    (void)now;
}

static void test_bounds(void)
{
    sim_net_config cfg;
    sim_net_config_init(&cfg, 1);
    cfg.max_in_flight = 8;
    cfg.max_steps = 1000;
    cfg.max_hosts = 4;
    cfg.max_datagram = 100;
    sim_net *net = sim_net_new_config(&cfg);
    CHECK(net != NULL);
    int a = add_host(net, "a", 0, "192.0.2.1");
    int b = add_host(net, "b", 0, "192.0.2.2");
    struct rec rb;
    rec_init(&rb, net, b);

    /* queue overflow: 8 in flight, the rest refused and counted */
    int full = 0;
    for (int k = 0; k < 20; k++)
        if (send_str(net, a, "192.0.2.1:1", "192.0.2.2:2", "x") == SLUICE_ERR_FULL)
            full++;
    CHECK_EQ(full, 12);
    sim_stats st;
    sim_net_get_stats(net, &st);
    CHECK_EQ(st.dropped[SIM_DROP_QUEUE_FULL], 12);
    run_for(net, 1 * S);
    CHECK_EQ(rb.n_total, 8);

    /* bad source addresses and sizes */
    CHECK_EQ(send_str(net, a, "192.0.2.2:1", "192.0.2.2:2", "x"), SIM_ERR_NOT_LOCAL);
    CHECK_EQ(send_str(net, a, "192.0.2.99:1", "192.0.2.2:2", "x"), SIM_ERR_NOT_LOCAL);
    uint8_t big[101] = {0};
    sluice_addr f = A("192.0.2.1:1"), t = A("192.0.2.2:2");
    CHECK_EQ(sim_send(net, a, sim_now(net), &f, &t, big, sizeof big), SLUICE_ERR_NOSPACE);
    CHECK_EQ(sim_send(net, a, sim_now(net) - 1, &f, &t, big, 1), SLUICE_ERR_INVALID);
    CHECK_EQ(sim_send(net, 9, sim_now(net), &f, &t, big, 1), SLUICE_ERR_INVALID);
    CHECK(strlen(sim_strerror(SIM_ERR_NOT_LOCAL)) > 0);

    /* tables: hosts, duplicate addresses, NAT addresses */
    add_host(net, "c", 0, "192.0.2.3");
    int d = sim_host_add(net, "d");
    CHECK(d >= 0);
    CHECK_EQ(sim_host_add(net, "e"), SLUICE_ERR_FULL);
    CHECK_EQ(sim_host_add_addr(net, d, 0, PA("192.0.2.1")), SLUICE_ERR_INVALID);
    CHECK_EQ(sim_host_add_addr(net, d, 5, PA("192.0.2.9")), SLUICE_ERR_INVALID);
    sim_nat_config nc;
    sim_nat_config_init(&nc, SIM_NAT_SYMMETRIC);
    nc.max_mappings = 2;
    CHECK_EQ(sim_nat_add(net, 0, PA("192.0.2.2"), 1, &nc), SLUICE_ERR_INVALID);
    CHECK_EQ(sim_nat_add(net, 0, PA("2001:db8::1"), 1, &nc), SLUICE_ERR_INVALID);
    int realm = sim_nat_add(net, 0, PA("203.0.113.1"), 1, &nc);
    CHECK(realm > 0);
    CHECK_EQ(sim_host_add_addr(net, d, 0, PA("203.0.113.1")), SLUICE_ERR_INVALID);
    CHECK_EQ(sim_host_add_addr(net, d, realm, PA("10.0.0.2")), 0);
    /* the mapping table holds 2: the third destination is dropped */
    CHECK_EQ(send_str(net, d, "10.0.0.2:1", "192.0.2.1:1", "x"), 0);
    CHECK_EQ(send_str(net, d, "10.0.0.2:1", "192.0.2.2:1", "x"), 0);
    CHECK_EQ(send_str(net, d, "10.0.0.2:1", "192.0.2.3:1", "x"), 0);
    run_for(net, 1 * S);
    sim_nat_stats ns;
    sim_nat_get_stats(net, realm, &ns);
    CHECK_EQ(ns.table_full, 1);
    sim_host_get_stats(net, d, &st);
    CHECK_EQ(st.dropped[SIM_DROP_NAT_FULL], 1);
    CHECK_EQ(st.dropped[SIM_DROP_NO_ENDPOINT], 1); /* a has no endpoint */

    /* step cap: an endpoint that is always due */
    static const sim_endpoint_ops spin = {
        .deliver = rec_deliver, .timeout = spin_timeout, .next_timeout = spin_next};
    struct rec dummy;
    memset(&dummy, 0, sizeof dummy);
    CHECK_EQ(sim_host_set_endpoint(net, a, &spin, &dummy), 0);
    uint64_t t0 = sim_now(net);
    CHECK_EQ(sim_run_until(net, t0 + 1 * S), SIM_ERR_STEP_LIMIT);
    CHECK_EQ(sim_now(net), t0);
    CHECK_EQ(sim_host_set_endpoint(net, a, NULL, NULL), 0);

    /* ... and two endpoints echoing each other on zero-latency links */
    struct rec ra;
    rec_init(&ra, net, a);
    ra.echo = rb.echo = true;
    sim_link l;
    sim_link_init(&l);
    l.latency_us = 0;
    sim_host_set_link(net, a, &l);
    sim_host_set_link(net, b, &l);
    CHECK_EQ(send_str(net, a, "192.0.2.1:1", "192.0.2.2:2", "ping"), 0);
    CHECK_EQ(sim_run_until(net, sim_now(net) + 1 * S), SIM_ERR_STEP_LIMIT);
    sim_net_free(net);

    /* bad configurations */
    cfg.max_in_flight = 0;
    CHECK(sim_net_new_config(&cfg) == NULL);
}

int main(void)
{
    RUN(test_nat_presets);
    RUN(test_nat_hairpin_off);
    RUN(test_nat_expiry);
    RUN(test_nat_ports_and_nesting);
    RUN(test_dual_stack);
    RUN(test_link_loss);
    RUN(test_link_dup_reorder);
    RUN(test_replay);
    RUN(test_stun_through_nat);
    RUN(test_turn_through_nat);
    RUN(test_bounds);
    return TEST_DONE();
}
