// SPDX-License-Identifier: BSD-3-Clause
// Wall-clock timestamps as JupyterHub stores and prints them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hub {

using Clock = std::chrono::system_clock;
using Timestamp = std::chrono::time_point<Clock, std::chrono::microseconds>;

Timestamp now();
// "2026-11-23T01:28:56.161547Z"; microseconds omitted when zero (JupyterHub's isoformat()+'Z').
std::string isoUtc(Timestamp t);
// "2026-11-23 01:28:56.161547", the naive-UTC form SQLite columns hold.
std::string sqlUtc(Timestamp t);
// Parses both forms above (and a trailing "+00:00"); nullopt if malformed.
std::optional<Timestamp> parseUtc(std::string_view text);
int64_t unixSeconds(Timestamp t);

}  // namespace hub
