// SPDX-License-Identifier: BSD-3-Clause
// The metrics store and Prometheus text format 0.0.4 (see metrics.h).
#include "app/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace hubd::metrics {

namespace {

constexpr std::array<std::string_view, static_cast<size_t>(Method::Count)> kMethodNames{
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"};

// JupyterHub 3.0's handler classes (module.Class, as prometheus_log_method writes them).
constexpr std::array<std::string_view, static_cast<size_t>(Handler::Count)> kHandlerNames{
    "jupyterhub.handlers.pages.RootHandler",
    "jupyterhub.handlers.pages.HomeHandler",
    "jupyterhub.handlers.login.LoginHandler",
    "jupyterhub.handlers.login.LogoutHandler",
    "jupyterhub.handlers.pages.SpawnHandler",
    "jupyterhub.handlers.pages.SpawnPendingHandler",
    "jupyterhub.handlers.base.UserUrlHandler",
    "jupyterhub.handlers.base.UserRedirectHandler",
    "jupyterhub.handlers.pages.TokenPageHandler",
    "jupyterhub.handlers.pages.AdminHandler",
    "jupyterhub.handlers.static.CacheControlStaticFilesHandler",
    "jupyterhub.handlers.static.LogoHandler",
    "jupyterhub.handlers.pages.HealthCheckHandler",
    "jupyterhub.handlers.metrics.MetricsHandler",
    "jupyterhub.handlers.pages.ProxyErrorHandler",
    "jupyterhub.handlers.base.Template404",
    "jupyterhub.handlers.base.PrefixRedirectHandler",
    "jupyterhub.apihandlers.hub.RootAPIHandler",
    "jupyterhub.apihandlers.hub.InfoAPIHandler",
    "jupyterhub.apihandlers.users.SelfAPIHandler",
    "jupyterhub.apihandlers.users.UserListAPIHandler",
    "jupyterhub.apihandlers.users.UserAPIHandler",
    "jupyterhub.apihandlers.users.UserServerAPIHandler",
    "jupyterhub.apihandlers.users.SpawnProgressAPIHandler",
    "jupyterhub.apihandlers.users.ActivityAPIHandler",
    "jupyterhub.apihandlers.users.UserTokenListAPIHandler",
    "jupyterhub.apihandlers.users.UserTokenAPIHandler",
    "jupyterhub.apihandlers.groups.GroupListAPIHandler",
    "jupyterhub.apihandlers.groups.GroupAPIHandler",
    "jupyterhub.apihandlers.groups.GroupUsersAPIHandler",
    "jupyterhub.apihandlers.groups.GroupPropertiesAPIHandler",
    "jupyterhub.apihandlers.services.ServiceListAPIHandler",
    "jupyterhub.apihandlers.services.ServiceAPIHandler",
    "jupyterhub.apihandlers.proxy.ProxyAPIHandler",
    "jupyterhub.apihandlers.auth.TokenAPIHandler",
    "jupyterhub.apihandlers.auth.CookieAPIHandler",
    "jupyterhub.apihandlers.auth.OAuthAuthorizeHandler",
    "jupyterhub.apihandlers.auth.OAuthTokenHandler",
    "jupyterhub.apihandlers.hub.ShutdownAPIHandler",
    "jupyterhub.apihandlers.base.API404",
    "hubd.ServerLogHandler",
    "hubd.StopServerHandler",
    "hubd.OtherHandler",
};

constexpr std::array<std::string_view, static_cast<size_t>(SpawnStatus::Count)> kSpawnStatus{
    "success", "failure", "already-pending", "throttled", "too-many-users"};
constexpr std::array<std::string_view, static_cast<size_t>(OpStatus::Count)> kOpStatus{"success", "failure"};
constexpr std::array<std::string_view, static_cast<size_t>(LoginOutcome::Count)> kLoginOutcome{
    "success", "failure", "throttled", "locked"};

// Path segments of `path` (empty ones skipped), at most N; `count` says how many there were.
template <size_t N>
struct Segments {
    std::array<std::string_view, N> at{};
    size_t count = 0;
};

template <size_t N>
Segments<N> split(std::string_view path) {
    Segments<N> s;
    size_t pos = 0;
    while (pos < path.size()) {
        if (path[pos] == '/') {
            ++pos;
            continue;
        }
        size_t end = std::min(path.find('/', pos), path.size());
        if (s.count < N) s.at[s.count] = path.substr(pos, end - pos);
        ++s.count;
        pos = end;
    }
    return s;
}

Handler apiHandlerOf(std::string_view rest) {  // rest: below /api
    auto s = split<5>(rest);
    const auto& a = s.at;
    const size_t n = s.count;
    if (n == 0) return Handler::ApiRoot;
    if (n == 1) {
        if (a[0] == "info") return Handler::ApiInfo;
        if (a[0] == "user") return Handler::ApiSelf;
        if (a[0] == "users") return Handler::ApiUserList;
        if (a[0] == "groups") return Handler::ApiGroupList;
        if (a[0] == "services") return Handler::ApiServiceList;
        if (a[0] == "proxy") return Handler::ApiProxy;
        if (a[0] == "shutdown") return Handler::ApiShutdown;
        if (a[0] == "health") return Handler::Health;
        if (a[0] == "metrics") return Handler::Metrics;
    }
    if (a[0] == "users" && n >= 2) {
        if (n == 2) return Handler::ApiUser;
        if (a[2] == "server" && n == 3) return Handler::ApiUserServer;
        if (a[2] == "server" && n == 4 && a[3] == "progress") return Handler::ApiSpawnProgress;
        if (a[2] == "server" && n == 4 && a[3] == "log") return Handler::HubdServerLog;
        if (a[2] == "servers" && (n == 3 || n == 4)) return Handler::ApiUserServer;  // servers/ = default
        if (a[2] == "servers" && n == 5 && a[4] == "progress") return Handler::ApiSpawnProgress;
        if (a[2] == "tokens" && n == 3) return Handler::ApiUserTokenList;
        if (a[2] == "tokens" && n == 4) return Handler::ApiUserToken;
        if (a[2] == "activity" && n == 3) return Handler::ApiUserActivity;
    }
    if (a[0] == "groups" && n >= 2) {
        if (n == 2) return Handler::ApiGroup;
        if (n == 3 && a[2] == "users") return Handler::ApiGroupUsers;
        if (n == 3 && a[2] == "properties") return Handler::ApiGroupProperties;
    }
    if (a[0] == "services" && n == 2) return Handler::ApiService;
    if (a[0] == "authorizations" && n >= 2) {
        if (a[1] == "token") return Handler::ApiAuthToken;
        if (a[1] == "cookie") return Handler::ApiAuthCookie;
    }
    if (a[0] == "oauth2" && n == 2) {
        if (a[1] == "authorize") return Handler::ApiOAuthAuthorize;
        if (a[1] == "token") return Handler::ApiOAuthToken;
    }
    return Handler::ApiNotFound;
}

bool startsWith(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

void appendLabels(std::string& out, std::span<const Label> labels, const Label* extra) {
    if (labels.empty() && !extra) return;
    out += '{';
    bool first = true;
    auto one = [&](const Label& l) {
        if (!first) out += ',';
        first = false;
        out.append(l.name);
        out += "=\"";
        out += escapeLabelValue(l.value);
        out += '"';
    };
    for (const auto& l : labels) one(l);
    if (extra) one(*extra);
    out += '}';
}

}  // namespace

// ------------------------------------------------------------ text format

std::string escapeHelp(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string escapeLabelValue(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string formatValue(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    // Shortest round-trip digits, in fixed notation unless repr() would
    // switch to an exponent (below 1e-4, from 1e16 on): 1e-05, 1e+16.
    const double magnitude = std::fabs(value);
    const auto format = magnitude != 0 && (magnitude < 1e-4 || magnitude >= 1e16)
                            ? std::chars_format::scientific
                            : std::chars_format::fixed;
    char buf[400];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, format);
    std::string out(buf, ec == std::errc() ? end : buf);
    if (out.find_first_of(".e") == std::string::npos) out += ".0";  // repr() marks a float: 1.0, not 1
    return out;
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_.append(name);
    out_ += ' ';
    out_ += escapeHelp(help);
    out_ += "\n# TYPE ";
    out_.append(name);
    out_ += ' ';
    out_.append(type);
    out_ += '\n';
}

void Exposition::sample(std::string_view name, std::span<const Label> labels, double value) {
    out_.append(name);
    appendLabels(out_, labels, nullptr);
    out_ += ' ';
    out_ += formatValue(value);
    out_ += '\n';
}

void Exposition::sample(std::string_view name, std::initializer_list<Label> labels, double value) {
    sample(name, std::span<const Label>(labels.begin(), labels.size()), value);
}

// ------------------------------------------------------------ histograms

void Histogram::observe(std::chrono::nanoseconds value, std::span<const double> bounds) {
    const int64_t ns = std::max<int64_t>(0, value.count());
    const double seconds = static_cast<double>(ns) / 1e9;
    size_t i = 0;
    // le: a value equal to a bound belongs to that bucket.
    while (i < bounds.size() && seconds > bounds[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sumNanos_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
}

uint64_t Histogram::count() const {
    uint64_t total = 0;
    for (const auto& c : counts_) total += c.load(std::memory_order_relaxed);
    return total;
}

void Histogram::write(Exposition& out, std::string_view name, std::span<const Label> labels,
                      std::span<const double> bounds) const {
    std::string& text = out.text();
    const std::string bucket = std::string(name) + "_bucket";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds.size(); ++i) {
        cumulative += counts_[i].load(std::memory_order_relaxed);
        const std::string le = i < bounds.size() ? formatValue(bounds[i]) : "+Inf";
        const Label leLabel{"le", le};
        text += bucket;
        appendLabels(text, labels, &leLabel);
        text += ' ';
        text += formatValue(static_cast<double>(cumulative));
        text += '\n';
    }
    // Counted from the same loads as the buckets, so _count equals the +Inf bucket.
    out.sample(std::string(name) + "_count", labels, static_cast<double>(cumulative));
    out.sample(std::string(name) + "_sum", labels,
               static_cast<double>(sumNanos_.load(std::memory_order_relaxed)) / 1e9);
}

// ------------------------------------------------------------ label sets

Method methodOf(std::string_view method) {
    for (size_t i = 0; i + 1 < kMethodNames.size(); ++i)
        if (kMethodNames[i] == method) return static_cast<Method>(i);
    return Method::Other;
}

std::string_view methodName(Method method) {
    return kMethodNames[static_cast<size_t>(method)];
}

std::string_view handlerName(Handler handler) {
    return kHandlerNames[static_cast<size_t>(handler)];
}

Handler handlerOf(std::string_view rest, bool underHub) {
    if (!underHub) return startsWith(rest, "/user/") ? Handler::UserUrl : Handler::PrefixRedirect;
    if (rest == "/api" || startsWith(rest, "/api/")) return apiHandlerOf(rest.substr(4));
    if (rest == "/" || rest.empty()) return Handler::Root;
    if (rest == "/home") return Handler::Home;
    if (rest == "/login") return Handler::Login;
    if (rest == "/logout") return Handler::Logout;
    if (rest == "/spawn" || startsWith(rest, "/spawn/")) return Handler::Spawn;
    if (startsWith(rest, "/spawn-pending/")) return Handler::SpawnPending;
    if (startsWith(rest, "/user/")) return Handler::UserUrl;
    if (startsWith(rest, "/user-redirect/")) return Handler::UserRedirect;
    if (rest == "/token") return Handler::Token;
    if (rest == "/admin") return Handler::Admin;
    if (startsWith(rest, "/static/")) return Handler::Static;
    if (rest == "/logo" || rest == "/favicon.ico") return Handler::Logo;
    if (rest == "/health") return Handler::Health;
    if (rest == "/metrics") return Handler::Metrics;
    if (startsWith(rest, "/error/")) return Handler::ProxyError;
    if (rest == "/server-log") return Handler::HubdServerLog;
    if (rest == "/stop") return Handler::HubdStop;
    return Handler::NotFound;
}

bool mentionsLockedAccount(std::string_view message) {
    // pam_faillock: "The account is locked due to 3 failed logins."; pam_tally2 says "Account locked".
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    auto contains = [&](std::string_view needle) {
        return std::search(message.begin(), message.end(), needle.begin(), needle.end(),
                           [&](char a, char b) { return lower(a) == b; }) != message.end();
    };
    return contains("account is locked") || contains("account locked");
}

// ------------------------------------------------------------ the store

Registry::Registry() : requests_(new RequestSlot[kRequestSlots]) {}

void Registry::observeRequest(Method method, Handler handler, int status, std::chrono::nanoseconds duration) {
    if (status < 100 || status > 999) status = 999;
    const uint32_t key = (static_cast<uint32_t>(method) << 24 | static_cast<uint32_t>(handler) << 12 |
                          static_cast<uint32_t>(status)) +
                         1;
    size_t i = (key * 2654435761u) % kRequestSlots;
    for (size_t probes = 0; probes < kRequestSlots; ++probes, i = (i + 1) % kRequestSlots) {
        RequestSlot& slot = requests_[i];
        uint32_t current = slot.key.load(std::memory_order_acquire);
        if (current == 0) {
            // Claim the free slot; another thread may claim it first with its own key.
            if (slot.key.compare_exchange_strong(current, key, std::memory_order_acq_rel)) {
                usedSlots_.fetch_add(1, std::memory_order_relaxed);
                current = key;
            }
        }
        if (current == key) return slot.histogram.observe(duration, kDefaultBuckets);
    }
    dropped_.fetch_add(1, std::memory_order_relaxed);
}

void Registry::observeSpawn(SpawnStatus status, std::chrono::nanoseconds duration) {
    spawn_[static_cast<size_t>(status)].observe(duration, kSpawnBuckets);
}
void Registry::observeStop(OpStatus status, std::chrono::nanoseconds duration) {
    stop_[static_cast<size_t>(status)].observe(duration, kDefaultBuckets);
}
void Registry::observeProxyAdd(OpStatus status, std::chrono::nanoseconds duration) {
    proxyAdd_[static_cast<size_t>(status)].observe(duration, kDefaultBuckets);
}
void Registry::observeProxyDelete(OpStatus status, std::chrono::nanoseconds duration) {
    proxyDelete_[static_cast<size_t>(status)].observe(duration, kDefaultBuckets);
}
void Registry::observeHubStartup(std::chrono::nanoseconds duration) {
    hubStartup_.observe(duration, kDefaultBuckets);
}
void Registry::observeInitSpawners(std::chrono::nanoseconds duration) {
    initSpawners_.observe(duration, kDefaultBuckets);
}
void Registry::countLogin(LoginOutcome outcome) {
    logins_[static_cast<size_t>(outcome)].fetch_add(1, std::memory_order_relaxed);
}
uint64_t Registry::logins(LoginOutcome outcome) const {
    return logins_[static_cast<size_t>(outcome)].load(std::memory_order_relaxed);
}

void Registry::writeRequestDurations(Exposition& out) const {
    out.family("jupyterhub_request_duration_seconds", "histogram", "request duration for all HTTP requests");
    std::vector<uint32_t> keys;
    for (size_t i = 0; i < kRequestSlots; ++i)
        if (uint32_t k = requests_[i].key.load(std::memory_order_acquire)) keys.push_back(k);
    // Sorted by method, handler, then status: the same input gives the same page.
    std::sort(keys.begin(), keys.end());
    for (uint32_t key : keys) {
        const uint32_t k = key - 1;
        const auto method = static_cast<Method>(k >> 24);
        const auto handler = static_cast<Handler>((k >> 12) & 0xfff);
        const std::string code = std::to_string(k & 0xfff);
        const std::array<Label, 3> labels{Label{"method", methodName(method)},
                                          Label{"handler", handlerName(handler)}, Label{"code", code}};
        size_t i = (key * 2654435761u) % kRequestSlots;
        while (requests_[i].key.load(std::memory_order_acquire) != key) i = (i + 1) % kRequestSlots;
        requests_[i].histogram.write(out, "jupyterhub_request_duration_seconds", labels, kDefaultBuckets);
    }
}

void Registry::writeSpawnDurations(Exposition& out) const {
    out.family("jupyterhub_server_spawn_duration_seconds", "histogram",
               "time taken for server spawning operation");
    for (size_t i = 0; i < spawn_.size(); ++i) {
        const std::array<Label, 1> labels{Label{"status", kSpawnStatus[i]}};
        spawn_[i].write(out, "jupyterhub_server_spawn_duration_seconds", labels, kSpawnBuckets);
    }
}

void Registry::writeOperations(Exposition& out) const {
    auto byStatus = [&](std::string_view name, std::string_view help, const auto& histograms) {
        out.family(name, "histogram", help);
        for (size_t i = 0; i < histograms.size(); ++i) {
            const std::array<Label, 1> labels{Label{"status", kOpStatus[i]}};
            histograms[i].write(out, name, labels, kDefaultBuckets);
        }
    };
    out.family("jupyterhub_hub_startup_duration_seconds", "histogram", "Time taken for Hub to start");
    hubStartup_.write(out, "jupyterhub_hub_startup_duration_seconds", {}, kDefaultBuckets);
    out.family("jupyterhub_init_spawners_duration_seconds", "histogram",
               "Time taken for spawners to initialize");
    initSpawners_.write(out, "jupyterhub_init_spawners_duration_seconds", {}, kDefaultBuckets);
    byStatus("jupyterhub_proxy_add_duration_seconds", "duration for adding user routes to proxy", proxyAdd_);
    byStatus("jupyterhub_server_stop_seconds", "time taken for server stopping operation", stop_);
    byStatus("jupyterhub_proxy_delete_duration_seconds", "duration for deleting user routes from proxy",
             proxyDelete_);
}

void Registry::writeHubdCounters(Exposition& out) const {
    out.family("hubd_logins_total", "counter",
               "hubd: login attempts by outcome (throttled: refused by the login throttle before the "
               "password was checked; locked: PAM said the account is locked)");
    for (size_t i = 0; i < logins_.size(); ++i)
        out.sample("hubd_logins_total", {{"outcome", kLoginOutcome[i]}},
                   static_cast<double>(logins_[i].load(std::memory_order_relaxed)));
    out.family("hubd_metrics_dropped_observations_total", "counter",
               "hubd: request observations not recorded because the request series table was full");
    out.sample("hubd_metrics_dropped_observations_total", {},
               static_cast<double>(dropped_.load(std::memory_order_relaxed)));
}

Registry& registry() {
    static Registry instance;
    return instance;
}

}  // namespace hubd::metrics
