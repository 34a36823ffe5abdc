// SPDX-License-Identifier: BSD-3-Clause
// Opening listening sockets, apart from serving them: hubd binds (or
// inherits) every socket first, drops its capabilities, and only then
// hands the sockets to an HttpServer (HttpServer::adopt).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "http/unique_fd.h"

namespace hubd::http {

// Binds and listens (SO_REUSEADDR, non-blocking, CLOEXEC). host "" or
// "0.0.0.0" = all IPv4, "::" = all, otherwise an address literal or
// "localhost". Port 0 picks a free port; boundPort receives the port.
// Throws std::system_error with a sentence naming address, port and fix.
UniqueFd openListeningSocket(const std::string& host, uint16_t port, uint16_t& boundPort);

// The local address of a socket, for logs and for the URL servers call back on.
struct SocketName {
    sa_family_t family = AF_UNSPEC;
    std::string host;  // numeric, "0.0.0.0" or "::" for wildcards; AF_UNIX: the path
    uint16_t port = 0;
    bool inet() const { return family == AF_INET || family == AF_INET6; }
    // "127.0.0.1:8000", "[::]:443", "unix:/run/hubd.sock"
    std::string display() const;
};
SocketName localName(int fd);

}  // namespace hubd::http
