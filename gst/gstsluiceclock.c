/* SPDX-License-Identifier: MIT */
/* GstSluiceClock: SluiceClock over a GstClock, one single-shot async clock
 * id per pending wake-up. */
#include "gstsluiceclock.h"

struct _GstSluiceClock {
    SluiceClock parent;
    GstClock *clock;
    GMutex lock;
    GHashTable *pending; /* key -> GstClockID */
};

G_DEFINE_TYPE(GstSluiceClock, gst_sluice_clock, SLUICE_TYPE_CLOCK)

typedef struct {
    SluiceClockWakeFunc wake;
    gpointer data;
    GDestroyNotify destroy;
} WakeRequest;

static void request_free(gpointer p)
{
    WakeRequest *r = p;
    if (r->destroy)
        r->destroy(r->data);
    g_free(r);
}

static gboolean request_fire(GstClock *clock, GstClockTime t, GstClockID id, gpointer p)
{
    WakeRequest *r = p;
    (void)clock;
    (void)t;
    (void)id;
    r->wake(r->data);
    return TRUE;
}

static void cancel_id(gpointer id)
{
    gst_clock_id_unschedule(id);
    gst_clock_id_unref(id);
}

static guint64 now_us(SluiceClock *base)
{
    GstSluiceClock *self = GST_SLUICE_CLOCK(base);
    GstClockTime t = gst_clock_get_time(self->clock);
    return (GST_CLOCK_TIME_IS_VALID(t) ? t / 1000 : 0) + GST_SLUICE_CLOCK_OFFSET_US;
}

static void wake_at(SluiceClock *base, gpointer key, guint64 deadline_us, SluiceClockWakeFunc wake,
                    gpointer data, GDestroyNotify destroy)
{
    GstSluiceClock *self = GST_SLUICE_CLOCK(base);
    GstClockID id;
    WakeRequest *r;

    g_mutex_lock(&self->lock);
    g_hash_table_remove(self->pending, key); /* unschedules the old one */
    g_mutex_unlock(&self->lock);
    if (deadline_us == G_MAXUINT64) {
        if (destroy)
            destroy(data);
        return;
    }
    r = g_new0(WakeRequest, 1);
    r->wake = wake;
    r->data = data;
    r->destroy = destroy;
    id = gst_clock_new_single_shot_id(
        self->clock, deadline_us > GST_SLUICE_CLOCK_OFFSET_US
                         ? (deadline_us - GST_SLUICE_CLOCK_OFFSET_US) * 1000
                         : 0);
    if (gst_clock_id_wait_async(id, request_fire, r, request_free) != GST_CLOCK_OK) {
        /* Already past or the clock refused: wake now. */
        gst_clock_id_unref(id);
        wake(data);
        return;
    }
    g_mutex_lock(&self->lock);
    g_hash_table_replace(self->pending, key, id);
    g_mutex_unlock(&self->lock);
}

static void gst_sluice_clock_finalize(GObject *obj)
{
    GstSluiceClock *self = GST_SLUICE_CLOCK(obj);
    g_hash_table_destroy(self->pending);
    gst_object_unref(self->clock);
    g_mutex_clear(&self->lock);
    G_OBJECT_CLASS(gst_sluice_clock_parent_class)->finalize(obj);
}

static void gst_sluice_clock_class_init(GstSluiceClockClass *klass)
{
    SluiceClockClass *sc = SLUICE_CLOCK_CLASS(klass);
    G_OBJECT_CLASS(klass)->finalize = gst_sluice_clock_finalize;
    sc->now_us = now_us;
    sc->wake_at = wake_at;
}

static void gst_sluice_clock_init(GstSluiceClock *self)
{
    g_mutex_init(&self->lock);
    self->pending = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, cancel_id);
}

SluiceClock *gst_sluice_clock_new(GstClock *clock)
{
    GstSluiceClock *self;
    g_return_val_if_fail(GST_IS_CLOCK(clock), NULL);
    self = g_object_new(GST_TYPE_SLUICE_CLOCK, NULL);
    self->clock = gst_object_ref(clock);
    return SLUICE_CLOCK(self);
}
