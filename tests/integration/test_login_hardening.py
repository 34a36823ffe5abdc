#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Login throttling and the audit log (issue 5), through the real hub.

DummyAuthenticator with a password; root not needed. hubd trusts 127.0.0.1
as a downstream proxy so that X-Forwarded-For can stand for clients at
different addresses (as behind Apache or nginx).
* Failed logins from one address are free five times, then that address
  gets 429 with Retry-After and a sentence, before the password is checked
  (even the right one waits); other addresses are not affected; after the
  wait the right password works.
* Failures for one username from many addresses block that username
  briefly, everywhere; a success clears it.
* The same throttle guards POST /hub/api/users/:name/tokens with {"auth": …}.
* The audit log (a file here) has one logfmt line per login success,
  failure and throttling, with the client's address, and lines for token
  creation, token use, user creation and deletion by an admin, and server
  starts; a username with a newline and quotes stays on its own line.
"""
import json
import os
import signal
import threading
import time

import hubtest
from hubtest import check

ADMIN_TOKEN = "a" * 32 + "hardening0token"
CONFIG = f"""
c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = 'pw'
c.JupyterHub.trusted_downstream_ips = ['127.0.0.1']
c.JupyterHub.audit_log = AUDIT_PATH
c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{ADMIN_TOKEN}', 'admin': True}}]
"""


def login(hub, name, password, source):
    c = hub.client()
    status, headers, body = c.post("/hub/login", form={"username": name, "password": password},
                                   headers={"X-Forwarded-For": source})
    return status, headers, body


def fail_in_parallel(hub, attempts):
    """Each (name, source) fails at once; the 2 s failure delays overlap."""
    results = [None] * len(attempts)

    def one(i, name, source):
        results[i] = login(hub, name, "wrong", source)[0]

    threads = [threading.Thread(target=one, args=(i, n, s)) for i, (n, s) in enumerate(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_source_throttle(hub):
    statuses = fail_in_parallel(hub, [(f"name{i}", "192.0.2.1") for i in range(6)])
    check(statuses == [200] * 6, f"six failed logins from 192.0.2.1 are answered normally: {statuses}")
    status, headers, body = login(hub, "ann", "pw", "192.0.2.1")
    retry = headers.get("retry-after", "")
    check(status == 429 and retry.isdigit() and 5 <= int(retry) <= 10,
          f"the seventh attempt, even with the right password, -> 429 Retry-After {retry!r}")
    check(b"Too many failed sign-ins" in body and b"Try again in" in body, "...with a sentence saying what to do")
    status, _, _ = login(hub, "ann", "pw", "192.0.2.2")
    check(status == 302, "another address logs in meanwhile")
    time.sleep(int(retry or "10") + 0.2)
    status, _, _ = login(hub, "ann", "pw", "192.0.2.1")
    check(status == 302, "after Retry-After the right password works from 192.0.2.1")


def test_username_throttle(hub):
    statuses = fail_in_parallel(hub, [("bea", f"198.51.100.{i}") for i in range(1, 7)])
    check(statuses == [200] * 6, f"six failures for bea from six addresses: {statuses}")
    status, headers, _ = login(hub, "bea", "pw", "203.0.113.9")
    check(status == 429 and headers.get("retry-after", "").isdigit(),
          f"bea is throttled from a fresh address too ({status})")
    status, _, _ = login(hub, "cid", "pw", "203.0.113.9")
    check(status == 302, "other users from that address are not")
    time.sleep(int(headers.get("retry-after") or "10") + 0.2)
    status, _, _ = login(hub, "bea", "pw", "203.0.113.9")
    check(status == 302, "after the wait bea logs in")


def test_api_password_throttle(hub):
    def attempt(password):
        c = hub.client()
        return c.json("POST", "/hub/api/users/dan/tokens",
                      json={"auth": {"username": "dan", "password": password}},
                      headers={"X-Forwarded-For": "192.0.2.77"})

    results = []
    threads = [threading.Thread(target=lambda: results.append(attempt("wrong")[0])) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(results == [403] * 6, f"six wrong passwords for a token -> 403: {results}")
    status, body, headers = attempt("pw")
    check(status == 429 and headers.get("retry-after", "").isdigit() and "Try again" in body.get("message", ""),
          f"then the API answers 429 with Retry-After: {status} {body}")


def test_audit_log(hub):
    c = hub.client()
    auth = {"Authorization": f"token {ADMIN_TOKEN}", "X-Forwarded-For": "192.0.2.50"}
    status, _, _ = c.json("POST", "/hub/api/users/eve2", headers=auth)
    check(status == 201, "the admin service creates eve2")
    status, body, _ = c.json("POST", "/hub/api/users/eve2/tokens", headers=auth, json={"note": "ci"})
    check(status == 201, "...and a token for her")
    token = body.get("token", "")
    status, _, _ = c.json("GET", "/hub/api/user", headers={"Authorization": f"token {token}"})
    check(status == 200, "eve2's token is used")
    status, _, _ = c.json("DELETE", "/hub/api/users/eve2", headers=auth)
    check(status == 204, "the admin deletes eve2")
    forged = 'x"\nevent=login.success user="root'
    login(hub, forged, "wrong", "192.0.2.60")
    time.sleep(0.3)
    lines = hub.audit_lines()
    check(all(line[:4].isdigit() and " event=" in line for line in lines),
          f"every line is one timestamped event ({len(lines)} lines)")

    def has(*parts):
        return any(all(p in line for p in parts) for line in lines)

    check(has("event=login.failure", 'source="192.0.2.1"', 'via="form"'),
          "failed logins are logged with the client's address (from the trusted proxy)")
    check(has("event=login.throttled", 'source="192.0.2.1"', "retry_after="), "throttling is logged")
    check(has("event=login.success", 'user="ann"', 'source="192.0.2.2"'), "successful logins are logged")
    check(has("event=login.failure", 'source="192.0.2.77"', 'via="api"'), "API password failures are logged")
    check(has("event=user.create", 'user="eve2"', 'by="ops"', 'source="192.0.2.50"'),
          "user creation is logged with the admin and address")
    check(has("event=token.create", 'user="eve2"', 'token="a'), "token creation is logged")
    check(has("event=token.use", 'owner="eve2"'), "token use is logged")
    check(has("event=user.delete", 'user="eve2"', 'by="ops"'), "user deletion is logged")
    check(not any(line.startswith("event=login.success") or 'user="root"\n' in line for line in lines)
          and has("event=login.failure", 'source="192.0.2.60"', "\\\\x0a"),
          "a username with a newline and quotes cannot forge a line")
    st = os.stat(hub.path("audit.log"))
    check(st.st_mode & 0o777 == 0o600, f"the audit log is mode 0600 ({oct(st.st_mode & 0o777)})")
    # logrotate: move the file away, SIGHUP, and the next line lands in a new file.
    os.rename(hub.path("audit.log"), hub.path("audit.log.1"))
    os.kill(hub.proc.pid, signal.SIGHUP)
    time.sleep(0.3)
    login(hub, "fay", "pw", "192.0.2.61")
    time.sleep(0.3)
    check(any('event=login.success user="fay"' in line for line in hub.audit_lines()),
          "after SIGHUP the audit log is reopened (logrotate)")


def test_throttle_can_be_turned_off():
    with hubtest.Hub(config=CONFIG.replace("AUDIT_PATH", "'off'") +
                     "c.JupyterHub.throttle_logins = False\n") as hub:
        statuses = fail_in_parallel(hub, [(f"n{i}", "192.0.2.9") for i in range(7)])
        status, _, _ = login(hub, "ann", "pw", "192.0.2.9")
        check(statuses == [200] * 7 and status == 302, "with throttle_logins = False nothing is throttled")


def run():
    hubtest.run_with_config(CONFIG, [("throttle per source", test_source_throttle),
                                     ("throttle per username", test_username_throttle),
                                     ("throttle on the API", test_api_password_throttle),
                                     ("audit log", test_audit_log),
                                     ("throttle off", lambda _hub: test_throttle_can_be_turned_off())])


if __name__ == "__main__":
    run()
