#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""hubd as a reverse proxy: JupyterHub.services with a url are reachable under
/services/<name>/ through the real hubd binary (HTTP both ways, big bodies,
WebSocket echo, hub cookies stripped, X-Forwarded-* rebuilt, base_url, a
backend that is down). The backend is Python's http.server plus a minimal
WebSocket server; the WebSocket client is written here too. Root not needed.
"""
import base64
import hashlib
import http.client
import json
import os
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import hubtest
from wsframe import make_frame
from hubtest import check

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BIG = 20 * 1024 * 1024


class Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body, ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self._websocket()
        if self.path.endswith("/big"):
            # Chunked, in 1 MiB chunks: the proxy re-frames it.
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            block = b"b" * (1024 * 1024)
            for _ in range(BIG // len(block)):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.endswith("/redirect"):
            port = self.server.server_address[1]
            return self._send(302, b"", extra=[("Location", f"http://127.0.0.1:{port}/services/echo/landed")])
        seen = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
        self._send(200, json.dumps(seen).encode())

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        digest = hashlib.sha256()
        left = n
        while left:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
        self._send(200, json.dumps({"length": n - left, "sha256": digest.hexdigest()}).encode())

    def _websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            frame = read_frame(self.rfile)
            if frame is None:
                return
            opcode, payload = frame
            self.wfile.write(make_frame(opcode, payload, mask=False))
            self.wfile.flush()
            if opcode == 8:
                return


def read_frame(f):
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = f.read(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    head = exactly(2)
    if head is None:
        return None
    opcode, n, masked = head[0] & 0x0F, head[1] & 0x7F, head[1] & 0x80
    if n == 126:
        n = struct.unpack("!H", exactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exactly(8))[0]
    key = exactly(4) if masked else None
    payload = exactly(n) if n else b""
    if payload is None:
        return None
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return opcode, payload


class WebSocketClient:
    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.file = self.sock.makefile("rb")
        self.status_line = self.file.readline().decode()
        self.headers = {}
        while True:
            line = self.file.readline().decode()
            if line in ("\r\n", ""):
                break
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.accepted = self.status_line.startswith("HTTP/1.1 101") and \
            self.headers.get("sec-websocket-accept") == expected

    def send(self, opcode, payload):
        self.sock.sendall(make_frame(opcode, payload, mask=True))

    def receive(self):
        return read_frame(self.file)

    def close(self):
        self.file.close()
        self.sock.close()


def start_backend():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def config_for(port, dead_port):
    return f"""
c = get_config()
c.JupyterHub.authenticator_class = 'dummy'
c.JupyterHub.services = [
    {{'name': 'echo', 'url': 'http://127.0.0.1:{port}'}},
    {{'name': 'down', 'url': 'http://127.0.0.1:{dead_port}'}},
]
"""


HUB = None
PORT = None


def conn():
    return http.client.HTTPConnection("127.0.0.1", HUB.port, timeout=30)


def test_get_and_headers():
    c = conn()
    c.request("GET", "/services/echo/hello%20there?x=1", headers={
        "Cookie": "jupyterhub-hub-login=secret; jupyterhub-session-id=s; theme=dark",
        "Authorization": "token abc",
        "X-Forwarded-For": "6.6.6.6",
        "Connection": "keep-alive, X-Drop-Me",
        "X-Drop-Me": "1",
    })
    r = c.getresponse()
    body = r.read()
    if not check(r.status == 200, f"GET through the proxy -> 200 (got {r.status})"):
        return
    seen = json.loads(body)
    h = seen["headers"]
    check(seen["path"] == "/services/echo/hello%20there?x=1", "path and query reach the service as sent")
    check(h.get("host") == f"127.0.0.1:{HUB.port}", "Host is kept")
    check(h.get("cookie") == "theme=dark", f"hub cookies stripped, others kept ({h.get('cookie')!r})")
    check(h.get("authorization") == "token abc", "Authorization forwarded (documented policy)")
    check(h.get("x-forwarded-for") == "127.0.0.1", "spoofed X-Forwarded-For replaced by the peer address")
    check(h.get("x-forwarded-proto") == "http", "X-Forwarded-Proto set")
    check("x-drop-me" not in h, "a header named in Connection is hop-by-hop")
    c.close()


def test_keep_alive_alternating_hub_and_proxy():
    c = conn()
    results = []
    for path in ["/hub/api", "/services/echo/a", "/hub/api", "/services/echo/b"]:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        results.append(r.status)
    check(results == [200] * 4, f"one connection alternates hub and proxied requests ({results})")
    c.close()


def test_upload_and_download():
    data = os.urandom(8 * 1024 * 1024)
    c = conn()
    c.request("POST", "/services/echo/upload", body=data, headers={"Content-Type": "application/octet-stream"})
    r = c.getresponse()
    body = json.loads(r.read())
    check(r.status == 200 and body["length"] == len(data) and body["sha256"] == hashlib.sha256(data).hexdigest(),
          "an 8 MiB upload (above the hub's 1 MiB body limit) streams through intact")
    c.request("GET", "/services/echo/big")
    r = c.getresponse()
    total = 0
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        total += len(chunk)
    check(r.status == 200 and total == BIG, f"a 20 MiB chunked download arrives whole ({total} bytes)")
    c.close()


def test_location_rewrite():
    c = conn()
    c.request("GET", "/services/echo/redirect")
    r = c.getresponse()
    r.read()
    check(r.status == 302 and r.getheader("Location") == f"http://127.0.0.1:{HUB.port}/services/echo/landed",
          f"a Location absolute to the backend points at the hub ({r.getheader('Location')})")
    c.close()


def test_websocket_echo():
    ws = WebSocketClient(HUB.port, "/services/echo/api/kernels/k1/channels")
    if not check(ws.accepted, f"WebSocket upgrade through the proxy ({ws.status_line.strip()})"):
        return
    ok = True
    for size in (5, 200, 70000):
        payload = os.urandom(size)
        ws.send(2, payload)
        frame = ws.receive()
        ok = ok and frame == (2, payload)
    check(ok, "binary frames of 5 B, 200 B and 70 KB echo back")
    ws.send(1, "héllo".encode())
    check(ws.receive() == (1, "héllo".encode()), "a text frame echoes back")
    ws.send(8, struct.pack("!H", 1000))
    frame = ws.receive()
    check(frame is not None and frame[0] == 8, "close handshake completes")
    check(ws.file.read(1) == b"", "the connection closes after the close handshake")
    ws.close()


def test_backend_down():
    c = conn()
    c.request("GET", "/services/down/x", headers={"Accept": "application/json"})
    r = c.getresponse()
    body = r.read()
    check(r.status == 503 and b"not responding" in body, f"a service that is down -> 503 ({r.status})")
    c.request("GET", "/hub/api")
    r = c.getresponse()
    r.read()
    check(r.status == 200, "the connection stays usable after a 503")
    c.close()


def test_no_route_still_hub():
    c = conn()
    c.request("GET", "/services/nosuch/x")
    r = c.getresponse()
    r.read()
    check(r.status in (302, 404), f"a service without a url is not proxied ({r.status})")
    c.close()


def test_base_url(backend_port, dead_port):
    hub = hubtest.Hub(config=config_for(backend_port, dead_port), args=["--JupyterHub.base_url=/jh/"], start=False)
    try:
        hub.start(wait=False)
        deadline = time.monotonic() + 15
        status = None
        while time.monotonic() < deadline:
            try:
                status, _, _ = hubtest.Client(hub.url, timeout=2).get("/jh/hub/api")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        if not check(status == 200, "hubd with base_url=/jh/ starts"):
            return
        c = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=10)
        c.request("GET", "/jh/services/echo/x")
        r = c.getresponse()
        body = r.read()
        check(r.status == 200 and json.loads(body)["path"] == "/jh/services/echo/x",
              "base_url: /jh/services/echo/ is proxied with its full path")
        c.close()
    finally:
        hub.stop()


def run_all():
    global HUB, PORT
    hubtest.require_hubd()
    backend = start_backend()
    PORT = backend.server_address[1]
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens there
    try:
        with hubtest.Hub(config=config_for(PORT, dead_port)) as hub:
            HUB = hub
            hubtest.main([test_get_and_headers, test_keep_alive_alternating_hub_and_proxy, test_upload_and_download,
                          test_location_rewrite, test_websocket_echo, test_backend_down, test_no_route_still_hub,
                          ("test_base_url", lambda: test_base_url(PORT, dead_port))])
    finally:
        backend.shutdown()


if __name__ == "__main__":
    run_all()
