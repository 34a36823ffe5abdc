#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Logging in through real PAM while hubd runs unprivileged.

Creates a hub account like the seeds' `rhea` (system user, no password,
/usr/sbin/nologin, in group shadow so pam_unix can read hashes) and a real
user with a password, runs hubd as the hub account with the default
PAMAuthenticator (service "login"), and checks the login form, a good
login (302 + jupyterhub-hub-login cookie, /hub/api/user), a wrong password
and an unknown user (same neutral message, no cookie, password not logged),
and that hubd is not running as root.

Needs root (exit 77 otherwise). Environment: HUBD (set by meson).
Debian's /etc/pam.d/login has pam_faildelay (3 s) on failures: expected. The
last tests use that delay: while four wrong-password logins wait in PAM, the
API and another real user's login must still be answered.
"""
import re
import secrets
import subprocess
import threading
import time

import hubtest
from hubtest import check

PASSWORD = "Corr3ct-h0rse-" + secrets.token_hex(4)
WRONG = "wr0ng-batt3ry-" + secrets.token_hex(4)
NEUTRAL = b"Invalid username or password"


def login_cookies(client):
    return [c for c in client.set_cookies if c.startswith("jupyterhub-hub-login=")]


def test_runs_as_hub_user(hub, hub_account):
    out = subprocess.run(["ps", "-o", "user:32=,args=", "-p", str(hub.proc.pid)],
                         capture_output=True, text=True).stdout.strip()
    check(out.split(None, 1)[0] == hub_account.name if out else False,
          f"ps shows hubd running as {hub_account.name} ({out!r})")
    # Everything in hubd's session (it was started with start_new_session) must be unprivileged.
    all_ps = subprocess.run(["ps", "-eo", "user:32=,sid=,args="], capture_output=True, text=True).stdout
    ours = [line.split(None, 2) for line in all_ps.splitlines()]
    ours = [f for f in ours if len(f) >= 2 and f[1] == str(hub.proc.pid)]
    check(ours and all(f[0] == hub_account.name for f in ours),
          f"every process in hubd's session runs as {hub_account.name}: {ours}")
    check(PASSWORD not in all_ps, "no password on any command line")


def test_login_form(hub):
    status, headers, body = hub.client().get("/hub/login")
    check(status == 200, f"GET /hub/login -> 200 (got {status})")
    check(b'name="username"' in body, 'login form has name="username"')
    check(b'name="password"' in body, 'login form has name="password"')
    check(re.search(rb'<form[^>]*method="post"', body, re.I) is not None, "login form posts")


def test_good_login(hub, user):
    c = hub.client()
    status, headers, _ = c.post("/hub/login", form={"username": user.name, "password": PASSWORD})
    check(status == 302, f"POST /hub/login with the right password -> 302 (got {status})")
    cookies = login_cookies(c)
    check(len(cookies) == 1, f"one jupyterhub-hub-login cookie set ({c.set_cookies})")
    if cookies:
        attrs = [a.strip().lower() for a in cookies[0].split(";")[1:]]
        check("httponly" in attrs, f"login cookie is HttpOnly ({cookies[0].split(';', 1)[1]})")
        check("path=/hub/" in attrs, "login cookie has Path=/hub/")
    status, model, _ = c.json("GET", "/hub/api/user", headers={"Referer": hub.url + "/hub/"})
    check(status == 200, f"GET /hub/api/user with the cookie and a Referer -> 200 (got {status})")
    check(isinstance(model, dict) and model.get("name") == user.name,
          f"/hub/api/user names {user.name} ({model and model.get('name')!r})")
    # Mixed case and surrounding blanks normalise to the same account.
    c2 = hub.client()
    status, _, _ = c2.post("/hub/login", form={"username": f"  {user.name.upper()} ", "password": PASSWORD})
    check(status == 302 and login_cookies(c2), f"login as '  {user.name.upper()} ' works too (got {status})")


def test_wrong_password(hub, user):
    c = hub.client()
    status, _, body = c.post("/hub/login", form={"username": user.name, "password": WRONG})
    check(status == 200, f"wrong password -> 200 (got {status})")
    check(NEUTRAL in body, "wrong password -> 'Invalid username or password'")
    check(not login_cookies(c), "wrong password -> no login cookie")
    check(WRONG.encode() not in body, "the wrong password is not echoed in the page")
    status, _, _ = c.get("/hub/api/user", headers={"Referer": hub.url + "/hub/"})
    check(status in (401, 403), f"no session after a wrong password (GET /hub/api/user -> {status})")


def test_unknown_user(hub):
    c = hub.client()
    status, _, body = c.post("/hub/login", form={"username": "hubtnosuchuser", "password": WRONG})
    check(status == 200, f"unknown user -> 200 (got {status})")
    check(NEUTRAL in body, "unknown user -> the same neutral message")
    check(not login_cookies(c), "unknown user -> no login cookie")


def test_hub_account_cannot_log_in(hub, hub_account):
    # The hub account has no password (locked in /etc/shadow): neither an
    # empty nor any other password may open a session.
    for pw in ("", "x", "!"):
        c = hub.client()
        status, _, body = c.post("/hub/login", form={"username": hub_account.name, "password": pw})
        check(status == 200 and NEUTRAL in body and not login_cookies(c),
              f"the password-less hub account cannot log in with {pw!r} (got {status})")


def test_expired_account(hub):
    # pam_unix accepts the password, then pam_acct_mgmt refuses the account.
    with hubtest.SystemUser(password=PASSWORD) as expired:
        r = subprocess.run(["chage", "-E", "0", expired.name], capture_output=True, text=True)
        if r.returncode != 0:
            raise hubtest.Skip(f"chage failed: {r.stderr.strip()}")
        c = hub.client()
        status, _, body = c.post("/hub/login", form={"username": expired.name, "password": PASSWORD})
        check(status == 200 and NEUTRAL in body and not login_cookies(c),
              f"an expired account gets the neutral message and no cookie (got {status})")
        check(re.search(rf"{expired.name}.*account", hub.log_text()) is not None,
              "the log says the account check failed")


def test_pam_does_not_block_others(hub, user):
    """4 wrong passwords sit in pam_faildelay; meanwhile the API and another user's login must not wait."""
    with hubtest.SystemUser(password=PASSWORD) as other:
        t0 = time.monotonic()
        failures = []
        lock = threading.Lock()

        def wrong_login():
            start = time.monotonic()
            c = hub.client()
            status, _, body = c.post("/hub/login", form={"username": user.name, "password": WRONG})
            with lock:
                failures.append((start - t0, time.monotonic() - t0, status, NEUTRAL in body, bool(login_cookies(c))))

        threads = [threading.Thread(target=wrong_login, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)  # the four requests are in PAM now
        with lock:
            early = len(failures)
        api_times = []
        for _ in range(3):
            start = time.monotonic()
            status, _, _ = hub.client().get("/hub/api")
            api_times.append((start - t0, time.monotonic() - t0, status))
        start = time.monotonic()
        c = hub.client()
        status, _, _ = c.post("/hub/login", form={"username": other.name, "password": PASSWORD})
        good = (start - t0, time.monotonic() - t0, status, bool(login_cookies(c)))
        for t in threads:
            t.join(30)
        print(f"     timeline (s since start): wrong logins {sorted((round(a, 2), round(b, 2)) for a, b, *_ in failures)}; "
              f"GET /hub/api {[(round(a, 2), round(b, 2)) for a, b, _ in api_times]}; "
              f"good login of {other.name} {round(good[0], 2)} -> {round(good[1], 2)}", flush=True)

        check(len(failures) == 4 and all(st == 200 and neutral and not cookie for _, _, st, neutral, cookie in failures),
              f"the 4 wrong-password logins all get the neutral message and no cookie ({[f[2] for f in failures]})")
        first_failure_done = min((end for _, end, *_ in failures), default=0)
        if early or first_failure_done < 1.0:
            raise hubtest.Skip(f"wrong passwords came back after {first_failure_done:.2f} s: no pam_faildelay "
                               "here, so nothing was pending to block on")
        check(all(st == 200 for *_, st in api_times) and max(end for _, end, _ in api_times) < first_failure_done,
              f"GET /hub/api answered 200 while the wrong-password logins were still pending (last API answer at "
              f"{max(end for _, end, _ in api_times):.2f} s, first failed login done at {first_failure_done:.2f} s)")
        check(good[2] == 302 and good[3], f"{other.name} logs in with the right password (got {good[2]})")
        check(good[1] < first_failure_done,
              f"{other.name}'s good login completed while the 4 wrong-password logins were still pending "
              f"(good login done at {good[1]:.2f} s, took {good[1] - good[0]:.2f} s; "
              f"first failed login done at {first_failure_done:.2f} s)")


def test_no_password_in_log(hub):
    log = hub.log_text()
    check(PASSWORD not in log, "the right password is not in the log")
    check(WRONG not in log, "the wrong password is not in the log")
    check(len(log) > 0, "hubd wrote a log")


def main():
    hubtest.require_root()
    hubtest.require_hubd()
    with hubtest.hub_user() as hub_account, hubtest.SystemUser(password=PASSWORD) as user:
        # This test is about PAM (its failure delay, its verdicts) and makes more
        # than five failed logins from 127.0.0.1 on purpose: login throttling
        # would answer 429 first. It has its own test (test_login_hardening.py).
        with hubtest.Hub(user=hub_account.name, args=["--JupyterHub.throttle_logins=False"]) as hub:
            hubtest.main([
                ("runs as the hub user", lambda: test_runs_as_hub_user(hub, hub_account)),
                ("login form", lambda: test_login_form(hub)),
                ("good login", lambda: test_good_login(hub, user)),
                ("wrong password", lambda: test_wrong_password(hub, user)),
                ("unknown user", lambda: test_unknown_user(hub)),
                ("hub account cannot log in", lambda: test_hub_account_cannot_log_in(hub, hub_account)),
                ("expired account", lambda: test_expired_account(hub)),
                ("PAM calls never block other users' requests", lambda: test_pam_does_not_block_others(hub, user)),
                ("no password in the log", lambda: test_no_password_in_log(hub)),
            ])


if __name__ == "__main__":
    main()
