/* SPDX-License-Identifier: MIT */
/* Coordinator frame codec: header rules and payload layouts
 * (docs/coord-protocol.md). Every length is checked before it is used. */
#include <string.h>

#include "common/internal.h"
#include "coord/frame.h"

int coord_hdr_parse(const uint8_t *p, size_t n, coord_hdr *h)
{
    if (n < COORD_HDR_LEN)
        return SLUICE_ERR_TRUNCATED;
    h->type = p[0];
    h->flags = p[1];
    h->reserved = rd16(p + 2);
    h->stream = rd32(p + 4);
    h->len = rd32(p + 8);
    return 0;
}

/* Frames that belong to the connection rather than to a stream. */
static bool connection_level(uint8_t type)
{
    return type == CF_HELLO || type == CF_WELCOME || type == CF_ERROR || type == CF_PING ||
           type == CF_PONG;
}

int coord_hdr_check(const coord_hdr *h, uint32_t max_message, const char **why, int *code)
{
    uint64_t limit = COORD_MAX_CONTROL;

    *code = SLUICE_COORD_E_PROTOCOL;
    if (h->type < 1 || h->type > CF_MAX) {
        *why = "unknown frame type";
        return SLUICE_ERR_MALFORMED;
    }
    if (h->flags || h->reserved) {
        *why = "reserved header bits set";
        return SLUICE_ERR_MALFORMED;
    }
    if (connection_level(h->type) != (h->stream == 0)) {
        *why = h->stream ? "connection frame on a stream" : "stream frame on stream 0";
        return SLUICE_ERR_MALFORMED;
    }
    if (h->type == CF_DATA)
        limit = max_message;
    else if (h->type == CF_BCAST_DATA)
        limit = (uint64_t)max_message + 1 + SLUICE_COORD_NAME_MAX;
    if (h->len > limit) {
        bool msg = h->type == CF_DATA || h->type == CF_BCAST_DATA;
        *why = msg ? "message larger than max_message" : "frame too long";
        if (msg)
            *code = SLUICE_COORD_E_TOO_BIG;
        return SLUICE_ERR_MALFORMED;
    }
    return 0;
}

void coord_hdr_write(uint8_t p[COORD_HDR_LEN], uint8_t type, uint32_t stream, uint32_t len)
{
    p[0] = type;
    p[1] = 0;
    wr16(p + 2, 0);
    wr32(p + 4, stream);
    wr32(p + 8, len);
}

const char *coord_frame_name(uint8_t type)
{
    static const char *const names[] = {"?",     "HELLO",  "WELCOME",    "ERROR",  "OPEN",
                                        "ACCEPT", "REFUSE", "DATA",       "BCAST_DATA",
                                        "CREDIT", "LAG",    "CLOSE",      "RESET",  "PING",
                                        "PONG"};
    return type <= CF_MAX ? names[type] : "?";
}

/* ------------------------------------------------------------------------ */
/* A cursor over a payload */

typedef struct rd {
    const uint8_t *p;
    size_t n;
    int err;
} rd;

static uint8_t get8(rd *r)
{
    if (r->err || r->n < 1) {
        r->err = SLUICE_ERR_TRUNCATED;
        return 0;
    }
    r->n--;
    return *r->p++;
}

static uint16_t get16(rd *r)
{
    uint16_t v;
    if (r->err || r->n < 2) {
        r->err = SLUICE_ERR_TRUNCATED;
        return 0;
    }
    v = rd16(r->p);
    r->p += 2;
    r->n -= 2;
    return v;
}

static uint32_t get32(rd *r)
{
    uint32_t v;
    if (r->err || r->n < 4) {
        r->err = SLUICE_ERR_TRUNCATED;
        return 0;
    }
    v = rd32(r->p);
    r->p += 4;
    r->n -= 4;
    return v;
}

static const uint8_t *getn(rd *r, size_t len)
{
    const uint8_t *v;
    if (r->err || r->n < len) {
        r->err = SLUICE_ERR_TRUNCATED;
        return NULL;
    }
    v = r->p;
    r->p += len;
    r->n -= len;
    return v;
}

/* u8 length, then the bytes. */
static coord_str getstr(rd *r)
{
    coord_str s = {"", 0};
    size_t len = get8(r);
    const uint8_t *v = getn(r, len);
    if (v) {
        s.p = (const char *)v;
        s.len = len;
    }
    return s;
}

/* Trailing bytes make a frame malformed: one encoding per meaning. */
static int finish(const rd *r)
{
    if (r->err)
        return r->err;
    return r->n ? SLUICE_ERR_MALFORMED : 0;
}

int coord_dec_hello(const uint8_t *p, size_t n, coord_hello *out)
{
    rd r = {p, n, 0};
    memset(out, 0, sizeof *out);
    out->version = get16(&r);
    if (get16(&r) != 0 && !r.err)
        return SLUICE_ERR_MALFORMED;
    out->name = getstr(&r);
    return finish(&r);
}

int coord_dec_welcome(const uint8_t *p, size_t n, coord_welcome *out)
{
    rd r = {p, n, 0};
    memset(out, 0, sizeof *out);
    out->version = get16(&r);
    if (get16(&r) != 0 && !r.err)
        return SLUICE_ERR_MALFORMED;
    out->max_message = get32(&r);
    out->window = get32(&r);
    out->idle_timeout_ms = get32(&r);
    int e = finish(&r);
    if (e)
        return e;
    if (out->max_message > SLUICE_COORD_MAX_MESSAGE_LIMIT ||
        out->window < SLUICE_COORD_MESSAGE_COST(out->max_message) || out->window > INT32_MAX)
        return SLUICE_ERR_MALFORMED;
    return 0;
}

int coord_dec_error(const uint8_t *p, size_t n, coord_error *out)
{
    rd r = {p, n, 0};
    memset(out, 0, sizeof *out);
    out->code = get16(&r);
    out->reason = getstr(&r);
    return finish(&r);
}

int coord_dec_error_text(const uint8_t *p, size_t n, int *code, char *reason, size_t cap)
{
    coord_error e;
    int r = coord_dec_error(p, n, &e);
    if (r < 0)
        return r;
    *code = e.code;
    coord_copy_reason(reason, cap, e.reason.p, e.reason.len);
    return 0;
}

static int dec_attrs(rd *r, coord_attrs *a)
{
    memset(a, 0, sizeof *a);
    while (!r->err && r->n) {
        uint8_t tag = get8(r);
        uint16_t len = get16(r);
        const uint8_t *v = getn(r, len);
        coord_str s = {(const char *)v, len};
        if (r->err)
            return r->err;
        switch (tag) {
        case CA_FINGERPRINT:
            if (len != 32 || a->fingerprint)
                return SLUICE_ERR_MALFORMED;
            a->fingerprint = v;
            break;
        case CA_TURN_USERNAME:
        case CA_TURN_PASSWORD: {
            coord_str *dst = tag == CA_TURN_USERNAME ? &a->turn_username : &a->turn_password;
            if (len < 1 || len > 255 || dst->len)
                return SLUICE_ERR_MALFORMED;
            *dst = s;
            break;
        }
        case CA_TURN_TTL:
            if (len != 4 || a->has_turn_ttl)
                return SLUICE_ERR_MALFORMED;
            a->turn_ttl_s = rd32(v);
            a->has_turn_ttl = true;
            break;
        case CA_TURN_URI:
            if (len < 1 || len > SLUICE_COORD_URI_MAX ||
                a->n_turn_uris >= SLUICE_COORD_TURN_URIS_MAX)
                return SLUICE_ERR_MALFORMED;
            a->turn_uris[a->n_turn_uris++] = s;
            break;
        case CA_WAIT_MS:
            if (len != 4 || a->has_wait)
                return SLUICE_ERR_MALFORMED;
            a->wait_ms = rd32(v);
            a->has_wait = true;
            break;
        default:
            break; /* unknown attributes are skipped: room to grow */
        }
    }
    return r->err;
}

int coord_dec_open(const uint8_t *p, size_t n, coord_open *out)
{
    rd r = {p, n, 0};
    memset(out, 0, sizeof *out);
    out->kind = get8(&r);
    out->flags = get8(&r);
    out->name = getstr(&r);
    out->label = getstr(&r);
    if (r.err)
        return r.err;
    if (out->kind < SLUICE_COORD_KIND_COORD || out->kind > SLUICE_COORD_KIND_DIRECT ||
        (out->flags & ~SLUICE_COORD_OPEN_WAIT))
        return SLUICE_ERR_MALFORMED;
    return dec_attrs(&r, &out->attrs);
}

int coord_dec_accept(const uint8_t *p, size_t n, coord_attrs *out)
{
    rd r = {p, n, 0};
    return dec_attrs(&r, out);
}

int coord_dec_bcast(const uint8_t *p, size_t n, coord_bcast *out)
{
    rd r = {p, n, 0};
    memset(out, 0, sizeof *out);
    out->sender = getstr(&r);
    if (r.err)
        return r.err;
    out->data = r.p;
    out->len = r.n;
    return 0;
}

int coord_dec_u32(const uint8_t *p, size_t n, uint32_t *out)
{
    rd r = {p, n, 0};
    *out = get32(&r);
    int e = finish(&r);
    return e ? e : (*out ? 0 : SLUICE_ERR_MALFORMED);
}

/* ------------------------------------------------------------------------ */
/* Encoders */

typedef struct wr {
    uint8_t *p;
    size_t cap, n;
    int err;
} wr;

static void put(wr *w, const void *v, size_t len)
{
    if (w->err)
        return;
    if (w->cap - w->n < len) {
        w->err = SLUICE_ERR_NOSPACE;
        return;
    }
    if (len)
        memcpy(w->p + w->n, v, len);
    w->n += len;
}

static void put8(wr *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put16(wr *w, uint16_t v)
{
    uint8_t b[2];
    wr16(b, v);
    put(w, b, 2);
}

static void put32(wr *w, uint32_t v)
{
    uint8_t b[4];
    wr32(b, v);
    put(w, b, 4);
}

static void putstr(wr *w, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (len > 255) {
        if (!w->err)
            w->err = SLUICE_ERR_INVALID;
        return;
    }
    put8(w, (uint8_t)len);
    put(w, s, len);
}

static void putattr(wr *w, uint8_t tag, const void *v, size_t len)
{
    if (len > 0xFFFF) {
        if (!w->err)
            w->err = SLUICE_ERR_INVALID;
        return;
    }
    put8(w, tag);
    put16(w, (uint16_t)len);
    put(w, v, len);
}

static int done(const wr *w)
{
    return w->err ? w->err : (int)w->n;
}

int coord_enc_hello(uint8_t *p, size_t cap, const char *name)
{
    wr w = {p, cap, 0, 0};
    put16(&w, SLUICE_COORD_VERSION);
    put16(&w, 0);
    putstr(&w, name);
    return done(&w);
}

int coord_enc_welcome(uint8_t *p, size_t cap, const coord_welcome *m)
{
    wr w = {p, cap, 0, 0};
    put16(&w, m->version);
    put16(&w, 0);
    put32(&w, m->max_message);
    put32(&w, m->window);
    put32(&w, m->idle_timeout_ms);
    return done(&w);
}

int coord_enc_error(uint8_t *p, size_t cap, uint16_t code, const char *reason)
{
    wr w = {p, cap, 0, 0};
    size_t len = reason ? strlen(reason) : 0;
    put16(&w, code);
    /* Reasons are explanations: a long one is cut, not refused. */
    if (len > SLUICE_COORD_REASON_MAX)
        len = SLUICE_COORD_REASON_MAX;
    put8(&w, (uint8_t)len);
    put(&w, reason, len);
    return done(&w);
}

static void put_attrs(wr *w, const coord_attrs *a)
{
    uint8_t b[4];
    if (!a)
        return;
    if (a->fingerprint)
        putattr(w, CA_FINGERPRINT, a->fingerprint, 32);
    if (a->turn_username.len)
        putattr(w, CA_TURN_USERNAME, a->turn_username.p, a->turn_username.len);
    if (a->turn_password.len)
        putattr(w, CA_TURN_PASSWORD, a->turn_password.p, a->turn_password.len);
    if (a->has_turn_ttl) {
        wr32(b, a->turn_ttl_s);
        putattr(w, CA_TURN_TTL, b, 4);
    }
    for (size_t i = 0; i < a->n_turn_uris && i < SLUICE_COORD_TURN_URIS_MAX; i++)
        putattr(w, CA_TURN_URI, a->turn_uris[i].p, a->turn_uris[i].len);
    if (a->has_wait) {
        wr32(b, a->wait_ms);
        putattr(w, CA_WAIT_MS, b, 4);
    }
}

int coord_enc_open(uint8_t *p, size_t cap, uint8_t kind, uint8_t flags, const char *name,
                   const char *label, const coord_attrs *attrs)
{
    wr w = {p, cap, 0, 0};
    put8(&w, kind);
    put8(&w, flags);
    putstr(&w, name);
    putstr(&w, label);
    put_attrs(&w, attrs);
    return done(&w);
}

int coord_enc_attrs(uint8_t *p, size_t cap, const coord_attrs *attrs)
{
    wr w = {p, cap, 0, 0};
    put_attrs(&w, attrs);
    return done(&w);
}

int coord_enc_u32(uint8_t *p, size_t cap, uint32_t v)
{
    wr w = {p, cap, 0, 0};
    put32(&w, v);
    return done(&w);
}

int coord_enc_bcast_prefix(uint8_t *p, size_t cap, const char *sender)
{
    wr w = {p, cap, 0, 0};
    putstr(&w, sender);
    return done(&w);
}

/* ------------------------------------------------------------------------ */
/* Syntax */

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool coord_name_ok(const char *p, size_t len)
{
    if (len < 1 || len > SLUICE_COORD_NAME_MAX || !alnum(p[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!alnum(p[i]) && p[i] != '.' && p[i] != '_' && p[i] != '-')
            return false;
    return true;
}

bool coord_channel_ok(const char *p, size_t len)
{
    if (len < 1 || len > SLUICE_COORD_CHANNEL_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((uint8_t)p[i] < 0x21 || (uint8_t)p[i] > 0x7E)
            return false;
    return true;
}

bool coord_label_ok(const char *p, size_t len)
{
    if (len > SLUICE_COORD_LABEL_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((uint8_t)p[i] < 0x20 || (uint8_t)p[i] > 0x7E)
            return false;
    return true;
}

void coord_copy_reason(char *dst, size_t cap, const char *src, size_t len)
{
    if (len > cap - 1)
        len = cap - 1;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)src[i];
        dst[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
    }
    dst[len] = 0;
}
