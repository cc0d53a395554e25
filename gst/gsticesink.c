/* SPDX-License-Identifier: MIT */
/* icesink: sends buffers to the ICE peer from the streaming thread through
 * the agent's current route — batched with g_socket_send_messages, the
 * ChannelData header in a separate vector when relayed; on the agent's TCP
 * connection to the TURN server when relayed over TCP — without a main loop
 * and without the agent lock per packet. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>

#include "gsticesink.h"
#include "gstsluiceelements.h"

GST_DEBUG_CATEGORY_STATIC(ice_sink_debug);
#define GST_CAT_DEFAULT ice_sink_debug

#define BATCH 64      /* datagrams per sendmmsg */
#define MAX_VECS 8    /* memories per buffer sent without merging */
/* UDP GSO (Linux UDP_SEGMENT): at most this many datagrams, and bytes, in
 * one send (the kernel's UDP_MAX_SEGMENTS is 64; a UDP payload is < 64 KiB). */
#define GSO_MAX_SEGS 64
#define GSO_MAX_BYTES 64000

struct _GstIceSink {
    GstBaseSink parent;
    GstSluiceSession session;
    SluiceAgent *agent;  /* while started */
    GCancellable *cancel;
    SluiceAgentRoute route;
    gboolean have_route;
    /* The route's destination as a sockaddr, for sendmsg with GSO. */
    struct sockaddr_storage dest;
    socklen_t dest_len;
    guint dest_generation;
    gboolean gso_off; /* the kernel refused UDP_SEGMENT: sendmmsg only */
    /* Statistics (streaming thread). */
    guint64 sent_packets, sent_bytes, dropped;
    guint64 pending_packets, pending_bytes; /* not yet counted in the agent */
};

enum { PROP_0, PROP_PACKETS_SENT = GST_SLUICE_PROP_LAST, PROP_PACKETS_DROPPED };

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

G_DEFINE_TYPE(GstIceSink, gst_ice_sink, GST_TYPE_BASE_SINK)
GST_ELEMENT_REGISTER_DEFINE(icesink, "icesink", GST_RANK_NONE, GST_TYPE_ICE_SINK)

static void gst_ice_sink_set_property(GObject *obj, guint id, const GValue *v, GParamSpec *ps)
{
    GstIceSink *self = GST_ICE_SINK(obj);
    if (!gst_sluice_session_set_property(&self->session, id, v))
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
}

static void gst_ice_sink_get_property(GObject *obj, guint id, GValue *v, GParamSpec *ps)
{
    GstIceSink *self = GST_ICE_SINK(obj);
    if (id == PROP_PACKETS_SENT) {
        GST_OBJECT_LOCK(self);
        g_value_set_uint64(v, self->sent_packets);
        GST_OBJECT_UNLOCK(self);
    } else if (id == PROP_PACKETS_DROPPED) {
        GST_OBJECT_LOCK(self);
        g_value_set_uint64(v, self->dropped);
        GST_OBJECT_UNLOCK(self);
    } else if (!gst_sluice_session_get_property(&self->session, id, v)) {
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    }
}

static gboolean gst_ice_sink_start(GstBaseSink *bsink)
{
    GstIceSink *self = GST_ICE_SINK(bsink);
    self->agent = gst_sluice_session_start(&self->session);
    if (!self->agent)
        return FALSE;
    self->cancel = g_cancellable_new();
    self->have_route = FALSE;
    self->route.generation = G_MAXUINT; /* never taken */
    self->dest_generation = G_MAXUINT;
    self->gso_off = g_getenv("SLUICE_NO_GSO") != NULL;
    self->sent_packets = self->sent_bytes = self->dropped = 0;
    self->pending_packets = self->pending_bytes = 0;
    return TRUE;
}

static void flush_counts(GstIceSink *self)
{
    if (self->pending_packets && self->agent)
        sluice_agent_count_sent(self->agent, self->session.stream, self->session.component,
                                self->pending_packets, self->pending_bytes);
    self->pending_packets = self->pending_bytes = 0;
}

static gboolean gst_ice_sink_stop(GstBaseSink *bsink)
{
    GstIceSink *self = GST_ICE_SINK(bsink);
    flush_counts(self);
    sluice_agent_route_clear(&self->route);
    self->have_route = FALSE;
    gst_sluice_session_stop(&self->session);
    g_clear_object(&self->agent);
    g_clear_object(&self->cancel);
    return TRUE;
}

static gboolean gst_ice_sink_unlock(GstBaseSink *bsink)
{
    GstIceSink *self = GST_ICE_SINK(bsink);
    if (self->cancel)
        g_cancellable_cancel(self->cancel);
    return TRUE;
}

static gboolean gst_ice_sink_unlock_stop(GstBaseSink *bsink)
{
    GstIceSink *self = GST_ICE_SINK(bsink);
    if (self->cancel && g_cancellable_is_cancelled(self->cancel)) {
        g_object_unref(self->cancel);
        self->cancel = g_cancellable_new();
    }
    return TRUE;
}

/* The route snapshot, taken again only when the agent's routes changed. */
static gboolean current_route(GstIceSink *self)
{
    if (gst_sluice_session_refresh_route(&self->session, self->agent, &self->route,
                                         &self->have_route) &&
        self->have_route)
        GST_DEBUG_OBJECT(self, "route changed (generation %u, framing %d)",
                         self->route.generation, self->route.route.framing);
    return self->have_route;
}

typedef struct {
    GstMapInfo maps[MAX_VECS];
    GstMemory *mems[MAX_VECS];
    guint n_maps;
    GstBuffer *merged; /* when the buffer had more memories than MAX_VECS */
} Mapped;

static gboolean map_buffer(GstBuffer *buf, Mapped *m, GOutputVector *vecs, guint *n_vecs,
                           gsize *size)
{
    guint n = gst_buffer_n_memory(buf);
    m->n_maps = 0;
    m->merged = NULL;
    *size = 0;
    if (n > MAX_VECS) {
        m->merged = gst_buffer_new();
        gst_buffer_append_memory(m->merged, gst_buffer_get_all_memory(buf));
        buf = m->merged;
        n = 1;
    }
    for (guint i = 0; i < n; i++) {
        GstMemory *mem = gst_buffer_peek_memory(buf, i);
        if (!gst_memory_map(mem, &m->maps[i], GST_MAP_READ)) {
            for (guint k = 0; k < m->n_maps; k++)
                gst_memory_unmap(m->mems[k], &m->maps[k]);
            gst_clear_buffer(&m->merged);
            return FALSE;
        }
        m->mems[i] = mem;
        m->n_maps++;
        vecs[*n_vecs].buffer = m->maps[i].data;
        vecs[*n_vecs].size = m->maps[i].size;
        (*n_vecs)++;
        *size += m->maps[i].size;
    }
    return TRUE;
}

static void unmap_buffer(Mapped *m)
{
    for (guint k = 0; k < m->n_maps; k++)
        gst_memory_unmap(m->mems[k], &m->maps[k]);
    m->n_maps = 0;
    gst_clear_buffer(&m->merged);
}

/* Wait until the route's socket takes bytes again: 1 when it does, 0 after
 * a second (the caller drops), -1 when unlock interrupted the wait. */
static gint wait_writable(GstIceSink *self)
{
    GError *err = NULL;
    if (g_socket_condition_timed_wait(self->route.socket, G_IO_OUT, G_USEC_PER_SEC, self->cancel,
                                      &err))
        return 1;
    if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        g_clear_error(&err);
        return -1;
    }
    GST_DEBUG_OBJECT(self, "socket not writable: %s", err ? err->message : "?");
    g_clear_error(&err);
    return 0;
}

/* Relayed over TCP: each framed datagram goes whole on the agent's
 * connection to the TURN server (shared with the agent's own requests, so
 * through sluice_agent_route_write(), which has its own lock). Returns how
 * many were written, or -1 when flushing. */
static gint write_stream(GstIceSink *self, GOutputMessage *msgs, guint nm)
{
    guint done = 0;
    while (done < nm) {
        GError *err = NULL;
        gint w;
        if (sluice_agent_route_write(&self->route, msgs[done].vectors, msgs[done].num_vectors,
                                     &err)) {
            done++;
            continue;
        }
        if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
            /* The connection is gone: the route changes with it. */
            GST_DEBUG_OBJECT(self, "write: %s", err->message);
            g_clear_error(&err);
            self->dropped += nm - done;
            break;
        }
        g_clear_error(&err);
        w = wait_writable(self);
        if (w < 0)
            return -1;
        if (w == 0) {
            self->dropped += nm - done;
            break;
        }
    }
    return (gint)done;
}

static gsize message_size(const GOutputMessage *m)
{
    gsize n = 0;
    for (guint i = 0; i < m->num_vectors; i++)
        n += m->vectors[i].size;
    return n;
}

/* UDP GSO: the longest run of datagrams from msgs[0] of one size (the last
 * may be shorter) leaves in one sendmsg() with UDP_SEGMENT, and the kernel
 * cuts it into datagrams: one trip through the socket layer for up to 64
 * datagrams instead of one each. Returns how many messages were sent (>= 2),
 * 0 when GSO does not apply (a run of one, GSO off, an error: send one
 * datagram the usual way), -1 when the socket buffer is full. */
static gint send_gso(GstIceSink *self, GOutputMessage *msgs, guint nm)
{
    struct iovec iov[GSO_MAX_SEGS * (MAX_VECS + 2)];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl;
    gsize seg = message_size(&msgs[0]), total = seg, last;
    guint run = 1, niov = 0;
    if (self->gso_off || nm < 2 || seg == 0)
        return 0;
    while (run < nm && run < GSO_MAX_SEGS && (last = message_size(&msgs[run])) <= seg &&
           last > 0 && total + last <= GSO_MAX_BYTES) {
        total += last;
        run++;
        if (last < seg)
            break; /* only the last segment may be shorter */
    }
    if (run < 2)
        return 0;
    if (self->dest_generation != self->route.generation) {
        self->dest_len = (socklen_t)g_socket_address_get_native_size(self->route.dest);
        if (!g_socket_address_to_native(self->route.dest, &self->dest, sizeof self->dest, NULL))
            return 0;
        self->dest_generation = self->route.generation;
    }
    for (guint m = 0; m < run; m++)
        for (guint v = 0; v < msgs[m].num_vectors; v++) {
            iov[niov].iov_base = (void *)msgs[m].vectors[v].buffer;
            iov[niov].iov_len = msgs[m].vectors[v].size;
            niov++;
        }
    struct msghdr mh = {
        .msg_name = &self->dest,
        .msg_namelen = self->dest_len,
        .msg_iov = iov,
        .msg_iovlen = niov,
        .msg_control = ctl.buf,
        .msg_controllen = sizeof ctl.buf,
    };
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t seg16 = (uint16_t)seg;
    memcpy(CMSG_DATA(c), &seg16, sizeof seg16);
    if (sendmsg(g_socket_get_fd(self->route.socket), &mh, MSG_DONTWAIT) >= 0)
        return (gint)run;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
        return -1;
    if (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP) {
        /* No GSO here (old kernel, a device without it): sendmmsg from now on. */
        GST_INFO_OBJECT(self, "UDP GSO unavailable (%s): using sendmmsg", g_strerror(errno));
        self->gso_off = TRUE;
        return 0;
    }
    /* Another error (an ICMP error reported late, say): nothing was sent;
     * the next datagram goes through sendmmsg, which reports it its way. */
    GST_DEBUG_OBJECT(self, "GSO send: %s", g_strerror(errno));
    return 0;
}

/* Send up to BATCH buffers starting at first; returns how many were
 * handled (sent or dropped), or -1 when flushing. */
static gint send_batch(GstIceSink *self, GstBuffer **bufs, guint n)
{
    GOutputMessage msgs[BATCH];
    GOutputVector vecs[BATCH * (MAX_VECS + 2)];
    Mapped maps[BATCH];
    guint8 hdrs[BATCH][4];
    static const guint8 zeros[4];
    const sluice_ice_route *r = &self->route.route;
    guint nv = 0, nm = 0, done = 0;
    GError *err = NULL;

    if (n > BATCH)
        n = BATCH;
    for (guint i = 0; i < n; i++) {
        gsize size;
        guint first = nv;
        if (r->framing == SLUICE_ICE_FRAMING_CHANNEL)
            nv++; /* the 4-byte ChannelData header goes first (RFC 8656 §12.4) */
        if (!map_buffer(bufs[i], &maps[nm], vecs, &nv, &size) || size > 65535) {
            self->dropped++;
            nv = first;
            continue;
        }
        if (r->framing == SLUICE_ICE_FRAMING_CHANNEL) {
            sluice_turn_channel_header(hdrs[nm], r->channel, (uint16_t)size);
            vecs[first].buffer = hdrs[nm];
            vecs[first].size = 4;
            if (r->pad && (size & 3)) {
                /* RFC 8656 §12.5: padded to 4 bytes over TCP. */
                vecs[nv].buffer = zeros;
                vecs[nv].size = 4 - (size & 3);
                nv++;
            }
        }
        msgs[nm].address = self->route.dest;
        msgs[nm].vectors = &vecs[first];
        msgs[nm].num_vectors = nv - first;
        msgs[nm].bytes_sent = 0;
        msgs[nm].control_messages = NULL;
        msgs[nm].num_control_messages = 0;
        self->sent_bytes += size;
        self->pending_bytes += size;
        nm++;
    }
    if (r->transport != SLUICE_TRANSPORT_UDP) {
        gint k = write_stream(self, msgs, nm);
        if (k < 0) {
            for (guint i = 0; i < nm; i++)
                unmap_buffer(&maps[i]);
            return -1;
        }
        done = (guint)k;
    }
    while (r->transport == SLUICE_TRANSPORT_UDP && done < nm) {
        gint g = send_gso(self, msgs + done, nm - done);
        if (g > 0) {
            done += (guint)g;
            continue;
        }
        gint k = g == -1 ? -1
                         : g_socket_send_messages(self->route.socket, msgs + done,
                                                  self->gso_off ? nm - done : 1, 0,
                                                  self->cancel, &err);
        if (g == -1)
            g_set_error_literal(&err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "socket buffer full");
        if (k > 0) {
            done += (guint)k;
            continue;
        }
        if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
            /* The socket buffer is full: wait until it drains (or flush). */
            gint w;
            g_clear_error(&err);
            w = wait_writable(self);
            if (w < 0) {
                for (guint i = 0; i < nm; i++)
                    unmap_buffer(&maps[i]);
                return -1;
            }
            if (w == 0) {
                self->dropped += nm - done;
                break;
            }
            continue;
        }
        if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            g_clear_error(&err);
            for (guint i = 0; i < nm; i++)
                unmap_buffer(&maps[i]);
            return -1;
        }
        /* An ICMP error from the peer and the like: this datagram is lost,
         * consent freshness decides about the path. */
        GST_DEBUG_OBJECT(self, "send: %s", err ? err->message : "?");
        g_clear_error(&err);
        self->dropped++;
        done++;
    }
    for (guint i = 0; i < nm; i++)
        unmap_buffer(&maps[i]);
    self->sent_packets += done;
    self->pending_packets += done;
    return (gint)n;
}

static GstFlowReturn render_buffers(GstIceSink *self, GstBuffer **bufs, guint n)
{
    guint i = 0;
    if (!current_route(self)) {
        /* Not connected yet, or consent lost (RFC 7675 §5.1): drop. */
        GST_LOG_OBJECT(self, "no route: %u buffers dropped (agent %p gen %u/%u)", n, self->agent,
                       self->route.generation, sluice_agent_route_generation(self->agent));
        GST_OBJECT_LOCK(self);
        self->dropped += n;
        GST_OBJECT_UNLOCK(self);
        return GST_FLOW_OK;
    }
    if (self->route.route.framing == SLUICE_ICE_FRAMING_SEND) {
        /* Relayed without a channel yet, or over TLS: the core wraps (and
         * encrypts). Over TCP/TLS a backed-up connection makes it wait. */
        for (; i < n; i++) {
            GstMapInfo map;
            if (!gst_buffer_map(bufs[i], &map, GST_MAP_READ))
                continue;
            for (;;) {
                GError *err = NULL;
                gint w;
                if (sluice_agent_send_framed(self->agent, self->session.stream,
                                             self->session.component, map.data, map.size,
                                             &err) >= 0) {
                    self->sent_packets++;
                    break;
                }
                if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
                    g_clear_error(&err);
                    self->dropped++;
                    break;
                }
                g_clear_error(&err);
                w = wait_writable(self);
                if (w < 0) {
                    gst_buffer_unmap(bufs[i], &map);
                    return GST_FLOW_FLUSHING;
                }
                if (w == 0) {
                    self->dropped++;
                    break;
                }
            }
            gst_buffer_unmap(bufs[i], &map);
        }
        return GST_FLOW_OK;
    }
    while (i < n) {
        gint k = send_batch(self, bufs + i, n - i);
        if (k < 0)
            return GST_FLOW_FLUSHING;
        i += (guint)k;
    }
    /* Statistics and the keepalive timer of the agent, once per call. */
    flush_counts(self);
    return GST_FLOW_OK;
}

static GstFlowReturn gst_ice_sink_render(GstBaseSink *bsink, GstBuffer *buf)
{
    return render_buffers(GST_ICE_SINK(bsink), &buf, 1);
}

static GstFlowReturn gst_ice_sink_render_list(GstBaseSink *bsink, GstBufferList *list)
{
    guint n = gst_buffer_list_length(list);
    GstBuffer *bufs[BATCH];
    GstFlowReturn ret = GST_FLOW_OK;
    for (guint i = 0; i < n && ret == GST_FLOW_OK; i += BATCH) {
        guint k = MIN(BATCH, n - i);
        for (guint j = 0; j < k; j++)
            bufs[j] = gst_buffer_list_get(list, i + j);
        ret = render_buffers(GST_ICE_SINK(bsink), bufs, k);
    }
    return ret;
}

static void gst_ice_sink_finalize(GObject *obj)
{
    GstIceSink *self = GST_ICE_SINK(obj);
    gst_sluice_session_clear(&self->session);
    G_OBJECT_CLASS(gst_ice_sink_parent_class)->finalize(obj);
}

static void gst_ice_sink_class_init(GstIceSinkClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GstElementClass *ec = GST_ELEMENT_CLASS(klass);
    GstBaseSinkClass *bc = GST_BASE_SINK_CLASS(klass);

    GST_DEBUG_CATEGORY_INIT(ice_sink_debug, "icesink", 0, "sluice ICE sink");
    oc->set_property = gst_ice_sink_set_property;
    oc->get_property = gst_ice_sink_get_property;
    oc->finalize = gst_ice_sink_finalize;
    gst_sluice_session_install_properties(oc);
    g_object_class_install_property(
        oc, PROP_PACKETS_SENT,
        g_param_spec_uint64("packets-sent", "Packets sent", "Datagrams sent to the peer", 0,
                            G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
    g_object_class_install_property(
        oc, PROP_PACKETS_DROPPED,
        g_param_spec_uint64("packets-dropped", "Packets dropped",
                            "Buffers dropped: no route yet, consent lost, or send errors", 0,
                            G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

    gst_element_class_add_static_pad_template(ec, &sink_template);
    gst_element_class_set_static_metadata(
        ec, "ICE sink", "Sink/Network",
        "Sends data to an ICE peer through the sluice agent's selected pair (direct or relayed "
        "through TURN)",
        "sluice developers");
    bc->start = gst_ice_sink_start;
    bc->stop = gst_ice_sink_stop;
    bc->unlock = gst_ice_sink_unlock;
    bc->unlock_stop = gst_ice_sink_unlock_stop;
    bc->render = gst_ice_sink_render;
    bc->render_list = gst_ice_sink_render_list;
}

static void gst_ice_sink_init(GstIceSink *self)
{
    gst_sluice_session_init(&self->session, GST_ELEMENT(self));
    /* A network sink: neither clock sync nor preroll (like nicesink). */
    gst_base_sink_set_sync(GST_BASE_SINK(self), FALSE);
    gst_base_sink_set_async_enabled(GST_BASE_SINK(self), FALSE);
}
