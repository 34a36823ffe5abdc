// SPDX-License-Identifier: BSD-3-Clause
// Allow/block/admin policy, login-name handling, Unix groups and the Dummy authenticator.
#include "hubcore/auth.h"

#include <grp.h>
#include <openssl/crypto.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <regex>
#include <stdexcept>

#include "hubcore/cookie.h"
#include "hubcore/username.h"

namespace hub {

namespace {

// Upper bound for the passwd/group buffers: a group with thousands of
// members needs a lot, but an endless ERANGE loop must still stop.
constexpr size_t kMaxNssBuffer = 16 * 1024 * 1024;
constexpr int kMaxGroups = 65536;

// Settings lists are written by hand; compare them the way names are stored.
bool listHas(const std::vector<std::string>& list, const std::string& normalisedName) {
    return std::any_of(list.begin(), list.end(),
                       [&](const std::string& entry) { return normalizeUsername(entry) == normalisedName; });
}

bool anyGroupIn(const std::vector<std::string>& wanted, const std::vector<std::string>& groups) {
    return std::any_of(groups.begin(), groups.end(), [&](const std::string& g) {
        return std::find(wanted.begin(), wanted.end(), g) != wanted.end();
    });
}

size_t initialNssBuffer(int which) {
    long n = ::sysconf(which);
    return n > 0 ? static_cast<size_t>(n) : 1024;
}

// JupyterHub uses re.match: anchored at the start only.
bool matchesPattern(const std::string& pattern, const std::string& name, std::string& reason) {
    try {
        std::regex re(pattern, std::regex::ECMAScript);
        if (std::regex_search(name, re, std::regex_constants::match_continuous)) return true;
        reason = "username does not match Authenticator.username_pattern";
    } catch (const std::regex_error&) {
        reason = "Authenticator.username_pattern could not be applied";
    }
    return false;
}

class DummyAuthenticator final : public Authenticator {
public:
    explicit DummyAuthenticator(const Settings& settings) : settings_(settings) {}

    std::string className() const override { return "jupyterhub.auth.DummyAuthenticator"; }

    AuthResult authenticate(const std::string& username, const std::string& password) override {
        AuthResult result;
        auto name = normalizeLoginName(settings_, username, result.failureReason);
        if (!name) return result;
        result.username = *name;
        if (!settings_.dummyPassword.empty()) {
            // Comparing MACs rather than the strings hides the password's length too.
            const std::string key = "hubd dummy password check";
            std::string want = hmacSha256(key, settings_.dummyPassword);
            std::string got = hmacSha256(key, password);
            if (CRYPTO_memcmp(want.data(), got.data(), want.size()) != 0) {
                result.failureReason = "wrong password (DummyAuthenticator.password)";
                return result;
            }
        }
        if (!applyUsernameMap(settings_, *name, result)) return result;
        result.ok = true;
        return result;
    }

private:
    Settings settings_;
};

// GenericOAuthenticator signs users in at the provider (hubd/app/oidc.h):
// a password given to the hub proves nothing, so the token API's
// {"auth": ...} and the login form's POST are refused.
class OAuthPasswordRefuser final : public Authenticator {
public:
    std::string className() const override { return "oauthenticator.generic.GenericOAuthenticator"; }
    AuthResult authenticate(const std::string&, const std::string&) override {
        AuthResult result;
        result.failureReason = "passwords are not accepted: users sign in with the OAuth provider";
        return result;
    }
};

}  // namespace

std::optional<std::string> normalizeLoginName(const Settings& settings, std::string_view raw,
                                              std::string& reason) {
    // Checking the raw length first keeps a 10 MB name from being case-mapped.
    if (raw.size() > 4 * kMaxUsernameLength) {
        reason = "username rejected: too long";
        return std::nullopt;
    }
    std::string name = normalizeUsername(raw);
    if (auto invalid = validateUsername(name)) {
        reason = "username rejected: " + *invalid;
        return std::nullopt;
    }
    if (!settings.usernamePattern.empty() && !matchesPattern(settings.usernamePattern, name, reason))
        return std::nullopt;
    return name;
}

bool applyUsernameMap(const Settings& settings, const std::string& name, AuthResult& result) {
    result.username = mapUsername(settings, name);
    if (auto invalid = validateUsername(result.username)) {
        result.failureReason = "username_map produced an invalid name: " + *invalid;
        return false;
    }
    return true;
}

std::string mapUsername(const Settings& settings, const std::string& name) {
    for (const auto& [from, to] : settings.usernameMap)
        if (normalizeUsername(from) == name) return normalizeUsername(to);
    return name;
}

AccessDecision decideAccess(const Settings& settings, const std::string& username,
                            const std::vector<std::string>& groups, bool inDatabase, bool adminInDatabase,
                            std::optional<bool> adminFromAuth) {
    AccessDecision d;
    if (listHas(settings.blockedUsers, username)) {
        d.reason = "in Authenticator.blocked_users";
        return d;
    }
    // An authenticator that decided admin (admin_groups) overrides the stored
    // flag, as JupyterHub's auth_to_user does; admin_users always grants it.
    bool adminFromConfig = listHas(settings.adminUsers, username);
    d.admin = adminFromConfig || adminFromAuth.value_or(adminInDatabase);
    if (d.admin) {
        d.allowed = true;
        d.reason = adminFromConfig             ? "in Authenticator.admin_users"
                   : adminFromAuth.has_value() ? "in admin_groups"
                                               : "admin in the database";
        return d;
    }
    if (settings.allowedUsers.empty() && settings.allowedGroups.empty()) {
        d.allowed = true;
        d.reason = "no allowed_users or allowed_groups configured";
    } else if (listHas(settings.allowedUsers, username)) {
        d.allowed = true;
        d.reason = "in Authenticator.allowed_users";
    } else if (anyGroupIn(settings.allowedGroups, groups)) {
        d.allowed = true;
        d.reason = "member of an allowed group";
    } else if (inDatabase) {
        d.allowed = true;
        d.reason = "already a hub user";
    } else {
        d.reason = "not in allowed_users or allowed_groups";
    }
    return d;
}

std::vector<std::string> unixGroupsOf(const std::string& username) {
    std::vector<std::string> out;
    if (username.empty() || username.find('\0') != std::string::npos) return out;

    struct passwd pw {};
    struct passwd* pwResult = nullptr;
    std::vector<char> buf(initialNssBuffer(_SC_GETPW_R_SIZE_MAX));
    for (;;) {
        int rc = ::getpwnam_r(username.c_str(), &pw, buf.data(), buf.size(), &pwResult);
        if (rc == ERANGE && buf.size() < kMaxNssBuffer) {
            buf.resize(buf.size() * 2);
            continue;
        }
        if (rc != 0 || !pwResult) return out;
        break;
    }

    // getgrouplist reports the size it needs; the group database may grow
    // between calls, hence the loop.
    std::vector<gid_t> gids(32);
    for (int attempt = 0;; ++attempt) {
        int n = static_cast<int>(gids.size());
        if (::getgrouplist(username.c_str(), pw.pw_gid, gids.data(), &n) >= 0) {
            gids.resize(static_cast<size_t>(n));
            break;
        }
        if (attempt > 8 || n > kMaxGroups) return out;
        gids.resize(static_cast<size_t>(std::max(n, static_cast<int>(gids.size()) * 2)));
    }

    std::vector<char> gbuf(initialNssBuffer(_SC_GETGR_R_SIZE_MAX));
    for (gid_t gid : gids) {
        struct group gr {};
        struct group* grResult = nullptr;
        int rc = 0;
        for (;;) {
            rc = ::getgrgid_r(gid, &gr, gbuf.data(), gbuf.size(), &grResult);
            if (rc == ERANGE && gbuf.size() < kMaxNssBuffer) {
                gbuf.resize(gbuf.size() * 2);
                continue;
            }
            break;
        }
        // A gid without a name cannot match a configured group name.
        if (rc != 0 || !grResult || !gr.gr_name) continue;
        std::string name = gr.gr_name;
        if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
    }
    return out;
}

std::unique_ptr<Authenticator> makeDummyAuthenticator(const Settings& settings) {
    return std::make_unique<DummyAuthenticator>(settings);
}

std::unique_ptr<Authenticator> makeAuthenticator(const Settings& settings) {
    if (settings.authenticatorClass == "pam") return makePamAuthenticator(settings);
    if (settings.authenticatorClass == "dummy") return makeDummyAuthenticator(settings);
    if (settings.authenticatorClass == "ldap") return makeLdapAuthenticator(settings);
    if (settings.authenticatorClass == "generic-oauth") return std::make_unique<OAuthPasswordRefuser>();
    throw std::invalid_argument("unknown authenticator class '" + settings.authenticatorClass +
                                "': use 'pam', 'dummy' or 'generic-oauth'");
}

}  // namespace hub
