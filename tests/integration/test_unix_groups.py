#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""allowed_groups and admin_groups from real Unix groups, read again at every login.

As root: two real Unix groups and real users with PAM passwords; hubd runs as
the hub user with PAMAuthenticator.allowed_groups and admin_groups. Group
membership changes with gpasswd while hubd keeps running, and every check is
made through the login form and GET /hub/api/user:
* a member of the allowed group logs in, and is not an admin;
* a user in neither group is refused with the neutral message and no cookie;
* once added to the allowed group (no restart), that user logs in;
* added to the admin group, the next login makes the user an admin;
* removed from it, the next login takes admin away again (JupyterHub 3.0:
  admin_groups decide on every login);
* a user that has logged in stays a hub user after leaving the allowed group
  (the seeds: removing a user takes removing them from the hub's database
  too); removing the user through the API then refuses the next login.
Needs root (exit 77 otherwise).
"""
import secrets
import subprocess

import hubtest
from hubtest import check

NEUTRAL = b"Invalid username or password"
ADMIN_TOKEN = secrets.token_hex(32)


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {r.stderr.strip()}")


class UnixGroup:
    def __init__(self, prefix):
        self.name = f"{prefix}{secrets.token_hex(3)}"

    def __enter__(self):
        run(["groupadd", self.name])
        return self

    def __exit__(self, *exc):
        subprocess.run(["groupdel", self.name], capture_output=True)
        return False

    def add(self, user):
        run(["gpasswd", "-a", user.name, self.name])

    def remove(self, user):
        run(["gpasswd", "-d", user.name, self.name])


def login(hub, user):
    """Logs in through the form: (client, model of /hub/api/user) or (client, None)."""
    c = hub.client()
    status, _, body = c.post("/hub/login", form={"username": user.name, "password": user.password})
    if status != 302:
        check(NEUTRAL in body, f"a refused login of {user.name} shows the neutral message (status {status})")
        return c, None
    status, model, _ = c.json("GET", "/hub/api/user")
    return c, model if status == 200 else None


def is_admin(model):
    return bool(model) and model.get("admin") is True


def test_groups(hub, allowed, admins, member, outsider):
    _, model = login(hub, member)
    check(model and model.get("name") == member.name, f"{member.name}, in {allowed.name}, logs in")
    check(model and not is_admin(model), f"{member.name} is not an admin")

    c, model = login(hub, outsider)
    check(model is None, f"{outsider.name}, in neither group, is refused")
    check(not any(k == "jupyterhub-hub-login" for k, _ in c.jar), "and gets no login cookie")
    check(f"{outsider.name}" in hub.log_text() and "not in allowed_users or allowed_groups" in hub.log_text(),
          "the log says why the login was refused")

    allowed.add(outsider)
    _, model = login(hub, outsider)
    check(model and model.get("name") == outsider.name,
          f"added to {allowed.name} with gpasswd, {outsider.name} logs in without a restart")

    admins.add(member)
    _, model = login(hub, member)
    check(is_admin(model), f"added to {admins.name}, {member.name} is an admin from the next login on")

    admins.remove(member)
    _, model = login(hub, member)
    check(model and not is_admin(model), f"removed from {admins.name}, the next login takes admin away")

    allowed.remove(outsider)
    _, model = login(hub, outsider)
    check(model and model.get("name") == outsider.name,
          f"{outsider.name} left {allowed.name} but is still a hub user (the seeds' semantics)")
    status, _, _ = hub.client().json("DELETE", f"/hub/api/users/{outsider.name}",
                                     headers={"Authorization": f"token {ADMIN_TOKEN}"})
    check(status == 204, f"DELETE /hub/api/users/{outsider.name} -> 204 (got {status})")
    _, model = login(hub, outsider)
    check(model is None, f"removed from the hub and not in {allowed.name}, {outsider.name} is refused")


def main():
    hubtest.require_root()
    hubtest.require_hubd()
    with UnixGroup("hubtok") as allowed, UnixGroup("hubtadm") as admins, \
            hubtest.hub_user() as hub_account, \
            hubtest.SystemUser(password=secrets.token_urlsafe(12), groups=[allowed.name]) as member, \
            hubtest.SystemUser(password=secrets.token_urlsafe(12)) as outsider:
        config = f"""
c.PAMAuthenticator.allowed_groups = {{'{allowed.name}'}}
c.PAMAuthenticator.admin_groups = {{'{admins.name}'}}
c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{ADMIN_TOKEN}', 'admin': True}}]
"""
        with hubtest.Hub(config=config, user=hub_account.name, args=["--JupyterHub.throttle_logins=False"]) as hub:
            hubtest.main([("allowed_groups and admin_groups at every login",
                           lambda: test_groups(hub, allowed, admins, member, outsider))])


if __name__ == "__main__":
    main()
