// SPDX-License-Identifier: BSD-3-Clause
// Step 5 of docs/install.md: the sudoers rule. What sudo grants the hub user
// (`sudo -n -ll`, parsed), and the seed guide's two tests run for real: the
// helper as an allowed user without a password, and /bin/echo refused (and
// the helper as root refused).
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <sstream>

#include "check/check.h"
#include "check/run.h"
#include "hubcore/auth.h"

namespace hubd::check {
namespace {

struct Entry {
    std::vector<std::string> runAsUsers, runAsGroups, commands;
    bool noPassword = false;
};

std::string trim(std::string s) {
    s.erase(0, s.find_first_not_of(" \t"));
    s.erase(s.find_last_not_of(" \t\r") + 1);
    return s;
}

std::vector<std::string> splitList(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');)
        if (!trim(item).empty()) out.push_back(trim(item));
    return out;
}

// `sudo -ll` prints one "Sudoers entry:" block per rule: RunAsUsers,
// RunAsGroups, Options (with !authenticate for NOPASSWD), then Commands
// one per line.
std::vector<Entry> parseListing(const std::string& text) {
    std::vector<Entry> entries;
    std::stringstream ss(text);
    bool inCommands = false;
    for (std::string line; std::getline(ss, line);) {
        const std::string t = trim(line);
        if (t == "Sudoers entry:") {
            entries.emplace_back();
            inCommands = false;
        } else if (entries.empty()) {
            continue;
        } else if (t.rfind("RunAsUsers:", 0) == 0) {
            entries.back().runAsUsers = splitList(t.substr(11));
        } else if (t.rfind("RunAsGroups:", 0) == 0) {
            entries.back().runAsGroups = splitList(t.substr(12));
        } else if (t.rfind("Options:", 0) == 0) {
            for (const auto& o : splitList(t.substr(8)))
                if (o == "!authenticate") entries.back().noPassword = true;
        } else if (t == "Commands:") {
            inCommands = true;
        } else if (inCommands && !t.empty()) {
            entries.back().commands.push_back(t);
        } else if (t.empty()) {
            inCommands = false;
        }
    }
    return entries;
}

bool plainName(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    });
}

bool serviceable(const std::string& user) {
    const passwd* pw = ::getpwnam(user.c_str());
    return pw && pw->pw_uid >= 1000 && pw->pw_uid != 65534;
}

std::string firstMember(const std::string& groupName) {
    if (const group* g = ::getgrnam(groupName.c_str()))
        for (char** m = g->gr_mem; m && *m; ++m)
            if (serviceable(*m)) return *m;
    return "";
}

// A user the hub should be able to serve: --sample-user, else from
// allowed_users, allowed_groups, or the rule itself.
void chooseSample(Context& ctx, const std::vector<Entry>& entries) {
    if (!ctx.sampleUser.empty()) return;
    for (const auto& u : ctx.settings.allowedUsers)
        if (serviceable(u)) {
            ctx.sampleUser = u;
            ctx.sampleUserSource = "from Authenticator.allowed_users";
            return;
        }
    for (const auto& g : ctx.settings.allowedGroups)
        if (std::string m = firstMember(g); !m.empty()) {
            ctx.sampleUser = m;
            ctx.sampleUserSource = "member of allowed group " + g;
            return;
        }
    for (const auto& e : entries)
        for (const auto& u : e.runAsUsers) {
            std::string m = u[0] == '%' ? firstMember(u.substr(1)) : (serviceable(u) ? u : "");
            if (!m.empty()) {
                ctx.sampleUser = m;
                ctx.sampleUserSource = "from the sudoers rule";
                return;
            }
        }
}

// The drop-in `hubd sudoers` makes, for the users or group the hub serves.
std::string dropInFix(const Context& ctx, const std::vector<Entry>& entries) {
    std::string who;
    if (!ctx.settings.allowedGroups.empty() && plainName(ctx.settings.allowedGroups[0])) {
        who = "--group " + ctx.settings.allowedGroups[0];
    } else {
        std::vector<std::string> users;
        for (const auto& u : ctx.settings.allowedUsers)
            if (plainName(u)) users.push_back(u);
        if (users.empty())
            for (const auto& e : entries)
                for (const auto& u : e.runAsUsers)
                    if (plainName(u) && u != "root" &&
                        std::find(users.begin(), users.end(), u) == users.end())
                        users.push_back(u);
        if (users.empty() && !ctx.sampleUser.empty()) users.push_back(ctx.sampleUser);
        std::string list;
        for (const auto& u : users) list += (list.empty() ? "" : ",") + u;
        who = "--users " + (list.empty() ? std::string("USER1,USER2") : list);
    }
    const std::string helper = ctx.settings.sudospawnerPath;
    std::string target = "/etc/sudoers.d/hubd";
    if (ctx.root.sudoersFiles.size() == 1 && ctx.root.sudoersFiles[0] != "/etc/sudoers")
        target = ctx.root.sudoersFiles[0];  // replace the file that holds the rule
    return fmt::format(
        "hubd sudoers --hub-user {} {}{} > /tmp/hubd.sudoers && visudo -cf /tmp/hubd.sudoers && "
        "install -m 0440 -o root -g root /tmp/hubd.sudoers {}",
        ctx.hub.name, who, helper == "/usr/local/bin/sudospawner" ? "" : " --helper " + helper, target);
}

bool helperCommand(const std::string& cmd, const std::string& helper, bool& anyArgs) {
    if (cmd == helper) {
        anyArgs = true;
        return true;
    }
    for (const char* arg : {"\"\"", "--help", "--version", "--check"})
        if (cmd == helper + " " + arg) return true;
    return false;
}

std::string whereGranted(const Context& ctx) {
    if (ctx.root.sudoersFiles.empty()) return "";
    std::string s;
    for (const auto& f : ctx.root.sudoersFiles) s += (s.empty() ? "" : ", ") + f;
    return " (rules for " + ctx.hub.name + " in " + s + ")";
}

// Refusals no sudoers rule can fix (the seeds' "PAM session errors" and
// SELinux-style denials): sudo itself cannot work in the hub's process
// (no_new_privs, a capability bounding set without what sudo needs), or PAM's
// account or session stack refuses. {why, fix}; empty when err is none of them.
std::pair<std::string, std::string> sudoEnvironmentProblem(const Context& ctx, const std::string& err) {
    auto has = [&](const char* s) { return err.find(s) != std::string::npos; };
    const std::string caps = "CAP_SETUID CAP_SETGID CAP_AUDIT_WRITE CAP_SYS_RESOURCE CAP_KILL";
    if (has("no new privileges"))
        return {"the hub runs with no_new_privs, so the setuid sudo cannot become root",
                "systemctl edit hubd  # drop NoNewPrivileges= and the options implying it (docs/install.md "
                "step 7)"};
    if (has("unable to change to root") || has("setresuid") || has("setresgid") || has("PERM_SUDOERS"))
        return {
            "the hub's capability bounding set lacks what sudo needs (" + caps + ")",
            "systemctl edit hubd  # CapabilityBoundingSet= must keep " + caps + " (docs/install.md step 7)"};
    if (has("account validation failure") || has("PAM account management") || has("expired"))
        return {"PAM's account check refuses " + ctx.hub.name + " (expired or disabled account)",
                "chage -E -1 " + ctx.hub.name + " && chage -l " + ctx.hub.name};
    if (has("pam_open_session") || has("session initialization"))
        return {"sudo's PAM session stack (/etc/pam.d/sudo) fails",
                "journalctl -t sudo --since -10min  # the failing session module"};
    return {};
}

void checkRule(Context& ctx, Report& r, const std::vector<Entry>& entries, const std::string& fix) {
    const std::string name = "sudoers rule";
    const std::string helper = ctx.settings.sudospawnerPath;
    std::vector<std::string> problems;
    bool anyArgs = false, helperGranted = false;
    for (const auto& e : entries) {
        for (const auto& c : e.commands) {
            if (helperCommand(c, helper, anyArgs) || c == "ALL") helperGranted = true;  // ALL covers it too
            if (c == "ALL")
                problems.push_back("it allows ALL commands");
            else if (!helperCommand(c, helper, anyArgs))
                problems.push_back("it allows " + c);
        }
        if (e.runAsUsers.empty() && e.runAsGroups.empty())
            problems.push_back("an entry has no Runas list, so it runs as root");
        for (const auto& u : e.runAsUsers)
            if (u == "ALL" || u == "root" || u == "#0")
                problems.push_back("Runas " + u + " includes " +
                                   (u == "ALL" ? "every account, root too" : "root"));
        if (!e.runAsGroups.empty())
            problems.push_back("RunAsGroups " + e.runAsGroups[0] + " lets the hub pick the helper's group");
        if (!e.noPassword) problems.push_back("an entry lacks NOPASSWD, so sudo -n cannot use it");
    }
    if (!helperGranted) problems.insert(problems.begin(), "it does not allow " + helper);
    if (!problems.empty()) {
        std::string all;
        for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
        r.fail(name, "sudo -l for " + ctx.hub.name + ": " + all + whereGranted(ctx), fix);
        return;
    }
    std::string users;
    for (const auto& e : entries)
        for (const auto& u : e.runAsUsers) users += (users.empty() ? "" : ", ") + u;
    // Each allowed user must be in the Runas list (by name or group), or their spawn fails.
    std::vector<std::string> missing;
    for (const auto& u : ctx.settings.allowedUsers) {
        bool covered = false;
        for (const auto& e : entries)
            for (const auto& ru : e.runAsUsers) {
                if (ru == u) covered = true;
                if (ru[0] == '%')
                    for (const auto& g : hub::unixGroupsOf(u))
                        if (g == ru.substr(1)) covered = true;
            }
        if (!covered) missing.push_back(u);
    }
    const std::string found = fmt::format("{} may run only {}{} as {} without a password", ctx.hub.name,
                                          helper, anyArgs ? " (with any arguments)" : "", users);
    if (!missing.empty()) {
        std::string m;
        for (const auto& u : missing) m += (m.empty() ? "" : ", ") + u;
        r.warn(name, found + "; but allowed users " + m + " are not in the rule: their servers cannot start",
               fix);
    } else if (anyArgs) {
        r.warn(name, found + "; the generated rule allows only no arguments, --help, --version and --check",
               fix);
    } else {
        r.pass(name, found);
    }
}

}  // namespace

void checkSudo(Context& ctx, Report& r) {
    if (ctx.settings.spawnerClass != "sudo")
        r.warn("spawner",
               "Spawner is not SudoSpawner: the sudo checks below show what a sudo setup would need",
               "echo \"c.JupyterHub.spawner_class = 'sudospawner.SudoSpawner'\" >> jupyterhub_config.py");
    CommandResult list = runCommand({"/usr/bin/sudo", "-n", "-ll"});
    std::string listing = list.exitCode == 0 ? list.out : ctx.root.sudoListing;
    std::vector<Entry> entries = parseListing(listing);
    chooseSample(ctx, entries);
    const std::string fix = dropInFix(ctx, entries);

    if (!list.started) {
        r.fail("sudoers rule", "cannot run /usr/bin/sudo: " + list.err, "apt-get install sudo");
        return;
    }
    const auto listProblem = sudoEnvironmentProblem(ctx, list.err);
    if (list.exitCode != 0 && !listProblem.first.empty()) {
        r.fail("sudoers rule",
               "sudo -n -l as " + ctx.hub.name + " fails (" + list.err.substr(0, list.err.find('\n')) +
                   "): " + listProblem.first,
               listProblem.second);
    } else if (list.exitCode != 0 && entries.empty()) {
        r.fail("sudoers rule",
               "sudo -n -l as " + ctx.hub.name + " fails (" +
                   (list.err.empty() ? "no output" : list.err.substr(0, list.err.find('\n'))) +
                   "): no sudoers rule lets " + ctx.hub.name + " run anything without a password" +
                   whereGranted(ctx),
               fix);
    } else if (list.exitCode != 0) {
        // Only root could list it: the rule exists but sudo -n -l asks for a password.
        std::vector<Entry> copy = entries;
        checkRule(ctx, r, copy, fix);
        if (r.results().back().status == Status::Pass)
            r.fail("sudoers rule", "sudo -n -l as " + ctx.hub.name + " asks for a password", fix);
    } else {
        checkRule(ctx, r, entries, fix);
    }

    const std::string helper = ctx.settings.sudospawnerPath;
    if (ctx.sampleUser.empty()) {
        r.skip("sudo runs the helper",
               "no user to try: name one with --sample-user NAME (or set allowed_users)");
        r.skip("sudo refuses other commands", "no user to try: name one with --sample-user NAME");
    } else {
        const std::string who = ctx.sampleUser + " (" + ctx.sampleUserSource + ")";
        std::vector<std::string> argv = {"/usr/bin/sudo", "-n", "-u", ctx.sampleUser, helper, "--check"};
        CommandResult h = runCommand(argv);
        std::string err = h.err.substr(0, h.err.find('\n'));
        if (h.timedOut)
            r.fail("sudo runs the helper", joinArgv(argv) + " did not finish within 15 s",
                   "sudo -u " + ctx.hub.name + " " + joinArgv(argv));
        else if (h.exitCode == 0)
            r.pass("sudo runs the helper", joinArgv(argv) + " works without a password for " + who);
        else if (auto p = sudoEnvironmentProblem(ctx, h.err); !p.first.empty())
            r.fail("sudo runs the helper",
                   joinArgv(argv) + " is refused for " + who + ": " + err + ": " + p.first, p.second);
        else if (err.rfind("sudo:", 0) == 0)
            r.fail("sudo runs the helper", joinArgv(argv) + " is refused for " + who + ": " + err, fix);
        else
            r.fail("sudo runs the helper",
                   "the helper runs as " + ctx.sampleUser + " but its check fails: " + err,
                   "sudo -u " + ctx.sampleUser + " " + helper + " --check");

        std::vector<std::string> echo = {"/usr/bin/sudo", "-n",        "-u",
                                         ctx.sampleUser,  "/bin/echo", "hubd-check"};
        CommandResult e = runCommand(echo);
        if (e.exitCode == 0)
            r.fail("sudo refuses other commands",
                   joinArgv(echo) + " ran: the rule lets " + ctx.hub.name + " run more than the helper", fix);
        else
            r.pass("sudo refuses other commands",
                   joinArgv(echo) + " is refused (" + e.err.substr(0, e.err.find('\n')) + ")");
    }
    std::vector<std::string> asRoot = {"/usr/bin/sudo", "-n", "-u", "root", helper, "--version"};
    CommandResult rr = runCommand(asRoot);
    if (rr.exitCode == 0)
        r.fail("sudo refuses root", joinArgv(asRoot) + " ran: the hub can run the helper as root", fix);
    else
        r.pass("sudo refuses root", joinArgv(asRoot) + " is refused");
}

}  // namespace hubd::check
