#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: two gst-launch-1.0 pipelines stream video to each other
# through sluice, finding each other by name at a coordinator.
#
#   ./scripts/demo.sh [--relay] [--seconds N]
#
# It starts sluice-relay (TURN, with a generated shared secret) and
# sluice-coord (the coordinator, with a generated certificate, handing out
# TURN credentials for that relay) on free loopback ports, then a sender
# (videotestsrc ! vp8enc ! rtpvp8pay ! icesink) and a receiver (icesrc !
# rtpvp8depay ! vp8dec ! a counting sink). The pipelines know only the
# coordinator's address, its certificate fingerprint and each other's
# name. It prints the selected candidate pair and the frames received, and
# stops everything after N seconds (default 5). --relay forces the relayed
# path (relay-only on both sides). Exit 0 when frames arrived.
# Idempotent: installs what is missing, rebuilds only what changed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
# shellcheck source=tests/interop/relay_lib.sh
. "$root/tests/interop/relay_lib.sh"
cd "$root"

relay_only=false
seconds=5
while [ $# -gt 0 ]; do
    case $1 in
    --relay) relay_only=true ;;
    --seconds) seconds=$2; shift ;;
    -h | --help) sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) sluice_die "unknown option $1 (try --help)" ;;
    esac
    shift
done
case $seconds in '' | *[!0-9]*) sluice_die "--seconds wants a number" ;; esac
[ "$seconds" -ge 2 ] && [ "$seconds" -le 600 ] || sluice_die "--seconds: 2..600"

# The test suite runs this demo on its own build (SLUICE_DEMO_BUILDDIR): no
# installing or building then.
build=${SLUICE_DEMO_BUILDDIR:-}
if [ -z "$build" ]; then
    build=build
    sluice_ensure_packages "${SLUICE_PACKAGES[@]}"
    sluice_setup_build "$build"
    sluice_build "$build" src/relay/sluice-relay src/coordd/sluice-coord gst/libgstsluice.so
fi
build=$(cd "$build" && pwd)

work=$(mktemp -d)
SEND_PID='' RECV_PID=''
cleanup() {
    sluice_kill_wait INT "$SEND_PID" "$RECV_PID"
    relay_stop COORD
    relay_cleanup "$work"
}
trap cleanup EXIT

relay_coord_start "$work" "$build/src/relay/sluice-relay" "$build/src/coordd/sluice-coord" ||
    sluice_die "the local relay and coordinator did not start"
rport=$RELAY_PORT cport=$COORD_PORT fp=$COORD_FP
sluice_log "sluice-relay (pid $RELAY_PID): TURN on 127.0.0.1:$rport, TURN REST secret generated"
sluice_log "sluice-coord (pid $COORD_PID) on 127.0.0.1:$cport, certificate $fp"

# The pipelines keep their generated identities in the work directory.
export XDG_STATE_HOME="$work/state" GST_PLUGIN_PATH="$build/gst"
common="coordinator=127.0.0.1:$cport coordinator-pin=$fp relay-only=$relay_only address=127.0.0.1"
send=(gst-launch-1.0 -q videotestsrc is-live=true pattern=ball
    '!' video/x-raw,width=320,height=240,framerate=30/1
    '!' vp8enc deadline=1 keyframe-max-dist=15 '!' rtpvp8pay pt=96
    '!' icesink $common client-name=sender peer=receiver)
recv=(gst-launch-1.0 -m -v icesrc $common client-name=receiver peer=sender
    '!' 'application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload=96'
    '!' rtpjitterbuffer latency=100 '!' rtpvp8depay '!' vp8dec
    '!' fpsdisplaysink video-sink=fakesink text-overlay=false sync=false
    signal-fps-measurements=true fps-update-interval=500)
sluice_log "receiver: ${recv[*]}"
"${recv[@]}" >"$work/recv.log" 2>&1 &
RECV_PID=$!
sluice_log "sender:   ${send[*]}"
"${send[@]}" >"$work/send.log" 2>&1 &
SEND_PID=$!

# Stream for the demo's duration; stop early if a pipeline ends (an error).
sleep "$seconds" &
timer=$!
wait -n "$timer" "$RECV_PID" "$SEND_PID" || true
kill "$timer" 2>/dev/null || true
kill -INT "$SEND_PID" "$RECV_PID" 2>/dev/null || true
wait "$SEND_PID" 2>/dev/null || true
wait "$RECV_PID" 2>/dev/null || true
SEND_PID='' RECV_PID=''

pair=$(grep -m1 -o 'sluice-selected-pair.*' "$work/recv.log" | sed 's/\\ / /g' || true)
frames=$(grep -o 'rendered: [0-9]*' "$work/recv.log" | tail -n 1 | grep -o '[0-9]*' || true)
if [ -n "$pair" ]; then
    local_c=$(printf '%s' "$pair" | sed -n 's/.*local=(string)"\{0,1\}\([^",;]*\).*/\1/p')
    remote_c=$(printf '%s' "$pair" | sed -n 's/.*remote=(string)"\{0,1\}\([^",;]*\).*/\1/p')
    sluice_log "selected pair (receiver): ${local_c:-?} <-> ${remote_c:-?}"
fi
if [ -z "$frames" ] || [ "$frames" -eq 0 ]; then
    sluice_log "no frames arrived; receiver log:"
    tail -n 30 "$work/recv.log" >&2
    sluice_log "sender log:"
    tail -n 30 "$work/send.log" >&2
    exit 1
fi
sluice_log "ok: $frames video frames received in ${seconds} s through sluice ($([ "$relay_only" = true ] && echo relayed by sluice-relay || echo direct ICE path))"
