#!/usr/bin/env bash
# Install everything hubd's build, tests and demo need on Debian 12.
#
# Idempotent and quick on a machine that already has everything: packages are
# checked with dpkg-query first, and apt is only touched (update + install) when
# something is missing. Run as root (sudo ./scripts/setup-debian.sh); a non-root
# run works as long as nothing needs installing.
#
# Environment:
#   HUBD_SKIP_SETUP=1   do nothing (for callers that already ran it)
set -euo pipefail

log() { printf 'setup: %s\n' "$*"; }

if [[ "${HUBD_SKIP_SETUP:-0}" == 1 ]]; then
    log "skipped (HUBD_SKIP_SETUP=1)"
    exit 0
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages, grouped by what needs them.
packages=(
    # build
    build-essential meson ninja-build pkg-config clang-format
    libssl-dev libsqlite3-dev libpam0g-dev libcap-dev libfmt-dev
    doctest-dev
    # tests and demo: system tools the scripts and integration tests call
    sudo sqlite3 python3 curl passwd util-linux binutils
    # setcap/getcap: docs/install.md step 7, run by tests/integration/test_guide.py
    libcap2-bin
    # second factors through the PAM conversation (tests/integration/test_pam_conversation.py)
    libpam-oath oathtool
    # TLS acceptance test (tests/integration/test_tls.py): testssl.sh scans hubd
    testssl.sh
    # the reference implementation (jupyterhub-singleuser, configurable-http-proxy)
    jupyterhub
    # browser tests and benchmark
    chromium wrk
    # proxy benchmark (bench/proxy_bench.sh): backend and reference proxy, run
    # on loopback with their own config; the system service is not used
    nginx-light
    # the seed guide's Apache front end (tests/integration/test_apache_frontend.py),
    # likewise run privately on loopback; the system service is not used
    apache2
    # the install test (tests/integration/test_install.py): systemd-analyze
    # verify on the units, man and groff to render the man pages
    systemd man-db groff-base
    # the SELinux module (tests/integration/test_selinux_policy.py): the
    # refpolicy devel Makefile and its compilers; policycoreutils turns the
    # module back into CIL for the checks. Nothing is loaded: Debian's kernel
    # here runs without SELinux.
    selinux-policy-dev checkpolicy semodule-utils policycoreutils
    # LDAPAuthenticator: OpenLDAP's client library to build, and slapd with
    # ldap-utils for tests/integration/test_ldap_login.py, which runs its own
    # slapd on loopback; the system service is not used
    libldap-dev slapd ldap-utils
)
# Packages whose system service Debian would start on install (nginx and apache2
# both on port 80, so the second would fail): kept from starting, and disabled when we installed them.
declare -A services=([nginx-light]=nginx [apache2]=apache2 [slapd]=slapd)

# Non-interactive everywhere: CI has no stdin and no terminal.
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300)

# One dpkg-query for all packages (a call per package is slow on the fast path).
declare -A status=()
while read -r name state; do
    status[$name]=$state
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
missing=()
for p in "${packages[@]}"; do
    [[ "${status[$p]:-}" == installed ]] || missing+=("$p")
done
# Node.js and npm are checked by command, not package: a NodeSource nodejs
# bundles npm and conflicts with Debian's npm package, so asking apt for "npm"
# there would fail. Only install Debian's when the command is really absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]} == 0)); then
    log "debian packages: all ${#packages[@]} present (+ node, npm), nothing to install"
else
    if ((EUID != 0)); then
        log "missing packages: ${missing[*]}" >&2
        log "run as root to install them: sudo $0" >&2
        exit 1
    fi
    # Refresh package lists only when they are older than an hour, so repeated
    # runs (and a machine prepared minutes ago) don't hit the network again.
    newest_list=$(find /var/lib/apt/lists -maxdepth 1 -type f -name '*Packages*' \
        -printf '%T@\n' 2>/dev/null | sort -n | tail -n1)
    now=$(date +%s)
    updated=0
    if [[ -z "$newest_list" ]] || ((now - ${newest_list%.*} > 3600)); then
        log "apt-get update (package lists missing or older than 1 h)"
        apt-get "${apt_opts[@]}" update </dev/null >/dev/null
        updated=1
    else
        log "apt-get update skipped (package lists are $((now - ${newest_list%.*})) s old)"
    fi
    # policy-rc.d is Debian's switch for "do not start services now" (invoke-rc.d
    # and deb-systemd-invoke ask it); ours is temporary and only names our services.
    policy_rc=/usr/sbin/policy-rc.d
    if [[ ! -e $policy_rc ]]; then
        printf '#!/bin/sh\n# temporary, from hubd scripts/setup-debian.sh\nfor a; do case $a in %s) exit 101;; esac; done\nexit 0\n' \
            "$(IFS='|'; echo "${services[*]}")" >"$policy_rc"
        chmod 755 "$policy_rc"
        trap 'rm -f "$policy_rc"' EXIT
    fi
    install=(apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}")
    log "apt-get install ${missing[*]}"
    if ! "${install[@]}" </dev/null >/dev/null; then
        # Fresh-looking lists can still name files the mirror has replaced.
        ((updated == 0)) || exit 1
        log "install failed; apt-get update and one more try"
        apt-get "${apt_opts[@]}" update </dev/null >/dev/null
        "${install[@]}" </dev/null >/dev/null
    fi
    for p in "${missing[@]}"; do
        [[ -n "${services[$p]:-}" ]] || continue
        log "disabling the system ${services[$p]} service (tests run their own on loopback)"
        if command -v systemctl >/dev/null 2>&1; then
            systemctl disable --now "${services[$p]}" >/dev/null 2>&1 || true
        fi
    done
fi

# playwright-core for the browser tests, pinned by tests/browser/package-lock.json.
# It is only the driver library: the tests use Debian's /usr/bin/chromium, so no
# browser download is wanted (nor possible: CI reaches package registries only).
browser_dir="$repo_root/tests/browser"
if [[ -f "$browser_dir/package.json" ]]; then
    want=$(sed -n 's/.*"playwright-core": *"\([^"]*\)".*/\1/p' "$browser_dir/package.json" | head -n1)
    have=""
    if [[ -f "$browser_dir/node_modules/playwright-core/package.json" ]]; then
        have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
            "$browser_dir/node_modules/playwright-core/package.json" | head -n1)
    fi
    if [[ -n "$want" && "$have" == "$want" ]]; then
        log "playwright-core $have already in tests/browser/node_modules"
    else
        export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
        npm_opts=(--no-audit --no-fund --loglevel=error)
        if [[ -f "$browser_dir/package-lock.json" ]]; then
            log "npm ci in tests/browser (playwright-core ${want:-?}, no browser download)"
            (cd "$browser_dir" && npm ci "${npm_opts[@]}" </dev/null >/dev/null)
        else
            log "npm install in tests/browser (no lockfile yet; playwright-core ${want:-?})"
            (cd "$browser_dir" && npm install "${npm_opts[@]}" </dev/null >/dev/null)
        fi
    fi
else
    log "tests/browser/package.json not found, skipping npm"
fi

# oidc-provider (a certified OpenID Connect provider) for the oidc_login test,
# pinned by tests/oidc/package-lock.json; it runs on loopback only.
oidc_dir="$repo_root/tests/oidc"
if [[ -f "$oidc_dir/package-lock.json" ]]; then
    want=$(sed -n 's/.*"oidc-provider": *"\([^"]*\)".*/\1/p' "$oidc_dir/package.json" | head -n1)
    have=""
    if [[ -f "$oidc_dir/node_modules/oidc-provider/package.json" ]]; then
        have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
            "$oidc_dir/node_modules/oidc-provider/package.json" | head -n1)
    fi
    if [[ -n "$want" && "$have" == "$want" ]]; then
        log "oidc-provider $have already in tests/oidc/node_modules"
    else
        log "npm ci in tests/oidc (oidc-provider ${want:-?})"
        (cd "$oidc_dir" && npm ci --no-audit --no-fund --loglevel=error </dev/null >/dev/null)
    fi
fi

# Debian's configurable-http-proxy keeps its dependencies in /usr/share/nodejs,
# which only Debian's own node searches. With a NodeSource node it needs
# NODE_PATH; say so here rather than let a reference run fail obscurely.
if ! configurable-http-proxy --version >/dev/null 2>&1; then
    if NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs configurable-http-proxy --version >/dev/null 2>&1; then
        log "note: this node needs NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs for configurable-http-proxy"
    else
        log "warning: configurable-http-proxy does not run (JupyterHub reference runs will fail)"
    fi
fi

log "done"
