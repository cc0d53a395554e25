#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: sluice-relay behind 1:1 NAT with --external-ip. Four network
# namespaces joined by veth pairs, documentation addresses only:
#
#   client 198.51.100.2 ── 198.51.100.1 ┐
#                                        router: 203.0.113.10 <-> 192.0.2.2
#   peer 203.0.113.130 ── 203.0.113.129 ┤   (DNAT in, SNAT out: 1:1 NAT)
#                                        │
#   relay 192.0.2.2 ──────── 192.0.2.1  ┘
#
# The relay binds 192.0.2.2 and announces 203.0.113.10. sluice-turn in the
# client namespace allocates through the public address, must get
# XOR-RELAYED-ADDRESS 203.0.113.10, and pings turnutils_peer in the peer
# namespace through the relay (UDP and TCP to the server, channel and
# permission). Every namespace and process goes away in the EXIT trap.
# Needs root and `ip netns`; skips (77) with the reason otherwise.
# Usage: test_relay_external_ip.sh PATH/TO/sluice-relay PATH/TO/sluice-turn
set -euo pipefail

relay=${1:?usage: test_relay_external_ip.sh SLUICE-RELAY SLUICE-TURN}
tool=${2:?usage: test_relay_external_ip.sh SLUICE-RELAY SLUICE-TURN}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"
# shellcheck source=tests/interop/relay_lib.sh
. "$here/relay_lib.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root for network namespaces (CI runs as root)"
    exit 77
fi
sluice_require_programs "iproute2 iptables coturn python3" ip iptables turnutils_peer /usr/bin/python3

pfx="slx$$"
ns_client=$pfx-client ns_router=$pfx-router ns_relay=$pfx-relay ns_peer=$pfx-peer
namespaces=()
work=$(mktemp -d)
PEER_PID=''

cleanup() {
    relay_cleanup "$work"
    local ns
    for ns in "${namespaces[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap cleanup EXIT

if ! ip netns add "$ns_router" 2>"$work/netns.err"; then
    echo "SKIP: ip netns is not available here: $(cat "$work/netns.err")"
    exit 77
fi
namespaces+=("$ns_router")
for ns in "$ns_client" "$ns_relay" "$ns_peer"; do
    ip netns add "$ns"
    namespaces+=("$ns")
done

# link NS IF ADDR/LEN ROUTER-IF ROUTER-ADDR/LEN: a veth pair from NS to the
# router, both ends up, NS's default route through the router.
link() {
    local ns=$1 ifc=$2 addr=$3 rif=$4 raddr=$5
    ip link add "$ifc" netns "$ns" type veth peer name "$rif" netns "$ns_router"
    ip -n "$ns" addr add "$addr" dev "$ifc"
    ip -n "$ns" link set "$ifc" up
    ip -n "$ns" link set lo up
    ip -n "$ns_router" addr add "$raddr" dev "$rif"
    ip -n "$ns_router" link set "$rif" up
    ip -n "$ns" route add default via "${raddr%/*}"
}
link "$ns_client" c0 198.51.100.2/24 rc 198.51.100.1/24
link "$ns_peer" p0 203.0.113.130/25 rp 203.0.113.129/25
link "$ns_relay" s0 192.0.2.2/24 rs 192.0.2.1/24
ip -n "$ns_router" link set lo up
ip netns exec "$ns_router" sysctl -q -w net.ipv4.ip_forward=1
# 1:1 NAT: the public 203.0.113.10 is the relay's private 192.0.2.2, ports
# unchanged (one inside address, so SNAT has no reason to move a port).
ip netns exec "$ns_router" iptables -t nat -A PREROUTING -d 203.0.113.10 \
    -j DNAT --to-destination 192.0.2.2
ip netns exec "$ns_router" iptables -t nat -A POSTROUTING -s 192.0.2.2 \
    -j SNAT --to-source 203.0.113.10
echo "# namespaces: ${namespaces[*]}"

PORT=3478 PEER_PORT=5000
started=false
# The relay's namespace is its own: the standard ports are free there.
if relay_spawn RELAY "$work" ip netns exec "$ns_relay" "$relay" --listen 192.0.2.2 \
    --relay-ip 192.0.2.2 --external-ip 203.0.113.10 --port "$PORT" --realm sluice.test \
    --user alice:secret --workers 2 --metrics-listen off --allow-peer 203.0.113.128/25; then
    started=true
fi
$started || { echo "FAIL: sluice-relay did not start"; sed 's/^/  relay| /' "$RELAY_LOG"; exit 1; }
echo "# sluice-relay pid $RELAY_PID in $ns_relay: 192.0.2.2:$PORT, announced 203.0.113.10"

RELAY_PEER_NETNS=$ns_peer relay_peer_start "$work" "$PEER_PORT" 203.0.113.130 ||
    { echo "FAIL: turnutils_peer does not echo"; cat "$work/peer.log"; exit 1; }
echo "# turnutils_peer pid $PEER_PID in $ns_peer: 203.0.113.130:$PEER_PORT"

failures=()
results=()
out=$work/out.txt
err=$work/err.txt
count=5
for transport in udp tcp; do
    for mode in channel permission; do
        flag=()
        [ "$mode" = permission ] && flag=(--no-channel)
        name="$transport/$mode"
        rc=0
        timeout -k 2 30 ip netns exec "$ns_client" "$tool" --transport "$transport" \
            --user alice --password secret --ping "203.0.113.130:$PEER_PORT" --count "$count" \
            --interval-ms 20 "${flag[@]}" "turn:203.0.113.10:$PORT" >"$out" 2>"$err" \
            </dev/null || rc=$?
        if [ "$rc" -eq 0 ] && grep -Eq '^relayed-address 203\.0\.113\.10:[0-9]+$' "$out" &&
            grep -Eq "^rtt-ms .* lost 0/$count\$" "$out"; then
            results+=("ok   $name: $(grep '^relayed-address' "$out"), $(grep '^rtt-ms' "$out")")
        else
            echo "FAIL: $name: exit $rc, want relayed-address 203.0.113.10 and no probe lost"
            sed 's/^/  stdout| /' "$out"
            sed 's/^/  stderr| /' "$err"
            tail -n 20 "$RELAY_LOG" | sed 's/^/  log| /'
            failures+=("$name")
        fi
    done
done

relay_stop RELAY
[ "$RELAY_RC" -eq 0 ] || failures+=("SIGTERM -> exit $RELAY_RC")

echo "# results"
printf '#   %s\n' "${results[@]}"
if [ "${#failures[@]}" -gt 0 ]; then
    echo "FAIL: ${failures[*]}"
    exit 1
fi
echo "ok: ${#results[@]} cases"
