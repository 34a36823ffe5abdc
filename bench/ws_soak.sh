#!/usr/bin/env bash
# WebSocket soak through hubd's proxy: BENCH_SOAK_CONNS WebSockets held open
# through hubd to the stdlib echo backend (bench/ws_tool.py server), with
# steady echo traffic and churn (connections closed in four ways and
# reopened), for BENCH_SOAK_SECONDS. hubd's RSS and open fds are sampled
# every BENCH_SOAK_EVERY s; the script prints the series, first/last/max and
# the least-squares slope, and fails if hubd dies or leaks fds.
# Loopback only; everything started is stopped on exit. See bench/README.md.
#
# Environment (all optional):
#   HUBD=PATH                 hubd binary (default: build/hubd/hubd)
#   BENCH_SOAK_SECONDS=600    soak length
#   BENCH_SOAK_CONNS=1000     WebSockets held open at once
#   BENCH_SOAK_RATE=2000      echo round trips per second, all connections together
#   BENCH_SOAK_CHURN=20       connections closed and reopened per second
#   BENCH_SOAK_EVERY=10       seconds between samples
#   BENCH_PORT_BASE=19100     ports BASE+2, BASE+10, BASE+11
#   BENCH_PIN=1               hubd on CPU 1, client and backend on CPU 0
#   BENCH_KEEP=1              keep the temporary directory (config, logs, samples)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
hubd_bin="${HUBD:-$repo_root/build/hubd/hubd}"
seconds="${BENCH_SOAK_SECONDS:-600}"
conns="${BENCH_SOAK_CONNS:-1000}"
rate="${BENCH_SOAK_RATE:-2000}"
churn="${BENCH_SOAK_CHURN:-20}"
every="${BENCH_SOAK_EVERY:-10}"
base="${BENCH_PORT_BASE:-19100}"
pin="${BENCH_PIN:-1}"
ws_tool="$repo_root/bench/ws_tool.py"

ws_port=$((base + 2))
hubd_port=$((base + 10))
hubd_hub_port=$((base + 11))

log() { printf 'soak: %s\n' "$*" >&2; }
die() { printf 'soak: error: %s\n' "$*" >&2; exit 1; }

for tool in curl python3 setsid; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/setup-debian.sh"
done
[[ -x "$hubd_bin" ]] || die "no hubd at $hubd_bin (build it, or set HUBD)"

proxy_pin=()
load_pin=()
if [[ "$pin" == 1 ]] && (($(nproc) >= 2)) && command -v taskset >/dev/null; then
    proxy_pin=(taskset -c 1)
    load_pin=(taskset -c 0)
else
    log "not pinning CPUs (BENCH_PIN=$pin, $(nproc) CPUs)"
fi

# Each WebSocket is 2 fds in hubd and 1 in each of the client and backend.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) >= 2 * conns + 1000)) || die "ulimit -n is $(ulimit -n): too low for $conns WebSockets"

work=$(mktemp -d /tmp/hubd-ws-soak.XXXXXX)
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
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in "$ws_port" "$hubd_port" "$hubd_hub_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use (set BENCH_PORT_BASE)"; fi
done

wait_port() { # PORT
    local deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

setsid "${load_pin[@]}" python3 "$ws_tool" server "$ws_port" >"$work/wsecho.log" 2>&1 </dev/null &
pids+=("$!")
wait_port "$ws_port" || die "WebSocket echo backend did not start: $(tail -5 "$work/wsecho.log")"

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
c.JupyterHub.services = [{'name': 'ws', 'url': 'http://127.0.0.1:$ws_port'}]
EOF
if ((EUID == 0)); then chown -R nobody "$work/hubd"; fi
(cd "$work/hubd" && exec setsid "${proxy_pin[@]}" "${as_hub[@]}" "$hubd_bin" -f config.py \
    "--JupyterHub.bind_url=http://127.0.0.1:$hubd_port" \
    "--JupyterHub.hub_bind_url=http://127.0.0.1:$hubd_hub_port" >"$work/hubd.log" 2>&1 </dev/null) &
hubd_pid=$!
pids+=("$hubd_pid")
deadline=$((SECONDS + 60))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$hubd_port/hub/api")" == 200 ]]; do
    ((SECONDS < deadline)) && kill -0 "$hubd_pid" 2>/dev/null || die "hubd did not start: $(tail -5 "$work/hubd.log")"
    sleep 0.2
done
[[ "$(cat "/proc/$hubd_pid/comm" 2>/dev/null)" == hubd ]] || die "pid $hubd_pid is not hubd (setsid forked?)"
sleep 1
read -r rss0 fds0 < <(python3 -c "
import sys; sys.path.insert(0, '$repo_root/bench'); from ws_tool import proc_sample
print(*proc_sample($hubd_pid))")
log "hubd pid $hubd_pid before the soak: RSS $rss0 KiB, $fds0 fds"
log "$conns WebSockets, $rate echoes/s, $churn reconnects/s, $seconds s (sample every $every s)"

timeout $((seconds + 300)) "${load_pin[@]}" python3 "$ws_tool" soak "$hubd_port" /services/ws/soak \
    "$conns" "$seconds" "$rate" "$churn" "$hubd_pid" "$every" | tee "$work/samples.jsonl" |
    python3 -c '
import json, sys
for line in sys.stdin:
    s = json.loads(line)
    if "t" in s:
        print("soak: t=%(t)4ds rss=%(rss_kib)s KiB fds=%(fds)s open=%(open)s msgs=%(msgs)s opens=%(opens)s errors=%(errors)s p99=%(p99_ms)s ms" % s,
              file=sys.stderr, flush=True)' || true
kill -0 "$hubd_pid" 2>/dev/null || die "hubd died during the soak: $(tail -5 "$work/hubd.log")"

# Everything closed: hubd should be back to its fds before the soak.
sleep 5
read -r rss_end fds_end < <(python3 -c "
import sys; sys.path.insert(0, '$repo_root/bench'); from ws_tool import proc_sample
print(*proc_sample($hubd_pid))")

python3 - "$work/samples.jsonl" "$rss0" "$fds0" "$rss_end" "$fds_end" "$conns" "$rate" "$churn" "$seconds" <<'EOF'
import json, sys
path, rss0, fds0, rss_end, fds_end = sys.argv[1], *map(int, sys.argv[2:6])
conns, rate, churn, seconds = sys.argv[6:10]
rows = [json.loads(l) for l in open(path) if l.strip()]
series = [r for r in rows if "t" in r and r["rss_kib"] is not None]
summary = next((r["summary"] for r in rows if "summary" in r), {})
if len(series) < 3:
    sys.exit("soak: error: fewer than 3 samples (see the log above)")

def slope(points):  # least squares, KiB per minute
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    return 60 * sum((t - mx) * (v - my) for t, v in points) / sxx if sxx else 0.0

# The first sample is taken as the connections open; steady state starts at
# the first sample with every connection open (usually t = EVERY).
steady = [r for r in series if r["t"] > 0] or series
rss = [r["rss_kib"] for r in steady]
print()
print(f"WebSocket soak through hubd: {conns} WebSockets, {rate} echoes/s, {churn} reconnects/s, {seconds} s")
print()
print("| t (s) | RSS (KiB) | fds | open | echoes | opens | errors | p99 (ms) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
print(f"| before | {rss0} | {fds0} | 0 | | | | |")
for r in series:
    print(f"| {r['t']} | {r['rss_kib']} | {r['fds']} | {r['open']} | {r['msgs']} | {r['opens']} | {r['errors']} | {r['p99_ms']} |")
print(f"| after close | {rss_end} | {fds_end} | 0 | | | | |")
print()
half = steady[len(steady) // 2:]
print(f"- RSS (steady state, t ≥ {steady[0]['t']} s): first {rss[0]} KiB, last {rss[-1]} KiB, max {max(rss)} KiB, "
      f"min {min(rss)} KiB; last − first {rss[-1] - rss[0]:+d} KiB")
print(f"- slope: {slope([(r['t'], r['rss_kib']) for r in steady]):+.1f} KiB/min over the steady state, "
      f"{slope([(r['t'], r['rss_kib']) for r in half]):+.1f} KiB/min over its second half")
print(f"- fds: before {fds0}, max {max(r['fds'] for r in series)}, after all closed {fds_end}")
print(f"- client totals: {summary}")
if fds_end > fds0 + 2:
    sys.exit(f"soak: error: hubd holds {fds_end - fds0} more fds after every WebSocket closed (fd leak)")
EOF
