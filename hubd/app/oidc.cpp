// SPDX-License-Identifier: BSD-3-Clause
// GenericOAuthenticator's conversation with the provider (oidc.h).
#include "app/oidc.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>

#include "app/git_membership.h"
#include "app/hub.h"
#include "app/outbound_http.h"
#include "hubcore/cookie.h"
#include "hubcore/time.h"
#include "hubcore/token.h"

namespace hubd {

namespace {

constexpr auto kJwksMinInterval = std::chrono::seconds(10);

std::string sha256Raw(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<char*>(md), len);
}

std::string joinScopes(const std::vector<std::string>& scopes) {
    std::string out;
    for (const auto& s : scopes) out += (out.empty() ? "" : " ") + s;
    return out;
}

// GET or POST to the provider, then JSON. `what` names the call in errors.
std::optional<Json> providerJson(const hub::OAuthSettings& s, OutboundRequest request, const char* what,
                                 std::string& error) {
    request.caFile = s.caFile;
    request.headers.emplace_back("Accept", "application/json");
    OutboundReply reply = fetchUrl(request);
    if (reply.status == 0) {
        error = fmt::format("{}: {}", what, reply.error);
        return std::nullopt;
    }
    auto json = parseJson(reply.body);
    if (reply.status != 200) {
        // An OAuth error reply names its error code; show that, not the body.
        const Json* code = json ? json->find("error") : nullptr;
        error = fmt::format("{} answered HTTP {}{}", what, reply.status,
                            code && code->isString() ? " (" + code->asString().substr(0, 64) + ")" : "");
        return std::nullopt;
    }
    if (!json || !json->isObject()) {
        error = fmt::format("{} did not answer with a JSON object", what);
        return std::nullopt;
    }
    return json;
}

const std::string* stringAt(const Json& j, std::string_view key) {
    const Json* v = j.find(key);
    return v && v->isString() ? &v->asString() : nullptr;
}

constexpr std::string_view kProviderTrouble =
    "The answer of the identity provider did not pass the hub's checks. Sign in again; if this keeps "
    "happening, tell the hub's administrator (the hub's log names the reason).";

constexpr std::string_view kOtherOrganisation =
    "This hub admits accounts of its own organisation only, and the identity provider says yours belongs "
    "to another. Sign in with your organisation's account.";

OAuthIdentity refused(std::string reason, std::string_view message = kProviderTrouble) {
    OAuthIdentity id;
    id.reason = std::move(reason);
    id.message = std::string(message);
    return id;
}

}  // namespace

std::string pkceChallenge(std::string_view verifier) {
    return jwt::base64UrlEncode(sha256Raw(verifier));
}

const Json* findClaim(const Json& claims, std::string_view path) {
    if (const Json* whole = claims.find(path)) return whole;  // a claim may contain dots itself (URLs)
    const Json* at = &claims;
    while (at && at->isObject()) {
        size_t dot = path.find('.');
        at = at->find(path.substr(0, dot));
        if (dot == std::string_view::npos) return at;
        path.remove_prefix(dot + 1);
    }
    return nullptr;
}

std::string requiredClaimsProblem(const hub::OAuthSettings& s, const Json& idClaims) {
    for (const auto& [claim, allowed] : s.requiredIdClaims) {
        const std::string* got = stringAt(idClaims, claim);
        if (!got)
            return fmt::format(
                "the ID token has no '{}' claim (an account outside the configured organisation)", claim);
        if (std::find(allowed.begin(), allowed.end(), *got) == allowed.end())
            return fmt::format("the ID token's '{}' claim is '{}', not a configured one", claim,
                               got->substr(0, 100));
    }
    return {};
}

std::string presetUsername(const hub::OAuthSettings& s, const std::string& claimed) {
    const std::string suffix = "@" + s.stripDomain;
    if (s.stripDomain.empty() || claimed.size() <= suffix.size() ||
        claimed.compare(claimed.size() - suffix.size(), suffix.size(), suffix) != 0)
        return claimed;
    return claimed.substr(0, claimed.size() - suffix.size());
}

OidcClient::OidcClient(hub::OAuthSettings settings) : s_(std::move(settings)) {}

std::string OidcClient::ensureReady() {
    std::lock_guard lock(mutex_);
    if (discovered_ || s_.issuer.empty()) return {};
    std::string issuer = s_.issuer;
    while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
    OutboundRequest request;
    request.url = issuer + "/.well-known/openid-configuration";
    std::string error;
    auto doc = providerJson(s_, request, "the provider's discovery document", error);
    if (!doc) return error;
    // OpenID Connect Discovery 4.3: the document must name the issuer it was fetched for.
    const std::string* iss = stringAt(*doc, "issuer");
    if (!iss || *iss != s_.issuer)
        return fmt::format(
            "the discovery document names issuer '{}', not the configured issuer "
            "(OAuthenticator.oidc_issuer) '{}'",
            iss ? iss->substr(0, 200) : "", s_.issuer);
    auto endpoint = [&](std::string& field, const char* key) -> bool {
        const std::string* v = stringAt(*doc, key);
        if (!field.empty() || !v) return true;  // configuration wins over discovery
        const bool safe = v->rfind("https://", 0) == 0 || v->rfind("http://127.", 0) == 0 ||
                          v->rfind("http://localhost", 0) == 0;
        if (!safe) error = fmt::format("the discovery document's {} is not https", key);
        field = *v;
        return safe;
    };
    if (!endpoint(s_.authorizeUrl, "authorization_endpoint") || !endpoint(s_.tokenUrl, "token_endpoint") ||
        !endpoint(jwksUri_, "jwks_uri"))
        return error;
    if (s_.authorizeUrl.empty() || s_.tokenUrl.empty() || jwksUri_.empty())
        return "the discovery document lacks authorization_endpoint, token_endpoint or jwks_uri";
    discovered_ = true;
    return {};
}

std::string OidcClient::authorizeUrl(const std::string& state, const std::string& nonce,
                                     const std::string& verifier) const {
    std::lock_guard lock(mutex_);
    std::string url = s_.authorizeUrl;
    url += url.find('?') == std::string::npos ? '?' : '&';
    url += "response_type=code&client_id=" + urlEncode(s_.clientId) +
           "&redirect_uri=" + urlEncode(s_.callbackUrl) + "&state=" + urlEncode(state) +
           "&code_challenge=" + pkceChallenge(verifier) + "&code_challenge_method=S256";
    if (!s_.scope.empty()) url += "&scope=" + urlEncode(joinScopes(s_.scope));
    if (!s_.issuer.empty()) url += "&nonce=" + urlEncode(nonce);
    return url;
}

std::optional<jwt::KeySet> OidcClient::keys(bool refresh, std::string& error) {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (keys_ && (!refresh || now - keysFetched_ < kJwksMinInterval)) return keys_;
    OutboundRequest request;
    request.url = jwksUri_;
    auto doc = providerJson(s_, request, "the provider's JWKS", error);
    if (!doc) return keys_;  // a provider hiccup keeps the keys we had
    auto set = jwt::KeySet::parse(*doc, &error);
    if (set) {
        keys_ = std::move(set);
        keysFetched_ = now;
    }
    return keys_;
}

OAuthIdentity OidcClient::finish(const std::string& code, const std::string& verifier,
                                 const std::string& nonce) {
    if (std::string why = ensureReady(); !why.empty()) return refused("discovery failed: " + why);
    OutboundRequest token;
    token.method = "POST";
    token.url = s_.tokenUrl;
    token.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    token.body = "grant_type=authorization_code&code=" + urlEncode(code) +
                 "&redirect_uri=" + urlEncode(s_.callbackUrl) + "&code_verifier=" + urlEncode(verifier);
    if (s_.basicAuth) {
        // RFC 6749 2.3.1: both parts form-encoded before Basic.
        token.headers.emplace_back(
            "Authorization",
            "Basic " + hub::base64Encode(urlEncode(s_.clientId) + ":" + urlEncode(s_.clientSecret)));
    } else {
        token.body += "&client_id=" + urlEncode(s_.clientId) + "&client_secret=" + urlEncode(s_.clientSecret);
    }
    std::string error;
    auto tokens = providerJson(s_, token, "the token endpoint", error);
    if (!tokens) return refused("code exchange failed: " + error);
    const std::string* accessToken = stringAt(*tokens, "access_token");
    const std::string* idToken = stringAt(*tokens, "id_token");

    std::optional<Json> idClaims;
    if (!s_.issuer.empty()) {
        if (!idToken)
            return refused("the token endpoint sent no id_token (is 'openid' in OAuthenticator.scope?)");
        jwt::Expectations want;
        want.issuer = s_.issuer;
        want.audience = s_.clientId;
        want.nonce = nonce;
        want.now = hub::unixSeconds(hub::now());
        auto set = keys(false, error);
        if (!set) return refused("no signing keys: " + error);
        jwt::Verified verified = jwt::verifyIdToken(*idToken, *set, want);
        if (verified.failure == jwt::Failure::UnknownKey) {
            // The provider rotated its keys since we fetched them: once more.
            if ((set = keys(true, error))) verified = jwt::verifyIdToken(*idToken, *set, want);
        }
        if (!verified)
            return refused(fmt::format("ID token rejected ({}): {}", jwt::failureName(verified.failure),
                                       verified.error));
        idClaims = std::move(verified.claims);
    }
    if (!s_.requiredIdClaims.empty()) {
        if (!idClaims) return refused("the required ID-token claims cannot be checked without an ID token");
        if (std::string why = requiredClaimsProblem(s_, *idClaims); !why.empty())
            return refused(why, kOtherOrganisation);
    }
    if (s_.userdataUrl.empty()) {
        if (!idClaims) return refused("no userdata_url and no ID token: nothing names the user");
        return fromClaims(*idClaims);
    }
    if (!accessToken) return refused("the token endpoint sent no access_token");
    OutboundRequest userinfo;
    userinfo.url = s_.userdataUrl;
    userinfo.headers.emplace_back("Authorization", "Bearer " + *accessToken);
    auto info = providerJson(s_, userinfo, "the userdata_url", error);
    if (!info) return refused("userinfo failed: " + error);
    if (idClaims) {
        // OpenID Connect Core 5.3.2: userinfo about someone else is not believed.
        const std::string* a = stringAt(*idClaims, "sub");
        const std::string* b = stringAt(*info, "sub");
        if (!a || !b || *a != *b)
            return refused(
                fmt::format("userinfo's sub '{}' differs from the ID token's sub '{}' (OpenID "
                            "Connect Core 5.3.2: the answer is about someone else)",
                            b ? b->substr(0, 100) : "", a ? a->substr(0, 100) : ""));
        for (const auto& [key, value] : idClaims->members())
            if (!info->find(key)) info->set(key, value);
    }
    OAuthIdentity id = fromClaims(*info);
    checkGitAllowLists(s_, *info, *accessToken, id);  // GitHub's and GitLab's allow-lists
    return id;
}

OAuthIdentity OidcClient::fromClaims(const Json& claims) const {
    const Json* name = findClaim(claims, s_.usernameClaim);
    if (!name || !name->isString() || name->asString().empty())
        return refused(
            fmt::format("the provider's claims have no string '{}' (OAuthenticator.username_claim)",
                        s_.usernameClaim),
            "The identity provider did not say who you are. Tell the hub's administrator "
            "(OAuthenticator.username_claim).");
    OAuthIdentity id;
    id.ok = true;
    id.name = presetUsername(s_, name->asString());
    if (const Json* groups = findClaim(claims, s_.claimGroupsKey)) {
        if (groups->isArray()) {
            for (const Json& g : groups->items())
                if (g.isString() && id.groups.size() < 1000) id.groups.push_back(g.asString());
        } else if (groups->isString()) {
            id.groups.push_back(groups->asString());
        }
    }
    return id;
}

std::string OAuthPending::add(Entry entry) {
    purge();
    std::deque<std::string>& mine = bySource_[entry.source];
    while (mine.size() >= kMaxPerSource) {
        entries_.erase(mine.front());
        mine.pop_front();
    }
    if (entries_.size() >= kMaxEntries) {
        if (mine.empty()) bySource_.erase(entry.source);
        return {};
    }
    std::string state = hub::randomHex(24);
    entry.expires = std::chrono::steady_clock::now() + kLifetime;
    mine.push_back(state);
    entries_.emplace(state, std::move(entry));
    return state;
}

std::optional<OAuthPending::Entry> OAuthPending::take(const std::string& state) {
    auto it = entries_.find(state);
    if (it == entries_.end()) return std::nullopt;
    Entry entry = std::move(it->second);
    entries_.erase(it);
    forget(entry.source, state);
    if (entry.expires < std::chrono::steady_clock::now()) return std::nullopt;
    return entry;
}

void OAuthPending::forget(const std::string& source, const std::string& state) {
    auto it = bySource_.find(source);
    if (it == bySource_.end()) return;
    std::erase(it->second, state);
    if (it->second.empty()) bySource_.erase(it);
}

void OAuthPending::purge() {
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(entries_, [&](const auto& kv) { return kv.second.expires < now; });
    // All states live equally long, so the expired ones lead each list.
    for (auto it = bySource_.begin(); it != bySource_.end();) {
        auto& states = it->second;
        while (!states.empty() && !entries_.contains(states.front())) states.pop_front();
        it = states.empty() ? bySource_.erase(it) : std::next(it);
    }
}

std::string localAccountProblem(const std::string& user, int64_t minUid) {
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    int rc = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
    if (rc != 0 || !found)
        return fmt::format(
            "this server has no account '{}'. Ask the administrator to create it, or to map "
            "your name to your account (Authenticator.username_map)",
            user);
    if (static_cast<int64_t>(pw.pw_uid) < minUid)
        return fmt::format(
            "'{}' is a system account (uid {} is below OAuthenticator.min_uid {}), which "
            "never signs in through the identity provider",
            user, pw.pw_uid, minUid);
    return {};
}

}  // namespace hubd
