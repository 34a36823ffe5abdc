// SPDX-License-Identifier: BSD-3-Clause
// Sign-ins in progress (app/login_conversation.h) with a scripted
// authenticator: steps, single-use ids bound to the session, the idle
// timeout, the caps, and shutting down with sign-ins waiting.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>

#include "app/login_conversation.h"

using hub::LoginMessage;
using hubd::LoginConversations;
using hubd::LoginStep;
using hubd::http::EventLoop;
using namespace std::chrono_literals;

namespace {

// Password "pw", then `rounds` one-time codes "code0", "code1", ...
class ScriptedAuth final : public hub::Authenticator {
public:
    explicit ScriptedAuth(int rounds) : rounds_(rounds) {}
    std::string className() const override { return "test.Scripted"; }
    hub::AuthResult authenticate(const std::string& username, const std::string& password) override {
        hub::AuthResult r;
        r.username = username;
        r.ok = password == "pw" && rounds_ == 0;
        return r;
    }
    hub::AuthResult authenticateInteractive(const std::string& username, const std::string& password,
                                            hub::LoginDialog& dialog) override {
        hub::AuthResult r;
        r.username = username;
        if (password != "pw") {
            r.failureReason = "wrong password";
            r.messages.push_back({LoginMessage::Kind::Error, "nope"});
            return r;
        }
        for (int k = 0; k < rounds_; ++k) {
            auto answers = dialog.ask({{LoginMessage::Kind::Info, "step " + std::to_string(k)},
                                       {LoginMessage::Kind::SecretPrompt, "Code:"}});
            if (!answers) {
                ++aborted;
                r.failureReason = "conversation aborted";
                return r;
            }
            if (answers->size() != 1 || (*answers)[0] != "code" + std::to_string(k)) {
                r.failureReason = "wrong code";
                return r;
            }
        }
        r.ok = true;
        return r;
    }
    std::atomic<int> aborted{0};

private:
    int rounds_;
};

// Runs the loop until `done` holds or `limit` passes.
bool runUntil(EventLoop& loop, const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::function<void()> poll = [&] {
        if (done() || std::chrono::steady_clock::now() > deadline)
            loop.stop();
        else
            loop.addTimer(2ms, poll);
    };
    loop.post(poll);
    loop.run();
    return done();
}

struct Abandoned {
    int count = 0;
    std::string source, username, reason;
};

LoginConversations::AbandonedCallback record(Abandoned& a) {
    return [&a](const std::string& source, const std::string& username, hub::AuthResult result) {
        ++a.count;
        a.source = source;
        a.username = username;
        a.reason = result.failureReason;
    };
}

}  // namespace

TEST_CASE("a password-only sign-in finishes in one step") {
    EventLoop loop;
    ScriptedAuth auth(0);
    Abandoned abandoned;
    LoginConversations logins(loop, auth, {}, record(abandoned));
    std::optional<LoginStep> step;
    REQUIRE(logins.start("alice", "pw", "session-1", "192.0.2.1",
                         [&](LoginStep s) { step = std::move(s); }) == LoginConversations::Start::Started);
    CHECK(logins.inFlight() == 1);
    REQUIRE(runUntil(loop, [&] { return step.has_value(); }));
    CHECK(step->finished);
    CHECK(step->result.ok);
    CHECK(step->id.empty());
    CHECK(step->username == "alice");
    CHECK(logins.inFlight() == 0);

    step.reset();
    logins.start("alice", "bad", "session-1", "192.0.2.1", [&](LoginStep s) { step = std::move(s); });
    REQUIRE(runUntil(loop, [&] { return step.has_value(); }));
    CHECK(step->finished);
    CHECK_FALSE(step->result.ok);
    REQUIRE(step->messages.size() == 1);
    CHECK(step->messages[0].text == "nope");
}

TEST_CASE("further prompts: each step has a new single-use id, bound to the session") {
    EventLoop loop;
    ScriptedAuth auth(2);
    Abandoned abandoned;
    LoginConversations logins(loop, auth, {}, record(abandoned));
    std::optional<LoginStep> step;
    auto keep = [&](LoginStep s) { step = std::move(s); };
    logins.start("alice", "pw", "session-1", "192.0.2.1", keep);
    REQUIRE(runUntil(loop, [&] { return step.has_value(); }));
    REQUIRE_FALSE(step->finished);
    CHECK(step->id.size() == 64);
    CHECK(step->id.find_first_not_of("0123456789abcdef") == std::string::npos);
    REQUIRE(step->messages.size() == 2);
    CHECK(step->messages[0].text == "step 0");
    CHECK(step->messages[1].kind == LoginMessage::Kind::SecretPrompt);
    CHECK(logins.waiting() == 1);
    const std::string first = step->id;

    // Another browser session cannot answer, and does not use the step up.
    CHECK_FALSE(logins.answer(first, "session-2", {"code0"}, keep));
    CHECK_FALSE(logins.answer("not-an-id", "session-1", {"code0"}, keep));
    step.reset();
    REQUIRE(logins.answer(first, "session-1", {"code0"}, keep));
    CHECK(logins.waiting() == 0);
    CHECK_FALSE(logins.answer(first, "session-1", {"code0"}, keep));  // single use
    REQUIRE(runUntil(loop, [&] { return step.has_value(); }));
    REQUIRE_FALSE(step->finished);
    CHECK(step->id != first);
    CHECK(step->messages[0].text == "step 1");

    const std::string second = step->id;
    step.reset();
    REQUIRE(logins.answer(second, "session-1", {"code1"}, keep));
    REQUIRE(runUntil(loop, [&] { return step.has_value(); }));
    CHECK(step->finished);
    CHECK(step->result.ok);
    CHECK(logins.inFlight() == 0);
    CHECK(abandoned.count == 0);
}

TEST_CASE("an unanswered step is aborted after the idle timeout") {
    EventLoop loop;
    ScriptedAuth auth(1);
    Abandoned abandoned;
    LoginConversations::Limits limits;
    limits.idleTimeout = 50ms;
    LoginConversations logins(loop, auth, limits, record(abandoned));
    std::optional<LoginStep> step;
    logins.start("bob", "pw", "session-1", "192.0.2.9", [&](LoginStep s) { step = std::move(s); });
    REQUIRE(runUntil(loop, [&] { return step.has_value(); }));
    REQUIRE_FALSE(step->finished);
    const auto started = std::chrono::steady_clock::now();
    REQUIRE(runUntil(loop, [&] { return abandoned.count == 1; }));
    CHECK(std::chrono::steady_clock::now() - started >= 40ms);
    CHECK(auth.aborted == 1);  // PAM saw the conversation fail
    CHECK(abandoned.username == "bob");
    CHECK(abandoned.source == "192.0.2.9");
    CHECK(abandoned.reason == "conversation aborted");
    CHECK(logins.inFlight() == 0);
    CHECK(logins.waiting() == 0);
    CHECK_FALSE(logins.answer(step->id, "session-1", {"code0"}, [](LoginStep) {}));
}

TEST_CASE("sign-ins in flight are capped in total and per source") {
    EventLoop loop;
    ScriptedAuth auth(1);
    Abandoned abandoned;
    LoginConversations::Limits limits;
    limits.maxInFlight = 3;
    limits.maxPerSource = 1;
    int steps = 0;
    auto count = [&](LoginStep) { ++steps; };
    {
        LoginConversations logins(loop, auth, limits, record(abandoned));
        using S = LoginConversations::Start;
        CHECK(logins.start("a", "pw", "s1", "192.0.2.1", count) == S::Started);
        CHECK(logins.start("b", "pw", "s2", "192.0.2.1", count) == S::SourceFull);
        CHECK(logins.start("c", "pw", "s3", "2001:db8::1", count) == S::Started);
        CHECK(logins.start("d", "pw", "s4", "2001:db8::2", count) == S::SourceFull);  // one /64, one source
        CHECK(logins.start("e", "pw", "s5", "198.51.100.1", count) == S::Started);
        CHECK(logins.start("f", "pw", "s6", "198.51.100.2", count) == S::Full);
        REQUIRE(runUntil(loop, [&] { return steps == 3; }));
        CHECK(logins.waiting() == 3);
        // Leaving scope with all three waiting: they are aborted and joined, not leaked.
    }
    CHECK(auth.aborted == 3);
    CHECK(abandoned.count == 0);
}
