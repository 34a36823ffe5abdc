#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The compatibility tables in docs/ against the hubd that was built.

1. docs/migrating.md's configuration table is exactly what
   scripts/gen-config-table.py makes from `$HUBD --help-all`, so a trait added,
   removed or re-classified in libhubcore/src/traits.cpp fails here until the
   table is regenerated.
2. docs/api-compatibility.md's REST API table: every route marked *yes* (or
   *hubd extension*) is sent, with each method its row names, to a running hubd
   (DummyAuthenticator, an admin service token), which must not answer as for a
   route it does not have: 405, or a 404 with the body of a made-up API path. A
   404 about a missing resource ("No such user …") is a served route. Rows marked
   *no* or *not needed* must say why.
Root not needed.
"""
import importlib.util
import os
import re
import secrets

import hubtest
from hubtest import check

MIGRATING = os.path.join(hubtest.ROOT, "docs", "migrating.md")
API_DOC = os.path.join(hubtest.ROOT, "docs", "api-compatibility.md")
GENERATOR = os.path.join(hubtest.ROOT, "scripts", "gen-config-table.py")
REGENERATE = "run scripts/gen-config-table.py --write docs/migrating.md (HUBD=<your build>/hubd/hubd)"

ADMIN_TOKEN = secrets.token_hex(32)
CONFIG = f"""
c = get_config()
c.JupyterHub.authenticator_class = 'dummy'
c.JupyterHub.spawner_class = 'sudospawner.SudoSpawner'
c.SudoSpawner.sudospawner_path = '/nonexistent/sudospawner'
c.JupyterHub.services = [{{'name': 'svc', 'api_token': '{ADMIN_TOKEN}'}}]
c.JupyterHub.load_roles = [{{'name': 'admin', 'services': ['svc']}}]
"""

SERVED = ("yes", "hubd extension")  # the hubd column of a route hubd answers ("yes (4.0)" too)
NOT_SERVED = ("no", "not needed")
HUB = None


def generator():
    spec = importlib.util.spec_from_file_location("gen_config_table", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- configuration table

def test_config_table_matches_hubd():
    gen = generator()
    with open(MIGRATING, encoding="utf-8") as f:
        text = f.read()
    start, end = text.find(gen.BEGIN), text.find(gen.END)
    if not check(0 <= start < end, f"docs/migrating.md has a {gen.BEGIN} ... {gen.END} block"):
        return
    in_doc = text[start:end + len(gen.END)].splitlines()
    generated = gen.table(hubtest.HUBD).splitlines()
    differing = [(i, a, b) for i, (a, b) in enumerate(zip(in_doc, generated)) if a != b]
    detail = ""
    if differing:
        i, a, b = differing[0]
        detail = f"; first difference at table line {i + 1}:\n  docs:  {a}\n  hubd:  {b}"
    elif len(in_doc) != len(generated):
        detail = f"; docs has {len(in_doc)} lines, hubd --help-all gives {len(generated)}"
    check(in_doc == generated, f"docs/migrating.md's configuration table is what hubd --help-all gives "
                               f"({len(generated) - 4} traits){detail}" + (f"\n  {REGENERATE}" if detail else ""))
    statuses = {line.split("|")[2].strip() for line in generated[3:-1]}
    check(statuses <= {"supported", "different", "refused", "hubd only", "not yet", "not needed"},
          f"every status is one the page explains: {sorted(statuses)}")


# ---------------------------------------------------------------- API table

def api_rows():
    """[(line number, methods cell, path cell, hubd cell, notes)] of the REST API table."""
    rows, in_table = [], False
    with open(API_DOC, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.replace(" ", "").startswith("|Method|Path|hubd|Notes|"):
                in_table = True
                continue
            if not in_table:
                continue
            if not line.startswith("|"):
                break
            cells = line.strip().strip("|").split("|")
            if set(cells[0].strip()) <= set("-"):
                continue  # the |---| line
            if len(cells) < 4:
                rows.append((number, None, line, "", ""))  # reported by test_api_table
                continue
            rows.append((number, cells[0].strip(), cells[1].strip(), cells[2].strip(), "|".join(cells[3:]).strip()))
    return rows


def api(method, path, json=None):
    return HUB.client().json(method, path, headers={"Authorization": f"token {ADMIN_TOKEN}"}, json=json,
                             xsrf=False)


_counter = [0]


def fresh(kind):
    """A new user or group (so a DELETE or rename in one row cannot break the next)."""
    _counter[0] += 1
    name = f"docs{kind}{_counter[0]}"
    status, _, _ = api("POST", f"/hub/api/{kind}s/{name}", json={})
    check(status == 201, f"set-up: POST /hub/api/{kind}s/{name} -> 201 (got {status})")
    return name


def concrete(path):
    """The documented path with its :placeholders replaced by resources that exist."""
    url = path if path.startswith("/hub/") else "/hub" + path
    if url.startswith("/hub/api/users/:name"):
        user = fresh("user")
        url = url.replace(":name", user, 1)
        if ":id" in url:
            status, body, _ = api("POST", f"/hub/api/users/{user}/tokens", json={"note": "docs_tables"})
            check(status == 201, f"set-up: a token for {user} -> 201 (got {status})")
            url = url.replace(":id", (body or {}).get("id", "a0"))
        url = url.replace(":server", "docs")
    elif url.startswith("/hub/api/groups/:name"):
        url = url.replace(":name", fresh("group"), 1)
    elif url.startswith("/hub/api/services/:name"):
        url = url.replace(":name", "svc", 1)
    return url


def is_unknown_route(status, body):
    return status == 405 or (status == 404 and body == UNKNOWN_ROUTE_BODY)


UNKNOWN_ROUTE_BODY = None


def test_unknown_route_answer():
    """What hubd says for a route it lacks, and that a missing resource is told apart from it."""
    global UNKNOWN_ROUTE_BODY
    status, body, _ = api("GET", "/hub/api/docs-tables-no-such-route")
    check(status == 404 and isinstance(body, dict), f"an API path hubd lacks -> 404 JSON (got {status} {body})")
    UNKNOWN_ROUTE_BODY = body
    status, body, _ = api("DELETE", "/hub/api/info")
    check(is_unknown_route(status, body), f"DELETE /hub/api/info (no such method) counts as unserved ({status})")
    status, body, _ = api("GET", "/hub/api/users/docs-no-such-user")
    check(status == 404 and not is_unknown_route(status, body),
          f"GET /hub/api/users/<unknown user> is a served route answering 404 about the user ({body})")


def test_api_table():
    rows = api_rows()
    check(len(rows) >= 20, f"docs/api-compatibility.md's API table has its rows ({len(rows)})")
    requests = []  # (row line, method, documented path)
    for line, methods, paths, hubd, notes in rows:
        where = f"docs/api-compatibility.md:{line}"
        if not check(methods is not None, f"{where}: row has Method | Path | hubd | Notes cells: {paths}"):
            continue
        served = hubd.startswith(SERVED)
        if not check(served or hubd in NOT_SERVED,
                     f"{where}: hubd column '{hubd}' is one of yes, yes (…), hubd extension, no, not needed"):
            continue
        if not served:
            check(len(notes.split()) >= 3, f"{where}: '{methods} {paths}' is marked {hubd} and says why")
            continue
        documented = re.findall(r"`([^`]+)`", paths)
        if not documented:
            check(paths == "any API path", f"{where}: path cell names paths in backticks ('{paths}')")
            documented = ["/api/users/docs/any/path"]
        for method in (m.strip() for m in methods.split(",")):
            check(re.fullmatch(r"[A-Z]+", method) is not None, f"{where}: '{method}' is an HTTP method")
            for path in documented:
                requests.append((line, method, path))
    # Shutting down ends the hub: that request goes last.
    requests.sort(key=lambda r: r[2] == "/api/shutdown")
    for line, method, path in requests:
        url = concrete(path)
        body = {} if method in ("POST", "PATCH", "PUT") else None
        status, answer, _ = api(method, url, json=body)
        check(status != 0 and not is_unknown_route(status, answer),
              f"docs/api-compatibility.md:{line}: {method} {path} is served ({method} {url} -> {status} "
              f"{str(answer)[:80]})")
    if requests and requests[-1][2] == "/api/shutdown":
        check(HUB.wait_exit(15) == 0, "hubd exited 0 after POST /api/shutdown")


def test_api_doc_is_linked():
    with open(MIGRATING, encoding="utf-8") as f:
        text = f.read()
    check("docs/api-compatibility.md" in text, "docs/migrating.md points to the API table")


def run_all():
    global HUB
    hubtest.require_hubd()
    with hubtest.Hub(config=CONFIG) as hub:
        HUB = hub
        hubtest.main([test_config_table_matches_hubd, test_api_doc_is_linked, test_unknown_route_answer,
                      test_api_table])


if __name__ == "__main__":
    run_all()
