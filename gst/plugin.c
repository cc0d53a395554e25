/* SPDX-License-Identifier: MIT */
/* The GStreamer plugin "sluice": registers icesrc, icesink and turnclient,
 * and GstSluiceWebRTCICE (webrtcbin's ICE agent) as a dynamic type. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <gst/gst.h>

#include "gstsluiceelements.h"
#ifdef HAVE_GST_WEBRTC
#include "sluice-webrtc-ice.h"
#endif

static gboolean plugin_init(GstPlugin *plugin)
{
    gboolean ok = TRUE;
    /* Each element's registration line is added with its source file. */
    ok &= GST_ELEMENT_REGISTER(icesrc, plugin);
    ok &= GST_ELEMENT_REGISTER(icesink, plugin);
    ok &= GST_ELEMENT_REGISTER(turnclient, plugin);
#ifdef HAVE_GST_WEBRTC
    /* Loading the plugin registers the GType, so that it can be created by
     * name (g_type_from_name, GObject.new in bindings); the registry also
     * lists it as a dynamic type feature, so that
     * gst_dynamic_type_factory_load ("GstSluiceWebRTCICE") loads the plugin
     * when needed. */
    ok &= gst_dynamic_type_register(plugin, GST_TYPE_SLUICE_WEBRTC_ICE);
#endif
    return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, sluice,
                  "ICE, STUN and TURN elements on the sluice sans-IO core", plugin_init,
                  SLUICE_VERSION, "MIT/X11", "sluice", "https://example.invalid/sluice")
