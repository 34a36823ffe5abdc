#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""sudospawner links only libc, libstdc++ (and their runtime) and libcap, and
stays small enough to audit.

The helper runs as every user through sudo, so its attack surface is kept to
what it links. This reads DT_NEEDED with `readelf -d` and fails on anything
outside the allow-list. To show the check can fail at all, it also reads hubd,
which must link libsqlite3, and checks that the same allow-list rejects it.

Size: code lines (not blank, not comment-only) of sudospawner/*.cpp and *.h
must stay within HELPER_BUDGET; the spawn protocol codec it shares with hubd
(libhubcore/proto) within PROTO_BUDGET. The counter is checked on a sample.

Environment: SUDOSPAWNER and HUBD (set by meson), else build/ paths.
Exit 0 if every check passed, 1 otherwise; ends with "N passed, N failed".
"""
import os
import re
import shutil
import subprocess
import sys

ALLOWED = {
    "libc.so.6",
    "libstdc++.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "libcap.so.2",
    "ld-linux-x86-64.so.2",
}

ROOT = os.environ.get("HUBD_SOURCE_ROOT",
                      os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SUDOSPAWNER = os.environ.get("SUDOSPAWNER", os.path.join(ROOT, "build", "sudospawner", "sudospawner"))
HUBD = os.environ.get("HUBD", os.path.join(ROOT, "build", "hubd", "hubd"))

NEEDED_RE = re.compile(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]")

results = []  # (name, ok, detail)


def check(name, ok, detail=""):
    results.append((name, ok, detail))
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)


def needed(path):
    """DT_NEEDED entries of an ELF file, in order."""
    out = subprocess.run(["readelf", "-d", "-W", path], check=True, capture_output=True,
                         text=True, timeout=30).stdout
    return NEEDED_RE.findall(out)


def violations(libs):
    return sorted(set(libs) - ALLOWED)


HELPER_BUDGET = 1500
PROTO_BUDGET = 700


def code_lines(text):
    """Lines that are not blank and not only a // comment or part of a /* */ block."""
    count, in_block = 0, False
    for line in text.splitlines():
        s = line.strip()
        if in_block:
            if "*/" in s:
                in_block = False
                s = s.split("*/", 1)[1].strip()
            else:
                continue
        if s.startswith("/*"):
            if "*/" not in s:
                in_block = True
            continue
        if s and not s.startswith("//"):
            count += 1
    return count


def tree_lines(directory):
    total = 0
    for name in sorted(os.listdir(directory)):
        if name.endswith((".cpp", ".h")):
            with open(os.path.join(directory, name)) as f:
                total += code_lines(f.read())
    return total


def check_size():
    sample = "// c\n\nint a;\n/* b\n c */\n  int b; // d\n"
    check("line counter counts code only", code_lines(sample) == 2, str(code_lines(sample)))
    helper = tree_lines(os.path.join(ROOT, "sudospawner"))
    check(f"sudospawner is at most {HELPER_BUDGET} code lines", 0 < helper <= HELPER_BUDGET, f"{helper} lines")
    proto = tree_lines(os.path.join(ROOT, "libhubcore", "proto"))
    check(f"its protocol codec is at most {PROTO_BUDGET} code lines", 0 < proto <= PROTO_BUDGET, f"{proto} lines")


def main():
    check_size()
    if shutil.which("readelf") is None:
        check("readelf available", False, "install binutils")
        return

    # The checker itself: a list with a forbidden library must be rejected.
    check("allow-list rejects a forbidden library",
          violations(["libc.so.6", "libssl.so.3"]) == ["libssl.so.3"])

    spawner_libs = None
    try:
        spawner_libs = needed(SUDOSPAWNER)
    except (OSError, subprocess.SubprocessError) as e:
        check("readelf sudospawner", False, f"{SUDOSPAWNER}: {e}")
    if spawner_libs is not None:
        check("sudospawner has DT_NEEDED entries", len(spawner_libs) > 0,
              f"{SUDOSPAWNER} looks static or not ELF" if not spawner_libs else ", ".join(spawner_libs))
        bad = violations(spawner_libs)
        check("sudospawner links only the allow-list", not bad,
              "forbidden: " + ", ".join(bad) if bad else "")
        check("sudospawner links libc", "libc.so.6" in spawner_libs)

    # Negative control on a real binary: hubd links SQLite, so the allow-list
    # must reject it. If this fails, the check above proves nothing.
    hubd_libs = None
    try:
        hubd_libs = needed(HUBD)
    except (OSError, subprocess.SubprocessError) as e:
        check("readelf hubd", False, f"{HUBD}: {e}")
    if hubd_libs is not None:
        sqlite = [lib for lib in hubd_libs if lib.startswith("libsqlite3.so")]
        check("hubd links libsqlite3", bool(sqlite), ", ".join(hubd_libs))
        check("allow-list rejects hubd", bool(violations(hubd_libs)),
              "forbidden in hubd: " + ", ".join(violations(hubd_libs)))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report, don't hide the summary line
        check("unexpected error", False, repr(e))
    passed = sum(1 for _, ok, _ in results if ok)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)
