/* SPDX-License-Identifier: MIT */
/* SluiceCoordIce: ICE credentials and trickled candidates over a DIRECT
 * coordinator stream (docs/coord-protocol.md, "ICE signalling"). */
#include "sluice-coord-ice.h"

#include <string.h>

#include "sluice-gio.h"

struct _SluiceCoordIce {
    GObject parent;
    GMutex lock;
    SluiceCoordClient *client;
    SluiceAgent *agent;
    guint agent_stream;
    gchar *name, *peer, *label;
    gboolean opener;
    guint cstream; /* the signalling stream, 0 until up */
    guint opening; /* our pending open */
    gboolean ready, gathered;
    gchar *rufrag, *rpwd;
    gulong h_client[5], h_agent[2];
};

G_DEFINE_TYPE(SluiceCoordIce, sluice_coord_ice, G_TYPE_OBJECT)

enum { SIG_READY, SIG_FAILED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void send_line(SluiceCoordIce *self, guint cstream, const gchar *line)
{
    GError *e = NULL;
    gchar *msg = g_strconcat(line, "\n", NULL); /* docs/coord-protocol.md: lines end in \n */
    gboolean ok = sluice_coord_client_gio_send(self->client, cstream, (const guint8 *)msg,
                                               strlen(msg), &e);
    g_free(msg);
    if (!ok) {
        g_warning("sluice-coord-ice: cannot send \"%s\" to %s: %s", line, self->peer,
                  e->message);
        g_error_free(e);
    }
}

/* Open (or reopen, after the coordinator gave up waiting) our stream. */
static void open_stream(SluiceCoordIce *self)
{
    GError *e = NULL;
    guint id = sluice_coord_client_gio_open_stream(self->client, SLUICE_COORD_KIND_DIRECT,
                                                   self->peer, self->label,
                                                   SLUICE_COORD_OPEN_WAIT, 0, &e);
    g_mutex_lock(&self->lock);
    self->opening = id;
    g_mutex_unlock(&self->lock);
    if (!id) {
        g_signal_emit(self, signals[SIG_FAILED], 0, e->message);
        g_error_free(e);
    }
}

static void on_connected(SluiceCoordClient *c, guint max_message, gpointer data)
{
    SluiceCoordIce *self = data;
    (void)c;
    (void)max_message;
    if (self->opener)
        open_stream(self);
}

/* The signalling stream is up: configure the agent, send our credentials,
 * gather, and trickle from now on. */
static void stream_up(SluiceCoordIce *self, const SluiceCoordStreamInfo *info)
{
    gchar *ufrag = NULL, *pwd = NULL, *line;
    GError *e = NULL;
    g_mutex_lock(&self->lock);
    if (self->cstream) {
        g_mutex_unlock(&self->lock);
        return;
    }
    self->cstream = info->stream;
    g_mutex_unlock(&self->lock);
    g_object_set(self->agent, "controlling", self->opener, NULL);
    for (guint i = 0; info->turn_uris && info->turn_uris[i]; i++) {
        if (!sluice_agent_add_server(self->agent, info->turn_uris[i], info->turn_username,
                                     info->turn_password, &e)) {
            g_warning("sluice-coord-ice: TURN server %s from the coordinator: %s",
                      info->turn_uris[i], e->message);
            g_clear_error(&e);
        }
    }
    sluice_agent_get_local_credentials(self->agent, self->agent_stream, &ufrag, &pwd);
    line = g_strdup_printf("ice-ufrag %s", ufrag);
    send_line(self, info->stream, line);
    g_free(line);
    line = g_strdup_printf("ice-pwd %s", pwd);
    send_line(self, info->stream, line);
    g_free(line);
    g_free(ufrag);
    g_free(pwd);
    g_mutex_lock(&self->lock);
    self->ready = TRUE;
    g_mutex_unlock(&self->lock);
    if (!sluice_agent_gather(self->agent, self->agent_stream, &e)) {
        gchar *msg = g_strdup_printf("gathering failed: %s", e->message);
        g_signal_emit(self, signals[SIG_FAILED], 0, msg);
        g_free(msg);
        g_clear_error(&e);
        return;
    }
    g_signal_emit(self, signals[SIG_READY], 0, self->opener, info->fingerprint);
}

static void on_incoming(SluiceCoordClient *c, const SluiceCoordStreamInfo *info, gpointer data)
{
    SluiceCoordIce *self = data;
    if (g_strcmp0(info->label, self->label) != 0)
        return; /* someone else's stream */
    if (info->kind != SLUICE_COORD_KIND_DIRECT || g_strcmp0(info->name, self->peer) != 0 ||
        self->opener || self->cstream) {
        sluice_coord_client_gio_refuse_stream(c, info->stream, SLUICE_COORD_E_REFUSED,
                                              "not the expected peer for this label");
        return;
    }
    if (sluice_coord_client_gio_accept_stream(c, info->stream))
        stream_up(self, info);
}

static void on_accepted(SluiceCoordClient *c, const SluiceCoordStreamInfo *info, gpointer data)
{
    SluiceCoordIce *self = data;
    (void)c;
    if (info->stream == self->opening)
        stream_up(self, info);
}

static void on_refused(SluiceCoordClient *c, guint stream, gint code, const gchar *reason,
                       gpointer data)
{
    SluiceCoordIce *self = data;
    (void)c;
    if (stream != self->opening)
        return;
    if (code == SLUICE_COORD_E_TIMEOUT || code == SLUICE_COORD_E_NO_PEER) {
        /* The coordinator held our open for its maximum: keep waiting. */
        g_message("sluice-coord-ice: still waiting for %s (%s)", self->peer, reason);
        open_stream(self);
        return;
    }
    gchar *msg = g_strdup_printf("the coordinator refused the stream to %s: %s", self->peer,
                                 reason);
    g_signal_emit(self, signals[SIG_FAILED], 0, msg);
    g_free(msg);
}

/* One or more lines from the peer. */
static void on_message(SluiceCoordClient *c, guint stream, const gchar *sender, GBytes *data,
                       gpointer user)
{
    SluiceCoordIce *self = user;
    gsize len;
    const gchar *p = g_bytes_get_data(data, &len);
    (void)c;
    (void)sender;
    if (stream != self->cstream || !p)
        return;
    gchar *text = g_strndup(p, len);
    gchar **lines = g_strsplit(text, "\n", -1);
    for (gchar **l = lines; *l; l++) {
        GError *e = NULL;
        g_strstrip(*l);
        if (g_str_has_prefix(*l, "ice-ufrag ")) {
            g_free(self->rufrag);
            self->rufrag = g_strdup(*l + 10);
        } else if (g_str_has_prefix(*l, "ice-pwd ")) {
            g_free(self->rpwd);
            self->rpwd = g_strdup(*l + 8);
        } else if (g_str_has_prefix(*l, "candidate:") || g_str_has_prefix(*l, "a=candidate:")) {
            if (!sluice_agent_add_remote_candidate(self->agent, self->agent_stream, *l, &e))
                g_message("sluice-coord-ice: candidate from %s not used (%s): %s", self->peer,
                          e->message, *l);
        } else if (strcmp(*l, "end-of-candidates") == 0) {
            sluice_agent_end_of_candidates(self->agent, self->agent_stream);
        } else if (g_str_has_prefix(*l, "ice-options ") || **l == '#') {
            /* nothing to do: trickle is what we do anyway */
        } else if (**l) {
            g_message("sluice-coord-ice: unknown line from %s ignored: %.64s", self->peer, *l);
        }
        if ((g_str_has_prefix(*l, "ice-ufrag ") || g_str_has_prefix(*l, "ice-pwd ")) &&
            self->rufrag && self->rpwd) {
            if (!sluice_agent_set_remote_credentials(self->agent, self->agent_stream,
                                                     self->rufrag, self->rpwd, &e)) {
                gchar *msg = g_strdup_printf("bad credentials from %s: %s", self->peer,
                                             e->message);
                g_signal_emit(self, signals[SIG_FAILED], 0, msg);
                g_free(msg);
            }
        }
        g_clear_error(&e);
    }
    g_strfreev(lines);
    g_free(text);
}

static void on_client_end(SluiceCoordClient *c, gint code, const gchar *reason, gpointer data)
{
    SluiceCoordIce *self = data;
    (void)c;
    (void)code;
    /* Before the stream was up this is fatal; after, ICE goes on by itself
     * (media does not pass through the coordinator). */
    if (!self->cstream) {
        gchar *msg = g_strdup_printf("coordinator: %s", reason);
        g_signal_emit(self, signals[SIG_FAILED], 0, msg);
        g_free(msg);
    }
}

static void on_candidate(SluiceAgent *a, guint stream, guint comp, const gchar *sdp,
                         gpointer data)
{
    SluiceCoordIce *self = data;
    (void)a;
    (void)comp;
    if (stream == self->agent_stream && self->cstream)
        send_line(self, self->cstream, sdp);
}

static void on_gathering_done(SluiceAgent *a, guint stream, gpointer data)
{
    SluiceCoordIce *self = data;
    (void)a;
    if (stream == self->agent_stream && self->cstream)
        send_line(self, self->cstream, "end-of-candidates");
}

SluiceCoordIce *sluice_coord_ice_new(SluiceCoordClient *client, SluiceAgent *agent, guint stream,
                                     const gchar *peer, const gchar *label, GError **error)
{
    gchar *name = NULL;
    g_return_val_if_fail(SLUICE_IS_COORD_CLIENT(client) && SLUICE_IS_AGENT(agent), NULL);
    g_object_get(client, "name", &name, NULL);
    if (!peer || !sluice_coord_name_valid(peer) || g_strcmp0(name, peer) == 0) {
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID,
                    "peer name \"%s\" must be a valid client name other than ours (\"%s\")",
                    peer ? peer : "", name ? name : "");
        g_free(name);
        return NULL;
    }
    SluiceCoordIce *self = g_object_new(SLUICE_TYPE_COORD_ICE, NULL);
    self->client = g_object_ref(client);
    self->agent = g_object_ref(agent);
    self->agent_stream = stream;
    self->name = name;
    self->peer = g_strdup(peer);
    self->label = g_strdup(label && *label ? label : "sluice-ice");
    self->opener = strcmp(self->name, self->peer) < 0;
    self->h_client[0] = g_signal_connect(client, "connected", G_CALLBACK(on_connected), self);
    self->h_client[1] = g_signal_connect(client, "stream-incoming", G_CALLBACK(on_incoming), self);
    self->h_client[2] = g_signal_connect(client, "stream-accepted", G_CALLBACK(on_accepted), self);
    self->h_client[3] = g_signal_connect(client, "stream-refused", G_CALLBACK(on_refused), self);
    self->h_client[4] = g_signal_connect(client, "message", G_CALLBACK(on_message), self);
    g_signal_connect(client, "refused", G_CALLBACK(on_client_end), self);
    g_signal_connect(client, "closed", G_CALLBACK(on_client_end), self);
    self->h_agent[0] = g_signal_connect(agent, "new-candidate", G_CALLBACK(on_candidate), self);
    self->h_agent[1] =
        g_signal_connect(agent, "gathering-done", G_CALLBACK(on_gathering_done), self);
    if (self->opener && sluice_coord_client_gio_is_connected(client))
        open_stream(self);
    return self;
}

gboolean sluice_coord_ice_is_ready(SluiceCoordIce *self)
{
    gboolean r;
    g_mutex_lock(&self->lock);
    r = self->ready;
    g_mutex_unlock(&self->lock);
    return r;
}

static void sluice_coord_ice_init(SluiceCoordIce *self)
{
    g_mutex_init(&self->lock);
}

static void sluice_coord_ice_dispose(GObject *obj)
{
    SluiceCoordIce *self = SLUICE_COORD_ICE(obj);
    if (self->client) {
        g_signal_handlers_disconnect_by_data(self->client, self);
        g_clear_object(&self->client);
    }
    if (self->agent) {
        g_signal_handlers_disconnect_by_data(self->agent, self);
        g_clear_object(&self->agent);
    }
    G_OBJECT_CLASS(sluice_coord_ice_parent_class)->dispose(obj);
}

static void sluice_coord_ice_finalize(GObject *obj)
{
    SluiceCoordIce *self = SLUICE_COORD_ICE(obj);
    g_free(self->name);
    g_free(self->peer);
    g_free(self->label);
    g_free(self->rufrag);
    g_free(self->rpwd);
    g_mutex_clear(&self->lock);
    G_OBJECT_CLASS(sluice_coord_ice_parent_class)->finalize(obj);
}

static void sluice_coord_ice_class_init(SluiceCoordIceClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    oc->dispose = sluice_coord_ice_dispose;
    oc->finalize = sluice_coord_ice_finalize;
    signals[SIG_READY] =
        g_signal_new("ready", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 2, G_TYPE_BOOLEAN, G_TYPE_STRING);
    signals[SIG_FAILED] = g_signal_new("failed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                       NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}
