# SPDX-License-Identifier: BSD-3-Clause
"""One WebSocket frame encoder (RFC 6455) for the proxy tests and bench/ws_tool.py."""
import os
import struct


def make_frame(opcode, payload, mask):
    """A final frame with this opcode; clients mask (mask=True), servers do not."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload
