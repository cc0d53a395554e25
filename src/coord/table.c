/* SPDX-License-Identifier: MIT */
/* Stream tables sorted by id (binary search; inserts are rare next to
 * lookups) and the bounded event FIFO shared by both coordinator machines. */
#include "common/internal.h"
#include "coord/table.h"

static uint32_t item_id(const void *item)
{
    return *(const uint32_t *)item;
}

static uint32_t lower_bound(const coord_idtab *t, uint32_t id)
{
    uint32_t lo = 0, hi = t->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (item_id(t->v[mid]) < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void *coord_idtab_find(const coord_idtab *t, uint32_t id)
{
    uint32_t i = lower_bound(t, id);
    return i < t->n && item_id(t->v[i]) == id ? t->v[i] : NULL;
}

int coord_idtab_insert(coord_idtab *t, const sluice_allocator *a, void *item)
{
    uint32_t i;

    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 4;
        void **n = sluice_xcalloc(a, cap, sizeof *n);
        if (!n)
            return SLUICE_ERR_NOMEM;
        if (t->n)
            memcpy(n, t->v, t->n * sizeof *n);
        sluice_xfree(a, t->v);
        t->v = n;
        t->cap = cap;
    }
    i = lower_bound(t, item_id(item));
    memmove(t->v + i + 1, t->v + i, (t->n - i) * sizeof *t->v);
    t->v[i] = item;
    t->n++;
    return 0;
}

void coord_idtab_remove(coord_idtab *t, const void *item)
{
    uint32_t i = lower_bound(t, item_id(item));
    if (i < t->n && t->v[i] == item) {
        memmove(t->v + i, t->v + i + 1, (t->n - i - 1) * sizeof *t->v);
        t->n--;
    }
}

void coord_idtab_free(coord_idtab *t, const sluice_allocator *a, bool free_items)
{
    for (uint32_t i = 0; free_items && i < t->n; i++)
        sluice_xfree(a, t->v[i]);
    sluice_xfree(a, t->v);
    memset(t, 0, sizeof *t);
}

bool coord_evq_admit(coord_evq *q, bool counted)
{
    if (counted && q->n_counted >= q->max) {
        q->dropped++;
        return false;
    }
    return true;
}

void coord_evq_append(coord_evq *q, coord_evnode *n)
{
    n->next = NULL;
    if (n->counted)
        q->n_counted++;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
}

coord_evnode *coord_evq_pop(coord_evq *q)
{
    coord_evnode *n = q->head;

    if (!n)
        return NULL;
    q->head = n->next;
    if (!q->head)
        q->tail = NULL;
    if (n->counted)
        q->n_counted--;
    n->next = NULL;
    q->current = n;
    return n;
}

coord_evnode *coord_evq_release(coord_evq *q)
{
    coord_evnode *n = q->current;
    q->current = NULL;
    return n;
}

const char *coord_put_str(char **tail, const char *src)
{
    char *d = *tail;
    size_t n = src ? strlen(src) : 0;
    if (n)
        memcpy(d, src, n);
    d[n] = 0;
    *tail += n + 1;
    return d;
}

char *coord_strdup(const sluice_allocator *a, const char *s)
{
    size_t n;
    char *d;

    if (!s)
        return NULL;
    n = strlen(s) + 1;
    d = sluice_xcalloc(a, 1, n);
    if (d)
        memcpy(d, s, n);
    return d;
}
