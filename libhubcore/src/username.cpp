// SPDX-License-Identifier: BSD-3-Clause
// Username normalisation (trim, lowercase) and validation for URLs, paths, logs and sudo.
#include "hubcore/username.h"
#include "hubcore/utf8.h"

#include <fmt/format.h>
#include <locale.h>
#include <wctype.h>

#include <cstdint>

namespace hub {

namespace {

constexpr char32_t kInvalid = 0xFFFFFFFF;

// Decodes one UTF-8 sequence at s[i]; strict (no overlongs, surrogates or
// values above U+10FFFF), so that a byte string has exactly one reading.
char32_t decodeUtf8(std::string_view s, size_t& i) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char b0 = byte(i);
    if (b0 < 0x80) {
        ++i;
        return b0;
    }
    size_t len = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if ((b0 & 0xE0) == 0xC0) {
        len = 2, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
        return kInvalid;
    }
    if (i + len > s.size()) return kInvalid;
    for (size_t k = 1; k < len; ++k) {
        unsigned char b = byte(i + k);
        if ((b & 0xC0) != 0x80) return kInvalid;
        cp = cp << 6 | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return kInvalid;
    i += len;
    return cp;
}

// towlower() follows LC_CTYPE, which is "C" (ASCII only) in a daemon; an
// explicit C.UTF-8 locale gives Unicode case mapping without touching the
// process-wide locale. Created once; thread-safe static initialisation.
locale_t utf8Locale() {
    static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    return loc;
}

char32_t toLower(char32_t cp) {
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + ('a' - 'A') : cp;
    locale_t loc = utf8Locale();
    if (loc == static_cast<locale_t>(nullptr)) return cp;
    auto lower = static_cast<char32_t>(towlower_l(static_cast<wint_t>(cp), loc));
    // wint_t can hold anything; keep only Unicode scalar values.
    return (lower > 0x10FFFF || (lower >= 0xD800 && lower <= 0xDFFF)) ? cp : lower;
}

bool isAsciiSpace(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

bool isUnicodeSpace(char32_t cp) {
    return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Invisible characters and bidi controls: two names that render the same, or a
// log line that renders differently from its bytes.
bool isFormatChar(char32_t cp) {
    return cp == 0xAD || cp == 0x034F || cp == 0x061C || cp == 0x180E || (cp >= 0x200B && cp <= 0x200F) ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF ||
           (cp >= 0xFFF9 && cp <= 0xFFFB) || (cp >= 0xFE00 && cp <= 0xFE0F) ||
           (cp >= 0xE0000 && cp <= 0xE0FFF);
}

// ASCII punctuation with a meaning in URLs, shells, sudo (#uid, %group,
// +netgroup) or HTML; '^' is not in the header's list but must be
// percent-encoded in a URL path, so it goes too.
constexpr std::string_view kForbiddenAscii = "'\"`$;&|<>(){}[]?#%*!~,=+:^";

}  // namespace

std::string normalizeUsername(std::string_view name) {
    while (!name.empty() && isAsciiSpace(static_cast<unsigned char>(name.front()))) name.remove_prefix(1);
    while (!name.empty() && isAsciiSpace(static_cast<unsigned char>(name.back()))) name.remove_suffix(1);
    std::string out;
    out.reserve(name.size());
    size_t i = 0;
    while (i < name.size()) {
        size_t start = i;
        char32_t cp = decodeUtf8(name, i);
        if (cp == kInvalid) {
            // Leave undecodable bytes alone; validateUsername rejects them.
            out += name[start];
            i = start + 1;
            continue;
        }
        appendUtf8(out, toLower(cp));
    }
    return out;
}

std::optional<std::string> validateUsername(std::string_view name) {
    if (name.empty()) return "username is empty";
    if (name.size() > kMaxUsernameLength)
        return fmt::format("username is longer than {} bytes", kMaxUsernameLength);
    if (name == "." || name == "..") return "username must not be '.' or '..'";
    if (name.front() == '-') return "username must not begin with '-'";
    if (name.front() == '.') return "username must not begin with '.'";
    size_t i = 0;
    while (i < name.size()) {
        char32_t cp = decodeUtf8(name, i);
        if (cp == kInvalid) return "username is not valid UTF-8";
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))
            return "username contains a control character";
        if (cp == ' ' || isUnicodeSpace(cp)) return "username contains whitespace";
        if (cp == '/' || cp == '\\') return "username contains a slash or backslash";
        if (cp < 0x80 && kForbiddenAscii.find(static_cast<char>(cp)) != std::string_view::npos)
            return fmt::format("username contains the character '{}'", static_cast<char>(cp));
        if (isFormatChar(cp)) return "username contains an invisible or formatting character";
        if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE)
            return "username contains a Unicode noncharacter";
    }
    return std::nullopt;
}

}  // namespace hub
