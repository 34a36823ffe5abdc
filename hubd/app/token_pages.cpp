// SPDX-License-Identifier: BSD-3-Clause
// The token page, /hub/token (JupyterHub 3.0's token.html without its
// script): request an API token (note, expiry, scopes), see one's API tokens
// and the applications (OAuth clients) holding a token, revoke either.
// Server-rendered, works without JavaScript, loads nothing from elsewhere.
//
// Creating goes through Hub::requestUserToken, revoking through
// Hub::revokeUserToken: the very checks, log and audit lines of
// POST/DELETE /hub/api/users/:name/tokens. Every POST needs the _xsrf field.
// A new token is shown once, in the body of the 200 answer to its POST
// (Cache-Control: no-store); it never goes into a URL, a redirect, a log
// or an audit line. A revocation answers 303 to /hub/token?status=revoked:
// the status line is one of a fixed set, never text taken from the URL.
//
// Stable hooks for tests and screenshots:
//   #token-page            the page (section); a#nav-token in every signed-in page's header
//   #token-status          status line after a revocation, [data-status=revoked]
//   #token-error           why nothing was created or revoked (role=alert)
//   #token-xsrf            the 403 page's message when the form's _xsrf failed
//   #token-result          the new token: pre#token-value[data-token-id=aN], shown once
//   #token-form            form: input #token-note, select #token-expires
//                          (option[data-expiry=never|1h|1d|1w|30d]), input #token-scopes,
//                          button #token-request
//   #api-tokens            table; tbody tr[data-token-id=aN][data-kind=api_token]
//                          td.note, td.scopes (code per scope; [data-scopes=raw list]),
//                          td.created, td.last-used, td.expires (<time datetime=ISO> or text),
//                          td.actions button#revoke-aN.revoke[name=action][value=revoke][data-token-id=aN]
//   #api-tokens-empty      shown instead of the table when there are none
//   #oauth-clients         table; tbody tr[data-client-id=ID][data-token-id=aN][data-token-count=N]
//                          td.client, td.created, td.last-used,
//                          td.actions button#revoke-aN.revoke[data-token-id=aN] (all of the client's)
//   #oauth-clients-empty   shown instead of the table when there are none
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "app/api_call.h"
#include "app/pages.h"
#include "hubcore/log.h"
#include "hubcore/time.h"

namespace hubd {

using hubd::http::Request;
using hubd::http::Responder;
using hubd::http::Response;

namespace {

// JupyterHub 3.0's choices (1 hour, 1 day, 1 week, never) and 30 days.
struct ExpiryChoice {
    std::string_view key;    // data-expiry
    std::string_view value;  // expires_in seconds; "" never
    std::string_view label;
};
constexpr ExpiryChoice kExpiryChoices[] = {
    {"never", "", "Never"},     {"1h", "3600", "1 hour"},      {"1d", "86400", "1 day"},
    {"1w", "604800", "1 week"}, {"30d", "2592000", "30 days"},
};

// What the form asked for, to show it again after an error.
struct FormValues {
    std::string note;
    std::string expires;  // as posted
    std::string scopes;
};

std::string timeCell(std::string_view cls, const std::optional<hub::Timestamp>& t, std::string_view none) {
    if (!t) return fmt::format("<td class=\"{}\">{}</td>", cls, none);
    std::string iso = hub::isoUtc(*t);
    // "2026-11-23 01:28 UTC": exact enough to read, the full time in datetime.
    std::string shown = iso.substr(0, 10) + " " + iso.substr(11, 5) + " UTC";
    return fmt::format("<td class=\"{}\"><time datetime=\"{}\">{}</time></td>", cls, iso, shown);
}

std::vector<std::string> splitScopes(std::string_view text) {
    std::vector<std::string> out;
    size_t i = 0;
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (i < text.size()) {
        while (i < text.size() && space(text[i])) ++i;
        size_t start = i;
        while (i < text.size() && !space(text[i])) ++i;
        if (i > start) out.emplace_back(text.substr(start, i - start));
    }
    return out;
}

std::optional<int64_t> tokenIdOf(std::string_view raw) {
    if (raw.size() < 2 || raw[0] != 'a') return std::nullopt;
    return parseNonNegative(raw.substr(1));
}

// One request to the token page by its signed-in owner.
class TokenPage {
public:
    TokenPage(Hub& hub, const Request& request, const hub::UserRecord& me)
        : hub_(hub), request_(request), me_(me), source_(hub.clientView(request).address) {}

    // `created`: a token just issued, shown once; `error` above the form.
    Response render(int status, const Hub::IssuedToken* created = nullptr, std::string_view error = {},
                    const FormValues& form = {}) const;
    void post(Responder& responder) const;

private:
    std::string xsrf() const { return hiddenXsrf(hub_.xsrfToken(Hub::browserSessionId(request_), &me_)); }
    std::string action() const { return htmlEscape(hub_.hubPrefix() + "token"); }
    std::string revokeButton(int64_t tokenId) const {
        std::string id = "a" + std::to_string(tokenId);
        return fmt::format(
            "<form method=\"post\" action=\"{}\">{}<input type=\"hidden\" name=\"token_id\" value=\"{}\">"
            "<button type=\"submit\" id=\"revoke-{}\" class=\"revoke\" name=\"action\" value=\"revoke\" "
            "data-token-id=\"{}\">Revoke</button></form>",
            action(), xsrf(), id, id, id);
    }
    Principal principal() const {
        Principal p;
        p.kind = Principal::Kind::User;
        p.id = me_.id;
        p.name = me_.name;
        return p;
    }
    std::string formHtml(const FormValues& form) const;
    std::string apiTokensHtml(const std::vector<hub::TokenRecord>& tokens) const;
    std::string oauthClientsHtml(const std::vector<hub::TokenRecord>& tokens) const;
    void create(Responder& responder, const std::map<std::string, std::string>& posted) const;
    void revoke(Responder& responder, const std::map<std::string, std::string>& posted) const;

    Hub& hub_;
    const Request& request_;
    const hub::UserRecord& me_;
    std::string source_;
};

std::string TokenPage::formHtml(const FormValues& form) const {
    std::string options;
    for (const auto& c : kExpiryChoices)
        options += fmt::format("<option value=\"{}\" data-expiry=\"{}\"{}>{}</option>", c.value, c.key,
                               form.expires == c.value ? " selected" : "", c.label);
    return fmt::format(
        "<form id=\"token-form\" class=\"token-form\" method=\"post\" action=\"{}\">{}\n"
        "<label for=\"token-note\">Note</label>\n"
        "<input id=\"token-note\" type=\"text\" name=\"note\" maxlength=\"1024\" value=\"{}\" "
        "placeholder=\"What is this token for?\" autocomplete=\"off\">\n"
        "<label for=\"token-expires\">Expires in</label>\n"
        "<select id=\"token-expires\" name=\"expires_in\">{}</select>\n"
        "<label for=\"token-scopes\">Scopes</label>\n"
        "<input id=\"token-scopes\" type=\"text\" name=\"scopes\" value=\"{}\" autocomplete=\"off\" "
        "aria-describedby=\"token-scopes-help\" placeholder=\"e.g. read:users!user servers!user\">\n"
        "<small id=\"token-scopes-help\">Separated by spaces. Empty: the token can do everything you can. "
        "You can only ask for scopes you hold.</small>\n"
        "<button type=\"submit\" id=\"token-request\" name=\"action\" value=\"create\">Request new API "
        "token</button>\n</form>\n",
        action(), xsrf(), htmlEscape(hub::safe(form.note, 1024)), options,
        htmlEscape(hub::safe(form.scopes, 2048)));
}

std::string TokenPage::apiTokensHtml(const std::vector<hub::TokenRecord>& tokens) const {
    std::string rows;
    for (const auto& t : tokens) {
        if (t.clientId != "jupyterhub") continue;
        std::string scopes;
        for (const auto& s : t.scopes)
            scopes += (scopes.empty() ? "" : " ") + std::string(s == "inherit"
                                                                    ? "<code>inherit</code> (all of "
                                                                      "yours)"
                                                                    : "<code>" + htmlEscape(s) + "</code>");
        std::string raw;
        for (const auto& s : t.scopes) raw += (raw.empty() ? "" : " ") + s;
        std::string id = "a" + std::to_string(t.id);
        rows += fmt::format(
            "<tr data-token-id=\"{}\" data-kind=\"api_token\"><td class=\"note\">{}</td>"
            "<td class=\"scopes\" data-scopes=\"{}\">{}</td>{}{}{}<td class=\"actions\">{}</td></tr>\n",
            id, htmlEscape(t.note), htmlEscape(raw), scopes, timeCell("created", t.created, "-"),
            timeCell("last-used", t.lastActivity, "Never"), timeCell("expires", t.expiresAt, "Never"),
            revokeButton(t.id));
    }
    if (rows.empty()) return "<p id=\"api-tokens-empty\">You have no API tokens.</p>\n";
    return "<table id=\"api-tokens\"><thead><tr><th scope=\"col\">Note</th><th scope=\"col\">Scopes</th>"
           "<th scope=\"col\">Created</th><th scope=\"col\">Last used</th><th scope=\"col\">Expires</th>"
           "<th scope=\"col\"><span class=\"visually-hidden\">Actions</span></th></tr></thead>\n<tbody>\n" +
           rows + "</tbody></table>\n";
}

// 3.0 groups OAuth tokens by client: first created, last used, one Revoke
// for all of them (revoking one revokes the client's every token).
std::string TokenPage::oauthClientsHtml(const std::vector<hub::TokenRecord>& tokens) const {
    struct Client {
        const hub::TokenRecord* first = nullptr;
        hub::Timestamp created;
        std::optional<hub::Timestamp> lastUsed;
        int count = 0;
    };
    std::map<std::string, Client> clients;
    for (const auto& t : tokens) {
        if (t.clientId == "jupyterhub") continue;
        Client& c = clients[t.clientId];
        if (!c.first || t.created < c.created) c.created = t.created;
        if (!c.first) c.first = &t;
        if (t.lastActivity && (!c.lastUsed || *t.lastActivity > *c.lastUsed)) c.lastUsed = t.lastActivity;
        ++c.count;
    }
    if (clients.empty()) return "<p id=\"oauth-clients-empty\">No applications hold a token of yours.</p>\n";
    std::string rows;
    for (const auto& [clientId, c] : clients) {
        auto record = hub_.store().findOAuthClient(clientId);
        std::string name = record && !record->description.empty() ? record->description : clientId;
        rows += fmt::format(
            "<tr data-client-id=\"{}\" data-token-id=\"a{}\" data-token-count=\"{}\"><td "
            "class=\"client\">{}</td>"
            "{}{}<td class=\"actions\">{}</td></tr>\n",
            htmlEscape(clientId), c.first->id, c.count, htmlEscape(name), timeCell("created", c.created, "-"),
            timeCell("last-used", c.lastUsed, "Never"), revokeButton(c.first->id));
    }
    return "<table id=\"oauth-clients\"><thead><tr><th scope=\"col\">Application</th>"
           "<th scope=\"col\">Authorized</th><th scope=\"col\">Last used</th>"
           "<th scope=\"col\"><span class=\"visually-hidden\">Actions</span></th></tr></thead>\n<tbody>\n" +
           rows + "</tbody></table>\n";
}

Response TokenPage::render(int status, const Hub::IssuedToken* created, std::string_view error,
                           const FormValues& form) const {
    std::string body = "<section id=\"token-page\">\n<h1>Manage API tokens</h1>\n";
    if (request_.method == "GET" && request_.queryParam("status").value_or("") == "revoked")
        body +=
            "<p id=\"token-status\" class=\"notice\" role=\"status\" data-status=\"revoked\">The token "
            "was revoked.</p>\n";
    if (!error.empty())
        body += "<p id=\"token-error\" class=\"error\" role=\"alert\">" + htmlEscape(error) + "</p>\n";
    if (created) {
        std::string id = "a" + std::to_string(created->record.id);
        body += fmt::format(
            "<div id=\"token-result\" class=\"notice\" role=\"status\"><p>Your new API token "
            "(<strong>{}</strong>). Copy it now: it is shown only this once.</p>\n"
            "<pre id=\"token-value\" data-token-id=\"{}\">{}</pre></div>\n",
            htmlEscape(created->record.note), id, htmlEscape(created->token));
    }
    body += "<h2>Request a new API token</h2>\n" + formHtml(form);
    // Expired tokens no longer work (lookupToken refuses them): not listed.
    std::vector<hub::TokenRecord> tokens;
    hub::Timestamp now = hub::now();
    for (auto& t : hub_.tokensOfUser(me_.id))
        if (!t.expiresAt || *t.expiresAt > now) tokens.push_back(std::move(t));
    std::sort(tokens.begin(), tokens.end(), [](const auto& a, const auto& b) { return a.id > b.id; });
    body += "<h2>API tokens</h2>\n<p>Tokens for the REST API, made here or through it.</p>\n" +
            apiTokensHtml(tokens);
    body +=
        "<h2>Authorized applications</h2>\n<p>Applications you signed in to with this hub, such as "
        "your notebook server. Revoking signs them out.</p>\n" +
        oauthClientsHtml(tokens) + "</section>";
    return renderHubPage(hub_, status, "API tokens", body, &me_);
}

void TokenPage::create(Responder& responder, const std::map<std::string, std::string>& posted) const {
    auto field = [&posted](const char* key) {
        auto it = posted.find(key);
        return it == posted.end() ? std::string() : it->second;
    };
    FormValues form{field("note"), field("expires_in"), field("scopes")};
    Hub::TokenRequest req;
    req.note = form.note;
    req.scopes = splitScopes(form.scopes);
    if (!form.expires.empty()) {
        auto seconds = parseNonNegative(form.expires);
        if (!seconds)
            return responder.send(render(400, nullptr,
                                         "No token was created: the expiry must be a number of seconds; "
                                         "choose one from the list.",
                                         form));
        req.expiresIn = static_cast<double>(*seconds);
    }
    // No note: 3.0's token page says where the token came from.
    if (req.note.empty()) req.note = "Requested via token page";
    auto outcome = hub_.requestUserToken(me_, std::move(req), principal(), source_, "token-page");
    if (!outcome.issued)
        return responder.send(render(400, nullptr, "No token was created: " + outcome.error, form));
    responder.send(render(200, &*outcome.issued));
}

void TokenPage::revoke(Responder& responder, const std::map<std::string, std::string>& posted) const {
    auto it = posted.find("token_id");
    auto id = it == posted.end() ? std::nullopt : tokenIdOf(it->second);
    // Someone else's token, or none: 404, as the API, and nothing changes.
    if (!id || !hub_.revokeUserToken(me_, *id, principal(), source_, "token-page"))
        return responder.send(render(404, nullptr,
                                     "No token was revoked: you have no such token (it may have been revoked "
                                     "or expired already). The list below is current."));
    responder.send(redirect(303, hub_.hubPrefix() + "token?status=revoked"));
}

void TokenPage::post(Responder& responder) const {
    auto posted = parseForm(request_.body);
    const std::string& what = posted["action"];
    if (what == "create") return create(responder, posted);
    if (what == "revoke") return revoke(responder, posted);
    responder.send(render(400, nullptr, "Nothing was done: the form's action must be create or revoke."));
}

}  // namespace

void Hub::Pages::tokenPage(Request& request, Responder responder) {
    const hub::UserRecord* user = hub_.cookieUser(request);
    if (!user) {
        std::string next = hub_.hubPrefix() + "token";
        return responder.send(redirect(request.method == "POST" ? 303 : 302,
                                       hub_.hubPrefix() + "login?next=" + urlEncode(next)));
    }
    TokenPage tokens(hub_, request, *user);
    if (request.method != "POST") return responder.send(tokens.render(200));
    if (!xsrfPosted(request, user))
        return responder.send(page(
            403, "Form expired",
            "<h1>Nothing changed</h1>\n<p class=\"error\" id=\"token-xsrf\">This form has expired or was "
            "not sent from this hub's own page (XSRF check failed). Go back, reload the token page "
            "and try again.</p>",
            user));
    tokens.post(responder);
}

}  // namespace hubd
