#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: the project's sluice-turn tool against sluice-relay on loopback
# with turnutils_peer as the UDP echo peer: UDP/TCP/TLS x IPv4/IPv6 x
# long-term/TURN REST x channel/permission, a wrong password, metrics, drain
# mode (an allocation in use goes on; new ones are redirected with 300 to a
# second relay, over UDP, TCP and TLS with ALTERNATE-DOMAIN; 508 without an
# alternate), a start-up error for a bad TLS key, and a clean exit 0 on
# SIGTERM (leaks fail ASan builds).
# Usage: test_relay_sluice_turn.sh PATH/TO/sluice-relay PATH/TO/sluice-turn
set -euo pipefail

relay=${1:?usage: test_relay_sluice_turn.sh SLUICE-RELAY SLUICE-TURN}
tool=${2:?usage: test_relay_sluice_turn.sh SLUICE-RELAY SLUICE-TURN}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"
# shellcheck source=tests/interop/relay_lib.sh
. "$here/relay_lib.sh"

sluice_require_programs "coturn openssl python3" turnutils_peer openssl /usr/bin/python3

work=$(mktemp -d)
PEER_PID=''
trap 'relay_stop RELAY2; relay_cleanup "$work"' EXIT

sluice_ipv6_cases
ips=(127.0.0.1)
$have_v6 && ips+=(::1)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=sluice-relay-test" -addext "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>"$work/openssl.err" ||
    { cat "$work/openssl.err"; exit 1; }

realm=sluice.test
lt_user=alice
lt_pass='correct horse'
secret=sluice-shared-secret

# RELAY takes the cases; RELAY2 is its --alternate-server in drain mode.
# Disjoint relay port ranges, so neither steals the other's ports.
started=false
for attempt in 1 2 3; do
    mapfile -t ports < <(sluice_free_ports 7)
    PORT=${ports[0]} TLS_PORT=${ports[1]} PEER_PORT=${ports[2]} METRICS_PORT=${ports[3]}
    PORT2=${ports[4]} TLS_PORT2=${ports[5]} METRICS_PORT2=${ports[6]}
    common=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --realm "$realm"
        --user "$lt_user:$lt_pass" --auth-secret old-secret --auth-secret "$secret"
        --workers 2 --allow-peer 127.0.0.0/8)
    for ip in "${ips[@]}"; do
        common+=(--listen "$ip")
    done
    $have_v6 && common+=(--allow-peer ::1/128)
    args=("${common[@]}" --port "$PORT" --tls-port "$TLS_PORT" --max-port 57343
        --metrics-listen "127.0.0.1:$METRICS_PORT" --alternate-server "127.0.0.1:$PORT2"
        --alternate-tls-port "$TLS_PORT2" --alternate-domain localhost)
    $have_v6 && args+=(--alternate-server "[::1]:$PORT2")
    args2=("${common[@]}" --port "$PORT2" --tls-port "$TLS_PORT2" --min-port 57344
        --metrics-listen "127.0.0.1:$METRICS_PORT2")
    if relay_spawn RELAY2 "$work" "$relay" "${args2[@]}" &&
        relay_spawn RELAY "$work" "$relay" "${args[@]}"; then
        started=true
        break
    fi
    echo "# sluice-relay did not come up (attempt $attempt)"
    relay_stop RELAY
    relay_stop RELAY2
    sed 's/^/  relay| /' "$RELAY2_LOG" "${RELAY_LOG:-/dev/null}"
done
$started || { echo "FAIL: sluice-relay did not start"; exit 1; }
echo "# sluice-relay pid $RELAY_PID: udp/tcp $PORT, tls $TLS_PORT, metrics $METRICS_PORT"
echo "# its alternate, pid $RELAY2_PID: udp/tcp $PORT2, tls $TLS_PORT2, metrics $METRICS_PORT2"

relay_peer_start "$work" "$PEER_PORT" "${ips[@]}" ||
    { echo "FAIL: turnutils_peer does not echo"; cat "$work/peer.log"; exit 1; }
echo "# turnutils_peer pid $PEER_PID on port $PEER_PORT"

rs_user="$(($(date +%s) + 3600)):bob"
rs_pass=$(/usr/bin/python3 -c 'import base64, hashlib, hmac, sys
print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha1).digest()).decode())' \
    "$secret" "$rs_user")

failures=()
results=()
passes=0
out=$work/out.txt
err=$work/err.txt

fail_case() {
    echo "FAIL: $1: $2"
    printf '  command:'
    printf ' %q' "${cmd[@]}"
    printf '\n'
    sed 's/^/  stdout| /' "$out"
    sed 's/^/  stderr| /' "$err"
    echo "  --- sluice-relay log (last 30 lines):"
    tail -n 30 "$RELAY_LOG" | sed 's/^/  log| /'
    failures+=("$1")
    results+=("FAIL $1")
}

run_tool() {
    cmd=("$tool" "$@")
    rc=0
    timeout -k 2 30 "${cmd[@]}" >"$out" 2>"$err" </dev/null || rc=$?
}

# check_ping NAME COUNT [FILE REGEX WHAT]: the last run_tool exited 0, FILE
# (when given) matches REGEX (else the case fails with WHAT), and all COUNT
# probes came back.
check_ping() {
    local name=$1 n=$2
    if [ "$rc" -ne 0 ]; then
        fail_case "$name" "exited $rc"
    elif [ $# -gt 2 ] && ! grep -Eq "$4" "$3"; then
        fail_case "$name" "$5"
    elif ! grep -Eq "^rtt-ms [0-9.]+/[0-9.]+/[0-9.]+ lost 0/$n\$" "$out"; then
        fail_case "$name" "probes lost"
    else
        passes=$((passes + 1))
        results+=("ok   $name: $(grep '^rtt-ms' "$out")")
    fi
}

count=5
for cred in long-term shared-secret; do
    if [ "$cred" = long-term ]; then auth=(--user "$lt_user" --password "$lt_pass")
    else auth=(--user "$rs_user" --password "$rs_pass"); fi
    for ip in "${ips[@]}"; do
        if [ "$ip" = ::1 ]; then fam=6 host='[::1]' re='\[::1\]'
        else fam=4 host=127.0.0.1 re='127\.0\.0\.1'; fi
        for transport in udp tcp tls; do
            if [ "$transport" = tls ]; then uri=turns:$host:$TLS_PORT extra=(--ca "$work/cert.pem")
            else uri=turn:$host:$PORT extra=(--transport "$transport"); fi
            for mode in channel permission; do
                flag=()
                [ "$mode" = permission ] && flag=(--no-channel)
                name="$transport/ipv$fam/$cred/$mode"
                run_tool "${extra[@]}" --family "$fam" "${auth[@]}" --ping "$host:$PEER_PORT" \
                    --count "$count" --interval-ms 20 "${flag[@]}" "$uri"
                check_ping "$name" "$count" "$out" "^relayed-address $re:[0-9]+\$" \
                    "no IPv$fam relayed-address"
            done
        done
    done
done

# The relayed family does not follow the transport's family (RFC 6156).
if $have_v6; then
    run_tool --family 6 --user "$lt_user" --password "$lt_pass" --ping "[::1]:$PEER_PORT" \
        --count "$count" --interval-ms 20 "turn:127.0.0.1:$PORT"
    if [ "$rc" -eq 0 ] && grep -q 'lost 0/' "$out" && grep -q '^relayed-address \[::1\]' "$out"; then
        passes=$((passes + 1))
        results+=("ok   udp/IPv6 relay via IPv4 listener")
    else
        fail_case "udp/IPv6 relay via IPv4 listener" "exit $rc or lost probes"
    fi
fi

# A wrong password: 401, exit 3.
run_tool --user "$lt_user" --password wrong "turn:127.0.0.1:$PORT"
if [ "$rc" -eq 3 ] && grep -Eq '^error 401( |$)' "$err"; then
    passes=$((passes + 1))
    results+=("ok   wrong password -> 401")
else
    fail_case "wrong password -> 401" "exit $rc"
fi

# Metrics: poll (bounded) until the relayed packets show up.
url="http://127.0.0.1:$METRICS_PORT/metrics"
if got=$(relay_metric_wait "$url" 'sluice_relay_relayed_packets_total{direction="to_client"}' 10) &&
    relay_metric_wait "$url" sluice_relay_allocations_total 10 >/dev/null; then
    passes=$((passes + 1))
    results+=("ok   metrics: $got packets relayed to clients")
else
    cmd=(curl "$url")
    : >"$out"
    : >"$err"
    fail_case "metrics" "relayed packets ${got:-?}"
fi

post_drain() {
    /usr/bin/python3 -c 'import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="POST"), timeout=2).read()' \
        "http://127.0.0.1:$1/drain"
}

# Drain mode: an allocation in use when the drain starts goes on to its
# end. It pings for 4 s; the drain starts once the relay counts it.
long_out=$work/long.out
"$tool" --user "$lt_user" --password "$lt_pass" --ping "127.0.0.1:$PEER_PORT" --count 100 \
    --interval-ms 40 "turn:127.0.0.1:$PORT" >"$long_out" 2>"$work/long.err" </dev/null &
long_pid=$!
if relay_metric_wait "$url" sluice_relay_allocations 1 >/dev/null; then
    post_drain "$METRICS_PORT"
    drain_while_running=false
    kill -0 "$long_pid" 2>/dev/null && drain_while_running=true
else
    drain_while_running=false
fi
long_rc=0
wait "$long_pid" || long_rc=$?
if $drain_while_running && [ "$long_rc" -eq 0 ] && grep -q '^rtt-ms .* lost 0/100$' "$long_out"; then
    passes=$((passes + 1))
    results+=("ok   drain: the allocation in use goes on ($(grep '^rtt-ms' "$long_out"))")
else
    cmd=("$tool" --ping "127.0.0.1:$PEER_PORT" --count 100 "turn:127.0.0.1:$PORT")
    cp "$long_out" "$out"
    cp "$work/long.err" "$err"
    fail_case "drain: allocation in use" "exit $long_rc, drained while running: $drain_while_running"
fi

# New allocations are redirected (300 Try Alternate) to RELAY2, on the
# TLS port with ALTERNATE-DOMAIN for TLS; the client follows and relays.
redirects=(udp/127.0.0.1 tcp/127.0.0.1 tls/127.0.0.1)
$have_v6 && redirects+=(udp/::1)
for case in "${redirects[@]}"; do
    transport=${case%%/*} ip=${case#*/}
    if [ "$ip" = ::1 ]; then host='[::1]' fam=6; else host=$ip fam=4; fi
    if [ "$transport" = tls ]; then
        uri=turns:$host:$TLS_PORT extra=(--ca "$work/cert.pem") alt_port=$TLS_PORT2
    else
        uri=turn:$host:$PORT extra=(--transport "$transport") alt_port=$PORT2
    fi
    run_tool "${extra[@]}" --family "$fam" --user "$lt_user" --password "$lt_pass" \
        --ping "$host:$PEER_PORT" --count 3 --interval-ms 20 "$uri"
    alt=$(printf '%s' "$host:$alt_port" | sed 's/[.[]/\\&/g; s/]/\\]/g')
    check_ping "drain: $transport/ipv$fam redirected to $host:$alt_port" 3 "$err" \
        "redirected to $alt\$" "not redirected to $host:$alt_port"
done
url2="http://127.0.0.1:$METRICS_PORT2/metrics"
n_redirects=${#redirects[@]}
if got=$(relay_metric_wait "$url" sluice_relay_drain_redirected_total "$n_redirects") &&
    relay_metric_wait "$url2" sluice_relay_allocations_total "$n_redirects" >/dev/null; then
    passes=$((passes + 1))
    results+=("ok   drain metrics: $got redirected, allocated on the alternate")
else
    cmd=(curl "$url" "$url2")
    : >"$out"
    : >"$err"
    fail_case "drain metrics" "drain_redirected_total ${got:-?}"
fi

# Without an alternate server a draining relay answers 508.
post_drain "$METRICS_PORT2"
run_tool --user "$lt_user" --password "$lt_pass" "turn:127.0.0.1:$PORT2"
if [ "$rc" -eq 3 ] && grep -Eq '^error 508( |$)' "$err"; then
    passes=$((passes + 1))
    results+=("ok   drain mode without alternate -> 508")
else
    fail_case "drain mode without alternate -> 508" "exit $rc"
fi

# A key that does not match the certificate: a clear error at start-up and
# exit 1 (the TLS context is made once, before any listener opens).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/other-key.pem" \
    2>"$work/openssl.err" || { cat "$work/openssl.err"; exit 1; }
cmd=("$relay" "${common[@]}" --tls-key "$work/other-key.pem" --port "$PORT2" --metrics-listen off)
rc=0
timeout -k 2 10 "${cmd[@]}" >"$out" 2>"$err" </dev/null || rc=$?
if [ "$rc" -eq 1 ] && grep -q 'msg="cannot use the TLS certificate or key"' "$err"; then
    passes=$((passes + 1))
    results+=("ok   mismatched TLS key -> start-up error, exit 1")
else
    fail_case "mismatched TLS key -> start-up error" "exit $rc"
fi

relay_stop RELAY
relay_stop RELAY2
if [ "$RELAY_RC" -eq 0 ] && grep -q 'msg="stopped"' "$RELAY_LOG" &&
    [ "$RELAY2_RC" -eq 0 ] && grep -q 'msg="stopped"' "$RELAY2_LOG"; then
    passes=$((passes + 1))
    results+=("ok   SIGTERM -> exit 0")
else
    cmd=(kill -TERM)
    : >"$out"
    : >"$err"
    fail_case "SIGTERM -> exit 0" "exit $RELAY_RC and $RELAY2_RC"
fi

echo "# results"
printf '#   %s\n' "${results[@]}"
if [ "${#failures[@]}" -gt 0 ]; then
    echo "FAIL: ${#failures[@]} of $((passes + ${#failures[@]})) cases failed"
    exit 1
fi
echo "ok: $passes cases"
