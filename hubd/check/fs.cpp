// SPDX-License-Identifier: BSD-3-Clause
// Ownership and mode checks on one entry and on a path's whole chain.
#include "check/fs.h"

#include <fmt/format.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>

#include <set>

namespace hubd::check {

std::string userName(uid_t uid) {
    if (const passwd* pw = ::getpwuid(uid)) return pw->pw_name;
    return "uid " + std::to_string(uid);
}

std::string groupName(gid_t gid) {
    if (const group* g = ::getgrgid(gid)) return g->gr_name;
    return "gid " + std::to_string(gid);
}

std::string octal(mode_t mode) {
    return fmt::format("{:04o}", mode & 07777);
}

std::optional<Finding> nonRootWritable(const std::string& path, const struct stat& st, bool stickyOk) {
    const bool dir = S_ISDIR(st.st_mode);
    const bool sticky = dir && (st.st_mode & S_ISVTX) && stickyOk;
    if (S_ISLNK(st.st_mode)) return std::nullopt;  // a link's own mode means nothing; its directory counts
    if (st.st_uid != 0)
        return Finding{fmt::format("{} is owned by {}, who can change it", path, userName(st.st_uid)),
                       fmt::format("chown root:root {}", path)};
    if ((st.st_mode & S_IWOTH) && !sticky)
        return Finding{fmt::format("{} is writable by every user (mode {})", path, octal(st.st_mode)),
                       fmt::format("chmod o-w {}", path)};
    if ((st.st_mode & S_IWGRP) && st.st_gid != 0 && !sticky)
        return Finding{fmt::format("{} is writable by group {} (mode {})", path, groupName(st.st_gid),
                                   octal(st.st_mode)),
                       fmt::format("chmod g-w {}", path)};
    return std::nullopt;
}

namespace {

void walk(const std::string& path, std::vector<Finding>& out, std::set<std::string>& seen) {
    std::string prefix;
    size_t pos = 0;
    while (pos <= path.size()) {
        size_t slash = path.find('/', pos);
        if (slash == std::string::npos) slash = path.size();
        prefix = slash == 0 ? "/" : path.substr(0, slash);
        pos = slash + 1;
        if (prefix.empty() || !seen.insert(prefix).second) continue;
        struct stat st {};
        if (::lstat(prefix.c_str(), &st) != 0) return;
        // The last component is checked strictly; the directories above it
        // only for replacing what is in them.
        const bool last = slash == path.size();
        if (auto f = nonRootWritable(prefix, st, !last)) out.push_back(*f);
    }
}

}  // namespace

std::vector<Finding> chainWritable(const std::string& path) {
    std::vector<Finding> out;
    std::set<std::string> seen;
    walk(path, out, seen);
    char resolved[PATH_MAX];
    if (::realpath(path.c_str(), resolved) && path != resolved) walk(resolved, out, seen);
    return out;
}

bool reachableByOthers(const std::string& path) {
    char resolved[PATH_MAX];
    if (!::realpath(path.c_str(), resolved)) return true;
    std::string dir = resolved;
    while (dir != "/") {
        dir.resize(dir.rfind('/') == 0 ? 1 : dir.rfind('/'));
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0) return true;
        if (!(st.st_mode & S_IXOTH)) return false;
    }
    return true;
}

std::string joinWhat(const std::vector<Finding>& f) {
    std::string s;
    for (const auto& x : f) s += (s.empty() ? "" : "; ") + x.what;
    return s;
}

std::string joinFix(const std::vector<Finding>& f) {
    std::string s;
    std::set<std::string> done;
    for (const auto& x : f)
        if (done.insert(x.fix).second) s += (s.empty() ? "" : " && ") + x.fix;
    return s;
}

}  // namespace hubd::check
