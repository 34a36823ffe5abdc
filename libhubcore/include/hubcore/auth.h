// SPDX-License-Identifier: BSD-3-Clause
// Authenticators and the allow/block/admin policy (JupyterHub semantics).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hubcore/config.h"

namespace hub {

struct AuthResult {
    bool ok = false;
    std::string username;               // normalised
    std::optional<bool> admin;          // set when admin_groups decided it
    std::string failureReason;          // for the log only; never shown to the user
    std::vector<std::string> groups;    // Unix groups of the user (for allowed/admin groups)
    std::vector<std::string> logNotes;  // PAM messages and warnings, already log-safe; never the password
};

// authenticate() may block (PAM): hubd calls it on a worker thread.
// Implementations must be thread-safe.
class Authenticator {
public:
    virtual ~Authenticator() = default;
    virtual std::string className() const = 0;  // "jupyterhub.auth.PAMAuthenticator"
    virtual AuthResult authenticate(const std::string& username, const std::string& password) = 0;
};

std::unique_ptr<Authenticator> makeDummyAuthenticator(const Settings& settings);
std::unique_ptr<Authenticator> makePamAuthenticator(const Settings& settings);
std::unique_ptr<Authenticator> makeAuthenticator(const Settings& settings);

// The allow policy, applied after a successful authentication:
// blocked wins; admins are allowed; if allowed_users and allowed_groups are
// both empty, every authenticated user is allowed; otherwise the name must be
// in allowed_users or one of the user's groups in allowed_groups.
// `knownUsers`: names already in the database are allowed too (JupyterHub 3.0
// adds allowed users to the DB and keeps DB users allowed).
struct AccessDecision {
    bool allowed = false;
    bool admin = false;
    std::string reason;  // for the log
};
AccessDecision decideAccess(const Settings& settings, const std::string& username,
                            const std::vector<std::string>& groups, bool inDatabase, bool adminInDatabase,
                            std::optional<bool> adminFromAuth);

// The login-name steps every authenticator shares (JupyterHub's
// normalize_username + validate_username): trim and lowercase, then
// validateUsername and Authenticator.username_pattern. nullopt with `reason`
// set when refused; the reason never repeats the name, which may be hostile.
std::optional<std::string> normalizeLoginName(const Settings& settings, std::string_view raw,
                                              std::string& reason);
// Authenticator.username_map, applied after authentication (normalised keys).
std::string mapUsername(const Settings& settings, const std::string& name);
// Sets result.username to the mapped name; false (with failureReason) if the
// mapping produced an invalid name. The last step of every authenticator.
bool applyUsernameMap(const Settings& settings, const std::string& name, AuthResult& result);

// Unix groups of a user (getgrouplist + getgrnam_r); empty if unknown.
std::vector<std::string> unixGroupsOf(const std::string& username);

}  // namespace hub
