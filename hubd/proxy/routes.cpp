// SPDX-License-Identifier: BSD-3-Clause
// RouteTable: a trie over path segments; parseUpstream: backend URLs.
#include "proxy/routes.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <functional>

namespace hubd::proxy {

namespace {

struct SegmentHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Calls fn(segment) for each non-empty segment; stops and returns false if fn does.
template <typename Fn>
bool forEachSegment(std::string_view path, Fn&& fn) {
    size_t pos = 0;
    while (pos < path.size()) {
        size_t slash = path.find('/', pos);
        if (slash == std::string_view::npos) slash = path.size();
        if (slash > pos && !fn(path.substr(pos, slash - pos))) return false;
        pos = slash + 1;
    }
    return true;
}

}  // namespace

struct RouteTable::Node {
    std::unordered_map<std::string, std::unique_ptr<Node>, SegmentHash, std::equal_to<>> children;
    std::shared_ptr<const Upstream> target;
    std::string prefix;
};

RouteTable::RouteTable() : root_(std::make_unique<Node>()) {}
RouteTable::~RouteTable() = default;

std::string RouteTable::normalise(std::string_view prefix) {
    std::string out = "/";
    forEachSegment(prefix, [&](std::string_view segment) {
        out.append(segment);
        out += '/';
        return true;
    });
    return out;
}

bool RouteTable::add(std::string_view prefix, std::string_view targetUrl, std::string* error,
                     std::string_view peerName) {
    auto target = parseUpstream(targetUrl, error, peerName);
    if (!target) return false;
    Node* node = root_.get();
    forEachSegment(prefix, [&](std::string_view segment) {
        auto it = node->children.find(segment);
        if (it == node->children.end())
            it = node->children.emplace(std::string(segment), std::make_unique<Node>()).first;
        node = it->second.get();
        return true;
    });
    if (!node->target) ++count_;
    node->target = std::move(target);
    node->prefix = normalise(prefix);
    return true;
}

bool RouteTable::remove(std::string_view prefix) {
    // Walk down remembering the path, then prune empty nodes bottom-up.
    std::vector<std::pair<Node*, std::string_view>> trail;
    Node* node = root_.get();
    bool found = forEachSegment(prefix, [&](std::string_view segment) {
        auto it = node->children.find(segment);
        if (it == node->children.end()) return false;
        trail.emplace_back(node, segment);
        node = it->second.get();
        return true;
    });
    if (!found || !node->target) return false;
    node->target.reset();
    node->prefix.clear();
    --count_;
    while (!trail.empty()) {
        auto [parent, segment] = trail.back();
        trail.pop_back();
        auto it = parent->children.find(segment);
        if (it->second->target || !it->second->children.empty()) break;
        parent->children.erase(it);
    }
    return true;
}

std::optional<RouteTable::Match> RouteTable::lookup(std::string_view path) const {
    const Node* node = root_.get();
    const Node* best = node->target ? node : nullptr;
    bool dotSegment = false;
    forEachSegment(path, [&](std::string_view segment) {
        if (segment == "." || segment == "..") {
            dotSegment = true;
            return false;
        }
        if (!node) return true;  // keep scanning for dot segments
        auto it = node->children.find(segment);
        node = it == node->children.end() ? nullptr : it->second.get();
        if (node && node->target) best = node;
        return true;
    });
    if (dotSegment || !best) return std::nullopt;
    return Match{best->prefix, best->target};
}

std::optional<RouteTable::Match> RouteTable::get(std::string_view prefix) const {
    const Node* node = root_.get();
    bool found = forEachSegment(prefix, [&](std::string_view segment) {
        auto it = node->children.find(segment);
        if (it == node->children.end()) return false;
        node = it->second.get();
        return true;
    });
    if (!found || !node->target) return std::nullopt;
    return Match{node->prefix, node->target};
}

std::vector<std::pair<std::string, std::string>> RouteTable::list() const {
    std::vector<std::pair<std::string, std::string>> out;
    std::vector<const Node*> stack{root_.get()};
    while (!stack.empty()) {
        const Node* node = stack.back();
        stack.pop_back();
        if (node->target) out.emplace_back(node->prefix, node->target->url);
        for (const auto& [segment, child] : node->children) stack.push_back(child.get());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::shared_ptr<const Upstream> parseUpstream(std::string_view url, std::string* error,
                                              std::string_view peerName) {
    auto fail = [&](std::string why) -> std::shared_ptr<const Upstream> {
        if (error) *error = "proxy target '" + std::string(url) + "': " + why;
        return nullptr;
    };
    const bool tls = url.starts_with("https://");
    if (!tls && !url.starts_with("http://"))
        return fail("only http:// targets (and https:// for internal TLS) are supported");
    // TLS to a backend means internal TLS: its certificate must name someone.
    if (tls && peerName.empty())
        return fail("https:// targets are for internal TLS (JupyterHub.internal_ssl) only, to user servers");
    std::string_view rest = url.substr(tls ? 8 : 7);
    size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    if (path.find_first_of("?#") != std::string_view::npos) return fail("a query or fragment is not allowed");
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);

    std::string_view host;
    std::string_view portText;
    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string_view::npos) return fail("unterminated IPv6 address");
        host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return fail("malformed address");
            portText = authority.substr(close + 2);
        }
    } else {
        size_t colon = authority.rfind(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) portText = authority.substr(colon + 1);
    }
    if (host.empty()) return fail("no host");
    unsigned port = tls ? 443 : 80;
    if (!portText.empty()) {
        auto [end, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
        if (ec != std::errc{} || end != portText.data() + portText.size() || port == 0 || port > 65535)
            return fail("invalid port");
    }

    auto up = std::make_shared<Upstream>();
    up->url = std::string(url);
    up->tls = tls;
    up->peerName = tls ? std::string(peerName) : std::string();
    up->host = host == "localhost" ? "127.0.0.1" : std::string(host);
    up->port = static_cast<uint16_t>(port);
    up->pathPrefix = std::string(path);
    std::memset(&up->address, 0, sizeof up->address);
    auto& in4 = reinterpret_cast<sockaddr_in&>(up->address);
    auto& in6 = reinterpret_cast<sockaddr_in6&>(up->address);
    if (::inet_pton(AF_INET, up->host.c_str(), &in4.sin_addr) == 1) {
        in4.sin_family = AF_INET;
        in4.sin_port = htons(up->port);
        up->addressLength = sizeof in4;
        up->poolKey = up->host + ":" + std::to_string(port);
    } else if (::inet_pton(AF_INET6, up->host.c_str(), &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(up->port);
        up->addressLength = sizeof in6;
        up->poolKey = "[" + up->host + "]:" + std::to_string(port);
    } else {
        return fail("the host must be an IP address or localhost (name lookups would block the proxy)");
    }
    // What the backend would write in an absolute Location pointing at itself.
    std::string shownHost(host);
    if (host.find(':') != std::string_view::npos) shownHost = "[" + shownHost + "]";
    up->origin =
        (tls ? "https://" : "http://") + shownHost + (portText.empty() ? "" : ":" + std::string(portText));
    // A connection verified for one user is never reused for another.
    if (tls) up->poolKey = "https:" + up->peerName + "@" + up->poolKey;
    return up;
}

}  // namespace hubd::proxy
