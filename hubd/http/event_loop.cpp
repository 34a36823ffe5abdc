// SPDX-License-Identifier: BSD-3-Clause
// EventLoop (epoll + eventfd + timer heap) and WorkerPool (threads + queue).
#include "http/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http/unique_fd.h"

namespace hubd::http {

namespace {

using Clock = std::chrono::steady_clock;

// Marks the eventfd's epoll events; watcher events carry (generation << 32 | fd).
constexpr uint64_t kWakeTag = ~uint64_t{0};
constexpr int kMaxEvents = 256;

void logFailure(const char* where, const char* reason) {
    std::fprintf(stderr, "hubd: event loop: %s failed: %s\n", where, reason);
}

// The connection boundary: one callback's failure is logged and must not
// take the loop (and every other connection) down with it.
template <typename Fn>
void guarded(const char* where, Fn&& fn) {
    try {
        fn();
    } catch (const std::exception& e) {
        logFailure(where, e.what());
    } catch (...) {
        logFailure(where, "unknown exception");
    }
}

[[noreturn]] void throwErrno(const char* what) {
    throw std::system_error(errno, std::system_category(), what);
}

}  // namespace

struct EventLoop::Impl {
    struct Watcher {
        uint32_t generation;
        IoCallback cb;
    };
    struct TimerEntry {
        Clock::time_point at;
        TimerId id;
        bool operator>(const TimerEntry& o) const { return at != o.at ? at > o.at : id > o.id; }
    };

    UniqueFd epoll;
    UniqueFd wake;
    std::atomic<bool> stopped{false};
    Clock::time_point now = Clock::now();

    // Indexed by fd: descriptors are small and dense, so a vector beats a map.
    std::vector<std::unique_ptr<Watcher>> watchers;
    // Unwatched during dispatch: kept alive until the batch is done, since
    // the callback being run may be the one that unwatched itself.
    std::vector<std::unique_ptr<Watcher>> retired;
    uint32_t nextGeneration = 1;

    // Min-heap with lazy cancellation: cancelled ids vanish from `timers`
    // and their heap entries are skipped (and compacted when they pile up).
    std::vector<TimerEntry> heap;
    std::unordered_map<TimerId, Callback> timers;
    TimerId nextTimer = 1;

    std::mutex postMutex;
    std::vector<Callback> posted;

    void wakeUp() {
        uint64_t one = 1;
        // EAGAIN means the counter is already non-zero: the loop will wake anyway.
        [[maybe_unused]] ssize_t n = ::write(wake.get(), &one, sizeof one);
    }

    int pollTimeoutMs() const {
        if (heap.empty()) return -1;
        auto left = heap.front().at - now;
        if (left <= Clock::duration::zero()) return 0;
        auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
        return static_cast<int>(std::min<int64_t>(ms, 60'000));
    }

    void runTimers() {
        // Collect first so a timer that re-adds itself with zero delay runs
        // on the next iteration instead of spinning here.
        std::vector<Callback> due;
        while (!heap.empty() && heap.front().at <= now) {
            std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
            TimerId id = heap.back().id;
            heap.pop_back();
            auto it = timers.find(id);
            if (it == timers.end()) continue;
            due.push_back(std::move(it->second));
            timers.erase(it);
        }
        for (auto& fn : due) guarded("timer callback", fn);
    }

    void runPosted() {
        std::vector<Callback> batch;
        {
            std::lock_guard lock(postMutex);
            batch.swap(posted);
        }
        for (auto& fn : batch) guarded("posted callback", fn);
    }

    void compactTimers() {
        std::erase_if(heap, [this](const TimerEntry& e) { return !timers.contains(e.id); });
        std::make_heap(heap.begin(), heap.end(), std::greater<>{});
    }
};

EventLoop::EventLoop() : impl_(std::make_unique<Impl>()) {
    impl_->epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!impl_->epoll) throwErrno("epoll_create1");
    impl_->wake.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!impl_->wake) throwErrno("eventfd");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeTag;
    if (::epoll_ctl(impl_->epoll.get(), EPOLL_CTL_ADD, impl_->wake.get(), &ev) != 0) throwErrno("epoll_ctl");
}

EventLoop::~EventLoop() = default;

void EventLoop::run() {
    Impl& s = *impl_;
    epoll_event events[kMaxEvents];
    while (!s.stopped.load(std::memory_order_acquire)) {
        int n = ::epoll_wait(s.epoll.get(), events, kMaxEvents, s.pollTimeoutMs());
        s.now = Clock::now();
        if (n < 0) {
            if (errno == EINTR) continue;
            throwErrno("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            uint64_t tag = events[i].data.u64;
            if (tag == kWakeTag) {
                uint64_t count;
                [[maybe_unused]] ssize_t r = ::read(s.wake.get(), &count, sizeof count);
                continue;
            }
            auto fd = static_cast<int>(tag & 0xffffffffu);
            auto generation = static_cast<uint32_t>(tag >> 32);
            // A stale event for an fd that was closed and reused earlier in
            // this batch carries the old generation: drop it.
            if (fd < 0 || static_cast<size_t>(fd) >= s.watchers.size()) continue;
            Impl::Watcher* w = s.watchers[fd].get();
            if (!w || w->generation != generation) continue;
            uint32_t mask = events[i].events;
            guarded("I/O callback", [&] { w->cb(mask); });
        }
        s.retired.clear();
        s.runTimers();
        s.runPosted();
    }
    // Allows run() again after stop(); a stop() racing with this store is
    // indistinguishable from one issued after run() returned.
    s.stopped.store(false, std::memory_order_release);
}

void EventLoop::stop() {
    impl_->stopped.store(true, std::memory_order_release);
    impl_->wakeUp();
}

void EventLoop::post(Callback fn) {
    bool wasEmpty;
    {
        std::lock_guard lock(impl_->postMutex);
        wasEmpty = impl_->posted.empty();
        impl_->posted.push_back(std::move(fn));
    }
    // The loop reads the eventfd before it swaps the queue, so a non-empty
    // queue already has a wake-up on its way.
    if (wasEmpty) impl_->wakeUp();
}

void EventLoop::watch(int fd, uint32_t events, IoCallback cb) {
    Impl& s = *impl_;
    if (fd < 0) throw std::system_error(EBADF, std::system_category(), "EventLoop::watch");
    auto index = static_cast<size_t>(fd);
    if (index >= s.watchers.size()) s.watchers.resize(std::max(index + 1, s.watchers.size() * 2));
    if (s.watchers[index]) throw std::system_error(EEXIST, std::system_category(), "EventLoop::watch");
    uint32_t generation = s.nextGeneration++;
    if (s.nextGeneration == 0) s.nextGeneration = 1;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = (uint64_t{generation} << 32) | static_cast<uint32_t>(fd);
    if (::epoll_ctl(s.epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) throwErrno("epoll_ctl(ADD)");
    s.watchers[index] = std::make_unique<Impl::Watcher>(Impl::Watcher{generation, std::move(cb)});
}

void EventLoop::modify(int fd, uint32_t events) {
    Impl& s = *impl_;
    if (fd < 0 || static_cast<size_t>(fd) >= s.watchers.size() || !s.watchers[fd]) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = (uint64_t{s.watchers[fd]->generation} << 32) | static_cast<uint32_t>(fd);
    if (::epoll_ctl(s.epoll.get(), EPOLL_CTL_MOD, fd, &ev) != 0) throwErrno("epoll_ctl(MOD)");
}

void EventLoop::unwatch(int fd) {
    Impl& s = *impl_;
    if (fd < 0 || static_cast<size_t>(fd) >= s.watchers.size() || !s.watchers[fd]) return;
    // Fails only if fd was already closed, which removed it from epoll anyway.
    ::epoll_ctl(s.epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
    s.retired.push_back(std::move(s.watchers[fd]));
}

void EventLoop::replaceCallback(int fd, IoCallback cb) {
    Impl& s = *impl_;
    if (fd < 0 || static_cast<size_t>(fd) >= s.watchers.size() || !s.watchers[fd])
        throw std::system_error(EBADF, std::system_category(), "EventLoop::replaceCallback");
    // Same generation: events already queued for this fd are the new owner's.
    uint32_t generation = s.watchers[fd]->generation;
    s.retired.push_back(std::move(s.watchers[fd]));  // may be the callback running now
    s.watchers[fd] = std::make_unique<Impl::Watcher>(Impl::Watcher{generation, std::move(cb)});
}

EventLoop::TimerId EventLoop::addTimer(std::chrono::milliseconds delay, Callback fn) {
    Impl& s = *impl_;
    TimerId id = s.nextTimer++;
    s.timers.emplace(id, std::move(fn));
    s.heap.push_back({s.now + std::max(delay, std::chrono::milliseconds::zero()), id});
    std::push_heap(s.heap.begin(), s.heap.end(), std::greater<>{});
    return id;
}

void EventLoop::cancelTimer(TimerId id) {
    Impl& s = *impl_;
    if (s.timers.erase(id) == 0) return;
    if (s.heap.size() > 2 * s.timers.size() + 1024) s.compactTimers();
}

std::chrono::steady_clock::time_point EventLoop::now() const {
    return impl_->now;
}

// ---------------------------------------------------------------------------

WatchedFd::WatchedFd(WatchedFd&& other) noexcept
    : loop_(other.loop_),
      fd_(std::move(other.fd_)),
      watched_(std::exchange(other.watched_, false)),
      events_(std::exchange(other.events_, 0)) {}

WatchedFd& WatchedFd::operator=(WatchedFd&& other) noexcept {
    if (this != &other) {
        reset();
        loop_ = other.loop_;
        fd_ = std::move(other.fd_);
        watched_ = std::exchange(other.watched_, false);
        events_ = std::exchange(other.events_, 0);
    }
    return *this;
}

void WatchedFd::watch(uint32_t events, EventLoop::IoCallback cb) {
    if (!watched_) {
        loop_->watch(fd_.get(), events, std::move(cb));
        watched_ = true;
        events_ = events;
        return;
    }
    loop_->replaceCallback(fd_.get(), std::move(cb));
    setEvents(events);
}

void WatchedFd::setEvents(uint32_t events) {
    if (!watched_ || events == events_) return;
    loop_->modify(fd_.get(), events);
    events_ = events;
}

void WatchedFd::reset() noexcept {
    if (watched_ && loop_) loop_->unwatch(fd_.get());  // unwatch only fails on an fd already closed
    watched_ = false;
    events_ = 0;
    fd_.reset();
}

// ---------------------------------------------------------------------------

struct WorkerPool::Impl {
    std::mutex mutex;
    std::condition_variable wakeUp;
    std::deque<std::function<void()>> queue;
    bool stopping = false;
    std::vector<std::thread> threads;

    void work() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mutex);
                wakeUp.wait(lock, [this] { return stopping || !queue.empty(); });
                // Drain before exiting: submitted work has callers waiting on it.
                if (queue.empty()) return;
                job = std::move(queue.front());
                queue.pop_front();
            }
            try {
                job();
            } catch (const std::exception& e) {
                std::fprintf(stderr, "hubd: worker pool: job failed: %s\n", e.what());
            } catch (...) {
                std::fprintf(stderr, "hubd: worker pool: job failed: unknown exception\n");
            }
        }
    }
};

WorkerPool::WorkerPool(EventLoop& loop, unsigned threads) : loop_(loop), impl_(std::make_unique<Impl>()) {
    threads = std::max(threads, 1u);
    impl_->threads.reserve(threads);
    for (unsigned i = 0; i < threads; ++i) impl_->threads.emplace_back([this] { impl_->work(); });
}

unsigned WorkerPool::size() const {
    return static_cast<unsigned>(impl_->threads.size());
}

WorkerPool::~WorkerPool() {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
    }
    impl_->wakeUp.notify_all();
    for (auto& t : impl_->threads) t.join();
}

void WorkerPool::submitRaw(std::function<void()> job) {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->queue.push_back(std::move(job));
    }
    impl_->wakeUp.notify_one();
}

}  // namespace hubd::http
