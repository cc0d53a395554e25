/* SPDX-License-Identifier: MIT */
/* libsluice-gio: the GLib/GIO driver of the sluice core (design.md). */
#ifndef SLUICE_GIO_H
#define SLUICE_GIO_H

#include <glib-object.h>

G_BEGIN_DECLS

#define SLUICE_GIO_ERROR (sluice_gio_error_quark())
GQuark sluice_gio_error_quark(void);

/* GError codes of the driver. */
typedef enum {
    SLUICE_GIO_ERROR_INVALID,     /* a malformed argument (URI, candidate line, credentials) */
    SLUICE_GIO_ERROR_UNSUPPORTED, /* valid but not supported (e.g. an mDNS candidate) */
    SLUICE_GIO_ERROR_RESOLVE,     /* a host name did not resolve */
    SLUICE_GIO_ERROR_SOCKET,      /* a socket could not be created or bound */
    SLUICE_GIO_ERROR_FULL,        /* a table is at its configured maximum */
    SLUICE_GIO_ERROR_STATE,       /* not possible in the current state */
    SLUICE_GIO_ERROR_FAILED,      /* anything else (the message says what) */
} SluiceGioError;

G_END_DECLS

#include "sluice-clock.h"
#include "sluice-agent.h"
#include "sluice-turn-allocation.h"
#include "sluice-coord-client.h"
#include "sluice-coord-ice.h"
#include "sluice-direct-channel.h"

#endif
