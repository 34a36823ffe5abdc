// SPDX-License-Identifier: BSD-3-Clause
// UpstreamPool: idle backend connections kept for reuse.
#include "proxy/upstream_pool.h"

#include <sys/epoll.h>

namespace hubd::proxy {

UpstreamPool::UpstreamPool(http::EventLoop& loop, size_t maxIdlePerBackend,
                           std::chrono::milliseconds idleTimeout)
    : loop_(loop), maxIdlePerBackend_(maxIdlePerBackend), idleTimeout_(idleTimeout) {}

UpstreamPool::~UpstreamPool() {
    for (auto& [key, list] : idle_)
        for (auto& entry : list)
            if (entry.timer != 0) loop_.cancelTimer(entry.timer);
}

BackendConnection UpstreamPool::take(const std::string& key) {
    auto found = idle_.find(key);
    if (found == idle_.end() || found->second.empty()) return {};
    Idle& entry = found->second.front();
    if (entry.timer != 0) loop_.cancelTimer(entry.timer);
    BackendConnection connection = std::move(entry.connection);
    found->second.pop_front();
    --idleTotal_;
    ++reused_;
    // The old callback refers to the list entry just erased.
    connection.socket.watch(connection.socket.events(), [](uint32_t) {});
    return connection;
}

void UpstreamPool::give(const std::string& key, BackendConnection connection) {
    if (maxIdlePerBackend_ == 0) return;  // closes it
    List& list = idle_[key];
    if (list.size() >= maxIdlePerBackend_) drop(key, std::prev(list.end()));  // the least recently used
    list.push_front(Idle{std::move(connection), 0});
    ++idleTotal_;
    auto it = list.begin();
    // The iterator stays valid until this entry is erased, which cancels both.
    // Same interest set as an exchange's backend (proxy.cpp kBackendIdleEvents):
    // moving a connection in and out of the pool costs no epoll_ctl.
    // TLS: a record arriving while idle (a close_notify) is a close too.
    it->connection.socket.watch(EPOLLIN | EPOLLRDHUP, [this, key, it](uint32_t) { drop(key, it); });
    it->timer = loop_.addTimer(idleTimeout_, [this, key, it] {
        it->timer = 0;
        drop(key, it);
    });
}

void UpstreamPool::drop(const std::string& key, List::iterator it) {
    auto found = idle_.find(key);
    if (found == idle_.end()) return;
    if (it->timer != 0) loop_.cancelTimer(it->timer);
    found->second.erase(it);  // unwatches and closes
    --idleTotal_;
    if (found->second.empty()) idle_.erase(found);
}

}  // namespace hubd::proxy
