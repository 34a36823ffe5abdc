#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""JupyterHub.admin_access: an admin opens someone else's server only while
it runs, only with admin_access on, and only after an explicit consent step.

As root: a hub user, alice (whose server runs: a stand-in started through
real sudo), carol (an admin, admin_users) and bob (not an admin), all with
PAM passwords. Through alice's server's OAuth client
(jupyterhub-user-alice), checks:
* with admin_access on, carol's GET of the authorize URL shows a consent page
  naming alice and issues no code;
* the consent POST is refused (403, no code) without the page's _xsrf
  token, with a forged one, without a Referer, and with a Referer of another
  page; with all of them it redirects to alice's callback with a code;
* the proxy lets carol's session through to alice's server, bob's not;
* bob is refused at the authorize URL (403) and never sees a consent page;
* alice herself is not asked for consent;
* once alice's server is stopped, carol's visit to /user/alice/ starts
  nothing;
* restarted with admin_access off, carol is refused at the authorize URL and
  by the proxy.
"""
import json
import os
import re
import secrets
import urllib.parse

import hubtest
from hubtest import check, wait_for
from sudotest import require_spawn_tools, server_policy, stand_in_server, sudo_setup

SERVICE_TOKEN = secrets.token_hex(32)

STUB = r'''#!/usr/bin/python3 -I
import http.server, json, os, sys
home = os.environ["HOME"]
port = int(sys.argv[1].split("=", 1)[1])
with open(os.path.join(home, "env.json.tmp"), "w") as f:
    json.dump(dict(os.environ), f)
os.rename(os.path.join(home, "env.json.tmp"), os.path.join(home, "env.json"))

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"stand-in of " + os.environ["JUPYTERHUB_USER"].encode())
    def log_message(self, *a):
        pass

http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def config(admin, admin_access):
    return f"""
c.JupyterHub.admin_access = {admin_access}
c.Authenticator.admin_users = {{'{admin}'}}
c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{SERVICE_TOKEN}', 'admin': True}}]
c.Spawner.http_timeout = 20
"""


def api(hub, method, path):
    return hub.client().json(method, "/hub/api" + path, headers={"Authorization": f"token {SERVICE_TOKEN}"})


def login(hub, user):
    c = hub.client()
    status, _, _ = c.post("/hub/login", form={"username": user.name, "password": user.password})
    check(status == 302, f"{user.name} logs in (got {status})")
    return c


def server_ready(hub, name):
    status, model, _ = api(hub, "GET", f"/users/{name}")
    return status == 200 and (model.get("servers") or {}).get("", {}).get("ready") is True


def start_server(hub, user):
    api(hub, "POST", f"/users/{user.name}")  # 201, or 409 once it exists
    status, _, _ = api(hub, "POST", f"/users/{user.name}/server")
    check(status in (201, 202), f"POST /users/{user.name}/server -> {status}")
    check(wait_for(lambda: server_ready(hub, user.name), timeout=30), f"{user.name}'s server is ready")


def authorize_path(owner, callback):
    return (f"/hub/api/oauth2/authorize?client_id=jupyterhub-user-{owner.name}"
            f"&redirect_uri={urllib.parse.quote(callback, safe='')}&response_type=code&state=st8")


def callback_of(owner):
    with open(os.path.join(owner.home_dir, "env.json")) as f:
        return json.load(f)["JUPYTERHUB_OAUTH_CALLBACK_URL"]


def has_code(headers, callback):
    return headers.get("location", "").startswith(callback + "?code=")


def test_consent(hub, alice, carol, bob):
    start_server(hub, alice)
    callback = callback_of(alice)
    target = authorize_path(alice, callback)
    page_url = hub.url + target

    c = login(hub, carol)
    status, headers, body = c.get(target)
    check(status == 200 and b'id="authorize"' in body and alice.name.encode() in body and "location" not in headers,
          f"carol gets a consent page naming {alice.name}, and no code yet (got {status})")
    token = re.search(rb'name="_xsrf" value="([^"]+)"', body)
    check(token is not None, "the consent form carries an _xsrf token")
    token = token.group(1).decode() if token else ""

    refusals = [
        ("without _xsrf", {"Referer": page_url}, None),
        ("with a forged _xsrf", {"Referer": page_url}, {"_xsrf": "2|00000000|" + secrets.token_hex(16) + "|1"}),
        ("without a Referer", {}, {"_xsrf": token}),
        ("with the Referer of another page", {"Referer": hub.url + "/hub/home"}, {"_xsrf": token}),
    ]
    for what, hdrs, form in refusals:
        status, headers, _ = c.request("POST", target, headers=hdrs, form=form or {}, xsrf=False)
        check(status == 403 and not has_code(headers, callback), f"the consent POST {what} -> 403, no code ({status})")

    status, headers, _ = c.request("POST", target, headers={"Referer": page_url}, form={"_xsrf": token}, xsrf=False)
    check(status == 302 and has_code(headers, callback),
          f"the consent POST with the page's _xsrf and Referer -> the code at alice's callback ({status})")

    status, _, body = c.get(f"/user/{alice.name}/")
    check(status == 200 and body == b"stand-in of " + alice.name.encode(),
          f"the proxy lets carol's session through to {alice.name}'s server ({status})")

    b = login(hub, bob)
    status, headers, body = b.get(target)
    check(status == 403 and b'id="authorize"' not in body and not has_code(headers, callback),
          f"bob (not an admin) is refused at the authorize URL, no consent page ({status})")
    status, _, body = b.get(f"/user/{alice.name}/")
    check(b"stand-in" not in body, f"the proxy keeps bob away from {alice.name}'s server ({status})")
    status, headers, _ = b.request("POST", target, headers={"Referer": page_url}, form={"_xsrf": b.xsrf_token()},
                                   xsrf=False)
    check(status == 403 and not has_code(headers, callback), f"bob's own consent POST -> 403 ({status})")

    a = login(hub, alice)
    status, headers, _ = a.get(target)
    check(status == 302 and has_code(headers, callback), f"{alice.name} gets her code with no consent step ({status})")

    # Only while the server is on: stopped, carol's visit starts nothing.
    status, _, _ = api(hub, "DELETE", f"/users/{alice.name}/server")
    check(status in (202, 204), f"alice's server stops ({status})")
    check(wait_for(lambda: not (api(hub, "GET", f"/users/{alice.name}")[1].get("servers") or {}), timeout=20),
          "alice's server is gone from the API")
    c.get(f"/user/{alice.name}/")
    c.get(f"/hub/user/{alice.name}/")
    model = api(hub, "GET", f"/users/{alice.name}")[1]
    check(not (model.get("servers") or {}) and not model.get("pending"),
          f"carol's visit to /user/{alice.name}/ did not start alice's server ({model.get('servers')})")
    return callback


def test_admin_access_off(hub, alice, carol, callback):
    hub.restart(args=hub.args + ["--JupyterHub.admin_access=False"])
    start_server(hub, alice)
    target = authorize_path(alice, callback)
    c = login(hub, carol)
    status, headers, body = c.get(target)
    check(status == 403 and b'id="authorize"' not in body and not has_code(headers, callback),
          f"with admin_access off carol is refused at the authorize URL ({status})")
    status, _, body = c.get(f"/user/{alice.name}/")
    check(b"stand-in" not in body, f"and the proxy keeps her away from {alice.name}'s server ({status})")
    api(hub, "DELETE", f"/users/{alice.name}/server")


def run():
    require_spawn_tools("sudo", "visudo", "setpriv", "useradd")
    with stand_in_server(STUB, "hubtest-adminaccess-") as script:
        with hubtest.hub_user() as hub_account, \
                hubtest.SystemUser(password=secrets.token_urlsafe(12)) as alice, \
                hubtest.SystemUser(password=secrets.token_urlsafe(12)) as carol, \
                hubtest.SystemUser(password=secrets.token_urlsafe(12)) as bob, \
                sudo_setup(hub_account.name, [alice.name], server_policy(script, "test_admin_access.py")) as setup:
            if setup is None:
                return
            args = ["--JupyterHub.spawner_class=sudospawner.SudoSpawner"]
            with hubtest.Hub(config=config(carol.name, True), args=args, user=hub_account.name) as hub:
                state = {}
                hubtest.main([
                    ("consent step", lambda: state.update(cb=test_consent(hub, alice, carol, bob))),
                    ("admin_access off", lambda: test_admin_access_off(hub, alice, carol, state.get("cb", ""))),
                ])


if __name__ == "__main__":
    run()
