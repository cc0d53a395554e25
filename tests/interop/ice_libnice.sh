#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: runs ice_libnice (the sluice ICE agent against libnice's
# NiceAgent, TAP) with coturn's turnserver on loopback for its relay-only
# case. Without turnserver that case is skipped with the reason; a
# turnserver that is installed but does not start fails it.
# Usage: ice_libnice.sh PATH/TO/ice_libnice
set -euo pipefail

prog=${1:?usage: ice_libnice.sh PATH/TO/ice_libnice}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"

work=$(mktemp -d)
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    sluice_turnserver_stop TURNSERVER
    rm -rf "$work"
}
trap cleanup EXIT

if command -v turnserver >/dev/null 2>&1; then
    if sluice_turnserver_start_user "$work" ice-user ice-secret-pass 2>"$work/start.err"; then
        echo "# turnserver pid $TURNSERVER_PID on 127.0.0.1:$TURNSERVER_PORT"
        export SLUICE_TURN="127.0.0.1:$TURNSERVER_PORT ice-user ice-secret-pass"
    else
        sed 's/^/# /' "$work/start.err"
        export SLUICE_TURN_ERROR="coturn's turnserver is installed but did not start"
    fi
fi
rc=0
"$prog" || rc=$?
if [ "$rc" -ne 0 ] && [ -n "${TURNSERVER_LOG:-}" ] && [ -f "$TURNSERVER_LOG" ]; then
    echo "# turnserver log (tail):"
    tail -n 30 "$TURNSERVER_LOG" | sed 's/^/#   | /'
fi
exit "$rc"
