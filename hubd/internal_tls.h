// SPDX-License-Identifier: BSD-3-Clause
// Internal TLS (JupyterHub.internal_ssl): every hop between hubd and a
// single-user server is mutually authenticated TLS. Two CAs under
// JupyterHub.internal_certs_location (docs/security-model.md, "Internal TLS"):
//
//   servers CA  signs one certificate per server start (CN = the user).
//               hubd accepts a server only with such a certificate naming
//               the user it proxies to; the hub API accepts it as a client.
//   hub CA      signs hubd's own certificate (made at every start, kept in
//               memory): hubd's client certificate towards servers and the
//               hub API's server certificate. It is the only CA a server
//               accepts clients from (JUPYTERHUB_SSL_CLIENT_CA), so another
//               user's server certificate opens no server but its own.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/tls_client.h"
#include "http/tls_context.h"
#include "hubcore/config.h"
#include "internal_ca.h"

namespace hubd {

class InternalTls {
public:
    // How long a server's certificate is valid: a server running longer must
    // be restarted (hubd then refuses it, and says so in its log).
    static constexpr std::chrono::hours kServerValidity{24 * 30};
    static constexpr std::chrono::hours kHubValidity{24 * 366};

    // Opens or creates both CAs and issues hubd's certificate for
    // DNS:localhost, IP:127.0.0.1, `hubNames` and JupyterHub.trusted_alt_names.
    // Throws InternalCaError or http::TlsError; `notes` says what was created.
    InternalTls(const hub::Settings& settings, const std::vector<std::string>& hubNames,
                std::vector<std::string>& notes);

    // A fresh key and certificate for `user`'s server (Spawner.ssl_alt_names
    // added). Throws InternalCaError.
    Leaf issueServer(std::string_view user) const;
    // What servers trust as clients: the hub CA, PEM.
    const std::string& hubCaPem() const { return hubCa_.certPem(); }
    // The hub API listener's context: hubd's certificate; a client
    // certificate is optional (tokens still decide) but, if sent, must come
    // from the servers CA.
    std::shared_ptr<const http::TlsContext> apiContext() const { return api_; }
    // For the proxy and readiness probes: hubd's certificate, servers CA only.
    std::shared_ptr<const http::TlsClientContext> clientContext() const { return client_; }

    // The SAN for a URL's host ("https://10.0.0.5:8081" -> "IP:10.0.0.5"), or "".
    static std::string altNameOfUrl(std::string_view url);

private:
    std::vector<std::string> serverAltNames_;
    InternalCa serversCa_, hubCa_;
    Leaf hub_;
    std::shared_ptr<const http::TlsContext> api_;
    std::shared_ptr<const http::TlsClientContext> client_;
};

}  // namespace hubd
