// SPDX-License-Identifier: BSD-3-Clause
// The proxy engine over real sockets on 127.0.0.1: an HttpServer with the
// proxy as its HeadHandler on a loop thread, raw-socket test backends on
// threads of their own, blocking test clients. Also the route table and the
// response-head parser on their own.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/event_loop.h"
#include "http/server.h"
#include "http/unique_fd.h"
#include "proxy/header_policy.h"
#include "proxy/proxy.h"
#include "proxy/response_head.h"
#include "proxy/routes.h"

using namespace hubd::http;
using namespace hubd::proxy;
using namespace std::chrono_literals;

namespace {

constexpr size_t kMiB = 1024 * 1024;

bool sendAll(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

// Reads until buf holds "\r\n\r\n"; returns the head (consumed from buf), "" on EOF.
std::string readHead(int fd, std::string& buf) {
    for (;;) {
        size_t end = buf.find("\r\n\r\n");
        if (end != std::string::npos) {
            std::string head = buf.substr(0, end + 4);
            buf.erase(0, end + 4);
            return head;
        }
        char tmp[16384];
        ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) return {};
        buf.append(tmp, static_cast<size_t>(n));
    }
}

bool readExactly(int fd, std::string& buf, size_t n, std::string& out) {
    while (buf.size() < n) {
        char tmp[65536];
        ssize_t r = ::recv(fd, tmp, sizeof tmp, 0);
        if (r <= 0) return false;
        buf.append(tmp, static_cast<size_t>(r));
    }
    out.append(buf, 0, n);
    buf.erase(0, n);
    return true;
}

std::string headerOf(std::string_view head, std::string_view name) {
    size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
        size_t end = head.find("\r\n", pos + 2);
        std::string_view line = head.substr(pos + 2, end - pos - 2);
        size_t colon = line.find(':');
        if (colon == name.size() && ::strncasecmp(line.data(), name.data(), name.size()) == 0) {
            std::string_view v = line.substr(colon + 1);
            while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
            return std::string(v);
        }
        pos = end;
    }
    return {};
}

int countHeader(std::string_view head, std::string_view name) {
    int n = 0;
    std::string needle = "\r\n" + std::string(name) + ":";
    for (size_t pos = 0; (pos = head.find(needle, pos)) != std::string_view::npos; pos += needle.size()) ++n;
    return n;
}

// Decodes a chunked body from fd; false on malformed input.
bool readChunked(int fd, std::string& buf, std::string& out) {
    for (;;) {
        size_t eol;
        while ((eol = buf.find("\r\n")) == std::string::npos) {
            char tmp[65536];
            ssize_t r = ::recv(fd, tmp, sizeof tmp, 0);
            if (r <= 0) return false;
            buf.append(tmp, static_cast<size_t>(r));
        }
        size_t size = std::stoul(buf.substr(0, eol), nullptr, 16);
        buf.erase(0, eol + 2);
        std::string chunk;
        if (!readExactly(fd, buf, size + 2, chunk)) return false;
        if (size == 0) return chunk == "\r\n";
        out.append(chunk, 0, size);
    }
}

struct RawRequest {
    std::string head;
    std::string body;
    std::string method;
    std::string target;
    std::string header(std::string_view name) const { return headerOf(head, name); }
};

// A backend speaking raw HTTP from threads: each connection runs `handler`
// per request until it returns false. Bodies (Content-Length or chunked)
// are read first unless readBodies is false.
class RawBackend {
public:
    using Handler = std::function<bool(int fd, RawRequest& request, std::string& buf)>;

    explicit RawBackend(Handler handler, bool readBodies = true)
        : handler_(std::move(handler)), readBodies_(readBodies) {
        listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        int one = 1;
        ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listener_.get(), 128) == 0);
        socklen_t len = sizeof addr;
        ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
        port = ntohs(addr.sin_port);
        acceptor_ = std::thread([this] { acceptLoop(); });
    }
    ~RawBackend() {
        stopping_ = true;
        acceptor_.join();
        {
            std::lock_guard lock(mutex_);
            for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
        }
        for (auto& t : workers_) t.join();
    }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
    int accepted() const { return accepted_.load(); }
    std::vector<RawRequest> requests() {
        std::lock_guard lock(mutex_);
        return requests_;
    }
    RawRequest lastRequest() {
        std::lock_guard lock(mutex_);
        return requests_.empty() ? RawRequest{} : requests_.back();
    }

    uint16_t port = 0;

private:
    void acceptLoop() {
        while (!stopping_) {
            pollfd p{listener_.get(), POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            ++accepted_;
            std::lock_guard lock(mutex_);
            open_.push_back(fd);
            workers_.emplace_back([this, fd] { serve(fd); });
        }
    }
    void serve(int fd) {
        std::string buf;
        for (;;) {
            RawRequest request;
            request.head = readHead(fd, buf);
            if (request.head.empty()) break;
            size_t sp1 = request.head.find(' ');
            size_t sp2 = request.head.find(' ', sp1 + 1);
            request.method = request.head.substr(0, sp1);
            request.target = request.head.substr(sp1 + 1, sp2 - sp1 - 1);
            if (readBodies_) {
                std::string cl = request.header("Content-Length");
                if (!cl.empty()) {
                    if (!readExactly(fd, buf, std::stoul(cl), request.body)) break;
                } else if (request.header("Transfer-Encoding") == "chunked") {
                    if (!readChunked(fd, buf, request.body)) break;
                }
            }
            {
                std::lock_guard lock(mutex_);
                requests_.push_back(request);
            }
            if (!handler_(fd, request, buf)) break;
        }
        std::lock_guard lock(mutex_);
        std::erase(open_, fd);
        ::close(fd);
    }

    Handler handler_;
    bool readBodies_;
    UniqueFd listener_;
    std::thread acceptor_;
    std::atomic<bool> stopping_{false};
    std::atomic<int> accepted_{0};
    std::mutex mutex_;
    std::vector<std::thread> workers_;
    std::vector<int> open_;
    std::vector<RawRequest> requests_;
};

// Answers "<method> <target> <body>" with Content-Length, keep-alive.
bool echoHandler(int fd, RawRequest& r, std::string&) {
    std::string body = r.method + " " + r.target + (r.body.empty() ? "" : " " + r.body);
    return sendAll(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body);
}

// The hub side of the front server: answers what the proxy does not take.
void hubHandler(Request& request, Responder responder) {
    Response r;
    r.body = "hub " + request.method + " " + request.path + (request.body.empty() ? "" : " " + request.body);
    responder.send(std::move(r));
}

struct Front {
    EventLoop loop;
    Proxy proxy;
    HttpServer server;
    uint16_t port = 0;
    std::thread thread;

    explicit Front(ProxyConfig config = {}) : proxy(loop, std::move(config)), server(loop, {}, hubHandler) {
        server.setHeadHandler([this](HeadContext& context) { proxy.forwardIfRouted(context); });
        port = server.listen("127.0.0.1", 0);
        thread = std::thread([this] { loop.run(); });
    }
    ~Front() {
        loop.stop();
        thread.join();
    }
    template <typename Fn>
    auto onLoop(Fn fn) {
        std::promise<decltype(fn())> promise;
        auto future = promise.get_future();
        loop.post([&] { promise.set_value(fn()); });
        return future.get();
    }
    void route(const std::string& prefix, const std::string& url) {
        REQUIRE(onLoop([&] { return proxy.routes().add(prefix, url); }));
    }
    ProxyStats stats() {
        return onLoop([&] { return proxy.stats(); });
    }
    bool waitIdle(std::chrono::milliseconds timeout = 5s) {
        auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            if (stats().active == 0) return true;
            std::this_thread::sleep_for(5ms);
        }
        return false;
    }
};

UniqueFd connectTo(uint16_t port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{10, 0};  // a broken test fails instead of hanging
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

struct Reply {
    int status = 0;
    std::string head;
    std::string body;
    std::string header(std::string_view name) const { return headerOf(head, name); }
};

// One response from fd (1xx skipped); body by Content-Length, chunked or EOF.
Reply readReply(int fd, std::string& buf, bool headRequest = false) {
    Reply reply;
    for (;;) {
        reply.head = readHead(fd, buf);
        if (reply.head.size() < 12) return reply;
        reply.status = std::stoi(reply.head.substr(9, 3));
        if (reply.status >= 200) break;
    }
    if (headRequest || reply.status == 204 || reply.status == 304) return reply;
    std::string cl = reply.header("Content-Length");
    if (!cl.empty()) {
        if (!readExactly(fd, buf, std::stoul(cl), reply.body)) reply.status = -1;
    } else if (reply.header("Transfer-Encoding") == "chunked") {
        if (!readChunked(fd, buf, reply.body)) reply.status = -1;
    } else {
        reply.body = std::move(buf);
        buf.clear();
        char tmp[65536];
        ssize_t n;
        while ((n = ::recv(fd, tmp, sizeof tmp, 0)) > 0) reply.body.append(tmp, static_cast<size_t>(n));
    }
    return reply;
}

Reply request(uint16_t port, const std::string& raw) {
    UniqueFd fd = connectTo(port);
    REQUIRE(sendAll(fd.get(), raw));
    std::string buf;
    return readReply(fd.get(), buf, raw.rfind("HEAD ", 0) == 0);
}

std::string get(const std::string& path, const std::string& extra = "") {
    return "GET " + path + " HTTP/1.1\r\nHost: hub.example:8000\r\n" + extra + "\r\n";
}

bool peerClosed(int fd) {
    char c;
    ssize_t n = ::recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("routes: longest prefix by whole segments") {
    RouteTable t;
    REQUIRE(t.add("/services/echo/", "http://127.0.0.1:9001"));
    REQUIRE(t.add("/user/alice/", "http://127.0.0.1:9002"));
    REQUIRE(t.add("/user/alice/proxy/8080", "http://127.0.0.1:9003/base/"));
    CHECK(t.size() == 3);
    CHECK(t.lookup("/services/echo/x")->target->port == 9001);
    CHECK(t.lookup("/services/echo")->target->port == 9001);
    CHECK_FALSE(t.lookup("/services/echoes/x"));
    CHECK_FALSE(t.lookup("/services/"));
    CHECK(t.lookup("/user/alice/api/kernels")->target->port == 9002);
    auto deep = t.lookup("/user/alice/proxy/8080/index.html");
    REQUIRE(deep);
    CHECK(deep->target->port == 9003);
    CHECK(deep->target->pathPrefix == "/base");
    CHECK(deep->prefix == "/user/alice/proxy/8080/");
    CHECK_FALSE(t.lookup("/user/al/"));
    CHECK_FALSE(t.lookup("/user/alice/../bob/"));  // dot segments never match
    CHECK_FALSE(t.lookup("/user/alice/./x"));
    CHECK(t.remove("/user/alice"));
    CHECK_FALSE(t.lookup("/user/alice/api"));
    CHECK(t.lookup("/user/alice/proxy/8080/")->target->port == 9003);
    CHECK_FALSE(t.remove("/user/alice/"));
    CHECK(t.add("/user/alice/", "http://[::1]:9004"));  // re-add replaces at once
    CHECK(t.lookup("/user/alice/x")->target->poolKey == "[::1]:9004");
    CHECK(t.size() == 3);
    auto listed = t.list();
    CHECK(listed.front().first == "/services/echo/");
}

TEST_CASE("routes: target URLs are checked") {
    std::string error;
    CHECK_FALSE(parseUpstream("https://127.0.0.1:1", &error));
    CHECK_FALSE(parseUpstream("http://example.com:80", &error));
    CHECK(error.find("IP address") != std::string::npos);
    CHECK_FALSE(parseUpstream("http://127.0.0.1:0"));
    CHECK_FALSE(parseUpstream("http://127.0.0.1:99999"));
    CHECK_FALSE(parseUpstream("http://127.0.0.1:80/x?y"));
    auto up = parseUpstream("http://localhost:8888/");
    REQUIRE(up);
    CHECK(up->host == "127.0.0.1");
    CHECK(up->origin == "http://localhost:8888");
    CHECK(up->pathPrefix.empty());
}

TEST_CASE("response heads are parsed strictly") {
    ResponseHead h;
    CHECK(parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, h).empty());
    CHECK(h.framing == ResponseFraming::ContentLength);
    CHECK(h.contentLength == 5);
    CHECK(parseResponseHead("HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n", false, h).empty());
    CHECK(h.framing == ResponseFraming::Chunked);
    CHECK(parseResponseHead("HTTP/1.0 200 OK\r\n\r\n", false, h).empty());
    CHECK(h.framing == ResponseFraming::UntilClose);
    CHECK_FALSE(h.keepAlive);
    CHECK(parseResponseHead("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false, h).empty());
    CHECK(h.framing == ResponseFraming::None);
    CHECK(parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true, h).empty());
    CHECK(h.framing == ResponseFraming::None);
    for (const char* bad : {
             "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
             "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
             "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
             "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
             "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
             "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
             "HTTP/1.1 20 OK\r\n\r\n",
             "HTTP/2 200 OK\r\n\r\n",
             "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
             "HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n",
         }) {
        CAPTURE(bad);
        CHECK_FALSE(parseResponseHead(bad, false, h).empty());
    }
}

TEST_CASE("the header policy table") {
    for (auto name : {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
                      "proxy-connection", "proxy-authorization"}) {
        CAPTURE(name);
        CHECK(requestAction(name) != RequestAction::Forward);
        CHECK(responseAction(name) != ResponseAction::Forward);
    }
    CHECK(requestAction("Cookie") == RequestAction::FilterCookies);
    CHECK(isHubCookie("jupyterhub-hub-login"));
    CHECK(isHubCookie("jupyterhub-session-id"));
    CHECK_FALSE(isHubCookie("_xsrf"));
}

TEST_CASE("GET and POST go through, Host kept, path and query intact") {
    RawBackend backend(echoHandler);
    Front front;
    front.route("/services/echo/", backend.url());
    Reply r = request(front.port, get("/services/echo/a%20b?x=1&y=%2F"));
    CHECK(r.status == 200);
    CHECK(r.body == "GET /services/echo/a%20b?x=1&y=%2F");
    CHECK(backend.lastRequest().header("Host") == "hub.example:8000");
    CHECK(backend.lastRequest().header("X-Forwarded-For") == "127.0.0.1");
    CHECK(backend.lastRequest().header("X-Forwarded-Proto") == "http");
    CHECK(backend.lastRequest().header("X-Forwarded-Host") == "hub.example:8000");

    r = request(front.port,
                "POST /services/echo/form HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");
    CHECK(r.status == 200);
    CHECK(r.body == "POST /services/echo/form hello world");

    // Not routed: the hub's handler, with its buffered body.
    r = request(front.port, "POST /hub/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
    CHECK(r.body == "hub POST /hub/x abc");
    CHECK(front.waitIdle());
}

TEST_CASE("a target base path is prepended") {
    RawBackend backend(echoHandler);
    Front front;
    front.route("/services/b/", backend.url() + "/prefix/");
    CHECK(request(front.port, get("/services/b/x")).body == "GET /prefix/services/b/x");
}

TEST_CASE("backend connections are kept alive and reused") {
    RawBackend backend(echoHandler);
    Front front;
    front.route("/services/echo/", backend.url());
    UniqueFd fd = connectTo(front.port);
    std::string buf;
    for (int i = 0; i < 5; ++i) {
        REQUIRE(sendAll(fd.get(), get("/services/echo/" + std::to_string(i))));
        Reply r = readReply(fd.get(), buf);
        CHECK(r.status == 200);
        CHECK(r.body == "GET /services/echo/" + std::to_string(i));
    }
    // And from other client connections too.
    for (int i = 0; i < 3; ++i) CHECK(request(front.port, get("/services/echo/n")).status == 200);
    CHECK(backend.accepted() == 1);
    CHECK(front.stats().reusedBackendConnections >= 7);
}

TEST_CASE("a pooled connection the backend closed is replaced transparently") {
    // Answers, then closes without saying so (Connection: close omitted).
    RawBackend backend([](int fd, RawRequest& r, std::string& buf) {
        echoHandler(fd, r, buf);
        return false;
    });
    Front front;
    front.route("/services/echo/", backend.url());
    for (int i = 0; i < 3; ++i) {
        CHECK(request(front.port, get("/services/echo/x")).status == 200);
        std::this_thread::sleep_for(20ms);
    }
    CHECK(backend.accepted() == 3);
}

TEST_CASE("a 50 MiB download streams with bounded buffers") {
    const size_t total = 50 * kMiB;
    RawBackend backend([total](int fd, RawRequest&, std::string&) {
        std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n";
        if (!sendAll(fd, head)) return false;
        std::string block(256 * 1024, 'x');
        for (size_t sent = 0; sent < total; sent += block.size())
            if (!sendAll(fd, std::string_view(block).substr(0, std::min(block.size(), total - sent))))
                return false;
        return true;
    });
    Front front;
    front.route("/services/big/", backend.url());
    UniqueFd fd = connectTo(front.port);
    REQUIRE(sendAll(fd.get(), get("/services/big/file")));
    std::string buf;
    std::string head = readHead(fd.get(), buf);
    CHECK(headerOf(head, "Content-Length") == std::to_string(total));
    size_t received = buf.size();
    char tmp[65536];
    int slow = 0;
    while (received < total) {
        ssize_t n = ::recv(fd.get(), tmp, sizeof tmp, 0);
        REQUIRE(n > 0);
        received += static_cast<size_t>(n);
        if (slow++ < 50) std::this_thread::sleep_for(1ms);  // a slow reader at first: backpressure
    }
    CHECK(received == total);
    auto stats = front.stats();
    CHECK(stats.peakBufferedBytes <= 2 * front.proxy.config().bufferBytes + 16 * 1024);
    MESSAGE("peak proxy buffers for a 50 MiB download: " << stats.peakBufferedBytes << " bytes");
}

TEST_CASE("a 50 MiB upload streams with bounded buffers, chunked uploads are re-framed") {
    const size_t total = 50 * kMiB;
    // Reads the body itself, counting, and answers the count.
    RawBackend backend(
        [](int fd, RawRequest& r, std::string& buf) {
            std::string body;
            if (r.header("Transfer-Encoding") == "chunked") {
                if (!readChunked(fd, buf, body)) return false;
                r.body = body;
            } else {
                size_t want = std::stoul(r.header("Content-Length"));
                size_t got = std::min(want, buf.size());
                buf.erase(0, got);
                char tmp[65536];
                while (got < want) {
                    ssize_t n = ::recv(fd, tmp, std::min(sizeof tmp, want - got), 0);
                    if (n <= 0) return false;
                    got += static_cast<size_t>(n);
                    if (got < 2 * kMiB) std::this_thread::sleep_for(1ms);  // slow at first: backpressure
                }
                body = std::to_string(got);
            }
            return sendAll(
                fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
        },
        false);
    Front front;
    front.route("/services/up/", backend.url());
    UniqueFd fd = connectTo(front.port);
    std::string head = "PUT /services/up/f HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(total) +
                       "\r\nExpect: 100-continue\r\n\r\n";
    REQUIRE(sendAll(fd.get(), head));
    std::string buf;
    std::string interim = readHead(fd.get(), buf);
    CHECK(interim.rfind("HTTP/1.1 100 Continue", 0) == 0);
    std::string block(1 * kMiB, 'u');
    for (size_t sent = 0; sent < total; sent += block.size()) REQUIRE(sendAll(fd.get(), block));
    Reply r = readReply(fd.get(), buf);
    CHECK(r.status == 200);
    CHECK(r.body == std::to_string(total));
    CHECK(backend.lastRequest().header("Expect").empty());
    auto stats = front.stats();
    CHECK(stats.peakBufferedBytes <= 2 * front.proxy.config().bufferBytes + 16 * 1024);
    MESSAGE("peak proxy buffers for a 50 MiB upload: " << stats.peakBufferedBytes << " bytes");

    // Chunked upload with extensions and a trailer: the backend sees our chunks.
    REQUIRE(sendAll(fd.get(),
                    "POST /services/up/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"));
    r = readReply(fd.get(), buf);
    CHECK(r.status == 200);
    CHECK(r.body == "hello world");
}

TEST_CASE("chunked and close-delimited responses are re-framed for the client") {
    RawBackend backend([](int fd, RawRequest& r, std::string&) {
        if (r.target.find("chunked") != std::string::npos) {
            return sendAll(fd,
                           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "4;x=y\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer-X: 1\r\n\r\n");
        }
        sendAll(fd, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close");
        return false;
    });
    Front front;
    front.route("/services/c/", backend.url());
    UniqueFd fd = connectTo(front.port);
    std::string buf;
    REQUIRE(sendAll(fd.get(), get("/services/c/chunked")));
    Reply r = readReply(fd.get(), buf);
    CHECK(r.header("Transfer-Encoding") == "chunked");
    CHECK(r.body == "abcdefg");
    REQUIRE(sendAll(fd.get(), get("/services/c/close")));
    r = readReply(fd.get(), buf);
    CHECK(r.header("Transfer-Encoding") == "chunked");
    CHECK(r.body == "until close");
    // Same connection still usable afterwards.
    REQUIRE(sendAll(fd.get(), get("/hub/after")));
    CHECK(readReply(fd.get(), buf).body == "hub GET /hub/after");

    // An HTTP/1.0 client gets the close-delimited body as it is.
    r = request(front.port, "GET /services/c/chunked HTTP/1.0\r\n\r\n");
    CHECK(r.body == "abcdefg");
    CHECK(r.header("Transfer-Encoding").empty());
    // HEAD: no body, length announced.
    RawBackend headBackend([](int sock, RawRequest&, std::string&) {
        return sendAll(sock, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
    });
    front.route("/services/h/", headBackend.url());
    UniqueFd hfd = connectTo(front.port);
    std::string hbuf;
    REQUIRE(sendAll(hfd.get(), "HEAD /services/h/ HTTP/1.1\r\nHost: h\r\n\r\n"));
    Reply hr = readReply(hfd.get(), hbuf, true);
    CHECK(hr.status == 200);
    CHECK(hr.header("Content-Length") == "1234");
    REQUIRE(sendAll(hfd.get(), get("/hub/next")));
    CHECK(readReply(hfd.get(), hbuf).body == "hub GET /hub/next");
}

TEST_CASE("WebSocket: upgrade, echo both ways, close") {
    RawBackend backend([](int fd, RawRequest& r, std::string& buf) {
        if (r.header("Upgrade") != "websocket" || r.header("Connection") != "Upgrade") return false;
        if (!sendAll(fd,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nserver-hello"))
            return false;
        if (!buf.empty() && !sendAll(fd, buf)) return false;
        char tmp[4096];
        ssize_t n;
        while ((n = ::recv(fd, tmp, sizeof tmp, 0)) > 0)
            if (!sendAll(fd, std::string_view(tmp, static_cast<size_t>(n)))) break;
        return false;  // client closed: close too
    });
    Front front;
    front.route("/user/alice/", backend.url());
    UniqueFd fd = connectTo(front.port);
    REQUIRE(sendAll(fd.get(),
                    "GET /user/alice/api/kernels/k/channels HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n"));
    std::string buf;
    std::string head = readHead(fd.get(), buf);
    CHECK(head.rfind("HTTP/1.1 101", 0) == 0);
    CHECK(headerOf(head, "Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(headerOf(head, "Upgrade") == "websocket");
    std::string got;
    REQUIRE(readExactly(fd.get(), buf, 12, got));
    CHECK(got == "server-hello");
    for (int i = 0; i < 20; ++i) {
        std::string msg = "frame-" + std::to_string(i) + std::string(static_cast<size_t>(i) * 1000, 'z');
        REQUIRE(sendAll(fd.get(), msg));
        std::string echo;
        REQUIRE(readExactly(fd.get(), buf, msg.size(), echo));
        CHECK(echo == msg);
    }
    CHECK(front.stats().tunnels == 1);
    ::shutdown(fd.get(), SHUT_WR);
    CHECK(peerClosed(fd.get()));  // backend saw EOF, closed, and the proxy passed that on
    CHECK(front.waitIdle());
}

TEST_CASE("a WebSocket the backend refuses gets the backend's answer") {
    RawBackend backend([](int fd, RawRequest&, std::string&) {
        return sendAll(fd, "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno");
    });
    Front front;
    front.route("/services/ws/", backend.url());
    Reply r =
        request(front.port,
                "GET /services/ws/ HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    CHECK(r.status == 403);
    CHECK(r.body == "no");
}

TEST_CASE("a backend that is down gives 503, a slow one 504, route changes apply at once") {
    uint16_t deadPort;
    {
        RawBackend gone(echoHandler);
        deadPort = gone.port;
    }
    RawBackend slow([](int fd, RawRequest& r, std::string& buf) {
        std::this_thread::sleep_for(800ms);
        return echoHandler(fd, r, buf);
    });
    ProxyConfig config;
    config.responseHeadTimeout = 200ms;
    Front front(config);
    front.route("/services/dead/", "http://127.0.0.1:" + std::to_string(deadPort));
    front.route("/services/slow/", slow.url());

    UniqueFd fd = connectTo(front.port);
    std::string buf;
    REQUIRE(sendAll(fd.get(), get("/services/dead/x", "Accept: application/json\r\n")));
    Reply r = readReply(fd.get(), buf);
    CHECK(r.status == 503);
    CHECK(r.body.find("not responding") != std::string::npos);
    CHECK(r.header("Content-Type") == "application/json");
    // The connection survives a proxy error (the request had no body).
    REQUIRE(sendAll(fd.get(), get("/services/slow/x")));
    r = readReply(fd.get(), buf);
    CHECK(r.status == 504);
    REQUIRE(sendAll(fd.get(), get("/hub/ok")));
    CHECK(readReply(fd.get(), buf).body == "hub GET /hub/ok");

    front.onLoop([&] { return front.proxy.routes().remove("/services/dead/"); });
    CHECK(request(front.port, get("/services/dead/x")).body == "hub GET /services/dead/x");
    front.route("/services/dead/", slow.url() + "/");
    front.onLoop([&] {
        front.proxy.routes().remove("/services/slow/");
        return true;
    });
    CHECK(request(front.port, get("/services/slow/y")).body == "hub GET /services/slow/y");
    CHECK(front.waitIdle(3s));
}

TEST_CASE("malformed backend responses give 502") {
    const std::vector<std::string> bad = {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
        "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 2\r\n\r\nok",
        "garbage\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        "",  // closes without a response
    };
    RawBackend backend([&bad](int fd, RawRequest& r, std::string&) {
        size_t i = std::stoul(r.target.substr(r.target.rfind('/') + 1));
        sendAll(fd, bad[i]);
        return false;
    });
    Front front;
    front.route("/services/bad/", backend.url());
    for (size_t i = 0; i < bad.size(); ++i) {
        CAPTURE(i);
        Reply r = request(front.port, get("/services/bad/" + std::to_string(i)));
        CHECK(r.status == 502);
        CHECK(r.body.find("<html>") != std::string::npos);
    }
    CHECK(front.waitIdle());
}

TEST_CASE("hop-by-hop headers, hub cookies and spoofed X-Forwarded-* do not pass") {
    RawBackend backend([](int fd, RawRequest&, std::string&) {
        return sendAll(
            fd,
            "HTTP/1.1 302 Found\r\nConnection: X-Hop-Res\r\nX-Hop-Res: 1\r\nKeep-Alive: timeout=5\r\n"
            "Upgrade: h2c\r\nProxy-Authenticate: Basic\r\nTrailer: X-T\r\n"
            "Set-Cookie: jupyterhub-hub-login=evil; Path=/hub/\r\n"
            "Set-Cookie: user-cookie=fine; Path=/\r\n"
            "Location: http://127.0.0.1:" +
                std::string("PORT") + "/x\r\nContent-Length: 0\r\n\r\n");
    });
    Front front;
    front.route("/services/p/", backend.url());
    Reply r = request(front.port,
                      get("/services/p/",
                          "Connection: keep-alive, X-Hop-Req\r\nX-Hop-Req: 1\r\nKeep-Alive: 300\r\n"
                          "TE: trailers\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: x\r\n"
                          "Cookie: jupyterhub-hub-login=secret; _xsrf=abc\r\n"
                          "Cookie: jupyterhub-session-id=s1; other=2\r\n"
                          "Authorization: token user-token\r\n"
                          "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\n"
                          "X-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n"));
    RawRequest seen = backend.lastRequest();
    for (auto name : {"X-Hop-Req", "Keep-Alive", "TE", "Proxy-Authorization", "Proxy-Connection", "Forwarded",
                      "X-Real-IP"}) {
        CAPTURE(name);
        CHECK(seen.header(name).empty());
    }
    CHECK(seen.header("Connection").empty());
    CHECK(seen.header("Cookie") == "_xsrf=abc; other=2");
    CHECK(countHeader(seen.head, "Cookie") == 1);
    CHECK(seen.head.find("secret") == std::string::npos);
    CHECK(seen.head.find("s1") == std::string::npos);
    CHECK(seen.header("Authorization") == "token user-token");
    CHECK(seen.header("X-Forwarded-For") == "127.0.0.1");
    CHECK(countHeader(seen.head, "X-Forwarded-For") == 1);
    CHECK(seen.header("X-Forwarded-Host") == "hub.example:8000");
    CHECK(seen.header("X-Forwarded-Proto") == "http");

    CHECK(r.status == 302);
    for (auto name : {"X-Hop-Res", "Keep-Alive", "Upgrade", "Proxy-Authenticate", "Trailer"}) {
        CAPTURE(name);
        CHECK(r.header(name).empty());
    }
    CHECK(r.head.find("jupyterhub-hub-login") == std::string::npos);
    CHECK(r.header("Set-Cookie") == "user-cookie=fine; Path=/");
}

TEST_CASE(
    "X-Forwarded-* from a trusted proxy is extended, Location rewritten only for the backend's origin") {
    std::atomic<uint16_t> backendPort{0};
    RawBackend backend([&backendPort](int fd, RawRequest& r, std::string&) {
        std::string location =
            r.target.find("own") != std::string::npos
                ? "http://127.0.0.1:" + std::to_string(backendPort.load()) + "/services/t/next?a=1"
                : "http://elsewhere.example/x";
        if (r.target.find("relative") != std::string::npos) location = "/services/t/rel";
        return sendAll(fd, "HTTP/1.1 302 Found\r\nLocation: " + location + "\r\nContent-Length: 0\r\n\r\n");
    });
    backendPort = backend.port;
    ProxyConfig config;
    std::string why;
    config.trustedProxies = *hub::IpNetworkList::parse({"127.0.0.0/8"}, why);
    Front front(config);
    front.route("/services/t/", backend.url());
    Reply r = request(front.port, get("/services/t/own",
                                      "X-Forwarded-For: 203.0.113.7\r\n"
                                      "X-Forwarded-Proto: https\r\n"
                                      "X-Forwarded-Host: public.example\r\n"));
    RawRequest seen = backend.lastRequest();
    CHECK(seen.header("X-Forwarded-For") == "203.0.113.7, 127.0.0.1");
    CHECK(seen.header("X-Forwarded-Proto") == "https");
    CHECK(seen.header("X-Forwarded-Host") == "public.example");
    CHECK(r.header("Location") == "https://public.example/services/t/next?a=1");
    CHECK(request(front.port, get("/services/t/other")).header("Location") == "http://elsewhere.example/x");
    CHECK(request(front.port, get("/services/t/relative")).header("Location") == "/services/t/rel");
}

TEST_CASE("X-Forwarded-* from a peer outside the trusted networks is dropped and rebuilt") {
    RawBackend backend(echoHandler);
    ProxyConfig config;
    std::string why;
    config.trustedProxies = *hub::IpNetworkList::parse({"10.0.0.0/8", "::1", "127.0.0.2"}, why);
    Front front(config);
    front.route("/services/t/", backend.url());
    request(front.port, get("/services/t/x",
                            "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n"
                            "X-Forwarded-Host: public.example\r\n"));
    RawRequest seen = backend.lastRequest();
    CHECK(seen.header("X-Forwarded-For") == "127.0.0.1");
    CHECK(seen.header("X-Forwarded-Proto") == "http");
    CHECK(seen.header("X-Forwarded-Host") == "hub.example:8000");
}

TEST_CASE("one client connection alternates hub and proxied requests, pipelined too") {
    RawBackend backend(echoHandler);
    Front front;
    front.route("/services/echo/", backend.url());
    UniqueFd fd = connectTo(front.port);
    std::string buf;
    for (int i = 0; i < 3; ++i) {
        REQUIRE(sendAll(fd.get(), get("/hub/a")));
        CHECK(readReply(fd.get(), buf).body == "hub GET /hub/a");
        REQUIRE(
            sendAll(fd.get(), "POST /services/echo/p HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody"));
        CHECK(readReply(fd.get(), buf).body == "POST /services/echo/p body");
        REQUIRE(sendAll(fd.get(), "POST /hub/b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"));
        CHECK(readReply(fd.get(), buf).body == "hub POST /hub/b hi");
    }
    // Pipelined: a proxied request with its body and a hub request in one write.
    REQUIRE(sendAll(fd.get(), "POST /services/echo/q HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz" +
                                  get("/hub/c") + get("/services/echo/r")));
    CHECK(readReply(fd.get(), buf).body == "POST /services/echo/q xyz");
    CHECK(readReply(fd.get(), buf).body == "hub GET /hub/c");
    CHECK(readReply(fd.get(), buf).body == "GET /services/echo/r");
    CHECK(front.waitIdle());
    CHECK(front.onLoop([&] { return front.server.connectionCount(); }) == 1);
}

TEST_CASE("a client that leaves mid-exchange ends it; an idle WebSocket times out") {
    RawBackend slow([](int fd, RawRequest& r, std::string& buf) {
        if (r.header("Upgrade") == "websocket") {
            sendAll(fd,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
            char c;
            while (::recv(fd, &c, 1, 0) > 0) {
            }
            return false;
        }
        std::this_thread::sleep_for(500ms);
        return echoHandler(fd, r, buf);
    });
    ProxyConfig config;
    config.tunnelIdleTimeout = 300ms;
    Front front(config);
    front.route("/services/s/", slow.url());
    {
        UniqueFd fd = connectTo(front.port);
        REQUIRE(sendAll(fd.get(), get("/services/s/x")));
        std::this_thread::sleep_for(50ms);
    }  // closes
    CHECK(front.waitIdle(2s));

    UniqueFd ws = connectTo(front.port);
    REQUIRE(sendAll(
        ws.get(),
        "GET /services/s/ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"));
    std::string buf;
    CHECK(readHead(ws.get(), buf).rfind("HTTP/1.1 101", 0) == 0);
    CHECK(peerClosed(ws.get()));  // closed by the idle timeout
    CHECK(front.waitIdle());
    CHECK(front.onLoop([&] { return front.server.connectionCount(); }) == 0);
}

TEST_CASE("bytes through a WebSocket are reported as traffic, throttled, and stop with the traffic") {
    RawBackend backend([](int fd, RawRequest&, std::string&) {
        if (!sendAll(fd,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
            return false;
        char tmp[4096];
        ssize_t n;
        while ((n = ::recv(fd, tmp, sizeof tmp, 0)) > 0)
            if (!sendAll(fd, std::string_view(tmp, static_cast<size_t>(n)))) break;
        return false;
    });
    auto run = [&](std::chrono::milliseconds every) {
        ProxyConfig config;
        config.trafficReportInterval = every;
        Front front(config);
        front.route("/user/alice/", backend.url());
        auto reports = std::make_shared<std::atomic<int>>(0);
        front.onLoop([&] {
            front.server.setHeadHandler([&front, reports](HeadContext& context) {
                auto match = front.proxy.routes().lookup(context.request.path);
                if (match) front.proxy.forward(context, match->target, [reports] { ++*reports; });
            });
            return true;
        });
        UniqueFd fd = connectTo(front.port);
        REQUIRE(sendAll(fd.get(),
                        "GET /user/alice/api/kernels/k/channels HTTP/1.1\r\nHost: h\r\nUpgrade: "
                        "websocket\r\nConnection: Upgrade\r\n\r\n"));
        std::string buf;
        REQUIRE(readHead(fd.get(), buf).rfind("HTTP/1.1 101", 0) == 0);
        for (int i = 0; i < 5; ++i) {
            std::this_thread::sleep_for(20ms);  // separate bursts, as a kernel's output comes
            REQUIRE(sendAll(fd.get(), "frame"));
            std::string echo;
            REQUIRE(readExactly(fd.get(), buf, 5, echo));
        }
        std::this_thread::sleep_for(50ms);
        const int seen = *reports;
        std::this_thread::sleep_for(200ms);  // an open but silent WebSocket is not activity
        CHECK(*reports == seen);
        ::shutdown(fd.get(), SHUT_WR);
        CHECK(peerClosed(fd.get()));
        CHECK(front.waitIdle());
        return seen;
    };
    CHECK(run(0ms) >= 5);  // every burst, both ways
    CHECK(run(1h) == 0);   // the upgrade itself is the caller's to count; then at most one per interval
}
