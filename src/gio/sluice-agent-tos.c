/* SPDX-License-Identifier: MIT */
/* sluice_agent_set_tos() (sluice-agent.h): the TOS / traffic class byte of a
 * stream's sockets, its UDP bases and its TCP/TLS connections to TURN
 * servers. The byte is kept in the stream's components, so that sockets
 * made later (sluice_agent_gather(), agent-stream.c) get it as well. Lock
 * rules as in agent-internal.h: everything here runs under agent->lock. */
#include <netinet/in.h>

#include "agent-internal.h"
#include "sluice-gio.h"

/* IP_TOS on IPv4 sockets, IPV6_TCLASS on IPv6 ones (RFC 3542 §6.5). */
static gboolean socket_set_tos(GSocket *socket, gint tos, GError **error)
{
    if (g_socket_get_family(socket) == G_SOCKET_FAMILY_IPV6)
        return g_socket_set_option(socket, IPPROTO_IPV6, IPV6_TCLASS, tos, error);
    return g_socket_set_option(socket, IPPROTO_IP, IP_TOS, tos, error);
}

void sluice_agent_apply_tos(SluiceAgent *self, const Base *b, GSocket *socket)
{
    Component *c = sluice_agent_find_component(self, b->stream, b->component);
    GError *err = NULL;
    if (!c || c->tos < 0)
        return;
    if (!socket_set_tos(socket, c->tos, &err)) {
        g_warning("stream %u: cannot set TOS 0x%02x on a new socket: %s", b->stream, (guint)c->tos,
                  err->message);
        g_error_free(err);
    }
}

/* One socket of the stream: counted when set; the first failure is kept. */
static void set_one(GSocket *socket, guint stream, gint tos, gint *n, GError **first)
{
    GError *err = NULL;
    if (socket_set_tos(socket, tos, &err))
        (*n)++;
    else if (!*first)
        g_propagate_prefixed_error(first, err, "cannot set the TOS byte of stream %u: ", stream);
    else
        g_error_free(err);
}

gint sluice_agent_set_tos(SluiceAgent *agent, guint stream, guint tos, GError **error)
{
    GError *first = NULL;
    gboolean known = FALSE;
    gint n = 0;
    g_return_val_if_fail(SLUICE_IS_AGENT(agent), -1);
    g_return_val_if_fail(tos <= 255, -1);
    g_mutex_lock(&agent->lock);
    for (guint i = 0; i < agent->components->len; i++) {
        Component *c = g_ptr_array_index(agent->components, i);
        if (c->stream == stream) {
            c->tos = (gint)tos;
            known = TRUE;
        }
    }
    for (guint i = 0; known && i < agent->bases->len; i++) {
        Base *b = g_ptr_array_index(agent->bases, i);
        if (b->stream == stream)
            set_one(b->socket, stream, (gint)tos, &n, &first);
    }
    /* Open connections to TURN servers from the stream's bases. */
    for (guint i = 0; known && i < agent->links->len; i++) {
        SluiceLink *l = g_ptr_array_index(agent->links, i);
        Base *b = sluice_agent_find_base(agent, sluice_link_base(l));
        if (b && b->stream == stream)
            set_one(sluice_link_socket(l), stream, (gint)tos, &n, &first);
    }
    g_mutex_unlock(&agent->lock);
    if (!known) {
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE, "no stream %u", stream);
        return -1;
    }
    if (first) {
        g_propagate_error(error, first);
        return -1;
    }
    return n;
}
