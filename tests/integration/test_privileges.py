#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Ports below 1024 without root (docs/security-model.md, "Privileges").

* hubd started as root exits non-zero before it writes anything, saying why
  (a root process on the public web; the seed guide) and what to do instead;
  with --allow-root it starts, warns, and still drops its capabilities;
* as an unprivileged hub account, a port below 1024 is refused with the
  sentence naming CAP_NET_BIND_SERVICE; given the capability as systemd's
  AmbientCapabilities= does (setpriv --ambient-caps) or as a file capability
  (setcap on a copy of the binary), hubd binds it and then serves with
  CapEff, CapPrm, CapInh and CapAmb empty in every thread;
* socket activation: a launcher binds two sockets (the public one on a port
  below 1024) and passes them from fd 3 with LISTEN_FDS, LISTEN_PID and
  LISTEN_FDNAMES=hub:public, as systemd does; hubd, with no capability at
  all, serves on both and marks them close-on-exec, so no process it starts
  inherits them. LISTEN_PID naming another process is ignored. A third
  socket named "redirect" serves the plain-HTTP redirect to https (with TLS
  on; without TLS it is refused with the reason).

/proc/<pid>/environ cannot show that hubd unset LISTEN_*: it is the
environment block as it was at execve, which unsetenv does not rewrite. The
unit test socket_activation checks the unsetting (and hubd's helpers get an
environment built from nothing anyway, spawn/helper_channel.cpp).

Needs root (exit 77 otherwise): it creates the hub account, binds ports
below 1024 and sets file capabilities.
"""
import http.client
import os
import shutil
import socket
import subprocess
import tempfile

import hubtest
from hubtest import check

CAP_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapAmb")
DUMMY = ["--JupyterHub.authenticator_class=dummy"]


def unprivileged_port_start():
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        return int(f.read())


def low_port(exclude=()):
    """A free port on 127.0.0.1 that needs CAP_NET_BIND_SERVICE here, or None."""
    for port in range(min(unprivileged_port_start(), 1024) - 1, 0, -1):
        if port in exclude:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    return None


def capability_sets(pid):
    """{field: set of hex values over all threads}, and the thread count."""
    sets = {f: set() for f in CAP_FIELDS + ("CapBnd",)}
    tasks = os.listdir(f"/proc/{pid}/task")
    for tid in tasks:
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in sets:
                    sets[name].add(value.strip())
    return sets, len(tasks)


def check_no_capabilities(hub, what):
    pid = hub.proc.pid
    with open(f"/proc/{pid}/comm") as f:
        check(f.read().strip().startswith("hubd"), f"{what}: pid {pid} is hubd itself")
    # Serve a few requests first: the sets must be empty while it serves.
    for _ in range(3):
        status, _, _ = hub.client().get("/hub/api")
        check(status == 200, f"{what}: GET /hub/api answers 200")
    sets, threads = capability_sets(pid)
    for field in CAP_FIELDS:
        check(sets[field] == {"0000000000000000"},
              f"{what}: {field} is empty in all {threads} threads ({sorted(sets[field])})")
    # Kept on purpose: an empty bounding set would break sudo (privileges.cpp).
    check(sets["CapBnd"] != {"0000000000000000"}, f"{what}: the bounding set is left alone, so sudo works")


class CapHub(hubtest.Hub):
    """A Hub whose setpriv also raises CAP_NET_BIND_SERVICE into the
    inheritable and ambient sets, as AmbientCapabilities= does under systemd."""

    def command(self):
        argv = super().command()
        assert argv[0] == "setpriv"
        return ["setpriv", "--inh-caps", "+net_bind_service", "--ambient-caps", "+net_bind_service"] + argv[1:]


class ActivatedHub(hubtest.Hub):
    """A Hub started like a systemd socket-activated service: `sockets` (a
    list of (socket, name)) arrive as fds 3, 4, ... with LISTEN_FDS and
    LISTEN_FDNAMES, and LISTEN_PID is the pid that becomes hubd (the shell
    execs setpriv, which execs hubd)."""

    def __init__(self, sockets, listen_pid=None, **kw):
        super().__init__(**kw)
        # High numbers first, so that moving them to 3, 4 cannot clobber one another.
        self.inherited = [(os.dup2(s.fileno(), 60 + i, inheritable=True), name) for i, (s, name) in enumerate(sockets)]
        self.pass_fds = tuple(fd for fd, _ in self.inherited)
        self.listen_pid = listen_pid

    def command(self):
        moves = " ".join(f"{3 + i}<&{fd} {fd}<&-" for i, (fd, _) in enumerate(self.inherited))
        names = ":".join(name for _, name in self.inherited)
        pid = self.listen_pid or "$$"
        script = (f'exec {moves}; LISTEN_PID={pid} LISTEN_FDS={len(self.inherited)} '
                  f'LISTEN_FDNAMES={names} exec "$@"')
        return ["bash", "-c", script, "bash"] + super().command()

    def close_inherited(self):
        for fd in self.pass_fds:
            os.close(fd)
        self.pass_fds = ()


def listening_socket(port=0):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    return s


# ---------------------------------------------------------------- root

def test_root_refused():
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([hubtest.HUBD, *DUMMY, f"--JupyterHub.bind_url=http://127.0.0.1:{hubtest.free_port()}"],
                           cwd=d, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                           env={"PATH": "/usr/bin:/bin"})
        check(r.returncode != 0, f"hubd as root exits non-zero (status {r.returncode})")
        for needle in ("refuses to run as root", "public web", "without root privileges", "User=hubd",
                       "AmbientCapabilities=CAP_NET_BIND_SERVICE", "setcap cap_net_bind_service=+ep",
                       "socket activation", "--allow-root"):
            check(needle in r.stderr, f"the refusal says {needle!r}")
        check(os.listdir(d) == [], f"nothing was written as root before the refusal ({os.listdir(d)})")


def test_allow_root():
    with hubtest.Hub(user="root", args=DUMMY + ["--allow-root"]) as hub:
        check("because of --allow-root" in hub.log_text(), "--allow-root starts hubd, with a warning in the log")
        check_no_capabilities(hub, "as root with --allow-root")


# ---------------------------------------------------------------- capability

def test_low_port_refused(account, port):
    if unprivileged_port_start() == 0:
        raise hubtest.Skip("net.ipv4.ip_unprivileged_port_start is 0 here: every port is unprivileged")
    with hubtest.Hub(user=account.name, args=DUMMY, start=False) as hub:
        hub.port, hub.hub_port = port, hubtest.free_port()
        hub.start(wait=False)
        rc = hub.wait_exit(timeout=15)
        check(rc not in (None, 0), f"port {port} without the capability: hubd exits non-zero (status {rc})")
        log = hub.log_text()
        check(f"port {port} on 127.0.0.1 needs the capability CAP_NET_BIND_SERVICE" in log,
              "the error names CAP_NET_BIND_SERVICE")
        check("AmbientCapabilities=CAP_NET_BIND_SERVICE" in log and "socket activation" in log,
              "and the ways to give it")


def test_ambient_capability(account, port):
    with CapHub(user=account.name, args=DUMMY, start=False) as hub:
        hub.port, hub.hub_port = port, hubtest.free_port()
        hub.start()
        check(f"running at http://127.0.0.1:{port}/" in hub.log_text(),
              f"with the ambient capability hubd listens on port {port}")
        check_no_capabilities(hub, "ambient capability")


def test_file_capability(account, port):
    setcap = shutil.which("setcap") or "/usr/sbin/setcap"
    if not os.access(setcap, os.X_OK):
        raise hubtest.Skip("setcap is not installed (Debian package libcap2-bin)")
    with hubtest.Hub(user=account.name, args=DUMMY, start=False) as hub:
        hub.binary = os.path.join(hub.dir, "hubd-cap")
        shutil.copy2(hubtest.HUBD, hub.binary)
        os.chmod(hub.binary, 0o755)
        r = subprocess.run([setcap, "cap_net_bind_service=+ep", hub.binary], capture_output=True, text=True)
        if r.returncode != 0:
            raise hubtest.Skip(f"setcap failed here (no xattrs on {hub.dir}?): {r.stderr.strip()}")
        hub.port, hub.hub_port = port, hubtest.free_port()
        hub.start()
        check(f"running at http://127.0.0.1:{port}/" in hub.log_text(),
              f"with the file capability hubd listens on port {port}")
        check_no_capabilities(hub, "file capability")


# ---------------------------------------------------------------- socket activation

def socket_inode(pid, fd):
    target = os.readlink(f"/proc/{pid}/fd/{fd}")
    return target if target.startswith("socket:[") else None


def cloexec(pid, fd):
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("flags:"):
                return bool(int(line.split()[1], 8) & 0o2000000)
    return False


def test_socket_activation(account, port):
    public = listening_socket(port)
    hub_api = listening_socket()
    hub = ActivatedHub([(hub_api, "hub"), (public, "public")], user=account.name, args=DUMMY, start=False)
    try:
        # bind_url and hub_bind_url name the same ports: hubd must not try to bind them.
        hub.port, hub.hub_port = public.getsockname()[1], hub_api.getsockname()[1]
        with hub:
            hub.start()
            hub.close_inherited()
            public.close()
            hub_api.close()
            pid = hub.proc.pid
            log = hub.log_text()
            check(f"running at http://127.0.0.1:{port}/ (socket from the service manager)" in log,
                  f"the public listener is the passed socket on port {port}")
            status, _, _ = hubtest.Client(hub.hub_url).get("/hub/api")
            check(status == 200, "the hub API answers on the socket named \"hub\" (passed first, as fd 3)")
            check(f"Hub API for single-user servers at {hub.hub_url}/hub/api (socket from the service manager)"
                  in log, "the log says so")
            for fd in (3, 4):
                check(socket_inode(pid, fd) is not None and cloexec(pid, fd),
                      f"fd {fd} in hubd is a socket marked close-on-exec")
            check_no_capabilities(hub, "socket activation (started without any capability)")

    finally:
        hub.close_inherited()
        public.close()
        hub_api.close()


def self_signed(directory, owner):
    """cert.pem and key.pem for localhost, readable only by `owner`."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    for path in (directory, cert, key):
        shutil.chown(path, owner)
    os.chmod(key, 0o600)
    return cert, key


def test_redirect_socket(account, port):
    public = listening_socket()
    redirect = listening_socket(port)
    tmp = tempfile.mkdtemp(prefix="hubtest-redirect-")
    try:
        cert, key = self_signed(tmp, account.name)
        tls = [f"--JupyterHub.ssl_cert={cert}", f"--JupyterHub.ssl_key={key}"]
        hub = ActivatedHub([(public, "public"), (redirect, "redirect")], user=account.name, args=DUMMY + tls,
                           start=False)
        hub.port, hub.hub_port = public.getsockname()[1], hubtest.free_port()
        try:
            with hub:
                hub.start(wait=False)
                hub.close_inherited()
                ready = hubtest.wait_for(lambda: "redirects to https" in hub.log_text(), timeout=15)
                check(ready, f"hubd serves the socket named \"redirect\" ({hub.log_tail(5)})")
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/hub/home", headers={"Host": "hub.example.org"})
                r = c.getresponse()
                r.read()
                c.close()
                check(r.status == 301 and r.getheader("Location") == f"https://hub.example.org:{hub.port}/hub/home",
                      f"plain HTTP on port {port} redirects to the https port ({r.status} {r.getheader('Location')})")
                status, _, _ = hubtest.Client(hub.hub_url).get("/hub/api")
                check(status == 200, "the hub API (plain HTTP on hub_bind_url) answers")
                sets, threads = capability_sets(hub.proc.pid)
                check(all(sets[f] == {"0000000000000000"} for f in CAP_FIELDS),
                      f"no capability in any of its {threads} threads")
        finally:
            hub.close_inherited()
        # Without TLS the same socket is refused: there is no https port to send anyone to.
        again, again_public = listening_socket(), listening_socket()
        hub = ActivatedHub([(again_public, "public"), (again, "redirect")], user=account.name, args=DUMMY,
                           start=False)
        hub.port, hub.hub_port = again_public.getsockname()[1], hubtest.free_port()
        try:
            with hub:
                hub.start(wait=False)
                hub.close_inherited()
                code = hub.wait_exit(timeout=15)
                check(code not in (None, 0) and "TLS is off" in hub.log_text(),
                      f"a redirect socket without TLS stops hubd with the reason (exit {code})")
        finally:
            hub.close_inherited()
            again.close()
            again_public.close()
    finally:
        public.close()
        redirect.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_listen_pid_for_someone_else(account):
    stray = listening_socket()
    hub = ActivatedHub([(stray, "public")], listen_pid=1, user=account.name, args=DUMMY, start=False)
    try:
        with hub:
            hub.start()  # on bind_url's free port: the passed socket is not hubd's to take
            hub.close_inherited()
            check("ignoring LISTEN_FDS: it was meant for process 1" in hub.log_text(),
                  "LISTEN_PID of another process: hubd says it ignores the variables")
            check(f"running at http://127.0.0.1:{hub.port}/" in hub.log_text(), "and binds bind_url itself")
    finally:
        hub.close_inherited()
        stray.close()


def main():
    hubtest.require_root()
    hubtest.require_hubd()
    port = low_port()
    if port is None:
        port = 80
    with hubtest.hub_user() as account:
        hubtest.main([
            ("root is refused with the reason", test_root_refused),
            ("--allow-root runs, warns, drops capabilities", test_allow_root),
            ("low port without the capability", lambda: test_low_port_refused(account, port)),
            ("low port with the ambient capability", lambda: test_ambient_capability(account, port)),
            ("low port with a file capability", lambda: test_file_capability(account, port)),
            ("socket activation", lambda: test_socket_activation(account, port)),
            ("LISTEN_PID of another process", lambda: test_listen_pid_for_someone_else(account)),
            ("socket activation of the redirect port", lambda: test_redirect_socket(account, port)),
        ])


if __name__ == "__main__":
    main()
