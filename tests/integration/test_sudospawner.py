#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""sudospawner through real sudo: spawn, supervise, stop, attach, and every
escalation a compromised hub account might try.

Needs root (exit 77 otherwise). Installs the built helper as
/usr/local/bin/sudospawner and a test policy at its compiled-in path (both
backed up and restored), creates a hub account, users alice and bob and a
system user, and a sudoers drop-in (checked with visudo -cf first). The hub is
played by this program: it speaks the wire protocol through its own small
codec below (independent of libhubcore/proto), as the hub account via setpriv.

Environment: SUDOSPAWNER (set by meson), else build/sudospawner/sudospawner.
"""
import json
import os
import pwd
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hubtest  # noqa: E402
from hubtest import check, wait_for  # noqa: E402

from sudotest import BUILT, INSTALLED, sudo_setup, write_policy  # noqa: E402
TOKEN = "tok-" + os.urandom(12).hex()

# ------------------------------------------------------------ wire codec
# Frame: u32 length (BE, = 1 + payload) | u8 type | fields (u8 tag | u32 len | value).
TYPES = {"HELLO": 1, "SPAWN": 2, "ATTACH": 3, "STOP": 4, "READ_LOG": 5, "STATUS": 6, "HELLO_ANS": 0x81,
         "STARTED": 0x82, "ATTACHED": 0x83, "EXITED": 0x84, "STOPPED": 0x85, "LOG": 0x86, "STATUS_ANS": 0x87,
         "ERROR": 0xFF}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
TAGS = {"version": 1, "software": 2, "profile": 3, "port": 4, "server_name": 5, "env": 6, "pid": 7,
        "start_time": 8, "uid": 9, "gid": 10, "supervisor_pid": 11, "log_path": 12, "grace_ms": 13,
        "lines": 14, "exit_code": 15, "signal": 16, "data": 17, "outcome": 18, "running": 19, "code": 20,
        "message": 21}
TAG_NAMES = {v: k for k, v in TAGS.items()}
U8 = {"outcome", "running"}
U64 = {"start_time"}
U32 = {"version", "port", "pid", "uid", "gid", "supervisor_pid", "grace_ms", "lines", "exit_code", "signal", "code"}


def raw_field(tag, value):
    return struct.pack(">BI", tag, len(value)) + value


def field(name, value):
    if name in U8:
        v = struct.pack(">B", value)
    elif name in U64:
        v = struct.pack(">Q", value)
    elif name in U32:
        v = struct.pack(">I", value)
    else:
        v = value if isinstance(value, bytes) else value.encode()
    return raw_field(TAGS[name], v)


def frame(mtype, *fields, raw_type=None):
    body = bytes([raw_type if raw_type is not None else TYPES[mtype]]) + b"".join(fields)
    return struct.pack(">I", len(body)) + body


def parse(body):
    mtype = TYPE_NAMES.get(body[0], body[0])
    out, i = {}, 1
    while i < len(body):
        tag, n = struct.unpack(">BI", body[i:i + 5])
        v = body[i + 5:i + 5 + n]
        i += 5 + n
        name = TAG_NAMES.get(tag, tag)
        if name in U8:
            v = v[0]
        elif name in U32:
            v = struct.unpack(">I", v)[0]
        elif name in U64:
            v = struct.unpack(">Q", v)[0]
        elif name != "data":
            v = v.decode()
        out.setdefault("env", []).append(v) if name == "env" else out.__setitem__(name, v)
    return mtype, out


def spawn_msg(profile="test", port=8123, env=None, server=""):
    env = {"JUPYTERHUB_API_TOKEN": TOKEN, "JUPYTERHUB_USER": "x"} if env is None else env
    fields = [field("profile", profile), field("port", port)] + [field("env", f"{k}={v}") for k, v in env.items()]
    if server:
        fields.append(field("server_name", server))
    return frame("SPAWN", *fields)


# ------------------------------------------------------------ processes

_pids_to_kill = set()  # server process groups we started, ended by id at the end


def as_user(user, argv):
    pw = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--"] + argv


class Helper:
    """One `sudo -n -u TARGET sudospawner` run by the hub account, pipes held here."""

    def __init__(self, hub, target, argv=None, direct=False):
        cmd = argv or ["sudo", "-n", "-u", target, INSTALLED]
        if not direct:
            cmd = as_user(hub, cmd)
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  start_new_session=True, env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})
        self.buf = b""

    def send(self, data):
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
            return True
        except BrokenPipeError:
            return False

    def close_input(self):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if not r:
                return None
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self, timeout=10):
        deadline = time.monotonic() + timeout
        h = self._read(4, deadline)
        if h is None:
            return None, {}
        body = self._read(struct.unpack(">I", h)[0], deadline)
        return parse(body) if body else (None, {})

    def wait(self, timeout=15):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stderr(self):
        try:
            return self.p.stderr.read().decode(errors="replace") if self.p.poll() is not None else ""
        except OSError:
            return ""

    def kill(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.p.wait(10)


def expect_error(h, code, fragment, what):
    mtype, f = h.recv()
    ok = mtype == "ERROR" and f.get("code") == code and fragment in f.get("message", "")
    rc = h.wait()
    check(ok and rc == code, f"{what}: ERROR {code} and exit {code} ({mtype} {f.get('code')} "
                             f"{f.get('message', '')!r}, exit {rc})")
    return f.get("message", "")


def proc_start_time(pid):
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[19])


def alive(pid):
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


# ------------------------------------------------------------ fixture

DUMP = r'''#!/usr/bin/python3 -I
import json, os, sys, time
home = os.environ.get("HOME", "/nonexistent")
mask = os.umask(0o077)
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
info = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "egid": os.getegid(),
        "groups": sorted(os.getgroups()), "cwd": os.getcwd(), "argv": sys.argv, "pid": os.getpid(),
        "sid": os.getsid(0), "pgid": os.getpgid(0), "umask": mask,
        "env": [e.decode() for e in open("/proc/self/environ", "rb").read().split(b"\0") if e],
        "fds": sorted(int(f) for f in os.listdir("/proc/self/fd")),
        "nnp": status.get("NoNewPrivs", "").strip(), "nofile": open("/proc/self/limits").read()}
with open(os.path.join(home, "dump.json.tmp"), "w") as f:
    json.dump(info, f)
os.rename(os.path.join(home, "dump.json.tmp"), os.path.join(home, "dump.json"))
print("dumped for", os.getuid(), flush=True)
if sys.argv[1] == "noisy":  # also ignores SIGTERM, so STOP must escalate to SIGKILL
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for i in range(3000):
        print(f"noisy line {i:05d} " + "x" * 40)
    sys.stdout.flush()
if sys.argv[1] == "crash":
    time.sleep(1.5)
    print("about to crash with status 3", flush=True)
    open(os.path.join(home, "crash.time"), "w").write(repr(time.time()))
    os._exit(3)
time.sleep(3600)
'''


def policy_text(script_dir):
    return f"""# hubd integration test policy
min_uid 1000
profile test {script_dir}/dump.py sleep --port=%p
profile crash {script_dir}/dump.py crash
profile noisy {script_dir}/dump.py noisy
profile missing /nonexistent/bin/jupyterhub-singleuser
allow_env JUPYTERHUB_API_TOKEN JUPYTERHUB_USER JUPYTERHUB_SERVICE_URL
setenv JUPYTERHUB_SINGLEUSER_APP=notebook.notebookapp.NotebookApp
limit nofile 512
log_file .local/state/hubd/server.log
log_max_size 64K
log_keep 2
stop_timeout 3
"""


# ------------------------------------------------------------ the tests

def run_all(ctx):
    hub, alice, bob, sysu = ctx["hub"], ctx["alice"], ctx["bob"], ctx["sys"]
    pol = ctx["policy"]

    # --- the seed guide's two sudo checks, and the pinned argument forms
    r = subprocess.run(["sudo", "-u", hub.name, "sudo", "-n", "-u", alice.name, INSTALLED, "--help"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    check(r.returncode == 0 and "--help" in r.stdout and "show this help information" in r.stdout,
          f"guide check: sudo -u HUB sudo -n -u alice sudospawner --help prints help (exit {r.returncode})")
    r = subprocess.run(["sudo", "-u", hub.name, "sudo", "-n", "-u", alice.name, "echo", "fail"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    check(r.returncode != 0 and "fail" not in r.stdout,
          f"guide check: sudo -n -u alice echo fail is refused ({r.stderr.strip()!r})")
    for args, want in ((["--version"], 0), (["--check"], 0), (["--check", "/etc/passwd"], 1),
                       (["--logging=INFO"], 1)):
        r = subprocess.run(as_user(hub.name, ["sudo", "-n", "-u", alice.name, INSTALLED] + args),
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        check(r.returncode == want, f"sudo sudospawner {' '.join(args)}: exit {r.returncode}, want {want}"
                                    + (f" ({r.stderr.strip()[:120]!r})" if r.returncode != want else ""))
    r = subprocess.run(as_user(hub.name, ["sudo", "-n", "-u", alice.name, INSTALLED, "--check"]),
                       capture_output=True, text=True, timeout=30)
    check(f"would run as {alice.name} (uid {alice.uid}" in r.stdout and "profile test:" in r.stdout,
          "--check prints what would run and as whom")

    # --- escalation: targets
    r = subprocess.run(as_user(hub.name, ["sudo", "-n", "-u", "root", INSTALLED]), capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    check(r.returncode != 0 and r.stdout == "", f"target root: sudo refuses ({r.stderr.strip()[:80]!r})")
    h = Helper(None, None, argv=[INSTALLED], direct=True)  # root running it without sudo
    h.send(spawn_msg())
    expect_error(h, 4, "refusing to run as root", "helper run as root refuses")
    h = Helper(hub.name, sysu.name)
    h.send(spawn_msg())
    expect_error(h, 4, f"has uid {sysu.uid}, below min_uid 1000", "target system user: helper refuses")

    # --- escalation: environment and command in the request
    for name, value in (("LD_PRELOAD", "/tmp/x.so"), ("PYTHONPATH", "/tmp"), ("PATH", "/tmp"),
                        ("BASH_ENV", "/tmp/x"), ("UNLISTED_VARIABLE", "1")):
        h = Helper(hub.name, alice.name)
        h.send(spawn_msg(env={"JUPYTERHUB_API_TOKEN": TOKEN, name: value}))
        expect_error(h, 6, f"variable {name} is not in allow_env", f"SPAWN with {name} refused")
    h = Helper(hub.name, alice.name)
    h.send(spawn_msg(profile="nosuch"))
    expect_error(h, 6, "profile 'nosuch' is not defined", "SPAWN of an undefined profile refused")
    base = [field("profile", "test"), field("port", 8123)]
    # Tags 22-24 are internal TLS's PEM fields; a command or argv would need new tags.
    for what, extra in (("a command field", raw_field(30, b"/bin/sh")),
                        ("an argv field", raw_field(31, b"-c id")),
                        ("a uid field", field("uid", 0)),
                        ("a pid field", field("pid", 1))):
        h = Helper(hub.name, alice.name)
        h.send(frame("SPAWN", *base, extra))
        expect_error(h, 5, "not allowed in SPAWN", f"SPAWN with {what} is a protocol error")
    check(not subprocess.run(["pgrep", "-u", alice.name], capture_output=True).stdout,
          "no refused request started anything as alice")

    # --- malformed messages
    cases = (("oversized frame", struct.pack(">I", 65537) + b"\x02" + b"x" * 100, "frame length 65537"),
             ("zero-length frame", struct.pack(">I", 0), "frame length 0"),
             ("duplicate field", frame("SPAWN", *base, field("profile", "crash")), "appears twice"),
             ("truncated field", frame("SPAWN", *base)[:-3], ""),
             ("garbage", b"GET / HTTP/1.1\r\n\r\n", "frame length"),
             ("unknown type", frame(None, raw_type=0x42), "unknown message type"),
             ("STOP first", frame("STOP"), "not permitted"),
             ("a reply type first", frame("STARTED", field("pid", 1)), ""),
             ("NUL in a value", spawn_msg(env={"JUPYTERHUB_USER": "a\0b"}), "NUL"),
             ("oversized value", spawn_msg(env={"JUPYTERHUB_USER": "v" * 5000}), "longer than"),
             ("trailing byte", frame("SPAWN", *base, b"\x03"), ""))
    for what, data, frag in cases:
        h = Helper(hub.name, alice.name)
        h.send(data)
        h.close_input()
        expect_error(h, 5, frag, f"{what} rejected")
    h = Helper(hub.name, alice.name)
    h.send(frame("HELLO", field("version", 1)))
    mtype, f = h.recv()
    check(mtype == "HELLO_ANS" and f.get("version") == 1, f"HELLO answered ({mtype})")
    h.send(frame("HELLO", field("version", 1)))
    expect_error(h, 5, "not permitted", "a second HELLO is a protocol error")
    h = Helper(hub.name, alice.name)
    h.send(spawn_msg(profile="missing"))
    expect_error(h, 7, "/nonexistent/bin/jupyterhub-singleuser does not exist", "exec failure reported")

    # --- a real spawn: identity, cwd, environment, argv, fds, session
    home = alice.home_dir
    h = Helper(hub.name, alice.name)
    t0 = time.monotonic()
    h.send(spawn_msg(env={"JUPYTERHUB_API_TOKEN": TOKEN, "JUPYTERHUB_USER": alice.name,
                          "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:8123/user/a/"}))
    mtype, st = h.recv()
    if not check(mtype == "STARTED", f"SPAWN answered STARTED ({mtype} {st})"):
        return
    pid = st["pid"]
    _pids_to_kill.add(pid)
    check(time.monotonic() - t0 < 5, "STARTED arrived promptly")
    check(st["uid"] == alice.uid and st["gid"] == alice.gid, "STARTED names alice's uid/gid")
    check(st["start_time"] == proc_start_time(pid), "STARTED start time matches /proc/PID/stat field 22")
    # The token must not be on any command line while the server runs.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    cmdlines = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as fh:
                    cmdlines.append(fh.read())
            except OSError:
                pass
    check(TOKEN not in ps and not any(TOKEN.encode() in c for c in cmdlines),
          "the API token appears in no process's argv")
    dump_path = os.path.join(home, "dump.json")
    if check(wait_for(lambda: os.path.exists(dump_path)), "server wrote its self-description"):
        d = json.load(open(dump_path))
        groups = sorted(set(os.getgrouplist(alice.name, alice.gid)))
        check((d["uid"], d["euid"], d["gid"], d["egid"]) == (alice.uid, alice.uid, alice.gid, alice.gid),
              f"server runs with alice's uid and gid ({d['uid']}/{d['gid']})")
        check(d["groups"] == groups, f"server has alice's supplementary groups ({d['groups']} vs {groups})")
        check(d["cwd"] == home, f"server runs in alice's home ({d['cwd']})")
        expected_env = sorted([f"HOME={home}", f"USER={alice.name}", f"LOGNAME={alice.name}",
                               f"SHELL={pwd.getpwnam(alice.name).pw_shell}", "PATH=/usr/local/bin:/usr/bin:/bin",
                               "LANG=C.UTF-8", f"JUPYTERHUB_API_TOKEN={TOKEN}", f"JUPYTERHUB_USER={alice.name}",
                               "JUPYTERHUB_SERVICE_URL=http://127.0.0.1:8123/user/a/",
                               "JUPYTERHUB_SINGLEUSER_APP=notebook.notebookapp.NotebookApp",
                               "JUPYTERHUB_DISABLE_USER_CONFIG=1"])
        check(sorted(d["env"]) == expected_env,
              f"server environment is exactly the expected one (extra {sorted(set(d['env']) - set(expected_env))},"
              f" missing {sorted(set(expected_env) - set(d['env']))})")
        check(d["argv"][1:] == ["sleep", "--port=8123"], f"argv from the policy, %p = port ({d['argv']})")
        check(d["fds"] in ([0, 1, 2], [0, 1, 2, 3]), f"server inherits only fds 0-2 ({d['fds']})")
        check(d["sid"] == pid and d["pgid"] == pid, "server leads its own session and process group")
        check(d["umask"] == 0o077, f"umask 077 ({oct(d['umask'])})")
        check(d["nnp"] == "1", "no_new_privs is set")
        check("Max open files            512                  512" in d["nofile"], "nofile limit applied")
    log = os.path.join(home, ".local/state/hubd/server.log")
    check(st.get("log_path") == log, f"STARTED names the log file ({st.get('log_path')})")
    if check(wait_for(lambda: os.path.exists(log) and b"dumped" in open(log, "rb").read()),
             "server output reaches the per-user log"):
        s = os.stat(log)
        check(s.st_uid == alice.uid and (s.st_mode & 0o777) == 0o600, f"log is alice's, mode 0600 "
                                                                       f"({oct(s.st_mode & 0o777)})")
    h.send(frame("STATUS"))
    mtype, f = h.recv()
    check(mtype == "STATUS_ANS" and f.get("running") == 1 and f.get("pid") == pid, f"STATUS: running ({f})")
    h.send(frame("READ_LOG", field("lines", 5)))
    mtype, f = h.recv()
    check(mtype == "LOG" and b"dumped for" in f.get("data", b""), "READ_LOG returns the last lines")
    h2 = Helper(hub.name, alice.name)
    h2.send(spawn_msg())
    expect_error(h2, 9, "already running", "a second SPAWN of the same server is refused")

    # --- signalling anything else: a plain alice process is never reachable
    other = subprocess.Popen(as_user(alice.name, ["sleep", "300"]), start_new_session=True)
    _pids_to_kill.add(other.pid)
    time.sleep(0.2)
    h3 = Helper(hub.name, alice.name)
    h3.send(frame("ATTACH", field("pid", other.pid), field("start_time", proc_start_time(other.pid))))
    h3.send(frame("STOP"))
    expect_error(h3, 8, "", "ATTACH+STOP of an alice process that is not her server refused")
    h3 = Helper(hub.name, alice.name)
    h3.send(frame("ATTACH", field("pid", pid), field("start_time", st["start_time"] + 1)))
    expect_error(h3, 8, "now belongs to another process", "ATTACH with a wrong start time refused")
    h3 = Helper(hub.name, bob.name)
    h3.send(frame("ATTACH", field("pid", pid), field("start_time", st["start_time"])))
    expect_error(h3, 8, "does not belong to", "bob's helper cannot attach to alice's server")
    check(alive(other.pid) and alive(pid), "the other process and the server are untouched")

    # --- STOP
    h.send(frame("STOP", field("grace_ms", 2000)))
    mtype, f = h.recv()
    check(mtype == "STOPPED" and f.get("outcome") == 1 and f.get("signal") == 15,
          f"STOP: STOPPED after SIGTERM ({mtype} {f})")
    check(h.wait() == 0, "helper exits 0 after STOPPED")
    check(not alive(pid), "server is gone after STOP")
    os.unlink(dump_path)

    # --- crash: EXITED within one second, with status and last log lines
    h = Helper(hub.name, alice.name)
    h.send(spawn_msg(profile="crash"))
    mtype, st = h.recv()
    if check(mtype == "STARTED", f"crash profile started ({mtype})"):
        _pids_to_kill.add(st["pid"])
        mtype, f = h.recv(timeout=10)
        got = time.time()
        crashed = float(open(os.path.join(home, "crash.time")).read())
        check(mtype == "EXITED" and f.get("exit_code") == 3, f"crash reported as EXITED status 3 ({mtype} {f})")
        check(got - crashed < 1.0, f"crash reported within one second ({got - crashed:.3f} s)")
        check(b"about to crash with status 3" in f.get("data", b""), "EXITED carries the last log lines")
        check(h.wait() == 10, "helper exits 10 after EXITED")
        # pid reuse: the dead server's pid+start time names a process that is gone, and
        # a live alice process with the old start time must never be treated as the server.
        h3 = Helper(hub.name, alice.name)
        h3.send(frame("ATTACH", field("pid", st["pid"]), field("start_time", st["start_time"])))
        expect_error(h3, 8, "", "ATTACH to a server that died is refused")
        h3 = Helper(hub.name, alice.name)
        h3.send(frame("ATTACH", field("pid", other.pid), field("start_time", st["start_time"])))
        expect_error(h3, 8, "now belongs to another process", "ATTACH with a reused pid is refused")
        check(alive(other.pid), "the process holding the reused pid is untouched")
    os.kill(other.pid, signal.SIGKILL)
    other.wait()

    # --- hub restart: kill -9 the hub side; the server survives; a new helper attaches and stops it
    driver = subprocess.Popen(as_user(hub.name, [sys.executable, "-c", DRIVER, "sudo", "-n", "-u", alice.name,
                                                 INSTALLED]),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    dh = Helper.__new__(Helper)
    dh.p, dh.buf = driver, b""
    dh.send(spawn_msg(server="lab"))
    mtype, st = dh.recv()
    if check(mtype == "STARTED" and st.get("server_name") == "lab", f"named server started via driver ({mtype})"):
        pid = st["pid"]
        _pids_to_kill.add(pid)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        time.sleep(1.5)
        check(alive(pid), "server keeps running after the hub side was killed")
        h = Helper(hub.name, alice.name)
        h.send(frame("HELLO", field("version", 1)))
        h.send(frame("ATTACH", field("pid", pid), field("start_time", st["start_time"]), field("server_name", "lab")))
        m1, _ = h.recv()
        m2, f = h.recv()
        check(m1 == "HELLO_ANS" and m2 == "ATTACHED" and f.get("pid") == pid and f.get("uid") == alice.uid,
              f"new helper ATTACHes ({m1}, {m2} {f})")
        h.send(frame("STATUS"))
        mtype, f = h.recv()
        check(mtype == "STATUS_ANS" and f.get("running") == 1, "STATUS through the relay")
        h.send(frame("SPAWN"))  # not permitted after ATTACH
        expect_error(h, 5, "", "SPAWN after ATTACH is a protocol error")
        check(alive(pid), "a protocol error does not stop the server")
        h = Helper(hub.name, alice.name)
        h.send(frame("ATTACH", field("pid", pid), field("start_time", st["start_time"]), field("server_name", "lab")))
        mtype, f = h.recv()
        check(mtype == "ATTACHED", f"attach again after a protocol error ({mtype})")
        h.send(frame("STOP", field("grace_ms", 1000)))
        mtype, f = h.recv()
        check(mtype == "STOPPED", f"STOP through the relay ({mtype} {f})")
        check(h.wait() == 0, "relay exits 0 after STOPPED")
        check(wait_for(lambda: not alive(pid), 5), "server gone after STOP via ATTACH")
        check(os.path.exists(os.path.join(home, ".local/state/hubd/server-lab.log")), "named server log")

    # --- log rotation: 3000 lines of ~60 bytes through a 64 KiB log, 2 kept
    h = Helper(hub.name, alice.name)
    h.send(spawn_msg(profile="noisy", server="noisy"))
    mtype, st = h.recv()
    if check(mtype == "STARTED", f"noisy server started ({mtype})"):
        _pids_to_kill.add(st["pid"])
        base = os.path.join(home, ".local/state/hubd/server-noisy.log")
        check(wait_for(lambda: os.path.exists(base + ".2")), "log rotated twice (server-noisy.log.2 exists)")
        check(not os.path.exists(base + ".3"), "no more than log_keep rotated files")
        sizes = [os.path.getsize(p) for p in (base, base + ".1", base + ".2") if os.path.exists(p)]
        check(all(s <= 64 * 1024 for s in sizes), f"every log file within log_max_size ({sizes})")
        h.send(frame("READ_LOG", field("lines", 2)))
        mtype, f = h.recv()
        check(mtype == "LOG" and f.get("data", b"").count(b"\n") == 2 and b"noisy line 02999" in f["data"],
              f"READ_LOG 2 returns exactly the last two lines ({f.get('data', b'')[:120]!r})")
        t0 = time.monotonic()
        h.send(frame("STOP", field("grace_ms", 500)))
        mtype, f = h.recv()
        check(mtype == "STOPPED" and f.get("outcome") == 2 and f.get("signal") == 9
              and 0.4 < time.monotonic() - t0 < 3,
              f"STOP of a server ignoring SIGTERM: SIGKILL after the grace period ({mtype} {f})")
        h.wait()

    # --- policy file safety (last: it changes the policy)
    text = open(pol).read()
    for what, mode, uid, frag in (("writable by the hub user", 0o644, hub.uid, "not root: run chown root:root"),
                                  ("group-writable", 0o664, 0, f"is group-writable: run chmod 644 {pol}"),
                                  ("world-writable", 0o646, 0, "writable by others")):
        write_policy(pol, text, mode, uid)
        h = Helper(hub.name, alice.name)
        h.send(spawn_msg())
        expect_error(h, 3, frag, f"policy file {what} refused")
    write_policy(pol, text + "bogus keyword\n")
    h = Helper(hub.name, alice.name)
    h.send(spawn_msg())
    nlines = text.count("\n") + 1
    expect_error(h, 3, f"{pol}:{nlines}: unknown keyword 'bogus'", "policy syntax error refused with FILE:LINE")
    os.unlink(pol)
    os.symlink("/etc/passwd", pol)
    h = Helper(hub.name, alice.name)
    h.send(spawn_msg())
    expect_error(h, 3, "symbolic link", "symlinked policy refused")
    os.unlink(pol)
    write_policy(pol, text)


DRIVER = r'''
import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE)
while True:
    b = os.read(0, 65536)
    if not b:
        break
    p.stdin.write(b)
    p.stdin.flush()
p.stdin.close()
p.wait()
'''


def test_sudospawner():
    if not os.access(BUILT, os.X_OK):
        check(False, f"built helper at {BUILT}")
        return
    for tool in ("sudo", "visudo", "setpriv", "useradd"):
        if not shutil.which(tool):
            raise hubtest.Skip(f"{tool} is missing")
    script_dir = tempfile.mkdtemp(prefix="hubtest-sudospawner-")
    os.chmod(script_dir, 0o755)
    try:
        with open(os.path.join(script_dir, "dump.py"), "w") as f:
            f.write(DUMP)
        os.chmod(os.path.join(script_dir, "dump.py"), 0o755)
        with hubtest.hub_user() as hub, hubtest.SystemUser(groups=["users"]) as alice, \
                hubtest.SystemUser() as bob, hubtest.SystemUser(system=True, home=False) as sysu, \
                sudo_setup(hub.name, [alice.name, bob.name, sysu.name], policy_text(script_dir)) as setup:
            if setup is None:
                return
            _fx, pol = setup
            repo = os.path.join(hubtest.ROOT, "sudoers.d", "hubd")
            if os.path.exists(repo):
                r = subprocess.run(["visudo", "-cf", repo], capture_output=True, text=True)
                check(r.returncode == 0, f"sudoers.d/hubd passes visudo -cf ({r.stdout.strip()})")
            try:
                run_all({"hub": hub, "alice": alice, "bob": bob, "sys": sysu, "policy": pol})
            finally:
                for pid in _pids_to_kill:  # only what this test started, by id
                    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                        try:
                            target()
                        except (ProcessLookupError, PermissionError):
                            pass
                time.sleep(0.3)
    finally:
        shutil.rmtree(script_dir, ignore_errors=True)


if __name__ == "__main__":
    hubtest.require_root()
    hubtest.main([test_sudospawner])
