// SPDX-License-Identifier: BSD-3-Clause
// Tornado v2 signed cookies, the Cookie header parser and the cookie secret file.
#include "hubcore/cookie.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace hub {

namespace {

// A signed value larger than this is not something we issued; refusing it
// early bounds the work an attacker can make us do per request.
constexpr size_t kMaxSignedCookie = 4096;
// Nothing we issue has more fields than browsers tolerate; this only keeps a
// hostile header from turning into an unbounded vector.
constexpr size_t kMaxCookiePairs = 256;
constexpr size_t kSecretBytes = 32;
constexpr size_t kMaxSecretFile = 4096;

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }
    // close() reports delayed write errors (NFS), which matter for a new secret file.
    int release() {
        int rc = ::close(fd_);
        fd_ = -1;
        return rc;
    }

private:
    int fd_;
};

bool isAsciiSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trimAscii(std::string_view s) {
    while (!s.empty() && isAsciiSpace(s.front())) s.remove_prefix(1);
    while (!s.empty() && isAsciiSpace(s.back())) s.remove_suffix(1);
    return s;
}

std::string_view stripQuotes(std::string_view s) {
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
    return s;
}

// Parses a run of ASCII digits (no sign, no spaces: tornado is laxer, but we
// only have to read what tornado writes). Bounded so it cannot overflow.
std::optional<int64_t> parseDigits(std::string_view s, size_t maxDigits) {
    if (s.empty() || s.size() > maxDigits) return std::nullopt;
    int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    return v;
}

// One "<len>:<bytes>|" field of a v2 value; advances `rest` past the '|'.
std::optional<std::string_view> consumeField(std::string_view& rest) {
    size_t colon = rest.find(':');
    // 4 digits are enough for anything under kMaxSignedCookie.
    if (colon == std::string_view::npos || colon > 4) return std::nullopt;
    auto len = parseDigits(rest.substr(0, colon), 4);
    if (!len) return std::nullopt;
    std::string_view after = rest.substr(colon + 1);
    auto n = static_cast<size_t>(*len);
    if (n >= after.size() || after[n] != '|') return std::nullopt;
    std::string_view field = after.substr(0, n);
    rest = after.substr(n + 1);
    return field;
}

std::string formatField(std::string_view s) {
    return fmt::format("{}:{}", s.size(), s);
}

std::string absolutePath(const std::string& path) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec);
    return ec ? path : abs.string();
}

std::string errnoText(int err) {
    return std::error_code(err, std::generic_category()).message();
}

CookieSecretResult fail(std::string message) {
    CookieSecretResult r;
    r.error = std::move(message);
    return r;
}

// Reads an existing secret file. Returns nullopt when it does not exist.
std::optional<CookieSecretResult> readSecretFile(const std::string& path, const std::string& shown) {
    // O_NOFOLLOW: a symlink planted in a writable working directory must not
    // make us adopt (or later overwrite) someone else's file.
    Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (fd.get() < 0) {
        int err = errno;
        if (err == ENOENT) return std::nullopt;
        if (err == ELOOP)
            return fail(
                fmt::format("cookie secret file {} is a symbolic link: replace it with a regular "
                            "file of mode 0600, or delete it to have a new secret generated",
                            shown));
        return fail(
            fmt::format("cannot open cookie secret file {}: {}: check its owner and permissions "
                        "(it must be readable by the hub user and mode 0600)",
                        shown, errnoText(err)));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return fail(fmt::format("cannot stat cookie secret file {}: {}", shown, errnoText(errno)));
    if (!S_ISREG(st.st_mode))
        return fail(
            fmt::format("cookie secret file {} is not a regular file: replace it with a regular "
                        "file of mode 0600, or delete it to have a new secret generated",
                        shown));
    if ((st.st_mode & 077) != 0)
        return fail(
            fmt::format("cookie secret file {} is readable by other users (mode {:04o}): run chmod 600 {}",
                        shown, st.st_mode & 07777, shown));
    if (st.st_size > static_cast<off_t>(kMaxSecretFile))
        return fail(
            fmt::format("cookie secret file {} is too large ({} bytes): it must hold 64 hexadecimal "
                        "characters; delete it to have a new secret generated",
                        shown, st.st_size));

    std::string text;
    std::array<char, 512> buf{};
    for (;;) {
        ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail(fmt::format("cannot read cookie secret file {}: {}", shown, errnoText(errno)));
        }
        if (n == 0) break;
        text.append(buf.data(), static_cast<size_t>(n));
        if (text.size() > kMaxSecretFile)
            return fail(
                fmt::format("cookie secret file {} is too large: it must hold 64 hexadecimal "
                            "characters; delete it to have a new secret generated",
                            shown));
    }
    auto secret = hexDecode(trimAscii(text));
    OPENSSL_cleanse(text.data(), text.size());
    if (!secret || secret->size() != kSecretBytes)
        return fail(
            fmt::format("cookie secret file {} does not hold 64 hexadecimal characters: write one "
                        "with `openssl rand -hex 32 > {}` (mode 0600), or delete it to have a new "
                        "secret generated",
                        shown, shown));
    CookieSecretResult r;
    r.secret = std::move(*secret);
    return r;
}

enum class CreateOutcome { Created, Exists, Failed };

CreateOutcome createSecretFile(const std::string& path, const std::string& shown, const std::string& secret,
                               std::string& error) {
    // O_EXCL also refuses a dangling symlink, so the file we write is the one we created.
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600));
    if (fd.get() < 0) {
        if (errno == EEXIST) return CreateOutcome::Exists;
        error = fmt::format(
            "cannot create cookie secret file {}: {}: make its directory writable by the "
            "hub user, or set JPY_COOKIE_SECRET",
            shown, errnoText(errno));
        return CreateOutcome::Failed;
    }
    auto cleanup = [&](std::string message) {
        error = std::move(message);
        ::unlink(path.c_str());
        return CreateOutcome::Failed;
    };
    // The umask can only remove bits, but be explicit about the mode we rely on.
    if (::fchmod(fd.get(), 0600) != 0)
        return cleanup(
            fmt::format("cannot set mode 0600 on cookie secret file {}: {}", shown, errnoText(errno)));
    std::string text = hexEncode(secret) + "\n";
    std::string_view rest = text;
    while (!rest.empty()) {
        ssize_t n = ::write(fd.get(), rest.data(), rest.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            OPENSSL_cleanse(text.data(), text.size());
            return cleanup(fmt::format("cannot write cookie secret file {}: {}", shown, errnoText(err)));
        }
        rest.remove_prefix(static_cast<size_t>(n));
    }
    OPENSSL_cleanse(text.data(), text.size());
    // A secret lost in a crash would silently log everybody out on restart.
    if (::fsync(fd.get()) != 0 || fd.release() != 0)
        return cleanup(fmt::format("cannot write cookie secret file {}: {}", shown, errnoText(errno)));
    return CreateOutcome::Created;
}

constexpr std::string_view kB64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64Value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::string signCookie(std::string_view secret, std::string_view name, std::string_view value,
                       int64_t unixTime) {
    std::string toSign = "2|" + formatField("0") + "|" + formatField(std::to_string(unixTime)) + "|" +
                         formatField(name) + "|" + formatField(base64Encode(value)) + "|";
    return toSign + hexEncode(hmacSha256(secret, toSign));
}

std::optional<std::string> verifyCookie(std::string_view secret, std::string_view name,
                                        std::string_view signedValue, int64_t unixNow, double maxAgeDays) {
    std::string_view value = stripQuotes(signedValue);
    if (value.size() > kMaxSignedCookie || value.substr(0, 2) != "2|") return std::nullopt;
    std::string_view rest = value.substr(2);
    auto keyVersion = consumeField(rest);
    auto timestamp = keyVersion ? consumeField(rest) : std::nullopt;
    auto nameField = timestamp ? consumeField(rest) : std::nullopt;
    auto valueField = nameField ? consumeField(rest) : std::nullopt;
    if (!valueField || !parseDigits(*keyVersion, 4)) return std::nullopt;
    std::string_view passedSig = rest;
    if (passedSig.size() != 2 * 32) return std::nullopt;

    std::string expected;
    try {
        expected = hexEncode(hmacSha256(secret, value.substr(0, value.size() - passedSig.size())));
    } catch (const std::exception&) {
        return std::nullopt;
    }
    // Lowercase hex, as tornado writes it: an uppercase signature fails, as in tornado.
    if (CRYPTO_memcmp(expected.data(), passedSig.data(), expected.size()) != 0) return std::nullopt;
    if (*nameField != name) return std::nullopt;
    auto ts = parseDigits(*timestamp, 18);
    if (!ts) return std::nullopt;
    if (static_cast<double>(*ts) < static_cast<double>(unixNow) - maxAgeDays * 86400.0) return std::nullopt;
    return base64Decode(*valueField);
}

std::vector<std::pair<std::string, std::string>> parseCookieHeader(std::string_view header) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!header.empty() && out.size() < kMaxCookiePairs) {
        size_t semi = header.find(';');
        std::string_view chunk = header.substr(0, semi);
        header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
        size_t eq = chunk.find('=');
        // Nameless chunks ("a; b=c") carry nothing we could look up.
        if (eq == std::string_view::npos) continue;
        std::string_view key = trimAscii(chunk.substr(0, eq));
        if (key.empty()) continue;
        std::string_view val = stripQuotes(trimAscii(chunk.substr(eq + 1)));
        out.emplace_back(std::string(key), std::string(val));
    }
    return out;
}

CookieSecretResult loadCookieSecret(const std::optional<std::string>& configured, const char* envHex,
                                    const std::string& path) {
    // An empty value means "not set", as in JupyterHub (`if not secret`).
    if (configured && !configured->empty()) {
        if (configured->size() < kSecretBytes)
            return fail(
                fmt::format("JupyterHub.cookie_secret is {} bytes, shorter than {}: set it to the "
                            "output of `openssl rand -hex 32`",
                            configured->size(), kSecretBytes));
        CookieSecretResult r;
        r.secret = *configured;
        return r;
    }
    if (envHex && *envHex) {
        auto secret = hexDecode(trimAscii(envHex));
        if (!secret)
            return fail(
                "JPY_COOKIE_SECRET is not valid hexadecimal: set it to the output of "
                "`openssl rand -hex 32`, or unset it to use the cookie secret file");
        if (secret->size() < kSecretBytes)
            return fail(
                fmt::format("JPY_COOKIE_SECRET holds {} bytes, fewer than {}: set it to the output of "
                            "`openssl rand -hex 32`",
                            secret->size(), kSecretBytes));
        CookieSecretResult r;
        r.secret = std::move(*secret);
        return r;
    }

    std::string secret(kSecretBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), static_cast<int>(secret.size())) != 1)
        return fail("cannot generate a cookie secret: the OpenSSL random generator failed");
    if (path.empty()) {
        // JupyterHub keeps a generated secret in memory only when no file is configured.
        CookieSecretResult r;
        r.secret = std::move(secret);
        r.generated = true;
        return r;
    }

    std::string shown = absolutePath(path);
    // Two rounds: a concurrent hubd may create the file between our read and our create.
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (auto existing = readSecretFile(path, shown)) {
            OPENSSL_cleanse(secret.data(), secret.size());
            return *existing;
        }
        std::string error;
        switch (createSecretFile(path, shown, secret, error)) {
            case CreateOutcome::Created: {
                CookieSecretResult r;
                r.secret = std::move(secret);
                r.generated = true;
                return r;
            }
            case CreateOutcome::Failed:
                return fail(std::move(error));
            case CreateOutcome::Exists:
                break;
        }
    }
    return fail(
        fmt::format("cookie secret file {} keeps appearing and disappearing: check what else "
                    "writes to that directory",
                    shown));
}

std::string base64Encode(std::string_view data) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16 |
                     static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8 |
                     static_cast<unsigned char>(data[i + 2]);
        out += kB64Alphabet[v >> 18 & 63];
        out += kB64Alphabet[v >> 12 & 63];
        out += kB64Alphabet[v >> 6 & 63];
        out += kB64Alphabet[v & 63];
    }
    size_t left = data.size() - i;
    if (left > 0) {
        uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16;
        if (left == 2) v |= static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8;
        out += kB64Alphabet[v >> 18 & 63];
        out += kB64Alphabet[v >> 12 & 63];
        out += left == 2 ? kB64Alphabet[v >> 6 & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        bool last = i + 4 == text.size();
        int pad = 0;
        if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
        uint32_t v = 0;
        for (size_t j = 0; j < 4; ++j) {
            int d = 0;
            if (j < 4 - static_cast<size_t>(pad)) {
                d = b64Value(text[i + j]);
                if (d < 0) return std::nullopt;
            }
            v = v << 6 | static_cast<uint32_t>(d);
        }
        // Non-zero bits under the padding mean the text was not produced by an encoder.
        if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)) return std::nullopt;
        out += static_cast<char>(v >> 16 & 0xff);
        if (pad < 2) out += static_cast<char>(v >> 8 & 0xff);
        if (pad < 1) out += static_cast<char>(v & 0xff);
    }
    return out;
}

std::string hexEncode(std::string_view data) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(data.size() * 2);
    for (unsigned char c : data) {
        out += kDigits[c >> 4];
        out += kDigits[c & 15];
    }
    return out;
}

std::optional<std::string> hexDecode(std::string_view text) {
    if (text.size() % 2 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 2);
    for (size_t i = 0; i < text.size(); i += 2) {
        int hi = hexValue(text[i]);
        int lo = hexValue(text[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi << 4 | lo);
    }
    return out;
}

std::string hmacSha256(std::string_view key, std::string_view data) {
    // OpenSSL wants non-null pointers even for empty inputs.
    static const unsigned char kEmpty = 0;
    const void* keyPtr = key.empty() ? &kEmpty : static_cast<const void*>(key.data());
    const auto* dataPtr = data.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(data.data());
    std::string out(EVP_MAX_MD_SIZE, '\0');
    unsigned int outLen = 0;
    if (!HMAC(EVP_sha256(), keyPtr, static_cast<int>(key.size()), dataPtr, data.size(),
              reinterpret_cast<unsigned char*>(out.data()), &outLen))
        throw std::runtime_error("HMAC-SHA256 failed in OpenSSL");
    out.resize(outLen);
    return out;
}

}  // namespace hub
