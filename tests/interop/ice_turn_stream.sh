#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: runs ice_turn_stream (TAP): sluice ICE agents with relayed
# candidates through coturn's turnserver over TCP and TLS, and over UDP on
# IPv6. One turnserver on free loopback ports (UDP and TCP on P, TLS on T,
# 127.0.0.1 and, when IPv6 is enabled, ::1, relays on both) with a
# certificate the test program makes (SAN DNS:localhost, IP:127.0.0.1),
# plus an unrelated certificate for the verification-failure case and a
# port nothing listens on for the refused-connection case.
# Usage: ice_turn_stream.sh PATH/TO/ice_turn_stream   (exit 77: skipped)
set -euo pipefail

prog=${1:?usage: ice_turn_stream.sh PATH/TO/ice_turn_stream}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"

sluice_require_programs coturn turnserver

work=$(mktemp -d)
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    sluice_turnserver_stop TURN
    rm -rf "$work"
}
trap cleanup EXIT

sluice_ipv6_cases

# The server's certificate and an unrelated one (tests/common/test_cert.h).
"$prog" --make-certs "$work" || { echo "FAIL: cannot make the test certificates"; exit 1; }

ips=(127.0.0.1)
$have_v6 && ips+=(::1)
started=false
for attempt in 1 2 3; do
    mapfile -t ports < <(sluice_free_ports 3)
    [ "${#ports[@]}" -eq 3 ] || { echo "FAIL: no free ports"; exit 1; }
    port=${ports[0]} tls_port=${ports[1]} nobody_port=${ports[2]} # nobody: stays unbound
    args=() ready=()
    for ip in "${ips[@]}"; do
        args+=(--listening-ip "$ip" --relay-ip "$ip")
        ready+=("UDP listener opened on: $ip:$port"
            "TLS/TCP listener opened on : $ip:$port"
            "TLS/TCP listener opened on : $ip:$tls_port")
    done
    if sluice_turnserver_spawn TURN "$work" "${ready[@]}" -- \
        "${args[@]}" --listening-port "$port" --tls-listening-port "$tls_port" \
        --cert "$work/server.pem" --pkey "$work/server.key" --no-dtls \
        --min-port 49152 --max-port 65535 --allow-loopback-peers \
        --realm sluice.test --lt-cred-mech --user ice-user:ice-secret-pass; then
        started=true
        break
    fi
    echo "# turnserver did not come up (attempt $attempt); retrying on other ports"
    sluice_turnserver_stop TURN
done
if ! $started; then
    echo "FAIL: turnserver did not open its listeners; its log:"
    sed 's/^/  | /' "$TURN_LOG" 2>/dev/null || true
    exit 1
fi
echo "# turnserver pid $TURN_PID: udp/tcp $port, tls $tls_port on ${ips[*]}"

export SLUICE_TURN_STREAM="$port $tls_port $nobody_port ice-user ice-secret-pass"
export SLUICE_TURN_STREAM_CA="$work/server.pem"
export SLUICE_TURN_STREAM_OTHER_CA="$work/other.pem"
SLUICE_TURN_STREAM_V6=0
$have_v6 && SLUICE_TURN_STREAM_V6=1
export SLUICE_TURN_STREAM_V6
rc=0
"$prog" || rc=$?
if [ "$rc" -ne 0 ]; then
    echo "# turnserver log (tail):"
    tail -n 40 "$TURN_LOG" | sed 's/^/#   | /'
fi
exit "$rc"
