#!/usr/bin/env bash
# Proxy benchmark, side by side in one run: the same nginx backend (a 1 KiB
# and a 100 MiB file) and the same WebSocket echo backend, reached directly,
# through nginx as a reverse proxy, through hubd (/services/bench/ route) and
# through configurable-http-proxy 5 (npm). Prints a Markdown table.
# Loopback only; every step has a time limit. See bench/README.md.
#
# Environment (all optional):
#   HUBD=PATH              hubd binary (default: build/hubd/hubd)
#   BENCH_DURATION=10s     wrk duration per measurement (plus a 2 s warm-up)
#   BENCH_CONNECTIONS=64   wrk connections
#   BENCH_THREADS=1        wrk threads
#   BENCH_ROUNDS=3         rounds of the wrk, download and echo measurements; the
#                          targets take turns in each round (order rotated), the
#                          table gives the median and the notes the spread
#   BENCH_WS_IDLE=10000    idle WebSockets opened through each proxy
#   BENCH_WS_ECHO=64       WebSockets doing echo round trips at once
#   BENCH_PORT_BASE=19000  ports BASE+1 .. BASE+21
#   BENCH_PIN=1            pin CPUs (below); 0: let the scheduler place everything
#   BENCH_PROXY_CPUS=1     taskset CPU list of the proxies
#   BENCH_LOAD_CPUS=0      ... of wrk, curl and the WebSocket clients
#   BENCH_BACKEND_CPUS=0   ... of the nginx backend and the WebSocket echo backend
#   BENCH_NICE=-10         run everything at this nice level (root), all targets alike
#   BENCH_SKIP_CHP=1       leave configurable-http-proxy out (no npm install)
#   CHP=PATH               an installed configurable-http-proxy (bin/ script) instead of npm
#   BENCH_PARTS=wrk,capped,download,echo,idle   which measurements to run
#   BENCH_CAP_PCT=50       "capped": each proxy gets this % of one CPU (a CPU
#                          cgroup quota) while wrk runs, so that the proxy, not
#                          the load side, is the bottleneck: requests/s then
#                          measure each proxy's capacity on an equal CPU budget
#   BENCH_KEEP=1           keep the temporary directory (configs, logs)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
hubd_bin="${HUBD:-$repo_root/build/hubd/hubd}"
duration="${BENCH_DURATION:-10s}"
conns="${BENCH_CONNECTIONS:-64}"
threads="${BENCH_THREADS:-1}"
rounds="${BENCH_ROUNDS:-3}"
parts=",${BENCH_PARTS:-wrk,capped,download,echo,idle},"
cap_pct="${BENCH_CAP_PCT:-50}"
ws_idle="${BENCH_WS_IDLE:-10000}"
ws_echo="${BENCH_WS_ECHO:-64}"
base="${BENCH_PORT_BASE:-19000}"
pin="${BENCH_PIN:-1}"
ws_tool="$repo_root/bench/ws_tool.py"

backend_port=$((base + 1))
ws_port=$((base + 2))
nginx_port=$((base + 3))
hubd_port=$((base + 10))
hubd_hub_port=$((base + 11))
chp_port=$((base + 20))
chp_api_port=$((base + 21))

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

for tool in nginx wrk curl python3 setsid; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/setup-debian.sh"
done
[[ -x "$hubd_bin" ]] || die "no hubd at $hubd_bin (build it, or set HUBD)"

# BENCH_NICE (e.g. -10, as root) gives every process of the benchmark the
# same higher priority, so that unrelated work on a shared machine (builds)
# takes less of the measured cores; it applies to all targets alike. With
# the kernel's autogroups (sched_autogroup_enabled), nice only ranks tasks
# within one session, so each session of ours (this script's, and each
# setsid below) also gets the nice value through /proc/self/autogroup.
prio=()
if [[ -n "${BENCH_NICE:-}" ]]; then
    if [[ -z "${BENCH_IN_OWN_SESSION:-}" ]]; then
        BENCH_IN_OWN_SESSION=1 exec setsid -w "$0" "$@"
    fi
    echo "$BENCH_NICE" >/proc/self/autogroup 2>/dev/null || true
    prio=(nice -n "$BENCH_NICE" sh -c 'echo "$0" >/proc/self/autogroup 2>/dev/null; exec "$@"' "$BENCH_NICE")
fi
proxy_pin=("${prio[@]}")
load_pin=("${prio[@]}")
backend_pin=("${prio[@]}")
pinning="not pinned"
if [[ "$pin" == 1 ]] && (($(nproc) >= 2)) && command -v taskset >/dev/null; then
    proxy_pin+=(taskset -c "${BENCH_PROXY_CPUS:-1}")
    load_pin+=(taskset -c "${BENCH_LOAD_CPUS:-0}")
    backend_pin+=(taskset -c "${BENCH_BACKEND_CPUS:-0}")
    pinning="proxies on CPU ${BENCH_PROXY_CPUS:-1}, load generators on CPU ${BENCH_LOAD_CPUS:-0}, backends on CPU ${BENCH_BACKEND_CPUS:-0}"
else
    log "not pinning CPUs (BENCH_PIN=$pin, $(nproc) CPUs)"
fi

# 10,000 WebSockets through a proxy are 20,000 fds in the proxy.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) >= 2 * ws_idle + 1000)) || log "ulimit -n is $(ulimit -n): idle WebSockets may fail beyond that"

work=$(mktemp -d /tmp/hubd-proxy-bench.XXXXXX)
chmod 0755 "$work" # nginx workers run as nobody and read the files
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in {1..50}; do
            kill -0 -- "-$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    if [[ -n "${cap_dir:-}" ]]; then rmdir "$cap_dir" 2>/dev/null || true; fi
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in "$backend_port" "$ws_port" "$nginx_port" "$hubd_port" "$hubd_hub_port" "$chp_port" "$chp_api_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use (set BENCH_PORT_BASE)"; fi
done

# spawn NAME CPU-PIN... -- CMD...: in its own session (so cleanup gets all of it).
spawn() {
    local name=$1
    shift
    setsid "$@" >"$work/$name.log" 2>&1 </dev/null &
    pids+=("$!")
    eval "${name//-/_}_pid=$!"
}

wait_http() { # URL
    local deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" == 200 ]] && return 0
        sleep 0.2
    done
    return 1
}

wait_port() { # PORT
    local deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# rss_kib PID: VmRSS summed over the process group of PID (nginx master +
# worker, node + helpers), in KiB.
rss_kib() { ps -o rss= -g "$1" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

# --- backends --------------------------------------------------------------
mkdir -p "$work/www/services/bench" "$work/www/services/ws" "$work/tmp"
head -c 1024 /dev/zero | tr '\0' 'a' >"$work/www/services/bench/1k"
head -c $((100 * 1024 * 1024)) /dev/zero >"$work/www/services/bench/100m"
chmod -R a+rX "$work/www"

nginx_common="worker_processes 1; daemon off; worker_rlimit_nofile 65536; pid PIDFILE;
error_log $work/ERRLOG warn;
events { worker_connections 30000; }"
cat >"$work/backend.conf" <<EOF
${nginx_common//PIDFILE/$work/backend.pid}
http {
    access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;
    client_body_temp_path $work/tmp/backend-body; proxy_temp_path $work/tmp/backend-proxy;
    server { listen 127.0.0.1:$backend_port; root $work/www; }
}
EOF
sed -i "s|ERRLOG|backend-error.log|" "$work/backend.conf"
cat >"$work/proxy.conf" <<EOF
${nginx_common//PIDFILE/$work/proxy.pid}
http {
    access_log off; keepalive_requests 1000000;
    client_body_temp_path $work/tmp/proxy-body; proxy_temp_path $work/tmp/proxy-proxy;
    upstream backend { server 127.0.0.1:$backend_port; keepalive 64; }
    upstream ws { server 127.0.0.1:$ws_port; }
    server {
        listen 127.0.0.1:$nginx_port;
        location /services/bench/ {
            proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_max_temp_file_size 0;
        }
        location /services/ws/ {
            proxy_pass http://ws; proxy_http_version 1.1; proxy_read_timeout 3600s;
            proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection "upgrade";
        }
    }
}
EOF
sed -i "s|ERRLOG|proxy-error.log|" "$work/proxy.conf"

spawn backend "${backend_pin[@]}" nginx -c "$work/backend.conf" -e "$work/backend-error.log"
spawn wsecho "${backend_pin[@]}" python3 "$ws_tool" server "$ws_port"
wait_http "http://127.0.0.1:$backend_port/services/bench/1k" || die "backend nginx did not start: $(cat "$work/backend.log")"
wait_port "$ws_port" || die "WebSocket echo backend did not start"

# --- proxies ---------------------------------------------------------------
spawn nginx "${proxy_pin[@]}" nginx -c "$work/proxy.conf" -e "$work/proxy-error.log"
wait_http "http://127.0.0.1:$nginx_port/services/bench/1k" || die "nginx proxy did not start"

# hubd refuses to run as root: when the bench runs as root, hubd runs as
# nobody (as in production it runs as its own unprivileged user).
as_hub=()
if ((EUID == 0)); then
    as_hub=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups --)
    chmod 0755 "$work"
    if ! "${as_hub[@]}" test -x "$hubd_bin"; then
        install -D -m 0755 "$hubd_bin" "$work/bin/hubd" # keeps the name: pid checks read /proc/PID/comm
        hubd_bin="$work/bin/hubd"
    fi
fi
mkdir -p "$work/hubd"
cat >"$work/hubd/config.py" <<EOF
c.JupyterHub.authenticator_class = 'dummy'
c.JupyterHub.services = [
    {'name': 'bench', 'url': 'http://127.0.0.1:$backend_port'},
    {'name': 'ws', 'url': 'http://127.0.0.1:$ws_port'},
]
EOF
if ((EUID == 0)); then chown -R nobody "$work/hubd"; fi
(cd "$work/hubd" && spawn hubd "${proxy_pin[@]}" "${as_hub[@]}" "$hubd_bin" -f config.py \
    "--JupyterHub.bind_url=http://127.0.0.1:$hubd_port" "--JupyterHub.hub_bind_url=http://127.0.0.1:$hubd_hub_port"
    echo "$hubd_pid" >"$work/hubd.pid")
hubd_pid=$(cat "$work/hubd.pid")
pids+=("$hubd_pid")
wait_http "http://127.0.0.1:$hubd_port/services/bench/1k" || die "hubd did not proxy: $(tail -5 "$work/hubd.log")"

names=(direct nginx hubd)
declare -A port=([direct]=$backend_port [nginx]=$nginx_port [hubd]=$hubd_port)
declare -A wsport=([direct]=$ws_port [nginx]=$nginx_port [hubd]=$hubd_port)
declare -A pid=([nginx]=$nginx_pid [hubd]=$hubd_pid)

if [[ "${BENCH_SKIP_CHP:-0}" != 1 ]]; then
    if [[ -n "${CHP:-}" ]]; then
        chp_bin=$CHP
    elif log "installing configurable-http-proxy@5 into $work/chp (npm)" &&
        timeout 300 npm install --prefix "$work/chp" --no-audit --no-fund --silent configurable-http-proxy@5 \
            >"$work/npm.log" 2>&1; then
        chp_bin="$work/chp/node_modules/configurable-http-proxy/bin/configurable-http-proxy"
    fi
    if [[ -n "${chp_bin:-}" ]]; then
        chp_token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
        CONFIGPROXY_AUTH_TOKEN=$chp_token spawn chp "${proxy_pin[@]}" node "$chp_bin" --ip 127.0.0.1 \
            --port "$chp_port" --api-ip 127.0.0.1 --api-port "$chp_api_port" --log-level warn
        wait_port "$chp_api_port" || die "configurable-http-proxy did not start: $(tail -5 "$work/chp.log")"
        for route in bench:$backend_port ws:$ws_port; do
            curl -sf -X POST -H "Authorization: token $chp_token" \
                -d "{\"target\": \"http://127.0.0.1:${route#*:}\"}" \
                "http://127.0.0.1:$chp_api_port/api/routes/services/${route%%:*}" >/dev/null ||
                die "could not add a route to configurable-http-proxy"
        done
        wait_http "http://127.0.0.1:$chp_port/services/bench/1k" || die "configurable-http-proxy did not proxy"
        names+=(chp)
        port[chp]=$chp_port
        wsport[chp]=$chp_port
        pid[chp]=$chp_pid
        chp_version=$(node -p "require('$(dirname "$chp_bin")/../package.json').version")
    else
        log "npm install failed (see below); configurable-http-proxy left out"
        tail -5 "$work/npm.log" >&2
    fi
fi

# --- measurements ----------------------------------------------------------
# Per target, space-separated values of every round; the table shows medians.
declare -A rps p99 cpu_us cpu_pct busy load_cpu echo_cpu dl dlrss idle_rss ws_per ws_note echo_rate echo_p99

to_ms() { # wrk latency "850.00us" / "1.23ms" / "2.00s" -> ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'
}

# cpu_ticks PID: user + system clock ticks of every process (all threads) in
# the process group of PID.
cpu_ticks() {
    local p total=0 t
    for p in $(ps -o pid= -g "$1" 2>/dev/null); do
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || continue
        total=$((total + ${t:-0}))
    done
    echo "$total"
}
# cpu_stat: "busy total" jiffies per CPU, one line each (cpu0 first).
cpu_stat() { awk '/^cpu[0-9]/ {b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6}' /proc/stat; }
# busy_pct BEFORE AFTER: "cpu0 %/cpu1 %/..." between two cpu_stat outputs.
busy_pct() {
    paste -d' ' <(echo "$1") <(echo "$2") |
        awk '{ t = $4 - $2; printf "%s%.0f", (NR > 1 ? "/" : ""), (t > 0 ? 100 * ($3 - $1) / t : 0) } END { print "" }'
}
clk_tck=$(getconf CLK_TCK)
wrk_seconds=$(awk -v d="$duration" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; print n }')

# order ROUND: the targets rotated by ROUND, so no target always runs first.
order() {
    local r=$1 i k=${#names[@]}
    for ((i = 0; i < k; i++)); do printf '%s\n' "${names[$(((i + r) % k))]}"; done
}

measure_wrk() { # TARGET ROUND
    local n=$1 r=$2 url="http://127.0.0.1:${port[$1]}/services/bench/1k" out t0=0 t1=0 s0 s1 req
    "${load_pin[@]}" wrk -t"$threads" -c"$conns" -d2s "$url" >/dev/null
    if [[ -n "${pid[$n]:-}" ]]; then t0=$(cpu_ticks "${pid[$n]}"); fi
    local b0 b1 wrk_cpu=""
    b0=$(cpu_ticks "$backend_pid")
    s0=$(cpu_stat)
    # /usr/bin/time (if installed) reports wrk's own CPU time.
    if [[ -x /usr/bin/time ]]; then
        out=$(/usr/bin/time -f '%U %S' -o "$work/wrk-time" "${load_pin[@]}" wrk -t"$threads" -c"$conns" -d"$duration" --latency "$url")
        wrk_cpu=$(awk -v s="$wrk_seconds" '{printf "%.0f", 100 * ($1 + $2) / s}' "$work/wrk-time")
    else
        out=$("${load_pin[@]}" wrk -t"$threads" -c"$conns" -d"$duration" --latency "$url")
    fi
    s1=$(cpu_stat)
    b1=$(cpu_ticks "$backend_pid")
    local backend_cpu=$(((b1 - b0) * 100 / clk_tck / ${wrk_seconds%.*}))
    load_cpu[$n]+=" ${wrk_cpu:-?}+$backend_cpu"
    echo "$out" >"$work/wrk-$n-$r.txt"
    local v
    v=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
    req=$(awk '$2 == "requests" && $3 == "in" {print $1}' <<<"$out")
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then rps_err[$n]=1; fi
    rps[$n]+=" $v"
    p99[$n]+=" $(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
    busy[$n]+=" $(busy_pct "$s0" "$s1")"
    if [[ -n "${pid[$n]:-}" ]]; then
        t1=$(cpu_ticks "${pid[$n]}")
        cpu_us[$n]+=" $(awk -v t=$((t1 - t0)) -v hz="$clk_tck" -v q="$req" 'BEGIN {printf "%.1f", (q > 0 ? 1e6 * t / hz / q : 0)}')"
        cpu_pct[$n]+=" $(awk -v t=$((t1 - t0)) -v hz="$clk_tck" -v s="$wrk_seconds" 'BEGIN {printf "%.0f", 100 * t / hz / s}')"
    fi
    log "$n round $r: $v req/s, p99 $(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")") ms, CPU busy % (cpu0/cpu1) $(busy_pct "$s0" "$s1"), wrk+backend CPU % ${wrk_cpu:-?}+$backend_cpu${pid[$n]:+, proxy CPU $((t1 - t0)) ticks}"
}

# --- equal CPU budget ("capped") ---------------------------------------------
# On 2 cores wrk and the backend share one core and saturate it before nginx
# or hubd saturate theirs, so uncapped requests/s top out near "direct". A
# CPU quota on the proxy (the same for every proxy) makes the proxy the
# bottleneck; its requests/s are then its capacity per CPU-share.
cap_root=""
if [[ -w /sys/fs/cgroup/cpu/cgroup.procs && -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]]; then
    cap_root=/sys/fs/cgroup/cpu # cgroup v1
elif [[ -w /sys/fs/cgroup/cgroup.procs ]] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    cap_root=/sys/fs/cgroup # cgroup v2
fi
cap_dir=""
cap_setup() {
    [[ -n "$cap_root" ]] || return 1
    cap_dir="$cap_root/hubd-bench-$$"
    mkdir -p "$cap_dir" || return 1
    local quota=$((cap_pct * 1000))
    if [[ -e "$cap_dir/cpu.cfs_quota_us" ]]; then
        echo 100000 >"$cap_dir/cpu.cfs_period_us" && echo "$quota" >"$cap_dir/cpu.cfs_quota_us"
    else
        echo "$quota 100000" >"$cap_dir/cpu.max"
    fi
}
cap_move() { # PID DIR: every process of PID's process group into cgroup DIR
    local p
    for p in $(ps -o pid= -g "$1" 2>/dev/null); do echo "$p" >"$2/cgroup.procs" 2>/dev/null || true; done
}
declare -A cap_rps cap_cpupct
measure_capped() { # TARGET ROUND
    local n=$1 r=$2 url="http://127.0.0.1:${port[$1]}/services/bench/1k" out v t0 t1
    [[ -n "${pid[$n]:-}" && -n "$cap_dir" ]] || return 0
    cap_move "${pid[$n]}" "$cap_dir"
    "${load_pin[@]}" wrk -t"$threads" -c"$conns" -d2s "$url" >/dev/null
    t0=$(cpu_ticks "${pid[$n]}")
    out=$("${load_pin[@]}" wrk -t"$threads" -c"$conns" -d"$duration" --timeout 10s "$url")
    t1=$(cpu_ticks "${pid[$n]}")
    cap_move "${pid[$n]}" "$cap_root"
    v=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then rps_err[$n.capped]=1; fi
    cap_rps[$n]+=" $v"
    cap_cpupct[$n]+=" $(awk -v t=$((t1 - t0)) -v hz="$clk_tck" -v s="$wrk_seconds" 'BEGIN {printf "%.0f", 100 * t / hz / s}')"
    log "$n round $r: $v req/s with $cap_pct % of one CPU (used $(awk -v t=$((t1 - t0)) -v hz="$clk_tck" -v s="$wrk_seconds" 'BEGIN {printf "%.0f", 100 * t / hz / s}') %)"
}

measure_download() { # TARGET ROUND
    local n=$1 r=$2 url="http://127.0.0.1:${port[$1]}/services/bench/100m" speed sampler peak bps size
    if [[ -n "${pid[$n]:-}" ]]; then
        (while :; do rss_kib "${pid[$n]}"; sleep 0.05; done) >"$work/rss-$n.txt" &
        sampler=$!
    fi
    speed=$(timeout 120 "${load_pin[@]}" curl -s -o /dev/null -w '%{speed_download} %{size_download}' "$url")
    if [[ -n "${pid[$n]:-}" ]]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        peak=$(sort -n "$work/rss-$n.txt" | tail -1)
        dlrss[$n]+=" $((peak / 1024))"
    fi
    read -r bps size <<<"$speed"
    dl[$n]+=" $(awk -v b="$bps" 'BEGIN {printf "%.0f", b / 1048576}')"
    [[ "$size" == $((100 * 1024 * 1024)) ]] || dl_short[$n]="$size B"
    log "$n round $r: 100 MiB download at $(awk -v b="$bps" 'BEGIN {printf "%.0f", b / 1048576}') MiB/s"
}

measure_echo() { # TARGET ROUND
    local n=$1 r=$2 result t0=0 t1=0 msgs
    if [[ -n "${pid[$n]:-}" ]]; then t0=$(cpu_ticks "${pid[$n]}"); fi
    result=$("${load_pin[@]}" timeout 60 python3 "$ws_tool" echo "${wsport[$n]}" /services/ws/echo "$ws_echo" 10 || echo '{}')
    echo_rate[$n]+=" $(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("msgs_per_s","n/a"))' "$result")"
    echo_p99[$n]+=" $(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("p99_ms","n/a"))' "$result")"
    if [[ -n "${pid[$n]:-}" ]]; then
        # Proxy CPU per round trip (two relayed messages); includes opening
        # and closing the connections.
        t1=$(cpu_ticks "${pid[$n]}")
        msgs=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("messages",0))' "$result")
        echo_cpu[$n]+=" $(awk -v t=$((t1 - t0)) -v hz="$clk_tck" -v q="$msgs" 'BEGIN {printf "%.1f", (q > 0 ? 1e6 * t / hz / q : 0)}')"
    fi
    log "$n round $r: WebSocket echo $result${pid[$n]:+, proxy CPU $((t1 - t0)) ticks}"
}

declare -A rps_err dl_short
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ "$parts" == *",capped,"* ]] && ! cap_setup; then
    log "no writable CPU cgroup (cgroup v1 cpu or v2 with the cpu controller): the capped measurement is left out"
    parts=${parts//,capped,/,}
fi
for part in wrk capped download echo; do
    [[ "$parts" == *",$part,"* ]] || continue
    # Echo runs before the idle test: the Python echo backend then has no
    # thousands of closing connections on its hands.
    for ((r = 1; r <= rounds; r++)); do
        for n in $(order "$r"); do "measure_$part" "$n" "$r"; done
    done
done

for n in "${names[@]}"; do
    [[ -n "${pid[$n]:-}" && "$parts" == *",idle,"* ]] || continue
    sleep 1
    before=$(rss_kib "${pid[$n]}")
    idle_rss[$n]="$((before / 1024)) MiB"
    log "$n: opening $ws_idle idle WebSockets"
    "${load_pin[@]}" timeout 300 python3 "$ws_tool" idle "${wsport[$n]}" /services/ws/socket "$ws_idle" 6 \
        >"$work/idle-$n.txt" 2>&1 &
    client=$!
    deadline=$((SECONDS + 240))
    while ((SECONDS < deadline)) && ! grep -q '^open' "$work/idle-$n.txt" && kill -0 "$client" 2>/dev/null; do
        sleep 0.2
    done
    sleep 2 # let the proxy settle (buffers released, timers armed)
    after=$(rss_kib "${pid[$n]}")
    wait "$client" || true
    opened=$(awk '/^open/ {print $2}' "$work/idle-$n.txt")
    result=$(tail -1 "$work/idle-$n.txt")
    if [[ -n "$opened" && "$opened" -gt 0 ]]; then
        ws_per[$n]=$(awk -v a="$after" -v b="$before" -v n="$opened" 'BEGIN {printf "%.1f", (a - b) / n}')
        alive=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["alive_after_hold"])' "$result" 2>/dev/null || echo "?")
        ws_note[$n]="$opened open, $alive echo after 6 s"
    else
        ws_per[$n]="n/a"
        ws_note[$n]="failed: $(head -c 200 "$work/idle-$n.txt")"
    fi
    log "$n: ${ws_per[$n]} KiB per idle WebSocket (${ws_note[$n]})"
done
log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- table -----------------------------------------------------------------
# median FORMAT "V1 V2 ...": the median (mean of the middle two for an even count).
median() {
    tr ' ' '\n' <<<"$2" | awk 'NF' | sort -g |
        awk -v f="$1" '{v[NR] = $1} END {if (NR) printf f "\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
spread() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '{v[NR] = $1} END {if (NR) printf "%s–%s", v[1], v[NR]}'; }
declare -A m_rps m_p99 m_cpu m_cpupct m_dl m_dlrss m_echo m_echo_p99 m_echo_cpu m_cap m_cap_pct
for n in "${names[@]}"; do
    if [[ -n "${cap_rps[$n]:-}" ]]; then
        m_cap[$n]=$(median %.0f "${cap_rps[$n]}")
        [[ -n "${rps_err[$n.capped]:-}" ]] && m_cap[$n]+=" (errors)"
        m_cap_pct[$n]=$(median %.0f "${cap_cpupct[$n]}")
    fi
    m_rps[$n]=$(median %.0f "${rps[$n]:-}")
    [[ -n "${rps_err[$n]:-}" ]] && m_rps[$n]+=" (errors)"
    m_p99[$n]=$(median %.2f "${p99[$n]:-}")
    m_cpu[$n]=$(median %.1f "${cpu_us[$n]:-}")
    m_cpupct[$n]=$(median %.0f "${cpu_pct[$n]:-}")
    m_dl[$n]=$(median %.0f "${dl[$n]:-}")
    [[ -n "${dl_short[$n]:-}" ]] && m_dl[$n]+=" (short: ${dl_short[$n]})"
    if [[ -n "${dlrss[$n]:-}" ]]; then m_dlrss[$n]="$(median %.0f "${dlrss[$n]:-}") MiB"; else m_dlrss[$n]="–"; fi
    m_echo[$n]=$(median %.0f "${echo_rate[$n]:-}")
    m_echo_p99[$n]=$(median %.1f "${echo_p99[$n]:-}")
    m_echo_cpu[$n]=$(median %.1f "${echo_cpu[$n]:-}")
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f×", a / b; else print "–" }'; }
has_chp=0
[[ -n "${pid[chp]:-}" ]] && has_chp=1

header="| | direct | nginx $(nginx -v 2>&1 | sed 's|.*nginx/||') (proxy) | hubd |"
sep="|---|---:|---:|---:|"
if ((has_chp)); then header+=" CHP $chp_version |"; sep+="---:|"; fi
header+=" hubd vs nginx |"
sep+="---:|"
if ((has_chp)); then header+=" hubd vs CHP |"; sep+="---:|"; fi

row() { # LABEL ASSOC HIGHER_IS_BETTER(1/0, 2: no ratio)
    local label=$1 better=$3
    local -n arr=$2
    local line="| $label | ${arr[direct]:-–} | ${arr[nginx]:-–} | ${arr[hubd]:-–} |"
    ((has_chp)) && line+=" ${arr[chp]:-–} |"
    local h=${arr[hubd]:-0} x=${arr[nginx]:-0} c=${arr[chp]:-0}
    h=${h%% *}; x=${x%% *}; c=${c%% *}
    if ((better == 2)); then
        line+=" |"
        ((has_chp)) && line+=" |"
        echo "$line"
        return
    fi
    if ((better)); then line+=" $(ratio "$h" "$x") |"; else line+=" $(ratio "$x" "$h") |"; fi
    if ((has_chp)); then
        if ((better)); then line+=" $(ratio "$h" "$c") |"; else line+=" $(ratio "$c" "$h") |"; fi
    fi
    echo "$line"
}

echo
echo "Proxy benchmark, $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')),"
echo "wrk -t$threads -c$conns -d$duration --latency; $pinning${BENCH_NICE:+, nice $BENCH_NICE}; median of $rounds rounds."
echo "Ratios: above 1× means hubd is better."
echo
echo "$header"
echo "$sep"
row "requests/s, 1 KiB file" m_rps 1
row "p99 latency, ms" m_p99 0
row "proxy CPU per request, µs" m_cpu 0
row "proxy CPU use during wrk, % of one core" m_cpupct 2
if [[ "$parts" == *",capped,"* ]]; then
    row "requests/s with $cap_pct % of one CPU per proxy" m_cap 1
    row "proxy CPU use then, % of one core" m_cap_pct 2
fi
row "100 MiB download, MiB/s" m_dl 1
row "proxy peak RSS during download" m_dlrss 0
row "proxy RSS before WebSockets" idle_rss 0
row "RSS per idle WebSocket, KiB ($ws_idle)" ws_per 0
row "WebSocket echo, msgs/s ($ws_echo conns)" m_echo 1
row "WebSocket echo p99, ms" m_echo_p99 0
row "proxy CPU per echo round trip, µs" m_echo_cpu 0
echo
echo "Spread over the $rounds rounds (min–max):"
echo
for n in "${names[@]}"; do
    line="- $n:"
    [[ -n "${rps[$n]:-}" ]] && line+=" requests/s $(spread "${rps[$n]}"), p99 $(spread "${p99[$n]}") ms${cpu_us[$n]:+, proxy CPU $(spread "${cpu_us[$n]}") µs/request}; CPU busy % (cpu0/cpu1, anyone's) during wrk:${busy[$n]}; wrk + backend CPU %:${load_cpu[$n]};"
    [[ -n "${cap_rps[$n]:-}" ]] && line+=" capped requests/s $(spread "${cap_rps[$n]}");"
    [[ -n "${dl[$n]:-}" ]] && line+=" download $(spread "${dl[$n]}") MiB/s;"
    [[ -n "${echo_rate[$n]:-}" ]] && line+=" echo $(spread "${echo_rate[$n]}") msgs/s (p99 $(spread "${echo_p99[$n]}") ms${echo_cpu[$n]:+, proxy CPU $(spread "${echo_cpu[$n]}") µs per round trip})"
    echo "$line"
done
echo
for n in "${names[@]}"; do [[ -n "${ws_note[$n]:-}" ]] && echo "- $n idle WebSockets: ${ws_note[$n]}"; done
true
