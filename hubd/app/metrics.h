// SPDX-License-Identifier: BSD-3-Clause
// Prometheus metrics (GET /hub/metrics): the names, labels, buckets and
// help strings of JupyterHub 3.0's jupyterhub/metrics.py, so existing
// Grafana dashboards keep working, plus hubd_* metrics JupyterHub has no
// equivalent for (login outcomes, the built-in proxy). The list is in
// docs/api-compatibility.md ("Metrics").
//
// This file is the store and the text format; app/metrics_page.h serves it.
//
// MUST: label values come from fixed sets (the handler label is a
// JupyterHub handler class chosen by route, never the path; unknown methods
// are "other"), so no request can add a time series beyond a fixed bound.
// MUST: recording costs a few relaxed atomic increments and never
// allocates: requests and spawns record, only a scrape formats.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hubd::metrics {

// ------------------------------------------------------------ text format
// Prometheus text exposition format 0.0.4.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

struct Label {
    std::string_view name;
    std::string_view value;
};

// HELP text: backslash and newline escaped.
std::string escapeHelp(std::string_view text);
// Label values: backslash, double quote and newline escaped.
std::string escapeLabelValue(std::string_view value);
// A sample value or an `le` bound as prometheus_client writes it (Python's
// repr: "1.0", "0.005", "+Inf"), so `le` labels match JupyterHub's exactly.
std::string formatValue(double value);

// Appends families in the order written: # HELP, # TYPE, then samples.
class Exposition {
public:
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, std::initializer_list<Label> labels, double value);
    void sample(std::string_view name, std::span<const Label> labels, double value);
    std::string& text() { return out_; }

private:
    std::string out_;
};

// ------------------------------------------------------------ histograms
// prometheus_client's default buckets (request, stop, proxy, start-up).
inline constexpr std::array<double, 14> kDefaultBuckets{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                                        0.5,   0.75, 1,     2.5,  5,     7.5, 10};
// JupyterHub 3.0's spawn buckets: spawns take seconds to minutes.
inline constexpr std::array<double, 9> kSpawnBuckets{0.5, 1, 2.5, 5, 10, 15, 30, 60, 120};
inline constexpr size_t kMaxBuckets = 14;

// One histogram series. Counts per bucket (not cumulative: one increment
// per observation), cumulated when written; the sum in nanoseconds keeps
// the additions exact and integral.
class Histogram {
public:
    void observe(std::chrono::nanoseconds value, std::span<const double> bounds);
    // _bucket (cumulative, then +Inf), _sum and _count; `labels` come before le.
    void write(Exposition& out, std::string_view name, std::span<const Label> labels,
               std::span<const double> bounds) const;
    uint64_t count() const;

private:
    std::array<std::atomic<uint64_t>, kMaxBuckets + 1> counts_{};  // last: above every bound (+Inf)
    std::atomic<uint64_t> sumNanos_{0};
};

// ------------------------------------------------------------ label sets
enum class Method : uint8_t { Get, Head, Post, Put, Patch, Delete, Options, Other, Count };
Method methodOf(std::string_view method);
std::string_view methodName(Method method);

// The handler label: JupyterHub 3.0's handler class for the route (what
// dashboards filter on, e.g. handler!="...SpawnProgressAPIHandler"), or a
// hubd.* name for routes JupyterHub does not have.
enum class Handler : uint8_t {
    Root,            // /hub/
    Home,            // /hub/home
    Login,           // /hub/login
    Logout,          // /hub/logout
    Spawn,           // /hub/spawn
    SpawnPending,    // /hub/spawn-pending/…
    UserUrl,         // /hub/user/… (server not running or not yours)
    UserRedirect,    // /hub/user-redirect/…
    Token,           // /hub/token
    Admin,           // /hub/admin
    Static,          // /hub/static/…
    Logo,            // /hub/logo
    Health,          // /hub/health, /hub/api/health
    Metrics,         // /hub/metrics, /hub/api/metrics
    ProxyError,      // /hub/error/…
    NotFound,        // any other /hub/ page
    PrefixRedirect,  // outside /hub/: redirected into it
    ApiRoot,         // /hub/api
    ApiInfo,
    ApiSelf,             // /hub/api/user
    ApiUserList,         // /hub/api/users
    ApiUser,             // /hub/api/users/:name
    ApiUserServer,       // /hub/api/users/:name/server[s/…]
    ApiSpawnProgress,    // /hub/api/users/:name/server/progress
    ApiUserActivity,     // /hub/api/users/:name/activity
    ApiUserTokenList,    // /hub/api/users/:name/tokens
    ApiUserToken,        // /hub/api/users/:name/tokens/:id
    ApiGroupList,        // /hub/api/groups
    ApiGroup,            // /hub/api/groups/:name
    ApiGroupUsers,       // /hub/api/groups/:name/users
    ApiGroupProperties,  // /hub/api/groups/:name/properties
    ApiServiceList,
    ApiService,
    ApiProxy,
    ApiAuthToken,   // /hub/api/authorizations/token/…
    ApiAuthCookie,  // /hub/api/authorizations/cookie/…
    ApiOAuthAuthorize,
    ApiOAuthToken,
    ApiShutdown,
    ApiNotFound,    // any other /hub/api/ path
    HubdServerLog,  // hubd: /hub/server-log, /hub/api/users/:name/server/log
    HubdStop,       // hubd: /hub/stop (the home page's stop form)
    HubdOther,      // hubd: any other route hubd adds (subdomain tickets, …)
    Count
};
std::string_view handlerName(Handler handler);
// `rest` is the path below the hub prefix with its leading '/' ("/api/users/x"),
// or the whole path when `underHub` is false.
Handler handlerOf(std::string_view rest, bool underHub);

// status labels, created up front as 3.0 does so dashboards see zeros.
enum class SpawnStatus : uint8_t { Success, Failure, AlreadyPending, Throttled, TooManyUsers, Count };
enum class OpStatus : uint8_t { Success, Failure, Count };  // stop, proxy add and delete
enum class LoginOutcome : uint8_t { Success, Failure, Throttled, Locked, Count };

// pam_faillock's "The account is locked due to N failed logins." among PAM's
// messages: the failed login is counted as "locked".
bool mentionsLockedAccount(std::string_view message);

// ------------------------------------------------------------ the store
class Registry {
public:
    Registry();

    void observeRequest(Method method, Handler handler, int status, std::chrono::nanoseconds duration);
    void observeSpawn(SpawnStatus status, std::chrono::nanoseconds duration);
    void observeStop(OpStatus status, std::chrono::nanoseconds duration);
    void observeProxyAdd(OpStatus status, std::chrono::nanoseconds duration);
    void observeProxyDelete(OpStatus status, std::chrono::nanoseconds duration);
    void observeHubStartup(std::chrono::nanoseconds duration);
    void observeInitSpawners(std::chrono::nanoseconds duration);
    void countLogin(LoginOutcome outcome);

    // The families this registry holds, in a fixed order; request series
    // sorted by (method, handler, code).
    void writeRequestDurations(Exposition& out) const;
    void writeSpawnDurations(Exposition& out) const;
    void writeOperations(Exposition& out) const;  // start-up, init spawners, proxy add, stop, proxy delete
    void writeHubdCounters(Exposition& out) const;

    uint64_t requestSeries() const { return usedSlots_.load(std::memory_order_relaxed); }
    uint64_t logins(LoginOutcome outcome) const;

    // Request series beyond this many are not recorded (counted in
    // hubd_metrics_dropped_observations_total): a bound on memory even if the
    // label sets grow. 8 methods x 43 handlers x the few statuses one
    // handler answers stays far below it.
    static constexpr size_t kRequestSlots = 2048;

private:
    struct RequestSlot {
        std::atomic<uint32_t> key{0};  // 0 = free; else method, handler, status packed (+1)
        Histogram histogram;
    };
    std::unique_ptr<RequestSlot[]> requests_;
    std::atomic<uint64_t> usedSlots_{0};
    std::atomic<uint64_t> dropped_{0};
    std::array<Histogram, static_cast<size_t>(SpawnStatus::Count)> spawn_;
    std::array<Histogram, static_cast<size_t>(OpStatus::Count)> stop_, proxyAdd_, proxyDelete_;
    Histogram hubStartup_, initSpawners_;
    std::array<std::atomic<uint64_t>, static_cast<size_t>(LoginOutcome::Count)> logins_{};
};

// The process-wide registry (hubd has one hub).
Registry& registry();

// Seconds of a steady-clock interval, for observe*() callers.
inline std::chrono::nanoseconds since(std::chrono::steady_clock::time_point start) {
    return std::chrono::steady_clock::now() - start;
}

}  // namespace hubd::metrics
