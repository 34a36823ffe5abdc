// SPDX-License-Identifier: BSD-3-Clause
#include "privileges.h"

#include <dirent.h>
#include <sys/capability.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

namespace hubd {

namespace {

// What to do instead of root, shared by the refusal and the warning.
constexpr const char* kInstead =
    "Run hubd as its own unprivileged user (User=hubd in the systemd unit, or sudo -u hubd hubd ...). "
    "For ports below 1024 give that user CAP_NET_BIND_SERVICE: AmbientCapabilities=CAP_NET_BIND_SERVICE "
    "in the unit, or setcap cap_net_bind_service=+ep on the hubd binary, or let systemd bind the port "
    "(socket activation); hubd drops the capability once its ports are bound. Spawning needs no root "
    "either: hubd starts servers through sudo and sudospawner. See docs/install.md.";

// Capabilities belong to threads, not processes: a thread started before
// the drop would keep them. -1 when /proc cannot tell.
int threadCount() {
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/proc/self/task"), ::closedir);
    if (!dir) return -1;
    int count = 0;
    while (dirent* entry = ::readdir(dir.get()))
        if (entry->d_name[0] != '.') ++count;
    return count;
}

struct CapFree {
    void operator()(void* p) const { cap_free(p); }
};
using CapPtr = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

std::string capText(cap_t caps) {
    ssize_t length = 0;
    std::unique_ptr<char, CapFree> text(cap_to_text(caps, &length));
    return text ? std::string(text.get(), static_cast<size_t>(length)) : std::string("(unreadable)");
}

}  // namespace

RootCheck checkRoot(uid_t uid, uid_t euid, bool allowRoot) {
    RootCheck check;
    if (uid != 0 && euid != 0) return check;
    std::string who = uid == 0 ? "as root (uid 0)" : "with effective uid 0 (a setuid-root binary?)";
    if (allowRoot) {
        check.message = fmt::format(
            "running {} because of --allow-root: every request is now handled by a root process on "
            "the network. {}",
            who, kInstead);
        return check;
    }
    check.refuse = true;
    check.message = fmt::format(
        "hubd refuses to run {}. It answers requests from the network, and a flaw in a root process "
        "on the public web hands the whole machine to whoever finds it: the reason for the guide "
        "\"Using sudo to run JupyterHub without root privileges\". {} If you must run it as root "
        "anyway (a throw-away container), pass --allow-root.",
        who, kInstead);
    return check;
}

std::string dropCapabilities() {
    if (int threads = threadCount(); threads > 1)
        return fmt::format(
            "cannot drop capabilities: hubd already runs {} threads, and capabilities belong to each "
            "thread (a bug: the drop must come before the worker threads start)",
            threads);

    // The bounding set stays as it is, and PR_SET_NO_NEW_PRIVS stays off:
    // hubd starts every server through sudo, a setuid-root program that
    // gains its privileges at execve. no_new_privs makes the kernel ignore
    // the setuid bit, and an empty bounding set leaves sudo as euid 0
    // without CAP_SETUID/CAP_SETGID ("unable to change to root gid"). Either
    // would break spawning. What runs under sudo is limited by sudoers and
    // sudospawner's policy instead (docs/security-model.md).
    if (CAP_AMBIENT_SUPPORTED() && cap_reset_ambient() != 0)
        return fmt::format("cannot clear the ambient capabilities: {}", std::strerror(errno));
    CapPtr none(cap_init());  // cap_init: every flag of every capability clear
    if (!none || cap_set_proc(none.get()) != 0)
        return fmt::format("cannot drop capabilities: {}", std::strerror(errno));

    // Check, rather than trust, the result.
    CapPtr now(cap_get_proc());
    if (!now) return fmt::format("cannot read capabilities back: {}", std::strerror(errno));
    if (cap_compare(now.get(), none.get()) != 0)
        return fmt::format("capabilities remain after dropping them all: {}", capText(now.get()));
    if (CAP_AMBIENT_SUPPORTED()) {
        for (cap_value_t c = 0; c < cap_max_bits(); ++c) {
            if (cap_get_ambient(c) > 0) {
                std::unique_ptr<char, CapFree> name(cap_to_name(c));
                return fmt::format("ambient capability {} remains after clearing them all",
                                   name ? name.get() : "?");
            }
        }
    }
    return {};
}

}  // namespace hubd
