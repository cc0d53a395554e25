/* SPDX-License-Identifier: MIT */
/* sluice-coord core events: connection log lines, and the coordinator's own
 * side of COORD streams — one built-in service, "sluice/clients", that
 * answers with the names of the connected clients; other labels are
 * refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordd/coordd.h"

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One message: the connected client names, sorted, one per line, cut at a
 * line boundary to fit --max-message. */
static size_t who_list(struct coordd *d)
{
    const char **names = malloc((d->n_conns + 1) * sizeof *names);
    size_t n = 0, len = 0, cap = (size_t)d->o->max_message;

    if (!names)
        return 0;
    for (struct coordd_conn *c = d->all; c; c = c->next)
        if (c->in_core && c->name[0])
            names[n++] = c->name;
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (len + l + 1 > cap)
            break;
        memcpy(d->who_buf + len, names[i], l);
        len += l;
        d->who_buf[len++] = '\n';
    }
    free(names);
    return len;
}

static void on_stream(struct coordd *d, const sluice_coord_server_event *ev)
{
    char q1[200], q2[200];

    if (strcmp(ev->label, COORDD_WHO_LABEL) != 0) {
        char why[SLUICE_COORD_REASON_MAX + 1];
        snprintf(why, sizeof why, "this coordinator serves no \"%.*s\" (it serves \"%s\")", 120,
                 ev->label, COORDD_WHO_LABEL);
        sluice_coord_server_refuse_stream(d->core, d->now_us, ev->conn, ev->stream,
                                          SLUICE_COORD_E_REFUSED, why);
        d->cnt.streams_refused++;
        coordd_log(SLUICE_LOG_DEBUG, "stream refused", "name=%s label=%s",
                   coordd_quote(ev->name, q1, sizeof q1), coordd_quote(ev->label, q2, sizeof q2));
        return;
    }
    if (sluice_coord_server_accept_stream(d->core, d->now_us, ev->conn, ev->stream) < 0)
        return;
    size_t len = who_list(d);
    /* The window holds one largest message: the send cannot block. */
    int r = sluice_coord_server_send(d->core, d->now_us, ev->conn, ev->stream,
                                     (const uint8_t *)d->who_buf, len);
    if (r < 0) {
        sluice_coord_server_reset_stream(d->core, d->now_us, ev->conn, ev->stream,
                                         SLUICE_COORD_E_INTERNAL, sluice_strerror(r));
        return;
    }
    sluice_coord_server_close_stream(d->core, d->now_us, ev->conn, ev->stream);
    d->cnt.who_requests++;
}

size_t coordd_drain_events(struct coordd *d)
{
    sluice_coord_server_event ev;
    char as[SLUICE_ADDR_STRLEN], fp[96], q1[200], q2[600];
    size_t n = 0;

    /* Bounded: the loop comes back when output made more. */
    while (n < 4096 && sluice_coord_server_poll_event(d->core, &ev)) {
        n++;
        switch (ev.type) {
        case SLUICE_COORD_SERVER_EVENT_CLIENT_CONNECTED: {
            struct coordd_conn *c = coordd_conn_find(d, ev.conn);
            if (c)
                snprintf(c->name, sizeof c->name, "%s", ev.name);
            if (ev.has_fingerprint)
                sluice_coord_fingerprint_format(ev.fingerprint, fp, sizeof fp);
            coordd_log(SLUICE_LOG_INFO, "client connected",
                       "conn=%llu name=%s remote=%s fingerprint=%s", (unsigned long long)ev.conn,
                       coordd_quote(ev.name, q1, sizeof q1), coordd_addr_str(&ev.remote, as),
                       ev.has_fingerprint ? fp : "none");
            break;
        }
        case SLUICE_COORD_SERVER_EVENT_CONNECTION_CLOSED:
            coordd_log(SLUICE_LOG_INFO, "connection closed",
                       "conn=%llu name=%s remote=%s code=%d code_name=\"%s\" reason=%s by=%s",
                       (unsigned long long)ev.conn, coordd_quote(ev.name, q1, sizeof q1),
                       coordd_addr_str(&ev.remote, as), ev.code, sluice_coord_code_name(ev.code),
                       coordd_quote(ev.reason, q2, sizeof q2),
                       ev.by_peer ? "client" : "coordinator");
            coordd_conn_finished(d, ev.conn);
            break;
        case SLUICE_COORD_SERVER_EVENT_STREAM_INCOMING:
            on_stream(d, &ev);
            break;
        default:
            /* DATA on the service stream is dropped (its credit goes back
             * when the next poll releases it); the other stream events
             * need nothing from us. */
            break;
        }
    }
    return n;
}
