// SPDX-License-Identifier: BSD-3-Clause
#include "app/oauth_limits.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "app/login_throttle.h"

namespace hubd {

OAuthLimits::Policy OAuthLimits::Policy::forWorkers(unsigned workers) {
    Policy p;
    p.maxCalls = workers > 3 ? workers - 2 : 1;
    p.maxCallsPerSource = std::min(p.maxCallsPerSource, p.maxCalls);
    return p;
}

OAuthLimits::Verdict OAuthLimits::admitStart(std::string_view source, Clock::time_point now) {
    const std::string key = LoginThrottle::sourceKey(source);
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
        // Full: the source that started longest ago goes; it is the one
        // whose bucket has refilled the most, so forgetting it costs little.
        while (!order_.empty() && buckets_.size() >= policy_.maxSources) {
            buckets_.erase(order_.front());
            order_.pop_front();
        }
        order_.push_back(key);
        it = buckets_.emplace(key, Bucket{policy_.startBurst, now, std::prev(order_.end())}).first;
    } else {
        order_.splice(order_.end(), order_, it->second.age);
    }
    Bucket& b = it->second;
    const double elapsed = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min(policy_.startBurst, b.tokens + std::max(0.0, elapsed) * policy_.startsPerSecond);
    b.updated = now;
    if (b.tokens >= 1) {
        b.tokens -= 1;
        return {};
    }
    Verdict v;
    v.refusal = Refusal::SourceRate;
    v.retryAfter = std::chrono::seconds(
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1 - b.tokens) / policy_.startsPerSecond))));
    v.why = fmt::format("{} started more than {:g} sign-ins at once or {:g} a minute", key,
                        policy_.startBurst, policy_.startsPerSecond * 60);
    return v;
}

OAuthLimits::Verdict OAuthLimits::acquireCall(std::string_view source) {
    const std::string key = LoginThrottle::sourceKey(source);
    size_t& mine = calls_[key];
    Verdict v;
    if (mine >= policy_.maxCallsPerSource) {
        v.refusal = Refusal::SourceCalls;
        v.why = fmt::format("{} already has {} calls to the provider in flight (the limit per source)", key,
                            mine);
    } else if (totalCalls_ >= policy_.maxCalls) {
        v.refusal = Refusal::AllCalls;
        v.why =
            fmt::format("{} calls to the provider are in flight (the limit for all sources)", totalCalls_);
    }
    if (!v.admitted()) {
        if (mine == 0) calls_.erase(key);
        v.retryAfter = policy_.callRetryAfter;
        return v;
    }
    ++mine;
    ++totalCalls_;
    return v;
}

void OAuthLimits::releaseCall(std::string_view source) {
    auto it = calls_.find(LoginThrottle::sourceKey(source));
    if (it == calls_.end()) return;
    if (--it->second == 0) calls_.erase(it);
    if (totalCalls_ > 0) --totalCalls_;
}

size_t OAuthLimits::callsInFlight(std::string_view source) const {
    auto it = calls_.find(LoginThrottle::sourceKey(source));
    return it == calls_.end() ? 0 : it->second;
}

}  // namespace hubd
