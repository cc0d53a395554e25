/* SPDX-License-Identifier: MIT */
/* Interop: the sluice ICE agent against aioice (aioice_peer.py, run with
 * /usr/bin/python3) over loopback UDP, signalling by lines on the peer's
 * stdin/stdout. Cases, as TAP test points: sluice controlling, sluice
 * controlled, and both in the same role (role conflicts); each checks both selected pairs, application data both ways
 * byte-exact, and reports connection times (from both sides having the
 * remote credentials to a selected pair; aioice's is when its connect()
 * returned, as seen by this process).
 * Usage: ice_aioice PYTHON PATH/TO/aioice_peer.py */
#include "ice_interop.h"
#include "test.h"

#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>

extern char **environ;

/* --- the peer process --------------------------------------------------- */

struct peer_proc {
    pid_t pid;
    int to_fd, from_fd;
    char buf[16384];
    size_t len;
    bool eof;
};

static const char *python, *peer_script;

static int peer_spawn(struct peer_proc *p, bool controlling)
{
    int in[2] = {-1, -1}, outp[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    char *argv[] = {(char *)python, (char *)peer_script,
                    controlling ? "controlling" : "controlled", NULL};
    memset(p, 0, sizeof *p);
    p->pid = -1;
    p->to_fd = p->from_fd = -1;
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(outp, O_CLOEXEC) != 0)
        goto fail;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    int rc = posix_spawn(&p->pid, python, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        errno = rc;
        p->pid = -1;
        goto fail;
    }
    close(in[0]);
    close(outp[1]);
    p->to_fd = in[1];
    p->from_fd = outp[0];
    fcntl(p->from_fd, F_SETFL, O_NONBLOCK);
    return 0;
fail:
    iop_diag("spawning %s %s: %s", python, peer_script, strerror(errno));
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (outp[i] >= 0)
            close(outp[i]);
    }
    return -1;
}

__attribute__((format(printf, 2, 3))) static void peer_send(struct peer_proc *p, const char *fmt,
                                                             ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line - 1 || p->to_fd < 0)
        return;
    line[n++] = '\n';
    /* A few hundred bytes into an empty pipe: one write, never blocks long. */
    if (write(p->to_fd, line, (size_t)n) != n)
        iop_diag("writing to the peer: %s", strerror(errno));
}

/* Read what the peer wrote; call fn for each complete line. */
static void peer_read(struct peer_proc *p, void (*fn)(void *, char *), void *ctx)
{
    for (;;) {
        if (p->len == sizeof p->buf - 1)
            p->len = 0; /* a line this long is garbage */
        ssize_t n = read(p->from_fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
        if (n == 0)
            p->eof = true;
        if (n <= 0)
            break;
        p->len += (size_t)n;
    }
    char *start = p->buf, *nl;
    p->buf[p->len] = 0;
    while ((nl = strchr(start, '\n'))) {
        *nl = 0;
        fn(ctx, start);
        start = nl + 1;
    }
    p->len -= (size_t)(start - p->buf);
    memmove(p->buf, start, p->len);
}

/* Wait until pid exits or deadline_us; a pidfd makes it a bounded poll(). */
static bool wait_exit(pid_t pid, uint64_t deadline_us)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return false;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    uint64_t now;
    while ((now = ice_drv_now_us()) < deadline_us) {
        int ms = (int)((deadline_us - now + 999) / 1000);
        if (poll(&pfd, 1, ms) > 0)
            break;
    }
    close(fd);
    return pfd.revents != 0;
}

/* Ask the peer to quit; SIGKILL after 3 s; always reaped. */
static void peer_stop(struct peer_proc *p)
{
    if (p->pid > 0) {
        peer_send(p, "quit");
        if (p->to_fd >= 0)
            close(p->to_fd);
        p->to_fd = -1;
        if (!wait_exit(p->pid, ice_drv_now_us() + 3 * IOP_SEC)) {
            iop_diag("aioice peer %d did not exit: killing it", (int)p->pid);
            kill(p->pid, SIGKILL);
        }
        int status = 0;
        waitpid(p->pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            iop_diag("aioice peer exit status 0x%x", status);
        p->pid = -1;
    }
    if (p->to_fd >= 0)
        close(p->to_fd);
    if (p->from_fd >= 0)
        close(p->from_fd);
    p->to_fd = p->from_fd = -1;
}

/* --- a session ---------------------------------------------------------- */

struct session {
    struct iop_sluice s;
    struct peer_proc peer;
    uint64_t t_sent_cred, t_got_cred, t_connected;
    double peer_ms;
    bool peer_connected, peer_selected, peer_error;
    sluice_addr peer_sel_local, peer_sel_remote;
    struct iop_rx peer_rx;
};

static void sluice_to_peer(void *ctx, const char *candidate)
{
    struct session *ss = ctx;
    if (candidate)
        peer_send(&ss->peer, "cand %s", candidate);
    else
        peer_send(&ss->peer, "eoc");
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void on_peer_line(void *ctx, char *line)
{
    struct session *ss = ctx;
    char *rest = strchr(line, ' ');
    if (rest)
        *rest++ = 0;
    else
        rest = line + strlen(line);
    if (!strcmp(line, "cred")) {
        char *pwd = strchr(rest, ' ');
        if (!pwd) {
            iop_diag("bad cred line from aioice");
            return;
        }
        *pwd++ = 0;
        CHECK_EQ(sluice_ice_agent_set_remote_credentials(ss->s.ag, ice_drv_now_us(), ss->s.stream,
                                                         rest, pwd),
                 0);
        ss->t_got_cred = ice_drv_now_us();
    } else if (!strcmp(line, "cand")) {
        CHECK_EQ(iop_sluice_add_remote(&ss->s, rest), 0);
    } else if (!strcmp(line, "eoc")) {
        sluice_ice_agent_end_of_candidates(ss->s.ag, ice_drv_now_us(), ss->s.stream);
    } else if (!strcmp(line, "connected")) {
        ss->peer_connected = true;
        ss->t_connected = ice_drv_now_us();
        ss->peer_ms = strtod(rest, NULL);
    } else if (!strcmp(line, "selected")) {
        iop_diag("aioice selected pair (local remote): %s", rest);
        char *remote = strchr(rest, ' ');
        if (remote) {
            *remote++ = 0;
            ss->peer_selected = sluice_addr_parse(&ss->peer_sel_local, rest, 0) == 0 &&
                                sluice_addr_parse(&ss->peer_sel_remote, remote, 0) == 0;
        }
    } else if (!strcmp(line, "data")) {
        uint8_t buf[2048];
        size_t n = 0, len = strlen(rest);
        for (size_t i = 0; i + 1 < len && n < sizeof buf; i += 2) {
            int hi = hexval(rest[i]), lo = hexval(rest[i + 1]);
            if (hi < 0 || lo < 0)
                break;
            buf[n++] = (uint8_t)(hi << 4 | lo);
        }
        iop_rx_datagram(&ss->peer_rx, buf, n);
    } else if (!strcmp(line, "error")) {
        ss->peer_error = true;
        iop_diag("aioice: %s", rest);
    } else if (strcmp(line, "bye") != 0) {
        iop_diag("aioice said: %s %s", line, rest);
    }
}

static bool run_until(struct session *ss, uint64_t limit_us, bool (*done)(struct session *))
{
    uint64_t deadline = ice_drv_now_us() + limit_us;
    while (!done(ss) && ice_drv_now_us() < deadline && !ss->peer.eof) {
        struct pollfd pfd = {.fd = ss->peer.from_fd, .events = POLLIN};
        if (ice_drv_poll(ss->s.d, deadline, &pfd, 1, SLUICE_NEVER) < 0)
            break;
        if (pfd.revents)
            peer_read(&ss->peer, on_peer_line, ss);
    }
    if (ss->peer.eof && !done(ss))
        iop_diag("the aioice peer closed its stdout (exited?)");
    return done(ss);
}

static bool both_connected(struct session *ss)
{
    return (ss->s.selected && ss->peer_connected && ss->peer_selected) || ss->s.failed ||
           ss->peer_error;
}

static bool data_done(struct session *ss)
{
    return iop_rx_complete(&ss->s.rx) && iop_rx_complete(&ss->peer_rx);
}

static double ms_since(uint64_t t0, uint64_t t)
{
    return t >= t0 ? (double)(t - t0) / 1000.0 : -(double)(t0 - t) / 1000.0;
}

static const char *role(bool controlling)
{
    return controlling ? "controlling" : "controlled";
}

/* Both in the same role is a role conflict (RFC 8445 §7.3.1.1) that the
 * two agents must resolve on the wire. */
static void run_case(bool sluice_controlling, bool aioice_controlling)
{
    struct session ss;
    const char *u, *p;
    memset(&ss, 0, sizeof ss);
    ss.peer.pid = -1;
    ss.peer.to_fd = ss.peer.from_fd = -1;
    ss.peer_rx.dir = 's';
    iop_diag("sluice %s, aioice %s, host candidates on 127.0.0.1", role(sluice_controlling),
             role(aioice_controlling));
    if (iop_sluice_init(&ss.s, sluice_controlling, NULL, false, false, 'a') != 0 ||
        peer_spawn(&ss.peer, aioice_controlling) != 0) {
        CHECK(!"set up");
        goto out;
    }
    ss.s.signal = sluice_to_peer;
    ss.s.signal_ctx = &ss;
    CHECK_EQ(sluice_ice_agent_local_credentials(ss.s.ag, ss.s.stream, &u, &p), 0);
    peer_send(&ss.peer, "cred %s %s", u, p);
    ss.t_sent_cred = ice_drv_now_us();
    CHECK_EQ(sluice_ice_agent_gather(ss.s.ag, ice_drv_now_us()), 0);

    run_until(&ss, IOP_CONNECT_LIMIT, both_connected);
    CHECK(ss.s.selected);
    CHECK(ss.peer_connected);
    CHECK(!ss.s.failed);
    CHECK(!ss.peer_error);
    if (!ss.s.selected || !ss.peer_connected) {
        iop_diag("not connected: sluice %s (%s), aioice %s", ss.s.selected ? "selected" : "no pair",
                 sluice_ice_state_name(ss.s.state), ss.peer_connected ? "connected" : "not connected");
        iop_sluice_report(&ss.s);
        goto out;
    }
    uint64_t t0 = ss.t_got_cred > ss.t_sent_cred ? ss.t_got_cred : ss.t_sent_cred;
    iop_diag("connection time: sluice %.1f ms, aioice %.1f ms (connect() returned; %.1f ms by "
             "its own clock from the remote credentials)",
             ms_since(t0, ss.s.t_selected), ms_since(t0, ss.t_connected), ss.peer_ms);
    CHECK_EQ(ss.s.sel_local.type, SLUICE_ICE_CAND_HOST);
    CHECK_EQ(ss.s.sel_remote.type, SLUICE_ICE_CAND_HOST);
    /* Both selected the same pair. */
    CHECK(ss.peer_selected);
    CHECK(sluice_addr_equal(&ss.s.sel_local.addr, &ss.peer_sel_remote));
    CHECK(sluice_addr_equal(&ss.s.sel_remote.addr, &ss.peer_sel_local));
    if (sluice_controlling == aioice_controlling) {
        bool now = sluice_ice_agent_controlling(ss.s.ag);
        iop_diag("role conflict resolved: sluice %s now (%d ROLE events)", role(now),
                 ss.s.n_role_events);
        CHECK_EQ(ss.s.n_role_events, now != sluice_controlling);
    }

    /* Application data both ways. */
    CHECK_EQ(iop_sluice_send_all(&ss.s, 's'), 0);
    for (int i = 0; i < IOP_N_PAYLOADS; i++) {
        uint8_t buf[1500];
        char hex[3001];
        size_t n = iop_payload(buf, 'a', i);
        for (size_t k = 0; k < n; k++)
            snprintf(hex + 2 * k, 3, "%02x", buf[k]);
        peer_send(&ss.peer, "data %s", hex);
    }
    CHECK(run_until(&ss, IOP_DATA_LIMIT, data_done));
    CHECK_EQ(ss.s.rx.n_ok, IOP_N_PAYLOADS);
    CHECK_EQ(ss.peer_rx.n_ok, IOP_N_PAYLOADS);
    CHECK_EQ(ss.s.rx.n_bad, 0);
    CHECK_EQ(ss.peer_rx.n_bad, 0);
    iop_diag("data: sluice received %d/%d, aioice received %d/%d intact", ss.s.rx.n_ok,
             IOP_N_PAYLOADS, ss.peer_rx.n_ok, IOP_N_PAYLOADS);
    if (t_case_failed)
        iop_sluice_report(&ss.s);
out:
    peer_stop(&ss.peer);
    iop_sluice_free(&ss.s);
}

static void host_sluice_controlling(void)
{
    run_case(true, false);
}

static void host_sluice_controlled(void)
{
    run_case(false, true);
}

static void role_conflict_both_controlling(void)
{
    run_case(true, true);
}

static void role_conflict_both_controlled(void)
{
    run_case(false, false);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PYTHON PATH/TO/aioice_peer.py\n", argv[0]);
        return 2;
    }
    python = argv[1];
    peer_script = argv[2];
    /* A peer that dies must not kill us on the next write. */
    signal(SIGPIPE, SIG_IGN);
    RUN(host_sluice_controlling);
    RUN(host_sluice_controlled);
    RUN(role_conflict_both_controlling);
    RUN(role_conflict_both_controlled);
    return TEST_DONE();
}
