/* SPDX-License-Identifier: MIT */
/* SluiceClock: the abstract time source (sluice-clock.h). */
#include "sluice-clock.h"

G_DEFINE_ABSTRACT_TYPE(SluiceClock, sluice_clock, G_TYPE_OBJECT)

static void sluice_clock_class_init(SluiceClockClass *klass)
{
    (void)klass;
}

static void sluice_clock_init(SluiceClock *self)
{
    (void)self;
}

guint64 sluice_clock_now_us(SluiceClock *self)
{
    g_return_val_if_fail(SLUICE_IS_CLOCK(self), 0);
    return SLUICE_CLOCK_GET_CLASS(self)->now_us(self);
}

void sluice_clock_wake_at(SluiceClock *self, gpointer key, guint64 deadline_us,
                          SluiceClockWakeFunc wake, gpointer data, GDestroyNotify destroy)
{
    g_return_if_fail(SLUICE_IS_CLOCK(self));
    SLUICE_CLOCK_GET_CLASS(self)->wake_at(self, key, deadline_us, wake, data, destroy);
}
