#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""JupyterHub.subdomain_host: each user's server on <user>.hub.test, through the real hubd.

As root (real sudo, real PAM users, a stand-in server that echoes what reaches
it), hubd runs with subdomain_host = 'https://hub.test:PORT' behind a
"TLS-terminating proxy" (trusted_downstream_ips 127.0.0.1 and X-Forwarded-Proto
https), and requests name their host in the Host header. Checks:
* hub pages and the hub API are served only on the hub's host; a user's host
  redirects to it (403 for non-GET) and never renders a hub page;
* the hub's cookies are host-only and, over https, __Host- prefixed; an
  unprefixed (tossed) login cookie, even a valid one, logs nobody in;
* alice's host reaches alice's server only with the session cookie set by
  hubd's one-time handoff; the ticket works once and on its own host only;
* bob's session, as a real cookie or a tossed one, does not pass on alice's
  host; a planted cookie does not hide alice's real one; no server is
  proxied on the hub's host; alice's session fails on bob's host;
* the single-user environment and the REST API name the user's host (3.0);
* a name whose label has a dot is refused at spawn with the reason;
* logout on the hub ends the session on alice's host.
"""
import http.client
import json
import os
import re
import secrets
import urllib.parse

import hubtest
from hubtest import check, wait_for
from sudotest import SERVER_LOG, require_spawn_tools, server_policy, stand_in_server, sudo_setup

SERVICE_TOKEN = secrets.token_hex(32)

STUB = r'''#!/usr/bin/python3 -I
import http.server, json, os, sys
port = int(sys.argv[1].split("=", 1)[1])
with open(os.path.join(os.environ["HOME"], "env.json"), "w") as f:
    json.dump(dict(os.environ), f)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"stand-in": os.environ.get("JUPYTERHUB_USER"), "path": self.path,
                           "host": self.headers.get("Host"), "cookie": self.headers.get("Cookie")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


CONFIG = f"""
# dot.user has no Unix account: PAM would refuse to add it (Hub::checkNewUsers).
c.JupyterHub.authenticator_class = 'dummy'
c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{SERVICE_TOKEN}', 'admin': True}}]
c.JupyterHub.trusted_downstream_ips = ['127.0.0.1']
c.Spawner.http_timeout = 20
c.Spawner.start_timeout = 30
"""


def cookie_pairs(header):
    out = []
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out.append((name, value))
    return out


class Browser:
    """One browser: a cookie jar per host (host-only cookies, as hubd sets them),
    requests to hubd on 127.0.0.1 with any Host, as if through a TLS proxy."""

    def __init__(self, port, domain):
        self.port = port
        self.domain = domain
        self.jars = {}  # host -> {name: value}
        self.set_cookies = []

    def host(self, label=None):
        return f"{label}.{self.domain}" if label else self.domain

    def request(self, method, host, path, cookies=None, form=None, headers=None, https=True):
        hdrs = {"Host": f"{host}:{self.port}"}
        if https:
            hdrs["X-Forwarded-Proto"] = "https"
        jar = self.jars.setdefault(host, {})
        sent = cookies if cookies is not None else "; ".join(f"{k}={v}" for k, v in jar.items())
        if sent:
            hdrs["Cookie"] = sent
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            self.set_cookies = [v for k, v in resp.getheaders() if k.lower() == "set-cookie"]
            for raw in self.set_cookies:
                name, _, rest = raw.partition("=")
                value = rest.split(";", 1)[0]
                if "max-age=0" in raw.lower() or value == "":
                    jar.pop(name, None)
                else:
                    jar[name] = value
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def login(self, user):
        self.request("GET", self.host(), "/hub/login")
        xsrf = self.jars[self.host()].get("_xsrf")
        status, headers, _ = self.request("POST", self.host(), "/hub/login",
                                          form={"username": user.name, "password": user.password,
                                                "_xsrf": xsrf or ""})
        return status, headers

    def set_cookie(self, name):
        return next((c for c in self.set_cookies if c.startswith(name + "=")), None)


def api(hub, method, path):
    return hub.client().json(method, "/hub/api" + path, headers={"Authorization": f"token {SERVICE_TOKEN}"})


def start_server(hub, browser, user):
    status, _, _ = browser.request("POST", browser.host(), "/hub/spawn",
                                   form={"_xsrf": browser.jars[browser.host()].get("_xsrf", "")})
    check(status == 302, f"{user.name} starts the server from the hub's host ({status})")

    def ready():
        status, body, _ = api(hub, "GET", f"/users/{user.name}")
        return status == 200 and body["servers"].get("", {}).get("ready")

    return check(wait_for(ready, timeout=40), f"{user.name}'s server is ready")


def hand_off(browser, owner):
    """/hub/user/<owner>/ on the hub's host -> the handoff on owner's host -> the session cookie."""
    status, headers, _ = browser.request("GET", browser.host(), f"/hub/user/{owner}/tree?x=1")
    location = headers.get("location", "")
    m = re.fullmatch(rf"https://{re.escape(browser.host(owner))}:{browser.port}/hub-session-handoff\?ticket=(\w+)",
                     location)
    check(status == 302 and m, f"the hub sends {owner}'s server's visitor to {owner}'s host with a ticket "
                               f"({status} {location})")
    return m.group(1) if m else None


def run_checks(hub, alice, bob):
    domain = "hub.test"
    port = hub.port
    hub_origin = f"https://{domain}:{port}"
    a = Browser(port, domain)
    b = Browser(port, domain)

    # --- hub cookies: host-only, __Host- over https
    status, _ = a.login(alice)
    check(status == 302, f"alice logs in on the hub's host ({status})")
    login_cookie = a.set_cookie("__Host-jupyterhub-hub-login")
    check(login_cookie and "Path=/" in login_cookie and "Secure" in login_cookie
          and "domain=" not in login_cookie.lower(),
          f"the login cookie is __Host-jupyterhub-hub-login: Secure, Path=/, no Domain ({login_cookie})")
    check(not a.set_cookie("jupyterhub-hub-login") and not a.set_cookie("hubd-user-session")
          and not a.set_cookie("__Host-hubd-user-session"),
          "no unprefixed login cookie and no user-server session are set on the hub's host")
    check(a.set_cookie("__Host-jupyterhub-session-id") is not None, "the session id is __Host- too")
    check(all("domain=" not in c.lower() for c in a.set_cookies), "no hub cookie has a Domain")
    status, _, body = a.request("GET", domain, "/hub/home")
    check(status == 200 and alice.name.encode() in body, "alice's home page works with the __Host- cookies")
    plain = Browser(port, domain)
    plain.request("GET", domain, "/hub/login", https=False)
    check(plain.set_cookie("jupyterhub-session-id") is not None,
          "over plain http the hub keeps JupyterHub's cookie names (no __Host- without Secure)")

    # --- hub pages only on the hub's host
    alice_host = a.host(alice.name)
    hub_cookies = "; ".join(f"{k}={v}" for k, v in a.jars[domain].items())
    for path in ("/hub/login", "/hub/home", "/hub/api/users", "/", "/hub/api/oauth2/authorize?client_id=x"):
        status, headers, body = a.request("GET", alice_host, path, cookies=hub_cookies)
        check(status == 302 and headers.get("location") == hub_origin + path and b"<html" not in body.lower(),
              f"GET {path} on alice's host, even with the hub's cookies, redirects to the hub's host "
              f"({status} {headers.get('location')})")
    status, _, body = a.request("POST", alice_host, "/hub/api/users/x", cookies=hub_cookies)
    check(status == 403 and hub_origin.encode() in body, f"POST to the hub API on a user's host is refused ({status})")

    # --- a tossed login cookie logs nobody in
    b.login(bob)
    bob_login = b.jars[domain]["__Host-jupyterhub-hub-login"]
    status, headers, _ = hubtest.Client(hub.url).request(
        "GET", "/hub/home", headers={"Host": f"{domain}:{port}", "X-Forwarded-Proto": "https",
                                     "Cookie": f"jupyterhub-hub-login={bob_login}"})
    check(status == 302 and "/hub/login" in headers.get("location", ""),
          f"bob's valid login cookie, tossed without __Host- (Domain={domain}), logs nobody in ({status})")
    status, _, body = a.request("GET", domain, "/hub/home",
                                cookies=f"jupyterhub-hub-login={bob_login}; " + hub_cookies)
    check(status == 200 and alice.name.encode() in body and bob.name.encode() not in body,
          "a tossed login cookie next to alice's real one changes nothing: she stays alice")

    # --- alice's server: only on her host, only with the handed-off session
    if not start_server(hub, a, alice) or not start_server(hub, b, bob):
        return
    status, headers, body = a.request("GET", alice_host, f"/user/{alice.name}/", cookies="")
    check(status == 302 and headers.get("location") == f"{hub_origin}/hub/user/{alice.name}/"
          and b"stand-in" not in body,
          f"alice's host without a session sends the browser to the hub ({status} {headers.get('location')})")
    status, headers, body = a.request("GET", domain, f"/user/{alice.name}/")
    check(status == 302 and b"stand-in" not in body,
          f"alice's server is not proxied on the hub's host, even for alice ({status})")
    status, headers, body = a.request("GET", alice_host, f"/user/{alice.name}/", cookies=hub_cookies)
    check(status == 302 and b"stand-in" not in body, "the hub's login cookie opens nothing on alice's host")

    ticket = hand_off(a, alice.name)
    if not ticket:
        return
    status, headers, _ = a.request("GET", alice_host, f"/hub-session-handoff?ticket={ticket}")
    session = a.set_cookie("__Host-hubd-user-session")
    check(status == 302 and headers.get("location") == f"/user/{alice.name}/tree?x=1",
          f"the handoff lands on the page asked for ({status} {headers.get('location')})")
    check(session and "Path=/" in session and "HttpOnly" in session and "Secure" in session
          and "domain=" not in session.lower(),
          f"the handoff sets a host-only __Host- session on alice's host ({session})")
    check(headers.get("referrer-policy") == "no-referrer", "the handoff's URL (the ticket) is not sent as Referer")
    status, headers, _ = a.request("GET", alice_host, f"/hub-session-handoff?ticket={ticket}", cookies="")
    check(status == 302 and not a.set_cookies and headers.get("location") == f"{hub_origin}/hub/home",
          "a used ticket sets nothing and goes to the hub")
    alice_session = a.jars[alice_host]["__Host-hubd-user-session"]
    status, _, body = a.request("GET", alice_host, f"/user/{alice.name}/lab")
    seen = json.loads(body) if status == 200 else {}
    check(seen.get("stand-in") == alice.name, f"with it, alice's host reaches alice's server ({status})")
    check(not any(n.startswith("__Host-") or n.startswith("jupyterhub-") or n == "hubd-user-session"
                  for n, _ in cookie_pairs(seen.get("cookie"))),
          f"no hub cookie reaches her server ({seen.get('cookie')})")
    status, _, body = a.request("GET", alice_host, f"/user/{alice.name}/",
                                cookies=f"hubd-user-session={alice_session}")
    check(status == 302 and b"stand-in" not in body,
          "over https the session counts only under its __Host- name (the plain name can be tossed)")

    # A ticket is good on its own host only, and spent by a try elsewhere.
    ticket = hand_off(a, alice.name)
    status, _, _ = a.request("GET", b.host(bob.name), f"/hub-session-handoff?ticket={ticket}", cookies="")
    check(status == 302 and not a.set_cookies, "alice's ticket sets nothing on bob's host")
    status, _, _ = a.request("GET", alice_host, f"/hub-session-handoff?ticket={ticket}", cookies="")
    check(status == 302 and not a.set_cookies, "a ticket tried on another host is spent")

    # --- bob on alice's host
    bob_ticket = hand_off(b, bob.name)
    b.request("GET", b.host(bob.name), f"/hub-session-handoff?ticket={bob_ticket}")
    bob_session = b.jars[b.host(bob.name)].get("__Host-hubd-user-session")
    status, _, body = b.request("GET", b.host(bob.name), f"/user/{bob.name}/")
    check(status == 200 and json.loads(body).get("stand-in") == bob.name, "bob reaches his own server")
    status, _, body = b.request("GET", alice_host, f"/user/{alice.name}/",
                                cookies=f"__Host-hubd-user-session={bob_session}")
    check(status == 302 and b"stand-in" not in body, "bob's session for his host does not pass on alice's host")
    status, _, body = b.request("GET", alice_host, f"/user/{alice.name}/",
                                cookies=f"hubd-user-session={bob_session}")
    check(status == 302 and b"stand-in" not in body, "nor as a tossed unprefixed cookie")
    status, headers, body = b.request("GET", domain, f"/hub/user/{alice.name}/")
    check(status == 403 and "location" not in headers, "the hub gives bob no ticket for alice's server")
    status, _, body = a.request("GET", alice_host, f"/user/{alice.name}/",
                                cookies=f"__Host-hubd-user-session={bob_session}; "
                                        f"__Host-hubd-user-session={alice_session}")
    check(status == 200 and json.loads(body).get("stand-in") == alice.name,
          "a cookie planted before alice's real one does not lock her out")
    status, _, body = a.request("GET", b.host(bob.name), f"/user/{alice.name}/",
                                cookies=f"__Host-hubd-user-session={alice_session}")
    check(status == 302 and b"stand-in" not in body, "alice's server is not reachable through bob's host")
    status, _, body = a.request("GET", b.host(bob.name), f"/user/{bob.name}/",
                                cookies=f"__Host-hubd-user-session={alice_session}")
    check(status == 302 and b"stand-in" not in body, "alice's session (for her host) fails on bob's host")
    status, _, body = a.request("GET", "x.evil.test", f"/user/{alice.name}/",
                                cookies=f"__Host-hubd-user-session={alice_session}")
    check(status != 200 or b"stand-in" not in body, "an unknown host never reaches a user's server")
    status, _, body = a.request("GET", f"{alice.name}.{domain}.evil.test", f"/user/{alice.name}/",
                                cookies=f"__Host-hubd-user-session={alice_session}")
    check(b"stand-in" not in body, "nor does a look-alike of alice's host")

    # A token for alice's server opens it on her host only.
    status, token, _ = api(hub, "POST", f"/users/{alice.name}/tokens")
    bearer = {"Authorization": f"token {(token or {}).get('token')}"}
    status, _, body = a.request("GET", alice_host, f"/user/{alice.name}/", cookies="", headers=bearer)
    check(status == 200 and b"stand-in" in body, f"alice's token opens her server on her host ({status})")
    for host in (b.host(bob.name), domain, "127.0.0.1"):
        status, _, body = a.request("GET", host, f"/user/{alice.name}/", cookies="", headers=bearer)
        check(status != 200 and b"stand-in" not in body, f"but not on {host} ({status})")

    # --- what the server and the API are told (JupyterHub 3.0)
    with open(os.path.join(alice.home_dir, "env.json")) as f:
        env = json.load(f)
    check(env.get("JUPYTERHUB_HOST") == hub_origin, f"JUPYTERHUB_HOST is the hub's origin ({env.get('JUPYTERHUB_HOST')})")
    callback = f"https://{alice_host}:{port}/user/{alice.name}/oauth_callback"
    check(env.get("JUPYTERHUB_OAUTH_CALLBACK_URL") == callback,
          f"the OAuth callback is on alice's host ({env.get('JUPYTERHUB_OAUTH_CALLBACK_URL')})")
    status, model, _ = api(hub, "GET", f"/users/{alice.name}")
    url = (model or {}).get("servers", {}).get("", {}).get("url")
    check(url == f"https://{alice_host}:{port}/user/{alice.name}/", f"the REST API gives the server's full URL ({url})")
    authorize = (f"/hub/api/oauth2/authorize?client_id=jupyterhub-user-{alice.name}"
                 f"&redirect_uri={urllib.parse.quote(callback, safe='')}&response_type=code&state=s")
    location = a.request("GET", domain, authorize)[1].get("location", "")
    check(location.startswith(callback + "?code="), f"OAuth sends the code to alice's host ({location[:80]})")

    # --- a name that cannot be one host label
    api(hub, "POST", "/users/dot.user")
    status, body, _ = api(hub, "POST", "/users/dot.user/server")
    message = (body or {}).get("message", "")
    check(status == 400 and "contains a dot" in message and "username_map" in message,
          f"a dotted name is refused at spawn with the reason and the fix ({status} {message[:90]})")

    # --- logout on the hub ends the session on alice's host
    a.request("GET", domain, "/hub/logout")
    status, _, body = a.request("GET", alice_host, f"/user/{alice.name}/",
                                cookies=f"__Host-hubd-user-session={alice_session}")
    check(status == 302 and b"stand-in" not in body, "after logout on the hub, alice's host session is dead")
    status, _, body = b.request("GET", b.host(bob.name), f"/user/{bob.name}/")
    check(status == 200, "bob's session (another hub session) still works")


def stop_servers(hub, *users):
    """Servers outlive hubd by design: stop them before their users go."""
    for user in users:
        api(hub, "DELETE", f"/users/{user.name}/server")
    for user in users:
        wait_for(lambda: not (api(hub, "GET", f"/users/{user.name}")[1] or {}).get("servers"), timeout=15)


def run():
    require_spawn_tools("sudo", "visudo", "setpriv", "useradd")
    with stand_in_server(STUB, "hubtest-subdomains-") as script:
        with hubtest.hub_user() as hub_name, hubtest.SystemUser(password=secrets.token_urlsafe(12)) as alice, \
                hubtest.SystemUser(password=secrets.token_urlsafe(12)) as bob, \
                sudo_setup(hub_name.name, [alice.name, bob.name], server_policy(script, "test_subdomains.py", *SERVER_LOG)) as setup:
            if setup is None:
                return
            hub = hubtest.Hub(config=CONFIG, user=hub_name.name, start=False)
            hub.port, hub.hub_port = hubtest.free_port(), hubtest.free_port()
            hub.args = ["--JupyterHub.spawner_class=sudospawner.SudoSpawner",
                        f"--JupyterHub.subdomain_host=https://hub.test:{hub.port}"]
            with hub:
                hub.start()
                try:
                    hubtest.main([("subdomains", lambda: run_checks(hub, alice, bob))])
                finally:
                    stop_servers(hub, alice, bob)


if __name__ == "__main__":
    run()
