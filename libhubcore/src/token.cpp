// SPDX-License-Identifier: BSD-3-Clause
// API token generation and JupyterHub-3.0-compatible salted SHA-512 hashing.

#include "hubcore/token.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace hub {

namespace {

constexpr std::string_view kAlgorithm = "sha512";
constexpr size_t kSaltHexChars = 16;
constexpr size_t kDigestHexChars = 128;
// Verification cost is rounds × token length; both are bounded so that a
// damaged row or an absurd presented token cannot pin a CPU.
constexpr long kMaxRounds = 1'000'000;
constexpr size_t kMaxTokenLength = 1024;

constexpr char kHexDigits[] = "0123456789abcdef";

std::string toHex(const unsigned char* data, size_t n) {
    std::string out(2 * n, '\0');
    for (size_t i = 0; i < n; ++i) {
        out[2 * i] = kHexDigits[data[i] >> 4];
        out[2 * i + 1] = kHexDigits[data[i] & 0x0f];
    }
    return out;
}

bool isLowerHex(std::string_view s) {
    for (const char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

struct MdCtxFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// JupyterHub feeds the token `rounds` times into ONE hash object (it is not
// iterated hashing); chunking the repetitions only saves EVP call overhead.
std::string digestHex(std::string_view token, long rounds, std::string_view salt) {
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx{EVP_MD_CTX_new()};
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha512(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), salt.data(), salt.size()) != 1) {
        throw std::runtime_error("OpenSSL SHA-512 initialisation failed");
    }
    if (!token.empty()) {
        const long perChunk = std::max<long>(1, std::min<long>(rounds, long(8192 / token.size())));
        std::string chunk;
        chunk.reserve(size_t(perChunk) * token.size());
        for (long i = 0; i < perChunk; ++i) chunk.append(token);
        long left = rounds;
        while (left >= perChunk) {
            if (EVP_DigestUpdate(ctx.get(), chunk.data(), chunk.size()) != 1) {
                throw std::runtime_error("OpenSSL SHA-512 update failed");
            }
            left -= perChunk;
        }
        if (left > 0 && EVP_DigestUpdate(ctx.get(), chunk.data(), size_t(left) * token.size()) != 1) {
            throw std::runtime_error("OpenSSL SHA-512 update failed");
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx.get(), md, &len) != 1 || len * 2 != kDigestHexChars) {
        throw std::runtime_error("OpenSSL SHA-512 finalisation failed");
    }
    std::string hex = toHex(md, len);
    OPENSSL_cleanse(md, sizeof md);
    return hex;
}

// Strict decimal: no sign, no leading zero, within (0, kMaxRounds].
std::optional<long> parseRounds(std::string_view s) {
    if (s.empty() || s.size() > 7 || s[0] == '0') return std::nullopt;
    long v = 0;
    for (const char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    if (v > kMaxRounds) return std::nullopt;
    return v;
}

}  // namespace

std::string randomHex(size_t nBytes) {
    std::vector<unsigned char> buf(nBytes);
    if (nBytes > 0 && RAND_bytes(buf.data(), int(nBytes)) != 1) {
        throw std::runtime_error("OpenSSL RAND_bytes failed: the system random generator is unavailable");
    }
    std::string hex = toHex(buf.data(), buf.size());
    OPENSSL_cleanse(buf.data(), buf.size());
    return hex;
}

std::string generateToken() {
    return randomHex(16);
}

std::string hashToken(std::string_view token, int rounds) {
    return hashToken(token, rounds, randomHex(8));
}

std::string hashToken(std::string_view token, int rounds, std::string_view salt) {
    // Refusing here keeps every hash we produce acceptable to verifyToken().
    if (rounds < 1 || rounds > kMaxRounds) throw std::invalid_argument("hashToken: rounds out of range");
    if (salt.size() != kSaltHexChars || !isLowerHex(salt)) {
        throw std::invalid_argument("hashToken: salt must be 16 lowercase hex characters");
    }
    if (token.size() > kMaxTokenLength)
        throw std::invalid_argument("hashToken: token longer than 1024 bytes");
    std::string out;
    out.reserve(kAlgorithm.size() + 8 + 1 + salt.size() + 1 + kDigestHexChars);
    out.append(kAlgorithm).append(":").append(std::to_string(rounds)).append(":").append(salt).append(":");
    out.append(digestHex(token, rounds, salt));
    return out;
}

bool verifyToken(std::string_view token, std::string_view hashed) {
    if (token.size() > kMaxTokenLength) return false;
    const size_t c1 = hashed.find(':');
    if (c1 == std::string_view::npos || hashed.substr(0, c1) != kAlgorithm) return false;
    const size_t c2 = hashed.find(':', c1 + 1);
    if (c2 == std::string_view::npos) return false;
    const size_t c3 = hashed.find(':', c2 + 1);
    if (c3 == std::string_view::npos) return false;
    const auto rounds = parseRounds(hashed.substr(c1 + 1, c2 - c1 - 1));
    const std::string_view salt = hashed.substr(c2 + 1, c3 - c2 - 1);
    const std::string_view digest = hashed.substr(c3 + 1);
    if (!rounds || salt.size() != kSaltHexChars || !isLowerHex(salt) || digest.size() != kDigestHexChars ||
        !isLowerHex(digest)) {
        return false;
    }
    const std::string computed = digestHex(token, *rounds, salt);
    return CRYPTO_memcmp(computed.data(), digest.data(), kDigestHexChars) == 0;
}

std::string tokenPrefix(std::string_view token) {
    return std::string(token.substr(0, 4));
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
    // Only the length can leak, and every secret we compare has a public length.
    if (a.size() != b.size()) return false;
    if (a.empty()) return true;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace hub
