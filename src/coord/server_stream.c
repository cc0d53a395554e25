/* SPDX-License-Identifier: MIT */
/* Coordinator server core, streams: OPEN routing (to the coordinator, to a
 * peer now or once it connects, to a broadcast channel), credit forwarded
 * end to end, half-close and reset, per-member broadcast queues with lag,
 * and the coordinator's own side of COORD streams. */
#include <stdio.h>

#include "coord/server_internal.h"

#define SEC 1000000ull

static uint64_t window(const sluice_coord_server *s)
{
    return s->cfg.window;
}

/* ------------------------------------------------------------------------ */
/* The per-connection stream table (sorted by id) */

sstream *srv_stream(const sconn *c, uint32_t id)
{
    return coord_idtab_find(&c->streams, id);
}

static sstream *stream_add(sluice_coord_server *s, sconn *c, uint32_t id, uint8_t kind,
                           uint8_t state)
{
    const sluice_allocator *a = &s->cfg.alloc;
    sstream *st = sluice_xcalloc(a, 1, sizeof *st);

    if (!st) {
        s->stats.alloc_failures++;
        return NULL;
    }
    st->id = id;
    st->kind = kind;
    st->state = state;
    st->conn = c;
    if (coord_idtab_insert(&c->streams, a, st) < 0) {
        s->stats.alloc_failures++;
        sluice_xfree(a, st);
        return NULL;
    }
    s->stats.streams++;
    s->stats.streams_total++;
    return st;
}

void srv_stream_remove(sluice_coord_server *s, sstream *st)
{
    coord_idtab_remove(&st->conn->streams, st);
    if (st->peer)
        st->peer->peer = NULL;
    s->stats.streams--;
    sluice_xfree(&s->cfg.alloc, st);
}

/* Drop frames still queued to the client for st: it will not need them. */
static void discard_output(sconn *c, sstream *st)
{
    st->lag = 0;
    coord_link_discard_stream(&c->link, st->id);
}

/* ------------------------------------------------------------------------ */
/* Broadcast channels */

static size_t chan_hash(const sluice_coord_server *s, const char *p, size_t len)
{
    uint64_t h = 0x84222325cbf29ce4ull ^ s->hash_key;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)p[i];
        h *= 0x100000001b3ull;
    }
    return (size_t)(h ^ h >> 31) & s->chans_mask;
}

static schan *chan_find(const sluice_coord_server *s, const char *p, size_t len)
{
    for (schan *ch = s->chans[chan_hash(s, p, len)]; ch; ch = ch->hnext)
        if (strlen(ch->name) == len && memcmp(ch->name, p, len) == 0)
            return ch;
    return NULL;
}

static void chan_free(sluice_coord_server *s, schan *ch)
{
    schan **pp = &s->chans[chan_hash(s, ch->name, strlen(ch->name))];
    for (; *pp; pp = &(*pp)->hnext) {
        if (*pp == ch) {
            *pp = ch->hnext;
            break;
        }
    }
    sluice_xfree(&s->cfg.alloc, ch->members);
    sluice_xfree(&s->cfg.alloc, ch);
    s->n_chans--;
    s->stats.channels = s->n_chans;
}

void srv_chan_free_all(sluice_coord_server *s)
{
    for (size_t i = 0; s->chans && i <= s->chans_mask; i++)
        while (s->chans[i])
            chan_free(s, s->chans[i]);
}

/* Join st to channel name. Returns 0, or the wire code to refuse with. */
static int chan_join(sluice_coord_server *s, sstream *st, const char *name, size_t len)
{
    const sluice_allocator *a = &s->cfg.alloc;
    schan *ch = chan_find(s, name, len);

    if (!ch) {
        if (s->n_chans >= s->cfg.max_channels)
            return SLUICE_COORD_E_LIMIT;
        ch = sluice_xcalloc(a, 1, sizeof *ch);
        if (!ch) {
            s->stats.alloc_failures++;
            return SLUICE_COORD_E_INTERNAL;
        }
        memcpy(ch->name, name, len);
        size_t b = chan_hash(s, name, len);
        ch->hnext = s->chans[b];
        s->chans[b] = ch;
        s->n_chans++;
        s->stats.channels = s->n_chans;
    }
    if (ch->n_members >= s->cfg.max_members)
        return SLUICE_COORD_E_LIMIT;
    if (ch->n_members == ch->cap_members) {
        uint32_t cap = ch->cap_members ? ch->cap_members * 2 : 4;
        if (cap > s->cfg.max_members)
            cap = (uint32_t)s->cfg.max_members;
        sstream **m = sluice_xcalloc(a, cap, sizeof *m);
        if (!m) {
            s->stats.alloc_failures++;
            if (!ch->n_members)
                chan_free(s, ch);
            return SLUICE_COORD_E_INTERNAL;
        }
        if (ch->n_members)
            memcpy(m, ch->members, ch->n_members * sizeof *m);
        sluice_xfree(a, ch->members);
        ch->members = m;
        ch->cap_members = cap;
    }
    st->chan = ch;
    st->member_idx = ch->n_members;
    ch->members[ch->n_members++] = st;
    return 0;
}

static void chan_leave(sluice_coord_server *s, sstream *st)
{
    schan *ch = st->chan;
    uint32_t i = st->member_idx;

    if (!ch)
        return;
    ch->members[i] = ch->members[--ch->n_members];
    ch->members[i]->member_idx = i;
    st->chan = NULL;
    if (!ch->n_members)
        chan_free(s, ch);
}

/* One copy of the tagged message, shared by every member's queue entry. A
 * member whose queue is over member_queue_bytes loses the message and is
 * told how many it lost (LAG) before the next one that fits. */
static int fanout(sluice_coord_server *s, schan *ch, const char *sender, const uint8_t *data,
                  size_t len)
{
    size_t slen = strlen(sender);
    coord_blob *b = coord_blob_new(&s->cfg.alloc, 1 + slen + len);
    uint64_t cost;
    int queued = 0;

    if (!b) {
        s->stats.alloc_failures++;
        return SLUICE_ERR_NOMEM;
    }
    coord_enc_bcast_prefix(b->data, 1 + slen, sender);
    if (len)
        memcpy(b->data + 1 + slen, data, len);
    cost = SLUICE_COORD_MESSAGE_COST(b->len);
    for (uint32_t i = 0; i < ch->n_members; i++) {
        sstream *m = ch->members[i];
        if (!srv_alive(m->conn) || m->tx_closed)
            continue;
        if (m->queued + cost > s->cfg.member_queue_bytes) {
            m->lag++;
            s->stats.broadcast_dropped++;
            continue;
        }
        if (m->lag) {
            uint32_t n = m->lag > UINT32_MAX ? UINT32_MAX : (uint32_t)m->lag;
            if (srv_push_u32(s, m->conn, CF_LAG, m->id, n) < 0)
                continue;
            m->lag -= n;
        }
        if (srv_push(s, m->conn, CF_BCAST_DATA, m->id, NULL, 0, b, (uint32_t)cost) == 0) {
            m->queued += cost;
            queued++;
        }
    }
    coord_blob_unref(&s->cfg.alloc, b);
    return queued;
}

void srv_dequeued(void *ctx, const coord_qent *e)
{
    sconn *c = ctx;
    sstream *st;

    if (!e->acct || e->hdr[0] != CF_BCAST_DATA)
        return;
    st = srv_stream(c, rd32(e->hdr + 4));
    if (!st || st->kind != SLUICE_COORD_KIND_BROADCAST)
        return;
    st->queued -= st->queued < e->acct ? st->queued : e->acct;
    /* The queue has drained: report what was lost without waiting for the
     * next message (there may be none). */
    if (!st->queued && st->lag && srv_alive(c) && !st->tx_closed) {
        uint32_t n = st->lag > UINT32_MAX ? UINT32_MAX : (uint32_t)st->lag;
        if (srv_push_u32(c->srv, c, CF_LAG, st->id, n) == 0)
            st->lag -= n;
    }
}

void srv_return_credit(sluice_coord_server *s, sstream *st, bool force)
{
    if (st->state != SS_OPEN || !srv_alive(st->conn) || !st->pending_credit)
        return;
    if (!force && !coord_credit_due(st->pending_credit, window(s), s->cfg.max_message))
        return;
    uint32_t n = st->pending_credit > UINT32_MAX ? UINT32_MAX : (uint32_t)st->pending_credit;
    if (srv_push_u32(s, st->conn, CF_CREDIT, st->id, n) == 0) {
        st->pending_credit -= n;
        st->rx_allowed += n;
    }
}

/* ------------------------------------------------------------------------ */
/* Held opens */

static void held_remove(sluice_coord_server *s, size_t i)
{
    memmove(s->held + i, s->held + i + 1, (s->n_held - i - 1) * sizeof *s->held);
    s->n_held--;
    s->stats.held_opens = s->n_held;
}

static void held_remove_stream(sluice_coord_server *s, const sstream *st)
{
    for (size_t i = 0; i < s->n_held; i++) {
        if (s->held[i].st == st) {
            held_remove(s, i);
            return;
        }
    }
}

uint64_t srv_held_next(const sluice_coord_server *s)
{
    uint64_t t = SLUICE_NEVER;
    for (size_t i = 0; i < s->n_held; i++)
        if (s->held[i].deadline_us < t)
            t = s->held[i].deadline_us;
    return t;
}

void srv_held_timeout(sluice_coord_server *s, uint64_t now)
{
    char why[160];

    for (size_t i = 0; i < s->n_held;) {
        held_open *h = &s->held[i];
        if (now < h->deadline_us) {
            i++;
            continue;
        }
        sstream *st = h->st;
        snprintf(why, sizeof why, "no client named \"%s\" connected in time", h->target);
        srv_push_error(s, st->conn, CF_REFUSE, st->id, SLUICE_COORD_E_TIMEOUT, why);
        held_remove(s, i);
        srv_stream_remove(s, st);
        s->stats.held_open_timeouts++;
        s->stats.streams_refused++;
    }
}

/* ------------------------------------------------------------------------ */
/* Opening */

static void refuse(sluice_coord_server *s, sconn *c, uint32_t id, int code, const char *why)
{
    s->stats.streams_refused++;
    srv_push_error(s, c, CF_REFUSE, id, code, why);
}

/* The attributes the coordinator attaches for `to` about `other` on a
 * direct stream: other's certificate fingerprint and TURN credentials for
 * `to`. user/pass are the caller's buffers the views point into. */
static void direct_attrs(const sluice_coord_server *s, const sconn *to, const sconn *other,
                         coord_attrs *a, char user[96], char pass[32])
{
    memset(a, 0, sizeof *a);
    if (other->has_fp)
        a->fingerprint = other->fp;
    if (!s->turn_secret)
        return;
    if (sluice_coord_turn_rest_credentials(s->turn_secret, to->name, s->unix_time_s,
                                           s->cfg.turn_ttl_s, user, 96, pass, 32) < 0)
        return;
    a->turn_username = (coord_str){user, strlen(user)};
    a->turn_password = (coord_str){pass, strlen(pass)};
    a->turn_ttl_s = s->cfg.turn_ttl_s;
    a->has_turn_ttl = true;
    for (size_t i = 0; i < SLUICE_COORD_TURN_URIS_MAX && s->turn_uris[i]; i++)
        a->turn_uris[a->n_turn_uris++] = (coord_str){s->turn_uris[i], strlen(s->turn_uris[i])};
}

/* st (on c, waiting) goes to client t as a new coordinator-opened stream. */
static void route_open(sluice_coord_server *s, sstream *st, sconn *t, const char *label)
{
    sconn *c = st->conn;
    uint8_t buf[COORD_MAX_CONTROL];
    char user[96], pass[32], why[128];
    coord_attrs attrs;
    sstream *pt;
    int n;

    if (t->streams.n >= s->cfg.max_streams_per_client || t->next_even == 0) {
        snprintf(why, sizeof why, "\"%s\" has too many streams open", t->name);
        refuse(s, c, st->id, SLUICE_COORD_E_LIMIT, why);
        srv_stream_remove(s, st);
        return;
    }
    pt = stream_add(s, t, t->next_even, st->kind, SS_WAIT_CLIENT);
    if (!pt) {
        refuse(s, c, st->id, SLUICE_COORD_E_INTERNAL, "out of memory");
        srv_stream_remove(s, st);
        return;
    }
    t->next_even += 2;
    st->peer = pt;
    pt->peer = st;
    st->state = SS_WAIT_PEER;
    if (st->kind == SLUICE_COORD_KIND_DIRECT)
        direct_attrs(s, t, c, &attrs, user, pass);
    n = coord_enc_open(buf, sizeof buf, st->kind, 0, c->name, label,
                       st->kind == SLUICE_COORD_KIND_DIRECT ? &attrs : NULL);
    OPENSSL_cleanse(pass, sizeof pass);
    if (n < 0 || srv_push(s, t, CF_OPEN, pt->id, buf, (size_t)n, NULL, 0) < 0) {
        srv_stream_remove(s, pt);
        refuse(s, c, st->id, SLUICE_COORD_E_PEER_GONE, "the peer could not be reached");
        srv_stream_remove(s, st);
    }
}

void srv_held_connected(sluice_coord_server *s, uint64_t now, sconn *t)
{
    (void)now;
    for (size_t i = 0; i < s->n_held;) {
        held_open h = s->held[i];
        if (strcmp(h.target, t->name) != 0) {
            i++;
            continue;
        }
        held_remove(s, i);
        route_open(s, h.st, t, h.label);
        if (!srv_alive(t))
            return;
    }
}

static void on_open(sluice_coord_server *s, uint64_t now, sconn *c, uint32_t id,
                    const uint8_t *p, size_t n)
{
    char why[160], name[SLUICE_COORD_CHANNEL_MAX + 1], label[SLUICE_COORD_LABEL_MAX + 1];
    coord_open o;
    sstream *st;

    if (!(id & 1) || id <= c->max_odd) {
        snprintf(why, sizeof why, "OPEN with stream id %u: client ids are odd and increasing", id);
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, why, true);
        return;
    }
    c->max_odd = id;
    if (coord_dec_open(p, n, &o) < 0) {
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, "malformed OPEN", true);
        return;
    }
    if (!coord_label_ok(o.label.p, o.label.len)) {
        refuse(s, c, id, SLUICE_COORD_E_BAD_NAME, "invalid stream label");
        return;
    }
    memcpy(label, o.label.p, o.label.len);
    label[o.label.len] = 0;
    if (c->streams.n >= s->cfg.max_streams_per_client) {
        snprintf(why, sizeof why, "stream limit (%zu per client) reached",
                 s->cfg.max_streams_per_client);
        refuse(s, c, id, SLUICE_COORD_E_LIMIT, why);
        return;
    }
    switch (o.kind) {
    case SLUICE_COORD_KIND_COORD:
        if (o.name.len) {
            refuse(s, c, id, SLUICE_COORD_E_BAD_NAME, "a stream to the coordinator has no name");
            return;
        }
        st = stream_add(s, c, id, o.kind, SS_WAIT_PEER);
        if (!st) {
            refuse(s, c, id, SLUICE_COORD_E_INTERNAL, "out of memory");
            return;
        }
        if (!srv_event(s, SLUICE_COORD_SERVER_EVENT_STREAM_INCOMING, c, id, label, NULL, NULL, 0)) {
            refuse(s, c, id, SLUICE_COORD_E_LIMIT, "the coordinator is too busy");
            srv_stream_remove(s, st);
        }
        return;
    case SLUICE_COORD_KIND_BROADCAST: {
        if (!coord_channel_ok(o.name.p, o.name.len)) {
            refuse(s, c, id, SLUICE_COORD_E_BAD_NAME, "invalid channel name");
            return;
        }
        st = stream_add(s, c, id, o.kind, SS_OPEN);
        if (!st) {
            refuse(s, c, id, SLUICE_COORD_E_INTERNAL, "out of memory");
            return;
        }
        int code = chan_join(s, st, o.name.p, o.name.len);
        if (code) {
            snprintf(why, sizeof why, "%s",
                     code == SLUICE_COORD_E_LIMIT
                         ? (chan_find(s, o.name.p, o.name.len) ? "the channel is full"
                                                               : "too many broadcast channels")
                         : "out of memory");
            refuse(s, c, id, code, why);
            srv_stream_remove(s, st);
            return;
        }
        st->rx_allowed = (int64_t)window(s);
        srv_push(s, c, CF_ACCEPT, id, NULL, 0, NULL, 0);
        return;
    }
    default: /* PEER, DIRECT */
        break;
    }
    if (!coord_name_ok(o.name.p, o.name.len)) {
        refuse(s, c, id, SLUICE_COORD_E_BAD_NAME, "invalid peer name");
        return;
    }
    memcpy(name, o.name.p, o.name.len);
    name[o.name.len] = 0;
    sconn *t = srv_find_name(s, o.name.p, o.name.len);
    if (t && srv_alive(t)) {
        st = stream_add(s, c, id, o.kind, SS_WAIT_PEER);
        if (!st)
            refuse(s, c, id, SLUICE_COORD_E_INTERNAL, "out of memory");
        else
            route_open(s, st, t, label);
        return;
    }
    if (!(o.flags & SLUICE_COORD_OPEN_WAIT)) {
        snprintf(why, sizeof why, "no client named \"%s\" is connected", name);
        refuse(s, c, id, SLUICE_COORD_E_NO_PEER, why);
        return;
    }
    if (s->n_held >= s->cfg.max_held_opens) {
        snprintf(why, sizeof why, "too many opens are waiting for peers (%zu)",
                 s->cfg.max_held_opens);
        refuse(s, c, id, SLUICE_COORD_E_LIMIT, why);
        return;
    }
    st = stream_add(s, c, id, o.kind, SS_HELD);
    if (!st) {
        refuse(s, c, id, SLUICE_COORD_E_INTERNAL, "out of memory");
        return;
    }
    held_open *h = &s->held[s->n_held++];
    s->stats.held_opens = s->n_held;
    memset(h, 0, sizeof *h);
    h->st = st;
    uint64_t wait = s->cfg.held_open_timeout_us;
    if (o.attrs.has_wait && o.attrs.wait_ms && (uint64_t)o.attrs.wait_ms * 1000 < wait)
        wait = (uint64_t)o.attrs.wait_ms * 1000;
    h->deadline_us = now + wait;
    memcpy(h->target, name, o.name.len + 1);
    memcpy(h->label, label, o.label.len + 1);
}

/* ------------------------------------------------------------------------ */
/* Frames on open streams */

static void both_remove(sluice_coord_server *s, sstream *st)
{
    sstream *ps = st->peer;
    if (ps)
        srv_stream_remove(s, ps);
    srv_stream_remove(s, st);
}

static void on_accept(sluice_coord_server *s, sconn *c, sstream *st, const uint8_t *p, size_t n)
{
    uint8_t buf[COORD_MAX_CONTROL];
    char user[96], pass[32], why[96];
    coord_attrs attrs;
    int len;

    if (st->state != SS_WAIT_CLIENT) {
        snprintf(why, sizeof why, "ACCEPT on stream %u, which was not offered", st->id);
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, why, true);
        return;
    }
    if (coord_dec_accept(p, n, &attrs) < 0) {
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, "malformed ACCEPT", true);
        return;
    }
    st->state = SS_OPEN;
    st->rx_allowed = (int64_t)window(s);
    if (st->kind == SLUICE_COORD_KIND_COORD) {
        st->tx_credit = (int64_t)window(s);
        srv_event(s, SLUICE_COORD_SERVER_EVENT_STREAM_ACCEPTED, c, st->id, NULL, NULL, NULL, 0);
        return;
    }
    sstream *ps = st->peer;
    if (!ps)
        return;
    ps->state = SS_OPEN;
    ps->rx_allowed = (int64_t)window(s);
    if (st->kind == SLUICE_COORD_KIND_DIRECT)
        direct_attrs(s, ps->conn, c, &attrs, user, pass);
    len = coord_enc_attrs(buf, sizeof buf, st->kind == SLUICE_COORD_KIND_DIRECT ? &attrs : NULL);
    OPENSSL_cleanse(pass, sizeof pass);
    if (len >= 0)
        srv_push(s, ps->conn, CF_ACCEPT, ps->id, buf, (size_t)len, NULL, 0);
}

static void on_refuse(sluice_coord_server *s, sconn *c, sstream *st, const uint8_t *p, size_t n)
{
    char reason[SLUICE_COORD_REASON_MAX + 1], why[96];
    int code;

    if (st->state != SS_WAIT_CLIENT) {
        snprintf(why, sizeof why, "REFUSE on stream %u, which was not offered", st->id);
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, why, true);
        return;
    }
    if (coord_dec_error_text(p, n, &code, reason, sizeof reason) < 0) {
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, "malformed REFUSE", true);
        return;
    }
    s->stats.streams_refused++;
    if (st->kind == SLUICE_COORD_KIND_COORD) {
        sev *ev = srv_event(s, SLUICE_COORD_SERVER_EVENT_STREAM_REFUSED, c, st->id, NULL, reason,
                            NULL, 0);
        if (ev)
            ev->code = code;
    } else if (st->peer) {
        srv_push_error(s, st->peer->conn, CF_REFUSE, st->peer->id, code, reason);
    }
    both_remove(s, st);
}

static void on_data(sluice_coord_server *s, sconn *c, sstream *st, const uint8_t *p, size_t n)
{
    uint64_t cost = SLUICE_COORD_MESSAGE_COST(n);
    char why[96];

    if (st->state != SS_OPEN || st->rx_closed) {
        snprintf(why, sizeof why, "DATA on stream %u, which is not open for sending", st->id);
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, why, true);
        return;
    }
    if ((int64_t)cost > st->rx_allowed) {
        snprintf(why, sizeof why, "DATA beyond the credit granted on stream %u", st->id);
        srv_kill(s, c, SLUICE_COORD_E_FLOW_CONTROL, why, true);
        return;
    }
    st->rx_allowed -= (int64_t)cost;
    s->stats.messages_in++;
    s->stats.bytes_in += n;
    switch (st->kind) {
    case SLUICE_COORD_KIND_COORD: {
        sev *e = srv_event(s, SLUICE_COORD_SERVER_EVENT_DATA, c, st->id, NULL, NULL, p, n);
        if (e) {
            e->credit = (uint32_t)cost;
        } else {
            st->pending_credit += cost;
            srv_return_credit(s, st, false);
        }
        return;
    }
    case SLUICE_COORD_KIND_BROADCAST:
        fanout(s, st->chan, c->name, p, n);
        st->pending_credit += cost;
        srv_return_credit(s, st, false);
        return;
    default: {
        sstream *ps = st->peer;
        coord_blob *b;
        if (!ps)
            return;
        b = coord_blob_new(&s->cfg.alloc, n);
        if (!b) {
            s->stats.alloc_failures++;
            srv_kill(s, c, SLUICE_COORD_E_INTERNAL, "out of memory", true);
            return;
        }
        if (n)
            memcpy(b->data, p, n);
        srv_push(s, ps->conn, CF_DATA, ps->id, NULL, 0, b, 0);
        coord_blob_unref(&s->cfg.alloc, b);
        return;
    }
    }
}

static void on_credit(sluice_coord_server *s, sconn *c, sstream *st, const uint8_t *p, size_t n)
{
    char why[96];
    uint32_t v;

    if (coord_dec_u32(p, n, &v) < 0) {
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, "malformed CREDIT", true);
        return;
    }
    if (st->state != SS_OPEN) {
        snprintf(why, sizeof why, "CREDIT on stream %u, which is not open", st->id);
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, why, true);
        return;
    }
    /* Credit is returned for consumed messages only: it never exceeds the
     * window, which is what bounds the coordinator's queues. */
    if (st->kind == SLUICE_COORD_KIND_COORD) {
        if (st->tx_credit + v > (int64_t)window(s))
            goto over;
        st->tx_credit += v;
        if (st->blocked) {
            st->blocked = false;
            srv_event(s, SLUICE_COORD_SERVER_EVENT_WRITABLE, c, st->id, NULL, NULL, NULL, 0);
        }
    } else if (st->kind != SLUICE_COORD_KIND_BROADCAST && st->peer) {
        sstream *ps = st->peer;
        if (ps->rx_allowed + v > (int64_t)window(s))
            goto over;
        ps->rx_allowed += v;
        srv_push_u32(s, ps->conn, CF_CREDIT, ps->id, v);
    }
    return;
over:
    snprintf(why, sizeof why, "CREDIT beyond the window on stream %u", st->id);
    srv_kill(s, c, SLUICE_COORD_E_FLOW_CONTROL, why, true);
}

static void on_close(sluice_coord_server *s, sconn *c, sstream *st)
{
    char why[96];

    if (st->state != SS_OPEN || st->rx_closed) {
        snprintf(why, sizeof why, "CLOSE on stream %u, which is not open or already closed",
                 st->id);
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, why, true);
        return;
    }
    st->rx_closed = true;
    switch (st->kind) {
    case SLUICE_COORD_KIND_COORD:
        srv_event(s, SLUICE_COORD_SERVER_EVENT_STREAM_FINISHED, c, st->id, NULL, NULL, NULL, 0);
        if (st->tx_closed) {
            srv_event(s, SLUICE_COORD_SERVER_EVENT_STREAM_CLOSED, c, st->id, NULL, NULL, NULL, 0);
            srv_stream_remove(s, st);
        }
        return;
    case SLUICE_COORD_KIND_BROADCAST:
        chan_leave(s, st);
        srv_push(s, c, CF_CLOSE, st->id, NULL, 0, NULL, 0);
        srv_stream_remove(s, st);
        return;
    default: {
        sstream *ps = st->peer;
        if (!ps)
            return;
        srv_push(s, ps->conn, CF_CLOSE, ps->id, NULL, 0, NULL, 0);
        ps->tx_closed = true;
        if (ps->rx_closed)
            both_remove(s, st);
        return;
    }
    }
}

static void on_reset(sluice_coord_server *s, sconn *c, sstream *st, const uint8_t *p, size_t n)
{
    char reason[SLUICE_COORD_REASON_MAX + 1];
    int code;

    if (coord_dec_error_text(p, n, &code, reason, sizeof reason) < 0) {
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, "malformed RESET", true);
        return;
    }
    discard_output(c, st);
    if (st->state == SS_HELD)
        held_remove_stream(s, st);
    chan_leave(s, st);
    if (st->kind == SLUICE_COORD_KIND_COORD) {
        sev *ev = srv_event(s, SLUICE_COORD_SERVER_EVENT_STREAM_CLOSED, c, st->id, NULL, reason,
                            NULL, 0);
        if (ev)
            ev->code = code;
    } else if (st->peer) {
        sstream *ps = st->peer;
        discard_output(ps->conn, ps);
        srv_push_error(s, ps->conn, CF_RESET, ps->id, code, reason);
    }
    both_remove(s, st);
}

int srv_stream_frame(sluice_coord_server *s, uint64_t now, sconn *c, const coord_hdr *h,
                     const uint8_t *p)
{
    char why[96];
    sstream *st;

    if (h->type == CF_OPEN) {
        on_open(s, now, c, h->stream, p, h->len);
        return 0;
    }
    st = srv_stream(c, h->stream);
    if (!st) {
        /* A frame for a stream that has ended crossed our RESET or CLOSE:
         * harmless. A stream that never existed is an error. */
        bool past = (h->stream & 1) ? h->stream <= c->max_odd : h->stream < c->next_even;
        if (past)
            return 0;
        snprintf(why, sizeof why, "%s on stream %u, which was never opened",
                 coord_frame_name(h->type), h->stream);
        srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, why, true);
        return SLUICE_ERR_STATE;
    }
    switch (h->type) {
    case CF_ACCEPT:
        on_accept(s, c, st, p, h->len);
        break;
    case CF_REFUSE:
        on_refuse(s, c, st, p, h->len);
        break;
    case CF_DATA:
        on_data(s, c, st, p, h->len);
        break;
    case CF_CREDIT:
        on_credit(s, c, st, p, h->len);
        break;
    case CF_CLOSE:
        if (h->len)
            srv_kill(s, c, SLUICE_COORD_E_PROTOCOL, "CLOSE with a payload", true);
        else
            on_close(s, c, st);
        break;
    case CF_RESET:
        on_reset(s, c, st, p, h->len);
        break;
    default:
        break;
    }
    return srv_alive(c) ? 0 : SLUICE_ERR_STATE;
}

void srv_streams_teardown(sluice_coord_server *s, sconn *c)
{
    char why[128];

    snprintf(why, sizeof why, "\"%s\" disconnected", c->name[0] ? c->name : "the peer");
    while (c->streams.n) {
        sstream *st = c->streams.v[c->streams.n - 1];
        sstream *ps = st->peer;
        if (ps) {
            discard_output(ps->conn, ps);
            srv_push_error(s, ps->conn, CF_RESET, ps->id, SLUICE_COORD_E_PEER_GONE, why);
        }
        if (st->state == SS_HELD)
            held_remove_stream(s, st);
        chan_leave(s, st);
        both_remove(s, st);
    }
}

/* ------------------------------------------------------------------------ */
/* The coordinator's own side of COORD streams */

static sstream *coord_stream(sluice_coord_server *s, uint64_t now, uint64_t conn, uint32_t id,
                             int *err)
{
    sconn *c = s ? srv_conn(s, conn) : NULL;
    sstream *st = c && srv_alive(c) ? srv_stream(c, id) : NULL;

    if (s)
        s->now = now;
    *err = 0;
    if (!st || st->kind != SLUICE_COORD_KIND_COORD) {
        *err = SLUICE_ERR_NOT_FOUND;
        return NULL;
    }
    return st;
}

int sluice_coord_server_accept_stream(sluice_coord_server *s, uint64_t now_us, uint64_t conn,
                                      uint32_t stream)
{
    int err;
    sstream *st = coord_stream(s, now_us, conn, stream, &err);

    if (!st)
        return err;
    if (st->state != SS_WAIT_PEER || (st->id & 1) == 0)
        return SLUICE_ERR_STATE;
    if (srv_push(s, st->conn, CF_ACCEPT, st->id, NULL, 0, NULL, 0) < 0)
        return SLUICE_ERR_NOMEM;
    st->state = SS_OPEN;
    st->rx_allowed = (int64_t)window(s);
    st->tx_credit = (int64_t)window(s);
    return 0;
}

int sluice_coord_server_refuse_stream(sluice_coord_server *s, uint64_t now_us, uint64_t conn,
                                      uint32_t stream, int code, const char *reason)
{
    int err;
    sstream *st = coord_stream(s, now_us, conn, stream, &err);

    if (!st)
        return err;
    if (st->state != SS_WAIT_PEER || (st->id & 1) == 0)
        return SLUICE_ERR_STATE;
    refuse(s, st->conn, st->id, code, reason ? reason : sluice_coord_code_name(code));
    srv_stream_remove(s, st);
    return 0;
}

int64_t sluice_coord_server_open_stream(sluice_coord_server *s, uint64_t now_us, uint64_t conn,
                                        const char *label)
{
    uint8_t buf[COORD_MAX_CONTROL];
    sconn *c = s ? srv_conn(s, conn) : NULL;
    sstream *st;
    int n;

    if (!c || c->state != CS_READY || !srv_alive(c))
        return c ? SLUICE_ERR_STATE : SLUICE_ERR_NOT_FOUND;
    s->now = now_us;
    if (label && !coord_label_ok(label, strlen(label)))
        return SLUICE_ERR_INVALID;
    if (c->streams.n >= s->cfg.max_streams_per_client || c->next_even == 0)
        return SLUICE_ERR_FULL;
    n = coord_enc_open(buf, sizeof buf, SLUICE_COORD_KIND_COORD, 0, "", label, NULL);
    if (n < 0)
        return n;
    st = stream_add(s, c, c->next_even, SLUICE_COORD_KIND_COORD, SS_WAIT_CLIENT);
    if (!st)
        return SLUICE_ERR_NOMEM;
    c->next_even += 2;
    if (srv_push(s, c, CF_OPEN, st->id, buf, (size_t)n, NULL, 0) < 0) {
        srv_stream_remove(s, st);
        return SLUICE_ERR_NOMEM;
    }
    return st->id;
}

int sluice_coord_server_send(sluice_coord_server *s, uint64_t now_us, uint64_t conn,
                             uint32_t stream, const uint8_t *data, size_t len)
{
    int err;
    sstream *st = coord_stream(s, now_us, conn, stream, &err);
    coord_blob *b;

    if (!st)
        return err;
    if (!data && len)
        return SLUICE_ERR_INVALID;
    if (len > s->cfg.max_message)
        return SLUICE_ERR_INVALID;
    if (st->state != SS_OPEN || st->tx_closed)
        return SLUICE_ERR_STATE;
    if ((int64_t)SLUICE_COORD_MESSAGE_COST(len) > st->tx_credit) {
        st->blocked = true;
        return SLUICE_ERR_FULL;
    }
    b = coord_blob_new(&s->cfg.alloc, len);
    if (!b)
        return SLUICE_ERR_NOMEM;
    if (len)
        memcpy(b->data, data, len);
    err = srv_push(s, st->conn, CF_DATA, st->id, NULL, 0, b, 0);
    coord_blob_unref(&s->cfg.alloc, b);
    if (err < 0)
        return err;
    st->tx_credit -= (int64_t)SLUICE_COORD_MESSAGE_COST(len);
    return 0;
}

int64_t sluice_coord_server_writable(const sluice_coord_server *s, uint64_t conn,
                                     uint32_t stream)
{
    sconn *c = s ? srv_conn(s, conn) : NULL;
    sstream *st = c && srv_alive(c) ? srv_stream(c, stream) : NULL;
    int64_t n;

    if (!st || st->kind != SLUICE_COORD_KIND_COORD)
        return SLUICE_ERR_NOT_FOUND;
    if (st->state != SS_OPEN || st->tx_closed)
        return SLUICE_ERR_STATE;
    n = st->tx_credit - 12;
    if (n < 0)
        return 0;
    return n > (int64_t)s->cfg.max_message ? (int64_t)s->cfg.max_message : n;
}

int sluice_coord_server_close_stream(sluice_coord_server *s, uint64_t now_us, uint64_t conn,
                                     uint32_t stream)
{
    int err;
    sstream *st = coord_stream(s, now_us, conn, stream, &err);

    if (!st)
        return err;
    if (st->state != SS_OPEN || st->tx_closed)
        return SLUICE_ERR_STATE;
    if (srv_push(s, st->conn, CF_CLOSE, st->id, NULL, 0, NULL, 0) < 0)
        return SLUICE_ERR_NOMEM;
    st->tx_closed = true;
    /* Whatever credit is pending no longer matters once both sides closed;
     * until then the client may still be sending. */
    if (st->rx_closed) {
        srv_event(s, SLUICE_COORD_SERVER_EVENT_STREAM_CLOSED, st->conn, st->id, NULL, NULL, NULL,
                  0);
        srv_stream_remove(s, st);
    }
    return 0;
}

int sluice_coord_server_reset_stream(sluice_coord_server *s, uint64_t now_us, uint64_t conn,
                                     uint32_t stream, int code, const char *reason)
{
    int err;
    sstream *st = coord_stream(s, now_us, conn, stream, &err);

    if (!st)
        return err;
    discard_output(st->conn, st);
    srv_push_error(s, st->conn, CF_RESET, st->id, code,
                   reason ? reason : sluice_coord_code_name(code));
    srv_stream_remove(s, st);
    return 0;
}

int sluice_coord_server_broadcast(sluice_coord_server *s, uint64_t now_us, const char *channel,
                                  const uint8_t *data, size_t len)
{
    schan *ch;

    if (!s || !channel || (!data && len))
        return SLUICE_ERR_INVALID;
    s->now = now_us;
    if (len > s->cfg.max_message)
        return SLUICE_ERR_INVALID;
    ch = chan_find(s, channel, strlen(channel));
    if (!ch)
        return SLUICE_ERR_NOT_FOUND;
    return fanout(s, ch, "", data, len);
}
