/* SPDX-License-Identifier: MIT */
/* Coordinator client, streams: open/accept/refuse, sending against credit,
 * delivery as DATA events in the blocking (credit withheld until consumed)
 * or dropping (credit returned at once, per-stream bound, LAG) mode,
 * half-close and reset. */
#include <stdio.h>

#include "coord/client_internal.h"

/* ------------------------------------------------------------------------ */
/* The stream table (sorted by id) */

cstream *cli_stream(const sluice_coord_client *c, uint32_t id)
{
    return coord_idtab_find(&c->streams, id);
}

static cstream *stream_add(sluice_coord_client *c, uint32_t id, uint8_t kind, uint8_t state,
                           const char *name, size_t name_len, const char *label, size_t label_len)
{
    const sluice_allocator *a = &c->cfg.alloc;
    cstream *st = sluice_xcalloc(a, 1, sizeof *st);

    if (!st)
        return NULL;
    st->id = id;
    st->kind = kind;
    st->state = state;
    st->non_blocking = c->cfg.non_blocking;
    memcpy(st->name, name, name_len);
    memcpy(st->label, label, label_len);
    if (coord_idtab_insert(&c->streams, a, st) < 0) {
        sluice_xfree(a, st);
        return NULL;
    }
    return st;
}

void cli_stream_remove(sluice_coord_client *c, cstream *st)
{
    coord_idtab_remove(&c->streams, st);
    sluice_xfree(&c->cfg.alloc, st);
}

void cli_streams_free(sluice_coord_client *c)
{
    coord_idtab_free(&c->streams, &c->cfg.alloc, true);
}

static bool connected(const sluice_coord_client *c)
{
    return c->state == SLUICE_COORD_CLIENT_CONNECTED;
}

/* ------------------------------------------------------------------------ */
/* Credit and delivery */

static void return_credit(sluice_coord_client *c, cstream *st)
{
    uint8_t p[4];

    if (st->state != CST_OPEN || !connected(c) ||
        !coord_credit_due(st->pending_credit, c->window, c->max_message))
        return;
    uint32_t n = st->pending_credit > UINT32_MAX ? UINT32_MAX : (uint32_t)st->pending_credit;
    wr32(p, n);
    if (cli_push(c, CF_CREDIT, st->id, p, 4, NULL) == 0) {
        st->pending_credit -= n;
        st->rx_allowed += n;
    }
}

/* Report the drops counted on st as one LAG event. */
static void flush_lag(sluice_coord_client *c, cstream *st)
{
    cev *e;

    if (!st->lag)
        return;
    e = cli_event(c, SLUICE_COORD_EVENT_LAG, st->id, NULL, NULL, NULL, NULL, NULL, 0, 0);
    if (e) {
        e->kind = st->kind;
        e->count = st->lag;
        st->lag = 0;
    }
}

/* A message for the application. cost is its credit (0 on broadcast). */
static void deliver(sluice_coord_client *c, cstream *st, const char *sender, const uint8_t *p,
                    size_t len, uint64_t cost)
{
    bool dropping = st->kind == SLUICE_COORD_KIND_BROADCAST || st->non_blocking;
    uint64_t qbytes = SLUICE_COORD_MESSAGE_COST(len);
    cev *e;

    c->stats.messages_in++;
    if (dropping) {
        /* Never withhold credit: the sender is paced by the network only. */
        st->pending_credit += cost;
        return_credit(c, st);
        if (st->queued + qbytes > c->cfg.recv_queue_bytes) {
            st->lag++;
            c->stats.messages_dropped++;
            return;
        }
        flush_lag(c, st);
    }
    e = cli_event(c, SLUICE_COORD_EVENT_DATA, st->id, NULL, NULL, sender, NULL, p, len, 0);
    if (!e) {
        /* Out of memory: the message is lost; say so, and do not let the
         * sender wait for credit that would never come back. */
        st->lag++;
        c->stats.messages_dropped++;
        if (!dropping) {
            st->pending_credit += cost;
            return_credit(c, st);
        }
        return;
    }
    e->kind = st->kind;
    if (dropping) {
        e->qbytes = (uint32_t)qbytes;
        st->queued += qbytes;
    } else if (c->cfg.manual_credit) {
        st->unconsumed += cost;
    } else {
        e->credit = (uint32_t)cost;
    }
}

void cli_released(sluice_coord_client *c, const cev *e)
{
    cstream *st = cli_stream(c, e->stream);

    if (!st)
        return;
    if (e->qbytes) {
        st->queued -= st->queued < e->qbytes ? st->queued : e->qbytes;
        if (!st->queued)
            flush_lag(c, st);
    }
    if (e->credit) {
        st->pending_credit += e->credit;
        return_credit(c, st);
    }
}

void cli_writable(sluice_coord_client *c)
{
    for (uint32_t i = 0; i < c->streams.n; i++) {
        cstream *st = c->streams.v[i];
        if (st->blocked && st->tx_credit >= (int64_t)SLUICE_COORD_MESSAGE_COST(0)) {
            st->blocked = false;
            cli_event(c, SLUICE_COORD_EVENT_WRITABLE, st->id, NULL, NULL, NULL, NULL, NULL, 0, 0);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Frames from the coordinator */

/* "<what> <FRAME> on stream <id><tail>" */
static void protocol_error(sluice_coord_client *c, const char *what, const coord_hdr *h,
                           const char *tail)
{
    char why[160];
    snprintf(why, sizeof why, "%s%s%s on stream %u%s", what, what[0] ? " " : "",
             coord_frame_name(h->type), h->stream, tail);
    cli_fail(c, SLUICE_COORD_E_PROTOCOL, SLUICE_ERR_MALFORMED, why, true);
}

static size_t strs_len(const coord_attrs *a)
{
    size_t n = a->turn_username.len + a->turn_password.len + 2;
    for (size_t i = 0; i < a->n_turn_uris; i++)
        n += a->turn_uris[i].len + 1;
    return n;
}

static const char *copy_str(char **tail, coord_str s)
{
    char *d = *tail;
    if (s.len)
        memcpy(d, s.p, s.len);
    d[s.len] = 0;
    *tail += s.len + 1;
    return d;
}

/* Fingerprint and TURN credentials of OPEN/ACCEPT into event e, whose
 * node was made with strs_len(a) extra bytes after its payload. */
static void put_attrs(cev *e, const coord_attrs *a)
{
    char *tail = (char *)e->data + e->len;

    if (a->fingerprint) {
        e->has_fp = true;
        memcpy(e->fp, a->fingerprint, 32);
    }
    e->turn_user = copy_str(&tail, a->turn_username);
    e->turn_pass = copy_str(&tail, a->turn_password);
    for (size_t i = 0; i < a->n_turn_uris; i++)
        e->turn_uris[i] = copy_str(&tail, a->turn_uris[i]);
    e->n_turn_uris = a->n_turn_uris;
    e->turn_ttl = a->turn_ttl_s;
}

static void on_open(sluice_coord_client *c, const coord_hdr *h, const uint8_t *p)
{
    char name[SLUICE_COORD_NAME_MAX + 1], label[SLUICE_COORD_LABEL_MAX + 1];
    coord_open o;
    cstream *st;
    cev *e;

    if ((h->stream & 1) || h->stream <= c->max_even) {
        protocol_error(c, "", h, ": coordinator ids are even and increasing");
        return;
    }
    c->max_even = h->stream;
    if (coord_dec_open(p, h->len, &o) < 0 || o.kind == SLUICE_COORD_KIND_BROADCAST ||
        (o.kind == SLUICE_COORD_KIND_COORD ? o.name.len != 0 : !coord_name_ok(o.name.p, o.name.len)) ||
        !coord_label_ok(o.label.p, o.label.len)) {
        protocol_error(c, "malformed", h, "");
        return;
    }
    if (c->streams.n >= c->cfg.max_streams) {
        cli_push_error(c, CF_REFUSE, h->stream, SLUICE_COORD_E_LIMIT,
                       "the client has too many streams open");
        return;
    }
    memcpy(name, o.name.p, o.name.len);
    name[o.name.len] = 0;
    memcpy(label, o.label.p, o.label.len);
    label[o.label.len] = 0;
    st = stream_add(c, h->stream, o.kind, CST_INCOMING, name, o.name.len, label, o.label.len);
    if (!st) {
        cli_push_error(c, CF_REFUSE, h->stream, SLUICE_COORD_E_INTERNAL, "out of memory");
        return;
    }
    e = cli_event(c, SLUICE_COORD_EVENT_STREAM_INCOMING, st->id, name, label, NULL, NULL, NULL, 0,
                  strs_len(&o.attrs));
    if (!e) {
        cli_push_error(c, CF_REFUSE, h->stream, SLUICE_COORD_E_LIMIT,
                       "the client's event queue is full");
        cli_stream_remove(c, st);
        return;
    }
    e->kind = o.kind;
    put_attrs(e, &o.attrs);
}

static void on_accept(sluice_coord_client *c, cstream *st, const coord_hdr *h, const uint8_t *p)
{
    coord_attrs a;
    cev *e;

    if (st->state != CST_OPENING || coord_dec_accept(p, h->len, &a) < 0) {
        protocol_error(c, "unexpected or malformed", h, "");
        return;
    }
    st->state = CST_OPEN;
    st->tx_credit = c->window;
    st->rx_allowed = c->window;
    e = cli_event(c, SLUICE_COORD_EVENT_STREAM_ACCEPTED, st->id, st->name, st->label, NULL, NULL,
                  NULL, 0, strs_len(&a));
    if (e) {
        e->kind = st->kind;
        put_attrs(e, &a);
    }
}

static void on_refuse(sluice_coord_client *c, cstream *st, const coord_hdr *h, const uint8_t *p)
{
    char reason[SLUICE_COORD_REASON_MAX + 1];
    int code;
    cev *e;

    if (st->state != CST_OPENING ||
        coord_dec_error_text(p, h->len, &code, reason, sizeof reason) < 0) {
        protocol_error(c, "unexpected or malformed", h, "");
        return;
    }
    e = cli_event(c, SLUICE_COORD_EVENT_STREAM_REFUSED, st->id, st->name, st->label, NULL, reason,
                  NULL, 0, 0);
    if (e) {
        e->kind = st->kind;
        e->code = code;
    }
    cli_stream_remove(c, st);
}

static void on_data(sluice_coord_client *c, cstream *st, const coord_hdr *h, const uint8_t *p)
{
    uint64_t cost = SLUICE_COORD_MESSAGE_COST(h->len);
    char sender[SLUICE_COORD_NAME_MAX + 1];

    if (st->state != CST_OPEN || st->rx_closed) {
        protocol_error(c, "", h, ", which is not open for receiving");
        return;
    }
    if (h->type == CF_BCAST_DATA) {
        coord_bcast b;
        if (st->kind != SLUICE_COORD_KIND_BROADCAST || coord_dec_bcast(p, h->len, &b) < 0 ||
            (b.sender.len && !coord_name_ok(b.sender.p, b.sender.len))) {
            protocol_error(c, "unexpected or malformed", h, "");
            return;
        }
        memcpy(sender, b.sender.p, b.sender.len);
        sender[b.sender.len] = 0;
        deliver(c, st, sender, b.data, b.len, 0);
        return;
    }
    if (st->kind == SLUICE_COORD_KIND_BROADCAST) {
        protocol_error(c, "", h, ", a broadcast stream");
        return;
    }
    if ((int64_t)cost > st->rx_allowed) {
        char why[96];
        snprintf(why, sizeof why, "the coordinator sent beyond the credit on stream %u",
                 st->id);
        cli_fail(c, SLUICE_COORD_E_FLOW_CONTROL, SLUICE_ERR_MALFORMED, why, true);
        return;
    }
    st->rx_allowed -= (int64_t)cost;
    deliver(c, st, NULL, p, h->len, cost);
}

static void on_credit_or_lag(sluice_coord_client *c, cstream *st, const coord_hdr *h,
                             const uint8_t *p)
{
    uint32_t v;

    if (st->state != CST_OPEN || coord_dec_u32(p, h->len, &v) < 0 ||
        (h->type == CF_LAG && st->kind != SLUICE_COORD_KIND_BROADCAST)) {
        protocol_error(c, "unexpected or malformed", h, "");
        return;
    }
    if (h->type == CF_LAG) {
        c->stats.lag_reported += v;
        st->lag += v;
        flush_lag(c, st);
        return;
    }
    if (st->tx_credit + v > (int64_t)c->window) {
        protocol_error(c, "", h, ": beyond the window");
        return;
    }
    st->tx_credit += v;
    if (st->blocked) {
        st->blocked = false;
        cli_event(c, SLUICE_COORD_EVENT_WRITABLE, st->id, NULL, NULL, NULL, NULL, NULL, 0, 0);
    }
}

static void stream_closed(sluice_coord_client *c, cstream *st, int code, const char *reason)
{
    cev *e;

    flush_lag(c, st);
    e = cli_event(c, SLUICE_COORD_EVENT_STREAM_CLOSED, st->id, st->name, st->label, NULL, reason,
                  NULL, 0, 0);
    if (e) {
        e->kind = st->kind;
        e->code = code;
    }
    cli_stream_remove(c, st);
}

static void on_close(sluice_coord_client *c, cstream *st, const coord_hdr *h)
{
    cev *e;

    if (st->state != CST_OPEN || st->rx_closed || h->len) {
        protocol_error(c, "unexpected or malformed", h, "");
        return;
    }
    st->rx_closed = true;
    flush_lag(c, st);
    e = cli_event(c, SLUICE_COORD_EVENT_STREAM_FINISHED, st->id, st->name, st->label, NULL, NULL,
                  NULL, 0, 0);
    if (e)
        e->kind = st->kind;
    if (st->tx_closed)
        stream_closed(c, st, SLUICE_COORD_E_NONE, NULL);
}

static void on_reset(sluice_coord_client *c, cstream *st, const coord_hdr *h, const uint8_t *p)
{
    char reason[SLUICE_COORD_REASON_MAX + 1];
    int code;

    if (coord_dec_error_text(p, h->len, &code, reason, sizeof reason) < 0) {
        protocol_error(c, "malformed", h, "");
        return;
    }
    coord_link_discard_stream(&c->link, st->id);
    stream_closed(c, st, code, reason);
}

int cli_stream_frame(sluice_coord_client *c, const coord_hdr *h, const uint8_t *p)
{
    cstream *st;

    if (h->type == CF_OPEN) {
        on_open(c, h, p);
        return 0;
    }
    st = cli_stream(c, h->stream);
    if (!st) {
        /* A frame that crossed our RESET or CLOSE is harmless; a stream
         * that never existed is an error. */
        bool past = (h->stream & 1) ? h->stream < c->next_odd : h->stream <= c->max_even;
        if (!past)
            protocol_error(c, "", h, ", which was never opened");
        return 0;
    }
    switch (h->type) {
    case CF_ACCEPT:
        on_accept(c, st, h, p);
        break;
    case CF_REFUSE:
        on_refuse(c, st, h, p);
        break;
    case CF_DATA:
    case CF_BCAST_DATA:
        on_data(c, st, h, p);
        break;
    case CF_CREDIT:
    case CF_LAG:
        on_credit_or_lag(c, st, h, p);
        break;
    case CF_CLOSE:
        on_close(c, st, h);
        break;
    case CF_RESET:
        on_reset(c, st, h, p);
        break;
    default:
        break;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Application calls */

int64_t sluice_coord_client_open_stream(sluice_coord_client *c, uint64_t now_us,
                                        sluice_coord_kind kind, const char *name,
                                        const char *label, unsigned flags,
                                        uint64_t wait_timeout_us)
{
    uint8_t buf[COORD_MAX_CONTROL];
    size_t nlen, llen;
    coord_attrs a;
    cstream *st;
    int n;

    if (!c)
        return SLUICE_ERR_INVALID;
    c->now = now_us;
    if (!connected(c))
        return SLUICE_ERR_STATE;
    name = name ? name : "";
    label = label ? label : "";
    nlen = strlen(name);
    llen = strlen(label);
    if (!coord_label_ok(label, llen) || (flags & ~SLUICE_COORD_OPEN_WAIT))
        return SLUICE_ERR_INVALID;
    switch (kind) {
    case SLUICE_COORD_KIND_COORD:
        if (nlen || flags)
            return SLUICE_ERR_INVALID;
        break;
    case SLUICE_COORD_KIND_BROADCAST:
        if (!coord_channel_ok(name, nlen) || flags)
            return SLUICE_ERR_INVALID;
        break;
    case SLUICE_COORD_KIND_PEER:
    case SLUICE_COORD_KIND_DIRECT:
        if (!coord_name_ok(name, nlen))
            return SLUICE_ERR_INVALID;
        break;
    default:
        return SLUICE_ERR_INVALID;
    }
    if (c->streams.n >= c->cfg.max_streams || c->next_odd == 0)
        return SLUICE_ERR_FULL;
    memset(&a, 0, sizeof a);
    if ((flags & SLUICE_COORD_OPEN_WAIT) && wait_timeout_us) {
        uint64_t ms = (wait_timeout_us + 999) / 1000;
        a.has_wait = true;
        a.wait_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    }
    n = coord_enc_open(buf, sizeof buf, (uint8_t)kind, (uint8_t)flags, name, label, &a);
    if (n < 0)
        return n;
    st = stream_add(c, c->next_odd, (uint8_t)kind, CST_OPENING, name, nlen, label, llen);
    if (!st)
        return SLUICE_ERR_NOMEM;
    if (cli_push(c, CF_OPEN, st->id, buf, (size_t)n, NULL) < 0)
        return SLUICE_ERR_NOMEM;
    c->next_odd += 2;
    return st->id;
}

static cstream *app_stream(sluice_coord_client *c, uint64_t now, uint32_t id, int *err)
{
    cstream *st;

    *err = SLUICE_ERR_INVALID;
    if (!c)
        return NULL;
    c->now = now;
    st = connected(c) ? cli_stream(c, id) : NULL;
    *err = connected(c) ? SLUICE_ERR_NOT_FOUND : SLUICE_ERR_STATE;
    return st;
}

int sluice_coord_client_accept_stream(sluice_coord_client *c, uint64_t now_us, uint32_t stream)
{
    int err;
    cstream *st = app_stream(c, now_us, stream, &err);

    if (!st)
        return err;
    if (st->state != CST_INCOMING)
        return SLUICE_ERR_STATE;
    err = cli_push(c, CF_ACCEPT, st->id, NULL, 0, NULL);
    if (err < 0)
        return err;
    st->state = CST_OPEN;
    st->tx_credit = c->window;
    st->rx_allowed = c->window;
    return 0;
}

int sluice_coord_client_refuse_stream(sluice_coord_client *c, uint64_t now_us, uint32_t stream,
                                      int code, const char *reason)
{
    int err;
    cstream *st = app_stream(c, now_us, stream, &err);

    if (!st)
        return err;
    if (st->state != CST_INCOMING)
        return SLUICE_ERR_STATE;
    err = cli_push_error(c, CF_REFUSE, st->id, code, reason ? reason : sluice_coord_code_name(code));
    if (err < 0)
        return err;
    cli_stream_remove(c, st);
    return 0;
}

int sluice_coord_client_send(sluice_coord_client *c, uint64_t now_us, uint32_t stream,
                             const uint8_t *data, size_t len)
{
    int err;
    cstream *st = app_stream(c, now_us, stream, &err);
    uint64_t cost = SLUICE_COORD_MESSAGE_COST(len);
    coord_blob *b;

    if (!st)
        return err;
    if (!data && len)
        return SLUICE_ERR_INVALID;
    if (len > c->max_message)
        return SLUICE_ERR_INVALID;
    if (st->state != CST_OPEN || st->tx_closed)
        return SLUICE_ERR_STATE;
    if ((int64_t)cost > st->tx_credit) {
        st->blocked = true;
        return SLUICE_ERR_FULL;
    }
    if (c->link.queued + cost > c->cfg.send_queue_bytes && c->link.queued) {
        st->blocked = true;
        c->want_writable = true;
        return SLUICE_ERR_FULL;
    }
    b = coord_blob_new(&c->cfg.alloc, len);
    if (!b)
        return SLUICE_ERR_NOMEM;
    if (len)
        memcpy(b->data, data, len);
    err = cli_push(c, CF_DATA, st->id, NULL, 0, b);
    coord_blob_unref(&c->cfg.alloc, b);
    if (err < 0)
        return err;
    st->tx_credit -= (int64_t)cost;
    c->stats.messages_out++;
    return 0;
}

int64_t sluice_coord_client_writable(const sluice_coord_client *c, uint32_t stream)
{
    const cstream *st;
    int64_t n, q;

    if (!c || !connected(c))
        return SLUICE_ERR_STATE;
    st = cli_stream(c, stream);
    if (!st)
        return SLUICE_ERR_NOT_FOUND;
    if (st->state != CST_OPEN || st->tx_closed)
        return SLUICE_ERR_STATE;
    n = st->tx_credit - 12;
    q = c->link.queued ? (int64_t)c->cfg.send_queue_bytes - (int64_t)c->link.queued - 12
                       : (int64_t)c->max_message;
    if (q < n)
        n = q;
    if (n < 0)
        return 0;
    return n > (int64_t)c->max_message ? (int64_t)c->max_message : n;
}

int sluice_coord_client_consume(sluice_coord_client *c, uint64_t now_us, uint32_t stream,
                                size_t len)
{
    int err;
    cstream *st = app_stream(c, now_us, stream, &err);
    uint64_t cost = SLUICE_COORD_MESSAGE_COST(len);

    if (!st)
        return err;
    if (cost > st->unconsumed)
        return SLUICE_ERR_INVALID;
    st->unconsumed -= cost;
    st->pending_credit += cost;
    return_credit(c, st);
    return 0;
}

int sluice_coord_client_set_nonblocking(sluice_coord_client *c, uint64_t now_us, uint32_t stream,
                                        bool non_blocking)
{
    int err;
    cstream *st = app_stream(c, now_us, stream, &err);

    if (!st)
        return err;
    st->non_blocking = non_blocking;
    /* Credit withheld for messages the application still holds goes back
     * now: in non-blocking mode nothing waits for the reader. */
    if (non_blocking && st->unconsumed) {
        st->pending_credit += st->unconsumed;
        st->unconsumed = 0;
        return_credit(c, st);
    }
    return 0;
}

int sluice_coord_client_close_stream(sluice_coord_client *c, uint64_t now_us, uint32_t stream)
{
    int err;
    cstream *st = app_stream(c, now_us, stream, &err);

    if (!st)
        return err;
    if (st->state != CST_OPEN || st->tx_closed)
        return SLUICE_ERR_STATE;
    err = cli_push(c, CF_CLOSE, st->id, NULL, 0, NULL);
    if (err < 0)
        return err;
    st->tx_closed = true;
    if (st->rx_closed)
        stream_closed(c, st, SLUICE_COORD_E_NONE, NULL);
    return 0;
}

int sluice_coord_client_reset_stream(sluice_coord_client *c, uint64_t now_us, uint32_t stream,
                                     int code, const char *reason)
{
    int err;
    cstream *st = app_stream(c, now_us, stream, &err);

    if (!st)
        return err;
    coord_link_discard_stream(&c->link, st->id);
    err = cli_push_error(c, CF_RESET, st->id, code,
                         reason ? reason : sluice_coord_code_name(code));
    if (err < 0)
        return err;
    cli_stream_remove(c, st);
    return 0;
}
