#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: coturn's turnutils_uclient (a TURN client nobody here wrote)
# against sluice-relay on loopback, turnutils_peer as the echo peer: UDP and
# TCP x IPv4/IPv6 x long-term (-u -w) / TURN REST secret (-W) x channels /
# Send indications (-s). Success: exit 0, every message back, no loss.
# Usage: test_relay_uclient.sh PATH/TO/sluice-relay   (exit 77: skipped)
set -euo pipefail

relay=${1:?usage: test_relay_uclient.sh SLUICE-RELAY}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"
# shellcheck source=tests/interop/relay_lib.sh
. "$here/relay_lib.sh"

sluice_require_programs "coturn python3" turnutils_uclient turnutils_peer /usr/bin/python3

work=$(mktemp -d)
PEER_PID=''
trap 'relay_cleanup "$work"' EXIT

sluice_ipv6_cases
ips=(127.0.0.1)
$have_v6 && ips+=(::1)

secret=uclient-secret
started=false
for attempt in 1 2 3; do
    mapfile -t ports < <(sluice_free_ports 2)
    PORT=${ports[0]} PEER_PORT=${ports[1]}
    args=(--port "$PORT" --realm sluice.test --user alice:wonderland --auth-secret "$secret"
        --workers 2 --metrics-listen off --allow-peer 127.0.0.0/8)
    for ip in "${ips[@]}"; do
        args+=(--listen "$ip")
    done
    $have_v6 && args+=(--allow-peer ::1/128)
    if relay_spawn RELAY "$work" "$relay" "${args[@]}"; then
        started=true
        break
    fi
    relay_stop RELAY
    sed 's/^/  relay| /' "$RELAY_LOG"
done
$started || { echo "FAIL: sluice-relay did not start"; exit 1; }
echo "# sluice-relay pid $RELAY_PID on udp/tcp $PORT"
relay_peer_start "$work" "$PEER_PORT" "${ips[@]}" ||
    { echo "FAIL: turnutils_peer does not echo"; cat "$work/peer.log"; exit 1; }
echo "# turnutils_peer pid $PEER_PID on port $PEER_PORT"

failures=()
results=()
passes=0
out=$work/uclient.txt
msgs=10

# Output of a good run (learned from coturn's turnserver), last lines:
#   start_mclient: tot_send_msgs=20, tot_recv_msgs=20
#   Total lost packets 0 (0.000000%), total send dropped 0 (0.000000%)
check_output() {
    local sent recv lost
    sent=$(sed -n 's/.*tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\)$/\1/p' "$out" | tail -n1)
    recv=$(sed -n 's/.*tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\)$/\2/p' "$out" | tail -n1)
    lost=$(sed -n 's/.*Total lost packets \([0-9]*\) .*/\1/p' "$out" | tail -n1)
    [ -n "$sent" ] && [ -n "$recv" ] && [ -n "$lost" ] || return 1
    [ "$sent" -eq $((msgs * clients)) ] && [ "$recv" -eq "$sent" ] && [ "$lost" -eq 0 ] || return 1
    summary="sent $sent, received $recv, lost $lost"
}

for transport in udp tcp; do
    for ip in "${ips[@]}"; do
        for cred in long-term shared-secret; do
            for mode in channel send; do
                name="$transport/ipv$([ "$ip" = ::1 ] && echo 6 || echo 4)/$cred/$mode"
                # One client per channel run: each client draws its own number.
                clients=2
                [ "$mode" = channel ] && clients=1
                cmd=(turnutils_uclient -p "$PORT" -e "$ip" -r "$PEER_PORT" -n "$msgs"
                    -m "$clients" -c -z 5)
                [ "$transport" = tcp ] && cmd+=(-t)
                [ "$ip" = ::1 ] && cmd+=(-x)
                [ "$mode" = send ] && cmd+=(-s)
                if [ "$cred" = long-term ]; then cmd+=(-u alice -w wonderland)
                else cmd+=(-u bob -W "$secret"); fi
                cmd+=("$ip")
                # uclient picks channel numbers in RFC 5766's 0x4000-0x7FFF;
                # sluice-relay accepts that range by default (the core's
                # rfc5766_channels), so every run must relay all messages.
                rc=0
                timeout -k 2 60 "${cmd[@]}" >"$out" 2>&1 </dev/null || rc=$?
                if [ "$rc" -eq 0 ] && check_output; then
                    passes=$((passes + 1))
                    results+=("ok   $name: $summary")
                else
                    echo "FAIL: $name: exit $rc"
                    printf '  command:'
                    printf ' %q' "${cmd[@]}"
                    printf '\n'
                    tail -n 30 "$out" | sed 's/^/  uclient| /'
                    tail -n 20 "$RELAY_LOG" | sed 's/^/  relay| /'
                    failures+=("$name")
                    results+=("FAIL $name")
                fi
            done
        done
    done
done

relay_stop RELAY
if [ "$RELAY_RC" -eq 0 ]; then
    passes=$((passes + 1))
    results+=("ok   SIGTERM -> exit 0")
else
    failures+=("SIGTERM")
    results+=("FAIL SIGTERM -> exit $RELAY_RC")
    tail -n 40 "$RELAY_LOG" | sed 's/^/  relay| /'
fi

echo "# results"
printf '#   %s\n' "${results[@]}"
if [ "${#failures[@]}" -gt 0 ]; then
    echo "FAIL: ${#failures[@]} of $((passes + ${#failures[@]})) cases failed"
    exit 1
fi
echo "ok: $passes cases"
