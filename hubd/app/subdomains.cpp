// SPDX-License-Identifier: BSD-3-Clause
// subdomain_host: routing by host, cookie names per host, the session handoff.
#include "app/subdomains.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "app/hub.h"
#include "app/pages.h"
#include "hubcore/audit.h"
#include "hubcore/cookie.h"
#include "hubcore/log.h"

namespace hubd {

using hubd::http::Request;
using hubd::http::Responder;
using hubd::http::Response;

namespace {

constexpr std::string_view kHostPrefix = "__Host-";
// The hub's cookies that carry a login or a session on the hub's host.
constexpr std::array<std::string_view, 2> kHubSessionCookies{"jupyterhub-hub-login", "jupyterhub-session-id"};
constexpr std::string_view kUserSession = "hubd-user-session";
constexpr std::string_view kHandoffPath = "hub-session-handoff";  // under base_url
// Above this many ended sessions remembered, the oldest are forgotten first.
constexpr size_t kMaxEndedSessions = 200'000;

bool isHubSessionCookie(std::string_view name) {
    return std::find(kHubSessionCookies.begin(), kHubSessionCookies.end(), name) != kHubSessionCookies.end();
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return (x | 0x20) == (y | 0x20); });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

int64_t unixNow() {
    return std::chrono::duration_cast<std::chrono::seconds>(hub::Clock::now().time_since_epoch()).count();
}

// The user-host session cookie: prefixed (hence Secure, Path=/, host-only,
// and impossible for a sibling host to plant) whenever the browser uses https.
std::string sessionCookieName(bool https) {
    return https ? std::string(kHostPrefix) + std::string(kUserSession) : std::string(kUserSession);
}

// Signed for one host: a value issued on alice's host fails on bob's.
std::string signedName(std::string_view label) {
    return fmt::format("{}@{}", kUserSession, label);
}

}  // namespace

void renameHubCookiesIn(Request& request) {
    std::string merged;
    bool any = false;
    for (const auto& [name, value] : request.headers) {
        if (!iequals(name, "Cookie")) continue;
        any = true;
        for (const auto& [cookie, cookieValue] : hub::parseCookieHeader(value)) {
            std::string_view kept = cookie;
            if (isHubSessionCookie(cookie)) continue;  // unprefixed: anyone on the domain may have set it
            if (kept.substr(0, kHostPrefix.size()) == kHostPrefix &&
                isHubSessionCookie(kept.substr(kHostPrefix.size())))
                kept.remove_prefix(kHostPrefix.size());
            if (!merged.empty()) merged += "; ";
            merged.append(kept).append(1, '=').append(cookieValue);
        }
    }
    if (!any) return;
    std::erase_if(request.headers, [](const auto& h) { return iequals(h.first, "Cookie"); });
    if (!merged.empty()) request.headers.emplace_back("Cookie", std::move(merged));
}

void renameHubCookiesOut(Response& response, bool https) {
    std::vector<hubd::http::Header> out;
    out.reserve(response.headers.size());
    for (auto& [name, value] : response.headers) {
        if (!iequals(name, "Set-Cookie")) {
            out.emplace_back(std::move(name), std::move(value));
            continue;
        }
        std::string_view cookie = trim(std::string_view(value).substr(0, value.find('=')));
        if (cookie == kUserSession) continue;  // nothing is proxied on the hub's host
        if (!https || !isHubSessionCookie(cookie)) {
            out.emplace_back(std::move(name), std::move(value));
            continue;
        }
        // name=value; attributes: Path becomes /, Secure is added, the rest stays.
        std::string_view rest = value;
        size_t semi = rest.find(';');
        std::string rewritten = std::string(kHostPrefix) + std::string(trim(rest.substr(0, semi)));
        bool secure = false;
        while (semi != std::string_view::npos) {
            rest.remove_prefix(semi + 1);
            semi = rest.find(';');
            std::string_view attr = trim(rest.substr(0, semi));
            std::string_view key = attr.substr(0, attr.find('='));
            if (attr.empty() || iequals(key, "Path") || iequals(key, "Domain")) continue;
            secure = secure || iequals(key, "Secure");
            rewritten.append("; ").append(attr);
        }
        rewritten += "; Path=/";
        if (!secure) rewritten += "; Secure";
        out.emplace_back(std::move(name), std::move(rewritten));
    }
    response.headers = std::move(out);
}

Subdomains::Subdomains(Hub& hub, hub::SubdomainHost host, std::string cookieSecret)
    : hub_(hub), host_(std::move(host)), cookieSecret_(std::move(cookieSecret)) {}

std::string Subdomains::userOrigin(std::string_view userName) const {
    return host_.userOrigin(hub::dnsLabel(userName));
}

std::optional<std::string> Subdomains::spawnProblem(std::string_view userName) const {
    const std::string label = hub::dnsLabel(userName);
    if (auto problem = hub::labelProblem(userName, label, host_)) return problem;
    // JupyterHub lower-cases names into labels: two accounts that differ in
    // case only would share one host, and so each other's cookies.
    for (const hub::UserRecord* other : hub_.users())
        if (other->name != userName && hub::dnsLabel(other->name) == label)
            return fmt::format(
                "{}'s server cannot start under JupyterHub.subdomain_host: its host {}.{} is also the host "
                "of user {}. Remove one of the two accounts, or map one with Authenticator.username_map",
                userName, label, host_.domain, other->name);
    return std::nullopt;
}

bool Subdomains::onUserHost(const Request& request) const {
    return hub::classifyHost(hub_.clientView(request).host, host_).kind == hub::HostMatch::Kind::User;
}

bool Subdomains::mayUseUserRoute(const Request& request, std::string_view owner) {
    const auto match = hub::classifyHost(hub_.clientView(request).host, host_);
    // Only on the owner's own host: on the hub's or another user's host the
    // server would share an origin with pages it must not read.
    if (match.kind != hub::HostMatch::Kind::User || match.label != hub::dnsLabel(owner)) return false;
    Resource target{std::string(owner), hub_.groupsOf(owner), std::string(owner) + "/", {}, {}};
    if (!request.header("Authorization").empty()) {
        Principal p = hub_.authenticate(request, false);
        if (p && holds(p.scopes, "access:servers", target)) return true;
    }
    for (const hub::UserRecord* user : sessionUsers(request, match.label))
        if (user->name == owner || holds(hub_.userScopes(*user), "access:servers", target)) return true;
    return false;
}

std::vector<const hub::UserRecord*> Subdomains::sessionUsers(const Request& request,
                                                             std::string_view label) const {
    std::vector<const hub::UserRecord*> users;
    const std::string name = sessionCookieName(hub_.clientView(request).scheme == "https");
    const std::string bound = signedName(label);
    const int64_t now = unixNow();
    // Every copy counts: a planted cookie must not hide the real one.
    for (const auto& [cookie, value] : hub::parseCookieHeader(request.header("Cookie"))) {
        if (cookie != name) continue;
        auto content = hub::verifyCookie(cookieSecret_, bound, value, now, hub_.settings().cookieMaxAgeDays);
        if (!content) continue;
        const size_t bar = content->find('|');
        if (bar == std::string::npos) continue;
        if (endedSessions_.count(content->substr(bar + 1))) continue;
        if (const hub::UserRecord* user = hub_.findUserByCookieId(content->substr(0, bar)))
            users.push_back(user);
    }
    return users;
}

std::string Subdomains::sessionCookieValue(const hub::UserRecord& user, std::string_view label,
                                           std::string_view sessionId) const {
    return hub::signCookie(cookieSecret_, signedName(label), user.cookieId + "|" + std::string(sessionId),
                           unixNow());
}

void Subdomains::sessionEnded(std::string_view sessionId) {
    if (sessionId.empty()) return;
    const int64_t now = unixNow();
    const auto maxAge = static_cast<int64_t>(hub_.settings().cookieMaxAgeDays * 86400);
    endedSessions_[std::string(sessionId)] = now + maxAge;
    if (endedSessions_.size() <= kMaxEndedSessions) return;
    std::erase_if(endedSessions_, [now](const auto& item) { return item.second <= now; });
    if (endedSessions_.size() <= kMaxEndedSessions) return;
    // Still full: forget the half that expires first rather than grow.
    std::vector<int64_t> expiries;
    expiries.reserve(endedSessions_.size());
    for (const auto& item : endedSessions_) expiries.push_back(item.second);
    auto middle = expiries.begin() + static_cast<std::ptrdiff_t>(expiries.size() / 2);
    std::nth_element(expiries.begin(), middle, expiries.end());
    const int64_t cutoff = *middle;
    std::erase_if(endedSessions_, [cutoff](const auto& item) { return item.second < cutoff; });
}

bool Subdomains::handle(Request& request, Responder& responder) {
    const auto view = hub_.clientView(request);
    const auto match = hub::classifyHost(view.host, host_);
    if (match.kind == hub::HostMatch::Kind::User) {
        answerUserHost(request, responder, match.label);
        return true;
    }
    const bool https = view.scheme == "https";
    if (https) renameHubCookiesIn(request);
    responder.rewriteWith([https](Response& r) { renameHubCookiesOut(r, https); });
    return handOff(request, responder);
}

// On a user's host hubd answers nothing itself but the handoff: hub pages
// rendered here would share an origin with the user's server.
void Subdomains::answerUserHost(Request& request, Responder& responder, const std::string& label) {
    const std::string& base = hub_.baseUrl();
    const bool get = request.method == "GET" || request.method == "HEAD";
    if (get && request.path == base + std::string(kHandoffPath)) return redeem(request, responder, label);
    if (!get)
        return responder.send(jsonError(
            403, fmt::format("{}.{} serves only its user's server, and this request has no credentials for "
                             "it: sign in at {}{}",
                             label, host_.domain, host_.hubOrigin(), hub_.hubPrefix())));
    std::string target = host_.hubOrigin();
    std::string_view raw = request.rawPath;
    // A server's path goes through the hub's /hub/user/ page: it starts the
    // server, or hands the session over to this host.
    if (raw.substr(0, base.size() + 5) == base + "user/")
        target += hub_.hubPrefix() + std::string(raw.substr(base.size()));
    else
        target += std::string(raw);
    if (!request.query.empty()) target += "?" + request.query;
    responder.send(redirect(302, std::move(target)));
}

void Subdomains::redeem(Request& request, Responder& responder, const std::string& label) {
    auto grant = tickets_.redeem(request.queryParam("ticket").value_or(""), label, unixNow());
    const hub::UserRecord* user = grant ? hub_.findUserById(grant->userId) : nullptr;
    const auto view = hub_.clientView(request);
    if (!user) {
        hub::logWarning("Session handoff on {}.{} from {} refused: unknown, used or expired ticket", label,
                        host_.domain, view.address);
        return responder.send(redirect(302, host_.hubOrigin() + hub_.hubPrefix() + "home"));
    }
    const bool https = view.scheme == "https";
    const auto maxAge = static_cast<int64_t>(hub_.settings().cookieMaxAgeDays * 86400);
    std::string cookie = sessionCookieName(https) + "=" + sessionCookieValue(*user, label, grant->sessionId);
    cookie += https ? "; Path=/" : "; Path=" + hub_.baseUrl() + "user/";
    cookie += "; HttpOnly; SameSite=Lax";
    if (https) cookie += "; Secure";
    cookie += "; Max-Age=" + std::to_string(maxAge);
    Response r = redirect(302, grant->next);
    r.headers.emplace_back("Set-Cookie", std::move(cookie));
    r.set("Cache-Control", "no-store");
    r.set("Referrer-Policy", "no-referrer");  // the ticket is in this URL
    hub::logInfo("{} signed in on {}.{} from {}", user->name, label, host_.domain, view.address);
    responder.send(std::move(r));
}

// <hub>/user/<name>/... for a running server that this browser's user may
// use: a one-time ticket, and off to the server's own host.
bool Subdomains::handOff(Request& request, Responder& responder) {
    const std::string userPages = hub_.hubPrefix() + "user/";
    if ((request.method != "GET" && request.method != "HEAD") || request.path.rfind(userPages, 0) != 0)
        return false;
    std::string_view rest = std::string_view(request.path).substr(userPages.size());
    const hub::UserRecord* owner = hub_.findUser(rest.substr(0, rest.find('/')));
    const hub::UserRecord* user = hub_.cookieUser(request);
    if (!owner || !user) return false;
    const ServerState* state = hub_.servers().state(owner->id);
    if (!state || state->phase != ServerState::Phase::Running) return false;
    Resource target{owner->name, hub_.groupsOf(owner->name), owner->name + "/", {}, {}};
    if (user->id != owner->id && !holds(hub_.userScopes(*user), "access:servers", target)) return false;

    const std::string label = hub::dnsLabel(owner->name);
    if (auto problem = spawnProblem(owner->name)) {
        responder.send(renderHubPage(
            hub_, 409, "Server unreachable",
            "<h1>This server has no host</h1>\n<p class=\"error\">" + htmlEscape(*problem) + "</p>", user));
        return true;
    }
    const std::string& base = hub_.baseUrl();
    std::string next = request.rawPath.rfind(userPages, 0) == 0
                           ? base + request.rawPath.substr(hub_.hubPrefix().size())
                           : base + "user/" + urlEncode(owner->name) + "/";
    if (!request.query.empty()) next += "?" + request.query;
    auto ticket =
        tickets_.issue({user->id, label, Hub::browserSessionId(request), std::move(next)}, unixNow());
    if (!ticket) {
        hub::logWarning("{} came back from {}.{} without its session {} times within {} s", user->name, label,
                        host_.domain, HandoffTickets::kMaxPerHost, HandoffTickets::kLifetimeSeconds);
        responder.send(renderHubPage(
            hub_, 429, "Cookies needed",
            fmt::format("<h1>Your browser did not keep its session</h1>\n<p class=\"error\">The server is at "
                        "<code>{}</code>, but your browser came back from there without the session cookie "
                        "hubd set. Allow cookies for {}, then <a href=\"{}home\">try again</a> in a "
                        "minute.</p>",
                        htmlEscape(host_.userOrigin(label)), htmlEscape(host_.userOrigin(label)),
                        hub_.hubPrefix()),
            user));
        return true;
    }
    responder.send(
        redirect(302, host_.userOrigin(label) + base + std::string(kHandoffPath) + "?ticket=" + *ticket));
    return true;
}

}  // namespace hubd
