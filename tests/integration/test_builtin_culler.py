#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The built-in idle culler (IdleCuller.*) with real sudo and the real
jupyterhub-singleuser 3.0, with a short timeout (20 s).

As root: a hub user, two real users, the built helper where the sudoers rule
names it, a policy running /usr/bin/jupyterhub-singleuser that allows
JUPYTERHUB_ACTIVITY_INTERVAL, and hubd with c.IdleCuller.timeout = 20 and
cull_users. Checks:
* both servers are given JUPYTERHUB_ACTIVITY_INTERVAL = 6 (timeout / 3);
* the idle user's server, never visited, is stopped after the timeout through
  the normal stop path: the API shows no server, its process is gone, and the
  audit log has server.cull with the reason;
* the busy user's server runs a kernel that prints every 2 s, started through
  the notebook REST API and a kernel WebSocket that is then closed: no
  browser, and no proxied byte after that. It still runs after 2x the
  timeout, and the user's last_activity keeps advancing past the moment the
  WebSocket closed: only the server's own activity reports can move it;
* cull_users: a configured user without a server is removed after the
  timeout (user.cull), while a user a login would not bring back (created
  through the API, not in allowed_users) and an admin with
  cull_admin_users = False are kept.
Needs root (exit 77 otherwise). Run under flock /tmp/hubd-itest.lock.
"""
import os
import secrets
import time
from datetime import datetime, timezone

import hubtest
from hubtest import check, wait_for
from demotest import stop_pids, user_pids
from sudotest import require_singleuser, require_spawn_tools, singleuser_env, singleuser_policy, sudo_setup
from kerneltest import Kernel

OPS = secrets.token_hex(32)
TIMEOUT = 20  # seconds: IdleCuller.timeout
KEEPER = "hubtcull-kept"    # in allowed_users, no server: removed when idle
BOSS = "hubtcull-admin"     # admin_users, no server: kept (cull_admin_users = False)

POLICY = singleuser_policy("test_builtin_culler.py", "log_file .local/state/hubd/server.log")


def config(audit_path, idle, busy):
    return f"""
c.JupyterHub.audit_log = {audit_path!r}
c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{OPS}', 'admin': True}}]
c.Authenticator.allowed_users = {{'{idle}', '{busy}', '{KEEPER}'}}
c.Authenticator.admin_users = {{'{BOSS}'}}
c.IdleCuller.timeout = {TIMEOUT}
c.IdleCuller.cull_users = True
c.IdleCuller.cull_admin_users = False
c.Spawner.http_timeout = 60
c.Spawner.start_timeout = 90
"""


def api(hub, method, path, body=None, token=OPS):
    return hub.client().json(method, "/hub/api" + path, headers={"Authorization": f"token {token}"}, json=body)


def user_model(hub, name):
    status, body, _ = api(hub, "GET", f"/users/{name}")
    return body if status == 200 else None


def parse_ts(text):
    return datetime.fromisoformat(text.rstrip("Z")).replace(tzinfo=timezone.utc).timestamp()


def audited(hub, *parts):
    return [line for line in hub.audit_lines() if all(p in line for p in parts)]


def start_server(hub, name):
    status, _, _ = api(hub, "POST", f"/users/{name}/server")
    check(status in (201, 202), f"{name}'s server start is accepted ({status})")


def busy_kernel(hub, name):
    """Starts a kernel on name's server that prints every 2 s, through the
    notebook API and a kernel WebSocket, then closes the WebSocket. Returns
    the time it closed, or None."""
    status, tok, _ = api(hub, "POST", f"/users/{name}/tokens", {"note": "culler test", "expires_in": 600})
    token = (tok or {}).get("token", "")
    check(status == 201 and token, f"a token for {name} ({status})")
    kernel = Kernel(hub, name, token)
    if not kernel.open():
        kernel.close()
        return None
    kernel.send("import time\nwhile True:\n print('.', flush=True); time.sleep(2)")
    dots = 0
    for msg in kernel.messages(30):
        if msg.get("msg_type") == "stream" and "." in msg.get("content", {}).get("text", ""):
            dots += 1
            if dots >= 2:
                break
    check(dots >= 2, f"the kernel is busy printing ({dots} outputs seen)")
    kernel.close()
    return time.time()


def test_culling(hub, idle, busy, stranger):
    for name in (idle, busy):
        start_server(hub, name)
    for name in (idle, busy):
        ready = wait_for(lambda: (user_model(hub, name) or {}).get("server"), timeout=90, step=0.25)
        check(ready == f"/user/{name}/", f"{name}'s jupyterhub-singleuser is ready ({ready})")
        if not ready:
            print(hub.log_tail(40))
            return
    _, env = singleuser_env(busy)
    check(env.get("JUPYTERHUB_ACTIVITY_INTERVAL") == str(TIMEOUT // 3),
          f"servers report activity every timeout / 3 s ({env.get('JUPYTERHUB_ACTIVITY_INTERVAL')})")
    idle_pid, _ = singleuser_env(idle)
    idle_started = time.time()

    closed = busy_kernel(hub, busy)
    if closed is None:
        print(hub.log_tail(40))
        return

    # The idle server goes within timeout + a pass interval (2 s) + the stop.
    gone = wait_for(lambda: not (user_model(hub, idle) or {}).get("server"), timeout=TIMEOUT + 30, step=0.5)
    check(gone, f"{idle}'s idle server is stopped ({time.time() - idle_started:.0f} s after it was ready)")
    check(wait_for(lambda: not os.path.exists(f"/proc/{idle_pid}"), timeout=15),
          "...its jupyterhub-singleuser process has ended")
    lines = audited(hub, "event=server.cull", f'user="{idle}"', 'reason="idle ')
    check(lines, f"the audit log has server.cull for {idle} with the reason: {lines[:1]}")
    check(f"Culling server of {idle}: idle" in hub.log_text(), "...and hubd's log says so")

    # The busy server: no browser, no proxied byte since `closed`; it must
    # outlive twice the timeout, kept by its own activity reports.
    deadline = closed + 2 * TIMEOUT
    alive = True
    while time.time() < deadline:
        model = user_model(hub, busy) or {}
        alive = alive and bool(model.get("server"))
        time.sleep(1)
    model = user_model(hub, busy) or {}
    check(alive and model.get("server"), f"{busy}'s server with a busy kernel still runs "
                                          f"{time.time() - closed:.0f} s after its WebSocket closed")
    last = parse_ts(model.get("last_activity") or "1970-01-01T00:00:00")
    check(last >= closed + TIMEOUT, f"{busy}'s last_activity advanced {last - closed:.0f} s past the WebSocket's "
                                    "close: the server's activity reports, the only source left, keep it")
    check(not audited(hub, "event=server.cull", f'user="{busy}"'), f"no server.cull for {busy}")

    # cull_users: removed only if a login would bring the user back.
    check(user_model(hub, KEEPER) is None and audited(hub, "event=user.cull", f'user="{KEEPER}"'),
          f"{KEEPER} (allowed, never active, no server) is removed and audited as user.cull")
    check(user_model(hub, stranger) is not None, f"{stranger} (created through the API only) is kept")
    check(user_model(hub, BOSS) is not None, f"{BOSS} (admin, cull_admin_users = False) is kept")
    check(user_model(hub, busy) is not None, f"{busy} (server running) is kept")
    api(hub, "DELETE", f"/users/{busy}/server")
    wait_for(lambda: not (user_model(hub, busy) or {}).get("server"), timeout=20)


def run():
    require_spawn_tools("sudo", "visudo", "setpriv", "useradd", "runuser", "pgrep")
    require_singleuser()
    # stranger: a system user created in the hub through the API only, so a
    # login would not recreate it (not in allowed_users).
    with hubtest.hub_user() as hub_name, hubtest.SystemUser() as idle, hubtest.SystemUser() as busy, \
            hubtest.SystemUser(home=False) as stranger, \
            sudo_setup(hub_name.name, [idle.name, busy.name], POLICY) as setup:
        if setup is None:
            return
        hub = hubtest.Hub(config=None, args=["--JupyterHub.spawner_class=sudospawner.SudoSpawner"],
                          user=hub_name.name)
        hub.setup()
        hub.config = config(hub.path("audit.log"), idle.name, busy.name)
        hub.write_file("config.py", hub.config, 0o644)
        try:
            with hub:
                status, _, _ = api(hub, "POST", f"/users/{stranger.name}")
                check(status == 201, f"{stranger.name} is created through the API ({status})")
                check("Idle culler: servers idle 20 s" in hub.log_text(), "hubd logs the culler's settings")
                hubtest.main([("built-in culler", lambda: test_culling(hub, idle.name, busy.name, stranger.name))])
        finally:
            # Servers outlive hubd by design: whatever still runs as these users is ours to end.
            for user in (idle, busy):
                stop_pids(user_pids(user.name))


if __name__ == "__main__":
    run()
