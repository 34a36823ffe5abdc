# SPDX-License-Identifier: BSD-3-Clause
"""README command 1 (scripts/demo.sh) as a test fixture.

running_demo() runs the real script as root, detached on a free port, with the
binaries the suite just built, and yields a Demo (port, url, printed
passwords, hubd's pid) or None if the script failed (after recording the
failed check). Demo.kill_hubd() and Demo.restart_hubd() crash the hub and
start it again with the exact command line demo.sh used. Afterwards it stops
hubd and anything still running as a demo user, and removes every user and
file the script created (and nothing that existed before).
"""
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

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
PIDFILE = os.path.join(STATE, "hubd.pid")
ALICE_SERVER_LOG = "/home/demo-alice/.local/state/hubd/server.log"


def wait_gone(pid, timeout):
    """True once /proc/pid is gone (the process ended and was reaped) within timeout seconds."""
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def hub_answers(url):
    """True if GET url/hub/api gets any HTTP answer (as demo.sh's readiness check)."""
    try:
        with urllib.request.urlopen(url + "/hub/api", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class Demo:
    def __init__(self, port, passwords, pid, cmdline):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.passwords = passwords
        self.pid = pid  # the running hubd; None after kill_hubd() until restart_hubd()
        self.cmdline = cmdline  # demo.sh's hub command (env -i ... setpriv ... hubd ...)

    def kill_hubd(self, timeout=10):
        """SIGKILL hubd (a crash: no shutdown code runs) and wait until it is gone; returns whether it went."""
        pid, self.pid = self.pid, None
        os.kill(pid, signal.SIGKILL)
        return wait_gone(pid, timeout)

    def restart_hubd(self, timeout=30):
        """Start hubd again exactly as demo.sh's detach mode does: its command line, from the
        state dir, in its own session, output appended to hubd.log, pid in the pid file.
        Returns (True, pid) once it answers HTTP, else (False, why)."""
        with open(LOG, "ab") as log:
            proc = subprocess.Popen(self.cmdline, cwd=STATE, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        # demo.sh's hub is reparented to init; this one is our child, so reap it
        # when it ends or cleanup would wait on a zombie.
        reaper = threading.Thread(target=proc.wait, daemon=True)
        reaper.start()
        self.pid = proc.pid
        with open(PIDFILE, "w") as f:
            f.write(f"{proc.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not reaper.is_alive():
                self.pid = None
                return False, f"hubd exited during start-up (status {proc.returncode}); see {LOG}"
            if hub_answers(self.url):
                return True, proc.pid
            time.sleep(0.1)
        return False, f"hubd (pid {proc.pid}) did not answer on port {self.port} within {timeout} s; see {LOG}"


def log_size():
    """hubd.log's current length: pass it to wait_for_log to look only at what comes after."""
    try:
        return os.path.getsize(LOG)
    except OSError:
        return 0


def wait_for_log(pattern, since=0, timeout=30):
    """The first match of regex pattern in hubd.log after offset since, waiting up to timeout s; None if none."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(LOG, "rb") as f:
                f.seek(since)
                m = re.search(pattern, f.read().decode(errors="replace"), re.M)
        except OSError:
            m = None
        if m or time.monotonic() > deadline:
            return m
        time.sleep(0.1)


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
    # Root-only, outside the hub user's state dir: it holds a command root runs.
    private = tempfile.mkdtemp(prefix="hubd-demo-cmdline-")
    env["HUBD_DEMO_CMDLINE"] = os.path.join(private, "hubd.cmdline")
    demo = None
    try:
        run = subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo.sh")], env=env, capture_output=True,
                             text=True, timeout=240, stdin=subprocess.DEVNULL)
        print(run.stdout[-3000:], run.stderr[-3000:])
        if not check(run.returncode == 0, f"demo.sh exits 0 (got {run.returncode})"):
            yield None
            return
        with open(PIDFILE) as f:
            pid = int(f.read().strip())
        with open(env["HUBD_DEMO_CMDLINE"], "rb") as f:
            cmdline = [a.decode() for a in f.read().split(b"\0")[:-1]]
        passwords = dict(re.findall(r"login: (\S+)\s+password: (\S+)", run.stdout))
        demo = Demo(port, passwords, pid, cmdline)  # from here on, cleanup stops this hubd
        if not check(set(passwords) == set(DEMO_USERS), f"passwords printed for both demo users: {sorted(passwords)}"):
            yield None
            return
        if not check(cmdline[:1] == ["env"], f"demo.sh wrote the hub's command line: {cmdline[:3]}"):
            yield None
            return
        yield demo
    finally:
        if demo and demo.pid:
            subprocess.run(["kill", str(demo.pid)])
            wait_gone(demo.pid, 10)
        shutil.rmtree(private, ignore_errors=True)
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
