// SPDX-License-Identifier: BSD-3-Clause
// `hubd check`: the command line, root's part (facts only root may read,
// then a real drop to the hub user), and the checks in the order of
// docs/install.md.
#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <shadow.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <regex>

#include "check/check.h"
#include "check/run.h"
#include "hubcore/build_paths.h"
#include "hubcore/log.h"

namespace hubd::check {
namespace {

constexpr const char* kUsage =
    R"(Usage: hubd check [-f CONFIG] [--as USER] [--sample-user NAME] [--interactive] [--json]
                  [--Class.trait=VALUE ...]

Checks every step of the installation (docs/install.md) on this system, as the
hub user: one line per check, PASS, FAIL, WARN or SKIP, what was found, and
for FAIL and WARN the command that fixes it. Exits 0 when nothing FAILs.

  -f, --config FILE   the configuration hubd runs with (default:
                      ./jupyterhub_config.py if it exists); run from the
                      directory hubd runs in: relative paths start there
  --as USER           run as root, read what only root can (/etc/shadow,
                      sudoers), then become USER (the hub user) for the rest
  --sample-user NAME  the user to try sudo with (default: from allowed_users,
                      allowed_groups or the sudoers rule)
  --interactive       also sign in once through PAM (name and password are
                      read from the terminal, never from stdin)
  --json              print the results as JSON
)";

bool nameWord(const std::string& text, const std::string& name) {
    std::regex word("(^|[^A-Za-z0-9_.-])" + name + "([^A-Za-z0-9_.-]|$)");
    return std::regex_search(text, word);
}

// sudoers and the files of its includedir, as sudo reads them (no '.' or '~' names).
std::vector<std::string> sudoersNaming(const std::string& name) {
    std::vector<std::string> files = {"/etc/sudoers"}, found;
    if (DIR* d = ::opendir("/etc/sudoers.d")) {
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n.find('.') == std::string::npos && n.back() != '~') files.push_back("/etc/sudoers.d/" + n);
        }
        ::closedir(d);
    }
    for (const auto& f : files) {
        std::ifstream in(f);
        for (std::string line; std::getline(in, line);) {
            if (line.rfind("#", 0) == 0 && line.rfind("#include", 0) != 0) continue;
            if (nameWord(line, name)) {
                found.push_back(f);
                break;
            }
        }
    }
    std::sort(found.begin(), found.end());
    return found;
}

// becomes `pw` for good: supplementary groups from /etc/group, then gid, then uid.
std::string dropTo(const passwd* pw) {
    if (::initgroups(pw->pw_name, pw->pw_gid) != 0) return "initgroups failed";
    if (::setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0) return "setresgid failed";
    if (::setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0) return "setresuid failed";
    if (pw->pw_uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) return "root could be regained";
    return "";
}

std::string policyOfHelper(const std::string& helper) {
    CommandResult help = runCommand({helper, "--help"}, 5000);
    auto at = help.out.find("decided by ");
    if (help.exitCode != 0 || at == std::string::npos) return hub::kSudospawnerPolicy;
    std::string path = help.out.substr(at + 11);
    path = path.substr(0, path.find_first_of(" \n"));
    if (!path.empty() && path.back() == '.') path.pop_back();
    return path.empty() || path[0] != '/' ? hub::kSudospawnerPolicy : path;
}

}  // namespace

void gatherRootFacts(Context& ctx) {
    ctx.root.gathered = true;
    if (spwd* sp = ::getspnam(ctx.hub.name.c_str())) ctx.root.shadowPassword = sp->sp_pwdp ? sp->sp_pwdp : "";
    CommandResult l = runCommand({"/usr/bin/sudo", "-n", "-ll", "-U", ctx.hub.name});
    if (l.exitCode == 0) ctx.root.sudoListing = l.out;
    ctx.root.sudoersFiles = sudoersNaming(ctx.hub.name);
    if (::access("/sys/fs/selinux/enforce", F_OK) == 0 && ::access("/usr/sbin/semodule", X_OK) == 0)
        ctx.root.selinuxModules = runCommand({"/usr/sbin/semodule", "-l"}, 60000).out;
}

int checkCommand(int argc, char** argv) {
    Context ctx;
    std::string as;
    bool json = false;
    std::vector<std::string> overrides;
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](std::string& out) {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        std::string v;
        if (a == "--help" || a == "-h") {
            std::cout << kUsage;
            return 0;
        } else if ((a == "-f" || a == "--config") && value(v)) {
            ctx.configFile = v;
        } else if (a.rfind("--config=", 0) == 0) {
            ctx.configFile = a.substr(9);
        } else if (a == "--as" && value(v)) {
            as = v;
        } else if (a == "--sample-user" && value(v)) {
            ctx.sampleUser = v;
            ctx.sampleUserSource = "--sample-user";
        } else if (a == "--interactive") {
            ctx.interactive = true;
        } else if (a == "--json") {
            json = true;
        } else if (a.rfind("--", 0) == 0 && a.find('.') != std::string::npos) {
            overrides.push_back(a);
        } else {
            std::cerr << "hubd check: unexpected argument '" << hub::safe(a, 100) << "'\n" << kUsage;
            return 2;
        }
    }

    // Who the checks run as: the hub user itself, or root becoming it.
    const passwd* pw = ::getpwuid(::getuid());
    if (!as.empty()) {
        if (::geteuid() != 0) {
            std::cerr << "hubd check: --as needs root; as the hub user run just: hubd check\n";
            return 2;
        }
        pw = ::getpwnam(as.c_str());
        if (!pw) {
            std::cout
                << "FAIL  hub user: there is no user " << hub::safe(as, 64) << "\n"
                << "      fix: useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "
                << hub::safe(as, 64) << "\n";
            return 1;
        }
    } else if (::geteuid() == 0) {
        std::cerr << "hubd check: run it as the hub user (sudo -u hubd hubd check), or as root with "
                     "--as HUBUSER (hubd check --as hubd)\n";
        return 2;
    }
    if (!pw) {
        std::cerr << "hubd check: the current uid has no passwd entry\n";
        return 2;
    }
    ctx.hub = {pw->pw_name, pw->pw_dir ? pw->pw_dir : "", pw->pw_shell ? pw->pw_shell : "", pw->pw_uid,
               pw->pw_gid};
    if (!as.empty()) {
        gatherRootFacts(ctx);
        if (std::string why = dropTo(pw); !why.empty()) {
            std::cerr << "hubd check: could not become " << ctx.hub.name << ": " << why << "\n";
            return 2;
        }
    }

    // The configuration, read as the hub user reads it.
    Report r;
    if (!ctx.configFile && ::access("jupyterhub_config.py", F_OK) == 0)
        ctx.configFile = "jupyterhub_config.py";
    hub::LoadResult loaded = hub::loadSettings(ctx.configFile, overrides);
    ctx.settings = loaded.settings;
    const std::string cfgName = ctx.configFile ? *ctx.configFile : "(no file: defaults)";
    if (!loaded.ok()) {
        std::string first;
        for (const auto& d : loaded.diagnostics)
            if (d.severity == hub::ConfigDiagnostic::Severity::Error && first.empty()) first = d.format();
        r.fail("configuration", cfgName + ": " + first,
               "hubd --check-config" + (ctx.configFile ? " -f " + *ctx.configFile : std::string()));
    } else {
        r.pass("configuration",
               cfgName + " loads (" + std::to_string(loaded.diagnostics.size()) + " warning(s))");
    }
    ctx.policyPath = policyOfHelper(ctx.settings.sudospawnerPath);

    checkHubUser(ctx, r);
    checkPam(ctx, r);
    checkPolicy(ctx, r);
    checkSudo(ctx, r);
    checkState(ctx, r);
    checkTls(ctx, r);
    checkPorts(ctx, r);
    checkSelinux(ctx, r);
    checkKernelTransport(ctx, r);

    std::cout << (json ? r.json() : r.text()) << std::flush;
    return r.anyFailed() ? 1 : 0;
}

}  // namespace hubd::check
