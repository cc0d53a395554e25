/* SPDX-License-Identifier: MIT */
/* SluiceAgent: the IP TOS / traffic class byte (DSCP and ECN, RFC 2474) of
 * a stream's sockets, for webrtcbin's set_tos. A separate header until it
 * joins sluice-agent.h. */
#ifndef SLUICE_AGENT_TOS_H
#define SLUICE_AGENT_TOS_H

#include "sluice-agent.h"

G_BEGIN_DECLS

/* Set IP_TOS (IPv4) or IPV6_TCLASS (IPv6) to tos (0..255) on every UDP
 * socket (base) of the stream that exists now: call it after
 * sluice_agent_gather(). Connections to TURN servers over TCP/TLS keep the
 * default. Returns the number of sockets set, or -1 with error (the first
 * failure; the other sockets are still set). */
gint sluice_agent_set_tos(SluiceAgent *agent, guint stream, guint tos, GError **error);

G_END_DECLS
#endif
