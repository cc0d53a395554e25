/* SPDX-License-Identifier: MIT */
/* sluice as webrtcbin's ICE agent (GStreamer 1.22's GstWebRTCICE API).
 * docs/webrtcbin.md shows how to switch an application over. Installed as
 * <sluice-1.0/gst/sluice-webrtc-ice.h>; the functions live in the plugin
 * library (libgstsluice.so). An application that does not link the plugin
 * gets the type by name instead: gst_dynamic_type_factory_load
 * ("GstSluiceWebRTCICE"), or Gst.DynamicTypeFactory.load() in Python. */
#ifndef GST_SLUICE_WEBRTC_ICE_H
#define GST_SLUICE_WEBRTC_ICE_H

#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>

G_BEGIN_DECLS

#define GST_TYPE_SLUICE_WEBRTC_ICE (gst_sluice_webrtc_ice_get_type())
GST_PLUGIN_EXPORT
G_DECLARE_FINAL_TYPE(GstSluiceWebRTCICE, gst_sluice_webrtc_ice, GST, SLUICE_WEBRTC_ICE,
                     GstWebRTCICE)

/* A new ICE agent for one webrtcbin, named name (NULL: a default name).
 * Returns a floating reference: hand it to webrtcbin's construct-only
 * "ice-agent" property, which keeps it (webrtcbin 1.22 does not take a
 * reference of its own; this object makes up for that when webrtcbin adopts
 * it), e.g. gst_element_factory_make_full ("webrtcbin", "ice-agent",
 * gst_sluice_webrtc_ice_new (NULL), NULL). Equivalent to
 * g_object_new (GST_TYPE_SLUICE_WEBRTC_ICE, "name", name, NULL). */
GST_PLUGIN_EXPORT
GstWebRTCICE *gst_sluice_webrtc_ice_new(const gchar *name);

G_END_DECLS
#endif
