#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Issue 4's acceptance test in a real browser (tests/browser/e2e.mjs).

Runs scripts/demo.sh detached on a free port with the binaries the suite just
built, exactly as test_readme_demo.py does, then drives Debian's chromium with
playwright-core through the whole flow as demo-alice: login, Start my server,
the pending page, the notebook tree through hubd's proxy and OAuth, a new
notebook whose first cell prints the kernel's uid and cwd (the kernel
WebSocket through the proxy), then a hub crash: while that kernel runs, hubd
gets SIGKILL and is started again with demo.sh's command line, and the same
open notebook page must reconnect by itself and run a second cell in the
same kernel, with the same server process (hubd reattaches; no second
spawn). Then demo-bob denied with a hub 403, and Stop my server. Then issue
6's pages (tests/browser/admin_ui.mjs): demo-alice, an admin, requests, uses
and revokes a token on /hub/token, and on /hub/admin filters the users,
starts, reads the log of and stops demo-bob's real server, makes demo-bob an
admin and back, is told why two users cannot be added, and shuts the hub
down. Screenshots go to <build dir>/artifacts/browser (or a printed temp
dir). Everything demo.sh created is removed afterwards.

The crash happens in the middle of the browser session: e2e.mjs prints
"e2e: WAIT <name>" and waits for HANDSHAKE_DIR/<name>, which this script
writes once it has done its part (see handshake_handlers).

Needs root (exit 77 otherwise), node, /usr/bin/chromium and
tests/browser/node_modules/playwright-core (scripts/setup-debian.sh installs
it; missing is a failure, not a skip: CI installs it).
"""
import glob
import os
import pwd
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import hubtest
from hubtest import check

from demotest import ALICE_SERVER_LOG, LOG, ROOT, log_size, read, running_demo, tail, wait_for_log, wait_gone

BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
CHROMIUM = os.environ.get("HUBD_TEST_CHROMIUM", "/usr/bin/chromium")
NODE_TIMEOUT = 300  # e2e.mjs limits itself to 240 s
SPAWNED = re.compile(r"^.*Spawning server for demo-alice .*$", re.M)
STARTED = re.compile(r"Server of demo-alice started: pid (\d+)")


def artifacts_dir():
    """<meson build dir>/artifacts/browser when HUBD is a meson build's, else a temp dir."""
    build = os.path.dirname(os.path.dirname(os.path.abspath(hubtest.HUBD)))
    if os.path.isdir(os.path.join(build, "meson-private")):
        d = os.path.join(build, "artifacts", "browser")
        os.makedirs(d, exist_ok=True)
        for old in glob.glob(os.path.join(d, "*.png")):
            os.unlink(old)
        return d
    return tempfile.mkdtemp(prefix="hubd-browser-artifacts-")


def singleuser_pids(user):
    """Pids of user's jupyterhub-singleuser processes (from ps)."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "-u", user], capture_output=True, text=True).stdout
    return sorted(int(line.split(None, 1)[0]) for line in out.splitlines() if "jupyterhub-singleuser" in line)


def ancestors(pid):
    """pid's parent, grandparent, ... (from /proc), nearest first."""
    chain = []
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        chain.append(pid)
    return chain


def handshake_handlers(demo, out_lines):
    """The driver's side of e2e.mjs's handshakes: name -> function returning (ok, note)."""
    seen = {}

    def hub_restart():
        # The server hubd spawned for the first cell, which must outlive the crash.
        m = STARTED.search(read(LOG))
        if not check(m, "hubd's log names the pid of demo-alice's server"):
            return False, "no 'Server of demo-alice started: pid N' in hubd's log"
        server = seen["server"] = int(m.group(1))
        if not check(singleuser_pids("demo-alice") == [server],
                     f"demo-alice's one jupyterhub-singleuser is pid {server} ({singleuser_pids('demo-alice')})"):
            return False, f"demo-alice's server processes are {singleuser_pids('demo-alice')}, not [{server}]"
        old, since = demo.pid, log_size()
        t0 = time.monotonic()
        if not check(demo.kill_hubd(), f"hubd (pid {old}) is gone after SIGKILL"):
            return False, f"hubd (pid {old}) survived SIGKILL"
        gone = time.monotonic() - t0
        up, new = demo.restart_hubd()
        if not check(up, f"hubd starts again with demo.sh's command line: {new}"):
            return False, f"hubd did not start again: {new}"
        answered = time.monotonic() - t0
        reattached = wait_for_log(rf"Reattached to the server of demo-alice \(pid {server}\)", since)
        if not check(reattached, f"the new hubd (pid {new}) reattached to demo-alice's server (pid {server})"):
            return False, f"hubd did not log reattaching to pid {server}: {tail(LOG, 5)}"
        ready = wait_for_log(r"Server of demo-alice is ready at", since)
        if not check(ready, "...and routes to it again (the server is ready)"):
            return False, f"hubd did not log demo-alice's server ready again: {tail(LOG, 5)}"
        took = time.monotonic() - t0
        print(f"hub restart: SIGKILL to hubd gone {gone:.2f} s, to the new hubd answering HTTP {answered:.2f} s, "
              f"to demo-alice's server ready {took:.2f} s", flush=True)
        return True, f"hubd pid {old} killed, pid {new} reattached to server pid {server} ({took:.1f} s)"

    def server_check():
        server = seen.get("server")
        pids = singleuser_pids("demo-alice")
        if not check(server and pids == [server],
                     f"after the second cell demo-alice's server is still pid {server}, the only one ({pids})"):
            return False, f"demo-alice's server processes are {pids}, not [{server}]"
        spawns = SPAWNED.findall(read(LOG))
        if not check(len(spawns) == 1, f"hubd's log has exactly one spawn for demo-alice ({len(spawns)})"):
            return False, f"hubd spawned demo-alice's server {len(spawns)} times: {spawns}"
        m = re.search(r'ok second cell output "(\d+) \1"', "".join(out_lines))
        kernel = int(m.group(1)) if m else None
        if not check(kernel and server in ancestors(kernel),
                     f"the second cell's kernel (pid {kernel}) is a child of that server"):
            return False, f"kernel pid {kernel} does not descend from server pid {server}"
        return True, f"server pid {server} unchanged, spawned once, kernel pid {kernel} is its child"

    return {"hub-restart": hub_restart, "server-check": server_check}


def answer(path, ok, note):
    """Writes a handshake answer atomically: e2e.mjs polls for the file's existence."""
    with open(path + ".tmp", "w") as f:
        f.write(f"{'ok' if ok else 'fail'} {note}\n")
    os.rename(path + ".tmp", path)


def run_e2e(node, env, handlers, out_lines, script="e2e.mjs"):
    """Runs a browser script (e2e.mjs), printing its output live, and answers its handshakes; returns
    its exit status (or a sentence if it had to be killed)."""
    proc = subprocess.Popen([node, os.path.join(BROWSER_DIR, script)], cwd=BROWSER_DIR, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=True)  # its own group: chromium goes with it
    waits = queue.Queue()

    def reader():
        for line in proc.stdout:
            out_lines.append(line)
            print(line, end="", flush=True)
            if line.startswith("e2e: WAIT "):
                waits.put(line.split()[2])
        waits.put(None)

    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + NODE_TIMEOUT
    try:
        while True:
            try:
                name = waits.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                return f"killed after {NODE_TIMEOUT} s"
            if name is None:
                return proc.wait(timeout=max(1, deadline - time.monotonic()))
            handler = handlers.get(name)
            ok, note = handler() if handler else (False, f"the driver knows no handshake {name!r}")
            answer(os.path.join(env["HANDSHAKE_DIR"], name), ok, note)
    except subprocess.TimeoutExpired:
        return f"killed after {NODE_TIMEOUT} s"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_admin_pages(node, node_env, demo, artifacts):
    """Issue 6's token page and admin panel (tests/browser/admin_ui.mjs), as demo-alice (an admin),
    with demo-bob's real server started, read and stopped from the panel; it ends by shutting the
    hub down from the panel."""
    env = dict(node_env, OTHER_USER="demo-bob")
    env.pop("HANDSHAKE_DIR", None)
    out_lines = []
    rc = run_e2e(node, env, {}, out_lines, script="admin_ui.mjs")
    out = "".join(out_lines)
    ok = check(rc == 0 and "e2e: PASS" in out, f"the token page and admin panel flow passes (node exit status {rc})")
    for line in ("ok token", "ok the token works with exactly", "ok the note is shown as text",
                 "ok token revoked", "ok admin panel lists the users", "ok the name filter shows only demo-bob",
                 "ok demo-bob's server started from the panel", "ok demo-bob's server log is readable",
                 "ok demo-bob's server stopped from the panel", "ok demo-bob made an admin and back",
                 "ok adding impossible users is refused", "ok the hub says it is shutting down"):
        ok = check(line in out, f"admin_ui output has '{line}'") and ok
    for name in ("11-token-page.png", "12-token-created.png", "13-token-revoked.png", "14-admin.png",
                 "15-admin-filter.png", "16-admin-other-running.png", "17-other-server-log.png",
                 "18-admin-other-stopped.png", "19-admin-other-is-admin.png", "20-admin-add-errors.png",
                 "21-admin-confirm-shutdown.png", "22-hub-shutting-down.png"):
        p = os.path.join(artifacts, name)
        ok = check(os.path.isfile(p) and os.path.getsize(p) > 1000, f"screenshot {name} saved") and ok
    ok = check(wait_gone(demo.pid, 20), f"hubd (pid {demo.pid}) exited after the panel's shutdown") and ok
    ps = subprocess.run(["ps", "-o", "args=", "-u", "demo-bob"], capture_output=True, text=True).stdout
    return check("jupyterhub-singleuser" not in ps, "demo-bob's server is gone after the panel stopped it") and ok


def test_browser_flow():
    node = shutil.which("node")
    if not check(node is not None, "node is installed"):
        return
    if not check(os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")),
                 "tests/browser/node_modules/playwright-core is installed "
                 "(missing: run scripts/setup-debian.sh, which runs npm ci in tests/browser)"):
        return
    if not check(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is installed (apt-get install chromium)"):
        return

    artifacts = artifacts_dir()
    print(f"screenshots: {artifacts}", flush=True)
    browser_tmp = tempfile.mkdtemp(prefix="hubd-browser-")  # chromium's profile lands here
    try:
        with running_demo() as demo:
            if demo is None:
                return
            passed = False
            try:
                port, passwords = demo.port, demo.passwords
                alice = pwd.getpwnam("demo-alice")

                node_env = {
                    "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
                    "HOME": browser_tmp,
                    "TMPDIR": browser_tmp,
                    "LANG": "C.UTF-8",
                    "HUB_URL": f"http://127.0.0.1:{port}",
                    "USER": "demo-alice",
                    "PASSWORD": passwords["demo-alice"],
                    "DENIED_USER": "demo-bob",
                    "DENIED_PASSWORD": passwords["demo-bob"],
                    "EXPECT_UID": str(alice.pw_uid),
                    "EXPECT_HOME": alice.pw_dir,
                    "ARTIFACTS": artifacts,
                    "CHROMIUM": CHROMIUM,
                    "E2E_TIMEOUT_MS": "240000",
                    "HANDSHAKE_DIR": os.path.join(browser_tmp, "handshake"),
                }
                os.mkdir(node_env["HANDSHAKE_DIR"])
                out_lines = []
                rc = run_e2e(node, node_env, handshake_handlers(demo, out_lines), out_lines)
                out = "".join(out_lines)
                ok = check(rc == 0 and "e2e: PASS" in out, f"the browser flow passes (node exit status {rc})")
                for line in ("ok logged in as demo-alice", "ok pending page", "ok notebook tree at",
                             f"ok cell output \"{alice.pw_uid} {alice.pw_dir}\"", "ok hub restart: hubd pid",
                             "ok kernel reconnected after the hub restart", "ok second cell output",
                             "ok server check: server pid", "ok demo-bob gets a hub 403 page",
                             "ok home page before stopping says", "ok home page says"):
                    check(line in out, f"e2e output has '{line}'")
                spawns = SPAWNED.findall(read(LOG))
                check(len(spawns) == 1, f"hubd's log has one spawn for demo-alice over the whole run: {spawns}")
                for name in ("01-login.png", "02-home.png", "03-pending.png", "04-tree.png", "05-notebook-output.png",
                             "06-stopped.png", "07-bob-denied.png", "08-kernel-reconnected.png",
                             "09-second-cell-output.png", "10-home-running.png"):
                    p = os.path.join(artifacts, name)
                    check(os.path.isfile(p) and os.path.getsize(p) > 1000, f"screenshot {name} saved")
                ok = test_admin_pages(node, node_env, demo, artifacts) and ok
                server_log = read(ALICE_SERVER_LOG)
                errors = [line for line in server_log.splitlines() if line.startswith("[E ")]
                check(not errors, f"demo-alice's server logged no errors: {errors[:5]}")
                hub_noise = [line for line in read(LOG).splitlines() if line.startswith(("[W ", "[E "))]
                print("--- hubd warnings and errors during the run:\n" + ("\n".join(hub_noise[-30:]) or "(none)"), flush=True)
                ps = subprocess.run(["ps", "-o", "args=", "-u", "demo-alice"], capture_output=True, text=True).stdout
                check("jupyterhub-singleuser" not in ps, "demo-alice's server is gone after Stop my server")
                passed = ok
            finally:
                if not passed:
                    print(f"--- hubd log tail ({LOG}):\n{tail(LOG, 60)}", flush=True)
                    print(f"--- demo-alice's server log tail ({ALICE_SERVER_LOG}):\n{tail(ALICE_SERVER_LOG, 40)}",
                          flush=True)
                    print(f"--- screenshots (failure.png: the page at the failure): {artifacts}", flush=True)
    finally:
        shutil.rmtree(browser_tmp, ignore_errors=True)


if __name__ == "__main__":
    hubtest.require_root()
    hubtest.require_hubd()
    hubtest.main([test_browser_flow])
