// SPDX-License-Identifier: BSD-3-Clause
#include "app/idle_culler.h"

#include <algorithm>

#include <fmt/format.h>

#include "app/hub.h"
#include "hubcore/audit.h"
#include "hubcore/auth.h"
#include "hubcore/log.h"

namespace hubd {

using std::chrono::seconds;

namespace {

int64_t wholeSeconds(hub::Timestamp::duration d) {
    return std::chrono::duration_cast<seconds>(d).count();
}

}  // namespace

// ---------------------------------------------------------------- decisions

CullPolicy CullPolicy::from(const hub::IdleCullerSettings& s) {
    CullPolicy p;
    p.timeout = seconds(s.timeout);
    p.maxAge = seconds(s.maxAge);
    p.cullEvery = seconds(s.cullEvery);
    p.cullUsers = s.cullUsers;
    p.cullAdminUsers = s.cullAdminUsers;
    for (const auto& [group, t] : s.groupTimeouts) p.groupTimeouts[group] = seconds(t);
    return p;
}

bool CullPolicy::enabled() const {
    return timeout.count() > 0 || maxAge.count() > 0 ||
           std::any_of(groupTimeouts.begin(), groupTimeouts.end(),
                       [](const auto& g) { return g.second.count() > 0; });
}

seconds CullPolicy::idleTimeoutFor(const std::vector<std::string>& groups) const {
    std::optional<seconds> longest;
    for (const auto& g : groups) {
        auto it = groupTimeouts.find(g);
        if (it == groupTimeouts.end()) continue;
        if (it->second.count() == 0) return seconds(0);  // never: nothing is longer
        longest = std::max(longest.value_or(seconds(0)), it->second);
    }
    return longest.value_or(timeout);
}

seconds CullPolicy::interval() const {
    if (cullEvery.count() > 0) return cullEvery;
    seconds shortest = seconds::max();
    for (seconds s : {timeout, maxAge})
        if (s.count() > 0) shortest = std::min(shortest, s);
    for (const auto& [group, s] : groupTimeouts)
        if (s.count() > 0) shortest = std::min(shortest, s);
    if (shortest == seconds::max()) return seconds(60);
    return std::clamp(shortest / 10, seconds(1), seconds(60));
}

std::optional<int64_t> activityInterval(seconds idleTimeout) {
    if (idleTimeout.count() <= 0) return std::nullopt;
    return std::clamp<int64_t>(idleTimeout.count() / 3, 1, 300);
}

CullVerdict decideCull(const CullPolicy& policy, const CullSubject& subject, hub::Timestamp now) {
    using Action = CullVerdict::Action;
    const seconds idleLimit = policy.idleTimeoutFor(subject.groups);
    switch (subject.server) {
        case CullSubject::Server::Pending:
            return {};  // starting or stopping: never
        case CullSubject::Server::Ready: {
            if (!subject.started) return {};  // no start time: nothing to measure from
            // Idle since the later of the last activity and the start, as a
            // fresh server's last_activity is its start in JupyterHub.
            hub::Timestamp since =
                std::max(subject.lastActivity.value_or(*subject.started), *subject.started);
            if (idleLimit.count() > 0 && now - since >= idleLimit)
                return {Action::StopServer, fmt::format("idle {} s", wholeSeconds(now - since))};
            if (policy.maxAge.count() > 0 && now - *subject.started >= policy.maxAge)
                return {Action::StopServer,
                        fmt::format("age {} s (max_age {} s)", wholeSeconds(now - *subject.started),
                                    policy.maxAge.count())};
            return {};
        }
        case CullSubject::Server::None:
            break;
    }
    // A user without a server. max_age is not applied to users: removing an
    // active user because the account is old is never what is wanted here.
    if (!policy.cullUsers || idleLimit.count() == 0 || !subject.readmitted) return {};
    if (subject.admin && !policy.cullAdminUsers) return {};
    hub::Timestamp since = subject.lastActivity.value_or(subject.created);
    if (now - since < idleLimit) return {};
    return {Action::RemoveUser, fmt::format("idle {} s", wholeSeconds(now - since))};
}

// ---------------------------------------------------------------- the culler

IdleCuller::IdleCuller(Hub& hub, CullPolicy policy) : hub_(hub), policy_(std::move(policy)) {}

IdleCuller::~IdleCuller() {
    *alive_ = false;
    if (timer_ != 0) hub_.loop().cancelTimer(timer_);
}

void IdleCuller::start() {
    std::string groups;
    for (const auto& [g, t] : policy_.groupTimeouts)
        groups += fmt::format("{}{}={} s", groups.empty() ? "" : ", ", hub::safe(g, 64), t.count());
    hub::logInfo(
        "Idle culler: servers idle {} s (groups: {}) or older than {} are stopped{}; checked every {} s",
        policy_.timeout.count(), groups.empty() ? "none" : groups,
        policy_.maxAge.count() > 0 ? fmt::format("{} s", policy_.maxAge.count()) : std::string("any age"),
        policy_.cullUsers
            ? (policy_.cullAdminUsers ? "; idle users are removed" : "; idle non-admin users are removed")
            : "",
        policy_.interval().count());
    timer_ = hub_.loop().addTimer(policy_.interval(), [this] {
        timer_ = 0;
        pass();
    });
}

CullSubject IdleCuller::subjectOf(int64_t userId) const {
    CullSubject s;
    const hub::UserRecord* u = hub_.findUserById(userId);
    if (!u) return s;
    s.name = u->name;
    s.admin = u->admin;
    s.groups = hub_.groupsOf(u->name);
    s.lastActivity = u->lastActivity;
    s.created = u->created;
    if (const ServerState* st = hub_.servers().state(userId);
        st && st->phase != ServerState::Phase::Stopped) {
        const bool ready = st->phase == ServerState::Phase::Running && st->ready;
        s.server = ready ? CullSubject::Server::Ready : CullSubject::Server::Pending;
        s.started = st->started;
    }
    return s;
}

void IdleCuller::pass() {
    const hub::Timestamp now = hub::now();
    std::vector<std::pair<int64_t, std::string>> removable;
    for (const hub::UserRecord* u : hub_.users()) {
        CullVerdict v = decideCull(policy_, subjectOf(u->id), now);
        if (v.action == CullVerdict::Action::StopServer) stopServer(u->id, v.reason);
        if (v.action == CullVerdict::Action::RemoveUser) removable.emplace_back(u->id, u->name);
    }
    if (!removable.empty() && !checking_) removeUsers(std::move(removable));
    timer_ = hub_.loop().addTimer(policy_.interval(), [this] {
        timer_ = 0;
        pass();
    });
}

void IdleCuller::stopServer(int64_t userId, const std::string& reason) {
    const hub::UserRecord* u = hub_.findUserById(userId);
    if (!u) return;
    hub::logInfo("Culling server of {}: {}", u->name, reason);
    hub::audit("server.cull", {{"user", u->name}, {"by", "idle-culler"}, {"reason", reason}});
    std::string name = u->name;
    Hub* hub = &hub_;
    auto settled = [hub, userId, name] {
        const ServerState* s = hub->servers().state(userId);
        if (s && s->phase != ServerState::Phase::Stopped)
            hub::logWarning("Culled server of {} did not stop: {}", name, s->lastError);
    };
    if (auto err = hub_.servers().stop(*u, settled)) hub::logWarning("Culling {}'s server: {}", name, *err);
}

// Whether a login would readmit a user needs their Unix groups when
// allowed_groups or admin_groups are set: NSS may be slow (LDAP), so it is
// asked on a worker thread, and each user is decided afresh on return.
void IdleCuller::removeUsers(std::vector<std::pair<int64_t, std::string>> candidates) {
    const hub::Settings& settings = hub_.settings();
    const bool needGroups = !settings.allowedGroups.empty() || !settings.adminGroups.empty();
    std::vector<std::string> names;
    for (const auto& c : candidates) names.push_back(c.second);
    auto lookup = [needGroups, names] {
        std::map<std::string, std::vector<std::string>> groups;
        for (const auto& n : names)
            groups[n] = needGroups ? hub::unixGroupsOf(n) : std::vector<std::string>{};
        return groups;
    };
    checking_ = true;
    std::weak_ptr<bool> alive = alive_;
    hub_.workers().submit(lookup, [this, alive,
                                   candidates](std::map<std::string, std::vector<std::string>> groups) {
        if (alive.expired() || !*alive.lock()) return;
        checking_ = false;
        const hub::Settings& s = hub_.settings();
        const hub::Timestamp now = hub::now();
        for (const auto& [id, name] : candidates) {
            const hub::UserRecord* u = hub_.findUserById(id);
            if (!u || u->name != name) continue;  // removed or renamed meanwhile
            const auto& g = groups[name];
            std::optional<bool> adminFromGroups;
            if (!s.adminGroups.empty())
                adminFromGroups = std::any_of(g.begin(), g.end(), [&](const std::string& x) {
                    return std::find(s.adminGroups.begin(), s.adminGroups.end(), x) != s.adminGroups.end();
                });
            auto access = hub::decideAccess(s, name, g, false, false, adminFromGroups);
            CullSubject subject = subjectOf(id);
            subject.readmitted = access.allowed && (!u->admin || access.admin);
            CullVerdict v = decideCull(policy_, subject, now);
            if (v.action != CullVerdict::Action::RemoveUser) continue;
            hub::logInfo("Culling user {}: {}", name, v.reason);
            hub::audit("user.cull", {{"user", name}, {"by", "idle-culler"}, {"reason", v.reason}});
            hub_.deleteUser(id);
        }
    });
}

}  // namespace hubd
