// SPDX-License-Identifier: BSD-3-Clause
// JSON Web Tokens as an OpenID Connect client needs them: a provider's key
// set (JWKS, RFC 7517) and the check of an ID token (RFC 7519, OpenID
// Connect Core 3.1.3.7).
//
// Only RS256 and ES256 are accepted, each only with a key of its own kind:
// "alg":"none", HS256 (which would take a public key as an HMAC secret) and
// every other algorithm are refused before any key is looked at.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/json.h"

typedef struct evp_pkey_st EVP_PKEY;  // as <openssl/types.h> declares it

namespace hubd::jwt {

std::string base64UrlEncode(std::string_view bytes);
// Unpadded base64url (RFC 7515 2); nullopt for anything else.
std::optional<std::string> base64UrlDecode(std::string_view text);

struct Jwk {
    std::string kid;  // may be empty
    std::string alg;  // "RS256" or "ES256": what this key may verify
    std::shared_ptr<EVP_PKEY> key;
};

// The usable signing keys of a JWKS document. Keys hubd cannot use
// (encryption keys, other curves, RSA under 2048 bits) are skipped.
class KeySet {
public:
    static std::optional<KeySet> parse(const Json& jwks, std::string* error);
    // The key for a token's header: by kid when the token names one,
    // else the only key for that algorithm.
    const Jwk* find(std::string_view kid, std::string_view alg) const;
    size_t size() const { return keys_.size(); }

private:
    std::vector<Jwk> keys_;
};

// What the relying party expects of an ID token.
struct Expectations {
    std::string issuer;    // exact match with "iss"
    std::string audience;  // the client_id: in "aud"; "azp" must equal it when "aud" has several
    std::string nonce;     // exact match with "nonce"; empty = the token must carry none
    int64_t now = 0;       // seconds since the epoch
    int64_t leeway = 60;   // clock skew allowed on exp and iat
};

enum class Failure {
    None,
    Malformed,    // not three base64url parts of JSON
    Algorithm,    // alg none, HS*, or anything but RS256/ES256
    UnknownKey,   // no key with this kid: fetch the JWKS again, once
    Signature,    // the signature does not verify
    Issuer,       // iss
    Audience,     // aud / azp
    Expired,      // exp (or missing)
    IssuedLater,  // iat in the future (or missing)
    Nonce,        // nonce
};
std::string_view failureName(Failure f);  // "signature", "audience", ... for logs and tests

struct Verified {
    Failure failure = Failure::None;
    std::string error;  // a sentence for the log; never contains the token
    Json claims;        // set when failure == None
    explicit operator bool() const { return failure == Failure::None; }
};

// Checks the signature with `keys`, then the claims against `want`.
Verified verifyIdToken(std::string_view token, const KeySet& keys, const Expectations& want);

}  // namespace hubd::jwt
