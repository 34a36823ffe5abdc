// SPDX-License-Identifier: BSD-3-Clause
// UTF-8 encoding and strict validation, shared by every parser of untrusted
// text (configuration literals, JSON, usernames, stored lists).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hub {

// Appends the UTF-8 encoding of a code point (at most U+10FFFF).
void appendUtf8(std::string& out, uint32_t codePoint);

// Length (1..4) of the well-formed UTF-8 sequence starting at s[i]; 0 if it
// is malformed: truncated, overlong, a surrogate, or above U+10FFFF.
std::size_t utf8SequenceLength(std::string_view s, std::size_t i);

}  // namespace hub
