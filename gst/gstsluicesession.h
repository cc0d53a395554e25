/* SPDX-License-Identifier: MIT */
/* What icesrc and icesink share: the agent (given by the application, or
 * found by session name in the process, or private), the properties that
 * configure it from gst-launch-1.0, and the bridge from agent signals to bus
 * messages and element errors. */
#ifndef GST_SLUICE_SESSION_H
#define GST_SLUICE_SESSION_H

#include <gst/gst.h>

#include "sluice-gio.h"

G_BEGIN_DECLS

typedef struct {
    GstElement *element;
    GMutex lock;
    /* Properties. */
    SluiceAgent *agent; /* the application's or the session's */
    gboolean agent_from_app;
    gchar *session;
    guint stream, component, n_components;
    gboolean controlling, relay_only;
    gchar *local_ufrag, *local_pwd, *remote_ufrag, *remote_pwd, *remote_candidates;
    gchar *stun_server, *turn_server, *ca_file, *address;
    guint min_port, max_port;
    /* Signalling through a sluice-coord coordinator (docs/elements.md). */
    gchar *coordinator, *client_name, *peer, *coord_ca, *coord_pin;
    /* ICE failure, consent loss and TURN authentication failure as element
     * errors (TRUE) or warnings; atomic (read on the agent's context). */
    gint fatal_errors;
    /* While started. */
    GWeakRef self_ref;
    gulong handlers[5];
    gboolean posted_consent_error;
} GstSluiceSession;

enum {
    GST_SLUICE_PROP_AGENT = 1,
    GST_SLUICE_PROP_SESSION,
    GST_SLUICE_PROP_STREAM,
    GST_SLUICE_PROP_COMPONENT,
    GST_SLUICE_PROP_N_COMPONENTS,
    GST_SLUICE_PROP_CONTROLLING,
    GST_SLUICE_PROP_LOCAL_UFRAG,
    GST_SLUICE_PROP_LOCAL_PWD,
    GST_SLUICE_PROP_REMOTE_UFRAG,
    GST_SLUICE_PROP_REMOTE_PWD,
    GST_SLUICE_PROP_REMOTE_CANDIDATES,
    GST_SLUICE_PROP_STUN_SERVER,
    GST_SLUICE_PROP_TURN_SERVER,
    GST_SLUICE_PROP_RELAY_ONLY,
    GST_SLUICE_PROP_ADDRESS,
    GST_SLUICE_PROP_MIN_PORT,
    GST_SLUICE_PROP_MAX_PORT,
    GST_SLUICE_PROP_CA_FILE,
    GST_SLUICE_PROP_COORDINATOR,
    GST_SLUICE_PROP_CLIENT_NAME,
    GST_SLUICE_PROP_PEER,
    GST_SLUICE_PROP_COORDINATOR_CA,
    GST_SLUICE_PROP_COORDINATOR_PIN,
    GST_SLUICE_PROP_FATAL_ERRORS,
    GST_SLUICE_PROP_LAST
};

void gst_sluice_session_install_properties(GObjectClass *klass);
void gst_sluice_session_init(GstSluiceSession *s, GstElement *element);
void gst_sluice_session_clear(GstSluiceSession *s);
gboolean gst_sluice_session_set_property(GstSluiceSession *s, guint id, const GValue *v);
gboolean gst_sluice_session_get_property(GstSluiceSession *s, guint id, GValue *v);

/* READY->PAUSED: find or create the agent, configure and gather (posting
 * GST_ELEMENT_ERROR on failure), connect the bus bridge. Returns a new
 * reference to the agent, or NULL. */
SluiceAgent *gst_sluice_session_start(GstSluiceSession *s);
void gst_sluice_session_stop(GstSluiceSession *s);

/* The streaming threads' route snapshot: take it again only when the
 * agent's route generation moved (start with r->generation = G_MAXUINT,
 * "never taken"). Returns TRUE when it was taken again; *valid says whether
 * the component may send. */
gboolean gst_sluice_session_refresh_route(GstSluiceSession *s, SluiceAgent *agent,
                                          SluiceAgentRoute *r, gboolean *valid);

G_END_DECLS
#endif
