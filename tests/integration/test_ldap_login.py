#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""LDAPAuthenticator against a real OpenLDAP server.

Starts Debian's slapd on loopback with its own slapd.conf and mdb database in
a temporary directory (never the system service), with a small directory:

  ou=people   uid=alice (employeeType hub), uid=bob, uid=carol, uid=frank
  ou=staff    cn=Dave\\, Jr. (uid dave), cn=* (uid mallory), cn=erin,
              cn=frank-old (a second uid frank), cn=)(uid\\=* (uid paren),
              cn=admin)(|(uid\\=* (uid inject)
  ou=groups   cn=jupyter (groupOfNames, member: alice, Dave)
              cn=posix (posixGroup, memberUid: carol)
  cn=searcher the lookup_dn search account

and logs in through a real hubd: bind templates, search-then-bind, group
membership, search_filter and group_search_filter, the injection boundary
(crafted names through the login form, through the token API's {"auth": ...},
which passes the name unnormalised, and from the directory into search_filter),
timeouts, and StartTLS / ldaps with certificate verification. slapd's "stats"
log shows what reached the directory. Root is not needed.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import hubtest
from hubtest import check

SLAPD = "/usr/sbin/slapd"
SUFFIX = "dc=example,dc=org"
PASSWORDS = {"alice": "alice-Pw-1", "bob": "bob-Pw-2", "carol": "carol-Pw-3", "dave": "dave-Pw-4",
             "mallory": "mallory-Pw-5", "erin": "erin-Pw-6", "searcher": "search-Pw-7", "frank": "frank-Pw-8",
             "paren": "paren-Pw-9", "inject": "inject-Pw-10"}
NEUTRAL = b"Invalid username or password"


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


class Slapd:
    """A private slapd: ldap:// and ldaps:// on free loopback ports, stats log in `log`."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hubd-slapd-")
        os.chmod(self.dir, 0o755)  # the hub account reads ca.pem here; the key stays 0600
        self.port, self.tls_port = hubtest.free_port(), hubtest.free_port()
        self.proc = None
        self.log = os.path.join(self.dir, "slapd.log")

    def path(self, name):
        return os.path.join(self.dir, name)

    def make_certs(self):
        """A private CA and a server certificate for 127.0.0.1 and localhost."""
        d = self.dir
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=hubd test LDAP CA", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"])
        run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr"])
        with open(f"{d}/ext.cnf", "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        run(["openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", f"{d}/ext.cnf", "-out", f"{d}/server.pem"])
        os.chmod(f"{d}/ca.pem", 0o644)

    def hashed(self, password):
        return run(["slappasswd", "-h", "{SSHA}", "-s", password]).stdout.strip()

    def write_config(self):
        d = self.dir
        os.mkdir(f"{d}/db")
        with open(f"{d}/slapd.conf", "w") as f:
            f.write(f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
database mdb
suffix "{SUFFIX}"
rootdn "cn=admin,{SUFFIX}"
directory {d}/db
maxsize 10485760
access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by * read
""")
        p = {k: self.hashed(v) for k, v in PASSWORDS.items()}
        person = ("objectClass: inetOrgPerson\nsn: Test\n")
        ldif = f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=staff,{SUFFIX}
objectClass: organizationalUnit
ou: staff

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: cn=searcher,{SUFFIX}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: searcher
userPassword: {p['searcher']}

"""
        for name in ("alice", "bob", "carol", "frank"):
            extra = "employeeType: hub\n" if name == "alice" else ""  # what search_filter asks for
            ldif += (f"dn: uid={name},ou=people,{SUFFIX}\n{person}{extra}uid: {name}\ncn: {name}\n"
                     f"userPassword: {p[name]}\n\n")
        # A stale copy of frank: search_filter '(uid={username})' finds two entries.
        ldif += (f"dn: cn=frank-old,ou=staff,{SUFFIX}\n{person}uid: frank\ncn: frank-old\n"
                 f"userPassword: {p['frank']}\n\n")
        # Filter syntax as cn values: through lookup_dn_user_dn_attribute they
        # become search_filter's {username}.
        for uid, cn in (("paren", ")(uid=*"), ("inject", "admin)(|(uid=*")):
            dn_cn = cn.replace("=", "\\=")
            ldif += f"dn: cn={dn_cn},ou=staff,{SUFFIX}\n{person}uid: {uid}\ncn: {cn}\nuserPassword: {p[uid]}\n\n"
        ldif += (f"dn: cn=Dave\\, Jr.,ou=staff,{SUFFIX}\n{person}uid: dave\ncn: Dave, Jr.\n"
                 f"userPassword: {p['dave']}\n\n")
        # mallory chose "*" as her cn: as memberUid it must stay a literal star.
        ldif += f"dn: cn=*,ou=staff,{SUFFIX}\n{person}uid: mallory\ncn: *\nuserPassword: {p['mallory']}\n\n"
        ldif += f"dn: cn=erin,ou=staff,{SUFFIX}\n{person}uid: erin\ncn: erin\nuserPassword: {p['erin']}\n\n"
        ldif += f"""dn: cn=jupyter,ou=groups,{SUFFIX}
objectClass: groupOfNames
cn: jupyter
member: uid=alice,ou=people,{SUFFIX}
member: cn=Dave\\, Jr.,ou=staff,{SUFFIX}

dn: cn=posix,ou=groups,{SUFFIX}
objectClass: posixGroup
cn: posix
gidNumber: 5000
memberUid: carol
"""
        with open(f"{d}/data.ldif", "w") as f:
            f.write(ldif)
        run([os.path.join(os.path.dirname(SLAPD), "slapadd"), "-f", f"{d}/slapd.conf", "-l", f"{d}/data.ldif"])

    def start(self):
        self.make_certs()
        self.write_config()
        urls = (f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/ "
                f"ldap://127.0.0.2:{self.port}/")
        self._log = open(self.log, "ab")
        # -d stats: stay in the foreground and log every connection, bind and search.
        self.proc = subprocess.Popen([SLAPD, "-f", self.path("slapd.conf"), "-h", urls, "-d", "stats"],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

        def answers():
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited:\n{self.log_text()[-3000:]}")
            r = subprocess.run(["ldapwhoami", "-x", "-H", f"ldap://127.0.0.1:{self.port}", "-D",
                                f"cn=searcher,{SUFFIX}", "-w", PASSWORDS["searcher"]],
                               capture_output=True, text=True)
            return r.returncode == 0
        if not hubtest.wait_for(answers, timeout=30, step=0.2):
            raise RuntimeError(f"slapd did not answer:\n{self.log_text()[-3000:]}")
        return self

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def mark(self):
        return len(self.log_text())

    def since(self, mark):
        time.sleep(0.3)  # slapd writes its result lines right after answering
        return self.log_text()[mark:]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log.close()
        if not os.environ.get("HUBTEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def config(slapd, **traits):
    traits.setdefault("server_address", "127.0.0.1")
    traits.setdefault("server_port", slapd.port)
    traits.setdefault("tls_strategy", "insecure")
    lines = ["c.JupyterHub.authenticator_class = 'ldapauthenticator.LDAPAuthenticator'",
             "c.JupyterHub.throttle_logins = False"]
    lines += [f"c.LDAPAuthenticator.{k} = {v!r}" for k, v in traits.items()]
    return "\n".join(lines) + "\n"


TEMPLATES = [f"uid={{username}},ou=people,{SUFFIX}", f"cn={{username}},ou=staff,{SUFFIX}"]
SEARCH = dict(lookup_dn=True, lookup_dn_search_user=f"cn=searcher,{SUFFIX}",
              lookup_dn_search_password=PASSWORDS["searcher"], user_search_base=SUFFIX, user_attribute="uid",
              lookup_dn_user_dn_attribute="cn", bind_dn_template=TEMPLATES, use_lookup_dn_username=False,
              allowed_groups=[f"cn=jupyter,ou=groups,{SUFFIX}", f"cn=posix,ou=groups,{SUFFIX}"])


def login(hub, name, password):
    """(logged in?, body) through the login form."""
    c = hub.client()
    status, headers, body = c.post("/hub/login", form={"username": name, "password": password})
    ok = status == 302 and any(v.startswith("jupyterhub-hub-login=") for v in c.set_cookies)
    return ok, body


def api_token(hub, url_name, name, password):
    """Status of POST /hub/api/users/<url_name>/tokens with {"auth": ...} (the raw name reaches the authenticator)."""
    status, _, _ = hub.client().json("POST", f"/hub/api/users/{url_name}/tokens",
                                     json={"auth": {"username": name, "password": password}}, xsrf=False)
    return status


def audited_hub(cfg):
    """A hub whose audit log (login.failure with the reason) is its audit.log."""
    hub = hubtest.Hub(cfg)
    hub.setup()
    hub.args.append(f"--JupyterHub.audit_log={hub.path('audit.log')}")
    return hub


def test_bind_templates(slapd):
    with hubtest.Hub(config(slapd, bind_dn_template=TEMPLATES)) as hub:
        mark = slapd.mark()
        ok, _ = login(hub, "alice", PASSWORDS["alice"])
        check(ok, "alice logs in with the first bind_dn_template")
        check(f'BIND dn="uid=alice,ou=people,{SUFFIX}"' in slapd.since(mark), "slapd saw alice's bind")
        ok, _ = login(hub, "erin", PASSWORDS["erin"])
        check(ok, "erin logs in with the second bind_dn_template")
        ok, body = login(hub, "alice", PASSWORDS["bob"])
        check(not ok and NEUTRAL in body, "a wrong password is refused with the neutral message")
        ok, body = login(hub, "nobody", "x-Pw-0")
        check(not ok and NEUTRAL in body, "an unknown user is refused")
        mark = slapd.mark()
        for blank in ("", "   "):
            ok, body = login(hub, "alice", blank)
            check(not ok and NEUTRAL in body, f"password {blank!r} is refused")
        check(api_token(hub, "alice", "alice", "") not in (200, 201), "a blank password through the token API is refused")
        check("BIND" not in slapd.since(mark), "blank passwords never reached slapd (no anonymous bind)")
        check("blank password refused" in hub.log_text(), "the log names the blank password as the cause")
        check("bind refused for every DN tried" in hub.log_text(), "the log names the failed bind")


def test_search_then_bind_and_groups(slapd):
    with hubtest.Hub(config(slapd, **SEARCH)) as hub:
        mark = slapd.mark()
        ok, _ = login(hub, "alice", PASSWORDS["alice"])
        check(ok, "alice (member of the groupOfNames) logs in after a lookup")
        seen = slapd.since(mark)
        check(f'BIND dn="cn=searcher,{SUFFIX}"' in seen and 'filter="(uid=alice)"' in seen,
              "the lookup bound as lookup_dn_search_user and searched (uid=alice)")
        ok, _ = login(hub, "carol", PASSWORDS["carol"])
        check(ok, "carol (memberUid of the posixGroup) logs in")
        ok, _ = login(hub, "dave", PASSWORDS["dave"])
        check(ok, "dave logs in: his cn 'Dave, Jr.' is DN-escaped into bind_dn_template")
        ok, body = login(hub, "bob", PASSWORDS["bob"])
        check(not ok and NEUTRAL in body, "bob (in no allowed group) is refused")
        check("not a member of any LDAPAuthenticator.allowed_groups" in hub.log_text(), "the log says why")
        mark = slapd.mark()
        ok, _ = login(hub, "mallory", PASSWORDS["mallory"])
        seen = slapd.since(mark)
        check(not ok, "mallory, whose cn is '*', is refused: memberUid=* would have let her in")
        check("(memberUid=\\2A)" in seen or "(memberUid=\\2a)" in seen,
              f"slapd received the star escaped: {[l for l in seen.splitlines() if 'memberUid' in l][:2]}")
        check("(memberUid=*)" not in seen, "no presence filter reached slapd")


def test_crafted_usernames(slapd):
    crafted = ["*", ")(uid=*", "admin)(|(uid=*", "al*", "\\", "a\\2a", "alice\x00", "alice\x00*",
               f"alice,ou=people,{SUFFIX}", "bob,ou=people"]
    # The default valid_username_regex, and hubd's own name rules on the form,
    # stop every one of them before LDAP.
    with audited_hub(config(slapd, **SEARCH)) as hub:
        mark = slapd.mark()
        for name in crafted:
            ok, body = login(hub, name, PASSWORDS["alice"])
            check(not ok and NEUTRAL in body, f"login form: {name!r} is refused")
            check(api_token(hub, "alice", name, PASSWORDS["alice"]) not in (200, 201),
                  f"token API: {name!r} is refused")
        seen = slapd.since(mark)
        check("SRCH" not in seen and "BIND" not in seen, "none of them reached slapd")
        check(any("valid_username_regex" in line for line in hub.audit_lines()),
              "the audit log names valid_username_regex for the token API's attempts")
    # With a regex that lets everything through, the escaping is the boundary:
    # the names reach slapd as literals. "al*" would otherwise find alice, and
    # with use_lookup_dn_username (cn 'alice') get a token for her.
    loose = dict(SEARCH, valid_username_regex=".*", use_lookup_dn_username=True)
    with hubtest.Hub(config(slapd, **loose)) as hub:
        ok, _ = login(hub, "alice", PASSWORDS["alice"])  # the token API needs her in the database
        check(ok and api_token(hub, "alice", "alice", PASSWORDS["alice"]) in (200, 201),
              "control: alice's own name and password get a token through the API")
        mark = slapd.mark()
        for name in crafted:
            check(api_token(hub, "alice", name, PASSWORDS["alice"]) not in (200, 201),
                  f"loose regex, token API: {name!r} does not authenticate as alice")
        seen = slapd.since(mark)
        filters = [l.split("filter=", 1)[1] for l in seen.splitlines() if " SRCH " in l and "filter=" in l]
        check(any("al\\2A" in f or "al\\2a" in f for f in filters), f"'al*' reached slapd escaped: {filters[:6]}")
        check(not any("*" in f for f in filters), "no search filter with a wildcard reached slapd")
        check(not any("(|" in f for f in filters), "no injected (| ...) reached slapd")
        entries = [l for l in seen.splitlines() if "SEARCH RESULT" in l and "tag=101" in l]
        user_searches = [l for l in entries if "nentries=1" in l]
        check(not user_searches, f"no crafted name found an entry: {user_searches[:3]}")
        binds = [l for l in seen.splitlines() if " BIND dn=" in l and "searcher" not in l]
        check(not binds, f"no bind was attempted for a crafted name: {binds[:3]}")


def filters_seen(log):
    return [l.split("filter=", 1)[1] for l in log.splitlines() if " SRCH " in l and "filter=" in l]


def test_search_filter(slapd):
    """search_filter: after the bind exactly one entry must match; none or several refuse."""
    sf = dict(bind_dn_template=TEMPLATES, user_search_base=SUFFIX, user_attribute="uid", attributes=["uid", "cn"],
              search_filter="(&(objectClass=inetOrgPerson)({userattr}={username})(employeeType=hub))")
    with hubtest.Hub(config(slapd, **sf)) as hub:
        mark = slapd.mark()
        ok, _ = login(hub, "alice", PASSWORDS["alice"])
        check(ok, "alice (employeeType hub) matches search_filter and logs in")
        seen = filters_seen(slapd.since(mark))
        check(any("(uid=alice)(employeeType=hub)" in f for f in seen), f"slapd ran the search_filter: {seen}")
        ok, body = login(hub, "bob", PASSWORDS["bob"])
        check(not ok and NEUTRAL in body, "bob (right password, no employeeType) is refused")
        check("search_filter found no entry" in hub.log_text(), "the log says search_filter found no entry")
    unique = dict(sf, search_filter="(&(objectClass=inetOrgPerson)({userattr}={username}))")
    with hubtest.Hub(config(slapd, bind_dn_template=TEMPLATES)) as hub:
        ok, _ = login(hub, "frank", PASSWORDS["frank"])
        check(ok, "control: frank logs in without search_filter")
    with hubtest.Hub(config(slapd, **unique)) as hub:
        ok, _ = login(hub, "alice", PASSWORDS["alice"])
        check(ok, "control: alice, one entry, logs in")
        ok, body = login(hub, "frank", PASSWORDS["frank"])
        check(not ok and NEUTRAL in body, "frank, whom search_filter finds twice, is refused")
        check("search_filter found several entries" in hub.log_text(), "the log says several entries matched")


def test_search_filter_injection(slapd):
    """Names from the directory that are filter syntax reach search_filter escaped.

    lookup_dn puts each user's cn into {username}. Unescaped, mallory's cn '*'
    would turn the filter into (&(employeeType=hub)(cn=*)), which finds exactly
    one entry (alice's) and would let her in."""
    cfg = dict(SEARCH, allowed_groups=None, search_filter="(&(employeeType=hub)(cn={username}))")
    with hubtest.Hub(config(slapd, **cfg)) as hub:
        ok, _ = login(hub, "alice", PASSWORDS["alice"])
        check(ok, "control: alice (cn alice, employeeType hub) logs in")
        for uid, cn, escaped in (("mallory", "*", "(cn=\\2a)"), ("paren", ")(uid=*", "(cn=\\29\\28uid=\\2a)"),
                                 ("inject", "admin)(|(uid=*", "(cn=admin\\29\\28|\\28uid=\\2a)")):
            mark, decided = slapd.mark(), hub.log_text().count("search_filter found no entry")
            ok, body = login(hub, uid, PASSWORDS[uid])
            seen = slapd.since(mark)
            check(not ok and NEUTRAL in body, f"{uid} (cn {cn!r}) cannot authenticate")
            check(hub.log_text().count("search_filter found no entry") > decided,
                  f"{uid}'s own bind succeeded and search_filter found no entry for {cn!r}")
            filters = [f.lower() for f in filters_seen(seen)]
            check(any(f"(employeeType=hub){escaped}".lower() in f for f in filters),
                  f"slapd received {cn!r} escaped: {filters}")
            check(not any(f"(cn={cn}".lower() in f for f in filters), f"{cn!r} never reached slapd raw")


def test_group_search_filter(slapd):
    """group_search_filter decides membership: groupOfNames by DN, or posixGroup by uid."""
    posix = dict(bind_dn_template=TEMPLATES, allowed_groups=[f"cn=posix,ou=groups,{SUFFIX}"],
                 group_search_filter="(&(objectClass=posixGroup)(memberUid={uid}))", group_attributes=["memberUid"])
    with hubtest.Hub(config(slapd, **posix)) as hub:
        mark = slapd.mark()
        ok, _ = login(hub, "carol", PASSWORDS["carol"])
        check(ok, "posixGroup filter: carol (memberUid) logs in")
        seen = filters_seen(slapd.since(mark))
        check(any("(objectClass=posixGroup)(memberUid=carol)" in f for f in seen), f"slapd ran it: {seen}")
        ok, _ = login(hub, "alice", PASSWORDS["alice"])
        check(not ok, "posixGroup filter: alice (member of the groupOfNames only) is refused")
    names = dict(SEARCH, allowed_groups=[f"cn=jupyter,ou=groups,{SUFFIX}"],
                 group_search_filter="(&(objectClass=groupOfNames)(member={userdn}))")
    with hubtest.Hub(config(slapd, **names)) as hub:
        ok, _ = login(hub, "alice", PASSWORDS["alice"])
        check(ok, "groupOfNames filter: alice (member) logs in")
        ok, _ = login(hub, "dave", PASSWORDS["dave"])
        check(ok, "groupOfNames filter: dave, whose DN holds an escaped comma, logs in")
        ok, _ = login(hub, "carol", PASSWORDS["carol"])
        check(not ok, "groupOfNames filter: carol (memberUid of the posixGroup only) is refused")
        check("not a member of any LDAPAuthenticator.allowed_groups" in hub.log_text(), "the log says why")


def test_allowed_groups_none(slapd):
    """allowed_groups None or [] is no group restriction, as in ldapauthenticator."""
    for value in (None, []):
        with hubtest.Hub(config(slapd, bind_dn_template=TEMPLATES, allowed_groups=value)) as hub:
            ok, _ = login(hub, "bob", PASSWORDS["bob"])
            check(ok, f"allowed_groups = {value!r}: bob, in no group, logs in")


def test_unreachable_server(slapd):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts into the backlog, never answers
    try:
        cfg = config(slapd, bind_dn_template=TEMPLATES, server_port=silent.getsockname()[1], timeout=2)
        with hubtest.Hub(cfg) as hub:
            result = {}

            def attempt():
                started = time.monotonic()
                result["ok"], _ = login(hub, "alice", PASSWORDS["alice"])
                result["took"] = time.monotonic() - started
            t = threading.Thread(target=attempt)
            t.start()
            time.sleep(0.5)
            started = time.monotonic()
            status, _, _ = hub.client().get("/hub/login")
            check(status == 200 and time.monotonic() - started < 1.0,
                  "the hub serves other requests while the LDAP server is silent")
            t.join(30)
            check(result.get("ok") is False, "the login fails")
            # 2 s LDAP timeout + hubd's 2 s failure delay, with slack for a loaded machine.
            check(result.get("took", 99) < 8, f"and ends within the timeout ({result.get('took', 0):.1f} s)")
            want = f"LDAP server ldap://127.0.0.1:{silent.getsockname()[1]} did not answer within 2 s"
            check(want in hub.log_text(), f"the log says: {want}")
        closed = hubtest.free_port()
        with hubtest.Hub(config(slapd, bind_dn_template=TEMPLATES, server_port=closed)) as hub:
            ok, body = login(hub, "alice", PASSWORDS["alice"])
            check(not ok and NEUTRAL in body, "a closed port: the login fails")
            check(f"LDAP server ldap://127.0.0.1:{closed} cannot be reached" in hub.log_text(),
                  "the log says the server cannot be reached")
    finally:
        silent.close()


def test_tls(slapd):
    ca = slapd.path("ca.pem")
    trust = f"c.LDAPAuthenticator.tls_kwargs = {{'ca_certs_file': {ca!r}}}\n"
    cases = [("StartTLS", dict(tls_strategy="before_bind")),
             ("ldaps (use_ssl)", dict(tls_strategy="on_connect", use_ssl=True, server_port=slapd.tls_port))]
    for label, traits in cases:
        cfg = config(slapd, bind_dn_template=TEMPLATES, **traits)
        with hubtest.Hub(cfg) as hub:
            mark = slapd.mark()
            ok, body = login(hub, "alice", PASSWORDS["alice"])
            check(not ok and NEUTRAL in body, f"{label}: the self-signed server is refused by default")
            check("ca_certs_file" in hub.log_text(), f"{label}: the log points to tls_kwargs['ca_certs_file']")
            check("BIND" not in slapd.since(mark), f"{label}: no password was sent to the unverified server")
        with hubtest.Hub(cfg + trust) as hub:
            ok, _ = login(hub, "alice", PASSWORDS["alice"])
            check(ok, f"{label}: accepted with the CA configured")
    # The certificate must also name the server: 127.0.0.2 reaches the same
    # slapd, but the certificate names only 127.0.0.1 and localhost.
    cfg = config(slapd, bind_dn_template=TEMPLATES, server_address="127.0.0.2", tls_strategy="before_bind")
    with hubtest.Hub(cfg + trust) as hub:
        ok, _ = login(hub, "alice", PASSWORDS["alice"])
        check(not ok, "StartTLS to an address the certificate does not name is refused")


def main():
    hubtest.require_hubd()
    for tool in (SLAPD, "/usr/sbin/slapadd", "/usr/bin/ldapwhoami", "/usr/sbin/slappasswd"):
        if not os.path.exists(tool):
            hubtest.skip(f"{tool} is missing: apt-get install slapd ldap-utils (scripts/setup-debian.sh)")
    slapd = Slapd()
    try:
        slapd.start()
        hubtest.main([(t.__name__, (lambda t=t: t(slapd))) for t in
                      (test_bind_templates, test_search_then_bind_and_groups, test_crafted_usernames,
                       test_search_filter, test_search_filter_injection, test_group_search_filter,
                       test_allowed_groups_none, test_unreachable_server, test_tls)])
    finally:
        slapd.stop()


if __name__ == "__main__":
    main()
