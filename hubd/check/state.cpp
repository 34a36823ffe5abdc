// SPDX-License-Identifier: BSD-3-Clause
// Step 6 of docs/install.md: the state directory (the database's directory)
// belongs to the hub user and nobody else can write it; the cookie secret
// file is the hub user's, mode 0600.
#include <fmt/format.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check/check.h"
#include "check/fs.h"

namespace hubd::check {
namespace {

std::string absolute(const std::string& path) {
    if (!path.empty() && path[0] == '/') return path;
    char cwd[PATH_MAX];
    if (!::getcwd(cwd, sizeof cwd)) return path;
    return std::string(cwd) + "/" + path;
}

std::string dirOf(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == 0 ? "/" : path.substr(0, slash);
}

void checkStateDir(const Context& ctx, Report& r) {
    const std::string hubName = ctx.hub.name;
    std::string db = ctx.settings.dbUrl;
    if (db.rfind("sqlite:///", 0) == 0) db = db.substr(10);
    const std::string dbPath = absolute(db);
    const std::string dir = dirOf(dbPath);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        r.fail("state directory", dir + " (where " + db + " lives) does not exist",
               fmt::format("install -d -o {} -g {} -m 0700 {}", hubName, groupName(ctx.hub.gid), dir));
    } else if (st.st_uid != ctx.hub.uid) {
        r.fail("state directory",
               fmt::format("{} is owned by {}, not {}: the hub's database and secrets belong to the hub user",
                           dir, userName(st.st_uid), hubName),
               fmt::format("chown {}: {}", hubName, dir));
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        r.fail("state directory",
               fmt::format("{} is writable by {} (mode {}): they could replace the database", dir,
                           st.st_mode & S_IWOTH ? "every user" : "group " + groupName(st.st_gid),
                           octal(st.st_mode)),
               "chmod 700 " + dir);
    } else if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        r.fail("state directory",
               dir + " is not writable by " + hubName + " (mode " + octal(st.st_mode) + ")",
               "chmod u+rwx " + dir);
    } else {
        struct stat dbst {};
        std::string note;
        if (::stat(dbPath.c_str(), &dbst) == 0) {
            if (dbst.st_uid != ctx.hub.uid) {
                r.fail("state directory",
                       dbPath + " is owned by " + userName(dbst.st_uid) + ", not " + hubName,
                       fmt::format("chown {}: {}", hubName, dbPath));
                return;
            }
            if (dbst.st_mode & 077) {
                r.warn("state directory",
                       dbPath + " has mode " + octal(dbst.st_mode) +
                           ": other users may read the hub's hashed tokens",
                       "chmod 600 " + dbPath);
                return;
            }
            note = ", " + db + " mode " + octal(dbst.st_mode);
        }
        if (st.st_mode & 077)
            r.warn("state directory",
                   fmt::format("{} is owned by {} but readable by others (mode {})", dir, hubName,
                               octal(st.st_mode)),
                   "chmod 700 " + dir);
        else
            r.pass("state directory",
                   fmt::format("{} owned by {}, mode {}{}", dir, hubName, octal(st.st_mode), note));
    }
}

void checkCookieSecret(const Context& ctx, Report& r) {
    const std::string hubName = ctx.hub.name;
    const std::string secret = absolute(ctx.settings.cookieSecretFile);
    if (ctx.settings.cookieSecret) {
        r.pass("cookie secret", "set in the configuration (JupyterHub.cookie_secret); keep that file 0600");
        return;
    }
    if (::getenv("JPY_COOKIE_SECRET")) {
        r.pass("cookie secret", "JPY_COOKIE_SECRET is set in the environment");
        return;
    }
    struct stat sst {};
    if (::lstat(secret.c_str(), &sst) != 0) {
        if (::access(dirOf(secret).c_str(), W_OK) == 0)
            r.pass("cookie secret",
                   secret + " does not exist yet: hubd creates it (mode 0600) on first start");
        else
            r.fail("cookie secret", secret + " does not exist and " + hubName + " cannot create it there",
                   fmt::format("install -d -o {} -m 0700 {}", hubName, dirOf(secret)));
    } else if (!S_ISREG(sst.st_mode)) {
        r.fail("cookie secret", secret + " is not a regular file",
               "rm " + secret + "  # hubd writes a new one");
    } else if (sst.st_uid != ctx.hub.uid) {
        r.fail("cookie secret", secret + " is owned by " + userName(sst.st_uid) + ", not " + hubName,
               fmt::format("chown {}: {} && chmod 600 {}", hubName, secret, secret));
    } else if (sst.st_mode & 077) {
        r.fail("cookie secret",
               secret + " has mode " + octal(sst.st_mode) +
                   ": other users can read it and forge any login cookie",
               "chmod 600 " + secret);
    } else {
        r.pass("cookie secret", secret + " owned by " + hubName + ", mode " + octal(sst.st_mode));
    }
}

}  // namespace

void checkState(Context& ctx, Report& r) {
    checkStateDir(ctx, r);
    checkCookieSecret(ctx, r);
}

}  // namespace hubd::check
