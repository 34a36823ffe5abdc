// SPDX-License-Identifier: BSD-3-Clause
// The metrics page: JupyterHub 3.0's families (and 3.1's active_users,
// which dashboards use), then hubd's own, then the process_* families
// prometheus_client adds to every Python exporter. Gauges are computed
// here, at scrape time, from the hub's in-memory state: a scrape costs
// O(users), a request nothing extra.
#include "app/metrics_page.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "app/api_call.h"
#include "app/metrics.h"

namespace hubd {

using hubd::http::Request;
using hubd::http::Responder;
using hubd::http::Response;
using metrics::Exposition;

namespace {

void writeGauge(Exposition& out, std::string_view name, std::string_view help, double value) {
    out.family(name, "gauge", help);
    out.sample(name, {}, value);
}

void writeCounter(Exposition& out, std::string_view name, std::string_view help, double value) {
    out.family(name, "counter", help);
    out.sample(name, {}, value);
}

void writeUsersAndServers(Hub& hub, Exposition& out) {
    const auto users = hub.users();
    size_t running = 0;
    for (const auto* user : users)
        if (const ServerState* s = hub.servers().state(user->id))
            if (s->phase == ServerState::Phase::Running || s->phase == ServerState::Phase::Stopping)
                ++running;
    writeGauge(out, "jupyterhub_running_servers", "the number of user servers currently running",
               static_cast<double>(running));
    writeGauge(out, "jupyterhub_total_users", "total number of users", static_cast<double>(users.size()));
    // JupyterHub 3.1's gauge (3.0 had none); the dashboards' "active users" panels read it.
    out.family("jupyterhub_active_users", "gauge",
               "number of users who were active in the given time period");
    const hub::Timestamp now = hub::now();
    const std::pair<std::string_view, std::chrono::hours> periods[] = {{"24h", std::chrono::hours(24)},
                                                                       {"7d", std::chrono::hours(24 * 7)},
                                                                       {"30d", std::chrono::hours(24 * 30)}};
    for (const auto& [label, length] : periods) {
        size_t active = 0;
        for (const auto* user : users)
            if (user->lastActivity && *user->lastActivity >= now - length) ++active;
        out.sample("jupyterhub_active_users", {{"period", label}}, static_cast<double>(active));
    }
}

void writeHubdState(Hub& hub, Exposition& out) {
    out.family("hubd_login_throttle_entries", "gauge",
               "hubd: keys the login throttle currently tracks (sources: addresses or IPv6 /64s; usernames)");
    out.sample("hubd_login_throttle_entries", {{"table", "source"}},
               static_cast<double>(hub.loginThrottle().sourceEntries()));
    out.sample("hubd_login_throttle_entries", {{"table", "username"}},
               static_cast<double>(hub.loginThrottle().usernameEntries()));

    const hubd::proxy::ProxyStats p = hub.proxy().stats();
    writeCounter(out, "hubd_proxy_requests_total",
                 "hubd: requests the built-in proxy forwarded (exchanges started)",
                 static_cast<double>(p.requests));
    writeCounter(out, "hubd_proxy_websocket_tunnels_total", "hubd: WebSocket tunnels the proxy opened",
                 static_cast<double>(p.tunnels));
    writeCounter(out, "hubd_proxy_errors_total",
                 "hubd: proxied requests answered with a 5xx by the proxy itself, or aborted",
                 static_cast<double>(p.errors));
    writeGauge(out, "hubd_proxy_active_exchanges", "hubd: proxied requests and WebSocket tunnels in progress",
               static_cast<double>(p.active));
    writeGauge(out, "hubd_proxy_idle_backend_connections", "hubd: idle keep-alive connections to servers",
               static_cast<double>(p.idleBackendConnections));
    writeCounter(out, "hubd_proxy_reused_backend_connections_total",
                 "hubd: requests sent over a kept-alive backend connection",
                 static_cast<double>(p.reusedBackendConnections));
}

// prometheus_client's ProcessCollector, from /proc.
void writeProcess(Exposition& out) {
    std::ifstream statFile("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(statFile)), std::istreambuf_iterator<char>());
    // Fields after the command name, which is in parentheses and may hold spaces.
    size_t close = stat.rfind(')');
    if (close == std::string::npos) return;
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f{std::istream_iterator<std::string>(fields),
                               std::istream_iterator<std::string>()};
    // f[0] is field 3 (state): field n is f[n - 3].
    if (f.size() < 22) return;
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double pageSize = static_cast<double>(::sysconf(_SC_PAGESIZE));
    double bootTime = 0;
    std::ifstream procStat("/proc/stat");
    for (std::string line; std::getline(procStat, line);)
        if (line.rfind("btime ", 0) == 0) bootTime = std::stod(line.substr(6));

    writeGauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", std::stod(f[23 - 3]));
    writeGauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
               std::stod(f[24 - 3]) * pageSize);
    writeGauge(out, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
               bootTime + std::stod(f[22 - 3]) / ticks);
    writeCounter(out, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                 (std::stod(f[14 - 3]) + std::stod(f[15 - 3])) / ticks);
    size_t fds = 0;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
        while (const dirent* e = ::readdir(dir))
            if (e->d_name[0] != '.') ++fds;
        ::closedir(dir);
        writeGauge(out, "process_open_fds", "Number of open file descriptors.",
                   static_cast<double>(fds - 1));  // not the one reading the directory
    }
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0)
        writeGauge(out, "process_max_fds", "Maximum number of open file descriptors.",
                   static_cast<double>(limit.rlim_cur));
}

Response metricsResponse(Hub& hub) {
    Response r;
    r.body = renderMetrics(hub);
    r.set("Content-Type", std::string(metrics::kContentType));
    r.set("Cache-Control", "no-store");
    return r;
}

}  // namespace

void timeHubRequest(const Hub& hub, const Request& request, Responder& responder) {
    const std::string& prefix = hub.hubPrefix();  // "/hub/" under base_url
    const std::string_view path = request.path;
    metrics::Handler handler;
    if (path.compare(0, prefix.size(), prefix) == 0)
        handler = metrics::handlerOf(path.substr(prefix.size() - 1), true);
    else if (path.size() + 1 == prefix.size() && prefix.compare(0, path.size(), path) == 0)
        handler = metrics::Handler::PrefixRedirect;  // /hub → /hub/
    else
        handler = metrics::handlerOf(path.substr(std::min(path.size(), hub.baseUrl().size() - 1)), false);
    // Small and trivially copyable: std::function keeps it without allocating.
    struct Timing {
        metrics::Method method;
        metrics::Handler handler;
        int64_t startNanos;
    } timing{metrics::methodOf(request.method), handler,
             std::chrono::steady_clock::now().time_since_epoch().count()};
    responder.rewriteWith([timing](Response& response) {
        const auto start = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(timing.startNanos));
        metrics::registry().observeRequest(timing.method, timing.handler, response.status,
                                           metrics::since(start));
    });
}

std::string renderMetrics(Hub& hub) {
    const metrics::Registry& r = metrics::registry();
    Exposition out;
    out.text().reserve(64 * 1024);
    r.writeRequestDurations(out);
    r.writeSpawnDurations(out);
    writeUsersAndServers(hub, out);
    r.writeOperations(out);
    r.writeHubdCounters(out);
    writeHubdState(hub, out);
    writeProcess(out);
    return std::move(out.text());
}

void serveMetricsPage(Hub& hub, Request& request, Responder responder) {
    if (hub.settings().authenticatePrometheus) {
        const Principal principal = hub.authenticate(request, false);
        if (!holdsUnfiltered(principal.scopes, "read:metrics")) {
            Response r;
            r.status = 403;
            r.body =
                "403: reading metrics needs a token or login with the read:metrics scope (admins have it; "
                "give "
                "a service a role with it), or JupyterHub.authenticate_prometheus = False\n";
            r.set("Content-Type", "text/plain; charset=utf-8");
            return responder.send(std::move(r));
        }
    }
    responder.send(metricsResponse(hub));
}

void handleMetricsApi(Hub& hub, ApiCall& call) {
    const std::string& m = call.request.method;
    if (m != "GET" && m != "HEAD") return call.error(405, "Method Not Allowed");
    if (hub.settings().authenticatePrometheus && !call.require({"read:metrics"}, {})) return;
    call.send(metricsResponse(hub));
}

}  // namespace hubd
