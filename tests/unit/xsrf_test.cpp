// SPDX-License-Identifier: BSD-3-Clause
// XSRF tokens: bound to session and user, aged, tamper-evident.
#include "app/xsrf.h"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>

using hubd::makeXsrfToken;
using hubd::xsrfTokenValid;

namespace {
const std::string kSecret(32, '\x5a');
constexpr int64_t kNow = 1'800'000'000;
constexpr int64_t kDay = 86400;
}  // namespace

TEST_CASE("a token is valid for its own session and user") {
    std::string t = makeXsrfToken(kSecret, "session-a", "7", kNow);
    CHECK(xsrfTokenValid(kSecret, "session-a", "7", t, kNow, kDay));
    CHECK(xsrfTokenValid(kSecret, "session-a", "7", t, kNow + kDay, kDay));
}

TEST_CASE("a token does not fit another session, user, or secret") {
    std::string t = makeXsrfToken(kSecret, "session-a", "7", kNow);
    CHECK_FALSE(xsrfTokenValid(kSecret, "session-b", "7", t, kNow, kDay));
    CHECK_FALSE(xsrfTokenValid(kSecret, "session-a", "8", t, kNow, kDay));
    CHECK_FALSE(xsrfTokenValid(kSecret, "session-a", "", t, kNow, kDay));  // anonymous form
    CHECK_FALSE(xsrfTokenValid(std::string(32, 'x'), "session-a", "7", t, kNow, kDay));
    // The separator keeps (session, user) pairs apart: "a\n" + "7" is not "a" + "\n7".
    CHECK_FALSE(xsrfTokenValid(kSecret, "session-a\n7", "", t, kNow, kDay));
}

TEST_CASE("old, future and tampered tokens are refused") {
    std::string t = makeXsrfToken(kSecret, "s", "1", kNow);
    CHECK_FALSE(xsrfTokenValid(kSecret, "s", "1", t, kNow + kDay + 1, kDay));
    CHECK_FALSE(xsrfTokenValid(kSecret, "s", "1", makeXsrfToken(kSecret, "s", "1", kNow + 3600), kNow, kDay));
    CHECK(xsrfTokenValid(kSecret, "s", "1", makeXsrfToken(kSecret, "s", "1", kNow + 30), kNow, kDay));

    // A later issue time with the old signature: the time is signed too.
    std::string moved = std::to_string(kNow + 1) + t.substr(t.find('-'));
    CHECK_FALSE(xsrfTokenValid(kSecret, "s", "1", moved, kNow + 1, kDay));
    std::string flipped = t;
    flipped.back() = flipped.back() == '0' ? '1' : '0';
    CHECK_FALSE(xsrfTokenValid(kSecret, "s", "1", flipped, kNow, kDay));
    for (const std::string& bad : std::initializer_list<std::string>{
             "", "-", "123", "-abc", "12a-abc", "+1800000000" + t.substr(t.find('-')), t + "0",
             t.substr(0, t.size() - 1), std::string(200, '1')})
        CHECK_FALSE(xsrfTokenValid(kSecret, "s", "1", bad, kNow, kDay));
}
