#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job, until the media demo exists: build sluice-stun, start coturn's
# turnserver on a free loopback port, ask it for our mapped address with
# sluice-stun, print the answer and stop the server again. Idempotent.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
cd "$root"

sluice_ensure_packages "${SLUICE_PACKAGES[@]}"
sluice_setup_build build
sluice_build build src/tools/sluice-stun

work=$(mktemp -d)
trap 'sluice_turnserver_stop; rm -rf "$work"' EXIT
sluice_turnserver_start "$work"
sluice_log "coturn turnserver (pid $TURNSERVER_PID) listening on 127.0.0.1:$TURNSERVER_PORT/udp"

sluice_log "build/src/tools/sluice-stun 127.0.0.1:$TURNSERVER_PORT"
rc=0
build/src/tools/sluice-stun "127.0.0.1:$TURNSERVER_PORT" || rc=$?
case $rc in
0) sluice_log "ok: sluice-stun got its mapped address from coturn" ;;
2) sluice_log "sluice-stun: no answer (timeout)" ;;
3) sluice_log "sluice-stun: bad or error answer" ;;
*) sluice_log "sluice-stun failed (exit $rc)" ;;
esac
exit "$rc"
