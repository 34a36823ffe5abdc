// SPDX-License-Identifier: BSD-3-Clause
// The blocking provider client (outbound_http.h): socket, optional TLS,
// one request with Connection: close, the reply read until its framing
// (Content-Length or chunked) says it is complete, else to EOF.
#include "app/outbound_http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

namespace hubd {

namespace {

using Clock = std::chrono::steady_clock;

struct Url {
    bool tls = false;
    std::string host;  // without brackets
    std::string port;
    std::string target;  // path and query, at least "/"
};

std::optional<Url> parseUrl(const std::string& url, std::string& why) {
    Url u;
    size_t rest;
    if (url.rfind("https://", 0) == 0) {
        u.tls = true, rest = 8;
    } else if (url.rfind("http://", 0) == 0) {
        rest = 7;
    } else {
        return why = "the URL is not http:// or https://", std::nullopt;
    }
    size_t slash = url.find_first_of("/?#", rest);
    std::string authority = url.substr(rest, slash == std::string::npos ? std::string::npos : slash - rest);
    if (authority.find('@') != std::string::npos)
        return why = "the URL must not carry user:password@", std::nullopt;
    u.target = slash == std::string::npos ? "/" : url.substr(slash);
    if (u.target[0] != '/') u.target.insert(0, "/");
    if (size_t hash = u.target.find('#'); hash != std::string::npos) u.target.resize(hash);
    if (!authority.empty() && authority[0] == '[') {
        size_t close = authority.find(']');
        if (close == std::string::npos) return why = "the URL's IPv6 address has no ']'", std::nullopt;
        u.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return why = "the URL's port is malformed", std::nullopt;
            u.port = authority.substr(close + 2);
        }
    } else {
        size_t colon = authority.rfind(':');
        u.host = authority.substr(0, colon);
        if (colon != std::string::npos) u.port = authority.substr(colon + 1);
    }
    if (u.port.empty()) u.port = u.tls ? "443" : "80";
    if (u.host.empty()) return why = "the URL has no host", std::nullopt;
    for (char c : u.host + u.port + u.target)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            return why = "the URL contains spaces or control characters", std::nullopt;
    return u;
}

int remainingMs(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

int connectWithDeadline(const Url& u, Clock::time_point deadline, std::string& why) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &res); rc != 0) {
        why = fmt::format("cannot resolve {}: {}", u.host, ::gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) continue;
        int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            rc = ::poll(&p, 1, remainingMs(deadline)) == 1 ? 0 : -1;
            int err = rc == 0 ? 0 : ETIMEDOUT;
            socklen_t len = sizeof err;
            if (rc == 0) ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) errno = err, rc = -1;
        }
        if (rc != 0) {
            why = fmt::format("cannot connect to {}:{}: {}", u.host, u.port, std::strerror(errno));
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(res);
    if (fd < 0) return -1;
    // Blocking from here on; every read and write waits at most until the deadline.
    ::fcntl(fd, F_SETFL, 0);
    return fd;
}

void setTimeouts(int fd, Clock::time_point deadline) {
    int ms = std::max(remainingMs(deadline), 1);
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

std::string sslError(const char* what) {
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return fmt::format("{}{}{}", what, e ? ": " : "", buf);
}

// What the administrator can do about a refused certificate. A wrong name
// is never fixed by trusting more CAs, so that case says so.
std::string certificateFix(long verify, const std::string& caFile) {
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH)
        return "issued for another name: use a provider URL with a name the certificate carries";
    if (caFile.empty()) return "a private CA? set OAuthenticator.ca_file to its PEM file";
    return fmt::format("OAuthenticator.ca_file '{}' does not hold the CA that issued it", caFile);
}

// One connection, plain or TLS.
class Channel {
public:
    ~Channel() {
        if (ssl_) SSL_free(ssl_);
        if (ctx_) SSL_CTX_free(ctx_);
        if (fd_ >= 0) ::close(fd_);
    }
    bool open(const Url& u, const std::string& caFile, Clock::time_point deadline, std::string& why) {
        fd_ = connectWithDeadline(u, deadline, why);
        if (fd_ < 0) return false;
        setTimeouts(fd_, deadline);
        if (!u.tls) return true;
        ctx_ = SSL_CTX_new(TLS_client_method());
        if (!ctx_) return why = sslError("TLS setup failed"), false;
        SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
        const bool loaded = caFile.empty()
                                ? SSL_CTX_set_default_verify_paths(ctx_) == 1
                                : SSL_CTX_load_verify_locations(ctx_, caFile.c_str(), nullptr) == 1;
        if (!loaded)
            return why = sslError(caFile.empty() ? "cannot load the system CA store"
                                                 : "cannot load the CA file"),
                   false;
        ssl_ = SSL_new(ctx_);
        if (!ssl_) return why = sslError("TLS setup failed"), false;
        SSL_set_fd(ssl_, fd_);
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        in6_addr a6;
        in_addr a4;
        const bool ip =
            ::inet_pton(AF_INET, u.host.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, u.host.c_str(), &a6) == 1;
        if (ip ? X509_VERIFY_PARAM_set1_ip_asc(param, u.host.c_str()) != 1
               : X509_VERIFY_PARAM_set1_host(param, u.host.c_str(), 0) != 1)
            return why = "cannot set the expected certificate name", false;
        if (!ip) SSL_set_tlsext_host_name(ssl_, u.host.c_str());
        if (SSL_connect(ssl_) != 1) {
            long verify = SSL_get_verify_result(ssl_);
            why = verify != X509_V_OK
                      ? fmt::format("the certificate of {} is not trusted: {} ({})", u.host,
                                    X509_verify_cert_error_string(verify), certificateFix(verify, caFile))
                      : sslError(fmt::format("TLS handshake with {} failed", u.host).c_str());
            return false;
        }
        return true;
    }
    bool writeAll(std::string_view data) {
        while (!data.empty()) {
            long n = ssl_ ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                          : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) {
                if (!ssl_ && errno == EINTR) continue;
                return false;
            }
            data.remove_prefix(static_cast<size_t>(n));
        }
        return true;
    }
    // >0 bytes, 0 at a clean end, -1 on error or timeout.
    long read(char* buf, size_t size, Clock::time_point deadline) {
        setTimeouts(fd_, deadline);
        if (remainingMs(deadline) == 0) return -1;
        if (ssl_) {
            int n = SSL_read(ssl_, buf, static_cast<int>(size));
            if (n > 0) return n;
            return SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
        }
        for (;;) {
            long n = ::recv(fd_, buf, size, 0);
            if (n < 0 && errno == EINTR) continue;
            return n;
        }
    }

private:
    int fd_ = -1;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
};

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Undo chunked transfer coding; nullopt when malformed.
std::optional<std::string> dechunk(std::string_view in) {
    std::string out;
    for (;;) {
        size_t eol = in.find("\r\n");
        if (eol == std::string_view::npos) return std::nullopt;
        std::string_view sizeText = in.substr(0, eol);
        sizeText = sizeText.substr(0, sizeText.find(';'));
        size_t size = 0;
        if (sizeText.empty() || sizeText.size() > 8) return std::nullopt;
        for (char c : sizeText) {
            int d = std::isxdigit(static_cast<unsigned char>(c))
                        ? (std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10)
                        : -1;
            if (d < 0) return std::nullopt;
            size = size * 16 + static_cast<size_t>(d);
        }
        in.remove_prefix(eol + 2);
        if (size == 0) return out;
        if (in.size() < size + 2) return std::nullopt;
        out.append(in.substr(0, size));
        in.remove_prefix(size + 2);
    }
}

// What the reply's head says about the rest.
struct ReplyHead {
    int status = 0;
    bool chunked = false;
    std::optional<size_t> contentLength;
    std::string contentType;
};

ReplyHead parseHead(std::string_view head) {
    ReplyHead h;
    if (head.size() >= 12) h.status = std::atoi(std::string(head.substr(9, 3)).c_str());
    size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos) {
        size_t next = head.find("\r\n", pos + 2);
        std::string_view line = head.substr(pos + 2, next == std::string_view::npos ? next : next - pos - 2);
        size_t colon = line.find(':');
        if (colon != std::string_view::npos) {
            std::string name = lower(std::string(line.substr(0, colon)));
            std::string_view value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
            while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
            if (name == "transfer-encoding" && lower(std::string(value)).find("chunked") != std::string::npos)
                h.chunked = true;
            if (name == "content-type") h.contentType = std::string(value);
            if (name == "content-length" && !value.empty() && value.size() <= 12 &&
                std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
                h.contentLength = std::stoull(std::string(value));
        }
        pos = next;
    }
    return h;
}

// True once `raw` holds the whole reply by its own framing. Then the reading
// stops: a server may close TLS without close_notify after a complete reply,
// which is harmless. A body delimited by the close alone still needs a clean
// end, or a truncated answer could pass for a whole one.
bool replyComplete(std::string_view raw) {
    const size_t headEnd = raw.find("\r\n\r\n");
    if (headEnd == std::string_view::npos || headEnd < 12 || raw.rfind("HTTP/1.", 0) != 0) return false;
    const ReplyHead h = parseHead(raw.substr(0, headEnd));
    const std::string_view body = raw.substr(headEnd + 4);
    if (h.status == 204 || h.status == 304) return true;
    if (h.chunked) return dechunk(body).has_value();
    return h.contentLength && body.size() >= *h.contentLength;
}

}  // namespace

bool isLoopbackHost(std::string_view host) {
    if (host == "localhost" || host == "::1") return true;
    in_addr a{};
    std::string h(host);
    return ::inet_pton(AF_INET, h.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

OutboundReply fetchUrl(const OutboundRequest& request) {
    OutboundReply reply;
    const auto deadline = Clock::now() + request.timeout;
    std::string why;
    auto url = parseUrl(request.url, why);
    if (!url) {
        reply.error = why;
        return reply;
    }
    if (!url->tls && !isLoopbackHost(url->host)) {
        reply.error = fmt::format("plain http to {} is refused: use https (http is allowed to loopback only)",
                                  url->host);
        return reply;
    }
    Channel channel;
    if (!channel.open(*url, request.caFile, deadline, why)) {
        reply.error = why;
        return reply;
    }
    const bool v6 = url->host.find(':') != std::string::npos;
    const std::string hostHeader = (v6 ? "[" + url->host + "]" : url->host) +
                                   ((url->port == (url->tls ? "443" : "80")) ? "" : ":" + url->port);
    std::string head = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: hubd\r\n",
                                   request.method, url->target, hostHeader);
    for (const auto& [name, value] : request.headers) head += name + ": " + value + "\r\n";
    if (!request.body.empty() || request.method == "POST")
        head += fmt::format("Content-Length: {}\r\n", request.body.size());
    head += "\r\n";
    if (!channel.writeAll(head) || !channel.writeAll(request.body)) {
        reply.error = fmt::format("sending the request to {} failed", url->host);
        return reply;
    }
    std::string raw;
    char buf[16384];
    const size_t cap = request.maxBytes + 16384;  // the head is on top of the body
    for (;;) {
        long n = channel.read(buf, sizeof buf, deadline);
        if (n == 0) break;
        if (n < 0) {
            reply.error =
                remainingMs(deadline) == 0
                    ? fmt::format("{} did not answer within {} ms", url->host, request.timeout.count())
                    : fmt::format("reading the answer of {} failed", url->host);
            return reply;
        }
        raw.append(buf, static_cast<size_t>(n));
        if (raw.size() > cap) {
            reply.error =
                fmt::format("the answer of {} is larger than {} bytes", url->host, request.maxBytes);
            return reply;
        }
        if (replyComplete(raw)) break;
    }
    size_t headEnd = raw.find("\r\n\r\n");
    if (raw.rfind("HTTP/1.", 0) != 0 || headEnd == std::string::npos || raw.size() < 12) {
        reply.error = fmt::format("{} did not answer with HTTP", url->host);
        return reply;
    }
    const ReplyHead parsed = parseHead(std::string_view(raw).substr(0, headEnd));
    reply.status = parsed.status;
    reply.contentType = parsed.contentType;
    const bool chunked = parsed.chunked;
    std::string_view body = std::string_view(raw).substr(headEnd + 4);
    if (chunked) {
        auto plain = dechunk(body);
        if (!plain) {
            reply.status = 0;
            reply.error = fmt::format("the chunked answer of {} is malformed", url->host);
            return reply;
        }
        reply.body = std::move(*plain);
    } else if (parsed.contentLength && body.size() < *parsed.contentLength) {
        reply.status = 0;
        reply.error = fmt::format("the answer of {} ended after {} of its {} bytes", url->host, body.size(),
                                  *parsed.contentLength);
        return reply;
    } else {
        // Bytes after a Content-Length body are not part of the answer.
        reply.body = std::string(parsed.contentLength ? body.substr(0, *parsed.contentLength) : body);
    }
    if (reply.body.size() > request.maxBytes) {
        reply.status = 0;
        reply.error = fmt::format("the answer of {} is larger than {} bytes", url->host, request.maxBytes);
    }
    return reply;
}

}  // namespace hubd
