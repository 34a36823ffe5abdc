// SPDX-License-Identifier: BSD-3-Clause
// The proxy's routing table: longest-prefix match of a request path, by
// whole path segments, to a backend base URL.
//
// MUST: a prefix matches whole segments only ("/user/al/" never matches
// "/user/alice"); a path with a "." or ".." segment matches nothing, so a
// route is never chosen for a path the backend would resolve elsewhere.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hubd::proxy {

// A backend: http://HOST:PORT[/PATH], HOST an IP literal or "localhost"
// (no DNS: a lookup would block the loop); or https:// for internal TLS,
// where the backend's certificate must name `peerName` (http/tls_client.h).
struct Upstream {
    std::string url;       // as given
    std::string origin;    // "http://127.0.0.1:8888" (what Location rewriting compares against)
    bool tls = false;      // https: internal TLS (Proxy's upstream TLS context)
    std::string peerName;  // https: the CN the backend's certificate must carry (the user)
    std::string host;      // "127.0.0.1"
    uint16_t port = 0;
    std::string pathPrefix;  // "" or "/base" (no trailing slash), prepended to the request target
    sockaddr_storage address{};
    socklen_t addressLength = 0;
    std::string poolKey;  // "127.0.0.1:8888" or "https:alice@127.0.0.1:8888": pooled per key
};

// nullptr and an error sentence if the URL is not one hubd can proxy to.
// https:// needs `peerName` (who the backend's certificate must name).
std::shared_ptr<const Upstream> parseUpstream(std::string_view url, std::string* error = nullptr,
                                              std::string_view peerName = {});

class RouteTable {
public:
    struct Match {
        std::string prefix;  // as added, normalised ("/services/echo/")
        std::shared_ptr<const Upstream> target;
    };

    RouteTable();
    ~RouteTable();
    RouteTable(const RouteTable&) = delete;
    RouteTable& operator=(const RouteTable&) = delete;

    // Adds or replaces a route; takes effect for the next request head.
    // false (and *error) if the target URL is not usable.
    bool add(std::string_view prefix, std::string_view targetUrl, std::string* error = nullptr,
             std::string_view peerName = {});
    bool remove(std::string_view prefix);  // false if there was no such route
    // O(segments of path).
    std::optional<Match> lookup(std::string_view path) const;
    std::optional<Match> get(std::string_view prefix) const;        // exact prefix
    std::vector<std::pair<std::string, std::string>> list() const;  // (prefix, target url), sorted
    size_t size() const { return count_; }

    // "/a//b" and "a/b/" both become "/a/b/"; "/" stays "/".
    static std::string normalise(std::string_view prefix);

private:
    struct Node;
    std::unique_ptr<Node> root_;
    size_t count_ = 0;
};

}  // namespace hubd::proxy
