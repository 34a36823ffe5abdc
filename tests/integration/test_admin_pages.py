#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The admin panel, /hub/admin: who may see it, the users table (pagination,
name filter, escaping), and every action as a POST form with _xsrf, answered
by a 303 back to the list with a status message and written to the audit log.

Without root: DummyAuthenticator, admins ada (admin_users) and a custom
"helpdesk" role (admin-ui, list:users, servers) for hal; bob is a plain user.
As root (skipped otherwise): real sudo spawns of a stand-in server started,
stopped and read through the page, a running user's removal, and PAM's
"no Unix account" refusal when adding users.
"""
import html
import os
import re
import secrets
import shutil
import time
import traceback
import urllib.parse

import hubtest
import sudotest
from hubtest import check, wait_for

ADMIN_TOKEN = secrets.token_hex(32)
CONFIG = f"""
c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = 'pw'
c.Authenticator.admin_users = {{'ada'}}
c.JupyterHub.audit_log = AUDIT_PATH
c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{ADMIN_TOKEN}', 'admin': True}}]
c.JupyterHub.load_roles = [
    {{'name': 'helpdesk', 'scopes': ['admin-ui', 'list:users', 'servers'], 'users': ['hal']}},
]
"""

ROW = re.compile(rb'<tr data-user="([^"]*)" data-admin="(true|false)" data-server="([a-z]+)">')


def api(hub, method, path, **kw):
    return hub.client().json(method, "/hub/api" + path, headers={"Authorization": f"token {ADMIN_TOKEN}"}, **kw)


def login(hub, name, password="pw"):
    c = hub.client()
    status, _, _ = c.post("/hub/login", form={"username": name, "password": password})
    check(status == 302 and "jupyterhub-hub-login" in c.cookies, f"{name} signs in")
    return c


def rows(body):
    return [(m.group(1).decode(), m.group(2) == b"true", m.group(3).decode()) for m in ROW.finditer(body)]


def flash(body):
    """The status messages shown: [(kind, text)]."""
    return [(k.decode(), html.unescape(t.decode())) for k, t in
            re.findall(rb'<li class="[a-z]+" data-flash="(ok|error)">(.*?)</li>', body)]


def act(c, form, query=""):
    """POSTs one action; follows the 303. (status of the POST, Location, final body)."""
    status, headers, _ = c.post("/hub/admin" + query, form=form)
    location = headers.get("location", "")
    body = c.get(location)[2] if status == 303 else b""
    return status, location, body


def user_exists(hub, name):
    return api(hub, "GET", f"/users/{name}")[0] == 200


def is_admin(hub, name):
    status, body, _ = api(hub, "GET", f"/users/{name}")
    return status == 200 and body["admin"]


def audited(hub, *parts):
    return wait_for(lambda: any(all(p in line for p in parts) for line in hub.audit_lines()), timeout=3)


# ------------------------------------------------------------------ without root

def test_access(hub):
    anon = hub.client()
    status, headers, _ = anon.get("/hub/admin?name_filter=x")
    want = "/hub/login?next=" + urllib.parse.quote("/hub/admin?name_filter=x", safe="/")
    check(status == 302 and headers["location"] == want,
          f"anonymous -> login with next ({status} {headers.get('location')})")
    bob = login(hub, "bob")
    status, _, body = bob.get("/hub/admin")
    check(status == 403 and b'id="admin-forbidden"' in body and b"admin-ui" in body,
          f"a plain user gets a clear 403 page ({status})")
    check(b'id="nav-admin"' not in bob.get("/hub/home")[2], "...and no Admin link in the header")
    status, _, _ = bob.post("/hub/admin", form={"action": "add_users", "names": "bobsfriend"})
    check(status == 403 and not user_exists(hub, "bobsfriend"), f"...and cannot post actions ({status})")
    status, _, body = bob.get("/hub/server-log?user=ada")
    check(status == 403, f"a plain user cannot read another user's server log ({status})")
    ada = login(hub, "ada")
    status, headers, body = ada.get("/hub/home")
    check(b'id="nav-admin" href="/hub/admin"' in body, "an admin's header links to the admin page")
    status, headers, body = ada.get("/hub/admin")
    check(status == 200 and b'id="admin-users"' in body and b"<script" not in body and b"http://" not in body,
          f"an admin sees the table; no script, no external assets ({status})")
    check("script-src" not in headers.get("content-security-policy", ""), "the page's CSP allows no script")
    status, _, body = ada.get("/hub/server-log?user=bob")
    check(status == 200 and b"bob&#8217;s server log" in body and b"not running" in body,
          f"an admin may open another user's log view ({status})")


def test_pagination_and_filter(hub):
    status, _, _ = api(hub, "POST", "/users", json={"usernames": [f"page{i:03d}" for i in range(120)]})
    check(status == 201, "120 users created through the API")
    ada = login(hub, "ada")
    everyone = sorted(u["name"] for u in api(hub, "GET", "/users")[1])
    status, _, body = ada.get("/hub/admin")
    got = [r[0] for r in rows(body)]
    check(got == everyone[:50], f"first page: 50 users sorted by name ({len(got)}, {got[:3]})")
    check(f"Users 1–50 of {len(everyone)}".encode() in body, "the count is shown")
    check(b'id="admin-prev"' not in body and b'href="/hub/admin?offset=50"' in body,
          "no previous link on the first page; next goes to offset 50")
    status, _, body = ada.get("/hub/admin?name_filter=PAGE&offset=100")
    got = [r[0] for r in rows(body)]
    check(got == [f"page{i:03d}" for i in range(100, 120)],
          f"name_filter (normalised) with offset 100: the last 20 of 120 ({len(got)})")
    check(b'id="admin-prev" rel="prev" href="/hub/admin?name_filter=page&amp;offset=50"' in body
          and b'id="admin-next"' not in body, "prev keeps the filter; no next on the last page")
    status, _, body = ada.get("/hub/admin?name_filter=page&limit=10&offset=10")
    got = [r[0] for r in rows(body)]
    check(got == [f"page{i:03d}" for i in range(10, 20)]
          and b'href="/hub/admin?name_filter=page&amp;offset=20&amp;limit=10"' in body,
          f"limit=10: ten rows, next keeps filter and limit ({got[:2]})")
    status, _, body = ada.get("/hub/admin?limit=1000")
    check(len(rows(body)) == min(200, len(everyone)), f"limit is capped at 200 ({len(rows(body))})")
    status, _, body = ada.get("/hub/admin?offset=abc&limit=-3")
    check(status == 200 and len(rows(body)) == 50, "malformed offset/limit fall back to the defaults")
    status, _, body = ada.get("/hub/admin?name_filter=page11")
    check([r[0] for r in rows(body)] == [f"page11{i}" for i in range(10)], "name_filter is a substring match")
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    status, _, body = ada.get("/hub/admin?name_filter=" + urllib.parse.quote(evil))
    check(status == 200 and b"<script>alert" not in body and b"<img src=x" not in body
          and b"&lt;script&gt;alert(1)&lt;/script&gt;" in body and b"No users match" in body,
          "a hostile filter is shown escaped, never as markup")
    row = [r for r in rows(ada.get("/hub/admin?name_filter=page000")[2])]
    check(row == [("page000", False, "stopped")], f"a row's data attributes: {row}")


def test_add_users(hub):
    ada = login(hub, "ada")
    status, location, body = act(ada, {"action": "add_users", "names": "newa newb\nBad/Name\n\nnewa\n  page001 "},
                                 query="?name_filter=new")
    check(status == 303 and location.startswith("/hub/admin?name_filter=new&flash="),
          f"add users -> 303 back to the filtered list ({status} {location})")
    notes = flash(body)
    check(("ok", "Added 2 users: newa, newb") in notes, f"two users added: {notes}")
    check(any(k == "error" and "“Bad/Name”" in t and "Invalid username" in t for k, t in notes),
          "the invalid name gets its own error")
    check(any(k == "error" and "newa is listed more than once" in t for k, t in notes), "the repeated name too")
    check(any(k == "error" and "User page001 already exists" in t for k, t in notes), "an existing user too")
    check([r[0] for r in rows(body)] == ["newa", "newb"], "the list after the redirect shows them")
    check(user_exists(hub, "newa") and not is_admin(hub, "newa") and not user_exists(hub, "bad/name"),
          "they exist through the API, not admin; the invalid one does not")
    status, _, body = act(ada, {"action": "add_users", "names": "newadm", "admin": "on"})
    check(is_admin(hub, "newadm") and ("ok", "Added 1 admin: newadm") in flash(body), "the admin box makes admins")
    status, _, body = act(ada, {"action": "add_users", "names": "  "})
    check(any(k == "error" and "at least one name" in t for k, t in flash(body)), "an empty list is refused")
    check(audited(hub, "event=user.create", 'user="newa"', 'by="ada"', 'source="127.0.0.1"', 'via="admin-page"',
                  'admin="false"'), "each added user is audited with actor, target and source")
    # The API refuses the same names the page refuses (one code path).
    status, body, _ = api(hub, "POST", "/users", json={"usernames": ["apiok", "bad/name"]})
    check(status == 400 and "Invalid username" in body.get("message", "") and not user_exists(hub, "apiok"),
          f"the API refuses an invalid name the same way ({status})")
    # A flash id is for the admin who caused it only.
    flash_id = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["flash"][0]
    hal = login(hub, "hal")
    check(flash(hal.get("/hub/admin?flash=" + flash_id)[2]) == [], "another admin does not see someone's messages")
    check(flash(ada.get("/hub/admin?flash=forged")[2]) == [], "an unknown flash id shows nothing")


def test_toggle_admin(hub):
    ada = login(hub, "ada")
    status, _, body = act(ada, {"action": "set_admin", "user": "newb", "admin": "true"})
    check(status == 303 and is_admin(hub, "newb") and ("ok", "newb is now an admin.") in flash(body),
          "make admin")
    check(audited(hub, "event=user.admin", 'user="newb"', 'by="ada"', 'admin="true"', 'via="admin-page"'),
          "...audited")
    status, _, body = act(ada, {"action": "set_admin", "user": "newb", "admin": "false"})
    check(not is_admin(hub, "newb") and ("ok", "newb is no longer an admin.") in flash(body), "revoke admin")
    status, _, body = act(ada, {"action": "set_admin", "user": "ada", "admin": "false"})
    check(is_admin(hub, "ada") and any(k == "error" and "cannot revoke your own admin" in t
                                       for k, t in flash(body)), "an admin cannot demote themself")
    check(b'value="set_admin" data-user="ada"' not in ada.get("/hub/admin?name_filter=ada")[2],
          "...and is offered no button for it")


def test_remove(hub):
    ada = login(hub, "ada")
    status, _, body = ada.get("/hub/admin?name_filter=newb&confirm_remove=newb")
    check(b'id="admin-confirm-remove" class="confirm" data-user="newb"' in body and b'id="confirm-remove"' in body,
          "the Remove link leads to a confirmation")
    status, _, body = act(ada, {"action": "remove", "user": "newb"})
    check(user_exists(hub, "newb") and any(k == "error" and "confirm" in t for k, t in flash(body)),
          "without the confirmation nothing is removed")
    status, location, body = act(ada, {"action": "remove", "user": "newb", "confirm": "yes"}, query="?offset=50")
    check(status == 303 and location.startswith("/hub/admin?offset=50&flash=") and not user_exists(hub, "newb")
          and ("ok", "Removed newb.") in flash(body), f"confirmed removal ({location})")
    check(audited(hub, "event=user.delete", 'user="newb"', 'by="ada"', 'source="127.0.0.1"'), "...audited")
    status, _, body = act(ada, {"action": "remove", "user": "ada", "confirm": "yes"})
    check(user_exists(hub, "ada") and any(k == "error" and "cannot remove yourself" in t for k, t in flash(body)),
          "an admin cannot remove themself")


def test_xsrf(hub):
    ada = login(hub, "ada")
    status, _, body = ada.post("/hub/admin", form={"action": "add_users", "names": "sneaky"}, xsrf=False)
    check(status == 403 and b'id="admin-xsrf"' in body and not user_exists(hub, "sneaky"),
          f"no _xsrf: 403 and nothing added ({status})")
    status, _, _ = ada.post("/hub/admin", form={"action": "remove", "user": "newa", "confirm": "yes",
                                                "_xsrf": "2|bogus"}, xsrf=False)
    check(status == 403 and user_exists(hub, "newa"), f"a wrong _xsrf: 403 and nothing removed ({status})")
    bob = login(hub, "bob")
    status, _, _ = ada.post("/hub/admin", form={"action": "set_admin", "user": "newa", "admin": "true",
                                                "_xsrf": bob.xsrf_token()}, xsrf=False)
    check(status == 403 and not is_admin(hub, "newa"), f"another user's _xsrf token: 403 ({status})")


def test_custom_role(hub):
    hal = login(hub, "hal")
    status, _, body = hal.get("/hub/admin?name_filter=newa")
    check(status == 200 and ("newa", False, "stopped") in rows(body), f"helpdesk sees the list ({status})")
    check(b'value="start" data-user="newa"' in body, "...with the start button (servers)")
    check(b'id="admin-add"' not in body and b'data-action="remove"' not in body and b'value="set_admin"' not in body
          and b'id="admin-shutdown"' not in body, "...but no add, remove, admin or shutdown controls")
    status, _, body = act(hal, {"action": "remove", "user": "newa", "confirm": "yes"})
    check(user_exists(hub, "newa") and any(k == "error" and "delete:users" in t for k, t in flash(body)),
          "a forged remove is refused as the API would")
    status, _, body = act(hal, {"action": "add_users", "names": "halsfriend"})
    check(not user_exists(hub, "halsfriend") and any("admin:users" in t for _, t in flash(body)), "and add")
    status, _, body = act(hal, {"action": "set_admin", "user": "hal", "admin": "true"})
    check(not is_admin(hub, "hal"), "and making oneself admin")
    status, _, body = act(hal, {"action": "shutdown", "confirm": "yes"})
    check(status == 303 and hub.running() and any("shutdown" in t for _, t in flash(body)), "and the shutdown")


def test_persistence(hub):
    hub.restart()
    check(user_exists(hub, "newa") and is_admin(hub, "newadm") and not user_exists(hub, "newb"),
          "added users survive a restart (removed ones stay removed)")
    c = login(hub, "newa")
    check(c.get("/hub/home")[0] == 200, "an added user signs in after the restart")


def test_shutdown(hub):
    ada = login(hub, "ada")
    status, _, body = ada.get("/hub/admin?confirm_shutdown=1")
    check(b'id="admin-confirm-shutdown"' in body and b'id="shutdown-servers"' in body, "shutdown asks first")
    status, _, body = act(ada, {"action": "shutdown"})
    check(hub.running() and any(k == "error" and "Confirm" in t for k, t in flash(body)),
          "without the confirmation the hub keeps running")
    status, _, body = ada.post("/hub/admin", form={"action": "shutdown", "confirm": "yes"})
    check(status == 200 and b"shutting down" in body, f"confirmed: the goodbye page ({status})")
    check(wait_for(lambda: not hub.running(), timeout=10), "the hub exits")
    check(audited(hub, "event=hub.shutdown", 'by="ada"', 'servers="keep"', 'via="admin-page"'), "...audited")


def run_each(tests):
    """Runs sub-tests against one hub; a crash fails that sub-test only."""
    for name, fn in tests:
        print(f"-- {name}", flush=True)
        try:
            fn()
        except Exception:  # noqa: BLE001 - reported as a failure, the others still run
            check(False, f"{name} raised:\n{traceback.format_exc()}")


def unprivileged():
    hub = hubtest.Hub(config=None)
    hub.setup()
    hub.config = CONFIG.replace("AUDIT_PATH", repr(hub.path("audit.log")))
    hub.write_file("config.py", hub.config, 0o644)
    with hub:
        run_each([("access", lambda: test_access(hub)),
                  ("pagination and filter", lambda: test_pagination_and_filter(hub)),
                  ("add users", lambda: test_add_users(hub)),
                  ("toggle admin", lambda: test_toggle_admin(hub)),
                  ("remove", lambda: test_remove(hub)),
                  ("xsrf", lambda: test_xsrf(hub)),
                  ("custom role", lambda: test_custom_role(hub)),
                  ("persistence", lambda: test_persistence(hub)),
                  ("shutdown", lambda: test_shutdown(hub))])


# ------------------------------------------------------------------ as root

STUB = r'''#!/usr/bin/python3 -I
import http.server, os, sys
port = int(sys.argv[1].split("=", 1)[1])
print("stand-in server of", os.environ.get("JUPYTERHUB_USER"), "says hello", flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def server_state(c, name):
    r = [x for x in rows(c.get("/hub/admin?name_filter=" + name)[2]) if x[0] == name]
    return r[0][2] if r else None


def test_spawn_through_page(hub, alice, bob, carol):
    ada = login(hub, alice.name, alice.password)
    for u in (bob, carol):
        api(hub, "POST", f"/users/{u.name}")
    t0 = time.monotonic()
    status, location, body = act(ada, {"action": "start", "user": bob.name})
    took = time.monotonic() - t0
    check(status == 303 and (("ok", f"{bob.name}'s server is starting.") in flash(body)),
          f"start -> 303 with a message ({status}, {flash(body)})")
    check(took < 2.0, f"...without waiting for the spawn ({took:.2f} s)")
    check(wait_for(lambda: server_state(ada, bob.name) == "running", timeout=30), "bob's server runs")
    check(audited(hub, "event=server.start", f'user="{bob.name}"', f'by="{alice.name}"', 'via="admin-page"'),
          "the start is audited")
    status, _, body = act(ada, {"action": "stop", "user": bob.name})
    check(status == 303 and wait_for(lambda: server_state(ada, bob.name) == "stopped", timeout=20),
          "stop through the page")
    check(audited(hub, "event=server.stop", f'user="{bob.name}"', f'by="{alice.name}"'), "the stop is audited")

    act(ada, {"action": "start", "user": bob.name})
    check(wait_for(lambda: server_state(ada, bob.name) == "running", timeout=30), "bob's server runs again")
    body = ada.get(f"/hub/admin?name_filter={bob.name}")[2]
    check(f'data-action="log" data-user="{bob.name}" href="/hub/server-log?user={bob.name}"'.encode() in body,
          "a running server's row links to its log")
    status, _, body = ada.get(f"/hub/server-log?user={bob.name}")
    check(status == 200 and f"stand-in server of {bob.name} says hello".encode() in body,
          f"the admin reads bob's server log through the helper ({status})")
    bobc = login(hub, bob.name, bob.password)
    status, _, body = bobc.get("/hub/server-log")
    check(status == 200 and b"says hello" in body, "bob reads his own log")
    status, _, body = bobc.get(f"/hub/server-log?user={alice.name}")
    check(status == 403 and b"says hello" not in body, f"bob cannot read alice's log ({status})")
    # Reading a log must leave the server with the conversation that
    # supervises it (it once ATTACHed a second helper, and STOP went nowhere).
    status, _, body = act(ada, {"action": "stop", "user": bob.name})
    check(status == 303 and wait_for(lambda: server_state(ada, bob.name) == "stopped", timeout=20),
          "after the log reads, stop through the page still works")

    act(ada, {"action": "start", "user": carol.name})
    check(wait_for(lambda: server_state(ada, carol.name) == "running", timeout=30), "carol's server runs")
    status, _, body = act(ada, {"action": "remove", "user": carol.name, "confirm": "yes"})
    check(status == 303 and not user_exists(hub, carol.name)
          and ("ok", f"Removed {carol.name}.") in flash(body), f"removing carol stops her server first ({flash(body)})")
    check(wait_for(lambda: not any(line.split()[:1] == [carol.name] and "stand-in-server" in line for line in
                                   os.popen("ps -eo user:32,args").read().splitlines()), timeout=10),
          "...her server process is gone")

    nobody = "hubtnone" + secrets.token_hex(3)
    status, _, body = act(ada, {"action": "add_users", "names": f"{nobody} {carol.name}"})
    notes = flash(body)
    check(any(k == "error" and f"adduser {nobody}" in t for k, t in notes) and not user_exists(hub, nobody),
          f"PAM: a name without a Unix account is refused with the adduser step ({notes})")
    check(("ok", f"Added 1 user: {carol.name}") in notes, "...while an existing account is added")
    status, body, _ = api(hub, "POST", "/users", json={"usernames": [nobody]})
    check(status == 400 and "adduser" in body.get("message", ""), f"the API refuses it the same way ({status})")


def as_root():
    if os.geteuid() != 0:
        raise hubtest.Skip("needs root: real users, sudo and the installed helper")
    for tool in ("sudo", "visudo", "setpriv", "useradd"):
        if not shutil.which(tool):
            raise hubtest.Skip(f"{tool} is missing")
    with sudotest.stand_in_server(STUB, "hubtest-admin-") as script:
        with hubtest.hub_user() as hub_name, \
                hubtest.SystemUser(password=secrets.token_urlsafe(12)) as alice, \
                hubtest.SystemUser(password=secrets.token_urlsafe(12)) as bob, \
                hubtest.SystemUser() as carol, \
                sudotest.sudo_setup(hub_name.name, [alice.name, bob.name, carol.name], sudotest.server_policy(script, "test_admin_pages.py", *sudotest.SERVER_LOG)) as setup:
            if setup is None:
                return
            hub = hubtest.Hub(config=None, user=hub_name.name,
                              args=["--JupyterHub.spawner_class=sudospawner.SudoSpawner"])
            hub.setup()
            hub.config = (f"c.Authenticator.admin_users = {{'{alice.name}'}}\n"
                          f"c.JupyterHub.audit_log = {hub.path('audit.log')!r}\n"
                          f"c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{ADMIN_TOKEN}', "
                          "'admin': True}]\n"
                          "c.Spawner.http_timeout = 20\nc.Spawner.start_timeout = 30\n")
            hub.write_file("config.py", hub.config, 0o644)
            with hub:
                test_spawn_through_page(hub, alice, bob, carol)


def run():
    hubtest.require_hubd()
    hubtest.main([("admin panel (DummyAuthenticator)", unprivileged),
                  ("spawns through the page (root)", as_root)])


if __name__ == "__main__":
    run()
