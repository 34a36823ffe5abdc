// SPDX-License-Identifier: BSD-3-Clause
#include "app/login_throttle.h"

#include <arpa/inet.h>

#include <algorithm>

namespace hubd {

namespace {

// Usernames are bounded before they become keys: a 10 kB name is one key
// of 256 bytes, not 10 kB of memory.
constexpr size_t kMaxKeyBytes = 256;

std::string boundedKey(std::string_view s) {
    return std::string(s.substr(0, kMaxKeyBytes));
}

}  // namespace

std::string LoginThrottle::sourceKey(std::string_view address) {
    std::string text(address.substr(0, 64));
    in6_addr v6{};
    if (::inet_pton(AF_INET6, text.c_str(), &v6) != 1) return text;  // IPv4 (or unknown): as is
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
        char v4[INET_ADDRSTRLEN] = "";
        ::inet_ntop(AF_INET, &v6.s6_addr[12], v4, sizeof v4);
        return v4;
    }
    std::fill(std::begin(v6.s6_addr) + 8, std::end(v6.s6_addr), 0);
    char out[INET6_ADDRSTRLEN] = "";
    ::inet_ntop(AF_INET6, &v6, out, sizeof out);
    return std::string(out) + "/64";
}

std::optional<std::chrono::seconds> LoginThrottle::blocked(std::string_view source, std::string_view username,
                                                           Clock::time_point now) {
    auto bySource = remaining(sources_, sourceKey(source), now);
    auto byName = remaining(usernames_, boundedKey(username), now);
    if (!bySource) return byName;
    if (!byName) return bySource;
    return std::max(*bySource, *byName);
}

void LoginThrottle::failed(std::string_view source, std::string_view username, Clock::time_point now) {
    record(sources_, sourceKey(source), policy_.maxSourceBlock, now);
    // No name (an OAuth sign-in refused before the provider named anyone):
    // one "" bucket would let anyone's failures block everyone's attempts.
    if (!username.empty()) record(usernames_, boundedKey(username), policy_.maxUsernameBlock, now);
}

void LoginThrottle::succeeded(std::string_view username) {
    auto it = usernames_.entries.find(boundedKey(username));
    if (it != usernames_.entries.end()) erase(usernames_, it);
}

std::optional<std::chrono::seconds> LoginThrottle::remaining(Table& table, const std::string& key,
                                                             Clock::time_point now) {
    auto it = table.entries.find(key);
    if (it == table.entries.end()) return std::nullopt;
    if (now - it->second.lastFailure > policy_.forgetAfter && now >= it->second.blockedUntil) {
        erase(table, it);
        return std::nullopt;
    }
    if (now >= it->second.blockedUntil) return std::nullopt;
    // Round up: "retry in 0 s" would invite an immediate, refused retry.
    return std::chrono::ceil<std::chrono::seconds>(it->second.blockedUntil - now);
}

void LoginThrottle::record(Table& table, const std::string& key, std::chrono::seconds cap,
                           Clock::time_point now) {
    auto it = table.entries.find(key);
    if (it != table.entries.end() && now - it->second.lastFailure > policy_.forgetAfter &&
        now >= it->second.blockedUntil) {
        erase(table, it);
        it = table.entries.end();
    }
    if (it == table.entries.end()) {
        makeRoom(table);
        table.order.push_back(key);
        it = table.entries.emplace(key, Entry{}).first;
        it->second.age = std::prev(table.order.end());
    } else {
        table.order.splice(table.order.end(), table.order, it->second.age);
    }
    Entry& e = it->second;
    e.failures = std::min(e.failures + 1, 1000);
    e.lastFailure = now;
    int over = e.failures - policy_.freeFailures;
    if (over <= 0) return;
    // firstBlock * 2^(over-1), capped; the shift is bounded so it cannot overflow.
    auto block = policy_.firstBlock * (int64_t{1} << std::min(over - 1, 20));
    e.blockedUntil = now + std::min<std::chrono::seconds>(block, cap);
}

void LoginThrottle::erase(Table& table, std::unordered_map<std::string, Entry>::iterator it) {
    table.order.erase(it->second.age);
    table.entries.erase(it);
}

void LoginThrottle::makeRoom(Table& table) {
    // `order` runs from the oldest failure: that one is the closest to
    // being forgotten anyway. (Someone with many addresses can push real
    // penalties out this way; OpenSSH's "permissive" overflow does the same
    // rather than refuse everyone.)
    while (!table.order.empty() && table.size() >= policy_.maxEntries)
        erase(table, table.entries.find(table.order.front()));
}

}  // namespace hubd
