// SPDX-License-Identifier: BSD-3-Clause
#include "http/listen_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <system_error>

#include <fmt/format.h>

namespace hubd::http {

namespace {

std::system_error listenError(int err, const std::string& host, uint16_t port) {
    std::string message;
    switch (err) {
        case EADDRINUSE:
            message = fmt::format(
                "port {} on {} is in use: stop the other program or set JupyterHub.bind_url", port, host);
            break;
        case EACCES:
            // Ports below net.ipv4.ip_unprivileged_port_start (1024 by
            // default) need CAP_NET_BIND_SERVICE; root is never the answer.
            message = fmt::format(
                "port {} on {} needs the capability CAP_NET_BIND_SERVICE, which hubd does not have: "
                "give it with systemd (AmbientCapabilities=CAP_NET_BIND_SERVICE) or on the binary "
                "(setcap cap_net_bind_service=+ep), use systemd socket activation, or use a port above "
                "1023 (docs/install.md, \"Ports 80 and 443\")",
                port, host);
            break;
        case EADDRNOTAVAIL:
            message = fmt::format(
                "address {} (port {}) is not on this machine: set JupyterHub.bind_url to one of its "
                "addresses",
                host, port);
            break;
        case EAFNOSUPPORT:
            message = fmt::format(
                "cannot listen on {} port {}: IPv6 is disabled on this machine; set JupyterHub.bind_url to "
                "an IPv4 address",
                host, port);
            break;
        default:
            message = fmt::format("cannot listen on {} port {}: check JupyterHub.bind_url", host, port);
            break;
    }
    return std::system_error(err, std::system_category(), message);
}

}  // namespace

UniqueFd openListeningSocket(const std::string& host, uint16_t port, uint16_t& boundPort) {
    std::string shown = host.empty() ? "0.0.0.0" : host;
    std::string literal = host;
    if (literal.size() >= 2 && literal.front() == '[' && literal.back() == ']')
        literal = literal.substr(1, literal.size() - 2);

    sockaddr_storage addr{};
    socklen_t length = 0;
    auto& in4 = reinterpret_cast<sockaddr_in&>(addr);
    auto& in6 = reinterpret_cast<sockaddr_in6&>(addr);
    bool anyV6 = false;
    if (literal.empty() || literal == "0.0.0.0" || literal == "localhost" ||
        ::inet_pton(AF_INET, literal.c_str(), &in4.sin_addr) == 1) {
        in4.sin_family = AF_INET;
        in4.sin_port = htons(port);
        if (literal.empty() || literal == "0.0.0.0") in4.sin_addr.s_addr = htonl(INADDR_ANY);
        if (literal == "localhost") in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        length = sizeof in4;
    } else if (::inet_pton(AF_INET6, literal.c_str(), &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(port);
        anyV6 = IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr);
        length = sizeof in6;
    } else {
        throw std::system_error(
            EINVAL, std::system_category(),
            fmt::format("cannot listen on '{}': not an IP address; use an address such as "
                        "0.0.0.0, ::, 127.0.0.1 or localhost in JupyterHub.bind_url",
                        host));
    }

    UniqueFd fd(::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) throw listenError(errno, shown, port);
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (anyV6) {
        int zero = 0;  // "::" means every address, IPv4 included
        ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), length) != 0)
        throw listenError(errno, shown, port);
    if (::listen(fd.get(), SOMAXCONN) != 0) throw listenError(errno, shown, port);

    SocketName bound = localName(fd.get());
    if (!bound.inet()) throw listenError(errno, shown, port);
    boundPort = bound.port;
    return fd;
}

SocketName localName(int fd) {
    SocketName name;
    sockaddr_storage addr{};
    socklen_t length = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) return name;
    name.family = addr.ss_family;
    char text[INET6_ADDRSTRLEN] = "";
    if (addr.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
        ::inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
        name.host = text;
        name.port = ntohs(in.sin_port);
    } else if (addr.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
        ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
        name.host = text;
        name.port = ntohs(in6.sin6_port);
    } else if (addr.ss_family == AF_UNIX) {
        const auto& un = reinterpret_cast<const sockaddr_un&>(addr);
        size_t max = length > offsetof(sockaddr_un, sun_path) ? length - offsetof(sockaddr_un, sun_path) : 0;
        std::string path(un.sun_path, std::min(max, sizeof un.sun_path));
        if (!path.empty() && path[0] == '\0') path[0] = '@';  // abstract namespace, as ss(8) shows it
        name.host = path.substr(0, path.find('\0'));
    }
    return name;
}

std::string SocketName::display() const {
    if (family == AF_INET) return fmt::format("{}:{}", host, port);
    if (family == AF_INET6) return fmt::format("[{}]:{}", host, port);
    if (family == AF_UNIX) return "unix:" + host;
    return "(unknown address)";
}

}  // namespace hubd::http
