// SPDX-License-Identifier: BSD-3-Clause
// Username normalisation and validation.
//
// MUST: a name that passes validate() is safe in a URL path segment, a
// filesystem path component, a log line and a sudo -u argument.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hub {

constexpr size_t kMaxUsernameLength = 255;

// Trims surrounding whitespace and lowercases (JupyterHub's normalize_username).
std::string normalizeUsername(std::string_view name);

// nullopt if valid; otherwise a sentence for a 400 ("username contains a control character").
// Rejects: empty, longer than kMaxUsernameLength bytes, invalid UTF-8, control
// characters (C0, DEL, C1), '/', '\\', leading '-' or '.', "." and "..",
// whitespace, and characters unsafe in URLs or sudo: ' " ` $ ; & | < > ( ) { } [ ] ? # % * ! ~ , = + :
// (letters of any script, digits, '_', '-', '.', '@' are fine).
std::optional<std::string> validateUsername(std::string_view name);

}  // namespace hub
