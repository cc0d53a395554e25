/* SPDX-License-Identifier: MIT */
#ifndef GST_ICE_SINK_H
#define GST_ICE_SINK_H

#include <gst/base/gstbasesink.h>

#include "gstsluicesession.h"

G_BEGIN_DECLS

#define GST_TYPE_ICE_SINK (gst_ice_sink_get_type())
G_DECLARE_FINAL_TYPE(GstIceSink, gst_ice_sink, GST, ICE_SINK, GstBaseSink)

G_END_DECLS
#endif
