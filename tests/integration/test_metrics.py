#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""GET /hub/metrics and /hub/api/metrics: JupyterHub 3.0's Prometheus page.

With DummyAuthenticator (no root needed):
* access as 3.0's authenticate_prometheus: anonymous 403, a token without
  read:metrics 403, an admin's token or login cookie 200, a service given
  read:metrics through a role 200; with authenticate_prometheus = False
  anyone may read it;
* every page parses with a strict parser of text format 0.0.4 (HELP/TYPE
  before samples, escaping, cumulative buckets ending in +Inf == _count,
  no duplicate series) and has the exact Content-Type;
* jupyterhub_request_duration_seconds counts requests under 3.0's handler
  names, hubd_logins_total counts successful and failed logins;
* hostile paths and methods add no label values.
As root, also: one real server started and stopped through sudo moves the
spawn and stop histograms, running_servers, proxy add/delete and the proxy
request counter (skipped, not failed, without root).
"""
import math
import os
import re
import secrets

import hubtest
from hubtest import check, wait_for

PROM = secrets.token_hex(32)  # service with read:metrics through a role
LISTER = secrets.token_hex(32)  # service with list:users only
ANN = secrets.token_hex(32)  # ordinary user
ZOE = secrets.token_hex(32)  # admin

CONFIG = f"""
c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = 'pw'
c.Authenticator.admin_users = {{'zoe'}}
c.Authenticator.allowed_users = {{'ann', 'bea'}}
c.JupyterHub.api_tokens = {{'{ANN}': 'ann', '{ZOE}': 'zoe'}}
c.JupyterHub.services = [
    {{'name': 'prometheus', 'api_token': '{PROM}'}},
    {{'name': 'lister', 'api_token': '{LISTER}'}},
]
c.JupyterHub.load_roles = [
    {{'name': 'metrics-reader', 'scopes': ['read:metrics'], 'services': ['prometheus']}},
    {{'name': 'user-lister', 'scopes': ['list:users'], 'services': ['lister']}},
]
"""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HUB = None

# ------------------------------------------------------------ a strict parser

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{({_LABEL}(?:,{_LABEL})*)\}})? (\S+)$")
_VALUE = re.compile(r"^(?:[+-]?(?:\d+\.?\d*(?:e[+-]?\d+)?|\.\d+)|\+Inf|-Inf|NaN)$")


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], v)


def parse(text):
    """{family: {"type", "help", "samples": [(name, labels dict, value)]}}; raises ValueError."""
    if not text.endswith("\n"):
        raise ValueError("the page does not end with a newline")
    families, current, seen = {}, None, set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            name, _, helptext = line[7:].partition(" ")
            if not re.fullmatch(_NAME, name) or name in families:
                raise ValueError(f"line {n}: bad or repeated HELP: {line!r}")
            current = families[name] = {"help": helptext, "type": None, "samples": []}
            current["name"] = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            if current is None or name != current["name"] or kind not in ("counter", "gauge", "histogram"):
                raise ValueError(f"line {n}: TYPE does not follow its HELP: {line!r}")
            if current["samples"]:
                raise ValueError(f"line {n}: TYPE after samples")
            current["type"] = kind
        elif line.startswith("#") or not line:
            raise ValueError(f"line {n}: unexpected line {line!r}")
        else:
            m = _SAMPLE.match(line)
            if not m or current is None or current["type"] is None:
                raise ValueError(f"line {n}: not a sample of a declared family: {line!r}")
            name, value = m.group(1), m.group(m.lastindex)
            if not _VALUE.match(value):
                raise ValueError(f"line {n}: bad value {value!r}")
            allowed = {current["name"]} if current["type"] != "histogram" else {
                current["name"] + s for s in ("_bucket", "_sum", "_count")}
            if name not in allowed:
                raise ValueError(f"line {n}: {name} outside family {current['name']}")
            labels = {k: _unescape(v) for k, v in re.findall(_LABEL, m.group(2) or "")}
            key = (name, tuple(sorted(labels.items())))
            if key in seen:
                raise ValueError(f"line {n}: duplicate series {line!r}")
            seen.add(key)
            current["samples"].append((name, labels, float(value)))
    for fam in families.values():
        if fam["type"] == "histogram":
            _check_histogram(fam)
    return families


def _check_histogram(fam):
    series = {}
    for name, labels, value in fam["samples"]:
        base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if name.endswith("_bucket"):
            s["buckets"].append((float(labels["le"]), value))
        elif name.endswith("_sum"):
            s["sum"] = value
        else:
            s["count"] = value
    for base, s in series.items():
        les = [le for le, _ in s["buckets"]]
        counts = [c for _, c in s["buckets"]]
        if not les or les[-1] != math.inf or les != sorted(les):
            raise ValueError(f"{fam['name']}{base}: buckets not ascending to +Inf: {les}")
        if counts != sorted(counts):
            raise ValueError(f"{fam['name']}{base}: buckets not cumulative: {counts}")
        if s["count"] != counts[-1] or s["sum"] is None or s["sum"] < 0:
            raise ValueError(f"{fam['name']}{base}: _count {s['count']} != +Inf bucket {counts[-1]}")


def value(fams, family, sample=None, **labels):
    """The value of one sample (0 if absent)."""
    sample = sample or family
    for name, lab, v in fams.get(family, {}).get("samples", []):
        if name == sample and all(lab.get(k) == w for k, w in labels.items()):
            return v
    return 0.0


def label_values(fams, family, label):
    return {lab.get(label) for _, lab, _ in fams.get(family, {}).get("samples", []) if label in lab}


# ------------------------------------------------------------ helpers

def get_metrics(token=PROM, path="/hub/metrics", client=None, headers=None):
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"token {token}"
    return (client or HUB.client()).get(path, headers=hdrs)


def scrape(hub=None):
    status, headers, body = (hub or HUB).client().get("/hub/metrics", headers={"Authorization": f"token {PROM}"})
    assert status == 200, f"scrape failed: {status} {body[:200]!r}"
    return parse(body.decode())


def requests_of(fams, method, handler, code):
    return value(fams, "jupyterhub_request_duration_seconds", "jupyterhub_request_duration_seconds_count",
                 method=method, handler=handler, code=str(code))


# ------------------------------------------------------------ tests

def test_access():
    for path in ("/hub/metrics", "/hub/api/metrics"):
        status, _, body = get_metrics(token=None, path=path)
        check(status == 403, f"anonymous GET {path} -> 403 ({status})")
        status, _, _ = get_metrics(token=ANN, path=path)
        check(status == 403, f"an ordinary user's token -> 403 on {path} ({status})")
        status, _, _ = get_metrics(token=LISTER, path=path)
        check(status == 403, f"a service token without read:metrics -> 403 on {path} ({status})")
        status, _, _ = get_metrics(token="0" * 64, path=path)
        check(status == 403, f"an unknown token -> 403 on {path} ({status})")
        status, headers, body = get_metrics(token=PROM, path=path)
        check(status == 200 and headers.get("content-type") == CONTENT_TYPE,
              f"a service with read:metrics (role) -> 200, {CONTENT_TYPE} on {path} "
              f"({status}, {headers.get('content-type')})")
        status, _, body = get_metrics(token=ZOE, path=path)
        check(status == 200 and b"jupyterhub_request_duration_seconds" in body,
              f"an admin's token -> 200 on {path} ({status})")
    status, _, _ = HUB.client().request("POST", "/hub/api/metrics", headers={"Authorization": f"token {PROM}"})
    check(status == 405, f"POST /hub/api/metrics -> 405 ({status})")
    status, _, body = HUB.client().request("HEAD", "/hub/metrics", headers={"Authorization": f"token {PROM}"})
    check(status == 200 and body == b"", f"HEAD /hub/metrics -> 200 without a body ({status})")

    # An admin's login cookie: the page as is, the API route with the XSRF token.
    c = HUB.client()
    status, _, _ = c.post("/hub/login", form={"username": "zoe", "password": "pw"})
    check(status == 302, f"zoe (admin) logs in ({status})")
    status, _, _ = c.get("/hub/metrics")
    check(status == 200, f"an admin's cookie reads /hub/metrics ({status})")
    status, _, _ = c.get("/hub/api/metrics")
    check(status == 200, f"an admin's cookie with X-XSRFToken reads /hub/api/metrics ({status})")
    status, _, _ = c.get("/hub/api/metrics", xsrf=False)
    check(status == 403, f"the cookie without its XSRF token does not count on the API route ({status})")
    u = HUB.client()
    u.post("/hub/login", form={"username": "ann", "password": "pw"})
    status, _, _ = u.get("/hub/metrics")
    check(status == 403, f"an ordinary user's cookie -> 403 ({status})")


def test_health():
    # JupyterHub's HealthCheckHandler: anonymous, 200, for load balancers and systemd checks.
    for method in ("GET", "HEAD"):
        status, headers, body = HUB.client().request(method, "/hub/health")
        check(status == 200, f"anonymous {method} /hub/health -> 200 ({status})")
    status, _, _ = HUB.client().request("POST", "/hub/health")
    check(status in (404, 405), f"POST /hub/health is not served ({status})")


def test_format_and_names():
    status, headers, body = get_metrics()
    try:
        fams = parse(body.decode())
    except ValueError as e:
        check(False, f"the page parses as text format 0.0.4: {e}")
        return
    check(True, f"the page parses as text format 0.0.4 ({len(fams)} families)")
    expected = {
        "jupyterhub_request_duration_seconds": "histogram",
        "jupyterhub_server_spawn_duration_seconds": "histogram",
        "jupyterhub_running_servers": "gauge",
        "jupyterhub_total_users": "gauge",
        "jupyterhub_active_users": "gauge",
        "jupyterhub_hub_startup_duration_seconds": "histogram",
        "jupyterhub_init_spawners_duration_seconds": "histogram",
        "jupyterhub_proxy_add_duration_seconds": "histogram",
        "jupyterhub_server_stop_seconds": "histogram",
        "jupyterhub_proxy_delete_duration_seconds": "histogram",
        "hubd_logins_total": "counter",
        "hubd_proxy_requests_total": "counter",
        "process_resident_memory_bytes": "gauge",
    }
    for name, kind in expected.items():
        check(fams.get(name, {}).get("type") == kind, f"{name} is a {kind}")
    check(label_values(fams, "jupyterhub_server_spawn_duration_seconds", "status") ==
          {"success", "failure", "already-pending", "throttled", "too-many-users"},
          "spawn statuses exist up front, as in 3.0")
    check(label_values(fams, "jupyterhub_active_users", "period") == {"24h", "7d", "30d"},
          "active_users has the periods 24h, 7d, 30d")
    les = [lab["le"] for n, lab, _ in fams["jupyterhub_server_spawn_duration_seconds"]["samples"]
           if n.endswith("_bucket") and lab["status"] == "success"]
    check(les == ["0.5", "1.0", "2.5", "5.0", "10.0", "15.0", "30.0", "60.0", "120.0", "+Inf"],
          f"spawn buckets and their le spelling are 3.0's ({les})")
    check(value(fams, "jupyterhub_hub_startup_duration_seconds",
                "jupyterhub_hub_startup_duration_seconds_count") == 1, "hub start-up observed once")
    check(value(fams, "jupyterhub_total_users") >= 2, "total_users counts the configured users")
    check(fams["jupyterhub_request_duration_seconds"]["help"] == "request duration for all HTTP requests",
          "help strings are 3.0's")


def test_counters_move():
    before = scrape()
    user_handler = "jupyterhub.apihandlers.users.UserAPIHandler"
    for _ in range(3):
        HUB.client().get("/hub/api/users/ann", headers={"Authorization": f"token {ANN}"})
    HUB.client().get("/hub/api/users/nobody-here", headers={"Authorization": f"token {ZOE}"})
    c = HUB.client()
    status, _, _ = c.post("/hub/login", form={"username": "bea", "password": "pw"})
    check(status == 302, f"bea logs in ({status})")
    status, _, _ = HUB.client().post("/hub/login", form={"username": "bea", "password": "wrong"})
    check(status == 200, f"a wrong password is refused ({status})")
    after = scrape()
    got = requests_of(after, "GET", user_handler, 200) - requests_of(before, "GET", user_handler, 200)
    check(got == 3, f"3 GET /hub/api/users/ann counted under UserAPIHandler, code 200 ({got})")
    got = requests_of(after, "GET", user_handler, 404) - requests_of(before, "GET", user_handler, 404)
    check(got == 1, f"the 404 is its own series ({got})")
    login = "jupyterhub.handlers.login.LoginHandler"
    got = requests_of(after, "POST", login, 302) - requests_of(before, "POST", login, 302)
    check(got == 1, f"the login POST is counted under LoginHandler, code 302 ({got})")
    for outcome, want in (("success", 1), ("failure", 1), ("throttled", 0), ("locked", 0)):
        got = value(after, "hubd_logins_total", outcome=outcome) - value(before, "hubd_logins_total", outcome=outcome)
        check(got == want, f"hubd_logins_total{{outcome={outcome}}} moved by {want} ({got})")
    # The failed login waited 2 s (the failure delay): its request took that long.
    slow = value(after, "jupyterhub_request_duration_seconds", "jupyterhub_request_duration_seconds_bucket",
                 method="POST", handler=login, code="200", le="1.0")
    total = requests_of(after, "POST", login, 200)
    check(total >= 1 and slow < total, f"the refused login's 2 s delay is in its duration ({slow} < {total})")
    check(value(after, "jupyterhub_active_users", period="24h") >= 2, "ann and bea are active in the last 24h")


def test_hostile_paths():
    before = scrape()
    handlers = label_values(before, "jupyterhub_request_duration_seconds", "handler")
    hostile = ["/hub/%22%7D%0Aevil_metric%201", "/hub/api/users/x/../../../../etc", "/hub/<script>",
               "/hub/api/" + "a/" * 50, "/hub/static/%2e%2e/%2e%2e/x", "/evil-top-level", "/hub/api/x%5C%22"]
    for path in hostile:
        HUB.client().get(path)
    for method in ("BREW", "PROPFIND", "get"):
        HUB.client().request(method, "/hub/")
    after = scrape()
    new = label_values(after, "jupyterhub_request_duration_seconds", "handler") - handlers
    known = {"jupyterhub.handlers.base.Template404", "jupyterhub.apihandlers.base.API404",
             "jupyterhub.handlers.static.CacheControlStaticFilesHandler",
             "jupyterhub.handlers.base.PrefixRedirectHandler", "jupyterhub.handlers.pages.RootHandler"}
    check(new <= known, f"hostile paths land on the catch-all handlers only (new: {sorted(new)})")
    text = get_metrics()[2].decode()
    check(not any(part in text for part in ("evil", "<script>", "%22", "/etc", "BREW", "PROPFIND")),
          "no part of a hostile request appears on the page")
    methods = label_values(after, "jupyterhub_request_duration_seconds", "method")
    check(methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"},
          f"unknown methods are 'other' ({sorted(methods)})")
    codes = label_values(after, "jupyterhub_request_duration_seconds", "code")
    check(all(re.fullmatch(r"[1-9]\d\d", c) for c in codes), f"codes are three-digit statuses ({sorted(codes)})")


def test_anonymous_when_configured():
    with hubtest.Hub(config=CONFIG, args=["--JupyterHub.authenticate_prometheus=False"]) as hub:
        for path in ("/hub/metrics", "/hub/api/metrics"):
            status, headers, body = hub.client().get(path)
            check(status == 200 and headers.get("content-type") == CONTENT_TYPE,
                  f"authenticate_prometheus = False: anonymous GET {path} -> 200 ({status})")
        try:
            parse(body.decode())
            check(True, "and the page parses")
        except ValueError as e:
            check(False, f"and the page parses: {e}")


# ------------------------------------------------------------ root: a real spawn

def test_spawn_and_stop():
    if os.geteuid() != 0:
        raise hubtest.Skip("spawning a real server needs root (sudo, users); run as root to include it")
    from sudotest import STAND_IN_SERVER_SOURCE, require_spawn_tools, server_policy, stand_in_server, sudo_setup
    require_spawn_tools("sudo", "visudo", "setpriv", "useradd")
    with stand_in_server(STAND_IN_SERVER_SOURCE, "hubtest-metrics-") as script, \
            hubtest.hub_user() as account, hubtest.SystemUser() as alice, \
            sudo_setup(account.name, [alice.name], server_policy(script, "test_metrics.py")) as setup:
        if setup is None:
            return
        config = CONFIG + f"\nc.Authenticator.allowed_users = {{'{alice.name}'}}\nc.Spawner.http_timeout = 20\n"
        with hubtest.Hub(config=config, args=["--JupyterHub.spawner_class=sudospawner.SudoSpawner"],
                         user=account.name) as hub:
            def api(method, path):
                return hub.client().json(method, "/hub/api" + path, headers={"Authorization": f"token {ZOE}"})

            api("POST", f"/users/{alice.name}")
            before = scrape(hub)
            status, _, _ = api("POST", f"/users/{alice.name}/server")
            check(status in (201, 202), f"POST /users/{alice.name}/server -> {status}")
            ready = wait_for(lambda: (api("GET", f"/users/{alice.name}")[1].get("servers") or {})
                             .get("", {}).get("ready") is True, timeout=30)
            if not check(ready, f"{alice.name}'s server is ready"):
                print(hub.log_tail())
                return
            mid = scrape(hub)
            spawn = "jupyterhub_server_spawn_duration_seconds"
            got = value(mid, spawn, spawn + "_count", status="success") - \
                value(before, spawn, spawn + "_count", status="success")
            check(got == 1, f"spawn success observed once ({got})")
            got = value(mid, spawn, spawn + "_sum", status="success") - value(before, spawn, spawn + "_sum",
                                                                                 status="success")
            check(0 < got < 30, f"and its duration is plausible ({got:.3f} s)")
            check(value(mid, "jupyterhub_running_servers") == 1, "running_servers is 1")
            add = "jupyterhub_proxy_add_duration_seconds"
            check(value(mid, add, add + "_count", status="success") == 1, "the route add was observed")
            # A proxied request with alice's own token moves the proxy's counter, and
            # stays out of the hub's request histogram (the hub never handled it).
            status, body, _ = api("POST", f"/users/{alice.name}/tokens")
            token = (body or {}).get("token", "")
            check(status == 201 and token, f"a token for {alice.name} ({status})")
            status, _, body = hub.client().get(f"/user/{alice.name}/", headers={"Authorization": f"token {token}"})
            check(status == 200 and body == b"stand-in", f"GET /user/{alice.name}/ reaches her server ({status})")
            fams = scrape(hub)
            got = value(fams, "hubd_proxy_requests_total") - value(mid, "hubd_proxy_requests_total")
            check(got == 1, f"the proxied request counts in hubd_proxy_requests_total ({got})")
            user_url = "jupyterhub.handlers.base.UserUrlHandler"
            got = sum(requests_of(fams, "GET", user_url, code) - requests_of(mid, "GET", user_url, code)
                      for code in (200, 302, 303, 403, 404, 424))
            check(got == 0, f"and not in jupyterhub_request_duration_seconds ({got})")
            status, _, _ = api("DELETE", f"/users/{alice.name}/server")
            check(status in (202, 204), f"DELETE /users/{alice.name}/server -> {status}")
            stopped = wait_for(lambda: not (api("GET", f"/users/{alice.name}")[1].get("servers") or {}),
                               timeout=20)
            check(stopped, "the server is gone from the API")
            after = scrape(hub)
            stop = "jupyterhub_server_stop_seconds"
            got = value(after, stop, stop + "_count", status="success") - \
                value(before, stop, stop + "_count", status="success")
            check(got == 1, f"stop success observed once ({got})")
            check(value(after, "jupyterhub_running_servers") == 0, "running_servers is back to 0")
            delete = "jupyterhub_proxy_delete_duration_seconds"
            check(value(after, delete, delete + "_count", status="success") == 1, "the route delete was observed")


def run_all():
    global HUB
    hubtest.require_hubd()
    with hubtest.Hub(config=CONFIG) as hub:
        HUB = hub
        hubtest.main([test_access, test_health, test_format_and_names, test_counters_move, test_hostile_paths,
                      test_anonymous_when_configured, test_spawn_and_stop])


if __name__ == "__main__":
    run_all()
