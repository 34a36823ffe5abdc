// SPDX-License-Identifier: BSD-3-Clause
// Step 2 of docs/install.md: the hub account exists, is not root, has no
// login shell and no usable password (the seed guide's `useradd -r rhea`).
#include <fmt/format.h>
#include <shadow.h>
#include <unistd.h>

#include "check/check.h"
#include "check/fs.h"

namespace hubd::check {
namespace {

bool noLoginShell(const std::string& shell) {
    return shell == "/usr/sbin/nologin" || shell == "/sbin/nologin" || shell == "/bin/false" ||
           shell == "/usr/bin/false";
}

// "!..." and "*..." (and "!!") cannot match any password; "" needs none at all.
bool passwordUsable(const std::string& field) {
    return field.empty() || (field[0] != '!' && field[0] != '*');
}

}  // namespace

void checkHubUser(Context& ctx, Report& r) {
    const HubUser& h = ctx.hub;
    std::string groups;
    gid_t list[64];
    int n = ::getgroups(64, list);
    for (int i = 0; i < n; ++i) groups += (groups.empty() ? "" : " ") + groupName(list[i]);
    if (h.uid == 0)
        r.fail("hub user", "the checks run as root: hubd must run as its own unprivileged account",
               "useradd --system --user-group --no-create-home --shell /usr/sbin/nologin hubd");
    else
        r.pass("hub user", fmt::format("{} (uid {}, gid {}, groups {})", h.name, h.uid, h.gid, groups));

    if (noLoginShell(h.shell))
        r.pass("hub user shell", h.name + " has no login shell (" + h.shell + ")");
    else
        r.fail("hub user shell",
               fmt::format("{} has the login shell {}: anyone who gets its password or key gets a shell",
                           h.name, h.shell.empty() ? "(empty: /bin/sh)" : h.shell),
               "usermod -s /usr/sbin/nologin " + h.name);

    // Root read it before dropping; as the hub user, shadow access (step 3) lets us read it too.
    std::optional<std::string> field = ctx.root.shadowPassword;
    if (!field) {
        if (spwd* sp = ::getspnam(h.name.c_str())) field = sp->sp_pwdp ? sp->sp_pwdp : "";
    }
    if (!field)
        r.skip("hub user password",
               "cannot read /etc/shadow as " + h.name + ": run as root with --as " + h.name);
    else if (field->empty())
        r.fail("hub user password", h.name + " has an empty password: anyone may log in as it without one",
               "passwd -l " + h.name);
    else if (passwordUsable(*field))
        r.fail("hub user password",
               h.name + " has a usable password: the hub account should not be able to log in",
               "passwd -l " + h.name);
    else
        r.pass("hub user password", h.name + " has no usable password (locked in /etc/shadow)");
}

}  // namespace hubd::check
