// SPDX-License-Identifier: BSD-3-Clause
// Idle keep-alive connections to backends, per backend, with caps and an
// idle timeout; plus the count of connections in use per backend.
#pragma once

#include <chrono>
#include <list>
#include <string>
#include <unordered_map>

#include "http/event_loop.h"
#include "http/transport.h"

namespace hubd::proxy {

// A backend connection: the socket and, for internal TLS, its session.
struct BackendConnection {
    http::WatchedFd socket;
    http::Transport transport;
    explicit operator bool() const noexcept { return static_cast<bool>(socket); }
};

class UpstreamPool {
public:
    UpstreamPool(http::EventLoop& loop, size_t maxIdlePerBackend, std::chrono::milliseconds idleTimeout);
    ~UpstreamPool();
    UpstreamPool(const UpstreamPool&) = delete;
    UpstreamPool& operator=(const UpstreamPool&) = delete;

    // The most recently used idle connection to `key`, or an empty one. The
    // caller must watch() it with its own callback before the loop runs.
    BackendConnection take(const std::string& key);
    // Keeps a connection that just finished a response cleanly. One that
    // becomes readable while idle (the backend closed it, or sent bytes
    // nobody asked for) or idles past the timeout is closed.
    void give(const std::string& key, BackendConnection connection);

    size_t idleCount() const { return idleTotal_; }
    size_t reusedCount() const { return reused_; }  // connections handed out again (tests, stats)

private:
    struct Idle {
        BackendConnection connection;
        http::EventLoop::TimerId timer = 0;
    };
    using List = std::list<Idle>;
    void drop(const std::string& key, List::iterator it);

    http::EventLoop& loop_;
    size_t maxIdlePerBackend_;
    std::chrono::milliseconds idleTimeout_;
    std::unordered_map<std::string, List> idle_;  // front = most recently used
    size_t idleTotal_ = 0;
    size_t reused_ = 0;
};

}  // namespace hubd::proxy
