// SPDX-License-Identifier: BSD-3-Clause
// HttpServer over real sockets on 127.0.0.1: keep-alive, pipelining,
// limits, timeouts, async answers, failures, fd hygiene.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "http/event_loop.h"
#include "http/server.h"
#include "http/unique_fd.h"

using namespace hubd::http;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

// Echoes method, path and body; a few paths do something special.
void echoHandler(Request& request, Responder responder) {
    Response r;
    r.set("Content-Type", "text/plain");
    r.body = request.method + " " + request.path + (request.body.empty() ? "" : " " + request.body);
    responder.send(std::move(r));
}

// The server and its loop on a background thread, as hubd runs them.
struct TestServer {
    EventLoop loop;
    HttpServer server;
    uint16_t port = 0;
    std::thread thread;

    explicit TestServer(Handler handler = echoHandler, Limits limits = {})
        : server(loop, limits, std::move(handler)) {
        port = server.listen("127.0.0.1", 0);
        thread = std::thread([this] { loop.run(); });
    }
    ~TestServer() {
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
    size_t connections() {
        return onLoop([this] { return server.connectionCount(); });
    }
    bool waitForConnections(size_t n, std::chrono::milliseconds timeout = 5s) {
        auto end = SteadyClock::now() + timeout;
        while (SteadyClock::now() < end) {
            if (connections() == n) return true;
            std::this_thread::sleep_for(5ms);
        }
        return connections() == n;
    }
};

struct HttpResponse {
    int status = 0;
    std::vector<Header> headers;
    std::string body;

    std::string header(std::string_view name) const {
        for (const auto& [k, v] : headers)
            if (strcasecmp(k.c_str(), std::string(name).c_str()) == 0) return v;
        return {};
    }
    bool has(std::string_view name) const {
        for (const auto& h : headers)
            if (strcasecmp(h.first.c_str(), std::string(name).c_str()) == 0) return true;
        return false;
    }
};

// A blocking test client with a receive timeout, so a server bug fails the
// test instead of hanging it.
class Client {
public:
    explicit Client(uint16_t port, std::chrono::milliseconds timeout = 5s) {
        fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd_);
        timeval tv{static_cast<time_t>(timeout.count() / 1000),
                   static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    }

    bool send(std::string_view data) {
        while (!data.empty()) {
            ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            data.remove_prefix(static_cast<size_t>(n));
        }
        return true;
    }

    // Reads one response; nullopt on EOF/timeout before a complete one.
    std::optional<HttpResponse> read(bool headRequest = false) {
        size_t end;
        while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
            if (!fill()) return std::nullopt;
        HttpResponse r;
        std::string head = buf_.substr(0, end);
        buf_.erase(0, end + 4);
        size_t lineEnd = head.find("\r\n");
        std::string statusLine = head.substr(0, lineEnd);
        if (statusLine.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
        r.status = std::stoi(statusLine.substr(9, 3));
        size_t pos = lineEnd == std::string::npos ? head.size() : lineEnd + 2;
        while (pos < head.size()) {
            size_t e = head.find("\r\n", pos);
            if (e == std::string::npos) e = head.size();
            std::string line = head.substr(pos, e - pos);
            size_t colon = line.find(':');
            r.headers.emplace_back(line.substr(0, colon), line.substr(colon + 2));
            pos = e + 2;
        }
        if (headRequest || r.status == 204 || r.status == 304 || r.status < 200) return r;
        size_t length = std::stoul(r.header("Content-Length"));
        while (buf_.size() < length)
            if (!fill()) return std::nullopt;
        r.body = buf_.substr(0, length);
        buf_.erase(0, length);
        return r;
    }

    // True if the server closed (EOF or reset) within the receive timeout.
    bool closedByServer() {
        char c;
        for (;;) {
            ssize_t n = ::recv(fd_.get(), &c, 1, 0);
            if (n == 0) return true;
            if (n < 0) return errno == ECONNRESET;
            buf_.push_back(c);
        }
    }

    // Reads until `needle` has arrived; false on EOF/timeout first.
    bool readUntil(std::string_view needle) {
        while (buf_.find(needle) == std::string::npos)
            if (!fill()) return false;
        return true;
    }

    std::string& buffered() { return buf_; }
    int fd() const { return fd_.get(); }

private:
    bool fill() {
        char chunk[65536];
        ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        buf_.append(chunk, static_cast<size_t>(n));
        return true;
    }

    UniqueFd fd_;
    std::string buf_;
};

std::string get(std::string_view path, std::string_view extra = "") {
    return "GET " + std::string(path) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra) + "\r\n";
}

size_t openFds() {
    size_t count = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    while (dirent* e = ::readdir(dir))
        if (e->d_name[0] != '.') ++count;
    ::closedir(dir);
    return count;
}

}  // namespace

TEST_CASE("keep-alive: several requests on one connection") {
    TestServer t;
    Client c(t.port);
    for (int i = 0; i < 5; ++i) {
        REQUIRE(c.send(get("/n/" + std::to_string(i))));
        auto r = c.read();
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->body == "GET /n/" + std::to_string(i));
        CHECK(r->header("Content-Length") == std::to_string(r->body.size()));
        CHECK(r->header("Date").size() == 29);
        CHECK(r->header("Content-Type") == "text/plain");
        CHECK_FALSE(r->has("Connection"));
    }
    CHECK(t.connections() == 1);

    REQUIRE(c.send(get("/bye", "Connection: close\r\n")));
    auto r = c.read();
    REQUIRE(r);
    CHECK(r->header("Connection") == "close");
    CHECK(c.closedByServer());
}

TEST_CASE("HTTP/1.0: closes by default, keeps alive on request") {
    TestServer t;
    {
        Client c(t.port);
        REQUIRE(c.send("GET /a HTTP/1.0\r\n\r\n"));
        auto r = c.read();
        REQUIRE(r);
        CHECK(r->body == "GET /a");
        CHECK(r->header("Connection") == "close");
        CHECK(c.closedByServer());
    }
    Client c(t.port);
    REQUIRE(c.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto r = c.read();
    REQUIRE(r);
    CHECK(r->header("Connection") == "keep-alive");
    REQUIRE(c.send("GET /b HTTP/1.0\r\n\r\n"));
    r = c.read();
    REQUIRE(r);
    CHECK(r->body == "GET /b");
}

TEST_CASE("pipelining: answers come in request order") {
    TestServer t;
    Client c(t.port);
    std::string batch;
    for (int i = 0; i < 20; ++i) batch += get("/p/" + std::to_string(i));
    batch += "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc";
    batch += "POST /chunk HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n";
    REQUIRE(c.send(batch));
    for (int i = 0; i < 20; ++i) {
        auto r = c.read();
        REQUIRE(r);
        CHECK(r->body == "GET /p/" + std::to_string(i));
    }
    auto r = c.read();
    REQUIRE(r);
    CHECK(r->body == "POST /body abc");
    r = c.read();
    REQUIRE(r);
    CHECK(r->body == "POST /chunk xy");
}

TEST_CASE("HEAD: Content-Length of the body, but no body") {
    TestServer t;
    Client c(t.port);
    REQUIRE(c.send("HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n" + get("/after")));
    auto r = c.read(/*headRequest=*/true);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->header("Content-Length") == std::to_string(std::string("HEAD /x").size()));
    // If a body had been sent, it would be read here instead of the next response.
    r = c.read();
    REQUIRE(r);
    CHECK(r->body == "GET /after");
}

TEST_CASE("asynchronous responder answering from a timer, in order") {
    EventLoop* loopPtr = nullptr;
    auto handler = [&](Request& request, Responder responder) {
        auto delay = request.path == "/slow" ? 100ms : 1ms;
        loopPtr->addTimer(delay, [path = request.path, responder = std::move(responder)]() mutable {
            Response r;
            r.body = "late " + path;
            responder.send(std::move(r));
        });
    };
    TestServer t(handler);
    loopPtr = &t.loop;
    Client c(t.port);
    auto start = SteadyClock::now();
    REQUIRE(c.send(get("/slow") + get("/fast")));
    auto r = c.read();
    REQUIRE(r);
    CHECK(r->body == "late /slow");
    CHECK(SteadyClock::now() - start >= 100ms);
    r = c.read();
    REQUIRE(r);
    CHECK(r->body == "late /fast");
}

TEST_CASE("worker pool result comes back on the loop thread") {
    std::thread::id loopThread;
    std::optional<WorkerPool> pool;
    auto handler = [&](Request&, Responder responder) {
        loopThread = std::this_thread::get_id();
        pool->submit([] { return std::this_thread::get_id(); },
                     [&, responder = std::move(responder)](std::thread::id worker) mutable {
                         Response r;
                         bool ok = worker != loopThread && std::this_thread::get_id() == loopThread;
                         r.body = ok ? "ok" : "wrong thread";
                         responder.send(std::move(r));
                     });
    };
    TestServer t(handler);
    pool.emplace(t.loop, 2);
    Client c(t.port);
    REQUIRE(c.send(get("/pam")));
    auto r = c.read();
    REQUIRE(r);
    CHECK(r->body == "ok");
    pool.reset();
}

TEST_CASE("limits: 413, 431, 414 with a short body, then close") {
    Limits limits;
    limits.maxBodyBytes = 1000;
    limits.maxHeaderBytes = 2000;
    limits.maxRequestLineBytes = 500;
    limits.maxHeaderCount = 10;
    TestServer t(echoHandler, limits);

    auto expect = [&](const std::string& request, int status) {
        CAPTURE(status);
        Client c(t.port);
        c.send(request);
        auto r = c.read();
        REQUIRE(r);
        CHECK(r->status == status);
        CHECK(r->header("Connection") == "close");
        CHECK(r->body.find(std::to_string(status)) == 0);
        CHECK(c.closedByServer());
    };
    expect("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n" + std::string(2000, 'x'), 413);
    expect("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + std::string(2000, 'x'),
           413);
    expect(get("/", "X-Big: " + std::string(3000, 'v') + "\r\n"), 431);
    std::string many;
    for (int i = 0; i < 11; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
    expect(get("/", many), 431);
    expect(get("/" + std::string(600, 'a')), 414);
    expect("GET / HTTP/1.1\nHost: t\n\n", 400);
    expect("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1, 2\r\n\r\n", 400);
    expect("GET /%00 HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    expect("GET / HTTP/1.1\r\n\r\n", 400);
    expect("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
    expect("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505);

    // Within limits still works.
    Client c(t.port);
    c.send("POST /ok HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'y'));
    auto r = c.read();
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("Expect: 100-continue") {
    TestServer t;
    Client c(t.port);
    REQUIRE(c.send("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
    auto interim = c.read();
    REQUIRE(interim);
    CHECK(interim->status == 100);
    REQUIRE(c.send("data"));
    auto r = c.read();
    REQUIRE(r);
    CHECK(r->body == "POST /e data");
}

TEST_CASE("slowloris gets 408 at headerTimeout while others are served") {
    Limits limits;
    limits.headerTimeout = 300ms;
    TestServer t(echoHandler, limits);

    std::atomic<bool> done{false};
    Client slow(t.port);
    auto start = SteadyClock::now();
    std::thread dribbler([&] {
        std::string request = get("/slow", "X-Pad: " + std::string(100, 'p') + "\r\n");
        for (char ch : request) {
            if (done || ::send(slow.fd(), &ch, 1, MSG_NOSIGNAL) != 1) break;
            std::this_thread::sleep_for(20ms);
        }
    });

    // Meanwhile a normal client is served at once, several times.
    std::this_thread::sleep_for(50ms);
    for (int i = 0; i < 3; ++i) {
        Client fast(t.port);
        auto before = SteadyClock::now();
        REQUIRE(fast.send(get("/fast")));
        auto r = fast.read();
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(SteadyClock::now() - before < 150ms);
    }

    auto r = slow.read();
    auto elapsed = SteadyClock::now() - start;
    done = true;
    dribbler.join();
    REQUIRE(r);
    CHECK(r->status == 408);
    CHECK(slow.closedByServer());
    CHECK(elapsed >= 280ms);
    CHECK(elapsed < 1000ms);
}

TEST_CASE(
    "a connection that says nothing is closed quietly at headerTimeout; idle keep-alive at idleTimeout") {
    Limits limits;
    limits.headerTimeout = 200ms;
    limits.idleTimeout = 300ms;
    TestServer t(echoHandler, limits);

    Client silent(t.port);
    auto start = SteadyClock::now();
    CHECK(silent.closedByServer());
    CHECK(silent.buffered().empty());  // no 408 for a connection that never spoke
    CHECK(SteadyClock::now() - start >= 180ms);

    Client idle(t.port);
    REQUIRE(idle.send(get("/")));
    REQUIRE(idle.read());
    start = SteadyClock::now();
    CHECK(idle.closedByServer());
    auto elapsed = SteadyClock::now() - start;
    CHECK(elapsed >= 280ms);
    CHECK(elapsed < 1000ms);
}

TEST_CASE("slow body gets 408 at bodyTimeout") {
    Limits limits;
    limits.bodyTimeout = 200ms;
    TestServer t(echoHandler, limits);
    Client c(t.port);
    REQUIRE(c.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"));
    auto r = c.read();
    REQUIRE(r);
    CHECK(r->status == 408);
}

TEST_CASE("a client that does not read is dropped at writeTimeout") {
    Limits limits;
    limits.writeTimeout = 300ms;
    auto big = [](Request&, Responder responder) {
        Response r;
        r.body.assign(32 * 1024 * 1024, 'z');
        responder.send(std::move(r));
    };
    TestServer t(big, limits);
    Client c(t.port);
    int small = 4096;
    ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    REQUIRE(c.send(get("/big")));
    std::this_thread::sleep_for(100ms);
    CHECK(t.connections() == 1);
    CHECK(t.waitForConnections(0, 2s));
}

TEST_CASE("handler failures become 500, never a crash") {
    auto handler = [](Request& request, Responder responder) {
        if (request.path == "/throw") throw std::runtime_error("boom");
        if (request.path == "/throw-int") throw 42;
        if (request.path == "/drop") return;  // Responder destroyed without send()
        if (request.path == "/crlf") {
            Response r;
            r.set("X-Evil", "a\r\nSet-Cookie: x=y");
            responder.send(std::move(r));
            return;
        }
        echoHandler(request, std::move(responder));
    };
    TestServer t(handler);
    Client c(t.port);
    for (const char* path : {"/throw", "/throw-int", "/drop", "/crlf"}) {
        CAPTURE(path);
        REQUIRE(c.send(get(path)));
        auto r = c.read();
        REQUIRE(r);
        CHECK(r->status == 500);
        CHECK_FALSE(r->has("Set-Cookie"));
    }
    REQUIRE(c.send(get("/fine")));
    auto r = c.read();
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("Responder::send after the client went away is a harmless no-op") {
    std::vector<Responder> parked;
    auto handler = [&](Request& request, Responder responder) {
        if (request.path == "/park")
            parked.push_back(std::move(responder));
        else
            echoHandler(request, std::move(responder));
    };
    TestServer t(handler);
    {
        Client c(t.port);
        REQUIRE(c.send(get("/park")));
        REQUIRE(t.waitForConnections(1));
        while (t.onLoop([&] { return parked.size(); }) == 0) std::this_thread::sleep_for(5ms);
        linger hard{1, 0};  // close with RST: the server sees the hang-up at once
        ::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    }
    CHECK(t.waitForConnections(0));
    bool valid = t.onLoop([&] {
        bool v = parked.front().valid();
        parked.front().send(Response{});
        parked.clear();
        return v;
    });
    CHECK_FALSE(valid);
    Client c(t.port);
    REQUIRE(c.send(get("/next")));
    auto r = c.read();
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("Responder copies: first send wins, 500 only when the last copy goes") {
    std::vector<Responder> kept;
    auto handler = [&](Request& request, Responder responder) {
        if (request.path == "/copies") {
            Responder copy = responder;
            kept.push_back(copy);
            Response r;
            r.body = "first";
            copy.send(std::move(r));
            CHECK_FALSE(responder.valid());
            r.body = "second";
            responder.send(std::move(r));
            return;
        }
        // Kept past the handler: no answer until the last copy is dropped.
        kept.push_back(responder);
        kept.push_back(responder);
    };
    TestServer t(handler);
    Client c(t.port);
    REQUIRE(c.send(get("/copies")));
    auto r = c.read();
    REQUIRE(r);
    CHECK(r->body == "first");

    t.onLoop([&] {
        kept.clear();
        return 0;
    });
    REQUIRE(c.send(get("/later")));
    while (t.onLoop([&] { return kept.size(); }) < 2) std::this_thread::sleep_for(5ms);
    t.onLoop([&] {
        kept.pop_back();
        return 0;
    });
    std::this_thread::sleep_for(50ms);
    CHECK(c.buffered().empty());
    t.onLoop([&] {
        kept.pop_back();
        return 0;
    });
    r = c.read();
    REQUIRE(r);
    CHECK(r->status == 500);
}

TEST_CASE("1000 sequential connections leak no fds") {
    TestServer t;
    {
        Client warm(t.port);
        warm.send(get("/warm"));
        REQUIRE(warm.read());
    }
    REQUIRE(t.waitForConnections(0));
    size_t before = openFds();
    for (int i = 0; i < 1000; ++i) {
        Client c(t.port);
        REQUIRE(c.send(get("/c", i % 2 ? "Connection: close\r\n" : "")));
        auto r = c.read();
        REQUIRE(r);
        CHECK(r->status == 200);
    }
    CHECK(t.waitForConnections(0));
    CHECK(openFds() == before);
}

TEST_CASE("maxConnections: the one over the limit is closed at once") {
    Limits limits;
    limits.maxConnections = 2;
    TestServer t(echoHandler, limits);
    Client a(t.port), b(t.port);
    for (Client* c : {&a, &b}) {
        REQUIRE(c->send(get("/")));
        REQUIRE(c->read());
    }
    Client over(t.port, 2s);
    CHECK(over.closedByServer());
    CHECK(t.connections() == 2);
    REQUIRE(a.send(get("/still")));
    REQUIRE(a.read());
}

TEST_CASE("listen: errors name the address and port; IPv6 dual-stack") {
    TestServer t;
    EventLoop loop;
    HttpServer other(loop, {}, echoHandler);
    try {
        other.listen("127.0.0.1", t.port);
        FAIL("listening twice on one port should fail");
    } catch (const std::system_error& e) {
        std::string what = e.what();
        CHECK(what.find("port " + std::to_string(t.port) + " on 127.0.0.1 is in use") != std::string::npos);
        CHECK(what.find("JupyterHub.bind_url") != std::string::npos);
    }
    CHECK_THROWS_AS(other.listen("not-an-address", 0), std::system_error);
    CHECK(other.listen("localhost", 0) > 0);
    UniqueFd notListening(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    CHECK_THROWS_AS(other.adopt(notListening.get()), std::system_error);

    // "::" also takes IPv4 clients, reported as plain IPv4.
    std::string peer;
    auto handler = [&](Request& request, Responder responder) {
        peer = request.peerAddress;
        echoHandler(request, std::move(responder));
    };
    EventLoop loop6;
    HttpServer server6(loop6, {}, handler);
    uint16_t port6 = 0;
    try {
        port6 = server6.listen("::", 0);
    } catch (const std::system_error&) {
        MESSAGE("no IPv6 here; skipping dual-stack check");
        return;
    }
    std::thread runner([&] { loop6.run(); });
    {
        Client c(port6);
        c.send(get("/v4"));
        auto r = c.read();
        CHECK(r);
    }
    loop6.stop();
    runner.join();
    CHECK(peer == "127.0.0.1");
}

TEST_CASE("adopt: serves on a socket someone else bound (socket activation)") {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    socklen_t length = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);

    EventLoop loop;
    HttpServer server(loop, {}, echoHandler);
    server.adopt(fd);
    std::thread runner([&] { loop.run(); });
    {
        Client c(ntohs(addr.sin_port));
        c.send(get("/adopted"));
        auto r = c.read();
        REQUIRE(r);
        CHECK(r->body == "GET /adopted");
    }
    loop.stop();
    runner.join();
}

TEST_CASE("event loop: timers, cancellation, post from threads, exceptions") {
    EventLoop loop;
    std::vector<int> order;
    loop.addTimer(30ms, [&] { order.push_back(3); });
    auto cancelled = loop.addTimer(10ms, [&] { order.push_back(99); });
    loop.addTimer(10ms, [&] { order.push_back(1); });
    loop.addTimer(20ms, [&] { throw std::runtime_error("timer failure is logged, loop goes on"); });
    loop.addTimer(20ms, [&] { order.push_back(2); });
    loop.cancelTimer(cancelled);
    std::atomic<int> posted{0};
    std::thread poster([&] {
        for (int i = 0; i < 1000; ++i) loop.post([&] { ++posted; });
    });
    loop.addTimer(60ms, [&] { loop.stop(); });
    loop.run();
    poster.join();
    CHECK(order == std::vector<int>{1, 2, 3});
    // Posts that raced the stop run on the next run().
    loop.addTimer(20ms, [&] { loop.stop(); });
    loop.run();
    CHECK(posted == 1000);

    // stop() from another thread wakes a loop with nothing to do.
    std::thread stopper([&] {
        std::this_thread::sleep_for(20ms);
        loop.stop();
    });
    loop.run();
    stopper.join();

    // Many cancelled timers do not pile up (compaction) or fire.
    int fired = 0;
    for (int i = 0; i < 100000; ++i) loop.cancelTimer(loop.addTimer(1h, [&] { ++fired; }));
    loop.addTimer(1ms, [&] { loop.stop(); });
    loop.run();
    CHECK(fired == 0);
}

// ---------------------------------------------------------------------------
// ResponseStream (Server-Sent Events)

namespace {

// /stream answers "one", then "two" and the end from timers; the stream and
// whether its client left are kept where the test can see them.
struct StreamFixture {
    std::optional<ResponseStream> stream;
    bool clientLeft = false;
    bool secondWrite = true;

    Handler handler(EventLoop& loop) {
        return [this, &loop](Request& request, Responder responder) {
            if (request.path != "/stream") return echoHandler(request, std::move(responder));
            Response head;
            head.set("Content-Type", "text/event-stream");
            stream = responder.stream(std::move(head));
            stream->onClose([this] { clientLeft = true; });
            stream->write("one");
            if (request.hasHeader("X-Hold")) return;  // the test drives the rest
            loop.addTimer(20ms, [this, &loop] {
                secondWrite = stream->write("two");
                loop.addTimer(20ms, [this] { stream->end(); });
            });
        };
    }
};

// A TestServer whose handler is a StreamFixture's.
struct StreamServer {
    StreamFixture fixture;
    TestServer server{[this](Request& request, Responder responder) {
        fixture.handler(server.loop)(request, std::move(responder));
    }};
};

}  // namespace

TEST_CASE("stream: chunks as they come, then the connection carries on") {
    StreamServer server;
    auto& [f, t] = server;
    Client c(t.port);
    REQUIRE(c.send(get("/stream")));
    auto head = c.read(true);
    REQUIRE(head);
    CHECK(head->status == 200);
    CHECK(head->header("Transfer-Encoding") == "chunked");
    CHECK_FALSE(head->has("Content-Length"));
    CHECK(head->header("Content-Type") == "text/event-stream");
    // "one" arrives before the timer writes "two": it was not held back.
    REQUIRE(c.readUntil("3\r\none\r\n"));
    CHECK(c.buffered().find("two") == std::string::npos);
    REQUIRE(c.readUntil("0\r\n\r\n"));
    CHECK(c.buffered() == "3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n");
    CHECK(t.onLoop([&] { return f.secondWrite && !f.stream->open() && !f.clientLeft; }));
    c.buffered().clear();
    REQUIRE(c.send(get("/after")));
    auto next = c.read();
    REQUIRE(next);
    CHECK(next->body == "GET /after");
}

TEST_CASE("stream: HTTP/1.0 ends the body with the connection; HEAD gets the head only") {
    StreamServer server;
    auto& [f, t] = server;
    {
        Client c(t.port);
        REQUIRE(c.send("GET /stream HTTP/1.0\r\n\r\n"));
        REQUIRE(c.readUntil("\r\n\r\n"));
        CHECK(c.closedByServer());
        std::string all = c.buffered();
        CHECK(all.find("Transfer-Encoding") == std::string::npos);
        CHECK(all.find("Connection: close") != std::string::npos);
        CHECK(all.substr(all.find("\r\n\r\n") + 4) == "onetwo");
    }
    Client c(t.port);
    REQUIRE(c.send("HEAD /stream HTTP/1.1\r\nHost: test\r\n\r\n"));
    auto head = c.read(true);
    REQUIRE(head);
    CHECK(head->header("Transfer-Encoding") == "chunked");
    CHECK(t.onLoop([&] { return !f.stream->open() && !f.stream->write("x"); }));
    REQUIRE(c.send(get("/after")));
    auto next = c.read();
    REQUIRE(next);
    CHECK(next->body == "GET /after");
}

TEST_CASE("stream: a client that leaves is noticed, and later writes are refused") {
    StreamServer server;
    auto& [f, t] = server;
    {
        Client c(t.port);
        REQUIRE(c.send(get("/stream", "X-Hold: 1\r\n")));
        REQUIRE(c.readUntil("3\r\none\r\n"));
    }
    CHECK(t.waitForConnections(0));
    auto end = SteadyClock::now() + 2s;
    while (!t.onLoop([&] { return f.clientLeft; }) && SteadyClock::now() < end)
        std::this_thread::sleep_for(5ms);
    CHECK(t.onLoop([&] { return f.clientLeft; }));
    CHECK_FALSE(t.onLoop([&] { return f.stream->write("late"); }));
}

TEST_CASE("stream: a client that stops reading is cut off at the backlog limit") {
    StreamServer server;
    auto& [f, t] = server;
    Client c(t.port);
    int small = 4096;
    ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    REQUIRE(c.send(get("/stream", "X-Hold: 1\r\n")));
    REQUIRE(t.waitForConnections(1));
    while (!t.onLoop([&] { return f.stream.has_value(); })) std::this_thread::sleep_for(5ms);
    // Far more than socket buffers plus the backlog limit can hold.
    std::string piece(64 * 1024, 'x');
    int accepted = t.onLoop([&] {
        int n = 0;
        while (n < 1000 && f.stream->write(piece)) ++n;
        return n;
    });
    CHECK(accepted < 1000);
    CHECK_FALSE(t.onLoop([&] { return f.stream->open(); }));
    CHECK(t.waitForConnections(0));
}
