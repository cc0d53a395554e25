/* SPDX-License-Identifier: MIT */
/* Internals shared by the files of src/gio (not installed). */
#ifndef SLUICE_GIO_INTERNAL_H
#define SLUICE_GIO_INTERNAL_H

#include <gio/gio.h>

#include "sluice-clock.h"
#include "sluice/sluice.h"

G_BEGIN_DECLS

/* A guard shared by a driver object and the callbacks of its sources: a
 * callback runs only while the object lives, and dispose waits for a
 * running callback (recursive, so a handler that drops the last reference
 * on the context thread does not deadlock). */
typedef struct {
    gint ref;
    GRecMutex lock;
    gpointer obj; /* NULL once disposed */
} SluiceGuard;

SluiceGuard *sluice_guard_new(gpointer obj);
SluiceGuard *sluice_guard_ref(SluiceGuard *g);
void sluice_guard_unref(gpointer g);
/* Lock and return the object, or NULL (unlocked) when it is gone. */
gpointer sluice_guard_enter(SluiceGuard *g);
void sluice_guard_leave(SluiceGuard *g);
/* From dispose: wait for running callbacks, then make new ones no-ops. */
void sluice_guard_close(SluiceGuard *g);

/* One timer per driver object: a GSource on the object's context whose
 * ready time is the core's next deadline (monotonic clock), or which a
 * SluiceClock wakes. fn runs on the context with the current time. */
typedef struct SluiceTimer SluiceTimer;
typedef void (*SluiceTimerFunc)(gpointer data, guint64 now_us);

/* fn(obj, now) runs on ctx while the guard's object lives. */
SluiceTimer *sluice_timer_new(GMainContext *ctx, SluiceClock *clock, SluiceGuard *guard,
                              SluiceTimerFunc fn);
/* Any thread. SLUICE_NEVER disarms; 0 fires at the next iteration. */
void sluice_timer_set(SluiceTimer *t, guint64 deadline_us);
guint64 sluice_timer_now(SluiceTimer *t);
void sluice_timer_free(SluiceTimer *t);

/* The shared context of the "sluice-gio" thread, started on first use and
 * kept for the life of the process: sessions that are not given a context
 * share it (no thread per session). Returns a new reference. */
GMainContext *sluice_gio_shared_context(void);

/* Conversions at the edge between sluice_addr and GIO. */
GSocketAddress *sluice_gio_addr_to_gsocket(const sluice_addr *a);
gboolean sluice_gio_addr_from_gsocket(sluice_addr *a, GSocketAddress *sa);
gboolean sluice_gio_addr_from_inet(sluice_addr *a, GInetAddress *ia, guint16 port);

/* A parsed stun:/turn:/turns: URI (RFC 7064, RFC 7065), with
 * "user:pass@" accepted before the host as webrtcbin and libnice users
 * write it. */
typedef struct {
    gboolean turn;             /* turn: or turns: */
    sluice_transport transport; /* udp, tcp (?transport=tcp), tls (turns:) */
    gchar *host;
    guint16 port;
    gchar *username, *password; /* from the URI, or NULL */
} SluiceGioUri;

gboolean sluice_gio_uri_parse(const gchar *uri, SluiceGioUri *out, GError **error);
void sluice_gio_uri_clear(SluiceGioUri *u);
/* Resolve host (an IP literal or a name, blocking) to addresses of the URI's
 * port: IPv4 and IPv6 as the resolver gives them. */
gboolean sluice_gio_uri_resolve(const SluiceGioUri *u, sluice_addr *out, gsize cap, gsize *n,
                                GError **error);

G_END_DECLS
#endif
