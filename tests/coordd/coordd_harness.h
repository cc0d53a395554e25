/* SPDX-License-Identifier: MIT */
/* sluice-coord daemon tests: start the daemon (its stderr on a pipe, read
 * for msg="ready"), and drive sluice_coord_client machines over real
 * loopback TCP sockets with poll() — no sleeps, every wait bounded. */
#ifndef SLUICE_TEST_COORDD_HARNESS_H
#define SLUICE_TEST_COORDD_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sluice/sluice.h"
#include "test.h"

static inline uint64_t th_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ------------------------------------------------------------------------ */
/* Files */

static char th_dir[64];

static inline const char *th_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", th_dir, name);
    return buf;
}

static inline bool th_mkdtemp(void)
{
    snprintf(th_dir, sizeof th_dir, "/tmp/sluice-coordd-XXXXXX");
    return mkdtemp(th_dir) != NULL;
}

static inline void th_rmdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", th_dir);
    if (th_dir[0] && system(cmd) != 0)
        fprintf(stderr, "# could not remove %s\n", th_dir);
}

static inline bool th_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    bool ok = e && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok;
}

static inline bool th_write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    bool ok = f && (x ? PEM_write_X509(f, x)
                      : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)) == 1;
    if (f)
        ok = fclose(f) == 0 && ok;
    return ok;
}

/* An EC P-256 certificate with CN and dNSName cn, valid for a day either
 * side of now, signed by (ca_cert, ca_key) or self-signed; is_ca makes a
 * CA. No fsync: a thousand of these take well under a second. */
static inline bool th_make_cert(const char *cert_path, const char *key_path, const char *cn,
                                const char *ca_cert, const char *ca_key, bool is_ca)
{
    static long serial = 1000;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *ikey = NULL;
    X509 *x = X509_new(), *issuer = NULL;
    char san[128];
    bool ok = key && x;

    if (ca_cert) {
        FILE *f = fopen(ca_cert, "r");
        if (f) {
            issuer = PEM_read_X509(f, NULL, NULL, NULL);
            fclose(f);
        }
        if ((f = fopen(ca_key, "r"))) {
            ikey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
            fclose(f);
        }
        ok = ok && issuer && ikey;
    }
    ok = ok && X509_set_version(x, X509_VERSION_3) == 1 &&
         ASN1_INTEGER_set(X509_get_serialNumber(x), serial++) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(x), -86400) &&
         X509_gmtime_adj(X509_getm_notAfter(x), 86400) && X509_set_pubkey(x, key) == 1 &&
         X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                    (const unsigned char *)cn, -1, -1, 0) == 1 &&
         X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
                                        : X509_get_subject_name(x)) == 1;
    snprintf(san, sizeof san, "DNS:%s", cn);
    if (ok && is_ca)
        ok = th_ext(x, issuer ? issuer : x, NID_basic_constraints, "critical,CA:TRUE") &&
             th_ext(x, issuer ? issuer : x, NID_key_usage, "critical,keyCertSign,cRLSign");
    else if (ok)
        ok = th_ext(x, issuer ? issuer : x, NID_subject_alt_name, san);
    ok = ok && X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0 &&
         th_write_pem(cert_path, x, NULL) && th_write_pem(key_path, NULL, key);
    X509_free(x);
    X509_free(issuer);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ikey);
    return ok;
}

static inline bool th_cert_sha256(const char *path, uint8_t fp[32])
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    unsigned len = 0;
    bool ok = x && X509_digest(x, EVP_sha256(), fp, &len) == 1 && len == 32;
    if (f)
        fclose(f);
    X509_free(x);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* The daemon */

typedef struct th_daemon {
    pid_t pid;
    int err_fd; /* its stdout and stderr */
    char *log;
    size_t log_len, log_cap;
    bool eof;
    bool exited;
    int status;
    char listen[80];
    uint16_t port;
    char fingerprint[100];
    uint16_t metrics_port;
} th_daemon;

static th_daemon *th_running[4];

static inline void th_kill_all(void)
{
    for (size_t i = 0; i < 4; i++) {
        th_daemon *d = th_running[i];
        if (d && !d->exited && d->pid > 0) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, NULL, 0);
            d->exited = true;
        }
        th_running[i] = NULL;
    }
}

/* Read what the daemon wrote (non-blocking). The log keeps the last 8 MiB. */
static inline void th_daemon_read(th_daemon *d)
{
    char buf[16384];
    for (;;) {
        ssize_t n = read(d->err_fd, buf, sizeof buf);
        if (n == 0) {
            d->eof = true;
            return;
        }
        if (n < 0)
            return;
        if (getenv("TH_VERBOSE"))
            fwrite(buf, 1, (size_t)n, stderr);
        if (d->log_len + (size_t)n + 1 > d->log_cap) {
            if (d->log_cap >= (8u << 20)) {
                size_t keep = d->log_len / 2;
                memmove(d->log, d->log + d->log_len - keep, keep);
                d->log_len = keep;
            } else {
                size_t cap = d->log_cap ? d->log_cap * 2 : 65536;
                char *p = realloc(d->log, cap);
                if (!p)
                    return;
                d->log = p;
                d->log_cap = cap;
            }
            if (d->log_len + (size_t)n + 1 > d->log_cap)
                n = (ssize_t)(d->log_cap - d->log_len - 1);
        }
        memcpy(d->log + d->log_len, buf, (size_t)n);
        d->log_len += (size_t)n;
        d->log[d->log_len] = '\0';
    }
}

/* Spawn exe with args (NULL-terminated; argv[0] added) and extra
 * environment assignments (NULL-terminated, may be NULL). */
static inline bool th_spawn(th_daemon *d, const char *exe, const char *const *args,
                            const char *const *env)
{
    const char *argv[64];
    int p[2];
    size_t n = 0;

    memset(d, 0, sizeof *d);
    argv[n++] = exe;
    for (; args && args[n - 1] && n < 63; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    if (pipe2(p, O_CLOEXEC) < 0)
        return false;
    d->pid = fork();
    if (d->pid < 0)
        return false;
    if (d->pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    d->err_fd = p[0];
    fcntl(d->err_fd, F_SETFL, O_NONBLOCK);
    for (size_t i = 0; i < 4; i++)
        if (!th_running[i]) {
            th_running[i] = d;
            break;
        }
    return true;
}

/* Wait (poll, bounded) until the log contains needle or the daemon's
 * output ends. */
static inline bool th_wait_log(th_daemon *d, const char *needle, int timeout_ms)
{
    uint64_t end = th_now_us() + (uint64_t)timeout_ms * 1000u;
    for (;;) {
        th_daemon_read(d);
        if (d->log && strstr(d->log, needle))
            return true;
        uint64_t now = th_now_us();
        if (d->eof || now >= end)
            return false;
        struct pollfd pf = {.fd = d->err_fd, .events = POLLIN};
        poll(&pf, 1, (int)((end - now) / 1000 + 1));
    }
}

/* Wait for the daemon to exit (its output ends), at most timeout_ms; then
 * reap it. Returns its wait status, or -1 (killed after the timeout). */
static inline int th_wait_exit(th_daemon *d, int timeout_ms)
{
    uint64_t end = th_now_us() + (uint64_t)timeout_ms * 1000u;
    while (!d->eof && th_now_us() < end) {
        struct pollfd pf = {.fd = d->err_fd, .events = POLLIN};
        poll(&pf, 1, (int)((end - th_now_us()) / 1000 + 1));
        th_daemon_read(d);
    }
    int st = -1;
    if (!d->eof)
        kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    d->exited = true;
    d->status = d->eof ? st : -1;
    close(d->err_fd);
    d->err_fd = -1;
    for (size_t i = 0; i < 4; i++)
        if (th_running[i] == d)
            th_running[i] = NULL;
    return d->status;
}

static inline void th_daemon_free(th_daemon *d)
{
    if (!d->exited && d->pid > 0)
        th_wait_exit(d, 0);
    free(d->log);
    d->log = NULL;
}

/* The value of key=VALUE in the ready line (up to a space). */
static inline bool th_ready_value(const th_daemon *d, const char *key, char *out, size_t cap)
{
    const char *r = strstr(d->log, "msg=\"ready\"");
    char k[64];
    snprintf(k, sizeof k, " %s=", key);
    const char *p = r ? strstr(r, k) : NULL;
    const char *eol = r ? strchr(r, '\n') : NULL;
    if (!p || (eol && p > eol))
        return false;
    p += strlen(k);
    size_t n = strcspn(p, " \n");
    if (n >= cap)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* Start sluice-coord with args and wait for msg="ready" (10 s). */
static inline bool th_start(th_daemon *d, const char *exe, const char *const *args)
{
    char v[128];
    if (!th_spawn(d, exe, args, NULL))
        return false;
    if (!th_wait_log(d, "msg=\"ready\"", 10000)) {
        fprintf(stderr, "# sluice-coord did not get ready:\n%s\n", d->log ? d->log : "");
        return false;
    }
    if (!th_ready_value(d, "listen", d->listen, sizeof d->listen) ||
        !th_ready_value(d, "fingerprint", d->fingerprint, sizeof d->fingerprint))
        return false;
    char *comma = strchr(d->listen, ','); /* the first listener */
    if (comma)
        *comma = '\0';
    char *colon = strrchr(d->listen, ':');
    d->port = colon ? (uint16_t)atoi(colon + 1) : 0;
    if (th_ready_value(d, "metrics", v, sizeof v) && strcmp(v, "off")) {
        colon = strrchr(v, ':');
        d->metrics_port = colon ? (uint16_t)atoi(colon + 1) : 0;
    }
    return d->port != 0;
}

/* Count lines of the log that contain every one of the needles. */
static inline size_t th_log_count(const th_daemon *d, const char *n1, const char *n2)
{
    size_t count = 0;
    const char *p = d->log;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[2048];
        size_t l = len < sizeof line - 1 ? len : sizeof line - 1;
        memcpy(line, p, l);
        line[l] = '\0';
        if (strstr(line, n1) && (!n2 || strstr(line, n2)))
            count++;
        p = eol ? eol + 1 : p + len;
    }
    return count;
}

/* Nothing from the sanitizers in the daemon's output (an ASan/UBSan build
 * runs the daemon instrumented too; a leak also fails its exit status). */
static inline bool th_sanitizer_clean(const th_daemon *d)
{
    return !d->log || (!strstr(d->log, "runtime error") && !strstr(d->log, "Sanitizer"));
}

/* Resident set of a process, in KiB (VmRSS). */
static inline long th_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = atol(line + 6);
    fclose(f);
    return kib;
}

/* CPU time (user + system) a process has used, in milliseconds. */
static inline double th_cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long ut = 0, st = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

/* One HTTP/1.0 GET on loopback (5 s receive timeout). Returns the status
 * code (body in buf) or -1. */
static inline int th_http_get(uint16_t port, const char *path, char *buf, size_t cap)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval tv = {.tv_sec = 5};
    char req[256];
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    while (got + 1 < cap) {
        ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    close(fd);
    int code = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
        return -1;
    char *body = strstr(buf, "\r\n\r\n");
    if (body)
        memmove(buf, body + 4, strlen(body + 4) + 1);
    return code;
}

/* The value of an unlabelled Prometheus sample, or -1. */
static inline long long th_metric(const char *text, const char *name)
{
    char k[128];
    snprintf(k, sizeof k, "\n%s ", name);
    const char *p = strstr(text, k);
    return p ? atoll(p + strlen(k)) : -1;
}

/* ------------------------------------------------------------------------ */
/* Clients */

typedef struct th_ev {
    int type;
    uint32_t stream;
    int kind, code;
    char name[64], label[128], sender[64], reason[256];
    char data[512];
    size_t len;
    bool has_fp;
    uint8_t fp[32];
    char turn_user[128], turn_pass[64], turn_uri[256];
    size_t n_uris;
    uint32_t ttl;
} th_ev;

typedef struct th_client {
    char name[64];
    sluice_coord_client *c;
    int fd;
    uint8_t *pend;
    size_t pend_off, pend_len;
    bool close_after; /* the machine handed out its last bytes */
    bool finished;    /* terminal event seen */
    bool connected;
    int term_type, term_code;
    char term_reason[256];
    bool record;  /* keep every event (small tests) */
    bool no_read; /* a slow reader: its socket is not read while set */
    th_ev *ev;
    size_t n_ev, cap_ev;
} th_client;

typedef struct th_world {
    th_client **cl;
    size_t n, cap;
    th_daemon *d; /* drained while pumping (may be NULL) */
    struct pollfd *pfd;
    th_client **pcl;
    size_t pfd_cap;
    uint8_t buf[32768];
} th_world;

typedef struct th_client_opts {
    const char *cert, *key;
    bool pin;           /* pin the daemon's fingerprint (default when no ca_file) */
    uint8_t pin_fp[32]; /* used when pin_other is set */
    bool pin_other;
    const char *ca_file; /* verify by CA instead */
    const char *server_name;
    bool record;
} th_client_opts;

static inline void th_record(th_client *cl, const sluice_coord_event *ev)
{
    if (ev->type == SLUICE_COORD_EVENT_CONNECTED)
        cl->connected = true;
    if (ev->type == SLUICE_COORD_EVENT_REFUSED || ev->type == SLUICE_COORD_EVENT_CLOSED) {
        cl->finished = true;
        cl->term_type = ev->type;
        cl->term_code = ev->code;
        snprintf(cl->term_reason, sizeof cl->term_reason, "%s", ev->reason ? ev->reason : "");
    }
    if (!cl->record)
        return;
    if (cl->n_ev == cl->cap_ev) {
        size_t cap = cl->cap_ev ? cl->cap_ev * 2 : 16;
        th_ev *p = realloc(cl->ev, cap * sizeof *p);
        if (!p)
            return;
        cl->ev = p;
        cl->cap_ev = cap;
    }
    th_ev *e = &cl->ev[cl->n_ev++];
    memset(e, 0, sizeof *e);
    e->type = ev->type;
    e->stream = ev->stream;
    e->kind = ev->kind;
    e->code = ev->code;
    snprintf(e->name, sizeof e->name, "%s", ev->name ? ev->name : "");
    snprintf(e->label, sizeof e->label, "%s", ev->label ? ev->label : "");
    snprintf(e->sender, sizeof e->sender, "%s", ev->sender ? ev->sender : "");
    snprintf(e->reason, sizeof e->reason, "%s", ev->reason ? ev->reason : "");
    e->len = ev->len;
    if (ev->data)
        memcpy(e->data, ev->data, ev->len < sizeof e->data - 1 ? ev->len : sizeof e->data - 1);
    e->has_fp = ev->has_peer_fingerprint;
    memcpy(e->fp, ev->peer_fingerprint, 32);
    snprintf(e->turn_user, sizeof e->turn_user, "%s", ev->turn.username ? ev->turn.username : "");
    snprintf(e->turn_pass, sizeof e->turn_pass, "%s", ev->turn.password ? ev->turn.password : "");
    e->n_uris = ev->turn.n_uris;
    if (ev->turn.n_uris)
        snprintf(e->turn_uri, sizeof e->turn_uri, "%s", ev->turn.uris[0]);
    e->ttl = ev->turn.ttl_s;
}

/* The first recorded event of type on stream (0: any stream) at or after
 * index *from (NULL: 0); *from moves past it. */
static inline th_ev *th_find(th_client *cl, int type, uint32_t stream, size_t *from)
{
    for (size_t i = from ? *from : 0; i < cl->n_ev; i++) {
        if (cl->ev[i].type == type && (!stream || cl->ev[i].stream == stream)) {
            if (from)
                *from = i + 1;
            return &cl->ev[i];
        }
    }
    return NULL;
}

static inline void th_close_fd(th_client *cl)
{
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
    free(cl->pend);
    cl->pend = NULL;
    cl->pend_len = cl->pend_off = 0;
}

/* Write what the machine has for the socket; keep what does not fit. */
static inline void th_flush(th_world *w, th_client *cl)
{
    uint64_t now = th_now_us();
    while (cl->fd >= 0) {
        if (cl->pend_len) {
            ssize_t n =
                send(cl->fd, cl->pend + cl->pend_off, cl->pend_len - cl->pend_off, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            if (n < 0) {
                sluice_coord_client_connection_closed(cl->c, now);
                th_close_fd(cl);
                return;
            }
            cl->pend_off += (size_t)n;
            if (cl->pend_off < cl->pend_len)
                continue;
            free(cl->pend);
            cl->pend = NULL;
            cl->pend_len = cl->pend_off = 0;
        }
        if (cl->close_after) {
            th_close_fd(cl);
            return;
        }
        sluice_coord_transmit meta;
        int n = sluice_coord_client_poll_transmit(cl->c, now, w->buf, sizeof w->buf, &meta);
        if (n < 0 || (n == 0 && !meta.close))
            return;
        if (meta.close)
            cl->close_after = true;
        if (n > 0) {
            cl->pend = malloc((size_t)n);
            if (!cl->pend)
                return;
            memcpy(cl->pend, w->buf, (size_t)n);
            cl->pend_len = (size_t)n;
        }
    }
}

static inline void th_drain_events(th_client *cl)
{
    sluice_coord_event ev;
    while (sluice_coord_client_poll_event(cl->c, &ev))
        th_record(cl, &ev);
}

static inline th_client *th_connect(th_world *w, const char *name, uint16_t port,
                                    const char *daemon_fp, const th_client_opts *o)
{
    sluice_coord_client_config cfg;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    int err = 0, one = 1;
    th_client *cl = calloc(1, sizeof *cl);

    if (!cl)
        return NULL;
    snprintf(cl->name, sizeof cl->name, "%s", name);
    cl->record = o->record;
    cl->fd = -1;
    sluice_coord_client_config_init(&cfg);
    cfg.name = name;
    cfg.cert_file = o->cert;
    cfg.key_file = o->key;
    cfg.server_name = o->server_name;
    if (o->ca_file) {
        cfg.ca_file = o->ca_file;
    } else {
        cfg.pinned = true;
        if (o->pin_other)
            memcpy(cfg.pinned_sha256, o->pin_fp, 32);
        else if (sluice_coord_fingerprint_parse(daemon_fp, cfg.pinned_sha256) < 0)
            goto fail;
    }
    cl->c = sluice_coord_client_new(&cfg, &err);
    if (!cl->c) {
        fprintf(stderr, "# client %s: %s\n", name, sluice_strerror(err));
        goto fail;
    }
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* Loopback: a blocking connect completes as soon as the listener's
     * backlog takes it. */
    if (cl->fd < 0 || connect(cl->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "# connect: %s\n", strerror(errno));
        goto fail;
    }
    fcntl(cl->fd, F_SETFL, O_NONBLOCK);
    setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (sluice_coord_client_start(cl->c, th_now_us()) < 0)
        goto fail;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        th_client **p = realloc(w->cl, cap * sizeof *p);
        if (!p)
            goto fail;
        w->cl = p;
        w->cap = cap;
    }
    w->cl[w->n++] = cl;
    th_flush(w, cl);
    return cl;
fail:
    if (cl->fd >= 0)
        close(cl->fd);
    sluice_coord_client_free(cl->c);
    free(cl);
    return NULL;
}

static inline void th_client_free(th_client *cl)
{
    th_close_fd(cl);
    sluice_coord_client_free(cl->c);
    free(cl->ev);
    free(cl);
}

static inline void th_world_free(th_world *w)
{
    for (size_t i = 0; i < w->n; i++)
        th_client_free(w->cl[i]);
    free(w->cl);
    free(w->pfd);
    free(w->pcl);
    memset(w, 0, sizeof *w);
}

/* One round: poll every socket (and the daemon's output), feed the
 * machines, run their timers, take their events and output. */
static inline void th_step(th_world *w, int timeout_ms)
{
    size_t need = w->n + 1;
    uint64_t now = th_now_us();

    if (need > w->pfd_cap) {
        free(w->pfd);
        free(w->pcl);
        w->pfd = calloc(need, sizeof *w->pfd);
        w->pcl = calloc(need, sizeof *w->pcl);
        w->pfd_cap = w->pfd && w->pcl ? need : 0;
        if (!w->pfd_cap)
            return;
    }
    size_t np = 0;
    if (w->d && w->d->err_fd >= 0 && !w->d->eof) {
        w->pfd[np] = (struct pollfd){.fd = w->d->err_fd, .events = POLLIN};
        w->pcl[np++] = NULL;
    }
    for (size_t i = 0; i < w->n; i++) {
        th_client *cl = w->cl[i];
        uint64_t t = sluice_coord_client_next_timeout(cl->c);
        if (t != SLUICE_NEVER && cl->fd >= 0) {
            int ms = t <= now ? 0 : (int)((t - now) / 1000 + 1);
            if (ms < timeout_ms)
                timeout_ms = ms;
        }
        if (cl->fd < 0)
            continue;
        w->pfd[np] = (struct pollfd){.fd = cl->fd, .events = cl->no_read ? 0 : POLLIN};
        if (cl->pend_len)
            w->pfd[np].events |= POLLOUT;
        w->pcl[np++] = cl;
    }
    poll(w->pfd, np, timeout_ms);
    now = th_now_us();
    for (size_t i = 0; i < np; i++) {
        th_client *cl = w->pcl[i];
        short re = w->pfd[i].revents;
        if (!re)
            continue;
        if (!cl) {
            th_daemon_read(w->d);
            continue;
        }
        if (re & POLLOUT)
            th_flush(w, cl);
        if (!(re & (POLLIN | POLLHUP | POLLERR)) || cl->fd < 0 || cl->no_read)
            continue;
        for (int k = 0; k < 8; k++) {
            ssize_t n = recv(cl->fd, w->buf, sizeof w->buf, 0);
            if (n > 0) {
                sluice_coord_client_handle_stream(cl->c, now, w->buf, (size_t)n);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            sluice_coord_client_connection_closed(cl->c, now);
            th_close_fd(cl);
            break;
        }
    }
    for (size_t i = 0; i < w->n; i++) {
        th_client *cl = w->cl[i];
        if (sluice_coord_client_next_timeout(cl->c) <= now)
            sluice_coord_client_handle_timeout(cl->c, now);
        th_drain_events(cl);
        th_flush(w, cl);
    }
}

typedef bool (*th_pred)(th_world *w, void *ctx);

/* Pump until pred holds, at most timeout_ms. */
static inline bool th_pump(th_world *w, int timeout_ms, th_pred pred, void *ctx)
{
    uint64_t end = th_now_us() + (uint64_t)timeout_ms * 1000u;
    for (;;) {
        if (pred(w, ctx))
            return true;
        uint64_t now = th_now_us();
        if (now >= end)
            return false;
        th_step(w, (int)((end - now) / 1000 + 1) > 100 ? 100 : (int)((end - now) / 1000 + 1));
    }
}

struct th_want {
    th_client *cl;
    int type;
    uint32_t stream;
    size_t count; /* how many such events (default 1) */
};

static inline bool th_pred_event(th_world *w, void *ctx)
{
    struct th_want *x = ctx;
    size_t from = 0, n = 0, want = x->count ? x->count : 1;
    (void)w;
    while (th_find(x->cl, x->type, x->stream, &from))
        n++;
    return n >= want;
}

/* Wait for the count-th event of type on stream (0: any) of cl. */
static inline th_ev *th_wait(th_world *w, th_client *cl, int type, uint32_t stream, size_t count,
                             int timeout_ms)
{
    struct th_want x = {cl, type, stream, count};
    if (!th_pump(w, timeout_ms, th_pred_event, &x))
        return NULL;
    size_t from = 0;
    th_ev *e = NULL;
    for (size_t i = 0; i < (count ? count : 1); i++)
        e = th_find(cl, type, stream, &from);
    return e;
}

static inline bool th_pred_finished(th_world *w, void *ctx)
{
    th_client *cl = ctx;
    (void)w;
    return cl->finished;
}

/* Raise the descriptor soft limit to the hard one; returns the limit. */
static inline unsigned long long th_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (unsigned long long)rl.rlim_cur;
}

#endif
