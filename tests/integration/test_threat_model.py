#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The process tree of docs/security-model.md ("Threat model") is the real one.

As root: a hub user, a real user alice, the built helper where the sudoers
rule names it, a policy running the real /usr/bin/jupyterhub-singleuser, and
hubd as the hub user with the seed guide's SudoSpawner. alice's server is
started through the API and a kernel through the notebook API (via the proxy),
then `ps -eo user:16,pid,ppid,pgid,sid,args --forest` is read and cut down to
hubd and its descendants. Checks:
* the doc's example has the same shape as the live tree: per line the same
  user (hub user as "hubd", alice as "alice"), the same program, the same
  parent line, and the same process-group and session relations (own, or
  the parent's); the doc's forest indentation agrees with its PPID column;
* hubd's real, effective, saved and filesystem uids are all non-zero, and so
  are those of every process of the tree except sudo itself;
* every root process of the tree is sudo, and sudo's only child is the helper;
* every process of alice runs inside the tree (the helper keeps them all);
* the comparison catches wrong examples (the doc with a line's user, parent or
  program changed is rejected), so the check can fail.
The live tree, with the test's random user names replaced by hubd/alice, is
printed in the log: paste it into the doc when the shape really changes.
Needs root (exit 77 otherwise). Run under flock /tmp/hubd-itest.lock.
"""
import os
import re
import secrets
import subprocess
import time

import hubtest
from hubtest import check, wait_for
from demotest import stop_pids, user_pids
from sudotest import require_singleuser, require_spawn_tools, singleuser_env, singleuser_policy, sudo_setup

SERVICE_TOKEN = secrets.token_hex(32)
DOC = os.path.join(hubtest.ROOT, "docs", "security-model.md")
MARKER = "<!-- ps-example: checked by tests/integration/test_threat_model.py -->"
PS = ["ps", "-eo", "user:16,pid,ppid,pgid,sid,args", "--forest"]

POLICY = singleuser_policy("test_threat_model.py")

CONFIG = f"""
c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{SERVICE_TOKEN}', 'admin': True}}]
c.Spawner.http_timeout = 60
c.Spawner.start_timeout = 90
"""


# ------------------------------------------------------------ parsing ps

def parse_rows(text):
    """Rows of `ps -o user,pid,ppid,pgid,sid,args --forest` output: dicts with the
    columns and `depth`, the forest depth. ps puts one space after SID, then for a
    child 1 + 4 * (depth - 1) characters (spaces, and "|" where a sibling follows)
    and "\\_ " before its command."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"^\s*(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+) (?:([ |]*)\\_ )?(.*)$", line)
        if not m:
            continue
        depth = (len(m.group(6)) - 1) // 4 + 1 if m.group(6) is not None else 0
        rows.append({"user": m.group(1), "pid": int(m.group(2)), "ppid": int(m.group(3)), "pgid": int(m.group(4)),
                     "sid": int(m.group(5)), "args": m.group(7), "depth": depth})
    return rows


def program(args):
    """What a line runs: the basename of argv[0], or for a Python interpreter its
    script or -m module (jupyterhub-singleuser, ipykernel_launcher)."""
    words = args.split()
    if not words:
        return ""
    name = os.path.basename(words[0])
    if re.fullmatch(r"python[0-9.]*", name):
        rest = iter(words[1:])
        for w in rest:
            if w == "-m":
                return next(rest, "")
            if not w.startswith("-"):
                return os.path.basename(w)
    return name


def subtree(rows, root_pid):
    """The rows of root_pid and its descendants, in ps's forest order."""
    keep = {root_pid}
    for r in rows:  # forest order lists a parent before its children
        if r["ppid"] in keep:
            keep.add(r["pid"])
    return [r for r in rows if r["pid"] in keep]


def relation(row, parent, field):
    if row[field] == row["pid"]:
        return "own"
    if parent is not None and row[field] == parent[field]:
        return "parent's"
    return "other"


def shape(rows, names):
    """One tuple per line: (user role, program, line number of the parent (from 1),
    process group, session); names maps real user names to doc names."""
    index = {r["pid"]: i for i, r in enumerate(rows)}
    out = []
    for r in rows:
        parent = rows[index[r["ppid"]]] if r["ppid"] in index else None
        out.append((names.get(r["user"], r["user"]), program(r["args"]),
                    index[r["ppid"]] + 1 if parent else None, relation(r, parent, "pgid"), relation(r, parent, "sid")))
    return out


def indentation_problems(rows):
    """Lines whose forest depth does not follow from their PPID (a hand-edited example)."""
    depth = {}
    problems = []
    for i, r in enumerate(rows):
        want = depth.get(r["ppid"], -1) + 1 if i else 0
        if r["depth"] - rows[0]["depth"] != want:
            problems.append(f"line {i + 1} ({program(r['args'])}) is indented to depth "
                            f"{r['depth'] - rows[0]['depth']}, its PPID puts it at {want}")
        depth[r["pid"]] = want
    return problems


def doc_example():
    """The rows of the fenced block after MARKER in docs/security-model.md."""
    with open(DOC) as f:
        text = f.read()
    if MARKER not in text:
        return None
    block = text.split(MARKER, 1)[1].split("```", 2)
    return parse_rows(block[1]) if len(block) == 3 else None


def differences(doc_shape, live_shape):
    """Sentences naming each line where the doc and the live tree differ."""
    fields = ("user", "program", "parent line", "process group", "session")
    out = []
    if len(doc_shape) != len(live_shape):
        out.append(f"the doc shows {len(doc_shape)} processes, the live tree has {len(live_shape)}")
    for i, (d, live) in enumerate(zip(doc_shape, live_shape)):
        for name, a, b in zip(fields, d, live):
            if a != b:
                out.append(f"line {i + 1}: {name} is {a!r} in the doc, {b!r} live")
    return out


def uids(pid):
    """Real, effective, saved and filesystem uid of pid (from /proc), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return [int(x) for x in line.split()[1:5]]
    except OSError:
        return None
    return None


# ------------------------------------------------------------ the test

def api(hub, method, path, body=None):
    return hub.client().json(method, "/hub/api" + path, headers={"Authorization": f"token {SERVICE_TOKEN}"},
                             json=body)


def live_tree(hub_pid, names, want_lines):
    """The hub's tree from ps, once two reads a moment apart agree and it has want_lines lines."""
    last = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = subtree(parse_rows(subprocess.run(PS, capture_output=True, text=True).stdout), hub_pid)
        if last is not None and shape(rows, names) == shape(last, names) and len(rows) >= want_lines:
            return rows
        last = rows
        time.sleep(0.5)
    return last or []


def printable(rows, names):
    """The tree as ps prints it, hubd at the top (as under systemd), with the test's
    user names replaced, for the doc."""
    out = [f"{'USER':<16} {'PID':>6} {'PPID':>6} {'PGID':>6} {'SID':>6} COMMAND"]
    for r in rows:
        depth = r["depth"] - rows[0]["depth"]
        args = r["args"]
        for real, shown in names.items():
            args = args.replace(real, shown)
        prefix = " " * (1 + 4 * (depth - 1)) + "\\_ " if depth else ""
        out.append(f"{names.get(r['user'], r['user']):<16} {r['pid']:>6} {r['ppid']:>6} {r['pgid']:>6} "
                   f"{r['sid']:>6} {prefix}{args}")
    return "\n".join(out)


def test_tree(hub, hub_name, alice):
    names = {hub_name.name: "hubd", alice.name: "alice"}
    status, _, _ = hub.client().post("/hub/login", form={"username": alice.name, "password": alice.password})
    check(status == 302, f"alice logs in with her password ({status})")
    status, _, _ = api(hub, "POST", f"/users/{alice.name}/server")
    if not check(status in (201, 202), f"alice's server start is accepted ({status})"):
        return
    ready = wait_for(lambda: (api(hub, "GET", f"/users/{alice.name}")[1] or {}).get("server"), timeout=90, step=0.25)
    if not check(ready == f"/user/{alice.name}/", f"alice's jupyterhub-singleuser is ready ({ready})"):
        print(hub.log_tail(40))
        return
    status, tok, _ = api(hub, "POST", f"/users/{alice.name}/tokens", {"note": "threat model test"})
    auth = {"Authorization": f"token {(tok or {}).get('token', '')}"}
    status, kernel, _ = hub.client().json("POST", f"/user/{alice.name}/api/kernels", headers=auth, json={})
    check(status == 201 and (kernel or {}).get("id"), f"a kernel starts through the proxy ({status})")
    kernel_started = wait_for(lambda: subprocess.run(["pgrep", "-u", alice.name, "-f", "ipykernel"],
                                                     capture_output=True).stdout, timeout=30)
    check(kernel_started, "the kernel process runs as alice")

    rows = live_tree(hub.proc.pid, names, 5)
    print("live tree (user names replaced; paste into the doc if the shape really changed):")
    print("\n".join("    " + line for line in printable(rows, names).splitlines()), flush=True)
    live = shape(rows, names)

    # -- privileges of the live tree
    check(rows and rows[0]["pid"] == hub.proc.pid and program(rows[0]["args"]) == "hubd",
          "the tree starts at hubd")
    hub_uids = uids(hub.proc.pid)
    check(hub_uids is not None and 0 not in hub_uids and set(hub_uids) == {hub_name.uid},
          f"hubd's real, effective, saved and fs uids are the hub user's ({hub_uids})")
    for r in rows:
        u = uids(r["pid"])
        if program(r["args"]) == "sudo":
            continue
        check(u is not None and 0 not in u, f"{program(r['args'])} (pid {r['pid']}) has no root uid ({u})")
    roots = [r for r in rows if r["user"] == "root"]
    check(roots and all(program(r["args"]) == "sudo" for r in roots),
          f"the only root processes of the tree are sudo: {[program(r['args']) for r in roots]}")
    for s in roots:
        kids = [program(r["args"]) for r in rows if r["ppid"] == s["pid"]]
        check(kids == ["sudospawner"], f"sudo (pid {s['pid']}) has exactly one child, the helper: {kids}")
    tree_pids = {r["pid"] for r in rows}
    stray = [p for p in user_pids(alice.name) if p not in tree_pids and os.path.exists(f"/proc/{p}")]
    check(not stray, f"every process of alice is in the hub's tree (outside it: {stray})")

    # -- the doc's example
    doc = doc_example()
    if not check(doc, f"{DOC} has a ps example after {MARKER!r}"):
        return
    problems = indentation_problems(doc)
    check(not problems, f"the doc's forest indentation agrees with its PPIDs: {problems}")
    doc_shape = shape(doc, {})
    diff = differences(doc_shape, live)
    check(not diff, "the doc's ps example has the live tree's shape" + (": " + "; ".join(diff) if diff else ""))

    # -- the comparison can fail: wrong examples are told apart from the live tree
    # (what, the line's program, which field of its shape, the wrong value)
    for what, prog, field, value in (("sudo shown running as alice", "sudo", 0, "alice"),
                                     ("the helper shown as a child of hubd", "sudospawner", 2, 1),
                                     ("the server shown as sudo", "jupyterhub-singleuser", 1, "sudo"),
                                     ("the server in the helper's session", "jupyterhub-singleuser", 4, "parent's")):
        wrong = [s[:field] + (value,) + s[field + 1:] if s[1] == prog else s for s in live]
        if check(wrong != live, f"mutation '{what}' changes the shape"):
            check(differences(wrong, live), f"a doc with {what} is rejected")
    check(indentation_problems([dict(r, depth=r["depth"] + (1 if i == 1 else 0)) for i, r in enumerate(doc)]),
          "a doc line indented under the wrong parent is rejected")

    # -- a hub restart: the old sudo and the supervisor stay with the server; the new hub's sudo runs a relay
    server_pid = next((r["pid"] for r in rows if program(r["args"]) == "jupyterhub-singleuser"), None)
    old_sudo = next((r["pid"] for r in rows if program(r["args"]) == "sudo"), None)
    hub.kill9()
    hub.start()
    wait_for(lambda: (api(hub, "GET", f"/users/{alice.name}")[1] or {}).get("server"), timeout=30)
    new_rows = live_tree(hub.proc.pid, names, 3)
    print("after kill -9 of hubd and a restart, the new hub's tree:")
    print("\n".join("    " + line for line in printable(new_rows, names).splitlines()), flush=True)
    check([(names.get(r["user"], r["user"]), program(r["args"])) for r in new_rows] ==
          [("hubd", "hubd"), ("root", "sudo"), ("alice", "sudospawner")],
          "the restarted hub's tree is hubd, sudo (root), sudospawner (alice: the relay), and no server")
    old_rows = subtree(parse_rows(subprocess.run(PS, capture_output=True, text=True).stdout), old_sudo)
    print("...and the tree the crashed hub left:")
    print("\n".join("    " + line for line in printable(old_rows, names).splitlines()), flush=True)
    check([program(r["args"]) for r in old_rows][:3] == ["sudo", "sudospawner", "jupyterhub-singleuser"]
          and old_rows[2]["pid"] == server_pid and old_rows[0]["ppid"] != hub.proc.pid,
          "the old sudo (reparented), its supervisor and the same server process keep running")
    both = {r["pid"] for r in new_rows + old_rows}
    stray = [p for p in user_pids(alice.name) if p not in both and os.path.exists(f"/proc/{p}")]
    check(not stray, f"every process of alice is in one of the two trees (outside: {stray})")

    api(hub, "DELETE", f"/users/{alice.name}/server")
    wait_for(lambda: not (api(hub, "GET", f"/users/{alice.name}")[1] or {}).get("server"), timeout=30)


def run():
    require_spawn_tools("sudo", "visudo", "setpriv", "useradd", "ps", "pgrep")
    require_singleuser()
    with hubtest.hub_user() as hub_name, hubtest.SystemUser(password=secrets.token_urlsafe(12)) as alice, \
            sudo_setup(hub_name.name, [alice.name], POLICY) as setup:
        if setup is None:
            return
        args = ["--JupyterHub.spawner_class=sudospawner.SudoSpawner"]
        try:
            with hubtest.Hub(config=CONFIG, args=args, user=hub_name.name) as hub:
                hubtest.main([("process tree", lambda: test_tree(hub, hub_name, alice))])
        finally:
            # Servers outlive hubd by design: whatever still runs as alice is ours to end.
            stop_pids(user_pids(alice.name))


if __name__ == "__main__":
    run()
