/* SPDX-License-Identifier: MIT */
/* icesrc: receives the ICE peer's media in the streaming thread. It claims
 * the component's sockets from the agent, waits on them with poll (and a
 * GCancellable for unlock), reads batches with recvmmsg into pooled
 * buffers, and pushes plain media from the selected remote straight out;
 * STUN, TURN and media from other candidates go to the agent (which answers
 * checks and unwraps relayed data). Media relayed over TCP/TLS connections
 * to TURN servers, which the agent reads itself, waits in the agent's queue
 * for the component; its descriptor is polled with the sockets. No main
 * loop runs in create(). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>

#include "gsticesrc.h"
#include "gstsluiceelements.h"

GST_DEBUG_CATEGORY_STATIC(ice_src_debug);
#define GST_CAT_DEFAULT ice_src_debug

#define BATCH 32
/* UDP GRO (Linux UDP_GRO): a read can hold up to 64 datagrams of one size
 * coalesced (the kernel's UDP_GRO_CNT_MAX), in up to 64 KiB. */
#define GRO_SEGS 64
#define GRO_READ 65536
#define GRO_MSGS 8
#define OUT_MAX (BATCH + GRO_MSGS * GRO_SEGS)
#define MAX_SOCKETS 16
#define DEFAULT_MTU 2048

struct _GstIceSrc {
    GstPushSrc parent;
    GstSluiceSession session;
    guint mtu;
    SluiceAgent *agent; /* while started */
    GCancellable *cancel;
    /* The claimed sockets (streaming thread). */
    GPtrArray *sockets;
    GCancellable *changed;
    gint media_fd; /* the agent's queue of media relayed over TCP/TLS, or -1 */
    /* The cancellables' fds, made once per cancellable: making and
     * releasing them in every create() cost an eventfd, a close and an
     * allocation each. */
    GPollFD cancel_fd, changed_fd;
    gboolean have_cancel_fd, have_changed_fd;
    SluiceAgentRoute route;
    gboolean have_route;
    sluice_addr route_peer;
    GstBufferPool *pool;
    guint batch; /* adapts to the traffic: 1..BATCH */
    gboolean gro;     /* UDP_GRO on the claimed sockets */
    gboolean no_lists;
    GQueue pending; /* no_lists: datagrams read, not yet pushed */
    guint8 *gro_buf;  /* GRO_MSGS reads of GRO_READ bytes */
    guint64 received, dropped;
};

enum { PROP_0, PROP_MTU = GST_SLUICE_PROP_LAST, PROP_PACKETS_RECEIVED, PROP_BUFFER_LISTS };

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

G_DEFINE_TYPE(GstIceSrc, gst_ice_src, GST_TYPE_PUSH_SRC)
GST_ELEMENT_REGISTER_DEFINE(icesrc, "icesrc", GST_RANK_NONE, GST_TYPE_ICE_SRC)

static void gst_ice_src_set_property(GObject *obj, guint id, const GValue *v, GParamSpec *ps)
{
    GstIceSrc *self = GST_ICE_SRC(obj);
    if (id == PROP_MTU)
        self->mtu = g_value_get_uint(v);
    else if (id == PROP_BUFFER_LISTS)
        self->no_lists = !g_value_get_boolean(v);
    else if (!gst_sluice_session_set_property(&self->session, id, v))
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
}

static void gst_ice_src_get_property(GObject *obj, guint id, GValue *v, GParamSpec *ps)
{
    GstIceSrc *self = GST_ICE_SRC(obj);
    if (id == PROP_MTU) {
        g_value_set_uint(v, self->mtu);
    } else if (id == PROP_BUFFER_LISTS) {
        g_value_set_boolean(v, !self->no_lists);
    } else if (id == PROP_PACKETS_RECEIVED) {
        GST_OBJECT_LOCK(self);
        g_value_set_uint64(v, self->received);
        GST_OBJECT_UNLOCK(self);
    } else if (!gst_sluice_session_get_property(&self->session, id, v)) {
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    }
}

static void release_cancel_fd(GstIceSrc *self)
{
    if (self->have_cancel_fd)
        g_cancellable_release_fd(self->cancel);
    self->have_cancel_fd = FALSE;
}

/* Coalesced reads on the claimed sockets (or not): the agent reads the
 * sockets itself once they are released, with datagram-sized buffers, so
 * GRO is switched off again before that. */
static gboolean set_gro(GPtrArray *sockets, gboolean on)
{
    int v = on ? 1 : 0;
    gboolean ok = TRUE;
    for (guint i = 0; sockets && i < sockets->len; i++)
        if (setsockopt(g_socket_get_fd(g_ptr_array_index(sockets, i)), SOL_UDP, UDP_GRO, &v,
                       sizeof v) != 0)
            ok = FALSE;
    return ok;
}

static void release_sockets(GstIceSrc *self)
{
    if (self->have_changed_fd)
        g_cancellable_release_fd(self->changed);
    self->have_changed_fd = FALSE;
    if (self->sockets && self->gro)
        set_gro(self->sockets, FALSE);
    self->gro = FALSE;
    if (self->sockets) {
        g_ptr_array_unref(self->sockets);
        self->sockets = NULL;
        sluice_agent_release_component(self->agent, self->session.stream,
                                       self->session.component);
    }
    self->media_fd = -1;
    g_clear_object(&self->changed);
}

static gboolean gst_ice_src_start(GstBaseSrc *bsrc)
{
    GstIceSrc *self = GST_ICE_SRC(bsrc);
    GstStructure *cfg;
    self->agent = gst_sluice_session_start(&self->session);
    if (!self->agent)
        return FALSE;
    self->cancel = g_cancellable_new();
    self->pool = gst_buffer_pool_new();
    cfg = gst_buffer_pool_get_config(self->pool);
    gst_buffer_pool_config_set_params(cfg, NULL, self->mtu, BATCH, 0);
    if (!gst_buffer_pool_set_config(self->pool, cfg) ||
        !gst_buffer_pool_set_active(self->pool, TRUE)) {
        GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT, ("cannot set up the buffer pool"),
                          (NULL));
        return FALSE;
    }
    self->batch = 4;
    self->received = self->dropped = 0;
    self->have_route = FALSE;
    self->route.generation = G_MAXUINT; /* never taken */
    return TRUE;
}

static gboolean gst_ice_src_stop(GstBaseSrc *bsrc)
{
    GstIceSrc *self = GST_ICE_SRC(bsrc);
    if (self->agent)
        release_sockets(self);
    sluice_agent_route_clear(&self->route);
    self->have_route = FALSE;
    if (self->pool) {
        gst_buffer_pool_set_active(self->pool, FALSE);
        gst_clear_object(&self->pool);
    }
    g_clear_pointer(&self->gro_buf, g_free);
    g_queue_clear_full(&self->pending, (GDestroyNotify)gst_buffer_unref);
    gst_sluice_session_stop(&self->session);
    g_clear_object(&self->agent);
    release_cancel_fd(self);
    g_clear_object(&self->cancel);
    return TRUE;
}

static gboolean gst_ice_src_unlock(GstBaseSrc *bsrc)
{
    GstIceSrc *self = GST_ICE_SRC(bsrc);
    if (self->cancel)
        g_cancellable_cancel(self->cancel);
    return TRUE;
}

static gboolean gst_ice_src_unlock_stop(GstBaseSrc *bsrc)
{
    GstIceSrc *self = GST_ICE_SRC(bsrc);
    if (self->cancel && g_cancellable_is_cancelled(self->cancel)) {
        release_cancel_fd(self);
        g_object_unref(self->cancel);
        self->cancel = g_cancellable_new();
    }
    return TRUE;
}

/* The plain-media fast path accepts datagrams from the selected remote
 * candidate only; everything else goes through the agent. */
static void refresh_route(GstIceSrc *self)
{
    gboolean valid;
    if (!gst_sluice_session_refresh_route(&self->session, self->agent, &self->route, &valid))
        return;
    self->have_route = valid && self->route.route.framing == SLUICE_ICE_FRAMING_NONE;
    if (self->have_route)
        self->route_peer = self->route.route.destination;
}

/* RFC 7983: 0-3 STUN, 16-19 ZRTP, 20-63 DTLS, 64-79 TURN ChannelData,
 * 128-191 RTP/RTCP. Media is what the agent does not consume. */
static gboolean is_plain_media(guint8 b)
{
    return (b >= 20 && b <= 63) || (b >= 128 && b <= 191);
}

static GstFlowReturn wait_readable(GstIceSrc *self, GPollFD *fds, guint *n_fds)
{
    guint n = 0;
    gint rc;

    if (!self->sockets || g_cancellable_is_cancelled(self->changed)) {
        release_sockets(self);
        self->sockets = sluice_agent_claim_component(self->agent, self->session.stream,
                                                     self->session.component, &self->changed);
        if (!self->sockets) {
            GST_ELEMENT_ERROR(self, RESOURCE, BUSY,
                              ("stream %u component %u is already read by another icesrc, or "
                               "does not exist",
                               self->session.stream, self->session.component),
                              (NULL));
            return GST_FLOW_ERROR;
        }
        self->gro = !g_getenv("SLUICE_NO_GRO") && set_gro(self->sockets, TRUE);
        if (!self->gro)
            set_gro(self->sockets, FALSE);
        GST_DEBUG_OBJECT(self, "UDP GRO %s", self->gro ? "on" : "off");
        self->media_fd = sluice_agent_get_media_fd(self->agent, self->session.stream,
                                                   self->session.component);
    }
    for (guint i = 0; i < self->sockets->len && n < MAX_SOCKETS; i++) {
        fds[n].fd = g_socket_get_fd(g_ptr_array_index(self->sockets, i));
        fds[n].events = G_IO_IN;
        fds[n].revents = 0;
        n++;
    }
    if (!self->have_cancel_fd)
        self->have_cancel_fd = g_cancellable_make_pollfd(self->cancel, &self->cancel_fd);
    if (!self->have_changed_fd)
        self->have_changed_fd = g_cancellable_make_pollfd(self->changed, &self->changed_fd);
    if (!self->have_cancel_fd || !self->have_changed_fd)
        return GST_FLOW_ERROR;
    /* After the sockets: the queue of media relayed over TCP/TLS (or an
     * entry poll ignores). */
    fds[n].fd = self->media_fd;
    fds[n].events = G_IO_IN;
    fds[n++].revents = 0;
    fds[n] = self->cancel_fd;
    fds[n++].revents = 0;
    fds[n] = self->changed_fd;
    fds[n++].revents = 0;
    do {
        rc = g_poll(fds, n, -1);
    } while (rc < 0 && errno == EINTR);
    if (g_cancellable_is_cancelled(self->cancel))
        return GST_FLOW_FLUSHING;
    *n_fds = n - 3;
    return GST_FLOW_OK;
}

/* One datagram read into scratch memory (a coalesced GRO read holds
 * several): copied into a pooled buffer and kept when it is media (plain
 * media from the selected peer at once, anything else through the agent).
 * Returns 1 when kept in *out. */
static guint keep_datagram(GstIceSrc *self, GSocket *socket, const sluice_addr *src,
                           guint8 *data, gsize len, GstBuffer **out, GstClockTime arrival)
{
    sluice_ice_media media;
    GstBuffer *b;
    GstMapInfo map;
    if (len > self->mtu) {
        GST_WARNING_OBJECT(self, "datagram larger than mtu=%u dropped", self->mtu);
        self->dropped++;
        return 0;
    }
    if (!(self->have_route && is_plain_media(data[0]) && sluice_addr_equal(src, &self->route_peer))) {
        if (sluice_agent_receive_native(self->agent, socket, src, data, len, &media) != 1)
            return 0;
        data = (guint8 *)media.data;
        len = media.len;
    }
    if (gst_buffer_pool_acquire_buffer(self->pool, &b, NULL) != GST_FLOW_OK)
        return 0;
    gst_buffer_map(b, &map, GST_MAP_WRITE);
    memcpy(map.data, data, len);
    gst_buffer_unmap(b, &map);
    gst_buffer_resize(b, 0, (gssize)len);
    GST_BUFFER_DTS(b) = arrival;
    *out = b;
    return 1;
}

/* GRO: up to GRO_MSGS coalesced reads (room permitting), each split at the
 * segment size of its UDP_GRO control message. */
static guint read_batch_gro(GstIceSrc *self, GSocket *socket, GstBuffer **out, guint room,
                            GstClockTime arrival)
{
    struct mmsghdr msgs[GRO_MSGS];
    struct iovec iov[GRO_MSGS];
    struct sockaddr_storage from[GRO_MSGS];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl[GRO_MSGS];
    guint n = MIN(GRO_MSGS, room / GRO_SEGS), got = 0;
    gint k;
    if (n == 0)
        return 0; /* the socket stays readable: the next create() reads it */
    if (!self->gro_buf)
        self->gro_buf = g_malloc((gsize)GRO_MSGS * GRO_READ);
    for (guint i = 0; i < n; i++) {
        iov[i].iov_base = self->gro_buf + (gsize)i * GRO_READ;
        iov[i].iov_len = GRO_READ;
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof from[i];
        msgs[i].msg_hdr.msg_control = ctl[i].buf;
        msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
    }
    do {
        k = recvmmsg(g_socket_get_fd(socket), msgs, n, MSG_DONTWAIT, NULL);
    } while (k < 0 && errno == EINTR);
    for (gint i = 0; i < k; i++) {
        gsize len = msgs[i].msg_len, seg = len;
        sluice_addr src;
        if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || len == 0 ||
            sluice_addr_from_sockaddr(&src, &from[i], msgs[i].msg_hdr.msg_namelen) != 0)
            continue;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c;
             c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
            if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
                int v;
                memcpy(&v, CMSG_DATA(c), sizeof v);
                if (v > 0)
                    seg = (gsize)v;
            }
        }
        guint8 *base = iov[i].iov_base;
        for (gsize off = 0; off < len && got < room; off += seg)
            got += keep_datagram(self, socket, &src, base + off, MIN(seg, len - off), out + got,
                                 arrival);
    }
    return got;
}

/* Read one batch (at most room datagrams) from a readable socket; keep
 * what is media in out. Returns how many were kept. */
static guint read_batch(GstIceSrc *self, GSocket *socket, GstBuffer **out, guint room,
                        GstClockTime arrival)
{
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_storage from[BATCH];
    GstBuffer *bufs[BATCH];
    GstMapInfo maps[BATCH];
    guint n = 0, got = 0;
    gint k;

    if (self->gro)
        return read_batch_gro(self, socket, out, room, arrival);
    for (; n < MIN(MIN(self->batch, room), BATCH); n++) {
        if (gst_buffer_pool_acquire_buffer(self->pool, &bufs[n], NULL) != GST_FLOW_OK)
            break;
        gst_buffer_map(bufs[n], &maps[n], GST_MAP_WRITE);
        iov[n].iov_base = maps[n].data;
        iov[n].iov_len = maps[n].size;
        memset(&msgs[n], 0, sizeof msgs[n]);
        msgs[n].msg_hdr.msg_iov = &iov[n];
        msgs[n].msg_hdr.msg_iovlen = 1;
        msgs[n].msg_hdr.msg_name = &from[n];
        msgs[n].msg_hdr.msg_namelen = sizeof from[n];
    }
    do {
        k = recvmmsg(g_socket_get_fd(socket), msgs, n, MSG_DONTWAIT, NULL);
    } while (k < 0 && errno == EINTR);
    for (guint i = 0; i < n; i++) {
        gsize len = (k > 0 && i < (guint)k) ? msgs[i].msg_len : 0;
        sluice_addr src;
        sluice_ice_media media;
        gboolean keep = FALSE;
        gsize off = 0;

        if (k > 0 && i < (guint)k && !(msgs[i].msg_hdr.msg_flags & MSG_TRUNC) && len > 0 &&
            sluice_addr_from_sockaddr(&src, &from[i], msgs[i].msg_hdr.msg_namelen) == 0) {
            if (self->have_route && is_plain_media(maps[i].data[0]) &&
                sluice_addr_equal(&src, &self->route_peer)) {
                keep = TRUE;
            } else if (sluice_agent_receive_native(self->agent, socket, &src, maps[i].data, len,
                                                   &media) == 1) {
                /* A view into this buffer (unwrapped ChannelData/Data
                 * indication, or media from another candidate). */
                off = (gsize)(media.data - maps[i].data);
                len = media.len;
                keep = TRUE;
            }
        } else if (k > 0 && i < (guint)k && (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)) {
            GST_WARNING_OBJECT(self, "datagram larger than mtu=%u dropped", self->mtu);
            self->dropped++;
        }
        gst_buffer_unmap(bufs[i], &maps[i]);
        if (keep) {
            gst_buffer_resize(bufs[i], (gssize)off, (gssize)len);
            GST_BUFFER_DTS(bufs[i]) = arrival;
            out[got++] = bufs[i];
        } else {
            gst_buffer_unref(bufs[i]);
        }
    }
    /* Grow the batch while batches come back full, shrink when not. */
    if (k > 0 && (guint)k == n && self->batch < BATCH)
        self->batch = MIN(BATCH, self->batch * 2);
    else if (k > 0 && (guint)k < n / 4 && self->batch > 1)
        self->batch /= 2;
    return got;
}

/* Media the agent read from a TCP/TLS connection to a TURN server (already
 * unwrapped, a copy per datagram: this path is not the fast one). */
static guint read_queue(GstIceSrc *self, GstBuffer **out, guint room, GstClockTime arrival)
{
    guint got = 0;
    while (got < room) {
        GstBuffer *buf;
        GstMapInfo map;
        gssize n;
        if (gst_buffer_pool_acquire_buffer(self->pool, &buf, NULL) != GST_FLOW_OK)
            break;
        gst_buffer_map(buf, &map, GST_MAP_WRITE);
        n = sluice_agent_pop_media(self->agent, self->session.stream, self->session.component,
                                   map.data, map.size);
        gst_buffer_unmap(buf, &map);
        if (n <= 0) {
            gst_buffer_unref(buf);
            if (n == 0)
                break;
            GST_WARNING_OBJECT(self, "datagram larger than mtu=%u dropped", self->mtu);
            self->dropped++;
            continue;
        }
        gst_buffer_resize(buf, 0, n);
        GST_BUFFER_DTS(buf) = arrival;
        out[got++] = buf;
    }
    return got;
}

static GstFlowReturn gst_ice_src_create(GstPushSrc *psrc, GstBuffer **outbuf)
{
    GstIceSrc *self = GST_ICE_SRC(psrc);
    GPollFD fds[MAX_SOCKETS + 3];
    GstBuffer *got[OUT_MAX];
    guint n_got = 0;
    GstBufferList *list;
    GstFlowReturn ret;

    *outbuf = NULL;
    if (!g_queue_is_empty(&self->pending)) {
        *outbuf = g_queue_pop_head(&self->pending);
        return GST_FLOW_OK;
    }
    while (n_got == 0) {
        guint n_fds = 0;
        GstClock *clock;
        GstClockTime arrival = GST_CLOCK_TIME_NONE;
        ret = wait_readable(self, fds, &n_fds);
        if (ret != GST_FLOW_OK)
            return ret;
        refresh_route(self);
        /* Timestamp like a live source: running time at arrival. */
        clock = gst_element_get_clock(GST_ELEMENT(self));
        if (clock) {
            GstClockTime now = gst_clock_get_time(clock);
            GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
            arrival = now > base ? now - base : 0;
            gst_object_unref(clock);
        }
        /* A socket left unread when got is full stays readable: the next
         * create() reads it. */
        for (guint i = 0; i < n_fds && n_got < OUT_MAX; i++) {
            if (fds[i].revents & (G_IO_IN | G_IO_ERR))
                n_got += read_batch(self, g_ptr_array_index(self->sockets, i), got + n_got,
                                    OUT_MAX - n_got, arrival);
        }
        if (fds[n_fds].revents & G_IO_IN)
            n_got += read_queue(self, got + n_got, MIN(BATCH, OUT_MAX - n_got), arrival);
    }
    GST_OBJECT_LOCK(self);
    self->received += n_got;
    GST_OBJECT_UNLOCK(self);
    /* One datagram (the usual case below a few thousand packets/s) goes out
     * as a buffer: no list allocated per packet. */
    if (n_got == 1) {
        *outbuf = got[0];
        return GST_FLOW_OK;
    }
    if (self->no_lists) {
        /* One buffer per create(): the rest wait in order. */
        for (guint i = 1; i < n_got; i++)
            g_queue_push_tail(&self->pending, got[i]);
        *outbuf = got[0];
        return GST_FLOW_OK;
    }
    list = gst_buffer_list_new_sized(n_got);
    for (guint i = 0; i < n_got; i++)
        gst_buffer_list_add(list, got[i]);
    gst_base_src_submit_buffer_list(GST_BASE_SRC(self), list);
    return GST_FLOW_OK;
}

static void gst_ice_src_finalize(GObject *obj)
{
    GstIceSrc *self = GST_ICE_SRC(obj);
    gst_sluice_session_clear(&self->session);
    G_OBJECT_CLASS(gst_ice_src_parent_class)->finalize(obj);
}

static void gst_ice_src_class_init(GstIceSrcClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GstElementClass *ec = GST_ELEMENT_CLASS(klass);
    GstBaseSrcClass *bc = GST_BASE_SRC_CLASS(klass);
    GstPushSrcClass *pc = GST_PUSH_SRC_CLASS(klass);

    GST_DEBUG_CATEGORY_INIT(ice_src_debug, "icesrc", 0, "sluice ICE source");
    oc->set_property = gst_ice_src_set_property;
    oc->get_property = gst_ice_src_get_property;
    oc->finalize = gst_ice_src_finalize;
    gst_sluice_session_install_properties(oc);
    g_object_class_install_property(
        oc, PROP_MTU,
        g_param_spec_uint("mtu", "MTU",
                          "Largest datagram received; larger ones are dropped and counted", 576,
                          65536, DEFAULT_MTU,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
    g_object_class_install_property(
        oc, PROP_BUFFER_LISTS,
        g_param_spec_boolean("buffer-lists", "Buffer lists",
                             "Push the datagrams of one read as a buffer list; FALSE pushes "
                             "them one by one (webrtcbin's DTLS/SRTP chain in GStreamer 1.22 "
                             "mishandles lists: docs/elements.md)",
                             TRUE,
                             G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
    g_object_class_install_property(
        oc, PROP_PACKETS_RECEIVED,
        g_param_spec_uint64("packets-received", "Packets received",
                            "Media datagrams pushed downstream", 0, G_MAXUINT64, 0,
                            G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

    gst_element_class_add_static_pad_template(ec, &src_template);
    gst_element_class_set_static_metadata(
        ec, "ICE source", "Source/Network",
        "Receives data from an ICE peer on the sluice agent's sockets (direct or relayed "
        "through TURN)",
        "sluice developers");
    bc->start = gst_ice_src_start;
    bc->stop = gst_ice_src_stop;
    bc->unlock = gst_ice_src_unlock;
    bc->unlock_stop = gst_ice_src_unlock_stop;
    pc->create = gst_ice_src_create;
}

static void gst_ice_src_init(GstIceSrc *self)
{
    gst_sluice_session_init(&self->session, GST_ELEMENT(self));
    self->mtu = DEFAULT_MTU;
    self->media_fd = -1;
    gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
    gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}
