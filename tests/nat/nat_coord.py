#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Direct channels through real NATs (TAP), issue 7: sluice-coord and
sluice-relay on the namespace internet (netns.py), two clients behind NAT
routers that know only the coordinator's address, its certificate
fingerprint and each other's name. Each runs tests/nat/ice_peer in
coordinator mode: SluiceCoordClient + SluiceCoordIce + SluiceAgent. The
coordinator hands out TURN REST credentials for the relay (shared secret).

    nat_coord.py ICE_PEER SLUICE_RELAY SLUICE_COORD

Cases: port-restricted cone NATs on both sides connect directly (hole
punching); symmetric NATs on both sides connect through sluice-relay with
the coordinator's credentials. Each checks the peer fingerprint the
coordinator vouched for and datagrams both ways. The same two again with
--dtls: the datagrams travel in a SluiceDirectChannel (DTLS, each side
pinning the fingerprint the coordinator gave; alice, controlling, is the
DTLS client), with round trips measured. And one negative case: bob pins a
fingerprint with one byte changed, so the handshake must fail with a
fingerprint error and no datagram may get through.
"""
import os
import re
import secrets
import selectors
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402
from nat_ice import (Daemon, Lines, delivery_problems, first, start_relay,  # noqa: E402
                     tap_report, tap_skip_all)

TIMEOUT_S = 30
COORD_PORT = 7878


def run_clients(topo, peer_bin, pin, state, extra):
    uri = f"{netns.SERVER_IP}:{COORD_PORT}"
    procs = {}
    env = dict(os.environ)
    for side, name, peer in (("a", "alice", "bob"), ("b", "bob", "alice")):
        env["XDG_STATE_HOME"] = os.path.join(state, side)
        procs[side] = subprocess.Popen(
            topo.exec_prefix(side) + [peer_bin, "--coordinator", uri, "--name", name, "--peer",
                                      peer, "--pin", pin, "--timeout-s", str(TIMEOUT_S)] +
            list(extra.get(side, ())),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lines = {"a": [], "b": []}
    done = {"a": False, "b": False}
    sel = selectors.DefaultSelector()
    for side, p in procs.items():
        sel.register(Lines(p.stdout), selectors.EVENT_READ, side)
    deadline = time.monotonic() + TIMEOUT_S + 5
    open_streams = 2
    try:
        while open_streams and time.monotonic() < deadline and not all(done.values()):
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                for line in key.fileobj.read():
                    lines[key.data].append(line)
                    if line.startswith(("received ", "error ")):
                        done[key.data] = True
                if key.fileobj.eof:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
    finally:
        sel.close()
        for side, p in procs.items():
            try:
                p.stdin.write(b"quit\n")
                p.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
        for side, p in procs.items():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            err = p.stderr.read().decode(errors="replace").strip()
            if err:
                lines[side] += ["stderr: " + e for e in err.splitlines()[-5:]]
            p.stdout.close()
            p.stderr.close()
    return lines


def identity_fingerprint(state, side, name):
    """SHA-256 of the identity the client generated (to compare with what
    the coordinator told the other side)."""
    cert = os.path.join(state, side, "sluice", name + ".crt")
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return out.strip().split("=", 1)[1].upper()


DTLS = {"a": ("--dtls",), "b": ("--dtls",)}
BAD_PIN = {"a": ("--dtls",), "b": ("--dtls", "--bad-peer-fingerprint")}

# name, NAT a, NAT b, expected pair, extra ice_peer arguments per side,
# whether the datagrams must get through.
CASES = [
    ("cone_cone_direct_via_coordinator", netns.CONE, netns.CONE, "direct", {}, True),
    ("symmetric_symmetric_relayed_via_coordinator", netns.SYMMETRIC, netns.SYMMETRIC, "relay",
     {}, True),
    ("cone_cone_direct_dtls", netns.CONE, netns.CONE, "direct", DTLS, True),
    ("symmetric_symmetric_relayed_dtls", netns.SYMMETRIC, netns.SYMMETRIC, "relay", DTLS, True),
    ("cone_cone_dtls_wrong_pin_fails", netns.CONE, netns.CONE, "direct", BAD_PIN, False),
]


def check_dtls(lines, problems):
    """Both sides established DTLS and say how long it took; alice (the
    DTLS client) measured round trips."""
    for side in ("a", "b"):
        est = first(lines[side], "dtls established ")
        if not est:
            problems.append(f"{side}: DTLS not established")
    if not first(lines["a"], "dtls rtt "):
        problems.append("a: no round trips measured over DTLS")


def check_wrong_pin(lines, problems):
    """Both sides fail the handshake, bob (with the wrong pin) because of
    the fingerprint, alice because bob rejected her certificate; nothing
    gets through."""
    for side in ("a", "b"):
        if first(lines[side], "dtls established"):
            problems.append(f"{side}: DTLS established with a wrong pin")
        if first(lines[side], "received "):
            problems.append(f"{side}: datagrams got through with a wrong pin")
        if not first(lines[side], "error dtls: "):
            problems.append(f"{side}: no DTLS error")
    err = first(lines["b"], "error dtls: ") or ""
    if "fingerprint" not in err:
        problems.append(f"b: not a fingerprint error: {err!r}")


def main():
    if len(sys.argv) != 4:
        print("usage: nat_coord.py ICE_PEER SLUICE_RELAY SLUICE_COORD", file=sys.stderr)
        return 2
    peer_bin, relay_bin, coord_bin = (os.path.abspath(a) for a in sys.argv[1:])
    why = netns.unavailable()
    if why:
        tap_skip_all(why)
    print(f"1..{len(CASES)}")
    failures = 0
    for i, (name, nat_a, nat_b, want, extra, deliver) in enumerate(CASES, 1):
        topo = relay = coord = None
        problems = []
        with tempfile.TemporaryDirectory() as state:
            try:
                topo = netns.Topology(nat_a, nat_b)
                secret = secrets.token_hex(16)
                relay = start_relay(topo, relay_bin, ("--auth-secret", secret))
                coord = Daemon(topo, [coord_bin, "--listen", netns.SERVER_IP, "--port",
                                      str(COORD_PORT), "--state-dir",
                                      os.path.join(state, "coord"), "--server-name",
                                      netns.SERVER_IP, "--turn-secret", secret, "--turn-uri",
                                      f"turn:{netns.SERVER_IP}:3478", "--metrics-listen", "off"],
                               "sluice-coord")
                m = re.search(r"fingerprint=([0-9A-Fa-f:]+)", coord.ready_line)
                if not m:
                    raise RuntimeError("no fingerprint in: " + coord.ready_line)
                lines = run_clients(topo, peer_bin, m.group(1), state, extra)
                for side in ("a", "b"):
                    for l in lines[side]:
                        if not l.startswith("cand "):
                            print(f"# {side}: {l}")
                    if not deliver:
                        continue
                    problems += delivery_problems(lines, side)
                if not deliver:
                    check_wrong_pin(lines, problems)
                elif extra:
                    check_dtls(lines, problems)
                # The coordinator vouched for the right certificates.
                for side, other, other_name in (("a", "b", "bob"), ("b", "a", "alice")):
                    got = first(lines[side], "coordinated ")
                    fp = got.split()[-1] if got else None
                    if fp != identity_fingerprint(state, other, other_name):
                        problems.append(f"{side}: peer fingerprint {fp} is not {other_name}'s")
                if not (first(lines["a"], "coordinated controlling") and
                        first(lines["b"], "coordinated controlled")):
                    problems.append("roles: alice (sorts first) should control")
                sel = first(lines["a"], "selected ")
                if sel:
                    ltype, rtype = sel.split()[1:3]
                    relayed = "relay" in (ltype, rtype)
                    if (want == "relay") != relayed:
                        problems.append(f"expected a {want} pair, got {ltype}/{rtype}")
                else:
                    problems.append("a selected no pair")
            except Exception as e:  # the case fails, the others still run
                problems.append(f"{type(e).__name__}: {e}")
            finally:
                for d in (coord, relay):
                    if d:
                        d.stop()
                if topo:
                    topo.close()
        failures += tap_report(i, name, problems)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
