// SPDX-License-Identifier: BSD-3-Clause
// JupyterHub.subdomain_host: each user's server on a host of its own,
// <label>.<domain>, so that the browser's same-origin policy keeps one
// user's pages away from the hub's and from every other user's.
// Pure functions: parsing the trait, the username -> DNS label mapping of
// JupyterHub 3.0 (user.py _dns_quote), and classifying a request's Host.
//
// MUST: a Host is a user host only when it is exactly one DNS label followed
// by ".<domain>" (case-insensitive, port ignored); anything else is not, so
// a request can never reach a user's server through a look-alike host.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hub {

struct SubdomainHost {
    std::string scheme;  // "http" or "https"
    std::string domain;  // lower-case host name, "hub.example.org"
    int port = 0;        // 0: the scheme's default, not written into URLs

    // "https://hub.example.org[:port]": where the hub's pages are.
    std::string hubOrigin() const;
    // "https://<label>.hub.example.org[:port]": where a user's server is.
    std::string userOrigin(std::string_view label) const;
};

// As JupyterHub: a value without "://" means https. Refused, with the reason
// in `why`: other schemes, a path other than "/", a query, user info, an IP
// address (a wildcard DNS name is needed), an invalid host name or port.
std::optional<SubdomainHost> parseSubdomainHost(std::string_view value, std::string& why);

// JupyterHub 3.0's escaping of a username into a host label: percent-quote
// (nothing safe), lower-case, '_' and '~' as %xx too, then every '%' -> '_'.
// "Alice" -> "alice", "a_b" -> "a_5fb", "jo@x" -> "jo_40x".
std::string dnsLabel(std::string_view username);

// Why `label` cannot be a user's host under `domain`, or nullopt if it can:
// empty, over 63 bytes, a '.' (the server would sit inside another user's
// domain, and a wildcard certificate covers one label only), or a '-' at
// either end. The sentence names the fix.
std::optional<std::string> labelProblem(std::string_view username, std::string_view label,
                                        const SubdomainHost& host);

struct HostMatch {
    enum class Kind { Hub, User, Other } kind = Kind::Other;
    std::string label;  // Kind::User: the (lower-case) label before ".<domain>"
};

// `hostHeader` is Host (or a trusted X-Forwarded-Host): "name[:port]".
HostMatch classifyHost(std::string_view hostHeader, const SubdomainHost& host);

}  // namespace hub
