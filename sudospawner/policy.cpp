// SPDX-License-Identifier: BSD-3-Clause
// sudospawner: loads and parses the root-owned policy (grammar: sudospawner.conf.5).
//
// Invariants:
// - The file MUST be checked on the opened descriptor (fstat after O_NOFOLLOW
//   open): a regular file owned by root, not writable by group or other, in a
//   directory owned by root and not writable by group or other.
// - Any error anywhere in the file MUST invalidate the whole policy ("FILE:LINE:
//   sentence"); there is no partial policy and no built-in fallback.
// - allow_env MUST NOT name loader, interpreter or shell hooks (LD_*, PYTHON*,
//   BASH_ENV, ...) or the identity variables the helper sets itself.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>

#include "sudospawner.h"

namespace sudospawner {
namespace {

constexpr size_t kMaxPolicyBytes = 64 * 1024;
constexpr size_t kMaxLine = 4096;

// Set by the helper itself from passwd / policy; never from the hub.
constexpr std::array<std::string_view, 6> kReserved{"HOME", "USER", "LOGNAME", "SHELL", "PATH", "LANG"};
// Variables that make a loader, interpreter or shell run code of the caller's choosing.
constexpr std::array<std::string_view, 14> kDangerousPrefixes{
    "LD_",   "PYTHON", "BASH_",   "JUPYTER_", "IPYTHON", "PERL", "RUBY",
    "NODE_", "GCONV_", "MALLOC_", "GLIBC_",   "LC_",     "XDG_", "CONDA"};
constexpr std::array<std::string_view, 13> kDangerousNames{
    "ENV",     "IFS",         "CDPATH",      "SHELLOPTS",   "PS4",         "TMPDIR",  "LOCPATH",
    "NLSPATH", "HOSTALIASES", "RES_OPTIONS", "LOCALDOMAIN", "VIRTUAL_ENV", "LANGUAGE"};

struct LimitName {
    std::string_view name;
    int resource;
};
constexpr std::array<LimitName, 7> kLimits{{{"as", RLIMIT_AS},
                                            {"data", RLIMIT_DATA},
                                            {"nproc", RLIMIT_NPROC},
                                            {"nofile", RLIMIT_NOFILE},
                                            {"cpu", RLIMIT_CPU},
                                            {"core", RLIMIT_CORE},
                                            {"fsize", RLIMIT_FSIZE}}};

std::vector<std::string> splitWords(std::string_view line) {
    std::vector<std::string> words;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        const size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > start) words.emplace_back(line.substr(start, i - start));
    }
    return words;
}

// Unsigned decimal with an optional binary suffix (K, M, G, T); false on junk or overflow.
bool parseSize(std::string_view s, uint64_t& out, bool suffixes) {
    uint64_t mult = 1;
    if (suffixes && !s.empty()) {
        const std::string_view units = "KMGT";
        if (auto u = units.find(s.back()); u != std::string_view::npos) {
            mult = uint64_t(1) << (10 * (u + 1));
            s.remove_suffix(1);
        }
    }
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > UINT64_MAX / mult) return false;
    out = v * mult;
    return true;
}

bool safeRelativePath(std::string_view p) {
    if (p.empty() || p.front() == '/' || p.back() == '/' || p.size() > 255) return false;
    size_t start = 0;
    while (start <= p.size()) {
        size_t end = p.find('/', start);
        if (end == std::string_view::npos) end = p.size();
        const auto part = p.substr(start, end - start);
        if (part.empty() || part == "." || part == "..") return false;
        start = end + 1;
    }
    return std::all_of(p.begin(), p.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == '-' || c == '/';
    });
}

bool absoluteClean(std::string_view p) {
    return p.size() > 1 && p.front() == '/' && p.find("/../") == std::string_view::npos &&
           p.find("/./") == std::string_view::npos && p.find("//") == std::string_view::npos &&
           !p.ends_with("/..") && !p.ends_with("/.") && p.back() != '/';
}

// Parses one logical line into `p`; returns an error sentence or "".
std::string parseLine(const std::vector<std::string>& w, Policy& p, std::set<std::string>& seen) {
    const std::string& kw = w[0];
    const size_t n = w.size() - 1;
    auto once = [&]() { return seen.insert(kw).second; };
    auto arity = [&](size_t want) { return n == want; };
    uint64_t v = 0;

    if (kw == "profile") {
        if (n < 2) return "profile needs a name and an absolute command path";
        if (!hubproto::validProfileName(w[1]))
            return "profile name '" + w[1] + "' must be 1-64 of [a-z0-9_-]";
        if (p.profile(w[1])) return "profile '" + w[1] + "' is defined twice";
        if (!absoluteClean(w[2])) return "command '" + w[2] + "' must be an absolute path without . or ..";
        if (n - 2 > 64) return "profile '" + w[1] + "' has more than 64 arguments";
        p.profiles.push_back({w[1], w[2], std::vector<std::string>(w.begin() + 3, w.end())});
        return {};
    }
    if (kw == "allow_env") {
        if (n < 1) return "allow_env needs at least one variable name";
        for (size_t i = 1; i <= n; ++i) {
            if (!hubproto::validEnvName(w[i]))
                return "'" + w[i] + "' is not a variable name ([A-Z_][A-Z0-9_]*)";
            if (forbiddenHubVariable(w[i]))
                return w[i] + " may never be set by the hub (it can run code or change identity): remove it";
            if (p.allowed(w[i])) return w[i] + " is listed twice";
            p.allowEnv.push_back(w[i]);
        }
        return {};
    }
    if (kw == "setenv") {
        if (!arity(1)) return "setenv takes one NAME=value word (values cannot contain spaces)";
        const auto eq = w[1].find('=');
        const std::string name = w[1].substr(0, eq == std::string::npos ? 0 : eq);
        if (!hubproto::validEnvName(name)) return "setenv needs NAME=value with NAME of [A-Z_][A-Z0-9_]*";
        if (std::find(kReserved.begin(), kReserved.end(), name) != kReserved.end())
            return name + " is set by sudospawner itself (use path / lang for PATH and LANG)";
        for (const auto& [k, val] : p.setEnv)
            if (k == name) return "setenv " + name + " is given twice";
        p.setEnv.emplace_back(name, w[1].substr(eq + 1));
        return {};
    }
    if (kw == "limit") {
        if (!arity(2))
            return "limit takes a resource (as, data, nproc, nofile, cpu, core, fsize) and a value";
        auto it =
            std::find_if(kLimits.begin(), kLimits.end(), [&](const LimitName& l) { return l.name == w[1]; });
        if (it == kLimits.end())
            return "unknown limit '" + w[1] + "' (as, data, nproc, nofile, cpu, core, fsize)";
        for (const auto& l : p.limits)
            if (l.name == w[1]) return "limit " + w[1] + " is given twice";
        rlim_t value = RLIM_INFINITY;
        if (w[2] != "unlimited") {
            if (!parseSize(w[2], v, w[1] == "as" || w[1] == "data" || w[1] == "fsize"))
                return "bad limit value '" + w[2] + "'";
            value = static_cast<rlim_t>(v);
        }
        p.limits.push_back({it->resource, value, w[1]});
        return {};
    }
    // Scalars: each at most once.
    static const std::set<std::string> kScalars{"min_uid",      "path",         "lang",
                                                "no_new_privs", "log_file",     "log_max_size",
                                                "log_keep",     "stop_timeout", "memory_max"};
    if (!kScalars.count(kw)) return "unknown keyword '" + kw + "'";
    if (!arity(1)) return kw + " takes exactly one value";
    if (!once()) return kw + " is given twice";
    const std::string& a = w[1];
    if (kw == "min_uid") {
        if (!parseSize(a, v, false) || v < 1 || v > 0x7fffffff) return "min_uid must be a number from 1";
        p.minUid = static_cast<uid_t>(v);
    } else if (kw == "path") {
        size_t start = 0;
        while (start <= a.size()) {
            size_t end = std::min(a.find(':', start), a.size());
            if (!absoluteClean(a.substr(start, end - start)))
                return "every path entry must be an absolute directory";
            start = end + 1;
        }
        p.path = a;
    } else if (kw == "lang") {
        if (!std::all_of(a.begin(), a.end(), [](char c) {
                return std::isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-' || c == '@';
            }))
            return "lang must be a locale name such as C.UTF-8";
        p.lang = a;
    } else if (kw == "no_new_privs") {
        if (a != "yes" && a != "no") return "no_new_privs takes yes or no";
        p.noNewPrivs = a == "yes";
    } else if (kw == "log_file") {
        if (!safeRelativePath(a))
            return "log_file must be a relative path inside the home directory, without ..";
        p.logFile = a;
    } else if (kw == "log_max_size") {
        if (!parseSize(a, v, true) || v < 4096) return "log_max_size must be a size of at least 4K";
        p.logMaxSize = v;
    } else if (kw == "memory_max") {
        if (!parseSize(a, v, true) || v < 16 * 1024 * 1024)
            return "memory_max must be a size of at least 16M";
        p.memoryMax = v;
    } else if (kw == "log_keep") {
        if (!parseSize(a, v, false) || v > 20) return "log_keep must be 0-20";
        p.logKeep = static_cast<unsigned>(v);
    } else if (kw == "stop_timeout") {
        if (!parseSize(a, v, false) || v < 1 || v > hubproto::kMaxGraceMs / 1000)
            return "stop_timeout must be 1-300 seconds";
        p.stopTimeout = static_cast<unsigned>(v);
    }
    return {};
}

}  // namespace

const Profile* Policy::profile(std::string_view name) const {
    for (const auto& pr : profiles)
        if (pr.name == name) return &pr;
    return nullptr;
}

bool Policy::allowed(std::string_view envName) const {
    return std::find(allowEnv.begin(), allowEnv.end(), envName) != allowEnv.end();
}

bool forbiddenHubVariable(std::string_view name) {
    if (std::find(kReserved.begin(), kReserved.end(), name) != kReserved.end()) return true;
    if (std::find(kDangerousNames.begin(), kDangerousNames.end(), name) != kDangerousNames.end()) return true;
    return std::any_of(kDangerousPrefixes.begin(), kDangerousPrefixes.end(),
                       [&](std::string_view pre) { return name.starts_with(pre); });
}

PolicyResult parsePolicy(std::string_view text, const std::string& file) {
    PolicyResult r;
    r.policy.file = file;
    std::set<std::string> seen;
    size_t lineNo = 0, pos = 0;
    auto err = [&](const std::string& s) {
        r.error = file + ":" + std::to_string(lineNo) + ": " + s;
        r.policy = Policy{};
        return r;
    };
    if (text.size() > kMaxPolicyBytes) return err("file is larger than 64 KiB");
    while (pos < text.size()) {
        ++lineNo;
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line.size() > kMaxLine) return err("line longer than 4096 bytes");
        for (char c : line)
            if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
                return err("control character in line (only printable text and tabs are allowed)");
        if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        auto words = splitWords(line);
        if (words.empty()) continue;
        if (auto why = parseLine(words, r.policy, seen); !why.empty()) return err(why);
    }
    if (r.policy.profiles.empty())
        return err("no profile defined: add e.g. 'profile default /usr/bin/jupyterhub-singleuser'");
    for (const auto& [k, v] : r.policy.setEnv)
        if (r.policy.allowed(k)) return err(k + " is both in allow_env and setenv: keep one");
    // Default: the server ignores per-user Jupyter config unless the policy says otherwise.
    bool hasUserConfig = false;
    for (const auto& [k, v] : r.policy.setEnv) hasUserConfig |= k == "JUPYTERHUB_DISABLE_USER_CONFIG";
    if (!hasUserConfig && !r.policy.allowed("JUPYTERHUB_DISABLE_USER_CONFIG"))
        r.policy.setEnv.emplace_back("JUPYTERHUB_DISABLE_USER_CONFIG", "1");
    return r;
}

PolicyResult loadPolicy(const std::string& path) {
    PolicyResult r;
    auto fail = [&](const std::string& s) {
        r.error = s;
        return r;
    };
    const auto slash = path.rfind('/');
    if (slash == std::string::npos || path.front() != '/')
        return fail("policy path " + path + " is not absolute");
    const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    UniqueFd dfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dfd.valid())
        return fail("policy directory " + dir + " cannot be opened (" + std::strerror(errno) +
                    "): run mkdir -p " + dir + " as root and copy sudospawner.conf.example there");
    struct stat st {};
    if (fstat(dfd.get(), &st) != 0) return fail("cannot stat " + dir + ": " + std::strerror(errno));
    if (st.st_uid != 0)
        return fail("policy directory " + dir + " is not owned by root: run chown root " + dir);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return fail("policy directory " + dir + " is writable by group or others: run chmod 755 " + dir);
    UniqueFd fd(openat(dfd.get(), path.c_str() + slash + 1, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd.valid()) {
        if (errno == ENOENT)
            return fail("policy file " + path + " does not exist: copy " + path +
                        ".example there as root (then edit it) and run chmod 644 " + path);
        if (errno == ELOOP)
            return fail("policy file " + path + " is a symbolic link: replace it with a regular file");
        return fail("policy file " + path + " cannot be opened: " + std::strerror(errno));
    }
    if (fstat(fd.get(), &st) != 0) return fail("cannot stat " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail("policy file " + path + " is not a regular file: replace it with one");
    if (st.st_uid != 0)
        return fail("policy file " + path + " is owned by uid " + std::to_string(st.st_uid) +
                    ", not root: run chown root:root " + path);
    if (st.st_mode & S_IWGRP)
        return fail("policy file " + path + " is group-writable: run chmod 644 " + path);
    if (st.st_mode & S_IWOTH)
        return fail("policy file " + path + " is writable by others: run chmod 644 " + path);
    if (st.st_size > static_cast<off_t>(kMaxPolicyBytes))
        return fail("policy file " + path + " is larger than 64 KiB");
    std::string text;
    char buf[4096];
    for (;;) {
        const ssize_t n = read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail("cannot read " + path + ": " + std::strerror(errno));
        if (n == 0) break;
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > kMaxPolicyBytes) return fail("policy file " + path + " is larger than 64 KiB");
    }
    return parsePolicy(text, path);
}

}  // namespace sudospawner
