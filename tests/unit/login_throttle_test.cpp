// SPDX-License-Identifier: BSD-3-Clause
// LoginThrottle: free failures, doubling blocks with caps, forgetting,
// success, IPv6 /64 keys and bounded memory. A fake clock: no sleeping.
#include <doctest/doctest.h>

#include <string>

#include "app/login_throttle.h"

using hubd::LoginThrottle;
using namespace std::chrono_literals;

namespace {

LoginThrottle::Clock::time_point t0{std::chrono::hours(1000)};

}  // namespace

TEST_CASE("free failures, then blocks that double up to the source cap") {
    LoginThrottle throttle;
    auto now = t0;
    for (int i = 0; i < 5; ++i) {
        CHECK_FALSE(throttle.blocked("192.0.2.7", "alice", now));
        throttle.failed("192.0.2.7", "user" + std::to_string(i), now);
    }
    // Five different names: only the source has five failures.
    CHECK_FALSE(throttle.blocked("192.0.2.7", "bob", now));
    throttle.failed("192.0.2.7", "bob", now);
    CHECK(throttle.blocked("192.0.2.7", "bob", now) == 10s);
    CHECK(throttle.blocked("192.0.2.7", "carol", now + 8500ms) == 2s);  // rounded up
    CHECK_FALSE(throttle.blocked("192.0.2.7", "carol", now + 10s));
    CHECK_FALSE(throttle.blocked("198.51.100.1", "carol", now));  // other sources are not affected
    // Each further failure doubles the block: 20, 40, … until the cap.
    std::chrono::seconds last{};
    for (int i = 0; i < 12; ++i) {
        now += last;  // the client waited as told
        throttle.failed("192.0.2.7", "x" + std::to_string(i), now);
        last = *throttle.blocked("192.0.2.7", "y", now);
        if (i == 0) CHECK(last == 20s);
        if (i == 1) CHECK(last == 40s);
    }
    CHECK(last == 600s);
}

TEST_CASE("a username is blocked from every source, but only briefly") {
    LoginThrottle throttle;
    auto now = t0;
    for (int i = 0; i < 20; ++i) throttle.failed("203.0.113." + std::to_string(i), "alice", now);
    auto wait = throttle.blocked("198.51.100.9", "alice", now);
    REQUIRE(wait);
    CHECK(*wait == 30s);  // capped at maxUsernameBlock, not 600 s
    CHECK_FALSE(throttle.blocked("198.51.100.9", "bob", now));
    throttle.succeeded("alice");
    CHECK_FALSE(throttle.blocked("198.51.100.9", "alice", now));
}

TEST_CASE("a quiet source is forgotten") {
    LoginThrottle throttle;
    auto now = t0;
    for (int i = 0; i < 8; ++i) throttle.failed("192.0.2.7", "n" + std::to_string(i), now);
    CHECK(throttle.blocked("192.0.2.7", "z", now));
    now += 16min;
    CHECK_FALSE(throttle.blocked("192.0.2.7", "z", now));
    CHECK(throttle.sourceEntries() == 0);
    throttle.failed("192.0.2.7", "z", now);  // starts from one again: free
    CHECK_FALSE(throttle.blocked("192.0.2.7", "z2", now));
}

TEST_CASE("IPv6 sources are keyed by /64; v4-mapped addresses as IPv4") {
    CHECK(LoginThrottle::sourceKey("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64");
    CHECK(LoginThrottle::sourceKey("2001:db8:1:2::ffff") == "2001:db8:1:2::/64");
    CHECK(LoginThrottle::sourceKey("::ffff:192.0.2.7") == "192.0.2.7");
    CHECK(LoginThrottle::sourceKey("192.0.2.7") == "192.0.2.7");
    LoginThrottle throttle;
    for (int i = 1; i <= 6; ++i)
        throttle.failed("2001:db8:1:2::" + std::to_string(i), "u" + std::to_string(i), t0);
    CHECK(throttle.blocked("2001:db8:1:2:ffff::1", "v", t0));   // same /64
    CHECK_FALSE(throttle.blocked("2001:db8:1:3::1", "v", t0));  // next /64
}

TEST_CASE("memory stays bounded under a flood of sources and names") {
    LoginThrottle::Policy policy;
    policy.maxEntries = 100;
    LoginThrottle throttle(policy);
    for (int i = 0; i < 10000; ++i)
        throttle.failed("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256),
                        std::to_string(i) + std::string(10000, 'a'), t0);
    CHECK(throttle.sourceEntries() == 100);
    CHECK(throttle.usernameEntries() == 100);
    // The most recent ones are kept.
    for (int i = 0; i < 5; ++i) throttle.failed("10.0.39.15", "again", t0);
    CHECK(throttle.blocked("10.0.39.15", "other", t0));
}

TEST_CASE("failures without a username (OAuth) count for the source only, never a shared \"\" key") {
    LoginThrottle throttle;
    for (int i = 0; i < 20; ++i) throttle.failed("192.0.2." + std::to_string(i), "", t0);
    CHECK(throttle.usernameEntries() == 0);
    CHECK_FALSE(throttle.blocked("198.51.100.1", "", t0));
    CHECK(throttle.sourceEntries() == 20);
}
