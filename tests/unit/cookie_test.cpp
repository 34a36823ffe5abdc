// SPDX-License-Identifier: BSD-3-Clause
// Tests for signed cookies, the Cookie header parser, the codecs and the cookie secret file.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hubcore/cookie.h"

namespace fs = std::filesystem;

namespace {

const std::string kSecret = [] {
    std::string s;
    for (int i = 0; i < 32; ++i) s += static_cast<char>(i);
    return s;
}();
const std::string kName = "jupyterhub-hub-login";
const std::string kValue = "556c100520ce481d8d7c38d1b9b6e500";
constexpr int64_t kNow = 1700000000;

// Computed with python3's hmac/base64 modules when this test was written:
//   to_sign = b"|".join([b"2", f(b"0"), f(ts), f(name), f(b64encode(value)), b""])
//   to_sign + hmac.new(bytes(range(32)), to_sign, hashlib.sha256).hexdigest()
const std::string kKnownSigned =
    "2|1:0|10:1700000000|20:jupyterhub-hub-login|44:NTU2YzEwMDUyMGNlNDgxZDhkN2MzOGQxYjliNmU1MDA=|"
    "07a8a999355fb2623d1c0478ea6025cf3cc075f4a2bc2a10feadd256e76d2e36";

// A fresh directory per test case, removed afterwards.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "hubcore-cookie-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

void writeFile(const std::string& path, const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    REQUIRE(::chmod(path.c_str(), mode) == 0);
}

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

mode_t modeOf(const std::string& path) {
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

const std::string kHex64 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

}  // namespace

TEST_CASE("hmacSha256 matches RFC 4231 test case 2") {
    CHECK(hub::hexEncode(hub::hmacSha256("Jefe", "what do ya want for nothing?")) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK(hub::hmacSha256("", "").size() == 32);
}

TEST_CASE("base64 and hex codecs") {
    CHECK(hub::base64Encode("") == "");
    CHECK(hub::base64Encode("f") == "Zg==");
    CHECK(hub::base64Encode("fo") == "Zm8=");
    CHECK(hub::base64Encode("foo") == "Zm9v");
    CHECK(hub::base64Encode("\xff\xfe\xfd") == "//79");
    using namespace std::string_literals;
    for (const std::string& s : {""s, "f"s, "fo"s, "foo"s, "foob"s, "fooba"s, "foobar"s, "\0\xff\x10"s}) {
        CHECK(hub::base64Decode(hub::base64Encode(s)) == s);
        CHECK(hub::hexDecode(hub::hexEncode(s)) == s);
    }
    CHECK_FALSE(hub::base64Decode("Zg=").has_value());
    CHECK_FALSE(hub::base64Decode("Zg=a").has_value());
    CHECK_FALSE(hub::base64Decode("Z===").has_value());
    CHECK_FALSE(hub::base64Decode("Zh==").has_value());  // non-zero bits under the padding
    CHECK_FALSE(hub::base64Decode("Zm9v\n").has_value());
    CHECK_FALSE(hub::base64Decode("Zm-v").has_value());
    CHECK(hub::hexEncode("\x01\xab") == "01ab");
    CHECK(hub::hexDecode("01AB") == std::string("\x01\xab"));
    CHECK_FALSE(hub::hexDecode("abc").has_value());
    CHECK_FALSE(hub::hexDecode("zz").has_value());
    CHECK_FALSE(hub::hexDecode(" 01").has_value());
}

TEST_CASE("signCookie matches an independently computed value") {
    CHECK(hub::signCookie(kSecret, kName, kValue, kNow) == kKnownSigned);
    CHECK(hub::verifyCookie(kSecret, kName, kKnownSigned, kNow, 14) == kValue);
}

TEST_CASE("verifyCookie round trip, quoting and age") {
    std::string signedValue = hub::signCookie(kSecret, kName, "bob's id", kNow);
    CHECK(hub::verifyCookie(kSecret, kName, signedValue, kNow, 14) == "bob's id");
    CHECK(hub::verifyCookie(kSecret, kName, "\"" + signedValue + "\"", kNow, 14) == "bob's id");
    // Exactly max age is still valid (tornado: expired only if ts < now - max_age).
    CHECK(hub::verifyCookie(kSecret, kName, signedValue, kNow + 14 * 86400, 14).has_value());
    CHECK_FALSE(hub::verifyCookie(kSecret, kName, signedValue, kNow + 14 * 86400 + 1, 14).has_value());
    CHECK(hub::verifyCookie(kSecret, kName, hub::signCookie(kSecret, kName, "", kNow), kNow, 14) == "");
}

TEST_CASE("verifyCookie rejects tampering, wrong name, wrong secret and garbage") {
    std::string good = hub::signCookie(kSecret, kName, kValue, kNow);
    SUBCASE("wrong secret") {
        std::string other = kSecret;
        other[0] = 'x';
        CHECK_FALSE(hub::verifyCookie(other, kName, good, kNow, 14).has_value());
    }
    SUBCASE("wrong name") {
        CHECK_FALSE(hub::verifyCookie(kSecret, "jupyterhub-session-id", good, kNow, 14).has_value());
        std::string forged = hub::signCookie(kSecret, "other-cookie", kValue, kNow);
        CHECK_FALSE(hub::verifyCookie(kSecret, kName, forged, kNow, 14).has_value());
    }
    SUBCASE("every single-byte change is caught") {
        for (size_t i = 0; i < good.size(); ++i) {
            std::string bad = good;
            bad[i] = bad[i] == 'a' ? 'b' : 'a';
            CHECK_FALSE(hub::verifyCookie(kSecret, kName, bad, kNow, 14).has_value());
        }
    }
    SUBCASE("timestamp moved forward with the old signature") {
        std::string bad = good;
        bad.replace(bad.find("1700000000"), 10, "1900000000");
        CHECK_FALSE(hub::verifyCookie(kSecret, kName, bad, kNow, 14).has_value());
    }
    SUBCASE("uppercase signature") {
        std::string bad = good;
        size_t sig = bad.rfind('|') + 1;
        for (size_t i = sig; i < bad.size(); ++i) bad[i] = static_cast<char>(std::toupper(bad[i]));
        REQUIRE(bad != good);
        CHECK_FALSE(hub::verifyCookie(kSecret, kName, bad, kNow, 14).has_value());
    }
    SUBCASE("truncated and extended") {
        CHECK_FALSE(hub::verifyCookie(kSecret, kName, good.substr(0, good.size() - 1), kNow, 14).has_value());
        CHECK_FALSE(hub::verifyCookie(kSecret, kName, good + "0", kNow, 14).has_value());
        for (size_t n = 0; n < good.size(); n += 7)
            CHECK_FALSE(hub::verifyCookie(kSecret, kName, good.substr(0, n), kNow, 14).has_value());
    }
    SUBCASE("garbage") {
        for (const char* g : {"", "2", "2|", "2||||", "1|1:0|", "2|1:0|10:1700000000|", "\"", "\"\"",
                              "2|x:0|10:1700000000|20:jupyterhub-hub-login|4:YWJj|0000",
                              "2|-1:0|10:1700000000|20:jupyterhub-hub-login|4:YWJj|", "2|99999:0|",
                              "2|1:0|10:1700000000|20:jupyterhub-hub-login|4:YWJj|"})
            CHECK_FALSE(hub::verifyCookie(kSecret, kName, g, kNow, 14).has_value());
    }
    SUBCASE("valid signature over a non-digit timestamp") {
        // Build by hand: the signature is right, but the fields are not.
        std::string toSign = "2|1:0|10:17000000x0|20:jupyterhub-hub-login|4:YWJj|";
        std::string bad = toSign + hub::hexEncode(hub::hmacSha256(kSecret, toSign));
        CHECK_FALSE(hub::verifyCookie(kSecret, kName, bad, kNow, 14).has_value());
    }
    SUBCASE("oversize") {
        std::string big(5000, 'a');
        std::string signedBig = hub::signCookie(kSecret, kName, big, kNow);
        REQUIRE(signedBig.size() > 4096);
        CHECK_FALSE(hub::verifyCookie(kSecret, kName, signedBig, kNow, 14).has_value());
    }
}

TEST_CASE("parseCookieHeader") {
    auto pairs = hub::parseCookieHeader("a=b; c=\"d\";e = f ;; novalue; =x; g=h=i;  j=");
    REQUIRE(pairs.size() == 5);
    CHECK(pairs[0] == std::pair<std::string, std::string>{"a", "b"});
    CHECK(pairs[1] == std::pair<std::string, std::string>{"c", "d"});
    CHECK(pairs[2] == std::pair<std::string, std::string>{"e", "f"});
    CHECK(pairs[3] == std::pair<std::string, std::string>{"g", "h=i"});
    CHECK(pairs[4] == std::pair<std::string, std::string>{"j", ""});
    CHECK(hub::parseCookieHeader("").empty());
    CHECK(hub::parseCookieHeader(";;;").empty());

    std::string quoted = "jupyterhub-hub-login=\"" + kKnownSigned + "\"; jupyterhub-session-id=abc";
    auto p = hub::parseCookieHeader(quoted);
    REQUIRE(p.size() == 2);
    CHECK(hub::verifyCookie(kSecret, kName, p[0].second, kNow, 14) == kValue);

    std::string many;
    for (int i = 0; i < 10000; ++i) many += "k=v;";
    CHECK(hub::parseCookieHeader(many).size() <= 256);
}

TEST_CASE("loadCookieSecret: configured and environment") {
    TempDir dir;
    std::string path = dir.file("jupyterhub_cookie_secret");
    std::string configured(32, 'k');
    auto r = hub::loadCookieSecret(configured, kHex64.c_str(), path);
    CHECK(r.error.empty());
    CHECK(r.secret == configured);
    CHECK_FALSE(fs::exists(path));

    r = hub::loadCookieSecret(std::nullopt, kHex64.c_str(), path);
    CHECK(r.error.empty());
    CHECK(r.secret == kSecret);
    CHECK_FALSE(r.generated);
    CHECK_FALSE(fs::exists(path));

    r = hub::loadCookieSecret(std::string(), ("  " + kHex64 + "\n").c_str(), path);
    CHECK(r.secret == kSecret);

    r = hub::loadCookieSecret(std::nullopt, "not hex at all", path);
    CHECK(r.secret.empty());
    CHECK(r.error.find("JPY_COOKIE_SECRET") != std::string::npos);
    CHECK(r.error.find("openssl rand -hex 32") != std::string::npos);
    CHECK_FALSE(fs::exists(path));

    r = hub::loadCookieSecret(std::nullopt, "abc", path);  // odd length
    CHECK_FALSE(r.error.empty());
    r = hub::loadCookieSecret(std::nullopt, "abcd", path);  // 2 bytes: too weak
    CHECK_FALSE(r.error.empty());
    r = hub::loadCookieSecret(std::string("short"), nullptr, path);
    CHECK_FALSE(r.error.empty());
}

TEST_CASE("loadCookieSecret: file generated, then read back") {
    TempDir dir;
    std::string path = dir.file("jupyterhub_cookie_secret");
    auto r = hub::loadCookieSecret(std::nullopt, nullptr, path);
    REQUIRE(r.error.empty());
    CHECK(r.generated);
    CHECK(r.secret.size() == 32);
    CHECK(modeOf(path) == 0600);
    std::string text = readFile(path);
    CHECK(text.size() == 65);
    CHECK(text.back() == '\n');
    CHECK(hub::hexDecode(text.substr(0, 64)) == r.secret);

    auto again = hub::loadCookieSecret(std::nullopt, "", path);  // empty env counts as unset
    REQUIRE(again.error.empty());
    CHECK_FALSE(again.generated);
    CHECK(again.secret == r.secret);

    // Surrounding whitespace and uppercase hex are tolerated.
    writeFile(
        path,
        "\n  " + std::string("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F") + " \n",
        0600);
    CHECK(hub::loadCookieSecret(std::nullopt, nullptr, path).secret == kSecret);

    // An empty file name keeps a generated secret in memory only.
    auto memory = hub::loadCookieSecret(std::nullopt, nullptr, "");
    CHECK(memory.generated);
    CHECK(memory.secret.size() == 32);
}

TEST_CASE("loadCookieSecret: unsafe or invalid files are refused") {
    TempDir dir;
    std::string path = dir.file("jupyterhub_cookie_secret");
    std::string abs = fs::absolute(path).string();

    SUBCASE("0644 gives the exact fix") {
        writeFile(path, kHex64 + "\n", 0644);
        auto r = hub::loadCookieSecret(std::nullopt, nullptr, path);
        CHECK(r.secret.empty());
        CHECK(r.error ==
              "cookie secret file " + abs + " is readable by other users (mode 0644): run chmod 600 " + abs);
    }
    SUBCASE("0640 and 0604 are refused too") {
        for (mode_t m : {0640, 0604, 0620, 0602}) {
            writeFile(path, kHex64 + "\n", m);
            auto r = hub::loadCookieSecret(std::nullopt, nullptr, path);
            CHECK(r.secret.empty());
            CHECK(r.error.find("run chmod 600 " + abs) != std::string::npos);
        }
    }
    SUBCASE("a symlink is refused and left alone") {
        std::string target = dir.file("elsewhere");
        writeFile(target, kHex64 + "\n", 0600);
        fs::create_symlink(target, path);
        auto r = hub::loadCookieSecret(std::nullopt, nullptr, path);
        CHECK(r.secret.empty());
        CHECK(r.error.find("symbolic link") != std::string::npos);
        CHECK(fs::is_symlink(path));
    }
    SUBCASE("a dangling symlink is not followed when creating") {
        std::string target = dir.file("planted");
        fs::create_symlink(target, path);
        auto r = hub::loadCookieSecret(std::nullopt, nullptr, path);
        CHECK(r.secret.empty());
        CHECK_FALSE(r.error.empty());
        CHECK_FALSE(fs::exists(target));
    }
    SUBCASE("a directory is refused") {
        fs::create_directory(path);
        ::chmod(path.c_str(), 0700);
        CHECK_FALSE(hub::loadCookieSecret(std::nullopt, nullptr, path).error.empty());
    }
    SUBCASE("wrong length or not hex") {
        for (std::string text :
             {std::string(""), std::string("abcd\n"), kHex64 + "00\n", std::string(64, 'g'),
              std::string("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")}) {
            writeFile(path, text, 0600);
            auto r = hub::loadCookieSecret(std::nullopt, nullptr, path);
            CHECK(r.secret.empty());
            CHECK(r.error.find("openssl rand -hex 32") != std::string::npos);
        }
    }
    SUBCASE("a huge file") {
        writeFile(path, std::string(100000, '0'), 0600);
        CHECK_FALSE(hub::loadCookieSecret(std::nullopt, nullptr, path).error.empty());
    }
    SUBCASE("an unwritable directory gives a sentence, not a crash") {
        if (::geteuid() != 0) {
            ::chmod(fs::path(path).parent_path().c_str(), 0500);
            auto r = hub::loadCookieSecret(std::nullopt, nullptr, path);
            CHECK(r.error.find("cannot create cookie secret file") != std::string::npos);
            ::chmod(fs::path(path).parent_path().c_str(), 0700);
        }
    }
}
