// SPDX-License-Identifier: BSD-3-Clause
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "hubcore/cidr.h"

namespace {

hub::IpNetworkList listOf(const std::vector<std::string>& entries) {
    std::string why;
    auto list = hub::IpNetworkList::parse(entries, why);
    INFO(why);
    REQUIRE(list);
    return *list;
}

std::string whyRejected(const std::string& entry) {
    std::string why;
    CHECK_FALSE(hub::parseIpNetwork(entry, why));
    return why;
}

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

TEST_CASE("addresses: IPv4 and IPv6, v4-mapped IPv6 is IPv4") {
    auto v4 = hub::parseIpAddress("127.0.0.1");
    REQUIRE(v4);
    CHECK_FALSE(v4->v6);
    CHECK(v4->bits() == 32);
    auto mapped = hub::parseIpAddress("::ffff:127.0.0.1");
    REQUIRE(mapped);
    CHECK(*mapped == *v4);
    CHECK(hub::parseIpAddress("::FFFF:7f00:1") == v4);
    auto v6 = hub::parseIpAddress("::1");
    REQUIRE(v6);
    CHECK(v6->v6);
    CHECK(v6->bits() == 128);
    // ::127.0.0.1 (deprecated v4-compatible) is an IPv6 address, not 127.0.0.1.
    CHECK(hub::parseIpAddress("::127.0.0.1")->v6);
}

TEST_CASE("hostile and ambiguous address text is refused") {
    for (const char* bad :
         {"",          " 127.0.0.1",       "127.0.0.1 ", "127.0.0.1\n",  "127.0.0.01", "010.0.0.1",
          "127.1",     "127.0.0",          "127.0.0.1.", "256.0.0.1",    "1.2.3.4.5",  "0x7f.0.0.1",
          "localhost", "::1%lo",           "[::1]",      "fe80::1%eth0", ":::",        "1::2::3",
          "12345::",   "::ffff:1.2.3.256", "unknown",    "-1.0.0.0",     "+1.0.0.0",   "1.2.3.4/32"}) {
        CAPTURE(bad);
        CHECK_FALSE(hub::parseIpAddress(bad));
    }
    CHECK_FALSE(hub::parseIpAddress(std::string("127.0.0.1\0junk", 14)));
    CHECK_FALSE(hub::parseIpAddress(std::string(100, '1')));
    CHECK_FALSE(hub::parseIpAddress(std::string(1 << 16, ':')));
    CHECK_FALSE(hub::parseIpAddress("\xff\xfe"));
}

TEST_CASE("a single address is a /32 or /128 network") {
    auto list = listOf({"127.0.0.1", "::1"});
    CHECK(list.contains("127.0.0.1"));
    CHECK(list.contains("::ffff:127.0.0.1"));  // a dual-stack socket's IPv4 peer
    CHECK(list.contains("::1"));
    CHECK(list.contains("0:0:0:0:0:0:0:1"));
    CHECK_FALSE(list.contains("127.0.0.2"));
    CHECK_FALSE(list.contains("::2"));
    CHECK_FALSE(list.contains("::ffff:127.0.0.2"));
    auto explicitLengths = listOf({"192.0.2.7/32", "2001:db8::7/128"});
    CHECK(explicitLengths.contains("192.0.2.7"));
    CHECK_FALSE(explicitLengths.contains("192.0.2.6"));
    CHECK(explicitLengths.contains("2001:db8::7"));
    CHECK_FALSE(explicitLengths.contains("2001:db8::6"));
}

TEST_CASE("CIDR networks, boundaries included") {
    auto list = listOf({"10.0.0.0/8", "172.16.0.0/12", "192.168.1.128/25", "fd00::/8"});
    CHECK(list.contains("10.0.0.0"));
    CHECK(list.contains("10.255.255.255"));
    CHECK_FALSE(list.contains("11.0.0.0"));
    CHECK_FALSE(list.contains("9.255.255.255"));
    CHECK(list.contains("172.31.255.255"));
    CHECK_FALSE(list.contains("172.32.0.0"));
    CHECK(list.contains("192.168.1.128"));
    CHECK(list.contains("192.168.1.255"));
    CHECK_FALSE(list.contains("192.168.1.127"));
    CHECK(list.contains("fd12:3456::1"));
    CHECK(list.contains("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    CHECK_FALSE(list.contains("fc00::1"));
    CHECK_FALSE(list.contains("fe00::"));
    CHECK(list.contains("::ffff:10.1.2.3"));
    CHECK_FALSE(list.contains("not an address"));
    CHECK_FALSE(list.contains(""));
}

TEST_CASE("/0 is everything of its own family only") {
    auto v4all = listOf({"0.0.0.0/0"});
    CHECK(v4all.contains("1.2.3.4"));
    CHECK(v4all.contains("255.255.255.255"));
    CHECK(v4all.contains("::ffff:8.8.8.8"));
    CHECK_FALSE(v4all.contains("::1"));
    auto v6all = listOf({"::/0"});
    CHECK(v6all.contains("2001:db8::1"));
    CHECK(v6all.contains("::"));
    CHECK_FALSE(v6all.contains("127.0.0.1"));
    CHECK_FALSE(v6all.contains("::ffff:127.0.0.1"));
}

TEST_CASE("v4-mapped networks are IPv4 networks") {
    auto list = listOf({"::ffff:10.0.0.0/104"});
    CHECK(list.contains("10.9.8.7"));
    CHECK(list.contains("::ffff:10.9.8.7"));
    CHECK_FALSE(list.contains("11.0.0.0"));
    CHECK(listOf({"::ffff:0.0.0.0/96"}).contains("203.0.113.1"));
    CHECK(contains(whyRejected("::ffff:0.0.0.0/80"), "at least 96"));
}

TEST_CASE("an empty list contains nothing") {
    hub::IpNetworkList none;
    CHECK(none.empty());
    CHECK_FALSE(none.contains("127.0.0.1"));
    CHECK_FALSE(listOf({}).contains("::1"));
}

TEST_CASE("bad entries are refused with the fix") {
    CHECK(contains(whyRejected("10.0.0.1/8"), "write 10.0.0.0/8"));
    CHECK(contains(whyRejected("fd00::1/8"), "write fd00::/8"));
    CHECK(contains(whyRejected("1.2.3.4/0"), "write 0.0.0.0/0"));
    CHECK(contains(whyRejected("10.0.0.0/33"), "from 0 to 32"));
    CHECK(contains(whyRejected("::/129"), "from 0 to 128"));
    for (const char* bad : {"10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8", "10.0.0.0/0x8",
                            "10.0.0.0/ 8", "10.0.0.0/0008", "10.0.0.0/99999999999999999999"})
        CHECK_MESSAGE(contains(whyRejected(bad), "prefix length"), bad);
    for (const char* bad :
         {"", "/8", "localhost", "example.org/24", "*", "10.0.0.*", "fe80::1%eth0/64", "127.0.0.1 ", "10/8"})
        CHECK_MESSAGE(contains(whyRejected(bad), "not an IPv4 or IPv6 address"), bad);

    std::string why;
    CHECK_FALSE(hub::IpNetworkList::parse({"127.0.0.1", "10.0.0.1/8"}, why));
    CHECK(contains(why, "'10.0.0.1/8' is not an IP address or CIDR network"));
    CHECK(contains(why, "write 10.0.0.0/8"));
    // The entry is quoted safely: control bytes escaped, long text cut.
    CHECK_FALSE(hub::IpNetworkList::parse({"evil\n[I fake log line]" + std::string(500, 'x')}, why));
    CHECK_FALSE(contains(why, "\n"));
    CHECK(why.size() < 400);
}
