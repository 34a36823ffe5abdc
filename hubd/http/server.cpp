// SPDX-License-Identifier: BSD-3-Clause
// HttpServer: listening sockets and the per-connection HTTP/1.1 state machine.
#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <exception>
#include <limits>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <unordered_map>

#include <fmt/format.h>

#include "http/listen_socket.h"
#include "http/parser.h"
#include "http/tls_context.h"
#include "http/unique_fd.h"

namespace hubd::http {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 64 * 1024;
// Buffers above this are released between requests so that an idle
// keep-alive connection costs well under a few KiB.
constexpr size_t kKeepCapacity = 4 * 1024;
// After a response that closes, we stop writing and drain what the client
// still sends for a while: closing with unread input makes the kernel send
// RST, which can destroy the response (a 413, say) before the client reads it.
constexpr std::chrono::milliseconds kLingerTimeout{2'000};
constexpr size_t kMaxLingerBytes = 1024 * 1024;
constexpr std::chrono::milliseconds kAcceptPause{100};
// One year, the value preload lists and testssl.sh expect. Not
// includeSubDomains: the hub does not own its parent domain's other hosts.
constexpr std::string_view kHstsHeader = "Strict-Transport-Security: max-age=31536000\r\n";

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

bool hasToken(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        size_t comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (iequals(item, token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

// A handler header carrying CR/LF would let request data split our response.
bool isSafeHeader(const Header& h) {
    if (h.first.empty()) return false;
    for (char c : h.first) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || c == ':') return false;
    }
    for (char c : h.second) {
        auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
    }
    return true;
}

// Framing headers are the server's to write, never the handler's.
bool isServerOwned(std::string_view name) {
    return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") ||
           iequals(name, "Connection") || iequals(name, "Date");
}

void appendNumber(std::string& out, uint64_t n) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, end);
}

Response plainResponse(int status, std::string_view detail) {
    Response r;
    r.status = status;
    r.set("Content-Type", "text/plain; charset=utf-8");
    r.body = fmt::format("{} {}: {}\n", status, reasonPhrase(status), detail);
    return r;
}

std::pair<std::string, uint16_t> describePeer(const sockaddr_storage& addr) {
    char text[INET6_ADDRSTRLEN] = "";
    if (addr.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
        ::inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
        return {text, ntohs(in.sin_port)};
    }
    if (addr.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
        // Dual-stack listeners see IPv4 clients as ::ffff:a.b.c.d; report
        // them as plain IPv4 so logs and allow-lists see one spelling.
        if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr))
            ::inet_ntop(AF_INET, &in6.sin6_addr.s6_addr[12], text, sizeof text);
        else
            ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
        return {text, ntohs(in6.sin6_port)};
    }
    return {"", 0};
}

}  // namespace

class Connection;

// Shared by the copies of one Responder; its destructor is "the last copy
// went away", which answers 500 if nobody answered.
struct Responder::Slot {
    Connection* connection = nullptr;  // null once answered or once the connection closed
    std::vector<std::function<void(Response&)>> rewrites;
    Slot() = default;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();
};

// Shared by a ResponseStream and its connection's bookkeeping.
struct ResponseStream::Slot {
    Connection* connection = nullptr;  // null once ended or once the connection closed
    std::function<void()> onClose;
};

namespace detail {

// What connections share: the loop, the limits, the handler, scratch space.
struct ServerCore {
    struct Listener {
        UniqueFd fd;
        EventLoop::TimerId resumeTimer = 0;
        std::shared_ptr<const TlsContext> tls;  // null: plain HTTP
    };

    ServerCore(EventLoop& l, Limits lim, Handler h)
        : loop(l), limits(lim), headLimits(lim), handler(std::move(h)), scratch(new char[kReadChunk]) {
        // Heads are parsed without the body limit: whether it applies is
        // decided after the HeadHandler (a proxied upload has none).
        headLimits.maxBodyBytes = std::numeric_limits<size_t>::max();
    }

    EventLoop& loop;
    Limits limits;
    Limits headLimits;
    Handler handler;
    HeadHandler headHandler;
    std::weak_ptr<ServerCore> self;
    std::vector<std::unique_ptr<Listener>> listeners;
    std::unordered_map<Connection*, std::unique_ptr<Connection>> connections;
    size_t openCount = 0;
    std::unique_ptr<char[]> scratch;  // one read buffer for all: the loop is single-threaded
    time_t dateSecond = -1;
    char date[40] = "";
    Clock::time_point lastAcceptWarning{};

    std::string_view httpDate();
    void acceptFrom(Listener& listener);
    void pauseAccepting(Listener& listener, int err);
    void addListener(UniqueFd fd, std::shared_ptr<const TlsContext> tls);
    void destroy(Connection* connection) { connections.erase(connection); }
    // A Takeover coming back: a new Connection on the same socket.
    void adoptTakeover(Takeover& takeover, std::optional<Response> response, bool keepAlive);
};

}  // namespace detail

// One client connection: read a request head, then its body, hand it to
// the handler, write the response, repeat (keep-alive) or linger and close.
// A HeadHandler can take the connection over once a head is parsed
// (takeOver): the socket and the unread bytes in in_ leave in a Takeover,
// and come back, if they do, as a new Connection (resumeFrom).
class Connection {
public:
    Connection(detail::ServerCore& server, WatchedFd socket, Transport transport, std::string peerAddress,
               uint16_t peerPort);
    ~Connection() { close(); }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void start();
    void resumeFrom(Takeover& takeover, std::optional<Response> response, bool keepAlive);
    Takeover takeOver();                        // from HeadContext, inside stepHead
    void respond(Response response);            // from Responder, on the loop thread
    ResponseStream startStream(Response head);  // from Responder, on the loop thread
    bool streamWrite(std::string_view data);    // from ResponseStream
    void streamEnd();                           // from ResponseStream
    void close();                               // at once, no response
    void abort() {                              // close() for callers outside the connection
        close();
        destroyIfClosed();
    }

private:
    enum class State { ReadingHead, ReadingBody, Handling, Streaming, Writing, Lingering, Closed };
    enum class FlushResult { Done, Blocked, Failed };

    template <typename Fn>
    void entryPoint(Fn&& fn);
    void onEvents(uint32_t events);
    void onTimer();
    void readSome();
    void drive();
    bool stepHead();
    bool stepBody();
    void dispatch();
    void sendError(int status, std::string_view reason);
    void queueResponse(Response& response, bool streaming = false);
    FlushResult flush();
    bool hasOutput() const { return outSent_ < outHead_.size() + outBody_.size(); }
    void releaseOutput();
    void finishResponse();
    void startLinger();
    void updateInterest();
    void setDeadline(Clock::duration fromNow);
    void clearDeadline() { deadline_ = Clock::time_point::max(); }
    void armTimer();
    void destroyIfClosed();
    void watchSocket(uint32_t events);
    void kick();

    detail::ServerCore& server_;
    WatchedFd socket_;
    Transport transport_;  // every byte of the socket goes through it (TLS or plain)
    State state_ = State::ReadingHead;
    bool handedOver_ = false;        // taken over: the Takeover owns the socket and the connection count
    bool driving_ = false;           // drive() is on the stack: re-entrant calls just leave state for it
    bool idle_ = false;              // keep-alive wait: no byte of the next request yet
    bool headClockPending_ = false;  // a head started: arm headerTimeout unless it completes at once
    bool closeAfter_ = false;        // close once the current response is out
    bool isHead_ = false;
    bool chunkedOut_ = false;  // the response being streamed goes out in chunks
    int versionMinor_ = 1;

    std::string in_;       // received, not yet consumed
    std::string outHead_;  // status line + headers (and a pending 100 Continue)
    std::string outBody_;  // kept apart so a big body is written without a copy
    size_t outSent_ = 0;   // bytes of outHead_ + outBody_ already written

    HeadScanner scanner_;
    ChunkedDecoder chunked_;
    HeadInfo info_;
    Request request_;
    Responder::Slot* slot_ = nullptr;               // the unanswered request's slot; it tells us when it dies
    std::shared_ptr<ResponseStream::Slot> stream_;  // the body being streamed, while State::Streaming

    std::string peerAddress_;
    uint16_t peerPort_;
    size_t lingerBytes_ = 0;

    // One timer per connection, re-armed lazily: moving the deadline later
    // (every keep-alive request does) costs nothing until the timer fires.
    Clock::time_point deadline_ = Clock::time_point::max();
    Clock::time_point timerAt_{};
    EventLoop::TimerId timerId_ = 0;
    EventLoop::TimerId kickTimer_ = 0;  // a drive() deferred to the next loop iteration
};

// ---------------------------------------------------------------------------

Connection::Connection(detail::ServerCore& server, WatchedFd socket, Transport transport,
                       std::string peerAddress, uint16_t peerPort)
    : server_(server),
      socket_(std::move(socket)),
      transport_(std::move(transport)),
      peerAddress_(std::move(peerAddress)),
      peerPort_(peerPort) {
    ++server_.openCount;
}

void Connection::watchSocket(uint32_t events) {
    socket_.watch(events, [this](uint32_t e) { onEvents(e); });
}

void Connection::start() {
    watchSocket(EPOLLIN);
    // The first head must arrive within headerTimeout of the connect: with
    // TLS the handshake (done inside the first reads) counts against it.
    setDeadline(server_.limits.headerTimeout);
}

void Connection::resumeFrom(Takeover& takeover, std::optional<Response> response, bool keepAlive) {
    in_ = std::move(takeover.buffered_);
    if (response) {
        versionMinor_ = takeover.versionMinor_;
        isHead_ = takeover.isHead_;
        info_.keepAlive = keepAlive;
        queueResponse(*response);
        state_ = State::Writing;
        watchSocket(transport_.events(EPOLLOUT));
        setDeadline(server_.limits.writeTimeout);
        kick();
        return;
    }
    watchSocket(transport_.events(EPOLLIN));
    if (in_.empty()) {
        idle_ = true;
        setDeadline(server_.limits.idleTimeout);
        // The proxy may have left a pipelined request decrypted inside
        // OpenSSL: the socket will not say so.
        if (transport_.pending()) kick();
    } else {
        // Pipelined: parse on the next iteration, not inside the caller
        // (which may be finishing the previous exchange).
        headClockPending_ = true;
        kick();
    }
}

void Connection::kick() {
    if (kickTimer_ != 0) return;
    kickTimer_ = server_.loop.addTimer(std::chrono::milliseconds(0), [this] {
        kickTimer_ = 0;
        entryPoint([&] {
            if (transport_.pending()) readSome();
            if (state_ != State::Closed) drive();
        });
    });
}

Takeover Connection::takeOver() {
    Takeover t;
    t.server_ = server_.self;
    t.socket_ = std::move(socket_);
    // The old callback points at this Connection, which is about to go.
    t.socket_.watch(t.socket_.events(), [](uint32_t) {});
    t.transport_ = std::move(transport_);
    t.buffered_ = std::move(in_);
    t.peerAddress_ = peerAddress_;
    t.peerPort_ = peerPort_;
    t.versionMinor_ = versionMinor_;
    t.isHead_ = isHead_;
    handedOver_ = true;  // the Takeover carries the connection count now
    close();
    return t;
}

void Connection::close() {
    if (state_ == State::Closed) return;
    state_ = State::Closed;
    if (!handedOver_) --server_.openCount;
    if (slot_) std::exchange(slot_, nullptr)->connection = nullptr;  // a later send() is a no-op
    if (auto stream = std::exchange(stream_, nullptr)) {
        stream->connection = nullptr;  // a later write() returns false
        // On the next iteration: the owner may be inside write() right now.
        if (auto callback = std::exchange(stream->onClose, nullptr))
            server_.loop.addTimer(std::chrono::milliseconds(0), std::move(callback));
    }
    if (timerId_ != 0) server_.loop.cancelTimer(std::exchange(timerId_, 0));
    if (kickTimer_ != 0) server_.loop.cancelTimer(std::exchange(kickTimer_, 0));
    transport_ = Transport{};  // the TLS session goes before its socket
    socket_.reset();
}

// Everything that enters a connection from the loop goes through here:
// a failure closes this connection only, and a closed connection is freed
// once nothing of it is left on the stack.
template <typename Fn>
void Connection::entryPoint(Fn&& fn) {
    try {
        fn();
    } catch (const std::exception& e) {
        fmt::print(stderr, "hubd: http: closing connection from {}: {}\n", peerAddress_, e.what());
        close();
    }
    destroyIfClosed();
}

void Connection::destroyIfClosed() {
    if (state_ == State::Closed && !driving_) server_.destroy(this);  // `this` is gone after this line
}

void Connection::onEvents(uint32_t events) {
    entryPoint([&] {
        if (events & (EPOLLERR | EPOLLHUP)) {
            close();
            return;
        }
        if (transport_.readable(events)) readSome();
        if (state_ != State::Closed) drive();
    });
}

void Connection::readSome() {
    if (state_ != State::ReadingHead && state_ != State::ReadingBody && state_ != State::Lingering &&
        state_ != State::Streaming)
        return;
    ssize_t n = transport_.read(socket_.get(), server_.scratch.get(), kReadChunk);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
        // Plain HTTP to the TLS port: say so in words a browser shows.
        if (n < 0 && transport_.sawPlainHttp()) Transport::answerPlainHttp(socket_.get());
        // EOF or reset. We only read while the parser needs more, so a
        // request cut short here can never complete.
        close();
        return;
    }
    if (state_ == State::Lingering) {
        lingerBytes_ += static_cast<size_t>(n);
        if (lingerBytes_ > kMaxLingerBytes) close();
        return;
    }
    if (state_ == State::Streaming) {
        // We read during a stream only to notice the client leaving; what
        // it sends is kept (a next request) but may not grow without bound.
        in_.append(server_.scratch.get(), static_cast<size_t>(n));
        if (in_.size() > server_.limits.maxHeaderBytes) close();
        return;
    }
    if (idle_) {
        // First byte of a keep-alive request: the head clock starts now
        // (armed by drive() only if the head is not complete already).
        idle_ = false;
        headClockPending_ = true;
    }
    in_.append(server_.scratch.get(), static_cast<size_t>(n));
}

void Connection::drive() {
    if (driving_) return;
    driving_ = true;
    struct Reset {
        bool& flag;
        ~Reset() { flag = false; }
    } reset{driving_};

    bool progress = true;
    while (progress && state_ != State::Closed) {
        if (hasOutput()) {
            FlushResult r = flush();
            if (r == FlushResult::Failed) {
                close();
                break;
            }
            // A blocked 100 Continue must not stop us reading the body.
            if (r == FlushResult::Blocked && state_ != State::ReadingBody) break;
        }
        switch (state_) {
            case State::ReadingHead:
                progress = stepHead();
                break;
            case State::ReadingBody:
                progress = stepBody();
                break;
            case State::Writing:
                progress = !hasOutput();
                if (progress) finishResponse();
                break;
            case State::Streaming:
                // The write deadline runs only while the client is behind.
                if (!hasOutput())
                    clearDeadline();
                else if (deadline_ == Clock::time_point::max())
                    setDeadline(server_.limits.writeTimeout);
                progress = false;
                break;
            case State::Handling:
            case State::Lingering:
            case State::Closed:
                progress = false;
                break;
        }
    }
    if (state_ == State::Closed) return;
    if (std::exchange(headClockPending_, false) && state_ == State::ReadingHead && !in_.empty())
        setDeadline(server_.limits.headerTimeout);
    updateInterest();
}

bool Connection::stepHead() {
    if (in_.empty()) return false;
    auto status = scanner_.scan(in_, server_.limits);
    if (status == HeadScanner::Status::NeedMore) return false;
    if (status == HeadScanner::Status::Error) {
        sendError(scanner_.error().status, scanner_.error().reason);
        return true;
    }
    std::string_view head(in_.data() + scanner_.headStart(), scanner_.headEnd() - scanner_.headStart());
    ParseError error = parseHead(head, server_.headLimits, request_, info_);
    in_.erase(0, scanner_.headEnd());
    scanner_.reset();
    if (error) {
        sendError(error.status, error.reason);
        return true;
    }
    isHead_ = request_.method == "HEAD";
    versionMinor_ = request_.versionMinor;
    request_.peerAddress = peerAddress_;
    request_.peerPort = peerPort_;
    request_.tls = transport_.tls();
    if (server_.headHandler) {
        HeadContext context(request_, info_, *this);
        try {
            server_.headHandler(context);
        } catch (const std::exception& e) {
            fmt::print(stderr, "hubd: http: head handler failed on {} {}: {}\n", request_.method,
                       request_.rawPath, e.what());
            if (!context.takenOver()) {
                sendError(500, "the request handler failed");
                return true;
            }
        }
        if (context.takenOver()) return false;  // closed: drive() stops here
    }
    if (info_.framing == BodyFraming::ContentLength && info_.contentLength > server_.limits.maxBodyBytes) {
        sendError(413, "request body too large");
        return true;
    }
    if (info_.framing == BodyFraming::None) {
        dispatch();
        return true;
    }
    state_ = State::ReadingBody;
    chunked_.reset();
    setDeadline(server_.limits.bodyTimeout);
    if (info_.expectContinue && in_.empty()) outHead_.append("HTTP/1.1 100 Continue\r\n\r\n");
    return true;
}

bool Connection::stepBody() {
    if (in_.empty()) return false;
    if (info_.framing == BodyFraming::ContentLength) {
        size_t n = std::min<size_t>(in_.size(), info_.contentLength - request_.body.size());
        request_.body.append(in_, 0, n);
        in_.erase(0, n);
        if (request_.body.size() < info_.contentLength) return false;
    } else {
        size_t used = 0;
        auto status = chunked_.feed(in_, request_.body, server_.limits, used);
        in_.erase(0, used);
        if (status == ChunkedDecoder::Status::NeedMore) return false;
        if (status == ChunkedDecoder::Status::Error) {
            sendError(chunked_.error().status, chunked_.error().reason);
            return true;
        }
    }
    dispatch();
    return true;
}

void Connection::dispatch() {
    state_ = State::Handling;
    clearDeadline();  // the handler's time is its own business (PAM can be slow)
    auto slot = std::make_shared<Responder::Slot>();
    slot->connection = this;
    slot_ = slot.get();
    std::string what;
    try {
        server_.handler(request_, Responder(std::move(slot)));
        return;
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
        what = "unknown exception";
    }
    fmt::print(stderr, "hubd: http: handler failed on {} {}: {}\n", request_.method, request_.rawPath, what);
    // The Responder usually answered 500 while unwinding; if the handler
    // had stored a copy somewhere that outlives the throw, answer now.
    if (slot_) respond(plainResponse(500, "the request handler failed"));
}

void Connection::respond(Response response) {
    if (state_ != State::Handling) return;
    if (slot_) std::exchange(slot_, nullptr)->connection = nullptr;
    entryPoint([&] {
        queueResponse(response);
        state_ = State::Writing;
        setDeadline(server_.limits.writeTimeout);
        // Answered from inside the handler: the drive() below it carries on
        // (and request_ lives until the handler has returned).
        if (!driving_) drive();
    });
}

ResponseStream Connection::startStream(Response head) {
    ResponseStream stream;
    if (state_ != State::Handling) return stream;
    if (slot_) std::exchange(slot_, nullptr)->connection = nullptr;
    entryPoint([&] {
        bool bodyAllowed = head.status != 204 && head.status != 304;
        queueResponse(head, true);
        if (isHead_ || !bodyAllowed) {
            // No body to stream (HEAD, 204, 304): an ordinary response.
            chunkedOut_ = false;
            state_ = State::Writing;
            setDeadline(server_.limits.writeTimeout);
        } else {
            stream_ = std::make_shared<ResponseStream::Slot>();
            stream_->connection = this;
            stream.slot_ = stream_;
            state_ = State::Streaming;
            clearDeadline();
        }
        if (!driving_) drive();
    });
    return stream;
}

bool Connection::streamWrite(std::string_view data) {
    bool written = false;
    entryPoint([&] {
        if (state_ != State::Streaming || data.empty()) {
            written = state_ == State::Streaming;
            return;
        }
        size_t backlog = outHead_.size() + outBody_.size() - outSent_;
        if (backlog + data.size() > ResponseStream::kMaxStreamBacklog) {
            fmt::print(stderr, "hubd: http: {} stopped reading a streamed response; closing\n", peerAddress_);
            close();
            return;
        }
        if (chunkedOut_) {
            char size[20];
            int length = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
            outBody_.append(size, static_cast<size_t>(length));
            outBody_.append(data);
            outBody_.append("\r\n");
        } else {
            outBody_.append(data);
        }
        written = true;
        if (!driving_) drive();
    });
    return written;
}

void Connection::streamEnd() {
    entryPoint([&] {
        if (state_ != State::Streaming) return;
        std::exchange(stream_, nullptr)->connection = nullptr;
        if (chunkedOut_) outBody_.append("0\r\n\r\n");
        chunkedOut_ = false;
        state_ = State::Writing;
        setDeadline(server_.limits.writeTimeout);
        if (!driving_) drive();
    });
}

void Connection::sendError(int status, std::string_view reason) {
    closeAfter_ = true;
    in_.clear();
    Response response = plainResponse(status, reason);
    queueResponse(response);
    state_ = State::Writing;
    setDeadline(server_.limits.writeTimeout);
}

void Connection::queueResponse(Response& response, bool streaming) {
    bool valid = response.status >= 200 && response.status <= 999 &&
                 std::all_of(response.headers.begin(), response.headers.end(), isSafeHeader);
    if (!valid) {
        fmt::print(stderr, "hubd: http: handler produced an invalid response (status {}); sending 500\n",
                   response.status);
        response = plainResponse(500, "the request handler produced an invalid response");
    }
    if (!info_.keepAlive) closeAfter_ = true;
    size_t headerBytes = 0;
    bool hsts = transport_.tls();  // HSTS on every TLS response, unless the handler set its own
    for (const auto& [name, value] : response.headers) {
        headerBytes += name.size() + value.size() + 4;
        if (iequals(name, "Connection") && hasToken(value, "close")) closeAfter_ = true;
        if (hsts && iequals(name, "Strict-Transport-Security")) hsts = false;
    }
    int status = response.status;
    bool bodyAllowed = status != 204 && status != 304;
    chunkedOut_ = streaming && bodyAllowed && versionMinor_ == 1;
    // HTTP/1.0 has no chunks: the end of the connection ends the body.
    if (streaming && bodyAllowed && versionMinor_ == 0) closeAfter_ = true;

    std::string& out = outHead_;
    out.reserve(out.size() + headerBytes + 128);
    out += "HTTP/1.1 ";
    appendNumber(out, static_cast<uint64_t>(status));
    out += ' ';
    out += reasonPhrase(status);
    out += "\r\n";
    for (const auto& [name, value] : response.headers) {
        if (isServerOwned(name)) continue;
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    }
    out += "Date: ";
    out += server_.httpDate();
    out += "\r\n";
    if (hsts) out += kHstsHeader;
    if (chunkedOut_) {
        out += "Transfer-Encoding: chunked\r\n";
    } else if (bodyAllowed && !streaming) {
        out += "Content-Length: ";
        appendNumber(out, response.body.size());
        out += "\r\n";
    }
    if (closeAfter_)
        out += "Connection: close\r\n";
    else if (versionMinor_ == 0)
        out += "Connection: keep-alive\r\n";
    out += "\r\n";
    if (bodyAllowed && !isHead_ && !streaming) outBody_ = std::move(response.body);
}

Connection::FlushResult Connection::flush() {
    while (hasOutput()) {
        iovec iov[2];
        int count = 0;
        if (outSent_ < outHead_.size())
            iov[count++] = {outHead_.data() + outSent_, outHead_.size() - outSent_};
        size_t bodyDone = outSent_ > outHead_.size() ? outSent_ - outHead_.size() : 0;
        if (bodyDone < outBody_.size())
            iov[count++] = {outBody_.data() + bodyDone, outBody_.size() - bodyDone};
        size_t wanted = 0;
        for (int i = 0; i < count; ++i) wanted += iov[i].iov_len;
        ssize_t n = transport_.writev(socket_.get(), iov, count);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return FlushResult::Blocked;
            return FlushResult::Failed;
        }
        outSent_ += static_cast<size_t>(n);
        // A short write means the socket buffer is full: asking again
        // would only cost a syscall returning EAGAIN.
        if (static_cast<size_t>(n) < wanted) return FlushResult::Blocked;
    }
    releaseOutput();
    return FlushResult::Done;
}

void Connection::releaseOutput() {
    outSent_ = 0;
    outHead_.clear();
    if (outHead_.capacity() > kKeepCapacity) std::string().swap(outHead_);
    std::string().swap(outBody_);
}

void Connection::finishResponse() {
    releaseOutput();
    request_ = Request{};
    info_ = HeadInfo{};
    isHead_ = false;
    versionMinor_ = 1;
    if (closeAfter_) {
        startLinger();
        return;
    }
    state_ = State::ReadingHead;
    if (in_.empty()) {
        if (in_.capacity() > kKeepCapacity) std::string().swap(in_);
        idle_ = true;
        setDeadline(server_.limits.idleTimeout);
    } else {
        // Pipelined: the next head is (partly) here already.
        if (in_.capacity() > kKeepCapacity && in_.size() < in_.capacity() / 4) in_.shrink_to_fit();
        idle_ = false;
        headClockPending_ = true;
    }
}

void Connection::startLinger() {
    state_ = State::Lingering;
    std::string().swap(in_);
    lingerBytes_ = 0;
    // FIN (after close_notify on TLS) so the client sees the end of the response at once.
    transport_.shutdownWrite(socket_.get());
    setDeadline(kLingerTimeout);
}

void Connection::updateInterest() {
    uint32_t want = 0;
    if (state_ == State::ReadingHead || state_ == State::ReadingBody || state_ == State::Lingering ||
        state_ == State::Streaming)
        want |= EPOLLIN;
    if (hasOutput()) want |= EPOLLOUT;
    socket_.setEvents(transport_.events(want));
    // Bytes OpenSSL decrypted already do not make the socket readable.
    if ((want & EPOLLIN) && transport_.pending()) kick();
}

void Connection::setDeadline(Clock::duration fromNow) {
    deadline_ = server_.loop.now() + fromNow;
    if (timerId_ != 0) {
        if (timerAt_ <= deadline_) return;  // fires first; onTimer() re-arms for the rest
        server_.loop.cancelTimer(std::exchange(timerId_, 0));
    }
    armTimer();
}

void Connection::armTimer() {
    timerAt_ = deadline_;
    auto delay = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - server_.loop.now());
    timerId_ = server_.loop.addTimer(delay, [this] { onTimer(); });
}

void Connection::onTimer() {
    timerId_ = 0;
    if (state_ == State::Closed || deadline_ == Clock::time_point::max()) return;
    if (server_.loop.now() < deadline_) {
        armTimer();
        return;
    }
    entryPoint([&] {
        clearDeadline();
        switch (state_) {
            case State::ReadingHead:
                // Nothing of a request yet (idle keep-alive, or a connect
                // that never spoke): close quietly, as nginx does.
                if (idle_ || in_.empty())
                    close();
                else
                    sendError(408, "request header not received in time");
                break;
            case State::ReadingBody:
                sendError(408, "request body not received in time");
                break;
            case State::Handling:
            case State::Streaming:
            case State::Writing:
            case State::Lingering:
            case State::Closed:
                close();
                break;
        }
        if (state_ != State::Closed) drive();
    });
}

// ---------------------------------------------------------------------------

std::string_view detail::ServerCore::httpDate() {
    time_t now = ::time(nullptr);
    if (now != dateSecond) {
        static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        struct tm t {};
        ::gmtime_r(&now, &t);
        // Not strftime: %a and %b follow the locale, HTTP wants English.
        std::snprintf(date, sizeof date, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[t.tm_wday % 7],
                      t.tm_mday, kMonths[t.tm_mon % 12], t.tm_year + 1900, t.tm_hour, t.tm_min, t.tm_sec);
        dateSecond = now;
    }
    return date;
}

void detail::ServerCore::acceptFrom(Listener& listener) {
    for (;;) {
        sockaddr_storage addr{};
        socklen_t length = sizeof addr;
        int raw = ::accept4(listener.fd.get(), reinterpret_cast<sockaddr*>(&addr), &length,
                            SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (raw < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) return;
            // The client gave up, or a firewall said no: next one.
            if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM) continue;
            // Out of fds or memory: the listener would stay readable and
            // spin the loop, so stop accepting for a moment.
            pauseAccepting(listener, err);
            return;
        }
        UniqueFd fd(raw);
        if (openCount >= limits.maxConnections) continue;  // closes it at once
        int one = 1;
        // Fails harmlessly on an adopted AF_UNIX listener.
        ::setsockopt(raw, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        Transport transport;
        if (listener.tls) {
            UniqueSsl ssl = listener.tls->newSession(raw);
            if (!ssl) continue;  // out of memory: closes it
            transport = Transport(std::move(ssl));
        }
        auto [host, port] = describePeer(addr);
        auto owned = std::make_unique<Connection>(*this, WatchedFd(loop, std::move(fd)), std::move(transport),
                                                  std::move(host), port);
        Connection* connection = owned.get();
        connections.emplace(connection, std::move(owned));
        try {
            connection->start();
        } catch (const std::exception& e) {
            fmt::print(stderr, "hubd: http: cannot watch new connection: {}\n", e.what());
            destroy(connection);
        }
    }
}

void detail::ServerCore::adoptTakeover(Takeover& takeover, std::optional<Response> response, bool keepAlive) {
    auto owned =
        std::make_unique<Connection>(*this, std::move(takeover.socket_), std::move(takeover.transport_),
                                     takeover.peerAddress_, takeover.peerPort_);
    takeover.release();  // the new Connection counts now
    Connection* connection = owned.get();
    connections.emplace(connection, std::move(owned));
    try {
        connection->resumeFrom(takeover, std::move(response), keepAlive);
    } catch (const std::exception& e) {
        fmt::print(stderr, "hubd: http: cannot resume connection: {}\n", e.what());
        connection->abort();
    }
}

void detail::ServerCore::pauseAccepting(Listener& listener, int err) {
    auto now = loop.now();
    if (now - lastAcceptWarning > std::chrono::seconds(5)) {
        lastAcceptWarning = now;
        fmt::print(stderr, "hubd: http: accept failed ({}); pausing new connections for {} ms\n",
                   std::system_category().message(err), kAcceptPause.count());
    }
    if (listener.resumeTimer != 0) return;
    loop.modify(listener.fd.get(), 0);
    listener.resumeTimer = loop.addTimer(kAcceptPause, [this, &listener] {
        listener.resumeTimer = 0;
        loop.modify(listener.fd.get(), EPOLLIN);
    });
}

void detail::ServerCore::addListener(UniqueFd fd, std::shared_ptr<const TlsContext> tls) {
    auto listener = std::make_unique<Listener>();
    listener->fd = std::move(fd);
    listener->tls = std::move(tls);
    Listener* l = listener.get();
    loop.watch(l->fd.get(), EPOLLIN, [this, l](uint32_t) { acceptFrom(*l); });
    listeners.push_back(std::move(listener));
}

struct HttpServer::Impl : detail::ServerCore {
    using ServerCore::ServerCore;
    ~Impl() {
        for (auto& l : listeners) {
            if (l->resumeTimer != 0) loop.cancelTimer(l->resumeTimer);
            loop.unwatch(l->fd.get());
        }
        connections.clear();  // before the members they refer to go
    }
};

HttpServer::HttpServer(EventLoop& loop, Limits limits, Handler handler)
    : impl_(std::make_shared<Impl>(loop, limits, std::move(handler))) {
    impl_->self = impl_;
}

void HttpServer::setHeadHandler(HeadHandler handler) {
    impl_->headHandler = std::move(handler);
}

HttpServer::~HttpServer() = default;

uint16_t HttpServer::listen(const std::string& host, uint16_t port, std::shared_ptr<const TlsContext> tls) {
    uint16_t boundPort = 0;
    impl_->addListener(openListeningSocket(host, port, boundPort), std::move(tls));
    return boundPort;
}

void HttpServer::adopt(int listeningFd, std::shared_ptr<const TlsContext> tls) {
    int accepting = 0;
    socklen_t length = sizeof accepting;
    if (::getsockopt(listeningFd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) != 0 || !accepting)
        throw std::system_error(EINVAL, std::system_category(),
                                fmt::format("fd {} is not a listening socket", listeningFd));
    int flags = ::fcntl(listeningFd, F_GETFL);
    if (flags < 0 || ::fcntl(listeningFd, F_SETFL, flags | O_NONBLOCK) != 0 ||
        ::fcntl(listeningFd, F_SETFD, FD_CLOEXEC) != 0)
        throw std::system_error(errno, std::system_category(),
                                fmt::format("cannot make fd {} non-blocking", listeningFd));
    impl_->addListener(UniqueFd(listeningFd), std::move(tls));
}

size_t HttpServer::connectionCount() const {
    return impl_->openCount;
}

// ---------------------------------------------------------------------------

Takeover HeadContext::takeOver() {
    if (taken_) throw std::logic_error("HeadContext::takeOver called twice");
    taken_ = true;
    return connection_.takeOver();
}

Takeover::Takeover(Takeover&& other) noexcept
    : server_(std::move(other.server_)),
      socket_(std::move(other.socket_)),
      transport_(std::move(other.transport_)),
      buffered_(std::move(other.buffered_)),
      peerAddress_(std::move(other.peerAddress_)),
      peerPort_(other.peerPort_),
      versionMinor_(other.versionMinor_),
      isHead_(other.isHead_) {
    other.server_.reset();
}

Takeover& Takeover::operator=(Takeover&& other) noexcept {
    if (this != &other) {
        release();
        socket_.reset();
        server_ = std::move(other.server_);
        other.server_.reset();
        socket_ = std::move(other.socket_);
        transport_ = std::move(other.transport_);
        buffered_ = std::move(other.buffered_);
        peerAddress_ = std::move(other.peerAddress_);
        peerPort_ = other.peerPort_;
        versionMinor_ = other.versionMinor_;
        isHead_ = other.isHead_;
    }
    return *this;
}

Takeover::~Takeover() {
    release();
}

// Gives back the connection count; the socket (if still here) closes with us.
void Takeover::release() {
    if (auto server = server_.lock()) --server->openCount;
    server_.reset();
}

void Takeover::resume() {
    auto server = server_.lock();
    if (!server || !socket_) {
        release();
        socket_.reset();
        return;
    }
    server->adoptTakeover(*this, std::nullopt, true);
}

void Takeover::respond(Response response, bool keepAlive) {
    auto server = server_.lock();
    if (!server || !socket_) {
        release();
        socket_.reset();
        return;
    }
    server->adoptTakeover(*this, std::move(response), keepAlive);
}

// ---------------------------------------------------------------------------

Responder::Responder(std::shared_ptr<Slot> slot) : slot_(std::move(slot)) {}

Responder::Responder(const Responder&) = default;
Responder& Responder::operator=(const Responder&) = default;
Responder::Responder(Responder&&) noexcept = default;
Responder& Responder::operator=(Responder&&) noexcept = default;
Responder::~Responder() = default;

Responder::Slot::~Slot() {
    if (!connection) return;
    Connection* c = std::exchange(connection, nullptr);
    // While unwinding, the handler's failure is logged where it is caught.
    if (std::uncaught_exceptions() == 0)
        std::fputs("hubd: http: a handler dropped its Responder without answering; sending 500\n", stderr);
    try {
        c->respond(plainResponse(500, "the request handler did not answer"));
    } catch (...) {
        c->abort();
    }
}

void Responder::send(Response response) {
    auto slot = std::move(slot_);
    if (!slot || !slot->connection) return;  // answered already, or the client is gone
    for (const auto& rewrite : slot->rewrites) rewrite(response);
    slot->connection->respond(std::move(response));
}

ResponseStream Responder::stream(Response head) {
    auto slot = std::move(slot_);
    if (!slot || !slot->connection) return {};
    for (const auto& rewrite : slot->rewrites) rewrite(head);
    return slot->connection->startStream(std::move(head));
}

void Responder::rewriteWith(std::function<void(Response&)> rewrite) {
    if (slot_) slot_->rewrites.push_back(std::move(rewrite));
}

ResponseStream& ResponseStream::operator=(ResponseStream&& other) noexcept {
    if (this != &other) {
        end();
        slot_ = std::move(other.slot_);
    }
    return *this;
}

ResponseStream::~ResponseStream() {
    end();
}

bool ResponseStream::write(std::string_view data) {
    if (!slot_ || !slot_->connection) return false;
    return slot_->connection->streamWrite(data);
}

void ResponseStream::end() {
    if (slot_ && slot_->connection) {
        slot_->onClose = nullptr;
        slot_->connection->streamEnd();
    }
    slot_.reset();
}

bool ResponseStream::open() const {
    return slot_ && slot_->connection != nullptr;
}

void ResponseStream::onClose(std::function<void()> callback) {
    if (slot_) slot_->onClose = std::move(callback);
}

bool Responder::valid() const {
    return slot_ && slot_->connection != nullptr;
}

Response& Response::set(std::string name, std::string value) {
    auto same = [&](const Header& h) { return iequals(h.first, name); };
    auto it = std::find_if(headers.begin(), headers.end(), same);
    if (it == headers.end()) {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
    it->second = std::move(value);
    headers.erase(std::remove_if(it + 1, headers.end(), same), headers.end());
    return *this;
}

std::string_view reasonPhrase(int status) {
    switch (status) {
        case 100:
            return "Continue";
        case 101:
            return "Switching Protocols";
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 202:
            return "Accepted";
        case 204:
            return "No Content";
        case 206:
            return "Partial Content";
        case 301:
            return "Moved Permanently";
        case 302:
            return "Found";
        case 303:
            return "See Other";
        case 304:
            return "Not Modified";
        case 307:
            return "Temporary Redirect";
        case 308:
            return "Permanent Redirect";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 406:
            return "Not Acceptable";
        case 408:
            return "Request Timeout";
        case 409:
            return "Conflict";
        case 410:
            return "Gone";
        case 411:
            return "Length Required";
        case 412:
            return "Precondition Failed";
        case 413:
            return "Content Too Large";
        case 414:
            return "URI Too Long";
        case 415:
            return "Unsupported Media Type";
        case 417:
            return "Expectation Failed";
        case 422:
            return "Unprocessable Content";
        case 426:
            return "Upgrade Required";
        case 429:
            return "Too Many Requests";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Unknown";
    }
}

}  // namespace hubd::http
