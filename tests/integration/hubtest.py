# SPDX-License-Identifier: BSD-3-Clause
"""Shared helpers for hubd's integration tests (Python standard library only).

* Hub: runs the real hubd in a fresh working directory, optionally as another
  Unix user, waits until GET /hub/api answers, and stops it afterwards.
* Client: an HTTP client with a cookie jar and no automatic redirects.
* SystemUser / hub_user: real Unix accounts, removed again even on failure.
* check() / main(): tiny assertion counting; exit 0 pass, 1 fail, 77 skip.
* run_with_config(): one hubd for a list of tests of it, through main().

Environment: HUBD (set by meson), else build/hubd/hubd under the source root.
HUBTEST_KEEP=1 keeps working directories for post-mortems.
"""
import atexit
import http.client
import json as jsonlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import string
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

ROOT = os.environ.get("HUBD_SOURCE_ROOT",
                      os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HUBD = os.environ.get("HUBD", os.path.join(ROOT, "build", "hubd", "hubd"))
SKIP = 77

# Variables worth passing through to hubd; everything else (notably a stray
# JPY_COOKIE_SECRET) stays out so tests are deterministic.
_PASS_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
             "MALLOC_PERTURB_", "MALLOC_CHECK_")


class Skip(Exception):
    """Raise from a test to skip it (counted, printed, not a failure)."""


class HubStartError(Exception):
    pass


# ---------------------------------------------------------------- assertions

_counts = {"passed": 0, "failed": 0, "skipped": 0}


def check(cond, msg):
    """Records one assertion; returns cond so callers can bail out early."""
    if cond:
        _counts["passed"] += 1
        print(f"ok   {msg}", flush=True)
    else:
        _counts["failed"] += 1
        print(f"FAIL {msg}", flush=True)
    return bool(cond)


def _raise_interrupt(signum, _frame):
    # meson's timeout sends SIGTERM: unwind the with-blocks so users and hubs are cleaned up.
    raise KeyboardInterrupt(f"signal {signum}")


def main(tests):
    """Runs test functions (or (name, function) pairs) and exits 0, 1 or 77."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    for t in tests:
        name, fn = t if isinstance(t, tuple) else (t.__name__, t)
        print(f"--- {name}", flush=True)
        try:
            fn()
        except Skip as e:
            _counts["skipped"] += 1
            print(f"SKIP {name}: {e}", flush=True)
        except KeyboardInterrupt:
            raise
        except Exception:  # a crashing test is a failed test, the others still run
            _counts["failed"] += 1
            print(f"FAIL {name} raised:\n{traceback.format_exc()}", flush=True)
    print(f"{_counts['passed']} passed, {_counts['failed']} failed"
          + (f", {_counts['skipped']} skipped" if _counts["skipped"] else ""), flush=True)
    if _counts["failed"]:
        sys.exit(1)
    if _counts["passed"] == 0 and _counts["skipped"]:
        sys.exit(SKIP)
    sys.exit(0)


def run_with_config(config, tests):
    """Starts one hubd with `config`, in which AUDIT_PATH stands for audit.log in
    the hub's directory (a Python string), and runs `tests` against it as main()
    does: functions of the hub, or (name, function of the hub) pairs."""
    require_hubd()
    hub = Hub(config=None)
    hub.setup()
    hub.config = config.replace("AUDIT_PATH", repr(hub.path("audit.log")))
    hub.write_file("config.py", hub.config, 0o644)
    with hub:
        named = (t if isinstance(t, tuple) else (t.__name__, t) for t in tests)
        main([(name, lambda fn=fn: fn(hub)) for name, fn in named])


def wait_for(pred, timeout=20, step=0.05):
    """Polls pred() until it returns something true or timeout s pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def follow(client, path, limit=10):
    """GET path and follow redirects on the same hub (absolute ones too); (status, body, trail)."""
    trail = [path]
    for _ in range(limit):
        status, headers, body = client.get(path)
        if status not in (301, 302, 303) or "location" not in headers:
            return status, body, trail
        path = headers["location"]
        if path.startswith("http"):
            path = "/" + path.split("/", 3)[3]
        trail.append(path)
    return status, body, trail


def skip(reason):
    """Skips the whole program (meson reports SKIP)."""
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP)


def require_root():
    if os.geteuid() != 0:
        skip("needs root to create system users")


def require_hubd():
    if not os.access(HUBD, os.X_OK):
        print(f"FAIL: hubd binary not found at {HUBD} (set HUBD or build first)", flush=True)
        sys.exit(1)


# ---------------------------------------------------------------- networking

def free_port():
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """HTTP/1.1 client with a cookie jar and no automatic redirects.

    Every request returns (status, headers, body): headers is a dict with
    lowercased names; repeated headers are joined with "\\n" (Set-Cookie values
    may contain commas). The raw Set-Cookie values of the last response are in
    .set_cookies.
    """

    def __init__(self, base_url, timeout=30):
        u = urllib.parse.urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self.host = u.hostname
        self.port = u.port or 80
        self.timeout = timeout
        self.cookies = {}  # name -> (value, path) of the latest cookie of that name
        self.jar = {}  # (name, path) -> value: what a browser keeps (and sends)
        self.set_cookies = []

    def connection(self):
        """A new connection for one request; subclasses may return HTTPS or bind a source address."""
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _cookie_header(self, path):
        # Longer paths first, as browsers order them.
        matching = sorted(((n, p, v) for (n, p), v in self.jar.items() if path.startswith(p)),
                          key=lambda e: -len(e[1]))
        pairs = [f"{n}={v}" for n, _, v in matching]
        return "; ".join(pairs)

    def _store_cookies(self, raw_list):
        for raw in raw_list:
            parts = [p.strip() for p in raw.split(";")]
            if "=" not in parts[0]:
                continue
            name, value = parts[0].split("=", 1)
            attrs = {}
            for p in parts[1:]:
                k, _, v = p.partition("=")
                attrs[k.strip().lower()] = v.strip()
            expired = attrs.get("max-age", "1").lstrip("-").isdigit() and int(attrs.get("max-age", "1")) <= 0
            if "expires" in attrs and "max-age" not in attrs:
                try:
                    from email.utils import parsedate_to_datetime
                    expired = parsedate_to_datetime(attrs["expires"]).timestamp() < time.time()
                except (TypeError, ValueError):
                    pass
            cookie_path = attrs.get("path", "/") or "/"
            if expired or value == "":
                self.jar.pop((name, cookie_path), None)
                self.cookies.pop(name, None)
            else:
                self.jar[(name, cookie_path)] = value
                self.cookies[name] = (value, cookie_path)

    def _hub_prefix(self, path):
        i = urllib.parse.urlsplit(path).path.find("/hub/")
        return None if i < 0 else path[:i + 5]

    def xsrf_token(self):
        """The current XSRF token, as the hub's pages and _xsrf cookie carry it."""
        hub = [v for (n, p), v in self.jar.items() if n == "_xsrf" and p.endswith("/hub/")]
        return hub[0] if hub else None

    def _add_xsrf(self, method, path, hdrs, form):
        """What a browser does: hub forms carry their _xsrf field, the hub's
        scripts send X-XSRFToken on cookie-authenticated API calls."""
        prefix = self._hub_prefix(path)
        if prefix is None:
            return
        if form is not None and method == "POST" and "_xsrf" not in form:
            if self.xsrf_token() is None and not path.startswith(prefix + "api/"):
                self.request("GET", prefix + "login", xsrf=False)  # a form is posted from its page
            if self.xsrf_token() is not None:
                form["_xsrf"] = self.xsrf_token()
        elif path.startswith(prefix + "api/") and self.xsrf_token() is not None:
            if not any(k.lower() in ("authorization", "x-xsrftoken", "cookie") for k in hdrs):
                hdrs["X-XSRFToken"] = self.xsrf_token()

    def request(self, method, path, body=None, headers=None, form=None, json=None, xsrf=True):
        """xsrf=False sends exactly what is given (no _xsrf field or header added)."""
        hdrs = dict(headers or {})
        if form is not None:
            form = dict(form)
        prefix = self._hub_prefix(path)
        if (xsrf and method == "POST" and form is None and body is None and json is None and prefix
                and not path.startswith(prefix + "api/")):
            form = {}  # a button-only form of a hub page
        if xsrf:
            self._add_xsrf(method, path, hdrs, form)
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif json is not None:
            body = jsonlib.dumps(json).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        cookie = self._cookie_header(urllib.parse.urlsplit(path).path)
        if cookie and not any(k.lower() == "cookie" for k in hdrs):
            hdrs["Cookie"] = cookie
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            out = {}
            self.set_cookies = []
            for k, v in resp.getheaders():
                k = k.lower()
                if k == "set-cookie":
                    self.set_cookies.append(v)
                out[k] = out[k] + "\n" + v if k in out else v
            self._store_cookies(self.set_cookies)
            return resp.status, out, data
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def json(self, method, path, **kw):
        """(status, parsed JSON or None, headers)."""
        status, headers, body = self.request(method, path, **kw)
        try:
            parsed = jsonlib.loads(body) if body else None
        except ValueError:
            parsed = None
        return status, parsed, headers


# ---------------------------------------------------------------- users

def _run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


def _unused_name(prefix):
    alphabet = string.ascii_lowercase + string.digits
    for _ in range(100):
        name = prefix + "".join(secrets.choice(alphabet) for _ in range(6))
        try:
            pwd.getpwnam(name)
        except KeyError:
            return name
    raise RuntimeError("no free user name")


class SystemUser:
    """A real Unix user for the duration of a with-block (needs root).

    Named hubt<random>; created with useradd (-m unless home=False), password
    set through chpasswd when given, extra groups via -G. Removed with
    userdel -r afterwards, also when the block raised.
    """

    def __init__(self, password=None, groups=(), shell="/bin/bash", home=True, system=False, prefix="hubt"):
        self.name = _unused_name(prefix)
        self.password = password
        self.groups = list(groups)
        self.shell = shell
        self.home = home
        self.system = system
        self.uid = self.gid = None
        self.home_dir = None

    def __enter__(self):
        argv = ["useradd", "-s", self.shell, "-c", "hubd integration test"]
        argv += ["-m"] if self.home else ["-M"]
        if self.system:
            argv.append("-r")
        if self.groups:
            argv += ["-G", ",".join(self.groups)]
        r = _run(argv + [self.name])
        if r.returncode != 0:
            raise RuntimeError(f"useradd {self.name} failed: {r.stderr.strip()}")
        try:
            if self.password is not None:
                r = _run(["chpasswd"], input=f"{self.name}:{self.password}\n")
                if r.returncode != 0:
                    raise RuntimeError(f"chpasswd {self.name} failed: {r.stderr.strip()}")
            pw = pwd.getpwnam(self.name)
            self.uid, self.gid, self.home_dir = pw.pw_uid, pw.pw_gid, pw.pw_dir
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self):
        r = _run(["userdel", "-r", self.name])
        if r.returncode not in (0, 6):  # 6: no such user
            # Leftover processes keep userdel from working; -f removes the account anyway.
            r = _run(["userdel", "-r", "-f", self.name])
            if r.returncode not in (0, 6, 12):  # 12: could not remove home
                print(f"warning: could not remove user {self.name}: {r.stderr.strip()}", flush=True)

    def __exit__(self, *exc):
        self.remove()
        return False


def hub_user():
    """The account hubd runs as: system user, no password, no login shell, in group shadow."""
    return SystemUser(password=None, groups=["shadow"], shell="/usr/sbin/nologin", home=False, system=True)


# ---------------------------------------------------------------- hubd

_default_account = None
_hub_dirs = []


def _remove_hub_dirs():
    # Hubs used without a with-block leave their directory behind. Owned by
    # an account that is removed at exit, it would later belong to whichever
    # new account gets the uid (tests look for files owned by the hub user).
    if not os.environ.get("HUBTEST_KEEP"):
        for d in _hub_dirs:
            shutil.rmtree(d, ignore_errors=True)


# Registered before any account's removal, so it runs after it (atexit is LIFO).
atexit.register(_remove_hub_dirs)


def _default_hub_account():
    """The account a Hub without user= runs as when the tests run as root.

    hubd refuses root without --allow-root, and nothing but what sudo runs
    should be root: so these hubs run as one unprivileged account like the
    real hub user (system user, group shadow), created on first use and
    removed when the test program exits."""
    global _default_account
    if _default_account is None:
        account = hub_user()
        account.__enter__()
        atexit.register(account.remove)
        _default_account = account
    return _default_account.name


def _world_executable(path):
    """True if every directory on the way and the file itself are o+x."""
    path = os.path.realpath(path)
    parts = path.split(os.sep)
    for i in range(2, len(parts) + 1):
        p = os.sep.join(parts[:i])
        try:
            if not os.stat(p).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


class Hub:
    """Runs hubd in a temporary working directory.

    config:  text of config.py (passed with -f), or None for no file
    args:    extra --Class.trait=value overrides
    env:     extra environment variables (None value: removed)
    user:    run as this Unix user (name), through setpriv --init-groups; when the
             tests run as root and no user is given, a shared unprivileged account
    files:   {relative path: (text or bytes, mode)} created before start
    start:   start (and wait for /hub/api) when entering the with-block
    """

    def __init__(self, config=None, args=(), env=None, user=None, files=None, start=True, timeout=15):
        self.config = config
        self.args = list(args)
        self.env = dict(env or {})
        self.user = user
        self.files = dict(files or {})
        self.autostart = start
        self.timeout = timeout
        self.dir = None
        self.proc = None
        self.port = None
        self.hub_port = None
        self._log = None
        self.binary = HUBD
        self.pass_fds = ()  # descriptors hubd inherits (socket activation tests)

    # -- set-up

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self):
        return f"{self.url}/hub/api"

    @property
    def hub_url(self):
        return f"http://127.0.0.1:{self.hub_port}"

    @property
    def log_path(self):
        return os.path.join(self.dir, "hubd.log")

    def path(self, name):
        return os.path.join(self.dir, name)

    def setup(self):
        """Creates the working directory (once), the config file and `files`."""
        if self.dir:
            return
        self.dir = tempfile.mkdtemp(prefix="hubtest-")
        _hub_dirs.append(self.dir)
        if self.user is None and os.geteuid() == 0:
            self.user = _default_hub_account()
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            if not _world_executable(HUBD):
                self.binary = os.path.join(self.dir, "hubd")
                shutil.copy2(HUBD, self.binary)
                os.chmod(self.binary, 0o755)
        if self.config is not None:
            self.write_file("config.py", self.config, 0o644)
        for name, (content, mode) in self.files.items():
            self.write_file(name, content, mode)

    def write_file(self, name, content, mode=0o600):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.chmod(p, mode)
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(p, pw.pw_uid, pw.pw_gid)
        return p

    def command(self):
        argv = [self.binary]
        if self.config is not None:
            argv += ["-f", "config.py"]
        argv += [f"--JupyterHub.bind_url=http://127.0.0.1:{self.port}",
                 f"--JupyterHub.hub_bind_url=http://127.0.0.1:{self.hub_port}"]
        argv += self.args
        if self.user:
            pw = pwd.getpwnam(self.user)
            argv = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--"] + argv
        return argv

    def environment(self):
        env = {k: v for k, v in os.environ.items() if k in _PASS_ENV or k.startswith("LC_")}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        env["HOME"] = self.dir
        if self.user:
            env["USER"] = env["LOGNAME"] = self.user
        for k, v in self.env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    # -- life cycle

    def start(self, wait=True):
        self.setup()
        if self.port is None:
            self.port, self.hub_port = free_port(), free_port()
        # Append: restarts keep the earlier output for the failure report.
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), cwd=self.dir, env=self.environment(),
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, pass_fds=self.pass_fds)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        last = "no answer"
        while time.monotonic() < deadline:
            if self._exited():
                rc = self.stop()
                raise HubStartError(f"hubd exited with status {rc} during start-up:\n{self.log_tail()}")
            try:
                probe = self.client()  # a subclass's own client (test_tls.py: https)
                probe.timeout = 2
                status, _, body = probe.get("/hub/api")
                if status == 200:
                    return
                last = f"status {status}: {body[:200]!r}"
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        self.stop()
        raise HubStartError(f"hubd did not answer GET /hub/api within {timeout or self.timeout} s "
                            f"({last}):\n{self.log_tail()}")

    def wait_exit(self, timeout=10):
        """Waits for hubd to exit by itself; returns its status, or None if it is still running."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def running(self):
        return self.proc is not None and not self._exited()

    def stop(self, timeout=5):
        """SIGTERM, then SIGKILL after `timeout` s. Returns the exit status."""
        if self.proc is None:
            return None
        if not self._exited():
            self.proc.send_signal(signal.SIGTERM)
            if not self._wait_unreaped(timeout):
                self.proc.kill()
                self._wait_unreaped(timeout)
        self._finish()
        return self.proc.returncode

    def kill9(self):
        """SIGKILL, as a crash would. Returns the exit status."""
        if self.proc is None:
            return None
        if not self._exited():
            self.proc.kill()
            self._wait_unreaped(10)
        self._finish()
        return self.proc.returncode

    def restart(self, env=None, args=None, wait=True):
        """Stops and starts again in the same directory, on the same ports."""
        self.stop()
        if env is not None:
            self.env.update(env)
        if args is not None:
            self.args = list(args)
        return self.start(wait=wait)

    def _exited(self):
        """Like poll(), but leaves an exited hubd a zombie, so its pid (and
        process group id) cannot be reused before _finish() ends the group."""
        if self.proc.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None
        except ChildProcessError:
            return True

    def _wait_unreaped(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._exited():
                return True
            time.sleep(0.05)
        return False

    def _finish(self):
        # hubd ran in its own session (start_new_session): anything it left
        # behind in that group is ours to end; then reap hubd itself.
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc.wait(timeout=10)
        self._close_log()

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    # -- output

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    def log_tail(self, lines=30):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def audit_lines(self):
        """The lines of audit.log in the hub's directory (for JupyterHub.audit_log set to it)."""
        try:
            with open(self.path("audit.log"), encoding="utf-8", errors="replace") as f:
                return f.read().splitlines()
        except OSError:
            return []

    def client(self):
        return Client(self.url)

    # -- context manager

    def __enter__(self):
        try:
            self.setup()
            if self.autostart:
                self.start()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, exc_type, exc, _tb):
        self.stop()
        clean_exit = exc_type is None or (exc_type is SystemExit and exc.code in (0, None, SKIP))
        if not clean_exit or _counts["failed"]:
            print(f"--- hubd log ({self.log_path}):\n{self.log_tail(40)}", flush=True)
        if self.dir and not os.environ.get("HUBTEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)
        return False
