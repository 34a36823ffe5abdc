// SPDX-License-Identifier: BSD-3-Clause
#include "http/https_redirect.h"

#include <algorithm>
#include <string>
#include <string_view>

namespace hubd::http {

namespace {

// The host part of a Host header ("hub.example.org:80" → "hub.example.org",
// "[::1]:80" → "[::1]"); "" if it is not a plain host name or address.
std::string hostOnly(std::string_view host) {
    if (host.empty() || host.size() > 255) return {};
    std::string_view name = host;
    if (host.front() == '[') {
        size_t close = host.find(']');
        if (close == std::string_view::npos) return {};
        name = host.substr(0, close + 1);
    } else if (size_t colon = host.find(':'); colon != std::string_view::npos) {
        name = host.substr(0, colon);
    }
    bool plain = std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '-' || c == '_' || c == ':' || c == '[' || c == ']';
    });
    return plain && !name.empty() ? std::string(name) : std::string();
}

}  // namespace

Handler httpsRedirectHandler(uint16_t httpsPort) {
    return [httpsPort](Request& request, Responder responder) {
        Response r;
        r.set("Content-Type", "text/plain; charset=utf-8");
        std::string host = hostOnly(request.header("Host"));
        if (host.empty()) {
            r.status = 400;
            r.body = "This port only redirects to https://: send a Host header.\n";
            responder.send(std::move(r));
            return;
        }
        std::string location = "https://" + host;
        if (httpsPort != 443) location += ":" + std::to_string(httpsPort);
        // The path as sent (rawPath is origin-form, never absolute-form).
        location += request.rawPath.empty() ? "/" : request.rawPath;
        if (!request.query.empty()) location += "?" + request.query;
        r.status = request.method == "GET" || request.method == "HEAD" ? 301 : 308;
        r.set("Location", location);
        r.body = "Moved to " + location + "\n";
        responder.send(std::move(r));
    };
}

}  // namespace hubd::http
