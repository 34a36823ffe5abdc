// SPDX-License-Identifier: BSD-3-Clause
// sudospawner: who we are, what the child gets, and how it is started.
//
// Invariants:
// - The helper MUST run only as an ordinary user: real == effective == saved
//   uid and gid, uid != 0, uid >= min_uid, no capabilities in any set, and
//   setuid(0)/setgid(0) MUST fail.
// - The child environment MUST be built from nothing: HOME USER LOGNAME SHELL
//   (passwd of getuid()), PATH and LANG (policy), hub variables named in
//   allow_env, then the policy's setenv. Nothing from the helper's environment.
// - The child MUST get only fds 0 (/dev/null), 1 and 2 (the log pipe): no shell,
//   no login scripts, a new session, umask 077, cwd = home, rlimits and
//   no_new_privs applied before execve of the policy's absolute path.
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>

#include "sudospawner.h"

namespace sudospawner {
namespace {

bool holdsCapabilities() {
    cap_t current = cap_get_proc();
    cap_t empty = cap_init();
    bool holds = true;  // fail closed if libcap cannot tell
    if (current && empty) holds = cap_compare(current, empty) != 0;
    if (current) cap_free(current);
    if (empty) cap_free(empty);
    for (int c = 0; !holds && c < 64; ++c) {
        const int r = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0);
        if (r < 0) break;  // EINVAL: past the last capability
        holds = r == 1;
    }
    return holds;
}

// The child's failure report through the CLOEXEC pipe.
struct ExecReport {
    int stage;  // 1 chdir, 2 rlimit, 3 no_new_privs, 4 execve, 5 fd setup
    int err;
};

[[noreturn]] void childFail(int stage) {
    ExecReport r{stage, errno};
    (void)!write(3, &r, sizeof r);
    _exit(127);
}

// Runs in the child between fork and execve.
[[noreturn]] void execChild(const Policy& p, const Identity& id, int devNull, int logWrite, int errWrite,
                            char* const* argv, char* const* envp) {
    setsid();  // own session and process group: the hub's signals and terminal never reach it
    if (dup2(devNull, 0) < 0 || dup2(logWrite, 1) < 0 || dup2(logWrite, 2) < 0 || dup2(errWrite, 3) < 0 ||
        fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
        _exit(127);
    if (close_range(4, ~0U, 0) != 0) childFail(5);  // Linux 5.9+
    // SIGPIPE is ignored in the helper; ignored dispositions survive execve.
    for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    umask(077);
    if (chdir(id.home.c_str()) != 0) childFail(1);
    for (const auto& l : p.limits) {
        rlimit cur{};
        getrlimit(l.resource, &cur);
        const rlim_t v = std::min(l.value, cur.rlim_max);  // can only lower the hard limit
        rlimit want{v, v};
        if (setrlimit(l.resource, &want) != 0) childFail(2);
    }
    if (p.noNewPrivs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) childFail(3);
    execve(argv[0], argv, envp);
    childFail(4);
}

std::string execSentence(const Policy& p, const Identity& id, const std::string& cmd, ExecReport r) {
    const std::string err = std::strerror(r.err);
    switch (r.stage) {
        case 1:
            return "cannot enter home directory " + id.home + " of " + id.name + ": " + err;
        case 2:
            return "cannot apply the resource limits of " + p.file + ": " + err;
        case 3:
            return "cannot set no_new_privs: " + err;
        case 4:
            if (r.err == ENOENT) return cmd + " does not exist: install it or fix the profile in " + p.file;
            if (r.err == EACCES) return cmd + " is not executable by " + id.name + ": " + err;
            return "cannot execute " + cmd + ": " + err;
        default:
            return "cannot set up the server's file descriptors: " + err;
    }
}

}  // namespace

bool lookupIdentity(Identity& id, std::string& why) {
    passwd pw{}, *res = nullptr;
    std::vector<char> buf(16384);
    const uid_t uid = getuid();
    if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &res) != 0 || !res) {
        why = "uid " + std::to_string(uid) + " has no passwd entry: sudospawner runs only as a real user";
        return false;
    }
    id.uid = uid;
    id.gid = getgid();
    id.name = pw.pw_name;
    id.home = pw.pw_dir;
    id.shell = pw.pw_shell && *pw.pw_shell ? pw.pw_shell : "/bin/sh";
    if (id.home.empty() || id.home.front() != '/') {
        why = "user " + id.name + " has no absolute home directory in passwd";
        return false;
    }
    const int n = getgroups(0, nullptr);
    id.groups.resize(n > 0 ? static_cast<size_t>(n) : 0);
    if (n > 0 && getgroups(n, id.groups.data()) != n) id.groups.clear();
    return true;
}

std::string checkIdentity(uid_t minUid) {
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0) return "cannot read process ids";
    if (ru != eu || eu != su)
        return "real, effective and saved uids differ (" + std::to_string(ru) + "/" + std::to_string(eu) +
               "/" + std::to_string(su) + "): run sudospawner only through sudo -u USER, never setuid";
    if (rg != eg || eg != sg)
        return "real, effective and saved gids differ (" + std::to_string(rg) + "/" + std::to_string(eg) +
               "/" + std::to_string(sg) + "): run sudospawner only through sudo -u USER, never setgid";
    if (ru == 0)
        return "refusing to run as root (uid 0): the sudoers rule must exclude root as a target (runas "
               "!root)";
    Identity id;
    std::string why;
    if (!lookupIdentity(id, why)) return why;
    if (ru < minUid)
        return "user " + id.name + " has uid " + std::to_string(ru) + ", below min_uid " +
               std::to_string(minUid);
    if (holdsCapabilities())
        return "sudospawner holds capabilities: run it through sudo as an ordinary user, without file caps";
    // Verify we cannot get root back (a saved id or a capability we failed to see).
    if (setuid(0) == 0 || setgid(0) == 0 || seteuid(0) == 0 || setegid(0) == 0)
        return "sudospawner could regain root (setuid(0) succeeded): refusing to run";
    return {};
}

bool planChild(const Policy& p, const Identity& id, const hubproto::Spawn& req, ChildPlan& plan,
               std::string& why) {
    const Profile* prof = p.profile(req.profile);
    if (!prof) {
        why = "profile '" + req.profile + "' is not defined in " + p.file;
        return false;
    }
    for (const auto& e : req.env) {
        if (!p.allowed(e.name) || forbiddenHubVariable(e.name)) {
            why = "variable " + e.name + " is not in allow_env of " + p.file + ": the hub may not set it";
            return false;
        }
    }
    plan.argv = {prof->command};
    for (const auto& a : prof->args) {
        std::string out;
        for (size_t i = 0; i < a.size(); ++i) {
            if (a[i] != '%' || i + 1 == a.size() || (a[i + 1] != 'p' && a[i + 1] != '%'))
                out += a[i];
            else
                out += a[++i] == 'p' ? std::to_string(req.port) : "%";
        }
        plan.argv.push_back(out);
    }
    plan.env = {"HOME=" + id.home,   "USER=" + id.name, "LOGNAME=" + id.name,
                "SHELL=" + id.shell, "PATH=" + p.path,  "LANG=" + p.lang};
    for (const auto& e : req.env)  // jupyter-resource-usage shows MEM_LIMIT: the policy's, if it has one
        if (!p.memoryMax || e.name != "MEM_LIMIT") plan.env.push_back(e.name + "=" + e.value);
    if (p.memoryMax) plan.env.push_back("MEM_LIMIT=" + std::to_string(p.memoryMax));
    for (const auto& [k, v] : p.setEnv) plan.env.push_back(k + "=" + v);
    return true;
}

bool readProc(pid_t pid, ProcInfo& info) {
    // One directory fd: stat and status then describe the same process even if
    // the pid is reused meanwhile (reads fail with ESRCH instead).
    UniqueFd dir(open(("/proc/" + std::to_string(pid)).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) return false;
    auto slurp = [&](const char* name, std::string& out) {
        UniqueFd fd(openat(dir.get(), name, O_RDONLY | O_CLOEXEC));
        if (!fd.valid()) return false;
        char buf[4096];
        ssize_t n;
        while ((n = read(fd.get(), buf, sizeof buf)) > 0 && out.size() < 65536) out.append(buf, size_t(n));
        return n == 0;
    };
    std::string stat, status;
    if (!slurp("stat", stat) || !slurp("status", status)) return false;
    // Fields 4 (ppid), 5 (pgid) and 22 (start time) follow the last ')': the name may hold anything.
    // Skipped fields are %*u/%*d where proc(5) lists %lu/%ld: a suppressed conversion stores nothing, so a
    // length modifier would change nothing, and GCC's -Wformat (in -Wall) warns about one next to '*'.
    const auto paren = stat.rfind(')');
    unsigned long long start = 0;
    if (paren == std::string::npos ||
        std::sscanf(stat.c_str() + paren + 1,
                    " %*c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                    &info.ppid, &info.pgid, &start) != 3)
        return false;
    info.pid = pid;
    info.startTime = start;
    const auto u = status.find("\nUid:");
    if (u == std::string::npos) return false;
    unsigned long r = 0, e = 0, s = 0, fs = 0;
    if (std::sscanf(status.c_str() + u + 5, "%lu %lu %lu %lu", &r, &e, &s, &fs) != 4) return false;
    info.uid = (r == e && e == s && s == fs) ? static_cast<uid_t>(r) : static_cast<uid_t>(-1);
    info.memory = 0;
    for (const char* key : {"\nRssAnon:", "\nRssShmem:"})  // absent in zombies: 0
        if (const auto k = status.find(key); k != std::string::npos)
            info.memory += std::strtoull(status.c_str() + k + std::strlen(key), nullptr, 10) * 1024;
    return true;
}

bool startChild(const Policy& p, const Identity& id, const ChildPlan& plan, Child& child, ErrorCode& code,
                std::string& why) {
    // Everything execve needs is built before fork.
    std::vector<char*> argv, envp;
    for (const auto& a : plan.argv) argv.push_back(const_cast<char*>(a.c_str()));
    for (const auto& e : plan.env) envp.push_back(const_cast<char*>(e.c_str()));
    argv.push_back(nullptr);
    envp.push_back(nullptr);

    int logPipe[2] = {-1, -1}, errPipe[2] = {-1, -1};
    const bool piped = pipe2(logPipe, O_CLOEXEC) == 0 && pipe2(errPipe, O_CLOEXEC) == 0;
    UniqueFd logRead(logPipe[0]), logWrite(logPipe[1]), errRead(errPipe[0]), errWrite(errPipe[1]);
    UniqueFd devNull(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!piped || !devNull.valid()) {
        code = ErrorCode::Setup;
        why = std::string("cannot create the server's pipes: ") + std::strerror(errno);
        return false;
    }

    const pid_t pid = fork();
    if (pid < 0) {
        code = ErrorCode::Setup;
        why = std::string("fork failed: ") + std::strerror(errno);
        return false;
    }
    if (pid == 0) execChild(p, id, devNull.get(), logWrite.get(), errWrite.get(), argv.data(), envp.data());

    errWrite.reset();
    logWrite.reset();
    ExecReport report{};
    ssize_t n;
    do {
        n = read(errRead.get(), &report, sizeof report);
    } while (n < 0 && errno == EINTR);
    if (n != 0) {  // the child reported a failure (or the pipe broke): reap it, report it
        waitpid(pid, nullptr, 0);
        code = n == sizeof report && report.stage == 4 ? ErrorCode::Exec : ErrorCode::Setup;
        if (n != sizeof report) report = {5, EIO};
        why = execSentence(p, id, plan.argv[0], report);
        return false;
    }
    child.pid = pid;
    // The child is unreaped, so the pid cannot be reused before pidfd_open.
    // (glibc 2.36's <sys/pidfd.h> lacks extern "C", so the raw system call.)
    child.pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    if (!child.pidfd.valid() || !readProc(pid, child.info)) {
        const std::string err = std::strerror(errno);
        kill(-pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        code = ErrorCode::Internal;
        why = "cannot track the server (pidfd_open needs Linux 5.3): " + err;
        return false;
    }
    fcntl(logRead.get(), F_SETFL, O_NONBLOCK);
    child.logRead = std::move(logRead);
    return true;
}

}  // namespace sudospawner
