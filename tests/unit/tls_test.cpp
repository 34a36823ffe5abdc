// SPDX-License-Identifier: BSD-3-Clause
// TLS in hubd's HTTP server over real sockets on 127.0.0.1 with a generated
// test CA: request/response, keep-alive, big bodies, streams, a client that
// stops reading, handshake timeout, garbage, protocol policy, SIGHUP-style
// reload, Transport::pending, and TlsContext's checks of the files.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http/event_loop.h"
#include "http/server.h"
#include "http/tls_context.h"
#include "http/transport.h"
#include "http/unique_fd.h"
#include "tls_test_cert.h"

using namespace hubd::http;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

bool contains(const std::string& s, std::string_view needle) {
    return s.find(needle) != std::string::npos;
}

bool anyContains(const std::vector<std::string>& v, std::string_view needle) {
    for (const auto& s : v)
        if (contains(s, needle)) return true;
    return false;
}

void echo(Request& request, Responder responder) {
    Response r;
    if (request.path == "/big") {
        r.body.assign(8 * 1024 * 1024, 'b');
        r.body += "end";
    } else {
        r.body = std::string(request.tls ? "tls " : "plain ") + request.method + " " + request.path + " " +
                 std::to_string(request.body.size());
    }
    responder.send(std::move(r));
}

std::shared_ptr<TlsContext> context(const tlstest::Files& f) {
    std::vector<std::string> warnings;
    TlsSettings s;
    s.certFile = f.fullchain;
    s.keyFile = f.key;
    return std::make_shared<TlsContext>(s, warnings);
}

struct TlsServer {
    EventLoop loop;
    HttpServer server;
    std::shared_ptr<TlsContext> tls;
    uint16_t port = 0;
    std::thread thread;

    TlsServer(std::shared_ptr<TlsContext> context, Handler handler = echo, Limits limits = {})
        : server(loop, limits, std::move(handler)), tls(std::move(context)) {
        port = server.listen("127.0.0.1", 0, tls);
        thread = std::thread([this] { loop.run(); });
    }
    ~TlsServer() {
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
    bool waitForConnections(size_t n, std::chrono::milliseconds timeout = 5s) {
        auto end = SteadyClock::now() + timeout;
        while (SteadyClock::now() < end) {
            if (onLoop([this] { return server.connectionCount(); }) == n) return true;
            std::this_thread::sleep_for(5ms);
        }
        return false;
    }
};

UniqueFd connectTo(uint16_t port, std::chrono::milliseconds timeout = 5s) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    return fd;
}

// True if the peer closed (EOF or reset) within the socket's receive timeout.
bool closedByPeer(int fd) {
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0) return true;
        if (n < 0) return errno == ECONNRESET;
    }
}

struct ClientOptions {
    int minVersion = TLS1_VERSION;
    int maxVersion = TLS1_3_VERSION;
    const char* ciphers = nullptr;  // TLS 1.2 and below
    int rcvbuf = 0;
};

// A blocking TLS client that verifies the server against the test CA.
class TlsClient {
public:
    TlsClient(uint16_t port, const std::string& caFile, ClientOptions o = {}) : fd_(connectTo(port)) {
        if (o.rcvbuf) ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &o.rcvbuf, sizeof o.rcvbuf);
        ctx_ = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_security_level(ctx_, 0);  // so that old protocols are even offered
        SSL_CTX_set_min_proto_version(ctx_, o.minVersion);
        SSL_CTX_set_max_proto_version(ctx_, o.maxVersion);
        if (o.ciphers) SSL_CTX_set_cipher_list(ctx_, o.ciphers);
        SSL_CTX_load_verify_locations(ctx_, caFile.c_str(), nullptr);
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
        ssl_ = SSL_new(ctx_);
        SSL_set_fd(ssl_, fd_.get());
        SSL_set_tlsext_host_name(ssl_, "localhost");
        SSL_set1_host(ssl_, "localhost");
        ok_ = SSL_connect(ssl_) == 1;
        ERR_clear_error();
    }
    ~TlsClient() {
        SSL_free(ssl_);
        SSL_CTX_free(ctx_);
    }
    TlsClient(const TlsClient&) = delete;
    TlsClient& operator=(const TlsClient&) = delete;

    bool connected() const { return ok_; }
    SSL* ssl() const { return ssl_; }
    int fd() const { return fd_.get(); }
    long serial() const {
        X509* peer = SSL_get1_peer_certificate(ssl_);
        long s = peer ? ASN1_INTEGER_get(X509_get0_serialNumber(peer)) : -1;
        X509_free(peer);
        return s;
    }
    bool send(std::string_view data) {
        while (!data.empty()) {
            int n = SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 20)));
            if (n <= 0) return false;
            data.remove_prefix(static_cast<size_t>(n));
        }
        return true;
    }
    bool fill() {
        char chunk[65536];
        int n = SSL_read(ssl_, chunk, sizeof chunk);
        if (n <= 0) return false;
        buf_.append(chunk, static_cast<size_t>(n));
        return true;
    }
    bool readUntil(std::string_view needle) {
        while (buf_.find(needle) == std::string::npos)
            if (!fill()) return false;
        return true;
    }
    // One Content-Length response: head (lowercased names) and body.
    struct Reply {
        int status = 0;
        std::string head, body;
        std::string header(std::string name) const {
            size_t at = head.find("\r\n" + name + ": ");
            if (at == std::string::npos) return {};
            at += name.size() + 4;
            return head.substr(at, head.find("\r\n", at) - at);
        }
    };
    std::optional<Reply> read() {
        if (!readUntil("\r\n\r\n")) return std::nullopt;
        Reply r;
        size_t end = buf_.find("\r\n\r\n");
        r.head = buf_.substr(0, end + 2);
        buf_.erase(0, end + 4);
        r.status = std::stoi(r.head.substr(9, 3));
        size_t length = std::stoul(r.header("Content-Length"));
        while (buf_.size() < length)
            if (!fill()) return std::nullopt;
        r.body = buf_.substr(0, length);
        buf_.erase(0, length);
        return r;
    }
    std::string& buffered() { return buf_; }

private:
    UniqueFd fd_;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    bool ok_ = false;
    std::string buf_;
};

ClientOptions upTo(int maxVersion, const char* ciphers = nullptr) {
    ClientOptions o;
    o.maxVersion = maxVersion;
    o.ciphers = ciphers;
    return o;
}

TlsSettings files(std::string cert, std::string key = "", bool allowWorldReadable = false) {
    TlsSettings s;
    s.certFile = std::move(cert);
    s.keyFile = std::move(key);
    s.allowWorldReadableKey = allowWorldReadable;
    return s;
}

std::string get(std::string_view path) {
    return "GET " + std::string(path) + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
}

}  // namespace

TEST_CASE("TLS: request and response with keep-alive; Request::tls and HSTS") {
    tlstest::Files f;
    TlsServer t(context(f));
    TlsClient c(t.port, f.ca);
    REQUIRE(c.connected());
    CHECK(SSL_version(c.ssl()) == TLS1_3_VERSION);
    for (int i = 0; i < 5; ++i) {
        REQUIRE(c.send(get("/n/" + std::to_string(i))));
        auto r = c.read();
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->body == "tls GET /n/" + std::to_string(i) + " 0");
        CHECK(r->header("Strict-Transport-Security") == "max-age=31536000");
    }
    CHECK(t.onLoop([&] { return t.server.connectionCount(); }) == 1);
    // Several requests in one record (pipelined) are answered in order.
    REQUIRE(c.send(get("/p1") + get("/p2")));
    auto a = c.read();
    auto b = c.read();
    REQUIRE((a && b));
    CHECK(a->body == "tls GET /p1 0");
    CHECK(b->body == "tls GET /p2 0");
}

TEST_CASE("TLS: a plain listener on the same server loop has no HSTS and tls false") {
    tlstest::Files f;
    TlsServer t(context(f));
    uint16_t plainPort = t.onLoop([&] { return t.server.listen("127.0.0.1", 0); });
    UniqueFd fd = connectTo(plainPort);
    std::string request = get("/x");
    REQUIRE(::send(fd.get(), request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
    char buf[4096];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    REQUIRE(n > 0);
    std::string reply(buf, static_cast<size_t>(n));
    CHECK(contains(reply, "plain GET /x 0"));
    CHECK_FALSE(contains(reply, "Strict-Transport-Security"));
}

TEST_CASE("TLS: big response and request bodies") {
    tlstest::Files f;
    Limits limits;
    limits.maxBodyBytes = 4 * 1024 * 1024;
    TlsServer t(context(f), echo, limits);
    TlsClient c(t.port, f.ca);
    REQUIRE(c.connected());
    REQUIRE(c.send(get("/big")));
    auto r = c.read();
    REQUIRE(r);
    CHECK(r->body.size() == 8 * 1024 * 1024 + 3);
    CHECK(r->body.substr(r->body.size() - 3) == "end");
    std::string body(3 * 1024 * 1024 + 17, 'u');
    REQUIRE(c.send("POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(body.size()) +
                   "\r\n\r\n" + body));
    auto up = c.read();
    REQUIRE(up);
    CHECK(up->body == "tls POST /up " + std::to_string(body.size()));
}

TEST_CASE("TLS: a request left decrypted inside OpenSSL is still read (Transport::pending)") {
    // While /slow is handled the server does not read, so the next request
    // piles up in the socket. Once it reads again, a 64 KiB read stops in
    // the middle of a record: the rest is inside OpenSSL, the socket is
    // empty, and only pending() says that a request is waiting.
    tlstest::Files f;
    EventLoop* loop = nullptr;
    auto handler = [&](Request& request, Responder responder) {
        if (request.path != "/slow") return echo(request, std::move(responder));
        loop->addTimer(300ms,
                       [responder]() mutable { echo(*std::make_unique<Request>(), std::move(responder)); });
    };
    TlsServer t(context(f), handler);
    loop = &t.loop;
    TlsClient c(t.port, f.ca);
    REQUIRE(c.connected());
    std::string body(64 * 1024 + 100, 'p');
    REQUIRE(c.send(get("/slow")));
    // The head as a record of its own, so that 64 KiB ends inside a body record.
    REQUIRE(c.send("POST /after HTTP/1.1\r\nHost: localhost\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n"));
    REQUIRE(c.send(body));
    auto first = c.read();
    REQUIRE(first);
    auto second = c.read();
    REQUIRE(second);
    CHECK(second->body == "tls POST /after " + std::to_string(body.size()));
}

TEST_CASE("TLS: a streamed response goes out as it comes; a client that stops reading is cut off") {
    tlstest::Files f;
    std::optional<ResponseStream> stream;
    TlsServer* server = nullptr;
    auto handler = [&](Request&, Responder responder) {
        Response head;
        head.set("Content-Type", "text/event-stream");
        stream = responder.stream(std::move(head));
        stream->write("data: one\n\n");
    };
    TlsServer t(context(f), handler);
    server = &t;
    {
        TlsClient c(t.port, f.ca);
        REQUIRE(c.connected());
        REQUIRE(c.send(get("/events")));
        REQUIRE(c.readUntil("data: one\n\n"));
        CHECK(contains(c.buffered(), "Transfer-Encoding: chunked"));
        CHECK(contains(c.buffered(), "Strict-Transport-Security: max-age=31536000"));
        server->onLoop([&] { return stream->write("data: two\n\n"); });
        REQUIRE(c.readUntil("data: two\n\n"));
        server->onLoop([&] {
            stream->end();
            return true;
        });
        REQUIRE(c.readUntil("0\r\n\r\n"));
    }
    CHECK(t.waitForConnections(0));

    ClientOptions small;
    small.rcvbuf = 4096;
    TlsClient slow(t.port, f.ca, small);
    REQUIRE(slow.connected());
    REQUIRE(slow.send(get("/events")));
    while (!t.onLoop([&] { return stream.has_value() && stream->open(); })) std::this_thread::sleep_for(5ms);
    std::string piece(64 * 1024, 'x');
    int accepted = t.onLoop([&] {
        int n = 0;
        while (n < 1000 && stream->write(piece)) ++n;
        return n;
    });
    CHECK(accepted < 1000);
    CHECK_FALSE(t.onLoop([&] { return stream->open(); }));
    CHECK(t.waitForConnections(0));
}

TEST_CASE("TLS: the handshake is bounded by headerTimeout") {
    tlstest::Files f;
    Limits limits;
    limits.headerTimeout = 300ms;
    TlsServer t(context(f), echo, limits);
    auto start = SteadyClock::now();
    UniqueFd silent = connectTo(t.port);
    UniqueFd partial = connectTo(t.port);
    // The first bytes of a ClientHello record, and then nothing.
    const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00};
    REQUIRE(::send(partial.get(), hello, sizeof hello, 0) == static_cast<ssize_t>(sizeof hello));
    CHECK(closedByPeer(silent.get()));
    CHECK(closedByPeer(partial.get()));
    auto elapsed = SteadyClock::now() - start;
    CHECK(elapsed >= 250ms);
    CHECK(elapsed < 3s);
    CHECK(t.waitForConnections(0));
}

TEST_CASE("TLS: garbage instead of a ClientHello is closed; plain HTTP gets a 400 naming https") {
    tlstest::Files f;
    TlsServer t(context(f));
    UniqueFd garbage = connectTo(t.port);
    std::string junk(300, '\x7f');
    REQUIRE(::send(garbage.get(), junk.data(), junk.size(), 0) == static_cast<ssize_t>(junk.size()));
    CHECK(closedByPeer(garbage.get()));

    UniqueFd plain = connectTo(t.port);
    std::string request = get("/hub/");
    REQUIRE(::send(plain.get(), request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
    std::string reply;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(plain.get(), buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<size_t>(n));
    CHECK(reply.rfind("HTTP/1.1 400 ", 0) == 0);
    CHECK(contains(reply, "https://"));
    CHECK(t.waitForConnections(0));
    // And the server still serves TLS.
    TlsClient c(t.port, f.ca);
    REQUIRE(c.connected());
    REQUIRE(c.send(get("/after")));
    auto r = c.read();
    REQUIRE(r);
    CHECK(r->body == "tls GET /after 0");
}

TEST_CASE("TLS policy: 1.2 and 1.3 only, forward-secret AEAD ciphers only, no compression") {
    tlstest::Files f;
    TlsServer t(context(f));
    CHECK_FALSE(TlsClient(t.port, f.ca, upTo(TLS1_VERSION)).connected());
    CHECK_FALSE(TlsClient(t.port, f.ca, upTo(TLS1_1_VERSION)).connected());
    // No forward secrecy (static RSA key exchange), CBC, and 3DES are refused.
    CHECK_FALSE(TlsClient(t.port, f.ca, upTo(TLS1_2_VERSION, "AES128-GCM-SHA256")).connected());
    CHECK_FALSE(TlsClient(t.port, f.ca, upTo(TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA")).connected());
    CHECK_FALSE(TlsClient(t.port, f.ca, upTo(TLS1_2_VERSION, "DHE-RSA-AES128-GCM-SHA256")).connected());
    TlsClient tls12(t.port, f.ca, upTo(TLS1_2_VERSION));
    REQUIRE(tls12.connected());
    CHECK(std::string(SSL_get_cipher_name(tls12.ssl())) == "ECDHE-ECDSA-AES128-GCM-SHA256");
    CHECK(SSL_get_current_compression(tls12.ssl()) == nullptr);
    // The server's order wins over the client's.
    TlsClient prefer(t.port, f.ca,
                     upTo(TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"));
    REQUIRE(prefer.connected());
    CHECK(std::string(SSL_get_cipher_name(prefer.ssl())) == "ECDHE-ECDSA-AES128-GCM-SHA256");
    // No session resumption: nothing to resume from.
    CHECK(SSL_SESSION_is_resumable(SSL_get0_session(tls12.ssl())) == 0);
}

TEST_CASE("TLS reload: new handshakes see the new certificate, an open connection keeps working") {
    tlstest::Files f;
    TlsServer t(context(f));
    TlsClient old(t.port, f.ca);
    REQUIRE(old.connected());
    CHECK(old.serial() == 2);
    // A renewal: a new certificate (serial 7) for a new key, written over the files.
    EVP_PKEY* newKey = tlstest::newKey();
    EVP_PKEY* caKey = tlstest::newKey();
    X509* ca = tlstest::makeCert("hubd test CA 2", caKey, nullptr, nullptr, 6, true, -1, 3650);
    X509* renewed = tlstest::makeCert("localhost", newKey, ca, caKey, 7, false);
    std::string ca2 = f.dir + "/ca2.pem";
    tlstest::writePem(ca2, ca);
    tlstest::writePem(f.fullchain, renewed, ca);
    tlstest::writePem(f.key, nullptr, nullptr, newKey);
    X509_free(ca);
    X509_free(renewed);
    EVP_PKEY_free(caKey);
    EVP_PKEY_free(newKey);

    std::vector<std::string> warnings;
    std::string error;
    CHECK(t.onLoop([&] { return t.tls->reload(warnings, error); }));
    CHECK(error.empty());
    TlsClient fresh(t.port, ca2);
    REQUIRE(fresh.connected());
    CHECK(fresh.serial() == 7);
    REQUIRE(old.send(get("/still")));
    auto r = old.read();
    REQUIRE(r);
    CHECK(r->body == "tls GET /still 0");

    // A broken renewal (the key of something else) keeps the current certificate.
    REQUIRE(std::system(("cp '" + f.otherKey + "' '" + f.key + "'").c_str()) == 0);
    CHECK_FALSE(t.onLoop([&] { return t.tls->reload(warnings, error); }));
    CHECK(contains(error, "does not belong to the certificate"));
    TlsClient after(t.port, ca2);
    REQUIRE(after.connected());
    CHECK(after.serial() == 7);
}

TEST_CASE("Transport::pending: bytes OpenSSL holds are seen although the socket is not readable") {
    tlstest::Files f;
    auto tls = context(f);
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) == 0);
    UniqueFd serverFd(pair[0]), clientFd(pair[1]);
    Transport server(tls->newSession(serverFd.get()));
    SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
    SSL* client = SSL_new(cctx);
    SSL_set_fd(client, clientFd.get());
    SSL_set_connect_state(client);
    char buf[64];
    // Drive both ends of the handshake by hand (non-blocking).
    for (int i = 0; i < 50 && !SSL_is_init_finished(client); ++i) {
        SSL_do_handshake(client);
        server.read(serverFd.get(), buf, sizeof buf);
    }
    REQUIRE(SSL_is_init_finished(client));
    for (int i = 0; i < 3; ++i) REQUIRE(SSL_write(client, "0123456789", 10) == 10);
    // A 5-byte read takes the first records off the socket (read-ahead)...
    ssize_t n = -1;
    for (int i = 0; i < 20 && n <= 0; ++i) n = server.read(serverFd.get(), buf, 5);
    REQUIRE(n == 5);
    pollfd p{serverFd.get(), POLLIN, 0};
    CHECK(::poll(&p, 1, 0) == 0);  // ...so epoll would never report them
    CHECK(server.pending());
    std::string rest;
    while (server.pending()) {
        n = server.read(serverFd.get(), buf, sizeof buf);
        REQUIRE(n > 0);
        rest.append(buf, static_cast<size_t>(n));
    }
    CHECK(rest == std::string("56789") + "0123456789" + "0123456789");
    CHECK(server.read(serverFd.get(), buf, sizeof buf) == -1);
    CHECK(errno == EAGAIN);
    CHECK_FALSE(server.pending());
    Transport plain;
    CHECK_FALSE(plain.pending());
    CHECK(plain.events(EPOLLIN) == EPOLLIN);
    SSL_free(client);
    SSL_CTX_free(cctx);
}

TEST_CASE("TlsContext: files are checked, errors name the file and the fix") {
    tlstest::Files f;
    auto load = [](TlsSettings s, std::vector<std::string>& warnings) {
        return std::make_shared<TlsContext>(std::move(s), warnings);
    };
    std::vector<std::string> w;
    auto error = [&](TlsSettings s) -> std::string {
        std::vector<std::string> warnings;
        try {
            load(std::move(s), warnings);
        } catch (const TlsError& e) {
            return e.what();
        }
        return "";
    };

    // A file holding chain and key, and the Let's Encrypt pair.
    CHECK(load(files(f.combined), w));
    CHECK(load(files(f.fullchain, f.key), w));
    CHECK(w.empty());

    std::string missing = error(files(f.dir + "/nope.pem", f.key));
    CHECK(contains(missing, f.dir + "/nope.pem does not exist"));
    CHECK(contains(missing, "JupyterHub.ssl_cert"));
    std::string mismatch = error(files(f.fullchain, f.otherKey));
    CHECK(contains(mismatch, "the private key in " + f.otherKey + " does not belong to the certificate in " +
                                 f.fullchain));
    CHECK(contains(error(files(f.fullchain)), "holds no private key: set JupyterHub.ssl_key"));
    CHECK(contains(error(files(f.key, f.key)), "no certificate"));

    // Key permissions: 0644 refused unless allowed, 0640 warned.
    REQUIRE(::chmod(f.dir.c_str(), 0755) == 0);
    REQUIRE(::chmod(f.key.c_str(), 0644) == 0);
    std::string world = error(files(f.fullchain, f.key));
    CHECK(contains(world, "readable by every user"));
    CHECK(contains(world, "chmod 600 " + f.key));
    CHECK(contains(world, "JupyterHub.ssl_allow_world_readable_key"));
    w.clear();
    CHECK(load(files(f.fullchain, f.key, true), w));
    CHECK(anyContains(w, "readable by every user"));
    REQUIRE(::chmod(f.key.c_str(), 0640) == 0);
    w.clear();
    CHECK(load(files(f.fullchain, f.key), w));
    CHECK(anyContains(w, "readable by group"));
    CHECK(anyContains(w, "chmod 600 " + f.key));
    REQUIRE(::chmod(f.key.c_str(), 0600) == 0);
    // A 0644 key in a directory others cannot enter is not world-readable.
    REQUIRE(::chmod(f.key.c_str(), 0644) == 0);
    REQUIRE(::chmod(f.dir.c_str(), 0700) == 0);
    w.clear();
    CHECK(load(files(f.fullchain, f.key), w));
    CHECK_FALSE(anyContains(w, "every user"));
    REQUIRE(::chmod(f.key.c_str(), 0600) == 0);

    // An expired certificate is served with a warning that says what to do.
    w.clear();
    CHECK(load(files(f.expired, f.key), w));
    CHECK(anyContains(w, "expired on"));
    CHECK(anyContains(w, "SIGHUP"));

    // An OCSP file that is not an OCSP response is not stapled, and says so.
    std::string junk = f.fullchain + ".ocsp";
    REQUIRE(std::system(("echo garbage > '" + junk + "'").c_str()) == 0);
    w.clear();
    CHECK(load(files(f.fullchain, f.key), w));
    CHECK(anyContains(w, "not stapling the OCSP response in " + junk));
}
