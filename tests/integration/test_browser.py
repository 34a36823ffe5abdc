#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Issue 4's acceptance test in a real browser (tests/browser/e2e.mjs).

Runs scripts/demo.sh detached on a free port with the binaries the suite just
built, exactly as test_readme_demo.py does, then drives Debian's chromium with
playwright-core through the whole flow as demo-alice: login, Start my server,
the pending page, the notebook tree through hubd's proxy and OAuth, a new
notebook whose first cell prints the kernel's uid and cwd (the kernel
WebSocket through the proxy), demo-bob denied with a hub 403, and Stop my
server. Screenshots go to <build dir>/artifacts/browser (or a printed temp
dir). Everything demo.sh created is removed afterwards.

Needs root (exit 77 otherwise), node, /usr/bin/chromium and
tests/browser/node_modules/playwright-core (scripts/setup-debian.sh installs
it; missing is a failure, not a skip: CI installs it).
"""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile

import hubtest
from hubtest import check

from demotest import ALICE_SERVER_LOG, LOG, ROOT, read, running_demo, tail

BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
CHROMIUM = os.environ.get("HUBD_TEST_CHROMIUM", "/usr/bin/chromium")
NODE_TIMEOUT = 300  # e2e.mjs limits itself to 240 s


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
                }
                try:
                    e2e = subprocess.run([node, os.path.join(BROWSER_DIR, "e2e.mjs")], cwd=BROWSER_DIR, env=node_env,
                                         capture_output=True, text=True, timeout=NODE_TIMEOUT, stdin=subprocess.DEVNULL)
                    out, rc = e2e.stdout + e2e.stderr, e2e.returncode
                except subprocess.TimeoutExpired as e:
                    out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
                    rc = f"killed after {NODE_TIMEOUT} s"
                print(out, flush=True)
                ok = check(rc == 0 and "e2e: PASS" in out, f"the browser flow passes (node exit status {rc})")
                for line in ("ok logged in as demo-alice", "ok pending page", "ok notebook tree at",
                             f"ok cell output \"{alice.pw_uid} {alice.pw_dir}\"", "ok demo-bob gets a hub 403 page",
                             "ok home page says"):
                    check(line in out, f"e2e output has '{line}'")
                for name in ("01-login.png", "02-home.png", "03-pending.png", "04-tree.png", "05-notebook-output.png",
                             "06-stopped.png", "07-bob-denied.png"):
                    p = os.path.join(artifacts, name)
                    check(os.path.isfile(p) and os.path.getsize(p) > 1000, f"screenshot {name} saved")
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
