/* SPDX-License-Identifier: MIT */
/* turnclient: allocates on a TURN server and carries its sink-pad data to
 * a peer through the relay, and the peer's data out of its src pad. */
#ifndef __GST_TURN_CLIENT_H__
#define __GST_TURN_CLIENT_H__

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_TURN_CLIENT (gst_turn_client_get_type ())
G_DECLARE_FINAL_TYPE (GstTurnClient, gst_turn_client, GST, TURN_CLIENT,
    GstElement)

G_END_DECLS
#endif /* __GST_TURN_CLIENT_H__ */
