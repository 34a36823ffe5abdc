#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The token page, /hub/token (issue 6): request a token with note, expiry and
scopes, see one's API tokens and authorized applications, revoke them.

DummyAuthenticator; root not needed. Checks that the page issues tokens the
way POST /hub/api/users/:name/tokens does (same scope checks, same model),
that the token is shown once and never lands in a URL, the log or the audit
log, that every POST needs its _xsrf field, that nobody revokes someone
else's token, and that hostile notes are escaped or refused.
"""
import html
import re
import sqlite3
import time
import urllib.parse
from datetime import datetime

import hubtest
from hubtest import check

CONFIG = """
c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = 'pw'
c.JupyterHub.audit_log = AUDIT_PATH
"""

TOKEN_RE = re.compile(rb'<pre id="token-value" data-token-id="(a\d+)">([^<]*)</pre>')
ERROR_RE = re.compile(rb'<p id="token-error" class="error" role="alert">([^<]*)</p>')

issued = []  # every token value the hub handed out, for the log check


def login(hub, name):
    c = hub.client()
    status, headers, _ = c.post("/hub/login", form={"username": name, "password": "pw"})
    assert status == 302, f"login as {name} failed: {status}"
    return c


def create(c, note="", expires="", scopes="", **kw):
    """POST the create form; (status, headers, body, token id, token)."""
    form = {"action": "create", "note": note, "expires_in": expires, "scopes": scopes}
    status, headers, body = c.post("/hub/token", form=form, **kw)
    m = TOKEN_RE.search(body)
    token_id, token = (m.group(1).decode(), html.unescape(m.group(2).decode())) if m else (None, None)
    if token:
        issued.append(token)
    return status, headers, body, token_id, token


def error_of(body):
    m = ERROR_RE.search(body)
    return html.unescape(m.group(1).decode()) if m else ""


def row_ids(c):
    """Token ids listed in #api-tokens."""
    status, _, body = c.get("/hub/token")
    assert status == 200, f"GET /hub/token: {status}"
    return re.findall(r'<tr data-token-id="(a\d+)" data-kind="api_token">', body.decode())


def api(c, method, path, token, **kw):
    return c.json(method, "/hub/api" + path, headers={"Authorization": f"token {token}"}, **kw)


def test_page(hub):
    anon = hub.client()
    status, headers, _ = anon.get("/hub/token")
    check(status == 302 and headers["location"].startswith("/hub/login?next="), "anonymous -> login")
    c = login(hub, "ann")
    status, headers, body = c.get("/hub/token")
    check(status == 200 and b'id="token-page"' in body and b'id="token-form"' in body, "the page and form")
    check(b'id="nav-token"' in body, "the nav has a Token link")
    check(b"<script" not in body and b"http://" not in body and b"https://" not in body,
          "no script and no external assets")
    check(headers.get("cache-control") == "no-store", "Cache-Control: no-store")
    values = re.findall(rb'<option value="(\d*)" data-expiry="(\w+)"', body)
    check(values == [(b"", b"never"), (b"3600", b"1h"), (b"86400", b"1d"), (b"604800", b"1w"),
                     (b"2592000", b"30d")], f"expiry choices never/1h/1d/1w/30d: {values}")
    for hook in (b'id="token-note"', b'id="token-expires"', b'id="token-scopes"', b'id="token-request"',
                 b'id="api-tokens-empty"', b'id="oauth-clients-empty"'):
        check(hook in body, f"hook {hook.decode()}")


def test_create_and_use(hub):
    c = login(hub, "ann")
    status, headers, body, tid, token = create(c, "ci token", "3600", "read:users!user read:servers!user")
    check(status == 200 and tid and token and len(token) >= 32, f"created {tid} (status {status})")
    check("location" not in headers and headers.get("cache-control") == "no-store",
          "the token page answers 200 itself, no-store, no redirect")
    check(b'id="token-result"' in body and b"shown only this once" in body, "the token is shown once")
    status, user, _ = api(c, "GET", "/user", token)
    scopes = set(user.get("scopes", [])) if user else set()
    check(status == 200 and user["name"] == "ann", "the token authenticates as ann")
    check({"read:users!user=ann", "read:servers!server=ann/"} <= scopes or
          {"read:users!user=ann", "read:servers!user=ann"} <= scopes, f"GET /api/user shows its scopes: {scopes}")
    check(not any(s.startswith(("tokens", "servers!", "admin")) for s in scopes),
          "...and only those (plus identify scopes)")
    status, _, _ = api(c, "POST", "/users/ann/tokens", token, json={})
    check(status == 403, "limited to its scopes: it cannot make tokens (403)")
    status, _, _ = api(c, "POST", "/users/ann/server", token)
    check(status == 403, "...nor start servers (403)")
    # A second token with the page's defaults: ann's own scopes, never expires.
    status, _, body, tid2, full = create(c)
    check(status == 200 and full, "empty scopes and expiry: a token with ann's own scopes")
    status, model, _ = api(c, "GET", f"/users/ann/tokens/{tid}", full)
    check(status == 200 and model["note"] == "ci token", f"the API model has the note ({status})")
    created = model and unix_time(model["created"])
    expires = model and model["expires_at"] and unix_time(model["expires_at"])
    check(expires and abs((expires - created) - 3600) < 5, "expires_at is created + 1 hour")
    check(model and set(model["scopes"]) >= {"read:users!user=ann"} and "tokens!user=ann" not in model["scopes"],
          f"the model's scopes are the requested ones: {model and model['scopes']}")
    status, model2, _ = api(c, "GET", f"/users/ann/tokens/{tid2}", full)
    check(status == 200 and model2["expires_at"] is None and model2["note"] == "Requested via token page",
          f"the default token never expires and says where it came from: {model2}")
    check("tokens!user=ann" in (model2 or {}).get("scopes", []), "...and holds ann's scopes")
    ids = row_ids(c)
    check(tid in ids and tid2 in ids, f"both tokens are listed ({ids})")
    _, _, page = c.get("/hub/token")
    row = re.search(rf'<tr data-token-id="{tid}".*?</tr>'.encode(), page)
    check(row and b"ci token" in row.group(0) and b'class="scopes" data-scopes="read:users!user read:servers!user"'
          in row.group(0) and b'<td class="expires"><time datetime=' in row.group(0)
          and f'id="revoke-{tid}"'.encode() in row.group(0),
          "the row shows note, scopes, expiry and its Revoke button")
    check(token.encode() not in page, "the list never shows a token again")


def unix_time(stamp):
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_expired(hub):
    c = login(hub, "ann")
    # The select offers hours and more; the form takes any number of seconds
    # (as the API's expires_in), so expiry is testable without waiting an hour.
    status, _, _, tid, token = create(c, "short", "1")
    check(status == 200 and token, "a token expiring in 1 s")
    status, _, _ = api(c, "GET", "/user", token)
    check(status == 200, "it works at first")
    time.sleep(2.2)
    status, _, _ = api(c, "GET", "/user", token)
    check(status == 403, f"after expiry it is refused ({status})")
    check(tid not in row_ids(c), "an expired token is no longer listed")
    for bad in ("0", "-5", "soon", "1e99"):
        status, _, body, tid, _ = create(c, "bad expiry", bad)
        check(status == 400 and not tid and "No token was created" in error_of(body),
              f"expires_in={bad!r}: 400, no token ({error_of(body)!r})")


def test_revoke(hub):
    c = login(hub, "ann")
    _, _, _, tid, token = create(c, "to revoke")
    check(tid in row_ids(c), "listed before revocation")
    status, headers, _ = c.post("/hub/token", form={"action": "revoke", "token_id": tid})
    check(status == 303 and headers.get("location") == "/hub/token?status=revoked",
          f"revoke -> 303 back to the page ({status} {headers.get('location')})")
    status, _, body = c.get(headers.get("location", "/hub/token"))
    check(b'id="token-status"' in body and b'data-status="revoked"' in body, "a status line says so")
    check(tid not in row_ids(c), "the row is gone")
    status, _, _ = api(c, "GET", "/user", token)
    check(status == 403, f"the revoked token fails with 403 ({status})")
    status, _, body = c.post("/hub/token", form={"action": "revoke", "token_id": tid})
    check(status == 404 and "no such token" in error_of(body), "revoking it again: 404")


def test_other_users_token(hub):
    bob = login(hub, "bob")
    _, _, _, bob_id, bob_token = create(bob, "bob's")
    ann = login(hub, "ann")
    before = row_ids(ann)
    for raw in (bob_id, "a999999", "5", "x"):
        status, _, body = ann.post("/hub/token", form={"action": "revoke", "token_id": raw})
        check(status == 404, f"ann revoking {raw!r}: 404 ({status})")
    status, _, _ = api(bob, "GET", "/user", bob_token)
    check(status == 200 and bob_id in row_ids(bob), "bob's token still works and is listed")
    check(bob_id not in before and row_ids(ann) == before, "ann never sees bob's token; her list is unchanged")


def test_xsrf(hub):
    ann = login(hub, "ann")
    bob = login(hub, "bob")
    before = row_ids(ann)
    form = {"action": "create", "note": "forged", "expires_in": "", "scopes": ""}
    status, _, body = ann.post("/hub/token", form=form, xsrf=False)
    check(status == 403 and b'id="token-xsrf"' in body and b"token-value" not in body,
          f"create without _xsrf: 403 ({status})")
    status, _, body = ann.post("/hub/token", form=dict(form, _xsrf="2|deadbeef|" + "0" * 40))
    check(status == 403, "create with a made-up _xsrf: 403")
    status, _, body = ann.post("/hub/token", form=dict(form, _xsrf=bob.xsrf_token()))
    check(status == 403, "create with bob's _xsrf in ann's browser: 403")
    check(row_ids(ann) == before, "no token was created")
    _, _, _, tid, token = create(ann, "keep me")
    status, _, _ = ann.post("/hub/token", form={"action": "revoke", "token_id": tid}, xsrf=False)
    check(status == 403, "revoke without _xsrf: 403")
    status, _, _ = api(ann, "GET", "/user", token)
    check(status == 200 and tid in row_ids(ann), "...and the token still works")


def test_bad_scopes(hub):
    ann = login(hub, "ann")
    before = row_ids(ann)
    cases = [("frobnicate", "unknown scope frobnicate"),
             ("read:users!nope=x", "unknown filter !nope"),
             ("admin:users", "Not assigning requested scopes"),
             ("read:users!user=bob", "Not assigning requested scopes"),
             ("<b>x</b>", "unknown scope <b>x</b>")]
    for scopes, expected in cases:
        status, _, body, tid, _ = create(ann, "scoped", "", scopes)
        err = error_of(body)
        check(status == 400 and not tid and "No token was created" in err and expected in err,
              f"scopes {scopes!r}: 400 {err!r}")
        if "<b>" in scopes:
            check(b"<b>x</b>" not in body, "a hostile scope is escaped")
    check(row_ids(ann) == before, "no token was created")
    status, _, body, tid, _ = create(ann, "", "", "frobnicate")
    check(b'value="frobnicate"' in body, "the form keeps what was typed")


def test_hostile_notes(hub):
    ann = login(hub, "ann")
    evil = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>"
    status, _, body, tid, _ = create(ann, evil)
    check(status == 200 and tid, "an HTML note is accepted")
    _, _, page = ann.get("/hub/token")
    check(b"<script>alert" not in page and b"<img src=x" not in page
          and html.escape(evil, quote=True).replace("&#x27;", "&#39;").encode() in page,
          "...and shown escaped")
    before = row_ids(ann)
    for note, expected in (("x" * 1025, "longer than 1024"), ("a\x01b", "control characters"),
                           ("a\x00b", "control characters")):
        status, _, body, tid, _ = create(ann, note)
        err = error_of(body)
        check(status == 400 and not tid and expected in err, f"note {note[:12]!r}...: 400 {err!r}")
    # Bytes that are not UTF-8, as a raw form body.
    status, _, body = ann.post("/hub/token", body="action=create&note=%FF%FEbad&expires_in=&scopes=&_xsrf="
                               + urllib.parse.quote(ann.xsrf_token()),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(status == 400 and "not valid UTF-8" in error_of(body), f"a note that is not UTF-8: 400 ({status})")
    status, _, body, tid, _ = create(ann, "x" * 200_000)
    check(status == 400 and not tid and len(body) < 40_000, "a 200 kB note: 400, not echoed in full")
    check(row_ids(ann) == before, "no token was created for any of them")


def test_oauth_clients(hub):
    """Authorized applications: an OAuth client's tokens, grouped, revoked together."""
    ann = login(hub, "ann")
    db = hub.path("jupyterhub.sqlite")
    hub.stop()
    con = sqlite3.connect(db)
    with con:
        (uid,) = con.execute("SELECT id FROM users WHERE name = 'ann'").fetchone()
        con.execute("INSERT INTO oauth_clients (identifier, description) VALUES "
                    "('jupyterhub-user-ann', 'Server at /user/ann/')")
        for i, last in enumerate((None, "2026-01-02 03:04:05.000000")):
            con.execute("INSERT INTO api_tokens (user_id, hashed, prefix, client_id, created, last_activity, "
                        "scopes) VALUES (?, ?, 'zzzz', 'jupyterhub-user-ann', '2026-01-01 00:00:00.000000', ?, "
                        "'[\"access:servers!user\"]')", (uid, f"sha512:1:salt{i}:{'0' * 128}", last))
    con.close()
    hub.start()
    ann = login(hub, "ann")
    status, _, body = ann.get("/hub/token")
    row = re.search(rb'<tr data-client-id="jupyterhub-user-ann" data-token-id="(a\d+)" data-token-count="2">'
                    rb'.*?</tr>', body)
    check(status == 200 and row and b"Server at /user/ann/" in row.group(0), "the application is listed once")
    check(row and b'<td class="last-used"><time datetime="2026-01-02T03:04:05Z">' in row.group(0),
          "...with its last use")
    tid = row.group(1).decode() if row else "a0"
    check(tid not in row_ids(ann), "its tokens are not in the API token list")
    status, headers, _ = ann.post("/hub/token", form={"action": "revoke", "token_id": tid})
    check(status == 303, "revoke the application")
    _, _, body = ann.get("/hub/token")
    check(b'id="oauth-clients-empty"' in body, "it is gone")
    con = sqlite3.connect(db)
    (left,) = con.execute("SELECT count(*) FROM api_tokens WHERE client_id = 'jupyterhub-user-ann'").fetchone()
    con.close()
    check(left == 0, f"all of its tokens were revoked ({left} left)")


def test_secrets_stay_out_of_logs(hub):
    time.sleep(0.3)
    log = hub.log_text()
    with open(hub.path("audit.log"), encoding="utf-8", errors="replace") as f:
        audit = f.read()
    check(len(issued) >= 5, f"{len(issued)} tokens were issued")
    leaked = [t[:6] for t in issued if t in log or t in audit]
    check(not leaked, f"no token value in hubd's log or the audit log ({leaked})")
    lines = audit.splitlines()

    def has(*parts):
        return any(all(p in line for p in parts) for line in lines)

    check(has("event=token.create", 'user="ann"', 'by="ann"', 'via="token-page"', 'note="ci token"',
              'scopes="read:users!user read:servers!user"', 'expires_at="20', 'token="a', 'source="127.0.0.1"'),
          "token.create: owner, id, note, scopes, expiry, source")
    check(has("event=token.create", 'note="Requested via token page"', 'scopes="inherit"', 'expires_at="never"'),
          "token.create of a default token")
    check(has("event=token.revoke", 'user="ann"', 'via="token-page"', 'token="a'), "token.revoke")
    check(has("event=token.revoke", 'client="jupyterhub-user-ann"', 'count="2"'), "an application's revocation")
    check(not has("event=token.revoke", 'user="bob"'), "bob's token was never revoked")


def run():
    hubtest.run_with_config(CONFIG, [
        test_page, test_create_and_use, test_expired, test_revoke, test_other_users_token, test_xsrf,
        test_bad_scopes, test_hostile_notes, test_oauth_clients, test_secrets_stay_out_of_logs])


if __name__ == "__main__":
    run()
