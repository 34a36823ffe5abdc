// SPDX-License-Identifier: BSD-3-Clause
// TlsContext: the public listener's certificate, key, protocol policy and
// stapled OCSP response (an OpenSSL SSL_CTX), reloadable on SIGHUP.
//
// MUST: TLS 1.2 and 1.3 only, forward-secret AEAD suites only, no
// compression, no renegotiation, no session tickets (docs/security-model.md
// says why). A reload never drops a connection: sessions keep the SSL_CTX
// they started with (OpenSSL counts its references) and only new handshakes
// see the new one; a failed reload keeps the old certificate.
#pragma once

#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "http/transport.h"

typedef struct ssl_ctx_st SSL_CTX;  // as <openssl/types.h> declares it

namespace hubd::http {

struct TlsSettings {
    std::string certFile;  // PEM: the certificate, then its chain (fullchain.pem); may hold the key too
    std::string keyFile;   // PEM private key (privkey.pem); "" = the key is in certFile
    std::string ocspFile;  // DER OCSP response to staple; "" = certFile + ".ocsp" when that exists
    bool allowWorldReadableKey = false;
};

// A problem that stops TLS from starting: what() names the file and the fix.
class TlsError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct SslCtxDeleter {
    void operator()(SSL_CTX* ctx) const noexcept;
};
using UniqueSslCtx = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// hubd's TLS policy (above) on a new context, for a server or a client.
// Throws TlsError. Internal TLS (internal_tls.h) builds on it too.
UniqueSslCtx newPolicyContext(bool server = true);

class TlsContext {
public:
    // A context built elsewhere (internal TLS: a certificate that lives in
    // memory only). reload() keeps it and says there is nothing to reload.
    TlsContext(UniqueSslCtx ctx, std::string summary);
    // Reads and checks the files. Throws TlsError; what is worth knowing but
    // does not stop hubd (a group-readable key, an expired certificate, no
    // OCSP response) is appended to `warnings`.
    explicit TlsContext(TlsSettings settings, std::vector<std::string>& warnings);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    // Reads the same files again (SIGHUP). On failure the current
    // certificate stays in use and `error` says why and what to do.
    bool reload(std::vector<std::string>& warnings, std::string& error);

    // A server-side session on `fd` with the current certificate; null if
    // OpenSSL cannot allocate one.
    UniqueSsl newSession(int fd) const;

    // "CN=hub.example.org, valid until 2026-05-01 12:00 UTC, OCSP stapled"
    const std::string& summary() const { return summary_; }
    const TlsSettings& settings() const { return settings_; }

private:
    TlsSettings settings_;
    UniqueSslCtx ctx_;
    std::string summary_;
};

}  // namespace hubd::http
