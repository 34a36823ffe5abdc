// SPDX-License-Identifier: BSD-3-Clause
// subdomain_host in the hub: one-time handoff tickets, and the hub's cookie
// names per host (__Host- over https; planted unprefixed copies ignored).
#include <doctest/doctest.h>

#include <string>

#include "app/handoff_tickets.h"
#include "app/subdomains.h"

using hubd::HandoffTickets;
using hubd::http::Request;
using hubd::http::Response;

namespace {

HandoffTickets::Grant grant(int64_t user, std::string label) {
    return {user, std::move(label), "session-1", "/user/alice/tree"};
}

std::string cookieHeader(const Request& r) {
    std::string out;
    for (const auto& [n, v] : r.headers)
        if (n == "Cookie") out += (out.empty() ? "" : " | ") + v;
    return out;
}

}  // namespace

TEST_CASE("a handoff ticket works once, on its own host, within its lifetime") {
    HandoffTickets tickets;
    auto t = tickets.issue(grant(1, "alice"), 1000);
    REQUIRE(t);
    CHECK(t->size() >= 32);
    auto g = tickets.redeem(*t, "alice", 1010);
    REQUIRE(g);
    CHECK(g->userId == 1);
    CHECK(g->next == "/user/alice/tree");
    CHECK(g->sessionId == "session-1");
    CHECK_FALSE(tickets.redeem(*t, "alice", 1011));  // used

    auto wrongHost = tickets.issue(grant(1, "alice"), 1000);
    CHECK_FALSE(tickets.redeem(*wrongHost, "bob", 1001));
    CHECK_FALSE(tickets.redeem(*wrongHost, "alice", 1002));  // spent by the attempt on bob's host

    auto late = tickets.issue(grant(1, "alice"), 1000);
    CHECK_FALSE(tickets.redeem(*late, "alice", 1000 + HandoffTickets::kLifetimeSeconds));
    CHECK_FALSE(tickets.redeem("", "alice", 1000));
    CHECK_FALSE(tickets.redeem("not-a-ticket", "alice", 1000));
}

TEST_CASE("handoff tickets are stored hashed") {
    HandoffTickets tickets;
    auto t = tickets.issue(grant(1, "alice"), 1000);
    REQUIRE(t);
    // Redeeming by the stored key (the hash) must not work: only the ticket does.
    CHECK(tickets.held() == 1);
    CHECK_FALSE(tickets.redeem(std::string(64, 'a'), "alice", 1001));
    CHECK(tickets.redeem(*t, "alice", 1001));
}

TEST_CASE("a browser that loops through the hub runs out of tickets for that host") {
    HandoffTickets tickets;
    for (size_t i = 0; i < HandoffTickets::kMaxPerHost; ++i) {
        auto t = tickets.issue(grant(1, "alice"), 1000);
        REQUIRE(t);
        CHECK(tickets.redeem(*t, "alice", 1000));  // used at once: still counts
    }
    CHECK_FALSE(tickets.issue(grant(1, "alice"), 1001));
    CHECK(tickets.issue(grant(1, "bob"), 1001));                                       // another host
    CHECK(tickets.issue(grant(2, "alice"), 1001));                                     // another user
    CHECK(tickets.issue(grant(1, "alice"), 1000 + HandoffTickets::kLifetimeSeconds));  // a minute on
}

TEST_CASE("on the hub's host over https, only __Host- hub cookies count") {
    Request r;
    r.headers = {{"Host", "hub.example.org"},
                 {"Cookie", "jupyterhub-hub-login=planted; other=1"},
                 {"cookie", "__Host-jupyterhub-hub-login=real; __Host-jupyterhub-session-id=s; _xsrf=x"},
                 {"Cookie", "jupyterhub-session-id=planted-too; __Host-unrelated=u"}};
    hubd::renameHubCookiesIn(r);
    CHECK(cookieHeader(r) ==
          "other=1; jupyterhub-hub-login=real; jupyterhub-session-id=s; _xsrf=x; __Host-unrelated=u");

    Request none;
    none.headers = {{"Cookie", "jupyterhub-hub-login=planted"}};
    hubd::renameHubCookiesIn(none);
    CHECK(cookieHeader(none).empty());
}

TEST_CASE("the hub's Set-Cookie gets __Host-, Path=/ and Secure over https") {
    Response r;
    r.headers = {{"Location", "/hub/home"},
                 {"Set-Cookie", "jupyterhub-hub-login=v; Path=/hub/; HttpOnly; SameSite=Lax; Max-Age=60"},
                 {"Set-Cookie", "jupyterhub-session-id=s; Path=/; HttpOnly; SameSite=Lax; Secure"},
                 {"Set-Cookie", "hubd-user-session=u; Path=/user/; HttpOnly"},
                 {"Set-Cookie", "_xsrf=t; Path=/hub/; SameSite=Lax"}};
    Response plain = r;
    hubd::renameHubCookiesOut(r, true);
    REQUIRE(r.headers.size() == 4);
    CHECK(r.headers[0].second == "/hub/home");
    CHECK(r.headers[1].second ==
          "__Host-jupyterhub-hub-login=v; HttpOnly; SameSite=Lax; Max-Age=60; Path=/; Secure");
    CHECK(r.headers[2].second == "__Host-jupyterhub-session-id=s; HttpOnly; SameSite=Lax; Secure; Path=/");
    CHECK(r.headers[3].second == "_xsrf=t; Path=/hub/; SameSite=Lax");

    // Plain http: names stay (no __Host- without Secure); the user session still goes.
    hubd::renameHubCookiesOut(plain, false);
    REQUIRE(plain.headers.size() == 4);
    CHECK(plain.headers[1].second.rfind("jupyterhub-hub-login=v; Path=/hub/", 0) == 0);
}
