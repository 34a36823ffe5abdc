# SPDX-License-Identifier: BSD-3-Clause
"""`hubd check` on a real system (needs root; skipped otherwise).

Builds a correct installation the way docs/install.md does it (a hub user
with no shell and no password in group shadow, the installed helper, its
root-owned policy, a sudoers drop-in, a state directory, a cookie secret, a
TLS certificate from a private CA with its chain) and asserts that every
check passes. Then creates each misconfiguration of a catalogue for real,
asserts that `hubd check` reports that exact check with its fix, and undoes
it (in a finally, so the next case starts from the correct setup again).
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import hubtest
import sudotest
from hubtest import check

HUBD = hubtest.HUBD
PY_SITE = "/usr/local/lib/python3.11/dist-packages"


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)


def must(argv, **kw):
    r = run(argv, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {r.stderr.strip()}")
    return r


# ---------------------------------------------------------------- TLS material

CA_CNF = """[ca]
default_ca = d
[d]
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = p
copy_extensions = none
unique_subject = no
[p]
commonName = supplied
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
[leaf_ext]
basicConstraints = CA:FALSE
subjectAltName = DNS:localhost, IP:127.0.0.1
"""


class Pki:
    """A root CA, an intermediate, and leaves signed by `openssl ca` with explicit dates."""

    def __init__(self, directory):
        self.dir = directory
        with open(os.path.join(directory, "ca.cnf"), "w") as f:
            f.write(CA_CNF.format(dir=directory))
        open(os.path.join(directory, "index.txt"), "w").close()
        with open(os.path.join(directory, "serial"), "w") as f:
            f.write("1000\n")
        self.root_key, self.root = self.p("root.key"), self.p("root.pem")
        must(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.root_key, "-out",
              self.root, "-subj", "/CN=hubd check test root", "-days", "30",
              "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        self.mid_key, self.mid = self.p("mid.key"), self.p("mid.pem")
        self.sign("mid", "/CN=hubd check test intermediate", self.root, self.root_key, "ca_ext")

    def p(self, name):
        return os.path.join(self.dir, name)

    def sign(self, name, subject, ca, ca_key, ext, days=(-1, 30)):
        key, csr, out = self.p(name + ".key"), self.p(name + ".csr"), self.p(name + ".pem")
        must(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
              "-subj", subject])
        fmt = "%Y%m%d%H%M%SZ"
        start = time.strftime(fmt, time.gmtime(time.time() + days[0] * 86400))
        end = time.strftime(fmt, time.gmtime(time.time() + days[1] * 86400))
        must(["openssl", "ca", "-config", self.p("ca.cnf"), "-batch", "-notext", "-cert", ca, "-keyfile", ca_key,
              "-in", csr, "-out", out, "-startdate", start, "-enddate", end, "-extensions", ext])
        return out, key

    def leaf(self, name, days=(-1, 30)):
        return self.sign(name, "/CN=localhost", self.mid, self.mid_key, "leaf_ext", days)


def cat(out, *parts):
    with open(out, "w") as f:
        for p in parts:
            with open(p) as src:
                f.write(src.read())


# ---------------------------------------------------------------- the setup

def policy_text(command="/usr/bin/jupyterhub-singleuser", path="/usr/local/bin:/usr/bin:/bin",
                ipc=True, nousersite=True):
    return f"""# hubd check test policy
min_uid 1000
profile default {command} --port=%p{' --KernelManager.transport=ipc' if ipc else ''}
path {path}
{'setenv PYTHONNOUSERSITE=1' if nousersite else ''}
allow_env JUPYTERHUB_API_TOKEN JUPYTERHUB_USER
"""


class Setup:
    def __init__(self, hub, alice, bob, policy, pki):
        self.hub, self.alice, self.bob, self.policy, self.pki = hub, alice, bob, policy, pki
        self.state = tempfile.mkdtemp(prefix="hubcheck-state-")
        os.chown(self.state, hub.uid, hub.gid)
        os.chmod(self.state, 0o700)
        self.tls = tempfile.mkdtemp(prefix="hubcheck-tls-")
        os.chmod(self.tls, 0o755)
        leaf, key = pki.leaf("good")
        self.cert, self.key = os.path.join(self.tls, "fullchain.pem"), os.path.join(self.tls, "privkey.pem")
        cat(self.cert, leaf, pki.mid, pki.root)
        shutil.copyfile(key, self.key)
        os.chmod(self.cert, 0o644)
        os.chown(self.key, hub.uid, hub.gid)
        os.chmod(self.key, 0o600)
        self.port, self.hub_port = hubtest.free_port(), hubtest.free_port()
        self.config = os.path.join(self.state, "jupyterhub_config.py")
        with open(self.config, "w") as f:
            f.write(f"""c.JupyterHub.spawner_class = 'sudospawner.SudoSpawner'
c.JupyterHub.bind_url = 'https://127.0.0.1:{self.port}'
c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{self.hub_port}'
c.JupyterHub.ssl_cert = '{self.cert}'
c.JupyterHub.ssl_key = '{self.key}'
c.Authenticator.allowed_users = {{'{alice.name}', '{bob.name}'}}
""")
        os.chown(self.config, hub.uid, hub.gid)
        self.secret = os.path.join(self.state, "jupyterhub_cookie_secret")
        with open(self.secret, "w") as f:
            f.write(os.urandom(32).hex())
        os.chown(self.secret, hub.uid, hub.gid)
        os.chmod(self.secret, 0o600)

    def cleanup(self):
        shutil.rmtree(self.state, ignore_errors=True)
        shutil.rmtree(self.tls, ignore_errors=True)

    def check(self, *extra, as_root=True):
        """Runs hubd check from the state directory; (exit code, {name: (status, found, fix)}, stdout)."""
        if as_root:
            argv = [HUBD, "check", "--as", self.hub.name, "-f", self.config, *extra]
        else:
            argv = ["setpriv", f"--reuid={self.hub.uid}", f"--regid={self.hub.gid}", "--init-groups",
                    HUBD, "check", "-f", self.config, *extra]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=self.state,
                           stdin=subprocess.DEVNULL)
        results, last = {}, None
        for line in r.stdout.splitlines():
            if line.startswith("      fix: ") and last:
                results[last] = (results[last][0], results[last][1], line[len("      fix: "):])
            elif line[:4] in ("PASS", "FAIL", "WARN", "SKIP") and line[4:6] == "  ":
                name, _, found = line[6:].partition(": ")
                results[name] = (line[:4], found, "")
                last = name
        if r.stderr.strip():
            print(r.stderr.strip())
        return r.returncode, results, r.stdout


def expect(results, name, status, fix_has=None, found_has=None):
    got = results.get(name)
    ok = got is not None and got[0] == status
    ok = ok and (fix_has is None or fix_has in got[2]) and (found_has is None or found_has in got[1])
    return check(ok, f"{name}: {status}" + (f", fix has {fix_has!r}" if fix_has else "")
                 + (f", found has {found_has!r}" if found_has else "") + ("" if ok else f" (got {got})"))


# ---------------------------------------------------------------- mutations

def write_file(path, text, mode=0o440):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def swap_file(path, new_content_path):
    """Replaces path's content; returns a function that puts the old content back."""
    with open(path, "rb") as f:
        old = f.read()
    st = os.stat(path)
    shutil.copyfile(new_content_path, path)

    def undo():
        with open(path, "wb") as f:
            f.write(old)
        os.chown(path, st.st_uid, st.st_gid)
        os.chmod(path, st.st_mode & 0o7777)
    return undo


def catalogue(s, pol):
    """(label, do() -> undo(), extra args, [(name, status, fix substring, found substring)])."""
    hub, alice, bob = s.hub.name, s.alice.name, s.bob.name
    extra_sudoers = "/etc/sudoers.d/hubtest-check-extra"
    pol_dir = os.path.dirname(pol)

    def chmod(path, mode):
        def do():
            old = os.stat(path).st_mode & 0o7777
            os.chmod(path, mode)
            return lambda: os.chmod(path, old)
        return do

    def chown(path, uid):
        def do():
            st = os.stat(path)
            os.chown(path, uid, -1)
            return lambda: (os.chown(path, st.st_uid, st.st_gid), os.chmod(path, st.st_mode & 0o7777))
        return do

    def command(do_argv, undo_argv):
        def do():
            must(do_argv)
            return lambda: must(undo_argv)
        return do

    def sudoers_extra(rule):
        def do():
            write_file(extra_sudoers, f"# hubd check test\n{rule}\n")
            return lambda: os.unlink(extra_sudoers)
        return do

    def sudoers_replace(text):
        def do():
            with open(sudotest.SUDOERS) as f:
                old = f.read()
            if text is None:
                os.unlink(sudotest.SUDOERS)
            else:
                write_file(sudotest.SUDOERS, text)
            return lambda: write_file(sudotest.SUDOERS, old)
        return do

    def policy(**kw):
        def do():
            sudotest.write_policy(pol, policy_text(**kw))
            return lambda: sudotest.write_policy(pol, policy_text())
        return do

    def remove_policy():
        tmp = pol + ".hubcheck-away"
        os.rename(pol, tmp)
        return lambda: os.rename(tmp, pol)

    def with_dir(mode, script_mode=0o755):
        """A root-owned directory holding a copy of jupyterhub-singleuser, used by the policy."""
        def do():
            d = tempfile.mkdtemp(prefix="hubcheck-bin-", dir="/usr/local/lib")
            os.chmod(d, mode)
            script = os.path.join(d, "jupyterhub-singleuser")
            shutil.copyfile("/usr/bin/jupyterhub-singleuser", script)
            os.chmod(script, script_mode)
            sudotest.write_policy(pol, policy_text(command=script))
            with_dir.last = d

            def undo():
                sudotest.write_policy(pol, policy_text())
                shutil.rmtree(d, ignore_errors=True)
            return undo
        return do

    def path_dir():
        d = tempfile.mkdtemp(prefix="hubcheck-path-", dir="/usr/local/lib")
        os.chmod(d, 0o777)
        path_dir.last = d
        sudotest.write_policy(pol, policy_text(path=f"/usr/local/bin:{d}:/usr/bin:/bin"))

        def undo():
            sudotest.write_policy(pol, policy_text())
            os.rmdir(d)
        return undo

    def site_dir():
        d = os.path.join(PY_SITE, "hubcheck_pkg")
        os.makedirs(d, exist_ok=True)
        os.chown(d, s.alice.uid, s.alice.gid)
        return lambda: shutil.rmtree(d, ignore_errors=True)

    def cert_swap(path, source_fn):
        def do():
            return swap_file(path, source_fn())
        return do

    def incomplete_chain():
        leaf = s.pki.p("good.pem")
        out = s.pki.p("incomplete.pem")
        cat(out, leaf, s.pki.root)  # the intermediate is missing
        return out

    def expired():
        leaf, _ = s.pki.sign("expired", "/CN=localhost", s.pki.mid, s.pki.mid_key, "leaf_ext", days=(-60, -30))
        out = s.pki.p("expired-full.pem")
        cat(out, leaf, s.pki.mid, s.pki.root)
        # The key must match: use the new leaf's key too.
        return out

    def expired_pair():
        undo_cert = swap_file(s.cert, expired())
        undo_key = swap_file(s.key, s.pki.p("expired.key"))
        return lambda: (undo_cert(), undo_key())

    def soon_pair():
        leaf, key = s.pki.sign("soon", "/CN=localhost", s.pki.mid, s.pki.mid_key, "leaf_ext", days=(-1, 5))
        out = s.pki.p("soon-full.pem")
        cat(out, leaf, s.pki.mid, s.pki.root)
        undo_cert = swap_file(s.cert, out)
        undo_key = swap_file(s.key, key)
        return lambda: (undo_cert(), undo_key())

    def other_key():
        return s.pki.p("root.key")

    def busy_port():
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", s.port))
        srv.listen(1)
        return srv.close

    py_site_case = [("single-user Python", "FAIL", f"chown root:root {PY_SITE}/hubcheck_pkg", "hubcheck_pkg")] \
        if os.path.isdir(PY_SITE) else None

    cases = [
        ("hub user has a login shell", command(["usermod", "-s", "/bin/bash", hub],
                                               ["usermod", "-s", "/usr/sbin/nologin", hub]), [],
         [("hub user shell", "FAIL", f"usermod -s /usr/sbin/nologin {hub}", "/bin/bash")]),
        ("hub user has a password", lambda: (run(["chpasswd"], input=f"{hub}:Secret-{os.getpid()}\n"),
                                             lambda: must(["usermod", "-p", "!", hub]))[1], [],
         [("hub user password", "FAIL", f"passwd -l {hub}", "usable password")]),
        ("hub user has an empty password", command(["usermod", "-p", "", hub], ["usermod", "-p", "!", hub]), [],
         [("hub user password", "FAIL", f"passwd -l {hub}", "empty password")]),
        ("sudoers allows ALL commands", sudoers_extra(f"{hub} ALL=({alice}) NOPASSWD: ALL"), [],
         [("sudoers rule", "FAIL", f"hubd sudoers --hub-user {hub} --users", "allows ALL commands"),
          ("sudo refuses other commands", "FAIL", "install -m 0440", "ran")]),
        ("sudoers Runas ALL (root included)",
         sudoers_extra(f"{hub} ALL=(ALL) NOPASSWD: {sudotest.INSTALLED} --version"), [],
         [("sudoers rule", "FAIL", "hubd sudoers", "Runas ALL"),
          ("sudo refuses root", "FAIL", "hubd sudoers", "as root")]),
        ("sudoers without NOPASSWD", sudoers_replace(
            f"Runas_Alias HUBT_USERS = {alice}, {bob}, !root, !#0\n"
            f"{hub} ALL=(HUBT_USERS) {sudotest.INSTALLED} \"\", {sudotest.INSTALLED} --check\n"), [],
         [("sudoers rule", "FAIL", f"/etc/sudoers.d/hubtest-sudospawner", "NOPASSWD"),
          ("sudo runs the helper", "FAIL", "hubd sudoers", "password is required")]),
        ("sudoers rule missing", sudoers_replace(None), [],
         [("sudoers rule", "FAIL", f"hubd sudoers --hub-user {hub} --users", "no sudoers rule"),
          ("sudo runs the helper", "FAIL", "visudo -cf", "refused")]),
        ("/bin/echo allowed", sudoers_extra(f"{hub} ALL=({alice}, {bob}) NOPASSWD: /bin/echo"), [],
         [("sudoers rule", "FAIL", "hubd sudoers", "allows /bin/echo"),
          ("sudo refuses other commands", "FAIL", "hubd sudoers", "/bin/echo hubd-check ran")]),
        ("helper owned by a user", chown(sudotest.INSTALLED, s.alice.uid), [],
         [("helper", "FAIL", f"chown root:root {sudotest.INSTALLED}", "owned by")]),
        ("policy group-writable", chmod(pol, 0o664), [],
         [("helper policy", "FAIL", f"chmod 644 {pol}", "group-writable")]),
        ("policy owned by a user", chown(pol, s.alice.uid), [],
         [("helper policy", "FAIL", f"chown root:root {pol}", "not root")]),
        ("policy directory world-writable", chmod(pol_dir, 0o777), [],
         [("helper policy", "FAIL", f"chmod 755 {pol_dir}", "writable by group or others")]),
        ("policy missing", remove_policy, [],
         [("helper policy", "FAIL", f"install -o root -g root -m 0644 {pol}.example {pol}", "does not exist")]),
        ("single-user command missing", policy(command="/usr/bin/hubcheck-no-such-singleuser"), [],
         [("single-user command", "FAIL", "/usr/bin/jupyterhub-singleuser", "does not exist")]),
        ("single-user command not executable", with_dir(0o755, 0o644), [],
         [("single-user command", "FAIL", "chmod 755 /usr/local/lib/hubcheck-bin-", "not executable")]),
        ("single-user command's directory world-writable", with_dir(0o777), [],
         [("single-user command", "FAIL", "chmod o-w /usr/local/lib/hubcheck-bin-", "writable by every user")]),
        ("a PATH directory world-writable", path_dir, [],
         [("single-user PATH", "FAIL", "chmod o-w /usr/local/lib/hubcheck-path-", "writable by every user")]),
        ("user site-packages not disabled", policy(nousersite=False), [],
         [("single-user Python", "WARN", f"echo 'setenv PYTHONNOUSERSITE=1' >> {pol}", "~/.local")]),
        ("kernels on TCP", policy(ipc=False), [],
         [("kernel transport", "WARN", "--KernelManager.transport=ipc", "TCP")]),
        ("hub user not in group shadow", command(["gpasswd", "-d", hub, "shadow"], ["usermod", "-a", "-G", "shadow", hub]),
         [], [("PAM shadow access", "FAIL", f"usermod -a -G shadow {hub}", "cannot read /etc/shadow")]),
        ("PAM service missing", lambda: (lambda: None), ["--PAMAuthenticator.service=hubcheck-none"],
         [("PAM service", "FAIL", "cp /etc/pam.d/login /etc/pam.d/hubcheck-none", "does not exist")]),
        ("state directory owned by another user", chown(s.state, s.alice.uid), [],
         [("state directory", "FAIL", f"chown {hub}: {s.state}", f"owned by {alice}")]),
        ("state directory world-writable", chmod(s.state, 0o777), [],
         [("state directory", "FAIL", f"chmod 700 {s.state}", "writable by every user")]),
        ("cookie secret 0644", chmod(s.secret, 0o644), [],
         [("cookie secret", "FAIL", f"chmod 600 {s.secret}", "mode 0644")]),
        ("cookie secret owned by root", chown(s.secret, 0), [],
         [("cookie secret", "FAIL", f"chown {hub}: {s.secret}", "owned by root")]),
        ("TLS key world-readable", chmod(s.key, 0o644), [],
         [("TLS key permissions", "FAIL", f"chmod 600 {s.key}", "readable by every user")]),
        ("TLS key of another certificate", cert_swap(s.key, other_key), [],
         [("TLS certificate and key", "FAIL", f"openssl pkey -pubout -in {s.key}", "does not belong")]),
        ("TLS key not readable by the hub", chown(s.key, 0), [],
         [("TLS certificate and key", "FAIL", f"chmod 640 {s.key}", "not readable")]),
        ("TLS certificate expired", expired_pair, [],
         [("TLS certificate dates", "FAIL", "kill -HUP", "expired on")]),
        ("TLS certificate expires in 5 days", soon_pair, [],
         [("TLS certificate dates", "WARN", "kill -HUP", "expires on")]),
        ("TLS chain incomplete", cert_swap(s.cert, incomplete_chain), [],
         [("TLS certificate chain", "FAIL", "ISSUER.pem", "hubd check test intermediate")]),
        ("port in use by another program", busy_port, [],
         [("port", "FAIL", f"ss -ltnp 'sport = :{s.port}'", "in use by a process of user root")]),
    ]
    if py_site_case:
        cases.append(("site-packages directory owned by a user", site_dir, [], py_site_case))
    return cases


# ---------------------------------------------------------------- tests

def main():
    sudotest.require_spawn_tools("sudo", "visudo", "openssl", "setpriv", "useradd", "gpasswd")
    sudotest.require_singleuser()
    started = time.monotonic()
    with hubtest.hub_user() as hub, hubtest.SystemUser() as alice, hubtest.SystemUser() as bob, \
            sudotest.sudo_setup(hub.name, [alice.name, bob.name], policy_text()) as fixture:
        if fixture is None:
            return
        _, pol = fixture
        pki_dir = tempfile.mkdtemp(prefix="hubcheck-pki-")
        s = None
        try:
            s = Setup(hub, alice, bob, pol, Pki(pki_dir))
            run_all(s, pol)
        finally:
            if s:
                s.cleanup()
            shutil.rmtree(pki_dir, ignore_errors=True)
    print(f"hubd check test took {time.monotonic() - started:.0f} s", flush=True)


def all_pass(s, label, *extra, as_root=True):
    rc, results, out = s.check(*extra, as_root=as_root)
    may_skip = {"PAM password test", "SELinux"}
    bad = {n: v for n, v in results.items() if v[0] != "PASS" and not (n in may_skip and v[0] == "SKIP")}
    ok = check(rc == 0 and not bad and len(results) >= 25,
               f"{label}: every check passes ({len(results)} checks, exit {rc})")
    if not ok:
        print(out)
    return ok, out


def run_all(s, pol):
    # The correct setup, as root dropping to the hub user, and as the hub user itself.
    _, out = all_pass(s, "correct setup (--as)")
    print(out)
    all_pass(s, "correct setup (run as the hub user)", as_root=False)
    rc, _, out = s.check("--json")
    try:
        items = json.loads(out)
        check(rc == 0 and all({"status", "name", "found", "fix"} <= set(i) for i in items)
              and any(i["name"] == "sudoers rule" and i["status"] == "PASS" for i in items),
              f"--json prints {len(items)} results")
    except ValueError:
        check(False, f"--json prints JSON ({out[:200]!r})")
    r = run([HUBD, "check", "-f", s.config], cwd=s.state)
    check(r.returncode == 2 and "--as" in r.stderr, "as root without --as: refused with how to run it")
    with open(s.secret) as f:
        check(f.read().strip() not in out, "the cookie secret is never printed")

    # A hubd already serving on the port is said so, not a failure.
    hubd = subprocess.Popen(["setpriv", f"--reuid={s.hub.uid}", f"--regid={s.hub.gid}", "--init-groups",
                             HUBD, "-f", s.config], cwd=s.state, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        up = hubtest.wait_for(lambda: "in use" in s.check()[1].get("port", ("", "", ""))[1], timeout=30, step=0.5)
        rc, results, _ = s.check()
        expect(results, "port", "PASS", found_has="hubd (pid")
        check(up and rc == 0, "a running hubd on its port passes")
    finally:
        hubd.terminate()
        hubd.wait(timeout=20)

    # The catalogue: each made for real, reported with its fix, undone.
    cases = catalogue(s, pol)
    check(len(cases) >= 20, f"{len(cases)} misconfigurations in the catalogue")
    for label, do, extra, expectations in cases:
        print(f"--- {label}", flush=True)
        undo = None
        try:
            undo = do()
            rc, results, out = s.check(*extra)
            good = check(rc == (1 if any(e[1] == "FAIL" for e in expectations) else 0),
                         f"{label}: exit {rc}")
            for name, status, fix, found in expectations:
                good = expect(results, name, status, fix, found) and good
            if not good:
                print(out)
        finally:
            if undo:
                undo()
    all_pass(s, "after the catalogue, everything is restored")


if __name__ == "__main__":
    hubtest.main([main])
