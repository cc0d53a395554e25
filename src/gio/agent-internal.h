/* SPDX-License-Identifier: MIT */
/* What sluice-agent.c, sluice-agent-tos.c and agent-stream.c share (not
 * installed): the fields of a SluiceAgent and its connections to TURN
 * servers over TCP and TLS. */
#ifndef SLUICE_AGENT_INTERNAL_H
#define SLUICE_AGENT_INTERNAL_H

#include "gio-internal.h"
#include "sluice-agent.h"

G_BEGIN_DECLS

#define SLUICE_AGENT_RECV_BUF 65536

/* A connection to a TURN server (agent-stream.c), opaque to sluice-agent.c. */
typedef struct SluiceLink SluiceLink;

typedef struct {
    GSocket *socket;
    sluice_addr addr;
    guint stream, component;
    GSource *watch; /* NULL while claimed */
} Base;

typedef struct {
    guint stream, component;
    gboolean claimed;
    GCancellable *changed;
    sluice_ice_route route;
    gboolean route_ok;
    GSocket *route_socket;
    GSocketAddress *route_dest;
    SluiceLink *route_link; /* TCP/TLS routes */
    SluiceAgentRecvFunc recv_func;
    gpointer recv_data;
    GDestroyNotify recv_notify;
    /* Media read from TURN connections while claimed, for the claimer
     * (agent-stream.c): GBytes, bounded; media_fd is readable while any
     * waits. */
    GQueue media;
    gsize media_bytes;
    guint64 media_dropped;
    gint media_fd;
    /* The stream's TOS byte (sluice_agent_set_tos), the same in each of its
     * components; -1 until set (the system's default). */
    gint tos;
} Component;

struct _SluiceAgent {
    GObject parent;

    /* Construct-time configuration. */
    GMainContext *ctx;
    SluiceClock *clock;
    guint ta_ms;
    gboolean controlling, relay_only, ipv4, ipv6, include_loopback;
    gchar **interfaces, **exclude_interfaces;
    guint min_port, max_port;
    gchar *software, *ca_file;

    GMutex lock;
    sluice_ice_agent *core;
    SluiceGuard *guard;
    SluiceTimer *timer;
    GPtrArray *bases;      /* Base* */
    GPtrArray *components; /* Component* */
    GPtrArray *links;      /* SluiceLink*, open connections to TURN servers */
    gboolean links_full_warned;
    GArray *local_addrs;    /* sluice_addr given by the application */
    GArray *pending;        /* sluice_ice_event to emit on the context */
    GPtrArray *local_cands; /* LocalCand*, as signalled (bounded by the core) */
    gint route_gen;
    guint8 *rbuf; /* the context thread's receive buffer */
};

/* sluice-agent.c, lock held unless said otherwise. */
G_GNUC_INTERNAL guint64 sluice_agent_now(SluiceAgent *self); /* any time */
G_GNUC_INTERNAL Base *sluice_agent_find_base(SluiceAgent *self, const sluice_addr *a);
G_GNUC_INTERNAL Component *sluice_agent_find_component(SluiceAgent *self, guint stream,
                                                       guint component);
/* Drain transmits and events, refresh the routes, re-arm the timer. */
G_GNUC_INTERNAL void sluice_agent_pump_locked(SluiceAgent *self, guint64 now, gboolean arm);

/* sluice-agent-tos.c, lock held: a new socket of base b (b->socket, or a
 * connection to a TURN server from b's address) gets the TOS byte of b's
 * stream, when one was set. */
G_GNUC_INTERNAL void sluice_agent_apply_tos(SluiceAgent *self, const Base *b, GSocket *socket);

/* agent-stream.c: TURN over TCP and TLS (RFC 8656 §3.1; the contract is
 * "Streams to TURN servers" in sluice/ice.h). Lock held in all of these. */
#define SLUICE_AGENT_MAX_LINKS 16
/* A transmit whose transport is TCP or TLS: written on the connection
 * (base, server, transport), which the first one opens. */
G_GNUC_INTERNAL void sluice_link_transmit(SluiceAgent *self, guint64 now, const guint8 *buf,
                                          gsize len, const sluice_transmit *meta);
/* SLUICE_ICE_EVENT_CLOSE_STREAM: close without telling the core. */
G_GNUC_INTERNAL void sluice_link_close_stream(SluiceAgent *self, const sluice_ice_event *ev);
/* Dispose: close every connection. */
G_GNUC_INTERNAL void sluice_link_close_all(SluiceAgent *self);
G_GNUC_INTERNAL SluiceLink *sluice_link_find(SluiceAgent *self, const sluice_addr *base,
                                             const sluice_addr *server, sluice_transport transport);
G_GNUC_INTERNAL SluiceLink *sluice_link_ref(SluiceLink *l);
G_GNUC_INTERNAL void sluice_link_unref(SluiceLink *l);
G_GNUC_INTERNAL GSocket *sluice_link_socket(SluiceLink *l);
/* The local address of the base the connection belongs to. */
G_GNUC_INTERNAL const sluice_addr *sluice_link_base(SluiceLink *l);
/* May media go on this connection now (its backlog is small)? Writes
 * what waits first. Any thread, with or without the agent lock. */
G_GNUC_INTERNAL gboolean sluice_link_media_room(SluiceLink *l);
/* The claimer's media queue of a component. */
G_GNUC_INTERNAL void sluice_agent_media_claim(Component *c);
G_GNUC_INTERNAL void sluice_agent_media_clear(Component *c);

G_END_DECLS
#endif
