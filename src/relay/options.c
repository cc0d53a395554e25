/* SPDX-License-Identifier: MIT */
/* sluice-relay options: the option table, command line, SLUICE_RELAY_*
 * environment, `name = value` config file, --help and validation. */
#include "relay/options.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice_config.h"

enum kind { K_ADDRS, K_PORT, K_STR, K_STRS, K_CIDRS, K_U64, K_METRICS, K_LEVEL, K_FLAG, K_ALT };

/* Where a value came from; a higher layer replaces a repeatable list. */
enum layer { L_DEFAULT, L_CONFIG, L_ENV, L_CLI };

struct opt {
    const char *name;
    enum kind kind;
    const char *arg;
    const char *def;
    const char *help;
};

static const struct opt opts[] = {
    {"listen", K_ADDRS, "ADDR", "127.0.0.1",
     "address of the UDP/TCP/TLS listeners (repeatable; IPv4 or IPv6, no port)"},
    {"port", K_PORT, "N", "3478", "UDP and TCP listener port"},
    {"tls-port", K_PORT, "N", "5349", "TLS listener port (only with --tls-cert and --tls-key)"},
    {"tls-cert", K_STR, "FILE", "", "PEM certificate chain of the TLS listener"},
    {"tls-key", K_STR, "FILE", "", "PEM private key of the TLS listener"},
    {"realm", K_STR, "R", "sluice", "REALM of the long-term credentials"},
    {"software", K_STR, "S", "sluice-relay " SLUICE_VERSION_STRING,
     "SOFTWARE attribute on responses (empty: none)"},
    {"user", K_STRS, "NAME:PASSWORD", "", "static long-term user (repeatable)"},
    {"users-file", K_STR, "FILE", "", "file of NAME:PASSWORD lines (# comments)"},
    {"auth-secret", K_STRS, "S", "",
     "TURN REST shared secret (repeatable: every one is accepted, for rotation)"},
    {"relay-ip", K_ADDRS, "ADDR", "the --listen addresses",
     "address relay sockets bind to (repeatable; one per family is used)"},
    {"external-ip", K_ADDRS, "ADDR", "",
     "public address of a relay behind 1:1 NAT, announced instead of --relay-ip "
     "of its family (repeatable; one per family)"},
    {"min-port", K_PORT, "N", "49152", "lowest relay port"},
    {"max-port", K_PORT, "N", "65535", "highest relay port"},
    {"allow-peer", K_CIDRS, "CIDR", "",
     "allow peers in this prefix although their class is denied (repeatable)"},
    {"deny-peer", K_CIDRS, "CIDR", "", "always refuse peers in this prefix (repeatable)"},
    {"max-allocations", K_U64, "N", "8192", "allocations in total (split between workers)"},
    {"user-quota", K_U64, "N", "64",
     "allocations per user, all workers together (0: no per-user limit)"},
    {"bandwidth", K_U64, "BYTES", "0",
     "relayed bytes per second per allocation and direction (0: unlimited)"},
    {"challenge-rate", K_U64, "N", "10",
     "401/438 challenges per second per client IP; more are not answered (1..1000000)"},
    {"challenge-burst", K_U64, "N", "20", "burst of challenges per client IP (1..1000000)"},
    {"max-lifetime", K_U64, "S", "3600", "longest allocation lifetime granted, in seconds"},
    {"workers", K_U64, "N", "the number of online CPUs", "worker threads (0: one per CPU)"},
    {"max-connections", K_U64, "N", "4096", "TCP/TLS client connections per worker"},
    {"alternate-server", K_ALT, "ADDR:PORT", "",
     "in drain mode, send new allocations there with 300 Try Alternate instead of "
     "refusing them with 508 (repeatable: one per family; [IPv6]:PORT)"},
    {"alternate-tls-port", K_PORT, "N", "the --alternate-server port",
     "the alternate server's TLS port, for requests that came over TLS"},
    {"alternate-domain", K_STR, "NAME", "",
     "ALTERNATE-DOMAIN sent with a redirect over TLS: the name on the alternate's certificate"},
    {"metrics-listen", K_METRICS, "ADDR:PORT", "127.0.0.1:9641",
     "Prometheus /metrics and POST /drain endpoint (off: disabled)"},
    {"log-level", K_LEVEL, "LEVEL", "info", "error, warning, info or debug"},
    {"config", K_STR, "FILE", "", "read `name = value` lines with these option names first"},
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

struct parser {
    struct relay_options *o;
    enum layer set_by[N_OPTS];
    const char *where; /* for messages */
};

static void usage_error(const struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void usage_error(const struct parser *p, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "sluice-relay: %s: ", p->where);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see --help)\n", stderr);
}

static void env_name(const char *name, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "SLUICE_RELAY_");
    for (; *name && n + 1 < cap; name++)
        buf[n++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
    buf[n] = '\0';
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static void clear_list(struct relay_options *o, const char *name)
{
    size_t i;
    if (!strcmp(name, "user")) {
        for (i = 0; i < o->n_users; i++)
            free(o->users[i]);
        o->n_users = 0;
    } else if (!strcmp(name, "auth-secret")) {
        for (i = 0; i < o->n_secrets; i++)
            free(o->secrets[i]);
        o->n_secrets = 0;
    } else if (!strcmp(name, "listen")) {
        o->n_listen = 0;
    } else if (!strcmp(name, "relay-ip")) {
        o->n_relay_ip = 0;
    } else if (!strcmp(name, "external-ip")) {
        o->n_external_ip = 0;
    } else if (!strcmp(name, "allow-peer")) {
        o->n_allow = 0;
    } else if (!strcmp(name, "deny-peer")) {
        o->n_deny = 0;
    } else if (!strcmp(name, "alternate-server")) {
        memset(o->alternate, 0, sizeof o->alternate);
    }
}

static int push_str(char ***list, size_t *n, const char *v)
{
    char **grown = realloc(*list, (*n + 1) * sizeof(**list));
    if (!grown)
        return -1;
    *list = grown;
    if (!(grown[*n] = strdup(v)))
        return -1;
    (*n)++;
    return 0;
}

static int set_str(char **slot, const char *v)
{
    char *c = strdup(v);
    if (!c)
        return -1;
    free(*slot);
    *slot = c;
    return 0;
}

/* Apply one value of one option. */
static int set_one(struct parser *p, size_t idx, const char *v)
{
    const struct opt *op = &opts[idx];
    struct relay_options *o = p->o;
    uint64_t u;
    sluice_addr a;

    switch (op->kind) {
    case K_ADDRS: {
        sluice_addr *arr;
        size_t *n, cap;
        if (!strcmp(op->name, "listen"))
            arr = o->listen, n = &o->n_listen, cap = RELAY_MAX_LISTEN;
        else if (!strcmp(op->name, "relay-ip"))
            arr = o->relay_ip, n = &o->n_relay_ip, cap = 4;
        else
            arr = o->external_ip, n = &o->n_external_ip, cap = 4;
        if (sluice_addr_parse(&a, v, 0) < 0 || a.port != 0) {
            usage_error(p, "--%s: '%s' is not an IPv4 or IPv6 address", op->name, v);
            return -1;
        }
        if (*n == cap) {
            usage_error(p, "--%s: at most %zu addresses", op->name, cap);
            return -1;
        }
        arr[(*n)++] = a;
        return 0;
    }
    case K_PORT:
        if (parse_u64(v, &u) < 0 || u == 0 || u > 65535) {
            usage_error(p, "--%s: '%s' is not a port (1-65535)", op->name, v);
            return -1;
        }
        if (!strcmp(op->name, "port"))
            o->port = (uint16_t)u;
        else if (!strcmp(op->name, "tls-port"))
            o->tls_port = (uint16_t)u;
        else if (!strcmp(op->name, "min-port"))
            o->min_port = (uint16_t)u;
        else if (!strcmp(op->name, "alternate-tls-port"))
            o->alternate_tls_port = (uint16_t)u;
        else
            o->max_port = (uint16_t)u;
        return 0;
    case K_STR: {
        char **slot = !strcmp(op->name, "tls-cert")     ? &o->tls_cert
                      : !strcmp(op->name, "tls-key")    ? &o->tls_key
                      : !strcmp(op->name, "realm")      ? &o->realm
                      : !strcmp(op->name, "software")   ? &o->software
                      : !strcmp(op->name, "users-file") ? &o->users_file
                      : !strcmp(op->name, "alternate-domain") ? &o->alternate_domain
                                                        : &o->config;
        return set_str(slot, v);
    }
    case K_STRS:
        if (!strcmp(op->name, "user")) {
            const char *colon = strchr(v, ':');
            if (!colon || colon == v) {
                usage_error(p, "--user: expected NAME:PASSWORD");
                return -1;
            }
            return push_str(&o->users, &o->n_users, v);
        }
        if (!*v) {
            usage_error(p, "--auth-secret: empty secret");
            return -1;
        }
        return push_str(&o->secrets, &o->n_secrets, v);
    case K_CIDRS: {
        bool allow = !strcmp(op->name, "allow-peer");
        sluice_turn_cidr *arr = allow ? o->allow : o->deny;
        size_t *n = allow ? &o->n_allow : &o->n_deny;
        if (*n == RELAY_MAX_CIDR) {
            usage_error(p, "--%s: at most %d prefixes", op->name, RELAY_MAX_CIDR);
            return -1;
        }
        if (sluice_turn_cidr_parse(&arr[*n], v) < 0) {
            usage_error(p, "--%s: '%s' is not an address prefix", op->name, v);
            return -1;
        }
        (*n)++;
        return 0;
    }
    case K_U64:
        if (parse_u64(v, &u) < 0) {
            usage_error(p, "--%s: '%s' is not a number", op->name, v);
            return -1;
        }
        if (!strcmp(op->name, "max-allocations"))
            o->max_allocations = u;
        else if (!strcmp(op->name, "user-quota"))
            o->user_quota = u;
        else if (!strcmp(op->name, "bandwidth"))
            o->bandwidth = u;
        else if (!strcmp(op->name, "challenge-rate") || !strcmp(op->name, "challenge-burst")) {
            if (u < 1 || u > 1000000) {
                usage_error(p, "--%s: 1..1000000", op->name);
                return -1;
            }
            if (op->name[10] == 'r')
                o->challenge_rate = u;
            else
                o->challenge_burst = u;
        } else if (!strcmp(op->name, "max-lifetime"))
            o->max_lifetime = u;
        else if (!strcmp(op->name, "max-connections"))
            o->max_connections = u;
        else if (u > 1024) {
            usage_error(p, "--workers: at most 1024");
            return -1;
        } else
            o->workers = (unsigned)u;
        return 0;
    case K_METRICS:
        if (!strcmp(v, "off")) {
            o->metrics_on = false;
            return 0;
        }
        if (sluice_addr_parse(&a, v, 0) < 0 || a.port == 0) {
            usage_error(p, "--metrics-listen: '%s' is not ADDR:PORT or off", v);
            return -1;
        }
        o->metrics_on = true;
        o->metrics = a;
        return 0;
    case K_LEVEL: {
        static const char *const names[] = {"error", "warning", "info", "debug"};
        for (int i = 0; i < 4; i++) {
            if (!strcmp(v, names[i])) {
                o->log_level = i;
                return 0;
            }
        }
        usage_error(p, "--log-level: '%s' is not error, warning, info or debug", v);
        return -1;
    }
    case K_ALT: {
        if (sluice_addr_parse(&a, v, 0) < 0 || a.port == 0) {
            usage_error(p, "--alternate-server: '%s' is not ADDR:PORT", v);
            return -1;
        }
        sluice_addr *slot = &o->alternate[a.family == SLUICE_AF_INET6];
        if (slot->family) {
            usage_error(p, "--alternate-server: one address per family");
            return -1;
        }
        *slot = a;
        return 0;
    }
    case K_FLAG:
        break;
    }
    return -1;
}

/* Set an option from a layer. Repeatable options given in a list (env)
 * are comma separated. */
static int set_opt(struct parser *p, size_t idx, const char *v, enum layer layer, bool split)
{
    const struct opt *op = &opts[idx];
    bool repeat =
        op->kind == K_ADDRS || op->kind == K_STRS || op->kind == K_CIDRS || op->kind == K_ALT;

    if (repeat && p->set_by[idx] < layer)
        clear_list(p->o, op->name);
    p->set_by[idx] = layer;
    if (!repeat || !split)
        return set_one(p, idx, v);
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
            rc = set_one(p, idx, tok);
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

    if (!f) {
        fprintf(stderr, "sluice-relay: --config %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
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
            fclose(f);
            return -1;
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
            fclose(f);
            return -1;
        }
        if (set_opt(p, (size_t)idx, v, L_CONFIG, false) < 0) {
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

static int read_users_file(struct relay_options *o)
{
    FILE *f = fopen(o->users_file, "r");
    char line[4096];
    unsigned lineno = 0;

    if (!f) {
        fprintf(stderr, "sluice-relay: --users-file %s: %s\n", o->users_file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s || *s == '#')
            continue;
        char *colon = strchr(s, ':');
        if (!colon || colon == s) {
            fprintf(stderr, "sluice-relay: %s:%u: expected NAME:PASSWORD\n", o->users_file, lineno);
            fclose(f);
            return -1;
        }
        if (push_str(&o->users, &o->n_users, s) < 0) {
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

static void print_help(void)
{
    char env[64], left[64];
    printf("usage: sluice-relay [options]\n"
           "A TURN relay (RFC 8656, RFC 6156) on the sluice server core. Every option\n"
           "can also be set by its environment variable (repeatable options: a comma\n"
           "separated list) or by a `name = value` line in the --config file; the\n"
           "command line wins over the environment, which wins over the file.\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        env_name(opts[i].name, env, sizeof env);
        snprintf(left, sizeof left, "--%s %s", opts[i].name, opts[i].arg);
        printf("  %-29s %s\n", left, opts[i].help);
        printf("  %-29s [env %s] [default: %s]\n", "", env, *opts[i].def ? opts[i].def : "none");
    }
    printf("  %-29s %s\n", "-h, --help", "this text");
    printf("  %-29s %s\n", "--version", "print the version");
    printf("Signals: SIGTERM/SIGINT stop; SIGUSR1 (or POST /drain on the metrics port)\n"
           "starts drain mode: new Allocate requests get 300 Try Alternate to\n"
           "--alternate-server (508 without one); existing allocations go on until\n"
           "they end.\n");
}

static int validate(struct relay_options *o)
{
    if (o->users_file && *o->users_file && read_users_file(o) < 0)
        return -1;
    if (!o->realm || !*o->realm) {
        fprintf(stderr, "sluice-relay: --realm must not be empty\n");
        return -1;
    }
    if (o->n_listen == 0) {
        fprintf(stderr, "sluice-relay: no --listen address\n");
        return -1;
    }
    if (o->min_port > o->max_port) {
        fprintf(stderr, "sluice-relay: --min-port is above --max-port\n");
        return -1;
    }
    if (!o->tls_cert != !o->tls_key) {
        fprintf(stderr, "sluice-relay: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if (o->n_users == 0 && o->n_secrets == 0) {
        fprintf(stderr, "sluice-relay: no credentials: give --user, --users-file or "
                        "--auth-secret\n");
        return -1;
    }
    if (o->max_allocations == 0 || o->max_connections == 0) {
        fprintf(stderr, "sluice-relay: --max-allocations and --max-connections must be > 0\n");
        return -1;
    }
    if (o->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o->workers = n > 0 ? (unsigned)(n > 1024 ? 1024 : n) : 1;
    }
    if ((unsigned)(o->max_port - o->min_port) + 1 < o->workers) {
        fprintf(stderr, "sluice-relay: the relay port range is smaller than --workers\n");
        return -1;
    }
    /* Relay addresses default to the listen addresses (not wildcards). */
    if (o->n_relay_ip == 0) {
        for (size_t i = 0; i < o->n_listen; i++) {
            uint32_t cls = sluice_addr_classify(&o->listen[i], NULL);
            if (cls & SLUICE_ADDR_UNSPECIFIED)
                continue;
            bool dup = false;
            for (size_t j = 0; j < o->n_relay_ip; j++)
                dup |= o->relay_ip[j].family == o->listen[i].family;
            if (!dup && o->n_relay_ip < 4)
                o->relay_ip[o->n_relay_ip++] = o->listen[i];
        }
        if (o->n_relay_ip == 0) {
            fprintf(stderr, "sluice-relay: --listen is a wildcard address: give --relay-ip\n");
            return -1;
        }
    }
    for (size_t i = 0; i < o->n_relay_ip; i++) {
        if (sluice_addr_classify(&o->relay_ip[i], NULL) & SLUICE_ADDR_UNSPECIFIED) {
            fprintf(stderr, "sluice-relay: --relay-ip must not be a wildcard address\n");
            return -1;
        }
    }
    for (size_t i = 0; i < o->n_external_ip; i++) {
        bool have = false;
        for (size_t j = 0; j < o->n_relay_ip; j++)
            have |= o->relay_ip[j].family == o->external_ip[i].family;
        if (!have) {
            fprintf(stderr, "sluice-relay: --external-ip of a family without --relay-ip\n");
            return -1;
        }
    }
    return 0;
}

int relay_options_parse(struct relay_options *o, int argc, char **argv)
{
    struct parser p = {.o = o, .where = "defaults"};
    char env[64];

    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *d = opts[i].def;
        /* defaults that describe a value computed later */
        if (!strcmp(opts[i].name, "workers") || !strcmp(opts[i].name, "relay-ip") ||
            !strcmp(opts[i].name, "alternate-tls-port") || !*d)
            continue;
        if (set_opt(&p, i, d, L_DEFAULT, false) < 0)
            return -1;
    }

    /* --config comes from the command line, else from the environment. */
    const char *config = getenv("SLUICE_RELAY_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            print_help();
            return 1;
        } else if (!strcmp(argv[i], "--version")) {
            printf("sluice-relay %s\n", SLUICE_VERSION_STRING);
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
    if (o->tls_cert && !*o->tls_cert) {
        free(o->tls_cert);
        o->tls_cert = NULL;
    }
    if (o->tls_key && !*o->tls_key) {
        free(o->tls_key);
        o->tls_key = NULL;
    }
    if (o->alternate_domain && !*o->alternate_domain) {
        free(o->alternate_domain);
        o->alternate_domain = NULL;
    }
    return validate(o) < 0 ? -1 : 0;
}

void relay_options_free(struct relay_options *o)
{
    for (size_t i = 0; i < o->n_users; i++)
        free(o->users[i]);
    for (size_t i = 0; i < o->n_secrets; i++)
        free(o->secrets[i]);
    free(o->users);
    free(o->secrets);
    free(o->tls_cert);
    free(o->tls_key);
    free(o->realm);
    free(o->software);
    free(o->users_file);
    free(o->alternate_domain);
    free(o->config);
    memset(o, 0, sizeof *o);
}
