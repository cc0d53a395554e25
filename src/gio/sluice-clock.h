/* SPDX-License-Identifier: MIT */
/* SluiceClock: the time source of the GLib driver. Without one the driver
 * uses g_get_monotonic_time() and GSource ready times; with one (a GstClock
 * through the plugin's adapter, a GstTestClock in tests) every timer of the
 * core follows that clock, so tests advance time by hand. */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

#include <glib-object.h>

G_BEGIN_DECLS

#define SLUICE_TYPE_CLOCK (sluice_clock_get_type())
G_DECLARE_DERIVABLE_TYPE(SluiceClock, sluice_clock, SLUICE, CLOCK, GObject)

/* Called once, from any thread, at or after the requested time. */
typedef void (*SluiceClockWakeFunc)(gpointer data);

struct _SluiceClockClass {
    GObjectClass parent_class;
    /* Current time in microseconds. Never 0 (the core treats 0 as unset):
     * implementations add an offset when their clock starts at zero. */
    guint64 (*now_us)(SluiceClock *self);
    /* Call wake(data) once at or after deadline_us, from any thread. One
     * pending wake-up per key: a new request replaces the old one, and
     * G_MAXUINT64 cancels it. `destroy(data)` runs exactly once per request,
     * after wake or when replaced or cancelled. */
    void (*wake_at)(SluiceClock *self, gpointer key, guint64 deadline_us, SluiceClockWakeFunc wake,
                    gpointer data, GDestroyNotify destroy);
    gpointer padding[8];
};

guint64 sluice_clock_now_us(SluiceClock *self);
void sluice_clock_wake_at(SluiceClock *self, gpointer key, guint64 deadline_us,
                          SluiceClockWakeFunc wake, gpointer data, GDestroyNotify destroy);

G_END_DECLS
#endif
