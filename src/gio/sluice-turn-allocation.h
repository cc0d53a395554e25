/* SPDX-License-Identifier: MIT */
/* SluiceTurnAllocation: the sluice TURN client on GLib. One allocation on
 * one TURN server over UDP, TCP or TLS (TLS runs inside the core; the
 * driver only moves TCP bytes). It owns its socket, runs the sans-IO client
 * on a GMainContext with exactly one timer source, and emits its signals on
 * that context with no lock held. The turnclient element is built on it. */
#ifndef SLUICE_TURN_ALLOCATION_H
#define SLUICE_TURN_ALLOCATION_H

#include <gio/gio.h>

#include "sluice-clock.h"
#include "sluice/turn_client.h"

G_BEGIN_DECLS

#define SLUICE_TYPE_TURN_ALLOCATION (sluice_turn_allocation_get_type())
G_DECLARE_FINAL_TYPE(SluiceTurnAllocation, sluice_turn_allocation, SLUICE, TURN_ALLOCATION, GObject)

/* The "transport" property: how to reach the server. AUTO lets the URI
 * decide (turn: UDP, turn:...?transport=tcp TCP, turns: TLS); any other
 * value must agree with a URI that names a transport. */
typedef enum {
    SLUICE_TURN_ALLOCATION_TRANSPORT_AUTO,
    SLUICE_TURN_ALLOCATION_TRANSPORT_UDP,
    SLUICE_TURN_ALLOCATION_TRANSPORT_TCP,
    SLUICE_TURN_ALLOCATION_TRANSPORT_TLS,
} SluiceTurnAllocationTransport;
#define SLUICE_TYPE_TURN_ALLOCATION_TRANSPORT (sluice_turn_allocation_transport_get_type())
GType sluice_turn_allocation_transport_get_type(void);

/* The "family" property: the family of the relayed address (RFC 6156;
 * independent of the family used to reach the server). */
typedef enum {
    SLUICE_TURN_ALLOCATION_FAMILY_IPV4 = 1, /* the default: nothing sent */
    SLUICE_TURN_ALLOCATION_FAMILY_IPV6 = 2, /* REQUESTED-ADDRESS-FAMILY IPv6 */
    SLUICE_TURN_ALLOCATION_FAMILY_DUAL = 3, /* plus ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §7.1) */
} SluiceTurnAllocationFamily;
#define SLUICE_TYPE_TURN_ALLOCATION_FAMILY (sluice_turn_allocation_family_get_type())
GType sluice_turn_allocation_family_get_type(void);

/* The "state" property. FAILED covers both a refused allocation ("failed")
 * and one that was lost afterwards ("lost"). */
typedef enum {
    SLUICE_TURN_ALLOCATION_STATE_NEW,
    SLUICE_TURN_ALLOCATION_STATE_ALLOCATING, /* resolving, connecting, Allocate */
    SLUICE_TURN_ALLOCATION_STATE_ALLOCATED,
    SLUICE_TURN_ALLOCATION_STATE_CLOSING, /* the delete is on its way */
    SLUICE_TURN_ALLOCATION_STATE_CLOSED,
    SLUICE_TURN_ALLOCATION_STATE_FAILED,
} SluiceTurnAllocationState;
#define SLUICE_TYPE_TURN_ALLOCATION_STATE (sluice_turn_allocation_state_get_type())
GType sluice_turn_allocation_state_get_type(void);

/* GError codes of the "failed", "lost" and "peer-failed" signals, in the
 * SLUICE_TURN_ALLOCATION_ERROR domain. The message says what happened in
 * words a user can act on; the STUN error code travels beside it. */
#define SLUICE_TURN_ALLOCATION_ERROR (sluice_turn_allocation_error_quark())
GQuark sluice_turn_allocation_error_quark(void);
typedef enum {
    SLUICE_TURN_ALLOCATION_ERROR_AUTH, /* 401 after the credentials, 441: wrong user/password */
    SLUICE_TURN_ALLOCATION_ERROR_FORBIDDEN,   /* 403: refused by the server's policy */
    SLUICE_TURN_ALLOCATION_ERROR_QUOTA,       /* 486 allocation quota, 508 no capacity */
    SLUICE_TURN_ALLOCATION_ERROR_UNSUPPORTED, /* 440 address family, 442 transport */
    SLUICE_TURN_ALLOCATION_ERROR_TIMEOUT,     /* no answer from the server */
    SLUICE_TURN_ALLOCATION_ERROR_TLS,         /* handshake or certificate verification */
    SLUICE_TURN_ALLOCATION_ERROR_NETWORK,     /* resolve, connect, socket, connection closed */
    SLUICE_TURN_ALLOCATION_ERROR_SERVER,      /* any other STUN error response (437, 500...) */
    SLUICE_TURN_ALLOCATION_ERROR_FAILED,      /* anything else (the message says what) */
} SluiceTurnAllocationError;

/* Signals, all emitted on the object's context with no lock held (a
 * handler may call any function here, or drop the last reference):
 *   "allocated"          (GSocketAddress *relayed, GSocketAddress *mapped, guint lifetime_s)
 *   "failed"             (guint stun_code, GError *error)   the allocation was not made
 *   "lost"               (guint stun_code, GError *error)   it existed and is gone
 *   "refreshed"          (guint lifetime_s)
 *   "permission-created" (GSocketAddress *peer)
 *   "channel-bound"      (GSocketAddress *peer, guint channel)
 *   "peer-failed"        (GSocketAddress *peer, guint stun_code, GError *error)
 *   "redirected"         (GSocketAddress *server)           300 ALTERNATE-SERVER followed
 *   "closed"             ()                                 after close()
 * stun_code is the server's STUN error code, 0 for a local failure; error
 * is in SLUICE_TURN_ALLOCATION_ERROR. Peer data is not a signal: it goes to
 * the receive function (below), as a view, without a copy or an object per
 * datagram. */

/* A new allocation object for uri ("turn:HOST[:PORT][?transport=udp|tcp]",
 * "turns:HOST[:PORT]", RFC 7065; "user:pass@" before the host is accepted
 * when username and password are NULL). Nothing happens until
 * sluice_turn_allocation_start(). Other properties: "transport", "family",
 * "lifetime" (s), "ca-file", "tls-verify", "server-name", "software"; and
 * construct-only "main-context" (NULL: the shared "sluice-gio" thread) and
 * "clock" (a SluiceClock; NULL: the monotonic clock). Read-only: "state",
 * "relayed-address", "mapped-address" (GSocketAddress). */
SluiceTurnAllocation *sluice_turn_allocation_new(const gchar *uri, const gchar *username,
                                                 const gchar *password);

/* Check the settings and start: the URI is parsed and checked here (errors
 * in SLUICE_GIO_ERROR: INVALID for a bad URI, missing credentials or an
 * unreadable ca-file; STATE when already started). Resolving a host name,
 * connecting (TCP/TLS: each address in turn) and the Allocate exchange run
 * on the context and end in "allocated" or "failed". Any thread. */
gboolean sluice_turn_allocation_start(SluiceTurnAllocation *self, GError **error);

/* Delete the allocation (Refresh with LIFETIME 0, RFC 8656 §7.2); the
 * request leaves before this returns. "closed" follows on the context when
 * the server confirmed or after 2 s at most; the object keeps itself alive
 * until then (as long as its context runs), so the caller may drop its
 * reference at once. Any thread;
 * harmless when already closed or failed. Dropping the last reference
 * without close() also sends the delete, once, without waiting. */
void sluice_turn_allocation_close(SluiceTurnAllocation *self);

/* Bind a channel to peer (RFC 8656 §12; also installs the permission) and
 * keep it bound; "channel-bound" or "peer-failed" follow. Until the channel
 * is bound, sluice_turn_allocation_send() sends Send indications. Needs an
 * allocation: SLUICE_GIO_ERROR_STATE before "allocated", INVALID when no
 * relayed address has peer's family, FULL at the channel maximum. Any
 * thread. Returns the channel number (0x4000..0x4FFF) or 0 with error. */
guint sluice_turn_allocation_bind_channel(SluiceTurnAllocation *self, GSocketAddress *peer,
                                          GError **error);
/* A permission only (RFC 8656 §9): data goes as Send/Data indications.
 * "permission-created" or "peer-failed" follow. Errors as above. */
gboolean sluice_turn_allocation_create_permission(SluiceTurnAllocation *self, GSocketAddress *peer,
                                                  GError **error);

/* Send one datagram to peer through the relay, from any thread, without
 * blocking: ChannelData (framed in place, the payload is not copied over
 * UDP) once a channel is bound, else a Send indication; over TLS,
 * encrypted. peer is a native address (sluice_addr_from_sockaddr, or
 * sluice_turn_allocation_peer_from_gsocket once). Returns TRUE when handed
 * to the socket; FALSE with error: SLUICE_GIO_ERROR_STATE (not allocated),
 * INVALID (no permission or channel for peer, len > 65535), FULL (the
 * socket or the TCP backlog is full: the datagram is dropped and counted),
 * SOCKET (a send error). error may be NULL on the data path. */
gboolean sluice_turn_allocation_send(SluiceTurnAllocation *self, const sluice_addr *peer,
                                     const guint8 *data, gsize len, GError **error);
/* A GSocketAddress as the native address sluice_turn_allocation_send()
 * takes. FALSE when it is not an IPv4/IPv6 socket address. */
gboolean sluice_turn_allocation_peer_from_gsocket(sluice_addr *out, GSocketAddress *peer);

/* Data from peers, handed to func on the context with no lock held; data
 * is valid during the call only. Set it before start(). Datagrams that
 * arrive with no function set are dropped (counted in rx_dropped). */
typedef void (*SluiceTurnAllocationRecvFunc)(SluiceTurnAllocation *self, const sluice_addr *peer,
                                             const guint8 *data, gsize len, gpointer user_data);
void sluice_turn_allocation_set_recv_func(SluiceTurnAllocation *self,
                                          SluiceTurnAllocationRecvFunc func, gpointer user_data,
                                          GDestroyNotify notify);

SluiceTurnAllocationState sluice_turn_allocation_get_state(SluiceTurnAllocation *self);
/* The relayed address of index 0 (the requested family; IPv4 for dual) or
 * 1 (IPv6 of a dual allocation), or NULL. A new reference. */
GSocketAddress *sluice_turn_allocation_get_relayed_address(SluiceTurnAllocation *self, guint index);
/* Our address as the server saw it (XOR-MAPPED-ADDRESS), or NULL. */
GSocketAddress *sluice_turn_allocation_get_mapped_address(SluiceTurnAllocation *self);
/* The transport in use once started (the "transport" property may say
 * AUTO); AUTO before start(). */
SluiceTurnAllocationTransport sluice_turn_allocation_get_transport(SluiceTurnAllocation *self);
/* The current server (after redirects), or NULL before it was resolved. */
GSocketAddress *sluice_turn_allocation_get_server_address(SluiceTurnAllocation *self);

typedef struct {
    guint64 tx_packets, tx_bytes; /* peer datagrams sent (payload bytes) */
    guint64 tx_dropped;           /* send() refused: socket or TCP backlog full */
    guint64 rx_packets, rx_bytes; /* peer datagrams received */
    guint64 rx_dropped;           /* received with no recv func, or dropped by the core */
    guint32 refreshes;            /* successful refreshes of the allocation */
} SluiceTurnAllocationStats;
void sluice_turn_allocation_get_stats(SluiceTurnAllocation *self, SluiceTurnAllocationStats *st);

G_END_DECLS
#endif
