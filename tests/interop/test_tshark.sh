#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop: every message kind the sluice writer and server helpers produce
# must dissect cleanly in Wireshark's STUN dissector (tshark): each frame is
# STUN, none is malformed, no expert info of severity error, no bad
# FINGERPRINT, and Wireshark finds exactly the attribute types and the
# (XOR-)addresses that were written.
# Usage: test_tshark.sh PATH/TO/stun_pcap   (exit 77: skipped)
set -euo pipefail

gen=${1:?usage: test_tshark.sh PATH/TO/stun_pcap}
if ! command -v tshark >/dev/null 2>&1; then
    echo "SKIP: tshark is not installed (apt-get install tshark)"
    exit 77
fi
py=/usr/bin/python3
[ -x "$py" ] || py=python3

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The generator prints "frame N LABEL TYPES ADDRESSES" per message, then
# "packets N".
rc=0
"$gen" "$work/stun.pcap" >"$work/frames.txt" || rc=$?
if [ "$rc" -ne 0 ]; then
    echo "FAIL: $gen exited $rc"
    cat "$work/frames.txt"
    exit 1
fi
echo "# $(tail -n 1 "$work/frames.txt") written by $(basename "$gen")"

rc=0
tshark -n -r "$work/stun.pcap" -T pdml >"$work/stun.pdml" 2>"$work/tshark.err" || rc=$?
if [ "$rc" -ne 0 ]; then
    echo "FAIL: tshark exited $rc"
    cat "$work/tshark.err"
    exit 1
fi

rc=0
"$py" - "$work/frames.txt" "$work/stun.pdml" >"$work/bad.txt" <<'PY' || rc=$?
import sys
import xml.etree.ElementTree as ET

want, want_n = {}, None
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "frame":
        want[int(f[1])] = {"label": f[2], "types": f[3], "addrs": f[4]}
    elif f[0] == "packets":
        want_n = int(f[1])

# tshark 4.0 (Debian 12): _ws.expert.severity 0x800000 is Error, 0x600000
# Warning; stun.att.crc32.status 0 is Bad.
SEV_ERROR, SEV_WARN = 0x800000, 0x600000

def fields(elem, name):
    return [e for e in elem.iter("field") if e.get("name") == name]

seen, warnings = set(), 0
for pkt in ET.parse(sys.argv[2]).getroot().iter("packet"):
    num = int(fields(pkt, "frame.number")[0].get("show"))
    seen.add(num)
    w = want.get(num, {"label": "?", "types": "?", "addrs": "?"})
    protos = [p.get("name") for p in pkt.iter("proto")]
    stun = next((p for p in pkt.iter("proto") if p.get("name") == "stun"), None)
    problems = []
    if stun is None:
        problems.append("not dissected as STUN (protocols: %s)" % ",".join(protos))
    if "_ws.malformed" in protos or fields(pkt, "_ws.malformed"):
        problems.append("malformed")
    for ex in fields(pkt, "_ws.expert"):
        sev = int(fields(ex, "_ws.expert.severity")[0].get("show"), 0)
        msg = ex.get("showname")
        if sev >= SEV_ERROR:
            problems.append(msg)
        elif sev >= SEV_WARN:
            warnings += 1
            print(f"# frame {num} {w['label']}: {msg}", file=sys.stderr)
    if any(e.get("show") == "0" for e in fields(pkt, "stun.att.crc32.status")):
        problems.append("bad FINGERPRINT")
    if stun is not None:
        types, addrs = [], []
        for a in fields(stun, "stun.attribute"):
            types.append(a.get("show"))
            ip = fields(a, "stun.att.ipv4") + fields(a, "stun.att.ipv6")
            port = fields(a, "stun.att.port")
            if ip and port:
                addrs.append(f"{ip[0].get('show')}:{port[0].get('show')}")
        got_types, got_addrs = ",".join(types) or "-", ",".join(addrs) or "-"
        if got_types != w["types"]:
            problems.append(f"attribute types {got_types}, written {w['types']}")
        if got_addrs != w["addrs"]:
            problems.append(f"addresses {got_addrs}, written {w['addrs']}")
    if problems:
        print(num, w["label"] + ": " + "; ".join(problems))
print(f"# {len(seen)} frames dissected, {warnings} expert warnings", file=sys.stderr)
if want_n is None or len(seen) != want_n or set(want) != seen:
    print(0, f"frame count: generator wrote {want_n}, tshark read {len(seen)}")
PY
if [ "$rc" -ne 0 ] || [ -s "$work/bad.txt" ]; then
    echo "FAIL: Wireshark's STUN dissector disagrees with the sluice writer:"
    sed 's/^/  frame /' "$work/bad.txt"
    while read -r num _; do
        [ "$num" -gt 0 ] 2>/dev/null || continue
        echo "--- tshark -V, frame $num:"
        tshark -n -r "$work/stun.pcap" -Y "frame.number == $num" -O stun 2>/dev/null || true
    done <"$work/bad.txt"
    exit 1
fi
echo "ok: $(grep -c '^frame ' "$work/frames.txt") STUN messages dissect cleanly"
