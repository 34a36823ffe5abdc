#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""hubd spawns, supervises, reattaches and stops servers through real sudo.

As root: a hub user (no shell, no password, group shadow), two real users with
PAM passwords, the built helper installed where the sudoers rule names it, a
root-owned policy whose default profile is a small stand-in server, and a
sudoers drop-in. hubd runs as the hub user with the seed guide's
--JupyterHub.spawner_class=sudospawner.SudoSpawner. Checks:
* alice logs in with her password and starts her server from the home page;
  the process has her uid, gid and groups, runs in her home, with exactly the
  expected environment (the stand-in dumps it);
* the API token never appears in any process's argv during the spawn;
* the API reports the server ready; kill -9 of hubd and a restart reattach to
  the same process (not restarted); stopping afterwards works;
* bob's server crashes after it became ready: the hub notices within a second
  and his home page shows the exit status and the last log lines;
* the progress EventSource (GET /hub/api/users/:name/server/progress) follows
  bob's slow start step by step to the ready event, answers 400 when nothing
  is starting, and ends a failed start with the failed event.
"""
import http.client
import json
import os
import pwd
import secrets
import subprocess
import threading
import time

import hubtest
from hubtest import check, wait_for
from sudotest import SERVER_LOG, require_spawn_tools, server_policy, stand_in_server, sudo_setup

SERVICE_TOKEN = secrets.token_hex(32)

STUB = r'''#!/usr/bin/python3 -I
import http.server, json, os, sys, time
home = os.environ["HOME"]
port = int(sys.argv[1].split("=", 1)[1])
info = {"uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()), "cwd": os.getcwd(),
        "pid": os.getpid(), "env": dict(os.environ)}
with open(os.path.join(home, "dump.json.tmp"), "w") as f:
    json.dump(info, f)
os.rename(os.path.join(home, "dump.json.tmp"), os.path.join(home, "dump.json"))
print("stand-in server for", os.environ.get("JUPYTERHUB_USER"), "on port", port, flush=True)
if os.path.exists(os.path.join(home, "fail-next")):
    print("told to fail before listening", flush=True)
    sys.exit(4)
if os.environ.get("JUPYTERHUB_USER", "").startswith("hubtcrash"):
    time.sleep(1.5)  # a start slow enough to follow on the progress stream

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        # What reached the server, for the checks that something did not.
        with open(os.path.join(home, "requests.log"), "a") as f:
            f.write(f"{self.path} upgrade={self.headers.get('Upgrade', '')}\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"stand-in")
    def log_message(self, *a):
        pass

srv = http.server.HTTPServer(("127.0.0.1", port), H)
if os.environ.get("JUPYTERHUB_USER", "").startswith("hubtcrash"):
    import threading
    def crash():
        time.sleep(2)
        print("about to crash with status 3", flush=True)
        with open(os.path.join(home, "crash.time"), "w") as f:
            f.write(repr(time.time()))
        os._exit(3)
    threading.Thread(target=crash, daemon=True).start()
srv.serve_forever()
'''


CONFIG = f"""
c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{SERVICE_TOKEN}', 'admin': True}}]
c.Spawner.http_timeout = 20
c.Spawner.start_timeout = 30
"""


def api(hub, method, path):
    return hub.client().json(method, "/hub/api" + path, headers={"Authorization": f"token {SERVICE_TOKEN}"})


def read_dump(user):
    try:
        with open(os.path.join(user.home_dir, "dump.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def login(hub, user):
    c = hub.client()
    status, _, _ = c.post("/hub/login", form={"username": user.name, "password": user.password})
    check(status == 302 and "jupyterhub-hub-login" in c.cookies, f"{user.name} logs in with the PAM password")
    return c


def server_model(hub, name):
    status, body, _ = api(hub, "GET", f"/users/{name}")
    return body if status == 200 else None


def test_spawn_as_alice(hub, alice):
    c = login(hub, alice)
    argv_seen = []
    stop_scan = threading.Event()

    def scan():
        while not stop_scan.is_set():
            argv_seen.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout)
            time.sleep(0.02)

    scanner = threading.Thread(target=scan)
    scanner.start()
    try:
        status, headers, _ = c.post("/hub/spawn")
        check(status == 302 and headers["location"] == f"/hub/spawn-pending/{alice.name}",
              "Start on the home page leads to the pending page")
        ready = wait_for(lambda: (server_model(hub, alice.name) or {}).get("server"))
    finally:
        stop_scan.set()
        scanner.join()
    check(ready == f"/user/{alice.name}/", f"the API reports alice's server ready ({ready})")
    model = server_model(hub, alice.name)
    srv = model["servers"].get("", {})
    check(srv.get("ready") is True and srv.get("pending") is None and srv.get("url") == f"/user/{alice.name}/",
          f"servers[''] in 3.0's shape: {srv}")
    status, body, _ = api(hub, "GET", "/users?state=ready")
    check(status == 200 and [u["name"] for u in body] == [alice.name], "state=ready lists alice")

    dump = read_dump(alice)
    if not check(dump is not None, "the stand-in server dumped its identity"):
        return
    pw = pwd.getpwnam(alice.name)
    check(dump["uid"] == pw.pw_uid and dump["gid"] == pw.pw_gid, "the server runs with alice's uid and gid")
    check(dump["groups"] == sorted(os.getgrouplist(alice.name, pw.pw_gid)), "...and exactly her groups")
    check(dump["cwd"] == pw.pw_dir, "...in her home directory")
    env = dump["env"]
    expected = {"HOME", "USER", "LOGNAME", "SHELL", "PATH", "LANG", "JUPYTERHUB_SINGLEUSER_APP",
                "JUPYTERHUB_DISABLE_USER_CONFIG", "JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_CLIENT_ID",
                "JUPYTERHUB_API_URL", "JUPYTERHUB_ACTIVITY_URL", "JUPYTERHUB_BASE_URL", "JUPYTERHUB_SERVICE_PREFIX",
                "JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_OAUTH_CALLBACK_URL", "JUPYTERHUB_OAUTH_SCOPES",
                "JUPYTERHUB_OAUTH_ACCESS_SCOPES", "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES", "JUPYTERHUB_USER",
                "JUPYTERHUB_SERVER_NAME", "JUPYTERHUB_HOST"}
    check(set(env) == expected, f"exactly the expected environment (extra {sorted(set(env) - expected)}, "
                                f"missing {sorted(expected - set(env))})")
    check(env.get("USER") == alice.name and env.get("HOME") == pw.pw_dir and env.get("LOGNAME") == alice.name,
          "USER, HOME, LOGNAME from passwd")
    check(env.get("JUPYTERHUB_USER") == alice.name and env.get("JUPYTERHUB_SERVICE_PREFIX") == f"/user/{alice.name}/",
          "JUPYTERHUB_USER and SERVICE_PREFIX")
    check(env.get("JUPYTERHUB_API_URL") == f"{hub.hub_url}/hub/api", f"API URL {env.get('JUPYTERHUB_API_URL')}")
    check(env.get("JUPYTERHUB_CLIENT_ID") == f"jupyterhub-user-{alice.name}", "client id")
    token = env.get("JUPYTERHUB_API_TOKEN", "")
    check(len(token) == 32, "the server got a 32-character token")
    check(argv_seen and not any(token in snap for snap in argv_seen),
          f"the token never appeared in any process's argv ({len(argv_seen)} ps snapshots)")
    status, body, _ = hub.client().json("GET", "/hub/api/user", headers={"Authorization": f"token {token}"})
    check(status == 200 and body["name"] == alice.name and "access:servers!user=" + alice.name in body["scopes"],
          "the server's token identifies alice with the server role's scopes")
    status, _, _ = hub.client().json("GET", "/hub/api/users", headers={"Authorization": f"token {token}"})
    check(status == 403, "the server's token cannot list users")
    # Proxied traffic counts as activity. The server's own token is used because
    # its use is not itself recorded as activity (as in JupyterHub).
    before = server_model(hub, alice.name)["last_activity"]
    time.sleep(1.1)
    status, _, body = hub.client().get(f"/user/{alice.name}/", headers={"Authorization": f"token {token}"})
    check(status == 200 and body == b"stand-in", "a token with access to the server is proxied to it")
    after = server_model(hub, alice.name)["last_activity"]
    check(before and after and after > before, f"traffic through the proxy is activity ({before} -> {after})")
    status, _, body = hub.client().get(f"/user/{alice.name}/")
    check(body != b"stand-in", "a request without credentials never reaches the server")
    check_websocket_gate(hub, alice, c, token)
    status, _, body = c.get(f"/user/{alice.name}/", headers={"Authorization": "token not-a-hub-token"})
    check(status == 200 and body == b"stand-in",
          "alice's browser session reaches her server even with a foreign Authorization header")
    status, headers, body = c.get("/hub/home")
    check(b"running" in body and b'id="stop"' in body, "the home page shows the running server with a Stop button")
    status, headers, body = hub.client().get(f"/hub/api/users/{alice.name}/server/log?lines=50",
                                             headers={"Authorization": f"token {SERVICE_TOKEN}"})
    check(status == 200 and f"stand-in server for {alice.name}".encode() in body
          and headers.get("content-type", "").startswith("text/plain"),
          "an admin reads alice's server log through the API (read by the helper as alice)")
    status, _, _ = hub.client().get(f"/hub/api/users/{alice.name}/server/log",
                                    headers={"Authorization": f"token {token}"})
    check(status == 403, "the server's own token cannot read the log")
    status, _, body = c.get("/hub/server-log")
    check(status == 200 and f"stand-in server for {alice.name}".encode() in body, "alice sees her log on a hub page")

    status, body, _ = api(hub, "DELETE", f"/users/{alice.name}")
    check(status == 400 and "stop it first" in body["message"], "a user with a running server is not deleted")
    status, body, _ = hub.client().json("PATCH", f"/hub/api/users/{alice.name}",
                                        headers={"Authorization": f"token {SERVICE_TOKEN}"}, json={"name": "renamed"})
    check(status == 400, "nor renamed while the server runs")

    # Restart: kill -9, start again, the same process is reattached.
    pid = dump["pid"]
    hub.kill9()
    time.sleep(0.5)
    check(os.path.exists(f"/proc/{pid}"), "alice's server survives kill -9 of hubd")
    hub.restart()
    ready = wait_for(lambda: (server_model(hub, alice.name) or {}).get("server"))
    check(ready == f"/user/{alice.name}/", "after the restart the server is reattached and ready")
    check(read_dump(alice)["pid"] == pid and os.path.exists(f"/proc/{pid}"), "...the same process, not a new one")
    check("Reattach" in hub.log_text(), "the log says it reattached")
    # Reading the log must not take the server away from the conversation
    # that supervises it: the stop below has to reach it.
    for _ in range(2):
        status, _, body = c.get("/hub/server-log")
        check(status == 200 and f"stand-in server for {alice.name}".encode() in body,
              "alice reads her log again after the restart")

    status, _, _ = api(hub, "DELETE", f"/users/{alice.name}/server")
    check(status in (202, 204), f"DELETE server -> {status}")
    gone = wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=15)
    check(gone, "the server process is gone after the stop")
    model = server_model(hub, alice.name)
    check(model["server"] is None and model["servers"] == {}, "the API shows no server")
    status, _, _ = hub.client().json("GET", "/hub/api/user", headers={"Authorization": f"token {token}"})
    check(status == 403, "the server's token was revoked with the stop")


def progress_events(hub, name, headers, timeout=20):
    """(status, content-type, events, raw) of GET .../server/progress, read as it streams."""
    conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=timeout)
    try:
        conn.request("GET", f"/hub/api/users/{name}/server/progress", headers=headers)
        resp = conn.getresponse()
        ctype = resp.getheader("Content-Type", "")
        if resp.status != 200:
            return resp.status, ctype, [], resp.read()
        raw, events = b"", []
        while True:
            line = resp.readline()
            if not line:
                break
            raw += line
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
                if events[-1].get("ready") or events[-1].get("failed"):
                    break
        return resp.status, ctype, events, raw
    finally:
        conn.close()


def test_crash_is_noticed(hub, crasher):
    c = login(hub, crasher)
    cookie = c._cookie_header("/hub/")
    # The pending page's EventSource sends the cookie and the page's XSRF token.
    browser = {"Cookie": cookie, "X-XSRFToken": c.xsrf_token(),
               "Referer": f"{hub.url}/hub/spawn-pending/{crasher.name}"}
    status, _, _, _ = progress_events(hub, crasher.name, browser)
    check(status == 400, f"progress of a server that is not starting -> 400 ({status})")
    c.post("/hub/spawn")
    status, _, _, _ = progress_events(hub, crasher.name, {"Cookie": cookie, "Referer": browser["Referer"]})
    check(status == 403, f"the progress stream with a cookie and the page's Referer but no XSRF token -> 403 ({status})")
    status, ctype, events, raw = progress_events(hub, crasher.name, browser)
    check(status == 200 and ctype == "text/event-stream", f"the pending page's EventSource -> 200 {ctype}")
    check(raw.startswith(b"\n\n"), "the stream starts with a keepalive blank line")
    check(events[:1] == [{"progress": 0, "message": "Server requested"}], f"first event as in 3.0: {events[:1]}")
    steps = [e.get("message", "") for e in events]
    check(any(m.startswith("Server process ") for m in steps), f"the helper's start is a step: {steps}")
    percents = [e["progress"] for e in events]
    check(percents == sorted(percents), f"progress only goes up: {percents}")
    url = f"/user/{crasher.name}/"
    check(events[-1:] == [{"progress": 100, "ready": True, "message": f"Server ready at {url}",
                           "html_message": f'Server ready at <a href="{url}">{url}</a>', "url": url}],
          f"the stream ends with the ready event: {events[-1:]}")
    status, _, events, _ = progress_events(hub, crasher.name, {"Authorization": f"token {SERVICE_TOKEN}"})
    check(status == 200 and len(events) == 1 and events[0].get("ready") is True,
          "a token client asking after the start gets the single ready event")
    ready = wait_for(lambda: (server_model(hub, crasher.name) or {}).get("server"))
    check(ready == f"/user/{crasher.name}/", "the crashing server first becomes ready")
    stopped = wait_for(lambda: (server_model(hub, crasher.name) or {}).get("server") is None, timeout=15, step=0.02)
    seen = time.time()
    check(stopped, "the hub notices the crash")
    try:
        with open(os.path.join(crasher.home_dir, "crash.time")) as f:
            crashed = float(f.read())
        delay = seen - crashed
        check(delay < 1.0, f"...within one second ({delay:.3f} s)")
    except OSError:
        check(False, "the stand-in recorded its crash time")
    status, _, body = c.get("/hub/home")
    check(b"exited with status 3" in body, "the home page shows the exit status")
    check(b"about to crash with status 3" in body, "...and the last log lines")
    status, _, _, _ = progress_events(hub, crasher.name, browser)
    check(status == 400, f"a crash after the start is not a failed start: progress -> 400 ({status})")

    flag = os.path.join(crasher.home_dir, "fail-next")
    with open(flag, "w"):
        pass
    try:
        c.post("/hub/spawn")
        status, _, events, _ = progress_events(hub, crasher.name, browser)
        last = events[-1] if events else {}
        check(status == 200 and last.get("failed") is True and last.get("progress") == 100
              and "exited with status 4" in last.get("message", ""),
              f"a start that fails ends the stream with the failed event: {last}")
        status, _, events, _ = progress_events(hub, crasher.name, browser)
        check(status == 200 and len(events) == 1 and events[0].get("failed") is True,
              "asked afterwards, the stream reports that failure at once")
        status, _, body = c.get(f"/hub/spawn-pending/{crasher.name}")
        check(b"exited with status 4" in body, "the pending page shows why the start failed")
    finally:
        os.unlink(flag)


def check_websocket_gate(hub, alice, alice_client, server_token):
    """jupyter-server-proxy CVE-2024-28179: a WebSocket upgrade is a request like
    any other; without alice's credentials it never reaches her server."""
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}

    def reached(marker):
        try:
            with open(os.path.join(alice.home_dir, "requests.log")) as f:
                return any(f"/{marker}/channels" in line and line.endswith(" upgrade=websocket")
                           for line in f.read().splitlines())
        except OSError:
            return False

    def attempt(client, marker, extra=None, query=""):
        status, _, _ = client.get(f"/user/{alice.name}/api/kernels/{marker}/channels{query}",
                                  headers={**upgrade, **(extra or {})})
        return status

    outsider = hubtest.Client(hub.url)
    cases = [("without credentials", None, ""),
             ("with a token that is not the hub's", {"Authorization": "token not-a-hub-token"}, ""),
             # A valid token in the URL logs nobody in (it would in a header).
             ("with alice's server token as ?token=", None, "?token=" + server_token)]
    for i, (what, extra, query) in enumerate(cases):
        marker = f"refused{i}"
        status = attempt(outsider, marker, extra, query)
        check(status in (302, 403) and not reached(marker),
              f"a WebSocket upgrade {what} is answered by the hub ({status}) and never reaches the server")
    status = attempt(alice_client, "allowed")
    check(wait_for(lambda: reached("allowed"), timeout=5),
          f"...while alice's own upgrade is proxied to it ({status}): the check above can see a leak")


def run():
    require_spawn_tools("sudo", "visudo", "setpriv", "useradd")
    with stand_in_server(STUB, "hubtest-spawn-") as script:
        with hubtest.hub_user() as hub_name, hubtest.SystemUser(password=secrets.token_urlsafe(12)) as alice, \
                hubtest.SystemUser(password=secrets.token_urlsafe(12), prefix="hubtcrash") as crasher, \
                sudo_setup(hub_name.name, [alice.name, crasher.name], server_policy(script, "test_spawn.py", "setenv JUPYTERHUB_SINGLEUSER_APP=notebook.notebookapp.NotebookApp",
                                             "setenv JUPYTERHUB_DISABLE_USER_CONFIG=1", *SERVER_LOG)) as setup:
            if setup is None:
                return
            args = ["--JupyterHub.spawner_class=sudospawner.SudoSpawner"]
            with hubtest.Hub(config=CONFIG, args=args, user=hub_name.name) as hub:
                hubtest.main([("spawn as alice", lambda: test_spawn_as_alice(hub, alice)),
                              ("crash noticed", lambda: test_crash_is_noticed(hub, crasher))])


if __name__ == "__main__":
    run()
