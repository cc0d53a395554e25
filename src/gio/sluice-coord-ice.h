/* SPDX-License-Identifier: MIT */
/* SluiceCoordIce: ICE signalling for one SluiceAgent stream through a
 * sluice-coord coordinator. The two peers know each other's name only: the
 * one whose name sorts first opens a DIRECT stream (held by the coordinator
 * until the other connects) and is the controlling agent; the other
 * accepts it. Over that stream they exchange credentials and trickled
 * candidates (the text lines of docs/coord-protocol.md), and the agent
 * gathers once the stream is up, with the TURN credentials the coordinator
 * handed out added as TURN servers. This is what icesrc/icesink do with a
 * "coordinator" property (docs/elements.md). */
#ifndef SLUICE_COORD_ICE_H
#define SLUICE_COORD_ICE_H

#include "sluice-agent.h"
#include "sluice-coord-client.h"

G_BEGIN_DECLS

#define SLUICE_TYPE_COORD_ICE (sluice_coord_ice_get_type())
G_DECLARE_FINAL_TYPE(SluiceCoordIce, sluice_coord_ice, SLUICE, COORD_ICE, GObject)

/* Signal agent's stream to the client called peer, on streams labelled
 * label (e.g. "sluice-ice/video"; both sides must use the same). The
 * agent must not have gathered that stream yet: gathering starts when the
 * signalling stream is up. Starts at once if client is connected, else on
 * its "connected". Signals (on the client's context):
 *   ready (gboolean controlling, gchar *peer_fingerprint)
 *   failed (gchar *reason)     the coordinator refused us, or a bad peer */
SluiceCoordIce *sluice_coord_ice_new(SluiceCoordClient *client, SluiceAgent *agent, guint stream,
                                     const gchar *peer, const gchar *label, GError **error);

/* ICE signalling stream is up and local candidates flow. */
gboolean sluice_coord_ice_is_ready(SluiceCoordIce *self);

G_END_DECLS

#endif
