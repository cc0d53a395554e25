/* SPDX-License-Identifier: MIT */
/* TURN server peer policy: which XOR-PEER-ADDRESS a client may reach.
 * One canonicalising check (coturn CVE-2020-26262): address classes from
 * sluice_addr_classify, allow and deny prefixes, IPv4-in-IPv6 forms. */
#include <stdio.h>
#include <string.h>

#include "turn/server_internal.h"

int sluice_turn_cidr_parse(sluice_turn_cidr *c, const char *text)
{
    char buf[SLUICE_ADDR_STRLEN];
    const char *slash;
    size_t alen;
    long plen = -1;

    if (!c || !text)
        return SLUICE_ERR_INVALID;
    slash = strchr(text, '/');
    alen = slash ? (size_t)(slash - text) : strlen(text);
    if (alen == 0 || alen >= sizeof buf)
        return SLUICE_ERR_MALFORMED;
    memcpy(buf, text, alen);
    buf[alen] = 0;
    if (sluice_addr_parse(&c->addr, buf, 0) < 0 || c->addr.port != 0)
        return SLUICE_ERR_MALFORMED;
    unsigned max = c->addr.family == SLUICE_AF_INET ? 32 : 128;
    if (slash) {
        const char *p = slash + 1;
        if (!*p)
            return SLUICE_ERR_MALFORMED;
        plen = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9' || plen > 128)
                return SLUICE_ERR_MALFORMED;
            plen = plen * 10 + (*p - '0');
        }
        if (plen > (long)max)
            return SLUICE_ERR_MALFORMED;
    }
    c->prefix_len = (uint8_t)(plen < 0 ? max : (unsigned long)plen);
    c->addr.scope_id = 0;
    return 0;
}

static bool prefix_match(const sluice_turn_cidr *c, const sluice_addr *a)
{
    if (c->addr.family != a->family)
        return false;
    unsigned bits = c->prefix_len, i = 0;
    for (; bits >= 8; bits -= 8, i++)
        if (c->addr.ip[i] != a->ip[i])
            return false;
    if (bits) {
        uint8_t mask = (uint8_t)(0xFF << (8 - bits));
        if ((c->addr.ip[i] & mask) != (a->ip[i] & mask))
            return false;
    }
    return true;
}

static bool list_match(const sluice_turn_cidr *list, size_t n, const sluice_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (prefix_match(&list[i], a))
            return true;
    return false;
}

int srv_policy_init(sluice_turn_server *s, const sluice_turn_server_config *cfg)
{
    for (size_t i = 0; i < cfg->n_allow; i++)
        if (cfg->allow[i].prefix_len > (cfg->allow[i].addr.family == SLUICE_AF_INET ? 32 : 128))
            return SLUICE_ERR_INVALID;
    for (size_t i = 0; i < cfg->n_deny; i++)
        if (cfg->deny[i].prefix_len > (cfg->deny[i].addr.family == SLUICE_AF_INET ? 32 : 128))
            return SLUICE_ERR_INVALID;
    if (cfg->n_allow) {
        s->allow = srv_calloc(s, cfg->n_allow, sizeof *s->allow);
        if (!s->allow)
            return SLUICE_ERR_NOMEM;
        memcpy(s->allow, cfg->allow, cfg->n_allow * sizeof *s->allow);
        s->n_allow = cfg->n_allow;
    }
    if (cfg->n_deny) {
        s->deny = srv_calloc(s, cfg->n_deny, sizeof *s->deny);
        if (!s->deny)
            return SLUICE_ERR_NOMEM;
        memcpy(s->deny, cfg->deny, cfg->n_deny * sizeof *s->deny);
        s->n_deny = cfg->n_deny;
    }
    return 0;
}

bool srv_peer_allowed(const sluice_turn_server *s, const sluice_addr *peer)
{
    sluice_addr embedded;
    uint32_t cls;

    if (peer->family != SLUICE_AF_INET && peer->family != SLUICE_AF_INET6)
        return false;
    /* The port is not looked at: CreatePermission names IPs only (clients
     * often send port 0); ChannelBind and Send check it themselves. */
    cls = sluice_addr_classify(peer, &embedded);
    /* An explicit deny wins, on the address and on the IPv4 address it
     * embeds, so ::ffff:127.0.0.1 hits a 127.0.0.0/8 entry. */
    if (list_match(s->deny, s->n_deny, peer) || list_match(s->deny, s->n_deny, &embedded))
        return false;
    if (!(cls & s->cfg.deny_classes))
        return true;
    /* A denied class is let through only by an allow prefix that names the
     * address as written: allowing 10.0.0.0/8 does not open the mapped,
     * 6to4 or NAT64 spellings of it, which reach other routers. */
    return list_match(s->allow, s->n_allow, peer);
}

int sluice_turn_server_check_peer(const sluice_turn_server *s, const sluice_addr *peer)
{
    if (!s || !peer)
        return SLUICE_ERR_INVALID;
    return srv_peer_allowed(s, peer) ? 0 : SLUICE_STUN_ERR_FORBIDDEN;
}
