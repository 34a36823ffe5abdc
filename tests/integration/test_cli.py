#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""hubd's command line and configuration files, as admins use them.

* --version, --help, --help-all (every trait with its default and help);
* the file made of every seed snippet loads (--check-config); the snippets hubd
  refuses on purpose are refused with FILE:LINE and the reason;
* a file with `import os` is refused naming the file and line, and nothing runs;
* ./jupyterhub_config.py is read when no -f is given, and the seed guide's start
  command (`hubd --JupyterHub.spawner_class=sudospawner.SudoSpawner`) works;
* JupyterHub-style overrides such as --Authenticator.admin_users="{'zoe'}";
* LocalAuthenticator.create_system_users = True (file or command line) stops
  start-up with the cause and the fix, before anything is written.
Root not needed.
"""
import os
import secrets
import subprocess
import tempfile

import hubtest
from hubtest import check

HUBD = hubtest.HUBD
DATA = os.path.join(hubtest.ROOT, "tests", "data")


def hubd(*args, cwd=None):
    return subprocess.run([HUBD, *args], capture_output=True, text=True, timeout=30, cwd=cwd,
                          stdin=subprocess.DEVNULL)


def test_version_and_help():
    r = hubd("--version")
    check(r.returncode == 0 and r.stdout.startswith("hubd "), f"--version: {r.stdout.strip()}")
    r = hubd("--help")
    check(r.returncode == 0 and "-f, --config FILE" in r.stdout and "--help-all" in r.stdout, "--help")
    r = hubd("--help-all")
    check(r.returncode == 0, "--help-all exits 0")
    for trait in ("--JupyterHub.bind_url", "--JupyterHub.cookie_secret_file", "--JupyterHub.db_url",
                  "--Authenticator.admin_users", "--Authenticator.allowed_users", "--PAMAuthenticator.open_sessions",
                  "--DummyAuthenticator.password", "--SudoSpawner.sudospawner_path", "--Spawner.start_timeout",
                  "--JupyterHub.load_roles", "--JupyterHub.services"):
        check(trait in r.stdout, f"--help-all lists {trait}")
    check("Default: 'http://:8000'" in r.stdout, "--help-all shows bind_url's default")
    check("not yet supported" in r.stdout, "--help-all marks traits that later work implements")
    r = hubd("--no-such-option")
    check(r.returncode == 2 and "hubd --help" in r.stderr, "an unknown argument exits 2 pointing at --help")


def test_seed_snippets_load():
    r = hubd("--check-config", "-f", os.path.join(DATA, "seed_snippets_config.py"))
    check(r.returncode == 0 and "configuration OK" in r.stdout, f"every seed snippet loads (rc {r.returncode})")
    check("ConfigurableHTTPProxy.api_token does not apply" in r.stderr, "the proxy token is accepted with a warning")
    check("not yet supported" not in r.stderr and "ssl_" not in r.stderr and "internal_certs" not in r.stderr,
          "the TLS snippets (public and internal) are supported: no warning about them")
    r = hubd("--check-config", "-f", os.path.join(DATA, "seed_snippets_refused.py"))
    check(r.returncode != 0, "the refused seed snippets stop hubd")
    check("seed_snippets_refused.py:6:" in r.stderr and "create_system_users" in r.stderr,
          "create_system_users = True is refused with FILE:LINE")
    check("sudospawner.SudoSpawner" in r.stderr, "LocalProcessSpawner is refused, pointing at SudoSpawner")


def test_import_refused():
    with tempfile.TemporaryDirectory() as d:
        marker = os.path.join(d, "ran")
        path = os.path.join(d, "jupyterhub_config.py")
        with open(path, "w") as f:
            f.write(f"c = get_config()\nimport os\nos.system('touch {marker}')\n")
        r = hubd("--check-config", "-f", path)
        check(r.returncode != 0, "a config with import os is refused")
        check(f"{path}:2: import is not supported" in r.stderr, f"the error names FILE:2: {r.stderr.strip()[:200]}")
        check(f"{path}:3:" in r.stderr, "the call on line 3 is reported too")
        r = hubd(cwd=d)
        check(r.returncode != 0 and "import is not supported" in r.stderr,
              "hubd without -f reads ./jupyterhub_config.py and refuses it")
        check(not os.path.exists(marker), "nothing in the file was executed")


def test_typo_warns():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.py")
        with open(path, "w") as f:
            f.write("c.JupyterHub.bind_ulr = 'http://:8000'\n")
        r = hubd("--check-config", "-f", path)
        check(r.returncode == 0 and "JupyterHub.bind_ulr" in r.stderr and "did you mean JupyterHub.bind_url" in r.stderr,
              "an unknown trait is named, with a suggestion")


def test_guide_start_command_and_overrides():
    token = secrets.token_hex(32)
    config = (f"c.JupyterHub.authenticator_class = 'dummy'\n"
              f"c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{token}', 'admin': True}}]\n")
    # No -f: the file in the working directory is read, as `cd /etc/jupyterhub; jupyterhub ...` does.
    hub = hubtest.Hub(files={"jupyterhub_config.py": (config, 0o644)},
                      args=["--JupyterHub.spawner_class=sudospawner.SudoSpawner",
                            "--Authenticator.admin_users={'zoe'}"])
    with hub:
        c = hub.client()
        headers = {"Authorization": f"token {token}"}
        status, body, _ = c.json("GET", "/hub/api/info", headers=headers)
        check(status == 200 and body["spawner"]["class"] == "sudospawner.SudoSpawner",
              "the seed guide's --JupyterHub.spawner_class=sudospawner.SudoSpawner is honoured")
        status, body, _ = c.json("GET", "/hub/api/users/zoe", headers=headers)
        check(status == 200 and body["admin"] is True, "--Authenticator.admin_users=\"{'zoe'}\" made zoe an admin")
        check("Loading configuration from ./jupyterhub_config.py" in hub.log_text(), "the log says which file was read")


def test_database_is_authoritative():
    # Seed semantics: users from allowed_users are added; removing a name from
    # the config does not remove the user, and hubd says so at start.
    token = secrets.token_hex(32)
    svc = f"c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{token}', 'admin': True}}]\n"
    hub = hubtest.Hub(config=svc + "c.JupyterHub.authenticator_class = 'dummy'\n"
                                   "c.Authenticator.allowed_users = {'ann', 'ben'}\n")
    with hub:
        status, body, _ = hub.client().json("GET", "/hub/api/users", headers={"Authorization": f"token {token}"})
        check(sorted(u["name"] for u in body) == ["ann", "ben"], "allowed_users are added at start")
        hub.stop()
        hub.write_file("config.py", svc + "c.JupyterHub.authenticator_class = 'dummy'\n"
                                          "c.Authenticator.allowed_users = {'ann'}\n", 0o644)
        hub.start()
        status, body, _ = hub.client().json("GET", "/hub/api/users", headers={"Authorization": f"token {token}"})
        check(sorted(u["name"] for u in body) == ["ann", "ben"], "removing ben from the config keeps him in the database")
        warning = [l for l in hub.log_text().splitlines() if "not in Authenticator.allowed_users" in l]
        check(warning and "ben" in warning[-1] and "ann" not in warning[-1].split(":")[-1],
              f"a warning at start names the users the config no longer allows: {warning[-1:]}")


def test_create_system_users_refused():
    """An unprivileged hub cannot and must not create Unix users: True stops start-up, naming the fix."""
    for how in ("file", "command line"):
        with tempfile.TemporaryDirectory(prefix="hubtest-csu-") as d:
            args = [f"--JupyterHub.bind_url=http://127.0.0.1:{hubtest.free_port()}",
                    f"--JupyterHub.hub_bind_url=http://127.0.0.1:{hubtest.free_port()}"]
            if how == "file":
                with open(os.path.join(d, "jupyterhub_config.py"), "w") as f:
                    f.write("c.JupyterHub.authenticator_class = 'dummy'\n"
                            "c.LocalAuthenticator.create_system_users = True\n")
            else:
                args.append("--LocalAuthenticator.create_system_users=True")
            try:
                r = hubd(*args, cwd=d)
            except subprocess.TimeoutExpired:
                check(False, f"create_system_users = True ({how}): hubd started and kept running")
                continue
            check(r.returncode != 0 and "create_system_users = True is refused" in r.stderr
                  and "cannot and must not create Unix accounts" in r.stderr and "adduser" in r.stderr
                  and "group the sudoers rule names" in r.stderr,
                  f"create_system_users = True ({how}): start-up stops with the cause and the fix "
                  f"(exit {r.returncode}, {r.stderr.strip()[-160:]!r})")
            left = sorted(set(os.listdir(d)) - {"jupyterhub_config.py"})
            check(not left, f"...and nothing was written first ({left})")


def test_sudoers_command():
    import shutil
    for args in (["--users", "zoe,wash"], ["--group", "jupyterhub"]):
        r = hubd("sudoers", "--hub-user", "rhea", *args)
        check(r.returncode == 0 and "rhea ALL=(HUBD_USERS) NOPASSWD: HUBD_HELPER" in r.stdout,
              f"hubd sudoers {' '.join(args)} prints a rule")
        check("!root, !#0" in r.stdout and '/usr/local/bin/sudospawner ""' in r.stdout,
              "root is excluded and the helper takes no arguments")
        if shutil.which("visudo"):
            with tempfile.NamedTemporaryFile("w", suffix=".sudoers") as f:
                f.write(r.stdout)
                f.flush()
                v = subprocess.run(["visudo", "-cf", f.name], capture_output=True, text=True)
                check(v.returncode == 0, f"visudo -cf accepts it ({v.stdout.strip()} {v.stderr.strip()})")
    for bad in (["--hub-user", "root", "--group", "g"], ["--hub-user", "rhea", "--users", "zoe,ALL"],
                ["--hub-user", "rhea", "--users", "zoe, wash"], ["--hub-user", "rhea", "--group", "g\nrhea ALL=(ALL) ALL"],
                ["--hub-user", "rhea"], ["--hub-user", "rhea", "--group", "g", "--users", "zoe"],
                ["--hub-user", "rhea", "--users", "zoe", "--helper", "/usr/bin/env bash"]):
        r = hubd("sudoers", *bad)
        check(r.returncode == 2 and r.stdout == "", f"hubd sudoers refuses {bad!r}")


if __name__ == "__main__":
    hubtest.require_hubd()
    hubtest.main([test_version_and_help, test_seed_snippets_load, test_import_refused, test_typo_warns,
                  test_guide_start_command_and_overrides, test_database_is_authoritative,
                  test_sudoers_command, test_create_system_users_refused])
