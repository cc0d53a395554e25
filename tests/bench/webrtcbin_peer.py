#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""One webrtcbin peer for tests/bench/bench_webrtcbin.py, signalling over
stdin/stdout, one line each:

  out/in: sdp BASE64            the offer (offerer) or the answer (answerer)
  out/in: cand MLINE CANDIDATE  a trickled candidate
  out:    connected MS          connection-state connected, MS after the
                                offerer applied the answer (offerer only)
  out:    error TEXT
  in:     quit

The offerer opens a data channel (no media: the benchmark times the
connection). --backend picks the ICE agent: sluice (GstSluiceWebRTCICE) or
libnice (webrtcbin's default)."""
import argparse
import base64
import ctypes
import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, GObject, Gst, GstSdp, GstWebRTC  # noqa: E402


def say(*words):
    print(*words, flush=True)


def give_back_ref(obj):
    # webrtcbin 1.22 keeps libnice's agent floating: reading it from Python
    # takes webrtcbin's reference (docs/webrtcbin.md).
    gobject = ctypes.CDLL("libgobject-2.0.so.0")
    gobject.g_object_ref.argtypes = [ctypes.c_void_p]
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    pointer.restype = ctypes.c_void_p
    gobject.g_object_ref(pointer(obj.__gpointer__, None))


class Peer:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.pipe = Gst.Pipeline.new()
        if args.backend == "sluice":
            ice = GObject.new(Gst.DynamicTypeFactory.load("GstSluiceWebRTCICE"), name="ice")
            self.webrtc = Gst.ElementFactory.make_with_properties("webrtcbin", ["ice-agent"],
                                                                  [ice])
        else:
            self.webrtc = Gst.ElementFactory.make("webrtcbin")
        w = self.webrtc
        w.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        if args.stun:
            w.set_property("stun-server", args.stun)
        if args.turn:
            w.set_property("turn-server", args.turn)
        if args.loopback:
            ice = w.get_property("ice-agent")
            if args.backend != "sluice":
                give_back_ref(ice)
            ice.emit("add-local-ip-address", "127.0.0.1")
        self.pipe.add(w)
        self.t_answer = None
        self.pending = b""
        self.reported = False
        w.connect("on-ice-candidate", lambda _w, m, c: say("cand", m, c))
        w.connect("notify::connection-state", self.on_state)
        if args.role == "offer":
            w.connect("on-negotiation-needed", lambda _w: GLib.idle_add(self.offer))
        GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP, self.on_stdin)

    def on_state(self, w, pspec):
        st = w.get_property("connection-state")
        if st == GstWebRTC.WebRTCPeerConnectionState.CONNECTED and not self.reported:
            self.reported = True
            if self.t_answer is not None:
                say("connected", "%.1f" % ((time.monotonic() - self.t_answer) * 1000))
        elif st == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            say("error", "connection failed")

    def offer(self):
        if not getattr(self, "offered", False):
            self.offered = True
            self.webrtc.emit("create-offer", None,
                             Gst.Promise.new_with_change_func(self.on_offer))
        return GLib.SOURCE_REMOVE

    def on_offer(self, promise):
        reply = promise.get_reply()
        d = reply.get_value("offer") if reply and reply.has_field("offer") else None
        if d is None:
            say("error", "no offer")
            return
        self.webrtc.emit("set-local-description", d, None)
        say("sdp", base64.b64encode(d.sdp.as_text().encode()).decode())

    def on_answer(self, promise):
        reply = promise.get_reply()
        d = reply.get_value("answer") if reply and reply.has_field("answer") else None
        if d is None:
            say("error", "no answer")
            return
        self.webrtc.emit("set-local-description", d, None)
        say("sdp", base64.b64encode(d.sdp.as_text().encode()).decode())

    def on_stdin(self, fd, cond):
        # Read what is there and handle every complete line: a buffered
        # sys.stdin.readline() would leave the lines that came in the same
        # read (the offer and its first candidates) in Python's buffer, where
        # no further IO_IN wakes them up.
        data = os.read(fd, 65536)
        if not data:
            self.loop.quit()
            return GLib.SOURCE_REMOVE
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            if not self.on_line(line.decode().strip()):
                self.loop.quit()
                return GLib.SOURCE_REMOVE
        return GLib.SOURCE_CONTINUE

    def on_line(self, line):
        if line == "quit":
            return False
        kind, _, rest = line.partition(" ")
        if kind == "sdp":
            _, msg = GstSdp.SDPMessage.new_from_text(base64.b64decode(rest).decode())
            if self.args.role == "offer":
                d = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
                self.t_answer = time.monotonic()
                self.webrtc.emit("set-remote-description", d, None)
            else:
                d = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, msg)
                self.webrtc.emit("set-remote-description", d, None)
                self.webrtc.emit("create-answer", None,
                                 Gst.Promise.new_with_change_func(self.on_answer))
        elif kind == "cand":
            mline, _, cand = rest.partition(" ")
            self.webrtc.emit("add-ice-candidate", int(mline), cand)
        return True

    def run(self):
        self.pipe.set_state(Gst.State.PLAYING)
        if self.args.role == "offer":
            self.channel = self.webrtc.emit("create-data-channel", "bench", None)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=("offer", "answer"), required=True)
    p.add_argument("--backend", choices=("sluice", "libnice"), required=True)
    p.add_argument("--stun")
    p.add_argument("--turn")
    p.add_argument("--loopback", action="store_true")
    args = p.parse_args()
    Gst.init(None)
    Peer(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
