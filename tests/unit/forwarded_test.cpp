// SPDX-License-Identifier: BSD-3-Clause
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "http/forwarded.h"

using hubd::http::clientView;
using hubd::http::Request;

namespace {

hub::IpNetworkList listOf(const std::vector<std::string>& entries) {
    std::string why;
    auto list = hub::IpNetworkList::parse(entries, why);
    REQUIRE(list);
    return *list;
}

Request from(std::string peer, std::vector<std::pair<std::string, std::string>> headers) {
    Request r;
    r.method = "GET";
    r.target = r.path = r.rawPath = "/hub/";
    r.peerAddress = std::move(peer);
    r.headers.push_back({"Host", "hub.internal:8000"});
    for (auto& [n, v] : headers) r.headers.push_back({n, v});
    return r;
}

const std::vector<std::pair<std::string, std::string>> kForged = {{"X-Forwarded-For", "203.0.113.9"},
                                                                  {"X-Forwarded-Proto", "https"},
                                                                  {"X-Forwarded-Host", "public.example"}};

}  // namespace

TEST_CASE("an untrusted peer's X-Forwarded-* headers are ignored") {
    for (const auto& trusted : {listOf({}), listOf({"10.0.0.0/8", "::1"})}) {
        auto v = clientView(from("127.0.0.1", kForged), trusted);
        CHECK(v.address == "127.0.0.1");
        CHECK(v.scheme == "http");
        CHECK(v.host == "hub.internal:8000");
        CHECK_FALSE(v.viaTrustedProxy);
    }
}

TEST_CASE("a trusted peer tells the client's address, scheme and host") {
    auto v = clientView(from("127.0.0.1", kForged), listOf({"127.0.0.1"}));
    CHECK(v.viaTrustedProxy);
    CHECK(v.address == "203.0.113.9");
    CHECK(v.scheme == "https");
    CHECK(v.host == "public.example");
    // Matched by network, and through a v4-mapped peer address.
    CHECK(clientView(from("10.1.2.3", kForged), listOf({"10.0.0.0/8"})).address == "203.0.113.9");
    CHECK(clientView(from("::ffff:10.1.2.3", kForged), listOf({"10.0.0.0/8"})).address == "203.0.113.9");
    // Without the headers, the socket's view.
    auto plain = clientView(from("127.0.0.1", {}), listOf({"127.0.0.1"}));
    CHECK(plain.address == "127.0.0.1");
    CHECK(plain.scheme == "http");
    CHECK(plain.host == "hub.internal:8000");
}

TEST_CASE("X-Forwarded-For is walked from the right, skipping trusted hops only") {
    auto trusted = listOf({"127.0.0.1", "10.0.0.0/8"});
    // The client may prepend anything: only what trusted hops appended counts.
    auto v = clientView(from("127.0.0.1", {{"X-Forwarded-For", "6.6.6.6, 198.51.100.4, 10.0.0.5"}}), trusted);
    CHECK(v.address == "198.51.100.4");
    // Several header lines are one list, in order.
    v = clientView(from("127.0.0.1", {{"X-Forwarded-For", "6.6.6.6"}, {"X-Forwarded-For", "198.51.100.4"}}),
                   trusted);
    CHECK(v.address == "198.51.100.4");
    // Only trusted hops: the leftmost.
    CHECK(clientView(from("127.0.0.1", {{"X-Forwarded-For", "10.0.0.7,10.0.0.5"}}), trusted).address ==
          "10.0.0.7");
    // Garbage stops the walk at the trusted hop that passed it on.
    CHECK(clientView(from("127.0.0.1", {{"X-Forwarded-For", "198.51.100.4, unknown, 10.0.0.5"}}), trusted)
              .address == "10.0.0.5");
    CHECK(clientView(from("127.0.0.1", {{"X-Forwarded-For", "evil\r\nline"}}), trusted).address ==
          "127.0.0.1");
    CHECK(clientView(from("127.0.0.1", {{"X-Forwarded-For", ""}}), trusted).address == "127.0.0.1");
    CHECK(clientView(from("127.0.0.1", {{"X-Forwarded-For", "2001:db8::5"}}), trusted).address ==
          "2001:db8::5");
}

TEST_CASE("X-Forwarded-Proto and -Host: only sane values") {
    auto trusted = listOf({"127.0.0.1"});
    CHECK(clientView(from("127.0.0.1", {{"X-Forwarded-Proto", "https, http"}}), trusted).scheme == "http");
    CHECK(clientView(from("127.0.0.1", {{"X-Forwarded-Proto", "http, https"}}), trusted).scheme == "https");
    CHECK(clientView(from("127.0.0.1", {{"X-Forwarded-Proto", "javascript"}}), trusted).scheme == "http");
    CHECK(clientView(from("127.0.0.1", {{"X-Forwarded-Host", "a.example:443, b.internal"}}), trusted).host ==
          "a.example:443");
    CHECK(clientView(from("127.0.0.1", {{"X-Forwarded-Host", "[::1]:8443"}}), trusted).host == "[::1]:8443");
    for (const char* bad : {"evil.example/path", "a b", "x\"y", "", "a@b"})
        CHECK_MESSAGE(
            clientView(from("127.0.0.1", {{"X-Forwarded-Host", bad}}), trusted).host == "hub.internal:8000",
            bad);
}
