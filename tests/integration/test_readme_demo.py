#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""README command 1 (scripts/demo.sh) serves a login page a user can log in to.

Runs the real script as root, detached on a free port, with the binary the
suite just built: it must create the unprivileged hub user and the demo users,
print their passwords, and start hubd as the hub user. Then a client logs in
with a printed password. Everything the script created is removed afterwards.
"""
import pwd
import subprocess
import time

import hubtest
from hubtest import check, follow

from demotest import ALICE_SERVER_LOG, read, running_demo



def test_demo_login():
    with running_demo() as demo:
        if demo is None:
            return
        port, passwords, pid = demo.port, demo.passwords, demo.pid
        owner = subprocess.run(["ps", "-o", "user=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
        check(owner == "hubd", f"hubd runs as the unprivileged hub user (ps says {owner!r})")
        hub_groups = subprocess.run(["id", "-nG", "hubd"], capture_output=True, text=True).stdout.split()
        check("shadow" in hub_groups, "the hub user is in the shadow group")
        shell = pwd.getpwnam("hubd").pw_shell
        check(shell.endswith("nologin"), f"the hub user has no login shell ({shell})")

        c = hubtest.Client(f"http://127.0.0.1:{port}")
        status, headers, _ = c.get("/")
        check(status == 302 and headers.get("location") == "/hub/", "/ redirects to /hub/")
        status, headers, body = c.get("/hub/login")
        check(status == 200 and b'name="username"' in body and b'name="password"' in body, "login page has the form")
        status, headers, body = c.post("/hub/login", form={"username": "demo-bob", "password": "wrong-password"})
        check(status == 200 and b"Invalid username or password" in body, "a wrong password is refused neutrally")
        status, headers, _ = c.post("/hub/login", form={"username": "demo-alice", "password": passwords["demo-alice"]})
        check(status == 302 and "jupyterhub-hub-login" in c.cookies, "demo-alice logs in with the printed password")
        status, headers, body = c.get("/hub/home")
        check(status == 200 and b"demo-alice" in body, "her home page names her")
        # The real thing: sudo, the helper, and Debian's jupyterhub-singleuser as demo-alice.
        status, headers, _ = c.post("/hub/spawn")
        check(status == 302 and "spawn-pending" in headers.get("location", ""), "Start leads to the pending page")
        referer = {"Referer": f"http://127.0.0.1:{port}/hub/home"}
        model = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status, model, _ = c.json("GET", "/hub/api/users/demo-alice", headers=referer)
            if status != 200 or model.get("server") or model.get("pending") is None:
                break
            time.sleep(0.25)
        check(model and model.get("server") == "/user/demo-alice/",
              f"jupyterhub-singleuser runs for demo-alice and answers ({model and model.get('pending')})")
        ps = subprocess.run(["ps", "-o", "user=,args=", "-u", "demo-alice"], capture_output=True, text=True).stdout
        check("jupyterhub-singleuser" in ps, "it runs under demo-alice's uid")

        # Through hubd's proxy and its OAuth provider, as a browser would go.
        status, body, trail = follow(c, "/user/demo-alice/tree")
        check(status == 200 and b"Select or create a notebook" in body,
              f"demo-alice reaches her notebook through the proxy and OAuth: {trail}")
        check(any("/hub/api/oauth2/authorize" in t for t in trail) and any("oauth_callback" in t for t in trail),
              "...by way of the hub's OAuth authorize and her server's callback")
        server_log = read(ALICE_SERVER_LOG)
        check("Starting jupyterhub-singleuser server version 3.0.0" in server_log, "jupyterhub-singleuser 3.0 started")
        check(not any(w in server_log for w in ("[W ", "[E ")),
              "jupyterhub-singleuser logged no warning about the hub's version or headers")

        # Defense in depth: demo-bob never reaches alice's server.
        bob = hubtest.Client(f"http://127.0.0.1:{port}")
        bob.post("/hub/login", form={"username": "demo-bob", "password": passwords["demo-bob"]})
        status, body, trail = follow(bob, "/user/demo-alice/tree")
        check(status == 403 and b"Select or create" not in body, f"demo-bob gets a hub 403 page: {trail}")
        anon = hubtest.Client(f"http://127.0.0.1:{port}")
        status, headers, body = anon.get("/user/demo-alice/api/status")
        check(status == 302 and headers.get("location", "").startswith("/hub/"),
              "an anonymous request is answered by the hub, not the server")
        status, _, _ = c.json("DELETE", "/hub/api/users/demo-alice/server", headers=referer)
        check(status in (202, 204), f"demo-alice stops it through the API ({status})")


if __name__ == "__main__":
    hubtest.require_root()
    hubtest.require_hubd()
    hubtest.main([test_demo_login])
