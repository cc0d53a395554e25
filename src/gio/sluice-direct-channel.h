/* SPDX-License-Identifier: MIT */
/* SluiceDirectChannel: messages between two coordinator clients straight
 * over their ICE path, protected by DTLS 1.2 with the peer's certificate
 * pinned by the fingerprint the coordinator vouched for (the core is
 * sluice_coord_dtls, src/sluice/coord.h; docs/coord-protocol.md, "Direct
 * channel (DTLS)"). Runs on the agent's context. */
#ifndef SLUICE_DIRECT_CHANNEL_H
#define SLUICE_DIRECT_CHANNEL_H

#include "sluice-agent.h"
#include "sluice-coord-client.h"

G_BEGIN_DECLS

#define SLUICE_TYPE_DIRECT_CHANNEL (sluice_direct_channel_get_type())
G_DECLARE_FINAL_TYPE(SluiceDirectChannel, sluice_direct_channel, SLUICE, DIRECT_CHANNEL, GObject)

/* A DTLS channel on one component of agent's stream.
 *
 * Messages are DATAGRAMS: each is at most
 * sluice_direct_channel_get_max_payload() bytes (1163 with the 1200-byte
 * datagrams used), goes out as one UDP datagram, and may be lost or
 * arrive out of order. Nothing is retransmitted, ordered or flow
 * controlled; only the handshake is retried. A reliable, ordered stream
 * between the same two clients is the coordinator's own DIRECT or PEER
 * stream.
 *
 * client: TRUE on the ICE controlling side (the DTLS client, which starts
 * the handshake once the agent has selected a pair), FALSE on the
 * controlled side. cert_file/key_file: our identity (the one the
 * coordinator knows us by). peer_fingerprint: the peer certificate's
 * SHA-256 as "AB:CD:..." or 64 hex digits — what SluiceCoordIce's "ready"
 * or SluiceCoordStreamInfo.fingerprint gives; a peer showing any other
 * certificate fails the handshake ("error").
 *
 * The channel takes over the component's receive function
 * (sluice_agent_set_recv_func) for its lifetime: DTLS datagrams (first
 * byte 20..63, RFC 7983) go to DTLS, anything else is dropped. Create it
 * before or after ICE connects. Returns NULL with error:
 * SLUICE_GIO_ERROR_INVALID (bad fingerprint or arguments),
 * SLUICE_GIO_ERROR_FAILED (the identity files cannot be used).
 *
 * Signals, on the agent's context with no lock held:
 *   established ()            the peer is who the coordinator said
 *   message (GBytes *data)    one received message
 *   error (gchar *reason)     terminal: pin mismatch (either side),
 *                             handshake timeout, ICE failed, DTLS failure
 *   closed ()                 terminal: the peer closed the channel
 *
 * Combining with the coordinator: in SluiceCoordIce's "ready" handler
 * (gboolean controlling, gchar *peer_fingerprint), call
 * sluice_direct_channel_new_for_coord(client, agent, stream, 1,
 * controlling, peer_fingerprint, &error). */
SluiceDirectChannel *sluice_direct_channel_new(SluiceAgent *agent, guint stream, guint component,
                                               const gchar *cert_file, const gchar *key_file,
                                               gboolean client, const gchar *peer_fingerprint,
                                               GError **error);

/* The same with the identity client connected with (its "cert-file" and
 * "key-file", set once it has connected). SLUICE_GIO_ERROR_STATE when it
 * has none yet. */
SluiceDirectChannel *sluice_direct_channel_new_for_coord(SluiceCoordClient *client,
                                                         SluiceAgent *agent, guint stream,
                                                         guint component, gboolean controlling,
                                                         const gchar *peer_fingerprint,
                                                         GError **error);

/* Send one message (any thread). FALSE with error:
 * SLUICE_GIO_ERROR_INVALID (empty or above the max payload),
 * SLUICE_GIO_ERROR_STATE (not established yet, closed, failed),
 * SLUICE_GIO_ERROR_FULL (ciphertext piling up: the path is blocked).
 * TRUE means encrypted and handed to the agent, not delivered. */
gboolean sluice_direct_channel_send(SluiceDirectChannel *ch, const guint8 *data, gsize len,
                                    GError **error);
gboolean sluice_direct_channel_is_established(SluiceDirectChannel *ch);
/* Largest message send() takes. */
gsize sluice_direct_channel_get_max_payload(SluiceDirectChannel *ch);
/* Send a close_notify (when established) and stop; no signal follows.
 * Disposing the channel does the same. */
void sluice_direct_channel_close(SluiceDirectChannel *ch);

G_END_DECLS

#endif
