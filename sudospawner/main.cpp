// SPDX-License-Identifier: BSD-3-Clause
// sudospawner: run by hubd as `sudo -n -u USER sudospawner` to start, supervise
// and stop USER's single-user server; main() is the checklist.
//
// Invariants:
// - MUST NOT run anything unless: only fds 0-2 were inherited, the root-owned
//   policy loaded without a single error, and the process is an ordinary user
//   (not root, uid >= min_uid, equal real/effective/saved ids, no capabilities,
//   root not regainable).
// - The hub chooses only a profile name, a port and values of allow-listed
//   variables; the command, argv, uid, cwd and variable names come from the policy.
// - Secrets arrive on stdin only; argv is limited to --help/--version/--check.
// - MUST NOT let an exception escape: anything unexpected ends in fatal().
// - MUST link only libc, libstdc++ and libcap (tests/integration/test_helper_links.py).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "sudospawner.h"

#ifndef SUDOSPAWNER_POLICY
#define SUDOSPAWNER_POLICY "/usr/local/etc/hubd/sudospawner.conf"
#endif
#ifndef SUDOSPAWNER_PATH
#define SUDOSPAWNER_PATH "/usr/local/bin/sudospawner"
#endif

using namespace sudospawner;

namespace {

struct Options {
    bool help = false, version = false, check = false;
    std::string policy = SUDOSPAWNER_POLICY;
};

void printUsage(FILE* to) {
    std::fputs("Usage: " SUDOSPAWNER_PATH
               " [OPTIONS]\n"
               "\n"
               "Starts and supervises one single-user server for hubd, as the user sudo runs it as.\n"
               "Requests (SPAWN or ATTACH, then STOP, READ_LOG, STATUS) are read from stdin in the\n"
               "hubd spawn protocol; what may run is decided by " SUDOSPAWNER_POLICY
               ".\n"
               "\n"
               "Options:\n"
               "\n"
               "  --help                           show this help information\n"
               "  --version                        print the version and exit\n"
               "  --check [FILE]                   validate the policy (default above), print what would\n"
               "                                   run and as whom, and run nothing\n",
               to);
}

Options parseOptions(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--help" || a == "-h") {
            o.help = true;
        } else if (a == "--version") {
            o.version = true;
        } else if (a == "--check") {
            o.check = true;
            if (i + 1 < argc && argv[i + 1][0] == '/') o.policy = argv[++i];
        } else {
            std::fprintf(stderr, "sudospawner: unknown argument '%.64s'\n\n", argv[i]);
            printUsage(stderr);
            std::exit(static_cast<int>(ErrorCode::Usage));
        }
    }
    return o;
}

bool stdFdsOpen() {
    return fcntl(0, F_GETFD) >= 0 && fcntl(1, F_GETFD) >= 0 && fcntl(2, F_GETFD) >= 0;
}

// --check: the policy, and what would run for whom; runs nothing.
int checkMode(const PolicyResult& pr) {
    if (!pr.error.empty()) {
        std::fprintf(stderr, "sudospawner: %s\n", pr.error.c_str());
        return static_cast<int>(ErrorCode::Policy);
    }
    const Policy& p = pr.policy;
    std::printf("policy %s: OK, %zu profile(s)\n", p.file.c_str(), p.profiles.size());
    const std::string refusal = checkIdentity(p.minUid);
    Identity id;
    std::string why;
    if (!refusal.empty() || !lookupIdentity(id, why)) {
        std::printf("as uid %u: REFUSED: %s\n", getuid(), refusal.empty() ? why.c_str() : refusal.c_str());
    } else {
        std::printf("would run as %s (uid %u, gid %u, groups", id.name.c_str(), id.uid, id.gid);
        for (gid_t g : id.groups) std::printf(" %u", g);
        std::printf(") in %s, umask 077, new session, no_new_privs %s\n", id.home.c_str(),
                    p.noNewPrivs ? "yes" : "no");
    }
    for (const auto& prof : p.profiles) {
        std::printf("profile %s: %s", prof.name.c_str(), prof.command.c_str());
        for (const auto& a : prof.args) std::printf(" %s", a.c_str());
        std::printf("\n");
    }
    std::printf("environment: HOME USER LOGNAME SHELL (passwd) PATH=%s LANG=%s", p.path.c_str(),
                p.lang.c_str());
    for (const auto& [k, v] : p.setEnv) std::printf(" %s=%s", k.c_str(), v.c_str());
    std::printf("\nhub may set:");
    for (const auto& n : p.allowEnv) std::printf(" %s", n.c_str());
    std::printf("\nlimits:");
    for (const auto& l : p.limits)
        l.value == RLIM_INFINITY
            ? std::printf(" %s=unlimited", l.name.c_str())
            : std::printf(" %s=%llu", l.name.c_str(), static_cast<unsigned long long>(l.value));
    if (p.memoryMax)
        std::printf(" memory_max=%llu (all processes together)",
                    static_cast<unsigned long long>(p.memoryMax));
    std::printf("\nlog: ~/%s (rotated at %llu bytes, %u kept), stop grace up to %u s, min_uid %u\n",
                p.logFile.c_str(), static_cast<unsigned long long>(p.logMaxSize), p.logKeep, p.stopTimeout,
                p.minUid);
    return refusal.empty() && why.empty() ? 0 : static_cast<int>(ErrorCode::Identity);
}

}  // namespace

int main(int argc, char** argv) try {
    // 1. Process hygiene: only fds 0-2, fixed umask, signal dispositions we rely on.
    // Anything inherited beyond 0-2 (sudo's closefrom should already ensure it); Linux 5.9+.
    if (close_range(3, ~0U, 0) != 0 || !stdFdsOpen())
        _exit(static_cast<int>(ErrorCode::Setup));  // nowhere to report to
    umask(077);
    signal(SIGPIPE, SIG_IGN);  // a dead hub shows up as EPIPE, not as our death
    signal(SIGHUP, SIG_IGN);   // hub or terminal hang-ups must not end supervision
    signal(SIGCHLD, SIG_DFL);  // SIG_IGN inherited from the caller would auto-reap the server
    openlog("sudospawner", LOG_PID, LOG_AUTHPRIV);

    // 2. Command line: --help / --version need nothing; --check runs nothing.
    const Options opt = parseOptions(argc, argv);
    if (opt.help) {
        printUsage(stdout);
        return 0;
    }
    if (opt.version) {
        std::printf("sudospawner %s (protocol %u)\n", HUBD_VERSION, hubproto::kProtocolVersion);
        return 0;
    }
    const PolicyResult pr = loadPolicy(opt.policy);
    if (opt.check) return checkMode(pr);

    // 3. From here on every failure is also one ERROR frame on stdout.
    setReplyFd(1);
    if (!pr.error.empty()) fatal(ErrorCode::Policy, pr.error);
    const Policy& policy = pr.policy;

    // 4. Who we are: an ordinary user, allowed by the policy, unable to regain root.
    if (auto refusal = checkIdentity(policy.minUid); !refusal.empty()) fatal(ErrorCode::Identity, refusal);
    Identity id;
    if (std::string why; !lookupIdentity(id, why)) fatal(ErrorCode::Identity, why);
    const char* hub = std::getenv("SUDO_USER");  // for the log only; never trusted
    const std::string hubName = hub ? std::string(hub).substr(0, 32) : "?";

    // 5. One request: SPAWN or ATTACH (after an optional HELLO).
    ErrorCode code{};
    std::string why;
    const auto request = readFirstRequest(code, why);
    if (!request) fatal(code, why);

    // 6. ATTACH: verify and relay to the resident supervisor (never returns).
    if (const auto* attach = std::get_if<hubproto::Attach>(&*request)) {
        logDecision(LOG_INFO,
                    "hub " + hubName + " attaches to pid " + std::to_string(attach->pid) + " of " + id.name);
        attachAndRelay(id, *attach);
    }

    // 7. SPAWN: the policy decides the command and the environment names.
    const auto& spawn = std::get<hubproto::Spawn>(*request);
    ChildPlan plan;
    if (!planChild(policy, id, spawn, plan, why)) {
        logDecision(LOG_WARNING, "refused spawn for " + id.name + " requested by " + hubName + ": " + why);
        fatal(ErrorCode::Refused, why);
    }
    if (!writeTlsFiles(spawn, plan, why)) fatal(ErrorCode::Setup, why);
    logDecision(LOG_INFO, "hub " + hubName + " spawns profile " + spawn.profile + " (" + plan.argv[0] +
                              ") as " + id.name + " in " + id.home + ", port " + std::to_string(spawn.port));

    // 8. Start, report STARTED, supervise until the server ends (never returns).
    spawnAndSupervise(policy, id, spawn, plan);
} catch (...) {
    fatal(ErrorCode::Internal, "unexpected internal error (exception): please report it");
}
