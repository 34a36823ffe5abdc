// SPDX-License-Identifier: BSD-3-Clause
// Request parser: good and hostile requests, incremental feeding, fuzzing.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "http/parser.h"

using namespace hubd::http;

namespace {

struct Parsed {
    ParseResult result;
    Request request;
};

Parsed parse(std::string_view raw, const Limits& limits = {}) {
    Parsed p;
    p.result = parseRequest(raw, limits, p.request);
    return p;
}

// Expected status: 0 = parses completely, -1 = incomplete, else the error status.
int outcome(std::string_view raw, const Limits& limits = {}) {
    auto p = parse(raw, limits);
    switch (p.result.status) {
        case ParseStatus::Complete:
            return 0;
        case ParseStatus::Incomplete:
            return -1;
        case ParseStatus::Error:
            return p.result.error.status;
    }
    return -2;
}

// Feeds the request to the incremental pieces one byte at a time, the way
// a slow client would, and reports the same outcome codes as outcome().
int outcomeByteByByte(std::string_view raw, const Limits& limits = {}) {
    HeadScanner scanner;
    size_t i = 0;
    HeadScanner::Status status = HeadScanner::Status::NeedMore;
    while (status == HeadScanner::Status::NeedMore && i < raw.size()) {
        ++i;
        status = scanner.scan(raw.substr(0, i), limits);
    }
    if (status == HeadScanner::Status::Error) return scanner.error().status;
    if (status == HeadScanner::Status::NeedMore) return -1;
    Request request;
    HeadInfo info;
    auto head = raw.substr(scanner.headStart(), scanner.headEnd() - scanner.headStart());
    if (auto error = parseHead(head, limits, request, info)) return error.status;
    auto rest = raw.substr(scanner.headEnd());
    if (info.framing == BodyFraming::None) return 0;
    if (info.framing == BodyFraming::ContentLength) return rest.size() >= info.contentLength ? 0 : -1;
    ChunkedDecoder decoder;
    std::string body;
    for (size_t k = 0; k < rest.size(); ++k) {
        size_t used = 0;
        auto s = decoder.feed(rest.substr(k, 1), body, limits, used);
        if (s == ChunkedDecoder::Status::Error) return decoder.error().status;
        if (s == ChunkedDecoder::Status::Done) return 0;
    }
    return -1;
}

struct Case {
    const char* name;
    std::string raw;
    int expected;
};

std::string get(std::string_view extraHeaders = "", std::string_view target = "/") {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: hub\r\n" + std::string(extraHeaders) + "\r\n";
}

std::string post(std::string_view headers, std::string_view body) {
    return "POST /p HTTP/1.1\r\nHost: hub\r\n" + std::string(headers) + "\r\n" + std::string(body);
}

}  // namespace

TEST_CASE("request table: good, bad and smuggling forms") {
    using namespace std::string_literals;
    const std::vector<Case> cases = {
        // good
        {"simple GET", get(), 0},
        {"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 0},
        {"HTTP/1.2 treated as 1.1", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 0},
        {"leading empty line ignored", "\r\n" + get(), 0},
        {"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 0},
        {"absolute-form http://", "GET http://hub:8000/a?b=1 HTTP/1.1\r\nHost: hub\r\n\r\n", 0},
        {"header value with tab and obs-text", get("X-A: a\tb \xe2\x82\xac\r\n"), 0},
        {"empty header value", get("X-Empty:\r\n"), 0},
        {"Content-Length body", post("Content-Length: 5\r\n", "hello"), 0},
        {"identical duplicate Content-Length", post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
         0},
        {"Content-Length: 0", post("Content-Length: 0\r\n", ""), 0},
        {"chunked body", post("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"), 0},
        {"chunked, upper-case coding", post("Transfer-Encoding: Chunked\r\n", "0\r\n\r\n"), 0},
        {"chunked with extension", post("Transfer-Encoding: chunked\r\n", "5;a=b\r\nhello\r\n0\r\n\r\n"), 0},
        {"chunked with trailer", post("Transfer-Encoding: chunked\r\n", "1\r\nx\r\n0\r\nX-T: 1\r\n\r\n"), 0},
        {"path with valid UTF-8 escape", get("", "/user/%C3%A9"), 0},

        // incomplete
        {"head without final CRLF", "GET / HTTP/1.1\r\nHost: h\r\n", -1},
        {"body shorter than Content-Length", post("Content-Length: 10\r\n", "hello"), -1},
        {"chunked without last chunk", post("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n"), -1},

        // framing
        {"bare LF line ends", "GET / HTTP/1.1\nHost: h\n\n", 400},
        {"bare LF after headers", "GET / HTTP/1.1\r\nHost: h\r\n\n", 400},
        {"bare CR in header value", get("X-A: a\rb\r\n"), 400},
        {"obs-fold", get("X-A: a\r\n b\r\n"), 400},
        {"leading space before first header",
         "GET / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: h\r\n\r\n", 400},
        {"space before colon", get("Host : h\r\n"), 400},
        {"tab before colon", post("Content-Length\t: 5\r\n", "hello"), 400},
        {"no colon", get("X-A\r\n"), 400},
        {"empty header name", get(": v\r\n"), 400},
        {"non-token header name", get("X(A): v\r\n"), 400},
        {"NUL in header value", get("X-A: a"s + '\0' + "b\r\n"), 400},
        {"NUL in header name", get("X-"s + '\0' + "A: b\r\n"), 400},
        {"DEL in header value", get("X-A: a\x7f\r\n"), 400},
        {"NUL in target", "GET /a"s + '\0' + " HTTP/1.1\r\nHost: h\r\n\r\n", 400},

        // request line
        {"lower-case HTTP", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
        {"two spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"trailing space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
        {"HTTP/0.9 style", "GET /\r\n\r\n", 400},
        {"space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"tab separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"non-token method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        {"HTTP/1.10", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400},
        {"star for GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"authority-form", "CONNECT hub:443 HTTP/1.1\r\nHost: hub\r\n\r\n", 400},
        {"https absolute-form", "GET https://hub/ HTTP/1.1\r\nHost: hub\r\n\r\n", 400},
        {"relative target", "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"fragment", get("", "/a#b"), 400},
        {"raw UTF-8 in target", get("", "/\xc3\xa9"), 400},

        // path decoding
        {"%00 in path", get("", "/a%00b"), 400},
        {"truncated escape", get("", "/a%4"), 400},
        {"non-hex escape", get("", "/a%zz"), 400},
        {"overlong UTF-8 escape", get("", "/%C0%AE%C0%AE/"), 400},
        {"invalid UTF-8 escape", get("", "/%FF"), 400},
        {"surrogate escape", get("", "/%ED%A0%80"), 400},
        {"%00 in query is left to the app", get("", "/a?x=%00"), 0},

        // Host
        {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400},
        {"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
        {"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},

        // Content-Length
        {"Content-Length: 5, 6", post("Content-Length: 5, 6\r\n", "hello!"), 400},
        {"Content-Length: 5, 5 (list form)", post("Content-Length: 5, 5\r\n", "hello"), 400},
        {"differing Content-Length headers", post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"),
         400},
        {"Content-Length: +5", post("Content-Length: +5\r\n", "hello"), 400},
        {"Content-Length: -1", post("Content-Length: -1\r\n", ""), 400},
        {"Content-Length: 0x5", post("Content-Length: 0x5\r\n", "hello"), 400},
        {"Content-Length: 5 5", post("Content-Length: 5 5\r\n", "hello"), 400},
        {"empty Content-Length", post("Content-Length:\r\n", ""), 400},
        {"Content-Length overflow", post("Content-Length: 99999999999999999999999\r\n", ""), 413},
        {"Content-Length over limit", post("Content-Length: 1048577\r\n", ""), 413},

        // Transfer-Encoding
        {"CL and TE", post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), 400},
        {"TE and CL", post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"), 400},
        {"chunked, identity", post("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n"), 400},
        {"identity", post("Transfer-Encoding: identity\r\n", ""), 400},
        {"chunked twice", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
         400},
        {"gzip, chunked", post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"), 501},
        {"chunked with parameter", post("Transfer-Encoding: chunked;q=1\r\n", "0\r\n\r\n"), 400},
        {"xchunked", post("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"), 400},
        {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"empty TE", post("Transfer-Encoding:\r\n", ""), 400},

        // chunked body
        {"huge chunk size", post("Transfer-Encoding: chunked\r\n", "ffffffffffffffffffff\r\n"), 413},
        {"chunk size over limit", post("Transfer-Encoding: chunked\r\n", "100001\r\n"), 413},
        {"negative chunk size", post("Transfer-Encoding: chunked\r\n", "-1\r\nx\r\n0\r\n\r\n"), 400},
        {"chunk size with 0x", post("Transfer-Encoding: chunked\r\n", "0x5\r\nhello\r\n0\r\n\r\n"), 400},
        {"empty chunk size", post("Transfer-Encoding: chunked\r\n", "\r\nhello\r\n0\r\n\r\n"), 400},
        {"chunk size with trailing space", post("Transfer-Encoding: chunked\r\n", "5 \r\nhello\r\n0\r\n\r\n"),
         400},
        {"chunk data too long", post("Transfer-Encoding: chunked\r\n", "5\r\nhello!\r\n0\r\n\r\n"), 400},
        {"chunk size bare LF", post("Transfer-Encoding: chunked\r\n", "5\nhello\r\n0\r\n\r\n"), 400},
        {"chunk data bare LF", post("Transfer-Encoding: chunked\r\n", "5\r\nhello\n0\r\n\r\n"), 400},
        {"NUL in chunk extension", post("Transfer-Encoding: chunked\r\n", "5;a\0\r\nhello\r\n0\r\n\r\n"s),
         400},
        {"obs-fold in trailer", post("Transfer-Encoding: chunked\r\n", "0\r\nX: 1\r\n 2\r\n\r\n"), 400},
        {"chunk line too long",
         post("Transfer-Encoding: chunked\r\n", "5;" + std::string(2000, 'a') + "\r\n"), 400},
        {"many leading zeros", post("Transfer-Encoding: chunked\r\n", std::string(2000, '0') + "5\r\n"), 400},

        // Expect
        {"Expect: 100-continue", post("Content-Length: 5\r\nExpect: 100-continue\r\n", "hello"), 0},
        {"Expect: something else", post("Content-Length: 5\r\nExpect: teapot\r\n", "hello"), 417},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        CHECK(outcome(c.raw) == c.expected);
        CHECK(outcomeByteByByte(c.raw) == c.expected);
    }
}

TEST_CASE("fields of a parsed request") {
    auto p = parse(
        "GET /hub/api/users%2Fx?name=a+b&x=%41&flag HTTP/1.1\r\nHost: hub\r\nX-Forwarded-For:  1.2.3.4 "
        "\r\n\r\n");
    REQUIRE(p.result.status == ParseStatus::Complete);
    CHECK(p.request.method == "GET");
    CHECK(p.request.target == "/hub/api/users%2Fx?name=a+b&x=%41&flag");
    CHECK(p.request.rawPath == "/hub/api/users%2Fx");
    CHECK(p.request.path == "/hub/api/users/x");
    CHECK(p.request.query == "name=a+b&x=%41&flag");
    CHECK(p.request.versionMinor == 1);
    CHECK(p.request.header("x-forwarded-for") == "1.2.3.4");
    CHECK(p.request.header("HOST") == "hub");
    CHECK(p.request.hasHeader("host"));
    CHECK_FALSE(p.request.hasHeader("cookie"));
    CHECK(p.request.header("cookie").empty());
    CHECK(p.request.queryParam("name") == "a b");
    CHECK(p.request.queryParam("x") == "A");
    CHECK(p.request.queryParam("flag") == "");
    CHECK_FALSE(p.request.queryParam("missing").has_value());
    CHECK(p.result.info.keepAlive);
    CHECK(p.result.info.framing == BodyFraming::None);

    auto abs = parse("GET http://hub:8000?q=1 HTTP/1.1\r\nHost: hub\r\n\r\n");
    REQUIRE(abs.result.status == ParseStatus::Complete);
    CHECK(abs.request.path == "/");
    CHECK(abs.request.query == "q=1");
    auto abs2 = parse("GET HTTP://hub/a/b HTTP/1.1\r\nHost: hub\r\n\r\n");
    REQUIRE(abs2.result.status == ParseStatus::Complete);
    CHECK(abs2.request.path == "/a/b");

    auto star = parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(star.request.path == "*");
}

TEST_CASE("keep-alive rules") {
    auto ka = [](std::string_view raw) {
        auto p = parse(raw);
        REQUIRE(p.result.status == ParseStatus::Complete);
        return p.result.info.keepAlive;
    };
    CHECK(ka("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    CHECK_FALSE(ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    CHECK_FALSE(ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n"));
    CHECK_FALSE(ka("GET / HTTP/1.0\r\n\r\n"));
    CHECK(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    CHECK(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
}

TEST_CASE("bodies and pipelined leftovers") {
    std::string two = post("Content-Length: 5\r\n", "hello") + get();
    auto p = parse(two);
    REQUIRE(p.result.status == ParseStatus::Complete);
    CHECK(p.request.body == "hello");
    auto second = parse(std::string_view(two).substr(p.result.consumed));
    REQUIRE(second.result.status == ParseStatus::Complete);
    CHECK(second.request.method == "GET");

    std::string chunked =
        post("Transfer-Encoding: chunked\r\n", "3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\n") +
        get();
    auto c = parse(chunked);
    REQUIRE(c.result.status == ParseStatus::Complete);
    CHECK(c.request.body == "abc0123456789");
    CHECK(c.result.info.framing == BodyFraming::Chunked);
    CHECK(parse(std::string_view(chunked).substr(c.result.consumed)).result.status == ParseStatus::Complete);

    auto e = parse(post("Content-Length: 3\r\nExpect: 100-continue\r\n", "abc"));
    CHECK(e.result.info.expectContinue);
}

TEST_CASE("limits: 414, 431, 413") {
    Limits limits;
    limits.maxRequestLineBytes = 100;
    limits.maxHeaderBytes = 400;
    limits.maxHeaderCount = 5;
    limits.maxBodyBytes = 10;

    std::string longTarget = "/" + std::string(200, 'a');
    CHECK(outcome(get("", longTarget), limits) == 414);
    // Detected before the line ends: no need to wait for the CRLF.
    CHECK(outcome("GET " + longTarget, limits) == 414);
    CHECK(outcome(get("", "/" + std::string(80, 'a')), limits) == 0);

    std::string manyHeaders;
    for (int i = 0; i < 6; ++i) manyHeaders += "X-" + std::to_string(i) + ": v\r\n";
    CHECK(outcome(get(manyHeaders), limits) == 431);
    CHECK(outcome(get("X-Big: " + std::string(500, 'v') + "\r\n"), limits) == 431);
    // Still incomplete but already too big.
    CHECK(outcome("GET / HTTP/1.1\r\nX-Big: " + std::string(500, 'v'), limits) == 431);
    CHECK(outcome(std::string(1000, '\r') + "\n", limits) == 414);
    std::string crlfs;
    for (int i = 0; i < 300; ++i) crlfs += "\r\n";
    CHECK(outcome(crlfs, limits) == 400);

    CHECK(outcome(post("Content-Length: 11\r\n", "hello world"), limits) == 413);
    CHECK(outcome(post("Content-Length: 10\r\n", "helloworld"), limits) == 0);
    CHECK(outcome(post("Transfer-Encoding: chunked\r\n", "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"), limits) ==
          413);
    CHECK(outcome(post("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"), limits) ==
          0);
    CHECK(outcome(post("Transfer-Encoding: chunked\r\n", "0\r\nX: " + std::string(500, 'v') + "\r\n\r\n"),
                  limits) == 431);
}

TEST_CASE("decodePath and isValidUtf8") {
    CHECK(decodePath("/a%20b") == "/a b");
    CHECK(decodePath("/%2e%2E") == "/..");
    CHECK(decodePath("/%F0%9F%98%80") == "/\xF0\x9F\x98\x80");
    CHECK_FALSE(decodePath("/%").has_value());
    CHECK_FALSE(decodePath("/%0").has_value());
    CHECK_FALSE(decodePath("/%00").has_value());
    CHECK_FALSE(decodePath("/%F4%90%80%80").has_value());  // > U+10FFFF
    CHECK_FALSE(decodePath("/%E2%82").has_value());        // truncated sequence
    CHECK(isValidUtf8(""));
    CHECK(isValidUtf8("\xEF\xBF\xBF"));
    CHECK_FALSE(isValidUtf8("\x80"));
    CHECK_FALSE(isValidUtf8("\xE0\x80\xAF"));  // overlong '/'
    CHECK(decodeQueryComponent("a+b%2B%zz") == "a b+%zz");
}

TEST_CASE("fuzz: mutated requests never crash and agree byte-by-byte") {
    const std::vector<std::string> seeds = {
        get("Cookie: a=b\r\n", "/hub/api/users?x=1"),
        post("Content-Length: 5\r\n", "hello"),
        post("Transfer-Encoding: chunked\r\n", "5;e=1\r\nhello\r\n0\r\nT: 1\r\n\r\n"),
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    };
    const char alphabet[] = {'\r', '\n', ' ', '\t', ':', ',', '0', '9', 'f', '%', '\0', '\x80', 'A', ';'};
    std::mt19937 rng(12345);
    Limits limits;
    limits.maxBodyBytes = 64;
    limits.maxHeaderBytes = 256;
    for (int iteration = 0; iteration < 20000; ++iteration) {
        std::string s = seeds[rng() % seeds.size()];
        int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !s.empty(); ++e) {
            size_t at = rng() % s.size();
            switch (rng() % 3) {
                case 0:
                    s[at] = alphabet[rng() % sizeof alphabet];
                    break;
                case 1:
                    s.insert(s.begin() + static_cast<long>(at), alphabet[rng() % sizeof alphabet]);
                    break;
                case 2:
                    s.erase(at, 1 + rng() % 3);
                    break;
            }
        }
        CAPTURE(s);
        int whole = outcome(s, limits);
        int slow = outcomeByteByByte(s, limits);
        // Byte-by-byte can only differ by finishing a chunked body the
        // one-shot parse also accepted; errors and completeness must agree.
        REQUIRE(whole == slow);
    }
}
