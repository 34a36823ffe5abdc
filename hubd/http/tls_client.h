// SPDX-License-Identifier: BSD-3-Clause
// TlsClientContext: hubd as a TLS client of single-user servers (internal
// TLS). It presents hubd's own certificate and accepts a server only if its
// certificate chains to one given CA AND names the expected peer: the
// subject CN must equal the user the connection is for, so a server of bob
// listening on a port alice's server used to have is refused.
#pragma once

#include <string_view>

#include "http/tls_context.h"
#include "http/transport.h"

typedef struct x509_st X509;  // as <openssl/types.h> declares them
typedef struct evp_pkey_st EVP_PKEY;

namespace hubd::http {

class TlsClientContext {
public:
    // `cert`/`key`: what hubd presents; `trusted`: the only CA whose servers
    // are accepted. References are taken; the caller keeps its own. Throws TlsError.
    TlsClientContext(X509* cert, EVP_PKEY* key, X509* trusted);
    ~TlsClientContext();
    TlsClientContext(const TlsClientContext&) = delete;
    TlsClientContext& operator=(const TlsClientContext&) = delete;

    // A client session on the connected (or connecting) socket `fd`; the
    // handshake happens in the first write or read, and fails unless the
    // server's certificate has exactly one CN, equal to `peerName`. Null if
    // OpenSSL cannot allocate one.
    UniqueSsl newSession(int fd, std::string_view peerName) const;

private:
    UniqueSslCtx ctx_;
};

// The subject's common name if there is exactly one (UTF-8), else "".
std::string certificateCommonName(X509* cert);

}  // namespace hubd::http
