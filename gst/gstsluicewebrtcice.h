/* SPDX-License-Identifier: MIT */
/* What the webrtcbin backend's stream and transport objects need from the
 * GstSluiceWebRTCICE that owns them (not installed). */
#ifndef GST_SLUICE_WEBRTC_ICE_PRIV_H
#define GST_SLUICE_WEBRTC_ICE_PRIV_H

#include "sluice-gio.h"
#include "sluice-webrtc-ice.h"

G_BEGIN_DECLS

GST_DEBUG_CATEGORY_EXTERN(gst_sluice_webrtc_ice_debug);

/* Before a stream gathers: the STUN/TURN servers given so far and the
 * min-rtp-port/max-rtp-port range go to the agent. FALSE with error when
 * nothing can be gathered (a bad port range, ice-udp off). */
G_GNUC_INTERNAL gboolean gst_sluice_webrtc_ice_prepare_gather(GstSluiceWebRTCICE *ice,
                                                              GError **error);

/* Signal handler data of the agent's signals: a weak reference to the
 * object, freed with the handler (g_signal_connect_data). */
G_GNUC_INTERNAL GWeakRef *gst_sluice_weak_new(gpointer obj);
G_GNUC_INTERNAL void gst_sluice_weak_free(gpointer data, GClosure *closure);

G_END_DECLS
#endif
