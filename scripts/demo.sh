#!/usr/bin/env bash
# Run the hub: build hubd, create a hub user and two demo users, and start hubd
# as the hub user with PAM login for the demo users.
#
#   sudo ./scripts/demo.sh
#
# What it sets up (idempotent; a re-run resets the demo passwords):
#   hubd                system user, no login shell, no password, in group
#                       shadow (so PAM can check passwords without root)
#   /var/lib/hubd-demo  hub state dir (database, cookie secret), 0700 hubd
#   demo-alice (admin), demo-bob
#                       login users with fresh random passwords, printed below
#                       as lines "  login: USER  password: PASSWORD"
#
# Environment:
#   HUBD_DEMO_PORT=8000      port to listen on (all interfaces)
#   HUBD_DEMO_DETACH=1       start in the background, write a pid file, and
#                            return once the hub answers HTTP; stop it with
#                            kill "$(cat /var/lib/hubd-demo/hubd.pid)"
#   HUBD_DEMO_PIDFILE=FILE   pid file for detach mode (default
#                            /var/lib/hubd-demo/hubd.pid); log in hubd.log there
#   HUBD_SKIP_SETUP=1        don't run setup-debian.sh
#   HUBD_DEMO_BINARY=PATH    run this hubd binary instead of building one
#   HUBD_DEMO_HELPER=PATH    install this sudospawner (default: next to the build)
#   HUBD_DEMO_CMDLINE=FILE   also write the hub's exact command line there,
#                            NUL-separated (run it as root from the state dir
#                            to restart the hub the same way; the browser test
#                            does). Put FILE somewhere only root can write: it
#                            is a command root runs.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

hub_user=hubd
state_dir=/var/lib/hubd-demo
port="${HUBD_DEMO_PORT:-8000}"
detach="${HUBD_DEMO_DETACH:-0}"
pidfile="${HUBD_DEMO_PIDFILE:-$state_dir/hubd.pid}"
logfile="$state_dir/hubd.log"
demo_users=(demo-alice demo-bob)

log() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

((EUID == 0)) || die "must run as root (it creates users): sudo $0"
if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    die "HUBD_DEMO_PORT=$port is not a port"
fi

if [[ -n "${HUBD_DEMO_BINARY:-}" ]]; then
    # The test suite passes the binary it just built: no nested build.
    built="$HUBD_DEMO_BINARY"
else
    bash scripts/build.sh
    built="$repo_root/build/hubd/hubd"
fi
[[ -x "$built" ]] || die "$built was not built"

# The hub user. Group shadow lets pam_unix read /etc/shadow directly: as an
# ordinary user it could otherwise only verify its own password.
if id "$hub_user" >/dev/null 2>&1; then
    log "hub user $hub_user exists"
else
    log "creating system user $hub_user (no shell, no password, group shadow)"
    useradd --system --user-group --no-create-home --home-dir "$state_dir" \
        --shell /usr/sbin/nologin --groups shadow --comment "hubd demo hub" "$hub_user"
fi
if ! id -nG "$hub_user" | tr ' ' '\n' | grep -qx shadow; then
    log "adding $hub_user to group shadow"
    usermod --append --groups shadow "$hub_user"
fi

log "state dir $state_dir (0700, owned by $hub_user)"
install -d -o "$hub_user" -g "$hub_user" -m 0700 "$state_dir"

# Run as the hub user: a command prefix that drops to it with its own groups.
as_hub=(setpriv --reuid="$hub_user" --regid="$hub_user" --init-groups --)

# The hub user must be able to reach the binary. If the checkout sits under a
# directory it can't traverse (a 0700 home, say), run a copy from a root-owned
# place instead: root-owned so the hub user can't swap its own binary.
hubd_bin="$built"
if ! "${as_hub[@]}" test -r "$built" -a -x "$built"; then
    hubd_bin=/usr/local/libexec/hubd-demo/hubd
    log "$hub_user can't reach $built; installing a copy at $hubd_bin"
    install -D -o root -g root -m 0755 "$built" "$hubd_bin"
fi

# Demo users with new random passwords on every run.
declare -A passwords=()
for u in "${demo_users[@]}"; do
    if id "$u" >/dev/null 2>&1; then
        log "demo user $u exists, resetting its password"
    else
        log "creating demo user $u"
        useradd --create-home --shell /bin/bash --comment "hubd demo user" "$u"
    fi
    pw=$(head -c 12 /dev/urandom | base64 | tr -d '+/=')
    printf '%s:%s\n' "$u" "$pw" | chpasswd
    passwords[$u]="$pw"
done

# The privilege boundary, as docs/install.md sets it up: the helper at the
# path the sudoers rule names (root-owned), its root-owned policy, and a
# sudoers drop-in letting the hub user run only the helper, only as the demo
# users. Existing policy files are left alone.
helper_src="$(dirname "$built")/../sudospawner/sudospawner"
[[ -n "${HUBD_DEMO_HELPER:-}" ]] && helper_src="$HUBD_DEMO_HELPER"
[[ -x "$helper_src" ]] || die "$helper_src was not built"
log "installing the helper at /usr/local/bin/sudospawner"
install -D -o root -g root -m 0755 "$helper_src" /usr/local/bin/sudospawner
policy=$(/usr/local/bin/sudospawner --help | sed -n 's/.*decided by \([^ ]*\)\..*/\1/p' | head -n1)
[[ -n "$policy" ]] || policy=/usr/local/etc/hubd/sudospawner.conf
if [[ ! -f "$policy" ]]; then
    log "installing the example helper policy at $policy"
    install -D -o root -g root -m 0644 sudospawner/sudospawner.conf.example "$policy"
fi
sudoers_tmp=$(mktemp)
"$built" sudoers --hub-user "$hub_user" --users "$(IFS=,; echo "${demo_users[*]}")" >"$sudoers_tmp"
visudo -cf "$sudoers_tmp" >/dev/null || die "the generated sudoers drop-in does not validate"
install -o root -g root -m 0440 "$sudoers_tmp" /etc/sudoers.d/hubd-demo
rm -f "$sudoers_tmp"
log "sudoers drop-in /etc/sudoers.d/hubd-demo: $hub_user may run only the helper, only as the demo users"

# A detached hub from an earlier run would hold the port: stop it, but only if
# the pid really is a hubd run by the hub user (pid files outlive their
# processes). A rebuilt binary shows as "PATH (deleted)", hence the basename.
if [[ -f "$pidfile" ]]; then
    old=$(cat "$pidfile" 2>/dev/null || true)
    if [[ "$old" =~ ^[0-9]+$ ]] && [[ -e "/proc/$old" ]]; then
        old_exe=$(readlink "/proc/$old/exe" 2>/dev/null || true)
        old_exe=${old_exe% (deleted)}
        if [[ "${old_exe##*/}" == hubd && "$(stat -c %U "/proc/$old")" == "$hub_user" ]]; then
            log "stopping the previous demo hub (pid $old)"
            kill "$old" 2>/dev/null || true
            for _ in {1..50}; do
                [[ -e "/proc/$old" ]] || break
                sleep 0.1
            done
        fi
    fi
    if ! [[ "$old" =~ ^[0-9]+$ ]] || ! [[ -e "/proc/$old" ]]; then
        rm -f "$pidfile"
    fi
fi
# Anything else on the port would make hubd fail to bind, and in detach mode
# would answer the readiness check in its place.
if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
    die "port $port is already in use (another hub? set HUBD_DEMO_PORT)"
fi

cat <<EOF

==================================================================
 hubd demo: http://127.0.0.1:$port/ (listening on all interfaces)
   login: demo-alice  password: ${passwords[demo-alice]}   (admin)
   login: demo-bob  password: ${passwords[demo-bob]}
==================================================================

EOF

hub_cmd=(
    # A clean environment: nothing of root's (HOME, tokens, proxies) leaks in.
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$state_dir" USER="$hub_user"
    LOGNAME="$hub_user" LANG=C.UTF-8
    "${as_hub[@]}" "$hubd_bin"
    --JupyterHub.bind_url="http://0.0.0.0:$port"
    --Authenticator.allowed_users="{'demo-alice','demo-bob'}"
    --Authenticator.admin_users="{'demo-alice'}"
    --JupyterHub.spawner_class=sudospawner.SudoSpawner
    # Mutual TLS between hubd and every server: another local account cannot
    # talk to a user's server port (docs/security-model.md, "Internal TLS").
    --JupyterHub.internal_ssl=True
)

if [[ -n "${HUBD_DEMO_CMDLINE:-}" ]]; then
    printf '%s\0' "${hub_cmd[@]}" >"$HUBD_DEMO_CMDLINE"
fi

cd "$state_dir"
if [[ "$detach" != 1 ]]; then
    log "starting hubd as $hub_user in $state_dir (Ctrl-C stops it)"
    exec "${hub_cmd[@]}"
fi

log "starting hubd as $hub_user in the background (log: $logfile)"
# setsid: its own session, so it survives this script and a closing terminal.
# Not a process-group leader here, so setsid doesn't fork and $! is hubd's pid.
setsid "${hub_cmd[@]}" >>"$logfile" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"

# Return only once the hub answers, so callers can use it straight away.
deadline=$((SECONDS + 30))
while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$pidfile"
        log "hubd exited during startup; last lines of $logfile:" >&2
        tail -n 20 "$logfile" >&2 || true
        exit 1
    fi
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/hub/api"; then
        log "hubd is up (pid $pid, pid file $pidfile)"
        exit 0
    fi
    sleep 0.1
done
log "hubd did not answer on port $port within 30 s; stopping it; last lines of $logfile:" >&2
tail -n 20 "$logfile" >&2 || true
kill "$pid" 2>/dev/null || true
rm -f "$pidfile"
exit 1
