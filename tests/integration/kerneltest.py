# SPDX-License-Identifier: BSD-3-Clause
"""A Jupyter kernel on a user's real server, started through the notebook
REST API and driven over its WebSocket (RFC 6455) through hubd's proxy, as a
browser tab would, but without one. Shared by the tests that need a kernel
to do something: be busy (builtin_culler), allocate memory or spin
(resource_limits)."""
import base64
import json
import os
import socket
import struct
import time
import uuid
from datetime import datetime, timezone

from hubtest import check
from wsframe import make_frame


def ws_connect(hub, path, token):
    """(socket, HTTP status line, bytes read past the handshake)."""
    sock = socket.create_connection(("127.0.0.1", hub.port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{hub.port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Authorization: token {token}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    return sock, status_line, head.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in head else b""


def execute_request(code, session):
    msg_id = uuid.uuid4().hex
    return msg_id, json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": session,
                   "msg_type": "execute_request", "version": "5.3",
                   "date": datetime.now(timezone.utc).isoformat()},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }).encode()


class Kernel:
    """One kernel of `user`'s server; `token` is a token of that user."""

    def __init__(self, hub, user, token):
        self.hub, self.user, self.token = hub, user, token
        self.session = uuid.uuid4().hex
        self.id = None
        self.sock = None
        self.buf = b""
        self.closed = False

    def open(self):
        c = self.hub.client()
        status, kernel, _ = c.json("POST", f"/user/{self.user}/api/kernels",
                                   headers={"Authorization": f"token {self.token}"}, json={})
        if not check(status == 201 and (kernel or {}).get("id"),
                     f"a kernel starts on {self.user}'s server ({status})"):
            return False
        self.id = kernel["id"]
        self.sock, status_line, self.buf = ws_connect(
            self.hub, f"/user/{self.user}/api/kernels/{self.id}/channels?session_id={self.session}", self.token)
        return check(" 101 " in status_line + " ",
                     f"{self.user}'s kernel WebSocket opens through the proxy ({status_line})")

    def send(self, code):
        """Sends an execute_request; returns its msg_id."""
        msg_id, payload = execute_request(code, self.session)
        self.sock.sendall(make_frame(0x1, payload, True))
        return msg_id

    def messages(self, seconds):
        """Yields the kernel's JSON messages until `seconds` pass or the WebSocket closes."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.closed:
            while len(self.buf) >= 2:
                n, at = self.buf[1] & 0x7F, 2
                if n == 126:
                    if len(self.buf) < 4:
                        break
                    n, at = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127:
                    if len(self.buf) < 10:
                        break
                    n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
                if len(self.buf) < at + n:
                    break
                opcode, payload = self.buf[0] & 0x0F, self.buf[at:at + n]
                self.buf = self.buf[at + n:]
                if opcode == 0x8:
                    self.closed = True
                    return
                if opcode == 0x1:
                    yield json.loads(payload)
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return
            if not chunk:
                self.closed = True
                return
            self.buf += chunk

    def run(self, code, seconds=60):
        """Executes `code`; returns a dict: text (its stdout), error (ename or
        None), done (an execute_reply came), restarted (the kernel died and
        the server restarted it, or the WebSocket closed, before a reply)."""
        msg_id = self.send(code)
        out = {"text": "", "error": None, "done": False, "restarted": False}
        idle = False  # iopub and shell are separate streams: all output is in once iopub says idle
        for msg in self.messages(seconds):
            kind, content = msg.get("msg_type"), msg.get("content", {})
            if kind == "status" and content.get("execution_state") in ("restarting", "dead"):
                out["restarted"] = True
                break
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if kind == "stream":
                out["text"] += content.get("text", "")
            elif kind == "error":
                out["error"] = content.get("ename")
            elif kind == "execute_reply":
                out["done"] = True
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
            if out["done"] and idle:
                break
        out["restarted"] = out["restarted"] or self.closed
        return out

    def close(self):
        """Closes the WebSocket, like a tab going away; the kernel keeps running."""
        if self.sock:
            try:
                self.sock.sendall(make_frame(0x8, struct.pack("!H", 1000), True))
            except OSError:
                pass
            self.sock.close()
            self.sock = None
