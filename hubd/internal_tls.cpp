// SPDX-License-Identifier: BSD-3-Clause
// Internal TLS: the two CAs, hubd's own certificate, and its two contexts.
#include "internal_tls.h"

#include <algorithm>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fmt/format.h>

namespace hubd {

namespace {

InternalCa openCa(const std::string& dir, const std::string& name, std::vector<std::string>& notes) {
    bool created = false;
    InternalCa ca = InternalCa::openOrCreate(dir, name, created);
    notes.push_back(
        fmt::format("internal TLS: {} the {} CA in {}", created ? "created" : "using", name, dir));
    return ca;
}

// Server side of the hub API: optional client certificates, from the servers CA only.
std::shared_ptr<const http::TlsContext> makeApiContext(const Leaf& hub, const InternalCa& servers) {
    http::UniqueSslCtx ctx = http::newPolicyContext(true);
    SSL_CTX* c = ctx.get();
    static const unsigned char kSessionContext[] = "hubd-api";
    STACK_OF(X509_NAME)* accepted = sk_X509_NAME_new_null();
    if (accepted) sk_X509_NAME_push(accepted, X509_NAME_dup(X509_get_subject_name(servers.cert())));
    if (SSL_CTX_use_certificate(c, hub.cert.get()) != 1 || SSL_CTX_use_PrivateKey(c, hub.key.get()) != 1 ||
        X509_STORE_add_cert(SSL_CTX_get_cert_store(c), servers.cert()) != 1 || !accepted ||
        SSL_CTX_set_session_id_context(c, kSessionContext, sizeof kSessionContext - 1) != 1) {
        sk_X509_NAME_pop_free(accepted, X509_NAME_free);
        ERR_clear_error();
        throw http::TlsError("cannot set up internal TLS for the hub API listener");
    }
    SSL_CTX_set_client_CA_list(c, accepted);  // takes ownership
    SSL_CTX_set_verify_depth(c, 1);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);  // no FAIL_IF_NO_PEER_CERT: see the header
    return std::make_shared<const http::TlsContext>(std::move(ctx), "hubd internal certificate (hub CA)");
}

}  // namespace

std::string InternalTls::altNameOfUrl(std::string_view url) {
    size_t start = url.find("://");
    if (start == std::string_view::npos) return {};
    std::string_view rest = url.substr(start + 3);
    rest = rest.substr(0, rest.find('/'));
    std::string host;
    if (!rest.empty() && rest.front() == '[') {
        host = std::string(rest.substr(1, rest.find(']') - 1));
    } else {
        host = std::string(rest.substr(0, rest.rfind(':')));
    }
    if (host.empty() || host == "0.0.0.0" || host == "::") return {};
    if (hub::checkAltName("IP:" + host).empty()) return "IP:" + host;
    if (hub::checkAltName("DNS:" + host).empty()) return "DNS:" + host;
    return {};
}

InternalTls::InternalTls(const hub::Settings& settings, const std::vector<std::string>& hubNames,
                         std::vector<std::string>& notes)
    : serverAltNames_(settings.sslAltNames),
      serversCa_(openCa(settings.internalCertsLocation, "servers", notes)),
      hubCa_(openCa(settings.internalCertsLocation, "hub", notes)) {
    std::vector<std::string> names = hubNames;
    names.insert(names.end(), settings.trustedAltNames.begin(), settings.trustedAltNames.end());
    names.erase(std::remove(names.begin(), names.end(), std::string()), names.end());
    hub_ = hubCa_.issue("hubd", names, kHubValidity);
    api_ = makeApiContext(hub_, serversCa_);
    client_ =
        std::make_shared<const http::TlsClientContext>(hub_.cert.get(), hub_.key.get(), serversCa_.cert());
}

Leaf InternalTls::issueServer(std::string_view user) const {
    return serversCa_.issue(user, serverAltNames_, kServerValidity);
}

}  // namespace hubd
