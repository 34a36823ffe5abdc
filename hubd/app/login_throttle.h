// SPDX-License-Identifier: BSD-3-Clause
// Login throttling per source address and per username, with bounded
// memory; OpenSSH's PerSourcePenalties is the model.
//
// Every failed login adds to a penalty score for its source (IPv4 address,
// or IPv6 /64: one host owns a whole /64) and for the username tried. Past
// a few free failures each further one blocks that key for a doubling
// time, capped; scores decay while no failure comes. A blocked client gets
// 429 and Retry-After and its password is not even checked (PAM is not
// run), so guessing costs the attacker time, not us CPU.
//
// A username's penalty is capped far lower than a source's: anyone can
// fail logins for "alice", so a long block would let anyone lock alice
// out. A successful login clears that username's score.
//
// MUST: memory is bounded (Policy::maxEntries per table): when a table is
// full, the entry with the oldest failure makes room.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hubd {

class LoginThrottle {
public:
    using Clock = std::chrono::steady_clock;

    struct Policy {
        int freeFailures = 5;  // failures before the first block
        // Then 10, 20, 40 … seconds: longer than the 2 s failure delay, or a
        // block would run out while its client is still waiting for the answer.
        std::chrono::seconds firstBlock{10};
        std::chrono::seconds maxSourceBlock{600};   // OpenSSH's default max penalty
        std::chrono::seconds maxUsernameBlock{30};  // low: see the header comment
        std::chrono::seconds forgetAfter{15 * 60};  // a quiet key starts afresh
        size_t maxEntries = 16384;                  // per table
    };

    LoginThrottle() = default;
    explicit LoginThrottle(Policy policy) : policy_(policy) {}

    // How long this attempt must wait; nullopt if it may proceed now.
    std::optional<std::chrono::seconds> blocked(std::string_view source, std::string_view username,
                                                Clock::time_point now);
    void failed(std::string_view source, std::string_view username, Clock::time_point now);
    void succeeded(std::string_view username);

    size_t sourceEntries() const { return sources_.size(); }
    size_t usernameEntries() const { return usernames_.size(); }

    // "192.0.2.7" stays; "2001:db8:1:2:3:4:5:6" becomes "2001:db8:1:2::/64".
    static std::string sourceKey(std::string_view address);

private:
    struct Entry {
        int failures = 0;
        Clock::time_point lastFailure{};
        Clock::time_point blockedUntil{};
        std::list<std::string>::iterator age;  // position in the table's order of last failure
    };
    struct Table {
        std::unordered_map<std::string, Entry> entries;
        std::list<std::string> order;  // least recently failing first
        size_t size() const { return entries.size(); }
    };

    std::optional<std::chrono::seconds> remaining(Table& table, const std::string& key,
                                                  Clock::time_point now);
    void record(Table& table, const std::string& key, std::chrono::seconds cap, Clock::time_point now);
    void erase(Table& table, std::unordered_map<std::string, Entry>::iterator it);
    void makeRoom(Table& table);

    Policy policy_;
    Table sources_;
    Table usernames_;
};

}  // namespace hubd
