#!/usr/bin/env bash
# Side-by-side benchmark: JupyterHub 3.0 (Debian, with configurable-http-proxy)
# against hubd, same jupyterhub_config.py, same requests, in one run. Prints a
# Markdown table. Loopback only; every step has a time limit. See bench/README.md.
#
# Environment (all optional):
#   HUBD=PATH              hubd binary (default: build/hubd/hubd)
#   BENCH_DURATION=10s     wrk duration per measurement
#   BENCH_WARMUP=2s        uncounted wrk run before each measurement
#   BENCH_CONNECTIONS=32   wrk connections (one wrk thread)
#   BENCH_PORT_BASE=18000  JupyterHub uses BASE..BASE+2, hubd BASE+10 and BASE+11
#   BENCH_PIN=1            pin the servers to CPU 1 and wrk to CPU 0 (needs 2 CPUs)
#   BENCH_USER=nobody      user the hubs run as when started by root
#   BENCH_SKIP_HUBD=1      measure JupyterHub only
#   BENCH_KEEP=1           keep the temporary directory (logs, databases)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
hubd_bin="${HUBD:-$repo_root/build/hubd/hubd}"
duration="${BENCH_DURATION:-10s}"
warmup="${BENCH_WARMUP:-2s}"
conns="${BENCH_CONNECTIONS:-32}"
port_base="${BENCH_PORT_BASE:-18000}"
pin="${BENCH_PIN:-1}"
run_user="${BENCH_USER:-nobody}"

jh_port=$port_base
jh_hub_port=$((port_base + 1))
jh_proxy_api_port=$((port_base + 2))
hubd_port=$((port_base + 10))
hubd_hub_port=$((port_base + 11))

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

for tool in jupyterhub configurable-http-proxy wrk curl python3 setsid; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/setup-debian.sh"
done

# CPU pinning: the server (all its processes and threads) on CPU 1, wrk on CPU
# 0, so the load generator never steals the server's core and each hub gets
# exactly one core however many threads or processes it uses.
server_pin=()
client_pin=()
if [[ "$pin" == 1 ]] && (($(nproc) >= 2)) && command -v taskset >/dev/null; then
    server_pin=(taskset -c 1)
    client_pin=(taskset -c 0)
else
    log "not pinning CPUs (BENCH_PIN=$pin, $(nproc) CPUs)"
fi

work=$(mktemp -d /tmp/hubd-bench.XXXXXX)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in {1..50}; do
            kill -0 -- "-$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
        log "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in "$jh_port" "$jh_hub_port" "$jh_proxy_api_port" "$hubd_port" "$hubd_hub_port"; do
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/"; then
        die "port $p is already in use (set BENCH_PORT_BASE)"
    fi
done

token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

# One config file for both hubs. hubd reads only literals, so nothing here is
# computed; JupyterHub-only settings (internal ports) go on its command line.
cat >"$work/jupyterhub_config.py" <<EOF
c.JupyterHub.authenticator_class = 'dummy'
c.JupyterHub.services = [{'name': 'bench', 'api_token': '$token'}]
c.JupyterHub.load_roles = [{'name': 'admin', 'services': ['bench']}]
EOF
chmod 0600 "$work/jupyterhub_config.py" # it holds the admin token

# Run the hubs as an unprivileged user when we are root: that is how they run
# in production, and hubd may refuse root.
as_user=()
if ((EUID == 0)); then
    as_user=(setpriv --reuid="$run_user" --regid="$(id -g "$run_user")" --clear-groups --)
    chmod 0755 "$work"
fi
for name in jupyterhub hubd; do
    mkdir -p "$work/$name"
    cp "$work/jupyterhub_config.py" "$work/$name/"
    if ((EUID == 0)); then chown -R "$run_user" "$work/$name"; fi
done

# start NAME PORT CMD...: start a hub in $work/NAME in its own session, wait
# until GET /hub/api answers 200 (60 s at most). Prints its pid.
start() {
    local name=$1 port=$2
    shift 2
    (
        cd "$work/$name"
        # NODE_PATH: a NodeSource node (not Debian's) doesn't search Debian's
        # module dirs, where configurable-http-proxy's dependencies live.
        exec setsid "${server_pin[@]}" env -i PATH=/usr/local/bin:/usr/bin:/bin \
            HOME="$work/$name" LANG=C.UTF-8 NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs \
            "${as_user[@]}" "$@" >"$work/$name.log" 2>&1 </dev/null
    ) &
    local pid=$!
    pids+=("$pid")
    local deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited during startup; last lines of its log:"
            tail -n 15 "$work/$name.log" >&2 || true
            return 1
        fi
        if [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/hub/api")" == 200 ]]; then
            started_pid=$pid
            return 0
        fi
        sleep 0.2
    done
    log "$name did not answer on port $port within 60 s; last lines of its log:"
    tail -n 15 "$work/$name.log" >&2 || true
    return 1
}

# rss_kib PID: VmRSS summed over PID and all its descendants, in KiB.
rss_kib() {
    ps -e -o pid=,ppid=,rss= | awk -v root="$1" '
        { ppid[$1] = $2; rss[$1] = $3 }
        END {
            total = 0
            for (p in rss) {
                q = p
                while (q != "" && q != 0 && q != root) q = ppid[q]
                if (q == root) total += rss[p]
            }
            print total
        }'
}

# usernames_json PREFIX N: {"usernames": ["PREFIX0", ...]}
usernames_json() {
    python3 -c 'import json,sys; p,n=sys.argv[1],int(sys.argv[2]); print(json.dumps({"usernames":[f"{p}{i}" for i in range(n)]}))' "$1" "$2"
}

# post_users PORT PREFIX N: create N users in one request; prints seconds taken.
post_users() {
    local out code secs
    usernames_json "$2" "$3" >"$work/users.json"
    out=$(curl -s -o "$work/post.out" -w '%{http_code} %{time_total}' --max-time 600 \
        -H "Authorization: token $token" -H 'Content-Type: application/json' \
        -X POST --data-binary "@$work/users.json" "http://127.0.0.1:$1/hub/api/users") || true
    code=${out%% *}
    secs=${out#* }
    if [[ "$code" != 201 ]]; then
        log "POST /hub/api/users ($3 users) on port $1 answered ${code:-nothing}: $(head -c 300 "$work/post.out" 2>/dev/null)"
        return 1
    fi
    awk -v s="$secs" 'BEGIN { printf "%.2f\n", s }'
}

cat >"$work/login.lua" <<'EOF'
-- POST the login form, rotating over the 100 pre-created users. A successful
-- login is a 302; anything else (a 200 login page with an error, say) is
-- counted as bad, since wrk's own error count would miss it.
-- Like a browser, it posts from a login page it fetched once: the session
-- cookie and _xsrf token of that page (hubd checks them; JupyterHub 3.0
-- ignores them) come in LOGIN_COOKIE and LOGIN_XSRF.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local cookie = os.getenv("LOGIN_COOKIE") or ""
local xsrf = os.getenv("LOGIN_XSRF") or ""
if cookie ~= "" then wrk.headers["Cookie"] = cookie end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n = 0; good = 0; bad = 0 end
function request()
    n = n + 1
    return wrk.format(nil, "/hub/login", nil,
                      "username=bench" .. (n % 100) .. "&password=x&_xsrf=" .. xsrf)
end
function response(status, headers, body)
    if status == 302 then good = good + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
    local g, b = 0, 0
    for _, t in ipairs(threads) do g = g + t:get("good"); b = b + t:get("bad") end
    io.write(string.format("login-responses: good=%d bad=%d\n", g, b))
end
EOF

# run_wrk NAME PATH [wrk args...]: prints requests/s; wrk's output goes to the
# log; non-2xx/3xx responses, socket errors and bad logins are reported.
run_wrk() {
    local name=$1 url=$2
    shift 2
    local out rps
    # Warm-up, not counted: first requests pay for caches, JIT and connections.
    timeout 60 "${client_pin[@]}" wrk -t1 -c"$conns" -d"$warmup" --timeout 10s "$@" "$url" >/dev/null 2>&1 || true
    out=$(timeout 120 "${client_pin[@]}" wrk -t1 -c"$conns" -d"$duration" --timeout 10s --latency "$@" "$url" 2>&1) || {
        log "wrk failed: $out"
        echo "n/a"
        return 0
    }
    printf '%s\n' "--- $name $url" "$out" >>"$work/wrk.log"
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
    local p50 p99
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    log "  $rps req/s, latency p50 $p50 p99 $p99"
    if grep -qE 'Non-2xx|Socket errors|bad=[1-9]' <<<"$out"; then
        log "  errors: $(grep -E 'Non-2xx|Socket errors|login-responses' <<<"$out" | tr '\n' ' ')"
        rps="$rps (errors)"
    fi
    echo "$rps"
}

declare -A R=()

# measure NAME PORT PID: everything for one hub, results into R[NAME.*].
measure() {
    local name=$1 port=$2 pid=$3 secs
    local base="http://127.0.0.1:$port"
    log "$name: creating 100 users in one POST /hub/api/users"
    secs=$(post_users "$port" bench 100) || return 1
    log "  done in $secs s"
    sleep 2 # let it settle before reading memory
    R[$name.rss]=$(rss_kib "$pid")
    log "$name: idle RSS $((R[$name.rss] / 1024)) MiB (pid $pid and children)"
    local count
    count=$(curl -s --max-time 10 -H "Authorization: token $token" "$base/hub/api/users" |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null || echo '?')
    log "$name: GET /hub/api/users with token ($count users per response), wrk -t1 -c$conns -d$duration"
    R[$name.users]=$(run_wrk "$name" "$base/hub/api/users" -H "Authorization: token $token")
    log "$name: GET /hub/api"
    R[$name.api]=$(run_wrk "$name" "$base/hub/api")
    log "$name: POST /hub/login (DummyAuthenticator, 100 rotating users)"
    local jar="$work/$name.cookies"
    curl -s --max-time 10 -c "$jar" -o /dev/null "$base/hub/login" || true
    local login_cookie login_xsrf
    login_cookie=$(awk '(!/^#/ || /^#HttpOnly_/) && NF >= 7 && $6 != "_xsrf" { printf "%s%s=%s", sep, $6, $7; sep = "; " }' "$jar")
    login_xsrf=$(awk '(!/^#/ || /^#HttpOnly_/) && NF >= 7 && $6 == "_xsrf" { print $7 }' "$jar")
    R[$name.login]=$(LOGIN_COOKIE="$login_cookie" LOGIN_XSRF="$login_xsrf" \
        run_wrk "$name" "$base/hub/login" -s "$work/login.lua")
    log "$name: creating 1,000 users in one POST /hub/api/users"
    R[$name.create]=$(post_users "$port" bulk 1000) || R[$name.create]="n/a"
    log "  done in ${R[$name.create]} s"
}

read -r load1 _ </proc/loadavg
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
    log "warning: load average is $load1; other work on this machine will skew the numbers"
fi
log "work dir $work; JupyterHub on 127.0.0.1:$jh_port, hubd on 127.0.0.1:$hubd_port"
log "starting JupyterHub $(jupyterhub --version 2>/dev/null) + configurable-http-proxy"
start jupyterhub "$jh_port" jupyterhub \
    --JupyterHub.bind_url="http://127.0.0.1:$jh_port" \
    --JupyterHub.hub_port="$jh_hub_port" \
    --ConfigurableHTTPProxy.api_url="http://127.0.0.1:$jh_proxy_api_port" ||
    die "JupyterHub did not start (log above)"
jh_pid=$started_pid

hubd_ok=0
hubd_note=""
if [[ "${BENCH_SKIP_HUBD:-0}" == 1 ]]; then
    hubd_note="skipped (BENCH_SKIP_HUBD=1)"
elif [[ ! -x "$hubd_bin" ]]; then
    hubd_note="skipped: $hubd_bin not found (build it, or set HUBD)"
else
    hubd_run="$hubd_bin"
    # The unprivileged user must reach the binary; copy it if the checkout is
    # somewhere it can't traverse.
    if ((EUID == 0)) && ! "${as_user[@]}" test -x "$hubd_bin"; then
        hubd_run="$work/hubd-bin"
        install -m 0755 "$hubd_bin" "$hubd_run"
    fi
    log "starting hubd ($hubd_bin)"
    # hub_port: hubd's internal API (for single-user servers) would otherwise
    # take 8081, which a running demo or JupyterHub may hold.
    if start hubd "$hubd_port" "$hubd_run" --JupyterHub.bind_url="http://127.0.0.1:$hubd_port" \
        --JupyterHub.hub_port="$hubd_hub_port"; then
        hubd_ok=1
        hubd_pid=$started_pid
    else
        hubd_note="skipped: hubd did not start (see log lines above)"
    fi
fi
[[ -z "$hubd_note" ]] || log "hubd: $hubd_note"

measure jupyterhub "$jh_port" "$jh_pid" || die "JupyterHub measurements failed"
if ((hubd_ok)); then
    measure hubd "$hubd_port" "$hubd_pid" || {
        hubd_note="measurements failed part-way (see log lines above)"
        log "hubd: $hubd_note"
    }
fi

# Table. The last column is normalised so that > 1 means hubd is better:
# throughput hubd/JupyterHub, time and memory JupyterHub/hubd.
ratio() { # ratio JH HUBD higher|lower
    awk -v a="$1" -v b="$2" -v dir="$3" 'BEGIN {
        if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || a + 0 == 0 || b + 0 == 0) { print "n/a"; exit }
        r = (dir == "higher") ? b / a : a / b
        printf "%.1f×\n", r }'
}
val() { echo "${R[$1]:-n/a}"; }
mib() { [[ "$1" =~ ^[0-9]+$ ]] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo n/a; }

echo
echo "| metric | JupyterHub 3.0 + CHP | hubd | hubd advantage |"
echo "|---|---:|---:|---:|"
for row in "users|GET /hub/api/users, token (req/s)|higher" \
    "api|GET /hub/api (req/s)|higher" \
    "login|logins/s, DummyAuthenticator|higher" \
    "create|create 1,000 users, one POST (s)|lower" \
    "rss|idle RSS (MiB)|lower"; do
    IFS='|' read -r key label dir <<<"$row"
    a=$(val "jupyterhub.$key")
    b=$(val "hubd.$key")
    if [[ "$key" == rss ]]; then
        a=$(mib "$a")
        b=$(mib "$b")
    fi
    echo "| $label | $a | $b | $(ratio "${a%% *}" "${b%% *}" "$dir") |"
done
echo
echo "wrk -t1 -c$conns -d$duration; $( ((${#server_pin[@]})) && echo 'servers on CPU 1, wrk on CPU 0' || echo 'no CPU pinning'); $(nproc) CPUs; idle RSS: JupyterHub hub + proxy, hubd alone, after 100 users."
if [[ -n "$hubd_note" ]]; then
    echo "hubd: $hubd_note"
fi
