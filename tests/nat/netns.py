# SPDX-License-Identifier: MIT
"""Network namespaces with NAT routers for the tests in tests/nat (peers.md).

    inet      203.0.113.1/24 on a bridge: the servers (sluice-relay, and
              sluice-coord later) listen here; it is "the internet".
    ra, rb    NAT routers: WAN 203.0.113.10 / .20 on the bridge, LAN
              192.0.2.1/24 (A) and 198.51.100.1/24 (B); iptables MASQUERADE
              (Linux conntrack: endpoint-independent mapping when the port is
              free, address-and-port-dependent filtering: a port-restricted
              cone) or MASQUERADE --random-fully (a new random port per
              destination: symmetric).
    a, b      the clients: 192.0.2.10 behind ra, 198.51.100.10 behind rb.

Only documentation ranges (RFC 5737). Every namespace is named with the
creating process's PID and deleted by close(), also after a failure.
"""
import os
import shutil
import subprocess

CONE = "cone"
SYMMETRIC = "symmetric"
SERVER_IP = "203.0.113.1"


def run(*cmd, check=True):
    return subprocess.run(cmd, check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def unavailable():
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root (ip netns, iptables)"
    for tool in ("ip", "iptables"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    probe = f"slprobe{os.getpid()}"
    r = run("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return "cannot create a network namespace: " + r.stderr.strip()
    try:
        r = run("ip", "netns", "exec", probe, "iptables", "-t", "nat", "-L", check=False)
        if r.returncode != 0:
            return "iptables NAT unavailable in a namespace: " + r.stderr.strip()
    finally:
        run("ip", "netns", "del", probe, check=False)
    return None


class Topology:
    def __init__(self, nat_a, nat_b):
        tag = f"sl{os.getpid()}"
        self.ns = {n: f"{tag}{n}" for n in ("inet", "ra", "rb", "a", "b")}
        self.created = []
        self.links = []
        try:
            self._build(nat_a, nat_b)
        except BaseException:
            self.close()
            raise

    def exec_prefix(self, name):
        return ["ip", "netns", "exec", self.ns[name]]

    def sh(self, name, *cmd):
        return run(*self.exec_prefix(name), *cmd)

    def _build(self, nat_a, nat_b):
        for n in self.ns.values():
            run("ip", "netns", "add", n)
            self.created.append(n)
            run("ip", "-n", n, "link", "set", "lo", "up")
        inet = self.ns["inet"]
        run("ip", "-n", inet, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", inet, "addr", "add", SERVER_IP + "/24", "dev", "br0")
        run("ip", "-n", inet, "link", "set", "br0", "up")
        sides = (("a", "ra", "192.0.2", "203.0.113.10", nat_a),
                 ("b", "rb", "198.51.100", "203.0.113.20", nat_b))
        for client, router, lan, wan_ip, nat in sides:
            rns, cns = self.ns[router], self.ns[client]
            # router WAN <-> bridge port in inet
            run("ip", "link", "add", "w" + router, "netns", rns, "type", "veth",
                "peer", "name", "p" + router, "netns", inet)
            run("ip", "-n", inet, "link", "set", "p" + router, "master", "br0", "up")
            run("ip", "-n", rns, "addr", "add", wan_ip + "/24", "dev", "w" + router)
            run("ip", "-n", rns, "link", "set", "w" + router, "up")
            # router LAN <-> client
            run("ip", "link", "add", "l" + router, "netns", rns, "type", "veth",
                "peer", "name", "eth0", "netns", cns)
            run("ip", "-n", rns, "addr", "add", lan + ".1/24", "dev", "l" + router)
            run("ip", "-n", rns, "link", "set", "l" + router, "up")
            run("ip", "-n", cns, "addr", "add", lan + ".10/24", "dev", "eth0")
            run("ip", "-n", cns, "link", "set", "eth0", "up")
            run("ip", "-n", cns, "route", "add", "default", "via", lan + ".1")
            self.sh(router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            masq = ["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "w" + router,
                    "-j", "MASQUERADE"]
            if nat == SYMMETRIC:
                masq.append("--random-fully")
            self.sh(router, *masq)
            # Nothing unsolicited gets in (conntrack decides what is an
            # answer), and it is dropped silently like a home router does.
            # Without the INPUT drop, a peer's check that arrives before our
            # own opened the mapping is taken by the router itself: its
            # conntrack entry (peer -> our public port) is confirmed, and our
            # later check to that peer can no longer keep its source port,
            # so the cone NAT behaves like a symmetric one for that peer
            # (measured: cone/cone then needed the relay).
            self.sh(router, "iptables", "-A", "FORWARD", "-i", "w" + router, "-m",
                    "conntrack", "!", "--ctstate", "ESTABLISHED,RELATED", "-j", "DROP")
            self.sh(router, "iptables", "-A", "INPUT", "-i", "w" + router, "-j", "DROP")

    def close(self):
        for n in reversed(self.created):
            run("ip", "netns", "del", n, check=False)
        self.created = []
