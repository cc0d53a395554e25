# SPDX-License-Identifier: MIT
# A scripted STUN server on 127.0.0.1 for test_stun_client.sh: misbehaves in
# one chosen way so that sluice-stun's retransmission, matching and exit
# codes can be checked. Prints its UDP port, serves until stdin closes, then
# prints "requests N txids M" (datagrams received, distinct transaction IDs).
import selectors
import socket
import struct
import sys

COOKIE = 0x2112A442
MODES = ("silent", "error", "noaddr", "wrongtxid", "third")


def response(msg_type, txid, attrs=b""):
    return struct.pack("!HHI", msg_type, len(attrs), COOKIE) + txid + attrs


def xor_mapped_v4(addr):
    ip, port = addr
    raw = struct.unpack("!I", socket.inet_aton(ip))[0]
    value = struct.pack("!BBHI", 0, 1, port ^ (COOKIE >> 16), raw ^ COOKIE)
    return struct.pack("!HH", 0x0020, len(value)) + value


def error_code(code, reason):
    value = struct.pack("!HBB", 0, code // 100, code % 100) + reason
    value += b"\0" * (-len(value) % 4)
    return struct.pack("!HH", 0x0009, 4 + len(reason)) + value


def main():
    mode = sys.argv[1]
    if mode not in MODES:
        sys.exit(f"usage: stun_fake_server.py {'|'.join(MODES)}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)

    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sel.register(sys.stdin, selectors.EVENT_READ)
    requests, txids = 0, set()
    while True:
        for key, _ in sel.select():
            if key.fileobj is sys.stdin:
                if not sys.stdin.readline():
                    print(f"requests {requests} txids {len(txids)}", flush=True)
                    return
                continue
            data, peer = sock.recvfrom(2048)
            if len(data) < 20 or struct.unpack("!H", data[:2])[0] != 0x0001:
                continue  # only Binding requests count
            requests += 1
            txid = data[8:20]
            txids.add(txid)
            if mode == "error":
                sock.sendto(response(0x0111, txid, error_code(400, b"Bad Request")), peer)
            elif mode == "noaddr":
                sock.sendto(response(0x0101, txid), peer)
            elif mode == "wrongtxid":
                # An answer to someone else's transaction must be ignored.
                other = bytes(b ^ 0xFF for b in txid)
                sock.sendto(response(0x0101, other, xor_mapped_v4(("192.0.2.66", 9))), peer)
                sock.sendto(response(0x0101, txid, xor_mapped_v4(peer)), peer)
            elif mode == "third" and requests == 3:
                sock.sendto(response(0x0101, txid, xor_mapped_v4(peer)), peer)


main()
