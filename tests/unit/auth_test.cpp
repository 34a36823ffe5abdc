// SPDX-License-Identifier: BSD-3-Clause
// Tests for the allow/block/admin policy, login names, Unix groups and the Dummy authenticator.
#include <doctest/doctest.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include "hubcore/auth.h"

namespace {

hub::AccessDecision decide(const hub::Settings& s, const std::string& user,
                           const std::vector<std::string>& groups = {}, bool inDb = false,
                           bool adminInDb = false, std::optional<bool> adminFromAuth = std::nullopt) {
    return hub::decideAccess(s, user, groups, inDb, adminInDb, adminFromAuth);
}

}  // namespace

TEST_CASE("decideAccess: nothing configured allows everybody, admins nobody") {
    hub::Settings s;
    auto d = decide(s, "alice");
    CHECK(d.allowed);
    CHECK_FALSE(d.admin);
    CHECK_FALSE(d.reason.empty());
}

TEST_CASE("decideAccess: allowed_users") {
    hub::Settings s;
    s.allowedUsers = {"alice", "Carol"};
    CHECK(decide(s, "alice").allowed);
    CHECK(decide(s, "carol").allowed);  // configured names are normalised
    CHECK_FALSE(decide(s, "bob").allowed);
    CHECK(decide(s, "bob", {}, /*inDb=*/true).allowed);  // JupyterHub 3.0 keeps DB users allowed
}

TEST_CASE("decideAccess: allowed_groups") {
    hub::Settings s;
    s.allowedGroups = {"jupyter"};
    CHECK(decide(s, "bob", {"users", "jupyter"}).allowed);
    CHECK_FALSE(decide(s, "bob", {"users"}).allowed);
    CHECK_FALSE(decide(s, "bob").allowed);
    s.allowedUsers = {"alice"};
    CHECK(decide(s, "alice").allowed);
    CHECK(decide(s, "bob", {"jupyter"}).allowed);
    CHECK_FALSE(decide(s, "eve", {"users"}).allowed);
}

TEST_CASE("decideAccess: admins are allowed") {
    hub::Settings s;
    s.allowedUsers = {"alice"};
    s.adminUsers = {"root2"};
    auto d = decide(s, "root2");
    CHECK(d.allowed);
    CHECK(d.admin);
    // admin_groups (decided by the authenticator) makes admin and allowed.
    d = decide(s, "bob", {"wheel"}, false, false, true);
    CHECK(d.allowed);
    CHECK(d.admin);
    // An admin flag stored in the database keeps working without admin_groups...
    d = decide(s, "dbadmin", {}, true, true, std::nullopt);
    CHECK(d.allowed);
    CHECK(d.admin);
    // ...but when admin_groups decided "no", it wins over the database (JupyterHub's auth_to_user).
    d = decide(s, "dbadmin", {}, true, true, false);
    CHECK_FALSE(d.admin);
    CHECK(d.allowed);  // still a DB user
    // admin_users always makes admin, whatever admin_groups said.
    d = decide(s, "root2", {}, false, false, false);
    CHECK(d.admin);
    CHECK(d.allowed);
}

TEST_CASE("decideAccess: blocked_users always wins") {
    hub::Settings s;
    s.blockedUsers = {"Mallory"};
    s.adminUsers = {"mallory"};
    s.allowedUsers = {"mallory"};
    s.allowedGroups = {"jupyter"};
    auto d = decide(s, "mallory", {"jupyter"}, true, true, true);
    CHECK_FALSE(d.allowed);
    CHECK_FALSE(d.admin);
    CHECK(d.reason.find("blocked") != std::string::npos);
    CHECK(decide(s, "alice").allowed == false);  // allowed_users set, alice not in it
    s.allowedUsers.clear();
    s.allowedGroups.clear();
    CHECK(decide(s, "alice").allowed);
}

TEST_CASE("normalizeLoginName and username_pattern") {
    hub::Settings s;
    std::string reason;
    CHECK(hub::normalizeLoginName(s, "  Alice ", reason) == "alice");
    CHECK_FALSE(hub::normalizeLoginName(s, "bob\nfake", reason).has_value());
    CHECK(reason.find("control character") != std::string::npos);
    CHECK(reason.find("fake") == std::string::npos);  // the reason never echoes the name
    CHECK_FALSE(hub::normalizeLoginName(s, std::string(10000, 'a'), reason).has_value());

    s.usernamePattern = "[a-z]+";
    CHECK(hub::normalizeLoginName(s, "alice", reason) == "alice");
    CHECK(hub::normalizeLoginName(s, "alice1", reason) == "alice1");  // re.match: anchored at the start only
    CHECK_FALSE(hub::normalizeLoginName(s, "1alice", reason).has_value());
    s.usernamePattern = "[unclosed";
    CHECK_FALSE(hub::normalizeLoginName(s, "alice", reason).has_value());
}

TEST_CASE("mapUsername") {
    hub::Settings s;
    s.usernameMap = {{"Alice", "ALICE2"}};
    CHECK(hub::mapUsername(s, "alice") == "alice2");
    CHECK(hub::mapUsername(s, "bob") == "bob");
}

TEST_CASE("Dummy authenticator without a password accepts any valid name") {
    hub::Settings s;
    s.authenticatorClass = "dummy";
    auto auth = hub::makeAuthenticator(s);
    CHECK(auth->className() == "jupyterhub.auth.DummyAuthenticator");
    auto r = auth->authenticate("  Alice ", "anything");
    CHECK(r.ok);
    CHECK(r.username == "alice");
    CHECK(r.groups.empty());
    CHECK_FALSE(r.admin.has_value());
    CHECK(auth->authenticate("bob", "").ok);
    auto bad = auth->authenticate("bob/../root", "x");
    CHECK_FALSE(bad.ok);
    CHECK_FALSE(bad.failureReason.empty());
    CHECK_FALSE(auth->authenticate("", "x").ok);
}

TEST_CASE("Dummy authenticator with a password") {
    hub::Settings s;
    s.dummyPassword = "pw";
    auto auth = hub::makeDummyAuthenticator(s);
    CHECK(auth->authenticate("alice", "pw").ok);
    auto r = auth->authenticate("alice", "s3cr3t-guess");
    CHECK_FALSE(r.ok);
    CHECK(r.failureReason.find("s3cr3t") == std::string::npos);  // the password is never logged
    CHECK_FALSE(auth->authenticate("alice", "").ok);
    CHECK_FALSE(auth->authenticate("alice", "pw ").ok);
    CHECK_FALSE(auth->authenticate("alice", "p").ok);
}

TEST_CASE("makeAuthenticator dispatch") {
    hub::Settings s;
    CHECK(hub::makeAuthenticator(s)->className() == "jupyterhub.auth.PAMAuthenticator");
    s.authenticatorClass = "kerberos";
    CHECK_THROWS_AS(hub::makeAuthenticator(s), std::invalid_argument);
}

TEST_CASE("PAM authenticator refuses invalid names and passwords before calling PAM") {
    hub::Settings s;
    s.pamService = "hubd-test-service-that-does-not-exist";
    auto auth = hub::makePamAuthenticator(s);
    auto r = auth->authenticate("bo\nb", "pw");
    CHECK_FALSE(r.ok);
    CHECK(r.failureReason.find("username rejected") == 0);
    r = auth->authenticate("bob", std::string("pw\0extra", 8));
    CHECK_FALSE(r.ok);
    CHECK(r.failureReason.find("before PAM") != std::string::npos);
}

TEST_CASE("unixGroupsOf") {
    CHECK(hub::unixGroupsOf("hubd-no-such-user-xyz").empty());
    CHECK(hub::unixGroupsOf("").empty());
    auto root = hub::unixGroupsOf("root");
    CHECK(std::find(root.begin(), root.end(), "root") != root.end());
}

TEST_CASE("GenericOAuthenticator takes no passwords: users sign in at the provider") {
    hub::Settings s;
    s.authenticatorClass = "generic-oauth";
    auto auth = hub::makeAuthenticator(s);
    CHECK(auth->className() == "oauthenticator.generic.GenericOAuthenticator");
    auto r = auth->authenticate("alice", "anything");
    CHECK_FALSE(r.ok);
    CHECK(r.failureReason.find("OAuth provider") != std::string::npos);
}
