// SPDX-License-Identifier: BSD-3-Clause
// GitHub's and GitLab's allow-lists asked of their REST APIs (git_membership.h).
#include "app/git_membership.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <optional>

#include "app/hub.h"
#include "app/outbound_http.h"
#include "hubcore/log.h"

namespace hubd {

namespace {

constexpr std::string_view kBadAccount =
    "The provider named your account in a way this hub does not accept. Tell the hub's administrator "
    "(the hub's log names the reason).";

// Each call waits at most kCallTimeout, all of one sign-in's calls together
// kBudget: the browser is waiting (and OutboundRequest's default is 10 s).
constexpr auto kCallTimeout = std::chrono::seconds(5);
constexpr auto kBudget = std::chrono::seconds(15);

OutboundReply ask(const hub::OAuthSettings& s, const std::string& url, const std::string& accessToken,
                  std::chrono::steady_clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left < std::chrono::seconds(1)) {
        OutboundReply none;
        none.error =
            fmt::format("not asked: the sign-in's {} s for membership checks were spent", kBudget.count());
        return none;
    }
    OutboundRequest request;
    request.timeout = std::min<std::chrono::milliseconds>(kCallTimeout, left);
    request.url = url;
    request.caFile = s.caFile;
    request.headers.emplace_back("Accept", "application/json");
    request.headers.emplace_back("Authorization", "Bearer " + accessToken);
    request.maxBytes = 64 * 1024;
    return fetchUrl(request);
}

// One allow-list entry's answer: Unknown is logged here (with the name and
// the status, never the token) and collected for the refusal's reason.
struct Tally {
    Tally(std::string providerName, std::string listName)
        : provider(std::move(providerName)), list(std::move(listName)) {}
    std::string provider;  // "GitHub" or "GitLab"
    std::string list;      // the trait, for the log
    std::string notes;
    bool trouble = false;
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::now() + kBudget;

    bool record(Membership m, const std::string& what, const OutboundReply& reply, const std::string& user) {
        const std::string status = reply.status ? fmt::format("HTTP {}", reply.status) : reply.error;
        if (m == Membership::Unknown) {
            trouble = true;
            hub::logWarning(
                "{} membership of {} in {} could not be checked ({}): counted as not a member; check that "
                "{} is reachable and that the OAuth app may read memberships",
                provider, hub::safe(user, 64), hub::safe(what, 200), hub::safe(status, 200), provider);
        }
        notes += fmt::format("{}{} ({})", notes.empty() ? "" : ", ", what,
                             m == Membership::Unknown ? "unknown: " + status : "not a member, " + status);
        return m == Membership::Member;
    }

    void finish(OAuthIdentity& id, bool allowed, const std::string& why) const {
        id.providerListConfigured = true;
        id.providerListAllowed = allowed;
        id.providerListTrouble = !allowed && trouble;
        id.providerListReason = allowed ? why : fmt::format("not a member of {}: {}", list, notes);
    }
};

void checkGithub(const hub::OAuthSettings& s, const Json& userdata, const std::string& token,
                 OAuthIdentity& id) {
    const Json* login = userdata.find("login");
    if (!login || !login->isString() || !isGithubLogin(login->asString())) {
        id.ok = false;
        id.reason = "GitHub's user data has no login of GitHub's shape ([A-Za-z0-9-], at most 39): refused";
        id.message = std::string(kBadAccount);
        return;
    }
    if (s.allowedOrganizations.empty()) return;
    Tally tally{"GitHub", "GitHubOAuthenticator.allowed_organizations"};
    for (const auto& entry : s.allowedOrganizations) {
        OutboundReply reply =
            ask(s, githubMembershipUrl(s.apiUrl, entry, login->asString()), token, tally.deadline);
        const bool team = entry.find(':') != std::string::npos;
        const std::string what = fmt::format("{} '{}'", team ? "team" : "organization", entry);
        if (tally.record(githubMembership(reply.status), what, reply, login->asString()))
            return tally.finish(id, true, "member of GitHub " + what);
    }
    tally.finish(id, false, {});
}

void checkGitlab(const hub::OAuthSettings& s, const Json& userdata, const std::string& token,
                 OAuthIdentity& id) {
    if (s.allowedGitlabGroups.empty() && s.allowedProjectIds.empty()) return;
    const Json* idJson = userdata.find("id");
    const double raw = idJson && idJson->isNumber() ? idJson->asNumber() : -1;
    if (!(raw > 0 && raw < 9e15 && std::floor(raw) == raw)) {
        id.ok = false;
        id.reason = "GitLab's user data has no numeric id to check allowed_gitlab_groups with: refused";
        id.message = std::string(kBadAccount);
        return;
    }
    const auto userId = static_cast<int64_t>(raw);
    Tally tally{"GitLab", "GitLabOAuthenticator.allowed_gitlab_groups / allowed_project_ids"};
    for (const auto& group : s.allowedGitlabGroups) {
        OutboundReply reply =
            ask(s, gitlabGroupMembershipUrl(s.apiUrl, group, userId), token, tally.deadline);
        const std::string what = fmt::format("group '{}'", group);
        if (tally.record(gitlabGroupMembership(reply.status, reply.body, userId), what, reply, id.name))
            return tally.finish(id, true, "member of GitLab " + what);
    }
    for (int64_t project : s.allowedProjectIds) {
        OutboundReply reply =
            ask(s, gitlabProjectMembershipUrl(s.apiUrl, project, userId), token, tally.deadline);
        const std::string what = fmt::format("project {}", project);
        if (tally.record(gitlabProjectMembership(reply.status, reply.body, userId), what, reply, id.name))
            return tally.finish(id, true, "Developer or higher in GitLab " + what);
    }
    tally.finish(id, false, {});
}

}  // namespace

// '.' too: a segment "." or ".." would be resolved away by some servers.
std::string pathSegment(std::string_view s) {
    return percentEncode(s, "-_~");
}

bool isGithubLogin(std::string_view login) {
    if (login.empty() || login.size() > 39 || login.front() == '-') return false;
    for (unsigned char c : login)
        if (!std::isalnum(c) && c != '-') return false;
    return true;
}

std::string githubMembershipUrl(const std::string& api, const std::string& orgTeam,
                                const std::string& login) {
    const auto colon = orgTeam.find(':');
    if (colon == std::string::npos)
        return fmt::format("{}/orgs/{}/members/{}", api, pathSegment(orgTeam), pathSegment(login));
    return fmt::format("{}/orgs/{}/teams/{}/members/{}", api, pathSegment(orgTeam.substr(0, colon)),
                       pathSegment(orgTeam.substr(colon + 1)), pathSegment(login));
}

std::string gitlabGroupMembershipUrl(const std::string& api, const std::string& group, int64_t userId) {
    return fmt::format("{}/groups/{}/members/all/{}", api, pathSegment(group), userId);
}

std::string gitlabProjectMembershipUrl(const std::string& api, int64_t projectId, int64_t userId) {
    return fmt::format("{}/projects/{}/members/all/{}", api, projectId, userId);
}

Membership githubMembership(int status) {
    if (status == 204) return Membership::Member;
    // 302: the token's owner cannot see the organization's private members; 404: not a member.
    if (status == 302 || status == 404) return Membership::NotMember;
    return Membership::Unknown;
}

namespace {

// A member's JSON: an object about this user (not a proxy's page, not a list).
const Json* memberAbout(const std::optional<Json>& json, int64_t userId) {
    if (!json || !json->isObject()) return nullptr;
    const Json* id = json->find("id");
    return id && id->isNumber() && id->asNumber() == static_cast<double>(userId) ? &*json : nullptr;
}

}  // namespace

Membership gitlabGroupMembership(int status, const std::string& body, int64_t userId) {
    if (status == 404) return Membership::NotMember;
    if (status != 200) return Membership::Unknown;
    return memberAbout(parseJson(body), userId) ? Membership::Member : Membership::Unknown;
}

Membership gitlabProjectMembership(int status, const std::string& body, int64_t userId) {
    if (status == 404) return Membership::NotMember;
    if (status != 200) return Membership::Unknown;
    const auto json = parseJson(body);
    const Json* member = memberAbout(json, userId);
    const Json* level = member ? member->find("access_level") : nullptr;
    if (!level || !level->isNumber()) return Membership::Unknown;
    return level->asNumber() >= 30 ? Membership::Member : Membership::NotMember;
}

void checkGitAllowLists(const hub::OAuthSettings& s, const Json& userdata, const std::string& accessToken,
                        OAuthIdentity& id) {
    if (!id.ok) return;
    if (s.preset == "github") checkGithub(s, userdata, accessToken, id);
    if (s.preset == "gitlab") checkGitlab(s, userdata, accessToken, id);
}

void applyProviderList(const hub::Settings& s, const std::string& user,
                       const std::vector<std::string>& groups, const OAuthIdentity& id,
                       hub::AccessDecision& decision) {
    if (!id.providerListConfigured || decision.admin) return;
    auto has = [](const std::vector<std::string>& list, const std::string& v) {
        return std::find(list.begin(), list.end(), v) != list.end();
    };
    if (has(s.blockedUsers, user) || has(s.allowedUsers, user)) return;
    for (const auto& g : groups)
        if (has(s.allowedGroups, g)) return;
    decision.allowed = id.providerListAllowed;
    decision.reason = id.providerListReason;
}

}  // namespace hubd
