#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""hubd under base_url /jhub/ behind the seed guide's Apache example, over HTTPS.

The seed's <VirtualHost> blocks (JupyterHub "Security settings": the :80
redirect, SSL, the websocket RewriteRules, <Location "/jhub/"> with
ProxyPreserveHost, ProxyPass and ProxyPassReverse) run nearly verbatim in a
private apache2 (own ServerRoot and config in a temp dir, foreground, free
high ports on 127.0.0.1; the system's apache2 service and ports 80/443 are
never touched). Substituted: the ports, example.org -> localhost, a
self-signed certificate (openssl req) for the letsencrypt files, and a local
file equivalent to certbot's options-ssl-apache.conf. Added: one
`RequestHeader set X-Forwarded-Proto https` line (Apache's mod_proxy sends
X-Forwarded-For/-Host but not the scheme), as later JupyterHub docs do.

hubd runs as an unprivileged hub user with c.JupyterHub.base_url = '/jhub/',
trusted_downstream_ips ['127.0.0.1'] and the real helper behind real sudo.
The client connects to Apache from 127.0.0.5, so hubd can only know that
address from Apache's X-Forwarded-For. Through Apache: the login page, a PAM
login, the REST API (paginated next URL with https and the public host), a
real jupyterhub-singleuser spawned as the user, reached at /jhub/user/<name>/
through the OAuth flow, and a kernel WebSocket (TLS, through Apache and hubd)
that runs code as the user. Then hubd restarts with trusted_downstream_ips
empty: through Apache it sees only Apache (127.0.0.1, http), and forged
X-Forwarded-* sent straight to hubd are not believed either.

Needs root (exit 77 otherwise), apache2 (scripts/setup-debian.sh installs it;
missing is a failure), openssl and Debian's jupyterhub-singleuser.
"""
import base64
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import uuid

import hubtest
from demotest import stop_pids, user_pids
from hubtest import check, wait_for, follow
from sudotest import sudo_setup
from wsframe import make_frame

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"
SINGLEUSER = "/usr/bin/jupyterhub-singleuser"
CLIENT_ADDRESS = "127.0.0.5"  # any 127/8 source works on Linux; Apache is not 127.0.0.5
SERVICE_TOKEN = secrets.token_hex(32)
PAGINATION = {"Accept": "application/jupyterhub-pagination+json"}

# certbot's /etc/letsencrypt/options-ssl-apache.conf, in substance.
OPTIONS_SSL_APACHE = """SSLEngine on
SSLProtocol             all -SSLv2 -SSLv3 -TLSv1 -TLSv1.1
SSLCipherSuite          ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:\
DHE-RSA-AES256-GCM-SHA384
SSLHonorCipherOrder     off
SSLSessionTickets       off
SSLOptions +StrictRequire
LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-agent}i\\"" vhost_combined
LogFormat "%v %h %l %u %t \\"%r\\" %>s %b" vhost_common
"""

# Private server settings, then the seed's two virtual hosts.
APACHE_CONF = """# hubd integration test: a private apache2, never the system's service.
ServerRoot "{root}"
ServerName localhost
PidFile "{root}/apache2.pid"
DefaultRuntimeDir "{root}"
ErrorLog "{root}/error.log"
LogLevel warn
User www-data
Group www-data
Listen 127.0.0.1:{http_port}
Listen 127.0.0.1:{https_port}
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule alias_module {modules}/mod_alias.so
LoadModule socache_shmcb_module {modules}/mod_socache_shmcb.so
LoadModule ssl_module {modules}/mod_ssl.so
LoadModule proxy_module {modules}/mod_proxy.so
LoadModule proxy_http_module {modules}/mod_proxy_http.so
LoadModule proxy_wstunnel_module {modules}/mod_proxy_wstunnel.so
LoadModule rewrite_module {modules}/mod_rewrite.so
LoadModule headers_module {modules}/mod_headers.so
SSLSessionCache shmcb:{root}/ssl_scache(512000)
CustomLog "{root}/access.log" "%a \\"%r\\" %>s"

# ---- from the seed guide (ports, names and certificate files substituted)
<VirtualHost *:{http_port}>
ServerName localhost
Redirect / https://localhost:{https_port}/
</VirtualHost>
<VirtualHost *:{https_port}>
ServerName localhost

SSLCertificateFile {root}/fullchain.pem
SSLCertificateKeyFile {root}/privkey.pem
Include {root}/options-ssl-apache.conf
# Added: tell the hub the client used https (mod_proxy does not).
RequestHeader set X-Forwarded-Proto https

RewriteEngine On
RewriteCond %{{HTTP:Connection}} Upgrade [NC]
RewriteCond %{{HTTP:Upgrade}} websocket [NC]

RewriteRule /jhub/(.*) ws://127.0.0.1:{hub_port}/jhub/$1 [P,L]
RewriteRule /jhub/(.*) http://127.0.0.1:{hub_port}/jhub/$1 [P,L]

<Location "/jhub/">
  # preserve Host header to avoid cross-origin problems
  ProxyPreserveHost on
  # proxy to JupyterHub
  ProxyPass         http://127.0.0.1:{hub_port}/jhub/
  ProxyPassReverse  http://127.0.0.1:{hub_port}/jhub/
</Location>

</VirtualHost>
"""



class Apache:
    """apache2 -f <private conf> -DFOREGROUND in its own session; stopped on exit."""

    def __init__(self, hub_port):
        self.root = tempfile.mkdtemp(prefix="hubtest-apache-")
        os.chmod(self.root, 0o755)
        self.http_port, self.https_port = hubtest.free_port(), hubtest.free_port()
        self.hub_port = hub_port
        self.proc = None
        self.cafile = os.path.join(self.root, "fullchain.pem")

    def path(self, name):
        return os.path.join(self.root, name)

    def read(self, name):
        try:
            with open(self.path(name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def start(self):
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-days", "2", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                            "-keyout", self.path("privkey.pem"), "-out", self.cafile],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"openssl req failed: {r.stderr}")
        with open(self.path("options-ssl-apache.conf"), "w") as f:
            f.write(OPTIONS_SSL_APACHE)
        with open(self.path("apache2.conf"), "w") as f:
            f.write(APACHE_CONF.format(root=self.root, modules=MODULES, http_port=self.http_port,
                                       https_port=self.https_port, hub_port=self.hub_port))
        r = subprocess.run([APACHE, "-t", "-f", self.path("apache2.conf")], capture_output=True, text=True,
                           timeout=30)
        if not check(r.returncode == 0, f"apache2 -t accepts the seed's configuration ({r.stderr.strip()})"):
            raise RuntimeError("apache2 configuration refused")
        self.proc = subprocess.Popen([APACHE, "-f", self.path("apache2.conf"), "-DFOREGROUND"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.path("stderr.log"), "wb"), start_new_session=True)

        def answers():
            if self.proc.poll() is not None:
                raise RuntimeError(f"apache2 exited with {self.proc.returncode}:\n{self.read('error.log')}"
                                   f"{self.read('stderr.log')}")
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                    return True
            except OSError:
                return False

        if not wait_for(answers, timeout=20):
            raise RuntimeError(f"apache2 does not listen on {self.https_port}:\n{self.read('error.log')}")

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful stop of the parent and its children
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # anything left in its session
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait(timeout=10)
        if hubtest._counts["failed"]:
            print(f"--- apache2 error.log:\n{self.read('error.log')[-3000:]}", flush=True)
        if not os.environ.get("HUBTEST_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)
        return False


class TlsClient(hubtest.Client):
    """hubtest.Client over HTTPS to Apache, verifying its certificate, from CLIENT_ADDRESS."""

    def __init__(self, apache):
        super().__init__(f"https://localhost:{apache.https_port}")
        self.context = ssl.create_default_context(cafile=apache.cafile)

    def connection(self):
        return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context,
                                           source_address=(CLIENT_ADDRESS, 0))


class TlsWebSocket:
    """A minimal RFC 6455 client over TLS: text frames out (masked), messages in."""

    def __init__(self, client, path, origin):
        raw = socket.create_connection(("127.0.0.1", client.port), timeout=30, source_address=(CLIENT_ADDRESS, 0))
        self.sock = client.context.wrap_socket(raw, server_hostname=client.host)
        key = base64.b64encode(os.urandom(16)).decode()
        head = (f"GET {path} HTTP/1.1\r\nHost: {client.host}:{client.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: {origin}\r\nCookie: {client._cookie_header(path.split('?')[0])}\r\n\r\n")
        self.sock.sendall(head.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        response, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status_line = response.split(b"\r\n", 1)[0].decode(errors="replace")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.ok = self.status_line.startswith("HTTP/1.1 101") and accept in response

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the WebSocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_text(self, text):
        self.sock.sendall(make_frame(0x1, text.encode(), mask=True))

    def recv_message(self):
        parts, opcode = [], None
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            key = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if key:
                payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            op = b0 & 0x0F
            if op == 0x9:
                self.sock.sendall(make_frame(0xA, payload, mask=True))
                continue
            if op == 0x8:
                raise ConnectionError("the server closed the WebSocket")
            if op in (0x1, 0x2):
                opcode = op
            parts.append(payload)
            if b0 & 0x80 and op != 0xA:
                return opcode, b"".join(parts)

    def close(self):
        try:
            self.sock.sendall(make_frame(0x8, struct.pack("!H", 1000), mask=True))
        except OSError:
            pass
        self.sock.close()



def api(client, method, path, **kw):
    headers = dict(kw.pop("headers", {}), Authorization=f"token {SERVICE_TOKEN}")
    return client.json(method, "/jhub/hub/api" + path, headers=headers, **kw)


def new_log(hub, since):
    return hub.log_text()[since:]


def run_kernel(c, apache, user):
    """Creates a kernel as a browser would (the _xsrf cookie) and runs code over its WebSocket."""
    prefix = f"/jhub/user/{user.name}/"
    origin = f"https://localhost:{apache.https_port}"
    xsrf = c.cookies.get("_xsrf", ("", ""))[0]
    check(xsrf != "", "the notebook set its _xsrf cookie through Apache and hubd")
    status, kernel, _ = c.json("POST", prefix + "api/kernels", json={"name": "python3"},
                               headers={"X-XSRFToken": xsrf, "Referer": origin + prefix + "tree"})
    if not check(status == 201 and kernel and "id" in kernel, f"a kernel starts through Apache ({status})"):
        return
    session = uuid.uuid4().hex
    ws = TlsWebSocket(c, f"{prefix}api/kernels/{kernel['id']}/channels?session_id={session}", origin)
    try:
        if not check(ws.ok, f"the kernel WebSocket upgrades through Apache and hubd ({ws.status_line})"):
            return
        msg_id = uuid.uuid4().hex
        ws.send_text(json.dumps({
            "header": {"msg_id": msg_id, "username": user.name, "session": session, "msg_type": "execute_request",
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": "import os; print(os.getuid(), os.getcwd())", "silent": False,
                        "store_history": False, "user_expressions": {}, "allow_stdin": False,
                        "stop_on_error": True}}))
        output, reply = "", None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and reply is None:
            opcode, data = ws.recv_message()
            if opcode != 0x1:
                continue
            m = json.loads(data)
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if m.get("msg_type") == "stream":
                output += m["content"].get("text", "")
            elif m.get("msg_type") == "execute_reply":
                reply = m["content"].get("status")
        check(reply == "ok", f"the kernel answers execute_request over the WebSocket ({reply})")
        check(output.strip() == f"{user.uid} {user.home_dir}",
              f"the code ran as {user.name} in her home ({output.strip()!r})")
    finally:
        ws.close()
    c.request("DELETE", prefix + f"api/kernels/{kernel['id']}",
              headers={"X-XSRFToken": xsrf, "Referer": origin + prefix + "tree"})


def test_through_apache(hub, apache, alice):
    c = TlsClient(apache)
    public = f"https://localhost:{apache.https_port}"

    plain = hubtest.Client(f"http://127.0.0.1:{apache.http_port}")
    status, headers, _ = plain.get("/jhub/")
    check(status in (301, 302) and headers.get("location") == f"{public}/jhub/",
          f"the seed's :80 virtual host redirects to https ({status} {headers.get('location')})")

    status, headers, body = c.get("/jhub/hub/login")
    check(status == 200 and b'action="/jhub/hub/login"' in body and b'name="password"' in body,
          "the login page under /jhub/ over HTTPS through Apache")
    status, headers, _ = c.get("/jhub/")
    check(status == 302 and headers.get("location") == "/jhub/hub/", f"/jhub/ leads to /jhub/hub/ ({headers})")

    since = len(hub.log_text())
    status, headers, _ = c.post("/jhub/hub/login", form={"username": alice.name, "password": alice.password})
    check(status == 302 and "jupyterhub-hub-login" in c.cookies, f"{alice.name} logs in with her PAM password")
    login_cookie = [s for s in c.set_cookies if s.startswith("jupyterhub-hub-login=")]
    check(login_cookie and "Path=/jhub/hub/" in login_cookie[0] and "; Secure" in login_cookie[0],
          f"the login cookie is Secure (https via a trusted proxy) under /jhub/hub/ ({login_cookie})")
    check(f"User logged in: {alice.name} from {CLIENT_ADDRESS}" in new_log(hub, since),
          f"hubd logs the client's address {CLIENT_ADDRESS} from Apache's X-Forwarded-For")
    # Apache writes its access log line after the response: wait for it.
    check(wait_for(lambda: f'{CLIENT_ADDRESS} "POST /jhub/hub/login' in apache.read("access.log"), timeout=5),
          "...which is the address Apache saw")

    status, body, _ = api(c, "GET", "")
    check(status == 200 and body and body.get("version") == "3.0.0", "the REST API through Apache")
    status, body, _ = api(c, "GET", "/users?limit=1", headers=PAGINATION)
    nxt = ((body or {}).get("_pagination") or {}).get("next") or {}
    check(status == 200 and nxt.get("url") == f"{public}/jhub/hub/api/users?offset=1&limit=1",
          f"the paginated next URL has the public https origin ({nxt.get('url')})")
    status, body, _ = c.json("GET", f"/jhub/hub/api/users/{alice.name}",
                             headers={"X-XSRFToken": c.xsrf_token()})
    check(status == 200 and body and body.get("name") == alice.name,
          "a cookie-authenticated API call with the page's XSRF token works through Apache")
    status, _, _ = c.json("GET", f"/jhub/hub/api/users/{alice.name}",
                          headers={"Referer": f"{public}/jhub/hub/home"}, xsrf=False)
    check(status == 403, f"...and without the token (Referer alone) it does not ({status})")

    # The real server, as alice, through the real helper and sudo.
    status, headers, _ = c.post("/jhub/hub/spawn")
    check(status == 302 and headers.get("location") == f"/jhub/hub/spawn-pending/{alice.name}",
          f"Start leads to the pending page under /jhub/ ({headers.get('location')})")
    started = time.monotonic()

    def ready():
        s, model, _ = api(c, "GET", f"/users/{alice.name}")
        if s == 200 and (model.get("server") or model.get("pending") is None):
            return model
        return None

    model = wait_for(ready, timeout=60, step=0.25) or {}
    check(model.get("server") == f"/jhub/user/{alice.name}/",
          f"jupyterhub-singleuser runs for {alice.name} under /jhub/ ({model.get('server')}, "
          f"{time.monotonic() - started:.1f} s)")
    ps = subprocess.run(["ps", "-o", "args=", "-u", alice.name], capture_output=True, text=True).stdout
    check("jupyterhub-singleuser" in ps, f"it runs with {alice.name}'s uid")

    status, body, trail = follow(c, f"/jhub/user/{alice.name}/tree")
    check(status == 200 and b"Select or create a notebook" in body,
          f"the notebook through Apache, hubd's proxy and OAuth ({status}): {trail}")
    check(any(t.startswith("/jhub/hub/api/oauth2/authorize") for t in trail)
          and any(t.startswith(f"/jhub/user/{alice.name}/oauth_callback") for t in trail),
          "...by way of /jhub/hub/api/oauth2/authorize and her server's callback")
    if status == 200:
        run_kernel(c, apache, alice)

    status, _, _ = api(c, "DELETE", f"/users/{alice.name}/server")
    check(status in (202, 204), f"the server stops through the API ({status})")
    stopped = wait_for(lambda: (api(c, "GET", f"/users/{alice.name}")[1] or {}).get("server", 1) is None,
                       timeout=20, step=0.2)
    check(stopped, "...and is gone")


def test_untrusted(hub, apache, alice, args):
    """Without trusted_downstream_ips hubd believes no X-Forwarded-* header, from Apache or anyone."""
    hub.restart(args=args + ["--JupyterHub.trusted_downstream_ips=[]"], wait=False)
    wait_ready(hub)
    c = TlsClient(apache)
    since = len(hub.log_text())
    status, _, _ = c.post("/jhub/hub/login", form={"username": alice.name, "password": alice.password})
    check(status == 302, "login through Apache still works")
    log = new_log(hub, since)
    check(f"User logged in: {alice.name} from 127.0.0.1" in log and CLIENT_ADDRESS not in log,
          "hubd now logs Apache's address, not the client's")
    check(all("; Secure" not in s for s in c.set_cookies), "...and no longer marks cookies Secure")
    status, body, _ = api(c, "GET", "/users?limit=1", headers=PAGINATION)
    url = (((body or {}).get("_pagination") or {}).get("next") or {}).get("url", "")
    check(url.startswith(f"http://localhost:{apache.https_port}/"), f"...nor builds https URLs ({url})")

    direct = hubtest.Client(hub.url)
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    since = len(hub.log_text())
    status, _, _ = direct.post("/jhub/hub/login", form={"username": alice.name, "password": alice.password},
                               headers=forged)
    log = new_log(hub, since)
    check(status == 302 and "from 127.0.0.1" in log and "203.0.113.9" not in log,
          "a forged X-Forwarded-For sent straight to hubd is not believed")
    check(all("; Secure" not in s for s in direct.set_cookies), "...nor a forged X-Forwarded-Proto")
    status, body, _ = direct.json("GET", "/jhub/hub/api/users?limit=1",
                                  headers=dict(forged, Authorization=f"token {SERVICE_TOKEN}", **PAGINATION))
    url = (((body or {}).get("_pagination") or {}).get("next") or {}).get("url", "")
    check(url.startswith(f"http://127.0.0.1:{hub.port}/jhub/"), f"...nor a forged X-Forwarded-Host ({url})")


def wait_ready(hub):
    def up():
        try:
            return hub.client().get("/jhub/hub/api")[0] == 200
        except OSError:
            return False

    if not wait_for(up, timeout=20):
        raise hubtest.HubStartError(f"hubd did not answer under /jhub/:\n{hub.log_tail()}")


def run():
    hubtest.require_root()
    hubtest.require_hubd()
    for tool in ("sudo", "visudo", "setpriv", "useradd", "openssl"):
        if not shutil.which(tool):
            hubtest.skip(f"{tool} is missing")
    if not os.access(APACHE, os.X_OK) or not os.path.exists(os.path.join(MODULES, "mod_proxy_wstunnel.so")):
        print("FAIL: apache2 is not installed (scripts/setup-debian.sh installs it)", flush=True)
        raise SystemExit(1)
    if not os.access(SINGLEUSER, os.X_OK):
        print(f"FAIL: {SINGLEUSER} is missing (apt-get install jupyterhub)", flush=True)
        raise SystemExit(1)
    with open(os.path.join(hubtest.ROOT, "sudospawner", "sudospawner.conf.example")) as f:
        policy = f.read()
    with hubtest.hub_user() as hub_name, hubtest.SystemUser(password=secrets.token_urlsafe(12)) as alice:
        try:
            with sudo_setup(hub_name.name, [alice.name], policy) as setup:
                if setup is None:
                    return
                config = f"""
c.JupyterHub.base_url = '/jhub/'
c.JupyterHub.trusted_downstream_ips = ['127.0.0.1']
c.JupyterHub.spawner_class = 'sudospawner.SudoSpawner'
c.Authenticator.allowed_users = {{'{alice.name}', 'hubt-someone-else'}}
c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{SERVICE_TOKEN}', 'admin': True}}]
c.Spawner.http_timeout = 30
c.Spawner.start_timeout = 60
"""
                with hubtest.Hub(config=config, user=hub_name.name, start=False) as hub:
                    hub.start(wait=False)
                    wait_ready(hub)
                    with Apache(hub.port) as apache:
                        hubtest.main([("through apache", lambda: test_through_apache(hub, apache, alice)),
                                      ("untrusted", lambda: test_untrusted(hub, apache, alice, []))])
        finally:
            # Servers outlive hubd by design: whatever still runs as alice is ours to end.
            stop_pids(user_pids(alice.name))


if __name__ == "__main__":
    run()
