/* SPDX-License-Identifier: MIT */
/* GstSluiceWebRTCICEStream: one stream of the SluiceAgent (one m-line, or a
 * bundle) and the transports of its components. */
#ifndef GST_SLUICE_WEBRTC_ICE_STREAM_H
#define GST_SLUICE_WEBRTC_ICE_STREAM_H

#include "gstsluicewebrtcice.h"

G_BEGIN_DECLS

#define GST_TYPE_SLUICE_WEBRTC_ICE_STREAM (gst_sluice_webrtc_ice_stream_get_type())
G_DECLARE_FINAL_TYPE(GstSluiceWebRTCICEStream, gst_sluice_webrtc_ice_stream, GST,
                     SLUICE_WEBRTC_ICE_STREAM, GstWebRTCICEStream)

/* stream_id is the agent's stream (sluice_agent_add_stream()). */
G_GNUC_INTERNAL GstSluiceWebRTCICEStream *
gst_sluice_webrtc_ice_stream_new(GstSluiceWebRTCICE *ice, SluiceAgent *agent, guint stream_id);
/* Whether gathering has started (local credentials set after it mean an ICE
 * restart). */
G_GNUC_INTERNAL gboolean
gst_sluice_webrtc_ice_stream_gathering_started(GstSluiceWebRTCICEStream *stream);
/* The DSCP/ECN byte for the stream's sockets (set_tos). */
G_GNUC_INTERNAL void gst_sluice_webrtc_ice_stream_set_tos(GstSluiceWebRTCICEStream *stream,
                                                          guint tos);

G_END_DECLS
#endif
