#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The JupyterHub 3.0 REST API: status codes, JSON keys, scopes, pagination.

Runs hubd with DummyAuthenticator and API clients configured the way
JupyterHub admins write them (JupyterHub.services + load_roles), then plays an
API client. Expected values come from shared/reference/jupyterhub-3.0-contract.md.
Root not needed.
"""
import json
import re
import secrets
import urllib.parse

import hubtest
from hubtest import check

ADMIN_TOKEN = secrets.token_hex(32)
LISTER_TOKEN = secrets.token_hex(32)
USERMGR_TOKEN = secrets.token_hex(32)
CONFIG = f"""
c = get_config()
c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = 'pw'
c.Authenticator.admin_users = {{'zoe'}}
c.JupyterHub.spawner_class = 'sudospawner.SudoSpawner'
c.SudoSpawner.sudospawner_path = '/nonexistent/sudospawner'
c.JupyterHub.services = [
    {{'name': 'svc', 'api_token': '{ADMIN_TOKEN}'}},
    {{'name': 'lister', 'api_token': '{LISTER_TOKEN}'}},
    {{'name': 'usermgr', 'api_token': '{USERMGR_TOKEN}'}},
]
c.JupyterHub.load_roles = [
    {{'name': 'admin', 'services': ['svc']}},
    {{'name': 'list-only', 'scopes': ['list:users'], 'services': ['lister']}},
    {{'name': 'user-managers', 'scopes': ['admin:users'], 'services': ['usermgr']}},
]
"""

USER_KEYS = {"kind", "name", "admin", "roles", "groups", "server", "pending", "created", "last_activity", "servers"}
TOKEN_KEYS = {"user", "id", "kind", "roles", "scopes", "created", "last_activity", "expires_at", "note",
              "session_id", "oauth_client"}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")

HUB = None


def auth(token):
    return {"Authorization": f"token {token}"}


def admin():
    return auth(ADMIN_TOKEN)


def api(method, path, token=ADMIN_TOKEN, **kw):
    headers = dict(kw.pop("headers", {}))
    if token:
        headers.update(auth(token))
    return HUB.client().json(method, "/hub/api" + path, headers=headers, **kw)


def test_version_without_auth():
    c = HUB.client()
    for path in ("/hub/api", "/hub/api/"):
        status, body, headers = c.json("GET", path)
        check(status == 200 and body == {"version": "3.0.0"}, f"GET {path} -> 200 {{'version': '3.0.0'}}")
        check(headers.get("x-jupyterhub-version") == "3.0.0", f"GET {path} sends X-JupyterHub-Version")
        check(headers.get("content-type", "").startswith("application/json"), f"GET {path} is JSON")
    status, _, headers = c.json("OPTIONS", "/hub/api/users")
    check(status == 200, "OPTIONS on an API route -> 200")
    status, headers, _ = c.get("/hub/login")
    check(headers.get("x-jupyterhub-version") == "3.0.0", "pages send X-JupyterHub-Version too")


def test_info_needs_read_hub():
    status, body, _ = api("GET", "/info", token=None)
    check(status == 403 and body and body.get("status") == 403 and "message" in body,
          "GET /info without a token -> 403 with {status, message}")
    status, body, _ = api("GET", "/info")
    check(status == 200, "GET /info with the admin service token -> 200")
    check(body and {"version", "python", "sys_executable", "spawner", "authenticator"} <= set(body),
          f"info has 3.0's keys: {sorted(body or {})}")
    check(body and set(body["authenticator"]) >= {"class", "version"}, "info.authenticator has class and version")
    check(body and "DummyAuthenticator" in body["authenticator"]["class"], "info names the DummyAuthenticator")


def test_config_users_and_service_identity():
    status, body, _ = api("GET", "/user")
    check(status == 200 and body["kind"] == "service" and body["name"] == "svc", "GET /user as service svc")
    check("admin:users" in body["scopes"] and "list:users" in body["scopes"],
          "svc holds the admin role's scopes through load_roles")
    status, body, _ = api("GET", "/users/zoe")
    check(status == 200 and body["admin"] is True, "admin_users from the config exist and are admins")


def test_list_and_pagination():
    status, body, _ = api("POST", "/users", json={"usernames": [f"page{i:03d}" for i in range(100)]})
    check(status == 201 and len(body) == 100, "POST /users creates 100 users -> 201 with 100 models")
    status, body, _ = api("GET", "/users")
    check(status == 200 and isinstance(body, list) and len(body) == 101, f"GET /users lists all ({len(body)})")
    check(all(USER_KEYS <= set(u) for u in body), "every listed user has 3.0's keys")
    check(all(ISO.match(u["created"]) for u in body), "created is ISO 8601 with Z")
    pag = {"Accept": "application/jupyterhub-pagination+json"}
    status, body, _ = api("GET", "/users?limit=30&offset=60", headers=pag)
    check(status == 200 and set(body) == {"items", "_pagination"}, "paginated form has items and _pagination")
    p = body["_pagination"]
    check(p["offset"] == 60 and p["limit"] == 30 and p["total"] == 101 and len(body["items"]) == 30,
          f"_pagination offset/limit/total: {p}")
    check(p["next"] and p["next"]["offset"] == 90 and "offset=90" in p["next"]["url"], "next points at offset 90")
    status, body, _ = api("GET", "/users?offset=90&limit=30", headers=pag)
    check(body["_pagination"]["next"] is None and len(body["items"]) == 11, "the last page has next = null")
    status, body, _ = api("GET", "/users", headers=pag)
    check(body["_pagination"]["limit"] == 50 and len(body["items"]) == 50, "default page size is 50")
    status, body, _ = api("GET", "/users?name_filter=page01")
    check(status == 200 and sorted(u["name"] for u in body) == [f"page{i:03d}" for i in range(10, 20)],
          "name_filter selects by substring")
    status, body, _ = api("GET", "/users?state=ready")
    check(status == 200 and body == [], "state=ready: no running servers yet")
    status, body, _ = api("GET", "/users?state=bogus")
    check(status == 400, "an unknown state filter -> 400")
    status, body, _ = api("GET", "/users?limit=-1")
    check(status == 400, "a negative limit -> 400")
    status, body, _ = api("GET", "/users", token=LISTER_TOKEN)
    check(status == 200 and all(set(u) == {"kind", "name", "admin"} for u in body),
          "list:users alone shows only kind, name, admin")


def test_create_get_patch_delete():
    status, body, _ = api("POST", "/users", json={"usernames": ["ann", "ben"], "admin": False})
    check(status == 201 and [u["name"] for u in body] == ["ann", "ben"], "bulk create -> 201")
    status, body, _ = api("POST", "/users", json={"usernames": ["ann", "ben"]})
    check(status == 409 and body["status"] == 409, "bulk create of existing users -> 409")
    status, body, _ = api("POST", "/users", json={"usernames": ["ok", "bad/name"]})
    check(status == 400, "an invalid name in a bulk create -> 400")
    status, body, _ = api("GET", "/users/ok")
    check(status == 404, "...and nothing was created")
    status, body, _ = api("POST", "/users", json={})
    check(status == 400, "POST /users without usernames -> 400")
    status, body, _ = api("POST", "/users/cat", json={"admin": True})
    check(status == 201 and body["name"] == "cat" and body["admin"] is True, "POST /users/cat -> 201 admin")
    status, body, _ = api("POST", "/users/cat")
    check(status == 409, "POST /users/cat again -> 409")
    status, body, _ = api("GET", "/users/cat")
    check(status == 200 and USER_KEYS <= set(body) and "auth_state" in body, f"GET /users/cat keys {sorted(body)}")
    check(body["servers"] == {} and body["server"] is None and body["pending"] is None, "no server yet")
    status, body, _ = api("GET", "/users/nobody")
    check(status == 404 and body["status"] == 404, "GET an unknown user -> 404")
    status, body, _ = api("PATCH", "/users/cat", json={"admin": False, "name": "cathy"})
    check(status == 200 and body["name"] == "cathy" and body["admin"] is False, "PATCH rename + admin -> 200")
    status, body, _ = api("PATCH", "/users/cathy", json={"name": "ann"})
    check(status == 400, "PATCH to an existing name -> 400")
    status, body, _ = api("PATCH", "/users/cathy", json={"colour": "blue"})
    check(status == 400, "PATCH with an unknown key -> 400")
    status, body, _ = api("DELETE", "/users/cathy")
    check(status == 204, "DELETE /users/cathy -> 204")
    status, body, _ = api("GET", "/users/cathy")
    check(status == 404, "...and she is gone")
    status, body, _ = api("DELETE", "/users/cathy")
    check(status == 404, "DELETE again -> 404")


def test_tokens_and_user_scopes():
    api("POST", "/users", json={"usernames": ["dee", "eve"]})
    status, body, _ = api("POST", "/users/dee/tokens", json={"note": "laptop", "expires_in": 3600})
    check(status == 201 and TOKEN_KEYS <= set(body) and "token" in body, "POST tokens -> 201 with token")
    check(body["id"].startswith("a") and body["note"] == "laptop" and body["user"] == "dee", "token model values")
    check(body["expires_at"] and ISO.match(body["expires_at"]), "expires_at is set")
    dee_token, dee_id = body["token"], body["id"]
    status, body, _ = api("GET", "/users/dee/tokens")
    check(status == 200 and dee_id in [t["id"] for t in body["api_tokens"]], "GET tokens lists it")
    check(all("token" not in t for t in body["api_tokens"]), "listing never shows a token value")
    status, body, _ = api("GET", f"/users/dee/tokens/{dee_id}")
    check(status == 200 and body["id"] == dee_id and "token" not in body, "GET one token")
    status, body, _ = api("GET", f"/users/eve/tokens/{dee_id}")
    check(status == 404, "dee's token id under eve -> 404")

    status, body, _ = api("GET", "/user", token=dee_token)
    check(status == 200 and body["name"] == "dee" and body["kind"] == "user", "GET /user with dee's token")
    check("read:users!user=dee" in body["scopes"] and "access:servers!user=dee" in body["scopes"],
          "dee's scopes are filtered to dee")
    check("session_id" in body and body["admin"] is False, "GET /user has session_id and admin")
    status, body, _ = api("GET", "/users", token=dee_token)
    check(status == 403 and "list:users" in body["message"], "a user token cannot list users (403 names the scope)")
    status, body, _ = api("GET", "/users/eve", token=dee_token)
    check(status == 404, "a user token cannot read another user (404)")
    status, body, _ = api("GET", "/users/dee", token=dee_token)
    check(status == 200 and body["name"] == "dee", "a user token reads its own user")
    status, body, _ = api("POST", "/users/eve/tokens", token=dee_token, json={})
    check(status == 404, "dee cannot make tokens for eve")
    status, body, _ = api("DELETE", "/users/eve", token=dee_token)
    check(status == 403, "dee cannot delete eve")
    status, body, _ = api("POST", "/users", token=dee_token, json={"usernames": ["mallory"]})
    check(status == 403, "dee cannot create users")
    status, body, _ = api("POST", "/users/dee/tokens", token=dee_token, json={"scopes": ["admin:users"]})
    check(status == 400 and "admin:users" in body["message"], "dee cannot mint a token with scopes dee lacks")
    status, body, _ = api("POST", "/users/dee/tokens", token=dee_token, json={"scopes": ["read:users!user=dee"]})
    check(status == 201 and body["scopes"] == ["read:users!user=dee", "read:users:activity!user=dee",
                                              "read:users:groups!user=dee", "read:users:name!user=dee"],
          f"a narrower token holds exactly its expanded scopes: {body.get('scopes')}")
    narrow = body["token"]
    status, body, _ = api("POST", "/users/dee/activity", token=narrow,
                          json={"last_activity": "2026-01-01T00:00:00Z"})
    check(status == 403, "the narrow token cannot post activity")

    status, body, _ = api("DELETE", f"/users/dee/tokens/{dee_id}", token=dee_token)
    check(status == 204, "dee revokes her own token -> 204")
    status, body, _ = api("GET", "/user", token=dee_token)
    check(status == 403, "the revoked token no longer works")
    status, body, _ = api("GET", "/user", token=dee_token[:-1] + ("0" if dee_token[-1] != "0" else "1"))
    check(status == 403, "a token with one character changed does not work")


def test_token_via_password():
    api("POST", "/users", json={"usernames": ["fay"]})
    status, body, _ = api("POST", "/users/fay/tokens", token=None,
                          json={"auth": {"username": "fay", "password": "pw"}, "note": "cli"})
    check(status == 201 and body.get("user") == "fay" and body.get("token"), "POST tokens with {auth} -> 201")
    status, body, _ = api("POST", "/users/fay/tokens", token=None,
                          json={"auth": {"username": "fay", "password": "wrong"}})
    check(status == 403, "{auth} with a wrong password -> 403")
    status, body, _ = api("POST", "/users/zoe/tokens", token=None,
                          json={"auth": {"username": "fay", "password": "pw"}})
    check(status == 403, "fay's password does not make tokens for zoe")


def test_activity():
    api("POST", "/users", json={"usernames": ["gus"]})
    status, body, _ = api("GET", "/users/gus")  # a cached model must not outlive the change below
    check(body["last_activity"] is None, "gus has no activity yet")
    status, _, _ = api("POST", "/users/gus/activity",
                       json={"last_activity": "2026-01-02T03:04:05.000006Z", "servers": {"": {}}})
    check(status == 200, "POST activity -> 200")
    status, body, _ = api("GET", "/users/gus")
    check(body["last_activity"] == "2026-01-02T03:04:05.000006Z", f"last_activity updated: {body['last_activity']}")
    status, _, _ = api("POST", "/users/gus/activity", json={"last_activity": "2099-01-01T00:00:00Z"})
    check(status == 400, "activity in the future -> 400")
    status, _, _ = api("POST", "/users/gus/activity", json={"servers": {"nope": {}}})
    check(status == 400, "activity for an unknown server -> 400")


def test_cookie_auth_needs_xsrf_token():
    c = HUB.client()
    status, headers, body = c.get("/hub/login")
    check(status == 200 and b'name="_xsrf"' in body, "the login form carries an _xsrf field")
    anonymous_token = c.xsrf_token()
    # Login CSRF: a form posted without the page's token (from another site) signs nobody in.
    status, _, body = c.post("/hub/login", form={"username": "zoe", "password": "pw"}, xsrf=False)
    check(status == 403 and "jupyterhub-hub-login" not in c.cookies and b"accepts cookies" in body, f"a login form without _xsrf -> 403, no session ({status})")
    stranger = HUB.client()
    stranger.get("/hub/login")
    status, _, _ = stranger.post("/hub/login", form={"username": "zoe", "password": "pw", "_xsrf": anonymous_token},
                                 xsrf=False)
    check(status == 403 and "jupyterhub-hub-login" not in stranger.cookies,
          "another browser's login token does not fit this browser's session")
    status, _, _ = c.post("/hub/login", form={"username": "zoe", "password": "pw"})
    check(status == 302 and "jupyterhub-hub-login" in c.cookies, "zoe logs in with the form and its token")
    token = c.xsrf_token()
    check(token and token != anonymous_token, "login issues a new token, bound to zoe's new session")

    own_page = {"Referer": f"{HUB.url}/hub/home"}
    status, body, _ = c.json("GET", "/hub/api/user", headers=own_page, xsrf=False)
    check(status == 403, "the login cookie with the hub's own Referer but no token does not authenticate API calls")
    # CVE-2026-40864: Sec-Fetch-* (and Origin) are not proof of same origin.
    fetch = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
             "Origin": HUB.url, **own_page}
    status, body, _ = c.json("GET", "/hub/api/user", headers=fetch, xsrf=False)
    check(status == 403, f"...nor with Sec-Fetch-Site: same-origin and Origin ({status})")
    status, body, _ = c.json("GET", "/hub/api/user", headers={"X-XSRFToken": anonymous_token}, xsrf=False)
    check(status == 403, "...nor with the token of the anonymous session before login")
    status, body, _ = c.json("GET", "/hub/api/user", headers={"X-XSRFToken": token})
    check(status == 200 and body["name"] == "zoe", "with X-XSRFToken it does")
    status, body, _ = c.json("GET", "/hub/api/user?_xsrf=" + urllib.parse.quote(token), xsrf=False)
    check(status == 200 and body["name"] == "zoe", "...and with ?_xsrf= (EventSource cannot send headers)")
    status, body, _ = c.json("POST", "/hub/api/users/zoe/tokens", json={"note": "x"},
                             headers={"Referer": f"{HUB.url}/hub/token"}, xsrf=False)
    check(status == 403, f"a cookie POST (token creation) without the token -> 403 ({status})")
    status, body, _ = c.json("POST", "/hub/api/users/zoe/tokens", json={"note": "x"})
    check(status in (200, 201) and body.get("token"), f"...and with it, it works ({status})")
    # A token with the right shape but signed for another session.
    forged = token.split("-")[0] + "-" + "0" * 64
    status, _, _ = c.json("GET", "/hub/api/user", headers={"X-XSRFToken": forged}, xsrf=False)
    check(status == 403, "a forged token -> 403")

    # Hub page forms: start and stop need the page's token.
    status, _, body = c.post("/hub/spawn", form={}, xsrf=False)
    check(status == 403 and b"XSRF check failed" in body, f"POST /hub/spawn without _xsrf -> 403 ({status})")
    status, _, body = c.post("/hub/stop", form={"_xsrf": anonymous_token}, xsrf=False)
    check(status == 403 and b"XSRF check failed" in body, f"POST /hub/stop with a stale token -> 403 ({status})")
    status, _, body = c.get("/hub/home")
    check(body.count(b'name="_xsrf"') >= 1, "the home page's form carries the token")

    # ?token= in a URL logs nobody in: not on hub pages, not through the API.
    api_token = c.json("POST", "/hub/api/users/zoe/tokens", json={"note": "url"})[1]["token"]
    fresh = HUB.client()
    status, headers, _ = fresh.get("/hub/home?token=" + api_token)
    check(status == 302 and "/hub/login" in headers.get("location", "") and not fresh.cookies.get(
        "jupyterhub-hub-login"), "GET /hub/home?token=<valid token> -> login page, no session cookie")
    status, _, _ = fresh.json("GET", "/hub/api/user?token=" + api_token)
    check(status in (401, 403), f"GET /hub/api/user?token=<valid token> -> {status}, not the user")
    status, _, _ = fresh.get(f"/user/zoe/?token={api_token}")
    check(status in (302, 403) and not fresh.cookies.get("jupyterhub-hub-login"),
          f"/user/zoe/?token=... is answered by the hub without logging in ({status})")


def test_errors_are_json():
    for method, path in (("GET", "/nope"), ("GET", "/users/zoe/nope"), ("DELETE", "/info")):
        status, body, _ = api(method, path)
        check(status in (404, 405) and body and body.get("status") == status and body.get("message"),
              f"{method} {path} -> {status} JSON error")
    status, body, _ = api("POST", "/users", body=b'{"usernames": ["x"', headers={"Content-Type": "application/json"})
    check(status == 400 and "JSON" in body["message"], "malformed JSON -> 400 naming the problem")
    # zoe has no Unix account here: sudo's own refusal reaches the API client
    # instead of "spawn failed".
    status, body, _ = api("POST", "/users/zoe/server")
    check(status == 500 and body and "sudo" in body["message"] and "zoe" in body["message"],
          f"a server that cannot start is reported with the reason: {status} {body}")
    status, body, _ = api("GET", "/users/zoe")
    check(body["server"] is None and body["pending"] is None, "...and the user has no server afterwards")
    status, headers, raw = HUB.client().get("/hub/api/users/zoe/server/progress", headers=auth(ADMIN_TOKEN))
    events = [json.loads(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: ")]
    check(status == 200 and headers.get("content-type") == "text/event-stream" and len(events) == 1
          and events[0].get("failed") is True and "sudo" in events[0].get("message", ""),
          f"the progress stream reports the failed start with its cause: {status} {events}")
    status, body, _ = api("GET", "/users/nobody-here/server/progress")
    check(status == 404, f"progress of an unknown user -> 404 ({status})")
    status, body, _ = api("GET", "/users/zoe/server/progress", token=USERMGR_TOKEN)
    check(status == 403, f"progress needs read:servers -> 403 ({status})")


def test_admin_users_scope_cannot_grant_admin():
    # CVE-2024-41942: admin:users must not be a path to full admin.
    status, body, _ = api("POST", "/users", token=USERMGR_TOKEN, json={"usernames": ["hal"], "admin": True})
    check(status == 403, "admin:users alone cannot create an admin user (bulk)")
    status, body, _ = api("POST", "/users/hal", token=USERMGR_TOKEN, json={"admin": True})
    check(status == 403, "admin:users alone cannot create an admin user")
    status, body, _ = api("POST", "/users/hal", token=USERMGR_TOKEN)
    check(status == 201 and body["admin"] is False, "admin:users can create an ordinary user")
    status, body, _ = api("PATCH", "/users/hal", token=USERMGR_TOKEN, json={"admin": True})
    check(status == 403, "admin:users alone cannot make a user admin")
    status, body, _ = api("GET", "/users/hal")
    check(body["admin"] is False, "...and hal is still not an admin")
    status, body, _ = api("PATCH", "/users/hal", json={"admin": True})
    check(status == 200 and body["admin"] is True, "a full admin can")


def test_thousand_users_in_one_call():
    names = [f"bulk{i:04d}" for i in range(1000)]
    status, body, _ = api("POST", "/users", json={"usernames": names})
    check(status == 201 and len(body) == 1000, "1,000 users in one POST -> 201")


def run_all():
    global HUB
    hubtest.require_hubd()
    with hubtest.Hub(config=CONFIG) as hub:
        HUB = hub
        hubtest.main([test_version_without_auth, test_info_needs_read_hub, test_config_users_and_service_identity,
                      test_list_and_pagination, test_create_get_patch_delete, test_tokens_and_user_scopes,
                      test_token_via_password, test_activity, test_cookie_auth_needs_xsrf_token,
                      test_errors_are_json, test_admin_users_scope_cannot_grant_admin,
                      test_thousand_users_in_one_call])


if __name__ == "__main__":
    run_all()
