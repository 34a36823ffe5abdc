// SPDX-License-Identifier: BSD-3-Clause
// Limits on OAuth sign-ins per source (GenericOAuthenticator).
//
// A sign-in costs the hub more than a page: /hub/oauth_login keeps a state
// for ten minutes, and each callback is a blocking call to the provider (up
// to the 10 s outbound deadline) on one of the few worker threads that also
// serve token checks and API calls. So, per source (the client's address as
// Hub::clientView sees it, behind trusted proxies too; keyed as
// LoginThrottle::sourceKey does: an IPv4 address or an IPv6 /64):
//  - starting sign-ins is rate limited by a token bucket (a burst, then a
//    steady rate): one client cannot churn states or discovery calls;
//  - calls to the provider in flight (discovery, code exchange) are capped
//    per source and in total, the total below the worker pool's size, so
//    password logins and API calls always find a free worker.
// Over a limit the client gets 429 and Retry-After at once; nothing queues.
// OpenSSH's PerSourcePenalties is the model, as for LoginThrottle.
//
// MUST: no bucket or count is shared between sources, so one address can
// never use up another's sign-ins (only the total cap is shared, and one
// source holds at most maxCallsPerSource of it); memory is bounded
// (maxSources buckets, the least recently used makes room; call counts exist
// only while calls run). Event-loop thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hubd {

class OAuthLimits {
public:
    using Clock = std::chrono::steady_clock;

    struct Policy {
        double startBurst = 30;        // sign-ins one source may start at once ...
        double startsPerSecond = 0.5;  // ... and then 30 a minute: a class behind one NAT still gets in
        size_t maxCallsPerSource = 2;  // provider calls in flight for one source
        // In total: below the worker pool's size (forWorkers; 6 for main.cpp's 8).
        size_t maxCalls = 6;
        std::chrono::seconds callRetryAfter{5};  // half the outbound deadline
        size_t maxSources = 16384;               // start buckets kept

        // The defaults for a pool of `workers` threads: provider calls leave two
        // free for API calls, token checks and password logins (on a pool of
        // three or fewer, they get one call in all).
        static Policy forWorkers(unsigned workers);
    };

    enum class Refusal { None, SourceRate, SourceCalls, AllCalls };
    struct Verdict {
        Refusal refusal = Refusal::None;
        std::chrono::seconds retryAfter{0};
        std::string why;  // for the log: names the source and the limit
        bool admitted() const { return refusal == Refusal::None; }
    };

    OAuthLimits() = default;
    explicit OAuthLimits(Policy policy) : policy_(policy) {}
    const Policy& policy() const { return policy_; }

    // /hub/oauth_login: takes one start from `source`'s bucket, or says how long to wait.
    Verdict admitStart(std::string_view source, Clock::time_point now);
    // A call to the provider for `source`. Admitted: call releaseCall(source) once it ends.
    Verdict acquireCall(std::string_view source);
    void releaseCall(std::string_view source);

    size_t trackedSources() const { return buckets_.size(); }
    size_t callsInFlight() const { return totalCalls_; }
    size_t callsInFlight(std::string_view source) const;

private:
    struct Bucket {
        double tokens = 0;
        Clock::time_point updated{};
        std::list<std::string>::iterator age;  // position in order_
    };

    Policy policy_;
    std::unordered_map<std::string, Bucket> buckets_;
    std::list<std::string> order_;  // least recently starting source first
    std::unordered_map<std::string, size_t> calls_;
    size_t totalCalls_ = 0;
};

}  // namespace hubd
