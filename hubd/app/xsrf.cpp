// SPDX-License-Identifier: BSD-3-Clause
#include "app/xsrf.h"

#include <openssl/crypto.h>

#include <charconv>

#include "hubcore/cookie.h"

namespace hubd {

namespace {

// Token = "<issued unix seconds>-<hex HMAC-SHA256>". The key is derived, so
// an XSRF token can never be replayed as a cookie signature or vice versa.
std::string signature(std::string_view secret, std::string_view sessionId, std::string_view userKey,
                      std::string_view issued) {
    std::string key = hub::hmacSha256(secret, "hubd xsrf token v1");
    std::string message;
    message.reserve(sessionId.size() + userKey.size() + issued.size() + 2);
    // Lengths are fixed by the separators: neither part may contain '\n'
    // (session ids are tokens, user keys decimal ids).
    message.append(sessionId).append(1, '\n').append(userKey).append(1, '\n').append(issued);
    return hub::hexEncode(hub::hmacSha256(key, message));
}

}  // namespace

std::string makeXsrfToken(std::string_view secret, std::string_view sessionId, std::string_view userKey,
                          int64_t nowUnix) {
    std::string issued = std::to_string(nowUnix);
    return issued + "-" + signature(secret, sessionId, userKey, issued);
}

bool xsrfTokenValid(std::string_view secret, std::string_view sessionId, std::string_view userKey,
                    std::string_view token, int64_t nowUnix, int64_t maxAgeSeconds) {
    if (token.size() > 128) return false;
    if (sessionId.find('\n') != std::string_view::npos || userKey.find('\n') != std::string_view::npos)
        return false;
    auto dash = token.find('-');
    if (dash == std::string_view::npos || dash == 0 || dash > 20) return false;
    std::string_view issued = token.substr(0, dash);
    int64_t when = 0;
    auto [end, ec] = std::from_chars(issued.data(), issued.data() + issued.size(), when);
    if (ec != std::errc{} || end != issued.data() + issued.size()) return false;
    if (when > nowUnix + 60 || nowUnix - when > maxAgeSeconds) return false;
    std::string expected = signature(secret, sessionId, userKey, issued);
    std::string_view given = token.substr(dash + 1);
    return given.size() == expected.size() && CRYPTO_memcmp(given.data(), expected.data(), given.size()) == 0;
}

}  // namespace hubd
