// SPDX-License-Identifier: BSD-3-Clause
// Sign-ins in progress: the whole PAM conversation relayed to the login page.
//
// A PAM transaction cannot be paused and resumed elsewhere: pam_authenticate
// calls the conversation function on its own thread and waits for the
// answers. So each sign-in runs on a thread of its own (not the shared
// WorkerPool: a user typing a one-time code would hold a worker for up to
// the idle timeout, and a few abandoned forms would starve token checks and
// other sign-ins). When PAM asks more than the form's password, the thread
// waits for the browser; the page gets the prompts and a fresh random step
// id, and the next POST hands the answers back through that id.
//
// MUST: step ids are unguessable, single-use (each step gets a new one) and
// kept only as hashes, never logged; a step is accepted only from the
// browser session that started the sign-in; an unanswered step is aborted
// after the idle timeout (PAM fails with PAM_CONV_ERR, pam_end runs, the
// thread ends); the number of sign-ins in flight is bounded, in total and
// per source address, so threads stay bounded too.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/event_loop.h"
#include "hubcore/auth.h"

namespace hubd {

// What one step of a sign-in produced, delivered on the loop thread.
struct LoginStep {
    bool finished = false;
    std::string username;  // as the sign-in started (normalised)
    std::string source;    // the client's address when it started
    // finished: the outcome (result.messages: what PAM said since the last prompt).
    hub::AuthResult result;
    // !finished: messages and prompts to show, and the id the answers must carry.
    std::vector<hub::LoginMessage> messages;
    std::string id;
};

class LoginConversations {
public:
    struct Limits {
        size_t maxInFlight = 256;  // sign-ins running or waiting, in total
        size_t maxPerSource = 32;  // ... from one source (LoginThrottle::sourceKey)
        std::chrono::milliseconds idleTimeout{std::chrono::seconds(120)};
    };
    using StepCallback = std::function<void(LoginStep)>;
    // A sign-in whose prompts were never answered, after PAM gave up: for
    // the log, the audit line and throttling. Runs on the loop thread.
    using AbandonedCallback =
        std::function<void(const std::string& source, const std::string& username, hub::AuthResult result)>;

    LoginConversations(hubd::http::EventLoop& loop, hub::Authenticator& authenticator, Limits limits,
                       AbandonedCallback abandoned);
    ~LoginConversations();  // aborts every sign-in and joins its thread
    LoginConversations(const LoginConversations&) = delete;
    LoginConversations& operator=(const LoginConversations&) = delete;

    enum class Start { Started, Full, SourceFull };
    // Runs authenticateInteractive on a new thread; `done` gets the first
    // step (Started only). `sessionId` is the browser's jupyterhub-session-id.
    Start start(const std::string& username, std::string password, std::string_view sessionId,
                const std::string& source, StepCallback done);

    // Hands the answers of step `id` to its sign-in; `done` gets the next
    // step. False (and `done` dropped) if no step waits under that id for
    // this session: expired, answered already, or never issued.
    bool answer(std::string_view id, std::string_view sessionId, std::vector<std::string> answers,
                StepCallback done);

    size_t inFlight() const;
    size_t waiting() const;  // sign-ins waiting for the browser

private:
    struct Impl;
    class Threads;
    std::shared_ptr<Impl> impl_;
    std::unique_ptr<Threads> threads_;  // after impl_: joined before it goes
};

}  // namespace hubd
