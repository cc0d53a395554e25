#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: libnice's STUN library (stun_libnice, TAP) against sluice-relay
# on loopback, in libnice's RFC 3489 mode (what NiceAgent sends for srflx
# discovery) and RFC 5389 mode.
# Usage: test_stun_libnice.sh PATH/TO/sluice-relay PATH/TO/stun_libnice
set -euo pipefail

relay=${1:?usage: test_stun_libnice.sh SLUICE-RELAY STUN-LIBNICE}
prog=${2:?usage: test_stun_libnice.sh SLUICE-RELAY STUN-LIBNICE}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"
# shellcheck source=tests/interop/relay_lib.sh
. "$here/relay_lib.sh"

work=$(mktemp -d)
PEER_PID=''
trap 'relay_cleanup "$work"' EXIT

started=false
for attempt in 1 2 3; do
    PORT=$(sluice_free_ports 1)
    if relay_spawn RELAY "$work" "$relay" --listen 127.0.0.1 --port "$PORT" --realm sluice.test \
        --user alice:wonderland --workers 1 --metrics-listen off; then
        started=true
        break
    fi
    relay_stop RELAY
    sed 's/^/# relay| /' "$RELAY_LOG"
done
$started || { echo "1..0 # FAIL: sluice-relay did not start"; exit 1; }
echo "# sluice-relay pid $RELAY_PID on udp $PORT"
"$prog" 127.0.0.1 "$PORT"
