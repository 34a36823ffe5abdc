// SPDX-License-Identifier: BSD-3-Clause
// XSRF tokens in the JupyterHub 4.x model: an `_xsrf` form field, an
// X-XSRFToken header, or an `_xsrf` query parameter (EventSource cannot set
// headers). A token is an HMAC over the browser's session id and the user,
// so one taken from another browser or account is worthless here.
//
// MUST: tokens are compared in constant time; the session id of an anonymous
// visitor is never empty (else one token would fit every cookieless browser);
// Sec-Fetch-*, Origin and Referer are never taken as proof instead
// (CVE-2026-40864).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hubd {

inline constexpr std::string_view kXsrfField = "_xsrf";
inline constexpr std::string_view kXsrfHeader = "X-XSRFToken";
inline constexpr std::string_view kXsrfCookie = "_xsrf";

// `userKey` names the signed-in user ("" while anonymous); `secret` is the
// hub's cookie secret (a purpose-specific key is derived from it).
std::string makeXsrfToken(std::string_view secret, std::string_view sessionId, std::string_view userKey,
                          int64_t nowUnix);

// Valid if made by makeXsrfToken for the same session and user, not issued
// in the future (one minute of clock skew aside) and at most maxAgeSeconds old.
bool xsrfTokenValid(std::string_view secret, std::string_view sessionId, std::string_view userKey,
                    std::string_view token, int64_t nowUnix, int64_t maxAgeSeconds);

}  // namespace hubd
