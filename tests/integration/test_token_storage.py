#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Acceptance: "No issued token appears in the database file".

Runs hubd with DummyAuthenticator, a service with a configured api_token and
JupyterHub.api_tokens for alice, issues about 30 tokens through the REST API
(by the service, by users for themselves, with expires_in, with scopes, and
through {"auth": {username, password}}), logs in through the form, and then
scans the raw bytes of every file in hubd's working directory -
jupyterhub.sqlite, -wal, -shm, the cookie secret, the log - for every token,
as text and as hex, base64 (all three alignments, both alphabets), raw bytes
and UTF-16. It scans three times: while hubd runs, after SIGTERM, and after a
restart, more tokens and SIGKILL (a WAL that was never checkpointed).

Configured tokens may appear in config.py (the admin wrote them there) and
nowhere else; the cookie secret may appear only in its own file. The scanner
proves itself first: it must find a username and a note it knows are stored,
and a token it planted itself in every encoding. Also: jupyterhub.sqlite and
jupyterhub_cookie_secret are mode 0600. Root not needed.
"""
import base64
import binascii
import os
import secrets
import shutil
import sqlite3
import stat
import tempfile

import hubtest
from hubtest import check

PASSWORD = "pw-" + secrets.token_hex(4)
SVC_TOKEN = secrets.token_hex(32)
ALICE_TOKEN = "alice-" + secrets.token_urlsafe(24)
CANARY_USER = "canary" + secrets.token_hex(6)
CANARY_NOTE = "note-canary-" + secrets.token_hex(8)
CONFIG = f"""
c = get_config()
c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = '{PASSWORD}'
c.JupyterHub.services = [{{'name': 'svc', 'api_token': '{SVC_TOKEN}'}}]
c.JupyterHub.load_roles = [{{'name': 'admin', 'services': ['svc']}}]
c.JupyterHub.api_tokens = {{'{ALICE_TOKEN}': 'alice'}}
"""
CONFIGURED = {"service svc api_token": SVC_TOKEN, "JupyterHub.api_tokens alice": ALICE_TOKEN}

HUB = None
ISSUED = {}  # label -> token string
COOKIES = {}  # label -> secret cookie material


# ---------------------------------------------------------------- the scanner

def _b64_variants(data):
    """Base64 text that appears wherever `data` is base64-encoded inside a longer stream, at any alignment."""
    out = []
    for shift in range(3):
        part = data[shift:]
        part = part[:len(part) - len(part) % 3]
        if len(part) >= 12:
            enc = base64.b64encode(part)
            out += [("base64+%d" % shift, enc), ("base64url+%d" % shift, base64.urlsafe_b64encode(part))]
    return out


def encodings(secret):
    """(name, bytes) forms in which a secret string could sit in a file."""
    text = secret.encode()
    forms = [("text", text), ("hex", binascii.hexlify(text)), ("HEX", binascii.hexlify(text).upper()),
             ("utf-16-le", secret.encode("utf-16-le")), ("utf-16-be", secret.encode("utf-16-be"))]
    forms += _b64_variants(text)
    if secret.upper() != secret:
        forms.append(("upper-case text", secret.upper().encode()))
    try:
        rawbytes = bytes.fromhex(secret)
    except ValueError:
        rawbytes = None
    if rawbytes and len(rawbytes) >= 12:
        forms.append(("raw bytes", rawbytes))
        forms += [("raw " + n, v) for n, v in _b64_variants(rawbytes)]
    return forms


def files_in(directory):
    for dirpath, _dirs, names in os.walk(directory):
        for name in names:
            yield os.path.join(dirpath, name)


def scan(directory, secrets_by_label, allowed=None):
    """Hits as (relative file, secret label, encoding). allowed: {file name: set of labels allowed there}."""
    allowed = allowed or {}
    needles = [(label, enc, data) for label, secret in secrets_by_label.items() for enc, data in encodings(secret)]
    hits = []
    for path in files_in(directory):
        rel = os.path.relpath(path, directory)
        with open(path, "rb") as f:
            content = f.read()
        for label, enc, data in needles:
            if label in allowed.get(rel, ()):
                continue
            if data in content:
                hits.append((rel, label, enc))
    return hits


def all_secrets():
    s = {f"issued {k}": v for k, v in ISSUED.items()}
    s.update(CONFIGURED)
    s.update(COOKIES)
    return s


def scan_hub(when):
    allowed = {"config.py": set(CONFIGURED), "jupyterhub_cookie_secret": {"cookie secret"}}
    names = sorted(os.path.relpath(p, HUB.dir) for p in files_in(HUB.dir))
    check("jupyterhub.sqlite" in names, f"{when}: files to scan: {names}")
    hits = scan(HUB.dir, all_secrets(), allowed)
    check(not hits, f"{when}: no token, cookie or cookie secret in any file of the working directory "
                    f"({len(all_secrets())} secrets x their encodings; hits: {hits[:6]})")
    db_files = [n for n in names if n.startswith("jupyterhub.sqlite")]
    found = [n for n in db_files if CANARY_USER.encode() in open(HUB.path(n), "rb").read()]
    check(found, f"{when}: the scanner does find the stored username {CANARY_USER} (in {found} of {db_files})")
    found = [n for n in db_files if CANARY_NOTE.encode() in open(HUB.path(n), "rb").read()]
    check(found, f"{when}: the scanner does find the stored token note {CANARY_NOTE} (in {found})")
    return names


def sqlite_values_check(when):
    """Opens a copy of the database (with its WAL) and looks at every value of every row."""
    tmp = tempfile.mkdtemp(prefix="hubtest-dbcopy-")
    try:
        for n in os.listdir(HUB.dir):
            if n.startswith("jupyterhub.sqlite"):
                shutil.copy2(HUB.path(n), os.path.join(tmp, n))
        db = sqlite3.connect(os.path.join(tmp, "jupyterhub.sqlite"))
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            values = []
            for t in tables:
                for row in db.execute(f'SELECT * FROM "{t}"'):
                    values += [v if isinstance(v, (str, bytes)) else str(v) for v in row if v is not None]
            hashed = [r[0] for r in db.execute("SELECT hashed FROM api_tokens")]
        finally:
            db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    blob = "\n".join(v if isinstance(v, str) else v.decode("latin-1") for v in values)
    check(CANARY_USER in blob, f"{when}: the SQL dump holds the canary username (the dump works)")
    leaked = [label for label, secret in all_secrets().items() if secret in blob or secret.upper() in blob]
    check(not leaked, f"{when}: no token or cookie in any column of any table ({leaked})")
    check(hashed and all(h.startswith("sha512:") for h in hashed),
          f"{when}: every api_tokens.hashed value is a sha512 hash ({len(hashed)} rows)")
    check(len(hashed) >= len(ISSUED) - REVOKED[0], f"{when}: {len(hashed)} token rows for the live issued tokens")


REVOKED = [0]


# ---------------------------------------------------------------- tests

def api(method, path, token=SVC_TOKEN, **kw):
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"token {token}"
    return HUB.client().json(method, "/hub/api" + path, headers=headers, **kw)


def issue(label, user, token=SVC_TOKEN, **body):
    status, model, _ = api("POST", f"/users/{user}/tokens", token=token, json=body)
    ok = check(status == 201 and model and model.get("token"), f"issue token {label} for {user} -> 201 ({status})")
    if ok:
        ISSUED[label] = model["token"]
    return model if ok else None


def test_scanner_self_check():
    tmp = tempfile.mkdtemp(prefix="hubtest-scan-")
    try:
        planted = secrets.token_hex(16)
        forms = encodings(planted)
        for i, (name, data) in enumerate(forms):
            with open(os.path.join(tmp, f"f{i}"), "wb") as f:
                f.write(os.urandom(7) + data + os.urandom(5))
        # A base64 blob with the token at an odd offset inside a longer value.
        with open(os.path.join(tmp, "blob"), "wb") as f:
            f.write(base64.b64encode(b"xy" + planted.encode() + b"z"))
        with open(os.path.join(tmp, "rawblob"), "wb") as f:
            f.write(base64.b64encode(b"q" + bytes.fromhex(planted) + b"rs"))
        hits = scan(tmp, {"planted": planted})
        files_hit = {h[0] for h in hits}
        check(len(files_hit) == len(forms) + 2,
              f"the scanner finds a planted token in all {len(forms) + 2} encodings/offsets ({len(files_hit)})")
        check(not scan(tmp, {"other": secrets.token_hex(16)}), "...and no false hit for an unrelated token")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_issue_tokens():
    status, _, _ = api("POST", "/users", json={"usernames": [CANARY_USER, "bob", "carol"]})
    check(status == 201, f"create {CANARY_USER}, bob, carol -> 201 ({status})")
    status, body, _ = api("GET", "/user", token=ALICE_TOKEN)
    check(status == 200 and body and body.get("name") == "alice", f"alice's configured token works ({status})")
    status, body, _ = api("GET", "/user")
    check(status == 200 and body and body.get("name") == "svc", f"the service's configured token works ({status})")

    issue("canary-note", CANARY_USER, note=CANARY_NOTE)
    for i in range(8):
        issue(f"svc-bob-{i}", "bob", note=f"bob laptop {i}")
    for i in range(4):
        issue(f"svc-bob-expiring-{i}", "bob", expires_in=3600 * (i + 1), note="expiring")
    for i in range(3):
        issue(f"svc-bob-scoped-{i}", "bob", scopes=["read:users!user=bob"], expires_in=600)
    issue("svc-bob-roles", "bob", roles=["user"])
    for i in range(4):
        issue(f"alice-self-{i}", "alice", token=ALICE_TOKEN, note=f"alice {i}")
    issue("alice-self-scoped", "alice", token=ALICE_TOKEN, scopes=["read:users:name!user=alice"])
    for i in range(5):
        status, model, _ = api("POST", "/users/carol/tokens", token=None,
                               json={"auth": {"username": "carol", "password": PASSWORD}, "note": f"cli {i}",
                                     **({"expires_in": 86400} if i % 2 else {})})
        if check(status == 201 and model and model.get("token"), f"token {i} for carol via {{auth}} -> 201 ({status})"):
            ISSUED[f"carol-auth-{i}"] = model["token"]
    bob_token = ISSUED.get("svc-bob-0")
    for i in range(3):
        issue(f"bob-self-{i}", "bob", token=bob_token, note=f"bob self {i}")
    check(len(ISSUED) >= 30, f"{len(ISSUED)} tokens issued")
    working = [k for k, t in ISSUED.items() if api("GET", "/user", token=t)[0] == 200]
    check(len(working) == len(ISSUED), f"every issued token authenticates ({len(working)}/{len(ISSUED)})")
    # Revoked tokens must not linger in plain text either.
    for label in ("svc-bob-7", "alice-self-3"):
        user = "bob" if label.startswith("svc-bob") else "alice"
        status, lst, _ = api("GET", f"/users/{user}/tokens")
        tokens = lst.get("api_tokens", []) if isinstance(lst, dict) else []
        # The listing never shows token values: find the id by its note.
        note = {"svc-bob-7": "bob laptop 7", "alice-self-3": "alice 3"}[label]
        tid = next((t["id"] for t in tokens if t.get("note") == note), None)
        status, _, _ = api("DELETE", f"/users/{user}/tokens/{tid}")
        if check(status == 204, f"revoke {label} ({tid}) -> 204 ({status})"):
            REVOKED[0] += 1


def test_form_login():
    c = HUB.client()
    status, _, _ = c.post("/hub/login", form={"username": "bob", "password": PASSWORD})
    check(status == 302 and "jupyterhub-hub-login" in c.cookies, f"bob logs in with the form -> 302 + cookie ({status})")
    value = c.cookies.get("jupyterhub-hub-login", ("", ""))[0].strip('"')
    if value:
        COOKIES["login cookie"] = value
        COOKIES["login cookie signature"] = value.rsplit("|", 1)[-1]
    status, body, _ = c.json("GET", "/hub/api/user", headers={"Referer": HUB.url + "/hub/home"})
    check(status == 200 and body and body.get("name") == "bob", f"the cookie authenticates ({status})")
    with open(HUB.path("jupyterhub_cookie_secret")) as f:
        COOKIES["cookie secret"] = f.read().strip()
    check(len(COOKIES["cookie secret"]) == 64, "the cookie secret file holds 64 hex characters")


def test_modes():
    for name in ("jupyterhub.sqlite", "jupyterhub_cookie_secret"):
        mode = stat.S_IMODE(os.stat(HUB.path(name)).st_mode)
        check(mode == 0o600, f"{name} has mode 0600 (got {mode:04o})")
    for name in ("jupyterhub.sqlite-wal", "jupyterhub.sqlite-shm"):
        if os.path.exists(HUB.path(name)):
            mode = stat.S_IMODE(os.stat(HUB.path(name)).st_mode)
            check(mode & 0o077 == 0, f"{name} is not readable by group or others (mode {mode:04o})")


def test_scan_while_running():
    check(HUB.running(), "hubd is running during the first scan")
    names = scan_hub("while hubd runs")
    check("jupyterhub.sqlite-wal" in names, "the WAL exists while hubd runs (so it was scanned)")


def test_scan_after_sigterm():
    rc = HUB.stop()
    check(rc == 0, f"hubd exits 0 on SIGTERM (got {rc})")
    scan_hub("after SIGTERM")
    sqlite_values_check("after SIGTERM")


def test_scan_after_sigkill():
    HUB.start()
    token = ISSUED.get("svc-bob-1")
    status, body, _ = api("GET", "/user", token=token)
    check(status == 200 and body and body.get("name") == "bob", f"an issued token works after a restart ({status})")
    status, _, _ = api("GET", "/user", token=ISSUED.get("svc-bob-7"))
    check(status == 403, f"a revoked token stays revoked after a restart ({status})")
    for i in range(3):
        issue(f"after-restart-{i}", "carol", note=f"late {i}")
    HUB.kill9()
    scan_hub("after SIGKILL")
    sqlite_values_check("after SIGKILL")
    test_modes()


def run_all():
    global HUB
    hubtest.require_hubd()
    with hubtest.Hub(config=CONFIG) as hub:
        HUB = hub
        hubtest.main([test_scanner_self_check, test_issue_tokens, test_form_login, test_modes,
                      test_scan_while_running, test_scan_after_sigterm, test_scan_after_sigkill])


if __name__ == "__main__":
    run_all()
