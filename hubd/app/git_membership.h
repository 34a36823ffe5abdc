// SPDX-License-Identifier: BSD-3-Clause
// The allow-lists of GitHubOAuthenticator and GitLabOAuthenticator, asked of
// the provider's REST API with the signed-in user's access token, as
// OAuthenticator 16 asks them:
//   GitHub  GET {api}/orgs/{org}/members/{login}               204 member; 302, 404 not
//           GET {api}/orgs/{org}/teams/{team}/members/{login}  (for "org:team")
//   GitLab  GET {api}/groups/{group path}/members/all/{user id}      200 member; 404 not
//           GET {api}/projects/{project id}/members/all/{user id}    200 with access_level >= 30
// Any other answer (5xx, a timeout, 200 with a body where GitHub sends 204,
// a GitLab 200 that is not the member's JSON, a redirect elsewhere) admits
// nobody: fail closed, logged with the name and
// the status. A GitLab group is asked by its exact path, never found by a
// search (CVE-2018-7206 admitted members of groups whose names contained
// the allowed one).
//
// Every name goes into the path as one percent-encoded segment ('/' and '.'
// too), so neither a configured name nor a provider-sent login can change
// which API path is asked; GitHub logins must also have GitHub's shape.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "app/json.h"
#include "app/oidc.h"
#include "hubcore/auth.h"
#include "hubcore/config.h"

namespace hubd {

// RFC 3986 unreserved characters except '.', the rest as %XX.
std::string pathSegment(std::string_view s);
// GitHub's login shape: 1..39 of [A-Za-z0-9-], not starting with '-'.
bool isGithubLogin(std::string_view login);

std::string githubMembershipUrl(const std::string& api, const std::string& orgTeam, const std::string& login);
std::string gitlabGroupMembershipUrl(const std::string& api, const std::string& group, int64_t userId);
std::string gitlabProjectMembershipUrl(const std::string& api, int64_t projectId, int64_t userId);

enum class Membership { Member, NotMember, Unknown };
Membership githubMembership(int status);
// GitLab's 200 must carry the member: a JSON object with the user's id.
Membership gitlabGroupMembership(int status, const std::string& body, int64_t userId);
// ... and access_level Developer (30) or higher.
Membership gitlabProjectMembership(int status, const std::string& body, int64_t userId);

// Worker thread. For the "github" and "gitlab" presets: refuses `id` when
// the user data cannot name a safe login / id, else fills id.providerList*
// when an allow-list is configured. Never logs the token.
void checkGitAllowLists(const hub::OAuthSettings& s, const Json& userdata, const std::string& accessToken,
                        OAuthIdentity& id);

// OAuthenticator 16's check_allowed for these presets: admins, allowed_users
// and allowed_groups are admitted as decideAccess says; anyone else only by
// the provider's allow-list, also when allowed_users is empty (where
// decideAccess would admit everyone). Blocked users stay refused.
void applyProviderList(const hub::Settings& s, const std::string& user,
                       const std::vector<std::string>& groups, const OAuthIdentity& id,
                       hub::AccessDecision& decision);

}  // namespace hubd
