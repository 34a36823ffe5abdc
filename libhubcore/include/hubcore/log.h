// SPDX-License-Identifier: BSD-3-Clause
// One log line per event on stderr, in JupyterHub's shape:
//   [I 2026-11-23 05:30:00.123 hubd] message
// MUST: untrusted strings go through safe() before they reach a log line,
// so a username cannot forge lines or flood the log.
#pragma once

#include <string>
#include <string_view>

#include <fmt/format.h>

namespace hub {

enum class LogLevel { Debug = 0, Info = 1, Warning = 2, Error = 3 };

void setLogLevel(LogLevel level);
LogLevel logLevel();
void logLine(LogLevel level, std::string_view message);

// Escapes control characters and non-UTF-8 bytes as \xNN and truncates to
// maxBytes (marking the cut with "…").
std::string safe(std::string_view untrusted, size_t maxBytes = 200);

template <typename... Args>
void logDebug(fmt::format_string<Args...> f, Args&&... args) {
    if (logLevel() <= LogLevel::Debug) logLine(LogLevel::Debug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void logInfo(fmt::format_string<Args...> f, Args&&... args) {
    if (logLevel() <= LogLevel::Info) logLine(LogLevel::Info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void logWarning(fmt::format_string<Args...> f, Args&&... args) {
    logLine(LogLevel::Warning, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void logError(fmt::format_string<Args...> f, Args&&... args) {
    logLine(LogLevel::Error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace hub
