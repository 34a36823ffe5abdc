// SPDX-License-Identifier: BSD-3-Clause
// sudospawner: the interface between the helper's few source files (doas.h-sized).
//
// Invariants:
// - Everything the hub can influence MUST arrive as a decoded hubproto::Message;
//   everything else (command, argv, uid, cwd, variable names) MUST come from the
//   root-owned Policy or from the passwd entry of getuid().
// - Functions declared here are the only non-static ones; all helpers stay in
//   anonymous namespaces in their .cpp file.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "spawn_proto.h"

namespace sudospawner {

using hubproto::ErrorCode;

// Owns one file descriptor (fd, pidfd, socket); closes it exactly once.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(o.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }
    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int release() { return std::exchange(fd_, -1); }
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

// ---- policy (policy.cpp)

struct Profile {
    std::string name;
    std::string command;            // absolute path, run with execve (no PATH search, no shell)
    std::vector<std::string> args;  // fixed; "%p" expands to the port, "%%" to "%"
};

struct Limit {
    int resource;  // RLIMIT_*
    rlim_t value;  // RLIM_INFINITY for "unlimited"
    std::string name;
};

struct Policy {
    std::string file;  // where it was read from (for messages)
    uid_t minUid = 1000;
    std::string path = "/usr/local/bin:/usr/bin:/bin";
    std::string lang = "C.UTF-8";
    bool noNewPrivs = true;
    std::vector<Profile> profiles;
    std::vector<std::string> allowEnv;                        // names the hub may set
    std::vector<std::pair<std::string, std::string>> setEnv;  // fixed by the policy
    std::vector<Limit> limits;
    std::string logFile = ".local/state/hubd/server.log";  // relative to $HOME
    uint64_t logMaxSize = 10 * 1024 * 1024;
    unsigned logKeep = 3;
    unsigned stopTimeout = 10;  // seconds: default and maximum STOP grace period
    uint64_t memoryMax = 0;     // bytes the server's processes may hold together; 0 = no total

    const Profile* profile(std::string_view name) const;
    bool allowed(std::string_view envName) const;
};

struct PolicyResult {
    Policy policy;
    std::string error;  // "FILE:LINE: sentence", or a file-safety sentence; empty = ok
};

// Parses policy text; any error makes the whole policy invalid.
PolicyResult parsePolicy(std::string_view text, const std::string& file);
// Opens `path` (O_NOFOLLOW, fstat: root-owned regular file, not group/other
// writable, in a root-owned directory not group/other writable) and parses it.
PolicyResult loadPolicy(const std::string& path);
// Names the policy may never put in allow_env (loader, interpreter and shell
// hooks, identity variables the helper sets itself).
bool forbiddenHubVariable(std::string_view name);

// ---- identity and the child (spawn.cpp)

struct Identity {
    uid_t uid = 0;
    gid_t gid = 0;
    std::string name, home, shell;
    std::vector<gid_t> groups;
};

// Refusal sentence for the running process, or "" if it may act (minUid from policy).
std::string checkIdentity(uid_t minUid);
// The passwd entry of getuid(); error sentence in `why` if there is none.
bool lookupIdentity(Identity& id, std::string& why);

struct ChildPlan {
    std::vector<std::string> argv;
    std::vector<std::string> env;  // "NAME=value", built from nothing
};
// Validates a SPAWN against the policy; on refusal returns false with a sentence.
bool planChild(const Policy& p, const Identity& id, const hubproto::Spawn& req, ChildPlan& plan,
               std::string& why);

struct ProcInfo {
    pid_t pid = 0;
    pid_t ppid = 0;
    pid_t pgid = 0;
    uint64_t startTime = 0;  // field 22 of /proc/PID/stat
    uid_t uid = 0;           // all four of real/effective/saved/fs must equal it, else ~0
    uint64_t memory = 0;     // bytes of RssAnon + RssShmem: what the process itself holds
};
bool readProc(pid_t pid, ProcInfo& info);

struct Child {
    pid_t pid = -1;
    UniqueFd pidfd;    // pins the pid (and so the process group id) until reaped
    UniqueFd logRead;  // the server's stdout+stderr, non-blocking
    ProcInfo info;
};
// Forks and execs `plan` in a new session. On failure returns false with the
// error class and a sentence ("/usr/bin/x does not exist"); nothing is left running.
bool startChild(const Policy& p, const Identity& id, const ChildPlan& plan, Child& child, ErrorCode& code,
                std::string& why);

// ---- internal TLS files (tls_files.cpp)

// With TLS material in `req`: writes it to a fresh 0700 directory in /tmp and
// adds JUPYTERHUB_SSL_KEYFILE/CERTFILE/CLIENT_CA to plan.env. False with a sentence.
bool writeTlsFiles(const hubproto::Spawn& req, ChildPlan& plan, std::string& why);
// Removes that directory (no-op without one): when the server ends, and in fatal().
void removeTlsFiles();

// ---- frames and failure (io.cpp)

// Where fatal() sends its ERROR frame; -1 before the protocol starts.
void setReplyFd(int fd);
[[noreturn]] void fatal(ErrorCode code, const std::string& sentence);
void logDecision(int priority, const std::string& sentence);  // syslog LOG_AUTHPRIV, no secrets
bool writeAll(int fd, const uint8_t* data, size_t len, int timeoutMs);
bool sendMsg(int fd, const hubproto::Message& m);

// Incremental frame reader: never reads past the frame it is assembling.
class FrameReader {
public:
    enum class Status { More, Ready, Eof, Bad };
    Status readSome(int fd);
    hubproto::Decoded take();  // after Ready
    const std::string& error() const { return error_; }

private:
    std::vector<uint8_t> buf_;
    size_t need_ = hubproto::kHeaderSize;
    std::string error_;
};
// Blocks up to timeoutMs for one whole message. eof set when the peer closed first.
hubproto::Decoded readMsg(int fd, int timeoutMs, bool& eof);

// ---- supervision (supervise.cpp)

std::string socketName(uid_t uid, const std::string& serverName);
// Reads the first request from stdin (answering HELLO): SPAWN or ATTACH, else
// nullopt with the error class and sentence.
std::optional<hubproto::Message> readFirstRequest(ErrorCode& code, std::string& why);
// Starts the server, reports STARTED and supervises it until it ends. Never returns.
[[noreturn]] void spawnAndSupervise(const Policy& p, const Identity& id, const hubproto::Spawn& req,
                                    const ChildPlan& plan);
// Verifies the server and its supervisor, then relays frames. Never returns.
[[noreturn]] void attachAndRelay(const Identity& id, const hubproto::Attach& req);

}  // namespace sudospawner
