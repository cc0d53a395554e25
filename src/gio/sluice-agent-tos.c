/* SPDX-License-Identifier: MIT */
/* sluice_agent_set_tos() (sluice-agent-tos.h): the TOS / traffic class byte
 * on a stream's UDP sockets. */
#include <netinet/in.h>

#include "agent-internal.h"
#include "sluice-agent-tos.h"
#include "sluice-gio.h"

gint sluice_agent_set_tos(SluiceAgent *agent, guint stream, guint tos, GError **error)
{
    gint n = 0;
    gboolean failed = FALSE;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), -1);
    g_return_val_if_fail(tos <= 255, -1);
    g_mutex_lock(&agent->lock);
    for (guint i = 0; i < agent->bases->len; i++) {
        Base *b = g_ptr_array_index(agent->bases, i);
        GError *e = NULL;
        gboolean ok;
        if (b->stream != stream)
            continue;
        if (b->addr.family == SLUICE_AF_INET6)
            ok = g_socket_set_option(b->socket, IPPROTO_IPV6, IPV6_TCLASS, (gint)tos, &e);
        else
            ok = g_socket_set_option(b->socket, IPPROTO_IP, IP_TOS, (gint)tos, &e);
        if (ok) {
            n++;
        } else if (!failed) {
            failed = TRUE;
            g_propagate_prefixed_error(error, e, "cannot set the TOS byte of stream %u: ", stream);
        } else {
            g_error_free(e);
        }
    }
    g_mutex_unlock(&agent->lock);
    return failed ? -1 : n;
}
