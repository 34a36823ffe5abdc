// SPDX-License-Identifier: BSD-3-Clause
// OAuth2 authorization-code provider (contract section 2.4-2.5).
#include "app/oauth.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "app/json.h"
#include "app/pages.h"
#include "hubcore/cookie.h"
#include "hubcore/log.h"
#include "hubcore/token.h"

namespace hubd {

using hubd::http::Request;
using hubd::http::Responder;
using hubd::http::Response;

namespace {

constexpr int64_t kCodeLifetimeSeconds = 300;

Response oauthError(int status, std::string_view error, std::string_view description) {
    std::string body;
    JsonWriter(body)
        .beginObject()
        .key("error")
        .value(error)
        .key("error_description")
        .value(description)
        .endObject();
    Response r = jsonResponse(status, std::move(body));
    r.set("Cache-Control", "no-store");
    return r;
}

// The server a client belongs to: "bob/" from access:servers!server=bob/.
std::string serverOfClient(const hub::OAuthClientRecord& client) {
    const std::string marker = "access:servers!server=";
    for (const auto& s : client.allowedScopes)
        if (s.rfind(marker, 0) == 0) return s.substr(marker.size());
    return {};
}

void authorize(Hub& hub, Request& request, Responder responder) {
    const hub::UserRecord* user = hub.cookieUser(request);
    if (!user) {
        // Log in first, then come back here (3.0: next = the full authorize URL).
        return responder.send(redirect(302, hub.hubPrefix() + "login?next=" + urlEncode(request.target)));
    }
    std::string clientId = request.queryParam("client_id").value_or("");
    std::string redirectUri = request.queryParam("redirect_uri").value_or("");
    std::string responseType = request.queryParam("response_type").value_or("");
    std::string state = request.queryParam("state").value_or("");
    auto client = clientId.empty() ? std::nullopt : hub.store().findOAuthClient(clientId);
    auto errorPage = [&](int status, const std::string& message) {
        responder.send(renderHubPage(
            hub, status, "Authorization failed",
            "<h1>Authorization failed</h1>\n<p class=\"error\">" + htmlEscape(message) + "</p>", user));
    };
    // Never redirect anywhere before the client and redirect_uri check out.
    if (!client) return errorPage(400, "Unknown OAuth client " + hub::safe(clientId, 100));
    if (redirectUri != client->redirectUri)
        return errorPage(400, "The redirect_uri does not match the one registered for " + client->identifier);
    if (responseType != "code") return errorPage(400, "Only response_type=code is supported");
    if (state.size() > 4096) return errorPage(400, "The state parameter is too long");

    std::string server = serverOfClient(*client);
    std::string owner = server.substr(0, server.find('/'));
    Resource target{owner, hub.groupsOf(owner), server, {}, {}};
    ScopeSet held = hub.userScopes(*user);
    if (!holds(held, "access:servers", target)) {
        hub::logWarning("{} may not access the server of {} (OAuth authorize refused)", user->name, owner);
        return errorPage(
            403, "You do not have permission to access Server at " + hub.baseUrl() + "user/" + owner + "/");
    }
    if (owner != user->name) {
        // Someone else's server (an admin while admin_access is on): an
        // explicit consent step, posted back from this very page.
        if (request.method != "POST") {
            std::string body = fmt::format(
                "<h1>Open {}'s server?</h1>\n<p class=\"notice\">You are about to use the server of "
                "<strong>{}</strong> as yourself ({}). Everything you do there runs as {}.</p>\n"
                "<form method=\"post\" action=\"\"><input type=\"hidden\" name=\"_xsrf\" value=\"{}\">"
                "<button type=\"submit\" id=\"authorize\">Authorize</button></form>",
                htmlEscape(owner), htmlEscape(owner), htmlEscape(user->name), htmlEscape(owner),
                htmlEscape(hub.xsrfToken(Hub::browserSessionId(request), user)));
            return responder.send(renderHubPage(hub, 200, "Authorize access", body, user));
        }
        // As JupyterHub 3.0: the scheme is compared apart, because a
        // TLS-terminating proxy that sends no X-Forwarded-Proto makes an
        // https page look like http here; only http -> https is refused.
        std::string_view referer = request.header("Referer");
        Origin o = hub.originOf(request);
        const auto schemeEnd = referer.find("://");
        const std::string_view refererScheme =
            schemeEnd == std::string_view::npos ? std::string_view{} : referer.substr(0, schemeEnd);
        const std::string_view refererRest =
            schemeEnd == std::string_view::npos ? referer : referer.substr(schemeEnd + 3);
        if (refererScheme == "http" && o.scheme == "https")
            return errorPage(403, "Not allowing authorization form submitted from insecure page");
        if (refererScheme.empty() || refererRest != o.host + request.target)
            return errorPage(403, "Authorization form must be sent from authorization page");
        if (!hub.xsrfValid(request, user))
            return errorPage(403,
                             "The authorization form has expired or was not sent from this hub "
                             "(XSRF check failed): go back, reload the page and authorize again");
    }

    // 3.0's granted scopes: identify the user, and access to this one server.
    std::vector<std::string> scopes = {"read:users:name!user", "read:users:groups!user",
                                       "access:servers!server=" + server};
    std::string sessionId = Hub::browserSessionId(request);
    std::string code = hub::generateToken();
    hub::OAuthCodeRecord rec;
    rec.clientId = client->identifier;
    rec.codeHash = hub::hashToken(code, hub::kGeneratedTokenRounds);
    rec.expiresAt = hub::unixSeconds(hub::now()) + kCodeLifetimeSeconds;
    rec.redirectUri = redirectUri;
    rec.sessionId = sessionId;
    rec.userId = user->id;
    rec.scopes = scopes;
    hub.store().insertOAuthCode(rec);
    hub::logInfo("OAuth code issued to {} for {}", user->name, client->identifier);
    std::string location = redirectUri + (redirectUri.find('?') == std::string::npos ? "?" : "&") +
                           "code=" + urlEncode(code) + "&state=" + urlEncode(state);
    responder.send(redirect(302, location));
}

void token(Hub& hub, Request& request, Responder responder) {
    auto form = parseForm(request.body);
    const std::string& clientId = form["client_id"];
    const std::string& secret = form["client_secret"];
    auto client = clientId.empty() ? std::nullopt : hub.store().findOAuthClient(clientId);
    if (!client || client->secretHash.empty() || !hub::verifyToken(secret, client->secretHash))
        return responder.send(oauthError(401, "invalid_client", "client authentication failed"));
    if (form["grant_type"] != "authorization_code")
        return responder.send(
            oauthError(400, "unsupported_grant_type", "only authorization_code is supported"));
    const std::string& code = form["code"];
    int64_t nowUnix = hub::unixSeconds(hub::now());
    hub.store().purgeExpiredOAuthCodes(nowUnix);
    std::optional<hub::OAuthCodeRecord> found;
    if (!code.empty() && code.size() <= 256)
        for (const auto& c : hub.store().oauthCodesOfClient(client->identifier))
            if (hub::verifyToken(code, c.codeHash)) found = c;
    if (!found || found->expiresAt <= nowUnix)
        return responder.send(oauthError(400, "invalid_grant", "the code is unknown, used or expired"));
    // A code works once, whatever happens next.
    hub.store().deleteOAuthCode(found->id);
    if (form["redirect_uri"] != found->redirectUri || found->redirectUri != client->redirectUri)
        return responder.send(oauthError(400, "invalid_grant", "redirect_uri does not match"));
    const hub::UserRecord* user = hub.findUserById(found->userId);
    if (!user) return responder.send(oauthError(400, "invalid_grant", "the user no longer exists"));
    double lifetime = hub.settings().cookieMaxAgeDays * 86400;
    auto issued = hub.issueToken(user->id, std::nullopt, "", found->scopes, lifetime, client->identifier,
                                 found->sessionId);
    std::string scope;
    for (const auto& s : found->scopes) scope += (scope.empty() ? "" : " ") + s;
    std::string body;
    JsonWriter(body)
        .beginObject()
        .key("access_token")
        .value(issued.token)
        .key("expires_in")
        .value(static_cast<int64_t>(lifetime))
        .key("token_type")
        .value("Bearer")
        .key("scope")
        .value(scope)
        .endObject();
    Response r = jsonResponse(200, std::move(body));
    r.set("Cache-Control", "no-store");
    r.set("Pragma", "no-cache");
    hub::logInfo("OAuth token issued to {} for {}", user->name, client->identifier);
    responder.send(std::move(r));
}

}  // namespace

void handleOAuth(Hub& hub, std::string_view path, Request& request, Responder responder) {
    if (path == "/authorize" && (request.method == "GET" || request.method == "POST"))
        return authorize(hub, request, std::move(responder));
    if (path == "/token" && request.method == "POST") return token(hub, request, std::move(responder));
    responder.send(jsonError(404, "Not Found"));
}

}  // namespace hubd
