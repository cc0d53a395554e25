#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: aioice's TURN client (python3-aioice) allocates on sluice-relay
# over UDP and TCP and relays datagrams to turnutils_peer and back.
# Usage: test_relay_aioice.sh PATH/TO/sluice-relay   (exit 77: skipped)
set -euo pipefail

relay=${1:?usage: test_relay_aioice.sh SLUICE-RELAY}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"
# shellcheck source=tests/interop/relay_lib.sh
. "$here/relay_lib.sh"

py=/usr/bin/python3
if [ ! -x "$py" ] || ! "$py" -c 'import aioice.turn' 2>/dev/null; then
    echo "SKIP: aioice is not installed for /usr/bin/python3 (apt-get install python3-aioice)"
    exit 77
fi
if ! command -v turnutils_peer >/dev/null 2>&1; then
    echo "SKIP: turnutils_peer is not installed (apt-get install coturn)"
    exit 77
fi

work=$(mktemp -d)
PEER_PID=''
trap 'relay_cleanup "$work"' EXIT

started=false
for attempt in 1 2 3; do
    mapfile -t ports < <(sluice_free_ports 2)
    PORT=${ports[0]} PEER_PORT=${ports[1]}
    if relay_spawn RELAY "$work" "$relay" --listen 127.0.0.1 --port "$PORT" \
        --realm sluice.test --user aioice:secret-pw --workers 1 --metrics-listen off \
        --allow-peer 127.0.0.0/8; then
        started=true
        break
    fi
    relay_stop RELAY
    sed 's/^/  relay| /' "$RELAY_LOG"
done
$started || { echo "FAIL: sluice-relay did not start"; exit 1; }
relay_peer_start "$work" "$PEER_PORT" 127.0.0.1 ||
    { echo "FAIL: turnutils_peer does not echo"; exit 1; }

status=0
for transport in udp tcp; do
    if ! timeout -k 2 30 "$py" "$here/relay_aioice.py" 127.0.0.1 "$PORT" aioice secret-pw \
        127.0.0.1 "$PEER_PORT" "$transport"; then
        echo "FAIL: aioice over $transport"
        tail -n 20 "$RELAY_LOG" | sed 's/^/  relay| /'
        status=1
    fi
done
relay_stop RELAY
if [ "$RELAY_RC" -ne 0 ]; then
    echo "FAIL: sluice-relay exited $RELAY_RC on SIGTERM"
    tail -n 40 "$RELAY_LOG" | sed 's/^/  relay| /'
    status=1
fi
[ "$status" -eq 0 ] && echo "ok: aioice over UDP and TCP"
exit "$status"
