#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""jupyterhub-idle-culler's calls against hubd, with its documented token.

The culler is not packaged for Debian, so this test makes exactly the
requests of jupyterhub_idle_culler/__init__.py (cull_idle, 1.x/2.x), in its
order and with its headers, and reads exactly the fields it reads:
  GET  {api}/                              version >= 1.3.0 -> use ?state=
  GET  {api}/users?limit=1&state=ready     Accept: application/jupyterhub-pagination+json,
                                           then _pagination.next.url until null
  DELETE {api}/users/<name>/server         for servers idle past the limit (202 = slow)
  GET  {api}/users?state=inactive&limit=1  (--cull-users) then DELETE {api}/users/<name>,
                                           which needs admin:users and must be refused here
The service token holds exactly list:users, read:users:activity,
read:servers, delete:servers (the culler's README). Servers are real: the
helper starts a stand-in server through real sudo as two test users.

Then POST /api/shutdown: without "servers" the hub exits and the server keeps
running (and is reattached on restart); with "servers": true it is stopped.
Needs root (exit 77 otherwise).
"""
import json
import os
import secrets
import time
import urllib.parse

import hubtest
from hubtest import check, wait_for
from sudotest import (SERVER_LOG, STAND_IN_SERVER_SOURCE, require_spawn_tools, server_policy, stand_in_server,
                      sudo_setup)

CULLER = secrets.token_hex(32)
OPS = secrets.token_hex(32)
INACTIVE_LIMIT = 2  # seconds (the culler's --timeout)
PAGE = 1            # the culler's --api-page-size

CONFIG = f"""
# nobody1/nobody2 have no Unix accounts: PAM would refuse to add them (Hub::checkNewUsers).
c.JupyterHub.authenticator_class = 'dummy'
c.JupyterHub.services = [
    {{'name': 'idle-culler', 'api_token': '{CULLER}'}},
    {{'name': 'ops', 'api_token': '{OPS}', 'admin': True}},
]
c.JupyterHub.load_roles = [
    {{'name': 'idle-culler',
      'scopes': ['list:users', 'read:users:activity', 'read:servers', 'delete:servers'],
      'services': ['idle-culler']}},
]
c.Spawner.http_timeout = 20
c.Spawner.start_timeout = 30
"""


def request(hub, method, url, token, headers=None):
    """One culler request: an absolute URL (the culler follows next.url as given)."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    check(parts.netloc == f"127.0.0.1:{hub.port}" or parts.netloc == "", f"request stays on the hub ({url})")
    h = {"Authorization": f"token {token}", **(headers or {})}
    return hub.client().json(method, path, headers=h)


def fetch_paginated(hub, url):
    """The culler's fetch_paginated: Accept header, then follow _pagination.next.url."""
    items, pages = [], 0
    while url:
        status, body, _ = request(hub, "GET", url, CULLER, {"Accept": "application/jupyterhub-pagination+json"})
        pages += 1
        if not check(status == 200 and isinstance(body, dict) and "items" in body,
                     f"GET {url} -> 200 paginated ({status})"):
            return items, pages
        items += body["items"]
        nxt = body["_pagination"]["next"]
        url = nxt["url"] if nxt else None
    return items, pages


def parse(ts):
    return time.mktime(time.strptime(ts.split(".")[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S")) - time.timezone


def cull_once(hub, api_url, cull_users):
    """One pass of cull_idle; returns (culled servers, culled users, refused user deletions)."""
    status, body, _ = request(hub, "GET", api_url + "/", CULLER)
    check(status == 200 and body.get("version") == "3.0.0", f"GET {{api}}/ -> version 3.0.0 ({body})")
    state_filter = tuple(int(x) for x in body["version"].split(".")) >= (1, 3, 0)
    check(state_filter, "the version makes the culler use the state filter")
    now = time.time()
    culled, users_culled, refused = [], [], []

    def handle_server(user, name, server):
        if server.get("pending"):
            return False
        if not server.get("ready", bool(server["url"])):
            return False
        age = now - parse(server["started"]) if server.get("started") else None
        inactive = now - parse(server["last_activity"]) if server["last_activity"] else age
        if inactive is None or inactive < INACTIVE_LIMIT:
            return False
        status, _, _ = request(hub, "DELETE", f"{api_url}/users/{urllib.parse.quote(user['name'])}/server", CULLER)
        check(status in (202, 204), f"DELETE /users/{user['name']}/server -> {status}")
        culled.append(user["name"])
        return status != 202

    def handle_user(user):
        servers = user["servers"] if "servers" in user else {}
        results = [handle_server(user, name, s) for name, s in servers.items()]
        if not cull_users or len(results) - sum(results):
            return
        age = now - parse(user["created"]) if user.get("created") else None
        inactive = now - parse(user["last_activity"]) if user["last_activity"] else age
        _ = user["admin"]  # read by the culler (cull_admin_users)
        if inactive is None or inactive < INACTIVE_LIMIT:
            return
        status, body, _ = request(hub, "DELETE", f"{api_url}/users/{user['name']}", CULLER)
        (users_culled if status == 204 else refused).append((user["name"], status, body))

    if cull_users:
        inactive_users, _ = fetch_paginated(hub, f"{api_url}/users?state=inactive&limit={PAGE}")
        for u in inactive_users:
            handle_user(u)
    ready, pages = fetch_paginated(hub, f"{api_url}/users?limit={PAGE}&state=ready")
    for u in ready:
        handle_user(u)
    return ready, pages, culled, users_culled, refused


def pid_of(user):
    try:
        with open(os.path.join(user.home_dir, "pid")) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def ops(hub, method, path, **kw):
    return hub.client().json(method, "/hub/api" + path, headers={"Authorization": f"token {OPS}"}, **kw)


def ready(hub, name):
    status, body, _ = ops(hub, "GET", f"/users/{name}")
    return status == 200 and body.get("server")


def test_culler(hub, alice, bob):
    api_url = f"{hub.url}/hub/api"
    status, body, _ = ops(hub, "POST", "/users", json={"usernames": [alice.name, bob.name, "nobody1", "nobody2"]})
    check(status == 201, f"users created ({status})")
    for u in (alice, bob):
        status, body, _ = ops(hub, "POST", f"/users/{u.name}/server")
        check(status in (201, 202), f"{u.name}'s server requested ({status} {body})")
    check(wait_for(lambda: ready(hub, alice.name) and ready(hub, bob.name), timeout=30), "both servers are ready")
    status, body, _ = hub.client().json("GET", "/hub/api/user", headers={"Authorization": f"token {CULLER}"})
    check(sorted(s.split("!")[0] for s in body["scopes"]) ==
          ["delete:servers", "list:users", "read:servers", "read:users:activity", "read:users:name"],
          f"the culler's token holds exactly its four scopes (and list:users' read:users:name): {body['scopes']}")

    # Last seen a minute ago: the culler considers them for deletion.
    long_ago = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - 60))
    for name in (alice.name, "nobody1"):
        status, _, _ = ops(hub, "POST", f"/users/{name}/activity", json={"last_activity": long_ago})
        check(status == 200, f"{name} was last active a minute ago")
    time.sleep(INACTIVE_LIMIT + 1.2)
    status, _, _ = ops(hub, "POST", f"/users/{bob.name}/activity",
                       json={"last_activity": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())})
    check(status == 200, "bob's server reports activity just now")
    alice_pid, bob_pid = pid_of(alice), pid_of(bob)
    check(alice_pid and bob_pid, f"both stand-in servers run ({alice_pid}, {bob_pid})")

    listed, pages, culled, users_culled, refused = cull_once(hub, api_url, cull_users=True)
    names = sorted(u["name"] for u in listed)
    check(names == sorted([alice.name, bob.name]), f"state=ready lists exactly the running servers' users ({names})")
    check(pages == 2, f"with limit=1 the two users come on two pages ({pages})")
    check(all({"name", "admin", "last_activity", "servers"} <= set(u) for u in listed),
          f"every listed user has the fields the culler reads: {[sorted(u) for u in listed]}")
    server = next(u for u in listed if u["name"] == alice.name)["servers"].get("", {})
    check({"name", "pending", "ready", "url", "started", "last_activity"} <= set(server),
          f"the server model has what the culler reads: {sorted(server)}")
    check(culled == [alice.name], f"the idle server (alice) is culled, the active one (bob) is not ({culled})")
    check(wait_for(lambda: not os.path.exists(f"/proc/{alice_pid}"), timeout=15), "alice's server process is gone")
    check(os.path.exists(f"/proc/{bob_pid}"), "bob's server still runs")
    check(not users_culled, f"no user was deleted with this token ({users_culled})")
    check(refused and all(status == 403 for _, status, _ in refused),
          f"user deletion (--cull-users) is refused with 403: it needs admin:users ({refused[:2]})")
    check(all("delete:users" in body.get("message", "") for _, _, body in refused), "the 403 names the scope")
    status, _, _ = ops(hub, "GET", f"/users/{alice.name}")
    check(status == 200, "alice still exists")
    status, body, _ = hub.client().json("POST", f"/hub/api/users/{bob.name}/server",
                                        headers={"Authorization": f"token {CULLER}"})
    check(status == 403, "the culler's token cannot start servers")
    return bob_pid


def test_shutdown_keeps_then_stops_servers(hub, bob, bob_pid):
    status, body, _ = ops(hub, "POST", "/shutdown", json={})
    check(status == 202 and body == {"message": "Shutting down Hub"}, f"POST /shutdown -> 202 ({status})")
    check(hub.wait_exit(timeout=10) == 0, "hubd exits with status 0")
    time.sleep(0.5)
    check(os.path.exists(f"/proc/{bob_pid}"), "without servers: true, bob's server keeps running")
    hub.restart()
    check(wait_for(lambda: ready(hub, bob.name), timeout=20), "the restarted hub reattaches bob's server")
    check(pid_of(bob) == bob_pid, "...the same process")
    status, body, _ = ops(hub, "POST", "/shutdown", json={"servers": True})
    check(status == 202, f"POST /shutdown {{servers: true}} -> 202 ({status})")
    check(hub.wait_exit(timeout=30) == 0, "hubd exits with status 0 after stopping servers")
    check(not os.path.exists(f"/proc/{bob_pid}"), "bob's server was stopped first")


def run():
    require_spawn_tools("sudo", "visudo", "useradd")
    with stand_in_server(STAND_IN_SERVER_SOURCE, "hubtest-culler-") as script:
        policy = server_policy(script, "test_idle_culler.py", *SERVER_LOG)
        with hubtest.hub_user() as hub_name, hubtest.SystemUser() as alice, hubtest.SystemUser() as bob, \
                sudo_setup(hub_name.name, [alice.name, bob.name], policy) as setup:
            if setup is None:
                return
            args = ["--JupyterHub.spawner_class=sudospawner.SudoSpawner"]
            with hubtest.Hub(config=CONFIG, args=args, user=hub_name.name) as hub:
                state = {}
                hubtest.main([("idle culler", lambda: state.update(bob_pid=test_culler(hub, alice, bob))),
                              ("shutdown", lambda: test_shutdown_keeps_then_stops_servers(
                                  hub, bob, state.get("bob_pid")))])


if __name__ == "__main__":
    run()
