// SPDX-License-Identifier: BSD-3-Clause
#include "listeners.h"

#include <stdexcept>

#include <fmt/format.h>

namespace hubd {

namespace {

OpenListener bindAt(const Endpoint& at) {
    OpenListener l;
    uint16_t port = 0;
    l.fd = http::openListeningSocket(at.host, at.port, port);
    l.name = http::localName(l.fd.get());
    return l;
}

OpenListener inheritedAt(int fd) {
    OpenListener l;
    l.fd = http::UniqueFd(fd);
    l.name = http::localName(fd);
    l.inherited = true;
    return l;
}

}  // namespace

Listeners openListeners(const Endpoint& publicAt, const Endpoint& hubAt,
                        const std::vector<InheritedSocket>& inherited) {
    SocketRoles roles = assignSocketRoles(inherited);
    if (!roles.error.empty()) {
        for (const auto& s : inherited) http::UniqueFd owned(s.fd);  // closes it
        throw std::runtime_error(roles.error);
    }
    // Own the inherited fds first, so that a bind failure below closes them.
    Listeners l;
    std::optional<OpenListener> hubInherited;
    if (roles.hubFd) hubInherited = inheritedAt(*roles.hubFd);
    if (roles.redirectFd) l.redirect = http::UniqueFd(*roles.redirectFd);
    l.publicListener = roles.publicFd ? inheritedAt(*roles.publicFd) : bindAt(publicAt);
    bool shared = hubAt.host == publicAt.host && hubAt.port == publicAt.port;
    if (hubInherited)
        l.hubListener = std::move(hubInherited);
    else if (!shared)
        l.hubListener = bindAt(hubAt);
    return l;
}

std::string hubConnectBase(const Listeners& listeners, const std::string& hubConnectUrl, std::string& error,
                           const std::string& scheme) {
    std::string connect = hubConnectUrl;
    if (connect.empty()) {
        const http::SocketName& name =
            listeners.hubListener ? listeners.hubListener->name : listeners.publicListener.name;
        if (!name.inet()) {
            error = fmt::format(
                "the hub API listens on {}, which single-user servers cannot call over HTTP: set "
                "JupyterHub.hub_connect_url, or pass a TCP socket named \"hub\"",
                name.display());
            return {};
        }
        std::string host = name.host == "0.0.0.0"    ? "127.0.0.1"
                           : name.host == "::"       ? "[::1]"
                           : name.family == AF_INET6 ? "[" + name.host + "]"
                                                     : name.host;
        connect = fmt::format("{}://{}:{}", scheme, host, name.port);
    }
    while (!connect.empty() && connect.back() == '/') connect.pop_back();
    return connect;
}

}  // namespace hubd
