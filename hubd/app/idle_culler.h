// SPDX-License-Identifier: BSD-3-Clause
// The built-in idle culler (IdleCuller.*, docs/config.md "Idle culling"):
// jupyterhub-idle-culler's rules, run inside the hub on its own state.
//
// Activity is what Hub::recordActivity hears: proxied requests, bytes through
// proxied WebSockets and streams (proxy.h, onTraffic), and the servers' own
// activity reports (POST /hub/api/users/:name/activity), which carry kernel
// and terminal activity. Servers are told to report often enough for their
// timeout (activityInterval, JUPYTERHUB_ACTIVITY_INTERVAL), so a busy kernel
// with no browser attached is never culled.
//
// MUST: a pending server (starting or stopping) is never culled; a server is
// stopped only through ServerManager::stop, as DELETE .../server does; a user
// is removed only if a new login would bring them back as they were.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/event_loop.h"
#include "hubcore/config.h"
#include "hubcore/time.h"

namespace hubd {

class Hub;

// The configuration, in the units the decisions use.
struct CullPolicy {
    std::chrono::seconds timeout{0};  // 0: no idle culling (except by group_timeouts)
    std::chrono::seconds maxAge{0};   // 0: no age limit
    std::chrono::seconds cullEvery{0};
    bool cullUsers = false;
    bool cullAdminUsers = true;
    std::map<std::string, std::chrono::seconds> groupTimeouts;

    static CullPolicy from(const hub::IdleCullerSettings& settings);
    bool enabled() const;
    // The idle timeout of a member of `groups`: the longest of its groups'
    // timeouts (0 = never, which is the longest), else `timeout`. 0 = never.
    std::chrono::seconds idleTimeoutFor(const std::vector<std::string>& groups) const;
    // Seconds between passes: cull_every, or a tenth of the shortest limit
    // between 1 s and 60 s (a server goes at most that much after its limit).
    std::chrono::seconds interval() const;
};

// JUPYTERHUB_ACTIVITY_INTERVAL for a server whose idle timeout is `idleTimeout`:
// a third of it, at most the single-user default of 300 s, at least 1 s, so
// that a report lost (or sent 10 % late, the server's jitter) still arrives in
// time. nullopt (leave the server's default) when the server is never idle-culled.
std::optional<int64_t> activityInterval(std::chrono::seconds idleTimeout);

// What the culler knows of one user at the moment of a pass.
struct CullSubject {
    std::string name;
    bool admin = false;
    std::vector<std::string> groups;  // hub groups, for group_timeouts
    std::optional<hub::Timestamp> lastActivity;
    hub::Timestamp created{};
    enum class Server { None, Pending, Ready } server = Server::None;
    std::optional<hub::Timestamp> started;  // of a Pending or Ready server
    // A new login would bring the user back as they were (allowed, and admin
    // again if admin): the caller checks this before removing anyone.
    bool readmitted = true;
};

struct CullVerdict {
    enum class Action { Keep, StopServer, RemoveUser } action = Action::Keep;
    std::string reason;  // "idle 1203 s" / "age 86410 s (max_age 86400 s)"
};

CullVerdict decideCull(const CullPolicy& policy, const CullSubject& subject, hub::Timestamp now);

// Runs passes on a timer on the event loop and acts on the verdicts.
class IdleCuller {
public:
    IdleCuller(Hub& hub, CullPolicy policy);
    ~IdleCuller();
    IdleCuller(const IdleCuller&) = delete;
    IdleCuller& operator=(const IdleCuller&) = delete;

    void start();  // logs the configuration, first pass after one interval
    void pass();
    const CullPolicy& policy() const { return policy_; }

private:
    CullSubject subjectOf(int64_t userId) const;
    void stopServer(int64_t userId, const std::string& reason);
    void removeUsers(std::vector<std::pair<int64_t, std::string>> candidates);

    Hub& hub_;
    CullPolicy policy_;
    hubd::http::EventLoop::TimerId timer_ = 0;
    bool checking_ = false;  // a readmission check is on a worker thread
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hubd
