#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""GenericOAuthenticator against a real OpenID Connect provider.

The provider is oidc-provider from npm (a certified implementation, in
tests/oidc/, installed by scripts/setup-debian.sh) on 127.0.0.1 with its
development login and consent pages. A stdlib client walks the whole flow
as a browser would and ends signed in to a real hubd as the mapped local
Unix account. Refused: a forged state, a state from another browser (no
cookie), a replayed callback and a replayed code, a user outside
allowed_groups, a missing or system account.

The ID-token failures a real provider never produces (wrong aud, bad
signature, expired, wrong nonce, wrong issuer, alg none, HS256) come from a
tiny hostile provider here (http.server, tokens signed with the openssl
CLI): each is refused with a page and a log line naming the check.

Then Chromium (playwright-core, tests/browser/oidc_login.mjs) signs in
through oidc-provider's own pages and starts a server, which the real
sudospawner runs as the mapped account.

Needs root (real Unix accounts for the mapping; exit 77 otherwise), node,
openssl and tests/oidc/node_modules/oidc-provider; the browser part also
chromium, playwright-core, sudo and jupyterhub-singleuser.
"""
import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse

import hubtest
from hubtest import check

OIDC_DIR = os.path.join(hubtest.ROOT, "tests", "oidc")
CLIENT_ID = "hubd-test-client"
SECRET = "s3cret-" + secrets.token_hex(12)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hub_config(issuer, hub_port, extra=""):
    return f"""
c.JupyterHub.authenticator_class = 'generic-oauth'
c.GenericOAuthenticator.oidc_issuer = '{issuer}'
c.OAuthenticator.client_id = '{CLIENT_ID}'
c.OAuthenticator.client_secret = '{SECRET}'
c.OAuthenticator.oauth_callback_url = 'http://127.0.0.1:{hub_port}/hub/oauth_callback'
c.OAuthenticator.scope = ['openid', 'profile']
c.OAuthenticator.username_claim = 'preferred_username'
c.OAuthenticator.login_service = 'Test IdP'
c.GenericOAuthenticator.allowed_groups = {{'hub-users'}}
c.GenericOAuthenticator.admin_groups = {{'hub-admins'}}
{extra}
"""


class Provider:
    """oidc-provider in a node process."""

    def __init__(self, redirect_uri, accounts):
        self.port = hubtest.free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, OIDC_CLIENT_SECRET=SECRET, OIDC_ACCOUNTS=json.dumps(accounts))
        self.proc = subprocess.Popen(["node", "provider.mjs", str(self.port), CLIENT_ID, redirect_uri],
                                     cwd=OIDC_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.output = []
        for _ in range(50):  # warnings (an older node, development keys) come first
            line = self.proc.stdout.readline()
            self.output.append(line)
            if "listening" in line or not line:
                break
        if "listening" not in line:
            self.stop()
            raise RuntimeError("oidc-provider did not start: " + "".join(self.output))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            self.output.append(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def sign_in_at_provider(idp, authorize_url, login, callback_prefix):
    """Follows the provider's pages (login form, consent) like a browser; the callback URL."""
    url = authorize_url
    for _ in range(12):
        u = urllib.parse.urlsplit(url)
        path = u.path + ("?" + u.query if u.query else "")
        status, headers, body = idp.get(path)
        while status in (302, 303):
            location = urllib.parse.urljoin(url, headers["location"])
            if location.startswith(callback_prefix):
                return location
            url = location
            u = urllib.parse.urlsplit(url)
            status, headers, body = idp.get(u.path + ("?" + u.query if u.query else ""))
        text = body.decode("utf-8", "replace")
        action = re.search(r'<form[^>]*action="([^"]+)"', text)
        if status != 200 or not action:
            raise RuntimeError(f"unexpected provider page {status}: {text[:300]}")
        if 'name="prompt" value="login"' in text:
            form = {"prompt": "login", "login": login, "password": "anything"}
        elif 'name="prompt" value="consent"' in text:
            form = {"prompt": "consent"}
        else:
            raise RuntimeError(f"unknown provider page: {text[:300]}")
        target = urllib.parse.urljoin(url, action.group(1))
        status, headers, _ = idp.post(urllib.parse.urlsplit(target).path, form=form, xsrf=False)
        if status not in (302, 303):
            raise RuntimeError(f"provider refused the form: {status}")
        url = urllib.parse.urljoin(target, headers["location"])
        if url.startswith(callback_prefix):
            return url
    raise RuntimeError("too many provider pages")


def local_path(url):
    u = urllib.parse.urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


def start_login(c, next_=None):
    status, headers, _ = c.get("/hub/oauth_login" + (f"?next={urllib.parse.quote(next_)}" if next_ else ""))
    if status != 302:
        raise RuntimeError(f"/hub/oauth_login answered {status}")
    return headers["location"]


def unstarted_hub():
    """A hub on two free ports that `with` starts: its config may name hub.port (the callback)."""
    hub = hubtest.Hub(start=False)
    hub.port, hub.hub_port = hubtest.free_port(), hubtest.free_port()
    hub.autostart = True
    return hub


def through_provider(hub, provider_url):
    """(client, status, body, authorize URL) of hubd's callback, the provider approving at once."""
    c = hub.client()
    authorize = start_login(c)
    status, headers, _ = hubtest.Client(provider_url).get(local_path(authorize))
    if status != 302:
        raise RuntimeError(f"the provider's authorize answered {status}")
    status, _, body = c.get(local_path(headers["location"]))
    return c, status, body, authorize


def signed_in_as(c, name):
    status, user, _ = c.json("GET", "/hub/api/user")
    return "jupyterhub-hub-login" in c.cookies and status == 200 and user and user["name"] == name


def walk(hub, provider, login, c=None, next_=None):
    """(hub client, callback URL) after signing in as `login` at the provider."""
    c = c or hub.client()
    authorize = start_login(c, next_)
    idp = hubtest.Client(provider.issuer)
    callback = sign_in_at_provider(idp, authorize, login, f"{hub.url}/hub/oauth_callback")
    return c, callback


def test_real_provider():
    alice = hubtest.SystemUser(password=None)
    bob = hubtest.SystemUser(password=None)
    sysacct = hubtest.SystemUser(password=None, system=True, home=False)
    with alice, bob, sysacct:
        accounts = {
            "alice-idp": {"preferred_username": alice.name, "groups": ["hub-users"]},
            "alice-admin": {"preferred_username": "Alice.Example", "groups": ["hub-users", "hub-admins"]},
            "bob-idp": {"preferred_username": bob.name, "groups": ["other-team"]},
            "ghost": {"preferred_username": "nosuchuser-oidc", "groups": ["hub-users"]},
            "sys": {"preferred_username": sysacct.name, "groups": ["hub-users"]},
        }
        hub = unstarted_hub()
        provider = Provider(f"http://127.0.0.1:{hub.port}/hub/oauth_callback", accounts)
        try:
            hub.setup()
            hub.config = hub_config(provider.issuer, hub.port,
                                    f"c.Authenticator.username_map = {{'alice.example': '{alice.name}'}}\n"
                                    f"c.JupyterHub.audit_log = {hub.path('audit.log')!r}")
            hub.write_file("config.py", hub.config, 0o644)
            with hub:
                real_provider_cases(hub, provider, alice, bob, sysacct)
        finally:
            provider.stop()


def real_provider_cases(hub, provider, alice, bob, sysacct):
    c = hub.client()
    status, _, body = c.get("/hub/login")
    check(status == 200 and b"Sign in with Test IdP" in body and b'name="password"' not in body,
          "the login page offers 'Sign in with Test IdP' and no password form")
    status, _, _ = c.post("/hub/login", form={"username": alice.name, "password": "x"})
    check(status in (200, 403) and "jupyterhub-hub-login" not in c.cookies,
          "a password posted to /hub/login signs nobody in")

    authorize = start_login(c, "/hub/token")
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)
    check(authorize.startswith(provider.issuer + "/auth?"), f"/hub/oauth_login -> the discovered endpoint ({authorize[:60]})")
    check(q.get("code_challenge_method") == ["S256"] and len(q.get("code_challenge", [""])[0]) == 43,
          "PKCE S256 challenge sent")
    check(len(q.get("state", [""])[0]) >= 32 and len(q.get("nonce", [""])[0]) >= 32, "random state and nonce sent")
    check("openid" in q.get("scope", [""])[0].split(), "scope has openid")
    cookie = [v for v in c.set_cookies if v.startswith("hubd-oauth-state=")]
    check(cookie and "HttpOnly" in cookie[0] and "Path=/hub/;" in cookie[0]
          and "SameSite=Lax" in cookie[0], f"state bound by an HttpOnly cookie: {cookie}")

    idp = hubtest.Client(provider.issuer)
    callback = sign_in_at_provider(idp, authorize, "alice-idp", f"{hub.url}/hub/oauth_callback")

    # Forged state: the same browser, the real code, a state the hub never issued.
    forged = re.sub(r"state=[^&]+", "state=" + secrets.token_hex(24), callback)
    status, _, body = c.get(local_path(forged))
    check(status == 400 and b"not valid" in body and "jupyterhub-hub-login" not in c.cookies,
          "a forged state is refused with a page")
    check("unknown, expired or already used state" in hub.log_text(), "the log names the forged state")

    # Another browser (no hubd-oauth-state cookie) with a real state of this one.
    authorize2 = start_login(c)
    callback2 = sign_in_at_provider(idp, authorize2, "alice-idp", f"{hub.url}/hub/oauth_callback")
    other = hub.client()
    status, _, body = other.get(local_path(callback2))
    check(status == 400 and b"another browser" in body and "jupyterhub-hub-login" not in other.cookies,
          "a state from another browser (cookie missing) is refused")
    check("state not bound to this browser" in hub.log_text(), "the log names the missing binding")

    # The real callback signs alice in and honours next.
    status, headers, _ = c.get(local_path(callback))
    check(status == 302 and headers.get("location") == "/hub/token" and "jupyterhub-hub-login" in c.cookies,
          f"the callback signs alice in and goes to next ({status} {headers.get('location')})")
    status, user, _ = c.json("GET", "/hub/api/user")
    check(status == 200 and user and user["name"] == alice.name and not user["admin"],
          f"the hub user is the local account {alice.name}, not admin")

    # Replays: the same callback again, and the used code under a fresh state.
    replay = hub.client()
    replay.jar = dict(c.jar)
    replay.jar = {k: v for k, v in replay.jar.items() if k[0] == "hubd-oauth-state"}
    status, _, body = replay.get(local_path(callback))
    check(status == 400 and "jupyterhub-hub-login" not in replay.cookies, "a replayed callback is refused")
    fresh = start_login(replay)
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(fresh).query)["state"][0]
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(callback).query)["code"][0]
    status, _, body = replay.get("/hub/oauth_callback?" + urllib.parse.urlencode({"code": code, "state": state}))
    check(status == 403 and "jupyterhub-hub-login" not in replay.cookies and b"Sign-in refused" in body,
          "a used code under a fresh state is refused (the provider refuses the second exchange)")
    check(re.search(r"code exchange failed: the token endpoint answered HTTP 400 \(invalid_grant\)", hub.log_text()),
          "the log names the refused code exchange")

    # username_map and admin_groups.
    c2, cb = walk(hub, provider, "alice-admin")
    status, _, _ = c2.get(local_path(cb))
    status, user, _ = c2.json("GET", "/hub/api/user")
    check(status == 200 and user and user["name"] == alice.name and user["admin"],
          "username_map maps 'Alice.Example' to the local account; admin_groups makes it admin")

    for login, want_page, want_log, what in (
            ("bob-idp", b"not allowed", "not in allowed_users or allowed_groups", "a user outside allowed_groups"),
            ("ghost", b"has no account", "has no account 'nosuchuser-oidc'", "a name without a local account"),
            ("sys", b"system account", "is a system account", "a system account"),
    ):
        cx, cb = walk(hub, provider, login)
        status, _, body = cx.get(local_path(cb))
        check(status == 403 and want_page in body and "jupyterhub-hub-login" not in cx.cookies,
              f"{what} is refused with a clear page")
        check(want_log in hub.log_text(), f"the log says why ({want_log})")
    check(SECRET not in hub.log_text(), "the client secret is never logged")
    audit = hub.audit_lines()
    check(any("login.success" in a and alice.name in a and "oauth" in a for a in audit)
          and any("login.failure" in a and "not bound to this browser" in a for a in audit),
          "sign-ins and refusals are in the audit log")
    status, users, _ = c2.json("GET", "/hub/api/users")
    names = {u["name"] for u in users or []}
    check(bob.name not in names and sysacct.name not in names, "refused users were never added to the hub")


# ---------------------------------------------------------------- hostile provider

class PrivateCA:
    """A CA of the test's own and server certificates it signs (openssl CLI)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hubd-ca-")
        os.chmod(self.dir, 0o755)  # hubd may run as another user and reads ca.pem
        self.cert = os.path.join(self.dir, "ca.pem")
        self.key = os.path.join(self.dir, "ca.key")
        self._openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out", self.cert,
                      "-days", "2", "-subj", "/CN=hubd test CA",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        os.chmod(self.cert, 0o644)

    def _openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    def server_context(self, name):
        """An ssl server context whose certificate (signed by this CA) names only `name`."""
        key, csr, cert, ext = (os.path.join(self.dir, f"{name}.{e}") for e in ("key", "csr", "pem", "ext"))
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        self._openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
        self._openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                      "-out", cert, "-days", "2", "-extfile", ext)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Hostile:
    """A provider that signs what the test asks for, with openssl.

    With `tls` (an ssl server context) it answers https on "localhost"; the
    context in .tls may be swapped between connections.
    """

    def __init__(self, tls=None):
        self.dir = tempfile.mkdtemp(prefix="hubd-hostile-")
        self.key = os.path.join(self.dir, "key.pem")
        self.other_key = os.path.join(self.dir, "other.pem")
        for k in (self.key, self.other_key):
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                            "-out", k], check=True, capture_output=True)
        mod = subprocess.run(["openssl", "rsa", "-in", self.key, "-noout", "-modulus"], check=True,
                             capture_output=True, text=True).stdout.strip().split("=", 1)[1]
        self.jwk = {"kty": "RSA", "use": "sig", "kid": "k1", "alg": "RS256", "n": b64url(bytes.fromhex(mod)),
                    "e": "AQAB"}
        self.mode = "good"
        self.subject = "alice"
        self.extra_claims = {}  # added to every ID token (the presets' hd, tid, email)
        self.userinfo_sub = "s-1"  # the ID token's sub; None: userinfo names no sub
        self.nonces = {}
        self.stalling = set()  # codes whose exchange waits for .release
        self.release = threading.Event()
        self.tls = tls
        self.close_notify = True  # False: close TLS connections without close_notify
        self.short_by = 0  # >0: Content-Length promises this many bytes more than are sent
        outer = self

        class Server(http.server.ThreadingHTTPServer):
            def get_request(self):
                sock, addr = super().get_request()
                if outer.tls:  # the handshake runs on the handler's thread, at its first read
                    sock = outer.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                return sock, addr

            def shutdown_request(self, request):
                if isinstance(request, ssl.SSLSocket) and outer.close_notify:
                    try:
                        request.unwrap()
                    except (OSError, ValueError):
                        pass
                super().shutdown_request(request)

            def handle_error(self, request, client_address):
                pass  # refused handshakes are what some tests want

        self.server = Server(("127.0.0.1", 0), self._handler())
        port = self.server.server_address[1]
        self.issuer = f"https://localhost:{port}" if tls else f"http://127.0.0.1:{port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def authorize(self, authorize_url):
        """The callback URL /authorize would redirect to, without a request (no https client needed)."""
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize_url).query)
        code = secrets.token_hex(16)
        self.nonces[code] = q.get("nonce", [""])[0]
        if self.mode == "stall":
            self.stalling.add(code)
        return q["redirect_uri"][0] + "?" + urllib.parse.urlencode({"code": code, "state": q["state"][0]})

    def sign(self, key, data):
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=data, check=True,
                              capture_output=True).stdout

    def id_token(self, nonce):
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "s-1", "aud": CLIENT_ID, "exp": now + 300, "iat": now,
                  "nonce": nonce, "preferred_username": self.subject, "groups": ["hub-users"]}
        claims.update(self.extra_claims)
        header = {"alg": "RS256", "kid": "k1", "typ": "JWT"}
        m = self.mode
        if m == "aud":
            claims["aud"] = "some-other-client"
        elif m == "expired":
            claims["exp"], claims["iat"] = now - 3600, now - 7200
        elif m == "nonce":
            claims["nonce"] = secrets.token_hex(16)
        elif m == "iss":
            claims["iss"] = "http://127.0.0.1:1"
        elif m == "none":
            header = {"alg": "none", "kid": "k1"}
        elif m == "hs256":
            header = {"alg": "HS256", "kid": "k1"}
        signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        if m == "none":
            sig = b""
        elif m == "hs256":
            import hmac
            sig = hmac.new(json.dumps(self.jwk).encode(), signing_input, hashlib.sha256).digest()
        else:
            sig = self.sign(self.other_key if m == "sig" else self.key, signing_input)
        return signing_input.decode() + "." + b64url(sig)

    def _handler(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, obj=None, location=None):
                body = json.dumps(obj).encode() if obj is not None else b""
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) + outer.short_by))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                if u.path == "/.well-known/openid-configuration":
                    return self.reply(200, {"issuer": outer.issuer, "authorization_endpoint": outer.issuer + "/authorize",
                                            "token_endpoint": outer.issuer + "/token",
                                            "jwks_uri": outer.issuer + "/jwks"})
                if u.path == "/userinfo":
                    if self.headers.get("Authorization") != "Bearer at":
                        return self.reply(401, {"error": "invalid_token"})
                    info = {"login": outer.subject, "groups": ["hub-users"]}
                    if outer.userinfo_sub is not None:
                        info["sub"] = outer.userinfo_sub
                    return self.reply(200, info)
                if u.path == "/jwks":
                    return self.reply(200, {"keys": [outer.jwk]})
                if u.path == "/authorize":
                    q = urllib.parse.parse_qs(u.query)
                    code = secrets.token_hex(16)
                    outer.nonces[code] = q.get("nonce", [""])[0]
                    target = q["redirect_uri"][0] + "?" + urllib.parse.urlencode({"code": code, "state": q["state"][0]})
                    return self.reply(302, location=target)
                self.reply(404, {})

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                if form.get("code", [""])[0] in outer.stalling:
                    outer.release.wait(20)  # a slow or hostile token endpoint
                nonce = outer.nonces.pop(form.get("code", [""])[0], None)
                if nonce is None:
                    return self.reply(400, {"error": "invalid_grant"})
                self.reply(200, {"access_token": "at", "token_type": "Bearer", "id_token": outer.id_token(nonce)})

        return Handler


def test_hostile_provider():
    alice = hubtest.SystemUser(password=None)
    with alice:
        hostile = Hostile()
        hostile.subject = alice.name
        try:
            hub = unstarted_hub()
            hub.config = hub_config(hostile.issuer, hub.port)
            with hub:
                for mode, reason in (("good", None), ("aud", "audience"), ("sig", "signature"),
                                     ("expired", "expired"), ("nonce", "nonce"), ("iss", "issuer"),
                                     ("none", "algorithm"), ("hs256", "algorithm")):
                    hostile.mode = mode
                    c, status, body, _ = through_provider(hub, hostile.issuer)
                    if reason is None:
                        check(status == 302 and "jupyterhub-hub-login" in c.cookies,
                              "control: a well-formed ID token from the hostile provider signs in")
                        continue
                    check(status == 403 and b"did not pass the hub" in body
                          and "jupyterhub-hub-login" not in c.cookies,
                          f"ID token with {mode!r} is refused with a page")
                    check(f"ID token rejected ({reason})" in hub.log_text(), f"the log names the check ({reason})")
            # Plain OAuth 2.0 (GitHub-style): no issuer, the name from userdata_url.
            hub = unstarted_hub()
            hub.config = f"""
c.JupyterHub.authenticator_class = 'generic-oauth'
c.OAuthenticator.client_id = '{CLIENT_ID}'
c.OAuthenticator.client_secret = '{SECRET}'
c.OAuthenticator.oauth_callback_url = 'http://127.0.0.1:{hub.port}/hub/oauth_callback'
c.OAuthenticator.authorize_url = '{hostile.issuer}/authorize'
c.OAuthenticator.token_url = '{hostile.issuer}/token'
c.OAuthenticator.userdata_url = '{hostile.issuer}/userinfo'
c.GenericOAuthenticator.username_key = 'login'
c.OAuthenticator.allowed_users = {{'{alice.name}'}}
"""
            with hub:
                hostile.mode = "hs256"  # an ID token nobody asked for is never looked at
                c = hub.client()
                authorize = start_login(c)
                check("nonce=" not in authorize and "code_challenge=" in authorize,
                      "plain OAuth 2.0: PKCE, no nonce")
                _, headers, _ = hubtest.Client(hostile.issuer).get(local_path(authorize))
                status, _, _ = c.get(local_path(headers["location"]))
                status, user, _ = c.json("GET", "/hub/api/user")
                check(status == 200 and user and user["name"] == alice.name,
                      "plain OAuth 2.0: the name comes from userdata_url (username_key = 'login')")
        finally:
            hostile.close()


def test_userinfo_sub():
    """OpenID Connect Core 5.3.2: userinfo about another sub than the ID token's is not believed."""
    alice = hubtest.SystemUser(password=None)
    with alice:
        hostile = Hostile()
        hostile.subject = alice.name
        try:
            with oauth_hub(hostile.issuer, f"c.OAuthenticator.userdata_url = '{hostile.issuer}/userinfo'") as hub:
                for sub, what in (("s-1", None), ("s-2", "a different sub"), (None, "no sub")):
                    hostile.userinfo_sub = sub
                    c = hub.client()
                    status, _, body = c.get(local_path(hostile.authorize(start_login(c))))
                    if what is None:
                        check(status == 302 and "jupyterhub-hub-login" in c.cookies,
                              "control: userinfo with the ID token's sub signs in")
                        continue
                    check(status == 403 and b"did not pass the hub" in body and "jupyterhub-hub-login" not in c.cookies,
                          f"userinfo with {what} is refused with a page")
                want = ("userinfo's sub 's-2' differs from the ID token's sub 's-1'",
                        "userinfo's sub '' differs from the ID token's sub 's-1'")
                check(all(w in hub.log_text() for w in want), f"the log names both subs ({want})")
        finally:
            hostile.close()


class BoundClient(hubtest.Client):
    """A client whose connections come from `source` (any 127.x address reaches the hub on lo)."""

    def __init__(self, base_url, source):
        super().__init__(base_url)
        self.source = source

    def connection(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout,
                                          source_address=(self.source, 0))


def test_source_limits():
    """Per-source limits: a stalling token endpoint ties up 2 exchanges of one address, not the hub."""
    alice = hubtest.SystemUser(password=None)
    with alice:
        hostile = Hostile()
        hostile.subject = alice.name
        threads = []
        try:
            with oauth_hub(hostile.issuer) as hub:
                c = hub.client()  # 127.0.0.1
                hostile.mode = "stall"
                callbacks = [hostile.authorize(start_login(c)) for _ in range(6)]
                hostile.mode = "good"
                results = {}

                def hit(i):
                    t = time.monotonic()
                    status, headers, body = c.get(local_path(callbacks[i]))
                    results[i] = (status, headers, body, time.monotonic() - t)

                threads = [threading.Thread(target=hit, args=(i,), daemon=True) for i in range(6)]
                for t in threads:
                    t.start()
                hubtest.wait_for(lambda: len(results) >= 4, timeout=10)
                limited = [r for r in results.values() if r[0] == 429]
                check(len(results) == 4 and len(limited) == 4,
                      f"6 concurrent callbacks from one address: 2 wait for the provider, 4 get 429 "
                      f"({sorted(r[0] for r in results.values())})")
                check(all(r[1].get("retry-after") == "5" and b"Too many sign-ins" in r[2] for r in limited),
                      "the 429s carry Retry-After and a page saying what to do")
                slowest = max((r[3] for r in limited), default=99)
                print(f"slowest 429: {slowest * 1000:.0f} ms", flush=True)
                check(slowest < 2, f"the 429s come at once ({slowest:.2f} s)")
                check(re.search(r"OAuth callback from 127\.0\.0\.1 refused \(429, Retry-After 5 s\): 127\.0\.0\.1 "
                                r"already has 2 calls to the provider in flight \(the limit per source\)",
                                hub.log_text()), "the log names the source and the limit")
                t = time.monotonic()
                status, _, _ = c.get("/hub/api/")
                check(status == 200 and time.monotonic() - t < 2, "an API request from the same address still works")
                other = BoundClient(hub.url, "127.0.0.2")
                t = time.monotonic()
                status, _, _ = other.get(local_path(hostile.authorize(start_login(other))))
                elapsed = time.monotonic() - t
                status, user, _ = other.json("GET", "/hub/api/user")
                check(status == 200 and user and user["name"] == alice.name and elapsed < 3,
                      f"a sign-in from 127.0.0.2 goes through meanwhile ({elapsed:.2f} s)")
                hostile.release.set()
                for t in threads:
                    t.join(30)
                check(sorted(r[0] for r in results.values()) == [302, 302, 429, 429, 429, 429],
                      "released, the two waiting exchanges sign in")
                retry = next(i for i, r in results.items() if r[0] == 429)
                c2 = hub.client()
                c2.jar = {k: v for k, v in c.jar.items() if k[0] == "hubd-oauth-state"}
                status, _, _ = c2.get(local_path(callbacks[retry]))
                check(status == 302 and "jupyterhub-hub-login" in c2.cookies,
                      "a callback refused with 429 still works when reloaded (its state was kept)")
                # Starts: a burst of 30 per address, then 30 a minute.
                burst = BoundClient(hub.url, "127.0.0.3")
                codes, headers, body = [], {}, b""
                while len(codes) < 45 and (not codes or codes[-1] != 429):  # refills 1 per 2 s meanwhile
                    status, headers, body = burst.get("/hub/oauth_login")
                    codes.append(status)
                check(codes[:30] == [302] * 30 and codes[-1] == 429
                      and headers.get("retry-after") in ("1", "2") and b"Too many sign-ins" in body,
                      f"a burst of starts from one address ends in 429 after {len(codes) - 1} "
                      f"(Retry-After {headers.get('retry-after')})")
                check("OAuth sign-in from 127.0.0.3 refused (429, Retry-After" in hub.log_text()
                      and "127.0.0.3 started more than 30 sign-ins at once or 30 a minute" in hub.log_text(),
                      "the log names the source and the start limit")
                status, _, _ = BoundClient(hub.url, "127.0.0.4").get("/hub/oauth_login")
                check(status == 302, "another address still starts sign-ins")
        finally:
            hostile.release.set()
            for t in threads:
                t.join(30)
            hostile.close()


def oauth_hub(issuer, extra=""):
    hub = unstarted_hub()
    hub.config = hub_config(issuer, hub.port, extra)
    return hub


def test_private_ca():
    """A provider on https with a certificate from a private CA: OAuthenticator.ca_file, host names."""
    alice = hubtest.SystemUser(password=None)
    with alice:
        ca = PrivateCA()
        good, wrong_name = ca.server_context("localhost"), ca.server_context("other.example")
        hostile = Hostile(tls=good)
        hostile.subject = alice.name
        try:
            with oauth_hub(hostile.issuer) as hub:
                c = hub.client()
                status, _, body = c.get("/hub/oauth_login")
                check(status == 502 and b"cannot be reached" in body,
                      f"without ca_file the private CA's certificate is refused with a page ({status})")
                check(re.search(r"the provider is not usable: .*the certificate of localhost is not trusted: "
                                r".*set OAuthenticator\.ca_file", hub.log_text()),
                      "the log names the certificate problem and the fix (OAuthenticator.ca_file)")
            with oauth_hub(hostile.issuer, f"c.OAuthenticator.ca_file = {ca.cert!r}") as hub:
                hostile.tls = wrong_name
                c = hub.client()
                status, _, _ = c.get("/hub/oauth_login")
                check(status == 502, f"with ca_file, a certificate for other.example is still refused ({status})")
                check(re.search(r"the certificate of localhost is not trusted: hostname mismatch \("
                                r"issued for another name: use a provider URL", hub.log_text()),
                      "the log names the host-name mismatch")
                hostile.tls = good
                authorize = start_login(c)
                check(authorize.startswith(hostile.issuer + "/authorize?"), "with ca_file discovery works over https")
                status, _, _ = c.get(local_path(hostile.authorize(authorize)))
                status, user, _ = c.json("GET", "/hub/api/user")
                check(status == 200 and user and user["name"] == alice.name,
                      "with ca_file the sign-in over https succeeds (token, JWKS)")
                # Endpoints known, certificate swapped: the code exchange checks the name too.
                c = hub.client()
                authorize = start_login(c)
                hostile.tls = wrong_name
                status, _, _ = c.get(local_path(hostile.authorize(authorize)))
                check(status == 403 and "jupyterhub-hub-login" not in c.cookies,
                      "a code exchange with a wrongly named certificate is refused")
                check("code exchange failed: the token endpoint: the certificate of localhost is not trusted: "
                      "hostname mismatch" in hub.log_text(), "the log names the refused code exchange")
            # Servers may close TLS without close_notify once the answer is complete by its
            # Content-Length; an answer shorter than its Content-Length is never taken.
            with oauth_hub(hostile.issuer, f"c.OAuthenticator.ca_file = {ca.cert!r}") as hub:
                hostile.tls, hostile.close_notify = good, False
                c = hub.client()
                authorize = start_login(c)
                status, _, _ = c.get(local_path(hostile.authorize(authorize)))
                status, user, _ = c.json("GET", "/hub/api/user")
                check(status == 200 and user and user["name"] == alice.name,
                      "a provider that closes TLS without close_notify after complete answers signs in")
            with oauth_hub(hostile.issuer, f"c.OAuthenticator.ca_file = {ca.cert!r}") as hub:
                hostile.close_notify, hostile.short_by = True, 100
                status, _, _ = hub.client().get("/hub/oauth_login")
                check(status == 502 and re.search(r"the answer of localhost ended after \d+ of its \d+ bytes",
                                                  hub.log_text()),
                      f"a discovery answer 100 bytes short of its Content-Length is refused ({status})")
                hostile.short_by = 0
        finally:
            hostile.close()
            ca.close()


BROWSER_DIR = os.path.join(hubtest.ROOT, "tests", "browser")
CHROMIUM = os.environ.get("HUBD_TEST_CHROMIUM", "/usr/bin/chromium")
SINGLEUSER = "/usr/bin/jupyterhub-singleuser"


def test_browser_spawn():
    """Chromium through oidc-provider's pages; the server runs as the mapped account (real sudo)."""
    from demotest import stop_pids, user_pids
    from sudotest import server_policy, singleuser_env, sudo_setup
    for tool in ("sudo", "visudo", "setpriv", "useradd"):
        if not shutil.which(tool):
            hubtest.skip(f"{tool} is missing")
    for path, what in ((SINGLEUSER, "apt-get install jupyterhub"), (CHROMIUM, "apt-get install chromium"),
                       (os.path.join(BROWSER_DIR, "node_modules", "playwright-core"), "scripts/setup-debian.sh")):
        if not os.path.exists(path):
            hubtest.skip(f"{path} is missing ({what})")
    policy = server_policy(SINGLEUSER, "test_oidc_login.py",
                           "setenv JUPYTERHUB_SINGLEUSER_APP=notebook.notebookapp.NotebookApp",
                           "setenv JUPYTERHUB_DISABLE_USER_CONFIG=1")
    with hubtest.hub_user() as hub_name, hubtest.SystemUser() as alice, \
            sudo_setup(hub_name.name, [alice.name], policy) as setup:
        if setup is None:
            return
        hub = hubtest.Hub(args=["--JupyterHub.spawner_class=sudospawner.SudoSpawner"], user=hub_name.name,
                          start=False)
        hub.port, hub.hub_port = hubtest.free_port(), hubtest.free_port()
        hub.autostart = True
        provider = Provider(f"http://127.0.0.1:{hub.port}/hub/oauth_callback",
                            {"alice-idp": {"preferred_username": "Alice.Browser", "groups": ["hub-users"]}})
        artifacts = tempfile.mkdtemp(prefix="hubd-oidc-browser-")
        try:
            hub.config = hub_config(provider.issuer, hub.port,
                                    f"c.Authenticator.username_map = {{'alice.browser': '{alice.name}'}}")
            with hub:
                env = dict(os.environ, HUB_URL=hub.url, IDP_LOGIN="alice-idp", USER=alice.name,
                           SERVICE="Test IdP", ARTIFACTS=artifacts, CHROMIUM=CHROMIUM)
                proc = subprocess.Popen(["node", "oidc_login.mjs"], cwd=BROWSER_DIR, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
                try:
                    out, _ = proc.communicate(timeout=240)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    out, _ = proc.communicate()
                print(out[-6000:], flush=True)
                check(proc.returncode == 0 and "e2e: PASS" in out,
                      "Chromium signs in through oidc-provider's pages and reaches the notebook tree")
                pid, server_env = singleuser_env(alice.name)
                check(pid is not None and os.stat(f"/proc/{pid}").st_uid == alice.uid
                      and server_env.get("JUPYTERHUB_USER") == alice.name,
                      f"jupyterhub-singleuser runs as the mapped account {alice.name} (pid {pid})")
        finally:
            provider.stop()
            stop_pids(user_pids(alice.name))
            shutil.rmtree(artifacts, ignore_errors=True)


def main():
    def needs():
        hubtest.require_root()
        hubtest.require_hubd()
        if not shutil.which("node") or not shutil.which("openssl"):
            hubtest.skip("node and openssl are needed")
        if not os.path.isdir(os.path.join(OIDC_DIR, "node_modules", "oidc-provider")):
            hubtest.skip("tests/oidc/node_modules/oidc-provider is missing: run scripts/setup-debian.sh")

    def real():
        needs()
        test_real_provider()

    def hostile():
        needs()
        test_hostile_provider()

    def private_ca():
        needs()
        test_private_ca()

    def userinfo_sub():
        needs()
        test_userinfo_sub()

    def source_limits():
        needs()
        test_source_limits()

    def browser():
        needs()
        test_browser_spawn()

    hubtest.main([("real_provider", real), ("hostile_provider", hostile), ("private_ca", private_ca),
                  ("userinfo_sub", userinfo_sub), ("source_limits", source_limits), ("browser_spawn", browser)])


if __name__ == "__main__":
    main()
