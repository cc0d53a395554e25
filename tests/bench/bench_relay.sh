#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Relay benchmark, one run, same machine: the plain recvmmsg/sendmmsg UDP
# forwarder (the syscall floor of a user-space relay), coturn's turnserver
# with one relay thread, and sluice-relay with one worker when it is built,
# each relaying 120-byte datagrams for N allocations with channels to a UDP
# echo peer on loopback (relay ports 10000-32000, below the kernel's
# ephemeral range that the load generator's sockets use). Reports server CPU time per relayed packet (from
# /proc/PID/stat) and resident memory, and the ratios.
# Usage: tests/bench/bench_relay.sh BUILDDIR [ALLOCATIONS [SECONDS]]
set -euo pipefail

build=${1:?usage: bench_relay.sh BUILDDIR [ALLOCATIONS [SECONDS]]}
allocs=${2:-100}
secs=${3:-5}
# Datagrams per flow per round: keep about 8,000 in flight at most.
burst=$((8000 / allocs))
[ "$burst" -lt 1 ] && burst=1
[ "$burst" -gt 8 ] && burst=8
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"
bench="$build/tests/bench/bench_relay"
relay="$build/src/relay/sluice-relay"
[ -x "$bench" ] || sluice_die "$bench not built"
command -v turnserver >/dev/null || sluice_die "coturn's turnserver is not installed"

work=$(mktemp -d)
fwd_pid=
relay_pid=
cleanup() {
    [ -n "$fwd_pid" ] && kill "$fwd_pid" 2>/dev/null && wait "$fwd_pid" 2>/dev/null
    [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
    sluice_turnserver_stop COTURN
    rm -rf "$work"
}
trap cleanup EXIT

results="$work/results"
: >"$results"
peer_port=$(sluice_free_udp_port)

# 1. The plain forwarder.
fwd_port=$(sluice_free_udp_port)
mkfifo "$work/fwd.fifo"
"$bench" --forwarder "$fwd_port" "$peer_port" >"$work/fwd.fifo" &
fwd_pid=$!
exec {fd}<"$work/fwd.fifo"
IFS= read -r -t 10 -u "$fd" line || sluice_die "forwarder did not start"
"$bench" --raw --server "127.0.0.1:$fwd_port" --pid "$fwd_pid" --peer-port "$peer_port" \
    --allocations "$allocs" --seconds "$secs" --burst "$burst" --label forwarder | tee -a "$results"
kill "$fwd_pid"
wait "$fwd_pid" 2>/dev/null || true
fwd_pid=
exec {fd}<&-

# 2. coturn, one relay thread, long-term user bench:bench.
coturn_port=$(sluice_free_udp_port)
sluice_turnserver_spawn COTURN "$work" "UDP listener opened on: 127.0.0.1:$coturn_port" -- \
    --no-tls --no-dtls --no-tcp --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 \
    --listening-port "$coturn_port" --min-port 10000 --max-port 32000 \
    --relay-threads 1 --allow-loopback-peers --lt-cred-mech --user bench:bench \
    --realm bench.invalid --total-quota 0 --user-quota 0 --no-cli ||
    sluice_die "turnserver did not start"
"$bench" --server "127.0.0.1:$coturn_port" --pid "$COTURN_PID" --peer-port "$peer_port" \
    --allocations "$allocs" --seconds "$secs" --burst "$burst" --label coturn | tee -a "$results"
sluice_turnserver_stop COTURN

# 3. sluice-relay, one worker (when built).
if [ -x "$relay" ]; then
    relay_port=$(sluice_free_udp_port)
    "$relay" --listen 127.0.0.1 --port "$relay_port" --workers 1 --user bench:bench \
        --realm bench.invalid --allow-peer 127.0.0.0/8 --min-port 10000 --max-port 32000 \
        --max-allocations 20000 --user-quota 20000 --challenge-rate 1000000 --challenge-burst 1000000 --log-level warning >"$work/relay.log" 2>&1 &
    relay_pid=$!
    "$bench" --server "127.0.0.1:$relay_port" --pid "$relay_pid" --peer-port "$peer_port" \
        --allocations "$allocs" --seconds "$secs" --burst "$burst" --label sluice-relay | tee -a "$results"
else
    echo "sluice-relay not built ($relay): skipped"
fi

/usr/bin/python3 - "$results" <<'PY'
import sys
r = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        parts = line.split()
        r[parts[1]] = {k: float(v) for k, v in (p.split("=") for p in parts[2:])}
f = r.get("forwarder", {}).get("us_per_pkt")
print()
print(f"{'server':<14} {'us cpu/pkt':>10} {'x forwarder':>12} {'relayed pkt/s':>14} {'rss KiB':>9}")
for name, v in r.items():
    ratio = f"{v['us_per_pkt'] / f:.2f}" if f else "-"
    print(f"{name:<14} {v['us_per_pkt']:>10.3f} {ratio:>12} {v['pps']:>14.0f} {v['rss_kib']:>9.0f}")
if "coturn" in r and "sluice-relay" in r and r["sluice-relay"]["us_per_pkt"]:
    print(f"coturn / sluice-relay CPU per packet: {r['coturn']['us_per_pkt'] / r['sluice-relay']['us_per_pkt']:.2f}x")
PY
