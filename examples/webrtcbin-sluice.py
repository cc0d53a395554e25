#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Two webrtcbins in one process, over loopback: "alice" sends VP8 video and
opens a data channel; "bob" answers, counts the frames and echoes the
messages. Either side can use sluice or libnice as its ICE agent, which
shows the one change an application makes to use sluice (make_webrtcbin).

    GST_PLUGIN_PATH=build/gst examples/webrtcbin-sluice.py [--alice sluice|libnice]
        [--bob sluice|libnice] [--frames N] [--timeout S]

Exits 0 once bob has N frames and alice got an echo back, 1 otherwise. The
offer, the answer and the candidates go straight from one webrtcbin to the
other; a real application sends them through its signalling channel.
Needs python3-gi, python3-gst-1.0 and gir1.2-gst-plugins-bad-1.0."""
import argparse
import ctypes
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, GObject, Gst, GstWebRTC  # noqa: E402


def give_back_ref(obj):
    """webrtcbin 1.22 keeps libnice's agent floating: a binding that reads
    webrtcbin's ice-agent sinks it and so takes webrtcbin's only reference.
    Give webrtcbin one back (sluice's agent needs none of this: it holds a
    real reference once webrtcbin adopts it)."""
    gobject = ctypes.CDLL("libgobject-2.0.so.0")
    gobject.g_object_ref.argtypes = [ctypes.c_void_p]
    gobject.g_object_ref.restype = ctypes.c_void_p
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    pointer.restype = ctypes.c_void_p
    gobject.g_object_ref(pointer(obj.__gpointer__, None))


def make_webrtcbin(name, backend):
    """webrtcbin with sluice or libnice as its ICE agent."""
    if backend == "sluice":
        # The sluice plugin provides the type; this loads it by name. The
        # ICE agent is construct-only: pass it when webrtcbin is made.
        ice_type = Gst.DynamicTypeFactory.load("GstSluiceWebRTCICE")
        ice = GObject.new(ice_type, name=name + "-ice")
        webrtc = Gst.ElementFactory.make_with_properties("webrtcbin", ["name", "ice-agent"],
                                                         [name, ice])
    else:
        webrtc = Gst.ElementFactory.make("webrtcbin", name)
    webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
    # This example stays on loopback (both agents can take several).
    ice = webrtc.get_property("ice-agent")
    if backend != "sluice":
        give_back_ref(ice)
    ice.emit("add-local-ip-address", "127.0.0.1")
    return webrtc


class Call:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.pipe = Gst.Pipeline.new("call")
        self.alice = make_webrtcbin("alice", args.alice)
        self.bob = make_webrtcbin("bob", args.bob)
        self.frames = 0
        self.echoes = 0
        self.offered = False
        self.t_answer = None
        self.connected = {}
        self.channel = None
        self.ok = False
        self.pipe.add(self.alice)
        self.pipe.add(self.bob)
        sender = Gst.parse_bin_from_description(
            "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! "
            "vp8enc deadline=1 ! rtpvp8pay ! "
            "capsfilter caps=application/x-rtp,media=video,encoding-name=VP8,payload=96", True)
        self.pipe.add(sender)
        sender.link(self.alice)
        for w, other in ((self.alice, self.bob), (self.bob, self.alice)):
            w.connect("on-ice-candidate", self.on_candidate, other)
            w.connect("notify::ice-connection-state", self.on_ice_state)
        self.alice.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.bob.connect("pad-added", self.on_pad_added)
        self.bob.connect("on-data-channel", self.on_data_channel)

    def on_candidate(self, webrtc, mline, candidate, other):
        other.emit("add-ice-candidate", mline, candidate)

    def on_ice_state(self, webrtc, pspec):
        state = webrtc.get_property("ice-connection-state")
        name = webrtc.get_name()
        if state in (GstWebRTC.WebRTCICEConnectionState.CONNECTED,
                     GstWebRTC.WebRTCICEConnectionState.COMPLETED) and name not in self.connected:
            self.connected[name] = (time.monotonic() - self.t_answer) * 1000
            print("%s: ICE connected %.1f ms after the answer" % (name, self.connected[name]))

    # Offer/answer. Offers fail until the payloader's caps reach webrtcbin.
    def on_negotiation_needed(self, webrtc):
        if not self.offered:
            self.offered = True
            GLib.idle_add(self.create_offer)

    def create_offer(self):
        self.alice.emit("create-offer", None, Gst.Promise.new_with_change_func(self.on_offer))
        return GLib.SOURCE_REMOVE

    def on_offer(self, promise):
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply and reply.has_field("offer") else None
        if offer is None:
            GLib.timeout_add(50, self.create_offer)
            return
        self.alice.emit("set-local-description", offer, None)
        self.bob.emit("set-remote-description", offer, None)
        self.bob.emit("create-answer", None, Gst.Promise.new_with_change_func(self.on_answer))

    def on_answer(self, promise):
        reply = promise.get_reply()
        answer = reply.get_value("answer") if reply and reply.has_field("answer") else None
        if answer is None:
            print("no answer:", reply.to_string() if reply else None)
            self.loop.quit()
            return
        self.bob.emit("set-local-description", answer, None)
        self.t_answer = time.monotonic()
        self.alice.emit("set-remote-description", answer, None)

    # Media and data.
    def on_pad_added(self, webrtc, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        sink = Gst.parse_bin_from_description(
            "rtpvp8depay ! fakesink name=count signal-handoffs=true sync=false", True)
        sink.get_by_name("count").connect("handoff", self.on_frame)
        self.pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    def on_frame(self, sink, buf, pad):
        self.frames += 1

    def on_data_channel(self, webrtc, channel):
        channel.connect("on-message-string", lambda ch, text: ch.send_string("echo: " + text))

    def on_echo(self, channel, text):
        self.echoes += 1

    def tick(self):
        if self.channel.get_property("ready-state") == GstWebRTC.WebRTCDataChannelState.OPEN \
                and self.echoes == 0:
            self.channel.send_string("hello")
        if self.frames >= self.args.frames and self.echoes > 0:
            self.ok = True
            self.loop.quit()
        return GLib.SOURCE_CONTINUE

    def run(self):
        self.pipe.set_state(Gst.State.PLAYING)
        self.channel = self.alice.emit("create-data-channel", "chat", None)
        self.channel.connect("on-message-string", self.on_echo)
        GLib.timeout_add(50, self.tick)
        GLib.timeout_add_seconds(self.args.timeout, self.loop.quit)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        print("alice (%s) -> bob (%s): %d frames, %d echoes" %
              (self.args.alice, self.args.bob, self.frames, self.echoes))
        return self.ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alice", choices=("sluice", "libnice"), default="sluice")
    parser.add_argument("--bob", choices=("sluice", "libnice"), default="libnice")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--timeout", type=int, default=20)
    args = parser.parse_args()
    Gst.init(None)
    call = Call(args)
    ok = call.run()
    del call
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
