#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""ICE through real Linux NATs (TAP): two SluiceAgents (tests/nat/ice_peer)
in network namespaces behind iptables NAT routers, sluice-relay as the
STUN/TURN server on the namespace "internet" (netns.py has the topology).

    nat_ice.py ICE_PEER SLUICE_RELAY

Cases: both behind port-restricted cone NATs connect directly (server
reflexive / peer reflexive candidates, hole punching); both behind symmetric
NATs need the relay; the same symmetric pair with relay-only policy. Each
case checks the selected candidate types and datagrams both ways.
"""
import os
import selectors
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402

TIMEOUT_S = 30


class Lines:
    """Lines from a pipe without Python's read-ahead buffering, so that
    select() on the descriptor never hides a line already read."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""
        self.eof = False

    def fileno(self):
        return self.fd

    def read(self):
        """Complete lines available now (call when select says readable)."""
        chunk = os.read(self.fd, 65536)
        if not chunk:
            self.eof = True
            rest, self.buf = self.buf, b""
            return [rest.decode(errors="replace")] if rest else []
        self.buf += chunk
        *done, self.buf = self.buf.split(b"\n")
        return [d.decode(errors="replace") for d in done]


def delivery_problems(lines, side):
    """What went wrong on one side's datagram exchange (its printed lines)."""
    problems = []
    if not first(lines[side], "received "):
        problems.append(f"{side} did not receive the other's datagrams")
    err = first(lines[side], "error ")
    if err:
        problems.append(f"{side}: {err}")
    return problems


def tap_report(i, name, problems):
    """Print case i's TAP line; 1 when it failed."""
    if problems:
        print(f"not ok {i} - {name}: " + "; ".join(problems))
    else:
        print(f"ok {i} - {name}")
    sys.stdout.flush()
    return 1 if problems else 0


def tap_skip_all(reason):
    print(f"1..0 # SKIP {reason}")
    sys.exit(0)


class Daemon:
    """A daemon in the inet namespace, up once it logs msg="ready"
    (sluice-relay, sluice-coord)."""

    def __init__(self, topo, cmd, what):
        self.log = []
        self.ready_line = None
        self.proc = subprocess.Popen(topo.exec_prefix("inet") + cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out = Lines(self.proc.stdout)
        deadline = time.monotonic() + 10
        sel = selectors.DefaultSelector()
        sel.register(out, selectors.EVENT_READ)
        try:
            while time.monotonic() < deadline and not out.eof:
                if not sel.select(deadline - time.monotonic()):
                    break
                for line in out.read():
                    self.log.append(line)
                    if 'msg="ready"' in line:
                        self.ready_line = line
                        # Keep reading its output so it never blocks on a pipe.
                        self.drain = subprocess.Popen(["cat"], stdin=self.proc.stdout,
                                                      stdout=subprocess.DEVNULL)
                        return
        finally:
            sel.close()
        self.stop()
        raise RuntimeError(f"{what} did not start: " + " | ".join(self.log[-5:]))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        drain = getattr(self, "drain", None)
        if drain:
            drain.wait()
        self.proc.stdout.close()


def start_relay(topo, binary, auth=("--user", "nat:natpass")):
    return Daemon(topo, [binary, "--listen", netns.SERVER_IP, "--port", "3478", "--workers",
                         "1", *auth, "--realm", "nat.invalid", "--allow-peer",
                         "203.0.113.0/24", "--metrics-listen", "off"], "sluice-relay")


def run_pair(topo, peer_bin, extra):
    """Run one peer in a and one in b, carry their signalling lines, return
    the lines each printed."""
    uri = f"{netns.SERVER_IP}:3478"
    common = ["--stun", "stun:" + uri, "--turn", "turn:" + uri, "--user", "nat",
              "--pass", "natpass", "--timeout-s", str(TIMEOUT_S)] + extra
    procs = {}
    for name, ctl in (("a", ["--controlling"]), ("b", [])):
        procs[name] = subprocess.Popen(topo.exec_prefix(name) + [peer_bin] + ctl + common,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    lines = {"a": [], "b": []}
    done = {"a": False, "b": False}
    other = {"a": "b", "b": "a"}
    sel = selectors.DefaultSelector()
    for name, p in procs.items():
        sel.register(Lines(p.stdout), selectors.EVENT_READ, name)
    deadline = time.monotonic() + TIMEOUT_S + 5
    open_streams = 2
    try:
        while open_streams and time.monotonic() < deadline and not all(done.values()):
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                name = key.data
                for line in key.fileobj.read():
                    lines[name].append(line)
                    if line.startswith(("cred ", "cand ", "eoc")):
                        try:
                            procs[other[name]].stdin.write(line + "\n")
                            procs[other[name]].stdin.flush()
                        except BrokenPipeError:
                            pass
                    elif line.startswith("received ") or line.startswith("error "):
                        done[name] = True
                if key.fileobj.eof:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
    finally:
        sel.close()
        for p in procs.values():
            try:
                p.stdin.write("quit\n")
                p.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
        for name, p in procs.items():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            err = p.stderr.read()
            p.stdout.close()
            p.stderr.close()
            if err.strip():
                lines[name] += ["stderr: " + e for e in err.strip().splitlines()[-5:]]
    return lines


def first(lines, prefix):
    for l in lines:
        if l.startswith(prefix):
            return l
    return None


CASES = [
    # name, nat a, nat b, extra ice_peer args, acceptable selected (local, remote) types of a
    ("cone_cone_direct", netns.CONE, netns.CONE, [], "direct"),
    ("symmetric_symmetric_relayed", netns.SYMMETRIC, netns.SYMMETRIC, [], "relay"),
    ("symmetric_symmetric_relay_only", netns.SYMMETRIC, netns.SYMMETRIC, ["--relay-only"],
     "relay"),
]


def main():
    if len(sys.argv) != 3:
        print("usage: nat_ice.py ICE_PEER SLUICE_RELAY", file=sys.stderr)
        return 2
    peer_bin, relay_bin = (os.path.abspath(a) for a in sys.argv[1:])
    why = netns.unavailable()
    if why:
        tap_skip_all(why)
    print(f"1..{len(CASES)}")
    failures = 0
    for i, (name, nat_a, nat_b, extra, want) in enumerate(CASES, 1):
        topo = relay = None
        problems = []
        try:
            topo = netns.Topology(nat_a, nat_b)
            relay = start_relay(topo, relay_bin)
            lines = run_pair(topo, peer_bin, extra)
            for side in ("a", "b"):
                for l in lines[side]:
                    if not l.startswith("cand "):
                        print(f"# {side}: {l}")
                problems += delivery_problems(lines, side)
            sel = first(lines["a"], "selected ")
            if sel:
                ltype, rtype = sel.split()[1:3]
                relayed = "relay" in (ltype, rtype)
                if want == "relay" and not relayed:
                    problems.append(f"expected a relayed pair, got {ltype}/{rtype}")
                if want == "direct" and relayed:
                    problems.append(f"expected a direct pair, got {ltype}/{rtype}")
                if want == "direct" and ltype == "host" and rtype == "host":
                    problems.append("a host/host pair across two NATs: the NAT is not in the path")
            else:
                problems.append("a selected no pair")
        except Exception as e:  # the case fails, the others still run
            problems.append(f"{type(e).__name__}: {e}")
        finally:
            if relay:
                relay.stop()
            if topo:
                topo.close()
        failures += tap_report(i, name, problems)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
