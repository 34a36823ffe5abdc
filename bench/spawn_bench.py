#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Hub-side spawn and stop overhead through real sudo and the real helper.

Sets up what tests/integration/test_spawn.py sets up (a hub user in group
shadow, a user, the helper at /usr/local/bin, a root-owned policy, a sudoers
drop-in; all removed afterwards), runs hubd as the hub user with
SudoSpawner, and starts and stops the user's server N times through the REST
API. hubd logs, for each start, the time from the request to the helper's
STARTED report (the stand-in server is exec'd at that point), and for each
stop the time from the request to STOPPED. Prints median and p90.

    sudo python3 bench/spawn_bench.py [N]     # default N = 30

Reference: the Python sudospawner sleeps a fixed 1 s in every spawn and starts
a Python interpreter for every signal (shared/reference/sudospawner-lessons.md).
"""
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import hubtest  # noqa: E402
from sudotest import sudo_setup  # noqa: E402

TOKEN = secrets.token_hex(32)
STUB = r'''#!/usr/bin/python3 -IS
import http.server, sys
port = int(sys.argv[1].split("=", 1)[1])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def main():
    if os.geteuid() != 0:
        sys.exit("spawn_bench: run as root (it creates users and a sudoers drop-in)")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    d = tempfile.mkdtemp(prefix="hubd-spawn-bench-")
    os.chmod(d, 0o755)
    stub = os.path.join(d, "stub")
    with open(stub, "w") as f:
        f.write(STUB)
    os.chmod(stub, 0o755)
    policy = (f"min_uid 1000\nprofile default {stub} --port=%p\n"
              "allow_env JUPYTERHUB_API_TOKEN JPY_API_TOKEN JUPYTERHUB_CLIENT_ID JUPYTERHUB_API_URL "
              "JUPYTERHUB_ACTIVITY_URL JUPYTERHUB_BASE_URL JUPYTERHUB_SERVICE_PREFIX JUPYTERHUB_SERVICE_URL "
              "JUPYTERHUB_OAUTH_CALLBACK_URL JUPYTERHUB_OAUTH_SCOPES JUPYTERHUB_OAUTH_ACCESS_SCOPES "
              "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES JUPYTERHUB_USER JUPYTERHUB_SERVER_NAME JUPYTERHUB_HOST\n"
              "log_file .local/state/hubd/server.log\nstop_timeout 5\n")
    config = f"c.JupyterHub.services = [{{'name': 'bench', 'api_token': '{TOKEN}', 'admin': True}}]\n"
    try:
        with hubtest.hub_user() as hub_user, hubtest.SystemUser() as user, \
                sudo_setup(hub_user.name, [user.name], policy) as setup:
            if setup is None:
                sys.exit("spawn_bench: the sudoers drop-in did not validate")
            args = ["--JupyterHub.spawner_class=sudospawner.SudoSpawner"]
            with hubtest.Hub(config=config, args=args, user=hub_user.name) as hub:
                c = hub.client()
                auth = {"Authorization": f"token {TOKEN}"}
                c.json("POST", f"/hub/api/users/{user.name}", headers=auth)
                wall_start, wall_stop = [], []
                for _ in range(n):
                    t0 = time.monotonic()
                    status, _, _ = c.json("POST", f"/hub/api/users/{user.name}/server", headers=auth)
                    wall_start.append((time.monotonic() - t0) * 1000)
                    assert status == 201, status
                    t0 = time.monotonic()
                    status, _, _ = c.json("DELETE", f"/hub/api/users/{user.name}/server", headers=auth)
                    wall_stop.append((time.monotonic() - t0) * 1000)
                    assert status == 204, status
                log = hub.log_text()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    started = [float(x) for x in re.findall(r"started: pid \d+, uid \d+ \(([\d.]+) ms after the request\)", log)]
    ready = [float(x) for x in re.findall(r"is ready at \S+ \(([\d.]+) ms after the request\)", log)]
    stopped = [float(x) for x in re.findall(r"stopped \(terminated; ([\d.]+) ms after the request\)", log)]

    def row(name, xs):
        xs = sorted(xs)
        p90 = xs[min(len(xs) - 1, int(len(xs) * 0.9))]
        return f"| {name} | {len(xs)} | {statistics.median(xs):.1f} | {p90:.1f} |"

    print(f"\nspawn_bench: {n} start/stop cycles through sudo + sudospawner, stand-in server (python3 -IS)\n")
    print("| interval (ms) | n | median | p90 |\n|---|---:|---:|---:|")
    print(row("start request → helper reports STARTED (incl. sudo)", started))
    print(row("start request → server answers HTTP (ready)", ready))
    print(row("POST /server → 201, as the client sees it", wall_start))
    print(row("stop request → STOPPED (server exits on SIGTERM)", stopped))
    print(row("DELETE /server → 204, as the client sees it", wall_stop))


if __name__ == "__main__":
    main()
