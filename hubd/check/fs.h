// SPDX-License-Identifier: BSD-3-Clause
// File-system safety for `hubd check`: who other than root could change a
// file or a directory (and so what runs, or what root-owned policy says),
// and the chmod/chown that takes that away.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace hubd::check {

struct Finding {
    std::string what;  // "/usr/local/bin is writable by every user (mode 0777)"
    std::string fix;   // "chmod o-w /usr/local/bin"
};

std::string userName(uid_t uid);
std::string groupName(gid_t gid);
std::string octal(mode_t mode);  // "0644"

// Whether someone other than root can write this one entry: an owner other
// than root, a group other than root's with write access, or others with
// write access. A sticky directory writable by others still lets them add
// entries: `stickyOk` says whether that matters (not for a file's ancestors,
// whose existing root-owned entries they cannot replace; yes for PATH).
std::optional<Finding> nonRootWritable(const std::string& path, const struct stat& st, bool stickyOk);

// Every directory from / down to `path`, and `path` itself, as written and
// with symlinks resolved: the findings, in order from the top. A missing
// path yields nothing (callers check existence themselves).
std::vector<Finding> chainWritable(const std::string& path);

// Whether every directory above `path` lets other users through (o+x): a
// 0644 key inside a 0700 directory is not readable by them (as hubd's own
// TLS loader judges it).
bool reachableByOthers(const std::string& path);

// All findings joined for a found-line ("a; b"), and their fixes joined with " && ".
std::string joinWhat(const std::vector<Finding>& f);
std::string joinFix(const std::vector<Finding>& f);

}  // namespace hubd::check
