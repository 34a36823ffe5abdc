// SPDX-License-Identifier: BSD-3-Clause
// InternalCa: one certificate authority of internal TLS (JupyterHub.internal_ssl),
// kept as two files in a directory private to the hub user, and the leaf
// certificates it signs.
//
// MUST: the directory is 0700 and the files 0600, owned by the hub user;
// anything else is refused with the chmod that fixes it (a readable CA key
// lets its reader impersonate every server or the hub). A CA is created once
// and reused, so servers that outlive a hub restart still verify.
// MUST: every leaf has a fresh EC P-256 key, CN = its owner, SAN DNS:localhost
// and IP:127.0.0.1 plus the configured names, EKU serverAuth and clientAuth.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

typedef struct x509_st X509;  // as <openssl/types.h> declares them
typedef struct evp_pkey_st EVP_PKEY;

namespace hubd {

// Why internal TLS cannot start or sign: what() names the file and the fix.
class InternalCaError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct X509Free {
    void operator()(X509* x) const noexcept;
};
struct PkeyFree {
    void operator()(EVP_PKEY* k) const noexcept;
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

struct Leaf {
    X509Ptr cert;
    PkeyPtr key;
    std::string certPem, keyPem;
};

class InternalCa {
public:
    // Loads DIR/NAME-ca.crt and DIR/NAME-ca.key, or creates both (and DIR)
    // when neither exists. `created` tells which. Throws InternalCaError.
    static InternalCa openOrCreate(const std::string& dir, const std::string& name, bool& created);

    // A leaf for `commonName` (at most 64 bytes: X.509's limit), valid from a
    // few minutes ago for `validity`. `altNames` are "DNS:name" or "IP:address"
    // (hub::checkAltName). Throws InternalCaError.
    Leaf issue(std::string_view commonName, const std::vector<std::string>& altNames,
               std::chrono::hours validity) const;

    X509* cert() const { return cert_.get(); }
    const std::string& certPem() const { return certPem_; }

private:
    X509Ptr cert_;
    PkeyPtr key_;
    std::string certPem_;
};

}  // namespace hubd
