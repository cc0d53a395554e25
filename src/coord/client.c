/* SPDX-License-Identifier: MIT */
/* Coordinator client: one TLS 1.3 connection to the coordinator, verified
 * by CA, system store or a pinned fingerprint; HELLO/WELCOME, keepalive,
 * idle timeout, the event queue and the terminal event. Streams are in
 * client_stream.c. */
#include <stdio.h>

#include "coord/client_internal.h"

#define SEC 1000000ull
#define DEFAULT_MAX_STREAMS 64
#define DEFAULT_QUEUE_BYTES (256u * 1024u)

void sluice_coord_client_config_init(sluice_coord_client_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_streams = DEFAULT_MAX_STREAMS;
    cfg->recv_queue_bytes = DEFAULT_QUEUE_BYTES;
    cfg->send_queue_bytes = DEFAULT_QUEUE_BYTES;
    cfg->handshake_timeout_us = 10 * SEC;
    cfg->keepalive_us = 15 * SEC;
    cfg->idle_timeout_us = 45 * SEC;
}

static bool config_valid(const sluice_coord_client_config *c, bool plaintext)
{
    if (!sluice_coord_name_valid(c->name))
        return false;
    if (!plaintext && (!c->cert_file || !c->key_file || (!c->server_name && !c->pinned)))
        return false;
    if (c->max_streams < 1 || c->max_streams > 65536)
        return false;
    if (c->recv_queue_bytes < SLUICE_COORD_MESSAGE_COST(1) || c->send_queue_bytes < 65536)
        return false;
    if (!c->handshake_timeout_us || !c->keepalive_us || !c->idle_timeout_us)
        return false;
    return true;
}

static sluice_coord_client *client_new(const sluice_coord_client_config *cfg, bool plaintext,
                                       int *err)
{
    sluice_coord_client *c;
    sluice_tls *tls = NULL;
    int dummy;

    if (!err)
        err = &dummy;
    if (!cfg || !config_valid(cfg, plaintext)) {
        sluice_log(SLUICE_LOG_ERROR, "coord", "invalid coordinator client configuration");
        *err = SLUICE_ERR_INVALID;
        return NULL;
    }
    c = sluice_xcalloc(&cfg->alloc, 1, sizeof *c);
    if (!c) {
        *err = SLUICE_ERR_NOMEM;
        return NULL;
    }
    c->cfg = *cfg;
    memcpy(c->name, cfg->name, strlen(cfg->name) + 1);
    c->cfg.name = c->name;
    c->cfg.cert_file = c->cfg.key_file = c->cfg.server_name = c->cfg.ca_file = NULL;
    if (!c->cfg.max_events)
        c->cfg.max_events = 4 * c->cfg.max_streams + 64;
    c->plaintext = plaintext;
    c->evq.max = c->cfg.max_events;
    c->next_odd = 1;
    c->max_message = SLUICE_COORD_MAX_MESSAGE_LIMIT; /* until WELCOME says */
    if (!plaintext) {
        sluice_tls_config tc;
        sluice_tls_config_init(&tc);
        tc.server_name = cfg->server_name;
        tc.ca_file = cfg->ca_file;
        /* A pin replaces chain and name checks: the fingerprint is the
         * whole identity (compared once the handshake completes). */
        tc.verify = !cfg->pinned;
        tc.cert_file = cfg->cert_file;
        tc.key_file = cfg->key_file;
        tc.min_version = 13;
        tc.verify_time_s = cfg->unix_time_s;
        tls = sluice_tls_new(&tc, err);
        if (!tls) {
            sluice_xfree(&cfg->alloc, c);
            return NULL;
        }
    }
    coord_link_init(&c->link, tls, &c->cfg.alloc, c->max_message);
    *err = 0;
    return c;
}

sluice_coord_client *sluice_coord_client_new(const sluice_coord_client_config *cfg, int *err)
{
    return client_new(cfg, false, err);
}

sluice_coord_client *coord_client_new_plaintext(const sluice_coord_client_config *cfg, int *err)
{
    return client_new(cfg, true, err);
}

static void event_free(sluice_coord_client *c, cev *e)
{
    if (e != &c->final_ev)
        sluice_xfree(&c->cfg.alloc, e);
}

void sluice_coord_client_free(sluice_coord_client *c)
{
    if (!c)
        return;
    coord_evnode *n = coord_evq_release(&c->evq);
    if (n)
        event_free(c, (cev *)n);
    while ((n = coord_evq_pop(&c->evq)) != NULL)
        event_free(c, (cev *)coord_evq_release(&c->evq));
    cli_streams_free(c);
    coord_link_free(&c->link);
    sluice_xfree(&c->cfg.alloc, c);
}

sluice_coord_client_state sluice_coord_client_get_state(const sluice_coord_client *c)
{
    return c ? c->state : SLUICE_COORD_CLIENT_CLOSED;
}

/* ------------------------------------------------------------------------ */
/* Output and events */

int cli_push(sluice_coord_client *c, uint8_t type, uint32_t stream, const void *p, size_t len,
             coord_blob *blob)
{
    int r;

    if (c->state != SLUICE_COORD_CLIENT_CONNECTING && c->state != SLUICE_COORD_CLIENT_CONNECTED)
        return SLUICE_ERR_STATE;
    r = coord_link_push(&c->link, type, stream, p, len, blob, 0);
    if (r < 0)
        cli_fail(c, SLUICE_COORD_E_INTERNAL, r, "out of memory", false);
    return r;
}

int cli_push_error(sluice_coord_client *c, uint8_t type, uint32_t stream, int code,
                   const char *reason)
{
    uint8_t p[3 + SLUICE_COORD_REASON_MAX];
    int n = coord_enc_error(p, sizeof p, (uint16_t)code, reason);
    return n < 0 ? n : cli_push(c, type, stream, p, (size_t)n, NULL);
}

cev *cli_event(sluice_coord_client *c, uint8_t type, uint32_t stream, const char *name,
               const char *label, const char *sender, const char *reason, const uint8_t *data,
               size_t len, size_t extra)
{
    size_t strs = (name ? strlen(name) : 0) + (label ? strlen(label) : 0) +
                  (sender ? strlen(sender) : 0) + (reason ? strlen(reason) : 0) + 4;
    bool counted = type != SLUICE_COORD_EVENT_DATA;
    cev *e;
    char *tail;

    if (!coord_evq_admit(&c->evq, counted))
        return NULL;
    e = sluice_xcalloc(&c->cfg.alloc, 1, sizeof *e + strs + len + extra);
    if (!e) {
        c->evq.dropped++;
        return NULL;
    }
    e->type = type;
    e->stream = stream;
    e->node.counted = counted;
    tail = (char *)(e + 1);
    e->name = coord_put_str(&tail, name);
    e->label = coord_put_str(&tail, label);
    e->sender = coord_put_str(&tail, sender);
    e->reason = coord_put_str(&tail, reason);
    if (len)
        memcpy(tail, data, len);
    e->data = (const uint8_t *)tail;
    e->len = len;
    coord_evq_append(&c->evq, &e->node);
    return e;
}

static void queue_final(sluice_coord_client *c)
{
    if (c->final_queued)
        return;
    c->final_queued = true;
    c->state = SLUICE_COORD_CLIENT_CLOSED;
    coord_link_discard(&c->link);
    coord_evq_append(&c->evq, &c->final_ev.node);
}

void cli_fail(sluice_coord_client *c, int code, int err, const char *reason, bool send_error)
{
    cev *e = &c->final_ev;

    if (c->state == SLUICE_COORD_CLIENT_CLOSING || c->state == SLUICE_COORD_CLIENT_CLOSED)
        return;
    memset(e, 0, sizeof *e);
    e->type = c->was_connected ? SLUICE_COORD_EVENT_CLOSED : SLUICE_COORD_EVENT_REFUSED;
    e->code = code;
    e->err = err;
    snprintf(c->final_reason, sizeof c->final_reason, "%s",
             reason ? reason : sluice_coord_code_name(code));
    e->name = e->label = e->sender = "";
    e->reason = c->final_reason;
    e->data = (const uint8_t *)"";
    sluice_log(code ? SLUICE_LOG_WARNING : SLUICE_LOG_INFO, "coord", "%s: %s: %s", c->name,
               sluice_coord_code_name(code), c->final_reason);
    coord_link_discard(&c->link);
    if (send_error && c->link.established) {
        uint8_t p[3 + SLUICE_COORD_REASON_MAX];
        int n = coord_enc_error(p, sizeof p, (uint16_t)code, c->final_reason);
        if (n > 0)
            coord_link_push(&c->link, CF_ERROR, 0, p, (size_t)n, NULL, 0);
    }
    cli_streams_free(c);
    coord_link_close(&c->link);
    c->state = SLUICE_COORD_CLIENT_CLOSING;
    c->deadline_us = c->now + c->cfg.handshake_timeout_us;
    if (!coord_link_has_output(&c->link, c->tx_scratch))
        queue_final(c);
}

/* ------------------------------------------------------------------------ */
/* Connection */

int sluice_coord_client_start(sluice_coord_client *c, uint64_t now_us)
{
    uint8_t p[4 + SLUICE_COORD_NAME_MAX];

    if (!c)
        return SLUICE_ERR_INVALID;
    if (c->state != SLUICE_COORD_CLIENT_IDLE)
        return SLUICE_ERR_STATE;
    c->state = SLUICE_COORD_CLIENT_CONNECTING;
    c->now = now_us;
    c->last_rx_us = now_us;
    c->deadline_us = now_us + c->cfg.handshake_timeout_us;
    if (c->plaintext) {
        int n = coord_enc_hello(p, sizeof p, c->name);
        return n < 0 ? n : cli_push(c, CF_HELLO, 0, p, (size_t)n, NULL);
    }
    return 0;
}

/* The coordinator is who it says (or who we pinned): say our name. */
static int on_established(sluice_coord_client *c)
{
    uint8_t p[4 + SLUICE_COORD_NAME_MAX], fp[32];
    int n;

    if (c->cfg.pinned) {
        if (sluice_tls_peer_fingerprint(c->link.tls, fp) != 32 ||
            !sluice_ct_equal(fp, c->cfg.pinned_sha256, 32)) {
            char got[96] = "none", want[96];
            if (sluice_tls_peer_fingerprint(c->link.tls, fp) == 32)
                sluice_coord_fingerprint_format(fp, got, sizeof got);
            sluice_coord_fingerprint_format(c->cfg.pinned_sha256, want, sizeof want);
            char why[256];
            snprintf(why, sizeof why, "the coordinator's certificate %.95s is not the pinned %.95s",
                     got, want);
            cli_fail(c, SLUICE_COORD_E_PIN_MISMATCH, SLUICE_ERR_AUTH, why, false);
            return SLUICE_ERR_AUTH;
        }
    }
    n = coord_enc_hello(p, sizeof p, c->name);
    return n < 0 ? n : cli_push(c, CF_HELLO, 0, p, (size_t)n, NULL);
}

static void on_welcome(sluice_coord_client *c, const uint8_t *p, size_t n)
{
    coord_welcome w;
    cev *e;

    if (coord_dec_welcome(p, n, &w) < 0 || w.version != SLUICE_COORD_VERSION) {
        cli_fail(c, SLUICE_COORD_E_PROTOCOL, SLUICE_ERR_MALFORMED, "malformed WELCOME", true);
        return;
    }
    c->max_message = w.max_message;
    c->window = w.window;
    c->link.max_message = w.max_message;
    c->state = SLUICE_COORD_CLIENT_CONNECTED;
    c->was_connected = true;
    c->ping_interval_us = c->cfg.keepalive_us;
    if (w.idle_timeout_ms && (uint64_t)w.idle_timeout_ms * 1000 / 3 < c->ping_interval_us)
        c->ping_interval_us = (uint64_t)w.idle_timeout_ms * 1000 / 3;
    if (!c->ping_interval_us)
        c->ping_interval_us = 1;
    c->ping_at_us = c->last_rx_us + c->ping_interval_us;
    e = cli_event(c, SLUICE_COORD_EVENT_CONNECTED, 0, NULL, NULL, NULL, NULL, NULL, 0, 0);
    if (e) {
        e->max_message = w.max_message;
        e->window = w.window;
    }
}

static void on_error(sluice_coord_client *c, const uint8_t *p, size_t n)
{
    char reason[SLUICE_COORD_REASON_MAX + 1];
    int code;

    if (coord_dec_error_text(p, n, &code, reason, sizeof reason) < 0) {
        cli_fail(c, SLUICE_COORD_E_PROTOCOL, SLUICE_ERR_MALFORMED, "malformed ERROR", false);
        return;
    }
    cli_fail(c, code, 0, reason[0] ? reason : sluice_coord_code_name(code), false);
}

static int on_frame(void *ctx, const coord_hdr *h, const uint8_t *p)
{
    sluice_coord_client *c = ctx;
    char why[96];

    if (c->state != SLUICE_COORD_CLIENT_CONNECTING && c->state != SLUICE_COORD_CLIENT_CONNECTED)
        return SLUICE_ERR_STATE;
    if (!h)
        return on_established(c);
    switch (h->type) {
    case CF_ERROR:
        on_error(c, p, h->len);
        break;
    case CF_WELCOME:
        if (c->state != SLUICE_COORD_CLIENT_CONNECTING)
            cli_fail(c, SLUICE_COORD_E_PROTOCOL, SLUICE_ERR_MALFORMED, "a second WELCOME", true);
        else
            on_welcome(c, p, h->len);
        break;
    case CF_PING:
        if (h->len != COORD_PING_LEN)
            cli_fail(c, SLUICE_COORD_E_PROTOCOL, SLUICE_ERR_MALFORMED, "PING payload is not 8 bytes", true);
        else
            cli_push(c, CF_PONG, 0, p, h->len, NULL);
        break;
    case CF_PONG:
        if (h->len != COORD_PING_LEN)
            cli_fail(c, SLUICE_COORD_E_PROTOCOL, SLUICE_ERR_MALFORMED, "PONG payload is not 8 bytes", true);
        break;
    case CF_HELLO:
        cli_fail(c, SLUICE_COORD_E_PROTOCOL, SLUICE_ERR_MALFORMED, "HELLO from the coordinator", true);
        break;
    default:
        if (c->state != SLUICE_COORD_CLIENT_CONNECTED) {
            snprintf(why, sizeof why, "%s before WELCOME", coord_frame_name(h->type));
            cli_fail(c, SLUICE_COORD_E_PROTOCOL, SLUICE_ERR_MALFORMED, why, true);
            break;
        }
        cli_stream_frame(c, h, p);
        break;
    }
    return c->state == SLUICE_COORD_CLIENT_CONNECTING || c->state == SLUICE_COORD_CLIENT_CONNECTED
               ? 0
               : SLUICE_ERR_STATE;
}

int sluice_coord_client_handle_stream(sluice_coord_client *c, uint64_t now_us,
                                      const uint8_t *data, size_t len)
{
    const char *why = "";
    uint64_t before;
    int r;

    if (!c || (!data && len))
        return SLUICE_ERR_INVALID;
    if (c->state != SLUICE_COORD_CLIENT_CONNECTING && c->state != SLUICE_COORD_CLIENT_CONNECTED)
        return SLUICE_ERR_STATE;
    c->now = now_us;
    c->last_rx_us = now_us;
    before = c->link.tls_in;
    r = coord_link_input(&c->link, data, len, c->rx_scratch, on_frame, c, &why);
    c->stats.bytes_in += c->link.tls_in - before;
    if (r >= 0)
        return 0;
    if (c->state == SLUICE_COORD_CLIENT_CLOSING || c->state == SLUICE_COORD_CLIENT_CLOSED)
        return c->final_ev.err < 0 ? c->final_ev.err : 0; /* ended by a frame */
    char text[300];
    switch (r) {
    case SLUICE_ERR_MALFORMED:
        cli_fail(c, c->link.proto_code, r, why, true);
        break;
    case SLUICE_ERR_STATE:
        cli_fail(c, SLUICE_COORD_E_CONNECTION_LOST, r,
                 "the coordinator closed the TLS session without a reason", false);
        break;
    case SLUICE_ERR_NOMEM:
        cli_fail(c, SLUICE_COORD_E_INTERNAL, r, "out of memory", false);
        break;
    default:
        snprintf(text, sizeof text, "TLS: %s",
                 c->link.tls ? sluice_tls_error_text(c->link.tls) : sluice_strerror(r));
        cli_fail(c, SLUICE_COORD_E_TLS, r, text, false);
        break;
    }
    return r;
}

void sluice_coord_client_connection_closed(sluice_coord_client *c, uint64_t now_us)
{
    if (!c || c->state == SLUICE_COORD_CLIENT_CLOSED)
        return;
    c->now = now_us;
    if (c->state == SLUICE_COORD_CLIENT_IDLE)
        c->state = SLUICE_COORD_CLIENT_CONNECTING;
    cli_fail(c, SLUICE_COORD_E_CONNECTION_LOST, SLUICE_ERR_STATE,
             "the connection to the coordinator closed", false);
    queue_final(c);
}

int sluice_coord_client_close(sluice_coord_client *c, uint64_t now_us, const char *reason)
{
    if (!c)
        return SLUICE_ERR_INVALID;
    c->now = now_us;
    if (c->state != SLUICE_COORD_CLIENT_CONNECTING && c->state != SLUICE_COORD_CLIENT_CONNECTED)
        return SLUICE_ERR_STATE;
    cli_fail(c, SLUICE_COORD_E_NONE, 0, reason ? reason : "closed by the application", true);
    c->final_ev.type = SLUICE_COORD_EVENT_CLOSED; /* our own choice, even before WELCOME */
    return 0;
}

int sluice_coord_client_poll_transmit(sluice_coord_client *c, uint64_t now_us, uint8_t *buf,
                                      size_t cap, sluice_coord_transmit *meta)
{
    int n;

    if (!c || !buf || !meta)
        return SLUICE_ERR_INVALID;
    c->now = now_us;
    memset(meta, 0, sizeof *meta);
    if (!cap)
        return SLUICE_ERR_NOSPACE;
    if (c->state == SLUICE_COORD_CLIENT_IDLE || c->state == SLUICE_COORD_CLIENT_CLOSED)
        return 0;
    n = coord_link_take(&c->link, buf, cap > INT32_MAX ? INT32_MAX : cap, c->tx_scratch);
    c->stats.bytes_out += (uint64_t)n;
    if (c->state == SLUICE_COORD_CLIENT_CLOSING && coord_link_done(&c->link)) {
        meta->close = n > 0;
        queue_final(c);
    } else if (c->want_writable && c->link.queued <= c->cfg.send_queue_bytes / 2) {
        c->want_writable = false;
        cli_writable(c);
    }
    return n;
}

void sluice_coord_client_handle_timeout(sluice_coord_client *c, uint64_t now_us)
{
    char why[96];

    if (!c)
        return;
    c->now = now_us;
    switch (c->state) {
    case SLUICE_COORD_CLIENT_CONNECTING:
        if (now_us >= c->deadline_us) {
            snprintf(why, sizeof why, "no WELCOME from the coordinator within %llu s",
                     (unsigned long long)(c->cfg.handshake_timeout_us / SEC));
            cli_fail(c, SLUICE_COORD_E_TIMEOUT, SLUICE_ERR_TIMEOUT, why, false);
            queue_final(c); /* whatever is pending has waited long enough */
        }
        break;
    case SLUICE_COORD_CLIENT_CONNECTED:
        if (now_us >= c->last_rx_us + c->cfg.idle_timeout_us) {
            snprintf(why, sizeof why, "nothing from the coordinator for %llu s",
                     (unsigned long long)(c->cfg.idle_timeout_us / SEC));
            cli_fail(c, SLUICE_COORD_E_TIMEOUT, SLUICE_ERR_TIMEOUT, why, true);
        } else if (now_us >= c->ping_at_us) {
            uint8_t p[COORD_PING_LEN];
            wr64(p, ++c->ping_count);
            cli_push(c, CF_PING, 0, p, sizeof p, NULL);
            c->ping_at_us = now_us + c->ping_interval_us;
        }
        break;
    case SLUICE_COORD_CLIENT_CLOSING:
        if (now_us >= c->deadline_us)
            queue_final(c);
        break;
    default:
        break;
    }
}

uint64_t sluice_coord_client_next_timeout(const sluice_coord_client *c)
{
    uint64_t t;

    if (!c)
        return SLUICE_NEVER;
    switch (c->state) {
    case SLUICE_COORD_CLIENT_CONNECTING:
    case SLUICE_COORD_CLIENT_CLOSING:
        return c->deadline_us;
    case SLUICE_COORD_CLIENT_CONNECTED:
        t = c->last_rx_us + c->cfg.idle_timeout_us;
        return c->ping_at_us < t ? c->ping_at_us : t;
    default:
        return SLUICE_NEVER;
    }
}

/* ------------------------------------------------------------------------ */
/* Events */

bool sluice_coord_client_poll_event(sluice_coord_client *c, sluice_coord_event *ev)
{
    cev *e;

    if (!c || !ev)
        return false;
    e = (cev *)coord_evq_release(&c->evq);
    if (e) {
        if (e->type == SLUICE_COORD_EVENT_DATA)
            cli_released(c, e);
        event_free(c, e);
    }
    e = (cev *)coord_evq_pop(&c->evq);
    if (!e)
        return false;
    memset(ev, 0, sizeof *ev);
    ev->type = (sluice_coord_event_type)e->type;
    ev->stream = e->stream;
    ev->kind = (sluice_coord_kind)e->kind;
    ev->code = e->code;
    ev->err = e->err;
    ev->name = e->name;
    ev->label = e->label;
    ev->sender = e->sender;
    ev->reason = e->reason;
    ev->data = e->data;
    ev->len = e->len;
    ev->count = e->count;
    ev->has_peer_fingerprint = e->has_fp;
    memcpy(ev->peer_fingerprint, e->fp, 32);
    ev->turn.username = e->turn_user ? e->turn_user : "";
    ev->turn.password = e->turn_pass ? e->turn_pass : "";
    ev->turn.ttl_s = e->turn_ttl;
    for (size_t i = 0; i < e->n_turn_uris; i++)
        ev->turn.uris[i] = e->turn_uris[i];
    ev->turn.n_uris = e->n_turn_uris;
    ev->max_message = e->max_message;
    ev->window = e->window;
    return true;
}

void sluice_coord_client_get_stats(const sluice_coord_client *c, sluice_coord_client_stats *st)
{
    if (!c || !st)
        return;
    *st = c->stats;
    st->streams_open = c->streams.n;
    st->events_dropped = c->evq.dropped;
}
