#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/webrtc-call end to end: sluice-relay and sluice-coord on
# loopback (relay_coord_start), "bob" waits for a call and "alice" calls him
# by name. Both must receive 30 VP8 frames and the data-channel message and
# its echo must arrive. Then the same relay-only (through the TURN server
# whose credentials the coordinator handed out), and once more with bob's
# coordinator connection idle for 12 s before alice calls: the GLib client
# used to drop a connection quiet for 10 s (its connect timeout stayed on
# the socket). The 12 s are the idle time under test, not a wait for
# something to happen. TAP.
# Usage: test_webrtc_call.sh BUILDDIR
set -euo pipefail

build=$(cd "${1:?usage: test_webrtc_call.sh BUILDDIR}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"
# shellcheck source=tests/interop/relay_lib.sh
. "$here/../interop/relay_lib.sh"

work=$(mktemp -d)
PEER_PID='' BOB_PID='' ALICE_PID=''
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    sluice_kill_wait TERM "$ALICE_PID" "$BOB_PID"
    relay_stop COORD
    relay_cleanup "$work"
}
trap cleanup EXIT

echo "1..3"
if ! relay_coord_start "$work" "$build/src/relay/sluice-relay" "$build/src/coordd/sluice-coord" \
    2>"$work/start.err"; then
    sed 's/^/# /' "$work/start.err"
    echo "not ok 1 - the relay and the coordinator did not start"
    echo "not ok 2 - (not run)"
    echo "not ok 3 - (not run)"
    exit 1
fi
echo "# sluice-relay pid $RELAY_PID on $RELAY_PORT, sluice-coord pid $COORD_PID on $COORD_PORT"
export XDG_STATE_HOME="$work/state"
call=("$build/examples/webrtc-call" --coordinator "127.0.0.1:$COORD_PORT"
    --coordinator-pin "$COORD_FP" --video-sink fakesink --frames 30 --timeout 20 --local-address 127.0.0.1)

failed=0
n=0
for mode in direct relay-only idle-callee; do
    n=$((n + 1))
    extra=()
    [ "$mode" = relay-only ] && extra=(--relay-only)
    bob_timeout=()
    [ "$mode" = idle-callee ] && bob_timeout=(--timeout 40)
    "${call[@]}" "${extra[@]}" "${bob_timeout[@]}" --name "bob-$n" >"$work/bob.log" 2>&1 &
    BOB_PID=$!
    [ "$mode" = idle-callee ] && sleep 12
    "${call[@]}" "${extra[@]}" --name "alice-$n" --call "bob-$n" >"$work/alice.log" 2>&1 &
    ALICE_PID=$!
    rc_a=0 rc_b=0
    wait "$ALICE_PID" || rc_a=$?
    ALICE_PID=''
    wait "$BOB_PID" || rc_b=$?
    BOB_PID=''
    sed 's/^/# alice| /' "$work/alice.log"
    sed 's/^/# bob|   /' "$work/bob.log"
    why=''
    [ "$rc_a" -eq 0 ] || why="alice exited $rc_a"
    [ "$rc_b" -eq 0 ] || why="${why:+$why, }bob exited $rc_b"
    grep -q 'echo received' "$work/alice.log" || why="${why:+$why, }alice got no echo"
    grep -q 'message echoed' "$work/bob.log" || why="${why:+$why, }bob got no message"
    if [ "$mode" = relay-only ]; then
        grep -q 'TURN server turn:127.0.0.1' "$work/alice.log" ||
            why="${why:+$why, }alice got no TURN server from the coordinator"
    fi
    if [ -z "$why" ]; then
        echo "ok $n - webrtc-call $mode"
    else
        echo "not ok $n - webrtc-call $mode: $why"
        failed=1
    fi
done
exit "$failed"
