#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Public TLS through the real hubd binary (issue 5): JupyterHub.ssl_cert /
ssl_key with a test CA made here by the openssl command; the login page over
https with HSTS and Secure cookies; TLS 1.0/1.1 and non-forward-secret
ciphers refused; a proxied service (HTTP, big bodies, a WebSocket) over TLS;
OCSP stapling from a response `openssl ocsp` signs; SIGHUP with a renewed
certificate while a long download on an old connection completes; key file
permissions; the plain-HTTP redirect listener; and testssl.sh reporting no
finding of severity MEDIUM or higher. Root not needed.
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
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone

import hubtest
from hubtest import check
from test_proxy import BIG, WS_GUID, make_frame, read_frame, start_backend

BAD_SEVERITIES = {"MEDIUM", "HIGH", "CRITICAL"}


# ---------------------------------------------------------------- certificates

def run(*argv, cwd):
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class TestCA:
    """A CA, server certificates it signs for localhost/127.0.0.1 (RSA 2048,
    random 16-byte serials, an OCSP URL in the AIA), and OCSP responses."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hubd-tls-ca-")
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "3650", "-subj", "/CN=hubd test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        with open(self.path("ext.cnf"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
                    "authorityInfoAccess=OCSP;URI:http://127.0.0.1:9/\n")
        self.ca = self.path("ca.pem")

    def path(self, name):
        return os.path.join(self.dir, name)

    def issue(self, name):
        """Returns (fullchain PEM bytes, key PEM bytes, serial as hex)."""
        serial = "4" + secrets.token_hex(15)  # 16 bytes, positive
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", "/CN=localhost", cwd=self.dir)
        run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
            "0x" + serial, "-days", "90", "-out", f"{name}.pem", "-extfile", "ext.cnf", cwd=self.dir)
        with open(self.path(f"{name}.pem"), "rb") as c, open(self.ca, "rb") as a, \
                open(self.path(f"{name}.key"), "rb") as k:
            return c.read() + a.read(), k.read(), serial

    def ocsp(self, name, serial):
        """A real, signed OCSP response saying `name` is good (DER bytes)."""
        expiry = (datetime.now(timezone.utc) + timedelta(days=90)).strftime("%y%m%d%H%M%SZ")
        with open(self.path("index.txt"), "w") as f:
            f.write(f"V\t{expiry}\t\t{serial.upper()}\tunknown\t/CN=localhost\n")
        run("openssl", "ocsp", "-issuer", "ca.pem", "-cert", f"{name}.pem", "-reqout", f"{name}.req", "-no_nonce",
            cwd=self.dir)
        run("openssl", "ocsp", "-index", "index.txt", "-rsigner", "ca.pem", "-rkey", "ca.key", "-CA", "ca.pem",
            "-reqin", f"{name}.req", "-respout", f"{name}.ocsp", "-ndays", "7", cwd=self.dir)
        with open(self.path(f"{name}.ocsp"), "rb") as f:
            return f.read()

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


CA = None
FIRST = None  # (chain, key, serial)


# ---------------------------------------------------------------- hub over https

def client_context(minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.MAXIMUM_SUPPORTED):
    ctx = ssl.create_default_context(cafile=CA.ca)
    ctx.minimum_version = minimum
    ctx.maximum_version = maximum
    return ctx


class HttpsClient(hubtest.Client):
    def connection(self):
        return http.client.HTTPSConnection("localhost", self.port, timeout=self.timeout, context=client_context())


class TlsHub(hubtest.Hub):
    """hubd with the certificate files in its working directory (owned by the hub user)."""

    def __init__(self, chain, key, extra_files=None, args=(), key_mode=0o600, **kw):
        files = {"fullchain.pem": (chain, 0o644), "privkey.pem": (key, key_mode)}
        files.update(extra_files or {})
        super().__init__(config=CONFIG, files=files,
                         args=["--JupyterHub.ssl_cert=fullchain.pem", "--JupyterHub.ssl_key=privkey.pem"] + list(args),
                         **kw)

    @property
    def url(self):
        return f"https://localhost:{self.port}"

    def client(self):
        return HttpsClient(self.url)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


CONFIG = None
HUB = None
BACKEND_PORT = None


def https(timeout=30):
    return http.client.HTTPSConnection("localhost", HUB.port, timeout=timeout, context=client_context())


def peer_serial(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_context().wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert()["serialNumber"].lower().lstrip("0")


def s_client(*args, stdin=b""):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{HUB.port}", "-servername", "localhost",
                        "-CAfile", CA.ca, *args], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20)
    return r.returncode, r.stdout.decode(errors="replace")


# ---------------------------------------------------------------- tests

def test_login_page_hsts_and_secure_cookies():
    c = HUB.client()
    status, headers, body = c.get("/hub/login")
    check(status == 200 and b"<form" in body, f"login page over https -> 200 ({status})")
    check(headers.get("strict-transport-security") == "max-age=31536000", "HSTS on the login page")
    status, headers, _ = c.post("/hub/login", form={"username": "ann", "password": "pw"})
    check(status == 302, f"login over https -> 302 ({status})")
    cookies = [v for v in c.set_cookies if v.startswith("jupyterhub-")]
    check(cookies and all("; Secure" in v for v in cookies), f"every hub cookie is Secure over TLS: {cookies}")
    check(headers.get("strict-transport-security") == "max-age=31536000", "HSTS on the login answer")
    # curl agrees with Python about the certificate and the header.
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--cacert", CA.ca,
                        f"https://localhost:{HUB.port}/hub/login"], stdout=subprocess.PIPE, timeout=20)
    check(r.returncode == 0 and b"strict-transport-security: max-age=31536000" in r.stdout.lower(),
          "curl: certificate verified, HSTS present")


def test_protocols_and_ciphers():
    for flag in ("-tls1", "-tls1_1"):
        rc, out = s_client(flag, "-cipher", "ALL:@SECLEVEL=0")
        check(rc != 0 and "Cipher is (NONE)" in out, f"s_client {flag}: refused")
    for cipher in ("AES128-GCM-SHA256", "AES256-SHA", "ECDHE-RSA-AES128-SHA", "DHE-RSA-AES128-GCM-SHA256"):
        rc, out = s_client("-tls1_2", "-cipher", cipher + ":@SECLEVEL=0")
        check(rc != 0 and "Cipher is (NONE)" in out, f"TLS 1.2 {cipher} (no forward secrecy or no AEAD) refused")
    rc, out = s_client("-tls1_2", stdin=b"")
    check(rc == 0 and "Cipher is ECDHE-RSA-AES128-GCM-SHA256" in out, "TLS 1.2 gets ECDHE-RSA-AES128-GCM-SHA256")
    rc, out = s_client("-tls1_3", stdin=b"")
    check(rc == 0 and "TLSv1.3" in out and "Verify return code: 0 (ok)" in out, "TLS 1.3 with a verified chain")
    check("Compression: NONE" in out, "no TLS compression")


def test_plain_http_to_tls_port():
    with socket.create_connection(("127.0.0.1", HUB.port), timeout=10) as s:
        s.sendall(b"GET /hub/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    check(data.startswith(b"HTTP/1.1 400 ") and b"https://" in data,
          f"plain HTTP to the TLS port gets a 400 naming https ({data[:60]!r})")


def test_proxied_service_over_tls():
    c = https()
    c.request("GET", "/services/echo/x?y=1")
    r = c.getresponse()
    body = r.read()
    check(r.status == 200, f"proxied GET over TLS -> 200 ({r.status})")
    seen = json.loads(body)
    check(seen["headers"].get("x-forwarded-proto") == "https", "the backend is told X-Forwarded-Proto: https")
    check(r.getheader("Strict-Transport-Security") == "max-age=31536000", "HSTS on proxied answers")
    # Same connection: a 20 MiB download and a 20 MiB upload (flow control both ways).
    c.request("GET", "/services/echo/big")
    r = c.getresponse()
    total = 0
    while chunk := r.read(1 << 20):
        total += len(chunk)
    check(r.status == 200 and total == BIG, f"20 MiB download through the proxy over TLS ({total})")
    blob = os.urandom(BIG)
    c.request("POST", "/services/echo/upload", body=blob, headers={"Content-Type": "application/octet-stream"})
    r = c.getresponse()
    seen = json.loads(r.read())
    check(seen.get("length") == BIG and seen.get("sha256") == hashlib.sha256(blob).hexdigest(),
          "20 MiB upload through the proxy over TLS arrives intact")
    c.close()


def test_websocket_over_tls():
    raw = socket.create_connection(("127.0.0.1", HUB.port), timeout=10)
    s = client_context().wrap_socket(raw, server_hostname="localhost")
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /services/echo/ws HTTP/1.1\r\nHost: localhost:{HUB.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    f = s.makefile("rb")
    status = f.readline().decode()
    headers = {}
    while (line := f.readline().decode()) not in ("\r\n", ""):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    if not check(status.startswith("HTTP/1.1 101") and headers.get("sec-websocket-accept") == expected,
                 f"WebSocket upgrade over TLS ({status.strip()})"):
        return
    payloads = [b"hello", os.urandom(200_000), b"x" * 70_000]
    for p in payloads:
        s.sendall(make_frame(2, p, mask=True))
    echoed = [read_frame(f) for _ in payloads]
    check(echoed == [(2, p) for p in payloads], "WebSocket frames (up to 200 kB) echo through the TLS tunnel")
    s.sendall(make_frame(8, b"", mask=True))
    check(read_frame(f) == (8, b""), "close frame echoed")
    f.close()
    s.close()


def test_ocsp_stapling():
    rc, out = s_client("-status", stdin=b"")
    check(rc == 0 and "OCSP Response Status: successful" in out and "Cert Status: good" in out,
          "openssl s_client -status sees the stapled OCSP response (good)")


def test_sighup_renewal_keeps_old_connections():
    old_serial = FIRST[2].lstrip("0")
    check(peer_serial(HUB.port) == old_serial, "before SIGHUP: the first certificate")
    # A long download starts on an old connection...
    c = https(timeout=60)
    c.request("GET", "/services/echo/big")
    r = c.getresponse()
    got = len(r.read(1 << 20))
    # ...a renewal lands (certbot writes new files) and hubd gets SIGHUP.
    chain, key, serial = CA.issue("renewed")
    HUB.write_file("fullchain.pem", chain, 0o644)
    HUB.write_file("privkey.pem", key, 0o600)
    HUB.write_file("fullchain.pem.ocsp", CA.ocsp("renewed", serial), 0o644)
    os.kill(HUB.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    seen = old_serial
    while time.monotonic() < deadline and seen != serial.lstrip("0"):
        time.sleep(0.1)
        seen = peer_serial(HUB.port)
    check(seen == serial.lstrip("0"), "after SIGHUP new connections get the renewed certificate")
    while chunk := r.read(1 << 20):
        got += len(chunk)
    check(got == BIG, f"the download on the old connection completed ({got} of {BIG} bytes)")
    c.request("GET", "/services/echo/again")
    r2 = c.getresponse()
    r2.read()
    check(r2.status == 200, "the old connection is still usable after the reload")
    check(HUB.running(), "hubd is still running after SIGHUP")
    check("reloaded TLS certificate" in HUB.log(), "the reload is logged")
    rc, out = s_client("-status", stdin=b"")
    check("Cert Status: good" in out, "the renewed certificate's OCSP response is stapled")

    # A broken renewal (key of another certificate) keeps the working one.
    _, other_key, _ = CA.issue("other")
    HUB.write_file("privkey.pem", other_key, 0o600)
    os.kill(HUB.proc.pid, signal.SIGHUP)
    time.sleep(1)
    check(HUB.running() and peer_serial(HUB.port) == serial.lstrip("0"),
          "a failed reload keeps serving the current certificate")
    log = HUB.log()
    check("TLS reload failed, still serving the previous certificate" in log and
          "does not belong to the certificate" in log, "the failed reload says why and what to do")
    HUB.write_file("privkey.pem", key, 0o600)


def test_key_permissions():
    chain, key, _ = FIRST
    hub = TlsHub(chain, key, key_mode=0o644, start=False)
    hub.setup()
    os.chmod(hub.dir, 0o755)  # a 0644 key inside a 0700 directory is not readable by others
    try:
        hub.start(wait=False)
        rc = hub.wait_exit(10)
        check(rc == 1, f"a world-readable key is refused (exit {rc})")
        log = hub.log()
        check("readable by every user" in log and "chmod 600" in log and
              "ssl_allow_world_readable_key" in log, "the refusal names the file's fix and the override")
    finally:
        hub.stop()
    hub = TlsHub(chain, key, key_mode=0o644, args=["--JupyterHub.ssl_allow_world_readable_key=True"])
    hub.setup()
    os.chmod(hub.dir, 0o755)
    try:
        hub.start()
        check("readable by every user" in hub.log(), "allowed explicitly: starts with a warning")
    finally:
        hub.stop()
    with TlsHub(chain, key, key_mode=0o640) as hub:
        check("readable by group" in hub.log() and "chmod 600" in hub.log(), "a 0640 key: warning naming chmod 600")
    hub = TlsHub(chain, b"", start=False)
    try:
        hub.start(wait=False)
        check(hub.wait_exit(10) == 1 and "no private key" in hub.log(), "an empty key file stops start-up, named")
    finally:
        hub.stop()


def test_redirect_listener():
    chain, key, _ = FIRST
    port = hubtest.free_port()
    with TlsHub(chain, key, args=[f"--JupyterHub.redirect_http_port={port}"]) as hub:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/hub/login?next=%2Fhub%2F", headers={"Host": "hub.example.org"})
        r = c.getresponse()
        r.read()
        check(r.status == 301 and r.getheader("Location") == f"https://hub.example.org:{hub.port}/hub/login?next=%2Fhub%2F",
              f"plain HTTP redirects to https ({r.status} {r.getheader('Location')})")
        check(r.getheader("Strict-Transport-Security") is None, "no HSTS over plain HTTP (browsers ignore it)")
        c.request("POST", "/hub/api/x", body=b"", headers={"Host": "localhost"})
        r = c.getresponse()
        r.read()
        check(r.status == 308, "other methods get 308 (method and body kept)")
        c.close()


def test_testssl():
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    if not testssl:
        raise hubtest.Skip("testssl.sh is not installed (scripts/setup-debian.sh installs it)")
    out = os.path.join(HUB.dir, "testssl.json")
    # Protocols, cipher categories, forward secrecy, server defaults and
    # certificate, server preference, vulnerabilities and HTTP headers; no
    # client simulation or per-cipher listing (slow and informational). No
    # DNS and no contact with anything but hubd. "/" is the hub's front door
    # (a redirect, with the same security headers as pages).
    argv = [testssl, "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none", "--ip", "127.0.0.1",
            "--add-ca", CA.ca, "--connect-timeout", "10", "--openssl-timeout", "10",
            "-p", "-s", "-f", "-S", "-P", "-U", "-h", "--jsonfile", out, f"https://localhost:{HUB.port}/"]
    start = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600, cwd=HUB.dir)
    elapsed = time.monotonic() - start
    print(f"testssl took {elapsed:.0f} s", flush=True)
    with open(out) as f:
        findings = json.load(f)
    ids = {x["id"] for x in findings}
    for wanted in ("SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3", "cipherlist_3DES_IDEA", "PFS", "HSTS_time",
                   "heartbleed", "ROBOT", "CRIME_TLS", "BREACH", "LUCKY13", "cert_chain_of_trust", "OCSP_stapling"):
        check(wanted in ids, f"testssl checked {wanted}")
    bad = [f"{x['id']} {x['severity']}: {x['finding']}" for x in findings if x["severity"] in BAD_SEVERITIES]
    check(not bad, "testssl reports no finding of severity MEDIUM or higher" + ("".join("\n  " + b for b in bad)))
    check(r.returncode >= 0 and len(findings) > 80, f"testssl ran its checks ({len(findings)} findings)")
    by_id = {x["id"]: x for x in findings}
    for proto, severity in (("TLS1", "OK"), ("TLS1_1", "OK"), ("TLS1_2", "OK"), ("TLS1_3", "OK")):
        check(by_id.get(proto, {}).get("severity") in (severity, "INFO"), f"testssl: {proto} as expected")
    check("not offered" in by_id.get("TLS1", {}).get("finding", ""), "testssl: TLS 1.0 not offered")
    check("offered" in by_id.get("OCSP_stapling", {}).get("finding", "") and
          "not" not in by_id.get("OCSP_stapling", {}).get("finding", ""), "testssl: OCSP stapling offered")


def run_all():
    global CA, FIRST, CONFIG, HUB, BACKEND_PORT
    hubtest.require_hubd()
    if not shutil.which("openssl"):
        hubtest.skip("the openssl command is needed to make test certificates")
    CA = TestCA()
    backend = start_backend()
    BACKEND_PORT = backend.server_address[1]
    CONFIG = f"""
c = get_config()
c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = 'pw'
c.JupyterHub.services = [{{'name': 'echo', 'url': 'http://127.0.0.1:{BACKEND_PORT}'}}]
"""
    try:
        FIRST = CA.issue("first")
        ocsp = CA.ocsp("first", FIRST[2])
        with TlsHub(FIRST[0], FIRST[1], extra_files={"fullchain.pem.ocsp": (ocsp, 0o644)}) as hub:
            HUB = hub
            hubtest.main([test_login_page_hsts_and_secure_cookies, test_protocols_and_ciphers,
                          test_plain_http_to_tls_port, test_proxied_service_over_tls, test_websocket_over_tls,
                          test_ocsp_stapling, test_testssl, test_sighup_renewal_keeps_old_connections,
                          test_key_permissions, test_redirect_listener])
    finally:
        backend.shutdown()
        CA.remove()


if __name__ == "__main__":
    run_all()
