// SPDX-License-Identifier: BSD-3-Clause
// subdomain_host: the trait, JupyterHub's username -> label escaping, Host matching.
#include "hubcore/subdomain.h"

#include <fmt/format.h>

#include <algorithm>

namespace hub {
namespace {

constexpr size_t kMaxLabel = 63;  // RFC 1035 2.3.4

char asciiLower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowered(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), asciiLower);
    return out;
}

bool labelChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool isDigits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A DNS name: dot-separated labels of letters, digits, '-' (and '_', which
// browsers accept), at least two labels, not all-numeric (an IPv4 address).
std::optional<std::string> hostNameProblem(std::string_view name) {
    if (name.empty()) return "it has no host name";
    if (name.size() > 253) return "the host name is longer than 253 characters";
    if (name.find('.') == std::string_view::npos)
        return fmt::format(
            "'{}' is a single label: users' hosts are <user>.{} and need a wildcard DNS "
            "record under a real domain",
            name, name);
    bool allNumeric = true;
    size_t start = 0;
    while (start <= name.size()) {
        size_t dot = std::min(name.find('.', start), name.size());
        std::string_view label = name.substr(start, dot - start);
        if (label.empty() || label.size() > kMaxLabel ||
            !std::all_of(label.begin(), label.end(), labelChar) || label.front() == '-' ||
            label.back() == '-')
            return fmt::format("'{}' is not a valid host name", name);
        allNumeric = allNumeric && isDigits(label);
        start = dot + 1;
    }
    if (allNumeric) return fmt::format("'{}' is an IP address: users' hosts need a DNS name", name);
    return std::nullopt;
}

}  // namespace

std::string SubdomainHost::hubOrigin() const {
    return port ? fmt::format("{}://{}:{}", scheme, domain, port) : fmt::format("{}://{}", scheme, domain);
}

std::string SubdomainHost::userOrigin(std::string_view label) const {
    return port ? fmt::format("{}://{}.{}:{}", scheme, label, domain, port)
                : fmt::format("{}://{}.{}", scheme, label, domain);
}

std::optional<SubdomainHost> parseSubdomainHost(std::string_view value, std::string& why) {
    SubdomainHost out;
    std::string_view rest = value;
    if (auto sep = value.find("://"); sep != std::string_view::npos) {
        out.scheme = lowered(value.substr(0, sep));
        rest = value.substr(sep + 3);
    } else {
        out.scheme = "https";  // JupyterHub: "You have to be really explicit about HTTP!"
    }
    if (out.scheme != "http" && out.scheme != "https") {
        why = fmt::format("the scheme must be https (or http), not '{}'", out.scheme);
        return std::nullopt;
    }
    const size_t authEnd = std::min(rest.find_first_of("/?#"), rest.size());
    std::string_view authority = rest.substr(0, authEnd);
    std::string_view tail = rest.substr(authEnd);
    if (!tail.empty() && tail != "/") {
        why =
            "it must be scheme://host[:port] without a path, query or fragment: users' servers keep "
            "JupyterHub.base_url as their path prefix";
        return std::nullopt;
    }
    if (authority.find('@') != std::string_view::npos) {
        why = "it must not contain a user name or password";
        return std::nullopt;
    }
    if (!authority.empty() && authority.front() == '[') {
        why = "it is an IP address: users' hosts need a DNS name with a wildcard record";
        return std::nullopt;
    }
    std::string_view name = authority;
    if (auto colon = authority.find(':'); colon != std::string_view::npos) {
        name = authority.substr(0, colon);
        std::string_view digits = authority.substr(colon + 1);
        if (!isDigits(digits) || digits.size() > 5 || std::stoi(std::string(digits)) < 1 ||
            std::stoi(std::string(digits)) > 65535) {
            why = fmt::format("the port '{}' is not a number from 1 to 65535", digits);
            return std::nullopt;
        }
        out.port = std::stoi(std::string(digits));
        if ((out.scheme == "https" && out.port == 443) || (out.scheme == "http" && out.port == 80))
            out.port = 0;
    }
    out.domain = lowered(name);
    if (auto problem = hostNameProblem(out.domain)) {
        why = *problem;
        return std::nullopt;
    }
    return out;
}

std::string dnsLabel(std::string_view username) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string label;
    for (unsigned char c : username) {
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.') {
            label += static_cast<char>(c);
        } else if (c >= 'A' && c <= 'Z') {
            label += static_cast<char>(c - 'A' + 'a');
        } else {
            // quote()'s %XX, then .lower(); '_' and '~' (left alone by quote)
            // get the same treatment; then every '%' becomes '_'.
            label += '_';
            label += kHex[c >> 4];
            label += kHex[c & 15];
        }
    }
    return label;
}

std::optional<std::string> labelProblem(std::string_view username, std::string_view label,
                                        const SubdomainHost& host) {
    auto refuse = [&](std::string_view reason) {
        return fmt::format(
            "{}'s server cannot have a host of its own under JupyterHub.subdomain_host ({}): the host "
            "label '{}' {}. Rename the account, or map it with Authenticator.username_map",
            username, host.domain, label, reason);
    };
    if (label.empty()) return refuse("is empty");
    if (label.size() > kMaxLabel) return refuse("is longer than the 63 characters DNS allows");
    if (label.find('.') != std::string_view::npos)
        return refuse(fmt::format(
            "contains a dot: the server would sit inside the domain of user '{}', whose server could "
            "plant cookies on it, and a wildcard certificate for *.{} does not cover it",
            label.substr(label.rfind('.') + 1), host.domain));
    if (label.front() == '-' || label.back() == '-') return refuse("begins or ends with '-'");
    return std::nullopt;
}

HostMatch classifyHost(std::string_view hostHeader, const SubdomainHost& host) {
    HostMatch match;
    if (hostHeader.empty() || hostHeader.front() == '[') return match;  // IPv6 literal: not ours
    std::string name = lowered(hostHeader.substr(0, hostHeader.find(':')));
    if (name == host.domain) {
        match.kind = HostMatch::Kind::Hub;
        return match;
    }
    const std::string suffix = "." + host.domain;
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        return match;
    std::string label = name.substr(0, name.size() - suffix.size());
    if (label.size() > kMaxLabel || !std::all_of(label.begin(), label.end(), labelChar)) return match;
    match.kind = HostMatch::Kind::User;
    match.label = std::move(label);
    return match;
}

}  // namespace hub
