/* SPDX-License-Identifier: MIT */
/* The agent shared by icesrc and icesink (gstsluicesession.h). */
#include <string.h>

#include "gstsluicesession.h"

GST_DEBUG_CATEGORY_STATIC(sluice_session_debug);
#define GST_CAT_DEFAULT sluice_session_debug

/* Session name -> SluiceAgent (weak: an agent leaves when finalized). */
static GMutex registry_lock;
static GHashTable *registry;

/* The stream a session's agent was set up with (set on the agent). */
#define STREAM_KEY "gst-sluice-session-stream"
/* Sessions using an agent they created (under registry_lock). */
#define USERS_KEY "gst-sluice-session-users"

static void registry_forget(gpointer name, GObject *gone)
{
    g_mutex_lock(&registry_lock);
    if (registry && g_hash_table_lookup(registry, name) == (gpointer)gone)
        g_hash_table_remove(registry, name);
    g_mutex_unlock(&registry_lock);
    g_free(name);
}

void gst_sluice_session_install_properties(GObjectClass *klass)
{
    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                           GST_PARAM_MUTABLE_READY;
    static gsize once;
    if (g_once_init_enter(&once)) {
        GST_DEBUG_CATEGORY_INIT(sluice_session_debug, "sluicesession", 0,
                                "sluice agents shared by icesrc and icesink");
        g_once_init_leave(&once, 1);
    }
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_AGENT,
        g_param_spec_object("agent", "Agent",
                            "The SluiceAgent to use, set up by the application (then the "
                            "configuration properties below are ignored). NULL: the agent of "
                            "'session', or a private one",
                            SLUICE_TYPE_AGENT, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_SESSION,
        g_param_spec_string("session", "Session",
                            "Name shared by the icesrc and icesink of one agent in this process "
                            "(for gst-launch-1.0)",
                            NULL, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_STREAM,
        g_param_spec_uint("stream", "Stream", "ICE stream id in the agent", 1, 64, 1, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_COMPONENT,
        g_param_spec_uint("component", "Component", "ICE component (1: RTP, 2: RTCP)", 1, 256, 1,
                          rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_N_COMPONENTS,
        g_param_spec_uint("n-components", "Components",
                          "Components of the stream when this element creates it", 1, 256, 1,
                          rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_CONTROLLING,
        g_param_spec_boolean("controlling", "Controlling",
                             "ICE role when this element creates the agent (RFC 8445 §6.1.1)",
                             FALSE, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_LOCAL_UFRAG,
        g_param_spec_string("local-ufrag", "Local ufrag",
                            "Local ICE username fragment (4..64 ice-chars; NULL: random)", NULL,
                            rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_LOCAL_PWD,
        g_param_spec_string("local-pwd", "Local password",
                            "Local ICE password (22..128 ice-chars; NULL: random)", NULL, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_REMOTE_UFRAG,
        g_param_spec_string("remote-ufrag", "Remote ufrag", "The peer's ICE username fragment",
                            NULL, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_REMOTE_PWD,
        g_param_spec_string("remote-pwd", "Remote password", "The peer's ICE password", NULL,
                            rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_REMOTE_CANDIDATES,
        g_param_spec_string("remote-candidates", "Remote candidates",
                            "The peer's candidates, SDP 'candidate:' lines separated by ';' or "
                            "newlines",
                            NULL, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_STUN_SERVER,
        g_param_spec_string("stun-server", "STUN server", "stun:HOST[:PORT]", NULL, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_TURN_SERVER,
        g_param_spec_string("turn-server", "TURN server",
                            "turn:USER:PASS@HOST[:PORT][?transport=udp|tcp] or "
                            "turns:USER:PASS@HOST[:PORT] (TLS)",
                            NULL, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_CA_FILE,
        g_param_spec_string("ca-file", "CA file",
                            "turns: PEM bundle to verify the TURN server with (NULL: the "
                            "system store); the name checked is turn-server's host",
                            NULL, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_COORDINATOR,
        g_param_spec_string("coordinator", "Coordinator",
                            "sluice-coord address HOST[:PORT] (default port 7878): find the "
                            "peer by name there, exchange credentials and candidates, and use "
                            "the TURN credentials it hands out; replaces controlling, "
                            "remote-ufrag/pwd and remote-candidates",
                            NULL, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_CLIENT_NAME,
        g_param_spec_string("client-name", "Client name",
                            "This pipeline's name at the coordinator (its identity is "
                            "generated on first use and kept in $XDG_STATE_HOME/sluice)",
                            NULL, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_PEER,
        g_param_spec_string("peer", "Peer", "Name of the other pipeline at the coordinator",
                            NULL, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_COORDINATOR_CA,
        g_param_spec_string("coordinator-ca", "Coordinator CA",
                            "PEM bundle to verify the coordinator with (NULL: the system "
                            "store)",
                            NULL, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_COORDINATOR_PIN,
        g_param_spec_string("coordinator-pin", "Coordinator pin",
                            "SHA-256 fingerprint of the coordinator's certificate (AB:CD:...), "
                            "as sluice-coord prints it; replaces coordinator-ca",
                            NULL, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_FATAL_ERRORS,
        g_param_spec_boolean("fatal-errors", "Fatal errors",
                             "Post ICE failure, ICE consent loss and TURN authentication "
                             "failure (401/441) as element errors; FALSE: as warnings, for "
                             "applications that recover (ICE restart), as webrtcbin does",
                             TRUE, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                       GST_PARAM_MUTABLE_PLAYING));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_RELAY_ONLY,
        g_param_spec_boolean("relay-only", "Relay only",
                             "Use only relayed candidates (needs turn-server)", FALSE, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_ADDRESS,
        g_param_spec_string("address", "Local addresses",
                            "Local IP addresses to use, comma-separated (NULL: every interface "
                            "that is up)",
                            NULL, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_MIN_PORT,
        g_param_spec_uint("min-port", "Minimum port", "Lowest local UDP port (0: any)", 0, 65535,
                          0, rw));
    g_object_class_install_property(
        klass, GST_SLUICE_PROP_MAX_PORT,
        g_param_spec_uint("max-port", "Maximum port", "Highest local UDP port (0: any)", 0, 65535,
                          0, rw));
}

void gst_sluice_session_init(GstSluiceSession *s, GstElement *element)
{
    memset(s, 0, sizeof *s);
    s->element = element;
    g_mutex_init(&s->lock);
    s->stream = s->component = s->n_components = 1;
    s->fatal_errors = TRUE;
    g_weak_ref_init(&s->self_ref, NULL);
}

void gst_sluice_session_clear(GstSluiceSession *s)
{
    g_clear_object(&s->agent);
    g_free(s->session);
    g_free(s->local_ufrag);
    g_free(s->local_pwd);
    g_free(s->remote_ufrag);
    g_free(s->remote_pwd);
    g_free(s->remote_candidates);
    g_free(s->stun_server);
    g_free(s->turn_server);
    g_free(s->ca_file);
    g_free(s->address);
    g_free(s->coordinator);
    g_free(s->client_name);
    g_free(s->peer);
    g_free(s->coord_ca);
    g_free(s->coord_pin);
    g_weak_ref_clear(&s->self_ref);
    g_mutex_clear(&s->lock);
}

static void set_str(gchar **dst, const GValue *v)
{
    g_free(*dst);
    *dst = g_value_dup_string(v);
}

gboolean gst_sluice_session_set_property(GstSluiceSession *s, guint id, const GValue *v)
{
    g_mutex_lock(&s->lock);
    switch (id) {
    case GST_SLUICE_PROP_AGENT:
        g_clear_object(&s->agent);
        s->agent = g_value_dup_object(v);
        s->agent_from_app = s->agent != NULL;
        break;
    case GST_SLUICE_PROP_SESSION:
        set_str(&s->session, v);
        break;
    case GST_SLUICE_PROP_STREAM:
        s->stream = g_value_get_uint(v);
        break;
    case GST_SLUICE_PROP_COMPONENT:
        s->component = g_value_get_uint(v);
        break;
    case GST_SLUICE_PROP_N_COMPONENTS:
        s->n_components = g_value_get_uint(v);
        break;
    case GST_SLUICE_PROP_CONTROLLING:
        s->controlling = g_value_get_boolean(v);
        break;
    case GST_SLUICE_PROP_LOCAL_UFRAG:
        set_str(&s->local_ufrag, v);
        break;
    case GST_SLUICE_PROP_LOCAL_PWD:
        set_str(&s->local_pwd, v);
        break;
    case GST_SLUICE_PROP_REMOTE_UFRAG:
        set_str(&s->remote_ufrag, v);
        break;
    case GST_SLUICE_PROP_REMOTE_PWD:
        set_str(&s->remote_pwd, v);
        break;
    case GST_SLUICE_PROP_REMOTE_CANDIDATES:
        set_str(&s->remote_candidates, v);
        break;
    case GST_SLUICE_PROP_STUN_SERVER:
        set_str(&s->stun_server, v);
        break;
    case GST_SLUICE_PROP_TURN_SERVER:
        set_str(&s->turn_server, v);
        break;
    case GST_SLUICE_PROP_CA_FILE:
        set_str(&s->ca_file, v);
        break;
    case GST_SLUICE_PROP_RELAY_ONLY:
        s->relay_only = g_value_get_boolean(v);
        break;
    case GST_SLUICE_PROP_ADDRESS:
        set_str(&s->address, v);
        break;
    case GST_SLUICE_PROP_COORDINATOR:
        set_str(&s->coordinator, v);
        break;
    case GST_SLUICE_PROP_CLIENT_NAME:
        set_str(&s->client_name, v);
        break;
    case GST_SLUICE_PROP_PEER:
        set_str(&s->peer, v);
        break;
    case GST_SLUICE_PROP_COORDINATOR_CA:
        set_str(&s->coord_ca, v);
        break;
    case GST_SLUICE_PROP_COORDINATOR_PIN:
        set_str(&s->coord_pin, v);
        break;
    case GST_SLUICE_PROP_FATAL_ERRORS:
        g_atomic_int_set(&s->fatal_errors, g_value_get_boolean(v));
        break;
    case GST_SLUICE_PROP_MIN_PORT:
        s->min_port = g_value_get_uint(v);
        break;
    case GST_SLUICE_PROP_MAX_PORT:
        s->max_port = g_value_get_uint(v);
        break;
    default:
        g_mutex_unlock(&s->lock);
        return FALSE;
    }
    g_mutex_unlock(&s->lock);
    return TRUE;
}

gboolean gst_sluice_session_get_property(GstSluiceSession *s, guint id, GValue *v)
{
    g_mutex_lock(&s->lock);
    switch (id) {
    case GST_SLUICE_PROP_AGENT:
        g_value_set_object(v, s->agent);
        break;
    case GST_SLUICE_PROP_SESSION:
        g_value_set_string(v, s->session);
        break;
    case GST_SLUICE_PROP_STREAM:
        g_value_set_uint(v, s->stream);
        break;
    case GST_SLUICE_PROP_COMPONENT:
        g_value_set_uint(v, s->component);
        break;
    case GST_SLUICE_PROP_N_COMPONENTS:
        g_value_set_uint(v, s->n_components);
        break;
    case GST_SLUICE_PROP_CONTROLLING:
        g_value_set_boolean(v, s->controlling);
        break;
    case GST_SLUICE_PROP_LOCAL_UFRAG:
        g_value_set_string(v, s->local_ufrag);
        break;
    case GST_SLUICE_PROP_LOCAL_PWD:
        g_value_set_string(v, s->local_pwd);
        break;
    case GST_SLUICE_PROP_REMOTE_UFRAG:
        g_value_set_string(v, s->remote_ufrag);
        break;
    case GST_SLUICE_PROP_REMOTE_PWD:
        g_value_set_string(v, s->remote_pwd);
        break;
    case GST_SLUICE_PROP_REMOTE_CANDIDATES:
        g_value_set_string(v, s->remote_candidates);
        break;
    case GST_SLUICE_PROP_STUN_SERVER:
        g_value_set_string(v, s->stun_server);
        break;
    case GST_SLUICE_PROP_TURN_SERVER:
        g_value_set_string(v, s->turn_server);
        break;
    case GST_SLUICE_PROP_CA_FILE:
        g_value_set_string(v, s->ca_file);
        break;
    case GST_SLUICE_PROP_RELAY_ONLY:
        g_value_set_boolean(v, s->relay_only);
        break;
    case GST_SLUICE_PROP_ADDRESS:
        g_value_set_string(v, s->address);
        break;
    case GST_SLUICE_PROP_COORDINATOR:
        g_value_set_string(v, s->coordinator);
        break;
    case GST_SLUICE_PROP_CLIENT_NAME:
        g_value_set_string(v, s->client_name);
        break;
    case GST_SLUICE_PROP_PEER:
        g_value_set_string(v, s->peer);
        break;
    case GST_SLUICE_PROP_COORDINATOR_CA:
        g_value_set_string(v, s->coord_ca);
        break;
    case GST_SLUICE_PROP_COORDINATOR_PIN:
        g_value_set_string(v, s->coord_pin);
        break;
    case GST_SLUICE_PROP_FATAL_ERRORS:
        g_value_set_boolean(v, g_atomic_int_get(&s->fatal_errors));
        break;
    case GST_SLUICE_PROP_MIN_PORT:
        g_value_set_uint(v, s->min_port);
        break;
    case GST_SLUICE_PROP_MAX_PORT:
        g_value_set_uint(v, s->max_port);
        break;
    default:
        g_mutex_unlock(&s->lock);
        return FALSE;
    }
    g_mutex_unlock(&s->lock);
    return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Agent signals -> bus (on the agent's context; the element may be going
 * away, hence the weak reference). */

static GstElement *element_ref(GstSluiceSession *s)
{
    return g_weak_ref_get(&s->self_ref);
}

/* A failure of the connection to the peer: an element error, or a warning
 * when "fatal-errors" is FALSE (the application recovers). */
#define POST_FAILURE(s, e, domain, code, text, debug)                                          \
    G_STMT_START {                                                                             \
        if (g_atomic_int_get(&(s)->fatal_errors))                                              \
            GST_ELEMENT_ERROR(e, domain, code, text, debug);                                   \
        else                                                                                   \
            GST_ELEMENT_WARNING(e, domain, code, text, debug);                                 \
    }                                                                                          \
    G_STMT_END

static void on_state(SluiceAgent *agent, guint stream, gint state, gpointer data)
{
    GstSluiceSession *s = data;
    GstElement *e = element_ref(s);
    (void)agent;
    if (!e)
        return;
    if (stream == s->stream) {
        GEnumClass *ec = g_type_class_ref(SLUICE_TYPE_AGENT_STATE);
        GEnumValue *ev = g_enum_get_value(ec, state);
        gst_element_post_message(
            e, gst_message_new_element(
                   GST_OBJECT(e), gst_structure_new("sluice-ice-state", "stream", G_TYPE_UINT,
                                                    stream, "state", G_TYPE_STRING,
                                                    ev ? ev->value_nick : "?", NULL)));
        g_type_class_unref(ec);
        if (state == SLUICE_ICE_FAILED)
            POST_FAILURE(s, e, RESOURCE, OPEN_READ_WRITE, ("ICE failed: no route to the peer"),
                         ("every candidate pair of stream %u failed; check the remote "
                          "candidates and credentials, or add a TURN server",
                          stream));
        if (state == SLUICE_ICE_CONNECTED || state == SLUICE_ICE_COMPLETED)
            s->posted_consent_error = FALSE;
    }
    gst_object_unref(e);
}

static void on_selected(SluiceAgent *agent, guint stream, guint comp, const gchar *local,
                        const gchar *remote, gpointer data)
{
    GstSluiceSession *s = data;
    GstElement *e = element_ref(s);
    (void)agent;
    if (!e)
        return;
    if (stream == s->stream && comp == s->component) {
        GST_INFO_OBJECT(e, "selected pair: %s <-> %s", local, remote);
        gst_element_post_message(
            e, gst_message_new_element(
                   GST_OBJECT(e),
                   gst_structure_new("sluice-selected-pair", "stream", G_TYPE_UINT, stream,
                                     "component", G_TYPE_UINT, comp, "local", G_TYPE_STRING,
                                     local, "remote", G_TYPE_STRING, remote, NULL)));
        s->posted_consent_error = FALSE;
    }
    gst_object_unref(e);
}

static void on_consent_lost(SluiceAgent *agent, guint stream, guint comp, gpointer data)
{
    GstSluiceSession *s = data;
    GstElement *e = element_ref(s);
    (void)agent;
    if (!e)
        return;
    if (stream == s->stream && comp == s->component && !s->posted_consent_error) {
        s->posted_consent_error = TRUE;
        /* RFC 7675 §5.1: no more media on this pair. An ICE restart
         * (sluice_agent_restart) can bring the stream back. */
        POST_FAILURE(s, e, RESOURCE, WRITE, ("ICE consent lost: the peer stopped answering"),
                     ("no consent response for 30 s on stream %u component %u; sending "
                      "stopped (RFC 7675). Restart ICE to recover.",
                      stream, comp));
    }
    gst_object_unref(e);
}

static void on_server_error(SluiceAgent *agent, const gchar *server, gint code,
                            const gchar *text, gpointer data)
{
    GstSluiceSession *s = data;
    GstElement *e = element_ref(s);
    (void)agent;
    if (!e)
        return;
    if (code == 401 || code == 441)
        POST_FAILURE(s, e, RESOURCE, NOT_AUTHORIZED, ("TURN authentication failed at %s", server),
                     ("%d %s: check turn-server's username and password", code, text));
    else
        GST_ELEMENT_WARNING(e, RESOURCE, OPEN_READ_WRITE, ("server %s: %s", server, text),
                            ("error code %d", code));
    gst_object_unref(e);
}

static void on_gathered(SluiceAgent *agent, guint stream, gpointer data)
{
    GstSluiceSession *s = data;
    GstElement *e = element_ref(s);
    gchar **c;
    gchar *joined, *u = NULL, *p = NULL;
    if (!e)
        return;
    if (stream == s->stream) {
        /* Everything a peer needs, for scripts that pass it on. */
        c = sluice_agent_get_local_candidates(agent, stream);
        joined = g_strjoinv(";", c);
        sluice_agent_get_local_credentials(agent, stream, &u, &p);
        gst_element_post_message(
            e, gst_message_new_element(
                   GST_OBJECT(e),
                   gst_structure_new("sluice-gathering-done", "stream", G_TYPE_UINT, stream,
                                     "ufrag", G_TYPE_STRING, u, "pwd", G_TYPE_STRING, p,
                                     "candidates", G_TYPE_STRING, joined, NULL)));
        g_strfreev(c);
        g_free(joined);
        g_free(u);
        g_free(p);
    }
    gst_object_unref(e);
}

/* ------------------------------------------------------------------------ */

#define COORD_ICE_KEY "gst-sluice-coord-ice"
#define COORD_CLIENT_KEY "gst-sluice-coord-client"

static void on_coord_failed(SluiceCoordIce *ci, const gchar *reason, gpointer data)
{
    GstElement *e = g_weak_ref_get(data);
    (void)ci;
    if (!e)
        return;
    GST_ELEMENT_ERROR(e, RESOURCE, OPEN_READ_WRITE, ("coordinator signalling failed: %s", reason),
                      ("check coordinator, client-name, peer and coordinator-ca/pin"));
    gst_object_unref(e);
}

static void on_coord_ready(SluiceCoordIce *ci, gboolean controlling, const gchar *fingerprint,
                           gpointer data)
{
    GstElement *e = g_weak_ref_get(data);
    (void)ci;
    if (!e)
        return;
    GST_INFO_OBJECT(e, "signalling stream up: %s, peer certificate %s",
                    controlling ? "controlling" : "controlled", fingerprint ? fingerprint : "?");
    gst_element_post_message(
        e, gst_message_new_element(GST_OBJECT(e),
                                   gst_structure_new("sluice-coordinator", "controlling",
                                                     G_TYPE_BOOLEAN, controlling,
                                                     "peer-fingerprint", G_TYPE_STRING,
                                                     fingerprint, NULL)));
    gst_object_unref(e);
}

static void weak_ref_free(gpointer p)
{
    g_weak_ref_clear(p);
    g_free(p);
}

/* Signalling through a coordinator: the agent gathers once the stream to
 * the peer is up (SluiceCoordIce). The objects live as long as the agent. */
static gboolean start_coordinator(GstSluiceSession *s, SluiceAgent *agent, guint stream,
                                  GError **err)
{
    if (!s->client_name || !s->peer) {
        g_set_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                    "coordinator is set: client-name and peer are needed too");
        return FALSE;
    }
    SluiceCoordClient *cc = sluice_coord_client_gio_new(NULL, s->client_name);
    g_object_set(cc, "ca-file", s->coord_ca, "pin", s->coord_pin, NULL);
    gchar *label = g_strdup_printf("sluice-ice/%u", stream);
    SluiceCoordIce *ci = sluice_coord_ice_new(cc, agent, stream, s->peer, label, err);
    g_free(label);
    if (!ci) {
        g_object_unref(cc);
        return FALSE;
    }
    GWeakRef *w = g_new0(GWeakRef, 1);
    g_weak_ref_init(w, s->element);
    g_signal_connect_data(ci, "failed", G_CALLBACK(on_coord_failed), w, NULL, 0);
    GWeakRef *w2 = g_new0(GWeakRef, 1);
    g_weak_ref_init(w2, s->element);
    g_signal_connect_data(ci, "ready", G_CALLBACK(on_coord_ready), w2, NULL, 0);
    g_object_set_data_full(G_OBJECT(ci), "gst-sluice-weak-ref-failed", w, weak_ref_free);
    g_object_set_data_full(G_OBJECT(ci), "gst-sluice-weak-ref-ready", w2, weak_ref_free);
    g_object_set_data_full(G_OBJECT(agent), COORD_ICE_KEY, ci, g_object_unref);
    g_object_set_data_full(G_OBJECT(agent), COORD_CLIENT_KEY, cc, g_object_unref);
    return sluice_coord_client_gio_connect(cc, s->coordinator, err);
}

static gboolean configure(GstSluiceSession *s, SluiceAgent *agent, gboolean created,
                          GError **err)
{
    guint stream = s->stream;
    if (created) {
        if (s->address) {
            gchar **addrs = g_strsplit(s->address, ",", -1);
            for (gchar **a = addrs; *a; a++) {
                if (!sluice_agent_add_local_address(agent, g_strstrip(*a), err)) {
                    g_strfreev(addrs);
                    return FALSE;
                }
            }
            g_strfreev(addrs);
        }
        g_object_set(agent, "min-port", s->min_port, "max-port", s->max_port, "ca-file",
                     s->ca_file, NULL);
        if (s->stun_server && !sluice_agent_add_server(agent, s->stun_server, NULL, NULL, err))
            return FALSE;
        if (s->turn_server && !sluice_agent_add_server(agent, s->turn_server, NULL, NULL, err))
            return FALSE;
        stream = sluice_agent_add_stream(agent, s->n_components, err);
        if (stream == 0)
            return FALSE;
        if (stream != s->stream) {
            g_set_error(err, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_STATE,
                        "the session's agent has stream %u, not %u", stream, s->stream);
            return FALSE;
        }
        if (s->local_ufrag || s->local_pwd) {
            if (!sluice_agent_set_local_credentials(agent, stream, s->local_ufrag,
                                                    s->local_pwd, err))
                return FALSE;
        }
    }
    if ((s->remote_ufrag || s->remote_pwd) &&
        !sluice_agent_set_remote_credentials(agent, stream, s->remote_ufrag, s->remote_pwd, err))
        return FALSE;
    if (s->remote_candidates &&
        !sluice_agent_add_remote_candidates(agent, stream, s->remote_candidates, err))
        return FALSE;
    if (created && s->coordinator)
        return start_coordinator(s, agent, stream, err);
    if (created && !sluice_agent_gather(agent, stream, err))
        return FALSE;
    return TRUE;
}

SluiceAgent *gst_sluice_session_start(GstSluiceSession *s)
{
    SluiceAgent *agent = NULL;
    gboolean created = FALSE;
    GError *err = NULL;

    g_mutex_lock(&s->lock);
    if (s->agent_from_app) {
        agent = g_object_ref(s->agent);
    } else {
        g_mutex_lock(&registry_lock);
        if (!registry)
            registry = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        if (s->session)
            agent = g_hash_table_lookup(registry, s->session);
        if (agent && g_object_get_data(G_OBJECT(agent), STREAM_KEY)) {
            agent = g_object_ref(agent);
        } else {
            agent = g_object_new(SLUICE_TYPE_AGENT, "controlling", s->controlling, "relay-only",
                                 s->relay_only, NULL);
            g_object_set_data(G_OBJECT(agent), STREAM_KEY, GUINT_TO_POINTER(s->stream));
            created = TRUE;
            if (s->session) {
                g_hash_table_replace(registry, g_strdup(s->session), agent);
                g_object_weak_ref(G_OBJECT(agent), (GWeakNotify)registry_forget,
                                  g_strdup(s->session));
            }
        }
        g_mutex_unlock(&registry_lock);
        g_clear_object(&s->agent);
        s->agent = g_object_ref(agent);
    }
    if (!s->agent_from_app) {
        g_mutex_lock(&registry_lock);
        guint users = GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(agent), USERS_KEY));
        g_object_set_data(G_OBJECT(agent), USERS_KEY, GUINT_TO_POINTER(users + 1));
        g_mutex_unlock(&registry_lock);
    }
    g_weak_ref_set(&s->self_ref, s->element);
    s->posted_consent_error = FALSE;
    s->handlers[0] = g_signal_connect(agent, "state-changed", G_CALLBACK(on_state), s);
    s->handlers[1] = g_signal_connect(agent, "selected-pair-changed", G_CALLBACK(on_selected), s);
    s->handlers[2] = g_signal_connect(agent, "consent-lost", G_CALLBACK(on_consent_lost), s);
    s->handlers[3] = g_signal_connect(agent, "server-error", G_CALLBACK(on_server_error), s);
    s->handlers[4] = g_signal_connect(agent, "gathering-done", G_CALLBACK(on_gathered), s);
    if (!s->agent_from_app && !configure(s, agent, created, &err)) {
        g_mutex_unlock(&s->lock);
        GST_ELEMENT_ERROR(s->element, RESOURCE, SETTINGS, ("%s", err->message),
                          ("cannot set up the ICE agent"));
        g_error_free(err);
        gst_sluice_session_stop(s);
        g_object_unref(agent);
        return NULL;
    }
    g_mutex_unlock(&s->lock);
    return agent;
}

static gboolean is_agent(gpointer key, gpointer value, gpointer agent)
{
    (void)key;
    return value == agent;
}

void gst_sluice_session_stop(GstSluiceSession *s)
{
    SluiceAgent *agent;
    gboolean from_app;
    g_mutex_lock(&s->lock);
    agent = s->agent ? g_object_ref(s->agent) : NULL;
    from_app = s->agent_from_app;
    g_weak_ref_set(&s->self_ref, NULL);
    if (!s->agent_from_app)
        g_clear_object(&s->agent);
    g_mutex_unlock(&s->lock);
    if (!agent)
        return;
    for (guint i = 0; i < G_N_ELEMENTS(s->handlers); i++) {
        if (s->handlers[i])
            g_signal_handler_disconnect(agent, s->handlers[i]);
        s->handlers[i] = 0;
    }
    /* The last element of a session closes the agent it created: its ports
     * are free when the state change returns, even while a callback on the
     * agent's context still holds a reference for a moment. */
    if (!from_app) {
        guint users;
        g_mutex_lock(&registry_lock);
        users = GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(agent), USERS_KEY));
        users = users ? users - 1 : 0;
        g_object_set_data(G_OBJECT(agent), USERS_KEY, GUINT_TO_POINTER(users));
        if (users == 0 && registry) {
            /* A closed agent is never handed out again. */
            g_hash_table_foreach_remove(registry, is_agent, agent);
            g_object_set_data(G_OBJECT(agent), STREAM_KEY, NULL);
        }
        g_mutex_unlock(&registry_lock);
        GST_DEBUG_OBJECT(s->element, "session agent %p: %u users left%s", agent, users,
                         users ? "" : ", closing it");
        if (users == 0) {
            SluiceCoordClient *cc = g_object_get_data(G_OBJECT(agent), COORD_CLIENT_KEY);
            if (cc)
                sluice_coord_client_gio_close(cc, "pipeline stopped");
            sluice_agent_close(agent);
            /* The signalling object holds the agent: break the cycle. */
            g_object_set_data(G_OBJECT(agent), COORD_ICE_KEY, NULL);
            g_object_set_data(G_OBJECT(agent), COORD_CLIENT_KEY, NULL);
        }
    }
    g_object_unref(agent);
}

gboolean gst_sluice_session_refresh_route(GstSluiceSession *s, SluiceAgent *agent,
                                          SluiceAgentRoute *r, gboolean *valid)
{
    if (r->generation == sluice_agent_route_generation(agent))
        return FALSE;
    sluice_agent_route_clear(r);
    *valid = sluice_agent_get_route(agent, s->stream, s->component, r);
    return TRUE;
}
