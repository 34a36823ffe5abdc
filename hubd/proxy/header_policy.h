// SPDX-License-Identifier: BSD-3-Clause
// The proxy's header policy as one table: what happens to each request and
// response header on its way through (h2o's token table, misc/tokens.pl).
//
// MUST: hop-by-hop headers (and those a Connection header names) never
// cross the proxy; framing headers are always the proxy's own;
// X-Forwarded-* / Forwarded / X-Real-IP are passed on only from a trusted
// proxy and are otherwise rebuilt from the socket; the hub's own cookies
// (login, session) never reach a user server or service, and a backend can
// never set them. Policy for Authorization: forwarded (single-user servers
// and services authenticate API calls with "token"/"bearer" tokens issued
// for them), see docs/proxy.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hubd::proxy {

enum class RequestAction : uint8_t {
    Forward,
    Drop,           // hop-by-hop or never forwarded
    Reframe,        // Content-Length / Transfer-Encoding: the proxy writes its own
    TrustedOnly,    // kept only from a trusted proxy; rebuilt otherwise
    FilterCookies,  // the hub's cookies removed, the rest merged into one header
    Authorization,  // ProxyConfig::forwardAuthorization decides
};

enum class ResponseAction : uint8_t {
    Forward,
    Drop,
    Reframe,
    FilterSetCookie,  // a Set-Cookie for one of the hub's cookies is dropped
    Location,         // rewritten only when absolute to the backend's own origin
};

struct HeaderRule {
    std::string_view name;  // lower case
    RequestAction request;
    ResponseAction response;
};

// Headers not listed are forwarded both ways (unless a Connection header
// lists them: then they are hop-by-hop for that message).
inline constexpr std::array kHeaderRules{
    // hop-by-hop, RFC 9110 7.6.1 (+ the non-standard keep-alive / proxy-connection)
    HeaderRule{"connection", RequestAction::Drop, ResponseAction::Drop},
    HeaderRule{"keep-alive", RequestAction::Drop, ResponseAction::Drop},
    HeaderRule{"proxy-connection", RequestAction::Drop, ResponseAction::Drop},
    HeaderRule{"te", RequestAction::Drop, ResponseAction::Drop},
    HeaderRule{"trailer", RequestAction::Drop, ResponseAction::Drop},
    HeaderRule{"upgrade", RequestAction::Drop, ResponseAction::Drop},  // re-added for a WebSocket tunnel
    HeaderRule{"proxy-authorization", RequestAction::Drop, ResponseAction::Drop},
    HeaderRule{"proxy-authenticate", RequestAction::Drop, ResponseAction::Drop},
    // framing: each side of the proxy is framed by the proxy
    HeaderRule{"transfer-encoding", RequestAction::Reframe, ResponseAction::Reframe},
    HeaderRule{"content-length", RequestAction::Reframe, ResponseAction::Reframe},
    // the proxy answers 100-continue itself
    HeaderRule{"expect", RequestAction::Drop, ResponseAction::Forward},
    // client identity: spoofable, so only believed from a trusted proxy
    HeaderRule{"x-forwarded-for", RequestAction::TrustedOnly, ResponseAction::Forward},
    HeaderRule{"x-forwarded-proto", RequestAction::TrustedOnly, ResponseAction::Forward},
    HeaderRule{"x-forwarded-host", RequestAction::TrustedOnly, ResponseAction::Forward},
    HeaderRule{"x-forwarded-port", RequestAction::TrustedOnly, ResponseAction::Forward},
    HeaderRule{"forwarded", RequestAction::TrustedOnly, ResponseAction::Forward},
    HeaderRule{"x-real-ip", RequestAction::TrustedOnly, ResponseAction::Forward},
    // the hub's credentials
    HeaderRule{"cookie", RequestAction::FilterCookies, ResponseAction::Forward},
    HeaderRule{"authorization", RequestAction::Authorization, ResponseAction::Forward},
    HeaderRule{"set-cookie", RequestAction::Forward, ResponseAction::FilterSetCookie},
    HeaderRule{"location", RequestAction::Forward, ResponseAction::Location},
};

// Cookies that authenticate to the hub itself (JupyterHub 3.0 names, and
// hubd-user-session: the hub session as the proxy sees it on /user/ paths),
// and their __Host- forms under subdomain_host over https (app/subdomains.h).
inline constexpr std::array<std::string_view, 6> kHubCookies{
    "jupyterhub-hub-login",        "jupyterhub-session-id",        "hubd-user-session",
    "__Host-jupyterhub-hub-login", "__Host-jupyterhub-session-id", "__Host-hubd-user-session"};

constexpr char asciiLower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr bool equalsLower(std::string_view name, std::string_view lowerName) {
    if (name.size() != lowerName.size()) return false;
    for (size_t i = 0; i < name.size(); ++i)
        if (asciiLower(name[i]) != lowerName[i]) return false;
    return true;
}

// The index of the rule for a header name (any case), or kHeaderRules.size()
// when there is none (forward both ways). An index, not a pointer: GCC's
// UBSan build rejects pointer tests in constant expressions.
constexpr size_t findHeaderRule(std::string_view name) {
    for (size_t i = 0; i < kHeaderRules.size(); ++i)
        if (equalsLower(name, kHeaderRules[i].name)) return i;
    return kHeaderRules.size();
}

constexpr RequestAction requestAction(std::string_view name) {
    size_t i = findHeaderRule(name);
    return i < kHeaderRules.size() ? kHeaderRules[i].request : RequestAction::Forward;
}

constexpr ResponseAction responseAction(std::string_view name) {
    size_t i = findHeaderRule(name);
    return i < kHeaderRules.size() ? kHeaderRules[i].response : ResponseAction::Forward;
}

constexpr bool isHubCookie(std::string_view cookieName) {
    for (auto hub : kHubCookies)
        if (cookieName == hub) return true;  // cookie names are case-sensitive
    return false;
}

static_assert(requestAction("Connection") == RequestAction::Drop);
static_assert(responseAction("Transfer-Encoding") == ResponseAction::Reframe);
static_assert(requestAction("X-Forwarded-For") == RequestAction::TrustedOnly);
static_assert(requestAction("Accept") == RequestAction::Forward);

}  // namespace hubd::proxy
