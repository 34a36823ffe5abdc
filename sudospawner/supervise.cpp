// SPDX-License-Identifier: BSD-3-Clause
// sudospawner: the resident supervisor (log, events, STOP) and the ATTACH relay.
//
// Invariants:
// - The supervisor MUST signal nothing but the process group it created, and only
//   while the group leader is unreaped (its zombie pins the pid and the pgid)
//   and /proc still shows the recorded start time.
// - Losing the hub (EOF, EPIPE, a protocol error) MUST NOT stop the server: the
//   channel is closed and supervision goes on until the server ends or STOP.
// - A socket peer MUST have our uid (SO_PEERCRED) and MUST name our exact pid,
//   start time and server name in ATTACH before it may send anything else.
// - The attaching instance MUST verify pid, start time, uid and the supervisor's
//   parenthood against /proc itself, and relay only well-formed, permitted frames.
// - Log content is untrusted bytes: bounded on every read, never interpreted.
// - Over memory_max, the supervisor MAY also kill one descendant: pinned by a
//   pidfd before it is measured, and still the child of the process it was
//   listed under, so the signal cannot reach a recycled pid.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <tuple>

#include "sudospawner.h"

namespace sudospawner {
namespace {

using hubproto::Message;
using hubproto::MsgType;

int64_t nowMs() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string quoted(const std::string& server) {
    return server.empty() ? "(default)" : "'" + server + "'";
}

std::string mib(uint64_t bytes) {
    return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB";  // rounded up: "held 301 MiB, over 300"
}

// Children of every thread of `pid` (Linux's CONFIG_PROC_CHILDREN, on in Debian).
std::vector<pid_t> childrenOf(pid_t pid) {
    std::vector<pid_t> out;
    const std::string task = "/proc/" + std::to_string(pid) + "/task/";
    const std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(task.c_str()), closedir);
    while (dirent* e = dir ? readdir(dir.get()) : nullptr) {
        UniqueFd fd(open((task + e->d_name + "/children").c_str(), O_RDONLY | O_CLOEXEC));
        std::string text(65536, '\0');
        const ssize_t n = fd.valid() ? read(fd.get(), text.data(), text.size() - 1) : -1;
        const char* at = text.c_str();
        for (char* end = nullptr; n > 0; at = end) {
            const long child = std::strtol(at, &end, 10);
            if (end == at) break;
            out.push_back(static_cast<pid_t>(child));
        }
    }
    return out;
}

// The per-user server log, rotated by size. Owned and written by the user only.
class LogFile {
public:
    bool open(const Identity& id, const Policy& p, const std::string& server, std::string& why) {
        max_ = p.logMaxSize;
        keep_ = p.logKeep;
        dir_.reset(::open(id.home.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir_.valid()) {
            why = "cannot open home directory " + id.home + " of " + id.name + ": " + std::strerror(errno);
            return false;
        }
        std::string rel = p.logFile;
        for (size_t slash; (slash = rel.find('/')) != std::string::npos; rel.erase(0, slash + 1)) {
            const std::string part = rel.substr(0, slash);
            if (mkdirat(dir_.get(), part.c_str(), 0700) != 0 && errno != EEXIST) return fail(why, part);
            UniqueFd next(openat(dir_.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!next.valid()) return fail(why, part);
            dir_ = std::move(next);
        }
        base_ = rel;
        if (!server.empty()) {  // server.log -> server-NAME.log
            const auto dot = base_.rfind('.');
            base_.insert(dot == std::string::npos || dot == 0 ? base_.size() : dot, "-" + server);
        }
        const auto lastSlash = p.logFile.rfind('/');
        path_ = id.home + "/" + (lastSlash == std::string::npos ? "" : p.logFile.substr(0, lastSlash + 1)) +
                base_;
        fd_.reset(
            openat(dir_.get(), base_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
        struct stat st {};
        if (!fd_.valid() || fstat(fd_.get(), &st) != 0) return fail(why, base_);
        if (!S_ISREG(st.st_mode) || st.st_uid != id.uid) {
            why = "log file " + path_ + " is not a regular file owned by " + id.name + ": remove it";
            return false;
        }
        size_ = static_cast<uint64_t>(st.st_size);
        return true;
    }
    void write(const char* data, size_t n) {
        if (size_ > 0 && size_ + n > max_) rotate();
        if (fd_.valid() && writeAll(fd_.get(), reinterpret_cast<const uint8_t*>(data), n, 1000)) size_ += n;
    }
    // The last `lines` lines, at most maxBytes of them (bytes, not interpreted).
    std::string tail(uint32_t lines, size_t maxBytes) const {
        UniqueFd fd(openat(dir_.get(), base_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        struct stat st {};
        if (!fd.valid() || fstat(fd.get(), &st) != 0) return {};
        const off_t from = std::max<off_t>(0, st.st_size - static_cast<off_t>(maxBytes));
        std::string buf(static_cast<size_t>(st.st_size - from), '\0');
        const ssize_t n = pread(fd.get(), buf.data(), buf.size(), from);
        buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
        size_t pos = buf.size();
        if (pos > 0 && buf[pos - 1] == '\n') --pos;
        for (uint32_t seen = 0; pos > 0; --pos)
            if (buf[pos - 1] == '\n' && ++seen == lines) break;
        return buf.substr(pos);
    }
    const std::string& path() const { return path_; }

private:
    bool fail(std::string& why, const std::string& part) {
        why = "cannot create the server log (" + part + " under " + path_ + "): " + std::strerror(errno) +
              ": check log_file in the policy and the home directory's permissions";
        return false;
    }
    void rotate() {
        if (keep_ == 0) {
            if (ftruncate(fd_.get(), 0) == 0) size_ = 0;
            return;
        }
        for (unsigned i = keep_; i > 1; --i)
            renameat(dir_.get(), (base_ + "." + std::to_string(i - 1)).c_str(), dir_.get(),
                     (base_ + "." + std::to_string(i)).c_str());
        renameat(dir_.get(), base_.c_str(), dir_.get(), (base_ + ".1").c_str());
        fd_.reset(openat(dir_.get(), base_.c_str(),
                         O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
        size_ = 0;
    }

    UniqueFd dir_, fd_;
    std::string base_, path_;
    uint64_t size_ = 0, max_ = 0;
    unsigned keep_ = 0;
};

// Which requests are permitted in which phase of a channel (OpenSSH mon_table style).
enum Phase : uint8_t { kFirst = 1, kAfterHello = 2, kServing = 4 };
struct Permit {
    MsgType type;
    uint8_t phases;
};
constexpr std::array<Permit, 6> kPermits{{
    {MsgType::Hello, kFirst},
    {MsgType::Spawn, kFirst | kAfterHello},
    {MsgType::Attach, kFirst | kAfterHello},
    {MsgType::Stop, kServing},
    {MsgType::ReadLog, kServing},
    {MsgType::Status, kServing},
}};

bool permitted(MsgType t, Phase ph) {
    return std::any_of(kPermits.begin(), kPermits.end(),
                       [&](const Permit& p) { return p.type == t && (p.phases & ph); });
}

std::string unpermitted(MsgType t) {
    return "message " + std::string(hubproto::typeName(t)) + " (type " + std::to_string(static_cast<int>(t)) +
           ") is not permitted here: first SPAWN or ATTACH (after an optional HELLO), then STOP, READ_LOG, "
           "STATUS";
}

// HELLO handling and the first real request. Returns nullopt with code/why on error.
std::optional<Message> firstRequest(int in, int out, int timeoutMs, ErrorCode& code, std::string& why) {
    Phase phase = kFirst;
    for (;;) {
        bool eof = false;
        auto d = readMsg(in, timeoutMs, eof);
        code = ErrorCode::Protocol;
        if (!d.message) {
            why = eof ? "the hub closed the channel before sending a request" : "bad request: " + d.error;
            return std::nullopt;
        }
        const MsgType t = hubproto::typeOf(*d.message);
        if (!permitted(t, phase)) {
            why = unpermitted(t);
            return std::nullopt;
        }
        if (t != MsgType::Hello) return d.message;
        if (std::get<hubproto::Hello>(*d.message).version != hubproto::kProtocolVersion) {
            why = "protocol version " + std::to_string(std::get<hubproto::Hello>(*d.message).version) +
                  " is not supported: this sudospawner speaks version " +
                  std::to_string(hubproto::kProtocolVersion) + "; install matching hubd and sudospawner";
            return std::nullopt;
        }
        sendMsg(out, hubproto::HelloAns{hubproto::kProtocolVersion, "sudospawner " HUBD_VERSION});
        phase = kAfterHello;
    }
}

sockaddr_un abstractAddress(const std::string& name, socklen_t& len) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path + 1, name.data(), std::min(name.size(), sizeof a.sun_path - 1));
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    return a;
}

std::optional<uint32_t> exitCodeOf(const siginfo_t& si) {
    return si.si_code == CLD_EXITED ? std::optional<uint32_t>(static_cast<uint32_t>(si.si_status))
                                    : std::nullopt;
}
std::optional<uint32_t> signalOf(const siginfo_t& si) {
    return si.si_code == CLD_EXITED ? std::nullopt
                                    : std::optional<uint32_t>(static_cast<uint32_t>(si.si_status));
}

class Supervisor {
public:
    Supervisor(const Policy& p, const Identity& id, std::string server, Child child, LogFile log,
               UniqueFd listen)
        : policy_(p),
          id_(id),
          server_(std::move(server)),
          child_(std::move(child)),
          log_(std::move(log)),
          listen_(std::move(listen)) {}

    [[noreturn]] void run() {
        for (;;) {
            pollfd fds[4] = {{child_.pidfd.get(), POLLIN, 0},
                             {child_.logRead.get(), POLLIN, 0},
                             {listen_.get(), POLLIN, 0},
                             {in_, POLLIN, 0}};
            int timeout = policy_.memoryMax > 0 ? 250 : 1000;  // memory and orphan-reaping period
            if (stopDeadline_ > 0)
                timeout = static_cast<int>(std::clamp<int64_t>(stopDeadline_ - nowMs(), 0, 1000));
            if (poll(fds, 4, timeout) < 0 && errno != EINTR)
                fatal(ErrorCode::Internal, std::string("poll failed: ") + std::strerror(errno));
            reapOrphans();
            if (fds[1].revents) drainLog(false);
            enforceMemoryMax();
            if (fds[0].revents) finish();
            if (stopDeadline_ > 0 && nowMs() >= stopDeadline_) escalate();
            if (fds[2].revents & POLLIN) acceptHub();
            if (in_ >= 0 && fds[3].revents) readHub();
        }
    }

private:
    void reapOrphans() {
        // As subreaper we inherit the server's orphans; reap them, but never the
        // leader here: its zombie keeps the process group id ours.
        for (;;) {
            siginfo_t si{};
            if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) return;
            if (si.si_pid == child_.pid) return;
            waitpid(si.si_pid, nullptr, 0);
        }
    }

    // Like earlyoom, but per server: the memory of all our descendants (as
    // subreaper, orphans stay ours) is summed; over memory_max the largest
    // process is killed, and the server's log and syslog say why.
    void enforceMemoryMax() {
        if (policy_.memoryMax == 0 || nowMs() < nextMemoryCheck_) return;
        nextMemoryCheck_ = nowMs() + 250;
        uint64_t total = 0;
        UniqueFd largest;
        ProcInfo big;
        std::vector<pid_t> parents{getpid()};
        for (size_t i = 0; i < parents.size() && parents.size() < 65536; ++i) {
            for (const pid_t pid : childrenOf(parents[i])) {
                UniqueFd fd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
                ProcInfo info;
                if (!fd.valid() || !readProc(pid, info) || info.ppid != parents[i]) continue;
                parents.push_back(pid);
                total += info.memory;
                if (info.memory > big.memory) std::tie(largest, big) = std::tuple(std::move(fd), info);
            }
        }
        if (total <= policy_.memoryMax || !largest.valid()) return;
        syscall(SYS_pidfd_send_signal, largest.get(), SIGKILL, nullptr, 0);
        const std::string why = "processes of server " + quoted(server_) + " of " + id_.name + " held " +
                                mib(total) + ", over memory_max " + mib(policy_.memoryMax) + " of " +
                                policy_.file + ": killed pid " + std::to_string(big.pid) + ", the largest (" +
                                mib(big.memory) + ")";
        log_.write(("sudospawner: " + why + "\n").c_str(), why.size() + 14);
        logDecision(LOG_WARNING, why);
    }

    void drainLog(bool final) {
        char buf[16384];
        const int64_t until = nowMs() + (final ? 200 : 0);
        for (int rounds = 0; child_.logRead.valid() && rounds < 64; ++rounds) {
            const ssize_t n = read(child_.logRead.get(), buf, sizeof buf);
            if (n > 0) {
                log_.write(buf, static_cast<size_t>(n));
            } else if (n == 0) {
                child_.logRead.reset();  // every writer is gone
            } else if (errno == EAGAIN && final && nowMs() < until) {
                pollfd p{child_.logRead.get(), POLLIN, 0};
                poll(&p, 1, 20);
            } else if (errno != EINTR) {
                return;
            }
        }
    }

    // Signals the group only if the leader is still ours: unreaped (pidfd open,
    // not yet waited for) and /proc shows the recorded start time.
    void signalGroup(int sig) {
        ProcInfo now;
        if (!readProc(child_.pid, now) || now.startTime != child_.info.startTime)
            fatal(ErrorCode::Internal, "server pid " + std::to_string(child_.pid) +
                                           " no longer matches its start time: refusing to signal");
        if (killpg(child_.pid, sig) != 0 && errno != ESRCH)
            fatal(ErrorCode::Internal, "cannot signal the server: " + std::string(std::strerror(errno)));
    }

    void escalate() {
        if (outcome_ == hubproto::StopOutcome::Killed) {
            stopDeadline_ = nowMs() + 1000;  // SIGKILL sent; the pidfd will fire
            return;
        }
        signalGroup(SIGKILL);
        outcome_ = hubproto::StopOutcome::Killed;
        stopDeadline_ = nowMs() + 1000;
    }

    [[noreturn]] void finish() {
        siginfo_t si{};
        if (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(child_.pidfd.get()), &si,
                   WEXITED | WNOWAIT) != 0)
            fatal(ErrorCode::Internal, std::string("waitid failed: ") + std::strerror(errno));
        // Leftovers in the group (kernels...) end with their server; the zombie
        // leader still pins the group id, so this reaches only our group.
        signalGroup(SIGKILL);
        siginfo_t reaped{};
        waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(child_.pidfd.get()), &reaped, WEXITED);
        drainLog(true);
        removeTlsFiles();
        const auto pid = static_cast<uint32_t>(child_.pid);
        const std::string how = exitCodeOf(si) ? "exit status " + std::to_string(si.si_status)
                                               : "signal " + std::to_string(si.si_status);
        // "killed" only if SIGKILL is what ended it (SIGTERM may have won the race).
        if (outcome_ == hubproto::StopOutcome::Killed && signalOf(si) != std::optional<uint32_t>(SIGKILL))
            outcome_ = hubproto::StopOutcome::Terminated;
        if (stopDeadline_ > 0) {
            logDecision(LOG_INFO, "stopped server " + quoted(server_) + " of " + id_.name + " (pid " +
                                      std::to_string(pid) + ", " + how + ")");
            if (in_ >= 0) sendMsg(out_, hubproto::Stopped{pid, outcome_, exitCodeOf(si), signalOf(si)});
            _exit(0);
        }
        logDecision(LOG_NOTICE, "server " + quoted(server_) + " of " + id_.name + " (pid " +
                                    std::to_string(pid) + ") exited by itself with " + how);
        if (in_ >= 0) sendMsg(out_, hubproto::Exited{pid, exitCodeOf(si), signalOf(si), log_.tail(20, 8192)});
        _exit(static_cast<int>(ErrorCode::ServerExited));
    }

    void detach(const std::string& why) {
        logDecision(LOG_INFO, "hub channel closed for server " + quoted(server_) + " of " + id_.name + ": " +
                                  why + "; the server keeps running");
        if (conn_.valid()) {
            conn_.reset();
        } else if (in_ == 0) {
            // The hub's pipes: release them, but keep fds 0-2 valid.
            UniqueFd null(open("/dev/null", O_RDWR | O_CLOEXEC));
            for (int fd = 0; fd <= 2 && null.valid(); ++fd) dup2(null.get(), fd);
        }
        in_ = out_ = -1;
        setReplyFd(-1);
        reader_ = FrameReader{};
    }

    // A protocol violation costs the hub its channel, never the server.
    void reject(ErrorCode code, const std::string& why) {
        logDecision(LOG_WARNING,
                    "refused request for server " + quoted(server_) + " of " + id_.name + ": " + why);
        sendMsg(out_, hubproto::Error{code, why.substr(0, hubproto::kMaxText)});
        detach("protocol error");
    }

    void readHub() {
        switch (reader_.readSome(in_)) {
            case FrameReader::Status::More:
                return;
            case FrameReader::Status::Eof:
                return detach("end of input (the hub went away)");
            case FrameReader::Status::Bad:
                return reject(ErrorCode::Protocol, "bad request: " + reader_.error());
            case FrameReader::Status::Ready:
                break;
        }
        auto d = reader_.take();
        if (!d.message) return reject(ErrorCode::Protocol, "bad request: " + d.error);
        const MsgType t = hubproto::typeOf(*d.message);
        if (!permitted(t, kServing)) return reject(ErrorCode::Protocol, unpermitted(t));
        const auto pid = static_cast<uint32_t>(child_.pid);
        if (t == MsgType::Status) {
            sendMsg(out_,
                    hubproto::StatusAns{pid, child_.info.startTime, true, static_cast<uint32_t>(getpid())});
        } else if (t == MsgType::ReadLog) {
            drainLog(false);
            sendMsg(out_, hubproto::Log{log_.tail(std::get<hubproto::ReadLog>(*d.message).lines,
                                                  hubproto::kMaxLogData)});
        } else if (t == MsgType::Stop && stopDeadline_ == 0) {
            const uint32_t maxMs = policy_.stopTimeout * 1000;
            const uint32_t grace =
                std::min(std::get<hubproto::Stop>(*d.message).graceMs.value_or(maxMs), maxMs);
            logDecision(LOG_INFO, "stop server " + quoted(server_) + " of " + id_.name + " (pid " +
                                      std::to_string(pid) + "): SIGTERM to its process group, grace " +
                                      std::to_string(grace) + " ms");
            signalGroup(SIGTERM);
            stopDeadline_ = nowMs() + grace;
        }
    }

    void acceptHub() {
        UniqueFd c(accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!c.valid()) return;
        ucred cr{};
        socklen_t len = sizeof cr;
        if (getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || cr.uid != id_.uid) {
            logDecision(LOG_WARNING, "refused a supervisor connection from uid " + std::to_string(cr.uid) +
                                         " (pid " + std::to_string(cr.pid) + "): not " + id_.name);
            return;
        }
        ErrorCode code{};
        std::string why;
        auto m = firstRequest(c.get(), c.get(), 2000, code, why);
        const auto* a = m ? std::get_if<hubproto::Attach>(&*m) : nullptr;
        if (m && !a) why = "only ATTACH may be sent to a running supervisor";
        if (a && (a->pid != static_cast<uint32_t>(child_.pid) || a->startTime != child_.info.startTime ||
                  a->serverName != server_)) {
            code = ErrorCode::NotFound;
            why = "this supervisor runs server " + quoted(server_) + " pid " + std::to_string(child_.pid) +
                  " (start time " + std::to_string(child_.info.startTime) + "), not the one named in ATTACH";
        } else if (a) {
            detach("another hub attached");
            conn_ = std::move(c);
            in_ = out_ = conn_.get();
            setReplyFd(out_);
            logDecision(LOG_INFO, "hub attached to server " + quoted(server_) + " of " + id_.name + " (pid " +
                                      std::to_string(child_.pid) + ", by pid " + std::to_string(cr.pid) +
                                      ")");
            sendMsg(out_, hubproto::Attached{static_cast<uint32_t>(child_.pid), child_.info.startTime,
                                             id_.uid, static_cast<uint32_t>(getpid()), server_});
            return;
        }
        logDecision(LOG_WARNING,
                    "refused ATTACH for server " + quoted(server_) + " of " + id_.name + ": " + why);
        sendMsg(c.get(), hubproto::Error{code == ErrorCode{} ? ErrorCode::Protocol : code, why});
    }

    const Policy& policy_;
    const Identity& id_;
    std::string server_;
    Child child_;
    LogFile log_;
    UniqueFd listen_, conn_;
    int in_ = 0, out_ = 1;  // the hub channel: stdin/stdout of sudo, or conn_
    FrameReader reader_;
    int64_t stopDeadline_ = 0, nextMemoryCheck_ = 0;
    hubproto::StopOutcome outcome_ = hubproto::StopOutcome::Terminated;
};

}  // namespace

std::string socketName(uid_t uid, const std::string& serverName) {
    return "hubd-sudospawner/" + std::to_string(uid) + "/" + serverName;
}

std::optional<Message> readFirstRequest(ErrorCode& code, std::string& why) {
    return firstRequest(0, 1, 60000, code, why);
}

void spawnAndSupervise(const Policy& p, const Identity& id, const hubproto::Spawn& req,
                       const ChildPlan& plan) {
    // The socket name doubles as the "one supervisor per server" lock.
    UniqueFd listen(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    socklen_t len = 0;
    const auto name = socketName(id.uid, req.serverName);
    const auto addr = abstractAddress(name, len);
    if (!listen.valid())
        fatal(ErrorCode::Setup, std::string("cannot create a socket: ") + std::strerror(errno));
    if (bind(listen.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
        if (errno == EADDRINUSE)
            fatal(ErrorCode::AlreadyRunning, "server " + quoted(req.serverName) + " of " + id.name +
                                                 " is already running (@" + name +
                                                 " is taken): STOP or ATTACH it");
        fatal(ErrorCode::Setup, "cannot bind @" + name + ": " + std::strerror(errno));
    }
    if (::listen(listen.get(), 4) != 0) fatal(ErrorCode::Setup, "cannot listen on @" + name);

    LogFile log;
    std::string why;
    if (!log.open(id, p, req.serverName, why)) fatal(ErrorCode::Setup, why);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        fatal(ErrorCode::Internal, "cannot become a subreaper");

    Child child;
    ErrorCode code{};
    if (!startChild(p, id, plan, child, code, why)) fatal(code, why);
    logDecision(LOG_INFO, "started server " + quoted(req.serverName) + " of " + id.name + " (uid " +
                              std::to_string(id.uid) + "): profile " + req.profile + ", " + plan.argv[0] +
                              ", pid " + std::to_string(child.pid) + ", log " + log.path());
    sendMsg(1, hubproto::Started{static_cast<uint32_t>(child.pid), child.info.startTime, id.uid, id.gid,
                                 req.serverName, log.path()});
    Supervisor(p, id, req.serverName, std::move(child), std::move(log), std::move(listen)).run();
}

void attachAndRelay(const Identity& id, const hubproto::Attach& req) {
    const std::string what =
        "server " + quoted(req.serverName) + " of " + id.name + " (pid " + std::to_string(req.pid) + ")";
    ProcInfo srv;
    if (!readProc(static_cast<pid_t>(req.pid), srv))
        fatal(ErrorCode::NotFound, what + " is not running: it exited; start it again with SPAWN");
    if (srv.startTime != req.startTime)
        fatal(ErrorCode::NotFound,
              "pid " + std::to_string(req.pid) + " now belongs to another process (start time " +
                  std::to_string(srv.startTime) + ", not " + std::to_string(req.startTime) + "): the " +
                  what.substr(0, what.find(" (pid")) + " is gone; start it again");
    if (srv.uid != id.uid)
        fatal(ErrorCode::NotFound, "pid " + std::to_string(req.pid) + " does not belong to " + id.name);

    UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    socklen_t len = 0;
    const auto addr = abstractAddress(socketName(id.uid, req.serverName), len);
    if (!sock.valid() || connect(sock.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0)
        fatal(ErrorCode::NotFound, "no supervisor is running for " + what +
                                       ": it was not started by sudospawner, or its supervisor died");
    ucred cr{};
    socklen_t crLen = sizeof cr;
    ProcInfo sup;
    if (getsockopt(sock.get(), SOL_SOCKET, SO_PEERCRED, &cr, &crLen) != 0 || cr.uid != id.uid ||
        cr.pid != srv.ppid || !readProc(cr.pid, sup) || sup.uid != id.uid)
        fatal(ErrorCode::NotFound, "the process listening for " + what +
                                       " is not its parent supervisor running as " + id.name +
                                       ": refusing to attach");
    if (!sendMsg(sock.get(), req))
        fatal(ErrorCode::NotFound, "the supervisor of " + what + " did not accept ATTACH");
    bool eof = false;
    auto d = readMsg(sock.get(), 5000, eof);
    if (d.message) {
        if (const auto* e = std::get_if<hubproto::Error>(&*d.message)) fatal(e->code, e->message);
    }
    const auto* a = d.message ? std::get_if<hubproto::Attached>(&*d.message) : nullptr;
    if (!a || a->pid != req.pid || a->startTime != req.startTime || a->uid != id.uid ||
        a->supervisorPid != static_cast<uint32_t>(cr.pid) || a->serverName != req.serverName)
        fatal(ErrorCode::NotFound, "the supervisor of " + what + " gave no matching ATTACHED reply");
    sendMsg(1, *d.message);
    logDecision(LOG_INFO, "attached to " + what + " via supervisor pid " + std::to_string(cr.pid));

    // Relay: decode every frame, forward only permitted requests and replies.
    FrameReader fromHub, fromSup;
    int last = -1;  // exit status once the supervisor closes: from its final message
    for (;;) {
        pollfd fds[2] = {{0, POLLIN, 0}, {sock.get(), POLLIN, 0}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR) fatal(ErrorCode::Internal, "poll failed");
        if (fds[0].revents) {
            const auto st = fromHub.readSome(0);
            if (st == FrameReader::Status::Eof) _exit(0);  // hub gone: the supervisor keeps the server
            if (st == FrameReader::Status::Bad) fatal(ErrorCode::Protocol, "bad request: " + fromHub.error());
            if (st == FrameReader::Status::Ready) {
                auto m = fromHub.take();
                if (!m.message) fatal(ErrorCode::Protocol, "bad request: " + m.error);
                if (!permitted(hubproto::typeOf(*m.message), kServing))
                    fatal(ErrorCode::Protocol, unpermitted(hubproto::typeOf(*m.message)));
                if (!sendMsg(sock.get(), *m.message)) fatal(ErrorCode::NotFound, "the supervisor went away");
            }
        }
        if (fds[1].revents) {
            const auto st = fromSup.readSome(sock.get());
            if (st == FrameReader::Status::Eof) {
                if (last >= 0) _exit(last);
                fatal(ErrorCode::NotFound, "the supervisor of " + what + " closed the channel");
            }
            if (st == FrameReader::Status::Bad) fatal(ErrorCode::Internal, "bad reply: " + fromSup.error());
            if (st == FrameReader::Status::Ready) {
                auto m = fromSup.take();
                if (!m.message || static_cast<uint8_t>(hubproto::typeOf(*m.message)) < 0x80)
                    fatal(ErrorCode::Internal, "bad reply from the supervisor: " + m.error);
                sendMsg(1, *m.message);
                const MsgType t = hubproto::typeOf(*m.message);
                if (t == MsgType::Stopped)
                    last = 0;
                else if (t == MsgType::Exited)
                    last = static_cast<int>(ErrorCode::ServerExited);
                else if (t == MsgType::Error)
                    last = static_cast<int>(std::get<hubproto::Error>(*m.message).code);
                else
                    last = -1;
            }
        }
    }
}

}  // namespace sudospawner
