#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Prints the configuration compatibility table of docs/migrating.md.

The rows come from `hubd --help-all`, the catalogue hubd itself uses to accept,
warn about or refuse each trait (libhubcore/src/traits.cpp), so the table
cannot list a trait hubd does not know or miss one it does. The catalogue
says supported, [not yet supported] or [not needed by hubd: why]; what it
cannot say — a supported trait whose values or effect differ from JupyterHub
3.0, or a value that stops start-up — is in the three tables below, and a name
there that hubd no longer lists as supported is an error, not a stale row.

Usage:
  scripts/gen-config-table.py [HUBD]                 print the marked block
  scripts/gen-config-table.py [HUBD] --write FILE    replace the block in FILE
HUBD defaults to $HUBD, then build/hubd/hubd under the source root.
tests/integration/test_docs_tables.py checks docs/migrating.md against it.
"""
import os
import re
import subprocess
import sys

BEGIN = "<!-- config-table:begin -->"
END = "<!-- config-table:end -->"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Supported traits whose accepted values or effect differ from JupyterHub 3.0.
DIFFERENT = {
    "JupyterHub.spawner_class":
        "`sudospawner.SudoSpawner` (`sudo`) or `simple` only; `LocalProcessSpawner` needs root and is refused",
    "JupyterHub.authenticator_class":
        "`pam`, `dummy`, `generic-oauth`, `google`, `azuread`, `github`, `gitlab` or `ldap` only (built in): other "
        "authenticators are Python classes, which hubd does not load",
    "JupyterHub.db_url": "SQLite only; any other database URL stops start-up",
    "JupyterHub.services":
        "externally managed services only: hubd launches no `command`; a `jupyterhub_idle_culler` command "
        "turns on the built-in culler instead",
    "Authenticator.username_pattern": "an ECMAScript regular expression, not Python's `re`",
    "Spawner.cmd":
        "accepted, but what runs is the helper policy's profile (`SudoSpawner.profile`, "
        "`sudospawner.conf(5)`): put the command there",
    "Spawner.args": "as `Spawner.cmd`: the helper policy's profile decides the command line",
    "Spawner.environment": "each variable must be allowed by the helper policy's `allow_env`, or the start is refused",
}

# Supported traits of which some values stop start-up.
REFUSED = {
    "LocalAuthenticator.create_system_users":
        "`True` stops start-up: an unprivileged hub cannot create Unix accounts; create them beforehand, "
        "or add users to the group the sudoers rule names",
    "GoogleOAuthenticator.allowed_google_groups":
        "a non-empty value stops start-up: hubd does not check Google groups, and an unchecked allow-list "
        "would admit everyone",
    "GoogleOAuthenticator.admin_google_groups": "a non-empty value stops start-up: hubd does not read Google groups",
    "GoogleOAuthenticator.google_group_whitelist":
        "the old name of `allowed_google_groups`; a non-empty value stops start-up",
    "GitHubOAuthenticator.populate_teams_in_auth_state": "`True` stops start-up: hubd keeps no auth_state",
    "GitHubOAuthenticator.github_organization_whitelist":
        "the old name of `allowed_organizations`; a non-empty value stops start-up, whichever class is active",
    "GitLabOAuthenticator.gitlab_group_whitelist":
        "the old name of `allowed_gitlab_groups`; a non-empty value stops start-up, whichever class is active",
    "GitLabOAuthenticator.gitlab_project_id_whitelist":
        "the old name of `allowed_project_ids`; a non-empty value stops start-up, whichever class is active",
}

# hubd's own traits whose help does not begin with "hubd:".
HUBD_ONLY = {"SudoSpawner.profile"}

TRAIT_LINE = re.compile(r"^--([A-Za-z]+\.[A-Za-z_]+)=<[A-Za-z]+>$")
NOT_NEEDED = re.compile(r"^\[not needed by hubd: (.*?)\] (.*)$")
NOT_YET = re.compile(r"^\[not yet supported\] (.*)$")


def hubd_path(argv):
    if argv:
        return argv[0]
    return os.environ.get("HUBD") or os.path.join(ROOT, "build", "hubd", "hubd")


def traits(hubd):
    """[(name, help)] in hubd's order, from `hubd --help-all`."""
    try:
        out = subprocess.run([hubd, "--help-all"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise SystemExit(f"cannot run {hubd} --help-all ({e}): give the built hubd as an argument or in $HUBD")
    lines = out.splitlines()
    found = []
    for i, line in enumerate(lines):
        m = TRAIT_LINE.match(line)
        if not m:
            continue
        help_lines = []
        for nxt in lines[i + 1:]:
            if not nxt.startswith("    ") or nxt.startswith("    Default:"):
                break
            help_lines.append(nxt.strip())
        found.append((m.group(1), " ".join(help_lines)))
    if not found:
        raise SystemExit(f"{hubd} --help-all listed no traits: is it hubd?")
    return found


def row(name, help_text):
    """(status, note) for one trait."""
    if m := NOT_NEEDED.match(help_text):
        return "not needed", m.group(1)
    if m := NOT_YET.match(help_text):
        return "not yet", m.group(1) + " Accepted with a warning; ignored."
    if name in REFUSED:
        return "refused", REFUSED[name]
    if name in DIFFERENT:
        return "different", DIFFERENT[name]
    if help_text.startswith("hubd:"):
        return "hubd only", help_text[len("hubd:"):].strip()
    if name in HUBD_ONLY:
        return "hubd only", help_text
    return "supported", help_text


def escape(text):
    """Keeps help text literal inside a markdown table cell."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "&#124;")


def table(hubd):
    listed = traits(hubd)
    statuses = {name: row(name, help_text)[0] for name, help_text in listed}
    for name in list(DIFFERENT) + list(REFUSED) + sorted(HUBD_ONLY):
        if statuses.get(name) not in ("different", "refused", "hubd only"):
            raise SystemExit(f"scripts/gen-config-table.py names {name}, which hubd --help-all does not list "
                             "as supported: update the table in this script")
    out = [BEGIN, "| Trait | Status | Note |", "|---|---|---|"]
    for name, help_text in listed:
        status, note = row(name, help_text)
        out.append(f"| `{name}` | {status} | {escape(note)} |")
    out.append(END)
    return "\n".join(out) + "\n"


def replace_block(text, block):
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"no {BEGIN} ... {END} block in the file")
    return text[:start] + block.rstrip("\n") + text[end + len(END):]


def main(argv):
    write = None
    if "--write" in argv:
        i = argv.index("--write")
        if i + 1 >= len(argv):
            raise SystemExit("--write needs a FILE")
        write = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    block = table(hubd_path(argv))
    if write is None:
        sys.stdout.write(block)
        return
    with open(write, encoding="utf-8") as f:
        text = f.read()
    with open(write, "w", encoding="utf-8") as f:
        f.write(replace_block(text, block))


if __name__ == "__main__":
    main(sys.argv[1:])
