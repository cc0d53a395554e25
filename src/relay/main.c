/* SPDX-License-Identifier: MIT */
/* sluice-relay: start-up (options, shared nonce key, credentials), worker
 * threads, the metrics thread, signals (SIGTERM/SIGINT stop, SIGUSR1 drain)
 * and a clean shutdown that frees everything. */
#include <errno.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay/relay.h"

int relay_log_level = SLUICE_LOG_INFO;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void relay_log(int level, const char *msg, const char *fmt, ...)
{
    char line[1024];
    size_t n;
    va_list ap;

    if (level > relay_log_level)
        return;
    n = (size_t)snprintf(line, sizeof line, "level=%s msg=\"%s\"", level_names[level & 3], msg);
    if (fmt && n < sizeof line - 1) {
        line[n++] = ' ';
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - n, fmt, ap);
        va_end(ap);
    }
    /* One write per line so threads do not interleave. */
    fprintf(stderr, "%s\n", line);
}

void relay_core_log_hook(void *ctx, sluice_log_level level, const char *module, const char *line)
{
    char esc[512];
    size_t j = 0;
    (void)ctx;
    for (size_t i = 0; line[i] && j + 2 < sizeof esc; i++) {
        if (line[i] == '"' || line[i] == '\\')
            esc[j++] = '\\';
        esc[j++] = line[i] == '\n' ? ' ' : line[i];
    }
    esc[j] = '\0';
    relay_log((int)level, esc, "module=%s", module);
}

const char *relay_addr_str(const sluice_addr *a, char buf[SLUICE_ADDR_STRLEN])
{
    if (sluice_addr_format(a, a->port != 0, buf, SLUICE_ADDR_STRLEN) < 0)
        snprintf(buf, SLUICE_ADDR_STRLEN, "?");
    return buf;
}

uint64_t relay_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int build_users(struct relay_ctx *ctx, const struct relay_options *o)
{
    ctx->n_users = o->n_users;
    if (!o->n_users)
        return 0;
    ctx->users = calloc(o->n_users, sizeof *ctx->users);
    if (!ctx->users)
        return -1;
    for (size_t i = 0; i < o->n_users; i++) {
        /* "NAME:PASSWORD": split in place (the options own the string). */
        char *colon = strchr(o->users[i], ':');
        *colon = '\0';
        ctx->users[i].name = o->users[i];
        ctx->users[i].password = colon + 1;
    }
    return 0;
}

static void pick_relay_addresses(struct relay_ctx *ctx, const struct relay_options *o)
{
    for (size_t i = 0; i < o->n_relay_ip; i++) {
        sluice_addr *b = o->relay_ip[i].family == SLUICE_AF_INET ? &ctx->bind4 : &ctx->bind6;
        if (!b->family)
            *b = o->relay_ip[i];
        else
            relay_log(SLUICE_LOG_WARNING, "ignoring an extra --relay-ip of the same family", NULL);
    }
    ctx->announce4 = ctx->bind4;
    ctx->announce6 = ctx->bind6;
    for (size_t i = 0; i < o->n_external_ip; i++) {
        if (o->external_ip[i].family == SLUICE_AF_INET)
            ctx->announce4 = o->external_ip[i];
        else
            ctx->announce6 = o->external_ip[i];
    }
    ctx->announce4.port = ctx->announce6.port = ctx->bind4.port = ctx->bind6.port = 0;
}

/* Read the certificate and key once, for every worker and connection; a
 * typo fails here, at start-up (exit 1), and not on the first client. */
static int load_tls(struct relay_ctx *ctx, const struct relay_options *o)
{
    sluice_tls_config tc;
    int err = 0;
    if (!o->tls_cert)
        return 0;
    sluice_tls_config_init(&tc);
    tc.server = true;
    tc.cert_file = o->tls_cert;
    tc.key_file = o->tls_key;
    ctx->tls = sluice_tls_server_ctx_new(&tc, &err);
    if (!ctx->tls) {
        relay_log(SLUICE_LOG_ERROR, "cannot use the TLS certificate or key",
                  "cert=%s key=%s error=\"%s\"", o->tls_cert, o->tls_key, sluice_strerror(err));
        return -1;
    }
    return 0;
}

static bool all_drained(struct relay_ctx *ctx)
{
    sluice_turn_server_stats st;
    struct relay_counters dc;
    relay_stats_sum(ctx, &st, &dc);
    return st.allocations == 0;
}

int main(int argc, char **argv)
{
    struct relay_options o;
    struct relay_ctx ctx;
    struct relay_worker **workers = NULL;
    struct relay_metrics *metrics = NULL;
    sigset_t sigs;
    int rc = 1;

    int pr = relay_options_parse(&o, argc, argv);
    if (pr != 0) {
        relay_options_free(&o);
        return pr > 0 ? 0 : 2;
    }
    relay_log_level = o.log_level;
    sluice_set_log_hook(relay_core_log_hook, NULL, (sluice_log_level)o.log_level);

    memset(&ctx, 0, sizeof ctx);
    ctx.o = &o;
    ctx.n_workers = o.workers;
    atomic_init(&ctx.stop, false);
    atomic_init(&ctx.draining, false);
    pick_relay_addresses(&ctx, &o);

    /* Signals go to this thread only (sigtimedwait); block them before any
     * thread starts so every thread inherits the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (RAND_bytes(ctx.nonce_key, sizeof ctx.nonce_key) != 1) {
        relay_log(SLUICE_LOG_ERROR, "RAND_bytes failed", NULL);
        goto out;
    }
    if (build_users(&ctx, &o) < 0 || load_tls(&ctx, &o) < 0)
        goto out;
    if (o.user_quota) {
        /* Twice the allocations the relay may hold (the table's maximum at
         * most): a user's window rarely fills. */
        int err = 0;
        uint64_t slots = 2 * o.max_allocations;
        ctx.quota = sluice_turn_quota_new(slots > (1u << 24) ? (1u << 24) : (size_t)slots, NULL,
                                          NULL, &err);
        if (!ctx.quota) {
            relay_log(SLUICE_LOG_ERROR, "cannot create the user quota table", "error=\"%s\"",
                      sluice_strerror(err));
            goto out;
        }
    }
    ctx.slots = calloc(ctx.n_workers, sizeof *ctx.slots);
    workers = calloc(ctx.n_workers, sizeof *workers);
    if (!ctx.slots || !workers)
        goto out;
    for (unsigned i = 0; i < ctx.n_workers; i++)
        pthread_mutex_init(&ctx.slots[i].lock, NULL);

    for (unsigned i = 0; i < ctx.n_workers; i++) {
        workers[i] = calloc(1, sizeof *workers[i]);
        if (!workers[i] || relay_worker_init(workers[i], &ctx, i) < 0) {
            relay_log(SLUICE_LOG_ERROR, "worker start-up failed", "worker=%u", i);
            goto out;
        }
    }
    if (o.metrics_on) {
        int err = 0;
        metrics = relay_metrics_start(&ctx, &err);
        if (!metrics)
            goto out;
    }
    for (unsigned i = 0; i < ctx.n_workers; i++) {
        if (pthread_create(&workers[i]->thread, NULL, relay_worker_run, workers[i]) != 0) {
            relay_log(SLUICE_LOG_ERROR, "pthread_create failed", NULL);
            goto out;
        }
        workers[i]->started = true;
    }
    {
        char b4[SLUICE_ADDR_STRLEN] = "none", b6[SLUICE_ADDR_STRLEN] = "none";
        if (ctx.announce4.family)
            relay_addr_str(&ctx.announce4, b4);
        if (ctx.announce6.family)
            relay_addr_str(&ctx.announce6, b6);
        relay_log(SLUICE_LOG_INFO, "ready",
                  "workers=%u relay_ip4=%s relay_ip6=%s ports=%u-%u users=%zu secrets=%zu tls=%s",
                  ctx.n_workers, b4, b6, o.min_port, o.max_port, o.n_users, o.n_secrets,
                  o.tls_cert ? "on" : "off");
    }

    bool drained_logged = false;
    for (;;) {
        struct timespec ts = {.tv_sec = 1};
        int sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            relay_log(SLUICE_LOG_INFO, "stopping", "signal=%s", sig == SIGTERM ? "TERM" : "INT");
            break;
        }
        if (sig == SIGUSR1 && !atomic_exchange(&ctx.draining, true))
            relay_log(SLUICE_LOG_INFO, "drain mode: refusing new allocations", NULL);
        if (sig == SIGHUP)
            relay_log(SLUICE_LOG_INFO, "SIGHUP ignored: restart to reload the configuration", NULL);
        if (atomic_load(&ctx.draining) && !drained_logged && all_drained(&ctx)) {
            relay_log(SLUICE_LOG_INFO, "drained: no allocations left", NULL);
            drained_logged = true;
        }
    }
    rc = 0;

out:
    atomic_store(&ctx.stop, true);
    if (workers) {
        for (unsigned i = 0; i < ctx.n_workers; i++)
            if (workers[i] && workers[i]->started)
                relay_worker_wake(workers[i]);
        for (unsigned i = 0; i < ctx.n_workers; i++) {
            if (!workers[i])
                continue;
            if (workers[i]->started)
                pthread_join(workers[i]->thread, NULL);
            relay_worker_free(workers[i]);
            free(workers[i]);
        }
        free(workers);
    }
    if (metrics)
        relay_metrics_stop(metrics);
    if (ctx.slots) {
        for (unsigned i = 0; i < ctx.n_workers; i++)
            pthread_mutex_destroy(&ctx.slots[i].lock);
        free(ctx.slots);
    }
    sluice_turn_quota_free(ctx.quota); /* after every core that used it */
    sluice_tls_server_ctx_free(ctx.tls);
    free(ctx.users);
    relay_options_free(&o);
    if (rc == 0)
        relay_log(SLUICE_LOG_INFO, "stopped", NULL);
    return rc;
}
