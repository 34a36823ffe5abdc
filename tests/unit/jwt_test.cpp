// SPDX-License-Identifier: BSD-3-Clause
// ID-token checks (app/jwt.h) and the OAuth helpers (app/oidc.h), with keys
// made here by OpenSSL: every refusal a relying party owes is one case.
#include <doctest/doctest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>

#include "app/jwt.h"
#include "app/oidc.h"

using namespace hubd;
using namespace hubd::jwt;

namespace {

using Key = std::shared_ptr<EVP_PKEY>;

Key rsaKey(int bits = 2048) {
    return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)), EVP_PKEY_free);
}
Key ecKey() {
    return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
}

std::string bnParam(EVP_PKEY* k, const char* name, int pad = 0) {
    BIGNUM* bn = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(k, name, &bn) == 1);
    std::string out(static_cast<size_t>(pad ? pad : BN_num_bytes(bn)), '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
    BN_free(bn);
    return base64UrlEncode(out);
}

std::string rsaJwk(EVP_PKEY* k, const std::string& kid) {
    return R"({"kty":"RSA","use":"sig","kid":")" + kid + R"(","n":")" + bnParam(k, OSSL_PKEY_PARAM_RSA_N) +
           R"(","e":")" + bnParam(k, OSSL_PKEY_PARAM_RSA_E) + R"("})";
}

std::string ecJwk(EVP_PKEY* k, const std::string& kid) {
    return R"({"kty":"EC","crv":"P-256","kid":")" + kid + R"(","x":")" +
           bnParam(k, OSSL_PKEY_PARAM_EC_PUB_X, 32) + R"(","y":")" +
           bnParam(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32) + R"("})";
}

KeySet keySet(const std::string& keysJson) {
    auto doc = parseJson(R"({"keys":[)" + keysJson + "]}");
    REQUIRE(doc);
    std::string error;
    auto set = KeySet::parse(*doc, &error);
    REQUIRE_MESSAGE(set, error);
    return *set;
}

std::string sign(EVP_PKEY* k, const std::string& alg, const std::string& input) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    REQUIRE(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, k) == 1);
    REQUIRE(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()) == 1);
    std::string sig(len, '\0');
    REQUIRE(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
    EVP_MD_CTX_free(ctx);
    sig.resize(len);
    if (alg != "ES256") return sig;
    // DER to JOSE's r || s.
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    REQUIRE(es);
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(es);
    return raw;
}

constexpr int64_t kNow = 1'900'000'000;

std::string claims(const std::string& extra = {}, int64_t exp = kNow + 300, int64_t iat = kNow) {
    return R"({"iss":"https://idp.example","sub":"u1","aud":"hub-client","nonce":"n-123","exp":)" +
           std::to_string(exp) + R"(,"iat":)" + std::to_string(iat) + extra + "}";
}

std::string token(EVP_PKEY* k, const std::string& alg, const std::string& kid, const std::string& payload) {
    std::string input = base64UrlEncode(R"({"alg":")" + alg + R"(","kid":")" + kid + R"(","typ":"JWT"})") +
                        "." + base64UrlEncode(payload);
    return input + "." + base64UrlEncode(sign(k, alg, input));
}

Expectations want() {
    Expectations e;
    e.issuer = "https://idp.example";
    e.audience = "hub-client";
    e.nonce = "n-123";
    e.now = kNow;
    return e;
}

}  // namespace

TEST_CASE("base64url is strict") {
    CHECK(base64UrlEncode("\xff\xfe\xfd") == "__79");
    CHECK(base64UrlDecode("__79") == std::string("\xff\xfe\xfd"));
    CHECK(base64UrlDecode("YQ") == std::string("a"));
    CHECK_FALSE(base64UrlDecode("YQ=="));  // padding is not JOSE
    CHECK_FALSE(base64UrlDecode("Y+"));    // standard alphabet
    CHECK_FALSE(base64UrlDecode("YR"));    // non-zero leftover bits: a second spelling of "a"
    CHECK_FALSE(base64UrlDecode("Y"));
}

TEST_CASE("RS256 and ES256 ID tokens verify and every claim is checked") {
    Key rsa = rsaKey(), ec = ecKey();
    KeySet keys = keySet(rsaJwk(rsa.get(), "r1") + "," + ecJwk(ec.get(), "e1"));
    CHECK(keys.size() == 2);

    auto good = verifyIdToken(token(rsa.get(), "RS256", "r1", claims()), keys, want());
    REQUIRE_MESSAGE(good, good.error);
    CHECK(good.claims.find("sub")->asString() == "u1");
    auto goodEc = verifyIdToken(token(ec.get(), "ES256", "e1", claims()), keys, want());
    REQUIRE_MESSAGE(goodEc, goodEc.error);

    SUBCASE("signature") {
        std::string t = token(rsa.get(), "RS256", "r1", claims());
        // Same header and signature, other claims: the signature no longer fits.
        std::string forged =
            t.substr(0, t.find('.') + 1) + base64UrlEncode(claims(R"(,"sub2":"x")")) + t.substr(t.rfind('.'));
        CHECK(verifyIdToken(forged, keys, want()).failure == Failure::Signature);
        // Signed by a key the provider never published, under a published kid.
        Key other = rsaKey();
        CHECK(verifyIdToken(token(other.get(), "RS256", "r1", claims()), keys, want()).failure ==
              Failure::Signature);
        Key otherEc = ecKey();
        CHECK(verifyIdToken(token(otherEc.get(), "ES256", "e1", claims()), keys, want()).failure ==
              Failure::Signature);
    }
    SUBCASE("alg none and HS256 with the public key as secret are refused") {
        std::string none =
            base64UrlEncode(R"({"alg":"none","kid":"r1"})") + "." + base64UrlEncode(claims()) + ".";
        CHECK(verifyIdToken(none, keys, want()).failure == Failure::Algorithm);
        std::string input =
            base64UrlEncode(R"({"alg":"HS256","kid":"r1"})") + "." + base64UrlEncode(claims());
        std::string secret = rsaJwk(rsa.get(), "r1");
        unsigned char mac[32];
        unsigned int len = 0;
        HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
             reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
        std::string hs = input + "." + base64UrlEncode(std::string(reinterpret_cast<char*>(mac), len));
        CHECK(verifyIdToken(hs, keys, want()).failure == Failure::Algorithm);
        // An RS256 key is not used for an ES256 token (and the reverse).
        CHECK(verifyIdToken(token(ec.get(), "ES256", "r1", claims()), keys, want()).failure ==
              Failure::UnknownKey);
    }
    SUBCASE("issuer") {
        auto e = want();
        e.issuer = "https://other.example";
        CHECK(verifyIdToken(token(rsa.get(), "RS256", "r1", claims()), keys, e).failure == Failure::Issuer);
    }
    SUBCASE("audience, as a string or an array with azp") {
        auto e = want();
        e.audience = "someone-else";
        CHECK(verifyIdToken(token(rsa.get(), "RS256", "r1", claims()), keys, e).failure == Failure::Audience);
        std::string several =
            R"({"iss":"https://idp.example","sub":"u1","aud":["x","hub-client"],"nonce":"n-123",)"
            R"("exp":)" +
            std::to_string(kNow + 60) + R"(,"iat":)" + std::to_string(kNow);
        CHECK(verifyIdToken(token(rsa.get(), "RS256", "r1", several + "}"), keys, want()).failure ==
              Failure::Audience);  // several audiences and no azp
        CHECK(verifyIdToken(token(rsa.get(), "RS256", "r1", several + R"(,"azp":"x"})"), keys, want())
                  .failure == Failure::Audience);
        CHECK(verifyIdToken(token(rsa.get(), "RS256", "r1", several + R"(,"azp":"hub-client"})"), keys,
                            want()));
    }
    SUBCASE("exp and iat, with leeway") {
        CHECK(verifyIdToken(token(rsa.get(), "RS256", "r1", claims({}, kNow - 61)), keys, want()).failure ==
              Failure::Expired);
        CHECK(verifyIdToken(token(rsa.get(), "RS256", "r1", claims({}, kNow - 30)), keys, want()));
        CHECK(verifyIdToken(token(rsa.get(), "RS256", "r1", claims({}, kNow + 900, kNow + 120)), keys, want())
                  .failure == Failure::IssuedLater);
    }
    SUBCASE("nonce") {
        auto e = want();
        e.nonce = "n-other";
        CHECK(verifyIdToken(token(rsa.get(), "RS256", "r1", claims()), keys, e).failure == Failure::Nonce);
        std::string noNonce = R"({"iss":"https://idp.example","sub":"u1","aud":"hub-client","exp":)" +
                              std::to_string(kNow + 60) + R"(,"iat":)" + std::to_string(kNow) + "}";
        CHECK(verifyIdToken(token(rsa.get(), "RS256", "r1", noNonce), keys, want()).failure ==
              Failure::Nonce);
    }
    SUBCASE("an unknown kid asks for the JWKS again") {
        CHECK(verifyIdToken(token(rsa.get(), "RS256", "r9", claims()), keys, want()).failure ==
              Failure::UnknownKey);
    }
    SUBCASE("malformed") {
        CHECK(verifyIdToken("a.b", keys, want()).failure == Failure::Malformed);
        CHECK(verifyIdToken("a.b.c.d", keys, want()).failure == Failure::Malformed);
        CHECK(verifyIdToken(std::string(70000, 'a'), keys, want()).failure == Failure::Malformed);
    }
}

TEST_CASE("JWKS: weak or unusable keys are skipped") {
    Key weak = rsaKey(1024);
    auto doc = parseJson(R"({"keys":[)" + rsaJwk(weak.get(), "w") + "]}");
    std::string error;
    CHECK_FALSE(KeySet::parse(*doc, &error));
    CHECK(error.find("2048") != std::string::npos);
    // A point that is not on P-256.
    auto offCurve =
        parseJson(R"({"keys":[{"kty":"EC","crv":"P-256","x":")" + base64UrlEncode(std::string(32, '\1')) +
                  R"(","y":")" + base64UrlEncode(std::string(32, '\2')) + R"("}]})");
    CHECK_FALSE(KeySet::parse(*offCurve, &error));
    auto oct = parseJson(R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})");
    CHECK_FALSE(KeySet::parse(*oct, &error));
    Key rsa = rsaKey();
    std::string encJwk = rsaJwk(rsa.get(), "e");
    encJwk.replace(encJwk.find("\"sig\""), 5, "\"enc\"");
    auto enc = parseJson(R"({"keys":[)" + encJwk + "]}");
    REQUIRE(enc);
    CHECK_FALSE(KeySet::parse(*enc, &error));
}

TEST_CASE("PKCE S256 follows RFC 7636 appendix B") {
    CHECK(pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") ==
          "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

TEST_CASE("claims by dotted path") {
    auto c = parseJson(R"({"realm_access":{"roles":["a"]},"https://x.example/groups":["b"]})");
    REQUIRE(findClaim(*c, "realm_access.roles"));
    CHECK(findClaim(*c, "realm_access.roles")->items().size() == 1);
    CHECK(findClaim(*c, "https://x.example/groups"));
    CHECK_FALSE(findClaim(*c, "realm_access.none"));
}

TEST_CASE("a pending sign-in's state is good once") {
    OAuthPending pending;
    OAuthPending::Entry e;
    e.binding = "b";
    std::string state = pending.add(e);
    REQUIRE(state.size() == 48);
    CHECK_FALSE(pending.take("not-a-state"));
    auto got = pending.take(state);
    REQUIRE(got);
    CHECK(got->binding == "b");
    CHECK_FALSE(pending.take(state));
}
