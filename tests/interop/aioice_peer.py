# SPDX-License-Identifier: MIT
# An aioice 0.8 ICE agent (an implementation nobody here wrote) on 127.0.0.1
# for ice_aioice.c, signalling by lines on stdin/stdout:
#   out: "cred UFRAG PWD", "cand candidate:...", "eoc" (after gathering),
#        "connected MS" (connect() returned, MS after the remote
#        credentials arrived), "selected LOCAL REMOTE",
#        "data HEX" (each datagram received), "error TEXT", "bye"
#   in:  "cred UFRAG PWD", "cand candidate:...", "eoc", "data HEX", "quit"
# connect() starts as soon as the remote credentials are there; until
# end-of-candidates it keeps checking trickled candidates as they arrive.
# As the controlling agent aioice nominates aggressively (USE-CANDIDATE on
# every check).
# Usage: aioice_peer.py controlling|controlled
import asyncio
import sys
import time

import aioice
from aioice import ice

# aioice leaves out 127.0.0.1 when it enumerates interfaces; this test is
# loopback only, so offer exactly that.
ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def receive(conn):
    while True:
        try:
            data = await conn.recv()
        except ConnectionError:
            return
        out("data " + data.hex())


async def connect(conn, t0):
    try:
        await asyncio.wait_for(conn.connect(), 15)
    except Exception as e:  # reported to the test, which fails the case
        out(f"error connect: {e!r}")
        return
    out("connected %.1f" % ((time.monotonic() - t0) * 1000))
    pair = conn._nominated.get(1)  # aioice 0.8 has no public accessor
    if pair is not None:
        out("selected %s:%d %s:%d" % (pair.local_addr + pair.remote_addr))
    asyncio.ensure_future(receive(conn))


async def main():
    controlling = sys.argv[1] == "controlling"
    conn = aioice.Connection(ice_controlling=controlling, components=1, use_ipv6=False)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    out(f"cred {conn.local_username} {conn.local_password}")
    await conn.gather_candidates()
    for c in conn.local_candidates:
        out("cand candidate:" + c.to_sdp())
    out("eoc")

    while True:
        line = await reader.readline()
        if not line:
            break
        word, _, rest = line.decode().strip().partition(" ")
        if word == "cred":
            conn.remote_username, conn.remote_password = rest.split()
            asyncio.ensure_future(connect(conn, time.monotonic()))
        elif word == "cand":
            sdp = rest[len("candidate:"):] if rest.startswith("candidate:") else rest
            await conn.add_remote_candidate(aioice.Candidate.from_sdp(sdp))
        elif word == "eoc":
            await conn.add_remote_candidate(None)
        elif word == "data":
            await conn.send(bytes.fromhex(rest))
        elif word == "quit":
            break
        else:
            out(f"error unknown command {word!r}")
    await conn.close()
    out("bye")


asyncio.run(main())
