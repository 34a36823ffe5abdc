// SPDX-License-Identifier: BSD-3-Clause
// The relying-party side of OAuth 2.0 / OpenID Connect for
// GenericOAuthenticator: discovery, the authorization URL (state, nonce,
// PKCE S256), the code exchange, the ID-token check (jwt.h), userinfo, and
// the claims that name the user and their groups.
//
// OidcClient's blocking calls run on worker threads (outbound_http.h); it
// locks what it caches. OAuthPending lives on the event loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "app/jwt.h"
#include "hubcore/config.h"

namespace hubd {

// PKCE (RFC 7636): base64url(SHA-256(verifier)).
std::string pkceChallenge(std::string_view verifier);

// A claim by name; "a.b" walks into nested objects (Keycloak's realm_access.roles).
const Json* findClaim(const Json& claims, std::string_view path);

// Who the provider says signed in, or why nothing is believed.
struct OAuthIdentity {
    bool ok = false;
    std::string reason;   // for the log: names the failed check ("ID token rejected (audience): ...")
    std::string message;  // for the page: a sentence, no secrets
    std::string name;     // the username claim, raw (untrusted)
    std::vector<std::string> groups;
    // GitHub's and GitLab's allow-lists (git_membership.h): when one is
    // configured, it admits like allowed_users; trouble = some answer was
    // neither yes nor no (the provider failed), so nobody was admitted by it.
    bool providerListConfigured = false;
    bool providerListAllowed = false;
    bool providerListTrouble = false;
    std::string providerListReason;  // for the log
};

// "" when the verified ID token carries every OAuthSettings::requiredIdClaims
// claim with an allowed value (Google's hd, Azure AD's tid), else why not.
std::string requiredClaimsProblem(const hub::OAuthSettings& s, const Json& idClaims);
// The username for a claimed name: "user@dom" -> "user" when dom is
// OAuthSettings::stripDomain (GoogleOAuthenticator with one hosted_domain).
std::string presetUsername(const hub::OAuthSettings& s, const std::string& claimed);

class OidcClient {
public:
    explicit OidcClient(hub::OAuthSettings settings);
    const hub::OAuthSettings& settings() const { return s_; }

    // Worker thread. Fetches the discovery document once (again after a
    // failure). "" when the endpoints are known, else why not.
    std::string ensureReady();
    // After ensureReady. `state`, `nonce` and `verifier` are this sign-in's.
    std::string authorizeUrl(const std::string& state, const std::string& nonce,
                             const std::string& verifier) const;
    // Worker thread: the code for tokens (once), the ID token checked,
    // userinfo fetched, the claims read.
    OAuthIdentity finish(const std::string& code, const std::string& verifier, const std::string& nonce);

private:
    // The provider's keys; `refresh` fetches them again (an unknown kid),
    // at most once every few seconds.
    std::optional<jwt::KeySet> keys(bool refresh, std::string& error);
    OAuthIdentity fromClaims(const Json& claims) const;

    hub::OAuthSettings s_;
    mutable std::mutex mutex_;
    bool discovered_ = false;
    std::string jwksUri_;
    std::optional<jwt::KeySet> keys_;
    std::chrono::steady_clock::time_point keysFetched_{};
};

// Sign-ins sent to the provider and not yet back: state -> what the
// callback needs. Single use; entries expire. Event-loop thread only.
class OAuthPending {
public:
    struct Entry {
        std::string binding;  // the random value of this browser's hubd-oauth-state cookie
        std::string nonce;
        std::string verifier;  // PKCE
        std::string next;      // validated local path, or ""
        std::string source;    // who started it: LoginThrottle::sourceKey of the client's address
        std::chrono::steady_clock::time_point expires;
    };
    static constexpr size_t kMaxEntries = 10000;
    // Per source: its oldest state makes room for its next one, so one
    // address cannot fill the table and refuse everybody else.
    static constexpr size_t kMaxPerSource = 64;
    static constexpr std::chrono::minutes kLifetime{10};

    // The new state, or "" when too many sign-ins are pending.
    std::string add(Entry entry);
    // Removes and returns the entry; nullopt if unknown, used or expired.
    std::optional<Entry> take(const std::string& state);

private:
    void purge();
    void forget(const std::string& source, const std::string& state);
    std::unordered_map<std::string, Entry> entries_;
    std::unordered_map<std::string, std::deque<std::string>> bySource_;  // states, oldest first
};

// "" when `user` may be signed in through OAuth: a Unix account exists with
// uid >= minUid. Else a sentence for page and log naming the fix.
std::string localAccountProblem(const std::string& user, int64_t minUid);

}  // namespace hubd
