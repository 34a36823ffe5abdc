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
