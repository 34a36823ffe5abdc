#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The whole PAM conversation on the login page (issue 6, "PAM done properly").

Real PAM stacks in /etc/pam.d/hubd-test-*, hubd running unprivileged as a
hub account in group shadow, as in production:
* pam_unix + pam_oath (HOTP, codes from oathtool): the password form, then a
  page with PAM's own prompt "One-time password (OATH)", then the login; a
  wrong code and a replayed code fail with the neutral message; a step is
  single-use, bound to the browser session and needs _xsrf; an abandoned
  step is aborted after PAMAuthenticator.conversation_timeout (the PAM
  transaction ends, and its thread takes the next sign-in) and counts as a
  failed login in the audit log.
* pam_faillock (deny=3, tally in a directory of the hub account): after
  three wrong passwords the page says the account is locked, even for the
  right password.
* open_sessions: pam_exec in the session stack records what PAM runs; off
  (the default) no session is opened, on hubd opens and closes one at login.
* PAM's own messages (pam_echo) are shown HTML-escaped.

Needs root (exit 77 otherwise) and libpam-oath + oathtool
(scripts/setup-debian.sh). Every file created in /etc/pam.d and the work
directory (users file, faillock tallies) is removed at the end, also on
failure.
"""
import atexit
import glob
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
import time

import hubtest
from hubtest import check

PASSWORD = "Corr3ct-h0rse-" + secrets.token_hex(4)
WRONG = "wr0ng-batt3ry-" + secrets.token_hex(4)
SECRET = secrets.token_hex(20)  # the user's HOTP key
NEUTRAL = b"Invalid username or password"
TIMEOUT = 2  # PAMAuthenticator.conversation_timeout for these hubs


class SystemFiles:
    """Files and directories created for the test; removed on exit, whatever happens."""

    def __init__(self):
        self.paths = []
        atexit.register(self.remove)

    def add(self, path):
        self.paths.append(path)
        return path

    def write(self, path, text, mode=0o644):
        self.add(path)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def remove(self):
        for p in reversed(self.paths):
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
        self.paths = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def oathtool(counter):
    return subprocess.run(["oathtool", "-c", str(counter), SECRET], capture_output=True, text=True,
                          check=True).stdout.strip()


def login_cookies(client):
    return [c for c in client.set_cookies if c.startswith("jupyterhub-hub-login=")]


def step_id(body):
    m = re.search(rb'name="conversation" value="([0-9a-f]{64})"', body)
    return m.group(1).decode() if m else None


def threads_of(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def start_oath(hub, user):
    """Posts the password form; returns (client, status, body)."""
    c = hub.client()
    status, _, body = c.post("/hub/login?next=%2Fhub%2Fhome", form={"username": user.name, "password": PASSWORD})
    return c, status, body


# ---------------------------------------------------------------- pam_oath

def test_password_then_code(hub, user):
    c, status, body = start_oath(hub, user)
    check(status == 200 and not login_cookies(c), f"the right password alone does not sign in (got {status})")
    check(b"One-time password (OATH)" in body, "the page shows PAM's own prompt 'One-time password (OATH) ...'")
    check(re.search(rb'<input id="answer0" type="password" name="answer0"', body) is not None,
          "the one-time code is asked in a password (echo off) field")
    sid = step_id(body)
    check(sid is not None, "the prompt page carries a 64-hex step id")
    check(b'name="_xsrf"' in body, "the prompt page carries _xsrf")
    check(b'name="password"' not in body and PASSWORD.encode() not in body,
          "the password is neither asked again nor echoed")
    status, headers, _ = c.post("/hub/login?next=%2Fhub%2Fhome", form={"conversation": sid, "answer0": oathtool(0)})
    check(status == 302 and login_cookies(c), f"the code from oathtool signs in (got {status})")
    check(headers.get("location", "").endswith("/hub/home"), f"...and goes to next ({headers.get('location')})")
    status, model, _ = c.json("GET", "/hub/api/user")
    check(status == 200 and isinstance(model, dict) and model.get("name") == user.name,
          f"/hub/api/user names {user.name} (got {status})")


def test_wrong_code(hub, user, used):
    valid = {oathtool(n) for n in range(used, used + 12)}
    wrong = next(code for code in ("000000", "123456", "999999", "314159") if code not in valid)
    c, status, body = start_oath(hub, user)
    sid = step_id(body)
    status, _, body = c.post("/hub/login", form={"conversation": sid, "answer0": wrong})
    check(status == 200 and NEUTRAL in body and not login_cookies(c),
          f"a wrong code -> the neutral message, no cookie (got {status})")
    check(step_id(body) is None and b'name="username"' in body, "...and the sign-in starts over at the form")
    # The same step again, from the same browser session: its id was single-use.
    status, _, body = c.post("/hub/login", form={"conversation": sid, "answer0": oathtool(used)})
    check(status == 400 and b"expired or was already answered" in body and not login_cookies(c),
          f"posting an answered step again -> 400 'expired or was already answered' (got {status})")


def test_replayed_code(hub, user):
    c, status, body = start_oath(hub, user)
    status, _, body = c.post("/hub/login", form={"conversation": step_id(body), "answer0": oathtool(0)})
    check(status == 200 and NEUTRAL in body and not login_cookies(c),
          f"the HOTP code already used -> the neutral message, no cookie (got {status})")
    # The next counter still works (the failure did not break the users file).
    c, status, body = start_oath(hub, user)
    status, _, _ = c.post("/hub/login", form={"conversation": step_id(body), "answer0": oathtool(1)})
    check(status == 302 and login_cookies(c), f"the next HOTP code signs in (got {status})")


def test_wrong_password_no_prompt(hub, user):
    c = hub.client()
    status, _, body = c.post("/hub/login", form={"username": user.name, "password": WRONG})
    check(status == 200 and NEUTRAL in body and step_id(body) is None,
          f"a wrong password ends at once with the neutral message (pam_unix is requisite) (got {status})")


def test_step_bound_to_session_and_xsrf(hub, user):
    c, status, body = start_oath(hub, user)
    sid = step_id(body)
    other = hub.client()
    other.get("/hub/login")  # its own session and XSRF token
    status, _, body = other.post("/hub/login", form={"conversation": sid, "answer0": oathtool(2)})
    check(status == 400 and not login_cookies(other),
          f"another browser cannot answer the step (got {status})")
    status, _, body = c.post("/hub/login", form={"conversation": sid, "answer0": oathtool(2)}, xsrf=False)
    check(status == 403 and not login_cookies(c), f"the step without _xsrf -> 403 (got {status})")
    status, _, _ = c.post("/hub/login", form={"conversation": sid, "answer0": oathtool(2)})
    check(status == 302 and login_cookies(c), f"the browser that started it still can (got {status})")


def test_abandoned_step(hub, user, audit_path):
    pid = hub.proc.pid
    c, status, body = start_oath(hub, user)
    sid = step_id(body)
    waiting = threads_of(pid)
    started = time.monotonic()
    check(sid is not None, "the sign-in waits at the one-time-code prompt")
    # Logged when the authenticator returns: PAM's conversation call has failed
    # and the transaction is over, so its thread is free.
    freed = hubtest.wait_for(
        lambda: re.search(rf"Sign-in of {user.name} from \S+ abandoned", hub.log_text()) is not None,
        timeout=TIMEOUT + 10, step=0.1)
    elapsed = time.monotonic() - started
    check(freed and elapsed >= TIMEOUT - 0.5,
          f"after conversation_timeout={TIMEOUT} s the PAM transaction ends and the log says the sign-in "
          f"was abandoned (after {elapsed:.1f} s)")
    status, _, body = c.post("/hub/login", form={"conversation": sid, "answer0": oathtool(3)})
    check(status == 400 and b"expired or was already answered" in body and not login_cookies(c),
          f"answering after the timeout -> 400 'expired' (got {status})")
    with open(audit_path, encoding="utf-8") as f:
        audit = f.read()
    check(re.search(rf'event=login\.failure .*user="{user.name}".*abandoned at a PAM prompt', audit) is not None,
          "the audit log has a login.failure line for the abandoned sign-in")
    # The code not used by the abandoned sign-in still works.
    c, status, body = start_oath(hub, user)
    status, _, _ = c.post("/hub/login", form={"conversation": step_id(body), "answer0": oathtool(3)})
    check(status == 302 and login_cookies(c), f"a new sign-in works afterwards (got {status})")
    check(threads_of(pid) <= waiting,
          f"it ran on the freed thread: no thread more than while one waited ({waiting} -> {threads_of(pid)})")


# ---------------------------------------------------------------- pam_faillock

def test_faillock(hub, user):
    for i in range(3):
        c = hub.client()
        status, _, body = c.post("/hub/login", form={"username": user.name, "password": WRONG})
        check(status == 200 and NEUTRAL in body and b"locked" not in body,
              f"wrong password {i + 1} of 3 -> the neutral message (got {status})")
    c = hub.client()
    status, _, body = c.post("/hub/login", form={"username": user.name, "password": PASSWORD})
    check(status == 200 and not login_cookies(c), f"the right password after 3 failures -> no login (got {status})")
    check(b"The account is locked due to 3 failed logins." in body,
          "the page says 'The account is locked due to 3 failed logins.' (pam_faillock's message)")
    check(b"minutes left to unlock" in body, "...and how long the lock lasts")
    check(NEUTRAL in body, "...with the neutral message")


# ---------------------------------------------------------------- open_sessions and messages

def test_open_sessions(hub, user, session_log, expect):
    before = open(session_log, encoding="utf-8").read() if os.path.exists(session_log) else ""
    c = hub.client()
    status, _, _ = c.post("/hub/login", form={"username": user.name, "password": PASSWORD})
    check(status == 302 and login_cookies(c), f"login with the password -> 302 (got {status})")
    after = open(session_log, encoding="utf-8").read() if os.path.exists(session_log) else ""
    lines = after[len(before):].split()
    if expect:
        check(f"open_session:{user.name}" in lines and f"close_session:{user.name}" in lines,
              f"open_sessions=True: PAM's session stack ran open_session and close_session ({lines})")
    else:
        check(not any("session" in x for x in lines),
              f"open_sessions=False (the default): no PAM session is opened ({lines})")


def test_pam_messages_escaped(hub, user):
    c = hub.client()
    status, _, body = c.post("/hub/login", form={"username": user.name, "password": WRONG})
    check(status == 200 and NEUTRAL in body, f"wrong password -> neutral message (got {status})")
    check(b"Welcome &lt;b&gt;hubd&lt;/b&gt;" in body and b"<b>hubd</b>" not in body,
          "PAM's info message (pam_echo) is shown, HTML-escaped")


def write_services(files, work, tag):
    oath = f"""# hubd integration test (test_pam_conversation.py); removed after the test
auth     requisite  pam_unix.so
auth     required   pam_oath.so usersfile={work}/oath/users.oath window=5 digits=6
account  required   pam_unix.so
"""
    fl = f"{work}/faillock"
    faillock = f"""# hubd integration test (test_pam_conversation.py); removed after the test
auth     required                 pam_faillock.so preauth deny=3 unlock_time=600 dir={fl}
auth     [success=1 default=bad]  pam_unix.so
auth     [default=die]            pam_faillock.so authfail deny=3 unlock_time=600 dir={fl}
auth     sufficient               pam_faillock.so authsucc deny=3 unlock_time=600 dir={fl}
auth     required                 pam_deny.so
account  required                 pam_faillock.so dir={fl}
account  required                 pam_unix.so
"""
    session = f"""# hubd integration test (test_pam_conversation.py); removed after the test
auth     optional   pam_echo.so Welcome <b>hubd</b>
auth     required   pam_unix.so
account  required   pam_unix.so
session  optional   pam_exec.so {work}/session.sh
"""
    names = {}
    for kind, text in (("oath", oath), ("faillock", faillock), ("session", session)):
        names[kind] = f"hubd-test-{kind}-{tag}"
        files.write(f"/etc/pam.d/{names[kind]}", text)
    return names


def prepare_work(files, hub_account, user):
    """The hub account's own directory: OATH users file, faillock tallies, session log."""
    work = files.add(tempfile.mkdtemp(prefix="hubd-pamconv-"))
    pw = pwd.getpwnam(hub_account.name)
    # pam_oath rewrites the users file (HOTP counter, last code) through a
    # lock file and a new file in the same directory, then chowns it to the
    # old owner: so the hub account owns both (docs/install.md).
    for d in (work, f"{work}/oath", f"{work}/faillock"):
        os.makedirs(d, exist_ok=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        os.chmod(d, 0o700)
    users = files.write(f"{work}/oath/users.oath", f"HOTP {user.name} - {SECRET}\n", 0o600)
    os.chown(users, pw.pw_uid, pw.pw_gid)
    files.write(f"{work}/session.sh",
                f'#!/bin/sh\necho "$PAM_TYPE:$PAM_USER" >> {work}/sessions.log\n', 0o755)
    return work


def main():
    hubtest.require_root()
    hubtest.require_hubd()
    if not glob.glob("/usr/lib/*/security/pam_oath.so") + glob.glob("/lib/*/security/pam_oath.so") \
            or shutil.which("oathtool") is None:
        hubtest.skip("libpam-oath and oathtool are needed (scripts/setup-debian.sh installs them)")
    tag = secrets.token_hex(4)
    with SystemFiles() as files, hubtest.hub_user() as hub_account, \
            hubtest.SystemUser(password=PASSWORD) as user, hubtest.SystemUser(password=PASSWORD) as locked:
        work = prepare_work(files, hub_account, user)
        services = write_services(files, work, tag)
        audit = f"{work}/audit.log"
        common = [f"--PAMAuthenticator.conversation_timeout={TIMEOUT}", "--JupyterHub.throttle_logins=False",
                  f"--JupyterHub.audit_log={audit}"]

        def hub(service, *extra):
            return hubtest.Hub(user=hub_account.name,
                               args=common + [f"--PAMAuthenticator.service={services[service]}", *extra])

        tests = []
        with hub("oath") as oath_hub, hub("faillock") as faillock_hub, hub("session") as session_hub, \
                hub("session", "--PAMAuthenticator.open_sessions=True") as sessions_on_hub:
            session_log = f"{work}/sessions.log"
            tests = [
                ("password, then the one-time code", lambda: test_password_then_code(oath_hub, user)),
                ("a wrong password gets no prompt", lambda: test_wrong_password_no_prompt(oath_hub, user)),
                ("a wrong code", lambda: test_wrong_code(oath_hub, user, 1)),
                ("a replayed HOTP code", lambda: test_replayed_code(oath_hub, user)),
                ("a step is bound to its browser session and needs _xsrf",
                 lambda: test_step_bound_to_session_and_xsrf(oath_hub, user)),
                ("an abandoned step is aborted after the timeout", lambda: test_abandoned_step(oath_hub, user, audit)),
                ("pam_faillock: the locked account is shown", lambda: test_faillock(faillock_hub, locked)),
                ("open_sessions=False", lambda: test_open_sessions(session_hub, user, session_log, False)),
                ("open_sessions=True", lambda: test_open_sessions(sessions_on_hub, user, session_log, True)),
                ("PAM's messages are escaped", lambda: test_pam_messages_escaped(session_hub, user)),
            ]
            hubtest.main(tests)


if __name__ == "__main__":
    main()
