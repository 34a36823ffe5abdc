// SPDX-License-Identifier: BSD-3-Clause
// Transport: how bytes move on a client socket, either the plain fd or a TLS
// session (an OpenSSL SSL*) on it. The HTTP server's Connection and the
// proxy's Exchange read and write the client through it, and a Takeover
// carries it from one to the other with the socket.
//
// The plain case is one predictable branch and the same syscall as before;
// nothing is virtual. The TLS case keeps recv(2)/send(2) semantics so that
// callers do not change shape: >0 bytes, 0 end of stream, -1 with errno
// (EAGAIN: try again once the socket is ready for what events() asks).
//
// MUST: a caller that wants to read asks events() for its epoll interest
// and, after a read that filled its buffer or a pause in reading, checks
// pending(): bytes OpenSSL has already decrypted do not make the fd readable.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>

typedef struct ssl_st SSL;  // as <openssl/types.h> declares it

namespace hubd::http {

struct SslDeleter {
    void operator()(SSL* ssl) const noexcept;
};
using UniqueSsl = std::unique_ptr<SSL, SslDeleter>;

class Transport {
public:
    Transport() = default;
    // A server-side TLS session already bound to its socket (SSL_set_fd);
    // the handshake happens inside the first read.
    explicit Transport(UniqueSsl ssl) noexcept : ssl_(std::move(ssl)) {}
    Transport(Transport&&) noexcept = default;
    Transport& operator=(Transport&&) noexcept = default;
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;
    ~Transport() = default;

    bool tls() const noexcept { return ssl_ != nullptr; }

    ssize_t read(int fd, char* buffer, size_t size) {
        if (!ssl_) return ::recv(fd, buffer, size, 0);
        return tlsRead(buffer, size);
    }
    ssize_t write(int fd, const char* data, size_t size) {
        if (!ssl_) return ::send(fd, data, size, MSG_NOSIGNAL);  // no SIGPIPE
        iovec iov{const_cast<char*>(data), size};
        return tlsWritev(&iov, 1);
    }
    // Like sendmsg(2) with these iovecs; a short count means the socket is full.
    ssize_t writev(int fd, const iovec* iov, int count) {
        if (!ssl_) {
            msghdr msg{};
            msg.msg_iov = const_cast<iovec*>(iov);
            msg.msg_iovlen = static_cast<size_t>(count);
            return ::sendmsg(fd, &msg, MSG_NOSIGNAL);  // writev would raise SIGPIPE
        }
        return tlsWritev(iov, count);
    }
    // Looks without taking: 1 if a byte is waiting, 0 at end of stream, -1
    // with errno (EAGAIN: nothing yet).
    ssize_t peek(int fd) {
        char c;
        if (!ssl_) return ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        return tlsPeek();
    }
    // No more writing: close_notify for TLS (best effort), then FIN.
    void shutdownWrite(int fd);

    // The epoll interest for what the owner wants: TLS may need to write to
    // make a read progress (handshake, key update) or read to make a write
    // progress.
    uint32_t events(uint32_t wanted) const noexcept {
        if (!ssl_) return wanted;
        return tlsEvents(wanted);
    }
    // Whether a read should be tried after these epoll events.
    bool readable(uint32_t events) const noexcept {
        return (events & EPOLLIN) || (readWantsWrite_ && (events & EPOLLOUT));
    }
    // The last write stopped because TLS needs the peer's bytes first (a
    // client's handshake): EPOLLOUT alone cannot make it progress.
    bool writeBlockedOnRead() const noexcept { return ssl_ && writeWantsRead_; }
    // Decrypted bytes waiting inside OpenSSL (never for plain sockets).
    bool pending() const noexcept { return ssl_ && tlsPending(); }
    // The handshake failed because the client spoke plain HTTP to the TLS
    // port; the caller may answer in plain text before closing.
    bool sawPlainHttp() const noexcept { return plainHttp_; }
    // Answers such a client with a plain-text 400 naming https:// (cold path).
    static void answerPlainHttp(int fd);

private:
    ssize_t tlsRead(char* buffer, size_t size);
    ssize_t tlsWritev(const iovec* iov, int count);
    ssize_t tlsPeek();
    uint32_t tlsEvents(uint32_t wanted) const noexcept;
    bool tlsPending() const noexcept;
    ssize_t fail(int code, int ret);

    UniqueSsl ssl_;
    bool readWantsWrite_ = false;  // the last read stopped on SSL_ERROR_WANT_WRITE
    bool writeWantsRead_ = false;  // the last write stopped on SSL_ERROR_WANT_READ
    bool readBlocked_ = true;      // the last read stopped for want of bytes from the socket
    bool broken_ = false;          // a fatal error: no close_notify may follow
    bool plainHttp_ = false;
};

}  // namespace hubd::http
