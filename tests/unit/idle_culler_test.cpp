// SPDX-License-Identifier: BSD-3-Clause
// The built-in idle culler's decisions (app/idle_culler.h) on a fake clock,
// the activity interval servers are given, and the translation of a
// jupyterhub_idle_culler service command into IdleCuller.* (config loader).
#include <doctest/doctest.h>

#include <string>

#include "app/idle_culler.h"
#include "hubcore/config.h"
#include "hubcore/idle_culler_command.h"

using hubd::activityInterval;
using hubd::CullPolicy;
using hubd::CullSubject;
using hubd::CullVerdict;
using hubd::decideCull;
using Action = CullVerdict::Action;
using namespace std::chrono_literals;

namespace {

const hub::Timestamp t0 = hub::Timestamp(std::chrono::hours(500'000));

CullPolicy policy(std::chrono::seconds timeout, std::chrono::seconds maxAge = 0s) {
    CullPolicy p;
    p.timeout = timeout;
    p.maxAge = maxAge;
    return p;
}

// A user whose server started at t0 and was last active `lastActive` later.
CullSubject running(std::chrono::seconds lastActive,
                    CullSubject::Server server = CullSubject::Server::Ready) {
    CullSubject s;
    s.name = "alice";
    s.created = t0 - 24h;
    s.server = server;
    s.started = t0;
    s.lastActivity = t0 + lastActive;
    return s;
}

CullSubject serverless(std::optional<std::chrono::seconds> lastActive) {
    CullSubject s;
    s.name = "bob";
    s.created = t0;
    if (lastActive) s.lastActivity = t0 + *lastActive;
    return s;
}

}  // namespace

TEST_CASE("idle past the timeout culls; recent activity keeps") {
    const CullPolicy p = policy(600s);
    CHECK(decideCull(p, running(0s), t0 + 599s).action == Action::Keep);
    CullVerdict v = decideCull(p, running(0s), t0 + 600s);
    CHECK(v.action == Action::StopServer);
    CHECK(v.reason == "idle 600 s");
    // Activity at t0+500 (a proxied request, a WebSocket frame or an
    // activity report: the hub does not tell them apart) restarts the clock.
    CHECK(decideCull(p, running(500s), t0 + 1000s).action == Action::Keep);
    CHECK(decideCull(p, running(500s), t0 + 1100s).action == Action::StopServer);
}

TEST_CASE("a fresh server is idle from its start, not from an older last activity") {
    CullSubject s = running(-3h);  // the user was last seen long before this start
    CHECK(decideCull(policy(600s), s, t0 + 10s).action == Action::Keep);
    CHECK(decideCull(policy(600s), s, t0 + 600s).reason == "idle 600 s");
    s.lastActivity.reset();  // never active at all
    CHECK(decideCull(policy(600s), s, t0 + 599s).action == Action::Keep);
    CHECK(decideCull(policy(600s), s, t0 + 600s).action == Action::StopServer);
}

TEST_CASE("max_age culls even an active server, counted from the start") {
    const CullPolicy p = policy(600s, 3600s);
    CHECK(decideCull(p, running(3599s), t0 + 3599s).action == Action::Keep);
    CullVerdict v = decideCull(p, running(3600s), t0 + 3600s);
    CHECK(v.action == Action::StopServer);
    CHECK(v.reason == "age 3600 s (max_age 3600 s)");
    // max_age alone (no idle timeout) works too.
    CHECK(decideCull(policy(0s, 60s), running(59s), t0 + 59s).action == Action::Keep);
    CHECK(decideCull(policy(0s, 60s), running(100s), t0 + 100s).action == Action::StopServer);
    CHECK(policy(0s, 60s).enabled());
    CHECK_FALSE(policy(0s, 0s).enabled());
}

TEST_CASE("a pending server is never culled") {
    const CullPolicy p = policy(60s, 60s);
    CullSubject starting = running(-10h, CullSubject::Server::Pending);
    CHECK(decideCull(p, starting, t0 + 100h).action == Action::Keep);
    starting.started.reset();  // a start that has not got a process yet
    CHECK(decideCull(p, starting, t0 + 100h).action == Action::Keep);
    // Nor is a user with a pending server removed.
    CullPolicy users = p;
    users.cullUsers = true;
    CHECK(decideCull(users, starting, t0 + 100h).action == Action::Keep);
}

TEST_CASE("group timeouts: the longest matching group wins, 0 means never") {
    CullPolicy p = policy(600s);
    p.groupTimeouts = {{"students", 300s}, {"staff", 7200s}, {"exempt", 0s}};
    CHECK(p.idleTimeoutFor({}) == 600s);
    CHECK(p.idleTimeoutFor({"other"}) == 600s);
    CHECK(p.idleTimeoutFor({"students"}) == 300s);  // shorter than the default: still the group's
    CHECK(p.idleTimeoutFor({"students", "staff"}) == 7200s);
    CHECK(p.idleTimeoutFor({"staff", "exempt", "students"}) == 0s);
    CullSubject s = running(0s);
    s.groups = {"students"};
    CHECK(decideCull(p, s, t0 + 300s).action == Action::StopServer);
    s.groups = {"students", "staff"};
    CHECK(decideCull(p, s, t0 + 3600s).action == Action::Keep);
    CHECK(decideCull(p, s, t0 + 7200s).action == Action::StopServer);
    s.groups = {"exempt"};
    CHECK(decideCull(p, s, t0 + 1000h).action == Action::Keep);
    // max_age still applies to exempt members.
    p.maxAge = 86400s;
    CHECK(decideCull(p, s, t0 + 86400s).action == Action::StopServer);
    // Group timeouts alone turn the culler on; everybody else is left alone.
    CullPolicy groupsOnly;
    groupsOnly.groupTimeouts = {{"students", 300s}};
    CHECK(groupsOnly.enabled());
    CHECK(decideCull(groupsOnly, running(0s), t0 + 1000h).action == Action::Keep);
}

TEST_CASE("cull_users: idle users without a server, only if a login would bring them back") {
    CullPolicy p = policy(600s);
    CHECK(decideCull(p, serverless(0s), t0 + 1000h).action == Action::Keep);  // off by default
    p.cullUsers = true;
    CHECK(decideCull(p, serverless(0s), t0 + 599s).action == Action::Keep);
    CullVerdict v = decideCull(p, serverless(0s), t0 + 600s);
    CHECK(v.action == Action::RemoveUser);
    CHECK(v.reason == "idle 600 s");
    // Never active: idle since creation.
    CHECK(decideCull(p, serverless(std::nullopt), t0 + 600s).action == Action::RemoveUser);
    // A user a login would not recreate as they were (not allowed any more,
    // or an admin only in the database) is kept.
    CullSubject s = serverless(0s);
    s.readmitted = false;
    CHECK(decideCull(p, s, t0 + 1000h).action == Action::Keep);
    // Admins: removed by default (jupyterhub-idle-culler's --cull-admin-users), not when told so.
    s = serverless(0s);
    s.admin = true;
    CHECK(decideCull(p, s, t0 + 600s).action == Action::RemoveUser);
    p.cullAdminUsers = false;
    CHECK(decideCull(p, s, t0 + 1000h).action == Action::Keep);
    // A running server keeps its user, whatever the user's own idleness.
    CHECK(decideCull(p, running(0s), t0 + 600s).action == Action::StopServer);
    // max_age never removes users.
    CullPolicy ageOnly = policy(0s, 60s);
    ageOnly.cullUsers = true;
    CHECK(decideCull(ageOnly, serverless(0s), t0 + 1000h).action == Action::Keep);
}

TEST_CASE("pass interval and activity interval") {
    CHECK(policy(600s).interval() == 60s);
    CHECK(policy(20s).interval() == 2s);
    CHECK(policy(5s).interval() == 1s);
    CHECK(policy(3600s, 300s).interval() == 30s);  // the shortest limit counts
    CullPolicy every = policy(600s);
    every.cullEvery = 7s;
    CHECK(every.interval() == 7s);
    // Servers report three times per timeout, at most every 300 s (their default).
    CHECK(activityInterval(0s) == std::nullopt);
    CHECK(activityInterval(20s) == 6);
    CHECK(activityInterval(600s) == 200);
    CHECK(activityInterval(3600s) == 300);
    CHECK(activityInterval(2s) == 1);
}

TEST_CASE("a jupyterhub_idle_culler command is read like the culler reads it") {
    CHECK_FALSE(hub::readIdleCullerCommand({"/usr/bin/my-service", "--timeout=5"}));
    auto c = hub::readIdleCullerCommand({"python3", "-m", "jupyterhub_idle_culler", "--timeout=3600",
                                         "--max_age=86400", "--cull-every=120", "--cull-users",
                                         "--cull-admin-users=false", "--concurrency=5"});
    REQUIRE(c);
    CHECK(c->settings.timeout == 3600);
    CHECK(c->settings.maxAge == 86400);
    CHECK(c->settings.cullEvery == 120);
    CHECK(c->settings.cullUsers);
    CHECK_FALSE(c->settings.cullAdminUsers);
    CHECK(c->ignored == std::vector<std::string>{"--concurrency=5"});
    CHECK(c->problems.empty());
    // The culler's defaults; one string holding the whole command.
    c = hub::readIdleCullerCommand({"/opt/venv/bin/jupyterhub-idle-culler"});
    REQUIRE(c);
    CHECK(c->settings.timeout == 600);
    CHECK(c->settings.cullAdminUsers);
    c = hub::readIdleCullerCommand({"python3 -m jupyterhub_idle_culler --timeout=60 --cull-users=False"});
    REQUIRE(c);
    CHECK(c->settings.timeout == 60);
    CHECK_FALSE(c->settings.cullUsers);
    c = hub::readIdleCullerCommand({"python3", "-m", "jupyterhub_idle_culler", "--timeout", "60"});
    REQUIRE(c);
    CHECK(c->problems.size() == 1);
}

TEST_CASE("the loader turns a culler service into IdleCuller settings, with a line saying so") {
    auto r = hub::loadSettings(std::nullopt,
                               {"--JupyterHub.services=[{'name': 'idle-culler', 'command': ['python3', '-m', "
                                "'jupyterhub_idle_culler', '--timeout=3600', '--cull-users']}]"});
    CHECK(r.ok());
    CHECK(r.settings.idleCuller.timeout == 3600);
    CHECK(r.settings.idleCuller.cullUsers);
    CHECK(r.settings.idleCuller.translatedFrom == "JupyterHub.services[0] ('idle-culler')");
    bool said = false, saidNotLaunched = false;
    for (const auto& d : r.diagnostics) {
        said |= d.message.find("the built-in culler does its work instead, with IdleCuller.timeout = 3600") !=
                std::string::npos;
        saidNotLaunched |= d.message.find("start the service yourself") != std::string::npos;
    }
    CHECK(said);
    CHECK_FALSE(saidNotLaunched);
    // IdleCuller.* set explicitly wins over the command.
    r = hub::loadSettings(std::nullopt, {"--IdleCuller.timeout=120",
                                         "--JupyterHub.services=[{'name': 'c', 'command': "
                                         "['python3', '-m', 'jupyterhub_idle_culler', '--timeout=9']}]"});
    CHECK(r.ok());
    CHECK(r.settings.idleCuller.timeout == 120);
    CHECK(r.settings.idleCuller.translatedFrom.empty());
    // A value the culler would refuse stops start-up.
    r = hub::loadSettings(std::nullopt, {"--JupyterHub.services=[{'name': 'c', 'command': 'python3 -m "
                                         "jupyterhub_idle_culler --timeout=soon'}]"});
    CHECK_FALSE(r.ok());
    // The traits themselves.
    r = hub::loadSettings(
        std::nullopt,
        {"--IdleCuller.timeout=900", "--IdleCuller.max_age=86400", "--IdleCuller.cull_users=True",
         "--IdleCuller.cull_admin_users=False", "--IdleCuller.group_timeouts={'staff': 7200, 'exempt': 0}"});
    CHECK(r.ok());
    CHECK(r.settings.idleCuller.timeout == 900);
    CHECK(r.settings.idleCuller.maxAge == 86400);
    CHECK(r.settings.idleCuller.cullUsers);
    CHECK_FALSE(r.settings.idleCuller.cullAdminUsers);
    CHECK(r.settings.idleCuller.groupTimeouts ==
          std::map<std::string, int64_t>{{"exempt", 0}, {"staff", 7200}});
    CHECK_FALSE(hub::loadSettings(std::nullopt, {"--IdleCuller.timeout=-1"}).ok());
    CHECK_FALSE(hub::loadSettings(std::nullopt, {"--IdleCuller.group_timeouts={'staff': '1h'}"}).ok());
}
