// SPDX-License-Identifier: BSD-3-Clause
// `hubd sudoers --hub-user NAME (--group GROUP | --users A,B) [--helper PATH]`
// prints the drop-in of sudoers.d/hubd for this installation. Names are
// checked strictly, so the output can never carry sudoers syntax of its own.
#include "sudoers_command.h"

#include <fmt/format.h>

#include "hubcore/build_paths.h"

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace hubd {
namespace {

constexpr const char* kUsage =
    "Usage: hubd sudoers --hub-user NAME (--group GROUP | --users NAME[,NAME...]) [--helper PATH]\n"
    "Prints a sudoers drop-in that lets the hub account run only the sudospawner\n"
    "helper, only as the given users (or members of GROUP), never as root.\n"
    "Install it with: hubd sudoers ... > /tmp/hubd && visudo -cf /tmp/hubd &&\n"
    "  install -m 0440 -o root -g root /tmp/hubd /etc/sudoers.d/hubd\n";

// Debian's default NAME_REGEX, ^[a-z_][-a-z0-9_.]*$: no upper case, so no
// sudoers keyword (ALL) or alias name can pass, nor anything sudoers parses.
bool safeName(const std::string& s) {
    if (s.empty() || s.size() > 32 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return false;
    return s != "root";
}

bool safePath(const std::string& s) {
    if (s.empty() || s[0] != '/' || s.size() > 255) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.' || c == '/'))
            return false;
    return s.find("..") == std::string::npos;
}

int usage(const std::string& problem) {
    if (!problem.empty()) std::cerr << "hubd sudoers: " << problem << "\n";
    std::cerr << kUsage;
    return 2;
}

}  // namespace

int sudoersCommand(int argc, char** argv) {
    std::string hubUser, group, helper = hub::kSudospawnerPath;  // where meson installed it
    std::vector<std::string> users;
    for (int i = 0; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&](std::string& out) {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        std::string v;
        if (arg == "--help" || arg == "-h") {
            std::cout << kUsage;
            return 0;
        } else if (arg == "--hub-user" && value(v)) {
            hubUser = v;
        } else if (arg == "--group" && value(v)) {
            group = v;
        } else if (arg == "--users" && value(v)) {
            std::stringstream ss(v);
            for (std::string name; std::getline(ss, name, ',');)
                if (!name.empty()) users.push_back(name);
        } else if (arg == "--helper" && value(v)) {
            helper = v;
        } else {
            return usage("unexpected argument '" + arg + "'");
        }
    }
    if (!safeName(hubUser))
        return usage("--hub-user needs the account hubd runs as (a plain name, not root)");
    if (group.empty() == users.empty()) return usage("give exactly one of --group and --users");
    if (!group.empty() && !safeName(group)) return usage("--group '" + group + "' is not a plain group name");
    for (const auto& u : users)
        if (!safeName(u) || u == hubUser)
            return usage("--users: '" + u + "' is not a plain user name (or is the hub)");
    if (!safePath(helper)) return usage("--helper must be an absolute path of plain characters");

    std::string runas;
    if (!group.empty()) {
        runas = "%" + group;
    } else {
        for (const auto& u : users) runas += (runas.empty() ? "" : ", ") + u;
    }
    std::cout << fmt::format(
        "# sudoers drop-in for hubd, made by `hubd sudoers`. Install with\n"
        "#   visudo -cf FILE && install -m 0440 -o root -g root FILE /etc/sudoers.d/hubd\n"
        "# The hub account {hub} may run only the sudospawner helper, with no\n"
        "# arguments (or the informational --help/--version/--check), only as the\n"
        "# users below, never as root.\n"
        "Runas_Alias HUBD_USERS = {runas}, !root, !#0\n"
        "Cmnd_Alias HUBD_HELPER = {helper} \"\", {helper} --help, {helper} --version, {helper} --check\n"
        "Defaults!HUBD_HELPER env_reset, !setenv, !requiretty, !use_pty, closefrom=3\n"
        "Defaults:{hub} env_reset, !setenv\n"
        "{hub} ALL=(HUBD_USERS) NOPASSWD: HUBD_HELPER\n",
        fmt::arg("hub", hubUser), fmt::arg("runas", runas), fmt::arg("helper", helper));
    return 0;
}

}  // namespace hubd
