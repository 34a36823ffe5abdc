// SPDX-License-Identifier: BSD-3-Clause
// One-time tickets that carry a hub session from the hub's host to a user's
// host under JupyterHub.subdomain_host (app/subdomains.h). The hub cannot
// set a cookie for alice.<domain> (and must not: a Domain cookie would reach
// every user's host), so it redirects the browser to
// https://alice.<domain>/<base_url>hub-session-handoff?ticket=..., where
// hubd redeems the ticket and sets a host-only cookie itself.
//
// MUST: a ticket works once, for one user, on one host, for kLifetimeSeconds;
// only its SHA-256 is kept; at most kMaxPerHost are issued per user and host
// within kLifetimeSeconds (a browser that drops cookies would otherwise loop
// between the hub and the user's host forever).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hubd {

class HandoffTickets {
public:
    static constexpr int64_t kLifetimeSeconds = 60;
    static constexpr size_t kMaxPerHost = 10;

    struct Grant {
        int64_t userId = 0;     // who signs in on the user's host
        std::string label;      // the host label it is good for
        std::string sessionId;  // the hub browser session (logout ends it)
        std::string next;       // local path to land on
    };

    // The ticket, or nullopt when kMaxPerHost tickets for this user and
    // label were issued in the last kLifetimeSeconds, used or not.
    std::optional<std::string> issue(Grant grant, int64_t nowUnix);
    // The grant, if `ticket` was issued for `label`, is unused and unexpired.
    // A ticket is spent by any attempt, even one on the wrong host.
    std::optional<Grant> redeem(std::string_view ticket, std::string_view label, int64_t nowUnix);
    size_t held() const { return byHash_.size(); }

private:
    struct Entry {
        Grant grant;
        int64_t expires = 0;
        bool spent = false;  // kept until it expires: it still counts against kMaxPerHost
    };
    void purge(int64_t nowUnix);
    std::unordered_map<std::string, Entry> byHash_;  // SHA-256 (hex) of the ticket
};

}  // namespace hubd
