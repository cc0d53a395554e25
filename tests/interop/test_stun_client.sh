#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# sluice-stun against a scripted server on loopback (stun_fake_server.py):
# retransmits with one transaction ID until Rc requests, then exit 2; exit 3
# on an error response or an answer without an address; ignores an answer
# with another transaction ID; succeeds on a late answer.
# Usage: test_stun_client.sh PATH/TO/sluice-stun
set -euo pipefail

stun=${1:?usage: test_stun_client.sh PATH/TO/sluice-stun}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3

work=$(mktemp -d)
fake_pid=
cleanup() {
    if [ -n "$fake_pid" ]; then
        kill "$fake_pid" 2>/dev/null || true
        wait "$fake_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
failures=0

# check MODE EXPECTED_EXIT EXPECTED_REQUESTS
check() {
    local mode=$1 want_rc=$2 want_requests=$3 port rc stats requests txids
    coproc FAKE { exec "$py" "$here/stun_fake_server.py" "$mode"; }
    # shellcheck disable=SC2153 # FAKE_PID is set by coproc
    fake_pid=$FAKE_PID
    read -r -u "${FAKE[0]}" port
    rc=0
    # RTO 50 ms: the full Rc = 7 schedule with the Rm wait takes ~4 s, and a
    # loaded (sanitized) run still answers "third" long before a 4th request.
    timeout 30 "$stun" --rto-ms 50 "127.0.0.1:$port" >"$work/out" 2>"$work/err" || rc=$?
    eval "exec ${FAKE[1]}>&-"
    read -r -u "${FAKE[0]}" stats
    wait "$fake_pid" || true
    fake_pid=
    read -r _ requests _ txids <<<"$stats"
    local problems=()
    [ "$rc" -eq "$want_rc" ] || problems+=("exit $rc, expected $want_rc")
    [ "$requests" -eq "$want_requests" ] || problems+=("$requests requests, expected $want_requests")
    [ "$txids" -eq 1 ] || problems+=("$txids transaction IDs, expected 1 (retransmissions reuse it)")
    if [ "$want_rc" -eq 0 ] && ! grep -Eq '^mapped-address 127\.0\.0\.1:[0-9]+$' "$work/out"; then
        problems+=("no mapped-address 127.0.0.1:PORT line")
    fi
    if [ "$want_rc" -ne 0 ] && ! [ -s "$work/err" ]; then
        problems+=("no message on stderr")
    fi
    if [ "${#problems[@]}" -eq 0 ]; then
        echo "ok - $mode: exit $rc after $requests request(s)"
    else
        echo "not ok - $mode: ${problems[*]}"
        failures=$((failures + 1))
    fi
    sed 's/^/#   stdout: /' "$work/out"
    sed 's/^/#   stderr: /' "$work/err"
}

check silent 2 7
check error 3 1
check noaddr 3 1
check wrongtxid 0 1
check third 0 3
[ "$failures" -eq 0 ]
