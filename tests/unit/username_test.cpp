// SPDX-License-Identifier: BSD-3-Clause
// Tests for username normalisation and validation.
#include <doctest/doctest.h>

#include <string>

#include "hubcore/username.h"

using namespace std::string_literals;

TEST_CASE("ordinary names are valid") {
    for (const char* name :
         {"alice", "bob2", "a", "_svc", "jane.doe", "jane-doe", "jane_doe", "user@example.org", "x1.2-3_4@5"})
        CHECK_MESSAGE(!hub::validateUsername(name).has_value(), name);
}

TEST_CASE("letters of other scripts are valid") {
    for (const char* name : {"zoë", "josé", "дмитрий", "山田", "ελένη", "محمد", "नमस्ते", "x\xf0\x9d\x94\x98"})
        CHECK_MESSAGE(!hub::validateUsername(name).has_value(), name);
}

TEST_CASE("length is limited in bytes") {
    CHECK_FALSE(hub::validateUsername(std::string(255, 'a')).has_value());
    CHECK(hub::validateUsername(std::string(256, 'a')).has_value());
    CHECK(hub::validateUsername(std::string(10 * 1024, 'a')) == "username is longer than 255 bytes");
    // 128 two-byte letters: 128 characters but 256 bytes.
    std::string wide;
    for (int i = 0; i < 128; ++i) wide += "é";
    CHECK(hub::validateUsername(wide).has_value());
}

TEST_CASE("empty, dot names and leading dash are rejected") {
    CHECK(hub::validateUsername("") == "username is empty");
    CHECK(hub::validateUsername(".").has_value());
    CHECK(hub::validateUsername("..").has_value());
    CHECK(hub::validateUsername(".hidden").has_value());
    CHECK(hub::validateUsername("-u").has_value());
    CHECK(hub::validateUsername("--help").has_value());
    CHECK_FALSE(hub::validateUsername("a.").has_value());
    CHECK_FALSE(hub::validateUsername("a-").has_value());
}

TEST_CASE("control characters are rejected") {
    CHECK(hub::validateUsername("bob\n[I 2024] fake line") == "username contains a control character");
    CHECK(hub::validateUsername("bob\r") == "username contains a control character");
    CHECK(hub::validateUsername("bob\0evil"s) == "username contains a control character");
    CHECK(hub::validateUsername("\x1b[2J") == "username contains a control character");
    CHECK(hub::validateUsername("a\x7f") == "username contains a control character");
    CHECK(hub::validateUsername("a\xc2\x85") == "username contains a control character");  // U+0085 (C1)
    CHECK(hub::validateUsername("a\xc2\x9b") == "username contains a control character");  // U+009B CSI
}

TEST_CASE("path separators and whitespace are rejected") {
    CHECK(hub::validateUsername("a/b").has_value());
    CHECK(hub::validateUsername("../etc").has_value());
    CHECK(hub::validateUsername("a\\b").has_value());
    CHECK(hub::validateUsername("a b") == "username contains whitespace");
    CHECK(hub::validateUsername("a\tb").has_value());
    CHECK(hub::validateUsername("a\xc2\xa0"
                                "b") == "username contains whitespace");  // NBSP
    CHECK(hub::validateUsername("a\xe3\x80\x80"
                                "b") == "username contains whitespace");  // ideographic space
}

TEST_CASE("characters unsafe in URLs, shells and sudo are rejected") {
    for (char c : std::string("'\"`$;&|<>(){}[]?#%*!~,=+:^")) {
        std::string name = "a"s + c + "b";
        auto err = hub::validateUsername(name);
        REQUIRE_MESSAGE(err.has_value(), name);
        CHECK(*err == "username contains the character '"s + c + "'");
    }
    CHECK(hub::validateUsername("#1000").has_value());  // sudo -u '#uid'
}

TEST_CASE("invisible and bidi characters are rejected") {
    CHECK(hub::validateUsername("ad\xe2\x80\x8bmin").has_value());  // zero-width space
    CHECK(hub::validateUsername("a\xe2\x80\xae"
                                "b")
              .has_value());  // right-to-left override
    CHECK(hub::validateUsername("\xef\xbb\xbf"
                                "a")
              .has_value());                                    // BOM
    CHECK(hub::validateUsername("a\xef\xbf\xbf").has_value());  // U+FFFF noncharacter
}

TEST_CASE("invalid UTF-8 is rejected") {
    for (std::string bad :
         {"\xff"s, "a\x80"s, "\xc3"s, "\xc0\xaf"s /* overlong '/' */, "\xe0\x80\xaf"s,
          "\xed\xa0\x80"s /* surrogate */, "\xf4\x90\x80\x80"s /* > U+10FFFF */, "\xf8\x88\x80\x80\x80"s})
        CHECK(hub::validateUsername("x" + bad) == "username is not valid UTF-8");
}

TEST_CASE("normalizeUsername trims and lowercases") {
    CHECK(hub::normalizeUsername("  Alice\t\n") == "alice");
    CHECK(hub::normalizeUsername("BOB") == "bob");
    CHECK(hub::normalizeUsername("ZOË") == "zoë");
    CHECK(hub::normalizeUsername("ДМИТРИЙ") == "дмитрий");
    CHECK(hub::normalizeUsername("ΕΛΈΝΗ") == "ελένη");
    CHECK(hub::normalizeUsername("山田") == "山田");
    CHECK(hub::normalizeUsername("a b") == "a b");  // inner whitespace is kept, validate rejects it
    CHECK(hub::normalizeUsername("") == "");
    // Invalid bytes pass through unchanged so that validation sees them.
    CHECK(hub::normalizeUsername("A\xff") == "a\xff");
    CHECK(hub::validateUsername(hub::normalizeUsername("  Jane.Doe ")) == std::nullopt);
}
