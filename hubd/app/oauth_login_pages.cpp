// SPDX-License-Identifier: BSD-3-Clause
// The OAuth2 / OpenID Connect sign-in (GenericOAuthenticator).
//
// GET /hub/oauth_login: a fresh state (single use, 10 minutes), nonce and
// PKCE verifier are kept here; the state is bound to this browser by the
// random value of an HttpOnly cookie (hubd-oauth-state); the
// browser goes to the provider's authorization endpoint. The cookie's path
// is the hub's, so a second sign-in in another tab reuses the value and
// both stay valid.
// GET /hub/oauth_callback: the state must be one we issued, unused, and
// bound to this browser's cookie; then, on a worker thread, the code is
// exchanged (once: the state is gone), the ID token checked (oidc.h), and
// the claimed name mapped to a local Unix account that must exist and not
// be a system account. Every refusal is a page saying what to do and a log
// line naming the failed check.
// Both are limited per source (oauth_limits.h): starts by rate, provider
// calls by count; over a limit, 429 and Retry-After.
#include <fmt/format.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <utility>

#include "app/git_membership.h"
#include "app/login_throttle.h"
#include "app/oauth_limits.h"
#include "app/oidc.h"
#include "app/pages.h"
#include "hubcore/audit.h"
#include "hubcore/cookie.h"
#include "hubcore/log.h"
#include "hubcore/token.h"

namespace hubd {

using hubd::http::Request;
using hubd::http::Responder;
using hubd::http::Response;

class OAuthLogin {
public:
    OAuthLogin(const hub::OAuthSettings& settings, unsigned workers)
        : client(settings), limits(OAuthLimits::Policy::forWorkers(workers)) {}
    OidcClient client;
    OAuthPending pending;
    OAuthLimits limits;  // per source: starts, and calls to the provider in flight
};

std::shared_ptr<OAuthLogin> makeOAuthLogin(const hub::Settings& settings, unsigned workers) {
    if (settings.authenticatorClass != "generic-oauth") return nullptr;
    return std::make_shared<OAuthLogin>(settings.oauth, workers);
}

namespace {

constexpr std::string_view kStateCookie = "hubd-oauth-state";
constexpr size_t kBindingHexBytes = 16;

std::string bindingCookie(const Request& request) {
    for (const auto& [name, value] : hub::parseCookieHeader(request.header("Cookie")))
        if (name == kStateCookie && value.size() == 2 * kBindingHexBytes &&
            std::all_of(value.begin(), value.end(),
                        [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
            return value;
    return {};
}

bool sameSecret(const std::string& a, const std::string& b) {
    return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The admin's log line (source and limit) and the audit line of a 429.
void logLimited(std::string_view peer, std::string_view what, const OAuthLimits::Verdict& v) {
    hub::logWarning("OAuth {} from {} refused (429, Retry-After {} s): {}", what, peer, v.retryAfter.count(),
                    v.why);
    hub::audit("login.throttled", {{"user", ""},
                                   {"source", peer},
                                   {"via", "oauth"},
                                   {"retry_after", std::to_string(v.retryAfter.count())}});
}

std::string limitedMessage(const OAuthLimits::Verdict& v) {
    return fmt::format(
        "Too many sign-ins from your network address are in progress. Wait {} seconds, then {}.",
        v.retryAfter.count(),
        v.refusal == OAuthLimits::Refusal::SourceRate ? "sign in again" : "reload this page");
}

bool anyGroupIn(const std::vector<std::string>& wanted, const std::vector<std::string>& groups) {
    return std::any_of(groups.begin(), groups.end(), [&](const std::string& g) {
        return std::find(wanted.begin(), wanted.end(), g) != wanted.end();
    });
}

}  // namespace

Response Hub::Pages::renderOAuthLogin(int status, const std::string& next, std::string_view error) const {
    std::string href = hub_.hubPrefix() + "oauth_login";
    if (!next.empty()) href += "?next=" + urlEncode(next);
    std::string body = "<h1>Sign in</h1>\n";
    if (!error.empty()) body += fmt::format("<p class=\"error\" role=\"alert\">{}</p>\n", htmlEscape(error));
    body += fmt::format("<p><a class=\"button\" id=\"oauth_login\" href=\"{}\">Sign in with {}</a></p>",
                        htmlEscape(href), htmlEscape(oauth_->client.settings().loginService));
    return page(status, "Sign in", body, nullptr);
}

void Hub::Pages::oauthLogin(Request& request, Responder responder) {
    if (!oauth_) return notFound(request, std::move(responder));
    if (const hub::UserRecord* user = hub_.cookieUser(request))
        return responder.send(redirect(302, nextUrl(request, user)));
    std::string next = request.queryParam("next").value_or("");
    if (!isLocalPath(next)) next.clear();
    const std::string peer = hub_.clientView(request).address;
    // Discovery below is a call to the provider on a worker thread: limited like the code exchange.
    OAuthLimits::Verdict verdict = oauth_->limits.admitStart(peer, std::chrono::steady_clock::now());
    if (verdict.admitted()) verdict = oauth_->limits.acquireCall(peer);
    if (!verdict.admitted()) {
        logLimited(peer, "sign-in", verdict);
        Response r = renderOAuthLogin(429, next, limitedMessage(verdict));
        r.set("Retry-After", std::to_string(verdict.retryAfter.count()));
        return responder.send(std::move(r));
    }
    OAuthPending::Entry entry;
    entry.binding = bindingCookie(request);  // one per browser: parallel tabs each keep working
    if (entry.binding.empty()) entry.binding = hub::randomHex(kBindingHexBytes);
    entry.nonce = hub::randomHex(16);
    entry.verifier = hub::randomHex(32);  // 64 characters, within PKCE's 43..128
    entry.next = next;
    entry.source = LoginThrottle::sourceKey(peer);
    const std::string binding = entry.binding, nonce = entry.nonce, verifier = entry.verifier;
    const std::string state = oauth_->pending.add(std::move(entry));
    if (state.empty()) {
        oauth_->limits.releaseCall(peer);
        hub::logWarning("OAuth sign-in from {} refused: {} sign-ins are waiting for the provider", peer,
                        OAuthPending::kMaxEntries);
        Response r = renderOAuthLogin(503, next, "Too many sign-ins are in progress. Try again in a minute.");
        r.set("Retry-After", "60");
        return responder.send(std::move(r));
    }
    auto shared = std::make_shared<Responder>(std::move(responder));
    const Origin origin = hub_.originOf(request);
    std::shared_ptr<OAuthLogin> oauth = oauth_;
    // Discovery may fetch from the provider: never on the event loop.
    hub_.workers().submit(
        [oauth]() { return oauth->client.ensureReady(); },
        [this, shared, oauth, state, nonce, verifier, binding, origin, next, peer](std::string error) {
            oauth->limits.releaseCall(peer);
            if (!error.empty()) {
                hub::logError("OAuth sign-in from {}: the provider is not usable: {}", peer,
                              hub::safe(error, 400));
                oauth->pending.take(state);
                return shared->send(
                    renderOAuthLogin(502, next,
                                     "The identity provider cannot be reached. Try again later; if this "
                                     "persists, tell the hub's administrator."));
            }
            Response r = redirect(302, oauth->client.authorizeUrl(state, nonce, verifier));
            r.headers.emplace_back("Set-Cookie",
                                   fmt::format("{}={}{}; Max-Age={}", kStateCookie, binding,
                                               cookieAttributes(origin, hub_.hubPrefix()),
                                               std::chrono::seconds(OAuthPending::kLifetime).count()));
            shared->send(std::move(r));
        });
}

void Hub::Pages::oauthCallback(Request& request, Responder responder) {
    if (!oauth_) return notFound(request, std::move(responder));
    const std::string peer = hub_.clientView(request).address;
    const std::string& service = oauth_->client.settings().loginService;
    bool holding = false;  // a provider-call slot (below)
    auto refuse = [&](int status, std::string_view reason, std::string_view message) {
        if (std::exchange(holding, false)) oauth_->limits.releaseCall(peer);
        hub::logWarning("OAuth sign-in from {} refused: {}", peer, hub::safe(reason, 400));
        hub_.loginFinished(false, peer, "", "oauth", reason);
        responder.send(renderHubPage(
            hub_, status, "Sign-in refused",
            fmt::format(
                "<h1>Sign-in refused</h1>\n<p class=\"error\" role=\"alert\" id=\"oauth_error\">{}</p>\n"
                "<p><a href=\"{}login\">Sign in again</a></p>",
                htmlEscape(message), hub_.hubPrefix()),
            nullptr));
    };
    // A slot for the code exchange before the state is taken: refused
    // here, the same callback still works after Retry-After (a reload).
    if (OAuthLimits::Verdict verdict = oauth_->limits.acquireCall(peer); !verdict.admitted()) {
        logLimited(peer, "callback", verdict);
        Response r = renderHubPage(
            hub_, 429, "Too many sign-ins",
            fmt::format(
                "<h1>Too many sign-ins</h1>\n<p class=\"error\" role=\"alert\" id=\"oauth_error\">{}</p>",
                htmlEscape(limitedMessage(verdict))),
            nullptr);
        r.set("Retry-After", std::to_string(verdict.retryAfter.count()));
        return responder.send(std::move(r));
    }
    holding = true;
    const std::string state = request.queryParam("state").value_or("");
    // Taken before anything else: a state is good for one callback, whatever happens to it.
    auto entry = state.empty() ? std::nullopt : oauth_->pending.take(state);
    if (auto error = request.queryParam("error"))
        return refuse(
            403, fmt::format("the provider answered error '{}'", hub::safe(*error, 64)),
            fmt::format("{} did not sign you in ({}). Sign in again.", service, error->substr(0, 64)));
    if (!entry)
        return refuse(400, "unknown, expired or already used state",
                      "This sign-in link is not valid: it expired, was already used, or was not started "
                      "here. Sign in again.");
    if (!sameSecret(bindingCookie(request), entry->binding))
        return refuse(400, "state not bound to this browser (hubd-oauth-state cookie missing or different)",
                      "This sign-in was started in another browser, or your browser does not keep cookies "
                      "for this site. Sign in again from this browser, with cookies allowed.");
    const std::string code = request.queryParam("code").value_or("");
    if (code.empty() || code.size() > 4096)
        return refuse(400, "the callback carries no code",
                      "The identity provider sent no sign-in code. Sign in again.");

    auto shared = std::make_shared<Responder>(std::move(responder));
    LoginReply reply{entry->next, hub_.originOf(request), {}, Hub::browserSessionId(request)};
    reply.request.target = request.target;
    if (!entry->next.empty()) reply.request.query = "next=" + urlEncode(entry->next);
    std::shared_ptr<OAuthLogin> oauth = oauth_;
    holding = false;  // the worker's callback gives the slot back
    hub_.workers().submit(
        [oauth, code, verifier = entry->verifier, nonce = entry->nonce]() {
            return oauth->client.finish(code, verifier, nonce);
        },
        [this, shared, reply, peer, service, oauth](OAuthIdentity id) {
            oauth->limits.releaseCall(peer);
            auto refuseLater = [&](int status, const std::string& who, std::string_view reason,
                                   std::string_view message) {
                hub::logWarning("OAuth sign-in{} from {} refused: {}", who.empty() ? "" : " of " + who, peer,
                                hub::safe(reason, 400));
                hub_.loginFinished(false, peer, who, "oauth", reason);
                shared->send(renderHubPage(
                    hub_, status, "Sign-in refused",
                    fmt::format("<h1>Sign-in refused</h1>\n<p class=\"error\" role=\"alert\" "
                                "id=\"oauth_error\">{}</p>\n<p><a href=\"{}login\">Sign in again</a></p>",
                                htmlEscape(message), hub_.hubPrefix()),
                    nullptr));
            };
            if (!id.ok) return refuseLater(403, "", id.reason, id.message);
            const hub::Settings& settings = hub_.settings();
            std::string why;
            auto normalized = hub::normalizeLoginName(settings, id.name, why);
            if (!normalized)
                return refuseLater(
                    403, hub::safe(id.name, 64), "the provider's username: " + why,
                    fmt::format("{} signed you in, but the name it gave is not a valid username "
                                "on this hub. Tell the hub's administrator.",
                                service));
            hub::AuthResult result;
            if (!hub::applyUsernameMap(settings, *normalized, result))
                return refuseLater(403, *normalized, result.failureReason,
                                   "Your name maps to an invalid username. Tell the hub's administrator.");
            // Servers run as the user's own Unix account (sudospawner): the
            // provider's name must land on a real, non-system account.
            if (std::string problem = localAccountProblem(result.username, settings.oauth.minUid);
                !problem.empty())
                return refuseLater(403, result.username, problem,
                                   fmt::format("You signed in with {}, but {}.", service, problem));
            result.groups = std::move(id.groups);
            if (!settings.adminGroups.empty()) result.admin = anyGroupIn(settings.adminGroups, result.groups);
            const hub::UserRecord* existing = hub_.findUser(result.username);
            // OAuthenticator 16 (allow_existing_users = False): being in the
            // database allows nobody; the provider's groups decide every time.
            auto decision = hub::decideAccess(settings, result.username, result.groups, false,
                                              existing && existing->admin, result.admin);
            applyProviderList(settings, result.username, result.groups, id, decision);  // GitHub, GitLab
            if (!decision.allowed && id.providerListTrouble)
                return refuseLater(502, result.username, decision.reason,
                                   fmt::format("{} did not answer whether your account may use this hub. Try "
                                               "again later; if this persists, tell the hub's administrator.",
                                               service));
            if (!decision.allowed)
                return refuseLater(
                    403, result.username, decision.reason,
                    fmt::format("You signed in with {} as '{}', but that account is not allowed "
                                "to use this hub. Ask the hub's administrator for access.",
                                service, result.username));
            std::string error;
            existing = hub_.recordLogin(result.username, existing, decision.admin, error);
            if (!existing) {
                hub::logError("Could not add user {}: {}", result.username, error);
                return refuseLater(500, result.username, "could not record the user",
                                   "The hub could not record your login.");
            }
            hub::logInfo("User logged in: {} from {} (via {}, {})", existing->name, peer, service,
                         decision.reason);
            hub_.loginFinished(true, peer, existing->name, "oauth");
            loginSucceeded(shared, reply, *existing);
        });
}

}  // namespace hubd
