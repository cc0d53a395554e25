/* SPDX-License-Identifier: MIT */
/* Glue between sluice ICE drivers (tests/common/ice_driver.h) and libnice
 * in one thread: one ppoll() over the drivers' sockets and a GMainContext's
 * fds, and libnice addresses as sluice_addr. Used by the libnice interop
 * test and the connection-setup benchmark. Header-only. */
#ifndef SLUICE_TEST_ICE_NICE_H
#define SLUICE_TEST_ICE_NICE_H

#include "ice_driver.h"

#include <glib.h>
#include <nice/agent.h>

_Static_assert(sizeof(GPollFD) == sizeof(struct pollfd), "GPollFD is struct pollfd");

#define ICE_NICE_MAX_DRIVERS 4

static inline sluice_addr ice_nice_addr(const NiceAddress *na)
{
    struct sockaddr_storage ss;
    sluice_addr a = {0};
    nice_address_copy_to_sockaddr(na, (struct sockaddr *)&ss);
    sluice_addr_from_sockaddr(&a, &ss, sizeof ss);
    return a;
}

/* Run the drivers' due timers, transmits and events. */
static inline void ice_nice_flush(ice_driver *const *drv, size_t n_drv)
{
    for (size_t i = 0; i < n_drv; i++)
        if (drv[i])
            ice_drv_flush(drv[i]);
}

/* One round: flush the drivers (NULL entries are skipped), then wait in one
 * ppoll() over their sockets and ctx's fds until one is ready, the
 * earliest agent timeout, GLib's timeout or deadline_us; read the sockets,
 * flush again, then check and dispatch ctx (which the caller has
 * acquired). A caller whose condition may have been met by the first flush
 * flushes and tests it before calling this. */
static inline void ice_nice_iterate(GMainContext *ctx, ice_driver *const *drv, size_t n_drv,
                                    uint64_t deadline_us)
{
    GPollFD gfds[32];
    struct pollfd pfd[ICE_DRV_MAX_POLL];
    ice_driver *owner[ICE_DRV_MAX_POLL];
    struct ice_drv_sock *sock[ICE_DRV_MAX_POLL];
    size_t n = 0;
    gint prio, timeout_ms;
    uint64_t until = deadline_us, now;
    ice_nice_flush(drv, n_drv);
    g_main_context_prepare(ctx, &prio);
    gint ng = g_main_context_query(ctx, prio, &timeout_ms, gfds, G_N_ELEMENTS(gfds));
    if (ng > (gint)G_N_ELEMENTS(gfds))
        ng = G_N_ELEMENTS(gfds);
    for (size_t i = 0; i < n_drv; i++) {
        if (!drv[i])
            continue;
        for (size_t k = 0; k < drv[i]->n_socks && n < ICE_DRV_MAX_POLL; k++) {
            owner[n] = drv[i];
            sock[n] = &drv[i]->socks[k];
            pfd[n++] = (struct pollfd){.fd = drv[i]->socks[k].fd, .events = POLLIN};
        }
        uint64_t t = sluice_ice_agent_next_timeout(drv[i]->ag);
        if (t < until)
            until = t;
    }
    size_t n_sock = n;
    if ((size_t)ng > ICE_DRV_MAX_POLL - n_sock)
        ng = (gint)(ICE_DRV_MAX_POLL - n_sock);
    for (gint i = 0; i < ng; i++)
        pfd[n++] = (struct pollfd){.fd = gfds[i].fd, .events = (short)gfds[i].events};
    now = ice_drv_now_us();
    if (timeout_ms >= 0 && now + (uint64_t)timeout_ms * 1000u < until)
        until = now + (uint64_t)timeout_ms * 1000u;
    uint64_t wait = until > now ? until - now : 0;
    struct timespec ts = {.tv_sec = (time_t)(wait / 1000000u),
                          .tv_nsec = (long)(wait % 1000000u) * 1000};
    int rc = ppoll(pfd, (nfds_t)n, &ts, NULL);
    for (size_t i = 0; i < n_sock; i++)
        if (rc > 0 && (pfd[i].revents & (POLLIN | POLLERR)))
            ice_drv_read(owner[i], sock[i]);
    ice_nice_flush(drv, n_drv);
    for (gint i = 0; i < ng; i++)
        gfds[i].revents = rc > 0 ? (gushort)pfd[n_sock + (size_t)i].revents : 0;
    if (g_main_context_check(ctx, prio, gfds, ng))
        g_main_context_dispatch(ctx);
}

#endif
