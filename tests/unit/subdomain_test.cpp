// SPDX-License-Identifier: BSD-3-Clause
// JupyterHub.subdomain_host: the trait, JupyterHub's label escaping, Host matching.
#include <doctest/doctest.h>

#include <string>

#include "hubcore/subdomain.h"

using hub::classifyHost;
using hub::dnsLabel;
using hub::HostMatch;
using hub::labelProblem;
using hub::parseSubdomainHost;

namespace {

hub::SubdomainHost parsed(std::string_view value) {
    std::string why;
    auto host = parseSubdomainHost(value, why);
    REQUIRE_MESSAGE(host, why);
    return *host;
}

std::string refusal(std::string_view value) {
    std::string why;
    CHECK_FALSE(parseSubdomainHost(value, why));
    return why;
}

}  // namespace

TEST_CASE("subdomain_host: a URL with scheme, optional port, no path") {
    auto h = parsed("https://Hub.Example.org");
    CHECK(h.scheme == "https");
    CHECK(h.domain == "hub.example.org");
    CHECK(h.port == 0);
    CHECK(h.hubOrigin() == "https://hub.example.org");
    CHECK(h.userOrigin("alice") == "https://alice.hub.example.org");

    auto p = parsed("http://hub.test:8000/");
    CHECK(p.scheme == "http");
    CHECK(p.port == 8000);
    CHECK(p.hubOrigin() == "http://hub.test:8000");
    CHECK(p.userOrigin("bob") == "http://bob.hub.test:8000");

    // As JupyterHub: no scheme means https; a default port is not written.
    CHECK(parsed("hub.example.org").hubOrigin() == "https://hub.example.org");
    CHECK(parsed("https://hub.example.org:443").hubOrigin() == "https://hub.example.org");
}

TEST_CASE("subdomain_host: what cannot work is refused with the reason") {
    CHECK(refusal("https://hub.example.org/jhub/").find("path") != std::string::npos);
    CHECK(refusal("https://hub.example.org?x=1").find("query") != std::string::npos);
    CHECK(refusal("ftp://hub.example.org").find("scheme") != std::string::npos);
    CHECK(refusal("https://127.0.0.1").find("IP address") != std::string::npos);
    CHECK(refusal("https://[::1]:8000").find("IP address") != std::string::npos);
    CHECK(refusal("https://localhost").find("single label") != std::string::npos);
    CHECK(refusal("https://u@hub.example.org").find("user name") != std::string::npos);
    CHECK(refusal("https://hub.example.org:0").find("port") != std::string::npos);
    CHECK(refusal("https://hub.example.org:99999").find("port") != std::string::npos);
    CHECK(refusal("https://hub..example.org").find("not a valid host name") != std::string::npos);
    CHECK(refusal("https://-hub.example.org").find("not a valid host name") != std::string::npos);
    CHECK(refusal("").find("no host name") != std::string::npos);
}

TEST_CASE("dnsLabel is JupyterHub 3.0's _dns_quote") {
    // Expected values computed with jupyterhub.user._dns_quote.
    CHECK(dnsLabel("alice") == "alice");
    CHECK(dnsLabel("Alice") == "alice");
    CHECK(dnsLabel("a_b") == "a_5fb");
    CHECK(dnsLabel("jo@example") == "jo_40example");
    CHECK(dnsLabel("a~b") == "a_7eb");
    CHECK(dnsLabel("a b") == "a_20b");
    CHECK(dnsLabel("x-1.y") == "x-1.y");
    CHECK(dnsLabel("Ä") == "_c3_84");
    CHECK(dnsLabel("%") == "_25");
}

TEST_CASE("labels that cannot be one host are refused with a sentence") {
    auto h = parsed("https://hub.example.org");
    CHECK_FALSE(labelProblem("alice", "alice", h));
    CHECK_FALSE(labelProblem("a_b", "a_5fb", h));
    auto dotted = labelProblem("john.smith", "john.smith", h);
    REQUIRE(dotted);
    CHECK(dotted->find("user 'smith'") != std::string::npos);
    CHECK(dotted->find("*.hub.example.org") != std::string::npos);
    CHECK(labelProblem("x", std::string(64, 'a'), h));
    CHECK_FALSE(labelProblem("x", std::string(63, 'a'), h));
    CHECK(labelProblem("x", "-x", h));
    CHECK(labelProblem("x", "x-", h));
    CHECK(labelProblem("", "", h));
}

TEST_CASE("classifyHost: the hub's host, exactly one label under it, or neither") {
    auto h = parsed("https://hub.example.org");
    CHECK(classifyHost("hub.example.org", h).kind == HostMatch::Kind::Hub);
    CHECK(classifyHost("HUB.example.ORG:8443", h).kind == HostMatch::Kind::Hub);
    auto alice = classifyHost("Alice.hub.example.org:443", h);
    CHECK(alice.kind == HostMatch::Kind::User);
    CHECK(alice.label == "alice");
    CHECK(classifyHost("a_5fb.hub.example.org", h).label == "a_5fb");
    // Look-alikes are not user hosts.
    CHECK(classifyHost("alice.hub.example.org.evil.test", h).kind == HostMatch::Kind::Other);
    CHECK(classifyHost("alicehub.example.org", h).kind == HostMatch::Kind::Other);
    CHECK(classifyHost("x.alice.hub.example.org", h).kind == HostMatch::Kind::Other);
    CHECK(classifyHost(".hub.example.org", h).kind == HostMatch::Kind::Other);
    CHECK(classifyHost("al%69ce.hub.example.org", h).kind == HostMatch::Kind::Other);
    CHECK(classifyHost("127.0.0.1:8000", h).kind == HostMatch::Kind::Other);
    CHECK(classifyHost("[::1]:8000", h).kind == HostMatch::Kind::Other);
    CHECK(classifyHost("", h).kind == HostMatch::Kind::Other);
    CHECK(classifyHost(std::string(64, 'a') + ".hub.example.org", h).kind == HostMatch::Kind::Other);
}
