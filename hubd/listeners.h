// SPDX-License-Identifier: BSD-3-Clause
// hubd's two listeners, opened before anything else runs: the public one
// (JupyterHub.bind_url) and the hub API single-user servers call
// (JupyterHub.hub_bind_url), each bound here or inherited from systemd
// socket activation (socket_activation.h). They reach an HttpServer only
// after capabilities are dropped (HttpServer::adopt).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "http/listen_socket.h"
#include "http/unique_fd.h"
#include "socket_activation.h"

namespace hubd {

struct Endpoint {  // host and port of a bind URL
    std::string host;
    uint16_t port = 0;
};

struct OpenListener {
    http::UniqueFd fd;
    http::SocketName name;  // where it really listens
    bool inherited = false;
};

struct Listeners {
    OpenListener publicListener;
    std::optional<OpenListener> hubListener;  // nullopt: the hub API is on the public listener
    http::UniqueFd redirect;                  // a socket passed as "redirect", if any
};

// Binds what socket activation did not pass. The hub API shares the public
// listener when hub_bind_url equals bind_url and no "hub" socket was passed.
// Throws std::system_error (bind failures name the fix) or
// std::runtime_error (sockets that cannot be mapped).
Listeners openListeners(const Endpoint& publicAt, const Endpoint& hubAt,
                        const std::vector<InheritedSocket>& inherited);

// "http://HOST:PORT" single-user servers call back on: hub_connect_url when
// set, else the hub listener (a wildcard address is reached through
// loopback). "" with `error` set when there is no such URL (a Unix socket).
// `scheme` is "https" with internal TLS.
std::string hubConnectBase(const Listeners& listeners, const std::string& hubConnectUrl, std::string& error,
                           const std::string& scheme = "http");

}  // namespace hubd
