// SPDX-License-Identifier: BSD-3-Clause
// Steps 1 and 4 of docs/install.md, and the seeds' rules for what a user's
// server runs: the helper binary, its root-owned policy (read with the
// helper's own loader), the single-user command, the PATH it gets, and the
// Python environment it runs in (no directory of it writable by users).
#include <fmt/format.h>
#include <ftw.h>
#include <sys/stat.h>

#include <fstream>
#include <set>
#include <sstream>

#include "check/check.h"
#include "check/fs.h"
#include "check/run.h"
#include "sudospawner.h"

namespace hubd::check {
namespace {

// "FILE ...: run chmod 644 FILE" -> ("FILE ...", "chmod 644 FILE").
std::pair<std::string, std::string> splitRun(const std::string& sentence) {
    auto at = sentence.find(": run ");
    if (at == std::string::npos) return {sentence, ""};
    std::string fix = sentence.substr(at + 6);
    if (auto as = fix.find(" as root"); as != std::string::npos) fix.erase(as, 8);
    return {sentence.substr(0, at), fix};
}

std::vector<std::string> splitPath(const std::string& path) {
    std::vector<std::string> dirs;
    std::stringstream ss(path);
    for (std::string d; std::getline(ss, d, ':');)
        if (!d.empty()) dirs.push_back(d);
    return dirs;
}

const sudospawner::Profile* chosenProfile(const Context& ctx, const sudospawner::Policy& p) {
    if (const auto* prof = p.profile(ctx.settings.sudospawnerProfile)) return prof;
    return nullptr;
}

// Finds `name` in the policy's PATH, as the server's `env` would.
std::string searchPath(const std::string& name, const std::string& path) {
    for (const auto& d : splitPath(path)) {
        std::string candidate = d + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return "";
}

struct Shebang {
    std::string interpreter;  // resolved absolute path, "" if not a script
    std::string flags;        // "-s", "-I", ...
    std::string text;
};

Shebang readShebang(const std::string& command, const std::string& path) {
    Shebang s;
    std::ifstream in(command);
    std::string line;
    if (!std::getline(in, line) || line.rfind("#!", 0) != 0) return s;
    s.text = line;
    std::stringstream words(line.substr(2));
    std::string interp, arg;
    words >> interp;
    if (interp == "/usr/bin/env" || interp == "/bin/env") {
        words >> arg;
        while (arg.rfind("-", 0) == 0 && words >> arg) {
        }
        interp = searchPath(arg, path);
    }
    std::getline(words, s.flags);
    s.interpreter = interp;
    return s;
}

// Entries below a site-packages directory that a user could change.
struct TreeScan {
    std::vector<Finding> findings;
    size_t entries = 0, count = 0;
};
TreeScan* gScan = nullptr;  // nftw has no user pointer

int visit(const char* path, const struct stat* st, int, FTW*) {
    if (++gScan->entries > 300000) return 1;  // enough: report what was found
    if (auto f = nonRootWritable(path, *st, false)) {
        ++gScan->count;
        if (gScan->findings.size() < 3) gScan->findings.push_back(*f);
    }
    return 0;
}

void checkPython(const Context& ctx, const sudospawner::Policy& policy, const std::string& command,
                 Report& r) {
    const std::string name = "single-user Python";
    Shebang sb = readShebang(command, policy.path);
    if (sb.text.empty()) {
        r.pass(name, command + " is not a script (no #! line): no interpreter to check");
        return;
    }
    if (sb.interpreter.empty() || ::access(sb.interpreter.c_str(), X_OK) != 0) {
        r.fail(
            name,
            command + " starts with '" + sb.text + "', but that interpreter is not found in " + policy.path,
            "head -1 " + command + "  # and install that interpreter, or fix the #! line");
        return;
    }
    std::vector<Finding> bad = chainWritable(sb.interpreter);
    CommandResult py = runCommand(
        {sb.interpreter, "-I", "-c",
         "import sys, site\n"
         "print(sys.prefix); print(sys.base_prefix); print(int(site.ENABLE_USER_SITE is not False))\n"
         "for p in site.getsitepackages() + sys.path: print(p)\n"},
        20000);
    if (py.exitCode != 0) {
        r.fail(name, "running " + sb.interpreter + " -I failed: " + py.err.substr(0, 200),
               sb.interpreter + " -I -c 'import site; print(site.getsitepackages())'");
        return;
    }
    std::vector<std::string> lines;
    std::stringstream ss(py.out);
    for (std::string l; std::getline(ss, l);) lines.push_back(l);
    if (lines.size() < 3) lines.resize(3);
    const std::string prefix = lines[0], basePrefix = lines[1];
    std::vector<std::string> dirs = {prefix};
    for (size_t i = 3; i < lines.size(); ++i) dirs.push_back(lines[i]);
    TreeScan scan;
    gScan = &scan;
    std::set<std::string> done;
    for (const auto& d : dirs) {
        struct stat st {};
        if (d.empty() || !done.insert(d).second || ::stat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        for (auto& f : chainWritable(d)) bad.push_back(f);
        if (d != prefix) ::nftw(d.c_str(), visit, 32, FTW_PHYS);  // the whole package tree
    }
    gScan = nullptr;
    for (auto& f : scan.findings) bad.push_back(f);
    const std::string env = prefix == basePrefix ? "the system Python " + prefix : "the virtualenv " + prefix;
    if (!bad.empty()) {
        std::string more = scan.count > scan.findings.size() ? fmt::format(" (and {} more entries below)",
                                                                           scan.count - scan.findings.size())
                                                             : "";
        r.fail(name,
               sb.interpreter + " (" + env + "): " + joinWhat(bad) + more +
                   ": a user could change the server every other user's browser talks to",
               joinFix(bad));
        return;
    }
    // Python loads ~/.local/lib/pythonX.Y/site-packages (the user's own
    // `pip install --user`) first, unless told not to.
    bool userSiteOff = sb.flags.find("-s") != std::string::npos || sb.flags.find("-I") != std::string::npos;
    for (const auto& [k, v] : policy.setEnv)
        if (k == "PYTHONNOUSERSITE" && !v.empty()) userSiteOff = true;
    const std::string found = fmt::format("{} ({}), {} package directories: none writable by users",
                                          sb.interpreter, env, done.size());
    if (!userSiteOff)
        r.warn(name,
               found +
                   "; but the server also loads each user's ~/.local site-packages, where the user can "
                   "install a replacement for any of its packages",
               "echo 'setenv PYTHONNOUSERSITE=1' >> " + ctx.policyPath);
    else
        r.pass(name, found + ", user site-packages off");
}

}  // namespace

void checkPolicy(Context& ctx, Report& r) {
    // The helper: what sudo runs as every user, so only root may change it.
    const std::string helper = ctx.settings.sudospawnerPath;
    struct stat st {};
    if (::stat(helper.c_str(), &st) != 0) {
        r.fail("helper", helper + " (SudoSpawner.sudospawner_path) does not exist",
               "meson install -C build  # installs " + helper);
    } else if (auto bad = chainWritable(helper); !bad.empty()) {
        r.fail("helper", joinWhat(bad) + ": whoever can change it runs code as every user", joinFix(bad));
    } else if (!(st.st_mode & S_IXOTH)) {
        r.fail("helper", helper + " is not executable (mode " + octal(st.st_mode) + ")",
               "chmod 755 " + helper);
    } else {
        r.pass("helper", helper + " owned by root, mode " + octal(st.st_mode) +
                             ", no directory above it writable by users");
    }

    // The policy: the helper's own loader says what is wrong, and its
    // directories above the one it checks must be root's too.
    const std::string pol = ctx.policyPath;
    sudospawner::PolicyResult pr = sudospawner::loadPolicy(pol);
    std::string dir = pol.substr(0, pol.rfind('/'));
    std::vector<Finding> above =
        chainWritable(dir.substr(0, dir.rfind('/')).empty() ? "/" : dir.substr(0, dir.rfind('/')));
    if (!pr.error.empty()) {
        auto [what, fix] = splitRun(pr.error);
        if (what.find("does not exist") != std::string::npos)
            fix = "install -o root -g root -m 0644 " + pol + ".example " + pol;
        else if (fix.empty())
            fix = "editor " + pol + "  # then check it with: sudospawner --check";
        r.fail("helper policy", what, fix);
    } else if (!above.empty()) {
        r.fail("helper policy", joinWhat(above) + ": whoever can change it can replace the policy",
               joinFix(above));
    } else {
        ::stat(pol.c_str(), &st);
        r.pass("helper policy", fmt::format("{} owned by root, mode {}, {} profile(s), valid", pol,
                                            octal(st.st_mode), pr.policy.profiles.size()));
    }
    if (!pr.error.empty()) {
        r.skip("single-user command", "the helper policy did not load");
        r.skip("single-user PATH", "the helper policy did not load");
        r.skip("single-user Python", "the helper policy did not load");
        return;
    }
    const sudospawner::Policy& policy = pr.policy;

    const sudospawner::Profile* prof = chosenProfile(ctx, policy);
    if (!prof) {
        r.fail("single-user command",
               "the policy has no profile '" + ctx.settings.sudospawnerProfile + "' (SudoSpawner.profile)",
               "echo 'profile " + ctx.settings.sudospawnerProfile +
                   " /usr/bin/jupyterhub-singleuser --port=%p' >> " + pol);
    } else {
        const std::string cmd = prof->command;
        if (::stat(cmd.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
            std::string there = searchPath(cmd.substr(cmd.rfind('/') + 1), policy.path);
            if (there.empty()) there = searchPath("jupyterhub-singleuser", policy.path);
            r.fail("single-user command",
                   "profile " + prof->name + " runs " + cmd + ", which does not exist" +
                       (there.empty() ? "" : " (there is " + there + ")"),
                   there.empty() ? "apt-get install python3-jupyterhub  # or fix the profile line in " + pol
                                 : "sed -i 's|" + cmd + "|" + there + "|' " + pol);
        } else if (auto bad = chainWritable(cmd); !bad.empty()) {
            r.fail("single-user command", joinWhat(bad) + ": a user could replace what every server runs",
                   joinFix(bad));
        } else if ((st.st_mode & 0111) != 0111) {
            r.fail("single-user command",
                   cmd + " is not executable by every user (mode " + octal(st.st_mode) + ")",
                   "chmod 755 " + cmd);
        } else {
            r.pass("single-user command", "profile " + prof->name + ": " + cmd + " (mode " +
                                              octal(st.st_mode) +
                                              "), owned by root, no directory above it writable by users");
        }
    }

    // PATH: what the server and its kernels find first.
    std::vector<Finding> bad;
    for (const auto& d : splitPath(policy.path))
        for (auto& f : chainWritable(d)) bad.push_back(f);
    if (!bad.empty())
        r.fail("single-user PATH",
               "path " + policy.path + ": " + joinWhat(bad) +
                   ": a user could put a program there that the server runs instead of the real one",
               joinFix(bad));
    else
        r.pass("single-user PATH", "path " + policy.path + ": no directory writable by users");

    if (prof && ::access(prof->command.c_str(), R_OK) == 0)
        checkPython(ctx, policy, prof->command, r);
    else
        r.skip("single-user Python", "no readable single-user command to inspect");
}

void checkKernelTransport(Context& ctx, Report& r) {
    const std::string name = "kernel transport";
    sudospawner::PolicyResult pr = sudospawner::loadPolicy(ctx.policyPath);
    const sudospawner::Profile* prof = pr.error.empty() ? chosenProfile(ctx, pr.policy) : nullptr;
    if (!prof) {
        r.skip(name, "no profile to read");
        return;
    }
    for (const auto& a : prof->args)
        if (a == "--KernelManager.transport=ipc" || a == "--KernelManager.transport='ipc'") {
            r.pass(name,
                   "profile " + prof->name + " sets --KernelManager.transport=ipc: kernels use Unix sockets");
            return;
        }
    // System-wide Jupyter configuration applies even with user configuration disabled.
    for (const char* dir : {"/etc/jupyter", "/usr/local/etc/jupyter", "/usr/etc/jupyter"}) {
        for (const char* file :
             {"jupyter_notebook_config.py", "jupyter_server_config.py", "jupyter_config.py",
              "jupyter_notebook_config.json", "jupyter_server_config.json"}) {
            std::ifstream in(std::string(dir) + "/" + file);
            for (std::string line; std::getline(in, line);)
                if (line.find("transport") != std::string::npos && line.find("ipc") != std::string::npos &&
                    line.find('#') != 0) {
                    r.pass(name, std::string("set to ipc in ") + dir + "/" + file);
                    return;
                }
        }
    }
    r.warn(name,
           "kernels of profile " + prof->name +
               " use TCP on localhost, which every local user can connect to; the seeds advise "
               "KernelManager.transport = 'ipc' (Unix sockets, owner only)",
           "sed -i 's|^profile " + prof->name + " .*|& --KernelManager.transport=ipc|' " + ctx.policyPath);
}

}  // namespace hubd::check
