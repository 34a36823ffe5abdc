#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""WebSocket helpers for bench/proxy_bench.sh (Python standard library only).

  ws_tool.py server PORT                      echo server on 127.0.0.1:PORT
  ws_tool.py idle PORT PATH N HOLD            open N WebSockets, write "open N" to
                                              stdout, hold them HOLD s, check each
                                              still echoes, print JSON
  ws_tool.py echo PORT PATH CONNS SECONDS     CONNS connections ping-pong 32-byte
                                              messages; print JSON (msgs/s, p50, p99)
  ws_tool.py soak PORT PATH CONNS SECONDS RATE CHURN PID EVERY
                                              hold CONNS WebSockets for SECONDS with
                                              RATE echoes/s in total and CHURN
                                              reconnects/s; every EVERY s print a JSON
                                              sample of PID's RSS and fds (bench/ws_soak.sh)
"""
import asyncio
import base64
import hashlib
import json
import os
import random
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
    if key:  # XOR as one big integer: a per-byte loop costs ~1 ms per 16 KiB
        mask = (key * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
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


# ---------------------------------------------------------------- soak

# Message sizes for the soak, with weights: mostly small (kernel messages),
# some beyond the proxy's 64 KiB buffer so that back-pressure is exercised.
SOAK_SIZES = [(32, 60), (512, 25), (4096, 12), (70_000, 3)]


def proc_sample(pid):
    """(VmRSS KiB, open fds) of PID, or (None, None) once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None, None


async def soak(port, path, conns, seconds, rate, churn, pid, every):
    """CONNS long-lived WebSockets doing echoes, each closed and replaced after
    an exponentially distributed lifetime (mean CONNS / CHURN s), so the proxy
    sees steady opens and closes. Closes rotate over the ways a client goes:
    a close handshake, a plain FIN, an RST, and an RST with an echo in flight."""
    stats = {"msgs": 0, "bytes": 0, "errors": 0, "opens": 0, "closes": 0, "open": 0}
    latencies = []
    stop = time.monotonic() + seconds
    interval = conns / rate if rate > 0 else None
    lifetime = conns / churn if churn > 0 else None
    sizes, weights = zip(*SOAK_SIZES)
    closes = [0]

    async def one(first_life):
        life = first_life
        while time.monotonic() < stop:
            try:
                reader, writer = await connect(port, path)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                stats["errors"] += 1
                await asyncio.sleep(0.5)
                continue
            stats["opens"] += 1
            stats["open"] += 1
            end = min(stop, time.monotonic() + life) if life is not None else stop
            try:
                while time.monotonic() < end:
                    if interval is not None:
                        await asyncio.sleep(min(random.expovariate(1 / interval), max(0.0, end - time.monotonic())))
                        if time.monotonic() >= end:
                            break
                        payload = os.urandom(random.choices(sizes, weights)[0])
                        t = time.perf_counter()
                        if not await asyncio.wait_for(roundtrip(reader, writer, payload), 30):
                            stats["errors"] += 1
                        latencies.append(time.perf_counter() - t)
                        stats["msgs"] += 1
                        stats["bytes"] += len(payload)
                    else:
                        await asyncio.sleep(max(0.0, end - time.monotonic()))
                how = closes[0] % 4
                closes[0] += 1
                if how == 0:  # close handshake: the echo server answers with a close frame
                    writer.write(make_frame(8, struct.pack("!H", 1000), mask=True))
                    await asyncio.wait_for(read_frame(reader), 30)
                    writer.close()
                elif how == 1:  # FIN without a close frame
                    writer.close()
                elif how == 2:  # RST
                    writer.transport.abort()
                else:  # RST while an echo is on its way back
                    writer.write(make_frame(2, os.urandom(4096), mask=True))
                    await writer.drain()
                    writer.transport.abort()
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                stats["errors"] += 1
                writer.transport.abort()
            stats["closes"] += 1
            stats["open"] -= 1
            life = random.expovariate(1 / lifetime) if lifetime is not None else None

    async def sampler():
        t0 = time.monotonic()
        last = dict(stats)
        while True:
            rss, fds = proc_sample(pid)
            lat = sorted(latencies)
            latencies.clear()
            pct = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else None
            print(json.dumps({"t": round(time.monotonic() - t0), "rss_kib": rss, "fds": fds,
                              "open": stats["open"], "msgs": stats["msgs"] - last["msgs"],
                              "opens": stats["opens"] - last["opens"], "errors": stats["errors"] - last["errors"],
                              "p50_ms": pct(0.5), "p99_ms": pct(0.99)}), flush=True)
            last = dict(stats)
            if time.monotonic() >= stop:
                return
            await asyncio.sleep(min(every, max(0.0, stop - time.monotonic())))

    # Open the first CONNS in batches (as the idle test does), staggering their
    # first lifetimes so that churn is steady from the start.
    tasks = [asyncio.create_task(sampler())]
    first = [random.uniform(0, 2 * lifetime) if lifetime is not None else None for _ in range(conns)]
    for start in range(0, conns, 250):
        tasks += [asyncio.create_task(one(life)) for life in first[start:start + 250]]
        await asyncio.sleep(0.2)
    await asyncio.gather(*tasks)
    total = {k: v for k, v in stats.items() if k != "open"}
    print(json.dumps({"summary": total}), flush=True)


def main():
    cmd = sys.argv[1]
    if cmd == "server":
        asyncio.run(server(int(sys.argv[2])))
    elif cmd == "idle":
        asyncio.run(idle(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
    elif cmd == "echo":
        asyncio.run(echo(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
    elif cmd == "soak":
        a = sys.argv[2:]
        asyncio.run(soak(int(a[0]), a[1], int(a[2]), float(a[3]), float(a[4]), float(a[5]), int(a[6]), float(a[7])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
