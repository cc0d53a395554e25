/* SPDX-License-Identifier: MIT */
/* ICE on the wire: connectivity checks (RFC 8445 §7.2), answering checks
 * (§7.3) with role conflicts, peer-reflexive candidates, triggered checks
 * and USE-CANDIDATE; consent freshness (RFC 7675); gathering Binding
 * requests to STUN servers (§5.1.1.1); our own retransmission timers. */
#include <stdio.h>
#include <string.h>

#include "ice/internal.h"

void ice_txn_start(sluice_ice_agent *a, struct txn *t, uint64_t now, uint64_t rto, unsigned rc)
{
    (void)now;
    t->active = true;
    t->due = true;
    t->hurried = false;
    t->sent = 0;
    t->rc = (uint8_t)rc;
    t->rto_us = rto;
    t->next_us = SLUICE_NEVER;
    if (ice_random(a, t->txid, sizeof t->txid) < 0)
        memset(t->txid, 0x5A, sizeof t->txid); /* rng failure: still unique enough to fail safe */
}

/* RFC 8445 §14.3: RTO = max(500 ms, Ta * (Waiting + In-Progress pairs)). */
static uint64_t check_rto(const sluice_ice_agent *a)
{
    uint64_t n = 0, rto;
    if (a->cfg.check_initial_rto_us)
        return a->cfg.check_initial_rto_us;
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        const struct stream *s = a->streams[i];
        if (!s || !s->used)
            continue;
        for (size_t k = 0; k < s->n_pairs; k++)
            if (s->pairs[k].state == PS_WAITING || s->pairs[k].state == PS_IN_PROGRESS)
                n++;
    }
    rto = a->cfg.ta_us * n;
    return rto < 500 * ICE_MS ? 500 * ICE_MS : rto;
}

int ice_start_check(sluice_ice_agent *a, uint64_t now, struct stream *s, int pi, bool consent)
{
    struct pair *p = &s->pairs[pi];
    if (p->tx.active) {
        if (consent)
            return 0; /* a check is already on the wire: it refreshes consent */
        /* §7.3.1.4: the in-progress transaction is cancelled, its answer
         * still accepted. */
        memcpy(p->old_txid, p->tx.txid, sizeof p->old_txid);
        p->old_txid_valid = true;
    }
    p->check_is_consent = consent;
    p->check_controlling = a->controlling;
    p->check_use_cand = !consent && a->controlling && p->nominating;
    if (!consent) {
        if (p->state != PS_SUCCEEDED)
            p->state = PS_IN_PROGRESS;
        a->stats.checks_sent++;
    } else {
        p->consent_requests_sent++;
    }
    ice_txn_start(a, &p->tx, now, consent ? 500 * ICE_MS : check_rto(a), a->cfg.check_rc);
    return 0;
}

/* Send data to peer through the TURN allocation `turn` (Send indication or
 * ChannelData), from the allocation's base. */
int ice_wrap_turn(sluice_ice_agent *a, uint64_t now, int turn, const sluice_addr *peer,
                  const uint8_t *msg, size_t len, uint8_t *buf, size_t cap, sluice_transmit *meta)
{
    sluice_turn_client *tc = ice_turn_of(a, turn);
    struct stream *s;
    int rc;
    if (!tc || !(s = ice_stream(a, a->turns[turn].stream)))
        return SLUICE_ERR_STATE;
    rc = sluice_turn_client_send(tc, now, peer, msg, len, buf, cap, meta);
    if (rc > 0)
        meta->source = s->bases[a->turns[turn].base].addr;
    return rc;
}

/* The Binding request of a check (§7.2.2). */
static int build_check(const sluice_ice_agent *a, const struct stream *s, const struct pair *p,
                       uint8_t *buf, size_t cap)
{
    sluice_stun_writer w;
    char user[2 * SLUICE_ICE_UFRAG_MAX + 2];
    const struct lcand *l = &s->local[p->local];
    int n = snprintf(user, sizeof user, "%s:%s", s->rufrag, s->ufrag);

    sluice_stun_writer_init(&w, buf, cap, sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST),
                            p->tx.txid);
    sluice_stun_put(&w, SLUICE_STUN_ATTR_USERNAME, user, (size_t)n);
    /* §7.1.1: PRIORITY as if the local candidate were peer reflexive. */
    sluice_stun_put_u32(&w, SLUICE_STUN_ATTR_PRIORITY,
                        sluice_ice_priority(SLUICE_ICE_CAND_PRFLX,
                                            s->bases[l->base].local_pref, l->c.component));
    sluice_stun_put_u64(&w, p->check_controlling ? SLUICE_STUN_ATTR_ICE_CONTROLLING
                                                 : SLUICE_STUN_ATTR_ICE_CONTROLLED,
                        a->tiebreaker);
    if (p->check_use_cand)
        sluice_stun_put_empty(&w, SLUICE_STUN_ATTR_USE_CANDIDATE);
    if (a->software)
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, a->software, strlen(a->software));
    sluice_stun_put_integrity(&w, &s->key_remote);
    sluice_stun_put_fingerprint(&w);
    return sluice_stun_writer_result(&w);
}

static int build_gather(const sluice_ice_agent *a, const struct gather *g, uint8_t *buf,
                        size_t cap)
{
    sluice_stun_writer w;
    sluice_stun_writer_init(&w, buf, cap, sluice_stun_type(SLUICE_STUN_BINDING, SLUICE_STUN_REQUEST),
                            g->tx.txid);
    if (a->software)
        sluice_stun_put_string(&w, SLUICE_STUN_ATTR_SOFTWARE, a->software, strlen(a->software));
    sluice_stun_put_fingerprint(&w);
    return sluice_stun_writer_result(&w);
}

/* Bookkeeping after a (re)transmission: §6.2.1 doubling, capped. */
static void txn_sent(const sluice_ice_agent *a, struct txn *t, uint64_t now)
{
    t->due = false;
    if (t->sent == 0)
        t->first_us = now;
    t->last_us = now;
    t->sent++;
    t->next_us = now + t->rto_us;
    t->rto_us *= 2;
    if (a->cfg.check_max_rto_us && t->rto_us > a->cfg.check_max_rto_us)
        t->rto_us = a->cfg.check_max_rto_us;
}

int ice_poll_checks(sluice_ice_agent *a, uint64_t now, uint8_t *buf, size_t cap,
                    sluice_transmit *meta)
{
    uint8_t msg[ICE_MSG_MAX];
    int n;
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        struct stream *s = a->streams[i];
        if (!s || !s->used)
            continue;
        for (size_t k = 0; k < s->n_gathers; k++) {
            struct gather *g = &s->gathers[k];
            if (!g->tx.active || !g->tx.due)
                continue;
            n = build_gather(a, g, buf, cap);
            if (n < 0)
                return n;
            meta->destination = a->stun_servers[g->server];
            meta->source = s->bases[g->base].addr;
            meta->transport = SLUICE_TRANSPORT_UDP;
            txn_sent(a, &g->tx, now);
            return n;
        }
        for (size_t k = 0; k < s->n_pairs; k++) {
            struct pair *p = &s->pairs[k];
            const struct lcand *l;
            if (!p->tx.active || !p->tx.due)
                continue;
            l = &s->local[p->local];
            n = build_check(a, s, p, msg, sizeof msg);
            if (n < 0)
                return n;
            if (l->turn >= 0) {
                n = ice_wrap_turn(a, now, l->turn, &s->remote[p->remote].c.addr, msg, (size_t)n,
                                  buf, cap, meta);
                if (n == SLUICE_ERR_NOSPACE)
                    return n;
                if (n < 0) { /* no allocation any more */
                    ice_pair_failed(a, now, s, (int)k);
                    continue;
                }
            } else {
                if (cap < (size_t)n)
                    return SLUICE_ERR_NOSPACE;
                memcpy(buf, msg, (size_t)n);
                meta->destination = s->remote[p->remote].c.addr;
                meta->source = s->bases[l->base].addr;
                meta->transport = SLUICE_TRANSPORT_UDP;
            }
            txn_sent(a, &p->tx, now);
            p->requests_sent++;
            return n;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Timers */

void ice_consent_lost(sluice_ice_agent *a, struct stream *s, unsigned comp)
{
    struct route_state *sel = &s->comp[comp - 1].sel;
    sluice_ice_event ev;
    sel->consent_lost = true;
    memset(&ev, 0, sizeof ev);
    ev.type = SLUICE_ICE_EVENT_CONSENT_LOST;
    ev.stream = s->id;
    ev.component = comp;
    ev.local = sel->local;
    ev.remote = sel->remote;
    ice_emit(a, &ev);
}

/* RFC 7675 §5.1: intervals uniformly random in [0.8, 1.2] x 5 s. */
uint64_t ice_consent_interval(sluice_ice_agent *a)
{
    uint32_t r = 0;
    ice_random(a, &r, sizeof r);
    return a->cfg.consent_interval_us * 8 / 10 +
           (a->cfg.consent_interval_us * 4 / 10) * (r % 1001) / 1000;
}

void ice_timers(sluice_ice_agent *a, uint64_t now)
{
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        struct stream *s = a->streams[i];
        if (!s || !s->used)
            continue;
        for (size_t k = 0; k < s->n_gathers; k++) {
            struct gather *g = &s->gathers[k];
            if (!g->tx.active || g->tx.due || g->tx.next_us > now)
                continue;
            if (g->tx.sent < g->tx.rc)
                g->tx.due = true;
            else
                ice_gather_result(a, s, g, NULL, 0, SLUICE_ERR_TIMEOUT);
        }
        for (size_t k = 0; k < s->n_pairs; k++) {
            struct pair *p = &s->pairs[k];
            if (!p->tx.active || p->tx.due || p->tx.next_us > now)
                continue;
            /* Consent checks stop at the consent deadline, not at Rc. */
            if (p->tx.sent < p->tx.rc)
                p->tx.due = true;
            else if (p->check_is_consent)
                p->tx.active = false;
            else
                ice_pair_failed(a, now, s, (int)k);
        }
        for (unsigned c = 1; c <= s->n_components; c++) {
            struct route_state *sel = &s->comp[c - 1].sel;
            if (!sel->valid || sel->consent_lost)
                continue;
            /* RFC 7675 §5.1: no answer for consent_timeout: stop sending. */
            if (now >= sel->consent_expires_us) {
                ice_consent_lost(a, s, c);
                continue;
            }
            if (now >= sel->next_consent_us) {
                sel->next_consent_us = now + ice_consent_interval(a);
                if (sel->pair >= 0 && s->have_remote_creds)
                    ice_start_check(a, now, s, sel->pair, true);
            }
        }
    }
}

uint64_t ice_timers_deadline(const sluice_ice_agent *a)
{
    uint64_t next = SLUICE_NEVER;
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        const struct stream *s = a->streams[i];
        if (!s || !s->used)
            continue;
        for (size_t k = 0; k < s->n_gathers; k++) {
            const struct txn *t = &s->gathers[k].tx;
            if (t->active && !t->due && t->next_us < next)
                next = t->next_us;
        }
        for (size_t k = 0; k < s->n_pairs; k++) {
            const struct txn *t = &s->pairs[k].tx;
            if (t->active && !t->due && t->next_us < next)
                next = t->next_us;
        }
        for (unsigned c = 0; c < s->n_components; c++) {
            const struct route_state *sel = &s->comp[c].sel;
            if (!sel->valid || sel->consent_lost)
                continue;
            if (sel->consent_expires_us < next)
                next = sel->consent_expires_us;
            if (sel->next_consent_us < next)
                next = sel->next_consent_us;
        }
    }
    return next;
}

/* ------------------------------------------------------------------------ */
/* Incoming */

static void queue_resp(sluice_ice_agent *a, const struct stream *s, int base, int turn,
                       const sluice_addr *to, const uint8_t *msg, int len)
{
    struct resp *r;
    if (len <= 0 || len > ICE_RESP_MAX ||
        ice_ring_grow(a, &a->resp, &a->resp_head, &a->resp_cap, a->resp_len, ICE_RESP_SLOTS,
                      sizeof *a->resp) < 0)
        return;
    r = &a->resp[(a->resp_head + a->resp_len) % a->resp_cap];
    r->source = s->bases[base].addr;
    r->destination = *to;
    r->turn = turn;
    r->len = (uint16_t)len;
    memcpy(r->data, msg, (size_t)len);
    a->resp_len++;
}

static void reject(sluice_ice_agent *a, const struct stream *s, int base, int turn,
                   const sluice_addr *to, const sluice_stun_msg *m, int code,
                   const sluice_stun_key *key)
{
    uint8_t buf[ICE_RESP_MAX];
    sluice_stun_error_opts o;
    memset(&o, 0, sizeof o);
    o.key = key;
    o.software = a->software;
    o.fingerprint = true;
    a->stats.checks_rejected++;
    queue_resp(a, s, base, turn, to, buf, sluice_stun_error_response(m, code, &o, buf, sizeof buf));
}

static void role_changed(sluice_ice_agent *a)
{
    sluice_ice_event ev;
    a->stats.role_conflicts++;
    sluice_ice_agent_set_role(a, !a->controlling);
    memset(&ev, 0, sizeof ev);
    ev.type = SLUICE_ICE_EVENT_ROLE;
    ev.controlling = a->controlling;
    ice_emit(a, &ev);
}

/* The local candidate that received a check: the relayed candidate when it
 * came through TURN, else the base's host candidate. */
static int receiving_local(const sluice_ice_agent *a, const struct stream *s, int base, int turn)
{
    if (turn >= 0)
        return a->turns[turn].lcand;
    for (size_t i = 0; i < s->n_local; i++)
        if (s->local[i].base == base && s->local[i].c.type == SLUICE_ICE_CAND_HOST)
            return (int)i;
    return -1;
}

/* §7.3.1.3: an unknown source is a peer-reflexive remote candidate. */
static int learn_remote(sluice_ice_agent *a, struct stream *s, unsigned comp,
                        const sluice_addr *from, uint32_t priority)
{
    sluice_ice_event ev;
    struct rcand *r;
    for (size_t i = 0; i < s->n_remote; i++)
        if (s->remote[i].c.component == comp && sluice_addr_equal(&s->remote[i].c.addr, from))
            return (int)i;
    if (ice_grow(a, &s->remote, &s->cap_remote, s->n_remote, a->cfg.max_remote_candidates,
                 sizeof *s->remote) < 0) {
        a->stats.remote_candidates_dropped++;
        return -1;
    }
    r = &s->remote[s->n_remote];
    memset(r, 0, sizeof *r);
    r->c.component = (uint16_t)comp;
    r->c.transport = SLUICE_TRANSPORT_UDP;
    r->c.type = SLUICE_ICE_CAND_PRFLX;
    r->c.priority = priority;
    r->c.addr = *from;
    snprintf(r->c.foundation, sizeof r->c.foundation, "prflx%u", ++s->prflx_seq);
    s->n_remote++;
    memset(&ev, 0, sizeof ev);
    ev.type = SLUICE_ICE_EVENT_REMOTE_PRFLX;
    ev.stream = s->id;
    ev.component = comp;
    ev.candidate = r->c;
    ice_emit(a, &ev);
    return (int)s->n_remote - 1;
}

static void handle_request(sluice_ice_agent *a, uint64_t now, struct stream *s, int base, int turn,
                           const sluice_addr *remote, const sluice_stun_msg *m)
{
    const uint8_t *user;
    size_t ulen, flen;
    const sluice_stun_key *key = NULL;
    bool old_session = false;
    uint64_t theirs;
    uint32_t priority;
    uint8_t buf[ICE_RESP_MAX];

    /* RFC 8489 §9.1.3: USERNAME and MESSAGE-INTEGRITY, else 400. */
    if (sluice_stun_get_bytes(m, SLUICE_STUN_ATTR_USERNAME, &user, &ulen) < 0 ||
        !m->integrity_off) {
        reject(a, s, base, turn, remote, m, SLUICE_STUN_ERR_BAD_REQUEST, NULL);
        return;
    }
    /* §7.3: USERNAME is "our ufrag:their ufrag". */
    for (flen = 0; flen < ulen && user[flen] != ':'; flen++)
        ;
    if (flen == strlen(s->ufrag) && memcmp(user, s->ufrag, flen) == 0) {
        key = &s->key_local;
    } else if (s->have_prev && flen == strlen(s->prev_ufrag) &&
               memcmp(user, s->prev_ufrag, flen) == 0) {
        key = &s->key_prev; /* the session before a restart: consent only */
        old_session = true;
    }
    if (!key || sluice_stun_check_integrity(m, key) != 0) {
        reject(a, s, base, turn, remote, m, SLUICE_STUN_ERR_UNAUTHORIZED, NULL);
        return;
    }
    if (m->n_unknown) {
        reject(a, s, base, turn, remote, m, SLUICE_STUN_ERR_UNKNOWN_ATTRIBUTE, key);
        return;
    }
    if (sluice_stun_get_u32(m, SLUICE_STUN_ATTR_PRIORITY, &priority) < 0 || priority == 0) {
        reject(a, s, base, turn, remote, m, SLUICE_STUN_ERR_BAD_REQUEST, key);
        return;
    }
    a->stats.checks_received++;

    /* §7.3.1.1: role conflicts, decided by the tie-breakers — except
     * against a lite peer, where §6.1.1 makes the full agent controlling
     * whatever the tie-breakers say: we never yield to it. */
    if (a->controlling && sluice_stun_get_u64(m, SLUICE_STUN_ATTR_ICE_CONTROLLING, &theirs) == 0) {
        if (a->tiebreaker >= theirs || a->remote_lite) {
            reject(a, s, base, turn, remote, m, SLUICE_STUN_ERR_ROLE_CONFLICT, key);
            return;
        }
        role_changed(a);
    } else if (!a->controlling &&
               sluice_stun_get_u64(m, SLUICE_STUN_ATTR_ICE_CONTROLLED, &theirs) == 0) {
        if (a->tiebreaker >= theirs) {
            role_changed(a);
        } else {
            reject(a, s, base, turn, remote, m, SLUICE_STUN_ERR_ROLE_CONFLICT, key);
            return;
        }
    }

    /* §7.3.1.2: success with XOR-MAPPED-ADDRESS = the source. */
    queue_resp(a, s, base, turn, remote, buf,
               sluice_stun_binding_response(m, remote, key, a->software, buf, sizeof buf));
    if (old_session)
        return;

    unsigned comp = s->bases[base].component;
    int li = receiving_local(a, s, base, turn);
    int ri = learn_remote(a, s, comp, remote, priority);
    if (li < 0 || ri < 0 || !ice_pairable_local(a, &s->local[li]))
        return;
    int pi = ice_add_pair(a, s, li, ri);
    if (pi < 0)
        return;
    struct pair *p = &s->pairs[pi];
    p->requests_received++;
    p->responses_sent++;
    if (turn >= 0)
        p->perm_ok = true; /* it reached us through the relay */

    /* §7.3.1.5: USE-CANDIDATE nominates (controlled agent). */
    bool use_cand = sluice_stun_has(m, SLUICE_STUN_ATTR_USE_CANDIDATE);
    if (use_cand && !a->controlling) {
        if (p->state == PS_SUCCEEDED) {
            p->nominated = true;
            ice_select(a, now, s, comp);
        } else {
            p->nominate_on_success = true;
        }
    }
    /* §7.3.1.4: a triggered check unless the pair already succeeded. For
     * an In-Progress pair RFC 8445 cancels the transaction and starts a new
     * one; when both agents check the same pair at once that restarts both
     * on every crossing request, for ever. We retransmit the transaction
     * in progress at once instead (RFC 5245 §7.2.1.4), once per
     * transaction: its first request was probably dropped by the peer's
     * NAT before the peer's own check opened it. */
    if (p->state == PS_IN_PROGRESS) {
        if (p->tx.active && !p->tx.due && !p->tx.hurried && !p->check_is_consent) {
            p->tx.due = true;
            p->tx.hurried = true;
        }
    } else if (p->state != PS_SUCCEEDED) {
        ice_trigger(a, s, pi);
    }
    ice_update_state(a, now, s);
}

static void handle_check_answer(sluice_ice_agent *a, uint64_t now, struct stream *s, int pi,
                                int turn, const sluice_addr *local,
                                const sluice_addr *remote, const sluice_stun_msg *m)
{
    struct pair *p = &s->pairs[pi];
    const struct lcand *l = &s->local[p->local];
    bool consent = p->check_is_consent;
    int code = 0;
    /* RFC 8489 §9.1.4: an answer that fails integrity is dropped. */
    if (!m->integrity_off || sluice_stun_check_integrity(m, &s->key_remote) != 0)
        return;
    p->tx.active = false;
    p->tx.due = false;
    p->old_txid_valid = false;
    /* §7.2.5.2.1: source and destination must be symmetric. */
    if (!sluice_addr_equal(remote, &s->remote[p->remote].c.addr) ||
        !sluice_addr_equal(local, &l->c.addr) || (turn >= 0) != (l->turn >= 0)) {
        if (!consent)
            ice_pair_failed(a, now, s, pi);
        return;
    }
    p->responses_received++;
    p->rtt_us = now >= p->tx.last_us ? now - p->tx.last_us : 0;
    if (m->cls == SLUICE_STUN_ERROR) {
        sluice_stun_get_error_code(m, &code, NULL, NULL);
        if (code == SLUICE_STUN_ERR_ROLE_CONFLICT && !consent) {
            /* §7.2.5.1: switch role if we still hold the one we claimed,
             * and check the pair again. A lite peer is always controlled
             * (§6.1.1): we keep controlling and check again. */
            if (p->check_controlling == a->controlling && !a->remote_lite)
                role_changed(a);
            p->state = PS_WAITING;
            ice_trigger(a, s, pi);
        } else if (!consent) {
            ice_pair_failed(a, now, s, pi);
        }
        return;
    }
    if (consent) {
        struct route_state *sel = &s->comp[p->component - 1].sel;
        if (sel->pair == pi && !sel->consent_lost)
            sel->consent_expires_us = now + a->cfg.consent_timeout_us;
        return;
    }
    /* §7.2.5.3.1: a mapped address we do not know is a local prflx. */
    sluice_addr mapped;
    if (sluice_stun_get_xor_address(m, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped) == 0 &&
        l->turn < 0) {
        bool known = false;
        for (size_t i = 0; i < s->n_local && !known; i++)
            known = sluice_addr_equal(&s->local[i].c.addr, &mapped);
        if (!known)
            ice_add_local(a, s, SLUICE_ICE_CAND_PRFLX, &mapped, &l->c.addr, l->base, -1, NULL,
                          false);
    }
    ice_pair_succeeded(a, now, s, pi);
    /* A selected pair's successful check also counts as consent. */
    struct route_state *sel = &s->comp[p->component - 1].sel;
    if (sel->pair == pi)
        sel->consent_expires_us = now + a->cfg.consent_timeout_us;
    ice_update_state(a, now, s);
}

static void handle_gather_answer(sluice_ice_agent *a, struct stream *s, struct gather *g,
                                 const sluice_addr *remote, const sluice_stun_msg *m)
{
    sluice_addr mapped;
    int code = 0;
    if (!sluice_addr_equal(remote, &a->stun_servers[g->server]))
        return;
    if (m->cls == SLUICE_STUN_ERROR) {
        sluice_stun_get_error_code(m, &code, NULL, NULL);
        ice_gather_result(a, s, g, NULL, code, SLUICE_ERR_AUTH);
        return;
    }
    if (sluice_stun_get_xor_address(m, SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped) < 0 &&
        sluice_stun_get_address(m, SLUICE_STUN_ATTR_MAPPED_ADDRESS, &mapped) < 0) {
        ice_gather_result(a, s, g, NULL, 0, SLUICE_ERR_MALFORMED);
        return;
    }
    ice_gather_result(a, s, g, &mapped, 0, 0);
}

int ice_handle_stun(sluice_ice_agent *a, uint64_t now, struct stream *s, int base, int turn,
                    const sluice_addr *local, const sluice_addr *remote, const uint8_t *data,
                    size_t len)
{
    sluice_stun_msg m;
    int rc = sluice_stun_parse(&m, data, len);
    if (rc < 0)
        return rc;
    if (m.method != SLUICE_STUN_BINDING)
        return 0;
    if (m.cls == SLUICE_STUN_REQUEST) {
        handle_request(a, now, s, base, turn, remote, &m);
        return 0;
    }
    if (m.cls == SLUICE_STUN_INDICATION)
        return 0; /* keepalive (§11) */
    const uint8_t *txid = sluice_stun_txid(&m);
    for (size_t k = 0; k < s->n_pairs; k++) {
        struct pair *p = &s->pairs[k];
        if ((p->tx.active && memcmp(p->tx.txid, txid, SLUICE_STUN_TXID_LEN) == 0) ||
            (p->old_txid_valid && memcmp(p->old_txid, txid, SLUICE_STUN_TXID_LEN) == 0)) {
            handle_check_answer(a, now, s, (int)k, turn, local, remote, &m);
            return 0;
        }
    }
    if (turn < 0) {
        for (size_t k = 0; k < s->n_gathers; k++) {
            struct gather *g = &s->gathers[k];
            if (g->tx.active && g->base == base &&
                memcmp(g->tx.txid, txid, SLUICE_STUN_TXID_LEN) == 0) {
                handle_gather_answer(a, s, g, remote, &m);
                return 0;
            }
        }
    }
    return 0;
}
