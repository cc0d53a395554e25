#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Headless Chromium as the answering WebRTC peer of tests/gst/test_webrtcbin.c,
with the same stdin/stdout lines as aiortc_peer.py:

  in:  offer BASE64(SDP)
  out: answer BASE64(SDP)       (at once: candidates trickle after it)
  out: ice STATE                (the page's iceConnectionState)
  out: frames N                 (inbound-rtp framesDecoded)
  out: message TEXT             (a data-channel message; echoed back)
  out: candidate MLINE TEXT     (each candidate the browser trickles)

The page (served here on 127.0.0.1) and this script talk over HTTP: the page
polls for the offer, then posts its answer, candidates, states, stats and
messages. Run it in a
network namespace that has only loopback (test_webrtcbin's meson test does):
Chromium then has no other address, and its mDNS names for host candidates
cannot resolve. It exits when stdin closes, and stops Chromium."""
import base64
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

PAGE = """<!doctype html><html><body><video id=v autoplay muted playsinline></video><script>
async function post(path, body) {
  await fetch(path, {method: 'POST', body: JSON.stringify(body)});
}
(async () => {
  let offer = '';
  while (!offer) {
    try { const r = await fetch('/offer'); if (r.status === 200) offer = await r.text(); } catch (e) {}
    if (!offer) await new Promise((r) => setTimeout(r, 50));
  }
  const pc = new RTCPeerConnection({iceServers: []});
  pc.oniceconnectionstatechange = () => post('/state', {ice: pc.iceConnectionState});
  pc.ontrack = (e) => { document.getElementById('v').srcObject = new MediaStream([e.track]); };
  pc.ondatachannel = (e) => {
    e.channel.onmessage = (m) => { post('/message', {text: m.data}); e.channel.send('hello back: ' + m.data); };
  };
  pc.onicecandidate = (e) => { if (e.candidate && e.candidate.candidate) post('/candidate', {candidate: e.candidate.candidate, mline: e.candidate.sdpMLineIndex}); };
  await pc.setRemoteDescription({type: 'offer', sdp: offer});
  await pc.setLocalDescription(await pc.createAnswer());
  await post('/answer', {sdp: pc.localDescription.sdp});
  setInterval(async () => {
    let frames = 0;
    (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') frames = s.framesDecoded || 0; });
    post('/stats', {frames: frames});
  }, 100);
})().catch((e) => post('/error', {text: String(e)}));
</script></body></html>"""

DEBUG = bool(os.environ.get("SLUICE_CHROMIUM_DEBUG"))
lock = threading.Lock()
state = {"offer": None, "frames": -1}


def say(*words):
    with lock:
        print(*words, flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        if DEBUG:
            sys.stderr.write("chromium_peer: " + (fmt % args) + "\n")

    def reply(self, body=b"", ctype="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/":
            self.reply(PAGE.encode(), "text/html")
        elif self.path == "/offer":
            with lock:
                offer = state["offer"]
            if offer is None:
                self.send_response(204)  # not yet: the page asks again
                self.end_headers()
            else:
                self.reply(offer.encode())
        else:
            self.send_error(404)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        if self.path == "/answer":
            sdp = body["sdp"]
            for line in sdp.splitlines():
                if line.startswith("a=candidate:"):
                    say("candidate", "0", line[2:])
            say("answer", base64.b64encode(sdp.encode()).decode())
        elif self.path == "/candidate":
            say("candidate", body["mline"], body["candidate"])
        elif self.path == "/state":
            say("ice", body["ice"])
        elif self.path == "/stats":
            if body["frames"] != state["frames"]:
                state["frames"] = body["frames"]
                say("frames", body["frames"])
        elif self.path == "/message":
            say("message", body["text"])
        elif self.path == "/error":
            say("error", body["text"])
        self.reply()


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def main():
    browser = chromium()
    if not browser:
        say("error", "no chromium")
        return 1
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = tempfile.mkdtemp(prefix="sluice-chromium-")
    args = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--no-default-browser-check",
            "--user-data-dir=" + profile,
            # Chromium leaves loopback out of WebRTC unless told.
            "--allow-loopback-in-peer-connection",
            "--autoplay-policy=no-user-gesture-required",
            ] + os.environ.get("SLUICE_CHROMIUM_FLAGS", "").split() + [
            "http://127.0.0.1:%d/" % server.server_address[1]]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                            stderr=None if DEBUG else subprocess.DEVNULL)
    try:
        line = sys.stdin.readline().split()
        if len(line) != 2 or line[0] != "offer":
            say("error", "expected: offer BASE64")
            return 1
        with lock:
            state["offer"] = base64.b64decode(line[1]).decode()
        sys.stdin.read()  # until the test closes stdin
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
