# SPDX-License-Identifier: MIT
# aioice's TURN client (an implementation nobody here wrote) allocates on
# sluice-relay, sends datagrams to a UDP echo peer through the relay (aioice
# binds a channel) and waits for each echo. Prints one line; exit 0 on success.
# Usage: relay_aioice.py HOST PORT USER PASSWORD PEER_HOST PEER_PORT udp|tcp
import asyncio
import sys

from aioice import turn


class Echo(asyncio.DatagramProtocol):
    def __init__(self):
        self.queue = asyncio.Queue()

    def datagram_received(self, data, addr):
        self.queue.put_nowait((data, addr))


async def main():
    host, port, user, password, peer_host, peer_port, transport = sys.argv[1:8]
    peer = (peer_host, int(peer_port))
    tr, proto = await asyncio.wait_for(
        turn.create_turn_endpoint(Echo, (host, int(port)), user, password,
                                  transport=transport), 10)
    relayed = tr.get_extra_info("sockname")
    try:
        for i in range(5):
            payload = b"sluice-aioice-%d" % i
            tr.sendto(payload, peer)
            data, addr = await asyncio.wait_for(proto.queue.get(), 5)
            if data != payload or addr[1] != peer[1]:
                sys.exit(f"FAIL: echo {data!r} from {addr}, expected {payload!r}")
    finally:
        tr.close()
        await asyncio.sleep(0)  # let the Refresh(lifetime 0) leave
    print(f"ok {transport}: relayed-address {relayed[0]}:{relayed[1]}, 5/5 echoes")


asyncio.run(main())
