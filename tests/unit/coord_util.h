/* SPDX-License-Identifier: MIT */
/* Coordinator tests: a server machine and client machines wired together
 * in memory on virtual time (real TLS 1.3, or plaintext frames), every
 * event recorded; certificates (self-signed identities, a client CA, odd
 * validity periods) made at run time with OpenSSL. */
#ifndef SLUICE_TEST_COORD_UTIL_H
#define SLUICE_TEST_COORD_UTIL_H

#include <stdbool.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/tls.h"
#include "coord/internal.h"
#include "sluice/sluice.h"
#include "test.h"
#include "test_cert.h"

#define SEC 1000000ull
/* The wall clock the tests give the coordinator (2023-11-14). */
#define T_UNIX 1700000000ull
#define DAY 86400

/* ------------------------------------------------------------------------ */
/* Files */

static char cu_dir[64];
static char cu_coord_cert[128], cu_coord_key[128], cu_other_cert[128], cu_other_key[128];
static char cu_ca_cert[128], cu_ca_key[128];
static uint8_t cu_coord_fp[32];
static int cu_files;

static inline const char *cu_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", cu_dir, name);
    return buf;
}

static inline bool cu_set_time(ASN1_TIME *t, uint64_t unix_s)
{
    return ASN1_TIME_set(t, (time_t)unix_s) != NULL;
}

/* A certificate with CN cn (NULL: none) and dNSName san (NULL: none),
 * valid [nb, na] (unix seconds), signed by (ca_cert, ca_key) or self-signed
 * when ca_cert is NULL; is_ca makes a CA. Writes cert/key PEM files. */
static inline bool cu_make_cert(const char *cert_path, const char *key_path, const char *cn,
                                const char *san, uint64_t nb, uint64_t na, const char *ca_cert,
                                const char *ca_key, bool is_ca)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *ikey = NULL;
    X509 *x = X509_new(), *issuer = NULL;
    static long serial = 100;
    char buf[160];
    bool ok = key && x;

    if (ca_cert) {
        FILE *f = fopen(ca_cert, "r");
        if (f) {
            issuer = PEM_read_X509(f, NULL, NULL, NULL);
            fclose(f);
        }
        f = fopen(ca_key, "r");
        if (f) {
            ikey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
            fclose(f);
        }
        ok = ok && issuer && ikey;
    }
    ok = ok && X509_set_version(x, X509_VERSION_3) == 1;
    ok = ok && ASN1_INTEGER_set(X509_get_serialNumber(x), serial++) == 1;
    ok = ok && cu_set_time(X509_getm_notBefore(x), nb) && cu_set_time(X509_getm_notAfter(x), na);
    ok = ok && X509_set_pubkey(x, key) == 1;
    if (ok && cn)
        ok = X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                        (const unsigned char *)cn, -1, -1, 0) == 1;
    if (ok && !cn)
        ok = X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "O", MBSTRING_ASC,
                                        (const unsigned char *)"sluice tests", -1, -1, 0) == 1;
    ok = ok && X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
                                              : X509_get_subject_name(x)) == 1;
    if (ok && san) {
        snprintf(buf, sizeof buf, "DNS:%s", san);
        ok = add_ext(x, NID_subject_alt_name, buf);
    }
    if (ok && is_ca)
        ok = add_ext(x, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(x, NID_key_usage, "critical,keyCertSign,cRLSign");
    ok = ok && X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0;
    ok = ok && write_pem(cert_path, x, NULL) && write_pem(key_path, NULL, key);
    X509_free(x);
    X509_free(issuer);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ikey);
    return ok;
}

static inline bool cu_setup_files(void)
{
    snprintf(cu_dir, sizeof cu_dir, "/tmp/sluice-coord-XXXXXX");
    if (!mkdtemp(cu_dir))
        return false;
    cu_path(cu_coord_cert, sizeof cu_coord_cert, "coord.pem");
    cu_path(cu_coord_key, sizeof cu_coord_key, "coord-key.pem");
    cu_path(cu_other_cert, sizeof cu_other_cert, "other.pem");
    cu_path(cu_other_key, sizeof cu_other_key, "other-key.pem");
    cu_path(cu_ca_cert, sizeof cu_ca_cert, "ca.pem");
    cu_path(cu_ca_key, sizeof cu_ca_key, "ca-key.pem");
    return make_cert(cu_coord_cert, cu_coord_key, 1, cu_coord_fp) &&
           make_cert(cu_other_cert, cu_other_key, 2, NULL) &&
           cu_make_cert(cu_ca_cert, cu_ca_key, "sluice test client CA", NULL, T_UNIX - 365 * DAY,
                        T_UNIX + 3650 * DAY, NULL, NULL, true);
}

/* The identity files of client name (made on first use). */
static inline void cu_identity(const char *name, char *cert, char *key, size_t cap)
{
    char c[96], k[96];
    snprintf(c, sizeof c, "id-%s.pem", name);
    snprintf(k, sizeof k, "id-%s-key.pem", name);
    cu_path(cert, cap, c);
    cu_path(key, cap, k);
    if (access(cert, R_OK) != 0) {
        CHECK_EQ(sluice_coord_generate_identity(name, cert, key, NULL), 0);
        cu_files++;
    }
}

static inline void cu_remove_files(void)
{
    char cmd[128];
    /* Everything the tests made lives in this one directory. */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cu_dir);
    if (cu_dir[0] && system(cmd) != 0)
        fprintf(stderr, "# could not remove %s\n", cu_dir);
}

/* ------------------------------------------------------------------------ */
/* Recorded events */

typedef struct cu_ev {
    int type;
    uint64_t conn;
    uint32_t stream;
    int kind, code, err;
    bool by_peer;
    char name[128], label[128], sender[64], reason[300];
    uint8_t *data;
    size_t len;
    uint64_t count;
    bool has_fp;
    uint8_t fp[32];
    char turn_user[128], turn_pass[64], turn_uris[4][256];
    size_t n_uris;
    uint32_t ttl, max_message, window;
} cu_ev;

typedef struct cu_evs {
    cu_ev *v;
    size_t n, cap;
} cu_evs;

static inline cu_ev *cu_evs_add(cu_evs *e)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->v = realloc(e->v, e->cap * sizeof *e->v);
        if (!e->v)
            abort();
    }
    cu_ev *r = &e->v[e->n++];
    memset(r, 0, sizeof *r);
    return r;
}

static inline void cu_evs_clear(cu_evs *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i].data);
    e->n = 0;
}

static inline void cu_evs_free(cu_evs *e)
{
    cu_evs_clear(e);
    free(e->v);
    memset(e, 0, sizeof *e);
}

/* The i-th recorded event of type, or NULL. */
static inline cu_ev *cu_find(cu_evs *e, int type, size_t nth)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->v[i].type == type && nth-- == 0)
            return &e->v[i];
    return NULL;
}

static inline size_t cu_count(const cu_evs *e, int type)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n; i++)
        n += e->v[i].type == type;
    return n;
}

static inline void cu_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "(null)");
}

/* ------------------------------------------------------------------------ */
/* The world */

typedef struct cu_client {
    sluice_coord_client *c;
    uint64_t conn;
    bool up;        /* the "TCP connection" exists */
    bool no_poll;   /* do not take its events (a reader that does not read) */
    bool finished;  /* its terminal event was seen */
    cu_evs ev;
} cu_client;

typedef struct cu_world {
    sluice_coord_server *s;
    cu_client *cl;
    size_t n, cap;
    uint64_t now;
    size_t split;    /* deliver stream bytes in pieces of this size (0: whole) */
    bool plaintext;
    cu_evs sev;
    bool server_no_poll;
} cu_world;

static inline void cu_server_cfg(sluice_coord_server_config *cfg)
{
    sluice_coord_server_config_init(cfg);
    cfg->cert_file = cu_coord_cert;
    cfg->key_file = cu_coord_key;
    cfg->unix_time_s = T_UNIX;
}

static inline void cu_world_init(cu_world *w, const sluice_coord_server_config *cfg_in)
{
    sluice_coord_server_config cfg;
    int err = 1;

    memset(w, 0, sizeof *w);
    w->now = 1000 * SEC;
    if (cfg_in)
        cfg = *cfg_in;
    else
        cu_server_cfg(&cfg);
    w->s = sluice_coord_server_new(&cfg, &err);
    CHECK(w->s != NULL);
    CHECK_EQ(err, 0);
}

static inline void cu_client_cfg(sluice_coord_client_config *cfg, const char *name, char *cert,
                                 char *key, size_t cap)
{
    sluice_coord_client_config_init(cfg);
    cu_identity(name, cert, key, cap);
    cfg->name = name;
    cfg->cert_file = cert;
    cfg->key_file = key;
    cfg->server_name = "localhost";
    cfg->ca_file = cu_coord_cert;
}

static inline void cu_record_server(cu_world *w, const sluice_coord_server_event *ev);
static inline void cu_record_client(cu_client *k, const sluice_coord_event *ev);

/* Add a client with cfg (plaintext or TLS per the world) and connect it
 * (accept on the server, start). Returns its index. */
static inline size_t cu_add(cu_world *w, const sluice_coord_client_config *cfg)
{
    int err = 1;
    sluice_addr remote;

    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 8;
        w->cl = realloc(w->cl, w->cap * sizeof *w->cl);
        if (!w->cl)
            abort();
    }
    cu_client *k = &w->cl[w->n];
    memset(k, 0, sizeof *k);
    k->c = w->plaintext ? coord_client_new_plaintext(cfg, &err) : sluice_coord_client_new(cfg, &err);
    CHECK(k->c != NULL);
    CHECK_EQ(err, 0);
    sluice_addr_parse(&remote, "192.0.2.1", (uint16_t)(40000 + w->n));
    int r = w->plaintext ? coord_server_accept_plaintext(w->s, w->now, &remote, NULL, &k->conn)
                         : sluice_coord_server_accept(w->s, w->now, &remote, &k->conn);
    CHECK_EQ(r, 0);
    k->up = r == 0;
    if (k->c)
        CHECK_EQ(sluice_coord_client_start(k->c, w->now), 0);
    return w->n++;
}

static inline size_t cu_add_named(cu_world *w, const char *name)
{
    sluice_coord_client_config cfg;
    char cert[128], key[128];
    cu_client_cfg(&cfg, name, cert, key, sizeof cert);
    return cu_add(w, &cfg);
}

static inline cu_client *cu_by_conn(cu_world *w, uint64_t conn)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->cl[i].up && w->cl[i].conn == conn)
            return &w->cl[i];
    return NULL;
}

/* The connection went away (at both ends). */
static inline void cu_drop(cu_world *w, cu_client *k)
{
    if (!k->up)
        return;
    k->up = false;
    sluice_coord_server_connection_closed(w->s, w->now, k->conn);
    if (k->c)
        sluice_coord_client_connection_closed(k->c, w->now);
}

static inline void cu_feed_server(cu_world *w, cu_client *k, const uint8_t *b, size_t n)
{
    size_t step = w->split ? w->split : n;
    for (size_t off = 0; off < n; off += step) {
        size_t m = n - off < step ? n - off : step;
        int r = sluice_coord_server_handle_stream(w->s, w->now, k->conn, b + off, m);
        CHECK(r == 0 || r == SLUICE_ERR_NOT_FOUND);
    }
}

static inline void cu_feed_client(cu_world *w, cu_client *k, const uint8_t *b, size_t n)
{
    size_t step = w->split ? w->split : n;
    for (size_t off = 0; off < n && k->c; off += step) {
        size_t m = n - off < step ? n - off : step;
        sluice_coord_client_handle_stream(k->c, w->now, b + off, m);
    }
}

static inline void cu_drain_events(cu_world *w)
{
    sluice_coord_server_event sev;
    sluice_coord_event ev;

    while (!w->server_no_poll && sluice_coord_server_poll_event(w->s, &sev))
        cu_record_server(w, &sev);
    for (size_t i = 0; i < w->n; i++) {
        cu_client *k = &w->cl[i];
        while (k->c && !k->no_poll && sluice_coord_client_poll_event(k->c, &ev))
            cu_record_client(k, &ev);
    }
}

/* Carry bytes and events until nothing moves. */
static inline void cu_pump(cu_world *w)
{
    static uint8_t buf[70000];
    sluice_coord_transmit meta;

    for (int round = 0; round < 100000; round++) {
        bool moved = false;
        for (size_t i = 0; i < w->n; i++) {
            cu_client *k = &w->cl[i];
            int n;
            while (k->c && (n = sluice_coord_client_poll_transmit(k->c, w->now, buf, sizeof buf,
                                                                  &meta)) > 0) {
                moved = true;
                if (k->up)
                    cu_feed_server(w, k, buf, (size_t)n);
                if (meta.close)
                    cu_drop(w, k);
            }
        }
        int n;
        while ((n = sluice_coord_server_poll_transmit(w->s, w->now, buf, sizeof buf, &meta)) > 0) {
            cu_client *k = cu_by_conn(w, meta.conn);
            moved = true;
            if (k)
                cu_feed_client(w, k, buf, (size_t)n);
            if (meta.close && k)
                cu_drop(w, k);
        }
        size_t before = w->sev.n;
        size_t cbefore = 0, cafter = 0;
        for (size_t i = 0; i < w->n; i++)
            cbefore += w->cl[i].ev.n;
        cu_drain_events(w);
        for (size_t i = 0; i < w->n; i++)
            cafter += w->cl[i].ev.n;
        if (w->sev.n != before || cafter != cbefore)
            moved = true;
        if (!moved)
            return;
    }
    CHECK(!"cu_pump did not settle");
}

static inline uint64_t cu_next_deadline(cu_world *w)
{
    uint64_t t = sluice_coord_server_next_timeout(w->s);
    for (size_t i = 0; i < w->n; i++) {
        if (!w->cl[i].c)
            continue;
        uint64_t c = sluice_coord_client_next_timeout(w->cl[i].c);
        if (c < t)
            t = c;
    }
    return t;
}

/* Move virtual time to `until`, firing every deadline on the way. */
static inline void cu_advance_to(cu_world *w, uint64_t until)
{
    for (int i = 0; i < 100000; i++) {
        uint64_t t = cu_next_deadline(w);
        if (t > until)
            break;
        if (t > w->now)
            w->now = t;
        sluice_coord_server_handle_timeout(w->s, w->now);
        for (size_t j = 0; j < w->n; j++)
            if (w->cl[j].c)
                sluice_coord_client_handle_timeout(w->cl[j].c, w->now);
        cu_pump(w);
    }
    if (until > w->now)
        w->now = until;
    cu_pump(w);
}

static inline void cu_advance(cu_world *w, uint64_t dt)
{
    cu_advance_to(w, w->now + dt);
}

static inline void cu_world_free(cu_world *w)
{
    for (size_t i = 0; i < w->n; i++) {
        sluice_coord_client_free(w->cl[i].c);
        cu_evs_free(&w->cl[i].ev);
    }
    free(w->cl);
    sluice_coord_server_free(w->s);
    cu_evs_free(&w->sev);
    memset(w, 0, sizeof *w);
}

static inline void cu_record_server(cu_world *w, const sluice_coord_server_event *ev)
{
    cu_ev *r = cu_evs_add(&w->sev);
    r->type = ev->type;
    r->conn = ev->conn;
    r->stream = ev->stream;
    r->code = ev->code;
    r->by_peer = ev->by_peer;
    cu_copy(r->name, sizeof r->name, ev->name);
    cu_copy(r->label, sizeof r->label, ev->label);
    cu_copy(r->reason, sizeof r->reason, ev->reason);
    r->has_fp = ev->has_fingerprint;
    memcpy(r->fp, ev->fingerprint, 32);
    if (ev->len) {
        r->data = malloc(ev->len);
        memcpy(r->data, ev->data, ev->len);
    }
    r->len = ev->len;
    CHECK(ev->name && ev->label && ev->reason && ev->data);
    if (ev->type == SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED) {
        cu_client *k = cu_by_conn(w, ev->conn);
        if (k)
            cu_drop(w, k);
    }
}

static inline void cu_record_client(cu_client *k, const sluice_coord_event *ev)
{
    cu_ev *r = cu_evs_add(&k->ev);
    r->type = ev->type;
    r->stream = ev->stream;
    r->kind = ev->kind;
    r->code = ev->code;
    r->err = ev->err;
    CHECK(ev->name && ev->label && ev->sender && ev->reason && ev->data);
    cu_copy(r->name, sizeof r->name, ev->name);
    cu_copy(r->label, sizeof r->label, ev->label);
    cu_copy(r->sender, sizeof r->sender, ev->sender);
    cu_copy(r->reason, sizeof r->reason, ev->reason);
    if (ev->len) {
        r->data = malloc(ev->len);
        memcpy(r->data, ev->data, ev->len);
    }
    r->len = ev->len;
    r->count = ev->count;
    r->has_fp = ev->has_peer_fingerprint;
    memcpy(r->fp, ev->peer_fingerprint, 32);
    cu_copy(r->turn_user, sizeof r->turn_user, ev->turn.username);
    cu_copy(r->turn_pass, sizeof r->turn_pass, ev->turn.password);
    r->n_uris = ev->turn.n_uris;
    for (size_t i = 0; i < ev->turn.n_uris && i < 4; i++)
        cu_copy(r->turn_uris[i], sizeof r->turn_uris[i], ev->turn.uris[i]);
    r->ttl = ev->turn.ttl_s;
    r->max_message = ev->max_message;
    r->window = ev->window;
    if (ev->type == SLUICE_COORD_EVENT_REFUSED || ev->type == SLUICE_COORD_EVENT_CLOSED)
        k->finished = true;
}

/* Connect a named client and check it got CONNECTED. */
static inline size_t cu_connect(cu_world *w, const char *name)
{
    size_t i = cu_add_named(w, name);
    cu_pump(w);
    CHECK(cu_find(&w->cl[i].ev, SLUICE_COORD_EVENT_CONNECTED, 0) != NULL);
    return i;
}

/* The terminal event of client i (REFUSED or CLOSED), or NULL. */
static inline cu_ev *cu_terminal(cu_world *w, size_t i)
{
    cu_ev *e = cu_find(&w->cl[i].ev, SLUICE_COORD_EVENT_REFUSED, 0);
    return e ? e : cu_find(&w->cl[i].ev, SLUICE_COORD_EVENT_CLOSED, 0);
}

#endif
