/* SPDX-License-Identifier: MIT */
/* GstSluiceClock: drives the GLib driver's timers from a GstClock (the
 * pipeline clock, or a GstTestClock in tests). */
#ifndef GST_SLUICE_CLOCK_H
#define GST_SLUICE_CLOCK_H

#include <gst/gst.h>

#include "sluice-clock.h"

G_BEGIN_DECLS

#define GST_TYPE_SLUICE_CLOCK (gst_sluice_clock_get_type())
G_DECLARE_FINAL_TYPE(GstSluiceClock, gst_sluice_clock, GST, SLUICE_CLOCK, SluiceClock)

/* The core never sees time 0: now_us is the GstClock's time in
 * microseconds plus this offset (a GstTestClock starts at 0). */
#define GST_SLUICE_CLOCK_OFFSET_US G_GUINT64_CONSTANT(1000000)

SluiceClock *gst_sluice_clock_new(GstClock *clock);

G_END_DECLS
#endif
