/* SPDX-License-Identifier: MIT */
/* A coordinator connection's transport: TLS (or plaintext) in, frames out
 * of it; queued frames in, TLS records out, with at most COORD_LINK_HIGH
 * bytes of ciphertext pending so that the queue, which the machines
 * account per stream, holds the rest. */
#include <string.h>

#include "common/internal.h"
#include "coord/link.h"

coord_blob *coord_blob_new(const sluice_allocator *a, size_t len)
{
    coord_blob *b;

    if (len > UINT32_MAX - sizeof *b)
        return NULL;
    b = sluice_xcalloc(a, 1, sizeof *b + len);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = (uint32_t)len;
    return b;
}

void coord_blob_unref(const sluice_allocator *a, coord_blob *b)
{
    if (b && --b->refs == 0)
        sluice_xfree(a, b);
}

void coord_link_init(coord_link *l, sluice_tls *tls, const sluice_allocator *a,
                     uint32_t max_message)
{
    memset(l, 0, sizeof *l);
    l->tls = tls;
    l->alloc = a;
    l->max_message = max_message;
    l->established = tls == NULL;
}

static size_t ent_len(const coord_qent *e)
{
    return COORD_HDR_LEN + e->inline_len + (e->blob ? e->blob->len : 0);
}

/* e has been unlinked: account for it, tell the owner, free it. */
static void gone(coord_link *l, coord_qent *e)
{
    l->queued -= ent_len(e);
    l->n_entries--;
    if (!e->blob)
        l->n_control--;
    if (l->dequeued)
        l->dequeued(l->dequeued_ctx, e);
    coord_blob_unref(l->alloc, e->blob);
    sluice_xfree(l->alloc, e);
}

static void pop(coord_link *l)
{
    coord_qent *e = l->head;

    l->head = e->next;
    if (!l->head)
        l->tail = NULL;
    l->head_off = 0;
    gone(l, e);
}

void coord_link_discard(coord_link *l)
{
    /* A frame already partly out stays, or the peer would read the frames
     * after it (the ERROR that explains the end) as the rest of it. */
    coord_qent *keep = l->head && l->head_off ? l->head : NULL;

    if (keep) {
        while (keep->next) {
            coord_qent *e = keep->next;
            keep->next = e->next;
            if (l->tail == e)
                l->tail = keep;
            gone(l, e);
        }
        return;
    }
    while (l->head)
        pop(l);
}

void coord_link_discard_stream(coord_link *l, uint32_t stream)
{
    coord_qent **pp = &l->head, *prev = NULL;

    while (*pp) {
        coord_qent *e = *pp;
        if (rd32(e->hdr + 4) != stream || (e == l->head && l->head_off)) {
            prev = e;
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        if (l->tail == e)
            l->tail = prev;
        gone(l, e);
    }
}

void coord_link_free(coord_link *l)
{
    while (l->head)
        pop(l);
    sluice_xfree(l->alloc, l->rx);
    l->rx = NULL;
    sluice_tls_free(l->tls);
    l->tls = NULL;
}

int coord_link_push(coord_link *l, uint8_t type, uint32_t stream, const void *payload,
                    size_t len, coord_blob *blob, uint32_t acct)
{
    coord_qent *e;
    size_t total = len + (blob ? blob->len : 0);

    if (total > UINT32_MAX)
        return SLUICE_ERR_INVALID;
    e = sluice_xcalloc(l->alloc, 1, sizeof *e + len);
    if (!e)
        return SLUICE_ERR_NOMEM;
    coord_hdr_write(e->hdr, type, stream, (uint32_t)total);
    if (len)
        memcpy(e->data, payload, len);
    e->inline_len = (uint32_t)len;
    e->acct = acct;
    if (blob) {
        blob->refs++;
        e->blob = blob;
    } else {
        l->n_control++;
    }
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
    l->queued += ent_len(e);
    l->n_entries++;
    return 0;
}

/* Copy queued frame bytes into buf, popping entries that are fully out. */
static size_t fill(coord_link *l, uint8_t *buf, size_t cap)
{
    size_t n = 0;

    while (l->head && n < cap) {
        coord_qent *e = l->head;
        size_t total = ent_len(e);
        while (l->head_off < total && n < cap) {
            size_t off = l->head_off, k;
            const uint8_t *src;
            if (off < COORD_HDR_LEN) {
                src = e->hdr + off;
                k = COORD_HDR_LEN - off;
            } else if (off < COORD_HDR_LEN + e->inline_len) {
                src = e->data + (off - COORD_HDR_LEN);
                k = COORD_HDR_LEN + e->inline_len - off;
            } else {
                size_t boff = off - COORD_HDR_LEN - e->inline_len;
                src = e->blob->data + boff;
                k = e->blob->len - boff;
            }
            if (k > cap - n)
                k = cap - n;
            memcpy(buf + n, src, k);
            n += k;
            l->head_off += k;
        }
        if (l->head_off == total)
            pop(l);
    }
    return n;
}

/* Move queued frames into TLS while little ciphertext is pending. */
static void flush(coord_link *l, uint8_t *scratch)
{
    if (!l->tls)
        return;
    if (sluice_tls_error(l->tls)) {
        coord_link_discard(l); /* nothing more can be sent */
        return;
    }
    if (!sluice_tls_established(l->tls))
        return;
    while (l->head && sluice_tls_pending_output(l->tls) < COORD_LINK_HIGH) {
        size_t n = fill(l, scratch, COORD_LINK_CHUNK);
        if (sluice_tls_write(l->tls, scratch, n) < 0) {
            coord_link_discard(l);
            return;
        }
    }
    if (l->closing && !l->head && !l->tls_closed) {
        sluice_tls_close(l->tls);
        l->tls_closed = true;
    }
}

void coord_link_close(coord_link *l)
{
    l->closing = true;
}

bool coord_link_has_output(coord_link *l, uint8_t *scratch)
{
    if (!l->tls)
        return l->head != NULL;
    flush(l, scratch);
    return sluice_tls_pending_output(l->tls) > 0;
}

int coord_link_take(coord_link *l, uint8_t *buf, size_t cap, uint8_t *scratch)
{
    size_t n = 0;

    if (!l->tls) {
        n = fill(l, buf, cap);
    } else {
        while (n < cap) {
            flush(l, scratch);
            int r = sluice_tls_take_output(l->tls, buf + n, cap - n);
            if (r <= 0)
                break;
            n += (size_t)r;
        }
        flush(l, scratch);
        if (!l->head)
            sluice_tls_trim(l->tls); /* idle: give back the BIO buffers */
    }
    l->tls_out += n;
    return (int)n;
}

bool coord_link_done(const coord_link *l)
{
    if (!l->closing)
        return false;
    if (!l->tls)
        return l->head == NULL;
    if (sluice_tls_pending_output(l->tls))
        return false;
    if (sluice_tls_error(l->tls))
        return true;
    /* Never established: nothing more will come out of the session. */
    if (!sluice_tls_established(l->tls) && !l->established)
        return true;
    return l->head == NULL && l->tls_closed;
}

/* ------------------------------------------------------------------------ */
/* Receive */

static const uint8_t empty_payload[1];

static int deliver(coord_link *l, const uint8_t *payload, coord_frame_fn fn, void *ctx)
{
    coord_hdr h = l->cur;
    int r;

    l->in_frame = false;
    l->hdr_have = 0;
    r = fn(ctx, &h, payload ? payload : empty_payload);
    return r;
}

/* Cut plaintext into frames; frames wholly inside the input are handed
 * over in place, the others are assembled in l->rx first. */
static int parse(coord_link *l, const uint8_t *p, size_t n, coord_frame_fn fn, void *ctx,
                 const char **why)
{
    while (n) {
        if (!l->in_frame) {
            const uint8_t *h = p;
            if (l->hdr_have || n < COORD_HDR_LEN) {
                size_t k = COORD_HDR_LEN - l->hdr_have;
                if (k > n)
                    k = n;
                memcpy(l->hdr + l->hdr_have, p, k);
                l->hdr_have = (uint8_t)(l->hdr_have + k);
                p += k;
                n -= k;
                if (l->hdr_have < COORD_HDR_LEN)
                    return 0;
                h = l->hdr;
            } else {
                p += COORD_HDR_LEN;
                n -= COORD_HDR_LEN;
            }
            coord_hdr_parse(h, COORD_HDR_LEN, &l->cur);
            int r = coord_hdr_check(&l->cur, l->max_message, why, &l->proto_code);
            if (r < 0)
                return r;
            l->in_frame = true;
            l->rx_have = 0;
            if (l->cur.len == 0) {
                r = deliver(l, NULL, fn, ctx);
                if (r < 0)
                    return r;
                continue;
            }
        }
        size_t need = l->cur.len - l->rx_have;
        if (!l->rx && n >= need) {
            const uint8_t *payload = p;
            p += need;
            n -= need;
            int r = deliver(l, payload, fn, ctx);
            if (r < 0)
                return r;
            continue;
        }
        if (!l->rx) {
            l->rx = sluice_xcalloc(l->alloc, 1, l->cur.len);
            if (!l->rx)
                return SLUICE_ERR_NOMEM;
        }
        size_t k = n < need ? n : need;
        memcpy(l->rx + l->rx_have, p, k);
        l->rx_have += (uint32_t)k;
        p += k;
        n -= k;
        if (l->rx_have == l->cur.len) {
            uint8_t *frame = l->rx;
            l->rx = NULL;
            int r = deliver(l, frame, fn, ctx);
            sluice_xfree(l->alloc, frame);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static int check_established(coord_link *l, coord_frame_fn fn, void *ctx)
{
    if (l->established || !sluice_tls_established(l->tls))
        return 0;
    l->established = true;
    return fn(ctx, NULL, NULL);
}

int coord_link_input(coord_link *l, const uint8_t *data, size_t len, uint8_t *scratch,
                     coord_frame_fn fn, void *ctx, const char **why)
{
    *why = "";
    if (!l->tls) {
        l->tls_in += len;
        return parse(l, data, len, fn, ctx, why);
    }
    while (len) {
        /* Record-sized pieces: a larger chunk could exceed the session's
         * bound and be refused whole. */
        size_t piece = len < COORD_LINK_CHUNK ? len : COORD_LINK_CHUNK;
        int n = sluice_tls_feed(l->tls, data, piece);
        bool got = false;
        int r;

        if (n == SLUICE_ERR_FULL)
            n = 0; /* read plaintext below, then feed the rest */
        else if (n < 0)
            return n;
        data += n;
        len -= (size_t)n;
        l->tls_in += (size_t)n;
        r = check_established(l, fn, ctx);
        if (r < 0)
            return r;
        for (;;) {
            r = sluice_tls_read(l->tls, scratch, COORD_LINK_CHUNK);
            if (r == 0)
                break;
            if (r < 0)
                return r;
            got = true;
            int e = check_established(l, fn, ctx);
            if (e < 0)
                return e;
            e = parse(l, scratch, (size_t)r, fn, ctx, why);
            if (e < 0)
                return e;
        }
        r = check_established(l, fn, ctx);
        if (r < 0)
            return r;
        if (n == 0 && !got)
            return SLUICE_ERR_CRYPTO; /* neither consumed nor produced: stuck */
    }
    return sluice_tls_error(l->tls);
}
