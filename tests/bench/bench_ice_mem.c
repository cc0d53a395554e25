/* SPDX-License-Identifier: MIT */
/* Memory of N ICE agents in one process: sluice against libnice, each in
 * its own child process so that one allocator's leftovers do not count for
 * the other. Every agent has one stream with one component, a host base
 * and remote credentials and one remote candidate (so a checklist exists);
 * libnice agents get the same through its API without a main loop running
 * (no sockets: libnice would open one per agent when gathering, sluice
 * never does). Reports the peak RSS growth per agent (VmHWM) and the ratio.
 *
 *   bench_ice_mem [N]        (default 1000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <agent.h>
#include <glib.h>

#include "sluice/ice.h"

static long vm_kib(const char *key)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0)
            v = atol(line + strlen(key) + 1);
    fclose(f);
    return v;
}

static int run_sluice(int n, int fd)
{
    sluice_ice_agent **ags = calloc((size_t)n, sizeof *ags);
    long before = vm_kib("VmHWM:");
    for (int i = 0; i < n; i++) {
        sluice_ice_config cfg;
        sluice_ice_config_init(&cfg);
        ags[i] = sluice_ice_agent_new(&cfg, NULL);
        if (!ags[i])
            return 1;
        int s = sluice_ice_agent_add_stream(ags[i], 1);
        sluice_addr base, rem;
        sluice_addr_parse(&base, "127.0.0.1:40000", 0);
        base.port = (uint16_t)(20000 + i);
        sluice_ice_agent_add_base(ags[i], 0, s, 1, &base);
        sluice_ice_agent_gather(ags[i], 0);
        sluice_ice_agent_set_remote_credentials(ags[i], 0, s, "abcd", "0123456789abcdef0123456789");
        sluice_ice_candidate c;
        sluice_ice_candidate_parse(&c, "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host");
        sluice_ice_agent_add_remote_candidate(ags[i], 0, s, &c);
        sluice_ice_event ev;
        while (sluice_ice_agent_poll_event(ags[i], &ev))
            ;
        (void)rem;
    }
    long after = vm_kib("VmHWM:");
    dprintf(fd, "%ld\n", after - before);
    for (int i = 0; i < n; i++)
        sluice_ice_agent_free(ags[i]);
    free(ags);
    return 0;
}

static int run_libnice(int n, int fd)
{
    NiceAgent **ags = calloc((size_t)n, sizeof *ags);
    GMainContext *ctx = g_main_context_new();
    /* GLib's type system and slices are set up once: not per agent. */
    NiceAgent *warm = nice_agent_new(ctx, NICE_COMPATIBILITY_RFC5245);
    g_object_unref(warm);
    long before = vm_kib("VmHWM:");
    for (int i = 0; i < n; i++) {
        ags[i] = nice_agent_new(ctx, NICE_COMPATIBILITY_RFC5245);
        guint s = nice_agent_add_stream(ags[i], 1);
        nice_agent_set_remote_credentials(ags[i], s, "abcd", "0123456789abcdef0123456789");
        GSList *l = NULL;
        NiceCandidate *c = nice_agent_parse_remote_candidate_sdp(
            ags[i], s, "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host");
        if (c)
            l = g_slist_append(l, c);
        nice_agent_set_remote_candidates(ags[i], s, 1, l);
        g_slist_free_full(l, (GDestroyNotify)nice_candidate_free);
    }
    long after = vm_kib("VmHWM:");
    dprintf(fd, "%ld\n", after - before);
    for (int i = 0; i < n; i++)
        g_object_unref(ags[i]);
    free(ags);
    g_main_context_unref(ctx);
    return 0;
}

static long measure(int (*fn)(int, int), int n)
{
    int p[2];
    char buf[64] = "";
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        _exit(fn(n, p[1]));
    }
    close(p[1]);
    ssize_t r = read(p[0], buf, sizeof buf - 1);
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    if (r <= 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return atol(buf);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    if (n < 1 || n > 100000)
        return 2;
    long s = measure(run_sluice, n);
    long l = measure(run_libnice, n);
    if (s < 0 || l < 0) {
        fprintf(stderr, "measurement failed\n");
        return 1;
    }
    printf("agents: %d (1 stream, 1 component, 1 host base, 1 remote candidate)\n", n);
    printf("sluice:  %8ld KiB peak RSS growth, %6.1f KiB/agent\n", s, (double)s / n);
    printf("libnice: %8ld KiB peak RSS growth, %6.1f KiB/agent\n", l, (double)l / n);
    if (s > 0)
        printf("ratio libnice/sluice: %.2fx\n", (double)l / (double)s);
    return 0;
}
