# SPDX-License-Identifier: MIT
# Helpers for the sluice-relay interop tests: start the daemon, wait for its
# `msg="ready"` log line through a fifo (no sleeping), stop it by PID and
# keep its exit status. Source it after scripts/lib.sh.
# shellcheck shell=bash

# relay_spawn NAME WORKDIR BINARY [sluice-relay args...]
# Sets ${NAME}_PID and ${NAME}_LOG (WORKDIR/name.log). Returns non-zero when
# the daemon exits or does not log `msg="ready"` within 10 s; the caller then
# calls relay_stop NAME (from its EXIT trap anyway) and may retry other ports.
relay_spawn() {
    local name=$1 work=$2 bin=$3 lower fifo fd line deadline remaining ok=false
    shift 3
    lower=${name,,}
    fifo="$work/$lower.fifo"
    local log="$work/$lower.log"
    printf -v "${name}_LOG" '%s' "$log"
    rm -f "$fifo"
    mkfifo "$fifo" || return 1
    "$bin" "$@" >"$fifo" 2>&1 </dev/null &
    printf -v "${name}_PID" '%s' "$!"
    exec {fd}<"$fifo"
    rm -f "$fifo"
    deadline=$((SECONDS + 10))
    while remaining=$((deadline - SECONDS)) && [ "$remaining" -gt 0 ] &&
        IFS= read -r -t "$remaining" -u "$fd" line; do
        printf '%s\n' "$line" >>"$log"
        if [[ $line == *'msg="ready"'* ]]; then
            ok=true
            break
        fi
    done
    # Keep draining the log so the daemon never blocks on a full pipe.
    cat <&"$fd" >>"$log" &
    printf -v "${name}_DRAIN_PID" '%s' "$!"
    exec {fd}<&-
    $ok
}

# relay_stop NAME: SIGTERM by PID, wait, and set ${NAME}_RC to the exit
# status (143 would mean it died of the signal instead of exiting cleanly).
# Safe to call twice.
relay_stop() {
    local name=$1 v rc=0
    v="${name}_PID"
    if [ -n "${!v:-}" ]; then
        kill -TERM "${!v}" 2>/dev/null || true
        wait "${!v}" 2>/dev/null || rc=$?
        printf -v "${name}_RC" '%s' "$rc"
        printf -v "$v" '%s' ''
    fi
    v="${name}_DRAIN_PID"
    if [ -n "${!v:-}" ]; then
        wait "${!v}" 2>/dev/null || true
        printf -v "$v" '%s' ''
    fi
}

# relay_cleanup WORKDIR: the EXIT trap of a relay test: stop the relay
# (RELAY) and the echo peer (PEER_PID) by PID, remove WORKDIR.
relay_cleanup() {
    relay_stop RELAY
    if [ -n "${PEER_PID:-}" ]; then
        kill "$PEER_PID" 2>/dev/null || true
        wait "$PEER_PID" 2>/dev/null || true
        PEER_PID=''
    fi
    rm -rf "$1"
}

# relay_peer_start WORKDIR PORT IP...: turnutils_peer echoing on every IP;
# returns once each answers. Sets PEER_PID. With RELAY_PEER_NETNS set, the
# peer runs (and is checked) inside that network namespace.
relay_peer_start() {
    local work=$1 port=$2 ip
    shift 2
    local -a args=() in_ns=()
    [ -n "${RELAY_PEER_NETNS:-}" ] && in_ns=(ip netns exec "$RELAY_PEER_NETNS")
    for ip in "$@"; do
        args+=(-L "$ip")
    done
    # `ip netns exec` execs the command: PEER_PID is turnutils_peer itself.
    "${in_ns[@]}" turnutils_peer -p "$port" "${args[@]}" >"$work/peer.log" 2>&1 </dev/null &
    PEER_PID=$!
    "${in_ns[@]}" /usr/bin/python3 - "$port" "$@" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
for ip in sys.argv[2:]:
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(0.1)
    for _ in range(50):  # at most 5 s
        s.sendto(b"ready?", (ip, port))
        try:
            if s.recv(64) == b"ready?":
                break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit(f"no echo on {ip}:{port}")
PY
}

# relay_metric_wait URL NAME MIN: poll the metrics endpoint (every 100 ms,
# at most 5 s: the workers publish their counters once a second) until the
# metric NAME (labels included) reaches MIN; print its last value. Returns
# non-zero when it never does.
relay_metric_wait() {
    /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys, time, urllib.request
url, name, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
value = -1
for _ in range(50):
    body = urllib.request.urlopen(url, timeout=2).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            value = int(line.split()[-1])
    if value >= want:
        break
    time.sleep(0.1)
print(value)
sys.exit(0 if value >= want else 1)
PY
}

# relay_coord_start WORKDIR RELAY-BIN COORD-BIN: sluice-relay on 127.0.0.1
# with a fresh TURN REST secret, and sluice-coord on 127.0.0.1 handing out
# credentials for it with every DIRECT stream (what scripts/demo.sh and the
# webrtc-call test run). Three tries each on free ports. Sets RELAY_PORT,
# COORD_PORT, COORD_FP (the coordinator's certificate SHA-256) and the
# RELAY_*/COORD_* variables of relay_spawn; stop them with relay_stop COORD
# and relay_cleanup. Returns non-zero with the reason on stderr.
relay_coord_start() {
    local work=$1 relay_bin=$2 coord_bin=$3 secret started=false
    secret=$(openssl rand -hex 16)
    for _ in 1 2 3; do
        RELAY_PORT=$(sluice_free_udp_port)
        if relay_spawn RELAY "$work" "$relay_bin" --listen 127.0.0.1 --port "$RELAY_PORT" \
            --workers 1 --auth-secret "$secret" --realm demo.invalid \
            --allow-peer 127.0.0.0/8 --metrics-listen off; then
            started=true
            break
        fi
        relay_stop RELAY
    done
    $started || { echo "sluice-relay did not start; its log: $(cat "$RELAY_LOG")" >&2; return 1; }
    started=false
    for _ in 1 2 3; do
        COORD_PORT=$(sluice_free_udp_port)
        if relay_spawn COORD "$work" "$coord_bin" --listen 127.0.0.1 --port "$COORD_PORT" \
            --state-dir "$work/coord" --server-name 127.0.0.1 --turn-secret "$secret" \
            --turn-uri "turn:127.0.0.1:$RELAY_PORT" --metrics-listen off; then
            started=true
            break
        fi
        relay_stop COORD
    done
    $started || { echo "sluice-coord did not start; its log: $(cat "$COORD_LOG")" >&2; return 1; }
    COORD_FP=$(sed -n 's/.*msg="ready".*fingerprint=\([0-9A-Fa-f:]*\).*/\1/p' "$COORD_LOG" |
        head -n 1)
    [ -n "$COORD_FP" ] ||
        { echo "sluice-coord did not print its fingerprint: $(cat "$COORD_LOG")" >&2; return 1; }
}
