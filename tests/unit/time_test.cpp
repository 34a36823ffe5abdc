// SPDX-License-Identifier: BSD-3-Clause
// Tests for hubcore/time.h against values printed by Python's datetime (the JupyterHub oracle).

#include <doctest/doctest.h>

#include <cstdlib>
#include <thread>
#include <vector>

#include "hubcore/time.h"

using namespace hub;

namespace {
Timestamp fromMicros(int64_t us) {
    return Timestamp{std::chrono::microseconds{us}};
}
}  // namespace

TEST_CASE("isoUtc and sqlUtc match Python's isoformat()+'Z' and str()") {
    // Expected strings and epoch microseconds come from python3's datetime.
    const auto t = fromMicros(1795397336161547);
    CHECK(isoUtc(t) == "2026-11-23T01:28:56.161547Z");
    CHECK(sqlUtc(t) == "2026-11-23 01:28:56.161547");

    const auto whole = fromMicros(1795397336000000);
    CHECK(isoUtc(whole) == "2026-11-23T01:28:56Z");        // microseconds omitted when zero
    CHECK(sqlUtc(whole) == "2026-11-23 01:28:56.000000");  // fixed width, as SQLAlchemy stores

    CHECK(isoUtc(fromMicros(951868799000001)) == "2000-02-29T23:59:59.000001Z");
    CHECK(isoUtc(fromMicros(-500000)) == "1969-12-31T23:59:59.500000Z");
    CHECK(isoUtc(fromMicros(0)) == "1970-01-01T00:00:00Z");
}

TEST_CASE("parseUtc accepts both forms and offsets") {
    CHECK(parseUtc("2026-11-23T01:28:56.161547Z") == fromMicros(1795397336161547));
    CHECK(parseUtc("2026-11-23 01:28:56.161547") == fromMicros(1795397336161547));
    CHECK(parseUtc("2026-11-23T01:28:56.161547+00:00") == fromMicros(1795397336161547));
    CHECK(parseUtc("2026-11-23T01:28:56Z") == fromMicros(1795397336000000));
    CHECK(parseUtc("2026-11-23T01:28:56") == fromMicros(1795397336000000));
    CHECK(parseUtc("2026-11-23T01:28:56.161Z") == fromMicros(1795397336161000));
    CHECK(parseUtc("2026-11-23T01:28:56.161547999Z") == fromMicros(1795397336161547));
    CHECK(parseUtc("2026-11-23T03:28:56+02:00") == fromMicros(1795397336000000));
    CHECK(parseUtc("2026-11-22T23:58:56-01:30") == fromMicros(1795397336000000));
    CHECK(parseUtc("1969-12-31T23:59:59.5Z") == fromMicros(-500000));
    CHECK(parseUtc("2000-02-29 23:59:59.000001") == fromMicros(951868799000001));
}

TEST_CASE("parseUtc rejects malformed input") {
    for (const char* bad : {"",
                            "2026",
                            "2026-11-23",
                            "2026-11-23T01:28",
                            "2026-11-23X01:28:56",
                            "2026-13-01T00:00:00Z",
                            "2026-02-29T00:00:00Z",
                            "2026-11-31T00:00:00Z",
                            "2026-11-23T24:00:00Z",
                            "2026-11-23T01:60:00Z",
                            "2026-11-23T01:28:60Z",
                            "2026-11-23T01:28:56.Z",
                            "2026-11-23T01:28:56.1234567890Z",
                            "2026-11-23T01:28:56ZZ",
                            "2026-11-23T01:28:56+0000",
                            "2026-11-23T01:28:56 ",
                            " 2026-11-23T01:28:56",
                            "2026-1-23T01:28:56Z",
                            "+026-11-23T01:28:56Z",
                            "2026-11-23T01:28:56z"}) {
        CAPTURE(bad);
        CHECK_FALSE(parseUtc(bad).has_value());
    }
}

TEST_CASE("round trips and unixSeconds") {
    const Timestamp n = now();
    CHECK(parseUtc(isoUtc(n)) == n);
    CHECK(parseUtc(sqlUtc(n)) == n);
    CHECK(unixSeconds(fromMicros(1795397336161547)) == 1795397336);
    CHECK(unixSeconds(fromMicros(-500000)) == -1);  // floor, not truncation
    CHECK(unixSeconds(fromMicros(0)) == 0);
    const auto wall =
        std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
    CHECK(std::abs(unixSeconds(now()) - wall) <= 1);
}

TEST_CASE("formatting is thread-safe") {
    std::vector<std::thread> threads;
    std::vector<int> ok(8, 0);
    for (int i = 0; i < 8; ++i) {
        threads.emplace_back([i, &ok] {
            int good = 0;
            for (int k = 0; k < 2000; ++k) {
                const auto t = fromMicros(1795397336161547 + int64_t(i) * 86400000000LL);
                if (parseUtc(isoUtc(t)) == t) ++good;
            }
            ok[size_t(i)] = good;
        });
    }
    for (auto& th : threads) th.join();
    for (int g : ok) CHECK(g == 2000);
}
