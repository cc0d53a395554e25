#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run a test program with TURN servers on loopback: coturn's turnserver
# (--coturn), sluice-relay (--relay BINARY) and turnutils_peer, coturn's UDP
# echo peer (--peer). Each gets free ports, a test certificate for TLS, the
# user alice and loopback peers allowed; the program finds them in
# SLUICE_TEST_* variables:
#   SLUICE_TEST_USER, SLUICE_TEST_PASSWORD   long-term credentials (both servers)
#   SLUICE_TEST_CA                           PEM certificate the TLS listeners use
#   SLUICE_TEST_COTURN_PORT, _COTURN_TLS_PORT
#   SLUICE_TEST_ALT_PORT, _ALT_TLS_PORT      a second coturn that answers every
#                                            Allocate with 300 ALTERNATE-SERVER
#                                            pointing at the first (--coturn)
#   SLUICE_TEST_RELAY_PORT, _RELAY_TLS_PORT
#   SLUICE_TEST_RELAY_QUOTA                  allocations alice may hold on sluice-relay
#   SLUICE_TEST_PEER_PORT                    the echo peer on 127.0.0.1 (and ::1)
#   SLUICE_TEST_IPV6=1                       when ::1 works: sluice-relay also
#                                            relays from ::1, the peer echoes there
# Everything started is stopped by PID when the program ends; its exit code
# is passed on. Exit 77 (skipped) with a reason when a peer is missing.
# Usage: turn_servers.sh [--coturn] [--peer] [--relay BINARY] -- PROGRAM [ARGS...]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"
# shellcheck source=tests/interop/relay_lib.sh
. "$here/../interop/relay_lib.sh"

want_coturn=false want_peer=false relay=''
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    case $1 in
    --coturn) want_coturn=true ;;
    --peer) want_peer=true ;;
    --relay) relay=${2:?--relay needs the sluice-relay binary}; shift ;;
    *) echo "turn_servers.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { echo "usage: turn_servers.sh [--coturn] [--peer] [--relay BIN] -- PROGRAM" >&2; exit 2; }

progs=(openssl /usr/bin/python3)
$want_coturn && progs+=(turnserver)
$want_peer && progs+=(turnutils_peer)
sluice_require_programs "coturn openssl python3" "${progs[@]}"
if [ -n "$relay" ] && [ ! -x "$relay" ]; then
    echo "SKIP: sluice-relay is not built ($relay)"
    exit 77
fi

sluice_ipv6_cases
work=$(mktemp -d)
PEER_PID='' RELAY_PID=''
cleanup() {
    sluice_turnserver_stop COTURN
    sluice_turnserver_stop ALT
    relay_cleanup "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=sluice-gst-test" -addext "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>"$work/openssl.err" ||
    { cat "$work/openssl.err"; exit 1; }

export SLUICE_TEST_USER=alice SLUICE_TEST_PASSWORD='correct horse' SLUICE_TEST_CA=$work/cert.pem
realm=sluice.test
relay_quota=10 # allocations per user on sluice-relay (a test fills it: 486)

started=false
for attempt in 1 2 3; do
    mapfile -t ports < <(sluice_free_ports 8)
    [ "${#ports[@]}" -eq 8 ] || { echo "FAIL: no free ports"; exit 1; }
    ok=true
    if $want_coturn; then
        # Relay ports 49152-57343 for coturn, 57344-65535 for sluice-relay.
        sluice_turnserver_spawn COTURN "$work" \
            "UDP listener opened on: 127.0.0.1:${ports[0]}" \
            "TLS/TCP listener opened on : 127.0.0.1:${ports[0]}" \
            "TLS/TCP listener opened on : 127.0.0.1:${ports[1]}" -- \
            --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 \
            --listening-port "${ports[0]}" --tls-listening-port "${ports[1]}" \
            --cert "$work/cert.pem" --pkey "$work/key.pem" --no-dtls \
            --min-port 49152 --max-port 57343 --allow-loopback-peers \
            --lt-cred-mech --user "$SLUICE_TEST_USER:$SLUICE_TEST_PASSWORD" \
            --realm "$realm" --fingerprint || ok=false
        $ok && sluice_turnserver_spawn ALT "$work" \
            "UDP listener opened on: 127.0.0.1:${ports[6]}" \
            "TLS/TCP listener opened on : 127.0.0.1:${ports[6]}" \
            "TLS/TCP listener opened on : 127.0.0.1:${ports[7]}" -- \
            --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 \
            --listening-port "${ports[6]}" --tls-listening-port "${ports[7]}" \
            --cert "$work/cert.pem" --pkey "$work/key.pem" --no-dtls \
            --min-port 49152 --max-port 57343 --lt-cred-mech \
            --user "$SLUICE_TEST_USER:$SLUICE_TEST_PASSWORD" --realm "$realm" \
            --alternate-server "127.0.0.1:${ports[0]}" \
            --tls-alternate-server "127.0.0.1:${ports[1]}" || ok=false
    fi
    if $ok && [ -n "$relay" ]; then
        v6=()
        $have_v6 && v6=(--relay-ip 127.0.0.1 --relay-ip ::1 --allow-peer ::1/128)
        relay_spawn RELAY "$work" "$relay" --listen 127.0.0.1 "${v6[@]}" --port "${ports[2]}" \
            --tls-port "${ports[3]}" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" \
            --realm "$realm" --user "$SLUICE_TEST_USER:$SLUICE_TEST_PASSWORD" \
            --min-port 57344 --max-port 65535 --allow-peer 127.0.0.0/8 --workers 1 \
            --challenge-rate 1000 --challenge-burst 1000 --metrics-listen off \
            --user-quota "$relay_quota" || ok=false
    fi
    if $ok; then
        started=true
        break
    fi
    echo "# servers did not come up (attempt $attempt); retrying on other ports"
    sluice_turnserver_stop COTURN
    sluice_turnserver_stop ALT
    relay_stop RELAY
done
if ! $started; then
    echo "FAIL: the TURN servers did not start; logs:"
    sed 's/^/  coturn| /' "${COTURN_LOG:-/dev/null}" 2>/dev/null || true
    sed 's/^/  relay| /' "${RELAY_LOG:-/dev/null}" 2>/dev/null || true
    exit 1
fi
if $want_coturn; then
    export SLUICE_TEST_COTURN_PORT=${ports[0]} SLUICE_TEST_COTURN_TLS_PORT=${ports[1]}
    echo "# coturn pid $COTURN_PID: udp/tcp $SLUICE_TEST_COTURN_PORT, tls $SLUICE_TEST_COTURN_TLS_PORT"
    export SLUICE_TEST_ALT_PORT=${ports[6]} SLUICE_TEST_ALT_TLS_PORT=${ports[7]}
    echo "# redirecting coturn pid $ALT_PID: udp/tcp $SLUICE_TEST_ALT_PORT, tls $SLUICE_TEST_ALT_TLS_PORT"
fi
if [ -n "$relay" ]; then
    export SLUICE_TEST_RELAY_PORT=${ports[2]} SLUICE_TEST_RELAY_TLS_PORT=${ports[3]}
    export SLUICE_TEST_RELAY_QUOTA=$relay_quota
    echo "# sluice-relay pid $RELAY_PID: udp/tcp $SLUICE_TEST_RELAY_PORT, tls $SLUICE_TEST_RELAY_TLS_PORT"
fi
if $want_peer; then
    peer_ips=(127.0.0.1)
    $have_v6 && peer_ips+=(::1)
    relay_peer_start "$work" "${ports[4]}" "${peer_ips[@]}" ||
        { echo "FAIL: turnutils_peer does not echo"; cat "$work/peer.log"; exit 1; }
    export SLUICE_TEST_PEER_PORT=${ports[4]}
    echo "# turnutils_peer pid $PEER_PID on ${peer_ips[*]} port $SLUICE_TEST_PEER_PORT"
fi
$have_v6 && export SLUICE_TEST_IPV6=1

# GLib, GObject and GStreamer keep type data and caches until exit; only
# those libraries are suppressed under ASan (not sluice's own code).
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/turn_lsan.supp:print_suppressions=0}
rc=0
"$@" || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    echo "# program exited $rc; server logs (last 20 lines each):"
    tail -n 20 "${COTURN_LOG:-/dev/null}" 2>/dev/null | sed 's/^/  coturn| /' || true
    tail -n 20 "${RELAY_LOG:-/dev/null}" 2>/dev/null | sed 's/^/  relay| /' || true
fi
exit "$rc"
