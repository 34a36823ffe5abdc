// SPDX-License-Identifier: BSD-3-Clause
// The hub's HTML pages. Plain server-rendered HTML and one stylesheet: no
// JavaScript is needed to log in, see one's server, or log out.
#include "app/pages.h"

#include <fmt/format.h>

#include "app/json.h"
#include "app/metrics_page.h"
#include "hubcore/audit.h"
#include "hubcore/cookie.h"
#include "hubcore/log.h"
#include "hubcore/token.h"
#include "hubcore/username.h"

namespace hubd {

using hubd::http::Request;
using hubd::http::Responder;
using hubd::http::Response;

namespace {

constexpr std::string_view kStylesheet = R"css(
:root { color-scheme: light dark; --accent: #d2691e; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; }
header { display: flex; justify-content: space-between; align-items: center; padding: .5rem 1.5rem;
         border-bottom: 1px solid #8884; }
header .brand { font-weight: 700; font-size: 1.2rem; text-decoration: none; color: inherit; }
header nav a, header nav form { margin-left: 1rem; display: inline; }
main { max-width: 40rem; margin: 2rem auto; padding: 0 1.5rem; }
main:has(#admin) { max-width: 75rem; }
#admin table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
#admin th, #admin td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #8884; vertical-align: top; }
#admin td.actions form { display: inline; }
#admin td.actions > * { margin-right: .4rem; }
#admin td.actions button { padding: .2rem .6rem; }
#admin .problem { color: #c00; font-size: .9em; }
#admin ul#admin-flash { list-style: none; padding: 0; }
#admin section { margin-top: 2rem; }
#admin textarea { font: inherit; display: block; margin: .5rem 0; }
main:has(#token-page) { max-width: 64rem; }
#token-page table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
#token-page th, #token-page td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #8884; vertical-align: top; }
#token-page td.note { overflow-wrap: anywhere; }
#token-page form.token-form { display: grid; gap: .5rem; max-width: 32rem; }
#token-page select { font: inherit; padding: .4rem; }
#token-value { overflow-wrap: anywhere; white-space: pre-wrap; font-size: 1.1rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
form.login { display: grid; gap: .75rem; max-width: 22rem; margin: 0 auto; }
label { font-weight: 600; }
input[type=text], input[type=password] { font: inherit; padding: .5rem; border: 1px solid #888; border-radius: 4px; }
button { font: inherit; padding: .5rem 1rem; border: 0; border-radius: 4px; background: var(--accent);
         color: #fff; cursor: pointer; }
button.link { background: none; color: inherit; text-decoration: underline; padding: 0; }
a.button { display: inline-block; padding: .5rem 1rem; border-radius: 4px; background: var(--accent);
           color: #fff; text-decoration: none; }
.error { border-left: 4px solid #c00; padding: .5rem 1rem; background: #c001; }
.notice { border-left: 4px solid var(--accent); padding: .5rem 1rem; background: #d2691e1a; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
)css";

// The pending page's only script: live steps from the progress EventSource
// (JupyterHub's spawn_pending.html does the same). Pages work without it:
// the page then refreshes itself (<noscript>).
constexpr std::string_view kSpawnPendingScript = R"js("use strict";
(function () {
  var list = document.getElementById("progress");
  var bar = document.getElementById("progress-bar");
  var url = list && list.getAttribute("data-progress-url");
  if (!url || !window.EventSource) return;
  var source = new EventSource(url);
  source.onmessage = function (e) {
    var evt;
    try { evt = JSON.parse(e.data); } catch (err) { return; }
    // Every (re)connection replays the start from its first step.
    if (evt.progress === 0) list.textContent = "";
    if (bar && typeof evt.progress === "number") bar.value = evt.progress;
    if (evt.message) {
      var item = document.createElement("li");
      item.textContent = evt.message;
      list.appendChild(item);
    }
    // The hub decides what comes next: the server, or why it did not start.
    if (evt.ready || evt.failed) {
      source.close();
      window.location.reload();
    }
  };
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) window.location.reload();
  };
})();
)js";

constexpr std::string_view kLogo =
    R"svg(<svg xmlns="http://www.w3.org/2000/svg" width="120" height="32" viewBox="0 0 120 32">)svg"
    R"svg(<rect width="32" height="32" rx="6" fill="#d2691e"/>)svg"
    R"svg(<text x="16" y="22" font-family="sans-serif" font-size="16" font-weight="700" fill="#fff" )svg"
    R"svg(text-anchor="middle">h</text>)svg"
    R"svg(<text x="40" y="22" font-family="sans-serif" font-size="18" font-weight="700" fill="#d2691e">hubd</text>)svg"
    R"svg(</svg>)svg";

void addPageHeaders(Response& r) {
    r.set("Content-Type", "text/html; charset=utf-8");
    r.set("Content-Security-Policy",
          "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'self'; "
          "base-uri 'none'");
    r.set("X-Content-Type-Options", "nosniff");
    r.set("Referrer-Policy", "same-origin");
    r.set("Cache-Control", "no-store");
    r.set("X-JupyterHub-Version", "3.0.0");
}

constexpr std::string_view kXsrfFailed =
    "This form has expired or was not sent from this hub's own page (XSRF check failed). Go back, "
    "reload the page and try again.";

}  // namespace

// Secure when the client used https, also through a trusted TLS-terminating
// proxy (X-Forwarded-Proto), as JupyterHub does.
std::string cookieAttributes(const Origin& origin, std::string_view path) {
    std::string attrs = fmt::format("; Path={}; HttpOnly; SameSite=Lax", path);
    if (origin.scheme == "https") attrs += "; Secure";
    return attrs;
}

// The _xsrf cookie carries the current token for scripts and API clients
// (JupyterHub 4.x does the same); it is not HttpOnly on purpose. It is
// host-only and worthless outside its session, so a server on another
// origin can neither read nor use it.
std::string xsrfCookie(const Origin& origin, const std::string& path, const std::string& token) {
    std::string attrs = fmt::format("_xsrf={}; Path={}; SameSite=Lax", token, path);
    if (origin.scheme == "https") attrs += "; Secure";
    return attrs;
}

std::string hiddenXsrf(const std::string& token) {
    return "<input type=\"hidden\" name=\"_xsrf\" value=\"" + htmlEscape(token) + "\">";
}

bool isLocalPath(std::string_view next) {
    if (next.empty() || next[0] != '/') return false;
    if (next.size() > 1 && (next[1] == '/' || next[1] == '\\')) return false;
    for (unsigned char c : next)
        if (c < 0x20 || c == 0x7f || c == '\\') return false;
    return next.size() <= 2048;
}

std::string Hub::Pages::xsrfField(const Request& request, const hub::UserRecord* user) const {
    return hiddenXsrf(hub_.xsrfToken(Hub::browserSessionId(request), user));
}

bool Hub::Pages::xsrfPosted(const Request& request, const hub::UserRecord* user) const {
    if (hub_.xsrfValid(request, user)) return true;
    hub::logWarning("{} posted {} without a valid XSRF token from {}", user->name, request.path,
                    hub_.clientView(request).address);
    return false;
}

Response Hub::Pages::page(int status, std::string_view title, std::string_view body,
                          const hub::UserRecord* user) const {
    return renderHubPage(hub_, status, title, body, user);
}

Response renderHubPage(const Hub& hub, int status, std::string_view title, std::string_view body,
                       const hub::UserRecord* user, std::string_view head) {
    const std::string& prefix = hub.hubPrefix();
    std::string nav;
    if (user) {
        nav = fmt::format(
            "<nav aria-label=\"Account\"><span>Signed in as <strong>{}</strong></span>"
            "<a href=\"{}home\">Home</a><a id=\"nav-token\" href=\"{}token\">Token</a>{}"
            "<a href=\"{}logout\">Log out</a></nav>",
            htmlEscape(user->name), prefix, prefix,
            // The admin panel (admin_pages.cpp) for holders of admin-ui.
            hub.userScopes(*user).count("admin-ui")
                ? "<a id=\"nav-admin\" href=\"" + prefix + "admin\">Admin</a>"
                : std::string(),
            prefix);
    }
    Response r;
    r.status = status;
    r.body = fmt::format(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>{} - hubd</title>\n<link rel=\"stylesheet\" href=\"{}static/hubd.css\">\n{}</head>\n<body>\n"
        "<header><a class=\"brand\" href=\"{}\">hubd</a>{}</header>\n<main>\n{}\n</main>\n</body>\n</html>\n",
        htmlEscape(title), prefix, head, prefix, nav, body);
    addPageHeaders(r);
    return r;
}

Response Hub::Pages::renderLogin(int status, const std::string& next, const std::string& username,
                                 std::string_view error, const std::string& xsrf,
                                 const std::vector<hub::LoginMessage>& messages) const {
    if (oauth_) return renderOAuthLogin(status, next, error);  // a button, no password form
    std::string action = hub_.hubPrefix() + "login";
    if (!next.empty()) action += "?next=" + urlEncode(next);
    std::string errorHtml = loginMessagesHtml(messages);
    if (!error.empty())
        errorHtml += fmt::format("<p class=\"error\" role=\"alert\">{}</p>\n", htmlEscape(error));
    std::string body = fmt::format(
        "<h1>Sign in</h1>\n{}"
        "<form class=\"login\" method=\"post\" action=\"{}\">\n{}\n"
        "<label for=\"username_input\">Username</label>\n"
        "<input id=\"username_input\" type=\"text\" name=\"username\" value=\"{}\" autocapitalize=\"off\" "
        "autocorrect=\"off\" autocomplete=\"username\" required autofocus>\n"
        "<label for=\"password_input\">Password</label>\n"
        "<input id=\"password_input\" type=\"password\" name=\"password\" "
        "autocomplete=\"current-password\">\n"
        "<button type=\"submit\" id=\"login_submit\">Sign in</button>\n</form>",
        errorHtml, htmlEscape(action), hiddenXsrf(xsrf), htmlEscape(username));
    return page(status, "Sign in", body, nullptr);
}

std::string Hub::Pages::nextUrl(const Request& request, const hub::UserRecord* user) const {
    (void)user;
    const std::string& prefix = hub_.hubPrefix();
    std::string fallback = prefix + "home";
    auto next = request.queryParam("next");
    if (!next || !isLocalPath(*next)) return fallback;
    const std::string& base = hub_.baseUrl();
    if (next->compare(0, base.size(), base) != 0) return fallback;
    // /user/... goes through the hub so a stopped server is offered a start (3.0).
    std::string userPrefix = base + "user/";
    if (next->compare(0, userPrefix.size(), userPrefix) == 0) return prefix + next->substr(base.size());
    return *next;
}

void Hub::Pages::handle(std::string_view path, Request& request, Responder responder) {
    const std::string& m = request.method;
    bool get = m == "GET" || m == "HEAD";
    if (path == "/static/hubd.css" && get) {
        Response r;
        r.body = std::string(kStylesheet);
        r.set("Content-Type", "text/css; charset=utf-8");
        r.set("Cache-Control", "max-age=3600");
        r.set("X-Content-Type-Options", "nosniff");
        return responder.send(std::move(r));
    }
    if (path == "/static/spawn-pending.js" && get) {
        Response r;
        r.body = std::string(kSpawnPendingScript);
        r.set("Content-Type", "text/javascript; charset=utf-8");
        r.set("Cache-Control", "max-age=3600");
        r.set("X-Content-Type-Options", "nosniff");
        return responder.send(std::move(r));
    }
    if ((path == "/logo" || path == "/favicon.ico") && get) {
        // JupyterHub serves /hub/logo; single-user pages embed it.
        Response r;
        r.body = std::string(kLogo);
        r.set("Content-Type", "image/svg+xml");
        r.set("Cache-Control", "max-age=86400");
        r.set("X-Content-Type-Options", "nosniff");
        r.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
        return responder.send(std::move(r));
    }
    if (path == "/health" && get) return responder.send(jsonResponse(200, {}));
    if (path == "/metrics" && get) return serveMetricsPage(hub_, request, std::move(responder));
    if (path == "/login") {
        if (get) return loginPage(request, std::move(responder));
        if (m == "POST") return loginSubmit(request, std::move(responder));
    }
    if (path == "/oauth_login" && get) return oauthLogin(request, std::move(responder));
    if (path == "/oauth_callback" && get) return oauthCallback(request, std::move(responder));
    if (path == "/logout" && (get || m == "POST")) return logout(request, std::move(responder));
    if ((path == "/" || path == "/home") && get) return home(request, std::move(responder));
    if (path.substr(0, 6) == "/user/" && get) {
        std::string_view rest = path.substr(6);
        return userNotRunning(rest.substr(0, rest.find('/')), request, std::move(responder));
    }
    if (path == "/spawn" && (get || m == "POST")) return spawn(request, std::move(responder));
    if (path.substr(0, 15) == "/spawn-pending/" && get)
        return spawnPending(path.substr(15), request, std::move(responder));
    if (path == "/stop" && m == "POST") return stopServer(request, std::move(responder));
    if (path == "/server-log" && get) return serverLog(request, std::move(responder));
    if (path == "/admin" && (get || m == "POST")) return admin(request, std::move(responder));
    if (path == "/token" && (get || m == "POST")) return tokenPage(request, std::move(responder));
    notFound(request, std::move(responder));
}

void Hub::Pages::notFound(Request& request, Responder responder) {
    const hub::UserRecord* user = hub_.cookieUser(request);
    responder.send(page(404, "Not found",
                        fmt::format("<h1>404: Not found</h1>\n<p>There is nothing at this address. "
                                    "<a href=\"{}home\">Go to your home page</a>.</p>",
                                    hub_.hubPrefix()),
                        user));
}

void Hub::Pages::loginPage(Request& request, Responder responder) {
    if (const hub::UserRecord* user = hub_.cookieUser(request))
        return responder.send(redirect(302, nextUrl(request, user)));
    std::string next = request.queryParam("next").value_or("");
    if (!isLocalPath(next)) next.clear();
    responder.send(anonymousLoginPage(request, 200, next, {}, {}));
}

// The login form of an anonymous browser. Its XSRF token needs a session id
// (xsrfValid): a browser without one gets a fresh session cookie here.
Response Hub::Pages::anonymousLoginPage(const Request& request, int status, const std::string& next,
                                        const std::string& username, std::string_view error) const {
    std::string sessionId = Hub::browserSessionId(request);
    const bool fresh = sessionId.empty();
    if (fresh) sessionId = hub::generateToken();
    std::string token = hub_.xsrfToken(sessionId, nullptr);
    Response r = renderLogin(status, next, username, error, token);
    const Origin origin = hub_.originOf(request);
    if (fresh)
        r.headers.emplace_back(
            "Set-Cookie", "jupyterhub-session-id=" + sessionId + cookieAttributes(origin, hub_.baseUrl()));
    r.headers.emplace_back("Set-Cookie", xsrfCookie(origin, hub_.hubPrefix(), token));
    return r;
}

void Hub::Pages::logout(Request& request, Responder responder) {
    if (const hub::UserRecord* user = hub_.cookieUser(request)) {
        // Server-side: every OAuth token this browser got stops working now
        // (JupyterHub GHSA-cw7p-q79f-m2v7: 3.0 only cleared cookies).
        int revoked = 0;
        for (const auto& [name, value] : hub::parseCookieHeader(request.header("Cookie")))
            if (name == "jupyterhub-session-id") revoked += hub_.revokeSession(value);
        hub::logInfo("User logged out: {} ({} session token(s) revoked)", user->name, revoked);
        hub::audit("logout", {{"user", user->name},
                              {"source", hub_.clientView(request).address},
                              {"revoked_tokens", std::to_string(revoked)}});
    }
    Response r = redirect(302, hub_.hubPrefix() + "login");
    const Origin origin = hub_.originOf(request);
    std::string expired = "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
    r.headers.emplace_back("Set-Cookie",
                           "jupyterhub-hub-login=" + cookieAttributes(origin, hub_.hubPrefix()) + expired);
    r.headers.emplace_back("Set-Cookie",
                           "jupyterhub-session-id=" + cookieAttributes(origin, hub_.baseUrl()) + expired);
    r.headers.emplace_back(
        "Set-Cookie", "hubd-user-session=" + cookieAttributes(origin, hub_.baseUrl() + "user/") + expired);
    r.headers.emplace_back("Set-Cookie", xsrfCookie(origin, hub_.hubPrefix(), {}) + expired);
    responder.send(std::move(r));
}

std::string Hub::Pages::serverProblem(const ServerState* s) const {
    if (!s || (s->lastError.empty() && s->lastExit.empty())) return {};
    std::string html = "<div class=\"error\" role=\"alert\" id=\"server-error\">";
    if (!s->lastError.empty())
        html += "<p>" + htmlEscape(s->lastError) + "</p>";
    else
        html += "<p>Your server " + htmlEscape(s->lastExit) + ".</p>";
    if (!s->lastLog.empty())
        html += "<p>Its last log lines:</p><pre id=\"server-log\">" +
                htmlEscape(hub::safe(s->lastLog, 8000)) + "</pre>";
    return html + "</div>\n";
}

void Hub::Pages::home(Request& request, Responder responder) {
    const hub::UserRecord* user = hub_.cookieUser(request);
    if (!user) {
        std::string target = hub_.hubPrefix() + "login?next=" + urlEncode(request.rawPath);
        return responder.send(redirect(302, target));
    }
    const std::string& prefix = hub_.hubPrefix();
    const ServerState* s = hub_.servers().state(user->id);
    std::string where = htmlEscape(hub_.servers().prefixOf(user->name));
    std::string body = "<h1>Your server</h1>\n";
    if (s && s->phase == ServerState::Phase::Running) {
        body += fmt::format(
            "<p id=\"server-status\">Your server is <strong>running</strong>.</p>\n"
            "<p><a id=\"open\" href=\"{}\">Open my server</a></p>\n"
            "<form method=\"post\" action=\"{}stop\">{}<button type=\"submit\" id=\"stop\">Stop my "
            "server</button></form>\n"
            "<p><a id=\"log\" href=\"{}server-log\">View my server's log</a></p>\n",
            where, prefix, xsrfField(request, user), prefix);
    } else if (s && s->phase == ServerState::Phase::Spawning) {
        body += fmt::format(
            "<p id=\"server-status\">Your server is <strong>starting</strong>. "
            "<a href=\"{}spawn-pending/{}\">Follow its progress</a>.</p>\n",
            prefix, htmlEscape(urlEncode(user->name)));
    } else if (s && s->phase == ServerState::Phase::Stopping) {
        body += "<p id=\"server-status\">Your server is <strong>stopping</strong>.</p>\n";
    } else {
        body += serverProblem(s);
        body += fmt::format(
            "<p id=\"server-status\">Your server at <code>{}</code> is <strong>not running</strong>.</p>\n"
            "<form method=\"post\" action=\"{}spawn\">{}<button type=\"submit\" id=\"start\">Start my "
            "server</button>"
            "</form>\n",
            where, prefix, xsrfField(request, user));
    }
    // The seeds ask admins to tell users when admin_access is on; the hub tells them itself.
    if (hub_.settings().adminAccess)
        body +=
            "<p class=\"notice\" id=\"admin-access-notice\">Administrators of this hub can open your "
            "server while it runs, and everything they do there runs as you (admin_access is on).</p>\n";
    responder.send(page(200, "Home", body, user));
}

void Hub::Pages::spawn(Request& request, Responder responder) {
    const hub::UserRecord* user = hub_.cookieUser(request);
    if (!user)
        return responder.send(redirect(302, hub_.hubPrefix() + "login?next=" + urlEncode(request.rawPath)));
    if (request.method == "POST" && !xsrfPosted(request, user))
        return responder.send(
            page(403, "Form expired",
                 "<h1>Not started</h1>\n<p class=\"error\">" + std::string(kXsrfFailed) + "</p>", user));
    std::string pending = hub_.hubPrefix() + "spawn-pending/" + urlEncode(user->name);
    const ServerState* s = hub_.servers().state(user->id);
    if (s && s->phase == ServerState::Phase::Running)
        return responder.send(redirect(302, hub_.servers().prefixOf(user->name)));
    if (auto err = hub_.servers().start(*user, nullptr)) {
        return responder.send(
            page(400, "Cannot start",
                 "<h1>Your server cannot start</h1>\n<p class=\"error\">" + htmlEscape(*err) + "</p>", user));
    }
    hub::logInfo("{} started their server from the home page", user->name);
    hub::audit("server.start",
               {{"user", user->name}, {"by", user->name}, {"source", hub_.clientView(request).address}});
    responder.send(redirect(302, pending));
}

void Hub::Pages::spawnPending(std::string_view name, Request& request, Responder responder) {
    const hub::UserRecord* user = hub_.cookieUser(request);
    if (!user)
        return responder.send(redirect(302, hub_.hubPrefix() + "login?next=" + urlEncode(request.rawPath)));
    if (name != user->name)
        return responder.send(page(403, "Not available", "<h1>Not your server</h1>", user));
    const ServerState* s = hub_.servers().state(user->id);
    if (s && s->phase == ServerState::Phase::Running)
        return responder.send(redirect(302, hub_.servers().prefixOf(user->name)));
    if (!s || s->phase == ServerState::Phase::Stopped) {
        std::string body = "<h1>Your server did not start</h1>\n" + serverProblem(s) +
                           fmt::format(
                               "<form method=\"post\" action=\"{}spawn\">{}<button type=\"submit\" "
                               "id=\"start\">Try again</button></form>",
                               hub_.hubPrefix(), xsrfField(request, user));
        return responder.send(page(200, "Server not started", body, user));
    }
    std::string steps;
    for (const auto& p : s->progress) steps += "<li>" + htmlEscape(p.message) + "</li>";
    const std::string& prefix = hub_.hubPrefix();
    // EventSource cannot send X-XSRFToken: the token rides in the query.
    std::string progressUrl = prefix + "api/users/" + urlEncode(user->name) + "/server/progress?_xsrf=" +
                              urlEncode(hub_.xsrfToken(Hub::browserSessionId(request), user));
    int percent = s->progress.empty() ? 0 : s->progress.back().percent;
    std::string body = fmt::format(
        "<h1>Your server is starting</h1>\n<progress id=\"progress-bar\" max=\"100\" "
        "value=\"{}\"></progress>\n"
        "<ol id=\"progress\" aria-live=\"polite\" data-progress-url=\"{}\">{}</ol>\n"
        "<noscript><p>This page reloads by itself.</p></noscript>",
        percent, htmlEscape(progressUrl), steps);
    // Live steps from the script; without JavaScript, a refresh every second.
    std::string head = fmt::format(
        "<script src=\"{}static/spawn-pending.js\" defer></script>\n"
        "<noscript><meta http-equiv=\"refresh\" content=\"1\"></noscript>\n",
        prefix);
    Response r = renderHubPage(hub_, 200, "Starting your server", body, user, head);
    r.set("Content-Security-Policy",
          "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; "
          "form-action 'self'; frame-ancestors 'self'; base-uri 'none'");
    responder.send(std::move(r));
}

void Hub::Pages::serverLog(Request& request, Responder responder) {
    const hub::UserRecord* user = hub_.cookieUser(request);
    if (!user)
        return responder.send(redirect(302, hub_.hubPrefix() + "login?next=" + urlEncode(request.rawPath)));
    // ?user=NAME: someone else's log, for holders of read:servers on NAME
    // (admins, from the admin page), as GET /hub/api/users/NAME/server/log.
    const hub::UserRecord* owner = user;
    if (auto other = request.queryParam("user"); other && *other != user->name) {
        Resource r{*other, hub_.groupsOf(*other), *other + "/", {}, {}};
        if (!holds(hub_.userScopes(*user), "read:servers", r))
            return responder.send(
                page(403, "Not available",
                     "<h1>Not your server</h1>\n<p class=\"error\">Reading another user's "
                     "server log needs the read:servers scope for them (admins have it).</p>",
                     user));
        owner = hub_.findUser(*other);
        if (!owner) return notFound(request, std::move(responder));
    }
    auto shared = std::make_shared<Responder>(std::move(responder));
    Hub* hub = &hub_;
    std::string name = user->name;
    std::string heading =
        owner == user ? std::string("Your server's log") : htmlEscape(owner->name) + "&#8217;s server log";
    hub_.servers().readLog(*owner, 200, [shared, hub, name, heading](std::string text, std::string error) {
        const hub::UserRecord* u = hub->findUser(name);
        std::string body = "<h1 id=\"server-log-title\">" + heading + "</h1>\n";
        if (!error.empty())
            body += "<p class=\"error\">" + htmlEscape(error) + "</p>";
        else
            body += "<pre id=\"server-log\">" + htmlEscape(hub::safe(text, 64 * 1024)) + "</pre>";
        shared->send(renderHubPage(*hub, 200, "Server log", body, u));
    });
}

void Hub::Pages::stopServer(Request& request, Responder responder) {
    const hub::UserRecord* user = hub_.cookieUser(request);
    if (!user) return responder.send(redirect(302, hub_.hubPrefix() + "login"));
    if (!xsrfPosted(request, user))
        return responder.send(
            page(403, "Form expired",
                 "<h1>Not stopped</h1>\n<p class=\"error\">" + std::string(kXsrfFailed) + "</p>", user));
    auto shared = std::make_shared<Responder>(std::move(responder));
    std::string home = hub_.hubPrefix() + "home";
    auto answered = std::make_shared<bool>(false);
    auto done = [shared, home, answered] {
        if (*answered) return;
        *answered = true;
        shared->send(redirect(302, home));
    };
    if (hub_.servers().stop(*user, done)) return done();
    hub::logInfo("{} stopped their server from the home page", user->name);
    hub::audit("server.stop",
               {{"user", user->name}, {"by", user->name}, {"source", hub_.clientView(request).address}});
    // Show the home page after 10 s at the latest; it says "stopping" then.
    hub_.loop().addTimer(std::chrono::seconds(10), done);
}

void Hub::Pages::userNotRunning(std::string_view name, Request& request, Responder responder) {
    const hub::UserRecord* user = hub_.cookieUser(request);
    if (!user) {
        std::string target = hub_.hubPrefix() + "login?next=" + urlEncode(request.rawPath);
        return responder.send(redirect(302, target));
    }
    if (name == user->name) {
        const ServerState* s = hub_.servers().state(user->id);
        if (s && s->phase == ServerState::Phase::Running) {
            // The server runs: back to /user/... (3.0's redirect loop guard aside).
            std::string target = hub_.servers().prefixOf(user->name);
            return responder.send(redirect(302, target));
        }
        if (s && s->phase == ServerState::Phase::Spawning)
            return responder.send(redirect(302, hub_.hubPrefix() + "spawn-pending/" + urlEncode(user->name)));
    }
    if (request.header("Accept").find("application/json") != std::string_view::npos)
        return responder.send(jsonError(424, "Server is not running"));
    bool own = name == user->name;
    std::string body =
        own ? fmt::format(
                  "<h1>Your server is not running</h1>\n<p>Would you like to start it?</p>\n"
                  "<form method=\"post\" action=\"{}spawn\">{}<button type=\"submit\">Start my "
                  "server</button>"
                  "</form>",
                  hub_.hubPrefix(), xsrfField(request, user))
            : std::string(
                  "<h1>Server not available</h1>\n<p>This server is not running, or you may not open "
                  "it.</p>");
    responder.send(page(own ? 424 : 403, own ? "Server not running" : "Not available", body, user));
}

}  // namespace hubd
