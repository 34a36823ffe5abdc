// SPDX-License-Identifier: BSD-3-Clause
// The TLS half of Transport: OpenSSL's SSL_read/SSL_write mapped onto
// recv(2)/send(2) semantics for non-blocking sockets.
#include "http/transport.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace hubd::http {

namespace {

// One TLS record's worth of plaintext: a response head and the start of its
// body go out as one record (and one send) instead of two.
constexpr size_t kRecordBytes = 16 * 1024;

}  // namespace

void SslDeleter::operator()(SSL* ssl) const noexcept {
    SSL_free(ssl);
}

// Maps a failed SSL_* call onto recv/send's -1/errno or 0 (end of stream).
ssize_t Transport::fail(int code, int ret) {
    switch (code) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            errno = EAGAIN;
            return -1;
        case SSL_ERROR_ZERO_RETURN:
            return 0;  // close_notify (or, with SSL_OP_IGNORE_UNEXPECTED_EOF, a bare FIN)
        case SSL_ERROR_SYSCALL:
            broken_ = true;
            ERR_clear_error();
            if (ret == 0 || errno == 0) return 0;  // EOF in the middle: framing above notices
            return -1;                             // errno from the failed recv/send
        default: {
            broken_ = true;
            unsigned long err = ERR_peek_error();
            if (ERR_GET_LIB(err) == ERR_LIB_SSL && (ERR_GET_REASON(err) == SSL_R_HTTP_REQUEST ||
                                                    ERR_GET_REASON(err) == SSL_R_HTTPS_PROXY_REQUEST))
                plainHttp_ = true;
            ERR_clear_error();
            errno = EPROTO;  // handshake failure, bad record, alert from the peer
            return -1;
        }
    }
}

ssize_t Transport::tlsRead(char* buffer, size_t size) {
    SSL* ssl = ssl_.get();
    readWantsWrite_ = false;
    readBlocked_ = false;
    size_t total = 0;
    // Up to the caller's buffer: one event may carry several records.
    while (total < size) {
        ERR_clear_error();  // SSL_get_error reads the thread's queue
        size_t got = 0;
        int r = SSL_read_ex(ssl, buffer + total, size - total, &got);
        if (r == 1) {
            total += got;
            continue;
        }
        int code = SSL_get_error(ssl, r);
        readWantsWrite_ = code == SSL_ERROR_WANT_WRITE;
        readBlocked_ = code == SSL_ERROR_WANT_READ;
        if (total > 0) {
            ERR_clear_error();  // an error or the end comes again on the next call
            return static_cast<ssize_t>(total);
        }
        return fail(code, r);
    }
    return static_cast<ssize_t>(total);
}

ssize_t Transport::tlsPeek() {
    SSL* ssl = ssl_.get();
    ERR_clear_error();
    char c;
    size_t got = 0;
    int r = SSL_peek_ex(ssl, &c, 1, &got);
    readWantsWrite_ = false;
    readBlocked_ = false;
    if (r == 1) return 1;
    int code = SSL_get_error(ssl, r);
    readWantsWrite_ = code == SSL_ERROR_WANT_WRITE;
    readBlocked_ = code == SSL_ERROR_WANT_READ;
    return fail(code, r);
}

ssize_t Transport::tlsWritev(const iovec* iov, int count) {
    SSL* ssl = ssl_.get();
    writeWantsRead_ = false;
    size_t total = 0;
    int index = 0;
    size_t offset = 0;  // into iov[index]
    thread_local char coalesced[kRecordBytes];
    while (index < count) {
        const char* data = static_cast<const char*>(iov[index].iov_base) + offset;
        size_t size = iov[index].iov_len - offset;
        if (size == 0) {
            ++index;
            offset = 0;
            continue;
        }
        size_t copied = 0;
        if (size < kRecordBytes && index + 1 < count) {
            // A short piece followed by more: fill one record from several
            // iovecs. A retry after WANT_WRITE rebuilds the same bytes, since
            // callers never change what they have queued (and OpenSSL is told
            // the buffer may move: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
            int i = index;
            size_t o = offset;
            while (i < count && copied < kRecordBytes) {
                size_t n = std::min(iov[i].iov_len - o, kRecordBytes - copied);
                std::memcpy(coalesced + copied, static_cast<const char*>(iov[i].iov_base) + o, n);
                copied += n;
                o += n;
                if (o == iov[i].iov_len) {
                    ++i;
                    o = 0;
                }
            }
            data = coalesced;
            size = copied;
        }
        ERR_clear_error();
        size_t written = 0;
        // SSL_MODE_ENABLE_PARTIAL_WRITE: returns after each record.
        int r = SSL_write_ex(ssl, data, size, &written);
        if (r != 1) {
            int code = SSL_get_error(ssl, r);
            writeWantsRead_ = code == SSL_ERROR_WANT_READ;
            if (total > 0) {
                // Some bytes went out: report them; a failure comes again on the next call.
                ERR_clear_error();
                return static_cast<ssize_t>(total);
            }
            ssize_t result = fail(code, r);
            if (result == 0) {  // a write cannot see an end of stream: the peer is gone
                errno = EPIPE;
                result = -1;
            }
            return result;
        }
        total += written;
        // Advance through the iovecs by `written` bytes.
        size_t left = written;
        while (left > 0 && index < count) {
            size_t n = std::min(left, iov[index].iov_len - offset);
            offset += n;
            left -= n;
            if (offset == iov[index].iov_len) {
                ++index;
                offset = 0;
            }
        }
    }
    return static_cast<ssize_t>(total);
}

uint32_t Transport::tlsEvents(uint32_t wanted) const noexcept {
    uint32_t events = wanted;
    if (readWantsWrite_ && (wanted & EPOLLIN)) events |= EPOLLOUT;
    if (writeWantsRead_ && (wanted & EPOLLOUT)) events |= EPOLLIN;
    return events;
}

bool Transport::tlsPending() const noexcept {
    SSL* ssl = ssl_.get();
    if (SSL_pending(ssl) > 0) return true;
    // With read-ahead, whole records may sit unprocessed in OpenSSL's buffer
    // when a read stopped because the caller's buffer was full; after a read
    // that ran dry, what is left is a partial record that needs the socket.
    return !readBlocked_ && !broken_ && SSL_has_pending(ssl) == 1;
}

void Transport::shutdownWrite(int fd) {
    if (ssl_ && !broken_ && SSL_is_init_finished(ssl_.get())) {
        // Best effort: if the socket is full the alert is lost, and the FIN
        // below still ends the stream (clients accept that from HTTP servers).
        ERR_clear_error();
        SSL_shutdown(ssl_.get());
        ERR_clear_error();
    }
    ::shutdown(fd, SHUT_WR);
}

void Transport::answerPlainHttp(int fd) {
    static constexpr std::string_view kResponse =
        "HTTP/1.1 400 Bad Request\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 49\r\n"
        "Connection: close\r\n"
        "\r\n"
        "This port speaks HTTPS: use an https:// address.\n";
    static_assert(kResponse.size() - kResponse.find("\r\n\r\n") - 4 == 49);
    // Take what the client sent, so that closing does not turn into a RST
    // that destroys the answer before it is read.
    char sink[4096];
    for (int i = 0; i < 16 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
    }
    (void)::send(fd, kResponse.data(), kResponse.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(fd, SHUT_WR);
}

}  // namespace hubd::http
