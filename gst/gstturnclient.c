/* SPDX-License-Identifier: MIT */
/* turnclient: one TURN allocation (SluiceTurnAllocation, src/gio) as an
 * element. Sink-pad buffers go to peer-address through the relay; what the
 * peer sends back is pushed out of the src pad from the pad's own task. */

/**
 * SECTION:element-turnclient
 * @title: turnclient
 *
 * Allocates a relayed transport address on a TURN server (RFC 8656) over
 * UDP, TCP or TLS, binds a channel to #GstTurnClient:peer-address, sends
 * every buffer that reaches the sink pad to that peer through the relay as
 * one datagram, and pushes each datagram from peers out of the src pad.
 *
 * The relayed address is the read-only #GstTurnClient:relayed-address
 * property and the element message "sluice-turn-allocated" on the bus.
 * Failures a user can act on (wrong credentials, no answer, a full quota,
 * TLS verification) are posted as errors with the reason.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 audiotestsrc num-buffers=100 ! audio/x-raw,rate=8000 ! \
 *     turnclient server=turn:127.0.0.1:3478 username=alice password=secret \
 *     peer-address=127.0.0.1:5000 ! fakesink
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <sys/socket.h>

#include "gstsluiceelements.h"
#include "gstturnclient.h"
#include "sluice-gio.h"

GST_DEBUG_CATEGORY_STATIC (gst_turn_client_debug);
#define GST_CAT_DEFAULT gst_turn_client_debug

/* Datagrams from peers waiting for the src pad task; beyond this they are
 * dropped (and counted) rather than buffered without bound. */
#define MAX_QUEUED_BUFFERS 1024
#define MAX_QUEUED_BYTES (4 * 1024 * 1024)

#define DEFAULT_TRANSPORT SLUICE_TURN_ALLOCATION_TRANSPORT_AUTO
#define DEFAULT_FAMILY SLUICE_TURN_ALLOCATION_FAMILY_IPV4
#define DEFAULT_LINGER_MS 500

enum
{
  PROP_0,
  PROP_SERVER,
  PROP_TRANSPORT,
  PROP_USERNAME,
  PROP_PASSWORD,
  PROP_ADDRESS_FAMILY,
  PROP_PEER_ADDRESS,
  PROP_CA_FILE,
  PROP_TLS_VERIFY,
  PROP_LIFETIME,
  PROP_CAPS,
  PROP_LINGER,
  PROP_RELAYED_ADDRESS,
  PROP_MAPPED_ADDRESS,
  PROP_STATS,
};

/* What the allocation's handlers hold: a weak reference, so a handler
 * running on the context thread never keeps a dead element. */
typedef struct
{
  gint ref;
  GWeakRef element;
} ClientRef;

struct _GstTurnClient
{
  GstElement parent;

  GstPad *sinkpad, *srcpad;

  /* Properties, under the object lock. */
  gchar *server, *username, *password, *peer_address, *ca_file;
  SluiceTurnAllocationTransport transport;
  SluiceTurnAllocationFamily family;
  gboolean tls_verify;
  guint lifetime, linger_ms;
  GstCaps *caps;
  gchar *relayed_address, *mapped_address;

  /* The running allocation and the data path, under `lock`. */
  GMutex lock;
  GCond cond;
  SluiceTurnAllocation *alloc;
  ClientRef *cref;
  sluice_addr peer;
  GSocketAddress *peer_gaddr;
  gboolean have_peer, warned_no_peer, warned_send;
  gboolean ready;               /* the channel to the peer is bound */
  gboolean failed;              /* the allocation failed or was lost */
  gboolean sink_flushing, src_flushing;
  GQueue queue;                 /* GstBuffer, for the src pad task */
  gsize queued_bytes;
  gint64 eos_at;                /* monotonic: EOS goes out then (0: no EOS) */
  gboolean need_stream_start, need_segment;
  guint64 tx_dropped, rx_dropped;
};

#define gst_turn_client_parent_class parent_class
G_DEFINE_TYPE (GstTurnClient, gst_turn_client, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (turnclient, "turnclient",
    GST_RANK_NONE, GST_TYPE_TURN_CLIENT,
    GST_DEBUG_CATEGORY_INIT (gst_turn_client_debug, "turnclient", 0,
        "sluice TURN client element"));

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

/* ------------------------------------------------------------------------ */
/* Helpers */

static ClientRef *
client_ref_new (GstTurnClient * self)
{
  ClientRef *r = g_new0 (ClientRef, 1);

  r->ref = 1;
  g_weak_ref_init (&r->element, self);
  return r;
}

static ClientRef *
client_ref_ref (ClientRef * r)
{
  g_atomic_int_inc (&r->ref);
  return r;
}

static void
client_ref_unref (gpointer p)
{
  ClientRef *r = p;

  if (g_atomic_int_dec_and_test (&r->ref)) {
    g_weak_ref_clear (&r->element);
    g_free (r);
  }
}

static void
client_ref_closure_notify (gpointer data, GClosure * closure)
{
  client_ref_unref (data);
}

/* The element behind a handler's ClientRef when it still exists and alloc
 * is still its allocation (not one from an earlier run); a new reference. */
static GstTurnClient *
client_ref_get (ClientRef * r, SluiceTurnAllocation * alloc)
{
  GstTurnClient *self = g_weak_ref_get (&r->element);

  if (!self)
    return NULL;
  g_mutex_lock (&self->lock);
  if (self->alloc != alloc) {
    g_mutex_unlock (&self->lock);
    gst_object_unref (self);
    return NULL;
  }
  g_mutex_unlock (&self->lock);
  return self;
}

static gchar *
format_gaddr (GSocketAddress * a)
{
  GInetAddress *ia;
  gchar *ip, *s;
  guint16 port;

  if (!a || !G_IS_INET_SOCKET_ADDRESS (a))
    return NULL;
  ia = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (a));
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (a));
  ip = g_inet_address_to_string (ia);
  if (g_inet_address_get_family (ia) == G_SOCKET_FAMILY_IPV6)
    s = g_strdup_printf ("[%s]:%u", ip, port);
  else
    s = g_strdup_printf ("%s:%u", ip, port);
  g_free (ip);
  return s;
}

static gboolean
same_peer (GstTurnClient * self, GSocketAddress * a)
{
  sluice_addr pa;

  return sluice_turn_allocation_peer_from_gsocket (&pa, a) &&
      sluice_addr_equal (&pa, &self->peer);
}

/* peer-address: "IP:PORT", "[IPv6]:PORT" or "HOST:PORT" (resolved now,
 * blocking, preferring the relayed address family). A new address. */
static GSocketAddress *
parse_peer (GstTurnClient * self, const gchar * text, GError ** error)
{
  GSocketConnectable *na;
  GResolver *r;
  GList *list, *l;
  GSocketAddress *out = NULL;
  struct sockaddr_storage ss;
  sluice_addr a;
  guint16 port;
  int n;

  if (sluice_addr_parse (&a, text, 0) == 0 && a.port != 0 &&
      (n = sluice_addr_to_sockaddr (&a, &ss, sizeof ss)) > 0)
    return g_socket_address_new_from_native (&ss, (gsize) n);
  na = g_network_address_parse (text, 0, error);
  if (!na)
    return NULL;
  port = g_network_address_get_port (G_NETWORK_ADDRESS (na));
  if (port == 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "peer-address \"%s\" has no port", text);
    g_object_unref (na);
    return NULL;
  }
  r = g_resolver_get_default ();
  list = g_resolver_lookup_by_name (r,
      g_network_address_get_hostname (G_NETWORK_ADDRESS (na)), NULL, error);
  for (l = list; l && !out; l = l->next) {
    gboolean v6 = g_inet_address_get_family (l->data) == G_SOCKET_FAMILY_IPV6;

    if (self->family == SLUICE_TURN_ALLOCATION_FAMILY_DUAL ||
        v6 == (self->family == SLUICE_TURN_ALLOCATION_FAMILY_IPV6))
      out = g_inet_socket_address_new (l->data, port);
  }
  if (list && !out)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
        "peer-address \"%s\" has no address of the relayed family", text);
  g_resolver_free_addresses (list);
  g_object_unref (r);
  g_object_unref (na);
  return out;
}

/* Post an error whose domain code is only known at run time, with the STUN
 * error code and the sluice error kind in the details. */
static void
post_error (GstTurnClient * self, gint code, const gchar * text,
    guint stun_code, const GError * err)
{
  const gchar *kind = "failed";
  GstStructure *details;

  if (err && err->domain == SLUICE_TURN_ALLOCATION_ERROR) {
    static const gchar *const names[] = { "auth", "forbidden", "quota",
      "unsupported", "timeout", "tls", "network", "server", "failed"
    };
    if (err->code >= 0 && (guint) err->code < G_N_ELEMENTS (names))
      kind = names[err->code];
  }
  details = gst_structure_new ("details", "stun-error-code", G_TYPE_UINT,
      stun_code, "sluice-error", G_TYPE_STRING, kind, NULL);
  gst_element_message_full_with_details (GST_ELEMENT (self),
      GST_MESSAGE_ERROR, GST_RESOURCE_ERROR, code, g_strdup (text),
      g_strdup_printf ("server %s, STUN error code %u, kind %s",
          self->server ? self->server : "(none)", stun_code, kind),
      __FILE__, GST_FUNCTION, __LINE__, details);
}

static gint
resource_code (const GError * err)
{
  if (!err || err->domain != SLUICE_TURN_ALLOCATION_ERROR)
    return GST_RESOURCE_ERROR_FAILED;
  switch (err->code) {
    case SLUICE_TURN_ALLOCATION_ERROR_AUTH:
    case SLUICE_TURN_ALLOCATION_ERROR_FORBIDDEN:
      return GST_RESOURCE_ERROR_NOT_AUTHORIZED;
    case SLUICE_TURN_ALLOCATION_ERROR_QUOTA:
      return GST_RESOURCE_ERROR_NO_SPACE_LEFT;
    case SLUICE_TURN_ALLOCATION_ERROR_UNSUPPORTED:
      return GST_RESOURCE_ERROR_SETTINGS;
    case SLUICE_TURN_ALLOCATION_ERROR_TIMEOUT:
    case SLUICE_TURN_ALLOCATION_ERROR_TLS:
    case SLUICE_TURN_ALLOCATION_ERROR_NETWORK:
      return GST_RESOURCE_ERROR_OPEN_READ_WRITE;
    default:
      return GST_RESOURCE_ERROR_FAILED;
  }
}

static void
set_failed (GstTurnClient * self)
{
  g_mutex_lock (&self->lock);
  self->failed = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

/* ------------------------------------------------------------------------ */
/* The allocation's signals: on its context thread, no lock held. */

static void
on_allocated (SluiceTurnAllocation * alloc, GSocketAddress * relayed,
    GSocketAddress * mapped, guint lifetime, gpointer data)
{
  GstTurnClient *self = client_ref_get (data, alloc);
  GSocketAddress *relayed6;
  GSocketAddress *peer = NULL;
  GstStructure *s;
  gchar *r, *m, *r6, *transport;
  GError *err = NULL;
  gboolean have_peer;

  if (!self)
    return;
  r = format_gaddr (relayed);
  m = format_gaddr (mapped);
  relayed6 = sluice_turn_allocation_get_relayed_address (alloc, 1);
  r6 = format_gaddr (relayed6);
  g_clear_object (&relayed6);
  GST_INFO_OBJECT (self, "allocated: relayed %s%s%s, mapped %s, lifetime %u s",
      r, r6 ? " and " : "", r6 ? r6 : "", m, lifetime);

  GST_OBJECT_LOCK (self);
  g_free (self->relayed_address);
  g_free (self->mapped_address);
  self->relayed_address = g_strdup (r);
  self->mapped_address = g_strdup (m);
  GST_OBJECT_UNLOCK (self);
  g_object_notify (G_OBJECT (self), "relayed-address");
  g_object_notify (G_OBJECT (self), "mapped-address");

  {
    GEnumClass *ec = g_type_class_ref (SLUICE_TYPE_TURN_ALLOCATION_TRANSPORT);
    GSocketAddress *srv = sluice_turn_allocation_get_server_address (alloc);
    gchar *srv_s = format_gaddr (srv);
    gint t = sluice_turn_allocation_get_transport (alloc);

    transport = g_strdup (g_enum_get_value (ec, t)->value_nick);
    s = gst_structure_new ("sluice-turn-allocated",
        "relayed-address", G_TYPE_STRING, r,
        "mapped-address", G_TYPE_STRING, m,
        "lifetime", G_TYPE_UINT, lifetime,
        "server", G_TYPE_STRING, srv_s,
        "transport", G_TYPE_STRING, transport, NULL);
    if (r6)
      gst_structure_set (s, "relayed-address-ipv6", G_TYPE_STRING, r6, NULL);
    g_free (srv_s);
    g_clear_object (&srv);
    g_type_class_unref (ec);
  }
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));

  g_mutex_lock (&self->lock);
  have_peer = self->have_peer;
  if (have_peer)
    peer = g_object_ref (self->peer_gaddr);
  g_mutex_unlock (&self->lock);
  if (have_peer && !sluice_turn_allocation_bind_channel (alloc, peer, &err)) {
    if (g_error_matches (err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE)) {
      /* Stopped meanwhile (closing): nothing to report. */
      GST_DEBUG_OBJECT (self, "no channel: %s", err->message);
    } else {
      gchar *p = format_gaddr (peer);
      gchar *text = g_strdup_printf ("Cannot send to peer-address %s through "
          "the relay %s: %s%s", p, r, err->message,
          g_error_matches (err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID) ?
          " (set address-family to the peer's family)" : "");

      post_error (self, GST_RESOURCE_ERROR_SETTINGS, text, 0, NULL);
      set_failed (self);
      g_free (text);
      g_free (p);
    }
    g_clear_error (&err);
  }
  g_clear_object (&peer);
  g_free (transport);
  g_free (r);
  g_free (r6);
  g_free (m);
  gst_object_unref (self);
}

static void
on_failed (SluiceTurnAllocation * alloc, guint code, GError * err,
    gpointer data)
{
  GstTurnClient *self = client_ref_get (data, alloc);

  if (!self)
    return;
  GST_WARNING_OBJECT (self, "allocation failed: %s", err->message);
  post_error (self, resource_code (err), err->message, code, err);
  set_failed (self);
  gst_object_unref (self);
}

static void
on_lost (SluiceTurnAllocation * alloc, guint code, GError * err,
    gpointer data)
{
  GstTurnClient *self = client_ref_get (data, alloc);
  gchar *text;

  if (!self)
    return;
  GST_WARNING_OBJECT (self, "allocation lost: %s", err->message);
  text = g_strdup_printf ("TURN allocation lost: %s", err->message);
  post_error (self, resource_code (err), text, code, err);
  set_failed (self);
  g_free (text);
  gst_object_unref (self);
}

static void
on_refreshed (SluiceTurnAllocation * alloc, guint lifetime, gpointer data)
{
  GstTurnClient *self = client_ref_get (data, alloc);

  if (!self)
    return;
  GST_DEBUG_OBJECT (self, "refreshed: lifetime %u s", lifetime);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self),
          gst_structure_new ("sluice-turn-refreshed", "lifetime", G_TYPE_UINT,
              lifetime, NULL)));
  gst_object_unref (self);
}

static void
on_channel_bound (SluiceTurnAllocation * alloc, GSocketAddress * peer,
    guint channel, gpointer data)
{
  GstTurnClient *self = client_ref_get (data, alloc);
  gchar *p;

  if (!self)
    return;
  p = format_gaddr (peer);
  GST_INFO_OBJECT (self, "channel 0x%04x bound to %s", channel, p);
  g_mutex_lock (&self->lock);
  if (self->have_peer && same_peer (self, peer)) {
    self->ready = TRUE;
    g_cond_broadcast (&self->cond);
  }
  g_mutex_unlock (&self->lock);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self),
          gst_structure_new ("sluice-turn-channel-bound",
              "peer-address", G_TYPE_STRING, p,
              "channel", G_TYPE_UINT, channel, NULL)));
  g_free (p);
  gst_object_unref (self);
}

static void
on_peer_failed (SluiceTurnAllocation * alloc, GSocketAddress * peer,
    guint code, GError * err, gpointer data)
{
  GstTurnClient *self = client_ref_get (data, alloc);
  gchar *p, *text;

  if (!self)
    return;
  p = format_gaddr (peer);
  text = g_strdup_printf ("The TURN server refused a channel to peer-address "
      "%s: %s", p, err->message);
  post_error (self, resource_code (err), text, code, err);
  set_failed (self);
  g_free (text);
  g_free (p);
  gst_object_unref (self);
}

static void
on_redirected (SluiceTurnAllocation * alloc, GSocketAddress * server,
    gpointer data)
{
  GstTurnClient *self = client_ref_get (data, alloc);
  gchar *s;

  if (!self)
    return;
  s = format_gaddr (server);
  GST_INFO_OBJECT (self, "redirected to %s (300 Try Alternate)", s);
  g_free (s);
  gst_object_unref (self);
}

/* Peer data, on the context thread: queued for the src pad task. */
static void
on_data (SluiceTurnAllocation * alloc, const sluice_addr * peer,
    const guint8 * data, gsize len, gpointer user)
{
  GstTurnClient *self = client_ref_get (user, alloc);
  GstBuffer *buf;
  GstClock *clock;

  if (!self)
    return;
  buf = gst_buffer_new_allocate (NULL, len, NULL);
  gst_buffer_fill (buf, 0, data, len);
  /* Arrival time as running time, as udpsrc does for a live source. */
  if ((clock = gst_element_get_clock (GST_ELEMENT (self)))) {
    GstClockTime now = gst_clock_get_time (clock);
    GstClockTime base = gst_element_get_base_time (GST_ELEMENT (self));

    if (GST_CLOCK_TIME_IS_VALID (now) && GST_CLOCK_TIME_IS_VALID (base) &&
        now >= base)
      GST_BUFFER_PTS (buf) = now - base;
    gst_object_unref (clock);
  }
  g_mutex_lock (&self->lock);
  if (self->src_flushing || g_queue_get_length (&self->queue) >=
      MAX_QUEUED_BUFFERS || self->queued_bytes + len > MAX_QUEUED_BYTES) {
    self->rx_dropped++;
    g_mutex_unlock (&self->lock);
    GST_LOG_OBJECT (self, "dropped %" G_GSIZE_FORMAT " bytes: queue full "
        "or flushing", len);
    gst_buffer_unref (buf);
  } else {
    g_queue_push_tail (&self->queue, buf);
    self->queued_bytes += len;
    g_cond_broadcast (&self->cond);
    g_mutex_unlock (&self->lock);
  }
  gst_object_unref (self);
}

/* ------------------------------------------------------------------------ */
/* Starting and stopping the allocation */

static gboolean
gst_turn_client_start (GstTurnClient * self)
{
  SluiceTurnAllocation *alloc;
  ClientRef *cref;
  sluice_addr peer;
  GSocketAddress *peer_gaddr = NULL;
  gchar *peer_text;
  GError *err = NULL;

  GST_OBJECT_LOCK (self);
  alloc = g_object_new (SLUICE_TYPE_TURN_ALLOCATION,
      "server", self->server, "username", self->username,
      "password", self->password, "transport", self->transport,
      "family", self->family, "ca-file", self->ca_file,
      "tls-verify", self->tls_verify, "lifetime", self->lifetime,
      "software", "sluice turnclient", NULL);
  peer_text = g_strdup (self->peer_address);
  g_free (self->relayed_address);
  g_free (self->mapped_address);
  self->relayed_address = self->mapped_address = NULL;
  GST_OBJECT_UNLOCK (self);

  memset (&peer, 0, sizeof peer);
  if (peer_text && *peer_text) {
    peer_gaddr = parse_peer (self, peer_text, &err);
    if (!peer_gaddr || !sluice_turn_allocation_peer_from_gsocket (&peer,
            peer_gaddr)) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("Bad peer-address \"%s\": %s", peer_text,
              err ? err->message : "not an IP address"),
          ("expected IP:PORT, [IPv6]:PORT or HOST:PORT"));
      goto error;
    }
  }

  cref = client_ref_new (self);
  g_mutex_lock (&self->lock);
  self->alloc = alloc;
  self->cref = cref;
  self->peer = peer;
  g_clear_object (&self->peer_gaddr);
  self->peer_gaddr = peer_gaddr;
  self->have_peer = peer_gaddr != NULL;
  peer_gaddr = NULL;
  self->warned_no_peer = self->warned_send = FALSE;
  self->ready = self->failed = FALSE;
  self->sink_flushing = self->src_flushing = FALSE;
  self->eos_at = 0;
  self->need_stream_start = self->need_segment = TRUE;
  self->tx_dropped = self->rx_dropped = 0;
  g_mutex_unlock (&self->lock);

#define CONNECT(name, fn) \
  g_signal_connect_data (alloc, name, G_CALLBACK (fn), client_ref_ref (cref), \
      client_ref_closure_notify, 0)
  CONNECT ("allocated", on_allocated);
  CONNECT ("failed", on_failed);
  CONNECT ("lost", on_lost);
  CONNECT ("refreshed", on_refreshed);
  CONNECT ("channel-bound", on_channel_bound);
  CONNECT ("peer-failed", on_peer_failed);
  CONNECT ("redirected", on_redirected);
#undef CONNECT
  sluice_turn_allocation_set_recv_func (alloc, on_data, client_ref_ref (cref),
      client_ref_unref);

  if (!sluice_turn_allocation_start (alloc, &err)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", err->message),
        ("server \"%s\"", GST_STR_NULL (self->server)));
    goto error;
  }
  GST_INFO_OBJECT (self, "allocating on %s, peer %s", self->server,
      GST_STR_NULL (peer_text));
  g_free (peer_text);
  return TRUE;

error:
  g_mutex_lock (&self->lock);
  self->alloc = NULL;
  cref = self->cref;
  self->cref = NULL;
  g_mutex_unlock (&self->lock);
  if (cref) {
    g_signal_handlers_disconnect_by_data (alloc, cref);
    sluice_turn_allocation_set_recv_func (alloc, NULL, NULL, NULL);
    client_ref_unref (cref);
  }
  g_object_unref (alloc);
  g_clear_object (&peer_gaddr);
  g_clear_error (&err);
  g_free (peer_text);
  return FALSE;
}

static void
gst_turn_client_stop (GstTurnClient * self)
{
  SluiceTurnAllocation *alloc;
  ClientRef *cref;
  GstBuffer *buf;

  g_mutex_lock (&self->lock);
  alloc = self->alloc;
  cref = self->cref;
  self->alloc = NULL;
  self->cref = NULL;
  self->ready = FALSE;
  while ((buf = g_queue_pop_head (&self->queue)))
    gst_buffer_unref (buf);
  self->queued_bytes = 0;
  g_mutex_unlock (&self->lock);
  if (!alloc)
    return;
  /* No lock of ours is held: a handler running now on the context thread
   * finishes first (it sees alloc is no longer ours and returns). */
  g_signal_handlers_disconnect_by_data (alloc, cref);
  sluice_turn_allocation_set_recv_func (alloc, NULL, NULL, NULL);
  client_ref_unref (cref);
  /* Deletes the allocation; the object lives on until the server
   * confirmed (2 s at most), on the shared context. */
  sluice_turn_allocation_close (alloc);
  g_object_unref (alloc);
  GST_INFO_OBJECT (self, "stopped");
}

static void
set_flushing (GstTurnClient * self, gboolean sink, gboolean src)
{
  g_mutex_lock (&self->lock);
  self->sink_flushing = sink;
  self->src_flushing = src;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static GstStateChangeReturn
gst_turn_client_change_state (GstElement * element, GstStateChange transition)
{
  GstTurnClient *self = GST_TURN_CLIENT (element);
  GstStateChangeReturn ret;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!gst_turn_client_start (self))
        return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      /* Wake a chain waiting for the channel and the src task before the
       * pads are deactivated (which waits for both). */
      set_flushing (self, TRUE, TRUE);
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    if (transition == GST_STATE_CHANGE_READY_TO_PAUSED)
      gst_turn_client_stop (self);
    return ret;
  }

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
      /* Data from the peer comes when it comes: like udpsrc, no preroll. */
      ret = GST_STATE_CHANGE_NO_PREROLL;
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      gst_turn_client_stop (self);
      break;
    default:
      break;
  }
  return ret;
}

/* ------------------------------------------------------------------------ */
/* Sink pad: to the peer through the relay */

static GstFlowReturn
gst_turn_client_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstTurnClient *self = GST_TURN_CLIENT (parent);
  SluiceTurnAllocation *alloc;
  GstMapInfo map;
  GError *err = NULL;
  sluice_addr peer;

  g_mutex_lock (&self->lock);
  if (!self->have_peer) {
    gboolean warn = !self->warned_no_peer;

    self->warned_no_peer = TRUE;
    g_mutex_unlock (&self->lock);
    if (warn)
      GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
          ("No peer-address set: sink-pad data is dropped"), (NULL));
    gst_buffer_unref (buf);
    return GST_FLOW_OK;
  }
  /* Until the channel is bound; bounded by the allocation's own timeouts
   * (it fails within 40 s without an answer) and by flushing. */
  while (!self->ready && !self->failed && !self->sink_flushing) {
    GST_LOG_OBJECT (self, "waiting for the channel to the peer");
    g_cond_wait (&self->cond, &self->lock);
  }
  if (self->sink_flushing) {
    g_mutex_unlock (&self->lock);
    gst_buffer_unref (buf);
    return GST_FLOW_FLUSHING;
  }
  if (self->failed || !self->alloc) {
    g_mutex_unlock (&self->lock);
    gst_buffer_unref (buf);
    return GST_FLOW_ERROR;      /* the error message is on the bus */
  }
  alloc = g_object_ref (self->alloc);
  peer = self->peer;
  g_mutex_unlock (&self->lock);

  if (!gst_buffer_map (buf, &map, GST_MAP_READ)) {
    g_object_unref (alloc);
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Cannot map a buffer"), (NULL));
    return GST_FLOW_ERROR;
  }
  if (!sluice_turn_allocation_send (alloc, &peer, map.data, map.size, &err)) {
    gboolean warn;

    g_mutex_lock (&self->lock);
    self->tx_dropped++;
    /* A buffer that can never be sent (too large) is worth one warning;
     * a full socket is counted in stats. */
    warn = !self->warned_send &&
        g_error_matches (err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID);
    if (warn)
      self->warned_send = TRUE;
    g_mutex_unlock (&self->lock);
    if (warn)
      GST_ELEMENT_WARNING (self, RESOURCE, WRITE,
          ("Dropped a %" G_GSIZE_FORMAT "-byte buffer: %s", map.size,
              err->message), ("later ones are counted in stats only"));
    else
      GST_LOG_OBJECT (self, "dropped %" G_GSIZE_FORMAT " bytes: %s",
          map.size, err->message);
    g_clear_error (&err);
  }
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);
  g_object_unref (alloc);
  return GST_FLOW_OK;
}

static gboolean
gst_turn_client_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstTurnClient *self = GST_TURN_CLIENT (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_START:
      g_mutex_lock (&self->lock);
      self->sink_flushing = TRUE;
      g_cond_broadcast (&self->cond);
      g_mutex_unlock (&self->lock);
      break;
    case GST_EVENT_FLUSH_STOP:
      g_mutex_lock (&self->lock);
      self->sink_flushing = FALSE;
      self->eos_at = 0;
      g_mutex_unlock (&self->lock);
      break;
    case GST_EVENT_EOS:{
      gint64 linger;

      /* End the src side too, once the answers to the last datagrams had
       * `linger` to come back. */
      GST_OBJECT_LOCK (self);
      linger = (gint64) self->linger_ms * 1000;
      GST_OBJECT_UNLOCK (self);
      g_mutex_lock (&self->lock);
      if (!self->eos_at) {
        self->eos_at = MAX (g_get_monotonic_time () + linger, 1);
        g_cond_broadcast (&self->cond);
      }
      g_mutex_unlock (&self->lock);
      break;
    }
    default:
      break;
  }
  /* The src pad carries other data with its own events: nothing of the
   * sink side is forwarded. */
  gst_event_unref (event);
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Src pad: the peer's datagrams, from the pad's task */

static void
push_sticky (GstTurnClient * self)
{
  GstCaps *caps;
  GstSegment seg;

  if (self->need_stream_start) {
    gchar *id = gst_pad_create_stream_id (self->srcpad, GST_ELEMENT (self),
        NULL);

    gst_pad_push_event (self->srcpad, gst_event_new_stream_start (id));
    g_free (id);
    self->need_stream_start = FALSE;
  }
  GST_OBJECT_LOCK (self);
  caps = self->caps ? gst_caps_ref (self->caps) : NULL;
  GST_OBJECT_UNLOCK (self);
  if (caps) {
    if (!gst_pad_has_current_caps (self->srcpad))
      gst_pad_push_event (self->srcpad, gst_event_new_caps (caps));
    gst_caps_unref (caps);
  }
  if (self->need_segment) {
    gst_segment_init (&seg, GST_FORMAT_TIME);
    gst_pad_push_event (self->srcpad, gst_event_new_segment (&seg));
    self->need_segment = FALSE;
  }
}

static void
gst_turn_client_loop (gpointer data)
{
  GstTurnClient *self = data;
  GstBuffer *buf;
  GstFlowReturn ret;

  g_mutex_lock (&self->lock);
  for (buf = NULL;;) {
    if (self->src_flushing) {
      g_mutex_unlock (&self->lock);
      gst_pad_pause_task (self->srcpad);
      return;
    }
    if (self->eos_at && g_get_monotonic_time () >= self->eos_at)
      break;                    /* lingered long enough: EOS */
    if ((buf = g_queue_pop_head (&self->queue))) {
      self->queued_bytes -= gst_buffer_get_size (buf);
      break;
    }
    if (self->eos_at)
      g_cond_wait_until (&self->cond, &self->lock, self->eos_at);
    else
      g_cond_wait (&self->cond, &self->lock);
  }
  g_mutex_unlock (&self->lock);

  push_sticky (self);
  if (!buf) {
    GST_DEBUG_OBJECT (self, "pushing EOS");
    gst_pad_push_event (self->srcpad, gst_event_new_eos ());
    gst_pad_pause_task (self->srcpad);
    return;
  }
  ret = gst_pad_push (self->srcpad, buf);
  if (ret == GST_FLOW_OK || ret == GST_FLOW_NOT_LINKED)
    return;                     /* unlinked: the element only sends */
  GST_DEBUG_OBJECT (self, "pausing task: %s", gst_flow_get_name (ret));
  gst_pad_pause_task (self->srcpad);
  if (ret < GST_FLOW_EOS) {
    GST_ELEMENT_FLOW_ERROR (self, ret);
    gst_pad_push_event (self->srcpad, gst_event_new_eos ());
  }
}

static gboolean
gst_turn_client_src_activate_mode (GstPad * pad, GstObject * parent,
    GstPadMode mode, gboolean active)
{
  GstTurnClient *self = GST_TURN_CLIENT (parent);

  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (active) {
    g_mutex_lock (&self->lock);
    self->src_flushing = FALSE;
    g_mutex_unlock (&self->lock);
    return gst_pad_start_task (pad, gst_turn_client_loop, self, NULL);
  }
  g_mutex_lock (&self->lock);
  self->src_flushing = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  return gst_pad_stop_task (pad);
}

static gboolean
gst_turn_client_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstTurnClient *self = GST_TURN_CLIENT (parent);

  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_LATENCY:
      /* Live: datagrams are pushed as they arrive. */
      gst_query_set_latency (query, TRUE, 0, GST_CLOCK_TIME_NONE);
      return TRUE;
    case GST_QUERY_CAPS:{
      GstCaps *filter, *caps;

      gst_query_parse_caps (query, &filter);
      GST_OBJECT_LOCK (self);
      caps = self->caps ? gst_caps_ref (self->caps) : gst_caps_new_any ();
      GST_OBJECT_UNLOCK (self);
      if (filter) {
        GstCaps *t = gst_caps_intersect_full (filter, caps,
            GST_CAPS_INTERSECT_FIRST);

        gst_caps_unref (caps);
        caps = t;
      }
      gst_query_set_caps_result (query, caps);
      gst_caps_unref (caps);
      return TRUE;
    }
    case GST_QUERY_SCHEDULING:
      gst_query_set_scheduling (query, GST_SCHEDULING_FLAG_SEQUENTIAL, 1, -1,
          0);
      gst_query_add_scheduling_mode (query, GST_PAD_MODE_PUSH);
      return TRUE;
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}

static gboolean
gst_turn_client_src_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  gboolean ret = GST_EVENT_TYPE (event) != GST_EVENT_SEEK;

  /* Upstream events end here: the peer cannot seek. */
  gst_event_unref (event);
  return ret;
}

/* ------------------------------------------------------------------------ */
/* GObject */

static GstStructure *
make_stats (GstTurnClient * self)
{
  SluiceTurnAllocationStats st = { 0, };
  SluiceTurnAllocation *alloc;
  guint64 tx_dropped, rx_dropped;

  g_mutex_lock (&self->lock);
  alloc = self->alloc ? g_object_ref (self->alloc) : NULL;
  tx_dropped = self->tx_dropped;
  rx_dropped = self->rx_dropped;
  g_mutex_unlock (&self->lock);
  if (alloc) {
    sluice_turn_allocation_get_stats (alloc, &st);
    g_object_unref (alloc);
  }
  return gst_structure_new ("sluice-turn-stats",
      "tx-packets", G_TYPE_UINT64, st.tx_packets,
      "tx-bytes", G_TYPE_UINT64, st.tx_bytes,
      "tx-dropped", G_TYPE_UINT64, tx_dropped,
      "rx-packets", G_TYPE_UINT64, st.rx_packets,
      "rx-bytes", G_TYPE_UINT64, st.rx_bytes,
      "rx-dropped", G_TYPE_UINT64, st.rx_dropped + rx_dropped,
      "refreshes", G_TYPE_UINT, st.refreshes, NULL);
}

static void
gst_turn_client_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstTurnClient *self = GST_TURN_CLIENT (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_SERVER:
      g_free (self->server);
      self->server = g_value_dup_string (value);
      break;
    case PROP_TRANSPORT:
      self->transport = g_value_get_enum (value);
      break;
    case PROP_USERNAME:
      g_free (self->username);
      self->username = g_value_dup_string (value);
      break;
    case PROP_PASSWORD:
      if (self->password)
        memset (self->password, 0, strlen (self->password));
      g_free (self->password);
      self->password = g_value_dup_string (value);
      break;
    case PROP_ADDRESS_FAMILY:
      self->family = g_value_get_enum (value);
      break;
    case PROP_PEER_ADDRESS:
      g_free (self->peer_address);
      self->peer_address = g_value_dup_string (value);
      break;
    case PROP_CA_FILE:
      g_free (self->ca_file);
      self->ca_file = g_value_dup_string (value);
      break;
    case PROP_TLS_VERIFY:
      self->tls_verify = g_value_get_boolean (value);
      break;
    case PROP_LIFETIME:
      self->lifetime = g_value_get_uint (value);
      break;
    case PROP_CAPS:
      gst_caps_replace (&self->caps, (GstCaps *) gst_value_get_caps (value));
      break;
    case PROP_LINGER:
      self->linger_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_turn_client_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstTurnClient *self = GST_TURN_CLIENT (object);

  if (prop_id == PROP_STATS) {
    g_value_take_boxed (value, make_stats (self));
    return;
  }
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_SERVER:
      g_value_set_string (value, self->server);
      break;
    case PROP_TRANSPORT:
      g_value_set_enum (value, self->transport);
      break;
    case PROP_USERNAME:
      g_value_set_string (value, self->username);
      break;
    case PROP_PASSWORD:
      g_value_set_string (value, self->password);
      break;
    case PROP_ADDRESS_FAMILY:
      g_value_set_enum (value, self->family);
      break;
    case PROP_PEER_ADDRESS:
      g_value_set_string (value, self->peer_address);
      break;
    case PROP_CA_FILE:
      g_value_set_string (value, self->ca_file);
      break;
    case PROP_TLS_VERIFY:
      g_value_set_boolean (value, self->tls_verify);
      break;
    case PROP_LIFETIME:
      g_value_set_uint (value, self->lifetime);
      break;
    case PROP_CAPS:
      gst_value_set_caps (value, self->caps);
      break;
    case PROP_LINGER:
      g_value_set_uint (value, self->linger_ms);
      break;
    case PROP_RELAYED_ADDRESS:
      g_value_set_string (value, self->relayed_address);
      break;
    case PROP_MAPPED_ADDRESS:
      g_value_set_string (value, self->mapped_address);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_turn_client_finalize (GObject * object)
{
  GstTurnClient *self = GST_TURN_CLIENT (object);

  g_free (self->server);
  g_free (self->username);
  if (self->password)
    memset (self->password, 0, strlen (self->password));
  g_free (self->password);
  g_free (self->peer_address);
  g_free (self->ca_file);
  g_free (self->relayed_address);
  g_free (self->mapped_address);
  gst_caps_replace (&self->caps, NULL);
  g_clear_object (&self->peer_gaddr);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_turn_client_init (GstTurnClient * self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->queue);
  self->transport = DEFAULT_TRANSPORT;
  self->family = DEFAULT_FAMILY;
  self->tls_verify = TRUE;
  self->linger_ms = DEFAULT_LINGER_MS;

  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, gst_turn_client_chain);
  gst_pad_set_event_function (self->sinkpad, gst_turn_client_sink_event);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_activatemode_function (self->srcpad,
      gst_turn_client_src_activate_mode);
  gst_pad_set_query_function (self->srcpad, gst_turn_client_src_query);
  gst_pad_set_event_function (self->srcpad, gst_turn_client_src_event);
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}

static void
gst_turn_client_class_init (GstTurnClientClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_READY;
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_turn_client_set_property;
  gobject_class->get_property = gst_turn_client_get_property;
  gobject_class->finalize = gst_turn_client_finalize;

  g_object_class_install_property (gobject_class, PROP_SERVER,
      g_param_spec_string ("server", "Server",
          "TURN server URI (RFC 7065): turn:HOST[:PORT] (UDP), "
          "turn:HOST[:PORT]?transport=tcp (TCP) or turns:HOST[:PORT] (TLS); "
          "port 3478 by default, 5349 for TLS. \"user:password@\" before "
          "HOST is accepted when username/password are not set",
          NULL, rw));
  g_object_class_install_property (gobject_class, PROP_TRANSPORT,
      g_param_spec_enum ("transport", "Transport",
          "Transport to the TURN server; auto: what the server URI says. "
          "Anything else must agree with a URI that names a transport "
          "(turns:, ?transport=)", SLUICE_TYPE_TURN_ALLOCATION_TRANSPORT,
          DEFAULT_TRANSPORT, rw));
  g_object_class_install_property (gobject_class, PROP_USERNAME,
      g_param_spec_string ("username", "Username",
          "Long-term credential user name (RFC 8489 §9.2); for a TURN REST "
          "server, the time-limited \"EXPIRY:user\" name", NULL, rw));
  g_object_class_install_property (gobject_class, PROP_PASSWORD,
      g_param_spec_string ("password", "Password",
          "Long-term credential password (for TURN REST: the base64 "
          "HMAC-SHA1 of the user name)", NULL, rw));
  g_object_class_install_property (gobject_class, PROP_ADDRESS_FAMILY,
      g_param_spec_enum ("address-family", "Address family",
          "Family of the relayed address (RFC 6156): ipv4 (nothing sent), "
          "ipv6 (REQUESTED-ADDRESS-FAMILY) or dual (RFC 8656 §7.1). It does "
          "not depend on the family used to reach the server, and must "
          "match peer-address", SLUICE_TYPE_TURN_ALLOCATION_FAMILY,
          DEFAULT_FAMILY, rw));
  g_object_class_install_property (gobject_class, PROP_PEER_ADDRESS,
      g_param_spec_string ("peer-address", "Peer address",
          "Where sink-pad buffers go through the relay, and whose datagrams "
          "come back out of the src pad: IP:PORT, [IPv6]:PORT or HOST:PORT. "
          "A channel is bound to it (ChannelData). Unset: the element only "
          "allocates and drops sink-pad data", NULL, rw));
  g_object_class_install_property (gobject_class, PROP_CA_FILE,
      g_param_spec_string ("ca-file", "CA file",
          "TLS: PEM bundle to verify the server certificate with (unset: the "
          "system store). The name checked is the URI's host as written",
          NULL, rw));
  g_object_class_install_property (gobject_class, PROP_TLS_VERIFY,
      g_param_spec_boolean ("tls-verify", "TLS verify",
          "TLS: verify the server certificate (disable for tests only)",
          TRUE, rw));
  g_object_class_install_property (gobject_class, PROP_LIFETIME,
      g_param_spec_uint ("lifetime", "Lifetime",
          "Allocation LIFETIME to request, in seconds (0: the server's "
          "default, 600 s). The allocation is refreshed before it expires",
          0, 86400, 0, rw));
  g_object_class_install_property (gobject_class, PROP_CAPS,
      g_param_spec_boxed ("caps", "Caps",
          "Caps of the data pushed out of the src pad (unset: ANY, no caps "
          "event)", GST_TYPE_CAPS, rw));
  g_object_class_install_property (gobject_class, PROP_LINGER,
      g_param_spec_uint ("linger", "Linger",
          "After EOS on the sink pad, milliseconds to keep pushing the "
          "peer's datagrams (answers still on their way) before EOS leaves "
          "the src pad", 0, 60000, DEFAULT_LINGER_MS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_RELAYED_ADDRESS,
      g_param_spec_string ("relayed-address", "Relayed address",
          "The relayed transport address (IP:PORT) the server allocated: "
          "give it to the peer. Unset until allocated; notified from the "
          "allocation's thread", NULL, ro));
  g_object_class_install_property (gobject_class, PROP_MAPPED_ADDRESS,
      g_param_spec_string ("mapped-address", "Mapped address",
          "This host's address as the TURN server saw it "
          "(XOR-MAPPED-ADDRESS), unset until allocated", NULL, ro));
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "sluice-turn-stats: tx-packets, tx-bytes, tx-dropped, rx-packets, "
          "rx-bytes, rx-dropped (guint64), refreshes (guint)",
          GST_TYPE_STRUCTURE, ro));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "TURN client",
      "Source/Sink/Network",
      "Allocates a relayed address on a TURN server (RFC 8656, UDP/TCP/TLS), "
      "sends sink-pad buffers to peer-address through it and pushes the "
      "peer's datagrams out of the src pad",
      "sluice <https://example.invalid/sluice>");

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_turn_client_change_state);

  gst_type_mark_as_plugin_api (SLUICE_TYPE_TURN_ALLOCATION_TRANSPORT, 0);
  gst_type_mark_as_plugin_api (SLUICE_TYPE_TURN_ALLOCATION_FAMILY, 0);
}
