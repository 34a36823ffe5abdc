#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""JupyterHub.internal_ssl with real sudo and the real jupyterhub-singleuser 3.0.

As root: a hub user, two real users (alice, bob), the built helper where the
sudoers rule names it, a policy running /usr/bin/jupyterhub-singleuser, and
hubd with c.JupyterHub.internal_ssl = True. Checks:
* hubd creates both internal CAs, mode 700 / 600, owned by the hub user;
* alice's server is spawned through the hub, gets JUPYTERHUB_SSL_* files in a
  fresh directory only she can read, and https URLs; the key's text is in no
  process's argv or environment;
* through the hub's proxy alice completes the OAuth flow to her notebook, and
  her token reaches the notebook API (the server checks it with the hub API
  over TLS) and a kernel's WebSocket (101);
* as bob (runuser), a TLS connection to alice's port without a certificate,
  one with bob's own server certificate and key, and plain HTTP all fail to
  get any HTTP answer; the same client with a certificate of the hub CA does
  get one (so the refusals are the server's, not the client's);
* stopping the server removes its TLS directory.
Run under flock /tmp/hubd-itest.lock (shared sudoers, helper and users).
"""
import base64
import glob
import json
import os
import secrets
import shutil
import stat
import subprocess
import tempfile
import time

import hubtest
from hubtest import check, follow, wait_for
from demotest import stop_pids, user_pids
from sudotest import require_singleuser, require_spawn_tools, singleuser_env, singleuser_policy, sudo_setup

SERVICE_TOKEN = secrets.token_hex(32)

POLICY = singleuser_policy("test_internal_ssl.py", "log_file .local/state/hubd/server.log")

CONFIG = f"""
c.JupyterHub.internal_ssl = True
c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{SERVICE_TOKEN}', 'admin': True}}]
c.Spawner.http_timeout = 60
c.Spawner.start_timeout = 90
"""

# Run as another user: one HTTPS (or plain) request to 127.0.0.1:PORT.
# Prints "ANSWER <status line>" if any HTTP answer came back, else "REFUSED <why>".
CLIENT = r'''
import socket, ssl, sys
port, mode = int(sys.argv[1]), sys.argv[2]
try:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if mode != "plain":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the attacker does not care who the server is
        if mode == "cert":
            ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        sock = ctx.wrap_socket(sock)
    sock.sendall(b"GET /user/x/api HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    data = sock.recv(4096)
    print("ANSWER " + data.split(b"\r\n", 1)[0].decode(errors="replace") if data.startswith(b"HTTP/")
          else "REFUSED no HTTP answer: %r" % data[:40])
except (OSError, ssl.SSLError) as e:
    print("REFUSED " + type(e).__name__ + ": " + str(e))
'''


def api(hub, method, path, body=None):
    return hub.client().json(method, "/hub/api" + path, headers={"Authorization": f"token {SERVICE_TOKEN}"},
                             json=body)


def login(hub, user):
    c = hub.client()
    status, _, _ = c.post("/hub/login", form={"username": user.name, "password": user.password})
    check(status == 302, f"{user.name} logs in")
    return c


def start_server(hub, user):
    status, _, _ = api(hub, "POST", f"/users/{user.name}/server")
    if not check(status in (201, 202), f"{user.name}'s server start is accepted ({status})"):
        return False
    ready = wait_for(lambda: (api(hub, "GET", f"/users/{user.name}")[1] or {}).get("server"), timeout=90, step=0.25)
    check(ready == f"/user/{user.name}/", f"{user.name}'s jupyterhub-singleuser answers over TLS ({ready})")
    return bool(ready)


def as_user(user, *args):
    r = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-I", "-c", CLIENT, *map(str, args)],
                       capture_output=True, text=True, timeout=30)
    return (r.stdout.strip() or r.stderr.strip()).splitlines()[-1] if (r.stdout or r.stderr) else "no output"


def every_process_text():
    """argv and environment of every process, as bytes (read as root)."""
    out = []
    for d in glob.glob("/proc/[0-9]*"):
        for name in ("cmdline", "environ"):
            try:
                with open(os.path.join(d, name), "rb") as f:
                    out.append(f.read())
            except OSError:
                pass
    return b"\n".join(out)


def hub_ca_client_cert(hub, workdir):
    """A client certificate signed by the hub CA (what hubd itself presents), made with openssl."""
    ca_dir = hub.path("internal-ssl")
    key, csr, crt = (os.path.join(workdir, n) for n in ("c.key", "c.csr", "c.crt"))
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", "/CN=control"], check=True, capture_output=True)
    ext = os.path.join(workdir, "ext")
    with open(ext, "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(ca_dir, "hub-ca.crt"),
                    "-CAkey", os.path.join(ca_dir, "hub-ca.key"), "-CAcreateserial", "-days", "1",
                    "-extfile", ext, "-out", crt], check=True, capture_output=True)
    for p in (key, crt):
        os.chmod(p, 0o644)
    return crt, key


def test_internal_ssl(hub, hub_name, alice, bob, workdir):
    # -- the CAs
    ca_dir = hub.path("internal-ssl")
    st = os.stat(ca_dir)
    check(stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == hub_name.uid,
          f"internal-ssl/ is 0700 and the hub user's ({oct(st.st_mode)})")
    files = sorted(os.listdir(ca_dir))
    check(files == ["hub-ca.crt", "hub-ca.key", "servers-ca.crt", "servers-ca.key"], f"two CAs: {files}")
    check(all(stat.S_IMODE(os.stat(os.path.join(ca_dir, f)).st_mode) == 0o600 for f in files), "each file 0600")
    check("https://127.0.0.1:" in hub.log_text() and "created the servers CA" in hub.log_text(),
          "the hub API is https and the log says the CAs were created")

    # -- alice's server
    c = login(hub, alice)
    if not start_server(hub, alice):
        print(hub.log_tail(40))
        return
    pid, env = singleuser_env(alice.name)
    check(pid is not None, "alice's jupyterhub-singleuser process is found")
    keyfile = env.get("JUPYTERHUB_SSL_KEYFILE", "")
    tls_dir = os.path.dirname(keyfile)
    check(keyfile.startswith("/tmp/hubd-tls-") and env.get("JUPYTERHUB_SSL_CERTFILE") == tls_dir + "/cert.pem"
          and env.get("JUPYTERHUB_SSL_CLIENT_CA") == tls_dir + "/ca.pem", f"the three JUPYTERHUB_SSL_* files: {keyfile}")
    st = os.stat(tls_dir)
    check(stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == alice.uid, "their directory is alice's and 0700")
    check(all(stat.S_IMODE(os.stat(os.path.join(tls_dir, f)).st_mode) == 0o600 and
              os.stat(os.path.join(tls_dir, f)).st_uid == alice.uid for f in ("key.pem", "cert.pem", "ca.pem")),
          "key, certificate and CA are alice's, 0600")
    check(env.get("JUPYTERHUB_API_URL", "").startswith("https://127.0.0.1:")
          and env.get("JUPYTERHUB_SERVICE_URL", "").startswith("https://127.0.0.1:"), "hub API and service URL are https")
    with open(keyfile, "rb") as f:
        key_body = f.read().split(b"\n")[1]
    check(len(key_body) > 20 and key_body not in every_process_text(), "the key is in no argv or environment")
    check(key_body not in hub.log_text().encode(), "...nor in hubd's log")
    port = int(env["JUPYTERHUB_SERVICE_URL"].split(":")[2].split("/")[0])
    with open(os.path.join(tls_dir, "ca.pem")) as f, open(os.path.join(ca_dir, "hub-ca.crt")) as g:
        check(f.read() == g.read(), "the server's CLIENT_CA is the hub CA, not the servers CA")

    # -- the browser flow through the proxy and OAuth
    status, body, trail = follow(c, f"/user/{alice.name}/tree")
    check(status == 200 and b"Select or create a notebook" in body, f"alice reaches her notebook: {trail}")
    check(any("oauth2/authorize" in t for t in trail) and any("oauth_callback" in t for t in trail),
          "...through the hub's OAuth provider and her server's callback")
    status, tok, _ = api(hub, "POST", f"/users/{alice.name}/tokens", {"note": "internal-ssl test"})
    token = (tok or {}).get("token", "")
    auth = {"Authorization": f"token {token}"}
    status, kernel, _ = c.json("POST", f"/user/{alice.name}/api/kernels", headers=auth, json={})
    check(status == 201 and kernel.get("id"), f"a kernel starts through the proxy ({status}): the server checked "
                                              "the token with the hub API over TLS")
    if kernel and kernel.get("id"):
        key = base64.b64encode(os.urandom(16)).decode()
        status, headers, _ = c.get(f"/user/{alice.name}/api/kernels/{kernel['id']}/channels",
                                   headers={**auth, "Upgrade": "websocket", "Connection": "Upgrade",
                                            "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": key})
        check(status == 101, f"the kernel's WebSocket upgrade is tunnelled over TLS ({status})")

    # -- another local user at alice's port (with a server, so with a certificate of his own)
    login(hub, bob)
    if not start_server(hub, bob):
        return
    _, bob_env = singleuser_env(bob.name)
    bob_cert, bob_key = bob_env.get("JUPYTERHUB_SSL_CERTFILE"), bob_env.get("JUPYTERHUB_SSL_KEYFILE")
    answer = as_user(bob.name, port, "tls")
    check(answer.startswith("REFUSED"), f"bob, TLS without a certificate: {answer}")
    answer = as_user(bob.name, port, "cert", bob_cert, bob_key)
    check(answer.startswith("REFUSED"), f"bob, with his own server's certificate and key: {answer}")
    answer = as_user(bob.name, port, "plain")
    check(answer.startswith("REFUSED"), f"bob, plain HTTP: {answer}")
    crt, key = hub_ca_client_cert(hub, workdir)
    answer = as_user(bob.name, port, "cert", crt, key)
    check(answer.startswith("ANSWER HTTP/1.1"), f"control: the same client with a hub-CA certificate gets an "
                                                f"answer ({answer})")

    # -- stop: the files go
    status, _, _ = api(hub, "DELETE", f"/users/{alice.name}/server")
    check(wait_for(lambda: not os.path.exists(tls_dir), timeout=20), f"stopping removes {tls_dir}")
    api(hub, "DELETE", f"/users/{bob.name}/server")
    wait_for(lambda: not (api(hub, "GET", f"/users/{bob.name}")[1] or {}).get("server"), timeout=20)


def run():
    require_spawn_tools("sudo", "visudo", "setpriv", "useradd", "runuser", "openssl", "pgrep")
    require_singleuser()
    workdir = tempfile.mkdtemp(prefix="hubtest-issl-")
    os.chmod(workdir, 0o755)
    try:
        with hubtest.hub_user() as hub_name, hubtest.SystemUser(password=secrets.token_urlsafe(12)) as alice, \
                hubtest.SystemUser(password=secrets.token_urlsafe(12)) as bob, \
                sudo_setup(hub_name.name, [alice.name, bob.name], POLICY) as setup:
            if setup is None:
                return
            args = ["--JupyterHub.spawner_class=sudospawner.SudoSpawner"]
            try:
                with hubtest.Hub(config=CONFIG, args=args, user=hub_name.name) as hub:
                    hubtest.main([("internal ssl", lambda: test_internal_ssl(hub, hub_name, alice, bob, workdir))])
            finally:
                # Servers outlive hubd by design: whatever still runs as alice or bob is ours to end.
                for user in (alice, bob):
                    stop_pids(user_pids(user.name))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    run()
