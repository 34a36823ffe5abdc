// SPDX-License-Identifier: BSD-3-Clause
#include "socket_activation.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

namespace hubd {

namespace {

// A decimal number with nothing around it (no sign, no spaces), as systemd
// writes them; anything else is a corrupted environment.
std::optional<long> strictNumber(const char* text) {
    std::string_view s(text);
    long value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || value < 0) return std::nullopt;
    return value;
}

std::vector<std::string> splitNames(std::string_view names) {
    std::vector<std::string> out;
    size_t start = 0;
    while (true) {
        size_t colon = names.find(':', start);
        out.emplace_back(names.substr(start, colon - start));
        if (colon == std::string_view::npos) break;
        start = colon + 1;
    }
    return out;
}

}  // namespace

ListenFds parseListenFds(const char* listenPid, const char* listenFds, const char* listenFdNames,
                         pid_t self) {
    ListenFds result;
    if (!listenPid && !listenFds) return result;
    if (!listenPid || !listenFds) {
        result.error = fmt::format(
            "{} is set but {} is not: socket activation needs both; start hubd from a systemd socket "
            "unit, or unset the variable",
            listenPid ? "LISTEN_PID" : "LISTEN_FDS", listenPid ? "LISTEN_FDS" : "LISTEN_PID");
        return result;
    }
    auto pid = strictNumber(listenPid);
    if (!pid || *pid == 0) {
        result.error =
            fmt::format("LISTEN_PID='{}' is not a process id", std::string_view(listenPid).substr(0, 40));
        return result;
    }
    if (*pid != self) {
        // A parent's variables leaked into our environment: those fds are
        // not ours to take (sd_listen_fds(3) does the same).
        result.note =
            fmt::format("ignoring LISTEN_FDS: it was meant for process {}, not hubd ({})", *pid, self);
        return result;
    }
    auto count = strictNumber(listenFds);
    if (!count) {
        result.error =
            fmt::format("LISTEN_FDS='{}' is not a number", std::string_view(listenFds).substr(0, 40));
        return result;
    }
    if (*count > kMaxListenFds) {
        result.error = fmt::format("LISTEN_FDS={} is more than the {} hubd accepts", *count, kMaxListenFds);
        return result;
    }
    std::vector<std::string> names;
    if (listenFdNames) {
        names = splitNames(listenFdNames);
        if (names.size() != static_cast<size_t>(*count)) {
            result.error =
                fmt::format("LISTEN_FDNAMES has {} name(s) for LISTEN_FDS={} sockets", names.size(), *count);
            return result;
        }
    }
    for (int i = 0; i < *count; ++i)
        result.sockets.push_back({kListenFdsStart + i, names.empty() ? std::string() : names[i]});
    return result;
}

ListenFds takeListenFds() {
    ListenFds result = parseListenFds(std::getenv("LISTEN_PID"), std::getenv("LISTEN_FDS"),
                                      std::getenv("LISTEN_FDNAMES"), ::getpid());
    // Whatever they said, they are spent: nothing hubd starts (sudo, the
    // helper, a user's server) may believe they are meant for it.
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    for (const auto& s : result.sockets) {
        int flags = ::fcntl(s.fd, F_GETFD);
        if (flags < 0 || ::fcntl(s.fd, F_SETFD, flags | FD_CLOEXEC) != 0) {
            result.error = fmt::format(
                "LISTEN_FDS: fd {} is not open: the service manager passed fewer sockets "
                "than it announced",
                s.fd);
            break;
        }
        int type = 0, accepting = 0;
        socklen_t length = sizeof type;
        bool stream = ::getsockopt(s.fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 && type == SOCK_STREAM;
        length = sizeof accepting;
        if (!stream || ::getsockopt(s.fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) != 0 ||
            !accepting) {
            result.error = fmt::format(
                "LISTEN_FDS: fd {}{} is not a listening stream socket: use ListenStream= in the socket "
                "unit (not ListenDatagram= or Accept=yes)",
                s.fd, s.name.empty() ? std::string() : " (" + s.name + ")");
            break;
        }
    }
    if (!result.error.empty()) {
        for (const auto& s : result.sockets) ::close(s.fd);
        result.sockets.clear();
    }
    return result;
}

SocketRoles assignSocketRoles(const std::vector<InheritedSocket>& sockets) {
    SocketRoles roles;
    if (sockets.size() > 3) {
        roles.error = fmt::format(
            "socket activation passed {} sockets; hubd uses three at most, named \"public\", \"hub\" and "
            "\"redirect\" (FileDescriptorName= in the socket unit)",
            sockets.size());
        return roles;
    }
    std::vector<int> unnamed;
    for (const auto& s : sockets) {
        std::optional<int>* slot = s.name == "public"     ? &roles.publicFd
                                   : s.name == "hub"      ? &roles.hubFd
                                   : s.name == "redirect" ? &roles.redirectFd
                                                          : nullptr;
        if (!slot) {
            unnamed.push_back(s.fd);
            continue;
        }
        if (*slot) {
            roles.error = fmt::format("socket activation passed two sockets named \"{}\"", s.name);
            return roles;
        }
        *slot = s.fd;
    }
    for (int fd : unnamed) {
        if (roles.publicFd && roles.hubFd) {
            roles.error =
                "socket activation passed more sockets than hubd can place: name them \"public\", \"hub\" "
                "and "
                "\"redirect\" (FileDescriptorName= in the socket unit)";
            return roles;
        }
        (roles.publicFd ? roles.hubFd : roles.publicFd) = fd;
    }
    return roles;
}

}  // namespace hubd
