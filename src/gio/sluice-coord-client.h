/* SPDX-License-Identifier: MIT */
/* SluiceCoordClient: a sluice-coord client (src/sluice/coord.h) on a
 * GMainContext — one TCP connection, TLS inside the core, message streams,
 * signals emitted on the context with no lock held. Methods may be called
 * from any thread. docs/coordinator.md. */
#ifndef SLUICE_COORD_CLIENT_GIO_H
#define SLUICE_COORD_CLIENT_GIO_H

#include <gio/gio.h>

#include "sluice/coord.h"

G_BEGIN_DECLS

#define SLUICE_TYPE_COORD_CLIENT (sluice_coord_client_gio_get_type())
G_DECLARE_FINAL_TYPE(SluiceCoordClient, sluice_coord_client_gio, SLUICE, COORD_CLIENT, GObject)

/* What "stream-incoming" and "stream-accepted" carry (valid during the
 * emission). fingerprint: the peer certificate's SHA-256 as
 * "AB:CD:..." (DIRECT streams), else NULL. TURN credentials the
 * coordinator handed out with a DIRECT stream: turn_uris NULL-terminated
 * (empty when none). */
typedef struct {
    guint stream;
    sluice_coord_kind kind;
    const gchar *name;  /* the peer client, or the channel; "" for the coordinator */
    const gchar *label; /* "" when none */
    const gchar *fingerprint;
    const gchar *turn_username, *turn_password;
    const gchar *const *turn_uris;
} SluiceCoordStreamInfo;

/* A client called name on ctx (NULL: the shared "sluice-gio" context).
 * Properties: "name" (construct), "cert-file"/"key-file" (default: an
 * identity generated on first use and kept in
 * $XDG_STATE_HOME/sluice/NAME.crt|.key, see sluice_coord_ensure_identity),
 * "ca-file" (verify the coordinator against it; default the system store),
 * "pin" (the coordinator's SHA-256 fingerprint, "AB:CD:..." — replaces CA
 * and name checks), "server-name" (name checked in the coordinator's
 * certificate; default the host given to connect), "non-blocking". */
SluiceCoordClient *sluice_coord_client_gio_new(GMainContext *ctx, const gchar *name);

/* Connect to "HOST:PORT" ("[v6]:PORT"; the port defaults to 7878).
 * Asynchronous: "connected" or "refused" follows on the context. Returns
 * FALSE with error for a bad address, unusable identity files or a second
 * call. */
gboolean sluice_coord_client_gio_connect(SluiceCoordClient *c, const gchar *address,
                                         GError **error);
/* Graceful close ("closed" follows). */
void sluice_coord_client_gio_close(SluiceCoordClient *c, const gchar *reason);
gboolean sluice_coord_client_gio_is_connected(SluiceCoordClient *c);

/* Streams (see src/sluice/coord.h for kinds, flags and codes). open
 * returns the stream id or 0 with error. */
guint sluice_coord_client_gio_open_stream(SluiceCoordClient *c, sluice_coord_kind kind,
                                          const gchar *name, const gchar *label, guint flags,
                                          guint64 wait_timeout_us, GError **error);
gboolean sluice_coord_client_gio_accept_stream(SluiceCoordClient *c, guint stream);
gboolean sluice_coord_client_gio_refuse_stream(SluiceCoordClient *c, guint stream, gint code,
                                               const gchar *reason);
/* Send one message. FALSE with SLUICE_GIO_ERROR_FULL when the stream has no
 * credit ("writable" follows), other codes for a bad stream or size. */
gboolean sluice_coord_client_gio_send(SluiceCoordClient *c, guint stream, const guint8 *data,
                                      gsize len, GError **error);
gboolean sluice_coord_client_gio_close_stream(SluiceCoordClient *c, guint stream);

/* Signals (on the context, no lock held):
 *   connected (guint max_message)
 *   refused (gint code, gchar *reason)        terminal, before connected
 *   closed (gint code, gchar *reason)         terminal, after connected
 *   stream-incoming (gpointer SluiceCoordStreamInfo*)   accept or refuse it
 *   stream-accepted (gpointer SluiceCoordStreamInfo*)
 *   stream-refused (guint stream, gint code, gchar *reason)
 *   message (guint stream, gchar *sender, GBytes *data)
 *   lag (guint stream, guint64 count)
 *   stream-finished (guint stream)
 *   stream-closed (guint stream, gint code, gchar *reason)
 *   writable (guint stream) */

G_END_DECLS

#endif
