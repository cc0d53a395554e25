/* SPDX-License-Identifier: MIT */
/* The shared per-user allocation quota (src/turn/quota.c), as the server
 * core uses it. Not installed: the public half is in sluice/turn_server.h. */
#ifndef SLUICE_TURN_QUOTA_H
#define SLUICE_TURN_QUOTA_H

#include <stdint.h>

#include "sluice/turn_server.h"

/* Count one allocation for the user whose identity is id (16 bytes, a
 * digest of the username: uniform, so the keyed hash is a plain mix).
 * limit is the most the user may hold (at least 1). Returns 0 with the
 * slot that holds the count in *slot (give it back to release), or
 * SLUICE_ERR_FULL when the user already holds limit allocations or no
 * slot is free in the user's probe window. Safe from any thread. */
int sluice_turn_quota_acquire(sluice_turn_quota *q, const uint8_t id[16], uint32_t limit,
                              uint32_t *slot);
/* Give back one count taken by acquire. Safe from any thread. */
void sluice_turn_quota_release(sluice_turn_quota *q, uint32_t slot);

#endif
