// SPDX-License-Identifier: BSD-3-Clause
// A small epoll event loop with timers, cross-thread posting, and a worker
// pool for blocking calls (PAM) whose results come back on the loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "http/unique_fd.h"

namespace hubd::http {

class EventLoop {
public:
    using Callback = std::function<void()>;
    using IoCallback = std::function<void(uint32_t epollEvents)>;
    using TimerId = uint64_t;

    EventLoop();
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Runs until stop(). Exceptions escaping a callback are logged and the
    // loop continues (the connection boundary of docs/error-policy.md).
    void run();
    void stop();  // thread-safe

    // Thread-safe: run fn on the loop thread soon.
    void post(Callback fn);

    // fd watching (fd is not owned). events: EPOLLIN/EPOLLOUT/EPOLLET/...
    void watch(int fd, uint32_t events, IoCallback cb);
    void modify(int fd, uint32_t events);
    void unwatch(int fd);
    // Gives a watched fd a new callback without touching epoll: a socket
    // handed from the HTTP server to the proxy and back changes owner at the
    // cost of one allocation, not two epoll_ctl calls.
    void replaceCallback(int fd, IoCallback cb);

    TimerId addTimer(std::chrono::milliseconds delay, Callback fn);
    void cancelTimer(TimerId id);

    std::chrono::steady_clock::time_point now() const;  // cached per iteration

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Sole owner of a socket and of its registration with the loop: unwatches
// before it closes, and only calls epoll_ctl when the interest set changes.
// The loop must outlive it.
class WatchedFd {
public:
    WatchedFd() = default;
    WatchedFd(EventLoop& loop, UniqueFd fd) noexcept : loop_(&loop), fd_(std::move(fd)) {}
    WatchedFd(WatchedFd&& other) noexcept;
    WatchedFd& operator=(WatchedFd&& other) noexcept;
    WatchedFd(const WatchedFd&) = delete;
    WatchedFd& operator=(const WatchedFd&) = delete;
    ~WatchedFd() { reset(); }

    int get() const noexcept { return fd_.get(); }
    explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
    EventLoop* loop() const noexcept { return loop_; }
    uint32_t events() const noexcept { return events_; }
    bool watched() const noexcept { return watched_; }

    // Registers (or re-registers with a new callback) for `events`.
    void watch(uint32_t events, EventLoop::IoCallback cb);
    void setEvents(uint32_t events);
    void reset() noexcept;  // unwatch and close

private:
    EventLoop* loop_ = nullptr;
    UniqueFd fd_;
    bool watched_ = false;
    uint32_t events_ = 0;
};

// Fixed-size pool of threads for blocking work.
class WorkerPool {
public:
    WorkerPool(EventLoop& loop, unsigned threads);
    ~WorkerPool();  // joins
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // work runs on a worker thread; done(result) runs on the loop thread.
    template <typename Work, typename Done>
    void submit(Work work, Done done);
    void submitRaw(std::function<void()> job);  // job runs on a worker
    unsigned size() const;                      // threads in the pool

private:
    EventLoop& loop_;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

template <typename Work, typename Done>
void WorkerPool::submit(Work work, Done done) {
    submitRaw([this, work = std::move(work), done = std::move(done)]() mutable {
        auto result = std::make_shared<decltype(work())>(work());
        loop_.post([done = std::move(done), result]() mutable { done(std::move(*result)); });
    });
}

}  // namespace hubd::http
