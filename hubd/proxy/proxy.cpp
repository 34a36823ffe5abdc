// SPDX-License-Identifier: BSD-3-Clause
// Proxy and its Exchange: one proxied request (or WebSocket tunnel) from
// the client's request head to the hand-back of the client connection.
#include "proxy/proxy.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "http/parser.h"
#include "proxy/header_policy.h"
#include "proxy/response_head.h"

namespace hubd::proxy {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kScratchBytes = 64 * 1024;
// Rounds of read/write per event for one exchange: a fast pair of sockets
// must not keep the loop from everyone else.
constexpr int kMaxRoundsPerEvent = 16;
// What a backend connection is watched for when nothing else is wanted
// (also the pool's idle set), and a client connection (also the server's).
constexpr uint32_t kBackendIdleEvents = EPOLLIN | EPOLLRDHUP;
constexpr uint32_t kClientIdleEvents = EPOLLIN;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return asciiLower(x) == asciiLower(y); });
}

std::string_view trimOws(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

template <typename Fn>
void forEachToken(std::string_view list, char separator, Fn&& fn) {
    while (!list.empty()) {
        size_t at = list.find(separator);
        std::string_view item = trimOws(list.substr(0, at));
        if (!item.empty()) fn(item);
        if (at == std::string_view::npos) break;
        list.remove_prefix(at + 1);
    }
}

bool hasToken(std::string_view list, std::string_view token) {
    bool found = false;
    forEachToken(list, ',', [&](std::string_view item) { found = found || iequals(item, token); });
    return found;
}

// Headers named by a Connection header are hop-by-hop for this message.
struct ConnectionTokens {
    std::vector<std::string_view> names;
    bool contains(std::string_view name) const {
        return std::any_of(names.begin(), names.end(), [&](std::string_view n) { return iequals(n, name); });
    }
};

ConnectionTokens connectionTokens(const std::vector<http::Header>& headers) {
    ConnectionTokens tokens;
    for (const auto& [name, value] : headers)
        if (iequals(name, "Connection"))
            forEachToken(value, ',', [&](std::string_view t) { tokens.names.push_back(t); });
    return tokens;
}

// A byte queue that is consumed from the front without moving bytes each time.
struct Buffer {
    std::string data;
    size_t start = 0;

    size_t size() const { return data.size() - start; }
    bool empty() const { return start == data.size(); }
    std::string_view view() const { return std::string_view(data).substr(start); }
    void consume(size_t n) {
        start += n;
        if (start == data.size()) {
            data.clear();
            start = 0;
        } else if (start > 16 * 1024 && start > data.size() / 2) {
            data.erase(0, start);
            start = 0;
        }
    }
    // An idle tunnel keeps no buffer memory.
    void releaseIfEmpty() {
        if (empty() && data.capacity() > 0) std::string().swap(data);
    }
};

std::string errorBody(int status, std::string_view message, bool json) {
    if (json) {
        std::string escaped;
        for (char c : message) {
            if (c == '"' || c == '\\') escaped += '\\';
            escaped += c;
        }
        return fmt::format("{{\"status\":{},\"message\":\"{}\"}}", status, escaped);
    }
    return fmt::format(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{0} {1}</title></head>\n"
        "<body><h1>{0} {1}</h1><p>{2}</p></body></html>\n",
        status, http::reasonPhrase(status), message);
}

}  // namespace

// ---------------------------------------------------------------------------

class Proxy::Exchange {
public:
    Exchange(Proxy& proxy, http::Takeover client, const http::Request& request, const http::HeadInfo& info,
             std::shared_ptr<const Upstream> target);
    ~Exchange();
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;

    void start();
    void setOnTraffic(std::function<void()> onTraffic);

private:
    enum class Phase { Connecting, AwaitingHead, StreamingBody, Tunnel };

    template <typename Fn>
    void entryPoint(Fn&& fn);
    void onClient(uint32_t events);
    void onBackend(uint32_t events);
    void onTimer();
    void kickClient();
    void kickBackend();

    void buildRequestHead(const http::Request& request);
    void acquireBackend();
    void connect();
    void connected();
    void backendFailed(int err, std::string_view what);
    bool retryOnFreshConnection();

    void pump();
    bool readClient();
    bool readBackend();
    bool flushToBackend();
    bool flushToClient();
    void consumeRequestBody(std::string_view data);
    void consumeHeadBytes();
    void startResponse();
    void startTunnel();
    void consumeResponseBody(std::string_view data);
    void emitBody(std::string_view data);
    void endResponseBody();
    void checkDone();
    void updateInterest();
    void refreshDeadline();
    void noteTraffic();
    void setDeadline(std::chrono::milliseconds fromNow);
    void armTimer();

    void finish();
    void fail(int status, std::string_view message);
    void abort(std::string_view why);
    void releaseBackendSlot();
    std::string rewriteLocation(std::string_view value) const;

    Proxy& proxy_;
    http::EventLoop& loop_;
    const ProxyConfig& config_;
    http::Takeover client_;
    http::WatchedFd backend_;
    http::Transport backendTransport_;  // TLS session for https:// backends (internal TLS)
    std::shared_ptr<const Upstream> target_;
    Phase phase_ = Phase::Connecting;
    bool done_ = false;
    bool pumping_ = false;
    bool holdsSlot_ = false;

    // request side
    http::HeadInfo info_;
    int clientMinor_ = 1;
    bool isHeadRequest_ = false;
    bool wantsUpgrade_ = false;
    bool wantsJson_ = false;
    bool clientKeepAlive_ = true;
    bool requestBodyDone_ = true;
    bool requestFlushed_ = false;
    uint64_t bodyLeft_ = 0;
    http::ChunkedDecoder requestChunks_;
    std::string clientLeftover_;  // bytes after this request: the next one (pipelining)
    std::string requestHead_;     // kept to retry a bodyless request on a stale pooled connection
    std::string publicOrigin_;    // for Location rewriting
    std::string rawPath_;         // for the log
    Buffer toBackend_;
    bool reused_ = false;
    bool retried_ = false;

    // response side
    std::string fromBackend_;  // the response head as it arrives
    http::HeadScanner headScanner_;
    ResponseHead response_;
    bool responseStarted_ = false;  // final response head queued for the client
    bool responseDone_ = false;
    bool chunkedToClient_ = false;
    bool backendReusable_ = true;
    uint64_t responseLeft_ = 0;
    http::ChunkedDecoder responseChunks_;
    Buffer toClient_;
    size_t interimBytes_ = 0;  // of toClient_: our own 100 Continue, not yet a response
    std::string decoded_;      // scratch for de-chunking

    std::function<void()> onTraffic_;
    Clock::time_point nextTrafficReport_{};

    // tunnel
    bool clientEof_ = false;
    bool backendEof_ = false;

    // A hung-up socket stays "ready" under level-triggered epoll whatever
    // we ask for: read it out even if the other side's buffer is full, so
    // its end is seen instead of spinning.
    bool clientHup_ = false;
    bool backendHup_ = false;
    bool clientPipelined_ = false;  // the next request is waiting in the socket: stop watching EPOLLIN

    Clock::time_point deadline_ = Clock::time_point::max();
    Clock::time_point timerAt_{};
    http::EventLoop::TimerId timerId_ = 0;
    http::EventLoop::TimerId kickTimer_ = 0;         // onClient deferred to the next loop iteration
    http::EventLoop::TimerId kickBackendTimer_ = 0;  // onBackend likewise (TLS bytes already decrypted)
};

namespace {

// Chunked bodies through the proxy are streams: no size limit of their own
// (the backend decides), only the per-line and trailer limits.
const http::Limits& streamLimits() {
    static const http::Limits limits = [] {
        http::Limits l;
        l.maxBodyBytes = std::numeric_limits<size_t>::max() / 4;
        return l;
    }();
    return limits;
}

}  // namespace

Proxy::Exchange::Exchange(Proxy& proxy, http::Takeover client, const http::Request& request,
                          const http::HeadInfo& info, std::shared_ptr<const Upstream> target)
    : proxy_(proxy),
      loop_(proxy.loop_),
      config_(proxy.config_),
      client_(std::move(client)),
      target_(std::move(target)),
      info_(info) {
    clientMinor_ = request.versionMinor;
    isHeadRequest_ = request.method == "HEAD";
    clientKeepAlive_ = info.keepAlive;
    rawPath_ = request.rawPath;
    std::string_view accept = request.header("Accept");
    wantsJson_ = accept.find("application/json") != std::string_view::npos ||
                 request.path.find("/api/") != std::string::npos;
    wantsUpgrade_ =
        request.method == "GET" && request.versionMinor == 1 && info.framing == http::BodyFraming::None &&
        hasToken(request.header("Upgrade"), "websocket") && hasToken(request.header("Connection"), "upgrade");
    requestBodyDone_ = info.framing == http::BodyFraming::None;
    bodyLeft_ = info.framing == http::BodyFraming::ContentLength ? info.contentLength : 0;
    buildRequestHead(request);
}

Proxy::Exchange::~Exchange() {
    if (timerId_ != 0) loop_.cancelTimer(timerId_);
    if (kickTimer_ != 0) loop_.cancelTimer(kickTimer_);
    if (kickBackendTimer_ != 0) loop_.cancelTimer(kickBackendTimer_);
    releaseBackendSlot();
}

void Proxy::Exchange::buildRequestHead(const http::Request& request) {
    const bool trusted = config_.trustedProxies.contains(request.peerAddress);
    ConnectionTokens hopByHop = connectionTokens(request.headers);
    std::string& out = toBackend_.data;
    out.reserve(256 + request.rawPath.size() + request.query.size() + request.headers.size() * 48);
    out += request.method;
    out += ' ';
    out += target_->pathPrefix;
    out += request.rawPath;
    if (!request.query.empty()) {
        out += '?';
        out += request.query;
    }
    out += " HTTP/1.1\r\n";

    std::string cookies;
    std::string forwardedFor, forwardedProto, forwardedHost;
    std::string_view host = request.header("Host");
    bool hadContentLength = false;
    for (const auto& [name, value] : request.headers) {
        if (hopByHop.contains(name)) continue;
        switch (requestAction(name)) {
            case RequestAction::Forward:
                break;
            case RequestAction::Drop:
                continue;
            case RequestAction::Reframe:
                if (iequals(name, "Content-Length")) hadContentLength = true;
                continue;
            case RequestAction::TrustedOnly:
                if (!trusted) continue;
                // From a trusted proxy: kept, and the three we rebuild are extended.
                if (iequals(name, "X-Forwarded-For")) {
                    forwardedFor += forwardedFor.empty() ? "" : ", ";
                    forwardedFor += value;
                    continue;
                }
                if (iequals(name, "X-Forwarded-Proto")) {
                    if (forwardedProto.empty()) forwardedProto = value;
                    continue;
                }
                if (iequals(name, "X-Forwarded-Host")) {
                    if (forwardedHost.empty()) forwardedHost = value;
                    continue;
                }
                break;
            case RequestAction::FilterCookies:
                forEachToken(value, ';', [&](std::string_view pair) {
                    std::string_view cookieName = trimOws(pair.substr(0, pair.find('=')));
                    if (isHubCookie(cookieName)) return;
                    if (!cookies.empty()) cookies += "; ";
                    cookies += pair;
                });
                continue;
            case RequestAction::Authorization:
                if (!config_.forwardAuthorization) continue;
                break;
        }
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    }
    if (!cookies.empty()) {
        out += "Cookie: ";
        out += cookies;
        out += "\r\n";
    }
    std::string scheme = request.tls ? "https" : "http";
    out += "X-Forwarded-For: ";
    if (!forwardedFor.empty()) {
        out += forwardedFor;
        out += ", ";
    }
    out += request.peerAddress;
    out += "\r\nX-Forwarded-Proto: ";
    out += forwardedProto.empty() ? scheme : forwardedProto;
    std::string_view publicHost = forwardedHost.empty() ? host : std::string_view(forwardedHost);
    if (!publicHost.empty()) {
        out += "\r\nX-Forwarded-Host: ";
        out += publicHost;
        publicOrigin_ = (forwardedProto.empty() ? scheme : forwardedProto) + "://" + std::string(publicHost);
    }
    out += "\r\n";
    if (info_.framing == http::BodyFraming::ContentLength) {
        out += fmt::format("Content-Length: {}\r\n", info_.contentLength);
    } else if (info_.framing == http::BodyFraming::Chunked) {
        out += "Transfer-Encoding: chunked\r\n";
    } else if (hadContentLength) {
        out += "Content-Length: 0\r\n";  // a bodyless POST stays explicit
    }
    if (wantsUpgrade_) {
        out += "Connection: Upgrade\r\nUpgrade: ";
        out += request.header("Upgrade");
        out += "\r\n";
    }
    out += "\r\n";
}

template <typename Fn>
void Proxy::Exchange::entryPoint(Fn&& fn) {
    try {
        fn();
    } catch (const std::exception& e) {
        abort(e.what());
    }
    if (done_) proxy_.finished(this);  // `this` is gone after this line
}

void Proxy::Exchange::start() {
    entryPoint([&] {
        client_.socket().watch(EPOLLIN, [this](uint32_t e) { onClient(e); });
        // Answer 100-continue ourselves (Expect is not forwarded): the body
        // streams whatever the backend would have said, as nginx does.
        if (info_.expectContinue && client_.buffered().empty()) {
            toClient_.data = kContinue;
            interimBytes_ = kContinue.size();
        }
        std::string initial = std::move(client_.buffered());
        client_.buffered().clear();
        if (!requestBodyDone_)
            consumeRequestBody(initial);
        else
            clientLeftover_ = std::move(initial);
        if (done_) return;
        acquireBackend();
        if (done_) return;
        pump();
    });
}

void Proxy::Exchange::acquireBackend() {
    size_t& inUse = proxy_.inUse_[target_->poolKey];
    if (inUse >= config_.maxConnectionsPerBackend) {
        fail(503, "the server has too many connections open; try again later");
        return;
    }
    ++inUse;
    holdsSlot_ = true;
    BackendConnection pooled = proxy_.pool_.take(target_->poolKey);
    backend_ = std::move(pooled.socket);
    backendTransport_ = std::move(pooled.transport);
    if (backend_) {
        reused_ = true;
        if (requestBodyDone_) requestHead_ = toBackend_.data;
        connected();
        return;
    }
    connect();
}

void Proxy::Exchange::releaseBackendSlot() {
    if (!holdsSlot_) return;
    holdsSlot_ = false;
    auto it = proxy_.inUse_.find(target_->poolKey);
    if (it != proxy_.inUse_.end() && --it->second == 0) proxy_.inUse_.erase(it);
}

void Proxy::Exchange::connect() {
    http::UniqueFd fd(::socket(target_->address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        backendFailed(errno, "socket");
        return;
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    backendTransport_ = http::Transport{};
    if (target_->tls) {
        // The handshake runs inside the first write; a server whose
        // certificate does not name target_->peerName fails it.
        http::UniqueSsl ssl =
            config_.upstreamTls ? config_.upstreamTls->newSession(fd.get(), target_->peerName) : nullptr;
        if (!ssl) {
            fmt::print(stderr, "hubd: proxy: no internal TLS client context for {} ({})\n", target_->poolKey,
                       rawPath_);
            fail(502, "The hub cannot reach this server: internal TLS is not set up.");
            return;
        }
        backendTransport_ = http::Transport(std::move(ssl));
    }
    int r = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&target_->address), target_->addressLength);
    int err = errno;
    backend_ = http::WatchedFd(loop_, std::move(fd));
    if (r == 0) {
        connected();
        return;
    }
    if (err != EINPROGRESS) {
        backendFailed(err, "connect");
        return;
    }
    phase_ = Phase::Connecting;
    backend_.watch(EPOLLOUT, [this](uint32_t e) { onBackend(e); });
    setDeadline(config_.connectTimeout);
}

void Proxy::Exchange::connected() {
    phase_ = Phase::AwaitingHead;
    // The pool's interest set: reusing a connection costs no epoll_ctl. The
    // request is written by the pump at once; EPOLLOUT only if that blocks.
    backend_.watch(kBackendIdleEvents, [this](uint32_t e) { onBackend(e); });
    setDeadline(requestBodyDone_ ? config_.responseHeadTimeout : config_.ioTimeout);
}

bool Proxy::Exchange::retryOnFreshConnection() {
    // A pooled connection the backend closed just as we reused it: safe to
    // replay only if nothing of a response came back and the request had
    // no body (we no longer hold a streamed body).
    if (!reused_ || retried_ || requestHead_.empty() || !fromBackend_.empty() || responseStarted_)
        return false;
    retried_ = true;
    reused_ = false;
    backend_.reset();
    backendTransport_ = http::Transport{};
    toBackend_ = Buffer{};
    toBackend_.data = std::move(requestHead_);
    requestFlushed_ = false;
    connect();
    return true;
}

void Proxy::Exchange::backendFailed(int err, std::string_view what) {
    if (phase_ == Phase::AwaitingHead && retryOnFreshConnection()) return;
    if (phase_ == Phase::Tunnel) {
        abort("backend connection failed");
        return;
    }
    if (phase_ == Phase::Connecting || what == "connect" || what == "socket") {
        fmt::print(stderr, "hubd: proxy: {} {} failed for {}: {}\n", what, target_->poolKey, rawPath_,
                   std::strerror(err));
        fail(503, "The server is not responding (connection refused). It may be stopped or still starting.");
        return;
    }
    fmt::print(stderr, "hubd: proxy: backend {} failed during {} for {}: {}\n", target_->poolKey, what,
               rawPath_, std::strerror(err));
    if (target_->tls && err == EPROTO) {  // the handshake failed; tls_client.cpp logged why
        fail(502, "The server could not prove it is this user's server (internal TLS).");
        return;
    }
    fail(502, "The server closed the connection without a valid response.");
}

void Proxy::Exchange::onClient(uint32_t events) {
    entryPoint([&] {
        if (events & (EPOLLHUP | EPOLLERR)) clientHup_ = true;
        bool reading = phase_ == Phase::Tunnel || !requestBodyDone_;
        if (!reading) {
            // Body done, waiting for or writing the response. EPOLLIN stays
            // on (the server's interest set: no epoll_ctl per request), so
            // look without taking: EOF means nobody is left to answer; bytes
            // are the next request, which waits in the socket for the server.
            if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
                abort("client went away");
                return;
            }
            if (events & EPOLLIN) {
                ssize_t n = client_.transport().peek(client_.socket().get());
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                    abort("client went away");
                    return;
                }
                if (n > 0) clientPipelined_ = true;
            }
        }
        pump();
    });
}

void Proxy::Exchange::kickClient() {
    if (kickTimer_ != 0) return;
    kickTimer_ = loop_.addTimer(std::chrono::milliseconds(0), [this] {
        kickTimer_ = 0;
        onClient(EPOLLIN);
    });
}

void Proxy::Exchange::kickBackend() {
    if (kickBackendTimer_ != 0) return;
    kickBackendTimer_ = loop_.addTimer(std::chrono::milliseconds(0), [this] {
        kickBackendTimer_ = 0;
        onBackend(EPOLLIN);
    });
}

void Proxy::Exchange::onBackend(uint32_t events) {
    entryPoint([&] {
        if (events & (EPOLLHUP | EPOLLERR)) backendHup_ = true;
        // Readable after the response ended: a close, or bytes nobody asked
        // for. Either way it does not go back to the pool.
        if (phase_ == Phase::StreamingBody && responseDone_ && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
            backendReusable_ = false;
        if (phase_ == Phase::Connecting) {
            int err = 0;
            socklen_t length = sizeof err;
            if (::getsockopt(backend_.get(), SOL_SOCKET, SO_ERROR, &err, &length) != 0) err = errno;
            if (err == 0 && (events & (EPOLLERR | EPOLLHUP))) err = ECONNREFUSED;
            if (err != 0) {
                backendFailed(err, "connect");
                return;
            }
            connected();
        }
        pump();
    });
}

void Proxy::Exchange::pump() {
    if (pumping_ || done_) return;
    pumping_ = true;
    struct Reset {
        bool& flag;
        ~Reset() { flag = false; }
    } reset{pumping_};
    bool any = false;
    for (int round = 0; round < kMaxRoundsPerEvent; ++round) {
        bool progress = false;
        if (phase_ != Phase::Connecting) {
            progress |= readClient();
            if (done_) return;
            progress |= flushToBackend();
            if (done_) return;
            progress |= readBackend();
            if (done_) return;
        }
        progress |= flushToClient();
        if (done_) return;
        checkDone();
        if (done_) return;
        any |= progress;
        if (!progress) break;
    }
    size_t buffered = toBackend_.size() + toClient_.size() + fromBackend_.size() + clientLeftover_.size();
    proxy_.stats_.peakBufferedBytes = std::max(proxy_.stats_.peakBufferedBytes, buffered);
    if (phase_ == Phase::Tunnel) {
        toClient_.releaseIfEmpty();
        toBackend_.releaseIfEmpty();
    }
    if (any) {
        refreshDeadline();
        noteTraffic();
    }
    updateInterest();
}

void Proxy::Exchange::setOnTraffic(std::function<void()> onTraffic) {
    onTraffic_ = std::move(onTraffic);
    nextTrafficReport_ = loop_.now() + config_.trafficReportInterval;  // the head itself is the caller's
}

void Proxy::Exchange::noteTraffic() {
    if (!onTraffic_) return;
    const auto now = loop_.now();
    if (now < nextTrafficReport_) return;
    nextTrafficReport_ = now + config_.trafficReportInterval;
    onTraffic_();
}

bool Proxy::Exchange::readClient() {
    size_t room = toBackend_.size() < config_.bufferBytes ? config_.bufferBytes - toBackend_.size() : 0;
    if (clientHup_) room = kScratchBytes;
    if (phase_ == Phase::Tunnel) {
        if (clientEof_) return false;
    } else if (requestBodyDone_) {
        return false;
    } else if (info_.framing == http::BodyFraming::ContentLength) {
        room = static_cast<size_t>(std::min<uint64_t>(room, bodyLeft_));  // never read into the next request
    }
    if (room == 0) return false;
    ssize_t n = client_.transport().read(client_.socket().get(), proxy_.scratch_.get(),
                                         std::min(room, kScratchBytes));
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
        abort("client connection failed");
        return false;
    }
    if (n == 0) {
        if (phase_ != Phase::Tunnel) {
            abort("client closed the connection before its request body ended");
            return false;
        }
        clientEof_ = true;
        if (toBackend_.empty() && !backendEof_) backendTransport_.shutdownWrite(backend_.get());
        return true;
    }
    std::string_view data(proxy_.scratch_.get(), static_cast<size_t>(n));
    if (phase_ == Phase::Tunnel)
        toBackend_.data.append(data);
    else
        consumeRequestBody(data);
    return true;
}

void Proxy::Exchange::consumeRequestBody(std::string_view data) {
    if (requestBodyDone_) {
        clientLeftover_.append(data);
        return;
    }
    if (info_.framing == http::BodyFraming::ContentLength) {
        size_t take = static_cast<size_t>(std::min<uint64_t>(data.size(), bodyLeft_));
        toBackend_.data.append(data.substr(0, take));
        bodyLeft_ -= take;
        if (bodyLeft_ == 0) requestBodyDone_ = true;
        clientLeftover_.append(data.substr(take));
        return;
    }
    // Chunked: de-chunked and re-chunked, so the backend sees framing we
    // produced, never the client's (chunk extensions and trailers dropped).
    decoded_.clear();
    size_t used = 0;
    auto status = requestChunks_.feed(data, decoded_, streamLimits(), used);
    appendChunk(toBackend_.data, decoded_);
    if (status == http::ChunkedDecoder::Status::Error) {
        clientKeepAlive_ = false;
        fail(400, requestChunks_.error().reason);
        return;
    }
    if (status == http::ChunkedDecoder::Status::Done) {
        toBackend_.data += "0\r\n\r\n";
        requestBodyDone_ = true;
        clientLeftover_.append(data.substr(used));
    }
}

bool Proxy::Exchange::flushToBackend() {
    if (toBackend_.empty()) return false;
    std::string_view pending = toBackend_.view();
    ssize_t n = backendTransport_.write(backend_.get(), pending.data(), pending.size());
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
        backendFailed(errno, "send");
        return false;
    }
    toBackend_.consume(static_cast<size_t>(n));
    if (toBackend_.empty()) {
        if (phase_ == Phase::Tunnel && clientEof_) backendTransport_.shutdownWrite(backend_.get());
        if (phase_ == Phase::AwaitingHead && requestBodyDone_ && !requestFlushed_) {
            requestFlushed_ = true;
            setDeadline(config_.responseHeadTimeout);  // now the backend is thinking
        }
    }
    return true;
}

bool Proxy::Exchange::readBackend() {
    if (backendEof_) return false;
    size_t room = toClient_.size() < config_.bufferBytes ? config_.bufferBytes - toClient_.size() : 0;
    if (backendHup_) room = kScratchBytes;
    switch (phase_) {
        case Phase::Connecting:
            return false;
        case Phase::AwaitingHead:
            room = kScratchBytes;
            break;
        case Phase::StreamingBody:
            if (responseDone_) return false;
            if (response_.framing == ResponseFraming::ContentLength)
                room = static_cast<size_t>(std::min<uint64_t>(room, responseLeft_));
            break;
        case Phase::Tunnel:
            break;
    }
    if (room == 0) return false;
    ssize_t n = backendTransport_.read(backend_.get(), proxy_.scratch_.get(), std::min(room, kScratchBytes));
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
        int err = errno;
        if (phase_ == Phase::StreamingBody) {
            abort("backend failed in the middle of a response body");
            return false;
        }
        backendFailed(err, "recv");
        return false;
    }
    if (n == 0) {
        backendEof_ = true;
        switch (phase_) {
            case Phase::Connecting:
                break;
            case Phase::AwaitingHead:
                backendEof_ = false;
                backendFailed(ECONNRESET, "response head");
                break;
            case Phase::StreamingBody:
                if (response_.framing == ResponseFraming::UntilClose)
                    endResponseBody();
                else
                    abort("backend closed in the middle of a response body");
                break;
            case Phase::Tunnel:
                if (toClient_.empty() && !clientEof_)
                    client_.transport().shutdownWrite(client_.socket().get());
                break;
        }
        return true;
    }
    std::string_view data(proxy_.scratch_.get(), static_cast<size_t>(n));
    switch (phase_) {
        case Phase::Connecting:
            break;
        case Phase::AwaitingHead:
            fromBackend_.append(data);
            consumeHeadBytes();
            break;
        case Phase::StreamingBody:
            consumeResponseBody(data);
            break;
        case Phase::Tunnel:
            toClient_.data.append(data);
            break;
    }
    return true;
}

void Proxy::Exchange::consumeHeadBytes() {
    http::Limits headLimits;
    headLimits.maxRequestLineBytes = 8 * 1024;
    headLimits.maxHeaderBytes = config_.maxResponseHeadBytes;
    headLimits.maxHeaderCount = config_.maxResponseHeaders;
    for (;;) {
        auto status = headScanner_.scan(fromBackend_, headLimits);
        if (status == http::HeadScanner::Status::NeedMore) return;
        if (status == http::HeadScanner::Status::Error) {
            fmt::print(stderr, "hubd: proxy: bad response head from {} for {}: {}\n", target_->poolKey,
                       rawPath_, headScanner_.error().reason);
            fail(502, "The server sent a malformed response.");
            return;
        }
        std::string_view head(fromBackend_.data() + headScanner_.headStart(),
                              headScanner_.headEnd() - headScanner_.headStart());
        std::string_view error = parseResponseHead(head, isHeadRequest_, response_);
        size_t consumed = headScanner_.headEnd();
        headScanner_.reset();
        if (!error.empty()) {
            fmt::print(stderr, "hubd: proxy: bad response head from {} for {}: {}\n", target_->poolKey,
                       rawPath_, error);
            fail(502, "The server sent a malformed response.");
            return;
        }
        fromBackend_.erase(0, consumed);
        if (response_.status == 101) {
            if (!wantsUpgrade_) {
                fail(502, "The server switched protocols without being asked to.");
                return;
            }
            startTunnel();
            return;
        }
        if (response_.status < 200) continue;  // interim (100, 103): ours to drop, 100 was sent already
        startResponse();
        return;
    }
}

std::string Proxy::Exchange::rewriteLocation(std::string_view value) const {
    // Only a Location that is absolute to the backend's own origin: that is
    // the backend not knowing it is proxied. Anything else is left alone.
    const std::string& origin = target_->origin;
    if (value.size() < origin.size() || !iequals(value.substr(0, origin.size()), origin))
        return std::string(value);
    std::string_view rest = value.substr(origin.size());
    if (!rest.empty() && rest.front() != '/' && rest.front() != '?') return std::string(value);
    std::string out = publicOrigin_;  // "" when the client sent no Host: a path-absolute reference
    if (rest.empty() || rest.front() != '/') out += '/';
    out += rest;
    return out;
}

void Proxy::Exchange::startResponse() {
    phase_ = Phase::StreamingBody;
    responseStarted_ = true;
    // A request body not fully read means the next request's start is unknown.
    if (!requestBodyDone_) clientKeepAlive_ = false;
    if (!response_.keepAlive) backendReusable_ = false;
    if (wantsUpgrade_) backendReusable_ = false;  // the backend may still expect to switch

    ConnectionTokens hopByHop = connectionTokens(response_.headers);
    bool hsts = client_.transport().tls();
    std::string& out = toClient_.data;
    out.reserve(out.size() + 256 + response_.headers.size() * 64);
    out += fmt::format("HTTP/1.1 {} ", response_.status);
    out +=
        response_.reason.empty() ? http::reasonPhrase(response_.status) : std::string_view(response_.reason);
    out += "\r\n";
    for (const auto& [name, value] : response_.headers) {
        if (hopByHop.contains(name)) continue;
        std::string rewritten;
        std::string_view shown = value;
        switch (responseAction(name)) {
            case ResponseAction::Forward:
                break;
            case ResponseAction::Drop:
            case ResponseAction::Reframe:
                continue;
            case ResponseAction::FilterSetCookie: {
                std::string_view cookieName = trimOws(std::string_view(value).substr(0, value.find('=')));
                if (isHubCookie(cookieName)) {
                    fmt::print(stderr, "hubd: proxy: dropped a Set-Cookie for the hub's {} from {}\n",
                               cookieName, rawPath_);
                    continue;
                }
                break;
            }
            case ResponseAction::Location:
                rewritten = rewriteLocation(value);
                shown = rewritten;
                break;
        }
        out += name;
        out += ": ";
        out += shown;
        out += "\r\n";
        if (iequals(name, "Strict-Transport-Security")) hsts = false;
    }
    if (hsts) out += "Strict-Transport-Security: max-age=31536000\r\n";  // as the server's own answers
    switch (response_.framing) {
        case ResponseFraming::None:
            // HEAD and 304 announce the length of what a GET would get.
            if (response_.hasContentLength && (isHeadRequest_ || response_.status == 304))
                out += fmt::format("Content-Length: {}\r\n", response_.contentLength);
            else if (response_.status != 204 && response_.status != 304)
                out += "Content-Length: 0\r\n";
            responseDone_ = true;
            break;
        case ResponseFraming::ContentLength:
            out += fmt::format("Content-Length: {}\r\n", response_.contentLength);
            responseLeft_ = response_.contentLength;
            break;
        case ResponseFraming::Chunked:
        case ResponseFraming::UntilClose:
            if (clientMinor_ == 1) {
                out += "Transfer-Encoding: chunked\r\n";
                chunkedToClient_ = true;
            } else {
                clientKeepAlive_ = false;  // HTTP/1.0: the end of the body is the close
            }
            break;
    }
    if (!clientKeepAlive_)
        out += "Connection: close\r\n";
    else if (clientMinor_ == 0)
        out += "Connection: keep-alive\r\n";
    out += "\r\n";
    setDeadline(config_.ioTimeout);

    std::string rest = std::move(fromBackend_);
    fromBackend_ = {};
    if (!rest.empty()) {
        if (responseDone_)
            backendReusable_ = false;  // bytes nobody asked for
        else
            consumeResponseBody(rest);
    }
}

void Proxy::Exchange::consumeResponseBody(std::string_view data) {
    switch (response_.framing) {
        case ResponseFraming::None:
            backendReusable_ = false;
            return;
        case ResponseFraming::ContentLength: {
            size_t take = static_cast<size_t>(std::min<uint64_t>(data.size(), responseLeft_));
            emitBody(data.substr(0, take));
            responseLeft_ -= take;
            if (take < data.size()) backendReusable_ = false;
            if (responseLeft_ == 0) endResponseBody();
            return;
        }
        case ResponseFraming::Chunked: {
            decoded_.clear();
            size_t used = 0;
            auto status = responseChunks_.feed(data, decoded_, streamLimits(), used);
            emitBody(decoded_);
            if (status == http::ChunkedDecoder::Status::Error) {
                // The head is out already: all we can do is not end the body cleanly.
                abort("malformed chunked body from the backend");
                return;
            }
            if (status == http::ChunkedDecoder::Status::Done) {
                if (used < data.size()) backendReusable_ = false;
                endResponseBody();
            }
            return;
        }
        case ResponseFraming::UntilClose:
            emitBody(data);
            return;
    }
}

void Proxy::Exchange::emitBody(std::string_view data) {
    if (isHeadRequest_) return;
    if (chunkedToClient_)
        appendChunk(toClient_.data, data);
    else
        toClient_.data.append(data);
}

void Proxy::Exchange::endResponseBody() {
    if (responseDone_) return;
    responseDone_ = true;
    if (chunkedToClient_ && !isHeadRequest_) toClient_.data += "0\r\n\r\n";
}

void Proxy::Exchange::startTunnel() {
    phase_ = Phase::Tunnel;
    responseStarted_ = true;
    ++proxy_.stats_.tunnels;
    std::string_view upgrade = "websocket";
    for (const auto& [name, value] : response_.headers)
        if (iequals(name, "Upgrade")) upgrade = value;
    ConnectionTokens hopByHop = connectionTokens(response_.headers);
    std::string& out = toClient_.data;
    out += "HTTP/1.1 101 Switching Protocols\r\n";
    for (const auto& [name, value] : response_.headers) {
        if (hopByHop.contains(name)) continue;
        ResponseAction action = responseAction(name);
        if (action == ResponseAction::Drop || action == ResponseAction::Reframe) continue;
        if (action == ResponseAction::FilterSetCookie &&
            isHubCookie(trimOws(std::string_view(value).substr(0, value.find('=')))))
            continue;
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    }
    out += "Upgrade: ";
    out += upgrade;
    out += "\r\nConnection: Upgrade\r\n\r\n";
    // Frames that came with the 101, and frames the client sent eagerly.
    out += fromBackend_;
    std::string().swap(fromBackend_);
    toBackend_.data += clientLeftover_;
    std::string().swap(clientLeftover_);
    std::string().swap(requestHead_);
    response_ = ResponseHead{};
    backendReusable_ = false;
    setDeadline(config_.tunnelIdleTimeout);
}

bool Proxy::Exchange::flushToClient() {
    if (toClient_.empty()) return false;
    std::string_view pending = toClient_.view();
    ssize_t n = client_.transport().write(client_.socket().get(), pending.data(), pending.size());
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
        abort("client connection failed");
        return false;
    }
    toClient_.consume(static_cast<size_t>(n));
    interimBytes_ -= std::min(interimBytes_, static_cast<size_t>(n));
    if (toClient_.empty() && phase_ == Phase::Tunnel && backendEof_ && !clientEof_)
        client_.transport().shutdownWrite(client_.socket().get());
    return true;
}

void Proxy::Exchange::checkDone() {
    if (!toClient_.empty()) return;
    if (phase_ == Phase::Tunnel) {
        if (clientEof_ && backendEof_ && toBackend_.empty()) finish();
        return;
    }
    if (phase_ == Phase::StreamingBody && responseDone_) finish();
}

void Proxy::Exchange::updateInterest() {
    if (done_) return;
    const size_t cap = config_.bufferBytes;
    uint32_t client = 0;
    uint32_t backend = 0;
    if (!toClient_.empty()) client |= EPOLLOUT;
    if (!toBackend_.empty() || phase_ == Phase::Connecting) backend |= EPOLLOUT;
    if (phase_ == Phase::Tunnel) {
        if (!clientEof_ && toBackend_.size() < cap) client |= kClientIdleEvents;
        if (!backendEof_ && toClient_.size() < cap) backend |= kBackendIdleEvents;
    } else {
        if (!requestBodyDone_)
            client |=
                toBackend_.size() < cap ? uint32_t{EPOLLIN} : 0u;  // a full buffer holds the client back
        else
            client |= clientPipelined_ ? EPOLLRDHUP : kClientIdleEvents;  // see onClient
        if (phase_ == Phase::AwaitingHead) backend |= kBackendIdleEvents;
        if (phase_ == Phase::StreamingBody) {
            if (!responseDone_ && toClient_.size() < cap) backend |= kBackendIdleEvents;
            if (responseDone_ && backendReusable_) backend |= kBackendIdleEvents;  // as the pool will want it
        }
    }
    client_.socket().setEvents(client_.transport().events(client));
    // TLS: bytes OpenSSL already decrypted (a read that filled the buffer,
    // a read paused for flow control) do not make the socket readable.
    if ((client & EPOLLIN) && client_.transport().pending()) kickClient();
    if (backend_) {
        uint32_t wanted = backendTransport_.events(backend);
        // A TLS write waiting for the peer's handshake bytes: a writable
        // socket changes nothing, and level-triggered EPOLLOUT would spin.
        if (backendTransport_.writeBlockedOnRead())
            wanted = backendTransport_.events(backend & ~uint32_t{EPOLLOUT}) | EPOLLIN;
        backend_.setEvents(wanted);
        if ((backend & EPOLLIN) && backendTransport_.pending()) kickBackend();
    }
}

void Proxy::Exchange::refreshDeadline() {
    switch (phase_) {
        case Phase::Connecting:
            return;
        case Phase::AwaitingHead:
            if (!requestFlushed_) setDeadline(config_.ioTimeout);  // after: responseHeadTimeout, set once
            return;
        case Phase::StreamingBody:
            setDeadline(config_.ioTimeout);
            return;
        case Phase::Tunnel:
            setDeadline(config_.tunnelIdleTimeout);
            return;
    }
}

void Proxy::Exchange::setDeadline(std::chrono::milliseconds fromNow) {
    deadline_ = loop_.now() + fromNow;
    if (timerId_ != 0) {
        if (timerAt_ <= deadline_) return;  // fires first; onTimer() re-arms for the rest
        loop_.cancelTimer(std::exchange(timerId_, 0));
    }
    armTimer();
}

void Proxy::Exchange::armTimer() {
    timerAt_ = deadline_;
    auto delay = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - loop_.now());
    timerId_ = loop_.addTimer(delay, [this] { onTimer(); });
}

void Proxy::Exchange::onTimer() {
    timerId_ = 0;
    if (done_) return;
    if (loop_.now() < deadline_) {
        armTimer();
        return;
    }
    entryPoint([&] {
        switch (phase_) {
            case Phase::Connecting:
                fmt::print(stderr, "hubd: proxy: connect to {} timed out for {}\n", target_->poolKey,
                           rawPath_);
                fail(504, "The server did not accept a connection in time.");
                break;
            case Phase::AwaitingHead:
                if (!requestBodyDone_) {
                    clientKeepAlive_ = false;
                    fail(408, "The request body was not received in time.");
                } else {
                    fmt::print(stderr, "hubd: proxy: {} did not answer {} in time\n", target_->poolKey,
                               rawPath_);
                    fail(504, "The server did not answer in time.");
                }
                break;
            case Phase::StreamingBody:
                abort("response body stalled");
                break;
            case Phase::Tunnel:
                abort("WebSocket idle timeout");
                break;
        }
    });
}

void Proxy::Exchange::finish() {
    if (backend_ && backendReusable_ && responseDone_ && requestBodyDone_ && toBackend_.empty() &&
        phase_ == Phase::StreamingBody)
        proxy_.pool_.give(target_->poolKey,
                          BackendConnection{std::move(backend_), std::move(backendTransport_)});
    backend_.reset();
    releaseBackendSlot();
    if (phase_ != Phase::Tunnel && clientKeepAlive_ && requestBodyDone_) {
        client_.buffered() = std::move(clientLeftover_);
        client_.resume();
    } else if (client_) {
        client_.transport().shutdownWrite(client_.socket().get());
        client_ = http::Takeover{};
    }
    done_ = true;
}

void Proxy::Exchange::fail(int status, std::string_view message) {
    if (done_) return;
    // Part of a response (other than our own 100 Continue, whole) is out:
    // the only honest thing left is to close.
    bool interimPartlySent = interimBytes_ > 0 && interimBytes_ < kContinue.size();
    if (responseStarted_ || interimPartlySent) {
        abort(message);
        return;
    }
    ++proxy_.stats_.errors;
    backend_.reset();
    releaseBackendSlot();
    http::Response response;
    response.status = status;
    response.set("Content-Type", wantsJson_ ? "application/json" : "text/html; charset=utf-8");
    response.body = errorBody(status, message, wantsJson_);
    client_.buffered() = std::move(clientLeftover_);
    client_.respond(std::move(response), clientKeepAlive_ && requestBodyDone_);
    done_ = true;
}

void Proxy::Exchange::abort(std::string_view why) {
    if (done_) return;
    ++proxy_.stats_.errors;
    // What clients do to their own connections (reset, leave) is counted,
    // not logged: a client must not decide how much hubd writes to its log.
    bool clientsDoing = why.rfind("client ", 0) == 0;
    if (!clientsDoing && (phase_ != Phase::Tunnel || why != "WebSocket idle timeout"))
        fmt::print(stderr, "hubd: proxy: closing {} ({}): {}\n", rawPath_, target_->poolKey, why);
    backend_.reset();
    releaseBackendSlot();
    client_ = http::Takeover{};
    done_ = true;
}

// ---------------------------------------------------------------------------

Proxy::Proxy(http::EventLoop& loop, ProxyConfig config)
    : loop_(loop),
      config_(std::move(config)),
      pool_(loop, config_.maxIdlePerBackend, config_.poolIdleTimeout),
      scratch_(new char[kScratchBytes]) {}

Proxy::~Proxy() {
    exchanges_.clear();
}

bool Proxy::forwardIfRouted(http::HeadContext& context) {
    auto match = routes_.lookup(context.request.path);
    if (!match) return false;
    forward(context, std::move(match->target));
    return true;
}

void Proxy::forward(http::HeadContext& context, std::shared_ptr<const Upstream> target,
                    std::function<void()> onTraffic) {
    ++stats_.requests;
    auto owned = std::make_unique<Exchange>(*this, context.takeOver(), context.request, context.info,
                                            std::move(target));
    Exchange* exchange = owned.get();
    if (onTraffic) exchange->setOnTraffic(std::move(onTraffic));
    exchanges_.emplace(exchange, std::move(owned));
    exchange->start();
}

void Proxy::finished(Exchange* exchange) {
    exchanges_.erase(exchange);
}

ProxyStats Proxy::stats() const {
    ProxyStats s = stats_;
    s.active = exchanges_.size();
    s.idleBackendConnections = pool_.idleCount();
    s.reusedBackendConnections = pool_.reusedCount();
    return s;
}

}  // namespace hubd::proxy
