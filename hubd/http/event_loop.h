// SPDX-License-Identifier: BSD-3-Clause
// A small epoll event loop with timers, cross-thread posting, and a worker
// pool for blocking calls (PAM) whose results come back on the loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

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

    TimerId addTimer(std::chrono::milliseconds delay, Callback fn);
    void cancelTimer(TimerId id);

    std::chrono::steady_clock::time_point now() const;  // cached per iteration

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Fixed-size pool of threads for blocking work.
class WorkerPool {
public:
    WorkerPool(EventLoop& loop, unsigned threads);
    ~WorkerPool();  // joins
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // work runs on a worker thread; done(result) runs on the loop thread.
    template <typename Work, typename Done> void submit(Work work, Done done);
    void submitRaw(std::function<void()> job);  // job runs on a worker

private:
    EventLoop& loop_;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

template <typename Work, typename Done> void WorkerPool::submit(Work work, Done done) {
    submitRaw([this, work = std::move(work), done = std::move(done)]() mutable {
        auto result = std::make_shared<decltype(work())>(work());
        loop_.post([done = std::move(done), result]() mutable { done(std::move(*result)); });
    });
}

}  // namespace hubd::http
