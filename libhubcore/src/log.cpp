// SPDX-License-Identifier: BSD-3-Clause
// stderr logging with sanitised untrusted strings.
#include "hubcore/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <ctime>

namespace hub {
namespace {
std::atomic<int> gLevel{static_cast<int>(LogLevel::Info)};
}

void setLogLevel(LogLevel level) {
    gLevel = static_cast<int>(level);
}
LogLevel logLevel() {
    return static_cast<LogLevel>(gLevel.load());
}

void logLine(LogLevel level, std::string_view message) {
    static constexpr char kLetters[] = {'D', 'I', 'W', 'E'};
    timeval tv{};
    gettimeofday(&tv, nullptr);
    tm t{};
    gmtime_r(&tv.tv_sec, &t);
    std::string line = fmt::format("[{} {:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} hubd] {}\n",
                                   kLetters[static_cast<int>(level)], t.tm_year + 1900, t.tm_mon + 1,
                                   t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, tv.tv_usec / 1000, message);
    // One write() per line keeps lines whole when threads log concurrently.
    size_t off = 0;
    while (off < line.size()) {
        ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
    }
}

std::string safe(std::string_view s, size_t maxBytes) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(std::min(s.size(), maxBytes) + 8);
    size_t i = 0;
    while (i < s.size()) {
        if (out.size() >= maxBytes) {
            out += "…";
            break;
        }
        unsigned char c = static_cast<unsigned char>(s[i]);
        size_t n = 0;
        if (c >= 0x20 && c < 0x7f)
            n = 1;
        else if ((c & 0xE0) == 0xC0)
            n = 2;
        else if ((c & 0xF0) == 0xE0)
            n = 3;
        else if ((c & 0xF8) == 0xF0)
            n = 4;
        bool ok = n > 0 && i + n <= s.size();
        for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
        // C1 controls (U+0080..U+009F) are escaped too.
        if (ok && n == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0) ok = false;
        // So are invisible format characters that reorder or hide text in a
        // terminal: U+200B..U+200F, U+2028..U+202E, U+2060..U+206F, U+FEFF.
        if (ok && n == 3) {
            uint32_t cp = (c & 0x0Fu) << 12 | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6 |
                          (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
            if ((cp >= 0x200B && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202E) ||
                (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF)
                ok = false;
        }
        if (ok && c != '\\') {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
            ++i;
        }
    }
    return out;
}

}  // namespace hub
