/* SPDX-License-Identifier: MIT */
/* Edge conversions of the GLib driver: addresses, stun:/turn: URIs, errors. */
#include <string.h>
#include <sys/socket.h>

#include "gio-internal.h"
#include "sluice-gio.h"

G_DEFINE_QUARK(sluice-gio-error-quark, sluice_gio_error)

GSocketAddress *sluice_gio_addr_to_gsocket(const sluice_addr *a)
{
    struct sockaddr_storage ss;
    int n = sluice_addr_to_sockaddr(a, &ss, sizeof ss);
    if (n <= 0)
        return NULL;
    return g_socket_address_new_from_native(&ss, (gsize)n);
}

gboolean sluice_gio_addr_from_gsocket(sluice_addr *a, GSocketAddress *sa)
{
    struct sockaddr_storage ss;
    gssize n = g_socket_address_get_native_size(sa);
    if (n <= 0 || (gsize)n > sizeof ss || !g_socket_address_to_native(sa, &ss, sizeof ss, NULL))
        return FALSE;
    return sluice_addr_from_sockaddr(a, &ss, (size_t)n) == 0;
}

gboolean sluice_gio_addr_from_inet(sluice_addr *a, GInetAddress *ia, guint16 port)
{
    const guint8 *b = g_inet_address_to_bytes(ia);
    switch (g_inet_address_get_family(ia)) {
    case G_SOCKET_FAMILY_IPV4:
        sluice_addr_set_ipv4(a, b, port);
        return TRUE;
    case G_SOCKET_FAMILY_IPV6:
        sluice_addr_set_ipv6(a, b, port);
        return TRUE;
    default:
        return FALSE;
    }
}

/* ------------------------------------------------------------------------ */
/* RFC 7064 (stun:, stuns:) and RFC 7065 (turn:, turns:, ?transport=). */

void sluice_gio_uri_clear(SluiceGioUri *u)
{
    g_clear_pointer(&u->host, g_free);
    g_clear_pointer(&u->username, g_free);
    if (u->password)
        memset(u->password, 0, strlen(u->password));
    g_clear_pointer(&u->password, g_free);
}

static gboolean uri_fail(GError **error, const gchar *uri, const gchar *why)
{
    g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_INVALID, "bad server URI '%s': %s", uri,
                why);
    return FALSE;
}

gboolean sluice_gio_uri_parse(const gchar *uri, SluiceGioUri *out, GError **error)
{
    const gchar *p, *host, *host_end, *port = NULL, *query;
    gboolean secure;
    memset(out, 0, sizeof *out);
    if (!uri)
        return uri_fail(error, "(null)", "empty");
    if (g_str_has_prefix(uri, "stun:")) {
        p = uri + 5;
        secure = FALSE;
    } else if (g_str_has_prefix(uri, "stuns:")) {
        return uri_fail(error, uri, "stuns: (STUN over TLS) is not supported; use stun:");
    } else if (g_str_has_prefix(uri, "turn:")) {
        p = uri + 5;
        out->turn = TRUE;
        secure = FALSE;
    } else if (g_str_has_prefix(uri, "turns:")) {
        p = uri + 6;
        out->turn = TRUE;
        secure = TRUE;
    } else {
        return uri_fail(error, uri, "expected stun:, turn: or turns:");
    }
    /* libnice and webrtcbin users write "//" and credentials in the URI. */
    if (g_str_has_prefix(p, "//"))
        p += 2;
    query = strchr(p, '?');
    const gchar *end = query ? query : p + strlen(p);
    const gchar *at = g_strrstr_len(p, end - p, "@");
    if (at) {
        const gchar *colon = memchr(p, ':', (gsize)(at - p));
        if (!colon)
            return uri_fail(error, uri, "credentials must be user:password@");
        out->username = g_uri_unescape_segment(p, colon, NULL);
        out->password = g_uri_unescape_segment(colon + 1, at, NULL);
        if (!out->username || !out->password || !*out->username) {
            sluice_gio_uri_clear(out);
            return uri_fail(error, uri, "bad credentials");
        }
        p = at + 1;
    }
    host = p;
    if (*host == '[') {
        host_end = memchr(host, ']', (gsize)(end - host));
        if (!host_end) {
            sluice_gio_uri_clear(out);
            return uri_fail(error, uri, "unterminated [IPv6 literal]");
        }
        host++;
        if (host_end + 1 < end) {
            if (host_end[1] != ':') {
                sluice_gio_uri_clear(out);
                return uri_fail(error, uri, "junk after ]");
            }
            port = host_end + 2;
        }
    } else {
        host_end = memchr(host, ':', (gsize)(end - host));
        if (host_end)
            port = host_end + 1;
        else
            host_end = end;
    }
    if (host_end == host) {
        sluice_gio_uri_clear(out);
        return uri_fail(error, uri, "no host");
    }
    out->host = g_strndup(host, (gsize)(host_end - host));
    out->port = secure ? 5349 : 3478; /* RFC 7064 §3.2, RFC 7065 §3.2 */
    if (port) {
        guint64 v = 0;
        const gchar *q = port;
        if (q == end) {
            sluice_gio_uri_clear(out);
            return uri_fail(error, uri, "empty port");
        }
        for (; q < end; q++) {
            if (!g_ascii_isdigit(*q) || (v = v * 10 + (guint64)(*q - '0')) > 65535 ) {
                sluice_gio_uri_clear(out);
                return uri_fail(error, uri, "bad port");
            }
        }
        if (v == 0) {
            sluice_gio_uri_clear(out);
            return uri_fail(error, uri, "port 0");
        }
        out->port = (guint16)v;
    }
    out->transport = secure ? SLUICE_TRANSPORT_TLS : SLUICE_TRANSPORT_UDP;
    if (query) {
        if (!out->turn) {
            sluice_gio_uri_clear(out);
            return uri_fail(error, uri, "stun: takes no query");
        }
        if (strcmp(query, "?transport=udp") == 0) {
            if (secure) {
                sluice_gio_uri_clear(out);
                return uri_fail(error, uri, "turns: with transport=udp (DTLS) is not supported");
            }
        } else if (strcmp(query, "?transport=tcp") == 0) {
            if (!secure)
                out->transport = SLUICE_TRANSPORT_TCP;
        } else {
            sluice_gio_uri_clear(out);
            return uri_fail(error, uri, "expected ?transport=udp or ?transport=tcp");
        }
    }
    return TRUE;
}

gboolean sluice_gio_uri_resolve(const SluiceGioUri *u, sluice_addr *out, gsize cap, gsize *n,
                                GError **error)
{
    GResolver *r;
    GList *list, *l;
    GInetAddress *lit = g_inet_address_new_from_string(u->host);
    *n = 0;
    if (lit) {
        if (cap > 0 && sluice_gio_addr_from_inet(&out[0], lit, u->port))
            *n = 1;
        g_object_unref(lit);
        return *n == 1;
    }
    r = g_resolver_get_default();
    list = g_resolver_lookup_by_name(r, u->host, NULL, error);
    g_object_unref(r);
    if (!list) {
        if (error && *error) {
            GError *e = *error;
            *error = g_error_new(SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_RESOLVE,
                                 "cannot resolve '%s': %s", u->host, e->message);
            g_error_free(e);
        }
        return FALSE;
    }
    for (l = list; l && *n < cap; l = l->next) {
        if (sluice_gio_addr_from_inet(&out[*n], l->data, u->port))
            (*n)++;
    }
    g_resolver_free_addresses(list);
    if (*n == 0)
        g_set_error(error, SLUICE_GIO_ERROR, SLUICE_GIO_ERROR_RESOLVE,
                    "'%s' has no IPv4 or IPv6 address", u->host);
    return *n > 0;
}
