#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: sluice-stun against coturn's turnserver on a free loopback port
# must report the mapped address 127.0.0.1:<its own port>, in text and JSON.
# Usage: test_coturn_stun.sh PATH/TO/sluice-stun   (exit 77: skipped)
set -euo pipefail

stun=${1:?usage: test_coturn_stun.sh PATH/TO/sluice-stun}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"

if ! command -v turnserver >/dev/null 2>&1; then
    echo "SKIP: coturn's turnserver is not installed (apt-get install coturn)"
    exit 77
fi
py=/usr/bin/python3
[ -x "$py" ] || py=python3

work=$(mktemp -d)
trap 'sluice_turnserver_stop; rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*"
    echo "--- turnserver log:"
    sed 's/^/  | /' "$TURNSERVER_LOG"
    exit 1
}

sluice_turnserver_start "$work"
server="127.0.0.1:$TURNSERVER_PORT"
echo "# turnserver pid $TURNSERVER_PID on $server"

# Text output: "mapped-address IP:PORT" and "rtt-ms N.NNN".
rc=0
"$stun" "$server" >"$work/out.txt" 2>"$work/err.txt" || rc=$?
sed 's/^/# stdout: /' "$work/out.txt"
sed 's/^/# stderr: /' "$work/err.txt"
[ "$rc" -eq 0 ] || fail "sluice-stun $server exited $rc"
mapped=$(awk '$1 == "mapped-address" { print $2; exit }' "$work/out.txt")
[ -n "$mapped" ] || fail "no 'mapped-address' line"
ip=${mapped%:*}
port=${mapped##*:}
[ "$ip" = 127.0.0.1 ] || fail "mapped address $mapped: expected IP 127.0.0.1"
case $port in
'' | *[!0-9]*) fail "mapped address $mapped: port is not a number" ;;
esac
{ [ "$port" -ge 1 ] && [ "$port" -le 65535 ]; } || fail "mapped address $mapped: port out of range"
grep -Eq '^rtt-ms [0-9]+\.[0-9]{3}$' "$work/out.txt" || fail "no 'rtt-ms N.NNN' line"
# coturn saw the same client port it answered with (--log-binding).
grep -q "remote addr $mapped" "$TURNSERVER_LOG" || fail "turnserver's log does not show a request from $mapped"

# JSON output: one object with mapped_address and rtt_ms.
rc=0
"$stun" --json "$server" >"$work/out.json" 2>"$work/err.txt" || rc=$?
sed 's/^/# stdout: /' "$work/out.json"
sed 's/^/# stderr: /' "$work/err.txt"
[ "$rc" -eq 0 ] || fail "sluice-stun --json $server exited $rc"
"$py" - "$work/out.json" <<'PY' || fail "--json output is not the expected JSON object"
import ipaddress, json, sys
with open(sys.argv[1]) as f:
    o = json.load(f)
assert isinstance(o, dict), o
ip, _, port = o["mapped_address"].rpartition(":")
assert ipaddress.ip_address(ip) == ipaddress.ip_address("127.0.0.1"), o
assert 1 <= int(port) <= 65535, o
assert isinstance(o["rtt_ms"], (int, float)) and o["rtt_ms"] >= 0, o
PY

echo "ok: mapped address $mapped"
