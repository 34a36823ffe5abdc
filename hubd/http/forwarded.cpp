// SPDX-License-Identifier: BSD-3-Clause
#include "http/forwarded.h"

#include <algorithm>
#include <string_view>
#include <vector>

namespace hubd::http {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Entries of every occurrence of a comma-separated header, in order.
std::vector<std::string_view> listEntries(const Request& request, std::string_view name) {
    std::vector<std::string_view> out;
    for (const auto& [n, value] : request.headers) {
        if (n.size() != name.size() || !std::equal(n.begin(), n.end(), name.begin(),
                                                   [](char a, char b) { return (a | 0x20) == (b | 0x20); }))
            continue;
        std::string_view rest = value;
        while (true) {
            const auto comma = rest.find(',');
            out.push_back(trim(rest.substr(0, comma)));
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return out;
}

// A host[:port] or [v6]:port fit to put into a URL: no spaces, controls,
// slashes or anything else a URL authority cannot hold unescaped.
bool plausibleHost(std::string_view host) {
    return !host.empty() && host.size() <= 255 && std::all_of(host.begin(), host.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '-' || c == ':' || c == '[' || c == ']' || c == '_';
    });
}

}  // namespace

ClientView clientView(const Request& request, const hub::IpNetworkList& trusted) {
    ClientView view;
    view.address = request.peerAddress;
    view.scheme = request.tls ? "https" : "http";
    view.host = std::string(request.header("Host"));
    if (!trusted.contains(request.peerAddress)) return view;
    view.viaTrustedProxy = true;

    const auto hops = listEntries(request, "X-Forwarded-For");
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        const auto address = hub::parseIpAddress(*it);
        if (!address) break;  // garbage: believe no further than the hop that passed it on
        view.address = std::string(*it);
        if (!trusted.contains(*address)) break;
    }

    const auto protos = listEntries(request, "X-Forwarded-Proto");
    if (!protos.empty() && (protos.back() == "http" || protos.back() == "https"))
        view.scheme = std::string(protos.back());

    const auto hosts = listEntries(request, "X-Forwarded-Host");
    if (!hosts.empty() && plausibleHost(hosts.front())) view.host = std::string(hosts.front());
    return view;
}

}  // namespace hubd::http
