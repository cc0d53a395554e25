# SPDX-License-Identifier: MIT
# Shared helpers for scripts/*.sh, .ci/run and tests/interop: install missing
# Debian packages, configure and build a clang build directory, and run
# coturn's turnserver on a free loopback port. Source it; do not execute it.
# Functions return non-zero on failure whether or not `set -e` is on.
# shellcheck shell=bash

# Everything the build, the tests and the interop peers need on Debian 12.
# shellcheck disable=SC2034 # used by the scripts that source this file
SLUICE_PACKAGES=(meson ninja-build pkg-config clang libclang-rt-14-dev libssl-dev
    libnice-dev coturn tshark python3)

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
        if turnserver_try_start "$work"; then
            return 0
        fi
        sluice_turnserver_stop
    done
    printf 'turnserver did not open its UDP listener; its log:\n' >&2
    sed 's/^/  | /' "$TURNSERVER_LOG" >&2
    return 1
}

turnserver_try_start() {
    local work=$1 fifo="$1/turnserver.fifo" line deadline remaining
    TURNSERVER_PORT=$(sluice_free_udp_port) || return 1
    rm -f "$fifo"
    mkfifo "$fifo" || return 1
    # -n: no config file; -v: logs "UDP listener opened on: ADDR:PORT".
    # UDP only, no CLI, relay ports confined to loopback; pid file and the
    # user database stay in the work directory.
    turnserver -n -v --no-cli --no-tls --no-dtls --no-tcp --simple-log \
        --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 --listening-port "$TURNSERVER_PORT" \
        --min-port 49152 --max-port 65535 --log-binding \
        --pidfile "$work/turnserver.pid" --userdb "$work/turndb" \
        --log-file stdout >"$fifo" 2>&1 </dev/null &
    TURNSERVER_PID=$!
    exec {TURNSERVER_FD}<"$fifo"
    rm -f "$fifo"
    deadline=$((SECONDS + 10))
    while remaining=$((deadline - SECONDS)) && [ "$remaining" -gt 0 ] &&
        IFS= read -r -t "$remaining" -u "$TURNSERVER_FD" line; do
        printf '%s\n' "$line" >>"$TURNSERVER_LOG"
        case $line in
        *"UDP listener opened on: 127.0.0.1:$TURNSERVER_PORT"*)
            # Keep draining the log so turnserver never blocks on a full pipe.
            cat <&"$TURNSERVER_FD" >>"$TURNSERVER_LOG" &
            TURNSERVER_DRAIN_PID=$!
            exec {TURNSERVER_FD}<&-
            return 0
            ;;
        esac
    done
    return 1
}

# Stop what sluice_turnserver_start started, by PID only. Safe to call twice.
sluice_turnserver_stop() {
    if [ -n "${TURNSERVER_PID:-}" ]; then
        kill "$TURNSERVER_PID" 2>/dev/null || true
        wait "$TURNSERVER_PID" 2>/dev/null || true
        TURNSERVER_PID=
    fi
    if [ -n "${TURNSERVER_FD:-}" ]; then
        exec {TURNSERVER_FD}<&- 2>/dev/null || true
        TURNSERVER_FD=
    fi
    if [ -n "${TURNSERVER_DRAIN_PID:-}" ]; then
        # The drain ends at EOF once turnserver is gone; make sure anyway.
        kill "$TURNSERVER_DRAIN_PID" 2>/dev/null || true
        wait "$TURNSERVER_DRAIN_PID" 2>/dev/null || true
        TURNSERVER_DRAIN_PID=
    fi
}
