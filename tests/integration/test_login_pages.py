#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The hub's pages: login, next handling, home, logout, redirects, headers,
and the home page's notice while JupyterHub.admin_access is on.

DummyAuthenticator with a password; root not needed. `next` must be honoured
only when it is a local path on this hub (CVE-2019-10255-style open redirects
end on the home page).
"""
import urllib.parse

import hubtest
from hubtest import check

CONFIG = """
c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = 'pw'
c.Authenticator.blocked_users = {'mallory'}
"""


def login(hub, name="ann", password="pw", next_=None):
    c = hub.client()
    path = "/hub/login" + (f"?next={next_}" if next_ is not None else "")
    status, headers, body = c.post(path, form={"username": name, "password": password})
    return c, status, headers, body


def test_redirects_and_headers(hub):
    c = hub.client()
    status, headers, _ = c.get("/")
    check(status == 302 and headers["location"] == "/hub/", "/ -> 302 /hub/")
    status, headers, _ = c.get("/hub")
    check(status == 301 and headers["location"] == "/hub/", "/hub -> 301 /hub/")
    status, headers, _ = c.get("/hub/")
    check(status == 302 and headers["location"].startswith("/hub/login?next="), "anonymous /hub/ -> login with next")
    status, headers, body = c.get("/hub/login")
    check(status == 200 and headers["content-type"].startswith("text/html"), "login page is HTML")
    csp = headers.get("content-security-policy", "")
    check("frame-ancestors 'self'" in csp and "script-src" not in csp and "default-src 'none'" in csp,
          f"login page CSP allows no script: {csp}")
    check(headers.get("x-content-type-options") == "nosniff", "nosniff")
    check(b"<script" not in body and b"http://" not in body and b"https://" not in body,
          "no script and no external assets")
    check(b'<label for="username_input">' in body and b'<label for="password_input">' in body,
          "inputs have labels")
    status, headers, _ = c.get("/hub/static/hubd.css")
    check(status == 200 and headers["content-type"].startswith("text/css"), "the stylesheet is served")
    status, headers, body = c.get("/hub/logo")
    check(status == 200 and headers["content-type"] == "image/svg+xml" and body.startswith(b"<svg"),
          "/hub/logo is served (notebook pages embed it)")
    status, headers, body = c.get("/hub/nowhere")
    check(status == 404 and b"Not found" in body, "unknown hub page -> 404 page")


def test_login_logout(hub):
    c, status, headers, _ = login(hub)
    check(status == 302 and headers["location"] == "/hub/home", "login -> /hub/home")
    cookie = [v for v in c.set_cookies if v.startswith("jupyterhub-hub-login=")]
    check(cookie and "HttpOnly" in cookie[0] and "Path=/hub/" in cookie[0] and "SameSite=Lax" in cookie[0],
          f"login cookie attributes: {cookie}")
    status, headers, body = c.get("/hub/home")
    check(status == 200 and b"ann" in body and b"not running" in body, "home shows the user and the server state")
    check(b"admin-access-notice" not in body and b"Administrators of this hub" not in body,
          "admin_access off: home shows no admin-access notice")
    status, headers, _ = c.get("/hub/login")
    check(status == 302, "a logged-in user visiting /hub/login is sent on")
    status, headers, _ = c.get("/hub/logout")
    check(status == 302 and "jupyterhub-hub-login" not in c.cookies, "logout clears the login cookie")
    status, headers, _ = c.get("/hub/home")
    check(status == 302 and "/hub/login" in headers["location"], "after logout home asks for a login")
    c, status, _, body = login(hub, password="nope")
    check(status == 200 and b"Invalid username or password" in body and "jupyterhub-hub-login" not in c.cookies,
          "a wrong password shows the form again with a neutral error")
    c, status, _, body = login(hub, name="mallory")
    check(status == 200 and b"Invalid username or password" in body, "a blocked user gets the same neutral error")
    c, status, _, body = login(hub, name="bad/name")
    check(status == 200 and b"Invalid username or password" in body, "an invalid name gets the same neutral error")


def test_admin_access_notice():
    """The seeds: "as a courtesy, you should make sure your users know if admin_access is enabled"."""
    with hubtest.Hub(config=CONFIG + "c.JupyterHub.admin_access = True\n") as h:
        c, status, _, _ = login(h)
        status, _, body = c.get("/hub/home")
        check(status == 200 and b'id="admin-access-notice"' in body and
              b"Administrators of this hub can open your server" in body and b"runs as you" in body,
              "admin_access on: home tells the user that admins can open their server")


def test_next_is_local_only(hub):
    c, status, headers, _ = login(hub, next_="/hub/token")
    check(status == 302 and headers["location"] == "/hub/token", "a local next is honoured")
    c, status, headers, _ = login(hub, next_="/user/ann/tree")
    check(status == 302 and headers["location"] == "/hub/user/ann/tree", "/user/... goes through /hub/user/...")
    for evil in ("//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example",
                 "https://evil.example/", "https:%2F%2Fevil.example", "%2F%2Fevil.example", "javascript:alert(1)",
                 "HTTPS://EVIL.EXAMPLE", "/%09/evil.example", "/\t/evil.example"):
        c, status, headers, _ = login(hub, next_=urllib.parse.quote(evil, safe=""))
        loc = headers.get("location", "")
        # What a browser would do with it: WHATWG URL parsing drops tabs and
        # newlines and treats backslashes as slashes.
        seen = loc.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
        split = urllib.parse.urlsplit(seen)
        check(status == 302 and seen.startswith("/") and not seen.startswith("//") and not split.scheme
              and not split.netloc, f"next={evil!r} ends on a local page ({loc!r})")


def test_user_paths(hub):
    c, _, _, _ = login(hub)
    status, headers, _ = c.get("/user/ann/tree")
    check(status == 302 and headers["location"] == "/hub/user/ann/tree", "/user/ann/... -> /hub/user/ann/...")
    status, headers, body = c.get("/hub/user/ann/tree")
    check(status == 424 and b"not running" in body, "own stopped server -> 424 page offering a start")
    status, headers, body = c.get("/hub/user/bob/tree")
    check(status == 403, "someone else's server -> 403")
    status, headers, body = c.get("/hub/user/ann/api/status", headers={"Accept": "application/json"})
    check(status == 424 and b'"status":424' in body, "JSON clients get a JSON 424")
    anon = hub.client()
    status, headers, _ = anon.get("/hub/user/ann/tree")
    check(status == 302 and headers["location"].startswith("/hub/login?next="), "anonymous -> login")


if __name__ == "__main__":
    hubtest.require_hubd()
    with hubtest.Hub(config=CONFIG) as h:
        hubtest.main([(f.__name__, lambda f=f: f(h)) for f in
                      (test_redirects_and_headers, test_login_logout, test_next_is_local_only, test_user_paths)]
                     + [test_admin_access_notice])
