#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: sluice-relay listening on the wildcard addresses (0.0.0.0, ::)
# answers every UDP client from the address the client sent to (IP_PKTINFO,
# IPV6_PKTINFO). A raw Binding request to 127.0.0.2 must come back from
# 127.0.0.2 (without PKTINFO the kernel would pick 127.0.0.1), and
# sluice-turn, whose UDP socket is connected to the server address and so
# hears nothing else, allocates and pings an echo peer through 127.0.0.1,
# 127.0.0.2 and ::1 over UDP and TCP.
# Usage: test_relay_wildcard.sh PATH/TO/sluice-relay PATH/TO/sluice-turn
set -euo pipefail

relay=${1:?usage: test_relay_wildcard.sh SLUICE-RELAY SLUICE-TURN}
tool=${2:?usage: test_relay_wildcard.sh SLUICE-RELAY SLUICE-TURN}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"
# shellcheck source=tests/interop/relay_lib.sh
. "$here/relay_lib.sh"

sluice_require_programs "coturn python3" turnutils_peer /usr/bin/python3

work=$(mktemp -d)
PEER_PID=''
trap 'relay_cleanup "$work"' EXIT

sluice_ipv6_cases

started=false
for attempt in 1 2 3; do
    mapfile -t ports < <(sluice_free_ports 2)
    PORT=${ports[0]} PEER_PORT=${ports[1]}
    args=(--listen 0.0.0.0 --relay-ip 127.0.0.1 --port "$PORT" --realm sluice.test
        --user alice:secret --workers 2 --metrics-listen off --allow-peer 127.0.0.0/8)
    $have_v6 && args+=(--listen :: --relay-ip ::1 --allow-peer ::1/128)
    if relay_spawn RELAY "$work" "$relay" "${args[@]}"; then
        started=true
        break
    fi
    echo "# sluice-relay did not come up (attempt $attempt)"
    relay_stop RELAY
    sed 's/^/  relay| /' "$RELAY_LOG"
done
$started || { echo "FAIL: sluice-relay did not start"; exit 1; }
echo "# sluice-relay pid $RELAY_PID on 0.0.0.0:$PORT$($have_v6 && echo " and [::]:$PORT")"

peer_ips=(127.0.0.1)
$have_v6 && peer_ips+=(::1)
relay_peer_start "$work" "$PEER_PORT" "${peer_ips[@]}" ||
    { echo "FAIL: turnutils_peer does not echo"; cat "$work/peer.log"; exit 1; }

failures=()
results=()
out=$work/out.txt
err=$work/err.txt

fail_case() {
    echo "FAIL: $1: $2"
    sed 's/^/  stdout| /' "$out"
    sed 's/^/  stderr| /' "$err"
    echo "  --- sluice-relay log (last 20 lines):"
    tail -n 20 "$RELAY_LOG" | sed 's/^/  log| /'
    failures+=("$1")
}

# A STUN Binding request from an unconnected socket: the answer's source
# address must be the one the request was sent to.
targets=(127.0.0.1 127.0.0.2)
$have_v6 && targets+=(::1)
for ip in "${targets[@]}"; do
    name="binding answered from $ip"
    if /usr/bin/python3 - "$ip" "$PORT" >"$out" 2>"$err" <<'PY'; then
import os, socket, struct, sys
ip, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind(("::1" if fam == socket.AF_INET6 else "127.0.0.1", 0))
s.settimeout(0.2)
txid = os.urandom(12)
req = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + txid
for _ in range(10):  # at most 2 s
    s.sendto(req, (ip, port))
    try:
        data, src = s.recvfrom(2048)
    except socket.timeout:
        continue
    if data[8:20] != txid or data[:2] != b"\x01\x01":
        sys.exit(f"unexpected answer {data[:2].hex()} from {src}")
    print(f"answer from {src[0]}:{src[1]}")
    sys.exit(0 if (src[0], src[1]) == (ip, port) else 1)
sys.exit("no answer")
PY
        results+=("ok   $name ($(cat "$out"))")
    else
        fail_case "$name" "$(cat "$out")"
    fi
done

# sluice-turn through each address, UDP and TCP: allocation, channel, data.
for ip in "${targets[@]}"; do
    if [ "$ip" = ::1 ]; then host='[::1]' fam=6 peer="[::1]:$PEER_PORT" re='\[::1\]'
    else host=$ip fam=4 peer="127.0.0.1:$PEER_PORT" re='127\.0\.0\.1'; fi
    for transport in udp tcp; do
        name="sluice-turn $transport via $host"
        rc=0
        timeout -k 2 30 "$tool" --transport "$transport" --family "$fam" --user alice \
            --password secret --ping "$peer" --count 3 --interval-ms 20 \
            "turn:$host:$PORT" >"$out" 2>"$err" </dev/null || rc=$?
        if [ "$rc" -ne 0 ]; then
            fail_case "$name" "exited $rc"
        elif ! grep -Eq "^relayed-address $re:[0-9]+\$" "$out"; then
            fail_case "$name" "no relayed-address on the --relay-ip"
        elif ! grep -Eq '^rtt-ms .* lost 0/3$' "$out"; then
            fail_case "$name" "probes lost"
        else
            results+=("ok   $name: $(grep '^rtt-ms' "$out")")
        fi
    done
done

relay_stop RELAY
[ "$RELAY_RC" -eq 0 ] || fail_case "SIGTERM -> exit 0" "exit $RELAY_RC"

echo "# results"
printf '#   %s\n' "${results[@]}"
if [ "${#failures[@]}" -gt 0 ]; then
    echo "FAIL: ${#failures[@]} cases failed"
    exit 1
fi
echo "ok: ${#results[@]} cases"
