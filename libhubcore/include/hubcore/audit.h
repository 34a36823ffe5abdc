// SPDX-License-Identifier: BSD-3-Clause
// The audit log: one line per security-relevant event (logins, admin
// actions, spawns, stops, token creation and use), in logfmt:
//   event=login.failure user="alice" source="192.0.2.7" reason="…"
// to syslog (facility authpriv, where sshd and sudo log too) or to a file
// opened for append, mode 0600. On by default: syslog.
//
// MUST: every value is untrusted. It goes through safe() (control, bidi and
// invalid UTF-8 bytes escaped), quotes and backslashes are escaped, and it
// is cut at kMaxValueBytes: no value can forge a line, a field, or flood
// the log (CVE-2026-54338 logged unbounded usernames).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace hub {

constexpr size_t kMaxAuditValueBytes = 256;

using AuditField = std::pair<std::string_view, std::string_view>;

// The line for an event, without timestamp or newline. Keys are ours
// ([a-z_]), values are quoted and sanitised.
std::string formatAuditLine(std::string_view event, std::initializer_list<AuditField> fields);

// Where audit lines go, for the whole process: "syslog", "" or "off" (no
// audit log), or an absolute file path. Throws std::runtime_error with a
// sentence naming the file and the fix if it cannot be opened.
void openAuditLog(const std::string& target);
// Reopens a file target (after logrotate moved it); syslog needs nothing.
void reopenAuditLog();
// Writes one line (thread-safe; one write per line).
void audit(std::string_view event, std::initializer_list<AuditField> fields);

}  // namespace hub
