#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""aiortc (python3-aiortc) as the answering WebRTC peer of
tests/gst/test_webrtcbin.c, driven over stdin/stdout, one line each way:

  in:  offer BASE64(SDP)        (complete: aiortc 1.4 does not trickle)
  out: answer BASE64(SDP)
  out: ice STATE                (aiortc's ICE connection state)
  out: frames N                 (video frames decoded so far)
  out: message TEXT             (a data-channel message; echoed back as
                                 "hello back: TEXT")

It exits when stdin closes. Loopback only: aioice gathers on 127.0.0.1 (it
leaves loopback out by itself) and no STUN server is configured."""
import asyncio
import base64
import sys

import aioice.ice

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402


def say(*words):
    print(*words, flush=True)


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    frames = 0

    @pc.on("track")
    def on_track(track):
        async def consume():
            nonlocal frames
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                frames += 1
                say("frames", frames)

        asyncio.ensure_future(consume())

    @pc.on("datachannel")
    def on_datachannel(channel):
        @channel.on("message")
        def on_message(message):
            say("message", message)
            channel.send("hello back: " + str(message))

    @pc.on("iceconnectionstatechange")
    def on_ice():
        say("ice", pc.iceConnectionState)

    line = (await reader.readline()).decode().split()
    if len(line) != 2 or line[0] != "offer":
        say("error", "expected: offer BASE64")
        return 1
    offer = RTCSessionDescription(base64.b64decode(line[1]).decode(), "offer")
    await pc.setRemoteDescription(offer)
    await pc.setLocalDescription(await pc.createAnswer())
    say("answer", base64.b64encode(pc.localDescription.sdp.encode()).decode())
    await reader.read()  # until the test closes stdin
    await pc.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
