# SPDX-License-Identifier: MIT
# Shared helpers for scripts/*.sh, .ci/run and tests/interop: install missing
# Debian packages, configure and build a clang build directory, and run
# coturn's turnserver on a free loopback port. Source it; do not execute it.
# Functions return non-zero on failure whether or not `set -e` is on.
# shellcheck shell=bash

# Everything the build, the tests and the interop peers need on Debian 12.
# shellcheck disable=SC2034 # used by the scripts that source this file
SLUICE_PACKAGES=(meson ninja-build pkg-config clang libclang-rt-14-dev libssl-dev
    libnice-dev coturn tshark python3 openssl python3-aioice iptables
    libglib2.0-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-nice
    gstreamer1.0-plugins-bad libgstreamer-plugins-bad1.0-dev python3-aiortc
    python3-gi gir1.2-gst-plugins-bad-1.0 chromium)

sluice_log() { printf '==> %s\n' "$*" >&2; }
sluice_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Install the named packages that are not installed yet. `apt-get update` runs
# only when something is missing, so a second run touches nothing.
sluice_ensure_packages() {
    local p missing=()
    for p in "$@"; do
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
            missing+=("$p")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 ||
        sluice_die "missing packages (${missing[*]}) and no apt-get: this script expects Debian 12"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 ||
            sluice_die "missing packages (${missing[*]}); run as root or install sudo"
        sudo=(sudo)
    fi
    sluice_log "installing: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || return
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}"
}

# sluice_setup_build DIR [meson options...]
# Configure DIR with clang. A directory already configured with clang and the
# same options is left alone (ninja regenerates it when meson.build changes);
# different options are applied with --reconfigure; a directory configured
# with another compiler is wiped, since meson cannot switch compilers.
sluice_setup_build() {
    local dir=$1
    shift
    local stamp="$dir/.sluice-setup-options"
    local want="CC=clang $*"
    if [ ! -f "$dir/meson-private/coredata.dat" ]; then
        sluice_log "configuring $dir ($want)"
        CC=clang meson setup "$dir" "$@" || return
    elif ! awk '$0 == "rule c_COMPILER" { getline; print; exit }' "$dir/build.ninja" 2>/dev/null |
        grep -q 'command = .*clang'; then
        sluice_log "$dir was configured with another compiler: wiping it"
        CC=clang meson setup --wipe "$dir" "$@" || return
    elif [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        sluice_log "reconfiguring $dir ($want)"
        CC=clang meson setup --reconfigure "$dir" "$@" || return
    else
        return 0
    fi
    printf '%s' "$want" >"$stamp"
}

# sluice_build DIR [targets...]; SLUICE_JOBS limits parallel jobs.
sluice_build() {
    local dir=$1
    shift
    ninja -C "$dir" ${SLUICE_JOBS:+-j "$SLUICE_JOBS"} "$@"
}

# A UDP port on 127.0.0.1 that nothing is bound to right now.
sluice_free_udp_port() {
    /usr/bin/python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# sluice_kill_wait SIGNAL PID...: send SIGNAL to each of our own child
# PIDs that is set (empty ones are skipped), then reap them all.
sluice_kill_wait() {
    local sig=$1 p
    shift
    for p in "$@"; do
        [ -n "$p" ] && kill "-$sig" "$p" 2>/dev/null
    done
    for p in "$@"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null
    done
    return 0
}

# sluice_have_ipv6_loopback: true when ::1 can be bound (IPv6 is enabled).
sluice_have_ipv6_loopback() {
    /usr/bin/python3 -c 'import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::1", 0))' 2>/dev/null
}

# sluice_ipv6_cases: set have_v6 to true or false (can ::1 be bound?) and
# say so in the test log when the IPv6 cases will not run.
sluice_ipv6_cases() {
    have_v6=true
    sluice_have_ipv6_loopback || have_v6=false
    $have_v6 || echo "# NOTE: ::1 cannot be bound here: the IPv6 cases are not run"
}

# sluice_require_programs "PACKAGES" PROG...: skip the test (exit 77 with a
# reason) unless every PROG is installed; PACKAGES is the install hint.
sluice_require_programs() {
    local hint=$1 prog
    shift
    for prog in "$@"; do
        if ! command -v "$prog" >/dev/null 2>&1; then
            echo "SKIP: $prog is not installed (apt-get install $hint)"
            exit 77
        fi
    done
}

# sluice_free_ports N
# Print N ports, one a line, each P with P and P+1 free right now for UDP and
# TCP on 127.0.0.1 and (when IPv6 is enabled) ::1: turnserver also binds P+1,
# its RFC 5780 alternate port. They come from 20000-29999, below Linux's
# ephemeral range, so outgoing sockets and relay ports do not take them.
sluice_free_ports() {
    /usr/bin/python3 - "$1" <<'PY'
import random, socket, sys
want = int(sys.argv[1])
ips = [(socket.AF_INET, "127.0.0.1")]
try:
    socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))
    ips.append((socket.AF_INET6, "::1"))
except OSError:
    pass
held, out = [], []
for _ in range(2000):
    if len(out) == want:
        break
    p = random.randrange(20000, 29998)
    if any(abs(p - q) < 2 for q in out):
        continue
    socks = []
    try:
        for port in (p, p + 1):
            for fam, ip in ips:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(fam, kind)
                    socks.append(s)
                    s.bind((ip, port))
    except OSError:
        for s in socks:
            s.close()
        continue
    held += socks  # hold them so the next pick cannot return the same port
    out.append(p)
for s in held:
    s.close()
if len(out) < want:
    sys.exit("no free ports in 20000-29999")
print("\n".join(map(str, out)))
PY
}

# sluice_turnserver_start WORKDIR
# Start coturn's turnserver on 127.0.0.1, UDP only, on a free port, and wait
# until its log says the UDP listener is open (the log arrives through a fifo,
# read line by line: no sleeping). Sets TURNSERVER_PID, TURNSERVER_PORT and
# TURNSERVER_LOG; the caller must call sluice_turnserver_stop (from a trap).
# Returns non-zero, with the log on stderr, if it does not come up in 10 s.
sluice_turnserver_start() {
    local work=$1 _
    TURNSERVER_LOG="$work/turnserver.log"
    : >"$TURNSERVER_LOG"
    # A free port can be taken between the probe and turnserver's bind; retry.
    for _ in 1 2 3; do
        TURNSERVER_PORT=$(sluice_free_udp_port) || return 1
        # UDP only, relay ports confined to loopback.
        if sluice_turnserver_spawn TURNSERVER "$work" \
            "UDP listener opened on: 127.0.0.1:$TURNSERVER_PORT" -- \
            --no-tls --no-dtls --no-tcp \
            --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 --listening-port "$TURNSERVER_PORT" \
            --min-port 49152 --max-port 65535 --log-binding; then
            return 0
        fi
        sluice_turnserver_stop TURNSERVER
    done
    printf 'turnserver did not open its UDP listener; its log:\n' >&2
    sed 's/^/  | /' "$TURNSERVER_LOG" >&2
    return 1
}

# sluice_turnserver_spawn NAME WORKDIR [READY...] -- [turnserver args...]
# Start `turnserver -n -v --no-cli --simple-log --log-file stdout` with its
# pid file and user database in WORKDIR plus the given args, and wait at most
# 10 s until every READY string has appeared in its log (for instance
# "UDP listener opened on: 127.0.0.1:3478" or
# "TLS/TCP listener opened on : ::1:5349"). Sets ${NAME}_PID and ${NAME}_LOG
# (WORKDIR/name.log, lower case, appended to). Several instances may run at
# once under different NAMEs. Returns non-zero if it does not come up; the
# caller then calls sluice_turnserver_stop NAME and may retry other ports.
sluice_turnserver_spawn() {
    local name=$1 work=$2 lower fifo line deadline remaining fd pid i
    local -a ready=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        ready+=("$1")
        shift
    done
    [ "${1:-}" = -- ] && shift
    lower=${name,,}
    fifo="$work/$lower.fifo"
    printf -v "${name}_LOG" '%s' "$work/$lower.log"
    local log="$work/$lower.log"
    rm -f "$fifo"
    mkfifo "$fifo" || return 1
    # -n: no config file; -v: logs each "listener opened on" line.
    turnserver -n -v --no-cli --simple-log \
        --pidfile "$work/$lower.pid" --userdb "$work/$lower.db" \
        --log-file stdout "$@" >"$fifo" 2>&1 </dev/null &
    pid=$!
    printf -v "${name}_PID" '%s' "$pid"
    exec {fd}<"$fifo"
    printf -v "${name}_FD" '%s' "$fd"
    rm -f "$fifo"
    deadline=$((SECONDS + 10))
    while [ "${#ready[@]}" -gt 0 ] && remaining=$((deadline - SECONDS)) &&
        [ "$remaining" -gt 0 ] && IFS= read -r -t "$remaining" -u "$fd" line; do
        printf '%s\n' "$line" >>"$log"
        for i in "${!ready[@]}"; do
            if [[ $line == *"${ready[$i]}"* ]]; then
                unset 'ready[i]'
            fi
        done
    done
    [ "${#ready[@]}" -eq 0 ] || return 1
    # Keep draining the log so turnserver never blocks on a full pipe.
    cat <&"$fd" >>"$log" &
    printf -v "${name}_DRAIN_PID" '%s' "$!"
    exec {fd}<&-
    printf -v "${name}_FD" '%s' ''
    return 0
}

# sluice_turnserver_stop [NAME]
# Stop what sluice_turnserver_start (NAME TURNSERVER, the default) or
# sluice_turnserver_spawn NAME started, by PID only. Safe to call twice.
sluice_turnserver_stop() {
    local name=${1:-TURNSERVER} v fd
    v="${name}_PID"
    if [ -n "${!v:-}" ]; then
        kill "${!v}" 2>/dev/null || true
        wait "${!v}" 2>/dev/null || true
        printf -v "$v" '%s' ''
    fi
    v="${name}_FD"
    if [ -n "${!v:-}" ]; then
        fd=${!v}
        exec {fd}<&- 2>/dev/null || true
        printf -v "$v" '%s' ''
    fi
    v="${name}_DRAIN_PID"
    if [ -n "${!v:-}" ]; then
        # The drain ends at EOF once turnserver is gone; make sure anyway.
        kill "${!v}" 2>/dev/null || true
        wait "${!v}" 2>/dev/null || true
        printf -v "$v" '%s' ''
    fi
}

# sluice_turnserver_start_user WORKDIR USER PASSWORD [turnserver args...]
# Like sluice_turnserver_start (UDP on 127.0.0.1, relays on 127.0.0.1) with
# the long-term credential mechanism, one static user in realm sluice.test
# and loopback peers allowed, for ICE tests whose agents all live on
# 127.0.0.1. Sets TURNSERVER_PID, TURNSERVER_PORT and TURNSERVER_LOG; the
# caller must call sluice_turnserver_stop (from a trap).
sluice_turnserver_start_user() {
    local work=$1 user=$2 pass=$3 attempt
    shift 3
    TURNSERVER_LOG="$work/turnserver.log"
    for attempt in 1 2 3; do
        # sluice_free_ports: P and P+1 (the RFC 5780 alternate port) free.
        TURNSERVER_PORT=$(sluice_free_ports 1) || return 1
        sluice_turnserver_spawn TURNSERVER "$work" \
            "UDP listener opened on: 127.0.0.1:$TURNSERVER_PORT" -- \
            --no-tls --no-dtls --no-tcp --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 \
            --listening-port "$TURNSERVER_PORT" --lt-cred-mech --user "$user:$pass" \
            --realm sluice.test --allow-loopback-peers "$@" && return 0
        sluice_log "turnserver did not come up on port $TURNSERVER_PORT (attempt $attempt)"
        sluice_turnserver_stop TURNSERVER
    done
    printf 'turnserver did not open its UDP listener; its log:\n' >&2
    sed 's/^/  | /' "$TURNSERVER_LOG" >&2
    return 1
}
