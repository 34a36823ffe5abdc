// SPDX-License-Identifier: BSD-3-Clause
// JupyterHub.subdomain_host in the running hub: host-based routing, cookies
// per host, and the session handoff from the hub's host to users' hosts.
// See docs/security-model.md ("Subdomains") for what it protects against.
//
// Hosts (hubcore/subdomain.h classifies them):
// - alice.<domain>: alice's server (<base_url>user/alice/...) for requests
//   with credentials for it; <base_url>hub-session-handoff; every other
//   request is sent to the hub's host. Never a hub page, never another
//   server, never a service.
// - <domain> and any other host (127.0.0.1 for the internal API): the hub.
//   No user's server is proxied there.
//
// MUST: hub cookies are host-only; over https they carry the __Host- prefix
// (Secure, Path=/, no Domain), so a user's server, same-site with the hub,
// cannot plant them: unprefixed copies are ignored. The session that opens
// alice's server is a host-only cookie of alice's host, signed for that host
// only, set by hubd itself after redeeming a one-time ticket
// (app/handoff_tickets.h), and dead once its hub session logs out.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "app/handoff_tickets.h"
#include "http/server.h"
#include "hubcore/store.h"
#include "hubcore/subdomain.h"

namespace hubd {

class Hub;

class Subdomains {
public:
    Subdomains(Hub& hub, hub::SubdomainHost host, std::string cookieSecret);

    const hub::SubdomainHost& host() const { return host_; }
    // "https://alice.<domain>[:port]" for a user's server.
    std::string userOrigin(std::string_view userName) const;
    // Why this user's server cannot start here (its name is no host label).
    std::optional<std::string> spawnProblem(std::string_view userName) const;

    // Hub::handleHead: the request is on owner's own host and carries
    // credentials for owner's server (a token with access:servers for it, or
    // a handed-off session of a user who may use it).
    bool mayUseUserRoute(const hubd::http::Request& request, std::string_view owner);
    // True on any user's host: services are not proxied there.
    bool onUserHost(const hubd::http::Request& request) const;

    // Hub::handle, before its own routing. Answers (true) every request on a
    // user's host, and on the hub's host a running server's
    // <hub>/user/<name>/... (a ticket redirect to the user's host). Anything
    // else goes on to the hub (false), with the request's __Host- cookies
    // renamed to the hub's usual names and the response's renamed back.
    bool handle(hubd::http::Request& request, hubd::http::Responder& responder);

    // Logout: user-host sessions made from this hub session stop working.
    void sessionEnded(std::string_view sessionId);

private:
    void answerUserHost(hubd::http::Request& request, hubd::http::Responder& responder,
                        const std::string& label);
    void redeem(hubd::http::Request& request, hubd::http::Responder& responder, const std::string& label);
    bool handOff(hubd::http::Request& request, hubd::http::Responder& responder);
    std::vector<const hub::UserRecord*> sessionUsers(const hubd::http::Request& request,
                                                     std::string_view label) const;
    std::string sessionCookieValue(const hub::UserRecord& user, std::string_view label,
                                   std::string_view sessionId) const;

    Hub& hub_;
    hub::SubdomainHost host_;
    std::string cookieSecret_;
    HandoffTickets tickets_;
    std::unordered_map<std::string, int64_t> endedSessions_;  // hub session id -> forget after (unix)
};

// The hub's host under https: the request's "__Host-<name>" cookies become
// "<name>" and unprefixed hub cookies (planted by a user's server) are
// dropped; exposed for the unit tests.
void renameHubCookiesIn(hubd::http::Request& request);
// The reverse for a response: Set-Cookie of the hub's cookies gets the
// __Host- prefix, Path=/ and Secure. `https` false: names stay. Either way,
// hubd-user-session is dropped (it has no use on the hub's host).
void renameHubCookiesOut(hubd::http::Response& response, bool https);

}  // namespace hubd
