#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job, until the ICE media demo exists (issue 7): start sluice-relay
# (the TURN server) on free loopback ports and a UDP echo peer, then send
# data between the two peers through the relay with sluice-turn — allocate,
# bind a channel, 20 probes out and back, delete — and ask the relay for our
# mapped address with sluice-stun. Everything it starts stops at the end.
# Idempotent: installs what is missing, rebuilds only what changed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
# shellcheck source=tests/interop/relay_lib.sh
. "$root/tests/interop/relay_lib.sh"
cd "$root"

sluice_ensure_packages "${SLUICE_PACKAGES[@]}"
sluice_setup_build build
sluice_build build src/relay/sluice-relay src/tools/sluice-turn src/tools/sluice-stun

work=$(mktemp -d)
PEER_PID=''
trap 'relay_cleanup "$work"' EXIT

# A free port can be taken between the probe and the bind: retry.
started=false
for _ in 1 2 3; do
    port=$(sluice_free_udp_port)
    if relay_spawn RELAY "$work" build/src/relay/sluice-relay --listen 127.0.0.1 \
        --port "$port" --workers 1 --user demo:demo --realm demo.invalid \
        --allow-peer 127.0.0.0/8 --metrics-listen off; then
        started=true
        break
    fi
    relay_stop RELAY
done
$started || sluice_die "sluice-relay did not start; its log: $(cat "$RELAY_LOG")"
sluice_log "sluice-relay (pid $RELAY_PID) listening on 127.0.0.1:$port (UDP and TCP)"

peer_port=$(sluice_free_udp_port)
relay_peer_start "$work" "$peer_port" 127.0.0.1
sluice_log "echo peer (coturn's turnutils_peer, pid $PEER_PID) on 127.0.0.1:$peer_port"

sluice_log "build/src/tools/sluice-stun 127.0.0.1:$port"
build/src/tools/sluice-stun "127.0.0.1:$port"

cmd=(build/src/tools/sluice-turn --user demo --password demo --ping "127.0.0.1:$peer_port"
    --count 20 --interval-ms 50 "turn:127.0.0.1:$port")
sluice_log "${cmd[*]}"
rc=0
"${cmd[@]}" || rc=$?
case $rc in
0) sluice_log "ok: data went to the peer and back through sluice-relay" ;;
2) sluice_log "sluice-turn: no answer from the relay (timeout)" ;;
3) sluice_log "sluice-turn: the relay refused (see the error line above)" ;;
5) sluice_log "sluice-turn: every probe was lost" ;;
*) sluice_log "sluice-turn failed (exit $rc)" ;;
esac
exit "$rc"
