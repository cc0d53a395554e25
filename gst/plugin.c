/* SPDX-License-Identifier: MIT */
/* The GStreamer plugin "sluice": registers icesrc, icesink and turnclient. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <gst/gst.h>

#include "gstsluiceelements.h"

static gboolean plugin_init(GstPlugin *plugin)
{
    gboolean ok = TRUE;
    /* Each element's registration line is added with its source file. */
    ok &= GST_ELEMENT_REGISTER(icesrc, plugin);
    ok &= GST_ELEMENT_REGISTER(icesink, plugin);
    ok &= GST_ELEMENT_REGISTER(turnclient, plugin);
    return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, sluice,
                  "ICE, STUN and TURN elements on the sluice sans-IO core", plugin_init,
                  SLUICE_VERSION, "MIT/X11", "sluice", "https://example.invalid/sluice")
