/* SPDX-License-Identifier: MIT */
/* sluice-coord internals shared by main (start-up, the loop), conn (client
 * sockets), service (core events, the built-in service), metrics (HTTP)
 * and cert (the generated certificate). One thread owns everything. */
#ifndef SLUICE_COORDD_H
#define SLUICE_COORDD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coordd/options.h"
#include "sluice/coord.h"

/* Bytes per read() and per poll_transmit() chunk. A chunk is at most one
 * of these; what a socket does not take of it is all a connection holds. */
#define COORDD_IO_CHUNK 16384
/* Reads per connection per wake-up (fairness; epoll is level-triggered). */
#define COORDD_READS_PER_WAKE 4
/* After the last bytes: how long to wait for them to go out and for the
 * client's FIN before closing anyway (microseconds). */
#define COORDD_LINGER_US (5 * 1000000ull)
/* SIGTERM: how long to flush the SHUTDOWN errors (microseconds). */
#define COORDD_STOP_FLUSH_US (2 * 1000000ull)
/* The built-in service's label. */
#define COORDD_WHO_LABEL "sluice/clients"

/* Every object registered with epoll starts with its kind (aligned like
 * the structs it is the first member of, so the cast back is clean). */
enum coordd_kind { H_LISTEN = 1, H_CONN, H_SIGNAL, H_HTTP_LISTEN, H_HTTP };

struct coordd_handle {
    _Alignas(8) enum coordd_kind kind;
};

struct coordd_listener {
    struct coordd_handle h;
    int fd;
    sluice_addr addr; /* with the bound port */
};

/* A client TCP connection. The core knows it by id until its terminal
 * event; after the core's last chunk (meta->close) the socket lingers
 * here, detached from the core, until written, half-closed and ended. */
struct coordd_conn {
    struct coordd_handle h;
    int fd;
    uint64_t id;
    bool in_core;     /* the core still knows id */
    bool closing;     /* got the last chunk: write it, shut down, wait for EOF */
    bool wr_shut;     /* shutdown(SHUT_WR) done */
    bool paused;      /* core output paused until EPOLLOUT */
    bool dead;        /* closed; freed after this loop iteration */
    uint32_t ev_mask; /* registered epoll events */
    uint8_t *pend;    /* unwritten tail of one chunk (NULL: none) */
    size_t pend_off, pend_len;
    uint64_t linger_until_us;
    sluice_addr remote;
    char name[SLUICE_COORD_NAME_MAX + 1]; /* "" until CLIENT_CONNECTED */
    struct coordd_conn *hnext;            /* id table chain */
    struct coordd_conn *next, *prev;      /* all connections */
    struct coordd_conn *lnext, *lprev;    /* lingering ones */
    struct coordd_conn *dnext;            /* graveyard */
};

/* Daemon-side counters (the core has its own). */
struct coordd_counters {
    uint64_t accept_failures; /* accept() failed (EMFILE, ENOBUFS, ...) */
    uint64_t accept_refused;  /* the core said FULL: closed at once */
    uint64_t write_errors;    /* write() failed: connection dropped */
    uint64_t read_errors;     /* read() failed (not EOF): connection dropped */
    uint64_t output_paused;   /* times a socket would block with output held */
    uint64_t linger_timeouts; /* closed without the client's FIN */
    uint64_t who_requests;    /* built-in service answers */
    uint64_t streams_refused; /* COORD streams with unknown labels */
    uint64_t http_requests;
};

struct coordd_http;

struct coordd {
    const struct coordd_options *o;
    sluice_coord_server *core;
    int epfd, sigfd;
    struct coordd_handle sig_h;
    uint64_t now_us;
    uint8_t fp[32];
    char fp_text[96];

    struct coordd_listener listeners[COORDD_MAX_LISTEN];
    size_t n_listeners;
    bool listeners_paused; /* accept() ran out of descriptors */
    uint64_t listeners_resume_us;

    struct coordd_conn **table; /* by id, chained */
    size_t table_mask;
    struct coordd_conn *all, *lingering, *graveyard;
    size_t n_conns;  /* sockets open */
    size_t n_paused; /* sockets with output held */
    struct coordd_counters cnt;

    struct coordd_listener http_listener;
    bool http_on;
    struct coordd_http *http, *http_graveyard; /* open / closed HTTP connections */
    size_t n_http;

    bool stopping;
    uint64_t stop_deadline_us;

    uint8_t io[COORDD_IO_CHUNK];
    char *who_buf; /* max_message bytes */
};

/* main.c */
extern int coordd_log_level;
void coordd_log(int level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *coordd_addr_str(const sluice_addr *a, char buf[SLUICE_ADDR_STRLEN]);
/* v as a log value: quoted and escaped into buf. */
const char *coordd_quote(const char *v, char *buf, size_t cap);
uint64_t coordd_now_us(void);
int coordd_epoll_set(struct coordd *d, int op, int fd, uint32_t events, void *ptr);
/* Bind, listen and register l for addr (port 0: the kernel picks one; l->addr
 * gets it). Returns 0 or -1 (logged). */
int coordd_listen(struct coordd *d, struct coordd_listener *l, const sluice_addr *addr,
                  enum coordd_kind kind);
/* accept() ran out of descriptors: stop listening for 100 ms rather than
 * spin on a listener that stays readable. */
void coordd_pause_listeners(struct coordd *d);

/* conn.c */
int coordd_conns_init(struct coordd *d);
void coordd_conns_free(struct coordd *d);
void coordd_accept(struct coordd *d, struct coordd_listener *l);
void coordd_conn_event(struct coordd *d, struct coordd_conn *c, uint32_t events);
struct coordd_conn *coordd_conn_find(const struct coordd *d, uint64_t id);
/* Hand the core's output to the sockets. Returns the chunks taken. */
size_t coordd_pump_output(struct coordd *d);
/* The core finished id (CONNECTION_CLOSED). */
void coordd_conn_finished(struct coordd *d, uint64_t id);
/* Lingering deadlines; returns the earliest remaining (SLUICE_NEVER). */
uint64_t coordd_conns_timeout(struct coordd *d);
void coordd_conns_reap(struct coordd *d);
/* Close every socket at once (exit). */
void coordd_conns_close_all(struct coordd *d);

/* service.c */
/* Drain the core's events. Returns how many were handled. */
size_t coordd_drain_events(struct coordd *d);

/* metrics.c */
int coordd_http_start(struct coordd *d);
void coordd_http_stop(struct coordd *d);
void coordd_http_accept(struct coordd *d);
void coordd_http_event(struct coordd *d, struct coordd_http *h, uint32_t events);
uint64_t coordd_http_timeout(struct coordd *d);
void coordd_http_reap(struct coordd *d);

/* cert.c */
/* SHA-256 of the first certificate of a PEM file. Returns 0 or -1. */
int coordd_cert_fingerprint(const char *path, uint8_t fp[32]);
/* dir/cert.pem and dir/key.pem: kept when the key matches and every name
 * is covered, else (re)generated (EC P-256, self-signed, key mode 0600).
 * Returns 0 kept, 1 generated, 2 generated in place of an unusable one,
 * -1 failed (why says what). */
int coordd_cert_ensure(const char *dir, char *const *names, size_t n_names, char *cert_path,
                       char *key_path, size_t path_cap, uint8_t fp[32], char *why, size_t why_cap);

#endif
