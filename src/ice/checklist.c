/* SPDX-License-Identifier: MIT */
/* ICE checklists (RFC 8445 §6.1.2 - §6.1.4, §7.2.5.3, §8): forming and
 * pruning pairs, pair states and foundation-based unfreezing, the Ta pacer
 * with the triggered-check queue, regular nomination by the controlling
 * agent, selection, and the stream state. */
#include <string.h>

#include "ice/internal.h"

const char *ice_pair_state_name(int st)
{
    switch (st) {
    case PS_FROZEN: return "frozen";
    case PS_WAITING: return "waiting";
    case PS_IN_PROGRESS: return "in-progress";
    case PS_SUCCEEDED: return "succeeded";
    case PS_FAILED: return "failed";
    }
    return "?";
}

/* §6.1.2.3: G is the controlling agent's candidate priority. */
uint64_t ice_pair_priority(bool controlling, uint32_t local_prio, uint32_t remote_prio)
{
    uint64_t g = controlling ? local_prio : remote_prio;
    uint64_t d = controlling ? remote_prio : local_prio;
    uint64_t mn = g < d ? g : d, mx = g < d ? d : g;
    return (mn << 32) + 2 * mx + (g > d ? 1 : 0);
}

static uint64_t pair_prio(const sluice_ice_agent *a, const struct stream *s, const struct pair *p)
{
    return ice_pair_priority(a->controlling, s->local[p->local].c.priority,
                             s->remote[p->remote].c.priority);
}

void ice_recompute_priorities(sluice_ice_agent *a)
{
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        struct stream *s = a->streams[i];
        if (!s || !s->used)
            continue;
        for (size_t p = 0; p < s->n_pairs; p++)
            s->pairs[p].priority = pair_prio(a, s, &s->pairs[p]);
    }
}

static bool same_foundation(const struct stream *s1, const struct pair *p1, const struct stream *s2,
                            const struct pair *p2)
{
    return strcmp(s1->local[p1->local].c.foundation, s2->local[p2->local].c.foundation) == 0 &&
           strcmp(s1->remote[p1->remote].c.foundation, s2->remote[p2->remote].c.foundation) == 0;
}

/* Is a pair with this pair's foundation Waiting or In-Progress anywhere
 * (§6.1.2.6, §6.1.4.2)? */
static bool foundation_active(const sluice_ice_agent *a, const struct stream *s,
                              const struct pair *p)
{
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        const struct stream *o = a->streams[i];
        if (!o || !o->used)
            continue;
        for (size_t k = 0; k < o->n_pairs; k++) {
            const struct pair *q = &o->pairs[k];
            if (q != p && (q->state == PS_WAITING || q->state == PS_IN_PROGRESS) &&
                same_foundation(s, p, o, q))
                return true;
        }
    }
    return false;
}

bool ice_pairable_local(const sluice_ice_agent *a, const struct lcand *l)
{
    /* §6.1.2.4: srflx locals are replaced by their base, which is the host
     * candidate already paired; prflx locals only appear in valid pairs. */
    if (l->c.type == SLUICE_ICE_CAND_RELAY)
        return !l->withdrawn;
    return l->c.type == SLUICE_ICE_CAND_HOST && !a->relay_only;
}

int ice_find_pair(const struct stream *s, int local, int remote)
{
    for (size_t i = 0; i < s->n_pairs; i++)
        if (s->pairs[i].local == local && s->pairs[i].remote == remote)
            return (int)i;
    return -1;
}

/* Add a pair (Frozen or Waiting per §6.1.2.6). With the checklist full
 * (§6.1.2.5), the lowest-priority unchecked pair makes room when the new
 * one ranks above it. Returns the index or a negative code. */
int ice_add_pair(sluice_ice_agent *a, struct stream *s, int local, int remote)
{
    struct pair np, *p;
    int idx = ice_find_pair(s, local, remote);
    if (idx >= 0)
        return idx;
    memset(&np, 0, sizeof np);
    np.local = local;
    np.remote = remote;
    np.component = s->local[local].c.component;
    np.priority = pair_prio(a, s, &np);
    int rc = ice_grow(a, &s->pairs, &s->cap_pairs, s->n_pairs, a->cfg.max_pairs, sizeof *s->pairs);
    if (rc == SLUICE_ERR_NOMEM) {
        a->stats.pairs_dropped++;
        return rc;
    }
    if (rc == 0) {
        idx = (int)s->n_pairs++;
    } else {
        int victim = -1;
        for (size_t i = 0; i < s->n_pairs; i++) {
            const struct pair *q = &s->pairs[i];
            if ((q->state == PS_FROZEN || q->state == PS_WAITING) && !q->triggered &&
                !q->nominating && (victim < 0 || q->priority < s->pairs[victim].priority))
                victim = (int)i;
        }
        if (victim < 0 || s->pairs[victim].priority >= np.priority) {
            a->stats.pairs_dropped++;
            return SLUICE_ERR_FULL;
        }
        a->stats.pairs_dropped++;
        idx = victim;
    }
    p = &s->pairs[idx];
    *p = np;
    p->state = foundation_active(a, s, p) ? PS_FROZEN : PS_WAITING;
    /* A foundation that already succeeded unfreezes at once (§7.2.5.3.3). */
    if (p->state == PS_FROZEN) {
        for (size_t i = 0; i < s->n_pairs; i++)
            if ((int)i != idx && s->pairs[i].state == PS_SUCCEEDED &&
                same_foundation(s, &s->pairs[i], s, p))
                p->state = PS_WAITING;
    }
    const struct lcand *l = &s->local[local];
    if (l->turn >= 0) {
        /* RFC 8656 §9: the relay forwards only to permitted peers. */
        for (size_t i = 0; i < s->n_pairs; i++) {
            const struct pair *q = &s->pairs[i];
            if ((int)i != idx && q->perm_ok && s->local[q->local].turn == l->turn &&
                sluice_addr_equal_ip(&s->remote[q->remote].c.addr, &s->remote[remote].c.addr))
                p->perm_ok = true;
        }
    }
    return idx;
}

static void request_permission(sluice_ice_agent *a, uint64_t now, struct stream *s, int pi)
{
    struct pair *p = &s->pairs[pi];
    sluice_turn_client *tc = ice_turn_of(a, s->local[p->local].turn);
    if (tc && !p->perm_ok)
        sluice_turn_client_create_permission(tc, now, &s->remote[p->remote].c.addr);
}

static bool can_pair(const sluice_ice_agent *a, const struct stream *s, int li, int ri)
{
    const struct lcand *l = &s->local[li];
    const struct rcand *r = &s->remote[ri];
    return ice_pairable_local(a, l) && l->c.component == r->c.component &&
           l->c.addr.family == r->c.addr.family;
}

void ice_pairs_for_local(sluice_ice_agent *a, uint64_t now, struct stream *s, int local)
{
    for (size_t r = 0; r < s->n_remote; r++) {
        if (!can_pair(a, s, local, (int)r))
            continue;
        int pi = ice_add_pair(a, s, local, (int)r);
        if (pi >= 0)
            request_permission(a, now, s, pi);
    }
}

void ice_pairs_for_remote(sluice_ice_agent *a, uint64_t now, struct stream *s, int remote)
{
    for (size_t l = 0; l < s->n_local; l++) {
        if (!can_pair(a, s, (int)l, remote))
            continue;
        int pi = ice_add_pair(a, s, (int)l, remote);
        if (pi >= 0)
            request_permission(a, now, s, pi);
    }
}

void ice_trigger(sluice_ice_agent *a, struct stream *s, int pair)
{
    struct pair *p = &s->pairs[pair];
    if (p->triggered || s->trig_len == a->cfg.max_pairs)
        return;
    p->triggered = true;
    /* A succeeded pair is checked again only to nominate it: it stays
     * valid meanwhile. */
    if (p->state != PS_IN_PROGRESS && p->state != PS_SUCCEEDED)
        p->state = PS_WAITING;
    s->triggered[(s->trig_head + s->trig_len) % a->cfg.max_pairs] = pair;
    s->trig_len++;
}

/* §7.2.5.3.3: a success unfreezes the pairs of the same foundation in
 * every checklist. */
static void unfreeze_foundation(sluice_ice_agent *a, const struct stream *s, const struct pair *p)
{
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        struct stream *o = a->streams[i];
        if (!o || !o->used)
            continue;
        for (size_t k = 0; k < o->n_pairs; k++) {
            struct pair *q = &o->pairs[k];
            if (q->state == PS_FROZEN && same_foundation(s, p, o, q))
                q->state = PS_WAITING;
        }
    }
}

void ice_pair_succeeded(sluice_ice_agent *a, uint64_t now, struct stream *s, int pi)
{
    struct pair *p = &s->pairs[pi];
    struct component *c = &s->comp[p->component - 1];
    p->state = PS_SUCCEEDED;
    p->valid = true;
    if (!c->first_valid_us)
        c->first_valid_us = now;
    unfreeze_foundation(a, s, p);
    if (p->check_use_cand && p->check_controlling) {
        p->nominated = true; /* §8.1.1: the USE-CANDIDATE check succeeded */
        p->nominating = false;
    }
    if (!a->controlling && p->nominate_on_success) {
        p->nominated = true; /* §7.3.1.5 */
        p->nominate_on_success = false;
    }
    if (p->nominated)
        ice_select(a, now, s, p->component);
    ice_update_nomination(a, now, s);
}

void ice_pair_failed(sluice_ice_agent *a, uint64_t now, struct stream *s, int pi)
{
    struct pair *p = &s->pairs[pi];
    p->state = PS_FAILED;
    p->tx.active = false;
    p->tx.due = false;
    p->nominating = false;
    (void)a;
    (void)now;
}

/* The highest-priority pair of the component matching a predicate. */
static int best_pair(const struct stream *s, unsigned comp, bool (*pred)(const struct pair *))
{
    int best = -1;
    for (size_t i = 0; i < s->n_pairs; i++) {
        const struct pair *p = &s->pairs[i];
        if (p->component == comp && pred(p) &&
            (best < 0 || p->priority > s->pairs[best].priority))
            best = (int)i;
    }
    return best;
}

static bool is_valid(const struct pair *p)
{
    return p->valid && p->state == PS_SUCCEEDED;
}
static bool is_nominated(const struct pair *p)
{
    return p->nominated && p->valid;
}
static bool is_pending(const struct pair *p)
{
    return p->state == PS_FROZEN || p->state == PS_WAITING || p->state == PS_IN_PROGRESS;
}

/* Regular nomination (§8.1.1): the controlling agent picks a valid pair per
 * component and repeats its check with USE-CANDIDATE. §8.1.1 leaves when to
 * stop waiting for better pairs to the agent. We nominate the best valid pair
 * once no higher-priority pair is still worth waiting for, and at the latest
 * nomination_wait_us after the first valid pair. A higher-priority pair is
 * worth waiting for while it is frozen or waiting (not checked yet), or in
 * progress for less than the patience below. */
static bool is_relayed(const struct stream *s, const struct pair *p)
{
    return s->local[p->local].c.type == SLUICE_ICE_CAND_RELAY ||
           s->remote[p->remote].c.type == SLUICE_ICE_CAND_RELAY;
}

/* How long a check of a higher-priority pair may stay unanswered before it
 * stops holding back the nomination of a direct pair: four round trips of
 * the pair we have, plus two Ta. A better path answers about as fast as the
 * one that already did; the check that is still unanswered after that is
 * headed for a private address of another network or a NAT that drops it
 * (measured through tests/nat: 250 ms were spent waiting on the unreachable
 * host/host pair in every call between two NATed peers). When the pair we
 * have is relayed, the full nomination_wait_us stays: a direct pair whose
 * first check a NAT dropped may still succeed on the peer's triggered
 * check, and media through a relay costs the relay operator. */
static uint64_t patience_us(const sluice_ice_agent *a, const struct pair *best)
{
    return 4 * best->rtt_us + 2 * a->cfg.ta_us;
}

/* When the controlling agent will nominate for component c: 0 when there
 * is nothing to decide (not controlling, nominated or nominating, no valid
 * pair), else the time, with *best the pair to nominate. */
static uint64_t nomination_due(const sluice_ice_agent *a, const struct stream *s, unsigned c,
                               int *best)
{
    const struct component *comp = &s->comp[c - 1];
    uint64_t latest, due = 1; /* 1: at once */
    if (!a->controlling || !s->have_remote_creds || comp->sel.pair >= 0)
        return 0;
    for (size_t i = 0; i < s->n_pairs; i++)
        if (s->pairs[i].component == c && s->pairs[i].nominating)
            return 0;
    *best = best_pair(s, c, is_valid);
    if (*best < 0)
        return 0;
    const struct pair *b = &s->pairs[*best];
    latest = comp->first_valid_us + a->cfg.nomination_wait_us;
    for (size_t i = 0; i < s->n_pairs; i++) {
        const struct pair *p = &s->pairs[i];
        if (p->component != c || !is_pending(p) || p->priority <= b->priority)
            continue;
        if (p->state != PS_IN_PROGRESS || !p->tx.first_us || is_relayed(s, b))
            return latest;
        uint64_t t = p->tx.first_us + patience_us(a, b);
        if (t > due)
            due = t;
    }
    return due < latest ? due : latest;
}

void ice_update_nomination(sluice_ice_agent *a, uint64_t now, struct stream *s)
{
    for (unsigned c = 1; c <= s->n_components; c++) {
        int best = -1;
        uint64_t due = nomination_due(a, s, c, &best);
        if (due == 0 || due > now)
            continue;
        s->pairs[best].nominating = true;
        ice_trigger(a, s, best);
    }
}

/* §8.1.1 / §12: media goes on the highest-priority nominated pair. */
void ice_select(sluice_ice_agent *a, uint64_t now, struct stream *s, unsigned comp)
{
    struct component *c = &s->comp[comp - 1];
    int best = best_pair(s, comp, is_nominated);
    sluice_ice_event ev;
    if (best < 0 || best == c->sel.pair)
        return;
    const struct pair *p = &s->pairs[best];
    const struct lcand *l = &s->local[p->local];
    c->sel.valid = true;
    c->sel.pair = best;
    c->sel.local = l->c;
    c->sel.remote = s->remote[p->remote].c;
    c->sel.base = l->base;
    c->sel.turn = l->turn;
    c->sel.consent_lost = false;
    c->sel.consent_expires_us = now + a->cfg.consent_timeout_us;
    c->sel.next_consent_us = now + ice_consent_interval(a);
    if (l->turn >= 0) {
        sluice_turn_client *tc = ice_turn_of(a, l->turn);
        if (tc) /* ChannelData for media (RFC 8656 §12) */
            sluice_turn_client_bind_channel(tc, now, &c->sel.remote.addr);
    }
    /* §8.1.2: lower-priority pairs of this component are no longer checked. */
    for (size_t i = 0; i < s->n_pairs; i++) {
        struct pair *q = &s->pairs[i];
        if (q->component == comp && is_pending(q) && q->priority < p->priority && !q->tx.active)
            q->state = PS_FAILED;
    }
    memset(&ev, 0, sizeof ev);
    ev.type = SLUICE_ICE_EVENT_SELECTED_PAIR;
    ev.stream = s->id;
    ev.component = comp;
    ev.local = c->sel.local;
    ev.remote = c->sel.remote;
    ice_emit(a, &ev);
}

static bool ready(const struct stream *s, const struct pair *p)
{
    return s->local[p->local].turn < 0 || p->perm_ok;
}

/* The pair to check next in a checklist (§6.1.4.2), or -1. With take, the
 * triggered queue is consumed and a Frozen pair is unfrozen. */
/* Remove entry n of the triggered queue; entries before it stay in order. */
static void trig_remove(sluice_ice_agent *a, struct stream *s, size_t n)
{
    int pi = s->triggered[(s->trig_head + n) % a->cfg.max_pairs];
    for (size_t k = n; k > 0; k--)
        s->triggered[(s->trig_head + k) % a->cfg.max_pairs] =
            s->triggered[(s->trig_head + k - 1) % a->cfg.max_pairs];
    s->trig_head = (s->trig_head + 1) % a->cfg.max_pairs;
    s->trig_len--;
    s->pairs[pi].triggered = false;
}

static int next_pair(sluice_ice_agent *a, struct stream *s, bool take)
{
    int best = -1;
    if (!s->have_remote_creds || s->state == SLUICE_ICE_FAILED)
        return -1;
    for (size_t n = 0; n < s->trig_len; n++) {
        int pi = s->triggered[(s->trig_head + n) % a->cfg.max_pairs];
        struct pair *p = &s->pairs[pi];
        if (!ready(s, p))
            continue;
        bool stale = (p->state == PS_SUCCEEDED && !p->nominating) || p->state == PS_FAILED;
        if (!take) {
            if (stale)
                continue;
            return pi;
        }
        trig_remove(a, s, n);
        if (stale) {
            n--; /* entry n is now the next one */
            continue;
        }
        return pi;
    }
    for (size_t i = 0; i < s->n_pairs; i++) {
        const struct pair *p = &s->pairs[i];
        if (p->state == PS_WAITING && !p->triggered && ready(s, p) &&
            (best < 0 || p->priority > s->pairs[best].priority))
            best = (int)i;
    }
    if (best >= 0)
        return best;
    for (size_t i = 0; i < s->n_pairs; i++) {
        const struct pair *p = &s->pairs[i];
        if (p->state == PS_FROZEN && ready(s, p) && !foundation_active(a, s, p) &&
            (best < 0 || p->priority > s->pairs[best].priority))
            best = (int)i;
    }
    if (best >= 0 && take)
        s->pairs[best].state = PS_WAITING;
    return best;
}

bool ice_tick(sluice_ice_agent *a, uint64_t now)
{
    for (size_t n = 0; n < a->cfg.max_streams; n++) {
        size_t i = (a->rr + n) % a->cfg.max_streams;
        struct stream *s = a->streams[i];
        if (!s || !s->used)
            continue;
        int pi = next_pair(a, s, true);
        if (pi < 0)
            continue;
        a->rr = i + 1;
        ice_start_check(a, now, s, pi, false);
        return true;
    }
    return false;
}

/* Entry of the triggered queue holding the nominating check of a pair that
 * has already succeeded (regular nomination, §8.1.1), or -1. */
static long queued_nomination(const sluice_ice_agent *a, const struct stream *s)
{
    if (!s->have_remote_creds || s->state == SLUICE_ICE_FAILED)
        return -1;
    for (size_t n = 0; n < s->trig_len; n++) {
        const struct pair *p = &s->pairs[s->triggered[(s->trig_head + n) % a->cfg.max_pairs]];
        if (p->nominating && p->state == PS_SUCCEEDED && !p->tx.active && ready(s, p))
            return (long)n;
    }
    return -1;
}

/* Deliberate exception to the Ta pacing of §6.1.4.2 (docs/ice.md): the
 * check that nominates a pair which has just succeeded goes out
 * ICE_NOMINATE_GAP_US after the previous transaction instead of waiting for
 * the next Ta slot. It is one extra transaction per component per session,
 * to a peer that has just answered on that very path, so it adds no load
 * the pacing protects against, and it takes a whole Ta (50 ms by default)
 * off connection setup. */
bool ice_nomination_pending(const sluice_ice_agent *a)
{
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        const struct stream *s = a->streams[i];
        if (s && s->used && queued_nomination(a, s) >= 0)
            return true;
    }
    return false;
}

bool ice_nominate_tick(sluice_ice_agent *a, uint64_t now)
{
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        struct stream *s = a->streams[i];
        long n;
        if (!s || !s->used || (n = queued_nomination(a, s)) < 0)
            continue;
        int pi = s->triggered[(s->trig_head + (size_t)n) % a->cfg.max_pairs];
        trig_remove(a, s, (size_t)n);
        ice_start_check(a, now, s, pi, false);
        return true;
    }
    return false;
}

bool ice_work_pending(const sluice_ice_agent *a)
{
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        struct stream *s = a->streams[i];
        if (s && s->used && next_pair((sluice_ice_agent *)a, s, false) >= 0)
            return true;
    }
    return false;
}

/* Nomination waits and the failure timeout. */
uint64_t ice_checklist_deadline(const sluice_ice_agent *a)
{
    uint64_t next = SLUICE_NEVER;
    for (size_t i = 0; i < a->cfg.max_streams; i++) {
        const struct stream *s = a->streams[i];
        if (!s || !s->used || !s->have_remote_creds || s->state == SLUICE_ICE_FAILED)
            continue;
        for (unsigned c = 0; c < s->n_components; c++) {
            const struct component *comp = &s->comp[c];
            int best;
            uint64_t t = nomination_due(a, s, c + 1, &best);
            if (t && t < next)
                next = t;
            if (comp->sel.pair < 0 && a->cfg.failure_timeout_us && s->checks_started_us) {
                t = s->checks_started_us + a->cfg.failure_timeout_us;
                if (t < next)
                    next = t;
            }
        }
    }
    return next;
}

void ice_update_state(sluice_ice_agent *a, uint64_t now, struct stream *s)
{
    bool all_sel = true, all_done = true, lost = false, failed = false;
    if (s->state == SLUICE_ICE_FAILED)
        return;
    if (!s->have_remote_creds)
        return;
    if (!s->checks_started_us)
        s->checks_started_us = now ? now : 1;
    ice_update_nomination(a, now, s);
    for (unsigned c = 1; c <= s->n_components; c++) {
        const struct component *comp = &s->comp[c - 1];
        bool pending = false, any_valid = false;
        for (size_t i = 0; i < s->n_pairs; i++) {
            const struct pair *p = &s->pairs[i];
            if (p->component != c)
                continue;
            if (is_pending(p) || p->nominating)
                pending = true;
            if (p->valid)
                any_valid = true;
        }
        if (comp->sel.valid && comp->sel.consent_lost)
            lost = true;
        if (comp->sel.pair < 0) {
            all_sel = false;
            /* §8.1.2 / RFC 8838 §8: fail only when nothing is left to try
             * and the peer said end-of-candidates, or after the timeout. */
            if (!pending && !any_valid && s->remote_eoc && s->gathering_done)
                failed = true;
            if (a->cfg.failure_timeout_us && now >= s->checks_started_us + a->cfg.failure_timeout_us)
                failed = true;
        }
        if (pending)
            all_done = false;
    }
    if (failed) {
        ice_set_state(a, s, SLUICE_ICE_FAILED);
        return;
    }
    if (lost)
        ice_set_state(a, s, SLUICE_ICE_DISCONNECTED);
    else if (all_sel) {
        if (s->state != SLUICE_ICE_COMPLETED)
            ice_set_state(a, s, SLUICE_ICE_CONNECTED); /* reported before completed */
        if (all_done && s->state != SLUICE_ICE_COMPLETED) {
            ice_set_state(a, s, SLUICE_ICE_COMPLETED);
            s->completed_us = now ? now : 1;
        }
    }
    else if (s->state == SLUICE_ICE_NEW)
        ice_set_state(a, s, SLUICE_ICE_CHECKING);
}
