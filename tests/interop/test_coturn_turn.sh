#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: sluice-turn against coturn's turnserver on loopback. Two servers
# (long-term user; TURN REST shared secret), each on UDP, TCP and TLS over
# 127.0.0.1 and ::1 with relays on both, and turnutils_peer as the UDP echo
# peer. Runs the matrix transport x family x credential x channel/permission,
# a dual allocation, a wrong password and a TLS server that fails
# verification, and checks every output line.
# Usage: test_coturn_turn.sh PATH/TO/sluice-turn   (exit 77: skipped)
set -euo pipefail

tool=${1:?usage: test_coturn_turn.sh PATH/TO/sluice-turn}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../../scripts/lib.sh"

sluice_require_programs "coturn openssl" turnserver turnutils_peer openssl
py=/usr/bin/python3
[ -x "$py" ] || py=python3

work=$(mktemp -d)
PEER_PID='' EOF_PID=''
cleanup() {
    local pid
    sluice_turnserver_stop LT
    sluice_turnserver_stop RS
    sluice_turnserver_stop ALT
    for pid in "$PEER_PID" "$EOF_PID"; do
        if [ -n "$pid" ]; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

sluice_ipv6_cases

# --- certificates: the server's (SAN IP:127.0.0.1, IP:::1, DNS:localhost) and
# an unrelated one for the verification failure case.
mkcert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=$1" -addext "subjectAltName=$2" \
        -keyout "$work/$1.key" -out "$work/$1.pem" 2>"$work/openssl.err" ||
        { cat "$work/openssl.err"; exit 1; }
}
mkcert sluice-test-server "IP:127.0.0.1,IP:::1,DNS:localhost"
mkcert sluice-test-other "IP:127.0.0.1,IP:::1,DNS:localhost"
cert=$work/sluice-test-server.pem
other_cert=$work/sluice-test-other.pem

realm=sluice.test
lt_user=alice
lt_pass='correct horse'
secret=sluice-shared-secret

# --- servers: LT (long-term user), RS (TURN REST shared secret), ALT (answers
# every Allocate with 300 ALTERNATE-SERVER pointing at LT). Ports: P and P+1
# (RFC 5780 alternate) for each listener, the peer's, a stream-closing fake.
ips=(127.0.0.1)
$have_v6 && ips+=(::1)

# start_server NAME PORT TLS_PORT MIN_RELAY MAX_RELAY [auth args...]
start_server() {
    local name=$1 port=$2 tls_port=$3 min=$4 max=$5 ip
    local -a ready=() args=()
    shift 5
    for ip in "${ips[@]}"; do
        args+=(--listening-ip "$ip" --relay-ip "$ip")
        ready+=("UDP listener opened on: $ip:$port"
            "TLS/TCP listener opened on : $ip:$port"
            "TLS/TCP listener opened on : $ip:$tls_port")
    done
    sluice_turnserver_spawn "$name" "$work" "${ready[@]}" -- \
        "${args[@]}" --listening-port "$port" --tls-listening-port "$tls_port" \
        --cert "$cert" --pkey "$work/sluice-test-server.key" --no-dtls \
        --min-port "$min" --max-port "$max" --allow-loopback-peers \
        --realm "$realm" --fingerprint "$@"
}

started=false
for attempt in 1 2 3; do
    mapfile -t ports < <(sluice_free_ports 9)
    [ "${#ports[@]}" -eq 9 ] || { echo "FAIL: no free ports"; exit 1; }
    LT_PORT=${ports[0]} LT_TLS=${ports[1]} RS_PORT=${ports[2]} RS_TLS=${ports[3]}
    ALT_PORT=${ports[4]} ALT_TLS=${ports[5]} PEER_PORT=${ports[6]} EOF_PORT=${ports[7]}
    NOBODY_PORT=${ports[8]} # stays unbound: nothing answers there
    if start_server LT "$LT_PORT" "$LT_TLS" 49152 57343 \
        --lt-cred-mech --user "$lt_user:$lt_pass" &&
        start_server RS "$RS_PORT" "$RS_TLS" 57344 65535 \
            --use-auth-secret --static-auth-secret "$secret" &&
        start_server ALT "$ALT_PORT" "$ALT_TLS" 49152 57343 \
            --lt-cred-mech --user "$lt_user:$lt_pass" \
            --alternate-server "127.0.0.1:$LT_PORT" --tls-alternate-server "127.0.0.1:$LT_TLS"; then
        started=true
        break
    fi
    echo "# turnservers did not come up (attempt $attempt); retrying on other ports"
    sluice_turnserver_stop LT
    sluice_turnserver_stop RS
    sluice_turnserver_stop ALT
done
if ! $started; then
    echo "FAIL: turnserver did not open its listeners; logs:"
    for n in LT RS ALT; do
        v=${n}_LOG
        sed "s/^/  $n| /" "${!v}" 2>/dev/null || true
    done
    exit 1
fi
echo "# long-term server pid $LT_PID: udp/tcp $LT_PORT, tls $LT_TLS"
echo "# shared-secret server pid $RS_PID: udp/tcp $RS_PORT, tls $RS_TLS"
echo "# redirecting server pid $ALT_PID: udp/tcp $ALT_PORT, tls $ALT_TLS"

# --- a TCP server that closes every connection it accepts (stream EOF case);
# it says "ready" through a fifo once listening.
mkfifo "$work/eof.fifo"
"$py" - "$EOF_PORT" >"$work/eof.fifo" 2>&1 </dev/null <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(4)
s.settimeout(1.0)
print("ready", flush=True)
end = time.monotonic() + 100
while time.monotonic() < end:  # bounded: dies on its own after 100 s
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.settimeout(1.0)
    try:
        c.recv(2048)  # the first request (or the TLS ClientHello), then EOF
    except OSError:
        pass
    c.close()
PY
EOF_PID=$!
exec {eof_fd}<"$work/eof.fifo"
IFS= read -r -t 10 -u "$eof_fd" line || true
[ "${line:-}" = ready ] || { echo "FAIL: the stream-closing server did not start"; exit 1; }

# --- the echo peer, on every loopback address; up once it echoes. (It
# binds PEER_PORT and PEER_PORT+1, both echoing.)
peer_args=()
for ip in "${ips[@]}"; do
    peer_args+=(-L "$ip")
done
turnutils_peer -p "$PEER_PORT" "${peer_args[@]}" >"$work/peer.log" 2>&1 </dev/null &
PEER_PID=$!
"$py" - "$PEER_PORT" "${ips[@]}" <<'PY' || { echo "FAIL: turnutils_peer does not echo"; cat "$work/peer.log"; exit 1; }
import socket, sys, time
port = int(sys.argv[1])
for ip in sys.argv[2:]:
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(0.1)
    for _ in range(50):  # at most 5 s
        s.sendto(b"ready?", (ip, port))
        try:
            if s.recv(64) == b"ready?":
                break
        except OSError:  # timeout, or refused before the peer binds
            time.sleep(0.1)
    else:
        sys.exit(f"no echo on {ip}:{port}")
PY
echo "# turnutils_peer pid $PEER_PID on port $PEER_PORT"

# TURN REST API credentials (coturn --use-auth-secret): username
# "EXPIRY:user", password base64(HMAC-SHA1(secret, username)).
rs_user="$(($(date +%s) + 3600)):bob"
rs_pass=$("$py" -c 'import base64, hashlib, hmac, sys
print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha1).digest()).decode())' \
    "$secret" "$rs_user")

# --- cases
failures=()
passes=0
results=()
case_out=$work/out.txt
case_err=$work/err.txt

# show_failure NAME LOGVAR WHY
show_failure() {
    local name=$1 log=$2 why=$3
    echo "FAIL: $name: $why"
    printf '  command:'
    printf ' %q' "${cmd[@]}"
    printf '\n'

    sed 's/^/  stdout| /' "$case_out"
    sed 's/^/  stderr| /' "$case_err"
    echo "  --- turnserver log (last 60 lines):"
    tail -n 60 "$log" | sed 's/^/  log| /'
    failures+=("$name")
    results+=("FAIL $name")
}

# run_tool TIMEOUT ARGS...: runs sluice-turn; sets rc. The timeout is only a
# backstop: the tool has its own 60 s limit.
run_tool() {
    local limit=$1
    shift
    cmd=("$tool" "$@")
    rc=0
    timeout -k 2 "$limit" "${cmd[@]}" >"$case_out" 2>"$case_err" </dev/null || rc=$?
}

# expect_ping NAME LOG RELAY_FAMILY(4|6|dual) COUNT MODE(channel|permission) ARGS...
expect_ping() {
    local name=$1 log=$2 fam=$3 count=$4 mode=$5 lines before v4 v6 n
    shift 5
    before=$(wc -l <"$log")
    run_tool 30 "$@"
    if [ "$rc" -ne 0 ]; then
        show_failure "$name" "$log" "exited $rc"
        return
    fi
    v4=$(grep -Ec '^relayed-address 127\.0\.0\.1:[0-9]+$' "$case_out" || true)
    v6=$(grep -Ec '^relayed-address \[::1\]:[0-9]+$' "$case_out" || true)
    n=$(grep -c '^relayed-address ' "$case_out" || true)
    case $fam in
    4) [ "$v4" -eq 1 ] && [ "$n" -eq 1 ] ;;
    6) [ "$v6" -eq 1 ] && [ "$n" -eq 1 ] ;;
    dual) [ "$v4" -eq 1 ] && [ "$v6" -eq 1 ] && [ "$n" -eq 2 ] ;;
    esac || { show_failure "$name" "$log" "expected IPv$fam relayed-address line(s)"; return; }
    grep -Eq '^mapped-address (127\.0\.0\.1|\[::1\]):[0-9]+$' "$case_out" ||
        { show_failure "$name" "$log" "no loopback mapped-address line"; return; }
    grep -Eq "^rtt-ms [0-9]+\.[0-9]{3}/[0-9]+\.[0-9]{3}/[0-9]+\.[0-9]{3} lost 0/$count\$" "$case_out" ||
        { show_failure "$name" "$log" "no 'rtt-ms MIN/AVG/MAX lost 0/$count' line"; return; }
    # coturn's log says which mechanism carried the data.
    lines=$(tail -n "+$((before + 1))" "$log")
    if [ "$mode" = channel ]; then
        grep -q 'CHANNEL_BIND processed, success' <<<"$lines" ||
            { show_failure "$name" "$log" "turnserver logged no successful ChannelBind"; return; }
    else
        grep -q 'CREATE_PERMISSION processed, success' <<<"$lines" ||
            { show_failure "$name" "$log" "turnserver logged no successful CreatePermission"; return; }
        ! grep -q 'CHANNEL_BIND' <<<"$lines" ||
            { show_failure "$name" "$log" "--no-channel but turnserver saw a ChannelBind"; return; }
    fi
    passes=$((passes + 1))
    results+=("ok   $name: $(grep '^rtt-ms' "$case_out")")
}

# expect_fail NAME LOG EXIT_CODE STDERR_REGEX ARGS...  (EXIT_CODE "nonzero": any)
expect_fail() {
    local name=$1 log=$2 want=$3 re=$4
    shift 4
    run_tool 30 "$@"
    if [ "$want" = nonzero ]; then
        [ "$rc" -ne 0 ] || { show_failure "$name" "$log" "succeeded; expected a failure"; return; }
    elif [ "$rc" -ne "$want" ]; then
        show_failure "$name" "$log" "exited $rc, expected $want"
        return
    fi
    grep -Eiq "$re" "$case_err" || { show_failure "$name" "$log" "stderr does not match /$re/"; return; }
    passes=$((passes + 1))
    results+=("ok   $name: exit $rc, $(grep -m1 '^error' "$case_err" || head -n1 "$case_err")")
}

count=5
ping_opts=(--count "$count" --interval-ms 50)
fams=(4)
$have_v6 && fams+=(6)
for cred in long-term shared-secret; do
    if [ "$cred" = long-term ]; then
        auth=(--user "$lt_user" --password "$lt_pass") port=$LT_PORT tls=$LT_TLS log=$LT_LOG
    else
        auth=(--user "$rs_user" --password "$rs_pass") port=$RS_PORT tls=$RS_TLS log=$RS_LOG
    fi
    for fam in "${fams[@]}"; do
        if [ "$fam" = 4 ]; then
            host=127.0.0.1 peer=127.0.0.1:$PEER_PORT
        else
            host='[::1]' peer="[::1]:$PEER_PORT"
        fi
        for transport in udp tcp tls; do
            if [ "$transport" = tls ]; then uri=turns:$host:$tls; else uri=turn:$host:$port; fi
            extra=()
            [ "$transport" = tls ] && extra=(--ca "$cert")
            for mode in channel permission; do
                flag=()
                [ "$mode" = permission ] && flag=(--no-channel)
                expect_ping "$transport/ipv$fam/$cred/$mode" "$log" "$fam" "$count" "$mode" \
                    --transport "$transport" --family "$fam" "${extra[@]}" "${auth[@]}" \
                    --ping "$peer" "${ping_opts[@]}" "${flag[@]}" "$uri"
            done
        done
    done
done

lt_auth=(--user "$lt_user" --password "$lt_pass")
if $have_v6; then
    # RFC 8656 §7.1 dual allocation: an IPv4 and an IPv6 relayed address.
    # coturn 4.6 reads ADDITIONAL-ADDRESS-FAMILY only under the pre-RFC code
    # point 0x8032, not RFC 8656's 0x8000: it ignores the request, grants
    # IPv4 alone and sends no ADDRESS-ERROR-CODE. That outcome passes as a
    # known coturn limitation when the tool warns about it; anything else
    # (an error, no IPv4 address, no warning) fails.
    for cred in long-term shared-secret; do
        if [ "$cred" = long-term ]; then
            auth=("${lt_auth[@]}") port=$LT_PORT log=$LT_LOG
        else
            auth=(--user "$rs_user" --password "$rs_pass") port=$RS_PORT log=$RS_LOG
        fi
        name="udp/dual/$cred/channel (peer IPv4)"
        run_tool 30 --family dual "${auth[@]}" --ping "127.0.0.1:$PEER_PORT" "${ping_opts[@]}" \
            "turn:127.0.0.1:$port"
        v4=$(grep -Ec '^relayed-address 127\.0\.0\.1:[0-9]+$' "$case_out" || true)
        v6=$(grep -Ec '^relayed-address \[::1\]:[0-9]+$' "$case_out" || true)
        if [ "$rc" -ne 0 ] || [ "$v4" -ne 1 ] ||
            ! grep -Eq "^rtt-ms [0-9.]+/[0-9.]+/[0-9.]+ lost 0/$count\$" "$case_out"; then
            show_failure "$name" "$log" "exit $rc, or no IPv4 relayed address, or probes lost"
        elif [ "$v6" -eq 1 ]; then
            passes=$((passes + 1))
            results+=("ok   $name: IPv4 and IPv6 relayed addresses")
        elif grep -q 'ignored ADDITIONAL-ADDRESS-FAMILY' "$case_err"; then
            passes=$((passes + 1))
            results+=("ok   $name: KNOWN coturn limitation: IPv4 only, ADDITIONAL-ADDRESS-FAMILY ignored")
        else
            show_failure "$name" "$log" "one relayed address and no warning about it"
        fi
    done
    # The relayed family does not follow the server address family (RFC 6156).
    expect_ping "tcp/ipv6 relay via IPv4 server/long-term/channel" "$LT_LOG" 6 "$count" channel \
        --family 6 "${lt_auth[@]}" --ping "[::1]:$PEER_PORT" "${ping_opts[@]}" \
        "turn:127.0.0.1:$LT_PORT?transport=tcp"
fi
# TLS: the name in the URI is what is verified (DNS:localhost in the SAN).
expect_ping "tls/ipv4/long-term/channel via turns:localhost" "$LT_LOG" 4 "$count" channel \
    --ca "$cert" "${lt_auth[@]}" --ping "127.0.0.1:$PEER_PORT" "${ping_opts[@]}" \
    "turns:localhost:$LT_TLS"
expect_ping "tls/ipv4/long-term/channel --insecure" "$LT_LOG" 4 "$count" channel \
    --insecure "${lt_auth[@]}" --ping "127.0.0.1:$PEER_PORT" "${ping_opts[@]}" \
    "turn:127.0.0.1:$LT_TLS" --transport tls

# ALTERNATE-SERVER (RFC 8489 §10): ALT redirects to LT; the channel and the
# echoes must then go through LT (over TCP/TLS on a new stream).
for transport in udp tcp tls; do
    if [ "$transport" = tls ]; then uri=turns:127.0.0.1:$ALT_TLS to=$LT_TLS extra=(--ca "$cert")
    else uri=turn:127.0.0.1:$ALT_PORT to=$LT_PORT extra=(); fi
    expect_ping "$transport/ipv4/long-term/channel redirected" "$LT_LOG" 4 "$count" channel \
        --transport "$transport" "${extra[@]}" "${lt_auth[@]}" --ping "127.0.0.1:$PEER_PORT" \
        "${ping_opts[@]}" "$uri"
    if [ "${results[-1]:0:2}" = ok ] && ! grep -q "^sluice-turn: redirected to 127.0.0.1:$to\$" "$case_err"; then
        unset 'results[-1]'
        passes=$((passes - 1))
        show_failure "$transport/ipv4/long-term/channel redirected" "$ALT_LOG" "no 'redirected to 127.0.0.1:$to' line"
    fi
done

# JSON output; over UDP with a channel every echo takes the zero-copy path.
run_tool 30 --json "${lt_auth[@]}" --ping "127.0.0.1:$PEER_PORT" "${ping_opts[@]}" \
    "turn:127.0.0.1:$LT_PORT"
if [ "$rc" -eq 0 ] && "$py" - "$case_out" "$count" >"$work/json.err" 2>&1 <<'PY'; then
import json, sys
with open(sys.argv[1]) as f:
    o = json.load(f)
n = int(sys.argv[2])
assert o["error"] is None and o["exit_code"] == 0, o
assert len(o["relayed_addresses"]) == 1 and o["relayed_addresses"][0].startswith("127.0.0.1:"), o
assert o["lifetime_s"] > 0, o
p = o["ping"]
assert p["sent"] == n and p["received"] == n and p["lost"] == 0, o
assert 0x4000 <= p["channel"] <= 0x4FFF, o
assert p["unwrapped"] == n and p["queued"] == 0, o
assert 0 <= p["rtt_ms"]["min"] <= p["rtt_ms"]["avg"] <= p["rtt_ms"]["max"], o
PY
    passes=$((passes + 1))
    results+=("ok   udp/ipv4/long-term/channel --json (zero-copy unwrap)")
else
    cat "$work/json.err" >>"$case_err" 2>/dev/null || true
    show_failure "udp/ipv4/long-term --json" "$LT_LOG" "exit $rc or unexpected JSON"
fi

run_tool 30 "${lt_auth[@]}" "turn:127.0.0.1:$LT_PORT?transport=tcp"
if [ "$rc" -eq 0 ] && grep -Eq '^relayed-address 127\.0\.0\.1:[0-9]+$' "$case_out" &&
    ! grep -q '^rtt-ms' "$case_out"; then
    passes=$((passes + 1))
    results+=("ok   tcp/ipv4/long-term allocate only")
else
    show_failure "tcp/ipv4/long-term allocate only" "$LT_LOG" "exit $rc or unexpected output"
fi

# Failures.
expect_fail "udp wrong password -> 401" "$LT_LOG" 3 '^error 401( |$)' \
    --user "$lt_user" --password wrong "turn:127.0.0.1:$LT_PORT"
expect_fail "tcp wrong password -> 401" "$LT_LOG" 3 '^error 401( |$)' \
    --user "$lt_user" --password wrong "turn:127.0.0.1:$LT_PORT?transport=tcp"
expect_fail "shared-secret wrong password -> 401" "$RS_LOG" 3 '^error 401( |$)' \
    --user "$rs_user" --password "$lt_pass" "turn:127.0.0.1:$RS_PORT"
expect_fail "tls --ca of another certificate -> verification error" "$LT_LOG" nonzero \
    'verif|certificate' --ca "$other_cert" "${lt_auth[@]}" "turns:127.0.0.1:$LT_TLS"
expect_fail "bad URI -> usage" "$LT_LOG" 1 'URI' "${lt_auth[@]}" "stun:127.0.0.1:$LT_PORT"
expect_fail "missing --user -> usage" "$LT_LOG" 1 'user' --password x "turn:127.0.0.1:$LT_PORT"
expect_fail "peer family differs from --family -> usage" "$LT_LOG" 1 'family' \
    "${lt_auth[@]}" --family 6 --ping "127.0.0.1:$PEER_PORT" "turn:127.0.0.1:$LT_PORT"
expect_fail "udp nothing listening -> timeout" "$LT_LOG" 2 '^error 0 ' \
    "${lt_auth[@]}" --rto-ms 50 "turn:127.0.0.1:$NOBODY_PORT"
expect_fail "tcp connection refused -> network error" "$LT_LOG" 4 'refused' \
    "${lt_auth[@]}" "turn:127.0.0.1:$NOBODY_PORT?transport=tcp"
expect_fail "tcp stream closed by the server -> network error" "$LT_LOG" 4 '^error 0 .*closed' \
    "${lt_auth[@]}" "turn:127.0.0.1:$EOF_PORT?transport=tcp"
expect_fail "tls stream closed by the server -> failure" "$LT_LOG" nonzero '^error 0 ' \
    "${lt_auth[@]}" --ca "$cert" "turns:127.0.0.1:$EOF_PORT"

echo "# results"
printf '#   %s\n' "${results[@]}"
if [ "${#failures[@]}" -gt 0 ]; then
    echo "FAIL: ${#failures[@]} of $((passes + ${#failures[@]})) cases failed"
    exit 1
fi
echo "ok: $passes cases"
