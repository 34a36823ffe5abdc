// SPDX-License-Identifier: BSD-3-Clause
// Adding users on an admin's request: the checks POST /hub/api/users and the
// admin page share, so both accept and refuse the same names. Added users
// are hub users in the database and stay allowed across restarts (seed:
// "users added via the admin panel or REST API join the allowed set").
//
// Under PAM only Unix accounts can sign in, and hubd never creates system
// users (LocalAuthenticator.create_system_users is refused): a name without
// an account is refused with the adduser step, as JupyterHub's
// LocalAuthenticator.add_user refuses it.
#include <pwd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "app/hub.h"
#include "hubcore/log.h"
#include "hubcore/username.h"

namespace hubd {

namespace {

enum class Account { Exists, Missing, LookupFailed };

// getpwnam_r through NSS: local files, or LDAP/SSSD where configured. It may
// block briefly; admins add a handful of names at a time.
Account unixAccount(const std::string& name, std::string& error) {
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    for (;;) {
        int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
        if (rc == ERANGE && buf.size() < (1u << 20)) {
            buf.resize(buf.size() * 2);
            continue;
        }
        if (found) return Account::Exists;
        // "Not found" is 0, ENOENT, ESRCH, EBADF or EPERM depending on the NSS module.
        if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM) return Account::Missing;
        error = std::strerror(rc);
        return Account::LookupFailed;
    }
}

}  // namespace

const hub::UserRecord* Hub::recordLogin(const std::string& name, const hub::UserRecord* existing, bool admin,
                                        std::string& error) {
    if (!existing) {
        auto created = createUsers({name}, admin);
        error = created.error;
        return created.created.empty() ? nullptr : created.created[0];
    }
    if (admin == existing->admin) return existing;
    hub::UserRecord changed = *existing;
    changed.admin = admin;
    updateUser(changed);
    return findUserById(changed.id);
}

Hub::NewUsersCheck Hub::checkNewUsers(const std::vector<std::string>& names) const {
    NewUsersCheck out;
    std::set<std::string> seen;
    const bool pam = settings_.authenticatorClass == "pam";
    for (const auto& raw : names) {
        std::string name = hub::normalizeUsername(raw);
        auto refuse = [&](int status, std::string reason) {
            out.refused.push_back({raw, std::move(reason), status});
        };
        if (auto err = hub::validateUsername(name)) {
            refuse(400, fmt::format("Invalid username: {}", *err));
            continue;
        }
        if (!seen.insert(name).second) {
            refuse(409, fmt::format("{} is listed more than once; it is added once", name));
            continue;
        }
        if (findUser(name)) {
            refuse(409, fmt::format("User {} already exists", name));
            continue;
        }
        if (pam) {
            std::string error;
            switch (unixAccount(name, error)) {
                case Account::Exists:
                    break;
                case Account::Missing:
                    refuse(400, fmt::format(
                                    "Failed to create user {}: there is no Unix account {} on this machine, "
                                    "and with PAM only Unix accounts can sign in. hubd never creates "
                                    "system users: create it with adduser {} first, then add it again",
                                    name, name, name));
                    continue;
                case Account::LookupFailed:
                    refuse(400,
                           fmt::format("Failed to create user {}: looking up its Unix account failed ({}); "
                                       "check the name service (nsswitch.conf) and try again",
                                       name, error));
                    continue;
            }
        }
        out.toAdd.push_back(std::move(name));
    }
    return out;
}

}  // namespace hubd
