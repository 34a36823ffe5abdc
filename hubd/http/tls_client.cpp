// SPDX-License-Identifier: BSD-3-Clause
// Client sessions for internal TLS: chain to one CA, then the peer's CN.
#include "http/tls_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include <fmt/format.h>

namespace hubd::http {

namespace {

void freeName(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<std::string*>(ptr);
}

// Where a session keeps the name its server must carry (freed with the SSL).
int peerNameIndex() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, freeName);
    return index;
}

// After OpenSSL's own chain check: the leaf must name the expected peer.
int verifyPeer(int preverified, X509_STORE_CTX* store) {
    if (!preverified) {
        int depth = X509_STORE_CTX_get_error_depth(store);
        fmt::print(stderr, "hubd: internal TLS: refused a server certificate (depth {}): {}\n", depth,
                   X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)));
        return 0;
    }
    if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
    auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    const auto* want = ssl ? static_cast<const std::string*>(SSL_get_ex_data(ssl, peerNameIndex())) : nullptr;
    std::string got = certificateCommonName(X509_STORE_CTX_get_current_cert(store));
    if (want && !want->empty() && got == *want) return 1;
    // Shown escaped: a CN is signed by our CA, but still bytes from a cert.
    std::string shown;
    for (unsigned char c : got.substr(0, 80)) shown += c >= 0x20 && c < 0x7f ? std::string(1, char(c)) : "?";
    fmt::print(stderr,
               "hubd: internal TLS: refused a server whose certificate is for '{}', not '{}': another "
               "server listens on that port\n",
               shown, want ? *want : std::string());
    X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
    return 0;
}

}  // namespace

std::string certificateCommonName(X509* cert) {
    X509_NAME* name = cert ? X509_get_subject_name(cert) : nullptr;
    if (!name) return {};
    int at = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (at < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, at) >= 0) return {};  // none or several
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at)));
    if (n < 0) return {};
    std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
    OPENSSL_free(utf8);
    if (out.find('\0') != std::string::npos) return {};
    return out;
}

TlsClientContext::TlsClientContext(X509* cert, EVP_PKEY* key, X509* trusted) : ctx_(newPolicyContext(false)) {
    SSL_CTX* c = ctx_.get();
    if (SSL_CTX_use_certificate(c, cert) != 1 || SSL_CTX_use_PrivateKey(c, key) != 1 ||
        SSL_CTX_check_private_key(c) != 1 || X509_STORE_add_cert(SSL_CTX_get_cert_store(c), trusted) != 1) {
        ERR_clear_error();
        throw TlsError(
            "cannot set up internal TLS for hubd's connections to servers (certificate, key or CA)");
    }
    // The CA signs servers directly: a chain is the leaf and the CA.
    SSL_CTX_set_verify_depth(c, 1);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, verifyPeer);
}

TlsClientContext::~TlsClientContext() = default;

UniqueSsl TlsClientContext::newSession(int fd, std::string_view peerName) const {
    UniqueSsl ssl(SSL_new(ctx_.get()));
    auto name = std::make_unique<std::string>(peerName);
    if (!ssl || SSL_set_fd(ssl.get(), fd) != 1 ||
        SSL_set_ex_data(ssl.get(), peerNameIndex(), name.get()) != 1) {
        ERR_clear_error();
        return nullptr;
    }
    name.release();  // freed with the session (freeName)
    SSL_set_connect_state(ssl.get());
    return ssl;
}

}  // namespace hubd::http
