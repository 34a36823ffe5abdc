#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Hostile input gets a 4xx (or a timeout), and the hub keeps serving everyone else.

Acceptance: "a 10 kB username, control characters, malformed JSON, an
oversized body, unknown routes, a slowloris client - gets a 4xx (or a timeout
for the slow client) and the hub keeps serving everyone else."

Runs hubd with DummyAuthenticator and an admin service token, creates a user
and a token first, then throws oversized, malformed and slow input at it over
raw sockets (http.client would normalise much of it), checking after each
group that hubd still answers GET /hub/api. At the end the state from the
start must be intact, hubd's log must hold no forged lines and no raw control
characters, and hubd must have written nothing outside its working directory.

Limits under test (hubd/http/server.h Limits): request line 8 KiB -> 414,
head 32 KiB / 100 headers -> 431, body 1 MiB -> 413, head timeout 10 s ->
408 and close, body timeout 30 s.

Root is optional: as root hubd runs as a throw-away system user, which lets
the disk check find every file that user owns; without root that part skips.
"""
import json
import os
import random
import re
import secrets
import socket
import subprocess
import threading
import time
import urllib.parse

import hubtest
from hubtest import check

ADMIN_TOKEN = secrets.token_hex(32)
CONFIG = f"""
c = get_config()
c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = 'pw'
c.JupyterHub.services = [{{'name': 'svc', 'api_token': '{ADMIN_TOKEN}'}}]
c.JupyterHub.load_roles = [{{'name': 'admin', 'services': ['svc']}}]
"""
NEUTRAL = b"Invalid username or password"
KIB = 1024
MIB = 1024 * 1024
HEADER_TIMEOUT = 10.0  # Limits.headerTimeout
BODY_TIMEOUT = 30.0  # Limits.bodyTimeout

HUB = None
STATE = {}  # created at the start, checked at the end
FD_SAMPLER = None


# ---------------------------------------------------------------- helpers

def auth():
    return {"Authorization": f"token {ADMIN_TOKEN}"}


def api(method, path, token=ADMIN_TOKEN, **kw):
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"token {token}"
    return HUB.client().json(method, "/hub/api" + path, headers=headers, **kw)


def quick_get():
    """(status, seconds) of GET /hub/api from a fresh connection."""
    t0 = time.monotonic()
    try:
        status, _, _ = hubtest.Client(HUB.url, timeout=10).get("/hub/api")
    except OSError as e:
        status = f"error {e}"
    return status, time.monotonic() - t0


def alive(after):
    running = HUB.running()
    status, took = quick_get() if running else ("hubd not running", 0)
    return check(running and status == 200,
                 f"after {after}: hubd still running and GET /hub/api -> 200 (got {status}, {took:.3f} s)")


def connect(timeout=10):
    s = socket.create_connection(("127.0.0.1", HUB.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def raw(data, timeout=10.0, responses=None):
    """Sends bytes on a fresh connection and reads until the server closes
    (or, with `responses`, until that many complete responses have arrived).

    Returns (all bytes received, how the read ended: 'eof', 'reset', 'timeout' or 'complete').
    Send errors are tolerated: the server may answer (413) and stop reading early.
    """
    s = connect(timeout)
    out = b""
    how = "eof"
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                b = s.recv(65536)
            except socket.timeout:
                how = "timeout"
                break
            except ConnectionResetError:
                how = "reset"
                break
            if not b:
                break
            out += b
            if responses and len(statuses(out, complete=True)) >= responses:
                how = "complete"
                break
            if time.monotonic() > deadline:
                how = "timeout"
                break
    finally:
        s.close()
    return out, how


def statuses(data, complete=False):
    """Every response status code in a byte stream of responses (framed by Content-Length).

    complete: only responses whose head and body have fully arrived.
    """
    codes = []
    while data.startswith(b"HTTP/1."):
        head, sep, rest = data.partition(b"\r\n\r\n")
        m = re.match(rb"HTTP/1\.\d (\d{3})", head)
        if not m or not sep:
            break
        cl = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
        length = int(cl.group(1)) if cl else len(rest)
        if complete and (not cl or len(rest) < length):
            break
        codes.append(int(m.group(1)))
        data = rest[length:]
    return codes


def status_of(data):
    codes = statuses(data)
    return codes[0] if codes else None


def body_of(data):
    return data.partition(b"\r\n\r\n")[2]


def request_bytes(method, target, headers=(), body=b"", host=True, close=True):
    lines = [f"{method} {target} HTTP/1.1".encode("latin-1")]
    if host:
        lines.append(b"Host: 127.0.0.1")
    for h in headers:
        lines.append(h if isinstance(h, bytes) else h.encode("latin-1"))
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def is_json_error(body, status):
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("status") == status and bool(parsed.get("message"))


def login_cookie(client):
    return [c for c in client.set_cookies if c.startswith("jupyterhub-hub-login=")]


def form_login(username, password="pw"):
    """(status, body, got_cookie) of a form login through http.client."""
    c = HUB.client()
    status, _, body = c.post("/hub/login", form={"username": username, "password": password})
    return status, body, bool(login_cookie(c))


def neutral_or_4xx(status, body, got_cookie):
    if got_cookie:
        return False
    return (status == 200 and NEUTRAL in body) or 400 <= status < 500


class FdSampler(threading.Thread):
    """Samples /proc/PID/fd of hubd: every file it holds open for writing must be in its working directory."""

    def __init__(self, pid, allowed_dir):
        super().__init__(daemon=True)
        self.pid = pid
        self.allowed = os.path.realpath(allowed_dir) + os.sep
        self.stop_event = threading.Event()
        self.outside = set()
        self.samples = 0

    def sample(self):
        fd_dir = f"/proc/{self.pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            return
        self.samples += 1
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
                with open(f"/proc/{self.pid}/fdinfo/{fd}") as f:
                    flags = int(re.search(r"flags:\s*([0-7]+)", f.read()).group(1), 8)
            except (OSError, AttributeError):
                continue
            if not target.startswith("/") or target.startswith(self.allowed):
                continue
            if target in ("/dev/null", "/dev/urandom", "/dev/random"):
                continue
            if flags & 0o3:  # O_WRONLY or O_RDWR
                self.outside.add(target)

    def run(self):
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(0.1)

    def stop(self):
        self.stop_event.set()
        self.join(5)


# ---------------------------------------------------------------- tests

def test_initial_state():
    status, body, _ = api("POST", "/users/keeper")
    check(status == 201, f"create user keeper -> 201 (got {status})")
    status, body, _ = api("POST", "/users/keeper/tokens", json={"note": "survives the abuse"})
    check(status == 201 and body and body.get("token"), f"issue a token for keeper -> 201 (got {status})")
    STATE["token"] = body["token"] if body else ""
    status, body, _ = api("GET", "/user", token=STATE["token"])
    check(status == 200 and body and body.get("name") == "keeper", f"keeper's token works at the start ({status})")


def test_10kb_username():
    long_name = "a" * (10 * KIB)
    status, body, cookie = form_login(long_name)
    check(neutral_or_4xx(status, body, cookie),
          f"login form with a 10 kB username -> 200 with the neutral error or 4xx, no cookie (got {status})")
    check(long_name.encode() not in body, "the 10 kB username is not echoed back in full")
    status, body, _ = api("POST", "/users", json={"usernames": [long_name]})
    check(status == 400 and is_json_error(json.dumps(body or {}), 400),
          f"POST /hub/api/users with a 10 kB username -> 400 JSON error (got {status}: {body})")
    status, body, _ = api("POST", "/users", json={"usernames": ["x" * 256]})
    check(status == 400, f"POST /hub/api/users with a 256-byte username -> 400 (got {status})")
    for method in ("GET", "POST", "DELETE", "PATCH"):
        status, _, _ = api(method, "/users/" + long_name, json={} if method == "PATCH" else None)
        check(400 <= status < 500, f"{method} /hub/api/users/<10 kB> -> 4xx (got {status})")
    status, _, _ = api("GET", "/users/" + "b" * (6 * KIB))
    check(status in (400, 404), f"GET /hub/api/users/<6 kB, under the line limit> -> 400/404 (got {status})")
    status, body, _ = api("POST", "/users/keeper/tokens", token=None,
                          json={"auth": {"username": long_name, "password": "pw"}})
    check(status in (400, 403), f"token request with a 10 kB auth username -> 400/403 (got {status})")
    status, _, _ = api("GET", "/users", headers={"Authorization": "token " + "t" * (10 * KIB)}, token=None)
    check(status == 403, f"a 10 kB token in Authorization -> 403 (got {status})")
    alive("10 kB usernames")


BAD_NAMES = ["x\ny", "x\ry", "x\x00y", "x\x1b[31my", "x\x7fy", "x\x85y", "../x", "..", "a/b", "a\\b",
             "x\u202ey", "x\u200by", "-rf"]


def test_control_character_usernames():
    for name in BAD_NAMES:
        status, body, _ = api("POST", "/users", json={"usernames": [name]})
        check(status == 400 and isinstance(body, dict) and body.get("status") == 400,
              f"POST /hub/api/users {name!r} -> 400 JSON (got {status})")
        enc = urllib.parse.quote(name, safe="")
        status, body, _ = api("POST", f"/users/{enc}")
        check(400 <= status < 500, f"POST /hub/api/users/{enc} -> 4xx (got {status})")
        status, body, cookie = form_login(name)
        check(neutral_or_4xx(status, body, cookie),
              f"login form with {name!r} -> neutral error or 4xx, no cookie (got {status})")
    status, body, _ = api("PATCH", "/users/keeper", json={"name": "kee\nper"})
    check(status == 400, f"PATCH keeper -> name with a newline -> 400 (got {status})")
    status, body, _ = api("GET", "/users")
    names = [u["name"] for u in body] if isinstance(body, list) else []
    check(status == 200 and not [n for n in names if any(ord(ch) < 0x20 or ch in "/\\" for ch in n)],
          f"no user with a control character or slash was created: {names}")
    alive("control-character usernames")


FAKE = "[I 2026 fake] injected"


def test_log_injection():
    evil = "x\n" + FAKE
    form_login(evil)
    form_login("x\r" + FAKE)
    form_login("x\r\n" + FAKE)
    api("POST", "/users", json={"usernames": [evil]})
    api("POST", "/users/keeper/tokens", token=None, json={"auth": {"username": evil, "password": "pw"}})
    api("POST", "/users/" + urllib.parse.quote(evil, safe=""))
    api("PATCH", "/users/keeper", json={"name": evil})
    api("POST", "/users/keeper/tokens", json={"scopes": [evil]})
    api("POST", "/users/keeper/tokens", json={evil: 1})
    HUB.client().get("/hub/login?next=" + urllib.parse.quote("/hub/\n" + FAKE, safe=""))
    raw(request_bytes("GET", "/hub/api/" + urllib.parse.quote("\n" + FAKE, safe="")))
    time.sleep(0.3)
    with open(HUB.log_path, "rb") as f:
        log = f.read()
    lines = log.split(b"\n")
    forged = [ln for ln in lines if ln.lstrip(b"\r").startswith(FAKE.encode())]
    check(not forged, f"no forged log line starting with {FAKE!r} ({forged[:3]})")
    check(b"\r" not in log, "hubd's log holds no raw carriage return")
    check(b"\x1b" not in log, "hubd's log holds no raw ESC (terminal escape sequences)")
    check(b"\x00" not in log, "hubd's log holds no raw NUL")
    check(b"\xc2\x85" not in log, "hubd's log holds no raw NEL (C1 control)")
    # username.h: bidi controls make "a log line that renders differently from its bytes".
    check(b"\xe2\x80\xae" not in log, "hubd's log holds no raw U+202E RIGHT-TO-LEFT OVERRIDE from a username")
    check(all(ln.startswith(b"[") for ln in lines if ln), "every log line starts with hubd's '[L date' prefix")
    alive("log injection attempts")


MALFORMED = [
    ("truncated", b'{"usernames": ["x"'),
    ("truncated string", b'{"usernames": ["x'),
    ("100k '['", b"[" * 100_000),
    ("100k '{\"a\":'", b'{"a":' * 100_000),
    ("100k '[' then ']'", b"[" * 100_000 + b"]" * 100_000),
    ("invalid UTF-8 in a string", b'{"usernames": ["\xff\xfe"]}'),
    ("invalid UTF-8 outside a string", b'{"usernames": ["ok"]\xff}'),
    ("overlong UTF-8", b'{"usernames": ["\xc0\xaf"]}'),
    ("UTF-8 surrogate", b'{"usernames": ["\xed\xa0\x80"]}'),
    ("escaped lone surrogate", b'{"usernames": ["a\\ud800"]}'),
    ("duplicate keys", b'{"usernames": ["dup1"], "usernames": ["dup2"]}'),
    ("top-level array", b'["dup3"]'),
    ("top-level string", b'"dup4"'),
    ("top-level number", b"42"),
    ("top-level null", b"null"),
    ("top-level true", b"true"),
    ("trailing garbage", b'{"usernames": ["dup5"]} x'),
    ("two objects", b'{"usernames": ["dup6"]}{"usernames": ["dup7"]}'),
    ("single quotes", b"{'usernames': ['dup8']}"),
    ("comment", b'{"usernames": ["dup9"] /* hi */}'),
    ("trailing comma", b'{"usernames": ["dupa",],}'),
    ("NaN", b'{"usernames": ["dupb"], "admin": NaN}'),
    ("huge number", b'{"usernames": ["dupc"], "admin": 1e999999}'),
    ("raw control char in string", b'{"usernames": ["a\x01b"]}'),
    ("bad escape", b'{"usernames": ["a\\qb"]}'),
    ("empty body", b""),
    ("NUL byte", b"\x00"),
    ("wrong types", b'{"usernames": [1, null, {}]}'),
]


def test_malformed_json():
    before = api("GET", "/users")[1]
    for label, body in MALFORMED:
        for method, path in (("POST", "/users"), ("PATCH", "/users/keeper"), ("POST", "/users/keeper/tokens")):
            if label in ("empty body", "top-level null") and path == "/users/keeper/tokens":
                # JupyterHub 3.0 reads `self.get_json_body() or {}` here: no body and null mean "no options".
                status, _, _ = HUB.client().request(method, "/hub/api" + path, body=body, headers=dict(
                    auth(), **{"Content-Type": "application/json"}))
                check(status in (201, 400), f"{method} {path} with {label} -> 201 (as 3.0) or 400 (got {status})")
                continue
            if label == "empty body" and path != "/users":
                continue
            status, headers, raw_body = HUB.client().request(
                method, "/hub/api" + path, body=body, headers=dict(auth(), **{"Content-Type": "application/json"}))
            check(status == 400 and is_json_error(raw_body, 400)
                  and headers.get("content-type", "").startswith("application/json"),
                  f"{method} {path} with {label} JSON -> 400 JSON error (got {status}: {raw_body[:100]!r})")
    after = api("GET", "/users")[1]
    check(sorted(u["name"] for u in after) == sorted(u["name"] for u in before),
          "malformed bodies created no users")
    status, body, _ = api("GET", "/users/keeper")
    check(status == 200 and body["name"] == "keeper", "keeper was not renamed by any malformed PATCH")
    alive("malformed JSON")


def test_oversized_body():
    big = b'{"usernames": ["' + b"a" * MIB + b'"]}'
    head = request_bytes("POST", "/hub/api/users",
                         [f"Authorization: token {ADMIN_TOKEN}", "Content-Type: application/json",
                          f"Content-Length: {len(big)}"])
    out, how = raw(head + big, timeout=15)
    check(status_of(out) == 413, f"1 MiB + 18 bytes with Content-Length -> 413 (got {status_of(out)}, {how})")
    head = request_bytes("POST", "/hub/api/users", ["Content-Type: application/json",
                                                     f"Content-Length: {50 * MIB}"])
    t0 = time.monotonic()
    out, how = raw(head, timeout=15)
    took = time.monotonic() - t0
    check(status_of(out) == 413 and took < 5,
          f"Content-Length: 50 MiB is refused with 413 before any body arrives (got {status_of(out)} in {took:.2f} s)")
    out, how = raw(request_bytes("POST", "/hub/api/users", ["Content-Length: 99999999999999999999999999"]))
    check(status_of(out) in (400, 413), f"an overflowing Content-Length -> 400/413 (got {status_of(out)})")
    chunk = b"%x\r\n%s\r\n" % (64 * KIB, b"y" * (64 * KIB))
    body = chunk * 17 + b"0\r\n\r\n"
    head = request_bytes("POST", "/hub/api/users",
                         [f"Authorization: token {ADMIN_TOKEN}", "Content-Type: application/json",
                          "Transfer-Encoding: chunked"])
    out, how = raw(head + body, timeout=15)
    check(status_of(out) == 413, f"17 x 64 KiB chunked -> 413 (got {status_of(out)}, {how})")
    out, how = raw(head + b"fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n")
    check(status_of(out) in (400, 413), f"a chunk size that overflows -> 400/413 (got {status_of(out)})")
    out, how = raw(head + b"100001\r\n")
    check(status_of(out) == 413, f"a single chunk announced over 1 MiB -> 413 (got {status_of(out)}, {how})")
    form = b"username=" + b"u" * (MIB + 10) + b"&password=pw"
    out, how = raw(request_bytes("POST", "/hub/login", ["Content-Type: application/x-www-form-urlencoded",
                                                        f"Content-Length: {len(form)}"]) + form, timeout=15)
    check(status_of(out) == 413, f"a login form over 1 MiB -> 413 (got {status_of(out)})")
    # Exactly at the limit is allowed (and then judged as JSON).
    body = b'{"usernames": ["' + b"a" * (MIB - 19) + b'"]}'
    body += b" " * (MIB - len(body))
    out, how = raw(request_bytes("POST", "/hub/api/users",
                                 [f"Authorization: token {ADMIN_TOKEN}", "Content-Type: application/json",
                                  f"Content-Length: {len(body)}"]) + body, timeout=15)
    check(status_of(out) == 400 and b"username" in body_of(out).lower(),
          f"a body of exactly 1 MiB is read and its 1 MiB username refused with 400 (got {status_of(out)})")
    alive("oversized bodies")


def test_head_limits():
    out, _ = raw(request_bytes("GET", "/hub/api?" + "q" * (9 * KIB)))
    check(status_of(out) == 414, f"request line of 9 KiB -> 414 (got {status_of(out)})")
    out, _ = raw(request_bytes("GET", "/hub/api/" + "p" * (64 * KIB)))
    check(status_of(out) == 414, f"request line of 64 KiB -> 414 (got {status_of(out)})")
    out, _ = raw(request_bytes("GET", "/hub/api?" + "q" * (7 * KIB)))
    check(status_of(out) == 200, f"request line of 7 KiB is fine -> 200 (got {status_of(out)})")
    out, _ = raw(request_bytes("GET", "/hub/api", [f"X-H{i}: v" for i in range(200)]))
    check(status_of(out) == 431, f"200 header fields -> 431 (got {status_of(out)})")
    out, _ = raw(request_bytes("GET", "/hub/api", [f"X-H{i}: v" for i in range(90)]))
    check(status_of(out) == 200, f"90 header fields are fine -> 200 (got {status_of(out)})")
    out, _ = raw(request_bytes("GET", "/hub/api", ["X-Big: " + "v" * (40 * KIB)]))
    check(status_of(out) == 431, f"one 40 KiB header value -> 431 (got {status_of(out)})")
    out, _ = raw(request_bytes("GET", "/hub/api", [f"X-B{i}: " + "v" * (4 * KIB) for i in range(10)]))
    check(status_of(out) == 431, f"ten 4 KiB headers (40 KiB head) -> 431 (got {status_of(out)})")
    out, _ = raw(request_bytes("GET", "/hub/api", ["Cookie: " + "c=" + "v" * (40 * KIB)]))
    check(status_of(out) == 431, f"a 40 KiB Cookie -> 431 (got {status_of(out)})")
    out, _ = raw(request_bytes("GET", "/hub/api", ["X-Big: " + "v" * (20 * KIB)]))
    check(status_of(out) == 200, f"a 20 KiB header (head under 32 KiB) is fine -> 200 (got {status_of(out)})")
    alive("head limits")


FRAMING = [
    ("Content-Length and Transfer-Encoding",
     request_bytes("POST", "/hub/api/users", ["Content-Length: 5", "Transfer-Encoding: chunked"],
                   b"0\r\n\r\n")),
    ("two different Content-Length",
     request_bytes("POST", "/hub/api/users", ["Content-Length: 2", "Content-Length: 3"], b"{} ")),
    ("Content-Length list", request_bytes("POST", "/hub/api/users", ["Content-Length: 2, 3"], b"{} ")),
    ("negative Content-Length", request_bytes("POST", "/hub/api/users", ["Content-Length: -1"])),
    ("non-numeric Content-Length", request_bytes("POST", "/hub/api/users", ["Content-Length: 0x2"], b"{}")),
    ("Transfer-Encoding: gzip", request_bytes("POST", "/hub/api/users", ["Transfer-Encoding: gzip"], b"abcd")),
    ("Transfer-Encoding: chunked, gzip",
     request_bytes("POST", "/hub/api/users", ["Transfer-Encoding: chunked, gzip"], b"0\r\n\r\n")),
    ("Transfer-Encoding: identity", request_bytes("POST", "/hub/api/users", ["Transfer-Encoding: identity"])),
    ("Transfer-Encoding in HTTP/1.0",
     b"POST /hub/api/users HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("bad chunk size", request_bytes("POST", "/hub/api/users", ["Transfer-Encoding: chunked"],
                                     b"zz\r\nabc\r\n0\r\n\r\n")),
    ("chunk without CRLF", request_bytes("POST", "/hub/api/users", ["Transfer-Encoding: chunked"],
                                         b"3\r\nabcXX0\r\n\r\n")),
    ("bare LF line ends", b"GET /hub/api HTTP/1.1\nHost: x\nConnection: close\n\n"),
    ("bare LF in one header", b"GET /hub/api HTTP/1.1\r\nHost: x\nX-A: b\r\nConnection: close\r\n\r\n"),
    ("bare CR", b"GET /hub/api HTTP/1.1\r\nHost: x\rX-A: b\r\nConnection: close\r\n\r\n"),
    ("obs-fold", request_bytes("GET", "/hub/api", ["X-A: a", "  folded"])),
    ("NUL in a header value", request_bytes("GET", "/hub/api", ["X-A: a\x00b"])),
    ("NUL in a header name", request_bytes("GET", "/hub/api", ["X-\x00A: b"])),
    ("space before the colon", request_bytes("GET", "/hub/api", ["Host : x"], host=False)),
    ("header without a colon", request_bytes("GET", "/hub/api", ["NoColonHere"])),
    ("empty header name", request_bytes("GET", "/hub/api", [": v"])),
    ("no Host", request_bytes("GET", "/hub/api", host=False)),
    ("two Host headers", request_bytes("GET", "/hub/api", ["Host: other"])),
    ("malformed request line", b"GET /hub/api\r\nHost: x\r\n\r\n"),
    ("lowercase version", b"GET /hub/api http/1.1\r\nHost: x\r\n\r\n"),
    ("tab in request line", b"GET\t/hub/api HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("raw control character in the target", b"GET /hub/\x01api HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("raw 8-bit target", b"GET /hub/api/users/\xff HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("relative target", b"GET hub/api HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("Expect: something else", request_bytes("POST", "/hub/api/users", ["Expect: bogus", "Content-Length: 2"],
                                             b"{}")),
]


def test_bad_framing():
    for label, data in FRAMING:
        out, how = raw(data, timeout=HEADER_TIMEOUT + 5)
        st = status_of(out)
        check(st is not None and 400 <= st < 500 or st == 501,
              f"{label} -> 4xx/501 (got {st}, {how}: {out[:80]!r})")
    for version, ok in ((b"HTTP/2.0", (505, 400)), (b"HTTP/0.9", (505, 400)), (b"HTTP/1.10", (505, 400))):
        out, _ = raw(b"GET /hub/api " + version + b"\r\nHost: x\r\n\r\n")
        check(status_of(out) in ok, f"version {version.decode()} -> 400/505 (got {status_of(out)})")
    # Request smuggling: nothing after an ambiguous request may be answered.
    smuggled = request_bytes("GET", "/hub/api/users", [f"Authorization: token {ADMIN_TOKEN}"], close=False)
    for label, head in (
            ("CL+TE", b"POST /hub/api HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"0\r\n\r\n"),
            ("TE+CL", b"POST /hub/api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n"
                      b"0\r\n\r\n"),
            ("CL,CL", b"POST /hub/api HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n")):
        out, how = raw(head + smuggled, timeout=5)
        codes = statuses(out)
        check(len(codes) == 1 and codes[0] == 400 and how != "timeout",
              f"{label} + a smuggled request -> one 400 and close (got {codes}, {how})")
    # A well-framed pipeline is still answered in order.
    ok = request_bytes("GET", "/hub/api", close=False)
    out, how = raw(ok + request_bytes("GET", "/hub/api/nope", close=False) + request_bytes("GET", "/hub/api"))
    check(statuses(out) == [200, 404, 200], f"three pipelined requests -> 200, 404, 200 (got {statuses(out)})")
    alive("bad framing")


def test_unknown_routes_and_methods():
    c = HUB.client()
    for path in ("/hub/api/nope", "/hub/api/users/keeper/nope", "/hub/api/v2/users", "/hub/api/users/keeper/tokens/x/y"):
        status, headers, body = c.get(path, headers=auth())
        check(status == 404 and is_json_error(body, 404) and headers.get("content-type", "").startswith(
            "application/json"), f"GET {path} -> JSON 404 (got {status}: {body[:80]!r})")
    status, headers, body = c.get("/hub/api/nope")
    check(status == 404 and is_json_error(body, 404), f"GET /hub/api/nope without a token -> JSON 404 (got {status})")
    for method in ("BREW", "TRACE", "PROPFIND", "get", "M-SEARCH", "X" * 200):
        out, _ = raw(request_bytes(method, "/hub/api"))
        st = status_of(out)
        check(st in (400, 405, 501), f"{method[:20]} /hub/api -> 400/405/501 (got {st})")
    out, _ = raw(request_bytes("CONNECT", "evil.example:443"))
    check(status_of(out) in (400, 405, 501), f"CONNECT evil.example:443 -> 400/405/501 (got {status_of(out)})")
    out, _ = raw(request_bytes("DELETE", "/hub/api/info", [f"Authorization: token {ADMIN_TOKEN}"]))
    check(status_of(out) == 405 and is_json_error(body_of(out), 405),
          f"DELETE /hub/api/info -> JSON 405 (got {status_of(out)})")
    for path in ("/hub/nope", "/nope", "/hub/../../etc/passwd", "/hub/static/../../../etc/passwd",
                 "/hub/static/%2e%2e/%2e%2e/etc/passwd", "/hub/api/users/%2e%2e"):
        out, _ = raw(request_bytes("GET", path, [f"Authorization: token {ADMIN_TOKEN}"]))
        st = status_of(out)
        check(st is not None and 300 <= st < 500 and b"root:" not in out, f"GET {path} -> 3xx/4xx (got {st})")
    alive("unknown routes and methods")


def test_bad_path_encoding():
    for path in ("/hub/api/%00", "/hub/api/users/a%00b", "/hub/api/users/%zz", "/hub/api/users/a%",
                 "/hub/api/users/a%4", "/hub/api/users/%ff%fe", "/hub/api/users/%c0%af", "/hub/login%00",
                 "/hub/api/users/%E2%80"):
        out, _ = raw(request_bytes("GET", path, [f"Authorization: token {ADMIN_TOKEN}"]))
        check(status_of(out) == 400, f"GET {path} -> 400 (got {status_of(out)}: {body_of(out)[:60]!r})")
    for query in ("name_filter=%00", "name_filter=%zz", "limit=%00", "offset=%ff", "limit=99999999999999999999",
                  "limit=-1", "name_filter=" + "z" * 7000):
        out, _ = raw(request_bytes("GET", "/hub/api/users?" + query, [f"Authorization: token {ADMIN_TOKEN}"]))
        st = status_of(out)
        check(st in (200, 400), f"GET /hub/api/users?{query[:30]} -> 200/400 (got {st})")
    out, _ = raw(request_bytes("GET", "/hub/login?next=%0d%0aSet-Cookie:%20evil=1"))
    check(status_of(out) == 200 and b"\r\nSet-Cookie: evil" not in out,
          f"a CRLF in ?next= does not split the response (got {status_of(out)})")
    alive("bad percent-encoding")


def trickle(first, drip, interval, limit):
    """Sends `first` at once, then `drip` one byte per `interval` s, reading all the while.

    Returns (seconds until hubd closed the connection, how it ended, bytes received, bytes dripped).
    """
    s = connect()
    s.settimeout(0.05)
    t0 = time.monotonic()
    got, sent, how = b"", 0, f"still open after {limit:.0f} s"
    try:
        if first:
            s.sendall(first)
        while time.monotonic() - t0 < limit:
            if sent < len(drip):
                try:
                    s.send(drip[sent:sent + 1])
                    sent += 1
                except OSError as e:
                    how = f"send failed: {e.__class__.__name__}"
                    break
            end = time.monotonic() + interval
            closed = False
            while time.monotonic() < end:
                try:
                    b = s.recv(4096)
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    how, closed = "reset", True
                    break
                if not b:
                    how, closed = "closed", True
                    break
                got += b
            if closed:
                break
    finally:
        s.close()
    return time.monotonic() - t0, how, got, sent


def test_slow_clients():
    """Slowloris on a first and on a keep-alive request, a trickled body, binary garbage: others get fast answers."""
    head_drip = b"GET /hub/api HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 200
    body_head = request_bytes("POST", "/hub/api/users", [f"Authorization: token {ADMIN_TOKEN}",
                                                         "Content-Type: application/json", "Content-Length: 200"],
                              close=False)
    jobs = {
        "slowloris": (b"", head_drip, 0.5, 20),
        "keep-alive slowloris": (request_bytes("GET", "/hub/api", close=False), head_drip, 0.5, 20),
        "trickled body": (body_head, b'{"usernames": [' + b" " * 185, 1.0, BODY_TIMEOUT + 10),
        "binary garbage": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) * 4, b"", 0.5, 20),
    }
    results = {}

    def run(name, args):
        results[name] = trickle(*args)

    threads = {name: threading.Thread(target=run, args=(name, args), daemon=True) for name, args in jobs.items()}
    for t in threads.values():
        t.start()
    latencies = []
    while threads["slowloris"].is_alive() or threads["keep-alive slowloris"].is_alive():
        latencies.append(quick_get())
        time.sleep(0.25)
    for t in threads.values():
        t.join(BODY_TIMEOUT + 15)
    slow = [(st, round(d, 3)) for st, d in latencies if st != 200 or d > 1.0]
    worst = max((d for _, d in latencies), default=0)
    check(len(latencies) >= 10 and not slow,
          f"while slowloris clients trickled, {len(latencies)} GET /hub/api answered 200 within 1 s each "
          f"(slowest {worst:.3f} s; bad: {slow[:5]})")

    def report(name):
        took, how, got, sent = results.get(name, (None, "no result", b"", 0))
        return took, how, statuses(got), f"after {took and round(took, 1)} s, {sent} bytes dripped, {how}, " \
                                         f"responses {statuses(got)}"

    took, how, codes, text = report("slowloris")
    check(took is not None and how in ("closed", "reset") and took <= 20 and codes in ([], [408]),
          f"slowloris (a header byte every 0.5 s) is closed within 20 s, with 408 or nothing ({text})")
    check(took is not None and took >= HEADER_TIMEOUT - 1.5, f"...and not before the 10 s header timeout ({text})")
    took, how, codes, text = report("keep-alive slowloris")
    check(took is not None and how in ("closed", "reset") and took <= 20 and codes in ([200], [200, 408]),
          f"slowloris on a keep-alive connection's second request is closed within 20 s ({text})")
    took, how, codes, text = report("trickled body")
    check(took is not None and how in ("closed", "reset") and took <= BODY_TIMEOUT + 10
          and codes in ([], [408], [400]),
          f"a body trickled at 1 byte/s is cut off within {BODY_TIMEOUT + 10:.0f} s with 408/400 or nothing ({text})")
    took, how, codes, text = report("binary garbage")
    check(took is not None and how in ("closed", "reset") and all(400 <= c < 500 for c in codes),
          f"binary garbage (a TLS ClientHello) gets a 4xx or a close within 20 s ({text})")
    alive("slow clients")


def test_many_idle_connections():
    idle, partial = [], []
    try:
        for _ in range(200):
            idle.append(connect())
        for _ in range(100):
            s = connect()
            s.sendall(b"GET /hub/api HTTP/1.1\r\nHost: x\r\n")
            partial.append(s)
        time.sleep(0.2)
        lat = [quick_get() for _ in range(10)]
        check(all(st == 200 for st, _ in lat) and max(d for _, d in lat) < 1.0,
              f"with 200 idle + 100 half-sent connections, GET /hub/api -> 200 within 1 s "
              f"(slowest {max(d for _, d in lat):.3f} s)")
        status, body, _ = api("POST", "/users/crowded")
        check(status == 201, f"...and creating a user works (got {status})")
        status, body, cookie = form_login("crowded")
        check(status == 302 and cookie, f"...and a form login works (got {status})")
        # Keep-alive: the half-sent ones can still finish their request.
        for s in partial[:5]:
            s.sendall(b"Connection: close\r\n\r\n")
        answered = 0
        for s in partial[:5]:
            s.settimeout(5)
            data = b""
            try:
                while True:
                    b = s.recv(4096)
                    if not b:
                        break
                    data += b
            except OSError:
                pass
            answered += status_of(data) == 200
        check(answered == 5, f"half-sent requests completed later are answered ({answered}/5)")
    finally:
        for s in idle + partial:
            s.close()
    alive("300 concurrent idle connections")


def test_reader_that_never_reads():
    """A client pipelining requests without reading the answers must not grow hubd without bound."""
    pid = HUB.proc.pid

    def rss_kib():
        try:
            with open(f"/proc/{pid}/status") as f:
                return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        except (OSError, AttributeError):
            return None

    before = rss_kib()
    s = connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(0.2)
    req = request_bytes("GET", "/hub/static/hubd.css", close=False) * 500
    sent, t0 = 0, time.monotonic()
    lat = []
    while time.monotonic() - t0 < 4:
        try:
            sent += s.send(req)
        except socket.timeout:
            pass
        except OSError:
            break
        if len(lat) < 20:
            lat.append(quick_get())
    after = rss_kib()
    s.close()
    check(all(st == 200 for st, _ in lat) and max(d for _, d in lat) < 1.0,
          f"while a client pipelines without reading ({sent // KIB} KiB sent), others get 200 within 1 s "
          f"(slowest {max(d for _, d in lat):.3f} s)")
    if before and after:
        check(after - before < 64 * KIB, f"hubd's RSS grew by less than 64 MiB ({before} -> {after} KiB)")
    alive("a client that never reads")


def test_mutated_requests():
    """Seeded byte-level mutations of a valid request: never a 5xx (501/505 aside), always an answer or a close."""
    rng = random.Random(20261123)
    base = request_bytes("POST", "/hub/api/users?limit=3",
                         [f"Authorization: token {ADMIN_TOKEN}", "Content-Type: application/json",
                          "Content-Length: 26"], b'{"usernames": ["mutant0"]}')
    specials = b"\x00\r\n\t %:;,\x7f\xff\x1b/\\\"'"

    def mutate():
        b = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            op = rng.random()
            i = rng.randrange(len(b))
            if op < 0.4:
                b[i] = rng.choice(specials)
            elif op < 0.7:
                b[i:i] = bytes([rng.choice(specials)]) * rng.randint(1, 3)
            elif op < 0.9:
                del b[i:i + rng.randint(1, 4)]
            else:
                b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        return bytes(b) + b"\r\n\r\n"

    cases = [mutate() for _ in range(240)]
    bad = []
    lock = threading.Lock()

    def worker(batch):
        for data in batch:
            out, how = raw(data, timeout=BODY_TIMEOUT + 5, responses=1)
            codes = statuses(out)
            if how == "timeout" or any(c >= 500 and c not in (501, 505) for c in codes) or (out and not codes):
                with lock:
                    bad.append((data[:90], codes, how, out[:60]))

    threads = [threading.Thread(target=worker, args=(cases[i::24],), daemon=True) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BODY_TIMEOUT * 3)
    check(not bad, f"240 mutated requests: none got a 5xx, garbage, or hung ({len(bad)} bad: {bad[:3]})")
    alive("mutated requests")


def test_state_intact():
    check(HUB.running(), "hubd is still running after everything")
    status, body, _ = api("GET", "", token=None)
    check(status == 200 and body == {"version": "3.0.0"}, f"GET /hub/api -> 200 version (got {status})")
    status, body, _ = api("GET", "/users/keeper")
    check(status == 200 and body and body["name"] == "keeper", f"user keeper still exists (got {status})")
    status, body, _ = api("GET", "/user", token=STATE.get("token"))
    check(status == 200 and body and body.get("name") == "keeper", f"keeper's token still works (got {status})")
    status, body, cookie = form_login("keeper")
    check(status == 302 and cookie, f"keeper can still log in with the form (got {status})")
    log = HUB.log_text()
    check(not re.search(r"(?m)^\[E ", log), "no error lines in hubd's log: "
          + "; ".join(re.findall(r"(?m)^\[E .*$", log)[:3]))
    check("Sanitizer" not in log and "terminate called" not in log, "no sanitizer report or abort in hubd's log")


def test_nothing_written_outside(hub_account):
    FD_SAMPLER.stop()
    check(FD_SAMPLER.samples > 10, f"hubd's open files were sampled ({FD_SAMPLER.samples} samples)")
    check(not FD_SAMPLER.outside,
          f"hubd held no file open for writing outside {HUB.dir}: {sorted(FD_SAMPLER.outside)}")
    if hub_account is None:
        raise hubtest.Skip("not root: cannot tell hubd's files from others' without a dedicated user")
    r = subprocess.run(["find", HUB.dir, "-user", str(hub_account.uid), "-name", "jupyterhub.sqlite*"],
                       capture_output=True, text=True, timeout=60)
    check("jupyterhub.sqlite" in r.stdout, f"the ownership scan finds hubd's own database ({r.stdout.split()})")
    found = []
    for top in ("/", "/tmp", "/var/tmp", "/dev/shm", "/run", "/var"):
        if not os.path.isdir(top):
            continue
        r = subprocess.run(["find", top, "-xdev", "-user", str(hub_account.uid), "-not", "-path",
                            os.path.realpath(HUB.dir) + "*", "-print"],
                           capture_output=True, text=True, timeout=120)
        found += [p for p in r.stdout.splitlines() if not p.startswith(os.path.realpath(HUB.dir))]
    check(not found, f"no file owned by the hub user ({hub_account.name}) outside {HUB.dir}: {sorted(set(found))[:10]}")


def run_all():
    global HUB, FD_SAMPLER
    hubtest.require_hubd()
    root = os.geteuid() == 0
    account_cm = hubtest.hub_user() if root else None
    hub_account = account_cm.__enter__() if account_cm else None
    try:
        with hubtest.Hub(config=CONFIG, user=hub_account.name if hub_account else None) as hub:
            HUB = hub
            FD_SAMPLER = FdSampler(hub.proc.pid, hub.dir)
            FD_SAMPLER.start()
            hubtest.main([
                test_initial_state,
                test_10kb_username,
                test_control_character_usernames,
                test_log_injection,
                test_malformed_json,
                test_oversized_body,
                test_head_limits,
                test_bad_framing,
                test_unknown_routes_and_methods,
                test_bad_path_encoding,
                test_slow_clients,
                test_many_idle_connections,
                test_reader_that_never_reads,
                test_mutated_requests,
                test_state_intact,
                ("nothing written outside the working directory", lambda: test_nothing_written_outside(hub_account)),
            ])
    finally:
        if FD_SAMPLER:
            FD_SAMPLER.stop()
        if account_cm:
            account_cm.__exit__(None, None, None)


if __name__ == "__main__":
    run_all()
