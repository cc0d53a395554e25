#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""webrtcbin with sluice against webrtcbin with libnice: the time from the
answer being applied at the offerer to its connection-state "connected"
(ICE and DTLS), the offerer being webrtcbin with sluice or with libnice and
the answerer always webrtcbin with libnice (issue 8, docs/benchmarks.md).

Cases: loopback (127.0.0.1 only), both peers behind port-restricted cone
NATs with a STUN server, both behind symmetric NATs with a STUN and a TURN
server (tests/nat/netns.py namespaces, sluice-relay as the STUN/TURN server
on the namespace internet). The NAT cases need root; they are skipped
otherwise.

    bench_webrtcbin.py SLUICE-RELAY [RUNS]

coturn is not used as the server here: libnice's relayed calls through it
failed in these namespaces (CreatePermission answered 400 after a 438, and
coturn closing libnice's UDP allocation; docs/benchmarks.md).

The peers are tests/bench/webrtcbin_peer.py processes; GST_PLUGIN_PATH must
find the sluice plugin."""
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "nat"))
import nat_ice  # noqa: E402
import netns  # noqa: E402

PEER = os.path.join(HERE, "webrtcbin_peer.py")
TIMEOUT_S = 20
SERVER = netns.SERVER_IP + ":3478"


def call(topo, offerer, extra):
    """One call; the offerer's time to connected in ms, or None."""
    procs = {}
    for side, role, backend in (("a", "offer", offerer), ("b", "answer", "libnice")):
        prefix = topo.exec_prefix(side) if topo else []
        procs[side] = subprocess.Popen(
            prefix + ["/usr/bin/python3", PEER, "--role", role, "--backend", backend] + extra,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result = {}
    done = threading.Event()

    def pump(side, other):
        for line in procs[side].stdout:
            line = line.strip()
            if os.environ.get("BENCH_DEBUG"):
                print(f"#   {side}: {line[:150]}")
            if line.startswith(("sdp ", "cand ")):
                try:
                    procs[other].stdin.write(line + "\n")
                    procs[other].stdin.flush()
                except (BrokenPipeError, ValueError):
                    pass
            elif line.startswith("connected ") and side == "a":
                result["ms"] = float(line.split()[1])
                done.set()
            elif line.startswith("error "):
                result.setdefault("error", f"{side}: {line}")
                done.set()

    threads = [threading.Thread(target=pump, args=(s, o), daemon=True)
               for s, o in (("a", "b"), ("b", "a"))]
    for t in threads:
        t.start()
    done.wait(TIMEOUT_S)
    for p in procs.values():
        try:
            p.stdin.write("quit\n")
            p.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
    for p in procs.values():
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if "error" in result:
        print("#  ", result["error"])
    if os.environ.get("BENCH_DEBUG"):
        for side, p in procs.items():
            for line in p.stderr.read().splitlines()[-int(os.environ.get("BENCH_DEBUG_LINES", "8")):]:
                print(f"#   {side} stderr: {line[:200]}")
    return result.get("ms")


def main():
    relay_bin = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    stun = ["--stun", "stun://" + SERVER]
    turn = ["--turn", "turn://nat:natpass@" + SERVER]
    cases = [("loopback", None, None, ["--loopback"])]
    why = netns.unavailable()
    if why:
        print(f"# NAT cases skipped: {why}")
    else:
        cases += [("cone NATs, STUN", netns.CONE, netns.CONE, stun),
                  ("symmetric NATs, TURN", netns.SYMMETRIC, netns.SYMMETRIC, stun + turn)]
    print(f"# offerer webrtcbin with sluice or libnice, answerer webrtcbin with libnice; "
          f"ms from the answer to connection-state connected; {runs} runs")
    failures = 0
    for name, nat_a, nat_b, extra in cases:
        times = {"sluice": [], "libnice": []}
        topo = relay = None
        try:
            if nat_a:
                topo = netns.Topology(nat_a, nat_b)
                relay = nat_ice.start_relay(topo, relay_bin)
            for _ in range(runs):
                for offerer in ("sluice", "libnice"):
                    ms = call(topo, offerer, extra)
                    if ms is None:
                        failures += 1
                    else:
                        times[offerer].append(ms)
        finally:
            if relay:
                relay.stop()
            if topo:
                topo.close()
        row = []
        for offerer in ("sluice", "libnice"):
            t = times[offerer]
            row.append(f"{offerer} median {statistics.median(t):.1f} "
                       f"[{min(t):.1f}-{max(t):.1f}] n={len(t)}" if t else f"{offerer} -")
        ratio = ""
        if times["sluice"] and times["libnice"]:
            ratio = " ratio %.1fx" % (statistics.median(times["libnice"]) /
                                      statistics.median(times["sluice"]))
        print(f"{name}: " + "; ".join(row) + ratio)
        sys.stdout.flush()
    print(f"# {failures} calls did not connect within {TIMEOUT_S} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
