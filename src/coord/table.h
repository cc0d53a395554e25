/* SPDX-License-Identifier: MIT */
/* The two containers both coordinator machines keep (internal): a stream
 * table sorted by stream id, and the FIFO of event nodes with its bound on
 * counted events and the node handed out last. */
#ifndef SLUICE_COORD_TABLE_H
#define SLUICE_COORD_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/common.h"

/* Items are structs whose first member is `uint32_t id`. */
typedef struct coord_idtab {
    void **v;
    uint32_t n, cap;
} coord_idtab;

void *coord_idtab_find(const coord_idtab *t, uint32_t id);
/* Insert (the id must not be there yet; the array grows by doubling).
 * Returns 0 or SLUICE_ERR_NOMEM. */
int coord_idtab_insert(coord_idtab *t, const sluice_allocator *a, void *item);
void coord_idtab_remove(coord_idtab *t, const void *item);
/* Free the array, and the items when free_items. */
void coord_idtab_free(coord_idtab *t, const sluice_allocator *a, bool free_items);

/* Event nodes start with this. */
typedef struct coord_evnode {
    struct coord_evnode *next;
    bool counted; /* holds one of the queue's max slots */
} coord_evnode;

typedef struct coord_evq {
    coord_evnode *head, *tail;
    coord_evnode *current; /* handed out by the last pop, released by the next */
    size_t n_counted, max;
    uint64_t dropped;
} coord_evq;

/* May a node be added? Counted nodes need a free slot; a refusal is
 * counted in dropped. */
bool coord_evq_admit(coord_evq *q, bool counted);
void coord_evq_append(coord_evq *q, coord_evnode *n);
/* Take the oldest node; it becomes current. NULL when empty. The caller
 * must have released the previous current (coord_evq_release). */
coord_evnode *coord_evq_pop(coord_evq *q);
/* Detach and return current (NULL when none). */
coord_evnode *coord_evq_release(coord_evq *q);

/* Copy src (NULL: "") NUL-terminated to *tail and advance it; returns the
 * copy. */
const char *coord_put_str(char **tail, const char *src);
/* strdup through the allocator; NULL for NULL or out of memory. */
char *coord_strdup(const sluice_allocator *a, const char *s);

#endif
