// SPDX-License-Identifier: BSD-3-Clause
// Scope expansion, filters and intersection (JupyterHub 3.0 semantics).
#include "app/scopes.h"

#include <doctest/doctest.h>

#include <algorithm>

using namespace hubd;

namespace {
bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}
ScopeSet userRole(const std::string& name) {
    return expandScopes(*builtinRoleScopes("user"), ScopeOwner{ScopeOwner::Kind::User, name});
}
}  // namespace

TEST_CASE("the user role is 'self', filtered to the owner") {
    auto rendered = renderScopes(userRole("bob"));
    CHECK(contains(rendered, "read:users!user=bob"));
    CHECK(contains(rendered, "access:servers!user=bob"));
    CHECK(contains(rendered, "tokens!user=bob"));
    CHECK(!contains(rendered, "list:users"));
    CHECK(!contains(rendered, "read:users"));
    Resource bob{"bob", {}, "bob/", {}, {}};
    Resource alice{"alice", {}, "alice/", {}, {}};
    CHECK(checkScopes(userRole("bob"), {"read:users"}, bob) == ScopeVerdict::Allowed);
    CHECK(checkScopes(userRole("bob"), {"read:users"}, alice) == ScopeVerdict::FilteredOut);
    CHECK(checkScopes(userRole("bob"), {"list:users"}, alice) == ScopeVerdict::Missing);
    CHECK(checkScopes(userRole("bob"), {"admin:users"}, bob) == ScopeVerdict::Missing);
}

TEST_CASE("admin role expands to subscopes, unfiltered") {
    auto admin = expandScopes(*builtinRoleScopes("admin"), ScopeOwner{ScopeOwner::Kind::User, "root-ish"});
    for (const char* s :
         {"admin:users", "users", "read:users", "list:users", "read:users:name", "delete:users",
          "admin:servers", "servers", "delete:servers", "read:servers", "admin:groups", "shutdown"})
        CHECK_MESSAGE(holdsUnfiltered(admin, s), s);
}

TEST_CASE("server role resolves bare !user to the owner") {
    auto server = expandScopes(*builtinRoleScopes("server"), ScopeOwner{ScopeOwner::Kind::User, "bob"});
    auto rendered = renderScopes(server);
    CHECK(contains(rendered, "users:activity!user=bob"));
    CHECK(contains(rendered, "access:servers!user=bob"));
    CHECK(contains(rendered, "read:users:activity!user=bob"));
    CHECK(rendered.size() == 3);
}

TEST_CASE("a token never holds more than its owner") {
    ScopeOwner bob{ScopeOwner::Kind::User, "bob"};
    auto requested = expandScopes({"admin:users", "read:users!user=bob", "read:users!user=alice"}, bob);
    auto effective = intersectScopes(requested, userRole("bob"), {});
    auto rendered = renderScopes(effective);
    CHECK(!contains(rendered, "admin:users"));
    CHECK(contains(rendered, "read:users!user=bob"));
    CHECK(!contains(rendered, "read:users!user=alice"));
    // admin:users implies delete:users; bob holds none of it.
    CHECK(!holds(effective, "delete:users", Resource{"bob", {}, "bob/", {}, {}}));
}

TEST_CASE("group filters apply to members, and intersect against user filters") {
    ScopeOwner svc{ScopeOwner::Kind::Service, "culler"};
    auto groupScoped = expandScopes({"read:users!group=physics"}, svc);
    CHECK(holds(groupScoped, "read:users", Resource{"ann", {"physics"}, "", {}, {}}));
    CHECK(!holds(groupScoped, "read:users", Resource{"ben", {"chemistry"}, "", {}, {}}));
    std::map<std::string, std::vector<std::string>> groups = {{"ann", {"physics"}}};
    auto tokenForAnn = expandScopes({"read:users!user=ann", "read:users!user=ben"}, svc);
    auto effective = intersectScopes(tokenForAnn, groupScoped, groups);
    CHECK(holds(effective, "read:users", Resource{"ann", {"physics"}, "", {}, {}}));
    CHECK(!holds(effective, "read:users", Resource{"ben", {}, "", {}, {}}));
}

TEST_CASE("scope validation names the problem") {
    CHECK(!validateScope("read:users"));
    CHECK(!validateScope("read:users!user=bob"));
    CHECK(validateScope("read:everything").value().find("unknown scope") != std::string::npos);
    CHECK(validateScope("read:users!planet=mars").value().find("unknown filter") != std::string::npos);
    CHECK(validateScope(""));
}

TEST_CASE("!server= applies to that server only, and user filters cover their servers") {
    ScopeOwner svc{ScopeOwner::Kind::Service, "watch"};
    auto one = expandScopes({"read:servers!server=ann/"}, svc);
    CHECK(contains(renderScopes(one), "read:users:name!server=ann/"));  // the filter carries to subscopes
    CHECK(checkScopes(one, {"read:servers"}, Resource{"ann", {}, "ann/", {}, {}}) == ScopeVerdict::Allowed);
    CHECK(checkScopes(one, {"read:servers"}, Resource{"ben", {}, "ben/", {}, {}}) ==
          ScopeVerdict::FilteredOut);
    CHECK(checkScopes(one, {"delete:servers"}, Resource{"ann", {}, "ann/", {}, {}}) == ScopeVerdict::Missing);
    // A token asking for ann's server of an owner holding read:servers!user=ann keeps it.
    auto owner = expandScopes({"read:servers!user=ann"}, svc);
    auto effective = intersectScopes(one, owner, {});
    CHECK(holds(effective, "read:servers", Resource{"ann", {}, "ann/", {}, {}}));
    // ...but not the other way round: a server filter never widens to the user.
    auto wide = intersectScopes(expandScopes({"read:servers!user=ben"}, svc), one, {});
    CHECK(!holds(wide, "read:servers", Resource{"ben", {}, "ben/", {}, {}}));
}

TEST_CASE("!group= filters name groups as resources, never users' other groups") {
    ScopeOwner svc{ScopeOwner::Kind::Service, "g"};
    auto team = expandScopes({"groups!group=team"}, svc);
    Resource teamGroup;
    teamGroup.group = "team";
    Resource otherGroup;
    otherGroup.group = "other";
    CHECK(checkScopes(team, {"groups"}, teamGroup) == ScopeVerdict::Allowed);
    CHECK(checkScopes(team, {"read:groups"}, teamGroup) == ScopeVerdict::Allowed);  // subscope
    CHECK(checkScopes(team, {"groups"}, otherGroup) == ScopeVerdict::FilteredOut);
    CHECK(checkScopes(team, {"delete:groups"}, teamGroup) == ScopeVerdict::Missing);
    // A !user= filter never opens a group.
    auto userOnly = expandScopes({"read:groups!user=ann"}, svc);
    CHECK(checkScopes(userOnly, {"read:groups"}, teamGroup) == ScopeVerdict::FilteredOut);
    // admin:groups holds groups, delete:groups and list:groups.
    auto admin = expandScopes({"admin:groups"}, svc);
    for (const char* s : {"groups", "delete:groups", "list:groups", "read:groups", "read:groups:name"})
        CHECK_MESSAGE(holdsUnfiltered(admin, s), s);
}

TEST_CASE("full admin: every scope of the admin role, unfiltered; admin:users is not enough") {
    ScopeOwner ann{ScopeOwner::Kind::User, "ann"};
    CHECK(isFullAdmin(expandScopes(*builtinRoleScopes("admin"), ann)));
    // CVE-2024-41942: holding admin:users (with all its subscopes) is not admin.
    CHECK(!isFullAdmin(expandScopes({"admin:users"}, ann)));
    CHECK(!isFullAdmin(expandScopes({"admin:users", "admin:servers", "admin:groups"}, ann)));
    // A filtered copy of every admin scope is not admin either.
    std::vector<std::string> filtered;
    for (const auto& s : *builtinRoleScopes("admin")) filtered.push_back(s + "!user=ann");
    CHECK(!isFullAdmin(expandScopes(filtered, ann)));
    // Admins without admin_access reach only their own servers and are still admins.
    std::vector<std::string> narrowed = *builtinRoleScopes("admin");
    std::replace(narrowed.begin(), narrowed.end(), std::string("access:servers"),
                 std::string("access:servers!user=ann"));
    CHECK(isFullAdmin(expandScopes(narrowed, ann)));
}
