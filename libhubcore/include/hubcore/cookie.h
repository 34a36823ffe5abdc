// SPDX-License-Identifier: BSD-3-Clause
// Signed cookies (tornado secure cookie v2 format, HMAC-SHA256) and the
// cookie secret file.
//
// MUST: signatures are compared in constant time; a value is returned only
// when signature, name and age all check out.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hub {

// 2|1:0|<len>:<ts>|<len>:<name>|<len>:<b64 value>|<hex hmac>
std::string signCookie(std::string_view secret, std::string_view name, std::string_view value,
                       int64_t unixTime);
// Accepts values wrapped in double quotes (Python's SimpleCookie does that).
std::optional<std::string> verifyCookie(std::string_view secret, std::string_view name,
                                        std::string_view signedValue, int64_t unixNow, double maxAgeDays);

// Parses a Cookie request header into (name, value) pairs, in order.
std::vector<std::pair<std::string, std::string>> parseCookieHeader(std::string_view header);

struct CookieSecretResult {
    std::string secret;  // raw bytes, 32 for generated secrets
    std::string error;   // non-empty: a sentence with the fix; start-up stops
    bool generated = false;
};
// JupyterHub's order: configured bytes, then JPY_COOKIE_SECRET (hex), then
// the file (hex, created mode 0600 with 32 random bytes if missing). A file
// readable by group or other is refused with "run chmod 600 FILE".
CookieSecretResult loadCookieSecret(const std::optional<std::string>& configured, const char* envHex,
                                    const std::string& path);

std::string base64Encode(std::string_view data);
std::optional<std::string> base64Decode(std::string_view text);
std::string hexEncode(std::string_view data);
std::optional<std::string> hexDecode(std::string_view text);          // ignores nothing: strict
std::string hmacSha256(std::string_view key, std::string_view data);  // raw 32 bytes

}  // namespace hub
