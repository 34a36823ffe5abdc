// SPDX-License-Identifier: BSD-3-Clause
// Sign-ins in progress (login_conversation.h): each runs on a thread of its
// own while it lasts, talking to the loop thread through a mutex, a
// condition variable and EventLoop::post.
#include "app/login_conversation.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "app/hub.h"
#include "app/login_throttle.h"
#include "hubcore/log.h"
#include "hubcore/token.h"

namespace hubd {

namespace {

// A step id carries 256 random bits as hex.
constexpr size_t kStepIdBytes = 32;

void wipe(std::string& s) {
    explicit_bzero(s.data(), s.size());
    s.clear();
}

struct Conversation {
    explicit Conversation(uint64_t n) : serial(n) {}
    const uint64_t serial;

    // Shared with the sign-in's thread, under `mutex`.
    std::mutex mutex;
    std::condition_variable wake;
    std::optional<std::vector<std::string>> answers;
    bool aborted = false;

    // Loop thread only.
    std::string sessionDigest;
    std::string sourceKey;
    std::string source;
    std::string username;
    // Set while an HTTP request waits for the next step; empty while the
    // browser has the prompts (or went away).
    LoginConversations::StepCallback callback;
    std::string stepDigest;  // of the id the browser must send back; empty unless waiting
    hubd::http::EventLoop::TimerId timer = 0;

    void abort() {
        {
            std::lock_guard lock(mutex);
            aborted = true;
        }
        wake.notify_all();
    }
};

}  // namespace

struct LoginConversations::Impl : std::enable_shared_from_this<LoginConversations::Impl> {
    Impl(hubd::http::EventLoop& l, hub::Authenticator& a, Limits lim, AbandonedCallback ab)
        : loop(l), auth(a), limits(lim), abandoned(std::move(ab)) {}

    hubd::http::EventLoop& loop;
    hub::Authenticator& auth;
    const Limits limits;
    AbandonedCallback abandoned;
    std::unordered_map<uint64_t, std::shared_ptr<Conversation>> all;
    std::unordered_map<std::string, uint64_t> steps;  // step id digest -> serial
    std::unordered_map<std::string, size_t> perSource;
    uint64_t nextSerial = 1;

    std::shared_ptr<Conversation> find(uint64_t serial) const {
        auto it = all.find(serial);
        return it == all.end() ? nullptr : it->second;
    }

    void stopWaiting(Conversation& c) {
        if (!c.stepDigest.empty()) steps.erase(c.stepDigest);
        c.stepDigest.clear();
        if (c.timer) loop.cancelTimer(c.timer);
        c.timer = 0;
    }

    // PAM asked something: give the browser the prompts and a new step id.
    void questions(uint64_t serial, std::vector<hub::LoginMessage> messages) {
        auto c = find(serial);
        if (!c) return;
        if (!c->callback) {  // nobody to show them to (cannot happen: one question per answer)
            c->abort();
            return;
        }
        std::string id = hub::randomHex(kStepIdBytes);
        c->stepDigest = sha256Hex(id);
        steps[c->stepDigest] = serial;
        std::weak_ptr<Impl> weak = weak_from_this();
        c->timer = loop.addTimer(limits.idleTimeout, [weak, serial] {
            if (auto self = weak.lock()) self->timeout(serial);
        });
        LoginStep step;
        step.username = c->username;
        step.source = c->source;
        step.id = std::move(id);
        step.messages = std::move(messages);
        auto callback = std::exchange(c->callback, nullptr);
        callback(std::move(step));
    }

    // Nobody answered in time: PAM's conversation call returns PAM_CONV_ERR.
    void timeout(uint64_t serial) {
        auto c = find(serial);
        if (!c) return;
        c->timer = 0;
        stopWaiting(*c);
        c->abort();
    }

    void finished(uint64_t serial, hub::AuthResult result) {
        auto c = find(serial);
        if (!c) return;
        all.erase(serial);
        stopWaiting(*c);
        if (auto it = perSource.find(c->sourceKey); it != perSource.end() && --it->second == 0)
            perSource.erase(it);
        if (c->callback) {
            LoginStep step;
            step.finished = true;
            step.username = c->username;
            step.source = c->source;
            step.messages = result.messages;
            step.result = std::move(result);
            auto callback = std::exchange(c->callback, nullptr);
            callback(std::move(step));
        } else if (abandoned) {
            abandoned(c->source, c->username, std::move(result));
        }
    }
};

namespace {

// The sign-in thread's side of the dialog: post the prompts to the loop,
// wait for the answers or the abort.
class ThreadDialog final : public hub::LoginDialog {
public:
    // `post` hands the prompts to the loop thread.
    using Post = std::function<void(std::vector<hub::LoginMessage>)>;
    ThreadDialog(std::shared_ptr<Conversation> c, Post post, std::chrono::milliseconds patience)
        : c_(std::move(c)), post_(std::move(post)), patience_(patience) {}

    std::optional<std::vector<std::string>> ask(const std::vector<hub::LoginMessage>& messages) override {
        {
            std::lock_guard lock(c_->mutex);
            if (c_->aborted) return std::nullopt;
            c_->answers.reset();
        }
        post_(messages);
        std::unique_lock lock(c_->mutex);
        // The loop's idle timer aborts first; this bound only keeps the
        // thread from waiting forever should that timer never run.
        c_->wake.wait_for(lock, patience_, [&] { return c_->answers.has_value() || c_->aborted; });
        if (c_->aborted || !c_->answers) return std::nullopt;
        return std::exchange(c_->answers, std::nullopt);
    }

private:
    std::shared_ptr<Conversation> c_;
    Post post_;
    std::chrono::milliseconds patience_;
};

}  // namespace

// The sign-ins' threads, kept for the next sign-in. Not a fixed pool: a PAM
// conversation may wait minutes for its user, so there are as many threads
// as sign-ins in flight at the busiest moment (at most Limits::maxInFlight),
// but an idle one takes the next sign-in instead of a new thread's stack
// being mapped and torn down on every login (that cost 90 % of a
// DummyAuthenticator login).
class LoginConversations::Threads {
public:
    ~Threads() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        for (auto& t : threads_) t.join();
    }
    // Throws std::system_error when no thread can be started.
    void run(std::function<void()> job) {
        std::unique_lock lock(mutex_);
        jobs_.push_back(std::move(job));
        if (idle_ >= jobs_.size()) {
            lock.unlock();
            wake_.notify_one();
            return;
        }
        try {
            threads_.emplace_back([this] { work(); });
        } catch (...) {
            jobs_.pop_back();
            throw;
        }
    }

private:
    void work() {
        std::unique_lock lock(mutex_);
        for (;;) {
            ++idle_;
            wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            --idle_;
            if (jobs_.empty()) return;  // stopping, and nothing left to finish
            auto job = std::move(jobs_.front());
            jobs_.pop_front();
            lock.unlock();
            job();  // catches everything itself
            lock.lock();
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> jobs_;
    std::vector<std::thread> threads_;
    size_t idle_ = 0;
    bool stopping_ = false;
};

LoginConversations::LoginConversations(hubd::http::EventLoop& loop, hub::Authenticator& authenticator,
                                       Limits limits, AbandonedCallback abandoned)
    : impl_(std::make_shared<Impl>(loop, authenticator, limits, std::move(abandoned))),
      threads_(std::make_unique<Threads>()) {}

LoginConversations::~LoginConversations() {
    for (auto& [serial, c] : impl_->all) {
        impl_->stopWaiting(*c);
        c->abort();
    }
    threads_.reset();  // every sign-in returns once aborted
}

LoginConversations::Start LoginConversations::start(const std::string& username, std::string password,
                                                    std::string_view sessionId, const std::string& source,
                                                    StepCallback done) {
    Impl& impl = *impl_;
    if (impl.all.size() >= impl.limits.maxInFlight) return Start::Full;
    std::string key = LoginThrottle::sourceKey(source);
    if (auto it = impl.perSource.find(key);
        it != impl.perSource.end() && it->second >= impl.limits.maxPerSource)
        return Start::SourceFull;

    auto c = std::make_shared<Conversation>(impl.nextSerial++);
    c->sessionDigest = sha256Hex(sessionId);
    c->sourceKey = key;
    c->source = source;
    c->username = username;
    c->callback = std::move(done);
    const std::chrono::milliseconds patience = impl.limits.idleTimeout + std::chrono::seconds(30);
    std::weak_ptr<Impl> weak = impl_;
    try {
        threads_->run([c, weak, &impl, username, password = std::move(password), patience]() mutable {
            auto post = [&loop = impl.loop, weak,
                         serial = c->serial](std::vector<hub::LoginMessage> messages) {
                loop.post([weak, serial, messages = std::move(messages)] {
                    if (auto self = weak.lock()) self->questions(serial, messages);
                });
            };
            ThreadDialog dialog(c, post, patience);
            hub::AuthResult result;
            try {
                result = impl.auth.authenticateInteractive(username, password, dialog);
            } catch (const std::exception& e) {
                result = hub::AuthResult{};
                result.failureReason = std::string("the authenticator failed: ") + e.what();
            }
            wipe(password);
            impl.loop.post([weak, serial = c->serial, result = std::move(result)]() mutable {
                if (auto self = weak.lock()) self->finished(serial, std::move(result));
            });
        });
    } catch (const std::system_error& e) {
        hub::logError("Cannot start a thread for a sign-in: {}", e.what());
        return Start::Full;
    }
    impl.all.emplace(c->serial, c);
    ++impl.perSource[key];
    return Start::Started;
}

bool LoginConversations::answer(std::string_view id, std::string_view sessionId,
                                std::vector<std::string> answers, StepCallback done) {
    Impl& impl = *impl_;
    if (id.size() != 2 * kStepIdBytes) return false;
    auto it = impl.steps.find(sha256Hex(id));
    if (it == impl.steps.end()) return false;
    auto c = impl.find(it->second);
    if (!c || !hub::constantTimeEquals(c->sessionDigest, sha256Hex(sessionId))) return false;
    impl.stopWaiting(*c);  // single use: the id is gone before the answers are
    c->callback = std::move(done);
    {
        std::lock_guard lock(c->mutex);
        c->answers = std::move(answers);
    }
    c->wake.notify_all();
    return true;
}

size_t LoginConversations::inFlight() const {
    return impl_->all.size();
}

size_t LoginConversations::waiting() const {
    return impl_->steps.size();
}

}  // namespace hubd
