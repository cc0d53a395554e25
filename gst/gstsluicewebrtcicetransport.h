/* SPDX-License-Identifier: MIT */
/* GstSluiceWebRTCICETransport: one component of a stream, with icesrc and
 * icesink bound to the agent as webrtcbin's transport->src and ->sink. */
#ifndef GST_SLUICE_WEBRTC_ICE_TRANSPORT_H
#define GST_SLUICE_WEBRTC_ICE_TRANSPORT_H

#include "gstsluicewebrtcice.h"

G_BEGIN_DECLS

#define GST_TYPE_SLUICE_WEBRTC_ICE_TRANSPORT (gst_sluice_webrtc_ice_transport_get_type())
G_DECLARE_FINAL_TYPE(GstSluiceWebRTCICETransport, gst_sluice_webrtc_ice_transport, GST,
                     SLUICE_WEBRTC_ICE_TRANSPORT, GstWebRTCICETransport)

G_GNUC_INTERNAL GstSluiceWebRTCICETransport *
gst_sluice_webrtc_ice_transport_new(SluiceAgent *agent, guint stream_id,
                                    GstWebRTCICEComponent component);

G_END_DECLS
#endif
