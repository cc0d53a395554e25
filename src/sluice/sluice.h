/* SPDX-License-Identifier: MIT */
/* sluice: STUN, TURN and ICE as a sans-IO core. Include this header. */
#ifndef SLUICE_H
#define SLUICE_H

#include "sluice/common.h"
#include "sluice/addr.h"
#include "sluice/stun.h"
#include "sluice/stun_txn.h"
#include "sluice/turn_client.h"
#include "sluice/turn_server.h"
#include "sluice/ice.h"
#include "sluice/coord.h"

#endif
