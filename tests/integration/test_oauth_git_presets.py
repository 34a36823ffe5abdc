#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""GitHubOAuthenticator and GitLabOAuthenticator against stand-ins.

A stand-in GitHub and a stand-in GitLab (http.server on 127.0.0.1, used as
github_url / gitlab_url) answer the authorization (approving at once), the
token exchange, /user and the membership API, and record every path asked.
A stdlib client signs in through hubd's /hub/oauth_login and
/hub/oauth_callback to the hub cookie, as the mapped local Unix account.

Checked: members of an allowed organization, team, group, subgroup or
project (Developer) sign in; non-members are refused with a page; a GitLab
user who is only in 'evil-mygroup' / 'mygroup-x' is refused when 'mygroup' is
allowed (CVE-2018-7206); a membership API that answers 500, 200 with a body
(GitHub), a redirect elsewhere, or nothing within hubd's deadline admits
nobody (fail closed) and the log names the organization and the status;
hostile logins ('../x', 'a/b') never reach an API path; the access token is
never logged; the allow-list names OAuthenticator used before 0.12 stop
start-up.

Needs root (real Unix accounts for the mapping; exit 77 otherwise).
"""
import http.server
import json
import secrets
import threading
import time
import urllib.parse

import hubtest
from hubtest import check
from test_oidc_login import signed_in_as, through_provider, unstarted_hub

CLIENT_ID = "hubd-git-client"
SECRET = "s3cret-" + secrets.token_hex(12)
SLOW_SECONDS = 12  # longer than hubd waits for one membership call (5 s) and all (15 s)


class StandIn:
    """GitHub (kind 'github', API under /api/v3) or GitLab ('gitlab', /api/v4)."""

    def __init__(self, kind):
        self.kind = kind
        self.paths = []  # raw request paths, in order
        self.tokens = {}  # access token -> account
        self.codes = {}  # code -> account
        self.account = None  # who "signs in" at the next authorization
        self.membership = "normal"  # or "500", "200body", "redirect", "slow"
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def api_paths(self, marker):
        with self.lock:
            return [p for p in self.paths if marker in p]

    def _handler(self):
        outer = self
        api = "/api/v3" if self.kind == "github" else "/api/v4"

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, obj=None, location=None, raw=None):
                body = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b"")
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                if body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # hubd gave up on a slow answer, as it should

            def caller(self):
                auth = self.headers.get("Authorization", "")
                return outer.tokens.get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None

            def do_GET(self):
                with outer.lock:
                    outer.paths.append(self.path)
                u = urllib.parse.urlsplit(self.path)
                if u.path in ("/login/oauth/authorize", "/oauth/authorize"):
                    q = urllib.parse.parse_qs(u.query)
                    code = secrets.token_hex(12)
                    outer.codes[code] = outer.account
                    target = q["redirect_uri"][0] + "?" + urllib.parse.urlencode(
                        {"code": code, "state": q["state"][0]})
                    return self.reply(302, location=target)
                if not u.path.startswith(api + "/"):
                    return self.reply(404, {"message": "Not Found"})
                who = self.caller()
                if who is None:
                    return self.reply(401, {"message": "Bad credentials"})
                # Segments decoded one by one: %2F stays inside its segment.
                parts = [urllib.parse.unquote(p) for p in u.path[len(api) + 1:].split("/")]
                if parts == ["user"]:
                    if outer.kind == "github":
                        return self.reply(200, {"login": who["login"], "id": who["id"]})
                    return self.reply(200, {"username": who["login"], "id": who["id"]})
                if parts[:1] in (["orgs"], ["groups"], ["projects"]):
                    return self.membership(who, parts)
                self.reply(404, {"message": "Not Found"})

            def membership(self, who, parts):
                mode = outer.membership
                if mode == "500":
                    return self.reply(500, {"message": "Server Error"})
                if mode == "200body":
                    return self.reply(200, [{"login": who["login"]}])
                if mode == "redirect":
                    return self.reply(307, location="http://127.0.0.1:1/elsewhere")
                if mode == "slow":
                    time.sleep(SLOW_SECONDS)  # then a "yes" that must come too late
                    return self.reply(204 if outer.kind == "github" else 200)
                if outer.kind == "github":
                    # orgs/{org}/members/{login}, orgs/{org}/teams/{team}/members/{login}
                    if len(parts) == 4 and parts[2] == "members":
                        key = parts[1]
                    elif len(parts) == 6 and parts[2] == "teams" and parts[4] == "members":
                        key = f"{parts[1]}:{parts[3]}"
                    else:
                        return self.reply(404, {"message": "Not Found"})
                    ok = parts[-1] == who["login"] and key in who["orgs"]
                    return self.reply(204) if ok else self.reply(404, {"message": "Not Found"})
                # groups/{full path}/members/all/{id}: the exact path, never a search.
                if len(parts) == 5 and parts[2:4] == ["members", "all"] and parts[4] == str(who["id"]):
                    if parts[0] == "groups" and parts[1] in who["groups"]:
                        return self.reply(200, {"id": who["id"], "username": who["login"], "access_level": 10})
                    if parts[0] == "projects" and parts[1] in who["projects"]:
                        return self.reply(200, {"id": who["id"], "access_level": who["projects"][parts[1]]})
                self.reply(404, {"message": "404 Not found"})

            def do_POST(self):
                with outer.lock:
                    outer.paths.append(self.path)
                n = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                if self.path not in ("/login/oauth/access_token", "/oauth/token"):
                    return self.reply(404, {})
                if form.get("client_id") != [CLIENT_ID] or form.get("client_secret") != [SECRET]:
                    return self.reply(401, {"error": "invalid_client"})
                account = outer.codes.pop(form.get("code", [""])[0], None)
                if account is None:
                    return self.reply(400, {"error": "bad_verification_code"})
                token = "tok-" + secrets.token_hex(16)
                outer.tokens[token] = account
                if outer.kind == "github" and "application/json" not in self.headers.get("Accept", ""):
                    # GitHub answers form-encoded unless JSON is asked for.
                    return self.reply(200, raw=urllib.parse.urlencode({"access_token": token}).encode())
                self.reply(200, {"access_token": token, "token_type": "bearer", "scope": ""})

        return Handler


def account(login, uid, orgs=(), groups=(), projects=None):
    return {"login": login, "id": uid, "orgs": set(orgs), "groups": set(groups), "projects": dict(projects or {})}


def sign_in(hub, stand_in, who):
    """(client, status, body, authorize URL) of hubd's callback after `who` signed in at the stand-in."""
    stand_in.account = who
    return through_provider(hub, stand_in.url)


def refused(c, status, body, want_status=403, want_text=b"not allowed"):
    return (status == want_status and b"Sign-in refused" in body and want_text in body
            and "jupyterhub-hub-login" not in c.cookies)


def new_hub(config):
    hub = unstarted_hub()
    hub.config = config.replace("HUB_PORT", str(hub.port))
    return hub


CLIENT = f"""
c.OAuthenticator.client_id = '{CLIENT_ID}'
c.OAuthenticator.client_secret = '{SECRET}'
c.OAuthenticator.oauth_callback_url = 'http://127.0.0.1:HUB_PORT/hub/oauth_callback'
"""


def fail_closed(hub, stand_in, who, what, marker):
    """The membership API answering anything but yes/no admits nobody."""
    for mode, log_status in (("500", "HTTP 500"), ("200body", "HTTP 200"), ("redirect", "HTTP 307"),
                             ("slow", "")):
        stand_in.membership = mode
        started = time.monotonic()
        c, status, body, _ = sign_in(hub, stand_in, who)
        stand_in.membership = "normal"
        check(refused(c, status, body, 502, b"did not answer"),
              f"{what}: the membership API answering {mode!r} refuses a member with a page ({status})")
        log = hub.log_text()
        line = [l for l in log.splitlines() if "could not be checked" in l and marker in l]
        check(line and log_status in line[-1],
              f"{what}: the log names {marker} and the status ({line[-1][-160:] if line else 'no line'})")
        if mode == "slow":
            check(time.monotonic() - started < 21, "the slow API is given up on within the 15 s budget")


def test_github():
    alice, bob, carol = hubtest.SystemUser(), hubtest.SystemUser(), hubtest.SystemUser()
    with alice, bob, carol:
        gh = StandIn("github")
        try:
            hub = new_hub(f"""
c.JupyterHub.authenticator_class = 'oauthenticator.github.GitHubOAuthenticator'
c.GitHubOAuthenticator.github_url = '{gh.url}'
c.GitHubOAuthenticator.allowed_organizations = {{'myorg', 'other:team-a'}}
{CLIENT}""")
            with hub:
                github_cases(hub, gh, alice, bob, carol)
        finally:
            gh.close()


def github_cases(hub, gh, alice, bob, carol):
    c = hub.client()
    status, _, body = c.get("/hub/login")
    check(status == 200 and b"Sign in with GitHub" in body, "the login page offers 'Sign in with GitHub'")
    A = account(alice.name, 101, orgs={"myorg"})
    c, status, body, authorize = sign_in(hub, gh, A)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)
    check(authorize.startswith(gh.url + "/login/oauth/authorize?"), "the browser goes to {github_url}/login/oauth/authorize")
    check("read:org" in q.get("scope", [""])[0].split(), "read:org is asked for (allowed_organizations is set)")
    check(status == 302 and signed_in_as(c, alice.name), f"a member of 'myorg' signs in as {alice.name}")
    check(gh.api_paths(f"/api/v3/orgs/myorg/members/{alice.name}"),
          "membership asked at {api}/orgs/myorg/members/{login}")

    C = account(carol.name, 103, orgs={"other:team-a"})
    c, status, body, _ = sign_in(hub, gh, C)
    check(status == 302 and signed_in_as(c, carol.name), "a member of team 'other:team-a' signs in")
    check(gh.api_paths(f"/api/v3/orgs/other/teams/team-a/members/{carol.name}"),
          "team membership asked at {api}/orgs/other/teams/team-a/members/{login}")

    for orgs, what in (((), "a user in no organization"), (("evil-myorg", "myorg-x", "other"), "a member of look-alike organizations")):
        B = account(bob.name, 102, orgs=orgs)
        c, status, body, _ = sign_in(hub, gh, B)
        check(refused(c, status, body), f"{what} is refused with a page ({status})")
    check("not a member of GitHubOAuthenticator.allowed_organizations" in hub.log_text(),
          "the log says why (not a member of allowed_organizations)")

    fail_closed(hub, gh, A, "GitHub", "organization 'myorg'")

    # Hostile logins: refused before any API call, never in a path.
    before = len(gh.paths)
    for login in ("../" + alice.name, f"{alice.name}/../../user", "a/b", ".."):
        c, status, body, _ = sign_in(hub, gh, account(login, 104, orgs={"myorg"}))
        check(status == 403 and "jupyterhub-hub-login" not in c.cookies,
              f"the login {login!r} is refused ({status})")
    asked = gh.paths[before:]
    check(not [p for p in asked if "/orgs/" in p],
          f"no membership call for a login not of GitHub's shape ({[p for p in asked if '/orgs/' in p]})")
    check(not [p for p in gh.paths if "/../" in p or p.endswith("/..") or "members/a/b" in p],
          "no API path carries '..' or an unescaped '/' from a login")
    check("no login of GitHub's shape" in hub.log_text(), "the log names the refused login shape")

    log = hub.log_text()
    check(not any(t in log for t in gh.tokens) and SECRET not in log, "access tokens and the secret are never logged")


def test_gitlab():
    alice, bob, carol = hubtest.SystemUser(), hubtest.SystemUser(), hubtest.SystemUser()
    with alice, bob, carol:
        gl = StandIn("gitlab")
        try:
            hub = new_hub(f"""
c.JupyterHub.authenticator_class = 'gitlab'
c.GitLabOAuthenticator.gitlab_url = '{gl.url}'
c.GitLabOAuthenticator.allowed_gitlab_groups = {{'mygroup', 'parent/sub'}}
c.GitLabOAuthenticator.allowed_project_ids = {{42}}
{CLIENT}""")
            with hub:
                gitlab_cases(hub, gl, alice, bob, carol)
        finally:
            gl.close()


def gitlab_cases(hub, gl, alice, bob, carol):
    A = account(alice.name, 201, groups={"mygroup"})
    c, status, body, authorize = sign_in(hub, gl, A)
    scope = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query).get("scope", [""])[0].split()
    check(authorize.startswith(gl.url + "/oauth/authorize?"), "the browser goes to {gitlab_url}/oauth/authorize")
    check(scope == ["read_user", "read_api"], f"scope read_user + read_api (for the members API): {scope}")
    check(status == 302 and signed_in_as(c, alice.name), f"a member of 'mygroup' signs in as {alice.name}")
    check(gl.api_paths("/api/v4/groups/mygroup/members/all/201"), "asked at {api}/groups/mygroup/members/all/{id}")

    C = account(carol.name, 203, groups={"parent/sub"})
    c, status, body, _ = sign_in(hub, gl, C)
    check(status == 302 and signed_in_as(c, carol.name), "a member of subgroup 'parent/sub' signs in")
    check(gl.api_paths("/api/v4/groups/parent%2Fsub/members/all/203"), "the subgroup's path is one %2F-encoded segment")

    # CVE-2018-7206: groups whose names contain the allowed one admit nobody.
    B = account(bob.name, 202, groups={"evil-mygroup", "mygroup-x", "parent/sub-evil", "parent"})
    c, status, body, _ = sign_in(hub, gl, B)
    check(refused(c, status, body), f"a member of 'evil-mygroup', 'mygroup-x', 'parent' only is refused ({status})")
    check(not gl.api_paths("search="), "no group search is ever made")
    B["projects"] = {"42": 20}
    c, status, body, _ = sign_in(hub, gl, B)
    check(refused(c, status, body), "a Reporter (20) of project 42 is refused")
    B["projects"] = {"42": 30}
    c, status, body, _ = sign_in(hub, gl, B)
    check(status == 302 and signed_in_as(c, bob.name), "a Developer (30) of project 42 signs in")
    check(gl.api_paths("/api/v4/projects/42/members/all/202"), "asked at {api}/projects/42/members/all/{id}")

    fail_closed(hub, gl, A, "GitLab", "group 'mygroup'")
    log = hub.log_text()
    check(not any(t in log for t in gl.tokens) and SECRET not in log, "access tokens and the secret are never logged")


def test_old_names_refused():
    for cls, trait, value in (("GitHubOAuthenticator", "github_organization_whitelist", "{'myorg'}"),
                              ("GitLabOAuthenticator", "gitlab_group_whitelist", "{'mygroup'}"),
                              ("GitLabOAuthenticator", "gitlab_project_id_whitelist", "{42}")):
        kind = "github" if cls.startswith("GitHub") else "gitlab"
        hub = new_hub(f"c.JupyterHub.authenticator_class = '{kind}'\nc.{cls}.{trait} = {value}\n{CLIENT}")
        hub.autostart = False
        with hub:
            hub.start(wait=False)
            rc = hub.wait_exit(15)
            check(rc not in (None, 0) and f"{cls}.{trait}" in hub.log_text() and "rename it" in hub.log_text(),
                  f"{cls}.{trait} stops start-up (exit {rc}) and the message names it")


def main():
    def needs():
        hubtest.require_root()
        hubtest.require_hubd()

    def github():
        needs()
        test_github()

    def gitlab():
        needs()
        test_gitlab()

    def old_names():
        needs()
        test_old_names_refused()

    hubtest.main([("github", github), ("gitlab", gitlab), ("old_names", old_names)])


if __name__ == "__main__":
    main()
