#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Groups, services and shutdown in JupyterHub 3.0's API, and RBAC edge cases.

Runs hubd with DummyAuthenticator and services/roles configured the way
JupyterHub admins write them, then checks, against
shared/reference/jupyterhub-3.0-contract.md (section 4):
* the groups API (list with pagination, bulk and single create, members,
  properties, delete) and its scopes with !group= filters;
* list:users / read:servers filtered by !group= and !server=;
* the services API and its key filtering;
* that nobody is raised above the requester: admin:users cannot make anyone
  (itself included) a full admin (CVE-2024-41942), nor give roles or groups
  carrying roles whose scopes it lacks, nor mint tokens beyond its owner;
* POST /api/shutdown: 403 without the scope, 202 and a clean exit with it.
Root not needed.
"""
import secrets

import hubtest
from hubtest import check

ADMIN = secrets.token_hex(32)
GREADER = secrets.token_hex(32)
GMGR = secrets.token_hex(32)
TEAMWATCH = secrets.token_hex(32)
SRVREADER = secrets.token_hex(32)
SVCLISTER = secrets.token_hex(32)
STOPPER = secrets.token_hex(32)
UMGR = secrets.token_hex(32)
ZOE = secrets.token_hex(32)

CONFIG = f"""
c = get_config()
c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = 'pw'
c.Authenticator.admin_users = {{'zoe'}}
c.Authenticator.allowed_users = {{'ann', 'ben', 'hal', 'umgr'}}
c.JupyterHub.api_tokens = {{'{UMGR}': 'umgr', '{ZOE}': 'zoe'}}
c.JupyterHub.services = [
    {{'name': 'svc', 'api_token': '{ADMIN}'}},
    {{'name': 'greader', 'api_token': '{GREADER}'}},
    {{'name': 'gmgr', 'api_token': '{GMGR}'}},
    {{'name': 'teamwatch', 'api_token': '{TEAMWATCH}'}},
    {{'name': 'srvreader', 'api_token': '{SRVREADER}'}},
    {{'name': 'svclister', 'api_token': '{SVCLISTER}', 'url': 'http://127.0.0.1:9/'}},
    {{'name': 'stopper', 'api_token': '{STOPPER}'}},
]
c.JupyterHub.load_roles = [
    {{'name': 'admin', 'services': ['svc'], 'groups': ['admingroup']}},
    {{'name': 'user-manager', 'scopes': ['admin:users'], 'users': ['umgr']}},
    {{'name': 'server-admins', 'scopes': ['admin:servers'], 'groups': ['powergroup']}},
    {{'name': 'group-reader', 'scopes': ['list:groups!group=team', 'read:groups!group=team'],
      'services': ['greader']}},
    {{'name': 'team-managers', 'scopes': ['groups!group=team'], 'services': ['gmgr']}},
    {{'name': 'team-watch', 'scopes': ['list:users!group=team', 'read:servers!group=team'],
      'services': ['teamwatch']}},
    {{'name': 'one-server', 'scopes': ['read:servers!server=ann/'], 'services': ['srvreader']}},
    {{'name': 'service-lister', 'scopes': ['list:services'], 'services': ['svclister']}},
    {{'name': 'stop-the-hub', 'scopes': ['shutdown'], 'services': ['stopper']}},
]
"""

GROUP_KEYS = {"kind", "name", "roles", "users", "properties"}
HUB = None


def api(method, path, token=ADMIN, **kw):
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"token {token}"
    return HUB.client().json(method, "/hub/api" + path, headers=headers, **kw)


def test_groups_crud():
    status, body, _ = api("POST", "/groups", json={"groups": ["team", "other"], "users": ["ann"]})
    check(status == 201 and [g["name"] for g in body] == ["team", "other"], f"POST /groups creates two -> 201 ({status})")
    check(all(set(g) == GROUP_KEYS and g["kind"] == "group" and g["users"] == ["ann"] for g in body),
          f"group models have 3.0's keys (+ properties) and the members: {body}")
    status, body, _ = api("POST", "/groups", json={"groups": ["team"]})
    check(status == 409, f"POST /groups with an existing group -> 409 ({status})")
    status, body, _ = api("POST", "/groups", json={"groups": []})
    check(status == 400, "POST /groups without groups -> 400")
    status, body, _ = api("POST", "/groups", json={"groups": ["x"], "users": ["nobody"]})
    check(status == 400 and "nobody" in body["message"], "POST /groups with an unknown user -> 400 naming it")
    status, body, _ = api("GET", "/groups/x")
    check(status == 404, "...and nothing was created")
    status, body, _ = api("POST", "/groups/solo")
    check(status == 201 and body["name"] == "solo" and body["users"] == [] and body["properties"] == {},
          f"POST /groups/solo -> 201 model ({status} {body})")
    status, body, _ = api("POST", "/groups/solo", json={"users": []})
    check(status == 409, "POST /groups/solo again -> 409")
    status, body, _ = api("POST", "/groups/bad%01name")
    check(status == 400, f"a group name with a control character -> 400 ({status})")
    status, body, _ = api("GET", "/groups")
    names = [g["name"] for g in body]
    check(status == 200 and {"team", "other", "solo", "admingroup", "powergroup"} <= set(names),
          f"GET /groups lists them, and groups named by load_roles ({names})")
    pag = {"Accept": "application/jupyterhub-pagination+json"}
    status, body, _ = api("GET", "/groups?limit=2", headers=pag)
    p = body["_pagination"]
    check(status == 200 and len(body["items"]) == 2 and p["total"] == len(names) and p["next"]["offset"] == 2
          and "offset=2" in p["next"]["url"], f"GET /groups paginates like /users: {p}")
    status, body, _ = api("GET", "/groups/team")
    check(status == 200 and body["users"] == ["ann"], "GET /groups/team")
    status, body, _ = api("GET", "/groups/admingroup")
    check(body["roles"] == ["admin"], f"a group's roles come from load_roles ({body.get('roles')})")
    status, body, _ = api("GET", "/groups/nope")
    check(status == 404 and body["status"] == 404, "GET an unknown group -> 404")

    status, body, _ = api("POST", "/groups/team/users", json={"users": ["ben"]})
    check(status == 200 and body["users"] == ["ann", "ben"], f"POST /groups/team/users adds ben -> 200 ({body})")
    status, body, _ = api("POST", "/groups/team/users", json={"users": ["ghost"]})
    check(status == 400, "adding an unknown user -> 400")
    status, body, _ = api("POST", "/groups/team/users", json={})
    check(status == 400, "POST .../users without users -> 400")
    status, body, _ = api("DELETE", "/groups/team/users", json={"users": ["ann"]})
    check(status == 200 and body["users"] == ["ben"], "DELETE /groups/team/users removes ann -> 200")
    status, body, _ = api("GET", "/users/ben")
    check(body["groups"] == ["team"], f"ben's user model lists the group ({body.get('groups')})")
    status, body, _ = api("GET", "/users/ann")
    check(body["groups"] == ["other"], f"ann's lists only the other group she is in ({body.get('groups')})")

    status, body, _ = api("PUT", "/groups/team/properties", json={"course": "CS101", "seats": 30})
    check(status == 200 and body["properties"] == {"course": "CS101", "seats": 30}, "PUT properties -> 200")
    status, body, _ = api("PUT", "/groups/team/properties", json=["not", "a", "dict"])
    check(status == 400, "properties that are not an object -> 400")
    status, body, _ = api("GET", "/groups/team")
    check(body["properties"] == {"course": "CS101", "seats": 30}, "properties are kept")

    status, body, _ = api("PATCH", "/users/ann", json={"groups": ["team", "solo"]})
    check(status == 200 and sorted(body["groups"]) == ["solo", "team"],
          f"PATCH /users/ann groups replaces her groups ({body.get('groups')})")
    status, body, _ = api("GET", "/groups/team")
    check(body["users"] == ["ann", "ben"], "...and the group sees ann")
    status, body, _ = api("PATCH", "/users/ann", json={"admin": False})
    status, body, _ = api("GET", "/users/ann")
    check(sorted(body["groups"]) == ["solo", "team"], "a later PATCH of another key keeps the groups")
    status, body, _ = api("PATCH", "/users/ann", json={"groups": ["nope"]})
    check(status == 400, "PATCH groups naming an unknown group -> 400")

    status, _, _ = api("DELETE", "/groups/solo")
    check(status == 204, "DELETE /groups/solo -> 204")
    status, _, _ = api("DELETE", "/groups/solo")
    check(status == 404, "DELETE again -> 404")
    status, body, _ = api("GET", "/users/ann")
    check(body["groups"] == ["team"], "a deleted group leaves its members' models")


def test_group_scopes_and_filters():
    status, body, _ = api("GET", "/groups", token=GREADER)
    check(status == 200 and [g["name"] for g in body] == ["team"], f"list:groups!group=team lists only team ({body})")
    check(set(body[0]) == {"kind", "name", "users", "properties"}, f"read:groups shows users, not roles: {body[0]}")
    status, _, _ = api("GET", "/groups/team", token=GREADER)
    check(status == 200, "read:groups!group=team reads team")
    status, _, _ = api("GET", "/groups/other", token=GREADER)
    check(status == 404, "...but not other (404)")
    status, _, _ = api("POST", "/groups/new", token=GREADER)
    check(status == 403, "creating a group needs admin:groups (403)")
    status, body, _ = api("POST", "/groups/team/users", token=GMGR, json={"users": ["hal"]})
    check(status == 200 and "hal" in body["users"], "groups!group=team adds members to team")
    status, _, _ = api("POST", "/groups/other/users", token=GMGR, json={"users": ["hal"]})
    check(status == 404, "...not to other (404)")
    status, _, _ = api("DELETE", "/groups/team", token=GMGR)
    check(status == 403, "groups does not include delete:groups (403)")
    status, _, _ = api("PUT", "/groups/team/properties", token=GMGR, json={"k": 1})
    check(status == 200, "groups!group=team sets team's properties")
    status, body, _ = api("GET", "/groups", token=TEAMWATCH)
    check(status == 403 and "list:groups" in body["message"], "list:users does not list groups (403)")

    status, body, _ = api("GET", "/users", token=TEAMWATCH)
    check(status == 200 and sorted(u["name"] for u in body) == ["ann", "ben", "hal"],
          f"list:users!group=team lists exactly team's members ({[u['name'] for u in body]})")
    status, body, _ = api("GET", "/users/ben", token=TEAMWATCH)
    check(status == 200 and "servers" in body, "read:servers!group=team reads a member's servers")
    status, _, _ = api("GET", "/users/zoe", token=TEAMWATCH)
    check(status == 404, "...not a non-member's (404)")
    api("DELETE", "/groups/team/users", json={"users": ["hal"]})
    status, _, _ = api("GET", "/users/hal", token=TEAMWATCH)
    check(status == 404, "leaving the group ends the access at once")

    status, body, _ = api("GET", "/users/ann", token=SRVREADER)
    check(status == 200 and "servers" in body and "groups" not in body,
          f"read:servers!server=ann/ reads ann's servers and nothing more ({sorted(body or {})})")
    status, _, _ = api("GET", "/users/ben", token=SRVREADER)
    check(status == 404, "...not ben's (404)")
    status, body, _ = api("GET", "/user", token=SRVREADER)
    check("read:servers!server=ann/" in body["scopes"] and "read:users:name!server=ann/" in body["scopes"],
          f"the !server= filter carries to subscopes: {body['scopes']}")


def test_services():
    status, body, _ = api("GET", "/services")
    check(status == 200 and isinstance(body, dict) and {"svc", "svclister", "stopper"} <= set(body),
          f"GET /services -> {{name: model}} ({sorted(body or {})})")
    model = body.get("svclister", {})
    check(set(model) == {"kind", "name", "admin", "roles", "url", "prefix", "command", "pid", "info", "display"}
          and model["kind"] == "service" and model["roles"] == ["service-lister"], f"3.0's service model: {model}")
    check(model["url"] == "http://127.0.0.1:9/" and model["prefix"] == "/services/svclister/",
          "url and prefix of a service with a url")
    check(body["svc"]["admin"] is False and body["svc"]["prefix"] == "", "a service without url has no prefix")
    status, body, _ = api("GET", "/services/stopper")
    check(status == 200 and body["name"] == "stopper" and body["roles"] == ["stop-the-hub"], "GET /services/stopper")
    status, body, _ = api("GET", "/services/nope")
    check(status == 404, f"an unknown service -> 404 (3.0 says 500) ({status})")
    status, body, _ = api("GET", "/services", token=SVCLISTER)
    check(status == 200 and all(set(m) == {"kind", "name", "admin"} for m in body.values()),
          "list:services alone shows kind, name, admin")
    status, body, _ = api("GET", "/services/svc", token=SVCLISTER)
    check(status == 200 and set(body) == {"kind", "name", "admin"}, "read:services:name reads one service briefly")
    status, body, _ = api("GET", "/services", token=GREADER)
    check(status == 403 and "list:services" in body["message"], "without list:services -> 403")
    status, _, _ = api("POST", "/services")
    check(status == 405, "POST /services -> 405")


def test_admin_users_cannot_escalate():
    # umgr is a *user* holding admin:users through a role (not an admin).
    status, body, _ = api("GET", "/user", token=UMGR)
    check(status == 200 and body["name"] == "umgr" and "admin:users" in body["scopes"] and body["admin"] is False,
          "umgr holds admin:users and is not an admin")
    # CVE-2024-41942: admin:users must not reach full admin, for itself or anyone.
    for who in ("umgr", "hal"):
        status, body, _ = api("PATCH", f"/users/{who}", token=UMGR, json={"admin": True})
        check(status == 403, f"admin:users cannot set admin=true on {who} ({status})")
        status, body, _ = api("PATCH", f"/users/{who}", token=UMGR, json={"roles": ["user", "admin"]})
        check(status == 403, f"...nor give {who} the admin role ({status})")
        status, body, _ = api("PATCH", f"/users/{who}", token=UMGR, json={"roles": ["user", "server-admins"]})
        check(status == 403 and "admin:servers" in body["message"],
              f"...nor a role with scopes umgr lacks ({body.get('message')})")
        status, body, _ = api("PATCH", f"/users/{who}", token=UMGR, json={"groups": ["admingroup"]})
        check(status == 403, f"...nor put {who} in a group with the admin role ({status})")
        status, body, _ = api("PATCH", f"/users/{who}", token=UMGR, json={"groups": ["powergroup"]})
        check(status == 403, f"...nor in a group whose role grants admin:servers ({status})")
    status, body, _ = api("POST", "/groups/powergroup/users", json={"users": ["ben"]}, token=GMGR)
    check(status == 404, "a manager of another group cannot add to powergroup")
    status, body, _ = api("GET", "/users/umgr")
    check(body["admin"] is False and body["roles"] == ["user", "user-manager"] and body["groups"] == [],
          f"umgr is unchanged: {body.get('admin')} {body.get('roles')} {body.get('groups')}")
    status, body, _ = api("GET", "/user", token=UMGR)
    check("admin:servers" not in body["scopes"] and "shutdown" not in body["scopes"], "...and so are its scopes")
    status, body, _ = api("PATCH", "/users/hal", token=UMGR, json={"roles": ["user", "user-manager"]})
    check(status == 200 and body["roles"] == ["user", "user-manager"],
          "a role whose scopes umgr holds may be given (no escalation)")
    status, body, _ = api("PATCH", "/users/hal", token=UMGR, json={"groups": ["other"]})
    check(status == 200 and body["groups"] == ["other"], "groups without roles may be set with admin:users")

    status, body, _ = api("POST", "/users/umgr/tokens", token=UMGR, json={"scopes": ["admin:servers"]})
    check(status == 400 and "admin:servers" in body["message"], "no token with scopes the owner lacks (400)")
    status, body, _ = api("POST", "/users/umgr/tokens", token=UMGR, json={"roles": ["admin"]})
    check(status == 400, "no token with the admin role for a non-admin (400)")
    status, body, _ = api("POST", "/users/umgr/tokens", token=UMGR, json={"scopes": ["read:users"]})
    check(status == 201 and body["scopes"] and all(s.startswith("read:users") for s in body["scopes"]),
          f"a token within the owner's scopes is fine ({body.get('scopes')})")

    # Full admins can: an admin service, and an admin user (even without admin_access).
    status, body, _ = api("PATCH", "/users/hal", json={"roles": ["user", "server-admins"]})
    check(status == 200 and body["roles"] == ["user", "server-admins"], f"a full admin gives roles ({body})")
    status, body, _ = api("PATCH", "/users/hal", json={"roles": ["user"], "admin": True})
    check(status == 400, "admin and roles that disagree -> 400")
    status, body, _ = api("PATCH", "/users/hal", token=ZOE, json={"admin": True})
    check(status == 200 and body["admin"] is True and "admin" in body["roles"], "admin user zoe makes hal admin")
    status, body, _ = api("PATCH", "/users/hal", token=ZOE, json={"roles": ["user"]})
    check(status == 200 and body["admin"] is False, "removing the admin role clears admin")
    status, body, _ = api("PATCH", "/users/ben", token=ZOE, json={"groups": ["team", "powergroup"]})
    check(status == 200 and sorted(body["groups"]) == ["powergroup", "team"], "an admin puts ben in powergroup")
    status, body, _ = api("POST", "/users/ben/tokens", json={"scopes": ["admin:servers"]})
    check(status == 201, "...whose role now lets ben hold admin:servers")


def test_shutdown():
    status, body, _ = api("POST", "/shutdown", token=GREADER)
    check(status == 403 and "shutdown" in body["message"], "POST /shutdown without the scope -> 403")
    status, _, _ = api("GET", "/shutdown", token=STOPPER)
    check(status == 405, "GET /shutdown -> 405")
    status, body, _ = api("POST", "/shutdown", token=STOPPER, json={"servers": "yes"})
    check(status == 400, "servers must be a boolean -> 400")
    status, body, _ = api("POST", "/shutdown", token=STOPPER, json={"now": True})
    check(status == 400, "an unknown key -> 400")
    check(HUB.running(), "the hub is still up after refused shutdowns")
    status, body, headers = api("POST", "/shutdown", token=STOPPER, json={"proxy": True, "servers": False})
    check(status == 202 and body == {"message": "Shutting down Hub"}, f"POST /shutdown -> 202 ({status} {body})")
    rc = HUB.wait_exit(timeout=10)
    check(rc == 0, f"hubd exits by itself with status 0 ({rc})")
    log = HUB.log_text()
    check("Shutting down on request" in log and "hubd stopped" in log, "the log says why it stopped")


def run_all():
    global HUB
    hubtest.require_hubd()
    with hubtest.Hub(config=CONFIG) as hub:
        HUB = hub
        hubtest.main([test_groups_crud, test_group_scopes_and_filters, test_services,
                      test_admin_users_cannot_escalate, test_shutdown])


if __name__ == "__main__":
    run_all()
