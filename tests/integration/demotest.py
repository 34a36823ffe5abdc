# SPDX-License-Identifier: BSD-3-Clause
"""README command 1 (scripts/demo.sh) as a test fixture.

running_demo() runs the real script as root, detached on a free port, with the
binaries the suite just built, and yields a Demo (port, url, printed
passwords, hubd's pid) or None if the script failed (after recording the
failed check). Afterwards it stops hubd and anything still running as a demo
user, and removes every user and file the script created (and nothing that
existed before).
"""
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import time

import hubtest
from hubtest import check

ROOT = hubtest.ROOT
USERS = ("hubd", "demo-alice", "demo-bob")
DEMO_USERS = ("demo-alice", "demo-bob")
STATE = "/var/lib/hubd-demo"
LOG = os.path.join(STATE, "hubd.log")
HELPER = "/usr/local/bin/sudospawner"
POLICY = "/usr/local/etc/hubd/sudospawner.conf"
SUDOERS = "/etc/sudoers.d/hubd-demo"
ALICE_SERVER_LOG = "/home/demo-alice/.local/state/hubd/server.log"


class Demo:
    def __init__(self, port, passwords, pid):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.passwords = passwords
        self.pid = pid


def existed(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def tail(path, lines=40):
    return "\n".join(read(path).splitlines()[-lines:])


def user_pids(user):
    """Pids of the processes running as user (by uid, from ps)."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return []
    out = subprocess.run(["ps", "-o", "pid=", "-U", str(uid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def stop_pids(pids, timeout=10):
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.1)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


@contextlib.contextmanager
def running_demo():
    before = {u: existed(u) for u in USERS}
    state_existed = os.path.exists(STATE)
    created_files = [p for p in (HELPER, POLICY, SUDOERS) if not os.path.exists(p)]
    port = hubtest.free_port()
    env = dict(os.environ, HUBD_SKIP_SETUP="1", HUBD_DEMO_DETACH="1", HUBD_DEMO_PORT=str(port),
               HUBD_DEMO_BINARY=hubtest.HUBD,
               HUBD_DEMO_HELPER=os.environ.get("SUDOSPAWNER", os.path.join(ROOT, "build", "sudospawner", "sudospawner")))
    pid = None
    try:
        run = subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo.sh")], env=env, capture_output=True,
                             text=True, timeout=240, stdin=subprocess.DEVNULL)
        print(run.stdout[-3000:], run.stderr[-3000:])
        if not check(run.returncode == 0, f"demo.sh exits 0 (got {run.returncode})"):
            yield None
            return
        passwords = dict(re.findall(r"login: (\S+)\s+password: (\S+)", run.stdout))
        if not check(set(passwords) == set(DEMO_USERS), f"passwords printed for both demo users: {sorted(passwords)}"):
            yield None
            return
        with open(os.path.join(STATE, "hubd.pid")) as f:
            pid = int(f.read().strip())
        yield Demo(port, passwords, pid)
    finally:
        if pid:
            subprocess.run(["kill", str(pid)])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
                time.sleep(0.1)
        # Servers outlive hubd by design; whatever still runs as a demo user is ours to end.
        for u in DEMO_USERS:
            if not before[u]:
                stop_pids(user_pids(u))
        for u in USERS:
            if not before[u] and existed(u):
                subprocess.run(["userdel", "-r", u], capture_output=True)
        if not state_existed:
            shutil.rmtree(STATE, ignore_errors=True)
        for p in created_files:
            if os.path.exists(p):
                os.unlink(p)
