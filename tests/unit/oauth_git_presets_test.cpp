// SPDX-License-Identifier: BSD-3-Clause
// GitHubOAuthenticator and GitLabOAuthenticator: the configuration
// (OAuthenticator 16's names and defaults, refusals) and the membership
// calls' URLs and answers (app/git_membership.h).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "app/git_membership.h"
#include "app/json.h"
#include "hubcore/config.h"

using hubd::Membership;

namespace {

hub::LoadResult load(const std::string& text) {
    char path[] = "/tmp/hubd-git-presets-XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    std::ofstream(path) << text;
    auto r = hub::loadSettings(std::string(path), {});
    ::unlink(path);
    return r;
}

bool hasError(const hub::LoadResult& r, std::string_view needle) {
    for (const auto& d : r.diagnostics)
        if (d.severity == hub::ConfigDiagnostic::Severity::Error &&
            d.message.find(needle) != std::string::npos)
            return true;
    return false;
}

std::string errors(const hub::LoadResult& r) {
    std::string out;
    for (const auto& d : r.diagnostics) out += d.format() + "\n";
    return out;
}

const std::string kClient =
    "c.OAuthenticator.client_id = 'hub'\n"
    "c.OAuthenticator.client_secret = 'sec'\n"
    "c.OAuthenticator.oauth_callback_url = 'https://hub.example/hub/oauth_callback'\n";

}  // namespace

TEST_CASE("GitHubOAuthenticator: OAuthenticator 16's endpoints and defaults") {
    for (const char* name :
         {"github", "oauthenticator.github.GitHubOAuthenticator", "oauthenticator.GitHubOAuthenticator"}) {
        auto r = load(std::string("c.JupyterHub.authenticator_class = '") + name + "'\n" + kClient);
        INFO(errors(r));
        REQUIRE(r.ok());
        const auto& o = r.settings.oauth;
        CHECK(r.settings.authenticatorClass == "generic-oauth");
        CHECK(o.preset == "github");
        CHECK(o.issuer.empty());
        CHECK(o.authorizeUrl == "https://github.com/login/oauth/authorize");
        CHECK(o.tokenUrl == "https://github.com/login/oauth/access_token");
        CHECK(o.apiUrl == "https://api.github.com");
        CHECK(o.userdataUrl == "https://api.github.com/user");
        CHECK(o.usernameClaim == "login");
        CHECK(o.loginService == "GitHub");
        CHECK(o.scope.empty());
        CHECK_FALSE(o.basicAuth);
    }
    // GitHub Enterprise Server: the API under /api/v3; read:org added for the allow-list.
    auto ghe = load("c.JupyterHub.authenticator_class = 'github'\n" + kClient +
                    "c.GitHubOAuthenticator.github_url = 'https://git.example.org/'\n"
                    "c.GitHubOAuthenticator.allowed_organizations = {'my-org', 'my-org:my-team'}\n"
                    "c.OAuthenticator.scope = ['user:email']\n");
    INFO(errors(ghe));
    REQUIRE(ghe.ok());
    CHECK(ghe.settings.oauth.authorizeUrl == "https://git.example.org/login/oauth/authorize");
    CHECK(ghe.settings.oauth.userdataUrl == "https://git.example.org/api/v3/user");
    CHECK(ghe.settings.oauth.scope == std::vector<std::string>{"user:email", "read:org"});
    CHECK(ghe.settings.oauth.allowedOrganizations == std::vector<std::string>{"my-org", "my-org:my-team"});
}

TEST_CASE("GitHub: github_url from $GITHUB_URL / $GITHUB_HOST, checked") {
    ::setenv("GITHUB_HOST", "ghe.example.org", 1);
    auto host = load("c.JupyterHub.authenticator_class = 'github'\n" + kClient);
    ::unsetenv("GITHUB_HOST");
    REQUIRE(host.ok());
    CHECK(host.settings.oauth.githubUrl == "https://ghe.example.org");
    CHECK(host.settings.oauth.apiUrl == "https://ghe.example.org/api/v3");
    ::setenv("GITHUB_URL", "http://ghe.example.org", 1);
    auto plain = load("c.JupyterHub.authenticator_class = 'github'\n" + kClient);
    ::unsetenv("GITHUB_URL");
    CHECK(hasError(plain, "must be an https:// URL"));
    CHECK(hasError(load("c.JupyterHub.authenticator_class = 'github'\n" + kClient +
                        "c.GitHubOAuthenticator.github_url = 'http://github.example.org'\n"),
                   "GitHubOAuthenticator.github_url must be the server's https:// URL"));
    CHECK(load("c.JupyterHub.authenticator_class = 'github'\n" + kClient +
               "c.GitHubOAuthenticator.github_url = 'http://127.0.0.1:8123'\n")
              .ok());
}

TEST_CASE("GitHub and GitLab: refusals at start-up") {
    const std::string gh = "c.JupyterHub.authenticator_class = 'github'\n" + kClient;
    const std::string gl = "c.JupyterHub.authenticator_class = 'gitlab'\n" + kClient;
    // The old allow-list names are never ignored (GHSA-384w-5v3f-q499).
    CHECK(hasError(load(gh + "c.GitHubOAuthenticator.github_organization_whitelist = {'my-org'}\n"),
                   "rename it to GitHubOAuthenticator.allowed_organizations"));
    CHECK(hasError(load(gl + "c.GitLabOAuthenticator.gitlab_group_whitelist = {'g'}\n"),
                   "rename it to GitLabOAuthenticator.allowed_gitlab_groups"));
    CHECK(hasError(load(gl + "c.GitLabOAuthenticator.gitlab_project_id_whitelist = {7}\n"),
                   "rename it to GitLabOAuthenticator.allowed_project_ids"));
    // ... not even while another authenticator is active.
    CHECK_FALSE(load("c.GitHubOAuthenticator.github_organization_whitelist = {'my-org'}\n").ok());
    CHECK(load(gh + "c.GitHubOAuthenticator.github_organization_whitelist = []\n").ok());
    CHECK(hasError(load(gh + "c.GitHubOAuthenticator.populate_teams_in_auth_state = True\n"),
                   "hubd keeps no auth_state"));
    CHECK(hasError(load(gh + "c.GitHubOAuthenticator.allowed_organizations = {'a:b:c'}\n"),
                   "must be an organization ('my-org') or an organization's team"));
    CHECK(hasError(load(gh + "c.GitHubOAuthenticator.allowed_organizations = {'a/b'}\n"),
                   "must be an organization"));
    CHECK(hasError(load(gh + "c.OAuthenticator.token_url = 'https://evil.example/token'\n"),
                   "GitHubOAuthenticator knows its provider's endpoints"));
    CHECK(hasError(load(gh + "c.OAuthenticator.oidc_issuer = 'https://github.com'\n"),
                   "GitHubOAuthenticator is plain OAuth 2.0"));
    CHECK(hasError(load(gl + "c.GitLabOAuthenticator.allowed_project_ids = {'x'}\n"),
                   "must be a project's numeric id"));
    CHECK(hasError(load(gl + "c.GitLabOAuthenticator.allowed_gitlab_groups = {'/g'}\n"),
                   "must be a group's full path"));
}

TEST_CASE("GitLabOAuthenticator: OAuthenticator 16's endpoints and defaults") {
    for (const char* name :
         {"gitlab", "oauthenticator.gitlab.GitLabOAuthenticator", "oauthenticator.GitLabOAuthenticator"}) {
        auto r = load(std::string("c.JupyterHub.authenticator_class = '") + name + "'\n" + kClient);
        INFO(errors(r));
        REQUIRE(r.ok());
        const auto& o = r.settings.oauth;
        CHECK(o.preset == "gitlab");
        CHECK(o.authorizeUrl == "https://gitlab.com/oauth/authorize");
        CHECK(o.tokenUrl == "https://gitlab.com/oauth/token");
        CHECK(o.userdataUrl == "https://gitlab.com/api/v4/user");
        CHECK(o.usernameClaim == "username");
        CHECK(o.loginService == "GitLab");
        CHECK(o.scope == std::vector<std::string>{"read_user"});
    }
    auto groups = load("c.JupyterHub.authenticator_class = 'gitlab'\n" + kClient +
                       "c.GitLabOAuthenticator.gitlab_url = 'https://gitlab.example.org'\n"
                       "c.GitLabOAuthenticator.allowed_gitlab_groups = {'my-group/sub'}\n"
                       "c.GitLabOAuthenticator.allowed_project_ids = {42, '43'}\n");
    INFO(errors(groups));
    REQUIRE(groups.ok());
    CHECK(groups.settings.oauth.apiUrl == "https://gitlab.example.org/api/v4");
    CHECK(groups.settings.oauth.scope == std::vector<std::string>{"read_user", "read_api"});
    CHECK(groups.settings.oauth.allowedProjectIds == std::vector<int64_t>{42, 43});
    ::setenv("GITLAB_HOST", "gl.example.org", 1);
    auto host = load("c.JupyterHub.authenticator_class = 'gitlab'\n" + kClient);
    ::unsetenv("GITLAB_HOST");
    CHECK(host.settings.oauth.userdataUrl == "https://gl.example.org/api/v4/user");
}

TEST_CASE("Membership URLs: every name is one percent-encoded path segment") {
    CHECK(hubd::githubMembershipUrl("https://api.github.com", "my-org", "alice") ==
          "https://api.github.com/orgs/my-org/members/alice");
    CHECK(hubd::githubMembershipUrl("https://api.github.com", "my-org:my_team", "alice") ==
          "https://api.github.com/orgs/my-org/teams/my_team/members/alice");
    // A hostile login (or name) never changes the path.
    CHECK(hubd::githubMembershipUrl("https://api", "my-org", "../x") ==
          "https://api/orgs/my-org/members/%2E%2E%2Fx");
    CHECK(hubd::githubMembershipUrl("https://api", "my-org", "a/b?c#d") ==
          "https://api/orgs/my-org/members/a%2Fb%3Fc%23d");
    CHECK(hubd::githubMembershipUrl("https://api", "..", "..") == "https://api/orgs/%2E%2E/members/%2E%2E");
    CHECK(hubd::gitlabGroupMembershipUrl("https://gl/api/v4", "my-group/sub.grp", 7) ==
          "https://gl/api/v4/groups/my-group%2Fsub%2Egrp/members/all/7");
    CHECK(hubd::gitlabProjectMembershipUrl("https://gl/api/v4", 42, 7) ==
          "https://gl/api/v4/projects/42/members/all/7");
    CHECK(hubd::pathSegment("a b%") == "a%20b%25");

    CHECK(hubd::isGithubLogin("octo-cat42"));
    CHECK(hubd::isGithubLogin(std::string(39, 'a')));
    CHECK_FALSE(hubd::isGithubLogin(std::string(40, 'a')));
    for (const char* bad : {"", "-x", "../x", "a/b", "..", "a.b", "a_b", "a b", "\xc3\xa9"})
        CHECK_FALSE(hubd::isGithubLogin(bad));
}

TEST_CASE("Membership answers: only the documented ones count, anything else fails closed") {
    CHECK(hubd::githubMembership(204) == Membership::Member);
    CHECK(hubd::githubMembership(404) == Membership::NotMember);
    CHECK(hubd::githubMembership(302) == Membership::NotMember);
    for (int status : {0, 200, 201, 301, 307, 401, 403, 500, 502, 503})
        CHECK(hubd::githubMembership(status) == Membership::Unknown);
    const std::string member = R"({"id":7,"username":"u","access_level":10})";
    CHECK(hubd::gitlabGroupMembership(200, member, 7) == Membership::Member);
    CHECK(hubd::gitlabGroupMembership(404, "", 7) == Membership::NotMember);
    // A 200 that is not this member (a proxy's page, a list, someone else) proves nothing.
    for (const char* body : {"", "<html>", "[]", R"([{"id":7}])", R"({"id":8})", R"({"id":"7"})"})
        CHECK(hubd::gitlabGroupMembership(200, body, 7) == Membership::Unknown);
    for (int status : {0, 204, 302, 401, 403, 500})
        CHECK(hubd::gitlabGroupMembership(status, member, 7) == Membership::Unknown);
    CHECK(hubd::gitlabProjectMembership(200, R"({"id":7,"access_level":30})", 7) == Membership::Member);
    CHECK(hubd::gitlabProjectMembership(200, R"({"id":7,"access_level":50})", 7) == Membership::Member);
    CHECK(hubd::gitlabProjectMembership(200, R"({"id":7,"access_level":20})", 7) == Membership::NotMember);
    CHECK(hubd::gitlabProjectMembership(404, "", 7) == Membership::NotMember);
    CHECK(hubd::gitlabProjectMembership(200, R"({"id":8,"access_level":50})", 7) == Membership::Unknown);
    CHECK(hubd::gitlabProjectMembership(200, R"({"id":7})", 7) == Membership::Unknown);
    CHECK(hubd::gitlabProjectMembership(200, "not json", 7) == Membership::Unknown);
    CHECK(hubd::gitlabProjectMembership(500, R"({"id":7,"access_level":50})", 7) == Membership::Unknown);
}

TEST_CASE("The allow-list admits like allowed_users; blocked users stay out") {
    hub::Settings s;
    hubd::OAuthIdentity id;
    id.providerListConfigured = true;
    id.providerListAllowed = false;
    id.providerListReason = "not a member";
    // Nothing else configured: decideAccess alone would admit everyone; the list refuses.
    auto d = hub::decideAccess(s, "bob", {}, false, false, std::nullopt);
    REQUIRE(d.allowed);
    hubd::applyProviderList(s, "bob", {}, id, d);
    CHECK_FALSE(d.allowed);
    CHECK(d.reason == "not a member");
    // allowed_users still admits a non-member (OAuthenticator 16's check_allowed).
    s.allowedUsers = {"alice"};
    d = hub::decideAccess(s, "alice", {}, false, false, std::nullopt);
    hubd::applyProviderList(s, "alice", {}, id, d);
    CHECK(d.allowed);
    // A member is admitted, unless blocked.
    id.providerListAllowed = true;
    id.providerListReason = "member of GitHub organization 'o'";
    d = hub::decideAccess(s, "bob", {}, false, false, std::nullopt);
    hubd::applyProviderList(s, "bob", {}, id, d);
    CHECK(d.allowed);
    CHECK(d.reason == "member of GitHub organization 'o'");
    s.blockedUsers = {"bob"};
    d = hub::decideAccess(s, "bob", {}, false, false, std::nullopt);
    hubd::applyProviderList(s, "bob", {}, id, d);
    CHECK_FALSE(d.allowed);
}
