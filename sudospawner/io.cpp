// SPDX-License-Identifier: BSD-3-Clause
// sudospawner: frame I/O with the hub, syslog, and the single way to fail.
//
// Invariants:
// - Every frame MUST be bounded (hubproto::kMaxFrame) before any byte of its
//   body is read; a reader MUST NOT read past the frame it is assembling.
// - fatal() MUST end the process (never returns), and MUST NOT log secrets:
//   callers pass sentences that never contain variable values.
#include <poll.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "sudospawner.h"

namespace sudospawner {
namespace {

int gReplyFd = -1;

}  // namespace

void setReplyFd(int fd) {
    gReplyFd = fd;
}

void logDecision(int priority, const std::string& sentence) {
    syslog(LOG_AUTHPRIV | priority, "%s", sentence.c_str());
}

void fatal(ErrorCode code, const std::string& sentence) {
    removeTlsFiles();  // a server that never started, or whose supervisor is gone, needs none
    logDecision(LOG_ERR, sentence);
    std::fprintf(stderr, "sudospawner: %s\n", sentence.c_str());
    if (gReplyFd >= 0) {
        // Best effort: the sentence must fit a frame, so trim it.
        hubproto::Error e{code, sentence.substr(0, hubproto::kMaxText)};
        sendMsg(gReplyFd, e);
    }
    _exit(static_cast<int>(code));
}

bool writeAll(int fd, const uint8_t* data, size_t len, int timeoutMs) {
    while (len > 0) {
        pollfd p{fd, POLLOUT, 0};
        const int r = poll(&p, 1, timeoutMs);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;  // a hub that stops reading is treated as gone
        const ssize_t n = write(fd, data, len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return false;
        data += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

bool sendMsg(int fd, const hubproto::Message& m) {
    auto frame = hubproto::encode(m);
    if (!frame) {
        // Our own message broke a bound: a bug, never the hub's input.
        logDecision(LOG_ERR, "internal error: refusing to send an invalid " +
                                 std::string(hubproto::typeName(hubproto::typeOf(m))) + " frame");
        return false;
    }
    return writeAll(fd, frame->data(), frame->size(), 5000);
}

FrameReader::Status FrameReader::readSome(int fd) {
    if (buf_.size() == need_ && need_ > hubproto::kHeaderSize) return Status::Ready;
    const size_t have = buf_.size();
    buf_.resize(need_);
    ssize_t n;
    do {
        n = read(fd, buf_.data() + have, need_ - have);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) {
        buf_.resize(have);
        return Status::More;
    }
    if (n <= 0) {
        buf_.resize(have);
        if (n == 0 && have == 0) return Status::Eof;
        error_ = n == 0 ? "message truncated: the peer closed the channel inside a frame"
                        : std::string("read failed: ") + std::strerror(errno);
        return Status::Bad;
    }
    buf_.resize(have + static_cast<size_t>(n));
    if (buf_.size() == hubproto::kHeaderSize && need_ == hubproto::kHeaderSize) {
        auto len = hubproto::decodeLength(std::span<const uint8_t, 4>(buf_.data(), 4), &error_);
        if (!len) return Status::Bad;
        need_ = hubproto::kHeaderSize + *len;
    }
    return buf_.size() == need_ && need_ > hubproto::kHeaderSize ? Status::Ready : Status::More;
}

hubproto::Decoded FrameReader::take() {
    auto d = hubproto::decodeFrame(buf_);
    buf_.clear();
    need_ = hubproto::kHeaderSize;
    return d;
}

hubproto::Decoded readMsg(int fd, int timeoutMs, bool& eof) {
    FrameReader r;
    eof = false;
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        const int n = poll(&p, 1, timeoutMs);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0)
            return {std::nullopt, "no complete message within " + std::to_string(timeoutMs / 1000) + " s"};
        if (n < 0) return {std::nullopt, std::string("poll failed: ") + std::strerror(errno)};
        switch (r.readSome(fd)) {
            case FrameReader::Status::More:
                continue;
            case FrameReader::Status::Ready:
                return r.take();
            case FrameReader::Status::Eof:
                eof = true;
                return {std::nullopt, "the peer closed the channel"};
            case FrameReader::Status::Bad:
                return {std::nullopt, r.error()};
        }
    }
}

}  // namespace sudospawner
