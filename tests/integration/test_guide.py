#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""docs/install.md, run: every command of the install guide, as root, for real.

The convention in docs/install.md (the guide says it too):

* Every fenced block opened with ```sh is a command block. The test runs each
  one, in document order, as root, with `bash -euo pipefail`, from /. It must
  exit 0.
* An HTML comment on the line just above a block says otherwise:
    <!-- names -->             the block only sets the shell variables hub,
                               users and user; the test sets them to its own
                               temporary accounts instead (the names must be
                               exactly those three);
    <!-- not run: REASON -->   not run; REASON says why and what covers it;
    <!-- run: fails "TEXT" --> must exit non-zero and print TEXT;
    <!-- run: background ... --> the hub: started in the background; the
                               test waits for it to answer, signs a real PAM
                               user in, starts their real
                               jupyterhub-singleuser through the guide's sudo
                               set-up, and stops the hub again;
    <!-- check output: CASE --> (on a plain ``` block) what `hubd check` prints
                               for CASE: the test creates CASE for real and
                               compares (see CASES).
  Other fences (```python, ```ini, plain ```) are never run.
* The only changes the test makes to a command block (each must apply, so a
  change to the guide that bypasses it fails the test):
    `meson install -C build`  -> the suite's build directory, --no-rebuild;
    every command line running hubd or `hubd check` gets free ports for
    bind_url and hub_bind_url appended (port 8000 may be taken here).
* Afterwards everything is undone, also on failure: the hub account and the
  test's users, every installed file, the policy, the sudoers drop-in, the
  state directories. Paths the guide uses that existed before are moved aside
  first and put back.

Needs root (exit 77 otherwise), meson, sudo, visudo and jupyterhub-singleuser.
"""
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hubtest  # noqa: E402
from hubtest import check  # noqa: E402

DOC = os.path.join(hubtest.ROOT, "docs", "install.md")
BUILD = os.path.dirname(os.path.dirname(os.path.abspath(hubtest.HUBD)))
SELINUX_SOURCE = os.path.join(hubtest.ROOT, "hubd", "check", "selinux.cpp")

# Paths the guide writes besides what meson installs (moved aside if present).
GUIDE_PATHS = ["/usr/local/etc/hubd/sudospawner.conf", "/usr/local/etc/hubd/jupyterhub_config.py",
               "/tmp/hubd.sudoers", "/etc/sudoers.d/hubd", "/var/lib/hubd"]
STATE = "/var/lib/hubd"
CONF = "/usr/local/etc/hubd/jupyterhub_config.py"
POLICY = "/usr/local/etc/hubd/sudospawner.conf"
DROP_IN = "/etc/sudoers.d/hubd"
# The doc's names for what the test makes temporary.
DOC_HUB, DOC_USERS, DOC_PORT, DOC_HUB_PORT = "hubd", ("zoe", "wash"), 8000, 8081


def run(argv, **kw):
    kw.setdefault("timeout", 300)
    return subprocess.run(argv, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------- the document

class Block:
    def __init__(self, lang, marker, text, line):
        self.lang, self.marker, self.text, self.line = lang, marker, text, line

    def __repr__(self):
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        return f"install.md:{self.line} `{first[:70]}`"


def parse(text):
    """Fenced blocks with the HTML comment on the line above them (or None)."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            lang = line[3:].strip()
            prev = lines[i - 1].strip() if i > 0 else ""
            m = re.fullmatch(r"<!--\s*(.*?)\s*-->", prev)
            body, j = [], i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                body.append(lines[j])
                j += 1
            blocks.append(Block(lang, m.group(1) if m else None, "\n".join(body) + "\n", i + 1))
            i = j + 1
        else:
            i += 1
    return blocks


def shell_blocks(blocks):
    return [b for b in blocks if b.lang == "sh"]


def output_blocks(blocks):
    """{case: Block} of the `check output` blocks."""
    out = {}
    for b in blocks:
        m = re.fullmatch(r"check output: (\S+)", b.marker or "")
        if m:
            out[m.group(1)] = b
    return out


class Rewriter:
    """The test's only changes to the guide's commands; counts what applied."""

    def __init__(self, port, hub_port):
        self.ports = f"--JupyterHub.bind_url=http://127.0.0.1:{port} " \
                     f"--JupyterHub.hub_bind_url=http://127.0.0.1:{hub_port}"
        self.applied = {"meson install": 0, "ports": 0}

    def __call__(self, text):
        new = text.replace("meson install -C build\n", f"meson install -C {shlex.quote(BUILD)} --no-rebuild\n")
        self.applied["meson install"] += new != text
        out = []
        for line in new.splitlines():
            # hubd the command (not a path, not `hubd sudoers`), up to a comment.
            m = re.match(r"(.*(?:^|[\s;&|])hubd(?: check\b| -|(?=\s*(?:#|$)))[^#]*?)(\s*#.*)?$", line)
            if m and not line.lstrip().startswith("#"):
                line = f"{m.group(1)} {self.ports}{m.group(2) or ''}"
                self.applied["ports"] += 1
            out.append(line)
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------- undoing it all

class Undo:
    """Moves pre-existing paths aside and puts them back; removes what was created."""

    def __init__(self):
        self.moved = []  # (path, aside or None)
        self.new_dirs = []

    def claim(self, path):
        aside = None
        if os.path.lexists(path):
            aside = f"{path}.hubtest-guide-{os.getpid()}"
            os.rename(path, aside)
        self.moved.append((path, aside))

    def claim_dirs(self, path):
        """Remembers path's missing ancestors (meson install creates them)."""
        d = os.path.dirname(path)
        while d not in ("/", "") and not os.path.lexists(d):
            if d not in self.new_dirs:
                self.new_dirs.append(d)
            d = os.path.dirname(d)

    def restore(self):
        for path, aside in reversed(self.moved):
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                elif os.path.lexists(path):
                    os.unlink(path)
                if aside:
                    os.rename(aside, path)
            except OSError as e:
                print(f"warning: could not restore {path}: {e}", flush=True)
        for d in sorted(self.new_dirs, key=len, reverse=True):
            try:
                os.rmdir(d)
            except OSError as e:
                print(f"warning: could not remove {d}: {e}", flush=True)


def installed_paths():
    r = run(["meson", "introspect", "--installed", BUILD])
    if r.returncode != 0:
        raise RuntimeError(f"meson introspect --installed {BUILD} failed: {r.stderr.strip()}")
    return sorted(set(json.loads(r.stdout).values()))


# ---------------------------------------------------------------- processes

def user_pids(name):
    return [int(p) for p in run(["pgrep", "-u", name]).stdout.split()]


def end_pids(pids, timeout=10):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if hubtest.wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids), timeout=timeout):
            return


class Background:
    """A background block: bash (and sudo, and hubd) in a session of its own."""

    def __init__(self, script, log):
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd="/",
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # sudo relays it to hubd
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()
        return self.proc.returncode


def wait_answers(url, proc, timeout=30):
    def up():
        if proc.poll() is not None:
            return "exited"
        try:
            return hubtest.Client(url, timeout=2).get("/hub/api")[0] == 200
        except OSError:
            return False
    return hubtest.wait_for(up, timeout=timeout, step=0.2) is True


def sign_in_and_spawn(url, zoe, spawn=True):
    """A real PAM sign-in, and (spawn) the user's real jupyterhub-singleuser through sudo."""
    c = hubtest.Client(url)
    status, _, _ = c.post("/hub/login", form={"username": zoe.name, "password": zoe.password})
    if not check(status == 302 and "jupyterhub-hub-login" in c.cookies,
                 f"{zoe.name} signs in with the password through PAM (status {status})"):
        return
    if not spawn:
        return
    status, headers, _ = c.post("/hub/spawn")
    check(status == 302, f"'Start my server' is accepted ({status} {headers.get('location')})")
    model = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status, model, _ = c.json("GET", f"/hub/api/users/{zoe.name}")
        if status != 200 or model.get("server") or model.get("pending") is None:
            break
        time.sleep(0.25)
    check(model and model.get("server") == f"/user/{zoe.name}/",
          f"the server starts through sudo and the helper ({model and (model.get('server'), model.get('pending'))})")
    ps = run(["ps", "-o", "user=,args=", "-u", zoe.name]).stdout
    check("jupyterhub-singleuser" in ps, f"jupyterhub-singleuser runs as {zoe.name}")
    status, body, trail = hubtest.follow(c, f"/user/{zoe.name}/tree")
    check(status == 200 and b"Select or create a notebook" in body,
          f"the notebook answers through hubd's proxy and OAuth ({status}, {trail})")
    status, _, _ = c.json("DELETE", f"/hub/api/users/{zoe.name}/server")
    check(status in (202, 204), f"the server stops through the API ({status})")
    hubtest.wait_for(lambda: "jupyterhub-singleuser" not in run(["ps", "-o", "args=", "-u", zoe.name]).stdout,
                     timeout=20)


# ---------------------------------------------------------------- the walk-through

class Guide:
    def __init__(self, hub_name, zoe, wash, blocks, log_dir):
        self.hub, self.zoe, self.wash = hub_name, zoe, wash
        self.blocks = blocks
        self.port, self.hub_port = hubtest.free_port(), hubtest.free_port()
        self.rewrite = Rewriter(self.port, self.hub_port)
        self.names = {"hub": hub_name, "users": f"{zoe.name},{wash.name}", "user": zoe.name}
        self.log_dir = log_dir

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def script(self, block):
        head = "".join(f"{k}={shlex.quote(v)}\n" for k, v in self.names.items())
        return head + self.rewrite(block.text)

    def run_all(self):
        counts = {"run": 0, "fails": 0, "background": 0, "not run": 0}
        for b in shell_blocks(self.blocks):
            marker = b.marker or ""
            if marker == "names":
                assigned = dict(re.findall(r"^(\w+)=(\S+)", b.text, re.M))
                check(set(assigned) == set(self.names),
                      f"{b}: the names block sets exactly {sorted(self.names)} ({sorted(assigned)})")
                continue
            if marker.startswith("not run:"):
                reason = marker[len("not run:"):].strip()
                check(len(reason) > 10, f"{b}: not run, because {reason}")
                counts["not run"] += 1
                continue
            if marker.startswith("run: background"):
                counts["background"] += 1
                if not self.background(b):
                    return counts
                continue
            m = re.fullmatch(r'run: fails "(.+)"', marker)
            if marker and not m:
                check(False, f"{b}: unknown marker <!-- {marker} -->")
                continue
            started = time.monotonic()
            r = run(["bash", "-euo", "pipefail", "-c", self.script(b)], cwd="/")
            took = time.monotonic() - started
            out = (r.stdout + r.stderr).strip()
            if m:
                counts["fails"] += 1
                ok = check(r.returncode != 0 and m.group(1) in out,
                           f"{b}: fails as the guide says, with {m.group(1)!r} (exit {r.returncode})")
            else:
                counts["run"] += 1
                ok = check(r.returncode == 0, f"{b}: runs ({took:.1f} s, exit {r.returncode})")
            if not ok:
                print(f"--- the block as run:\n{self.script(b)}--- its output:\n{out[-3000:]}", flush=True)
                return counts  # later steps build on this one
        return counts

    def background(self, b):
        log = os.path.join(self.log_dir, f"hub-{b.line}.log")
        bg = Background(self.script(b), log)
        try:
            up = wait_answers(self.url, bg.proc)
            if not check(up, f"{b}: the hub starts and answers on {self.url}"):
                with open(log, errors="replace") as f:
                    print(f.read()[-3000:], flush=True)
                return False
            uids = run(["ps", "-o", "uid=", "-C", "hubd"]).stdout.split()
            check(str(pwd.getpwnam(self.hub).pw_uid) in uids, f"hubd runs as the hub account {self.hub} ({uids})")
            sign_in_and_spawn(self.url, self.zoe)
            return True
        finally:
            bg.stop()
            end_pids(user_pids(self.hub))

    def start_like_the_unit(self):
        """What `systemctl start hubd` does with the installed unit, without systemd."""
        unit = "/usr/local/lib/systemd/system/hubd.service"
        settings = {}
        with open(unit) as f:
            for line in f:
                line = line.strip()
                if "=" in line and not line.startswith(("#", ";", "[")):
                    k, v = line.split("=", 1)
                    settings[k.strip()] = v.strip()
        check(settings.get("User") == DOC_HUB, f"the unit runs as User={DOC_HUB}, the guide's name")
        state = settings.get("WorkingDirectory", "").replace("%S", "/var/lib")
        check(state == "/var/lib/" + settings.get("StateDirectory", ""),
              f"the working directory is the state directory ({state})")
        # StateDirectory=, StateDirectoryMode=, owned by User=.
        os.makedirs(state, exist_ok=True)
        pw = pwd.getpwnam(self.hub)
        os.chown(state, pw.pw_uid, pw.pw_gid)
        os.chmod(state, int(settings.get("StateDirectoryMode", "0755"), 8))
        argv = shlex.split(settings["ExecStart"]) + self.rewrite.ports.split()
        groups = settings.get("SupplementaryGroups", "").replace(" ", ",")
        cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}"]
        cmd += [f"--groups={groups}"] if groups else ["--clear-groups"]
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", "LANG": "C.UTF-8", "HOME": pw.pw_dir,
               "USER": self.hub, "LOGNAME": self.hub, "SHELL": pw.pw_shell}
        umask = int(settings.get("UMask", "0022"), 8)
        log = open(os.path.join(self.log_dir, "hub-unit.log"), "ab")
        proc = subprocess.Popen(cmd + ["--"] + argv, cwd=state, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: os.umask(umask))
        try:
            if check(wait_answers(self.url, proc), f"hubd starts as the unit runs it ({' '.join(argv[:3])} ...)"):
                sign_in_and_spawn(self.url, self.zoe, spawn=False)
                mode = oct(os.stat(os.path.join(state, "jupyterhub_cookie_secret")).st_mode & 0o777)
                check(mode == "0o600", f"its cookie secret in {state} is mode 600 ({mode})")
            else:
                log.flush()
                with open(log.name, errors="replace") as f:
                    print(f.read()[-3000:], flush=True)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
            end_pids(user_pids(self.hub))


# ---------------------------------------------------------------- troubleshooting

def hubd_check(g, argv_prefix=None):
    """`hubd check` from the state directory, as the guide runs it; (exit, stdout)."""
    ports = g.rewrite.ports.split()
    if argv_prefix is None:
        argv = ["hubd", "check", "--as", g.hub, "-f", CONF] + ports
    else:
        argv = argv_prefix + ["hubd", "check", "-f", CONF] + ports
    env = dict(os.environ, PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    r = run(argv, cwd=STATE, env=env, stdin=subprocess.DEVNULL)
    if r.stderr.strip():
        print(r.stderr.strip(), flush=True)
    return r.returncode, r.stdout


def as_hub(g, *setpriv_args):
    pw = pwd.getpwnam(g.hub)
    return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", *setpriv_args, "--"]


def normalize(text, g):
    """The test's temporary names and ports as the doc shows them; uids and gids as N."""
    subs = [(g.hub, DOC_HUB), (g.zoe.name, DOC_USERS[0]), (g.wash.name, DOC_USERS[1]),
            (str(g.hub_port), str(DOC_HUB_PORT)), (str(g.port), str(DOC_PORT))]
    for old, new in sorted(subs, key=lambda s: -len(s[0])):
        text = text.replace(old, new)
    return re.sub(r"\(uid \d+, gid \d+,", "(uid N, gid N,", text)


def compare(case, doc_block, out, g, whole):
    """The doc's lines (but '$ ...' and '…') appear in the normalized output in order; whole: nothing else."""
    want = [normalize(line, g) for line in doc_block.text.splitlines()
            if line.strip() and not line.startswith("$ ") and line.strip() != "…"]
    got = [line for line in normalize(out, g).splitlines() if line.strip()]
    if not want:
        ok = False
    elif whole:
        ok = want == got
    else:
        it = iter(got)
        ok = all(any(w == line for line in it) for w in want)
    if not check(ok, f"{case}: hubd check prints what install.md:{doc_block.line} shows ({len(want)} lines)"):
        print("--- the doc shows:\n" + "\n".join(want) + "\n--- hubd check printed (normalized):\n" +
              "\n".join(got), flush=True)


def doc_command(doc_block):
    return next((line[2:] for line in doc_block.text.splitlines() if line.startswith("$ ")), None)


def set_drop_in(text):
    tmp = DROP_IN + ".new"  # sudo skips files with a dot in sudoers.d
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o440)
    r = run(["visudo", "-cf", tmp])
    if r.returncode != 0:
        raise RuntimeError(f"visudo -cf failed: {r.stderr.strip()}")
    os.rename(tmp, DROP_IN)


def cases(g):
    """{case: (command the doc shows, do() -> undo(), argv prefix or None for --as, exit status)}."""
    hub = g.hub

    def command(do_argv, undo_argv):
        def do():
            r = run(do_argv)
            if r.returncode != 0:
                raise RuntimeError(f"{do_argv} failed: {r.stderr.strip()}")
            return lambda: run(undo_argv)
        return do

    def nothing():
        return lambda: None

    def drop_in(edit):
        def do():
            with open(DROP_IN) as f:
                old = f.read()
            if edit is None:
                os.unlink(DROP_IN)
            else:
                set_drop_in(edit(old))
            return lambda: set_drop_in(old)
        return do

    def secret_mode():
        secret = os.path.join(STATE, "jupyterhub_cookie_secret")
        os.chmod(secret, 0o644)
        return lambda: os.chmod(secret, 0o600)

    def policy_mode():
        os.chmod(POLICY, 0o664)
        return lambda: os.chmod(POLICY, 0o644)

    as_root = f"hubd check --as hubd -f {CONF}"
    setpriv = "setpriv --reuid=hubd --regid=hubd --init-groups"
    return {
        "correct": (as_root, nothing, None, 0),
        "not-in-shadow": (as_root, command(["gpasswd", "-d", hub, "shadow"], ["usermod", "-a", "-G", "shadow", hub]),
                          None, 1),
        "no-sudoers-rule": (as_root, drop_in(None), None, 1),
        "sudoers-password": (as_root, drop_in(lambda t: t.replace("NOPASSWD: ", "").replace("NOPASSWD:", "")),
                             None, 1),
        "sudoers-all": (as_root, drop_in(lambda t: t + f"{hub} ALL=(ALL) NOPASSWD: ALL\n"), None, 1),
        "policy-group-writable": (as_root, policy_mode, None, 1),
        "cookie-secret-readable": (as_root, secret_mode, None, 1),
        "account-expired": (as_root, command(["usermod", "-e", "1", hub], ["usermod", "-e", "", hub]), None, 1),
        "no-new-privs": (f"{setpriv} --no-new-privs -- hubd check -f {CONF}",
                         nothing, as_hub(g, "--no-new-privs"), 1),
        "bounding-set": (f"{setpriv} --bounding-set=-setgid -- hubd check -f {CONF}",
                         nothing, as_hub(g, "--bounding-set=-setgid"), 1),
    }


def troubleshooting(g, blocks):
    docs = output_blocks(blocks)
    table = cases(g)
    check(set(docs) == set(table), "install.md shows exactly the cases the test creates (doc only: "
          f"{sorted(set(docs) - set(table))}, test only: {sorted(set(table) - set(docs))})")
    for case, (shown, do, prefix, status) in table.items():
        if case not in docs:
            continue
        print(f"--- troubleshooting: {case}", flush=True)
        check(doc_command(docs[case]) == shown,
              f"{case}: the doc shows the command `{shown}` ({doc_command(docs[case])})")
        undo = do()
        try:
            rc, out = hubd_check(g, prefix)
            check(rc == status, f"{case}: hubd check exits {status} ({rc})")
            compare(case, docs[case], out, g, whole=case == "correct")
        finally:
            undo()
    rc, out = hubd_check(g)
    check(rc == 0, "after the cases, hubd check passes again")
    selinux_enforcing(blocks)


def selinux_enforcing(blocks):
    """SELinux cannot be enabled here: the enforcing lines the doc shows must be the source's text."""
    shown = [b for b in blocks if (b.marker or "") == "selinux enforcing"]
    if not check(len(shown) == 1, "install.md shows what hubd check prints under SELinux enforcing"):
        return
    with open(SELINUX_SOURCE) as f:
        src = f.read()
    # C++ adjacent literals joined, escapes undone: the message as printed.
    src = re.sub(r'"\s*\n\s*"', "", src).replace('\\"', '"')
    for line in shown[0].text.splitlines():
        m = re.match(r"(?:WARN  SELinux: |      fix: )(.*)", line)
        if m:
            check(m.group(1) in src, f"selinux.cpp prints {m.group(1)[:60]!r}...")


# ---------------------------------------------------------------- main

def main():
    hubtest.require_root()
    hubtest.require_hubd()
    for tool in ("meson", "sudo", "visudo", "setpriv", "useradd", "gpasswd", "setcap"):
        if not shutil.which(tool):
            hubtest.skip(f"{tool} is missing")
    if not os.path.exists("/usr/bin/jupyterhub-singleuser"):
        hubtest.skip("jupyterhub-singleuser is missing (scripts/setup-debian.sh installs it)")
    with open(DOC) as f:
        blocks = parse(f.read())
    started = time.monotonic()
    hub_name = hubtest._unused_name("hubtg")
    undo = Undo()
    log_dir = tempfile.mkdtemp(prefix="hubtest-guide-")
    try:
        with hubtest.SystemUser(password=f"Zoe-{os.getpid()}-pw") as zoe, hubtest.SystemUser() as wash:
            try:
                for p in installed_paths():
                    undo.claim_dirs(p)
                    undo.claim(p)
                for p in GUIDE_PATHS:
                    undo.claim(p)
                g = Guide(hub_name, zoe, wash, blocks, log_dir)
                counts = g.run_all()
                print(f"blocks: {counts}", flush=True)
                check(counts["run"] >= 10 and counts["fails"] >= 1 and counts["background"] == 1,
                      f"the guide's commands ran: {counts}")
                check(all(g.rewrite.applied.values()), f"each of the test's changes applied ({g.rewrite.applied})")
                if hubtest._counts["failed"] == 0:
                    g.start_like_the_unit()
                    troubleshooting(g, blocks)
            finally:
                end_pids(user_pids(zoe.name) + user_pids(wash.name))
                try:
                    pwd.getpwnam(hub_name)
                    end_pids(user_pids(hub_name))
                    r = run(["userdel", hub_name])
                    check(r.returncode == 0, f"the hub account {hub_name} is removed ({r.stderr.strip()})")
                except KeyError:
                    pass
                undo.restore()
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    print(f"the guide took {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    hubtest.main([main])
