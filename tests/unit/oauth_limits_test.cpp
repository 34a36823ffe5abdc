// SPDX-License-Identifier: BSD-3-Clause
// OAuthLimits: the start bucket per source (burst, refill, Retry-After),
// provider calls in flight per source and in total, independence of
// sources, IPv6 /64 keys and bounded memory (a fake clock: no sleeping);
// the pending-state table bounded per source.
#include <doctest/doctest.h>

#include <string>

#include "app/oauth_limits.h"
#include "app/oidc.h"

using hubd::OAuthLimits;
using namespace std::chrono_literals;

namespace {

OAuthLimits::Clock::time_point t0{std::chrono::hours(1000)};

OAuthLimits::Policy small() {
    OAuthLimits::Policy p;
    p.startBurst = 3;
    p.startsPerSecond = 0.5;
    p.maxCallsPerSource = 2;
    p.maxCalls = 3;
    p.maxSources = 4;
    return p;
}

}  // namespace

TEST_CASE("starts: a burst, then the steady rate, with Retry-After") {
    OAuthLimits limits(small());
    for (int i = 0; i < 3; ++i) CHECK(limits.admitStart("192.0.2.7", t0).admitted());
    auto v = limits.admitStart("192.0.2.7", t0);
    CHECK(v.refusal == OAuthLimits::Refusal::SourceRate);
    CHECK(v.retryAfter == 2s);
    CHECK(v.why.find("192.0.2.7") != std::string::npos);
    CHECK(v.why.find("3 sign-ins at once or 30 a minute") != std::string::npos);
    CHECK_FALSE(limits.admitStart("192.0.2.7", t0 + 1s).admitted());  // half a token
    CHECK(limits.admitStart("192.0.2.7", t0 + 2s).admitted());
    CHECK_FALSE(limits.admitStart("192.0.2.7", t0 + 2s).admitted());
    // A quiet source gets its whole burst back, not more.
    for (int i = 0; i < 3; ++i) CHECK(limits.admitStart("192.0.2.7", t0 + 1h).admitted());
    CHECK_FALSE(limits.admitStart("192.0.2.7", t0 + 1h).admitted());
}

TEST_CASE("starts: one source's empty bucket never refuses another source") {
    OAuthLimits limits(small());
    for (int i = 0; i < 50; ++i) limits.admitStart("192.0.2.66", t0);
    CHECK(limits.admitStart("192.0.2.7", t0).admitted());
    CHECK(limits.admitStart("", t0).admitted());  // no shared "" bucket either
    CHECK_FALSE(limits.admitStart("192.0.2.66", t0).admitted());
}

TEST_CASE("starts: an IPv6 /64 is one source") {
    OAuthLimits limits(small());
    for (int i = 0; i < 3; ++i)
        CHECK(limits.admitStart("2001:db8:1:2::" + std::to_string(i + 1), t0).admitted());
    CHECK_FALSE(limits.admitStart("2001:db8:1:2:ffff::9", t0).admitted());
    CHECK(limits.admitStart("2001:db8:1:3::1", t0).admitted());
}

TEST_CASE("starts: memory is bounded, the least recently starting source goes") {
    OAuthLimits limits(small());
    for (int i = 0; i < 3; ++i) limits.admitStart("192.0.2.1", t0);  // empty
    for (int i = 2; i <= 4; ++i) limits.admitStart("192.0.2." + std::to_string(i), t0);
    CHECK(limits.trackedSources() == 4);
    CHECK_FALSE(limits.admitStart("192.0.2.1", t0).admitted());  // touched: now the most recent
    for (int i = 5; i <= 100; ++i) limits.admitStart("198.51.100." + std::to_string(i), t0);
    CHECK(limits.trackedSources() == 4);
    CHECK(limits.admitStart("192.0.2.1", t0).admitted());  // forgotten: a fresh burst
}

TEST_CASE("calls: capped per source and in total; released slots come back") {
    OAuthLimits limits(small());
    CHECK(limits.acquireCall("192.0.2.66").admitted());
    CHECK(limits.acquireCall("192.0.2.66").admitted());
    auto v = limits.acquireCall("192.0.2.66");
    CHECK(v.refusal == OAuthLimits::Refusal::SourceCalls);
    CHECK(v.retryAfter == 5s);
    CHECK(v.why.find("192.0.2.66 already has 2 calls") != std::string::npos);
    // Another source still gets in: the attacker holds 2 of the 3.
    CHECK(limits.acquireCall("192.0.2.7").admitted());
    CHECK(limits.callsInFlight() == 3);
    v = limits.acquireCall("192.0.2.8");
    CHECK(v.refusal == OAuthLimits::Refusal::AllCalls);
    CHECK(v.why.find("3 calls to the provider are in flight") != std::string::npos);
    CHECK(limits.callsInFlight("192.0.2.8") == 0);
    limits.releaseCall("192.0.2.66");
    CHECK(limits.acquireCall("192.0.2.8").admitted());
    limits.releaseCall("192.0.2.66");
    limits.releaseCall("192.0.2.7");
    limits.releaseCall("192.0.2.8");
    limits.releaseCall("192.0.2.8");  // one too many: harmless
    CHECK(limits.callsInFlight() == 0);
    CHECK(limits.callsInFlight("192.0.2.66") == 0);
}

TEST_CASE("calls: the defaults leave workers free and give one source less than the total") {
    OAuthLimits::Policy p;
    CHECK(p.maxCalls < 8);  // main.cpp's worker pool
    CHECK(p.maxCallsPerSource < p.maxCalls);
}

TEST_CASE("calls: the total follows the worker pool, two workers always free") {
    CHECK(OAuthLimits::Policy::forWorkers(8).maxCalls == 6);
    CHECK(OAuthLimits::Policy::forWorkers(8).maxCallsPerSource == 2);
    CHECK(OAuthLimits::Policy::forWorkers(16).maxCalls == 14);
    CHECK(OAuthLimits::Policy::forWorkers(4).maxCalls == 2);
    // Tiny pools: one call in all, and never more for one source than in all.
    for (unsigned w : {0u, 1u, 2u, 3u}) {
        CHECK(OAuthLimits::Policy::forWorkers(w).maxCalls == 1);
        CHECK(OAuthLimits::Policy::forWorkers(w).maxCallsPerSource == 1);
    }
}

TEST_CASE("pending states: a source's oldest make room for its next; other sources keep theirs") {
    hubd::OAuthPending pending;
    hubd::OAuthPending::Entry victim, attacker;
    victim.source = "192.0.2.7";
    attacker.source = "192.0.2.66";
    const std::string first = pending.add(attacker);
    const std::string theirs = pending.add(victim);
    std::string last;
    for (size_t i = 0; i < hubd::OAuthPending::kMaxEntries + 10; ++i) last = pending.add(attacker);
    REQUIRE_FALSE(last.empty());  // never "table full" for one source
    CHECK(pending.take(theirs));
    CHECK_FALSE(pending.take(first));
    CHECK(pending.take(last));
    CHECK_FALSE(pending.take(last));
}
