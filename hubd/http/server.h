// SPDX-License-Identifier: BSD-3-Clause
// hubd's HTTP/1.1 server: one epoll event loop, non-blocking sockets, no
// thread per connection (see docs/io-model.md). Handlers run on the loop
// thread and must not block; blocking work (PAM) goes to the WorkerPool and
// comes back with EventLoop::post.
//
// MUST: every phase of a connection is bounded in bytes and time
// (Limits): a slow or oversized client gets a 4xx or is closed, and never
// stalls anyone else.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/event_loop.h"
#include "http/transport.h"

namespace hubd::http {

class TlsContext;

struct Limits {
    size_t maxRequestLineBytes = 8 * 1024;  // 414 beyond
    size_t maxHeaderBytes = 32 * 1024;      // 431 beyond (request line + headers)
    size_t maxHeaderCount = 100;            // 431 beyond
    size_t maxBodyBytes = 1024 * 1024;      // 413 beyond
    std::chrono::milliseconds headerTimeout{
        10'000};  // whole request head must arrive in this (slowloris: 408 then close)
    std::chrono::milliseconds bodyTimeout{30'000};   // whole body
    std::chrono::milliseconds idleTimeout{60'000};   // keep-alive idle between requests
    std::chrono::milliseconds writeTimeout{30'000};  // peer not reading our response
    size_t maxConnections = 20'000;                  // beyond: accept and close at once
};

using Header = std::pair<std::string, std::string>;

struct Request {
    std::string method;  // "GET"
    std::string target;  // raw request-target "/hub/api/users?x=1"
    std::string
        path;  // percent-decoded path, "/hub/api/users" (decoding rejects %00 and invalid escapes with 400)
    std::string rawPath;          // path as sent, not decoded
    std::string query;            // raw query string without '?'
    int versionMinor = 1;         // HTTP/1.x
    std::vector<Header> headers;  // names as sent
    std::string body;
    std::string peerAddress;  // "127.0.0.1" or "::1"
    uint16_t peerPort = 0;
    bool tls = false;  // arrived over TLS on this connection (not what a proxy in front says)

    // Case-insensitive lookup; first match; "" if absent.
    std::string_view header(std::string_view name) const;
    bool hasHeader(std::string_view name) const;
    // Decoded query parameter (first occurrence, '+' as space); nullopt if absent.
    std::optional<std::string> queryParam(std::string_view name) const;
};

enum class BodyFraming { None, ContentLength, Chunked };

// How the body of a parsed request head is framed (see parser.h).
struct HeadInfo {
    BodyFraming framing = BodyFraming::None;
    uint64_t contentLength = 0;
    bool keepAlive = true;
    bool expectContinue = false;  // "Expect: 100-continue" on HTTP/1.1
};

struct Response {
    int status = 200;
    std::vector<Header> headers;  // Content-Length, Date, Connection are added by the server
    std::string body;

    Response& set(std::string name, std::string value);
};

class Connection;

// An open-ended response body (Server-Sent Events, progress streams): the
// head goes out at once and every write() goes out as it comes, as one
// chunk on HTTP/1.1 (on HTTP/1.0 the body ends with the connection).
// end() finishes the body and the connection carries on (keep-alive);
// destroying a stream that is still open ends it. Move-only; loop thread.
//
// MUST: a client that stops reading cannot make hubd buffer without bound:
// beyond kMaxStreamBacklog unsent bytes, or Limits::writeTimeout without
// progress, the connection is closed and write() returns false.
class ResponseStream {
public:
    static constexpr size_t kMaxStreamBacklog = 256 * 1024;

    ResponseStream() = default;
    ResponseStream(ResponseStream&&) noexcept = default;
    ResponseStream& operator=(ResponseStream&& other) noexcept;
    ResponseStream(const ResponseStream&) = delete;
    ResponseStream& operator=(const ResponseStream&) = delete;
    ~ResponseStream();

    // Sends `data` now (empty data sends nothing). False once the client
    // is gone or the stream has ended: then nothing more will be sent.
    bool write(std::string_view data);
    void end();
    bool open() const;
    // Runs once, on a later loop iteration, if the client goes away before
    // end(). Not called after end() or after the stream is destroyed.
    void onClose(std::function<void()> callback);

    struct Slot;

private:
    friend class Connection;
    std::shared_ptr<Slot> slot_;
};

// Completes one request. May be moved to a callback and called later, on
// the loop thread. If it is destroyed without send(), the server answers 500.
// Copies share one answer (the first send() wins, later ones are no-ops) and
// the 500 comes when the last copy goes: copyable so that it fits in the
// std::function callbacks of EventLoop::addTimer/post and WorkerPool::submit.
class Responder {
public:
    Responder() = default;
    Responder(const Responder&);
    Responder& operator=(const Responder&);
    Responder(Responder&&) noexcept;
    Responder& operator=(Responder&&) noexcept;
    ~Responder();
    void send(Response response);
    // Answers with the status and headers of `head` (its body is ignored)
    // and leaves the body open; see ResponseStream. For a HEAD request, or
    // once answered or the client is gone, the stream returned is closed.
    ResponseStream stream(Response head);
    bool valid() const;
    // Runs `rewrite` on the response (or the stream's head) just before it
    // goes out, whichever handler sends it: a rewrite at the boundary, such
    // as cookie names that depend on the host (app/subdomains.h), that the
    // handlers need not know about. Rewrites run in the order added.
    void rewriteWith(std::function<void(Response&)> rewrite);

private:
    friend class Connection;
    struct Slot;
    explicit Responder(std::shared_ptr<Slot> slot);
    std::shared_ptr<Slot> slot_;
};

// Runs on the loop thread. `request` stays valid for the handler call and,
// if it answers later, until send() or until the client goes away: an
// asynchronous handler should copy what it needs, not keep the reference.
using Handler = std::function<void(Request& request, Responder responder)>;

namespace detail {
struct ServerCore;
}

// A client connection handed over by a HeadHandler (the proxy): the socket,
// still registered with the loop, its Transport (plain or TLS: read and
// write through it, never on the fd directly), and the bytes the server had
// read past the request head (body start, pipelined requests). The new owner installs its
// callback with socket().watch() before returning to the loop, and gives the
// connection back with resume() or respond(); destroying a Takeover closes
// the connection. It still counts against Limits::maxConnections.
class Takeover {
public:
    Takeover() = default;
    Takeover(Takeover&& other) noexcept;
    Takeover& operator=(Takeover&& other) noexcept;
    Takeover(const Takeover&) = delete;
    Takeover& operator=(const Takeover&) = delete;
    ~Takeover();

    explicit operator bool() const { return static_cast<bool>(socket_); }
    WatchedFd& socket() { return socket_; }
    Transport& transport() { return transport_; }
    std::string& buffered() { return buffered_; }
    const std::string& peerAddress() const { return peerAddress_; }
    uint16_t peerPort() const { return peerPort_; }

    // Back to the server for the next request on this connection; whatever
    // is in buffered() is the start of it. Without a server, closes.
    void resume();
    // Back to the server with a response to write first (framed by the
    // server, as a Handler's would be); keepAlive false closes after it.
    void respond(Response response, bool keepAlive);

private:
    friend class Connection;
    friend struct detail::ServerCore;
    void release();

    std::weak_ptr<detail::ServerCore> server_;
    WatchedFd socket_;
    Transport transport_;
    std::string buffered_;
    std::string peerAddress_;
    uint16_t peerPort_ = 0;
    int versionMinor_ = 1;
    bool isHead_ = false;
};

// What a HeadHandler sees: the request head (body not read yet) and the
// means to take the connection over.
class HeadContext {
public:
    Request& request;      // valid during the call only; body empty
    const HeadInfo& info;  // framing of the body still to come

    // Takes the connection (at most once): the Handler will not see this
    // request, and the server forgets the connection.
    Takeover takeOver();
    bool takenOver() const { return taken_; }

private:
    friend class Connection;
    HeadContext(Request& r, const HeadInfo& i, Connection& c) : request(r), info(i), connection_(c) {}
    Connection& connection_;
    bool taken_ = false;
};

// Runs on the loop thread once a request head is parsed, before its body is
// read: a request it does not take over continues to the Handler (with its
// body buffered and limited by maxBodyBytes); one it takes is its own,
// body and all (streamed uploads, WebSockets).
using HeadHandler = std::function<void(HeadContext& context)>;

class HttpServer {
public:
    HttpServer(EventLoop& loop, Limits limits, Handler handler);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and listens (SO_REUSEADDR, non-blocking, CLOEXEC). host "" or
    // "0.0.0.0" = all IPv4, "::" = all, otherwise an address literal or
    // "localhost". Port 0 picks a free port. Returns the bound port.
    // Throws std::system_error with a sentence naming address and port.
    // With `tls`, every connection is TLS with its current certificate
    // (Request::tls true, HSTS on every response).
    uint16_t listen(const std::string& host, uint16_t port, std::shared_ptr<const TlsContext> tls = nullptr);
    // Adopts an already-listening socket: hubd's main opens every listener
    // first (http/listen_socket.h, or systemd socket activation) and drops
    // its capabilities before the servers see them.
    void adopt(int listeningFd, std::shared_ptr<const TlsContext> tls = nullptr);
    // Set before listening; see HeadHandler.
    void setHeadHandler(HeadHandler handler);

    size_t connectionCount() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;  // shared: Takeovers hold a weak_ptr to hand connections back
};

std::string_view reasonPhrase(int status);

}  // namespace hubd::http
