#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The cookie secret: file permissions, generation, JPY_COOKIE_SECRET, rotation.

* a 0644 (or 0640) jupyterhub_cookie_secret in the working directory makes
  hubd exit non-zero within seconds, with "chmod 600" on stderr;
* without a file, hubd creates one: mode 0600, 64 hex digits + newline;
* a symlink in its place is refused and left alone;
* JPY_COOKIE_SECRET=<64 hex> is used and no file is written; invalid hex is refused;
* a login cookie (DummyAuthenticator) survives a restart with the same
  secret and is rejected after a restart with a different one.

Runs as the invoking user (root not needed). Environment: HUBD (set by meson).
"""
import os
import re
import secrets
import stat

import hubtest
from hubtest import check

SECRET_FILE = "jupyterhub_cookie_secret"
DUMMY = ["--JupyterHub.authenticator_class=dummy"]


def expect_refusal(hub, what, needle):
    """Starts hub without waiting; it must exit non-zero with `needle` in its output."""
    hub.start(wait=False)
    rc = hub.wait_exit(timeout=10)
    check(rc is not None and rc != 0, f"{what}: hubd exits non-zero within 10 s (status {rc})")
    check(needle in hub.log_text(), f"{what}: stderr says {needle!r}")
    if rc is None:
        hub.stop()


def test_world_readable_file_refused():
    for mode in (0o644, 0o640):
        content = secrets.token_hex(32) + "\n"
        with hubtest.Hub(start=False, files={SECRET_FILE: (content, mode)}) as hub:
            expect_refusal(hub, f"mode {mode:04o}", "chmod 600")
            log = hub.log_text()
            check(content.strip() not in log, f"mode {mode:04o}: the secret itself is not logged")
            check(f"{mode:04o}" in log, f"mode {mode:04o}: the message names the mode")
            check(stat.S_IMODE(os.stat(hub.path(SECRET_FILE)).st_mode) == mode,
                  f"mode {mode:04o}: hubd did not change the file behind the admin's back")


def test_file_generated():
    with hubtest.Hub(env={"JPY_COOKIE_SECRET": None}) as hub:
        path = hub.path(SECRET_FILE)
        check(os.path.isfile(path), "hubd created jupyterhub_cookie_secret")
        st = os.lstat(path)
        check(stat.S_IMODE(st.st_mode) == 0o600, f"it has mode 0600 ({stat.S_IMODE(st.st_mode):04o})")
        check(st.st_size == 65, f"it holds 65 bytes ({st.st_size})")
        with open(path) as f:
            text = f.read()
        check(re.fullmatch(r"[0-9a-f]{64}\n", text) is not None, "64 lowercase hex digits and a newline")
        check(text.strip() not in hub.log_text(), "the generated secret is not logged")
        # The same file is read back on restart, unchanged.
        hub.restart()
        with open(path) as f:
            check(f.read() == text, "a restart reuses the file")


def test_symlink_refused():
    with hubtest.Hub(start=False) as hub:
        target = hub.write_file("real_secret", secrets.token_hex(32) + "\n", 0o600)
        os.symlink(target, hub.path(SECRET_FILE))
        expect_refusal(hub, "symlinked secret file", "symbolic link")
        check(os.path.islink(hub.path(SECRET_FILE)), "the symlink is left alone")


def test_env_secret():
    secret = secrets.token_hex(32)
    with hubtest.Hub(env={"JPY_COOKIE_SECRET": secret}) as hub:
        check(hub.running(), "hubd runs with JPY_COOKIE_SECRET=<64 hex>")
        check(not os.path.exists(hub.path(SECRET_FILE)), "no cookie secret file is written")
        check(secret not in hub.log_text(), "the secret is not logged")
    with hubtest.Hub(start=False, env={"JPY_COOKIE_SECRET": "not-hex-" + secret}) as hub:
        expect_refusal(hub, "invalid JPY_COOKIE_SECRET", "JPY_COOKIE_SECRET")
        check(not os.path.exists(hub.path(SECRET_FILE)), "invalid env: no file is written either")


def logged_in_client(hub, name):
    c = hub.client()
    status, _, _ = c.post("/hub/login", form={"username": name, "password": "anything"})
    check(status == 302 and "jupyterhub-hub-login" in c.cookies,
          f"dummy login as {name} -> 302 and a login cookie (got {status})")
    return c


def whoami(hub, client):
    status, model, _ = client.json("GET", "/hub/api/user", headers={"Referer": hub.url + "/hub/"})
    return status, (model or {}).get("name") if isinstance(model, dict) else None


def test_rotation_invalidates_cookies():
    secret_a, secret_b = secrets.token_hex(32), secrets.token_hex(32)
    with hubtest.Hub(args=DUMMY, env={"JPY_COOKIE_SECRET": secret_a}) as hub:
        c = logged_in_client(hub, "alice")
        status, name = whoami(hub, c)
        check(status == 200 and name == "alice", f"cookie works under secret A ({status}, {name!r})")

        hub.restart()
        status, name = whoami(hub, c)
        check(status == 200 and name == "alice", f"cookie still works after a restart with A ({status})")

        hub.restart(env={"JPY_COOKIE_SECRET": secret_b})
        status, name = whoami(hub, c)
        check(status in (401, 403) and name != "alice",
              f"cookie from secret A is rejected under secret B ({status})")
        # The same login works again under the new secret.
        c2 = logged_in_client(hub, "alice")
        status, name = whoami(hub, c2)
        check(status == 200 and name == "alice", f"a fresh login under secret B works ({status})")


if __name__ == "__main__":
    hubtest.require_hubd()
    hubtest.main([
        test_world_readable_file_refused,
        test_file_generated,
        test_symlink_refused,
        test_env_secret,
        test_rotation_invalidates_cookies,
    ])
