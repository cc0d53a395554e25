/* SPDX-License-Identifier: MIT */
/* sluice-coord options: one table drives the command line, the
 * SLUICE_COORD_* environment variables, the config file and --help. */
#ifndef SLUICE_COORDD_OPTIONS_H
#define SLUICE_COORDD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/coord.h"

#define COORDD_MAX_LISTEN 16
#define COORDD_MAX_NAMES 16

struct coordd_options {
    sluice_addr listen[COORDD_MAX_LISTEN];
    size_t n_listen;
    uint64_t port; /* 0: any free port (tests) */
    char *tls_cert, *tls_key;
    char *state_dir;
    char *server_names[COORDD_MAX_NAMES];
    size_t n_server_names;
    char *client_ca;
    char *turn_secret;
    char *turn_uris[SLUICE_COORD_TURN_URIS_MAX];
    size_t n_turn_uris;
    uint64_t turn_ttl;
    uint64_t max_connections, max_streams_per_client, max_channels, max_members;
    uint64_t max_message, window;
    bool window_given;     /* --window set by the user (else raised to fit --max-message) */
    uint64_t idle_timeout; /* seconds */
    bool metrics_on;
    sluice_addr metrics;
    uint64_t log_level; /* sluice_log_level */
    char *config;
};

/* Parse defaults < config file < environment < command line into o.
 * Returns 0 to run, 1 when --help/--version was printed (exit 0), -1 on a
 * usage error (printed to stderr; exit 2). */
int coordd_options_parse(struct coordd_options *o, int argc, char **argv);
void coordd_options_free(struct coordd_options *o);

#endif
