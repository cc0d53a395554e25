/* SPDX-License-Identifier: MIT */
/* sluice-coord options: the option table, command line, SLUICE_COORD_*
 * environment, `name = value` config file, --help and validation. */
#include "coordd/options.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice_config.h"

enum kind { K_ADDRS, K_STR, K_STRS, K_U64, K_METRICS, K_LEVEL };

/* Where a value came from; a higher layer replaces a repeatable list. */
enum layer { L_DEFAULT, L_CONFIG, L_ENV, L_CLI };

struct opt {
    const char *name;
    enum kind kind;
    size_t off;        /* field in struct coordd_options */
    size_t n_off;      /* K_ADDRS, K_STRS: the count field */
    size_t cap;        /* K_ADDRS, K_STRS: most values; K_STR: unused */
    uint64_t min, max; /* K_U64 */
    const char *arg;
    const char *def; /* "" none; "$..." describes a default computed later */
    const char *help;
};

#define F(field) offsetof(struct coordd_options, field)

static const struct opt opts[] = {
    {"listen", K_ADDRS, F(listen), F(n_listen), COORDD_MAX_LISTEN, 0, 0, "ADDR", "127.0.0.1",
     "address to accept clients on (repeatable; IPv4 or IPv6, no port)"},
    {"port", K_U64, F(port), 0, 0, 0, 65535, "N", "7878",
     "TCP port of the listeners (0: any free port, shown in the ready line)"},
    {"tls-cert", K_STR, F(tls_cert), 0, 0, 0, 0, "FILE", "",
     "PEM certificate chain of the coordinator (none: a self-signed one in --state-dir)"},
    {"tls-key", K_STR, F(tls_key), 0, 0, 0, 0, "FILE", "", "PEM private key for --tls-cert"},
    {"state-dir", K_STR, F(state_dir), 0, 0, 0, 0, "DIR",
     "$XDG_STATE_HOME/sluice-coord or ~/.local/state/sluice-coord",
     "where the generated certificate and key are kept"},
    {"server-name", K_STRS, F(server_names), F(n_server_names), COORDD_MAX_NAMES, 0, 0, "NAME",
     "localhost",
     "DNS name or IP address clients use to reach the coordinator, put in the generated "
     "certificate (repeatable; the first is also its CN)"},
    {"client-ca", K_STR, F(client_ca), 0, 0, 0, 0, "FILE", "",
     "PEM CA bundle: only clients whose certificate it signed may connect (none: any "
     "certificate valid for the client's name)"},
    {"turn-secret", K_STR, F(turn_secret), 0, 0, 0, 0, "S", "",
     "TURN REST shared secret (sluice-relay --auth-secret) for direct-channel credentials"},
    {"turn-uri", K_STRS, F(turn_uris), F(n_turn_uris), SLUICE_COORD_TURN_URIS_MAX, 0, 0, "URI", "",
     "TURN server handed out with the credentials, e.g. turn:relay.example:3478 (repeatable, "
     "1-4; required with --turn-secret)"},
    {"turn-ttl", K_U64, F(turn_ttl), 0, 0, 60, 31536000, "S", "86400",
     "lifetime of the TURN credentials, in seconds"},
    {"max-connections", K_U64, F(max_connections), 0, 0, 1, 1000000, "N", "1024",
     "client connections at once (a few more are accepted to be told SERVER_FULL)"},
    {"max-streams-per-client", K_U64, F(max_streams_per_client), 0, 0, 1, 65536, "N", "64",
     "streams open at once on one connection"},
    {"max-channels", K_U64, F(max_channels), 0, 0, 1, 1000000, "N", "256", "broadcast channels"},
    {"max-members", K_U64, F(max_members), 0, 0, 1, 1000000, "N", "256",
     "members of one broadcast channel"},
    {"max-message", K_U64, F(max_message), 0, 0, 1, SLUICE_COORD_MAX_MESSAGE_LIMIT, "BYTES",
     "65536", "largest message on a stream"},
    {"window", K_U64, F(window), 0, 0, 1, 2147483647, "BYTES", "262144",
     "credit per stream and direction (at least 12 + --max-message; the default grows to fit)"},
    {"idle-timeout", K_U64, F(idle_timeout), 0, 0, 1, 86400, "S", "60",
     "disconnect a client after this many seconds without a byte (clients ping at a third)"},
    {"metrics-listen", K_METRICS, F(metrics), 0, 0, 0, 0, "ADDR:PORT", "127.0.0.1:9478",
     "Prometheus GET /metrics and GET /healthz endpoint (off: disabled)"},
    {"log-level", K_LEVEL, F(log_level), 0, 0, 0, 0, "LEVEL", "info",
     "error, warning, info or debug"},
    {"config", K_STR, F(config), 0, 0, 0, 0, "FILE", "",
     "read `name = value` lines with these option names first"},
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

struct parser {
    struct coordd_options *o;
    enum layer set_by[N_OPTS];
    const char *where; /* for messages */
};

static void usage_error(const struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void usage_error(const struct parser *p, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "sluice-coord: %s: ", p->where);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see --help)\n", stderr);
}

static void env_name(const char *name, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "SLUICE_COORD_");
    for (; *name && n + 1 < cap; name++)
        buf[n++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
    buf[n] = '\0';
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* "1.2.3.4:80" or "[::1]:80": a port is required (0: any free port). */
static bool has_port(const char *v)
{
    if (*v == '[')
        return strstr(v, "]:") != NULL;
    const char *c = strchr(v, ':');
    return c && !strchr(c + 1, ':');
}

static void *field(const struct parser *p, const struct opt *op)
{
    return (char *)p->o + op->off;
}

static size_t *count_field(const struct parser *p, const struct opt *op)
{
    return (size_t *)(void *)((char *)p->o + op->n_off);
}

static void clear_list(struct parser *p, const struct opt *op)
{
    size_t *n = count_field(p, op);
    if (op->kind == K_STRS) {
        char **v = field(p, op);
        for (size_t i = 0; i < *n; i++) {
            free(v[i]);
            v[i] = NULL;
        }
    }
    *n = 0;
}

/* Apply one value of one option. */
static int set_one(struct parser *p, const struct opt *op, const char *v)
{
    uint64_t u;
    sluice_addr a;

    switch (op->kind) {
    case K_ADDRS: {
        sluice_addr *arr = field(p, op);
        size_t *n = count_field(p, op);
        if (sluice_addr_parse(&a, v, 0) < 0 || a.port != 0) {
            usage_error(p, "--%s: '%s' is not an IPv4 or IPv6 address (without a port)", op->name,
                        v);
            return -1;
        }
        if (*n == op->cap) {
            usage_error(p, "--%s: at most %zu addresses", op->name, op->cap);
            return -1;
        }
        arr[(*n)++] = a;
        return 0;
    }
    case K_STR: {
        char **slot = field(p, op);
        char *c = strdup(v);
        if (!c)
            return -1;
        free(*slot);
        *slot = c;
        return 0;
    }
    case K_STRS: {
        char **arr = field(p, op);
        size_t *n = count_field(p, op);
        if (!*v) {
            usage_error(p, "--%s: empty value", op->name);
            return -1;
        }
        if (*n == op->cap) {
            usage_error(p, "--%s: at most %zu values", op->name, op->cap);
            return -1;
        }
        if (!strcmp(op->name, "turn-uri") && strlen(v) > SLUICE_COORD_URI_MAX) {
            usage_error(p, "--turn-uri: longer than %d bytes", SLUICE_COORD_URI_MAX);
            return -1;
        }
        if (!strcmp(op->name, "server-name") &&
            (strlen(v) > 253 || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789.-_:*") != strlen(v))) {
            usage_error(p, "--server-name: '%s' is not a DNS name or IP address", v);
            return -1;
        }
        if (!(arr[*n] = strdup(v)))
            return -1;
        (*n)++;
        return 0;
    }
    case K_U64:
        if (parse_u64(v, &u) < 0 || u < op->min || u > op->max) {
            usage_error(p, "--%s: '%s' is not a number from %llu to %llu", op->name, v,
                        (unsigned long long)op->min, (unsigned long long)op->max);
            return -1;
        }
        *(uint64_t *)field(p, op) = u;
        if (!strcmp(op->name, "window"))
            p->o->window_given = p->set_by[op - opts] > L_DEFAULT;
        return 0;
    case K_METRICS:
        if (!strcmp(v, "off")) {
            p->o->metrics_on = false;
            return 0;
        }
        if (!has_port(v) || sluice_addr_parse(&a, v, 0) < 0) {
            usage_error(p, "--metrics-listen: '%s' is not ADDR:PORT or off", v);
            return -1;
        }
        p->o->metrics_on = true;
        p->o->metrics = a;
        return 0;
    case K_LEVEL: {
        static const char *const names[] = {"error", "warning", "info", "debug"};
        for (int i = 0; i < 4; i++) {
            if (!strcmp(v, names[i])) {
                p->o->log_level = (uint64_t)i;
                return 0;
            }
        }
        usage_error(p, "--log-level: '%s' is not error, warning, info or debug", v);
        return -1;
    }
    }
    return -1;
}

/* Set an option from a layer. Repeatable options given in one string (an
 * environment variable) are comma separated. */
static int set_opt(struct parser *p, size_t idx, const char *v, enum layer layer, bool split)
{
    const struct opt *op = &opts[idx];
    bool repeat = op->kind == K_ADDRS || op->kind == K_STRS;

    if (repeat && p->set_by[idx] < layer)
        clear_list(p, op);
    p->set_by[idx] = layer;
    if (!repeat || !split)
        return set_one(p, op, v);
    char *copy = strdup(v), *save = NULL;
    if (!copy)
        return -1;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        size_t n = strlen(tok);
        while (n && isspace((unsigned char)tok[n - 1]))
            tok[--n] = '\0';
        if (n)
            rc = set_one(p, op, tok);
    }
    free(copy);
    return rc;
}

static long find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len))
            return (long)i;
    return -1;
}

static int read_config(struct parser *p, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    unsigned lineno = 0;
    char where[512];
    int rc = 0;

    if (!f) {
        fprintf(stderr, "sluice-coord: --config %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(where, sizeof where, "%s:%u", path, lineno);
        p->where = where;
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s || *s == '#')
            continue;
        size_t n = strlen(s);
        while (n && isspace((unsigned char)s[n - 1]))
            s[--n] = '\0';
        char *eq = strchr(s, '=');
        if (!eq) {
            usage_error(p, "expected `name = value`");
            rc = -1;
            break;
        }
        char *name_end = eq;
        while (name_end > s && isspace((unsigned char)name_end[-1]))
            name_end--;
        char *v = eq + 1;
        while (isspace((unsigned char)*v))
            v++;
        long idx = find_opt(s, (size_t)(name_end - s));
        if (idx < 0 || !strcmp(opts[idx].name, "config")) {
            usage_error(p, "unknown option '%.*s'", (int)(name_end - s), s);
            rc = -1;
            break;
        }
        rc = set_opt(p, (size_t)idx, v, L_CONFIG, false);
    }
    fclose(f);
    return rc;
}

static void print_help(void)
{
    char env[64], left[64];
    printf("usage: sluice-coord [options]\n"
           "A sluice coordinator: named clients connect over TLS 1.3 and get proxied,\n"
           "broadcast and direct (NAT-punched) message streams to each other\n"
           "(docs/coordinator.md). Every option can also be set by its environment\n"
           "variable (repeatable options: a comma separated list) or by a `name = value`\n"
           "line in the --config file; the command line wins over the environment, which\n"
           "wins over the file.\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        env_name(opts[i].name, env, sizeof env);
        snprintf(left, sizeof left, "--%s %s", opts[i].name, opts[i].arg);
        printf("  %-31s %s\n", left, opts[i].help);
        printf("  %-31s [env %s] [default: %s]\n", "", env, *opts[i].def ? opts[i].def : "none");
    }
    printf("  %-31s %s\n", "-h, --help", "this text");
    printf("  %-31s %s\n", "--version", "print the version");
    printf("Signals: SIGTERM/SIGINT disconnect every client with SHUTDOWN, flush for up\n"
           "to 2 s and exit 0.\n"
           "Built-in service: a COORD stream labelled \"sluice/clients\" receives one\n"
           "message listing the connected client names, one per line.\n");
}

static int validate(struct coordd_options *o)
{
    if (o->n_listen == 0) {
        fprintf(stderr, "sluice-coord: no --listen address (see --help)\n");
        return -1;
    }
    if (!o->tls_cert != !o->tls_key) {
        fprintf(stderr, "sluice-coord: --tls-cert and --tls-key go together (see --help)\n");
        return -1;
    }
    if (!o->tls_cert && o->n_server_names == 0) {
        fprintf(stderr, "sluice-coord: no --server-name for the generated certificate\n");
        return -1;
    }
    if (!o->turn_secret != (o->n_turn_uris == 0)) {
        fprintf(stderr, "sluice-coord: --turn-secret needs at least one --turn-uri and "
                        "--turn-uri needs --turn-secret (see --help)\n");
        return -1;
    }
    uint64_t need = SLUICE_COORD_MESSAGE_COST(o->max_message);
    if (o->window < need) {
        if (o->window_given) {
            fprintf(stderr,
                    "sluice-coord: --window %llu is below 12 + --max-message (%llu) (see --help)\n",
                    (unsigned long long)o->window, (unsigned long long)need);
            return -1;
        }
        o->window = need;
    }
    if (!o->tls_cert && !o->state_dir) {
        const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
        char buf[4096];
        if (xdg && *xdg == '/')
            snprintf(buf, sizeof buf, "%s/sluice-coord", xdg);
        else if (home && *home)
            snprintf(buf, sizeof buf, "%s/.local/state/sluice-coord", home);
        else {
            fprintf(stderr, "sluice-coord: neither XDG_STATE_HOME nor HOME is set: give "
                            "--state-dir or --tls-cert/--tls-key\n");
            return -1;
        }
        if (!(o->state_dir = strdup(buf)))
            return -1;
    }
    return 0;
}

static void drop_empty(char **s)
{
    if (*s && !**s) {
        free(*s);
        *s = NULL;
    }
}

int coordd_options_parse(struct coordd_options *o, int argc, char **argv)
{
    struct parser p = {.o = o, .where = "defaults"};
    char env[64];

    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *d = opts[i].def;
        if (!*d || *d == '$') /* none, or computed in validate() */
            continue;
        if (set_opt(&p, i, d, L_DEFAULT, false) < 0)
            return -1;
    }

    /* --config comes from the command line, else from the environment. */
    const char *config = getenv("SLUICE_COORD_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            print_help();
            return 1;
        } else if (!strcmp(argv[i], "--version")) {
            printf("sluice-coord %s\n", SLUICE_VERSION_STRING);
            return 1;
        }
    }
    if (config && *config && read_config(&p, config) < 0)
        return -1;

    p.where = "environment";
    for (size_t i = 0; i < N_OPTS; i++) {
        env_name(opts[i].name, env, sizeof env);
        const char *v = getenv(env);
        if (v && strcmp(opts[i].name, "config") && set_opt(&p, i, v, L_ENV, true) < 0)
            return -1;
    }

    p.where = "command line";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strncmp(a, "--", 2)) {
            usage_error(&p, "unexpected argument '%s'", a);
            return -1;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        long idx = find_opt(a, len);
        if (idx < 0) {
            usage_error(&p, "unknown option '--%.*s'", (int)len, a);
            return -1;
        }
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else {
            usage_error(&p, "--%s needs a value", opts[idx].name);
            return -1;
        }
        if (!strcmp(opts[idx].name, "config"))
            continue;
        if (set_opt(&p, (size_t)idx, v, L_CLI, false) < 0)
            return -1;
    }
    drop_empty(&o->tls_cert);
    drop_empty(&o->tls_key);
    drop_empty(&o->state_dir);
    drop_empty(&o->client_ca);
    drop_empty(&o->turn_secret);
    return validate(o);
}

void coordd_options_free(struct coordd_options *o)
{
    for (size_t i = 0; i < o->n_server_names; i++)
        free(o->server_names[i]);
    for (size_t i = 0; i < o->n_turn_uris; i++)
        free(o->turn_uris[i]);
    free(o->tls_cert);
    free(o->tls_key);
    free(o->state_dir);
    free(o->client_ca);
    free(o->turn_secret);
    free(o->config);
    memset(o, 0, sizeof *o);
}
