// SPDX-License-Identifier: BSD-3-Clause
#include "hubcore/audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

#include "hubcore/log.h"

namespace hub {

namespace {

enum class Target { Off, Syslog, File };

struct AuditState {
    std::mutex mutex;  // guards the fields below; writes themselves are single calls
    Target target = Target::Off;
    std::string path;
    int fd = -1;
};

AuditState& state() {
    static AuditState s;
    return s;
}

int openFile(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        throw std::runtime_error(fmt::format(
            "cannot open the audit log {}: {}; create its directory writable by the hub user, or set "
            "hubd.audit_log = 'syslog'",
            path, std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd, &st) == 0 && (st.st_mode & 0077) != 0)
        logWarning("the audit log {} is readable by others (mode {:o}): run chmod 600 {}", path,
                   st.st_mode & 0777, path);
    return fd;
}

std::string isoNow() {
    timeval tv{};
    ::gettimeofday(&tv, nullptr);
    tm t{};
    ::gmtime_r(&tv.tv_sec, &t);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", t.tm_year + 1900, t.tm_mon + 1,
                       t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, tv.tv_usec / 1000);
}

void appendQuoted(std::string& out, std::string_view value) {
    out += '"';
    for (char c : safe(value, kMaxAuditValueBytes)) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
}

}  // namespace

std::string formatAuditLine(std::string_view event, std::initializer_list<AuditField> fields) {
    std::string line = "event=";
    line += event;
    for (const auto& [key, value] : fields) {
        line += ' ';
        line += key;
        line += '=';
        appendQuoted(line, value);
    }
    return line;
}

void openAuditLog(const std::string& target) {
    AuditState& s = state();
    std::lock_guard lock(s.mutex);
    if (s.fd >= 0) ::close(std::exchange(s.fd, -1));
    if (target.empty() || target == "off") {
        s.target = Target::Off;
    } else if (target == "syslog") {
        ::openlog("hubd", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
        s.target = Target::Syslog;
    } else if (target.front() == '/') {
        s.fd = openFile(target);
        s.path = target;
        s.target = Target::File;
    } else {
        throw std::runtime_error(fmt::format(
            "hubd.audit_log = '{}': use 'syslog', 'off', or an absolute file path", safe(target, 100)));
    }
}

void reopenAuditLog() {
    AuditState& s = state();
    std::lock_guard lock(s.mutex);
    if (s.target != Target::File) return;
    try {
        int fd = openFile(s.path);
        ::close(std::exchange(s.fd, fd));
    } catch (const std::exception& e) {
        logError("{}; still writing to the old file", e.what());
    }
}

void audit(std::string_view event, std::initializer_list<AuditField> fields) {
    AuditState& s = state();
    std::lock_guard lock(s.mutex);
    if (s.target == Target::Off) return;
    std::string line = formatAuditLine(event, fields);
    if (s.target == Target::Syslog) {
        ::syslog(LOG_AUTHPRIV | LOG_NOTICE, "%s", line.c_str());
        return;
    }
    line = isoNow() + " " + line + "\n";
    size_t off = 0;
    while (off < line.size()) {
        ssize_t n = ::write(s.fd, line.data() + off, line.size() - off);
        if (n <= 0) {
            logError("cannot write the audit log {}: {}", s.path, std::strerror(errno));
            return;
        }
        off += static_cast<size_t>(n);
    }
}

}  // namespace hub
