# SPDX-License-Identifier: BSD-3-Clause
"""Shared set-up for tests that need the real helper behind real sudo.

sudo_setup() installs the built sudospawner at /usr/local/bin (the path the
sudoers rule names), writes a root-owned policy at the helper's compiled-in
path, and puts a sudoers drop-in in /etc/sudoers.d allowing a hub user to run
exactly that helper as the given users, checked with visudo first. Everything
is put back afterwards, including files that were there before.
"""
import contextlib
import os
import shutil
import subprocess
import tempfile

import hubtest
from hubtest import check

BUILT = os.environ.get("SUDOSPAWNER", os.path.join(hubtest.ROOT, "build", "sudospawner", "sudospawner"))
INSTALLED = "/usr/local/bin/sudospawner"
SUDOERS = "/etc/sudoers.d/hubtest-sudospawner"


class Fixture:
    """Remembers replaced files and created directories, and restores them."""

    def __init__(self):
        self.backups = []  # (path, backup or None)
        self.created_dirs = []

    def backup(self, path):
        if os.path.lexists(path):
            b = tempfile.mktemp(prefix="hubtest-backup-", dir=os.path.dirname(path))
            os.rename(path, b)
            self.backups.append((path, b))
        else:
            self.backups.append((path, None))

    def restore(self):
        for path, b in reversed(self.backups):
            try:
                if os.path.lexists(path):
                    os.unlink(path)
                if b:
                    os.rename(b, path)
            except OSError as e:
                print(f"warning: could not restore {path}: {e}", flush=True)
        for d in reversed(self.created_dirs):
            try:
                os.rmdir(d)
            except OSError:
                pass


def policy_path():
    """The policy path compiled into the helper (its --help names it)."""
    out = subprocess.run([BUILT, "--help"], capture_output=True, text=True, timeout=10).stdout
    return out.split("decided by ", 1)[1].split()[0].rstrip(".")


def write_policy(path, text, mode=0o644, uid=0, gid=0):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.chown(tmp, uid, gid)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


# Every variable hubd may set for a server: what allow_env in a test policy lists.
SERVER_ENV = ("JUPYTERHUB_API_TOKEN JPY_API_TOKEN JUPYTERHUB_CLIENT_ID JUPYTERHUB_API_URL JUPYTERHUB_ACTIVITY_URL "
              "JUPYTERHUB_BASE_URL JUPYTERHUB_SERVICE_PREFIX JUPYTERHUB_SERVICE_URL JUPYTERHUB_OAUTH_CALLBACK_URL "
              "JUPYTERHUB_OAUTH_SCOPES JUPYTERHUB_OAUTH_ACCESS_SCOPES JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES "
              "JUPYTERHUB_USER JUPYTERHUB_SERVER_NAME JUPYTERHUB_HOST JUPYTERHUB_ADMIN_ACCESS JUPYTERHUB_DEFAULT_URL "
              "JUPYTERHUB_ROOT_DIR JUPYTERHUB_DEBUG JUPYTERHUB_ACTIVITY_INTERVAL JUPYTERHUB_SSL_KEYFILE "
              "JUPYTERHUB_SSL_CERTFILE JUPYTERHUB_SSL_CLIENT_CA")

SERVER_LOG = ("log_file .local/state/hubd/server.log", "log_max_size 1M", "log_keep 2")


def server_policy(command, name, *extra):
    """A helper policy (for `name`, a test) whose default profile runs `command --port=%p` for
    uids from 1000 and lets the hub set every variable of SERVER_ENV; `extra`: more lines."""
    lines = [f"# {name} policy", "min_uid 1000", f"profile default {command} --port=%p",
             "path /usr/local/bin:/usr/bin:/bin", "lang C.UTF-8", f"allow_env {SERVER_ENV}", "stop_timeout 5", *extra]
    return "\n".join(lines) + "\n"


def require_spawn_tools(*tools):
    """Root, a built hubd and `tools` on PATH, or the test is skipped (exit 77)."""
    hubtest.require_root()
    hubtest.require_hubd()
    for tool in tools:
        if not shutil.which(tool):
            hubtest.skip(f"{tool} is missing")


SINGLEUSER = "/usr/bin/jupyterhub-singleuser"


def require_singleuser():
    """The packaged jupyterhub-singleuser, or the test is skipped (exit 77)."""
    if not os.access(SINGLEUSER, os.X_OK):
        hubtest.skip(f"{SINGLEUSER} is missing (apt-get install jupyterhub)")


def singleuser_policy(name, *extra):
    """server_policy running the real jupyterhub-singleuser with the classic notebook app,
    ignoring the user's own Jupyter config; `extra`: more lines."""
    return server_policy(SINGLEUSER, name, "setenv JUPYTERHUB_SINGLEUSER_APP=notebook.notebookapp.NotebookApp",
                         "setenv JUPYTERHUB_DISABLE_USER_CONFIG=1", *extra)


def singleuser_env(user_name):
    """(pid, environment) of user_name's jupyterhub-singleuser process, read as root; (None, {}) if none."""
    pids = subprocess.run(["pgrep", "-u", user_name, "-f", "jupyterhub-singleuser"], capture_output=True,
                          text=True).stdout.split()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        return int(pid), dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)
    return None, {}


# A stand-in for a single-user server: answers every GET with "stand-in" on
# --port=N and writes its pid to $HOME/pid (atomically) for tests that watch it.
STAND_IN_SERVER_SOURCE = r'''#!/usr/bin/python3 -I
import http.server, os, sys
port = int(sys.argv[1].split("=", 1)[1])
with open(os.path.join(os.environ["HOME"], "pid.tmp"), "w") as f:
    f.write(str(os.getpid()))
os.rename(os.path.join(os.environ["HOME"], "pid.tmp"), os.path.join(os.environ["HOME"], "pid"))

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"stand-in")
    def log_message(self, *a):
        pass

http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


@contextlib.contextmanager
def stand_in_server(source, prefix):
    """Yields the path of an executable script with `source`, in a directory
    every user can read (servers run it as their user); removed afterwards."""
    script_dir = tempfile.mkdtemp(prefix=prefix)
    try:
        os.chmod(script_dir, 0o755)
        script = os.path.join(script_dir, "stand-in-server")
        with open(script, "w") as f:
            f.write(source)
        os.chmod(script, 0o755)
        yield script
    finally:
        shutil.rmtree(script_dir, ignore_errors=True)


@contextlib.contextmanager
def sudo_setup(hub_name, user_names, policy):
    """Yields (fixture, policy path), or None if the drop-in does not validate."""
    pol = policy_path()
    fx = Fixture()
    try:
        fx.backup(INSTALLED)
        shutil.copyfile(BUILT, INSTALLED)
        os.chown(INSTALLED, 0, 0)
        os.chmod(INSTALLED, 0o755)
        pdir = os.path.dirname(pol)
        if not os.path.isdir(pdir):
            os.makedirs(pdir, 0o755)
            fx.created_dirs.append(pdir)
        fx.backup(pol)
        write_policy(pol, policy)
        # The shape of sudoers.d/hubd: the helper only, no arguments but the
        # informational ones, never root.
        rules = f"""# hubd integration test; removed afterwards
Runas_Alias HUBT_USERS = {", ".join(user_names)}, !root, !#0
Cmnd_Alias HUBT_CMD = {INSTALLED} "", {INSTALLED} --help, {INSTALLED} --version, {INSTALLED} --check
Defaults!HUBT_CMD env_reset, !setenv, !requiretty, !use_pty, closefrom=3
{hub_name} ALL=(HUBT_USERS) NOPASSWD: HUBT_CMD
"""
        tmp = tempfile.NamedTemporaryFile("w", delete=False, prefix="hubtest-sudoers-")
        tmp.write(rules)
        tmp.close()
        r = subprocess.run(["visudo", "-cf", tmp.name], capture_output=True, text=True)
        if not check(r.returncode == 0, f"test sudoers drop-in passes visudo -cf ({r.stderr.strip()})"):
            os.unlink(tmp.name)
            yield None
            return
        fx.backup(SUDOERS)
        shutil.move(tmp.name, SUDOERS)
        os.chown(SUDOERS, 0, 0)
        os.chmod(SUDOERS, 0o440)
        r = subprocess.run(["visudo", "-c"], capture_output=True, text=True)
        check(r.returncode == 0, "the whole sudoers configuration still parses")
        yield fx, pol
    finally:
        fx.restore()
