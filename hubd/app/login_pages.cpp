// SPDX-License-Identifier: BSD-3-Clause
// The sign-in: the login form's POST, and the further PAM prompts (a
// one-time code) when the PAM stack asks more than the password.
//
// A password-only stack behaves as it always did: one POST, then the
// redirect or the form again with "Invalid username or password". Only when
// PAM asks another question does a page with that prompt come back; its
// form carries the step id (login_conversation.h) and _xsrf, and posts to
// the same URL. Every failed sign-in ends with the same neutral sentence;
// what PAM itself said (pam_faillock's "The account is locked ...") is
// shown with it, escaped.
#include <fmt/format.h>

#include "app/metrics.h"
#include "app/pages.h"
#include "hubcore/audit.h"
#include "hubcore/log.h"
#include "hubcore/token.h"

namespace hubd {

using hubd::http::Request;
using hubd::http::Responder;
using hubd::http::Response;

namespace {

constexpr std::string_view kNeutral = "Invalid username or password";
constexpr std::string_view kFormField = "conversation";  // the step id

LoginConversations::Limits conversationLimits(const hub::Settings& settings) {
    LoginConversations::Limits limits;
    limits.idleTimeout = std::chrono::seconds(settings.pamConversationTimeout);
    return limits;
}

}  // namespace

Hub::Pages::Pages(Hub& hub) : hub_(hub), oauth_(makeOAuthLogin(hub.settings(), hub.workers().size())) {
    Hub* h = &hub;
    logins_ = std::make_unique<LoginConversations>(
        hub.loop(), hub.authenticator(), conversationLimits(hub.settings()),
        [h](const std::string& source, const std::string& username, hub::AuthResult result) {
            // A prompt nobody answered counts as a failed login: otherwise
            // whoever knows a password could probe for free by walking away
            // from the one-time-code prompt.
            hub::logWarning("Sign-in of {} from {} abandoned: nobody answered PAM's prompt in time ({})",
                            hub::safe(username, 64), source, hub::safe(result.failureReason));
            h->loginFinished(false, source, username, "form", "abandoned at a PAM prompt");
        });
}

std::string loginMessagesHtml(const std::vector<hub::LoginMessage>& messages) {
    std::string html;
    for (const auto& m : messages) {
        if (m.isPrompt() || m.text.empty()) continue;
        const bool error = m.kind == hub::LoginMessage::Kind::Error;
        html += fmt::format("<p class=\"{}\" role=\"{}\" data-pam-message=\"{}\">{}</p>\n",
                            error ? "error" : "notice", error ? "alert" : "status", error ? "error" : "info",
                            htmlEscape(m.text));
    }
    return html;
}

Response Hub::Pages::renderLoginPrompts(const std::string& next,
                                        const std::vector<hub::LoginMessage>& messages,
                                        const std::string& stepId, const std::string& xsrf) const {
    std::string action = hub_.hubPrefix() + "login";
    if (!next.empty()) action += "?next=" + urlEncode(next);
    std::string fields;
    size_t k = 0;
    for (const auto& m : messages) {
        if (!m.isPrompt()) continue;
        const bool secret = m.kind == hub::LoginMessage::Kind::SecretPrompt;
        // A prompt without words still needs a label for screen readers.
        std::string label = m.text.empty() ? std::string(secret ? "Secret" : "Answer") : m.text;
        fields += fmt::format(
            "<label for=\"answer{0}\">{1}</label>\n"
            "<input id=\"answer{0}\" type=\"{2}\" name=\"answer{0}\" autocomplete=\"{3}\" "
            "autocapitalize=\"off\" autocorrect=\"off\"{4}>\n",
            k, htmlEscape(label), secret ? "password" : "text", secret ? "one-time-code" : "off",
            k == 0 ? " autofocus" : "");
        ++k;
    }
    std::string body = fmt::format(
        "<h1>Sign in</h1>\n{}"
        "<form class=\"login\" method=\"post\" action=\"{}\" id=\"login_prompts\">\n{}\n"
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n{}"
        "<button type=\"submit\" id=\"login_submit\">Continue</button>\n</form>\n"
        "<p><a href=\"{}login\">Start again</a></p>",
        loginMessagesHtml(messages), htmlEscape(action), hiddenXsrf(xsrf), kFormField, htmlEscape(stepId),
        fields, hub_.hubPrefix());
    return page(200, "Sign in", body, nullptr);
}

void Hub::Pages::loginSubmit(Request& request, Responder responder) {
    std::string next = request.queryParam("next").value_or("");
    if (!isLocalPath(next)) next.clear();
    std::string_view ct = request.header("Content-Type");
    if (ct.substr(0, 33) != "application/x-www-form-urlencoded")
        return responder.send(anonymousLoginPage(request, 400, next, {},
                                                 "The login form was not submitted correctly. Try again."));
    auto form = parseForm(request.body);
    if (!hub_.xsrfValid(request, nullptr, form["_xsrf"])) {
        // Login CSRF (signing a victim into the attacker's account) is
        // stopped here. Cookies off is the honest other cause.
        hub::logWarning("Login form without a valid XSRF token from {}", hub_.clientView(request).address);
        return responder.send(anonymousLoginPage(
            request, 403, next, {},
            "The sign-in form expired or was not sent from this page. Make sure your browser accepts "
            "cookies from this site, then sign in again."));
    }
    if (form.count(std::string(kFormField))) return loginContinue(request, std::move(responder), form, next);
    std::string rawName = form["username"];
    std::string password = form["password"];
    std::string peer = hub_.clientView(request).address;
    std::string reason;
    auto normalized = hub::normalizeLoginName(hub_.settings(), rawName, reason);
    if (auto wait = hub_.loginBlocked(peer, normalized.value_or(rawName))) {
        // Refused before PAM runs: guessing costs the guesser time, not us.
        Response r =
            anonymousLoginPage(request, 429, next, normalized.value_or(std::string()),
                               fmt::format("Too many failed sign-ins from your address or for this username. "
                                           "Try again in {} seconds.",
                                           wait->count()));
        r.set("Retry-After", std::to_string(wait->count()));
        return responder.send(std::move(r));
    }
    if (!normalized) {
        hub::logWarning("Failed login for '{}' from {}: {}", hub::safe(rawName, 64), peer, hub::safe(reason));
        hub_.loginFinished(false, peer, rawName, "form", reason);
        return responder.send(anonymousLoginPage(request, 200, next, {}, kNeutral));
    }
    auto shared = std::make_shared<Responder>(std::move(responder));
    // The request may be gone when PAM answers: keep what the reply needs.
    LoginReply reply{next, hub_.originOf(request), {}, Hub::browserSessionId(request)};
    reply.request.target = request.target;
    reply.request.query = request.query;
    auto started =
        logins_->start(*normalized, std::move(password), reply.sessionId, peer,
                       [this, shared, reply](LoginStep step) { loginStep(shared, reply, std::move(step)); });
    if (started == LoginConversations::Start::Started) return;
    // Each sign-in holds a thread while PAM waits for its user: bounded.
    hub::logWarning("Sign-in of {} from {} refused: {} sign-ins in progress{}", *normalized, peer,
                    logins_->inFlight(),
                    started == LoginConversations::Start::SourceFull ? ", too many from this address" : "");
    Response r =
        anonymousLoginPage(request, 503, next, *normalized,
                           started == LoginConversations::Start::SourceFull
                               ? "Too many sign-ins are in progress from your address. Try again in a minute."
                               : "Too many sign-ins are in progress. Try again in a minute.");
    r.set("Retry-After", "60");
    shared->send(std::move(r));
}

void Hub::Pages::loginContinue(Request& request, Responder responder,
                               std::map<std::string, std::string>& form, const std::string& next) {
    std::vector<std::string> answers;
    for (size_t k = 0; k < hub::kMaxLoginPromptsPerStep; ++k) {
        auto it = form.find(fmt::format("answer{}", k));
        if (it == form.end()) break;
        answers.push_back(std::move(it->second));
    }
    auto shared = std::make_shared<Responder>(std::move(responder));
    LoginReply reply{next, hub_.originOf(request), {}, Hub::browserSessionId(request)};
    reply.request.target = request.target;
    reply.request.query = request.query;
    const bool accepted =
        logins_->answer(form[std::string(kFormField)], reply.sessionId, std::move(answers),
                        [this, shared, reply](LoginStep step) { loginStep(shared, reply, std::move(step)); });
    if (accepted) return;
    // Expired (conversation_timeout), answered already (a replayed form),
    // or from another browser: PAM has nothing waiting for this form.
    hub::logWarning("Sign-in step from {} refused: no sign-in waits for it in this browser session",
                    hub_.clientView(request).address);
    shared->send(anonymousLoginPage(request, 400, next, {},
                                    "This sign-in has expired or was already answered. Sign in again."));
}

void Hub::Pages::loginStep(const std::shared_ptr<Responder>& responder, const LoginReply& reply,
                           LoginStep step) {
    const std::string retryXsrf = hub_.xsrfToken(reply.sessionId, nullptr);
    if (!step.finished) {
        hub::logInfo("Sign-in of {} from {}: PAM asks a further question", hub::safe(step.username, 64),
                     step.source);
        return responder->send(renderLoginPrompts(reply.next, step.messages, step.id, retryXsrf));
    }
    hub::AuthResult& result = step.result;
    for (const auto& note : result.logNotes)
        hub::logInfo("PAM for {}: {}", hub::safe(step.username, 64), note);
    if (!result.ok) {
        hub::logWarning("Failed login for {} from {}: {}", hub::safe(step.username, 64), step.source,
                        hub::safe(result.failureReason));
        bool locked = false;  // pam_faillock's notice: counted as "locked" (hubd_logins_total)
        for (const auto* said : {&result.messages, &step.messages})
            for (const auto& message : *said) locked = locked || metrics::mentionsLockedAccount(message.text);
        hub_.loginFinished(false, step.source, step.username, "form", result.failureReason, locked);
        // The failure delay runs here, on a timer, not in PAM on a thread.
        hub_.replyAfterFailureDelay(
            [responder, page = renderLogin(200, reply.next, step.username, kNeutral, retryXsrf,
                                           step.messages)]() mutable { responder->send(std::move(page)); });
        return;
    }
    const hub::UserRecord* existing = hub_.findUser(result.username);
    auto decision = hub::decideAccess(hub_.settings(), result.username, result.groups, existing != nullptr,
                                      existing && existing->admin, result.admin);
    if (!decision.allowed) {
        hub::logWarning("Login of {} from {} refused: {}", result.username, step.source, decision.reason);
        hub_.loginFinished(false, step.source, step.username, "form", decision.reason);
        return responder->send(renderLogin(200, reply.next, step.username, kNeutral, retryXsrf));
    }
    std::string error;
    existing = hub_.recordLogin(result.username, existing, decision.admin, error);
    if (!existing) {
        hub::logError("Could not add user {}: {}", result.username, error);
        return responder->send(
            renderLogin(500, reply.next, step.username, "The hub could not record your login.", retryXsrf));
    }
    hub::logInfo("User logged in: {} from {}", existing->name, step.source);
    hub_.loginFinished(true, step.source, existing->name, "form");
    loginSucceeded(responder, reply, *existing);
}

// The login cookies and the redirect to where the user was going.
void Hub::Pages::loginSucceeded(const std::shared_ptr<Responder>& responder, const LoginReply& reply,
                                const hub::UserRecord& user) {
    hub_.recordActivity(user.id, hub::now());
    Response r = redirect(302, nextUrl(reply.request, &user));
    const Origin& origin = reply.origin;
    int64_t maxAge = static_cast<int64_t>(hub_.settings().cookieMaxAgeDays * 86400);
    r.headers.emplace_back("Set-Cookie", "jupyterhub-hub-login=" + hub_.loginCookieValue(user) +
                                             cookieAttributes(origin, hub_.hubPrefix()) +
                                             "; Max-Age=" + std::to_string(maxAge));
    // A new session at login (no fixation), and its XSRF token.
    std::string newSession = hub::generateToken();
    r.headers.emplace_back("Set-Cookie",
                           "jupyterhub-session-id=" + newSession + cookieAttributes(origin, hub_.baseUrl()));
    r.headers.emplace_back("Set-Cookie",
                           xsrfCookie(origin, hub_.hubPrefix(), hub_.xsrfToken(newSession, &user)));
    r.headers.emplace_back("Set-Cookie", "hubd-user-session=" + hub_.userSessionCookieValue(user) +
                                             cookieAttributes(origin, hub_.baseUrl() + "user/") +
                                             "; Max-Age=" + std::to_string(maxAge));
    responder->send(std::move(r));
}

}  // namespace hubd
