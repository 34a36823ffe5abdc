// SPDX-License-Identifier: BSD-3-Clause
// What hubd gives up before it serves anything: root (refused unless
// --allow-root) and every capability (dropped once the listeners are bound).
// See docs/security-model.md, "Privileges".
#pragma once

#include <sys/types.h>

#include <string>

namespace hubd {

// Started as root (real or effective uid 0)? Without --allow-root hubd
// refuses, saying why not and what to do instead; with it, it warns.
struct RootCheck {
    bool refuse = false;
    std::string message;  // the refusal, or the warning; "" when not root
};
RootCheck checkRoot(uid_t uid, uid_t euid, bool allowRoot);

// Clears the effective, permitted, inheritable and ambient capability sets
// of the process (it must still be single-threaded: capabilities are per
// thread) and checks that they are empty. Returns "" on success, else the
// reason hubd must not go on. The bounding set is kept, and no_new_privs is
// not set: see privileges.cpp for why.
std::string dropCapabilities();

}  // namespace hubd
