// SPDX-License-Identifier: BSD-3-Clause
// Launching the sudospawner helper and speaking its framed protocol.
#include "spawn/helper_channel.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "hubcore/log.h"

namespace hubd {

using hubd::http::UniqueFd;

namespace {

constexpr size_t kMaxStderr = 8 * 1024;
constexpr size_t kMaxPendingOut = 1024 * 1024;

bool makePipe(UniqueFd& readEnd, UniqueFd& writeEnd) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    readEnd.reset(fds[0]);
    writeEnd.reset(fds[1]);
    return true;
}

void setNonBlocking(int fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

}  // namespace

HelperChannel::HelperChannel(hubd::http::EventLoop& loop, MessageFn onMessage, ClosedFn onClosed)
    : loop_(loop),
      onMessage_(std::move(onMessage)),
      onClosed_(std::move(onClosed)),
      alive_(std::make_shared<bool>(true)) {}

std::unique_ptr<HelperChannel> HelperChannel::launch(hubd::http::EventLoop& loop,
                                                     const std::vector<std::string>& argv,
                                                     MessageFn onMessage, ClosedFn onClosed,
                                                     std::string& error) {
    if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
        error = "the helper command must be an absolute path";
        return nullptr;
    }
    std::unique_ptr<HelperChannel> ch(new HelperChannel(loop, std::move(onMessage), std::move(onClosed)));
    UniqueFd inRead, inWrite, outRead, outWrite, errRead, errWrite;
    if (!makePipe(inRead, inWrite) || !makePipe(outRead, outWrite) || !makePipe(errRead, errWrite)) {
        error = std::string("cannot create pipes for the helper: ") + std::strerror(errno);
        return nullptr;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, inRead.get(), 0);
    posix_spawn_file_actions_adddup2(&actions, outWrite.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, errWrite.get(), 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Its own session: a signal for hubd's process group (Ctrl-C, a service
    // manager) must not stop the helpers, which keep servers across restarts.
    // The mask is reset because hubd blocks SIGTERM/SIGINT for its signalfd.
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    // sudo resets the environment anyway; give it nothing of hubd's.
    char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    char lang[] = "LANG=C.UTF-8";
    char* env[] = {path, lang, nullptr};
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), env);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        error = "cannot run " + argv[0] + ": " + std::strerror(rc);
        return nullptr;
    }
    ch->pid_ = pid;
    ch->pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    ch->stdin_ = std::move(inWrite);
    ch->stdout_ = std::move(outRead);
    ch->stderrFd_ = std::move(errRead);
    for (int fd : {ch->stdin_.get(), ch->stdout_.get(), ch->stderrFd_.get()}) setNonBlocking(fd);
    HelperChannel* self = ch.get();
    loop.watch(ch->stdout_.get(), EPOLLIN, [self](uint32_t) { self->onReadable(); });
    loop.watch(ch->stderrFd_.get(), EPOLLIN, [self](uint32_t) { self->onStderr(); });
    if (ch->pidfd_) loop.watch(ch->pidfd_.get(), EPOLLIN, [self](uint32_t) { self->onExit(); });
    return ch;
}

HelperChannel::~HelperChannel() {
    *alive_ = false;
    detach();
}

void HelperChannel::detach() {
    if (stdout_) loop_.unwatch(stdout_.get());
    if (stderrFd_) loop_.unwatch(stderrFd_.get());
    if (stdin_ && !out_.empty()) loop_.unwatch(stdin_.get());
    stdout_.reset();
    stderrFd_.reset();
    stdin_.reset();
    closed_ = true;
    if (pidfd_) {
        loop_.unwatch(pidfd_.get());
        pidfd_.reset();
    }
    if (pid_ > 0 && !exited_) {
        // Reap later without blocking: the helper outlives this channel when
        // the hub lets a server run on (it exits once its stdin closes).
        pid_t pid = pid_;
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == 0) {
            std::thread([pid] {
                int st = 0;
                ::waitpid(pid, &st, 0);
            }).detach();
        }
        exited_ = true;
    }
}

bool HelperChannel::send(const hubproto::Message& message) {
    if (closed_ || !stdin_) return false;
    auto frame = hubproto::encode(message);
    if (!frame) return false;
    if (out_.size() + frame->size() > kMaxPendingOut) return false;
    bool wasEmpty = out_.empty();
    out_.append(reinterpret_cast<const char*>(frame->data()), frame->size());
    if (wasEmpty) flush();
    return true;
}

void HelperChannel::flush() {
    while (!out_.empty()) {
        ssize_t n = ::write(stdin_.get(), out_.data(), out_.size());
        if (n > 0) {
            out_.erase(0, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            loop_.watch(stdin_.get(), EPOLLOUT, [this](uint32_t) {
                loop_.unwatch(stdin_.get());
                flush();
            });
            return;
        }
        out_.clear();  // EPIPE: the helper is gone; onReadable reports it
        return;
    }
}

void HelperChannel::onReadable() {
    char buf[16 * 1024];
    auto alive = alive_;
    while (true) {
        ssize_t n = ::read(stdout_.get(), buf, sizeof buf);
        if (n > 0) {
            in_.append(buf, static_cast<size_t>(n));
            // Frames are length-prefixed: decode every complete one.
            while (in_.size() >= hubproto::kHeaderSize) {
                std::string why;
                auto header = std::span<const uint8_t, hubproto::kHeaderSize>(
                    reinterpret_cast<const uint8_t*>(in_.data()), hubproto::kHeaderSize);
                auto length = hubproto::decodeLength(header, &why);
                if (!length) return close("the helper sent a malformed frame: " + why);
                if (in_.size() < hubproto::kHeaderSize + *length) break;
                auto decoded = hubproto::decodeBody(std::span<const uint8_t>(
                    reinterpret_cast<const uint8_t*>(in_.data()) + hubproto::kHeaderSize, *length));
                in_.erase(0, hubproto::kHeaderSize + *length);
                if (!decoded.message) return close("the helper sent a malformed message: " + decoded.error);
                onMessage_(*decoded.message);
                if (!*alive || closed_) return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        // EOF: sudo or the helper ended the conversation.
        onStderr();
        // sudo and the helper put the cause on the first line.
        std::string tail = stderr_.substr(0, stderr_.find('\n'));
        while (!tail.empty() && (tail.back() == '\r' || tail.back() == ' ')) tail.pop_back();
        return close(tail.empty() ? std::string("the helper ended the conversation") : hub::safe(tail, 500));
    }
}

void HelperChannel::onStderr() {
    if (!stderrFd_) return;
    char buf[4096];
    while (true) {
        ssize_t n = ::read(stderrFd_.get(), buf, sizeof buf);
        if (n > 0) {
            if (stderr_.size() < kMaxStderr)
                stderr_.append(buf, std::min(static_cast<size_t>(n), kMaxStderr - stderr_.size()));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) {
            loop_.unwatch(stderrFd_.get());
            stderrFd_.reset();
        }
        return;
    }
}

void HelperChannel::onExit() {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG) == 0 && info.si_pid == pid_) {
        exited_ = true;
        exitStatus_ = info.si_status;
        loop_.unwatch(pidfd_.get());
        pidfd_.reset();
    }
}

void HelperChannel::close(const std::string& why) {
    if (closed_) return;
    auto cb = std::move(onClosed_);
    detach();
    if (cb) cb(why);
}

}  // namespace hubd
