/* SPDX-License-Identifier: MIT */
/* SluiceAgent: the sluice ICE agent on GLib. It enumerates local addresses,
 * owns one GSocket per base, runs the sans-IO agent on a GMainContext with
 * exactly one timer source, and emits signals on that context with no lock
 * held. The data path (icesrc/icesink) bypasses the context: see the end. */
#ifndef SLUICE_AGENT_H
#define SLUICE_AGENT_H

#include <gio/gio.h>

#include "sluice-clock.h"
#include "sluice/ice.h"

G_BEGIN_DECLS

#define SLUICE_TYPE_AGENT (sluice_agent_get_type())
G_DECLARE_FINAL_TYPE(SluiceAgent, sluice_agent, SLUICE, AGENT, GObject)

/* The states of a stream (sluice_ice_state), as a GEnum for properties and
 * bindings. */
#define SLUICE_TYPE_AGENT_STATE (sluice_agent_state_get_type())
GType sluice_agent_state_get_type(void);

/* A new agent on ctx (NULL: the shared "sluice-gio" thread's context;
 * several agents may share one context). Properties (see gst-inspect or
 * docs/elements.md): "main-context" and "clock" (construct-only),
 * "controlling", "ta" (ms), "relay-only", "interfaces",
 * "exclude-interfaces", "ipv4", "ipv6", "include-loopback", "min-port",
 * "max-port", "software", "ca-file" (turns: servers). */
SluiceAgent *sluice_agent_new(GMainContext *ctx);
/* Stop now, whoever still holds a reference: the timer, every socket and
 * TURN connection are closed before this returns (waiting for a callback
 * running on the context). Signals and callbacks stop; sends fail. What
 * dispose does, for owners that need the ports back at once (a pipeline
 * going to NULL and straight back to PLAYING on fixed ports). Idempotent. */
void sluice_agent_close(SluiceAgent *agent);

/* A stream of n_components (1..2 by default). Returns its id (>= 1) or 0
 * with error set. */
guint sluice_agent_add_stream(SluiceAgent *agent, guint n_components, GError **error);
/* Use this local IP address (a literal) instead of enumerating interfaces.
 * May be called several times, before gathering. */
gboolean sluice_agent_add_local_address(SluiceAgent *agent, const gchar *ip, GError **error);
/* A server from a URI: "stun:HOST[:PORT]", "turn:HOST[:PORT][?transport=udp|tcp]",
 * "turns:HOST[:PORT]" (RFC 7064, RFC 7065); "user:pass@" in the URI is
 * accepted when username/password are NULL. Resolves names (blocking).
 * TURN over TCP and TLS: the agent connects from each local address to the
 * server (non-blocking, on its context; at most 16 connections per agent)
 * and runs TLS itself. A turns: server's certificate is verified against
 * "ca-file" as set when the server is added (or the system store), for
 * the URI's host as written. */
gboolean sluice_agent_add_server(SluiceAgent *agent, const gchar *uri, const gchar *username,
                                 const gchar *password, GError **error);
/* Bind the stream's sockets (one per local address and component) and
 * start gathering. Candidates arrive through "new-candidate", then
 * "gathering-done". */
gboolean sluice_agent_gather(SluiceAgent *agent, guint stream, GError **error);
/* The IP TOS / traffic class byte (DSCP and ECN, RFC 2474; 0..255) of a
 * stream's sockets, as webrtcbin's set_tos asks: IP_TOS (IPv4) or
 * IPV6_TCLASS (IPv6) on its UDP sockets (one per base) and on its TCP/TLS
 * connections to TURN servers. The agent remembers it for the stream:
 * sockets that sluice_agent_gather() binds later and connections opened
 * later get it too, so it may be set before gathering. Returns the number
 * of sockets set now (0 before gathering), or -1 with error: no such stream
 * (SLUICE_GIO_ERROR_STATE), or the first socket that refused it (the
 * others are still set). */
gint sluice_agent_set_tos(SluiceAgent *agent, guint stream, guint tos, GError **error);

/* Local credentials (newly allocated strings). */
gboolean sluice_agent_get_local_credentials(SluiceAgent *agent, guint stream, gchar **ufrag,
                                            gchar **pwd);
gboolean sluice_agent_set_local_credentials(SluiceAgent *agent, guint stream, const gchar *ufrag,
                                            const gchar *pwd, GError **error);
gboolean sluice_agent_set_remote_credentials(SluiceAgent *agent, guint stream,
                                             const gchar *ufrag, const gchar *pwd,
                                             GError **error);
/* A remote candidate as an SDP attribute ("candidate:..." with or without
 * "a="), trickled or from the SDP. mDNS ".local" and TCP candidates are
 * refused with SLUICE_GIO_ERROR_UNSUPPORTED. */
gboolean sluice_agent_add_remote_candidate(SluiceAgent *agent, guint stream, const gchar *sdp,
                                           GError **error);
/* Several candidates separated by newlines, ';' or ',' (gst-launch). */
gboolean sluice_agent_add_remote_candidates(SluiceAgent *agent, guint stream,
                                            const gchar *list, GError **error);
gboolean sluice_agent_end_of_candidates(SluiceAgent *agent, guint stream);
/* ICE restart (RFC 8445 §9): new local credentials; give new remote ones. */
gboolean sluice_agent_restart(SluiceAgent *agent, guint stream, GError **error);

/* Local candidates gathered so far, as SDP attributes (NULL-terminated,
 * g_strfreev it). */
gchar **sluice_agent_get_local_candidates(SluiceAgent *agent, guint stream);
sluice_ice_state sluice_agent_get_state(SluiceAgent *agent, guint stream);
/* The selected pair of a component as SDP candidate lines. */
gboolean sluice_agent_get_selected_pair(SluiceAgent *agent, guint stream, guint component,
                                        gchar **local, gchar **remote);
/* Per-pair statistics of a stream (copied out of the core under the lock):
 * fills at most cap, returns the number of pairs. */
gint sluice_agent_get_pair_stats(SluiceAgent *agent, guint stream, sluice_ice_pair_stats *out,
                                 gsize cap);

/* ------------------------------------------------------------------------ */
/* Data for GLib applications (icesrc/icesink use the data path below).
 * Received media is handed to func on the agent's context, with no lock
 * held; data is valid during the call. */
typedef void (*SluiceAgentRecvFunc)(SluiceAgent *agent, guint stream, guint component,
                                    const guint8 *data, gsize len, gpointer user_data);
void sluice_agent_set_recv_func(SluiceAgent *agent, guint stream, guint component,
                                SluiceAgentRecvFunc func, gpointer user_data,
                                GDestroyNotify notify);
/* Send one datagram on the component's selected pair (any thread). Returns
 * the bytes sent, or -1 with error: SLUICE_GIO_ERROR_STATE when there is no
 * selected pair or consent is lost (RFC 7675 §5.1); G_IO_ERROR_WOULD_BLOCK
 * when the route goes over a TCP/TLS connection to a TURN server whose
 * backlog is full (the datagram was not sent: wait, or drop it). */
gssize sluice_agent_send(SluiceAgent *agent, guint stream, guint component, const guint8 *data,
                         gsize len, GError **error);

/* ------------------------------------------------------------------------ */
/* The data path, for icesink/icesrc: no main loop, no lock on the hot path. */

/* A snapshot of a component's route. Owns its references. When
 * route.transport is TCP or TLS (relayed through a TURN server over TCP or
 * TLS), socket is the connection to the server, which the agent shares:
 * write it only through sluice_agent_route_write() (TCP with framing
 * CHANNEL) or sluice_agent_send_framed() (framing SEND, always over TLS);
 * it is good for waiting for G_IO_OUT. */
typedef struct {
    GSocket *socket;       /* the base to send from, or the TCP connection */
    GSocketAddress *dest;  /* the remote candidate, or the TURN server */
    sluice_ice_route route;
    guint generation;      /* sluice_agent_route_generation() when taken */
    gpointer link;         /* TCP/TLS: the connection (opaque, a reference) */
} SluiceAgentRoute;

/* Bumped (atomically) whenever any route changes: a sender compares it
 * with its snapshot's generation before each send. */
guint sluice_agent_route_generation(SluiceAgent *agent);
/* TRUE with a snapshot when the component may send (selected pair, consent
 * held); FALSE otherwise (out is cleared but still carries generation). */
gboolean sluice_agent_get_route(SluiceAgent *agent, guint stream, guint component,
                                SluiceAgentRoute *out);
void sluice_agent_route_clear(SluiceAgentRoute *r);
/* Media sent directly on a route, for statistics and keepalives. */
void sluice_agent_count_sent(SluiceAgent *agent, guint stream, guint component, guint64 packets,
                             guint64 bytes);
/* Wrap one datagram through the core (routes with SLUICE_ICE_FRAMING_SEND)
 * and send it. Same result as sluice_agent_send(). */
gssize sluice_agent_send_framed(SluiceAgent *agent, guint stream, guint component,
                                const guint8 *data, gsize len, GError **error);
/* Write one datagram on a TCP route (route.transport TCP, framing CHANNEL):
 * the vectors hold the ChannelData header, the payload and the padding to
 * 4 bytes (RFC 8656 §12.5). It goes on the connection whole, after
 * anything the agent queued there, from any thread, without the agent
 * lock (the connection has its own). Returns TRUE when written or queued;
 * FALSE with G_IO_ERROR_WOULD_BLOCK when the connection's backlog is full
 * (nothing written: wait for G_IO_OUT on r->socket and try again), or
 * G_IO_ERROR_CONNECTION_CLOSED once the connection failed or closed (the
 * route changes with it). */
gboolean sluice_agent_route_write(SluiceAgentRoute *r, const GOutputVector *vectors,
                                  guint n_vectors, GError **error);

/* Take over reading a component's sockets: the agent stops watching them on
 * its context and the caller reads them (in batches, from its streaming
 * thread). Returns the sockets (g_ptr_array_unref it) and a cancellable the
 * agent cancels when the set of sockets changes (claim again then). NULL
 * when the component does not exist or is already claimed. */
GPtrArray *sluice_agent_claim_component(SluiceAgent *agent, guint stream, guint component,
                                        GCancellable **changed);
void sluice_agent_release_component(SluiceAgent *agent, guint stream, guint component);
/* Media relayed over TCP/TLS connections to TURN servers is read by the
 * agent on its context (the stream needs the core: framing, TLS). For a
 * claimed component it waits in a queue (256 datagrams or 1 MiB; beyond,
 * new media is dropped) for the claimer: poll the descriptor this returns
 * (readable while media waits; valid while the agent lives; -1 when the
 * component is not claimed) and take the datagrams with
 * sluice_agent_pop_media(). Released components get it through the
 * receive function instead. */
gint sluice_agent_get_media_fd(SluiceAgent *agent, guint stream, guint component);
/* The oldest waiting datagram, copied into buf. Returns its length, 0 when
 * none waits, -1 when it was longer than cap (dropped). Any thread. */
gssize sluice_agent_pop_media(SluiceAgent *agent, guint stream, guint component, guint8 *buf,
                              gsize cap);
/* A datagram the claimer read that is not plain media from the selected
 * remote (STUN, TURN, or media from another candidate). Returns 1 with
 * *media pointing into data when it is media to deliver, 0 when consumed
 * or dropped. */
gint sluice_agent_receive(SluiceAgent *agent, GSocket *socket, GSocketAddress *from,
                          guint8 *data, gsize len, sluice_ice_media *media);
/* The same with a native source address (from recvmmsg). */
gint sluice_agent_receive_native(SluiceAgent *agent, GSocket *socket, const sluice_addr *from,
                                 guint8 *data, gsize len, sluice_ice_media *media);

G_END_DECLS
#endif
