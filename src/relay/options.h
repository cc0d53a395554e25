/* SPDX-License-Identifier: MIT */
/* sluice-relay options: one table drives the command line, the
 * SLUICE_RELAY_* environment variables, the config file and --help. */
#ifndef SLUICE_RELAY_OPTIONS_H
#define SLUICE_RELAY_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/turn_server.h"

#define RELAY_MAX_LISTEN 16
#define RELAY_MAX_CIDR 64

struct relay_options {
    sluice_addr listen[RELAY_MAX_LISTEN];
    size_t n_listen;
    uint16_t port, tls_port;
    char *tls_cert, *tls_key;
    char *realm;
    char *software;
    /* "NAME:PASSWORD" entries from --user, then those of --users-file. */
    char **users;
    size_t n_users;
    char *users_file;
    char **secrets;
    size_t n_secrets;
    sluice_addr relay_ip[4];
    size_t n_relay_ip;
    sluice_addr external_ip[4];
    size_t n_external_ip;
    uint16_t min_port, max_port;
    sluice_turn_cidr allow[RELAY_MAX_CIDR], deny[RELAY_MAX_CIDR];
    size_t n_allow, n_deny;
    uint64_t max_allocations, user_quota, bandwidth;
    uint64_t max_lifetime;
    uint64_t challenge_rate, challenge_burst;
    unsigned workers;
    uint64_t max_connections;
    /* Where drain mode sends new allocations (300 Try Alternate): [0] IPv4,
     * [1] IPv6, family SLUICE_AF_NONE when not given. */
    sluice_addr alternate[2];
    uint16_t alternate_tls_port;
    char *alternate_domain;
    bool metrics_on;
    sluice_addr metrics;
    int log_level; /* sluice_log_level */
    char *config;
};

/* Parse defaults < config file < environment < command line into o.
 * Returns 0 to run, 1 when --help/--version was printed (exit 0), -1 on a
 * usage error (printed to stderr; exit 2). */
int relay_options_parse(struct relay_options *o, int argc, char **argv);
void relay_options_free(struct relay_options *o);

#endif
