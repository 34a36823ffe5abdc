#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""selinux/hubd.{te,fc,if} compile into a module with the domains and
transitions docs/security-model.md describes.

Compiled with the refpolicy devel Makefile (selinux-policy-dev) in a temporary
directory; the module is then turned back into CIL (policycoreutils'
/usr/libexec/selinux/hll/pp) to check what it declares: hubd_t entered from
init, sudo entered only from hubd_t and only into hubd_sudo_t, the helper as
sudo's only way on, the seeds' blanket `allow unconfined_t sudo_exec_t:file
entrypoint` absent, and hubd_sudo_t's capabilities exactly what the systemd
unit's bounding set grants sudo. Debian runs no SELinux kernel: nothing here
loads or enforces the module.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hubtest  # noqa: E402
from hubtest import check  # noqa: E402

DEVEL_MAKEFILE = "/usr/share/selinux/devel/Makefile"
PP_TO_CIL = "/usr/libexec/selinux/hll/pp"
SOURCES = os.path.join(hubtest.ROOT, "selinux")
UNIT = os.path.join(hubtest.ROOT, "systemd", "hubd.service.in")

_state = {}


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)


def test_compile():
    work = tempfile.mkdtemp(prefix="hubtest-selinux-")
    _state["work"] = work
    for ext in ("te", "fc", "if"):
        shutil.copy(os.path.join(SOURCES, f"hubd.{ext}"), work)
    r = run(["make", "-f", DEVEL_MAKEFILE, "hubd.pp"], cwd=work)
    pp = os.path.join(work, "hubd.pp")
    ok = r.returncode == 0 and os.path.isfile(pp) and os.path.getsize(pp) > 0
    check(ok, f"make -f {DEVEL_MAKEFILE} hubd.pp builds the module ({(r.stdout + r.stderr).strip()[-800:]})")
    warnings = [line for line in (r.stdout + r.stderr).splitlines() if "warning" in line.lower()]
    check(not warnings, f"the build prints no warning ({warnings[:5]})")
    if ok:
        _state["pp"] = pp


def cil():
    if "cil" in _state:
        return _state["cil"]
    if "pp" not in _state:
        raise hubtest.Skip("the module did not compile")
    if not os.access(PP_TO_CIL, os.X_OK):
        raise hubtest.Skip(f"{PP_TO_CIL} is missing (apt-get install policycoreutils)")
    out = os.path.join(_state["work"], "hubd.cil")
    r = run([PP_TO_CIL, _state["pp"], out])
    if not check(r.returncode == 0, f"the module converts to CIL ({r.stderr.strip()})"):
        raise hubtest.Skip("no CIL")
    with open(out) as f:
        _state["cil"] = f.read()
    return _state["cil"]


def caps_of(text, domain):
    caps = set()
    for m in re.finditer(r"\(allow %s self \(capability \(([^)]*)\)\)\)" % re.escape(domain), text):
        caps |= set(m.group(1).split())
    return caps


def test_declarations_and_transitions():
    text = cil()
    for t in ("hubd_t", "hubd_exec_t", "hubd_conf_t", "hubd_var_lib_t", "hubd_port_t", "hubd_sudo_t",
              "hubd_helper_exec_t", "hubd_server_t"):
        check(f"(type {t})" in text, f"the module declares {t}")
    check("(typetransition init_t hubd_exec_t process hubd_t)" in text, "systemd starts hubd in hubd_t")
    check("(typetransition hubd_t sudo_exec_t process hubd_sudo_t)" in text,
          "hubd runs sudo by transitioning to hubd_sudo_t")
    check("(typetransition hubd_sudo_t hubd_helper_exec_t process hubd_server_t)" in text,
          "hubd's sudo runs the helper by transitioning to hubd_server_t")
    check("(typetransition hubd_t var_lib_t dir hubd_var_lib_t)" in text,
          "a state directory hubd creates in /var/lib is hubd_var_lib_t")


def test_narrower_than_the_seeds():
    text = cil()
    check(not re.search(r"\(allow unconfined_t sudo_exec_t \(file \([^)]*entrypoint", text),
          "no blanket `allow unconfined_t sudo_exec_t:file entrypoint`")
    entries = set(re.findall(r"\(allow (\S+) sudo_exec_t \(file \([^)]*\bentrypoint\b", text))
    check(entries == {"hubd_sudo_t"}, f"sudo's executable enters only hubd_sudo_t ({entries})")
    into_sudo = set(re.findall(r"\(allow (\S+) hubd_sudo_t \(process \([^)]*\btransition\b", text))
    check(into_sudo == {"hubd_t"}, f"only hubd_t may transition to hubd_sudo_t ({into_sudo})")
    # auth_use_pam lets PAM run unix_chkpwd, into its own confined chkpwd_t.
    execs = set(re.findall(r"\(allow hubd_sudo_t (\S+) \(file \([^)]*\bexecute\b", text)) - {"sudo_exec_t"}
    check(execs == {"hubd_helper_exec_t", "chkpwd_exec_t"},
          f"hubd_sudo_t executes only the helper (and PAM's unix_chkpwd) ({execs})")
    check("(typetransition hubd_sudo_t chkpwd_exec_t process chkpwd_t)" in text, "unix_chkpwd runs in chkpwd_t")
    # net_bind_service for ports below 1024; audit_write comes with
    # auth_use_pam (PAM's audit records). hubd drops both once listening.
    check(caps_of(text, "hubd_t") == {"net_bind_service", "audit_write"},
          f"hubd_t's capabilities are net_bind_service and PAM's audit_write ({caps_of(text, 'hubd_t')})")
    conf_writes = re.findall(r"\(allow hubd_t hubd_conf_t \((?:file|dir) \([^)]*\b(?:write|append|unlink)\b", text)
    check(not conf_writes, "hubd_t cannot change its configuration or the helper's policy")


def test_sudo_capabilities_match_the_unit():
    text = cil()
    with open(UNIT) as f:
        bounding = next((line.split("=", 1)[1].split() for line in f
                         if line.startswith("CapabilityBoundingSet=")), [])
    want = {c[len("CAP_"):].lower() for c in bounding} - {"net_bind_service"}
    have = caps_of(text, "hubd_sudo_t")
    check(have == want, f"hubd_sudo_t's capabilities are the unit's bounding set for sudo ({sorted(have)} vs {sorted(want)})")


def test_file_contexts_name_the_install_paths():
    with open(os.path.join(SOURCES, "hubd.fc")) as f:
        entries = [line.split()[:3] for line in f if line.strip() and not line.lstrip().startswith("#")]
    hubd_dir = os.path.dirname(os.path.abspath(hubtest.HUBD))
    build = os.path.dirname(hubd_dir)
    r = run(["meson", "introspect", "--buildoptions", build]) if shutil.which("meson") else None
    if not r or r.returncode != 0:
        raise hubtest.Skip("cannot read the build's options")
    o = {x["name"]: x["value"] for x in json.loads(r.stdout)}
    if o["prefix"] not in ("/usr", "/usr/local"):
        raise hubtest.Skip(f"prefix {o['prefix']}: hubd.fc lists /usr and /usr/local only")
    bindir = o["bindir"] if o["bindir"].startswith("/") else os.path.join(o["prefix"], o["bindir"])

    def label(path):
        for e in entries:
            if re.fullmatch(e[0], path):
                return e[-1]
        return None

    for path, t in ((os.path.join(bindir, "hubd"), "hubd_exec_t"),
                    (os.path.join(bindir, "sudospawner"), "hubd_helper_exec_t"),
                    ("/var/lib/hubd/jupyterhub.sqlite", "hubd_var_lib_t")):
        lab = label(path)
        check(lab is not None and f":{t}," in lab, f"{path} is labeled {t} ({lab})")


def main():
    if not os.path.isfile(DEVEL_MAKEFILE):
        hubtest.skip(f"{DEVEL_MAKEFILE} is missing: apt-get install selinux-policy-dev checkpolicy semodule-utils")
    try:
        hubtest.main([test_compile, test_declarations_and_transitions, test_narrower_than_the_seeds,
                      test_sudo_capabilities_match_the_unit, test_file_contexts_name_the_install_paths])
    finally:
        if "work" in _state and not os.environ.get("HUBTEST_KEEP"):
            shutil.rmtree(_state["work"], ignore_errors=True)


if __name__ == "__main__":
    main()
