// SPDX-License-Identifier: BSD-3-Clause
// SELinux (the seed guide's troubleshooting): the mode, and whether hubd's
// policy module is loaded. Systems without SELinux (Debian's default) skip.
#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "check/check.h"

namespace hubd::check {

void checkSelinux(Context& ctx, Report& r) {
    std::ifstream enforce("/sys/fs/selinux/enforce");
    std::string mode;
    if (!enforce || !std::getline(enforce, mode)) {
        r.skip("SELinux", "SELinux is not enabled on this system (no /sys/fs/selinux)");
        return;
    }
    const std::string modeName = mode == "1" ? "enforcing" : "permissive";
    // Root listed the modules; otherwise ask the kernel whether it knows hubd_t.
    bool loaded = false;
    if (ctx.root.gathered && !ctx.root.selinuxModules.empty()) {
        loaded = ctx.root.selinuxModules.find("\nhubd") != std::string::npos ||
                 ctx.root.selinuxModules.rfind("hubd", 0) == 0;
    } else {
        int fd = ::open("/sys/fs/selinux/context", O_RDWR | O_CLOEXEC);
        const char ctxName[] = "system_u:system_r:hubd_t:s0";
        loaded = fd >= 0 && ::write(fd, ctxName, sizeof ctxName) > 0;
        if (fd >= 0) ::close(fd);
    }
    if (loaded)
        r.pass("SELinux", modeName + ", the hubd policy module is loaded");
    else if (mode == "1")
        r.warn("SELinux",
               "enforcing, and the hubd policy module is not loaded: sudo from hubd may be denied "
               "(\"Permission denied\")",
               "make -f /usr/share/selinux/devel/Makefile -C selinux hubd.pp && semodule -i selinux/hubd.pp");
    else
        r.pass("SELinux", "permissive: nothing is denied (the hubd module is not loaded)");
}

}  // namespace hubd::check
