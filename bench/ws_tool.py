#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""WebSocket helpers for bench/proxy_bench.sh (Python standard library only).

  ws_tool.py server PORT                      echo server on 127.0.0.1:PORT
  ws_tool.py idle PORT PATH N HOLD            open N WebSockets, write "open N" to
                                              stdout, hold them HOLD s, check each
                                              still echoes, print JSON
  ws_tool.py echo PORT PATH CONNS SECONDS     CONNS connections ping-pong 32-byte
                                              messages; print JSON (msgs/s, p50, p99)
"""
import asyncio
import base64
import hashlib
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from wsframe import make_frame  # noqa: E402

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def read_frame(reader):
    head = await reader.readexactly(2)
    opcode, n, masked = head[0] & 0x0F, head[1] & 0x7F, head[1] & 0x80
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    key = await reader.readexactly(4) if masked else None
    payload = await reader.readexactly(n) if n else b""
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return opcode, payload


# ---------------------------------------------------------------- server

async def serve_one(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        key = b""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"sec-websocket-key:"):
                key = line.split(b":", 1)[1].strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        while True:
            opcode, payload = await read_frame(reader)
            writer.write(make_frame(opcode, payload, mask=False))
            if opcode == 8:
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def server(port):
    srv = await asyncio.start_server(serve_one, "127.0.0.1", port, backlog=4096)
    async with srv:
        await srv.serve_forever()


# ---------------------------------------------------------------- clients

async def connect(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        writer.close()
        raise ConnectionError(head.split(b"\r\n")[0].decode(errors="replace"))
    return reader, writer


async def roundtrip(reader, writer, payload):
    writer.write(make_frame(2, payload, mask=True))
    opcode, echoed = await read_frame(reader)
    return opcode == 2 and echoed == payload


async def idle(port, path, n, hold):
    conns, errors = [], 0
    t0 = time.monotonic()
    for start in range(0, n, 500):
        batch = await asyncio.gather(*[connect(port, path) for _ in range(start, min(n, start + 500))],
                                     return_exceptions=True)
        for c in batch:
            if isinstance(c, Exception):
                errors += 1
            else:
                conns.append(c)
    opened = time.monotonic() - t0
    print(f"open {len(conns)}", flush=True)  # the bench script measures RSS now
    await asyncio.sleep(hold)
    alive = 0
    for start in range(0, len(conns), 500):
        results = await asyncio.gather(*[roundtrip(r, w, b"still-there") for r, w in conns[start:start + 500]],
                                       return_exceptions=True)
        alive += sum(1 for ok in results if ok is True)
    for _, w in conns:
        w.close()
    print(json.dumps({"opened": len(conns), "errors": errors, "alive_after_hold": alive,
                      "open_seconds": round(opened, 2)}), flush=True)


async def echo(port, path, conns, seconds):
    pairs = await asyncio.gather(*[connect(port, path) for _ in range(conns)])
    samples = []
    deadline = time.monotonic() + seconds
    payload = b"x" * 32

    async def loop(reader, writer):
        while time.monotonic() < deadline:
            t = time.perf_counter()
            await roundtrip(reader, writer, payload)
            samples.append(time.perf_counter() - t)

    t0 = time.monotonic()
    await asyncio.gather(*[loop(r, w) for r, w in pairs])
    elapsed = time.monotonic() - t0
    for _, w in pairs:
        w.close()
    samples.sort()
    pct = lambda p: round(samples[min(len(samples) - 1, int(p * len(samples)))] * 1000, 3)
    print(json.dumps({"messages": len(samples), "msgs_per_s": round(len(samples) / elapsed),
                      "p50_ms": pct(0.50), "p99_ms": pct(0.99)}), flush=True)


def main():
    cmd = sys.argv[1]
    if cmd == "server":
        asyncio.run(server(int(sys.argv[2])))
    elif cmd == "idle":
        asyncio.run(idle(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
    elif cmd == "echo":
        asyncio.run(echo(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
