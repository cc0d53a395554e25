/* SPDX-License-Identifier: MIT */
/* The elements' data path against libnice's, in one run and one process
 * over loopback: "benchsrc ! icesink" -> "icesrc ! fakesink" and
 * "benchsrc ! nicesink" -> "nicesrc ! fakesink", each run on two fresh
 * agents connected on 127.0.0.1 (one stream, one component), and
 * "benchsrc ! fakesink" alone as the baseline (the harness's own cost).
 * benchsrc pushes 1,200-byte RTP-like buffers (first byte 0x80: icesrc's
 * plain-media fast path) from a preallocated pool:
 *
 *   flood       as fast as the sink takes them (loss when the receiver
 *               falls behind);
 *   window      as fast as they go with at most 64 in flight, so no socket
 *               overruns and CPU per packet compares like with like;
 *   paced       20 Mbit/s, one buffer every 480 us;
 *   paced-5ms   20 Mbit/s, the buffers due pushed every 5 ms;
 *   paced-list  the same, the buffers due as one buffer list.
 *
 * Reported per run: packets/s delivered, loss, process CPU (user + sys,
 * getrusage) per delivered packet, split into the sender's streaming thread
 * (CLOCK_THREAD_CPUTIME_ID) and the rest, voluntary context switches per
 * packet, and malloc/calloc/realloc/memalign calls per packet in steady
 * state, counted per thread by the allocator wrappers below (the benchmark
 * re-executes itself with G_SLICE=always-malloc so GSlice's allocations
 * reach them). Then sluice/libnice ratios from the best round of each,
 * and the kernel's own floor: the same datagrams through raw loopback
 * sockets in one thread, with sendmmsg/recvmmsg and with UDP GSO/GRO.
 *
 *   bench_elements [--rounds N] [--paced-rounds N] [--packets N]
 *                  [--seconds S] [--only sluice|libnice|baseline]
 *                  [--workload NAME]
 *
 * Defaults: 3 rounds of 100,000 packets (at most 6 s each) for flood and
 * window, 2 rounds of 2 s for each paced workload, alternating sluice and
 * libnice; about 45 s in all. Timings are reported, never asserted; the
 * exit status is 1 only when agents fail to connect or a pipeline fails. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>
#include <nice/agent.h>

#include "sluice-gio.h"

#define PACKET_SIZE 1200
#define RTP_BITRATE 20000000ull /* (b): 20 Mbit/s of 1,200-byte packets */
#define FLOOD_PACKETS 100000ull
#define FLOOD_LIMIT_S 6
#define MAX_ROUNDS 10
#define NS 1000000000ull
#define CONNECT_LIMIT_US (5 * G_USEC_PER_SEC)
#define DRAIN_IDLE_US (200 * 1000) /* the receiver got nothing for this long: done */

/* ---- allocation counter ------------------------------------------------ */
/* Every malloc/calloc/realloc/memalign of the process, per thread (a slot
 * per thread, on its own cache line), so the sender's streaming thread can
 * be told apart from the receiver's and the agents' threads. */

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

#define MAX_SLOTS 64
static struct {
    _Atomic uint64_t n;
    char pad[56];
} slots[MAX_SLOTS];
static atomic_int n_slots;
static _Thread_local int my_slot = -1;

static int thread_slot(void)
{
    if (my_slot < 0) {
        int s = atomic_fetch_add(&n_slots, 1);
        my_slot = s < MAX_SLOTS ? s : MAX_SLOTS - 1;
    }
    return my_slot;
}

static inline void count_alloc(void)
{
    atomic_fetch_add_explicit(&slots[thread_slot()].n, 1, memory_order_relaxed);
}

static uint64_t allocs_total(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        sum += atomic_load_explicit(&slots[i].n, memory_order_relaxed);
    return sum;
}

static uint64_t allocs_of(int slot)
{
    return slot < 0 ? 0 : atomic_load_explicit(&slots[slot].n, memory_order_relaxed);
}

void *malloc(size_t n)
{
    count_alloc();
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    count_alloc();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    count_alloc();
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}

void *memalign(size_t align, size_t n)
{
    count_alloc();
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    count_alloc();
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    void *p;
    count_alloc();
    p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

/* ---- clocks -------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* The process's user and system CPU time, and how many times its threads
 * went to sleep (voluntary context switches: each one a wake-up later). */
static void process_cpu_ns(uint64_t *user, uint64_t *sys, uint64_t *sleeps)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (uint64_t)ru.ru_utime.tv_sec * NS + (uint64_t)ru.ru_utime.tv_usec * 1000u;
    *sys = (uint64_t)ru.ru_stime.tv_sec * NS + (uint64_t)ru.ru_stime.tv_usec * 1000u;
    if (sleeps)
        *sleeps = (uint64_t)ru.ru_nvcsw;
}

static uint64_t clock_ns(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* ---- one run ------------------------------------------------------------ */

/* BASELINE is the harness alone: "benchsrc ! fakesink", no network. */
enum impl { SLUICE, LIBNICE, BASELINE, N_IMPLS };
static const char *const impl_name[N_IMPLS] = {"sluice", "libnice", "baseline"};

/* A point of a run: taken by the sender's streaming thread (start, and the
 * end of the allocation window) or by the main thread after the drain. */
struct mark {
    uint64_t t_ns, user_ns, sys_ns, sleeps, tx_thread_ns, tx, rx, allocs, tx_allocs;
    bool taken;
};

struct run {
    enum impl impl;
    uint64_t total;    /* packets to send */
    uint64_t window;   /* > 0: at most this many packets in flight */
    uint64_t pace_ns;  /* > 0: packet i is due at i * pace_ns ... */
    uint64_t tick_ns;  /* ... and leaves at the next multiple of tick_ns */
    bool lists;        /* paced: the packets of a tick go out as one buffer list */
    uint64_t limit_ns; /* the sender stops after this long in any case */
    uint64_t warm;     /* packets sent before the window starts */
    /* Written by the sender's streaming thread. */
    _Atomic uint64_t tx;
    uint64_t t_first;
    uint64_t written_off; /* window: packets given up as lost */
    unsigned stalls;      /* window: waits that timed out (loss) */
    double idle_pct;      /* CPU use before the run, % of one core */
    int tx_slot;
    clockid_t tx_clk;
    bool have_tx_clk;
    struct mark start, alloc_end, end;
    /* Written by the receiver's streaming thread. */
    _Atomic uint64_t rx, last_rx_ns;
    _Atomic uint64_t drain_target; /* 0 until the sender is done */
    _Atomic uint64_t resume_rx;    /* window: wake the sender at this count */
    GMutex lock;
    GCond cond;
};

static void take_mark(struct run *r, struct mark *m, uint64_t t)
{
    m->t_ns = t;
    process_cpu_ns(&m->user_ns, &m->sys_ns, &m->sleeps);
    m->tx_thread_ns = r->have_tx_clk ? clock_ns(r->tx_clk) : 0;
    m->tx = atomic_load(&r->tx);
    m->rx = atomic_load(&r->rx);
    m->allocs = allocs_total();
    m->tx_allocs = allocs_of(r->tx_slot);
    m->taken = true;
}

/* ---- benchsrc: preallocated buffers, flooded or paced ------------------ */

typedef struct {
    GstPushSrc parent;
    struct run *run;
    GstBufferPool *pool;
} BenchSrc;
typedef struct {
    GstPushSrcClass parent_class;
} BenchSrcClass;

GType bench_src_get_type(void);
G_DEFINE_TYPE(BenchSrc, bench_src, GST_TYPE_PUSH_SRC)

#define POOL_BUFFERS 64

static gboolean bench_src_start(GstBaseSrc *bsrc)
{
    BenchSrc *self = (BenchSrc *)bsrc;
    GstStructure *cfg;
    GstBuffer *bufs[POOL_BUFFERS];

    self->pool = gst_buffer_pool_new();
    cfg = gst_buffer_pool_get_config(self->pool);
    gst_buffer_pool_config_set_params(cfg, NULL, PACKET_SIZE, POOL_BUFFERS, POOL_BUFFERS);
    if (!gst_buffer_pool_set_config(self->pool, cfg) ||
        !gst_buffer_pool_set_active(self->pool, TRUE))
        return FALSE;
    /* Fill every buffer once: an RTP version-2 first byte (RFC 7983), so
     * icesrc takes its plain-media fast path; the rest zero. */
    for (guint i = 0; i < POOL_BUFFERS; i++) {
        GstMapInfo m;
        if (gst_buffer_pool_acquire_buffer(self->pool, &bufs[i], NULL) != GST_FLOW_OK)
            return FALSE;
        gst_buffer_map(bufs[i], &m, GST_MAP_WRITE);
        memset(m.data, 0, m.size);
        m.data[0] = 0x80;
        m.data[1] = 96;
        gst_buffer_unmap(bufs[i], &m);
    }
    for (guint i = 0; i < POOL_BUFFERS; i++)
        gst_buffer_unref(bufs[i]);
    return TRUE;
}

static gboolean bench_src_stop(GstBaseSrc *bsrc)
{
    BenchSrc *self = (BenchSrc *)bsrc;
    if (self->pool) {
        gst_buffer_pool_set_active(self->pool, FALSE);
        gst_clear_object(&self->pool);
    }
    return TRUE;
}

static GstFlowReturn bench_src_create(GstPushSrc *psrc, GstBuffer **out)
{
    BenchSrc *self = (BenchSrc *)psrc;
    struct run *r = self->run;
    uint64_t i = atomic_load_explicit(&r->tx, memory_order_relaxed);
    uint64_t t;

    if (i == 0) {
        r->tx_slot = thread_slot();
        r->have_tx_clk = pthread_getcpuclockid(pthread_self(), &r->tx_clk) == 0;
        r->t_first = now_ns();
    }
    if (r->pace_ns) {
        /* A paced source: packet i is due at t_first + i * pace_ns and
         * leaves on the pacer's next tick. */
        uint64_t off = i * r->pace_ns;
        uint64_t wake = r->t_first + (off + r->tick_ns - 1) / r->tick_ns * r->tick_ns;
        struct timespec ts = {(time_t)(wake / NS), (long)(wake % NS)};
        while (now_ns() < wake &&
               clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
    if (r->window && i - r->written_off >= atomic_load(&r->rx) + r->window) {
        /* Flow control: wait until half the window has arrived. A wait
         * that times out means datagrams were lost: write them off. */
        gint64 end = g_get_monotonic_time() + 20 * G_TIME_SPAN_MILLISECOND;
        uint64_t resume = i - r->written_off - r->window / 2;
        g_mutex_lock(&r->lock);
        atomic_store(&r->resume_rx, resume);
        while (atomic_load(&r->rx) < resume) {
            if (!g_cond_wait_until(&r->cond, &r->lock, end)) {
                uint64_t rx = atomic_load(&r->rx);
                r->written_off += rx < resume ? i - r->written_off - rx : 0;
                r->stalls++;
                break;
            }
        }
        atomic_store(&r->resume_rx, 0);
        g_mutex_unlock(&r->lock);
    }
    t = now_ns();
    if (i >= r->total || t - r->t_first >= r->limit_ns) {
        if (!r->alloc_end.taken)
            take_mark(r, &r->alloc_end, t);
        return GST_FLOW_EOS;
    }
    if (i >= r->warm && !r->start.taken)
        take_mark(r, &r->start, t);
    else if (r->start.taken && !r->alloc_end.taken &&
             (i >= r->total * 9 / 10 || t - r->t_first >= r->limit_ns * 9 / 10))
        take_mark(r, &r->alloc_end, t);
    if (r->lists) {
        /* Every packet due by now, in one list (at most one list's worth). */
        uint64_t due = (t - r->t_first) / r->pace_ns + 1;
        guint n = (guint)MIN(MIN(due > i ? due - i : 1, r->total - i), POOL_BUFFERS / 2);
        GstBufferList *list = gst_buffer_list_new_sized(n);
        for (guint k = 0; k < n; k++) {
            GstBuffer *b;
            if (gst_buffer_pool_acquire_buffer(self->pool, &b, NULL) != GST_FLOW_OK) {
                gst_buffer_list_unref(list);
                return GST_FLOW_FLUSHING;
            }
            gst_buffer_list_add(list, b);
        }
        atomic_store_explicit(&r->tx, i + n, memory_order_relaxed);
        *out = NULL;
        gst_base_src_submit_buffer_list(GST_BASE_SRC(psrc), list);
        return GST_FLOW_OK;
    }
    if (gst_buffer_pool_acquire_buffer(self->pool, out, NULL) != GST_FLOW_OK)
        return GST_FLOW_FLUSHING;
    atomic_store_explicit(&r->tx, i + 1, memory_order_relaxed);
    return GST_FLOW_OK;
}

static void bench_src_class_init(BenchSrcClass *klass)
{
    static GstStaticPadTemplate src_template =
        GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
    GstElementClass *ec = GST_ELEMENT_CLASS(klass);
    GstBaseSrcClass *bc = GST_BASE_SRC_CLASS(klass);

    gst_element_class_add_static_pad_template(ec, &src_template);
    gst_element_class_set_static_metadata(ec, "Benchmark source", "Source",
                                          "Preallocated 1,200-byte RTP-like buffers",
                                          "sluice developers");
    bc->start = bench_src_start;
    bc->stop = bench_src_stop;
    GST_PUSH_SRC_CLASS(klass)->create = bench_src_create;
}

static void bench_src_init(BenchSrc *self)
{
    (void)self;
}

/* ---- the receiver's counter ---------------------------------------------- */

static GstPadProbeReturn count_probe(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    struct run *r = data;
    uint64_t n = 1, rx, target, resume;
    (void)pad;
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST)
        n = gst_buffer_list_length(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
    rx = atomic_fetch_add_explicit(&r->rx, n, memory_order_relaxed) + n;
    atomic_store_explicit(&r->last_rx_ns, now_ns(), memory_order_relaxed);
    target = atomic_load(&r->drain_target);
    resume = atomic_load(&r->resume_rx);
    if ((target && rx >= target) || (resume && rx >= resume)) {
        g_mutex_lock(&r->lock);
        g_cond_broadcast(&r->cond);
        g_mutex_unlock(&r->lock);
    }
    return GST_PAD_PROBE_OK;
}

/* ---- two connected agents ------------------------------------------------- */

struct pair {
    enum impl impl;
    GMutex lock;
    GCond cond;
    int ready[2];
    SluiceAgent *sa[2]; /* 0 sends (controlling), 1 receives */
    NiceAgent *na[2];
    guint nstream[2];
};

static GMainContext *nice_ctx; /* run by nice_thread for every NiceAgent */
static GMainLoop *nice_loop;

static void mark_ready(struct pair *p, int side)
{
    g_mutex_lock(&p->lock);
    p->ready[side] = 1;
    g_cond_broadcast(&p->cond);
    g_mutex_unlock(&p->lock);
}

static bool wait_ready(struct pair *p)
{
    gint64 end = g_get_monotonic_time() + CONNECT_LIMIT_US;
    bool ok;
    g_mutex_lock(&p->lock);
    while (!(p->ready[0] && p->ready[1]) && g_cond_wait_until(&p->cond, &p->lock, end))
        ;
    ok = p->ready[0] && p->ready[1];
    g_mutex_unlock(&p->lock);
    return ok;
}

static void sluice_on_candidate(SluiceAgent *agent, guint stream, guint comp, const gchar *line,
                                gpointer data)
{
    SluiceAgent *other = data;
    (void)agent;
    (void)comp;
    sluice_agent_add_remote_candidate(other, stream, line, NULL);
}

static void sluice_on_selected(SluiceAgent *agent, guint stream, guint comp, const gchar *l,
                               const gchar *rem, gpointer data)
{
    struct pair *p = data;
    (void)stream;
    (void)comp;
    (void)l;
    (void)rem;
    mark_ready(p, agent == p->sa[0] ? 0 : 1);
}

static bool sluice_connect(struct pair *p)
{
    GError *err = NULL;
    for (int i = 0; i < 2; i++) {
        p->sa[i] = g_object_new(SLUICE_TYPE_AGENT, "controlling", i == 0, NULL);
        if (!sluice_agent_add_local_address(p->sa[i], "127.0.0.1", &err) ||
            sluice_agent_add_stream(p->sa[i], 1, &err) != 1)
            goto fail;
        g_signal_connect(p->sa[i], "selected-pair-changed", G_CALLBACK(sluice_on_selected), p);
    }
    for (int i = 0; i < 2; i++) {
        gchar *u, *pw;
        g_signal_connect(p->sa[i], "new-candidate", G_CALLBACK(sluice_on_candidate), p->sa[1 - i]);
        if (!sluice_agent_get_local_credentials(p->sa[i], 1, &u, &pw))
            return false;
        sluice_agent_set_remote_credentials(p->sa[1 - i], 1, u, pw, NULL);
        g_free(u);
        g_free(pw);
    }
    for (int i = 0; i < 2; i++)
        if (!sluice_agent_gather(p->sa[i], 1, &err))
            goto fail;
    return wait_ready(p);
fail:
    fprintf(stderr, "sluice agent: %s\n", err ? err->message : "?");
    g_clear_error(&err);
    return false;
}

static void nice_on_state(NiceAgent *agent, guint stream, guint comp, guint state, gpointer data)
{
    struct pair *p = data;
    (void)stream;
    (void)comp;
    if (state == NICE_COMPONENT_STATE_READY)
        mark_ready(p, agent == p->na[0] ? 0 : 1);
}

/* Media before nicesrc attaches its own receiver: none is sent then. */
static void nice_on_recv(NiceAgent *agent, guint stream, guint comp, guint len, gchar *buf,
                         gpointer data)
{
}

static bool nice_connect(struct pair *p)
{
    NiceAddress local;
    nice_address_init(&local);
    nice_address_set_from_string(&local, "127.0.0.1");
    for (int i = 0; i < 2; i++) {
        p->na[i] = nice_agent_new(nice_ctx, NICE_COMPATIBILITY_RFC5245);
        g_object_set(p->na[i], "controlling-mode", i == 0, "ice-tcp", FALSE, "upnp", FALSE, NULL);
        nice_agent_add_local_address(p->na[i], &local);
        g_signal_connect(p->na[i], "component-state-changed", G_CALLBACK(nice_on_state), p);
        p->nstream[i] = nice_agent_add_stream(p->na[i], 1);
        if (!p->nstream[i])
            return false;
        /* Connectivity checks are read only while a receiver is attached;
         * nicesrc attaches its own when it starts. */
        nice_agent_attach_recv(p->na[i], p->nstream[i], 1, nice_ctx, nice_on_recv, NULL);
        if (!nice_agent_gather_candidates(p->na[i], p->nstream[i]))
            return false;
    }
    for (int i = 0; i < 2; i++) {
        gchar *u = NULL, *pw = NULL;
        GSList *cands;
        int n;
        if (!nice_agent_get_local_credentials(p->na[i], p->nstream[i], &u, &pw))
            return false;
        nice_agent_set_remote_credentials(p->na[1 - i], p->nstream[1 - i], u, pw);
        g_free(u);
        g_free(pw);
        cands = nice_agent_get_local_candidates(p->na[i], p->nstream[i], 1);
        n = nice_agent_set_remote_candidates(p->na[1 - i], p->nstream[1 - i], 1, cands);
        g_slist_free_full(cands, (GDestroyNotify)nice_candidate_free);
        if (n < 1)
            return false;
    }
    return wait_ready(p);
}

static void pair_free(struct pair *p)
{
    for (int i = 0; i < 2; i++) {
        if (p->sa[i]) {
            g_signal_handlers_disconnect_by_data(p->sa[i], p);
            if (p->sa[1 - i])
                g_signal_handlers_disconnect_by_data(p->sa[i], p->sa[1 - i]);
        }
        if (p->na[i]) {
            /* Removing the stream closes its sockets at once. Detaching
             * the receiver and closing asynchronously alone left a socket
             * that a late keepalive made readable and nobody read: the
             * context's thread spun at 100 % for the rest of the run. */
            g_signal_handlers_disconnect_by_data(p->na[i], p);
            nice_agent_attach_recv(p->na[i], p->nstream[i], 1, nice_ctx, NULL, NULL);
            if (p->nstream[i])
                nice_agent_remove_stream(p->na[i], p->nstream[i]);
            nice_agent_close_async(p->na[i], NULL, NULL);
        }
    }
    for (int i = 0; i < 2; i++) {
        g_clear_object(&p->sa[i]);
        g_clear_object(&p->na[i]);
    }
    g_mutex_clear(&p->lock);
    g_cond_clear(&p->cond);
}

/* ---- pipelines ---------------------------------------------------------- */

static GstElement *make(const char *factory)
{
    GstElement *e = gst_element_factory_make(factory, NULL);
    if (!e) {
        fprintf(stderr, "no element %s (GST_PLUGIN_PATH=%s)\n", factory,
                getenv("GST_PLUGIN_PATH") ? getenv("GST_PLUGIN_PATH") : "");
        exit(1);
    }
    return e;
}

static bool check_bus(GstElement *pipe, const char *what)
{
    GstBus *bus = gst_element_get_bus(pipe);
    GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    bool ok = msg == NULL;
    if (msg) {
        GError *err = NULL;
        gchar *dbg = NULL;
        gst_message_parse_error(msg, &err, &dbg);
        fprintf(stderr, "%s: %s (%s)\n", what, err->message, dbg ? dbg : "");
        g_error_free(err);
        g_free(dbg);
        gst_message_unref(msg);
    }
    gst_object_unref(bus);
    return ok;
}

/* The process's CPU use while it should be idle, in % of one core over
 * 100 ms: anything left running by an earlier run (a spinning context)
 * would be counted against the next one. */
static double idle_cpu_pct(void)
{
    uint64_t u0, s0, u1, s1, t0 = now_ns(), t1;
    process_cpu_ns(&u0, &s0, NULL);
    g_usleep(100 * 1000);
    process_cpu_ns(&u1, &s1, NULL);
    t1 = now_ns();
    return 100.0 * (double)(u1 - u0 + s1 - s0) / (double)(t1 - t0);
}

/* One run on a fresh pair of agents. Returns false when the agents did not
 * connect or a pipeline failed. */
static bool run_once(struct run *r)
{
    struct pair p;
    GstElement *tx_pipe, *rx_pipe, *src, *sink, *nsrc, *fsink;
    GstPad *pad;
    GstBus *bus;
    GstMessage *msg;
    bool ok = false;

    r->idle_pct = idle_cpu_pct();
    memset(&p, 0, sizeof p);
    p.impl = r->impl;
    g_mutex_init(&p.lock);
    g_cond_init(&p.cond);
    g_mutex_init(&r->lock);
    g_cond_init(&r->cond);
    if (r->impl != BASELINE && !(r->impl == SLUICE ? sluice_connect(&p) : nice_connect(&p))) {
        fprintf(stderr, "%s: the agents did not connect within 5 s\n", impl_name[r->impl]);
        pair_free(&p);
        return false;
    }

    /* Receiver: icesrc|nicesrc ! fakesink, counted by a probe. */
    rx_pipe = gst_pipeline_new("receiver");
    fsink = make("fakesink");
    g_object_set(fsink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, NULL);
    if (r->impl == SLUICE) {
        nsrc = make("icesrc");
        g_object_set(nsrc, "agent", p.sa[1], NULL);
        gst_bin_add_many(GST_BIN(rx_pipe), nsrc, fsink, NULL);
        gst_element_link(nsrc, fsink);
    } else if (r->impl == LIBNICE) {
        nsrc = make("nicesrc");
        g_object_set(nsrc, "agent", p.na[1], "stream", p.nstream[1], "component", 1, NULL);
        gst_bin_add_many(GST_BIN(rx_pipe), nsrc, fsink, NULL);
        gst_element_link(nsrc, fsink);
    }
    pad = gst_element_get_static_pad(fsink, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST, count_probe,
                      r, NULL);
    gst_object_unref(pad);

    /* Sender: benchsrc ! icesink|nicesink, neither syncing nor prerolling
     * (icesink's defaults, set on nicesink too). */
    tx_pipe = gst_pipeline_new("sender");
    src = g_object_new(bench_src_get_type(), NULL);
    ((BenchSrc *)src)->run = r;
    if (r->impl == SLUICE) {
        sink = make("icesink");
        g_object_set(sink, "agent", p.sa[0], NULL);
    } else if (r->impl == LIBNICE) {
        sink = make("nicesink");
        g_object_set(sink, "agent", p.na[0], "stream", p.nstream[0], "component", 1, "sync", FALSE,
                     "async", FALSE, NULL);
    } else {
        sink = fsink; /* the baseline's one and only sink, counted */
    }
    gst_bin_add_many(GST_BIN(tx_pipe), src, sink, NULL);
    gst_element_link(src, sink);

    if (gst_element_set_state(rx_pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE ||
        gst_element_set_state(tx_pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        check_bus(rx_pipe, "receiver");
        check_bus(tx_pipe, "sender");
        goto out;
    }
    bus = gst_element_get_bus(tx_pipe);
    msg = gst_bus_timed_pop_filtered(bus, (r->limit_ns / NS + 10) * GST_SECOND,
                                     GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    gst_object_unref(bus);
    if (!msg || GST_MESSAGE_TYPE(msg) != GST_MESSAGE_EOS) {
        fprintf(stderr, "%s: the sender did not finish\n", impl_name[r->impl]);
        if (msg)
            gst_message_unref(msg);
        check_bus(tx_pipe, "sender");
        goto out;
    }
    gst_message_unref(msg);

    /* Drain: until everything sent arrived, or nothing arrived for 200 ms
     * (the rest was lost), bounded by 2 s. */
    {
        uint64_t target = atomic_load(&r->tx);
        gint64 hard_end = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
        atomic_store(&r->drain_target, target);
        g_mutex_lock(&r->lock);
        for (;;) {
            uint64_t before = atomic_load(&r->rx);
            gint64 end = g_get_monotonic_time() + DRAIN_IDLE_US;
            if (before >= target || end > hard_end)
                break;
            g_cond_wait_until(&r->cond, &r->lock, end);
            if (atomic_load(&r->rx) == before)
                break;
        }
        g_mutex_unlock(&r->lock);
    }
    take_mark(r, &r->end, atomic_load(&r->last_rx_ns));
    ok = r->start.taken && r->alloc_end.taken && check_bus(rx_pipe, "receiver") &&
         check_bus(tx_pipe, "sender");
    if (!r->start.taken)
        fprintf(stderr, "%s: fewer than %" PRIu64 " packets sent\n", impl_name[r->impl], r->warm);

out:
    gst_element_set_state(tx_pipe, GST_STATE_NULL);
    gst_element_set_state(rx_pipe, GST_STATE_NULL);
    gst_object_unref(tx_pipe);
    gst_object_unref(rx_pipe);
    pair_free(&p);
    g_mutex_clear(&r->lock);
    g_cond_clear(&r->cond);
    return ok;
}

/* ---- results ------------------------------------------------------------- */

struct result {
    uint64_t sent, received;
    unsigned stalls;
    double loss_pct, rx_pps;
    double cpu_us; /* process CPU per delivered packet (= CPU-s per Mpkt) */
    double user_us, sys_us;
    double pkt_per_cpu_s; /* delivered packets per process CPU-second */
    double tx_thread_us;  /* the sender's streaming thread, per packet sent */
    double rest_us;       /* everything else (receiver, agents), per packet delivered */
    double cpu_pct;       /* process CPU over the window, % of one core */
    double sleeps;        /* threads put to sleep per packet delivered */
    double allocs;        /* per packet, whole process */
    double tx_allocs;     /* the sender's streaming thread, per packet sent */
    double rest_allocs;   /* other threads, per packet delivered */
};

static struct result summarize(const struct run *r)
{
    struct result s;
    const struct mark *a = &r->start, *e = &r->end, *z = &r->alloc_end;
    double drx = (double)(e->rx - a->rx), dtx = (double)(e->tx - a->tx);
    double duser = (double)(e->user_ns - a->user_ns), dsys = (double)(e->sys_ns - a->sys_ns);
    double dcpu = duser + dsys, dtxc = (double)(e->tx_thread_ns - a->tx_thread_ns);
    double wall = (double)(e->t_ns > a->t_ns ? e->t_ns - a->t_ns : 1);
    double arx = (double)(z->rx - a->rx), atx = (double)(z->tx - a->tx);
    double dal = (double)(z->allocs - a->allocs), dtal = (double)(z->tx_allocs - a->tx_allocs);

    memset(&s, 0, sizeof s);
    s.sent = e->tx;
    s.received = e->rx;
    s.stalls = r->stalls;
    s.loss_pct = e->tx ? 100.0 * (double)(e->tx - MIN(e->rx, e->tx)) / (double)e->tx : 0;
    if (drx <= 0 || dtx <= 0 || dcpu <= 0)
        return s;
    s.rx_pps = drx * 1e9 / wall;
    s.cpu_us = dcpu / drx / 1e3;
    s.user_us = duser / drx / 1e3;
    s.sys_us = dsys / drx / 1e3;
    s.pkt_per_cpu_s = drx * 1e9 / dcpu;
    s.tx_thread_us = r->have_tx_clk ? dtxc / dtx / 1e3 : 0;
    s.rest_us = (dcpu - dtxc) / drx / 1e3;
    s.cpu_pct = 100.0 * dcpu / wall;
    s.sleeps = (double)(e->sleeps - a->sleeps) / drx;
    if (arx > 0 && atx > 0) {
        s.allocs = dal / arx;
        s.tx_allocs = dtal / atx;
        s.rest_allocs = (dal - dtal) / arx;
    }
    return s;
}

static void print_header(void)
{
    printf("%-19s %7s %7s %6s %8s %7s %6s %6s %8s %6s %6s %6s %6s %7s %6s %6s\n", "run", "sent",
           "recv", "loss%", "rx pkt/s", "CPU us", "user", "sys", "pkt/CPUs", "tx thr", "rest",
           "CPU%", "slp/p", "alloc/p", "tx thr", "rest");
}

static void print_row(const char *label, const struct result *s)
{
    printf("%-19s %7" PRIu64 " %7" PRIu64 " %6.2f %8.0f %7.2f %6.2f %6.2f %8.0f %6.2f %6.2f %6.1f "
           "%6.3f %7.3f %6.3f %6.3f\n",
           label, s->sent, s->received, s->loss_pct, s->rx_pps, s->cpu_us, s->user_us, s->sys_us,
           s->pkt_per_cpu_s, s->tx_thread_us, s->rest_us, s->cpu_pct, s->sleeps, s->allocs,
           s->tx_allocs, s->rest_allocs);
    fflush(stdout);
}

/* The best round: the most packets per CPU-second (least disturbed by
 * other work on the machine). */
static int by_efficiency(const void *x, const void *y)
{
    const struct result *a = x, *b = y;
    return a->pkt_per_cpu_s < b->pkt_per_cpu_s ? 1 : a->pkt_per_cpu_s > b->pkt_per_cpu_s ? -1 : 0;
}

static gpointer nice_thread(gpointer data)
{
    (void)data;
    g_main_context_push_thread_default(nice_ctx);
    g_main_loop_run(nice_loop);
    g_main_context_pop_thread_default(nice_ctx);
    return NULL;
}

/* ---- the kernel's floor ---------------------------------------------------- */
/* No GStreamer, no agent, one thread: bursts of FLOOR_BURST datagrams of
 * PACKET_SIZE bytes sent to a loopback socket and read back, either with
 * sendmmsg/recvmmsg (what icesink/icesrc do per batch) or as one UDP GSO
 * send (UDP_SEGMENT) read by a UDP_GRO socket in one recvmsg. Returns the
 * thread's CPU per datagram in us, or -1 when the kernel refuses. */

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#define FLOOR_BURST 10
#define FLOOR_BURSTS 20000

static double kernel_floor_us(bool gso)
{
    static guint8 out[FLOOR_BURST * PACKET_SIZE], in[FLOOR_BURST][65536];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int tx = socket(AF_INET, SOCK_DGRAM, 0), rx = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
    uint64_t got = 0, c0, c1;
    double result = -1;

    memset(out, 0x80, sizeof out);
    if (tx < 0 || rx < 0 || bind(rx, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(rx, (struct sockaddr *)&sa, &len) != 0 ||
        connect(tx, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        (gso && setsockopt(rx, IPPROTO_UDP, UDP_GRO, &one, sizeof one) != 0))
        goto out;
    c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    for (int b = 0; b < FLOOR_BURSTS; b++) {
        uint64_t want = got + FLOOR_BURST;
        if (gso) {
            union {
                char buf[CMSG_SPACE(sizeof(uint16_t))];
                struct cmsghdr align;
            } ctl;
            struct iovec iov = {out, sizeof out};
            struct msghdr m = {.msg_iov = &iov,
                               .msg_iovlen = 1,
                               .msg_control = ctl.buf,
                               .msg_controllen = sizeof ctl.buf};
            struct cmsghdr *c = CMSG_FIRSTHDR(&m);
            uint16_t seg = PACKET_SIZE;
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof seg);
            memcpy(CMSG_DATA(c), &seg, sizeof seg);
            if (sendmsg(tx, &m, 0) != (ssize_t)sizeof out)
                goto out;
            while (got < want) {
                char rctl[64];
                struct iovec ri = {in[0], sizeof in[0]};
                struct msghdr rm = {
                    .msg_iov = &ri, .msg_iovlen = 1, .msg_control = rctl, .msg_controllen = 64};
                ssize_t k = recvmsg(rx, &rm, 0);
                if (k <= 0)
                    goto out;
                got += ((uint64_t)k + PACKET_SIZE - 1) / PACKET_SIZE;
            }
        } else {
            struct mmsghdr mm[FLOOR_BURST];
            struct iovec iv[FLOOR_BURST];
            memset(mm, 0, sizeof mm);
            for (int i = 0; i < FLOOR_BURST; i++) {
                iv[i] = (struct iovec){out + i * PACKET_SIZE, PACKET_SIZE};
                mm[i].msg_hdr.msg_iov = &iv[i];
                mm[i].msg_hdr.msg_iovlen = 1;
            }
            if (sendmmsg(tx, mm, FLOOR_BURST, 0) != FLOOR_BURST)
                goto out;
            while (got < want) {
                int k, n = (int)(want - got);
                memset(mm, 0, sizeof mm);
                for (int i = 0; i < n; i++) {
                    iv[i] = (struct iovec){in[i], sizeof in[i]};
                    mm[i].msg_hdr.msg_iov = &iv[i];
                    mm[i].msg_hdr.msg_iovlen = 1;
                }
                k = recvmmsg(rx, mm, (unsigned)n, 0, NULL);
                if (k <= 0)
                    goto out;
                got += (uint64_t)k;
            }
        }
    }
    c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    result = (double)(c1 - c0) / (double)got / 1e3;
out:
    if (tx >= 0)
        close(tx);
    if (rx >= 0)
        close(rx);
    return result;
}

/* ---- workloads ------------------------------------------------------------ */

enum { FLOOD, WINDOW, PACED, PACED_5MS, PACED_LIST, N_WORKLOADS };

static const struct {
    const char *name;
    const char *what;
} workloads[N_WORKLOADS] = {
    [FLOOD] = {"flood", "as fast as the sink takes them, no flow control"},
    [WINDOW] = {"window", "as fast as they go, at most 64 in flight (no socket overrun)"},
    [PACED] = {"paced", "20 Mbit/s, one buffer every 480 us"},
    [PACED_5MS] = {"paced-5ms", "20 Mbit/s, the buffers due pushed every 5 ms"},
    [PACED_LIST] = {"paced-list", "20 Mbit/s, the buffers due every 5 ms as one buffer list"},
};

static bool is_flood(int w)
{
    return w == FLOOD || w == WINDOW;
}

static void setup_run(struct run *r, int w, enum impl impl, uint64_t packets, unsigned seconds)
{
    memset(r, 0, sizeof *r);
    r->impl = impl;
    r->tx_slot = -1;
    if (is_flood(w)) {
        r->total = packets;
        r->limit_ns = FLOOD_LIMIT_S * NS;
        r->warm = 2000;
        r->window = w == WINDOW ? 64 : 0;
    } else {
        r->pace_ns = NS * PACKET_SIZE * 8 / RTP_BITRATE;
        r->tick_ns = w == PACED ? r->pace_ns : 5 * 1000000ull;
        r->lists = w == PACED_LIST;
        r->total = seconds * NS / r->pace_ns;
        r->limit_ns = (seconds + 2) * NS;
        r->warm = r->total / 20;
    }
}

static void ratio(const char *what, double s, double n, bool lower_is_better)
{
    printf("  %-34s sluice %9.2f  libnice %9.2f  %s %.2fx\n", what, s, n,
           lower_is_better ? "libnice/sluice" : "sluice/libnice",
           lower_is_better ? (s > 0 ? n / s : 0) : (n > 0 ? s / n : 0));
}

int main(int argc, char **argv)
{
    unsigned rounds = 3, paced_rounds = 2;
    uint64_t packets = FLOOD_PACKETS;
    unsigned seconds = 2;
    const char *only = NULL, *workload = NULL;
    static struct result res[N_WORKLOADS][N_IMPLS][MAX_ROUNDS];
    unsigned n_res[N_WORKLOADS][N_IMPLS] = {{0}};
    bool failed = false;
    GThread *nthread;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--packets") && i + 1 < argc)
            packets = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--paced-rounds") && i + 1 < argc)
            paced_rounds = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--workload") && i + 1 < argc)
            workload = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--rounds N] [--paced-rounds N] [--packets N] [--seconds S] [--only "
                    "sluice|libnice|baseline] [--workload flood|window|paced|paced-5ms|"
                    "paced-list]\n",
                    argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || paced_rounds < 1 || paced_rounds > MAX_ROUNDS ||
        packets < 10000 || seconds < 1 || seconds > 30) {
        fprintf(stderr, "rounds 1..%d, packets >= 10000, seconds 1..30\n", MAX_ROUNDS);
        return 2;
    }

    /* GSlice reads G_SLICE once, before main (GObject's constructor already
     * allocates): start again with it set so every GSlice allocation is a
     * malloc the counter sees. The plugin is found in the build tree. */
    if (!getenv("BENCH_ELEMENTS_CHILD")) {
        char *self = realpath("/proc/self/exe", NULL);
        setenv("BENCH_ELEMENTS_CHILD", "1", 1);
        setenv("G_SLICE", "always-malloc", 1);
        setenv("GST_PLUGIN_PATH", BENCH_PLUGIN_DIR, 0);
        setenv("GST_REGISTRY", BENCH_REGISTRY, 0);
        execv(self ? self : "/proc/self/exe", argv);
        perror("execv");
        return 1;
    }

    gst_init(NULL, NULL);
    if (!gst_element_factory_find("icesink") || !gst_element_factory_find("icesrc")) {
        fprintf(stderr, "icesrc/icesink not found (GST_PLUGIN_PATH=%s)\n",
                getenv("GST_PLUGIN_PATH"));
        return 1;
    }
    if (!gst_element_factory_find("nicesink") || !gst_element_factory_find("nicesrc")) {
        fprintf(stderr, "nicesrc/nicesink not found: apt-get install gstreamer1.0-nice\n");
        return 1;
    }
    nice_ctx = g_main_context_new();
    nice_loop = g_main_loop_new(nice_ctx, FALSE);
    nthread = g_thread_new("nice-ctx", nice_thread, NULL);

    printf("sender: benchsrc ! icesink|nicesink; receiver: icesrc|nicesrc ! fakesink; "
           "%d-byte buffers, 127.0.0.1, one process;\n"
           "baseline: benchsrc ! fakesink (the harness alone, no network)\n"
           "CPU us = process CPU (user + sys) per delivered packet = CPU-seconds per million "
           "packets; pkt/CPUs = delivered packets per CPU-second;\n"
           "tx thr = the sender's streaming thread (benchsrc + sink) per packet sent, rest = "
           "all other threads per packet delivered;\n"
           "alloc/p = malloc/calloc/realloc/memalign calls per packet in steady state "
           "(G_SLICE=always-malloc): whole process, sender thread, rest\n",
           PACKET_SIZE);
    for (int w = 0; w < N_WORKLOADS; w++) {
        unsigned nr = is_flood(w) ? rounds : paced_rounds;
        if (workload && strcmp(workload, workloads[w].name))
            continue;
        printf("\n%s: %s", workloads[w].name, workloads[w].what);
        if (is_flood(w))
            printf(", %" PRIu64 " packets (at most %d s)", packets, FLOOD_LIMIT_S);
        else
            printf(", %u s", seconds);
        printf(", %u round%s\n", nr, nr > 1 ? "s" : "");
        print_header();
        for (unsigned k = 0; k < nr; k++) {
            for (int impl = 0; impl < N_IMPLS; impl++) {
                struct run r;
                char label[40];
                if ((only && !strstr(impl_name[impl], only)) || (impl == BASELINE && k > 0))
                    continue;
                setup_run(&r, w, (enum impl)impl, packets, seconds);
                if (!run_once(&r)) {
                    failed = true;
                    continue;
                }
                res[w][impl][n_res[w][impl]] = summarize(&r);
                snprintf(label, sizeof label, "%s %s", impl_name[impl], workloads[w].name);
                if (nr > 1 && impl != BASELINE)
                    snprintf(label + strlen(label), sizeof label - strlen(label), " #%u", k + 1);
                print_row(label, &res[w][impl][n_res[w][impl]]);
                if (r.stalls)
                    printf("  (%u waits timed out: datagrams lost)\n", r.stalls);
                if (r.idle_pct > 5)
                    printf("  (warning: %.0f %% CPU in use before this run)\n", r.idle_pct);
                n_res[w][impl]++;
            }
        }
    }

    printf("\nsluice vs libnice (best round of each by packets per CPU-second; \"net\" "
           "subtracts the baseline's CPU per packet, the harness's own cost):\n");
    for (int w = 0; w < N_WORKLOADS; w++) {
        struct result best[N_IMPLS];
        double net[2] = {0, 0};
        if (!n_res[w][SLUICE] || !n_res[w][LIBNICE])
            continue;
        for (int impl = 0; impl < N_IMPLS; impl++) {
            if (!n_res[w][impl]) {
                memset(&best[impl], 0, sizeof best[impl]);
                continue;
            }
            qsort(res[w][impl], n_res[w][impl], sizeof res[w][impl][0], by_efficiency);
            best[impl] = res[w][impl][0];
        }
        for (int impl = 0; impl < 2; impl++)
            net[impl] = best[impl].cpu_us - best[BASELINE].cpu_us;
        printf("%s:\n", workloads[w].name);
        ratio("delivered packets/s", best[0].rx_pps, best[1].rx_pps, false);
        ratio("delivered packets per CPU-second", best[0].pkt_per_cpu_s, best[1].pkt_per_cpu_s,
              false);
        ratio("CPU-s per million packets", best[0].cpu_us, best[1].cpu_us, true);
        ratio("  user", best[0].user_us, best[1].user_us, true);
        ratio("  sys", best[0].sys_us, best[1].sys_us, true);
        ratio("  sender thread, per packet sent", best[0].tx_thread_us, best[1].tx_thread_us, true);
        ratio("  other threads", best[0].rest_us, best[1].rest_us, true);
        if (n_res[w][BASELINE])
            ratio("  net of the harness", net[0], net[1], true);
        printf("  %-34s sluice %9.2f  libnice %9.2f\n", "loss %", best[0].loss_pct,
               best[1].loss_pct);
        printf("  %-34s sluice %9.3f  libnice %9.3f  (harness %.3f)\n", "threads woken per packet",
               best[0].sleeps, best[1].sleeps, best[BASELINE].sleeps);
        printf("  %-34s sluice %9.3f  libnice %9.3f  (harness %.3f)\n", "allocations per packet",
               best[0].allocs, best[1].allocs, best[BASELINE].allocs);
        printf("  goal (issue 6), sluice >= 1.5x libnice's packets per CPU-second: %.2fx %s",
               best[0].pkt_per_cpu_s / best[1].pkt_per_cpu_s,
               best[0].pkt_per_cpu_s >= 1.5 * best[1].pkt_per_cpu_s ? "met" : "not met");
        if (n_res[w][BASELINE] && net[0] > 0)
            printf(", net of the harness %.2fx %s", net[1] / net[0],
                   net[1] >= 1.5 * net[0] ? "met" : "not met");
        printf("\n");
    }

    if (!workload && !only) {
        double mm = kernel_floor_us(false), gso = kernel_floor_us(true);
        printf("\nthe kernel's floor, one thread, no GStreamer: bursts of %d datagrams of %d "
               "bytes over loopback, sent and received\n"
               "  sendmmsg + recvmmsg:                   %.2f us CPU per datagram\n",
               FLOOR_BURST, PACKET_SIZE, mm);
        if (gso > 0)
            printf("  one UDP_SEGMENT send + UDP_GRO receive: %.2f us CPU per datagram\n", gso);
        else
            printf("  UDP_SEGMENT/UDP_GRO: not supported by this kernel\n");
    }

    g_main_loop_quit(nice_loop);
    g_thread_join(nthread);
    g_main_loop_unref(nice_loop);
    g_main_context_unref(nice_ctx);
    return failed ? 1 : 0;
}
