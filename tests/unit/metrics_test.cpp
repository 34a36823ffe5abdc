// SPDX-License-Identifier: BSD-3-Clause
// The Prometheus text format and the metrics store (hubd/app/metrics.h):
// escaping, value formatting as prometheus_client writes it, cumulative
// histogram buckets, a stable order, and label sets no path can widen.
#include <doctest/doctest.h>

#include <chrono>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "app/metrics.h"

using namespace hubd::metrics;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// Every line is a HELP, a TYPE or a sample of the family just declared;
// label values are well-escaped; the text ends with a newline.
void checkWellFormed(const std::string& text) {
    REQUIRE(!text.empty());
    CHECK(text.back() == '\n');
    static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*))");
    static const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
    static const std::regex sample(
        R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")"
        R"((?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN))");
    std::string family;
    std::set<std::string> seen;
    for (const auto& line : lines(text)) {
        std::smatch m;
        if (std::regex_match(line, m, help)) {
            family = m[1];
            CHECK_MESSAGE(seen.insert(family).second, "family declared twice: " << family);
        } else if (std::regex_match(line, m, type)) {
            CHECK(m[1] == family);
        } else {
            REQUIRE_MESSAGE(std::regex_match(line, m, sample), "not a sample line: " << line);
            const std::string name = m[1];
            CHECK_MESSAGE(name.rfind(family, 0) == 0, name << " outside its family " << family);
        }
    }
}

}  // namespace

TEST_CASE("label values and help texts are escaped") {
    CHECK(escapeLabelValue(R"(a\b"c)"
                           "\n"
                           "d") == R"(a\\b\"c\nd)");
    CHECK(escapeLabelValue("plain") == "plain");
    CHECK(escapeHelp("a\\b\nc \"quoted\"") == "a\\\\b\\nc \"quoted\"");  // quotes stay in HELP

    Exposition out;
    out.family("x_total", "counter", "with \\ and\nnewline");
    out.sample("x_total", {{"path", "/hub/\"evil\"\n{}"}}, 1);
    CHECK(out.text() ==
          "# HELP x_total with \\\\ and\\nnewline\n"
          "# TYPE x_total counter\n"
          "x_total{path=\"/hub/\\\"evil\\\"\\n{}\"} 1.0\n");
    checkWellFormed(out.text());
}

TEST_CASE("values are written as prometheus_client writes them") {
    CHECK(formatValue(1) == "1.0");
    CHECK(formatValue(0) == "0.0");
    CHECK(formatValue(0.005) == "0.005");
    CHECK(formatValue(2.5) == "2.5");
    CHECK(formatValue(120) == "120.0");
    CHECK(formatValue(1000000) == "1000000.0");
    CHECK(formatValue(1e-05) == "1e-05");
    CHECK(formatValue(1e16) == "1e+16");
    CHECK(formatValue(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(formatValue(-std::numeric_limits<double>::infinity()) == "-Inf");
    CHECK(formatValue(std::numeric_limits<double>::quiet_NaN()) == "NaN");
}

TEST_CASE("histogram buckets are cumulative, +Inf equals _count, bounds are inclusive") {
    Histogram h;
    h.observe(3ms, kSpawnBuckets);    // <= 0.5
    h.observe(500ms, kSpawnBuckets);  // exactly a bound: in le="0.5"
    h.observe(2s, kSpawnBuckets);     // <= 2.5
    h.observe(200s, kSpawnBuckets);   // above every bound
    h.observe(-5ms, kSpawnBuckets);   // a clock step backwards counts as 0
    Exposition out;
    out.family("s", "histogram", "h");
    const std::array<Label, 1> labels{Label{"status", "success"}};
    h.write(out, "s", labels, kSpawnBuckets);
    const std::string expected =
        "# HELP s h\n# TYPE s histogram\n"
        "s_bucket{status=\"success\",le=\"0.5\"} 3.0\n"
        "s_bucket{status=\"success\",le=\"1.0\"} 3.0\n"
        "s_bucket{status=\"success\",le=\"2.5\"} 4.0\n"
        "s_bucket{status=\"success\",le=\"5.0\"} 4.0\n"
        "s_bucket{status=\"success\",le=\"10.0\"} 4.0\n"
        "s_bucket{status=\"success\",le=\"15.0\"} 4.0\n"
        "s_bucket{status=\"success\",le=\"30.0\"} 4.0\n"
        "s_bucket{status=\"success\",le=\"60.0\"} 4.0\n"
        "s_bucket{status=\"success\",le=\"120.0\"} 4.0\n"
        "s_bucket{status=\"success\",le=\"+Inf\"} 5.0\n"
        "s_count{status=\"success\"} 5.0\n"
        "s_sum{status=\"success\"} 202.503\n";
    CHECK(out.text() == expected);
    CHECK(h.count() == 5);
    checkWellFormed(out.text());
}

TEST_CASE("request series come out in a stable order, whatever the order of requests") {
    Registry a, b;
    a.observeRequest(Method::Post, Handler::Login, 302, 1ms);
    a.observeRequest(Method::Get, Handler::ApiUser, 200, 1ms);
    a.observeRequest(Method::Get, Handler::Login, 200, 1ms);
    b.observeRequest(Method::Get, Handler::Login, 200, 1ms);
    b.observeRequest(Method::Post, Handler::Login, 302, 1ms);
    b.observeRequest(Method::Get, Handler::ApiUser, 200, 1ms);
    Exposition ea, eb;
    a.writeRequestDurations(ea);
    b.writeRequestDurations(eb);
    CHECK(ea.text() == eb.text());
    checkWellFormed(ea.text());
    const std::string& t = ea.text();
    const auto login =
        t.find("method=\"GET\",handler=\"jupyterhub.handlers.login.LoginHandler\",code=\"200\"");
    const auto user = t.find("method=\"GET\",handler=\"jupyterhub.apihandlers.users.UserAPIHandler\"");
    const auto post =
        t.find("method=\"POST\",handler=\"jupyterhub.handlers.login.LoginHandler\",code=\"302\"");
    REQUIRE(login != std::string::npos);
    REQUIRE(user != std::string::npos);
    REQUIRE(post != std::string::npos);
    CHECK(login < user);  // handler order within GET
    CHECK(user < post);   // GET before POST
    CHECK(a.requestSeries() == 3);
}

TEST_CASE("every status family exists before anything happened, as in 3.0") {
    Registry r;
    Exposition out;
    r.writeSpawnDurations(out);
    r.writeOperations(out);
    r.writeHubdCounters(out);
    const std::string& t = out.text();
    for (const char* status : {"success", "failure", "already-pending", "throttled", "too-many-users"})
        CHECK(t.find(std::string("jupyterhub_server_spawn_duration_seconds_count{status=\"") + status +
                     "\"} 0.0") != std::string::npos);
    CHECK(t.find("jupyterhub_server_stop_seconds_count{status=\"failure\"} 0.0") != std::string::npos);
    CHECK(t.find("jupyterhub_proxy_add_duration_seconds_bucket{status=\"success\",le=\"0.005\"} 0.0") !=
          std::string::npos);
    CHECK(t.find("jupyterhub_hub_startup_duration_seconds_count 0.0") != std::string::npos);
    for (const char* outcome : {"success", "failure", "throttled", "locked"})
        CHECK(t.find(std::string("hubd_logins_total{outcome=\"") + outcome + "\"} 0.0") != std::string::npos);
    checkWellFormed(t);
}

TEST_CASE("logins are counted by outcome") {
    Registry r;
    r.countLogin(LoginOutcome::Success);
    r.countLogin(LoginOutcome::Failure);
    r.countLogin(LoginOutcome::Failure);
    r.countLogin(LoginOutcome::Locked);
    Exposition out;
    r.writeHubdCounters(out);
    CHECK(out.text().find("hubd_logins_total{outcome=\"failure\"} 2.0") != std::string::npos);
    CHECK(out.text().find("hubd_logins_total{outcome=\"locked\"} 1.0") != std::string::npos);
    CHECK(r.logins(LoginOutcome::Throttled) == 0);
}

TEST_CASE("the handler label comes from a fixed set, whatever the path") {
    CHECK(handlerOf("/api/users/alice", true) == Handler::ApiUser);
    CHECK(handlerOf("/api/users/alice/server/progress", true) == Handler::ApiSpawnProgress);
    CHECK(handlerOf("/api/users/alice/servers/", true) == Handler::ApiUserServer);
    CHECK(handlerOf("/api/users/alice/tokens/a12", true) == Handler::ApiUserToken);
    CHECK(handlerOf("/api/groups/g/properties", true) == Handler::ApiGroupProperties);
    CHECK(handlerOf("/api/authorizations/token/abc", true) == Handler::ApiAuthToken);
    CHECK(handlerOf("/api/oauth2/token", true) == Handler::ApiOAuthToken);
    CHECK(handlerOf("/api", true) == Handler::ApiRoot);
    CHECK(handlerOf("/api/metrics", true) == Handler::Metrics);
    CHECK(handlerOf("/metrics", true) == Handler::Metrics);
    CHECK(handlerOf("/health", true) == Handler::Health);
    CHECK(handlerOf("/login", true) == Handler::Login);
    CHECK(handlerOf("/spawn-pending/alice", true) == Handler::SpawnPending);
    CHECK(handlerOf("/user/alice/tree", true) == Handler::UserUrl);
    CHECK(handlerOf("/", true) == Handler::Root);
    CHECK(handlerOf("/user/alice/", false) == Handler::UserUrl);
    CHECK(handlerOf("/anything", false) == Handler::PrefixRedirect);
    CHECK(handlerName(Handler::ApiSpawnProgress) == "jupyterhub.apihandlers.users.SpawnProgressAPIHandler");
    CHECK(handlerName(Handler::Metrics) == "jupyterhub.handlers.metrics.MetricsHandler");

    // Hostile paths land on the catch-alls, never on a new name.
    std::set<std::string_view> names;
    for (const char* path : {"/api/../../etc/passwd", "/api/users/a/b/c/d/e/f", "/api/%22%0a", "/\"}\n{x=\"",
                             "/api/users/<script>/server/log/x", "/static/../../x", ""})
        names.insert(handlerName(handlerOf(path, true)));
    for (auto name : names) {
        bool known = false;
        for (size_t i = 0; i < static_cast<size_t>(Handler::Count); ++i)
            known = known || handlerName(static_cast<Handler>(i)) == name;
        CHECK(known);
    }
    CHECK(handlerOf("/api/../../etc/passwd", true) == Handler::ApiNotFound);
    CHECK(handlerOf("/\"}\n{x=\"", true) == Handler::NotFound);

    CHECK(methodOf("GET") == Method::Get);
    CHECK(methodOf("get") == Method::Other);  // methods are case-sensitive
    CHECK(methodOf("BREW") == Method::Other);
    CHECK(methodName(methodOf("X\"}")) == "other");
}

TEST_CASE("the request series table is bounded and says what it dropped") {
    Registry r;
    size_t observations = 0;
    for (int code = 100; code < 1000 && observations <= Registry::kRequestSlots + 10; ++code)
        for (size_t h = 0; h < static_cast<size_t>(Handler::Count); ++h, ++observations)
            r.observeRequest(Method::Get, static_cast<Handler>(h), code, 1ms);
    CHECK(r.requestSeries() == Registry::kRequestSlots);
    Exposition out;
    r.writeHubdCounters(out);
    const auto dropped = observations - Registry::kRequestSlots;
    CHECK(out.text().find("hubd_metrics_dropped_observations_total " + formatValue(double(dropped))) !=
          std::string::npos);
    // An existing series still records when the table is full.
    r.observeRequest(Method::Get, Handler::Root, 100, 1ms);
    Exposition again;
    r.writeHubdCounters(again);
    CHECK(again.text() == out.text());
}

TEST_CASE("pam_faillock's lock notice is recognised") {
    CHECK(mentionsLockedAccount("The account is locked due to 3 failed logins."));
    CHECK(mentionsLockedAccount("Account locked due to 5 failed logins"));
    CHECK(!mentionsLockedAccount("Password: "));
    CHECK(!mentionsLockedAccount("Authentication failure"));
}
