/* SPDX-License-Identifier: MIT */
/* The one timer of a driver object, the guard of its callbacks, and the
 * shared context thread. */
#include "gio-internal.h"

SluiceGuard *sluice_guard_new(gpointer obj)
{
    SluiceGuard *g = g_new0(SluiceGuard, 1);
    g->ref = 1;
    g_rec_mutex_init(&g->lock);
    g->obj = obj;
    return g;
}

SluiceGuard *sluice_guard_ref(SluiceGuard *g)
{
    g_atomic_int_inc(&g->ref);
    return g;
}

void sluice_guard_unref(gpointer p)
{
    SluiceGuard *g = p;
    if (g && g_atomic_int_dec_and_test(&g->ref)) {
        g_rec_mutex_clear(&g->lock);
        g_free(g);
    }
}

gpointer sluice_guard_enter(SluiceGuard *g)
{
    g_rec_mutex_lock(&g->lock);
    if (!g->obj) {
        g_rec_mutex_unlock(&g->lock);
        return NULL;
    }
    return g->obj;
}

void sluice_guard_leave(SluiceGuard *g)
{
    g_rec_mutex_unlock(&g->lock);
}

void sluice_guard_close(SluiceGuard *g)
{
    g_rec_mutex_lock(&g->lock);
    g->obj = NULL;
    g_rec_mutex_unlock(&g->lock);
}

/* ------------------------------------------------------------------------ */

/* The timer is its GSource; everything a dispatch needs lives in it, so a
 * dispatch racing with sluice_timer_free() on another thread touches only
 * the source (kept alive by the dispatch) and the guard. */
struct SluiceTimer {
    GSource base;
    SluiceClock *clock;
    SluiceGuard *guard;
    SluiceTimerFunc fn;
};

static gboolean timer_dispatch(GSource *s, GSourceFunc cb, gpointer ud)
{
    SluiceTimer *t = (SluiceTimer *)s;
    gpointer obj;
    (void)cb;
    (void)ud;
    g_source_set_ready_time(s, -1);
    if (!(obj = sluice_guard_enter(t->guard)))
        return G_SOURCE_CONTINUE;
    t->fn(obj, sluice_timer_now(t));
    sluice_guard_leave(t->guard);
    return G_SOURCE_CONTINUE;
}

static void timer_finalize(GSource *s)
{
    SluiceTimer *t = (SluiceTimer *)s;
    g_clear_object(&t->clock);
    sluice_guard_unref(t->guard);
}

static GSourceFuncs timer_funcs = {NULL, NULL, timer_dispatch, timer_finalize, NULL, NULL};

SluiceTimer *sluice_timer_new(GMainContext *ctx, SluiceClock *clock, SluiceGuard *guard,
                              SluiceTimerFunc fn)
{
    SluiceTimer *t = (SluiceTimer *)g_source_new(&timer_funcs, sizeof(SluiceTimer));
    t->clock = clock ? g_object_ref(clock) : NULL;
    t->guard = sluice_guard_ref(guard);
    t->fn = fn;
    g_source_set_name(&t->base, "sluice timer");
    g_source_set_ready_time(&t->base, -1);
    g_source_attach(&t->base, ctx);
    return t;
}

static void timer_wake(gpointer data)
{
    g_source_set_ready_time(data, 0);
}

void sluice_timer_set(SluiceTimer *t, guint64 deadline_us)
{
    if (!t->clock) {
        /* GSource ready times are g_get_monotonic_time() microseconds, the
         * same clock as sluice_timer_now(). */
        if (deadline_us == SLUICE_NEVER)
            g_source_set_ready_time(&t->base, -1);
        else
            g_source_set_ready_time(&t->base, deadline_us > G_MAXINT64 ? G_MAXINT64
                                                                        : (gint64)deadline_us);
        return;
    }
    if (deadline_us != SLUICE_NEVER && deadline_us <= sluice_clock_now_us(t->clock)) {
        g_source_set_ready_time(&t->base, 0);
        return;
    }
    /* Replaces the previous request; SLUICE_NEVER cancels it. */
    sluice_clock_wake_at(t->clock, t, deadline_us, timer_wake, g_source_ref(&t->base),
                         (GDestroyNotify)g_source_unref);
}

guint64 sluice_timer_now(SluiceTimer *t)
{
    return t->clock ? sluice_clock_now_us(t->clock) : (guint64)g_get_monotonic_time();
}

void sluice_timer_free(SluiceTimer *t)
{
    if (!t)
        return;
    if (t->clock)
        sluice_clock_wake_at(t->clock, t, SLUICE_NEVER, timer_wake, g_source_ref(&t->base),
                             (GDestroyNotify)g_source_unref);
    g_source_destroy(&t->base);
    g_source_unref(&t->base);
}

/* ------------------------------------------------------------------------ */

static gpointer shared_thread_main(gpointer data)
{
    GMainLoop *loop = g_main_loop_new(data, FALSE);
    g_main_context_push_thread_default(data);
    g_main_loop_run(loop); /* for the life of the process */
    g_main_context_pop_thread_default(data);
    g_main_loop_unref(loop);
    return NULL;
}

GMainContext *sluice_gio_shared_context(void)
{
    static GMainContext *shared;
    if (g_once_init_enter(&shared)) {
        GMainContext *ctx = g_main_context_new();
        GThread *th = g_thread_new("sluice-gio", shared_thread_main, g_main_context_ref(ctx));
        g_thread_unref(th);
        g_once_init_leave(&shared, ctx);
    }
    return g_main_context_ref(shared);
}
