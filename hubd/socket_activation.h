// SPDX-License-Identifier: BSD-3-Clause
// systemd socket activation without libsystemd: the LISTEN_FDS protocol
// (sd_listen_fds(3)) read by hand, and which inherited socket serves what.
//
// The service manager binds the sockets (ports below 1024 included) and
// passes them from fd 3 on, with LISTEN_FDS=<count>, LISTEN_PID=<our pid>
// and optionally LISTEN_FDNAMES=<name>:<name>. hubd takes them before it
// starts anything, so no child inherits either the descriptors or the
// variables (docs/install.md, "Ports 80 and 443").
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace hubd {

constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START
// hubd uses three sockets at most; anything far beyond is a broken
// environment, not a configuration, and is refused before any fd is touched.
constexpr int kMaxListenFds = 64;

struct InheritedSocket {
    int fd = -1;
    std::string name;  // from LISTEN_FDNAMES; "" when not given
};

struct ListenFds {
    std::vector<InheritedSocket> sockets;  // empty: no socket activation
    std::string error;                     // non-empty: refuse to start
    std::string note;                      // something worth a log line (variables meant for another pid)
};

// The pure part of the protocol, for tests. Arguments are the variables'
// values (nullptr when unset) and our pid. Like sd_listen_fds, a
// LISTEN_PID that is not `self` means "not for us": no sockets, no error.
ListenFds parseListenFds(const char* listenPid, const char* listenFds, const char* listenFdNames, pid_t self);

// Reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, unsets all three (also
// when they are not for us or invalid), checks that each fd is open and a
// listening stream socket, and marks it close-on-exec. Call it before any
// thread or child process exists.
ListenFds takeListenFds();

// Which inherited socket is the public listener (JupyterHub.bind_url) and
// which the hub API for single-user servers (JupyterHub.hub_bind_url).
// Named "public" and "hub" go where they say; any other name (systemd's
// default is the socket unit's name) is taken in order: the first for the
// public listener, the second for the hub API.
// "public" and "hub" by name, unnamed sockets fill what is left of those
// two in order; "redirect" (the plain-HTTP port that redirects to https,
// JupyterHub.redirect_http_port) only by name, so an unnamed socket never
// ends up serving redirects instead of the hub.
struct SocketRoles {
    std::optional<int> publicFd;
    std::optional<int> hubFd;
    std::optional<int> redirectFd;
    std::string error;
};
SocketRoles assignSocketRoles(const std::vector<InheritedSocket>& sockets);

}  // namespace hubd
