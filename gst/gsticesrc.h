/* SPDX-License-Identifier: MIT */
#ifndef GST_ICE_SRC_H
#define GST_ICE_SRC_H

#include <gst/base/gstpushsrc.h>

#include "gstsluicesession.h"

G_BEGIN_DECLS

#define GST_TYPE_ICE_SRC (gst_ice_src_get_type())
G_DECLARE_FINAL_TYPE(GstIceSrc, gst_ice_src, GST, ICE_SRC, GstPushSrc)

G_END_DECLS
#endif
