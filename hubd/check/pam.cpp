// SPDX-License-Identifier: BSD-3-Clause
// Step 3 of docs/install.md: PAM without root. pam_unix run by an
// unprivileged process reads /etc/shadow itself, so the hub user must be
// able to (group shadow); the PAM service hubd uses must exist. With
// --interactive, one real sign-in through hubd's own PAM code.
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include "check/check.h"
#include "check/fs.h"
#include "hubcore/auth.h"

namespace hubd::check {
namespace {

// One line from the terminal (never stdin: a script cannot pipe a password
// in by accident), without echo when `secret`.
std::optional<std::string> askTty(const char* prompt, bool secret) {
    int fd = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    (void)!::write(fd, prompt, std::strlen(prompt));
    termios old{};
    bool restore = secret && ::tcgetattr(fd, &old) == 0;
    if (restore) {
        termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    std::string line;
    char c;
    while (::read(fd, &c, 1) == 1 && c != '\n' && line.size() < 512) line += c;
    if (restore) {
        ::tcsetattr(fd, TCSAFLUSH, &old);
        (void)!::write(fd, "\n", 1);
    }
    ::close(fd);
    return line;
}

}  // namespace

void checkPam(Context& ctx, Report& r) {
    const hub::Settings& s = ctx.settings;
    if (s.authenticatorClass != "pam") {
        r.skip("PAM shadow access", "the authenticator is not PAMAuthenticator");
        r.skip("PAM service", "the authenticator is not PAMAuthenticator");
        r.skip("PAM password test", "the authenticator is not PAMAuthenticator");
        return;
    }
    // pam_unix (without a setuid unix_chkpwd for other users) reads the shadow file directly.
    struct stat st {};
    const bool haveShadow = ::stat("/etc/shadow", &st) == 0;
    int fd = ::open("/etc/shadow", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ::close(fd);
        r.pass("PAM shadow access", ctx.hub.name + " can read /etc/shadow (" + groupName(st.st_gid) +
                                        ", mode " + octal(st.st_mode) + "): pam_unix can check passwords");
    } else if (!haveShadow) {
        r.skip("PAM shadow access", "no /etc/shadow on this system");
    } else if (groupName(st.st_gid) != "shadow" || !(st.st_mode & S_IRGRP)) {
        r.fail("PAM shadow access",
               "/etc/shadow is " + userName(st.st_uid) + ":" + groupName(st.st_gid) + " " +
                   octal(st.st_mode) + ": no group may read it, so PAM cannot check passwords as " +
                   ctx.hub.name,
               "groupadd -f shadow && chgrp shadow /etc/shadow && chmod g+r /etc/shadow && usermod -a -G "
               "shadow " +
                   ctx.hub.name);
    } else {
        r.fail("PAM shadow access",
               ctx.hub.name + " cannot read /etc/shadow (group shadow): every PAM password check will fail",
               "usermod -a -G shadow " + ctx.hub.name);
    }

    const std::string service = "/etc/pam.d/" + s.pamService;
    if (::access(service.c_str(), R_OK) == 0)
        r.pass("PAM service", "PAMAuthenticator.service '" + s.pamService + "': " + service);
    else if (::access("/etc/pam.d", F_OK) == 0)
        r.fail("PAM service",
               service + " does not exist (PAMAuthenticator.service '" + s.pamService +
                   "'): PAM falls back to /etc/pam.d/other, which refuses everyone",
               "cp /etc/pam.d/login " + service);
    else
        r.skip("PAM service", "no /etc/pam.d on this system");

    if (!ctx.interactive) {
        r.skip("PAM password test", "run with --interactive to sign in once with a real password");
        return;
    }
    auto user = askTty("hubd check: user name to sign in as: ", false);
    auto password = user ? askTty("password (not shown): ", true) : std::nullopt;
    if (!user || !password) {
        r.skip("PAM password test", "no terminal to ask for a password on (/dev/tty)");
        return;
    }
    hub::AuthResult res = hub::makeAuthenticator(s)->authenticate(*user, *password);
    std::fill(password->begin(), password->end(), '\0');
    if (res.ok)
        r.pass("PAM password test", "signed in as " + res.username + " through PAM service " + s.pamService);
    else
        r.fail("PAM password test", "PAM refused " + *user + ": " + res.failureReason,
               "journalctl --since -10min | grep -i pam");
}

}  // namespace hubd::check
