// SPDX-License-Identifier: BSD-3-Clause
// UTC timestamps in JupyterHub's wire (ISO 8601 + 'Z') and SQLite (naive UTC) forms.

#include "hubcore/time.h"

#include <fmt/format.h>

namespace hub {

namespace {

using std::chrono::days;
using std::chrono::microseconds;

// Calendar arithmetic from <chrono> is pure integer math, so unlike gmtime()
// it needs no shared state and no time_t range checks.
struct Fields {
    int year;
    unsigned month, day;
    long hour, minute, second;
    long long micros;
};

Fields split(Timestamp t) {
    const auto day = std::chrono::floor<days>(t);
    const std::chrono::year_month_day ymd{std::chrono::sys_days{day.time_since_epoch()}};
    const std::chrono::hh_mm_ss hms{t - day};
    return Fields{int(ymd.year()),
                  unsigned(ymd.month()),
                  unsigned(ymd.day()),
                  long(hms.hours().count()),
                  long(hms.minutes().count()),
                  long(hms.seconds().count()),
                  static_cast<long long>(hms.subseconds().count())};
}

// Reads exactly n digits at pos; the caller checks the range.
bool digits(std::string_view s, size_t& pos, size_t n, int& out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (size_t i = 0; i < n; ++i) {
        const char c = s[pos + i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    pos += n;
    out = v;
    return true;
}

bool expect(std::string_view s, size_t& pos, char c) {
    if (pos >= s.size() || s[pos] != c) return false;
    ++pos;
    return true;
}

}  // namespace

Timestamp now() {
    return std::chrono::time_point_cast<microseconds>(Clock::now());
}

std::string isoUtc(Timestamp t) {
    const Fields f = split(t);
    if (f.micros == 0) {
        return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", f.year, f.month, f.day, f.hour, f.minute,
                           f.second);
    }
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", f.year, f.month, f.day, f.hour, f.minute,
                       f.second, f.micros);
}

std::string sqlUtc(Timestamp t) {
    // Always six fractional digits (as SQLAlchemy writes them): fixed width
    // keeps SQL text comparisons (expiry, last_activity) chronological.
    const Fields f = split(t);
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}", f.year, f.month, f.day, f.hour, f.minute,
                       f.second, f.micros);
}

std::optional<Timestamp> parseUtc(std::string_view s) {
    size_t pos = 0;
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!digits(s, pos, 4, year) || !expect(s, pos, '-') || !digits(s, pos, 2, month) ||
        !expect(s, pos, '-') || !digits(s, pos, 2, day)) {
        return std::nullopt;
    }
    if (pos >= s.size() || (s[pos] != 'T' && s[pos] != ' ')) return std::nullopt;
    ++pos;
    if (!digits(s, pos, 2, hour) || !expect(s, pos, ':') || !digits(s, pos, 2, minute) ||
        !expect(s, pos, ':') || !digits(s, pos, 2, second)) {
        return std::nullopt;
    }
    long long micros = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        // Up to nanoseconds are accepted (other clients send them); digits
        // past the sixth are dropped, as the storage precision is 1 µs.
        size_t n = 0;
        long long scale = 100000;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (++n > 9) return std::nullopt;
            if (n <= 6) {
                micros += (s[pos] - '0') * scale;
                scale /= 10;
            }
            ++pos;
        }
        if (n == 0) return std::nullopt;
    }
    int offsetMinutes = 0;
    if (pos < s.size()) {
        if (s[pos] == 'Z' && pos + 1 == s.size()) {
            ++pos;
        } else if (s[pos] == '+' || s[pos] == '-') {
            const int sign = s[pos] == '-' ? -1 : 1;
            ++pos;
            int oh = 0, om = 0;
            if (!digits(s, pos, 2, oh) || !expect(s, pos, ':') || !digits(s, pos, 2, om) || oh > 23 ||
                om > 59) {
                return std::nullopt;
            }
            offsetMinutes = sign * (oh * 60 + om);
        } else {
            return std::nullopt;
        }
    }
    if (pos != s.size()) return std::nullopt;

    const std::chrono::year_month_day ymd{std::chrono::year{year}, std::chrono::month{unsigned(month)},
                                          std::chrono::day{unsigned(day)}};
    // Second 60 is refused like Python's datetime does.
    if (!ymd.ok() || hour > 23 || minute > 59 || second > 59) return std::nullopt;
    Timestamp t{std::chrono::sys_days{ymd}.time_since_epoch()};
    t += std::chrono::hours{hour} + std::chrono::minutes{minute - offsetMinutes} +
         std::chrono::seconds{second} + microseconds{micros};
    return t;
}

int64_t unixSeconds(Timestamp t) {
    // floor, not truncation, so that pre-1970 instants round down.
    return std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
}

}  // namespace hub
