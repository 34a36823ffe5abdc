// SPDX-License-Identifier: BSD-3-Clause
// `hubd check`: walks the seed guide's steps (docs/install.md) on the real
// system and reports one line per check, with the command that fixes it.
//
// Each group of checks lives in a file of its own and appends to a Report.
// A check never changes the system: it reads files, runs commands (sudo,
// the single-user interpreter) with argv arrays and timeouts, and binds a
// port only to close it again. Secrets (passwords, the cookie secret, key
// material) are never printed.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "hubcore/config.h"

namespace hubd::check {

enum class Status { Pass, Fail, Warn, Skip };

struct Result {
    Status status = Status::Pass;
    std::string name;   // "hub user shell": stable, tests and docs refer to it
    std::string found;  // what was found, one line
    std::string fix;    // FAIL/WARN: a command an admin can paste
};

class Report {
public:
    void pass(std::string name, std::string found) {
        add(Status::Pass, std::move(name), std::move(found), "");
    }
    void skip(std::string name, std::string found) {
        add(Status::Skip, std::move(name), std::move(found), "");
    }
    void fail(std::string name, std::string found, std::string fix) {
        add(Status::Fail, std::move(name), std::move(found), std::move(fix));
    }
    void warn(std::string name, std::string found, std::string fix) {
        add(Status::Warn, std::move(name), std::move(found), std::move(fix));
    }
    void add(Status s, std::string name, std::string found, std::string fix);

    const std::vector<Result>& results() const { return results_; }
    bool anyFailed() const;
    // "PASS  name: found" lines, "      fix: ..." under FAIL and WARN.
    std::string text() const;
    // [{"status": "PASS", "name": ..., "found": ..., "fix": ...}, ...]
    std::string json() const;

private:
    std::vector<Result> results_;
};

// Facts only root can read, gathered before `--as` drops to the hub user.
struct RootFacts {
    bool gathered = false;
    std::optional<std::string> shadowPassword;  // the hub user's /etc/shadow field (never printed)
    std::string sudoListing;                    // `sudo -n -ll -U HUB` (what sudoers grants the hub user)
    std::vector<std::string> sudoersFiles;      // sudoers files that name the hub user
    std::string selinuxModules;                 // `semodule -l`, when SELinux is on
};

struct HubUser {
    std::string name, home, shell;
    uid_t uid = 0;
    gid_t gid = 0;
};

struct Context {
    hub::Settings settings;
    std::optional<std::string> configFile;
    HubUser hub;                   // the account the checks run as
    std::string sampleUser;        // a user the hub should serve ("" if none found)
    std::string sampleUserSource;  // where it came from, for messages
    std::string policyPath;        // the helper's compiled-in policy
    RootFacts root;
    bool interactive = false;  // --interactive: PAM password test from the tty
};

// The groups of checks, in the order of the seed guide.
void checkHubUser(Context& ctx, Report& r);          // users.cpp: account, shell, password
void checkSudo(Context& ctx, Report& r);             // sudo.cpp: sudo -l, helper via sudo, refusals
void checkPolicy(Context& ctx, Report& r);           // policy.cpp: helper, policy, single-user, Python
void checkPam(Context& ctx, Report& r);              // pam.cpp: shadow group, service, --interactive
void checkState(Context& ctx, Report& r);            // state.cpp: state directory, cookie secret
void checkTls(Context& ctx, Report& r);              // tls.cpp: key, certificate, dates, chain
void checkPorts(Context& ctx, Report& r);            // ports.cpp: bind_url and hub_bind_url
void checkSelinux(Context& ctx, Report& r);          // selinux.cpp: mode, hubd module
void checkKernelTransport(Context& ctx, Report& r);  // policy.cpp: KernelManager.transport

// Root-only facts (shadow entry, sudoers grants, SELinux modules).
void gatherRootFacts(Context& ctx);

// `hubd check [-f CONFIG] [--as USER] [--sample-user NAME] [--interactive] [--json]`
int checkCommand(int argc, char** argv);

}  // namespace hubd::check
