// SPDX-License-Identifier: BSD-3-Clause
// JWKS keys to OpenSSL 3 EVP keys, and the ID-token check (jwt.h).
#include "app/jwt.h"

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <array>
#include <cmath>

namespace hubd::jwt {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr size_t kMaxToken = 64 * 1024;  // ID tokens are a few kB; a bigger one is not worth parsing
constexpr int kMinRsaBits = 2048;

int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

struct BnFree {
    void operator()(BIGNUM* b) const { BN_free(b); }
};
using UniqueBn = std::unique_ptr<BIGNUM, BnFree>;

std::shared_ptr<EVP_PKEY> fromParams(const char* type, OSSL_PARAM_BLD* bld) {
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
    if (!params) return nullptr;
    EVP_PKEY* pkey = nullptr;
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1) EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey ? std::shared_ptr<EVP_PKEY>(pkey, EVP_PKEY_free) : nullptr;
}

const std::string* stringMember(const Json& object, std::string_view key) {
    const Json* v = object.find(key);
    return v && v->isString() ? &v->asString() : nullptr;
}

std::shared_ptr<EVP_PKEY> rsaKey(const Json& jwk, std::string& why) {
    const std::string* n = stringMember(jwk, "n");
    const std::string* e = stringMember(jwk, "e");
    auto nb = n ? base64UrlDecode(*n) : std::nullopt;
    auto eb = e ? base64UrlDecode(*e) : std::nullopt;
    if (!nb || !eb || nb->empty() || eb->empty()) return why = "RSA key without valid n and e", nullptr;
    UniqueBn bn(
        BN_bin2bn(reinterpret_cast<const unsigned char*>(nb->data()), static_cast<int>(nb->size()), nullptr));
    UniqueBn be(
        BN_bin2bn(reinterpret_cast<const unsigned char*>(eb->data()), static_cast<int>(eb->size()), nullptr));
    if (!bn || !be) return why = "out of memory", nullptr;
    if (BN_num_bits(bn.get()) < kMinRsaBits) return why = "RSA key shorter than 2048 bits", nullptr;
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    std::shared_ptr<EVP_PKEY> key;
    if (bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn.get()) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be.get()) == 1)
        key = fromParams("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    if (!key) why = "OpenSSL refused the RSA key";
    return key;
}

std::shared_ptr<EVP_PKEY> ecKey(const Json& jwk, std::string& why) {
    const std::string* crv = stringMember(jwk, "crv");
    if (!crv || *crv != "P-256") return why = "EC key not on curve P-256", nullptr;
    const std::string* x = stringMember(jwk, "x");
    const std::string* y = stringMember(jwk, "y");
    auto xb = x ? base64UrlDecode(*x) : std::nullopt;
    auto yb = y ? base64UrlDecode(*y) : std::nullopt;
    if (!xb || !yb || xb->size() != 32 || yb->size() != 32)
        return why = "EC key without 32-byte x and y", nullptr;
    std::string point = "\x04" + *xb + *yb;  // uncompressed SEC1 point
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    std::shared_ptr<EVP_PKEY> key;
    char group[] = "prime256v1";
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1)
        key = fromParams("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    // EVP_PKEY_fromdata does not prove the point is on the curve; the check does.
    if (key) {
        EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr);
        const bool onCurve = ctx && EVP_PKEY_public_check(ctx) == 1;
        EVP_PKEY_CTX_free(ctx);
        if (!onCurve) key.reset();
    }
    if (!key) why = "OpenSSL refused the EC key (not a point on P-256)";
    return key;
}

// JOSE's ES256 signature is r || s, 32 bytes each; OpenSSL wants DER.
std::optional<std::string> es256ToDer(std::string_view raw) {
    if (raw.size() != 64) return std::nullopt;
    auto* u = reinterpret_cast<const unsigned char*>(raw.data());
    ECDSA_SIG* sig = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(u, 32, nullptr);
    BIGNUM* s = BN_bin2bn(u + 32, 32, nullptr);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r), BN_free(s), ECDSA_SIG_free(sig);
        return std::nullopt;
    }
    unsigned char* der = nullptr;
    int len = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    if (len <= 0) return std::nullopt;
    std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
    return out;
}

bool verifySignature(EVP_PKEY* key, std::string_view alg, std::string_view signedPart, std::string_view sig) {
    std::string der;
    if (alg == "ES256") {
        auto converted = es256ToDer(sig);
        if (!converted) return false;
        der = std::move(*converted);
        sig = der;
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool ok =
        ctx && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
        EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                         reinterpret_cast<const unsigned char*>(signedPart.data()), signedPart.size()) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

Verified fail(Failure f, std::string error) {
    Verified v;
    v.failure = f;
    v.error = std::move(error);
    return v;
}

std::optional<int64_t> numericDate(const Json& claims, std::string_view key) {
    const Json* v = claims.find(key);
    if (!v || !v->isNumber() || !std::isfinite(v->asNumber())) return std::nullopt;
    return static_cast<int64_t>(v->asNumber());
}

std::optional<Json> decodeJsonPart(std::string_view part) {
    auto bytes = base64UrlDecode(part);
    if (!bytes) return std::nullopt;
    auto json = parseJson(*bytes);
    if (!json || !json->isObject()) return std::nullopt;
    return json;
}

}  // namespace

std::string base64UrlEncode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() * 4 + 2) / 3);
    uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : bytes) {
        acc = (acc << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += kAlphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
    return out;
}

std::optional<std::string> base64UrlDecode(std::string_view text) {
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        int v = sextet(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    // Leftover bits must be zero: one text, one meaning.
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
    return out;
}

std::optional<KeySet> KeySet::parse(const Json& jwks, std::string* error) {
    const Json* keys = jwks.find("keys");
    if (!jwks.isObject() || !keys || !keys->isArray()) {
        if (error) *error = "the JWKS document has no \"keys\" array";
        return std::nullopt;
    }
    KeySet set;
    std::string skipped;
    for (const Json& k : keys->items()) {
        if (!k.isObject()) continue;
        const std::string* kty = stringMember(k, "kty");
        const std::string* use = stringMember(k, "use");
        const std::string* alg = stringMember(k, "alg");
        if (!kty || (use && *use != "sig")) continue;
        Jwk jwk;
        if (const std::string* kid = stringMember(k, "kid")) jwk.kid = *kid;
        std::string why;
        if (*kty == "RSA") {
            jwk.alg = "RS256";
            jwk.key = rsaKey(k, why);
        } else if (*kty == "EC") {
            jwk.alg = "ES256";
            jwk.key = ecKey(k, why);
        } else {
            continue;  // "oct" and the rest: nothing an ID token may be signed with here
        }
        // A key declared for another algorithm (PS256, RS512) is not used for RS256.
        if (alg && *alg != jwk.alg) continue;
        if (!jwk.key) {
            if (skipped.empty()) skipped = why;
            continue;
        }
        set.keys_.push_back(std::move(jwk));
    }
    if (set.keys_.empty()) {
        if (error)
            *error = "the JWKS document has no RS256 or ES256 signing key" +
                     (skipped.empty() ? std::string() : " (" + skipped + ")");
        return std::nullopt;
    }
    return set;
}

const Jwk* KeySet::find(std::string_view kid, std::string_view alg) const {
    const Jwk* only = nullptr;
    size_t count = 0;
    for (const Jwk& k : keys_) {
        if (k.alg != alg) continue;
        if (!kid.empty()) {
            if (k.kid == kid) return &k;
            continue;
        }
        only = &k;
        ++count;
    }
    return count == 1 ? only : nullptr;
}

std::string_view failureName(Failure f) {
    switch (f) {
        case Failure::None:
            return "none";
        case Failure::Malformed:
            return "malformed";
        case Failure::Algorithm:
            return "algorithm";
        case Failure::UnknownKey:
            return "unknown-key";
        case Failure::Signature:
            return "signature";
        case Failure::Issuer:
            return "issuer";
        case Failure::Audience:
            return "audience";
        case Failure::Expired:
            return "expired";
        case Failure::IssuedLater:
            return "issued-at";
        case Failure::Nonce:
            return "nonce";
    }
    return "unknown";
}

Verified verifyIdToken(std::string_view token, const KeySet& keys, const Expectations& want) {
    if (token.size() > kMaxToken) return fail(Failure::Malformed, "the ID token is larger than 64 kB");
    const size_t dot1 = token.find('.');
    const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
        return fail(Failure::Malformed, "the ID token is not a signed JWT (three dot-separated parts)");
    auto header = decodeJsonPart(token.substr(0, dot1));
    auto claims = decodeJsonPart(token.substr(dot1 + 1, dot2 - dot1 - 1));
    auto signature = base64UrlDecode(token.substr(dot2 + 1));
    if (!header || !claims || !signature)
        return fail(Failure::Malformed, "the ID token's parts are not base64url-encoded JSON objects");

    // The algorithm is decided here, never by the token: a token that says
    // "none" or HS256 is refused whatever keys exist.
    const std::string* alg = stringMember(*header, "alg");
    if (!alg || (*alg != "RS256" && *alg != "ES256"))
        return fail(Failure::Algorithm,
                    fmt::format("the ID token is signed with alg {}; only RS256 and ES256 "
                                "are accepted",
                                alg ? fmt::format("\"{}\"", alg->substr(0, 16)) : "(none)"));
    if (header->find("crit")) return fail(Failure::Malformed, "the ID token has critical header extensions");
    const std::string* kidp = stringMember(*header, "kid");
    const std::string kid = kidp ? *kidp : std::string();
    const Jwk* key = keys.find(kid, *alg);
    if (!key)
        return fail(Failure::UnknownKey, fmt::format("no {} key {} in the provider's JWKS", *alg,
                                                     kid.empty() ? std::string("(token names no kid)")
                                                                 : "'" + kid.substr(0, 64) + "'"));
    if (!verifySignature(key->key.get(), *alg, token.substr(0, dot2), *signature))
        return fail(Failure::Signature, "the ID token's signature does not verify with the provider's key");

    const std::string* iss = stringMember(*claims, "iss");
    if (!iss || *iss != want.issuer)
        return fail(Failure::Issuer, fmt::format("the ID token's issuer is not '{}'", want.issuer));
    const Json* aud = claims->find("aud");
    bool audOk = false;
    size_t audiences = 0;
    if (aud && aud->isString()) {
        audOk = aud->asString() == want.audience;
        audiences = 1;
    } else if (aud && aud->isArray()) {
        for (const Json& a : aud->items()) {
            ++audiences;
            audOk = audOk || (a.isString() && a.asString() == want.audience);
        }
    }
    if (!audOk) return fail(Failure::Audience, "the ID token is not meant for this client (aud)");
    const std::string* azp = stringMember(*claims, "azp");
    if ((audiences > 1 || azp) && (!azp || *azp != want.audience))
        return fail(Failure::Audience, "the ID token was issued to another party (azp)");
    auto exp = numericDate(*claims, "exp");
    if (!exp || *exp + want.leeway < want.now)
        return fail(Failure::Expired, "the ID token has expired (exp)");
    auto iat = numericDate(*claims, "iat");
    if (!iat || *iat - want.leeway > want.now)
        return fail(Failure::IssuedLater, "the ID token has no issue time or one in the future (iat)");
    const std::string* nonce = stringMember(*claims, "nonce");
    if (want.nonce.empty() ? nonce != nullptr : (!nonce || *nonce != want.nonce))
        return fail(Failure::Nonce, "the ID token's nonce is not the one this sign-in sent");
    Verified ok;
    ok.claims = std::move(*claims);
    return ok;
}

}  // namespace hubd::jwt
