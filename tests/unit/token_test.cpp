// SPDX-License-Identifier: BSD-3-Clause
// Tests for hubcore/token.h; digests are known answers computed with Python's hashlib.

#include <doctest/doctest.h>

#include <cctype>
#include <set>
#include <stdexcept>
#include <string>

#include "hubcore/token.h"

using namespace hub;

namespace {
bool allLowerHex(const std::string& s) {
    return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// python3 -c "import hashlib; print(hashlib.sha512(b'1d23bed0f972dee0'+b'tok'*1).hexdigest())"
const std::string kTok1 =
    "734eb4dddcb629e5e274b7c1ad37fbbb1c96ad39e8696d9ad8fdfcab700b79c391b0a4fcdec8891891d4f9054596eae6dcc23219"
    "214ec2"
    "59989d39b249278791";
// ... b'tok'*16384
const std::string kTok16384 =
    "94bb1e1b6dc835cea78e59720e0a9640d39924bc4bb7660ae70598299321608643d86c9d5f3eb8681bef68e848e9b0fd80e0d09e"
    "096c7f"
    "b98faffc858002a91c";
// sha512(b'a0b1c2d3e4f5a6b7' + b'0123456789abcdef0123456789abcdef'*16384): a 32-char token spans chunk edges.
const std::string kHex16384 =
    "81c0b3cdabffd2e5d8ca0ffd30d384bc9d55c6af8c16a2d420a851313240b9875ae99c2a4e7cbb6c9f78b46c7356e8a1a4ecf30c"
    "46a517"
    "d5e72ea2ef40630878";
// ... *3
const std::string kHex3 =
    "e11831c3b1f4551d575d9ba5eb36b83ccec1118f547b23314e0b334e0650cef43629fe61caa1d780640923080dc54f6a819da0b3"
    "70e080"
    "a364f0aae138384678";
// sha512(b'a0b1c2d3e4f5a6b7'): the empty token.
const std::string kEmpty =
    "f9830d3ac6858b189ffe80a4530abffe0aa20ef13b9fc1b640e9218daaacada046a44619de886d2df1ea68cfb6c02d1f7c4fad83"
    "bd5182"
    "f0f2f8991ad9d39a55";
const std::string kHexToken = "0123456789abcdef0123456789abcdef";
}  // namespace

TEST_CASE("generateToken and randomHex") {
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
        const std::string t = generateToken();
        CHECK(t.size() == 32);
        CHECK(allLowerHex(t));
        seen.insert(t);
    }
    CHECK(seen.size() == 200);
    CHECK(randomHex(0).empty());
    CHECK(randomHex(8).size() == 16);
    CHECK(allLowerHex(randomHex(64)));
    CHECK(randomHex(16) != randomHex(16));
}

TEST_CASE("hashToken known answers (JupyterHub 3.0 format)") {
    CHECK(hashToken("tok", 1, "1d23bed0f972dee0") == "sha512:1:1d23bed0f972dee0:" + kTok1);
    CHECK(hashToken("tok", 16384, "1d23bed0f972dee0") == "sha512:16384:1d23bed0f972dee0:" + kTok16384);
    CHECK(hashToken(kHexToken, 16384, "a0b1c2d3e4f5a6b7") == "sha512:16384:a0b1c2d3e4f5a6b7:" + kHex16384);
    CHECK(hashToken(kHexToken, 3, "a0b1c2d3e4f5a6b7") == "sha512:3:a0b1c2d3e4f5a6b7:" + kHex3);
    CHECK(hashToken("", 5, "a0b1c2d3e4f5a6b7") == "sha512:5:a0b1c2d3e4f5a6b7:" + kEmpty);
    CHECK(verifyToken("tok", "sha512:1:1d23bed0f972dee0:" + kTok1));
    CHECK(verifyToken("tok", "sha512:16384:1d23bed0f972dee0:" + kTok16384));
    CHECK(verifyToken(kHexToken, "sha512:16384:a0b1c2d3e4f5a6b7:" + kHex16384));
}

TEST_CASE("hashToken with a random salt round-trips") {
    const std::string token = generateToken();
    const std::string h1 = hashToken(token, kGeneratedTokenRounds);
    const std::string h2 = hashToken(token, kGeneratedTokenRounds);
    CHECK(h1 != h2);  // fresh salt each time
    CHECK(h1.rfind("sha512:1:", 0) == 0);
    CHECK(h1.size() == 7 + 2 + 16 + 1 + 128);
    CHECK(verifyToken(token, h1));
    CHECK(verifyToken(token, h2));
    CHECK(h1.find(token) == std::string::npos);
    const std::string u = hashToken("user-chosen secret", kUserTokenRounds);
    CHECK(u.rfind("sha512:16384:", 0) == 0);
    CHECK(verifyToken("user-chosen secret", u));
    CHECK_FALSE(verifyToken("user-chosen secreT", u));
    CHECK_FALSE(verifyToken(token.substr(0, 31), h1));
    CHECK_FALSE(verifyToken(token + "0", h1));
}

TEST_CASE("hashToken refuses arguments verifyToken would reject") {
    CHECK_THROWS_AS(hashToken("t", 0, "1d23bed0f972dee0"), std::invalid_argument);
    CHECK_THROWS_AS(hashToken("t", -1), std::invalid_argument);
    CHECK_THROWS_AS(hashToken("t", 1'000'001), std::invalid_argument);
    CHECK_THROWS_AS(hashToken("t", 1, "1d23bed0f972dee"), std::invalid_argument);
    CHECK_THROWS_AS(hashToken("t", 1, "1D23BED0F972DEE0"), std::invalid_argument);
    CHECK_THROWS_AS(hashToken("t", 1, "1d23bed0:972dee0"), std::invalid_argument);
    CHECK_THROWS_AS(hashToken(std::string(1025, 'a'), 1), std::invalid_argument);
}

TEST_CASE("verifyToken rejects tampered and malformed hashes") {
    const std::string good = "sha512:1:1d23bed0f972dee0:" + kTok1;
    REQUIRE(verifyToken("tok", good));

    std::string flippedDigest = good;
    flippedDigest.back() = flippedDigest.back() == '1' ? '2' : '1';
    std::string flippedSalt = good;
    flippedSalt[9] = flippedSalt[9] == '1' ? '2' : '1';

    const std::string bad[] = {
        flippedDigest,
        flippedSalt,
        "sha512:2:1d23bed0f972dee0:" + kTok1,            // rounds changed
        "sha512:01:1d23bed0f972dee0:" + kTok1,           // leading zero
        "sha512:+1:1d23bed0f972dee0:" + kTok1,           // sign
        "sha512:0:1d23bed0f972dee0:" + kTok1,            // zero rounds
        "sha512:1000001:1d23bed0f972dee0:" + kTok1,      // over the bound
        "sha512:99999999999:1d23bed0f972dee0:" + kTok1,  // overflow attempt
        "sha512::1d23bed0f972dee0:" + kTok1,
        "sha256:1:1d23bed0f972dee0:" + kTok1,  // other algorithm
        "SHA512:1:1d23bed0f972dee0:" + kTok1,
        "sha512:1:1D23BED0F972DEE0:" + kTok1,  // salt case
        "sha512:1:1d23bed0f972dee:" + kTok1,   // short salt
        "sha512:1:1d23bed0f972dee0z:" + kTok1,
        "sha512:1:1d23bed0f972dee0:" + kTok1.substr(1),  // short digest
        "sha512:1:1d23bed0f972dee0:" + kTok1 + "0",      // long digest
        "sha512:1:1d23bed0f972dee0:" + kTok1 + ":",
        "sha512:1:1d23bed0f972dee0:" + std::string(128, 'g'),
        "sha512:1:1d23bed0f972dee0:",
        "sha512:1:1d23bed0f972dee0",
        "sha512:1",
        "sha512",
        "",
        "tok",
        ":::",
        std::string("sha512:1:1d23bed0f972dee0:") + kTok1.substr(0, 64) + std::string(1, '\0') +
            kTok1.substr(65),
    };
    for (const auto& h : bad) {
        CAPTURE(h);
        CHECK_FALSE(verifyToken("tok", h));
    }
    // Upper-case hex digest: hexdigest() is lower-case, so it is not accepted.
    std::string upperDigest = good;
    for (size_t i = 26; i < upperDigest.size(); ++i) upperDigest[i] = char(std::toupper(upperDigest[i]));
    CHECK_FALSE(verifyToken("tok", upperDigest));
    // An absurdly long presented token is refused without hashing it.
    CHECK_FALSE(verifyToken(std::string(1025, 'a'), good));
}

TEST_CASE("tokenPrefix and constantTimeEquals") {
    CHECK(tokenPrefix("0123456789abcdef") == "0123");
    CHECK(tokenPrefix("ab") == "ab");
    CHECK(tokenPrefix("") == "");
    CHECK(constantTimeEquals("", ""));
    CHECK(constantTimeEquals("abc", "abc"));
    CHECK_FALSE(constantTimeEquals("abc", "abd"));
    CHECK_FALSE(constantTimeEquals("abc", "abcd"));
    CHECK_FALSE(constantTimeEquals("", "a"));
    CHECK(constantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
    CHECK_FALSE(constantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}
